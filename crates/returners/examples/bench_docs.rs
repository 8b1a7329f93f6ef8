//! Document and HTTP store throughput as the master job cache: returns stored per second into
//! `mongo`, `etcd`, `couchdb` and `elasticsearch`.
//!
//! `cargo run --release -p salt-returners --example bench_docs -- [returns] [runs]`
//!
//! Each store runs on a private server that `saltrs_testkit::Server` starts (secantusd for
//! MongoDB, etcd, pouchdb-server for CouchDB, osmem-server for Elasticsearch). `returns` returns
//! of one job (default 1,000; master-side return loads, ~300 bytes) arrive together and are
//! timed until all are stored, three ways:
//! - **store**: `returner_batch` of all of them through the store opened by name
//!   (`open_job_cache`, as the master opens its job cache);
//! - **ceiling**: a raw client writing the same data, pre-serialised (the store's own encoders,
//!   or the documents the store wrote in a warm-up batch), in the server's fastest bulk way and
//!   nothing else:
//!   - mongo: the store's `saltReturns` documents (`_id` `<jid>:<minion>`) in one unordered
//!     `insert_many`;
//!   - etcd: the store's keys and values (per return its 11 `jobs/<jid>/<id>/<field>` keys,
//!     `minions/<id>` and `funs/<fun>/<id>`), as plain puts with no comparison. etcd allows
//!     128 operations per transaction (`--max-txn-ops`), but counts a nested transaction's
//!     operations only against what the levels above left, so the puts go nested (42 × 42 × 44
//!     a request at most) in requests of at most 1 MiB of keys and values: one or two
//!     `POST /v3/kv/txn`. The same puts in flat transactions of 128 are printed on a line of
//!     their own;
//!   - couchdb: the store's documents (`_id` `<jid>-<minion>`) in one `POST /<db>/_bulk_docs`;
//!   - elasticsearch: the documents the store writes (Salt's per-function document in
//!     `salt-cmd_run` and the job cache's copy in `salt-master-job-cache-returns`, both
//!     `_id` `<jid>:<minion>`) as `index` actions in one `POST /_bulk` (`refresh=false`);
//! - **Salt**: Salt's returner emulated in Rust, one request at a time on one kept connection:
//!   - mongo (`mongo_future`): per return an `insert_one` of Salt's `saltReturns` document
//!     `{minion, jid, return, fun, full_ret}`, and the `insert_one` into `jobs` of the load the
//!     master's `save_load` sends with each return;
//!   - etcd (`etcd_return`, over v3): per return a put of `minions/<id>`, one put per field
//!     under `jobs/<jid>/<id>/<field>`, and the `jobs/<jid>/.load.p` put of the master's
//!     `save_load`;
//!   - couchdb (`couchdb_return`): per return one `PUT /<db>/<_id>` of its document, what the
//!     module means to do (Salt's also sends a `GET /_all_dbs` before each, not counted here;
//!     its `_id` is the jid, so all but the first would conflict: the store's ids are used);
//!   - elasticsearch (`elasticsearch_return`): per return one index request of Salt's
//!     per-function document under a server-made id, and the `save_load` index request of
//!     `{jid, load}` under the jid into `salt-master-job-cache` (Salt's also asks whether the
//!     index exists before each, and its execution module makes a new client per call; not
//!     counted here).
//!
//! Before the runs the store writes one untimed batch (its database, design documents and
//! indices are made then, as on a running master). Each figure is the median of `runs` runs
//! (default 5); the store is emptied before every run (mongo: the database dropped; etcd: the
//! key range deleted and compacted; couchdb: the database dropped and made again with the
//! store's design documents; elasticsearch: the indices dropped and made again with the
//! definitions the store gave them), and the stored returns are counted after it through the
//! raw client. etcd runs without leases (the options carry no `keep_jobs_seconds`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use mongodb::bson::{doc, Bson, Document, RawDocumentBuf};
use salt_returners::etcd::encode::{encode_value, prefix_end, Layout, ReturnKeys};
use salt_returners::record::ReturnRecord;
use salt_returners::{JobCache, Load};
use saltrs_testkit::Server;
use serde_json::{json, Value};

/// A return as the master hands it to the job cache.
fn master_return(jid: &str, n: usize) -> Load {
    let v = json!({"cmd": "_return", "id": format!("minion{n:04}"), "success": true,
        "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "user": "root",
        "_stamp": "2026-11-25T00:39:16.909909+00:00", "ts": 1795567156});
    v.as_object().unwrap().clone()
}

