//! The `syslog` returner against a real rsyslogd started by `saltrs_testkit::Server`, which
//! writes every message as received to a file: the sink suite over the local socket and over
//! TCP (reading the file, long returns put back together from their parts), then Salt's
//! message with its level, facility, tag and `LOG_PID` over the socket, UDP and TCP, and long
//! returns in parts within rsyslog's default 8096 bytes.

// The job-cache half of the suite is for stores that keep jobs.
#[macro_use]
#[allow(dead_code, unused_macros)]
mod suite;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use salt_returners::syslog::encode::reassemble;
use salt_returners::{Load, Sink};
use saltrs_testkit::Server;
use serde_json::{json, Map, Value};
use suite::sink::{Reader, ServerService, SinkBackend};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ret(jid: &str, id: &str, fun: &str, value: Value) -> Load {
    obj(json!({"success": true, "return": value, "retcode": 0, "jid": jid, "fun": fun, "fun_args": [], "id": id}))
}

async fn rsyslog() -> Option<Arc<Mutex<Server>>> {
    tokio::task::spawn_blocking(Server::rsyslog).await.unwrap().map(|s| Arc::new(Mutex::new(s)))
}

/// The options that send to `server` over `transport`.
fn to(server: &Mutex<Server>, transport: &str) -> Map<String, Value> {
    let s = server.lock().unwrap();
    match transport {
        "unix" => obj(json!({"syslog.socket": s.log_socket().display().to_string()})),
        "udp" => obj(json!({"syslog.transport": "udp", "syslog.host": "127.0.0.1", "syslog.port": s.udp_port()})),
        "tcp" => obj(json!({"syslog.transport": "tcp", "syslog.host": "127.0.0.1", "syslog.port": s.port()})),
        other => panic!("no transport {other}"),
    }
}

/// The returner, opened by name through the registry with Salt's flat options.
async fn open(server: &Mutex<Server>, transport: &str, extra: Value) -> Arc<dyn Sink> {
    let mut opts = to(server, transport);
    opts.extend(obj(extra));
    salt_returners::open_sink("syslog", &salt_returners::options::Lookup::new(&opts)).await.unwrap()
}

