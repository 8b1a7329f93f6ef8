//! The `etcd` store against a real etcd (3.4, started per test by `saltrs_testkit::Server`): the
//! conformance suites, then Salt's key layout, leases, the login, limits and round trips.

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use salt_returners::etcd::config::{EtcdConfig, DEFAULT_ROOT};
use salt_returners::etcd::encode::{decode_text, encode_value, Layout};
use salt_returners::etcd::Etcd;
use salt_returners::options::Lookup;
use salt_returners::{JobCache, JobQuery, Load, ReturnerError, Sink};
use saltrs_testkit::{Kind, Server};
use serde_json::{json, Value};
use suite::{Backend, Traits};

/// etcd's request limit raised from 1.5 MiB to what a 10 MB return needs (base64 is not sent
/// on: the gateway decodes it). [`too_large_returns_are_refused_alone`] uses the default.
const BIG_REQUESTS: [&str; 2] = ["--max-request-bytes", "33554432"];

async fn server(args: &'static [&'static str]) -> Option<Server> {
    tokio::task::spawn_blocking(move || Server::with_args(Kind::Etcd, args)).await.unwrap()
}

fn config(server: &Server) -> EtcdConfig {
    let opts = obj(json!({"etcd.host": "127.0.0.1", "etcd.port": server.port()}));
    EtcdConfig::from_lookup(&Lookup::new(&opts)).unwrap()
}

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

async fn etcd() -> Option<Backend> {
    let server = server(&BIG_REQUESTS).await?;
    let store = Etcd::open_with(config(&server)).unwrap();
    // Keys expire through leases, not clean_old_jobs: nothing to age.
    Some(Backend { store: Arc::new(store), _guard: Box::new(server), traits: Traits::ETCD, age: None })
}

conformance!(etcd, etcd);

/// etcd's JSON gateway, used behind the store's back.
struct Gateway {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl Gateway {
    fn new(server: &Server) -> Gateway {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Gateway { base: server.url(), http: reqwest::Client::new(), token: None }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body.to_string());
        if let Some(t) = &self.token {
            req = req.header("Authorization", t);
        }
        let answer = req.send().await.unwrap();
        let status = answer.status();
        let v: Value = answer.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    async fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let v = self.post("/v3/kv/range", json!({"key": B64.encode(key)})).await;
        v["kvs"].as_array().and_then(|kvs| kvs.first()).map(|kv| B64.decode(kv["value"].as_str().unwrap_or("")).unwrap())
    }

    async fn put(&self, key: &[u8], value: &[u8]) {
        self.post("/v3/kv/put", json!({"key": B64.encode(key), "value": B64.encode(value)})).await;
    }

    /// Every key under `prefix`, as text.
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let end = format!("{}{}", &prefix[..prefix.len() - 1], (prefix.as_bytes()[prefix.len() - 1] + 1) as char);
        let v = self.post("/v3/kv/range", json!({"key": B64.encode(prefix), "range_end": B64.encode(end), "keys_only": true})).await;
        let kvs = v["kvs"].as_array().cloned().unwrap_or_default();
        kvs.iter().map(|kv| String::from_utf8_lossy(&B64.decode(kv["key"].as_str().unwrap()).unwrap()).into_owned()).collect()
    }

    async fn revision(&self) -> u64 {
        let v = self.post("/v3/kv/range", json!({"key": B64.encode("/"), "keys_only": true})).await;
        v["header"]["revision"].as_str().unwrap().parse().unwrap()
    }

    /// How many `method` calls (Range, Txn, ...) the server has answered.
    async fn calls(&self, method: &str) -> u64 {
        let text = self.http.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        let want = format!("grpc_method=\"{method}\",grpc_service=\"etcdserverpb.KV\"");
        text.lines()
            .filter(|l| l.starts_with("grpc_server_handled_total") && l.contains(&want))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Turns on auth with a `root` user, then a `salt` user that may use `/salt/`.
    async fn enable_auth(&mut self) {
        self.post("/v3/auth/role/add", json!({"name": "root"})).await;
        self.post("/v3/auth/user/add", json!({"name": "root", "password": "r00t"})).await;
        self.post("/v3/auth/user/grant", json!({"user": "root", "role": "root"})).await;
        self.post("/v3/auth/role/add", json!({"name": "salt"})).await;
        let perm = json!({"permType": "READWRITE", "key": B64.encode("/salt/"), "range_end": B64.encode("/salt0")});
        self.post("/v3/auth/role/grant", json!({"name": "salt", "perm": perm})).await;
        self.post("/v3/auth/user/add", json!({"name": "salt", "password": "Sup3rSecretPw"})).await;
        self.post("/v3/auth/user/grant", json!({"user": "salt", "role": "salt"})).await;
        self.post("/v3/auth/enable", json!({})).await;
        let login = self.post("/v3/auth/authenticate", json!({"name": "root", "password": "r00t"})).await;
        self.token = login["token"].as_str().map(str::to_string);
    }
}