const JID: &str = "20261125003916657727";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:>9.0}/s ({:>7.1} ms)", n as f64 / d.as_secs_f64(), d.as_secs_f64() * 1000.0)
}

/// The line of one store: the three medians, and the store's and Salt's share of the ceiling.
fn report(name: &str, n: usize, times: [Vec<Duration>; 3]) {
    let [store, ceiling, salt] = times.map(median);
    let share = |d: Duration| ceiling.as_secs_f64() / d.as_secs_f64();
    println!(
        "{name:<13} store {}   ceiling {}   Salt {}   store/ceiling {:.2}  Salt/ceiling {:.3}",
        rate(n, store),
        rate(n, ceiling),
        rate(n, salt),
        share(store),
        share(salt)
    );
}

async fn start(server: fn() -> Option<Server>) -> Option<Server> {
    tokio::task::spawn_blocking(server).await.unwrap()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Sends `req`; its JSON answer (`Null` when not JSON), after checking its status.
async fn send(req: reqwest::RequestBuilder) -> Value {
    let answer = req.send().await.unwrap();
    let status = answer.status();
    let body = answer.bytes().await.unwrap();
    assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body[..body.len().min(2000)]));
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// Sends `req` and reads its answer; the status is checked, the body left unparsed.
async fn send_quiet(req: reqwest::RequestBuilder) {
    let answer = req.send().await.unwrap();
    let status = answer.status();
    let body = answer.bytes().await.unwrap();
    assert!(status.is_success(), "{status}: {}", String::from_utf8_lossy(&body[..body.len().min(2000)]));
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn bench_mongo(n: usize, runs: usize) {
    let Some(server) = start(Server::mongo).await else { return };
    let opts = obj(json!({"mongo.host": "127.0.0.1", "mongo.port": server.port(), "mongo.db": "salt"}));
    let store: Arc<dyn JobCache> = salt_returners::open_job_cache("mongo", &opts).await.unwrap();
    let client = mongodb::Client::with_uri_str(server.url()).await.unwrap();
    let db = client.database("salt");
    let rets: Vec<Load> = (0..n).map(|i| master_return(JID, i)).collect();
    // The ceiling's documents: the store's own, serialised.
    let docs: Vec<RawDocumentBuf> = rets
        .iter()
        .map(|r| salt_returners::mongo::encode::return_document(&ReturnRecord::parse(r).unwrap().unwrap()).unwrap().doc)
        .collect();
    // Salt's: `saltReturns` without an `_id` (the driver makes an ObjectId), and the load.
    let bson_map = |m: &Load| match salt_returners::mongo::encode::to_bson(&Value::Object(m.clone())).unwrap() {
        Bson::Document(d) => d,
        _ => unreachable!("a map"),
    };
    let salt_docs: Vec<(Document, Document)> = rets
        .iter()
        .map(|r| {
            let full = bson_map(r);
            let ret = doc! {"minion": r["id"].as_str().unwrap(), "jid": JID, "return": full.get("return").unwrap().clone(),
            "fun": r["fun"].as_str().unwrap(), "full_ret": full.clone()};
            (ret, full)
        })
        .collect();
    let returns = db.collection::<RawDocumentBuf>("saltReturns");
    let (salt_returns, jobs) = (db.collection::<Document>("saltReturns"), db.collection::<Document>("jobs"));
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            db.drop().await.unwrap();
            let started = Instant::now();
            match mode {
                0 => assert_eq!(store.returner_batch(&rets).await.unwrap(), []),
                1 => {
                    returns.insert_many(&docs).ordered(false).await.unwrap();
                }
                _ => {
                    for (ret, load) in &salt_docs {
                        salt_returns.insert_one(ret).await.unwrap();
                        jobs.insert_one(load).await.unwrap();
                    }
                }
            }
            t.push(started.elapsed());
            assert_eq!(salt_returns.count_documents(doc! {"jid": JID}).await.unwrap(), n as u64);
            if mode == 2 {
                assert_eq!(jobs.count_documents(doc! {}).await.unwrap(), n as u64);
            }
        }
    }
    report("mongo", n, times);
}

/// etcd's JSON gateway.
struct Etcd {
    http: reqwest::Client,
    base: String,
}

