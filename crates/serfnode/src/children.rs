//! The children: application containers that share the serfnode's network namespace and
//! volumes, created through the Docker API and kept running (SPEC §1.6).
//!
//! Differences from the 2015 original, all deliberate (SPEC §7.2 bugs 5-9, §9.1-9.4):
//!
//! - Created with create + start (no docker CLI), `NetworkMode: container:<parent id>`,
//!   `VolumesFrom: [<parent id>, ...]`, and the labels `serfnode.parent=<parent id>` and
//!   `serfnode.child=<name>`. The container name is `<name>_app_<parent short id>`, stable
//!   across restarts of the serfnode: a restarted serfnode finds its children again by
//!   label and reuses them instead of leaking new ones.
//! - The child's `/me.json` is written through the archive API before the child starts
//!   (no shell needed in the child).
//! - A child that exits is started again after a backoff (1 s, doubling up to 30 s; back
//!   to 1 s after it ran for 60 s), forever.
//! - Each state change is broadcast as the user event `supervisor` with the JSON object
//!   supervisord's events gave the original (`processname`, `groupname`, `from_state`,
//!   `pid`, `eventname` = `PROCESS_STATE_<STATE>`, `node`), all values strings.
//! - On shutdown the children are stopped, all at once, and kept for a restart of the
//!   serfnode; once the serfnode container is removed, the next serfnode to start on that
//!   Docker host removes them (they are labelled with a parent that no longer exists).
//! - `DOCKER_RUN` (its own network, SPEC §1.6.4) understands the `docker run` options
//!   `-e/--env`, `-v/--volume`, `-p/--publish`, `-w/--workdir`, `-u/--user`,
//!   `--entrypoint`, `--privileged`, and ignores `-d`, `-i`, `-t`, `--rm` and `--name`
//!   (`DOCKER_NAME` names it); any other option is a start-up error.

use crate::docker::{ContainerSpec, Docker, LABEL_CHILD, LABEL_PARENT};
use serfnode_core::config::{Child, DockerRun};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// First restart delay.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest restart delay.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child that ran this long restarts after [`BACKOFF_MIN`] again.
const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// The container name of child `name` of the serfnode container `parent_id`.
pub fn container_name(name: &str, parent_id: &str) -> String {
    let short: String = parent_id.chars().take(12).collect();
    format!("{name}_app_{short}")
}

/// One supervised container: its name in the configuration and what to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Supervised {
    /// Name in `children:` (or the `DOCKER_RUN` container name).
    pub name: String,
    /// The container to create when none is found by label.
    pub spec: ContainerSpec,
    /// Shares the parent's network (the `/me.json` gets the parent's NetworkSettings).
    pub shares_network: bool,
}

/// The container for a `children:` entry.
pub fn child_spec(child: &Child, parent_id: &str) -> Supervised {
    let mut volumes_from = vec![parent_id.to_string()];
    volumes_from.extend(child.resolved_volumes_from(|sibling| container_name(sibling, parent_id)));
    Supervised {
        name: child.name.clone(),
        shares_network: true,
        spec: ContainerSpec {
            name: container_name(&child.name, parent_id),
            image: child.image.clone(),
            cmd: child.command.clone(),
            entrypoint: child.entrypoint.clone(),
            env: child
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            binds: child.volumes.clone(),
            volumes_from,
            network_mode: Some(format!("container:{parent_id}")),
            port_bindings: Vec::new(),
            working_dir: child.working_dir.clone(),
            user: child.user.clone(),
            privileged: child.privileged,
            labels: labels(parent_id, &child.name),
        },
    }
}

fn labels(parent_id: &str, name: &str) -> Vec<(String, String)> {
    vec![
        (LABEL_PARENT.to_string(), parent_id.to_string()),
        (LABEL_CHILD.to_string(), name.to_string()),
    ]
}

/// A `DOCKER_RUN` option serfnode does not understand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerRunError(pub String);

impl fmt::Display for DockerRunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DOCKER_RUN: {}", self.0)
    }
}

