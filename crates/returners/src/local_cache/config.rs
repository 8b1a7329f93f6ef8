//! local_cache's settings, from the master's config.

use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::options::master_flag;
use crate::{Result, ReturnerError};

/// Settings, from the master's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCacheConfig {
    /// The master's `cachedir`; the database is `<cachedir>/job_cache.sqlite`.
    pub cachedir: PathBuf,
    /// Salt's `unique_jid`: jids allocated here end in `_<pid>`.
    pub unique_jid: bool,
}

impl LocalCacheConfig {
    pub fn new(cachedir: impl Into<PathBuf>) -> LocalCacheConfig {
        LocalCacheConfig { cachedir: cachedir.into(), unique_jid: false }
    }

    /// From the master's config map (`cachedir`, `unique_jid`).
    pub fn from_opts(opts: &Map<String, Value>) -> Result<LocalCacheConfig> {
        let cachedir = opts.get("cachedir").and_then(Value::as_str).ok_or_else(|| ReturnerError::Invalid("cachedir is not set".into()))?;
        Ok(LocalCacheConfig { cachedir: PathBuf::from(cachedir), unique_jid: master_flag(Some(opts), "unique_jid") })
    }
}
