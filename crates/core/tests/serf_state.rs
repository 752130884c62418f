//! The Serf layer driven through its memberlist delegate hooks and the `Serf` wrapper.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

use serf_core::query::{node_filter, tag_filter, KeyResponse, QueryParams};
use serf_core::{Event, MemberStatus, Serf, SerfConfig, SerfState};
use serf_membership::{Config, Delegate, Node, NodeStateKind, Transmit};
use serf_wire::packet::{decode_packet, InboundOptions};
use serf_wire::serf::{JoinIntent, LeaveIntent, Query, SerfMessage, UserEvent};
use serf_wire::Message;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

fn node(name: &str, last: u8, tags: &[(&str, &str)]) -> Node {
    let tags: Vec<(String, String)> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Node {
        name: name.into(),
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)),
        port: 7946,
        meta: serf_wire::serf::encode_tags(&tags).expect("tags"),
        incarnation: 1,
        state: NodeStateKind::Alive,
        state_change: Duration::ZERO,
        vsn: [1, 5, 2, 2, 5, 5],
    }
}

fn state(tags: &[(&str, &str)]) -> SerfState {
    let cfg = SerfConfig {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let mut s = SerfState::new("me".into(), cfg, 4);
    s.notify_join(Duration::ZERO, &node("me", 1, tags));
    s
}

fn events(s: &mut SerfState) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn status(s: &SerfState, name: &str) -> MemberStatus {
    s.member(name).expect("member").status
}

#[test]
fn leave_intent_before_memberlist_leave_means_left() {
    let mut s = state(&[]);
    s.notify_join(Duration::ZERO, &node("a", 2, &[("role", "web")]));
    assert_eq!(
        s.member("a").expect("a").tags,
        vec![("role".to_string(), "web".to_string())]
    );
    s.notify_msg(
        Duration::ZERO,
        &SerfMessage::Leave(LeaveIntent {
            ltime: 5,
            node: "a".into(),
            prune: false,
        })
        .encode(),
    );
    assert_eq!(status(&s, "a"), MemberStatus::Leaving);
    s.notify_leave(Duration::from_secs(1), &node("a", 2, &[]));
    assert_eq!(status(&s, "a"), MemberStatus::Left);
    // Without a leave intent, a memberlist leave is a failure...
    s.notify_join(Duration::ZERO, &node("b", 3, &[]));
    s.notify_leave(Duration::from_secs(1), &node("b", 3, &[]));
    assert_eq!(status(&s, "b"), MemberStatus::Failed);
    // ...unless the node announced its own death (memberlist's `Left`): only a graceful
    // leave does that, so it left even before its intent arrives (Go says failed here).
    s.notify_join(Duration::ZERO, &node("c", 4, &[]));
    let mut announced = node("c", 4, &[]);
    announced.state = NodeStateKind::Left;
    s.notify_leave(Duration::from_secs(1), &announced);
    assert_eq!(status(&s, "c"), MemberStatus::Left);
    let evs = events(&mut s);
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::MemberLeave(m) if m.name == "a")));
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::MemberFailed(m) if m.name == "b")));
    assert!(evs
        .iter()
        .any(|e| matches!(e, Event::MemberLeave(m) if m.name == "c")));
    // A stale leave intent (not newer than the status clock) changes nothing.
    s.notify_join(Duration::ZERO, &node("a", 2, &[]));
    s.notify_msg(
        Duration::ZERO,
        &SerfMessage::Leave(LeaveIntent {
            ltime: 5,
            node: "a".into(),
            prune: false,
        })
        .encode(),
    );
    assert_eq!(status(&s, "a"), MemberStatus::Alive);
}

