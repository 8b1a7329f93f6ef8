//! Returns waiting for the master. A job's return goes here first; the connection takes them
//! out one at a time and puts one back if the write failed. A sent return is kept until the
//! master acknowledges it (it acknowledges once the return is on its disk), and whatever was
//! sent but not acknowledged is sent again after a reconnect, or when the master has
//! acknowledged nothing for a while (it could not store the return: a full disk) — so neither a
//! dropped connection, nor a master killed at the wrong moment, nor one that cannot write loses
//! a return. (The master's job cache ignores a duplicate.)
//!
//! With a directory (the minion's `cachedir/outbox`), each return is also written there until
//! it is acknowledged, so a minion restart does not lose it either. A job process writes its
//! own return there ([`keep`]) before it reports it, so even a minion killed mid-job does not
//! lose it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use salt_proto::message::JobReturn;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<VecDeque<JobReturn>>,
    /// Sent, not yet acknowledged, oldest first.
    unacked: Mutex<Vec<JobReturn>>,
    /// When the master last acknowledged a return, or the last resend (None: not yet).
    last_progress: Mutex<Option<Instant>>,
    ready: Notify,
    /// Woken when a sent return starts waiting for its acknowledgement.
    awaiting_ack: Notify,
    /// Where returns wait on disk until acknowledged; None keeps them in memory only.
    dir: Option<PathBuf>,
}

