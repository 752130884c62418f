//! Event coalescing (docs/serf-protocol.md section 13), pure: events and the current time
//! (a [`Duration`] on the caller's clock, as everywhere in the core) in, coalesced events
//! and the next deadline out.
//!
//! The agent enables two independent coalescers (Go: `CoalescePeriod` /
//! `QuiescentPeriod` and `UserCoalescePeriod` / `UserQuiescentPeriod`, all set to
//! 3 s / 1 s by `serf agent`):
//!
//! * **member coalescer** (join/leave/failed/update/reap): keeps the latest event
//!   type per node name; on flush emits one [`CoalescedEvent::Members`] per type.
//!   A node whose latest type equals the last type *sent* for it is skipped,
//!   unless the type is member-update.
//! * **user coalescer**: only user events with `coalesce == true`; per event name
//!   keeps the events with the highest LTime (all of them when several share it).
//!
//! Each coalescer has its own window: the first coalescible event starts the
//! "quantum" timer (`period`), every coalescible event restarts the "quiescent"
//! timer; the window is flushed when either expires (or on shutdown).
//! Everything else passes through immediately.
//!
//! Deliberate differences from Go 0.9.4:
//!
//! * Go never clears its "latest event per node" map, so every later flush
//!   re-emits a member-update for every node whose latest event was ever an
//!   update (spurious member-update events after unrelated joins/leaves, visible
//!   in the recorded handler invocations). We clear the pending map after each
//!   flush, so an update is delivered once. The "last sent type" map is kept (it
//!   implements the duplicate suppression), except that a node's entry is dropped
//!   once its member-reap is delivered (the node is gone; this bounds memory and
//!   is unobservable because a node must re-join before it can be reaped again).
//! * Go emits the events of a flush in random (map) order. We are deterministic:
//!   member events are grouped by type in order of the first node (in order of
//!   each node's latest event) of that type; user events are emitted per name in
//!   order of the name's first appearance in the window, then in arrival order.

use std::collections::HashMap;
use std::time::Duration;

use crate::member::{Event, Member};

/// The five member event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberEventType {
    /// `member-join`
    Join,
    /// `member-leave`
    Leave,
    /// `member-failed`
    Failed,
    /// `member-update`
    Update,
    /// `member-reap`
    Reap,
}

impl MemberEventType {
    /// The Go `EventType.String()` of this type (`member-join`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            MemberEventType::Join => "member-join",
            MemberEventType::Leave => "member-leave",
            MemberEventType::Failed => "member-failed",
            MemberEventType::Update => "member-update",
            MemberEventType::Reap => "member-reap",
        }
    }

    /// Splits a member event into its type and member.
    pub fn split(e: Event) -> Result<(MemberEventType, Member), Event> {
        match e {
            Event::MemberJoin(m) => Ok((MemberEventType::Join, m)),
            Event::MemberLeave(m) => Ok((MemberEventType::Leave, m)),
            Event::MemberFailed(m) => Ok((MemberEventType::Failed, m)),
            Event::MemberUpdate(m) => Ok((MemberEventType::Update, m)),
            Event::MemberReap(m) => Ok((MemberEventType::Reap, m)),
            other => Err(other),
        }
    }
}

/// What the coalescer delivers: member events may carry several members (Go's
/// `MemberEvent`), everything else is the original event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoalescedEvent {
    /// One member event for one or more members.
    Members {
        /// Event type.
        kind: MemberEventType,
        /// The members, never empty.
        members: Vec<Member>,
    },
    /// A non-member event (user event, query, query ack/response/done).
    Other(Event),
}

impl CoalescedEvent {
    /// Wraps an uncoalesced event (member events get a single member).
    pub fn from_event(e: Event) -> Self {
        match MemberEventType::split(e) {
            Ok((kind, m)) => CoalescedEvent::Members {
                kind,
                members: vec![m],
            },
            Err(other) => CoalescedEvent::Other(other),
        }
    }

    /// Go's `EventType.String()`: `member-*`, `user` or `query`; `None` for the
    /// query ack/response/done notifications, which are not Serf events in Go.
    pub fn event_type(&self) -> Option<&'static str> {
        match self {
            CoalescedEvent::Members { kind, .. } => Some(kind.as_str()),
            CoalescedEvent::Other(Event::User { .. }) => Some("user"),
            CoalescedEvent::Other(Event::Query { .. }) => Some("query"),
            CoalescedEvent::Other(_) => None,
        }
    }
}

