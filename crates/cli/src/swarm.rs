//! `salt-swarm`: many real minion sessions in one process, to test and measure a master at the
//! size of a fleet (Salt's `tests/minionswarm.py` starts a Python process per minion; this
//! holds tens of thousands on one machine).
//!
//! Each minion of the swarm is a [`salt_minion::Minion`] with its own id, key pair, TLS session,
//! authentication, publish verification, replay window and outbox, running the same connection
//! code as `salt-minion`. What they share is what a host shares: the config, the function
//! table and the host's grains (each with its own `id`). Jobs run in-process (Salt's
//! `multiprocessing: False`): a real minion would fork each job. Returns wait for the master's
//! acknowledgement in memory: a real minion also keeps them on disk, to survive its restart.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use salt_config::Role;
use salt_minion::{Minion, Shared};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(
    name = "salt-swarm",
    disable_version_flag = true,
    about = "Run many minions in one process, to test a master at scale (a testing tool).",
    long_about = "Run many minions in one process, to test a master at scale (a testing tool).\n\n\
        Each minion has its own key pair, TLS session, authentication, publish checks and outbox, \
        and runs the same connection code as salt-minion. Its id is <name>-<n>, n from 0. Keys and \
        caches live in <root_dir>/swarm/<id>/ and are kept for the next start, so keys the master \
        accepted stay valid. Jobs run inside this process (multiprocessing: False), where a real \
        minion would fork one process per job; returns wait for the master's acknowledgement in \
        memory, where a real minion also keeps them on disk. SIGTERM or Ctrl-C stops every session \
        and exits 0."
)]
struct Flags {
    /// The minion configuration directory the swarm's minions share (master, master_port, root_dir, ...).
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// How many minions to run.
    #[arg(short = 'm', long = "minions", default_value_t = 5)]
    minions: usize,
    /// The prefix of the minion ids.
    #[arg(long = "name", default_value = "swarm")]
    name: String,
    /// The number of the first minion (to split one fleet between several swarm processes).
    #[arg(long = "first", default_value_t = 0)]
    first: usize,
    /// Give each minion an `os` grain from a fixed list (Salt's minionswarm `--rand-os`), the
    /// same for the same id on every start.
    #[arg(long = "rand-os")]
    rand_os: bool,
    /// Console logging level: all, garbage, trace, debug, profile, info, warning, error, critical, quiet.
    #[arg(short = 'l', long = "log-level", default_value = "warning")]
    log_level: String,
    /// Show the program's version number and exit.
    #[arg(long = "version")]
    version: bool,
}

/// Descriptors kept for the swarm's own files (logs, keys being read, spools).
const DESCRIPTORS_KEPT: u64 = 64;

/// The operating systems `--rand-os` draws from (Salt's minionswarm list).
const OSES: [&str; 8] = ["Arch", "Ubuntu", "Debian", "CentOS", "Fedora", "Gentoo", "AIX", "Solaris"];

pub fn main(argv: Vec<String>) -> i32 {
    let flags: Flags = match crate::common::parse_or_version("salt-swarm", argv, |f: &Flags| f.version) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if let Err(e) = salt_proto::id::validate_minion_id(&format!("{}-{}", flags.name, flags.first + flags.minions)) {
        eprintln!("salt-swarm: error: --name {:?} does not make valid minion ids: {e}", flags.name);
        return 2;
    }
    let mut config = match crate::common::load_config("salt-swarm", Role::Minion, &flags.config_dir) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The console at --log-level; the config's log_file at its log_level_logfile, where a
    // minion's log would say what happened to it.
    let file_level_name = config.str("log_level_logfile").unwrap_or("warning").to_string();
    let (console, file_level) = match (crate::logging::level(&flags.log_level), crate::logging::level(&file_level_name)) {
        (Ok(c), Ok(f)) => (c, f),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("salt-swarm: error: {e}");
            return 2;
        }
    };
    crate::logging::init(console, config.path("log_file").as_deref().map(|p| (p, file_level)));
    // One process for the whole swarm: jobs run as tasks.
    config.set("multiprocessing", Value::Bool(false));
    // One descriptor per minion, and a few for the swarm itself.
    let needed = flags.minions as u64 + DESCRIPTORS_KEPT;
    let open_files = salt_master::raise_open_files_limit(needed, &format!("salt-swarm -m {}", flags.minions));
    if open_files < needed {
        eprintln!(
            "salt-swarm: error: {} minions need about {needed} open files, and this process may have {open_files}; \
             raise the hard limit (ulimit -Hn) or split the fleet over several swarms with --first",
            flags.minions
        );
        return 2;
    }
    let runtime = match crate::common::runtime("salt-swarm", true) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(run(flags, config)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("salt-swarm: {e:#}");
            1
        }
    }
}

