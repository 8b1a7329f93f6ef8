//! Stream returner throughput: returns delivered per second to `carbon` (carbon-cache) and
//! `syslog` (rsyslogd), beside a raw client sending the same bytes.
//!
//! `cargo run --release -p salt-returners --example bench_stream -- [returns] [runs]`
//!
//! Each runs against a private server that `saltrs_testkit::Server` starts. `returns` minion
//! returns of one job (default 1,000) arrive together and are timed until delivered, four ways:
//! - **spool → store**: one `Spool::push_nowait` per return, then `flush` (on disk, fsynced,
//!   delivered);
//! - **store**: `returner_batch` of all of them;
//! - **raw**: the bytes the store sends, made before the clock starts, written by a bare client
//!   on one connection (one socket for datagrams) the same way: for TCP, in one write, our side
//!   shut, and read until the server closes (it has read everything); one `send` per datagram;
//! - **Salt's way**: the same bytes, a new connection (socket) for each return, as Salt's
//!   returners open one per call (without Python's own cost).
//!
//! carbon's returns are `status.loadavg`-like (4 numbers each); syslog's are a `cmd.run` of
//! `ls /` (about 300 bytes of JSON). Each figure is the median of `runs` runs (default 5).

use std::sync::Arc;
use std::time::{Duration, Instant};

use salt_returners::options::Lookup;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Load, Sink, Store};
use saltrs_testkit::Server;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixDatagram};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn carbon_return(jid: &str, n: usize) -> Load {
    obj(json!({"success": true, "return": {"1-min": 0.25, "5-min": 0.5, "15-min": 0.75, "procs": n}, "retcode": 0,
        "jid": jid, "fun": "status.loadavg", "fun_args": [], "id": format!("minion{n:04}")}))
}

