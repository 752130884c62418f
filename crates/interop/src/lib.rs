//! Interop test harness: runs real agent processes — the Go reference `serf`
//! binary and our Rust `serf` binary — on fresh loopback ports, and inspects
//! their views of the cluster through the agent RPC (by running the Go CLI
//! `serf members -format=json`).
//!
//! Test-only code: panicking helpers are fine here.
//!
//! * Prerequisites: [`go_serf`], [`our_serf`], [`require()`] / [`require!`].
//!   A missing prerequisite skips the test, except when `CI=true`, where it
//!   fails it.
//! * Ports: [`free_gossip_port`] (TCP and UDP both free), [`free_tcp_port`].
//! * Processes: [`AgentSpec`] + [`Agent`]. Every agent is SIGKILLed and reaped
//!   when dropped (also during a panic, when the tail of its log is printed),
//!   and a tiny `sh` watchdog kills it if the test process itself dies.
//! * Views: [`members`], [`members_with`], [`check_view`].
//! * Waiting: [`wait_until`], [`wait_for`], [`wait_member_status`],
//!   [`wait_all_see`], [`wait_all_report`], [`wait_converged`].
//! * Clusters of mixed implementations: [`NodeSpec`] + [`Cluster`].
//! * Networks of namespaces (bridge, veths, nftables faults): [`netns`].
//! * The Go-vs-ours benchmark behind `scripts/bench`: [`bench`](mod@bench).
//! * /proc figures: [`rss_kib`], [`cpu_ticks`].
//!
//! Running:
//! * `cargo test -p serf-interop --test go_only` — Go-only; validates the
//!   harness and the shared scenarios (`tests/common/mod.rs`) and records
//!   Go-vs-Go baselines.
//! * `cargo build --release --bin serf && cargo test -p serf-interop --test mixed`
//!   — Go + Rust clusters. Add `-- --nocapture` to see timings; they are also
//!   appended to `<target>/interop-measurements.txt`. Agent logs are kept in
//!   `<target>/interop-logs/<test>/`.
//!
//! Environment:
//! * `SERF_RS_BIN` — path of the Rust binary (default: the newest of
//!   `<target>/release/serf` and `<target>/debug/serf`).
//! * `SERF_GO_BIN` — path of the Go binary (default `/usr/bin/serf`, then `PATH`).
//! * `CARGO_TARGET_DIR` — honoured when locating `<target>`.
//! * `SERF_INTEROP_LOG_DIR` — where agent logs go (default
//!   `<target>/interop-logs/<test name>/`).
//! * `CI=true` — missing prerequisites fail instead of skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Generous default deadline for anything cluster-related (loaded 2-core box).
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Default polling interval.
pub const POLL: Duration = Duration::from_millis(250);
/// Deadline for one CLI invocation (`serf members ...`).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline for an agent to start serving RPC.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

mod agent;
pub mod bench;
mod cluster;
mod command;
mod measure;
pub mod netns;
mod ports;
mod prereq;
mod procfs;
mod view;
mod wait;

pub use agent::*;
pub use cluster::*;
pub use command::*;
pub use measure::*;
pub use ports::*;
pub use prereq::*;
pub use procfs::*;
pub use view::*;
pub use wait::*;