async fn run(flags: Flags, config: salt_config::Config) -> anyhow::Result<()> {
    let root = config.path("root_dir").unwrap_or_else(|| PathBuf::from("/")).join("swarm");
    salt_proto::private::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let mut shared = Shared::new(config);
    shared.returns_on_disk = false;
    let shared = Arc::new(shared);
    let first_id = format!("{}-{}", flags.name, flags.first);
    let host_grains = Arc::new(salt_modules::grains::collect(&first_id, &shared.configured_grains()));

    // Keys are made (the first time) and read on the blocking pool, a slice per core.
    let ids: Vec<String> = (flags.first..flags.first + flags.minions).map(|n| format!("{}-{n}", flags.name)).collect();
    let started = std::time::Instant::now();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let mut opening = Vec::new();
    for slice in ids.chunks(ids.len().div_ceil(cores).max(1)) {
        let (slice, shared, host_grains, root) = (slice.to_vec(), shared.clone(), host_grains.clone(), root.clone());
        let rand_os = flags.rand_os;
        opening.push(tokio::task::spawn_blocking(move || {
            slice
                .into_iter()
                .map(|id| {
                    let mut grains = (*host_grains).clone();
                    grains.insert("id".into(), id.clone().into());
                    if rand_os {
                        grains.insert("os".into(), OSES[stable_hash(&id) % OSES.len()].into());
                    }
                    let dir = root.join(&id);
                    Minion::open(&shared, id.clone(), dir.join("pki"), dir.join("cache"), Arc::new(grains))
                        .with_context(|| format!("cannot start minion {id}"))
                })
                .collect::<anyhow::Result<Vec<Minion>>>()
        }));
    }
    let mut minions = Vec::with_capacity(ids.len());
    for slice in opening {
        minions.extend(slice.await??);
    }
    let total = minions.len();
    println!("salt-swarm: {total} minions ready in {:.1} s; connecting to the master", started.elapsed().as_secs_f64());

    let sessions: Vec<_> = minions
        .into_iter()
        .map(|m| {
            tokio::spawn(async move {
                let id = m.id.clone();
                if let Err(e) = salt_minion::connection::run(Arc::new(m)).await {
                    tracing::error!("minion {id} stopped: {e:#}");
                }
            })
        })
        .collect();

    // Report the sessions up as the count changes, at most once a second.
    let mut shutdown = std::pin::pin!(crate::daemon::shutdown_signal());
    let mut shown = usize::MAX;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                let up = shared.sessions_up.load(Ordering::Relaxed);
                if up != shown {
                    println!("salt-swarm: {up}/{total} sessions up");
                    shown = up;
                }
            }
        }
    }
    for session in &sessions {
        session.abort();
    }
    for session in sessions {
        let _ = session.await;
    }
    println!("salt-swarm: stopped {total} minions");
    Ok(())
}

/// FNV-1a: the same number for the same id on every start and every build.
fn stable_hash(id: &str) -> usize {
    id.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)) as usize
}
