//! The whole Serf layer under deterministic simulation: `serf_core::Serf`, the same machine
//! the tokio runtime drives, run on the simulator's virtual network with loss, partitions
//! and pauses. Each scenario runs over many seeds; a seed fixes the run.
// Test code: a failed `expect` is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;
mod determinism;
mod events;
mod heal;
mod join_burst;
mod keys;
mod leave;
mod membership;
mod queries;