/// A line as rsyslog wrote it: (PRI, the time stamp, the tag as sent, the text).
fn parse_line(line: &str) -> Option<(u8, &str, &str, &str)> {
    let rest = line.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    let stamp = rest.get(..15)?;
    let (tag, text) = rest.get(16..)?.split_once(": ")?;
    Some((pri.parse().ok()?, stamp, tag, text))
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Every return in the file, put back together, as JSON.
fn returns_in(path: &Path) -> Vec<Value> {
    let lines = lines(path);
    let texts = lines.iter().filter_map(|l| parse_line(l)).map(|(_, _, _, text)| text);
    reassemble(texts).iter().filter_map(|t| serde_json::from_str(t).ok()).collect()
}

fn read_back(path: &Path, jid: &str, id: &str) -> Vec<Value> {
    returns_in(path).into_iter().filter(|r| r["jid"] == jid && r["id"] == id).map(|r| r["return"].clone()).collect()
}

async fn backend(transport: &str) -> Option<SinkBackend> {
    let server = rsyslog().await?;
    let store = open(&server, transport, json!({})).await;
    let path: PathBuf = server.lock().unwrap().messages_path();
    let read: Reader = Box::new(move |jid, id| {
        let path = path.clone();
        Box::pin(async move { read_back(&path, &jid, &id) })
    });
    Some(SinkBackend::new(store, read, server.clone()).with_service(ServerService(server)))
}

async fn local_socket() -> Option<SinkBackend> {
    backend("unix").await
}

async fn tcp() -> Option<SinkBackend> {
    backend("tcp").await
}

sink_conformance!(syslog_socket, local_socket);
sink_conformance!(syslog_tcp, tcp);

/// The lines of `server`'s file once `count` are there (rsyslog writes behind), for up to 30 s.
async fn wait_lines(server: &Mutex<Server>, count: usize) -> Vec<String> {
    let path = server.lock().unwrap().messages_path();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = lines(&path);
        if got.len() >= count || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salts_message_with_level_facility_tag_and_pid_over_each_transport() {
    let Some(server) = rsyslog().await else { return };
    let mut want = 0;
    for transport in ["unix", "udp", "tcp"] {
        // Salt's defaults: user.info (14), the program's name as the tag.
        let store = open(&server, transport, json!({})).await;
        let r = ret("20240510093000000001", "m1", "test.echo", json!(format!("héllo over {transport}")));
        store.returner(&r).await.unwrap();
        want += 1;
        let line = wait_lines(&server, want).await.pop().unwrap();
        let (pri, stamp, tag, text) = parse_line(&line).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(pri, 14, "{line}");
        let program = std::env::args().next().map(|a| Path::new(&a).file_name().unwrap().to_string_lossy().into_owned()).unwrap();
        assert_eq!(tag, program);
        assert!(chrono::NaiveTime::parse_from_str(&stamp[7..], "%H:%M:%S").is_ok() && stamp[3..6].starts_with(' '), "{stamp}");
        // json.dumps(ret): the ret's own order, non-ASCII escaped, nothing after it.
        let json = format!(
            r#"{{"success": true, "return": "h\u00e9llo over {transport}", "retcode": 0, "jid": "20240510093000000001", "fun": "test.echo", "fun_args": [], "id": "m1"}}"#
        );
        assert_eq!(text, json);

        // Salt's options: local3.err (152 | 3), a tag, LOG_PID.
        let store = open(
            &server,
            transport,
            json!({"syslog": {"level": "LOG_ERR", "facility": "LOG_LOCAL3", "tag": "mysalt", "options": ["LOG_PID"]}}),
        )
        .await;
        store.returner(&ret("20240510093000000002", "m1", "test.ping", json!(true))).await.unwrap();
        want += 1;
        let line = wait_lines(&server, want).await.pop().unwrap();
        let (pri, _, tag, text) = parse_line(&line).unwrap();
        assert_eq!((pri, tag), (155, format!("mysalt[{}]", std::process::id()).as_str()), "{line}");
        assert!(text.starts_with(r#"{"success": true, "return": true"#), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_returns_arrive_in_parts_within_rsyslogs_limit_and_come_back_whole() {
    let Some(server) = rsyslog().await else { return };
    let path = server.lock().unwrap().messages_path();
    // UDP carries no more than the receiver's buffer takes at once: a smaller return there.
    for (transport, size) in [("unix", 1024 * 1024), ("tcp", 1024 * 1024), ("udp", 100 * 1024)] {
        let store = open(&server, transport, json!({})).await;
        let big: String = (0..size).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let jid = "20240510093000000003";
        store.returner(&ret(jid, transport, "cmd.run", json!(big))).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut got = read_back(&path, jid, transport);
        while got.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            got = read_back(&path, jid, transport);
        }
        assert_eq!(got.len(), 1, "{transport}: one return, whole");
        assert!(got[0].as_str() == Some(big.as_str()), "{transport}: the return came back whole");
    }
    let lines = lines(&path);
    assert!(lines.len() > 250, "{}", lines.len());
    assert!(lines.iter().all(|l| l.len() <= 8096), "every part within rsyslog's 8096 bytes");
    assert!(lines.iter().all(|l| parse_line(l).is_some_and(|(_, _, _, text)| text.starts_with("[part "))));
    assert!(!server.lock().unwrap().log_tail(50).contains("oversize"), "{}", server.lock().unwrap().log_tail(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_long_for_the_socket_refuses_its_return_alone() {
    let Some(server) = rsyslog().await else { return };
    // Past what the kernel takes in one local datagram (about 208 KiB by default).
    let store = open(&server, "unix", json!({"syslog.max_message_size": 4_000_000})).await;
    let jid = "20240510093000000004";
    let rejected = store
        .returner_batch(&[ret(jid, "huge", "cmd.run", json!("x".repeat(1_000_000))), ret(jid, "small", "test.ping", json!(true))])
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].index, 0);
    assert!(
        rejected[0].reason.contains("too long for the socket") && rejected[0].reason.contains("syslog.max_message_size"),
        "{rejected:?}"
    );
    let path = server.lock().unwrap().messages_path();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while read_back(&path, jid, "small").is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(read_back(&path, jid, "small"), [json!(true)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_rsyslog_is_unavailable() {
    let Some(server) = rsyslog().await else { return };
    for transport in ["unix", "tcp"] {
        let store = open(&server, transport, json!({})).await;
        store.check().await.unwrap();
        let s = server.clone();
        tokio::task::spawn_blocking(move || s.lock().unwrap().stop()).await.unwrap();
        let err = store.returner(&ret("20240510093000000005", "m1", "test.ping", json!(true))).await.unwrap_err();
        assert!(err.retry_later(), "{transport}: {err:?}");
        assert!(err.to_string().starts_with("syslog at "), "{err}");
        assert!(store.check().await.is_err());
        let s = server.clone();
        tokio::task::spawn_blocking(move || s.lock().unwrap().start().unwrap()).await.unwrap();
    }
}
