//! `pgjsonb` and `postgres` against a real PostgreSQL (`SALTRS_TEST_POSTGRES`): the rows Salt
//! writes, big and awkward data, errors, purge and archive. The job-cache calls themselves are
//! in the conformance suite (`conformance_pgjsonb.rs`, `conformance_postgres.rs`).

mod pg_db;

use std::sync::Arc;
use std::time::Duration;

use pg_db::TestDb;
use salt_returners::options::Lookup;
use salt_returners::{Event, JobCache, Load, ReturnerError, Sink};
use serde_json::{json, Map, Value};
use sqlx::Row;

const STORES: [&str; 2] = ["pgjsonb", "postgres"];

/// An empty database with `store`'s schema, and the store on it (opened by name, as the
/// master opens it).
async fn fresh(store: &str) -> Option<(TestDb, Arc<dyn JobCache>)> {
    // None: no server, and the skip is reported.
    let db = TestDb::create().await?;
    let opts = db.opts(store);
    create_schema(store, &opts).await;
    let opened = salt_returners::open_job_cache(store, &opts).await.unwrap();
    Some((db, opened))
}

async fn create_schema(store: &str, opts: &Map<String, Value>) -> Vec<&'static str> {
    let created = salt_returners::open_job_cache(store, opts).await.unwrap().create_schema().await.unwrap();
    // Names as the schema declares them.
    let tables = salt_returners::entry(store).unwrap().schema.unwrap().tables;
    tables.iter().copied().filter(|t| created.iter().any(|c| c == t)).collect()
}

fn obj(text: &str) -> Load {
    serde_json::from_str(text).unwrap()
}

// Rows real Salt wrote (reference/real-salt-transcript.md, phase B).
const PUBLISH: &str = r#"{"cmd": "publish", "tgt": "*", "fun": "cmd.run", "arg": ["ls /"], "tgt_type": "glob", "ret": "", "jid": "20261125003916657727", "kwargs": {"show_timeout": true, "show_jid": false, "delimiter": ":"}, "user": "root"}"#;
const MASTER_RET: &str = r#"{"cmd": "_return", "id": "minion1", "success": true, "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar", "retcode": 0, "jid": "20261125003916657727", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "_stamp": "2026-11-25T00:39:16.909909+00:00", "ts": 1795567156}"#;
const MINION_RET: &str = r#"{"success": true, "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar", "retcode": 0, "jid": "20261125003916657727", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": "minion1"}"#;
const RETURN_TEXT: &str =
    r#""bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar""#;
const FAILED_RET: &str = r#"{"cmd": "_return", "id": "minion1", "success": false, "return": 3, "retcode": 3, "jid": "20261125003918974898", "fun": "cmd.retcode", "fun_args": ["exit 3"], "user": "root", "_stamp": "2026-11-25T00:39:19.260416+00:00", "ts": 1795567159}"#;
const NEW_EVENT: &str = r#"{"jid": "20261125003916657727", "tgt_type": "glob", "tgt": "*", "user": "root", "fun": "cmd.run", "arg": ["ls /"], "minions": ["minion1"], "missing": [], "_stamp": "2026-11-25T00:39:16.663858+00:00"}"#;

/// Whether the JSON `column` of the row holds `text`: byte for byte in `postgres`'s text
/// columns, as the same `jsonb` value in pgjsonb's.
async fn same_json(db: &TestDb, store: &str, stored: &str, text: &str) {
    if store == "postgres" {
        assert_eq!(stored, text);
    } else {
        let equal: bool = sqlx::query_scalar("SELECT $1::jsonb = $2::jsonb").bind(stored).bind(text).fetch_one(&db.pool).await.unwrap();
        assert!(equal, "{stored}\n  vs\n{text}");
    }
}

