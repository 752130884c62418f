//! Serf's member state machine (docs/serf-protocol.md sections 3, 7, 8): members, intents,
//! user events and queue depths. Its memberlist delegate is in `state/delegate.rs`, its
//! queries in `state/query.rs` (re-exported as `serf_core::query`).

use crate::clock::LamportClock;
pub use crate::config::SerfConfig;
pub use crate::member::{Event, Member, MemberStatus};
use serf_membership::queue::{retransmit_limit, BroadcastQueue};
use serf_membership::{Delegate, Info, Interner, Name, Node, OptStamp};
use serf_wire::serf::{
    decode_tags, encode_tags, JoinIntent, LeaveIntent, PushPullState, SerfMessage, UserEvent,
    UserEventsSlot,
};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

mod delegate;
pub mod query;

/// Hard cap on user event size, whatever the configuration.
pub const USER_EVENT_SIZE_HARD_LIMIT: usize = 9216;

/// How often the broadcast queue depths are sampled (Serf's `QueueCheckInterval`).
pub const QUEUE_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// A queue at least this deep is logged (Serf's `QueueDepthWarning`).
pub const QUEUE_DEPTH_WARNING: usize = 128;

/// A failed member back within this long counts as a flap (Serf's `FlapTimeout`).
pub const FLAP_TIMEOUT: Duration = Duration::from_secs(60);

/// Capacity the event queue keeps once drained.
const EVENTS_KEPT_CAPACITY: usize = 64;

/// A user event or query queued while its queue holds at most this many messages asks for
/// an extra gossip round at once ([`serf_membership::Memberlist::gossip_soon`]). Beyond,
/// the queue has a backlog (a flood of events): the gossip ticks send it, each datagram
/// packed with as many messages as fit, as Go does. A message stays queued for about
/// three gossip intervals, so this allows eager sends up to about 100 events a second.
pub(crate) const EAGER_BACKLOG_MAX: usize = 64;

/// Resync push/pulls allowed at once (see [`SerfState::queue_resync`]).
const RESYNC_BURST: f64 = 8.0;
/// Resync push/pulls allowed per second beyond the burst.
const RESYNC_PER_SEC: f64 = 1.0;

/// One member as this node's Serf sees it: the identity it last learned (shared with
/// memberlist and, through the interner, with other nodes) and its own view.
#[derive(Debug, Clone)]
pub(crate) struct Rec {
    pub(crate) info: Arc<Info>,
    pub(crate) status: MemberStatus,
    /// Member clock of the last accepted intent.
    pub(crate) status_ltime: u64,
    /// When it became failed or left.
    pub(crate) leave: OptStamp,
}

