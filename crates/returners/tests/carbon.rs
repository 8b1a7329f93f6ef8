//! The `carbon` returner against a real carbon-cache (Graphite's, Debian `graphite-carbon`)
//! started by `saltrs_testkit::Server`: the sink suite in text and in pickle mode, reading the
//! values back from carbon's whisper files; then Salt's metric names, `skip_on_error`,
//! `event_return`, one connection per batch, and our pickles as Python reads them.

// The job-cache half of the suite is for stores that keep jobs.
#[macro_use]
#[allow(dead_code, unused_macros)]
mod suite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_returners::carbon::encode::{self, jid_timestamp, Metric};
use salt_returners::{Event, Load, ReturnerError, Sink};
use saltrs_testkit::Server;
use serde_json::{json, Map, Value};
use suite::sink::{Reader, ServerService, SinkBackend};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
}

/// A jid of this moment: its datapoints land in the whisper files' 1-second archive.
fn jid_now() -> String {
    salt_proto::jid::new_jid(false)
}

async fn carbon() -> Option<Arc<Mutex<Server>>> {
    tokio::task::spawn_blocking(Server::carbon).await.unwrap().map(|s| Arc::new(Mutex::new(s)))
}

/// The returner on `server`, opened by name through the registry with Salt's flat options.
async fn open(server: &Mutex<Server>, mode: &str, extra: Value) -> Arc<dyn Sink> {
    let (port, pickle) = {
        let s = server.lock().unwrap();
        (s.port(), s.pickle_port())
    };
    let mut opts =
        obj(json!({"carbon.host": "127.0.0.1", "carbon.port": if mode == "pickle" { pickle } else { port }, "carbon.mode": mode}));
    opts.extend(obj(extra));
    salt_returners::open_sink("carbon", &salt_returners::options::Lookup::new(&opts)).await.unwrap()
}

/// The value whisper file `path` holds for the second `ts`: from the finest archive that has
/// it (whisper's format: a header, archive descriptions, then big-endian (u32 time, f64 value)
/// points in a ring per archive).
fn whisper_value(path: &Path, ts: i64) -> Option<f64> {
    let bytes = std::fs::read(path).ok()?;
    let u32_at = |at: usize| bytes.get(at..at + 4).map(|b| u32::from_be_bytes(b.try_into().unwrap()));
    let archives = u32_at(12)? as usize;
    for a in 0..archives {
        let (offset, step, points) = (u32_at(16 + a * 12)? as i64, u32_at(20 + a * 12)? as i64, u32_at(24 + a * 12)? as i64);
        let interval = ts - ts.rem_euclid(step);
        let base = u32_at(offset as usize)? as i64;
        if base == 0 {
            continue;
        }
        let slot = ((interval - base) / step).rem_euclid(points);
        let at = (offset + slot * 12) as usize;
        if u32_at(at)? as i64 == interval {
            return bytes.get(at + 4..at + 12).map(|b| f64::from_be_bytes(b.try_into().unwrap()));
        }
    }
    None
}

/// Every whisper file under `dir`, as its metric name (dots for the directories).
fn metric_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Some(name) = path.strip_prefix(dir).ok().and_then(|p| p.to_str()).and_then(|p| p.strip_suffix(".wsp")) {
                out.push((name.replace('/', "."), path));
            }
        }
    }
    out
}

/// What carbon holds for minion `id` at the time of `jid`: `{path under the id: value}` (the
/// path is "" for a return that is one number), as one delivery (whisper keeps one value a
/// time slot, so the same return twice is one), or nothing.
fn read_back(dir: &Path, jid: &str, id: &str) -> Vec<Value> {
    let Some(ts) = jid_timestamp(jid) else { return Vec::new() };
    let id = encode::name_part(&id.replace('.', "_")).into_owned();
    let mut found = Map::new();
    for (name, path) in metric_files(dir) {
        let parts: Vec<&str> = name.split('.').collect();
        let Some(at) = parts.iter().position(|p| *p == id) else { continue };
        if let Some(value) = whisper_value(&path, ts) {
            found.insert(parts[at + 1..].join("."), json!(value));
        }
    }
    if found.is_empty() {
        Vec::new()
    } else {
        vec![Value::Object(found)]
    }
}

