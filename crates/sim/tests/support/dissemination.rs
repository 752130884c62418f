//! User-event dissemination in a simulated Serf cluster: shared by
//! `tests/dissemination.rs` (reduced, CI) and `examples/dissemination.rs` (1,000 nodes,
//! release). Not a test target of its own (it lives in a subdirectory without `main.rs`).
//!
//! Scenario, per seed:
//! 1. `n` nodes (LAN profile, Serf's memberlist settings, `SerfState` as the delegate)
//!    start `join_gap` apart; node i joins a random earlier node (one push/pull), as an
//!    operator would bring up a fleet. No loss while the cluster forms.
//! 2. Run until every node's memberlist sees all `n` nodes alive and every `SerfState`
//!    has `n` members ("converged"), then until every broadcast queue (memberlist's and
//!    Serf's three) is empty ("quiet"): the event then travels alone, as in Serf's model.
//! 3. Set the datagram loss, let one random node fire a user event, and record for every
//!    node the virtual time its delegate emitted `Event::User` for it (drained through
//!    [`serf_sim::Sim::set_drive_hook`] right after the core handled the packet, so the
//!    time is exact, not sampled). Run until every node has it.
//! 4. Optionally more events on the same cluster (one per entry of [`Params::losses`]):
//!    loss back to 0, wait until quiet again, next event from another random node. The
//!    1,000-node cluster takes a minute of wall time to form; its events are cheap.
#![allow(dead_code)]

use serf_core::{Event, SerfConfig, SerfState};
use serf_membership::{Config, Memberlist, Rng};
use serf_sim::{NodeId, Sim, PORT};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A simulator whose nodes run the Serf delegate.
pub(crate) type SerfSim = Sim<Memberlist<SerfState>>;

/// Serf's convergence model, as drawn by its documentation's convergence simulator
/// (serf.io "Convergence Simulator", `website/.../simulator.js`): after `x` gossip rounds
/// the infected fraction is the logistic
///
/// ```text
/// f(x) = 1 / (1 + (N + 1) * exp(-k * x)),   k = fanout * (1 - loss) * 0.5
/// ```
///
/// (`contact = fanout / N * (1 - loss) * (1 - failed) * 0.5`, exponent `contact * N * x`),
/// one round per gossip interval. Solving `f(x) = q`:
///
/// ```text
/// t_q = interval * ln((N + 1) * q / (1 - q)) / k
/// ```
///
/// With Serf's LAN defaults (200 ms, fanout 3), N = 1000, q = 0.999 this gives 1.842 s at
/// 0% loss and 2.047 s at 10% loss: the issue's 1.84 s and 2.05 s. For smaller N the same
/// formula is the bound "scaled for N" (it grows like ln N, i.e. a constant number of
/// extra rounds per factor of e in cluster size).
pub(crate) fn serf_model_time(
    n: usize,
    loss: f64,
    q: f64,
    interval: Duration,
    fanout: usize,
) -> Duration {
    let k = fanout as f64 * (1.0 - loss) * 0.5;
    let rounds = (((n as f64) + 1.0) * q / (1.0 - q)).ln() / k;
    interval.mul_f64(rounds)
}

/// [`serf_model_time`] with the LAN profile's gossip interval and fanout.
pub(crate) fn serf_model_time_lan(n: usize, loss: f64, q: f64) -> Duration {
    let cfg = lan_template();
    serf_model_time(n, loss, q, cfg.gossip_interval, cfg.gossip_nodes)
}

/// Number of nodes that make up fraction `q` of `n` (rounded up: 99.9% of 1000 = 999,
/// 99.9% of 250 = 250).
pub(crate) fn nodes_for(q: f64, n: usize) -> usize {
    (((q * n as f64) - 1e-9).ceil() as usize).clamp(1, n)
}

/// The LAN template (name and address are set per node by the simulator).
pub(crate) fn lan_template() -> Config {
    #[allow(clippy::unwrap_used)]
    let ip = "10.0.0.1".parse().unwrap();
    Config::lan("", ip, PORT)
}

