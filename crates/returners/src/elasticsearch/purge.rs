//! `clean_old_jobs`: removing the jobs past `keep_jobs_seconds` from the job cache's indices.
//!
//! A job is old when its jid's time is before the cut-off AND none of its returns was stored
//! after it (a long-running job keeps its load while returns still come in). Jobs go a page
//! at a time: the distinct jids before the cut-off (a composite aggregation over both indices,
//! so a job with returns but no load goes too), minus those with a recent return, deleted with
//! `_delete_by_query`.
//!
//! Why `_delete_by_query` and not an index per day dropped whole (the cheaper way to delete in
//! Elasticsearch): `keep_jobs_seconds` is any number of seconds (an hour, a week), a running job
//! must outlive its day, and Salt's index names have no day. Deleting a page of jobs by jid is
//! bounded work per call, and the master calls this every minute, so each call has little to
//! do. Salt's per-function and event indices are not touched (Salt never purged them either):
//! they are for dashboards, and age out by the cluster's own lifecycle policies.

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use super::{encode, Elasticsearch};
use crate::Result;

/// Jobs considered (and deleted) per round trip.
const PAGE: usize = 200;

pub(super) async fn clean_old_jobs(store: &Elasticsearch, keep: Duration) -> Result<u64> {
    // keep_jobs_seconds: 0 means keep forever.
    if keep.is_zero() {
        return Ok(0);
    }
    // A retention longer than the calendar: nothing is old.
    let Some(cut) = chrono::Duration::from_std(keep).ok().and_then(|d| Utc::now().checked_sub_signed(d)) else {
        return Ok(0);
    };
    let cut_jid = salt_proto::jid::jid_at(cut);
    let (jobs, returns) = (store.jobs_index().to_string(), store.returns_index());
    let both = [jobs.as_str(), returns.as_str()];
    // Returns stored a moment ago must count as recent.
    store.client.refresh(&both).await?;
    let mut removed = 0u64;
    let mut after = None;
    loop {
        let page = encode::distinct_page("jid", encode::jids_before(&cut_jid), PAGE, after.as_ref(), false);
        let (buckets, next) = encode::distinct_buckets(&store.client.search(&both, &page).await?).map_err(|e| store.unreadable(&e))?;
        let candidates: Vec<String> = buckets.iter().filter_map(encode::bucket_key).map(str::to_string).collect();
        if candidates.is_empty() {
            break;
        }
        let active = store.client.search(&[&returns], &encode::still_active(&candidates, cut)).await?;
        let active: HashSet<&str> = active
            .pointer("/aggregations/active/buckets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| b.get("key").and_then(Value::as_str))
            .collect();
        let old: Vec<String> = candidates.iter().filter(|jid| !active.contains(jid.as_str())).cloned().collect();
        if !old.is_empty() {
            store.client.delete_by_query(&both, &encode::of_jids(&old)).await?;
            removed += old.len() as u64;
        }
        if buckets.len() < PAGE {
            break;
        }
        after = Some(store.next_page(after.as_ref(), next.as_ref())?);
    }
    if removed > 0 {
        tracing::debug!(store = super::NAME, removed, "purged old jobs");
    }
    Ok(removed)
}
