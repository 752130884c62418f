//! User events reach every node exactly once, through loss and a paused node.

use crate::common::*;
use serf_core::Event;
use serf_sim::NodeId;
use std::collections::BTreeMap;
use std::time::Duration;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=24;
const N: usize = 8;
const EVENTS: usize = 5;

/// `(node, event name) -> deliveries`.
fn deliveries(log: &Log) -> BTreeMap<(usize, String), usize> {
    let mut out = BTreeMap::new();
    for (_, node, ev) in log.borrow().iter() {
        if let Event::User { name, .. } = ev {
            *out.entry((*node, name.clone())).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn user_events_reach_every_node_once_through_loss_and_a_pause() {
    let mut latest = Vec::new();
    for seed in SEEDS {
        let (mut sim, log) = serf_sim(seed, |_, _, _| {});
        let ids = converged(&mut sim, N);
        sim.set_loss(0.05);
        let paused = ids[3];
        sim.pause(paused);
        let fired_at = sim.now();
        for e in 0..EVENTS {
            let from = ids[(e * 3 + seed as usize) % N];
            let name = format!("deploy-{e}");
            sim.with_core(from, |s, _| s.user_event(&name, b"v1", false))
                .expect("event accepted");
            sim.run_for(secs(0.2));
        }
        sim.run_for(secs(2.0));
        sim.resume(paused);
        let all = run_until_log(&mut sim, &log, secs(30.0), |_| {
            deliveries(&log).len() == N * EVENTS
        });
        let d = deliveries(&log);
        assert!(
            all,
            "seed {seed}: {} of {} deliveries after {:?}",
            d.len(),
            N * EVENTS,
            sim.now() - fired_at
        );
        let dup: Vec<_> = d.iter().filter(|(_, &c)| c != 1).collect();
        assert!(
            dup.is_empty(),
            "seed {seed}: delivered more than once: {dup:?}"
        );
        latest.push((sim.now() - fired_at).as_secs_f64());
    }
    eprintln!(
        "user events, {N} nodes, 5% loss, one node paused 3 s: all delivered after {latest:.1?} s"
    );
}

/// A user event carrying Lamport time `u64::MAX` (a hostile or broken peer on an
/// unencrypted cluster) must not pin the event clocks at the top: they wrap to 0 as Go's
/// do, and later events, even several with the same name, still reach every node.
#[test]
fn event_clock_wraps_after_u64_max_and_events_keep_flowing() {
    use serf_wire::messages::Message;
    use serf_wire::serf::{SerfMessage, UserEvent};
    for seed in 1..=8u64 {
        let (mut sim, log) = serf_sim(seed, |_, _, _| {});
        let ids = converged(&mut sim, 5);
        let poison = SerfMessage::UserEvent(UserEvent {
            ltime: u64::MAX,
            name: "poison".into(),
            payload: Vec::new(),
            cc: false,
        })
        .encode();
        let packet = Message::User(poison).encode();
        let from = sim.addr(ids[1]);
        sim.with_core(ids[0], |s, now| s.handle_packet(now, from, &packet));
        let spread = run_until_log(&mut sim, &log, secs(30.0), |_| {
            deliveries(&log)
                .keys()
                .filter(|(_, name)| name == "poison")
                .count()
                == N.min(5)
        });
        assert!(spread, "seed {seed}: the poison event did not spread");
        for &i in &ids {
            assert!(
                sim.core(i).state().event_clock() < 10,
                "seed {seed}: node {i} event clock stuck at {}",
                sim.core(i).state().event_clock()
            );
        }
        // Two events with the same name from different nodes: both must arrive everywhere.
        sim.with_core(ids[2], |s, _| s.user_event("after", b"1", false))
            .expect("event");
        sim.run_for(secs(1.0));
        sim.with_core(ids[3], |s, _| s.user_event("after", b"2", false))
            .expect("event");
        let both = run_until_log(&mut sim, &log, secs(30.0), |l| {
            ids.iter().all(|&n| {
                l.iter()
                    .filter(|(_, node, ev)| {
                        *node == n && matches!(ev, Event::User { name, .. } if name == "after")
                    })
                    .count()
                    == 2
            })
        });
        assert!(both, "seed {seed}: events after the wrap were lost");
    }
}

/// User events' spread at N=10 without loss, `per` events in each of the `seeds` clusters:
/// the sorted times (ms) until the last node delivered each, the datagrams the cluster
/// sent in the 2 s after each (all gossip included), and how many events some node still
/// lacked after 10 s. Gossip picks its targets at random, so now and then a node is
/// missed by every round that carried an event; as in Go, the next push/pull (every 30 s
/// here), which carries the recent events, brings it.
fn spread(eager: bool, seeds: std::ops::RangeInclusive<u64>, per: usize) -> (Vec<f64>, u64, usize) {
    const N: usize = 10;
    let mut last = Vec::new();
    let mut packets = 0;
    let mut missed = 0;
    for seed in seeds {
        let (mut sim, log) = serf_sim(seed, move |_, cfg, _| cfg.eager_gossip = eager);
        let ids = converged(&mut sim, N);
        sim.run_for(secs(5.0));
        for e in 0..per {
            // Fired at a random point of the gossip ticks' phases.
            sim.run_for(secs(
                0.2 + 0.2 * ((seed as usize * 7 + e * 3) % 10) as f64 / 10.0,
            ));
            let name = format!("spread-{e}");
            let (at, before) = (sim.now(), sim.stats().packets_sent);
            sim.with_core(ids[e % N], |s, _| s.user_event(&name, b"", false))
                .expect("event accepted");
            let got = |l: &[(Duration, NodeId, Event)]| {
                let times: Vec<Duration> = l
                    .iter()
                    .filter(|(_, _, ev)| matches!(ev, Event::User { name: n, .. } if *n == name))
                    .map(|(t, _, _)| *t)
                    .collect();
                (times.len() == N)
                    .then(|| times.iter().max().copied())
                    .flatten()
            };
            let ok = run_until_log(&mut sim, &log, secs(10.0), |l| got(l).is_some());
            if !ok {
                missed += 1;
                continue;
            }
            let done = got(&log.borrow()).expect("reached");
            last.push((done - at).as_secs_f64() * 1e3);
            sim.run_until(|s| s.now() >= at + secs(2.0), secs(3.0));
            packets += sim.stats().packets_sent - before;
        }
    }
    last.sort_by(f64::total_cmp);
    (last, packets, missed)
}

/// Eager gossip (`Config::eager_gossip`, on by default): a node sends a user event it
/// fires or newly receives in an extra gossip round at once, instead of at its next
/// gossip tick. Each hop then costs a network delay instead of up to a gossip interval
/// (200 ms). Go's memberlist waits for the tick; its hops are fast only when the ticks of
/// sender and receiver happen to line up, as they do for agents started in the same
/// instant. The events reach every node sooner, in about as many datagrams (each message
/// is still sent a bounded number of times).
#[test]
fn eager_gossip_spreads_user_events_without_waiting_for_ticks() {
    let (ticks, tick_packets, tick_missed) = spread(false, 1..=30, 6);
    let (eager, eager_packets, eager_missed) = spread(true, 1..=30, 6);
    let q = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    eprintln!(
        "user event to all 10 nodes, ms: ticks only median {:.1} p90 {:.1}; eager median {:.1} p90 {:.1}; \
         datagrams in the 2 s after each event: {tick_packets} vs {eager_packets}; \
         events a node lacked after 10 s: {tick_missed} vs {eager_missed} of 180",
        q(&ticks, 0.5),
        q(&ticks, 0.9),
        q(&eager, 0.5),
        q(&eager, 0.9)
    );
    assert!(
        q(&eager, 0.5) < 0.25 * q(&ticks, 0.5),
        "eager median {:.1} ms, ticks only {:.1} ms",
        q(&eager, 0.5),
        q(&ticks, 0.5)
    );
    assert!(
        q(&eager, 0.9) <= q(&ticks, 0.9),
        "eager p90 {:.1} ms, ticks only {:.1} ms",
        q(&eager, 0.9),
        q(&ticks, 0.9)
    );
    // Seeds 1 to 100 (600 events each way) missed one event each way.
    assert!(
        tick_missed <= 2 && eager_missed <= 2,
        "events a node lacked after 10 s: ticks only {tick_missed}, eager {eager_missed}"
    );
    assert!(
        eager_packets as f64 <= 1.2 * tick_packets as f64,
        "datagrams: eager {eager_packets}, ticks only {tick_packets}"
    );
}

/// Under a flood of events the gossip ticks carry the backlog, packed, as in Go: an event
/// queued behind more than 64 others asks for no extra round.
#[test]
fn a_backlog_of_events_waits_for_the_gossip_ticks() {
    use serf_membership::Timer;
    let (mut sim, _log) = serf_sim(1, |_, _, _| {});
    let ids = converged(&mut sim, 3);
    let eager_armed = |sim: &SerfSim| {
        sim.core(ids[0])
            .memberlist()
            .timers()
            .any(|(t, _)| t == Timer::EagerGossip)
    };
    sim.with_core(ids[0], |s, _| {
        for i in 0..100 {
            s.user_event(&format!("flood-{i}"), b"", false)
                .expect("event accepted");
        }
    });
    let rounds = sim.core(ids[0]).memberlist().stats().eager_gossip_rounds;
    sim.run_for(secs(0.001));
    assert_eq!(
        sim.core(ids[0]).memberlist().stats().eager_gossip_rounds,
        rounds + 1,
        "the first events of the flood went out at once"
    );
    sim.with_core(ids[0], |s, _| s.user_event("one-more", b"", false))
        .expect("event accepted");
    assert!(
        !eager_armed(&sim),
        "an event behind a backlog asked for an extra round"
    );
}
