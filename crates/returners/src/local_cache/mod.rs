//! `local_cache`: the default master job cache.
//!
//! It keeps what Salt's `local_cache` keeps — the publish load, the expected minions, each
//! minion's return (`return`, `retcode`, `success`, `out`, and the full return load), the end
//! time and the `nocache` marker — and behaves as it does where a caller can see it:
//! `get_load` adds the sorted `Minions`, `get_jid` gives `{id: {"return", "retcode"?,
//! "success"?, "out"?}}`, a second return for the same (jid, minion) is ignored, `prep_jid` with
//! a jid records and returns it, and a `nocache` job stores no returns.
//!
//! The files are ours: one SQLite database, `<cachedir>/job_cache.sqlite`, instead of Salt's
//! `jobs/<hash>/<minion>/return.p` tree. Salt lists jobs by walking and unpickling every job
//! directory, so `jobs.list_jobs` costs O(all jobs); here listings walk an index in jid order and
//! stop after one page, and they never read a load or a result body (see [`schema`] for the
//! tables and `listing` for the walk).
//!
//! Crash safety: the database runs in WAL mode with `synchronous=NORMAL`. A write call returns
//! only after its transaction commits, and a committed transaction is in the WAL file (at least
//! in the OS page cache) by then, so a `kill -9` of the master loses no acknowledged return.
//! Only an OS crash or power cut can drop the last few commits; the file is never corrupted.
//!
//! All writes go through one connection (SQLite has one writer at a time anyway); reads use a
//! small pool of their own and are never blocked by writes.

mod listing;
mod returns;
pub mod schema;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};
use sqlx::sqlite::{Sqlite, SqlitePool};
use sqlx::{Row, Transaction};

use crate::options::master_flag;
use crate::registry::{Entry, Store};
use crate::{format, Capability, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "local_cache";

/// Every job-cache call; events are not a job cache's business (Salt's has none either).
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: &[
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
        Capability::UpdateEndtime,
        Capability::GetEndtime,
    ],
    open: |lookup| {
        async move {
            let empty = Map::new();
            let config = LocalCacheConfig::from_opts(lookup.opts.unwrap_or(&empty))?;
            Ok(Store::JobCache(std::sync::Arc::new(LocalCache::open_with(&config).await?)))
        }
        .boxed()
    },
    schema: None,
};

/// Jobs removed per purge transaction, so a big purge never holds the write lock for long.
const PURGE_BATCH: i64 = 100;
/// Tries at a fresh jid before `prep_jid` gives up (Salt tries 5 times too).
const JID_TRIES: usize = 5;

/// Settings, from the master's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCacheConfig {
    /// The master's `cachedir`; the database is `<cachedir>/job_cache.sqlite`.
    pub cachedir: PathBuf,
    /// Salt's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl LocalCacheConfig {
    pub fn new(cachedir: impl Into<PathBuf>) -> LocalCacheConfig {
        LocalCacheConfig { cachedir: cachedir.into(), unique_jid: false }
    }

    /// From the master's config map (`cachedir`, `unique_jid`).
    pub fn from_opts(opts: &Map<String, Value>) -> Result<LocalCacheConfig> {
        let cachedir = opts.get("cachedir").and_then(Value::as_str).ok_or_else(|| ReturnerError::Invalid("cachedir is not set".into()))?;
        Ok(LocalCacheConfig { cachedir: PathBuf::from(cachedir), unique_jid: master_flag(Some(opts), "unique_jid") })
    }
}

/// One publish for [`LocalCache::save_loads`].
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    pub jid: &'a str,
    pub load: &'a Load,
    pub minions: Option<&'a [String]>,
}

pub struct LocalCache {
    path: PathBuf,
    writer: SqlitePool,
    readers: SqlitePool,
    unique_jid: bool,
}

pub(crate) fn db_err(e: sqlx::Error) -> ReturnerError {
    ReturnerError::Unavailable(format!("local_cache: {e}"))
}

