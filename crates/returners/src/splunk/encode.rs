//! Salt's HEC event, as `json.dumps` wrote it: `{"time": "<epoch seconds as text>", "index",
//! "sourcetype", "event": <the return>, "host"}`, keys in that order. `index` and `sourcetype`
//! are left out when unset (Salt sent `null`, which HEC reads as a wrong index), so the
//! token's defaults apply. Many events go in one request, one JSON object a line (HEC reads
//! concatenated objects).

use serde_json::{Map, Value};

use super::config::SplunkConfig;
use crate::json::{dumps, dumps_map};
use crate::record::{describe, ReturnRecord};
use crate::Event;

/// One event ready to send, with the return it carries (if it is one) for rejections and
/// duplicate checks.
#[derive(Debug, Clone)]
pub struct HecEvent {
    /// `(jid, minion id)` of a return; `None` for a Salt event.
    pub key: Option<(String, String)>,
    pub text: String,
}

impl HecEvent {
    /// A return as Salt sends it: `event` is the whole return (settings redacted).
    pub fn of_return(record: &ReturnRecord<'_>, time: u64, config: &SplunkConfig) -> HecEvent {
        HecEvent { key: Some((record.jid.clone(), record.id.to_string())), text: wrap(&dumps_map(&record.full), time, config) }
    }

    /// A Salt event: `event` is `{"tag": ..., "data": ...}`, as Salt's `event_return` passes it.
    pub fn of_event(event: &Event, time: u64, config: &SplunkConfig) -> HecEvent {
        let data = match &event.data {
            Value::Object(map) => dumps_map(map),
            other => dumps(other),
        };
        let text = format!("{{\"tag\": {}, \"data\": {data}}}", dumps(&Value::String(event.tag.clone())));
        HecEvent { key: None, text: wrap(&text, time, config) }
    }

    pub fn describe(&self) -> String {
        match &self.key {
            Some((jid, id)) => describe(id, jid),
            None => "event".to_string(),
        }
    }
}

/// The HEC envelope around `event` (JSON text).
fn wrap(event: &str, time: u64, config: &SplunkConfig) -> String {
    let text = |s: &str| dumps(&Value::String(s.to_string()));
    let mut out = String::with_capacity(event.len() + 128);
    out.push_str(&format!("{{\"time\": \"{time}\""));
    if let Some(index) = &config.index {
        out.push_str(&format!(", \"index\": {}", text(index)));
    }
    if let Some(sourcetype) = &config.sourcetype {
        out.push_str(&format!(", \"sourcetype\": {}", text(sourcetype)));
    }
    out.push_str(", \"event\": ");
    out.push_str(event);
    out.push_str(&format!(", \"host\": {}}}", text(&config.host)));
    out
}

/// The body of one request: the events, one a line.
pub fn body<'a>(events: impl IntoIterator<Item = &'a HecEvent>) -> Vec<u8> {
    let mut out = Vec::new();
    for event in events {
        out.extend_from_slice(event.text.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The events of a request body, each as a map (for tests and the stand-in: HEC's reading).
pub fn parse_body(body: &[u8]) -> Result<Vec<Map<String, Value>>, String> {
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .map(|v| match v {
            Ok(Value::Object(m)) => Ok(m),
            Ok(other) => Err(format!("not an object: {other}")),
            Err(e) => Err(e.to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(index: Option<&str>) -> SplunkConfig {
        let mut section = json!({"token": "t", "indexer": "h", "sourcetype": "salt", "host": "web1"});
        if let Some(index) = index {
            section["index"] = json!(index);
        }
        SplunkConfig::from_opts(Some(json!({"splunk_http_forwarder": section}).as_object().unwrap())).unwrap()
    }

    #[test]
    fn a_return_is_salts_event_text() {
        let ret = json!({"id": "m1", "jid": "20240510093000000001", "fun": "test.ping", "return": true,
                         "ret_kwargs": {"password": "hunter2"}});
        let ret = ret.as_object().unwrap().clone();
        let record = ReturnRecord::parse(&ret).unwrap().unwrap();
        let e = HecEvent::of_return(&record, 1733000000, &config(Some("main")));
        assert!(
            e.text.starts_with(
                r#"{"time": "1733000000", "index": "main", "sourcetype": "salt", "event": {"id": "m1", "jid": "20240510093000000001", "fun": "test.ping", "return": true, "ret_kwargs": "#
            ),
            "{}",
            e.text
        );
        assert!(e.text.ends_with(r#", "host": "web1"}"#) && !e.text.contains("hunter2"), "{}", e.text);
        let without = HecEvent::of_return(&record, 1, &config(None));
        assert!(without.text.starts_with(r#"{"time": "1", "sourcetype": "salt", "event": "#), "{}", without.text);
        assert_eq!(e.describe(), "return of m1 for 20240510093000000001");
    }

    #[test]
    fn an_event_and_a_body_read_back() {
        let ev = Event { tag: "salt/job/1/new".into(), data: json!({"fun": "test.ping", "emoji": "😀"}) };
        let e = HecEvent::of_event(&ev, 7, &config(None));
        let parsed = parse_body(&body([&e, &e])).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0]["event"], json!({"tag": "salt/job/1/new", "data": {"fun": "test.ping", "emoji": "😀"}}));
        assert_eq!((parsed[0]["time"].as_str(), parsed[0]["host"].as_str()), (Some("7"), Some("web1")));
    }
}
