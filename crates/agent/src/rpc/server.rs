//! The RPC server: one task per client, requests handled in order.

use super::{response_header, ObjectReader, ReadError, RequestHeader};
use serf_core::{Member, MemberStatus};
use serf_runtime::Agent;
use serf_wire::msgpack::{Flavor, Reader, Writer};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Mutex, Semaphore};

/// The write half, shared between the request loop and stream tasks.
type Wr = Arc<Mutex<tokio::net::tcp::OwnedWriteHalf>>;
use tracing::{info, warn};

/// Most RPC clients at once.
pub(crate) const MAX_CLIENTS: usize = 256;

/// How long a client beyond the limit waits for a free slot before it is closed.
pub(crate) const CLIENT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Most clients waiting for a slot at once.
pub(crate) const MAX_WAITING_CLIENTS: usize = 64;

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

/// Events buffered per stream subscriber (Go: 512).
pub(crate) const STREAM_BUFFER: usize = 512;

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

struct Session {
    handshake: bool,
    authed: bool,
    /// Event streams by Seq.
    streams: std::collections::HashMap<u64, tokio::task::JoinHandle<()>>,
    /// The monitor: its Seq and task.
    monitor: Option<(u64, tokio::task::JoinHandle<()>)>,
    /// Queries seen by this connection's streams: per-connection ID -> (ltime, query id).
    queries: Arc<std::sync::Mutex<QueryIds>>,
}

#[derive(Default)]
struct QueryIds {
    next: u64,
    by_id: std::collections::HashMap<u64, (u64, u32, std::time::Instant)>,
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

enum Outcome {
    Continue,
    Close,
}

async fn client(sock: TcpStream, peer: SocketAddr, ctl: Ctl) {
    let (rd, wr) = sock.into_split();
    let mut wr: Wr = Arc::new(Mutex::new(wr));
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
            Err(ReadError::Bad(e)) => {
                warn!("failed to decode request header from {peer}: {e}");
                return;
            }
        };
        header = match RequestHeader::decode(&obj, &header) {
            Ok(h) => h,
            Err(e) => {
                warn!("failed to decode request header from {peer}: {e}");
                return;
            }
        };
        match handle(&ctl, &mut st, &header, &mut reader, &mut wr).await {
            Ok(Outcome::Continue) => {}
            Ok(Outcome::Close) => return,
            Err(e) => {
                warn!("Failed to evaluate request: {e}");
                return;
            }
        }
    }
}

async fn send(wr: &mut Wr, seq: u64, error: &str, body: Option<Vec<u8>>) -> Result<(), String> {
    let mut out = response_header(seq, error);
    if let Some(b) = body {
        out.extend_from_slice(&b);
    }
    wr.lock()
        .await
        .write_all(&out)
        .await
        .map_err(|e| e.to_string())
}

async fn body<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut ObjectReader<R>,
) -> Result<Vec<u8>, String> {
    reader.next().await.map_err(|e| match e {
        ReadError::Closed => "EOF".to_string(),
        ReadError::Bad(s) => format!("decode failed: {s}"),
    })
}

fn rpc_writer() -> Writer {
    Writer::with_flavor(Flavor::Rpc)
}

