//! MySQL I/O: a lazily connected pool, a batch in one transaction of multi-row INSERTs, the
//! reads, and the driver's errors as retry-later or refused-for-good (never with the password).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlPoolOptions, MySqlRow};
use sqlx::{MySql as Db, Row, Transaction};
use tokio::sync::OnceCell;

use super::encode::{
    escape_astral, insert_events_sql, insert_returns_sql, prepare_event, prepare_return, ReturnRow, CHUNK_DIALECT, MEDIUMTEXT_MAX,
};
use super::{config, schema, MySql, MySqlConfig, NAME};
use crate::batch::{by_size, insert_or_sift, prepare_all, Indexed};
use crate::json::dumps_map;
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::registry::SALT_SQL_TABLES;
use crate::sql::{self, listing};
use crate::{Event, JobSummary, Load, Rejection, Result, ReturnerError};

/// Connections a store keeps open at most: the master writes through one spool per store, so a
/// few connections cover writes and listings at once.
const MAX_CONNECTIONS: u32 = 4;
/// Parameter bytes per INSERT statement. The server refuses a packet over
/// `max_allowed_packet` (16 MiB by default); a row alone may still be up to that.
pub(super) const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// Whether each table takes 4-byte characters (utf8mb4), read once from the server.
#[derive(Debug, Clone, Copy)]
pub(super) struct Charsets {
    pub jids: bool,
    pub salt_returns: bool,
    pub salt_events: bool,
}

impl MySql {
    /// Opens the store with the options `lookup` finds (see [`config`]). No connection is made
    /// yet, so a master starts while its database is down and the spool retries: see
    /// [`Sink::check`].
    pub fn open(lookup: &Lookup<'_>) -> Result<MySql> {
        Ok(Self::open_with(MySqlConfig::from_lookup(lookup)?))
    }

