//! The end-to-end cases every store runs, through the real programs: the seed's walkthrough
//! (`--return <store>` from the minion; `master_job_cache: <store>` then `jobs.lookup_jid`,
//! `jobs.list_jobs`, `jobs.list_job`), the store's server going away during a burst of 10,000
//! returns, and a store that cannot be reached when the master starts.
//!
//! A store takes part by implementing [`StoreServer`] for its server (see `store_*.rs`); what it
//! stored is read back through the store's own `get_jid` (its conformance suite checks that
//! against the server's raw contents), plus [`StoreServer::raw_count`] where the server can be
//! counted directly.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use salt_returners::Load;
use serde_json::{Map, Value};

use crate::harness::*;

/// A store's server for these cases.
pub trait StoreServer: Send {
    /// Salt's name of the returner (`redis`).
    fn name(&self) -> &'static str;
    /// The config lines that point a daemon at the server (`redis.host: ...`, one per line).
    fn config(&self) -> String;
    /// Takes the server away (connections refused) ...
    fn stop(&mut self);
    /// ... and brings it back at the same address, with what it held.
    fn start(&mut self);
    /// How many (jid, minion) returns the server holds for jids at or after `from_jid`, and how
    /// many of those are stored more than once, counted in the server itself; None where the
    /// store's layout cannot hold a duplicate (a key per return).
    fn raw_count(&self, _from_jid: &str) -> Option<(usize, usize)> {
        None
    }
}

/// The store as `jobs.*` reads it, opened from `config` as the master opens it, on a runtime of
/// its own that lives as long as it (a driver's connection tasks run there).
pub(crate) struct Reader {
    runtime: tokio::runtime::Runtime,
    store: std::sync::Arc<dyn salt_returners::JobCache>,
}

impl Reader {
    pub(crate) fn open(name: &str, config: &str) -> Reader {
        let opts = salt_config::Config::from_yaml_str(salt_config::Role::Master, config, "store").expect("the store's config");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let store = runtime.block_on(salt_returners::open_job_cache(name, opts.as_map())).expect("the store opens");
        Reader { runtime, store }
    }

    /// `{minion: stored return}` of `jid`, waiting until `ids` are all there (or `within`
    /// passed); a store that keeps failing is a failure, not an empty job.
    pub(crate) fn wait_job(&self, jid: &str, ids: usize, within: Duration) -> Map<String, Value> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.runtime.block_on(self.store.get_jid(jid));
            match got {
                Ok(got) if got.len() >= ids || Instant::now() > deadline => return got,
                Err(e) if Instant::now() > deadline => panic!("{}: get_jid({jid}) keeps failing: {e}", self.store.name()),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn get_load(&self, jid: &str) -> Option<Load> {
        self.runtime.block_on(self.store.get_load(jid)).expect("get_load")
    }
}

fn jid_of_verbose(r: &Run) -> String {
    let line = r.stdout.lines().next().unwrap_or_default();
    let jid = line.trim_start_matches("Executing job with jid ").trim().to_string();
    assert!(salt_proto::jid::is_jid(&jid), "no jid in: {}{}", r.stdout, r.stderr);
    jid
}

/// The walkthrough: a minion returning to the store itself, then the master keeping every job
/// there and the jobs runner reading them back.
pub fn walkthrough(server: &mut dyn StoreServer) {
    let name = server.name();
    let store = Reader::open(name, &server.config());
    let mut c = Cluster::new("");
    c.start_master();
    c.start_accepted_with(&["minion1"], &server.config());

    // Minion side: the minion writes its own return, as Salt's minion does.
    let r = c.salt(&["-v", "minion1", "test.ping", "--return", name]);
    assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    let jid = jid_of_verbose(&r);
    let got = store.wait_job(&jid, 1, Duration::from_secs(20));
    assert_eq!(got.get("minion1").map(|r| &r["return"]), Some(&Value::Bool(true)), "{name}: {got:?}");

    // A failing command, quotes, an emoji and the store's special characters.
    let nasty = "smile 😀 '; DROP TABLE jids; -- a.b $set x/y k:v \"q\"";
    let r = c.salt(&["-v", "minion1", "test.echo", nasty, "--return", name]);
    let jid_echo = jid_of_verbose(&r);
    let r = c.salt(&["-v", "minion1", "cmd.run", "echo \"it's\"; exit 3", "--return", name]);
    let jid_fail = jid_of_verbose(&r);
    let log = || {
        let spool = c.minion_cachedir("minion1").join("spool");
        let mut out = c.minion_log("minion1").lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).collect::<Vec<_>>().join("\n");
        for dir in std::fs::read_dir(&spool).into_iter().flatten().flatten() {
            for f in std::fs::read_dir(dir.path()).into_iter().flatten().flatten() {
                let text = std::fs::read_to_string(f.path()).unwrap_or_default();
                out.push_str(&format!("\n{}: {}", f.path().display(), &text[..text.len().min(2000)]));
            }
        }
        out
    };
    let got = store.wait_job(&jid_echo, 1, Duration::from_secs(20));
    assert_eq!(got.get("minion1").map(|r| &r["return"]), Some(&Value::from(nasty)), "{name}: {got:?}\n{}", log());
    let got = store.wait_job(&jid_fail, 1, Duration::from_secs(20));
    assert_eq!(got.get("minion1").map(|r| &r["return"]), Some(&Value::from("it's")), "{name}: {got:?}\n{}", log());

