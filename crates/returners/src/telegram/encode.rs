//! A return as a Telegram message: Salt's text (`id`, `function`, `function args`, `jid`,
//! `return` lines ended by `\r\n`, values as Python's `str()` shows them), cut to what
//! `sendMessage` takes, and the answers the Bot API gives.

use std::time::Duration;

use serde_json::Value;

use crate::notify;
use crate::Load;

/// `sendMessage` takes at most 4096 characters (Telegram counts UTF-16 code units). The text
/// is cut at 4096 bytes: a character is never fewer UTF-8 bytes than UTF-16 units, so the cut
/// text is within Telegram's count whatever its script (text that is not ASCII is cut earlier
/// than Telegram would).
pub const MAX_TEXT_BYTES: usize = 4096;

/// Salt's message for `ret`, cut to [`MAX_TEXT_BYTES`] with a last line saying so.
pub fn text(ret: &Load) -> String {
    notify::cut(&notify::salt_lines(ret, "\r\n"), MAX_TEXT_BYTES).into_owned()
}

/// The `sendMessage` form: `chat_id`, `text`, and `message_thread_id` when a topic is set.
pub fn form(chat_id: &str, thread_id: Option<&str>, text: &str) -> String {
    let mut fields = vec![("chat_id", chat_id), ("text", text)];
    if let Some(thread) = thread_id {
        fields.push(("message_thread_id", thread));
    }
    crate::http::form(&fields)
}

/// Whether a 2xx answer says the message went (`{"ok": true, ...}`); else the Bot API's own
/// words (`description`).
pub fn sent(answer: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(answer).map_err(|e| format!("the answer is not the Bot API's JSON ({e})"))?;
    if answer.get("ok") == Some(&Value::Bool(true)) {
        return Ok(());
    }
    Err(answer.get("description").and_then(Value::as_str).unwrap_or("the answer does not say ok").to_string())
}

/// The wait a refusal asks for in its body (`{"parameters": {"retry_after": 5}}`), which the Bot
/// API gives with its 429s.
pub fn retry_after(answer: &[u8]) -> Option<Duration> {
    let answer: Value = serde_json::from_slice(answer).ok()?;
    answer.pointer("/parameters/retry_after").and_then(Value::as_u64).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ret(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn salts_text_with_python_values() {
        let r = ret(json!({"id": "web1", "fun": "cmd.run", "fun_args": ["uptime"], "jid": "20261201120000000001",
                           "return": {"pid": 7, "ok": true, "out": null}, "retcode": 0}));
        assert_eq!(
            text(&r),
            "id: web1\r\nfunction: cmd.run\r\nfunction args: ['uptime']\r\njid: 20261201120000000001\r\nreturn: {'pid': 7, 'ok': True, 'out': None}\r\n"
        );
    }

    #[test]
    fn a_long_return_is_cut_within_telegrams_count_and_says_so() {
        for unit in ["x", "é", "日本", "😀"] {
            let r = ret(json!({"id": "m1", "fun": "cmd.run", "fun_args": [], "jid": "20261201120000000001", "return": unit.repeat(5000)}));
            let t = text(&r);
            assert!(t.len() <= MAX_TEXT_BYTES);
            assert!(t.encode_utf16().count() <= 4096, "{unit}: {} UTF-16 units", t.encode_utf16().count());
            assert!(t.contains("[cut: "), "{}", &t[t.len() - 60..]);
        }
    }

    #[test]
    fn the_form_and_the_answers() {
        assert_eq!(form("-100", None, "a b"), "chat_id=-100&text=a+b");
        assert_eq!(form("@ops", Some("7"), "x"), "chat_id=%40ops&text=x&message_thread_id=7");
        assert_eq!(sent(br#"{"ok":true,"result":{"message_id":1}}"#), Ok(()));
        assert_eq!(
            sent(br#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#),
            Err("Bad Request: chat not found".into())
        );
        assert!(sent(b"<html>").is_err());
        let throttled = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#;
        assert_eq!(retry_after(throttled), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(br#"{"ok":false}"#), None);
    }
}
