//! `mongo` and `mongo_return`: returns, loads and events in MongoDB (Salt's
//! `salt/returners/mongo_future_return.py` and `mongo_return.py`, in Salt's core up to 3007;
//! `saltext.mongodb` ships no returner).
//!
//! Salt's collections and documents (see [`encode`]): `saltReturns` gets
//! `{minion, jid, return, fun, full_ret[, out]}` per return, `jobs` the job's load with its own
//! fields, `events` `{tag, data}` per event. Both names are one store over that one layout:
//! minion-side returners (`--return mongo`), event returners and full master job caches. They
//! differ in their options only ([`config`]): `mongo_return` has no `mongo.uri`.
//!
//! Where we differ from Salt, on purpose:
//! - Keys are escaped with one reversible scheme everywhere (Salt's `_safe_copy` of its `jobs`
//!   documents: `.` → `%2e`, `$` → `%24`, `%` → `%25`, `\` → `%5c`, and NUL → `%00`), and
//!   unescaped when read, so every key comes back as it was. Salt turned dots into `-` in
//!   `saltReturns` (so `a.b` and `a-b` collided and never came back), did not escape `$`
//!   there, nor `.` or `$` in events, and returned escaped keys from `get_load`.
//! - Each document has an `_id` of its own making: `<jid>:<minion>` for a return, the jid for
//!   a load, a hash of the event (with its time first) for an event. Storing a return, a load
//!   or an event twice keeps the first (a spool that sends a batch again stores nothing twice);
//!   Salt inserted every call, so `jobs` held a publish load and then one load per return.
//!   `get_jid` and `get_load` read by `_id`, the index every collection has, so they need no
//!   `mongo.indexes`. Documents Salt wrote (ObjectId `_id`s) are not read back by `get_load`,
//!   `get_jid`, `get_fun` and `get_jids`; `get_minions` still counts them.
//! - A batch of returns is one unordered `insert_many` (plus one for the loads of `req`
//!   returns); a document the server refuses is that record's rejection alone.
//! - `event_return` stores every event of the batch (Salt stored only the first).
//! - `get_jids` pages the `jobs` collection by `_id` (Salt used `inline_map_reduce`, gone from
//!   pymongo 4 and MongoDB 8); `get_fun` gives each minion's latest return of the function
//!   (Salt: one document, whichever came first).
//! - A return too big for both copies (`return` and `full_ret.return`) in one 16 MiB document
//!   is stored without the top-level `return` (`full_ret` keeps it, and is what `get_jid`
//!   reads); one too big even once is refused with a clear error (Salt's insert failed).
//! - Secrets under `kwargs`/`ret_kwargs` are redacted before a load, return or event is stored,
//!   and never appear in an error.
//! - `mongo.indexes: true` also indexes `saltReturns.fun` (for `get_fun`), and makes the
//!   indexes once per process (Salt: on every call).
//! - No `clean_old_jobs`, as in Salt: the documents carry no time of storage to purge by.

pub mod client;
pub mod config;
pub mod encode;

use std::collections::HashSet;

use async_trait::async_trait;
use futures::FutureExt;
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use serde_json::{Map, Value};

pub use config::{Flavour, MongoConfig};

use crate::batch::prepare_all;
use crate::format::summary_from_load;
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::record::ReturnRecord;
use crate::registry::{Entry, Store};
use crate::{Capability, Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};
use client::Connection;
use encode::{EVENTS, JOBS, RETURNS};

pub const NAME: &str = "mongo";
pub const RETURN_NAME: &str = "mongo_return";

/// What both returners implement: Salt's `mongo` calls (with `get_jids` working again), and
/// the same for `mongo_return`, which in Salt lacked the job-cache half over the same layout.
const CALLS: &[Capability] = &[
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
];

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: CALLS,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(Mongo::open(lookup, Flavour::Future)?))) }.boxed(),
    schema: None,
};

pub static RETURN_ENTRY: Entry = Entry {
    name: RETURN_NAME,
    calls: CALLS,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(Mongo::open(lookup, Flavour::Return)?))) }.boxed(),
    schema: None,
};

/// The fields of a load a listing needs ([`summary_from_load`]).
const SUMMARY_FIELDS: [&str; 8] = ["fun", "arg", "fun_args", "tgt", "tgt_type", "user", "metadata", "kwargs.metadata"];

pub struct Mongo {
    conn: Connection,
    entry: &'static Entry,
}

impl Mongo {
    /// Opens the store with the options `lookup` finds (see [`config`]). Nothing connects yet,
    /// so a daemon starts while its server is down and the spool retries: see [`Sink::check`].
    pub fn open(lookup: &Lookup<'_>, flavour: Flavour) -> Result<Mongo> {
        Ok(Self::open_with(MongoConfig::from_lookup(lookup, flavour)?))
    }

    pub fn open_with(config: MongoConfig) -> Mongo {
        let entry = match config.flavour {
            Flavour::Future => &ENTRY,
            Flavour::Return => &RETURN_ENTRY,
        };
        Mongo { conn: Connection::new(config), entry }
    }

    pub fn config(&self) -> &MongoConfig {
        self.conn.config()
    }

