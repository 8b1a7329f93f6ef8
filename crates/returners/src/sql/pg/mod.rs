//! What the two PostgreSQL returners, `pgjsonb` and `postgres`, share: everything but their
//! option names and their column types.
//!
//! Both keep Salt's tables (`jids`, `salt_returns`, `salt_events`) and write the rows Salt
//! writes, so a database shared with Salt, or a report built on it, keeps working. `pgjsonb`
//! stores JSON in `jsonb` columns, `postgres` as JSON text; [`Columns`] is the only switch.
//!
//! Where we differ from Salt, on purpose:
//! - `save_load` keeps the FIRST load for a jid (`ON CONFLICT DO NOTHING`). Salt's pgjsonb
//!   does `DO UPDATE`, and since the master calls `save_load` on every return, the publish
//!   load ends up replaced by the last return load.
//! - A batch of returns is one transaction with one multi-row INSERT, and storing a return
//!   twice stores one row: a row is skipped when one with the same (jid, id, full_ret) exists.
//!   Salt's schema has no unique key; two DIFFERENT rows for one (jid, id) stay possible, as in
//!   Salt (`--return pgjsonb` and `master_job_cache: pgjsonb` together write both shapes).
//! - `get_jid` and `get_fun` are deterministic: the first stored row for a minion, and the
//!   latest jid's row for `get_fun` (Salt's `MAX(jid)` join used MySQL backticks in `postgres`).
//! - `clean_old_jobs` purges a job only when it is old (its jid's time) AND all its returns are
//!   old; jobs without returns are purged too. `postgres` gets it as well (Salt's has none).
//! - Secrets under `kwargs`/`ret_kwargs` are redacted before a load, return or event is stored.

mod config;
mod listing;
mod purge;
pub(crate) mod schema;

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Postgres, Row, Transaction};

pub use config::PgConfig;

use async_trait::async_trait;

use crate::batch::{by_size, insert_or_sift, prepare_all, Indexed};
use crate::json::{dumps, dumps_around_return, dumps_map};
use crate::record::ReturnRecord;
use crate::registry::Entry;
use crate::{Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError, Sink};

/// How a store keeps JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    Jsonb,
    Text,
}

/// The fixed traits of one PostgreSQL returner.
#[derive(Debug)]
pub(crate) struct Flavor {
    pub name: &'static str,
    pub entry: &'static Entry,
    pub columns: Columns,
    /// Salt's DDL, table by table, in creation order.
    pub tables: &'static [schema::TableDdl],
}

impl Flavor {
    /// A JSON text expression (a bound parameter, say) as the column wants it.
    fn as_json(&self, expr: &str) -> String {
        match self.columns {
            Columns::Jsonb => format!("{expr}::jsonb"),
            Columns::Text => expr.to_string(),
        }
    }

    /// A JSON column read back as text.
    fn json_text(&self, column: &str) -> String {
        match self.columns {
            Columns::Jsonb => format!("{column}::text"),
            Columns::Text => column.to_string(),
        }
    }
}

/// Connections a store keeps open at most. The master writes through one spool per store,
/// so a few connections cover writes and listings at once.
const MAX_CONNECTIONS: u32 = 4;
/// JSON text per INSERT statement, so a batch of huge returns is sent in pieces (PostgreSQL
/// refuses a single value over 1 GB).
const MAX_STATEMENT_BYTES: usize = 64 * 1024 * 1024;
/// `salt_returns.fun` is `varchar(50)`, `salt_events.tag` `varchar(255)`.
const FUN_MAX_CHARS: usize = 50;
const TAG_MAX_CHARS: usize = 255;

pub struct PgStore {
    flavor: &'static Flavor,
    pool: PgPool,
    config: PgConfig,
}

