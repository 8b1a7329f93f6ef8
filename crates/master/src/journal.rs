//! The publish journal (`cachedir/publishes/<jid>`): a printed jid is a delivered job.
//!
//! A publish is written here, and synced, before the CLI is told its jid. It stays until every
//! minion it went to has returned, or until `publish_ttl` has passed. A master that died in
//! between (a crash, `kill -9`) finds it at start: it stores the job's load again (the job cache
//! keeps the first) and sends the job to each of its minions as that minion connects, while the
//! publish is still valid. A minion that already ran the job drops the copy (it remembers jids),
//! so nothing runs twice. Minions not reached before the publish expires are logged, and
//! `salt-run jobs.lookup_jid <jid> missing=True` lists them.
//!
//! The journal holds the unredacted publish (its `--return_kwargs` may carry a password the
//! minion needs), so its files are owner-only, like the rest of the job data.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use salt_proto::message::Publish;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One journaled publish: the copy every minion gets (its `minion` left empty), the load the
/// job cache stores, and the minions that have not returned yet.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Entry {
    pub publish: Publish,
    pub load: Map<String, Value>,
    pub minions: Vec<String>,
}

#[derive(Default)]
struct State {
    /// jid → (minions that have not returned, when the publish expires).
    outstanding: HashMap<String, (BTreeSet<String>, u64)>,
    /// minion → publishes recovered at start, to send when it connects.
    undelivered: HashMap<String, Vec<Publish>>,
}

pub(crate) struct Journal {
    dir: Option<PathBuf>,
    state: Mutex<State>,
    /// Writing is failing (a full disk): logged once, not per publish.
    failing: std::sync::atomic::AtomicBool,
}

impl Journal {
    /// The journal in `cachedir/publishes`; without a cachedir it keeps nothing.
    pub(crate) fn open(cachedir: Option<&Path>) -> std::io::Result<Journal> {
        let dir = cachedir.map(|c| c.join("publishes"));
        if let Some(dir) = &dir {
            salt_proto::private::create_dir_all(dir)?;
        }
        Ok(Journal { dir, state: Mutex::new(State::default()), failing: Default::default() })
    }

