//! Returners by their Salt names: one [`Entry`] per store, declared in the store's own module
//! and listed once in [`ENTRIES`]. Adding a store is its folder and one line there.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};

use crate::options::Lookup;
use crate::{Capability, JobCache, Result, ReturnerError, Sink};

/// What a store is, for the registry: its name, the calls it implements (nothing else says
/// what a store supports), how it opens, and its tables if it has a schema.
pub struct Entry {
    /// Salt's name (`sys.list_returners`, `--return <name>`, `master_job_cache: <name>`).
    pub name: &'static str,
    /// The calls it implements; [`Sink::supports`] reads this.
    pub calls: &'static [Capability],
    /// Opens the store with the options `lookup` finds. No connection is made: stores connect
    /// lazily, so a daemon starts while its store is down (and [`Sink::check`] says so).
    pub open: for<'a> fn(&'a Lookup<'a>) -> BoxFuture<'a, Result<Store>>,
    /// The SQL stores' tables (Salt's documented schema).
    pub schema: Option<Schema>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry").field("name", &self.name).field("calls", &self.calls).finish_non_exhaustive()
    }
}

impl Entry {
    /// The entry of a store that is not in the registry (a test double): it declares its
    /// calls like any store, and cannot be opened by name.
    pub const fn unlisted(name: &'static str, calls: &'static [Capability]) -> Entry {
        Entry { name, calls, open: open_unlisted, schema: None }
    }
}

fn open_unlisted<'a>(lookup: &'a Lookup<'a>) -> BoxFuture<'a, Result<Store>> {
    let _ = lookup;
    Box::pin(async { Err(ReturnerError::Invalid("this store is not in the registry".into())) })
}

/// A SQL store's tables: what `salt-returner-schema <name>` prints, and what
/// [`JobCache::create_schema`] makes.
#[derive(Clone, Copy)]
pub struct Schema {
    pub tables: &'static [&'static str],
    pub ddl: fn() -> String,
}

/// An opened store, as the role it can play.
#[derive(Clone)]
pub enum Store {
    /// Takes returns and maybe events, but keeps no jobs (syslog, slack, ...).
    Sink(Arc<dyn Sink>),
    /// A full job cache.
    JobCache(Arc<dyn JobCache>),
}

impl Store {
    pub fn as_sink(&self) -> &dyn Sink {
        match self {
            Store::Sink(s) => &**s,
            Store::JobCache(c) => &**c,
        }
    }

    pub fn sink(self) -> Arc<dyn Sink> {
        match self {
            Store::Sink(s) => s,
            Store::JobCache(c) => c,
        }
    }

    pub fn job_cache(self) -> Option<Arc<dyn JobCache>> {
        match self {
            Store::Sink(_) => None,
            Store::JobCache(c) => Some(c),
        }
    }
}

/// The calls of a job cache as Salt's external ones have them: returns, loads, listings, the
/// minions; no events, purge or end times (sqlite3, etcd, memcache).
pub(crate) const JOB_CACHE: &[Capability] = &[
    Capability::Returner,
    Capability::PrepJid,
    Capability::SaveLoad,
    Capability::SaveMinions,
    Capability::GetLoad,
    Capability::GetJid,
    Capability::GetJids,
    Capability::GetFun,
    Capability::GetMinions,
];

/// [`JOB_CACHE`] and `clean_old_jobs` (redis, couchdb).
pub(crate) const JOB_CACHE_WITH_PURGE: &[Capability] = &[
    Capability::Returner,
    Capability::PrepJid,
    Capability::SaveLoad,
    Capability::SaveMinions,
    Capability::GetLoad,
    Capability::GetJid,
    Capability::GetJids,
    Capability::GetFun,
    Capability::GetMinions,
    Capability::CleanOldJobs,
];

/// [`JOB_CACHE_WITH_PURGE`] and `event_return` (Salt's SQL returners, elasticsearch).
pub(crate) const JOB_CACHE_WITH_EVENTS: &[Capability] = &[
    Capability::Returner,
    Capability::EventReturn,
    Capability::PrepJid,
    Capability::SaveLoad,
    Capability::SaveMinions,
    Capability::GetLoad,
    Capability::GetJid,
    Capability::GetJids,
    Capability::GetFun,
    Capability::GetMinions,
    Capability::CleanOldJobs,
];

/// The tables of Salt's SQL returners (each with its own DDL).
pub(crate) const SALT_SQL_TABLES: &[&str] = &["jids", "salt_returns", "salt_events"];

