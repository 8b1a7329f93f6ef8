//! Returners: where job results go.
//!
//! # Roles
//!
//! A store plays one or both of two roles, each a trait:
//! - [`Sink`]: it takes returns (`salt ... --return mysql`, Salt's `returner(ret)`), maybe
//!   events (`event_return: mysql`), and can say whether it works ([`Sink::check`]);
//! - [`JobCache`], built on [`Sink`]: it keeps jobs (`master_job_cache: mysql`): `prep_jid`,
//!   `save_load`, `get_load`, `get_jid`, `get_jids`, purge, end times.
//!
//! The registry ([`ENTRIES`]) hands each role the trait it needs ([`open_sink`],
//! [`open_job_cache`]). What a store can do is declared once, in its [`Entry`]: its name, the
//! calls it has, how it opens, its schema. A daemon checks [`missing_for`] when it wires a
//! store into a role, so a missing call is a clear error at start-up, never a lost return later;
//! and it runs [`Sink::check`] then, so a wrong password is one line in the log at once.
//!
//! # The kit every store uses
//!
//! - [`record::ReturnRecord`]: a return checked once (id, jid, fun, `return`), with Salt's
//!   `req` and `nocache` jids handled there;
//! - [`json`]: the JSON text Salt writes (Python's `json.dumps`), settings redacted;
//! - [`secret::Secret`]: a password or token that never prints;
//! - `batch`: a batch prepared record by record, written in bounded statements, and a bad row
//!   found without losing the good ones; a store answers a batch with the [`Rejection`]s of the
//!   records it refused for good, so only those go to the spool's dead-letter file;
//! - one jid clock per process ([`salt_proto::jid::new_jid`]);
//! - one error classification: [`ReturnerError::retry_later`] (the store is down: the spool keeps
//!   the record and retries) or not (the record is refused for good);
//! - `paging`: `get_jids` as a walk in jid order over chunks a store reads from its index, with
//!   Salt's filters; the first page never reads every job;
//! - `sql`: what the SQL stores share, a dialect per database; no store imports another;
//! - `http`: what the HTTP stores share (a client with deadlines, answers read within a bound,
//!   statuses classified);
//! - `notify`: Salt's text of a return for the returners that send a message, and `cut`, which
//!   keeps a message within what the service takes and says so in it;
//! - `delivered`: what a store that cannot ask its service what it holds (a chat, a collector, a
//!   syslog server, a mail relay) remembers, so a batch the spool retries sends nothing twice
//!   (`recent` does the same line by line for the stores that append: rawfile_json, local);
//! - [`health`]: the one start-up check every daemon runs on its stores;
//! - [`spool::Spool`]: the durable queue in front of every store (the callers own it, not the
//!   stores).
//!
//! # The template: one folder per store
//!
//! A new store copies this anatomy (not the nearest store):
//!
//! ```text
//! src/<name>/mod.rs     the Salt module it mirrors and where it differs on purpose (doc);
//!                       NAME, ENTRY (calls, open, schema); the store type; `impl Sink`, and
//!                       `impl JobCache` when it keeps jobs: thin, calling encode and client
//! src/<name>/config.rs  typed options with Salt's names and defaults, each default stated
//!                       once, read through `options::Lookup` (flat, nested, `alternative.`,
//!                       `--return_config`, `--return_kwargs`); secrets as `Secret`
//! src/<name>/encode.rs  pure: record to row, document or key (and back); unit-tested here
//! src/<name>/client.rs  I/O: connect lazily, write a batch in one round trip (pipeline, bulk
//!                       call, multi-row statement), read, classify errors (retry later or
//!                       refuse the record), never print a secret
//! src/<name>/schema.rs  SQL stores only: Salt's DDL, and creating the missing tables
//! tests/<name>.rs       the shared conformance suites (`tests/suite`: the sink suite, and
//!                       the job-cache suite when it keeps jobs) against the real server,
//!                       started by `saltrs_testkit::Server` (or, for a service that cannot
//!                       run here, a `saltrs_testkit::StandIn` that checks each request as
//!                       the real API does); then what is particular to it
//! ```
//!
//! A concern too big for `client.rs` gets a file named after it (`purge.rs`, memcache's `ops.rs`
//! above its wire protocol). The store adds one line to [`ENTRIES`], and a cargo feature for its
//! driver (on by default, forwarded by the `saltrs` crate as `returner-<name>`).

