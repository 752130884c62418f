//! The RPC server: one task per client, requests handled in order, each decoded into a
//! [`serf_rpc::Request`] and passed to its command's handler.

use super::commands;
use super::conn::{Conn, Outcome, Session, Wr};
pub(crate) use super::conn::{
    Ctl, LeaveRequest, CLIENT_WAIT, HANDSHAKE_DEADLINE, MAX_CLIENTS, MAX_WAITING_CLIENTS,
    STREAM_BUFFER,
};
use serf_rpc::{Command, ObjectReader, ReadError, Request, RequestHeader};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Semaphore};
use tracing::{error, info, warn};

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
        // Replies often come as several writes (a header, then stream records): without
        // TCP_NODELAY each later one waits ~40 ms for the client's delayed ACK (Nagle).
        if let Err(e) = sock.set_nodelay(true) {
            warn!("failed to set TCP_NODELAY for {peer}: {e}");
        }
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
    CLIENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    client(sock, peer, ctl).await;
    CLIENTS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
}

/// RPC clients connected now (for `/metrics`).
pub(crate) static CLIENTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

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
        // Until the handshake, a client holds a slot only briefly: silent connections
        // must not lock real clients out (Go has no client limit, so no deadline either).
        let next = if st.handshake {
            reader.next().await
        } else {
            match tokio::time::timeout(HANDSHAKE_DEADLINE, reader.next()).await {
                Ok(r) => r,
                Err(_) => {
                    info!("closing client {peer}: no handshake within {HANDSHAKE_DEADLINE:?}");
                    return;
                }
            }
        };
        let obj = match next {
            Ok(o) => o,
            // Go logs nothing when the stream ends, even inside a header.
            Err(ReadError::Closed | ReadError::Truncated) => return,
            Err(e) => {
                error!("failed to decode request header: {e}");
                return;
            }
        };
        header = match RequestHeader::decode_after(&obj, &header) {
            Ok(h) => h,
            Err(e) => {
                error!("failed to decode request header: {e}");
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
                error!("Failed to evaluate request: {e}");
                return;
            }
        }
    }
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
        return Err("Handshake required".to_string());
    }
    metrics::counter!("agent.ipc.command").increment(1);
    if !c.st.authed && command != "handshake" && command != "auth" {
        warn!("Client sending commands before auth");
        c.reply("Authentication required", None).await?;
        return Ok(Outcome::Continue);
    }
    let Some(cmd) = Command::from_name(command) else {
        c.reply("Unsupported command", None).await?;
        return Err(format!("command '{command}' not recognized"));
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
