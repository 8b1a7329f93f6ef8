//! `multi_returner`: several returners as one (Salt's `salt/returners/multi_returner.py`), e.g.
//! `master_job_cache: multi_returner` with `multi_returner: [mysql, redis]`.
//!
//! Writes go to every store; reads ask each and merge. It has no I/O of its own, so no
//! `encode.rs` or `client.rs`: its parts are whole stores, opened by name with their own options.
//!
//! Where we differ from Salt, on purpose:
//! - One jid for all: the master makes each jid once and every store gets it; `prep_jid` here
//!   asks the first store and hands its jid to the others. Salt asked each for its own and only
//!   logged "the jids do not match" (#27654).
//! - Each store has its own spool on the master ([`Sink::parts`]): a store that is down holds
//!   back only its own records, and the others are written at once. Salt wrote them one after
//!   the other in the request, and a failing one lost the return for the rest.
//! - What it can do is what its stores can: a call any of them has is offered and goes to the
//!   ones that have it ([`Sink::supports`] reads the parts, not only the entry). Salt called
//!   every returner for everything and failed on the first that lacked the call.
//! - Reads merge in the order the stores are listed: for one jid, minion or key the first store
//!   that has it wins (Salt's `dict.update` let the last win). A store that fails a read is
//!   named in a warning and the others answer; only when none can does the read fail.
//! - `get_jids` asks each store for one page and merges them in jid order, never reading every
//!   job (Salt merged every job of every store).

mod config;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use futures::FutureExt;
use serde_json::{Map, Value};

pub use config::MultiConfig;

use crate::options::Lookup;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "multi_returner";

/// Every call a store can have: which ones this one has depends on its parts.
pub static ENTRY: Entry = Entry { name: NAME, calls: Capability::ALL, open: |lookup| open(lookup).boxed(), schema: None };

async fn open(lookup: &Lookup<'_>) -> Result<Store> {
    let config = MultiConfig::from_lookup(lookup)?;
    let mut parts = Vec::with_capacity(config.names.len());
    for name in &config.names {
        let part = crate::open(name, lookup).await.map_err(|e| ReturnerError::Invalid(format!("{NAME}: {e}")))?;
        parts.push(part);
    }
    let multi = Multi::new(parts);
    // A job cache only if every part keeps jobs: a read must not miss what a sink-only part got.
    Ok(match multi.caches.len() == multi.parts.len() {
        true => Store::JobCache(Arc::new(multi)),
        false => Store::Sink(Arc::new(multi)),
    })
}

pub struct Multi {
    parts: Vec<Store>,
    /// The parts as job caches, when each of them is one (else empty).
    caches: Vec<Arc<dyn JobCache>>,
}

impl Multi {
    pub fn new(parts: Vec<Store>) -> Multi {
        let caches: Vec<Arc<dyn JobCache>> = parts.iter().filter_map(|p| p.clone().job_cache()).collect();
        let caches = if caches.len() == parts.len() { caches } else { Vec::new() };
        Multi { parts, caches }
    }

    /// The parts that have `call`, or `Unsupported` when none has it.
    fn sinks_with(&self, call: Capability) -> Result<Vec<&dyn Sink>> {
        let with: Vec<&dyn Sink> = self.parts.iter().map(Store::as_sink).filter(|s| s.supports(call)).collect();
        if with.is_empty() {
            return Err(ReturnerError::unsupported(NAME, call));
        }
        Ok(with)
    }

    fn caches_with(&self, call: Capability) -> Result<Vec<&Arc<dyn JobCache>>> {
        let with: Vec<&Arc<dyn JobCache>> = self.caches.iter().filter(|c| c.supports(call)).collect();
        if with.is_empty() {
            return Err(ReturnerError::unsupported(NAME, call));
        }
        Ok(with)
    }

