//! The `mattermost` store against a stand-in for a Mattermost incoming webhook (Mattermost
//! cannot run here): the stand-in checks each request as Mattermost does (`POST
//! /hooks/<id>`, a URL-encoded form field `payload` or a JSON body, a `text`, a known channel)
//! and answers as it does (200 `ok`, 400 with its JSON error for an unknown hook or data it
//! cannot parse, 404 for a channel it cannot find, 429 with `Retry-After`). Then the sink
//! suite, Salt's text, the body Salt meant, and `event_return`.

// A sink-only store uses none of the job-cache suite.
#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_returners::mattermost::{encode::MAX_TEXT, Mattermost, MattermostConfig};
use salt_returners::options::Lookup;
use salt_returners::{Event, Load, ReturnerError, Sink};
use saltrs_testkit::stand_in::{Mode, Request, Response, StandIn};
use serde_json::{json, Value};
use suite::sink::{Reader, SinkBackend, StandInService};

const HOOK: &str = "3tdgo8restnxiykdx88wqtxryr";
const CHANNELS: [&str; 3] = ["town-square", "ops", "salt"];

fn app_error(status: u16, id: &str, message: &str) -> Response {
    Response::json(
        status,
        json!({"id": id, "message": message, "detailed_error": "", "request_id": "b7y1", "status_code": status}).to_string(),
    )
}

/// What a Mattermost incoming webhook does with a request; the posts go to `posted`.
fn incoming(req: &Request, posted: &Mutex<Vec<Value>>) -> Response {
    if req.path != format!("/hooks/{HOOK}") {
        return app_error(400, "web.incoming_webhook.invalid.app_error", "Invalid webhook.");
    }
    if req.method != "POST" {
        return app_error(405, "api.context.405.app_error", "Method not allowed.");
    }
    let unparsable = || app_error(400, "web.incoming_webhook.parse.app_error", "Unable to parse incoming data.");
    let payload: Value = match req.content_type().as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let Ok(form) = req.form() else { return unparsable() };
            match form.iter().find(|(k, _)| k == "payload").map(|(_, v)| serde_json::from_str(v)) {
                Some(Ok(p)) => p,
                _ => return unparsable(),
            }
        }
        Some("application/json") => match req.json() {
            Ok(p) => p,
            Err(_) => return unparsable(),
        },
        _ => return unparsable(),
    };
    if payload.get("text").and_then(Value::as_str).is_none_or(str::is_empty) && payload.get("attachments").is_none() {
        return app_error(400, "web.incoming_webhook.text.app_error", "No text specified.");
    }
    if let Some(channel) = payload.get("channel").and_then(Value::as_str) {
        if !CHANNELS.contains(&channel) {
            return app_error(404, "web.incoming_webhook.channel.app_error", "Couldn't find the channel.");
        }
    }
    posted.lock().unwrap().push(payload);
    Response::text(200, "ok")
}

struct Server {
    stand_in: StandIn,
    posted: Arc<Mutex<Vec<Value>>>,
}

impl Server {
    fn start() -> Server {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let p = posted.clone();
        let stand_in = StandIn::builder(move |req| incoming(req, &p))
            .body_limit(4 * 1024 * 1024)
            .unavailable(app_error(503, "api.server.unavailable", "Service unavailable."))
            .rate_limited(|_| Response::text(429, "limit exceeded"))
            .refusal(app_error(404, "web.incoming_webhook.channel.app_error", "Couldn't find the channel."))
            .start();
        Server { stand_in, posted }
    }

    fn store(&self, extra: Value) -> Mattermost {
        let mut o = json!({"mattermost": {"hook": HOOK, "api_url": self.stand_in.url(), "channel": "salt", "username": "saltbot"}});
        for (k, v) in extra.as_object().unwrap() {
            o["mattermost"][k] = v.clone();
        }
        Mattermost::open_with(MattermostConfig::from_lookup(&Lookup::new(o.as_object().unwrap())).unwrap()).unwrap()
    }

    fn texts(&self) -> Vec<String> {
        self.posted.lock().unwrap().iter().filter_map(|p| p["text"].as_str().map(str::to_string)).collect()
    }