    async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(rets, |ret| match ReturnRecord::parse(ret)? {
            Some(rec) => encode::return_document(&rec).map(Some),
            None => Ok(None),
        });
        let describe = |index: usize| {
            let row = &rows.iter().find(|r| r.index == index).expect("a row of this batch").row;
            crate::record::describe(&row.minion, &row.jid)
        };
        // A `req` return is also its job's load (saved first: a job's load before its returns).
        let loads: Vec<(usize, &RawDocumentBuf)> = rows.iter().filter_map(|r| r.row.load.as_ref().map(|l| (r.index, l))).collect();
        rejected.extend(self.conn.insert(JOBS, &loads, describe).await?);
        let refused: HashSet<usize> = rejected.iter().map(|r| r.index).collect();
        let docs: Vec<(usize, &RawDocumentBuf)> =
            rows.iter().filter(|r| !refused.contains(&r.index)).map(|r| (r.index, &r.row.doc)).collect();
        rejected.extend(self.conn.insert(RETURNS, &docs, describe).await?);
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    async fn store_events(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(events, |ev| encode::event_document(ev).map(Some));
        let docs: Vec<(usize, &RawDocumentBuf)> = rows.iter().map(|r| (r.index, &r.row)).collect();
        rejected.extend(self.conn.insert(EVENTS, &docs, |i| format!("event {}", events[i].tag)).await?);
        rejected.sort_by_key(|r| r.index);
        Ok(rejected)
    }

    /// `{minion: full_ret}` of `saltReturns` documents, sorted by minion id.
    fn by_minion(docs: Vec<Document>) -> Map<String, Value> {
        let mut pairs: Vec<(String, Value)> = docs
            .into_iter()
            .filter_map(|d| {
                let minion = d.get_str("minion").ok()?.to_string();
                Some((minion, encode::full_ret_from_document(d)))
            })
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.into_iter().collect()
    }
}

fn invalid_jid(e: salt_proto::jid::JidError) -> ReturnerError {
    ReturnerError::Invalid(e.to_string())
}

#[async_trait]
impl JobChunks for Mongo {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        // Comparing with strings matches string `_id`s only: documents Salt wrote (ObjectIds)
        // stay out of the walk.
        let mut range = Document::new();
        range.insert(if lo_inclusive { "$gte" } else { "$gt" }, lo);
        if let Some(hi) = hi {
            range.insert("$lt", hi);
        }
        let mut projection = Document::new();
        for field in SUMMARY_FIELDS {
            projection.insert(field, 1);
        }
        let direction = if oldest_first { 1 } else { -1 };
        let docs = self
            .conn
            .find(
                JOBS,
                doc! { "_id": range },
                Some(doc! { "_id": direction }),
                Some(i64::try_from(limit).unwrap_or(i64::MAX)),
                Some(projection),
            )
            .await?;
        Ok(docs
            .into_iter()
            .filter_map(|d| {
                let jid = d.get_str("_id").ok()?.to_string();
                Some(summary_from_load(&jid, &encode::load_from_document(d)))
            })
            .collect())
    }
}

#[async_trait]
impl Sink for Mongo {
    fn entry(&self) -> &'static Entry {
        self.entry
    }

    /// Connects, logs in and lists the database's collections (making the indexes first when
    /// `mongo.indexes` asks): one clear error for a missing server or a refused login.
    async fn check(&self) -> Result<()> {
        self.conn.check().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        self.store_events(events).await
    }
}

#[async_trait]
impl JobCache for Mongo {
    /// As Salt's: nothing recorded, `nocache` not kept.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config().unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(invalid_jid)?;
        let doc = encode::load_document(jid, load).map_err(ReturnerError::Rejected)?;
        match self.conn.insert(JOBS, &[(0, &doc)], |_| format!("the load of {jid}")).await?.pop() {
            Some(rejection) => Err(ReturnerError::Rejected(rejection.reason)),
            None => Ok(()),
        }
    }

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        // Salt's layout has no place for them ("included for API consistency").
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        Ok(self.conn.find_by_id(JOBS, jid).await?.map(encode::load_from_document))
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        let (lo, hi) = encode::return_id_range(jid);
        let docs = self
            .conn
            .find(RETURNS, doc! { "_id": { "$gte": lo, "$lt": hi } }, None, None, Some(doc! { "minion": 1, "full_ret": 1 }))
            .await?;
        Ok(Self::by_minion(docs))
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        // Each minion's latest jid for `fun` (small: ids and jids), then those returns by `_id`.
        let latest = self
            .conn
            .aggregate(
                RETURNS,
                vec![
                    doc! { "$match": { "fun": fun, "_id": { "$type": "string" } } },
                    doc! { "$group": { "_id": "$minion", "jid": { "$max": "$jid" } } },
                ],
            )
            .await?;
        let ids: Vec<Bson> =
            latest.iter().filter_map(|d| Some(Bson::String(encode::return_id(d.get_str("jid").ok()?, d.get_str("_id").ok()?)))).collect();
        if ids.is_empty() {
            return Ok(Map::new());
        }
        let docs = self.conn.find(RETURNS, doc! { "_id": { "$in": ids } }, None, None, Some(doc! { "minion": 1, "full_ret": 1 })).await?;
        Ok(Self::by_minion(docs))
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> =
            self.conn.distinct(RETURNS, "minion").await?.into_iter().filter_map(|b| b.as_str().map(str::to_string)).collect();
        ids.sort();
        Ok(ids)
    }
}
