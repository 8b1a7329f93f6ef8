//! `mongo` and `mongo_return` against a MongoDB wire-protocol server (SecantusDB, started by
//! `saltrs_testkit::Server::mongo`): the job-cache and sink conformance suites for both names,
//! then Salt's documents as a dashboard reads them, escaped keys, events, options, a 10 MB
//! return in a big batch, a refused document, an outage, and a wrong password.

#[macro_use]
mod suite;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mongodb::bson::{doc, Document};
use salt_returners::mongo::config::Address;
use salt_returners::mongo::{Flavour, Mongo, MongoConfig};
use salt_returners::options::Lookup;
use salt_returners::secret::Secret;
use salt_returners::{Event, JobCache, Load, ReturnerError, Sink};
use saltrs_testkit::Server;
use serde_json::{json, Value};
use suite::{Backend, Traits};

/// Salt's mongo calls: SQL-shaped answers (`get_jid` gives `full_ret`), events, no purge.
const MONGO: Traits = Traits { clean_old_jobs: false, ..Traits::SQL };

/// A server killed (not stopped: secantusd is slow to take SIGTERM) when its last user goes.
struct Killed(Server);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill();
    }
}

/// The server the tests of this binary share while any of them runs (each on a database of
/// its own); `None` when SecantusDB is not installed (the skip is reported).
async fn shared_server() -> Option<Arc<Killed>> {
    static SHARED: Mutex<Weak<Killed>> = Mutex::new(Weak::new());
    tokio::task::spawn_blocking(|| {
        let mut slot = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = slot.upgrade() {
            return Some(server);
        }
        let server = Arc::new(Killed(Server::mongo()?));
        *slot = Arc::downgrade(&server);
        Some(server)
    })
    .await
    .unwrap()
}

/// A server for this test alone (it stops, starts, or needs a login).
async fn own_server() -> Option<Killed> {
    tokio::task::spawn_blocking(Server::mongo).await.unwrap().map(Killed)
}

fn fresh_db() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("saltrs_t{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn config(server: &Server, db: &str, flavour: Flavour) -> MongoConfig {
    MongoConfig {
        address: Address::HostPort { host: "127.0.0.1".into(), port: server.port() },
        db: db.into(),
        user: None,
        password: Secret::default(),
        indexes: flavour == Flavour::Future,
        flavour,
        unique_jid: false,
    }
}

/// The test's own view of a database, for what the store wrote.
async fn raw_db(server: &Server, db: &str) -> mongodb::Database {
    mongodb::Client::with_uri_str(server.url()).await.unwrap().database(db)
}

async fn raw_docs(db: &mongodb::Database, collection: &str, filter: Document) -> Vec<Document> {
    use futures::TryStreamExt;
    db.collection::<Document>(collection).find(filter).sort(doc! {"_id": 1}).await.unwrap().try_collect().await.unwrap()
}

async fn backend(flavour: Flavour) -> Option<Backend> {
    let server = shared_server().await?;
    let store = Mongo::open_with(config(&server.0, &fresh_db(), flavour));
    Some(Backend { store: Arc::new(store), _guard: Box::new(server), traits: MONGO, age: None })
}

async fn mongo() -> Option<Backend> {
    backend(Flavour::Future).await
}

async fn mongo_return() -> Option<Backend> {
    backend(Flavour::Return).await
}

conformance!(mongo, mongo);
conformance!(mongo_return, mongo_return);

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