impl Etcd {
    async fn post(&self, path: &str, body: String) -> Value {
        send(self.http.post(format!("{}{path}", self.base)).body(body)).await
    }

    /// How many keys start with `prefix`.
    async fn count(&self, prefix: &[u8]) -> usize {
        let body = json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix)), "count_only": true});
        let answer = self.post("/v3/kv/range", body.to_string()).await;
        answer["count"].as_str().map_or(0, |c| c.parse().unwrap())
    }

    /// Deletes every key under `prefix`, and compacts the history away.
    async fn clear(&self, prefix: &[u8]) {
        let body = json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix))});
        let answer = self.post("/v3/kv/deleterange", body.to_string()).await;
        let revision = answer["header"]["revision"].as_str().unwrap().to_string();
        // Refused only when nothing was written since the last compaction: nothing to do.
        let body = json!({"revision": revision, "physical": true}).to_string();
        self.http.post(format!("{}/v3/kv/compaction", self.base)).body(body).send().await.unwrap();
    }
}

fn put(key: &[u8], value: &[u8]) -> Value {
    json!({"request_put": {"key": B64.encode(key), "value": B64.encode(value)}})
}

fn txn(ops: Vec<Value>) -> Value {
    json!({"request_txn": {"success": ops}})
}

fn groups(ops: Vec<Value>, size: usize) -> Vec<Vec<Value>> {
    let mut out = Vec::new();
    let mut it = ops.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

/// One `/v3/kv/txn` body of `puts`, nested so that no level exceeds etcd's 128 operations: a
/// nested transaction may hold what the levels above left (128 − theirs).
fn nested_txn(puts: Vec<Value>) -> String {
    let top = match puts.len() {
        0..=128 => puts,
        129..=4096 => groups(puts, 64).into_iter().map(txn).collect(),
        len => {
            assert!(len <= 42 * 42 * 44, "too many puts for one request");
            let inner: Vec<Value> = groups(puts, 44).into_iter().map(txn).collect();
            groups(inner, 42).into_iter().map(txn).collect()
        }
    };
    json!({ "success": top }).to_string()
}

async fn bench_etcd(n: usize, runs: usize) {
    let Some(server) = start(Server::etcd).await else { return };
    let opts = obj(json!({"etcd.host": "127.0.0.1", "etcd.port": server.port()}));
    let store: Arc<dyn JobCache> = salt_returners::open_job_cache("etcd", &opts).await.unwrap();
    let etcd = Etcd { http: http(), base: server.url() };
    let layout = Layout::new(salt_returners::etcd::config::DEFAULT_ROOT);
    let root = b"/salt/return/".to_vec();
    let job = layout.job(JID);
    let rets: Vec<Load> = (0..n).map(|i| master_return(JID, i)).collect();
    let keys: Vec<ReturnKeys> = rets.iter().map(|r| ReturnKeys::new(&layout, r, true).unwrap().unwrap()).collect();
    let fields_per_return = keys[0].fields.len();
    // The ceiling: every key and value the store writes, as plain puts.
    let mut kvs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for k in &keys {
        kvs.extend(k.fields.iter().cloned());
        kvs.push((layout.minion(&k.id), k.minion_value.clone()));
        kvs.push((layout.latest(k.fun.as_deref().unwrap(), &k.id), k.jid.as_bytes().to_vec()));
    }
    let mut nested: Vec<String> = Vec::new();
    let (mut request, mut bytes) = (Vec::new(), 0);
    for (k, v) in &kvs {
        if bytes + k.len() + v.len() > 1024 * 1024 || request.len() == 42 * 42 * 44 {
            nested.push(nested_txn(std::mem::take(&mut request)));
            bytes = 0;
        }
        bytes += k.len() + v.len();
        request.push(put(k, v));
    }
    nested.push(nested_txn(request));
    let flat: Vec<String> =
        groups(kvs.iter().map(|(k, v)| put(k, v)).collect(), 128).into_iter().map(|ops| json!({ "success": ops }).to_string()).collect();
    // Salt's: per return `minions/<id>`, each field, and the load `save_load` writes.
    let mut salt_puts: Vec<String> = Vec::new();
    for (k, r) in keys.iter().zip(&rets) {
        let single = |key: &[u8], value: &[u8]| json!({"key": B64.encode(key), "value": B64.encode(value)}).to_string();
        salt_puts.push(single(&layout.minion(&k.id), &k.minion_value));
        salt_puts.extend(k.fields.iter().map(|(key, value)| single(key, value)));
        salt_puts.push(single(&layout.load(JID), &encode_value(&salt_returners::json::dumps_map(r), true)));
    }
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    let mut times: [Vec<Duration>; 4] = Default::default();
    for _ in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            etcd.clear(&root).await;
            let started = Instant::now();
            match mode {
                0 => assert_eq!(store.returner_batch(&rets).await.unwrap(), []),
                1 => {
                    for body in &nested {
                        send_quiet(etcd.http.post(format!("{}/v3/kv/txn", etcd.base)).body(body.clone())).await;
                    }
                }
                2 => {
                    for body in &salt_puts {
                        send_quiet(etcd.http.post(format!("{}/v3/kv/put", etcd.base)).body(body.clone())).await;
                    }
                }
                _ => {
                    for body in &flat {
                        send_quiet(etcd.http.post(format!("{}/v3/kv/txn", etcd.base)).body(body.clone())).await;
                    }
                }
            }
            t.push(started.elapsed());
            let load = usize::from(mode == 2);
            assert_eq!(etcd.count(&job).await, n * fields_per_return + load);
            assert_eq!(etcd.count(&layout.minions()).await, n);
        }
    }
    let [store_t, ceiling, salt, flat_t] = times;
    println!(
        "              ({} puts in {} nested txn request(s); flat txns of 128: {} requests, {})",
        kvs.len(),
        nested.len(),
        flat.len(),
        rate(n, median(flat_t))
    );
    report("etcd", n, [store_t, ceiling, salt]);
}

