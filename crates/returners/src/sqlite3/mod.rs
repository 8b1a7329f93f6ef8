//! `sqlite3`: returns and loads in an SQLite file (Salt's `salt/returners/sqlite3_return.py`).
//!
//! Salt's tables (see [`schema`]) and Salt's column contents, which users' queries rely on:
//! - `salt_returns.full_ret` holds `json.dumps(ret["return"])` — only the return value,
//!   despite its name — so `get_jid` gives `{id: {"return": ...}}` and `get_fun` the bare value;
//! - `fun_args` is the Python `repr` of the argument list (`['ls /']`), NULL when empty;
//! - `date` is Python's `str(datetime.now())`, local time (`2024-05-10 09:30:15.123456`);
//! - `success` is `1`/`0` (Python's bool through the sqlite3 module), `''` when missing.
//!
//! The calls are Salt's: `returner`, `save_load`, `save_minions` (a no-op), `get_load`,
//! `get_jid`, `get_fun`, `get_jids`, `get_minions`, `prep_jid`; no `clean_old_jobs`,
//! `event_return` or end times. Where we differ from Salt, on purpose: a second `save_load`
//! for a jid keeps the first (Salt raised an IntegrityError); a batch is one transaction with
//! multi-row INSERTs; an identical return stored twice is one row; `get_jid` returns every
//! minion (Salt's read only the first row).

pub mod config;
pub mod schema;

use std::collections::HashSet;
use std::str::FromStr;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::Row;
use tokio::sync::OnceCell;

pub use config::Sqlite3Config;

use crate::batch::{insert_or_sift, prepare_all, Indexed};
use crate::json::{dumps, dumps_map};
use crate::options::{truthy, Lookup};
use crate::paging::JobChunks;
use crate::record::ReturnRecord;
use crate::registry::{Entry, Schema, Store};
use crate::sql::listing::{self, Dialect};
use crate::{Capability, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};

pub const NAME: &str = "sqlite3";

/// Salt's sqlite3 calls: no `event_return`, `clean_old_jobs` or end times.
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
    ],
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(Sqlite3::open(lookup)?))) }.boxed(),
    schema: Some(Schema { tables: &schema::TABLES, ddl: schema::create_sql }),
};

/// Rows per INSERT: 7 parameters each, far below SQLite's 32766.
const ROWS_PER_INSERT: usize = 1000;

/// Bare names; `->` gives each listing field as JSON text.
const CHUNK_DIALECT: Dialect = Dialect { quote: "", field: |load, path| format!("{load} -> '{path}'") };

pub struct Sqlite3 {
    pool: SqlitePool,
    config: Sqlite3Config,
    checked: OnceCell<()>,
}

/// One `salt_returns` row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReturnRow {
    fun: String,
    jid: String,
    id: String,
    fun_args: Option<String>,
    full_ret: String,
    success: String,
    /// A `req` return: save it as the load of the jid allocated for it.
    req_load: Option<String>,
}

impl ReturnRow {
    fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }
}

/// Python's `str(datetime.now())`: microseconds only when non-zero.
fn python_now() -> String {
    let now = chrono::Local::now().naive_local();
    if now.and_utc().timestamp_subsec_micros() == 0 {
        now.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        now.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
    }
}

