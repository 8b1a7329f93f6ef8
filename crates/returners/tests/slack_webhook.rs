//! The `slack_webhook` store against a stand-in for a Slack incoming webhook (Slack cannot run
//! here): the stand-in checks each request as Slack does (`POST` to the webhook's path, a form
//! field `payload` or a JSON body, with `text` or `attachments`) and answers as Slack does (200
//! `ok`, 400 `invalid_payload` / `no_text`, 404 `no_service`, 410 `channel_is_archived`, 429
//! `rate_limited` with `Retry-After`). Then the sink suite, Salt's payload, and `event_return`.

// A sink-only store uses none of the job-cache suite.
#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::slack_webhook::{encode::MAX_RETURN, SlackWebhook, SlackWebhookConfig};
use salt_returners::{Event, Load, ReturnerError, Sink};
use saltrs_testkit::stand_in::{Mode, Request, Response, StandIn};
use serde_json::{json, Value};
use suite::sink::{Reader, SinkBackend, StandInService};

const SECRET: &str = "s3cretWebhookKey0123456789";
const HOOK_PATH: &str = "/services/T0001/B0001/s3cretWebhookKey0123456789";

/// What a Slack incoming webhook does with a request; the payloads it posted go to `posted`.
fn webhook(req: &Request, posted: &Mutex<Vec<Value>>) -> Response {
    if req.path != HOOK_PATH {
        return Response::text(404, "no_service");
    }
    if req.method != "POST" {
        return Response::text(405, "invalid_method");
    }
    let payload = match req.content_type().as_deref() {
        Some("application/x-www-form-urlencoded") => {
            let Ok(form) = req.form() else { return Response::text(400, "invalid_payload") };
            match form.iter().find(|(k, _)| k == "payload").map(|(_, v)| serde_json::from_str::<Value>(v)) {
                Some(Ok(p)) => p,
                _ => return Response::text(400, "invalid_payload"),
            }
        }
        Some("application/json") => match req.json() {
            Ok(p) => p,
            Err(_) => return Response::text(400, "invalid_payload"),
        },
        _ => return Response::text(400, "invalid_payload"),
    };
    let text = payload.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    let attachments = payload.get("attachments").and_then(Value::as_array);
    if !text && attachments.is_none_or(|a| a.is_empty()) {
        return Response::text(400, "no_text");
    }
    if attachments.is_some_and(|a| a.len() > 100) {
        return Response::text(400, "too_many_attachments");
    }
    posted.lock().unwrap().push(payload);
    Response::text(200, "ok")
}

struct Hook {
    stand_in: StandIn,
    posted: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn start() -> Hook {
        let posted = Arc::new(Mutex::new(Vec::new()));
        let p = posted.clone();
        let stand_in = StandIn::builder(move |req| webhook(req, &p))
            .body_limit(4 * 1024 * 1024)
            .unavailable(Response::text(500, "rollup_error"))
            .rate_limited(|_| Response::text(429, "rate_limited"))
            .refusal(Response::text(410, "channel_is_archived"))
            .start();
        Hook { stand_in, posted }
    }

    fn store(&self, extra: Value) -> SlackWebhook {
        let mut o = json!({"slack_webhook": {"webhook": "T0001/B0001/s3cretWebhookKey0123456789",
                                             "api_url": format!("{}/services/", self.stand_in.url())}});
        for (k, v) in extra.as_object().unwrap() {
            o["slack_webhook"][k] = v.clone();
        }
        SlackWebhook::open_with(SlackWebhookConfig::from_lookup(&Lookup::new(o.as_object().unwrap())).unwrap()).unwrap()
    }

    /// The `return` each posted payload shows for (jid, id): the `Return:` title read back
    /// (YAML for a mapping, Python's `str()` otherwise), or the title when it was cut.
    fn returns(&self, jid: &str, id: &str) -> Vec<Value> {
        let posted = self.posted.lock().unwrap();
        posted.iter().filter_map(|p| read_payload(p, jid, id)).collect()
    }
}

fn read_payload(p: &Value, jid: &str, id: &str) -> Option<Value> {
    let a = p.get("attachments")?.as_array()?;
    let text = a.first()?.get("text")?.as_str()?;
    if a[0]["author_name"] != id || !text.contains(&format!("JID: {jid}\n")) {
        return None;
    }
    let title = a.get(1)?.get("title")?.as_str()?;
    if title.contains("[cut: ") {
        return Some(Value::String(title.to_string()));
    }
    let shown = title.strip_prefix("Return: ")?;
    Some(match shown.strip_prefix('\n') {
        Some(yaml) => serde_saphyr::from_str::<Value>(yaml).unwrap_or_else(|e| panic!("the YAML {yaml:?}: {e}")),
        None => match suite::pyliteral::parse(shown) {
            Ok(v) if !v.is_string() => v,
            _ => Value::String(shown.to_string()),
        },
    })
}