const JID: &str = "20240510093000000001";

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": ["a b"], "id": id}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salts_key_layout_as_its_v3_client_writes_it() {
    let Some(server) = server(&[]).await else { return };
    let gw = Gateway::new(&server);
    let store = Etcd::open_with(config(&server)).unwrap();
    let l = Layout::new(DEFAULT_ROOT);
    store.returner(&ret(JID, "web1", "test.echo", json!({"a": "é"}))).await.unwrap();
    let publish =
        obj(json!({"cmd": "publish", "tgt": "*", "fun": "test.echo", "arg": ["a b"], "tgt_type": "glob", "jid": JID, "user": "root"}));
    store.save_load(JID, &publish, None).await.unwrap();
    // msgpack strings (salt.utils.etcd_util's encode_values) holding json.dumps text.
    let text = |v: Option<Vec<u8>>| decode_text(&v.expect("the key exists")).unwrap();
    assert_eq!(gw.get(&l.minion("web1")).await, Some(encode_value(JID, true)));
    assert_eq!(text(gw.get(&l.field(JID, "web1", "return")).await), r#"{"a": "é"}"#);
    assert_eq!(text(gw.get(&l.field(JID, "web1", "fun_args")).await), r#"["a b"]"#);
    assert_eq!(text(gw.get(&l.field(JID, "web1", "success")).await), "true");
    assert_eq!(
        text(gw.get(&l.load(JID)).await),
        format!(
            r#"{{"cmd": "publish", "tgt": "*", "fun": "test.echo", "arg": ["a b"], "tgt_type": "glob", "jid": "{JID}", "user": "root"}}"#
        )
    );
    let mut fields = gw.keys(&format!("/salt/return/jobs/{JID}/")).await;
    fields.sort();
    let want: Vec<String> = [".load.p", "web1/fun", "web1/fun_args", "web1/id", "web1/jid", "web1/retcode", "web1/return", "web1/success"]
        .iter()
        .map(|f| format!("/salt/return/jobs/{JID}/{f}"))
        .collect();
    assert_eq!(fields, want);

    // What Salt's v3 client wrote (msgpack) and what plain-text writers wrote both read back.
    let old = "20240510093000000002";
    gw.put(&l.field(old, "m1", "return"), &encode_value(r#"{"x": [1, 2]}"#, true)).await;
    gw.put(&l.field(old, "m2", "return"), br#""plain""#).await;
    gw.put(&l.load(old), br#"{"fun": "cmd.run"}"#).await;
    let got = store.get_jid(old).await.unwrap();
    assert_eq!(Value::Object(got), json!({"m1": {"return": {"x": [1, 2]}}, "m2": {"return": "plain"}}));
    assert_eq!(store.get_load(old).await.unwrap().unwrap()["fun"], "cmd.run");

    // etcd.encode_values: false writes the text itself.
    let mut plain = config(&server);
    plain.write.encode_values = false;
    plain.root = "/plain".into();
    let store = Etcd::open_with(plain).unwrap();
    store.returner(&ret(JID, "web1", "test.echo", json!(1))).await.unwrap();
    let l = Layout::new("/plain");
    assert_eq!(gw.get(&l.minion("web1")).await.unwrap(), JID.as_bytes());
    assert_eq!(gw.get(&l.field(JID, "web1", "return")).await.unwrap(), b"1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slashes_in_functions_and_fields_stay_in_their_level() {
    let Some(server) = server(&[]).await else { return };
    let gw = Gateway::new(&server);
    let store = Etcd::open_with(config(&server)).unwrap();
    let mut r = ret(JID, "m1", "../../a/b", json!("x"));
    r.insert("x/../y".into(), json!("field"));
    store.returner(&r).await.unwrap();
    let mut keys = gw.keys("/salt/return/").await;
    keys.sort();
    assert!(keys.contains(&format!("/salt/return/jobs/{JID}/m1/x%2F..%2Fy")), "{keys:?}");
    assert!(keys.contains(&"/salt/return/funs/..%2F..%2Fa%2Fb/m1".to_string()), "{keys:?}");
    assert!(keys
        .iter()
        .all(|k| k.starts_with("/salt/return/jobs/") || k.starts_with("/salt/return/funs/") || k.starts_with("/salt/return/minions/")));
    assert_eq!(Value::Object(store.get_fun("../../a/b").await.unwrap()), json!({"m1": "x"}));
    assert_eq!(store.get_jid(JID).await.unwrap()["m1"]["return"], "x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_fun_gives_the_newest_return_whatever_the_order_of_writes() {
    let Some(server) = server(&[]).await else { return };
    let store = Etcd::open_with(config(&server)).unwrap();
    let (old, new) = ("20240510093000000001", "20240510093000000002");
    store.returner(&ret(new, "m1", "test.ping", json!("new"))).await.unwrap();
    // Spooled while the server was down, delivered late.
    store.returner(&ret(old, "m1", "test.ping", json!("old"))).await.unwrap();
    store.returner(&ret(old, "m2", "test.ping", json!("m2"))).await.unwrap();
    assert_eq!(Value::Object(store.get_fun("test.ping").await.unwrap()), json!({"m1": "new", "m2": "m2"}));
    assert!(store.get_fun("cmd.run").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_live_on_a_lease_of_the_ttl() {
    let Some(server) = server(&[]).await else { return };
    let gw = Gateway::new(&server);
    let mut c = config(&server);
    c.ttl = Some(Duration::from_secs(3600));
    let store = Etcd::open_with(c.clone()).unwrap();
    store.returner_batch(&[ret(JID, "m1", "test.ping", json!(true)), ret(JID, "m2", "test.ping", json!(true))]).await.unwrap();
    store.save_load(JID, &obj(json!({"fun": "test.ping"})), None).await.unwrap();
    let l = Layout::new(DEFAULT_ROOT);
    let lease_of = |key: Vec<u8>| {
        let gw = &gw;
        async move {
            let v = gw.post("/v3/kv/range", json!({"key": B64.encode(key)})).await;
            v["kvs"][0]["lease"].as_str().unwrap().to_string()
        }
    };
    // One lease for the writes of the moment: the batch and the load.
    let lease = lease_of(l.field(JID, "m1", "return")).await;
    assert_eq!(lease_of(l.minion("m2")).await, lease);
    assert_eq!(lease_of(l.load(JID)).await, lease);
    let ttl = gw.post("/v3/lease/timetolive", json!({"ID": lease})).await;
    let granted: u64 = ttl["grantedTTL"].as_str().unwrap().parse().unwrap();
    assert_eq!(granted, 3600 + 60, "the TTL, plus the minute the lease is shared for");

    // And they go when it ends.
    c.ttl = Some(Duration::from_secs(2));
    c.root = "/short".into();
    let store = Etcd::open_with(c).unwrap();
    store.returner(&ret(JID, "m1", "test.ping", json!(true))).await.unwrap();
    assert_eq!(store.get_minions().await.unwrap(), ["m1"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(store.get_minions().await.unwrap().is_empty());
    assert!(store.get_jid(JID).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_a_few_transactions_and_a_page_one_read() {
    let Some(server) = server(&[]).await else { return };
    let gw = Gateway::new(&server);
    let store = Etcd::open_with(config(&server)).unwrap();
    let rets: Vec<Load> = (0..1000).map(|i| ret(&format!("2024051009300{i:07}"), &format!("m{}", i % 50), "test.ping", json!(i))).collect();
    let (rev, txns) = (gw.revision().await, gw.calls("Txn").await);
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    // 7 fields a return: 117 records a transaction (etcd's 128 operations, nested ones
    // included), so 9 transactions.
    assert_eq!(gw.calls("Txn").await - txns, 9);
    assert_eq!(gw.revision().await - rev, 9);
    // Again: nothing new is written (each return is stored once), in as many transactions.
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    assert_eq!(gw.calls("Txn").await - txns, 18);
    assert_eq!(gw.revision().await - rev, 9, "a second write of the same returns changes nothing");
    assert_eq!(store.get_minions().await.unwrap().len(), 50);

    for i in 0..1000 {
        let jid = format!("2024051009300{i:07}");
        store.save_load(&jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), None).await.unwrap();
    }
    let ranges = gw.calls("Range").await;
    let page = store.get_jids(&JobQuery { limit: Some(20), ..Default::default() }).await.unwrap();
    assert_eq!(page.len(), 20);
    assert_eq!(page[0].jid, "20240510093000000999");
    assert_eq!(gw.calls("Range").await - ranges, 1, "the first page is one read of a page of the listing");
    let oldest = store.get_jids(&JobQuery { limit: Some(3), oldest_first: true, offset: 2, ..Default::default() }).await.unwrap();
    assert_eq!(
        oldest.iter().map(|j| j.jid.as_str()).collect::<Vec<_>>(),
        ["20240510093000000002", "20240510093000000003", "20240510093000000004"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_large_returns_are_refused_alone() {
    // etcd's default request limit (1.5 MiB).
    let Some(server) = server(&[]).await else { return };
    let store = Etcd::open_with(config(&server)).unwrap();
    let big = "x".repeat(2 * 1024 * 1024);
    let rejected = store
        .returner_batch(&[
            ret(JID, "small1", "cmd.run", json!(1)),
            ret(JID, "big", "cmd.run", json!(big)),
            ret(JID, "small2", "cmd.run", json!(2)),
        ])
        .await
        .unwrap();
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1], "{rejected:?}");
    assert!(rejected[0].reason.contains("too large") && rejected[0].reason.contains("--max-request-bytes"), "{rejected:?}");
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["small1", "small2"]);
    let alone = store.returner(&ret(JID, "big", "cmd.run", json!(big))).await.unwrap_err();
    assert!(matches!(alone, ReturnerError::Rejected(_)), "{alone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_or_a_missing_server_is_one_clear_error() {
    let Some(mut server) = server(&[]).await else { return };
    let mut gw = Gateway::new(&server);
    gw.enable_auth().await;
    let with_login = |user: Option<&str>, password: &str| {
        let mut c = config(&server);
        c.write.username = user.map(str::to_string);
        c.write.password = salt_returners::secret::Secret::new(password);
        c.read = c.write.clone();
        Etcd::open_with(c).unwrap()
    };
    let r = ret(JID, "m1", "test.ping", json!(true));
    let started = std::time::Instant::now();
    for (store, says) in [
        (with_login(Some("salt"), "wrong-Pw"), "refused the login of user 'salt'"),
        (with_login(Some("nobody"), "Sup3rSecretPw"), "refused the login of user 'nobody'"),
    ] {
        let err = store.returner(&r).await.unwrap_err();
        assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
        let err = store.check().await.unwrap_err().to_string();
        assert!(err.starts_with("etcd: http://127.0.0.1:") && err.contains(says), "{err}");
        assert!(!err.contains("Sup3rSecretPw") && !err.contains("wrong-Pw"), "{err}");
    }
    assert!(started.elapsed() < Duration::from_secs(10), "no retry loop inside the store");
    // Without a login, or a login without permission on the root: check() and every read say
    // so. (etcd 3.4 checks the permissions of a transaction's top-level operations only, so
    // the writes, nested, go through.)
    let mut elsewhere = config(&server);
    elsewhere.write.username = Some("salt".into());
    elsewhere.write.password = salt_returners::secret::Secret::new("Sup3rSecretPw");
    elsewhere.read = elsewhere.write.clone();
    elsewhere.root = "/other".into();
    for (store, says) in [
        (with_login(None, ""), "has auth enabled: set etcd.username and etcd.password"),
        (Etcd::open_with(elsewhere).unwrap(), "refused user 'salt' access to the returner's keys"),
    ] {
        let err = store.check().await.unwrap_err().to_string();
        assert!(err.starts_with("etcd: http://127.0.0.1:") && err.contains(says), "{err}");
        let err = store.get_jid(JID).await.unwrap_err();
        assert!(matches!(&err, ReturnerError::Unavailable(m) if m.contains(says)), "{err:?}");
    }
    // The right login works, and logs in again when its token is no longer valid (auth turned
    // off and on again drops every token).
    let store = with_login(Some("salt"), "Sup3rSecretPw");
    store.check().await.unwrap();
    store.returner(&r).await.unwrap();
    assert_eq!(store.get_jid(JID).await.unwrap()["m1"]["return"], true);
    gw.post("/v3/auth/disable", json!({})).await;
    gw.token = None;
    gw.post("/v3/auth/enable", json!({})).await;
    assert_eq!(store.get_jid(JID).await.unwrap()["m1"]["return"], true);

    // The server goes away: one line, retry later.
    tokio::task::block_in_place(|| server.stop());
    let err = store.returner(&r).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Unavailable(m) if m.starts_with("etcd: cannot connect at http://127.0.0.1:")), "{err:?}");
    let err = store.check().await.unwrap_err().to_string();
    assert!(err.starts_with("etcd: cannot connect at") && !err.contains('\n'), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_through_the_registry_and_return_kwargs() {
    let Some(server) = server(&[]).await else { return };
    let gw = Gateway::new(&server);
    let opts = obj(json!({"etcd.returner": "main", "main": {"etcd.host": "127.0.0.1", "etcd.port": server.port()},
                          "etcd": {"returner_root": "/salt/nested"}, "alternative.etcd.returner_root": "/salt/alt"}));
    let cache = salt_returners::open_job_cache("etcd", &opts).await.unwrap();
    cache.returner(&ret(JID, "m1", "test.ping", json!(true))).await.unwrap();
    assert!(gw.get(&Layout::new("/salt/nested").minion("m1")).await.is_some());
    let minion_side = obj(json!({"ret_config": "alternative", "ret_kwargs": {"returner_root": "/salt/kwargs"}}));
    let sink = salt_returners::open_sink("etcd", &Lookup::new(&opts).with_ret(&minion_side)).await.unwrap();
    sink.returner(&ret(JID, "m2", "test.ping", json!(true))).await.unwrap();
    assert!(gw.get(&Layout::new("/salt/kwargs").minion("m2")).await.is_some());
    let alternative = obj(json!({"ret_config": "alternative"}));
    let sink = salt_returners::open_sink("etcd", &Lookup::new(&opts).with_ret(&alternative)).await.unwrap();
    sink.returner(&ret(JID, "m3", "test.ping", json!(true))).await.unwrap();
    assert!(gw.get(&Layout::new("/salt/alt").minion("m3")).await.is_some());
}
