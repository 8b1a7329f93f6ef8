//! A job's listing fields (`format::summary_from_load`) as a small JSON text, for the key-value
//! stores that keep it beside the load so that a listing never reads a load (a `req` job's
//! load is a whole return, maybe megabytes).

use serde_json::{Map, Value};

use crate::format::summary_from_load;
use crate::{JobSummary, Load};

/// The listing fields of `load`: `{"fun", "arg", "tgt", "tgt_type", "user"[, "metadata"]}`.
pub fn encode_summary(load: &Load) -> String {
    let s = summary_from_load("", load);
    let mut m = Map::new();
    m.insert("fun".into(), s.fun.into());
    m.insert("arg".into(), Value::Array(s.arg));
    m.insert("tgt".into(), s.tgt);
    m.insert("tgt_type".into(), s.tgt_type.into());
    m.insert("user".into(), s.user.into());
    if let Some(md) = s.metadata {
        m.insert("metadata".into(), md);
    }
    crate::json::dumps(&Value::Object(m))
}

/// A stored summary back as the job it lists; None when it is not one.
pub fn decode_summary(jid: &str, text: &str) -> Option<JobSummary> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) else { return None };
    let string = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some(JobSummary {
        jid: jid.to_string(),
        fun: string("fun"),
        arg: m.get("arg").and_then(Value::as_array).cloned().unwrap_or_default(),
        tgt: m.get("tgt").cloned().unwrap_or(Value::Null),
        tgt_type: string("tgt_type"),
        user: string("user"),
        metadata: m.get("metadata").cloned(),
        end_time: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_round_trip_without_the_big_fields() {
        let load = json!({"fun": "cmd.run", "arg": ["ls", {"__kwarg__": true, "metadata": {"a": 1}}], "tgt": ["w1", "w2"],
                          "tgt_type": "list", "user": "root", "ret": "", "big": "x".repeat(1000)});
        let load = load.as_object().unwrap();
        let text = encode_summary(load);
        assert!(!text.contains("xxx"), "{text}");
        let s = decode_summary("20240510093015123456", &text).unwrap();
        assert_eq!(s, summary_from_load("20240510093015123456", load));
        assert_eq!(decode_summary("j", "not json"), None);
    }
}
