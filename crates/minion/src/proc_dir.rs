//! `cachedir/proc/<jid>`: one file per running job, as Salt keeps it. The file is msgpack of
//! `{"pid": <pid>, **publish data}` and is how `saltutil.running` / `find_job` / `kill_job`
//! find jobs: those functions run inside a job process of their own, so files are the only
//! state every job can see.
//!
//! A file outlives its job only when something crashed. Readers therefore check that the pid
//! is still a job of ours (see [`job_process_alive`]) and delete the file otherwise, and the
//! minion sweeps the directory at start.

use std::io;
use std::path::{Path, PathBuf};

use salt_proto::jid::validate_jid;
use serde_json::{Map, Value};

/// The proc directory of one minion.
#[derive(Debug, Clone)]
pub struct ProcDir {
    dir: PathBuf,
}

impl ProcDir {
    /// `cachedir/proc`.
    pub fn new(cachedir: &Path) -> ProcDir {
        ProcDir { dir: cachedir.join("proc") }
    }

    /// The proc dir of the minion whose options these are (`opts["cachedir"]`).
    pub fn from_opts(opts: &salt_modules::Opts) -> Option<ProcDir> {
        opts.get("cachedir").and_then(Value::as_str).map(|c| ProcDir::new(Path::new(c)))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The file of `jid`. The jid is validated first so no string ever becomes a path unchecked.
    pub fn file(&self, jid: &str) -> Result<PathBuf, salt_proto::jid::JidError> {
        validate_jid(jid)?;
        Ok(self.dir.join(jid))
    }

    /// Records a running job: `{"pid": pid, **pub_data}` (Salt's key order: pid first). Written
    /// to a temporary name and renamed, so a reader never sees half a file.
    pub fn write(&self, jid: &str, pub_data: &Map<String, Value>, pid: u32) -> io::Result<()> {
        let path = self.file(jid).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut data = Map::new();
        data.insert("pid".into(), pid.into());
        for (k, v) in pub_data {
            if k != "pid" {
                data.insert(k.clone(), v.clone());
            }
        }
        let bytes = salt_proto::frame::encode(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let tmp = self.dir.join(format!(".{jid}.tmp"));
        // The directory is made at start ([`ProcDir::clean_stale`]); made again only if it was
        // removed since, not looked for on every job.
        if let Err(e) = salt_proto::private::write(&tmp, &bytes) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            salt_proto::private::create_dir_all(&self.dir)?;
            salt_proto::private::write(&tmp, &bytes)?;
        }
        std::fs::rename(&tmp, &path)
    }

    /// Removes the file of `jid`; a missing file (or an invalid jid) is not an error.
    pub fn remove(&self, jid: &str) {
        if let Ok(path) = self.file(jid) {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }

    /// Salt's `salt.utils.minion.running`: the data of every running job, oldest jid first.
    /// Files that are unreadable, not a dict, or whose job `alive(pid, jid)` denies are deleted
    /// on the way. Names that are not jids (temporary files) are skipped.
    pub fn running(&self, alive: impl Fn(u32, &str) -> bool) -> Vec<Map<String, Value>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut jids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| validate_jid(name).is_ok())
            .collect();
        jids.sort();
        let mut jobs = Vec::new();
        for jid in jids {
            let path = self.dir.join(&jid);
            let data = std::fs::read(&path).ok().and_then(|b| salt_proto::frame::decode::<Value>(&b).ok());
            let live = match &data {
                Some(Value::Object(map)) if !map.is_empty() => {
                    let pid = map.get("pid").and_then(Value::as_u64).and_then(|p| u32::try_from(p).ok());
                    let file_jid = map.get("jid").and_then(Value::as_str);
                    // A file whose name and content disagree is not one we wrote.
                    pid.is_some_and(|pid| file_jid == Some(jid.as_str()) && alive(pid, &jid))
                }
                _ => false,
            };
            match (live, data) {
                (true, Some(Value::Object(map))) => jobs.push(map),
                _ => {
                    tracing::debug!("removing stale proc file {}", path.display());
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        jobs
    }

    /// The running job `jid`, if it is one (stale files are pruned as in [`ProcDir::running`]).
    pub fn find(&self, jid: &str, alive: impl Fn(u32, &str) -> bool) -> Option<Map<String, Value>> {
        self.running(alive).into_iter().find(|j| j.get("jid").and_then(Value::as_str) == Some(jid))
    }

    /// At minion start: create the directory, drop the files of jobs that are gone and any
    /// temporary file a crash left behind.
    pub fn clean_stale(&self, alive: impl Fn(u32, &str) -> bool) -> io::Result<()> {
        salt_proto::private::create_dir_all(&self.dir)?;
        for entry in std::fs::read_dir(&self.dir)?.filter_map(Result::ok) {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.running(alive);
        Ok(())
    }
}

/// The argument that puts the minion binary in job mode; followed by the jid, so
/// `/proc/<pid>/cmdline` names the job a process runs.
pub const RUN_JOB_ARG: &str = "--run-job";

/// Is `pid` alive and a job process running `jid`? The cmdline check is the pid-reuse guard
/// (Salt checks for `salt` in the cmdline; naming the jid is stricter).
pub fn job_process_alive(pid: u32, jid: &str) -> bool {
    pid_alive(pid) && is_job_cmdline(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(), jid)
}

/// `--run-job <jid>` among the arguments of the NUL-separated `/proc/<pid>/cmdline`.
fn is_job_cmdline(cmdline: &[u8], jid: &str) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).skip(1).collect();
    args.windows(2).any(|w| w[0] == RUN_JOB_ARG.as_bytes() && w[1] == jid.as_bytes())
}

/// `kill(pid, 0)`: true unless the process does not exist (EPERM means it does).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JID: &str = "20261125003832838505";

    fn pub_data(jid: &str) -> Map<String, Value> {
        json!({"fun": "cmd.run", "arg": ["sleep 100"], "tgt": "*", "jid": jid, "ret": "", "tgt_type": "glob", "user": "root"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn write_puts_pid_first_and_remove_deletes() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_dir = ProcDir::new(tmp.path());
        proc_dir.write(JID, &pub_data(JID), 4242).unwrap();
        let raw = std::fs::read(tmp.path().join("proc").join(JID)).unwrap();
        let data: Value = salt_proto::frame::decode(&raw).unwrap();
        let keys: Vec<&String> = data.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["pid", "fun", "arg", "tgt", "jid", "ret", "tgt_type", "user"]);
        assert_eq!(data["pid"], json!(4242));
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(tmp.path().join("proc")).unwrap().count(), 1);

        let found = proc_dir.find(JID, |_, _| true).unwrap();
        assert_eq!(found["fun"], json!("cmd.run"));
        proc_dir.remove(JID);
        assert!(!tmp.path().join("proc").join(JID).exists());
        proc_dir.remove(JID); // twice is fine
        assert!(proc_dir.find(JID, |_, _| true).is_none());
    }

    #[test]
    fn invalid_jids_never_become_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_dir = ProcDir::new(tmp.path());
        for bad in ["../../etc/passwd", "2026112500383283850", "20261125003832838505/..", "", "20261125003832838505_x"] {
            assert!(proc_dir.file(bad).is_err(), "{bad}");
            let err = proc_dir.write(bad, &pub_data(bad), 1).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert!(proc_dir.file("20261125003832838505_123").is_ok());
        assert!(!tmp.path().join("proc").exists() || std::fs::read_dir(tmp.path().join("proc")).unwrap().count() == 0);
    }

    #[test]
    fn running_prunes_dead_garbage_and_mismatched_files() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_dir = ProcDir::new(tmp.path());
        let live = "20261125003832838501";
        let dead = "20261125003832838502";
        let mismatched = "20261125003832838503";
        proc_dir.write(live, &pub_data(live), 100).unwrap();
        proc_dir.write(dead, &pub_data(dead), 200).unwrap();
        proc_dir.write(mismatched, &pub_data(live), 100).unwrap();
        std::fs::write(proc_dir.path().join("20261125003832838504"), b"not msgpack \xc1").unwrap();
        std::fs::write(proc_dir.path().join("20261125003832838505"), salt_proto::frame::encode(&json!([1, 2])).unwrap()).unwrap();
        std::fs::write(proc_dir.path().join("20261125003832838506"), salt_proto::frame::encode(&json!({})).unwrap()).unwrap();
        std::fs::write(proc_dir.path().join("notes.txt"), b"left alone").unwrap();

        let jobs = proc_dir.running(|pid, _| pid == 100);
        let jids: Vec<&str> = jobs.iter().map(|j| j["jid"].as_str().unwrap()).collect();
        assert_eq!(jids, [live]);
        let mut left: Vec<String> =
            std::fs::read_dir(proc_dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, [live, "notes.txt"]);
    }

