//! The first page of `jobs.list_jobs` in each job-cache store, as the store holds more jobs.
//!
//! `cargo run --release -p salt-returners --example bench_list_jobs -- [sizes] [runs]`
//!
//! For each store named in `SALTRS_BENCH_STORES` (default: every job cache built in), in a fresh
//! database or server: the store is filled with jobs (publish loads as the master saves them,
//! `save_load`, 16 at a time, one at a time into sqlite3) up to each size in `sizes` (default
//! `1000,10000,100000`), and at each size `get_jids` of the newest 100 jobs (what
//! `salt-run jobs.list_jobs` shows first) is timed `runs` times (default 30); the median and
//! the slowest are printed. The aim: the first
//! page does not grow with the number of jobs.
//!
//! Servers: `BENCH_MYSQL` (default `mysql://root@127.0.0.1:3306`) and `BENCH_PG` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); every other server is started privately by
//! `saltrs_testkit::Server` (`bash scripts/services.sh tools` installs them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use salt_returners::{JobCache, JobQuery, Load};
use serde_json::{json, Map, Value};

/// A store opened on a fresh database, and what keeps that alive (a temp dir, a server).
struct Target {
    store: Arc<dyn JobCache>,
    _keep: Box<dyn std::any::Any>,
    cleanup: Option<Box<dyn FnOnce()>>,
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A database named `name` on the server at `url` (created with the client tool), dropped at
/// the end.
fn sql_database(kind: &str, url: &str, name: &str) -> Box<dyn FnOnce()> {
    let (tool, create, drop): (&str, String, String) = match kind {
        "mysql" => {
            ("mariadb", format!("CREATE DATABASE `{name}` DEFAULT CHARACTER SET utf8mb4"), format!("DROP DATABASE IF EXISTS `{name}`"))
        }
        _ => ("psql", format!("CREATE DATABASE {name}"), format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
    };
    let run = move |tool: &str, url: &str, sql: &str| {
        let status = match tool {
            "mariadb" => {
                let u = url.trim_start_matches("mysql://");
                let (user, hostport) = u.split_once('@').unwrap_or(("root", u));
                let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
                std::process::Command::new("mariadb").args(["-h", host, "-P", port, "-u", user, "-e", sql]).status()
            }
            _ => std::process::Command::new("psql").args([url, "-qc", sql]).status(),
        };
        assert!(status.is_ok_and(|s| s.success()), "{tool}: {sql}");
    };
    run(tool, url, &create);
    let url = url.to_string();
    Box::new(move || run(tool, &url, &drop))
}

/// A store's options, what keeps its server alive, and what drops its database at the end.
type Setup = (Map<String, Value>, Box<dyn std::any::Any>, Option<Box<dyn FnOnce()>>);

async fn target(name: &str, dir: &std::path::Path) -> Option<Target> {
    let db = format!("saltrs_bench_list_{}", std::process::id());
    let mysql = std::env::var("BENCH_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let pg = std::env::var("BENCH_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg_host_port = || {
        let rest = pg.split('@').nth(1).unwrap_or("127.0.0.1:5432");
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (h, p) = hostport.split_once(':').unwrap_or((hostport, "5432"));
        (h.to_string(), p.parse::<u16>().unwrap_or(5432))
    };
    let (opts, keep, cleanup): Setup = match name {
        "local_cache" => (obj(json!({"cachedir": dir})), Box::new(()), None),
        "sqlite3" => (obj(json!({"sqlite3.database": dir.join("salt.db"), "sqlite3.timeout": 5.0})), Box::new(()), None),
        "mysql" => {
            let cleanup = sql_database("mysql", &mysql, &db);
            let u = mysql.trim_start_matches("mysql://");
            let (user, hostport) = u.split_once('@').unwrap_or(("root", u));
            let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
            let opts = obj(json!({"mysql.host": host, "mysql.port": port.parse::<u16>().unwrap(), "mysql.user": user,
                                  "mysql.pass": "", "mysql.db": db}));
            (opts, Box::new(()), Some(cleanup))
        }
        "pgjsonb" | "postgres" => {
            let cleanup = sql_database("pg", &pg, &db);
            let (host, port) = pg_host_port();
            let p = format!("returner.{name}");
            let pass = if name == "postgres" { "passwd" } else { "pass" };
            let mut opts = Map::new();
            for (k, v) in [("host", json!(host)), ("port", json!(port)), ("user", json!("postgres")), (pass, json!("")), ("db", json!(db))]
            {
                opts.insert(format!("{p}.{k}"), v);
            }
            (opts, Box::new(()), Some(cleanup))
        }
        other => {
            eprintln!("{other}: no benchmark set-up for this store; skipped");
            return None;
        }
    };
    // An empty password in the config means Salt's default `salt`; the servers here take none.
    let kwargs = obj(json!({"pass": "", "passwd": ""}));
    let lookup = salt_returners::options::Lookup { opts: Some(&opts), ret_config: None, ret_kwargs: Some(&kwargs) };
    let store = salt_returners::open(name, &lookup).await.ok()?.job_cache()?;
    if salt_returners::entry(name).ok()?.schema.is_some() {
        store.create_schema().await.unwrap();
    }
    Some(Target { store, _keep: keep, cleanup })
}

/// A publish load as the master saves it.
fn publish(jid: &str, n: usize) -> Load {
    obj(json!({"cmd": "publish", "tgt": format!("web{}", n % 50), "fun": if n.is_multiple_of(7) { "state.apply" } else { "cmd.run" },
               "arg": ["uptime"], "tgt_type": "glob", "ret": "", "jid": jid, "user": "root",
               "kwargs": {"show_timeout": true, "show_jid": false, "delimiter": ":"}}))
}

/// Jobs `from..to`, one jid per millisecond from a fixed start, so every size is the same series;
/// 16 at a time, but one at a time into an SQLite file (one writer: concurrent writers only
/// wait on its lock, and the master's spool writes one at a time anyway).
async fn fill(store: &Arc<dyn JobCache>, from: usize, to: usize) {
    let at_once = if store.name() == "sqlite3" { 1 } else { 16 };
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    futures::stream::iter(from..to)
        .for_each_concurrent(at_once, |n| {
            let store = store.clone();
            async move {
                let jid = salt_proto::jid::jid_at(start + chrono::Duration::milliseconds(n as i64));
                store.save_load(&jid, &publish(&jid, n), Some(&["web1".to_string()])).await.unwrap();
            }
        })
        .await;
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> =
        args.get(1).map_or("1000,10000,100000", String::as_str).split(',').map(|s| s.parse().expect("a size")).collect();
    let runs: usize = args.get(2).map_or(30, |r| r.parse().expect("a number of runs"));
    let names: Vec<String> = match std::env::var("SALTRS_BENCH_STORES") {
        Ok(list) => list.split(',').map(str::to_string).collect(),
        Err(_) => salt_returners::ENTRIES
            .iter()
            .filter(|e| e.calls.contains(&salt_returners::Capability::GetJids))
            .map(|e| e.name.to_string())
            .collect(),
    };
    println!("| Store | Jobs | first page (100) median ms | slowest ms | fill s |");
    println!("|---|---:|---:|---:|---:|");
    for name in names {
        let dir = tempfile::tempdir().unwrap();
        let Some(mut t) = target(&name, dir.path()).await else { continue };
        let mut filled = 0;
        for &size in &sizes {
            let started = Instant::now();
            fill(&t.store, filled, size).await;
            let fill_secs = started.elapsed().as_secs_f64();
            filled = size;
            let query = JobQuery { limit: Some(100), exclude_find_job: true, ..Default::default() };
            let mut times = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t0 = Instant::now();
                let page = t.store.get_jids(&query).await.unwrap();
                times.push(t0.elapsed());
                assert_eq!(page.len(), 100.min(size), "{name}: a full first page");
            }
            let slowest = *times.iter().max().unwrap();
            println!(
                "| {name} | {size} | {:.2} | {:.2} | {fill_secs:.1} |",
                median(times).as_secs_f64() * 1000.0,
                slowest.as_secs_f64() * 1000.0
            );
        }
        if let Some(cleanup) = t.cleanup.take() {
            drop(t.store);
            cleanup();
        }
    }
}
