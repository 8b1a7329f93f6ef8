//! The minion's jobs: which are running (for `saltutil.running` / `find_job`), which jids were
//! seen recently (a replayed publish is dropped), and how a publish becomes a return.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use salt_modules::JobContext;
use salt_proto::message::{JobReturn, Publish};
use serde_json::{Map, Value};

use crate::Minion;

pub struct JobTable {
    running: Mutex<HashMap<String, Map<String, Value>>>,
    seen: Mutex<SeenJids>,
}

/// The last `capacity` jids (Salt's `minion_jid_queue_hwm`).
struct SeenJids {
    order: VecDeque<String>,
    set: HashSet<String>,
    capacity: usize,
}

impl JobTable {
    pub fn new(capacity: usize) -> JobTable {
        JobTable {
            running: Mutex::new(HashMap::new()),
            seen: Mutex::new(SeenJids { order: VecDeque::new(), set: HashSet::new(), capacity: capacity.max(1) }),
        }
    }

    /// Records the jid; false if it was seen already (a replay or a duplicate delivery).
    pub fn first_sight(&self, jid: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.set.contains(jid) {
            return false;
        }
        seen.order.push_back(jid.to_string());
        seen.set.insert(jid.to_string());
        while seen.order.len() > seen.capacity {
            if let Some(old) = seen.order.pop_front() {
                seen.set.remove(&old);
            }
        }
        true
    }

    fn start(&self, jid: &str, data: Map<String, Value>) {
        self.lock().insert(jid.to_string(), data);
    }

    fn finish(&self, jid: &str) {
        self.lock().remove(jid);
    }

    /// Publish data plus `pid` of each running job, oldest jid first.
    pub fn running(&self) -> Vec<Map<String, Value>> {
        let mut jobs: Vec<_> = self.lock().values().cloned().collect();
        jobs.sort_by(|a, b| a.get("jid").and_then(Value::as_str).cmp(&b.get("jid").and_then(Value::as_str)));
        jobs
    }

    pub fn find(&self, jid: &str) -> Option<Map<String, Value>> {
        self.lock().get(jid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Map<String, Value>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs one job in its own task, so a slow job never holds up another, and queues its return.
pub fn spawn(minion: Arc<Minion>, publish: Publish) {
    tokio::spawn(async move {
        let mut data = publish.to_pub_data();
        data.insert("pid".into(), std::process::id().into());
        minion.jobs.start(&publish.jid, data);
        tracing::info!("Executing command {} with jid {}", publish.fun, publish.jid);
        let ctx = Arc::new(JobContext {
            jid: publish.jid.clone(),
            minion_id: minion.id.clone(),
            pub_data: publish.to_pub_data(),
            grains: minion.grains.clone(),
            opts: minion.opts.clone(),
            returners: Arc::new(Vec::new()),
            registry: minion.registry.clone(),
        });
        let outcome = minion.registry.execute(ctx, &publish.fun, &publish.arg).await;
        minion.jobs.finish(&publish.jid);
        minion.outbox.push(JobReturn {
            id: minion.id.clone(),
            jid: publish.jid,
            fun: publish.fun,
            fun_args: publish.arg,
            ret: outcome.ret,
            retcode: outcome.retcode,
            success: outcome.success,
            user: Some(publish.user),
            out: outcome.out,
            metadata: publish.kwargs.get("metadata").cloned(),
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_jids_are_bounded() {
        let t = JobTable::new(2);
        assert!(t.first_sight("1"));
        assert!(!t.first_sight("1"));
        assert!(t.first_sight("2"));
        assert!(t.first_sight("3"));
        assert!(t.first_sight("1"), "1 fell out of the window");
    }
}
