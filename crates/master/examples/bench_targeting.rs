//! Targeting over N minions (issue 10): how long the master takes to resolve `-G 'os:Debian'`
//! and a compound target the way a publish does it, how long a master start takes to load N
//! minions' cached grains (`cachedir/minions/<id>/data.p`), and the master's RSS holding them.
//!
//! ```text
//! cargo run --release -p salt-master --example bench_targeting -- N DIR [RUNS]
//! ```
//!
//! The first run for a DIR stores N grain maps through the master's own `store_grains` (what it
//! does when a minion reports its grains) and N accepted keys; later runs reuse them. Each map
//! is what `grains.items` gives on this machine (salt-modules' `collect`), varied per minion:
//! id, host names, addresses, machine id, and one of four operating systems (half Debian).
//! Each target is also resolved as the master did before it indexed grains (the matcher asked
//! about every minion's whole map), which must select the same ids.
//! Prints markdown rows: measure, mean / median / min / max ms, runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use salt_config::{Config, Role};
use salt_master::Master;
use salt_pki::{KeyPair, KeyState, KeyStore};
use salt_targeting::{Matcher, TargetType};
use serde_json::{json, Map, Value};

/// The id of minion `n` (from 1), as `salt-pki`'s `lay_out_keys` example names them.
fn minion_id(n: usize) -> String {
    const ROLES: [&str; 4] = ["web", "db", "app", "cache"];
    format!("{}-{n:05}", ROLES[n % ROLES.len()])
}

/// (os, os_family, osrelease, oscodename, osfullname): half the fleet Debian.
const SYSTEMS: [(&str, &str, &str, &str, &str); 4] = [
    ("Debian", "Debian", "12", "bookworm", "Debian GNU/Linux"),
    ("Ubuntu", "Debian", "22.04", "jammy", "Ubuntu"),
    ("Debian", "Debian", "11", "bullseye", "Debian GNU/Linux"),
    ("Rocky", "RedHat", "9.3", "Blue Onyx", "Rocky Linux"),
];

fn grains_of(n: usize, base: &Map<String, Value>) -> Map<String, Value> {
    let id = minion_id(n);
    let (os, family, release, codename, fullname) = SYSTEMS[(n / 4) % SYSTEMS.len()];
    let major: i64 = release.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
    let mut g = base.clone();
    for (k, v) in [
        ("id", json!(id)),
        ("host", json!(id)),
        ("nodename", json!(id)),
        ("localhost", json!(id)),
        ("fqdn", json!(format!("{id}.example.com"))),
        ("domain", json!("example.com")),
        ("os", json!(os)),
        ("os_family", json!(family)),
        ("osrelease", json!(release)),
        ("osmajorrelease", json!(major)),
        ("oscodename", json!(codename)),
        ("osfullname", json!(fullname)),
        ("osfinger", json!(format!("{fullname}-{major}"))),
        ("ipv4", json!(["127.0.0.1", ip])),
        ("fqdn_ip4", json!([ip])),
        ("ip4_interfaces", json!({"lo": ["127.0.0.1"], "eth0": [ip]})),
        ("machine_id", json!(format!("{n:032x}"))),
        ("server_id", json!(n as u64 * 2_654_435_761 % 2_147_483_647)),
    ] {
        g.insert(k.to_string(), v);
    }
    g
}

fn config(dir: &Path) -> Config {
    let yaml = format!(
        "id: bench_master\nroot_dir: {d}\npki_dir: {d}/pki\ncachedir: {d}/cache\nsock_dir: {d}/run\njob_cache: False\n",
        d = dir.display()
    );
    Config::from_yaml_str(Role::Master, &yaml, "bench").expect("a valid config")
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok()).unwrap_or(0)
}

fn row(label: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    let median = if ms.len() % 2 == 1 { ms[ms.len() / 2] } else { (ms[ms.len() / 2 - 1] + ms[ms.len() / 2]) / 2.0 };
    println!("| {label} | {mean:.1} | {median:.1} | {:.1} | {:.1} | {} |", ms[0], ms[ms.len() - 1], ms.len());
}