/// `ret.get("success", "")` as the sqlite3 module stores it in a TEXT column.
fn success_text(ret: &Load) -> String {
    match ret.get("success") {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => if *b { "1" } else { "0" }.into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One return as a row. `Err` says why the store cannot take it.
fn prepare_return(ret: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    Ok(Some(ReturnRow {
        fun: rec.fun()?.into(),
        id: rec.id.into(),
        // Salt: `str(ret["fun_args"]) if ret.get("fun_args") else None`.
        fun_args: ret.get("fun_args").filter(|a| truthy(a)).map(salt_output::pyrepr::repr),
        full_ret: dumps(rec.value),
        success: success_text(ret),
        req_load: rec.req.then(|| dumps_map(&rec.full)),
        jid: rec.jid,
    }))
}

/// The multi-row INSERT of `n` returns; a row goes in only if the same record is not stored.
fn insert_returns_sql(n: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?)"; n].join(", ");
    format!(
        "INSERT INTO salt_returns (fun, jid, id, fun_args, date, full_ret, success)
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7 FROM (VALUES {values}) v
         WHERE NOT EXISTS (SELECT 1 FROM salt_returns r
                           WHERE r.jid = v.column2 AND r.id = v.column3 AND r.fun IS v.column1
                             AND r.fun_args IS v.column4 AND r.full_ret = v.column6 AND r.success = v.column7)"
    )
}

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
    async fn check_tables(&self) -> Result<()> {
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

    fn db_err(&self, e: sqlx::Error) -> ReturnerError {
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
    async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
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

    /// `{id: f(full_ret)}`, the first row of each minion kept, ids sorted.
    fn by_minion(&self, rows: Vec<SqliteRow>, wrap: fn(Value) -> Value) -> Result<Map<String, Value>> {
        let mut pairs = Vec::new();
        let mut seen = HashSet::new();
        for row in rows {
            let id: String = row.try_get(0).map_err(|e| self.db_err(e))?;
            if !seen.insert(id.clone()) {
                continue;
            }
            let text: String = row.try_get(1).map_err(|e| self.db_err(e))?;
            let value = serde_json::from_str(&text)
                .map_err(|e| ReturnerError::Unavailable(format!("sqlite3: stored return of {id} is unreadable: {e}")))?;
            pairs.push((id, wrap(value)));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(pairs.into_iter().collect())
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

#[async_trait]
impl Sink for Sqlite3 {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    async fn check(&self) -> Result<()> {
        self.check_tables().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }
}

#[async_trait]
impl JobCache for Sqlite3 {
    /// Creates the missing tables, see [`schema`].
    async fn create_schema(&self) -> Result<Vec<String>> {
        schema::create(&self.pool).await.map_err(|e| self.db_err(e))?;
        Ok(schema::TABLES.iter().map(|t| t.to_string()).collect())
    }

    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        match passed_jid {
            Some(jid) => {
                salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
                Ok(jid.to_string())
            }
            None => Ok(salt_proto::jid::new_jid(self.config.unique_jid)),
        }
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
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

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let text: Option<String> = sqlx::query_scalar("SELECT load FROM jids WHERE jid = ?")
            .bind(jid)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        match text {
            None => Ok(None),
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(load)) => Ok(Some(load)),
                Ok(_) => Ok(Some(Map::new())),
                Err(e) => Err(ReturnerError::Unavailable(format!("sqlite3: stored load of {jid} is unreadable: {e}"))),
            },
        }
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
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

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
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

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT id FROM salt_returns").fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_as_salt_writes_them() {
        let ret = json!({"success": true, "return": {"a": "héllo"}, "retcode": 0, "jid": "20261125003808100453",
                         "fun": "cmd.run", "fun_args": ["ls /", {"__kwarg__": true, "x": null}], "id": "minion1"});
        let row = prepare_return(ret.as_object().unwrap()).unwrap().unwrap();
        assert_eq!(row.full_ret, r#"{"a": "héllo"}"#);
        assert_eq!(row.fun_args.as_deref(), Some("['ls /', {'__kwarg__': True, 'x': None}]"));
        assert_eq!(row.success, "1");
        let ret = json!({"return": 3, "jid": "20261125003808100453", "fun": "cmd.retcode", "fun_args": [], "id": "m"});
        let row = prepare_return(ret.as_object().unwrap()).unwrap().unwrap();
        assert_eq!((row.fun_args, row.success.as_str()), (None, ""));
    }

    #[test]
    fn chunk_query_reads_fields_with_arrow() {
        let fields = "load -> '$.fun', load -> '$.tgt', load -> '$.tgt_type', load -> '$.user', load -> '$.arg', \
                      load -> '$.fun_args', load -> '$.metadata', load -> '$.kwargs.metadata'";
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, true, false),
            format!("SELECT jid, {fields} FROM jids WHERE jid >= ? AND (? IS NULL OR jid < ?) ORDER BY jid DESC LIMIT ?")
        );
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, false, true),
            format!("SELECT jid, {fields} FROM jids WHERE jid > ? AND (? IS NULL OR jid < ?) ORDER BY jid ASC LIMIT ?")
        );
    }

    #[test]
    fn date_is_python_str_of_now() {
        let d = python_now();
        assert!(chrono::NaiveDateTime::parse_from_str(&d, "%Y-%m-%d %H:%M:%S%.f").is_ok(), "{d}");
        assert!(d.len() == 19 || d.len() == 26, "{d}");
    }
}
