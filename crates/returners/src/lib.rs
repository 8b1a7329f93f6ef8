//! Returners: where job results go.
//!
//! One trait, [`Returner`], covers the three roles a store can play, as in Salt:
//! - the minion-side call, [`Returner::returner`] (`salt ... --return mysql`);
//! - the event call, [`Returner::event_return`] (`event_return: mysql`);
//! - the job-cache calls (`master_job_cache: mysql`): `prep_jid`, `save_load`, `get_load`,
//!   `get_jid`, `get_jids`, ...
//!
//! A store says which calls it has through [`Returner::supports`]; the program that wires a
//! store into a role checks [`missing_for`] at start-up, so an unsupported call is a clear error
//! then, never a lost return later.
//!
//! Each store lives in its own module named as Salt names it (`local_cache`, `mysql`, ...), with
//! the same anatomy: a config type with Salt's option names and defaults, the store itself, and
//! unit tests; the conformance suite in `tests/` runs every job-cache backend through one set of tests.

mod batch;
pub mod format;
pub mod lazy;
pub mod local_cache;
pub mod mysql;
pub mod options;
mod pg_common;
pub mod pgjsonb;
pub mod postgres;
mod query;
pub mod redact;
mod registry;
pub mod spool;
pub mod sqlite3;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use thiserror::Error;

pub use registry::{builtin_names, open, open_job_cache};

/// A load or a return, as the JSON-like map Salt passes around.
pub type Load = Map<String, Value>;

/// One call of the returner interface (Salt's function names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    Returner,
    EventReturn,
    PrepJid,
    SaveLoad,
    SaveMinions,
    GetLoad,
    GetJid,
    GetJids,
    GetFun,
    GetMinions,
    CleanOldJobs,
    UpdateEndtime,
    GetEndtime,
}

impl Capability {
    /// Salt's name for the call, used in error messages.
    pub fn salt_name(self) -> &'static str {
        match self {
            Capability::Returner => "returner",
            Capability::EventReturn => "event_return",
            Capability::PrepJid => "prep_jid",
            Capability::SaveLoad => "save_load",
            Capability::SaveMinions => "save_minions",
            Capability::GetLoad => "get_load",
            Capability::GetJid => "get_jid",
            Capability::GetJids => "get_jids",
            Capability::GetFun => "get_fun",
            Capability::GetMinions => "get_minions",
            Capability::CleanOldJobs => "clean_old_jobs",
            Capability::UpdateEndtime => "update_endtime",
            Capability::GetEndtime => "get_endtime",
        }
    }
}

/// The calls each role needs.
pub const MASTER_JOB_CACHE: &[Capability] =
    &[Capability::PrepJid, Capability::SaveLoad, Capability::GetLoad, Capability::Returner, Capability::GetJid, Capability::GetJids];
/// The master saves each publish load there; the minions send it their returns.
pub const EXT_JOB_CACHE: &[Capability] = &[Capability::SaveLoad, Capability::Returner, Capability::GetLoad, Capability::GetJid];
pub const EVENT_RETURN: &[Capability] = &[Capability::EventReturn];
pub const MINION_RETURNER: &[Capability] = &[Capability::Returner];

/// The first call `role` needs that `store` lacks, if any.
pub fn missing_for(store: &dyn Returner, role: &[Capability]) -> Option<Capability> {
    role.iter().copied().find(|c| !store.supports(*c))
}

#[derive(Debug, Error)]
pub enum ReturnerError {
    #[error("returner '{returner}' does not support {call}")]
    Unsupported { returner: String, call: &'static str },
    /// The store cannot be reached or failed; worth retrying later.
    #[error("{0}")]
    Unavailable(String),
    /// The store refused this record for good (bad data); retrying will not help.
    #[error("{0}")]
    Rejected(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl ReturnerError {
    pub fn unsupported(returner: &str, call: Capability) -> ReturnerError {
        ReturnerError::Unsupported { returner: returner.to_string(), call: call.salt_name() }
    }
}

pub type Result<T> = std::result::Result<T, ReturnerError>;

/// An event as `event_return` receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub tag: String,
    pub data: Value,
}

/// What `jobs.list_jobs` asks of a job cache. Filters are ANDed; stores apply them to their
/// index columns and never read result bodies.
#[derive(Debug, Clone, Default)]
pub struct JobQuery {
    /// fnmatch globs on the function; a job matches if any glob does. Empty: any function.
    pub functions: Vec<String>,
    /// fnmatch globs on the target (a list target matches if any of its ids does).
    pub targets: Vec<String>,
    /// A job matches if any of these key/value pairs is in its metadata.
    pub metadata: Option<Map<String, Value>>,
    /// Only jobs started at or after this time (UTC).
    pub start_time: Option<chrono::NaiveDateTime>,
    /// Only jobs started at or before this time (UTC).
    pub end_time: Option<chrono::NaiveDateTime>,
    /// Leave out `saltutil.find_job` jobs (the CLI's polls).
    pub exclude_find_job: bool,
    /// At most this many jobs (None: all).
    pub limit: Option<usize>,
    /// Skip this many matching jobs first.
    pub offset: usize,
    /// Newest first (the default for listings) or oldest first.
    pub oldest_first: bool,
}

/// A job as listings show it: the publish load's small fields, never its results.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub jid: String,
    pub fun: String,
    pub arg: Vec<Value>,
    pub tgt: Value,
    pub tgt_type: String,
    pub user: String,
    pub metadata: Option<Value>,
    pub end_time: Option<String>,
}

#[async_trait]
pub trait Returner: Send + Sync {
    /// Salt's name for this returner (`local_cache`, `mysql`, ...).
    fn name(&self) -> &str;