    /// A read asked of every part that has `call`: the answers of those that gave one, in the
    /// parts' order; a part that failed is named in a warning. Fails only when all failed.
    async fn read_each<'s, T, F>(&'s self, call: Capability, read: F) -> Result<Vec<T>>
    where
        F: Fn(&'s Arc<dyn JobCache>) -> futures::future::BoxFuture<'s, Result<T>>,
    {
        let caches = self.caches_with(call)?;
        let answers = join_all(caches.iter().map(|c| read(c))).await;
        let mut got = Vec::new();
        let mut last_error = None;
        for (cache, answer) in caches.iter().zip(answers) {
            match answer {
                Ok(v) => got.push(v),
                Err(e) => {
                    tracing::warn!("{NAME}: {} of '{}' failed, answering from the others: {e}", call.salt_name(), cache.name());
                    last_error = Some(e);
                }
            }
        }
        match (got.is_empty(), last_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(got),
        }
    }

    /// A write every part that has `call` must take: the first error, if any, after all tried.
    async fn write_each<'s, F>(&'s self, call: Capability, write: F) -> Result<()>
    where
        F: Fn(&'s Arc<dyn JobCache>) -> futures::future::BoxFuture<'s, Result<()>>,
    {
        let caches = self.caches_with(call)?;
        first_error(join_all(caches.iter().map(|c| write(c))).await)
    }
}

/// The first error of `results` that is worth retrying, else the first error, else `Ok`.
fn first_error<T>(results: Vec<Result<T>>) -> Result<()> {
    let errors: Vec<ReturnerError> = results.into_iter().filter_map(|r| r.err()).collect();
    match errors.iter().position(ReturnerError::retry_later) {
        Some(i) => Err(errors.into_iter().nth(i).expect("position is in range")),
        None => errors.into_iter().next().map_or(Ok(()), Err),
    }
}

/// The refusals of every part, merged by record: a record any part refused is refused, with
/// each part's reason.
fn merge_rejections(parts: &[&dyn Sink], answers: Vec<Result<Vec<Rejection>>>) -> Result<Vec<Rejection>> {
    let mut merged: Vec<Rejection> = Vec::new();
    let mut errors = Vec::new();
    for (part, answer) in parts.iter().zip(answers) {
        match answer {
            Ok(rejections) => {
                for r in rejections {
                    let reason = format!("{}: {}", part.name(), r.reason);
                    match merged.iter_mut().find(|m| m.index == r.index) {
                        Some(m) => m.reason = format!("{}; {reason}", m.reason),
                        None => merged.push(Rejection { index: r.index, reason }),
                    }
                }
            }
            Err(e) => errors.push(Err::<(), _>(e)),
        }
    }
    first_error(errors)?;
    merged.sort_by_key(|r| r.index);
    Ok(merged)
}

#[async_trait]
impl Sink for Multi {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// A call any part has (job-cache calls only when every part keeps jobs).
    fn supports(&self, call: Capability) -> bool {
        if call.needs_job_cache() {
            self.caches.iter().any(|c| c.supports(call))
        } else {
            self.parts.iter().any(|p| p.as_sink().supports(call))
        }
    }

    fn parts(&self) -> &[Store] {
        &self.parts
    }

    /// To every part at once. Each is idempotent, so a batch tried again after one part failed
    /// changes nothing in the parts that took it.
    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let sinks = self.sinks_with(Capability::Returner)?;
        let answers = join_all(sinks.iter().map(|s| s.returner_batch(rets))).await;
        merge_rejections(&sinks, answers)
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let sinks = self.sinks_with(Capability::EventReturn)?;
        let answers = join_all(sinks.iter().map(|s| s.event_return(events))).await;
        merge_rejections(&sinks, answers)
    }

    /// Every part's check; the first failure names its part.
    async fn check(&self) -> Result<()> {
        let answers = join_all(self.parts.iter().map(|p| p.as_sink().check())).await;
        for (part, answer) in self.parts.iter().zip(answers) {
            if let Err(e) = answer {
                let name = part.as_sink().name();
                return Err(match e {
                    ReturnerError::Unavailable(m) => ReturnerError::Unavailable(format!("{NAME} ({name}): {m}")),
                    ReturnerError::Invalid(m) => ReturnerError::Invalid(format!("{NAME} ({name}): {m}")),
                    other => other,
                });
            }
        }
        Ok(())
    }
}

