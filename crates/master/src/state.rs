//! The master's shared state: its identity and keys, who is connected, what each minion last
//! reported as grains, and the event bus.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use salt_config::Config;
use salt_pki::{AcceptPolicy, KeyPair, KeyState, KeyStore};
use salt_proto::seen::RecentlySeen;
use salt_targeting::Matcher;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::events::EventBus;
use crate::grains::GrainStore;
use crate::jobcache::SpooledStore;
use crate::journal::Journal;
use crate::limits::{PerKeyLimit, PerKeyPermit};
use crate::minions::Outgoing;
use salt_returners::spool::Record;

/// A live minion connection: a queue to its writer task.
pub(crate) struct Connection {
    pub(crate) serial: u64,
    pub(crate) tx: mpsc::Sender<Outgoing>,
}

pub struct Master {
    config: Config,
    id: String,
    key: KeyPair,
    keys: KeyStore,
    bus: EventBus,
    connections: Mutex<HashMap<String, Connection>>,
    grains: Mutex<GrainStore>,
    /// The last listing of the accepted keys, with the directory's mtime it was taken at.
    accepted_listing: Mutex<Option<(SystemTime, Arc<Vec<String>>)>>,
    /// Connections authenticating as each minion id right now.
    authenticating: Arc<PerKeyLimit<String>>,
    next_serial: AtomicU64,
    /// Minion connections past authentication's first step, counted against the capacity the
    /// descriptor limit allows (see `minions::capacity`).
    pub(crate) minion_slots: Arc<std::sync::atomic::AtomicUsize>,
    /// The master job cache; None with `job_cache: False`.
    job_cache: Option<SpooledStore>,
    /// `ext_job_cache`: minions return to it directly; the master stores loads there.
    ext_job_cache: Option<SpooledStore>,
    /// `event_return` stores.
    pub(crate) event_returners: Vec<SpooledStore>,
    pub(crate) max_frame: usize,
    /// How long a publish stays valid for a minion.
    pub(crate) publish_ttl: Duration,
    /// The job cache's spool is failing to write (a full disk): logged once, not per return.
    spool_failing: std::sync::atomic::AtomicBool,
    /// Publishes not yet returned by all their minions, on disk (see [`crate::journal`]).
    journal: Journal,
    /// (jid, minion) of the returns received lately: one sent again fires no second event and
    /// is stored once.
    returns_seen: Mutex<RecentlySeen<(String, String), ReturnSeen>>,
}

/// What the master did with a return it received lately, for when the minion sends it again
/// (the acknowledgement was late or lost, or the master could not spool it).
#[derive(Debug, Clone)]
pub(crate) enum ReturnSeen {
    /// Its event was fired with these `_stamp` and `ts`, and it is not on disk yet: a copy sent
    /// again is spooled with the same stamps, so the stores' (jid, id, full_ret) check sees one
    /// return, not two.
    Fired { stamp: Value, ts: Value },
    /// In the job cache's spool: a copy sent again is only acknowledged.
    Spooled,
}

/// Connections authenticating as the same minion id at once.
const MAX_AUTHENTICATING_PER_ID: usize = 2;

/// How many (jid, minion) returns the master remembers (about 100 bytes each); a minion sends a
/// return again within seconds or minutes (a late or lost acknowledgement, a reconnect, a master
/// that could not store it), and two jobs to 50,000 minions fit.
const RETURNS_REMEMBERED: usize = 100_000;

