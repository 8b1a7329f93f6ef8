//! Returns waiting for the master. A job's return goes here first; the connection takes them
//! out one at a time and puts one back if the write failed, so a return survives a dropped
//! connection and goes out after the reconnect.

use std::collections::VecDeque;
use std::sync::Mutex;

use salt_proto::message::JobReturn;
use tokio::sync::Notify;

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<VecDeque<JobReturn>>,
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

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<JobReturn>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}
