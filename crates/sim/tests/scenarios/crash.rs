//! (b) A crashed node is declared dead by every live node within the Lifeguard bound; a
//! restarted node rejoins.

use crate::common::*;
use serf_membership::suspicion;
use serf_membership::NodeStateKind;
use std::time::Duration;

/// Worst case from crash to "every live node has it Dead", for `n` nodes (SPEC 9.1, 9.2,
/// 9.6), with health score 0 (lossless network; probes of a crashed node fail with all
/// nacks received, so Lifeguard adds nothing):
///
/// * every live member walks a shuffled list of the n nodes, one probe per
///   `ProbeInterval`; the crashed node is in every round once, so the longest gap between
///   two probes of it by the same member is a round start followed by a round end:
///   `2(n-1) - 1` ticks. So every live member itself probes it within `(2n-3) * PI`;
/// * that probe fails at its deadline, `PI * (health+1)` = 1 PI after sending: suspicion
///   at most `(2n-2) * PI` after the crash (earlier if it heard the suspicion by gossip);
/// * its suspicion timer then fires after at most `max = SuspicionMaxTimeoutMult * min`
///   (24 s for n <= 10, no confirmations), earlier with confirmations or when the dead
///   message arrives by gossip.
///
/// Every live node therefore marks it dead within `(2n-2) * PI + max` of the crash, by its
/// own probe and timer alone; we add 1 s for network delay and scheduling. The expected
/// value is much lower: several members suspect it within a second or two, the 2
/// confirmations bring the timeout down to `min` (4 s), and the dead message is gossiped.
fn detection_bound(n: usize) -> Duration {
    let cfg = lan();
    let (_min, max, _k) = suspicion::bounds(
        cfg.suspicion_mult,
        cfg.suspicion_max_timeout_mult,
        cfg.probe_interval,
        n,
    );
    cfg.probe_interval * (2 * n as u32 - 2) + max + secs(1.0)
}

#[test]
fn crashed_node_declared_dead_within_lifeguard_bound() {
    let mut first = Vec::new();
    let mut last = Vec::new();
    for seed in 0..30u64 {
        let n = 5 + (seed as usize % 8); // 5..=12
        let mut sim = lan_sim(seed);
        let ids = converged_cluster(&mut sim, n);
        sim.run_for(secs(5.0 + (seed % 7) as f64 * 0.37));
        let victim = ids[1 + seed as usize % (n - 1)];
        let name = sim.name(victim).to_string();
        sim.crash(victim);
        let t0 = sim.now();
        let live: Vec<_> = ids.iter().copied().filter(|&i| i != victim).collect();
        let bound = detection_bound(n);
        let ok = sim.run_until(
            |s| {
                live.iter().all(|&o| {
                    s.state_of(o, victim)
                        .is_some_and(|st| st.0 == NodeStateKind::Dead)
                })
            },
            bound,
        );
        assert!(
            ok,
            "seed {seed}: {name} not dead everywhere within {bound:?} (n={n})"
        );
        let ev = dead_events(&sim);
        assert!(
            ev.iter().all(|(_, _, m)| *m == name),
            "seed {seed}: a live node was declared dead: {ev:?}"
        );
        let times: Vec<f64> = ev.iter().map(|(t, _, _)| (*t - t0).as_secs_f64()).collect();
        assert_eq!(
            times.len(),
            n - 1,
            "seed {seed}: one dead event per live observer"
        );
        first.push(times.iter().copied().fold(f64::MAX, f64::min));
        last.push(times.iter().copied().fold(0.0, f64::max));
        // Stays dead, nobody else dies, the survivors stay converged.
        sim.run_for(secs(20.0));
        assert!(sim.converged(&live), "seed {seed}: survivors not converged");
        assert_eq!(
            dead_events(&sim).len(),
            n - 1,
            "seed {seed}: extra deaths after detection"
        );
    }
    println!(
        "[crash] first observer marks dead after: {}",
        summary(&first)
    );
    println!(
        "[crash] last observer marks dead after:  {}",
        summary(&last)
    );
}

/// A crashed node restarted with a fresh core (incarnation 1) rejoins through a seed and
/// everyone sees it alive again, at an incarnation that beats the dead record (it learns
/// from the join reply that it is dead and refutes) or as a new node if its record was
/// already reaped. Bound: the join push/pull plus gossip, backstopped by one push/pull
/// interval.
#[test]
fn restarted_node_rejoins() {
    let mut times = Vec::new();
    for seed in 0..15u64 {
        let n = 6;
        let mut sim = lan_sim(1000 + seed);
        let ids = converged_cluster(&mut sim, n);
        let victim = ids[2];
        sim.crash(victim);
        let live: Vec<_> = ids.iter().copied().filter(|&i| i != victim).collect();
        assert!(sim.run_until(
            |s| live.iter().all(|&o| s
                .state_of(o, victim)
                .is_some_and(|st| st.0 == NodeStateKind::Dead)),
            detection_bound(n),
        ));
        // Half the seeds restart while the dead record is still there, half after reaping.
        sim.run_for(if seed % 2 == 0 { secs(1.0) } else { secs(70.0) });
        sim.restart(victim, Some(ids[0]));
        assert_eq!(sim.core(victim).incarnation(), 1);
        let t0 = sim.now();
        let ok = sim.run_until(|s| s.converged(&ids), lan().push_pull_interval + secs(1.0));
        assert!(
            ok,
            "seed {seed}: restarted node not back everywhere: {:?}",
            sim.view(ids[0])
        );
        times.push((sim.now() - t0).as_secs_f64());
        assert!(
            dead_events(&sim)
                .iter()
                .all(|(_, _, m)| m == sim.name(victim)),
            "seed {seed}: collateral death"
        );
    }
    println!(
        "[restart] rejoin convergence after restart: {}",
        summary(&times)
    );
}
