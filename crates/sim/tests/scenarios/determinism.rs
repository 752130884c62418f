//! Determinism: one seed, one trace.

use crate::common::*;
use serf_sim::{NetStats, TraceEvent};

/// A scenario touching every fault: joins, loss, crash, partition and heal, pause,
/// restart, starvation, re-joins and a graceful leave.
fn scenario(seed: u64) -> (Vec<TraceEvent>, NetStats, u64) {
    let mut sim = lan_sim(seed);
    let (ids, _) = start_cluster(&mut sim, 12, secs(0.05));
    sim.run_for(secs(10.0));
    sim.set_loss(0.05);
    sim.crash(ids[3]);
    sim.run_for(secs(20.0));
    sim.partition(&[ids[..6].to_vec(), ids[6..].to_vec()]);
    sim.run_for(secs(40.0));
    sim.heal();
    sim.pause(ids[8]);
    sim.run_for(secs(3.0));
    sim.resume(ids[8]);
    sim.restart(ids[3], Some(ids[0]));
    sim.starve(ids[5], secs(0.4));
    sim.join(ids[0], ids[7]);
    sim.join(ids[7], ids[0]);
    sim.run_for(secs(30.0));
    sim.leave(ids[11]);
    sim.run_for(secs(30.0));
    (sim.trace(), sim.stats(), sim.events_processed())
}

#[test]
fn same_seed_same_trace() {
    for seed in 0..8 {
        let a = scenario(seed);
        let b = scenario(seed);
        assert!(a.0.len() > 100, "trace too short to be meaningful");
        if a.0 != b.0 {
            let i = a.0.iter().zip(&b.0).position(|(x, y)| x != y);
            panic!(
                "seed {seed}: traces differ at {i:?} (lengths {} / {})",
                a.0.len(),
                b.0.len()
            );
        }
        assert_eq!(a.1, b.1, "seed {seed}: network counters differ");
        assert_eq!(a.2, b.2, "seed {seed}: event counts differ");
    }
}

#[test]
fn different_seeds_differ() {
    let runs: Vec<_> = (0..4).map(|s| scenario(50 + s)).collect();
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            assert_ne!(
                runs[i].0,
                runs[j].0,
                "seeds {} and {} gave the same trace",
                50 + i,
                50 + j
            );
        }
    }
}
