//! Salt's Mattermost message: a code block of the lines `id`, `function`, `function args`,
//! `jid`, `return` (values as Python's `str()`), each ended by `\r\n`; for an event, `tag:`
//! and a line `<key>: <value>` per field of its data. Posted as the form field `payload`
//! holding `{"channel", "username", "text"}` (channel and username when set), URL-encoded as a
//! form must be (Salt sent the JSON raw under a form content type, so a `&` or `+` in a
//! return broke the message). Mattermost splits a text past its post size (16,383 characters
//! by default) into several posts; a message is cut to that size here, saying so.

use serde_json::{json, Map, Value};

use super::config::MattermostConfig;
use crate::http::form;
use crate::json::dumps;
use crate::notify::{cut, salt_lines};
use crate::Event;
use salt_targeting::pystr::py_str;

/// Mattermost's default largest post, in characters (we count bytes, never fewer).
pub const MAX_TEXT: usize = 16_383;
const FENCE: &str = "```";

fn fenced(lines: &str) -> String {
    format!("{FENCE}{}{FENCE}", cut(lines, MAX_TEXT - 2 * FENCE.len()))
}

/// The text for a return.
pub fn return_text(ret: &Map<String, Value>) -> String {
    fenced(&salt_lines(ret, "\r\n"))
}

/// The text for an event.
pub fn event_text(event: &Event) -> String {
    let mut lines = format!("tag: {}\r\n", event.tag);
    if let Value::Object(data) = &event.data {
        for (key, value) in data {
            lines.push_str(&format!("{key}: {}\r\n", py_str(value)));
        }
    }
    fenced(&lines)
}

/// The form body: `payload=<the JSON, URL-encoded>`.
pub fn body(text: &str, config: &MattermostConfig) -> String {
    let mut payload = Map::new();
    if let Some(channel) = &config.channel {
        payload.insert("channel".into(), json!(channel));
    }
    if let Some(username) = &config.username {
        payload.insert("username".into(), json!(username));
    }
    payload.insert("text".into(), json!(text));
    form(&[("payload", &dumps(&Value::Object(payload)))])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_text_and_an_encoded_body() {
        let ret = json!({"id": "web1", "fun": "cmd.run", "fun_args": ["a&b"], "jid": "20261201120000000001", "return": {"ok": true}});
        let t = return_text(ret.as_object().unwrap());
        assert_eq!(
            t,
            "```id: web1\r\nfunction: cmd.run\r\nfunction args: ['a&b']\r\njid: 20261201120000000001\r\nreturn: {'ok': True}\r\n```"
        );
        let e = event_text(&Event { tag: "salt/key".into(), data: json!({"act": "accept", "id": "m1"}) });
        assert_eq!(e, "```tag: salt/key\r\nact: accept\r\nid: m1\r\n```");
        let o = json!({"mattermost": {"hook": "h", "api_url": "https://mm", "channel": "ops"}});
        let c = MattermostConfig::from_lookup(&crate::options::Lookup::new(o.as_object().unwrap())).unwrap();
        assert_eq!(body("a&b+c", &c), "payload=%7B%22channel%22%3A+%22ops%22%2C+%22text%22%3A+%22a%26b%2Bc%22%7D");
    }
}
