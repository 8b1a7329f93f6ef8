//! How a publish becomes a return. Each job runs concurrently with the others: by default in
//! a process of its own ([`crate::job_process`], Salt's `multiprocessing: True`), so a crash
//! or a kill ends that job only; with `multiprocessing: False` as a task of the minion.
//! Either way `cachedir/proc/<jid>` names the job while it runs.
//!
//! [`JobTable`] keeps the jids seen recently (a replayed publish is dropped). In threads mode
//! the process also knows how to abort each running task ([`abort_task`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

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

/// Threads-mode jobs of this process by jid. Process-wide because the saltutil functions,
/// plain `fn`s run by the registry, must reach it; jids are unique, so sharing is safe.
static TASKS: LazyLock<Mutex<HashMap<String, tokio::task::AbortHandle>>> = LazyLock::new(Default::default);

fn tasks() -> std::sync::MutexGuard<'static, HashMap<String, tokio::task::AbortHandle>> {
    TASKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Is the threads-mode job `jid` still running in this process?
pub fn task_running(jid: &str) -> bool {
    tasks().get(jid).is_some_and(|h| !h.is_finished())
}

/// Aborts the threads-mode job `jid` (what a signal does to a job process); false if it is
/// not running.
pub fn abort_task(jid: &str) -> bool {
    match tasks().get(jid) {
        Some(h) if !h.is_finished() => {
            h.abort();
            true
        }
        _ => false,
    }
}

pub(crate) fn track_task(jid: &str, handle: tokio::task::AbortHandle) {
    tasks().insert(jid.to_string(), handle);
}

pub(crate) fn untrack_task(jid: &str) {
    tasks().remove(jid);
}

/// Runs one job in its own task, so a slow job never holds up another, and queues its return.
/// A killed job has no return, as in Salt.
pub fn spawn(minion: Arc<Minion>, publish: Publish) {
    tokio::spawn(async move {
        tracing::info!("Executing command {} with jid {}", publish.fun, publish.jid);
        let outcome = match (&minion.job_exe, minion.multiprocessing) {
            (Some(exe), true) => crate::job_process::run(&minion, &publish, exe).await,
            _ => run_in_process(&minion, &publish).await,
        };
        let Some(outcome) = outcome else {
            tracing::info!("job {} was killed; it has no return", publish.jid);
            return;
        };
        let ret = job_return(&minion.id, &publish, outcome);
        // As Salt's minion: first to the master, then to each returner the job names.
        minion.outbox.push(ret.clone());
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

/// `multiprocessing: False`: the job is a task of the minion, its proc file carries the
/// minion's pid, and `saltutil.kill_job` aborts the task. `None` when it was aborted.
async fn run_in_process(minion: &Minion, publish: &Publish) -> Option<Outcome> {
    let pub_data = publish.to_pub_data();
    let ctx = Arc::new(JobContext {
        jid: publish.jid.clone(),
        minion_id: minion.id.clone(),
        pub_data,
        grains: minion.grains.clone(),
        opts: minion.opts(),
        returners: Arc::new(builtin_returners()),
        registry: minion.registry.clone(),
    });
    let registry = minion.registry.clone();
    let (fun, arg) = (publish.fun.clone(), publish.arg.clone());
    let task = tokio::spawn(async move { registry.execute(ctx, &fun, &arg).await });
    // Tracked before the proc file exists, so a reader never prunes the file as stale.
    track_task(&publish.jid, task.abort_handle());
    if let Err(e) = minion.proc_dir.write(&publish.jid, &publish.to_pub_data(), std::process::id()) {
        tracing::warn!("cannot write the proc file of job {}: {e}", publish.jid);
    }
    let result = task.await;
    untrack_task(&publish.jid);
    minion.proc_dir.remove(&publish.jid);
    // `execute` contains panics itself, so an error here is the abort.
    result.ok()
}

/// What `sys.list_returners` lists: every returner built in.
pub(crate) fn builtin_returners() -> Vec<String> {
    salt_returners::builtin_names().into_iter().map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn abort_stops_a_tracked_task() {
        let (jid, other) = ("20261125003832830001", "20261125003832830002");
        let task = tokio::spawn(async { tokio::time::sleep(std::time::Duration::from_secs(1000)).await });
        track_task(jid, task.abort_handle());
        assert!(task_running(jid));
        assert!(!task_running(other));
        assert!(!abort_task(other));
        assert!(abort_task(jid));
        assert!(task.await.unwrap_err().is_cancelled());
        assert!(!task_running(jid));
        assert!(!abort_task(jid), "already finished");
        untrack_task(jid);
    }
}
