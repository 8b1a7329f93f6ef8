//! `couchdb`: returns and loads as CouchDB documents (Salt's `salt/returners/couchdb_return.py`),
//! a full job cache.
//!
//! What Salt's module means to write (its own writes fail: it hands urllib a text body, so it
//! stores nothing), see [`encode`]: a document per return, the return's fields plus
//! `timestamp`, in the database `couchdb.db` (created when missing, as Salt does), and Salt's
//! views in `_design/salt`. Salt's calls: `returner`, `get_jid`, `get_jids`, `get_fun`,
//! `get_minions`, `prep_jid`, `save_minions` (a no-op).
//!
//! Where we differ from Salt, on purpose:
//! - A return's `_id` is `<jid>-<minion id>`: Salt's `_id` = jid kept the first minion's return
//!   of a job and lost the others (409 conflicts).
//! - A full job cache: `save_load` and `get_load` (a document with `_id` = jid, which Salt's
//!   `get_jids` would list), and `clean_old_jobs` (jobs whose documents are all older than
//!   `keep_jobs_seconds`, by their `timestamp`). Salt's module had none of them.
//! - A batch is one `_bulk_docs` (up to 8 MiB); each document's outcome is its record's: a
//!   conflict means it is stored already (the first return of a minion for a jid, and the
//!   first load, stay), another error refuses that record alone.
//! - Top-level names CouchDB keeps for itself (`_stamp`, which the master adds) and
//!   `timestamp` are stored with a `~` in front.
//! - The store reads its own views (`_design/jobs`): `get_jids` pages a view by jid,
//!   `get_fun` reads each minion's newest return of the function in two requests (Salt's made
//!   one per minion), `get_jid` gives `{id: return}` for every minion (Salt's gave the one
//!   document whose `_id` was the jid).
//! - Salt's `minions` view had a reduce that fails (an undefined name): `_count` here.

pub mod client;
pub mod config;
pub mod encode;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

pub use config::CouchDbConfig;

use self::client::{Client, From, Reply};
use self::encode::{document, fields, return_ids_of, ReturnDoc, JOBS_DESIGN};
use crate::batch::{by_size, insert_or_sift, prepare_all, Indexed};
use crate::http::MAX_ANSWER_BYTES;
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::registry::{Entry, Store, JOB_CACHE_WITH_PURGE};
use crate::{JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "couchdb";

/// Salt's couchdb calls, and what makes it a full job cache.
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE_WITH_PURGE,
    open: |lookup| async move { Ok(Store::JobCache(Arc::new(CouchDb::open(lookup)?))) }.boxed(),
    schema: None,
};

/// The most one `_bulk_docs` carries (a bigger return goes alone).
const MAX_BULK_BYTES: usize = 8 * 1024 * 1024;

pub struct CouchDb {
    client: Client,
    unique_jid: bool,
}

/// `time.time()`.
fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

fn view(name: &str) -> String {
    format!("{JOBS_DESIGN}/_view/{name}")
}

/// Whether a 404 is about the document (missing, deleted) rather than the database.
fn doc_missing(answer: &[u8]) -> bool {
    let reason = serde_json::from_slice::<Value>(answer).ok().and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string));
    matches!(reason.as_deref(), Some("missing" | "deleted"))
}

impl CouchDb {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is sent yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<CouchDb> {
        Self::open_with(CouchDbConfig::from_lookup(lookup)?)
    }

    pub fn open_with(config: CouchDbConfig) -> Result<CouchDb> {
        let unique_jid = config.unique_jid;
        Ok(CouchDb { client: Client::new(config)?, unique_jid })
    }

    /// `_bulk_docs` of `docs`, the database made again if it went; each document's outcome.
    async fn bulk(&self, docs: &[&str]) -> Result<Vec<Value>> {
        self.client.ensure().await?;
        match self.client.bulk(docs).await {
            Err(ReturnerError::Unavailable(m)) if m.contains("is missing") => {
                self.client.forget_ready().await;
                self.client.ensure().await?;
                self.client.bulk(docs).await
            }
            other => other,
        }
    }

