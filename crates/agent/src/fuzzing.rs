//! Entry points for the fuzz targets of the repository's `fuzz/` project and for the test
//! that replays their seeds: thin public wrappers over parsers that are private to this
//! crate. Hidden from the documentation; not a stable API.

use crate::config::{self, Config};
use crate::handlers::{self, journal};
use std::net::SocketAddr;

/// A parsed agent configuration (opaque; compare and print it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentConfig(Config);

impl AgentConfig {
    /// Merges a later source into this one, as `-config-dir` merges its files in order and
    /// the flags over the files (Go's `MergeConfig`).
    pub fn merge(&mut self, later: AgentConfig) {
        config::merge(&mut self.0, later.0);
    }

    /// Lengths of the list settings: tags, `start_join`, `event_handlers`, `retry_join`.
    pub fn list_lens(&self) -> [usize; 4] {
        [
            self.0.tags.len(),
            self.0.start_join.len(),
            self.0.event_handlers.len(),
            self.0.retry_join.len(),
        ]
    }

    /// The tags, in order.
    pub fn tags(&self) -> &[(String, String)] {
        &self.0.tags
    }

    /// The event handler specs given, in order.
    pub fn event_handlers(&self) -> &[String] {
        &self.0.event_handlers
    }
}

/// One JSON config text, as `-config-file` reads it.
pub fn config_json(text: &str) -> Result<AgentConfig, String> {
    config::parse_json(text).map(AgentConfig)
}

/// The agent's command line: the flags and the configuration they give, and the config
/// files and directories they name (in order, not read).
pub fn agent_flags(args: &[String]) -> Result<(AgentConfig, Vec<String>), (String, bool)> {
    let parsed = config::flagset().parse(args).map_err(|e| (e, true))?;
    let c = config::from_flags(&parsed)?;
    Ok((AgentConfig(c), config::config_paths(args)))
}

/// Go's `time.ParseDuration` (nanoseconds).
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    config::parse_duration(text)
}

/// A tags file's text (`-tags-file`).
pub fn tags_file(text: &str) -> Result<Vec<(String, String)>, String> {
    crate::agent::parse_tags_text(text)
}

/// A keyring file's text (`-keyring-file`): the keys, primary first.
pub fn keyring_file(text: &str) -> Result<Vec<Vec<u8>>, String> {
    crate::agent::parse_keyring_text(text)
        .map(|kr| kr.keys().iter().map(|k| k.as_bytes().to_vec()).collect())
}

/// `-event-handler` values: the number of (filter, script) entries, or Go's error.
pub fn event_handlers(specs: &[String]) -> Result<usize, String> {
    handlers::parse_event_scripts(specs).map(|s| s.len())
}

/// A handler's output as it becomes a query response: `writes` go through the output
/// ring of [`MAX_HANDLER_OUTPUT`] bytes; returns what is kept (the response payload) and
/// the total written.
pub fn handler_output(writes: &[&[u8]]) -> (Vec<u8>, u64) {
    let mut ring = handlers::Ring::new(handlers::MAX_OUTPUT);
    for w in writes {
        ring.write(w);
    }
    (ring.buf.into_iter().collect(), ring.total)
}

/// Largest handler output kept (the rest is dropped from the front).
pub const MAX_HANDLER_OUTPUT: usize = handlers::MAX_OUTPUT;

/// A pending event of the handler journal: (ltime, name, payload, coalesce).
pub type JournalEvent = (u64, String, Vec<u8>, bool);

/// A handler journal text: the pending events by id, and the largest id seen.
pub fn journal(text: &str) -> (Vec<(u64, JournalEvent)>, u64) {
    let (pending, max) = journal::parse(text);
    let events = pending
        .into_iter()
        .map(|(id, p)| (id, (p.ltime, p.name, p.payload, p.coalesce)))
        .collect();
    (events, max)
}

/// The journal line recording a pending event (as the agent appends it).
pub fn journal_line(id: u64, event: &JournalEvent) -> String {
    let (ltime, name, payload, coalesce) = event.clone();
    journal::record_line(
        id,
        &journal::Pending {
            ltime,
            name,
            payload,
            coalesce,
        },
    )
}

/// What [`dns`] found in one packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsReport {
    /// The parsed message (debug text).
    pub message: String,
    /// The message re-encoded by our packer (`None` when it holds a name it refuses).
    pub reencoded: Option<Vec<u8>>,
    /// The responder's replies to it (a fixed zone), as queried on 5353 and from elsewhere.
    pub replies: Vec<Vec<u8>>,
    /// Addresses the querier's bookkeeping completed from it.
    pub complete: Vec<SocketAddr>,
}

/// One mDNS packet: parsed, re-encoded, answered by a responder, absorbed by a querier.
pub fn dns(packet: &[u8]) -> Result<DnsReport, String> {
    crate::discover::fuzz_packet(packet)
}
