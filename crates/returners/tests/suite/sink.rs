//! The sink conformance suite: what every store does with returns, whether it keeps jobs or
//! not. A job cache runs it too (the `conformance!` macro adds these cases, reading back through
//! `get_jid`); a store that only writes (syslog, slack, ...) runs it alone with
//! `sink_conformance!(name, opener)`, its opener giving a [`SinkBackend`] whose `read` finds what
//! the store wrote (in the server, the file, the mock's requests).

use std::sync::Arc;

use salt_returners::{Capability, Load, ReturnerError, Sink};
use serde_json::{json, Value};

/// The `return` values the store holds for (jid, minion id), in the order it keeps them.
pub type Reader = Box<dyn Fn(String, String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Value>> + Send>> + Send + Sync>;

/// A store under test through its [`Sink`] face, with whatever keeps it alive.
pub struct SinkBackend {
    pub store: Arc<dyn Sink>,
    pub read: Reader,
    pub _guard: Box<dyn std::any::Any + Send + Sync>,
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
        assert_eq!(read(b, &j, id).await, [value]);
    }

    pub async fn a_ten_megabyte_return(b: &SinkBackend) {
        let j = jid(2);
        let big = "x".repeat(10 * 1024 * 1024);
        b.store.returner(&ret(&j, "big", "cmd.run", json!(big))).await.unwrap();
        let got = read(b, &j, "big").await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_str().map(str::len), Some(big.len()));
    }

    pub async fn the_same_return_twice_is_kept_once(b: &SinkBackend) {
        let j = jid(3);
        let r = ret(&j, "m1", "test.ping", json!(true));
        assert_eq!(b.store.returner_batch(&[r.clone(), r.clone()]).await.unwrap(), []);
        b.store.returner(&r).await.unwrap();
        assert_eq!(read(b, &j, "m1").await, [json!(true)]);
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
        assert_eq!(read(b, &j, "good").await, [json!(1)]);
        assert_eq!(read(b, &j, "also-good").await, [json!(2)]);
        let alone = b.store.returner(&ret(&j, "../evil", "test.ping", json!(true))).await;
        assert!(matches!(alone, Err(ReturnerError::Rejected(_))), "{alone:?}");
    }

    pub async fn nocache_returns_are_not_stored(b: &SinkBackend) {
        assert_eq!(b.store.returner_batch(&[ret("nocache", "m1", "test.ping", json!(true))]).await.unwrap(), []);
        assert!(read(b, "nocache", "m1").await.is_empty());
    }
}

/// Every sink case, as listed in [`sink_conformance!`]: one place for the list.
macro_rules! sink_cases {
    ($then:ident ! ($($args:tt)*)) => {
        $then! { $($args)* [
            sink_is_registered,
            awkward_keys_and_text_round_trip,
            a_ten_megabyte_return,
            the_same_return_twice_is_kept_once,
            each_bad_return_is_refused_alone,
            nocache_returns_are_not_stored,
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
