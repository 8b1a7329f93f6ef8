//! `mysql`: returns, loads and events in MySQL or MariaDB (Salt's `salt/returners/mysql.py`,
//! `saltext.mysql` since 3008).
//!
//! Salt's tables and rows (see [`schema`]): `salt_returns` gets `success` as `'1'`/`'0'`,
//! `return` as `json.dumps(ret["return"])` and `full_ret` as `json.dumps(ret)`, byte for byte
//! as Salt writes them; `jids` keeps the first load of a job; `salt_events` gets the master's
//! id. It is a minion-side returner (`--return mysql`), an event returner and a full master job
//! cache, with `keep_jobs_seconds` purge and `archive_jobs`.
//!
//! Where we differ from Salt, on purpose:
//! - A table in Salt's `utf8` (utf8mb3) charset still stores a 4-byte character: it is written
//!   as a JSON escape there (see [`text`]). Salt's INSERT fails and the return is lost.
//! - A batch of returns is one transaction with multi-row INSERTs, and storing a return twice
//!   stores one row: a row is skipped when one with the same (jid, id, full_ret) exists. Salt's
//!   schema has no unique key; two DIFFERENT rows for one (jid, id) stay possible, as in Salt
//!   (`--return mysql` and `master_job_cache: mysql` together write both shapes).
//! - `get_jid` gives the first stored row of each minion (Salt: the last one read).
//! - `clean_old_jobs` purges a job when its jid's time is past the cut-off AND none of its
//!   returns is newer; Salt deleted a load as soon as ONE return was old (a long-running job
//!   lost its load) and never purged a job without returns.
//! - Secrets under `kwargs`/`ret_kwargs` are redacted before a load, return or event is stored,
//!   and never appear in an error (the driver's messages are scrubbed of the password).
//! - A return larger than `mediumtext` (16 MiB) is refused with a clear error.

pub mod config;
mod purge;
pub mod schema;
pub(crate) mod text;

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{MySql as Db, Row, Transaction};
use tokio::sync::OnceCell;

pub use config::MySqlConfig;

use crate::batch::{by_size, insert_or_sift, prepare_all, Indexed};
use crate::json::{dumps, dumps_around_return, dumps_map};
use crate::options::Lookup;
use crate::paging::JobChunks;
use crate::record::ReturnRecord;
use crate::registry::{Entry, Schema, Store, SALT_SQL_TABLES, SQL_JOB_CACHE_CALLS};
use crate::sql::listing::{self, Dialect};
use crate::{Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};
use text::escape_astral;

pub const NAME: &str = "mysql";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: SQL_JOB_CACHE_CALLS,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(MySql::open(lookup)?))) }.boxed(),
    schema: Some(Schema { tables: SALT_SQL_TABLES, ddl: schema::create_sql }),
};

/// Connections a store keeps open at most: the master writes through one spool per store, so a
/// few connections cover writes and listings at once.
const MAX_CONNECTIONS: u32 = 4;
/// Parameter bytes per INSERT statement. The server refuses a packet over
/// `max_allowed_packet` (16 MiB by default); a row alone may still be up to that.
const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;
/// `mediumtext` holds at most 16 MiB - 1 bytes.
const MEDIUMTEXT_MAX: usize = 16 * 1024 * 1024 - 1;
/// `salt_returns.fun` is `varchar(50)`, `salt_events.tag` `varchar(255)`.
const FUN_MAX_CHARS: usize = 50;
const TAG_MAX_CHARS: usize = 255;

/// Backticked names; `JSON_EXTRACT` gives each listing field as JSON text.
const CHUNK_DIALECT: Dialect = Dialect { quote: "`", field: |load, path| format!("JSON_EXTRACT({load}, '{path}')") };

/// Whether each table takes 4-byte characters (utf8mb4), read once from the server.
#[derive(Debug, Clone, Copy)]
struct Charsets {
    jids: bool,
    salt_returns: bool,
    salt_events: bool,
}

