//! What a sink that cannot ask its service what it holds (an event collector, a chat, a
//! webhook) remembers so that a return is delivered once: the spool sends a batch again after a
//! failure in its middle, and the same return may come twice (a batch holding it twice, the
//! master passing it again). Keyed by (jid, minion id), as a job cache keeps the first return of
//! a minion for a job; the newest [`REMEMBERED`] keys, in memory (a restart forgets them).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How many deliveries are remembered: far more than a spool's batch, few enough to be small.
pub(crate) const REMEMBERED: usize = 16 * 1024;

/// `(jid, minion id)`.
type Key = (String, String);

#[derive(Default)]
pub(crate) struct Delivered {
    /// The keys, and the same in the order they came (the oldest first, to forget).
    keys: Mutex<(HashSet<Key>, VecDeque<Key>)>,
}

impl Delivered {
    /// Whether the return of `id` for `jid` was delivered already.
    pub(crate) fn contains(&self, jid: &str, id: &str) -> bool {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.0.contains(&(jid.to_string(), id.to_string()))
    }

    /// Remembers that the return of `id` for `jid` was delivered, forgetting the oldest past
    /// [`REMEMBERED`].
    pub(crate) fn insert(&self, jid: &str, id: &str) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *keys;
        let key = (jid.to_string(), id.to_string());
        if set.insert(key.clone()) {
            order.push_back(key);
            if order.len() > REMEMBERED {
                if let Some(oldest) = order.pop_front() {
                    set.remove(&oldest);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_newest_and_forgets_the_oldest() {
        let d = Delivered::default();
        d.insert("1", "a");
        d.insert("1", "a");
        assert!(d.contains("1", "a") && !d.contains("1", "b"));
        for n in 0..REMEMBERED {
            d.insert(&n.to_string(), "x");
        }
        assert!(!d.contains("1", "a"), "the oldest went");
        assert!(d.contains(&(REMEMBERED - 1).to_string(), "x"));
    }
}