/// Timing of one coalescer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Maximum time from the first coalesced event to the flush.
    pub period: Duration,
    /// Flush after this long without a new coalescible event.
    pub quiescent: Duration,
}

impl Default for Periods {
    /// The agent's values: 3 s / 1 s.
    fn default() -> Self {
        Periods {
            period: Duration::from_secs(3),
            quiescent: Duration::from_secs(1),
        }
    }
}

/// Which coalescers run, with which timing (`None` = disabled, events pass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoalesceConfig {
    /// Member event coalescer.
    pub member: Option<Periods>,
    /// User event coalescer (only `coalesce == true` events).
    pub user: Option<Periods>,
}

impl Default for CoalesceConfig {
    /// Both enabled with 3 s / 1 s, as `serf agent` configures Serf.
    fn default() -> Self {
        CoalesceConfig {
            member: Some(Periods::default()),
            user: Some(Periods::default()),
        }
    }
}

/// The quantum/quiescent timers of one coalescer.
#[derive(Debug, Default)]
struct Window {
    quantum: Option<Duration>,
    quiescent: Option<Duration>,
}

impl Window {
    fn touch(&mut self, now: Duration, p: Periods) {
        if self.quantum.is_none() {
            self.quantum = Some(now + p.period);
        }
        self.quiescent = Some(now + p.quiescent);
    }

    fn deadline(&self) -> Option<Duration> {
        match (self.quantum, self.quiescent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn due(&self, now: Duration) -> bool {
        self.deadline().is_some_and(|d| d <= now)
    }

    fn reset(&mut self) {
        self.quantum = None;
        self.quiescent = None;
    }
}

#[derive(Debug)]
struct MemberCoalescer {
    periods: Periods,
    window: Window,
    seq: u64,
    /// Latest event per node in the current window: (sequence, type, member).
    latest: HashMap<String, (u64, MemberEventType, Member)>,
    /// Last type delivered per node (never cleared, as in Go; see module docs).
    last: HashMap<String, MemberEventType>,
}

impl MemberCoalescer {
    fn new(periods: Periods) -> Self {
        MemberCoalescer {
            periods,
            window: Window::default(),
            seq: 0,
            latest: HashMap::new(),
            last: HashMap::new(),
        }
    }

    fn coalesce(&mut self, kind: MemberEventType, m: Member, now: Duration) {
        self.window.touch(now, self.periods);
        self.seq += 1;
        self.latest.insert(m.name.clone(), (self.seq, kind, m));
    }

    fn flush(&mut self, out: &mut Vec<CoalescedEvent>) {
        self.window.reset();
        let mut pending: Vec<(u64, MemberEventType, Member)> =
            self.latest.drain().map(|(_, v)| v).collect();
        pending.sort_by_key(|(seq, _, _)| *seq);
        let mut groups: Vec<(MemberEventType, Vec<Member>)> = Vec::new();
        for (_, kind, m) in pending {
            if kind != MemberEventType::Update && self.last.get(&m.name) == Some(&kind) {
                continue;
            }
            if kind == MemberEventType::Reap {
                self.last.remove(&m.name);
            } else {
                self.last.insert(m.name.clone(), kind);
            }
            match groups.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, members)) => members.push(m),
                None => groups.push((kind, vec![m])),
            }
        }
        out.extend(
            groups
                .into_iter()
                .map(|(kind, members)| CoalescedEvent::Members { kind, members }),
        );
    }
}

#[derive(Debug)]
struct UserCoalescer {
    periods: Periods,
    window: Window,
    seq: u64,
    /// Per name: (first-seen sequence, highest LTime, events with that LTime).
    events: HashMap<String, (u64, u64, Vec<Event>)>,
}

impl UserCoalescer {
    fn new(periods: Periods) -> Self {
        UserCoalescer {
            periods,
            window: Window::default(),
            seq: 0,
            events: HashMap::new(),
        }
    }

