//! (f) A starved node (inbound processing lags, timers on time) is not declared dead.

use crate::common::*;
use serf_sim::TraceKind;

/// 8 nodes, one starved by `delay` for 3 virtual minutes.
fn run(seed: u64, delay: f64) -> (u64, u64, u64) {
    let mut sim = lan_sim(seed);
    let ids = converged_cluster(&mut sim, 8);
    let x = ids[seed as usize % 8];
    sim.starve(x, secs(delay));
    sim.run_for(secs(180.0));
    let deaths = dead_events(&sim);
    assert!(
        deaths.is_empty(),
        "seed {seed}: starved by {delay}s: deaths {deaths:?}"
    );
    assert!(sim.converged(&ids), "seed {seed}: not converged");
    (
        sum_stat(&sim, &ids, |s| s.probes_failed),
        sim.core(x).stats().refutations,
        sim.events_processed(),
    )
}

/// 300 ms: well under `ProbeTimeout` (500 ms): acks come back in time, nothing even fails.
#[test]
fn starved_300ms_not_declared_dead() {
    let r: Vec<_> = (0..20).map(|seed| run(seed, 0.3)).collect();
    let pf: u64 = r.iter().map(|x| x.0).sum();
    println!("[starve] 300 ms, 8 nodes, 3 min, 20 seeds: deaths=0, failed probes={pf}");
    assert_eq!(pf, 0, "a 300 ms lag is below the probe timeout");
}

/// 700 ms: over `ProbeTimeout`, under `ProbeInterval`: the direct ack is late, indirect
/// probes go out, but an ack with the probe's sequence number is accepted until the probe
/// deadline (1 s), so probes still succeed.
#[test]
fn starved_700ms_not_declared_dead() {
    let r: Vec<_> = (20..30).map(|seed| run(seed, 0.7)).collect();
    let pf: u64 = r.iter().map(|x| x.0).sum();
    let refs: u64 = r.iter().map(|x| x.1).sum();
    println!("[starve] 700 ms, 8 nodes, 3 min, 10 seeds: deaths=0, failed probes={pf}, refutations={refs}");
}

/// 1.5 s, longer than a probe interval: every probe of the node fails, it is suspected
/// over and over and refutes each time (its incarnation climbs). This is faithful
/// memberlist 0.2.2 behaviour, not a simulator artefact: while a suspicion at incarnation
/// i runs, a newer suspect (i+1) only counts as a confirmation (SPEC 8.3 step 2), and
/// relays replace the queued refutation (alive i+1) by the newer suspect about the same
/// node (SPEC 8.7), so an observer can time out and declare the node dead, then revive it
/// with the next alive (flapping). The starved node also accuses healthy peers (its acks
/// are read too late) and can get one of them briefly declared dead the same way; its
/// Lifeguard health score stretches its probe deadline and limits that. Requirements:
/// once the lag ends, the cluster settles with everybody alive, and every death was
/// followed by a rejoin.
#[test]
fn heavily_starved_node_flaps_then_recovers() {
    let mut flaps = 0usize;
    let mut collateral = 0usize;
    let mut incs = Vec::new();
    for seed in 40..50u64 {
        let mut sim = lan_sim(seed);
        let ids = converged_cluster(&mut sim, 8);
        let x = ids[1];
        sim.starve(x, secs(1.5));
        sim.run_for(secs(120.0));
        assert!(
            sim.core(x).stats().refutations > 0,
            "seed {seed}: never had to refute"
        );
        sim.starve(x, secs(0.0));
        let ok = sim.run_until(|s| s.converged(&ids), lan().push_pull_interval);
        assert!(ok, "seed {seed}: not converged after the lag ended");
        let dead = dead_events(&sim);
        for (_, obs, m) in &dead {
            let joins = sim.trace_sink().with(|t| {
                t.iter()
                    .filter(|e| e.node == Some(*obs))
                    .filter(
                        |e| matches!(&e.kind, TraceKind::MemberJoin { member, .. } if member == m),
                    )
                    .count()
            });
            let deaths = dead.iter().filter(|(_, o, mm)| o == obs && mm == m).count();
            // The initial join of m at obs counts once.
            assert!(
                joins > deaths,
                "seed {seed}: {m} dead at node {obs} without a rejoin"
            );
        }
        flaps += dead.iter().filter(|(_, _, m)| m == sim.name(x)).count();
        collateral += dead.iter().filter(|(_, _, m)| m != sim.name(x)).count();
        incs.push(sim.core(x).incarnation());
    }
    println!(
        "[starve] 1.5 s for 2 min, 8 nodes, 10 seeds: starved node dead-then-alive flaps={flaps}, \
         healthy peers briefly declared dead={collateral}, final incarnations {incs:?}"
    );
}
