//! `redis`: returns and loads in Redis (Salt's `salt/returners/redis_return.py`, in
//! `saltext-redis` since Salt 3008), a minion-side returner and a full master job cache.
//!
//! Salt's keys and values, unchanged (see [`encode`]): `ret:<jid>` (a hash of each minion's
//! `json.dumps(ret)`), `load:<jid>`, `<minion>:<fun>` (the latest jid) and the `minions` set;
//! `ret:<jid>` and `load:<jid>` expire after `keep_jobs_seconds`. Options as Salt names them
//! (see [`config`]), standalone, over a Unix socket, or on a Redis Cluster (`cluster_mode`).
//!
//! Where we differ from Salt, on purpose:
//! - A batch of returns is one pipeline (a few for batches over 16 MiB), not one per return.
//! - The first return stored for (jid, minion) stays (`HSETNX`), so a retried batch changes
//!   nothing; Salt's `HSET` kept the last.
//! - The first load of a job stays: Salt's master calls `save_load` again with each return's
//!   load, which in Salt overwrote the publish load (`jobs.list_jobs` then shows `Arguments: []`,
//!   `Target: unknown-target`).
//! - `<minion>:<fun>` moves only forward (a late or retried return never hides a newer jid),
//!   and expires with the returns it points to (Salt's never expired).
//! - `get_load` gives `Minions` (Salt's redis kept none, issue #20108): the minions a job
//!   targeted are kept in `minions:<jid>`, merged from `save_load` and `save_minions`.
//! - `get_jids` pages an index (`jids`, a sorted set) and reads each job's small `summary:<jid>`,
//!   never the loads; Salt read every load with `KEYS load:*`. `get_fun` reads `ret:<jid>`
//!   (Salt's looked for a key that does not exist and always found nothing).
//! - `clean_old_jobs` removes jobs idle for `keep_jobs_seconds` (by `jid_activity`, the time of
//!   each job's latest write) with their index entries, and forgets minions whose latest return
//!   is that old. Salt's deleted the returns of every job without a load (all the returns of a
//!   minion-side `--return redis`) and never cleaned `minions`. On a standalone server each job
//!   is checked and removed in one step (a Lua script); on a cluster a job's keys live on
//!   different nodes, so a return that arrives for a job in the very moment the purge removes
//!   it (a job idle for `keep_jobs_seconds` until then) can be removed with it. Keys Salt wrote
//!   before have no activity entries: their TTLs remove them, and their minions stay listed.
//! - `keep_jobs_seconds: 0` keeps jobs for ever (Salt's `SETEX` with 0 failed every write).
//! - Secrets under `kwargs`/`ret_kwargs` are redacted before anything is stored, and errors
//!   never show the password.
//!
//! Salt's redis has no `event_return`, no end times, and ignores `prep_jid(nocache=True)`:
//! neither do we.

mod client;
pub mod config;
pub mod encode;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};

pub use config::RedisConfig;

use crate::batch::prepare_all;
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::registry::{Entry, Store, JOB_CACHE_WITH_PURGE};
use crate::{JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};
use client::Client;

pub const NAME: &str = "redis";

/// Salt's redis calls.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE_WITH_PURGE,
    open: |lookup| async move { Ok(Store::JobCache(Arc::new(Redis::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Redis {
    client: Client,
}

impl Redis {
    /// Opens the store with the options `lookup` finds (see [`config`]). No connection is made
    /// yet: the first call connects, and [`Sink::check`] says whether it can.
    pub fn open(lookup: &Lookup<'_>) -> Result<Redis> {
        Ok(Self::open_with(RedisConfig::from_lookup(lookup)?))
    }

    pub fn open_with(config: RedisConfig) -> Redis {
        Redis { client: Client::new(config) }
    }

    pub fn config(&self) -> &RedisConfig {
        self.client.config()
    }
}

fn valid_jid(jid: &str) -> Result<()> {
    salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))
}

#[async_trait]
impl Sink for Redis {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn check(&self) -> Result<()> {
        self.client.ping().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(rets, encode::prepare_return);
        self.client.write_returns(&rows, &mut rejected).await?;
        Ok(rejected)
    }
}

#[async_trait]
impl JobChunks for Redis {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        self.client.read_summaries(lo, lo_inclusive, hi, oldest_first, limit).await
    }
}

#[async_trait]
impl JobCache for Redis {
    /// Salt's: the passed jid or a new one; nothing is written.
    /// As Salt's: nothing recorded, `nocache` not kept.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config().unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, minions: Option<&[String]>) -> Result<()> {
        valid_jid(jid)?;
        self.client.write_load(jid, load, minions.unwrap_or_default()).await
    }

    async fn save_minions(&self, jid: &str, minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        valid_jid(jid)?;
        if minions.is_empty() {
            return Ok(());
        }
        self.client.write_minions(jid, minions).await
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        Ok(self.client.read_load(jid).await?.map(|(mut load, minions)| {
            if !minions.is_empty() {
                load.insert("Minions".into(), minions.into());
            }
            load
        }))
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        self.client.read_returns(jid).await
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        self.client.read_latest(fun).await
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.client.members(encode::MINIONS).await
    }

    /// Removes the jobs idle for `keep` and their index entries; `keep` 0 keeps everything.
    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        if keep.is_zero() {
            return Ok(0);
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        self.client.purge(now.saturating_sub(keep).as_secs_f64()).await
    }
}
