//! The sink conformance suite: what every store does with returns, whether it keeps jobs or
//! not. A job cache runs it too (the `conformance!` macro adds these cases, reading back through
//! `get_jid`); a store that only writes (syslog, slack, ...) runs it alone with
//! `sink_conformance!(name, opener)`, its opener giving a [`SinkBackend`] whose `read` finds what
//! the store wrote (in the server, the file, the stand-in's requests).
//!
//! The cases: one return, a batch, awkward keys and an emoji, a 10 MB return, the same return
//! twice, bad records refused one by one, `nocache`; and through a [`Spool`] in front of the
//! store: a service down then back (nothing lost, nothing twice), a permanent refusal (the
//! dead-letter file, with the reason), and a secret in the options that no log line, error or
//! file shows.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Capability, Load, ReturnerError, Sink, Store};
use serde_json::{json, Value};

/// The `return` values the store holds for (jid, minion id), in the order it keeps them.
pub type Reader = Box<dyn Fn(String, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Value>> + Send>> + Send + Sync>;

/// A store under test through its [`Sink`] face, with whatever keeps it alive.
pub struct SinkBackend {
    pub store: Arc<dyn Sink>,
    pub read: Reader,
    /// What the store keeps of a `return`, as `read` gives it back: the value itself for most;
    /// carbon keeps only the numbers. `None`: nothing of it is kept (read finds nothing).
    pub keeps: fn(&Value) -> Option<Value>,
    /// The largest return the store delivers whole, if it cuts bigger ones (a notification
    /// service takes a few KB): `read` then gives the text delivered, which says it was cut.
    pub cuts_above: Option<usize>,
    /// Takes the service down and back, for the outage cases; `None` when the test cannot (they
    /// then say so and check what they can without it).
    pub service: Option<Box<dyn ServiceControl>>,
    /// The secret in the store's options (a password, a token): no log line, error or file
    /// may show it.
    pub secret: Option<String>,
    pub _guard: Box<dyn std::any::Any + Send + Sync>,
}

// Each test binary uses the options its store needs.
#[allow(dead_code)]
impl SinkBackend {
    pub fn new(store: Arc<dyn Sink>, read: Reader, guard: impl std::any::Any + Send + Sync) -> SinkBackend {
        SinkBackend { store, read, keeps: |v| Some(v.clone()), cuts_above: None, service: None, secret: None, _guard: Box::new(guard) }
    }

    pub fn keeping(mut self, keeps: fn(&Value) -> Option<Value>) -> SinkBackend {
        self.keeps = keeps;
        self
    }

    pub fn cutting_above(mut self, bytes: usize) -> SinkBackend {
        self.cuts_above = Some(bytes);
        self
    }

    pub fn with_service(mut self, service: impl ServiceControl + 'static) -> SinkBackend {
        self.service = Some(Box::new(service));
        self
    }

    pub fn with_secret(mut self, secret: impl Into<String>) -> SinkBackend {
        self.secret = Some(secret.into());
        self
    }
}

/// The service behind a store, as a test drives it.
#[async_trait]
pub trait ServiceControl: Send + Sync {
    /// Makes the service unavailable until [`up`](Self::up): stopped, or (a stand-in)
    /// answering 503 or 429 as the real one does when it is overloaded.
    async fn down(&self);
    async fn up(&self);
    /// Makes the service refuse the next request for good (a 4xx no retry cures, as the real
    /// service words it), and gives words its refusal holds; `None` when the service has no
    /// such answer (a socket, a file).
    async fn refuse_next(&self) -> Option<String> {
        None
    }
}

/// A stand-in service (`saltrs_testkit::stand_in`) as the suite drives it: down is its listener
/// closed, up is normal again, a refusal is the stand-in's own answer for the next request.
/// `S` is whatever the test keeps the stand-in in.
#[allow(dead_code)] // the tests of the services behind a stand-in use it
pub struct StandInService<S> {
    pub service: Arc<S>,
    /// Words the service's refusal holds.
    pub refusal_words: &'static str,
}

#[async_trait]
impl<S: AsRef<saltrs_testkit::stand_in::StandIn> + Send + Sync> ServiceControl for StandInService<S> {
    async fn down(&self) {
        (*self.service).as_ref().set_mode(saltrs_testkit::stand_in::Mode::Down);
    }
    async fn up(&self) {
        (*self.service).as_ref().set_mode(saltrs_testkit::stand_in::Mode::Normal);
    }
    async fn refuse_next(&self) -> Option<String> {
        (*self.service).as_ref().set_mode(saltrs_testkit::stand_in::Mode::RefuseNext);
        Some(self.refusal_words.to_string())
    }
}

/// A server the test started (`saltrs_testkit::Server`) as the suite drives it: down is the
/// server stopped, up is it started again on the same port with its data.
#[allow(dead_code)] // the tests of the stores that only send to a real server use it
pub struct ServerService(pub Arc<Mutex<saltrs_testkit::Server>>);

#[async_trait]
impl ServiceControl for ServerService {
    async fn down(&self) {
        let s = self.0.clone();
        tokio::task::spawn_blocking(move || s.lock().unwrap().stop()).await.unwrap();
    }
    async fn up(&self) {
        let s = self.0.clone();
        tokio::task::spawn_blocking(move || s.lock().unwrap().start().unwrap()).await.unwrap();
    }
}

/// Everything the store's code logged in this test binary, captured once for the secret case.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        let subscriber =
            tracing_subscriber::fmt().with_max_level(tracing::Level::DEBUG).with_ansi(false).with_writer(move || LogWriter(logs)).finish();
        // Another test of this binary may have set one; then ours sees nothing, and the case
        // says so rather than pass for the wrong reason.
        assert!(tracing::subscriber::set_global_default(subscriber).is_ok(), "the sink suite owns this binary's log subscriber");
        logs
    })
}

