//! Mixed clusters: the real Go `serf` agent and our Rust agent in one
//! cluster. Needs both binaries (`cargo build --release --bin serf` first);
//! skipped when ours is missing, failed under `CI=true`.
//!
//! Run: `cargo test -p serf-interop --test mixed -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{GO, RUST};
use serf_interop::{describe_status, record_measurement, require, Impl, Prereq};

/// (a) A Go agent joins a Rust seed.
#[test]
fn go_joins_rust() {
    common::pair_join(RUST, GO);
}

/// (a) A Rust agent joins a Go seed.
#[test]
fn rust_joins_go() {
    common::pair_join(GO, RUST);
}

/// (b) 3 Go + 3 Rust through mixed seeds; all six views list all six alive.
#[test]
fn three_plus_three() {
    common::three_plus_three(GO, RUST);
}

/// (c) kill -9 detection in both directions, with timings.
#[test]
fn kill9_detection_both_ways() {
    common::kill9_detection(GO, RUST);
}

/// (d) SIGINT → `left` in both directions; the process exits 0.
#[test]
fn graceful_leave_both_ways() {
    common::graceful_leave(GO, RUST);
}

/// (e) Encrypted mixed cluster; wrong-key / no-key agents cannot join.
#[test]
fn encrypted_cluster() {
    common::encrypted_cluster(GO, RUST);
}

/// (e) All of (a)-(d) again with the same `-encrypt` key on every node.
#[test]
fn encrypted_join_both_ways() {
    let key = serf_interop::keygen();
    common::pair_join_with(RUST, GO, Some(&key));
    common::pair_join_with(GO, RUST, Some(&key));
}

/// (e) 3 + 3, encrypted.
#[test]
fn encrypted_three_plus_three() {
    let key = serf_interop::keygen();
    common::three_plus_three_with(GO, RUST, Some(&key));
}

/// (e) kill -9 detection both ways, encrypted.
#[test]
fn encrypted_kill9_detection_both_ways() {
    let key = serf_interop::keygen();
    common::kill9_detection_with(GO, RUST, Some(&key));
}

/// (e) Graceful leave both ways, encrypted.
#[test]
fn encrypted_graceful_leave_both_ways() {
    let key = serf_interop::keygen();
    common::graceful_leave_with(GO, RUST, Some(&key));
}

/// (f) `-join` to a closed port: both implementations exit non-zero, with
/// the same exit code.
#[test]
fn join_failure_exits_nonzero() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let (go, go_line) = common::join_failure_status(Impl::Go);
    let (rust, rust_line) = common::join_failure_status(Impl::Rust);
    record_measurement(&format!(
        "JOIN-FAILURE go={} rust={}",
        describe_status(&go),
        describe_status(&rust)
    ));
    eprintln!("go:   {go_line}\nrust: {rust_line}");
    assert_eq!(
        rust.code(),
        go.code(),
        "exit status on failed -join differs: go {} vs rust {}",
        describe_status(&go),
        describe_status(&rust)
    );
}
