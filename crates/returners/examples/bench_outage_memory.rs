//! The memory a daemon holds while its store is down: 10,000 returns pushed into the spool in
//! front of a returner whose service refuses connections, as the master and the minion do.
//!
//! `cargo run --release -p salt-returners --example bench_outage_memory -- [returns] [store]`
//!
//! `store` (default `splunk`) is opened with its service's address on a loopback port nothing
//! listens on, so every delivery fails with "cannot connect" and the spool keeps retrying.
//! `returns` returns (default 10,000; a `cmd.run` master return, ~400 bytes of JSON each) are
//! pushed one by one, as minions' returns arrive, then awaited on disk. Printed: the process's
//! VmRSS before (the returns already built in memory, as they would be on arrival), after the
//! pushes, after 10 s and 60 s of retrying, and its peak (VmHWM), beside the bytes the returns
//! take as JSON. The records are on disk in the spool, not in memory: what
//! grows is the writer's buffers and the allocator's pages, not the backlog.

use std::time::Duration;

use salt_returners::options::Lookup;
use salt_returners::spool::{Record, Spool};
use salt_returners::{Load, Store};
use serde_json::json;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix(field)).and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn master_return(n: usize) -> Load {
    let v = json!({"cmd": "_return", "id": format!("minion{n:05}"), "success": true,
        "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": "20261201120000000001", "fun": "cmd.run", "fun_args": ["ls /"], "user": "root",
        "_stamp": "2026-12-01T12:00:00.000000+00:00"});
    v.as_object().unwrap().clone()
}

/// Options that point `store` at `port`, where nothing listens.
fn options_for(store: &str, port: u16) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}");
    match store {
        "splunk" => json!({"splunk_http_forwarder": {"token": "t0k3n", "indexer": "127.0.0.1", "port": port, "scheme": "http"}}),
        "slack_webhook" => json!({"slack_webhook.webhook": "T0/B0/x", "slack_webhook.api_url": url}),
        "mattermost" => json!({"mattermost.hook": "h00k", "mattermost.api_url": url}),
        "redis" => json!({"redis.host": "127.0.0.1", "redis.port": port}),
        "mysql" => json!({"mysql.host": "127.0.0.1", "mysql.port": port}),
        other => panic!("no options known for '{other}'; add them here"),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|a| a.parse().expect("returns: a number")).unwrap_or(10_000);
    let store_name = args.next().unwrap_or_else(|| "splunk".into());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let opts = options_for(&store_name, closed);
    let store = salt_returners::open(&store_name, &Lookup::new(opts.as_object().unwrap())).await.expect("the store opens");
    let dir = tempfile::tempdir().unwrap();
    let rets: Vec<Load> = (0..count).map(master_return).collect();
    let json_bytes: usize = rets.iter().map(|r| serde_json::to_vec(r).unwrap().len()).sum();
    let before = status_kib("VmRSS:");
    let spool = Spool::open(dir.path(), Store::clone(&store)).unwrap();
    for ret in rets {
        spool.push_nowait(vec![Record::Return { ret }]);
    }
    spool.push(Vec::new()).await.unwrap();
    let after_push = status_kib("VmRSS:");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after_retrying = status_kib("VmRSS:");
    tokio::time::sleep(Duration::from_secs(50)).await;
    let after_a_minute = status_kib("VmRSS:");
    let depth = spool.stats().depth;
    assert_eq!(depth as usize, count, "every return is held while the service is down");
    println!("| store | returns held | as JSON | VmRSS before | after the pushes | after 10 s of retries | after 60 s | peak (VmHWM) |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {store_name} | {depth} | {} | {} | {} | {} | {} | {} |",
        mib(json_bytes as u64 / 1024),
        mib(before),
        mib(after_push),
        mib(after_retrying),
        mib(after_a_minute),
        mib(status_kib("VmHWM:"))
    );
}
