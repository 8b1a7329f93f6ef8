//! Pure: Salt's highstate report of a return (`_generate_report`), and its text as YAML, JSON
//! or Salt's HTML tables (`_generate_html`), with its inline styles.
//!
//! The report is Salt's structure: a list of one-key maps, in order (`stats`, `job`,
//! `states`), a map's `__style__` naming how its row is coloured (failed red, changed green,
//! unchanged blue).

use serde_json::{json, Map, Value};

use salt_targeting::pystr::py_str;

use super::config::Format;
use crate::options::truthy;
use crate::Load;

/// When a report is made (Salt's `report_*` options).
#[derive(Debug, Clone, Copy)]
pub(crate) struct When {
    pub everything: bool,
    pub changes: bool,
    pub failures: bool,
}

/// A report of `ret`, or `None` when `when` asks for none; and whether a state failed.
pub(crate) fn report(ret: &Load, when: When) -> (Option<Vec<Value>>, bool) {
    let value = ret.get("return").unwrap_or(&Value::Null);
    let states = state_results(value);
    let (mut total, mut failed, mut changed, mut duration) = (0i64, 0i64, 0i64, 0.0f64);
    for (_, data) in states.iter().flatten() {
        total += 1;
        if !data.get("result").is_none_or(truthy) {
            failed += 1;
        }
        duration += data.get("duration").and_then(number).unwrap_or(0.0);
        if data.get("changes").is_some_and(truthy) {
            changed += 1;
        }
    }
    // A return that is not state results (a highstate that did not compile gives a list of
    // errors): failed when the job says so.
    if states.is_none() && (ret.get("success") == Some(&Value::Bool(false)) || ret.get("retcode").is_some_and(|c| c != &json!(0))) {
        failed = 1;
    }
    let unchanged = total - failed - changed;
    let wanted = when.everything || (when.changes && changed != 0) || (when.failures && failed != 0);
    if !wanted {
        return (None, failed != 0);
    }
    let field = |key: &str, default: Value| ret.get(key).cloned().unwrap_or(default);
    let mut report = vec![
        json!({"stats": [
            {"total": total},
            {"failed": failed, "__style__": "failed"},
            {"unchanged": unchanged, "__style__": "unchanged"},
            {"changed": changed, "__style__": "changed"},
            {"duration": duration},
        ]}),
        json!({"job": [
            {"function": field("fun", json!(""))},
            {"arguments": field("fun_args", json!(""))},
            {"jid": field("jid", json!(""))},
            {"success": field("success", json!(true))},
            {"retcode": field("retcode", json!(0))},
        ]}),
    ];
    match states {
        Some(states) => report.push(json!({"states": states_report(&states)})),
        None => report.push(json!({"return": py_str(value)})),
    }
    (Some(report), failed != 0)
}

/// The state results of a return, in the order they ran (`__run_num__`), if it is some: a map
/// of maps.
fn state_results(value: &Value) -> Option<Vec<(&String, &Map<String, Value>)>> {
    let map = value.as_object()?;
    let mut states: Vec<(&String, &Map<String, Value>)> = map.iter().map(|(k, v)| v.as_object().map(|v| (k, v))).collect::<Option<_>>()?;
    let run_num = |data: &Map<String, Value>| data.get("__run_num__").and_then(number).unwrap_or(0.0);
    // Stable, as Python's sorted.
    states.sort_by(|a, b| run_num(a.1).total_cmp(&run_num(b.1)));
    Some(states)
}

/// A number, or text that is one (Salt's `float(...)`, its failure skipped).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Salt's `_generate_states_report`: a row per state, styled by its outcome.
fn states_report(states: &[(&String, &Map<String, Value>)]) -> Vec<Value> {
    states
        .iter()
        .map(|(key, data)| {
            // `file_|-motd_|-/etc/motd_|-managed`: module, id, name, function.
            let parts: Vec<&str> = key.split("_|-").collect();
            let (module_function, state_id, name) = match parts.as_slice() {
                [module, id, name, function] => (format!("{module}.{function}"), id.to_string(), name.to_string()),
                _ => (String::new(), key.to_string(), String::new()),
            };
            let result = data.get("result").cloned().unwrap_or(json!(""));
            let mut single = vec![
                json!({"function": module_function}),
                json!({"name": name}),
                json!({"result": result}),
                json!({"duration": data.get("duration").cloned().unwrap_or(json!(0.0))}),
                json!({"comment": data.get("comment").cloned().unwrap_or(json!(""))}),
            ];
            let style = if !truthy(&result) {
                "failed"
            } else {
                match data.get("changes") {
                    Some(Value::Object(changes)) if !changes.is_empty() => {
                        single.push(json!({"changes": name_value(&Value::Object(changes.clone()))}));
                        "changed"
                    }
                    _ => "unchanged",
                }
            };
            if let Some(started) = data.get("start_time").filter(|s| truthy(s)) {
                single.push(json!({"started": started}));
            }
            let mut row = Map::new();
            row.insert(state_id, Value::Array(single));
            row.insert("__style__".into(), json!(style));
            Value::Object(row)
        })
        .collect()
}

