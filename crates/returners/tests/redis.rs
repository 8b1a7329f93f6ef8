//! The `redis` returner against real Redis servers started by `saltrs_testkit::Server`: the
//! conformance suites (sink and job cache), on a standalone server and on a three-node Redis
//! Cluster, then Salt's key layout, TTLs, options, a wrong password, a server that is down.

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionLike;
use salt_returners::options::Lookup;
use salt_returners::redis::encode::{JID_ACTIVITY, MINION_ACTIVITY};
use salt_returners::{JobCache, JobQuery, Load, ReturnerError};
use saltrs_testkit::{Kind, Server};
use serde_json::{json, Map, Value};
use suite::{Ager, Backend, Traits};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
}

const JID: &str = "20240510093000000001";

/// A server for this test (None: redis-server is not installed, and the skip is reported).
async fn server(extra: &'static [&'static str]) -> Option<Server> {
    tokio::task::spawn_blocking(move || Server::with_args(Kind::Redis, extra)).await.unwrap()
}

/// The store on `server`, opened by name through the registry with Salt's flat options.
async fn open(server: &Server, extra: Value) -> Arc<dyn JobCache> {
    let mut opts = obj(json!({"redis.host": "127.0.0.1", "redis.port": server.port()}));
    opts.extend(obj(extra));
    salt_returners::open_job_cache("redis", &opts).await.unwrap()
}

async fn raw(server: &Server) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn q<T: redis::FromRedisValue>(c: &mut impl ConnectionLike, cmd: &mut redis::Cmd) -> T {
    cmd.query_async(c).await.unwrap()
}

/// Makes every job and minion `secs` older, as the purge sees them.
fn ager<C: ConnectionLike + Clone + Send + Sync + 'static>(conn: C) -> Ager {
    Box::new(move |secs| {
        let mut c = conn.clone();
        Box::pin(async move {
            for key in [JID_ACTIVITY, MINION_ACTIVITY] {
                let members: Vec<String> = q(&mut c, redis::cmd("ZRANGE").arg(key).arg(0).arg(-1)).await;
                for m in members {
                    let _: f64 = q(&mut c, redis::cmd("ZINCRBY").arg(key).arg(-(secs as f64)).arg(m)).await;
                }
            }
        })
    })
}

async fn standalone() -> Option<Backend> {
    let server = server(&[]).await?;
    let store = open(&server, json!({})).await;
    let age = ager(raw(&server).await);
    Some(Backend { store, _guard: Box::new(server), traits: Traits::REDIS, age: Some(age) })
}

conformance!(redis_standalone, standalone);

/// Three Redis servers made one cluster (slots split three ways), and what stops them.
struct Cluster {
    nodes: Vec<Server>,
}