impl std::error::Error for DockerRunError {}

/// The container for `DOCKER_RUN` (module doc for the options understood).
pub fn docker_run_spec(run: &DockerRun, parent_id: &str) -> Result<Supervised, DockerRunError> {
    let mut spec = ContainerSpec {
        name: run.name.clone(),
        volumes_from: vec![parent_id.to_string()],
        labels: labels(parent_id, &run.name),
        ..Default::default()
    };
    let mut args = run.args.iter();
    let mut rest: Vec<String> = Vec::new();
    while let Some(arg) = args.next() {
        if !rest.is_empty() || !arg.starts_with('-') {
            rest.push(arg.clone());
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let takes_value = matches!(
            flag,
            "-e" | "--env"
                | "-v"
                | "--volume"
                | "-p"
                | "--publish"
                | "-w"
                | "--workdir"
                | "-u"
                | "--user"
                | "--entrypoint"
                | "--name"
        );
        let value = if takes_value {
            match inline {
                Some(v) => v,
                None => args
                    .next()
                    .cloned()
                    .ok_or_else(|| DockerRunError(format!("option {flag} needs a value")))?,
            }
        } else {
            String::new()
        };
        match flag {
            "-e" | "--env" => spec.env.push(value),
            "-v" | "--volume" => spec.binds.push(value),
            "-p" | "--publish" => {
                let (port, host) = parse_publish(&value)
                    .ok_or_else(|| DockerRunError(format!("bad port mapping {value:?}")))?;
                match spec.port_bindings.iter_mut().find(|(p, _)| *p == port) {
                    Some((_, hosts)) => hosts.push(host),
                    None => spec.port_bindings.push((port, vec![host])),
                }
            }
            "-w" | "--workdir" => spec.working_dir = Some(value),
            "-u" | "--user" => spec.user = Some(value),
            "--entrypoint" => spec.entrypoint = Some(vec![value]),
            "--privileged" => spec.privileged = true,
            "--name" | "-d" | "--detach" | "-i" | "-t" | "-it" | "-ti" | "--rm" => {}
            _ => return Err(DockerRunError(format!("unsupported option {arg}"))),
        }
    }
    let mut rest = rest.into_iter();
    spec.image = rest
        .next()
        .ok_or_else(|| DockerRunError("no image given".to_string()))?;
    spec.cmd = rest.collect();
    Ok(Supervised {
        name: run.name.clone(),
        spec,
        shares_network: false,
    })
}

/// `-p` values: `[ip:][host:]container[/proto]` → (`container/proto`, host port).
fn parse_publish(v: &str) -> Option<(String, String)> {
    let (ports, proto) = match v.rsplit_once('/') {
        Some((p, proto @ ("tcp" | "udp" | "sctp"))) => (p, proto),
        Some(_) => return None,
        None => (v, "tcp"),
    };
    let parts: Vec<&str> = ports.split(':').collect();
    let (host, container) = match parts.as_slice() {
        [c] => ("", *c),
        [h, c] => (*h, *c),
        [_ip, h, c] => (*h, *c),
        _ => return None,
    };
    container.parse::<u16>().ok()?;
    if !host.is_empty() {
        host.parse::<u16>().ok()?;
    }
    Some((format!("{container}/{proto}"), host.to_string()))
}

/// A child's state, as supervisord named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Stopped,
    /// Being created or started.
    Starting,
    /// Running.
    Running,
    /// Exited; waiting to be started again.
    Backoff,
    /// Exited.
    Exited,
    /// Being stopped.
    Stopping,
    /// Could not be created or started.
    Fatal,
}

impl State {
    /// `STARTING`, `RUNNING`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "STOPPED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Backoff => "BACKOFF",
            State::Exited => "EXITED",
            State::Stopping => "STOPPING",
            State::Fatal => "FATAL",
        }
    }
}

