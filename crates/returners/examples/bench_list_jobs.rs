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
//! `postgres://postgres@127.0.0.1:5432/postgres`); redis, memcache, mongo, etcd, couchdb and
//! elasticsearch each get a private server started by `saltrs_testkit::Server` (`bash
//! scripts/services.sh tools` installs them; memcached with 1 GiB, so that it evicts nothing;
//! memcached and osmem-server keep everything in memory, which is fine here).
//!
//! A size whose filling would take more than `SALTRS_BENCH_FILL_LIMIT` seconds (default 600),
//! judged by the store's filling rate so far, is skipped; a filling that takes longer than
//! that anyway, or fails, is stopped there. The table says so, and the store's larger sizes are
//! left out. `fill s` is the time to fill from the size before. A store whose first listing
//! after a fill fails (CouchDB building its view past the store's request deadline) is asked
//! again until it answers (within the same limit), and the table says so; the timed listings
//! come after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use salt_returners::{JobCache, JobQuery, Load};
use saltrs_testkit::{Kind, Server};
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
        "redis" | "memcache" | "mongo" | "etcd" | "couchdb" | "elasticsearch" => {
            let kind = name.to_string();
            let server = tokio::task::spawn_blocking(move || match kind.as_str() {
                "redis" => Server::redis(),
                // memcached's own 64 MB would evict jobs of the largest sizes.
                "memcache" => Server::with_args(Kind::Memcached, &["-m", "1024"]),
                "mongo" => Server::mongo(),
                "etcd" => Server::etcd(),
                "couchdb" => Server::couchdb(),
                _ => Server::elasticsearch(),
            })
            .await
            .unwrap()?;
            let port = server.port();
            let opts = match name {
                "redis" => obj(json!({"redis.host": "127.0.0.1", "redis.port": port})),
                "memcache" => obj(json!({"memcache.host": "127.0.0.1", "memcache.port": port})),
                "mongo" => obj(json!({"mongo.host": "127.0.0.1", "mongo.port": port, "mongo.db": "salt"})),
                "etcd" => obj(json!({"etcd.host": "127.0.0.1", "etcd.port": port})),
                "couchdb" => obj(json!({"couchdb.url": format!("{}/", server.url()), "couchdb.db": "salt"})),
                _ => obj(json!({"elasticsearch.hosts": [server.url()], "elasticsearch.timeout": 60})),
            };
            (opts, Box::new(server), None)
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
/// wait on its lock, and the master's spool writes one at a time anyway). No new job is started
/// after `deadline` or after a failure: how many jobs (from `from` on, none missing) were
/// stored, and the first failure.
async fn fill(store: &Arc<dyn JobCache>, from: usize, to: usize, deadline: Instant) -> (usize, Option<String>) {
    let at_once = if store.name() == "sqlite3" { 1 } else { 16 };
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().to_utc();
    let failed: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let stored = std::sync::atomic::AtomicUsize::new(0);
    futures::stream::iter(from..to)
        .take_while(|_| futures::future::ready(Instant::now() < deadline && failed.lock().unwrap().is_none()))
        .for_each_concurrent(at_once, |n| {
            let (store, failed, stored) = (store.clone(), &failed, &stored);
            async move {
                let jid = salt_proto::jid::jid_at(start + chrono::Duration::milliseconds(n as i64));
                match store.save_load(&jid, &publish(&jid, n), Some(&["web1".to_string()])).await {
                    Ok(()) => {
                        stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(e) => {
                        failed.lock().unwrap().get_or_insert_with(|| format!("job {n}: {e}"));
                    }
                }
            }
        })
        .await;
    (stored.into_inner(), failed.into_inner().unwrap())
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
    let fill_limit: f64 = std::env::var("SALTRS_BENCH_FILL_LIMIT").map_or(600.0, |s| s.parse().expect("seconds"));
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
        let (mut filled, mut filling) = (0, 0.0);
        for &size in &sizes {
            if filled > 0 && size > filled {
                let expected = filling / filled as f64 * (size - filled) as f64;
                if expected > fill_limit {
                    println!("| {name} | {size} | skipped: filling would take ~{expected:.0} s | | |");
                    break;
                }
            }
            let started = Instant::now();
            let (stored, failed) = fill(&t.store, filled, size, started + Duration::from_secs_f64(fill_limit)).await;
            let fill_secs = started.elapsed().as_secs_f64();
            if let Some(why) = failed {
                println!("| {name} | {size} | failed after {} jobs ({fill_secs:.0} s): {why} | | |", filled + stored);
                break;
            }
            if filled + stored < size {
                println!("| {name} | {size} | stopped: {} jobs after {fill_secs:.0} s of filling | | |", filled + stored);
                break;
            }
            filling += fill_secs;
            filled = size;
            let query = JobQuery { limit: Some(100), exclude_find_job: true, ..Default::default() };
            // A store may fail the first listing after a big fill (CouchDB builds its view then,
            // within the store's request deadline): it is asked again, until the fill limit, and
            // the timed listings start once it answers. A first listing that answers at once is
            // the first timed one, as always.
            let mut times = Vec::with_capacity(runs);
            let (first, mut failures, mut last_error, mut answered) = (Instant::now(), 0, None, false);
            loop {
                let t0 = Instant::now();
                match t.store.get_jids(&query).await {
                    Ok(page) => {
                        assert_eq!(page.len(), 100.min(size), "{name}: a full first page");
                        if failures == 0 {
                            times.push(t0.elapsed());
                        }
                        answered = true;
                        break;
                    }
                    Err(e) => {
                        (failures, last_error) = (failures + 1, Some(e));
                        if first.elapsed().as_secs_f64() > fill_limit {
                            break;
                        }
                    }
                }
            }
            if let Some(e) = last_error {
                let waited = first.elapsed().as_secs_f64();
                let outcome = if answered { "answered" } else { "no answer" };
                println!("| {name} | {size} | first get_jids failed {failures} time(s) ({e}); {outcome} after {waited:.0} s | | |");
                if !answered {
                    break;
                }
            }
            while times.len() < runs {
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