pub struct MySql {
    pool: MySqlPool,
    config: MySqlConfig,
    charsets: OnceCell<Charsets>,
}

/// One `salt_returns` row, as text. `full_ret` is `full_before + ret + full_after`.
#[derive(Debug, Clone)]
struct ReturnRow {
    fun: String,
    jid: String,
    ret: String,
    id: String,
    success: String,
    full_before: String,
    full_after: String,
    /// For a `req` return (a job the minion started itself): save the return as the load of
    /// the jid allocated for it, as Salt's returner does.
    req_load: bool,
}

impl ReturnRow {
    fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    fn bytes(&self) -> usize {
        self.ret.len() + self.full_before.len() + self.full_after.len() + self.fun.len() + self.jid.len() + self.id.len()
    }

    fn full_ret(&self) -> String {
        format!("{}{}{}", self.full_before, self.ret, self.full_after)
    }

    /// For a utf8mb3 table.
    fn escaped(self) -> ReturnRow {
        ReturnRow {
            ret: escape_astral(self.ret),
            full_before: escape_astral(self.full_before),
            full_after: escape_astral(self.full_after),
            ..self
        }
    }
}

/// The `success` column: Salt binds `ret.get("success", False)` into a `varchar(10)` through
/// PyMySQL, which sends a bool as `1`/`0`.
fn success_text(ret: &Load) -> String {
    match ret.get("success") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => "0".into(),
        Some(Value::Bool(true)) => "1".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => dumps(other),
    }
}

/// One return as a row. `Err` says why the store cannot take it.
fn prepare_return(ret: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = rec.fun()?;
    let id = rec.id;
    if fun.chars().count() > FUN_MAX_CHARS {
        return Err(format!("the function name of {id}'s return is longer than {FUN_MAX_CHARS} characters (salt_returns.fun)"));
    }
    let (full_before, full_after) = dumps_around_return(&rec.full);
    let row = ReturnRow {
        fun: fun.into(),
        ret: dumps(rec.value),
        id: id.into(),
        success: success_text(ret),
        full_before,
        full_after,
        req_load: rec.req,
        jid: rec.jid,
    };
    if row.full_before.len() + row.ret.len() + row.full_after.len() > MEDIUMTEXT_MAX {
        return Err(format!("the return of {id} is larger than the 16 MiB a mediumtext column holds (salt_returns.full_ret)"));
    }
    Ok(Some(row))
}

/// `n` copies of `row` joined by `sep`.
fn repeat(row: &str, sep: &str, n: usize) -> String {
    vec![row; n].join(sep)
}

