//! The simulation trace and the default recording delegate.
//!
//! Every node's delegate and the simulator itself append [`TraceEvent`]s to one shared
//! [`TraceSink`]. Two runs with the same seed must produce identical traces.

use serf_membership::{Delegate, Node, NodeStateKind};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Index of a simulated node (its slot; stable across crash and restart).
pub type NodeId = usize;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceKind {
    /// The observer's delegate got `notify_join` for `member`.
    MemberJoin {
        /// Member name.
        member: String,
        /// Its incarnation as recorded by the observer.
        incarnation: u32,
    },
    /// The observer's delegate got `notify_leave` (state Dead or Left).
    MemberLeave {
        /// Member name.
        member: String,
        /// Dead (failed) or Left.
        state: NodeStateKind,
        /// Its incarnation as recorded by the observer.
        incarnation: u32,
    },
    /// The observer's delegate got `notify_update`.
    MemberUpdate {
        /// Member name.
        member: String,
        /// Its incarnation as recorded by the observer.
        incarnation: u32,
    },
    /// The observer's delegate got `notify_conflict`.
    Conflict {
        /// Member name.
        member: String,
    },
    /// The node was created (first start).
    Started,
    /// The node started a join (push/pull with `join=true`) through `seed`.
    JoinStarted {
        /// Seed node name.
        seed: String,
    },
    /// The join reply arrived and was merged (`ok`) or refused (`!ok`).
    JoinReply {
        /// Whether the merge succeeded.
        ok: bool,
    },
    /// The join got no reply within the TCP timeout.
    JoinTimedOut,
    /// A graceful leave started.
    LeaveStarted,
    /// The leave broadcast was sent; the node stopped.
    Stopped,
    /// The node crashed.
    Crashed,
    /// The node was restarted with a fresh core.
    Restarted,
    /// The node was paused (SIGSTOP).
    Paused,
    /// The node was resumed; `queued` inbound items were waiting, `dropped` overflowed.
    Resumed {
        /// Items delivered on resume.
        queued: usize,
        /// Packets dropped because the buffer was full.
        dropped: u64,
    },
    /// Inbound processing delay changed.
    Starved {
        /// The delay.
        delay: Duration,
    },
    /// The network was partitioned into these groups (node ids).
    Partition {
        /// Groups.
        groups: Vec<Vec<NodeId>>,
    },
    /// All partitions healed.
    Heal,
    /// A stream reply or request could not be decoded.
    StreamError {
        /// Decoder error text.
        error: String,
    },
}

/// One trace entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Virtual time.
    pub time: Duration,
    /// The node it happened at (the observer for member events); `None` for network-wide
    /// events.
    pub node: Option<NodeId>,
    /// What.
    pub kind: TraceKind,
}

#[derive(Debug, Default)]
struct Inner {
    events: RefCell<Vec<TraceEvent>>,
    now: Cell<Duration>,
}

/// Shared, append-only trace (single-threaded: the simulator runs in one thread). It also
/// carries the current virtual time, for callbacks that are not given a clock.
#[derive(Debug, Clone, Default)]
pub struct TraceSink(Rc<Inner>);

impl TraceSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an event.
    pub fn push(&self, time: Duration, node: Option<NodeId>, kind: TraceKind) {
        self.0
            .events
            .borrow_mut()
            .push(TraceEvent { time, node, kind });
    }

    /// Appends an event at the current virtual time.
    pub fn push_now(&self, node: Option<NodeId>, kind: TraceKind) {
        self.push(self.now(), node, kind);
    }

    /// Current virtual time (maintained by the simulator).
    pub fn now(&self) -> Duration {
        self.0.now.get()
    }

    /// Sets the current virtual time (the simulator does this before every step).
    pub fn set_now(&self, now: Duration) {
        self.0.now.set(now);
    }

    /// A copy of all events so far.
    pub fn snapshot(&self) -> Vec<TraceEvent> {
        self.0.events.borrow().clone()
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.0.events.borrow().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.events.borrow().is_empty()
    }

    /// Runs `f` over the events without copying them.
    pub fn with<R>(&self, f: impl FnOnce(&[TraceEvent]) -> R) -> R {
        f(&self.0.events.borrow())
    }
}

/// Everything a delegate factory may want to know about the node it builds a delegate for.
#[derive(Debug, Clone)]
pub struct NodeCtx {
    /// Slot id.
    pub id: NodeId,
    /// Node name.
    pub name: String,
    /// Virtual address.
    pub addr: std::net::SocketAddr,
    /// 0 for the first start, +1 per restart.
    pub generation: u32,
    /// The simulation trace.
    pub trace: TraceSink,
}

/// The default delegate: records join/leave/update/conflict notifications into the trace.
#[derive(Debug, Clone)]
pub struct RecordingDelegate {
    node: NodeId,
    trace: TraceSink,
    /// Metadata advertised by this node.
    pub meta: Vec<u8>,
}

impl RecordingDelegate {
    /// A delegate for the node described by `ctx`.
    pub fn new(ctx: &NodeCtx) -> Self {
        RecordingDelegate {
            node: ctx.id,
            trace: ctx.trace.clone(),
            meta: Vec::new(),
        }
    }
}

impl Delegate for RecordingDelegate {
    fn node_meta(&mut self, limit: usize) -> Vec<u8> {
        let mut m = self.meta.clone();
        m.truncate(limit);
        m
    }

    fn notify_join(&mut self, now: Duration, node: &Node) {
        let kind = TraceKind::MemberJoin {
            member: node.name.clone(),
            incarnation: node.incarnation,
        };
        self.trace.push(now, Some(self.node), kind);
    }

    fn notify_leave(&mut self, now: Duration, node: &Node) {
        let kind = TraceKind::MemberLeave {
            member: node.name.clone(),
            state: node.state,
            incarnation: node.incarnation,
        };
        self.trace.push(now, Some(self.node), kind);
    }

    fn notify_update(&mut self, now: Duration, node: &Node) {
        let kind = TraceKind::MemberUpdate {
            member: node.name.clone(),
            incarnation: node.incarnation,
        };
        self.trace.push(now, Some(self.node), kind);
    }

    fn notify_conflict(&mut self, existing: &Node, _other: &Node) {
        // No clock in this callback: the sink knows the current virtual time.
        let kind = TraceKind::Conflict {
            member: existing.name.clone(),
        };
        self.trace.push_now(Some(self.node), kind);
    }
}
