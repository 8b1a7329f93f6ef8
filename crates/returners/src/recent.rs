//! What a store that only appends (a file, a terminal) wrote lately, so that a record the spool
//! hands it again is not written twice.
//!
//! The spool delivers a record again when it cannot know it was stored (the store failed after
//! part of a batch, or the process stopped before the spool moved on); a database keeps one
//! row by its key, but a line appended to a file or printed stays. Such a store remembers the
//! text of the last [`Recent::CAPACITY`] lines it wrote (as 128-bit hashes, bounded memory) and
//! leaves out a line it wrote already. Redeliveries come within a batch or two (the spool hands
//! at most 1,000 records at once), well inside that window.

use std::collections::{HashSet, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};

#[derive(Debug, Default)]
pub(crate) struct Recent {
    seen: HashSet<u128>,
    order: VecDeque<u128>,
}

/// A line's fingerprint: two SipHash runs (fixed keys: the same text always gives the same
/// value) over the text; a false match among a window of 16,384 lines is about 1 in 10^30.
pub(crate) fn fingerprint(text: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        text.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

impl Recent {
    /// The lines remembered: many times the largest batch the spool hands a store.
    pub const CAPACITY: usize = 16 * 1024;

    pub fn contains(&self, print: u128) -> bool {
        self.seen.contains(&print)
    }

    /// Remembers a line written, forgetting the oldest past [`Recent::CAPACITY`].
    pub fn insert(&mut self, print: u128) {
        if !self.seen.insert(print) {
            return;
        }
        self.order.push_back(print);
        if self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// The lines of `lines` to write: those not written lately, each once, in order.
    pub fn fresh<'a, T>(&self, lines: &'a [(u128, T)]) -> Vec<&'a (u128, T)> {
        let mut in_batch = HashSet::new();
        lines.iter().filter(|(print, _)| !self.contains(*print) && in_batch.insert(*print)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_written_lately_is_left_out_and_the_window_is_bounded() {
        let mut recent = Recent::default();
        let lines: Vec<(u128, &str)> = ["a", "b", "a", "c"].iter().map(|t| (fingerprint(t), *t)).collect();
        let fresh: Vec<&str> = recent.fresh(&lines).iter().map(|(_, t)| *t).collect();
        assert_eq!(fresh, ["a", "b", "c"], "once each, in order");
        for (print, _) in &lines {
            recent.insert(*print);
        }
        assert!(recent.fresh(&lines).is_empty(), "all written already");
        assert_ne!(fingerprint("a"), fingerprint("b"));
        for n in 0..Recent::CAPACITY {
            recent.insert(fingerprint(&n.to_string()));
        }
        assert_eq!(recent.order.len(), Recent::CAPACITY);
        assert_eq!(recent.seen.len(), Recent::CAPACITY);
        assert!(!recent.contains(fingerprint("a")), "the oldest are forgotten");
    }
}
