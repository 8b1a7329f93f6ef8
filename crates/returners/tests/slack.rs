//! The `slack` store against a stand-in for Slack's Web API (Slack cannot run here): the
//! stand-in checks each request as Slack does (`POST /api/chat.postMessage`, `Authorization:
//! Bearer <token>`, a form body with a known `channel` and a `text` within 40,000 characters)
//! and answers as Slack does (HTTP 200 with `{"ok": true, ...}` or `{"ok": false, "error":
//! "<code>"}`, 429 with `Retry-After` and `ratelimited`). Then the sink suite, Salt's request,
//! and Slack's refusals.

// A sink-only store uses none of the job-cache suite.
#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::slack::{encode::MAX_TEXT, Slack, SlackConfig};
use salt_returners::{Load, ReturnerError, Sink};
use saltrs_testkit::stand_in::{Mode, Request, Response, StandIn};
use serde_json::{json, Map, Value};
use suite::sink::{Reader, SinkBackend, StandInService};

const TOKEN: &str = "xoxb-1234-5678-s3cretSlackToken";
const CHANNELS: [&str; 3] = ["#general", "#salt", "C0123456"];

fn slack_error(code: &str) -> Response {
    Response::json(200, json!({"ok": false, "error": code}).to_string())
}

/// What Slack's Web API does with a request; the texts it posted go to `posted`.
fn web_api(req: &Request, posted: &Mutex<Vec<String>>) -> Response {
    let Some(method) = req.path.strip_prefix("/api/") else { return Response::text(404, "Not Found") };
    if req.method != "POST" && req.method != "GET" {
        return Response::text(405, "Method Not Allowed");
    }
    match req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
        None => return slack_error("not_authed"),
        Some(t) if t != TOKEN => return slack_error("invalid_auth"),
        Some(_) => {}
    }
    let form: Map<String, Value> = match req.content_type().as_deref() {
        Some("application/x-www-form-urlencoded") => match req.form() {
            Ok(pairs) => pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
            Err(_) => return slack_error("invalid_form_data"),
        },
        Some("application/json") => match req.json() {
            Ok(Value::Object(m)) => m,
            _ => return slack_error("invalid_json"),
        },
        _ if req.body.is_empty() => Map::new(),
        _ => return slack_error("invalid_form_data"),
    };
    match method {
        "auth.test" => {
            Response::json(200, json!({"ok": true, "url": "https://salt.slack.com/", "team": "Salt", "user": "saltbot"}).to_string())
        }
        "chat.postMessage" => {
            let channel = form.get("channel").and_then(Value::as_str).unwrap_or_default();
            if !CHANNELS.contains(&channel) {
                return slack_error("channel_not_found");
            }
            let text = form.get("text").and_then(Value::as_str).unwrap_or_default();
            if text.is_empty() {
                return slack_error("no_text");
            }
            if text.chars().count() > MAX_TEXT {
                return slack_error("msg_too_long");
            }
            if let Some(as_user) = form.get("as_user").and_then(Value::as_str) {
                if !["true", "false", "1", "0"].contains(&as_user) {
                    return slack_error("invalid_arguments");
                }
            }
            posted.lock().unwrap().push(text.to_string());
            Response::json(
                200,
                json!({"ok": true, "channel": "C0123456", "ts": "1733059200.000100", "message": {"type": "message", "text": text}})
                    .to_string(),
            )
        }
        _ => slack_error("unknown_method"),
    }
}

struct Web {
    stand_in: StandIn,
    posted: Arc<Mutex<Vec<String>>>,
}

impl Web {
    fn start() -> Web {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let p = posted.clone();
        let stand_in = StandIn::builder(move |req| web_api(req, &p))
            .body_limit(4 * 1024 * 1024)
            .too_large(Response::text(413, "Request Entity Too Large"))
            .unavailable(Response::json(503, json!({"ok": false, "error": "service_unavailable"}).to_string()))
            .rate_limited(|_| Response::json(429, json!({"ok": false, "error": "ratelimited"}).to_string()))
            .refusal(slack_error("channel_not_found"))
            .start();
        Web { stand_in, posted }
    }

    fn store(&self, extra: Value) -> Slack {
        let mut o = json!({"slack": {"api_key": TOKEN, "channel": "#salt", "username": "salt", "as_user": true,
                                     "api_url": self.stand_in.url()}});
        for (k, v) in extra.as_object().unwrap() {
            o["slack"][k] = v.clone();
        }
        Slack::open_with(SlackConfig::from_lookup(&Lookup::new(o.as_object().unwrap())).unwrap()).unwrap()
    }

    /// The `return` of each message posted for (jid, id): read back from the `return:` line
    /// (Python's pformat), or the whole text when it was cut.
    fn returns(&self, jid: &str, id: &str) -> Vec<Value> {
        let posted = self.posted.lock().unwrap();
        posted.iter().filter_map(|text| read_message(text, jid, id)).collect()
    }
}

