//! The membership state machine (docs/memberlist-protocol.md sections 8-11), sans-IO.
//!
//! Drive it with [`Memberlist::handle_packet`], [`Memberlist::handle_stream`],
//! [`Memberlist::handle_push_pull_reply`], [`Memberlist::handle_stream_ping_result`] and
//! [`Memberlist::handle_timeout`]; collect output with [`Memberlist::poll_transmit`] and
//! sleep until [`Memberlist::poll_timeout`]. Time is a `Duration` since an arbitrary origin
//! chosen by the driver; randomness comes from the seed given to [`Memberlist::new`].

use crate::config::Config;
use crate::info::{Name, Stamp};
use crate::queue::{retransmit_limit, BroadcastQueue};
use crate::rng::Rng;
use crate::suspicion::{self, Suspicion};
use serf_wire::messages::{
    Ack, Alive, IndirectPing, Message, Nack, NodeStateKind, Ping, PushNodeState, PushPull, Suspect,
};
use serf_wire::packet::{self, InboundOptions, PacketOptions};
use serf_wire::stream::{self, StreamMsg, StreamOptions};
use serf_wire::{encode_push_pull, Error as WireError};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

mod driver;
mod gossip;
mod node;
mod probe;
mod state;

pub use driver::{Stats, StreamPurpose, Timer, Transmit};
use node::Rec;
pub use node::{Delegate, NoDelegate, Node};

#[derive(Debug)]
struct Probe {
    seq: u32,
    target: String,
    /// The target's incarnation when the probe started (what a failure accuses).
    incarnation: u32,
    sent: Duration,
    indirect_at: Duration,
    deadline: Duration,
    indirect_sent: bool,
    expected_nacks: u32,
    nacks: u32,
    tcp_ok: bool,
}

#[derive(Debug)]
struct Relay {
    requester: SocketAddr,
    req_seq: u32,
    nack: bool,
    expires: Duration,
}

const LEAVE_TOKEN: u64 = 1;

/// Resync push/pulls allowed at once (see [`Memberlist::resync_with`]).
const RESYNC_BURST: f64 = 4.0;
/// Resync push/pulls allowed per second beyond the burst.
const RESYNC_PER_SEC: f64 = 0.5;
/// Nodes remembered for the per-node resync cooldown.
const RESYNC_TRACKED: usize = 64;

/// The membership core.
#[derive(Debug)]
pub struct Memberlist<D> {
    cfg: Config,
    delegate: D,
    rng: Rng,
    /// Ordered by name, so every iteration (and every random pick) depends only on the seed.
    nodes: BTreeMap<Name, Rec>,
    /// `nodes.len()` when the map was last repacked (see `merge_remote`).
    nodes_packed: usize,
    probe_list: Vec<Name>,
    probe_index: usize,
    incarnation: u32,
    seq: u32,
    health: u32,
    suspicions: HashMap<String, Suspicion>,
    probe: Option<Probe>,
    relays: HashMap<u32, Relay>,
    queue: BroadcastQueue,
    next_probe: Duration,
    next_gossip: Duration,
    /// An extra gossip round is wanted ([`Memberlist::gossip_soon`]).
    eager_wanted: bool,
    /// When the last extra round went out.
    last_eager: Option<Duration>,
    next_push_pull: Duration,
    leaving: bool,
    leave_done: bool,
    out: VecDeque<Transmit>,
    stats: Stats,
    /// When we last started a resync push/pull with a node, by name (see
    /// [`Memberlist::resync_with`]).
    resync_last: HashMap<String, Duration>,
    /// Resync push/pulls still allowed now (a token bucket).
    resync_budget: f64,
    /// When `resync_budget` was last refilled.
    resync_budget_at: Duration,
}

