//! Reconnect delays: exponential, capped, and jittered, so that after a master restart the
//! minions come back spread out rather than all in the same second.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    /// `base` is Salt's `recon_default`, `max` its `recon_max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        let base = base.max(Duration::from_millis(1));
        Backoff { base, max: max.max(base), current: base }
    }

    /// The next delay: uniformly random in [current/2, current], then the window doubles.
    pub fn next_delay(&mut self) -> Duration {
        let cur = self.current.as_millis() as u64;
        let delay = rand::rng().random_range(cur / 2..=cur);
        self.current = (self.current * 2).min(self.max);
        Duration::from_millis(delay)
    }

    /// After a successful connection, start again from `base`.
    pub fn reset(&mut self) {
        self.current = self.base;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay().as_millis()).collect();
        assert!((50..=100).contains(&delays[0]), "{delays:?}");
        assert!((100..=200).contains(&delays[1]), "{delays:?}");
        assert!(delays[7] <= 1000 && delays[7] >= 500, "{delays:?}");
        b.reset();
        assert!(b.next_delay().as_millis() <= 100);
        // Jitter: many draws at the same step are not all equal.
        let draws: std::collections::HashSet<_> =
            (0..50).map(|_| Backoff::new(Duration::from_millis(1000), Duration::from_secs(10)).next_delay()).collect();
        assert!(draws.len() > 5);
    }
}
