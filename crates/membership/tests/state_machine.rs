//! The membership state machine rules of docs/memberlist-protocol.md section 8, driven with crafted packets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_membership::{Config, Delegate, Memberlist, Node, NodeStateKind, Timer, Transmit};
use serf_wire::messages::{msg_type, Ack, Alive, Message, Ping, PushNodeState, PushPull, Suspect};
use serf_wire::packet::{decode_packet, InboundOptions};
use serf_wire::stream::StreamMsg;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Default)]
struct Rec {
    joins: Vec<String>,
    leaves: Vec<(String, NodeStateKind)>,
    updates: Vec<String>,
    conflicts: Vec<String>,
}

impl Delegate for Rec {
    fn notify_join(&mut self, _: Duration, n: &Node) {
        self.joins.push(n.name.clone());
    }
    fn notify_leave(&mut self, _: Duration, n: &Node) {
        self.leaves.push((n.name.clone(), n.state));
    }
    fn notify_update(&mut self, _: Duration, n: &Node) {
        self.updates.push(n.name.clone());
    }
    fn notify_conflict(&mut self, e: &Node, _: &Node) {
        self.conflicts.push(e.name.clone());
    }
}

const ME: &str = "me";
const VSN: [u8; 6] = [1, 5, 2, 2, 5, 5];

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

fn core() -> Memberlist<Rec> {
    let cfg = Config::lan(ME, ip(1), 7946);
    Memberlist::new(cfg, Rec::default(), 7, Duration::ZERO)
}

fn from() -> SocketAddr {
    SocketAddr::new(ip(9), 7946)
}

fn alive(name: &str, inc: u32, last: u8) -> Message {
    Message::Alive(Alive {
        incarnation: inc,
        node: name.into(),
        addr: ip(last),
        port: 7946,
        meta: vec![],
        vsn: VSN.to_vec(),
    })
}

fn suspect(name: &str, inc: u32, by: &str) -> Message {
    Message::Suspect(Suspect {
        incarnation: inc,
        node: name.into(),
        from: by.into(),
    })
}

fn dead(name: &str, inc: u32, by: &str) -> Message {
    Message::Dead(Suspect {
        incarnation: inc,
        node: name.into(),
        from: by.into(),
    })
}

fn feed(m: &mut Memberlist<Rec>, msg: Message) {
    m.handle_packet(Duration::from_millis(10), from(), &msg.encode());
}

fn state(m: &Memberlist<Rec>, name: &str) -> (NodeStateKind, u32) {
    let n = m.node(name).expect("known node");
    (n.state, n.incarnation)
}

fn sent_messages(m: &mut Memberlist<Rec>) -> Vec<(SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some(t) = m.poll_transmit() {
        if let Transmit::Packet { to, data } = t {
            let d =
                decode_packet(&data, &InboundOptions::default()).expect("our own packets decode");
            out.extend(d.messages.into_iter().map(|x| (to, x)));
        }
    }
    out
}

#[test]
fn alive_with_incarnation_zero_is_ignored() {
    let mut m = core();
    feed(&mut m, alive("a", 0, 2));
    assert_eq!(
        state(&m, "a"),
        (NodeStateKind::Dead, 0),
        "record exists but stays dead"
    );
    assert!(m.delegate().joins.iter().all(|j| j != "a"));
    feed(&mut m, alive("a", 1, 2));
    assert_eq!(state(&m, "a"), (NodeStateKind::Alive, 1));
    assert!(m.delegate().joins.contains(&"a".to_string()));
}

#[test]
fn suspect_and_dead_beat_alive_at_equal_incarnation() {
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    feed(&mut m, suspect("a", 1, "b"));
    assert_eq!(state(&m, "a"), (NodeStateKind::Suspect, 1));
    feed(&mut m, alive("a", 1, 2));
    assert_eq!(
        state(&m, "a").0,
        NodeStateKind::Suspect,
        "equal incarnation alive does not revive"
    );
    feed(&mut m, alive("a", 2, 2));
    assert_eq!(
        state(&m, "a"),
        (NodeStateKind::Alive, 2),
        "a newer alive revives"
    );
    feed(&mut m, dead("a", 1, "b"));
    assert_eq!(
        state(&m, "a").0,
        NodeStateKind::Alive,
        "an older dead is ignored"
    );
    feed(&mut m, dead("a", 2, "b"));
    assert_eq!(state(&m, "a"), (NodeStateKind::Dead, 2));
    assert_eq!(
        m.delegate().leaves.last(),
        Some(&("a".to_string(), NodeStateKind::Dead))
    );
}

