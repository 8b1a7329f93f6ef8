//! `rawfile_json` against a real file: the sink suite (reading the lines back), Salt's text
//! (checked against Python's own `json.dumps`), whole lines under concurrent writers (ours on
//! separate descriptors, as separate processes are, and a Python writer taking Salt's `flock`),
//! log rotation (renamed, removed, copied and truncated), the file's mode, a missing directory,
//! and a full disk (a small tmpfs, as root).

// A store that keeps no jobs uses the sink suite alone.
#[allow(dead_code, unused_macros)]
#[macro_use]
mod suite;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use salt_returners::rawfile_json::{RawfileJson, RawfileJsonConfig};
use salt_returners::spool::{Record, Spool};
use salt_returners::{Event, Load, ReturnerError, Sink, Store};
use serde_json::{json, Value};
use suite::sink::{ServiceControl, SinkBackend};

fn obj(v: Value) -> Load {
    v.as_object().unwrap().clone()
}

fn store_at(path: &Path) -> RawfileJson {
    RawfileJson::open_with(RawfileJsonConfig { filename: path.to_path_buf() })
}

/// The file's lines, each parsed (a torn line fails the test).
fn lines_of(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "the file ends with a whole line");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a torn line ({e}): {:.200}", l))).collect()
}

fn ret(jid: &str, id: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": "test.echo", "fun_args": [], "id": id}))
}

/// The directory holding the file, moved away and back: the store cannot write meanwhile.
struct MovedDir {
    dir: PathBuf,
    away: PathBuf,
}

#[async_trait]
impl ServiceControl for MovedDir {
    async fn down(&self) {
        std::fs::rename(&self.dir, &self.away).unwrap();
    }
    async fn up(&self) {
        std::fs::rename(&self.away, &self.dir).unwrap();
    }
}

async fn open_rawfile() -> Option<SinkBackend> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("events");
    let opts = obj(json!({"rawfile_json.filename": path}));
    let store = salt_returners::open_sink("rawfile_json", &salt_returners::options::Lookup::new(&opts)).await.unwrap();
    let file = path.clone();
    let read: suite::sink::Reader = Box::new(move |jid, id| {
        let file = file.clone();
        Box::pin(async move {
            lines_of(&file)
                .into_iter()
                .filter(|l| l["jid"] == jid.as_str() && l["id"] == id.as_str())
                .map(|l| l["return"].clone())
                .collect()
        })
    });
    let service = MovedDir { dir: dir.clone(), away: tmp.path().join("log.away") };
    Some(SinkBackend::new(store, read, tmp).with_service(service))
}

sink_conformance!(rawfile_json, open_rawfile);

/// Whether python3 runs here (else the comparison with Python is skipped, saying so).
fn python3() -> bool {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        saltrs_testkit::skip("python3 is needed to compare with Python's json.dumps and flock");
    }
    ok
}

