//! local_cache's I/O: one writer connection and a pool of readers on the SQLite file, batches
//! in one transaction, the reads, the purge.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::sqlite::Sqlite;
use sqlx::{Row, Transaction};

use super::encode::{full_insert_sql, full_return, insert_sql, log_duplicate, prepare, ReturnRow, GET_JID_ENTRY, ROWS_PER_INSERT};
use super::{LocalCache, NewJob};
use crate::batch::prepare_all;
use crate::{format, Load, Rejection, Result, ReturnerError};

/// Jobs removed per purge transaction, so a big purge never holds the write lock for long.
const PURGE_BATCH: i64 = 100;
/// Tries at a fresh jid before `prep_jid` gives up (Salt tries 5 times too).
const JID_TRIES: usize = 5;

pub(super) fn db_err(e: sqlx::Error) -> ReturnerError {
    ReturnerError::Unavailable(format!("local_cache: {e}"))
}

pub(super) fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Above this many bytes of returns in one job, `get_jid` reads them row by row.
pub(super) const AGGREGATE_UP_TO: i64 = 4 * 1024 * 1024;

fn unreadable(jid: &str, e: serde_json::Error) -> ReturnerError {
    ReturnerError::Unavailable(format!("local_cache: returns of {jid} are unreadable: {e}"))
}

/// Reads that name a jid treat a malformed one as unknown, as Salt does: nothing is stored
/// under it, so there is nothing to find.
pub(super) fn known_shape(jid: &str) -> bool {
    salt_proto::jid::is_jid(jid)
}

pub(super) fn checked_jid(jid: &str) -> Result<()> {
    salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))
}

impl LocalCache {
    /// `get_jid` one row at a time, each entry built here as [`GET_JID_ENTRY`] builds it in SQL
    /// (`json_patch` drops the keys whose value is NULL): memory is one return at a time.
    pub(super) async fn get_jid_row_by_row(&self, jid: &str) -> Result<Map<String, Value>> {
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
    pub(super) async fn touch(&self, jid: &str, endtime: Option<&str>) -> Result<()> {
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

impl LocalCache {
    /// `returner_batch`: every valid return of the batch in one transaction; each invalid one
    /// is rejected alone.
    pub(super) async fn store_returns(&self, loads: &[Load]) -> Result<Vec<Rejection>> {
        let (rows, rejected) = prepare_all(loads, prepare);
        if !rows.is_empty() {
            let mut tx = self.write_tx().await?;
            self.write_returns(&mut tx, rows.into_iter().map(|r| r.row).collect()).await?;
            tx.commit().await.map_err(db_err)?;
        }
        Ok(rejected)
    }

    async fn write_returns(&self, tx: &mut Transaction<'static, Sqlite>, mut rows: Vec<ReturnRow>) -> Result<()> {
        let now = now_secs();
        for row in &rows {
            if let Some(nocache) = row.req_nocache {
                sqlx::query("INSERT INTO jobs (jid, nocache, last_activity) VALUES (?1, ?2, ?3) ON CONFLICT (jid) DO NOTHING")
                    .bind(&row.jid)
                    .bind(nocache)
                    .bind(now)
                    .execute(&mut **tx)
                    .await
                    .map_err(db_err)?;
            }
        }

        // Touch each job (creating it if the return came before the publish), so purge sees
        // the activity, and learn which jobs asked not to be cached.
        let mut skip = HashSet::new();
        let mut seen = HashSet::new();
        for row in &rows {
            let jid = row.jid();
            if !seen.insert(jid) {
                continue;
            }
            let nocache: i64 = sqlx::query_scalar(
                "INSERT INTO jobs (jid, last_activity) VALUES (?1, ?2)
                 ON CONFLICT (jid) DO UPDATE SET last_activity = max(last_activity, excluded.last_activity)
                 RETURNING nocache",
            )
            .bind(jid)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err)?;
            if nocache != 0 {
                skip.insert(jid.to_string());
            }
        }
        rows.retain(|r| !skip.contains(r.jid()));

        // A (jid, id) twice in one batch: the first one counts, as it would across batches.
        let mut first: HashMap<(String, String), usize> = HashMap::new();
        let mut unique = Vec::with_capacity(rows.len());
        let mut repeats = Vec::new();
        for row in rows {
            match first.get(&(row.jid().to_string(), row.id.clone())) {
                Some(&i) => repeats.push((i, row)),
                None => {
                    first.insert((row.jid().to_string(), row.id.clone()), unique.len());
                    unique.push(row);
                }
            }
        }
        for (i, row) in &repeats {
            log_duplicate(row, unique[*i].stored_fields());
        }

        let mut inserted = HashSet::new();
        for chunk in unique.chunks(ROWS_PER_INSERT) {
            let sql = if chunk.len() == ROWS_PER_INSERT { full_insert_sql().to_string() } else { insert_sql(chunk.len()) };
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row in chunk {
                let full_ret = serde_json::to_string(&row.envelope).map_err(|e| ReturnerError::Rejected(e.to_string()))?;
                q = q
                    .bind(row.jid().to_string())
                    .bind(row.id.clone())
                    .bind(row.fun.clone())
                    .bind(row.ret.clone())
                    .bind(row.retcode)
                    .bind(row.success)
                    .bind(row.out.clone())
                    .bind(full_ret)
                    .bind(now);
            }
            for r in q.fetch_all(&mut **tx).await.map_err(db_err)? {
                let jid: String = r.try_get(0).map_err(db_err)?;
                let id: String = r.try_get(1).map_err(db_err)?;
                inserted.insert((jid, id));
            }
        }
        for row in unique.iter().filter(|r| !inserted.contains(&(r.jid().to_string(), r.id.clone()))) {
            let stored = sqlx::query("SELECT ret, retcode, success, out FROM returns WHERE jid = ?1 AND id = ?2")
                .bind(row.jid())
                .bind(&row.id)
                .fetch_one(&mut **tx)
                .await
                .map_err(db_err)?;
            let ret: Option<String> = stored.try_get(0).map_err(db_err)?;
            let fields = (
                ret.and_then(|s| serde_json::from_str(&s).ok()),
                stored.try_get(1).map_err(db_err)?,
                stored.try_get(2).map_err(db_err)?,
                stored.try_get(3).map_err(db_err)?,
            );
            log_duplicate(row, fields);
        }
        Ok(())
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

impl LocalCache {
    pub(super) async fn record_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String> {
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

    pub(super) async fn record_minions(&self, jid: &str, minions: &[String], syndic_id: Option<&str>) -> Result<()> {
        checked_jid(jid)?;
        let mut tx = self.write_tx().await?;
        merge_minions(&mut tx, jid, minions, syndic_id.unwrap_or(""), now_secs()).await?;
        tx.commit().await.map_err(db_err)
    }

    pub(super) async fn read_load(&self, jid: &str) -> Result<Option<Load>> {
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

    pub(super) async fn read_jid(&self, jid: &str) -> Result<Map<String, Value>> {
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

    pub(super) async fn read_fun(&self, fun: &str) -> Result<Map<String, Value>> {
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

    pub(super) async fn read_minions(&self) -> Result<Vec<String>> {
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

    pub(super) async fn purge(&self, keep: Duration) -> Result<u64> {
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

    pub(super) async fn read_endtime(&self, jid: &str) -> Result<Option<String>> {
        if !known_shape(jid) {
            return Ok(None);
        }
        let end: Option<Option<String>> =
            sqlx::query_scalar("SELECT endtime FROM jobs WHERE jid = ?1").bind(jid).fetch_optional(&self.readers).await.map_err(db_err)?;
        Ok(end.flatten())
    }
}