/// Salt's `_dict_to_name_value`: a map as a list of one-key maps sorted by key, recursively.
fn name_value(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Array(
                keys.into_iter()
                    .map(|k| {
                        let value = if map[k].is_object() { name_value(&map[k]) } else { map[k].clone() };
                        json!({ k: value })
                    })
                    .collect(),
            )
        }
        other => other.clone(),
    }
}

/// The report as text in `format`.
pub(crate) fn render(report: &[Value], format: Format) -> Result<String, String> {
    let report = Value::Array(report.to_vec());
    match format {
        Format::Json => Ok(crate::json::dumps(&report)),
        Format::Yaml => serde_saphyr::to_string(&report).map_err(|e| format!("the YAML report: {e}")),
        Format::Html => {
            let mut out = String::from("<html>\n<body>\n");
            html_table(report.as_array().map(Vec::as_slice).unwrap_or_default(), &mut out, 0, "");
            out.push_str("</body>\n</html>\n");
            Ok(out)
        }
    }
}

/// Salt's `_STYLES`: email readers ignore `<style>`, so each cell carries its own.
fn style(name: &str) -> &'static str {
    match name {
        "_table" => "border-collapse:collapse;width:100%;",
        "_td" => "vertical-align:top;font-family:Helvetica,Arial,sans-serif;font-size:9pt;",
        "unchanged" => "color:blue;",
        "changed" => "color:green",
        "failed" => "color:red;",
        "first" => "border-top:0;border-left:1px solid #9e9e9e;",
        "first_first" => "border-top:0;border-left:0;",
        "notfirst_first" => "border-left:0;border-top:1px solid #9e9e9e;",
        "other" => "border-top:1px solid #9e9e9e;border-left:1px solid #9e9e9e;",
        "name" => "width:70pt;",
        "container" => "padding:0;",
        _ => "",
    }
}

/// Salt's `_lookup_style`: the element's style, then each class's.
fn lookup_style(element: &str, names: &[&str]) -> String {
    let mut out = style(&format!("_{element}")).to_string();
    for name in names {
        out.push_str(style(name));
    }
    out
}

/// Text in HTML (Salt printed keys raw: a key with `<` broke its table).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// Salt's `_generate_html_table`: a table of `data`'s items, nested tables for lists.
fn html_table(data: &[Value], out: &mut String, level: usize, extra_style: &str) {
    let (table, row, cell) = (format!("table{level}"), format!("row{level}"), format!("cell{level}"));
    out.push_str(&format!("<table style=\"{}\">\n", lookup_style("table", &[&table])));
    for (i, item) in data.iter().enumerate() {
        let (first_style, second_style) = if i == 0 { ("first_first", "first") } else { ("notfirst_first", "other") };
        let tr = format!("<tr style=\"{}\">\n", lookup_style("tr", &[&row]));
        match item {
            Value::Object(map) => {
                let item_style = map.get("__style__").and_then(Value::as_str).unwrap_or(extra_style);
                let mut entries = map.iter().filter(|(k, _)| *k != "__style__");
                // Salt shows a map of one entry (its name and value) and skips any other.
                let (Some((name, value)), None) = (entries.next(), entries.next()) else { continue };
                out.push_str(&tr);
                let name_style = lookup_style("td", &[&cell, first_style, "name", item_style]);
                out.push_str(&format!("<td style=\"{name_style}\">{}</td>\n", escape(name)));
                match value {
                    Value::Array(items) => {
                        out.push_str(&format!("<td style=\"{}\">\n", lookup_style("td", &[&cell, second_style, "container", item_style])));
                        html_table(items, out, level + 1, item_style);
                        out.push_str("</td>\n");
                    }
                    other => {
                        let value_style = lookup_style("td", &[&cell, second_style, "value", item_style]);
                        out.push_str(&format!("<td style=\"{value_style}\">{}</td>\n", escape(&py_str(other))));
                    }
                }
                out.push_str("</tr>\n");
            }
            Value::Array(items) => {
                out.push_str(&tr);
                out.push_str(&format!("<td style=\"{}\">\n", lookup_style("td", &[&cell, first_style, "container", extra_style])));
                html_table(items, out, level + 1, extra_style);
                out.push_str("</td>\n</tr>\n");
            }
            other => {
                out.push_str(&tr);
                let value_style = lookup_style("td", &[&cell, first_style, "value", extra_style]);
                out.push_str(&format!("<td style=\"{value_style}\">{}</td>\n</tr>\n", escape(&py_str(other))));
            }
        }
    }
    out.push_str("</table>\n");
}

