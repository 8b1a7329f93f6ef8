//! The master's event bus. Every event (`salt/job/<jid>/new`, `.../ret/<id>`, `salt/auth`, ...)
//! is fired once and handed to each subscriber whose tag prefix matches.
//!
//! Each subscriber has its own bounded queue and events are offered with `try_send`: a slow
//! subscriber loses events (counted in [`EventBus::dropped`]) rather than slowing the master or
//! the other subscribers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::mpsc;

pub use salt_returners::Event;

struct Subscriber {
    prefix: String,
    tx: mpsc::Sender<Arc<Event>>,
}

#[derive(Default)]
pub struct EventBus {
    subscribers: Mutex<Vec<Subscriber>>,
    dropped: AtomicU64,
}

/// Salt 3008's `_stamp`: UTC with microseconds and an explicit offset.
pub fn stamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

impl EventBus {
    /// Events whose tag starts with `prefix` ("" for all), queued up to `capacity`.
    pub fn subscribe(&self, prefix: impl Into<String>, capacity: usize) -> mpsc::Receiver<Arc<Event>> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        self.lock().push(Subscriber { prefix: prefix.into(), tx });
        rx
    }

    /// Sets `_stamp` in `data` (in place if the caller reserved its position, else at the end)
    /// and offers the event to every matching subscriber.
    pub fn fire(&self, tag: String, mut data: Map<String, Value>) -> Arc<Event> {
        data.insert("_stamp".into(), stamp().into());
        let event = Arc::new(Event { tag, data: Value::Object(data) });
        let mut subs = self.lock();
        subs.retain(|s| !s.tx.is_closed());
        for s in subs.iter().filter(|s| event.tag.starts_with(&s.prefix)) {
            if s.tx.try_send(event.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        event
    }

    /// Events a full subscriber queue had to drop since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefix_filter_and_slow_subscriber() {
        let bus = EventBus::default();
        let mut jobs = bus.subscribe("salt/job/1/", 16);
        let mut slow = bus.subscribe("", 1);
        bus.fire("salt/auth".into(), Map::new());
        bus.fire("salt/job/1/ret/m1".into(), Map::new());
        bus.fire("salt/job/2/ret/m1".into(), Map::new());
        let e = jobs.recv().await.unwrap();
        assert_eq!(e.tag, "salt/job/1/ret/m1");
        assert!(e.data["_stamp"].as_str().unwrap().ends_with("+00:00"));
        assert!(jobs.try_recv().is_err());
        assert_eq!(slow.recv().await.unwrap().tag, "salt/auth");
        assert_eq!(bus.dropped(), 2);
    }
}
