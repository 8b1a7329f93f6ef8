//! Salt's CLI argument handling (`salt.utils.args`): how `salt '*' fun ARG...` turns its
//! argument strings into the publish `arg` list.
//!
//! Each string is either a `key=value` kwarg or a positional argument; both values are
//! passed through [`yamlify_arg`]; kwargs travel as ONE trailing dict marked
//! `"__kwarg__": true` ([`condition_input`]).

use serde_json::{Map, Value};

use crate::yaml::{self, Kind};

/// `salt.utils.args.parse_input(args, condition=True)` for CLI strings.
///
/// `["1", "two", "a=b", "c={x: 1}"]` → `[1, "two", {"__kwarg__": true, "a": "b", "c": {"x": 1}}]`.
pub fn parse_input(args: &[String]) -> Vec<Value> {
    let mut positional = Vec::new();
    let mut kwargs = Map::new();
    for arg in args {
        match parse_kwarg(arg) {
            Some((name, value)) => {
                kwargs.insert(name.to_owned(), yamlify_arg(value));
            }
            None => positional.push(yamlify_arg(arg)),
        }
    }
    condition_input(positional, kwargs)
}

/// `salt.utils.args.condition_input`: ints that print as a jid (20 characters) become strings
/// so they survive as jids, and non-empty kwargs are appended as one dict with
/// `"__kwarg__": true` first.
pub fn condition_input(args: Vec<Value>, kwargs: Map<String, Value>) -> Vec<Value> {
    let mut out: Vec<Value> = args
        .into_iter()
        .map(|arg| match &arg {
            Value::Number(n) if (n.is_i64() || n.is_u64()) && n.to_string().len() == 20 => Value::String(n.to_string()),
            _ => arg,
        })
        .collect();
    if !kwargs.is_empty() {
        let mut kw = Map::new();
        kw.insert("__kwarg__".into(), Value::Bool(true));
        kw.extend(kwargs);
        out.push(Value::Object(kw));
    }
    out
}

/// Splits a publish `arg` list back into positional arguments and kwargs, as the minion's
/// `parse_input(..., condition=False)` does for non-string items: a dict whose `__kwarg__`
/// is exactly `true` contributes its other keys to the kwargs (later dicts win); anything
/// else, including a dict without the marker, stays positional.
pub fn split_kwargs(arg: &[Value]) -> (Vec<Value>, Map<String, Value>) {
    let mut positional = Vec::new();
    let mut kwargs = Map::new();
    for item in arg {
        match item {
            Value::Object(map) if map.get("__kwarg__") == Some(&Value::Bool(true)) => {
                kwargs.extend(map.iter().filter(|(k, _)| *k != "__kwarg__").map(|(k, v)| (k.clone(), v.clone())));
            }
            other => positional.push(other.clone()),
        }
    }
    (positional, kwargs)
}

/// `salt.utils.args.parse_kwarg`: Python's `^([^\d\W][\w.-]*)=(?!=)(.*)$` (Unicode). The name
/// starts with a letter or `_` and holds word characters, `.` and `-`; `a==b` is not a kwarg;
/// a value spanning lines is not a kwarg (only one trailing newline is tolerated and dropped).
pub fn parse_kwarg(arg: &str) -> Option<(&str, &str)> {
    let eq = arg.find('=')?;
    let (name, rest) = (&arg[..eq], &arg[eq + 1..]);
    let mut chars = name.chars();
    let first = chars.next()?;
    // `[^\d\W]`: a word character that is not a digit. (Python also admits the rare
    // non-decimal numerics such as `²` here; we do not.)
    if !(first.is_alphabetic() || first == '_') || !chars.all(|c| is_word(c) || c == '.' || c == '-') {
        return None;
    }
    if rest.starts_with('=') {
        return None;
    }
    let value = match rest.find('\n') {
        None => rest,
        Some(i) if i == rest.len() - 1 => &rest[..i],
        Some(_) => return None,
    };
    Some((name, value))
}

