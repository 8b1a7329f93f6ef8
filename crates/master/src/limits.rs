//! Caps on what one peer may hold at once: connections authenticating as one minion id,
//! control-socket sessions of one local user.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// At most `max` permits per key at once.
pub(crate) struct PerKeyLimit<K: Hash + Eq + Clone> {
    max: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One permit, given back when dropped.
pub(crate) struct PerKeyPermit<K: Hash + Eq + Clone> {
    limit: Arc<PerKeyLimit<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> PerKeyLimit<K> {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(PerKeyLimit { max, held: Mutex::new(HashMap::new()) })
    }

    /// A permit for `key`, or None when `max` are held for it already.
    pub(crate) fn try_acquire(self: &Arc<Self>, key: K) -> Option<PerKeyPermit<K>> {
        let mut held = self.lock();
        let n = held.entry(key.clone()).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PerKeyPermit { limit: self.clone(), key })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, usize>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Hash + Eq + Clone> Drop for PerKeyPermit<K> {
    fn drop(&mut self) {
        let mut held = self.limit.lock();
        if let Some(n) = held.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_per_key_come_back_when_dropped() {
        let limit = PerKeyLimit::new(2);
        let a1 = limit.try_acquire("a").unwrap();
        let _a2 = limit.try_acquire("a").unwrap();
        assert!(limit.try_acquire("a").is_none());
        let _b = limit.try_acquire("b").unwrap();
        drop(a1);
        assert!(limit.try_acquire("a").is_some());
        drop(_b);
        assert!(!limit.lock().contains_key("b"));
    }
}
