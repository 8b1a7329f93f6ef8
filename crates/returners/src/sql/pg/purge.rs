//! `clean_old_jobs`: removing (and with `archive_jobs`, archiving) jobs past `keep_jobs_seconds`.
//!
//! A job is old when its jid's time is before the cut-off AND none of its returns was stored
//! after it. Salt's mysql deleted a load as soon as ONE return was old and never deleted a job
//! without returns; here a long-running job keeps its load while returns still arrive, and a
//! job nobody answered goes like any other. Events go by their own `alter_time`, as in Salt.
//!
//! Jobs go in batches, oldest first, each batch one transaction that archives (when asked)
//! and deletes its loads and returns together, so a crash never leaves half a job behind.

use std::time::Duration;

use super::PgStore;
use crate::Result;

/// Jobs per transaction.
const BATCH: i64 = 500;

/// The jobs (by jid) of one batch: older than `$1` by jid, none of their returns newer than
/// `$2` seconds ago, after the jid `$3` (the previous batch's last), at most `$4`.
const DOOMED: &str = "SELECT c.jid FROM (
         SELECT jid FROM jids WHERE jid < $1 AND jid > $3
         UNION
         SELECT jid FROM salt_returns WHERE jid < $1 AND jid > $3
     ) c
     WHERE NOT EXISTS (SELECT 1 FROM salt_returns r
                       WHERE r.jid = c.jid AND r.alter_time >= now() - make_interval(secs => $2))
     ORDER BY c.jid LIMIT $4";

pub(super) async fn clean_old_jobs(store: &PgStore, keep: Duration) -> Result<u64> {
    // keep_jobs_seconds: 0 means keep forever.
    if keep.is_zero() {
        return Ok(0);
    }
    let err = |e| store.db_err(e);
    // A retention longer than the calendar: nothing is old.
    let Some(cut) = chrono::Duration::from_std(keep).ok().and_then(|d| chrono::Utc::now().checked_sub_signed(d)) else {
        return Ok(0);
    };
    let cut_jid = salt_proto::jid::jid_at(cut);
    let secs = keep.as_secs_f64();
    let archive = store.config.archive_jobs;
    if archive {
        // Salt's archive tables: the same columns, no keys or defaults.
        for table in ["jids", "salt_returns", "salt_events"] {
            let sql = format!("CREATE TABLE IF NOT EXISTS {table}_archive (LIKE {table})");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&store.pool).await.map_err(err)?;
        }
    }
    let mut removed = 0u64;
    let mut after = String::new();
    loop {
        let mut tx = store.pool.begin().await.map_err(err)?;
        let jids: Vec<String> =
            sqlx::query_scalar(DOOMED).bind(&cut_jid).bind(secs).bind(&after).bind(BATCH).fetch_all(&mut *tx).await.map_err(err)?;
        let Some(last) = jids.last().cloned() else {
            break;
        };
        let statements: &[&'static str] = if archive {
            &[
                "WITH gone AS (DELETE FROM salt_returns WHERE jid = ANY($1) RETURNING *)
                 INSERT INTO salt_returns_archive SELECT * FROM gone",
                "WITH gone AS (DELETE FROM jids WHERE jid = ANY($1) RETURNING *)
                 INSERT INTO jids_archive SELECT * FROM gone",
            ]
        } else {
            &["DELETE FROM salt_returns WHERE jid = ANY($1)", "DELETE FROM jids WHERE jid = ANY($1)"]
        };
        for sql in statements {
            sqlx::query(*sql).bind(&jids).execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        removed += jids.len() as u64;
        if (jids.len() as i64) < BATCH {
            break;
        }
        after = last;
    }
    let events = if archive {
        "WITH gone AS (DELETE FROM salt_events WHERE alter_time < now() - make_interval(secs => $1) RETURNING *)
         INSERT INTO salt_events_archive SELECT * FROM gone"
    } else {
        "DELETE FROM salt_events WHERE alter_time < now() - make_interval(secs => $1)"
    };
    sqlx::query(events).bind(secs).execute(&store.pool).await.map_err(err)?;
    if removed > 0 {
        tracing::debug!(store = store.flavor.name, removed, "purged old jobs");
    }
    Ok(removed)
}
