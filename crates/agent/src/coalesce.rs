//! Local event coalescing (docs/serf-protocol.md section 13).
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
#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use serf_core::state::{Event, Member};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// The five member event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MemberEventType {
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
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MemberEventType::Join => "member-join",
            MemberEventType::Leave => "member-leave",
            MemberEventType::Failed => "member-failed",
            MemberEventType::Update => "member-update",
            MemberEventType::Reap => "member-reap",
        }
    }

    /// Splits a member event into its type and member.
    pub(crate) fn split(e: Event) -> Result<(MemberEventType, Member), Event> {
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
pub(crate) enum CoalescedEvent {
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
    pub(crate) fn from_event(e: Event) -> Self {
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
    pub(crate) fn event_type(&self) -> Option<&'static str> {
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
pub(crate) struct Periods {
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
pub(crate) struct CoalesceConfig {
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
    quantum: Option<Instant>,
    quiescent: Option<Instant>,
}

impl Window {
    fn touch(&mut self, now: Instant, p: Periods) {
        if self.quantum.is_none() {
            self.quantum = Some(now + p.period);
        }
        self.quiescent = Some(now + p.quiescent);
    }

    fn deadline(&self) -> Option<Instant> {
        match (self.quantum, self.quiescent) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn due(&self, now: Instant) -> bool {
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

    fn coalesce(&mut self, kind: MemberEventType, m: Member, now: Instant) {
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

    fn coalesce(&mut self, e: Event, now: Instant) {
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
pub(crate) struct Coalescer {
    member: Option<MemberCoalescer>,
    user: Option<UserCoalescer>,
}

impl Coalescer {
    /// New coalescer with the given configuration.
    pub(crate) fn new(cfg: CoalesceConfig) -> Self {
        Coalescer {
            member: cfg.member.map(MemberCoalescer::new),
            user: cfg.user.map(UserCoalescer::new),
        }
    }

    /// Feeds one event at time `now`. Returns what must be delivered now: first
    /// any window already due at `now`, then the event itself if it is not
    /// coalescible (or its coalescer is disabled).
    pub(crate) fn push(&mut self, e: Event, now: Instant) -> Vec<CoalescedEvent> {
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
    pub(crate) fn poll(&mut self, now: Instant) -> Vec<CoalescedEvent> {
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
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let m = self.member.as_ref().and_then(|c| c.window.deadline());
        let u = self.user.as_ref().and_then(|c| c.window.deadline());
        match (m, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Flushes everything pending (shutdown).
    pub(crate) fn flush_all(&mut self) -> Vec<CoalescedEvent> {
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

/// Runs a [`Coalescer`] between the agent's event broadcast and a consumer.
///
/// Returns (after flushing what is pending) when the broadcast closes, or as
/// soon as the consumer is gone. A lagging receiver logs how many events were
/// lost and continues.
pub(crate) async fn run(
    mut rx: broadcast::Receiver<Event>,
    cfg: CoalesceConfig,
    tx: mpsc::Sender<CoalescedEvent>,
) {
    let mut c = Coalescer::new(cfg);
    loop {
        let deadline = c.next_deadline();
        let out = tokio::select! {
            r = rx.recv() => match r {
                Ok(e) => c.push(e, Instant::now()),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("Event coalescer fell behind, {n} events were lost");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    for e in c.flush_all() {
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
            },
            _ = sleep_until_opt(deadline) => c.poll(Instant::now()),
        };
        for e in out {
            if tx.send(e).await.is_err() {
                return;
            }
        }
    }
}

async fn sleep_until_opt(d: Option<Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serf_core::state::MemberStatus;
    use std::net::{IpAddr, Ipv4Addr};

    fn member(name: &str) -> Member {
        Member {
            name: name.to_string(),
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 7946,
            tags: Vec::new(),
            status: MemberStatus::Alive,
            vsn: [2, 5, 5, 2, 5, 4],
            status_ltime: 1,
            leave_time: None,
        }
    }

    fn user(name: &str, ltime: u64, payload: &str, coalesce: bool) -> Event {
        Event::User {
            ltime,
            name: name.to_string(),
            payload: payload.as_bytes().to_vec(),
            coalesce,
        }
    }

    fn names(e: &CoalescedEvent) -> (&'static str, Vec<String>) {
        match e {
            CoalescedEvent::Members { kind, members } => (
                kind.as_str(),
                members.iter().map(|m| m.name.clone()).collect(),
            ),
            CoalescedEvent::Other(Event::User { name, ltime, .. }) => {
                ("user", vec![format!("{name}@{ltime}")])
            }
            CoalescedEvent::Other(_) => ("other", vec![]),
        }
    }

    fn summary(v: &[CoalescedEvent]) -> Vec<(&'static str, Vec<String>)> {
        v.iter().map(names).collect()
    }

    fn s(list: &[&str]) -> Vec<String> {
        list.iter().map(|x| x.to_string()).collect()
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn quiescent_flush_groups_by_type() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        assert!(c.push(Event::MemberJoin(member("a")), t0).is_empty());
        assert!(c
            .push(Event::MemberJoin(member("b")), t0 + 100 * MS)
            .is_empty());
        assert!(c
            .push(Event::MemberFailed(member("c")), t0 + 200 * MS)
            .is_empty());
        assert_eq!(c.next_deadline(), Some(t0 + 1200 * MS));
        assert!(c.poll(t0 + 1199 * MS).is_empty());
        let out = c.poll(t0 + 1200 * MS);
        assert_eq!(
            summary(&out),
            vec![
                ("member-join", s(&["a", "b"])),
                ("member-failed", s(&["c"]))
            ]
        );
        assert_eq!(c.next_deadline(), None);
        assert!(c.poll(t0 + 10_000 * MS).is_empty());
    }

    #[test]
    fn quantum_caps_a_continuous_burst() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        // An event every 500 ms keeps the quiescent timer from firing; the 3 s
        // quantum flushes anyway.
        let mut out = Vec::new();
        for i in 0..10u32 {
            let now = t0 + i * 500 * MS;
            out.extend(c.push(Event::MemberJoin(member(&format!("n{i}"))), now));
        }
        // Pushing at 3.0 s flushes the window first (n0..n5), then starts a new one.
        assert_eq!(
            summary(&out),
            vec![("member-join", s(&["n0", "n1", "n2", "n3", "n4", "n5"]))]
        );
        // New window started at 3.0 s; last event at 4.5 s → quiescent at 5.5 s.
        assert_eq!(c.next_deadline(), Some(t0 + 5500 * MS));
        let out = c.poll(t0 + 5500 * MS);
        assert_eq!(
            summary(&out),
            vec![("member-join", s(&["n6", "n7", "n8", "n9"]))]
        );
    }

    #[test]
    fn latest_type_per_node_wins_and_duplicates_are_suppressed() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        c.push(Event::MemberJoin(member("a")), t0);
        c.push(Event::MemberLeave(member("a")), t0 + MS);
        c.push(Event::MemberJoin(member("b")), t0 + 2 * MS);
        let out = c.poll(t0 + 2000 * MS);
        // a's join is swallowed by its later leave (Go semantics).
        assert_eq!(
            summary(&out),
            vec![("member-leave", s(&["a"])), ("member-join", s(&["b"]))]
        );
        // Same type as last delivered → skipped (b join again, a leave again).
        let t1 = t0 + 5000 * MS;
        c.push(Event::MemberJoin(member("b")), t1);
        c.push(Event::MemberLeave(member("a")), t1);
        assert!(c.poll(t1 + 1000 * MS).is_empty());
        // A different type is delivered.
        c.push(Event::MemberFailed(member("b")), t1 + 2000 * MS);
        let out = c.poll(t1 + 3000 * MS);
        assert_eq!(summary(&out), vec![("member-failed", s(&["b"]))]);
    }

    #[test]
    fn member_update_is_never_suppressed_and_not_repeated() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        c.push(Event::MemberUpdate(member("a")), t0);
        assert_eq!(
            summary(&c.poll(t0 + 1000 * MS)),
            vec![("member-update", s(&["a"]))]
        );
        // A second update of the same node is delivered again.
        let t1 = t0 + 5000 * MS;
        c.push(Event::MemberUpdate(member("a")), t1);
        assert_eq!(
            summary(&c.poll(t1 + 1000 * MS)),
            vec![("member-update", s(&["a"]))]
        );
        // Go 0.9.4 would re-emit `member-update a` here (never-cleared latest
        // map); we deliberately deliver only the join.
        let t2 = t1 + 5000 * MS;
        c.push(Event::MemberJoin(member("x")), t2);
        assert_eq!(
            summary(&c.poll(t2 + 1000 * MS)),
            vec![("member-join", s(&["x"]))]
        );
    }

    #[test]
    fn reap_clears_last_type() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        c.push(Event::MemberJoin(member("a")), t0);
        c.poll(t0 + 1000 * MS);
        c.push(Event::MemberFailed(member("a")), t0 + 2000 * MS);
        c.poll(t0 + 3000 * MS);
        c.push(Event::MemberReap(member("a")), t0 + 4000 * MS);
        assert_eq!(
            summary(&c.poll(t0 + 5000 * MS)),
            vec![("member-reap", s(&["a"]))]
        );
        assert!(c.member.as_ref().is_some_and(|m| m.last.is_empty()));
        c.push(Event::MemberJoin(member("a")), t0 + 6000 * MS);
        assert_eq!(
            summary(&c.poll(t0 + 7000 * MS)),
            vec![("member-join", s(&["a"]))]
        );
    }

    #[test]
    fn user_events_keep_highest_ltime_per_name() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        assert!(c.push(user("deploy", 4, "v1", true), t0).is_empty());
        assert!(c.push(user("deploy", 6, "v3", true), t0 + MS).is_empty());
        assert!(c
            .push(user("deploy", 5, "v2", true), t0 + 2 * MS)
            .is_empty());
        assert!(c.push(user("restart", 2, "", true), t0 + 3 * MS).is_empty());
        assert!(c
            .push(user("deploy", 6, "v3b", true), t0 + 4 * MS)
            .is_empty());
        // Not coalesced: delivered immediately (before the coalesced ones).
        let out = c.push(user("now", 7, "", false), t0 + 5 * MS);
        assert_eq!(summary(&out), vec![("user", s(&["now@7"]))]);
        let out = c.poll(t0 + 1005 * MS);
        assert_eq!(
            summary(&out),
            vec![
                ("user", s(&["deploy@6"])),
                ("user", s(&["deploy@6"])),
                ("user", s(&["restart@2"]))
            ]
        );
        match &out[1] {
            CoalescedEvent::Other(Event::User { payload, .. }) => assert_eq!(payload, b"v3b"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn windows_are_independent() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        c.push(Event::MemberJoin(member("a")), t0);
        c.push(user("u", 1, "", true), t0 + 500 * MS);
        assert_eq!(c.next_deadline(), Some(t0 + 1000 * MS));
        assert_eq!(
            summary(&c.poll(t0 + 1000 * MS)),
            vec![("member-join", s(&["a"]))]
        );
        assert_eq!(c.next_deadline(), Some(t0 + 1500 * MS));
        // Both due: earliest deadline first.
        c.push(Event::MemberJoin(member("b")), t0 + 1400 * MS);
        let out = c.poll(t0 + 5000 * MS);
        assert_eq!(
            summary(&out),
            vec![("user", s(&["u@1"])), ("member-join", s(&["b"]))]
        );
    }

    #[test]
    fn push_flushes_due_window_before_passing_through() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        c.push(Event::MemberJoin(member("a")), t0);
        let q = Event::QueryDone { ltime: 1, id: 2 };
        let out = c.push(q.clone(), t0 + 1500 * MS);
        assert_eq!(out.len(), 2);
        assert_eq!(names(&out[0]), ("member-join", s(&["a"])));
        assert_eq!(out[1], CoalescedEvent::Other(q));
    }

    #[test]
    fn disabled_coalescers_pass_everything() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig {
            member: None,
            user: None,
        });
        let out = c.push(Event::MemberJoin(member("a")), t0);
        assert_eq!(summary(&out), vec![("member-join", s(&["a"]))]);
        let out = c.push(user("d", 1, "", true), t0);
        assert_eq!(summary(&out), vec![("user", s(&["d@1"]))]);
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn flush_all_delivers_pending() {
        let t0 = Instant::now();
        let mut c = Coalescer::new(CoalesceConfig::default());
        c.push(Event::MemberLeave(member("a")), t0);
        c.push(user("d", 3, "", true), t0);
        let out = c.flush_all();
        assert_eq!(
            summary(&out),
            vec![("user", s(&["d@3"])), ("member-leave", s(&["a"]))]
        );
        assert_eq!(c.next_deadline(), None);
    }

    #[tokio::test]
    async fn async_wrapper_coalesces_in_real_time() {
        let cfg = CoalesceConfig {
            member: Some(Periods {
                period: Duration::from_millis(600),
                quiescent: Duration::from_millis(200),
            }),
            user: Some(Periods::default()),
        };
        let (btx, brx) = broadcast::channel(16);
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn(run(brx, cfg, tx));
        let start = Instant::now();
        btx.send(Event::MemberJoin(member("a"))).expect("send");
        btx.send(Event::MemberJoin(member("b"))).expect("send");
        btx.send(user("x", 1, "", false)).expect("send");
        let first = rx.recv().await.expect("event");
        assert_eq!(names(&first), ("user", s(&["x@1"])));
        let second = rx.recv().await.expect("event");
        assert_eq!(names(&second), ("member-join", s(&["a", "b"])));
        let waited = Instant::now() - start;
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_millis(600), "{waited:?}");
        // Pending at shutdown: flushed when the broadcast closes.
        btx.send(Event::MemberLeave(member("a"))).expect("send");
        btx.send(user("c", 9, "", true)).expect("send");
        drop(btx);
        let mut rest = Vec::new();
        while let Some(e) = rx.recv().await {
            rest.push(e);
        }
        assert_eq!(
            summary(&rest),
            vec![("user", s(&["c@9"])), ("member-leave", s(&["a"]))]
        );
        assert!(Instant::now() - start < Duration::from_millis(600));
        task.await.expect("join");
    }
}
