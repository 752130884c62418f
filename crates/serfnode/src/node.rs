//! The serfnode process: configuration, the embedded agent, the file API, `/etc/hosts`,
//! the event FIFO, the children and the shutdown sequence (SPEC §1-§5, done better where
//! §7 lists a bug; `docs/serfnode.md`).
//!
//! Start-up, in order, with nothing started before the configuration is known good:
//!
//! 1. Read the environment and `/serfnode.yml`; an invalid setting stops here with one
//!    line naming it (exit 2).
//! 2. Remove what a previous run left (`/agent_up`, `/serfnode/ready`) and create the
//!    event FIFO `/serfnode/parent` anew (a stale FIFO or file in its place is replaced).
//! 3. Connect to Docker (`DOCKER_SOCKET` under `HOST_PREFIX` when either is set, else
//!    `/var/run/docker.sock`, then `/host/run/docker.sock`), find this container and
//!    inspect it for the `ports` tag. Without Docker, serfnode still runs its node (with
//!    an empty `ports` tag and an empty `inspect`) unless children are configured.
//!    Children left behind by serfnode containers that were removed since are removed.
//! 4. The node id: `NODE_NAME`, else the id kept in `/serfnode/node_id` by an earlier
//!    run, else a new random one (kept there), so a restarted serfnode rejoins as itself.
//! 5. Start the agent in-process: gossip on `0.0.0.0:<SERF_PORT>` advertised as
//!    `<SERF_IP>:<SERF_PORT>`, RPC on `127.0.0.1:<RPC_PORT>` (with `RPC_AUTH`), gossip
//!    encryption with `SERF_ENCRYPT_KEY`, the snapshot `/serfnode/serf.snapshot` (replayed
//!    at start, also after a graceful leave: a restarted serfnode rejoins the members it
//!    knew), and the handler directory `/handler/events`.
//! 6. Write `/agent_up`, `/me.json`, `/serfnode/parent.json`, the cluster files and the
//!    `/etc/hosts` block; serve the FIFO; join `PEER` (retried every 5 s, names resolved
//!    again each time, until one join works); start the children in order; run
//!    `/handler/init` once if it exists; write `/serfnode/ready`.
//!
//! The cluster files and `/etc/hosts` are rewritten from the agent's member list on every
//! member event (join, leave, failed, update, reap), without the original's 1-3 s
//! coalescing delay; user events and queries go to the handlers as `serf agent` sends them.
//!
//! SIGTERM or SIGINT (`docker stop`), or an RPC `leave`: leave the cluster gracefully,
//! stop the children, exit 0. A second signal exits at once (1).

use crate::children::{self, Children, Host};
use crate::docker::{self, Docker};
use serf_agent::embed::{self, EmbedConfig};
use serf_runtime::{Agent, Event, Options};
use serfnode_core::config::{Config, Env, CONFIG_PATH};
use serfnode_core::files::{self, AGENT_UP, AGENT_UP_TEXT, ME, PARENT};
use serfnode_core::tags::{NodeTags, PortMap};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// The parent's own directory (SPEC §3.2: files at `/`).
const ROOT: &str = "/";
/// The shared volume.
const SHARED: &str = "/serfnode";
/// The event FIFO's name in [`SHARED`].
const FIFO_NAME: &str = "parent";
/// The persistent node id's name in [`SHARED`].
const NODE_ID_FILE: &str = "node_id";
/// Written once the node is up and its files are written.
const READY_FILE: &str = "ready";
/// The snapshot's name in [`SHARED`].
const SNAPSHOT_FILE: &str = "serf.snapshot";
/// The handler directory.
const HANDLER_DIR: &str = "/handler/events";
/// Run once when the node is up.
const INIT_HOOK: &str = "/handler/init";
/// Delay between join rounds.
const JOIN_RETRY: Duration = Duration::from_secs(5);
/// Seconds Docker waits before killing a child being stopped.
const CHILD_STOP_GRACE: i32 = 4;
/// Exit code for a configuration error.
const EXIT_CONFIG: i32 = 2;

