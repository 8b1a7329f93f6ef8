//! Returners by their Salt names.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::local_cache::{LocalCache, LocalCacheConfig};
use crate::{Result, Returner, ReturnerError};

/// Every returner built in, sorted (what `sys.list_returners` shows).
pub fn builtin_names() -> Vec<&'static str> {
    let mut names = vec![LocalCache::NAME];
    names.sort_unstable();
    names
}

/// Opens the store named `name` for the master's job cache, configured from `opts` (the
/// master's config map).
pub async fn open_job_cache(name: &str, opts: &Map<String, Value>) -> Result<Arc<dyn Returner>> {
    match name {
        LocalCache::NAME => {
            Ok(Arc::new(LocalCache::open_with(&LocalCacheConfig::from_opts(opts)?).await?))
        }
        other => Err(ReturnerError::Invalid(format!(
            "unknown returner '{other}'; built in are: {}",
            builtin_names().join(", ")
        ))),
    }
}
