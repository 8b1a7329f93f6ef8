//! PostgreSQL I/O: a lazily connected pool, a batch in one transaction (one `unnest` INSERT per
//! bounded statement, advisory locks against a concurrent writer of the same return), the
//! reads, and the driver's errors as retry-later or refused-for-good (never with the password).

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Map, Value};
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::encode::{lock_key, prepare_event, prepare_return, Columns, Flavor, ReturnRow, Statements};
use super::{purge, PgConfig, PgStore};
use crate::batch::{by_size, insert_or_sift, prepare_all, Indexed};
use crate::json::dumps_map;
use crate::sql;
use crate::{Event, JobQuery, JobSummary, Load, Rejection, Result, ReturnerError};

/// Connections a store keeps open at most. The master writes through one spool per store,
/// so a few connections cover writes and listings at once.
const MAX_CONNECTIONS: u32 = 4;
/// JSON text per INSERT statement, so a batch of huge returns is sent in pieces (PostgreSQL
/// refuses a single value over 1 GB).
pub(super) const MAX_STATEMENT_BYTES: usize = 64 * 1024 * 1024;

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
    pub(super) async fn check_tables(&self) -> Result<()> {
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
                if sql::rejects_record(&code) {
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
    pub(super) async fn store_returns(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
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
            sqlx::query(self.statements().insert_returns.as_str())
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
        sqlx::query(self.statements().insert_load.as_str()).bind(jid).bind(load).execute(&mut **tx).await.map_err(|e| self.db_err(e))?;
        Ok(())
    }

    /// `event_return`: every event in one transaction, ids in the order given.
    pub(super) async fn store_events(&self, events: &[Event]) -> Result<Vec<Rejection>> {
        let (rows, mut rejected) = prepare_all(events, prepare_event);
        insert_or_sift(&rows, |rows| self.insert_events(rows), |(tag, _)| format!("event {tag}"), &mut rejected).await?;
        Ok(rejected)
    }

    async fn insert_events(&self, rows: &[Indexed<(String, String)>]) -> Result<()> {
        let err = |e| self.db_err(e);
        let mut tx = self.pool.begin().await.map_err(err)?;
        for chunk in by_size(rows, MAX_STATEMENT_BYTES, |r| r.row.1.len()) {
            let tags: Vec<&str> = chunk.iter().map(|r| r.row.0.as_str()).collect();
            let data: Vec<&str> = chunk.iter().map(|r| r.row.1.as_str()).collect();
            sqlx::query(self.statements().insert_events.as_str())
                .bind(tags)
                .bind(data)
                .bind(&self.config.master_id)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    pub(super) async fn insert_first_load(&self, jid: &str, load: &Load) -> Result<()> {
        salt_proto::jid::validate_jid(jid).map_err(|e| ReturnerError::Invalid(e.to_string()))?;
        let text = dumps_map(load);
        let mut tx = self.pool.begin().await.map_err(|e| self.db_err(e))?;
        self.insert_load(&mut tx, jid, &text).await?;
        tx.commit().await.map_err(|e| self.db_err(e))
    }

    pub(super) async fn read_load(&self, jid: &str) -> Result<Option<Load>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(None);
        }
        let text: Option<String> = sqlx::query_scalar(self.statements().get_load.as_str())
            .bind(jid)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_err(e))?;
        sql::load_from_text(self.flavor.name, jid, text)
    }

    /// `{id: full_ret}` from rows of (id, full_ret text). Salt's `postgres` schema lets
    /// full_ret be NULL (rows from old Salt versions).
    fn by_minion(&self, rows: Vec<PgRow>) -> Result<Map<String, Value>> {
        let pairs = rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<std::result::Result<Vec<_>, sqlx::Error>>();
        sql::by_minion(self.flavor.name, pairs.map_err(|e| self.db_err(e))?, |v| v)
    }

    pub(super) async fn read_jid(&self, jid: &str) -> Result<Map<String, Value>> {
        if !salt_proto::jid::is_jid(jid) {
            return Ok(Map::new());
        }
        let rows = sqlx::query(self.statements().get_jid.as_str()).bind(jid).fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        self.by_minion(rows)
    }

    pub(super) async fn read_fun(&self, fun: &str) -> Result<Map<String, Value>> {
        let rows = sqlx::query(self.statements().get_fun.as_str()).bind(fun).fetch_all(&self.pool).await.map_err(|e| self.db_err(e))?;
        self.by_minion(rows)
    }

    pub(super) async fn read_minions(&self) -> Result<Vec<String>> {
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

    pub(super) async fn list_jobs(&self, query: &JobQuery) -> Result<Vec<JobSummary>> {
        crate::paging::get_jids(self, query).await
    }

    pub(super) async fn purge(&self, keep: Duration) -> Result<u64> {
        purge::clean_old_jobs(self, keep).await
    }

    /// The store's statements, built once from fixed fragments (values are always bound).
    fn statements(&self) -> &'static Statements {
        static JSONB: OnceLock<Statements> = OnceLock::new();
        static TEXT: OnceLock<Statements> = OnceLock::new();
        let cell = match self.flavor.columns {
            Columns::Jsonb => &JSONB,
            Columns::Text => &TEXT,
        };
        cell.get_or_init(|| Statements::new(self.flavor))
    }
}