    // Master side: every job and return in the store; the jobs runner reads them there.
    let events = if salt_returners::entry(name).unwrap().calls.contains(&salt_returners::Capability::EventReturn) {
        format!("event_return: {name}\n")
    } else {
        String::new()
    };
    std::fs::create_dir_all(c.etc().join("master.d")).unwrap();
    std::fs::write(c.etc().join("master.d/jobcache.conf"), format!("master_job_cache: {name}\n{events}{}", server.config())).unwrap();
    c.stop_master();
    c.start_master();
    c.wait_connected("minion1");
    let r = c.salt(&["-v", "minion1", "cmd.run", "echo from-the-store"]);
    assert_eq!(r.code, 0, "{name}: {}", r.stderr);
    let jid = jid_of_verbose(&r);
    c.wait_lookup(&jid, "minion1:\n    from-the-store\n", Duration::from_secs(20));
    let listed = c.salt_run(&["jobs.list_jobs", "--out", "json"]);
    let listed: Value = serde_json::from_str(&listed.stdout).unwrap_or_else(|e| panic!("{name}: {e}: {}", listed.stdout));
    assert_eq!(listed[&jid]["Function"], "cmd.run", "{name}: {listed}");
    let job = c.salt_run(&["jobs.list_job", &jid, "--out", "json"]);
    let job: Value = serde_json::from_str(&job.stdout).unwrap_or_else(|e| panic!("{name}: {e}: {}", job.stdout));
    assert_eq!(job["Result"]["minion1"]["return"], "from-the-store", "{name}: {job}");
    assert_eq!(job["Arguments"], serde_json::json!(["echo from-the-store"]), "{name}: {job}");
    let load = store.get_load(&jid).expect("the load is stored");
    assert_eq!(load["fun"], "cmd.run", "{name}: {load:?}");
}

