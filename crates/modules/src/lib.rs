//! Salt's execution modules (`test.*`, `cmd.*`, `grains.*`, `sys.*`, `pkg.*`) as plain Rust
//! functions registered in a table by their Salt name.
//!
//! The minion calls [`Registry::execute`] for every job and `salt-call --local` calls it
//! directly. `execute` does what Salt's `Minion._thread_return` does around the function call:
//! it turns the publish `arg` list into positional and keyword arguments, runs the function in
//! a future whose panic is caught (so it cannot take the minion down), and turns the result or
//! the error into the `return` / `retcode` / `success` / `out` fields of the job return, with
//! Salt's texts.
//!
//! Each function binds its own arguments with a Python-like [`Signature`], so a wrong call
//! produces the same `TypeError`-style text that Salt's minion reports.

use std::sync::Arc;

use serde_json::{Map, Value};

mod args;
mod cmd;

pub mod grains;
mod pkg;
mod registry;
mod sys;
mod test;

pub use args::{py_repr, py_str, truthy, Args, Bound, Signature};
pub use cmd::{run_argv, RunOutput};
pub use registry::Registry;
pub use salt_targeting::fnmatch::fnmatch;

/// The Salt release this implementation emulates; `test.version` returns it and the
/// `saltversion` grain carries it.
pub const SALT_VERSION: &str = "3008.4";

/// What a function can see of the job it runs in (Salt's `__pub_*` data, `__grains__`,
/// `__opts__` and the loader).
pub struct JobContext {
    pub jid: String,
    pub minion_id: String,
    /// The publish load: `fun`, `arg`, `tgt`, `tgt_type`, `jid`, `ret`, `user`, ...
    /// Every key becomes a `__pub_<key>` keyword argument for functions that take `**kwargs`.
    pub pub_data: Map<String, Value>,
    pub grains: Arc<Map<String, Value>>,
    /// The minion configuration.
    pub opts: Opts,
    /// Names of the returners this minion has (for `sys.list_returners`).
    pub returners: Arc<Vec<String>>,
    /// The function table (for `sys.list_functions`, `sys.doc`, `sys.list_modules`).
    pub registry: Arc<Registry>,
}

/// The minion's options as a job sees them (Salt's `__opts__`): a map that the minions of one
/// process may share (a swarm's), with the few keys that are each minion's own (its id and
/// directories) laid over it. A job then costs two reference counts, not a copy of a map of
/// several hundred options.
#[derive(Debug, Clone, Default)]
pub struct Opts {
    shared: Arc<Map<String, Value>>,
    own: Option<Arc<Map<String, Value>>>,
}

impl Opts {
    /// `shared` with `own` laid over it.
    pub fn with_own(shared: Arc<Map<String, Value>>, own: Map<String, Value>) -> Opts {
        Opts { shared, own: Some(Arc::new(own)) }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.own.as_ref().and_then(|own| own.get(key)).or_else(|| self.shared.get(key))
    }

    /// All the options in one map (a job process is handed its own copy).
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = (*self.shared).clone();
        if let Some(own) = &self.own {
            map.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        map
    }
}

impl From<Arc<Map<String, Value>>> for Opts {
    fn from(shared: Arc<Map<String, Value>>) -> Opts {
        Opts { shared, own: None }
    }
}

impl From<Map<String, Value>> for Opts {
    fn from(map: Map<String, Value>) -> Opts {
        Arc::new(map).into()
    }
}

/// What a job produced, as Salt's minion records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub ret: Value,
    pub retcode: i32,
    pub success: bool,
    /// `Some("nested")` on error paths, as Salt sets it; `None` otherwise.
    pub out: Option<String>,
}

/// A function's return value plus Salt's `__context__["retcode"]`, if the function set one.
#[derive(Debug, Clone, PartialEq)]
pub struct Returned {
    pub value: Value,
    pub retcode: Option<i32>,
}

impl Returned {
    /// A plain return value that does not set a retcode.
    pub fn value(value: impl Into<Value>) -> Returned {
        Returned { value: value.into(), retcode: None }
    }

    /// A return value together with `__context__["retcode"]`.
    pub fn with_retcode(value: impl Into<Value>, retcode: i32) -> Returned {
        Returned { value: value.into(), retcode: Some(retcode) }
    }
}

/// The exceptions Salt's minion distinguishes when a function fails; each maps to its own
/// return text (see [`Registry::execute`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModuleError {
    /// `CommandExecutionError` -> `"ERROR: <msg>"`.
    #[error("{0}")]
    CommandExecution(String),
    /// `CommandNotFoundError` -> `"Command required for '<fun>' not found: <msg>"`.
    #[error("{0}")]
    CommandNotFound(String),
    /// `SaltInvocationError` -> `"ERROR executing '<fun>': <msg>"`.
    #[error("{0}")]
    Invocation(String),
    /// `TypeError` while calling -> `"Passed invalid arguments to <fun>: <msg>\n<doc>"`.
    #[error("{0}")]
    InvalidArguments(String),
    /// Any other exception -> `"The minion function caused an exception: <msg>"`.
    #[error("{0}")]
    Exception(String),
}

/// The signature every registered function has. Handlers are plain `fn`s so the table is
/// `Copy` and cheap to share; [`Registry::execute`] catches a panic of the future they return.
pub type Handler = fn(Arc<JobContext>, Args) -> futures::future::BoxFuture<'static, Result<Returned, ModuleError>>;
