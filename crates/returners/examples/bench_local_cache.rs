//! Benchmark of the `local_cache` job cache.
//!
//! `cargo run --release -p salt-returners --example bench_local_cache -- [jobs] [returns] [--keep DIR]`
//!
//! Fills a fresh cache (in `$BENCH_DIR`, default a temp dir) with `jobs` jobs (default
//! 1,000,000; each with its publish load, one expected minion and one return), written through
//! the store's own batch calls (`LocalCache::save_loads` and `returner_batch`, 5,000 per
//! transaction), plus one job with `returns` returns (default 10,000). Then it times the reads
//! `jobs.list_jobs` and `jobs.lookup_jid` make (median of several runs) and the write rate of
//! `returner_batch`, and prints a Markdown report.
//!
//! `--keep DIR` fills `DIR/job_cache.sqlite` instead (DIR is a master's `cachedir`; an existing
//! cache there is refused) and leaves it in place for end-to-end runs (`bench/jobs.sh`). The
//! write-rate part is then skipped, so the kept cache holds exactly `jobs` + 1 jobs; the jid
//! of the big job is printed on stderr as `big jid: <jid>`.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use salt_returners::local_cache::{LocalCache, NewJob};
use salt_returners::{JobCache, JobQuery, Load, Sink};
use serde_json::json;

const FILL_BATCH: usize = 5_000;
const RUNS: usize = 9;

fn jid_of(n: u64) -> String {
    let base = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    salt_proto::jid::jid_at(base + chrono::Duration::milliseconds(n as i64 * 7))
}

/// A function mix like a busy master's: mostly pings and commands, find_job polls, and one
/// rare function (1 job in 100,000) to show a sparse filter.
fn fun_of(n: u64) -> &'static str {
    if n % 100_000 == 50_000 {
        return "pkg.install";
    }
    match n % 10 {
        0..=4 => "test.ping",
        5 | 6 => "cmd.run",
        7 => "state.apply",
        _ => "saltutil.find_job",
    }
}

fn publish(jid: &str, fun: &str) -> Load {
    let v = json!({"cmd": "publish", "tgt": "web*", "fun": fun, "arg": ["uptime"], "tgt_type": "glob", "ret": "",
                   "jid": jid, "user": "root",
                   "kwargs": {"show_timeout": true, "show_jid": false, "delimiter": ":", "gather_job_timeout": 10}});
    v.as_object().unwrap().clone()
}

fn ret(jid: &str, id: &str, fun: &str) -> Load {
    let v = json!({"cmd": "_return", "id": id, "jid": jid, "fun": fun, "fun_args": ["uptime"], "user": "root",
                   "return": " 10:01:02 up 12 days,  3:04,  1 user,  load average: 0.00, 0.01, 0.05",
                   "retcode": 0, "success": true, "_stamp": "2026-01-01T00:00:00.000000"});
    v.as_object().unwrap().clone()
}

