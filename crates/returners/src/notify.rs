//! What the returners that send a message share (smtp, slack, slack_webhook, mattermost,
//! telegram, pushover, hipchat, highstate): Salt's text of a return, and cutting a message to
//! what the service takes, saying so in the message.

use serde_json::Value;

use salt_targeting::pystr::py_str;

/// Salt's lines for a return (its smtp template, slack's and telegram's text): `id`,
/// `function`, `function args`, `jid`, `return`, each value as Python's `str()` shows it
/// (`['echo hi']`, `True`), each line ended by `eol` (`\n` in mail, `\r\n` in Slack's).
pub(crate) fn salt_lines(ret: &serde_json::Map<String, Value>, eol: &str) -> String {
    salt_lines_showing(ret, eol, &ret.get("return").map(py_str).unwrap_or_default())
}

/// [`salt_lines`] with the `return` line showing `shown` (slack shows `pprint.pformat` or
/// YAML of it).
pub(crate) fn salt_lines_showing(ret: &serde_json::Map<String, Value>, eol: &str, shown: &str) -> String {
    let field = |key: &str| ret.get(key).map(py_str).unwrap_or_default();
    let mut out = String::new();
    for (label, key) in [("id", "id"), ("function", "fun"), ("function args", "fun_args"), ("jid", "jid")] {
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&field(key));
        out.push_str(eol);
    }
    out.push_str("return: ");
    out.push_str(shown);
    out.push_str(eol);
    out
}

/// `text` if it fits in `limit` bytes; else its start, cut at a character boundary, and a last
/// line that says it was cut and how big it was, the whole within `limit`.
pub(crate) fn cut(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return text.into();
    }
    let note = format!("\n[cut: {} bytes in all, {limit} sent]", text.len());
    let mut end = limit.saturating_sub(note.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &text[..end]).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn salt_lines_show_values_as_python_does() {
        let ret = json!({"id": "web1", "fun": "cmd.run", "fun_args": ["echo hi"], "jid": "20261201120000000001", "return": {"ok": true}});
        assert_eq!(
            salt_lines(ret.as_object().unwrap(), "\n"),
            "id: web1\nfunction: cmd.run\nfunction args: ['echo hi']\njid: 20261201120000000001\nreturn: {'ok': True}\n"
        );
    }

    #[test]
    fn a_long_text_is_cut_within_the_limit_and_says_so() {
        assert_eq!(cut("short", 100), "short");
        let long = "日本語".repeat(1000);
        let cut = cut(&long, 500);
        assert!(cut.len() <= 500, "{}", cut.len());
        assert!(cut.ends_with(&format!("[cut: {} bytes in all, 500 sent]", long.len())), "{cut}");
        assert!(cut.starts_with("日本語"));
    }
}
