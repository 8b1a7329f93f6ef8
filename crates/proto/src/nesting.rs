//! One nesting limit for job data (arguments, kwargs, returns), applied where the data enters.
//!
//! The stores read loads and returns back with JSON parsers that refuse more than 128 levels
//! (serde_json's recursion limit), so data nested deeper would be stored and then never be read
//! again. Arguments deeper than [`MAX_DEPTH`] are refused at publish with a clear error; a return
//! deeper than that is kept, with the deeper part cut and marked, so it still arrives.

use serde_json::Value;

/// Levels of arrays and objects a job's arguments or return may have.
pub const MAX_DEPTH: usize = 100;

/// How deep `value` is nested: 0 for a scalar, 1 for `[1]`, 2 for `[[1]]`.
/// Iterative, so measuring never recurses however deep the value is.
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            Value::Array(items) => {
                deepest = deepest.max(d + 1);
                stack.extend(items.iter().map(|i| (i, d + 1)));
            }
            Value::Object(map) => {
                deepest = deepest.max(d + 1);
                stack.extend(map.values().map(|i| (i, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// An error naming `what` when it is nested deeper than [`MAX_DEPTH`].
pub fn check(what: &str, value: &Value) -> Result<(), String> {
    let d = depth(value);
    if d > MAX_DEPTH {
        Err(format!("{what} nested {d} levels deep; at most {MAX_DEPTH} levels are accepted"))
    } else {
        Ok(())
    }
}

/// Replaces every array or object found at [`MAX_DEPTH`] levels with a text saying so; returns
/// whether anything was cut.
pub fn cut_deeper(value: &mut Value) -> bool {
    let mut cut = false;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, d)) = stack.pop() {
        let children: Vec<&mut Value> = match v {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(map) => map.values_mut().collect(),
            _ => continue,
        };
        for child in children {
            if d + 1 >= MAX_DEPTH && (child.is_array() || child.is_object()) {
                *child = Value::String(format!("<nested deeper than {MAX_DEPTH} levels: cut>"));
                cut = true;
            } else {
                stack.push((child, d + 1));
            }
        }
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!([v]);
        }
        v
    }

    #[test]
    fn depth_counts_levels() {
        assert_eq!(depth(&json!("x")), 0);
        assert_eq!(depth(&json!([1, {"a": [2]}])), 3);
        assert_eq!(depth(&nested(MAX_DEPTH)), MAX_DEPTH);
    }

    #[test]
    fn check_refuses_past_the_limit() {
        assert!(check("arguments", &nested(MAX_DEPTH)).is_ok());
        let err = check("arguments", &nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(err, "arguments nested 101 levels deep; at most 100 levels are accepted");
    }

    #[test]
    fn cut_keeps_what_fits_and_marks_the_rest() {
        let mut shallow = json!({"a": [1, 2]});
        assert!(!cut_deeper(&mut shallow));
        assert_eq!(shallow, json!({"a": [1, 2]}));

        let mut deep = nested(MAX_DEPTH + 50);
        assert!(cut_deeper(&mut deep));
        assert_eq!(depth(&deep), MAX_DEPTH);
        // The result is readable by serde_json (its recursion limit is 128).
        let text = serde_json::to_string(&deep).unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert!(text.contains("nested deeper than 100 levels: cut"));
        assert_eq!(back, deep);
    }
}