/// The `success` column: Salt binds `ret.get("success", False)` into a `varchar(10)` through
/// psycopg2, which sends a bool as `true`/`false`, and PostgreSQL stores that text.
fn success_text(ret: &Load) -> String {
    match ret.get("success") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => "false".into(),
        Some(Value::Bool(true)) => "true".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => dumps(other),
    }
}

/// One `salt_returns` row, as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ReturnRow {
    fun: String,
    jid: String,
    ret: String,
    id: String,
    success: String,
    full_ret: String,
    /// For a `req` return (a job the minion started itself): the load to save under the jid
    /// allocated for it, as Salt's mysql returner does.
    req_load: Option<String>,
}

impl ReturnRow {
    fn describe(&self) -> String {
        crate::record::describe(&self.id, &self.jid)
    }

    fn bytes(&self) -> usize {
        self.ret.len() + self.full_ret.len() + self.req_load.as_ref().map_or(0, String::len)
    }
}

/// One return as a row. `Err` says why the store cannot take it.
fn prepare_return(ret: &Load) -> std::result::Result<Option<ReturnRow>, String> {
    let Some(rec) = ReturnRecord::parse(ret)? else { return Ok(None) };
    let fun = rec.fun()?;
    if fun.chars().count() > FUN_MAX_CHARS {
        return Err(format!("the function name of {}'s return is longer than {FUN_MAX_CHARS} characters (salt_returns.fun)", rec.id));
    }
    let ret_text = dumps(rec.value);
    let (before, after) = dumps_around_return(&rec.full);
    let full_ret = format!("{before}{ret_text}{after}");
    Ok(Some(ReturnRow {
        fun: fun.into(),
        id: rec.id.into(),
        success: success_text(ret),
        req_load: rec.req.then(|| full_ret.clone()),
        jid: rec.jid,
        ret: ret_text,
        full_ret,
    }))
}

