//! `memcache`: returns and loads in memcached (Salt's `salt/returners/memcache_return.py`, in
//! Salt 3007 core), a minion-side returner and a master job cache.
//!
//! Salt's keys and values, unchanged (see [`encode`]): `<jid>:<minion>` and `<fun>:<minion>`
//! hold `json.dumps(ret)`, `<jid>` the load, `minions` and `jids` are comma-terminated lists;
//! flags 16 and no expiry, as python-memcached wrote them. Options `memcache.host` and
//! `memcache.port` (see [`config`]).
//!
//! memcached is a cache: when it is full it evicts the least recently used items, and a
//! restart empties it. As a job cache that means jobs can vanish, whole or in part: a return
//! (`get_jid` lacks that minion), a load (`get_load` finds nothing), an index list (listings
//! lose that minute, or, for `jids:index:days`, every older day until it fills again), or
//! `minions` (`get_jid` and `get_fun` find nobody until minions return again). Size memcached
//! so it never evicts (its `evictions` statistic stays 0) or use a store that keeps data
//! (redis, a database). There is no `clean_old_jobs`, as in Salt: eviction is the purge.
//!
//! Where we differ from Salt, on purpose:
//! - A batch is one exchange of pipelined requests after one read of the lists it extends,
//!   not a dozen round trips per return; we speak the ASCII protocol ourselves ([`client`]),
//!   every read bounded.
//! - Lists never lose entries to concurrent writers: Salt's `append`-else-`add` lost the item of
//!   the writer whose `add` came second; we `append` again then (see `ops`).
//! - A value over memcached's 1 MiB item limit is stored in parts (`chunk:<sha256>:<n>`, the
//!   key itself holding a small manifest with flags 8208): a highstate return is often more
//!   than 1 MiB, and Salt's client dropped it silently. Up to 128 MiB; a bigger one, or a key
//!   memcached does not take (over 250 bytes, or a space in a function name), is refused
//!   clearly. A server whose item limit (`-I`) is below 1 MiB refuses parts: those records are
//!   refused, with memcached's reason.
//! - The first return stored for (jid, minion) and the first load of a job stay (`add`);
//!   `<fun>:<minion>` is the return of the latest jid of a batch (across batches, the last
//!   written, as in Salt).
//! - `get_jids` walks a time index (`jids:index:*`, days then minutes) and reads small
//!   summaries: the first page does not read every job, and the listing does not stop at the
//!   ~45,000 jobs Salt's `jids` list holds (it is still written, for Salt's tools, until full).
//! - Secrets under `kwargs`/`ret_kwargs` are redacted before anything is stored.
//!
//! Salt's memcache has no `event_return`, `clean_old_jobs`, end times or `Minions`, and
//! ignores `prep_jid(nocache=True)`: neither do we.

mod client;
pub mod config;
pub mod encode;
mod ops;

use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};

pub use config::MemcacheConfig;

use crate::batch::prepare_all;
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::registry::{Entry, Store, JOB_CACHE};
use crate::{JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};
use client::Client;

pub const NAME: &str = "memcache";

/// Salt's memcache calls.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE,
    open: |lookup| async move { Ok(Store::JobCache(Arc::new(Memcache::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Memcache {
    client: Client,
}

impl Memcache {
    /// Opens the store with the options `lookup` finds (see [`config`]); the first call
    /// connects, and [`Sink::check`] says whether it can.
    pub fn open(lookup: &Lookup<'_>) -> Result<Memcache> {
        Ok(Self::open_with(MemcacheConfig::from_lookup(lookup)?))
    }

    pub fn open_with(config: MemcacheConfig) -> Memcache {
        Memcache { client: Client::new(config) }
    }

    pub fn config(&self) -> &MemcacheConfig {
        self.client.config()
    }
}

fn valid_jid(jid: &str) -> Result<()> {
    salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))
}

#[async_trait]
impl Sink for Memcache {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn check(&self) -> Result<()> {
        self.client.version().await.map(drop)
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(rets, encode::prepare_return);
        self.client.write_returns(&rows, &mut rejected).await?;
        Ok(rejected)
    }
}

#[async_trait]
impl JobChunks for Memcache {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        self.client.read_summaries(lo, lo_inclusive, hi, oldest_first, limit).await
    }
}

#[async_trait]
impl JobCache for Memcache {
    /// Salt's: the passed jid or a new one; nothing is written.
    /// As Salt's: nothing recorded, `nocache` not kept.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config().unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        valid_jid(jid)?;
        self.client.write_load(jid, load).await
    }

    /// Salt's is a no-op ("for API consistency"): memcache keeps no `Minions`.
    async fn save_minions(&self, jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        valid_jid(jid)
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let key = jid.to_string();
        match self.client.read_values(std::slice::from_ref(&key)).await?.remove(&key) {
            Some(text) => Ok(Some(self.client.object(&key, &text)?)),
            None => Ok(None),
        }
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        self.client.read_by_minion(jid).await
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        self.client.read_by_minion(fun).await
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        let mut minions = self.client.read_list(encode::MINIONS).await?;
        minions.sort();
        Ok(minions)
    }
}