struct LogWriter(&'static Mutex<Vec<u8>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub mod cases {
    use super::*;

    fn obj(v: Value) -> Load {
        v.as_object().expect("an object").clone()
    }

    /// A jid of 2024-05-10 09:30:00 plus `n` microseconds, so cases never share one.
    fn jid(n: u32) -> String {
        format!("20240510093000{n:06}")
    }

    fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
        obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
    }

    async fn read(b: &SinkBackend, jid: &str, id: &str) -> Vec<Value> {
        (b.read)(jid.to_string(), id.to_string()).await
    }

    /// What `read` gives for a store that kept `value` once.
    fn kept(b: &SinkBackend, value: &Value) -> Vec<Value> {
        (b.keeps)(value).into_iter().collect()
    }

    /// Reads until `want` arrives (services such as syslog or carbon write behind their
    /// socket), for up to 30 s; the last read otherwise.
    async fn read_until(b: &SinkBackend, jid: &str, id: &str, want: &[Value]) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = read(b, jid, id).await;
            if got == want || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn one_return(b: &SinkBackend) {
        let j = jid(10);
        let value = json!({"pid": 4242, "stdout": "up 3 days", "ok": true, "load": 0.25});
        b.store.returner(&ret(&j, "minion1", "cmd.run", value.clone())).await.unwrap();
        let want = kept(b, &value);
        assert_eq!(read_until(b, &j, "minion1", &want).await, want);
    }

    pub async fn a_batch(b: &SinkBackend) {
        let j = jid(11);
        let rets: Vec<Load> = (0..50).map(|n| ret(&j, &format!("m{n:02}"), "test.arg", json!({"n": n, "ok": true}))).collect();
        assert_eq!(b.store.returner_batch(&rets).await.unwrap(), []);
        for n in 0..50 {
            let want = kept(b, &json!({"n": n, "ok": true}));
            assert_eq!(read_until(b, &j, &format!("m{n:02}"), &want).await, want, "minion m{n:02}");
        }
    }

    pub async fn sink_is_registered(b: &SinkBackend) {
        let s = &*b.store;
        let entry = salt_returners::entry(s.name()).expect("every store is in the registry");
        assert!(std::ptr::eq(entry, s.entry()), "{} answers with another store's entry", s.name());
        assert!(s.supports(Capability::Returner));
        assert!(salt_returners::builtin_names().contains(&s.name()), "sys.list_returners lists it");
        // An event batch: stored, or refused as unsupported, as the entry says.
        let got = s.event_return(&[]).await;
        if s.supports(Capability::EventReturn) {
            assert_eq!(got.unwrap(), []);
        } else {
            assert!(matches!(got, Err(ReturnerError::Unsupported { .. })), "{got:?}");
        }
    }

    /// Keys and text the stores treat specially (dots and `$` in MongoDB keys, `/` and `:` in
    /// key-value paths, quotes in SQL and JSON), an emoji, and ids and functions with dots.
    pub async fn awkward_keys_and_text_round_trip(b: &SinkBackend) {
        let j = jid(1);
        let value = json!({
            "a.b": 1, "$set": {"$inc": 2}, "x/y": "/etc/passwd", "k:v": "a:b", "emoji 😀": "✓ 日本語",
            "quote'\"": "'; DROP TABLE salt_returns; -- \" \\ %_", "nested": {"dots.in.keys": [null, true, 1.5, -7]}
        });
        let id = "web1.example.com";
        assert_eq!(b.store.returner_batch(&[ret(&j, id, "state.apply", value.clone())]).await.unwrap(), []);
        let want = kept(b, &value);
        assert_eq!(read_until(b, &j, id, &want).await, want);
    }

    pub async fn a_ten_megabyte_return(b: &SinkBackend) {
        let j = jid(2);
        let big = "x".repeat(10 * 1024 * 1024);
        b.store.returner(&ret(&j, "big", "cmd.run", json!(big))).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut got = read(b, &j, "big").await;
        while got.is_empty() && (b.keeps)(&json!(big)).is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            got = read(b, &j, "big").await;
        }
        match (b.cuts_above, (b.keeps)(&json!(big))) {
            // A notification: what was sent fits the service and says it was cut.
            (Some(limit), Some(_)) => {
                assert_eq!(got.len(), 1, "one message");
                let text = got[0].as_str().expect("a cut return reads back as the text sent");
                assert!(text.len() <= limit, "{} bytes sent, the service takes {limit}", text.len());
                assert!(text.contains("cut"), "the message says the return was cut: {:?}", &text[text.len().saturating_sub(300)..]);
            }
            (None, Some(_)) => {
                assert_eq!(got.len(), 1);
                assert_eq!(got[0].as_str().map(str::len), Some(big.len()));
            }
            (_, None) => assert!(got.is_empty(), "the store keeps none of it"),
        }
    }

    pub async fn the_same_return_twice_is_kept_once(b: &SinkBackend) {
        let j = jid(3);
        let r = ret(&j, "m1", "test.ping", json!(true));
        assert_eq!(b.store.returner_batch(&[r.clone(), r.clone()]).await.unwrap(), []);
        b.store.returner(&r).await.unwrap();
        let want = kept(b, &json!(true));
        assert_eq!(read_until(b, &j, "m1", &want).await, want);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(read(b, &j, "m1").await, want, "kept once");
    }

    pub async fn each_bad_return_is_refused_alone(b: &SinkBackend) {
        let j = jid(4);
        let rejected = b
            .store
            .returner_batch(&[
                ret(&j, "good", "test.ping", json!(1)),
                obj(json!({"jid": j, "return": true})),
                ret(&j, "../evil", "test.ping", json!(true)),
                ret("not-a-jid", "m1", "test.ping", json!(true)),
                ret(&j, "also-good", "test.ping", json!(2)),
            ])
            .await
            .unwrap();
        assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2, 3], "{rejected:?}");
        let (one, two) = (kept(b, &json!(1)), kept(b, &json!(2)));
        assert_eq!(read_until(b, &j, "good", &one).await, one);
        assert_eq!(read_until(b, &j, "also-good", &two).await, two);
        let alone = b.store.returner(&ret(&j, "../evil", "test.ping", json!(true))).await;
        assert!(matches!(alone, Err(ReturnerError::Rejected(_))), "{alone:?}");
    }

    pub async fn nocache_returns_are_not_stored(b: &SinkBackend) {
        assert_eq!(b.store.returner_batch(&[ret("nocache", "m1", "test.ping", json!(true))]).await.unwrap(), []);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(read(b, "nocache", "m1").await.is_empty());
    }

    fn spool_of(b: &SinkBackend, dir: &std::path::Path) -> Spool {
        Spool::open(dir, Store::Sink(b.store.clone())).expect("a spool in a temporary dir")
    }

    fn dead_letters(dir: &std::path::Path) -> Vec<Value> {
        std::fs::read_to_string(dir.join("dead-letter.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("dead letters are JSON lines"))
            .collect()
    }

    /// The service goes down while returns arrive, then comes back: through the spool, every
    /// return arrives, once.
    pub async fn a_service_down_then_back_loses_nothing(b: &SinkBackend) {
        let Some(service) = &b.service else {
            eprintln!("{}: this test cannot take the service down; the outage case checks nothing here", b.store.name());
            return;
        };
        let j = jid(12);
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_of(b, dir.path());
        service.down().await;
        for n in 0..20 {
            spool.push(vec![Record::Return { ret: ret(&j, &format!("m{n:02}"), "test.arg", json!({"n": n})) }]).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(spool.stats().depth, 20, "held while the service is down");
        service.up().await;
        assert!(spool.flush(Duration::from_secs(120)).await, "delivered once the service is back");
        for n in 0..20 {
            let want = kept(b, &json!({"n": n}));
            assert_eq!(read_until(b, &j, &format!("m{n:02}"), &want).await, want, "m{n:02}: once, not lost");
        }
        assert!(dead_letters(dir.path()).is_empty(), "an outage refuses nothing");
    }

    /// A record refused for good goes to the dead-letter file with the reason (ours for a bad
    /// record; the service's own words for its refusal), and the others arrive.
    pub async fn a_permanent_refusal_goes_to_the_dead_letter_file(b: &SinkBackend) {
        let j = jid(13);
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_of(b, dir.path());
        spool
            .push(vec![
                Record::Return { ret: ret("not-a-jid", "m1", "test.ping", json!(true)) },
                Record::Return { ret: ret(&j, "fine", "test.ping", json!(7)) },
            ])
            .await
            .unwrap();
        assert!(spool.flush(Duration::from_secs(60)).await);
        let want = kept(b, &json!(7));
        assert_eq!(read_until(b, &j, "fine", &want).await, want);
        let dead = dead_letters(dir.path());
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!(dead[0]["record"]["ret"]["jid"], "not-a-jid");
        assert!(dead[0]["reason"].as_str().is_some_and(|r| r.contains("jid")), "{dead:?}");

        let Some(service) = &b.service else { return };
        let Some(words) = service.refuse_next().await else { return };
        spool.push(vec![Record::Return { ret: ret(&j, "refused", "test.ping", json!(8)) }]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(60)).await, "a refusal is not retried for ever");
        let dead = dead_letters(dir.path());
        assert_eq!(dead.len(), 2, "{dead:?}");
        assert_eq!(dead[1]["record"]["ret"]["id"], "refused");
        let reason = dead[1]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&words), "the service's own words {words:?} in {reason:?}");
    }

    /// The secret in the options shows nowhere: not in an error, a log line, the spool's files
    /// or the dead-letter file, even while the service is down or refusing.
    pub async fn the_secret_is_never_shown(b: &SinkBackend) {
        let Some(secret) = &b.secret else {
            eprintln!("{}: no secret in this store's options; nothing to hide", b.store.name());
            return;
        };
        let logs = captured_logs();
        let j = jid(14);
        let dir = tempfile::tempdir().unwrap();
        let spool = spool_of(b, dir.path());
        let mut errors = Vec::new();
        if let Some(service) = &b.service {
            service.down().await;
            if let Err(e) = b.store.returner(&ret(&j, "m-down", "test.ping", json!(true))).await {
                errors.push(format!("{e} {e:?}"));
            }
            spool.push(vec![Record::Return { ret: ret(&j, "m-spooled", "test.ping", json!(true)) }]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            service.up().await;
            if service.refuse_next().await.is_some() {
                if let Err(e) = b.store.returner(&ret(&j, "m-refused", "test.ping", json!(true))).await {
                    errors.push(format!("{e} {e:?}"));
                }
            }
        }
        if let Err(e) = b.store.check().await {
            errors.push(format!("{e} {e:?}"));
        }
        spool.push(vec![Record::Return { ret: ret("bad-jid", "m1", "test.ping", json!(true)) }]).await.unwrap();
        assert!(spool.flush(Duration::from_secs(60)).await);
        for e in &errors {
            assert!(!e.contains(secret.as_str()), "an error shows the secret: {e}");
        }
        let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
        assert!(!logs.is_empty(), "the logs were captured");
        assert!(!logs.contains(secret.as_str()), "a log line shows the secret");
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let text = std::fs::read(file.path()).unwrap_or_default();
            assert!(!String::from_utf8_lossy(&text).contains(secret.as_str()), "{} shows the secret", file.path().display());
        }
    }
}

/// Every sink case, as listed in [`sink_conformance!`]: one place for the list.
macro_rules! sink_cases {
    ($then:ident ! ($($args:tt)*)) => {
        $then! { $($args)* [
            sink_is_registered,
            one_return,
            a_batch,
            awkward_keys_and_text_round_trip,
            a_ten_megabyte_return,
            the_same_return_twice_is_kept_once,
            each_bad_return_is_refused_alone,
            nocache_returns_are_not_stored,
            a_service_down_then_back_loses_nothing,
            a_permanent_refusal_goes_to_the_dead_letter_file,
            the_secret_is_never_shown,
        ] }
    };
}

/// `sink_conformance!(name, opener)`: the sink suite against a store that only writes.
macro_rules! sink_conformance {
    ($backend:ident, $open:ident) => {
        sink_cases! { sink_conformance!(@tests $backend, $open,) }
    };
    (@tests $backend:ident, $open:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(backend) = super::$open().await {
                        crate::suite::sink::cases::$test(&backend).await;
                    }
                }
            )*
        }
    };
}
