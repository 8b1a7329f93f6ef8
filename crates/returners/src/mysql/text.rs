//! The JSON text Salt writes, and how it fits a table's charset.
//!
//! Salt writes `json.dumps(value)` with Python's defaults (`", "` and `": "`, non-ASCII raw,
//! key order kept). Salt's schema says `CHARSET=utf8`, which MySQL reads as the 3-byte
//! `utf8mb3`: a 4-byte character (an emoji) makes the INSERT fail and Salt loses the return.
//! For such a table we write each character above U+FFFF as a JSON `\uD83D\uDE00` surrogate
//! pair: the text stays valid utf8mb3 and valid JSON, and decodes back to the same character.

use serde_json::{Map, Value};

use crate::redact::redact;

/// Python's `json.dumps` with its defaults, as Salt writes JSON.
pub(crate) fn dumps(value: &Value) -> String {
    salt_output::json_dumps(value, None, false)
}

/// Top-level keys that carry a returner's own settings (`--return_kwargs`, publish kwargs):
/// their secret values are redacted before anything is stored.
const SETTINGS_KEYS: [&str; 2] = ["kwargs", "ret_kwargs"];

/// `json.dumps(map)` split around the `return` value: `(before, after)` such that
/// `before + dumps(map["return"]) + after == dumps(map)` (with settings redacted). A return can
/// be many megabytes: it is dumped once, and sent once (the server concatenates `full_ret`).
/// Without a `return` key, `after` is empty and `before` is the whole text.
pub(crate) fn dumps_around_return(map: &Map<String, Value>) -> (String, String) {
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

/// `json.dumps(map)` with settings redacted (a load or an event's data).
pub(crate) fn dumps_map(map: &Map<String, Value>) -> String {
    let (before, after) = dumps_around_return(map);
    match map.get("return") {
        Some(ret) => before + &dumps(ret) + &after,
        None => before,
    }
}

/// Whether text holds a character a utf8mb3 column refuses.
pub(crate) fn has_astral(s: &str) -> bool {
    // Only 4-byte UTF-8 sequences start with a byte of 0xF0 or more.
    s.bytes().any(|b| b >= 0xF0)
}

/// JSON text with every character above U+FFFF written as a `\uXXXX\uXXXX` surrogate pair.
/// Only valid on JSON text (outside strings, JSON is ASCII).
pub(crate) fn escape_astral(s: String) -> String {
    if !has_astral(&s) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if (c as u32) > 0xFFFF {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
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
    fn settings_are_redacted() {
        let load = json!({"fun": "test.ping", "ret_kwargs": {"pass": "hunter2", "db": "x"}, "kwargs": {"mysql.pass": "s3cret"}});
        let text = dumps_map(load.as_object().unwrap());
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(text.contains(r#""db": "x""#), "{text}");
    }

    #[test]
    fn astral_characters_become_surrogate_pairs() {
        let text = dumps(&json!({"k": "smile 😀 ✓"}));
        let escaped = escape_astral(text.clone());
        assert_eq!(escaped, r#"{"k": "smile \ud83d\ude00 ✓"}"#);
        assert!(!has_astral(&escaped) && has_astral(&text));
        assert_eq!(serde_json::from_str::<Value>(&escaped).unwrap(), json!({"k": "smile 😀 ✓"}));
        assert_eq!(escape_astral("plain ✓".into()), "plain ✓");
    }
}
