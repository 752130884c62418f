//! `serf agent`: flags, start-up, the banner, start-up join, signals.

use crate::config::{self, Config};
use crate::logging;
use crate::rpc::server;
use serf_core::SerfConfig;
use serf_membership::Config as MlConfig;
use serf_runtime::{Agent, Options};
use serf_wire::{Key, Keyring};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

const DEFAULT_PORT: u16 = 7946;

fn hostname() -> String {
    crate::shared::os_hostname().unwrap_or_else(|_| "localhost".to_string())
}

/// A base64 key as Go decodes it, with Go's error text.
pub(crate) fn decode_key(s: &str) -> Result<Vec<u8>, String> {
    serf_gocompat::base64::decode(s).map_err(|e| e.to_string())
}

struct Settings {
    cfg: Config,
    opts: Options,
    rpc_addr: String,
    joins: Vec<String>,
    replay: bool,
    profile: String,
    level: tracing::Level,
    advertise_shown: Option<SocketAddr>,
    encrypt_key: Option<Vec<u8>>,
}

/// Validation done before "Starting Serf agent..." (Go's `readConfig`).
fn settings(args: &[String]) -> Result<Settings, (String, bool)> {
    let cfg = config::load(args)?;
    let fail = |m: String| (m, false);
    crate::handlers::parse_event_scripts(&cfg.event_handlers).map_err(fail)?;
    if cfg
        .retry_interval
        .is_some_and(|d| d < Duration::from_secs(1))
    {
        println!("==> Warning: 'RetryInterval' is too low. Setting to 1s");
    }
    if cfg
        .broadcast_timeout
        .is_some_and(|d| d < Duration::from_secs(1))
    {
        println!("==> Warning: 'BroadcastTimeout' is too low. Setting to 1s");
    }
    if cfg.rejoin_after_leave && cfg.snapshot_path.is_none() {
        println!("==> Warning: 'RejoinAfterLeave' enabled without snapshot file");
    }
    let level_s = cfg.log_level.clone().unwrap_or_else(|| "INFO".to_string());
    let level = logging::parse_level(&level_s).ok_or_else(|| {
        fail(format!(
            "Invalid log level: {}. Valid log levels are: [TRACE DEBUG INFO WARN ERR]",
            level_s.to_ascii_uppercase()
        ))
    })?;
    let profile = cfg.profile.clone().unwrap_or_else(|| "lan".to_string());
    let bind_s = cfg.bind.clone().unwrap_or_else(|| "0.0.0.0".to_string());
    let bind = serf_runtime::addr::addr_parts(&bind_s, DEFAULT_PORT)
        .map_err(|e| fail(format!("Invalid bind address: {e}")))?;
    let bind = match &cfg.interface {
        None => bind,
        Some(iface) => interface_bind(iface, bind).map_err(fail)?,
    };
    let advertise = match &cfg.advertise {
        Some(a) => Some(
            serf_runtime::addr::addr_parts(a, DEFAULT_PORT)
                .map_err(|e| fail(format!("Invalid advertise address: {e}")))?,
        ),
        None => None,
    };
    let node = cfg.node_name.clone().unwrap_or_else(hostname);
    let mut ml = MlConfig::profile(&profile, node, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        .ok_or_else(|| fail(format!("Unknown profile: {profile}")))?;
    if let Some(a) = advertise {
        ml.addr = a.ip();
        ml.port = a.port();
    } else if !bind.ip().is_unspecified() {
        ml.addr = bind.ip();
        ml.port = bind.port();
    }
    ml.enable_compression = cfg.enable_compression.unwrap_or(true);
    let encrypt_key = match &cfg.encrypt_key {
        Some(k) => Some(decode_key(k).map_err(|e| fail(format!("Invalid encryption key: {e}")))?),
        None => None,
    };
    let mut serf = SerfConfig::default();
    if let Some(pr) = cfg.protocol {
        serf.protocol = u8::try_from(pr).unwrap_or(u8::MAX);
    }
    serf.tags = cfg.tags.clone();
    if let Some(role) = &cfg.role {
        println!("Deprecation warning: 'Role' has been replaced with 'Tags'");
        serf.tags.retain(|(k, _)| k != "role");
        serf.tags.push(("role".to_string(), role.clone()));
    }
    let limit = |v: Option<i64>, d: usize| {
        v.and_then(|x| usize::try_from(x).ok())
            .filter(|x| *x > 0)
            .unwrap_or(d)
    };
    serf.query_size_limit = limit(cfg.query_size_limit, 1024);
    serf.query_response_size_limit = limit(cfg.query_response_size_limit, 1024);
    serf.user_event_size_limit = limit(cfg.user_event_size_limit, 512);
    if serf.user_event_size_limit > serf_core::USER_EVENT_SIZE_HARD_LIMIT {
        return Err(fail(format!(
            "user event size limit exceeds limit of {} bytes",
            serf_core::USER_EVENT_SIZE_HARD_LIMIT
        )));
    }
    if let Some(d) = cfg.reconnect_interval {
        serf.reconnect_interval = d;
    }
    if let Some(d) = cfg.reconnect_timeout {
        serf.reconnect_timeout = d;
    }
    if let Some(d) = cfg.tombstone_timeout {
        serf.tombstone_timeout = d;
    }
    serf.enable_name_conflict_resolution = !cfg.disable_name_resolution;
    let rpc_s = cfg
        .rpc_addr
        .clone()
        .unwrap_or_else(|| "127.0.0.1:7373".to_string());
    // Resolved when the listener starts, as Go's `net.Listen` does; shown as given.
    let rpc_addr = rpc_s;
    Ok(Settings {
        opts: Options {
            bind,
            memberlist: ml,
            serf,
            snapshot_path: cfg.snapshot_path.as_ref().map(std::path::PathBuf::from),
            rejoin_after_leave: cfg.rejoin_after_leave,
            keyring_file: cfg.keyring_file.as_ref().map(std::path::PathBuf::from),
            tags_file: cfg.tags_file.as_ref().map(std::path::PathBuf::from),
            broadcast_timeout: cfg
                .broadcast_timeout
                .map_or(serf_runtime::BROADCAST_TIMEOUT, |d| {
                    d.max(Duration::from_secs(1))
                }),
        },
        rpc_addr,
        joins: cfg.start_join.clone(),
        replay: cfg.replay_on_join,
        profile,
        level,
        advertise_shown: advertise,
        encrypt_key,
        cfg,
    })
}

/// `-iface`: with an unspecified bind IP, bind the interface's first non-link-local
/// address; otherwise the bind IP must belong to the interface (Go's rules).
fn interface_bind(iface: &str, bind: SocketAddr) -> Result<SocketAddr, String> {
    let addrs: Vec<IpAddr> = if_addrs::get_if_addrs()
        .map_err(|e| format!("Invalid network interface: {e}"))?
        .into_iter()
        .filter(|i| i.name == iface)
        .map(|i| i.ip())
        .collect();
    if addrs.is_empty() {
        return Err(
            "Invalid network interface: route ip+net: no such network interface".to_string(),
        );
    }
    if bind.ip().is_unspecified() {
        let link_local = |ip: &IpAddr| match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        let ip = addrs.iter().find(|ip| !link_local(ip)).ok_or_else(|| {
            format!("Invalid network interface: interface {iface} has no usable address")
        })?;
        return Ok(SocketAddr::new(*ip, bind.port()));
    }
    if addrs.contains(&bind.ip()) {
        Ok(bind)
    } else {
        Err(format!(
            "Invalid network interface: interface {iface} has no address {}",
            bind.ip()
        ))
    }
}

/// Reads a tags file (JSON object of strings).
fn read_tags_file(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("Failed to read tags file: {e}")),
    };
    parse_tags_text(&text)
}