/// Runs serfnode until it is stopped; the exit code.
pub async fn run() -> i32 {
    let env: Env = std::env::vars().collect();
    let yaml = match std::fs::read_to_string(CONFIG_PATH) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!("serfnode: cannot read {CONFIG_PATH}: {e}");
            return EXIT_CONFIG;
        }
    };
    let config = match Config::from_sources(&env, yaml.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("serfnode: invalid configuration: {e}");
            return EXIT_CONFIG;
        }
    };
    match start(config, &env).await {
        Ok(node) => node.wait().await,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("serfnode: {e}");
            1
        }
    }
}

/// The parts of a running serfnode.
struct Node {
    embedded: embed::Embedded,
    docker: Option<Docker>,
    children: Option<Children>,
}

/// Shared state the tasks read: identity and the inspect documents.
#[derive(Debug)]
struct Shared {
    agent: Agent,
    node_id: String,
    parent_inspect: serde_json::Value,
    children: Mutex<BTreeMap<String, serde_json::Value>>,
}

impl Host for Shared {
    fn user_event(&self, name: &str, payload: &[u8]) {
        if let Err(e) = self.agent.user_event(name, payload, true) {
            tracing::warn!("failed to send the {name} event: {e}");
        }
    }
    fn node_id(&self) -> String {
        self.node_id.clone()
    }
    fn parent_inspect(&self) -> serde_json::Value {
        self.parent_inspect.clone()
    }
    fn child_inspected(&self, name: &str, inspect: serde_json::Value) {
        let docs: Vec<serde_json::Value> = match self.children.lock() {
            Ok(mut m) => {
                m.insert(name.to_string(), inspect);
                m.values().cloned().collect()
            }
            Err(_) => return,
        };
        match files::children_by_name(&self.node_id, &self.parent_inspect, &docs) {
            Ok(text) => write_logged(Path::new(ROOT), files::CHILDREN_BY_NAME, text.as_bytes()),
            Err(e) => tracing::warn!("children_by_name.json: {e}"),
        }
    }
}

fn write_logged(dir: &Path, name: &str, bytes: &[u8]) {
    if let Err(e) = files::atomic_write(dir, name, bytes) {
        tracing::error!("failed to write {}: {e}", dir.join(name).display());
    }
}

