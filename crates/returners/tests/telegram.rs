//! The `telegram` returner against a stand-in Bot API (`saltrs_testkit::stand_in`) that checks
//! each request as Telegram does (the token in the path, the chat, the text and its 4096
//! characters) and answers as it answers: the sink suite, then the exact request, Telegram's
//! 429 (its header and its `parameters.retry_after`), its refusals in the dead-letter file, and
//! the token in no error.

#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;
mod messages;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::spool::{Record, Spool};
use salt_returners::telegram::{Telegram, TelegramConfig};
use salt_returners::{Load, ReturnerError, Sink, Store};
use saltrs_testkit::stand_in::{Request, Response, StandIn};
use serde_json::{json, Map, Value};
use suite::sink::SinkBackend;

const TOKEN: &str = "7654321:AAH-s3cr3t_t0k3n-for-the-tests";
const CHAT: &str = "-1001234567890";

fn telegram_error(status: u16, description: &str) -> Response {
    Response::json(status, json!({"ok": false, "error_code": status, "description": description}).to_string())
}

/// What the Bot API checks of a request, and its answers.
fn bot_api(req: &Request) -> Response {
    let Some(method) = req.path.strip_prefix(&format!("/bot{TOKEN}/")) else {
        return telegram_error(401, "Unauthorized");
    };
    match method {
        "getMe" => Response::json(200, r#"{"ok":true,"result":{"id":7654321,"is_bot":true,"first_name":"salt","username":"salt_bot"}}"#),
        "sendMessage" => {
            if req.method != "POST" || req.content_type().as_deref() != Some("application/x-www-form-urlencoded") {
                return telegram_error(400, "Bad Request: expected a form");
            }
            let Ok(form) = req.form() else { return telegram_error(400, "Bad Request: can't parse the form") };
            let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            if field("chat_id") != Some(CHAT) {
                return telegram_error(400, "Bad Request: chat not found");
            }
            let text = field("text").unwrap_or_default();
            if text.trim().is_empty() {
                return telegram_error(400, "Bad Request: message text is empty");
            }
            if text.encode_utf16().count() > 4096 {
                return telegram_error(400, "Bad Request: message is too long");
            }
            Response::json(
                200,
                json!({"ok": true, "result": {"message_id": 1, "chat": {"id": CHAT.parse::<i64>().unwrap()}, "text": text}}).to_string(),
            )
        }
        _ => telegram_error(404, "Not Found"),
    }
}

fn stand_in() -> Arc<StandIn> {
    Arc::new(
        StandIn::builder(bot_api)
            .refusal(telegram_error(400, "Bad Request: chat not found"))
            .rate_limited(|secs| {
                Response::json(
                    429,
                    json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {secs}"),
                           "parameters": {"retry_after": secs}})
                    .to_string(),
                )
            })
            .start(),
    )
}

fn options(service: &StandIn, chat: &str, token: &str) -> Map<String, Value> {
    json!({"telegram": {"chat_id": chat, "token": token, "api_url": service.url()}}).as_object().unwrap().clone()
}

fn store(service: &StandIn) -> Telegram {
    Telegram::open(&Lookup::new(&options(service, CHAT, TOKEN))).unwrap()
}

/// The texts of the messages Telegram took.
fn texts(service: &StandIn) -> Vec<String> {
    service
        .exchanges()
        .into_iter()
        .filter(|e| e.status == 200 && e.request.path.ends_with("/sendMessage"))
        .filter_map(|e| e.request.form().ok()?.into_iter().find(|(k, _)| k == "text").map(|(_, v)| v))
        .collect()
}

async fn open() -> Option<SinkBackend> {
    let service = stand_in();
    let sink: Arc<dyn Sink> = Arc::new(store(&service));
    let reader = service.clone();
    let read: suite::sink::Reader = Box::new(move |jid, id| {
        let service = reader.clone();
        Box::pin(async move { messages::returns_in(texts(&service), &jid, &id) })
    });
    Some(
        SinkBackend::new(sink, read, service.clone())
            .cutting_above(4096)
            .with_service(suite::sink::StandInService { service, refusal_words: "Bad Request: chat not found" })
            .with_secret(TOKEN),
    )
}

sink_conformance!(telegram, open);