/// Parses a tags file's text (JSON object; non-string values become "").
pub(crate) fn parse_tags_text(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("Failed to decode tags file: {e}"))?;
    let obj = v
        .as_object()
        .ok_or("Failed to decode tags file: not an object")?;
    Ok(obj
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect())
}

/// Reads a keyring file (JSON array of base64 keys, primary first).
fn read_keyring_file(path: &str) -> Result<Keyring, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("stat {path}: no such file or directory"),
        _ => format!("Failed to read keyring file: {e}"),
    })?;
    parse_keyring_text(&text)
}

/// Parses a keyring file's text (JSON array of base64 keys, primary first).
pub(crate) fn parse_keyring_text(text: &str) -> Result<Keyring, String> {
    let keys: Vec<String> =
        serde_json::from_str(text).map_err(|e| format!("Failed to decode keyring file: {e}"))?;
    let mut ring: Option<Keyring> = None;
    for k in keys {
        let bytes =
            decode_key(&k).map_err(|e| format!("Failed to decode key from keyring file: {e}"))?;
        let key = Key::new(&bytes).map_err(|e| e.to_string())?;
        match &mut ring {
            None => ring = Some(Keyring::new(key, vec![])),
            Some(r) => r.add(key),
        }
    }
    ring.ok_or_else(|| "Keyring file contains no keys".to_string())
}

