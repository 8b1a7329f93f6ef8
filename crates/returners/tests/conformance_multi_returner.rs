//! `multi_returner` over two real stores, MariaDB (`mysql`) and Redis (`redis`): the
//! conformance suites through the combined store, then what is particular to it: opened from
//! the config, one jid for all, reads while a part is down.

#[macro_use]
mod suite;
mod mysql_db;

use std::sync::Arc;
use std::time::Duration;

use salt_returners::multi_returner::Multi;
use salt_returners::mysql::MySql;
use salt_returners::redis::encode::{JID_ACTIVITY, MINION_ACTIVITY};
use salt_returners::{Capability, JobCache, Load, Store};
use saltrs_testkit::Server;
use serde_json::{json, Value};
use suite::{Ager, Backend, Traits};

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

async fn redis_server() -> Option<Server> {
    tokio::task::spawn_blocking(Server::redis).await.unwrap()
}

async fn redis_at(server: &Server) -> Arc<dyn JobCache> {
    salt_returners::open_job_cache("redis", &obj(json!({"redis.host": "127.0.0.1", "redis.port": server.port()}))).await.unwrap()
}

/// The two stores' traits combined: mysql's full returns, events and purge; redis' `Minions`.
const MULTI: Traits = Traits { keeps_minions: true, ..Traits::SQL };

async fn mysql_and_redis() -> Option<Backend> {
    let db = mysql_db::TestDb::create(mysql_db::Tables::SaltUtf8).await?;
    let server = redis_server().await?;
    let mysql: Arc<dyn JobCache> = Arc::new(MySql::open_with(db.config()));
    let multi = Multi::new(vec![Store::JobCache(mysql), Store::JobCache(redis_at(&server).await)]);
    let (pool, redis_url) = (db.pool.clone(), server.url());
    // Older in both stores at once, as each one's purge sees it.
    let age: Ager = Box::new(move |secs| {
        let (pool, redis_url) = (pool.clone(), redis_url.clone());
        Box::pin(async move {
            for table in ["salt_returns", "salt_events"] {
                let sql = format!("UPDATE `{table}` SET `alter_time` = `alter_time` - INTERVAL ? SECOND");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(secs).execute(&pool).await.unwrap();
            }
            let mut c = redis::Client::open(redis_url).unwrap().get_multiplexed_async_connection().await.unwrap();
            for key in [JID_ACTIVITY, MINION_ACTIVITY] {
                let members: Vec<String> = redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).query_async(&mut c).await.unwrap();
                for m in members {
                    let _: f64 = redis::cmd("ZINCRBY").arg(key).arg(-(secs as f64)).arg(m).query_async(&mut c).await.unwrap();
                }
            }
        })
    });
    Some(Backend { store: Arc::new(multi), _guard: Box::new((db, server)), traits: MULTI, age: Some(age) })
}

conformance!(multi_returner, mysql_and_redis);

const JID: &str = "20240510093000000001";

fn ret(jid: &str, id: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": "test.ping", "fun_args": [], "id": id}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opened_from_the_config_it_writes_to_every_store_with_one_jid() {
    let Some(server) = redis_server().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("salt.sqlite");
    let opts = obj(json!({
        "multi_returner": ["sqlite3", "redis"],
        "sqlite3.database": db.display().to_string(), "sqlite3.timeout": 5.0,
        "redis.host": "127.0.0.1", "redis.port": server.port(),
    }));
    let multi = salt_returners::open_job_cache("multi_returner", &opts).await.unwrap();
    multi.create_schema().await.unwrap();
    assert_eq!(multi.name(), "multi_returner");
    // What its parts have: sqlite3 and redis both keep jobs; only redis purges; neither has events.
    assert!(multi.supports(Capability::GetJids) && multi.supports(Capability::CleanOldJobs));
    assert!(!multi.supports(Capability::EventReturn));
    assert_eq!(multi.parts().len(), 2);

    let jid = multi.prep_jid(false, None).await.unwrap();
    assert_eq!(jid.len(), 20, "{jid}");
    assert_eq!(multi.prep_jid(false, Some(&jid)).await.unwrap(), jid, "a passed jid is everyone's");
    multi.save_load(&jid, &obj(json!({"fun": "test.ping", "tgt": "*", "jid": jid})), Some(&["m1".to_string()])).await.unwrap();
    multi.returner(&ret(&jid, "m1", json!(true))).await.unwrap();
    for part in multi.parts() {
        let cache = part.clone().job_cache().unwrap();
        assert!(cache.get_load(&jid).await.unwrap().is_some(), "{} has the load", cache.name());
        assert!(cache.get_jid(&jid).await.unwrap().contains_key("m1"), "{} has the return", cache.name());
    }
    assert_eq!(multi.get_jids(&Default::default()).await.unwrap().len(), 1, "listed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_part_down_writes_wait_and_reads_answer_from_the_others() {
    let Some(mut server) = redis_server().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let opts = obj(json!({
        "multi_returner": "sqlite3, redis",
        "sqlite3.database": dir.path().join("salt.sqlite").display().to_string(), "sqlite3.timeout": 5.0,
        "redis.host": "127.0.0.1", "redis.port": server.port(),
    }));
    let multi = salt_returners::open_job_cache("multi_returner", &opts).await.unwrap();
    multi.create_schema().await.unwrap();
    multi.returner(&ret(JID, "m1", json!(1))).await.unwrap();
    tokio::task::block_in_place(|| server.stop());
    let down = multi.returner(&ret(JID, "m2", json!(2))).await.unwrap_err();
    assert!(down.retry_later(), "a part down: try again later ({down})");
    let got = multi.get_jid(JID).await.unwrap();
    assert!(got.contains_key("m1") && got.contains_key("m2"), "sqlite3 answers for both: {got:?}");
    let check = multi.check().await.unwrap_err().to_string();
    assert!(check.contains("multi_returner (redis)"), "the check names the part: {check}");
    tokio::task::block_in_place(|| server.start()).unwrap();
    // The retry is idempotent: sqlite3 keeps one m2, redis gets it now.
    multi.returner(&ret(JID, "m2", json!(2))).await.unwrap();
    let redis = multi.parts()[1].clone().job_cache().unwrap();
    assert_eq!(redis.get_jid(JID).await.unwrap().len(), 2);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn a_bad_list_is_a_clear_error() {
    for (opts, words) in [
        (json!({}), "multi_returner: [mysql, redis]"),
        (json!({"multi_returner": ["nosuch"]}), "unknown returner 'nosuch'"),
        (json!({"multi_returner": ["multi_returner"]}), "cannot combine itself"),
    ] {
        let e = salt_returners::open("multi_returner", &salt_returners::options::Lookup::new(&obj(opts))).await.err().unwrap().to_string();
        assert!(e.contains(words), "{e}");
    }
}