#[async_trait]
impl JobCache for Multi {
    /// The first part's jid, recorded in the others too: one jid for all.
    async fn prep_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        let caches = self.caches_with(Capability::PrepJid)?;
        let (first, rest) = caches.split_first().expect("caches_with gives at least one");
        let jid = first.prep_jid(nocache, passed_jid).await?;
        first_error(join_all(rest.iter().map(|c| c.prep_jid(nocache, Some(&jid)))).await)?;
        Ok(jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, minions: Option<&[String]>) -> Result<()> {
        self.write_each(Capability::SaveLoad, |c| c.save_load(jid, load, minions)).await
    }

    async fn save_minions(&self, jid: &str, minions: &[String], syndic_id: Option<&str>) -> Result<()> {
        self.write_each(Capability::SaveMinions, |c| c.save_minions(jid, minions, syndic_id)).await
    }

    /// The loads the parts have, merged key by key (the first part's value wins), so `Minions`
    /// comes from a part that keeps them even when the first does not.
    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        let loads: Vec<Load> = self.read_each(Capability::GetLoad, |c| c.get_load(jid)).await?.into_iter().flatten().collect();
        Ok((!loads.is_empty()).then(|| merge_maps(loads)))
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        Ok(merge_maps(self.read_each(Capability::GetJid, |c| c.get_jid(jid)).await?))
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        Ok(merge_maps(self.read_each(Capability::GetFun, |c| c.get_fun(fun)).await?))
    }

    /// One page from each part (as many jobs as this page reaches), merged in jid order, each
    /// job once (the first part's summary of it).
    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        let mut each = query.clone();
        each.offset = 0;
        each.limit = query.limit.map(|limit| query.offset + limit);
        let pages = self.read_each(Capability::GetJids, |c| c.get_jids(&each)).await?;
        let mut seen = BTreeSet::new();
        let mut jobs: Vec<JobSummary> = pages.into_iter().flatten().filter(|j| seen.insert(j.jid.clone())).collect();
        jobs.sort_by(|a, b| if query.oldest_first { a.jid.cmp(&b.jid) } else { b.jid.cmp(&a.jid) });
        let jobs = jobs.into_iter().skip(query.offset);
        Ok(match query.limit {
            Some(limit) => jobs.take(limit).collect(),
            None => jobs.collect(),
        })
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        let all = self.read_each(Capability::GetMinions, |c| c.get_minions()).await?;
        Ok(all.into_iter().flatten().collect::<BTreeSet<_>>().into_iter().collect())
    }

    /// Each part that purges; the most jobs any of them removed (the same jobs, mostly).
    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        let caches = self.caches_with(Capability::CleanOldJobs)?;
        let answers = join_all(caches.iter().map(|c| c.clean_old_jobs(keep))).await;
        let most = answers.iter().filter_map(|a| a.as_ref().ok()).copied().max().unwrap_or(0);
        first_error(answers)?;
        Ok(most)
    }

    async fn update_endtime(&self, jid: &str, time: &str) -> Result<()> {
        self.write_each(Capability::UpdateEndtime, |c| c.update_endtime(jid, time)).await
    }

    async fn get_endtime(&self, jid: &str) -> Result<Option<String>> {
        Ok(self.read_each(Capability::GetEndtime, |c| c.get_endtime(jid)).await?.into_iter().flatten().next())
    }

    /// Each part's tables that were missing.
    async fn create_schema(&self) -> Result<Vec<String>> {
        let mut made = Vec::new();
        for cache in &self.caches {
            if cache.entry().schema.is_some() {
                made.extend(cache.create_schema().await?.into_iter().map(|t| format!("{}: {t}", cache.name())));
            }
        }
        Ok(made)
    }
}

/// `{key: value}` maps merged in order, the first map's value kept for a key in several.
fn merge_maps(maps: Vec<Map<String, Value>>) -> Map<String, Value> {
    let mut merged = Map::new();
    for map in maps {
        for (k, v) in map {
            merged.entry(k).or_insert(v);
        }
    }
    merged
}