// A build that leaves out stores leaves parts of the kit unused.
#![cfg_attr(
    not(all(
        feature = "mysql",
        feature = "postgres",
        feature = "sqlite3",
        feature = "mongo",
        feature = "etcd",
        feature = "couchdb",
        feature = "elasticsearch",
        feature = "redis",
        feature = "memcache",
        feature = "splunk",
        feature = "slack",
        feature = "slack_webhook",
        feature = "mattermost",
        feature = "smtp",
        feature = "highstate",
        feature = "telegram",
        feature = "pushover",
        feature = "hipchat"
    )),
    allow(dead_code)
)]

mod batch;
pub mod carbon;
#[cfg(feature = "couchdb")]
pub mod couchdb;
mod delivered;
#[cfg(feature = "elasticsearch")]
pub mod elasticsearch;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod format;
pub mod health;
#[cfg(feature = "highstate")]
pub mod highstate;
#[cfg(feature = "hipchat")]
pub mod hipchat;
#[cfg(feature = "http")]
mod http;
pub mod json;
pub mod lazy;
pub mod local;
pub mod local_cache;
#[cfg(feature = "mattermost")]
pub mod mattermost;
#[cfg(feature = "memcache")]
pub mod memcache;
#[cfg(feature = "mongo")]
pub mod mongo;
pub mod multi_returner;
#[cfg(feature = "mysql")]
pub mod mysql;
mod notify;
pub mod options;
mod paging;
#[cfg(feature = "postgres")]
pub mod pgjsonb;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "pushover")]
pub mod pushover;
pub mod rawfile_json;
mod recent;
pub mod record;
pub mod redact;
#[cfg(feature = "redis")]
pub mod redis;
mod registry;
pub mod secret;
#[cfg(feature = "slack")]
pub mod slack;
#[cfg(feature = "slack_webhook")]
pub mod slack_webhook;
#[cfg(feature = "smtp")]
pub mod smtp;
#[cfg(feature = "splunk")]
pub mod splunk;
pub mod spool;
#[cfg(any(feature = "mysql", feature = "postgres", feature = "sqlite3"))]
mod sql;
#[cfg(feature = "sqlite3")]
pub mod sqlite3;
#[cfg(any(feature = "redis", feature = "memcache"))]
mod summary;
pub mod syslog;
#[cfg(feature = "telegram")]
pub mod telegram;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};
use thiserror::Error;

pub use registry::{builtin_names, entry, open, open_job_cache, open_sink, Entry, Schema, Store, ENTRIES};

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
    /// Every call, in the order above.
    pub const ALL: &[Capability] = &[
        Capability::Returner,
        Capability::EventReturn,
        Capability::PrepJid,
        Capability::SaveLoad,
        Capability::SaveMinions,
        Capability::GetLoad,
        Capability::GetJid,
        Capability::GetJids,
        Capability::GetFun,
        Capability::GetMinions,
        Capability::CleanOldJobs,
        Capability::UpdateEndtime,
        Capability::GetEndtime,
    ];

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

    /// Whether the call is a job cache's ([`JobCache`]) rather than a sink's ([`Sink`]).
    pub fn needs_job_cache(self) -> bool {
        !matches!(self, Capability::Returner | Capability::EventReturn)
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
pub fn missing_for(store: &dyn Sink, role: &[Capability]) -> Option<Capability> {
    role.iter().copied().find(|c| !store.supports(*c))
}

#[derive(Debug, Error)]
pub enum ReturnerError {
    #[error("returner '{returner}' does not support {call}")]
    Unsupported { returner: String, call: &'static str },
    /// The store cannot be reached or failed; worth retrying later.
    #[error("{0}")]
    Unavailable(String),
    /// The service asked to be left alone for a while (HTTP 429 or 503 with `Retry-After`):
    /// retry later, not before `after`.
    #[error("{message} (it asks to wait {}s)", after.as_secs())]
    Throttled { message: String, after: Duration },
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

    /// The one classification every caller uses: a store that is down or slow is worth trying
    /// again later (the spool keeps the record); anything else is final for this record.
    pub fn retry_later(&self) -> bool {
        matches!(self, ReturnerError::Unavailable(_) | ReturnerError::Throttled { .. })
    }

    /// How long the service asked us to wait before the next try, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ReturnerError::Throttled { after, .. } => Some(*after),
            _ => None,
        }
    }
}

