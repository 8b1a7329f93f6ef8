//! What the returners that send a message share (smtp, slack, slack_webhook, mattermost,
//! telegram, pushover, hipchat, highstate): Salt's text of a return, and cutting a message to
//! what the service takes, saying so in the message.

use serde_json::Value;

use salt_targeting::pystr::py_str;

/// Salt's lines for a return (its smtp template, slack's and telegram's text): `id`,
/// `function`, `function args`, `jid`, `return`, each value as Python's `str()` shows it
/// (`['echo hi']`, `True`), each line ended by `eol` (`\n` in mail, `\r\n` in Slack's).
pub(crate) fn salt_lines(ret: &serde_json::Map<String, Value>, eol: &str) -> String {
    let field = |key: &str| ret.get(key).map(py_str).unwrap_or_default();
    let mut out = String::new();
    for (label, key) in [("id", "id"), ("function", "fun"), ("function args", "fun_args"), ("jid", "jid"), ("return", "return")] {
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&field(key));
        out.push_str(eol);
    }
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

/// The returns a notifier sent lately, by (jid, minion id), so a return delivered again (the
/// spool retries a batch whose first records went out before the service failed, a minion
/// sends again) makes no second message. Bounded: the oldest are forgotten first.
pub(crate) struct Delivered {
    seen: std::sync::Mutex<Recent>,
    capacity: usize,
}

/// (jid, id) pairs: a set to look them up, and their order to forget the oldest.
#[derive(Default)]
struct Recent {
    set: std::collections::HashSet<(String, String)>,
    order: std::collections::VecDeque<(String, String)>,
}

impl Delivered {
    /// Remembers the last `capacity` deliveries.
    pub(crate) fn new(capacity: usize) -> Delivered {
        Delivered { seen: Default::default(), capacity }
    }

    pub(crate) fn contains(&self, jid: &str, id: &str) -> bool {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).set.contains(&(jid.to_string(), id.to_string()))
    }

    pub(crate) fn insert(&self, jid: &str, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (jid.to_string(), id.to_string());
        if seen.set.insert(key.clone()) {
            seen.order.push_back(key);
            while seen.order.len() > self.capacity {
                if let Some(old) = seen.order.pop_front() {
                    seen.set.remove(&old);
                }
            }
        }
    }
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
    fn delivered_remembers_the_latest_within_its_capacity() {
        let d = Delivered::new(2);
        d.insert("j1", "a");
        d.insert("j1", "b");
        d.insert("j1", "a");
        assert!(d.contains("j1", "a") && d.contains("j1", "b") && !d.contains("j2", "a"));
        d.insert("j2", "a");
        assert!(!d.contains("j1", "a") && d.contains("j1", "b") && d.contains("j2", "a"));
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