    fn coalesce(&mut self, e: Event, now: Duration) {
        let (name, ltime) = match &e {
            Event::User { name, ltime, .. } => (name.clone(), *ltime),
            _ => return,
        };
        self.window.touch(now, self.periods);
        self.seq += 1;
        let seq = self.seq;
        let entry = self.events.entry(name).or_insert((seq, ltime, Vec::new()));
        if ltime > entry.1 {
            entry.1 = ltime;
            entry.2.clear();
        }
        if ltime == entry.1 {
            entry.2.push(e);
        }
    }

    fn flush(&mut self, out: &mut Vec<CoalescedEvent>) {
        self.window.reset();
        let mut all: Vec<(u64, u64, Vec<Event>)> = self.events.drain().map(|(_, v)| v).collect();
        all.sort_by_key(|(seq, _, _)| *seq);
        out.extend(
            all.into_iter()
                .flat_map(|(_, _, evs)| evs.into_iter().map(CoalescedEvent::Other)),
        );
    }
}

/// Both coalescers, driven by explicit time (pure; no timers inside).
///
/// Usage: call [`Coalescer::push`] for every event and [`Coalescer::poll`] when
/// [`Coalescer::next_deadline`] is reached; [`Coalescer::flush_all`] at shutdown.
#[derive(Debug)]
pub struct Coalescer {
    member: Option<MemberCoalescer>,
    user: Option<UserCoalescer>,
}

impl Coalescer {
    /// New coalescer with the given configuration.
    pub fn new(cfg: CoalesceConfig) -> Self {
        Coalescer {
            member: cfg.member.map(MemberCoalescer::new),
            user: cfg.user.map(UserCoalescer::new),
        }
    }

    /// Feeds one event at time `now`. Returns what must be delivered now: first
    /// any window already due at `now`, then the event itself if it is not
    /// coalescible (or its coalescer is disabled).
    pub fn push(&mut self, e: Event, now: Duration) -> Vec<CoalescedEvent> {
        let mut out = self.poll(now);
        let e = match MemberEventType::split(e) {
            Ok((kind, m)) => {
                match self.member.as_mut() {
                    Some(c) => c.coalesce(kind, m, now),
                    None => out.push(CoalescedEvent::Members {
                        kind,
                        members: vec![m],
                    }),
                }
                return out;
            }
            Err(e) => e,
        };
        let coalescible = matches!(e, Event::User { coalesce: true, .. });
        match self.user.as_mut() {
            Some(c) if coalescible => c.coalesce(e, now),
            _ => out.push(CoalescedEvent::Other(e)),
        }
        out
    }

    /// Flushes every window whose timer expired at or before `now` (earliest first).
    pub fn poll(&mut self, now: Duration) -> Vec<CoalescedEvent> {
        let mut out = Vec::new();
        let member_due = self.member.as_ref().and_then(|c| {
            if c.window.due(now) {
                c.window.deadline()
            } else {
                None
            }
        });
        let user_due = self.user.as_ref().and_then(|c| {
            if c.window.due(now) {
                c.window.deadline()
            } else {
                None
            }
        });
        let user_first = match (member_due, user_due) {
            (Some(m), Some(u)) => u <= m,
            _ => true,
        };
        if user_first {
            if let (Some(c), Some(_)) = (self.user.as_mut(), user_due) {
                c.flush(&mut out);
            }
        }
        if let (Some(c), Some(_)) = (self.member.as_mut(), member_due) {
            c.flush(&mut out);
        }
        if !user_first {
            if let (Some(c), Some(_)) = (self.user.as_mut(), user_due) {
                c.flush(&mut out);
            }
        }
        out
    }

    /// When [`Coalescer::poll`] must next be called (`None`: nothing pending).
    pub fn next_deadline(&self) -> Option<Duration> {
        let m = self.member.as_ref().and_then(|c| c.window.deadline());
        let u = self.user.as_ref().and_then(|c| c.window.deadline());
        match (m, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Flushes everything pending (shutdown).
    pub fn flush_all(&mut self) -> Vec<CoalescedEvent> {
        let mut out = Vec::new();
        if let Some(c) = self.user.as_mut() {
            c.flush(&mut out);
        }
        if let Some(c) = self.member.as_mut() {
            c.flush(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
