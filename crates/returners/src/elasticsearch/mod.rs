//! `elasticsearch`: returns, jobs and events in Elasticsearch or OpenSearch (Salt's
//! `salt/returners/elasticsearch_return.py`, `saltext.elasticsearch` since 3008), over the REST
//! API with rustls.
//!
//! Salt's layout, unchanged (see [`encode`]): a return goes to `salt-<fun>` (`.` as `_`; with
//! `states_single_index`, `salt-state_apply`; `-YYYY.MM.DD` with `index_date`, then `-ordered`
//! with `states_order_output`), an alias of `<index>-v1` created with `number_of_shards` and
//! `number_of_replicas`; its document `{"@timestamp", "success", "retcode", "minion", "fun",
//! "jid", "counts", "data"}` with dots in keys made `_`; a job `{"jid", "load"}` with id jid in
//! `salt-master-job-cache`; an event `{"tag", "data"}` in `salt-master-event-cache`. Options
//! and connection settings: [`config`].
//!
//! Where we differ from Salt, on purpose:
//! - A complete job cache (Salt has `save_load` and `get_load` only): the job cache keeps each
//!   return as it came, in `<master_job_cache_index>-returns` (id `<jid>:<minion>`, unindexed
//!   `full_ret`), so `get_jid` (`jobs.lookup_jid`), `get_fun`, `get_minions`, a paged
//!   `get_jids` (sorted on the jid, never reading every job) and `clean_old_jobs` work. Job
//!   documents add the load's small fields as keywords, and both indices of the job cache are
//!   created with mappings that index only what is searched (no load or return can clash with
//!   another's field types). Salt's per-function documents are written as before; they are
//!   dynamically mapped, so the server refuses one whose field types clash with earlier ones
//!   (Salt loses that return): here the refusal is logged, and the return is in the job cache.
//! - The first load of a jid stays (Salt's master overwrote it with each return's load).
//! - Writes go in `_bulk` requests of bounded size, each document created once under an id of
//!   its own (`<jid>:<minion>` for a return, a digest for an event): a batch written twice
//!   stores nothing twice, so the spool can always retry. Salt wrote one request per return
//!   under random ids.
//! - Every event of a batch is indexed (Salt indexed only the last).
//! - `index_date` dates a return by its job (its jid), not by the writing day; `_orig_key`
//!   lists every dotted key of a map (Salt kept the last); a state return that is not a map of
//!   states, or a state without `__run_num__`, is stored (Salt's returner fails on it); an
//!   index name Elasticsearch refuses (capitals, `:`) has those characters made `_`.
//! - An index deleted while the store runs is created again (`require_alias`), rather than
//!   re-made by the server from the first document with guessed mappings.
//! - Searches see what was just written: a read refreshes the indices it searches (writes
//!   never force a refresh, so bursts of returns cost the cluster nothing).
//! - `doc_type` options are ignored (Elasticsearch 7 removed mapping types).
//! - Secrets under `kwargs`/`ret_kwargs` are redacted before a load, return or event is stored.

mod client;
pub mod config;
mod encode;
mod purge;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use futures::FutureExt;
use serde_json::{json, Map, Value};

pub use config::ElasticsearchConfig;

use crate::batch::{prepare_all, Indexed};
use crate::paging::JobChunks;
use crate::registry::{Entry, Store, JOB_CACHE_WITH_EVENTS};
use crate::{Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};
use client::Client;
use encode::{Doc, Outcome, Role};

pub const NAME: &str = "elasticsearch";

pub static ENTRY: Entry = Entry {
    name: NAME,
    // The calls Salt's SQL job caches have: the same set, on documents.
    calls: JOB_CACHE_WITH_EVENTS,
    open: |lookup| async move { Ok(Store::JobCache(Arc::new(Elasticsearch::open(lookup)?))) }.boxed(),
    schema: None,
};

/// Ids per page when a read first finds which documents it needs.
const IDS_PAGE: usize = 1000;
/// What `debug_returner_payload` logs of a document at most.
const DEBUG_PAYLOAD_CHARS: usize = 4096;

