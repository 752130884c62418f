//! Tokio driver for the sans-IO Serf core, and the embeddable async API.
//!
//! One port carries UDP and TCP. A driver task owns the UDP socket and the timers: it drains
//! every datagram already queued before it runs due timers, so a busy node does not declare
//! others dead just because it was slow to read its inbox. A TCP listener serves streams
//! (push/pull, fallback pings) with bounded concurrency. [`Agent`] is the handle:
//! start, join, leave, members, tags, user events, an event stream.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
mod driver;
mod files;
mod listener;
mod net;
pub mod private_ip;
pub mod snapshot;

pub use files::{write_keyring_file, write_tags_file};
pub use serf_gocompat::errors::multierror;

pub use serf_core::{
    Event, KeyOpKind, KeyOpResult, KeyResponse, Member, MemberStatus, QueryParams, SerfConfig,
};
pub use serf_membership::Config as MemberlistConfig;

use driver::{drive, Shared};
use net::StreamOpts;
use serf_core::Serf;
use serf_membership::StreamPurpose;
use snapshot::writer::SnapshotWriter;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{broadcast, mpsc, Notify, Semaphore};
use tracing::{debug, info, warn};

/// Most push/pulls served at once (memberlist's `maxPushPullRequests`).
pub const MAX_INBOUND_PUSH_PULL: usize = 128;
/// Most inbound stream connections handled at once (others are closed on accept).
pub const MAX_INBOUND_STREAMS: usize = 256;
/// Most outbound background streams (anti-entropy, fallback pings) at once.
pub const MAX_OUTBOUND_STREAMS: usize = 32;
/// Events buffered per subscriber (a slow subscriber loses the oldest; the broadcast
/// channel allocates every slot up front, so keep this small).
pub const EVENT_CHANNEL: usize = 256;
/// Serf's default `BroadcastTimeout`.
pub const BROADCAST_TIMEOUT: Duration = Duration::from_secs(5);
/// Serf's `LeavePropagateDelay`.
pub const LEAVE_PROPAGATE_DELAY: Duration = Duration::from_secs(1);

/// Everything needed to start an agent.
#[derive(Debug, Clone)]
pub struct Options {
    /// Address to bind (UDP and TCP).
    pub bind: SocketAddr,
    /// memberlist settings; `addr`/`port` are the advertised address (filled from `bind`
    /// if unspecified).
    pub memberlist: MemberlistConfig,
    /// Serf settings.
    pub serf: SerfConfig,
    /// Snapshot file (None: no snapshot).
    pub snapshot_path: Option<std::path::PathBuf>,
    /// Rejoin from the snapshot even after a graceful leave.
    pub rejoin_after_leave: bool,
    /// Keyring file, rewritten whenever the keyring changes.
    pub keyring_file: Option<std::path::PathBuf>,
    /// Tags file, rewritten whenever the tags change.
    pub tags_file: Option<std::path::PathBuf>,
    /// How long a leave waits for its broadcasts (Serf's `BroadcastTimeout`).
    pub broadcast_timeout: Duration,
}

impl Options {
    /// A node named `name` bound to `bind` (UDP and TCP; port 0 picks a free one), with
    /// memberlist's LAN profile, Serf's defaults, and no snapshot, keyring or tags file:
    /// the usual starting point for embedding.
    pub fn lan(name: &str, bind: SocketAddr) -> Options {
        Options {
            bind,
            memberlist: MemberlistConfig::lan(name, bind.ip(), bind.port()),
            serf: SerfConfig::default(),
            snapshot_path: None,
            rejoin_after_leave: false,
            keyring_file: None,
            tags_file: None,
            broadcast_timeout: BROADCAST_TIMEOUT,
        }
    }
}