    pub fn open_with(config: MySqlConfig) -> MySql {
        let pool = MySqlPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(config::CONNECT_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(config.connect_options());
        MySql { pool, config, charsets: OnceCell::new() }
    }

    pub fn config(&self) -> &MySqlConfig {
        &self.config
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A driver error as a returner error: what failed and where, never the password. Bad data
    /// is `Rejected`; everything else may pass and is `Unavailable`.
    pub(super) fn db_err(&self, e: sqlx::Error) -> ReturnerError {
        let c = &self.config;
        let at = c.target();
        let message = match &e {
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                // The server's text is scrubbed; ours around it names what failed.
                let text = c.password.scrub(d.message());
                let text = text.as_str();
                // SQLSTATE 22 (data) and 23 (constraint): this record, not the server.
                if crate::sql::rejects_record(&code) || code == "HY000" && text.contains("Incorrect string value") {
                    return ReturnerError::Rejected(format!("mysql: MySQL at {at} refused the record: {text}"));
                }
                match code.as_str() {
                    "28000" => format!("mysql: could not log in to MySQL at {at} as user {:?}: {text}", c.user),
                    "42000" if text.contains("Unknown database") => format!("mysql: could not connect to MySQL at {at}: {text}"),
                    "42S02" => {
                        format!("mysql: {text} in database {:?} at {at}; create the schema first (see the mysql schema command)", c.db)
                    }
                    _ => format!("mysql: MySQL at {at} failed: {text}"),
                }
            }
            sqlx::Error::PoolTimedOut => {
                format!("mysql: could not connect to MySQL at {at} within {} s", config::CONNECT_TIMEOUT.as_secs())
            }
            sqlx::Error::Io(io) => format!("mysql: could not connect to MySQL at {at}: {}", c.password.scrub(&io.to_string())),
            sqlx::Error::Tls(tls) => format!("mysql: TLS with MySQL at {at} failed: {}", c.password.scrub(&tls.to_string())),
            other => format!("mysql: MySQL at {at} failed: {}", c.password.scrub(&other.to_string())),
        };
        ReturnerError::Unavailable(message)
    }

    /// The tables' charsets, read once; a missing table is an error here.
    pub(super) async fn charsets(&self) -> Result<Charsets> {
        self.charsets
            .get_or_try_init(|| async {
                // The JSON columns: a table takes 4-byte text only if all of them are utf8mb4.
                let rows = sqlx::query(
                    "SELECT TABLE_NAME, MIN(CHARACTER_SET_NAME = 'utf8mb4') FROM information_schema.COLUMNS
                     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('jids', 'salt_returns', 'salt_events')
                       AND COLUMN_NAME IN ('load', 'return', 'full_ret', 'data', 'tag', 'fun')
                     GROUP BY TABLE_NAME",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.db_err(e))?;
                let mut found = std::collections::HashMap::new();
                for row in rows {
                    let table: String = row.try_get(0).map_err(|e| self.db_err(e))?;
                    let mb4: Option<i64> = row.try_get(1).map_err(|e| self.db_err(e))?;
                    found.insert(table, mb4 == Some(1));
                }
                let missing: Vec<&str> = SALT_SQL_TABLES.iter().copied().filter(|t| !found.contains_key(*t)).collect();
                if !missing.is_empty() {
                    return Err(ReturnerError::Unavailable(format!(
                        "mysql: table{} {} missing in database {:?} at {}; create the schema first (see the mysql schema command)",
                        if missing.len() > 1 { "s" } else { "" },
                        missing.join(", "),
                        self.config.db,
                        self.config.target(),
                    )));
                }
                Ok(Charsets { jids: found["jids"], salt_returns: found["salt_returns"], salt_events: found["salt_events"] })
            })
            .await
            .copied()
    }

    /// `returner_batch`: the valid returns in one transaction; each invalid one rejected alone.
    pub(super) async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let cs = self.charsets().await?;
        let (mut rows, mut rejected) =
            prepare_all(rets, |ret| Ok(prepare_return(ret)?.map(|r| if cs.salt_returns { r } else { r.escaped() })));
        // The same record twice in one batch: the database check cannot see it.
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert((r.row.jid.clone(), r.row.id.clone(), r.row.full_ret())));
        insert_or_sift(&rows, |rows| self.insert_returns(rows, cs), ReturnRow::describe, &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_returns(&self, rows: &[Indexed<ReturnRow>], cs: Charsets) -> Result<()> {
        let err = |e| self.db_err(e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        for Indexed { row, .. } in rows.iter().filter(|r| r.row.req_load) {
            let load = row.full_ret();
            let load = if cs.jids { load } else { escape_astral(load) };
            self.insert_load(&mut tx, &row.jid, &load).await?;
        }
        for chunk in by_size(rows, MAX_STATEMENT_BYTES, |r| r.row.bytes()) {
            let sql = insert_returns_sql(chunk.len());
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for Indexed { row: r, .. } in chunk {
                q = q.bind(&r.fun).bind(&r.jid).bind(&r.ret).bind(&r.id).bind(&r.success).bind(&r.full_before).bind(&r.full_after);
            }
            q.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// The first load of a jid stays: a second is a no-op (not `INSERT IGNORE`, which would
    /// also turn a too-long value into a silent truncation).
    async fn insert_load(&self, tx: &mut Transaction<'static, Db>, jid: &str, load: &str) -> Result<()> {
        if load.len() > MEDIUMTEXT_MAX {
            return Err(ReturnerError::Rejected(format!("mysql: the load of {jid} is larger than the 16 MiB a mediumtext column holds")));
        }
        sqlx::query("INSERT INTO `jids` (`jid`, `load`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `jid` = `jid`")
            .bind(jid)
            .bind(load)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// `event_return`: every event in one transaction, ids in the order given.
    pub(super) async fn store_events(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let cs = self.charsets().await?;
        let (rows, mut rejected) = prepare_all(events, |ev| prepare_event(ev, cs.salt_events));
        insert_or_sift(&rows, |rows| self.insert_events(rows), |(tag, _)| format!("event {tag}"), &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_events(&self, rows: &[Indexed<(String, String)>]) -> Result<()> {
        let err = |e| self.db_err(e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        for chunk in by_size(rows, MAX_STATEMENT_BYTES, |r| r.row.0.len() + r.row.1.len()) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_events_sql(chunk.len())));
            for Indexed { row: (tag, data), .. } in chunk {
                q = q.bind(tag).bind(data).bind(&self.config.master_id);
            }
            q.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// `{id: full_ret}` from rows of (id, full_ret).
    fn by_minion(&self, rows: Vec<MySqlRow>) -> Result<Map<String, Value>> {
        let pairs = rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<std::result::Result<Vec<_>, sqlx::Error>>();
        sql::by_minion(NAME, pairs.map_err(|e| self.db_err(e))?, |v| v)
    }

    /// `save_load`: the first load of a jid stays.
    pub(super) async fn save_load_text(&self, jid: &str, load: &Load) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        let cs = self.charsets().await?;
        let text = dumps_map(load);
        let text = if cs.jids { text } else { escape_astral(text) };
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        self.insert_load(&mut tx, jid, &text).await?;
        tx.commit().await.map_err(|e| self.db_err(e))
    }

    pub(super) async fn read_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let text: Option<String> = sqlx::query_scalar("SELECT `load` FROM `jids` WHERE `jid` = ?")
            .bind(jid)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        sql::load_from_text(NAME, jid, text)
    }

    pub(super) async fn read_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        // Rows come in `jid` index order, which InnoDB keeps in insertion order for equal keys.
        let rows = sqlx::query("SELECT `id`, `full_ret` FROM `salt_returns` WHERE `jid` = ?")
            .bind(jid)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        self.by_minion(rows)
    }

    pub(super) async fn read_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        // Each minion's latest jid for `fun` (Salt joined on the jid alone, mixing minions).
        let rows = sqlx::query(
            "SELECT s.`id`, s.`full_ret` FROM `salt_returns` s
             JOIN (SELECT `id`, MAX(`jid`) AS jid FROM `salt_returns` WHERE `fun` = ? GROUP BY `id`) m
               ON s.`id` = m.`id` AND s.`jid` = m.jid
             WHERE s.`fun` = ?",
        )
        .bind(fun)
        .bind(fun)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        self.by_minion(rows)
    }

    pub(super) async fn read_minions(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT `id` FROM `salt_returns`").fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        // The column's collation is not byte order.
        ids.sort();
        Ok(ids)
    }

    pub(super) async fn create_tables(&self) -> Result<()> {
        schema::create(&self.pool).await.map_err(|e| self.db_err(e))
    }
}

#[async_trait]
impl JobChunks for MySql {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        let sql = listing::chunk_sql(&CHUNK_DIALECT, lo_inclusive, oldest_first);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lo)
            .bind(hi)
            .bind(hi)
            .bind(limit as u64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        listing::summaries(&rows).map_err(|e| self.db_err(e))
    }
}
