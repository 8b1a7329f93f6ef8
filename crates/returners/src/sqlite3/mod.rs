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
//!
//! Its anatomy is the crate's template: [`config`], [`encode`] (rows), `client` (I/O), [`schema`].

mod client;
pub mod config;
pub mod encode;
pub mod schema;

use async_trait::async_trait;
use futures::FutureExt;
use serde_json::{Map, Value};
use sqlx::sqlite::SqlitePool;
use tokio::sync::OnceCell;

pub use config::Sqlite3Config;

use crate::registry::{Entry, Schema, Store, JOB_CACHE};
use crate::{JobCache, JobQuery, JobSummary, Load, Rejection, Result, Sink};

pub const NAME: &str = "sqlite3";

/// Salt's sqlite3 calls: no `event_return`, `clean_old_jobs` or end times ([`JOB_CACHE`]).
pub static ENTRY: Entry = Entry {
    name: NAME,
    calls: JOB_CACHE,
    open: |lookup| async move { Ok(Store::JobCache(std::sync::Arc::new(Sqlite3::open(lookup)?))) }.boxed(),
    schema: Some(Schema { tables: &schema::TABLES, ddl: schema::create_sql }),
};

pub struct Sqlite3 {
    pool: SqlitePool,
    config: Sqlite3Config,
    checked: OnceCell<()>,
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
        self.create_tables().await?;
        Ok(schema::TABLES.iter().map(|t| t.to_string()).collect())
    }

    async fn prep_jid(&self, _nocache: bool, passed_jid: Option<&str>) -> Result<String> {
        crate::record::prep_jid(passed_jid, self.config.unique_jid)
    }

    async fn save_load(&self, jid: &str, load: &Load, _minions: Option<&[String]>) -> Result<()> {
        self.save_load_text(jid, load).await
    }

    /// A no-op, as in Salt.
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
        crate::paging::get_jids(self, query).await
    }

    async fn get_minions(&self) -> Result<Vec<String>> {
        self.read_minions().await
    }
}
