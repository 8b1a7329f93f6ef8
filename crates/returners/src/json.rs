//! The JSON text Salt writes, for every store that stores JSON as text: Python's
//! `json.dumps` with its defaults (`", "` and `": "`, non-ASCII raw, key order kept), with the
//! returners' own settings redacted on the way.

use serde_json::{Map, Value};

use crate::redact::redact;

/// Python's `json.dumps` with its defaults, as Salt writes JSON.
pub fn dumps(value: &Value) -> String {
    salt_output::json_dumps(value, None, false)
}

/// Top-level keys that carry a returner's own settings (`--return_kwargs`, publish kwargs):
/// their secret values are redacted before anything is stored.
pub(crate) const SETTINGS_KEYS: [&str; 2] = ["kwargs", "ret_kwargs"];

/// `json.dumps(map)` split around the `return` value: `(before, after)` such that
/// `before + dumps(map["return"]) + after == dumps(map)` (with settings redacted). A return can
/// be many megabytes: it is dumped once, and sent once (the server concatenates `full_ret`).
/// Without a `return` key, `after` is empty and `before` is the whole text.
pub fn dumps_around_return(map: &Map<String, Value>) -> (String, String) {
    let (mut before, mut after) = (String::from("{"), String::new());
    let mut seen_return = false;
    for (i, (key, value)) in map.iter().enumerate() {
        let out = if seen_return { &mut after } else { &mut before };
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&dumps(&Value::String(key.clone())));
        out.push_str(": ");
        if key == "return" {
            seen_return = true;
            continue;
        }
        if SETTINGS_KEYS.contains(&key.as_str()) {
            out.push_str(&dumps(&redact(value)));
        } else {
            out.push_str(&dumps(value));
        }
    }
    if seen_return { &mut after } else { &mut before }.push('}');
    (before, after)
}

/// `json.dumps(value)` of the top-level entry `key` of a return or a load, redacted as
/// [`dumps_map`] redacts it: for the stores that write each entry on its own (etcd's key per
/// field).
pub fn dumps_entry(key: &str, value: &Value) -> String {
    if SETTINGS_KEYS.contains(&key) {
        dumps(&redact(value))
    } else {
        dumps(value)
    }
}

/// `json.dumps(map)` with settings redacted (a load or an event's data).
pub fn dumps_map(map: &Map<String, Value>) -> String {
    let (before, after) = dumps_around_return(map);
    match map.get("return") {
        Some(ret) => before + &dumps(ret) + &after,
        None => before,
    }
}

/// `text` (JSON) as Python's `json.dumps` writes it with its default `ensure_ascii=True`: every
/// character past ASCII as `\uXXXX` (lowercase; two escapes, a surrogate pair, past U+FFFF).
/// Outside strings JSON has no such characters, so escaping the whole text is the same.
pub fn ensure_ascii(text: &str) -> std::borrow::Cow<'_, str> {
    if text.is_ascii() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn salt_json_text() {
        let ret = json!({"success": true, "return": {"a": [1, 2.5, null]}, "retcode": 0, "jid": "20261125003807139737",
                         "fun": "test.echo", "fun_args": ["héllo wörld ✓"], "user": "root", "id": "minion1"});
        let want = r#"{"success": true, "return": {"a": [1, 2.5, null]}, "retcode": 0, "jid": "20261125003807139737", "fun": "test.echo", "fun_args": ["héllo wörld ✓"], "user": "root", "id": "minion1"}"#;
        assert_eq!(dumps_map(ret.as_object().unwrap()), want);
        let (before, after) = dumps_around_return(ret.as_object().unwrap());
        assert_eq!(before, r#"{"success": true, "return": "#);
        assert_eq!(format!("{before}{}{after}", dumps(&ret["return"])), want);
        let no_return = json!({"fun": "x"});
        assert_eq!(dumps_around_return(no_return.as_object().unwrap()), (r#"{"fun": "x"}"#.to_string(), String::new()));
        assert_eq!(dumps_map(&Map::new()), "{}");
    }

    #[test]
    fn ensure_ascii_as_python() {
        let text = dumps(&json!({"emoji 😀": "✓ é"}));
        assert_eq!(ensure_ascii(&text), r#"{"emoji \ud83d\ude00": "\u2713 \u00e9"}"#);
        assert!(matches!(ensure_ascii("{}"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn settings_are_redacted() {
        let load = json!({"fun": "test.ping", "ret_kwargs": {"pass": "hunter2", "db": "x"}, "kwargs": {"mysql.pass": "s3cret"}});
        let text = dumps_map(load.as_object().unwrap());
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(text.contains(r#""db": "x""#), "{text}");
        assert!(!dumps_entry("ret_kwargs", &load["ret_kwargs"]).contains("hunter2"));
        assert_eq!(dumps_entry("fun", &load["fun"]), r#""test.ping""#);
    }
}
