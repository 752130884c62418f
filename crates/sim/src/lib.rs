//! A deterministic discrete-event simulator for the sans-IO cores.
//!
//! Hundreds of real [`serf_membership::Machine`]s (bare [`serf_membership::Memberlist`]
//! cores, or whole `serf_core::Serf` nodes, the very machine the tokio runtime drives, via
//! [`Sim::with_machines`]) run in one thread on a virtual clock and talk over a virtual
//! network (`10.0.x.y:7946`, never bound). Streams go through the same
//! [`Machine::handle_stream_result`](serf_membership::Machine::handle_stream_result) path
//! as in the runtime:
//!
//! * datagrams ([`serf_membership::Transmit::Packet`]) get a per-link delay (base +
//!   uniform jitter) and random loss, and are cut by partitions;
//! * streams (push/pull, join, TCP fallback ping) are reliable (no random loss) but take
//!   the link delay both ways and are cut by partitions, crashes and pauses; the initiator
//!   then just times out;
//! * a node can be crashed, restarted (fresh core, same name and address, incarnation 1),
//!   paused (SIGSTOP: nothing runs, datagrams queue in a bounded kernel buffer), starved
//!   (its inbound processing lags while its timers stay on time) or made to leave.
//!
//! Everything random derives from one `u64` seed: the network's generator and each
//! node's core seed (per node and per restart). Events are ordered by virtual time, then
//! by insertion sequence, so the same seed and the same test calls give the same
//! [`trace`](Sim::trace).
//!
//! ```
//! use serf_membership::Config;
//! use serf_sim::{Sim, PORT};
//! use std::time::Duration;
//!
//! let template = Config::lan("", "10.0.0.1".parse().unwrap(), PORT);
//! let mut sim = Sim::new_recording(7, template);
//! let a = sim.add_node("a");
//! let b = sim.add_node("b");
//! sim.join(b, a);
//! assert!(sim.run_until(|s| s.converged(&[a, b]), Duration::from_secs(5)));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod net;
pub mod sim;
pub mod trace;

pub use net::{LinkParams, NetConfig, NetStats, NodeNetStats};
pub use sim::{mix64, node_addr, Sim, Status, MAX_NODES, PORT};
pub use trace::{NodeCtx, NodeId, RecordingDelegate, TraceEvent, TraceKind, TraceSink};
