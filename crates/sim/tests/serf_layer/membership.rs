//! Serf's own membership work: a name conflict decided by vote, reconnecting a failed
//! node that came back, and reaping one that never did.

use crate::common::*;
use serf_core::{Event, MemberStatus};

#[test]
fn name_conflict_vote_shuts_down_the_newcomer() {
    for seed in 1..=16u64 {
        // Node 5 claims node-001's name.
        let (mut sim, _log) = serf_sim(seed, |_, _, _| {});
        sim.set_config_hook(|id, cfg| {
            if id == 5 {
                cfg.name = "node-001".to_string();
            }
        });
        let ids = converged(&mut sim, 5);
        let impostor = sim.add_node("impostor");
        assert_eq!(impostor, 5);
        sim.join(impostor, ids[3]);
        let decided = sim.run_until(|s| s.core(impostor).should_shutdown(), secs(30.0));
        assert!(decided, "seed {seed}: the newcomer did not lose the vote");
        sim.run_for(secs(10.0));
        assert!(
            !sim.core(ids[1]).should_shutdown(),
            "seed {seed}: the original lost"
        );
        // The cluster still knows node-001 at the original's address.
        let original = sim.addr(ids[1]);
        for &o in &ids {
            let m = sim.core(o).members();
            let n1 = m.iter().find(|m| m.name == "node-001").expect("known");
            assert_eq!(
                (n1.addr, n1.port),
                (original.ip(), original.port()),
                "seed {seed}"
            );
        }
    }
}

#[test]
fn failed_node_that_comes_back_is_reconnected() {
    for seed in 1..=16u64 {
        let (mut sim, log) = serf_sim(seed, |_, _, sc| {
            sc.reconnect_interval = secs(2.0);
        });
        let ids = converged(&mut sim, 6);
        sim.set_loss(0.02);
        let victim = ids[4];
        sim.crash(victim);
        let others: Vec<_> = ids.iter().copied().filter(|&i| i != victim).collect();
        let failed = sim.run_until(
            |s| all_see(s, &others, victim, Some(MemberStatus::Failed)),
            secs(60.0),
        );
        assert!(failed, "seed {seed}: the crash was not detected");
        // Back, knowing nobody: only the others' reconnect attempts can find it.
        let before = log.borrow().len();
        sim.restart(victim, None);
        let back = sim.run_until(|s| serf_converged(s, &ids), secs(120.0));
        assert!(back, "seed {seed}: the restarted node was not reconnected");
        let rejoined = log.borrow()[before..].iter().any(|(_, n, ev)| {
            *n != victim && matches!(ev, Event::MemberJoin(m) if m.name == sim.name(victim))
        });
        assert!(
            rejoined,
            "seed {seed}: no member-join for the reconnected node"
        );
    }
}

#[test]
fn node_failed_beyond_the_reconnect_timeout_is_reaped() {
    for seed in 1..=16u64 {
        let (mut sim, log) = serf_sim(seed, |_, _, sc| {
            sc.reap_interval = secs(1.0);
            sc.reconnect_timeout = secs(20.0);
        });
        let ids = converged(&mut sim, 5);
        let victim = ids[2];
        let name = sim.name(victim).to_string();
        sim.crash(victim);
        let others: Vec<_> = ids.iter().copied().filter(|&i| i != victim).collect();
        let gone = sim.run_until(|s| all_see(s, &others, victim, None), secs(90.0));
        assert!(gone, "seed {seed}: the failed node was never reaped");
        let mut reaped: Vec<_> = log
            .borrow()
            .iter()
            .filter(|(_, _, ev)| matches!(ev, Event::MemberReap(m) if m.name == name))
            .map(|(_, n, _)| *n)
            .collect();
        reaped.sort_unstable();
        assert_eq!(
            reaped, others,
            "seed {seed}: one member-reap event per node"
        );
    }
}

/// Failure detection at N=30 over 20 seeds follows the suspicion model: once a first
/// probe fails, every other node reports the dead node failed within the minimum
/// suspicion timeout (`4 * log10(30)` probe intervals = 5.9 s, reached because the other
/// probers confirm the suspicion) plus the dead message's dissemination. What varies is
/// the first probe: 29 probers each probe one member per second in their own random order,
/// so about a third of the seconds pass with no probe of the dead node.
#[test]
fn detection_follows_the_suspicion_model_n30() {
    let min_timeout = 4.0 * 30f64.log10();
    let mut times = Vec::new();
    for seed in 1..=20u64 {
        let (mut sim, _log) = serf_sim(seed, |_, _, _| {});
        let ids = converged(&mut sim, 30);
        sim.run_for(secs(5.0));
        let victim = ids[7];
        sim.crash(victim);
        let t0 = sim.now();
        let others: Vec<_> = ids.iter().copied().filter(|&i| i != victim).collect();
        let suspected = sim.run_until(
            |s| {
                others.iter().any(|&o| {
                    s.state_of(o, victim)
                        .is_some_and(|(k, _)| k != serf_membership::NodeStateKind::Alive)
                })
            },
            secs(60.0),
        );
        assert!(suspected, "seed {seed}: never suspected");
        let first = (sim.now() - t0).as_secs_f64();
        let failed = sim.run_until(
            |s| all_see(s, &others, victim, Some(MemberStatus::Failed)),
            secs(60.0),
        );
        assert!(failed, "seed {seed}: not everyone saw the failure");
        let all = (sim.now() - t0).as_secs_f64();
        assert!(
            all - first <= min_timeout + 1.0,
            "seed {seed}: {:.2} s from the first suspicion to failed everywhere",
            all - first
        );
        times.push((all, first, seed));
    }
    times.sort_by(|a, b| a.0.total_cmp(&b.0));
    eprintln!("detection N=30 (everyone, first suspicion, seed): {times:?}");
}
