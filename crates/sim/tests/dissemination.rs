//! A user event reaches 99.9% of a simulated Serf cluster within Serf's convergence model
//! (issue requirement: 1,000 nodes, 1.84 s at 0% loss, 2.05 s at 10% loss).
//!
//! The scenario and the model are in `support/dissemination.rs`; the full measurement is
//! `cargo run --release -p serf-sim --example dissemination`.
//!
//! Bound for smaller clusters. Serf's convergence simulator models the infected fraction
//! after `x` gossip rounds as the logistic `1 / (1 + (N + 1) e^(-k x))` with
//! `k = fanout * (1 - loss) / 2`, so the time to a fraction `q` is
//! `interval * ln((N + 1) q / (1 - q)) / k`: 1.842 s / 2.047 s for N = 1000, q = 99.9%
//! (the figures), 1.628 s / 1.809 s for N = 200. We assert exactly that, with no
//! extra margin: the bound already shrinks only logarithmically with N (N = 200 gets
//! 1.6 fewer rounds than N = 1000), and the model is conservative (its `/ 2` halves the
//! real contact rate: every node pushes to 3 peers every 200 ms, i.e. 15 contacts per
//! second, and the sender's peers relay at their next gossip tick, on average 100 ms
//! later, not a round later), so the measured times sit near half the bound. For
//! N < 1000, 99.9% of the nodes means all of them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/dissemination.rs"]
mod support;

use std::time::Duration;
use support::{distribution, nodes_for, run_seeds, serf_model_time_lan, Dissemination};

/// Runs `seeds` clusters of `n` nodes, fires on each one event per entry of `per_cluster`,
/// checks the setting of every event and returns them all.
fn measure(n: usize, seeds: u64, per_cluster: &[f64], threads: usize) -> Vec<Dissemination> {
    let runs = run_seeds(n, 0..seeds, per_cluster, threads, |_, _| {});
    let tl = serf_membership::queue::retransmit_limit(4, n);
    let mut all = Vec::new();
    for (f, evs) in runs {
        println!("{}", f.line());
        assert!(
            f.quiet.is_some(),
            "seed {}: cluster never settled",
            f.params.seed
        );
        for e in evs {
            println!("    {}", e.line());
            // The event must travel in a formed, quiet cluster whose Serf layer knows all
            // n members: that is what sets the transmit limit the model assumes.
            assert!(e.quiet_before, "seed {}: fired before quiet", e.seed);
            assert_eq!(
                e.serf_members,
                (n, n),
                "seed {}: Serf member counts",
                e.seed
            );
            assert_eq!(e.min_alive, n, "seed {}: memberlist alive count", e.seed);
            assert_eq!(e.transmit_limit, tl, "seed {}: transmit limit", e.seed);
            all.push(e);
        }
    }
    all
}

/// Asserts the 99.9% coverage time of every event against `bound(loss)`, prints the
/// distribution per loss setting.
fn check(n: usize, events: &[Dissemination], losses: &[f64], bound: impl Fn(f64) -> Duration) {
    for &loss in losses {
        let of_loss: Vec<&Dissemination> = events.iter().filter(|e| e.loss == loss).collect();
        assert!(!of_loss.is_empty());
        let b = bound(loss);
        let mut t999 = Vec::new();
        for e in &of_loss {
            let t = e.coverage(0.999).unwrap_or_else(|| {
                panic!(
                    "seed {} event {}: only {} of {n} nodes got the event ({} needed)",
                    e.seed,
                    e.index,
                    e.delays.len(),
                    nodes_for(0.999, n)
                )
            });
            assert!(
                t <= b,
                "seed {} event {} (loss {loss}): 99.9% of {n} nodes after {t:?} > bound {b:?}",
                e.seed,
                e.index
            );
            t999.push(t.as_secs_f64());
        }
        println!(
            "[dissemination] {n} nodes, loss {:.0}%, t99.9 (bound {:.3}s): {}",
            loss * 100.0,
            b.as_secs_f64(),
            distribution(&mut t999)
        );
    }
}

/// CI-sized: 200 nodes, 3 clusters (seeds), on each two events without loss and two at
/// 10% loss. Debug build: about 25 s of CPU (mostly forming the clusters), on 2 threads.
#[test]
fn user_event_reaches_999_permille_within_model_200_nodes() {
    let n = 200;
    let losses = [0.0, 0.1];
    let events = measure(n, 3, &[0.0, 0.1, 0.0, 0.1], 2);
    check(n, &events, &losses, |loss| {
        serf_model_time_lan(n, loss, 0.999)
    });
}

/// The model reproduces the figures.
#[test]
fn model_matches_serf_simulator_figures() {
    let t0 = serf_model_time_lan(1000, 0.0, 0.999).as_secs_f64();
    let t10 = serf_model_time_lan(1000, 0.1, 0.999).as_secs_f64();
    assert!((t0 - 1.84).abs() < 0.005, "{t0}");
    assert!((t10 - 2.05).abs() < 0.005, "{t10}");
    assert_eq!(nodes_for(0.999, 1000), 999);
    assert_eq!(nodes_for(0.999, 200), 200);
    assert_eq!(nodes_for(0.5, 1000), 500);
}

/// The requirement at full size: 1,000 nodes, 10 clusters (seeds), one event
/// without loss and one at 10% loss on each; 99.9% of the nodes within 1.84 s / 2.05 s.
/// Takes about 15 minutes of CPU in release (each cluster needs about a minute of
/// virtual time to form):
/// `cargo test --release -p serf-sim --test dissemination -- --ignored --nocapture`.
#[test]
#[ignore = "1,000 nodes: minutes in release, hours in debug"]
fn user_event_reaches_999_permille_within_model_1000_nodes() {
    let n = 1000;
    let losses = [0.0, 0.1];
    let events = measure(n, 10, &losses, 2);
    check(n, &events, &losses, |loss| {
        if loss == 0.0 {
            Duration::from_millis(1840)
        } else {
            Duration::from_millis(2050)
        }
    });
}
