//! The driver-facing shape shared by every sans-IO node in this workspace.
//!
//! A [`Machine`] takes datagrams, stream requests, stream outcomes and the current time,
//! and gives back transmits and the next deadline, in the manner of quinn-proto's
//! `handle_*` / `poll_*` / `poll_timeout`. Both drivers, the tokio runtime
//! (`serf-runtime`) and the simulator (`serf-sim`), run any `Machine` the same way:
//!
//! 1. on a datagram: [`Machine::handle_packet`];
//! 2. on an inbound stream request: decode with the memberlist's stream options,
//!    [`Machine::handle_stream`], write back the reply it returns;
//! 3. for each [`Transmit`] from [`Machine::poll_transmit`]: send a datagram, or open a
//!    stream, exchange, and report the outcome to [`Machine::handle_stream_result`] with
//!    the transmit's [`StreamPurpose`];
//! 4. at [`Machine::poll_timeout`]: [`Machine::handle_timeout`].
//!
//! [`Memberlist`] is a machine on its own; `serf_core::Serf` is the machine with the Serf
//! layer on top.

use crate::memberlist::{Delegate, Memberlist, StreamPurpose, Transmit};
use serf_wire::stream::StreamMsg;
use std::net::SocketAddr;
use std::time::Duration;

/// A sans-IO node; see the [module docs](self).
pub trait Machine {
    /// The memberlist delegate inside.
    type Delegate: Delegate;

    /// The membership core (node states, configuration, stream options).
    fn memberlist(&self) -> &Memberlist<Self::Delegate>;

    /// A datagram from `from` arrived at `now`.
    fn handle_packet(&mut self, now: Duration, from: SocketAddr, data: &[u8]);

    /// A decoded stream request from `from`; returns the framed reply to write, if any.
    fn handle_stream(&mut self, now: Duration, from: SocketAddr, msg: StreamMsg)
        -> Option<Vec<u8>>;

    /// The outcome of a stream exchange the machine asked for, or of a join.
    fn handle_stream_result(
        &mut self,
        now: Duration,
        purpose: StreamPurpose,
        reply: Result<StreamMsg, String>,
    ) -> Result<(), String>;

    /// Runs every timer due at `now`.
    fn handle_timeout(&mut self, now: Duration);

    /// When [`Machine::handle_timeout`] must next run.
    fn poll_timeout(&self) -> Duration;

    /// The next datagram or stream exchange to perform.
    fn poll_transmit(&mut self) -> Option<Transmit>;

    /// Starts a join: the framed push/pull to exchange with each seed (purpose
    /// [`StreamPurpose::Join`]). `replay`: also deliver user events older than the join.
    fn join_request(&mut self, replay: bool) -> Vec<u8>;

    /// A join finished having contacted `contacted` nodes.
    fn join_finished(&mut self, now: Duration, contacted: usize);

    /// Starts a graceful leave; the machine works through it on its own timers.
    fn start_leave(&mut self, now: Duration) -> Result<(), String>;

    /// Whether a graceful leave has completed (the driver may stop the node).
    fn leave_finished(&self) -> bool;
}

impl<D: Delegate> Machine for Memberlist<D> {
    type Delegate = D;

    fn memberlist(&self) -> &Memberlist<D> {
        self
    }

    fn handle_packet(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        Memberlist::handle_packet(self, now, from, data);
    }

    fn handle_stream(
        &mut self,
        now: Duration,
        from: SocketAddr,
        msg: StreamMsg,
    ) -> Option<Vec<u8>> {
        Memberlist::handle_stream(self, now, from, msg)
    }

    fn handle_stream_result(
        &mut self,
        now: Duration,
        purpose: StreamPurpose,
        reply: Result<StreamMsg, String>,
    ) -> Result<(), String> {
        Memberlist::handle_stream_result(self, now, purpose, reply)
    }

    fn handle_timeout(&mut self, now: Duration) {
        Memberlist::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Duration {
        Memberlist::poll_timeout(self)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Memberlist::poll_transmit(self)
    }

    fn join_request(&mut self, _replay: bool) -> Vec<u8> {
        self.push_pull_request(true)
    }

    fn join_finished(&mut self, _now: Duration, _contacted: usize) {}

    fn start_leave(&mut self, now: Duration) -> Result<(), String> {
        self.leave(now);
        Ok(())
    }

    fn leave_finished(&self) -> bool {
        self.is_leaving() && self.leave_broadcast_done()
    }
}