    /// The `return` each post shows for (jid, id), read back from its `return:` line (Python's
    /// `str()`), or the whole text when it was cut.
    fn returns(&self, jid: &str, id: &str) -> Vec<Value> {
        self.texts().iter().filter_map(|t| read_message(t, jid, id)).collect()
    }
}

fn read_message(text: &str, jid: &str, id: &str) -> Option<Value> {
    let body = text.strip_prefix("```")?.strip_suffix("```")?;
    if !body.starts_with(&format!("id: {id}\r\n")) || !body.contains(&format!("\r\njid: {jid}\r\n")) {
        return None;
    }
    if body.contains("[cut: ") {
        return Some(Value::String(text.to_string()));
    }
    let shown = body.split_once("\r\nreturn: ")?.1.strip_suffix("\r\n")?;
    // str() of a string is the string itself.
    Some(suite::pyliteral::parse(shown).unwrap_or_else(|_| Value::String(shown.to_string())))
}

impl AsRef<StandIn> for Server {
    fn as_ref(&self) -> &StandIn {
        &self.stand_in
    }
}

async fn open() -> Option<SinkBackend> {
    let server = Arc::new(Server::start());
    let store = Arc::new(server.store(json!({})));
    let reader = server.clone();
    let read: Reader = Box::new(move |jid, id| {
        let server = reader.clone();
        Box::pin(async move { server.returns(&jid, &id) })
    });
    Some(
        SinkBackend::new(store, read, ())
            .with_service(StandInService { service: server, refusal_words: "Couldn't find the channel." })
            .with_secret(HOOK)
            .cutting_above(MAX_TEXT),
    )
}

sink_conformance!(mattermost, open);

fn ret(jid: &str, id: &str, value: Value) -> Load {
    json!({"fun_args": ["a&b=c+d"], "jid": jid, "return": value, "retcode": 0, "fun": "cmd.run", "id": id}).as_object().unwrap().clone()
}

#[tokio::test]
async fn one_return_is_salts_text_in_a_body_encoded_as_a_form() {
    let server = Server::start();
    server.store(json!({})).returner(&ret("20261201120000000001", "web1", json!("50% & more+"))).await.unwrap();
    let sent = server.stand_in.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", format!("/hooks/{HOOK}").as_str()));
    assert_eq!(req.content_type().as_deref(), Some("application/x-www-form-urlencoded"));
    let form = req.form().unwrap();
    assert_eq!(form[0].0, "payload");
    // Salt's json.dumps of {channel, username, text}; the `&`, `+` and `%` arrive whole.
    let want = r#"{"channel": "salt", "username": "saltbot", "text": "```id: web1\r\nfunction: cmd.run\r\nfunction args: ['a&b=c+d']\r\njid: 20261201120000000001\r\nreturn: 50% & more+\r\n```"}"#;
    assert_eq!(form[0].1, want);
}

#[tokio::test]
async fn mattermosts_refusals_and_rate_limit() {
    let server = Server::start();
    let r = ret("20261201120000000002", "m1", json!(1));
    let err = server.store(json!({"channel": "nowhere"})).returner(&r).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("Couldn't find the channel.")), "{err:?}");
    let err = server.store(json!({"hook": "wronghookid"})).returner(&r).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("Invalid webhook.")), "{err:?}");
    assert!(!err.to_string().contains("wronghookid") && !err.to_string().contains("/hooks/"), "{err}");
    server.stand_in.set_mode(Mode::RateLimited { retry_after_secs: 5 });
    let err = server.store(json!({})).returner(&r).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(5)), "{err:?}");
}

#[tokio::test]
async fn event_return_posts_salts_event_text() {
    let server = Server::start();
    let events = vec![
        Event { tag: "salt/key".into(), data: json!({"id": "m1", "act": "accept", "result": true}) },
        Event { tag: "salt/job/1/new".into(), data: json!({"fun": "test.ping", "minions": ["m1"]}) },
    ];
    assert_eq!(server.store(json!({})).event_return(&events).await.unwrap(), []);
    assert_eq!(
        server.texts(),
        [
            "```tag: salt/key\r\nid: m1\r\nact: accept\r\nresult: True\r\n```",
            "```tag: salt/job/1/new\r\nfun: test.ping\r\nminions: ['m1']\r\n```"
        ]
    );
}
