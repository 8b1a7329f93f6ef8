//! A spool on a full disk: the push that cannot be written fails with the disk's error (so the
//! caller keeps the record: the master does not acknowledge the return), what was written
//! before stays whole on disk, and once there is room again everything arrives, in order. The
//! SQLite stores (`local_cache`, `sqlite3`) on a full disk fail clearly and work again once
//! there is room.
//!
//! The disk is a small tmpfs mounted for the test (`saltrs_testkit::Tmpfs`), which needs root;
//! elsewhere the test is skipped with a message, except under CI=true, where that is a failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Capability, Entry, JobCache, Load, Rejection, Result, Sink, Store};
use saltrs_testkit::Tmpfs;
use serde_json::json;

/// A store that is down: records stay in the spool, on disk.
struct Down;

static DOWN: Entry = Entry::unlisted("down", &[Capability::Returner]);

#[async_trait]
impl Sink for Down {
    fn entry(&self) -> &'static Entry {
        &DOWN
    }
    async fn returner_batch(&self, _: &[Load]) -> Result<Vec<Rejection>> {
        Err(salt_returners::ReturnerError::Unavailable("connection refused".into()))
    }
}

/// Accepts every batch and remembers what it got.
#[derive(Default)]
struct Collect(Mutex<Vec<u64>>);

static COLLECT: Entry = Entry::unlisted("collect", &[Capability::Returner]);

#[async_trait]
impl Sink for Collect {
    fn entry(&self) -> &'static Entry {
        &COLLECT
    }
    async fn returner_batch(&self, rets: &[Load]) -> Result<Vec<Rejection>> {
        self.0.lock().unwrap().extend(rets.iter().map(|r| r["return"]["n"].as_u64().unwrap()));
        Ok(Vec::new())
    }
}

fn ret(n: u64) -> Record {
    // About 1 KB, so a record does not fit in what is left of a page.
    let ret = json!({"jid": "20261125000000000001", "id": format!("minion{n}"), "return": {"n": n, "out": "x".repeat(1000)}});
    Record::Return { ret: ret.as_object().unwrap().clone() }
}

#[tokio::test]
async fn a_full_disk_fails_the_push_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(dir.path(), "256k") else { return };
    let spool = Spool::open(&dir.path().join("spool"), Store::Sink(Arc::new(Down))).unwrap();
    for n in 0..10 {
        spool.push(vec![ret(n)]).await.unwrap();
    }
    disk.fill("filler");
    // What is left of the segment's last page may still take a record or two.
    let mut n = 10;
    let err = loop {
        match spool.push(vec![ret(n)]).await {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 20, "the disk never filled");
    };
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    let err = spool.push(vec![ret(n)]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "still full: {err}");
    // Callers that do not wait (the master's loads and events) have their records held.
    let held = 100..103;
    for h in held.clone() {
        spool.push_nowait(vec![ret(h)]);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // a retry of the held ones fails too
                                                           // Room again: the held records are written first, the caller retries what failed, and
                                                           // everything arrives whole and in order.
    std::fs::remove_file(dir.path().join("filler")).unwrap();
    for n in n..n + 5 {
        spool.push(vec![ret(n)]).await.unwrap();
    }
    let last = n + 5;
    // Everything is read back from the disk (a restart, with the store up again).
    drop(spool);
    let store = Arc::new(Collect::default());
    let spool = Spool::open(&dir.path().join("spool"), Store::Sink(store.clone())).unwrap();
    assert!(spool.flush(Duration::from_secs(10)).await);
    let want: Vec<u64> = (0..n).chain(held).chain(n..last).collect();
    assert_eq!(*store.0.lock().unwrap(), want);
    assert!(!dir.path().join("spool/dead-letter.jsonl").exists());
}

/// Fills the disk under `store` until a return does not fit, then makes room: the next
/// return is stored at once and reads back (the store does not stay broken).
async fn recovers_when_there_is_room(disk: &Tmpfs, store: &dyn JobCache) {
    let big = |n: u64| {
        let r = json!({"jid": format!("2026112500000000{n:04}"), "id": "minion1", "fun": "test.echo", "fun_args": [],
                       "return": {"n": n, "out": "x".repeat(20_000)}, "retcode": 0, "success": true});
        r.as_object().unwrap().clone()
    };
    store.returner(&big(1)).await.unwrap();
    let filler = disk.fill("filler");
    let mut n = 2;
    let err = loop {
        match store.returner(&big(n)).await {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
        assert!(n < 50, "{}: the disk never filled", store.name());
    };
    assert!(err.to_string().contains("full"), "{}: {err}", store.name());
    std::fs::remove_file(filler).unwrap();
    let started = std::time::Instant::now();
    store.returner(&big(n)).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "{}: took {:?}", store.name(), started.elapsed());
    let got = store.get_jid(&format!("2026112500000000{n:04}")).await.unwrap();
    assert_eq!(got["minion1"]["return"]["n"], n, "{}", store.name());
}

#[tokio::test]
async fn local_cache_on_a_full_disk_recovers_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(dir.path(), "1m") else { return };
    let cache = salt_returners::local_cache::LocalCache::open(dir.path()).await.unwrap();
    recovers_when_there_is_room(&disk, &cache).await;
}

#[tokio::test]
async fn sqlite3_on_a_full_disk_recovers_when_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(dir.path(), "1m") else { return };
    let config =
        salt_returners::sqlite3::Sqlite3Config { database: dir.path().join("salt.db"), timeout: Duration::from_secs(5), unique_jid: false };
    let store = salt_returners::sqlite3::Sqlite3::open_with(config).unwrap();
    store.create_schema().await.unwrap();
    recovers_when_there_is_room(&disk, &store).await;
}
