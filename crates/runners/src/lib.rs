//! Runners: functions that run on the master (`salt-run jobs.list_jobs`). They read the job cache
//! and, for `jobs.active` and `manage.*`, ask the minions through the master.
//!
//! Runners see the master only through the [`Master`] trait, so this crate does not depend on
//! the master's internals and can be tested with a stand-in.

mod jobs;
mod manage;
pub mod times;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use salt_modules::{Args, Bound, Signature};
use salt_returners::JobCache;
use serde_json::{Map, Value};
use thiserror::Error;

/// What a runner needs of the master.
#[async_trait]
pub trait Master: Send + Sync {
    /// The master's configuration.
    fn opts(&self) -> &Map<String, Value>;
    fn master_id(&self) -> &str;
    /// The job cache, if `job_cache` is on.
    fn job_cache(&self) -> Option<Arc<dyn JobCache>>;
    /// Ids whose keys are accepted.
    fn accepted_minions(&self) -> Vec<String>;
    /// Ids with a live connection.
    fn connected_minions(&self) -> Vec<String>;
    /// Salt's `LocalClient.cmd`: publish `fun` to the glob `tgt` and collect `{id: return}` until
    /// every targeted minion answered or `timeout` passed.
    async fn cmd(&self, tgt: &str, fun: &str, arg: Vec<Value>, timeout: Duration) -> Map<String, Value>;
}

/// A runner's result: the data, the outputter it prefers, and the exit code for salt-run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerOutput {
    pub data: Value,
    pub outputter: Option<String>,
    pub retcode: i32,
}

impl RunnerOutput {
    /// Plain data, exit code 0 whatever it is: salt-run exits 0 for an empty or false result
    /// too (`jobs.lookup_jid` of an unknown jid prints nothing and exits 0); only a failed
    /// runner exits non-zero.
    pub fn data(data: Value) -> RunnerOutput {
        RunnerOutput { data, outputter: None, retcode: 0 }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum RunnerError {
    #[error("'{0}' is not available.")]
    Unknown(String),
    #[error("Passed invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("{0}")]
    Failed(String),
}

type RunnerFn = for<'a> fn(&'a dyn Master, Bound) -> futures::future::BoxFuture<'a, Result<RunnerOutput, RunnerError>>;

/// Every runner: its name, its Python-style signature (for argument binding and `--doc`), its function.
const RUNNERS: &[(&str, &str, RunnerFn)] = &[
    ("jobs.active", "active(display_progress=False)", jobs::active),
    ("jobs.exit_success", "exit_success(jid, ext_source=None)", jobs::exit_success),
    ("jobs.last_run", "last_run(ext_source=None, outputter=None, metadata=None, function=None, target=None, display_progress=False)", jobs::last_run),
    ("jobs.list_job", "list_job(jid, ext_source=None, display_progress=False)", jobs::list_job),
    (
        "jobs.list_jobs",
        "list_jobs(ext_source=None, outputter=None, search_metadata=None, search_function=None, search_target=None, start_time=None, end_time=None, display_progress=False, limit=100, offset=0)",
        jobs::list_jobs,
    ),
    ("jobs.list_jobs_filter", "list_jobs_filter(count, filter_find_job=True, ext_source=None, outputter=None, display_progress=False)", jobs::list_jobs_filter),
    ("jobs.lookup_jid", "lookup_jid(jid, ext_source=None, returned=True, missing=False, display_progress=False)", jobs::lookup_jid),
    ("jobs.print_job", "print_job(jid, ext_source=None)", jobs::print_job),
    ("manage.down", "down(removekeys=False, tgt='*', tgt_type='glob', timeout=None, gather_job_timeout=None)", manage::down),
    ("manage.present", "present(subset=None, show_ip=False)", manage::present),
    ("manage.status", "status(output=True, tgt='*', tgt_type='glob', timeout=None, gather_job_timeout=None)", manage::status),
    ("manage.up", "up(tgt='*', tgt_type='glob', timeout=None, gather_job_timeout=None)", manage::up),
];

/// Names of every runner, sorted.
pub fn functions() -> Vec<&'static str> {
    RUNNERS.iter().map(|(n, _, _)| *n).collect()
}

/// Runs `fun` with Salt-style `arg` (positional values and a trailing `__kwarg__` dict).
pub async fn run(master: &dyn Master, fun: &str, arg: &[Value]) -> Result<RunnerOutput, RunnerError> {
    let (_, sig, f) = RUNNERS.iter().find(|(n, _, _)| *n == fun).ok_or_else(|| RunnerError::Unknown(fun.to_string()))?;
    let bound = Signature::parse(sig).bind(&Args::from_publish(arg)).map_err(|e| RunnerError::InvalidArguments(e.to_string()))?;
    f(master, bound).await
}

/// The job cache or a clear error.
fn cache(master: &dyn Master) -> Result<Arc<dyn JobCache>, RunnerError> {
    master.job_cache().ok_or_else(|| RunnerError::Failed("the job cache is off (job_cache: False); no jobs are stored".into()))
}

/// A jid from the user, validated before it reaches a store.
fn jid_arg(bound: &Bound) -> Result<String, RunnerError> {
    let jid = match bound.get("jid") {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Null => return Err(RunnerError::InvalidArguments("a jid is required".into())),
        other => other.to_string(),
    };
    salt_proto::jid::validate_jid(&jid).map_err(|e| RunnerError::InvalidArguments(e.to_string()))?;
    Ok(jid)
}
