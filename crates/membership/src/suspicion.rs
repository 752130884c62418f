//! Lifeguard suspicion timeouts (docs/memberlist-protocol.md section 9.6).

use std::collections::HashSet;
use std::time::Duration;

/// One running suspicion about a node.
#[derive(Debug, Clone)]
pub struct Suspicion {
    /// When the suspicion started.
    pub start: Duration,
    /// Confirmations wanted.
    pub k: u32,
    /// Lower bound.
    pub min: Duration,
    /// Upper bound.
    pub max: Duration,
    /// Accusers seen (the first counts).
    pub confirmations: HashSet<String>,
    /// Incarnation being suspected.
    pub incarnation: u32,
    /// When the node is declared dead.
    pub deadline: Duration,
}

/// `(min, max, k)` for a cluster of `n` known nodes.
pub fn bounds(
    suspicion_mult: u32,
    max_mult: u32,
    probe_interval: Duration,
    n: usize,
) -> (Duration, Duration, u32) {
    let mut k = suspicion_mult.saturating_sub(2);
    if (n as i64) - 2 < i64::from(k) {
        k = 0;
    }
    let node_scale = (n.max(1) as f64).log10().max(1.0);
    let min_ms = f64::from(suspicion_mult)
        * (node_scale * 1000.0).floor()
        * probe_interval.as_millis() as f64
        / 1000.0;
    let min = Duration::from_millis(min_ms as u64);
    let max = min * max_mult;
    (min, max, k)
}

impl Suspicion {
    /// Starts a suspicion accused by `from`.
    pub fn new(
        now: Duration,
        from: &str,
        incarnation: u32,
        min: Duration,
        max: Duration,
        k: u32,
    ) -> Self {
        let mut confirmations = HashSet::new();
        confirmations.insert(from.to_string());
        let timeout = if k >= 1 { max } else { min };
        Suspicion {
            start: now,
            k,
            min,
            max,
            confirmations,
            incarnation,
            deadline: now + timeout,
        }
    }

    /// Current timeout after `c` confirmations.
    pub fn timeout(&self, c: u32) -> Duration {
        if self.k == 0 {
            return self.min;
        }
        let frac = ((f64::from(c) + 1.0).ln() / (f64::from(self.k) + 1.0).ln()).min(1.0);
        let span = self.max.as_secs_f64() - self.min.as_secs_f64();
        let t = self.max.as_secs_f64() - frac * span;
        let t = Duration::from_millis((t * 1000.0).floor() as u64);
        t.max(self.min)
    }

    /// Records a confirmation; returns true if it was new (then re-broadcast it).
    pub fn confirm(&mut self, from: &str) -> bool {
        let c = self.confirmations.len() as u32 - 1;
        if c >= self.k || self.confirmations.contains(from) {
            return false;
        }
        self.confirmations.insert(from.to_string());
        let t = self.timeout(c + 1);
        self.deadline = self.start + t;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn spec_table() {
        let p = Duration::from_secs(1);
        let (min, max, k) = bounds(4, 6, p, 3);
        assert_eq!((ms(min), ms(max), k), (4000, 24000, 0));
        let (min, max, k) = bounds(4, 6, p, 5);
        assert_eq!((ms(min), ms(max), k), (4000, 24000, 2));
        let s = Suspicion::new(Duration::ZERO, "a", 1, min, max, k);
        assert_eq!(ms(s.timeout(0)), 24000);
        assert_eq!(ms(s.timeout(1)), 11381);
        assert_eq!(ms(s.timeout(2)), 4000);
        let (min, max, _) = bounds(4, 6, p, 50);
        assert_eq!((ms(min), ms(max)), (6792, 40752));
        let (min, max, _) = bounds(4, 6, p, 1000);
        assert_eq!((ms(min), ms(max)), (12000, 72000));
    }

    #[test]
    fn confirmations_shorten() {
        let mut s = Suspicion::new(
            Duration::ZERO,
            "a",
            1,
            Duration::from_secs(4),
            Duration::from_secs(24),
            2,
        );
        assert!(!s.confirm("a"));
        assert!(s.confirm("b"));
        assert_eq!(ms(s.deadline), 11381);
        assert!(s.confirm("c"));
        assert_eq!(ms(s.deadline), 4000);
        assert!(!s.confirm("d"));
    }
}