#[tokio::test]
async fn each_line_is_pythons_json_dumps_of_the_return_or_event() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events");
    let store = store_at(&path);
    let r = obj(json!({"success": true, "return": {"z": 1, "a": [1.5, -2, null, "日本 ✓ 😀", "\u{1}\t\"\\"], "big": 1e300},
                       "retcode": 0, "jid": "20261201120000000001", "fun": "test.echo", "fun_args": ["x y"], "user": "root",
                       "_stamp": "2026-12-01T12:00:00.000001", "id": "web1"}));
    store.returner(&r).await.unwrap();
    let events = [
        Event {
            tag: "salt/job/20261201120000000001/new".into(),
            data: json!({"_stamp": "2026-12-01T12:00:00.000002", "fun": "test.echo"}),
        },
        Event { tag: "salt/auth".into(), data: json!({"act": "accept", "id": "web1", "pub": "-----BEGIN PUBLIC KEY-----\n"}) },
    ];
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    let mut without_stamp = r.clone();
    without_stamp.shift_remove("_stamp");
    assert_eq!(serde_json::from_str::<Value>(lines[0]).unwrap(), Value::Object(without_stamp));
    assert!(lines[0].starts_with(r#"{"success": true, "return": {"z": 1, "a": [1.5, -2, null, "日本 ✓ 😀""#), "{}", lines[0]);
    assert!(lines[0].ends_with(r#""user": "root", "id": "web1"}"#), "the return's own order, no _stamp: {}", lines[0]);
    assert_eq!(
        lines[1],
        r#"{"data": {"_stamp": "2026-12-01T12:00:00.000002", "fun": "test.echo"}, "tag": "salt/job/20261201120000000001/new"}"#
    );
    assert_eq!(serde_json::from_str::<Value>(lines[2]).unwrap(), json!({"data": events[1].data, "tag": "salt/auth"}));
    // Salt's salt.utils.json.dump: Python's json.dumps with non-ASCII kept (ensure_ascii off).
    if !python3() {
        return;
    }
    let out = Command::new("python3")
        .args(["-c", "import json,sys\nfor l in open(sys.argv[1]):\n  assert json.dumps(json.loads(l), ensure_ascii=False) == l.rstrip('\\n'), l\nprint('ok')"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", String::from_utf8_lossy(&out.stderr));
}

/// Many writers at once: two stores on the same file (two descriptors, so their `flock`s
/// exclude each other as two processes' do), many tasks each, big lines, and a Python process
/// appending under Salt's `flock`: every line whole, none lost, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_leave_whole_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events");
    let python = python3().then(|| {
        let script = "import fcntl,json,sys\nfor i in range(int(sys.argv[2])):\n  with open(sys.argv[1], 'a') as f:\n    fcntl.flock(f.fileno(), fcntl.LOCK_EX)\n    f.write(json.dumps({'py': i, 'pad': 'p' * 70000}) + '\\n')\n";
        Command::new("python3").args(["-c", script]).arg(&path).arg("200").spawn().unwrap()
    });
    let stores = [Arc::new(store_at(&path)), Arc::new(store_at(&path))];
    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for b in 0..10 {
                    let jid = format!("2026120112000000{:04}", s * 1000 + t * 10 + b);
                    // 20 returns of 40 KB in a batch: 800 KB in one write.
                    let batch: Vec<Load> = (0..20).map(|n| ret(&jid, &format!("m{n}"), json!("x".repeat(40_000)))).collect();
                    assert_eq!(store.returner_batch(&batch).await.unwrap(), []);
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    if let Some(mut child) = python {
        assert!(child.wait().unwrap().success());
    }
    let lines = lines_of(&path);
    let ours: std::collections::HashSet<(String, String)> = lines
        .iter()
        .filter(|l| l.get("jid").is_some())
        .map(|l| (l["jid"].as_str().unwrap().into(), l["id"].as_str().unwrap().into()))
        .collect();
    assert_eq!(ours.len(), 2 * 8 * 10 * 20, "every return once");
    assert_eq!(lines.iter().filter(|l| l.get("jid").is_some()).count(), ours.len(), "none twice");
    if python3() {
        let py: Vec<u64> = lines.iter().filter_map(|l| l["py"].as_u64()).collect();
        assert_eq!(py, (0..200).collect::<Vec<_>>(), "Python's lines whole and in its order");
    }
}

/// logrotate's ways: rename then (maybe) create, remove, and copy then truncate. The next
/// write goes to the file now at the path.
#[tokio::test]
async fn a_rotated_file_is_reopened() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events");
    let rotated = tmp.path().join("events.1");
    let store = store_at(&path);
    let jids = |p: &Path| lines_of(p).iter().map(|l| l["jid"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let j = |n: u32| format!("2026120112000000{n:04}");

    store.returner(&ret(&j(1), "m1", json!(1))).await.unwrap();
    std::fs::rename(&path, &rotated).unwrap();
    store.returner(&ret(&j(2), "m1", json!(2))).await.unwrap();
    assert_eq!(jids(&rotated), [j(1)]);
    assert_eq!(jids(&path), [j(2)], "renamed away: a new file at the path");

    // Renamed, and a new file created by logrotate (`create 0640`) before we write.
    std::fs::rename(&path, &rotated).unwrap();
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    store.returner(&ret(&j(3), "m1", json!(3))).await.unwrap();
    assert_eq!(jids(&rotated), [j(2)]);
    assert_eq!(jids(&path), [j(3)], "the created file is used");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640, "its mode kept");

    std::fs::remove_file(&path).unwrap();
    store.returner(&ret(&j(4), "m1", json!(4))).await.unwrap();
    assert_eq!(jids(&path), [j(4)], "removed: created again");

    // copytruncate: the same file, emptied; the next line starts it, with no hole before it.
    std::fs::copy(&path, &rotated).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    store.returner(&ret(&j(5), "m1", json!(5))).await.unwrap();
    let text = std::fs::read(&path).unwrap();
    assert!(!text.contains(&0), "no hole of NUL bytes where the old lines were");
    assert_eq!(jids(&path), [j(5)]);
    assert_eq!(jids(&rotated), [j(4)]);
}

#[tokio::test]
async fn a_new_file_is_owner_only_and_an_existing_one_keeps_its_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("events");
    store_at(&path).returner(&ret("20261201120000000001", "m1", json!(true))).await.unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let shared = tmp.path().join("shared");
    std::fs::write(&shared, "").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    store_at(&shared).returner(&ret("20261201120000000001", "m1", json!(true))).await.unwrap();
    assert_eq!(std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777, 0o644);
}

/// A missing directory is not created (as in Salt): a clear error at start-up and for each
/// write, worth retrying; once it exists, the spool's records arrive.
#[tokio::test]
async fn a_missing_directory_is_a_clear_error_and_the_records_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("salt");
    let path = dir.join("events");
    let store = Arc::new(store_at(&path));
    let err = store.check().await.unwrap_err();
    assert!(err.retry_later(), "{err:?}");
    assert!(err.to_string().contains(&format!("its directory {} does not exist", dir.display())), "{err}");
    let spool = Spool::open(&tmp.path().join("spool"), Store::Sink(store.clone())).unwrap();
    spool.push(vec![Record::Return { ret: ret("20261201120000000001", "m1", json!("kept")) }]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(spool.stats().depth, 1, "held");
    std::fs::create_dir(&dir).unwrap();
    assert!(spool.flush(Duration::from_secs(30)).await);
    assert_eq!(lines_of(&path)[0]["return"], "kept");
    store.check().await.unwrap();
}

/// A full disk: the write fails as "retry later", saying the disk is full, and leaves no part
/// of the batch in the file; once there is room, the spool's records arrive, once each.
#[tokio::test]
async fn a_full_disk_loses_nothing_and_tears_no_line() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = saltrs_testkit::Tmpfs::mount(tmp.path(), "256k") else { return };
    let path = disk.path().join("events");
    let store = Arc::new(store_at(&path));
    store.returner(&ret("20261201120000000001", "first", json!(1))).await.unwrap();
    let before = std::fs::read(&path).unwrap();
    let filler = disk.fill("filler");
    // 20 returns of 10 KB: the disk has room for part of the batch at most.
    let batch: Vec<Load> = (0..20).map(|n| ret("20261201120000000002", &format!("m{n}"), json!("y".repeat(10_000)))).collect();
    let err = store.returner_batch(&batch).await.unwrap_err();
    assert!(matches!(err, ReturnerError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "no part of the batch is left in the file");

    let spool_dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(spool_dir.path(), Store::Sink(store.clone())).unwrap();
    spool.push(batch.iter().map(|r| Record::Return { ret: r.clone() }).collect()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(spool.stats().depth, 20, "held while the disk is full");
    std::fs::remove_file(filler).unwrap();
    assert!(spool.flush(Duration::from_secs(60)).await);
    let lines = lines_of(&path);
    assert_eq!(lines.len(), 21, "the first line and the batch, once each");
    assert_eq!(lines[0]["id"], "first");
    assert_eq!(
        lines[1..].iter().map(|l| l["id"].as_str().unwrap().to_string()).collect::<Vec<_>>(),
        (0..20).map(|n| format!("m{n}")).collect::<Vec<_>>()
    );
}