/// The Docker socket to use (module doc, step 3).
fn docker_socket(config: &Config, env: &Env) -> PathBuf {
    let set = |k: &str| env.get(k).is_some_and(|v| !v.is_empty());
    if set("DOCKER_SOCKET") || set("HOST_PREFIX") {
        return PathBuf::from(config.docker_socket_path());
    }
    ["/var/run/docker.sock", "/host/run/docker.sock"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// The IP the kernel would use to reach the outside (no packet is sent), else a
/// private address of an interface.
fn detect_ip() -> IpAddr {
    let routed = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect("8.8.8.8:8000")?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified());
    routed
        .or_else(serf_runtime::private_ip)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// `NODE_NAME`, else the kept id, else a new one (kept).
fn node_id(config: &Config) -> String {
    if let Some(n) = &config.node_name {
        return n.clone();
    }
    let path = Path::new(SHARED).join(NODE_ID_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() && id.len() <= 128 && !id.contains(char::is_whitespace) {
            return id.to_string();
        }
    }
    let mut random = [0u8; 16];
    if getrandom::getrandom(&mut random).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        random = (t ^ u128::from(std::process::id())).to_le_bytes();
    }
    let id = config.node_name_or(random);
    write_logged(
        Path::new(SHARED),
        NODE_ID_FILE,
        format!("{id}\n").as_bytes(),
    );
    id
}

/// Removes what a previous run left and creates the FIFO anew.
fn prepare_dirs() -> Result<(), String> {
    std::fs::create_dir_all(SHARED).map_err(|e| format!("cannot create {SHARED}: {e}"))?;
    for stale in [
        Path::new(ROOT).join(AGENT_UP),
        Path::new(SHARED).join(READY_FILE),
    ] {
        let _ = std::fs::remove_file(stale);
    }
    crate::fifo::create(&Path::new(SHARED).join(FIFO_NAME))
}

async fn start(config: Config, env: &Env) -> Result<Node, String> {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    prepare_dirs()?;
    let socket = docker_socket(&config, env);
    let needs_docker = !config.children.is_empty() || config.docker_run.is_some();
    let docker = match Docker::connect(&socket.to_string_lossy()).await {
        Ok(d) => match d.version().await {
            Ok((v, api)) => {
                tracing::info!("Access to docker successful: Docker {v}, api {api}");
                Some(d)
            }
            Err(e) if needs_docker => return Err(e.to_string()),
            Err(e) => {
                tracing::warn!("no Docker access ({e}): running without children");
                None
            }
        },
        Err(e) if needs_docker => return Err(e.to_string()),
        Err(e) => {
            tracing::warn!(
                "no Docker access ({e}); mount the socket with \
                 -v /var/run/docker.sock:/var/run/docker.sock"
            );
            None
        }
    };
    if let Some(d) = &docker {
        if let Err(e) = d.remove_orphans().await {
            tracing::warn!("{e}");
        }
    }
    let own_id = docker::own_container_id();
    let (parent_id, parent_inspect) = match (&docker, &own_id) {
        (Some(d), Some(id)) => match d.inspect(id).await {
            Ok(doc) => {
                let full = doc
                    .get("Id")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(id)
                    .to_string();
                (Some(full), doc)
            }
            Err(e) if needs_docker => {
                return Err(format!("cannot find this container in Docker: {e}"))
            }
            Err(e) => {
                tracing::warn!("cannot inspect this container: {e}");
                (None, serde_json::json!({}))
            }
        },
        _ => (None, serde_json::json!({})),
    };
    let supervised = match (&parent_id, needs_docker) {
        (Some(pid), true) => {
            let mut list: Vec<children::Supervised> = config
                .children
                .iter()
                .map(|c| children::child_spec(c, pid))
                .collect();
            if let Some(run) = &config.docker_run {
                list.push(children::docker_run_spec(run, pid).map_err(|e| e.to_string())?);
            }
            list
        }
        (None, true) => return Err("children need this container's id in Docker".to_string()),
        _ => Vec::new(),
    };
    let ports = PortMap::from_docker_ports(
        parent_inspect
            .pointer("/NetworkSettings/Ports")
            .unwrap_or(&serde_json::Value::Null),
    );
    let ip = config.serf_ip.unwrap_or_else(detect_ip);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let tags = NodeTags::new(&config, ip, started, ports);
    let id = node_id(&config);

    let mut options = Options::lan(&id, config.bind_addr());
    options.memberlist.addr = ip;
    options.memberlist.port = config.serf_port;
    options.serf.tags = tags.to_tags();
    if let Some(key) = &config.encrypt_key {
        let key =
            serf_wire::Key::new(key.as_bytes()).map_err(|e| format!("SERF_ENCRYPT_KEY: {e}"))?;
        options.memberlist.keyring = serf_wire::Keyring::new(key, Vec::new());
    }
    options.snapshot_path = Some(Path::new(SHARED).join(SNAPSHOT_FILE));
    // A restarted serfnode (`docker restart`, which leaves gracefully first) rejoins the
    // members it knew, as itself, even without `PEER`.
    options.rejoin_after_leave = true;
    let mut ec = EmbedConfig::new(options);
    ec.rpc_addr = Some(config.rpc_addr());
    ec.rpc_auth = config.rpc_auth.as_ref().map(|s| s.expose().to_string());
    ec.handler_dir = Some(PathBuf::from(HANDLER_DIR));
    let embedded = embed::start(ec).await.map_err(|e| e.to_string())?;
    let agent = embedded.agent().clone();
    tracing::info!(
        "serfnode {id} (role {}) gossiping on {}:{}, RPC on {}",
        config.role,
        ip,
        config.serf_port,
        config.rpc_addr()
    );

    write_logged(Path::new(ROOT), AGENT_UP, AGENT_UP_TEXT.as_bytes());
    match files::container_info(&id, &parent_inspect) {
        Ok(text) => {
            write_logged(Path::new(ROOT), ME, text.as_bytes());
            write_logged(Path::new(SHARED), PARENT, text.as_bytes());
        }
        Err(e) => tracing::error!("me.json: {e}"),
    }
    crate::cluster::refresh(&agent);
    tokio::spawn(crate::cluster::run(agent.clone()));
    tokio::spawn(crate::fifo::serve(
        Path::new(SHARED).join(FIFO_NAME),
        agent.clone(),
    ));
    if !config.peers.is_empty() {
        tokio::spawn(join_until_done(agent.clone(), config.peers.clone()));
    }
    let shared = Arc::new(Shared {
        agent: agent.clone(),
        node_id: id.clone(),
        parent_inspect,
        children: Mutex::new(BTreeMap::new()),
    });
    let children = match &docker {
        Some(d) if !supervised.is_empty() => {
            Some(Children::start(d.clone(), supervised, shared).await)
        }
        _ => None,
    };
    if Path::new(INIT_HOOK).is_file() {
        tokio::spawn(run_init_hook());
    }
    write_logged(Path::new(SHARED), READY_FILE, b"ready\n");
    Ok(Node {
        embedded,
        docker,
        children,
    })
}

/// Joins `peers` until one join works (names resolved again at each round).
async fn join_until_done(agent: Agent, peers: Vec<String>) {
    loop {
        match agent.join(&peers, false).await {
            Ok(n) => {
                tracing::info!("joined the cluster through {n} of {}", peers.join(","));
                return;
            }
            Err((_, e)) => {
                tracing::warn!(
                    "join {} failed ({}), retrying in {JOIN_RETRY:?}",
                    peers.join(","),
                    e.trim_end()
                );
                tokio::time::sleep(JOIN_RETRY).await;
            }
        }
    }
}

async fn run_init_hook() {
    let status = tokio::process::Command::new(INIT_HOOK)
        .stdin(std::process::Stdio::null())
        .status()
        .await;
    match status {
        Ok(s) if s.success() => tracing::info!("{INIT_HOOK} done"),
        Ok(s) => tracing::warn!("{INIT_HOOK} failed: {s}"),
        Err(e) => tracing::warn!("{INIT_HOOK} could not run: {e}"),
    }
}

impl Node {
    /// Waits for a stop request, then leaves and stops the children.
    async fn wait(mut self) -> i32 {
        let (Ok(mut int), Ok(mut term), Ok(mut chld)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::child()),
        ) else {
            tracing::error!("failed to install signal handlers");
            return 1;
        };
        let reaping = std::process::id() == 1;
        let mut sweep = tokio::time::interval(Duration::from_secs(10));
        let agent = self.embedded.agent().clone();
        let left_by_rpc = loop {
            tokio::select! {
                _ = int.recv() => { tracing::info!("caught interrupt"); break false; }
                _ = term.recv() => { tracing::info!("caught terminate"); break false; }
                r = self.embedded.rpc_leave_requested() => {
                    if let Err(e) = r { tracing::warn!("leave: {e}"); }
                    break true;
                }
                _ = chld.recv(), if reaping => { serf_agent::handlers::reap_orphans(); }
                _ = sweep.tick(), if reaping => { serf_agent::handlers::reap_orphans(); }
                () = agent.stopped() => {
                    tracing::warn!("the agent stopped");
                    break true;
                }
            }
        };
        let shutdown = async {
            let leave = async {
                if left_by_rpc {
                    self.embedded.agent().shutdown();
                } else {
                    tracing::info!("leaving the cluster");
                    if let Err(e) = self.embedded.leave_and_shutdown().await {
                        tracing::warn!("graceful leave failed: {e}");
                    }
                }
            };
            // Children stop while the leave propagates: both take seconds.
            let stop_children = async {
                if let (Some(children), Some(docker)) = (self.children.take(), &self.docker) {
                    children.stop(docker, CHILD_STOP_GRACE).await;
                }
            };
            tokio::join!(leave, stop_children);
            let _ = std::fs::remove_file(Path::new(SHARED).join(READY_FILE));
            tracing::info!("serfnode stopped");
            0
        };
        tokio::select! {
            code = shutdown => code,
            _ = int.recv() => 1,
            _ = term.recv() => 1,
        }
    }
}

/// Whether an event changes the member list (what the cluster files show).
pub(crate) fn is_member_event(e: &Event) -> bool {
    matches!(
        e,
        Event::MemberJoin(_)
            | Event::MemberLeave(_)
            | Event::MemberFailed(_)
            | Event::MemberUpdate(_)
            | Event::MemberReap(_)
    )
}