/// Encodes one member as Go's `Member` record.
pub(crate) fn encode_member(w: &mut Writer, m: &Member) {
    w.map(11)
        .str("Addr")
        .bytes(&serf_wire::ip_to_bytes(&m.addr));
    w.str("DelegateCur").uint(u64::from(m.vsn[5]));
    w.str("DelegateMax").uint(u64::from(m.vsn[4]));
    w.str("DelegateMin").uint(u64::from(m.vsn[3]));
    w.str("Name")
        .str(&m.name)
        .str("Port")
        .uint(u64::from(m.port));
    w.str("ProtocolCur").uint(u64::from(m.vsn[2]));
    w.str("ProtocolMax").uint(u64::from(m.vsn[1]));
    w.str("ProtocolMin").uint(u64::from(m.vsn[0]));
    w.str("Status").str(m.status.as_str());
    w.str("Tags").str_map(
        m.tags.len(),
        m.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
}

fn members_body(members: &[Member]) -> Vec<u8> {
    let mut w = rpc_writer();
    w.map(1).str("Members").array(members.len());
    for m in members {
        encode_member(&mut w, m);
    }
    w.into_vec()
}

/// `members-filtered`: Go anchors every expression as `^expr$`.
fn filter_members(
    members: Vec<Member>,
    name: &str,
    status: &str,
    tags: &[(String, String)],
) -> Result<Vec<Member>, String> {
    let re = |e: &str| serf_gocompat::regex::compile(&format!("^{e}$")).map_err(|e| e.to_string());
    let name_re = if name.is_empty() {
        None
    } else {
        Some(re(name)?)
    };
    let status_re = if status.is_empty() {
        None
    } else {
        Some(re(status)?)
    };
    let tag_res: Vec<(String, regex::Regex)> = tags
        .iter()
        .map(|(k, v)| Ok((k.clone(), re(v)?)))
        .collect::<Result<_, String>>()?;
    Ok(members
        .into_iter()
        .filter(|m| {
            name_re.as_ref().is_none_or(|r| r.is_match(&m.name))
                && status_re
                    .as_ref()
                    .is_none_or(|r| r.is_match(m.status.as_str()))
                && tag_res.iter().all(|(k, r)| {
                    let v = m
                        .tags
                        .iter()
                        .find(|(tk, _)| tk == k)
                        .map_or("", |(_, v)| v.as_str());
                    r.is_match(v)
                })
        })
        .collect())
}

/// Decodes one field of a request body (absent: `None`); other keys are ignored.
fn field<T>(
    req: &[u8],
    key: &[u8],
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T, serf_wire::Error>,
) -> Result<Option<T>, String> {
    let mut out = None;
    Reader::new(req)
        .struct_fields(|k, r| {
            if k == key {
                out = Some(read(r)?);
                return Ok(true);
            }
            Ok(false)
        })
        .map_err(|e| format!("decode failed: {e}"))?;
    Ok(out)
}

fn commands_with_body(cmd: &str) -> bool {
    matches!(
        cmd,
        "handshake"
            | "auth"
            | "event"
            | "force-leave"
            | "join"
            | "members-filtered"
            | "tags"
            | "stream"
            | "monitor"
            | "stop"
            | "query"
            | "respond"
            | "install-key"
            | "use-key"
            | "remove-key"
            | "get-coordinate"
    )
}

async fn handle<R: tokio::io::AsyncRead + Unpin>(
    ctl: &Ctl,
    st: &mut Session,
    h: &RequestHeader,
    reader: &mut ObjectReader<R>,
    wr: &mut Wr,
) -> Result<Outcome, String> {
    let seq = h.seq;
    if h.command != "handshake" && !st.handshake {
        send(wr, seq, "Handshake required", None).await?;
        return Ok(Outcome::Close);
    }
    metrics::counter!("agent.ipc.command").increment(1);
    if !st.authed && h.command != "handshake" && h.command != "auth" {
        send(wr, seq, "Authentication required", None).await?;
        return Ok(Outcome::Continue);
    }
    let req = if commands_with_body(&h.command) {
        Some(body(reader).await?)
    } else {
        None
    };
    let req = req.unwrap_or_default();
    let mut r = Reader::new(&req);
    match h.command.as_str() {
        "handshake" => {
            let mut version = 0i64;
            if let Some(v) = field(&req, b"Version", |r| r.i64())? {
                version = v;
            }
            // Go checks the version first, then whether one was already done.
            let err = if version != 1 {
                "Unsupported IPC version"
            } else if st.handshake {
                "Handshake already performed"
            } else {
                st.handshake = true;
                ""
            };
            send(wr, seq, err, None).await?;
        }
        "auth" => {
            let mut key = String::new();
            if let Some(v) = field(&req, b"AuthKey", |r| r.string())? {
                key = v;
            }
            let err = if key == ctl.auth {
                st.authed = true;
                ""
            } else {
                "Invalid authentication token"
            };
            send(wr, seq, err, None).await?;
        }
        "members" => {
            let body = members_body(&ctl.agent.members());
            send(wr, seq, "", Some(body)).await?;
        }
        "members-filtered" => {
            let (mut name, mut status, mut tags) = (String::new(), String::new(), Vec::new());
            r.struct_fields(|k, r| {
                match k {
                    b"Name" => name = r.string()?,
                    b"Status" => status = r.string()?,
                    b"Tags" => tags = r.str_map()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            let members = filter_members(ctl.agent.members(), &name, &status, &tags)?;
            send(wr, seq, "", Some(members_body(&members))).await?;
        }
        "join" => {
            let (mut existing, mut replay) = (Vec::new(), false);
            r.struct_fields(|k, r| {
                match k {
                    b"Existing" => existing = r.str_array()?,
                    b"Replay" => replay = r.bool()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            let (num, err) = match crate::agent::join_logged(&ctl.agent, &existing, replay).await {
                Ok(n) => (n, String::new()),
                Err((n, e)) => (n, e),
            };
            let mut w = rpc_writer();
            w.map(1).str("Num").uint(num as u64);
            send(wr, seq, &err, Some(w.into_vec())).await?;
        }
        "leave" => {
            // As Go: leave first, answer with its outcome, then shut down.
            info!("Graceful leave triggered");
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            let (replied_tx, replied_rx) = tokio::sync::oneshot::channel();
            let req = LeaveRequest {
                done: done_tx,
                replied: replied_rx,
            };
            if ctl.leave.send(req).await.is_err() {
                send(wr, seq, "agent is shutting down", None).await?;
                return Ok(Outcome::Close);
            }
            let err = match done_rx.await {
                Ok(Ok(())) => String::new(),
                Ok(Err(e)) => {
                    tracing::error!("leave failed: {e}");
                    e
                }
                Err(_) => "agent is shutting down".to_string(),
            };
            let sent = send(wr, seq, &err, None).await;
            let _ = replied_tx.send(());
            sent?;
        }
        "event" => {
            let (mut name, mut payload, mut coalesce) = (String::new(), Vec::new(), false);
            r.struct_fields(|k, r| {
                match k {
                    b"Name" => name = r.string()?,
                    b"Payload" => payload = r.byte_vec()?,
                    b"Coalesce" => coalesce = r.bool()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            tracing::debug!(
                target: "serf::agent",
                "Requesting user event send: {name}. Coalesced: {coalesce}. Payload: {}",
                crate::cli::gofmt::quote(&payload)
            );
            let err = match ctl.agent.user_event(&name, &payload, coalesce) {
                Ok(()) => String::new(),
                Err(e) => {
                    warn!(target: "serf::agent", "failed to send user event: {e}");
                    e
                }
            };
            send(wr, seq, &err, None).await?;
        }
        "force-leave" => {
            let (mut node, mut prune) = (String::new(), false);
            r.struct_fields(|k, r| {
                match k {
                    b"Node" => node = r.string()?,
                    b"Prune" => prune = r.bool()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            if prune {
                info!(target: "serf::agent", "Force leaving node (prune): {node}");
            } else {
                info!(target: "serf::agent", "Force leaving node: {node}");
            }
            ctl.agent.force_leave(&node, prune);
            send(wr, seq, "", None).await?;
        }
        "tags" => {
            let (mut add, mut delete) = (Vec::new(), Vec::new());
            r.struct_fields(|k, r| {
                match k {
                    b"Tags" => add = r.str_map()?,
                    b"DeleteTags" => delete = r.str_array()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            let mut tags = ctl.agent.tags();
            tags.retain(|(k, _)| !delete.contains(k));
            for (k, v) in add {
                match tags.iter_mut().find(|(tk, _)| *tk == k) {
                    Some(t) => t.1 = v,
                    None => tags.push((k, v)),
                }
            }
            let err = ctl.agent.set_tags(tags).err().unwrap_or_default();
            send(wr, seq, &err, None).await?;
        }
        "stop" => {
            let mut stop = 0u64;
            if let Some(v) = field(&req, b"Stop", |r| r.uint())? {
                stop = v;
            }
            if let Some(h) = st.streams.remove(&stop) {
                h.abort();
            }
            if st.monitor.as_ref().is_some_and(|(s, _)| *s == stop) {
                if let Some((_, h)) = st.monitor.take() {
                    h.abort();
                }
            }
            send(wr, seq, "", None).await?;
        }
        "stream" => {
            let mut ty = String::new();
            if let Some(v) = field(&req, b"Type", |r| r.string())? {
                ty = v;
            }
            let filters = crate::handlers::EventFilter::parse_list(&ty);
            if filters.iter().any(|f| !f.is_valid()) {
                send(wr, seq, "Invalid event filter", None).await?;
                return Ok(Outcome::Continue);
            }
            if st.streams.contains_key(&seq) {
                send(wr, seq, "Stream with given sequence exists", None).await?;
                return Ok(Outcome::Continue);
            }
            let mut rx = ctl.events.subscribe();
            send(wr, seq, "", None).await?;
            let wr = wr.clone();
            let ids = st.queries.clone();
            let agent = ctl.agent.clone();
            let task = tokio::spawn(async move {
                loop {
                    let ev = match rx.recv().await {
                        Ok(ev) => ev,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                            warn!("Dropping {n} events to a slow stream client");
                            continue;
                        }
                        Err(_) => return,
                    };
                    if !filters.iter().any(|f| f.matches(&ev)) {
                        continue;
                    }
                    let Some(body) = stream_record(&ev, &ids, &agent) else {
                        continue;
                    };
                    let mut out = response_header(seq, "");
                    out.extend_from_slice(&body);
                    if let Err(e) = wr.lock().await.write_all(&out).await {
                        warn!("Failed to stream event: {e}");
                        return;
                    }
                }
            });
            st.streams.insert(seq, task);
        }
        "monitor" => {
            let mut level = String::new();
            if let Some(v) = field(&req, b"LogLevel", |r| r.string())? {
                level = v;
            }
            let up = level.to_ascii_uppercase();
            let Some(lvl) = crate::logging::parse_level(&up).filter(|_| up != "ERROR") else {
                send(wr, seq, &format!("Unknown log level: {up}"), None).await?;
                return Ok(Outcome::Continue);
            };
            if st.monitor.is_some() {
                send(wr, seq, "Monitor already exists", None).await?;
                return Ok(Outcome::Continue);
            }
            let (backlog, mut rx) = crate::logging::sink().subscribe(lvl);
            send(wr, seq, "", None).await?;
            let wr = wr.clone();
            let task = tokio::spawn(async move {
                let record = |line: &str| {
                    let mut out = response_header(seq, "");
                    let mut w = rpc_writer();
                    w.map(1).str("Log").str(line);
                    out.extend_from_slice(&w.into_vec());
                    out
                };
                for line in backlog {
                    if wr.lock().await.write_all(&record(&line)).await.is_err() {
                        return;
                    }
                }
                loop {
                    match rx.recv().await {
                        Ok((l, line)) if l <= lvl => {
                            if wr.lock().await.write_all(&record(&line)).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    }
                }
            });
            st.monitor = Some((seq, task));
        }
        "respond" => {
            let (mut id, mut payload) = (0u64, Vec::new());
            r.struct_fields(|k, r| {
                match k {
                    b"ID" => id = r.uint()?,
                    b"Payload" => payload = r.byte_vec()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            let found = {
                let mut ids = match st.queries.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let now = std::time::Instant::now();
                ids.by_id.retain(|_, (_, _, deadline)| *deadline >= now);
                ids.by_id.get(&id).map(|(l, q, _)| (*l, *q))
            };
            let err = match found {
                None => "No pending queries matching ID".to_string(),
                Some((ltime, qid)) => ctl
                    .agent
                    .respond(ltime, qid, payload)
                    .err()
                    .unwrap_or_default(),
            };
            send(wr, seq, &err, None).await?;
        }
        "query" => {
            let mut params = serf_core::QueryParams::default();
            let (mut name, mut payload) = (String::new(), Vec::new());
            let mut timeout_ns = 0i64;
            r.struct_fields(|k, r| {
                match k {
                    b"FilterNodes" => params.filter_nodes = r.str_array()?,
                    b"FilterTags" => params.filter_tags = r.str_map()?,
                    b"Name" => name = r.string()?,
                    b"Payload" => payload = r.byte_vec()?,
                    b"RelayFactor" => params.relay_factor = r.u8()?,
                    b"RequestAck" => params.request_ack = r.bool()?,
                    b"Timeout" => timeout_ns = r.i64()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("decode failed: {e}"))?;
            params.timeout =
                std::time::Duration::from_nanos(u64::try_from(timeout_ns).unwrap_or(0));
            if name.starts_with("_serf_") && !(name == "_serf_ping" && payload.is_empty()) {
                send(wr, seq, "Queries cannot contain the '_serf_' prefix", None).await?;
                return Ok(Outcome::Continue);
            }
            tracing::debug!(
                target: "serf::agent",
                "Requesting query send: {name}. Payload: {}",
                crate::cli::gofmt::quote(&payload)
            );
            match ctl.agent.query(&name, &payload, &params) {
                Err(e) => {
                    warn!(target: "serf::agent", "failed to start user query: {e}");
                    send(wr, seq, &e, None).await?;
                }
                Ok(mut handle) => {
                    send(wr, seq, "", None).await?;
                    let wr = wr.clone();
                    tokio::spawn(async move {
                        while let Some(ev) = handle.rx.recv().await {
                            let (kind, from, payload, done) = match ev {
                                serf_core::Event::QueryAck { from, .. } => {
                                    ("ack", from, Vec::new(), false)
                                }
                                serf_core::Event::QueryResponse { from, payload, .. } => {
                                    ("response", from, payload, false)
                                }
                                serf_core::Event::QueryDone { .. } => {
                                    ("done", String::new(), Vec::new(), true)
                                }
                                _ => continue,
                            };
                            let mut w = rpc_writer();
                            w.map(3)
                                .str("From")
                                .str(&from)
                                .str("Payload")
                                .opt_bytes(&payload);
                            w.str("Type").str(kind);
                            let mut out = response_header(seq, "");
                            out.extend_from_slice(&w.into_vec());
                            if wr.lock().await.write_all(&out).await.is_err() || done {
                                return;
                            }
                        }
                    });
                }
            }
        }
        "install-key" | "use-key" | "remove-key" | "list-keys" => {
            let mut key = String::new();
            if h.command != "list-keys" {
                if let Some(v) = field(&req, b"Key", |r| r.string())? {
                    key = v;
                }
            }
            let kind = match h.command.as_str() {
                "install-key" => serf_core::KeyOpKind::Install,
                "use-key" => serf_core::KeyOpKind::Use,
                "remove-key" => serf_core::KeyOpKind::Remove,
                _ => serf_core::KeyOpKind::List,
            };
            info!(
                target: "serf::agent",
                "{}",
                match kind {
                    serf_core::KeyOpKind::Install => "Initiating key installation",
                    serf_core::KeyOpKind::Use => "Initiating primary key change",
                    serf_core::KeyOpKind::Remove => "Initiating key removal",
                    serf_core::KeyOpKind::List => "Initiating key listing",
                }
            );
            let res = ctl.agent.key_op(kind, &key).await;
            let mut w = rpc_writer();
            w.map(5).str("Keys");
            if kind == serf_core::KeyOpKind::List
                && res
                    .error
                    .as_deref()
                    .is_none_or(|e| !e.starts_with("illegal"))
            {
                let mut keys: Vec<(&String, &usize)> = res.keys.iter().collect();
                keys.sort();
                w.map(keys.len());
                for (k, n) in keys {
                    w.str(k).uint(*n as u64);
                }
            } else {
                w.nil();
            }
            w.str("Messages").str_map(
                res.messages.len(),
                res.messages.iter().map(|(a, b)| (a.as_str(), b.as_str())),
            );
            w.str("NumErr")
                .uint(res.num_err as u64)
                .str("NumNodes")
                .uint(res.num_nodes as u64);
            w.str("NumResp").uint(res.num_resp as u64);
            send(
                wr,
                seq,
                res.error.as_deref().unwrap_or(""),
                Some(w.into_vec()),
            )
            .await?;
        }
        "get-coordinate" => {
            let mut node = String::new();
            if let Some(v) = field(&req, b"Node", |r| r.string())? {
                node = v;
            }
            let coord = ctl.agent.with_core(|c| c.state().coordinate(&node));
            let mut w = rpc_writer();
            w.map(2).str("Coord").map(4);
            match &coord {
                Some(c) => {
                    w.str("Adjustment")
                        .f64(c.adjustment)
                        .str("Error")
                        .f64(c.error);
                    w.str("Height").f64(c.height).str("Vec").array(c.vec.len());
                    for v in &c.vec {
                        w.f64(*v);
                    }
                }
                None => {
                    w.str("Adjustment")
                        .f64(0.0)
                        .str("Error")
                        .f64(0.0)
                        .str("Height")
                        .f64(0.0);
                    w.str("Vec").nil();
                }
            }
            w.str("Ok").bool(coord.is_some());
            send(wr, seq, "", Some(w.into_vec())).await?;
        }
        "stats" => {
            let body = stats_body(ctl);
            send(wr, seq, "", Some(body)).await?;
        }
        other => {
            warn!("Failed to evaluate request: command '{other}' not recognized");
            send(wr, seq, "Unsupported command", None).await?;
            return Ok(Outcome::Close);
        }
    }
    Ok(Outcome::Continue)
}

/// One `stream` record, or None for events streams do not carry.
fn stream_record(
    ev: &crate::coalesce::CoalescedEvent,
    ids: &Arc<std::sync::Mutex<QueryIds>>,
    agent: &Agent,
) -> Option<Vec<u8>> {
    use crate::coalesce::CoalescedEvent;
    let mut w = rpc_writer();
    match ev {
        CoalescedEvent::Members { kind, members } => {
            w.map(2)
                .str("Event")
                .str(kind.as_str())
                .str("Members")
                .array(members.len());
            for m in members {
                encode_member(&mut w, m);
            }
        }
        CoalescedEvent::Other(serf_core::Event::User {
            ltime,
            name,
            payload,
            coalesce,
        }) => {
            w.map(5)
                .str("Coalesce")
                .bool(*coalesce)
                .str("Event")
                .str("user");
            w.str("LTime")
                .uint(*ltime)
                .str("Name")
                .str(name)
                .str("Payload")
                .opt_bytes(payload);
        }
        CoalescedEvent::Other(serf_core::Event::Query {
            ltime,
            id,
            name,
            payload,
            deadline,
            ..
        }) => {
            let mut g = match ids.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            g.next += 1;
            let local = g.next;
            let now = std::time::Instant::now();
            g.by_id.retain(|_, (_, _, until)| *until >= now);
            g.by_id
                .insert(local, (*ltime, *id, agent.instant_of(*deadline)));
            w.map(5).str("Event").str("query").str("ID").uint(local);
            w.str("LTime")
                .uint(*ltime)
                .str("Name")
                .str(name)
                .str("Payload")
                .opt_bytes(payload);
        }
        CoalescedEvent::Other(_) => return None,
    }
    Some(w.into_vec())
}

fn stats_body(ctl: &Ctl) -> Vec<u8> {
    let members = ctl.agent.members();
    let count = |st: MemberStatus| {
        members
            .iter()
            .filter(|m| m.status == st)
            .count()
            .to_string()
    };
    let (name, serf) = ctl.agent.with_core(|c| {
        let st = c.state();
        let (intents, queries, events) = st.queued();
        let serf = vec![
            ("encrypted", (!c.keyring().is_empty()).to_string()),
            ("coordinate_resets", st.coordinate_resets().to_string()),
            ("event_queue", events.to_string()),
            ("event_time", st.event_clock().to_string()),
            ("failed", count(MemberStatus::Failed)),
            ("health_score", c.memberlist().health().to_string()),
            ("intent_queue", intents.to_string()),
            ("left", count(MemberStatus::Left)),
            ("member_time", st.clock().to_string()),
            ("members", members.len().to_string()),
            ("query_queue", queries.to_string()),
            ("query_time", st.query_clock().to_string()),
        ];
        (c.name().to_string(), serf)
    });
    let tags = ctl.agent.tags();
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let runtime = [
        ("arch", go_arch().to_string()),
        ("cpu_count", cpus.clone()),
        ("goroutines", "0".to_string()),
        ("max_procs", cpus),
        ("os", std::env::consts::OS.to_string()),
        (
            "version",
            format!("rust-serf {}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    let handlers: Vec<(String, String)> = ctl
        .handlers
        .scripts()
        .iter()
        .map(|h| (h.stats_key(), h.script.clone()))
        .collect();
    let mut w = rpc_writer();
    w.map(5);
    w.str("agent").str_map(1, [("name", name.as_str())]);
    w.str("event_handlers").str_map(
        handlers.len(),
        handlers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    w.str("runtime")
        .str_map(runtime.len(), runtime.iter().map(|(k, v)| (*k, v.as_str())));
    w.str("serf")
        .str_map(serf.len(), serf.iter().map(|(k, v)| (*k, v.as_str())));
    w.str("tags").str_map(
        tags.len(),
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    w.into_vec()
}

/// The architecture as Go's `runtime.GOARCH` names it, for scripts reading `serf info`.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => {
            if cfg!(target_endian = "little") {
                "ppc64le"
            } else {
                "ppc64"
            }
        }
        "mips64" => {
            if cfg!(target_endian = "little") {
                "mips64le"
            } else {
                "mips64"
            }
        }
        other => other,
    }
}