impl AsRef<StandIn> for Hook {
    fn as_ref(&self) -> &StandIn {
        &self.stand_in
    }
}

async fn open() -> Option<SinkBackend> {
    let hook = Arc::new(Hook::start());
    let store = Arc::new(hook.store(json!({})));
    let reader = hook.clone();
    let read: Reader = Box::new(move |jid, id| {
        let hook = reader.clone();
        Box::pin(async move { hook.returns(&jid, &id) })
    });
    // The return's text is cut to MAX_RETURN; the title adds "Return: ".
    Some(
        SinkBackend::new(store, read, ())
            .with_service(StandInService { service: hook, refusal_words: "channel_is_archived" })
            .with_secret(SECRET)
            .cutting_above(MAX_RETURN + 8),
    )
}

sink_conformance!(slack_webhook, open);

fn ret(jid: &str, id: &str, value: Value, retcode: i64) -> Load {
    json!({"fun_args": ["echo hi"], "jid": jid, "return": value, "retcode": retcode, "fun": "cmd.run", "id": id})
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn one_return_is_salts_payload() {
    let hook = Hook::start();
    let store = hook.store(json!({"author_icon": "https://example.com/salt.png", "failure_title": "[{id}] failed on {localhost}"}));
    store.returner(&ret("20261201120000000001", "web1", json!("hi"), 1)).await.unwrap();
    let sent = hook.stand_in.requests();
    assert_eq!(sent.len(), 1);
    let req = &sent[0];
    assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", HOOK_PATH));
    assert_eq!(req.content_type().as_deref(), Some("application/x-www-form-urlencoded"));
    let form = req.form().unwrap();
    assert_eq!(form.len(), 1);
    assert_eq!(form[0].0, "payload");
    // Salt's json.dumps(payload, ensure_ascii=False).
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();
    let want = format!(
        r##"{{"attachments": [{{"fallback": "[web1] failed on {host}", "color": "#272727", "author_name": "web1", "author_link": "{host}", "author_icon": "https://example.com/salt.png", "title": "Success: False", "text": "Function: cmd.run\nFunction Args: ['echo hi']\nJID: 20261201120000000001\n"}}, {{"color": "danger", "title": "Return: hi"}}]}}"##
    );
    assert_eq!(form[0].1, want);
}

#[tokio::test]
async fn refusals_carry_slacks_words_and_a_rate_limit_its_wait() {
    let hook = Hook::start();
    let r = ret("20261201120000000002", "m1", json!(1), 0);
    hook.stand_in.set_mode(Mode::RateLimited { retry_after_secs: 4 });
    let err = hook.store(json!({})).returner(&r).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)), "{err:?}");
    hook.stand_in.set_mode(Mode::Normal);
    let wrong = hook.store(json!({"webhook": "T0001/B0001/revokedWebhookKey"}));
    let err = wrong.returner(&r).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("no_service")), "{err:?}");
    assert!(!err.to_string().contains("revokedWebhookKey") && !err.to_string().contains("/services/"), "{err}");
    hook.stand_in.set_mode(Mode::Unavailable);
    let err = hook.store(json!({})).returner(&r).await.unwrap_err();
    assert!(err.retry_later() && err.to_string().contains("rollup_error"), "{err}");
}

#[tokio::test]
async fn event_return_posts_the_job_returns_among_the_events() {
    let hook = Hook::start();
    let store = hook.store(json!({}));
    let job_ret = ret("20261201120000000003", "m1", json!({"a": 1}), 0);
    let events = vec![
        Event { tag: "salt/job/20261201120000000003/new".into(), data: json!({"jid": "20261201120000000003", "minions": ["m1"]}) },
        Event { tag: "salt/job/20261201120000000003/ret/m1".into(), data: Value::Object(job_ret) },
        Event { tag: "salt/auth".into(), data: json!({"id": "m1", "act": "accept"}) },
        Event {
            tag: "salt/job/20261201120000000004/ret/m1".into(),
            data: json!({"id": "m1", "jid": "20261201120000000004", "fun": "saltutil.find_job", "return": {}, "retcode": 0}),
        },
    ];
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    assert_eq!(hook.stand_in.requests().len(), 1, "only the job's return");
    assert_eq!(hook.returns("20261201120000000003", "m1"), [json!({"a": 1})]);
}
