//! The conformance suite against `sqlite3`, each test on a fresh file with Salt's schema.

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use salt_returners::sqlite3::{Sqlite3, Sqlite3Config};
use salt_returners::JobCache;
use suite::{Backend, Traits};

async fn sqlite3() -> Option<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let config = Sqlite3Config { database: dir.path().join("salt.db"), timeout: Duration::from_secs(5), unique_jid: false };
    let store = Sqlite3::open_with(config).unwrap();
    store.create_schema().await.unwrap();
    // No purge in Salt's sqlite3 returner: nothing to age.
    Some(Backend { store: Arc::new(store), _guard: Box::new(dir), traits: Traits::SQLITE3, age: None })
}

conformance!(sqlite3, sqlite3);