/// Set-up done after "Starting Serf agent..." (Go's `setupAgent`).
fn setup(s: &mut Settings) -> Result<(), String> {
    if let Some(path) = &s.cfg.keyring_file {
        if s.encrypt_key.is_some() {
            return Err("Encryption key not allowed while using a keyring".to_string());
        }
        s.opts.memberlist.keyring = read_keyring_file(path)?;
        tracing::info!(
            "Restored keyring with {} keys from {path}",
            s.opts.memberlist.keyring.keys().len()
        );
    } else if let Some(k) = &s.encrypt_key {
        let key = Key::new(k).map_err(|_| {
            "Failed to start the Serf agent: Error creating Serf: Failed to create memberlist: key size must be 16, 24 or 32 bytes"
                .to_string()
        })?;
        s.opts.memberlist.keyring = Keyring::new(key, vec![]);
    }
    if let Some(path) = &s.cfg.tags_file {
        if !s.cfg.tags.is_empty() {
            return Err("Tags config not allowed while using tag files".to_string());
        }
        let existed = std::path::Path::new(path).exists();
        s.opts.serf.tags = read_tags_file(path)?;
        if existed {
            tracing::info!("Restored {} tag(s) from {path}", s.opts.serf.tags.len());
        }
    }
    Ok(())
}

