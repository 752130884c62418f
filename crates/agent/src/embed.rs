//! An agent inside another program (serfnode is one): the Serf agent with the RPC server
//! and event handlers of `serf agent`, without its flags, banner, logging set-up and
//! signal handling. The embedder owns the process: it decides when to leave and exit.
//!
//! ```no_run
//! # async fn f() -> Result<(), serf_agent::embed::EmbedError> {
//! use serf_agent::embed::{start, EmbedConfig};
//! let options = serf_runtime::Options::lan("n1", "127.0.0.1:0".parse().unwrap());
//! let mut config = EmbedConfig::new(options);
//! config.rpc_addr = Some("127.0.0.1:7373".parse().unwrap());
//! let mut node = start(config).await?;
//! node.agent().join(&["127.0.0.1:7946".to_string()], false).await.ok();
//! // ... until the embedder wants to stop, or an RPC client asks it to leave:
//! let _ = node.rpc_leave_requested().await;
//! node.agent().shutdown();
//! # Ok(()) }
//! ```

use crate::coalesce::CoalescedEvent;
use crate::handlers::journal::{Journal, Pending};
use crate::handlers::Handlers;
use crate::rpc::server::{self, Ctl, LeaveRequest};
use serf_runtime::{Agent, Options};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc};

/// Go's `gracefulTimeout` plus a margin: how long a leave may take.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run besides the Serf agent itself.
#[derive(Debug)]
pub struct EmbedConfig {
    /// The agent's settings (name, addresses, tags, keyring, snapshot, ...).
    pub options: Options,
    /// Where the RPC server listens (`None`: no RPC server).
    pub rpc_addr: Option<SocketAddr>,
    /// The RPC auth token clients must present (`None`: none).
    pub rpc_auth: Option<String>,
    /// Event handlers as `serf agent -event-handler` takes them (`[filter=]command`, run
    /// with `/bin/sh -c`).
    pub event_handlers: Vec<String>,
    /// A directory of programs named after events, run directly (no shell) for every
    /// event of that name (see [`crate::handlers`]).
    pub handler_dir: Option<PathBuf>,
}

impl EmbedConfig {
    /// `options` with no RPC server and no handlers.
    pub fn new(options: Options) -> EmbedConfig {
        EmbedConfig {
            options,
            rpc_addr: None,
            rpc_auth: None,
            event_handlers: Vec::new(),
            handler_dir: None,
        }
    }
}

/// Why an embedded agent did not start.
#[derive(Debug)]
pub enum EmbedError {
    /// An event handler value is invalid (Go's text).
    Handlers(String),
    /// The agent did not start (bind error, snapshot, ...).
    Start(serf_runtime::Error),
    /// The RPC listener could not bind its address.
    RpcBind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

impl fmt::Display for EmbedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmbedError::Handlers(e) => f.write_str(e),
            EmbedError::Start(e) => write!(f, "Error creating Serf: {e}"),
            EmbedError::RpcBind { addr, source } => write!(
                f,
                "Error starting RPC listener: listen tcp {addr}: bind: {}",
                serf_gocompat::errors::io_text(source)
            ),
        }
    }
}

impl std::error::Error for EmbedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EmbedError::Start(e) => Some(e),
            EmbedError::RpcBind { source, .. } => Some(source),
            EmbedError::Handlers(_) => None,
        }
    }
}

/// A running embedded agent.
#[derive(Debug)]
pub struct Embedded {
    agent: Agent,
    leave_rx: mpsc::Receiver<LeaveRequest>,
}

/// Starts the agent, its event handlers and (if configured) its RPC server.
pub async fn start(config: EmbedConfig) -> Result<Embedded, EmbedError> {
    let scripts = crate::handlers::parse_event_scripts(&config.event_handlers)
        .map_err(EmbedError::Handlers)?;
    let mut handlers = Handlers::new(scripts, Default::default());
    if let Some(dir) = config.handler_dir {
        handlers = handlers.with_dir(dir);
    }
    let (handlers, replay) = with_journal(handlers, config.options.snapshot_path.as_deref());
    let listener = match config.rpc_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|source| EmbedError::RpcBind { addr, source })?,
        ),
        None => None,
    };
    let agent = Agent::start(config.options)
        .await
        .map_err(EmbedError::Start)?;
    let (leave_rx, _) = run_services(
        &agent,
        Arc::new(handlers),
        replay,
        listener,
        config.rpc_auth.unwrap_or_default(),
    );
    Ok(Embedded { agent, leave_rx })
}

impl Embedded {
    /// The agent: members, events, joins, user events, queries, tags, leave.
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// Waits until an RPC client asks the agent to leave (`serf leave`), leaves (bounded
    /// in time), answers the client and returns the leave's outcome. The agent is not
    /// shut down: that, and exiting, are the embedder's to do.
    pub async fn rpc_leave_requested(&mut self) -> Result<(), String> {
        let Some(req) = self.leave_rx.recv().await else {
            return std::future::pending().await;
        };
        let r = leave_bounded(&self.agent).await;
        let _ = req.done.send(r.clone());
        let _ = tokio::time::timeout(Duration::from_secs(5), req.replied).await;
        r
    }

