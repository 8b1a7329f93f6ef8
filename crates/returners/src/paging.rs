//! `get_jids` for any store that keeps its jobs in jid order (an SQL key, a Redis sorted set, an
//! etcd key range, a search sorted by jid): the store reads chunks ([`JobChunks`]), and this
//! walk applies the [`JobQuery`] in Rust — function, target and metadata filters with Salt's
//! `jobs.list_jobs` semantics, the jid range a time window becomes — and stops as soon as a
//! page is full, so the first page costs the same whatever the store holds.

use async_trait::async_trait;
use serde_json::Value;

use crate::{JobQuery, JobSummary, Result};

const MIN_CHUNK: usize = 64;
const MAX_CHUNK: usize = 4096;

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

/// One chunk of the walk, from a store: jobs with `lo <(=) jid < hi`, in jid order.
#[async_trait]
pub(crate) trait JobChunks: Sync {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>>;
}

/// `get_jids` for a store that reads its jobs in chunks (keyset paging on the jid). Filters are
/// applied here, and the walk stops as soon as `offset + limit` jobs matched, so the first page
/// costs the same whatever the table holds.
pub(crate) async fn get_jids(src: &dyn JobChunks, q: &JobQuery) -> Result<Vec<JobSummary>> {
    let want = q.limit.map(|l| q.offset.saturating_add(l));
    if want == Some(0) {
        return Ok(Vec::new());
    }
    let mut chunk = want.unwrap_or(MAX_CHUNK).clamp(MIN_CHUNK, MAX_CHUNK);
    let (mut lo, mut hi) = bounds(q);
    let mut lo_inclusive = true;
    let mut skipped = 0;
    let mut out = Vec::new();
    loop {
        let jobs = src.chunk(&lo, lo_inclusive, hi.as_deref(), q.oldest_first, chunk).await?;
        let last_chunk = jobs.len() < chunk;
        for job in jobs {
            // The next chunk starts past this jid.
            if q.oldest_first {
                lo = job.jid.clone();
                lo_inclusive = false;
            } else {
                hi = Some(job.jid.clone());
            }
            if !accepts(q, &job) {
                continue;
            }
            if skipped < q.offset {
                skipped += 1;
                continue;
            }
            out.push(job);
            if Some(out.len() + q.offset) == want {
                return Ok(out);
            }
        }
        if last_chunk {
            return Ok(out);
        }
        // Rows may be filtered out here: read more at a time.
        chunk = (chunk * 2).min(MAX_CHUNK);
    }
}