#[test]
fn dead_from_itself_is_a_graceful_leave() {
    let mut m = core();
    feed(&mut m, alive("a", 3, 2));
    feed(&mut m, dead("a", 3, "a"));
    assert_eq!(state(&m, "a"), (NodeStateKind::Left, 3));
}

#[test]
fn accusations_about_us_are_refuted_with_a_higher_incarnation() {
    let mut m = core();
    let _ = sent_messages(&mut m);
    feed(&mut m, suspect(ME, 1, "b"));
    assert_eq!(m.incarnation(), 2);
    assert_eq!(m.stats().refutations, 1);
    assert_eq!(m.health(), 1, "refuting costs health");
    // A dead at incarnation 7 is refuted with 8 (max(own+1, accused+1)).
    feed(&mut m, dead(ME, 7, "b"));
    assert_eq!(m.incarnation(), 8);
    assert_eq!(m.local_node().expect("self").state, NodeStateKind::Alive);
    // The refutation is gossiped: give the gossip timer a chance with a peer to send to.
    feed(&mut m, alive("b", 1, 3));
    m.handle_timeout(Duration::from_secs(2));
    let sent = sent_messages(&mut m);
    assert!(
        sent.iter()
            .any(|(_, msg)| matches!(msg, Message::Alive(a) if a.node == ME && a.incarnation == 8)),
        "refutation alive was sent: {sent:?}"
    );
}

#[test]
fn name_conflicts_are_reported_and_ignored() {
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    feed(&mut m, alive("a", 5, 3));
    let n = m.node("a").expect("a");
    assert_eq!(
        (n.addr, n.incarnation),
        (ip(2), 1),
        "the conflicting alive is dropped"
    );
    assert_eq!(m.delegate().conflicts, vec!["a".to_string()]);
    // A left node may be taken over by a new address.
    feed(&mut m, dead("a", 1, "a"));
    feed(&mut m, alive("a", 1, 3));
    assert_eq!(m.node("a").expect("a").addr, ip(3));
}

#[test]
fn meta_change_is_an_update() {
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    let Message::Alive(mut a) = alive("a", 2, 2) else {
        unreachable!()
    };
    a.meta = vec![0xff, 0x80];
    feed(&mut m, Message::Alive(a));
    assert_eq!(m.delegate().updates, vec!["a".to_string()]);
}

#[test]
fn pings_are_answered_only_when_addressed_to_us() {
    let mut m = core();
    let _ = sent_messages(&mut m);
    let ping = |node: &str| {
        Message::Ping(Ping {
            seq_no: 42,
            node: node.into(),
            source_addr: Some(ip(5)),
            source_port: 8000,
            source_node: "x".into(),
        })
    };
    feed(&mut m, ping("someone-else"));
    assert!(sent_messages(&mut m)
        .iter()
        .all(|(_, msg)| !matches!(msg, Message::Ack(_))));
    feed(&mut m, ping(ME));
    let sent = sent_messages(&mut m);
    let acks: Vec<_> = sent
        .iter()
        .filter(|(_, msg)| matches!(msg, Message::Ack(Ack { seq_no: 42, .. })))
        .collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        acks[0].0,
        SocketAddr::new(ip(5), 8000),
        "ack goes to SourceAddr:SourcePort"
    );
}

#[test]
fn push_pull_merge_rules() {
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    feed(&mut m, alive("b", 1, 3));
    let st = |name: &str, inc: u32, last: u8, state: NodeStateKind| PushNodeState {
        name: name.into(),
        addr: ip(last),
        port: 7946,
        meta: vec![],
        incarnation: inc,
        state,
        vsn: VSN.to_vec(),
    };
    let pp = PushPull {
        join: false,
        nodes: vec![
            st("a", 1, 2, NodeStateKind::Dead),
            st("b", 1, 3, NodeStateKind::Left),
            st("c", 4, 4, NodeStateKind::Alive),
        ],
        user_state: vec![],
    };
    let reply = m.handle_stream(Duration::from_secs(1), from(), StreamMsg::PushPull(pp));
    assert!(reply.is_some(), "push/pull is answered");
    assert_eq!(
        state(&m, "a").0,
        NodeStateKind::Suspect,
        "a remote dead only makes us suspect"
    );
    assert_eq!(state(&m, "b").0, NodeStateKind::Left);
    assert_eq!(state(&m, "c"), (NodeStateKind::Alive, 4));
}

