//! The `couchdb` store against a CouchDB REST server (pouchdb-server, started per test by
//! `saltrs_testkit::Server`): the conformance suites, then Salt's documents and views, bulk
//! writes, refusals, the login, and the database made again.

#[macro_use]
mod suite;

use std::sync::Arc;
use std::time::Duration;

use salt_returners::couchdb::{CouchDb, CouchDbConfig};
use salt_returners::options::Lookup;
use salt_returners::{JobCache, JobQuery, Load, ReturnerError, Sink};
use saltrs_testkit::Server;
use serde_json::{json, Value};
use suite::{Ager, Backend, Traits};

async fn server() -> Option<Server> {
    tokio::task::spawn_blocking(Server::couchdb).await.unwrap()
}

fn config(server: &Server, db: &str) -> CouchDbConfig {
    CouchDbConfig::new(&format!("{}/", server.url()), db).unwrap()
}

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

/// The server's REST API, behind the store's back.
#[derive(Clone)]
struct Rest {
    base: String,
    http: reqwest::Client,
}

impl Rest {
    fn new(server: &Server) -> Rest {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Rest { base: server.url(), http: reqwest::Client::new() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body.to_string());
        }
        let answer = req.send().await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, v) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, v) = self.send(reqwest::Method::POST, path, Some(body)).await;
        assert!(status < 300, "POST {path}: {status} {v}");
        v
    }

    /// Every document of `db` (not the design documents).
    async fn docs(&self, db: &str) -> Vec<Value> {
        let all = self.get(&format!("/{db}/_all_docs?include_docs=true")).await;
        all["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["doc"].clone())
            .filter(|d| !d["_id"].as_str().unwrap().starts_with("_design/"))
            .collect()
    }
}

/// Every document of `db` made `secs` older: its timestamp moved back.
async fn age(rest: &Rest, db: &str, secs: u64) {
    let mut docs = rest.docs(db).await;
    for d in &mut docs {
        d["timestamp"] = json!(d["timestamp"].as_f64().unwrap() - secs as f64);
    }
    rest.post(&format!("/{db}/_bulk_docs"), json!({"docs": docs})).await;
}

async fn couchdb() -> Option<Backend> {
    let server = server().await?;
    let store = CouchDb::open_with(config(&server, "salt")).unwrap();
    let rest = Rest::new(&server);
    let age: Ager = Box::new(move |secs| {
        let rest = rest.clone();
        Box::pin(async move { age(&rest, "salt", secs).await })
    });
    Some(Backend { store: Arc::new(store), _guard: Box::new(server), traits: Traits::COUCHDB, age: Some(age) })
}

conformance!(couchdb, couchdb);