impl Rec {
    /// The application's copy.
    pub(crate) fn member(&self) -> Member {
        Member {
            name: self.info.name.to_string(),
            addr: self.info.addr,
            port: self.info.port,
            tags: self.tags().to_vec(),
            status: self.status,
            vsn: self.info.vsn,
            status_ltime: self.status_ltime,
            leave_time: self.leave_time(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.info.name
    }

    /// When it became failed or left.
    pub(crate) fn leave_time(&self) -> Option<Duration> {
        self.leave.get()
    }

    /// Tags (order as received), decoded once per identity.
    pub(crate) fn tags(&self) -> &[(String, String)] {
        self.info.decoded_meta(decode_tags)
    }
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
    /// By name (a B-tree packs records more densely than a hash table, and iterates in a
    /// deterministic order).
    pub(crate) members: BTreeMap<Name, Rec>,
    /// `members.len()` when the map was last repacked (see [`SerfState::pack_members`]).
    members_packed: usize,
    /// Interns member identities (the memberlist's interner, see [`serf_membership::info`]).
    pub(crate) interner: Interner,
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
    /// Failed members that came back, to push/pull with at once (see
    /// [`SerfState::queue_resync`]).
    pub(crate) resync: VecDeque<SocketAddr>,
    /// Resync push/pulls still allowed now (a token bucket, refilled over time).
    resync_budget: f64,
    /// When `resync_budget` was last refilled.
    resync_budget_at: Duration,
    pub(crate) event_join_ignore: bool,
    pub(crate) leave_intent_sent: bool,
    pub(crate) leaving: bool,
    pub(crate) next_reap: Duration,
    pub(crate) next_reconnect: Duration,
    /// When the broadcast queue depths are next sampled.
    pub(crate) next_queue_check: Duration,
    pub(crate) now: Duration,
    pub(crate) queries: query::Queries,
    pub(crate) advertise: SocketAddr,
    pub(crate) rng: serf_membership::Rng,
    /// Someone claims our name from another address: run the conflict vote.
    pub(crate) conflict_pending: bool,
    /// A user event or query entered its broadcast queue since the last input: ask
    /// memberlist for an extra gossip round
    /// ([`serf_membership::Memberlist::gossip_soon`]).
    pub(crate) gossip_wanted: bool,
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
        let queries = query::Queries {
            ring: vec![None; cfg.query_buffer_size.max(1)],
            ..Default::default()
        };
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        SerfState {
            name,
            cfg,
            members: BTreeMap::new(),
            members_packed: 0,
            interner: Interner::new(),
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
            resync: VecDeque::new(),
            resync_budget: RESYNC_BURST,
            resync_budget_at: Duration::ZERO,
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
            gossip_wanted: false,
            coord: crate::coordinate::CoordinateClient::new(Default::default(), seed),
            coord_cache: HashMap::new(),
        }
    }

    /// A failed member came back (memberlist reports it alive again): queue a push/pull
    /// with it, done as soon as the machine is polled.
    ///
    /// When a partition heals, the two sides learn about each other from the first
    /// exchange across (a reconnect), and the news spreads by gossip, which each node
    /// retransmits a bounded number of times to random peers. A node can miss it: it then
    /// still holds the other side as failed, and memberlist ignores later alive messages
    /// at the incarnation it holds as dead, so it stays stale until its own next push/pull
    /// or reconnect (up to 30 s). Exchanging full state with every member we see come
    /// back hands such a node, on either side, everything we know, and hands it our view
    /// (a dead record it pushes makes the accused refute with a higher incarnation).
    /// Rate-limited by a token bucket so that a large heal costs a bounded burst.
    pub(crate) fn queue_resync(&mut self, now: Duration, addr: SocketAddr) {
        if self.leaving {
            return;
        }
        let elapsed = now.saturating_sub(self.resync_budget_at).as_secs_f64();
        self.resync_budget_at = now;
        self.resync_budget = (self.resync_budget + elapsed * RESYNC_PER_SEC).min(RESYNC_BURST);
        if self.resync_budget < 1.0 || self.resync.contains(&addr) {
            return;
        }
        self.resync_budget -= 1.0;
        self.resync.push_back(addr);
    }

    /// Every member.
    pub fn members(&self) -> impl Iterator<Item = Member> + '_ {
        self.members.values().map(Rec::member)
    }

