//! Serf's member state machine and its memberlist delegate (docs/serf-protocol.md sections 3, 7, 8).

use crate::clock::LamportClock;
use serf_membership::queue::{retransmit_limit, BroadcastQueue};
use serf_membership::{Delegate, Node};
use serf_wire::serf::{
    decode_tags, encode_tags, JoinIntent, LeaveIntent, PushPullState, SerfMessage, UserEvent,
    UserEventsSlot,
};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tracing::{debug, info, warn};

/// Hard cap on user event size, whatever the configuration.
pub const USER_EVENT_SIZE_HARD_LIMIT: usize = 9216;

/// How often the broadcast queue depths are sampled (Serf's `QueueCheckInterval`).
pub const QUEUE_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// A queue at least this deep is logged (Serf's `QueueDepthWarning`).
pub const QUEUE_DEPTH_WARNING: usize = 128;

/// A failed member back within this long counts as a flap (Serf's `FlapTimeout`).
pub const FLAP_TIMEOUT: Duration = Duration::from_secs(60);

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

/// Member status as Serf reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// 0
    None,
    /// 1
    Alive,
    /// 2
    Leaving,
    /// 3
    Left,
    /// 4
    Failed,
}

impl MemberStatus {
    /// The text used by the CLI and RPC.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::None => "none",
            MemberStatus::Alive => "alive",
            MemberStatus::Leaving => "leaving",
            MemberStatus::Left => "left",
            MemberStatus::Failed => "failed",
        }
    }
}

