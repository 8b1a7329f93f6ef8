//! `clean_old_jobs`: removing (and with `archive_jobs`, archiving) jobs past `keep_jobs_seconds`.
//!
//! A job is old when its jid's time is before the cut-off AND none of its returns was stored
//! after it. Salt's mysql deleted a load as soon as ONE return was old (so a long-running job
//! lost its load while returns still came in) and never deleted a job without returns; here a
//! job goes only when all of it is old. Events go by their own `alter_time`, as in Salt.
//!
//! Jobs go in batches, oldest first, each batch one transaction that archives (when asked) and
//! deletes its load and returns together, so a crash never leaves half a job behind. Archive
//! tables are Salt's: `CREATE TABLE IF NOT EXISTS <t>_archive LIKE <t>`.

use std::time::Duration;

use super::MySql;
use crate::Result;

/// Jobs per transaction.
const BATCH: usize = 500;

/// The jobs of one batch: jid before the cut-off jid (`?` 1, 3), after the previous batch's
/// last (`?` 2, 4), with no return stored at or after the cut-off time (`?` 5), at most `?` 6.
const DOOMED: &str = "SELECT c.jid FROM (
         SELECT `jid` FROM `jids` WHERE `jid` < ? AND `jid` > ?
         UNION
         SELECT DISTINCT `jid` FROM `salt_returns` WHERE `jid` < ? AND `jid` > ?
     ) c
     WHERE NOT EXISTS (SELECT 1 FROM `salt_returns` r WHERE r.`jid` = c.jid AND r.`alter_time` >= ?)
     ORDER BY c.jid LIMIT ?";

pub(super) async fn clean_old_jobs(store: &MySql, keep: Duration) -> Result<u64> {
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
    // The cut-off in the server's clock, once, so every statement uses the same one.
    // As text ('YYYY-MM-DD hh:mm:ss[.ffffff]'), which the server compares as a time.
    let stamp: String = sqlx::query_scalar("SELECT CAST(NOW() - INTERVAL ? MICROSECOND AS CHAR)")
        .bind(keep.as_micros().min(i64::MAX as u128) as i64)
        .fetch_one(&store.pool)
        .await
        .map_err(err)?;
    let archive = store.config.archive_jobs;
    if archive {
        for table in crate::registry::SALT_SQL_TABLES {
            let sql = format!("CREATE TABLE IF NOT EXISTS `{table}_archive` LIKE `{table}`");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&store.pool).await.map_err(err)?;
        }
    }
    let mut removed = 0u64;
    let mut after = String::new();
    loop {
        let mut tx = store.pool.begin().await.map_err(err)?;
        let jids: Vec<String> = sqlx::query_scalar(DOOMED)
            .bind(&cut_jid)
            .bind(&after)
            .bind(&cut_jid)
            .bind(&after)
            .bind(&stamp)
            .bind(BATCH as u64)
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
        let Some(last) = jids.last().cloned() else { break };
        let list = vec!["?"; jids.len()].join(", ");
        let mut statements = Vec::new();
        if archive {
            // A jid archived before (a job re-created after a purge) keeps its first archived load.
            statements.push(format!("INSERT IGNORE INTO `jids_archive` SELECT * FROM `jids` WHERE `jid` IN ({list})"));
            statements.push(format!("INSERT INTO `salt_returns_archive` SELECT * FROM `salt_returns` WHERE `jid` IN ({list})"));
        }
        statements.push(format!("DELETE FROM `salt_returns` WHERE `jid` IN ({list})"));
        statements.push(format!("DELETE FROM `jids` WHERE `jid` IN ({list})"));
        for sql in statements {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for jid in &jids {
                q = q.bind(jid);
            }
            q.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)?;
        removed += jids.len() as u64;
        if jids.len() < BATCH {
            break;
        }
        after = last;
    }
    let mut tx = store.pool.begin().await.map_err(err)?;
    if archive {
        sqlx::query("INSERT INTO `salt_events_archive` SELECT * FROM `salt_events` WHERE `alter_time` < ?")
            .bind(&stamp)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
    }
    sqlx::query("DELETE FROM `salt_events` WHERE `alter_time` < ?").bind(&stamp).execute(&mut *tx).await.map_err(err)?;
    tx.commit().await.map_err(err)?;
    if removed > 0 {
        tracing::debug!(store = super::NAME, removed, "purged old jobs");
    }
    Ok(removed)
}
