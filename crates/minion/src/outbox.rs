//! Returns waiting for the master. A job's return goes here first; the connection takes them
//! out one at a time and puts one back if the write failed. A sent return is kept until the
//! master acknowledges it (it acknowledges once the return is on its disk), and whatever was
//! sent but not acknowledged is sent again after a reconnect — so neither a dropped connection
//! nor a master killed at the wrong moment loses a return. (The master's job cache ignores a
//! duplicate.)

use std::collections::VecDeque;
use std::sync::Mutex;

use salt_proto::message::JobReturn;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<VecDeque<JobReturn>>,
    /// Sent, not yet acknowledged, oldest first.
    unacked: Mutex<Vec<JobReturn>>,
    ready: Notify,
}

impl Outbox {
    pub fn push(&self, ret: JobReturn) {
        self.lock().push_back(ret);
        self.ready.notify_one();
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
        self.unacked.lock().unwrap_or_else(|e| e.into_inner()).push(ret);
    }

    /// The master has the return for `jid`.
    pub fn acked(&self, jid: &str) {
        self.unacked.lock().unwrap_or_else(|e| e.into_inner()).retain(|r| r.jid != jid);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(jid: &str) -> JobReturn {
        JobReturn {
            id: "m".into(), jid: jid.into(), fun: "test.ping".into(), fun_args: vec![], ret: true.into(),
            retcode: 0, success: true, user: None, out: None, metadata: None,
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
}