/// Errors starting or driving the agent.
#[derive(Debug)]
pub enum Error {
    /// Socket setup failed.
    Io(std::io::Error),
    /// The gossip port could not be bound (`proto` is `TCP` or `UDP`).
    Bind {
        /// `TCP` or `UDP`.
        proto: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The snapshot file could not be opened or replayed.
    Snapshot(snapshot::SnapshotError),
    /// Configuration refused.
    Config(String),
    /// The Serf core refused an operation (or its configuration).
    Serf(serf_core::Error),
    /// A file the agent keeps (tags, keyring) could not be written.
    File {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            // Go: memberlist.Create -> NewNetTransport, wrapped by serf.Create.
            Error::Bind {
                proto,
                addr,
                source,
            } => write!(
                f,
                "Failed to create memberlist: Could not set up network transport: failed to obtain an address: {}",
                serf_gocompat::errors::listen_error(proto, *addr, source)
            ),
            Error::Snapshot(e) => write!(f, "Failed to setup snapshot: {e}"),
            Error::Config(e) => f.write_str(e),
            Error::Serf(e) => write!(f, "{e}"),
            Error::File { path, source } => {
                write!(f, "failed to write {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<serf_core::Error> for Error {
    fn from(e: serf_core::Error) -> Self {
        Error::Serf(e)
    }
}

/// Lets callers that speak `Result<_, String>` use `?`.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

/// A running Serf agent.
#[derive(Clone)]
pub struct Agent {
    shared: Arc<Shared>,
    local: SocketAddr,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("local", &self.local).finish()
    }
}

/// Picks the address to advertise when bound to an unspecified address, as Go does
/// (go-sockaddr's `GetPrivateIP`); see [`private_ip`](mod@private_ip) for the rules.
pub fn private_ip() -> Option<IpAddr> {
    private_ip::host_private_ip()
}

impl Agent {
    /// Binds the port (TCP first, then UDP, as Go does) and starts the driver.
    pub async fn start(mut opts: Options) -> Result<Agent, Error> {
        let tcp = TcpListener::bind(opts.bind)
            .await
            .map_err(|source| Error::Bind {
                proto: "TCP",
                addr: opts.bind,
                source,
            })?;
        let local = tcp.local_addr()?;
        let udp = UdpSocket::bind(local).await.map_err(|source| Error::Bind {
            proto: "UDP",
            addr: local,
            source,
        })?;
        if opts.memberlist.addr.is_unspecified() {
            opts.memberlist.addr = if opts.bind.ip().is_unspecified() {
                private_ip().ok_or_else(|| {
                    Error::Config(
                        "No private IP address found, and explicit IP not provided".into(),
                    )
                })?
            } else {
                opts.bind.ip()
            };
        }
        if opts.memberlist.port == 0 {
            opts.memberlist.port = local.port();
        }
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed)
            .map_err(|e| Error::Config(format!("no randomness: {e}")))?;
        opts.serf.broadcast_timeout = opts.broadcast_timeout;
        opts.serf.leave_propagate_delay = LEAVE_PROPAGATE_DELAY;
        let ml = opts.memberlist.clone();
        let stream_opts = StreamOpts {
            keyring: ml.keyring.clone(),
            verify_incoming: ml.gossip_verify_incoming,
            label: ml.label.clone(),
            tcp_timeout: ml.tcp_timeout,
        };
        let start = Instant::now();
        let mut serf = Serf::new(ml, opts.serf, u64::from_le_bytes(seed), Duration::ZERO)
            .map_err(Error::Serf)?;
        let mut rejoin = Vec::new();
        let snap = match &opts.snapshot_path {
            None => None,
            Some(path) => {
                let (sn, replay) = snapshot::Snapshot::open(path, opts.rejoin_after_leave)
                    .map_err(Error::Snapshot)?;
                for w in &replay.warnings {
                    warn!("snapshot: {w}");
                }
                serf.restore_clocks(
                    replay.last_clock,
                    replay.last_event_clock,
                    replay.last_query_clock,
                );
                let me = serf.name().to_string();
                if !replay.left || opts.rejoin_after_leave {
                    rejoin = replay.alive.into_iter().filter(|(n, _)| *n != me).collect();
                }
                Some(sn)
            }
        };
        let (events, first_events) = broadcast::channel(EVENT_CHANNEL);
        let (shutdown, _) = tokio::sync::watch::channel(false);
        let shared = Arc::new(Shared {
            serf: Mutex::new(serf),
            start,
            udp,
            wake: Notify::new(),
            events,
            outbound: Arc::new(Semaphore::new(MAX_OUTBOUND_STREAMS)),
            shutdown,
            stream_opts: Mutex::new(stream_opts),
            routes: Mutex::new(HashMap::new()),
            keyring_seen: std::sync::atomic::AtomicU64::new(0),
            snapshot: snap.map(SnapshotWriter::spawn),
            keyring_file: opts.keyring_file,
            tags_file: opts.tags_file,
            left: tokio::sync::watch::channel(None).0,
            first_events: Mutex::new(Some(first_events)),
        });
        {
            let mut s = shared.lock();
            shared.flush(&mut s);
        }
        tokio::spawn(drive(shared.clone()));
        tokio::spawn(listener::serve_streams(shared.clone(), tcp));
        debug!("serf runtime started on {local}");
        let agent = Agent { shared, local };
        if !rejoin.is_empty() {
            let a = agent.clone();
            tokio::spawn(async move { a.rejoin(rejoin).await });
        }
        Ok(agent)
    }

    /// The wall-clock instant of a driver time (such as a query deadline).
    pub fn instant_of(&self, t: Duration) -> Instant {
        self.shared.start + t
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Local node name.
    pub fn name(&self) -> String {
        self.shared.lock().name().to_string()
    }

    /// Every member.
    pub fn members(&self) -> Vec<Member> {
        self.shared.lock().members()
    }

    /// Current tags.
    pub fn tags(&self) -> Vec<(String, String)> {
        self.shared.lock().state().tags().to_vec()
    }

    /// Subscribes to events (members, user events, queries).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The receiver created at start-up, which also holds the events emitted before
    /// [`Agent::start`] returned (such as our own member-join); later calls subscribe anew.
    pub fn take_startup_subscriber(&self) -> broadcast::Receiver<Event> {
        let first = match self.shared.first_events.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        first.unwrap_or_else(|| self.subscribe())
    }

    /// Runs `f` on the core (for stats and tests).
    pub fn with_core<R>(&self, f: impl FnOnce(&Serf) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Joins through `addrs` (`host`, `host:port`, `name/host:port`). Returns how many nodes
    /// were contacted; fails, with Go's multi-error text, when none was.
    pub async fn join(&self, addrs: &[String], replay: bool) -> Result<usize, (usize, String)> {
        let request = {
            let mut s = self.shared.lock();
            s.join_request(replay)
        };
        let (ok, errors) = self.push_pull_join(addrs, &request).await;
        {
            let mut s = self.shared.lock();
            let now = self.shared.now();
            s.join_finished(now, ok);
            self.shared.flush(&mut s);
        }
        self.shared.wake.notify_one();
        if ok == 0 && !errors.is_empty() {
            return Err((0, multierror(&errors)));
        }
        Ok(ok)
    }

    /// memberlist's join: a push/pull with every resolved address. Returns the number of
    /// nodes contacted and the errors.
    async fn push_pull_join(&self, addrs: &[String], request: &[u8]) -> (usize, Vec<String>) {
        let default_port = self.local.port();
        let opts = self.shared.stream_opts();
        let mut errors = Vec::new();
        let mut ok = 0usize;
        for a in addrs {
            let host = a.rsplit_once('/').map_or(a.as_str(), |(_, h)| h);
            let targets = match net::resolve(host, default_port).await {
                Ok(t) => t,
                Err(e) => {
                    let e = format!("Failed to resolve {host}: {e}");
                    warn!("{e}");
                    errors.push(e);
                    continue;
                }
            };
            for to in targets {
                // The peer's name is not known yet when joining by address.
                let result = match net::exchange(&opts, to, request, Some("")).await {
                    Ok(msg) => {
                        let mut s = self.shared.lock();
                        let now = self.shared.now();
                        let r = s
                            .handle_stream_result(now, StreamPurpose::Join, Ok(msg))
                            .map_err(|e| e.to_string());
                        self.shared.flush(&mut s);
                        r
                    }
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        let e = format!("Failed to join {}: {e}", to.ip());
                        debug!("{e}");
                        errors.push(e);
                    }
                }
            }
        }
        self.shared.wake.notify_one();
        (ok, errors)
    }

    /// Tries the snapshot's nodes one by one in random order until one join works.
    async fn rejoin(&self, mut nodes: Vec<(String, SocketAddr)>) {
        let mut seed = [0u8; 8];
        let _ = getrandom::getrandom(&mut seed);
        let mut rng = serf_membership::Rng::new(u64::from_le_bytes(seed));
        rng.shuffle(&mut nodes);
        for (name, addr) in nodes {
            info!(target: "serf_core", "Attempting re-join to previously known node: {name}: {addr}");
            // Go's snapshot rejoin calls memberlist's join directly: old user events are
            // replayed (they are newer than the snapshot's event clock) and no join intent
            // is sent.
            let request = self.shared.lock().rejoin_request();
            if self.push_pull_join(&[addr.to_string()], &request).await.0 > 0 {
                info!(target: "serf_core", "Re-joined to previously known node: {name}: {addr}");
                return;
            }
        }
        warn!(target: "serf_core", "Failed to re-join any previously known node");
    }

    /// Replaces the tags (and rewrites the tags file, if any).
    pub fn set_tags(&self, tags: Vec<(String, String)>) -> Result<(), Error> {
        if let Some(path) = &self.shared.tags_file {
            write_tags_file(path, &tags)?;
        }
        let mut s = self.shared.lock();
        let now = self.shared.now();
        s.set_tags(now, tags)?;
        self.shared.flush(&mut s);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Fires a user event.
    pub fn user_event(&self, name: &str, payload: &[u8], coalesce: bool) -> Result<(), Error> {
        let mut s = self.shared.lock();
        s.user_event(name, payload, coalesce)?;
        self.shared.flush(&mut s);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Issues a query. Results (acks, responses, then done) arrive on the handle.
    pub fn query(
        &self,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
    ) -> Result<QueryHandle, Error> {
        let (tx, rx) = mpsc::channel(4096);
        let mut s = self.shared.lock();
        let now = self.shared.now();
        let (ltime, id, deadline) = s.query(now, name, payload, params)?;
        match self.shared.routes.lock() {
            Ok(mut g) => g.insert((ltime, id), tx),
            Err(p) => p.into_inner().insert((ltime, id), tx),
        };
        self.shared.flush(&mut s);
        drop(s);
        self.shared.wake.notify_one();
        Ok(QueryHandle {
            ltime,
            id,
            deadline: self.shared.start + deadline,
            rx,
        })
    }

    /// Answers a query received as [`Event::Query`].
    pub fn respond(&self, ltime: u64, id: u32, payload: Vec<u8>) -> Result<(), Error> {
        let mut s = self.shared.lock();
        let now = self.shared.now();
        s.respond(now, ltime, id, payload)?;
        self.shared.flush(&mut s);
        drop(s);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Runs a key operation on every node (Serf's key manager): `key` is base64 (ignored
    /// for list). The core counts the answers; this waits for its [`Event::KeyOpDone`].
    pub async fn key_op(&self, kind: KeyOpKind, key_b64: &str) -> KeyOpResult {
        let key = if kind == KeyOpKind::List {
            Vec::new()
        } else {
            match serf_gocompat::base64::decode(key_b64) {
                Ok(k) => k,
                Err(e) => return KeyOpResult::failed(e.to_string()),
            }
        };
        let (tx, mut rx) = mpsc::channel(4096);
        let started = {
            let mut s = self.shared.lock();
            let now = self.shared.now();
            let r = s.key_op(now, kind, &key);
            if let Ok(route) = r {
                match self.shared.routes.lock() {
                    Ok(mut g) => g.insert(route, tx),
                    Err(p) => p.into_inner().insert(route, tx),
                };
            }
            self.shared.flush(&mut s);
            r
        };
        self.shared.wake.notify_one();
        if let Err(e) = started {
            return KeyOpResult::failed(e.to_string());
        }
        while let Some(ev) = rx.recv().await {
            if let Event::KeyOpDone { result, .. } = ev {
                return *result;
            }
        }
        KeyOpResult::failed("the agent stopped during the key operation".to_string())
    }

    /// Force-leaves a node.
    pub fn force_leave(&self, node: &str, prune: bool) {
        let mut s = self.shared.lock();
        s.force_leave(node, prune);
        self.shared.flush(&mut s);
        self.shared.wake.notify_one();
    }

    /// Graceful leave: the core gossips the leave intent, then runs memberlist's leave,
    /// then waits for it to propagate, each step on its own timers; this waits for the
    /// core to report the end. Stops the agent afterwards.
    pub async fn leave(&self) -> Result<(), Error> {
        if let Some(sn) = &self.shared.snapshot {
            sn.leave().await;
        }
        let mut left = self.shared.left.subscribe();
        let limit = {
            let mut s = self.shared.lock();
            let now = self.shared.now();
            s.leave(now)?;
            self.shared.flush(&mut s);
            let cfg = s.state().config();
            cfg.broadcast_timeout * 2 + cfg.leave_propagate_delay + Duration::from_secs(5)
        };
        self.shared.wake.notify_one();
        let result = match tokio::time::timeout(limit, left.wait_for(Option::is_some)).await {
            Ok(Ok(r)) => r.clone().unwrap_or(Ok(())).map_err(Error::Serf),
            _ => Err(Error::Serf(serf_core::Error::LeaveTimeout)),
        };
        self.shutdown();
        result
    }

    /// Stops the driver and the listener without leaving.
    pub fn shutdown(&self) {
        let _ = self.shared.shutdown.send(true);
        self.shared.wake.notify_one();
    }

    /// Resolves once the agent has been shut down.
    pub async fn stopped(&self) {
        let mut rx = self.shared.shutdown.subscribe();
        while !*rx.borrow() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A running query.
#[derive(Debug)]
pub struct QueryHandle {
    /// Query clock.
    pub ltime: u64,
    /// Query id.
    pub id: u32,
    /// When it ends.
    pub deadline: Instant,
    /// `QueryAck`, `QueryResponse`, then `QueryDone`.
    pub rx: mpsc::Receiver<Event>,
}
