//! The job-cache conformance suite: every backend that can be a `master_job_cache` runs the
//! same tests through `Arc<dyn JobCache>`, and the sink suite ([`sink`]) through its `Sink` face.
//!
//! Each backend has a file `tests/conformance_<name>.rs` with `#[macro_use] mod suite;`, its
//! opener, and one line `conformance!(name, opener);`, where `opener` is
//! an `async fn() -> Option<Backend>` that returns an EMPTY store (a fresh database or schema
//! per call: the listing tests assert exact job lists). A backend that needs a server returns
//! `None` when the server is unreachable, after `saltrs_testkit::require_server` has reported
//! the skip (a failure under `CI=true`).

#[macro_use]
pub mod sink;
pub mod pyliteral;

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use salt_returners::{missing_for, Capability, JobCache, JobQuery, JobSummary, Load, MASTER_JOB_CACHE};
use serde_json::{json, Map, Value};

/// A store under test, with whatever keeps it alive (a temp dir, a server handle), and the
/// ways its answers may differ from `local_cache`'s while still being Salt's behaviour.
pub struct Backend {
    pub store: Arc<dyn JobCache>,
    pub _guard: Box<dyn std::any::Any + Send + Sync>,
    pub traits: Traits,
    /// Makes everything the store holds that many seconds older, behind its back (an UPDATE
    /// of its activity times), so the purge cases need not sleep. Stores that purge have one.
    pub age: Option<Ager>,
}

impl Backend {
    /// The same store through its [`sink::SinkBackend`] face, reading back with `get_jid`, for
    /// the sink suite.
    pub fn into_sink(self) -> sink::SinkBackend {
        let cache = self.store.clone();
        let read: sink::Reader = Box::new(move |jid, id| {
            let cache = cache.clone();
            Box::pin(async move {
                let got = cache.get_jid(&jid).await.unwrap();
                got.get(&id).map(|r| r["return"].clone()).into_iter().collect()
            })
        });
        sink::SinkBackend::new(self.store, read, self._guard)
    }
}

pub type Ager = Box<dyn Fn(u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// Where a store's answers legitimately differ (each difference is Salt's own). The suite
/// checks that the store's `supports` agrees with the flags, then asserts the behaviour each
/// flag stands for, so a flag never just switches a test off.
#[derive(Debug, Clone, Copy)]
pub struct Traits {
    /// What `get_jid` and `get_fun` give per minion.
    pub shape: Shape,
    /// `get_load` carries `Minions` (local_cache keeps the expected minions; Salt's SQL stores do not).
    pub keeps_minions: bool,
    /// The store implements `event_return`.
    pub event_return: bool,
    /// `prep_jid(nocache=True)` stops later returns of that jid from being stored (local_cache's
    /// marker); Salt's SQL stores ignore the flag and store them.
    pub nocache: bool,
    /// The store implements `clean_old_jobs` (keep_jobs_seconds purge).
    pub clean_old_jobs: bool,
    /// The store implements `update_endtime`/`get_endtime` (local_cache only, in Salt).
    pub endtime: bool,
    /// A stored load or return reads back with its keys in the order given (jsonb sorts them).
    pub key_order: bool,
    /// Text may hold the character U+0000 (jsonb refuses it, as Salt's pgjsonb does).
    pub nul_chars: bool,
}

/// The per-minion value of `get_jid` / `get_fun`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// local_cache: `get_jid` gives `{return, retcode?, success?, out?}`, `get_fun` the whole return load.
    LocalCache,
    /// mysql, pgjsonb, postgres: both give the whole stored return load (`full_ret`).
    FullRet,
    /// sqlite3: its `full_ret` column holds only the return value, so `get_jid` gives
    /// `{return}` and `get_fun` the bare value.
    ReturnOnly,
}