/// Scenario parameters.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Cluster size.
    pub nodes: usize,
    /// Master seed.
    pub seed: u64,
    /// One user event per entry, fired in this order, each with this datagram loss while
    /// it spreads (the cluster forms, and settles between events, without loss).
    pub losses: Vec<f64>,
    /// Time between two node starts.
    pub join_gap: Duration,
    /// Give up forming the cluster (converged and quiet) after this long.
    pub form_timeout: Duration,
    /// Give up waiting for an event to reach every node after this long.
    pub event_timeout: Duration,
}

impl Params {
    /// Defaults for `nodes` nodes, one event per entry of `losses`.
    pub(crate) fn new(nodes: usize, seed: u64, losses: &[f64]) -> Self {
        Params {
            nodes,
            seed,
            losses: losses.to_vec(),
            join_gap: Duration::from_millis(10),
            form_timeout: Duration::from_secs(600),
            event_timeout: Duration::from_secs(60),
        }
    }
}

/// How the cluster formed. Times are virtual.
#[derive(Debug, Clone)]
pub(crate) struct Formation {
    /// Parameters.
    pub params: Params,
    /// When the last node started its join.
    pub last_join: Duration,
    /// First check (every second) at which every memberlist saw all nodes alive and every
    /// `SerfState` had all members; `None` if it never happened.
    pub converged: Option<Duration>,
    /// First check (every second) at which, in addition, every broadcast queue was empty.
    pub quiet: Option<Duration>,
    /// Wall-clock time of the whole run (formation and events).
    pub wall: Duration,
    /// Simulator events processed (formation and events).
    pub sim_events: u64,
}

impl Formation {
    /// One line for humans.
    pub(crate) fn line(&self) -> String {
        format!(
            "seed {:3} formed: last join {:.2}s, converged +{}, quiet +{} after it | {:.1}s wall, {} sim events",
            self.params.seed,
            self.last_join.as_secs_f64(),
            fmt_since(self.converged, self.last_join),
            fmt_since(self.quiet, self.last_join),
            self.wall.as_secs_f64(),
            self.sim_events,
        )
    }
}

fn fmt_secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "  -   ".into(), |d| format!("{:.3}s", d.as_secs_f64()))
}

fn fmt_since(d: Option<Duration>, from: Duration) -> String {
    fmt_secs(d.map(|d| d.saturating_sub(from)))
}

/// One user event. Times are virtual.
#[derive(Debug, Clone)]
pub(crate) struct Dissemination {
    /// Cluster size.
    pub nodes: usize,
    /// Master seed of the run.
    pub seed: u64,
    /// Index of the event in the run.
    pub index: usize,
    /// Datagram loss while it spread.
    pub loss: f64,
    /// Whether every queue was empty when it fired.
    pub quiet_before: bool,
    /// Smallest and largest `SerfState` member count over all nodes when it fired (this
    /// `N` sets the Serf event queue's transmit limit).
    pub serf_members: (usize, usize),
    /// Smallest memberlist alive count over all nodes when it fired.
    pub min_alive: usize,
    /// Transmit limit of the Serf event queue at the sender: `4 * ceil(log10(N + 1))`.
    pub transmit_limit: u32,
    /// The node that fired it.
    pub sender: NodeId,
    /// When it fired.
    pub fired: Duration,
    /// Delay from firing to `Event::User` on each node that got it, ascending (the sender
    /// itself at 0).
    pub delays: Vec<Duration>,
    /// Datagrams sent / lost to random loss until the last node had it (or the timeout).
    pub packets_sent: u64,
    /// See `packets_sent`.
    pub packets_lost: u64,
}

impl Dissemination {
    /// Time until `ceil(q * n)` nodes (sender included) had the event; `None` if fewer
    /// got it before the timeout.
    pub(crate) fn coverage(&self, q: f64) -> Option<Duration> {
        let k = nodes_for(q, self.nodes);
        self.delays.get(k - 1).copied()
    }

    /// Nodes that never got the event.
    pub(crate) fn missing(&self) -> usize {
        self.nodes - self.delays.len()
    }