impl<D: Delegate> Memberlist<D> {
    /// Creates the core at time `now`: the local node is alive (incarnation 1) and its alive
    /// message is queued for gossip. `seed` drives every random choice.
    pub fn new(cfg: Config, delegate: D, seed: u64, now: Duration) -> Self {
        let mut rng = Rng::new(seed);
        let jitter = |rng: &mut Rng, d: Duration| now + d.mul_f64(rng.unit());
        let next_probe = jitter(&mut rng, cfg.probe_interval);
        let next_gossip = jitter(&mut rng, cfg.gossip_interval);
        let next_push_pull = jitter(&mut rng, cfg.push_pull_interval);
        let mut m = Memberlist {
            cfg,
            delegate,
            rng,
            nodes: BTreeMap::new(),
            nodes_packed: 0,
            probe_list: Vec::new(),
            probe_index: 0,
            incarnation: 0,
            seq: 0,
            health: 0,
            suspicions: HashMap::new(),
            probe: None,
            relays: HashMap::new(),
            queue: BroadcastQueue::new(),
            next_probe,
            next_gossip,
            eager_wanted: false,
            last_eager: None,
            next_push_pull,
            leaving: false,
            leave_done: false,
            out: VecDeque::new(),
            stats: Stats::default(),
            resync_last: HashMap::new(),
            resync_budget: RESYNC_BURST,
            resync_budget_at: now,
        };
        m.incarnation = 1;
        let a = m.local_alive(1);
        m.alive_node(now, a, true);
        m
    }

    // ----- accessors -----

    /// Configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The delegate.
    pub fn delegate(&self) -> &D {
        &self.delegate
    }

    /// The delegate, mutably.
    pub fn delegate_mut(&mut self) -> &mut D {
        &mut self.delegate
    }

