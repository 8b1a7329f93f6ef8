//! The conformance suites against `elasticsearch` on an osmem-server (OpenSearch's REST API, in
//! memory), then what is particular to it: Salt's indices and documents, every event of a batch,
//! writes repeated without duplicates, a batch over the server's request limit, a document over
//! it, an outage, a second host, an index Salt's own returner made, a wrong password (a local
//! server that answers 401: osmem has no authentication) and no server at all.

#[macro_use]
mod suite;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use salt_returners::elasticsearch::Elasticsearch;
use salt_returners::options::Lookup;
use salt_returners::{Event, JobCache, Load, ReturnerError, Sink};
use saltrs_testkit::Server;
use serde_json::{json, Map, Value};
use suite::{Ager, Backend, Traits};

/// One server for the conformance cases, each on indices of its own (a server per case would
/// be some thirty servers at once).
static SHARED: OnceLock<Option<Server>> = OnceLock::new();
static CASE: AtomicUsize = AtomicUsize::new(0);

async fn shared_url() -> Option<String> {
    tokio::task::spawn_blocking(|| SHARED.get_or_init(Server::elasticsearch).as_ref().map(Server::url)).await.unwrap()
}

/// A server of the test's own (for the cases that look at Salt's fixed index names or stop it).
async fn own_server() -> Option<Server> {
    tokio::task::spawn_blocking(Server::elasticsearch).await.unwrap()
}

