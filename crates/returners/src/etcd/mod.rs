//! `etcd`: returns and loads as keys in etcd (Salt's `salt/returners/etcd_return.py`), a full
//! job cache.
//!
//! Salt's layout under `etcd.returner_root` (`/salt/return`), which users' tools read:
//! `minions/<id>` (the minion's last jid), `jobs/<jid>/<id>/<field>` (`json.dumps` of each field
//! of the return), `jobs/<jid>/.load.p` (`json.dumps` of the load); all with the TTL, see
//! [`config`]. Salt's calls: `returner`, `save_load`, `save_minions` (a no-op), `get_load`,
//! `get_jid` (`{id: {"return": ...}}`), `get_fun`, `get_jids`, `get_minions`, `prep_jid`.
//!
//! Where we differ from Salt, on purpose:
//! - etcd's v3 API (its JSON gateway), as Salt does with `etcd.require_v2: False`; v2 is
//!   deprecated and gone in etcd 3.6. Values are msgpack strings as Salt's v3 client writes
//!   them (`etcd.encode_values`), and either form reads back.
//! - A batch is a few transactions (128 operations, 1 MiB each), not a request per field. A
//!   return is written the first time only (Salt overwrote), and a second `save_load` for a
//!   jid keeps the first (Salt's master job cache overwrote the publish load with each return's).
//! - Beside Salt's keys, a job listing (`jids/`, `jids-newest-first/`) pages `get_jids` in jid
//!   order without reading every job, and `funs/<fun>/<id>` makes `get_fun` one read per
//!   minion; see [`encode`]. `get_jids` gives Salt's job summaries (Salt's gave a list of
//!   jids); `get_fun` gives `{id: return}` of each minion's newest return of the function
//!   (Salt's gave the function's name, and only for the minion's last job).
//! - No `clean_old_jobs` (Salt's is a no-op): keys expire through etcd leases, with `etcd.ttl`
//!   or else the master's `keep_jobs_seconds` (Salt's kept them forever).
//! - A function or a field name with `/` stays one level of the key (`%2F`).

mod client;
pub mod config;
pub mod encode;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};

pub use config::EtcdConfig;

use self::client::{Connection, Leases};
use self::encode::{after, decode_json, decode_text, prefix_end, returns_txn, Layout, LoadKeys, ReturnKeys};
use crate::batch::{insert_or_sift, prepare_all};
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::registry::{Entry, Store, JOB_CACHE};
use crate::{JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "etcd";

/// Salt's etcd calls, without its no-op `clean_old_jobs` (leases expire the keys).
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE,
    open: |lookup| async move { Ok(Store::JobCache(Arc::new(Etcd::open(lookup)?))) }.boxed(),
    schema: None,
};

pub struct Etcd {
    config: EtcdConfig,
    layout: Layout,
    write: Arc<Connection>,
    /// The same connection as `write` unless a read profile names another server or login.
    read: Arc<Connection>,
    leases: Leases,
}

impl Etcd {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Etcd> {
        Self::open_with(EtcdConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: EtcdConfig) -> Result<Etcd> {
        let write = Arc::new(Connection::new(&config.write)?);
        let read = if config.read == config.write { write.clone() } else { Arc::new(Connection::new(&config.read)?) };
        Ok(Etcd { layout: Layout::new(&config.root), leases: Leases::new(config.ttl), write, read, config })
    }

    pub fn config(&self) -> &EtcdConfig {
        &self.config
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// One transaction, with the lease of the moment; once more with a new lease if etcd lost
    /// the one it was given.
    async fn transact(&self, txn: impl Fn(Option<i64>) -> Value) -> Result<()> {
        let lease = self.leases.get(&self.write).await?;
        match self.write.call("/v3/kv/txn", &txn(lease)).await {
            Err(e) if lease.is_some() && Leases::is_gone(&e) => {
                self.leases.forget().await;
                let lease = self.leases.get(&self.write).await?;
                self.write.call("/v3/kv/txn", &txn(lease)).await.map(drop)
            }
            other => other.map(drop),
        }
    }

    async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let msgpack = self.config.write.encode_values;
        let (mut rows, mut rejected) = prepare_all(rets, |ret| ReturnKeys::new(&self.layout, ret, msgpack));
        // The first of a return given twice in one batch (etcd refuses a transaction that
        // writes a key twice; the store keeps the first anyway).
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert((r.row.jid.clone(), r.row.id.clone())));
        for run in encode::transactions(&rows) {
            let write = |rows| self.transact(move |lease| returns_txn(&self.layout, rows, lease));
            insert_or_sift(run, write, ReturnKeys::describe, &mut rejected).await?;
        }
        Ok(rejected)
    }

