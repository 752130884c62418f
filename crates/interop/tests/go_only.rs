//! Go-only tests: validate the harness (and the shared scenarios) against the
//! real Go `serf` binary, and record Go-vs-Go baselines.
//!
//! Run: `cargo test -p serf-interop --test go_only -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::{GO_A, GO_B};
use serf_interop::{
    describe_status, fmt_secs, require, wait_all_report, Cluster, Impl, NodeSpec, Prereq, DEADLINE,
};

/// 3 Go agents join and see each other; kill -9 one → the others report it
/// `failed`; SIGINT another → the last one reports it `left` and the
/// SIGINTed process exits 0.
#[test]
fn go_only_sanity() {
    require!(Prereq::GoSerf);
    let nodes = [
        NodeSpec::new(Impl::Go, "g1").tag("role", "web"),
        NodeSpec::new(Impl::Go, "g2").tag("role", "db").join(0),
        NodeSpec::new(Impl::Go, "g3").tag("dc", "x").join(1),
    ];
    let cluster = Cluster::start(&nodes, None).unwrap();
    let took = cluster.wait_converged(DEADLINE).unwrap();
    eprintln!("converged after {}", fmt_secs(took));
    let (g1, g2, g3) = (
        cluster.agent("g1"),
        cluster.agent("g2"),
        cluster.agent("g3"),
    );

    let t0 = Instant::now();
    g3.kill9();
    let seen = wait_all_report(&[g1, g2], "g3", "failed", t0, DEADLINE).unwrap();
    eprintln!("kill -9 g3 → failed: {seen:?}");

    let t1 = Instant::now();
    g2.sigint().unwrap();
    let seen = wait_all_report(&[g1], "g2", "left", t1, DEADLINE).unwrap();
    let status = g2
        .wait_exit(common::EXIT_DEADLINE)
        .expect("g2 exits after SIGINT");
    eprintln!(
        "SIGINT g2 → left: {seen:?}; g2 {} after {}",
        describe_status(&status),
        fmt_secs(t1.elapsed())
    );
    assert!(
        status.success(),
        "Go agent exit after SIGINT: {}",
        describe_status(&status)
    );
    assert!(g1.is_running());
}

#[test]
fn go_only_pair_join() {
    common::pair_join(GO_A, GO_B);
}

#[test]
fn go_only_three_plus_three() {
    common::three_plus_three(GO_A, GO_B);
}

#[test]
fn go_only_kill9_detection() {
    common::kill9_detection(GO_A, GO_B);
}

#[test]
fn go_only_graceful_leave() {
    common::graceful_leave(GO_A, GO_B);
}

#[test]
fn go_only_encrypted_cluster() {
    common::encrypted_cluster(GO_A, GO_B);
}

#[test]
fn go_only_join_failure_exits_nonzero() {
    require!(Prereq::GoSerf);
    let (status, line) = common::join_failure_status(Impl::Go);
    eprintln!("go: {} — {line}", describe_status(&status));
    assert_eq!(status.code(), Some(1), "Go agent exit code on failed -join");
}
