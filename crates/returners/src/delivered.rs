//! What a store that cannot tell a repeat (a syslog server, a chat service) remembers of the
//! returns it delivered: the spool hands a batch again after a failure part-way through, and a
//! minion may send the same return twice; a return this process delivered already is not sent
//! again. Bounded: the oldest keys are forgotten first, and a restart forgets all (so delivery
//! is at least once across a restart).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// The keys remembered at most.
const REMEMBERED: usize = 65_536;

#[derive(Default)]
pub(crate) struct Delivered {
    keys: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Delivered {
    /// The key of a return: its jid and minion id.
    pub fn key(jid: &str, id: &str) -> String {
        format!("{jid}\n{id}")
    }

    pub fn contains(&self, key: &str) -> bool {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).0.contains(key)
    }

    pub fn insert(&self, key: String) {
        let mut guard = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *guard;
        if set.insert(key.clone()) {
            order.push_back(key);
            if order.len() > REMEMBERED {
                if let Some(old) = order.pop_front() {
                    set.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_a_bounded_number_of_keys() {
        let d = Delivered::default();
        d.insert(Delivered::key("j", "m0"));
        assert!(d.contains(&Delivered::key("j", "m0")) && !d.contains(&Delivered::key("j", "m1")));
        for n in 1..=REMEMBERED {
            d.insert(Delivered::key("j", &format!("m{n}")));
        }
        assert!(!d.contains(&Delivered::key("j", "m0")), "the oldest is forgotten");
        assert!(d.contains(&Delivered::key("j", &format!("m{REMEMBERED}"))));
    }
}
