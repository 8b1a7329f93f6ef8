//! The conformance suite against `local_cache`, on a temporary directory.

#[macro_use]
mod suite;

use std::sync::Arc;

use salt_returners::local_cache::LocalCache;
use suite::{Ager, Backend, Traits};

async fn local_cache() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalCache::open(dir.path()).await.unwrap();
    // A second connection to the same WAL file, to age the jobs behind the store's back.
    let file = sqlx::sqlite::SqliteConnectOptions::new().filename(store.path());
    let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(file).await.unwrap();
    let age: Ager = Box::new(move |secs| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query("UPDATE jobs SET last_activity = last_activity - ?1").bind(secs as i64).execute(&pool).await.unwrap();
        })
    });
    Some(Backend { store: Arc::new(store), _guard: Box::new(dir), traits: Traits::LOCAL_CACHE, age: Some(age) })
}

conformance!(local_cache, local_cache);