/// A stable 64-bit key for an advisory lock on (jid, id) (FNV-1a).
fn lock_key(jid: &str, id: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in jid.bytes().chain([0u8]).chain(id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

impl PgStore {
    /// A store over a lazily connected pool: opening never blocks on the server, so a master
    /// starts while its database is down and the spool retries; the first call that needs the
    /// server reports what is wrong with it.
    pub(crate) fn open_with(flavor: &'static Flavor, config: PgConfig) -> Result<PgStore> {
        let options = config.connect_options(flavor.name)?;
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(config.timeout())
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(options);
        Ok(PgStore { flavor, pool, config })
    }

    pub fn config(&self) -> &PgConfig {
        &self.config
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Connects and checks that every table is there: one clear error for a wrong password,
    /// a missing database or a missing table.
    async fn check_tables(&self) -> Result<()> {
        let missing = self.missing_tables().await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ReturnerError::Unavailable(format!(
                "{}: table{} {} missing in database {:?} at {}:{}; create Salt's {} schema first",
                self.flavor.name,
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                self.config.db,
                self.config.host,
                self.config.port,
                self.flavor.name,
            )))
        }
    }

    /// A driver error as a returner error: what failed and where, never the password. Bad
    /// data (SQLSTATE classes 22 and 23) is `Rejected`; everything else may pass and is
    /// `Unavailable`.
    pub(crate) fn db_err(&self, e: sqlx::Error) -> ReturnerError {
        let (name, c) = (self.flavor.name, &self.config);
        let at = format!("{}:{}", c.host, c.port);
        let message = match &e {
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                let text = d.message();
                if crate::sql::rejects_record(&code) {
                    return ReturnerError::Rejected(self.hide_password(&format!("{name}: PostgreSQL refused the record: {text}")));
                }
                match code.as_str() {
                    _ if code.starts_with("28") => format!("{name}: could not log in to PostgreSQL at {at} as user {:?}: {text}", c.user),
                    "3D000" => format!("{name}: could not connect to PostgreSQL at {at}: {text}"),
                    "42P01" => format!("{name}: {text} in database {:?} at {at}; create Salt's {name} schema first", c.db),
                    _ => format!("{name}: PostgreSQL at {at} (database {:?}) failed: {text}", c.db),
                }
            }
            sqlx::Error::PoolTimedOut => {
                format!("{name}: could not connect to PostgreSQL at {at} within {} s", c.timeout().as_secs_f64())
            }
            sqlx::Error::Io(io) => format!("{name}: could not connect to PostgreSQL at {at}: {io}"),
            sqlx::Error::Tls(tls) => format!("{name}: TLS with PostgreSQL at {at} failed: {tls}"),
            other => format!("{name}: PostgreSQL at {at} failed: {other}"),
        };
        ReturnerError::Unavailable(self.hide_password(&message))
    }

    /// Masks the password in a message. A password equal to a name the message shows anyway
    /// (Salt's defaults are user, db and password all `salt`) hides nothing and would garble
    /// every `salt_returns` in the text, so it is left alone.
    fn hide_password(&self, message: &str) -> String {
        let c = &self.config;
        if [&c.user, &c.db, &c.host].iter().any(|shown| shown.contains(c.password.expose())) {
            message.to_string()
        } else {
            c.password.scrub(message)
        }
    }

    /// `returner_batch`: the valid returns in one transaction; each invalid one rejected alone.
    async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        let (mut rows, mut rejected) = prepare_all(rets, prepare_return);
        // The same record twice in one batch: the database check cannot see it.
        let mut seen = HashSet::new();
        rows.retain(|r| seen.insert((r.row.jid.clone(), r.row.id.clone(), r.row.full_ret.clone())));
        insert_or_sift(&rows, |rows| self.insert_returns(rows), ReturnRow::describe, &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_returns(&self, rows: &[Indexed<ReturnRow>]) -> Result<()> {
        let err = |e| self.db_err(e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        // A concurrent writer of the same (jid, id) waits for us, so the existence check
        // below sees its row: no duplicate even from two spools at once. Keys are sorted so
        // two batches never wait on each other in a cycle.
        let mut keys: Vec<i64> = rows.iter().map(|r| lock_key(&r.row.jid, &r.row.id)).collect();
        keys.sort_unstable();
        keys.dedup();
        sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k").bind(&keys).execute(&mut *tx).await.map_err(err)?;
        for Indexed { row, .. } in rows {
            if let Some(load) = &row.req_load {
                self.insert_load(&mut tx, &row.jid, load).await?;
            }
        }
        for chunk in by_size(rows, MAX_STATEMENT_BYTES, |r| r.row.bytes()) {
            let col = |f: fn(&ReturnRow) -> &str| chunk.iter().map(|r| f(&r.row)).collect::<Vec<&str>>();
            sqlx::query(self.sql().insert_returns.as_str())
                .bind(col(|r| &r.fun))
                .bind(col(|r| &r.jid))
                .bind(col(|r| &r.ret))
                .bind(col(|r| &r.id))
                .bind(col(|r| &r.success))
                .bind(col(|r| &r.full_ret))
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn insert_load(&self, tx: &mut Transaction<'static, Postgres>, jid: &str, load: &str) -> Result<()> {
        sqlx::query(self.sql().insert_load.as_str()).bind(jid).bind(load).execute(&mut **tx).await.map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// `event_return`: every event in one transaction, ids in the order given.
    async fn store_events(&self, events: &[Event]) -> Result<Vec<Rejection>> {
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
            Ok(Some((ev.tag.clone(), data)))
        });
        insert_or_sift(&rows, |rows| self.insert_events(rows), |(tag, _)| format!("event {tag}"), &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_events(&self, rows: &[Indexed<(String, String)>]) -> Result<()> {
        let err = |e| self.db_err(e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        for chunk in by_size(rows, MAX_STATEMENT_BYTES, |r| r.row.1.len()) {
            let tags: Vec<&str> = chunk.iter().map(|r| r.row.0.as_str()).collect();
            let data: Vec<&str> = chunk.iter().map(|r| r.row.1.as_str()).collect();
            sqlx::query(self.sql().insert_events.as_str())
                .bind(tags)
                .bind(data)
                .bind(&self.config.master_id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    fn new_jid(&self, passed_jid: Option<&str>) -> Result<String> {
        // Salt's SQL stores record nothing here: a job exists once its load or a return does.
        match passed_jid {
            Some(jid) => {
                salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
                Ok(jid.to_string())
            }
            None => Ok(salt_proto::jid::new_jid(self.config.unique_jid)),
        }
    }

    async fn insert_first_load(&self, jid: &str, load: &Load) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        let text = dumps_map(load);
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        self.insert_load(&mut tx, jid, &text).await?;
        tx.commit().await.map_err(|e| self.db_err(e))
    }

    async fn read_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let text: Option<String> =
            sqlx::query_scalar(self.sql().get_load.as_str()).bind(jid).fetch_optional(&self.pool).await.map_err(|e| self.db_err(e))?;
        match text {
            None => Ok(None),
            Some(text) => match serde_json::from_str(&text) {
                Ok(Value::Object(load)) => Ok(Some(load)),
                Ok(_) => Ok(Some(Map::new())),
                Err(e) => Err(ReturnerError::Unavailable(format!("{}: stored load of {jid} is unreadable: {e}", self.flavor.name))),
            },
        }
    }

    /// `{id: full_ret}` from rows of (id, full_ret text), ids sorted byte-wise.
    fn by_minion(&self, rows: Vec<sqlx::postgres::PgRow>) -> Result<Map<String, Value>> {
        let mut pairs = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0).map_err(|e| self.db_err(e))?;
            let full: Option<String> = row.try_get(1).map_err(|e| self.db_err(e))?;
            // Salt's `postgres` schema lets full_ret be NULL (rows from old Salt versions).
            let full = match full {
                None => Value::Null,
                Some(text) => serde_json::from_str(&text)
                    .map_err(|e| ReturnerError::Unavailable(format!("{}: stored return of {id} is unreadable: {e}", self.flavor.name)))?,
            };
            pairs.push((id, full));
        }
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(pairs.into_iter().collect())
    }

    async fn read_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        let rows = sqlx::query(self.sql().get_jid.as_str()).bind(jid).fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        self.by_minion(rows)
    }

    async fn read_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        let rows = sqlx::query(self.sql().get_fun.as_str()).bind(fun).fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        self.by_minion(rows)
    }

    async fn read_minions(&self) -> Result<Vec<String>> {
        // A skip scan of the id index: one probe per distinct minion, not a read of every row.
        let mut ids: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE m(id) AS (
                 (SELECT id FROM salt_returns ORDER BY id LIMIT 1)
                 UNION ALL
                 SELECT (SELECT r.id FROM salt_returns r WHERE r.id > m.id ORDER BY r.id LIMIT 1) FROM m WHERE m.id IS NOT NULL
             )
             SELECT id FROM m WHERE id IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.db_err(e))?;
        // The database's collation may not be byte order.
        ids.sort();
        Ok(ids)
    }

    async fn list_jobs(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    async fn purge(&self, keep: Duration) -> Result<u64> {
        purge::clean_old_jobs(self, keep).await
    }

    /// The store's statements, built once from fixed fragments (values are always bound).
    fn sql(&self) -> &'static Statements {
        static JSONB: OnceLock<Statements> = OnceLock::new();
        static TEXT: OnceLock<Statements> = OnceLock::new();
        let cell = match self.flavor.columns {
            Columns::Jsonb => &JSONB,
            Columns::Text => &TEXT,
        };
        cell.get_or_init(|| Statements::new(self.flavor))
    }
}

/// SQL that depends on the column types.
struct Statements {
    insert_returns: String,
    insert_events: String,
    insert_load: String,
    get_load: String,
    get_jid: String,
    get_fun: String,
}

impl Statements {
    fn new(f: &Flavor) -> Statements {
        Statements {
            // clock_timestamp(), not now(): rows of one transaction get increasing times (unnest
            // yields the batch in order), which orders a minion's rows for get_jid.
            insert_returns: format!(
                "INSERT INTO salt_returns (fun, jid, return, id, success, full_ret, alter_time)
                 SELECT v.fun, v.jid, {ret}, v.id, v.success, {full}, clock_timestamp()
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                      AS v(fun, jid, ret, id, success, full_ret)
                 WHERE NOT EXISTS (SELECT 1 FROM salt_returns r
                                   WHERE r.jid = v.jid AND r.id = v.id AND r.full_ret = {full})",
                ret = f.as_json("v.ret"),
                full = f.as_json("v.full_ret"),
            ),
            insert_events: format!(
                "INSERT INTO salt_events (tag, data, master_id, alter_time)
                 SELECT v.tag, {data}, $3, clock_timestamp()
                 FROM unnest($1::text[], $2::text[]) AS v(tag, data)",
                data = f.as_json("v.data"),
            ),
            insert_load: format!("INSERT INTO jids (jid, load) VALUES ($1, {}) ON CONFLICT (jid) DO NOTHING", f.as_json("$2")),
            get_load: format!("SELECT {} FROM jids WHERE jid = $1", f.json_text("load")),
            // The first row stored for each minion (ctid breaks a tie of equal times).
            get_jid: format!(
                "SELECT DISTINCT ON (id) id, {} FROM salt_returns WHERE jid = $1 ORDER BY id, alter_time, ctid",
                f.json_text("full_ret")
            ),
            // Each minion's row of its latest job running `fun`.
            get_fun: format!(
                "SELECT DISTINCT ON (id) id, {} FROM salt_returns WHERE fun = $1 ORDER BY id, jid DESC, alter_time, ctid",
                f.json_text("full_ret")
            ),
        }
    }
}

#[async_trait]
impl Sink for PgStore {
    fn entry(&self) -> &'static Entry {
        self.flavor.entry
    }

    /// Connects and checks the tables: one clear error for a wrong password, an unknown
    /// database or a missing table.
    async fn check(&self) -> Result<()> {
        self.check_tables().await
    }

    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.store_returns(rets).await
    }

    async fn event_return(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        self.store_events(events).await
    }
}

