//! How a publish becomes a return. Each job runs concurrently with the others: by default in
//! a process of its own ([`crate::job_process`], Salt's `multiprocessing: True`), so a crash
//! or a kill ends that job only; with `multiprocessing: False` in a task of the minion.
//! Either way `cachedir/proc/<jid>` names the job while it runs (an in-process job done in
//! one step has none: see [`run_in_process`]).
//!
//! [`JobTable`] keeps the jids seen recently (a replayed publish is dropped). In threads mode
//! the process also knows how to abort each running job ([`abort_task`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::Poll;

use futures::future::{abortable, AbortHandle};

use salt_modules::{JobContext, Outcome};
use salt_proto::message::{JobReturn, Publish};
use salt_proto::seen::RecentlySeen;

use crate::Minion;

/// The jids seen lately (Salt's `minion_jid_queue_hwm`): a replayed publish is dropped.
pub struct JobTable {
    seen: Mutex<RecentlySeen<String>>,
}

impl JobTable {
    pub fn new(capacity: usize) -> JobTable {
        JobTable { seen: Mutex::new(RecentlySeen::new(capacity)) }
    }

    /// Records the jid; false if it was seen already (a replay or a duplicate delivery).
    pub fn first_sight(&self, jid: &str) -> bool {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).first_sight(&jid.to_string())
    }
}

/// Threads-mode jobs of this process by minion id and jid. Process-wide because the saltutil
/// functions, plain `fn`s run by the registry, must reach it; keyed by the minion too because
/// the minions of a swarm run the same jid side by side.
static TASKS: LazyLock<Mutex<HashMap<(String, String), AbortHandle>>> = LazyLock::new(Default::default);

fn tasks() -> std::sync::MutexGuard<'static, HashMap<(String, String), AbortHandle>> {
    TASKS.lock().unwrap_or_else(|e| e.into_inner())
}

fn task_key(minion_id: &str, jid: &str) -> (String, String) {
    (minion_id.to_string(), jid.to_string())
}

/// Is the threads-mode job `jid` of minion `minion_id` still running in this process?
pub fn task_running(minion_id: &str, jid: &str) -> bool {
    tasks().get(&task_key(minion_id, jid)).is_some_and(|h| !h.is_aborted())
}

/// Aborts the threads-mode job `jid` of minion `minion_id` (what a signal does to a job
/// process); false if it is not running.
pub fn abort_task(minion_id: &str, jid: &str) -> bool {
    match tasks().get(&task_key(minion_id, jid)) {
        Some(h) if !h.is_aborted() => {
            h.abort();
            true
        }
        _ => false,
    }
}

pub(crate) fn track_task(minion_id: &str, jid: &str, handle: AbortHandle) {
    tasks().insert(task_key(minion_id, jid), handle);
}

pub(crate) fn untrack_task(minion_id: &str, jid: &str) {
    tasks().remove(&task_key(minion_id, jid));
}

/// Runs one job in its own task, so a slow job never holds up another, and queues its return.
/// A killed job has no return, as in Salt.
pub fn spawn(minion: Arc<Minion>, publish: Publish) {
    tokio::spawn(async move {
        tracing::info!("Executing command {} with jid {}", publish.fun, publish.jid);
        let job_exe = minion.job_exe.as_ref().filter(|_| minion.multiprocessing);
        let outcome = match job_exe {
            Some(exe) => crate::job_process::run(&minion, &publish, exe).await,
            None => run_in_process(&minion, &publish).await,
        };
        let Some(outcome) = outcome else {
            tracing::info!("job {} was killed; it has no return", publish.jid);
            return;
        };
        let ret = job_return(&minion.id, &publish, outcome);
        // As Salt's minion: first to the master, then to each returner the job names.
        if job_exe.is_some() {
            minion.outbox.push_from_job_process(ret.clone());
        } else {
            minion.outbox.push(ret.clone());
        }
        minion.returners.hand_over(&ret, &publish.ret, &publish.kwargs);
    });
}

/// The return Salt's minion sends for `publish` once the job produced `outcome`.
pub(crate) fn job_return(minion_id: &str, publish: &Publish, outcome: Outcome) -> JobReturn {
    JobReturn {
        id: minion_id.to_string(),
        jid: publish.jid.clone(),
        fun: publish.fun.clone(),
        fun_args: publish.arg.clone(),
        ret: outcome.ret,
        retcode: outcome.retcode,
        success: outcome.success,
        user: Some(publish.user.clone()),
        out: outcome.out,
        metadata: publish.kwargs.get("metadata").cloned(),
    }
}

/// `multiprocessing: False`: the job runs in the minion's task for it, its proc file carries
/// the minion's pid, and `saltutil.kill_job` aborts it. `None` when it was aborted.
async fn run_in_process(minion: &Minion, publish: &Publish) -> Option<Outcome> {
    let ctx = Arc::new(JobContext {
        jid: publish.jid.clone(),
        minion_id: minion.id.clone(),
        pub_data: publish.to_pub_data(),
        grains: minion.grains.clone(),
        opts: minion.opts(),
        returners: builtin_returners(),
        registry: minion.registry.clone(),
    });
    let (job, abort) = abortable(minion.registry.execute(ctx.clone(), &publish.fun, &publish.arg));
    let mut job = std::pin::pin!(job);
    // A job done at its first poll (`test.ping`, `grains.item`, ...) ran in one step: to any
    // reader it is a job that ended before the reader looked, so it needs no proc file (which
    // would cost more than the job). Only a job that waits on something gets one.
    if let Poll::Ready(result) = futures::poll!(job.as_mut()) {
        return result.ok();
    }
    // Tracked before the proc file exists, so a reader never prunes the file as stale.
    track_task(&minion.id, &publish.jid, abort);
    if let Err(e) = minion.proc_dir.write(&publish.jid, &ctx.pub_data, std::process::id()) {
        tracing::warn!("cannot write the proc file of job {}: {e}", publish.jid);
    }
    let result = job.await;
    untrack_task(&minion.id, &publish.jid);
    minion.proc_dir.remove(&publish.jid);
    // An error is the abort.
    result.ok()
}

/// What `sys.list_returners` lists: every returner built in (made once, shared by every job).
pub(crate) fn builtin_returners() -> Arc<Vec<String>> {
    static NAMES: LazyLock<Arc<Vec<String>>> =
        LazyLock::new(|| Arc::new(salt_returners::builtin_names().into_iter().map(str::to_string).collect()));
    NAMES.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abort_stops_a_tracked_job_of_that_minion_only() {
        let (jid, other) = ("20261125003832830001", "20261125003832830002");
        let (job, handle) = abortable(tokio::time::sleep(std::time::Duration::from_secs(1000)));
        track_task("m1", jid, handle);
        // A swarm's second minion runs the same jid.
        let (_twin, twin_handle) = abortable(std::future::pending::<()>());
        track_task("m2", jid, twin_handle);
        assert!(task_running("m1", jid));
        assert!(!task_running("m1", other));
        assert!(!abort_task("m1", other));
        assert!(abort_task("m1", jid));
        assert!(job.await.is_err(), "aborted");
        assert!(!task_running("m1", jid));
        assert!(!abort_task("m1", jid), "already aborted");
        assert!(task_running("m2", jid), "the other minion's job runs on");
        untrack_task("m1", jid);
        assert!(task_running("m2", jid), "untracked for m1 only");
        untrack_task("m2", jid);
        assert!(!task_running("m2", jid));
    }
}