/// The master's return load of the transcript (`salt minion1 state.apply`).
fn master_ret(jid: &str, id: &str) -> Load {
    obj(json!({"cmd": "_return", "id": id, "success": true,
               "return": {"file_|-/etc/hosts.conf_|-/etc/hosts.conf_|-managed": {"result": true, "$changes": {}}},
               "retcode": 0, "jid": jid, "fun": "state.apply", "fun_args": [], "user": "root", "out": "highstate",
               "_stamp": "2026-11-25T00:38:08.317542"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_salts_and_dashboards_find_them() {
    let Some(server) = shared_server().await else { return };
    let name = fresh_db();
    let store = Mongo::open_with(config(&server.0, &name, Flavour::Future));
    let jid = "20261125003808100453";
    let publish = obj(json!({"cmd": "publish", "tgt": "*", "fun": "state.apply", "arg": [], "tgt_type": "glob", "ret": "",
                             "jid": jid, "user": "root", "kwargs": {"show_jid": false, "mongo.password": "s3cret"}}));
    store.save_load(jid, &publish, Some(&["minion1".into()])).await.unwrap();
    // The master calls save_load with each return's load too: the publish load stays.
    store.save_load(jid, &master_ret(jid, "minion1"), None).await.unwrap();
    assert_eq!(store.returner_batch(&[master_ret(jid, "minion1"), master_ret(jid, "minion2")]).await.unwrap(), []);
    // The same batch again (the spool retrying) adds nothing.
    assert_eq!(store.returner_batch(&[master_ret(jid, "minion1"), master_ret(jid, "minion2")]).await.unwrap(), []);

    let db = raw_db(&server.0, &name).await;
    // Salt's queries: by jid, by minion, by fun, on full_ret's fields.
    let rets = raw_docs(&db, "saltReturns", doc! {"jid": jid, "fun": "state.apply", "full_ret.success": true}).await;
    assert_eq!(rets.len(), 2);
    let r = &rets[0];
    assert_eq!(r.keys().collect::<Vec<_>>(), ["_id", "minion", "jid", "return", "fun", "full_ret", "out"]);
    assert_eq!((r.get_str("_id").unwrap(), r.get_str("minion").unwrap()), ("20261125003808100453:minion1", "minion1"));
    assert_eq!(r.get_str("out").unwrap(), "highstate");
    let state = r.get_document("return").unwrap().get_document("file_|-/etc/hosts%2econf_|-/etc/hosts%2econf_|-managed").unwrap();
    assert!(state.get_bool("result").unwrap() && state.contains_key("%24changes"));
    assert_eq!(r.get_document("full_ret").unwrap().get_i32("retcode").unwrap(), 0);
    let jobs = raw_docs(&db, "jobs", doc! {"jid": jid}).await;
    assert_eq!(jobs.len(), 1, "one load per job: {jobs:?}");
    assert_eq!(jobs[0].get_str("cmd").unwrap(), "publish");
    assert_eq!(jobs[0].get_document("kwargs").unwrap().get_str("mongo%2epassword").unwrap(), "**********");

    // Read back as it was given, keys and all.
    let got = store.get_jid(jid).await.unwrap();
    assert_eq!(got["minion1"], Value::Object(master_ret(jid, "minion1")));
    assert_eq!(store.get_load(jid).await.unwrap().unwrap()["kwargs"]["show_jid"], false);
    assert_eq!(store.get_fun("state.apply").await.unwrap().keys().collect::<Vec<_>>(), ["minion1", "minion2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_req_return_is_its_jobs_load() {
    let Some(server) = shared_server().await else { return };
    let store = Mongo::open_with(config(&server.0, &fresh_db(), Flavour::Return));
    let ret = obj(json!({"id": "m1", "jid": "req", "fun": "test.ping", "fun_args": [], "return": true}));
    assert_eq!(store.returner_batch(&[ret]).await.unwrap(), []);
    let jobs = store.get_jids(&Default::default()).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let load = store.get_load(&jobs[0].jid).await.unwrap().unwrap();
    assert_eq!((load["id"].as_str(), load["jid"].as_str()), (Some("m1"), Some(jobs[0].jid.as_str())));
    assert_eq!(store.get_jid(&jobs[0].jid).await.unwrap()["m1"]["return"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_batch_is_stored_once() {
    let Some(server) = shared_server().await else { return };
    let name = fresh_db();
    let store = Mongo::open_with(config(&server.0, &name, Flavour::Future));
    let events: Vec<Event> = (0..3)
        .map(|i| Event {
            tag: format!("salt/job/2026112500380810045{i}/new"),
            data: json!({"_stamp": format!("2026-11-25T00:38:08.31754{i}"), "minions": ["m1"], "a.b": {"$x": i}}),
        })
        .collect();
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    // Sent again (a retried flush), and one event too many for its u64.
    let mut again = events.clone();
    again.push(Event { tag: "salt/bad".into(), data: json!({"n": u64::MAX}) });
    let refused = store.event_return(&again).await.unwrap();
    assert_eq!(refused.iter().map(|r| r.index).collect::<Vec<_>>(), [3]);
    assert!(refused[0].reason.contains("salt/bad") && refused[0].reason.contains("64-bit"), "{refused:?}");
    let db = raw_db(&server.0, &name).await;
    let stored = raw_docs(&db, "events", doc! {}).await;
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].keys().collect::<Vec<_>>(), ["_id", "tag", "data"]);
    let last = stored.iter().find(|d| d.get_str("tag").unwrap() == "salt/job/20261125003808100452/new").unwrap();
    assert_eq!(last.get_document("data").unwrap().get_document("a%2eb").unwrap().get_i32("%24x").unwrap(), 2);
    // The `_id` starts with the event's time, as an inserted ObjectId does.
    let id = stored[0].get_object_id("_id").unwrap();
    assert_eq!(id.timestamp().timestamp_millis(), 1_795_567_088_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_indexes_when_asked() {
    let Some(server) = shared_server().await else { return };
    let name = fresh_db();
    let store = Mongo::open_with(config(&server.0, &name, Flavour::Future));
    store.check().await.unwrap();
    let db = raw_db(&server.0, &name).await;
    let mut names = Vec::new();
    for coll in ["saltReturns", "jobs", "events"] {
        for index in db.collection::<Document>(coll).list_index_names().await.unwrap() {
            names.push(format!("{coll}.{index}"));
        }
    }
    names.sort();
    assert_eq!(
        names,
        [
            "events._id_",
            "events.tag_1",
            "jobs._id_",
            "jobs.jid_1",
            "saltReturns._id_",
            "saltReturns.fun_1",
            "saltReturns.jid_1",
            "saltReturns.minion_1"
        ]
    );
    // mongo_return without mongo.indexes makes none.
    let other = fresh_db();
    Mongo::open_with(config(&server.0, &other, Flavour::Return)).check().await.unwrap();
    assert!(raw_db(&server.0, &other).await.list_collection_names().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_as_salt_reads_them_through_the_registry() {
    let Some(server) = shared_server().await else { return };
    let port = server.0.port();
    let (main, alt, kw, by_uri) = (fresh_db(), fresh_db(), fresh_db(), fresh_db());
    let opts = obj(json!({"mongo": {"host": "127.0.0.1", "port": port}, "mongo.db": main,
                          "alternative.mongo.db": alt}));
    let ret = |v: Value| obj(v);
    let cases = [
        ("mongo", ret(json!({})), main.clone()),
        ("mongo_return", ret(json!({"ret_config": "alternative"})), alt.clone()),
        ("mongo", ret(json!({"ret_config": "alternative", "ret_kwargs": {"db": kw}})), kw.clone()),
    ];
    for (i, (name, ret_opts, db)) in cases.iter().enumerate() {
        let store = salt_returners::open_sink(name, &Lookup::new(&opts).with_ret(ret_opts)).await.unwrap();
        assert_eq!(store.name(), *name);
        let jid = format!("2026112500380810045{i}");
        store.returner(&master_ret(&jid, "m1")).await.unwrap();
        let found = raw_docs(&raw_db(&server.0, db).await, "saltReturns", doc! {"jid": &jid}).await;
        assert_eq!(found.len(), 1, "{name} {ret_opts:?} writes to {db}");
    }
    // mongo.uri (mongo only), its database in the path.
    let uri_opts = obj(json!({"mongo.uri": format!("mongodb://127.0.0.1:{port}/{by_uri}")}));
    let cache = salt_returners::open_job_cache("mongo", &uri_opts).await.unwrap();
    cache.returner(&master_ret("20261125003808100459", "m1")).await.unwrap();
    assert_eq!(raw_docs(&raw_db(&server.0, &by_uri).await, "saltReturns", doc! {}).await.len(), 1);
    // Both: Salt's configuration error, at once.
    let both = obj(json!({"mongo.uri": "mongodb://127.0.0.1/x", "mongo.host": "127.0.0.1"}));
    let err = salt_returners::open_job_cache("mongo", &both).await.err().unwrap();
    assert!(matches!(err, ReturnerError::Invalid(_)) && err.to_string().contains("either uri or host"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_batch_goes_in_and_a_refused_document_sinks_alone() {
    let Some(server) = shared_server().await else { return };
    let name = fresh_db();
    let store = Mongo::open_with(config(&server.0, &name, Flavour::Future));
    let jid = "20261125003808100453";
    let big = "x".repeat(10 * 1024 * 1024);
    // A validator (a DBA's rule) refuses one document. (A real MongoDB also refuses documents
    // nested deeper than 100 levels; SecantusDB takes them.)
    let db = raw_db(&server.0, &name).await;
    db.create_collection("saltReturns").validator(doc! {"minion": {"$ne": "refused"}}).await.unwrap();
    let mut batch: Vec<Load> = (0..6).map(|i| obj(json!({"id": format!("big{i}"), "jid": jid, "fun": "cmd.run", "return": big}))).collect();
    // Past the first 48 MB message of the driver's: its index is mapped back all the same.
    batch.insert(5, obj(json!({"id": "refused", "jid": jid, "fun": "test.echo", "return": 1})));
    batch.push(obj(json!({"id": "small", "jid": jid, "fun": "test.ping", "return": true})));
    let refused = store.returner_batch(&batch).await.unwrap();
    assert_eq!(refused.iter().map(|r| r.index).collect::<Vec<_>>(), [5], "{refused:?}");
    assert!(refused[0].reason.starts_with("return of refused for 20261125003808100453: MongoDB refused it:"), "{refused:?}");
    let got = store.get_jid(jid).await.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["big0", "big1", "big2", "big3", "big4", "big5", "small"]);
    assert!(got.values().take(6).all(|r| r["return"].as_str().map(str::len) == Some(big.len())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_retried_and_nothing_is_lost() {
    let Some(mut server) = own_server().await else { return };
    let store = Mongo::open_with(config(&server.0, "salt", Flavour::Future));
    store.check().await.unwrap();
    let jid = "20261125003808100453";
    let batch: Vec<Load> = (0..5).map(|i| master_ret(jid, &format!("m{i}"))).collect();
    let server = tokio::task::spawn_blocking(move || {
        server.0.stop();
        server
    })
    .await
    .unwrap();
    let err = store.returner_batch(&batch).await.unwrap_err();
    assert!(err.retry_later(), "{err:?}");
    let line = err.to_string();
    assert!(line.starts_with("mongo: could not reach MongoDB at 127.0.0.1:") && !line.contains('\n'), "{line}");
    let mut server = server;
    let server = tokio::task::spawn_blocking(move || {
        server.0.start().unwrap();
        server
    })
    .await
    .unwrap();
    assert_eq!(store.returner_batch(&batch).await.unwrap(), []);
    assert_eq!(store.get_jid(jid).await.unwrap().len(), 5);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_server_is_one_clear_line() {
    // A port nothing listens on: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = obj(json!({"mongo.host": "127.0.0.1", "mongo.port": port, "mongo.password": "hunter2", "mongo.user": "salt"}));
    let store = salt_returners::open_sink("mongo", &Lookup::new(&opts)).await.unwrap();
    let started = std::time::Instant::now();
    let err = store.check().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    let line = err.to_string();
    assert!(
        err.retry_later() && line.starts_with(&format!("mongo: could not reach MongoDB at 127.0.0.1:{port}/salt within 10 s")),
        "{line}"
    );
    assert!(!line.contains("hunter2") && !line.contains('\n'), "{line}");
    let batch = store.returner_batch(&[master_ret("20261125003808100453", "m1")]).await.unwrap_err();
    assert!(batch.retry_later(), "{batch:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_one_clear_line_and_keeps_the_records() {
    let Some(server) = own_server().await else { return };
    // SecantusDB takes users made without auth, then asks for them once restarted with
    // `[server] auth = true` in the secantusd.toml of its working directory (its data dir).
    let admin = mongodb::Client::with_uri_str(server.0.url()).await.unwrap();
    admin.database("admin").run_command(doc! {"createUser": "salt", "pwd": "right-pw", "roles": ["root"]}).await.unwrap();
    drop(admin);
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.0.stop();
        std::fs::write(server.0.data_dir().join("secantusd.toml"), "[server]\nauth = true\n").unwrap();
        server.0.start().unwrap();
        server
    })
    .await
    .unwrap();
    let with = |user: Option<&str>, password: &str| {
        let mut c = config(&server.0, "salt", Flavour::Future);
        c.user = user.map(str::to_string);
        c.password = Secret::new(password);
        Mongo::open_with(c)
    };
    let ret = master_ret("20261125003808100453", "m1");

    let wrong = with(Some("salt"), "wrong-pw");
    let err = wrong.check().await.unwrap_err();
    let line = err.to_string();
    assert!(err.retry_later() && line.starts_with("mongo: could not log in to MongoDB at 127.0.0.1:"), "{line}");
    assert!(line.contains("\"salt\"") && !line.contains("wrong-pw") && !line.contains('\n'), "{line}");
    assert!(wrong.returner(&ret).await.unwrap_err().retry_later());

    let anonymous = with(None, "");
    let err = anonymous.check().await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("refused user \"(none)\""), "{err}");

    let right = with(Some("salt"), "right-pw");
    right.check().await.unwrap();
    right.returner(&ret).await.unwrap();
    assert_eq!(right.get_jid("20261125003808100453").await.unwrap().len(), 1);
}