#[tokio::test]
async fn rows_are_the_ones_salt_writes() {
    for store in STORES {
        let Some((db, s)) = fresh(store).await else {
            return;
        };
        let jid = "20261125003916657727";
        // The master: save_load at publish, then save_load + returner on every return.
        s.save_load(jid, &obj(PUBLISH), None).await.unwrap();
        s.save_load(jid, &obj(MASTER_RET), None).await.unwrap();
        s.returner(&obj(MASTER_RET)).await.unwrap();
        // `--return <store>` as well: the minion's row, a second shape for the same (jid, id).
        s.returner(&obj(MINION_RET)).await.unwrap();
        // A retry of either stores nothing new.
        assert_eq!(s.returner_batch(&[obj(MASTER_RET), obj(MINION_RET)]).await.unwrap(), []);
        s.returner(&obj(FAILED_RET)).await.unwrap();

        let load: String = sqlx::query_scalar("SELECT load::text FROM jids").fetch_one(&db.pool).await.unwrap();
        same_json(&db, store, &load, PUBLISH).await;
        let rows = sqlx::query("SELECT fun, jid, return::text, id, success, full_ret::text FROM salt_returns ORDER BY alter_time")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        assert_eq!(rows.len(), 3, "{store}");
        let want = [
            ("cmd.run", jid, RETURN_TEXT, "true", MASTER_RET),
            ("cmd.run", jid, RETURN_TEXT, "true", MINION_RET),
            ("cmd.retcode", "20261125003918974898", "3", "false", FAILED_RET),
        ];
        for (row, (fun, jid, ret, success, full)) in rows.iter().zip(want) {
            assert_eq!(row.get::<String, _>(0), fun);
            assert_eq!(row.get::<String, _>(1), jid);
            same_json(&db, store, &row.get::<String, _>(2), ret).await;
            assert_eq!(row.get::<String, _>(3), "minion1");
            // psycopg2 sends Python's bool as `true`/`false` into the varchar(10).
            assert_eq!(row.get::<String, _>(4), success);
            same_json(&db, store, &row.get::<String, _>(5), full).await;
        }
        // The job cache reads: the first stored row for the minion, the first load.
        let got = s.get_jid(jid).await.unwrap();
        assert_eq!(Value::Object(got), json!({"minion1": obj(MASTER_RET)}));
        assert_eq!(s.get_load(jid).await.unwrap(), Some(obj(PUBLISH)));
        if store == "postgres" {
            // Text columns keep Salt's key order too.
            let got = s.get_jid(jid).await.unwrap();
            assert_eq!(salt_output::json_dumps(&got["minion1"], None, false), MASTER_RET);
        }
    }
}

