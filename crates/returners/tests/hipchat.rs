//! The `hipchat` returner against a stand-in HipChat server (`saltrs_testkit::stand_in`; the
//! cloud service is gone, a self-hosted one speaks the same API) that checks each request as
//! HipChat did (v1: the key in the query string, a form; v2: a bearer key, JSON; the room, the
//! sender, the message's 10,000 characters, colours) and answers as it answered: the sink
//! suite over v1 and over v2, then the exact requests, colours, the 429, refusals in the
//! dead-letter file and the key in no error.

#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;
mod messages;

use std::sync::Arc;
use std::time::Duration;

use salt_returners::hipchat::Hipchat;
use salt_returners::options::Lookup;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Load, ReturnerError, Sink, Store};
use saltrs_testkit::stand_in::{Mode, Request, Response, StandIn};
use serde_json::{json, Map, Value};
use suite::sink::SinkBackend;

const KEY: &str = "Hc9x0aGk2mQ7vLr4TtYz81WbnP3sEe";
const ROOM: &str = "Ops Room";
const COLORS: &[&str] = &["yellow", "green", "red", "purple", "gray", "random"];

fn hipchat_error(status: u16, kind: &str, message: &str) -> Response {
    Response::json(status, json!({"error": {"code": status, "type": kind, "message": message}}).to_string())
}

