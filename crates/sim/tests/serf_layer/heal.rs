//! Healing a partition of a Serf cluster: after the heal, every node must see every node
//! alive again quickly, without waiting for a push/pull round.

use crate::common::*;
use serf_core::MemberStatus;
use serf_sim::NodeId;
use std::time::Duration;

/// Whether `o` sees every node of `ids` as an alive Serf member.
fn sees_all_alive(sim: &SerfSim, o: NodeId, ids: &[NodeId]) -> bool {
    ids.iter()
        .all(|&m| status(sim, o, m) == Some(MemberStatus::Alive))
}

/// Partitions six nodes 3|3 for `hold`, heals, and returns per node the virtual seconds
/// after the heal until it saw all six alive (`None`: not within `max`).
fn heal_times(seed: u64, hold: Duration, max: Duration) -> Vec<Option<f64>> {
    let (mut sim, _log) = serf_sim(seed, |_, _, _| {});
    // Started seconds apart, so each node's reconnect timer has its own phase.
    let mut pick = serf_membership::Rng::new(seed ^ 0x4ea1);
    let mut ids = Vec::new();
    for i in 0..6 {
        let id = sim.add_node(&format!("node-{i:03}"));
        if i > 0 {
            sim.join(id, ids[pick.below(i)]);
        }
        ids.push(id);
        sim.run_for(secs(pick.unit() * 10.0));
    }
    assert!(sim.run_until(|s| serf_converged(s, &ids), secs(60.0)));
    sim.run_for(secs(1.0 + (seed % 7) as f64 * 0.37));
    let (a, b) = ids.split_at(3);
    sim.partition(&[a.to_vec(), b.to_vec()]);
    sim.run_for(hold);
    for &o in &ids {
        let own = if a.contains(&o) { a } else { b };
        for &m in &ids {
            let want = if own.contains(&m) {
                MemberStatus::Alive
            } else {
                MemberStatus::Failed
            };
            assert_eq!(
                status(&sim, o, m),
                Some(want),
                "seed {seed}: {o} about {m} before the heal"
            );
        }
    }
    sim.heal();
    let th = sim.now();
    let mut out = vec![None; ids.len()];
    sim.run_until(
        |s| {
            for (i, &o) in ids.iter().enumerate() {
                if out[i].is_none() && sees_all_alive(s, o, &ids) {
                    out[i] = Some((s.now() - th).as_secs_f64());
                }
            }
            out.iter().all(Option::is_some)
        },
        max,
    );
    out
}

/// Partition six Serf nodes 3|3 long enough for each side to declare the other failed,
/// heal, and measure per node when it sees all six alive again. The first exchange across
/// waits for some node's reconnect timer (up to 30 s); what the fix is about is the rest:
/// every node must follow the first one within 2 s. Before the fix a node that missed the
/// gossip, or still held a dead record at the incarnation that was gossiped alive, waited
/// for its own next push/pull or reconnect (up to 30 s later; 10 to 25 s in these seeds).
/// Held 40 s, some nodes still hold the other side dead at heal time and some have
/// forgotten it; held 60 s, all have forgotten it.
#[test]
fn every_node_sees_the_other_side_alive_soon_after_a_heal() {
    let mut worst = (0.0f64, 0u64, 0.0f64);
    for hold in [40.0, 60.0] {
        for seed in 1..=40u64 {
            let t = heal_times(seed, secs(hold), secs(90.0));
            let got: Vec<f64> = t.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect();
            let first = got.iter().copied().fold(f64::INFINITY, f64::min);
            let last = got.iter().copied().fold(0.0, f64::max);
            assert!(
                last - first <= 2.0,
                "seed {seed}, held {hold} s: seconds after the heal until each node saw all six alive: {got:?}"
            );
            if last - first > worst.0 {
                worst = (last - first, seed, hold);
            }
        }
    }
    println!(
        "measured: largest lag behind the first node to see all six alive: {:.2} s (seed {}, held {} s)",
        worst.0, worst.1, worst.2
    );
}
