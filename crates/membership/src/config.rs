//! Timing and sizing (docs/memberlist-protocol.md section 12): the LAN, WAN and Local profiles.

use serf_wire::Keyring;
use std::net::IpAddr;
use std::time::Duration;

/// memberlist configuration. Build one with [`Config::lan`], [`Config::wan`] or
/// [`Config::local`] and adjust fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// Node name (unique in the cluster).
    pub name: String,
    /// Advertised IP.
    pub addr: IpAddr,
    /// Advertised port (UDP and TCP).
    pub port: u16,
    /// Time between probes.
    pub probe_interval: Duration,
    /// Time to wait for a direct ack before indirect probes.
    pub probe_timeout: Duration,
    /// Relays asked per failed probe.
    pub indirect_checks: usize,
    /// Suspicion timeout multiplier.
    pub suspicion_mult: u32,
    /// Upper bound of the suspicion timeout as a multiple of the lower bound.
    pub suspicion_max_timeout_mult: u32,
    /// Lifeguard awareness bound (health score in `[0, n-1]`).
    pub awareness_max_multiplier: u32,
    /// Retransmission multiplier.
    pub retransmit_mult: u32,
    /// Time between gossip rounds.
    pub gossip_interval: Duration,
    /// Peers per gossip round.
    pub gossip_nodes: usize,
    /// Send newly queued Serf user events and queries in an extra gossip round at once,
    /// not at the next gossip tick ([`crate::Memberlist::gossip_soon`]). Not in Go's
    /// memberlist, which waits for the tick; the messages and their number are the same.
    pub eager_gossip: bool,
    /// How long dead nodes still receive gossip.
    pub gossip_to_the_dead_time: Duration,
    /// Time between anti-entropy push/pulls (scaled with cluster size).
    pub push_pull_interval: Duration,
    /// Stream timeout.
    pub tcp_timeout: Duration,
    /// Send budget per packet.
    pub udp_buffer_size: usize,
    /// Compress packets (when smaller) and streams (always).
    pub enable_compression: bool,
    /// No TCP fallback pings.
    pub disable_tcp_pings: bool,
    /// Dead nodes whose name may be reclaimed by another address after this long (0 = never).
    pub dead_node_reclaim_time: Duration,
    /// memberlist protocol version spoken (Serf: 2).
    pub protocol_version: u8,
    /// Delegate protocol range and version (Serf: 2, 5, 5).
    pub delegate_protocol_min: u8,
    /// See `delegate_protocol_min`.
    pub delegate_protocol_max: u8,
    /// See `delegate_protocol_min`.
    pub delegate_protocol_version: u8,
    /// Encryption keys (empty = off).
    pub keyring: Keyring,
    /// Require encrypted input when keys are set.
    pub gossip_verify_incoming: bool,
    /// Encrypt output when keys are set.
    pub gossip_verify_outgoing: bool,
    /// memberlist >= 0.3 label (empty = none; 0.2.x peers do not understand labels).
    pub label: Vec<u8>,
    /// Depth of the inbound handoff queue (per priority).
    pub handoff_queue_depth: usize,
    /// Where member names and identities are interned ([`crate::info`]). Clones of a
    /// configuration share it: a simulator's nodes, built from one template, store each
    /// name once.
    pub interner: crate::info::Interner,
}

/// memberlist protocol range understood.
pub const PROTOCOL_MIN: u8 = 1;
/// memberlist protocol range understood.
pub const PROTOCOL_MAX: u8 = 5;

impl Config {
    /// `DefaultLANConfig`.
    pub fn lan(name: impl Into<String>, addr: IpAddr, port: u16) -> Self {
        Config {
            name: name.into(),
            addr,
            port,
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            awareness_max_multiplier: 8,
            retransmit_mult: 4,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            eager_gossip: true,
            gossip_to_the_dead_time: Duration::from_secs(30),
            push_pull_interval: Duration::from_secs(30),
            tcp_timeout: Duration::from_secs(10),
            udp_buffer_size: serf_wire::UDP_PACKET_BUDGET,
            enable_compression: true,
            disable_tcp_pings: false,
            dead_node_reclaim_time: Duration::ZERO,
            protocol_version: 2,
            delegate_protocol_min: 2,
            delegate_protocol_max: 5,
            delegate_protocol_version: 5,
            keyring: Keyring::default(),
            gossip_verify_incoming: true,
            gossip_verify_outgoing: true,
            label: Vec::new(),
            handoff_queue_depth: 1024,
            interner: crate::info::Interner::new(),
        }
    }

    /// `DefaultWANConfig`.
    pub fn wan(name: impl Into<String>, addr: IpAddr, port: u16) -> Self {
        Config {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(3),
            suspicion_mult: 6,
            gossip_interval: Duration::from_millis(500),
            gossip_nodes: 4,
            gossip_to_the_dead_time: Duration::from_secs(60),
            push_pull_interval: Duration::from_secs(60),
            tcp_timeout: Duration::from_secs(30),
            ..Config::lan(name, addr, port)
        }
    }

    /// `DefaultLocalConfig`.
    pub fn local(name: impl Into<String>, addr: IpAddr, port: u16) -> Self {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(200),
            indirect_checks: 1,
            suspicion_mult: 3,
            retransmit_mult: 2,
            gossip_interval: Duration::from_millis(100),
            gossip_to_the_dead_time: Duration::from_secs(15),
            push_pull_interval: Duration::from_secs(15),
            tcp_timeout: Duration::from_secs(1),
            ..Config::lan(name, addr, port)
        }
    }

    /// A profile by Serf's name (`lan`, `wan`, `local`).
    pub fn profile(
        profile: &str,
        name: impl Into<String>,
        addr: IpAddr,
        port: u16,
    ) -> Option<Self> {
        match profile {
            "lan" => Some(Config::lan(name, addr, port)),
            "wan" => Some(Config::wan(name, addr, port)),
            "local" => Some(Config::local(name, addr, port)),
            _ => None,
        }
    }

    /// The six version bytes this node advertises.
    pub fn vsn(&self) -> [u8; 6] {
        [
            PROTOCOL_MIN,
            PROTOCOL_MAX,
            self.protocol_version,
            self.delegate_protocol_min,
            self.delegate_protocol_max,
            self.delegate_protocol_version,
        ]
    }

    /// Whether outgoing traffic is encrypted.
    pub fn encrypt_outgoing(&self) -> bool {
        !self.keyring.is_empty() && self.gossip_verify_outgoing
    }
}
