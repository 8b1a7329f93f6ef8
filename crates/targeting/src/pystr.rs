//! Python's `str()` and `repr()` of a JSON value: the one place this project writes them.
//!
//! Salt shows values as Python does wherever it formats them with `str` or `%s`: the grain
//! matcher compares `str(value).lower()` against the pattern (a boolean grain matches `true`,
//! a nested list `['a', 'b']`), modules echo their arguments, and returners that write text
//! (smtp, slack, telegram, `local`) print returns as Python prints a dict.

use serde_json::Value;

/// `str(value)` for the value Python would have after loading the same JSON.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// `repr(value)` for the value Python would have after loading the same JSON.
pub fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(value, &mut out);
    out
}

/// Appends `repr(value)` to `out`.
pub fn write_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => out.push_str(&py_float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => py_str_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str_repr(k, out);
                out.push_str(": ");
                write_repr(v, out);
            }
            out.push('}');
        }
    }
}

/// `repr(float)`: shortest round-trip digits, positional for exponents in [-4, 16),
/// scientific (`1e+16`, `1.5e-07`) otherwise.
fn py_float_repr(f: f64) -> String {
    let sci = format!("{f:e}"); // shortest digits, e.g. "-1.5e-7", "1e16"
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` always has an exponent");
    let exp: i32 = exp.parse().expect("`{:e}` exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let point = exp as usize + 1;
            let (int_part, frac) = if digits.len() > point {
                (digits[..point].to_string(), digits[point..].to_string())
            } else {
                (format!("{digits:0<point$}"), "0".to_string())
            };
            format!("{sign}{int_part}.{frac}")
        } else {
            let zeros = "0".repeat((-exp - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

/// `repr(str)`: single quotes unless the text has `'` and no `"`.
fn py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_str() {
        let cases: &[(Value, &str)] = &[
            (json!("Debian"), "Debian"),
            (json!(true), "True"),
            (json!(false), "False"),
            (json!(null), "None"),
            (json!(42), "42"),
            (json!(-7), "-7"),
            (json!(18446744073709551615u64), "18446744073709551615"),
            (json!(1.0), "1.0"),
            (json!(-0.0), "-0.0"),
            (json!(0.1), "0.1"),
            (json!(123.456), "123.456"),
            (json!(1e16), "1e+16"),
            (json!(1.5e-7), "1.5e-07"),
            (json!(0.0001), "0.0001"),
            (json!(0.00001), "1e-05"),
            (json!(1234567890123456.0), "1234567890123456.0"),
            (json!(["a", 1, null]), "['a', 1, None]"),
            (json!({"k": "v", "n": [true]}), "{'k': 'v', 'n': [True]}"),
            (json!(["it's"]), "[\"it's\"]"),
            (json!(["a'\"b"]), "['a\\'\"b']"),
            (json!(["a\nb\\"]), "['a\\nb\\\\']"),
            (json!(["\u{1}"]), "['\\x01']"),
        ];
        for (value, want) in cases {
            assert_eq!(py_str(value), *want, "str({value})");
        }
    }
}