#[test]
fn intents_for_unknown_nodes_are_buffered() {
    let mut s = state(&[]);
    s.notify_msg(
        Duration::ZERO,
        &SerfMessage::Leave(LeaveIntent {
            ltime: 9,
            node: "z".into(),
            prune: false,
        })
        .encode(),
    );
    s.notify_join(Duration::ZERO, &node("z", 9, &[]));
    assert_eq!(
        status(&s, "z"),
        MemberStatus::Leaving,
        "the buffered leave intent applies on join"
    );
    // A newer join intent brings it back.
    s.notify_msg(
        Duration::ZERO,
        &SerfMessage::Join(JoinIntent {
            ltime: 10,
            node: "z".into(),
        })
        .encode(),
    );
    assert_eq!(status(&s, "z"), MemberStatus::Alive);
    assert!(s.clock() > 10, "intents are witnessed on the member clock");
}

#[test]
fn user_events_are_delivered_once_and_rebroadcast_once() {
    let mut s = state(&[]);
    let ev = SerfMessage::UserEvent(UserEvent {
        ltime: 3,
        name: "deploy".into(),
        payload: b"v1".to_vec(),
        cc: true,
    })
    .encode();
    s.notify_msg(Duration::ZERO, &ev);
    s.notify_msg(Duration::ZERO, &ev);
    let users: Vec<_> = events(&mut s)
        .into_iter()
        .filter(|e| matches!(e, Event::User { .. }))
        .collect();
    assert_eq!(users.len(), 1);
    assert_eq!(s.queued().2, 1, "re-gossiped once");
    // Same time, different payload: a distinct event.
    let ev2 = SerfMessage::UserEvent(UserEvent {
        ltime: 3,
        name: "deploy".into(),
        payload: b"v2".to_vec(),
        cc: true,
    })
    .encode();
    s.notify_msg(Duration::ZERO, &ev2);
    assert_eq!(events(&mut s).len(), 1);
}

#[test]
fn user_event_size_limits_use_gos_texts() {
    let mut s = state(&[]);
    let e = s
        .user_event("big", &[b'x'; 600], false)
        .expect_err("too big");
    assert_eq!(
        e.to_string(),
        "user event exceeds configured limit of 512 bytes before encoding"
    );
    let e = s
        .user_event("n", &[b'x'; 500], false)
        .expect_err("too big encoded");
    assert_eq!(
        e.to_string(),
        "encoded user event exceeds configured limit of 512 bytes after encoding"
    );
    s.user_event("ok", b"fine", true).expect("fits");
}

#[test]
fn push_pull_state_round_trips_between_states() {
    let mut a = state(&[]);
    a.notify_join(Duration::ZERO, &node("x", 2, &[]));
    a.notify_msg(
        Duration::ZERO,
        &SerfMessage::Leave(LeaveIntent {
            ltime: 4,
            node: "x".into(),
            prune: false,
        })
        .encode(),
    );
    a.notify_leave(Duration::ZERO, &node("x", 2, &[]));
    a.user_event("e", b"p", false).expect("event");
    let buf = a.local_state(false);
    let mut b = SerfState::new("b".into(), SerfConfig::default(), 4);
    b.merge_remote_state(Duration::ZERO, &buf, false);
    assert!(b.clock() >= a.clock() - 1);
    let users: Vec<_> = events(&mut b)
        .into_iter()
        .filter(|e| matches!(e, Event::User { .. }))
        .collect();
    assert_eq!(users.len(), 1, "buffered events are replayed");
    // A join that asked not to replay ignores them.
    let mut c = Serf::new(
        Config::lan("c", IpAddr::V4(Ipv4Addr::LOCALHOST), 7000),
        SerfConfig::default(),
        1,
        Duration::ZERO,
    )
    .expect("serf");
    let _ = c.join_request(false);
    c.memberlist_mut()
        .delegate_mut()
        .merge_remote_state(Duration::ZERO, &buf, true);
    let replayed = std::iter::from_fn(|| c.poll_event())
        .filter(|e| matches!(e, Event::User { .. }))
        .count();
    assert_eq!(
        replayed, 0,
        "events older than a no-replay join are ignored"
    );
}