async fn fill(dir: &Path, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let master = Master::new(config(dir)).await?;
    let base = salt_modules::grains::collect("template", &Map::new());
    let store = KeyStore::open(&dir.join("pki"))?;
    let pem = KeyPair::generate()?.public_pem().to_string();
    for i in 1..=n {
        let id = minion_id(i);
        std::fs::write(store.key_path(KeyState::Accepted, &id)?, &pem)?;
        master.store_grains(&id, grains_of(i, &base));
    }
    std::fs::write(dir.join("filled"), n.to_string())?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_targeting N DIR [RUNS]";
    let n: usize = args.first().and_then(|a| a.parse().ok()).ok_or(usage)?;
    let dir = std::path::absolute(PathBuf::from(args.get(1).ok_or(usage)?))?;
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    if std::fs::read_to_string(dir.join("filled")).ok().as_deref() != Some(n.to_string().as_str()) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        fill(&dir, n).await?;
        // Measured in a fresh process: this one's allocator keeps what the filling used.
        let status = std::process::Command::new(std::env::current_exe()?).args(std::env::args().skip(1)).status()?;
        std::process::exit(status.code().unwrap_or(1));
    }

    // A master start: the first one's RSS growth is what N minions' grains cost in memory.
    let mut starts = Vec::new();
    let before = rss_kib();
    let start = Instant::now();
    let master = Master::new(config(&dir)).await?;
    starts.push(start.elapsed());
    let held_mib = (rss_kib().saturating_sub(before)) as f64 / 1024.0;
    for _ in 1..3 {
        let start = Instant::now();
        drop(Master::new(config(&dir)).await?);
        starts.push(start.elapsed());
    }
    row(&format!("master start, loading {n} minions' data.p"), &mut starts);

    let accepted_ids = master.accepted_ids()?;
    // What a publish pays on top when the key directory changed within the last second (the
    // master keeps the listing only while the directory's mtime is older than that).
    let mut samples = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let listed = master.keys().try_list(KeyState::Accepted)?;
        samples.push(start.elapsed());
        assert_eq!(listed.len(), accepted_ids.len());
    }
    row(&format!("listing {n} accepted keys, as a publish does after a key changed"), &mut samples);
    for (label, tgt, tgt_type) in [
        ("`-G 'os:Debian'`", "os:Debian", TargetType::Grain),
        ("`-C 'G@os:Debian and web* or L@a,b'`", "G@os:Debian and web* or L@a,b", TargetType::Compound),
    ] {
        let mut samples = Vec::new();
        let mut matched = Vec::new();
        for _ in 0..=runs {
            let start = Instant::now();
            // As publish() does: parse the target, list the accepted keys, match each.
            let matcher = Matcher::new(&json!(tgt), tgt_type, ":")?;
            let accepted = master.accepted_ids()?;
            matched = master.minions_matching(&matcher, &accepted);
            samples.push(start.elapsed());
        }
        // The first after the start also finds each accepted id's grains and, for the first
        // target reading `os`, makes its column (again after the listing changes).
        row(&format!("{label} over {n} minions, the first after the master starts"), &mut samples[..1]);
        row(&format!("{label} over {n} minions ({} matched)", matched.len()), &mut samples[1..]);
        // The way the master matched before: each minion's whole grains map asked of the
        // matcher (the maps copied out first, untimed), which must give the same answer.
        let maps: HashMap<String, Map<String, Value>> = accepted_ids.iter().map(|id| (id.clone(), master.grains_of(id))).collect();
        let none = Map::new();
        let mut samples = Vec::new();
        for _ in 0..runs {
            let start = Instant::now();
            let matcher = Matcher::new(&json!(tgt), tgt_type, ":")?;
            let accepted = master.accepted_ids()?;
            let walked: Vec<String> =
                accepted.iter().filter(|id| matcher.matches(id, maps.get(id.as_str()).unwrap_or(&none))).cloned().collect();
            samples.push(start.elapsed());
            assert_eq!(walked, matched, "{label}: the master's answer differs from a walk over every minion's grains");
        }
        row(&format!("{label} over {n} minions, a walk over every minion's map (before)"), &mut samples);
    }
    println!(
        "| master RSS growth holding {n} minions' grains: {held_mib:.1} MiB ({:.1} KiB a minion) | | | | | |",
        held_mib * 1024.0 / n as f64
    );
    Ok(())
}