#[tokio::test]
async fn events_keep_order_master_id_and_salts_text() {
    for store in STORES {
        let Some((db, s)) = fresh(store).await else {
            return;
        };
        let events: Vec<Event> = (0..3)
            .map(|i| Event { tag: format!("salt/job/20261125003916657727/new/{i}"), data: serde_json::from_str(NEW_EVENT).unwrap() })
            .chain([Event { tag: "salt/auth".into(), data: json!({"result": true, "act": "accept", "id": "minion1"}) }])
            .collect();
        assert_eq!(s.event_return(&events).await.unwrap(), []);
        assert_eq!(s.event_return(&[]).await.unwrap(), []);
        let rows = sqlx::query("SELECT id, tag, data::text, master_id, alter_time IS NOT NULL FROM salt_events ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
        let tags: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
        assert_eq!(tags, events.iter().map(|e| e.tag.clone()).collect::<Vec<_>>(), "{store}: ids follow the batch order");
        same_json(&db, store, &rows[0].get::<String, _>(2), NEW_EVENT).await;
        assert!(rows.iter().all(|r| r.get::<String, _>(3) == "test_master" && r.get::<bool, _>(4)));
        // A tag longer than the column: that event refused, the others stored.
        let long = Event { tag: "t".repeat(256), data: json!({}) };
        let rejected = s.event_return(&[long, Event { tag: "ok".into(), data: json!({}) }]).await.unwrap();
        assert_eq!(rejected.len(), 1, "{rejected:?}");
        assert!(rejected[0].index == 0 && rejected[0].reason.contains("longer than 255"), "{rejected:?}");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM salt_events WHERE tag = 'ok'").fetch_one(&db.pool).await.unwrap();
        assert_eq!(n, 1);
    }
}

#[tokio::test]
async fn big_awkward_and_quoted_data_round_trip() {
    for store in STORES {
        let Some((db, s)) = fresh(store).await else {
            return;
        };
        let jid = "20240510093015123456";
        let nasty = "'; DROP TABLE salt_returns; -- \" \\ %_ $1 😀 日本語 \n\t";
        let fun = "test.echo';--\"";
        let big = "x".repeat(10 * 1024 * 1024);
        let rets: Vec<Load> = vec![
            json!({"id": "m1", "jid": jid, "fun": fun, "fun_args": [nasty], "return": {nasty: [nasty, 1.5, -7, null]}, "success": true}),
            json!({"id": "big", "jid": jid, "fun": fun, "fun_args": [], "return": big, "success": true}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        assert_eq!(s.returner_batch(&rets).await.unwrap(), []);
        let load = json!({"fun": fun, "arg": [nasty], "tgt": nasty, "user": nasty}).as_object().unwrap().clone();
        s.save_load(jid, &load, None).await.unwrap();

        let got = s.get_jid(jid).await.unwrap();
        assert_eq!(got["m1"], Value::Object(rets[0].clone()), "{store}");
        assert_eq!(got["big"]["return"].as_str().map(str::len), Some(big.len()));
        assert_eq!(s.get_fun(fun).await.unwrap().keys().collect::<Vec<_>>(), ["big", "m1"]);
        assert_eq!(s.get_load(jid).await.unwrap(), Some(load));
        let listed = s.get_jids(&salt_returners::JobQuery { targets: vec![nasty.into()], ..Default::default() }).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user, nasty);
        // The emoji is stored as itself (Salt's json.dumps has ensure_ascii=False).
        let ret: String = sqlx::query_scalar("SELECT return::text FROM salt_returns WHERE id = 'm1'").fetch_one(&db.pool).await.unwrap();
        assert!(ret.contains('😀') && !ret.contains("\\ud83d"), "{ret}");
    }
}

#[tokio::test]
async fn nul_characters_postgres_keeps_them_pgjsonb_refuses_only_that_return() {
    for store in STORES {
        let Some((_db, s)) = fresh(store).await else {
            return;
        };
        let jid = "20240510093015123456";
        let with_nul = json!({"id": "nul", "jid": jid, "fun": "test.echo", "return": "a\u{0}b"}).as_object().unwrap().clone();
        let good = json!({"id": "good", "jid": jid, "fun": "test.echo", "return": "fine"}).as_object().unwrap().clone();
        let result = s.returner_batch(&[with_nul, good]).await;
        let got = s.get_jid(jid).await.unwrap();
        if store == "postgres" {
            assert!(result.unwrap().is_empty());
            assert_eq!(got["nul"]["return"], "a\u{0}b");
        } else {
            // jsonb cannot hold U+0000 (Salt's pgjsonb fails the same way).
            let rejected = result.unwrap();
            assert!(rejected.len() == 1 && rejected[0].index == 0 && rejected[0].reason.contains("return of nul"), "{rejected:?}");
            assert_eq!(got.keys().collect::<Vec<_>>(), ["good"]);
        }
    }
}

#[tokio::test]
async fn concurrent_retries_store_one_row() {
    for store in STORES {
        let Some((db, s)) = fresh(store).await else {
            return;
        };
        let ret = obj(MASTER_RET);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (s, ret) = (s.clone(), ret.clone());
                tokio::spawn(async move { s.returner_batch(&[ret.clone(), ret]).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM salt_returns").fetch_one(&db.pool).await.unwrap();
        assert_eq!(n, 1, "{store}");
    }
}

#[tokio::test]
async fn req_jobs_get_a_jid_and_a_load() {
    for store in STORES {
        let Some((_db, s)) = fresh(store).await else {
            return;
        };
        s.returner(&obj(r#"{"id": "m1", "jid": "req", "fun": "test.ping", "return": true}"#)).await.unwrap();
        let got = s.get_fun("test.ping").await.unwrap();
        let jid = got["m1"]["jid"].as_str().unwrap().to_string();
        assert!(salt_proto::jid::is_jid(&jid), "{jid}");
        assert_eq!(s.get_load(&jid).await.unwrap().unwrap()["fun"], "test.ping");
        // nocache jobs are not stored: a minion seen only there is not known afterwards.
        s.returner(&obj(r#"{"id": "m-nocache", "jid": "nocache", "fun": "test.ping", "return": true}"#)).await.unwrap();
        assert_eq!(s.get_minions().await.unwrap(), ["m1"]);
        assert!(!s.get_fun("test.ping").await.unwrap().contains_key("m-nocache"));
    }
}

/// Sets a row's age behind the store's back.
async fn age(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(&db.pool).await.unwrap();
}

async fn purge_fixture(db: &TestDb, s: &dyn JobCache) -> [String; 5] {
    let old = |n: u32| format!("202405100930151234{n:02}");
    let now = salt_proto::jid::jid_at(chrono::Utc::now());
    let (done, running, unanswered, fresh, orphan) = (old(1), old(2), old(3), now, old(5));
    let ret = |jid: &str, v: i64| json!({"id": "m1", "jid": jid, "fun": "test.echo", "return": v}).as_object().unwrap().clone();
    for jid in [&done, &running, &unanswered, &fresh] {
        s.save_load(jid, &json!({"fun": "test.echo", "jid": jid}).as_object().unwrap().clone(), None).await.unwrap();
    }
    assert_eq!(s.returner_batch(&[ret(&done, 1), ret(&running, 1), ret(&orphan, 1)]).await.unwrap(), []);
    age(db, "UPDATE salt_returns SET alter_time = now() - interval '2 days'").await;
    // The long-running job answers again now.
    s.returner(&ret(&running, 2)).await.unwrap();
    assert_eq!(
        s.event_return(&[Event { tag: "old".into(), data: json!({}) }, Event { tag: "new".into(), data: json!({}) }]).await.unwrap(),
        []
    );
    age(db, "UPDATE salt_events SET alter_time = now() - interval '2 days' WHERE tag = 'old'").await;
    [done, running, unanswered, fresh, orphan]
}

async fn strings(db: &TestDb, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string())).fetch_all(&db.pool).await.unwrap()
}

#[tokio::test]
async fn purge_keeps_jobs_with_fresh_returns_and_drops_unanswered_ones() {
    for store in STORES {
        let Some((db, s)) = fresh(store).await else {
            return;
        };
        let [done, running, unanswered, fresh, orphan] = purge_fixture(&db, &*s).await;
        assert_eq!(s.clean_old_jobs(Duration::ZERO).await.unwrap(), 0, "0 keeps forever");
        assert_eq!(s.clean_old_jobs(Duration::from_secs(86400)).await.unwrap(), 3, "{store}");
        assert_eq!(strings(&db, "SELECT jid FROM jids ORDER BY jid").await, [running.clone(), fresh.clone()]);
        assert_eq!(strings(&db, "SELECT jid FROM salt_returns ORDER BY alter_time").await, [running.clone(), running.clone()]);
        assert_eq!(strings(&db, "SELECT tag FROM salt_events").await, ["new"]);
        for gone in [&done, &unanswered, &orphan] {
            assert_eq!(s.get_load(gone).await.unwrap(), None);
            assert!(s.get_jid(gone).await.unwrap().is_empty());
        }
        assert_eq!(s.clean_old_jobs(Duration::from_secs(86400)).await.unwrap(), 0);
        // No archive tables unless asked.
        assert!(strings(&db, "SELECT tablename::text FROM pg_tables WHERE tablename LIKE '%archive'").await.is_empty());
    }
}

#[tokio::test]
async fn archive_jobs_copies_what_it_purges() {
    for store in STORES {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let mut opts = db.opts(store);
        opts.insert("archive_jobs".into(), true.into());
        create_schema(store, &opts).await;
        let s = salt_returners::open_job_cache(store, &opts).await.unwrap();
        let [done, running, unanswered, _fresh, orphan] = purge_fixture(&db, &*s).await;
        let want_returns: Vec<String> =
            strings(&db, &format!("SELECT full_ret::text FROM salt_returns WHERE jid IN ('{done}', '{orphan}') ORDER BY jid")).await;
        assert_eq!(s.clean_old_jobs(Duration::from_secs(86400)).await.unwrap(), 3);
        assert_eq!(strings(&db, "SELECT jid FROM jids_archive ORDER BY jid").await, [done.clone(), unanswered.clone()]);
        assert_eq!(strings(&db, "SELECT full_ret::text FROM salt_returns_archive ORDER BY jid").await, want_returns);
        assert_eq!(strings(&db, "SELECT tag FROM salt_events_archive").await, ["old"]);
        assert_eq!(strings(&db, "SELECT jid FROM salt_returns").await, [running.clone(), running.clone()]);
        // Salt's archive tables: `LIKE` the originals (same columns).
        let cols = "SELECT string_agg(column_name::text || ' ' || data_type::text, ', ' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = ";
        assert_eq!(strings(&db, &format!("{cols}'salt_returns'")).await, strings(&db, &format!("{cols}'salt_returns_archive'")).await);
        // A second purge appends to the same tables.
        assert_eq!(s.clean_old_jobs(Duration::from_secs(86400)).await.unwrap(), 0);
    }
}

#[tokio::test]
async fn missing_tables_and_schema_creation() {
    for store in STORES {
        let Some(db) = TestDb::create().await else {
            return;
        };
        let opts = db.opts(store);
        let s = salt_returners::open_job_cache(store, &opts).await.unwrap();
        let err = s.returner(&obj(MASTER_RET)).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
        assert!(text.contains("relation \"salt_returns\" does not exist"), "{text}");
        assert!(text.contains(&format!("create Salt's {store} schema first")), "{text}");
        assert!(text.contains(&db.name), "{text}");

        let check = match store {
            "pgjsonb" => salt_returners::pgjsonb::open(&Lookup::new(&opts)).unwrap().check().await,
            _ => salt_returners::postgres::open(&Lookup::new(&opts)).unwrap().check().await,
        };
        assert!(check.unwrap_err().to_string().contains("tables jids, salt_returns, salt_events missing"));

        assert_eq!(create_schema(store, &opts).await, ["jids", "salt_returns", "salt_events"]);
        s.returner(&obj(MASTER_RET)).await.unwrap();
        assert!(create_schema(store, &opts).await.is_empty(), "already there");
        // Only what is missing is created; the rest keeps its rows.
        age(&db, "DROP TABLE salt_events").await;
        assert_eq!(create_schema(store, &opts).await, ["salt_events"]);
        assert_eq!(s.get_jid("20261125003916657727").await.unwrap().len(), 1);
        // The tables are Salt's.
        let types = strings(
            &db,
            "SELECT data_type::text FROM information_schema.columns WHERE table_name = 'salt_returns' AND column_name = 'full_ret'",
        )
        .await;
        assert_eq!(types, [if store == "pgjsonb" { "jsonb" } else { "text" }]);
    }
}

/// A PostgreSQL look-alike that asks for a cleartext password and refuses it, echoing it back
/// in its message as a careless server (or proxy) might. Returns its port.
async fn refusing_server(echo_password: bool) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                // SSLRequest (answered "no") and then the startup message: length-prefixed.
                loop {
                    let len = sock.read_i32().await.unwrap() as usize;
                    let mut body = vec![0u8; len - 4];
                    sock.read_exact(&mut body).await.unwrap();
                    if body[..4] == 80877103i32.to_be_bytes() {
                        sock.write_all(b"N").await.unwrap();
                        continue;
                    }
                    break;
                }
                sock.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.unwrap();
                let _tag = sock.read_u8().await.unwrap();
                let len = sock.read_i32().await.unwrap() as usize;
                let mut password = vec![0u8; len - 4];
                sock.read_exact(&mut password).await.unwrap();
                let password = String::from_utf8_lossy(&password[..password.len() - 1]).to_string();
                let message = if echo_password {
                    format!("password authentication failed for user \"salt\" (got {password})")
                } else {
                    "password authentication failed for user \"salt\"".to_string()
                };
                let mut fields = Vec::new();
                for (t, v) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', "28P01"), (b'M', message.as_str())] {
                    fields.push(t);
                    fields.extend_from_slice(v.as_bytes());
                    fields.push(0);
                }
                fields.push(0);
                let mut msg = vec![b'E'];
                msg.extend_from_slice(&((fields.len() + 4) as i32).to_be_bytes());
                msg.extend_from_slice(&fields);
                let _ = sock.write_all(&msg).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn wrong_password_is_one_clear_error_without_the_password() {
    for echo in [false, true] {
        let port = refusing_server(echo).await;
        for (store, pass_key) in [("pgjsonb", "pass"), ("postgres", "passwd")] {
            let opts = json!({
                format!("returner.{store}.host"): "127.0.0.1",
                format!("returner.{store}.port"): port,
                format!("returner.{store}.{pass_key}"): "hunter2-very-secret",
            });
            let s = salt_returners::open_job_cache(store, opts.as_object().unwrap()).await.unwrap();
            let started = std::time::Instant::now();
            let err = s.returner(&obj(MASTER_RET)).await.unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.starts_with(&format!(
                    "{store}: could not log in to PostgreSQL at 127.0.0.1:{port} as user \"salt\": password authentication failed"
                )),
                "{text}"
            );
            // Refused at once, not retried until a timeout.
            assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        }
    }
}

#[tokio::test]
async fn unreachable_server_and_unknown_database_say_what_failed() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = json!({"returner.pgjsonb.host": "127.0.0.1", "returner.pgjsonb.port": port, "returner.pgjsonb.connect_timeout": 1});
    let s = salt_returners::open_job_cache("pgjsonb", opts.as_object().unwrap()).await.unwrap();
    let err = s.get_minions().await.unwrap_err();
    assert_eq!(err.to_string(), format!("pgjsonb: could not connect to PostgreSQL at 127.0.0.1:{port} within 1 s"));

    let Some(db) = TestDb::create().await else {
        return;
    };
    let mut opts = db.opts("postgres");
    opts.insert("returner.postgres.db".into(), "no_such_db_here".into());
    let s = salt_returners::open_job_cache("postgres", &opts).await.unwrap();
    let text = s.get_minions().await.unwrap_err().to_string();
    assert!(
        text.starts_with("postgres: could not connect to PostgreSQL at") && text.contains("\"no_such_db_here\" does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn registered_by_salts_names() {
    let names = salt_returners::builtin_names();
    assert!(names.contains(&"pgjsonb") && names.contains(&"postgres"), "{names:?}");
    // Opening makes no connection: a master starts while its database is down.
    let opts = json!({"returner.postgres.host": "db.invalid"});
    let s = salt_returners::open_job_cache("postgres", opts.as_object().unwrap()).await.unwrap();
    assert_eq!(s.name(), "postgres");
    assert_eq!(salt_returners::missing_for(s.as_ref(), salt_returners::MASTER_JOB_CACHE), None);
    assert!(s.supports(salt_returners::Capability::EventReturn) && !s.supports(salt_returners::Capability::UpdateEndtime));
}
