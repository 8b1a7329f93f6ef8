//! A bounded memory of keys seen lately: the minion's jids (Salt's `minion_jid_queue_hwm`, so a
//! replayed publish is dropped) and the master's (jid, minion) returns (so a return sent again
//! fires its event once and is stored once).

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// The last `capacity` distinct keys, oldest forgotten first, each with a value (`()` when
/// only the sight matters).
#[derive(Debug)]
pub struct RecentlySeen<K, V = ()> {
    order: VecDeque<K>,
    map: HashMap<K, V>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone, V> RecentlySeen<K, V> {
    pub fn new(capacity: usize) -> RecentlySeen<K, V> {
        RecentlySeen { order: VecDeque::new(), map: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Records `key`; false if it is remembered already.
    pub fn first_sight(&mut self, key: &K) -> bool
    where
        V: Default,
    {
        if self.map.contains_key(key) {
            return false;
        }
        self.insert(key.clone(), V::default());
        true
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Remembers `key` with `value`; a key remembered already keeps its place in the window.
    pub fn insert(&mut self, key: K, value: V) {
        if let Some(v) = self.map.get_mut(&key) {
            *v = value;
            return;
        }
        self.order.push_back(key.clone());
        self.map.insert(key, value);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_is_forgotten_first() {
        let mut seen = RecentlySeen::<_>::new(2);
        assert!(seen.first_sight(&"1"));
        assert!(!seen.first_sight(&"1"));
        assert!(seen.first_sight(&"2"));
        assert!(seen.first_sight(&"3"));
        assert!(seen.first_sight(&"1"), "1 fell out of the window");
        assert!(!seen.first_sight(&"3"));
    }

    #[test]
    fn a_value_is_updated_in_place() {
        let mut seen = RecentlySeen::new(2);
        seen.insert("a", 1);
        seen.insert("b", 2);
        seen.insert("a", 3);
        assert_eq!(seen.get(&"a"), Some(&3));
        seen.insert("c", 4);
        assert_eq!(seen.get(&"a"), None, "a kept its place, the oldest");
        assert_eq!(seen.get(&"b"), Some(&2));
    }
}
