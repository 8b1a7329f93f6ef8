//! `mysql` against a real server (`SALTRS_TEST_MYSQL`): the rows Salt writes, charsets, big and
//! awkward values, errors, purge and archive. The job-cache calls are in `conformance_mysql.rs`.

mod mysql_db;

use std::time::Duration;

use mysql_db::{Tables, TestDb};
use salt_returners::mysql::MySql;
use salt_returners::options::Lookup;
use salt_returners::{Event, JobCache, Load, ReturnerError, Sink};
use serde_json::{json, Value};
use sqlx::Row;

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

/// A database, or None when the test was skipped (a failure under CI=true).
async fn db(tables: Tables) -> Option<TestDb> {
    TestDb::create(tables).await
}

async fn rows(db: &TestDb, sql: &str) -> Vec<Vec<Option<String>>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&db.pool).await.unwrap();
    let cell = |r: &sqlx::mysql::MySqlRow, i: usize| {
        r.try_get::<Option<String>, _>(i).or_else(|_| r.try_get::<Option<i64>, _>(i).map(|n| n.map(|n| n.to_string()))).unwrap()
    };
    rows.iter().map(|r| (0..r.len()).map(|i| cell(r, i)).collect()).collect()
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// The minion-side return of the transcript (`salt '*' cmd.run 'ls /' --return mysql`, 3008.4).
fn minion_ret() -> Load {
    obj(json!({"success": true, "return": "bin\nboot\ndev", "retcode": 0, "jid": "20261125003808100453", "fun": "cmd.run",
               "fun_args": ["ls /"], "user": "root", "id": "minion1"}))
}

/// The same return as the master's job cache gets it.
fn master_ret() -> Load {
    obj(json!({"cmd": "_return", "id": "minion1", "success": true, "return": "bin\nboot\ndev", "retcode": 0,
               "jid": "20261125003808100453", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root",
               "_stamp": "2026-11-25T00:38:08.317542", "ts": 1795653488}))
}