// Each test binary uses one of these.
#[allow(dead_code)]
impl Traits {
    pub const LOCAL_CACHE: Traits = Traits {
        shape: Shape::LocalCache,
        keeps_minions: true,
        event_return: false,
        nocache: true,
        clean_old_jobs: true,
        endtime: true,
        key_order: true,
        nul_chars: true,
    };
    /// mysql and postgres (text columns).
    pub const SQL: Traits = Traits {
        shape: Shape::FullRet,
        keeps_minions: false,
        event_return: true,
        nocache: false,
        clean_old_jobs: true,
        endtime: false,
        key_order: true,
        nul_chars: true,
    };
    /// elasticsearch: its job cache keeps each return whole (`full_ret`), with Salt's SQL calls.
    pub const ELASTICSEARCH: Traits = Traits::SQL;
    /// pgjsonb: SQL, but `jsonb` orders keys its own way and cannot hold U+0000.
    pub const PGJSONB: Traits = Traits { key_order: false, nul_chars: false, ..Traits::SQL };
    /// redis: the whole stored return, `Minions` kept (`minions:<jid>`), purge by activity;
    /// Salt's redis has no events, no nocache marker and no end times.
    pub const REDIS: Traits = Traits {
        shape: Shape::FullRet,
        keeps_minions: true,
        event_return: false,
        nocache: false,
        clean_old_jobs: true,
        endtime: false,
        key_order: true,
        nul_chars: true,
    };
    /// memcache: Salt's calls (no purge: memcached evicts; no events, no end times, no Minions).
    pub const MEMCACHE: Traits = Traits { keeps_minions: false, clean_old_jobs: false, ..Traits::REDIS };
    /// sqlite3: Salt's calls (no purge, no events, no end times) and its `full_ret` column.
    pub const SQLITE3: Traits = Traits {
        shape: Shape::ReturnOnly,
        keeps_minions: false,
        event_return: false,
        nocache: false,
        clean_old_jobs: false,
        endtime: false,
        key_order: true,
        nul_chars: true,
    };
    /// etcd: Salt's `get_jid` gives `{return}` per minion, `get_fun` the bare value; no purge
    /// (leases expire the keys), no events, no end times.
    pub const ETCD: Traits = Traits { ..Traits::SQLITE3 };
    /// couchdb: a document per return (`get_jid` and `get_fun` give the whole return), purged
    /// by its `timestamp`; no events, no end times.
    pub const COUCHDB: Traits = Traits {
        shape: Shape::FullRet,
        keeps_minions: false,
        event_return: false,
        nocache: false,
        clean_old_jobs: true,
        endtime: false,
        key_order: true,
        nul_chars: true,
    };
}

/// The tests, each against one empty store.
pub mod cases {
    use super::*;

    pub fn obj(v: Value) -> Load {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    /// The jid of 2024-05-10 09:30:00 plus `secs`.
    pub fn jid(secs: i64) -> String {
        salt_proto::jid::jid_at(Utc.with_ymd_and_hms(2024, 5, 10, 9, 30, 0).unwrap() + chrono::Duration::seconds(secs))
    }

    fn time_of(secs: i64) -> NaiveDateTime {
        (Utc.with_ymd_and_hms(2024, 5, 10, 9, 30, 0).unwrap() + chrono::Duration::seconds(secs)).naive_utc()
    }

    fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
        obj(json!({"cmd": "_return", "id": id, "jid": jid, "fun": fun, "fun_args": [], "return": value,
                   "retcode": 0, "success": true}))
    }

    fn publish(jid: &str, fun: &str, tgt: Value) -> Load {
        obj(json!({"cmd": "publish", "tgt": tgt, "fun": fun, "arg": [], "tgt_type": "glob", "ret": "",
                   "jid": jid, "user": "root"}))
    }

