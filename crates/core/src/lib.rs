//! The Serf layer, sans-IO: tags in node metadata, Lamport clocks, join/leave intents, the
//! member state machine, user events and the push/pull state (docs/serf-protocol.md).
//!
//! [`Serf`] owns a [`serf_membership::Memberlist`] whose delegate is the Serf state, and is
//! driven exactly like it, as a [`serf_membership::Machine`]: feed packets, stream
//! messages, stream outcomes and time; drain transmits and [`Event`]s. Everything Serf
//! does over time is a state of this machine with a deadline on one timer table
//! ([`Serf::timers`]): query deadlines, reaping, reconnects, queue checks, the
//! name-conflict vote, key operations across the cluster ([`Serf::key_op`], answered by
//! [`Event::KeyOpDone`]) and the graceful leave ([`Serf::leave`], [`Serf::leave_result`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod coalesce;
pub mod config;
pub mod coordinate;
mod error;
pub mod keyop;
mod leave;
pub mod member;
pub mod state;

pub use state::query;

pub use clock::LamportClock;
pub use error::Error;
pub use keyop::KeyOpResult;
pub use query::{KeyOpKind, KeyResponse, QueryParams};
pub use state::{Event, Member, MemberStatus, SerfConfig, SerfState, USER_EVENT_SIZE_HARD_LIMIT};

use leave::LeavePhase;
use serf_membership::{Config, Machine, Memberlist, StreamPurpose, Transmit};
use serf_wire::serf::{serf_type, JoinIntent, LeaveIntent, SerfMessage};
use serf_wire::stream::StreamMsg;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Serf protocol versions understood.
pub const PROTOCOL_MIN: u8 = 2;
/// Serf protocol versions understood.
pub const PROTOCOL_MAX: u8 = 5;

/// Broadcast notification token of our leave intent.
const LEAVE_INTENT_TOKEN: u64 = 1;

/// The core's timers (see [`Serf::timers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// A timer of the membership core.
    Memberlist(serf_membership::Timer),
    /// The next reap of long-failed and long-left members.
    Reap,
    /// The next attempt to reconnect a failed member.
    Reconnect,
    /// The next check of the broadcast queue depths.
    QueueCheck,
    /// A query of ours reaches its deadline.
    Query,
    /// The current phase of a graceful leave times out or ends.
    Leave,
}

/// A Serf node: memberlist plus the Serf state machine.
#[derive(Debug)]
pub struct Serf {
    ml: Memberlist<SerfState>,
    keyring_version: u64,
    /// A running `_serf_conflict` vote: (ltime, id, responses, matching).
    conflict: Option<(u64, u32, usize, usize)>,
    /// Key operations of ours, by query: `None` once reported (until the query ends).
    key_ops: HashMap<(u64, u32), Option<KeyOpResult>>,
    leave: LeavePhase,
    /// Set when the leave intent's broadcast timed out.
    leave_timed_out: bool,
    shutdown: bool,
}

impl Serf {
    /// Starts a node. `ml_cfg.delegate_protocol_version` is set from `cfg.protocol`.
    pub fn new(
        mut ml_cfg: Config,
        cfg: SerfConfig,
        seed: u64,
        now: Duration,
    ) -> Result<Self, Error> {
        if !(PROTOCOL_MIN..=PROTOCOL_MAX).contains(&cfg.protocol) {
            return Err(Error::ProtocolVersion {
                version: cfg.protocol,
            });
        }
        serf_wire::serf::encode_tags(&cfg.tags).map_err(Error::Tags)?;
        ml_cfg.delegate_protocol_min = PROTOCOL_MIN;
        ml_cfg.delegate_protocol_max = PROTOCOL_MAX;
        ml_cfg.delegate_protocol_version = cfg.protocol;
        let mut state = SerfState::new(ml_cfg.name.clone(), cfg, ml_cfg.retransmit_mult);
        state.advertise = SocketAddr::new(ml_cfg.addr, ml_cfg.port);
        state.interner = ml_cfg.interner.clone();
        state.rng = serf_membership::Rng::new(seed ^ 0x5e4f_5e4f);
        state.now = now;
        state.next_reap = now + state.cfg.reap_interval;
        state.next_reconnect = now + state.cfg.reconnect_interval;
        state.next_queue_check = now + state::QUEUE_CHECK_INTERVAL;
        let ml = Memberlist::new(ml_cfg, state, seed, now);
        Ok(Serf {
            ml,
            keyring_version: 0,
            conflict: None,
            key_ops: HashMap::new(),
            leave: LeavePhase::Idle,
            leave_timed_out: false,
            shutdown: false,
        })
    }