    /// Whether this store implements `call`.
    fn supports(&self, call: Capability) -> bool;

    /// Stores one minion return (Salt's `returner(ret)`). Idempotent on (jid, id): storing the
    /// same return twice keeps one.
    async fn returner(&self, _ret: &Load) -> Result<()> {
        Err(ReturnerError::unsupported(self.name(), Capability::Returner))
    }

    /// Stores many returns at once; stores that can batch override this.
    async fn returner_batch(&self, rets: &[Load]) -> Result<()> {
        for ret in rets {
            self.returner(ret).await?;
        }
        Ok(())
    }

    async fn event_return(&self, _events: &[Event]) -> Result<()> {
        Err(ReturnerError::unsupported(self.name(), Capability::EventReturn))
    }

    /// Connects and checks what the store needs (a login, its tables): one clear error for a
    /// wrong password, an unknown database or a missing table. Daemons call it at start-up and
    /// say what is wrong at once; they start anyway and spool until the store works.
    async fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Returns `passed_jid` (after recording it) or a new jid.
    async fn prep_jid(&self, _nocache: bool, _passed_jid: Option<&str>) -> Result<String> {
        Err(ReturnerError::unsupported(self.name(), Capability::PrepJid))
    }

    /// Stores the publish load and the minions it targeted. The first load stored for a jid wins.
    async fn save_load(&self, _jid: &str, _load: &Load, _minions: Option<&[String]>) -> Result<()> {
        Err(ReturnerError::unsupported(self.name(), Capability::SaveLoad))
    }

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        Err(ReturnerError::unsupported(self.name(), Capability::SaveMinions))
    }

    /// The publish load (with `Minions` when the store keeps them), or None for an unknown jid.
    async fn get_load(&self, _jid: &str) -> Result<Option<Load>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetLoad))
    }

    /// `{minion id: stored return}` for one job.
    async fn get_jid(&self, _jid: &str) -> Result<Map<String, Value>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetJid))
    }

    /// `{minion id: latest return of fun}`.
    async fn get_fun(&self, _fun: &str) -> Result<Map<String, Value>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetFun))
    }

    /// Jobs matching `query`, in jid order (newest first unless `oldest_first`), paged.
    async fn get_jids(&self, _query: &JobQuery) -> Result<Vec<JobSummary>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetJids))
    }

    /// Every minion id that has a stored return.
    async fn get_minions(&self) -> Result<Vec<String>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetMinions))
    }

    /// Removes jobs whose publish and every return are older than `keep`. Returns how many
    /// jobs went.
    async fn clean_old_jobs(&self, _keep: Duration) -> Result<u64> {
        Err(ReturnerError::unsupported(self.name(), Capability::CleanOldJobs))
    }

    async fn update_endtime(&self, _jid: &str, _time: &str) -> Result<()> {
        Err(ReturnerError::unsupported(self.name(), Capability::UpdateEndtime))
    }

    async fn get_endtime(&self, _jid: &str) -> Result<Option<String>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetEndtime))
    }

    /// The SQL that creates this store's tables (Salt's documented schema), for stores that
    /// have one; `salt-returner-schema <name>` prints it.
    fn schema_ddl(&self) -> Option<String> {
        None
    }

    /// Creates whichever of this store's tables are missing; returns the tables it created (or,
    /// for stores that cannot tell, every table it made sure of).
    async fn create_schema(&self) -> Result<Vec<String>> {
        Err(ReturnerError::Invalid(format!("returner '{}' has no schema to create", self.name())))
    }
}