    fn strings(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn jids(jobs: &[JobSummary]) -> Vec<String> {
        jobs.iter().map(|j| j.jid.clone()).collect()
    }

    /// The load `get_load` gives back: with `Minions` when the store keeps them.
    fn with_minions(b: &Backend, load: &Load, minions: Value) -> Load {
        let mut want = load.clone();
        if b.traits.keeps_minions {
            want.insert("Minions".into(), minions);
        }
        want
    }

    pub async fn capabilities(b: &Backend) {
        let s = &*b.store;
        // The registry entry is the one word on what a store has: every call it lists answers,
        // every other one is `Unsupported`.
        let j = jid(1);
        let unsupported = |r: salt_returners::Result<()>| matches!(r, Err(salt_returners::ReturnerError::Unsupported { .. }));
        let answers = [
            (Capability::SaveMinions, unsupported(s.save_minions(&j, &strings(&["m1"]), None).await)),
            (Capability::GetFun, unsupported(s.get_fun("test.ping").await.map(drop))),
            (Capability::GetMinions, unsupported(s.get_minions().await.map(drop))),
            (Capability::CleanOldJobs, unsupported(s.clean_old_jobs(Duration::from_secs(86400)).await.map(drop))),
            (Capability::UpdateEndtime, unsupported(s.update_endtime(&j, "2026, Dec 01 12:00:00.000000").await)),
            (Capability::GetEndtime, unsupported(s.get_endtime(&j).await.map(drop))),
            (Capability::EventReturn, unsupported(s.event_return(&[]).await.map(drop))),
        ];
        for (call, was_unsupported) in answers {
            assert_eq!(was_unsupported, !s.supports(call), "{call:?}: the entry and the store disagree");
        }
        assert_eq!(salt_returners::entry(s.name()).map(|e| e.name).ok(), Some(s.name()), "every store is in the registry");
        assert_eq!(missing_for(s, MASTER_JOB_CACHE), None);
        for call in [Capability::SaveMinions, Capability::GetFun, Capability::GetMinions] {
            assert!(s.supports(call), "{call:?}");
        }
        assert_eq!(s.supports(Capability::EventReturn), b.traits.event_return);
        assert_eq!(s.supports(Capability::CleanOldJobs), b.traits.clean_old_jobs);
        assert_eq!(s.supports(Capability::UpdateEndtime), b.traits.endtime);
        assert_eq!(s.supports(Capability::GetEndtime), b.traits.endtime);
    }

    pub async fn load_first_wins_with_sorted_minions(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        let first = publish(&j, "test.ping", json!("*"));
        s.save_load(&j, &first, Some(&strings(&["web2", "db1", "web1"]))).await.unwrap();
        s.save_load(&j, &publish(&j, "cmd.run", json!("other")), None).await.unwrap();
        let want = with_minions(b, &first, json!(["db1", "web1", "web2"]));
        assert_eq!(s.get_load(&j).await.unwrap(), Some(want));
        // The listing shows the first load too.
        let listed = s.get_jids(&JobQuery::default()).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].fun, "test.ping");
    }

    pub async fn save_minions_merges_syndic_lists(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        s.save_load(&j, &publish(&j, "test.ping", json!("*")), Some(&strings(&["m2"]))).await.unwrap();
        s.save_minions(&j, &strings(&["m1", "m2"]), Some("syndic1")).await.unwrap();
        s.save_minions(&j, &strings(&["m3"]), None).await.unwrap();
        let load = s.get_load(&j).await.unwrap().unwrap();
        if b.traits.keeps_minions {
            assert_eq!(load["Minions"], json!(["m1", "m2", "m3"]));
        } else {
            // Salt's save_minions is a no-op here: accepted, and the load is untouched.
            assert_eq!(load, publish(&j, "test.ping", json!("*")));
        }
        // A load without minions has no "Minions" key at all.
        let k = jid(2);
        s.save_load(&k, &publish(&k, "test.ping", json!("*")), None).await.unwrap();
        assert!(!s.get_load(&k).await.unwrap().unwrap().contains_key("Minions"));
    }

    pub async fn unknown_jid(b: &Backend) {
        let s = &*b.store;
        assert_eq!(s.get_load(&jid(9)).await.unwrap(), None);
        assert_eq!(s.get_jid(&jid(9)).await.unwrap(), Map::new());
        if b.traits.endtime {
            assert_eq!(s.get_endtime(&jid(9)).await.unwrap(), None);
        }
        assert_eq!(s.get_load("not-a-jid").await.unwrap(), None);
        assert_eq!(s.get_jid("'; DROP TABLE jobs; --").await.unwrap(), Map::new());
    }

    pub async fn get_jid_shape(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        s.save_load(&j, &publish(&j, "state.apply", json!("*")), Some(&strings(&["a", "b", "c", "d"]))).await.unwrap();
        let rets = [
            json!({"id": "a", "jid": j, "fun": "state.apply", "return": {"x": 1}, "retcode": 0, "success": true, "out": "highstate"}),
            json!({"id": "b", "jid": j, "fun": "state.apply", "return": "boom", "retcode": 2, "success": false}),
            json!({"id": "c", "jid": j, "fun": "state.apply", "return": null}),
        ];
        assert_eq!(s.returner_batch(&rets.iter().cloned().map(obj).collect::<Vec<_>>()).await.unwrap(), []);
        let got = s.get_jid(&j).await.unwrap();
        match b.traits.shape {
            Shape::LocalCache => {
                assert_eq!(
                    Value::Object(got.clone()),
                    json!({
                        "a": {"return": {"x": 1}, "retcode": 0, "success": true, "out": "highstate"},
                        "b": {"return": "boom", "retcode": 2, "success": false},
                        "c": {"return": null},
                    })
                );
                // Salt's key order inside an entry.
                assert_eq!(got["a"].as_object().unwrap().keys().collect::<Vec<_>>(), ["return", "retcode", "success", "out"]);
            }
            Shape::FullRet => {
                assert_eq!(Value::Object(got.clone()), json!({"a": rets[0], "b": rets[1], "c": rets[2]}));
                if b.traits.key_order {
                    // The stored load keeps its key order.
                    assert_eq!(
                        got["a"].as_object().unwrap().keys().collect::<Vec<_>>(),
                        ["id", "jid", "fun", "return", "retcode", "success", "out"]
                    );
                }
            }
            Shape::ReturnOnly => {
                assert_eq!(Value::Object(got.clone()), json!({"a": {"return": {"x": 1}}, "b": {"return": "boom"}, "c": {"return": null}}));
            }
        }
        if !b.traits.keeps_minions {
            return;
        }
        // Expected minions vs returned ones: d never answered.
        let expected = s.get_load(&j).await.unwrap().unwrap()["Minions"].clone();
        assert_eq!(expected, json!(["a", "b", "c", "d"]));
        let missing: Vec<&str> = expected.as_array().unwrap().iter().filter_map(Value::as_str).filter(|m| !got.contains_key(*m)).collect();
        assert_eq!(missing, ["d"]);
    }

    pub async fn duplicate_returns_keep_the_first(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        s.prep_jid(false, Some(&j)).await.unwrap();
        s.returner(&ret(&j, "m1", "test.echo", json!("first"))).await.unwrap();
        s.returner(&ret(&j, "m1", "test.echo", json!("first"))).await.unwrap();
        s.returner(&ret(&j, "m1", "test.echo", json!("second"))).await.unwrap();
        // Twice in one batch, and against a stored one.
        s.returner_batch(&[
            ret(&j, "m2", "test.echo", json!("a")),
            ret(&j, "m2", "test.echo", json!("b")),
            ret(&j, "m1", "test.echo", json!("third")),
        ])
        .await
        .unwrap();
        let got = s.get_jid(&j).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["m1"]["return"], "first");
        assert_eq!(got["m2"]["return"], "a");
    }

    pub async fn return_before_load(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        s.returner(&ret(&j, "m1", "test.ping", json!(true))).await.unwrap();
        assert_eq!(s.get_jid(&j).await.unwrap()["m1"]["return"], true);
        // Not listed (no load yet), as in Salt.
        assert!(s.get_jids(&JobQuery::default()).await.unwrap().is_empty());
        s.save_load(&j, &publish(&j, "test.ping", json!("*")), Some(&strings(&["m1", "m2"]))).await.unwrap();
        assert_eq!(jids(&s.get_jids(&JobQuery::default()).await.unwrap()), [j.as_str()]);
        assert_eq!(s.get_load(&j).await.unwrap().unwrap()["fun"], "test.ping");
        assert_eq!(s.get_jid(&j).await.unwrap().len(), 1);
    }

    pub async fn nocache_and_prep_jid(b: &Backend) {
        let s = &*b.store;
        let first = s.prep_jid(false, None).await.unwrap();
        let second = s.prep_jid(false, None).await.unwrap();
        assert!(salt_proto::jid::is_jid(&first) && salt_proto::jid::is_jid(&second), "{first} {second}");
        assert_ne!(first, second);
        let passed = jid(5);
        assert_eq!(s.prep_jid(false, Some(&passed)).await.unwrap(), passed);

        let nc = s.prep_jid(true, None).await.unwrap();
        assert!(salt_proto::jid::is_jid(&nc), "{nc}");
        s.returner(&ret(&nc, "m1", "test.ping", json!(true))).await.unwrap();
        // The marker survives a later prep_jid(nocache=false) for the same jid (the master's
        // call on every return).
        let nc2 = jid(6);
        s.prep_jid(true, Some(&nc2)).await.unwrap();
        s.prep_jid(false, Some(&nc2)).await.unwrap();
        s.returner(&ret(&nc2, "m1", "test.ping", json!(true))).await.unwrap();
        for j in [&nc, &nc2] {
            let stored = s.get_jid(j).await.unwrap();
            if b.traits.nocache {
                assert_eq!(stored, Map::new());
            } else {
                assert_eq!(stored.keys().collect::<Vec<_>>(), ["m1"], "{j}");
            }
        }
        // "nocache" as the jid itself: not stored, not an error.
        s.returner(&ret("nocache", "m-nocache", "test.ping", json!(true))).await.unwrap();
        if s.supports(Capability::GetMinions) {
            assert!(!s.get_minions().await.unwrap().iter().any(|m| m == "m-nocache"), "a nocache return was stored");
        }
        if s.supports(Capability::GetFun) {
            assert!(!s.get_fun("test.ping").await.unwrap().contains_key("m-nocache"), "a nocache return was stored");
        }
        // A malformed jid is refused.
        assert!(s.prep_jid(false, Some("../../etc")).await.is_err());
        assert!(s.returner(&ret("../../etc", "m1", "test.ping", json!(true))).await.is_err());
    }

    pub async fn get_fun_latest_per_minion(b: &Backend) {
        let s = &*b.store;
        let (old, new, other) = (jid(1), jid(2), jid(3));
        s.returner_batch(&[
            ret(&old, "m1", "test.ping", json!("m1-old")),
            ret(&old, "m2", "test.ping", json!("m2-old")),
            ret(&new, "m1", "test.ping", json!("m1-new")),
            ret(&other, "m1", "cmd.run", json!("cmd")),
        ])
        .await
        .unwrap();
        let got = s.get_fun("test.ping").await.unwrap();
        assert_eq!(got.keys().collect::<Vec<_>>(), ["m1", "m2"]);
        if b.traits.shape == Shape::ReturnOnly {
            assert_eq!(Value::Object(got.clone()), json!({"m1": "m1-new", "m2": "m2-old"}));
        } else {
            // The full return, as SQL job caches give it.
            assert_eq!(Value::Object(got["m1"].as_object().unwrap().clone()), Value::Object(ret(&new, "m1", "test.ping", json!("m1-new"))));
            assert_eq!(got["m2"]["return"], "m2-old");
        }
        assert_eq!(s.get_fun("nope.nope").await.unwrap(), Map::new());
    }

    pub async fn get_minions_distinct_sorted(b: &Backend) {
        let s = &*b.store;
        assert!(s.get_minions().await.unwrap().is_empty());
        s.returner_batch(&[
            ret(&jid(1), "web2", "test.ping", json!(true)),
            ret(&jid(1), "db1", "test.ping", json!(true)),
            ret(&jid(2), "web2", "test.ping", json!(true)),
            ret(&jid(2), "web1", "test.ping", json!(true)),
        ])
        .await
        .unwrap();
        assert_eq!(s.get_minions().await.unwrap(), ["db1", "web1", "web2"]);
    }

    pub async fn end_times(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        s.save_load(&j, &publish(&j, "test.ping", json!("*")), None).await.unwrap();
        if !b.traits.endtime {
            let err = s.update_endtime(&j, "2024, May 10 09:30:16.000001").await.unwrap_err();
            assert!(err.to_string().contains("does not support update_endtime"), "{err}");
            assert_eq!(s.get_jids(&JobQuery::default()).await.unwrap()[0].end_time, None);
            return;
        }
        assert_eq!(s.get_endtime(&j).await.unwrap(), None);
        s.update_endtime(&j, "2024, May 10 09:30:16.000001").await.unwrap();
        assert_eq!(s.get_endtime(&j).await.unwrap().as_deref(), Some("2024, May 10 09:30:16.000001"));
        s.update_endtime(&j, "2024, May 10 09:30:17.000002").await.unwrap();
        assert_eq!(s.get_endtime(&j).await.unwrap().as_deref(), Some("2024, May 10 09:30:17.000002"));
        let listed = s.get_jids(&JobQuery::default()).await.unwrap();
        assert_eq!(listed[0].end_time.as_deref(), Some("2024, May 10 09:30:17.000002"));
    }

    /// j1..j5 with distinct functions, targets and metadata, plus a job with no load.
    async fn listing_fixture(s: &dyn JobCache) -> Vec<String> {
        let j: Vec<String> = (1..=6).map(jid).collect();
        s.save_load(&j[0], &publish(&j[0], "test.ping", json!("*")), None).await.unwrap();
        s.save_load(
            &j[1],
            &obj(json!({"fun": "cmd.run", "arg": ["ls /"], "tgt": ["web1", "db1"], "tgt_type": "list",
                        "user": "sudo_alice", "metadata": {"env": "prod"}})),
            None,
        )
        .await
        .unwrap();
        s.save_load(&j[2], &publish(&j[2], "saltutil.find_job", json!(["web1"])), None).await.unwrap();
        s.save_load(
            &j[3],
            &obj(json!({"fun": "cmd.script", "tgt": "web*", "arg": [{"__kwarg__": true, "metadata": {"env": "dev", "team": "x"}}]})),
            None,
        )
        .await
        .unwrap();
        s.save_load(&j[4], &publish(&j[4], "state.apply", json!("db*")), None).await.unwrap();
        s.returner(&ret(&j[5], "m1", "test.ping", json!(true))).await.unwrap();
        j
    }

    pub async fn get_jids_order_and_paging(b: &Backend) {
        let s = &*b.store;
        let j = listing_fixture(s).await;
        let all = s.get_jids(&JobQuery::default()).await.unwrap();
        assert_eq!(jids(&all), [j[4].as_str(), j[3].as_str(), j[2].as_str(), j[1].as_str(), j[0].as_str()]);
        let oldest = s.get_jids(&JobQuery { oldest_first: true, ..Default::default() }).await.unwrap();
        assert_eq!(jids(&oldest), [j[0].as_str(), j[1].as_str(), j[2].as_str(), j[3].as_str(), j[4].as_str()]);
        let page = |offset, limit, oldest_first| JobQuery { offset, limit: Some(limit), oldest_first, ..Default::default() };
        assert_eq!(jids(&s.get_jids(&page(0, 2, false)).await.unwrap()), [j[4].as_str(), j[3].as_str()]);
        assert_eq!(jids(&s.get_jids(&page(2, 2, false)).await.unwrap()), [j[2].as_str(), j[1].as_str()]);
        assert_eq!(jids(&s.get_jids(&page(4, 2, false)).await.unwrap()), [j[0].as_str()]);
        assert!(s.get_jids(&page(5, 2, false)).await.unwrap().is_empty());
        assert!(s.get_jids(&page(0, 0, false)).await.unwrap().is_empty());
        assert_eq!(jids(&s.get_jids(&page(1, 2, true)).await.unwrap()), [j[1].as_str(), j[2].as_str()]);
        // The summary of one job, field by field.
        assert_eq!(
            all[3],
            JobSummary {
                jid: j[1].clone(),
                fun: "cmd.run".into(),
                arg: vec![json!("ls /")],
                tgt: json!(["web1", "db1"]),
                tgt_type: "list".into(),
                user: "sudo_alice".into(),
                metadata: Some(json!({"env": "prod"})),
                end_time: None,
            }
        );
        assert_eq!(all[1].metadata, Some(json!({"env": "dev", "team": "x"})));
    }

    pub async fn get_jids_filters(b: &Backend) {
        let s = &*b.store;
        let j = listing_fixture(s).await;
        let q = |f: fn(&mut JobQuery)| {
            let mut q = JobQuery::default();
            f(&mut q);
            q
        };
        let run = |q: JobQuery| async move { jids(&s.get_jids(&q).await.unwrap()) };
        assert_eq!(run(q(|q| q.functions = vec!["cmd.*".into()])).await, [j[3].as_str(), j[1].as_str()]);
        assert_eq!(run(q(|q| q.functions = vec!["test.ping".into(), "state.*".into()])).await, [j[4].as_str(), j[0].as_str()]);
        assert!(run(q(|q| q.functions = vec!["nope.*".into()])).await.is_empty());
        assert_eq!(run(q(|q| q.exclude_find_job = true)).await, [j[4].as_str(), j[3].as_str(), j[1].as_str(), j[0].as_str()]);
        assert_eq!(
            run(q(|q| {
                q.functions = vec!["saltutil.*".into()];
                q.exclude_find_job = true
            }))
            .await,
            Vec::<String>::new()
        );
        // Targets: a string target, or any id of a list target.
        assert_eq!(run(q(|q| q.targets = vec!["web1".into()])).await, [j[2].as_str(), j[1].as_str()]);
        assert_eq!(run(q(|q| q.targets = vec!["web[*]".into(), "db[*]".into()])).await, [j[4].as_str(), j[3].as_str()]);
        assert_eq!(run(q(|q| q.targets = vec!["db*".into()])).await, [j[4].as_str(), j[1].as_str()]);
        // Metadata: any pair equal.
        let md = |v: Value| Some(v.as_object().unwrap().clone());
        let mut by_md = JobQuery { metadata: md(json!({"env": "prod"})), ..Default::default() };
        assert_eq!(jids(&s.get_jids(&by_md).await.unwrap()), [j[1].as_str()]);
        by_md.metadata = md(json!({"env": "qa", "team": "x"}));
        assert_eq!(jids(&s.get_jids(&by_md).await.unwrap()), [j[3].as_str()]);
        by_md.metadata = md(json!({"env": "qa"}));
        assert!(s.get_jids(&by_md).await.unwrap().is_empty());
        // Time bounds are inclusive, to the microsecond.
        let timed = JobQuery { start_time: Some(time_of(2)), end_time: Some(time_of(4)), ..Default::default() };
        assert_eq!(jids(&s.get_jids(&timed).await.unwrap()), [j[3].as_str(), j[2].as_str(), j[1].as_str()]);
        let after = JobQuery { start_time: Some(time_of(4)), oldest_first: true, ..Default::default() };
        assert_eq!(jids(&s.get_jids(&after).await.unwrap()), [j[3].as_str(), j[4].as_str()]);
        // All together, with paging.
        let combined = JobQuery {
            functions: vec!["cmd.*".into(), "test.*".into()],
            targets: vec!["*".into(), "web1".into()],
            start_time: Some(time_of(1)),
            limit: Some(1),
            offset: 1,
            ..Default::default()
        };
        assert_eq!(jids(&s.get_jids(&combined).await.unwrap()), [j[1].as_str()]);
    }

    pub async fn get_jids_many_functions_and_pages(b: &Backend) {
        let s = &*b.store;
        // More distinct functions than a store may merge, and more jobs than one read chunk.
        let mut n = 0;
        for i in 0..40 {
            for _ in 0..130 {
                n += 1;
                let j = jid(n);
                s.save_load(&j, &publish(&j, &format!("mod{i}.fun"), json!("*")), None).await.unwrap();
            }
        }
        let want_newest: Vec<String> = (1..=n).rev().map(jid).collect();
        let wide = JobQuery { functions: vec!["mod*".into()], limit: Some(150), offset: 10, ..Default::default() };
        assert_eq!(jids(&s.get_jids(&wide).await.unwrap()), want_newest[10..160]);
        // A rare function among many: found, in order.
        let rare = JobQuery { functions: vec!["mod3.*".into(), "mod39.*".into()], ..Default::default() };
        let got = jids(&s.get_jids(&rare).await.unwrap());
        let want: Vec<String> = (1..=n).rev().filter(|k| matches!((k - 1) / 130, 3 | 39)).map(jid).collect();
        assert_eq!(got.len(), 260);
        assert_eq!(got, want);
        let everything = s.get_jids(&JobQuery { oldest_first: true, ..Default::default() }).await.unwrap();
        assert_eq!(everything.len(), n as usize);
        assert_eq!(everything[0].jid, jid(1));
    }

    /// A store without `clean_old_jobs` says so plainly.
    async fn no_purge(b: &Backend) -> bool {
        if b.traits.clean_old_jobs {
            return false;
        }
        let err = b.store.clean_old_jobs(Duration::from_secs(1)).await.unwrap_err();
        assert!(err.to_string().contains("does not support clean_old_jobs"), "{err}");
        true
    }

    pub async fn purge_keeps_long_running_jobs(b: &Backend) {
        if no_purge(b).await {
            return;
        }
        let s = &*b.store;
        let (done, running) = (jid(1), jid(2));
        s.save_load(&done, &publish(&done, "test.ping", json!("*")), None).await.unwrap();
        s.returner(&ret(&done, "m1", "test.ping", json!(true))).await.unwrap();
        s.save_load(&running, &publish(&running, "cmd.run", json!("*")), None).await.unwrap();
        // Both jobs are 2 s old; then the running one gets a fresh return.
        age(b, 2).await;
        s.returner(&ret(&running, "m1", "cmd.run", json!("finally"))).await.unwrap();
        assert_eq!(s.clean_old_jobs(Duration::ZERO).await.unwrap(), 0, "keep 0 = keep forever");
        assert_eq!(s.get_jids(&JobQuery::default()).await.unwrap().len(), 2);
        assert_eq!(s.clean_old_jobs(Duration::from_secs(1)).await.unwrap(), 1);
        assert_eq!(s.get_load(&done).await.unwrap(), None);
        assert_eq!(s.get_jid(&done).await.unwrap(), Map::new());
        assert_eq!(jids(&s.get_jids(&JobQuery::default()).await.unwrap()), [running.as_str()]);
        assert!(s.get_load(&running).await.unwrap().is_some());
        assert_eq!(s.get_jid(&running).await.unwrap()["m1"]["return"], "finally");
        // A purged function no longer matches anything.
        assert!(s.get_jids(&JobQuery { functions: vec!["test.*".into()], ..Default::default() }).await.unwrap().is_empty());
        assert_eq!(s.clean_old_jobs(Duration::from_secs(3600)).await.unwrap(), 0);
    }

    /// Everything in the store `secs` seconds older.
    async fn age(b: &Backend, secs: u64) {
        let ager = b.age.as_ref().expect("a store that purges has an ager (see Backend::age)");
        ager(secs).await;
    }

    pub async fn purge_in_batches(b: &Backend) {
        if no_purge(b).await {
            return;
        }
        let s = &*b.store;
        for n in 0..250 {
            s.returner(&ret(&jid(n), "m1", "test.ping", json!(n))).await.unwrap();
        }
        age(b, 2).await;
        assert_eq!(s.clean_old_jobs(Duration::from_secs(1)).await.unwrap(), 250);
        assert!(s.get_minions().await.unwrap().is_empty());
    }

    pub async fn awkward_data_round_trips(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        let nasty = "'; DROP TABLE jobs; -- \" \\ %_ \u{1F600} 日本語 \u{0} \n\t";
        // jsonb cannot hold U+0000: that store gets the rest of the string.
        let nasty = if b.traits.nul_chars { nasty.to_string() } else { nasty.replace('\u{0}', "") };
        let nasty = nasty.as_str();
        let load = obj(json!({"fun": "test.echo", "arg": [nasty], "tgt": nasty, "tgt_type": "glob", "user": nasty,
                              "metadata": {nasty: nasty}}));
        s.save_load(&j, &load, Some(&strings(&["m1"]))).await.unwrap();
        assert_eq!(s.get_load(&j).await.unwrap(), Some(with_minions(b, &load, json!(["m1"]))));
        let big = "x".repeat(10 * 1024 * 1024);
        s.returner_batch(&[
            ret(&j, "m1", "test.echo", json!({nasty: [nasty, 1.5, -7, null, {"deep": [true]}]})),
            ret(&j, "big", "test.echo", json!(big)),
        ])
        .await
        .unwrap();
        let got = s.get_jid(&j).await.unwrap();
        assert_eq!(got["m1"]["return"], json!({nasty: [nasty, 1.5, -7, null, {"deep": [true]}]}));
        assert_eq!(got["big"]["return"].as_str().map(str::len), Some(big.len()));
        let listed = s.get_jids(&JobQuery { targets: vec![nasty.into()], ..Default::default() }).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].user, nasty);
        assert_eq!(listed[0].metadata, Some(json!({nasty: nasty})));
        let meta = JobQuery { metadata: Some(obj(json!({nasty: nasty}))), ..Default::default() };
        assert_eq!(s.get_jids(&meta).await.unwrap().len(), 1);
    }

    pub async fn bad_returns_in_a_batch_do_not_sink_good_ones(b: &Backend) {
        let s = &*b.store;
        let j = jid(1);
        let rejected = s
            .returner_batch(&[
                ret(&j, "good", "test.ping", json!(true)),
                obj(json!({"jid": j, "return": true})),
                ret(&j, "../evil", "test.ping", json!(true)),
                ret(&j, "also-good", "test.ping", json!(true)),
            ])
            .await
            .unwrap();
        // Each bad record is named by its place in the batch, with its own reason.
        assert_eq!(rejected.iter().map(|r| r.index).collect::<Vec<_>>(), [1, 2], "{rejected:?}");
        assert!(rejected[0].reason.contains("'id'") && rejected[1].reason.contains("evil"), "{rejected:?}");
        assert_eq!(s.get_jid(&j).await.unwrap().keys().collect::<Vec<_>>(), ["also-good", "good"]);
        // One bad return alone is an error of its own.
        let err = s.returner(&ret(&j, "../evil", "test.ping", json!(true))).await;
        assert!(matches!(err, Err(salt_returners::ReturnerError::Rejected(_))), "{err:?}");
    }

    pub async fn event_return_is_declared_unsupported(b: &Backend) {
        let s = &*b.store;
        if b.traits.event_return {
            // Stores that have it take an empty flush and a batch (their own tests read the rows).
            assert_eq!(s.event_return(&[]).await.unwrap(), []);
            let ev = |tag: &str| salt_returners::Event {
                tag: tag.into(),
                data: json!({"_stamp": "2024-05-10T09:30:00.000000", "x": "'\"; --"}),
            };
            assert_eq!(s.event_return(&[ev("salt/job/1/new"), ev("salt/auth")]).await.unwrap(), []);
        } else {
            let err = s.event_return(&[]).await.unwrap_err();
            assert!(err.to_string().contains("does not support event_return"), "{err}");
        }
    }
}