pub struct Elasticsearch {
    config: ElasticsearchConfig,
    client: Client,
}

impl Elasticsearch {
    /// Opens the store with the options `lookup` finds (see [`config`]). Nothing is sent yet,
    /// so a master starts while the cluster is down and the spool retries: see [`Sink::check`].
    pub fn open(lookup: &crate::options::Lookup<'_>) -> Result<Elasticsearch> {
        Self::open_with(ElasticsearchConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: ElasticsearchConfig) -> Result<Elasticsearch> {
        Ok(Elasticsearch { client: Client::new(&config)?, config })
    }

    pub fn config(&self) -> &ElasticsearchConfig {
        &self.config
    }

    fn jobs_index(&self) -> &str {
        &self.config.layout.master_job_cache_index
    }

    fn returns_index(&self) -> String {
        self.config.layout.returns_index()
    }

    /// Writes `docs` (their indices made sure of first) and adds to `rejected` the records
    /// whose documents the server refused; `describe` names a record in a rejection.
    async fn store(&self, docs: Vec<Doc>, describe: impl Fn(&Doc) -> String, rejected: &mut Vec<Rejection>) -> Result<()> {
        let mut refused = Vec::new();
        let mut pending = self.ensure_indices(docs, &mut refused).await?;
        // An index deleted since it was made (its documents come back `IndexGone`) is made
        // again once, and those documents written again.
        for attempt in 0..2 {
            if pending.is_empty() {
                break;
            }
            let outcomes = self.client.write(&pending).await?;
            let mut gone = Vec::new();
            for (doc, outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Outcome::Stored => {}
                    Outcome::Refused(why) => refused.push((doc, why)),
                    Outcome::IndexGone if attempt == 0 => gone.push(doc),
                    Outcome::IndexGone => {
                        return Err(ReturnerError::Unavailable(format!(
                            "{NAME}: index {} was deleted again as soon as it was made",
                            doc.index
                        )))
                    }
                    // `write` gives these as its error.
                    Outcome::RetryLater(why) => return Err(ReturnerError::Unavailable(format!("{NAME}: {why}"))),
                }
            }
            for doc in &gone {
                self.client.forget(&doc.index);
            }
            pending = self.ensure_indices(gone, &mut refused).await?;
        }
        for (doc, why) in refused {
            if doc.role == Role::PerFunction {
                // A view of a return the job cache keeps: the return is not lost.
                tracing::warn!(store = NAME, index = %doc.index, id = %doc.id, "Salt's per-function document was refused ({why}); the job cache keeps the return");
            } else if !rejected.iter().any(|r| r.index == doc.record) {
                rejected.push(Rejection { index: doc.record, reason: format!("{}: {why}", describe(&doc)) });
            }
        }
        rejected.sort_by_key(|r| r.index);
        Ok(())
    }

    /// Makes sure the indices of `docs` exist; the documents of an index the server refuses to
    /// make go to `refused`, the others are returned.
    async fn ensure_indices(&self, docs: Vec<Doc>, refused: &mut Vec<(Doc, String)>) -> Result<Vec<Doc>> {
        let mut cannot: HashMap<String, String> = HashMap::new();
        let mut seen = HashSet::new();
        for doc in &docs {
            if !seen.insert(doc.index.as_str()) {
                continue;
            }
            match self.client.ensure(&doc.index, encode::index_definition(doc.role, &self.config.layout)).await {
                Ok(()) => {}
                Err(ReturnerError::Rejected(why)) => {
                    cannot.insert(doc.index.clone(), why);
                }
                Err(e) => return Err(e),
            }
        }
        let mut ready = Vec::with_capacity(docs.len());
        for doc in docs {
            match cannot.get(&doc.index) {
                Some(why) => refused.push((doc, format!("cannot create index: {why}"))),
                None => ready.push(doc),
            }
        }
        Ok(ready)
    }