impl Master {
    /// Loads keys and opens the job cache and the other returners the config names; a returner
    /// that cannot serve its role is an error here, at start-up.
    pub async fn new(config: Config) -> anyhow::Result<Master> {
        let pki_dir = config.path("pki_dir").context("pki_dir is not set")?;
        let key = KeyPair::load_or_generate(&pki_dir, "master")
            .with_context(|| format!("cannot load or create the master key in {}", pki_dir.display()))?;
        let keys = KeyStore::open(&pki_dir).with_context(|| format!("cannot open {}", pki_dir.display()))?;
        let id = config.str("id").map(str::to_string).unwrap_or_else(|| {
            // Salt's default master id: `<host>_master`.
            format!("{}_master", salt_config::guess_id(&config.path("root_dir").unwrap_or_else(|| PathBuf::from("/"))))
        });
        let max_frame = config.u64("max_frame_bytes").map(|v| v as usize).unwrap_or(salt_proto::frame::DEFAULT_MAX_FRAME);
        let publish_ttl = Duration::from_secs(config.u64("publish_ttl").unwrap_or(300));
        let job_cache = if config.bool("job_cache").unwrap_or(true) {
            let name = config.str("master_job_cache").unwrap_or("local_cache");
            Some(SpooledStore::open(name, "master_job_cache", salt_returners::MASTER_JOB_CACHE, &config).await?)
        } else {
            None
        };
        let ext_job_cache = match config.str("ext_job_cache").filter(|s| !s.is_empty()) {
            Some(name) => Some(SpooledStore::open(name, "ext_job_cache", salt_returners::EXT_JOB_CACHE, &config).await?),
            None => None,
        };
        let mut event_returners = Vec::new();
        for name in config.str_list("event_return") {
            event_returners.push(SpooledStore::open(&name, "event_return", salt_returners::EVENT_RETURN, &config).await?);
        }
        let journal = Journal::open(config.path("cachedir").as_deref())
            .with_context(|| format!("cannot open the publish journal in {:?}", config.path("cachedir")))?;
        let master = Master {
            config,
            id,
            key,
            keys,
            bus: EventBus::default(),
            connections: Mutex::new(HashMap::new()),
            grains: Mutex::default(),
            accepted_listing: Mutex::new(None),
            authenticating: PerKeyLimit::new(MAX_AUTHENTICATING_PER_ID),
            next_serial: AtomicU64::new(1),
            minion_slots: Arc::default(),
            job_cache,
            ext_job_cache,
            event_returners,
            max_frame,
            publish_ttl,
            spool_failing: Default::default(),
            returns_seen: Mutex::new(RecentlySeen::new(RETURNS_REMEMBERED)),
            journal,
        };
        master.load_grains_cache();
        // Jobs a previous master published but may not have delivered: their loads are stored
        // again (the job cache keeps the first) and their minions get them as they connect.
        for entry in master.journal.recover(crate::minions::unix_millis()) {
            master.store_load(Record::Load { jid: entry.publish.jid.clone(), load: entry.load, minions: entry.minions });
        }
        Ok(master)
    }

    /// The store the jobs runner reads: `ext_job_cache` if set, else the master job cache.
    pub fn job_cache(&self) -> Option<Arc<dyn salt_returners::JobCache>> {
        self.ext_job_cache.as_ref().or(self.job_cache.as_ref()).and_then(|s| s.job_cache())
    }

    /// The name of the `ext_job_cache` returner, which every publish asks minions to use.
    pub(crate) fn ext_job_cache_name(&self) -> Option<&str> {
        self.ext_job_cache.as_ref().map(|s| s.sink().name())
    }

    /// A publish load goes to the master job cache and to the ext_job_cache.
    pub(crate) fn store_load(&self, record: Record) {
        for sink in self.job_cache.iter().chain(self.ext_job_cache.iter()) {
            sink.write(record.clone());
        }
    }

    /// A return (or end time) goes to the master job cache — unless an ext_job_cache is set, in
    /// which case the minions store their returns there themselves (Salt's rule). Resolves once
    /// the record is on disk, so the minion may be told the master has it. A failure is logged
    /// here, once until writing works again.
    pub(crate) async fn store_return(&self, record: Record) -> std::io::Result<()> {
        let result = match (&self.job_cache, &self.ext_job_cache) {
            (Some(sink), None) => sink.push(vec![record]).await,
            _ => Ok(()),
        };
        match &result {
            Err(e) if !self.spool_failing.swap(true, Ordering::Relaxed) => tracing::error!(
                "cannot spool returns for the job cache: {e}; they are not acknowledged, so the minions keep them and send them again"
            ),
            Ok(()) if self.spool_failing.swap(false, Ordering::Relaxed) => tracing::warn!("returns are spooled for the job cache again"),
            _ => {}
        }
        result
    }

    /// What became of the return of `id` for `jid` if it was received lately (this one is sent
    /// again).
    pub(crate) fn return_seen(&self, jid: &str, id: &str) -> Option<ReturnSeen> {
        self.lock_returns_seen().get(&(jid.to_string(), id.to_string())).cloned()
    }

    pub(crate) fn note_return(&self, jid: &str, id: &str, seen: ReturnSeen) {
        self.lock_returns_seen().insert((jid.to_string(), id.to_string()), seen);
    }

    fn lock_returns_seen(&self) -> std::sync::MutexGuard<'_, RecentlySeen<(String, String), ReturnSeen>> {
        self.returns_seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every sink, for maintenance and shutdown.
    pub(crate) fn sinks(&self) -> Vec<SpooledStore> {
        self.job_cache.iter().chain(self.ext_job_cache.iter()).chain(self.event_returners.iter()).cloned().collect()
    }

