//! Salt's Slack attachments for a return (3007's `slack_webhook_return.py`), as
//! `json.dumps(payload, ensure_ascii=False)` in the form field `payload`:
//! - the first attachment: `fallback` (the title), `color` `#272727`, `author_name` (the
//!   minion), `author_link` (this host), `author_icon`, `title` `Success: True|False` (by
//!   `retcode` 0), `text` (`Function:`, `Function Args:`, `JID:`, and for a state return
//!   `Total:` and `Duration:`);
//! - a state return (a mapping of states with `__id__`): `Unchanged: n` (good), `Changed: n`
//!   (warning), `Failed: n` (danger), the tasks (`<sls>.sls | <state id>`) as fields with
//!   `show_tasks`;
//! - any other return: `Return: <value>` (good or danger); a mapping as `\n` + YAML, anything
//!   else as Python's `str()`; cut past [`MAX_RETURN`] bytes, saying so.
//!
//! Titles take Salt's `{grain}` placeholders: `{id}` is the return's minion, `{localhost}`,
//! `{host}`, `{nodename}` and `{fqdn}` this host; other grains are not known here and show
//! empty (Salt filled them from the local minion's grains).

use serde_json::{json, Map, Value};

use super::config::SlackWebhookConfig;
use crate::http::form;
use crate::json::dumps;
use crate::notify::cut;
use crate::options::{hostname, truthy};
use salt_targeting::pystr::{py_repr, py_str};

/// How much of a return's text a message carries (Slack's limit on a message's text).
pub const MAX_RETURN: usize = 40_000;

/// What a return is shown as.
pub struct Report<'a> {
    pub id: &'a str,
    pub jid: &'a str,
    pub ret: &'a Map<String, Value>,
}

/// Salt's `_sprinkle`: `{grain}` replaced by the grains known here.
fn sprinkle(text: &str, id: &str) -> String {
    let parts: Vec<&str> = text.split('{').flat_map(|p| p.split('}')).collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 0 {
            out.push_str(part);
        } else {
            match *part {
                "id" => out.push_str(id),
                "localhost" | "host" | "nodename" | "fqdn" => out.push_str(&hostname()),
                _ => {}
            }
        }
    }
    out
}

/// Whether `value` is a state run's return (Salt's `_state_return`).
fn is_state_return(value: &Value) -> bool {
    value.as_object().and_then(|m| m.values().next()).and_then(Value::as_object).is_some_and(|first| first.contains_key("__id__"))
}

struct StateCounts {
    total: usize,
    changed: Vec<String>,
    failed: Vec<String>,
    duration_ms: f64,
}

/// Salt's `_process_state`: the states in run order, counted.
fn count_states(states: &Map<String, Value>) -> StateCounts {
    let mut sorted: Vec<(&String, &Value)> = states.iter().collect();
    sorted.sort_by(|a, b| {
        let run = |v: &Value| v.get("__run_num__").and_then(Value::as_f64).unwrap_or(0.0);
        run(a.1).total_cmp(&run(b.1))
    });
    let mut counts = StateCounts { total: 0, changed: Vec::new(), failed: Vec::new(), duration_ms: 0.0 };
    for (key, data) in sorted {
        // module_|-id_|-name_|-function
        let state_id = key.split("_|-").nth(1).unwrap_or(key);
        let sls = data.get("__sls__").map(py_str).unwrap_or_else(|| "None".into());
        let task = format!("{sls}.sls | {state_id}");
        if !data.get("result").map(truthy).unwrap_or(true) {
            counts.failed.push(task.clone());
        }
        if data.get("changes").is_some_and(truthy) {
            counts.changed.push(task);
        }
        counts.total += 1;
        counts.duration_ms += match data.get("duration") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(0.0),
            _ => 0.0,
        };
    }
    counts
}

fn fields(tasks: &[String]) -> Value {
    Value::Array(tasks.iter().map(|t| json!({"value": t, "short": false})).collect())
}