    /// One member.
    pub fn member(&self, name: &str) -> Option<Member> {
        self.members.get(name).map(Rec::member)
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

    /// Drops every message waiting in the Serf queues (intents, queries, events), unsent.
    /// For simulators that fast-forward a cluster's formation (see
    /// [`serf_membership::Memberlist::discard_broadcasts`]); a running node never needs it.
    pub fn discard_broadcasts(&mut self) {
        self.intents = BroadcastQueue::new();
        self.query_queue = BroadcastQueue::new();
        self.event_queue = BroadcastQueue::new();
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
        // Go: `prev.LastEventClock + 1`, wrapping like the clocks themselves.
        self.event_min_time = self.event_min_time.max(event_clock.wrapping_add(1));
        self.queries.min_time = self.queries.min_time.max(query_clock.wrapping_add(1));
    }

    /// Times the coordinate was reset after going invalid.
    pub fn coordinate_resets(&self) -> u64 {
        self.coord.stats().resets
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front();
        if ev.is_none() && self.events.capacity() > EVENTS_KEPT_CAPACITY {
            // A burst (a join merging thousands of members) must not pin its buffer.
            self.events.shrink_to(EVENTS_KEPT_CAPACITY);
        }
        ev
    }

    /// Fires a user event (Go's size checks and error texts) and queues it for gossip.
    pub fn user_event(
        &mut self,
        name: &str,
        payload: &[u8],
        coalesce: bool,
    ) -> Result<(), crate::Error> {
        let limit = self.cfg.user_event_size_limit;
        let too_large = |limit, configured, encoded| crate::Error::UserEventTooLarge {
            limit,
            configured,
            encoded,
        };
        if name.len() + payload.len() > limit {
            return Err(too_large(limit, true, false));
        }
        if name.len() + payload.len() > USER_EVENT_SIZE_HARD_LIMIT {
            return Err(too_large(USER_EVENT_SIZE_HARD_LIMIT, false, false));
        }
        let ev = UserEvent {
            ltime: self.event_clock.time(),
            name: name.to_string(),
            payload: payload.to_vec(),
            cc: coalesce,
        };
        let raw = SerfMessage::UserEvent(ev.clone()).encode();
        if raw.len() > limit {
            return Err(too_large(limit, true, true));
        }
        if raw.len() > USER_EVENT_SIZE_HARD_LIMIT {
            return Err(too_large(USER_EVENT_SIZE_HARD_LIMIT, false, true));
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
        self.gossip_wanted |= self.event_queue.len() <= EAGER_BACKLOG_MAX;
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
        self.join_intent(&msg.node, msg.ltime)
    }

    /// [`SerfState::handle_join_intent`] without building the message.
    pub(crate) fn join_intent(&mut self, node: &str, ltime: u64) -> bool {
        self.clock.witness(ltime);
        let Some(m) = self.members.get_mut(node) else {
            return self.upsert_intent(node, true, ltime);
        };
        if ltime <= m.status_ltime {
            return false;
        }
        m.status_ltime = ltime;
        if m.status == MemberStatus::Leaving {
            m.status = MemberStatus::Alive;
        }
        true
    }

    /// Returns whether to re-broadcast.
    pub(crate) fn handle_leave_intent(&mut self, msg: &LeaveIntent) -> bool {
        self.clock.witness(msg.ltime);
        let leaving_self = msg.node == self.name;
        let Some(m) = self.members.get(msg.node.as_str()) else {
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
        let Some(m) = self.members.get_mut(msg.node.as_str()) else {
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
                m.leave = OptStamp::new(m.leave_time().or(Some(now)));
                let ev = m.member();
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
            info!("EventMemberReap (forced): {} {}", name, m.info.addr);
            self.emit(Event::MemberReap(m.member()));
        }
    }

    /// Returns whether to re-broadcast.
    pub(crate) fn handle_user_event(&mut self, ev: &UserEvent) -> bool {
        if self.event_clock.witness(ev.ltime) {
            // Beyond Go: after the clock wrapped, a join-time floor would hide every new
            // event until the clock climbed back over it.
            warn!("event clock wrapped past its maximum (event {})", ev.name);
            self.event_min_time = 0;
        }
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

    /// Rebuilds the member map once it doubled since the last rebuild: members learned in
    /// bulk (a join's push/pull) arrive in name order, which leaves the B-tree's nodes half
    /// full; a bulk build from sorted order packs them.
    pub(crate) fn pack_members(&mut self) {
        let n = self.members.len();
        if n >= 64 && n >= 2 * self.members_packed {
            self.members = std::mem::take(&mut self.members).into_iter().collect();
            self.members_packed = n;
        }
    }

    /// The shared identity of what memberlist reports.
    fn info_of(&self, node: &Node) -> Arc<Info> {
        self.interner
            .info(&node.name, node.addr, node.port, &node.meta, node.vsn)
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
            .filter(|m| match (m.status, m.leave_time()) {
                (MemberStatus::Failed, Some(t)) => now.saturating_sub(t) > rt,
                (MemberStatus::Left, Some(t)) => now.saturating_sub(t) > tt,
                _ => false,
            })
            .map(|m| m.name().to_string())
            .collect();
        for name in reap {
            self.coord.forget_node(&name);
            self.coord_cache.remove(&name);
            if let Some(m) = self.members.remove(name.as_str()) {
                info!("EventMemberReap: {name}");
                self.emit(Event::MemberReap(m.member()));
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