    pub(crate) fn journal(&self) -> &Journal {
        &self.journal
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }
    pub(crate) fn key(&self) -> &KeyPair {
        &self.key
    }

    pub fn new_jid(&self) -> String {
        salt_proto::jid::new_jid(self.config.bool("unique_jid").unwrap_or(false))
    }

    /// `auto_accept` and the `autosign_file` patterns, re-read on every authentication so an
    /// edit takes effect without a restart. Salt ignores a file others may write, and so do we.
    pub fn accept_policy(&self) -> AcceptPolicy {
        let autosign_patterns = match self.config.path("autosign_file") {
            Some(path) if path.exists() => AcceptPolicy::read_autosign_file(&path).unwrap_or_else(|e| {
                tracing::warn!("{e}");
                Vec::new()
            }),
            _ => Vec::new(),
        };
        AcceptPolicy { auto_accept: self.config.bool("auto_accept").unwrap_or(false), autosign_patterns }
    }

    /// The accepted ids, sorted as salt-key sorts them, for a publish to resolve its target
    /// over. Listing and sorting 50,000 keys costs more than matching them, so the listing is
    /// kept while the directory's mtime stays the same (salt-key's moves and the master's own
    /// writes all change it). As git does with its index, a listing taken within a second of
    /// the last change is not kept: a second change in the same clock tick could leave the
    /// mtime as it was. An unreadable directory is an error, not "no minions".
    pub fn accepted_ids(&self) -> std::io::Result<Arc<Vec<String>>> {
        let dir = self.keys.pki_dir().join(KeyState::Accepted.dir_name());
        let changed = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
        let mut cache = self.accepted_listing.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(changed), Some((seen, ids))) = (changed, cache.as_ref()) {
            if *seen == changed {
                return Ok(ids.clone());
            }
        }
        let ids = Arc::new(self.keys.try_list(KeyState::Accepted)?);
        let settled = changed.filter(|c| SystemTime::now().duration_since(*c).is_ok_and(|age| age >= Duration::from_secs(1)));
        *cache = settled.map(|c| (c, ids.clone()));
        Ok(ids)
    }

    pub fn accepted_minions(&self) -> Vec<String> {
        self.keys.list(KeyState::Accepted)
    }

    pub fn is_connected(&self, id: &str) -> bool {
        self.lock_connections().contains_key(id)
    }

    pub fn connected_minions(&self) -> Vec<String> {
        let mut ids: Vec<_> = self.lock_connections().keys().cloned().collect();
        ids.sort();
        ids
    }

    pub(crate) fn sender(&self, id: &str) -> Option<mpsc::Sender<Outgoing>> {
        self.lock_connections().get(id).map(|c| c.tx.clone())
    }

    /// Queues one frame, encoded once, for each of `ids`, under one lock. Returns the ids it
    /// could not be queued for (not connected, or their queue is full).
    pub(crate) fn send_to_each<'a>(&self, ids: impl IntoIterator<Item = &'a String>, frame: &Arc<[u8]>) -> Vec<&'a String> {
        let conns = self.lock_connections();
        ids.into_iter()
            .filter(|id| conns.get(id.as_str()).is_none_or(|c| c.tx.try_send(Outgoing::Shared(frame.clone())).is_err()))
            .collect()
    }

    /// Registers a new connection for `id`, replacing an older one (a reconnecting minion).
    pub(crate) fn register(&self, id: &str, tx: mpsc::Sender<Outgoing>) -> u64 {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        self.lock_connections().insert(id.to_string(), Connection { serial, tx });
        serial
    }

    /// Closes the minion's connection (its writer ends and shuts the stream down).
    pub(crate) fn disconnect(&self, id: &str) {
        self.lock_connections().remove(id);
    }

    /// A permit for a connection authenticating as `id`; None when too many already are.
    pub(crate) fn authenticating(&self, id: &str) -> Option<PerKeyPermit<String>> {
        self.authenticating.try_acquire(id.to_string())
    }

    /// Forgets the connection, unless a newer one for the same id replaced it already.
    pub(crate) fn unregister(&self, id: &str, serial: u64) {
        let mut conns = self.lock_connections();
        if conns.get(id).is_some_and(|c| c.serial == serial) {
            conns.remove(id);
        }
    }

    /// The ids of `accepted` that `matcher` selects, with the grains the master holds (an id it
    /// has none for is matched against no grains, so a grain term does not select it). One lock
    /// for the whole pass, which reads no minion's whole grains (the `grains` module says how).
    pub fn minions_matching(&self, matcher: &Matcher, accepted: &Arc<Vec<String>>) -> Vec<String> {
        if !matcher.uses_grains() {
            return accepted.iter().filter(|id| matcher.matches_without_grains(id)).cloned().collect();
        }
        self.lock_grains().matching(matcher, accepted)
    }

    /// The grains minion `id` last reported (a copy; empty if it never did).
    pub fn grains_of(&self, id: &str) -> Map<String, Value> {
        self.lock_grains().get(id).unwrap_or_default()
    }

    /// Whether we have ever seen this minion's data (Salt's `minion_data_cache`), which is what
    /// lets the CLI say "[Not connected]" rather than "[No response]".
    pub fn has_minion_data(&self, id: &str) -> bool {
        self.lock_grains().contains(id)
    }

    /// Keeps what minion `id` reported as its grains, in memory and in its `data.p`.
    pub fn store_grains(&self, id: &str, grains: Map<String, Value>) {
        if let Some(dir) = self.minion_data_dir(id) {
            let data = serde_json::json!({ "grains": &grains });
            let write = salt_proto::private::create_dir_all(&dir).and_then(|_| {
                let tmp = dir.join("data.p.tmp");
                salt_proto::private::write(&tmp, &rmp_serde::to_vec_named(&data).unwrap_or_default())?;
                std::fs::rename(tmp, dir.join("data.p"))
            });
            if let Err(e) = write {
                tracing::warn!("cannot cache grains of {id} in {}: {e}", dir.display());
            }
        }
        self.lock_grains().insert(id, grains);
    }

    fn minion_data_dir(&self, id: &str) -> Option<PathBuf> {
        salt_proto::id::validate_minion_id(id).ok()?;
        Some(self.config.path("cachedir")?.join("minions").join(id))
    }

    /// Grains cached by earlier runs, so `-G` targets and "[Not connected]" work right after a restart.
    fn load_grains_cache(&self) {
        let Some(root) = self.config.path("cachedir").map(|c| c.join("minions")) else { return };
        let Ok(entries) = std::fs::read_dir(&root) else { return };
        let mut grains = self.lock_grains();
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().to_string();
            if salt_proto::id::validate_minion_id(&id).is_err() {
                continue;
            }
            let data = std::fs::read(entry.path().join("data.p")).ok().and_then(|b| rmp_serde::from_slice::<Value>(&b).ok());
            if let Some(Value::Object(mut data)) = data {
                if let Some(Value::Object(g)) = data.remove("grains") {
                    grains.insert(&id, g);
                }
            }
        }
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<String, Connection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn lock_grains(&self) -> std::sync::MutexGuard<'_, GrainStore> {
        self.grains.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    async fn master(dir: &std::path::Path) -> Master {
        let yaml = format!(
            "id: m\nroot_dir: {d}\npki_dir: {d}/pki\ncachedir: {d}/cache\nsock_dir: {d}/run\njob_cache: False\n",
            d = dir.display()
        );
        Master::new(Config::from_yaml_str(salt_config::Role::Master, &yaml, "test").unwrap()).await.unwrap()
    }

    fn set_mtime(dir: &std::path::Path, at: SystemTime) {
        std::fs::File::open(dir).unwrap().set_modified(at).unwrap();
    }

    #[tokio::test]
    async fn the_accepted_listing_is_reused_only_while_the_directory_is_unchanged() {
        let tmp = tempfile::tempdir().unwrap();
        let m = master(tmp.path()).await;
        let dir = tmp.path().join("pki/minions");
        std::fs::write(dir.join("b"), "k").unwrap();
        // Changed just now: listed every time, never kept.
        assert_eq!(*m.accepted_ids().unwrap(), ["b"]);
        std::fs::write(dir.join("A"), "k").unwrap();
        assert_eq!(*m.accepted_ids().unwrap(), ["A", "b"]);

        let settled = SystemTime::now() - Duration::from_secs(10);
        set_mtime(&dir, settled);
        assert_eq!(*m.accepted_ids().unwrap(), ["A", "b"]);
        // The same mtime: the kept listing answers (the new file is not seen, which is how we
        // know the listing was kept).
        std::fs::write(dir.join("c"), "k").unwrap();
        set_mtime(&dir, settled);
        assert_eq!(*m.accepted_ids().unwrap(), ["A", "b"]);
        // Any other mtime: listed again.
        set_mtime(&dir, settled + Duration::from_secs(1));
        assert_eq!(*m.accepted_ids().unwrap(), ["A", "b", "c"]);
        std::fs::remove_file(dir.join("b")).unwrap();
        assert_eq!(*m.accepted_ids().unwrap(), ["A", "c"]);
    }
}