#[tokio::test]
async fn rows_are_salts_byte_for_byte() {
    let Some(db) = db(Tables::SaltUtf8).await else { return };
    let store = MySql::open_with(db.config());
    store.returner(&minion_ret()).await.unwrap();
    // The master's shape for the same (jid, id) is a second row, as in Salt; a retried batch
    // with both adds nothing.
    assert_eq!(store.returner_batch(&[master_ret(), minion_ret()]).await.unwrap(), []);
    assert_eq!(store.returner_batch(&[master_ret(), minion_ret()]).await.unwrap(), []);
    let mut failed = minion_ret();
    failed.insert("jid".into(), json!("20261125003809218649"));
    failed.insert("success".into(), json!(false));
    failed.insert("return".into(), json!(3));
    store.returner(&failed).await.unwrap();
    let got = rows(&db, "SELECT fun, jid, `return`, id, success, full_ret FROM salt_returns ORDER BY jid, full_ret").await;
    assert_eq!(
        got,
        vec![
            vec![
                s("cmd.run"),
                s("20261125003808100453"),
                s(r#""bin\nboot\ndev""#),
                s("minion1"),
                s("1"),
                s(
                    r#"{"cmd": "_return", "id": "minion1", "success": true, "return": "bin\nboot\ndev", "retcode": 0, "jid": "20261125003808100453", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "_stamp": "2026-11-25T00:38:08.317542", "ts": 1795653488}"#
                )
            ],
            vec![
                s("cmd.run"),
                s("20261125003808100453"),
                s(r#""bin\nboot\ndev""#),
                s("minion1"),
                s("1"),
                s(
                    r#"{"success": true, "return": "bin\nboot\ndev", "retcode": 0, "jid": "20261125003808100453", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}"#
                )
            ],
            vec![
                s("cmd.run"),
                s("20261125003809218649"),
                s("3"),
                s("minion1"),
                s("0"),
                s(
                    r#"{"success": false, "return": 3, "retcode": 0, "jid": "20261125003809218649", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}"#
                )
            ],
        ]
    );
    // get_jid: the first stored row of the minion.
    assert_eq!(store.get_jid("20261125003808100453").await.unwrap()["minion1"], Value::Object(minion_ret()));

    // jids: the first load, as Salt's json.dumps wrote it.
    let jid = "20261125003916657727";
    let load = obj(json!({"cmd": "publish", "tgt": "*", "fun": "cmd.run", "arg": ["ls /"], "tgt_type": "glob", "ret": "",
                          "jid": jid, "kwargs": {"show_timeout": true, "show_jid": false, "delimiter": ":"}, "user": "root"}));
    store.save_load(jid, &load, None).await.unwrap();
    store.save_load(jid, &master_ret(), None).await.unwrap();
    assert_eq!(
        rows(&db, "SELECT jid, `load` FROM jids").await,
        vec![vec![
            s(jid),
            s(
                r#"{"cmd": "publish", "tgt": "*", "fun": "cmd.run", "arg": ["ls /"], "tgt_type": "glob", "ret": "", "jid": "20261125003916657727", "kwargs": {"show_timeout": true, "show_jid": false, "delimiter": ":"}, "user": "root"}"#
            )
        ]]
    );

    // salt_events: tag, json data, the master's id, in order.
    let events = [
        Event {
            tag: "salt/job/20261125003916657727/new".into(),
            data: json!({"jid": jid, "minions": ["minion1"], "_stamp": "2026-11-25T00:39:16.658404"}),
        },
        Event { tag: "salt/auth".into(), data: json!({"result": true, "act": "accept", "id": "minion1"}) },
    ];
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    assert_eq!(
        rows(&db, "SELECT tag, data, master_id FROM salt_events ORDER BY id").await,
        vec![
            vec![
                s("salt/job/20261125003916657727/new"),
                s(r#"{"jid": "20261125003916657727", "minions": ["minion1"], "_stamp": "2026-11-25T00:39:16.658404"}"#),
                s("test_master")
            ],
            vec![s("salt/auth"), s(r#"{"result": true, "act": "accept", "id": "minion1"}"#), s("test_master")],
        ]
    );
}

#[tokio::test]
async fn req_jobs_get_a_jid_and_a_load() {
    let Some(db) = db(Tables::Utf8mb4).await else { return };
    let store = MySql::open_with(db.config());
    let mut ret = minion_ret();
    ret.insert("jid".into(), json!("req"));
    store.returner(&ret).await.unwrap();
    let got = rows(&db, "SELECT r.jid, j.`load` = r.full_ret FROM salt_returns r JOIN jids j ON j.jid = r.jid").await;
    assert_eq!(got.len(), 1);
    assert!(salt_proto::jid::is_jid(got[0][0].as_deref().unwrap()));
    assert_eq!(got[0][1].as_deref(), Some("1"));
}

#[tokio::test]
async fn emoji_on_salts_utf8_tables_is_stored_and_valid_json() {
    let Some(db) = db(Tables::SaltUtf8).await else { return };
    let charset = rows(&db, "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'salt_returns' AND COLUMN_NAME = 'full_ret'").await;
    assert_eq!(charset[0][0].as_deref(), Some("utf8mb3"));
    let store = MySql::open_with(db.config());
    let mut ret = minion_ret();
    ret.insert("return".into(), json!("smile 😀"));
    ret.insert("fun_args".into(), json!(["smile 😀"]));
    store.returner(&ret).await.unwrap();
    store.returner(&ret).await.unwrap();
    store.save_load("20261125003808100453", &obj(json!({"fun": "test.echo", "arg": ["smile 😀"], "tgt": "*"})), None).await.unwrap();
    assert_eq!(
        store.event_return(&[Event { tag: "salt/job/x/ret/minion1".into(), data: json!({"return": "smile 😀"}) }]).await.unwrap(),
        []
    );
    let got = rows(&db, "SELECT `return`, full_ret FROM salt_returns").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0][0].as_deref(), Some(r#""smile \ud83d\ude00""#));
    let full: Value = serde_json::from_str(got[0][1].as_deref().unwrap()).unwrap();
    assert_eq!(full, Value::Object(ret.clone()));
    assert_eq!(store.get_jid("20261125003808100453").await.unwrap()["minion1"]["return"], "smile 😀");
    assert_eq!(store.get_load("20261125003808100453").await.unwrap().unwrap()["arg"], json!(["smile 😀"]));
    let data = rows(&db, "SELECT data FROM salt_events").await;
    assert_eq!(data[0][0].as_deref(), Some(r#"{"return": "smile \ud83d\ude00"}"#));
}

#[tokio::test]
async fn emoji_on_utf8mb4_tables_is_stored_raw() {
    let Some(db) = db(Tables::Utf8mb4).await else { return };
    let store = MySql::open_with(db.config());
    let mut ret = minion_ret();
    ret.insert("return".into(), json!("smile 😀"));
    store.returner(&ret).await.unwrap();
    assert_eq!(rows(&db, "SELECT `return` FROM salt_returns").await[0][0].as_deref(), Some("\"smile 😀\""));
    assert_eq!(store.get_jid("20261125003808100453").await.unwrap()["minion1"]["return"], "smile 😀");
}

#[tokio::test]
async fn sql_metacharacters_and_a_10_mb_return() {
    let Some(db) = db(Tables::SaltUtf8).await else { return };
    let store = MySql::open_with(db.config());
    let nasty = "x'); DROP TABLE salt_returns; -- \" ` \\ %_ \\' \u{0}";
    let jid = "20261125003808100453";
    let big = "y".repeat(10 * 1024 * 1024);
    store
        .returner_batch(&[
            obj(json!({"id": "m1", "jid": jid, "fun": "test.echo'--", "fun_args": [nasty], "return": nasty, "success": "x'); --"})),
            obj(json!({"id": "m2", "jid": jid, "fun": "test.echo", "return": big, "success": true})),
        ])
        .await
        .unwrap();
    let got = store.get_jid(jid).await.unwrap();
    assert_eq!(got["m1"]["return"], nasty);
    assert_eq!(got["m1"]["fun"], "test.echo'--");
    assert_eq!(got["m2"]["return"].as_str().map(str::len), Some(big.len()));
    assert_eq!(rows(&db, "SELECT success FROM salt_returns WHERE id = 'm1'").await, vec![vec![s("x'); --")]]);
    assert_eq!(store.get_fun("test.echo'--").await.unwrap()["m1"]["fun_args"], json!([nasty]));
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM salt_returns").await[0][0].as_deref(), Some("2"));
}

#[tokio::test]
async fn wrong_password_is_one_clear_error_without_the_password() {
    let Some(db) = db(Tables::SaltUtf8).await else { return };
    let mut config = db.config();
    config.user = "saltrs_nobody".into();
    config.password = salt_returners::secret::Secret::new("Sup3rSecretPw");
    let store = MySql::open_with(config);
    let started = std::time::Instant::now();
    let err = store.returner(&minion_ret()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
    assert!(!text.contains("Sup3rSecretPw"), "{text}");
    assert!(text.contains("could not log in to MySQL") && text.contains("saltrs_nobody"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5), "no retry loop inside the store");
    let err = store.check().await.unwrap_err().to_string();
    assert!(!err.contains("Sup3rSecretPw") && err.contains("could not log in"), "{err}");
}

#[tokio::test]
async fn missing_tables_are_named_and_the_schema_command_creates_them() {
    let Some(db) = db(Tables::None).await else { return };
    let store = MySql::open_with(db.config());
    let err = store.returner(&minion_ret()).await.unwrap_err().to_string();
    assert!(err.contains("tables jids, salt_returns, salt_events missing") && err.contains(&db.name) && err.contains("schema"), "{err}");
    let err = store.check().await.unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    // The check result is not cached while it fails.
    store.create_schema().await.unwrap();
    store.create_schema().await.unwrap();
    store.check().await.unwrap();
    let charsets = rows(&db, "SELECT DISTINCT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND CHARACTER_SET_NAME IS NOT NULL").await;
    assert_eq!(charsets, vec![vec![s("utf8mb4")]]);
    store.returner(&minion_ret()).await.unwrap();
}

#[tokio::test]
async fn purge_archives_and_keeps_what_is_not_old() {
    let Some(db) = db(Tables::SaltUtf8).await else { return };
    let mut config = db.config();
    config.archive_jobs = true;
    let store = MySql::open_with(config);
    let old = "20200101000000000001";
    let old_no_returns = "20200101000000000002";
    for jid in [old, old_no_returns] {
        store.save_load(jid, &obj(json!({"fun": "test.ping", "jid": jid})), None).await.unwrap();
    }
    let mut ret = minion_ret();
    ret.insert("jid".into(), json!(old));
    store.returner(&ret).await.unwrap();
    assert_eq!(store.event_return(&[Event { tag: "salt/auth".into(), data: json!({}) }]).await.unwrap(), []);
    // Two seconds older, behind the store's back.
    for table in ["salt_returns", "salt_events"] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("UPDATE `{table}` SET `alter_time` = `alter_time` - INTERVAL 2 SECOND")))
            .execute(&db.pool)
            .await
            .unwrap();
    }
    // A job just published, nobody answered yet: not old.
    let fresh_no_returns = salt_proto::jid::jid_at(chrono::Utc::now());
    store.save_load(&fresh_no_returns, &obj(json!({"fun": "test.ping"})), None).await.unwrap();
    assert_eq!(store.clean_old_jobs(Duration::from_secs(1)).await.unwrap(), 2);
    assert_eq!(rows(&db, "SELECT jid FROM jids").await, vec![vec![Some(fresh_no_returns.clone())]]);
    assert_eq!(rows(&db, "SELECT jid FROM jids_archive ORDER BY jid").await, vec![vec![s(old)], vec![s(old_no_returns)]]);
    assert_eq!(rows(&db, "SELECT jid, full_ret FROM salt_returns_archive").await.len(), 1);
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM salt_returns").await[0][0].as_deref(), Some("0"));
    assert_eq!(rows(&db, "SELECT tag FROM salt_events_archive").await, vec![vec![s("salt/auth")]]);
    assert_eq!(rows(&db, "SELECT COUNT(*) FROM salt_events").await[0][0].as_deref(), Some("0"));
}

#[tokio::test]
async fn return_kwargs_pick_another_database_through_the_registry() {
    let Some(first) = db(Tables::SaltUtf8).await else { return };
    let Some(other) = db(Tables::SaltUtf8).await else { return };
    let c = first.config();
    let opts = obj(json!({"mysql.host": c.host, "mysql.port": c.port, "mysql.user": c.user, "mysql.pass": c.password.expose(),
                          "mysql.db": first.name, "alternative.mysql.db": other.name}));
    // An empty mysql.pass means Salt's default "salt"; --return_kwargs may still set it empty.
    let ret = obj(json!({"ret_config": "alternative", "ret_kwargs": {"pass": c.password.expose()}}));
    let store = salt_returners::open_sink("mysql", &Lookup::new(&opts).with_ret(&ret)).await.unwrap();
    store.returner(&minion_ret()).await.unwrap();
    assert_eq!(rows(&other, "SELECT COUNT(*) FROM salt_returns").await[0][0].as_deref(), Some("1"));
    assert_eq!(rows(&first, "SELECT COUNT(*) FROM salt_returns").await[0][0].as_deref(), Some("0"));
    let kw = obj(json!({"ret_kwargs": {"db": first.name, "pass": c.password.expose()}}));
    let store = salt_returners::open_sink("mysql", &Lookup::new(&opts).with_ret(&kw)).await.unwrap();
    store.returner(&minion_ret()).await.unwrap();
    assert_eq!(rows(&first, "SELECT COUNT(*) FROM salt_returns").await[0][0].as_deref(), Some("1"));
}
