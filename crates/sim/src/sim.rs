//! The discrete-event simulator: many membership cores, one virtual clock, one virtual
//! network.
//!
//! Events live in a priority queue ordered by virtual time, then by insertion sequence, so
//! a run is a pure function of the seed and of the calls made by the test.

use crate::net::{LinkParams, NetConfig, NetStats, NodeNetStats};
use crate::trace::{NodeCtx, NodeId, RecordingDelegate, TraceEvent, TraceKind, TraceSink};
use serf_membership::{
    Config, Delegate, Machine, Memberlist, NodeStateKind, Rng, StreamPurpose, Transmit,
};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

mod inbound;
mod network;

/// Port every virtual node listens on.
pub const PORT: u16 = 7946;

/// Largest number of nodes (addresses 10.0.0.1 .. 10.0.255.250).
pub const MAX_NODES: usize = 256 * 250;

/// The virtual address of slot `id`: `10.0.x.y:7946`.
pub fn node_addr(id: NodeId) -> SocketAddr {
    let x = u8::try_from(id / 250).unwrap_or(u8::MAX);
    let y = u8::try_from(id % 250 + 1).unwrap_or(u8::MAX);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, x, y)), PORT)
}

/// SplitMix64 finalizer, used to derive independent seeds from the master seed.
pub fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Life-cycle state of a simulated process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Running (possibly paused or starved).
    Running,
    /// Crashed: processes nothing, its packets are dropped.
    Crashed,
    /// Left gracefully and stopped.
    Stopped,
}

#[derive(Debug)]
struct PendingStream {
    initiator: NodeId,
    epoch: u64,
    kind: StreamPurpose,
}

#[derive(Debug)]
enum Inbound {
    Packet {
        from: NodeId,
        data: Vec<u8>,
    },
    StreamRequest {
        stream: u64,
        from: NodeId,
        data: Vec<u8>,
    },
    StreamReply {
        stream: u64,
        from: NodeId,
        data: Vec<u8>,
    },
    StreamTimeout {
        stream: u64,
    },
}

impl Inbound {
    fn source(&self) -> Option<NodeId> {
        match self {
            Inbound::Packet { from, .. }
            | Inbound::StreamRequest { from, .. }
            | Inbound::StreamReply { from, .. } => Some(*from),
            Inbound::StreamTimeout { .. } => None,
        }
    }
}

#[derive(Debug)]
enum Action {
    /// The node's core timer.
    Timer { node: NodeId, token: u64 },
    /// Something reaches the node's kernel (network), or a local stream timer fires.
    Arrive { node: NodeId, msg: Inbound },
    /// The node's process gets to handle an inbound item (after starvation delay).
    Process {
        node: NodeId,
        epoch: u64,
        msg: Inbound,
    },
}

#[derive(Debug)]
struct Event {
    time: Duration,
    seq: u64,
    action: Action,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.seq == other.seq
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    // BinaryHeap is a max-heap: the earliest (time, seq) must compare greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        other.time.cmp(&self.time).then(other.seq.cmp(&self.seq))
    }
}

#[derive(Debug)]
struct Slot<M> {
    name: String,
    addr: SocketAddr,
    core: M,
    status: Status,
    /// Bumped on crash/restart/stop: events of an older process are discarded.
    epoch: u64,
    generation: u32,
    paused: bool,
    pause_queue: VecDeque<Inbound>,
    pause_queue_packets: usize,
    pause_dropped: u64,
    starve: Duration,
    last_process: Duration,
    timer_at: Option<Duration>,
    timer_token: u64,
    leaving: bool,
    net: NodeNetStats,
}

/// Builds a node's machine from its context, configuration, seed and start time.
type Factory<M> = Box<dyn FnMut(&NodeCtx, Config, u64, Duration) -> M>;
type ConfigHook = Box<dyn FnMut(NodeId, &mut Config)>;
type DriveHook<M> = Box<dyn FnMut(NodeId, &mut M, Duration)>;

/// The simulator. See the crate documentation.
pub struct Sim<M: Machine> {
    seed: u64,
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Event>,
    slots: Vec<Slot<M>>,
    by_addr: HashMap<SocketAddr, NodeId>,
    by_name: HashMap<String, NodeId>,
    template: Config,
    factory: Factory<M>,
    config_hook: Option<ConfigHook>,
    drive_hook: Option<DriveHook<M>>,
    rng: Rng,
    net: NetConfig,
    links: HashMap<(NodeId, NodeId), LinkParams>,
    groups: Option<Vec<u32>>,
    streams: BTreeMap<u64, PendingStream>,
    next_stream: u64,
    stats: NetStats,
    trace: TraceSink,
    events_processed: u64,
    timer_spins: u64,
    /// Virtual-time granularity at which [`Sim::run_until`] evaluates its predicate.
    pub check_every: Duration,
}

