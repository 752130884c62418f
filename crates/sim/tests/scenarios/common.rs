//! Shared helpers for the scenario tests.

use serf_membership::{Config, Memberlist, NodeStateKind};
use serf_sim::{NodeId, RecordingDelegate, Sim, TraceKind, PORT};
use std::time::Duration;

pub(crate) type TestSim = Sim<Memberlist<RecordingDelegate>>;

pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

pub(crate) fn lan() -> Config {
    Config::lan("", "10.0.0.1".parse().unwrap(), PORT)
}

pub(crate) fn lan_sim(seed: u64) -> TestSim {
    Sim::new_recording(seed, lan())
}

/// Adds `n` nodes; node i (i >= 1) joins a random earlier node, `gap` after node i-1.
/// Returns the ids and the time of the last join.
pub(crate) fn start_cluster(sim: &mut TestSim, n: usize, gap: Duration) -> (Vec<NodeId>, Duration) {
    let mut pick = serf_membership::Rng::new(sim.seed() ^ 0x5eed);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = sim.add_node(&format!("node-{i:03}"));
        if i > 0 {
            let seed = ids[pick.below(i)];
            sim.join(id, seed);
        }
        ids.push(id);
        if i + 1 < n {
            sim.run_for(gap);
        }
    }
    (ids, sim.now())
}

/// Starts a cluster of `n` and waits for full convergence (panics if it does not).
pub(crate) fn converged_cluster(sim: &mut TestSim, n: usize) -> Vec<NodeId> {
    let (ids, _) = start_cluster(sim, n, Duration::from_millis(50));
    let ok = sim.run_until(|s| s.converged(&ids), secs(60.0));
    assert!(ok, "seed {}: cluster of {n} did not converge", sim.seed());
    ids
}

/// Every `notify_leave` with state Dead: `(time, observer, member)`.
pub(crate) fn dead_events(sim: &TestSim) -> Vec<(Duration, NodeId, String)> {
    sim.trace_sink().with(|t| {
        t.iter()
            .filter_map(|e| match (&e.kind, e.node) {
                (
                    TraceKind::MemberLeave {
                        member,
                        state: NodeStateKind::Dead,
                        ..
                    },
                    Some(obs),
                ) => Some((e.time, obs, member.clone())),
                _ => None,
            })
            .collect()
    })
}

/// Sum of a core counter over the given nodes.
pub(crate) fn sum_stat(
    sim: &TestSim,
    ids: &[NodeId],
    f: impl Fn(serf_membership::Stats) -> u64,
) -> u64 {
    ids.iter().map(|&i| f(sim.core(i).stats())).sum()
}

/// `min/median/p90/max` of values in seconds.
pub(crate) fn summary(v: &[f64]) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    format!(
        "n={} min={:.3}s median={:.3}s p90={:.3}s max={:.3}s",
        v.len(),
        v[0],
        q(0.5),
        q(0.9),
        v[v.len() - 1]
    )
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
