//! The salt-minion: it dials out to the master and keeps one TLS connection that carries
//! publishes down and returns up ([`connection`]); each publish becomes a job ([`jobs`]),
//! by default in a process of its own ([`job_process`]) recorded in `cachedir/proc`
//! ([`proc_dir`]), whose return waits in the [`outbox`] until the master has it.

pub mod connection;
pub mod job_process;
pub mod jobs;
pub mod outbox;
pub mod proc_dir;
pub mod process_tree;
pub mod returners;
mod saltutil;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use anyhow::Context;
use salt_config::Config;
use salt_modules::{Opts, Registry};

/// Everything a running minion shares between its connection and its jobs.
pub struct Minion {
    /// The config: this minion's own, or one a swarm's minions share (see [`Shared`]).
    pub config: Arc<Config>,
    pub id: String,
    pub key: salt_pki::KeyPair,
    pub pki_dir: PathBuf,
    pub cachedir: PathBuf,
    pub registry: Arc<Registry>,
    pub grains: Arc<serde_json::Map<String, serde_json::Value>>,
    /// The options its jobs see: the config's, with this minion's id and directories.
    opts: Opts,
    pub jobs: Arc<jobs::JobTable>,
    pub outbox: outbox::Outbox,
    pub proc_dir: proc_dir::ProcDir,
    /// Salt's `multiprocessing`: each job in its own process (default) or as a task here.
    pub multiprocessing: bool,
    /// The binary job processes run (`salt-minion --run-job <jid>`): this program. `None`
    /// when it cannot be found; jobs then run in-process.
    pub job_exe: Option<PathBuf>,
    /// Where jobs' returns go besides the master (`--return`, `return:`).
    pub returners: returners::MinionReturners,
    /// The count of sessions up this minion adds to while it is connected (see [`Shared`]).
    pub(crate) sessions_up: Arc<AtomicUsize>,
}

/// What every minion of a process shares: the config, the function table and the config's
/// options. A minion has one to itself; the minions of a swarm (`salt-swarm`) share one, so
/// that an idle minion costs its connection and little else.
pub struct Shared {
    pub config: Arc<Config>,
    pub registry: Arc<Registry>,
    opts: Arc<serde_json::Map<String, serde_json::Value>>,
    /// How many of these minions are connected and authenticated now.
    pub sessions_up: Arc<AtomicUsize>,
    /// Whether a return is also kept on disk (`cachedir/outbox`) until the master has it, so
    /// that it survives a restart of the minion. A swarm keeps them in memory only: writing and
    /// removing a file was a third of its CPU per job, and what the master sees (each return
    /// sent, kept until acknowledged, sent again after a reconnect) is the same.
    pub returns_on_disk: bool,
}

impl Shared {
    pub fn new(config: Config) -> Shared {
        let opts = Arc::new(config.as_map().clone());
        Shared { config: Arc::new(config), registry: Arc::new(registry()), opts, sessions_up: Arc::default(), returns_on_disk: true }
    }

    /// The options of minion `id`: the config's, with the id and directories laid over them
    /// where they differ (the minions of a swarm share one config).
    fn opts_of(&self, id: &str, pki_dir: &Path, cachedir: &Path) -> Opts {
        let own: serde_json::Map<String, serde_json::Value> =
            [("id", id.to_string()), ("pki_dir", pki_dir.display().to_string()), ("cachedir", cachedir.display().to_string())]
                .into_iter()
                .filter(|(k, v)| self.opts.get(*k).and_then(serde_json::Value::as_str) != Some(v.as_str()))
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect();
        if own.is_empty() {
            self.opts.clone().into()
        } else {
            Opts::with_own(self.opts.clone(), own)
        }
    }

    /// The grains the config sets (`grains:`), which override collected ones.
    pub fn configured_grains(&self) -> serde_json::Map<String, serde_json::Value> {
        match self.config.get("grains") {
            Some(serde_json::Value::Object(g)) => g.clone(),
            _ => serde_json::Map::new(),
        }
    }
}

