//! The conformance suite against `local_cache`, on a temporary directory.

#[macro_use]
mod suite;

use std::sync::Arc;

use salt_returners::local_cache::LocalCache;
use suite::{Backend, Traits};

async fn local_cache() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalCache::open(dir.path()).await.unwrap();
    Some(Backend { store: Arc::new(store), _guard: Box::new(dir), traits: Traits::LOCAL_CACHE })
}

conformance!(local_cache, local_cache);
