//! Scenario tests of the membership core in the simulator, each over many seeds.
//!
//! Every test is deterministic (fixed seeds). Measured figures are printed; run with
//! `cargo test -p serf-sim --test scenarios -- --nocapture` to see them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod crash;
mod determinism;
mod join;
mod loss;
mod mechanics;
mod partition;
mod refute;
mod starve;