/// Salt's `_sprinkle`: each `{name}` in `text` replaced by `grain(name)`.
pub(crate) fn sprinkle(text: &str, grain: impl Fn(&str) -> String) -> String {
    text.split('{')
        .flat_map(|part| part.split('}'))
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { grain(part) } else { part.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(result: Value, changes: Value, run: u64, duration: f64) -> Value {
        json!({"result": result, "changes": changes, "comment": "c", "duration": duration, "start_time": "12:00:00.000001",
               "__run_num__": run, "__sls__": "base", "name": "n", "__id__": "id"})
    }

    fn ret() -> Load {
        json!({"id": "web1", "jid": "20261201120000000001", "fun": "state.apply", "fun_args": [], "retcode": 2, "success": false,
               "return": {
                   "pkg_|-vim_|-vim_|-installed": state(json!(false), json!({}), 2, 3.5),
                   "file_|-motd_|-/etc/motd_|-managed": state(json!(true), json!({"diff": "+hi", "mode": {"old": "0644", "new": "0600"}}), 1, 10.25),
                   "service_|-sshd_|-sshd_|-running": state(json!(true), json!({}), 0, 1.0),
               }})
        .as_object()
        .unwrap()
        .clone()
    }

    const ALWAYS: When = When { everything: true, changes: true, failures: true };

    #[test]
    fn salts_report_of_state_results() {
        let (report, failed) = report(&ret(), ALWAYS);
        assert!(failed);
        let report = Value::Array(report.unwrap());
        assert_eq!(
            report[0],
            json!({"stats": [{"total": 3}, {"failed": 1, "__style__": "failed"}, {"unchanged": 1, "__style__": "unchanged"},
                             {"changed": 1, "__style__": "changed"}, {"duration": 14.75}]})
        );
        assert_eq!(report[1]["job"][0], json!({"function": "state.apply"}));
        let states = report[2]["states"].as_array().unwrap();
        let ids: Vec<&str> = states.iter().map(|s| s.as_object().unwrap().keys().next().unwrap().as_str()).collect();
        assert_eq!(ids, ["sshd", "motd", "vim"], "in run order");
        assert_eq!(states[1]["__style__"], "changed");
        assert_eq!(states[1]["motd"][5], json!({"changes": [{"diff": "+hi"}, {"mode": [{"new": "0600"}, {"old": "0644"}]}]}));
        assert_eq!(states[1]["motd"][0], json!({"function": "file.managed"}));
        assert_eq!(states[2]["__style__"], "failed");
        assert_eq!(states[0]["__style__"], "unchanged");
    }

    #[test]
    fn when_a_report_is_made() {
        let quiet = When { everything: false, changes: false, failures: false };
        assert!(report(&ret(), quiet).0.is_none());
        let mut ok = ret();
        ok["return"] = json!({"a_|-b_|-c_|-d": state(json!(true), json!({}), 0, 1.0)});
        assert!(report(&ok, When { everything: false, changes: true, failures: true }).0.is_none(), "nothing changed or failed");
        assert!(report(&ok, ALWAYS).0.is_some());
        // Not state results: failed as the job says, the return shown as it is.
        let mut broken = ret();
        broken["return"] = json!(["Rendering SLS 'base:web' failed"]);
        let (r, failed) = report(&broken, When { everything: false, changes: false, failures: true });
        assert!(failed);
        assert_eq!(r.unwrap()[2], json!({"return": "[\"Rendering SLS 'base:web' failed\"]"}));
    }

    #[test]
    fn html_is_salts_tables_with_escaped_text() {
        let report = vec![json!({"stats": [{"total": 1}, {"failed": 1, "__style__": "failed"}]}), json!({"note": "<b>&</b>"})];
        let html = render(&report, Format::Html).unwrap();
        assert!(html.starts_with("<html>\n<body>\n<table style=\"border-collapse:collapse;width:100%;\">\n<tr style=\"\">\n"), "{html}");
        assert!(html.contains("<td style=\"vertical-align:top;font-family:Helvetica,Arial,sans-serif;font-size:9pt;border-left:0;border-top:1px solid #9e9e9e;width:70pt;color:red;\">failed</td>"), "{html}");
        assert!(html.contains("&lt;b&gt;&amp;&lt;/b&gt;"), "{html}");
        assert!(html.ends_with("</table>\n</body>\n</html>\n"));
    }

    #[test]
    fn json_and_yaml() {
        let report = vec![json!({"stats": [{"total": 1}, {"duration": 1.5}]})];
        assert_eq!(render(&report, Format::Json).unwrap(), "[{\"stats\": [{\"total\": 1}, {\"duration\": 1.5}]}]");
        let yaml = render(&report, Format::Yaml).unwrap();
        assert!(yaml.contains("stats:") && yaml.contains("total: 1") && yaml.contains("duration: 1.5"), "{yaml}");
    }

    #[test]
    fn grains_are_sprinkled() {
        let grain = |name: &str| match name {
            "id" => "web1".to_string(),
            _ => String::new(),
        };
        assert_eq!(sprinkle("/tmp/{id}-{nope}.rpt", grain), "/tmp/web1-.rpt");
        assert_eq!(sprinkle("plain", grain), "plain");
    }
}
