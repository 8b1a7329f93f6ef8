//! The `pushover` returner against a stand-in Pushover API (`saltrs_testkit::stand_in`) that
//! checks each request as Pushover does (token, user, message and title lengths, priority and
//! the emergency options, sounds) and answers as it answers: the sink suite, then the exact
//! request with only the options set, the start-up check, the 429 of a spent quota, and
//! Pushover's refusals in the dead-letter file.

#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;
mod messages;

use std::sync::Arc;
use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::pushover::Pushover;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Load, ReturnerError, Sink, Store};
use saltrs_testkit::stand_in::{Mode, Request, Response, StandIn};
use serde_json::{json, Map, Value};
use suite::sink::SinkBackend;

const TOKEN: &str = "azGDORePK8gMaC0QOYAMyEEuzJnyUi";
const USER: &str = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG";
const SOUNDS: &[&str] = &["pushover", "bike", "siren", "none"];

/// Pushover's error answer: the field at fault, its words in `errors`, `status` 0.
fn pushover_error(status: u16, field: &str, words: &str) -> Response {
    Response::json(
        status,
        json!({field: "invalid", "errors": [words], "status": 0, "request": "5042853c-402d-4a18-abcb-168734a801de"}).to_string(),
    )
}

/// What Pushover checks of a request, and its answers.
fn pushover_api(req: &Request) -> Response {
    if req.path == "/1/sounds.json" {
        let token_ok = req.query_pairs().unwrap_or_default().iter().any(|(k, v)| k == "token" && v == TOKEN);
        if req.method != "GET" || !token_ok {
            return pushover_error(400, "token", "application token is invalid");
        }
        let sounds: Map<String, Value> = SOUNDS.iter().map(|s| (s.to_string(), json!(s))).collect();
        return Response::json(200, json!({"sounds": sounds, "status": 1, "request": "1"}).to_string());
    }
    if req.method != "POST" || req.content_type().as_deref() != Some("application/x-www-form-urlencoded") {
        return pushover_error(400, "message", "message cannot be blank");
    }
    let Ok(form) = req.form() else { return pushover_error(400, "message", "message cannot be blank") };
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if field("token") != Some(TOKEN) {
        return pushover_error(400, "token", "application token is invalid");
    }
    if field("user") != Some(USER) {
        return pushover_error(400, "user", "user identifier is invalid");
    }
    match req.path.as_str() {
        "/1/users/validate.json" => {
            if field("device").is_some_and(|d| d != "phone") {
                return pushover_error(400, "device", "device name is not valid for user");
            }
            Response::json(200, r#"{"status":1,"group":0,"devices":["phone"],"licenses":["Android"],"request":"2"}"#)
        }
        "/1/messages.json" => {
            let message = field("message").unwrap_or_default();
            if message.is_empty() {
                return pushover_error(400, "message", "message cannot be blank");
            }
            if message.chars().count() > 1024 {
                return pushover_error(400, "message", "message cannot be longer than 1024 characters");
            }
            if field("title").is_some_and(|t| t.chars().count() > 250) {
                return pushover_error(400, "title", "title cannot be longer than 250 characters");
            }
            let priority = match field("priority").map(str::parse::<i8>) {
                None => 0,
                Some(Ok(p @ -2..=2)) => p,
                Some(_) => return pushover_error(400, "priority", "priority is invalid"),
            };
            if priority == 2 {
                if field("retry").and_then(|r| r.parse::<u32>().ok()).is_none_or(|r| r < 30) {
                    return pushover_error(400, "retry", "retry is invalid");
                }
                if field("expire").and_then(|e| e.parse::<u32>().ok()).is_none_or(|e| e > 10_800) {
                    return pushover_error(400, "expire", "expire is invalid");
                }
            }
            if field("sound").is_some_and(|s| !SOUNDS.contains(&s)) {
                return pushover_error(400, "sound", "sound is invalid");
            }
            Response::json(200, r#"{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}"#)
        }
        _ => Response::json(404, r#"{"errors":["not found"],"status":0}"#),
    }
}

fn stand_in() -> Arc<StandIn> {
    Arc::new(
        StandIn::builder(pushover_api)
            .refusal(pushover_error(400, "user", "user identifier is invalid"))
            .rate_limited(|_| Response::json(429, r#"{"errors":["application is over its monthly message limit"],"status":0}"#))
            .start(),
    )
}

fn options(service: &StandIn, extra: Value) -> Map<String, Value> {
    let mut o = json!({"pushover": {"user": USER, "token": TOKEN, "api_url": service.url()}});
    for (k, v) in extra.as_object().unwrap() {
        o["pushover"][k] = v.clone();
    }
    o.as_object().unwrap().clone()
}

fn store(service: &StandIn) -> Pushover {
    Pushover::open(&Lookup::new(&options(service, json!({})))).unwrap()
}

/// The messages Pushover took.
fn taken(service: &StandIn) -> Vec<String> {
    service
        .exchanges()
        .into_iter()
        .filter(|e| e.status == 200 && e.request.path == "/1/messages.json")
        .filter_map(|e| e.request.form().ok()?.into_iter().find(|(k, _)| k == "message").map(|(_, v)| v))
        .collect()
}

async fn open() -> Option<SinkBackend> {
    let service = stand_in();
    let sink: Arc<dyn Sink> = Arc::new(store(&service));
    let reader = service.clone();
    let read: suite::sink::Reader = Box::new(move |jid, id| {
        let service = reader.clone();
        Box::pin(async move { messages::returns_in(taken(&service), &jid, &id) })
    });
    Some(
        SinkBackend::new(sink, read, service.clone())
            .cutting_above(1024)
            .with_service(suite::sink::StandInService { service, refusal_words: "user identifier is invalid" })
            .with_secret(TOKEN),
    )
}

sink_conformance!(pushover, open);

fn ret(jid: &str, id: &str, value: Value) -> Load {
    json!({"id": id, "jid": jid, "fun": "state.apply", "fun_args": [], "return": value, "retcode": 0, "success": true})
        .as_object()
        .unwrap()
        .clone()
}

fn form_of(r: &Request) -> Vec<(String, String)> {
    r.form().unwrap()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn the_request_holds_only_the_options_set() {
    let service = stand_in();
    // Salt's docs set unused options to None; Salt 3007 then sent "None".
    let o = options(&service, json!({"device": "None", "priority": null}));
    Pushover::open(&Lookup::new(&o)).unwrap().returner(&ret("20261201120000000001", "web1", json!({"b": 2, "a": 1}))).await.unwrap();
    let requests = service.requests();
    assert_eq!(requests.len(), 1, "one request per return: the user is not validated each time");
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/1/messages.json"));
    let message = "id: web1\r\nfunction: state.apply\r\nfunction args: []\r\njid: 20261201120000000001\r\nreturn: {'a': 1, 'b': 2}\r\n";
    assert_eq!(form_of(r), pairs(&[("token", TOKEN), ("user", USER), ("message", message)]));

    // Every option, an emergency, from a profile as Salt's docs show it.
    let mut o = options(&service, json!({"title": "Salt", "profile": "pushover_profile", "sound": "siren"}));
    o.insert(
        "pushover_profile".into(),
        json!({"pushover.priority": "2", "pushover.retry": 60, "pushover.expire": 3600, "pushover.device": "phone"}),
    );
    Pushover::open(&Lookup::new(&o)).unwrap().returner(&ret("20261201120000000002", "web1", json!(true))).await.unwrap();
    let form = form_of(&service.requests()[1]);
    let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["token", "user", "message", "title", "device", "sound", "priority", "expire", "retry"]);
    assert_eq!(form[6..], pairs(&[("priority", "2"), ("expire", "3600"), ("retry", "60")]));
    assert_eq!(taken(&service).len(), 2, "Pushover took both");
}

#[tokio::test]
async fn an_emergency_without_retry_and_expire_is_a_config_error() {
    let service = stand_in();
    let o = options(&service, json!({"priority": 2, "retry": 60}));
    let err = salt_returners::open("pushover", &Lookup::new(&o)).await.err().unwrap();
    assert!(
        matches!(&err, ReturnerError::Invalid(m) if m.contains("priority 2 (emergency) needs pushover.retry and pushover.expire")),
        "{err:?}"
    );
    assert!(service.requests().is_empty());
}

#[tokio::test]
async fn the_start_up_check_validates_the_user_device_and_sound() {
    let service = stand_in();
    store(&service).check().await.unwrap();
    Pushover::open(&Lookup::new(&options(&service, json!({"device": "phone", "sound": "siren"})))).unwrap().check().await.unwrap();
    let paths: Vec<String> = service.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/1/users/validate.json", "/1/users/validate.json", "/1/sounds.json"]);
    for (extra, says) in [
        (json!({"user": "uNOPE"}), "user identifier is invalid"),
        (json!({"device": "tablet"}), "device name is not valid for user"),
        (json!({"sound": "trumpet"}), "\"trumpet\" is not one of Pushover's sounds"),
    ] {
        let err = Pushover::open(&Lookup::new(&options(&service, extra))).unwrap().check().await.unwrap_err();
        assert!(err.to_string().contains(says), "{says}: {err}");
        assert!(!err.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn a_spent_quota_429_is_retried_and_nothing_is_lost() {
    let service = stand_in();
    let pushover: Arc<dyn Sink> = Arc::new(store(&service));
    service.set_mode(Mode::RateLimited { retry_after_secs: 1 });
    let err = pushover.returner(&ret("20261201120000000003", "m1", json!(1))).await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("monthly message limit"), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Store::Sink(pushover)).unwrap();
    spool.push(vec![Record::Return { ret: ret("20261201120000000004", "m1", json!({"n": 4})) }]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(spool.stats().depth, 1, "held while over the quota");
    service.set_mode(Mode::Normal);
    assert!(spool.flush(Duration::from_secs(30)).await);
    assert_eq!(messages::returns_in(taken(&service), "20261201120000000004", "m1"), [json!({"n": 4})]);
}

#[tokio::test]
async fn a_refused_user_goes_to_the_dead_letter_file_in_pushovers_words() {
    let service = stand_in();
    let wrong: Arc<dyn Sink> = Arc::new(Pushover::open(&Lookup::new(&options(&service, json!({"user": "uWRONG"})))).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Store::Sink(wrong)).unwrap();
    spool.push(vec![Record::Return { ret: ret("20261201120000000005", "m1", json!(1)) }]).await.unwrap();
    assert!(spool.flush(Duration::from_secs(30)).await);
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
    assert!(dead.contains("user identifier is invalid") && !dead.contains(TOKEN), "{dead}");
}
