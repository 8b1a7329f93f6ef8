//! The conformance suite against `mysql`, each test on a fresh database with Salt's own
//! (utf8mb3) tables, on the server `SALTRS_TEST_MYSQL` names.

#[macro_use]
mod suite;
mod mysql_db;

use std::sync::Arc;

use salt_returners::mysql::MySql;
use suite::{Ager, Backend, Traits};

async fn mysql() -> Option<Backend> {
    // None: no server, and the skip is reported.
    let db = mysql_db::TestDb::create(mysql_db::Tables::SaltUtf8).await?;
    let store = MySql::open_with(db.config());
    let pool = db.pool.clone();
    let age: Ager = Box::new(move |secs| {
        let pool = pool.clone();
        Box::pin(async move {
            for table in ["salt_returns", "salt_events"] {
                let sql = format!("UPDATE `{table}` SET `alter_time` = `alter_time` - INTERVAL ? SECOND");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secs).execute(&pool).await.unwrap();
            }
        })
    });
    Some(Backend { store: Arc::new(store), _guard: Box::new(db), traits: Traits::SQL, age: Some(age) })
}

conformance!(mysql, mysql);