fn syslog_return(jid: &str, n: usize) -> Load {
    obj(
        json!({"success": true, "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "id": format!("minion{n:04}")}),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Where the raw client sends.
#[derive(Clone)]
enum Dest {
    Tcp(u16),
    Unix(std::path::PathBuf),
}

/// `payloads` on one connection (or socket), as the store sends them.
async fn raw(dest: &Dest, payloads: &[Vec<u8>]) {
    match dest {
        Dest::Tcp(port) => {
            let mut s = TcpStream::connect(("127.0.0.1", *port)).await.unwrap();
            s.write_all(&payloads.concat()).await.unwrap();
            s.shutdown().await.unwrap();
            let mut sink = [0u8; 4096];
            while s.read(&mut sink).await.unwrap() > 0 {}
        }
        Dest::Unix(path) => {
            let s = UnixDatagram::unbound().unwrap();
            s.connect(path).unwrap();
            for p in payloads {
                s.send(p).await.unwrap();
            }
        }
    }
}

/// Each return's payload on a connection (socket) of its own.
async fn salts_way(dest: &Dest, per_return: &[Vec<Vec<u8>>]) {
    for payloads in per_return {
        raw(dest, payloads).await;
    }
}

struct Case {
    name: &'static str,
    opts: Map<String, Value>,
    dest: Dest,
    make: fn(&str, usize) -> Load,
    /// A return's bytes on the wire, as the store sends them.
    wire: fn(&Load) -> Vec<Vec<u8>>,
}

fn carbon_text_wire(ret: &Load) -> Vec<Vec<u8>> {
    let metrics = salt_returners::carbon::encode::return_metrics(ret, "[module].[function].[minion_id]", false).unwrap().unwrap();
    vec![salt_returners::carbon::encode::text(&metrics)]
}

fn carbon_pickle_wire(ret: &Load) -> Vec<Vec<u8>> {
    let metrics = salt_returners::carbon::encode::return_metrics(ret, "[module].[function].[minion_id]", false).unwrap().unwrap();
    vec![salt_returners::carbon::encode::pickles(&metrics, salt_returners::carbon::encode::MAX_PICKLE_BYTES)]
}

fn syslog_header() -> String {
    salt_returners::syslog::encode::header(14, chrono::Local::now(), "bench", None)
}

fn syslog_unix_wire(ret: &Load) -> Vec<Vec<u8>> {
    salt_returners::syslog::encode::prepare_return(ret, &syslog_header(), 8096).unwrap().unwrap().messages
}

fn syslog_tcp_wire(ret: &Load) -> Vec<Vec<u8>> {
    syslog_unix_wire(ret).into_iter().map(|m| [format!("{} ", m.len()).into_bytes(), m].concat()).collect()
}

async fn run(case: &Case, n: usize, runs: usize) {
    let (mut spooled, mut stored, mut raws, mut salts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        // A new jid for each way and run: syslog does not send a return twice.
        let jid = |way: usize| format!("2026120100000{:07}", r * 10 + way);
        let store: Arc<dyn Sink> = salt_returners::open_sink(case.name.split(' ').next().unwrap(), &Lookup::new(&case.opts)).await.unwrap();

        let rets: Vec<Load> = (0..n).map(|i| (case.make)(&jid(0), i)).collect();
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Store::Sink(store.clone())).unwrap();
        let t = Instant::now();
        for ret in &rets {
            spool.push_nowait(vec![Record::Return { ret: ret.clone() }]);
        }
        assert!(spool.flush(Duration::from_secs(600)).await, "the spool did not drain");
        spooled.push(t.elapsed());

        let rets: Vec<Load> = (0..n).map(|i| (case.make)(&jid(1), i)).collect();
        let t = Instant::now();
        assert_eq!(store.returner_batch(&rets).await.unwrap(), []);
        stored.push(t.elapsed());

        let per_return: Vec<Vec<Vec<u8>>> = (0..n).map(|i| (case.wire)(&(case.make)(&jid(2), i))).collect();
        let all: Vec<Vec<u8>> = per_return.iter().flatten().cloned().collect();
        let t = Instant::now();
        raw(&case.dest, &all).await;
        raws.push(t.elapsed());

        let t = Instant::now();
        salts_way(&case.dest, &per_return).await;
        salts.push(t.elapsed());
    }
    let (sp, st, rw, sa) = (rate(n, median(spooled)), rate(n, median(stored)), rate(n, median(raws)), rate(n, median(salts)));
    println!("| {} | {sp:.0} | {:.2} | {st:.0} | {:.2} | {rw:.0} | {sa:.0} | {:.2} |", case.name, sp / rw, st / rw, sa / rw);
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let (n, runs) = (args.first().copied().unwrap_or(1000), args.get(1).copied().unwrap_or(5));
    let carbon = tokio::task::spawn_blocking(Server::carbon).await.unwrap().expect("carbon-cache (graphite-carbon)");
    let rsyslog = tokio::task::spawn_blocking(Server::rsyslog).await.unwrap().expect("rsyslogd");
    let carbon_opts = |mode: &str, port: u16| obj(json!({"carbon.host": "127.0.0.1", "carbon.port": port, "carbon.mode": mode}));
    let cases = [
        Case {
            name: "carbon (text)",
            opts: carbon_opts("text", carbon.port()),
            dest: Dest::Tcp(carbon.port()),
            make: carbon_return,
            wire: carbon_text_wire,
        },
        Case {
            name: "carbon (pickle)",
            opts: carbon_opts("pickle", carbon.pickle_port()),
            dest: Dest::Tcp(carbon.pickle_port()),
            make: carbon_return,
            wire: carbon_pickle_wire,
        },
        Case {
            name: "syslog (local socket)",
            opts: obj(json!({"syslog.socket": rsyslog.log_socket().display().to_string(), "syslog.tag": "bench"})),
            dest: Dest::Unix(rsyslog.log_socket()),
            make: syslog_return,
            wire: syslog_unix_wire,
        },
        Case {
            name: "syslog (TCP)",
            opts: obj(json!({"syslog.transport": "tcp", "syslog.host": "127.0.0.1", "syslog.port": rsyslog.port(), "syslog.tag": "bench"})),
            dest: Dest::Tcp(rsyslog.port()),
            make: syslog_return,
            wire: syslog_tcp_wire,
        },
    ];
    println!("{n} returns arriving together, median of {runs} runs; returns/s, ratio = rate / raw");
    println!("| Returner | spool → store | ratio | store | ratio | raw client | Salt's way | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for case in &cases {
        run(case, n, runs).await;
    }
}