    /// One `_bulk_docs` of `rows`: a conflict is a document stored already; any other error of
    /// a document refuses its record (into `refused`).
    async fn write(&self, rows: &[Indexed<ReturnDoc>], refused: &std::sync::Mutex<Vec<Rejection>>) -> Result<()> {
        let texts: Vec<&str> = rows.iter().flat_map(|r| r.row.docs.iter().map(|(_, text)| text.as_str())).collect();
        let outcomes = self.bulk(&texts).await?;
        // Outcomes name their document (pouchdb-server does not keep the order).
        let mut owners: HashMap<&str, Vec<&Indexed<ReturnDoc>>> = HashMap::new();
        for row in rows {
            for (id, _) in &row.row.docs {
                owners.entry(id).or_default().push(row);
            }
        }
        let mut refused = refused.lock().unwrap_or_else(|e| e.into_inner());
        for outcome in outcomes {
            let Some(error) = outcome.get("error").and_then(Value::as_str) else { continue };
            let reason = outcome.get("reason").and_then(Value::as_str).unwrap_or_default();
            match error {
                "conflict" => {}
                "unauthorized" => {
                    return Err(ReturnerError::Unavailable(format!("couchdb: the server refused to store a document: {error}: {reason}")))
                }
                _ => {
                    let id = outcome.get("id").and_then(Value::as_str).unwrap_or_default();
                    let Some(row) = owners.get_mut(id).and_then(|o| (!o.is_empty()).then(|| o.remove(0))) else {
                        return Err(ReturnerError::Unavailable(format!(
                            "couchdb: the server answered for a document it was not sent: {id}"
                        )));
                    };
                    let reason = format!("{}: couchdb refused it: {error}: {reason}", row.row.describe());
                    refused.push(Rejection { index: row.index, reason });
                }
            }
        }
        Ok(())
    }