async fn bench_couchdb(n: usize, runs: usize) {
    use salt_returners::couchdb::encode::{jobs_design, salt_design, ReturnDoc, JOBS_DESIGN, SALT_DESIGN};
    let Some(server) = start(Server::couchdb).await else { return };
    let base = server.url();
    let opts = obj(json!({"couchdb.url": format!("{base}/"), "couchdb.db": "salt"}));
    let store: Arc<dyn JobCache> = salt_returners::open_job_cache("couchdb", &opts).await.unwrap();
    let http = http();
    let rets: Vec<Load> = (0..n).map(|i| master_return(JID, i)).collect();
    let timestamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let docs: Vec<(String, String)> =
        rets.iter().map(|r| ReturnDoc::new(r, timestamp).unwrap().unwrap().docs.into_iter().next().unwrap()).collect();
    let texts: Vec<&str> = docs.iter().map(|(_, text)| text.as_str()).collect();
    let bulk = bytes::Bytes::from(format!("{{\"docs\": [{}]}}", texts.join(", ")));
    let salt_puts: Vec<(String, bytes::Bytes)> =
        docs.iter().map(|(id, text)| (format!("{base}/salt/{id}"), bytes::Bytes::from(text.clone()))).collect();
    let (h, b) = (&http, &base);
    let count = move || async move {
        let url = format!("{b}/salt/_all_docs?startkey=%22{JID}-%22&endkey=%22{JID}.%22");
        send(h.get(url)).await["rows"].as_array().map_or(0, Vec::len)
    };
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            // A new database, with the design documents the store made (the store knows it
            // has them: it makes them once per process).
            send(http.delete(format!("{base}/salt"))).await;
            send(http.put(format!("{base}/salt"))).await;
            for (id, design) in [(SALT_DESIGN, salt_design()), (JOBS_DESIGN, jobs_design())] {
                send(http.put(format!("{base}/salt/{id}")).json(&design)).await;
            }
            let started = Instant::now();
            match mode {
                0 => assert_eq!(store.returner_batch(&rets).await.unwrap(), []),
                1 => {
                    let answer = http
                        .post(format!("{base}/salt/_bulk_docs"))
                        .header("content-type", "application/json")
                        .body(bulk.clone())
                        .send()
                        .await
                        .unwrap();
                    assert!(answer.status().is_success());
                    answer.bytes().await.unwrap();
                }
                _ => {
                    for (url, body) in &salt_puts {
                        send_quiet(http.put(url).header("content-type", "application/json").body(body.clone())).await;
                    }
                }
            }
            t.push(started.elapsed());
            assert_eq!(count().await, n);
        }
    }
    report("couchdb", n, times);
}

