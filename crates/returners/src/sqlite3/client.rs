//! SQLite I/O: a lazily opened pool, a batch in one transaction of multi-row INSERTs, the reads,
//! and the driver's errors as retry-later or refused-for-good.

use std::collections::HashSet;
use std::str::FromStr;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions, SqliteRow};
use sqlx::Row;
use tokio::sync::OnceCell;

use super::encode::{insert_returns_sql, prepare_return, python_now, ReturnRow, CHUNK_DIALECT};
use super::{schema, Sqlite3, Sqlite3Config, NAME};
use crate::batch::{insert_or_sift, prepare_all, Indexed};
use crate::json::dumps_map;
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::sql::{self, listing};
use crate::{JobSummary, Load, Rejection, Result, ReturnerError};

/// Rows per INSERT: 7 parameters each, far below SQLite's 32766.
const ROWS_PER_INSERT: usize = 1000;

impl Sqlite3 {
    /// Opens the store with the options `lookup` finds (see [`config`]); nothing is read yet.
    pub fn open(lookup: &Lookup<'_>) -> Result<Sqlite3> {
        Self::open_with(Sqlite3Config::from_lookup(lookup)?)
    }

    pub fn open_with(config: Sqlite3Config) -> Result<Sqlite3> {
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|e| ReturnerError::Invalid(e.to_string()))?
            .filename(&config.database)
            .busy_timeout(config.timeout)
            // As Python's sqlite3.connect: the file is created when missing.
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new().max_connections(4).min_connections(0).connect_lazy_with(options);
        Ok(Sqlite3 { pool, config, checked: OnceCell::new() })
    }

    pub fn config(&self) -> &Sqlite3Config {
        &self.config
    }

    /// Opens the file and checks the tables: one clear error for each problem.
    pub(super) async fn check_tables(&self) -> Result<()> {
        self.checked
            .get_or_try_init(|| async {
                let found: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('jids', 'salt_returns')")
                        .fetch_all(&self.pool)
                        .await
                        .map_err(|e| self.db_err(e))?;
                let missing: Vec<&str> = schema::TABLES.iter().copied().filter(|t| !found.iter().any(|f| f == t)).collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(ReturnerError::Unavailable(format!(
                        "sqlite3: table{} {} missing in {}; create the schema first (see the sqlite3 schema command)",
                        if missing.len() > 1 { "s" } else { "" },
                        missing.join(", "),
                        self.config.database.display()
                    )))
                }
            })
            .await
            .copied()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(super) fn db_err(&self, e: sqlx::Error) -> ReturnerError {
        let file = self.config.database.display();
        match &e {
            // SQLITE_CONSTRAINT, SQLITE_TOOBIG, SQLITE_MISMATCH: this record, not the file.
            sqlx::Error::Database(d)
                if matches!(d.code().as_deref(), Some("19") | Some("18") | Some("20")) || d.code().is_some_and(|c| c.ends_with("19")) =>
            {
                ReturnerError::Rejected(format!("sqlite3: {file} refused the record: {}", d.message()))
            }
            _ => ReturnerError::Unavailable(format!("sqlite3: {file}: {e}")),
        }
    }

    /// `returner_batch`: the valid returns in one transaction; each invalid one rejected alone.
    pub(super) async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.check_tables().await?;
        let (mut rows, mut rejected) = prepare_all(rets, prepare_return);
        // The same record twice in one batch: the database check cannot see it.
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert(r.row.clone()));
        insert_or_sift(&rows, |rows| self.insert_returns(rows), ReturnRow::describe, &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_returns(&self, rows: &[Indexed<ReturnRow>]) -> Result<()> {
        let err = |e| self.db_err(e);
        let date = python_now();
        let mut tx = self.pool.begin().await.map_err(err)?;
        for Indexed { row, .. } in rows {
            if let Some(load) = &row.req_load {
                sqlx::query("INSERT INTO jids (jid, load) VALUES (?, ?) ON CONFLICT (jid) DO NOTHING")
                    .bind(&row.jid)
                    .bind(load)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_returns_sql(chunk.len())));
            for Indexed { row: r, .. } in chunk {
                q = q.bind(&r.fun).bind(&r.jid).bind(&r.id).bind(&r.fun_args).bind(&date).bind(&r.full_ret).bind(&r.success);
            }
            q.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// `{id: wrap(full_ret)}`, the first row of each minion kept, ids sorted.
    fn by_minion(&self, rows: Vec<SqliteRow>, wrap: fn(Value) -> Value) -> Result<Map<String, Value>> {
        let pairs = rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<std::result::Result<Vec<_>, sqlx::Error>>();
        sql::by_minion(NAME, pairs.map_err(|e| self.db_err(e))?, wrap)
    }

    /// `save_load`: the first load of a jid stays (Salt raised an IntegrityError).
    pub(super) async fn save_load_text(&self, jid: &str, load: &Load) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        self.check_tables().await?;
        sqlx::query("INSERT INTO jids (jid, load) VALUES (?, ?) ON CONFLICT (jid) DO NOTHING")
            .bind(jid)
            .bind(dumps_map(load))
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        Ok(())
    }

    pub(super) async fn read_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let text: Option<String> = sqlx::query_scalar("SELECT load FROM jids WHERE jid = ?")
            .bind(jid)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        sql::load_from_text(NAME, jid, text)
    }

    /// `{id: {"return": value}}`: the column holds only the return value.
    pub(super) async fn read_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        let rows = sqlx::query("SELECT id, full_ret FROM salt_returns WHERE jid = ? ORDER BY rowid")
            .bind(jid)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        self.by_minion(rows, |v| {
            let mut m = Map::new();
            m.insert("return".into(), v);
            Value::Object(m)
        })
    }

    pub(super) async fn read_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        let rows = sqlx::query(
            "SELECT s.id, s.full_ret FROM salt_returns s
             JOIN (SELECT id, MAX(jid) AS jid FROM salt_returns WHERE fun = ? GROUP BY id) m ON s.id = m.id AND s.jid = m.jid
             WHERE s.fun = ? ORDER BY s.rowid",
        )
        .bind(fun)
        .bind(fun)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        self.by_minion(rows, |v| v)
    }

    pub(super) async fn read_minions(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT id FROM salt_returns").fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        ids.sort();
        Ok(ids)
    }

    pub(super) async fn create_tables(&self) -> Result<()> {
        schema::create(&self.pool).await.map_err(|e| self.db_err(e))
    }
}

#[async_trait]
impl JobChunks for Sqlite3 {
    async fn chunk(&self, lo: &str, lo_inclusive: bool, hi: Option<&str>, oldest_first: bool, limit: usize) -> Result<Vec<JobSummary>> {
        let sql = listing::chunk_sql(&CHUNK_DIALECT, lo_inclusive, oldest_first);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lo)
            .bind(hi)
            .bind(hi)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        listing::summaries(&rows).map_err(|e| self.db_err(e))
    }
}
