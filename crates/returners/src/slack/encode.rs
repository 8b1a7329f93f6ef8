//! Salt's Slack message: a code block of the lines `id`, `function`, `function args`, `jid`,
//! `return`, each ended by `\r\n`, values as Python's `str()` shows them, the return as
//! `pprint.pformat` (or YAML with `yaml_format`), filtered to the states that changed or
//! failed (`changes`) or failed (`only_show_failed`). Posted as the form fields `channel`,
//! `username`, `as_user`, `text`. Slack truncates a text past 40,000 characters; a longer
//! message is cut here, and says so.

use serde_json::{Map, Value};

use super::config::SlackConfig;
use crate::http::form;
use crate::notify::{cut, salt_lines_showing};
use crate::options::truthy;
use crate::record::ReturnRecord;

/// Slack's limit on a message's text, in characters (we count bytes, which is never fewer).
pub const MAX_TEXT: usize = 40_000;
/// The code block's fences.
const FENCE: &str = "```";

/// The return as Salt shows it, states filtered as the options say.
fn shown_return(value: &Value, config: &SlackConfig) -> String {
    let keep = |state: &Value| {
        let result_true = state.get("result") == Some(&Value::Bool(true));
        if config.only_show_failed {
            !result_true
        } else {
            !result_true || state.get("changes").is_some_and(truthy)
        }
    };
    let filtered;
    let value = match value {
        Value::Object(states) if config.changes || config.only_show_failed => {
            filtered = Value::Object(states.iter().filter(|(_, s)| keep(s)).map(|(k, v)| (k.clone(), v.clone())).collect::<Map<_, _>>());
            &filtered
        }
        other => other,
    };
    if config.yaml_format {
        salt_output::yaml_dump(value, false, 2)
    } else {
        salt_output::pformat(value, 1)
    }
}

/// The message text for a return: the code block, cut to Slack's limit.
pub fn text(record: &ReturnRecord<'_>, config: &SlackConfig) -> String {
    let lines = salt_lines_showing(&record.full, "\r\n", &shown_return(record.value, config));
    format!("{FENCE}{}{FENCE}", cut(&lines, MAX_TEXT - 2 * FENCE.len()))
}

/// The `chat.postMessage` form body for `text`.
pub fn body(text: &str, config: &SlackConfig) -> String {
    let as_user = config.as_user.map(|b| if b { "true" } else { "false" });
    let mut pairs = vec![("channel", config.channel.as_str())];
    if let Some(username) = &config.username {
        pairs.push(("username", username));
    }
    if let Some(as_user) = as_user {
        pairs.push(("as_user", as_user));
    }
    pairs.push(("text", text));
    form(&pairs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Lookup;
    use serde_json::json;

    fn config(extra: Value) -> SlackConfig {
        let mut o = json!({"slack": {"api_key": "k", "username": "salt"}});
        for (k, v) in extra.as_object().unwrap() {
            o["slack"][k] = v.clone();
        }
        SlackConfig::from_lookup(&Lookup::new(o.as_object().unwrap())).unwrap()
    }

    fn state(result: bool, changes: Value) -> Value {
        json!({"result": result, "changes": changes, "comment": "c", "__id__": "x"})
    }

    #[test]
    fn salts_text_and_form() {
        let ret = json!({"id": "web1", "fun": "cmd.run", "fun_args": ["echo hi"], "jid": "20261201120000000001",
                         "return": {"b": 1, "a": [true, null]}});
        let ret = ret.as_object().unwrap().clone();
        let record = ReturnRecord::parse(&ret).unwrap().unwrap();
        let t = text(&record, &config(json!({})));
        assert_eq!(
            t,
            "```id: web1\r\nfunction: cmd.run\r\nfunction args: ['echo hi']\r\njid: 20261201120000000001\r\nreturn: {'a': [True, None], 'b': 1}\r\n```"
        );
        assert_eq!(body("x y", &config(json!({"as_user": true}))), "channel=%23general&username=salt&as_user=true&text=x+y");
        let yaml = text(&record, &config(json!({"yaml_format": true})));
        assert!(yaml.contains("return: a:\n- true\n- null\nb: 1\n\r\n```"), "{yaml:?}");
    }

    #[test]
    fn changes_and_only_show_failed_filter_the_states() {
        let states = json!({"ok": state(true, json!({})), "changed": state(true, json!({"diff": "x"})), "failed": state(false, json!({}))});
        let show = |extra| {
            let ret = json!({"id": "m", "jid": "20261201120000000001", "fun": "state.apply", "return": states.clone()});
            let ret = ret.as_object().unwrap().clone();
            let record = ReturnRecord::parse(&ret).unwrap().unwrap();
            text(&record, &config(extra))
        };
        let changes = show(json!({"changes": true}));
        assert!(changes.contains("'changed'") && changes.contains("'failed'") && !changes.contains("'ok'"), "{changes}");
        let failed = show(json!({"only_show_failed": true}));
        assert!(!failed.contains("'changed'") && failed.contains("'failed'") && !failed.contains("'ok'"), "{failed}");
    }

    #[test]
    fn a_long_return_is_cut_within_slacks_limit_and_says_so() {
        let ret = json!({"id": "m", "jid": "20261201120000000001", "fun": "cmd.run", "return": "x".repeat(100_000)});
        let ret = ret.as_object().unwrap().clone();
        let record = ReturnRecord::parse(&ret).unwrap().unwrap();
        let t = text(&record, &config(json!({})));
        assert!(t.len() <= MAX_TEXT && t.contains("[cut: ") && t.ends_with("sent]```"), "{}", &t[t.len() - 80..]);
    }
}
