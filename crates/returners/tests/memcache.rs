//! The `memcache` returner against real memcached servers started by `saltrs_testkit::Server`:
//! the conformance suites (sink and job cache), then Salt's keys, two writers at once, values
//! over the item limit, keys memcached refuses, a server that is down, listings over days.

#[macro_use]
mod suite;

use std::sync::Arc;

use salt_returners::options::Lookup;
use salt_returners::{JobCache, JobQuery, Load, ReturnerError};
use saltrs_testkit::{Kind, Server};
use serde_json::{json, Map, Value};
use suite::{Backend, Traits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
}

const JID: &str = "20240510093000000001";

/// A fresh server (None: memcached is not installed, and the skip is reported).
async fn server(extra: &'static [&'static str]) -> Option<Server> {
    tokio::task::spawn_blocking(move || Server::with_args(Kind::Memcached, extra)).await.unwrap()
}

/// The store on `server`, opened by name through the registry with Salt's option names.
async fn open(server: &Server) -> Arc<dyn JobCache> {
    let opts = obj(json!({"memcache.host": "127.0.0.1", "memcache": {"port": server.port()}}));
    salt_returners::open_job_cache("memcache", &opts).await.unwrap()
}

/// `get <key>` on a connection of its own: (flags, value) as memcached holds it.
async fn raw_get(server: &Server, key: &str) -> Option<(u32, String)> {
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(format!("get {key}\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"END\r\n") {
        let mut buf = vec![0; 1 << 20];
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "memcached closed the connection");
        answer.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(answer).unwrap();
    let (header, rest) = text.split_once("\r\n")?;
    let flags = header.strip_prefix("VALUE ")?.split(' ').nth(1)?.parse().unwrap();
    Some((flags, rest.strip_suffix("\r\nEND\r\n").unwrap().to_string()))
}

async fn memcache() -> Option<Backend> {
    let server = server(&[]).await?;
    let store = open(&server).await;
    Some(Backend { store, _guard: Box::new(server), traits: Traits::MEMCACHE, age: None })
}

conformance!(memcache, memcache);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_keys_values_and_flags() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server).await;
    let publish = obj(json!({"cmd": "publish", "tgt": "*", "fun": "test.ping", "arg": [], "tgt_type": "glob", "jid": JID, "user": "root"}));
    store.save_load(JID, &publish, Some(&["web1.example.com".to_string()])).await.unwrap();
    store.returner(&ret(JID, "web1.example.com", "test.ping", json!(true))).await.unwrap();
    let want = r#"{"success": true, "return": true, "retcode": 0, "jid": "20240510093000000001", "fun": "test.ping", "fun_args": [], "id": "web1.example.com"}"#;
    assert_eq!(raw_get(&server, &format!("{JID}:web1.example.com")).await, Some((16, want.to_string())));
    assert_eq!(raw_get(&server, "test.ping:web1.example.com").await, Some((16, want.to_string())));
    let (flags, load) = raw_get(&server, JID).await.unwrap();
    assert_eq!((flags, serde_json::from_str::<Value>(&load).unwrap()), (16, Value::Object(publish)));
    assert_eq!(raw_get(&server, "minions").await, Some((16, "web1.example.com,".into())));
    assert_eq!(raw_get(&server, "jids").await, Some((16, format!("{JID},"))));
    // The listing index, for an operator who looks.
    assert_eq!(raw_get(&server, "jids:index:days").await, Some((16, "20240510,".into())));
    assert_eq!(raw_get(&server, "jids:index:202405100930").await, Some((16, format!("{JID},"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_at_once_lose_no_list_entry() {
    let Some(server) = server(&[]).await else { return };
    // Two masters (two stores, two connections) writing to an empty server: each list is
    // created by both at the same moment, again and again.
    let (a, b) = (open(&server).await, open(&server).await);
    let write = |store: Arc<dyn JobCache>, who: &'static str| async move {
        for round in 0..40u32 {
            let jid = format!("2024051{}09300000{round:04}", if who == "a" { 0 } else { 1 });
            let batch: Vec<Load> = (0..25).map(|n| ret(&jid, &format!("{who}-{round}-{n}"), "test.ping", json!(n))).collect();
            assert_eq!(store.returner_batch(&batch).await.unwrap(), []);
            store.save_load(&jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), None).await.unwrap();
        }
    };
    tokio::join!(write(a.clone(), "a"), write(b.clone(), "b"));
    let minions = a.get_minions().await.unwrap();
    assert_eq!(minions.len(), 2 * 40 * 25, "every minion listed once");
    assert_eq!(a.get_jids(&JobQuery::default()).await.unwrap().len(), 80, "every job listed once");
    assert_eq!(b.get_jid("20240510093000000007").await.unwrap().len(), 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_the_item_limit_go_in_parts() {
    let Some(big_items) = server(&[]).await else { return };
    let store = open(&big_items).await;
    let big = "é".repeat(3 * 1024 * 1024); // 6 MiB of two-byte characters
    store.returner(&ret(JID, "m1", "state.apply", json!(big))).await.unwrap();
    let (flags, manifest) = raw_get(&big_items, &format!("{JID}:m1")).await.unwrap();
    assert_eq!(flags, 8208, "{manifest}");
    assert!(manifest.starts_with(r#"{"chunks": 7, "bytes": "#), "{manifest}");
    assert_eq!(store.get_jid(JID).await.unwrap()["m1"]["return"].as_str().map(str::len), Some(big.len()));
    assert_eq!(store.get_fun("state.apply").await.unwrap()["m1"]["return"].as_str().map(str::len), Some(big.len()));

    // A server that takes only 512 KiB items refuses the parts: that record is refused, clearly.
    let Some(small) = server(&["-I", "512k"]).await else { return };
    let store = open(&small).await;
    let rejected = store
        .returner_batch(&[ret(JID, "big", "cmd.run", json!("x".repeat(2_000_000))), ret(JID, "small", "cmd.run", json!("ok"))])
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].index, 0);
    assert!(rejected[0].reason.contains("return of big") && rejected[0].reason.contains("too large"), "{rejected:?}");
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["small"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_memcached_refuses_are_clear_refusals() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server).await;
    let rejected = store
        .returner_batch(&[
            ret(JID, "m1", "my module.run", json!(1)),
            ret(JID, &"a".repeat(240), "test.ping", json!(1)),
            ret(JID, "m2", "test.ping", json!(2)),
        ])
        .await
        .unwrap();
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [0, 1], "{rejected:?}");
    assert!(rejected[0].reason.contains("does not take") && rejected[1].reason.contains("1 to 250"), "{rejected:?}");
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["m2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_unavailable_then_works_again() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server).await;
    store.check().await.unwrap();
    let mut server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.stop();
        server
    })
    .await
    .unwrap();
    let err = store.check().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
    assert!(
        text.starts_with(&format!("memcache: memcached at 127.0.0.1:{}: could not connect", server.port())) && !text.contains('\n'),
        "{text}"
    );
    assert!(store.returner(&ret(JID, "m1", "test.ping", json!(1))).await.unwrap_err().retry_later());
    server = tokio::task::spawn_blocking(move || {
        server.start().unwrap();
        server
    })
    .await
    .unwrap();
    // memcached restarts empty; the store reconnects and writes again.
    store.returner(&ret(JID, "m1", "test.ping", json!(1))).await.unwrap();
    assert_eq!(store.get_jid(JID).await.unwrap()["m1"]["return"], 1);
    drop(server);

    let nowhere =
        salt_returners::open_job_cache("memcache", &obj(json!({"memcache.host": "127.0.0.1", "memcache.port": 1}))).await.unwrap();
    let err = nowhere.check().await.unwrap_err().to_string();
    assert!(err.starts_with("memcache: memcached at 127.0.0.1:1: could not connect"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_walk_days_and_minutes() {
    let Some(server) = server(&[]).await else { return };
    let store = open(&server).await;
    // Jobs over three days and several minutes, saved out of order.
    let jids = ["20240512235959000001", "20240510000000000001", "20240511120000000001", "20240511120000000002", "20240511120100000001"];
    for jid in jids {
        store.save_load(jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), None).await.unwrap();
    }
    let mut sorted = jids.to_vec();
    sorted.sort();
    let listed = |q: JobQuery| {
        let store = store.clone();
        async move { store.get_jids(&q).await.unwrap().into_iter().map(|j| j.jid).collect::<Vec<_>>() }
    };
    assert_eq!(listed(JobQuery { oldest_first: true, ..Default::default() }).await, sorted);
    assert_eq!(listed(JobQuery { limit: Some(2), ..Default::default() }).await, [sorted[4], sorted[3]]);
    let day = chrono::NaiveDate::from_ymd_opt(2024, 5, 11).unwrap();
    let q = JobQuery { start_time: day.and_hms_opt(12, 0, 0), end_time: day.and_hms_opt(12, 0, 59), ..Default::default() };
    assert_eq!(listed(q).await, [sorted[2], sorted[1]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn return_config_picks_another_server() {
    let Some(server) = server(&[]).await else { return };
    let opts = obj(json!({"memcache.host": "127.0.0.1", "memcache.port": 1, "alternative.memcache.port": server.port()}));
    let job = obj(json!({"ret_config": "alternative"}));
    let sink = salt_returners::open_sink("memcache", &Lookup::new(&opts).with_ret(&job)).await.unwrap();
    sink.returner(&ret(JID, "m1", "test.ping", json!(true))).await.unwrap();
    assert!(raw_get(&server, &format!("{JID}:m1")).await.is_some());
}

/// A list that reaches memcached's item size (here 2 KiB, about 180 minions in `minions`):
/// memcached answers its appends NOT_STORED, as for a missing list. The store tells the two
/// apart and refuses, clearly, only the records the full list cannot take; it does not take
/// the refusal for a race and retry for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_list_refuses_what_it_cannot_take_and_only_that() {
    let Some(server) = server(&["-I", "2k", "-o", "slab_chunk_max=2048"]).await else { return };
    let store = open(&server).await;
    let rets: Vec<Load> = (0..300).map(|i| ret(JID, &format!("minion{i:04}"), "test.ping", json!(true))).collect();
    // Ten at a time, so the list grows by appends until one no longer fits.
    let mut rejected = Vec::new();
    for batch in rets.chunks(10) {
        let refused = tokio::time::timeout(std::time::Duration::from_secs(30), store.returner_batch(batch)).await.expect("an answer");
        rejected.extend(refused.expect("refusals, not an error to retry"));
    }
    assert!(!rejected.is_empty(), "the list held 300 minions in 2 KiB?");
    assert!(rejected.iter().all(|r| r.reason.contains("the list minions") && r.reason.contains("is full")), "{:?}", &rejected[..1]);
    let listed = raw_get(&server, "minions").await.unwrap().1;
    assert_eq!(listed.matches(',').count() + rejected.len(), 300, "every minion is listed or refused");
    // `get_jid` walks `minions`, as Salt's does: it gives the listed ones; the others are in the
    // dead-letter file with the reason (their values are stored, but nothing lists them).
    assert_eq!(store.get_jid(JID).await.unwrap().len(), listed.matches(',').count());
}