/// Every store built into this binary (cargo features leave some out).
pub static ENTRIES: &[&Entry] = &[
    &crate::local_cache::ENTRY,
    &crate::carbon::ENTRY,
    &crate::local::ENTRY,
    &crate::rawfile_json::ENTRY,
    #[cfg(feature = "mysql")]
    &crate::mysql::ENTRY,
    #[cfg(feature = "postgres")]
    &crate::pgjsonb::ENTRY,
    #[cfg(feature = "postgres")]
    &crate::postgres::ENTRY,
    #[cfg(feature = "sqlite3")]
    &crate::sqlite3::ENTRY,
    #[cfg(feature = "mongo")]
    &crate::mongo::ENTRY,
    #[cfg(feature = "mongo")]
    &crate::mongo::RETURN_ENTRY,
    #[cfg(feature = "etcd")]
    &crate::etcd::ENTRY,
    #[cfg(feature = "couchdb")]
    &crate::couchdb::ENTRY,
    #[cfg(feature = "elasticsearch")]
    &crate::elasticsearch::ENTRY,
    #[cfg(feature = "redis")]
    &crate::redis::ENTRY,
    #[cfg(feature = "memcache")]
    &crate::memcache::ENTRY,
    &crate::multi_returner::ENTRY,
    #[cfg(feature = "splunk")]
    &crate::splunk::ENTRY,
    #[cfg(feature = "slack")]
    &crate::slack::ENTRY,
    #[cfg(feature = "slack_webhook")]
    &crate::slack_webhook::ENTRY,
    #[cfg(feature = "mattermost")]
    &crate::mattermost::ENTRY,
    &crate::syslog::ENTRY,
    #[cfg(feature = "smtp")]
    &crate::smtp::ENTRY,
    #[cfg(feature = "highstate")]
    &crate::highstate::ENTRY,
    #[cfg(feature = "telegram")]
    &crate::telegram::ENTRY,
    #[cfg(feature = "pushover")]
    &crate::pushover::ENTRY,
    #[cfg(feature = "hipchat")]
    &crate::hipchat::ENTRY,
    // one line per store
];

/// Every returner built in, sorted (what `sys.list_returners` shows).
pub fn builtin_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = ENTRIES.iter().map(|e| e.name).collect();
    names.sort_unstable();
    names
}

/// The entry named `name`, or an error listing the ones there are.
pub fn entry(name: &str) -> Result<&'static Entry> {
    ENTRIES
        .iter()
        .copied()
        .find(|e| e.name == name)
        .ok_or_else(|| ReturnerError::Invalid(format!("unknown returner '{name}'; built in are: {}", builtin_names().join(", "))))
}

/// Opens the store named `name`, its options looked up through `lookup` (the config of the
/// process that runs it, plus a job's `ret_config`/`ret_kwargs` on the minion side).
pub async fn open(name: &str, lookup: &Lookup<'_>) -> Result<Store> {
    (entry(name)?.open)(lookup).await
}

/// Opens `name` for a role that only writes (a minion's `--return`, `event_return`).
pub async fn open_sink(name: &str, lookup: &Lookup<'_>) -> Result<Arc<dyn Sink>> {
    Ok(open(name, lookup).await?.sink())
}

/// Opens the store named `name` as a job cache, configured from the master's config.
pub async fn open_job_cache(name: &str, opts: &Map<String, Value>) -> Result<Arc<dyn JobCache>> {
    open(name, &Lookup::new(opts))
        .await?
        .job_cache()
        .ok_or_else(|| ReturnerError::Invalid(format!("returner '{name}' keeps no jobs, so it cannot be a job cache")))
}

#[cfg(test)]
mod tests {
    /// What `sys.list_returners` prints with every store built in: Salt's names, sorted.
    #[test]
    #[cfg(all(
        feature = "mysql",
        feature = "postgres",
        feature = "sqlite3",
        feature = "mongo",
        feature = "etcd",
        feature = "couchdb",
        feature = "elasticsearch",
        feature = "redis",
        feature = "memcache",
        feature = "splunk",
        feature = "slack",
        feature = "slack_webhook",
        feature = "mattermost",
        feature = "smtp",
        feature = "highstate",
        feature = "telegram",
        feature = "pushover",
        feature = "hipchat"
    ))]
    fn every_returner_is_listed_sorted() {
        assert_eq!(
            super::builtin_names(),
            [
                "carbon",
                "couchdb",
                "elasticsearch",
                "etcd",
                "highstate",
                "hipchat",
                "local",
                "local_cache",
                "mattermost",
                "memcache",
                "mongo",
                "mongo_return",
                "multi_returner",
                "mysql",
                "pgjsonb",
                "postgres",
                "pushover",
                "rawfile_json",
                "redis",
                "slack",
                "slack_webhook",
                "smtp",
                "splunk",
                "sqlite3",
                "syslog",
                "telegram",
            ]
        );
    }
}