    /// Writes `entry` durably, before the CLI is told the jid. A failure (a full disk) is logged
    /// once until writing works again; the job still goes out, unjournaled.
    pub(crate) fn record(&self, entry: &Entry) {
        use std::sync::atomic::Ordering;
        let jid = &entry.publish.jid;
        let Some(dir) = &self.dir else { return };
        // The slices of a batch share a jid: the entry keeps every slice's minions that have
        // not returned, not only the last slice's.
        let earlier = self.lock().outstanding.get(jid).map(|(waiting, _)| waiting.clone());
        let merged;
        let entry = match earlier {
            Some(mut waiting) => {
                waiting.extend(entry.minions.iter().cloned());
                merged = Entry { minions: waiting.into_iter().collect(), ..entry.clone() };
                &merged
            }
            None => entry,
        };
        match write_synced(dir, jid, entry) {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::warn!("publish journal: writing works again");
                }
                let minions = entry.minions.iter().cloned().collect();
                self.lock().outstanding.insert(jid.clone(), (minions, entry.publish.expires_at_ms));
            }
            Err(e) => {
                let tmp = dir.join(format!(".{jid}.tmp"));
                let _ = std::fs::remove_file(tmp);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        "cannot write the publish journal in {}: {e}; jobs still go out, but one published just before a master crash would be lost",
                        dir.display()
                    );
                }
            }
        }
    }

    /// `minion` returned for `jid`; the entry goes once every minion has.
    pub(crate) fn returned(&self, jid: &str, minion: &str) {
        let mut state = self.lock();
        let Some((waiting, _)) = state.outstanding.get_mut(jid) else { return };
        waiting.remove(minion);
        if waiting.is_empty() {
            state.outstanding.remove(jid);
            drop(state);
            self.remove_file(jid);
        }
    }

    /// At start: the entries a previous master left. Those still valid at `now_ms` are returned
    /// (to store their loads again) and their copies wait for their minions; expired ones are
    /// logged and removed.
    pub(crate) fn recover(&self, now_ms: u64) -> Vec<Entry> {
        let Some(dir) = &self.dir else { return Vec::new() };
        let Ok(files) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut live = Vec::new();
        for path in files.filter_map(Result::ok).map(|e| e.path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.starts_with('.') {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let entry = std::fs::read(&path)
                .ok()
                .and_then(|b| salt_proto::frame::decode::<Entry>(&b).ok())
                .filter(|e| e.publish.jid == name && salt_proto::jid::validate_jid(&name).is_ok());
            let Some(entry) = entry else {
                tracing::warn!("publish journal: {} is unreadable; removed", path.display());
                let _ = std::fs::remove_file(&path);
                continue;
            };
            if entry.publish.expires_at_ms <= now_ms {
                tracing::warn!(
                    "job {}: the master stopped before {} returned and the publish has expired; see salt-run jobs.lookup_jid {} missing=True",
                    name,
                    entry.minions.join(", "),
                    name
                );
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let mut state = self.lock();
            state.outstanding.insert(name.clone(), (entry.minions.iter().cloned().collect(), entry.publish.expires_at_ms));
            for minion in &entry.minions {
                state.undelivered.entry(minion.clone()).or_default().push(entry.publish.clone());
            }
            drop(state);
            live.push(entry);
        }
        if !live.is_empty() {
            tracing::warn!(
                "publish journal: {} jobs published before the master stopped are sent again as their minions connect",
                live.len()
            );
        }
        live
    }

    /// The recovered publishes for `minion` still valid at `now_ms`, each handed out once.
    pub(crate) fn take_undelivered(&self, minion: &str, now_ms: u64) -> Vec<Publish> {
        let mut state = self.lock();
        let copies = state.undelivered.remove(minion).unwrap_or_default();
        copies.into_iter().filter(|p| p.expires_at_ms > now_ms).collect()
    }

    /// Drops the entries whose publish expired by `now_ms`, logging the minions that never
    /// returned; returns how many were dropped.
    pub(crate) fn expire(&self, now_ms: u64) -> usize {
        let mut state = self.lock();
        let expired: Vec<(String, BTreeSet<String>)> = state
            .outstanding
            .iter()
            .filter(|(_, (_, expires))| *expires <= now_ms)
            .map(|(jid, (waiting, _))| (jid.clone(), waiting.clone()))
            .collect();
        for (jid, _) in &expired {
            state.outstanding.remove(jid);
        }
        state.undelivered.values_mut().for_each(|copies| copies.retain(|p| p.expires_at_ms > now_ms));
        state.undelivered.retain(|_, copies| !copies.is_empty());
        drop(state);
        for (jid, waiting) in &expired {
            tracing::info!(
                "job {jid}: no return from {} before the publish expired",
                waiting.iter().cloned().collect::<Vec<_>>().join(", ")
            );
            self.remove_file(jid);
        }
        expired.len()
    }

    #[cfg(test)]
    fn is_outstanding(&self, jid: &str) -> bool {
        self.lock().outstanding.contains_key(jid)
    }

    fn remove_file(&self, jid: &str) {
        if let (Some(dir), Ok(())) = (&self.dir, salt_proto::jid::validate_jid(jid)) {
            let _ = std::fs::remove_file(dir.join(jid));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn write_synced(dir: &Path, jid: &str, entry: &Entry) -> std::io::Result<()> {
    let bytes = salt_proto::frame::encode(entry).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{jid}.tmp"));
    let mut file = salt_proto::private::create(&tmp)?;
    std::io::Write::write_all(&mut file, &bytes)?;
    file.sync_data()?;
    std::fs::rename(&tmp, dir.join(jid))?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(jid: &str, minions: &[&str], expires_at_ms: u64) -> Entry {
        Entry {
            publish: Publish {
                jid: jid.into(),
                fun: "test.ping".into(),
                arg: vec![],
                tgt: "*".into(),
                tgt_type: "glob".into(),
                ret: String::new(),
                user: "root".into(),
                expires_at_ms,
                kwargs: Map::new(),
            },
            load: Map::new(),
            minions: minions.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn an_entry_lives_until_every_minion_returned() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(tmp.path())).unwrap();
        journal.record(&entry("20261201150000000001", &["a", "b"], u64::MAX));
        let file = tmp.path().join("publishes/20261201150000000001");
        assert!(file.exists());
        journal.returned("20261201150000000001", "a");
        assert!(file.exists());
        journal.returned("20261201150000000001", "b");
        assert!(!file.exists());
    }

    #[test]
    fn the_slices_of_a_batch_share_one_entry_until_every_slice_returned() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(tmp.path())).unwrap();
        let jid = "20261201150000000001";
        journal.record(&entry(jid, &["a", "b"], u64::MAX));
        journal.returned(jid, "a");
        journal.record(&entry(jid, &["c"], u64::MAX));
        let file = tmp.path().join("publishes").join(jid);
        let on_disk: Entry = salt_proto::frame::decode(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(on_disk.minions, ["b", "c"], "the first slice's b still waits");
        journal.returned(jid, "c");
        assert!(file.exists());
        journal.returned(jid, "b");
        assert!(!file.exists());
    }

    #[test]
    fn a_journal_that_cannot_be_written_lets_the_job_go_unjournaled() {
        let tmp = tempfile::tempdir().unwrap();
        let journal = Journal::open(Some(tmp.path())).unwrap();
        std::fs::remove_dir(tmp.path().join("publishes")).unwrap();
        journal.record(&entry("20261201150000000001", &["a"], u64::MAX));
        assert!(!journal.is_outstanding("20261201150000000001"));
        std::fs::create_dir(tmp.path().join("publishes")).unwrap();
        journal.record(&entry("20261201150000000002", &["a"], u64::MAX));
        assert!(journal.is_outstanding("20261201150000000002"));
    }

    #[test]
    fn a_restarted_master_sends_valid_publishes_again_and_drops_expired_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let before = Journal::open(Some(tmp.path())).unwrap();
        before.record(&entry("20261201150000000001", &["a", "b"], 2_000));
        before.record(&entry("20261201150000000002", &["a"], 500));
        std::fs::write(tmp.path().join("publishes/.20261201150000000003.tmp"), b"half").unwrap();

        let after = Journal::open(Some(tmp.path())).unwrap();
        let live = after.recover(1_000);
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].publish.jid, "20261201150000000001");
        assert_eq!(std::fs::read_dir(tmp.path().join("publishes")).unwrap().count(), 1);
        let for_a = after.take_undelivered("a", 1_000);
        assert_eq!(for_a.len(), 1);
        assert!(after.take_undelivered("a", 1_000).is_empty(), "handed out once");
        assert!(after.take_undelivered("b", 3_000).is_empty(), "expired by then");

        assert_eq!(after.expire(3_000), 1);
        assert_eq!(std::fs::read_dir(tmp.path().join("publishes")).unwrap().count(), 0);
    }
}