impl Minion {
    pub fn new(mut config: Config) -> anyhow::Result<Minion> {
        let id = minion_id(&config)?;
        // Jobs see the id in their options, as in Salt, guessed or not.
        config.set("id", id.clone().into());
        let pki_dir = config.path("pki_dir").context("pki_dir is not set")?;
        let cachedir = config.path("cachedir").context("cachedir is not set")?;
        let shared = Shared::new(config);
        let grains = Arc::new(salt_modules::grains::collect(&id, &shared.configured_grains()));
        Minion::open(&shared, id, pki_dir, cachedir, grains)
    }

    /// A minion `id` with its key in `pki_dir` (made there the first time) and its jobs, outbox
    /// and spools in `cachedir`.
    pub fn open(
        shared: &Shared,
        id: String,
        pki_dir: PathBuf,
        cachedir: PathBuf,
        grains: Arc<serde_json::Map<String, serde_json::Value>>,
    ) -> anyhow::Result<Minion> {
        let config = &shared.config;
        let key = salt_pki::KeyPair::load_or_generate(&pki_dir, "minion")
            .with_context(|| format!("cannot load or create the minion key in {}", pki_dir.display()))?;
        let jobs = Arc::new(jobs::JobTable::new(config.u64("minion_jid_queue_hwm").unwrap_or(100) as usize));
        // Job data (proc files, the outbox, spools) is owner-only; tighten what was left readable.
        match salt_proto::private::tighten_tree(&cachedir) {
            Ok(0) => {}
            Ok(n) => tracing::warn!("made {n} files and directories in {} owner-only (they hold job data)", cachedir.display()),
            Err(e) => tracing::warn!("cannot make {} owner-only: {e}", cachedir.display()),
        }
        let proc_dir = proc_dir::ProcDir::new(&cachedir);
        // Files of jobs that died with a previous minion; jobs still running keep theirs.
        proc_dir.clean_stale(proc_dir::job_process_alive).with_context(|| format!("cannot prepare {}", proc_dir.path().display()))?;
        let multiprocessing = config.bool("multiprocessing").unwrap_or(true);
        let job_exe = match std::env::current_exe() {
            Ok(exe) => Some(exe),
            Err(e) if multiprocessing => {
                tracing::warn!("cannot find this program to start job processes ({e}); jobs run in the minion process");
                None
            }
            Err(_) => None,
        };
        let outbox = if shared.returns_on_disk {
            let dir = cachedir.join("outbox");
            outbox::Outbox::open(&dir).with_context(|| format!("cannot open the outbox in {}", dir.display()))?
        } else {
            outbox::Outbox::default()
        };
        Ok(Minion {
            config: config.clone(),
            opts: shared.opts_of(&id, &pki_dir, &cachedir),
            returners: returners::MinionReturners::new(shared.opts.clone(), cachedir.clone()),
            id,
            key,
            pki_dir,
            cachedir,
            registry: shared.registry.clone(),
            grains,
            jobs,
            outbox,
            proc_dir,
            multiprocessing,
            job_exe,
            sessions_up: shared.sessions_up.clone(),
        })
    }

    /// The options a job sees: the config's, with this minion's id and directories.
    pub fn opts(&self) -> Opts {
        self.opts.clone()
    }
}

/// The function table of a minion or job process: the built-in modules plus the saltutil
/// job functions.
fn registry() -> Registry {
    let mut registry = Registry::builtin();
    saltutil::register(&mut registry);
    registry
}

/// The id from the config, else `minion_id` file or the host name (Salt's guess), validated either way.
pub fn minion_id(config: &Config) -> anyhow::Result<String> {
    let id = match config.str("id") {
        Some(id) => id.to_string(),
        None => salt_config::guess_id(&config.path("root_dir").unwrap_or_else(|| PathBuf::from("/"))),
    };
    salt_proto::id::validate_minion_id(&id).with_context(|| format!("cannot use minion id {id:?}"))?;
    Ok(id)
}

/// Runs the minion until `shutdown` resolves or the master turns it away for good.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    let minion = Arc::new(Minion::new(config)?);
    tracing::info!("salt-minion {} starting as {}", salt_proto::VERSION, minion.id);
    job_process::adopt_orphans(&minion);
    // The returners of the config's `return`: a wrong password is one line now, not silence.
    tokio::spawn({
        let minion = minion.clone();
        async move { minion.returners.check_configured().await }
    });
    tokio::select! {
        result = connection::run(minion.clone()) => result,
        _ = shutdown => {
            tracing::info!("salt-minion shutting down");
            Ok(())
        }
    }
}
