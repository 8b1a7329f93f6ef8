//! The `splunk` store against a stand-in for Splunk's HTTP Event Collector (Splunk cannot run
//! here): the stand-in checks each request as HEC does (POST to `/services/collector/event`,
//! `Authorization: Splunk <token>`, each event an object with a non-blank `event`, a numeric
//! `time`, an index the token may write) and answers with HEC's bodies and codes; it indexes
//! the events before the first bad one of a request, as HEC does. Then the sink suite, Salt's
//! event, batching, HEC's refusals, Retry-After, and `event_return`.

// A sink-only store uses none of the job-cache suite.
#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_returners::splunk::{encode::parse_body, Splunk, SplunkConfig};
use salt_returners::{Event, Load, ReturnerError, Sink};
use saltrs_testkit::stand_in::{Mode, Request, Response, StandIn};
use serde_json::{json, Map, Value};
use suite::sink::{Reader, SinkBackend, StandInService};

const TOKEN: &str = "8f2c41d0-hec-s3cret-token-7a1b";
/// The indexes the token may write (HEC answers "Incorrect index" for others).
const INDEXES: [&str; 2] = ["main", "salt"];
/// Splunk Enterprise's `max_content_length` is 800 MB; the stand-in takes 32 MB.
const BODY_LIMIT: usize = 32 * 1024 * 1024;

fn hec(status: u16, text: &str, code: i64) -> Response {
    Response::json(status, json!({"text": text, "code": code}).to_string())
}

fn refused_event(text: &str, code: i64, n: usize) -> Response {
    Response::json(400, json!({"text": text, "code": code, "invalid-event-number": n}).to_string())
}

/// What HEC does with a request; the events it indexed go to `index`. A return of the minion
/// `poison` stands for an event HEC cannot read (code 6), to test a refusal in a batch.
fn collector(req: &Request, index: &Mutex<Vec<Map<String, Value>>>) -> Response {
    if req.path != "/services/collector/event" && req.path != "/services/collector" {
        return hec(404, "The requested URL was not found on this server.", 404);
    }
    if req.method != "POST" {
        return hec(405, "Method Not Allowed", 405);
    }
    let Some(auth) = req.header("authorization") else { return hec(401, "Token is required", 2) };
    let Some(token) = auth.strip_prefix("Splunk ") else { return hec(401, "Invalid authorization", 3) };
    if token != TOKEN {
        return hec(403, "Invalid token", 4);
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return hec(400, "No data", 5);
    }
    let mut stream = serde_json::Deserializer::from_slice(&req.body).into_iter::<Value>();
    let mut n = 0;
    loop {
        let event = match stream.next() {
            None => return hec(200, "Success", 0),
            Some(Err(_)) | Some(Ok(Value::Array(_) | Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null)) => {
                return refused_event("Invalid data format", 6, n)
            }
            Some(Ok(Value::Object(event))) => event,
        };
        match event.get("event") {
            None => return refused_event("Event field is required", 12, n),
            Some(Value::Null) => return refused_event("Event field cannot be blank", 13, n),
            Some(Value::String(s)) if s.is_empty() => return refused_event("Event field cannot be blank", 13, n),
            Some(e) if e.get("id") == Some(&json!("poison")) => return refused_event("Invalid data format", 6, n),
            Some(_) => {}
        }
        let time_ok = match event.get("time") {
            None | Some(Value::Number(_)) => true,
            Some(Value::String(s)) => s.parse::<f64>().is_ok(),
            Some(_) => false,
        };
        if !time_ok {
            return refused_event("Invalid data format", 6, n);
        }
        if event.get("index").is_some_and(|i| !i.as_str().is_some_and(|i| INDEXES.contains(&i))) {
            return refused_event("Incorrect index", 7, n);
        }
        index.lock().unwrap().push(event);
        n += 1;
    }
}

/// The stand-in and what it indexed.
struct Hec {
    stand_in: StandIn,
    index: Arc<Mutex<Vec<Map<String, Value>>>>,
}

impl Hec {
    fn start() -> Hec {
        let index = Arc::new(Mutex::new(Vec::new()));
        let indexed = index.clone();
        let stand_in = StandIn::builder(move |req| collector(req, &indexed))
            .body_limit(BODY_LIMIT)
            .too_large(Response::text(413, format!("Content-Length too large (maximum is {BODY_LIMIT})")))
            .unavailable(hec(503, "Server is busy", 9).header("Retry-After", "1"))
            .rate_limited(|_| hec(429, "Server is busy", 9))
            .refusal(refused_event("Incorrect index", 7, 0))
            .start();
        Hec { stand_in, index }
    }

