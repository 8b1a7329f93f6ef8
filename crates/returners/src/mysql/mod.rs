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
//!   as a JSON escape there (see [`encode`]). Salt's INSERT fails and the return is lost.
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

//!
//! Its anatomy is the crate's template: [`config`], [`encode`] (rows), `client` (I/O),
//! [`schema`], and `purge` (the `keep_jobs_seconds` purge and `archive_jobs`).

mod client;
pub mod config;
pub mod encode;
mod purge;
pub mod schema;

use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};
use sqlx::mysql::MySqlPool;
use tokio::sync::OnceCell;

pub use config::MySqlConfig;

use crate::registry::{Entry, Schema, Store, JOB_CACHE_WITH_EVENTS, SALT_SQL_TABLES};
use crate::{Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, Sink};

pub const NAME: &str = "mysql";

pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE_WITH_EVENTS,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(MySql::open(lookup)?))) }.boxed(),
    schema: Some(Schema { tables: SALT_SQL_TABLES, ddl: schema::create_sql }),
};

pub struct MySql {
    pool: MySqlPool,
    config: MySqlConfig,
    charsets: OnceCell<client::Charsets>,
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
        self.create_tables().await?;
        Ok(SALT_SQL_TABLES.iter().map(|t| t.to_string()).collect())
    }

    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config.unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        self.save_load_text(jid, load).await
    }

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        // Salt's schema has no place for them ("included for API consistency").
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
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.read_minions().await
    }

    async fn clean_old_jobs(&self, keep: Duration) -> Result<u64> {
        purge::clean_old_jobs(self, keep).await
    }
}
