//! The same seed gives the same run of the whole Serf layer.

use crate::common::*;
use serf_core::QueryParams;

fn run(seed: u64) -> Vec<String> {
    let (mut sim, log) = serf_sim(seed, |_, _, _| {});
    let ids = converged(&mut sim, 6);
    sim.set_loss(0.1);
    sim.with_core(ids[1], |s, _| s.user_event("e", b"p", false))
        .expect("event");
    sim.with_core(ids[2], |s, now| {
        s.query(now, "q", b"", &QueryParams::default())
    })
    .expect("query");
    sim.crash(ids[5]);
    sim.run_for(secs(20.0));
    let events = log
        .borrow()
        .iter()
        .map(|(t, n, ev)| format!("{t:?} {n} {ev:?}"))
        .collect();
    events
}

#[test]
fn same_seed_same_serf_events() {
    let a = run(42);
    assert!(a.len() > 50, "only {} events", a.len());
    assert_eq!(a, run(42));
    assert_ne!(a, run(43));
}
