//! A return as a HipChat room message: Salt's text (`id`, `function`, `function args`, `jid`,
//! `return` lines ended by `\r\n`, the `return` as `pprint.pformat` shows it), cut to what
//! HipChat takes, coloured `red` when the return failed; the request of each API version.

use serde_json::{json, Value};

use super::config::{ApiVersion, HipchatConfig};
use crate::notify;
use crate::Load;

/// HipChat takes a message of at most 10,000 characters (Salt cut it there silently). The
/// text is cut at 10,000 bytes, saying so.
pub const MAX_MESSAGE_BYTES: usize = 10_000;
/// v1's `from`: at most 15 characters (Salt cut it there too).
pub const MAX_FROM_CHARS: usize = 15;

/// One room message, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub color: String,
}

/// Salt's message for `ret`: its text, and `color` unless the return's `retcode` is not 0.
pub fn message(ret: &Load, config: &HipchatConfig) -> Message {
    let text = notify::cut(
        &notify::salt_lines_showing(ret, "\r\n", &salt_output::pformat(ret.get("return").unwrap_or(&Value::Null), 1)),
        MAX_MESSAGE_BYTES,
    )
    .into_owned();
    let ok = ret.get("retcode").and_then(Value::as_i64) == Some(0);
    Message { text, color: if ok { config.color.clone() } else { "red".into() } }
}

fn from(config: &HipchatConfig) -> String {
    config.from_name.as_deref().unwrap_or_default().chars().take(MAX_FROM_CHARS).collect()
}

/// v1's form, Salt's fields in Salt's order: `room_id`, `from`, `message`, `message_format`,
/// `color`, `notify` (0 or 1).
pub fn v1_form(config: &HipchatConfig, message: &Message) -> String {
    let from = from(config);
    crate::http::form(&[
        ("room_id", config.room_id.as_str()),
        ("from", from.as_str()),
        ("message", message.text.as_str()),
        ("message_format", "text"),
        ("color", message.color.as_str()),
        ("notify", if config.notify { "1" } else { "0" }),
    ])
}

/// v2's JSON body: the same fields (`from` only when set; v2 shows it beside the token's
/// label), `notify` a boolean.
pub fn v2_body(config: &HipchatConfig, message: &Message) -> String {
    let mut body = json!({"room_id": config.room_id, "message": message.text, "message_format": "text",
                          "color": message.color, "notify": config.notify});
    if config.from_name.is_some() {
        body["from"] = json!(from(config));
    }
    body.to_string()
}

/// The message endpoint below the server `base` (ending in `/`), for the API version; the
/// room in v2's path is percent-encoded (a room name may hold spaces or `/`).
pub fn endpoint(base: &reqwest::Url, config: &HipchatConfig) -> reqwest::Url {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().expect("an http(s) URL has a path");
        path.pop_if_empty();
        match config.api_version {
            ApiVersion::V1 => path.extend(["v1", "rooms", "message"]),
            ApiVersion::V2 => path.extend(["v2", "room", config.room_id.as_str(), "notification"]),
        };
    }
    url
}

/// Whether a v1 answer took the message (`{"status": "sent"}`); else HipChat's words.
pub fn v1_sent(answer: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(answer).map_err(|e| format!("the answer is not HipChat's JSON ({e})"))?;
    if answer.get("status").and_then(Value::as_str) == Some("sent") {
        return Ok(());
    }
    Err(answer.pointer("/error/message").and_then(Value::as_str).unwrap_or("the answer's status is not \"sent\"").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Lookup;

    fn config(v: Value) -> HipchatConfig {
        HipchatConfig::from_lookup(&Lookup::new(v.as_object().unwrap())).unwrap()
    }

    fn ret(retcode: i64) -> Load {
        json!({"id": "web1", "fun": "test.arg", "fun_args": [], "jid": "20261201120000000001", "return": {"b": 1, "a": 2}, "retcode": retcode})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn v1_is_salts_form() {
        let c = config(json!({"hipchat": {"room_id": "Ops", "api_key": "k", "api_version": "v1", "from_name": "salt-master@example.com"}}));
        let m = message(&ret(0), &c);
        assert_eq!(m.color, "yellow");
        assert_eq!(
            v1_form(&c, &m),
            "room_id=Ops&from=salt-master%40exa&message=id%3A+web1%0D%0Afunction%3A+test.arg%0D%0Afunction+args%3A+%5B%5D%0D%0Ajid%3A+20261201120000000001%0D%0Areturn%3A+%7B%27a%27%3A+2%2C+%27b%27%3A+1%7D%0D%0A&message_format=text&color=yellow&notify=0"
        );
        assert_eq!(endpoint(&c.api_url, &c).as_str(), "https://api.hipchat.com/v1/rooms/message");
    }

    #[test]
    fn v2_is_json_and_a_failure_is_red() {
        let c = config(json!({"hipchat": {"room_id": "Ops Room", "api_key": "k", "api_version": "v2", "notify": true}}));
        let m = message(&ret(1), &c);
        assert_eq!(m.color, "red");
        let body: Value = serde_json::from_str(&v2_body(&c, &m)).unwrap();
        assert_eq!(body, json!({"room_id": "Ops Room", "message": m.text, "message_format": "text", "color": "red", "notify": true}));
        assert_eq!(endpoint(&c.api_url, &c).as_str(), "https://api.hipchat.com/v2/room/Ops%20Room/notification");
    }

    #[test]
    fn a_long_return_is_cut_and_v1_answers_read() {
        let c = config(json!({"hipchat": {"room_id": "1", "api_key": "k", "api_version": "v2"}}));
        let mut r = ret(0);
        r.insert("return".into(), json!("x".repeat(20_000)));
        let m = message(&r, &c);
        assert!(m.text.len() <= MAX_MESSAGE_BYTES && m.text.contains("[cut: "));
        assert_eq!(v1_sent(br#"{"status":"sent"}"#), Ok(()));
        assert_eq!(v1_sent(br#"{"error":{"code":404,"type":"Not Found","message":"Room not found"}}"#), Err("Room not found".into()));
    }
}