pub(crate) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// One minion's entry in `get_jid`, as Salt's local_cache gives it: `return`, then `retcode`,
/// `success` and `out` only when stored, in that order. `json_patch` drops the keys whose value
/// is NULL (an RFC 7396 merge patch) and appends the rest in order.
const GET_JID_ENTRY: &str = "json_patch(
    iif(ret IS NULL, '{}', json_object('return', json(ret))),
    json_object('retcode', retcode,
                'success', json(CASE success WHEN 1 THEN 'true' WHEN 0 THEN 'false' END),
                'out', out))";

/// Above this many bytes of returns in one job, `get_jid` reads them row by row.
const AGGREGATE_UP_TO: i64 = 4 * 1024 * 1024;

fn unreadable(jid: &str, e: serde_json::Error) -> ReturnerError {
    ReturnerError::Unavailable(format!("local_cache: returns of {jid} are unreadable: {e}"))
}

/// Reads that name a jid treat a malformed one as unknown, as Salt does: nothing is stored
/// under it, so there is nothing to find.
fn known_shape(jid: &str) -> bool {
    salt_proto::jid::is_jid(jid)
}

fn checked_jid(jid: &str) -> Result<()> {
    salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))
}

impl LocalCache {
    /// `get_jid` one row at a time, each entry built here as [`GET_JID_ENTRY`] builds it in SQL
    /// (`json_patch` drops the keys whose value is NULL): memory is one return at a time.
    async fn get_jid_row_by_row(&self, jid: &str) -> Result<Map<String, Value>> {
        use futures::TryStreamExt;
        let mut rows =
            sqlx::query("SELECT id, ret, retcode, success, out FROM returns WHERE jid = ?1 ORDER BY id").bind(jid).fetch(&self.readers);
        let mut out = Map::new();
        while let Some(row) = rows.try_next().await.map_err(db_err)? {
            let id: String = row.try_get(0).map_err(db_err)?;
            let mut entry = Map::new();
            // Borrowed from the row, not copied: the row already holds the text.
            if let Some(ret) = row.try_get::<Option<&str>, _>(1).map_err(db_err)? {
                entry.insert("return".into(), serde_json::from_str(ret).map_err(|e| unreadable(jid, e))?);
            }
            if let Some(retcode) = row.try_get::<Option<i64>, _>(2).map_err(db_err)? {
                entry.insert("retcode".into(), retcode.into());
            }
            match row.try_get::<Option<i64>, _>(3).map_err(db_err)? {
                Some(1) => entry.insert("success".into(), true.into()),
                Some(0) => entry.insert("success".into(), false.into()),
                _ => None,
            };
            if let Some(out_name) = row.try_get::<Option<String>, _>(4).map_err(db_err)? {
                entry.insert("out".into(), out_name.into());
            }
            out.insert(id, Value::Object(entry));
        }
        Ok(out)
    }

    pub async fn open(cachedir: &Path) -> Result<LocalCache> {
        Self::open_with(&LocalCacheConfig::new(cachedir)).await
    }

    pub async fn open_with(config: &LocalCacheConfig) -> Result<LocalCache> {
        let (writer, readers) = schema::open(&config.cachedir).await?;
        Ok(LocalCache { path: config.cachedir.join(schema::FILE_NAME), writer, readers, unique_jid: config.unique_jid })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the connections (checkpointing the WAL). Dropping the cache also closes them,
    /// without waiting.
    pub async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }

    /// `save_load` for many jobs in one transaction; the first load stored for a jid wins.
    pub async fn save_loads(&self, jobs: &[NewJob<'_>]) -> Result<()> {
        for job in jobs {
            checked_jid(job.jid)?;
        }
        let now = now_secs();
        let mut tx = self.write_tx().await?;
        for job in jobs {
            let s = format::summary_from_load(job.jid, job.load);
            let json = |v: &Value| serde_json::to_string(v).map_err(|e| ReturnerError::Rejected(e.to_string()));
            let load = serde_json::to_string(job.load).map_err(|e| ReturnerError::Rejected(e.to_string()))?;
            // The listing columns are set only by the first load (loaded = 0 until then).
            sqlx::query(
                "INSERT INTO jobs (jid, loaded, fun, tgt, tgt_type, user, arg, metadata, last_activity)
                 VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (jid) DO UPDATE SET
                   last_activity = max(jobs.last_activity, excluded.last_activity),
                   fun = iif(jobs.loaded, jobs.fun, excluded.fun),
                   tgt = iif(jobs.loaded, jobs.tgt, excluded.tgt),
                   tgt_type = iif(jobs.loaded, jobs.tgt_type, excluded.tgt_type),
                   user = iif(jobs.loaded, jobs.user, excluded.user),
                   arg = iif(jobs.loaded, jobs.arg, excluded.arg),
                   metadata = iif(jobs.loaded, jobs.metadata, excluded.metadata),
                   loaded = 1",
            )
            .bind(job.jid)
            .bind(&s.fun)
            .bind(json(&s.tgt)?)
            .bind(&s.tgt_type)
            .bind(&s.user)
            .bind(json(&Value::Array(s.arg.clone()))?)
            .bind(s.metadata.as_ref().map(json).transpose()?)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            sqlx::query("INSERT INTO loads (jid, load) VALUES (?1, ?2) ON CONFLICT (jid) DO NOTHING")
                .bind(job.jid)
                .bind(load)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query("INSERT INTO functions (fun) VALUES (?1) ON CONFLICT DO NOTHING")
                .bind(&s.fun)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if let Some(minions) = job.minions.filter(|m| !m.is_empty()) {
                merge_minions(&mut tx, job.jid, minions, "", now).await?;
            }
        }
        tx.commit().await.map_err(db_err)
    }

    /// A write transaction. `BEGIN IMMEDIATE` takes the write lock up front, so a transaction
    /// that reads before it writes can never fail to upgrade.
    async fn write_tx(&self) -> Result<Transaction<'static, Sqlite>> {
        match self.writer.begin_with("BEGIN IMMEDIATE").await {
            // A statement that failed for a full disk makes SQLite roll the transaction back
            // itself; sqlx 0.9 still counts it open and then refuses every BEGIN on that
            // connection. Close it, so the pool opens a fresh one.
            Err(sqlx::Error::InvalidSavePointStatement) => {
                tracing::warn!("local_cache: reopening the write connection after a failed transaction");
                let stuck = self.writer.acquire().await.map_err(db_err)?;
                stuck.close().await.map_err(db_err)?;
                self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)
            }
            other => other.map_err(db_err),
        }
    }

    /// A new job row under a fresh jid.
    async fn allocate_jid(&self, tx: &mut Transaction<'static, Sqlite>, nocache: bool) -> Result<String> {
        for _ in 0..JID_TRIES {
            let jid = salt_proto::jid::new_jid(self.unique_jid);
            let done = sqlx::query("INSERT INTO jobs (jid, nocache, last_activity) VALUES (?1, ?2, ?3) ON CONFLICT (jid) DO NOTHING")
                .bind(&jid)
                .bind(nocache)
                .bind(now_secs())
                .execute(&mut **tx)
                .await
                .map_err(db_err)?;
            if done.rows_affected() == 1 {
                return Ok(jid);
            }
        }
        Err(ReturnerError::Unavailable(format!("local_cache: no free jid after {JID_TRIES} tries")))
    }

    /// Records activity for `jid` (creating its row), with an optional end time.
    async fn touch(&self, jid: &str, endtime: Option<&str>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO jobs (jid, endtime, last_activity) VALUES (?1, ?2, ?3)
             ON CONFLICT (jid) DO UPDATE SET
               endtime = coalesce(excluded.endtime, jobs.endtime),
               last_activity = max(jobs.last_activity, excluded.last_activity)",
        )
        .bind(jid)
        .bind(endtime)
        .bind(now_secs())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)
    }
}