    /// The minion id of a key `<prefix><id>[/<field>]`, and its field.
    fn split<'k>(prefix: &[u8], key: &'k [u8]) -> Option<(&'k str, Option<&'k str>)> {
        let rest = std::str::from_utf8(key.strip_prefix(prefix)?).ok()?;
        Some(match rest.split_once('/') {
            Some((id, field)) => (id, Some(field)),
            None => (rest, None),
        })
    }

    fn unreadable(&self, what: &str, why: String) -> ReturnerError {
        ReturnerError::Unavailable(format!("etcd: {what} under {} is unreadable: {why}", self.config.root))
    }
}

#[async_trait]
impl JobChunks for Etcd {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        let l = &self.layout;
        // Two listings, one per order: a range read in key order stops after `limit` keys.
        let (mut start, end) = if oldest_first {
            let start = if lo_inclusive { l.listed(lo) } else { after(&l.listed(lo)) };
            (start, hi.map_or_else(|| prefix_end(&l.listing()), |hi| l.listed(hi)))
        } else {
            let start = hi.map_or_else(|| l.listing_newest_first(), |hi| after(&l.listed_newest_first(hi)));
            let end = if lo_inclusive { after(&l.listed_newest_first(lo)) } else { l.listed_newest_first(lo) };
            (start, end)
        };
        let prefix = if oldest_first { l.listing() } else { l.listing_newest_first() };
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            let (page, more) = self.read.range(&start, &end, limit - out.len(), false).await?;
            for kv in &page {
                let level = kv.key.strip_prefix(prefix.as_slice()).unwrap_or_default();
                let jid = if oldest_first { String::from_utf8(level.to_vec()).ok() } else { encode::jid_from_newest_first(level) };
                let jid = jid.ok_or_else(|| self.unreadable("a job listing key", format!("{:?}", String::from_utf8_lossy(&kv.key))))?;
                out.push(encode::summary_from_json(&jid, &kv.value).map_err(|e| self.unreadable("the job listing", e))?);
            }
            match page.last() {
                Some(last) if more => start = after(&last.key),
                _ => break,
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Sink for Etcd {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Logs in and reads under the root, on each server the store uses.
    async fn check(&self) -> Result<()> {
        let root = self.layout.minions();
        self.write.check(&root).await?;
        if !Arc::ptr_eq(&self.write, &self.read) {
            self.read.check(&root).await?;
        }
        Ok(())
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }
}

#[async_trait]
impl JobCache for Etcd {
    /// As Salt's: nothing recorded, `nocache` not kept.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config.unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        let keys = LoadKeys::new(&self.layout, jid, load, self.config.write.encode_values);
        self.transact(|lease| serde_json::json!({"success": [encode::load_op(&keys, lease)]})).await
    }

    /// Salt's is a no-op too: the minions are not kept.
    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let Some(value) = self.read.get_many(&[self.layout.load(jid)]).await?.pop().flatten() else { return Ok(None) };
        match decode_json(&value).map_err(|e| self.unreadable(&format!("the load of {jid}"), e))? {
            Value::Object(load) => Ok(Some(load)),
            _ => Ok(Some(Map::new())),
        }
    }

    /// `{id: {"return": ...}}`, as Salt's.
    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        if !salt_proto::jid::is_jid(jid) {
            return Ok(out);
        }
        let prefix = self.layout.job(jid);
        for kv in self.read.scan(&prefix, &prefix_end(&prefix), false).await? {
            if let Some((id, Some("return"))) = Self::split(&prefix, &kv.key) {
                let value = decode_json(&kv.value).map_err(|e| self.unreadable(&format!("the return of {id} for {jid}"), e))?;
                out.insert(id.to_string(), Value::Object(Map::from_iter([("return".to_string(), value)])));
            }
        }
        Ok(out)
    }

    /// `{id: return}` of each minion's newest return of `fun`.
    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        let prefix = self.layout.latest_of(fun);
        let latest = self.read.scan(&prefix, &prefix_end(&prefix), false).await?;
        let mut ids = Vec::with_capacity(latest.len());
        let mut keys = Vec::with_capacity(latest.len());
        for kv in &latest {
            let (Some((id, None)), Ok(jid)) = (Self::split(&prefix, &kv.key), decode_text(&kv.value)) else { continue };
            keys.push(self.layout.field(&jid, id, "return"));
            ids.push(id.to_string());
        }
        let mut out = Map::new();
        for (id, value) in ids.into_iter().zip(self.read.get_many(&keys).await?) {
            // Gone with its job's lease: the minion has no stored return of fun any more.
            let Some(value) = value else { continue };
            let value = decode_json(&value).map_err(|e| self.unreadable(&format!("the {fun} return of {id}"), e))?;
            out.insert(id, value);
        }
        Ok(out)
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        let prefix = self.layout.minions();
        let kvs = self.read.scan(&prefix, &prefix_end(&prefix), true).await?;
        Ok(kvs.iter().filter_map(|kv| Self::split(&prefix, &kv.key)).map(|(id, _)| id.to_string()).collect())
    }
}