/// A Serf member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Name.
    pub name: String,
    /// IP.
    pub addr: IpAddr,
    /// Gossip port.
    pub port: u16,
    /// Tags (order as received).
    pub tags: Vec<(String, String)>,
    /// Status.
    pub status: MemberStatus,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`.
    pub vsn: [u8; 6],
    /// Member clock of the last accepted intent.
    pub status_ltime: u64,
    /// When it became failed or left.
    pub leave_time: Option<Duration>,
}

/// What Serf tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// member-join
    MemberJoin(Member),
    /// member-leave
    MemberLeave(Member),
    /// member-failed
    MemberFailed(Member),
    /// member-update
    MemberUpdate(Member),
    /// member-reap
    MemberReap(Member),
    /// A query for the application (internal `_serf_` queries never appear). Answer with
    /// `Serf::respond(ltime, id, payload)` before `deadline`.
    Query {
        /// Query clock.
        ltime: u64,
        /// Query id.
        id: u32,
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Origin node.
        source_node: String,
        /// Respond before this time (driver clock).
        deadline: Duration,
    },
    /// An ack to one of our queries.
    QueryAck {
        /// Query clock of our query.
        ltime: u64,
        /// Its id.
        id: u32,
        /// Who acked.
        from: String,
    },
    /// A response to one of our queries.
    QueryResponse {
        /// Query clock of our query.
        ltime: u64,
        /// Its id.
        id: u32,
        /// Who answered.
        from: String,
        /// Payload.
        payload: Vec<u8>,
    },
    /// One of our queries finished (deadline reached, or every expected node answered).
    QueryDone {
        /// Query clock.
        ltime: u64,
        /// Id.
        id: u32,
    },
    /// A key operation started with `Serf::key_op` is over: every expected node answered,
    /// or its query ended.
    KeyOpDone {
        /// Query clock of the key query.
        ltime: u64,
        /// Its id.
        id: u32,
        /// What the nodes reported.
        result: Box<crate::KeyOpResult>,
    },
    /// user event
    User {
        /// Event clock.
        ltime: u64,
        /// Name.
        name: String,
        /// Payload.
        payload: Vec<u8>,
        /// Can coalesce.
        coalesce: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Intent {
    join: bool,
    ltime: u64,
    at: Duration,
}

/// Serf's state; the memberlist delegate.
#[derive(Debug)]
pub struct SerfState {
    pub(crate) name: String,
    pub(crate) cfg: SerfConfig,
    pub(crate) members: HashMap<String, Member>,
    pub(crate) clock: LamportClock,
    pub(crate) event_clock: LamportClock,
    pub(crate) query_clock: LamportClock,
    intents: BroadcastQueue,
    pub(crate) query_queue: BroadcastQueue,
    event_queue: BroadcastQueue,
    retransmit_mult: u32,
    recent_intents: HashMap<String, Intent>,
    event_buffer: Vec<Option<UserEventsSlot>>,
    event_min_time: u64,
    pub(crate) events: VecDeque<Event>,
    pub(crate) direct: VecDeque<(SocketAddr, Vec<u8>)>,
    pub(crate) event_join_ignore: bool,
    pub(crate) leave_intent_sent: bool,
    pub(crate) leaving: bool,
    pub(crate) next_reap: Duration,
    pub(crate) next_reconnect: Duration,
    /// When the broadcast queue depths are next sampled.
    pub(crate) next_queue_check: Duration,
    pub(crate) now: Duration,
    pub(crate) queries: crate::query::Queries,
    pub(crate) advertise: SocketAddr,
    pub(crate) rng: serf_membership::Rng,
    /// Someone claims our name from another address: run the conflict vote.
    pub(crate) conflict_pending: bool,
    pub(crate) coord: crate::coordinate::CoordinateClient,
    pub(crate) coord_cache: HashMap<String, crate::coordinate::Coordinate>,
}

impl SerfState {
    /// Serf state for node `name`; `retransmit_mult` as in memberlist's config. Used as the
    /// memberlist delegate (the simulator builds `Memberlist<SerfState>` directly).
    pub fn new(name: String, cfg: SerfConfig, retransmit_mult: u32) -> Self {
        let mut clock = LamportClock::new();
        let mut event_clock = LamportClock::new();
        let mut query_clock = LamportClock::new();
        clock.increment();
        event_clock.increment();
        query_clock.increment();
        let slots = cfg.event_buffer_size.max(1);
        let reap = cfg.reap_interval;
        let reconnect = cfg.reconnect_interval;
        let queries = crate::query::Queries {
            ring: vec![None; cfg.query_buffer_size.max(1)],
            ..Default::default()
        };
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        SerfState {
            name,
            cfg,
            members: HashMap::new(),
            clock,
            event_clock,
            query_clock,
            intents: BroadcastQueue::new(),
            query_queue: BroadcastQueue::new(),
            event_queue: BroadcastQueue::new(),
            retransmit_mult,
            recent_intents: HashMap::new(),
            event_buffer: vec![None; slots],
            event_min_time: 0,
            events: VecDeque::new(),
            direct: VecDeque::new(),
            event_join_ignore: false,
            leave_intent_sent: false,
            leaving: false,
            next_reap: reap,
            next_reconnect: reconnect,
            next_queue_check: QUEUE_CHECK_INTERVAL,
            now: Duration::ZERO,
            queries,
            advertise: SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0),
            rng: serf_membership::Rng::new(seed),
            conflict_pending: false,
            coord: crate::coordinate::CoordinateClient::new(Default::default(), seed),
            coord_cache: HashMap::new(),
        }
    }

    /// Every member.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// One member.
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.get(name)
    }

    /// The Serf configuration.
    pub fn config(&self) -> &SerfConfig {
        &self.cfg
    }

    /// Current tags.
    pub fn tags(&self) -> &[(String, String)] {
        &self.cfg.tags
    }

    /// Member clock.
    pub fn clock(&self) -> u64 {
        self.clock.time()
    }

    /// Event clock.
    pub fn event_clock(&self) -> u64 {
        self.event_clock.time()
    }

    /// Query clock.
    pub fn query_clock(&self) -> u64 {
        self.query_clock.time()
    }

    /// Messages waiting in the Serf queues (intents, queries, events).
    pub fn queued(&self) -> (usize, usize, usize) {
        (
            self.intents.len(),
            self.query_queue.len(),
            self.event_queue.len(),
        )
    }

    /// Our network coordinate, or a node's as learned from its last ping ack.
    pub fn coordinate(&self, node: &str) -> Option<crate::coordinate::Coordinate> {
        if node == self.name {
            return Some(self.coord.get_coordinate());
        }
        self.coord_cache.get(node).cloned()
    }

    /// Restores clocks saved in a snapshot: witnesses them, and ignores user events and
    /// queries at or below the saved times.
    pub fn restore_clocks(&mut self, clock: u64, event_clock: u64, query_clock: u64) {
        self.clock.witness(clock);
        self.event_clock.witness(event_clock);
        self.query_clock.witness(query_clock);
        self.event_min_time = self.event_min_time.max(event_clock + 1);
        self.queries.min_time = self.queries.min_time.max(query_clock + 1);
    }

    /// Times the coordinate was reset after going invalid.
    pub fn coordinate_resets(&self) -> u64 {
        self.coord.stats().resets
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Fires a user event (Go's size checks and error texts) and queues it for gossip.
    pub fn user_event(&mut self, name: &str, payload: &[u8], coalesce: bool) -> Result<(), String> {
        let limit = self.cfg.user_event_size_limit;
        if name.len() + payload.len() > limit {
            return Err(format!(
                "user event exceeds configured limit of {limit} bytes before encoding"
            ));
        }
        if name.len() + payload.len() > USER_EVENT_SIZE_HARD_LIMIT {
            return Err(format!(
                "user event exceeds sane limit of {USER_EVENT_SIZE_HARD_LIMIT} bytes before encoding"
            ));
        }
        let ev = UserEvent {
            ltime: self.event_clock.time(),
            name: name.to_string(),
            payload: payload.to_vec(),
            cc: coalesce,
        };
        let raw = SerfMessage::UserEvent(ev.clone()).encode();
        if raw.len() > limit {
            return Err(format!(
                "encoded user event exceeds configured limit of {limit} bytes after encoding"
            ));
        }
        if raw.len() > USER_EVENT_SIZE_HARD_LIMIT {
            return Err(format!(
                "encoded user event exceeds sane limit of {USER_EVENT_SIZE_HARD_LIMIT} bytes after encoding"
            ));
        }
        self.event_clock.increment();
        self.handle_user_event(&ev);
        self.queue_event(raw);
        Ok(())
    }

    pub(crate) fn local_status(&self) -> Option<MemberStatus> {
        self.members.get(&self.name).map(|m| m.status)
    }

    fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub(crate) fn queue_intent(&mut self, msg: Vec<u8>, notify: Option<u64>) {
        self.intents.queue(None, msg, notify);
        self.intents.prune(self.cfg.max_queue_depth);
        self.check_finished();
    }

    pub(crate) fn queue_event(&mut self, msg: Vec<u8>) {
        self.event_queue.queue(None, msg, None);
        self.event_queue.prune(self.cfg.max_queue_depth);
    }

    fn check_finished(&mut self) {
        if !self.intents.take_finished().is_empty() {
            self.leave_intent_sent = true;
        }
    }

    fn upsert_intent(&mut self, node: &str, join: bool, ltime: u64) -> bool {
        match self.recent_intents.get(node) {
            Some(i) if i.ltime >= ltime => false,
            _ => {
                self.recent_intents.insert(
                    node.to_string(),
                    Intent {
                        join,
                        ltime,
                        at: self.now,
                    },
                );
                true
            }
        }
    }

    /// Returns whether to re-broadcast.
    pub(crate) fn handle_join_intent(&mut self, msg: &JoinIntent) -> bool {
        self.clock.witness(msg.ltime);
        let Some(m) = self.members.get_mut(&msg.node) else {
            return self.upsert_intent(&msg.node, true, msg.ltime);
        };
        if msg.ltime <= m.status_ltime {
            return false;
        }
        m.status_ltime = msg.ltime;
        if m.status == MemberStatus::Leaving {
            m.status = MemberStatus::Alive;
        }
        true
    }

    /// Returns whether to re-broadcast.
    pub(crate) fn handle_leave_intent(&mut self, msg: &LeaveIntent) -> bool {
        self.clock.witness(msg.ltime);
        let leaving_self = msg.node == self.name;
        let Some(m) = self.members.get(&msg.node) else {
            return self.upsert_intent(&msg.node, false, msg.ltime);
        };
        if msg.ltime <= m.status_ltime {
            return false;
        }
        if leaving_self && m.status == MemberStatus::Alive && !self.leave_in_progress() {
            // Somebody says we left, but we did not: refute with a join intent.
            debug!("refuting an older leave intent");
            let ltime = self.clock.time();
            let j = JoinIntent {
                ltime,
                node: self.name.clone(),
            };
            self.clock.witness(ltime);
            self.handle_join_intent(&j);
            self.queue_intent(SerfMessage::Join(j).encode(), None);
            return false;
        }
        let now = self.now;
        let Some(m) = self.members.get_mut(&msg.node) else {
            return false;
        };
        m.status_ltime = msg.ltime;
        match m.status {
            MemberStatus::Alive => {
                m.status = MemberStatus::Leaving;
                if msg.prune {
                    self.prune(&msg.node);
                }
                true
            }
            MemberStatus::Failed => {
                m.status = MemberStatus::Left;
                // Keep the time it failed (tombstone timing counts from there, as in Go).
                m.leave_time = m.leave_time.or(Some(now));
                let ev = m.clone();
                info!("EventMemberLeave (forced): {} {}", ev.name, ev.addr);
                self.emit(Event::MemberLeave(ev));
                if msg.prune {
                    self.prune(&msg.node);
                }
                true
            }
            MemberStatus::Leaving | MemberStatus::Left => {
                if msg.prune {
                    self.prune(&msg.node);
                }
                true
            }
            MemberStatus::None => false,
        }
    }

    fn leave_in_progress(&self) -> bool {
        self.leaving
    }

    fn prune(&mut self, name: &str) {
        self.coord.forget_node(name);
        self.coord_cache.remove(name);
        if let Some(m) = self.members.remove(name) {
            info!("EventMemberReap (forced): {} {}", name, m.addr);
            self.emit(Event::MemberReap(m));
        }
    }

    /// Returns whether to re-broadcast.
    pub(crate) fn handle_user_event(&mut self, ev: &UserEvent) -> bool {
        self.event_clock.witness(ev.ltime);
        if ev.ltime < self.event_min_time {
            return false;
        }
        let n = self.event_buffer.len() as u64;
        let cur = self.event_clock.time();
        if cur > n && ev.ltime < cur - n {
            warn!(
                "received old event {} from time {} (current: {cur})",
                ev.name, ev.ltime
            );
            return false;
        }
        let idx = (ev.ltime % n) as usize;
        let entry = (ev.name.clone(), ev.payload.clone());
        match &mut self.event_buffer[idx] {
            Some(slot) if slot.ltime == ev.ltime => {
                if slot.events.contains(&entry) {
                    return false;
                }
                slot.events.push(entry);
            }
            other => {
                *other = Some(UserEventsSlot {
                    ltime: ev.ltime,
                    events: vec![entry],
                })
            }
        }
        metrics::counter!("serf.events").increment(1);
        metrics::counter!(format!("serf.events.{}", ev.name)).increment(1);
        self.emit(Event::User {
            ltime: ev.ltime,
            name: ev.name.clone(),
            payload: ev.payload.clone(),
            coalesce: ev.cc,
        });
        true
    }

    fn member_from_node(node: &Node) -> Member {
        Member {
            name: node.name.clone(),
            addr: node.addr,
            port: node.port,
            tags: decode_tags(&node.meta),
            status: MemberStatus::Alive,
            vsn: node.vsn,
            status_ltime: 0,
            leave_time: None,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Duration) {
        self.now = now;
        self.expire_queries(now);
        if now >= self.next_queue_check {
            self.next_queue_check = now + QUEUE_CHECK_INTERVAL;
            self.check_queue_depths();
        }
        if now < self.next_reap {
            return;
        }
        self.next_reap = now + self.cfg.reap_interval;
        let (rt, tt) = (self.cfg.reconnect_timeout, self.cfg.tombstone_timeout);
        let reap: Vec<String> = self
            .members
            .values()
            .filter(|m| match (m.status, m.leave_time) {
                (MemberStatus::Failed, Some(t)) => now.saturating_sub(t) > rt,
                (MemberStatus::Left, Some(t)) => now.saturating_sub(t) > tt,
                _ => false,
            })
            .map(|m| m.name.clone())
            .collect();
        for name in reap {
            self.coord.forget_node(&name);
            self.coord_cache.remove(&name);
            if let Some(m) = self.members.remove(&name) {
                info!("EventMemberReap: {name}");
                self.emit(Event::MemberReap(m));
            }
        }
        let ttl = self.cfg.recent_intent_timeout;
        self.recent_intents
            .retain(|_, i| now.saturating_sub(i.at) <= ttl);
    }

    /// Samples the queue depths and warns about deep ones, as Serf does every 30 s.
    /// (Pruning to `max_queue_depth` already happens on every enqueue.)
    fn check_queue_depths(&self) {
        for (name, q) in [
            ("Intent", &self.intents),
            ("Event", &self.event_queue),
            ("Query", &self.query_queue),
        ] {
            let n = q.len();
            metrics::histogram!(format!("serf.queue.{name}")).record(n as f64);
            if n >= QUEUE_DEPTH_WARNING {
                warn!("{name} queue depth: {n}");
            }
        }
    }

    fn serf_transmit_limit(&self) -> u32 {
        retransmit_limit(self.retransmit_mult, self.members.len())
    }
}

impl Delegate for SerfState {
    fn node_meta(&mut self, limit: usize) -> Vec<u8> {
        match encode_tags(&self.cfg.tags) {
            Ok(b) if b.len() <= limit => b,
            _ => vec![0xff, 0x80],
        }
    }

    fn notify_msg(&mut self, now: Duration, msg: &[u8]) {
        self.now = now;
        metrics::histogram!("serf.msgs.received").record(msg.len() as f64);
        let decoded = match SerfMessage::decode(msg) {
            Ok(m) => m,
            Err(e) => {
                let what = match msg.first() {
                    Some(0) => "leave message",
                    Some(1) => "join message",
                    Some(3) => "user event message",
                    Some(4) => "query message",
                    Some(5) => "query response message",
                    Some(9) => "relay header",
                    Some(t) => {
                        warn!("Received message of unknown type: {t}");
                        return;
                    }
                    None => return,
                };
                tracing::error!("Error decoding {what}: {e}");
                return;
            }
        };
        match &decoded {
            SerfMessage::Leave(l) => debug!("messageLeaveType: {}", l.node),
            SerfMessage::Join(j) => debug!("messageJoinType: {}", j.node),
            SerfMessage::UserEvent(ev) => debug!("messageUserEventType: {}", ev.name),
            SerfMessage::Query(q) => debug!("messageQueryType: {}", q.name),
            SerfMessage::QueryResponse(r) => debug!("messageQueryResponseType: {}", r.from),
            SerfMessage::Relay { .. } => {}
        }
        match decoded {
            SerfMessage::Join(j) => {
                if self.handle_join_intent(&j) {
                    self.queue_intent(msg.to_vec(), None);
                }
            }
            SerfMessage::Leave(l) => {
                if self.handle_leave_intent(&l) {
                    self.queue_intent(msg.to_vec(), None);
                }
            }
            SerfMessage::UserEvent(ev) => {
                if self.handle_user_event(&ev) {
                    self.queue_event(msg.to_vec());
                }
            }
            SerfMessage::Query(q) => {
                if self.handle_query(&q) {
                    self.query_queue.queue(None, msg.to_vec(), None);
                    self.query_queue.prune(self.cfg.max_queue_depth);
                }
            }
            SerfMessage::QueryResponse(r) => self.handle_query_response(r),
            SerfMessage::Relay {
                dest_ip,
                dest_port,
                inner,
                ..
            } => {
                if let Ok(ip) = serf_wire::ip_from_bytes(&dest_ip) {
                    let to = SocketAddr::new(ip, dest_port);
                    debug!("Relaying response to addr: {to}");
                    self.direct.push_back((to, inner));
                }
            }
        }
    }

    fn get_broadcasts(&mut self, overhead: usize, limit: usize) -> Vec<Vec<u8>> {
        let tl = self.serf_transmit_limit();
        let mut out = self.intents.get_broadcasts(overhead, limit, tl);
        self.check_finished();
        let mut used: usize = out.iter().map(|m| m.len() + overhead).sum();
        for q in [&mut self.query_queue, &mut self.event_queue] {
            let more = q.get_broadcasts(overhead, limit.saturating_sub(used), tl);
            used += more.iter().map(|m| m.len() + overhead).sum::<usize>();
            out.extend(more);
        }
        for m in &out {
            metrics::histogram!("serf.msgs.sent").record(m.len() as f64);
        }
        out
    }

    fn local_state(&mut self, _join: bool) -> Vec<u8> {
        let mut status_ltimes: Vec<(String, u64)> = self
            .members
            .values()
            .map(|m| (m.name.clone(), m.status_ltime))
            .collect();
        status_ltimes.sort();
        let mut left_members: Vec<String> = self
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Left)
            .map(|m| m.name.clone())
            .collect();
        left_members.sort();
        PushPullState {
            ltime: self.clock.time(),
            status_ltimes,
            left_members,
            event_ltime: self.event_clock.time(),
            events: self.event_buffer.clone(),
            query_ltime: self.query_clock.time(),
        }
        .encode()
    }

    fn merge_remote_state(&mut self, now: Duration, buf: &[u8], join: bool) {
        self.now = now;
        let pp = match PushPullState::decode(buf) {
            Ok(pp) => pp,
            Err(e) => {
                tracing::error!("Failed to decode remote state: {e}");
                return;
            }
        };
        if pp.ltime > 0 {
            self.clock.witness(pp.ltime - 1);
        }
        if pp.event_ltime > 0 {
            self.event_clock.witness(pp.event_ltime - 1);
        }
        if pp.query_ltime > 0 {
            self.query_clock.witness(pp.query_ltime - 1);
        }
        let status: HashMap<&str, u64> = pp
            .status_ltimes
            .iter()
            .map(|(n, t)| (n.as_str(), *t))
            .collect();
        for name in &pp.left_members {
            let ltime = status
                .get(name.as_str())
                .copied()
                .unwrap_or(0)
                .saturating_add(1);
            self.handle_leave_intent(&LeaveIntent {
                ltime,
                node: name.clone(),
                prune: false,
            });
        }
        let left: std::collections::HashSet<&str> =
            pp.left_members.iter().map(String::as_str).collect();
        for (name, ltime) in &pp.status_ltimes {
            if left.contains(name.as_str()) {
                continue;
            }
            self.handle_join_intent(&JoinIntent {
                ltime: *ltime,
                node: name.clone(),
            });
        }
        if join && self.event_join_ignore {
            self.event_min_time = self.event_min_time.max(pp.event_ltime);
        }
        for slot in pp.events.into_iter().flatten() {
            for (name, payload) in slot.events {
                self.handle_user_event(&UserEvent {
                    ltime: slot.ltime,
                    name,
                    payload,
                    cc: false,
                });
            }
        }
    }

    fn notify_join(&mut self, now: Duration, node: &Node) {
        self.now = now;
        let fresh = Self::member_from_node(node);
        let intent = self.recent_intents.remove(&node.name);
        let m = match self.members.entry(node.name.clone()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut m = fresh.clone();
                if let Some(i) = intent {
                    m.status_ltime = i.ltime;
                    if !i.join {
                        m.status = MemberStatus::Leaving;
                    }
                }
                v.insert(m)
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let m = o.into_mut();
                let flapped = m.status == MemberStatus::Failed
                    && m.leave_time
                        .is_some_and(|t| now.saturating_sub(t) < FLAP_TIMEOUT);
                if flapped {
                    metrics::counter!("serf.member.flap").increment(1);
                }
                m.status = MemberStatus::Alive;
                m
            }
        };
        m.leave_time = None;
        m.addr = fresh.addr;
        m.port = fresh.port;
        m.tags = fresh.tags;
        m.vsn = fresh.vsn;
        let ev = m.clone();
        metrics::counter!("serf.member.join").increment(1);
        info!("EventMemberJoin: {} {}", ev.name, ev.addr);
        self.emit(Event::MemberJoin(ev));
    }

    fn notify_leave(&mut self, now: Duration, node: &Node) {
        self.now = now;
        let Some(m) = self.members.get_mut(&node.name) else {
            return;
        };
        match m.status {
            MemberStatus::Leaving => {
                m.status = MemberStatus::Left;
                m.leave_time = Some(now);
                let ev = m.clone();
                metrics::counter!("serf.member.left").increment(1);
                info!("EventMemberLeave: {} {}", ev.name, ev.addr);
                self.emit(Event::MemberLeave(ev));
            }
            MemberStatus::Alive => {
                m.status = MemberStatus::Failed;
                m.leave_time = Some(now);
                let ev = m.clone();
                metrics::counter!("serf.member.failed").increment(1);
                info!("EventMemberFailed: {} {}", ev.name, ev.addr);
                self.emit(Event::MemberFailed(ev));
            }
            other => warn!(node = %node.name, status = other.as_str(), "bad state when leave"),
        }
    }

    fn ack_payload(&mut self) -> Vec<u8> {
        self.coord.get_coordinate().encode_payload()
    }

    fn notify_ping_complete(&mut self, _now: Duration, node: &Node, rtt: Duration, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        let other = match crate::coordinate::Coordinate::decode_payload(payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("Failed to decode coordinate from ping: {e}");
                return;
            }
        };
        let before = self.coord.get_coordinate();
        match self.coord.update(&node.name, &other, rtt) {
            Ok(mine) => {
                let moved = crate::coordinate::distance_to(&before, &mine);
                metrics::histogram!("serf.coordinate.adjustment-ms")
                    .record(moved.as_secs_f64() * 1e3);
                self.coord_cache.insert(node.name.clone(), other);
                self.coord_cache.insert(self.name.clone(), mine);
            }
            Err(e) => {
                metrics::counter!("serf.coordinate.rejected").increment(1);
                debug!("rejected coordinate from {}: {e}", node.name);
            }
        }
    }

    fn notify_conflict(&mut self, existing: &Node, other: &Node) {
        if existing.name != self.name {
            warn!(
                "Name conflict for '{}' both {}:{} and {}:{} are claiming",
                existing.name, existing.addr, existing.port, other.addr, other.port
            );
            return;
        }
        tracing::error!(
            "Node name conflicts with another node at {}:{}",
            other.addr,
            other.port
        );
        self.conflict_pending = self.cfg.enable_name_conflict_resolution;
    }

    fn notify_update(&mut self, now: Duration, node: &Node) {
        self.now = now;
        let fresh = Self::member_from_node(node);
        let Some(m) = self.members.get_mut(&node.name) else {
            return;
        };
        m.addr = fresh.addr;
        m.port = fresh.port;
        m.tags = fresh.tags;
        m.vsn = fresh.vsn;
        let ev = m.clone();
        metrics::counter!("serf.member.update").increment(1);
        info!("EventMemberUpdate: {}", ev.name);
        self.emit(Event::MemberUpdate(ev));
    }
}