impl Outbox {
    /// An outbox kept on disk in `dir`, holding what an earlier run left unacknowledged.
    pub fn open(dir: &Path) -> std::io::Result<Outbox> {
        salt_proto::private::create_dir_all(dir)?;
        let mut left: Vec<JobReturn> = Vec::new();
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            match std::fs::read(&path).ok().and_then(|b| salt_proto::frame::decode::<JobReturn>(&b).ok()) {
                Some(ret) => left.push(ret),
                None => tracing::warn!("outbox: ignoring unreadable {}", path.display()),
            }
        }
        left.sort_by(|a, b| a.jid.cmp(&b.jid));
        if !left.is_empty() {
            tracing::info!("{} returns from an earlier run wait for the master", left.len());
        }
        Ok(Outbox { queue: Mutex::new(left.into()), dir: Some(dir.to_path_buf()), ..Outbox::default() })
    }

    /// Where returns wait on disk, if they do.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Queues the return of a job that ran in this process, keeping it on disk first.
    pub fn push(&self, ret: JobReturn) {
        if let Some(dir) = &self.dir {
            self.keep_or_log(dir, &ret);
        }
        self.enqueue(ret);
    }

    /// Queues the return of a job process, which kept it on disk itself ([`keep`]); kept here
    /// only if it could not.
    pub fn push_from_job_process(&self, ret: JobReturn) {
        if let Some(dir) = &self.dir {
            if !dir.join(&ret.jid).exists() {
                self.keep_or_log(dir, &ret);
            }
        }
        self.enqueue(ret);
    }

    fn keep_or_log(&self, dir: &Path, ret: &JobReturn) {
        if let Err(e) = keep(dir, ret) {
            tracing::error!("outbox: cannot keep the return of job {} on disk: {e}", ret.jid);
        }
    }

    fn enqueue(&self, ret: JobReturn) {
        self.lock().push_back(ret);
        self.ready.notify_one();
    }

    /// Queues the return a job process kept for job `jid` (a job adopted from an earlier
    /// minion), unless it is queued already or gone (acknowledged). The return, if queued.
    pub fn adopt(&self, jid: &str) -> Option<JobReturn> {
        let dir = self.dir.as_ref()?;
        salt_proto::jid::validate_jid(jid).ok()?;
        let ret = std::fs::read(dir.join(jid)).ok().and_then(|b| salt_proto::frame::decode::<JobReturn>(&b).ok())?;
        let mut queue = self.lock();
        let known =
            queue.iter().any(|r| r.jid == jid) || self.unacked.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|r| r.jid == jid);
        if known {
            return None;
        }
        queue.push_back(ret.clone());
        drop(queue);
        self.ready.notify_one();
        Some(ret)
    }

    /// Waits for the next return to send.
    pub async fn next(&self) -> JobReturn {
        loop {
            if let Some(ret) = self.lock().pop_front() {
                return ret;
            }
            self.ready.notified().await;
        }
    }

    /// A return whose send failed goes back to the front of the line.
    pub fn put_back(&self, ret: JobReturn) {
        self.lock().push_front(ret);
        self.ready.notify_one();
    }

    /// `ret` went out on the connection; keep it until the master acknowledges it.
    pub fn sent(&self, ret: JobReturn) {
        let mut unacked = self.unacked.lock().unwrap_or_else(|e| e.into_inner());
        if unacked.is_empty() {
            // The wait for an acknowledgement starts now, not at the last one long ago.
            *self.last_progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            self.awaiting_ack.notify_waiters();
        }
        unacked.push(ret);
    }

    /// Waits until some sent return waits for its acknowledgement: an idle minion needs no
    /// timer (a swarm of 50,000 would otherwise wake thousands of times a second for nothing).
    pub async fn until_awaiting_ack(&self) {
        loop {
            let notified = self.awaiting_ack.notified();
            tokio::pin!(notified);
            // Registered before the check, so a return sent in between is not missed.
            notified.as_mut().enable();
            if !self.unacked.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// The master has the return for `jid`.
    pub fn acked(&self, jid: &str) {
        *self.last_progress.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.unacked.lock().unwrap_or_else(|e| e.into_inner()).retain(|r| r.jid != jid);
        if let (Some(dir), Ok(())) = (&self.dir, salt_proto::jid::validate_jid(jid)) {
            let _ = std::fs::remove_file(dir.join(jid));
        }
    }

    /// A return that can never be sent leaves the outbox for `dead-letter.jsonl` beside it, with
    /// the reason, instead of being tried again at every start.
    pub fn dead_letter(&self, ret: &JobReturn, reason: &str) {
        tracing::error!(
            "the return of job {} cannot be sent to the master ({reason}); it is kept in the outbox's dead-letter file",
            ret.jid
        );
        let Some(dir) = &self.dir else { return };
        let line = serde_json::json!({ "reason": reason, "return": ret });
        let file = dir.with_file_name("outbox-dead-letter.jsonl");
        let write = salt_proto::private::append(&file).and_then(|mut f| {
            serde_json::to_writer(&mut f, &line)?;
            std::io::Write::write_all(&mut f, b"\n")?;
            f.sync_data()
        });
        match write {
            Ok(()) => {
                if salt_proto::jid::validate_jid(&ret.jid).is_ok() {
                    let _ = std::fs::remove_file(dir.join(&ret.jid));
                }
            }
            Err(e) => tracing::error!("cannot write {}: {e}; the return stays in the outbox", file.display()),
        }
    }

    /// After a reconnect: what was sent but never acknowledged goes out again, first.
    pub fn resend_unacked(&self) {
        let unacked = std::mem::take(&mut *self.unacked.lock().unwrap_or_else(|e| e.into_inner()));
        if unacked.is_empty() {
            return;
        }
        let mut queue = self.lock();
        for ret in unacked.into_iter().rev() {
            queue.push_front(ret);
        }
        drop(queue);
        self.ready.notify_one();
    }

    /// When returns wait for an acknowledgement and the master has acknowledged none for
    /// `patience`, sends them again (the master could not store them) and returns how many. A
    /// master that acknowledges others is busy, not failing: nothing is resent then.
    pub fn resend_if_stalled(&self, patience: std::time::Duration) -> usize {
        let mut last = self.last_progress.lock().unwrap_or_else(|e| e.into_inner());
        let stalled = last.is_some_and(|t| t.elapsed() >= patience);
        let waiting = self.unacked.lock().unwrap_or_else(|e| e.into_inner()).len();
        if !stalled || waiting == 0 {
            return 0;
        }
        *last = Some(Instant::now());
        drop(last);
        self.resend_unacked();
        waiting
    }

    /// Returns waiting to be sent or acknowledged.
    pub fn len(&self) -> usize {
        self.lock().len() + self.unacked.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<JobReturn>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes the return as `<dir>/<jid>` (msgpack), atomically and durably.
pub fn keep(dir: &Path, ret: &JobReturn) -> std::io::Result<()> {
    salt_proto::jid::validate_jid(&ret.jid).map_err(std::io::Error::other)?;
    let bytes = salt_proto::frame::encode(ret).map_err(std::io::Error::other)?;
    let tmp = dir.join(format!("{}.tmp", ret.jid));
    let mut f = salt_proto::private::create(&tmp)?;
    std::io::Write::write_all(&mut f, &bytes)?;
    f.sync_data()?;
    std::fs::rename(tmp, dir.join(&ret.jid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(jid: &str) -> JobReturn {
        JobReturn {
            id: "m".into(),
            jid: jid.into(),
            fun: "test.ping".into(),
            fun_args: vec![],
            ret: true.into(),
            retcode: 0,
            success: true,
            user: None,
            out: None,
            metadata: None,
        }
    }

    #[tokio::test]
    async fn unacknowledged_returns_go_out_again_first() {
        let o = Outbox::default();
        o.push(ret("1"));
        o.push(ret("2"));
        o.push(ret("3"));
        for _ in 0..2 {
            let r = o.next().await;
            o.sent(r);
        }
        o.acked("1");
        assert_eq!(o.len(), 2);
        o.resend_unacked();
        assert_eq!(o.next().await.jid, "2");
        assert_eq!(o.next().await.jid, "3");
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn unacknowledged_returns_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let o = Outbox::open(dir.path()).unwrap();
            o.push(ret("20261125000000000001"));
            o.push(ret("20261125000000000002"));
            let r = o.next().await;
            o.sent(r);
            o.acked("20261125000000000001");
        }
        let o = Outbox::open(dir.path()).unwrap();
        assert_eq!(o.next().await.jid, "20261125000000000002");
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn a_return_kept_by_a_job_process_is_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(dir.path()).unwrap();
        let jid = "20261125000000000003";
        assert!(o.adopt(jid).is_none(), "nothing kept yet");
        keep(dir.path(), &ret(jid)).unwrap();
        assert_eq!(o.adopt(jid).map(|r| r.jid), Some(jid.to_string()));
        assert!(o.adopt(jid).is_none(), "already queued");
        let r = o.next().await;
        o.sent(r);
        assert!(o.adopt(jid).is_none(), "sent, waiting for its acknowledgement");
        o.acked(jid);
        assert!(!dir.path().join(jid).exists());
        assert!(o.adopt(jid).is_none(), "acknowledged");
        assert!(o.adopt("../../etc/passwd").is_none());
        // push_from_job_process() does not write again what the job process kept.
        keep(dir.path(), &ret("20261125000000000004")).unwrap();
        let before = std::fs::metadata(dir.path().join("20261125000000000004")).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        o.push_from_job_process(ret("20261125000000000004"));
        assert_eq!(std::fs::metadata(dir.path().join("20261125000000000004")).unwrap().modified().unwrap(), before);
    }

    #[tokio::test]
    async fn returns_go_out_again_when_the_master_acknowledges_nothing() {
        let patience = std::time::Duration::from_millis(50);
        let o = Outbox::default();
        o.push(ret("1"));
        o.push(ret("2"));
        o.push(ret("3"));
        for _ in 0..3 {
            let r = o.next().await;
            o.sent(r);
        }
        assert_eq!(o.resend_if_stalled(patience), 0, "too early");
        std::thread::sleep(patience);
        o.acked("1");
        assert_eq!(o.resend_if_stalled(patience), 0, "an acknowledgement just came: the master is busy, not failing");
        std::thread::sleep(patience);
        assert_eq!(o.resend_if_stalled(patience), 2);
        assert_eq!(o.next().await.jid, "2");
        assert_eq!(o.next().await.jid, "3");
        assert_eq!(o.resend_if_stalled(patience), 0, "nothing waits for an acknowledgement");
    }
}
