//! The conformance suite against `postgres`, each test on a fresh database with Salt's postgres
//! schema, on the server `SALTRS_TEST_POSTGRES` names.

#[macro_use]
mod suite;
mod pg_db;

use std::sync::Arc;

use salt_returners::JobCache;
use suite::{Backend, Traits};

async fn postgres() -> Option<Backend> {
    // None: no server, and the skip is reported.
    let db = pg_db::TestDb::create().await?;
    let store = salt_returners::postgres::open_with(db.config()).unwrap();
    store.create_schema().await.unwrap();
    let age = pg_db::ager(&db);
    Some(Backend { store: Arc::new(store), _guard: Box::new(db), traits: Traits::SQL, age: Some(age) })
}

conformance!(postgres, postgres);
