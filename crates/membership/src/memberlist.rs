//! The membership state machine (docs/memberlist-protocol.md sections 8-11), sans-IO.
//!
//! Drive it with [`Memberlist::handle_packet`], [`Memberlist::handle_stream`],
//! [`Memberlist::handle_push_pull_reply`], [`Memberlist::handle_stream_ping_result`] and
//! [`Memberlist::handle_timeout`]; collect output with [`Memberlist::poll_transmit`] and
//! sleep until [`Memberlist::poll_timeout`]. Time is a `Duration` since an arbitrary origin
//! chosen by the driver; randomness comes from the seed given to [`Memberlist::new`].

use crate::config::Config;
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
use std::time::Duration;
use tracing::{debug, info, warn};

/// What memberlist knows about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Name.
    pub name: String,
    /// IP.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Metadata.
    pub meta: Vec<u8>,
    /// Incarnation.
    pub incarnation: u32,
    /// State.
    pub state: NodeStateKind,
    /// When the state last changed.
    pub state_change: Duration,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    pub vsn: [u8; 6],
}

impl Node {
    /// `addr:port`.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr, self.port)
    }

    /// Dead or left.
    pub fn dead_or_left(&self) -> bool {
        matches!(self.state, NodeStateKind::Dead | NodeStateKind::Left)
    }
}

/// Hooks for the layer above (Serf). Every method has a do-nothing default.
pub trait Delegate {
    /// Local node metadata (at most `limit` bytes).
    fn node_meta(&mut self, _limit: usize) -> Vec<u8> {
        Vec::new()
    }
    /// A user message arrived.
    fn notify_msg(&mut self, _now: Duration, _msg: &[u8]) {}
    /// Messages to piggyback, each at most `limit - overhead` bytes in all.
    fn get_broadcasts(&mut self, _overhead: usize, _limit: usize) -> Vec<Vec<u8>> {
        Vec::new()
    }
    /// State for a push/pull.
    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        Vec::new()
    }
    /// State received in a push/pull.
    fn merge_remote_state(&mut self, _now: Duration, _buf: &[u8], _join: bool) {}
    /// A node joined (or came back).
    fn notify_join(&mut self, _now: Duration, _node: &Node) {}
    /// A node died or left.
    fn notify_leave(&mut self, _now: Duration, _node: &Node) {}
    /// A node's metadata changed.
    fn notify_update(&mut self, _now: Duration, _node: &Node) {}
    /// Another node claims a known name from another address.
    fn notify_conflict(&mut self, _existing: &Node, _other: &Node) {}
    /// Payload for acks to direct pings.
    fn ack_payload(&mut self) -> Vec<u8> {
        Vec::new()
    }
    /// A probe was answered with a payload.
    fn notify_ping_complete(
        &mut self,
        _now: Duration,
        _node: &Node,
        _rtt: Duration,
        _payload: &[u8],
    ) {
    }
}

/// A delegate that does nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDelegate;
impl Delegate for NoDelegate {}

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

/// The membership core's timers (see [`Memberlist::timers`]).
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
}

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

/// The membership core.
#[derive(Debug)]
pub struct Memberlist<D> {
    cfg: Config,
    delegate: D,
    rng: Rng,
    /// Ordered by name, so every iteration (and every random pick) depends only on the seed.
    nodes: BTreeMap<String, Node>,
    probe_list: Vec<String>,
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
    next_push_pull: Duration,
    leaving: bool,
    leave_done: bool,
    out: VecDeque<Transmit>,
    stats: Stats,
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
            next_push_pull,
            leaving: false,
            leave_done: false,
            out: VecDeque::new(),
            stats: Stats::default(),
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