    #[test]
    fn clean_stale_removes_dead_jobs_and_temp_files_and_keeps_live_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let proc_dir = ProcDir::new(tmp.path());
        proc_dir.clean_stale(|_, _| true).unwrap();
        assert!(proc_dir.path().is_dir(), "created at start");
        let a = "20261125003832838501";
        let b = "20261125003832838502";
        proc_dir.write(a, &pub_data(a), 1).unwrap();
        proc_dir.write(b, &pub_data(b), 2).unwrap();
        std::fs::write(proc_dir.path().join(format!(".{a}.tmp")), b"half").unwrap();
        // As at start after a crash: only the real job-process check decides, and no process
        // with our job cmdline runs these jids.
        proc_dir.clean_stale(job_process_alive).unwrap();
        assert_eq!(std::fs::read_dir(proc_dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn pid_reuse_guard_checks_the_job_cmdline() {
        let me = std::process::id();
        assert!(pid_alive(me));
        // This test process is alive but is not a job process: a reused pid.
        assert!(!job_process_alive(me, JID));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));

        assert!(is_job_cmdline(b"/usr/bin/salt-minion\0--run-job\x0020261125003832838505\0", JID));
        assert!(!is_job_cmdline(b"/usr/bin/salt-minion\0--run-job\x0020261125003832838506\0", JID));
        assert!(!is_job_cmdline(b"/usr/bin/salt-minion\0-c\0/etc/salt\0", JID));
        assert!(!is_job_cmdline(b"", JID));
    }

    #[test]
    fn a_live_process_with_the_job_cmdline_passes_the_guard() {
        // `sh -c script --run-job <jid>`: the shell's cmdline carries the pair; the `; true`
        // keeps the shell from exec'ing sleep in its place.
        let mut child = std::process::Command::new("/bin/sh").args(["-c", "sleep 30; true", RUN_JOB_ARG, JID]).spawn().unwrap();
        let pid = child.id();
        wait_until(|| job_process_alive(pid, JID));
        assert!(!job_process_alive(pid, "20261125003832838506"), "another jid");
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!job_process_alive(pid, JID), "a dead pid is never alive");
    }

    fn wait_until(cond: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "condition never held");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