/// The attachments payload for a return, as Salt builds it.
pub fn payload(report: &Report<'_>, config: &SlackWebhookConfig) -> Value {
    let ret = report.ret;
    let success = ret.get("retcode").and_then(Value::as_i64) == Some(0);
    let value = ret.get("return").unwrap_or(&Value::Null);
    let mut text = format!("Function: {}\n", ret.get("fun").map(py_str).unwrap_or_else(|| "None".into()));
    if let Some(args) = ret.get("fun_args").and_then(Value::as_array).filter(|a| !a.is_empty()) {
        let shown: Vec<Value> = args.iter().map(|a| Value::String(py_str(a))).collect();
        text.push_str(&format!("Function Args: {}\n", py_repr(&Value::Array(shown))));
    }
    text.push_str(&format!("JID: {}\n", report.jid));
    let states = is_state_return(value).then(|| count_states(value.as_object().expect("a state return is a mapping")));
    if let Some(c) = &states {
        text.push_str(&format!("Total: {}\n", c.total));
        text.push_str(&format!("Duration: {:.2} secs", c.duration_ms / 1000.0));
    }
    let title = sprinkle(if success { &config.success_title } else { &config.failure_title }, report.id);
    let mut attachments = vec![json!({
        "fallback": title,
        "color": "#272727",
        "author_name": report.id,
        "author_link": sprinkle("{localhost}", report.id),
        "author_icon": config.author_icon,
        "title": format!("Success: {}", if success { "True" } else { "False" }),
        "text": text,
    })];
    match states {
        Some(c) => {
            let unchanged = c.total.saturating_sub(c.failed.len() + c.changed.len());
            attachments.push(json!({"color": "good", "title": format!("Unchanged: {unchanged}")}));
            let mut changed = json!({"color": "warning", "title": format!("Changed: {}", c.changed.len())});
            let mut failed = json!({"color": "danger", "title": format!("Failed: {}", c.failed.len())});
            if config.show_tasks && !c.changed.is_empty() {
                changed["fields"] = fields(&c.changed);
            }
            if config.show_tasks && !c.failed.is_empty() {
                failed["fields"] = fields(&c.failed);
            }
            attachments.push(changed);
            attachments.push(failed);
        }
        None => {
            let shown = match value {
                Value::Object(_) => format!("\n{}", salt_output::yaml_dump(value, false, 2)),
                other => py_str(other),
            };
            attachments.push(json!({
                "color": if success { "good" } else { "danger" },
                "title": format!("Return: {}", cut(&shown, MAX_RETURN)),
            }));
        }
    }
    json!({"attachments": attachments})
}

/// The form body Salt posts: `payload=<the JSON>`.
pub fn body(payload: &Value) -> String {
    form(&[("payload", &dumps(payload))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Lookup;

    fn config(show_tasks: bool) -> SlackWebhookConfig {
        let o = json!({"slack_webhook": {"webhook": "T/B/X", "show_tasks": show_tasks, "author_icon": "https://i/x.png"}});
        SlackWebhookConfig::from_lookup(&Lookup::new(o.as_object().unwrap())).unwrap()
    }

    fn report_of(ret: &Value, show_tasks: bool) -> Value {
        let ret = ret.as_object().unwrap();
        payload(&Report { id: ret["id"].as_str().unwrap(), jid: ret["jid"].as_str().unwrap(), ret }, &config(show_tasks))
    }

    #[test]
    fn a_plain_return() {
        let ret = json!({"id": "web1", "jid": "20261201120000000001", "fun": "cmd.run", "fun_args": ["echo hi", {"a": 1}],
                         "return": "hi", "retcode": 0});
        let p = report_of(&ret, false);
        let first = &p["attachments"][0];
        assert_eq!(first["fallback"], "web1 | Succeeded");
        assert_eq!(first["title"], "Success: True");
        assert_eq!(first["text"], "Function: cmd.run\nFunction Args: ['echo hi', \"{'a': 1}\"]\nJID: 20261201120000000001\n");
        assert_eq!(p["attachments"][1], json!({"color": "good", "title": "Return: hi"}));
        let failed = report_of(&json!({"id": "w", "jid": "20261201120000000001", "fun": "f", "return": {"b": [1]}, "retcode": 1}), false);
        assert_eq!(failed["attachments"][0]["fallback"], "w | Failed");
        assert_eq!(failed["attachments"][1], json!({"color": "danger", "title": "Return: \nb:\n- 1\n"}));
    }

    #[test]
    fn a_state_return_counts_its_states() {
        let st = |run: i64, result: Value, changes: Value| json!({"__id__": "x", "__sls__": "web", "__run_num__": run, "result": result, "changes": changes, "duration": 1500.0});
        let ret = json!({"id": "web1", "jid": "20261201120000000001", "fun": "state.apply", "retcode": 2, "return": {
            "pkg_|-nginx_|-nginx_|-installed": st(0, json!(true), json!({})),
            "file_|-conf_|-/etc/x_|-managed": st(1, json!(true), json!({"diff": "+"})),
            "service_|-svc_|-nginx_|-running": st(2, json!(false), json!({})),
        }});
        let p = report_of(&ret, true);
        let a = &p["attachments"];
        assert!(a[0]["text"].as_str().unwrap().ends_with("Total: 3\nDuration: 4.50 secs"), "{}", a[0]["text"]);
        assert_eq!(a[1], json!({"color": "good", "title": "Unchanged: 1"}));
        assert_eq!(a[2], json!({"color": "warning", "title": "Changed: 1", "fields": [{"value": "web.sls | conf", "short": false}]}));
        assert_eq!(a[3], json!({"color": "danger", "title": "Failed: 1", "fields": [{"value": "web.sls | svc", "short": false}]}));
        assert!(report_of(&ret, false)["attachments"][2].get("fields").is_none());
    }

    #[test]
    fn the_body_is_a_form_with_the_json() {
        let b = body(&json!({"attachments": [{"title": "a&b ✓"}]}));
        assert_eq!(b, "payload=%7B%22attachments%22%3A+%5B%7B%22title%22%3A+%22a%26b+%E2%9C%93%22%7D%5D%7D");
    }
}
