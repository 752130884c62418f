//! What the command handlers share: the agent side of the server ([`Ctl`]), the
//! per-connection state ([`Session`]) and the request being answered ([`Conn`]).

use serf_rpc::ResponseHeader;
use serf_runtime::Agent;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, Mutex};

/// The write half, shared between the request loop and stream tasks.
pub(crate) type Wr = Arc<Mutex<tokio::net::tcp::OwnedWriteHalf>>;

/// Most RPC clients at once.
pub(crate) const MAX_CLIENTS: usize = 256;

/// How long a client beyond the limit waits for a free slot before it is closed.
pub(crate) const CLIENT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most clients waiting for a slot at once.
pub(crate) const MAX_WAITING_CLIENTS: usize = 64;

/// How long a new client may take to send its handshake before it is closed.
pub(crate) const HANDSHAKE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// Events buffered per stream subscriber (Go: 512).
pub(crate) const STREAM_BUFFER: usize = 512;

/// What the RPC server needs from the agent.
#[derive(Debug, Clone)]
pub(crate) struct Ctl {
    /// The running agent.
    pub agent: Agent,
    /// `rpc_auth` token ("" = none).
    pub auth: String,
    /// Asks the agent process to leave and exit (`serf leave`).
    pub leave: mpsc::Sender<LeaveRequest>,
    /// Coalesced events, for `stream`.
    pub events: tokio::sync::broadcast::Sender<crate::coalesce::CoalescedEvent>,
    /// Event handlers (for `stats`).
    pub handlers: Arc<crate::handlers::Handlers>,
}

/// A `leave` command handed to the agent's main loop: it leaves, reports the outcome
/// on `done`, waits for `replied` (the answer is on its way) and shuts down.
#[derive(Debug)]
pub(crate) struct LeaveRequest {
    /// The leave's outcome.
    pub done: tokio::sync::oneshot::Sender<Result<(), String>>,
    /// Fires once the client has its answer.
    pub replied: tokio::sync::oneshot::Receiver<()>,
}

/// Per-connection state.
pub(super) struct Session {
    /// A handshake succeeded.
    pub(super) handshake: bool,
    /// Authenticated (or no token configured).
    pub(super) authed: bool,
    /// Event streams by Seq.
    pub(super) streams: std::collections::HashMap<u64, tokio::task::JoinHandle<()>>,
    /// The monitor: its Seq and task.
    pub(super) monitor: Option<(u64, tokio::task::JoinHandle<()>)>,
    /// Queries seen by this connection's streams.
    pub(super) queries: Arc<std::sync::Mutex<QueryIds>>,
}

/// Queries delivered on a connection's streams: per-connection ID → (ltime, query id,
/// deadline), for `respond`.
#[derive(Default)]
pub(super) struct QueryIds {
    /// The last ID handed out.
    pub(super) next: u64,
    /// Pending queries.
    pub(super) by_id: std::collections::HashMap<u64, (u64, u32, std::time::Instant)>,
}

impl Drop for Session {
    fn drop(&mut self) {
        for (_, h) in self.streams.drain() {
            h.abort();
        }
        if let Some((_, h)) = self.monitor.take() {
            h.abort();
        }
    }
}

/// Whether the connection stays open after a request.
pub(super) enum Outcome {
    Continue,
    Close,
}

/// What a command handler works with: the agent, the connection and the request's Seq.
pub(super) struct Conn<'a> {
    /// The agent side.
    pub(super) ctl: &'a Ctl,
    /// The connection's state.
    pub(super) st: &'a mut Session,
    /// The connection's write half.
    pub(super) wr: &'a Wr,
    /// The request's Seq.
    pub(super) seq: u64,
}

impl Conn<'_> {
    /// Answers the request: header (with `error`, "" for success) and optional body.
    pub(super) async fn reply(&self, error: &str, body: Option<Vec<u8>>) -> Result<(), String> {
        send(self.wr, self.seq, error, body).await
    }
}

/// Writes a response header and optional body in one write.
pub(super) async fn send(
    wr: &Wr,
    seq: u64,
    error: &str,
    body: Option<Vec<u8>>,
) -> Result<(), String> {
    let mut out = serf_rpc::Body::encode(&ResponseHeader::new(seq, error));
    if let Some(b) = body {
        out.extend_from_slice(&b);
    }
    wr.lock()
        .await
        .write_all(&out)
        .await
        .map_err(|e| e.to_string())
}
