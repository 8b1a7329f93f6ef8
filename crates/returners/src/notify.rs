//! What the returners that send a message share (smtp, slack, slack_webhook, mattermost,
//! telegram, pushover, hipchat, highstate): Salt's text of a return, cutting a message to
//! what the service takes (saying so in the message), and sending a batch one message per
//! return without sending any return twice ([`deliver_each`]).

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Mutex;

use serde_json::Value;

use salt_targeting::pystr::py_str;

use crate::record::ReturnRecord;
use crate::{Load, Rejection, Result, ReturnerError};

/// Salt's lines for a return (its smtp template, slack's and telegram's text): `id`,
/// `function`, `function args`, `jid`, `return`, each value as Python's `str()` shows it
/// (`['echo hi']`, `True`), each line ended by `eol` (`\n` in mail, `\r\n` in Slack's).
pub(crate) fn salt_lines(ret: &serde_json::Map<String, Value>, eol: &str) -> String {
    lines(ret, eol, &ret.get("return").map(py_str).unwrap_or_default())
}

/// [`salt_lines`] with the `return` as `pprint.pformat` shows it (sorted keys, wrapped at 80
/// columns), as Salt's pushover and hipchat returners write it.
pub(crate) fn salt_lines_pformat(ret: &serde_json::Map<String, Value>, eol: &str) -> String {
    lines(ret, eol, &salt_output::pformat(ret.get("return").unwrap_or(&Value::Null), 1))
}

fn lines(ret: &serde_json::Map<String, Value>, eol: &str, shown_return: &str) -> String {
    let field = |key: &str| ret.get(key).map(py_str).unwrap_or_default();
    let mut out = String::new();
    for (label, value) in [
        ("id", field("id")),
        ("function", field("fun")),
        ("function args", field("fun_args")),
        ("jid", field("jid")),
        ("return", shown_return.to_string()),
    ] {
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&value);
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

/// The returns a notifier has sent (or is sending), by minion id and jid, so a return handed
/// over again (the spool retrying a batch that failed half-way, the same return twice in a
/// batch) is not sent again. A minion returns once per job, so the pair names a return; `req`
/// jids (a new jid each time the record is read) are not remembered. Bounded: the oldest are
/// forgotten past [`Sent::CAPACITY`], and a restarted process starts empty (a return whose
/// delivery was cut short by a crash may then be sent twice).
#[derive(Default)]
pub(crate) struct Sent {
    inner: Mutex<SentInner>,
}

#[derive(Default)]
struct SentInner {
    keys: HashSet<(String, String)>,
    order: VecDeque<(String, String)>,
}

impl Sent {
    /// Far more returns than a spool hands over between two tries of one batch.
    pub const CAPACITY: usize = 100_000;

    /// Marks the return as being sent; false if it was (or is being) sent already.
    fn claim(&self, key: &(String, String)) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.keys.insert(key.clone()) {
            return false;
        }
        inner.order.push_back(key.clone());
        if inner.order.len() > Self::CAPACITY {
            if let Some(oldest) = inner.order.pop_front() {
                inner.keys.remove(&oldest);
            }
        }
        true
    }

    /// The return was not sent after all: it may be sent again.
    fn release(&self, key: &(String, String)) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.keys.remove(key) {
            inner.order.retain(|k| k != key);
        }
    }
}

