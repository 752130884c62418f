//! The Serf agent as a library: what the `serf` binary runs, usable by programs that embed
//! an agent or drive one (a drop-in replacement for HashiCorp's `serf` 0.9.4).
//!
//! * [`cli`]: the command line ([`cli::dispatch`] is all `main` calls), one file per
//!   command; the client commands talk to an agent through [`serf_rpc::Client`].
//! * [`agent`]: `serf agent` ([`agent::run`]): flags and configuration, start-up, the
//!   RPC listener, signals, leave and shutdown.
//! * [`embed`]: an agent inside another program (serfnode), with its RPC server and
//!   handlers, the embedder owning signals and exit.
//! * [`config`]: JSON configuration files and their merge with the flags.
//! * [`handlers`]: event handler scripts and event filters.
//! * [`rpc`]: the agent's RPC server (the protocol itself is the `serf-rpc` crate).
//! * `http`: the read-only HTTP API and web view (`-http-addr`).
//! * [`telemetry`]: Go-compatible metrics (statsd, statsite, the `SIGUSR1` dump).
//! * [`discover`]: mDNS discovery (`-discover`).
#![forbid(unsafe_code)]

pub mod agent;
pub mod cli;
mod coalesce;
pub mod config;
pub mod discover;
pub mod embed;
mod flags;
#[doc(hidden)]
pub mod fuzzing;
mod gofmt;
pub mod handlers;
mod help;
mod http;
mod logging;
mod notify;
pub mod rpc;
mod shared;
pub mod telemetry;