    fn opts(&self, extra: Value) -> Map<String, Value> {
        let mut section = json!({"token": TOKEN, "indexer": "127.0.0.1", "scheme": "http", "port": self.stand_in.addr().port(),
                                 "sourcetype": "salt:return", "index": "salt", "host": "master1"});
        for (k, v) in extra.as_object().unwrap() {
            section[k] = v.clone();
        }
        json!({"splunk_http_forwarder": section}).as_object().unwrap().clone()
    }

    fn store(&self, extra: Value) -> Splunk {
        Splunk::open_with(SplunkConfig::from_opts(Some(&self.opts(extra))).unwrap()).unwrap()
    }

    /// The `return` of each indexed event of (jid, id), one per event.
    fn returns(&self, jid: &str, id: &str) -> Vec<Value> {
        let index = self.index.lock().unwrap();
        index
            .iter()
            .filter_map(|e| e.get("event"))
            .filter(|e| e.get("jid").and_then(Value::as_str) == Some(jid) && e.get("id").and_then(Value::as_str) == Some(id))
            .filter_map(|e| e.get("return").cloned())
            .collect()
    }
}

/// The stand-in as the sink suite drives it.
impl AsRef<StandIn> for Hec {
    fn as_ref(&self) -> &StandIn {
        &self.stand_in
    }
}

async fn open() -> Option<SinkBackend> {
    let hec = Arc::new(Hec::start());
    let store = Arc::new(hec.store(json!({})));
    let reader = hec.clone();
    let read: Reader = Box::new(move |jid, id| {
        let hec = reader.clone();
        Box::pin(async move { hec.returns(&jid, &id) })
    });
    Some(
        SinkBackend::new(store, read, ())
            .with_service(StandInService { service: hec, refusal_words: "Incorrect index" })
            .with_secret(TOKEN),
    )
}

sink_conformance!(splunk, open);

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

fn ret(jid: &str, id: &str, value: Value) -> Load {
    obj(json!({"fun_args": ["echo hi"], "jid": jid, "return": value, "retcode": 0, "success": true, "fun": "cmd.run", "id": id}))
}

#[tokio::test]
async fn one_return_is_salts_request() {
    let hec = Hec::start();
    let r = ret("20261201120000000001", "web1", json!("hi"));
    hec.store(json!({})).returner(&r).await.unwrap();
    let sent = hec.stand_in.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!((req.method.as_str(), req.path.as_str(), req.query.as_str()), ("POST", "/services/collector/event", ""));
    assert_eq!(req.header("authorization"), Some(format!("Splunk {TOKEN}").as_str()));
    let text = req.text().unwrap();
    // Salt's json.dumps: its separators, its key order, the return's own key order.
    let want_start = r#"{"time": ""#;
    let want_rest = r#"", "index": "salt", "sourcetype": "salt:return", "event": {"fun_args": ["echo hi"], "jid": "20261201120000000001", "return": "hi", "retcode": 0, "success": true, "fun": "cmd.run", "id": "web1"}, "host": "master1"}"#;
    assert!(text.starts_with(want_start) && text.trim_end().ends_with(want_rest), "{text}");
    let events = parse_body(&req.body).unwrap();
    let time: u64 = events[0]["time"].as_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(now - time < 60, "time is now: {time}");
    assert_eq!(hec.returns("20261201120000000001", "web1"), [json!("hi")]);
}

#[tokio::test]
async fn a_batch_goes_in_few_requests_within_the_size() {
    let hec = Hec::start();
    let store = hec.store(json!({"batch_bytes": 8192}));
    let rets: Vec<Load> = (0..300).map(|n| ret("20261201120000000002", &format!("m{n:03}"), json!({"n": n}))).collect();
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    let sent = hec.stand_in.requests();
    assert!(sent.len() < 30, "{} requests for 300 returns", sent.len());
    assert!(sent.iter().all(|r| r.body.len() <= 8192), "each request within batch_bytes");
    for n in 0..300 {
        assert_eq!(hec.returns("20261201120000000002", &format!("m{n:03}")), [json!({"n": n})], "m{n:03} once");
    }
    let store = hec.store(json!({}));
    let before = hec.stand_in.requests().len();
    let rets: Vec<Load> = (0..1000).map(|n| ret("20261201120000000003", &format!("m{n:04}"), json!(n))).collect();
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    assert_eq!(hec.stand_in.requests().len() - before, 1, "1,000 small returns are one request by default");
}

