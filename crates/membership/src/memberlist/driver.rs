//! What the core and its driver exchange: transmits, timers, stream purposes, counters.

use std::net::SocketAddr;
use std::time::Duration;

/// Something the driver must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A framed UDP datagram.
    Packet {
        /// Destination.
        to: SocketAddr,
        /// Bytes.
        data: Vec<u8>,
    },
    /// Open a stream to `to` within `timeout`, write `data`, read one framed reply, and
    /// hand the outcome to [`Machine::handle_stream_result`](crate::Machine::handle_stream_result)
    /// with this `purpose`.
    Stream {
        /// Destination.
        to: SocketAddr,
        /// Framed request.
        data: Vec<u8>,
        /// Time allowed for connecting, writing and reading the reply.
        timeout: Duration,
        /// What the exchange is for.
        purpose: StreamPurpose,
    },
}

/// The membership core's timers (see [`Memberlist::timers`](super::Memberlist::timers)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The next probe round.
    Probe,
    /// A probe got no direct ack in time: ask others to probe (indirect pings).
    IndirectProbe,
    /// The probe round's deadline: the target is suspected if nobody acked.
    ProbeTimeout,
    /// The next gossip round.
    Gossip,
    /// An extra gossip round for a newly queued Serf user event or query (see
    /// [`Memberlist::gossip_soon`](super::Memberlist::gossip_soon)).
    EagerGossip,
    /// The next anti-entropy push/pull.
    PushPull,
    /// A suspicion timeout (one per suspected node).
    Suspicion,
    /// A relayed ping expires (and a nack may be due).
    RelayExpiry,
}

/// What a stream exchange is for; the driver passes it back with the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPurpose {
    /// A join push/pull the driver started (the reply is merged; errors are reported).
    Join,
    /// Periodic anti-entropy push/pull, or Serf's reconnect.
    PushPull,
    /// TCP fallback ping expecting an ack with this sequence number.
    Ping {
        /// Sequence number expected in the ack.
        seq: u32,
    },
}

/// Counters for observability and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub packets_in: u64,
    /// Datagrams dropped as undecodable (bad CRC, decryption, malformed).
    pub packets_dropped: u64,
    /// Messages inside datagrams that failed to decode.
    pub messages_dropped: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Probes that failed.
    pub probes_failed: u64,
    /// Times we refuted an accusation.
    pub refutations: u64,
    /// Push/pulls refused by the version check.
    pub push_pull_rejected: u64,
    /// Gossip rounds run (the driver times the timer step that ran one).
    pub gossip_rounds: u64,
    /// Of `gossip_rounds`, the extra rounds asked for by [`Memberlist::gossip_soon`](super::Memberlist::gossip_soon).
    pub eager_gossip_rounds: u64,
}
