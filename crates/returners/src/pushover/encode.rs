//! A return as a Pushover message: Salt's text (`id`, `function`, `function args`, `jid`,
//! `return` lines ended by `\r\n`, the `return` as `pprint.pformat` shows it), cut to what
//! `messages.json` takes, and the form of the request, with only the options that are set.

use serde_json::Value;

use super::config::PushoverConfig;
use crate::notify;
use crate::Load;

/// Pushover takes a message of at most 1024 characters. The text is cut at 1024 bytes, so it
/// is within that count whatever its script.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Salt's message for `ret`, cut to [`MAX_MESSAGE_BYTES`] with a last line saying so.
pub fn message(ret: &Load) -> String {
    notify::cut(
        &notify::salt_lines_showing(ret, "\r\n", &salt_output::pformat(ret.get("return").unwrap_or(&Value::Null), 1)),
        MAX_MESSAGE_BYTES,
    )
    .into_owned()
}

/// The `messages.json` form: `token`, `user`, `message`, then each option that is set (Salt
/// sent the unset ones as the text `None`, which Pushover refuses).
pub fn form(config: &PushoverConfig, message: &str) -> String {
    let numbers =
        [("priority", config.priority.map(i64::from)), ("expire", config.expire.map(i64::from)), ("retry", config.retry.map(i64::from))];
    let numbers: Vec<(&str, String)> = numbers.into_iter().filter_map(|(k, v)| Some((k, v?.to_string()))).collect();
    let mut fields = vec![("token", config.token.expose()), ("user", config.user.as_str()), ("message", message)];
    for (name, value) in [("title", &config.title), ("device", &config.device), ("sound", &config.sound)] {
        if let Some(value) = value {
            fields.push((name, value));
        }
    }
    fields.extend(numbers.iter().map(|(k, v)| (*k, v.as_str())));
    crate::http::form(&fields)
}

/// Whether a 2xx answer took the message (`{"status": 1, ...}`); else Pushover's words
/// (`errors`).
pub fn taken(answer: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(answer).map_err(|e| format!("the answer is not Pushover's JSON ({e})"))?;
    if answer.get("status").and_then(Value::as_i64) == Some(1) {
        return Ok(());
    }
    let errors: Vec<&str> =
        answer.get("errors").and_then(Value::as_array).map(|e| e.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    Err(if errors.is_empty() { "the answer's status is not 1".to_string() } else { errors.join("; ") })
}

/// Whether `sound` is among those a `sounds.json` answer lists.
pub fn has_sound(answer: &[u8], sound: &str) -> bool {
    serde_json::from_slice::<Value>(answer).ok().and_then(|a| a.get("sounds")?.as_object().map(|s| s.contains_key(sound))).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Lookup;
    use serde_json::json;

    fn config(v: Value) -> PushoverConfig {
        PushoverConfig::from_lookup(&Lookup::new(v.as_object().unwrap())).unwrap()
    }

    #[test]
    fn salts_text_with_pprint() {
        let ret = json!({"id": "web1", "fun": "test.arg", "fun_args": ["a", 1], "jid": "20261201120000000001",
                         "return": {"zeta": 1, "alpha": [true, null]}});
        assert_eq!(
            message(ret.as_object().unwrap()),
            "id: web1\r\nfunction: test.arg\r\nfunction args: ['a', 1]\r\njid: 20261201120000000001\r\nreturn: {'alpha': [True, None], 'zeta': 1}\r\n"
        );
        let big = json!({"id": "m", "fun": "f", "fun_args": [], "jid": "20261201120000000001", "return": "日本".repeat(1000)});
        let m = message(big.as_object().unwrap());
        assert!(m.len() <= MAX_MESSAGE_BYTES && m.chars().count() <= 1024 && m.contains("[cut: "));
    }

    #[test]
    fn only_set_options_are_sent_and_numbers_as_numbers() {
        let c = config(json!({"pushover.user": "u1", "pushover.token": "t1"}));
        assert_eq!(form(&c, "hi"), "token=t1&user=u1&message=hi");
        let c = config(json!({"pushover": {"user": "u1", "token": "t1", "title": "Salt", "device": "phone", "sound": "siren",
                                           "priority": "2", "retry": 30, "expire": 3600}}));
        assert_eq!(form(&c, "hi"), "token=t1&user=u1&message=hi&title=Salt&device=phone&sound=siren&priority=2&expire=3600&retry=30");
    }

    #[test]
    fn pushovers_answers() {
        assert_eq!(taken(br#"{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}"#), Ok(()));
        assert_eq!(
            taken(br#"{"user":"invalid","errors":["user identifier is invalid"],"status":0,"request":"5042853c"}"#),
            Err("user identifier is invalid".into())
        );
        assert!(has_sound(br#"{"sounds":{"pushover":"Pushover (default)","siren":"Siren"},"status":1}"#, "siren"));
        assert!(!has_sound(br#"{"sounds":{"pushover":"Pushover (default)"},"status":1}"#, "siren"));
    }
}
