//! (a) Joins converge to full membership.

use crate::common::*;

/// 30 seeds, 10..=20 nodes, node i joins a random earlier node 50 ms after node i-1.
///
/// Bound. A join is a push/pull with the seed, so the joiner knows the seed's view one
/// round trip later, and its alive message (queued since start-up, and re-broadcast by
/// every node that accepts it) spreads by gossip: every 200 ms each node sends its queue
/// to 3 random peers, each message `4 * ceil(log10(n + 1))` times (8 for n >= 10). An
/// epidemic with fanout 3 reaches n <= 20 nodes in a handful of rounds, so we expect
/// about 1 s. Gossip is probabilistic; the guaranteed backstop is anti-entropy: every
/// node starts a push/pull with a random alive peer every `PushPullInterval` (30 s, first
/// one uniformly within 30 s of start), which hands over the full state. Hence: converged
/// at most one push/pull interval (+1 s for the exchange and a last gossip round) after
/// the last join. We also require the median to stay within 10 gossip rounds (2 s) so a
/// dissemination regression is caught even if push/pull masks it.
#[test]
fn joins_converge_within_push_pull_bound() {
    let cfg = lan();
    let bound = cfg.push_pull_interval + secs(1.0);
    let mut times = Vec::new();
    for seed in 0..30u64 {
        let n = 10 + (seed as usize % 11);
        let mut sim = lan_sim(seed);
        let (ids, last_join) = start_cluster(&mut sim, n, secs(0.05));
        let ok = sim.run_until(|s| s.converged(&ids), bound);
        let t = sim.now() - last_join;
        assert!(
            ok,
            "seed {seed}: {n} nodes not converged {bound:?} after the last join"
        );
        assert!(
            dead_events(&sim).is_empty(),
            "seed {seed}: a node was declared dead while joining"
        );
        times.push(t.as_secs_f64());
    }
    println!(
        "[join] convergence after last join (10-20 nodes, 30 seeds): {}",
        summary(&times)
    );
    assert!(
        median(&times) <= 2.0,
        "median convergence {:.3}s exceeds 10 gossip rounds",
        median(&times)
    );
}