    /// Every known node (including the local one), in no particular order (each a copy).
    pub fn nodes(&self) -> impl Iterator<Item = Node> + '_ {
        self.nodes.values().map(Rec::node)
    }

    /// Number of known nodes (including the local one and dead or left ones).
    pub fn num_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// One node by name (a copy).
    pub fn node(&self, name: &str) -> Option<Node> {
        self.nodes.get(name).map(Rec::node)
    }

    /// `(state, incarnation)` of one node, without copying its record.
    pub fn node_state(&self, name: &str) -> Option<(NodeStateKind, u32)> {
        self.nodes.get(name).map(|n| (n.state, n.incarnation))
    }

    /// The local node (a copy).
    pub fn local_node(&self) -> Option<Node> {
        self.node(&self.cfg.name)
    }

    /// Alive or suspect nodes (memberlist's `NumMembers`).
    pub fn num_alive(&self) -> usize {
        self.nodes.values().filter(|n| !n.dead_or_left()).count()
    }

    /// Lifeguard health score (0 = healthy).
    pub fn health(&self) -> u32 {
        self.health
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The local incarnation.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Installed keys, for key management by the layer above.
    pub fn keyring_mut(&mut self) -> &mut serf_wire::Keyring {
        &mut self.cfg.keyring
    }

    /// Whether a graceful leave has started.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// Whether the leave message has been gossiped enough (or nobody was left to tell).
    pub fn leave_broadcast_done(&self) -> bool {
        self.leave_done
    }

    /// Number of broadcasts waiting in memberlist's own queue.
    pub fn queued_broadcasts(&self) -> usize {
        self.queue.len()
    }

    /// Drops every broadcast waiting in memberlist's own queue, unsent.
    ///
    /// For simulators that fast-forward a cluster's formation: once every node already
    /// knows every other (each learned them through a push/pull), the alive messages a
    /// real cluster would still retransmit for minutes carry nothing new. A running node
    /// never needs this.
    pub fn discard_broadcasts(&mut self) {
        self.queue = BroadcastQueue::new();
    }

    /// Re-arms the periodic push/pull at a uniformly random point of its current interval
    /// (scaled by cluster size), where it sits in a cluster that has been running for a
    /// while. A node arms it when it starts, with the unscaled interval; a simulator that
    /// fast-forwards a formation calls this once the node knows the whole cluster, so
    /// that push/pulls are spread as in steady state rather than all due in the first
    /// interval.
    pub fn rephase_push_pull(&mut self, now: Duration) {
        self.next_push_pull = now + self.push_pull_interval().mul_f64(self.rng.unit());
    }

    fn estimated_nodes(&self) -> usize {
        self.nodes.len()
    }

    // ----- driver interface -----

    /// Next thing to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// When [`Memberlist::handle_timeout`] must next be called: the earliest of
    /// [`Memberlist::timers`].
    pub fn poll_timeout(&self) -> Duration {
        self.timers()
            .map(|(_, t)| t)
            .min()
            .unwrap_or(self.next_gossip)
    }

    /// Every armed timer with its deadline: the timer table [`Memberlist::handle_timeout`]
    /// works through.
    pub fn timers(&self) -> impl Iterator<Item = (Timer, Duration)> + '_ {
        let probe = match &self.probe {
            Some(p) if !p.indirect_sent => (Timer::IndirectProbe, p.indirect_at),
            Some(p) => (Timer::ProbeTimeout, p.deadline),
            None => (Timer::Probe, self.next_probe),
        };
        [
            (Timer::Gossip, self.next_gossip),
            (Timer::PushPull, self.next_push_pull),
            probe,
        ]
        .into_iter()
        .chain(self.eager_gossip_at().map(|t| (Timer::EagerGossip, t)))
        .chain(
            self.suspicions
                .values()
                .map(|s| (Timer::Suspicion, s.deadline)),
        )
        .chain(
            self.relays
                .values()
                .map(|r| (Timer::RelayExpiry, r.expires)),
        )
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        // Suspicion timers.
        // Sorted (deadline, then name): HashMap order is random per process, and the
        // order of the resulting dead broadcasts/events must depend only on the seed.
        let mut expired: Vec<(Duration, String)> = self
            .suspicions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(n, s)| (s.deadline, n.clone()))
            .collect();
        expired.sort();
        for (_, name) in expired {
            if let Some(s) = self.suspicions.remove(&name) {
                let still = self.nodes.get(name.as_str()).is_some_and(|n| {
                    n.state == NodeStateKind::Suspect && n.state_change.get() == s.start
                });
                if still {
                    // The accuser's own suspicion is not a confirmation.
                    let confirmed = (s.confirmations.len() as u32).saturating_sub(1);
                    if s.k > 0 && confirmed < s.k {
                        metrics::counter!("memberlist.degraded.timeout").increment(1);
                    }
                    let inc = self.nodes.get(name.as_str()).map_or(0, |n| n.incarnation);
                    info!(
                        "Marking {name} as failed, suspect timeout reached ({confirmed} peer confirmations)"
                    );
                    let from = self.cfg.name.clone();
                    self.dead_node(
                        now,
                        Suspect {
                            incarnation: inc,
                            node: name,
                            from,
                        },
                    );
                }
            }
        }
        // Relayed pings that timed out.
        let mut expired: Vec<(Duration, u32)> = self
            .relays
            .iter()
            .filter(|(_, r)| r.expires <= now)
            .map(|(s, r)| (r.expires, *s))
            .collect();
        expired.sort_unstable();
        for (_, seq) in expired {
            if let Some(r) = self.relays.remove(&seq) {
                if r.nack {
                    let msg = Message::Nack(Nack { seq_no: r.req_seq }).encode();
                    self.send_msg(r.requester, msg, true);
                }
            }
        }
        // Probe stages.
        if let Some(p) = &self.probe {
            if !p.indirect_sent && now >= p.indirect_at {
                self.probe_indirect(now);
            }
        }
        if self.probe.as_ref().is_some_and(|p| now >= p.deadline) {
            self.probe_failed(now);
        }
        if self.probe.is_none() && now >= self.next_probe {
            self.next_probe = now + self.cfg.probe_interval;
            self.probe_next(now);
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.cfg.gossip_interval;
            // The tick serves a pending request for an extra round.
            self.eager_wanted = false;
            self.gossip(now);
        }
        if self.eager_gossip_at().is_some_and(|t| now >= t) {
            self.eager_wanted = false;
            self.last_eager = Some(now);
            self.stats.eager_gossip_rounds += 1;
            self.gossip(now);
        }
        if now >= self.next_push_pull {
            self.next_push_pull = now + self.push_pull_interval();
            self.periodic_push_pull();
        }
    }

    /// Handles one datagram from `from`.
    pub fn handle_packet(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        self.stats.packets_in += 1;
        let opts = InboundOptions {
            keyring: Some(&self.cfg.keyring),
            verify_incoming: self.cfg.gossip_verify_incoming,
            label: &self.cfg.label,
        };
        let decoded = match packet::decode_packet(data, &opts) {
            Ok(d) => d,
            Err(e) => {
                self.stats.packets_dropped += 1;
                debug!(%from, error = %e, "dropping packet");
                return;
            }
        };
        for e in &decoded.errors {
            self.stats.messages_dropped += 1;
            debug!(%from, error = %e, "dropping message in packet");
        }
        // Alive messages first (memberlist's high-priority queue), then the rest in order.
        let (alive, rest): (Vec<Message>, Vec<Message>) = decoded
            .messages
            .into_iter()
            .partition(|m| matches!(m, Message::Alive(_)));
        for m in alive.into_iter().chain(rest) {
            self.handle_message(now, from, m);
        }
    }

    fn handle_message(&mut self, now: Duration, from: SocketAddr, m: Message) {
        match m {
            Message::Ping(p) => self.handle_ping(now, from, p),
            Message::IndirectPing(p) => self.handle_indirect_ping(now, from, p),
            Message::Ack(a) => self.handle_ack(now, a),
            Message::Nack(n) => {
                if let Some(p) = self.probe.as_mut().filter(|p| p.seq == n.seq_no) {
                    p.nacks += 1;
                }
            }
            Message::Alive(mut a) => {
                if a.port == 0 {
                    a.port = self.cfg.port;
                }
                if !a.vsn.is_empty() && a.vsn.len() != 6 {
                    self.stats.messages_dropped += 1;
                    return;
                }
                self.alive_node(now, a, false)
            }
            Message::Suspect(s) => self.suspect_node(now, s),
            Message::Dead(d) => self.dead_node(now, d),
            Message::User(b) => {
                if !b.is_empty() {
                    self.delegate.notify_msg(now, &b)
                }
            }
        }
    }

    /// Stream decoding options for the driver.
    pub fn stream_options(&self) -> StreamOptions<'_> {
        StreamOptions {
            keyring: Some(&self.cfg.keyring),
            verify_incoming: self.cfg.gossip_verify_incoming,
            label: &self.cfg.label,
        }
    }

    /// Tries to decode one stream message from the start of `buf` ([`WireError::Eof`]: read
    /// more).
    pub fn decode_stream(&self, buf: &[u8]) -> Result<(StreamMsg, usize), WireError> {
        stream::decode_stream(buf, &self.stream_options())
    }

    /// Frames a stream message (compression and encryption as configured).
    pub fn encode_stream(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce);
        let kr = if self.cfg.encrypt_outgoing() {
            Some(&self.cfg.keyring)
        } else {
            None
        };
        match stream::encode_stream(
            msg,
            self.cfg.enable_compression,
            kr,
            &self.cfg.label,
            &nonce,
        ) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "failed to frame stream message");
                Vec::new()
            }
        }
    }

    /// The framed error reply Go sends when a stream cannot be read.
    pub fn encode_stream_error(&mut self, text: &str) -> Vec<u8> {
        let m = stream::encode_err(text);
        self.encode_stream(&m)
    }

    /// A stream request arrived (server side). Returns the framed reply, if any.
    pub fn handle_stream(
        &mut self,
        now: Duration,
        from: SocketAddr,
        msg: StreamMsg,
    ) -> Option<Vec<u8>> {
        match msg {
            StreamMsg::PushPull(pp) => {
                let reply = self.local_push_pull(pp.join);
                if let Err(e) = self.merge_remote(now, &pp) {
                    warn!(%from, error = %e, "failed to merge remote state");
                }
                Some(reply)
            }
            StreamMsg::Ping(p) => {
                if !p.node.is_empty() && p.node != self.cfg.name {
                    return None;
                }
                let ack = Message::Ack(Ack {
                    seq_no: p.seq_no,
                    payload: Vec::new(),
                })
                .encode();
                Some(self.encode_stream(&ack))
            }
            StreamMsg::User(b) => {
                if !b.is_empty() {
                    self.delegate.notify_msg(now, &b);
                }
                None
            }
            StreamMsg::Ack(_) | StreamMsg::Err(_) => {
                debug!(%from, "unexpected stream message");
                None
            }
        }
    }

    /// The framed push/pull request to send when joining (`join`) or syncing.
    pub fn push_pull_request(&mut self, join: bool) -> Vec<u8> {
        self.local_push_pull(join)
    }

    /// The reply to a push/pull we initiated. Errors (remote error, version mismatch) are
    /// returned as text, as Go reports them from `Join`.
    pub fn handle_push_pull_reply(&mut self, now: Duration, msg: StreamMsg) -> Result<(), String> {
        match msg {
            StreamMsg::PushPull(pp) => self.merge_remote(now, &pp),
            StreamMsg::Err(e) => Err(format!("remote error: {}", e.error)),
            _ => Err("unexpected reply to push/pull".to_string()),
        }
    }

    /// Merges a push/pull's state (what [`Memberlist::handle_push_pull_reply`] does with a
    /// push/pull reply) from a borrowed message: a simulator hands thousands of nodes the
    /// same decoded state without copying it for each.
    pub fn merge_push_pull(&mut self, now: Duration, pp: &PushPull) -> Result<(), String> {
        self.merge_remote(now, pp)
    }

    /// The outcome of a stream exchange asked for by [`Transmit::Stream`] (or a join the
    /// driver started with [`StreamPurpose::Join`]): `reply` is the decoded reply, or why
    /// there was none. Push/pull replies are merged; errors come back as text, as Go
    /// reports them from `Join`.
    pub fn handle_stream_result(
        &mut self,
        now: Duration,
        purpose: StreamPurpose,
        reply: Result<StreamMsg, String>,
    ) -> Result<(), String> {
        match purpose {
            StreamPurpose::Join | StreamPurpose::PushPull => {
                self.handle_push_pull_reply(now, reply?)
            }
            StreamPurpose::Ping { seq } => {
                let ok = matches!(&reply, Ok(StreamMsg::Ack(a)) if a.seq_no == seq);
                self.handle_stream_ping_result(now, seq, ok);
                match reply {
                    Ok(_) if ok => Ok(()),
                    Ok(_) => Err("unexpected reply to a stream ping".to_string()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// A node we hold as dead, or do not know, shows that it is alive and sees us: it
    /// pinged us, or an alive message about it arrived at the incarnation we hold it dead
    /// at (which memberlist ignores: a dead record wins over an alive of the same
    /// incarnation). Exchange full state with it now, instead of staying apart until a
    /// periodic push/pull or Serf's reconnect (up to 30 s) happens to bridge the gap: it
    /// merges our "you are dead" as a suspicion of itself and refutes with a higher
    /// incarnation, which everyone accepts, and we learn what it knows.
    ///
    /// This is what heals the stragglers of a partition: after the heal, the news that the
    /// other side is back spreads by gossip that a node can miss, and a node that still
    /// holds a dead record at the current incarnation ignores the alive messages it does
    /// get. At most one per node per ten probe intervals, and a token bucket for all.
    pub(super) fn resync_with(&mut self, now: Duration, name: &str, to: SocketAddr) {
        if self.leaving || name == self.cfg.name {
            return;
        }
        let cooldown = self.cfg.probe_interval * 10;
        if self
            .resync_last
            .get(name)
            .is_some_and(|&t| now.saturating_sub(t) < cooldown)
        {
            return;
        }
        if self.resync_last.len() >= RESYNC_TRACKED {
            self.resync_last
                .retain(|_, t| now.saturating_sub(*t) < cooldown);
            if self.resync_last.len() >= RESYNC_TRACKED {
                return;
            }
        }
        let elapsed = now.saturating_sub(self.resync_budget_at).as_secs_f64();
        self.resync_budget_at = now;
        self.resync_budget = (self.resync_budget + elapsed * RESYNC_PER_SEC).min(RESYNC_BURST);
        if self.resync_budget < 1.0 {
            return;
        }
        self.resync_budget -= 1.0;
        self.resync_last.insert(name.to_string(), now);
        info!("Pushing state to {name} ({to}): it is alive but we hold it dead or unknown");
        self.push_pull_to(to, false);
    }

    /// Result of a TCP fallback ping.
    pub fn handle_stream_ping_result(&mut self, _now: Duration, seq: u32, ok: bool) {
        if let Some(p) = self.probe.as_mut().filter(|p| p.seq == seq) {
            p.tcp_ok |= ok;
        }
    }

    // ----- local operations -----

    /// Sends a user message (`08` + data) straight to an address (Serf's `SendToAddress`).
    pub fn send_user_packet(&mut self, to: SocketAddr, data: &[u8]) {
        let msg = Message::User(data.to_vec()).encode();
        self.send_msg(to, msg, false);
    }

    /// Re-reads the delegate's metadata and gossips a new alive (tag updates).
    pub fn update_meta(&mut self, now: Duration) {
        self.incarnation += 1;
        let a = self.local_alive(self.incarnation);
        self.alive_node(now, a, true);
    }

    /// Starts a graceful leave: gossips `dead{self, From: self}`. Poll
    /// [`Memberlist::leave_broadcast_done`] to know when it has been sent.
    pub fn leave(&mut self, now: Duration) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        let inc = self
            .nodes
            .get(self.cfg.name.as_str())
            .map_or(self.incarnation, |n| n.incarnation);
        let name = self.cfg.name.clone();
        self.dead_node(
            now,
            Suspect {
                incarnation: inc,
                node: name.clone(),
                from: name,
            },
        );
        let others = self.nodes.values().any(|n| {
            n.name() != self.cfg.name
                && matches!(n.state, NodeStateKind::Alive | NodeStateKind::Suspect)
        });
        if others {
            // The dead-about-self message goes out at once, not at the next tick.
            self.gossip_soon();
        } else {
            self.leave_done = true;
        }
    }

    // ----- internals -----

    fn local_alive(&mut self, incarnation: u32) -> Alive {
        let meta = self.delegate.node_meta(serf_wire::META_MAX_SIZE);
        Alive {
            incarnation,
            node: self.cfg.name.clone(),
            addr: self.cfg.addr,
            port: self.cfg.port,
            meta,
            vsn: self.cfg.vsn().to_vec(),
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn apply_health(&mut self, delta: i64) {
        let max = i64::from(self.cfg.awareness_max_multiplier.saturating_sub(1));
        let before = self.health;
        self.health = (i64::from(self.health) + delta).clamp(0, max) as u32;
        if self.health != before {
            metrics::gauge!("memberlist.health.score").set(f64::from(self.health));
        }
    }

    fn packet_options(&self, crc: bool) -> (bool, bool) {
        (self.cfg.enable_compression, crc)
    }

    /// Sends a message to `to`, piggybacking broadcasts if asked, without a CRC.
    ///
    /// Go compatibility: Go's memberlist sends pings, indirect pings, relayed pings and
    /// acks without a CRC even to protocol-5 peers (its send path looks the peer up by its
    /// address, which names no node); only gossip and the ping to a suspect carry one
    /// (`send_parts` with `crc`). We do the same: 5 bytes less per probe, the same bytes
    /// on the wire as Go's.
    fn send_msg(&mut self, to: SocketAddr, msg: Vec<u8>, piggyback: bool) {
        let mut parts = vec![msg];
        if piggyback {
            let overhead = if self.cfg.encrypt_outgoing() {
                serf_wire::crypto::ENCRYPT_OVERHEAD
            } else {
                0
            };
            let avail = self
                .cfg
                .udp_buffer_size
                .saturating_sub(parts[0].len() + 2 + overhead);
            parts.extend(self.get_broadcasts(2, avail));
        }
        self.send_parts(to, parts, false);
    }

    fn send_parts(&mut self, to: SocketAddr, parts: Vec<Vec<u8>>, crc: bool) {
        let payloads: Vec<Vec<u8>> = if parts.len() == 1 {
            parts
        } else {
            parts
                .chunks(packet::MAX_COMPOUND_PARTS)
                .filter_map(|c| {
                    if c.len() == 1 {
                        Some(c[0].clone())
                    } else {
                        packet::make_compound(c).ok()
                    }
                })
                .collect()
        };
        let (compress, crc) = self.packet_options(crc);
        for payload in payloads {
            let mut nonce = [0u8; 12];
            self.rng.fill(&mut nonce);
            let keyring = if self.cfg.encrypt_outgoing() {
                Some(&self.cfg.keyring)
            } else {
                None
            };
            let opts = PacketOptions {
                compress,
                crc,
                keyring,
                label: &self.cfg.label,
            };
            match packet::encode_packet(payload, &opts, &nonce) {
                Ok(data) => {
                    self.stats.packets_out += 1;
                    self.out.push_back(Transmit::Packet { to, data });
                }
                Err(e) => warn!(error = %e, "failed to frame packet"),
            }
        }
    }
}

/// Records a duration sample in milliseconds, as go-metrics' `MeasureSince` does.
fn record_ms(name: &'static str, d: Duration) {
    metrics::histogram!(name).record(d.as_secs_f64() * 1e3);
}
