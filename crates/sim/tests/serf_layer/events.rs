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