    async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let timestamp = now();
        let (rows, mut rejected) = prepare_all(rets, |ret| ReturnDoc::new(ret, timestamp));
        let refused = std::sync::Mutex::new(Vec::new());
        for run in by_size(&rows, MAX_BULK_BYTES, |r| r.row.bytes()) {
            insert_or_sift(run, |rows| self.write(rows, &refused), ReturnDoc::describe, &mut rejected).await?;
        }
        rejected.extend(refused.into_inner().unwrap_or_else(|e| e.into_inner()));
        // A `req` return is two documents: one rejection for its record.
        rejected.sort_by_key(|r| r.index);
        rejected.dedup_by_key(|r| r.index);
        Ok(rejected)
    }

    /// The document `id`'s fields, or `None` when there is none.
    async fn get_doc(&self, id: &str) -> Result<Option<Load>> {
        self.client.ensure().await?;
        match self.client.call(Method::GET, self.client.doc_url(id), None, MAX_ANSWER_BYTES).await? {
            Reply::Json(Value::Object(doc)) => Ok(Some(fields(doc))),
            Reply::Json(_) => Ok(Some(Map::new())),
            Reply::Refused(StatusCode::NOT_FOUND, answer) if doc_missing(&answer) => Ok(None),
            Reply::Refused(status, answer) => {
                if status == StatusCode::NOT_FOUND {
                    self.client.forget_ready().await;
                }
                Err(self.client.refused(status, &answer))
            }
            Reply::TooBig => Err(self.client.too_big()),
        }
    }

    /// Deletes every document of `jid` (its load and returns).
    async fn delete_job(&self, jid: &str) -> Result<()> {
        let (from, to) = return_ids_of(jid);
        let query = [("endkey", Value::String(to).to_string()), ("inclusive_end", "false".into())];
        let mut rows = self.client.rows("_all_docs", &query, From::Key(Value::String(from)), None).await?;
        if let Some(load) = self.client.rows("_all_docs", &[("key", Value::String(jid.into()).to_string())], From::Start, None).await?.pop()
        {
            rows.push(load);
        }
        let tombstones: Vec<String> = rows
            .iter()
            .filter_map(|r| Some(json!({"_id": r.get("id")?, "_rev": r.get("value")?.get("rev")?, "_deleted": true}).to_string()))
            .collect();
        for group in tombstones.chunks(client::PAGE) {
            let texts: Vec<&str> = group.iter().map(String::as_str).collect();
            // A conflict: updated meanwhile; the next purge looks again.
            self.bulk(&texts).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl JobChunks for CouchDb {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        self.client.ensure().await?;
        let key = |jid: &str| Value::String(jid.to_string());
        // A view's start key is inclusive: an exclusive one is read and left out.
        let (query, from, excluded) = if oldest_first {
            let mut query = Vec::new();
            if let Some(hi) = hi {
                query.extend([("endkey", key(hi).to_string()), ("inclusive_end", "false".into())]);
            }
            (query, From::Key(key(lo)), (!lo_inclusive).then_some(lo))
        } else {
            let query =
                vec![("descending", "true".to_string()), ("endkey", key(lo).to_string()), ("inclusive_end", lo_inclusive.to_string())];
            (query, hi.map_or(From::Start, |hi| From::Key(key(hi))), hi)
        };
        let want = limit + usize::from(excluded.is_some());
        let rows = self.client.rows(&view("by-jid"), &query, from, Some(want)).await?;
        let mut out = Vec::with_capacity(limit);
        for row in rows {
            let Some(jid) = row.get("key").and_then(Value::as_str) else { continue };
            if Some(jid) == excluded || out.len() == limit {
                continue;
            }
            let load = row.get("value").and_then(Value::as_object).cloned().unwrap_or_default();
            out.push(crate::format::summary_from_load(jid, &load));
        }
        Ok(out)
    }
}

#[async_trait]
impl Sink for CouchDb {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Logs in, and makes the database and the design documents when missing.
    async fn check(&self) -> Result<()> {
        self.client.ensure().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }
}

#[async_trait]
impl JobCache for CouchDb {
    /// As Salt's: nothing recorded, `nocache` not kept.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        let doc = document(jid, load, now());
        let outcome = self.bulk(&[doc.as_str()]).await?.pop().unwrap_or_default();
        match outcome.get("error").and_then(Value::as_str) {
            // The first load stays.
            None | Some("conflict") => Ok(()),
            Some(error) => Err(ReturnerError::Rejected(format!(
                "couchdb refused the load of {jid}: {error}: {}",
                outcome.get("reason").and_then(Value::as_str).unwrap_or_default()
            ))),
        }
    }

    /// Salt's is a no-op too: the minions are not kept.
    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        self.get_doc(jid).await
    }

    /// `{id: the whole return}` for every minion of the job.
    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        if !salt_proto::jid::is_jid(jid) {
            return Ok(out);
        }
        self.client.ensure().await?;
        let (from, to) = return_ids_of(jid);
        let query = [("include_docs", "true".to_string()), ("endkey", Value::String(to).to_string()), ("inclusive_end", "false".into())];
        for mut row in self.client.rows("_all_docs", &query, From::Key(Value::String(from.clone())), None).await? {
            let (Some(id), Some(Value::Object(doc))) =
                (row.get("id").and_then(Value::as_str).map(str::to_string), row.get_mut("doc").map(Value::take))
            else {
                continue;
            };
            let minion = id.strip_prefix(&from).unwrap_or(&id).to_string();
            out.insert(minion, Value::Object(fields(doc)));
        }
        Ok(out)
    }

    /// `{id: the whole return}` of each minion's newest return of `fun`.
    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        self.client.ensure().await?;
        let query = [("group", "true".to_string()), ("endkey", json!([fun, {}]).to_string())];
        let latest = self.client.rows(&view("latest-by-fun"), &query, From::Key(json!([fun])), None).await?;
        let (mut ids, mut docs) = (Vec::with_capacity(latest.len()), Vec::with_capacity(latest.len()));
        for row in &latest {
            if let (Some(id), Some(jid)) = (row["key"][1].as_str(), row["value"].as_str()) {
                docs.push(encode::return_id(jid, id));
                ids.push(id.to_string());
            }
        }
        let mut out = Map::new();
        for (id, doc) in ids.into_iter().zip(self.client.docs(&docs).await?) {
            if let Some(Value::Object(doc)) = doc {
                out.insert(id, Value::Object(fields(doc)));
            }
        }
        Ok(out)
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.client.ensure().await?;
        let rows = self.client.rows(&view("minions"), &[("group", "true".into())], From::Start, None).await?;
        Ok(rows.iter().filter_map(|r| r["key"].as_str().map(str::to_string)).collect())
    }

    /// Removes the jobs whose documents (load and returns) are all older than `keep`, by their
    /// `timestamp`: a job still getting returns stays.
    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        if keep.is_zero() {
            return Ok(0);
        }
        self.client.ensure().await?;
        let cutoff = now() - keep.as_secs_f64();
        let query = [("endkey", json!(cutoff).to_string()), ("inclusive_end", "false".into())];
        let mut removed = 0;
        let mut from = From::Start;
        loop {
            // A page of documents older than the cutoff, oldest first.
            let page = self.client.rows(&view("by-timestamp"), &query, from, Some(client::PAGE)).await?;
            if page.is_empty() {
                return Ok(removed);
            }
            let jids: BTreeSet<&str> = page.iter().filter_map(|r| r["value"].as_str()).collect();
            // Each of their jobs' newest document.
            let body = Bytes::from(json!({"keys": jids}).to_string());
            let activity = self.client.json(Method::POST, self.client.url(&format!("{}?group=true", view("activity"))), Some(body)).await?;
            let old: BTreeSet<&str> = activity["rows"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["value"]["max"].as_f64().is_some_and(|newest| newest < cutoff))
                .filter_map(|r| r["key"].as_str())
                .collect();
            for jid in &old {
                self.delete_job(jid).await?;
            }
            removed += old.len() as u64;
            if page.len() < client::PAGE {
                return Ok(removed);
            }
            // On past the last row still there (a running job's); the rows of the jobs just
            // removed are gone, so when none is left, from the start again.
            from = match page.iter().rev().find(|r| r["value"].as_str().is_some_and(|jid| !old.contains(jid))) {
                Some(kept) => From::After(kept.clone()),
                None => From::Start,
            };
        }
    }
}
