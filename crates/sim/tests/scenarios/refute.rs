//! (e) A wrongly suspected node refutes and is never declared dead.

use crate::common::*;
use serf_membership::NodeStateKind;
use serf_sim::NodeId;

fn suspected_by_someone(sim: &TestSim, others: &[NodeId], x: NodeId) -> bool {
    others.iter().any(|&o| {
        sim.state_of(o, x)
            .is_some_and(|st| st.0 == NodeStateKind::Suspect)
    })
}

/// How the victim is made to look dead.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// SIGSTOP: its datagrams and streams queue up, its timers stop.
    Pause,
    /// A partition isolating it (datagrams and streams cut both ways; it keeps running and
    /// suspects everybody else too).
    Isolate,
}

/// The fault lasts until the first suspicion of the victim plus 500 ms. Nobody can declare
/// it dead before `min` (4 s) after the first suspicion started (a suspicion timer never
/// fires before `min`, SPEC 9.6), so 3.5 s remain for the refutation: on recovery it
/// reads the suspect messages (gossip, buddy-system pings), refutes with a higher
/// incarnation, and the alive message overrides every suspicion at the old incarnation.
fn run(seed: u64, fault: Fault) -> (f64, f64, u32) {
    let n = 5 + seed as usize % 4; // 5..=8
    let mut sim = lan_sim(seed);
    let ids = converged_cluster(&mut sim, n);
    sim.run_for(secs(1.0 + (seed % 3) as f64 * 0.3));
    let x = ids[seed as usize % n];
    let others: Vec<_> = ids.iter().copied().filter(|&i| i != x).collect();
    match fault {
        Fault::Pause => sim.pause(x),
        Fault::Isolate => sim.partition(&[vec![x]]),
    }
    let t0 = sim.now();
    // Longer than a probe by construction (a probe has to fail), cap at 20 s.
    let suspected = sim.run_until(|s| suspected_by_someone(s, &others, x), secs(20.0));
    assert!(suspected, "seed {seed}: {fault:?} node never suspected");
    let suspected_after = (sim.now() - t0).as_secs_f64();
    sim.run_for(secs(0.5));
    match fault {
        Fault::Pause => sim.resume(x),
        Fault::Isolate => sim.heal(),
    }
    let tr = sim.now();
    // Everybody sees it alive again at a higher incarnation.
    let ok = sim.run_until(
        |s| {
            s.converged(&ids)
                && others
                    .iter()
                    .all(|&o| s.state_of(o, x).is_some_and(|st| st.1 > 1))
        },
        lan().push_pull_interval,
    );
    assert!(
        ok,
        "seed {seed}: {fault:?} node not seen alive again: {:?}",
        sim.view(others[0])
    );
    let refuted_after = (sim.now() - tr).as_secs_f64();
    // Keep running past every suspicion timeout that could still be pending.
    sim.run_for(secs(60.0));
    let deaths = dead_events(&sim);
    assert!(
        deaths.is_empty(),
        "seed {seed}: {fault:?}: deaths {deaths:?}"
    );
    assert!(
        sim.core(x).incarnation() > 1,
        "seed {seed}: incarnation did not increase"
    );
    assert!(
        sim.core(x).stats().refutations > 0,
        "seed {seed}: no refutation"
    );
    assert!(sim.converged(&ids), "seed {seed}: not converged at the end");
    (suspected_after, refuted_after, sim.core(x).incarnation())
}

fn report(label: &str, r: &[(f64, f64, u32)]) {
    let s: Vec<f64> = r.iter().map(|x| x.0).collect();
    let f: Vec<f64> = r.iter().map(|x| x.1).collect();
    let inc = r.iter().map(|x| x.2).max().unwrap_or(0);
    println!(
        "[refute] {label}: first suspicion after fault: {}",
        summary(&s)
    );
    println!("[refute] {label}: everyone sees it alive (inc > 1) after recovery: {} (max incarnation {inc})", summary(&f));
}

#[test]
fn paused_node_refutes_and_survives() {
    let r: Vec<_> = (0..30).map(|seed| run(seed, Fault::Pause)).collect();
    report("pause", &r);
}

#[test]
fn isolated_node_refutes_and_survives() {
    let r: Vec<_> = (300..320).map(|seed| run(seed, Fault::Isolate)).collect();
    report("isolate", &r);
}