/// Adds `minions` to the list kept for (jid, syndic_id), as Salt 3008 does, so batch jobs that
/// share a jid keep every batch's minions.
async fn merge_minions(tx: &mut Transaction<'static, Sqlite>, jid: &str, minions: &[String], syndic_id: &str, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO jobs (jid, last_activity) VALUES (?1, ?2)
         ON CONFLICT (jid) DO UPDATE SET last_activity = max(jobs.last_activity, excluded.last_activity)",
    )
    .bind(jid)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    let old: Option<String> = sqlx::query_scalar("SELECT ids FROM minions WHERE jid = ?1 AND syndic_id = ?2")
        .bind(jid)
        .bind(syndic_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    let mut all: BTreeSet<String> = old.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    all.extend(minions.iter().cloned());
    let ids = serde_json::to_string(&all).map_err(|e| ReturnerError::Rejected(e.to_string()))?;
    sqlx::query(
        "INSERT INTO minions (jid, syndic_id, ids) VALUES (?1, ?2, ?3)
         ON CONFLICT (jid, syndic_id) DO UPDATE SET ids = excluded.ids",
    )
    .bind(jid)
    .bind(syndic_id)
    .bind(ids)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// `get_fun`'s "full return": the stored envelope with the return value put back in its place.
fn full_return(ret: Option<String>, envelope: &str) -> Value {
    let mut full: Map<String, Value> = serde_json::from_str(envelope).unwrap_or_default();
    if let Some(ret) = ret {
        full.insert("return".into(), serde_json::from_str(&ret).unwrap_or(Value::Null));
    }
    Value::Object(full)
}

#[async_trait]
impl Sink for LocalCache {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }
}

#[async_trait]
impl JobCache for LocalCache {
    async fn prep_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        let mut tx = self.write_tx().await?;
        let jid = match passed_jid {
            Some(jid) => {
                checked_jid(jid)?;
                // A nocache marker, once set, stays (Salt never removes the file).
                sqlx::query(
                    "INSERT INTO jobs (jid, nocache, last_activity) VALUES (?1, ?2, ?3)
                     ON CONFLICT (jid) DO UPDATE SET
                       nocache = max(jobs.nocache, excluded.nocache),
                       last_activity = max(jobs.last_activity, excluded.last_activity)",
                )
                .bind(jid)
                .bind(nocache)
                .bind(now_secs())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                jid.to_string()
            }
            None => self.allocate_jid(&mut tx, nocache).await?,
        };
        tx.commit().await.map_err(db_err)?;
        Ok(jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, minions: Option<&[String]>) -> Result<()> {
        self.save_loads(&[NewJob { jid, load, minions }]).await
    }