    /// Leaves the cluster gracefully, bounded in time, then shuts the agent down.
    pub async fn leave_and_shutdown(&self) -> Result<(), String> {
        let r = leave_bounded(&self.agent).await;
        self.agent.shutdown();
        r
    }
}

/// Go's `Agent.Leave`, bounded in time, with its log line.
pub(crate) async fn leave_bounded(agent: &Agent) -> Result<(), String> {
    tracing::info!("requesting graceful leave from Serf");
    match tokio::time::timeout(LEAVE_TIMEOUT, agent.leave()).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timeout while waiting for graceful leave".to_string()),
    }
}

/// With a snapshot, the handlers keep a journal next to it
/// ([`crate::handlers::journal`]); returns the handlers and the user events the previous
/// run left unhandled.
pub(crate) fn with_journal(
    handlers: Handlers,
    snapshot: Option<&std::path::Path>,
) -> (Handlers, Vec<Pending>) {
    let Some(snapshot) = snapshot else {
        return (handlers, Vec::new());
    };
    let path = crate::handlers::journal::path_for(snapshot);
    match Journal::open(path.clone()) {
        Ok((journal, replay)) => {
            if !replay.is_empty() {
                tracing::info!(
                    "{} user event(s) left unhandled by the previous run will be handled",
                    replay.len()
                );
            }
            (handlers.with_journal(Arc::new(journal)), replay)
        }
        Err(e) => {
            tracing::warn!(
                "handler journal {}: {e}; events are not journaled",
                path.display()
            );
            (handlers, Vec::new())
        }
    }
}

/// The services around a started agent, shared by `serf agent` and embedders: one
/// coalescer feeding the handlers and the RPC event streams (as in Go), the handler
/// runner (first the journal's `replay`, then new events), and the RPC server when a
/// listener is given. Returns where RPC `leave` requests arrive, and the coalesced event
/// broadcast (for the HTTP event stream).
pub(crate) fn run_services(
    agent: &Agent,
    handlers: Arc<Handlers>,
    replay: Vec<Pending>,
    listener: Option<TcpListener>,
    auth: String,
) -> (
    mpsc::Receiver<LeaveRequest>,
    broadcast::Sender<CoalescedEvent>,
) {
    let mut events = agent.take_startup_subscriber();
    if let Some(journal) = handlers.journal().cloned() {
        // User events are journaled as they arrive, before the coalescer holds them.
        let (tx, rx) = broadcast::channel(JOURNAL_RELAY);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => {
                        journal.record(&e);
                        let _ = tx.send(e);
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!("handler journal fell behind, {n} events were lost");
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        events = rx;
    }
    let (coalesced_tx, mut coalesced_out) = mpsc::channel(1024);
    tokio::spawn(crate::coalesce::run(
        events,
        Default::default(),
        coalesced_tx,
    ));
    let (streams_tx, _) = broadcast::channel(server::STREAM_BUFFER);
    let (handlers_tx, coalesced_rx) = mpsc::channel(1024);
    {
        let streams_tx = streams_tx.clone();
        tokio::spawn(async move {
            // What the previous run left unhandled goes first, to the handlers only.
            for p in replay {
                if handlers_tx
                    .send(CoalescedEvent::Other(p.to_event()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            while let Some(ev) = coalesced_out.recv().await {
                if let Some(text) = received_event_text(&ev) {
                    tracing::info!("Received event: {text}");
                }
                let _ = streams_tx.send(ev.clone());
                if handlers_tx.send(ev).await.is_err() {
                    return;
                }
            }
        });
    }
    {
        let info = agent.clone();
        let resp = agent.clone();
        let respond: crate::handlers::Respond =
            Arc::new(move |lt, id, p| Ok(resp.respond(lt, id, p)?));
        tokio::spawn(crate::handlers::run(
            coalesced_rx,
            handlers.clone(),
            move || (info.name(), info.tags()),
            respond,
        ));
    }
    let (leave_tx, leave_rx) = mpsc::channel(1);
    if let Some(listener) = listener {
        let ctl = Ctl {
            agent: agent.clone(),
            auth,
            leave: leave_tx,
            events: streams_tx.clone(),
            handlers,
        };
        tokio::spawn(server::serve(listener, ctl));
    }
    (leave_rx, streams_tx)
}

/// The capacity of the journal's relay: well above the agent's own broadcast
/// ([`serf_runtime::EVENT_CHANNEL`]), so the relay is never the one to lag.
const JOURNAL_RELAY: usize = 4096;

/// Go's `Event.String()` for the agent's "Received event" log line.
fn received_event_text(ev: &CoalescedEvent) -> Option<String> {
    match ev {
        CoalescedEvent::Members { kind, .. } => Some(kind.as_str().to_string()),
        CoalescedEvent::Other(serf_core::Event::User { name, .. }) => {
            Some(format!("user-event: {name}"))
        }
        CoalescedEvent::Other(serf_core::Event::Query { name, .. }) => {
            Some(format!("query: {name}"))
        }
        CoalescedEvent::Other(_) => None,
    }
}