/// Generates one `#[tokio::test]` per suite function for a backend.
macro_rules! conformance {
    ($backend:ident, $open:ident) => {
        conformance!(@tests $backend, $open, [
            capabilities,
            load_first_wins_with_sorted_minions,
            save_minions_merges_syndic_lists,
            unknown_jid,
            get_jid_shape,
            duplicate_returns_keep_the_first,
            return_before_load,
            nocache_and_prep_jid,
            get_fun_latest_per_minion,
            get_minions_distinct_sorted,
            end_times,
            get_jids_order_and_paging,
            get_jids_filters,
            get_jids_many_functions_and_pages,
            purge_keeps_long_running_jobs,
            purge_in_batches,
            awkward_data_round_trips,
            bad_returns_in_a_batch_do_not_sink_good_ones,
            event_return_is_declared_unsupported,
        ]);
    };
    (@tests $backend:ident, $open:ident, [$($test:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(backend) = super::$open().await {
                        super::suite::cases::$test(&backend).await;
                    }
                }
            )*

            // A job cache is a sink too: the sink suite, reading back with get_jid.
            async fn as_sink() -> Option<super::suite::sink::SinkBackend> {
                super::$open().await.map(super::suite::Backend::into_sink)
            }
            sink_cases! { sink_conformance!(@tests sink, as_sink,) }
        }
    };
}
