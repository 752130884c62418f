//! (d) A partition into two halves: each side declares the other dead; after healing,
//! full membership returns.

use crate::common::*;
use serf_membership::NodeStateKind;
use serf_sim::NodeId;
use std::collections::HashSet;
use std::time::Duration;

/// Whether every node has recorded a Dead event about every node of the other side since
/// `since` (the member may have been reaped from the list afterwards).
fn each_side_declared_other_dead(
    sim: &TestSim,
    a: &[NodeId],
    b: &[NodeId],
    since: Duration,
) -> bool {
    let seen: HashSet<(NodeId, String)> = dead_events(sim)
        .into_iter()
        .filter(|(t, _, _)| *t >= since)
        .map(|(_, o, m)| (o, m))
        .collect();
    let covers = |obs: &[NodeId], others: &[NodeId]| {
        obs.iter().all(|&o| {
            others
                .iter()
                .all(|&m| seen.contains(&(o, sim.name(m).to_string())))
        })
    };
    covers(a, b) && covers(b, a)
}

struct Outcome {
    detect: f64,
    spontaneous: Option<f64>,
    after_rejoin: Option<f64>,
}

/// Partition 10 nodes 5/5, wait until both sides declared the other dead, keep the
/// partition for `hold` more, heal, then:
///
/// 1. wait one push/pull interval (30 s) for memberlist to re-merge on its own. It can:
///    dead nodes are still gossiped to for `GossipToTheDeadTime` (30 s), so a node that
///    receives "you are dead" refutes and its new alive crosses over; and push/pull picks
///    only alive peers, so once one cross link is alive again the states merge.
/// 2. if not converged (the queues were already empty, or the dead were reaped from the
///    lists), do what Serf's reconnect loop does: one node of each side joins a node of
///    the other side. The join push/pulls exchange full state, and gossip spreads it. A
///    node X that the other side still holds as dead at X's current incarnation is not
///    revived by that (an alive needs a strictly higher incarnation, SPEC 8.6) until
///    either X push/pulls with an other-side node (it then merges "X dead" as a
///    suspicion of itself and refutes), or the other side reaps X's dead record
///    (`GossipToTheDeadTime` after its death, at the next probe-list wrap, i.e. within one
///    round of n probes) and the next push/pull carrying X's alive re-creates it. Bound
///    after the re-join: `GossipToTheDeadTime + n * ProbeInterval + PushPullInterval`
///    (+1 s) = 71 s for LAN and n = 10; typically well under a second.
fn run(seed: u64, hold: Duration) -> Outcome {
    let n = 10;
    let mut sim = lan_sim(seed);
    let ids = converged_cluster(&mut sim, n);
    sim.run_for(secs(2.0 + (seed % 5) as f64 * 0.41));
    let (a, b) = ids.split_at(n / 2);
    let (a, b) = (a.to_vec(), b.to_vec());
    sim.partition(&[a.clone(), b.clone()]);
    let tp = sim.now();
    // Bound for declaring the other side dead: the crash bound (2(n-1) PI + max = 18 s +
    // 24 s), plus 18 s because Lifeguard slows the probers down here: relays on the other
    // side never nack, so each failed probe raises the health score and stretches the
    // probe period (up to 8x) until the other side is dead.
    let bound = secs(60.0);
    let ok = sim.run_until(|s| each_side_declared_other_dead(s, &a, &b, tp), bound);
    assert!(
        ok,
        "seed {seed}: sides did not declare each other dead within {bound:?}"
    );
    let detect = (sim.now() - tp).as_secs_f64();
    // Nobody is declared dead by its own side.
    for (_, o, m) in dead_events(&sim) {
        let o_in_a = a.contains(&o);
        let m_in_a = a.iter().any(|&x| sim.name(x) == m);
        assert_ne!(
            o_in_a, m_in_a,
            "seed {seed}: {m} declared dead by its own side ({o})"
        );
    }
    for &o in &ids {
        let own = if a.contains(&o) { &a } else { &b };
        assert!(
            sim.sees_exactly(o, own),
            "seed {seed}: node {o} does not see exactly its side alive"
        );
    }
    sim.run_for(hold);
    sim.heal();
    let th = sim.now();
    let ppi = lan().push_pull_interval;
    if sim.run_until(|s| s.converged(&ids), ppi) {
        return Outcome {
            detect,
            spontaneous: Some((sim.now() - th).as_secs_f64()),
            after_rejoin: None,
        };
    }
    sim.join(a[0], b[0]);
    sim.join(b[0], a[0]);
    let tr = sim.now();
    let cfg = lan();
    let bound = cfg.gossip_to_the_dead_time + cfg.probe_interval * n as u32 + ppi + secs(1.0);
    let ok = sim.run_until(|s| s.converged(&ids), bound);
    assert!(
        ok,
        "seed {seed}: not converged after re-join; view of a0: {:?}",
        sim.view(a[0])
    );
    let all_alive = ids.iter().all(|&o| {
        ids.iter()
            .all(|&m| sim.state_of(o, m).unwrap().0 == NodeStateKind::Alive)
    });
    assert!(all_alive);
    Outcome {
        detect,
        spontaneous: None,
        after_rejoin: Some((sim.now() - tr).as_secs_f64()),
    }
}

fn report(label: &str, outs: &[Outcome]) {
    let detect: Vec<f64> = outs.iter().map(|o| o.detect).collect();
    let spont: Vec<f64> = outs.iter().filter_map(|o| o.spontaneous).collect();
    let rejoin: Vec<f64> = outs.iter().filter_map(|o| o.after_rejoin).collect();
    println!(
        "[partition] {label}: both sides declared the other dead after: {}",
        summary(&detect)
    );
    println!(
        "[partition] {label}: re-merged by memberlist alone after heal: {}",
        summary(&spont)
    );
    println!(
        "[partition] {label}: needed a re-join, converged after it: {}",
        summary(&rejoin)
    );
}

/// Heal right after both sides declared each other dead (30 seeds).
#[test]
fn partition_heal_immediately() {
    let outs: Vec<_> = (0..30).map(|seed| run(seed, Duration::ZERO)).collect();
    report("heal at once", &outs);
}

/// Heal after 2 minutes, when the dead have been reaped from every list: memberlist
/// alone cannot re-merge (nobody knows the other side any more), the re-join does it.
#[test]
fn partition_heal_after_reap() {
    let outs: Vec<_> = (200..210).map(|seed| run(seed, secs(120.0))).collect();
    report("heal after 2 min", &outs);
    assert!(
        outs.iter().all(|o| o.after_rejoin.is_some()),
        "reaped nodes cannot re-merge without a join"
    );
}