impl<M: Machine> std::fmt::Debug for Sim<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.seed)
            .field("now", &self.now)
            .field("nodes", &self.slots.len())
            .field("pending_events", &self.queue.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Sim<Memberlist<RecordingDelegate>> {
    /// A simulator whose nodes use [`RecordingDelegate`].
    pub fn new_recording(seed: u64, template: Config) -> Self {
        Sim::new(seed, template, RecordingDelegate::new)
    }
}

impl<D: Delegate + 'static> Sim<Memberlist<D>> {
    /// A simulator driven by `seed` of bare membership cores. Every node gets a clone of
    /// `template` with its own name, address and port; `factory` builds each node's
    /// delegate (again on restart).
    pub fn new(
        seed: u64,
        template: Config,
        mut factory: impl FnMut(&NodeCtx) -> D + 'static,
    ) -> Self {
        Sim::with_machines(seed, template, move |ctx, cfg, node_seed, now| {
            Memberlist::new(cfg, factory(ctx), node_seed, now)
        })
    }
}

impl<M: Machine> Sim<M> {
    /// A simulator whose nodes are the machines `factory` builds from a node's context,
    /// its configuration (the template with the node's name and address), its seed and
    /// the current virtual time: bare memberlists, or whole Serf nodes.
    pub fn with_machines(
        seed: u64,
        template: Config,
        factory: impl FnMut(&NodeCtx, Config, u64, Duration) -> M + 'static,
    ) -> Self {
        Sim {
            seed,
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            by_addr: HashMap::new(),
            by_name: HashMap::new(),
            template,
            factory: Box::new(factory),
            config_hook: None,
            drive_hook: None,
            rng: Rng::new(mix64(seed ^ 0x6e65_7477_6f72_6b21)),
            net: NetConfig::default(),
            links: HashMap::new(),
            groups: None,
            streams: BTreeMap::new(),
            next_stream: 0,
            stats: NetStats::default(),
            trace: TraceSink::new(),
            events_processed: 0,
            timer_spins: 0,
            check_every: Duration::from_millis(10),
        }
    }

    /// Adjusts each node's configuration after the template was applied (called on start
    /// and restart).
    pub fn set_config_hook(&mut self, hook: impl FnMut(NodeId, &mut Config) + 'static) {
        self.config_hook = Some(Box::new(hook));
    }

    /// Calls `hook(node, core, now)` every time the simulator has driven a running node's
    /// core (start, inbound datagram or stream item, timer, join, leave, [`Sim::with_core`]),
    /// before the core's transmits are routed. Use it to drain application-level output
    /// of the delegate (e.g. Serf events) at the exact virtual time it was produced.
    pub fn set_drive_hook(&mut self, hook: impl FnMut(NodeId, &mut M, Duration) + 'static) {
        self.drive_hook = Some(Box::new(hook));
    }

    // ----- accessors -----

    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// Number of node slots (including crashed and stopped nodes).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no node was added.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// All node ids.
    pub fn ids(&self) -> std::ops::Range<NodeId> {
        0..self.slots.len()
    }

    /// Ids of running nodes (paused nodes included).
    pub fn live_nodes(&self) -> Vec<NodeId> {
        self.ids()
            .filter(|&i| self.slots[i].status == Status::Running)
            .collect()
    }

    /// A node's name.
    pub fn name(&self, id: NodeId) -> &str {
        &self.slots[id].name
    }

    /// A node's virtual address.
    pub fn addr(&self, id: NodeId) -> SocketAddr {
        self.slots[id].addr
    }

    /// Slot of a node by name.
    pub fn id_of(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// Life-cycle state.
    pub fn status(&self, id: NodeId) -> Status {
        self.slots[id].status
    }

    /// Running (not crashed, not stopped).
    pub fn is_running(&self, id: NodeId) -> bool {
        self.slots[id].status == Status::Running
    }

    /// Whether the node is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.slots[id].paused
    }

    /// The node's membership core (for a crashed or stopped node: its last state).
    pub fn core(&self, id: NodeId) -> &M {
        &self.slots[id].core
    }