#[tokio::test]
async fn an_event_hec_refuses_in_a_batch_is_dead_lettered_alone_with_hecs_words() {
    let hec = Hec::start();
    let store = hec.store(json!({}));
    let jid = "20261201120000000004";
    let rets = vec![ret(jid, "a", json!(1)), ret(jid, "poison", json!(2)), ret(jid, "b", json!(3)), ret(jid, "poison", json!(4))];
    let rejected = store.returner_batch(&rets).await.unwrap();
    assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1], "the second poison is the same return: not sent");
    assert!(rejected[0].reason.contains("Invalid data format (HEC code 6)") && rejected[0].reason.contains("poison"), "{rejected:?}");
    assert_eq!((hec.returns(jid, "a"), hec.returns(jid, "b")), (vec![json!(1)], vec![json!(3)]), "indexed once each");
    // Two requests: the first indexed "a" and refused "poison"; the second carried "b" alone.
    let bodies: Vec<usize> = hec.stand_in.requests().iter().map(|r| parse_body(&r.body).unwrap().len()).collect();
    assert_eq!(bodies, [3, 1]);
    // A wrong index: every event refused, with HEC's words.
    let err = hec.store(json!({"index": "secret-index"})).returner(&ret(jid, "c", json!(5))).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("Incorrect index (HEC code 7)")), "{err:?}");
}

#[tokio::test]
async fn busy_and_rate_limited_answers_are_retried_after_what_hec_asks() {
    let hec = Hec::start();
    let store = hec.store(json!({}));
    let r = ret("20261201120000000005", "m1", json!(true));
    hec.stand_in.set_mode(Mode::Unavailable);
    let err = store.returner(&r).await.unwrap_err();
    assert!(err.retry_later() && err.retry_after() == Some(Duration::from_secs(1)), "{err:?}");
    assert!(err.to_string().contains("Server is busy"), "{err}");
    hec.stand_in.set_mode(Mode::RateLimited { retry_after_secs: 3 });
    let err = store.returner(&r).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)), "{err:?}");
    // Through the spool: held while busy, delivered once HEC takes it, no sooner than asked.
    let dir = tempfile::tempdir().unwrap();
    let spool = salt_returners::spool::Spool::open(dir.path(), salt_returners::Store::Sink(Arc::new(store))).unwrap();
    hec.stand_in.set_mode(Mode::RateLimited { retry_after_secs: 2 });
    let start = std::time::Instant::now();
    spool.push(vec![salt_returners::spool::Record::Return { ret: r.clone() }]).await.unwrap();
    hec.stand_in.wait_for_requests(3, Duration::from_secs(10)).await;
    hec.stand_in.set_mode(Mode::Normal);
    assert!(spool.flush(Duration::from_secs(30)).await);
    let statuses: Vec<u16> = hec.stand_in.exchanges().iter().map(|e| e.status).collect();
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    assert!(start.elapsed() >= Duration::from_secs(2), "the spool waited as HEC asked: {:?}", start.elapsed());
    assert_eq!(hec.returns("20261201120000000005", "m1"), [json!(true)]);
}

#[tokio::test]
async fn a_wrong_token_is_retried_and_named_without_the_token() {
    let hec = Hec::start();
    let store = hec.store(json!({"token": "wrong-token-value"}));
    let err = store.check().await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("Invalid token"), "{err}");
    assert!(!err.to_string().contains("wrong-token-value"), "{err}");
    let err = store.returner(&ret("20261201120000000006", "m1", json!(1))).await.unwrap_err();
    assert!(err.retry_later(), "the records wait in the spool until the token is fixed: {err}");
    hec.store(json!({})).check().await.unwrap();
    assert!(hec.index.lock().unwrap().is_empty(), "check indexes nothing");
}

#[tokio::test]
async fn event_return_sends_salts_events_in_one_request() {
    let hec = Hec::start();
    let store = hec.store(json!({}));
    let events: Vec<Event> =
        (0..5).map(|n| Event { tag: format!("salt/job/{n}/new"), data: json!({"n": n, "_stamp": "2026-12-01T12:00:00.000000"}) }).collect();
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    assert_eq!(hec.stand_in.requests().len(), 1);
    let index = hec.index.lock().unwrap();
    let got: Vec<Value> = index.iter().map(|e| e["event"].clone()).collect();
    assert_eq!(got[2], json!({"tag": "salt/job/2/new", "data": {"n": 2, "_stamp": "2026-12-01T12:00:00.000000"}}));
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn a_return_past_hecs_limit_is_refused_with_its_words() {
    let hec = Hec::start();
    let store = hec.store(json!({}));
    let big = "x".repeat(BODY_LIMIT + 1);
    let err = store.returner(&ret("20261201120000000007", "big", json!(big))).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("413") && m.contains("too large")), "{err:?}");
}