    fn debug_payload(&self, docs: &[Doc]) {
        if !self.config.debug_returner_payload {
            return;
        }
        for doc in docs.iter().filter(|d| d.role == Role::PerFunction) {
            let shown: String = doc.source.chars().take(DEBUG_PAYLOAD_CHARS).collect();
            tracing::debug!(store = NAME, index = %doc.index, "elasticsearch payload: {shown}");
        }
    }

    /// The `(id, stored size)` of every return of `jid`, in minion id order.
    async fn returns_of(&self, jid: &str) -> Result<Vec<(String, usize)>> {
        let returns = self.returns_index();
        let mut ids = Vec::new();
        let mut after = None;
        loop {
            let answer = self.client.search(&[&returns], &encode::job_returns_page(jid, IDS_PAGE, after.as_ref())).await?;
            let hits = encode::hits(&answer).map_err(|e| self.unreadable(&e))?;
            ids.extend(hits.iter().filter_map(encode::id_and_bytes));
            if hits.len() < IDS_PAGE {
                return Ok(ids);
            }
            after = Some(self.next_page(after.as_ref(), hits.last().and_then(|h| h.get("sort")))?);
        }
    }

    /// `{minion id: full_ret}` of the return documents `ids`.
    async fn full_returns(&self, ids: &[(String, usize)], into: &mut Map<String, Value>) -> Result<()> {
        for (_, mut source) in self.client.sources(&self.returns_index(), ids, None).await? {
            if let (Some(Value::String(id)), Some(full)) = (source.get("id").cloned(), source.get_mut("full_ret")) {
                into.insert(id, full.take());
            }
        }
        Ok(())
    }

    /// The distinct values of `field` among the returns `query` matches, a page at a time;
    /// with `latest`, each value's latest return (its id and size).
    async fn distinct(&self, field: &str, query: Value, latest: bool) -> Result<Vec<(String, Option<(String, usize)>)>> {
        let returns = self.returns_index();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let body = encode::distinct_page(field, query.clone(), IDS_PAGE, after.as_ref(), latest);
            let answer = self.client.search(&[&returns], &body).await?;
            let (buckets, next) = encode::distinct_buckets(&answer).map_err(|e| self.unreadable(&e))?;
            for bucket in &buckets {
                let Some(key) = encode::bucket_key(bucket) else { continue };
                let doc = bucket.pointer("/latest/hits/hits/0").and_then(encode::id_and_bytes);
                out.push((key.to_string(), doc));
            }
            if buckets.len() < IDS_PAGE {
                return Ok(out);
            }
            after = Some(self.next_page(after.as_ref(), next.as_ref())?);
        }
    }

    /// Where the page after one that ended at `next` starts; an error when the server gave no
    /// place to go on from, or the same as the page before (a walk that would never end).
    fn next_page(&self, after: Option<&Value>, next: Option<&Value>) -> Result<Value> {
        match next {
            Some(next) if Some(next) != after => Ok(next.clone()),
            _ => Err(self.unreadable("a page of results that does not move on")),
        }
    }

    fn unreadable(&self, what: &str) -> ReturnerError {
        ReturnerError::Unavailable(format!("{NAME}: {} gave {what}", self.config.target()))
    }
}

#[async_trait]
impl JobChunks for Elasticsearch {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        let jobs = self.jobs_index();
        let answer = self.client.search(&[jobs], &encode::jobs_page(lo, lo_inclusive, hi, oldest_first, limit)).await?;
        let ids: Vec<(String, usize)> =
            encode::hits(&answer).map_err(|e| self.unreadable(&e))?.iter().filter_map(encode::id_and_bytes).collect();
        let loads = self.client.sources(jobs, &ids, Some(&encode::SUMMARY_FIELDS)).await?;
        Ok(loads
            .into_iter()
            .map(|(jid, source)| match source.get("load") {
                Some(Value::Object(load)) => crate::format::summary_from_load(&jid, load),
                _ => crate::format::summary_from_load(&jid, &Map::new()),
            })
            .collect())
    }
}

