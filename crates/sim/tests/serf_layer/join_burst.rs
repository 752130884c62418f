//! Many agents started at once, all joining the same seed: every node must see every
//! other alive within 5 s. (Go's agents, 60 at once: 3 of 20 clusters took 41-67 s, a
//! node that missed a join broadcast waiting for the next push/pull.)

use crate::common::*;
use serf_sim::NodeId;

/// Virtual seconds until 60 nodes started within 60 ms, all joining node 0, converge.
fn burst(seed: u64, n: usize, loss: f64) -> f64 {
    let (mut sim, _log) = serf_sim(seed, |_, _, _| {});
    sim.set_loss(loss);
    let ids: Vec<NodeId> = (0..n)
        .map(|i| sim.add_node(&format!("node-{i:03}")))
        .collect();
    let started = sim.now();
    for &id in &ids[1..] {
        sim.join(id, ids[0]);
        sim.run_for(secs(0.001));
    }
    let ok = sim.run_until(|s| serf_converged(s, &ids), secs(120.0));
    assert!(ok, "seed {seed}: {n} nodes never converged");
    (sim.now() - started).as_secs_f64()
}

#[test]
fn sixty_at_once_converge_within_5s() {
    let mut times: Vec<(f64, u64)> = (1..=20u64)
        .map(|seed| (burst(seed, 60, 0.0), seed))
        .collect();
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("60 nodes at once, 20 seeds: {times:?}");
    let (worst, seed) = times[times.len() - 1];
    assert!(
        worst <= 5.0,
        "seed {seed}: converged only after {worst:.1} s"
    );
}
