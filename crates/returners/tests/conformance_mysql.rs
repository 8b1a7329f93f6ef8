//! The conformance suite against `mysql`, each test on a fresh database with Salt's own
//! (utf8mb3) tables, on the server `SALTRS_TEST_MYSQL` names.

#[macro_use]
mod suite;
mod mysql_db;

use std::sync::Arc;

use salt_returners::mysql::MySql;
use suite::{Backend, Traits};

async fn mysql() -> Option<Backend> {
    // None: no server, and the skip is reported.
    let db = mysql_db::TestDb::create(mysql_db::Tables::SaltUtf8).await?;
    let store = MySql::open_with(db.config());
    Some(Backend { store: Arc::new(store), _guard: Box::new(db), traits: Traits::SQL })
}

conformance!(mysql, mysql);