/// Runs `serf agent` with its command-line `args` (flags, as after `serf agent`) until it
/// leaves or is stopped; returns the exit code. Needs a tokio runtime with I/O and timers
/// enabled; logs go to stdout (and the `monitor` sink) as Go's agent writes them.
pub async fn run(args: &[String]) -> i32 {
    raise_open_files_limit();
    let s = match settings(args) {
        Ok(s) => s,
        Err((e, usage)) => {
            if usage {
                eprintln!("{e}");
                println!("==> {}", crate::help::AGENT_HELP);
            } else {
                println!("==> {e}");
            }
            return 1;
        }
    };
    // Go's setupLoggers: syslog is checked before anything starts; console lines are
    // held back until the banner has been printed.
    let syslog = if s.cfg.enable_syslog {
        let fac = s.cfg.syslog_facility.as_deref().unwrap_or("LOCAL0");
        let Some(code) = logging::syslog_facility(fac) else {
            println!("==> Syslog setup failed: invalid syslog facility: {fac}");
            return 1;
        };
        match logging::SyslogLayer::connect(code) {
            Ok(l) => Some(l),
            Err(e) => {
                println!("==> Syslog setup failed: {e}");
                return 1;
            }
        }
    } else {
        None
    };
    logging::set_json(s.cfg.log_json);
    let level = logging::init(s.level, syslog);
    // Go sets up telemetry right after reading the config and before `setupAgent`.
    let _telemetry = match crate::telemetry::install(&crate::telemetry::TelemetryConfig {
        statsite_addr: s.cfg.statsite_addr.clone(),
        statsd_addr: s.cfg.statsd_addr.clone(),
        prometheus: s.cfg.http_addr.is_some(),
    }) {
        Ok(t) => t,
        Err(e) => {
            println!("==> {e}");
            return 1;
        }
    };
    println!("==> Starting Serf agent...");
    let mut s = s;
    if let Err(e) = setup(&mut s) {
        if e.starts_with("Failed to start") {
            println!("==> {e}");
        } else {
            println!("==> Failed to setup the Serf agent: {e}");
        }
        return 1;
    }
    let encrypted = !s.opts.memberlist.keyring.is_empty();
    let compression = s.opts.memberlist.enable_compression;
    let node = s.opts.memberlist.name.clone();
    tracing::info!("Serf agent starting");
    let snapshot_path = s.opts.snapshot_path.clone();
    let agent = match Agent::start(s.opts).await {
        Ok(a) => a,
        Err(e) => {
            println!("==> Failed to start the Serf agent: Error creating Serf: {e}");
            return 1;
        }
    };
    if let Some(cluster) = s.cfg.discover.as_deref() {
        if let Err(e) = crate::discover::start(
            &agent,
            cluster,
            s.cfg.interface.as_deref(),
            s.cfg.replay_on_join,
        ) {
            println!("==> Error starting mDNS listener: {e}");
            agent.shutdown();
            return 1;
        }
    }
    let rpc_sa = match serf_runtime::addr::listen_addr(&s.rpc_addr) {
        Ok(a) => a,
        Err(e) => {
            println!("==> Error starting RPC listener: listen tcp: {e}");
            return 1;
        }
    };
    let listener = match tokio::net::TcpListener::bind(rpc_sa).await {
        Ok(l) => l,
        Err(e) => {
            println!(
                "==> Error starting RPC listener: listen tcp {}: bind: {}",
                rpc_sa,
                io_text(&e)
            );
            return 1;
        }
    };
    println!("==> Starting Serf agent RPC...");
    let scripts = match crate::handlers::parse_event_scripts(&s.cfg.event_handlers) {
        Ok(v) => v,
        Err(e) => {
            println!("==> {e}");
            return 1;
        }
    };
    let (handlers, replay) = crate::embed::with_journal(
        crate::handlers::Handlers::new(scripts, Default::default()),
        snapshot_path.as_deref(),
    );
    let handlers = Arc::new(handlers);
    let (mut leave_rx, events_tx) = crate::embed::run_services(
        &agent,
        handlers.clone(),
        replay,
        Some(listener),
        s.cfg.rpc_auth.clone().unwrap_or_default(),
    );
    // Healthy once joined, or at once when there is nothing to join.
    let joined = Arc::new(std::sync::atomic::AtomicBool::new(
        s.joins.is_empty() && s.cfg.retry_join.is_empty(),
    ));
    if let Some(addr) = s.cfg.http_addr.as_deref() {
        if let Err(e) = start_http(addr, &agent, &handlers, &events_tx, &s.cfg, &joined).await {
            println!("==> {e}");
            agent.shutdown();
            return 1;
        }
    }
    println!("==> Serf agent running!");
    println!("{:>31}: '{}'", "Node name", node);
    // Go prints the bind address it parsed; an empty host shows as ":port".
    let bind_shown = match serf_runtime::addr::split_host_port(s.cfg.bind.as_deref().unwrap_or(""))
    {
        Ok(("", _)) => format!(":{}", agent.local_addr().port()),
        _ => agent.local_addr().to_string(),
    };
    println!("{:>31}: '{}'", "Bind addr", bind_shown);
    if let Some(a) = s.advertise_shown {
        println!("    Advertise addr: '{a}'");
    }
    println!("{:>31}: '{}'", "RPC addr", s.rpc_addr);
    println!("{:>31}: {}", "Encrypted", encrypted);
    println!("{:>31}: {}", "Snapshot", s.cfg.snapshot_path.is_some());
    println!("{:>31}: {}", "Profile", s.profile);
    println!("{:>31}: {}", "Message Compression Enabled", compression);
    if let Some(cluster) = &s.cfg.discover {
        println!("{:>31}: {}", "mDNS cluster", cluster);
    }
    if !s.joins.is_empty() {
        println!("==> Joining cluster...(replay: {})", s.replay);
        match crate::shared::join_logged(&agent, &s.joins, s.replay).await {
            Ok(n) => {
                println!("    Join completed. Synced with {n} initial agents");
                crate::http::mark_joined(&joined);
            }
            Err((_, e)) => {
                println!("==> {e}");
                agent.shutdown();
                return 1;
            }
        }
    }
    println!();
    println!("==> Log data will now stream in as it occurs:");
    println!();
    // Log lines written while starting (our own join, start-up joins) were held
    // back until now, as Go's gated writer does.
    logging::ungate();
    let (retry_fail_tx, mut retry_fail_rx) = mpsc::channel::<()>(1);
    if !s.cfg.retry_join.is_empty() {
        let interval = s
            .cfg
            .retry_interval
            .unwrap_or(Duration::from_secs(30))
            .max(Duration::from_secs(1));
        let max = s.cfg.retry_max_attempts.unwrap_or(0);
        tokio::spawn(retry_join(
            joined.clone(),
            agent.clone(),
            s.cfg.retry_join.clone(),
            s.cfg.replay_on_join,
            interval,
            max,
            retry_fail_tx,
        ));
    }
    let reload = Reload {
        args: args.to_vec(),
        handlers,
        level,
        agent: agent.clone(),
    };
    wait_for_exit(
        &agent,
        &mut leave_rx,
        s.cfg.leave_on_terminate,
        s.cfg.skip_leave_on_interrupt,
        &reload,
        &mut retry_fail_rx,
    )
    .await
}

