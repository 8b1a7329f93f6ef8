//! How Salt's JSON text fits a MySQL table's charset.
//!
//! Salt's schema says `CHARSET=utf8`, which MySQL reads as the 3-byte `utf8mb3`: a 4-byte
//! character (an emoji) makes the INSERT fail and Salt loses the return. For such a table we
//! write each character above U+FFFF as a JSON `\uD83D\uDE00` surrogate pair: the text stays
//! valid utf8mb3 and valid JSON, and decodes back to the same character.

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
    use crate::json::dumps;
    use serde_json::json;
    use serde_json::Value;

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