async fn bench_elasticsearch(n: usize, runs: usize) {
    let Some(server) = start(Server::elasticsearch).await else { return };
    let base = server.url();
    let opts = obj(json!({"elasticsearch.hosts": [base], "elasticsearch.timeout": 60}));
    let store: Arc<dyn JobCache> = salt_returners::open_job_cache("elasticsearch", &opts).await.unwrap();
    let http = http();
    let rets: Vec<Load> = (0..n).map(|i| master_return(JID, i)).collect();
    let (per_function, returns, jobs) = ("salt-cmd_run", "salt-master-job-cache-returns", "salt-master-job-cache");
    // The warm-up makes the job cache's indices (check) and Salt's per-function one (the batch).
    store.check().await.unwrap();
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    // What the store made: each index's definition, to make it again empty before each run,
    // and the documents it wrote, for the ceiling and Salt's way.
    let mut definitions = Vec::new();
    for alias in [per_function, returns, jobs] {
        let index = format!("{alias}-v1");
        let got = send(http.get(format!("{base}/{index}"))).await;
        let got = &got[&index];
        let settings = &got["settings"]["index"];
        let definition = json!({
            "settings": {"number_of_shards": settings["number_of_shards"], "number_of_replicas": settings["number_of_replicas"]},
            "mappings": got["mappings"],
            "aliases": got["aliases"],
        });
        definitions.push((index, definition));
    }
    send(http.post(format!("{base}/_refresh"))).await;
    let found =
        send(http.post(format!("{base}/{per_function},{returns}/_search")).json(&json!({"size": 2 * n + 10, "query": {"match_all": {}}})))
            .await;
    let hits = found["hits"]["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2 * n, "the store's documents");
    let mut bulk = String::new();
    let mut salt_requests: Vec<(String, String)> = Vec::new();
    for hit in hits {
        let (index, id, source) = (hit["_index"].as_str().unwrap(), &hit["_id"], &hit["_source"]);
        bulk.push_str(&format!("{}\n{source}\n", json!({"index": {"_index": index, "_id": id}})));
        if index.starts_with(per_function) {
            salt_requests.push((format!("{base}/{per_function}/_doc"), source.to_string()));
            let load = rets.iter().find(|r| r["id"] == source["minion"]).unwrap();
            salt_requests.push((format!("{base}/{jobs}/_doc/{JID}"), json!({"jid": JID, "load": load}).to_string()));
        }
    }
    let bulk = bytes::Bytes::from(bulk);
    let (h, b) = (&http, &base);
    let count =
        move |index: &'static str| async move { send(h.get(format!("{b}/{index}/_count"))).await["count"].as_u64().unwrap() as usize };
    let mut times: [Vec<Duration>; 3] = Default::default();
    for _ in 0..runs {
        for (mode, t) in times.iter_mut().enumerate() {
            for (index, definition) in &definitions {
                send(http.delete(format!("{base}/{index}"))).await;
                send(http.put(format!("{base}/{index}")).json(definition)).await;
            }
            let started = Instant::now();
            let mut answer = None;
            match mode {
                0 => assert_eq!(store.returner_batch(&rets).await.unwrap(), []),
                1 => {
                    let r = http
                        .post(format!("{base}/_bulk?refresh=false"))
                        .header("content-type", "application/x-ndjson")
                        .body(bulk.clone())
                        .send()
                        .await
                        .unwrap();
                    answer = Some((r.status(), r.bytes().await.unwrap()));
                }
                _ => {
                    for (i, (url, body)) in salt_requests.iter().enumerate() {
                        let req = if i % 2 == 0 { http.post(url) } else { http.put(url) };
                        send_quiet(req.header("content-type", "application/json").body(body.clone())).await;
                    }
                }
            }
            t.push(started.elapsed());
            if let Some((status, body)) = answer {
                let v: Value = serde_json::from_slice(&body).unwrap();
                assert!(status.is_success() && v["errors"] == json!(false), "{status}: {v}");
            }
            send(http.post(format!("{base}/_refresh"))).await;
            assert_eq!(count(per_function).await, n);
            if mode < 2 {
                assert_eq!(count(returns).await, n);
            }
        }
    }
    report("elasticsearch", n, times);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("[returns] [runs]")).collect();
    let (n, runs) = (args.first().copied().unwrap_or(1000), args.get(1).copied().unwrap_or(5));
    println!("{n} returns of one job arriving together, median of {runs} runs");
    bench_mongo(n, runs).await;
    bench_etcd(n, runs).await;
    bench_couchdb(n, runs).await;
    bench_elasticsearch(n, runs).await;
}
