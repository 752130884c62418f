//! Serf-level settings and their defaults (Go's `serf.DefaultConfig`).

use std::time::Duration;

/// Serf-level settings.
#[derive(Debug, Clone)]
pub struct SerfConfig {
    /// Tags gossiped in node metadata.
    pub tags: Vec<(String, String)>,
    /// Serf protocol spoken (2..=5, agent default 5).
    pub protocol: u8,
    /// Largest user event (name + payload), default 512.
    pub user_event_size_limit: usize,
    /// Slots of the user event ring.
    pub event_buffer_size: usize,
    /// How often failed/left members are reaped.
    pub reap_interval: Duration,
    /// Failed members are erased after this long.
    pub reconnect_timeout: Duration,
    /// Left members are erased after this long.
    pub tombstone_timeout: Duration,
    /// Intents about unknown nodes are kept this long.
    pub recent_intent_timeout: Duration,
    /// Most messages per Serf broadcast queue.
    pub max_queue_depth: usize,
    /// Largest encoded query (default 1024).
    pub query_size_limit: usize,
    /// Largest encoded query response (default 1024).
    pub query_response_size_limit: usize,
    /// Slots of the query de-duplication ring.
    pub query_buffer_size: usize,
    /// How often a failed member is tried again.
    pub reconnect_interval: Duration,
    /// Run the `_serf_conflict` vote when another node claims our name (agent:
    /// `disable_name_resolution` turns it off).
    pub enable_name_conflict_resolution: bool,
    /// How long each step of a graceful leave waits for its broadcast (Go's
    /// `BroadcastTimeout`, default 5 s).
    pub broadcast_timeout: Duration,
    /// How long a leaving node keeps answering after its leave went out (Go's
    /// `LeavePropagateDelay`, default 1 s).
    pub leave_propagate_delay: Duration,
}

impl Default for SerfConfig {
    fn default() -> Self {
        SerfConfig {
            tags: Vec::new(),
            protocol: 5,
            user_event_size_limit: 512,
            event_buffer_size: 512,
            reap_interval: Duration::from_secs(15),
            reconnect_timeout: Duration::from_secs(24 * 3600),
            tombstone_timeout: Duration::from_secs(24 * 3600),
            recent_intent_timeout: Duration::from_secs(300),
            max_queue_depth: 4096,
            query_size_limit: 1024,
            query_response_size_limit: 1024,
            query_buffer_size: 512,
            reconnect_interval: Duration::from_secs(30),
            enable_name_conflict_resolution: true,
            broadcast_timeout: Duration::from_secs(5),
            leave_propagate_delay: Duration::from_secs(1),
        }
    }
}
