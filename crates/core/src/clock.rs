//! Lamport clocks (docs/serf-protocol.md section 4).
//!
//! Arithmetic wraps at `u64::MAX` exactly as Go's `serf.LamportClock` does (`other + 1`
//! on a `uint64`): a peer sending the largest value moves every clock to 0 rather than
//! pinning it there. Saturating instead would leave our nodes at `u64::MAX` while Go's
//! wrap, and from then on each side would reject the other's events as old.

/// A Lamport clock: starts at 0; `witness(v)` moves it to `v + 1` (wrapping) if `v >= now`.
#[derive(Debug, Clone, Default)]
pub struct LamportClock {
    t: u64,
}

impl LamportClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Current value.
    pub fn time(&self) -> u64 {
        self.t
    }

    /// Adds one and returns the new value.
    pub fn increment(&mut self) -> u64 {
        self.t = self.t.wrapping_add(1);
        self.t
    }

    /// Observes a remote value. Returns true when the clock wrapped past `u64::MAX` to 0.
    pub fn witness(&mut self, v: u64) -> bool {
        if v >= self.t {
            self.t = v.wrapping_add(1);
            return self.t == 0;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn witness_moves_past() {
        let mut c = LamportClock::new();
        assert_eq!(c.increment(), 1);
        c.witness(0);
        assert_eq!(c.time(), 1);
        c.witness(1);
        assert_eq!(c.time(), 2);
        c.witness(10);
        assert_eq!(c.time(), 11);
    }

    /// Go's clock wraps: `u64::MAX` from a peer (or a snapshot) moves it to 0, and it keeps
    /// counting from there like Go's does.
    #[test]
    fn wraps_at_the_top_like_go() {
        let mut c = LamportClock::new();
        assert!(c.witness(u64::MAX));
        assert_eq!(c.time(), 0);
        assert_eq!(c.increment(), 1);
        c.witness(u64::MAX - 1);
        assert_eq!(c.time(), u64::MAX);
        assert_eq!(c.increment(), 0);
    }
}