    /// The memberlist core.
    pub fn memberlist(&self) -> &Memberlist<SerfState> {
        &self.ml
    }

    /// The memberlist core, mutably.
    pub fn memberlist_mut(&mut self) -> &mut Memberlist<SerfState> {
        &mut self.ml
    }

    /// Serf state (members, clocks).
    pub fn state(&self) -> &SerfState {
        self.ml.delegate()
    }

    /// Local node name.
    pub fn name(&self) -> &str {
        &self.ml.config().name
    }

    /// Drops every queued broadcast, memberlist's and Serf's, unsent: for simulators that
    /// fast-forward a cluster's formation (see [`Memberlist::discard_broadcasts`]).
    pub fn discard_broadcasts(&mut self) {
        self.ml.discard_broadcasts();
        self.ml.delegate_mut().discard_broadcasts();
    }

    /// Every member Serf knows (alive, leaving, left, failed).
    pub fn members(&self) -> Vec<Member> {
        self.state().members().collect()
    }

    /// Next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            let ev = self.ml.delegate_mut().poll_event()?;
            match self.key_op_event(&ev) {
                Some(Some(done)) => return Some(done),
                Some(None) => {}
                None => {
                    if !self.conflict_vote(&ev) {
                        return Some(ev);
                    }
                }
            }
        }
    }

    /// Counts the results of our key operations: `None` if `ev` is not about one of them,
    /// else the [`Event::KeyOpDone`] it completes, if any.
    fn key_op_event(&mut self, ev: &Event) -> Option<Option<Event>> {
        let key = match ev {
            Event::QueryAck { ltime, id, .. }
            | Event::QueryResponse { ltime, id, .. }
            | Event::QueryDone { ltime, id } => (*ltime, *id),
            _ => return None,
        };
        let slot = self.key_ops.get_mut(&key)?;
        let done = |r: KeyOpResult| Event::KeyOpDone {
            ltime: key.0,
            id: key.1,
            result: Box::new(r.finish()),
        };
        match ev {
            Event::QueryResponse { from, payload, .. } => {
                let finished = slot.as_mut().is_some_and(|r| r.add(from.clone(), payload));
                Some(if finished {
                    slot.take().map(done)
                } else {
                    None
                })
            }
            Event::QueryDone { .. } => Some(self.key_ops.remove(&key).flatten().map(done)),
            _ => Some(None),
        }
    }

    /// Whether Serf decided to stop (it lost a name-conflict vote).
    pub fn should_shutdown(&self) -> bool {
        self.shutdown
    }

    /// Consumes the results of our `_serf_conflict` query. Returns true if `ev` belonged to it.
    fn conflict_vote(&mut self, ev: &Event) -> bool {
        let Some((lt, qid, mut responses, mut matching)) = self.conflict else {
            return false;
        };
        match ev {
            Event::QueryAck { ltime, id, .. } if (*ltime, *id) == (lt, qid) => true,
            Event::QueryResponse {
                ltime, id, payload, ..
            } if (*ltime, *id) == (lt, qid) => {
                if let Some(member) = query::decode_conflict_member(payload) {
                    responses += 1;
                    let me = self.ml.config();
                    if member.is_some_and(|(ip, port)| ip == me.addr && port == me.port) {
                        matching += 1;
                    }
                }
                self.conflict = Some((lt, qid, responses, matching));
                true
            }
            Event::QueryDone { ltime, id } if (*ltime, *id) == (lt, qid) => {
                self.conflict = None;
                let majority = responses / 2 + 1;
                if matching < majority {
                    tracing::error!(
                        "minority in name conflict resolution, quitting [{matching} / {responses}]"
                    );
                    self.shutdown = true;
                } else {
                    tracing::info!(
                        "majority in name conflict resolution [{matching} / {responses}]"
                    );
                }
                true
            }
            _ => false,
        }
    }

    fn start_conflict_vote(&mut self, now: Duration) {
        if !std::mem::take(&mut self.ml.delegate_mut().conflict_pending) || self.conflict.is_some()
        {
            return;
        }
        let name = self.name().to_string();
        match self.query(
            now,
            "_serf_conflict",
            name.as_bytes(),
            &QueryParams::default(),
        ) {
            Ok((ltime, id, _)) => self.conflict = Some((ltime, id, 0, 0)),
            Err(e) => tracing::error!("failed to start name resolution query: {e}"),
        }
    }

    /// Next transmit.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.flush_direct();
        self.ml.poll_transmit()
    }

    fn flush_direct(&mut self) {
        for op in self.ml.delegate_mut().take_key_ops() {
            self.apply_key_op(op);
        }
        while let Some((to, msg)) = self.ml.delegate_mut().direct.pop_front() {
            self.ml.send_user_packet(to, &msg);
        }
        while let Some(to) = self.ml.delegate_mut().resync.pop_front() {
            tracing::debug!("pushing state to {to}, a failed member that came back");
            self.ml.push_pull_to(to, false);
        }
    }

    /// Bumped whenever the keyring changes (so drivers can refresh copies and files).
    pub fn keyring_version(&self) -> u64 {
        self.keyring_version
    }

    /// The keyring (empty: encryption off).
    pub fn keyring(&self) -> &serf_wire::Keyring {
        &self.ml.config().keyring
    }

    fn apply_key_op(&mut self, op: query::KeyOp) {
        use base64::Engine;
        let b64 = |k: &[u8]| base64::engine::general_purpose::STANDARD.encode(k);
        let mut resp = KeyResponse::default();
        let enabled = !self.ml.config().keyring.is_empty();
        if op.decode_failed {
            // Go answers Result: false with an empty message.
        } else if !enabled {
            resp.message = if op.kind == KeyOpKind::List {
                "Keyring is empty (encryption not enabled)".to_string()
            } else {
                "No keyring to modify (encryption not enabled)".to_string()
            };
            tracing::error!("{}", resp.message);
        } else {
            let what = match op.kind {
                KeyOpKind::Install => "install-key",
                KeyOpKind::Use => "use-key",
                KeyOpKind::Remove => "remove-key",
                KeyOpKind::List => "list-keys",
            };
            tracing::info!("Received {what} query");
            let kr = self.ml.keyring_mut();
            let r = match op.kind {
                KeyOpKind::Install => serf_wire::Key::new(&op.key).map(|k| kr.add(k)),
                KeyOpKind::Use => kr.use_key(&op.key),
                KeyOpKind::Remove => kr.remove(&op.key),
                KeyOpKind::List => Ok(()),
            };
            match r {
                Ok(()) => {
                    resp.result = true;
                    if op.kind == KeyOpKind::List {
                        let kr = &self.ml.config().keyring;
                        resp.keys = kr.keys().iter().map(|k| b64(k.as_bytes())).collect();
                        resp.primary_key =
                            kr.primary().map(|k| b64(k.as_bytes())).unwrap_or_default();
                    } else {
                        self.keyring_version += 1;
                    }
                }
                Err(e) => {
                    resp.message = e.to_string();
                    let failed = match op.kind {
                        KeyOpKind::Install => "Failed to install key",
                        KeyOpKind::Use => "Failed to change primary key",
                        _ => "Failed to remove key",
                    };
                    tracing::error!("{failed}: {}", resp.message);
                }
            }
        }
        let mut payload = resp.encode();
        let limit = self.state().cfg.query_response_size_limit;
        if op.kind == KeyOpKind::List && payload.len() + 64 > limit && !resp.keys.is_empty() {
            let total = resp.keys.len();
            let mut n = (limit / 25).min(total);
            loop {
                let mut r = resp.clone();
                r.keys.truncate(n);
                r.message =
                    format!("truncated key list response, showing first {n} of {total} keys");
                payload = r.encode();
                if payload.len() + 64 <= limit || n == 0 {
                    break;
                }
                n -= 1;
            }
        }
        if let Err(e) = self.ml.delegate_mut().respond(op.ltime, op.id, payload) {
            tracing::error!("Failed to respond to key query: {e}");
        }
    }

    /// Issues a query. Results arrive as [`Event::QueryAck`], [`Event::QueryResponse`] and
    /// finally [`Event::QueryDone`]. Returns `(ltime, id, deadline)`.
    pub fn query(
        &mut self,
        now: Duration,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<(u64, u32, Duration), Error> {
        let timeout = if params.timeout.is_zero() {
            let gi = self.ml.config().gossip_interval;
            self.state().default_query_timeout(gi, self.ml.num_alive())
        } else {
            params.timeout
        };
        self.ml.delegate_mut().now = now;
        let r = self
            .ml
            .delegate_mut()
            .start_query(now, name, payload, params, timeout);
        self.wake_gossip();
        r
    }

    /// Hands a wish for an extra gossip round (a user event or query was queued) to
    /// memberlist, whose timers then include it.
    fn wake_gossip(&mut self) {
        if std::mem::take(&mut self.ml.delegate_mut().gossip_wanted) {
            self.ml.gossip_soon();
        }
    }

    /// Answers a query delivered as [`Event::Query`].
    pub fn respond(
        &mut self,
        now: Duration,
        ltime: u64,
        id: u32,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        self.ml.delegate_mut().now = now;
        self.ml.delegate_mut().respond(ltime, id, payload)
    }

    /// Starts a key operation across the cluster (Serf's key manager: the internal
    /// `_serf_*` key query, `key` being the raw key, empty for list). Every node's answer
    /// is counted; [`Event::KeyOpDone`] with the query's `(ltime, id)` (returned here)
    /// reports the outcome once every node alive at the start answered or the query
    /// ended.
    pub fn key_op(
        &mut self,
        now: Duration,
        kind: KeyOpKind,
        key: &[u8],
    ) -> Result<(u64, u32), Error> {
        let expected = self.ml.num_alive();
        let params = QueryParams::default();
        let (ltime, id, _) =
            self.query(now, kind.query_name(), &query::key_request(key), &params)?;
        let result = KeyOpResult {
            num_nodes: expected,
            ..KeyOpResult::default()
        };
        self.key_ops.insert((ltime, id), Some(result));
        Ok((ltime, id))
    }

    /// Every armed timer with its deadline: the one table [`Serf::handle_timeout`] works
    /// through, membership's timers included.
    pub fn timers(&self) -> Vec<(Timer, Duration)> {
        let mut t = Vec::new();
        self.for_each_timer(|name, at| t.push((name, at)));
        t
    }

    fn for_each_timer(&self, mut f: impl FnMut(Timer, Duration)) {
        for (name, at) in self.ml.timers() {
            f(Timer::Memberlist(name), at);
        }
        let st = self.state();
        f(Timer::Reap, st.next_reap);
        f(Timer::Reconnect, st.next_reconnect);
        f(Timer::QueueCheck, st.next_queue_check);
        if let Some(q) = st.next_query_deadline() {
            f(Timer::Query, q);
        }
        if let Some(l) = self.leave.deadline() {
            f(Timer::Leave, l);
        }
    }

    /// Next deadline: the earliest of [`Serf::timers`].
    pub fn poll_timeout(&self) -> Duration {
        let mut t = self.state().next_reap;
        self.for_each_timer(|_, at| t = t.min(at));
        t
    }

    /// Runs timers.
    pub fn handle_timeout(&mut self, now: Duration) {
        self.ml.handle_timeout(now);
        self.ml.delegate_mut().handle_timeout(now);
        self.start_conflict_vote(now);
        if now >= self.state().next_reconnect {
            let iv = self.state().cfg.reconnect_interval;
            self.ml.delegate_mut().next_reconnect = now + iv;
            self.reconnect();
        }
        self.step_leave(now);
    }

    /// Serf's reconnect: with probability failed/alive, push/pull-join one random failed
    /// member.
    fn reconnect(&mut self) {
        let st = self.ml.delegate_mut();
        let mut failed: Vec<(String, SocketAddr)> = st
            .members
            .values()
            .filter(|m| m.status == MemberStatus::Failed)
            .map(|m| {
                (
                    m.name().to_string(),
                    SocketAddr::new(m.info.addr, m.info.port),
                )
            })
            .collect();
        if failed.is_empty() {
            return;
        }
        failed.sort();
        let others = st
            .members
            .len()
            .saturating_sub(failed.len())
            .saturating_sub(
                st.members
                    .values()
                    .filter(|m| m.status == MemberStatus::Left)
                    .count(),
            );
        let alive = others.max(1) as f64;
        let prob = failed.len() as f64 / alive;
        if st.rng.unit() > prob {
            tracing::debug!("forgoing reconnect for random throttling");
            return;
        }
        let i = st.rng.below(failed.len());
        let (name, addr) = failed.swap_remove(i);
        tracing::info!("attempting reconnect to {name} {addr}");
        self.ml.push_pull_to(addr, true);
    }

    /// A datagram arrived.
    pub fn handle_packet(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        self.ml.handle_packet(now, from, data);
        self.wake_gossip();
        self.start_conflict_vote(now);
        self.step_leave(now);
    }

    /// The outcome of a stream exchange asked for by a [`Transmit::Stream`], or of a join
    /// push/pull ([`StreamPurpose::Join`]).
    pub fn handle_stream_result(
        &mut self,
        now: Duration,
        purpose: StreamPurpose,
        reply: Result<StreamMsg, String>,
    ) -> Result<(), Error> {
        let r = self.ml.handle_stream_result(now, purpose, reply);
        self.start_conflict_vote(now);
        r.map_err(Error::PushPull)
    }

    /// A stream request arrived; returns the framed reply.
    pub fn handle_stream(
        &mut self,
        now: Duration,
        from: SocketAddr,
        msg: StreamMsg,
    ) -> Option<Vec<u8>> {
        let reply = self.ml.handle_stream(now, from, msg);
        self.wake_gossip();
        reply
    }

    /// Starts a join: the framed push/pull to send to each seed. `replay` = also deliver
    /// user events older than the join.
    pub fn join_request(&mut self, replay: bool) -> Vec<u8> {
        self.ml.delegate_mut().event_join_ignore = !replay;
        self.ml.push_pull_request(true)
    }

    /// Restores the Lamport clocks from a snapshot before the node starts talking.
    pub fn restore_clocks(&mut self, clock: u64, event_clock: u64, query_clock: u64) {
        self.ml
            .delegate_mut()
            .restore_clocks(clock, event_clock, query_clock);
    }

    /// The framed push/pull for rejoining a node known from the snapshot: memberlist's
    /// join only, with no join intent, and old user events replayed (Go's snapshot
    /// rejoin).
    pub fn rejoin_request(&mut self) -> Vec<u8> {
        self.ml.push_pull_request(true)
    }

    /// A framed stream error reply (for a stream request that could not be read).
    pub fn encode_stream_error(&mut self, text: &str) -> Vec<u8> {
        self.ml.encode_stream_error(text)
    }

    /// The reply to a join or sync push/pull.
    pub fn handle_push_pull_reply(&mut self, now: Duration, msg: StreamMsg) -> Result<(), Error> {
        self.ml
            .handle_push_pull_reply(now, msg)
            .map_err(Error::PushPull)
    }

    /// Call after a join attempt contacted `num` nodes: gossips our join intent, and
    /// brings our next push/pull forward (see `Memberlist::push_pull_soon`).
    pub fn join_finished(&mut self, now: Duration, num: usize) {
        self.ml.delegate_mut().event_join_ignore = false;
        if num > 0 {
            self.ml.push_pull_soon(now);
            let st = self.ml.delegate_mut();
            let ltime = st.clock.time();
            let msg = JoinIntent {
                ltime,
                node: st.name.clone(),
            };
            st.clock.witness(ltime);
            st.handle_join_intent(&msg);
            st.queue_intent(SerfMessage::Join(msg).encode(), None);
        }
    }

    /// Starts a graceful leave: marks us leaving and gossips a leave intent; then, on the
    /// core's own timers, memberlist's leave and the propagation delay (see the `leave`
    /// module). [`Serf::leave_result`] tells when it is over.
    pub fn leave(&mut self, now: Duration) -> Result<(), Error> {
        let others = self.ml.num_alive() > 1;
        let st = self.ml.delegate_mut();
        match st.local_status() {
            Some(MemberStatus::Leaving) => return Err(Error::LeaveInProgress),
            Some(MemberStatus::Left) => {
                self.leave = LeavePhase::Done;
                return Ok(());
            }
            _ => {}
        }
        st.leaving = true;
        let ltime = st.clock.time();
        st.clock.increment();
        let msg = LeaveIntent {
            ltime,
            node: st.name.clone(),
            prune: false,
        };
        st.handle_leave_intent(&msg);
        st.leave_intent_sent = !others;
        if others {
            st.queue_intent(SerfMessage::Leave(msg).encode(), Some(LEAVE_INTENT_TOKEN));
            self.ml.gossip_soon();
        }
        let deadline = now + self.state().cfg.broadcast_timeout;
        self.leave = LeavePhase::Intent { deadline };
        self.leave_timed_out = false;
        self.step_leave(now);
        Ok(())
    }

    /// `None` while no leave finished; then `Ok`, or the first step that timed out (Go's
    /// `timeout while waiting for graceful leave`).
    pub fn leave_result(&self) -> Option<Result<(), Error>> {
        if self.leave != LeavePhase::Done {
            None
        } else if self.leave_timed_out {
            Some(Err(Error::LeaveTimeout))
        } else {
            Some(Ok(()))
        }
    }

    /// Whether our leave intent has been gossiped enough.
    pub fn leave_intent_sent(&self) -> bool {
        self.state().leave_intent_sent
    }

    /// Moves a graceful leave on as far as `now` allows.
    fn step_leave(&mut self, now: Duration) {
        loop {
            let next = match self.leave {
                LeavePhase::Intent { deadline } => {
                    let sent = self.state().leave_intent_sent;
                    if !sent && now < deadline {
                        return;
                    }
                    if !sent {
                        tracing::warn!("timeout while waiting for graceful leave");
                        self.leave_timed_out = true;
                    }
                    self.ml.leave(now);
                    LeavePhase::Memberlist {
                        deadline: now + self.state().cfg.broadcast_timeout,
                    }
                }
                LeavePhase::Memberlist { deadline } => {
                    let done = self.ml.leave_broadcast_done();
                    if !done && now < deadline {
                        return;
                    }
                    if !done {
                        tracing::warn!("timeout waiting for leave broadcast");
                    }
                    LeavePhase::Propagate {
                        until: now + self.state().cfg.leave_propagate_delay,
                    }
                }
                LeavePhase::Propagate { until } => {
                    if now < until {
                        return;
                    }
                    let st = self.ml.delegate_mut();
                    let name = st.name.clone();
                    if let Some(m) = st.members.get_mut(name.as_str()) {
                        m.status = MemberStatus::Left;
                    }
                    LeavePhase::Done
                }
                LeavePhase::Idle | LeavePhase::Done => return,
            };
            self.leave = next;
        }
    }

    /// Replaces the tags and gossips them (error above 512 encoded bytes, Go's text).
    pub fn set_tags(&mut self, now: Duration, tags: Vec<(String, String)>) -> Result<(), Error> {
        serf_wire::serf::encode_tags(&tags).map_err(Error::Tags)?;
        self.ml.delegate_mut().cfg.tags = tags;
        self.ml.update_meta(now);
        Ok(())
    }

    /// Fires a user event (Go's size checks and error texts).
    pub fn user_event(&mut self, name: &str, payload: &[u8], coalesce: bool) -> Result<(), Error> {
        let r = self.ml.delegate_mut().user_event(name, payload, coalesce);
        self.wake_gossip();
        r
    }

    /// Forces a failed member into the left state (force-leave).
    pub fn force_leave(&mut self, node: &str, prune: bool) {
        let st = self.ml.delegate_mut();
        let ltime = st.clock.time();
        st.clock.increment();
        let msg = LeaveIntent {
            ltime,
            node: node.to_string(),
            prune,
        };
        st.handle_leave_intent(&msg);
        st.queue_intent(SerfMessage::Leave(msg).encode(), None);
    }
}

