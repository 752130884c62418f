//! A sans-IO implementation of HashiCorp memberlist 0.2.x: SWIM failure detection with
//! Lifeguard (local health awareness, suspicion confirmations, nacks), dissemination with a
//! transmit-limited queue, push/pull anti-entropy, join and graceful leave.
//!
//! No sockets, no clocks, no threads: the driver feeds datagrams, stream messages and the
//! current time, and sends what [`Memberlist::poll_transmit`] returns. The same core runs in
//! the tokio runtime and, hundreds at a time, in the simulator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod info;
pub mod machine;
pub mod memberlist;
pub mod queue;
pub mod rng;
pub mod suspicion;

pub use config::Config;
pub use info::{Info, Interner, Name, OptStamp, Stamp};
pub use machine::Machine;
pub use memberlist::{
    Delegate, Memberlist, NoDelegate, Node, Stats, StreamPurpose, Timer, Transmit,
};
pub use queue::BroadcastQueue;
pub use rng::Rng;
pub use serf_wire::messages::NodeStateKind;
