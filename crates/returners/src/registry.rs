//! Returners by their Salt names. Adding a store is one line in each of the two lists below.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::local_cache::{LocalCache, LocalCacheConfig};
use crate::options::Lookup;
use crate::{Result, Returner, ReturnerError};

/// Every returner built in, sorted (what `sys.list_returners` shows).
pub fn builtin_names() -> Vec<&'static str> {
    let mut names = vec![
        LocalCache::NAME,
        crate::mysql::MySql::NAME,
        crate::pgjsonb::Pgjsonb::NAME,
        crate::postgres::Postgres::NAME,
        crate::sqlite3::Sqlite3::NAME,
        // one line per store
    ];
    names.sort_unstable();
    names
}

/// Opens the store named `name`, its options looked up through `lookup` (the config of the
/// process that runs it, plus a job's `ret_config`/`ret_kwargs` on the minion side).
pub async fn open(name: &str, lookup: &Lookup<'_>) -> Result<Arc<dyn Returner>> {
    let empty = Map::new();
    let opts = lookup.opts.unwrap_or(&empty);
    Ok(match name {
        LocalCache::NAME => Arc::new(LocalCache::open_with(&LocalCacheConfig::from_opts(opts)?).await?),
        crate::mysql::MySql::NAME => Arc::new(crate::mysql::MySql::open(lookup).await?),
        crate::pgjsonb::Pgjsonb::NAME => Arc::new(crate::pgjsonb::Pgjsonb::open(lookup).await?),
        crate::postgres::Postgres::NAME => Arc::new(crate::postgres::Postgres::open(lookup).await?),
        crate::sqlite3::Sqlite3::NAME => Arc::new(crate::sqlite3::Sqlite3::open(lookup).await?),
        // one arm per store
        other => return Err(ReturnerError::Invalid(format!("unknown returner '{other}'; built in are: {}", builtin_names().join(", ")))),
    })
}

/// Opens the store named `name` as the master's job cache, configured from the master's config.
pub async fn open_job_cache(name: &str, opts: &Map<String, Value>) -> Result<Arc<dyn Returner>> {
    open(name, &Lookup::new(opts)).await
}