impl Machine for Serf {
    type Delegate = SerfState;

    fn memberlist(&self) -> &Memberlist<SerfState> {
        &self.ml
    }

    fn handle_packet(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        Serf::handle_packet(self, now, from, data);
    }

    fn handle_stream(
        &mut self,
        now: Duration,
        from: SocketAddr,
        msg: StreamMsg,
    ) -> Option<Vec<u8>> {
        Serf::handle_stream(self, now, from, msg)
    }

    fn handle_stream_result(
        &mut self,
        now: Duration,
        purpose: StreamPurpose,
        reply: Result<StreamMsg, String>,
    ) -> Result<(), String> {
        Ok(Serf::handle_stream_result(self, now, purpose, reply)?)
    }

    fn handle_timeout(&mut self, now: Duration) {
        Serf::handle_timeout(self, now);
    }

    fn poll_timeout(&self) -> Duration {
        Serf::poll_timeout(self)
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        Serf::poll_transmit(self)
    }

    fn join_request(&mut self, replay: bool) -> Vec<u8> {
        Serf::join_request(self, replay)
    }

    fn join_finished(&mut self, now: Duration, contacted: usize) {
        Serf::join_finished(self, now, contacted);
    }

    fn start_leave(&mut self, now: Duration) -> Result<(), String> {
        Ok(self.leave(now)?)
    }

    fn leave_finished(&self) -> bool {
        self.leave == LeavePhase::Done
    }
}

/// Whether a Serf user message has a known type (used by tests and tools).
pub fn is_serf_message(b: &[u8]) -> bool {
    b.first().is_some_and(|&t| t <= serf_type::RELAY)
}