fn ret(jid: &str, id: &str, value: Value) -> Load {
    json!({"id": id, "jid": jid, "fun": "cmd.run", "fun_args": ["uptime"], "return": value, "retcode": 0, "success": true})
        .as_object()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_request_is_salts_send_message() {
    let service = stand_in();
    store(&service).returner(&ret("20261201120000000001", "web1", json!({"up": "3 days", "ok": true}))).await.unwrap();
    let requests = service.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", format!("/bot{TOKEN}/sendMessage").as_str()));
    assert_eq!(r.content_type().as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        r.form().unwrap(),
        [
            ("chat_id".to_string(), CHAT.to_string()),
            (
                "text".to_string(),
                "id: web1\r\nfunction: cmd.run\r\nfunction args: ['uptime']\r\njid: 20261201120000000001\r\nreturn: {'up': '3 days', 'ok': True}\r\n"
                    .to_string()
            ),
        ]
    );
    // A topic of a forum chat.
    let mut o = options(&service, CHAT, TOKEN);
    o["telegram"]["thread_id"] = json!(42);
    Telegram::open(&Lookup::new(&o)).unwrap().returner(&ret("20261201120000000002", "web1", json!(1))).await.unwrap();
    let form = service.requests()[1].form().unwrap();
    assert_eq!(form[2], ("message_thread_id".to_string(), "42".to_string()));
}

#[tokio::test]
async fn a_long_return_fits_telegrams_4096_characters_and_says_it_was_cut() {
    let service = stand_in();
    // Emoji are 2 UTF-16 units each (Telegram's count) and 4 bytes.
    store(&service).returner(&ret("20261201120000000003", "m1", json!("😀".repeat(3000)))).await.unwrap();
    let sent = texts(&service);
    assert_eq!(sent.len(), 1, "taken, not refused as too long");
    assert!(sent[0].contains("[cut: ") && sent[0].encode_utf16().count() <= 4096, "{}", &sent[0][sent[0].len() - 80..]);
}

#[tokio::test]
async fn a_429_waits_as_telegram_asks_in_its_header_or_its_answer() {
    let service = stand_in();
    let telegram = store(&service);
    service.set_mode(saltrs_testkit::stand_in::Mode::RateLimited { retry_after_secs: 3 });
    let err = telegram.returner(&ret("20261201120000000004", "m1", json!(1))).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Throttled { after, .. } if *after == Duration::from_secs(3)), "{err:?}");
    assert!(err.to_string().contains("Too Many Requests: retry after 3"), "{err}");
    service.set_mode(saltrs_testkit::stand_in::Mode::Normal);

    // The Bot API's own 429 says how long only in its body.
    let refused_once = Arc::new(AtomicUsize::new(0));
    let seen = refused_once.clone();
    let service = Arc::new(
        StandIn::builder(move |req| {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                return Response::json(
                    429,
                    r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 2","parameters":{"retry_after":2}}"#,
                );
            }
            bot_api(req)
        })
        .start(),
    );
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Store::Sink(Arc::new(store(&service)))).unwrap();
    let started = std::time::Instant::now();
    spool.push(vec![Record::Return { ret: ret("20261201120000000005", "m1", json!({"n": 5})) }]).await.unwrap();
    assert!(spool.flush(Duration::from_secs(30)).await);
    assert!(started.elapsed() >= Duration::from_secs(2), "waited as asked: {:?}", started.elapsed());
    assert_eq!(messages::returns_in(texts(&service), "20261201120000000005", "m1"), [json!({"n": 5})]);
    assert_eq!(service.requests().len(), 2, "one refused, one taken");
}

#[tokio::test]
async fn a_chat_not_found_goes_to_the_dead_letter_file_in_telegrams_words() {
    let service = stand_in();
    let wrong_chat: Arc<dyn Sink> = Arc::new(Telegram::open(&Lookup::new(&options(&service, "-100999", TOKEN))).unwrap());
    let err = wrong_chat.returner(&ret("20261201120000000006", "m1", json!(1))).await.unwrap_err();
    assert!(matches!(&err, ReturnerError::Rejected(m) if m.contains("Bad Request: chat not found")), "{err:?}");
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Store::Sink(wrong_chat)).unwrap();
    spool.push(vec![Record::Return { ret: ret("20261201120000000007", "m1", json!(1)) }]).await.unwrap();
    assert!(spool.flush(Duration::from_secs(30)).await);
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).unwrap();
    assert!(dead.contains("Bad Request: chat not found"), "{dead}");
}

#[tokio::test]
async fn the_token_is_in_no_error() {
    let service = stand_in();
    let wrong_token = "1111111:AAH-wrong-t0k3n";
    let telegram = Telegram::open(&Lookup::new(&options(&service, CHAT, wrong_token))).unwrap();
    let unauthorized = telegram.returner(&ret("20261201120000000008", "m1", json!(1))).await.unwrap_err();
    assert!(unauthorized.retry_later(), "a wrong token is fixed in the config, nothing is lost meanwhile: {unauthorized:?}");
    assert!(unauthorized.to_string().contains("Unauthorized"), "{unauthorized}");
    let at_start = telegram.check().await.unwrap_err();
    service.set_mode(saltrs_testkit::stand_in::Mode::Down);
    let down = telegram.returner(&ret("20261201120000000009", "m1", json!(1))).await.unwrap_err();
    assert!(down.retry_later() && down.to_string().contains(&format!("at {}", service.url())), "{down}");
    for e in [&unauthorized, &at_start, &down] {
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(wrong_token) && !shown.contains("/bot"), "{shown}");
    }
    service.set_mode(saltrs_testkit::stand_in::Mode::Normal);
    assert!(store(&service).check().await.is_ok(), "getMe with the right token");
    let config = TelegramConfig::from_lookup(&Lookup::new(&options(&service, CHAT, TOKEN))).unwrap();
    assert!(!format!("{config:?}").contains(TOKEN));
}