    /// One line for humans.
    pub(crate) fn line(&self) -> String {
        format!(
            "seed {:3} event {} loss {:>4.1}% | quiet {} serf members {}..{} alive>={} tl {} | \
             t50 {} t99 {} t99.9 {} t100 {} missing {} | pkts {} lost {}",
            self.seed,
            self.index,
            self.loss * 100.0,
            self.quiet_before,
            self.serf_members.0,
            self.serf_members.1,
            self.min_alive,
            self.transmit_limit,
            fmt_secs(self.coverage(0.5)),
            fmt_secs(self.coverage(0.99)),
            fmt_secs(self.coverage(0.999)),
            fmt_secs(self.coverage(1.0)),
            self.missing(),
            self.packets_sent,
            self.packets_lost,
        )
    }
}

/// First arrival of the watched user event per node, filled by the drive hook.
#[derive(Debug, Default)]
struct Recorder {
    watch: Option<String>,
    first: Vec<Option<Duration>>,
    got: usize,
}

/// Runs the scenario once: forms the cluster, then fires one event per `p.losses` entry.
pub(crate) fn run(p: &Params) -> (Formation, Vec<Dissemination>) {
    let started = Instant::now();
    let n = p.nodes;
    let retransmit_mult = lan_template().retransmit_mult;
    let mut sim: SerfSim = Sim::new(p.seed, lan_template(), move |ctx| {
        SerfState::new(ctx.name.clone(), SerfConfig::default(), retransmit_mult)
    });
    let rec = Rc::new(RefCell::new(Recorder::default()));
    let hook_rec = Rc::clone(&rec);
    sim.set_drive_hook(move |node, ml, now| {
        let mut r = hook_rec.borrow_mut();
        if r.first.len() <= node {
            r.first.resize(node + 1, None);
        }
        // Drain everything (member events too: they would pile up otherwise).
        while let Some(ev) = ml.delegate_mut().poll_event() {
            if let Event::User { name, .. } = ev {
                if r.watch.as_deref() == Some(name.as_str()) && r.first[node].is_none() {
                    r.first[node] = Some(now);
                    r.got += 1;
                }
            }
        }
    });

    // 1. Form the cluster.
    let mut pick = Rng::new(p.seed ^ 0xd155_e311);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = sim.add_node(&format!("node-{i:04}"));
        if i > 0 {
            let seed = ids[pick.below(i)];
            sim.join(id, seed);
        }
        ids.push(id);
        if i + 1 < n {
            sim.run_for(p.join_gap);
        }
    }
    let last_join = sim.now();

    // 2. Converged, then quiet (checked once per virtual second: each check is O(n^2)).
    sim.check_every = Duration::from_secs(1);
    let deadline = last_join + p.form_timeout;
    let converged = sim
        .run_until(|s| all_converged(s, n), p.form_timeout)
        .then(|| sim.now());
    let quiet = if converged.is_some() {
        let left = deadline.saturating_sub(sim.now());
        sim.run_until(|s| all_converged(s, n) && all_quiet(s), left)
            .then(|| sim.now())
    } else {
        None
    };

    // 3. Events, each from a random node once the previous one has settled.
    let mut events = Vec::with_capacity(p.losses.len());
    for (index, &loss) in p.losses.iter().enumerate() {
        if index > 0 {
            sim.set_loss(0.0);
            sim.check_every = Duration::from_secs(1);
            sim.run_until(
                |s| all_converged(s, n) && all_quiet(s),
                Duration::from_secs(120),
            );
        }
        let quiet_before = all_quiet(&sim);
        let members: Vec<usize> = ids
            .iter()
            .map(|&i| sim.core(i).delegate().members().count())
            .collect();
        let serf_members = (
            members.iter().copied().min().unwrap_or(0),
            members.iter().copied().max().unwrap_or(0),
        );
        let min_alive = ids
            .iter()
            .map(|&i| sim.core(i).num_alive())
            .min()
            .unwrap_or(0);
        let sender = ids[pick.below(n)];
        let transmit_limit = serf_membership::queue::retransmit_limit(
            sim.core(sender).config().retransmit_mult,
            members[sender],
        );
        sim.set_loss(loss);
        let before = sim.stats();
        let name = format!("dissemination-{}-{index}", p.seed);
        {
            let mut r = rec.borrow_mut();
            r.watch = Some(name.clone());
            r.first = vec![None; n];
            r.got = 0;
        }
        let fired = sim.now();
        let fire = sim.with_core(sender, |ml, _| {
            ml.delegate_mut().user_event(&name, b"payload", false)
        });
        if let Err(e) = fire {
            panic!("seed {}: user_event failed: {e}", p.seed);
        }
        sim.check_every = Duration::from_millis(10);
        sim.run_until(|_| rec.borrow().got >= n, p.event_timeout);
        let after = sim.stats();
        let mut delays: Vec<Duration> = rec
            .borrow()
            .first
            .iter()
            .flatten()
            .map(|&t| t - fired)
            .collect();
        delays.sort();
        events.push(Dissemination {
            nodes: n,
            seed: p.seed,
            index,
            loss,
            quiet_before,
            serf_members,
            min_alive,
            transmit_limit,
            sender,
            fired,
            delays,
            packets_sent: after.packets_sent - before.packets_sent,
            packets_lost: after.dropped_loss - before.dropped_loss,
        });
    }
    rec.borrow_mut().watch = None;

    let formation = Formation {
        params: p.clone(),
        last_join,
        converged,
        quiet,
        wall: started.elapsed(),
        sim_events: sim.events_processed(),
    };
    (formation, events)
}