/// The multi-row INSERT of `n` returns. The values form a derived table; a row goes in only
/// if no row with the same (jid, id, full_ret) is stored (byte comparison: the columns'
/// collation is case-insensitive). `full_ret` is put together by the server, so a big return
/// crosses the wire once.
fn insert_returns_sql(n: usize) -> String {
    let first = "SELECT ? AS fun, ? AS jid, ? AS ret, ? AS id, ? AS success, ? AS pre, ? AS post";
    let rest = repeat(" UNION ALL SELECT ?, ?, ?, ?, ?, ?, ?", "", n.saturating_sub(1));
    format!(
        "INSERT INTO `salt_returns` (`fun`, `jid`, `return`, `id`, `success`, `full_ret`)
         SELECT v.fun, v.jid, v.ret, v.id, v.success, CONCAT(v.pre, v.ret, v.post)
         FROM ({first}{rest}) v
         WHERE NOT EXISTS (SELECT 1 FROM `salt_returns` r
                           WHERE r.jid = v.jid AND r.id = v.id
                             AND BINARY r.full_ret = BINARY CONCAT(v.pre, v.ret, v.post))"
    )
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
    fn db_err(&self, e: sqlx::Error) -> ReturnerError {
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
    async fn charsets(&self) -> Result<Charsets> {
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
    async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
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
    async fn store_events(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let cs = self.charsets().await?;
        let (rows, mut rejected) = prepare_all(events, |ev| {
            if ev.tag.chars().count() > TAG_MAX_CHARS {
                return Err(format!(
                    "event tag longer than {TAG_MAX_CHARS} characters: {}...",
                    ev.tag.chars().take(64).collect::<String>()
                ));
            }
            let data = match &ev.data {
                Value::Object(m) => dumps_map(m),
                other => dumps(other),
            };
            let (tag, data) = if cs.salt_events { (ev.tag.clone(), data) } else { (escape_astral(ev.tag.clone()), escape_astral(data)) };
            if data.len() > MEDIUMTEXT_MAX {
                return Err(format!("event {tag}: data larger than the 16 MiB a mediumtext column holds"));
            }
            Ok(Some((tag, data)))
        });
        insert_or_sift(&rows, |rows| self.insert_events(rows), |(tag, _)| format!("event {tag}"), &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_events(&self, rows: &[Indexed<(String, String)>]) -> Result<()> {
        let err = |e| self.db_err(e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        for chunk in by_size(rows, MAX_STATEMENT_BYTES, |r| r.row.0.len() + r.row.1.len()) {
            let sql = format!("INSERT INTO `salt_events` (`tag`, `data`, `master_id`) VALUES {}", repeat("(?, ?, ?)", ", ", chunk.len()));
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for Indexed { row: (tag, data), .. } in chunk {
                q = q.bind(tag).bind(data).bind(&self.config.master_id);
            }
            q.execute(&mut *tx).await.map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    /// `{id: full_ret}` from rows of (id, full_ret), the first row of each minion kept, ids
    /// sorted byte-wise.
    fn by_minion(&self, rows: Vec<MySqlRow>) -> Result<Map<String, Value>> {
        let mut pairs: Vec<(String, Value)> = Vec::with_capacity(rows.len());
        let mut seen = HashSet::new();
        for row in rows {
            let id: String = row.try_get(0).map_err(|e| self.db_err(e))?;
            if !seen.insert(id.clone()) {
                continue;
            }
            let full: String = row.try_get(1).map_err(|e| self.db_err(e))?;
            let full = serde_json::from_str(&full)
                .map_err(|e| ReturnerError::Unavailable(format!("mysql: stored return of {id} is unreadable: {e}")))?;
            pairs.push((id, full));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(pairs.into_iter().collect())
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

#[async_trait]
impl Sink for MySql {
    fn entry(&self) -> &'static Entry {
        &ENTRY
    }

    /// Connects and checks that every table is there: one clear error for a wrong password,
    /// an unknown database or a missing table.
    async fn check(&self) -> Result<()> {
        self.charsets().await.map(|_| ())
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        self.store_events(events).await
    }
}

#[async_trait]
impl JobCache for MySql {
    /// Creates the missing tables (utf8mb4), see [`schema`].
    async fn create_schema(&self) -> Result<Vec<String>> {
        schema::create(&self.pool).await.map_err(|e| self.db_err(e))?;
        Ok(SALT_SQL_TABLES.iter().map(|t| t.to_string()).collect())
    }

    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        // Salt's SQL stores record nothing here (and ignore nocache): a job exists once its
        // load or a return does.
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
        let cs = self.charsets().await?;
        let text = dumps_map(load);
        let text = if cs.jids { text } else { escape_astral(text) };
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        self.insert_load(&mut tx, jid, &text).await?;
        tx.commit().await.map_err(|e| self.db_err(e))
    }

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        // Salt's schema has no place for them ("included for API consistency").
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let text: Option<String> = sqlx::query_scalar("SELECT `load` FROM `jids` WHERE `jid` = ?")
            .bind(jid)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        match text {
            None => Ok(None),
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(load)) => Ok(Some(load)),
                Ok(_) => Ok(Some(Map::new())),
                Err(e) => Err(ReturnerError::Unavailable(format!("mysql: stored load of {jid} is unreadable: {e}"))),
            },
        }
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
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

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
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

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        let mut ids: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT `id` FROM `salt_returns`").fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        // The column's collation is not byte order.
        ids.sort();
        Ok(ids)
    }

    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        purge::clean_old_jobs(self, keep).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Load {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn rows_as_salt_writes_them() {
        let ret = obj(json!({"success": true, "return": "bin\nboot", "retcode": 0, "jid": "20261125003808100453",
                             "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert_eq!(
            (row.fun.as_str(), row.jid.as_str(), row.id.as_str(), row.success.as_str()),
            ("cmd.run", "20261125003808100453", "minion1", "1")
        );
        assert_eq!(row.ret, r#""bin\nboot""#);
        assert_eq!(
            row.full_ret(),
            r#"{"success": true, "return": "bin\nboot", "retcode": 0, "jid": "20261125003808100453", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}"#
        );
        let mut failed = ret.clone();
        failed.insert("success".into(), json!(false));
        assert_eq!(prepare_return(&failed).unwrap().unwrap().success, "0");
        failed.remove("success");
        assert_eq!(prepare_return(&failed).unwrap().unwrap().success, "0");
    }

    #[test]
    fn req_nocache_and_bad_returns() {
        let mut ret = obj(json!({"return": true, "jid": "req", "fun": "test.ping", "id": "m1"}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert!(salt_proto::jid::is_jid(&row.jid) && row.req_load);
        assert!(row.full_ret().contains(&format!(r#""jid": "{}""#, row.jid)));
        ret.insert("jid".into(), json!("nocache"));
        assert!(prepare_return(&ret).unwrap().is_none());
        ret.insert("jid".into(), json!("../x"));
        assert!(prepare_return(&ret).is_err());
        let long_fun = obj(json!({"return": true, "jid": "20261125003808100453", "fun": "x".repeat(51), "id": "m1"}));
        assert!(prepare_return(&long_fun).unwrap_err().contains("longer than 50"));
        let huge = obj(json!({"return": "x".repeat(MEDIUMTEXT_MAX), "jid": "20261125003808100453", "fun": "f", "id": "m1"}));
        assert!(prepare_return(&huge).unwrap_err().contains("16 MiB"));
    }

    #[test]
    fn chunk_query_reads_fields_with_json_extract() {
        let fields = "JSON_EXTRACT(`load`, '$.fun'), JSON_EXTRACT(`load`, '$.tgt'), JSON_EXTRACT(`load`, '$.tgt_type'), \
                      JSON_EXTRACT(`load`, '$.user'), JSON_EXTRACT(`load`, '$.arg'), JSON_EXTRACT(`load`, '$.fun_args'), \
                      JSON_EXTRACT(`load`, '$.metadata'), JSON_EXTRACT(`load`, '$.kwargs.metadata')";
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, true, false),
            format!("SELECT `jid`, {fields} FROM `jids` WHERE `jid` >= ? AND (? IS NULL OR `jid` < ?) ORDER BY `jid` DESC LIMIT ?")
        );
        assert_eq!(
            listing::chunk_sql(&CHUNK_DIALECT, false, true),
            format!("SELECT `jid`, {fields} FROM `jids` WHERE `jid` > ? AND (? IS NULL OR `jid` < ?) ORDER BY `jid` ASC LIMIT ?")
        );
    }

    #[test]
    fn statements_and_chunks() {
        let sql = insert_returns_sql(3);
        assert_eq!(sql.matches('?').count(), 21);
        assert_eq!(sql.matches("UNION ALL").count(), 2);
        let sizes = [3 * 1024 * 1024, 2 * 1024 * 1024, 10, 20 * 1024 * 1024, 1];
        let chunks = by_size(&sizes, MAX_STATEMENT_BYTES, |n| *n);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), [1, 2, 1, 1]);
    }
}
