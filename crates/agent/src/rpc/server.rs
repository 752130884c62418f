//! The RPC server: one task per client, requests handled in order, each decoded into a
//! [`serf_rpc::Request`] and passed to its command's handler.

use super::commands;
use serf_rpc::{Command, ObjectReader, ReadError, Request, RequestHeader, ResponseHeader};
use serf_runtime::Agent;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex, Semaphore};
use tracing::{info, warn};

/// The write half, shared between the request loop and stream tasks.
pub(super) type Wr = Arc<Mutex<tokio::net::tcp::OwnedWriteHalf>>;

/// Most RPC clients at once.
pub(crate) const MAX_CLIENTS: usize = 256;

/// How long a client beyond the limit waits for a free slot before it is closed.
pub(crate) const CLIENT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most clients waiting for a slot at once.
pub(crate) const MAX_WAITING_CLIENTS: usize = 64;

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

/// Serves clients until the listener fails.
///
/// At the limit a newcomer waits up to [`CLIENT_WAIT`] for a slot, in its own task:
/// clients that just hung up free their slots as soon as their tasks see the EOF, and
/// a burst must not turn away the next well-behaved client. At most
/// [`MAX_WAITING_CLIENTS`] wait at once; beyond that, newcomers are closed at once.
pub(crate) async fn serve(listener: TcpListener, ctl: Ctl) {
    let limit = Arc::new(Semaphore::new(MAX_CLIENTS));
    let waiting = Arc::new(Semaphore::new(MAX_WAITING_CLIENTS));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let ctl = ctl.clone();
        if let Ok(permit) = limit.clone().try_acquire_owned() {
            tokio::spawn(serve_client(sock, peer, ctl, permit));
            continue;
        }
        let Ok(wait_slot) = waiting.clone().try_acquire_owned() else {
            warn!("too many RPC clients, closing {peer}");
            continue;
        };
        let limit = limit.clone();
        tokio::spawn(async move {
            let permit = tokio::time::timeout(CLIENT_WAIT, limit.acquire_owned()).await;
            drop(wait_slot);
            match permit {
                Ok(Ok(permit)) => serve_client(sock, peer, ctl, permit).await,
                _ => warn!("too many RPC clients, closing {peer}"),
            }
        });
    }
}

async fn serve_client(
    sock: TcpStream,
    peer: SocketAddr,
    ctl: Ctl,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    metrics::counter!("agent.ipc.accept").increment(1);
    info!("Accepted client: {peer}");
    client(sock, peer, ctl).await;
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

async fn client(sock: TcpStream, peer: SocketAddr, ctl: Ctl) {
    let (rd, wr) = sock.into_split();
    let wr: Wr = Arc::new(Mutex::new(wr));
    let mut reader = ObjectReader::new(rd);
    let mut st = Session {
        handshake: false,
        authed: ctl.auth.is_empty(),
        streams: Default::default(),
        monitor: None,
        queries: Default::default(),
    };
    let mut header = RequestHeader::default();
    loop {
        let obj = match reader.next().await {
            Ok(o) => o,
            Err(ReadError::Closed) => return,
            Err(e) => {
                warn!("failed to decode request header from {peer}: {e}");
                return;
            }
        };
        header = match RequestHeader::decode_after(&obj, &header) {
            Ok(h) => h,
            Err(e) => {
                warn!("failed to decode request header from {peer}: {e}");
                return;
            }
        };
        let mut conn = Conn {
            ctl: &ctl,
            st: &mut st,
            wr: &wr,
            seq: header.seq,
        };
        match handle(&mut conn, &header.command, &mut reader).await {
            Ok(Outcome::Continue) => {}
            Ok(Outcome::Close) => return,
            Err(e) => {
                warn!("Failed to evaluate request: {e}");
                return;
            }
        }
    }
}

/// Writes a response header and optional body in one write.
async fn send(wr: &Wr, seq: u64, error: &str, body: Option<Vec<u8>>) -> Result<(), String> {
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

/// Reads the request body object.
async fn body(reader: &mut ObjectReader<OwnedReadHalf>) -> Result<Vec<u8>, String> {
    reader.next().await.map_err(|e| match e {
        ReadError::Closed => "EOF".to_string(),
        e => format!("decode failed: {e}"),
    })
}

/// The checks Go makes before dispatching (handshake first, then authentication), the
/// body read and decode, then the command's handler.
async fn handle(
    c: &mut Conn<'_>,
    command: &str,
    reader: &mut ObjectReader<OwnedReadHalf>,
) -> Result<Outcome, String> {
    if command != "handshake" && !c.st.handshake {
        c.reply("Handshake required", None).await?;
        return Ok(Outcome::Close);
    }
    metrics::counter!("agent.ipc.command").increment(1);
    if !c.st.authed && command != "handshake" && command != "auth" {
        c.reply("Authentication required", None).await?;
        return Ok(Outcome::Continue);
    }
    let Some(cmd) = Command::from_name(command) else {
        warn!("Failed to evaluate request: command '{command}' not recognized");
        c.reply("Unsupported command", None).await?;
        return Ok(Outcome::Close);
    };
    let body = if cmd.has_body() {
        body(reader).await?
    } else {
        Vec::new()
    };
    let req = Request::decode(cmd, &body).map_err(|e| format!("decode failed: {e}"))?;
    dispatch(c, req).await
}

/// One handler per command.
async fn dispatch(c: &mut Conn<'_>, req: Request) -> Result<Outcome, String> {
    use commands as h;
    match req {
        Request::Handshake(r) => h::handshake(c, r).await,
        Request::Auth(r) => h::auth(c, r).await,
        Request::Members => h::members(c).await,
        Request::MembersFiltered(r) => h::members_filtered(c, r).await,
        Request::Join(r) => h::join(c, r).await,
        Request::Leave => h::leave(c).await,
        Request::ForceLeave(r) => h::force_leave(c, r).await,
        Request::Tags(r) => h::tags(c, r).await,
        Request::Event(r) => h::event(c, r).await,
        Request::Query(r) => super::streams::query(c, r).await,
        Request::Respond(r) => h::respond(c, r).await,
        Request::Monitor(r) => super::streams::monitor(c, r).await,
        Request::Stream(r) => super::streams::stream(c, r).await,
        Request::Stop(r) => h::stop(c, r).await,
        Request::InstallKey(r) => h::key_op(c, serf_core::KeyOpKind::Install, &r.key).await,
        Request::UseKey(r) => h::key_op(c, serf_core::KeyOpKind::Use, &r.key).await,
        Request::RemoveKey(r) => h::key_op(c, serf_core::KeyOpKind::Remove, &r.key).await,
        Request::ListKeys => h::key_op(c, serf_core::KeyOpKind::List, "").await,
        Request::Stats => h::stats(c).await,
        Request::GetCoordinate(r) => h::get_coordinate(c, r).await,
    }
}