const JID: &str = "20240510093000000001";

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salts_documents_and_views() {
    let Some(server) = server().await else { return };
    let rest = Rest::new(&server);
    let store = CouchDb::open_with(config(&server, "salt")).unwrap();
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    // A minion's return, and the master's (with `_stamp`, which CouchDB keeps for itself).
    let mut master = ret(JID, "web2", "test.echo", json!({"_x": 1}));
    master.insert("cmd".into(), json!("_return"));
    master.insert("_stamp".into(), json!("2024-05-10T09:30:00.123456"));
    store.returner_batch(&[ret(JID, "web1", "test.echo", json!("hi")), master.clone()]).await.unwrap();
    let publish =
        obj(json!({"cmd": "publish", "tgt": "*", "fun": "test.echo", "arg": ["hi"], "tgt_type": "glob", "jid": JID, "user": "root"}));
    store.save_load(JID, &publish, None).await.unwrap();

    let doc = rest.get(&format!("/salt/{JID}-web1")).await;
    for (k, v) in ret(JID, "web1", "test.echo", json!("hi")) {
        assert_eq!(doc[&k], v, "{k}");
    }
    let stamp = doc["timestamp"].as_f64().unwrap();
    assert!(stamp >= before && stamp < before + 60.0, "time.time(): {stamp}");
    let doc = rest.get(&format!("/salt/{JID}-web2")).await;
    assert_eq!((doc["~_stamp"].as_str(), doc.get("_stamp")), (Some("2024-05-10T09:30:00.123456"), None));
    assert_eq!(store.get_jid(JID).await.unwrap()["web2"], Value::Object(master));
    // The load: `_id` = jid, as Salt's get_jids lists documents.
    let load = rest.get(&format!("/salt/{JID}")).await;
    assert_eq!((load["fun"].as_str(), load["tgt"].as_str()), (Some("test.echo"), Some("*")));

    // Salt's views, queried as Salt's get_fun and get_minions do.
    let design = rest.get("/salt/_design/salt").await;
    let mut views: Vec<&String> = design["views"].as_object().unwrap().keys().collect();
    views.sort();
    assert_eq!(views, ["by-minion-fun-timestamp", "minions"]);
    let q = r#"descending=true&endkey=["web1","test.echo",0]&startkey=["web1","test.echo",9999999999]&limit=1"#;
    let last = rest.get(&format!("/salt/_design/salt/_view/by-minion-fun-timestamp?{q}")).await;
    assert_eq!(last["rows"][0]["value"]["return"], "hi");
    let minions = rest.get("/salt/_design/salt/_view/minions?group=true").await;
    let ids: Vec<&str> = minions["rows"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(ids, ["web1", "web2"], "returns only, not the load");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_bulk_request_and_conflicts_are_stored_returns() {
    let Some(server) = server().await else { return };
    let rest = Rest::new(&server);
    let store = CouchDb::open_with(config(&server, "salt")).unwrap();
    store.check().await.unwrap();
    // pouchdb-server logs a request once it has answered it: wait for the line.
    let requests = |what: &str, at_least: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
            let n = log.lines().filter(|l| l.contains(what)).count();
            if n >= at_least || std::time::Instant::now() > deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let bulks = |at_least| requests("POST /salt/_bulk_docs", at_least);
    let rets: Vec<Load> = (0..1000).map(|i| ret(&format!("2024051009300{i:07}"), &format!("m{}", i % 50), "test.ping", json!(i))).collect();
    let n = bulks(0);
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    assert_eq!(bulks(n + 1) - n, 1);
    // Again: every document conflicts, which is what a stored return does.
    let mut again = rets.clone();
    again[7]["return"] = json!("changed");
    assert_eq!(store.returner_batch(&again).await.unwrap(), []);
    assert_eq!(bulks(n + 2) - n, 2);
    assert_eq!(rest.docs("salt").await.len(), 1000);
    assert_eq!(store.get_jid("20240510093000000007").await.unwrap()["m7"]["return"], 7, "the first stays");
    assert_eq!(store.get_minions().await.unwrap().len(), 50);
    assert_eq!(store.get_fun("test.ping").await.unwrap()["m0"]["return"], 950);

    // The first page of the listing is one read of the view, however many jobs there are.
    for i in 0..1000 {
        let jid = format!("2024051009300{i:07}");
        store.save_load(&jid, &obj(json!({"fun": "test.ping", "tgt": "*"})), None).await.unwrap();
    }
    let listing = |at_least| requests("/salt/_design/jobs/_view/by-jid", at_least);
    let views = listing(0);
    let page = store.get_jids(&JobQuery { limit: Some(20), ..Default::default() }).await.unwrap();
    assert_eq!((page.len(), page[0].jid.as_str()), (20, "20240510093000000999"));
    assert_eq!(listing(views + 1) - views, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_reads_old_documents_page_by_page_and_keeps_running_jobs() {
    let Some(server) = server().await else { return };
    let rest = Rest::new(&server);
    let store = CouchDb::open_with(config(&server, "salt")).unwrap();
    let jid = |i: usize| format!("2024051009300{i:07}");
    let rets: Vec<Load> = (0..600).map(|i| ret(&jid(i), "m1", "test.ping", json!(i))).collect();
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    age(&rest, "salt", 100).await;
    // Ten jobs, spread over both pages of old documents, are still getting returns.
    let running: Vec<usize> = (0..600).step_by(60).collect();
    let fresh: Vec<Load> = running.iter().map(|&i| ret(&jid(i), "m2", "test.ping", json!("late"))).collect();
    assert_eq!(store.returner_batch(&fresh).await.unwrap(), []);
    assert_eq!(store.clean_old_jobs(Duration::from_secs(50)).await.unwrap(), 590);
    let left: Vec<String> = rest.docs("salt").await.iter().map(|d| d["_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(left.len(), 20, "{left:?}");
    for i in running {
        assert_eq!(store.get_jid(&jid(i)).await.unwrap().len(), 2);
    }
    assert_eq!(store.clean_old_jobs(Duration::from_secs(50)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_server_refuses_refuses_its_record_alone() {
    let Some(server) = server().await else { return };
    let rest = Rest::new(&server);
    let store = CouchDb::open_with(config(&server, "salt")).unwrap();
    store.check().await.unwrap();
    let validate = "function (doc) { if (doc.fun === 'forbidden.fun') { throw({forbidden: 'no forbidden.fun here'}); } }";
    let (status, answer) = rest.send(reqwest::Method::PUT, "/salt/_design/guard", Some(json!({"validate_doc_update": validate}))).await;
    assert!(status < 300, "{answer}");
    let rejected = store
        .returner_batch(&[
            ret(JID, "a", "test.ping", json!(1)),
            ret(JID, "b", "forbidden.fun", json!(2)),
            ret(JID, "c", "test.ping", json!(3)),
        ])
        .await
        .unwrap();
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1], "{rejected:?}");
    assert!(rejected[0].reason.contains("return of b for") && rejected[0].reason.contains("no forbidden.fun here"), "{rejected:?}");
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["a", "c"]);
    let alone = store.returner(&ret(JID, "b", "forbidden.fun", json!(2))).await.unwrap_err();
    assert!(matches!(alone, ReturnerError::Rejected(_)), "{alone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_login_or_a_missing_server_is_one_clear_error() {
    let Some(mut server) = server().await else { return };
    let rest = Rest::new(&server);
    // The database first, then an admin: from then on a login is checked.
    CouchDb::open_with(config(&server, "salt")).unwrap().check().await.unwrap();
    let (status, answer) = rest.send(reqwest::Method::PUT, "/_config/admins/root", Some(json!("R00tPw"))).await;
    assert!(status < 300, "{answer}");
    let with_login =
        |login: &str| CouchDb::open_with(CouchDbConfig::new(&format!("http://{login}@{}/", server.addr()), "salt").unwrap()).unwrap();
    let r = ret(JID, "m1", "test.ping", json!(true));
    let started = std::time::Instant::now();
    let store = with_login("root:Wr0ngPw");
    let err = store.returner(&r).await.unwrap_err();
    assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
    let err = store.check().await.unwrap_err().to_string();
    assert!(err.starts_with("couchdb: http://127.0.0.1:") && err.contains("refused the login (401 Unauthorized, user 'root')"), "{err}");
    assert!(!err.contains("Wr0ngPw") && !err.contains('\n'), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "no retry loop inside the store");
    let store = with_login("root:R00tPw");
    store.check().await.unwrap();
    store.returner(&r).await.unwrap();
    assert_eq!(store.get_jid(JID).await.unwrap()["m1"]["return"], true);

    tokio::task::block_in_place(|| server.stop());
    let err = store.returner(&r).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Unavailable(m) if m.starts_with("couchdb: cannot connect at http://127.0.0.1:")), "{err:?}");
    assert!(!err.to_string().contains("R00tPw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_database_is_made_again() {
    let Some(server) = server().await else { return };
    let rest = Rest::new(&server);
    let store = CouchDb::open_with(config(&server, "salt")).unwrap();
    store.returner(&ret(JID, "m1", "test.ping", json!(1))).await.unwrap();
    let (status, _) = rest.send(reqwest::Method::DELETE, "/salt", None).await;
    assert_eq!(status, 200);
    store.returner(&ret(JID, "m2", "test.ping", json!(2))).await.unwrap();
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["m2"]);
    assert_eq!(store.get_minions().await.unwrap(), ["m2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_through_the_registry_and_return_kwargs() {
    let Some(server) = server().await else { return };
    let rest = Rest::new(&server);
    let opts = obj(json!({"couchdb": {"url": format!("{}/", server.url())}, "couchdb.db": "jobs", "alternative.couchdb.db": "alt"}));
    let cache = salt_returners::open_job_cache("couchdb", &opts).await.unwrap();
    cache.returner(&ret(JID, "m1", "test.ping", json!(1))).await.unwrap();
    assert_eq!(rest.docs("jobs").await.len(), 1);
    let minion_side = obj(json!({"ret_config": "alternative", "ret_kwargs": {"db": "kwargs"}}));
    let sink = salt_returners::open_sink("couchdb", &Lookup::new(&opts).with_ret(&minion_side)).await.unwrap();
    sink.returner(&ret(JID, "m2", "test.ping", json!(2))).await.unwrap();
    assert_eq!(rest.docs("kwargs").await.len(), 1);
    let alternative = obj(json!({"ret_config": "alternative"}));
    let sink = salt_returners::open_sink("couchdb", &Lookup::new(&opts).with_ret(&alternative)).await.unwrap();
    sink.returner(&ret(JID, "m3", "test.ping", json!(3))).await.unwrap();
    assert_eq!(rest.docs("alt").await[0]["id"], "m3");
}