/// The `supervisor` user event's payload for a state change of child `name`.
pub fn supervisor_event(name: &str, from: State, to: State, pid: &str, node: &str) -> Vec<u8> {
    let mut m: BTreeMap<&str, &str> = BTreeMap::new();
    m.insert("processname", name);
    m.insert("groupname", name);
    m.insert("from_state", from.as_str());
    m.insert("pid", pid);
    let event = format!("PROCESS_STATE_{}", to.as_str());
    m.insert("eventname", &event);
    m.insert("node", node);
    serde_json::to_vec(&m).unwrap_or_default()
}

/// What the supervisor needs from the rest of serfnode.
pub trait Host: Send + Sync + 'static {
    /// Broadcasts a user event (the `supervisor` event).
    fn user_event(&self, name: &str, payload: &[u8]);
    /// This node's id.
    fn node_id(&self) -> String;
    /// The parent's inspect document (for the children's NetworkSettings).
    fn parent_inspect(&self) -> serde_json::Value;
    /// A child's inspect document changed (it was created or started).
    fn child_inspected(&self, name: &str, inspect: serde_json::Value);
}

/// The running children.
#[derive(Debug)]
pub struct Children {
    ids: Arc<Mutex<Vec<String>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Children {
    /// Starts every child in order (each one once the one before it was started), then
    /// keeps them running.
    pub async fn start(docker: Docker, list: Vec<Supervised>, host: Arc<dyn Host>) -> Children {
        let (stop, stop_rx) = watch::channel(false);
        let ids = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for sup in list {
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(supervise(
                docker.clone(),
                sup,
                host.clone(),
                stop_rx.clone(),
                ids.clone(),
                started_tx,
            ));
            tasks.push(task);
            // The next child waits for this one's first start (or its failure).
            let _ = started_rx.await;
        }
        Children { ids, stop, tasks }
    }

    /// Stops supervising and stops every child, all at once, each with `grace` seconds
    /// before Docker kills it.
    pub async fn stop(self, docker: &Docker, grace: i32) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let ids = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        let stops = ids.iter().map(|id| async move {
            tracing::info!("stopping child container {}", short(id));
            if let Err(e) = docker.stop(id, grace).await {
                tracing::warn!("{e}");
            }
        });
        futures_util::future::join_all(stops).await;
    }
}