/// Python's `\w` for `str` patterns: alphanumerics (`str.isalnum`) and `_`.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `salt.utils.args.yamlify_arg`: YAML-load one CLI string, keeping the original string
/// whenever loading would lose or reinterpret what the user typed.
pub fn yamlify_arg(arg: &str) -> Value {
    let original = || Value::String(arg.to_owned());
    let stripped = arg.trim();
    // Empty/blank would load as None; "---"/"..." are document markers.
    if stripped.is_empty() || stripped == "---" || stripped == "..." {
        return original();
    }
    // "1_2_3" would load as the int 123.
    if arg.contains('_') && stripped.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return original();
    }
    // libyaml would silently rewrite these characters.
    if arg.contains(['\t', '\r', '\n']) {
        return original();
    }
    if arg.contains('#') {
        // '#' starts a comment: only accept a parse that produced a non-string.
        return match yaml::load_with_kind(arg) {
            Ok((_, Kind::Str | Kind::Null)) | Err(_) => original(),
            Ok((value, _)) => value,
        };
    }
    if arg == "None" {
        return Value::Null;
    }
    let (value, kind) = match yaml::load_with_kind(arg) {
        Ok(loaded) => loaded,
        Err(_) => return original(),
    };
    match kind {
        // "foo: bar" and "- foo" stay strings: only bracketed input becomes a collection.
        Kind::Dict if !arg.starts_with('{') => original(),
        Kind::List if !arg.starts_with('[') => original(),
        // PyYAML loads "|" and "!" as "" or None.
        Kind::Str if value == "" && (arg == "|" || arg == "!") => original(),
        Kind::Null if stripped.starts_with('#') || arg == "!" => original(),
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    // Cases from Salt's tests/pytests/unit/utils/test_args.py::test_yamlify_arg.
    #[test]
    fn yamlify_arg_like_salt() {
        for blank in ["", "\t", " ", "   "] {
            assert_eq!(yamlify_arg(blank), json!(blank));
        }
        assert_eq!(yamlify_arg("1_2_3"), json!("1_2_3"));
        for hashed in ["# hash at beginning", "Hello world! # hash elsewhere"] {
            assert_eq!(yamlify_arg(hashed), json!(hashed));
        }
        assert_eq!(yamlify_arg(r####"["foo", "bar", "###"]"####), json!(["foo", "bar", "###"]));
        assert_eq!(yamlify_arg(r####"{"foo": "###"}"####), json!({"foo": "###"}));
        assert_eq!(yamlify_arg("None"), Value::Null);
        for item in ["- foo", "foo: bar"] {
            assert_eq!(yamlify_arg(item), json!(item));
        }
        assert_eq!(yamlify_arg("|"), json!("|"));
        assert_eq!(yamlify_arg("!"), json!("!"));
        assert_eq!(yamlify_arg("123"), json!(123));
        assert_eq!(yamlify_arg("45.67"), json!(45.67));
        assert_eq!(yamlify_arg("foo"), json!("foo"));
        assert_eq!(yamlify_arg(r#"["foo", "bar"]"#), json!(["foo", "bar"]));
        assert_eq!(yamlify_arg(r#"{"foo": "bar"}"#), json!({"foo": "bar"}));
        for marker in ["---", "--- ", "...", " ..."] {
            assert_eq!(yamlify_arg(marker), json!(marker));
        }
        assert_eq!(yamlify_arg("foo\t\nbar"), json!("foo\t\nbar"));
    }

    #[test]
    fn yamlify_arg_scalars() {
        // From the real-Salt transcript: `cmd.run 'false'` published [false].
        assert_eq!(yamlify_arg("false"), json!(false));
        assert_eq!(yamlify_arg("yes"), json!(true));
        assert_eq!(yamlify_arg("y"), json!("y"));
        assert_eq!(yamlify_arg("ls /"), json!("ls /"));
        assert_eq!(yamlify_arg("exit 3"), json!("exit 3"));
        assert_eq!(yamlify_arg("héllo wörld ✓"), json!("héllo wörld ✓"));
        assert_eq!(yamlify_arg("0755"), json!(755));
        assert_eq!(yamlify_arg("1e3"), json!("1e3"));
        assert_eq!(yamlify_arg("~"), Value::Null);
        // A '#' inside a parse that yields a non-string is kept.
        assert_eq!(yamlify_arg("{a: '#'}"), json!({"a": "#"}));
        // Broken YAML falls back to the original string.
        assert_eq!(yamlify_arg("{a: 1"), json!("{a: 1"));
        assert_eq!(yamlify_arg("'unterminated"), json!("'unterminated"));
    }

    #[test]
    fn parse_kwarg_regex_cases() {
        // test_args.py::test_arguments_regex and test_parse_kwarg
        assert_eq!(parse_kwarg("pip=1.1"), Some(("pip", "1.1")));
        assert_eq!(parse_kwarg("pip==1.1"), None);
        assert_eq!(parse_kwarg("pip=1.2=1"), Some(("pip", "1.2=1")));
        assert_eq!(parse_kwarg("foo=bar"), Some(("foo", "bar")));
        assert_eq!(parse_kwarg("foobar"), None);
        assert_eq!(parse_kwarg("1a=b"), None);
        assert_eq!(parse_kwarg("a b=c"), None);
        assert_eq!(parse_kwarg("_a.b-c=d e"), Some(("_a.b-c", "d e")));
        assert_eq!(parse_kwarg("név=x"), Some(("név", "x")));
        assert_eq!(parse_kwarg("a=b\nc"), None);
        assert_eq!(parse_kwarg("a=b\n"), Some(("a", "b")));
        assert_eq!(parse_kwarg("a="), Some(("a", "")));
        assert_eq!(parse_kwarg("=a"), None);
    }

    #[test]
    fn parse_input_builds_the_publish_arg_list() {
        // The transcript's `test.arg 1 two a=b 'c={x: 1}'` publish.
        assert_eq!(
            parse_input(&strings(&["1", "two", "a=b", "c={x: 1}"])),
            vec![json!(1), json!("two"), json!({"__kwarg__": true, "a": "b", "c": {"x": 1}})]
        );
        assert_eq!(parse_input(&strings(&["false"])), vec![json!(false)]);
        assert_eq!(parse_input(&strings(&["ls /"])), vec![json!("ls /")]);
        assert_eq!(parse_input(&[]), Vec::<Value>::new());
        // Later duplicates win but keep the first position, as in a Python dict.
        assert_eq!(parse_input(&strings(&["a=1", "b=2", "a=3"])), vec![json!({"__kwarg__": true, "a": 3, "b": 2})]);
        let kw = &parse_input(&strings(&["x=1", "y=z"]))[0];
        assert_eq!(kw.as_object().unwrap().keys().next().unwrap(), "__kwarg__");
    }

    #[test]
    fn jid_like_ints_become_strings() {
        // test_args.py::test_condition_input_string, and the transcript's find_job publish.
        assert_eq!(parse_input(&strings(&["20261125003937184047"])), vec![json!("20261125003937184047")]);
        assert_eq!(
            condition_input(vec![json!(2014102020132567558u64), json!(12)], Map::new()),
            vec![json!(2014102020132567558u64), json!(12)]
        );
        assert_eq!(condition_input(vec![json!(10141020201325675584u64)], Map::new()), vec![json!("10141020201325675584")]);
    }

    #[test]
    fn split_kwargs_reverses_condition_input() {
        let arg = vec![json!(1), json!("two"), json!({"__kwarg__": true, "a": "b", "c": {"x": 1}})];
        let (args, kwargs) = split_kwargs(&arg);
        assert_eq!(args, vec![json!(1), json!("two")]);
        assert_eq!(Value::Object(kwargs), json!({"a": "b", "c": {"x": 1}}));
        // Without an exact `true` marker a dict is positional.
        let arg = vec![json!({"a": 1}), json!({"__kwarg__": "yes", "b": 2})];
        let (args, kwargs) = split_kwargs(&arg);
        assert_eq!(args, arg);
        assert!(kwargs.is_empty());
    }
}