/// What carbon keeps of a `return`: its numbers, by their path (None: no number in it).
fn numbers(value: &Value) -> Option<Value> {
    let mut metrics = Vec::new();
    encode::walk("", value, 0, true, &mut metrics).unwrap();
    let map: Map<String, Value> = metrics.into_iter().map(|m| (m.name.trim_start_matches('.').to_string(), json!(m.value))).collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

async fn backend(mode: &str) -> Option<SinkBackend> {
    let server = carbon().await?;
    let store = open(&server, mode, json!({"carbon.skip_on_error": true})).await;
    let dir = server.lock().unwrap().data_dir().to_path_buf();
    let read: Reader = Box::new(move |jid, id| {
        let dir = dir.clone();
        Box::pin(async move { read_back(&dir, &jid, &id) })
    });
    Some(SinkBackend::new(store, read, server.clone()).keeping(numbers).with_service(ServerService(server)))
}

async fn text_mode() -> Option<SinkBackend> {
    backend("text").await
}

async fn pickle_mode() -> Option<SinkBackend> {
    backend("pickle").await
}

sink_conformance!(carbon_text, text_mode);
sink_conformance!(carbon_pickle, pickle_mode);

/// Reads metric `name` at `ts` until it is there (carbon writes behind), for up to 30 s.
async fn value_of(server: &Mutex<Server>, name: &str, ts: i64) -> Option<f64> {
    let path = server.lock().unwrap().data_dir().join(format!("{}.wsp", name.replace('.', "/")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = whisper_value(&path, ts);
        if got.is_some() || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salt_metric_names_in_both_protocols() {
    let Some(server) = carbon().await else { return };
    for (mode, id) in [("text", "web1.example.com"), ("pickle", "db1")] {
        let store = open(&server, mode, json!({})).await;
        let jid = jid_now();
        let ts = jid_timestamp(&jid).unwrap();
        let value = json!({"load": {"1-min": 0.25, "5-min": "0.5"}, "up": true, "disks": [3, 4.5], "count": "1_000"});
        store.returner(&ret(&jid, id, "status.all", value)).await.unwrap();
        let base = format!("status.all.{}", id.replace('.', "_"));
        for (leaf, want) in
            [("load.1-min", 0.25), ("load.5-min", 0.5), ("up", 1.0), ("disks.3", 3.0), ("disks.4.5", 4.5), ("count", 1000.0)]
        {
            assert_eq!(value_of(&server, &format!("{base}.{leaf}"), ts).await, Some(want), "{mode}: {base}.{leaf}");
        }
        // `virt.*`: the function alone; another pattern.
        store.returner(&ret(&jid, id, "virt.vm_info", json!({"cpu": 2}))).await.unwrap();
        assert_eq!(value_of(&server, "virt.vm_info.cpu", ts).await, Some(2.0), "{mode}");
    }
    let store = open(&server, "pickle", json!({"carbon": {"metric_base_pattern": "salt.[minion_id].[module].[function]"}})).await;
    let jid = jid_now();
    store.returner(&ret(&jid, "m1", "disk.usage", json!({"used": 42}))).await.unwrap();
    assert_eq!(value_of(&server, "salt.m1.disk.usage.used", jid_timestamp(&jid).unwrap()).await, Some(42.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_is_not_a_number_refuses_its_return_alone_unless_skipped() {
    let Some(server) = carbon().await else { return };
    let store = open(&server, "text", json!({})).await;
    let jid = jid_now();
    let ts = jid_timestamp(&jid).unwrap();
    let rejected = store
        .returner_batch(&[ret(&jid, "m1", "cmd.run", json!({"rc": 0, "out": "hello"})), ret(&jid, "m2", "test.arg", json!({"n": 5}))])
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].index, 0);
    assert!(rejected[0].reason.contains("'hello' at cmd.run.m1.out is not a number"), "{}", rejected[0].reason);
    assert!(rejected[0].reason.contains("carbon.skip_on_error"), "{}", rejected[0].reason);
    assert_eq!(value_of(&server, "test.arg.m2.n", ts).await, Some(5.0));

    let skipping = open(&server, "text", json!({"carbon.skip_on_error": "True"})).await;
    skipping.returner(&ret(&jid, "m3", "cmd.run", json!({"rc": 0, "out": "hello"}))).await.unwrap();
    assert_eq!(value_of(&server, "cmd.run.m3.rc", ts).await, Some(0.0));
    assert!(!server.lock().unwrap().data_dir().join("cmd/run/m3/out.wsp").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_return_sends_the_numbers_of_each_event_under_its_tag() {
    let Some(server) = carbon().await else { return };
    let store = open(&server, "pickle", json!({})).await;
    let now = chrono::Utc::now();
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
    let events = [
        Event { tag: "salt/beacon/m1/load".into(), data: json!({"data": {"1m": 0.5, "id": "m1"}, "_stamp": stamp}) },
        Event { tag: "salt/auth".into(), data: json!({"act": "accept", "_stamp": stamp}) },
    ];
    assert_eq!(store.event_return(&events).await.unwrap(), []);
    assert_eq!(value_of(&server, "salt.beacon.m1.load.1m", now.timestamp()).await, Some(0.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_carbon_is_unavailable_and_check_says_so() {
    let Some(server) = carbon().await else { return };
    let store = open(&server, "text", json!({})).await;
    store.check().await.unwrap();
    let s = server.clone();
    tokio::task::spawn_blocking(move || s.lock().unwrap().stop()).await.unwrap();
    let err = store.returner(&ret(&jid_now(), "m1", "test.ping", json!(true))).await.unwrap_err();
    assert!(err.retry_later(), "{err:?}");
    assert!(err.to_string().starts_with("carbon at 127.0.0.1:"), "{err}");
    assert!(matches!(store.check().await, Err(ReturnerError::Unavailable(_))));
}

/// A stand-in that counts connections and what they carry: a batch is one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_connection() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut bytes = Vec::new();
            conn.read_to_end(&mut bytes).await.unwrap();
            record.lock().unwrap().push(bytes);
        }
    });
    let opts = obj(json!({"carbon.host": "127.0.0.1", "carbon.port": port}));
    let store = salt_returners::open_sink("carbon", &salt_returners::options::Lookup::new(&opts)).await.unwrap();
    let jid = "20240510093000000001";
    let rets: Vec<Load> = (0..50).map(|n| ret(jid, &format!("m{n}"), "test.arg", json!({"n": n}))).collect();
    assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let text = String::from_utf8(seen[0].clone()).unwrap();
    assert_eq!(text.lines().count(), 50);
    assert!(text.starts_with("test.arg.m0.n 0.0 1715333400\ntest.arg.m1.n 1.0 1715333400\n"), "{text}");
}

/// Our pickles, as Debian's Python reads them (`pickle.loads`, what carbon runs).
#[test]
fn our_pickles_are_what_python_reads() {
    let python = Path::new("/usr/bin/python3");
    if !python.exists() {
        return saltrs_testkit::skip("no /usr/bin/python3 to read our pickles back (Debian's python3)");
    }
    let metrics = [
        Metric { name: "test.ping.m1".into(), value: 1.0, timestamp: 1715333400 },
        Metric { name: "a.é.😀".into(), value: -0.25, timestamp: 1 << 31 },
        Metric { name: "x".into(), value: 1e300, timestamp: -5 },
    ];
    let framed = encode::pickles(&metrics, encode::MAX_PICKLE_BYTES);
    let script = "import pickle,struct,sys\n\
                  b=sys.stdin.buffer.read()\n\
                  n=struct.unpack('!L',b[:4])[0]\n\
                  assert len(b)==4+n\n\
                  print(repr(pickle.loads(b[4:])))";
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &framed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "[('test.ping.m1', (1715333400, 1.0)), ('a.é.😀', (2147483648, -0.25)), ('x', (-5, 1e+300))]"
    );
}
