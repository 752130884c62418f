//! Lamport clocks (docs/serf-protocol.md section 4).

/// A Lamport clock: starts at 0; `witness(v)` moves it to `v + 1` if `v >= now`.
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
        self.t += 1;
        self.t
    }

    /// Observes a remote value.
    pub fn witness(&mut self, v: u64) {
        if v >= self.t {
            self.t = v.saturating_add(1);
        }
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
}