async fn supervise(
    docker: Docker,
    sup: Supervised,
    host: Arc<dyn Host>,
    mut stop: watch::Receiver<bool>,
    ids: Arc<Mutex<Vec<String>>>,
    started: tokio::sync::oneshot::Sender<()>,
) {
    let mut started = Some(started);
    let mut backoff = BACKOFF_MIN;
    let mut state = State::Stopped;
    let name = sup.name.clone();
    let change = |to: State, pid: &str, state: &mut State| {
        let payload = supervisor_event(&name, *state, to, pid, &host.node_id());
        host.user_event("supervisor", &payload);
        *state = to;
    };
    loop {
        if *stop.borrow() {
            return;
        }
        change(State::Starting, "", &mut state);
        let run = tokio::time::Instant::now();
        match ensure_started(&docker, &sup, host.as_ref()).await {
            Ok((id, pid)) => {
                if let Ok(mut v) = ids.lock() {
                    if !v.contains(&id) {
                        v.push(id.clone());
                    }
                }
                change(State::Running, &pid, &mut state);
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
                tokio::select! {
                    r = docker.wait(&id) => match r {
                        Ok(code) => tracing::warn!("child {} exited with code {code}", sup.name),
                        Err(e) => tracing::warn!("{e}"),
                    },
                    _ = stop.wait_for(|s| *s) => return,
                }
                if run.elapsed() >= BACKOFF_RESET {
                    backoff = BACKOFF_MIN;
                }
                change(State::Exited, &pid, &mut state);
            }
            Err(e) => {
                tracing::error!("child {}: {e}", sup.name);
                change(State::Backoff, "", &mut state);
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
            }
        }
        tracing::info!("starting child {} again in {:?}", sup.name, backoff);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Finds (by label) or creates the child's container, writes its `/me.json` and starts
/// it; its id and process id.
async fn ensure_started(
    docker: &Docker,
    sup: &Supervised,
    host: &dyn Host,
) -> Result<(String, String), crate::docker::DockerError> {
    let parent_id = sup
        .spec
        .labels
        .iter()
        .find(|(k, _)| k == LABEL_PARENT)
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let id = match docker.find_child(&parent_id, &sup.name).await? {
        Some(id) => {
            tracing::info!("reusing child container {} for {}", short(&id), sup.name);
            id
        }
        None => {
            let id = docker.create(&sup.spec).await?;
            tracing::info!("created child container {} ({})", sup.spec.name, short(&id));
            id
        }
    };
    let inspect = docker.inspect(&id).await?;
    let parent = host.parent_inspect();
    let me = if sup.shares_network {
        serfnode_core::files::child_me_json(&host.node_id(), &parent, &inspect)
    } else {
        serfnode_core::files::child_me_json(&host.node_id(), &inspect, &inspect)
    };
    match me {
        Ok(text) => {
            if let Err(e) = docker.put_file(&id, "/", "me.json", text.as_bytes()).await {
                tracing::warn!("{e}");
            }
        }
        Err(e) => tracing::warn!("child {}: /me.json: {e}", sup.name),
    }
    docker.start(&id).await?;
    let inspect = docker.inspect(&id).await?;
    let pid = inspect
        .pointer("/State/Pid")
        .and_then(serde_json::Value::as_i64)
        .map(|p| p.to_string())
        .unwrap_or_default();
    host.child_inspected(&sup.name, inspect);
    Ok((id, pid))
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(raw: &[&str]) -> Result<Supervised, DockerRunError> {
        docker_run_spec(
            &DockerRun {
                name: "app_docker_run".to_string(),
                raw: raw.join(" "),
                args: raw.iter().map(|s| s.to_string()).collect(),
            },
            "p1",
        )
    }

    #[test]
    fn docker_run_options() {
        let s = run(&[
            "-d",
            "-p",
            "80:8080",
            "-e",
            "A=1",
            "--env=B=2",
            "-v",
            "/x:/y",
            "nginx",
            "sh",
            "-c",
            "x -p",
        ])
        .expect("spec");
        assert_eq!(s.spec.image, "nginx");
        assert_eq!(s.spec.cmd, vec!["sh", "-c", "x -p"]);
        assert_eq!(s.spec.env, vec!["A=1", "B=2"]);
        assert_eq!(s.spec.binds, vec!["/x:/y"]);
        assert_eq!(
            s.spec.port_bindings,
            vec![("8080/tcp".to_string(), vec!["80".to_string()])]
        );
        assert_eq!(s.spec.volumes_from, vec!["p1"]);
        assert_eq!(s.spec.network_mode, None);
        assert!(!s.shares_network);
        assert_eq!(
            run(&["--net", "host", "nginx"]),
            Err(DockerRunError("unsupported option --net".to_string()))
        );
        assert!(run(&["-p"]).is_err());
        assert!(run(&["-d"]).is_err());
        assert!(run(&["-p", "x:80", "nginx"]).is_err());
    }

    #[test]
    fn publish_forms() {
        assert_eq!(parse_publish("80"), Some(("80/tcp".into(), "".into())));
        assert_eq!(
            parse_publish("53:53/udp"),
            Some(("53/udp".into(), "53".into()))
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80"),
            Some(("80/tcp".into(), "8080".into()))
        );
        assert_eq!(parse_publish("80/bogus"), None);
    }

    #[test]
    fn supervisor_event_has_the_original_shape() {
        let p = supervisor_event("redis", State::Starting, State::Running, "412", "n1");
        let v: serde_json::Value = serde_json::from_slice(&p).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"processname": "redis", "groupname": "redis",
                "from_state": "STARTING", "pid": "412",
                "eventname": "PROCESS_STATE_RUNNING", "node": "n1"})
        );
    }

    #[test]
    fn names_are_stable_per_parent() {
        assert_eq!(
            container_name("db", "0123456789abcdef"),
            "db_app_0123456789ab"
        );
    }
}