/// Starts the HTTP API on `addr` (refused on a non-loopback address without `rpc_auth`).
async fn start_http(
    addr: &str,
    agent: &Agent,
    handlers: &Arc<crate::handlers::Handlers>,
    events: &tokio::sync::broadcast::Sender<crate::coalesce::CoalescedEvent>,
    cfg: &Config,
    joined: &Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), String> {
    let sa = serf_runtime::addr::listen_addr(addr)
        .map_err(|e| format!("Error starting HTTP listener: listen tcp: {e}"))?;
    let token = cfg.rpc_auth.clone().filter(|t| !t.is_empty());
    crate::http::check_addr(&sa, token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(sa).await.map_err(|e| {
        format!(
            "Error starting HTTP listener: listen tcp {sa}: bind: {}",
            io_text(&e)
        )
    })?;
    tracing::info!("HTTP API on http://{}", listener.local_addr().unwrap_or(sa));
    tokio::spawn(crate::http::serve(
        listener,
        crate::http::HttpCtx {
            agent: agent.clone(),
            handlers: handlers.clone(),
            events: events.clone(),
            token,
            joined: joined.clone(),
        },
    ));
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for every
/// Go program (since Go 1.19): each RPC and HTTP client holds a descriptor.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let mut raised = lim;
        raised.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!("could not raise the open files limit: {e}");
        }
    }
}

/// What SIGHUP reloads: handlers, log level, tags.
struct Reload {
    args: Vec<String>,
    handlers: Arc<crate::handlers::Handlers>,
    level: Option<logging::LevelHandle>,
    agent: Agent,
}

impl Reload {
    fn run(&self) {
        let cfg = match config::load(&self.args) {
            Ok(c) => c,
            Err((e, _)) => {
                // Go's readConfig prints the error, then handleReload its own line.
                println!("==> {e}");
                println!("==> Failed to reload configs");
                return;
            }
        };
        match crate::handlers::parse_event_scripts(&cfg.event_handlers) {
            Ok(v) => self.handlers.replace(v),
            Err(e) => tracing::error!("Failed to reload event handlers, keeping the old ones: {e}"),
        }
        if let Some(l) = cfg.log_level.as_deref() {
            match (logging::parse_level(l), &self.level) {
                (Some(level), Some(h)) => h(level),
                (None, _) => tracing::error!("Invalid log level: {}", l.to_ascii_uppercase()),
                _ => {}
            }
        }
        // Go replaces the tags with the reloaded config's, which wipes them when a tags file
        // is used; we re-read the tags file instead.
        let tags = match &cfg.tags_file {
            Some(path) => match read_tags_file(path) {
                Ok(t) => t,
                Err(e) => {
                    tracing::error!("Failed to reload tags file: {e}");
                    return;
                }
            },
            None => {
                let mut t = cfg.tags.clone();
                if let Some(role) = &cfg.role {
                    t.retain(|(k, _)| k != "role");
                    t.push(("role".to_string(), role.clone()));
                }
                t
            }
        };
        if tags != self.agent.tags() {
            if let Err(e) = self.agent.set_tags(tags) {
                tracing::error!("Failed to update tags: {e}");
            }
        }
    }
}

/// Go's `retryJoin`: try every address each round (names are resolved again each time)
/// until one works; give up after `max` failed rounds (0 = never).
async fn retry_join(
    joined: Arc<std::sync::atomic::AtomicBool>,
    agent: Agent,
    addrs: Vec<String>,
    replay: bool,
    interval: Duration,
    max: i64,
    fail: mpsc::Sender<()>,
) {
    let mut attempt = 0i64;
    loop {
        tracing::info!("Joining cluster...(replay: {replay})");
        match crate::shared::join_logged(&agent, &addrs, replay).await {
            Ok(n) => {
                tracing::info!("Join completed. Synced with {n} initial agents");
                crate::http::mark_joined(&joined);
                return;
            }
            Err((_, e)) => {
                attempt += 1;
                if max > 0 && attempt > max {
                    let _ = fail.send(()).await;
                    return;
                }
                tracing::warn!("Join failed: {}, retrying in {interval:?}", e.trim_end());
                tokio::time::sleep(interval).await;
            }
        }
    }
}