    /// Runs `f` on a node's core at the current virtual time, then sends whatever it
    /// queued and reschedules its timer. Use this for local operations (e.g. metadata
    /// updates) instead of mutating the core behind the simulator's back.
    pub fn with_core<R>(&mut self, id: NodeId, f: impl FnOnce(&mut M, Duration) -> R) -> R {
        let now = self.now;
        let r = f(&mut self.slots[id].core, now);
        if self.slots[id].status == Status::Running {
            self.flush(id, false);
        } else {
            while self.slots[id].core.poll_transmit().is_some() {}
        }
        r
    }

    /// Network counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Per-node datagram counters.
    pub fn node_stats(&self, id: NodeId) -> NodeNetStats {
        self.slots[id].net
    }

    /// Events processed so far (a measure of simulation cost).
    pub fn events_processed(&self) -> u64 {
        self.events_processed
    }

    /// Times a core asked to be woken at or before the instant it was just woken (should
    /// stay 0; the simulator then waits 1 ms to avoid spinning).
    pub fn timer_spins(&self) -> u64 {
        self.timer_spins
    }

    /// The shared trace sink (the same one given to delegate factories).
    pub fn trace_sink(&self) -> &TraceSink {
        &self.trace
    }

    /// A copy of the trace.
    pub fn trace(&self) -> Vec<TraceEvent> {
        self.trace.snapshot()
    }

    /// Network settings.
    pub fn net_config(&self) -> NetConfig {
        self.net
    }

    /// Replaces the network settings (per-link overrides are kept).
    pub fn set_net_config(&mut self, net: NetConfig) {
        self.net = net;
    }

    // ----- membership views -----

