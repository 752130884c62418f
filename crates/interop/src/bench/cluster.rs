//! Clusters for the benchmark: agents spawned all at once, watched through persistent RPC
//! connections (no CLI process per poll), with per-agent "first time it saw X" timings.

use crate::{describe_status, Agent, AgentSpec, Impl, STARTUP_TIMEOUT};
use serf_rpc::{Client, Member, StreamEvent};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};

/// Deadline for one RPC call.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(10);

/// Which earlier agents a joining agent `-join`s at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPattern {
    /// Every agent joins the first one.
    First,
    /// Every agent joins the first one and a random earlier one (the latter may not be up
    /// yet: a start-up join succeeds when any address answers).
    FirstAndRandom,
}

/// A predicate on one agent's member list.
pub type ViewPred = Arc<dyn Fn(&[Member]) -> bool + Send + Sync>;

/// When each watched agent first satisfied a condition, measured from a common instant.
#[derive(Debug, Clone)]
pub struct Reached {
    /// Per agent: the time, or why it never did before the deadline.
    pub times: Vec<Result<Duration, String>>,
    /// The deadline that applied.
    pub deadline: Duration,
}

impl Reached {
    /// How many agents got there.
    pub fn count(&self) -> usize {
        self.times.iter().filter(|t| t.is_ok()).count()
    }

    /// The time the last agent got there, or `Err` saying how many did by the deadline.
    pub fn last(&self) -> Result<Duration, String> {
        let ok: Vec<Duration> = self.times.iter().filter_map(|t| t.clone().ok()).collect();
        if ok.len() == self.times.len() {
            return ok
                .into_iter()
                .max()
                .ok_or_else(|| "no agents watched".to_string());
        }
        let first_err = self
            .times
            .iter()
            .find_map(|t| t.clone().err())
            .unwrap_or_default();
        Err(format!(
            "not within {}s ({}/{}): {}",
            self.deadline.as_secs(),
            ok.len(),
            self.times.len(),
            first_err
        ))
    }

    /// The median over the agents (lower median), if every agent got there.
    pub fn median(&self) -> Result<Duration, String> {
        self.last()?;
        let mut ok: Vec<Duration> = self.times.iter().filter_map(|t| t.clone().ok()).collect();
        ok.sort();
        Ok(ok[(ok.len() - 1) / 2])
    }
}

/// One delivery of a user event on some agent's RPC event stream.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Index of the agent in its [`BenchCluster`].
    pub node: usize,
    /// Event name.
    pub name: String,
    /// Event payload.
    pub payload: Vec<u8>,
    /// When the benchmark read it.
    pub at: Instant,
}

/// `stream user` subscriptions on a set of agents, read by background tasks (aborted,
/// and their connections closed, on drop).
#[derive(Debug)]
pub struct Deliveries {
    /// Every delivery, in the order read.
    pub rx: mpsc::UnboundedReceiver<Delivery>,
    _tasks: JoinSet<()>,
}