fn io_text(e: &std::io::Error) -> String {
    serf_gocompat::errors::io_text(e)
}

/// Go's `Agent.Shutdown`, with its log lines.
fn shutdown_logged(agent: &Agent, left: bool) {
    crate::notify::notify("STOPPING=1");
    tracing::info!("requesting serf shutdown");
    if !left {
        tracing::warn!(target: "serf_core", "Shutdown without a Leave");
    }
    agent.shutdown();
    tracing::info!("shutdown complete");
    // Go's agent event loop notices Serf's shutdown and says so.
    tracing::warn!("Serf shutdown detected, quitting");
}

/// Go's `Agent.Leave`, bounded in time.
async fn leave_logged(agent: &Agent) -> Result<(), String> {
    crate::notify::notify("STOPPING=1");
    crate::embed::leave_bounded(agent).await
}

/// Go's `Agent.Leave` then `Agent.Shutdown`; the exit code.
async fn leave_and_shutdown(agent: &Agent) -> i32 {
    let code = match leave_logged(agent).await {
        Ok(()) => 0,
        Err(e) => {
            println!("==> Error: {e}");
            1
        }
    };
    shutdown_logged(agent, true);
    code
}

async fn graceful_leave(agent: &Agent) -> i32 {
    println!("==> Gracefully shutting down agent...");
    leave_and_shutdown(agent).await
}

async fn wait_for_exit(
    agent: &Agent,
    leave_rx: &mut mpsc::Receiver<server::LeaveRequest>,
    leave_on_terminate: bool,
    skip_leave_on_interrupt: bool,
    reload: &Reload,
    retry_fail_rx: &mut mpsc::Receiver<()>,
) -> i32 {
    // Besides INT, TERM and HUP: signals a Go program catches and ignores (its
    // runtime's default), so that `kill -USR2` does not kill the agent; SIGQUIT exits 2
    // as Go's runtime does.
    let (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut usr2), Ok(mut alarm), Ok(mut quit)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::alarm()),
        signal(SignalKind::quit()),
    ) else {
        println!("==> Failed to install signal handlers");
        return 1;
    };
    // Ready for systemd only now that a stop request (SIGINT/SIGTERM) is handled.
    crate::notify::notify("READY=1");
    loop {
        tokio::select! {
            _ = usr2.recv() => {}
            _ = alarm.recv() => {}
            _ = quit.recv() => {
                eprintln!("SIGQUIT: quit");
                return 2;
            }
            _ = int.recv() => {
                println!("==> Caught signal: interrupt");
                if skip_leave_on_interrupt {
                    shutdown_logged(agent, false);
                    return 1;
                }
                return tokio::select! {
                    code = graceful_leave(agent) => code,
                    _ = int.recv() => 1,
                    _ = term.recv() => 1,
                };
            }
            _ = term.recv() => {
                println!("==> Caught signal: terminated");
                if leave_on_terminate {
                    return tokio::select! {
                        code = graceful_leave(agent) => code,
                        _ = int.recv() => 1,
                        _ = term.recv() => 1,
                    };
                }
                shutdown_logged(agent, false);
                return 1;
            }
            _ = hup.recv() => {
                println!("==> Caught signal: hangup");
                println!("==> Reloading configuration...");
                crate::notify::notify("RELOADING=1");
                reload.run();
                crate::notify::notify("READY=1");
            }
            Some(req) = leave_rx.recv() => {
                // `serf leave` over RPC: no banner line, as in Go; the client gets its
                // answer once the leave is done, then the agent shuts down.
                let r = leave_logged(agent).await;
                let _ = req.done.send(r);
                let _ = tokio::time::timeout(Duration::from_secs(5), req.replied).await;
                shutdown_logged(agent, true);
                // Go's main loop sees the agent shut down and exits 0.
                return 0;
            }
            Some(()) = retry_fail_rx.recv() => {
                tracing::error!("maximum retry join attempts made, exiting");
                agent.shutdown();
                return 1;
            }
            _ = agent.stopped() => {
                tracing::warn!("Serf shutdown detected, quitting");
                return 0;
            }
        }
    }
}
