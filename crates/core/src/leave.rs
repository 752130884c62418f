//! A graceful leave as states and timers of the core (docs/serf-protocol.md section 7).
//!
//! Go's `Serf.Leave` blocks: it gossips a leave intent and waits for it to go out, then
//! runs memberlist's leave (a dead-about-self broadcast) and waits for that, then sleeps
//! `LeavePropagateDelay` so probes from others are still answered. Here each wait is a
//! phase with a deadline on the core's timer table; the driver only starts the leave and
//! learns from [`Serf::leave_result`](crate::Serf::leave_result) when it is over.
//!
//! One deliberate difference: when a wait times out, Go returns the error at once and
//! skips the remaining steps; we record the error and still run them, so the others
//! learn about the leave as well as they can.

use std::time::Duration;

/// Where a graceful leave stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum LeavePhase {
    /// No leave asked for.
    #[default]
    Idle,
    /// Waiting for the leave intent to be gossiped (or `deadline`).
    Intent { deadline: Duration },
    /// Waiting for memberlist's leave broadcast to go out (or `deadline`).
    Memberlist { deadline: Duration },
    /// Still answering probes until `until`, so the leave propagates.
    Propagate { until: Duration },
    /// Over; the local member is `left`.
    Done,
}

impl LeavePhase {
    /// The deadline of the current phase, for the timer table.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        match self {
            LeavePhase::Intent { deadline } | LeavePhase::Memberlist { deadline } => {
                Some(*deadline)
            }
            LeavePhase::Propagate { until } => Some(*until),
            LeavePhase::Idle | LeavePhase::Done => None,
        }
    }
}
