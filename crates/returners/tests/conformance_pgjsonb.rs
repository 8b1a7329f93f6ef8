//! The conformance suite against `pgjsonb`, each test on a fresh database with Salt's pgjsonb
//! schema, on the server `SALTRS_TEST_POSTGRES` names.

#[macro_use]
mod suite;
mod pg_db;

use std::sync::Arc;

use salt_returners::JobCache;
use suite::{Backend, Traits};

async fn pgjsonb() -> Option<Backend> {
    // None: no server, and the skip is reported.
    let db = pg_db::TestDb::create().await?;
    let store = salt_returners::pgjsonb::open_with(db.config()).unwrap();
    store.create_schema().await.unwrap();
    let age = pg_db::ager(&db);
    Some(Backend { store: Arc::new(store), _guard: Box::new(db), traits: Traits::PGJSONB, age: Some(age) })
}

conformance!(pgjsonb, pgjsonb);