/// The return a message shows, if it is the one of (jid, id).
fn read_message(text: &str, jid: &str, id: &str) -> Option<Value> {
    let body = text.strip_prefix("```")?.strip_suffix("```")?;
    if !body.starts_with(&format!("id: {id}\r\n")) || !body.contains(&format!("\r\njid: {jid}\r\n")) {
        return None;
    }
    if body.contains("[cut: ") {
        return Some(Value::String(text.to_string()));
    }
    let shown = body.split_once("\r\nreturn: ")?.1.strip_suffix("\r\n")?;
    Some(suite::pyliteral::parse(shown).unwrap_or_else(|e| panic!("the return line {shown:?}: {e}")))
}

impl AsRef<StandIn> for Web {
    fn as_ref(&self) -> &StandIn {
        &self.stand_in
    }
}

async fn open() -> Option<SinkBackend> {
    let web = Arc::new(Web::start());
    let store = Arc::new(web.store(json!({})));
    let reader = web.clone();
    let read: Reader = Box::new(move |jid, id| {
        let web = reader.clone();
        Box::pin(async move { web.returns(&jid, &id) })
    });
    Some(
        SinkBackend::new(store, read, ())
            .with_service(StandInService { service: web, refusal_words: "channel_not_found" })
            .with_secret(TOKEN)
            .cutting_above(MAX_TEXT),
    )
}

sink_conformance!(slack, open);

fn ret(jid: &str, id: &str, value: Value) -> Load {
    json!({"fun_args": ["echo hi"], "jid": jid, "return": value, "retcode": 0, "success": true, "fun": "cmd.run", "id": id})
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn one_return_is_salts_request() {
    let web = Web::start();
    web.store(json!({})).returner(&ret("20261201120000000001", "web1", json!({"pid": 7, "out": "hi"}))).await.unwrap();
    let sent = web.stand_in.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/api/chat.postMessage"));
    assert_eq!(req.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(req.content_type().as_deref(), Some("application/x-www-form-urlencoded"));
    let text = "```id: web1\r\nfunction: cmd.run\r\nfunction args: ['echo hi']\r\njid: 20261201120000000001\r\nreturn: {'out': 'hi', 'pid': 7}\r\n```";
    let want: Vec<(String, String)> = [("channel", "#salt"), ("username", "salt"), ("as_user", "true"), ("text", text)]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(req.form().unwrap(), want);
}

#[tokio::test]
async fn a_rate_limit_is_retried_after_what_slack_asks() {
    let web = Web::start();
    let store = web.store(json!({}));
    let r = ret("20261201120000000002", "m1", json!(true));
    web.stand_in.set_mode(Mode::RateLimited { retry_after_secs: 2 });
    let err = store.returner(&r).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)), "{err:?}");
    assert!(err.to_string().contains("ratelimited"), "{err}");
    // Through the spool: no sooner than asked, then delivered once.
    let dir = tempfile::tempdir().unwrap();
    let spool = salt_returners::spool::Spool::open(dir.path(), salt_returners::Store::Sink(Arc::new(store))).unwrap();
    let start = std::time::Instant::now();
    spool.push(vec![salt_returners::spool::Record::Return { ret: r.clone() }]).await.unwrap();
    web.stand_in.wait_for_requests(2, Duration::from_secs(10)).await;
    web.stand_in.set_mode(Mode::Normal);
    assert!(spool.flush(Duration::from_secs(30)).await);
    assert!(start.elapsed() >= Duration::from_secs(2), "{:?}", start.elapsed());
    assert_eq!(web.returns("20261201120000000002", "m1"), [json!(true)]);
}

#[tokio::test]
async fn slacks_refusals_are_classified_with_slacks_words() {
    let web = Web::start();
    let r = ret("20261201120000000003", "m1", json!(1));
    let err = web.store(json!({"channel": "#nowhere"})).returner(&r).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("channel_not_found")), "{err:?}");
    let bad_token = web.store(json!({"api_key": "xoxb-wrong-token"}));
    let err = bad_token.returner(&r).await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("invalid_auth"), "a refused token keeps the returns: {err}");
    assert!(!err.to_string().contains("xoxb-wrong-token"));
    assert!(bad_token.check().await.is_err());
    web.store(json!({})).check().await.unwrap();
    // Slack's own trouble, in its 200 answer: retried.
    let fatal = StandIn::builder(|_| slack_error("fatal_error")).start();
    let o = json!({"slack": {"api_key": TOKEN, "api_url": fatal.url()}});
    let store = Slack::open_with(SlackConfig::from_lookup(&Lookup::new(o.as_object().unwrap())).unwrap()).unwrap();
    let err = store.returner(&r).await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("fatal_error"), "{err}");
    assert!(web.returns("20261201120000000003", "m1").is_empty());
}