/// A record of a batch that the store refused for good, by its place in the batch; the rest
/// of the batch was stored. Only this record goes to the dead-letter file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub index: usize,
    pub reason: String,
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

/// What every store is: somewhere returns (and, if it says so, events) can be written. A
/// minion's `--return <store>` and the master's `event_return` need only this.
///
/// What a store can do is declared once, in its registry [`Entry`] (`calls`); [`Sink::supports`]
/// reads it there, and a call a store does not implement answers `Unsupported`.
#[async_trait]
pub trait Sink: Send + Sync {
    /// The store's registry entry: its name and the calls it has.
    fn entry(&self) -> &'static Entry;

    /// Salt's name for this returner (`local_cache`, `mysql`, ...).
    fn name(&self) -> &'static str {
        self.entry().name
    }

    /// Whether this store implements `call` (as its entry declares).
    fn supports(&self, call: Capability) -> bool {
        self.entry().calls.contains(&call)
    }

    /// Stores returns (Salt's `returner(ret)`, one call for many). Idempotent on the record:
    /// storing the same return twice keeps one. `Ok` lists the records refused for good (the
    /// others are stored); `Err` means nothing can be said of the batch: try it again later
    /// when [`ReturnerError::retry_later`], else it is refused whole.
    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>>;

    /// One return: [`Sink::returner_batch`] of one, its refusal as an error.
    async fn returner(&self, ret: &Load) -> Result<()> {
        match self.returner_batch(std::slice::from_ref(ret)).await?.pop() {
            Some(rejection) => Err(ReturnerError::Rejected(rejection.reason)),
            None => Ok(()),
        }
    }

    /// Stores every event of the batch (Salt's `event_return`); `Ok` as for returns.
    async fn event_return(&self, _events: &[Event]) -> Result<Vec<Rejection>> {
        Err(ReturnerError::unsupported(self.name(), Capability::EventReturn))
    }

    /// The stores this one writes through (multi_returner's), each to be given its own spool by
    /// the caller, so one that is down holds back only its own records. Empty for a store that
    /// writes itself.
    fn parts(&self) -> &[Store] {
        &[]
    }

    /// Connects and checks what the store needs (a login, its tables): one clear error for a
    /// wrong password, an unknown database or a missing table. Daemons call it at start-up and
    /// say what is wrong at once; they start anyway and spool until the store works.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// A store that keeps jobs: the master job cache (`master_job_cache`, `ext_job_cache`), read by
/// `salt-run jobs.*`. Built on [`Sink`]: its returns are the jobs' returns.
#[async_trait]
pub trait JobCache: Sink {
    /// Returns `passed_jid` (after recording it) or a new jid.
    async fn prep_jid(&self, nocache: bool, passed_jid: Option<&str>) -> Result<String>;

    /// Stores the publish load and the minions it targeted. The first load stored for a jid wins.
    async fn save_load(&self, jid: &str, load: &Load, minions: Option<&[String]>) -> Result<()>;

    async fn save_minions(&self, _jid: &str, _minions: &[String], _syndic_id: Option<&str>) -> Result<()> {
        Err(ReturnerError::unsupported(self.name(), Capability::SaveMinions))
    }

    /// The publish load (with `Minions` when the store keeps them), or None for an unknown jid.
    async fn get_load(&self, jid: &str) -> Result<Option<Load>>;

    /// `{minion id: stored return}` for one job.
    async fn get_jid(&self, jid: &str) -> Result<Map<String, Value>>;

    /// `{minion id: latest return of fun}`.
    async fn get_fun(&self, _fun: &str) -> Result<Map<String, Value>> {
        Err(ReturnerError::unsupported(self.name(), Capability::GetFun))
    }

    /// Jobs matching `query`, in jid order (newest first unless `oldest_first`), paged.
    async fn get_jids(&self, query: &JobQuery) -> Result<Vec<JobSummary>>;

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

    /// Creates whichever of this store's tables are missing (its entry's [`Schema`]); returns
    /// the tables it created (or, for stores that cannot tell, every table it made sure of).
    async fn create_schema(&self) -> Result<Vec<String>> {
        Err(ReturnerError::Invalid(format!("returner '{}' has no schema to create", self.name())))
    }
}