    /// Every known node (including the local one), in no particular order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// One node by name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// The local node.
    pub fn local_node(&self) -> Option<&Node> {
        self.nodes.get(&self.cfg.name)
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
                let still = self.nodes.get(&name).is_some_and(|n| {
                    n.state == NodeStateKind::Suspect && n.state_change == s.start
                });
                if still {
                    // The accuser's own suspicion is not a confirmation.
                    let confirmed = (s.confirmations.len() as u32).saturating_sub(1);
                    if s.k > 0 && confirmed < s.k {
                        metrics::counter!("memberlist.degraded.timeout").increment(1);
                    }
                    let inc = self.nodes.get(&name).map_or(0, |n| n.incarnation);
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
                    self.send_msg(r.requester, None, msg, true);
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
            Message::Ping(p) => self.handle_ping(from, p),
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
        self.send_msg(to, None, msg, false);
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
            .local_node()
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
            n.name != self.cfg.name
                && matches!(n.state, NodeStateKind::Alive | NodeStateKind::Suspect)
        });
        if !others {
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

    fn push_pull_interval(&self) -> Duration {
        let n = self.estimated_nodes();
        if n <= 32 {
            return self.cfg.push_pull_interval;
        }
        let mult = ((n as f64).log2() - 32f64.log2()).ceil() + 1.0;
        self.cfg.push_pull_interval.mul_f64(mult)
    }

    fn transmit_limit(&self) -> u32 {
        retransmit_limit(self.cfg.retransmit_mult, self.estimated_nodes())
    }

    fn broadcast(&mut self, name: &str, msg: Message, notify: Option<u64>) {
        self.queue.queue(Some(name), msg.encode(), notify);
        self.check_finished();
    }

    fn check_finished(&mut self) {
        if self.queue.take_finished().contains(&LEAVE_TOKEN) {
            self.leave_done = true;
        }
    }

    fn packet_options(&self, crc: bool) -> (bool, bool) {
        (self.cfg.enable_compression, crc)
    }

    /// Sends a message to `to`, piggybacking broadcasts if asked; CRC when the peer is known
    /// to speak protocol 5.
    fn send_msg(&mut self, to: SocketAddr, node: Option<&str>, msg: Vec<u8>, piggyback: bool) {
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
        let crc = node
            .and_then(|n| self.nodes.get(n))
            .is_some_and(|n| n.vsn[1] >= 5);
        self.send_parts(to, parts, crc);
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

    /// memberlist's broadcasts first, then the delegate's with one more byte each.
    fn get_broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let tl = self.transmit_limit();
        let mut msgs = self.queue.get_broadcasts(overhead, limit, tl);
        self.check_finished();
        let used: usize = msgs.iter().map(|m| m.len() + overhead).sum();
        let left = limit.saturating_sub(used);
        if left > overhead + 1 {
            for m in self.delegate.get_broadcasts(overhead + 1, left) {
                let mut b = Vec::with_capacity(m.len() + 1);
                b.push(serf_wire::msg_type::USER);
                b.extend_from_slice(&m);
                msgs.push(b);
            }
        }
        msgs
    }

    fn handle_ping(&mut self, from: SocketAddr, p: Ping) {
        if !p.node.is_empty() && p.node != self.cfg.name {
            warn!("Got ping for unexpected node '{}' from={from}", p.node);
            return;
        }
        let payload = self.delegate.ack_payload();
        let ack = Message::Ack(Ack {
            seq_no: p.seq_no,
            payload,
        })
        .encode();
        let to = match p.source_addr {
            Some(ip) if p.source_port != 0 => SocketAddr::new(ip, p.source_port),
            _ => from,
        };
        self.send_msg(to, None, ack, true);
    }

    fn handle_indirect_ping(&mut self, now: Duration, from: SocketAddr, req: IndirectPing) {
        let port = if req.port == 0 {
            self.cfg.port
        } else {
            req.port
        };
        let seq = self.next_seq();
        let ping = Message::Ping(Ping {
            seq_no: seq,
            node: req.node.clone(),
            source_addr: Some(self.cfg.addr),
            source_port: self.cfg.port,
            source_node: self.cfg.name.clone(),
        })
        .encode();
        let requester = match req.source_addr {
            Some(ip) if req.source_port != 0 => SocketAddr::new(ip, req.source_port),
            _ => from,
        };
        self.relays.insert(
            seq,
            Relay {
                requester,
                req_seq: req.seq_no,
                nack: req.nack,
                expires: now + self.cfg.probe_timeout,
            },
        );
        self.send_msg(
            SocketAddr::new(req.target, port),
            Some(&req.node),
            ping,
            true,
        );
    }

    fn handle_ack(&mut self, now: Duration, a: Ack) {
        if let Some(r) = self.relays.remove(&a.seq_no) {
            let ack = Message::Ack(Ack {
                seq_no: r.req_seq,
                payload: Vec::new(),
            })
            .encode();
            self.send_msg(r.requester, None, ack, true);
            return;
        }
        if self.probe.as_ref().is_some_and(|p| p.seq == a.seq_no) {
            if let Some(p) = self.probe.take() {
                self.apply_health(-1);
                if !a.payload.is_empty() {
                    if let Some(n) = self.nodes.get(&p.target).cloned() {
                        self.delegate.notify_ping_complete(
                            now,
                            &n,
                            now.saturating_sub(p.sent),
                            &a.payload,
                        );
                    }
                }
                record_ms("memberlist.probeNode", now.saturating_sub(p.sent));
                self.finish_probe(now, p.sent);
            }
        }
    }

    fn finish_probe(&mut self, now: Duration, sent: Duration) {
        // The ticker keeps its phase; ticks missed while probing are dropped.
        let iv = self.cfg.probe_interval;
        let mut next = sent + iv;
        if next <= now {
            let behind = (now - sent).as_nanos() / iv.as_nanos().max(1);
            next = sent + iv * (behind as u32 + 1);
        }
        self.next_probe = next;
    }

    fn probe_next(&mut self, now: Duration) {
        let mut checked = 0;
        let target = loop {
            if checked >= self.probe_list.len() {
                return;
            }
            if self.probe_index >= self.probe_list.len() {
                self.reset_probe_list(now);
                self.probe_index = 0;
                checked += 1;
                continue;
            }
            let name = self.probe_list[self.probe_index].clone();
            self.probe_index += 1;
            match self.nodes.get(&name) {
                Some(n) if n.name != self.cfg.name && !n.dead_or_left() => break n.clone(),
                _ => checked += 1,
            }
        };
        let seq = self.next_seq();
        let interval = self.cfg.probe_interval * (self.health + 1);
        if self.health > 0 {
            metrics::counter!("memberlist.degraded.probe").increment(1);
        }
        let ping = Message::Ping(Ping {
            seq_no: seq,
            node: target.name.clone(),
            source_addr: Some(self.cfg.addr),
            source_port: self.cfg.port,
            source_node: self.cfg.name.clone(),
        })
        .encode();
        if target.state == NodeStateKind::Alive {
            self.send_msg(target.socket_addr(), Some(&target.name), ping, true);
        } else {
            // Lifeguard buddy system: tell a suspect it is suspected.
            let s = Message::Suspect(Suspect {
                incarnation: target.incarnation,
                node: target.name.clone(),
                from: self.cfg.name.clone(),
            })
            .encode();
            let crc = target.vsn[1] >= 5;
            self.send_parts(target.socket_addr(), vec![ping, s], crc);
        }
        self.probe = Some(Probe {
            seq,
            incarnation: target.incarnation,
            target: target.name,
            sent: now,
            indirect_at: now + self.cfg.probe_timeout,
            deadline: now + interval,
            indirect_sent: false,
            expected_nacks: 0,
            nacks: 0,
            tcp_ok: false,
        });
    }

    fn probe_indirect(&mut self, now: Duration) {
        let Some(p) = self.probe.as_mut() else { return };
        p.indirect_sent = true;
        let (seq, target_name, deadline) = (p.seq, p.target.clone(), p.deadline);
        let Some(target) = self.nodes.get(&target_name).cloned() else {
            return;
        };
        let me = self.cfg.name.clone();
        let relays = self.random_nodes(self.cfg.indirect_checks, |n| {
            n.name != me && n.name != target_name && n.state == NodeStateKind::Alive
        });
        let mut expected = 0;
        for relay in relays {
            let nack = relay.vsn[1] >= 4;
            expected += u32::from(nack);
            let msg = Message::IndirectPing(IndirectPing {
                seq_no: seq,
                target: target.addr,
                port: target.port,
                node: target.name.clone(),
                nack,
                source_addr: Some(self.cfg.addr),
                source_port: self.cfg.port,
                source_node: self.cfg.name.clone(),
            })
            .encode();
            self.send_msg(relay.socket_addr(), Some(&relay.name), msg, true);
        }
        if let Some(p) = self.probe.as_mut() {
            p.expected_nacks = expected;
        }
        if !self.cfg.disable_tcp_pings && target.vsn[1] >= 3 {
            let ping = Message::Ping(Ping {
                seq_no: seq,
                node: target.name.clone(),
                source_addr: Some(self.cfg.addr),
                source_port: self.cfg.port,
                source_node: self.cfg.name.clone(),
            })
            .encode();
            let data = self.encode_stream(&ping);
            let timeout = deadline.saturating_sub(now);
            self.out.push_back(Transmit::Stream {
                to: target.socket_addr(),
                data,
                timeout,
                purpose: StreamPurpose::Ping { seq },
            });
        }
    }

    fn probe_failed(&mut self, now: Duration) {
        let Some(p) = self.probe.take() else { return };
        record_ms("memberlist.probeNode", now.saturating_sub(p.sent));
        self.finish_probe(now, p.sent);
        if p.tcp_ok {
            warn!(
                "Was able to connect to {} but other probes failed, network may be misconfigured",
                p.target
            );
            self.apply_health(-1);
            return;
        }
        self.stats.probes_failed += 1;
        if p.expected_nacks > 0 {
            self.apply_health(i64::from(p.expected_nacks.saturating_sub(p.nacks)));
        } else {
            self.apply_health(1);
        }
        if !self.nodes.contains_key(&p.target) {
            return;
        }
        info!("Suspect {} has failed, no acks received", p.target);
        let s = Suspect {
            incarnation: p.incarnation,
            node: p.target.clone(),
            from: self.cfg.name.clone(),
        };
        self.suspect_node(now, s);
    }

    /// Removes dead nodes older than GossipToTheDeadTime and reshuffles. Left nodes are
    /// kept, as memberlist 0.2.2 keeps them: forgetting them would let a stale alive at the
    /// same incarnation resurrect a node that left gracefully.
    fn reset_probe_list(&mut self, now: Duration) {
        let ttl = self.cfg.gossip_to_the_dead_time;
        let me = self.cfg.name.clone();
        let gone: Vec<String> = self
            .nodes
            .values()
            .filter(|n| {
                n.name != me
                    && n.state == NodeStateKind::Dead
                    && now.saturating_sub(n.state_change) > ttl
            })
            .map(|n| n.name.clone())
            .collect();
        for name in &gone {
            self.nodes.remove(name);
            self.suspicions.remove(name);
        }
        if !gone.is_empty() {
            self.probe_list.retain(|n| self.nodes.contains_key(n));
        }
        let mut list = std::mem::take(&mut self.probe_list);
        self.rng.shuffle(&mut list);
        self.probe_list = list;
    }

    /// Up to `k` distinct random nodes passing `keep`.
    fn random_nodes<F: Fn(&Node) -> bool>(&mut self, k: usize, keep: F) -> Vec<Node> {
        let mut cands: Vec<&Node> = self.nodes.values().filter(|n| keep(n)).collect();
        let mut out = Vec::with_capacity(k.min(cands.len()));
        while out.len() < k && !cands.is_empty() {
            let i = self.rng.below(cands.len());
            out.push(cands.swap_remove(i).clone());
        }
        out
    }

    fn gossip(&mut self, now: Duration) {
        self.stats.gossip_rounds += 1;
        let me = self.cfg.name.clone();
        let ttl = self.cfg.gossip_to_the_dead_time;
        let targets = self.random_nodes(self.cfg.gossip_nodes, |n| {
            n.name != me
                && match n.state {
                    NodeStateKind::Alive | NodeStateKind::Suspect => true,
                    NodeStateKind::Dead => now.saturating_sub(n.state_change) <= ttl,
                    NodeStateKind::Left => false,
                }
        });
        let overhead = if self.cfg.encrypt_outgoing() {
            serf_wire::crypto::ENCRYPT_OVERHEAD
        } else {
            0
        };
        let budget = self.cfg.udp_buffer_size.saturating_sub(2 + overhead);
        for t in targets {
            let msgs = self.get_broadcasts(2, budget);
            if msgs.is_empty() {
                return;
            }
            let crc = t.vsn[1] >= 5;
            self.send_parts(t.socket_addr(), msgs, crc);
        }
    }

    /// Queues a push/pull with `to` (Serf's reconnect uses `join = true`). The reply goes to
    /// [`Memberlist::handle_push_pull_reply`].
    pub fn push_pull_to(&mut self, to: SocketAddr, join: bool) {
        let data = self.local_push_pull(join);
        self.out.push_back(Transmit::Stream {
            to,
            data,
            timeout: self.cfg.tcp_timeout,
            purpose: StreamPurpose::PushPull,
        });
    }

    fn periodic_push_pull(&mut self) {
        let me = self.cfg.name.clone();
        let Some(peer) = self
            .random_nodes(1, |n| n.name != me && n.state == NodeStateKind::Alive)
            .pop()
        else {
            return;
        };
        let data = self.local_push_pull(false);
        self.out.push_back(Transmit::Stream {
            to: peer.socket_addr(),
            data,
            timeout: self.cfg.tcp_timeout,
            purpose: StreamPurpose::PushPull,
        });
    }

    fn local_push_pull(&mut self, join: bool) -> Vec<u8> {
        let mut nodes: Vec<PushNodeState> = self
            .nodes
            .values()
            .map(|n| PushNodeState {
                name: n.name.clone(),
                addr: n.addr,
                port: n.port,
                meta: n.meta.clone(),
                incarnation: n.incarnation,
                state: n.state,
                vsn: n.vsn.to_vec(),
            })
            .collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let user_state = self.delegate.local_state(join);
        let msg = encode_push_pull(&PushPull {
            join,
            nodes,
            user_state,
        });
        self.encode_stream(&msg)
    }

    /// memberlist's `verifyProtocol`.
    fn verify_protocol(&self, remote: &[PushNodeState]) -> Result<(), String> {
        let mut max_pmin = 0u8;
        let mut min_pmax = u8::MAX;
        let mut max_dmin = 0u8;
        let mut min_dmax = u8::MAX;
        let vsns = remote
            .iter()
            .filter(|r| r.state == NodeStateKind::Alive && r.vsn.len() == 6)
            .map(|r| [r.vsn[0], r.vsn[1], r.vsn[3], r.vsn[4]])
            .chain(
                self.nodes
                    .values()
                    .filter(|n| n.state == NodeStateKind::Alive)
                    .map(|n| [n.vsn[0], n.vsn[1], n.vsn[3], n.vsn[4]]),
            );
        for [pmin, pmax, dmin, dmax] in vsns {
            max_pmin = max_pmin.max(pmin);
            min_pmax = min_pmax.min(pmax);
            max_dmin = max_dmin.max(dmin);
            min_dmax = min_dmax.min(dmax);
        }
        let check = |name: &str, pcur: u8, dcur: u8| -> Result<(), String> {
            if pcur < max_pmin || pcur > min_pmax {
                return Err(format!("Node '{name}' protocol version ({pcur}) is incompatible: [{max_pmin}, {min_pmax}]"));
            }
            if dcur < max_dmin || dcur > min_dmax {
                return Err(format!(
                    "Node '{name}' delegate protocol version ({dcur}) is incompatible: [{max_dmin}, {min_dmax}]"
                ));
            }
            Ok(())
        };
        for r in remote {
            let (p, d) = if r.vsn.len() == 6 {
                (r.vsn[2], r.vsn[5])
            } else {
                (0, 0)
            };
            check(&r.name, p, d)?;
        }
        for n in self.nodes.values() {
            check(&n.name, n.vsn[2], n.vsn[5])?;
        }
        Ok(())
    }

    fn merge_remote(&mut self, now: Duration, pp: &PushPull) -> Result<(), String> {
        if let Err(e) = self.verify_protocol(&pp.nodes) {
            self.stats.push_pull_rejected += 1;
            return Err(e);
        }
        if pp
            .nodes
            .iter()
            .any(|n| !n.vsn.is_empty() && n.vsn.len() != 6)
        {
            self.stats.push_pull_rejected += 1;
            return Err("node state with a malformed version array".to_string());
        }
        for r in &pp.nodes {
            let port = if r.port == 0 { self.cfg.port } else { r.port };
            match r.state {
                NodeStateKind::Alive => self.alive_node(
                    now,
                    Alive {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        addr: r.addr,
                        port,
                        meta: r.meta.clone(),
                        vsn: r.vsn.clone(),
                    },
                    false,
                ),
                NodeStateKind::Left => self.dead_node(
                    now,
                    Suspect {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: r.name.clone(),
                    },
                ),
                NodeStateKind::Dead | NodeStateKind::Suspect => self.suspect_node(
                    now,
                    Suspect {
                        incarnation: r.incarnation,
                        node: r.name.clone(),
                        from: self.cfg.name.clone(),
                    },
                ),
            }
        }
        if !pp.user_state.is_empty() {
            self.delegate
                .merge_remote_state(now, &pp.user_state, pp.join);
        }
        Ok(())
    }

    fn refute(&mut self, accused: u32) {
        let mut inc = self.incarnation.wrapping_add(1);
        if accused >= inc {
            inc = accused.wrapping_add(1);
        }
        self.incarnation = inc;
        self.stats.refutations += 1;
        self.apply_health(1);
        let a = self.local_alive(inc);
        if let Some(me) = self.nodes.get_mut(&self.cfg.name) {
            me.incarnation = inc;
            me.meta = a.meta.clone();
        }
        let name = self.cfg.name.clone();
        self.broadcast(&name, Message::Alive(a), None);
    }

    fn alive_node(&mut self, now: Duration, a: Alive, bootstrap: bool) {
        let is_local = a.node == self.cfg.name;
        if self.leaving && is_local {
            return;
        }
        if a.vsn.len() >= 3 && (a.vsn[0] == 0 || a.vsn[1] == 0 || a.vsn[0] > a.vsn[1]) {
            return;
        }
        let mut updates_addr = false;
        match self.nodes.get(&a.node) {
            None => {
                let mut vsn = [0u8; 6];
                if a.vsn.len() == 6 {
                    vsn.copy_from_slice(&a.vsn);
                }
                let n = Node {
                    name: a.node.clone(),
                    addr: a.addr,
                    port: a.port,
                    meta: a.meta.clone(),
                    incarnation: 0,
                    state: NodeStateKind::Dead,
                    state_change: now,
                    vsn,
                };
                self.nodes.insert(a.node.clone(), n);
                let pos = self.rng.below(self.probe_list.len() + 1);
                self.probe_list.insert(pos, a.node.clone());
            }
            Some(st) if st.addr != a.addr || st.port != a.port => {
                let reclaim = !self.cfg.dead_node_reclaim_time.is_zero()
                    && st.state == NodeStateKind::Dead
                    && now.saturating_sub(st.state_change) > self.cfg.dead_node_reclaim_time;
                if st.state == NodeStateKind::Left || reclaim {
                    info!(
                        "Updating address for left or failed node {} from {}:{} to {}:{}",
                        a.node, st.addr, st.port, a.addr, a.port
                    );
                    updates_addr = true;
                } else {
                    tracing::error!(
                        "Conflicting address for {}. Mine: {}:{} Theirs: {}:{} Old state: {}",
                        a.node,
                        st.addr,
                        st.port,
                        a.addr,
                        a.port,
                        st.state.as_u8()
                    );
                    let existing = st.clone();
                    let mut other = st.clone();
                    other.addr = a.addr;
                    other.port = a.port;
                    other.meta = a.meta.clone();
                    self.delegate.notify_conflict(&existing, &other);
                    return;
                }
            }
            Some(_) => {}
        }
        let Some(st) = self.nodes.get(&a.node) else {
            return;
        };
        if a.incarnation <= st.incarnation && !is_local && !updates_addr {
            return;
        }
        if a.incarnation < st.incarnation && is_local {
            return;
        }
        self.suspicions.remove(&a.node);
        let old_state = st.state;
        let old_meta = st.meta.clone();
        if !bootstrap && is_local {
            let vsn = self.cfg.vsn();
            if a.incarnation == st.incarnation && a.meta == st.meta && a.vsn == vsn {
                return;
            }
            warn!(
                incarnation = a.incarnation,
                "refuting an alive message about us"
            );
            self.refute(a.incarnation);
        } else {
            let name = a.node.clone();
            let (inc, addr, port, meta) = (a.incarnation, a.addr, a.port, a.meta.clone());
            let vsn = a.vsn.clone();
            self.broadcast(&name, Message::Alive(a), None);
            if let Some(st) = self.nodes.get_mut(&name) {
                if vsn.len() == 6 {
                    st.vsn.copy_from_slice(&vsn);
                }
                st.incarnation = inc;
                st.meta = meta;
                st.addr = addr;
                st.port = port;
                if st.state != NodeStateKind::Alive {
                    st.state = NodeStateKind::Alive;
                    st.state_change = now;
                }
            }
            metrics::counter!("memberlist.msg.alive").increment(1);
            if is_local {
                self.incarnation = self.incarnation.max(inc);
            }
            let Some(st) = self.nodes.get(&name).cloned() else {
                return;
            };
            if matches!(old_state, NodeStateKind::Dead | NodeStateKind::Left) {
                self.delegate.notify_join(now, &st);
            } else if old_meta != st.meta {
                self.delegate.notify_update(now, &st);
            }
        }
    }

    fn suspect_node(&mut self, now: Duration, s: Suspect) {
        let Some(st) = self.nodes.get(&s.node) else {
            return;
        };
        if s.incarnation < st.incarnation {
            return;
        }
        if let Some(timer) = self.suspicions.get_mut(&s.node) {
            if timer.confirm(&s.from) {
                let name = s.node.clone();
                self.broadcast(&name, Message::Suspect(s), None);
            }
            return;
        }
        if st.state != NodeStateKind::Alive {
            return;
        }
        if s.node == self.cfg.name {
            warn!("Refuting a suspect message (from: {})", s.from);
            self.refute(s.incarnation);
            return;
        }
        let name = s.node.clone();
        let (inc, from) = (s.incarnation, s.from.clone());
        self.broadcast(&name, Message::Suspect(s), None);
        metrics::counter!("memberlist.msg.suspect").increment(1);
        if let Some(st) = self.nodes.get_mut(&name) {
            st.incarnation = inc;
            st.state = NodeStateKind::Suspect;
            st.state_change = now;
        }
        let n = self.estimated_nodes();
        let (min, max, k) = suspicion::bounds(
            self.cfg.suspicion_mult,
            self.cfg.suspicion_max_timeout_mult,
            self.cfg.probe_interval,
            n,
        );
        self.suspicions
            .insert(name, Suspicion::new(now, &from, inc, min, max, k));
    }

    fn dead_node(&mut self, now: Duration, d: Suspect) {
        let Some(st) = self.nodes.get(&d.node) else {
            return;
        };
        if d.incarnation < st.incarnation {
            return;
        }
        self.suspicions.remove(&d.node);
        if st.dead_or_left() {
            return;
        }
        let name = d.node.clone();
        let is_local = name == self.cfg.name;
        if is_local && !self.leaving {
            warn!("Refuting a dead message (from: {})", d.from);
            self.refute(d.incarnation);
            return;
        }
        let left = d.from == d.node;
        let inc = d.incarnation;
        let notify = if is_local { Some(LEAVE_TOKEN) } else { None };
        self.broadcast(&name, Message::Dead(d), notify);
        metrics::counter!("memberlist.msg.dead").increment(1);
        if let Some(st) = self.nodes.get_mut(&name) {
            st.incarnation = inc;
            st.state = if left {
                NodeStateKind::Left
            } else {
                NodeStateKind::Dead
            };
            st.state_change = now;
        }
        if let Some(st) = self.nodes.get(&name).cloned() {
            self.delegate.notify_leave(now, &st);
        }
    }
}

/// Records a duration sample in milliseconds, as go-metrics' `MeasureSince` does.
fn record_ms(name: &'static str, d: Duration) {
    metrics::histogram!(name).record(d.as_secs_f64() * 1e3);
}
