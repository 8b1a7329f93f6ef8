//! The part of a [`JobQuery`] every SQL store applies in Rust while it walks the jid index in
//! chunks: function, target and metadata filters (Salt's `jobs.list_jobs` semantics), and the
//! jid range a time window becomes.

use serde_json::Value;

use crate::{JobQuery, JobSummary};

/// The CLI's polls, which `list_jobs_filter` leaves out.
pub(crate) const FIND_JOB: &str = "saltutil.find_job";

/// Salt filters on the formatted job, where an empty function shows as `unknown-function`.
fn shown_fun(fun: &str) -> &str {
    if fun.is_empty() {
        "unknown-function"
    } else {
        fun
    }
}

/// Salt's `search_target`: a glob matches a string target, or any id of a list target; a
/// missing target shows as `unknown-target`.
fn target_matches(tgt: &Value, globs: &[String]) -> bool {
    let any = |name: &str| globs.iter().any(|g| salt_targeting::fnmatch::fnmatch(name, g));
    match tgt {
        Value::String(s) if !s.is_empty() => any(s),
        Value::Array(ids) => ids.iter().filter_map(Value::as_str).any(any),
        Value::Null | Value::String(_) => any("unknown-target"),
        other => any(&other.to_string()),
    }
}

pub(crate) fn accepts(q: &JobQuery, job: &JobSummary) -> bool {
    if q.exclude_find_job && job.fun == FIND_JOB {
        return false;
    }
    if !q.functions.is_empty() && !q.functions.iter().any(|g| salt_targeting::fnmatch::fnmatch(shown_fun(&job.fun), g)) {
        return false;
    }
    if !q.targets.is_empty() && !target_matches(&job.tgt, &q.targets) {
        return false;
    }
    if let Some(wanted) = q.metadata.as_ref().filter(|m| !m.is_empty()) {
        let Some(Value::Object(md)) = &job.metadata else { return false };
        if !wanted.iter().any(|(k, v)| md.get(k) == Some(v)) {
            return false;
        }
    }
    true
}

/// The jid range of the query: `lo` inclusive, `hi` exclusive. Jids are fixed-width digit
/// strings, so their string order is time order.
pub(crate) fn bounds(q: &JobQuery) -> (String, Option<String>) {
    let jid = |t: chrono::NaiveDateTime| salt_proto::jid::jid_at(t.and_utc());
    (
        q.start_time.map(jid).unwrap_or_default(),
        // Inclusive end time: every jid of that microsecond, including `_<pid>` ones.
        q.end_time.map(|t| jid(t + chrono::Duration::microseconds(1))),
    )
}