/// Median wall time of `RUNS` runs of `f`, and what the last run returned.
async fn time<T, F, Fut>(mut f: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut times = Vec::with_capacity(RUNS);
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    (times[RUNS / 2], last.unwrap())
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// `[jobs] [returns] [--keep DIR]`, numbers in that order, the flag anywhere.
fn parse_args(mut argv: impl Iterator<Item = String>) -> (Vec<u64>, Option<std::path::PathBuf>) {
    let (mut numbers, mut keep) = (Vec::new(), None);
    while let Some(a) = argv.next() {
        if a == "--keep" {
            keep = Some(std::path::PathBuf::from(argv.next().expect("--keep needs a directory")));
        } else {
            numbers.push(a.parse().expect("usage: [jobs] [returns] [--keep DIR]"));
        }
    }
    (numbers, keep)
}

#[tokio::main]
async fn main() {
    let (args, keep) = parse_args(std::env::args().skip(1));
    let jobs = args.first().copied().unwrap_or(1_000_000);
    let big_returns = args.get(1).copied().unwrap_or(10_000);
    // Without --keep the cache lives in a temp dir that is removed at exit.
    let tmp;
    let dir = match &keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap();
            let db = dir.join(salt_returners::local_cache::schema::FILE_NAME);
            assert!(!db.exists(), "{} exists: --keep fills a new cache only", db.display());
            dir.clone()
        }
        None => {
            tmp = tempfile::Builder::new()
                .prefix("bench-local-cache")
                .tempdir_in(std::env::var_os("BENCH_DIR").map(std::path::PathBuf::from).unwrap_or_else(std::env::temp_dir))
                .unwrap();
            tmp.path().to_path_buf()
        }
    };
    let cache = LocalCache::open(&dir).await.unwrap();

    // Fill.
    let t = Instant::now();
    let mut n = 0;
    while n < jobs {
        let end = (n + FILL_BATCH as u64).min(jobs);
        let jids: Vec<String> = (n..end).map(jid_of).collect();
        let loads: Vec<Load> = (n..end).zip(&jids).map(|(i, j)| publish(j, fun_of(i))).collect();
        let minions: Vec<Vec<String>> = (n..end).map(|i| vec![format!("web{}", i % 1000)]).collect();
        let batch: Vec<NewJob> =
            jids.iter().zip(&loads).zip(&minions).map(|((jid, load), m)| NewJob { jid, load, minions: Some(m) }).collect();
        cache.save_loads(&batch).await.unwrap();
        let rets: Vec<Load> = (n..end).zip(&jids).map(|(i, j)| ret(j, &format!("web{}", i % 1000), fun_of(i))).collect();
        cache.returner_batch(&rets).await.unwrap();
        n = end;
        if n % 100_000 == 0 {
            eprintln!("{n} jobs in {:.0?}", t.elapsed());
        }
    }
    let fill_jobs = t.elapsed();

    let big = jid_of(jobs + 1);
    eprintln!("big jid: {big}");
    let ids: Vec<String> = (0..big_returns).map(|i| format!("minion{i:05}")).collect();
    cache.save_load(&big, &publish(&big, "cmd.run"), Some(&ids)).await.unwrap();
    let t = Instant::now();
    for chunk in ids.chunks(1000) {
        let rets: Vec<Load> = chunk.iter().map(|id| ret(&big, id, "cmd.run")).collect();
        cache.returner_batch(&rets).await.unwrap();
    }
    let fill_big = t.elapsed();
    let size = std::fs::metadata(cache.path()).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(cache.path().with_extension("sqlite-wal")).map(|m| m.len()).unwrap_or(0);

    // Reads.
    let first_page = JobQuery { limit: Some(100), ..Default::default() };
    let (t_first, page) = time(|| cache.get_jids(&first_page)).await;
    assert_eq!(page.unwrap().len(), 100);
    let filtered = JobQuery { functions: vec!["cmd.*".into()], limit: Some(100), ..Default::default() };
    let (t_filtered, page) = time(|| cache.get_jids(&filtered)).await;
    assert_eq!(page.unwrap().len(), 100);
    let rare = JobQuery { functions: vec!["pkg.*".into()], limit: Some(100), ..Default::default() };
    let (t_rare, page) = time(|| cache.get_jids(&rare)).await;
    let rare_found = page.unwrap().len();
    let no_find_job = JobQuery { exclude_find_job: true, targets: vec!["web*".into()], limit: Some(100), ..Default::default() };
    let (t_no_find_job, page) = time(|| cache.get_jids(&no_find_job)).await;
    assert_eq!(page.unwrap().len(), 100);
    let (t_get_jid, got) = time(|| cache.get_jid(&big)).await;
    assert_eq!(got.unwrap().len() as u64, big_returns);
    let (t_get_load, load) = time(|| cache.get_load(&big)).await;
    assert_eq!(load.unwrap().unwrap()["Minions"].as_array().map(Vec::len), Some(big_returns as usize));
    let old = jid_of(jobs / 2);
    let (t_get_load_small, load) = time(|| cache.get_load(&old)).await;
    assert!(load.unwrap().is_some());
    let (t_get_jid_small, got) = time(|| cache.get_jid(&old)).await;
    assert_eq!(got.unwrap().len(), 1);

    // Write rate of returner_batch into new jobs (not into a kept cache: it stays as filled).
    let mut rates = Vec::new();
    if keep.is_none() {
        for batch in [100usize, 1000] {
            let total = 20_000usize;
            let jid = jid_of(jobs + 10 + batch as u64);
            cache.prep_jid(false, Some(&jid)).await.unwrap();
            let rets: Vec<Load> = (0..total).map(|i| ret(&jid, &format!("w{batch}-{i:06}"), "test.ping")).collect();
            let t = Instant::now();
            for chunk in rets.chunks(batch) {
                cache.returner_batch(chunk).await.unwrap();
            }
            rates.push((batch, total as f64 / t.elapsed().as_secs_f64()));
        }
    }
    cache.close().await;
    if let Some(dir) = &keep {
        eprintln!("kept {} (big job {big})", dir.join(salt_returners::local_cache::schema::FILE_NAME).display());
    }

    let keep_arg = keep.as_ref().map(|d| format!(" --keep {}", d.display())).unwrap_or_default();
    let cmd = format!("cargo run --release -p salt-returners --example bench_local_cache -- {jobs} {big_returns}{keep_arg}");
    println!("## local_cache (SQLite, WAL, synchronous=NORMAL)\n");
    println!("Command: `{cmd}`\n");
    println!(
        "Cache: {jobs} jobs (publish load, 1 expected minion, 1 return each) + 1 job with {big_returns} returns; \
         file {:.0} MiB. Medians of {RUNS} runs.\n",
        size as f64 / (1024.0 * 1024.0)
    );
    println!("| operation | time |\n|---|---|");
    println!(
        "| fill: {jobs} jobs via `save_loads` + `returner_batch` (5,000 per transaction) | {:.1} s ({:.0} jobs/s) |",
        fill_jobs.as_secs_f64(),
        jobs as f64 / fill_jobs.as_secs_f64()
    );
    println!("| fill: {big_returns} returns of one job (`returner_batch`, 1,000 per call) | {} |", ms(fill_big));
    println!("| `get_jids` first page (limit 100, newest first) | {} |", ms(t_first));
    println!("| `get_jids` functions=[\"cmd.*\"], limit 100 | {} |", ms(t_filtered));
    println!("| `get_jids` functions=[\"pkg.*\"] (rare: {rare_found} matches in the cache), limit 100 | {} |", ms(t_rare));
    println!("| `get_jids` exclude_find_job + targets=[\"web*\"], limit 100 | {} |", ms(t_no_find_job));
    println!("| `get_jid` of the {big_returns}-return job | {} |", ms(t_get_jid));
    println!("| `get_load` of that job ({big_returns} minions) | {} |", ms(t_get_load));
    println!("| `get_load` of an ordinary job | {} |", ms(t_get_load_small));
    println!("| `get_jid` of an ordinary job | {} |", ms(t_get_jid_small));
    for (batch, rate) in rates {
        println!("| `returner_batch` write rate, batches of {batch} | {rate:.0} returns/s |");
    }
    if keep.is_some() {
        println!("| `returner_batch` write rate | not measured with --keep |");
    }
}
