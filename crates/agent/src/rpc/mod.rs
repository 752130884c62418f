//! The agent's RPC server (docs/agent-rpc.md). The protocol itself (message types, the
//! object reader and the client) lives in the `serf-rpc` crate; this module accepts
//! connections, decodes requests into [`serf_rpc::Request`]s and answers each command
//! with its own handler.

mod commands;
mod conn;
pub mod server;
mod stats;
mod streams;

pub(crate) use commands::filter_members;
pub(crate) use stats::stats_sections;