/// A cluster of one implementation, with an RPC connection per agent.
#[derive(Debug)]
pub struct BenchCluster {
    /// Implementation.
    pub imp: Impl,
    /// The agents (killed and reaped when the last reference goes).
    pub agents: Vec<Arc<Agent>>,
    clients: Vec<Option<Client>>,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn spec(imp: Impl, name: &str, args: &[String]) -> AgentSpec {
    let mut s = AgentSpec::new(imp, name).log_level(Some("info"));
    for a in args {
        s = s.arg(a);
    }
    s
}

/// `12 members (10 alive, 2 failed)`.
fn tally(view: &[Member]) -> String {
    let mut by_status: std::collections::BTreeMap<&str, usize> = Default::default();
    for m in view {
        *by_status.entry(m.status.as_str()).or_default() += 1;
    }
    let parts: Vec<String> = by_status.iter().map(|(s, k)| format!("{k} {s}")).collect();
    format!("{} members ({})", view.len(), parts.join(", "))
}

/// Connects to `agent`'s RPC, retrying until `deadline`, and returns the connection once
/// its member list includes the agent itself. Fails early if the process exits.
pub async fn connect_ready(agent: &Agent, deadline: Instant) -> Result<Client, String> {
    let addr = agent.rpc_addr();
    let mut last;
    loop {
        if let Some(st) = agent.try_exit_status() {
            return Err(format!(
                "{} exited ({}); log {}:\n{}",
                agent.name(),
                describe_status(&st),
                agent.log_path().display(),
                agent.log_tail(8)
            ));
        }
        match timeout(RPC_TIMEOUT, Client::connect(&addr, "")).await {
            Ok(Ok(mut c)) => match timeout(RPC_TIMEOUT, c.members()).await {
                Ok(Ok(ms)) if ms.iter().any(|m| m.name == agent.name()) => return Ok(c),
                Ok(Ok(_)) => last = "its members lack itself".into(),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "members timed out".into(),
            },
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "connect timed out".into(),
        }
        if Instant::now() >= deadline {
            return Err(format!("{} RPC not ready: {last}", agent.name()));
        }
        sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a view lists exactly the `names` all alive (any other member must not be alive).
pub fn all_alive(names: Arc<HashSet<String>>) -> ViewPred {
    Arc::new(move |view: &[Member]| {
        view.iter()
            .filter(|m| m.status == "alive" && names.contains(&m.name))
            .count()
            == names.len()
    })
}

/// Whether a view lists `name` with `status`.
pub fn lists_as(name: &str, status: &str) -> ViewPred {
    let (name, status) = (name.to_string(), status.to_string());
    Arc::new(move |view: &[Member]| view.iter().any(|m| m.name == name && m.status == status))
}

impl BenchCluster {
    /// Starts agent 0 and waits for its RPC, then spawns agents `1..n` at once (each
    /// `-join`ing per `pattern`) and waits until every agent lists all `n` alive. Returns
    /// the cluster and, measured from the moment the other agents were spawned, when each
    /// agent first did. `args` go to every agent.
    pub async fn start(
        imp: Impl,
        prefix: &str,
        n: usize,
        pattern: JoinPattern,
        args: &[String],
        deadline: Duration,
    ) -> Result<(BenchCluster, Reached), String> {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        let mut seed = None;
        for attempt in 1..=3 {
            let agent = Agent::spawn(spec(imp, &names[0], args))?;
            match connect_ready(&agent, Instant::now() + STARTUP_TIMEOUT).await {
                Ok(c) => {
                    seed = Some((agent, c));
                    break;
                }
                Err(e) if attempt < 3 && e.to_ascii_lowercase().contains("in use") => {
                    agent.kill9();
                }
                Err(e) => return Err(e),
            }
        }
        let (seed, seed_client) = seed.ok_or("seed agent did not start")?;
        let mut agents = vec![Arc::new(seed)];
        let mut clients = vec![Some(seed_client)];
        let mut rng = u64::from(std::process::id()) << 20 | n as u64 | 1;
        let since = Instant::now();
        for (i, name) in names.iter().enumerate().skip(1) {
            let mut s = spec(imp, name, args).join(&agents[0].addr());
            if pattern == JoinPattern::FirstAndRandom && i >= 2 {
                let j = 1 + (xorshift(&mut rng) % (i as u64 - 1)) as usize;
                s = s.join(&agents[j].addr());
            }
            agents.push(Arc::new(Agent::spawn(s)?));
            clients.push(None);
        }
        let mut cluster = BenchCluster {
            imp,
            agents,
            clients,
        };
        let all: Vec<usize> = (0..n).collect();
        let pred = all_alive(Arc::new(names.into_iter().collect()));
        let reached = cluster.wait_views(&all, pred, since, deadline).await;
        Ok((cluster, reached))
    }

    /// Number of agents.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether there are no agents.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// The gossip ports of all agents.
    pub fn ports(&self) -> Vec<u16> {
        self.agents.iter().map(|a| a.port()).collect()
    }

    /// The process ids of all agents.
    pub fn pids(&self) -> Vec<u32> {
        self.agents.iter().map(|a| a.pid()).collect()
    }

    /// The RPC connection to agent `i` (connecting if there is none).
    pub async fn client(&mut self, i: usize) -> Result<&mut Client, String> {
        if self.clients[i].is_none() {
            let c = connect_ready(&self.agents[i], Instant::now() + STARTUP_TIMEOUT).await?;
            self.clients[i] = Some(c);
        }
        self.clients[i]
            .as_mut()
            .ok_or_else(|| "no client".to_string())
    }

    /// Polls the member lists of the agents `idx` (concurrently, each every `poll`, which
    /// grows with the cluster size) until each satisfies `pred` or `deadline` passes.
    /// Times are measured from `since`.
    pub async fn wait_views(
        &mut self,
        idx: &[usize],
        pred: ViewPred,
        since: Instant,
        deadline: Duration,
    ) -> Reached {
        let poll = Duration::from_millis((2 * self.agents.len() as u64).max(50));
        let end = since + deadline;
        let mut set = JoinSet::new();
        for &i in idx {
            let agent = Arc::clone(&self.agents[i]);
            let client = self.clients[i].take();
            let pred = Arc::clone(&pred);
            set.spawn(async move {
                let mut client = match client {
                    Some(c) => c,
                    None => match connect_ready(&agent, end).await {
                        Ok(c) => c,
                        Err(e) => return (i, None, Err(e)),
                    },
                };
                loop {
                    let last = match timeout(RPC_TIMEOUT, client.members()).await {
                        Ok(Ok(view)) if pred(&view) => {
                            return (i, Some(client), Ok(since.elapsed()));
                        }
                        Ok(Ok(view)) => format!("{} sees {}", agent.name(), tally(&view)),
                        Ok(Err(e)) => format!("{}: {e}", agent.name()),
                        Err(_) => format!("{}: members timed out", agent.name()),
                    };
                    if Instant::now() >= end {
                        return (i, Some(client), Err(last));
                    }
                    sleep(poll).await;
                }
            });
        }
        let mut times: Vec<(usize, Result<Duration, String>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, client, t)) => {
                    self.clients[i] = client;
                    times.push((i, t));
                }
                Err(e) => times.push((usize::MAX, Err(format!("poller failed: {e}")))),
            }
        }
        times.sort_by_key(|t| t.0);
        Reached {
            times: times.into_iter().map(|t| t.1).collect(),
            deadline,
        }
    }

    /// Subscribes to user events on every agent (each on its own connection); returns once
    /// all subscriptions are confirmed.
    pub async fn subscribe_user_events(&self) -> Result<Deliveries, String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = JoinSet::new();
        for (node, agent) in self.agents.iter().enumerate() {
            let mut c = timeout(RPC_TIMEOUT, Client::connect(&agent.rpc_addr(), ""))
                .await
                .map_err(|_| format!("{}: connect timed out", agent.name()))?
                .map_err(|e| format!("{}: {e}", agent.name()))?;
            let handle = timeout(RPC_TIMEOUT, c.stream("user"))
                .await
                .map_err(|_| format!("{}: stream timed out", agent.name()))?
                .map_err(|e| format!("{}: stream: {e}", agent.name()))?;
            let tx = tx.clone();
            tasks.spawn(async move {
                while let Ok(ev) = c.recv(&handle).await {
                    if let StreamEvent::User { name, payload, .. } = ev {
                        let d = Delivery {
                            node,
                            name,
                            payload,
                            at: Instant::now(),
                        };
                        if tx.send(d).is_err() {
                            break;
                        }
                    }
                }
            });
        }
        Ok(Deliveries { rx, _tasks: tasks })
    }
}