#[async_trait]
impl Sink for Elasticsearch {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Logs in, makes sure the job cache's indices exist, and that the job index can be listed
    /// (an index Salt's own returner made maps `jid` as text): one clear error for each.
    async fn check(&self) -> Result<()> {
        self.client.server().await?;
        for (index, role) in [(self.jobs_index().to_string(), Role::Load), (self.returns_index(), Role::Return)] {
            self.client.ensure(&index, encode::index_definition(role, &self.config.layout)).await?;
            let jid = self.client.field_type(&index, "jid").await?;
            if jid.as_deref() != Some("keyword") {
                return Err(ReturnerError::Invalid(format!(
                    "{NAME}: index {index} at {} maps jid as {}, not as a keyword (did Salt's own returner create it?), so jobs cannot \
                     be listed from it; set master_job_cache_index to a new name, or reindex it into an index this store created",
                    self.config.target(),
                    jid.as_deref().unwrap_or("nothing"),
                )));
            }
        }
        Ok(())
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let now = Utc::now();
        let (prepared, mut rejected) = prepare_all(rets, |ret| encode::return_docs(ret, &self.config.layout, now));
        let docs: Vec<Doc> =
            prepared.into_iter().flat_map(|Indexed { index, row }| row.into_iter().map(move |doc| Doc { record: index, ..doc })).collect();
        self.debug_payload(&docs);
        let describe = |doc: &Doc| match doc.role {
            Role::Load => format!("load of {}", doc.id),
            _ => match doc.id.split_once(':') {
                Some((jid, id)) => crate::record::describe(id, jid),
                None => doc.id.clone(),
            },
        };
        self.store(docs, describe, &mut rejected).await?;
        Ok(rejected)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let now = Utc::now();
        let (prepared, mut rejected) = prepare_all(events, |event| encode::event_doc(event, &self.config.layout, now).map(Some));
        let docs: Vec<Doc> = prepared.into_iter().map(|Indexed { index, row }| Doc { record: index, ..row }).collect();
        self.store(docs, |doc| format!("event {}", events[doc.record].tag), &mut rejected).await?;
        Ok(rejected)
    }
}

#[async_trait]
impl JobCache for Elasticsearch {
    /// As Salt's: nothing recorded, `nocache` not kept.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config.unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        if load.values().any(|v| encode::deeper_than(v, encode::MAX_DEPTH - 1)) {
            return Err(ReturnerError::Rejected(format!(
                "{NAME}: the load of {jid} is nested more than {} levels deep",
                encode::MAX_DEPTH
            )));
        }
        let mut rejected = Vec::new();
        self.store(vec![encode::load_doc(jid, load, &self.config.layout)], |_| format!("load of {jid}"), &mut rejected).await?;
        match rejected.pop() {
            Some(r) => Err(ReturnerError::Rejected(r.reason)),
            None => Ok(()),
        }
    }

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        // Salt's returner keeps no minion lists ("included for API consistency").
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        // A get by id is real-time: no refresh needed.
        Ok(match self.client.source(self.jobs_index(), jid).await? {
            None => None,
            Some(mut source) => match source.get_mut("load").map(Value::take) {
                Some(Value::Object(load)) => Some(load),
                _ => Some(Map::new()),
            },
        })
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        if !salt_proto::jid::is_jid(jid) {
            return Ok(out);
        }
        self.client.refresh(&[&self.returns_index()]).await?;
        let ids = self.returns_of(jid).await?;
        self.full_returns(&ids, &mut out).await?;
        Ok(out)
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        self.client.refresh(&[&self.returns_index()]).await?;
        let latest: Vec<(String, usize)> =
            self.distinct("id", json!({"term": {"fun": fun}}), true).await?.into_iter().filter_map(|(_, doc)| doc).collect();
        let mut out = Map::new();
        self.full_returns(&latest, &mut out).await?;
        Ok(out)
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        self.client.refresh(&[self.jobs_index()]).await?;
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.client.refresh(&[&self.returns_index()]).await?;
        Ok(self.distinct("id", json!({"match_all": {}}), false).await?.into_iter().map(|(id, _)| id).collect())
    }

    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        purge::clean_old_jobs(self, keep).await
    }
}