    /// What `id` knows: `(name, state, incarnation)` for every node in its list, by name.
    pub fn view(&self, id: NodeId) -> Vec<(String, NodeStateKind, u32)> {
        let mut v: Vec<_> = self.slots[id]
            .core
            .memberlist()
            .nodes()
            .map(|n| (n.name.clone(), n.state, n.incarnation))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// How `observer` sees `member`: `(state, incarnation)`, or `None` if unknown.
    pub fn state_of(&self, observer: NodeId, member: NodeId) -> Option<(NodeStateKind, u32)> {
        self.slots[observer]
            .core
            .memberlist()
            .node(&self.slots[member].name)
            .map(|n| (n.state, n.incarnation))
    }

    /// Whether every running node sees exactly the nodes of `expected_alive` in state
    /// Alive (anything else it knows must be suspect, dead, left or forgotten).
    pub fn converged(&self, expected_alive: &[NodeId]) -> bool {
        self.ids()
            .filter(|&i| self.is_running(i))
            .all(|i| self.sees_exactly(i, expected_alive))
    }

    /// Whether `observer` sees exactly the nodes of `expected_alive` alive.
    pub fn sees_exactly(&self, observer: NodeId, expected_alive: &[NodeId]) -> bool {
        let core = self.slots[observer].core.memberlist();
        let all_alive = expected_alive.iter().all(|&m| {
            core.node(&self.slots[m].name)
                .is_some_and(|n| n.state == NodeStateKind::Alive)
        });
        let count = core
            .nodes()
            .filter(|n| n.state == NodeStateKind::Alive)
            .count();
        all_alive && count == expected_alive.len()
    }

    // ----- node life cycle -----

    fn node_seed(&self, id: NodeId, generation: u32) -> u64 {
        mix64(self.seed ^ mix64(((id as u64) << 32) | u64::from(generation)))
    }

    fn new_core(&mut self, id: NodeId, name: &str, generation: u32) -> M {
        let addr = node_addr(id);
        let ctx = NodeCtx {
            id,
            name: name.to_string(),
            addr,
            generation,
            trace: self.trace.clone(),
        };
        let mut cfg = self.template.clone();
        cfg.name = name.to_string();
        cfg.addr = addr.ip();
        cfg.port = addr.port();
        if let Some(h) = self.config_hook.as_mut() {
            h(id, &mut cfg);
        }
        let seed = self.node_seed(id, generation);
        (self.factory)(&ctx, cfg, seed, self.now)
    }

    /// Starts a new node now. Panics on a duplicate name or beyond [`MAX_NODES`].
    pub fn add_node(&mut self, name: &str) -> NodeId {
        let id = self.slots.len();
        assert!(id < MAX_NODES, "too many simulated nodes");
        assert!(
            !self.by_name.contains_key(name),
            "duplicate node name {name}"
        );
        let core = self.new_core(id, name, 0);
        let addr = node_addr(id);
        self.slots.push(Slot {
            name: name.to_string(),
            addr,
            core,
            status: Status::Running,
            epoch: 0,
            generation: 0,
            paused: false,
            pause_queue: VecDeque::new(),
            pause_queue_packets: 0,
            pause_dropped: 0,
            starve: Duration::ZERO,
            last_process: self.now,
            timer_at: None,
            timer_token: 0,
            leaving: false,
            net: NodeNetStats::default(),
        });
        self.by_addr.insert(addr, id);
        self.by_name.insert(name.to_string(), id);
        self.trace.push(self.now, Some(id), TraceKind::Started);
        self.flush(id, false);
        id
    }

    /// `node` joins the cluster through `seed` (a push/pull stream with `join = true`).
    /// The outcome is traced as [`TraceKind::JoinReply`] or [`TraceKind::JoinTimedOut`].
    pub fn join(&mut self, node: NodeId, seed: NodeId) {
        if !self.is_running(node) {
            return;
        }
        let data = self.slots[node].core.join_request(false);
        let seed_name = self.slots[seed].name.clone();
        self.trace.push(
            self.now,
            Some(node),
            TraceKind::JoinStarted { seed: seed_name },
        );
        let to = self.slots[seed].addr;
        let timeout = self.slots[node].core.memberlist().config().tcp_timeout;
        self.open_stream(node, to, data, StreamPurpose::Join, timeout);
        self.flush(node, false);
    }

    /// Starts a graceful leave; the node stops once its leave broadcast is done.
    pub fn leave(&mut self, node: NodeId) {
        if !self.is_running(node) || self.slots[node].leaving {
            return;
        }
        self.slots[node].leaving = true;
        self.trace
            .push(self.now, Some(node), TraceKind::LeaveStarted);
        let now = self.now;
        if let Err(e) = self.slots[node].core.start_leave(now) {
            self.trace
                .push(now, Some(node), TraceKind::StreamError { error: e });
        }
        self.flush(node, false);
    }

    fn kill(&mut self, id: NodeId, status: Status) {
        let s = &mut self.slots[id];
        s.status = status;
        s.epoch += 1;
        s.paused = false;
        s.pause_queue.clear();
        s.pause_queue_packets = 0;
        s.timer_token += 1;
        s.timer_at = None;
        s.leaving = false;
        while s.core.poll_transmit().is_some() {}
    }

    /// Crashes a node: it stops processing and its address drops everything.
    pub fn crash(&mut self, id: NodeId) {
        if self.is_running(id) {
            self.kill(id, Status::Crashed);
            self.trace.push(self.now, Some(id), TraceKind::Crashed);
        }
    }

    /// Restarts a node (crashing it first if running) with a fresh core: same name and
    /// address, a new seed, incarnation 1. If `via` is given it joins through that node.
    pub fn restart(&mut self, id: NodeId, via: Option<NodeId>) {
        if self.is_running(id) {
            self.crash(id);
        }
        let generation = self.slots[id].generation + 1;
        let name = self.slots[id].name.clone();
        let core = self.new_core(id, &name, generation);
        let now = self.now;
        let s = &mut self.slots[id];
        s.core = core;
        s.generation = generation;
        s.status = Status::Running;
        s.epoch += 1;
        s.last_process = now;
        s.starve = Duration::ZERO;
        self.trace.push(now, Some(id), TraceKind::Restarted);
        self.flush(id, false);
        if let Some(v) = via {
            self.join(id, v);
        }
    }

    /// Pauses a node (SIGSTOP): no processing, no timers; inbound datagrams queue in a
    /// bounded kernel buffer ([`NetConfig::pause_buffer_packets`]) and overflow is dropped.
    pub fn pause(&mut self, id: NodeId) {
        let s = &mut self.slots[id];
        if s.status != Status::Running || s.paused {
            return;
        }
        s.paused = true;
        s.pause_dropped = 0;
        s.timer_token += 1;
        s.timer_at = None;
        self.trace.push(self.now, Some(id), TraceKind::Paused);
    }

    /// Resumes a paused node: it handles its queued input, then its overdue timers.
    pub fn resume(&mut self, id: NodeId) {
        let s = &mut self.slots[id];
        if s.status != Status::Running || !s.paused {
            return;
        }
        s.paused = false;
        let queued = std::mem::take(&mut s.pause_queue);
        s.pause_queue_packets = 0;
        let dropped = s.pause_dropped;
        self.trace.push(
            self.now,
            Some(id),
            TraceKind::Resumed {
                queued: queued.len(),
                dropped,
            },
        );
        for msg in queued {
            self.enqueue_processing(id, msg);
        }
        self.reschedule(id, false);
    }

    /// Delays the node's inbound processing by `delay` (FIFO) while its timers stay on
    /// time: a node that cannot keep up with its inbox. `Duration::ZERO` ends it.
    pub fn starve(&mut self, id: NodeId, delay: Duration) {
        self.slots[id].starve = delay;
        self.trace
            .push(self.now, Some(id), TraceKind::Starved { delay });
    }

    // ----- running -----

    fn set_time(&mut self, t: Duration) {
        self.now = t;
        self.trace.set_now(t);
    }

    fn push(&mut self, time: Duration, action: Action) {
        self.seq += 1;
        self.queue.push(Event {
            time,
            seq: self.seq,
            action,
        });
    }

    /// Time of the next pending event.
    pub fn next_event_time(&self) -> Option<Duration> {
        self.queue.peek().map(|e| e.time)
    }

    /// Processes one event; false if none is pending.
    pub fn step(&mut self) -> bool {
        let Some(ev) = self.queue.pop() else {
            return false;
        };
        if ev.time > self.now {
            self.set_time(ev.time);
        }
        self.events_processed += 1;
        match ev.action {
            Action::Timer { node, token } => self.on_timer(node, token),
            Action::Arrive { node, msg } => self.on_arrive(node, msg),
            Action::Process { node, epoch, msg } => {
                let s = &mut self.slots[node];
                if s.status != Status::Running || s.epoch != epoch {
                    return true;
                }
                if s.paused {
                    s.pause_queue.push_back(msg);
                } else {
                    self.process(node, msg);
                }
            }
        }
        true
    }

    /// Runs every event up to `now + d`; the clock then reads `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_event_time().is_some_and(|t| t <= end) {
            self.step();
        }
        self.set_time(end);
    }

    /// Runs until `pred` holds (checked at least every [`Sim::check_every`] of virtual time
    /// while events happen) or `max` has elapsed. Returns whether `pred` held; on success
    /// the clock reads the time of the last event processed before the check.
    pub fn run_until(&mut self, mut pred: impl FnMut(&Self) -> bool, max: Duration) -> bool {
        let end = self.now + max;
        if pred(self) {
            return true;
        }
        let mut next_check = self.now + self.check_every;
        loop {
            let Some(t) = self.next_event_time().filter(|&t| t <= end) else {
                self.set_time(end);
                return pred(self);
            };
            if t >= next_check {
                if pred(self) {
                    return true;
                }
                next_check = t + self.check_every;
            }
            self.step();
        }
    }

    fn on_timer(&mut self, node: NodeId, token: u64) {
        let now = self.now;
        let s = &mut self.slots[node];
        if s.status != Status::Running || s.timer_token != token {
            return;
        }
        s.timer_at = None;
        if s.paused {
            return;
        }
        if s.core.poll_timeout() <= now {
            s.core.handle_timeout(now);
            self.flush(node, true);
        } else {
            self.reschedule(node, false);
        }
    }

    fn reschedule(&mut self, node: NodeId, after_timeout: bool) {
        let now = self.now;
        let s = &mut self.slots[node];
        if s.status != Status::Running || s.paused {
            return;
        }
        let mut t = s.core.poll_timeout();
        if t <= now {
            if after_timeout {
                self.timer_spins += 1;
                t = now + Duration::from_millis(1);
            } else {
                t = now;
            }
        }
        // An earlier pending wake-up is kept: it re-checks and reschedules.
        if s.timer_at.is_some_and(|at| at <= t) {
            return;
        }
        s.timer_token += 1;
        s.timer_at = Some(t);
        let token = s.timer_token;
        self.push(t, Action::Timer { node, token });
    }

    /// Sends what the core queued, stops a node whose leave is done, re-arms its timer.
    fn flush(&mut self, node: NodeId, after_timeout: bool) {
        if let Some(h) = self.drive_hook.as_mut() {
            h(node, &mut self.slots[node].core, self.now);
        }
        while let Some(t) = self.slots[node].core.poll_transmit() {
            self.route(node, t);
        }
        let s = &self.slots[node];
        if s.leaving && s.core.leave_finished() {
            self.kill(node, Status::Stopped);
            self.trace.push(self.now, Some(node), TraceKind::Stopped);
            return;
        }
        self.reschedule(node, after_timeout);
    }
}