#[test]
fn incompatible_versions_are_refused() {
    let mut m = core();
    let pp = PushPull {
        join: true,
        nodes: vec![PushNodeState {
            name: "old".into(),
            addr: ip(2),
            port: 7946,
            meta: vec![],
            incarnation: 1,
            state: NodeStateKind::Alive,
            vsn: vec![1, 1, 1, 1, 1, 1],
        }],
        user_state: vec![],
    };
    let r = m.handle_push_pull_reply(Duration::from_secs(1), StreamMsg::PushPull(pp));
    assert!(r.expect_err("refused").contains("incompatible"));
    assert!(m.node("old").is_none());
}

#[test]
fn failed_probe_suspects_then_declares_dead() {
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    // No acks ever: run the clock forward; with n = 2 the suspicion timeout is 4 s.
    let mut t = Duration::ZERO;
    let mut suspected_at = None;
    while t < Duration::from_secs(30) {
        t += Duration::from_millis(50);
        m.handle_timeout(t);
        let _ = sent_messages(&mut m);
        if suspected_at.is_none() && state(&m, "a").0 == NodeStateKind::Suspect {
            suspected_at = Some(t);
        }
        if state(&m, "a").0 == NodeStateKind::Dead {
            break;
        }
    }
    let s = suspected_at.expect("suspected");
    assert_eq!(state(&m, "a").0, NodeStateKind::Dead);
    let dead_after = t - s;
    assert!(
        dead_after >= Duration::from_secs(4) && dead_after <= Duration::from_millis(4100),
        "dead {dead_after:?} after suspicion (min timeout 4 s for n <= 3)"
    );
    assert!(m.stats().probes_failed >= 1);
}

#[test]
fn leave_marks_us_left_and_finishes() {
    let mut m = core();
    m.leave(Duration::from_secs(1));
    assert!(m.leave_broadcast_done(), "nobody to tell");
    assert_eq!(m.local_node().expect("self").state, NodeStateKind::Left);
    // Alive messages about us are ignored after leaving.
    feed(&mut m, alive(ME, 99, 1));
    assert_eq!(m.local_node().expect("self").state, NodeStateKind::Left);
}

/// Push/pull streams the core asked for, by destination.
fn push_pulls(m: &mut Memberlist<Rec>) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    while let Some(t) = m.poll_transmit() {
        if let Transmit::Stream {
            to,
            purpose: serf_membership::StreamPurpose::PushPull,
            ..
        } = t
        {
            out.push(to);
        }
    }
    out
}

fn ping_from(m: &mut Memberlist<Rec>, at: Duration, node: &str, last: u8) {
    let msg = Message::Ping(Ping {
        seq_no: 7,
        node: ME.into(),
        source_addr: Some(ip(last)),
        source_port: 7946,
        source_node: node.into(),
    });
    m.handle_packet(at, SocketAddr::new(ip(last), 7946), &msg.encode());
}

/// A node we hold dead that shows it is alive (an alive at the incarnation we hold it
/// dead at, which is ignored, or a ping from it), or an unknown node that pings us: we
/// push/pull with it at once, so it refutes and we learn its state, at most once per node
/// per ten probe intervals. Known alive nodes pinging us trigger nothing.
#[test]
fn dead_or_unknown_node_that_is_alive_gets_a_push_pull() {
    let mut m = core();
    feed(&mut m, alive("x", 3, 2));
    feed(&mut m, alive("z", 1, 4));
    feed(&mut m, dead("x", 3, "y"));
    assert_eq!(state(&m, "x"), (NodeStateKind::Dead, 3));
    let _ = push_pulls(&mut m);
    let x = SocketAddr::new(ip(2), 7946);
    // The equal-incarnation alive is still ignored, but we push/pull with x.
    feed(&mut m, alive("x", 3, 2));
    assert_eq!(state(&m, "x"), (NodeStateKind::Dead, 3));
    assert_eq!(push_pulls(&mut m), vec![x]);
    // Within the cooldown: nothing more, from either trigger.
    feed(&mut m, alive("x", 3, 2));
    ping_from(&mut m, Duration::from_secs(5), "x", 2);
    assert!(push_pulls(&mut m).is_empty());
    // After it: a ping from x does it again.
    ping_from(&mut m, Duration::from_secs(11), "x", 2);
    assert_eq!(push_pulls(&mut m), vec![x]);
    // An unknown pinger: to the source address it gave.
    ping_from(&mut m, Duration::from_secs(12), "stranger", 6);
    assert_eq!(push_pulls(&mut m), vec![SocketAddr::new(ip(6), 7946)]);
    // A known alive pinger: nothing.
    ping_from(&mut m, Duration::from_secs(13), "z", 4);
    assert!(push_pulls(&mut m).is_empty());
}

