//! Salt's job formatting (`salt.utils.jid.format_job_instance` / `format_jid_instance`), shared
//! by every store and the jobs runner.

use serde_json::{Map, Value};

use crate::{JobSummary, Load};

/// The small fields of a publish load, as listings keep them.
pub fn summary_from_load(jid: &str, load: &Load) -> JobSummary {
    JobSummary {
        jid: jid.to_string(),
        fun: load.get("fun").and_then(Value::as_str).unwrap_or_default().to_string(),
        arg: match load.get("arg").or_else(|| load.get("fun_args")) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        },
        tgt: load.get("tgt").cloned().unwrap_or(Value::Null),
        tgt_type: load.get("tgt_type").and_then(Value::as_str).unwrap_or_default().to_string(),
        user: load.get("user").and_then(Value::as_str).unwrap_or_default().to_string(),
        metadata: metadata_of(load),
        end_time: None,
    }
}

/// Salt looks for metadata in the load, in its kwargs, or in a `__kwarg__` dict among the args.
pub fn metadata_of(load: &Load) -> Option<Value> {
    if let Some(md) = load.get("metadata") {
        return Some(md.clone());
    }
    if let Some(md) = load.get("kwargs").and_then(|k| k.get("metadata")) {
        return Some(md.clone());
    }
    load.get("arg").and_then(Value::as_array).and_then(|args| {
        args.iter().find_map(|a| {
            let m = a.as_object()?;
            (m.get("__kwarg__") == Some(&Value::Bool(true))).then(|| m.get("metadata").cloned()).flatten()
        })
    })
}

/// `format_job_instance`: Function, Arguments, Target, Target-type, User[, Metadata], with Salt's
/// defaults for missing fields.
pub fn job_instance(job: &JobSummary) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Function".into(), if job.fun.is_empty() { "unknown-function".into() } else { job.fun.clone().into() });
    m.insert("Arguments".into(), Value::Array(job.arg.clone()));
    m.insert(
        "Target".into(),
        match &job.tgt {
            Value::Null => "unknown-target".into(),
            Value::String(s) if s.is_empty() => "unknown-target".into(),
            other => other.clone(),
        },
    );
    m.insert("Target-type".into(), if job.tgt_type.is_empty() { "list".into() } else { job.tgt_type.clone().into() });
    m.insert("User".into(), if job.user.is_empty() { "root".into() } else { job.user.clone().into() });
    if let Some(md) = &job.metadata {
        m.insert("Metadata".into(), md.clone());
    }
    m
}

/// `format_jid_instance`: the job instance plus `StartTime` (and `EndTime` when known).
pub fn jid_instance(job: &JobSummary) -> Map<String, Value> {
    let mut m = job_instance(job);
    m.insert("StartTime".into(), salt_proto::jid::jid_to_time(&job.jid).into());
    if let Some(end) = &job.end_time {
        m.insert("EndTime".into(), end.clone().into());
    }
    m
}

/// `format_jid_instance_ext`: with `JID` as well.
pub fn jid_instance_ext(job: &JobSummary) -> Map<String, Value> {
    let mut m = jid_instance(job);
    m.insert("JID".into(), job.jid.clone().into());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn salt_defaults_and_order() {
        let load = json!({"fun": "cmd.run", "arg": ["ls /"], "tgt": "*", "tgt_type": "glob", "user": "root"});
        let job = summary_from_load("20261125003916657727", load.as_object().unwrap());
        let m = jid_instance(&job);
        assert_eq!(
            Value::Object(m),
            json!({"Function": "cmd.run", "Arguments": ["ls /"], "Target": "*", "Target-type": "glob", "User": "root", "StartTime": "2026, Nov 25 00:39:16.657727"})
        );
        let empty = summary_from_load("20261125003916657727", &Map::new());
        let m = job_instance(&empty);
        assert_eq!(m["Function"], "unknown-function");
        assert_eq!(m["Target"], "unknown-target");
        assert_eq!(m["Target-type"], "list");
        assert_eq!(m["User"], "root");
    }

    #[test]
    fn metadata_from_kwarg_dict() {
        let load = json!({"arg": [1, {"__kwarg__": true, "metadata": {"a": 1}}]});
        assert_eq!(metadata_of(load.as_object().unwrap()), Some(json!({"a": 1})));
    }
}
