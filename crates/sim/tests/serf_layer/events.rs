//! User events reach every node exactly once, through loss and a paused node.

use crate::common::*;
use serf_core::Event;
use std::collections::BTreeMap;

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
