//! serfnode core: the Docker-independent parts of serfnode, the container that runs a Serf
//! agent and hands the application containers beside it ("children") the cluster as JSON
//! files, an event FIFO and role names in `/etc/hosts`.
//!
//! See `docs/serfnode.md` (the SPEC) for the behaviour of the 2015 original this follows.
//! Every module is pure (inputs to outputs) except [`files::atomic_write`]:
//!
//! - [`config`]: environment variables over `/serfnode.yml` over defaults, and the children.
//! - [`tags`]: the tags a serfnode gossips, and the node info read back from a member's tags.
//! - [`files`]: the JSON contents of the file API, and atomic file replacement.
//! - [`hosts`]: the managed block of role names in `/etc/hosts`.
//! - [`fifo`]: lines written to the event FIFO, turned into user events.
#![forbid(unsafe_code)]

pub mod config;
pub mod fifo;
pub mod files;
pub mod hosts;
mod pyjson;
pub mod tags;