fn query(filters: Vec<Vec<u8>>, flags: u32) -> Vec<u8> {
    SerfMessage::Query(Query {
        ltime: 7,
        id: 99,
        addr: vec![10, 0, 0, 9],
        port: 7946,
        source_node: "src".into(),
        filters,
        flags,
        relay_factor: 0,
        timeout: 5_000_000_000,
        name: "q".into(),
        payload: b"hi".to_vec(),
    })
    .encode()
}

#[test]
fn query_filters_follow_go() {
    let cases: Vec<(Vec<Vec<u8>>, bool)> = vec![
        (vec![], true),
        (vec![node_filter(&["me".into(), "x".into()])], true),
        (vec![node_filter(&["x".into()])], false),
        (vec![tag_filter("role", "we")], true), // unanchored, as Go's regexp.MatchString
        (vec![tag_filter("role", "^we$")], false),
        (vec![tag_filter("missing", "^$")], true), // a missing tag matches as ""
        (vec![tag_filter("role", "(")], false),    // bad regex: not for us
        (
            vec![tag_filter("role", "web"), node_filter(&["x".into()])],
            false,
        ),
        (vec![vec![7, 1, 2]], false), // unknown filter type
    ];
    for (filters, want) in cases {
        let mut s = state(&[("role", "web")]);
        s.notify_msg(Duration::ZERO, &query(filters.clone(), 1));
        let got = events(&mut s)
            .iter()
            .any(|e| matches!(e, Event::Query { .. }));
        assert_eq!(got, want, "filters {filters:?}");
    }
}

#[test]
fn responses_once_before_deadline_within_size() {
    let mut s = state(&[]);
    s.notify_msg(Duration::ZERO, &query(vec![], 0));
    let (lt, id) = match events(&mut s)
        .into_iter()
        .find(|e| matches!(e, Event::Query { .. }))
    {
        Some(Event::Query { ltime, id, .. }) => (ltime, id),
        _ => panic!("no query event"),
    };
    let e = s.respond(lt, id, vec![0; 2000]).expect_err("too big");
    assert_eq!(
        e.to_string(),
        "failed to respond to key query: response exceeds limit of 1024 bytes"
    );
    s.respond(lt, id, b"ok".to_vec()).expect("first response");
    let e = s.respond(lt, id, b"again".to_vec()).expect_err("second");
    assert_eq!(
        e.to_string(),
        "failed to respond to key query: response already sent"
    );
    assert_eq!(
        s.respond(1, 2, vec![]).expect_err("unknown").to_string(),
        "No pending queries matching ID"
    );
}

#[test]
fn key_response_matches_observed_bytes() {
    let r = KeyResponse {
        message: "Keyring is empty (encryption not enabled)".into(),
        ..Default::default()
    };
    assert_eq!(
        hex::encode(r.encode()),
        "0884a44b657973c0a74d657373616765da00294b657972696e6720697320656d7074792028656e6372797074696f6e206e6f7420656e61626c656429aa5072696d6172794b6579a0a6526573756c74c2"
    );
    assert_eq!(KeyResponse::decode(&r.encode()).expect("decode"), r);
}

#[test]
fn default_query_timeout_is_gos() {
    let s = state(&[]);
    let gi = Duration::from_millis(200);
    assert_eq!(s.default_query_timeout(gi, 2), Duration::from_millis(3200));
    assert_eq!(s.default_query_timeout(gi, 9), Duration::from_millis(3200));
    assert_eq!(s.default_query_timeout(gi, 10), Duration::from_millis(6400));
}