/// The store with `options` under `elasticsearch:`. Requests get a minute (Salt's 10 s is the
/// default): on a loaded two-core machine, a server busy with another case's 100 MB may stall
/// that long.
fn open(options: Value) -> Elasticsearch {
    let mut options = obj(options);
    options.entry("timeout").or_insert(json!(60));
    Elasticsearch::open(&Lookup::new(&obj(json!({ "elasticsearch": options })))).unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

/// A client for looking at what the store wrote.
fn raw() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn get(url: &str) -> (u16, Value) {
    let r = raw().get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(url: &str, body: Value) -> Value {
    raw().post(url).json(&body).send().await.unwrap().json().await.unwrap()
}

/// The documents of `index` (refreshed first), in `_id` order.
async fn docs(url: &str, index: &str) -> Vec<Value> {
    raw().post(format!("{url}/{index}/_refresh")).send().await.unwrap();
    let found = post(&format!("{url}/{index}/_search"), json!({"size": 1000, "query": {"match_all": {}}})).await;
    let mut hits = found["hits"]["hits"].as_array().cloned().unwrap_or_default();
    hits.sort_by(|a, b| a["_id"].as_str().cmp(&b["_id"].as_str()));
    hits
}

/// Makes every return the job cache holds `secs` seconds older (osmem runs no update
/// scripts: the documents are written again with an older `@timestamp`).
fn ager(url: String, returns: String) -> Ager {
    Box::new(move |secs| {
        let (url, returns) = (url.clone(), returns.clone());
        Box::pin(async move {
            let mut body = String::new();
            for hit in docs(&url, &returns).await {
                let mut source = hit["_source"].clone();
                let stored = chrono::DateTime::parse_from_rfc3339(source["@timestamp"].as_str().unwrap()).unwrap();
                source["@timestamp"] = json!((stored - chrono::Duration::seconds(secs as i64)).to_rfc3339());
                body.push_str(&format!("{}\n{source}\n", json!({"index": {"_index": hit["_index"], "_id": hit["_id"]}})));
            }
            if !body.is_empty() {
                let r = raw()
                    .post(format!("{url}/_bulk?refresh=true"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
            }
        })
    })
}

async fn elasticsearch() -> Option<Backend> {
    let url = shared_url().await?;
    let n = CASE.fetch_add(1, Ordering::Relaxed);
    let jobs = format!("case{n}-jobs");
    let store = open(json!({"hosts": [url], "master_job_cache_index": jobs, "master_event_index": format!("case{n}-events")}));
    let age = ager(url, format!("{jobs}-returns"));
    Some(Backend { store: Arc::new(store), _guard: Box::new(()), traits: Traits::ELASTICSEARCH, age: Some(age) })
}

conformance!(elasticsearch, elasticsearch);

const JID: &str = "20240510093015123456";
const JID2: &str = "20240510093015123457";

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
}

fn without_timestamp(mut doc: Value) -> Value {
    doc.as_object_mut().unwrap().remove("@timestamp");
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_indices_and_documents() {
    let Some(server) = own_server().await else { return };
    let url = server.url();
    let store = open(json!({"hosts": [url]}));
    store.check().await.unwrap();
    let batch = [
        ret(JID, "web1", "test.ping", json!(true)),
        ret(JID, "web2", "test.ping", json!(true)),
        ret(JID2, "web1", "cmd.run", json!({"a.b": {"c": 1, "d.e": 2, "f.g": 3}, "x:y/z$": "'\"😀"})),
    ];
    assert_eq!(store.returner_batch(&batch).await.unwrap(), []);
    // Written again (the spool retries after a lost answer): nothing twice.
    assert_eq!(store.returner_batch(&batch).await.unwrap(), []);

    // salt-<fun> is an alias of salt-<fun>-v1, made with Salt's settings.
    let (_, alias) = get(&format!("{url}/_alias/salt-test_ping")).await;
    assert_eq!(alias, json!({"salt-test_ping-v1": {"aliases": {"salt-test_ping": {}}}}));
    let (_, settings) = get(&format!("{url}/salt-test_ping-v1/_settings")).await;
    assert_eq!(settings["salt-test_ping-v1"]["settings"]["index"]["number_of_shards"], "1");
    assert_eq!(settings["salt-test_ping-v1"]["settings"]["index"]["number_of_replicas"], "0");
    let pings = docs(&url, "salt-test_ping").await;
    assert_eq!(pings.len(), 2);
    assert_eq!(
        without_timestamp(pings[0]["_source"].clone()),
        json!({"success": true, "retcode": 0, "minion": "web1", "fun": "test.ping", "jid": JID, "counts": {}, "data": true})
    );
    let stamp = pings[0]["_source"]["@timestamp"].as_str().unwrap();
    assert!(stamp.ends_with("+00:00") && chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{stamp}");
    let runs = docs(&url, "salt-cmd_run").await;
    assert_eq!(
        runs[0]["_source"]["data"],
        json!({"_orig_key": "a.b", "a_b": {"c": 1, "_orig_key": ["d.e", "f.g"], "d_e": 2, "f_g": 3}, "x:y/z$": "'\"😀"})
    );
    // The job cache's copy is the return as it came.
    assert_eq!(store.get_jid(JID2).await.unwrap()["web1"], Value::Object(batch[2].clone()));

    // A job: Salt's {"jid", "load"} under id jid, in salt-master-job-cache.
    let load = obj(json!({"cmd": "publish", "tgt": "web*", "fun": "test.ping", "arg": [], "tgt_type": "glob", "jid": JID, "user": "root"}));
    store.save_load(JID, &load, Some(&["web1".into(), "web2".into()])).await.unwrap();
    let (_, job) = get(&format!("{url}/salt-master-job-cache/_doc/{JID}")).await;
    assert_eq!(
        (job["_index"].clone(), job["_source"]["jid"].clone(), job["_source"]["load"].clone()),
        (json!("salt-master-job-cache-v1"), json!(JID), Value::Object(load.clone()))
    );
    assert_eq!(store.get_load(JID).await.unwrap(), Some(load));

    // Every event of a batch (Salt indexed the last one only), once however often it is written.
    let events: Vec<Event> = (0..3)
        .map(|i| Event {
            tag: format!("salt/job/{JID}/ret/web{i}"),
            data: json!({"_stamp": "2024-05-10T09:30:15.402113", "id": format!("web{i}")}),
        })
        .collect();
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    let stored = docs(&url, "salt-master-event-cache").await;
    let mut tags: Vec<&str> = stored.iter().map(|d| d["_source"]["tag"].as_str().unwrap()).collect();
    tags.sort();
    assert_eq!(tags, [format!("salt/job/{JID}/ret/web0"), format!("salt/job/{JID}/ret/web1"), format!("salt/job/{JID}/ret/web2")]);
    assert_eq!(stored[0]["_source"].as_object().unwrap().keys().collect::<Vec<_>>(), ["tag", "data"]);

    // The options that change index names and state documents.
    let states = json!({
        "pkg_|-vim_|-vim_|-installed": {"result": false, "__run_num__": 1, "comment": "no such package"},
        "file_|-motd_|-/etc/motd_|-managed": {"result": true, "__run_num__": 0},
    });
    let dated = open(json!({"hosts": [url], "index_date": true, "states_single_index": true, "states_order_output": true,
                            "states_count": true, "number_of_shards": 2, "functions_blacklist": ["test.ping"]}));
    let batch = [ret(JID, "web1", "state.sls", states.clone()), ret(JID, "web1", "test.ping", json!(true))];
    assert_eq!(dated.returner_batch(&batch).await.unwrap(), []);
    let ordered = docs(&url, "salt-state_apply-2024.05.10-ordered").await;
    assert_eq!(ordered.len(), 1);
    assert_eq!(ordered[0]["_index"], "salt-state_apply-2024.05.10-ordered-v1");
    assert_eq!(ordered[0]["_source"]["counts"], json!({"succeeded": 1, "failed": 1}));
    assert_eq!(ordered[0]["_source"]["success"], true);
    let data = ordered[0]["_source"]["data"].as_object().unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["1_|-pkg_|-vim_|-vim_|-installed", "0_|-file_|-motd_|-/etc/motd_|-managed"]);
    assert_eq!(data["1_|-pkg_|-vim_|-vim_|-installed"]["_func"], "pkg.installed");
    let (_, settings) = get(&format!("{url}/salt-state_apply-2024.05.10-ordered-v1/_settings")).await;
    assert_eq!(settings["salt-state_apply-2024.05.10-ordered-v1"]["settings"]["index"]["number_of_shards"], "2");
    // Blacklisted: no per-function document, but the job cache has the return.
    let (status, _) = get(&format!("{url}/salt-test_ping-2024.05.10")).await;
    assert_eq!(status, 404);
    assert_eq!(dated.get_jid(JID).await.unwrap()["web1"]["return"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clash_in_salts_per_function_index_costs_no_return() {
    let Some(url) = shared_url().await else { return };
    let store = open(json!({"hosts": [url], "master_job_cache_index": "clash-jobs"}));
    let jid = "20240510093016000001";
    // The first return maps `data.x` as a number; the second's `x` is a map, which the
    // server refuses in that index (Salt loses the return).
    assert_eq!(store.returner_batch(&[ret(jid, "m1", "clash.fun", json!({"x": 1}))]).await.unwrap(), []);
    assert_eq!(store.returner_batch(&[ret(jid, "m2", "clash.fun", json!({"x": {"y": 2}}))]).await.unwrap(), []);
    assert_eq!(docs(&url, "salt-clash_fun").await.len(), 1);
    let got = store.get_jid(jid).await.unwrap();
    assert_eq!((got["m1"]["return"].clone(), got["m2"]["return"].clone()), (json!({"x": 1}), json!({"x": {"y": 2}})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_servers_request_limit_is_split() {
    // A server of its own: the 120 MiB would slow the others' cases.
    let Some(server) = own_server().await else { return };
    let url = server.url();
    let store = open(json!({"hosts": [url], "master_job_cache_index": "split-jobs"}));
    let jid = "20240510093017000001";
    // 60 returns of 1 MiB, each also in its per-function document: 120 MiB, over osmem's (and
    // Elasticsearch's default) 100 MB request limit.
    let big = "x".repeat(1024 * 1024);
    let batch: Vec<Load> = (0..60).map(|i| ret(jid, &format!("m{i:02}"), "split.fun", json!(big))).collect();
    assert_eq!(store.returner_batch(&batch).await.unwrap(), []);
    let got = store.get_jid(jid).await.unwrap();
    assert_eq!(got.len(), 60);
    assert!(got.values().all(|r| r["return"].as_str().map(str::len) == Some(big.len())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_over_the_servers_request_limit_is_refused_alone() {
    let Some(server) = own_server().await else { return };
    let url = server.url();
    let store = open(json!({"hosts": [url], "master_job_cache_index": "huge-jobs"}));
    let jid = "20240510093018000001";
    let huge = "x".repeat(101 * 1024 * 1024);
    let batch =
        [ret(jid, "small", "huge.fun", json!(1)), ret(jid, "huge", "huge.fun", json!(huge)), ret(jid, "small2", "huge.fun", json!(2))];
    let rejected = store.returner_batch(&batch).await.unwrap();
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1], "{rejected:?}");
    assert!(rejected[0].reason.contains("return of huge for") && rejected[0].reason.contains("413"), "{}", rejected[0].reason);
    assert_eq!(store.get_jid(jid).await.unwrap().keys().collect::<Vec<_>>(), ["small", "small2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_loses_nothing_and_the_indices_come_back() {
    let Some(mut server) = own_server().await else { return };
    let url = server.url();
    let store = open(json!({"hosts": [url]}));
    assert_eq!(store.returner_batch(&[ret(JID, "m1", "test.ping", json!(true))]).await.unwrap(), []);
    let mut server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    let down = store.returner_batch(&[ret(JID, "m2", "test.ping", json!(true))]).await.unwrap_err();
    assert!(down.retry_later() && down.to_string().starts_with("elasticsearch: cannot connect at http://127.0.0.1:"), "{down}");
    // osmem comes back empty: the indices are made again (with their aliases and mappings),
    // not guessed by the server from the first document.
    let server = tokio::task::spawn_blocking(move || {
        server.start().unwrap();
        server
    })
    .await
    .unwrap();
    assert_eq!(store.returner_batch(&[ret(JID, "m2", "test.ping", json!(true))]).await.unwrap(), []);
    let (_, alias) = get(&format!("{url}/_alias/salt-master-job-cache-returns")).await;
    assert_eq!(alias, json!({"salt-master-job-cache-returns-v1": {"aliases": {"salt-master-job-cache-returns": {}}}}));
    let (_, mapping) = get(&format!("{url}/salt-master-job-cache-returns-v1/_mapping")).await;
    assert_eq!(mapping["salt-master-job-cache-returns-v1"]["mappings"]["properties"]["full_ret"]["enabled"], false);
    assert_eq!(store.get_jid(JID).await.unwrap().keys().collect::<Vec<_>>(), ["m2"]);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_does_not_answer_is_passed_over() {
    let Some(url) = shared_url().await else { return };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = open(json!({"hosts": [format!("127.0.0.1:{closed}"), url], "master_job_cache_index": "failover-jobs"}));
    store.check().await.unwrap();
    assert_eq!(store.returner_batch(&[ret(JID, "m1", "test.ping", json!(true))]).await.unwrap(), []);
    assert_eq!(store.get_jid(JID).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_a_job_index_salts_returner_made() {
    let Some(url) = shared_url().await else { return };
    // Salt's returner: the index with settings only, then {"jid", "load"} mapped dynamically.
    raw().put(format!("{url}/saltmade-jobs-v1")).json(&json!({"aliases": {"saltmade-jobs": {}}})).send().await.unwrap();
    raw().put(format!("{url}/saltmade-jobs/_doc/{JID}")).json(&json!({"jid": JID, "load": {"fun": "test.ping"}})).send().await.unwrap();
    let store = open(json!({"hosts": [url], "master_job_cache_index": "saltmade-jobs"}));
    let err = store.check().await.unwrap_err().to_string();
    assert!(err.contains("index saltmade-jobs") && err.contains("maps jid as text") && err.contains("master_job_cache_index"), "{err}");
}

/// A local server that answers every request `401` as Elasticsearch's security does, and keeps
/// the `Authorization` headers it got; over TLS with `tls`.
async fn refusing_server(tls: Option<tokio_rustls::TlsAcceptor>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else { return };
            let (log, tls) = (log.clone(), tls.clone());
            tokio::spawn(async move {
                match tls {
                    Some(tls) => {
                        if let Ok(sock) = tls.accept(sock).await {
                            refuse(sock, log).await;
                        }
                    }
                    None => refuse(sock, log).await,
                }
            });
        }
    });
    (port, seen)
}

/// Reads one request (noting its `Authorization`) and answers 401.
async fn refuse(mut sock: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin, log: Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::new();
    let mut buf = [0u8; 65536];
    // The head, then as much body as it announces.
    let head_end = loop {
        let n = sock.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        request.extend_from_slice(&buf[..n]);
        if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let mut length = 0;
    for line in head.lines() {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("authorization:") {
            log.lock().unwrap().push(line["authorization:".len()..].trim().to_string());
        }
    }
    while request.len() < head_end + length {
        let n = sock.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let body = r#"{"error":{"root_cause":[{"type":"security_exception","reason":"unable to authenticate user [salt] for REST request [/]"}],"type":"security_exception","reason":"unable to authenticate user [salt] for REST request [/]"},"status":401}"#;
    let answer = format!(
        "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\nwww-authenticate: Basic realm=\"security\"\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(answer.as_bytes()).await;
    let _ = sock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_one_clear_line_and_loses_nothing() {
    let (port, seen) = refusing_server(None).await;
    let store = open(json!({"hosts": [format!("127.0.0.1:{port}")], "username": "salt", "password": "hunter2"}));
    let err = store.check().await.unwrap_err();
    let text = err.to_string();
    assert!(err.retry_later(), "{text}");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!(
            "elasticsearch: http://127.0.0.1:{port} refused the login (401 Unauthorized); check the store's user and password"
        )),
        "{text}"
    );
    assert!(text.contains("unable to authenticate user [salt]") && !text.contains("hunter2"), "{text}");
    // Returns and events are not refused for good: the spool keeps them for later.
    let write = store.returner_batch(&[ret(JID, "m1", "test.ping", json!(true))]).await.unwrap_err();
    assert!(matches!(write, ReturnerError::Unavailable(_)), "{write:?}");
    let events = store.event_return(&[Event { tag: "salt/auth".into(), data: json!({}) }]).await.unwrap_err();
    assert!(events.retry_later(), "{events}");
    assert!(store.get_jid(JID).await.unwrap_err().retry_later());
    // The credentials went as basic auth.
    let sent = seen.lock().unwrap().clone();
    assert!(!sent.is_empty() && sent.iter().all(|h| h == "Basic c2FsdDpodW50ZXIy"), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_one_clear_line_and_loses_nothing() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store = open(json!({"hosts": [format!("http://salt:hunter2@127.0.0.1:{closed}")]}));
    let err = store.check().await.unwrap_err();
    let text = err.to_string();
    assert!(err.retry_later() && text.lines().count() == 1 && text.contains("Connection refused"), "{text}");
    assert!(
        text.starts_with(&format!("elasticsearch: cannot connect at http://127.0.0.1:{closed}")) && !text.contains("hunter2"),
        "{text}"
    );
    let write = store.returner_batch(&[ret(JID, "m1", "test.ping", json!(true))]).await.unwrap_err();
    assert!(write.retry_later(), "{write}");
    assert!(store.save_load(JID, &Map::new(), None).await.unwrap_err().retry_later());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opened_by_name_with_salts_options() {
    // Opening makes no connection: a master starts while its cluster is down.
    let opts = obj(json!({"elasticsearch.hosts": ["es.invalid:9200"]}));
    let cache = salt_returners::open_job_cache("elasticsearch", &opts).await.unwrap();
    assert_eq!(cache.name(), "elasticsearch");
    assert_eq!(salt_returners::missing_for(cache.as_ref(), salt_returners::MASTER_JOB_CACHE), None);
    assert_eq!(salt_returners::missing_for(cache.as_ref(), salt_returners::EXT_JOB_CACHE), None);
    assert!(salt_returners::builtin_names().contains(&"elasticsearch"));
    let Some(url) = shared_url().await else { return };
    // A minion's `--return elasticsearch --return_config alternative --return_kwargs ...`.
    let opts = obj(json!({"elasticsearch": {"hosts": ["es.invalid:9200"]}, "alternative.elasticsearch.hosts": [url]}));
    let kwargs = obj(json!({"master_job_cache_index": "kwargs-jobs"}));
    let lazy = salt_returners::lazy::LazyStore::new("elasticsearch", opts, Some("alternative"), Some(&kwargs)).unwrap();
    lazy.returner(&ret(JID, "m1", "test.ping", json!("via kwargs"))).await.unwrap();
    let reader = open(json!({"hosts": [url], "master_job_cache_index": "kwargs-jobs"}));
    assert_eq!(reader.get_jid(JID).await.unwrap()["m1"]["return"], "via kwargs");
}

/// A forward HTTP proxy on a free port that passes each request on (one per connection) and
/// notes its method and path: to count round trips, and to try the `proxies` option.
async fn counting_proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let log = log.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = vec![0u8; 1 << 16];
                let head_end = loop {
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                // "POST http://127.0.0.1:9200/_bulk HTTP/1.1": to the origin, in origin form.
                let mut lines = head.split("\r\n");
                let first = lines.next().unwrap().to_string();
                let mut parts = first.split(' ');
                let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
                let url = reqwest::Url::parse(target).unwrap();
                let path = match url.query() {
                    Some(q) => format!("{}?{q}", url.path()),
                    None => url.path().to_string(),
                };
                log.lock().unwrap().push(format!("{method} {path}"));
                let mut out = format!("{method} {path} HTTP/1.1\r\n");
                for line in lines.filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:")) {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
                out.push_str("connection: close\r\n\r\n");
                let mut origin = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
                origin.write_all(out.as_bytes()).await.unwrap();
                origin.write_all(&request[head_end..]).await.unwrap();
                let _ = tokio::io::copy(&mut origin, &mut client).await;
            });
        }
    });
    (port, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_a_batch_a_job_and_a_listing_take() {
    let Some(url) = shared_url().await else { return };
    let (proxy, requests) = counting_proxy().await;
    let store =
        open(json!({"hosts": [url], "master_job_cache_index": "trips-jobs", "proxies": {"http": format!("http://127.0.0.1:{proxy}")}}));
    // The first write makes sure of the indices (once per process).
    assert_eq!(store.returner_batch(&[ret(JID, "m0", "test.ping", json!(true))]).await.unwrap(), []);
    assert!(requests.lock().unwrap().iter().any(|r| r == "HEAD /_alias/trips-jobs-returns"), "{:?}", requests.lock().unwrap());
    requests.lock().unwrap().clear();
    let jid = "20240510093019000001";
    let batch: Vec<Load> = (0..1000).map(|i| ret(jid, &format!("minion{i:04}"), "test.ping", json!(true))).collect();
    assert_eq!(store.returner_batch(&batch).await.unwrap(), []);
    assert_eq!(*requests.lock().unwrap(), ["POST /_bulk"]);
    requests.lock().unwrap().clear();
    assert_eq!(store.get_jid(jid).await.unwrap().len(), 1000);
    assert_eq!(
        *requests.lock().unwrap(),
        [
            "POST /trips-jobs-returns/_refresh?ignore_unavailable=true",
            "POST /trips-jobs-returns/_search?ignore_unavailable=true",
            "POST /trips-jobs-returns/_search?ignore_unavailable=true",
            "POST /trips-jobs-returns/_mget"
        ]
    );
    // The first page of a listing reads one chunk of the job index, however many jobs it holds.
    for n in 0..300 {
        let jid = format!("20240510093020{n:06}");
        store.save_load(&jid, &obj(json!({"fun": "test.ping", "tgt": "*", "jid": jid})), None).await.unwrap();
    }
    requests.lock().unwrap().clear();
    let page = store.get_jids(&salt_returners::JobQuery { limit: Some(10), ..Default::default() }).await.unwrap();
    assert_eq!(page.first().map(|j| j.jid.as_str()), Some("20240510093020000299"));
    assert_eq!(page.len(), 10);
    assert_eq!(
        *requests.lock().unwrap(),
        ["POST /trips-jobs/_refresh?ignore_unavailable=true", "POST /trips-jobs/_search?ignore_unavailable=true", "POST /trips-jobs/_mget"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_trusts_ca_certs_or_nothing_unless_verify_certs_is_off() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into()))
        .unwrap();
    let (port, _) = refusing_server(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).unwrap();
    let host = format!("https://localhost:{port}");
    // The bundle trusts it: TLS holds, and the cluster's own answer comes through.
    let trusting = open(json!({"hosts": [host], "ca_certs": ca}));
    let err = trusting.check().await.unwrap_err().to_string();
    assert!(err.contains("refused the login (401 Unauthorized)"), "{err}");
    // `use_ssl` makes a bare host https.
    let bare = open(json!({"hosts": [format!("localhost:{port}")], "use_ssl": true, "ca_certs": ca}));
    assert!(bare.check().await.unwrap_err().to_string().contains("(401 Unauthorized)"));
    // The system's roots do not know it: one clear error, retried later.
    let err = open(json!({"hosts": [host]})).check().await.unwrap_err();
    let text = err.to_string();
    assert!(err.retry_later() && text.starts_with(&format!("elasticsearch: cannot connect at https://localhost:{port}")), "{text}");
    assert!(text.contains("invalid peer certificate"), "{text}");
    // verify_certs: False takes any certificate (as Python's client).
    let err = open(json!({"hosts": [host], "verify_certs": false})).check().await.unwrap_err().to_string();
    assert!(err.contains("(401 Unauthorized)"), "{err}");
    // A bundle that cannot be read stops the store from opening.
    let missing =
        Elasticsearch::open(&Lookup::new(&obj(json!({"elasticsearch.ca_certs": "/nonexistent/ca.pem"})))).err().unwrap().to_string();
    assert!(missing.contains("cannot read ca_certs /nonexistent/ca.pem"), "{missing}");
}