async fn cluster() -> Option<Cluster> {
    let (mut nodes, mut buses) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        // The cluster bus needs a port of its own (by default the port + 10000, maybe > 65535).
        let bus = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bus_arg: &'static str = Box::leak(bus.to_string().into_boxed_str());
        let args: &'static [&'static str] = Box::leak(vec!["--cluster-enabled", "yes", "--cluster-port", bus_arg].into_boxed_slice());
        nodes.push(server(args).await?);
        buses.push(bus);
    }
    let slots = [(0, 5460), (5461, 10922), (10923, 16383)];
    let mut conns = Vec::new();
    for (node, (lo, hi)) in nodes.iter().zip(slots) {
        let mut c = raw(node).await;
        let _: () = q(&mut c, redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(lo).arg(hi)).await;
        conns.push(c);
    }
    for (node, bus) in nodes.iter().zip(&buses).skip(1) {
        let _: () = q(&mut conns[0], redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(node.port()).arg(bus)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    for c in &mut conns {
        loop {
            let info: String = q(c, redis::cmd("CLUSTER").arg("INFO")).await;
            if info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the cluster did not form: {info}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Some(Cluster { nodes })
}

async fn on_cluster() -> Option<Backend> {
    let cluster = cluster().await?;
    let nodes: Vec<Value> = cluster.nodes.iter().map(|n| json!({"host": "127.0.0.1", "port": n.port()})).collect();
    let opts = obj(json!({"redis": {"cluster_mode": true, "cluster.startup_nodes": nodes, "cluster.skip_full_coverage_check": true}}));
    let store = salt_returners::open_job_cache("redis", &opts).await.unwrap();
    let urls: Vec<String> = cluster.nodes.iter().map(Server::url).collect();
    let conn = redis::cluster::ClusterClient::new(urls).unwrap().get_async_connection().await.unwrap();
    Some(Backend { store, _guard: Box::new(cluster), traits: Traits::REDIS, age: Some(ager(conn)) })
}

conformance!(redis_cluster, on_cluster);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_key_layout_and_ttls() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server, json!({"keep_jobs_seconds": 3600})).await;
    let mut c = raw(&server).await;
    let publish = obj(json!({"cmd": "publish", "tgt": "*", "fun": "test.ping", "arg": [], "tgt_type": "glob", "jid": JID, "user": "root"}));
    store.save_load(JID, &publish, Some(&["web1.example.com".to_string()])).await.unwrap();
    let r = ret(JID, "web1.example.com", "test.ping", json!(true));
    store.returner(&r).await.unwrap();

    // What Salt wrote: json.dumps of the whole return, the load, the latest jid, the minions.
    let stored: String = q(&mut c, redis::cmd("HGET").arg(format!("ret:{JID}")).arg("web1.example.com")).await;
    assert_eq!(
        stored,
        r#"{"success": true, "return": true, "retcode": 0, "jid": "20240510093000000001", "fun": "test.ping", "fun_args": [], "id": "web1.example.com"}"#
    );
    let load: String = q(&mut c, redis::cmd("GET").arg(format!("load:{JID}"))).await;
    assert_eq!(serde_json::from_str::<Value>(&load).unwrap(), Value::Object(publish.clone()));
    let latest: String = q(&mut c, redis::cmd("GET").arg("web1.example.com:test.ping")).await;
    assert_eq!(latest, JID);
    let minions: Vec<String> = q(&mut c, redis::cmd("SMEMBERS").arg("minions")).await;
    assert_eq!(minions, ["web1.example.com"]);
    for key in [format!("ret:{JID}"), format!("load:{JID}"), "web1.example.com:test.ping".to_string()] {
        let ttl: i64 = q(&mut c, redis::cmd("TTL").arg(&key)).await;
        assert!((3590..=3600).contains(&ttl), "{key}: TTL {ttl}");
    }
    // The index keys, so that an operator can find them.
    let listed: Vec<String> = q(&mut c, redis::cmd("ZRANGE").arg("jids").arg(0).arg(-1)).await;
    assert_eq!(listed, [JID]);

    // keep_jobs_seconds: 0 keeps for ever (no TTL), as Salt means it.
    let forever = open(&server, json!({"keep_jobs_seconds": 0})).await;
    let j2 = "20240510093000000002";
    forever.returner(&ret(j2, "m2", "test.ping", json!(1))).await.unwrap();
    let ttl: i64 = q(&mut c, redis::cmd("TTL").arg(format!("ret:{j2}"))).await;
    assert_eq!(ttl, -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_return_never_hides_a_newer_one() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server, json!({})).await;
    let (old, new) = ("20240510093000000001", "20240510093000000002");
    store.returner(&ret(new, "m1", "test.ping", json!("new"))).await.unwrap();
    store.returner(&ret(old, "m1", "test.ping", json!("old"))).await.unwrap();
    assert_eq!(store.get_fun("test.ping").await.unwrap()["m1"]["return"], "new");
    // Both jobs keep their own return.
    assert_eq!(store.get_jid(old).await.unwrap()["m1"]["return"], "old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_unix_socket_and_return_config() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("redis.sock").display().to_string();
    let args: &'static [&'static str] =
        Box::leak(vec!["--unixsocket", Box::leak(sock.clone().into_boxed_str()), "--unixsocketperm", "700"].into_boxed_slice());
    let Some(server) = server(args).await else { return };
    // The minion's config names another database behind --return_config; --return_kwargs picks the socket.
    let opts = obj(json!({"redis.host": "127.0.0.1", "redis.port": server.port(), "alternative.redis": {"db": "3"}}));
    let job = obj(json!({"ret_config": "alternative", "ret_kwargs": {"unix_socket_path": sock}}));
    let sink = salt_returners::open_sink("redis", &Lookup::new(&opts).with_ret(&job)).await.unwrap();
    sink.check().await.unwrap();
    sink.returner(&ret(JID, "m1", "test.ping", json!(true))).await.unwrap();
    let mut c = raw(&server).await;
    let _: () = q(&mut c, redis::cmd("SELECT").arg(3)).await;
    let stored: Option<String> = q(&mut c, redis::cmd("HGET").arg(format!("ret:{JID}")).arg("m1")).await;
    assert!(stored.is_some(), "the return is in db 3");
    let _: () = q(&mut c, redis::cmd("SELECT").arg(0)).await;
    let in_db0: bool = q(&mut c, redis::cmd("EXISTS").arg(format!("ret:{JID}"))).await;
    assert!(!in_db0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_one_clear_error_and_nothing_is_lost() {
    let Some(server) = server(&[]).await else { return };
    let mut c = raw(&server).await;
    let _: () = q(&mut c, redis::cmd("CONFIG").arg("SET").arg("requirepass").arg("s3cret-pw")).await;
    let wrong = open(&server, json!({"redis.password": "not-the-pw"})).await;
    let err = wrong.check().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
    assert!(text.contains("could not log in") && text.contains(&format!("127.0.0.1:{}", server.port())), "{text}");
    assert!(!text.contains("not-the-pw") && !text.contains('\n'), "{text}");
    // A batch is refused whole and retryable: the spool keeps it.
    let err = wrong.returner_batch(&[ret(JID, "m1", "test.ping", json!(true))]).await.unwrap_err();
    assert!(err.retry_later(), "{err:?}");
    let none = open(&server, json!({})).await;
    let err = none.check().await.unwrap_err().to_string();
    assert!(err.contains("could not log in") || err.contains("NOAUTH"), "{err}");

    let right = open(&server, json!({"redis": {"password": "s3cret-pw"}})).await;
    right.check().await.unwrap();
    right.returner(&ret(JID, "m1", "test.ping", json!(true))).await.unwrap();
    assert_eq!(right.get_jid(JID).await.unwrap()["m1"]["return"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_unavailable_then_works_again() {
    let Some(mut server) = server(&[]).await else { return };
    let store = open(&server, json!({})).await;
    store.returner(&ret(JID, "m1", "test.ping", json!(1))).await.unwrap();
    let mut server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let err = store.check().await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Unavailable(m) if m.contains("could not connect") || m.contains("did not answer")), "{err:?}");
    let err = store.returner(&ret(JID, "m2", "test.ping", json!(2))).await.unwrap_err();
    assert!(err.retry_later(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "a refused connection fails fast: {:?}", started.elapsed());
    let server = tokio::task::spawn_blocking(move || {
        server.start().unwrap();
        server
    })
    .await
    .unwrap();
    // Back: the same store reconnects, and the earlier data is there (append-only file).
    let mut ok = false;
    for _ in 0..100 {
        if store.returner(&ret(JID, "m2", "test.ping", json!(2))).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the store reconnects");
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["m1", "m2"]);
    drop(server);

    // Nothing listens there at all.
    let nowhere = salt_returners::open_job_cache("redis", &obj(json!({"redis.host": "127.0.0.1", "redis.port": 1}))).await.unwrap();
    let err = nowhere.check().await.unwrap_err().to_string();
    assert!(err.starts_with("redis: could not connect to Redis at 127.0.0.1:1/0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_skip_jobs_whose_keys_expired() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server, json!({})).await;
    let mut c = raw(&server).await;
    for n in 1..=70 {
        let jid = format!("202405100930000000{n:02}");
        store.save_load(&jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), None).await.unwrap();
        if n % 2 == 0 {
            // As if its TTL had run out: the index entry stays until clean_old_jobs.
            let _: () = q(&mut c, redis::cmd("DEL").arg(format!("summary:{jid}")).arg(format!("load:{jid}"))).await;
        }
    }
    let page = store.get_jids(&JobQuery { limit: Some(20), ..Default::default() }).await.unwrap();
    let want: Vec<String> = (1..=70).rev().filter(|n| n % 2 == 1).take(20).map(|n| format!("202405100930000000{n:02}")).collect();
    assert_eq!(page.iter().map(|j| j.jid.clone()).collect::<Vec<_>>(), want);
    assert_eq!(store.get_jids(&JobQuery::default()).await.unwrap().len(), 35);
}