/// Two full `Serf` nodes exchanging packets by hand: a query with acks and responses.
#[test]
fn query_round_trip_between_two_nodes() {
    let addr = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
    let mk = |name: &str, port| {
        Serf::new(
            Config::lan(name, addr(port).ip(), port),
            SerfConfig::default(),
            port.into(),
            Duration::ZERO,
        )
        .expect("serf")
    };
    let mut a = mk("a", 7001);
    let mut b = mk("b", 7002);
    // Join b -> a by a push/pull exchange.
    let req = b.join_request(false);
    let (msg, _) = a.memberlist().decode_stream(&req).expect("decode");
    let reply = a
        .handle_stream(Duration::ZERO, addr(7002), msg)
        .expect("reply");
    let (msg, _) = b.memberlist().decode_stream(&reply).expect("decode reply");
    b.handle_push_pull_reply(Duration::ZERO, msg)
        .expect("merge");
    b.join_finished(Duration::ZERO, 1);
    let mut nodes = [(7001u16, a), (7002u16, b)];
    let deliver = |nodes: &mut [(u16, Serf); 2], now: Duration| {
        for _ in 0..20 {
            let mut moved = false;
            for i in 0..2 {
                while let Some(t) = nodes[i].1.poll_transmit() {
                    if let Transmit::Packet { to, data } = t {
                        moved = true;
                        let from = addr(nodes[i].0);
                        if let Some(j) = nodes.iter().position(|(p, _)| *p == to.port()) {
                            nodes[j].1.handle_packet(now, from, &data);
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    };
    let mut now = Duration::ZERO;
    for _ in 0..20 {
        now += Duration::from_millis(200);
        for n in nodes.iter_mut() {
            n.1.handle_timeout(now);
        }
        deliver(&mut nodes, now);
    }
    assert_eq!(nodes[0].1.members().len(), 2);
    let params = QueryParams {
        request_ack: true,
        finish_early: true,
        ..Default::default()
    };
    let (lt, id, _) = nodes[0]
        .1
        .query(now, "ping-me", b"x", &params)
        .expect("query");
    let mut acks = Vec::new();
    let mut responses = Vec::new();
    let mut done = false;
    for _ in 0..50 {
        now += Duration::from_millis(100);
        for n in nodes.iter_mut() {
            n.1.handle_timeout(now);
        }
        deliver(&mut nodes, now);
        for i in 0..2 {
            while let Some(ev) = nodes[i].1.poll_event() {
                match ev {
                    Event::Query { ltime, id, .. } => {
                        let me = nodes[i].1.name().to_string();
                        nodes[i]
                            .1
                            .respond(now, ltime, id, me.into_bytes())
                            .expect("respond");
                    }
                    Event::QueryAck {
                        ltime,
                        id: qid,
                        from,
                    } if (ltime, qid) == (lt, id) => acks.push(from),
                    Event::QueryResponse {
                        ltime,
                        id: qid,
                        from,
                        payload,
                    } if (ltime, qid) == (lt, id) => {
                        assert_eq!(payload, from.as_bytes());
                        responses.push(from)
                    }
                    Event::QueryDone { ltime, id: qid } if (ltime, qid) == (lt, id) => done = true,
                    _ => {}
                }
            }
        }
        deliver(&mut nodes, now);
        if done {
            break;
        }
    }
    acks.sort();
    responses.sort();
    assert_eq!(acks, vec!["a", "b"]);
    assert_eq!(responses, vec!["a", "b"]);
    assert!(done, "finished early once both answered");
    // Our own ack payload carries a coordinate.
    let mut probe = mk("c", 7003);
    let _ = std::iter::from_fn(|| probe.poll_transmit()).count();
    let ping = Message::Ping(serf_wire::Ping {
        seq_no: 1,
        node: "c".into(),
        source_addr: None,
        source_port: 0,
        source_node: String::new(),
    });
    probe.handle_packet(now, addr(7009), &ping.encode());
    let acked = std::iter::from_fn(|| probe.poll_transmit()).any(|t| match t {
        Transmit::Packet { data, .. } => decode_packet(&data, &InboundOptions::default())
            .expect("decode")
            .messages
            .iter()
            .any(|m| matches!(m, Message::Ack(a) if a.payload.first() == Some(&1))),
        _ => false,
    });
    assert!(acked, "acks carry a version-1 coordinate payload");
}