/// Go compatibility (and 5 bytes a probe): pings to a protocol-5 peer go out without a
/// CRC, as Go's memberlist sends them; gossip to the same peer carries one, and so does
/// the ping that tells a suspect it is suspected (ping and suspect in one compound).
#[test]
fn probes_go_out_without_a_crc_and_gossip_with_one() {
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    let to_a = SocketAddr::new(ip(2), 7946);
    let (mut pings, mut buddy, mut gossip) = (Vec::new(), Vec::new(), Vec::new());
    let mut t = Duration::ZERO;
    while t < Duration::from_secs(3) {
        t += Duration::from_millis(50);
        m.handle_timeout(t);
        while let Some(tx) = m.poll_transmit() {
            let Transmit::Packet { to, data } = tx else {
                continue;
            };
            if to != to_a {
                continue;
            }
            let d = decode_packet(&data, &InboundOptions::default()).expect("decodes");
            let has = |f: fn(&Message) -> bool| d.messages.iter().any(f);
            if has(|x| matches!(x, Message::Ping(_))) && has(|x| matches!(x, Message::Suspect(_))) {
                buddy.push(data);
            } else if has(|x| matches!(x, Message::Ping(_))) {
                pings.push(data);
            } else {
                gossip.push(data);
            }
        }
    }
    assert!(
        !pings.is_empty() && !buddy.is_empty() && !gossip.is_empty(),
        "{pings:?} {buddy:?} {gossip:?}"
    );
    assert!(
        pings.iter().all(|p| p[0] != msg_type::HAS_CRC),
        "a ping carries a CRC"
    );
    assert!(
        gossip
            .iter()
            .chain(&buddy)
            .all(|p| p[0] == msg_type::HAS_CRC),
        "gossip or a buddy ping without a CRC"
    );
}

/// `gossip_soon` arms an extra gossip round at once (the first) or a quarter interval after
/// the previous extra round, outside the gossip ticks; it sends what is queued; a gossip
/// tick due first serves the request; `eager_gossip = false` turns it off.
#[test]
fn gossip_soon_runs_one_extra_round_at_most_every_quarter_interval() {
    let eager_at = |m: &Memberlist<Rec>| {
        m.timers()
            .find(|(t, _)| *t == Timer::EagerGossip)
            .map(|(_, at)| at)
    };
    let mut m = core();
    feed(&mut m, alive("a", 1, 2));
    while m.poll_transmit().is_some() {}
    assert_eq!(eager_at(&m), None);
    m.gossip_soon();
    assert_eq!(eager_at(&m), Some(Duration::ZERO));
    let t = Duration::from_millis(11);
    m.handle_timeout(t);
    assert_eq!(m.stats().eager_gossip_rounds, 1);
    assert!(m.poll_transmit().is_some(), "the extra round sent nothing");
    while m.poll_transmit().is_some() {}
    assert_eq!(eager_at(&m), None);
    m.gossip_soon();
    assert_eq!(eager_at(&m), Some(t + Duration::from_millis(50)));
    // Whatever comes first, the tick or the gap's end, serves the request.
    let next = m.poll_timeout();
    m.handle_timeout(next);
    assert_eq!(eager_at(&m), None);

    let mut cfg = Config::lan(ME, ip(1), 7946);
    cfg.eager_gossip = false;
    let mut off = Memberlist::new(cfg, Rec::default(), 7, Duration::ZERO);
    off.gossip_soon();
    assert_eq!(eager_at(&off), None);
}
