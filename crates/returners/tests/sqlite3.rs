//! `sqlite3` on a real file: the columns Salt writes, awkward values, a missing table.

use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::sqlite3::{schema, Sqlite3, Sqlite3Config};
use salt_returners::{JobCache, Sink};
use serde_json::json;
use sqlx::Row;

fn open(dir: &tempfile::TempDir) -> Sqlite3 {
    Sqlite3::open_with(Sqlite3Config { database: dir.path().join("salt.db"), timeout: Duration::from_secs(5), unique_jid: false }).unwrap()
}

async fn rows(path: &std::path::Path, sql: &'static str) -> Vec<Vec<Option<String>>> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    let rows = sqlx::query(sql).fetch_all(&pool).await.unwrap();
    let out = rows.iter().map(|r| (0..r.len()).map(|i| r.try_get::<Option<String>, _>(i).unwrap()).collect()).collect();
    pool.close().await;
    out
}

#[tokio::test]
async fn columns_are_salts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create_schema().await.unwrap();
    let nasty = "it's \"quoted\"; DROP TABLE jids; -- 😀";
    let ret = json!({"success": true, "return": {"out": nasty}, "retcode": 0, "jid": "20261125003808100453", "fun": "test.echo",
                     "fun_args": [nasty], "user": "root", "id": "minion1"});
    store.returner(ret.as_object().unwrap()).await.unwrap();
    store.returner(ret.as_object().unwrap()).await.unwrap();
    let got = rows(&dir.path().join("salt.db"), "SELECT fun, jid, id, fun_args, date, full_ret, success FROM salt_returns").await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r[0].as_deref(), Some("test.echo"));
    assert_eq!(r[1].as_deref(), Some("20261125003808100453"));
    assert_eq!(r[2].as_deref(), Some("minion1"));
    assert_eq!(r[3].as_deref(), Some(r#"['it\'s "quoted"; DROP TABLE jids; -- 😀']"#));
    assert!(chrono::NaiveDateTime::parse_from_str(r[4].as_deref().unwrap(), "%Y-%m-%d %H:%M:%S%.f").is_ok());
    assert_eq!(r[5].as_deref(), Some(r#"{"out": "it's \"quoted\"; DROP TABLE jids; -- 😀"}"#));
    assert_eq!(r[6].as_deref(), Some("1"));
    assert_eq!(store.get_jid("20261125003808100453").await.unwrap()["minion1"], json!({"return": {"out": nasty}}));
    assert_eq!(store.get_fun("test.echo").await.unwrap()["minion1"], json!({"out": nasty}));

    let load = json!({"fun": "test.echo", "arg": [nasty], "tgt": "*", "user": "root"});
    store.save_load("20261125003808100453", load.as_object().unwrap(), None).await.unwrap();
    let got = rows(&dir.path().join("salt.db"), "SELECT jid, load FROM jids").await;
    assert_eq!(
        got[0][1].as_deref(),
        Some(r#"{"fun": "test.echo", "arg": ["it's \"quoted\"; DROP TABLE jids; -- 😀"], "tgt": "*", "user": "root"}"#)
    );
}

#[tokio::test]
async fn missing_tables_and_options_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ret = json!({"return": true, "jid": "20261125003808100453", "fun": "test.ping", "id": "m1"});
    let err = store.returner(ret.as_object().unwrap()).await.unwrap_err().to_string();
    assert!(err.contains("tables jids, salt_returns missing") && err.contains("salt.db"), "{err}");
    store.create_schema().await.unwrap();
    store.returner(ret.as_object().unwrap()).await.unwrap();
    // The table is Salt's, as its documentation creates it.
    let sql = rows(&dir.path().join("salt.db"), "SELECT sql FROM sqlite_master WHERE name = 'jids'").await;
    assert_eq!(sql[0][0].as_deref(), Some("CREATE TABLE jids (\n  jid TEXT PRIMARY KEY,\n  load TEXT NOT NULL\n  )"));
    assert!(schema::DDL.starts_with("CREATE TABLE jids (\n  jid TEXT PRIMARY KEY,\n  load TEXT NOT NULL\n  );"));
    let opts = json!({"sqlite3.timeout": 5}).as_object().unwrap().clone();
    let err = salt_returners::open("sqlite3", &Lookup::new(&opts)).await.err().unwrap().to_string();
    assert!(err.contains("\"sqlite3.database\" is missing"), "{err}");
}
