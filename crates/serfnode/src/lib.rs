//! serfnode: the process that is PID 1 of a serfnode container. It runs a Serf agent
//! in-process and gives the application containers beside it ("children") the cluster as
//! JSON files, an event FIFO and role names in `/etc/hosts`, talking to Docker through
//! the Engine API. `docs/serfnode.md` describes the behaviour; the Docker-independent
//! parts (configuration, tags, file contents, hosts block, FIFO lines) are the
//! `serfnode-core` crate.
//!
//! - [`node`]: start-up, the tasks, signals and shutdown.
//! - [`docker`]: the Docker Engine API calls.
//! - [`children`]: creating, restarting and stopping the children.
//! - `cluster`: the cluster files and `/etc/hosts`; `fifo`: the event FIFO.
#![forbid(unsafe_code)]

pub mod children;
mod cluster;
pub mod docker;
mod fifo;
pub mod node;
