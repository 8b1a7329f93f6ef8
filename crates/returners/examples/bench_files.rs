//! `rawfile_json` throughput: returns written per second, 1,000 returns of one job arriving
//! together, into a file on the temp directory's disk.
//!
//! `cargo run --release -p salt-returners --example bench_files -- [returns] [runs]`
//!
//! Four ways, each the median of `runs` runs (default 5), each run on a fresh file, its line
//! count checked after it:
//! - **spool → store**: what a minion's `--return rawfile_json` does: one `push_nowait` per
//!   return, then `flush` (on the spool's disk, fsynced, written, synced);
//! - **store**: `returner_batch` of all of them (one `flock`, one write, one `fdatasync`);
//! - **raw writer**: the same bytes pre-serialised, one `write` and one `fdatasync` on a file
//!   opened once: the ceiling for the store's own policy;
//! - **Salt's way**: Salt's `returner(ret)` emulated in Rust, per return: open for append,
//!   `flock`, `json.dumps` + write, close (no sync, as Salt).
//!
//! `BENCH_DIR` picks the directory (default: the system's temp dir).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use salt_returners::rawfile_json::{RawfileJson, RawfileJsonConfig};
use salt_returners::spool::{Record, Spool};
use salt_returners::{Load, Sink, Store};
use serde_json::json;

/// A return as a minion hands it to its returners (about 300 bytes).
fn minion_return(jid: &str, n: usize) -> Load {
    let v = json!({"success": true,
        "return": "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\ntmp\nusr\nvar",
        "retcode": 0, "jid": jid, "fun": "cmd.run", "fun_args": ["ls /"], "user": "root", "id": format!("minion{n:04}")});
    v.as_object().unwrap().clone()
}

fn jid_for(run: usize) -> String {
    salt_proto::jid::jid_at(chrono::Utc::now() + chrono::Duration::milliseconds(run as i64 * 7))
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let returns: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let base = std::env::var_os("BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let (mut spooled, mut stored, mut raw, mut salt) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        let rets: Vec<Load> = (0..returns).map(|n| minion_return(&jid_for(run), n)).collect();
        let rate = |t: Duration| returns as f64 / t.as_secs_f64();

        // spool -> store
        let path = dir.path().join(format!("spool-{run}"));
        let store = Arc::new(RawfileJson::open_with(RawfileJsonConfig { filename: path.clone() }));
        let spool = Spool::open(&dir.path().join(format!("spool-dir-{run}")), Store::Sink(store)).unwrap();
        let t = Instant::now();
        for ret in &rets {
            spool.push_nowait(vec![Record::Return { ret: ret.clone() }]);
        }
        assert!(spool.flush(Duration::from_secs(600)).await, "the spool did not drain");
        spooled.push(rate(t.elapsed()));
        assert_eq!(lines(&path), returns);

        // store
        let path = dir.path().join(format!("store-{run}"));
        let store = RawfileJson::open_with(RawfileJsonConfig { filename: path.clone() });
        let t = Instant::now();
        assert!(store.returner_batch(&rets).await.unwrap().is_empty());
        stored.push(rate(t.elapsed()));
        assert_eq!(lines(&path), returns);

        // raw writer: the same bytes, one write, one fdatasync
        let path = dir.path().join(format!("raw-{run}"));
        let text: String = rets.iter().map(|r| salt_returners::json::dumps_map(r) + "\n").collect();
        let t = Instant::now();
        let mut file = OpenOptions::new().append(true).create(true).open(&path).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file.sync_data().unwrap();
        raw.push(rate(t.elapsed()));
        assert_eq!(lines(&path), returns);

        // Salt's way: open, flock, dumps, write, close, per return
        let path = dir.path().join(format!("salt-{run}"));
        let t = Instant::now();
        for ret in &rets {
            let mut file = OpenOptions::new().append(true).create(true).open(&path).unwrap();
            file.lock().unwrap();
            let line = salt_returners::json::dumps_map(ret) + "\n";
            file.write_all(line.as_bytes()).unwrap();
        }
        salt.push(rate(t.elapsed()));
        assert_eq!(lines(&path), returns);
    }
    let (raw_m, s) = (median(raw), |v: f64| format!("{v:>10.0}"));
    println!("rawfile_json, {returns} returns arriving together, median of {runs} runs, in {} (returns/s)", base.display());
    println!("| way | returns/s | ratio to the raw writer |");
    println!("|---|---:|---:|");
    for (name, v) in [
        ("spool -> store", median(spooled)),
        ("store", median(stored)),
        ("raw writer (one write + fdatasync)", raw_m),
        ("Salt's way (no sync)", median(salt)),
    ] {
        println!("| {name} | {} | {:.2} |", s(v), v / raw_m);
    }
}