/// The store's server goes away a third of the way into 1,000 publishes to 10 minions (10,000
/// returns, from 4 CLIs at once) and comes back once the master has logged the outage: the CLI
/// answers throughout, every return arrives exactly once, and the log says so once.
pub fn outage_during_a_burst(server: &mut dyn StoreServer) {
    let _heavy = heavy();
    let name = server.name();
    let store = Reader::open(name, &server.config());
    let mut c = Cluster::new(&format!("master_job_cache: {name}\n{}", server.config()));
    c.start_master();
    let ids: Vec<String> = (1..=10).map(|i| format!("m{i}")).collect();
    for id in &ids {
        // Jobs as tasks: the burst measures the store path, not process start-up.
        c.start_minion(id, "multiprocessing: False\n");
    }
    wait_for(|| c.salt_key(&["-l", "un"]).stdout.lines().count() >= 11, Duration::from_secs(30), "10 pending keys");
    c.salt_key(&["-A", "-y"]);
    for id in &ids {
        c.wait_connected(id);
    }

    let burst = 1000;
    let r = c.salt(&["*", "test.ping", "--async"]);
    let first_jid = r.stdout.trim().trim_start_matches("Executed command with job ID: ").to_string();
    let jids = Mutex::new(vec![first_jid.clone()]);
    let sent = AtomicUsize::new(1);
    let slowest = Mutex::new(Duration::ZERO);
    let server = Mutex::new(server);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| loop {
                let i = sent.fetch_add(1, Ordering::SeqCst);
                if i >= burst {
                    break;
                }
                if i == burst / 3 {
                    server.lock().unwrap().stop();
                }
                let t = Instant::now();
                let r = c.salt(&["*", "test.ping", "--async"]);
                assert_eq!(r.code, 0, "{name}: the CLI answers during the outage: {}", r.stderr);
                jids.lock().unwrap().push(r.stdout.trim().trim_start_matches("Executed command with job ID: ").to_string());
                let mut slowest = slowest.lock().unwrap();
                *slowest = (*slowest).max(t.elapsed());
            });
        }
    });
    let server = server.into_inner().unwrap();
    // A synchronous command answers too, from the event bus.
    let r = c.salt(&["*", "test.ping", "--out", "txt", "--static"]);
    assert_eq!(r.stdout.lines().count(), 10, "{name}: {}", r.stderr);
    let slowest = *slowest.lock().unwrap();
    assert!(slowest < Duration::from_secs(5), "{name}: a publish took {slowest:?} during the outage");
    // Back once the master has logged the outage and its spool has retried a while.
    wait_for(|| c.master_log().contains("is unavailable"), Duration::from_secs(60), "the outage in the master's log");
    std::thread::sleep(Duration::from_secs(2));
    server.start();

    let jids = jids.into_inner().unwrap();
    assert_eq!(jids.len(), burst);
    let want: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    for jid in &jids {
        let got = store.wait_job(jid, ids.len(), deadline.saturating_duration_since(Instant::now()));
        let got: BTreeSet<&str> = got.keys().map(String::as_str).collect();
        assert_eq!(got, want, "{name}: every return of {jid} arrives");
    }
    if let Some((stored, duplicates)) = server.raw_count(&first_jid) {
        // The burst and the synchronous ping.
        assert_eq!((stored, duplicates), ((burst + 1) * ids.len(), 0), "{name}: exactly once, counted in the server");
    }
    // One line per outage in the master's log, not one per record.
    let log = c.master_log();
    assert_eq!(log.matches("is unavailable").count(), 1, "{name}: {}", last_lines(&log, 40));
}

/// The store's server is down when the master starts: one clear line names it then, the master
/// starts and answers, and what it spools meanwhile arrives once the server is back.
pub fn unreachable_at_start(server: &mut dyn StoreServer) {
    let name = server.name();
    let store = Reader::open(name, &server.config());
    server.stop();
    let mut c = Cluster::new(&format!("master_job_cache: {name}\n{}", server.config()));
    c.start_master();
    let check = format!("returner '{name}' for master_job_cache:");
    wait_for(|| c.master_log().contains(&check), Duration::from_secs(30), "the start-up check");
    let log = c.master_log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&check)).collect();
    assert_eq!(lines.len(), 1, "{name}: {}", last_lines(&log, 20));
    assert!(lines[0].contains("[ERROR") && lines[0].contains("spool"), "{name}: {}", lines[0]);
    c.start_accepted(&["minion1"]);
    let r = c.salt(&["-v", "minion1", "test.ping"]);
    assert!(r.stdout.ends_with("minion1:\n    True\n"), "{name}: {}{}", r.stdout, r.stderr);
    let jid = jid_of_verbose(&r);
    server.start();
    let got = store.wait_job(&jid, 1, Duration::from_secs(60));
    assert_eq!(got.get("minion1").map(|r| &r["return"]), Some(&Value::Bool(true)), "{name}: the spooled return arrives");
}