/// Runs [`run`] for every seed of `seeds` (`nodes` nodes, one event per `per_cluster`
/// entry) on `threads` threads (each simulation stays on one thread; results do not
/// depend on the thread count). `report` sees each finished cluster. Results are in seed
/// order.
pub(crate) fn run_seeds(
    nodes: usize,
    seeds: std::ops::Range<u64>,
    per_cluster: &[f64],
    threads: usize,
    report: impl Fn(&Formation, &[Dissemination]) + Sync,
) -> Vec<(Formation, Vec<Dissemination>)> {
    let jobs = Mutex::new(seeds.rev().collect::<Vec<u64>>());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            // The guard is consumed by `and_then`: the lock is not held while simulating.
            s.spawn(|| {
                while let Some(seed) = jobs.lock().ok().and_then(|mut j| j.pop()) {
                    let (f, evs) = run(&Params::new(nodes, seed, per_cluster));
                    report(&f, &evs);
                    if let Ok(mut r) = results.lock() {
                        r.push((f, evs));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(f, _)| f.params.seed);
    results
}

/// Every memberlist sees `n` alive nodes and every Serf state has `n` members.
fn all_converged(sim: &SerfSim, n: usize) -> bool {
    sim.ids().all(|i| {
        let ml = sim.core(i);
        ml.num_alive() == n && ml.nodes().count() == n && ml.delegate().members().count() == n
    })
}

/// Every broadcast queue (memberlist's and Serf's) is empty.
fn all_quiet(sim: &SerfSim) -> bool {
    sim.ids().all(|i| {
        let ml = sim.core(i);
        ml.queued_broadcasts() == 0 && ml.delegate().queued() == (0, 0, 0)
    })
}

/// Nearest-rank percentile of ascending `v` (`p` in `[0, 1]`).
pub(crate) fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let k = ((p * v.len() as f64) - 1e-9).ceil().max(1.0) as usize;
    v[k.min(v.len()) - 1]
}

/// `mean p50 p99 p99.9 max` of values in seconds, sorted in place.
pub(crate) fn distribution(v: &mut [f64]) -> String {
    v.sort_by(|a, b| a.total_cmp(b));
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    format!(
        "n={} mean {:.3}s  min {:.3}s  p50 {:.3}s  p99 {:.3}s  p99.9 {:.3}s  max {:.3}s",
        v.len(),
        mean,
        v.first().copied().unwrap_or(f64::NAN),
        percentile(v, 0.5),
        percentile(v, 0.99),
        percentile(v, 0.999),
        v.last().copied().unwrap_or(f64::NAN),
    )
}