/// Sends each return of `rets` as its own message, in order: `encode` makes a return's message
/// (a bad return is refused alone), `send` sends it. A return already sent is skipped (see
/// [`Sent`]). A message the service refuses for good refuses its return alone (a
/// [`Rejection`] with the service's words); a service that is down or asks to wait stops the
/// batch with that error, and the spool tries the batch again later: the returns sent before
/// it are not sent again.
pub(crate) async fn deliver_each<T, F, Fut>(
    rets: &[Load],
    sent: &Sent,
    encode: impl Fn(&ReturnRecord<'_>) -> std::result::Result<T, String>,
    send: F,
) -> Result<Vec<Rejection>>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut rejected = Vec::new();
    for (index, ret) in rets.iter().enumerate() {
        let record = match ReturnRecord::parse(ret) {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(reason) => {
                rejected.push(Rejection { index, reason });
                continue;
            }
        };
        let message = match encode(&record) {
            Ok(message) => message,
            Err(reason) => {
                rejected.push(Rejection { index, reason });
                continue;
            }
        };
        let key = (!record.req).then(|| (record.id.to_string(), record.jid.clone()));
        if key.as_ref().is_some_and(|k| !sent.claim(k)) {
            continue;
        }
        match send(message).await {
            Ok(()) => {}
            Err(ReturnerError::Rejected(why)) => {
                // Refused, not sent: the same return handed over again is tried again.
                if let Some(k) = &key {
                    sent.release(k);
                }
                rejected.push(Rejection { index, reason: format!("{}: {why}", crate::record::describe(record.id, &record.jid)) });
            }
            Err(e) => {
                if let Some(k) = &key {
                    sent.release(k);
                }
                return Err(e);
            }
        }
    }
    Ok(rejected)
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

    fn ret(id: &str, jid: &str) -> Load {
        json!({"id": id, "jid": jid, "fun": "test.ping", "return": true}).as_object().unwrap().clone()
    }

    /// Sends through `deliver_each`, failing as `fail` says for each id; the ids sent.
    async fn deliver(rets: &[Load], sent: &Sent, fail: fn(&str) -> Option<ReturnerError>) -> (Result<Vec<Rejection>>, Vec<String>) {
        let log = Mutex::new(Vec::new());
        let got = deliver_each(
            rets,
            sent,
            |r| Ok(r.id.to_string()),
            |id: String| {
                let outcome = fail(&id).map_or(Ok(()), Err);
                if outcome.is_ok() {
                    log.lock().unwrap().push(id);
                }
                async move { outcome }
            },
        )
        .await;
        (got, log.into_inner().unwrap())
    }

    #[tokio::test]
    async fn each_return_is_sent_once_even_when_a_batch_is_tried_again() {
        let sent = Sent::default();
        let jid = "20261201120000000001";
        let batch = [ret("a", jid), ret("b", jid), ret("a", jid), ret("../bad", jid), ret("c", jid)];
        // The service goes down at c: a and b went, the batch is tried again later.
        let (got, ids) = deliver(&batch, &sent, |id| (id == "c").then(|| ReturnerError::Unavailable("down".into()))).await;
        assert!(got.unwrap_err().retry_later());
        assert_eq!(ids, ["a", "b"], "the second a is the same return");
        let (got, ids) = deliver(&batch, &sent, |_| None).await;
        assert_eq!(got.unwrap().iter().map(|r| r.index).collect::<Vec<_>>(), [3]);
        assert_eq!(ids, ["c"], "a and b are not sent again");
        // A refusal refuses that return alone, and the same return may be tried again later.
        let (got, ids) =
            deliver(&[ret("d", jid), ret("e", jid)], &sent, |id| (id == "d").then(|| ReturnerError::Rejected("chat not found".into())))
                .await;
        let rejected = got.unwrap();
        assert_eq!((rejected.len(), rejected[0].index), (1, 0));
        assert!(rejected[0].reason.contains("return of d for 20261201120000000001: chat not found"), "{rejected:?}");
        assert_eq!(ids, ["e"]);
        assert_eq!(deliver(&[ret("d", jid)], &sent, |_| None).await.1, ["d"]);
        // `req` returns get a new jid each time: never taken for a return sent before.
        assert_eq!(deliver(&[ret("f", "req"), ret("f", "req")], &sent, |_| None).await.1, ["f", "f"]);
    }

    #[test]
    fn pformat_lines_sort_and_wrap_as_pprint_does() {
        let ret = json!({"id": "m", "fun": "f", "fun_args": [], "jid": "1", "return": {"b": 1, "a": "x".repeat(90)}});
        let text = salt_lines_pformat(ret.as_object().unwrap(), "\r\n");
        assert!(text.ends_with(&format!("return: {{'a': '{}',\n 'b': 1}}\r\n", "x".repeat(90))), "{text}");
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
