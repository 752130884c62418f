//! Tests of the parent module `coalesce`.

use super::*;
use crate::member::MemberStatus;
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
    let t0 = Duration::from_secs(1000);
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
