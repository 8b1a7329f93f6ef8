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
//!
//! Their anatomy is the crate's template, shared: `config`, [`encode`] (rows and statements),
//! `client` (I/O), `schema` (creating a flavour's tables), `listing` and `purge`.

mod client;
mod config;
pub(crate) mod encode;
mod listing;
mod purge;
pub(crate) mod schema;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::postgres::PgPool;

pub use config::PgConfig;
pub(crate) use encode::{Columns, Flavor};

use crate::registry::Entry;
use crate::{Event, JobCache, JobQuery, JobSummary, Load, Rejection, Result, Sink};

pub struct PgStore {
    flavor: &'static Flavor,
    pool: PgPool,
    config: PgConfig,
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
        crate::record::prep_jid(passed_jid, self.config.unique_jid)
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