/// What HipChat checks of a message (v1 or v2), and its answers.
fn hipchat_api(req: &Request) -> Response {
    if req.method != "POST" {
        return hipchat_error(405, "Method Not Allowed", "Method not allowed");
    }
    let (fields, v2) = if req.path == "/v1/rooms/message" {
        let query = req.query_pairs().unwrap_or_default();
        if !query.iter().any(|(k, v)| k == "auth_token" && v == KEY) {
            return hipchat_error(401, "Unauthorized", "Auth token not found. Please see: https://www.hipchat.com/docs/api/auth");
        }
        if req.content_type().as_deref() != Some("application/x-www-form-urlencoded") {
            return hipchat_error(400, "Bad Request", "Expected a form");
        }
        let form: Map<String, Value> = req.form().unwrap_or_default().into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        if form.get("room_id").and_then(Value::as_str) != Some(ROOM) {
            return hipchat_error(404, "Not Found", "Room not found");
        }
        let from_len = form.get("from").and_then(Value::as_str).map(|f| f.chars().count()).unwrap_or(0);
        if !(1..=15).contains(&from_len) {
            return hipchat_error(400, "Bad Request", "From name must be between 1 and 15 characters");
        }
        if !matches!(form.get("notify").and_then(Value::as_str), Some("0" | "1")) {
            return hipchat_error(400, "Bad Request", "notify must be 0 or 1");
        }
        (form, false)
    } else if let Some(room) = req.path.strip_prefix("/v2/room/").and_then(|p| p.strip_suffix("/notification")) {
        if req.header("authorization") != Some(&format!("Bearer {KEY}")) {
            return hipchat_error(401, "Unauthorized", "Invalid OAuth session");
        }
        if req.content_type().as_deref() != Some("application/json") {
            return hipchat_error(400, "Bad Request", "Expected JSON");
        }
        let room =
            saltrs_testkit::stand_in::url_decoded_pairs(&format!("r={room}")).ok().and_then(|p| p.into_iter().next()).map(|(_, v)| v);
        if room.as_deref() != Some(ROOM) {
            return hipchat_error(404, "Not Found", "Room not found");
        }
        let Ok(Value::Object(body)) = req.json() else { return hipchat_error(400, "Bad Request", "Expected JSON") };
        if body.get("notify").is_some_and(|n| !n.is_boolean()) {
            return hipchat_error(400, "Bad Request", "notify must be a boolean");
        }
        (body, true)
    } else {
        return hipchat_error(404, "Not Found", "Not found");
    };
    let message = fields.get("message").and_then(Value::as_str).unwrap_or_default();
    if message.is_empty() || message.chars().count() > 10_000 {
        return hipchat_error(400, "Bad Request", "Message must be between 1 and 10000 characters");
    }
    if fields.get("message_format").and_then(Value::as_str) != Some("text") {
        return hipchat_error(400, "Bad Request", "Unexpected message_format");
    }
    if fields.get("color").and_then(Value::as_str).is_none_or(|c| !COLORS.contains(&c)) {
        return hipchat_error(400, "Bad Request", "Color must be one of yellow, green, red, purple, gray, random");
    }
    if v2 {
        Response::new(204)
    } else {
        Response::json(200, r#"{"status":"sent"}"#)
    }
}

fn stand_in() -> Arc<StandIn> {
    Arc::new(
        StandIn::builder(hipchat_api)
            .refusal(hipchat_error(404, "Not Found", "Room not found"))
            .rate_limited(|_| hipchat_error(429, "Too Many Requests", "You have exceeded the rate limit"))
            .start(),
    )
}

fn options(service: &StandIn, version: &str, extra: Value) -> Map<String, Value> {
    let mut o = json!({"hipchat": {"room_id": ROOM, "api_key": KEY, "api_version": version, "from_name": "salt-master",
                                   "api_url": service.url()}});
    for (k, v) in extra.as_object().unwrap() {
        o["hipchat"][k] = v.clone();
    }
    o.as_object().unwrap().clone()
}

/// The messages HipChat took, as sent.
fn taken(service: &StandIn) -> Vec<Map<String, Value>> {
    service
        .exchanges()
        .into_iter()
        .filter(|e| matches!(e.status, 200 | 204))
        .filter_map(|e| match e.request.json() {
            Ok(Value::Object(body)) => Some(body),
            _ => Some(e.request.form().ok()?.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
        })
        .collect()
}

fn texts(service: &StandIn) -> Vec<String> {
    taken(service).into_iter().filter_map(|m| m.get("message")?.as_str().map(str::to_string)).collect()
}

async fn open_version(version: &'static str) -> Option<SinkBackend> {
    let service = stand_in();
    let sink: Arc<dyn Sink> = Arc::new(Hipchat::open(&Lookup::new(&options(&service, version, json!({})))).unwrap());
    let reader = service.clone();
    let read: suite::sink::Reader = Box::new(move |jid, id| {
        let service = reader.clone();
        Box::pin(async move { messages::returns_in(texts(&service), &jid, &id) })
    });
    Some(
        SinkBackend::new(sink, read, service.clone())
            .cutting_above(10_000)
            .with_service(suite::sink::StandInService { service, refusal_words: "Room not found" })
            .with_secret(KEY),
    )
}

async fn open_v1() -> Option<SinkBackend> {
    open_version("v1").await
}

async fn open_v2() -> Option<SinkBackend> {
    open_version("v2").await
}

sink_conformance!(hipchat_v1, open_v1);
sink_conformance!(hipchat_v2, open_v2);

fn ret(jid: &str, id: &str, retcode: i64, value: Value) -> Load {
    json!({"id": id, "jid": jid, "fun": "cmd.run", "fun_args": ["false"], "return": value, "retcode": retcode, "success": retcode == 0})
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn v1_sends_salts_form_with_the_key_in_the_query() {
    let service = stand_in();
    let o = options(&service, "v1", json!({"from_name": "salt-master@example.com", "notify": true, "color": "green"}));
    Hipchat::open(&Lookup::new(&o)).unwrap().returner(&ret("20261201120000000001", "web1", 0, json!("ok"))).await.unwrap();
    let r = &service.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/rooms/message"));
    assert_eq!(r.query_pairs().unwrap(), [("format".to_string(), "json".to_string()), ("auth_token".to_string(), KEY.to_string())]);
    let text = "id: web1\r\nfunction: cmd.run\r\nfunction args: ['false']\r\njid: 20261201120000000001\r\nreturn: 'ok'\r\n";
    let want: Vec<(String, String)> = [
        ("room_id", ROOM),
        ("from", "salt-master@exa"),
        ("message", text),
        ("message_format", "text"),
        ("color", "green"),
        ("notify", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(r.form().unwrap(), want);
}

#[tokio::test]
async fn v2_sends_json_with_a_bearer_key_and_a_failure_is_red() {
    let service = stand_in();
    let hipchat = Hipchat::open(&Lookup::new(&options(&service, "2", json!({})))).unwrap();
    hipchat.returner(&ret("20261201120000000002", "web1", 1, json!({"stderr": "no"}))).await.unwrap();
    let r = &service.requests()[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v2/room/Ops%20Room/notification"));
    assert_eq!(r.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(r.query, "");
    let body = r.json().unwrap();
    assert_eq!(body["color"], "red", "retcode 1");
    assert_eq!(body["notify"], false);
    assert_eq!(body["from"], "salt-master");
    assert_eq!(
        messages::python_value(body["message"].as_str().unwrap().split("return: ").nth(1).unwrap().trim_end()),
        json!({"stderr": "no"})
    );
    assert_eq!(service.exchanges()[0].status, 204, "v2's success has no body");
}

#[tokio::test]
async fn a_429_waits_and_nothing_is_lost() {
    let service = stand_in();
    let hipchat: Arc<dyn Sink> = Arc::new(Hipchat::open(&Lookup::new(&options(&service, "v2", json!({})))).unwrap());
    service.set_mode(Mode::RateLimited { retry_after_secs: 1 });
    let err = hipchat.returner(&ret("20261201120000000003", "m1", 0, json!(1))).await.unwrap_err();
    assert!(
        matches!(&err, ReturnerError::Throttled { after, message } if *after == Duration::from_secs(1) && message.contains("exceeded the rate limit")),
        "{err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Store::Sink(hipchat)).unwrap();
    spool.push(vec![Record::Return { ret: ret("20261201120000000004", "m1", 0, json!({"n": 4})) }]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    service.set_mode(Mode::Normal);
    assert!(spool.flush(Duration::from_secs(30)).await);
    assert_eq!(messages::returns_in(texts(&service), "20261201120000000004", "m1"), [json!({"n": 4})]);
}

#[tokio::test]
async fn an_unknown_room_goes_to_the_dead_letter_file_and_the_key_is_in_no_error() {
    let service = stand_in();
    for version in ["v1", "v2"] {
        let wrong: Arc<dyn Sink> = Arc::new(Hipchat::open(&Lookup::new(&options(&service, version, json!({"room_id": "Nope"})))).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Store::Sink(wrong)).unwrap();
        spool.push(vec![Record::Return { ret: ret("20261201120000000005", "m1", 0, json!(1)) }]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(30)).await);
        let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
        assert!(dead.contains("Room not found") && !dead.contains(KEY), "{version}: {dead}");

        let bad_key = "wrongkey0000000000000000000000";
        let hipchat = Hipchat::open(&Lookup::new(&options(&service, version, json!({"api_key": bad_key})))).unwrap();
        let err = hipchat.returner(&ret("20261201120000000006", "m1", 0, json!(1))).await.unwrap_err();
        assert!(err.retry_later(), "{version}: a wrong key is fixed in the config, nothing is lost meanwhile: {err:?}");
        service.set_mode(Mode::Down);
        let down = hipchat.returner(&ret("20261201120000000007", "m1", 0, json!(1))).await.unwrap_err();
        service.set_mode(Mode::Normal);
        for e in [&err, &down] {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(bad_key) && !shown.contains("auth_token"), "{version}: {shown}");
        }
    }
}

#[tokio::test]
async fn a_configuration_naming_the_gone_cloud_still_opens() {
    let o = json!({"hipchat": {"room_id": "RoomName", "api_key": "k", "api_version": "v1", "api_url": "api.hipchat.com", "from_name": "user@email.com"}});
    let store = salt_returners::open("hipchat", &Lookup::new(o.as_object().unwrap())).await.unwrap();
    assert_eq!(store.as_sink().name(), "hipchat");
}
