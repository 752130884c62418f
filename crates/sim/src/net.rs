//! Virtual network parameters and counters.

use std::time::Duration;

/// Properties of one directed link (or the default for every link).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Probability in `[0, 1]` that a datagram is lost. Streams (TCP) are never lost
    /// randomly, only cut by partitions, crashes and pauses.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Uniform extra delay in `[0, jitter)`.
    pub jitter: Duration,
}

impl LinkParams {
    /// A LAN-like link: 0.5 ms + up to 0.5 ms jitter, no loss.
    pub const LAN: LinkParams = LinkParams {
        loss: 0.0,
        delay: Duration::from_micros(500),
        jitter: Duration::from_micros(500),
    };
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams::LAN
    }
}

/// Network-wide settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    /// Parameters of every link without an override.
    pub default_link: LinkParams,
    /// Datagrams a paused node's kernel buffers before dropping (Linux caps a UDP receive
    /// buffer at `rmem_max`, about 208 KiB by default, i.e. a few hundred small datagrams).
    pub pause_buffer_packets: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            default_link: LinkParams::LAN,
            pause_buffer_packets: 256,
        }
    }
}

/// Network counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub packets_sent: u64,
    /// Datagrams handed to a core.
    pub packets_delivered: u64,
    /// Datagrams lost (sum of the `dropped_*` packet counters).
    pub packets_dropped: u64,
    /// ... by random loss.
    pub dropped_loss: u64,
    /// ... by a partition.
    pub dropped_partition: u64,
    /// ... because the destination is crashed, stopped or unknown.
    pub dropped_down: u64,
    /// ... because a paused node's buffer was full.
    pub dropped_buffer: u64,
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Datagram bytes delivered.
    pub bytes_delivered: u64,
    /// Streams opened (push/pull, join, TCP fallback ping).
    pub streams_opened: u64,
    /// Streams whose reply reached the initiator.
    pub streams_completed: u64,
    /// Streams that timed out without a reply.
    pub streams_failed: u64,
    /// Stream bytes (requests and replies).
    pub stream_bytes: u64,
}

/// Per-node traffic counters (datagrams only).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct NodeNetStats {
    /// Datagrams sent.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams processed.
    pub packets_in: u64,
    /// Bytes processed.
    pub bytes_in: u64,
}