#[async_trait]
impl JobCache for PgStore {
    /// Salt's SQL stores ignore `nocache`: there is no table to record it in.
    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        self.new_jid(passed_jid)
    }

    /// The expected minions are not kept (Salt's SQL stores have nowhere to keep them).
    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        self.insert_first_load(jid, load).await
    }

    /// A no-op, as in Salt ("included for API consistency").
    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        Ok(())
    }

    async fn get_load(&self, jid: &str) -> Result<Option<Load>> {
        self.read_load(jid).await
    }

    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        self.read_jid(jid).await
    }

    async fn get_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        self.read_fun(fun).await
    }

    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        self.list_jobs(query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.read_minions().await
    }

    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        self.purge(keep).await
    }

    async fn create_schema(&self) -> Result<Vec<String>> {
        Ok(self.create_missing_tables().await?.into_iter().map(str::to_string).collect())
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
    fn rows_are_salts_text() {
        // The minion-side row of the transcript (`--return mysql`, salt 3008).
        let ret = obj(json!({"success": true, "return": "héllo wörld ✓", "retcode": 0, "jid": "20261125003811222381",
                             "fun": "test.echo", "fun_args": ["héllo wörld ✓"], "user": "root", "id": "minion1"}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert_eq!(row.ret, "\"héllo wörld ✓\"");
        assert_eq!(
            row.full_ret,
            r#"{"success": true, "return": "héllo wörld ✓", "retcode": 0, "jid": "20261125003811222381", "fun": "test.echo", "fun_args": ["héllo wörld ✓"], "user": "root", "id": "minion1"}"#
        );
        assert_eq!(row.success, "true");
        assert_eq!((row.fun.as_str(), row.jid.as_str(), row.id.as_str()), ("test.echo", "20261125003811222381", "minion1"));
        assert_eq!(row.req_load, None);
        // A runner job has no top-level success: Salt binds False.
        let runner = obj(json!({"id": "vm_master", "jid": "20261125003922712260", "fun": "runner.jobs.list_jobs", "return": {}}));
        assert_eq!(prepare_return(&runner).unwrap().unwrap().success, "false");
    }

    #[test]
    fn bad_returns_are_named_and_special_jids_handled() {
        let no_id = obj(json!({"jid": "20240510093015123456", "fun": "f", "return": 1}));
        assert_eq!(prepare_return(&no_id).unwrap_err(), "a return needs a string 'id'");
        let evil = obj(json!({"id": "../evil", "jid": "20240510093015123456", "fun": "f", "return": 1}));
        assert!(prepare_return(&evil).is_err());
        let bad_jid = obj(json!({"id": "m", "jid": "'; DROP TABLE jids; --", "fun": "f", "return": 1}));
        assert!(prepare_return(&bad_jid).is_err());
        let long_fun = obj(json!({"id": "m", "jid": "20240510093015123456", "fun": "x".repeat(51), "return": 1}));
        assert!(prepare_return(&long_fun).unwrap_err().contains("longer than 50"));
        let nocache = obj(json!({"id": "m", "jid": "nocache", "fun": "f", "return": 1}));
        assert_eq!(prepare_return(&nocache).unwrap(), None);
        let req = obj(json!({"id": "m", "jid": "req", "fun": "f", "return": 1}));
        let row = prepare_return(&req).unwrap().unwrap();
        assert!(salt_proto::jid::is_jid(&row.jid), "{}", row.jid);
        assert_eq!(row.full_ret, format!(r#"{{"id": "m", "jid": "{}", "fun": "f", "return": 1}}"#, row.jid));
        assert_eq!(row.req_load.as_deref(), Some(row.full_ret.as_str()));
    }

    #[test]
    fn settings_secrets_are_redacted_but_results_are_not() {
        let ret = obj(json!({"id": "m", "jid": "20240510093015123456", "fun": "f",
                             "return": {"password": "kept: it is the function's result"},
                             "ret_config": "alt", "ret_kwargs": {"pass": "hunter2", "db": "other"}}));
        let row = prepare_return(&ret).unwrap().unwrap();
        assert!(!row.full_ret.contains("hunter2"), "{}", row.full_ret);
        assert!(row.full_ret.contains(r#""ret_kwargs": {"pass": "**********", "db": "other"}"#), "{}", row.full_ret);
        assert!(row.full_ret.contains("kept: it is"));
        let load = obj(json!({"fun": "test.ping", "kwargs": {"ret_kwargs": {"pass": "hunter2"}, "show_jid": false}}));
        assert_eq!(dumps_map(&load), r#"{"fun": "test.ping", "kwargs": {"ret_kwargs": {"pass": "**********"}, "show_jid": false}}"#);
    }

    #[test]
    fn statements_split_by_size_and_lock_keys_are_stable() {
        let sizes = [MAX_STATEMENT_BYTES, 1, 1, MAX_STATEMENT_BYTES - 2, 5];
        let parts = by_size(&sizes, MAX_STATEMENT_BYTES, |n| *n);
        assert_eq!(parts, vec![&sizes[0..1], &sizes[1..4], &sizes[4..5]]);
        assert!(by_size(&[] as &[usize], MAX_STATEMENT_BYTES, |n| *n).is_empty());
        assert_eq!(lock_key("20240510093015123456", "m1"), lock_key("20240510093015123456", "m1"));
        assert_ne!(lock_key("2024051009301512345", "6m1"), lock_key("20240510093015123456", "m1"));
    }
}
