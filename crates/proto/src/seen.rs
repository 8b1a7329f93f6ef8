//! A bounded memory of keys seen lately: the minion's jids (Salt's `minion_jid_queue_hwm`, so a
//! replayed publish is dropped) and the master's (jid, minion) returns (so a return sent again
//! fires its event once).

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

/// The last `capacity` distinct keys, oldest forgotten first.
#[derive(Debug)]
pub struct RecentlySeen<K> {
    order: VecDeque<K>,
    set: HashSet<K>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> RecentlySeen<K> {
    pub fn new(capacity: usize) -> RecentlySeen<K> {
        RecentlySeen { order: VecDeque::new(), set: HashSet::new(), capacity: capacity.max(1) }
    }

    /// Records `key`; false if it is remembered already.
    pub fn first_sight(&mut self, key: &K) -> bool {
        if self.set.contains(key) {
            return false;
        }
        self.order.push_back(key.clone());
        self.set.insert(key.clone());
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_is_forgotten_first() {
        let mut seen = RecentlySeen::new(2);
        assert!(seen.first_sight(&"1"));
        assert!(!seen.first_sight(&"1"));
        assert!(seen.first_sight(&"2"));
        assert!(seen.first_sight(&"3"));
        assert!(seen.first_sight(&"1"), "1 fell out of the window");
        assert!(!seen.first_sight(&"3"));
    }
}