    async fn save_minions(&self, jid: &str, minions: &[String], syndic_id: Option<&str>) -> Result<()> {
        checked_jid(jid)?;
        let mut tx = self.write_tx().await?;
        merge_minions(&mut tx, jid, minions, syndic_id.unwrap_or(""), now_secs()).await?;
        tx.commit().await.map_err(db_err)
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !known_shape(jid) {
            return Ok(None);
        }
        let load: Option<String> =
            sqlx::query_scalar("SELECT load FROM loads WHERE jid = ?1").bind(jid).fetch_optional(&self.readers).await.map_err(db_err)?;
        let Some(load) = load else { return Ok(None) };
        let mut load: Load = serde_json::from_str(&load)
            .map_err(|e| ReturnerError::Unavailable(format!("local_cache: stored load of {jid} is unreadable: {e}")))?;
        let lists: Vec<String> =
            sqlx::query_scalar("SELECT ids FROM minions WHERE jid = ?1").bind(jid).fetch_all(&self.readers).await.map_err(db_err)?;
        let all: BTreeSet<String> = lists.iter().filter_map(|s| serde_json::from_str::<Vec<String>>(s).ok()).flatten().collect();
        if !all.is_empty() {
            load.insert("Minions".into(), Value::Array(all.into_iter().map(Value::String).collect()));
        }
        Ok(Some(load))
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !known_shape(jid) {
            return Ok(Map::new());
        }
        // Small jobs: SQLite assembles the whole answer as one JSON text, one string to parse
        // instead of one row per minion through the driver (twice as fast for 10,000 returns).
        // Large ones row by row: SQLite's JSON functions would hold a 40 MB return several
        // times over while assembling the answer.
        let size: i64 = sqlx::query_scalar("SELECT coalesce(sum(octet_length(ret)), 0) FROM returns WHERE jid = ?1")
            .bind(jid)
            .fetch_one(&self.readers)
            .await
            .map_err(db_err)?;
        if size > AGGREGATE_UP_TO {
            return self.get_jid_row_by_row(jid).await;
        }
        let whole: std::result::Result<Option<String>, sqlx::Error> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT json_group_object(id, json(entry)) FROM (SELECT id, {GET_JID_ENTRY} AS entry
             FROM returns WHERE jid = ?1 ORDER BY id)"
        )))
        .bind(jid)
        .fetch_one(&self.readers)
        .await;
        match whole {
            Ok(None) => Ok(Map::new()),
            Ok(Some(text)) => serde_json::from_str(&text).map_err(|e| unreadable(jid, e)),
            // Past SQLite's 1 GB string limit.
            Err(sqlx::Error::Database(e)) if e.message().contains("too big") => self.get_jid_row_by_row(jid).await,
            Err(e) => Err(db_err(e)),
        }
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        // Skip-scan of (fun, id, jid): one index seek per minion rather than a scan of every
        // return of `fun`; then that minion's latest jid.
        let rows = sqlx::query(
            "WITH RECURSIVE m(id) AS (
                 SELECT min(id) FROM returns WHERE fun = ?1
                 UNION ALL
                 SELECT (SELECT min(id) FROM returns WHERE fun = ?1 AND id > m.id) FROM m WHERE m.id IS NOT NULL
             )
             SELECT r.id, r.ret, r.full_ret FROM m JOIN returns r
               ON r.id = m.id AND r.jid = (SELECT max(jid) FROM returns WHERE fun = ?1 AND id = m.id)
             WHERE m.id IS NOT NULL ORDER BY r.id",
        )
        .bind(fun)
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)?;
        let mut out = Map::new();
        for row in rows {
            let id: String = row.try_get(0).map_err(db_err)?;
            let ret: Option<String> = row.try_get(1).map_err(db_err)?;
            let envelope: String = row.try_get(2).map_err(db_err)?;
            out.insert(id, full_return(ret, &envelope));
        }
        Ok(out)
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        listing::get_jids(&self.readers, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        // Skip-scan of the (id, jid) index: one seek per distinct minion.
        sqlx::query_scalar(
            "WITH RECURSIVE m(id) AS (
                 SELECT min(id) FROM returns
                 UNION ALL
                 SELECT (SELECT min(id) FROM returns WHERE id > m.id) FROM m WHERE m.id IS NOT NULL
             )
             SELECT id FROM m WHERE id IS NOT NULL",
        )
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)
    }

    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        // keep_jobs_seconds: 0 means keep forever.
        if keep.is_zero() {
            return Ok(0);
        }
        let cutoff = now_secs().saturating_sub(i64::try_from(keep.as_secs()).unwrap_or(i64::MAX));
        let mut removed = 0u64;
        loop {
            // last_activity is the job's latest write, returns included: a long-running job
            // with a fresh return is not old. ON DELETE CASCADE takes its load, minions and
            // returns with it.
            let mut tx = self.write_tx().await?;
            let done = sqlx::query("DELETE FROM jobs WHERE jid IN (SELECT jid FROM jobs WHERE last_activity < ?1 LIMIT ?2)")
                .bind(cutoff)
                .bind(PURGE_BATCH)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            tx.commit().await.map_err(db_err)?;
            removed += done;
            if (done as i64) < PURGE_BATCH {
                break;
            }
            // Let queued writers (returns) have the connection between batches.
            tokio::task::yield_now().await;
        }
        if removed > 0 {
            // Functions with no job left would otherwise still be merged into listings.
            let mut tx = self.write_tx().await?;
            sqlx::query("DELETE FROM functions WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.fun = functions.fun)")
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            tracing::debug!(removed, "local_cache: purged old jobs");
        }
        Ok(removed)
    }

    async fn update_endtime(&self, jid: &str, time: &str) -> Result<()> {
        checked_jid(jid)?;
        self.touch(jid, Some(time)).await
    }

    async fn get_endtime(&self, jid: &str) -> Result<Option<String>> {
        if !known_shape(jid) {
            return Ok(None);
        }
        let end: Option<Option<String>> =
            sqlx::query_scalar("SELECT endtime FROM jobs WHERE jid = ?1").bind(jid).fetch_optional(&self.readers).await.map_err(db_err)?;
        Ok(end.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn file_is_wal_and_reopens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let jid = "20240510093015123456";
        {
            let c = LocalCache::open(dir.path()).await.unwrap();
            c.save_load(jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), Some(&["m1".to_string()])).await.unwrap();
            c.returner(&obj(json!({"id": "m1", "jid": jid, "return": true, "retcode": 0}))).await.unwrap();
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&c.readers).await.unwrap();
            assert_eq!(mode, "wal");
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&c.writer).await.unwrap();
            assert_eq!(sync, 1, "synchronous=NORMAL");
            // No close(): a dropped cache must not lose what it acknowledged.
        }
        let c = LocalCache::open(dir.path()).await.unwrap();
        assert_eq!(c.get_jid(jid).await.unwrap(), *json!({"m1": {"return": true, "retcode": 0}}).as_object().unwrap());
        assert_eq!(c.path(), dir.path().join("job_cache.sqlite"));
    }

    #[tokio::test]
    async fn large_jobs_are_read_row_by_row_with_the_same_answer() {
        let dir = tempfile::tempdir().unwrap();
        let jid = "20240510093015123456";
        let c = LocalCache::open(dir.path()).await.unwrap();
        c.save_load(jid, &obj(json!({"fun": "cmd.run", "tgt": "*"})), None).await.unwrap();
        c.returner(&obj(json!({"id": "m1", "jid": jid, "return": {"a": [1, "é"]}, "retcode": 0, "success": true, "out": "nested"})))
            .await
            .unwrap();
        c.returner(&obj(json!({"id": "m2", "jid": jid, "return": "x", "success": false}))).await.unwrap();
        c.returner(&obj(json!({"id": "m3", "jid": jid, "return": null}))).await.unwrap();
        let aggregated = c.get_jid(jid).await.unwrap();
        assert_eq!(aggregated.len(), 3);
        assert_eq!(c.get_jid_row_by_row(jid).await.unwrap(), aggregated);

        // Past the threshold, get_jid takes the row path and still answers.
        let big = "x".repeat(AGGREGATE_UP_TO as usize + 1);
        c.returner(&obj(json!({"id": "m4", "jid": jid, "return": big, "retcode": 0}))).await.unwrap();
        let all = c.get_jid(jid).await.unwrap();
        assert_eq!(all["m4"]["return"].as_str().map(str::len), Some(AGGREGATE_UP_TO as usize + 1));
        assert_eq!(all["m1"], aggregated["m1"]);
    }

    #[tokio::test]
    async fn req_jid_gets_a_fresh_job() {
        let dir = tempfile::tempdir().unwrap();
        let c = LocalCache::open(dir.path()).await.unwrap();
        c.returner(&obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "return": true}))).await.unwrap();
        let funs = c.get_fun("test.ping").await.unwrap();
        let jid = funs["m1"]["jid"].as_str().unwrap();
        assert!(salt_proto::jid::is_jid(jid), "{jid}");
        assert_eq!(c.get_jid(jid).await.unwrap()["m1"], json!({"return": true}));
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let c = LocalCache::open(dir.path()).await.unwrap();
        sqlx::query("PRAGMA user_version = 99").execute(&c.writer).await.unwrap();
        c.close().await;
        let err = LocalCache::open(dir.path()).await.err().expect("refused");
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }

    #[tokio::test]
    async fn unique_jid_from_opts() {
        let dir = tempfile::tempdir().unwrap();
        let opts = json!({"cachedir": dir.path().to_str().unwrap(), "unique_jid": true});
        let cfg = LocalCacheConfig::from_opts(opts.as_object().unwrap()).unwrap();
        let c = LocalCache::open_with(&cfg).await.unwrap();
        let jid = c.prep_jid(false, None).await.unwrap();
        assert!(jid.ends_with(&format!("_{}", std::process::id())), "{jid}");
        assert!(LocalCacheConfig::from_opts(&Map::new()).is_err());
    }
}
