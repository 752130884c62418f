//! A whole Serf cluster at scale on the simulator: shared by `examples/sim_scale.rs`
//! (`scripts/sim-scale`, the 10,000-node benchmark) and `tests/scale.rs` (200 nodes, CI).
//! Not a test target of its own (it lives in a subdirectory without `main.rs`).
//!
//! Scenario (`T` virtual seconds, datagram loss `L`):
//!
//! 1. **Formation, at virtual time 0.** `N` Serf nodes (LAN profile, protocol 5, tags
//!    `role=web`/`role=db`) start. Node 0 merges every other node's join push/pull (as
//!    its stream handler would), then every node merges node 0's full state (the reply a
//!    push/pull with node 0 now gets) and calls `join_finished` (queueing its Serf join
//!    intent). The exchanges go through the cores' stream handlers with no network delay
//!    and no clock advance. Every broadcast queue is then emptied
//!    ([`serf_core::Serf::discard_broadcasts`]): it holds only alive messages and join
//!    intents about nodes everyone already knows, which a real cluster would keep
//!    retransmitting for `N * retransmit_limit` transmissions per node (about ten virtual
//!    minutes at 10,000 nodes) before going quiet. The cluster starts quiet, as Serf's
//!    convergence model assumes. Each node's periodic push/pull is re-armed at a random
//!    point of its cluster-size-scaled interval (`rephase_push_pull`), where it sits in a
//!    cluster that has run for a while (a node arms it at start with the unscaled 30 s,
//!    which would make every node push/pull its full state within the first 30 s).
//! 2. From then on the loss is `L` and the simulator runs every node's timers and packets.
//!    At 1 s, 4 s and 7 s a random node fires a user event; the drive hook records the
//!    exact virtual time each node's Serf emits it. `event_t99_9_s` is the worst of the
//!    three times until 99.9% of the nodes (sender included) had the event; the model is
//!    `serf_model_time_lan(N, L, 0.999)` (`support/dissemination.rs`).
//! 3. At 10 s a random node issues a query (default timeout, acks requested); every node
//!    answers it. Acks and responses the querier received are reported.
//! 4. At `max(12 s, 0.4 T)` 1% of the nodes (at least one) crash. For each crashed node,
//!    the time from the crash until 99% of the live nodes' Serf emitted `MemberFailed`
//!    for it; `detect_p99_s` is the worst of these over the crashed nodes (`none` if one
//!    never reached 99% before `T`). `detect_all_s` is the time until every live node
//!    marked every crashed node failed.
//! 5. `false_failures` counts `MemberFailed`/`MemberLeave` events, anywhere, about a node
//!    that did not crash.
//!
//! `rss_mib` is the process's peak resident set (`VmHWM`); `bytes_per_pair` is (peak −
//! resident set before the first node started) / N².
#![allow(dead_code)]

use crate::support::{nodes_for, serf_model_time_lan};
use serf_core::{Event, QueryParams, Serf, SerfConfig};
use serf_membership::{Config, Rng, StreamPurpose};
use serf_sim::{NodeId, Sim, PORT};
use serf_wire::stream::StreamMsg;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Scenario parameters.
#[derive(Debug, Clone)]
pub(crate) struct ScaleParams {
    /// Cluster size.
    pub nodes: usize,
    /// Virtual seconds simulated after formation.
    pub vsecs: f64,
    /// Datagram loss after formation.
    pub loss: f64,
    /// Master seed.
    pub seed: u64,
}

/// What a run measured (times in seconds).
#[derive(Debug, Clone)]
pub(crate) struct ScaleResult {
    /// Parameters.
    pub params: ScaleParams,
    /// Wall time of the whole run, and of the formation alone.
    pub wall_s: f64,
    /// See `wall_s`.
    pub form_wall_s: f64,
    /// Peak resident set, MiB.
    pub rss_mib: f64,
    /// (Peak − baseline resident set) / N².
    pub bytes_per_pair: f64,
    /// Worst 99.9% coverage time over the user events (`None`: one never got there).
    pub event_t99_9: Option<f64>,
    /// Fewest nodes any user event reached.
    pub event_reach: usize,
    /// Serf's model for 99.9% coverage.
    pub model_t99_9: f64,
    /// Worst (over crashed nodes) time until 99% of live nodes marked it failed.
    pub detect_p99: Option<f64>,
    /// Time until every live node marked every crashed node failed.
    pub detect_all: Option<f64>,
    /// Crashed nodes.
    pub killed: usize,
    /// Failed/left events about nodes that did not crash.
    pub false_failures: usize,
    /// Acks and responses the querier got.
    pub query_acks: usize,
    /// See `query_acks`.
    pub query_responses: usize,
    /// Simulator events processed.
    pub sim_events: u64,
    /// Datagrams sent after formation.
    pub packets: u64,
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "none".to_string(), |x| format!("{x:.3}"))
}

impl ScaleResult {
    /// The one-line summary (`key=value` pairs).
    pub(crate) fn line(&self) -> String {
        format!(
            "nodes={} vsecs={} loss={} wall_s={:.1} form_wall_s={:.1} rss_mib={:.0} \
             bytes_per_pair={:.0} event_t99_9_s={} model_t99_9_s={:.3} event_reach={} \
             detect_p99_s={} detect_all_s={} killed={} false_failures={} query_acks={} \
             query_responses={} sim_events={} packets={}",
            self.params.nodes,
            self.params.vsecs,
            self.params.loss,
            self.wall_s,
            self.form_wall_s,
            self.rss_mib,
            self.bytes_per_pair,
            opt(self.event_t99_9),
            self.model_t99_9,
            self.event_reach,
            opt(self.detect_p99),
            opt(self.detect_all),
            self.killed,
            self.false_failures,
            self.query_acks,
            self.query_responses,
            self.sim_events,
            self.packets,
        )
    }
}

/// `VmRSS` or `VmHWM` of this process in KiB (0 where `/proc` is missing).
pub(crate) fn proc_status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The node name of slot `i` (the slot can be recovered from it, see [`slot_of`]).
fn name_of(i: usize) -> String {
    format!("node-{i:05}")
}

fn slot_of(name: &str) -> Option<usize> {
    name.strip_prefix("node-")?.parse().ok()
}

const NONE: u64 = u64::MAX;

/// What the drive hook records.
#[derive(Debug, Default)]
struct Rec {
    /// Names of the watched user events.
    events: Vec<String>,
    /// Per event, per node: first emission (ns of virtual time) or `NONE`.
    event_first: Vec<Vec<u64>>,
    /// Per node: index among the crashed nodes, or `usize::MAX`.
    killed_idx: Vec<usize>,
    /// Per crashed node, per observer: first `MemberFailed` (ns) or `NONE`.
    failed_first: Vec<Vec<u64>>,
    false_failures: usize,
    /// The querier and its query, once issued.
    query: Option<(NodeId, u64, u32)>,
    acks: usize,
    responses: usize,
}

impl Rec {
    fn on_event(&mut self, node: NodeId, now: Duration, ev: &Event) {
        let t = now.as_nanos() as u64;
        match ev {
            Event::User { name, .. } => {
                if let Some(i) = self.events.iter().position(|e| e == name) {
                    let slot = &mut self.event_first[i][node];
                    if *slot == NONE {
                        *slot = t;
                    }
                }
            }
            Event::MemberFailed(m) | Event::MemberLeave(m) => {
                let k = slot_of(&m.name)
                    .and_then(|s| self.killed_idx.get(s).copied())
                    .unwrap_or(usize::MAX);
                if k == usize::MAX {
                    self.false_failures += 1;
                } else if matches!(ev, Event::MemberFailed(_)) {
                    let slot = &mut self.failed_first[k][node];
                    if *slot == NONE {
                        *slot = t;
                    }
                }
            }
            Event::QueryAck { ltime, id, .. } if self.query == Some((node, *ltime, *id)) => {
                self.acks += 1;
            }
            Event::QueryResponse { ltime, id, .. } if self.query == Some((node, *ltime, *id)) => {
                self.responses += 1;
            }
            _ => {}
        }
    }
}

/// Nearest-rank time (s since `from_ns`) by which `need` of `times` were set.
fn time_to(times: &[u64], need: usize, from_ns: u64) -> Option<f64> {
    let mut v: Vec<u64> = times.iter().copied().filter(|&t| t != NONE).collect();
    if v.len() < need || need == 0 {
        return None;
    }
    v.sort_unstable();
    Some(v[need - 1].saturating_sub(from_ns) as f64 / 1e9)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Decodes a framed stream message with `node`'s stream options.
fn decode(sim: &Sim<Serf>, node: NodeId, buf: &[u8]) -> StreamMsg {
    match sim.core(node).memberlist().decode_stream(buf) {
        Ok((m, _)) => m,
        Err(e) => panic!("formation: undecodable push/pull: {e}"),
    }
}

/// Formation at virtual time 0 (see the module docs).
fn form(sim: &mut Sim<Serf>, ids: &[NodeId]) {
    let Some((&seed, rest)) = ids.split_first() else {
        return;
    };
    for &i in rest {
        let req = sim.with_core(i, |s, _| s.join_request(false));
        let msg = decode(sim, seed, &req);
        // The seed merges the joiner's state as its stream handler would; the reply it
        // would build is superseded by the full state every node merges below.
        let r = sim.with_core(seed, |s, now| {
            s.handle_stream_result(now, StreamPurpose::PushPull, Ok(msg))
        });
        if let Err(e) = r {
            panic!("formation: the seed could not merge node {i}: {e}");
        }
    }
    sim.with_core(seed, |s, _| s.discard_broadcasts());
    let full = sim.with_core(seed, |s, _| s.join_request(false));
    let StreamMsg::PushPull(full) = decode(sim, seed, &full) else {
        panic!("formation: the seed's state is not a push/pull");
    };
    for &i in rest {
        let r = sim.with_core(i, |s, now| {
            // What `handle_stream_result` does with a push/pull reply, without a copy of
            // the state per node.
            let r = s.memberlist_mut().merge_push_pull(now, &full);
            s.join_finished(now, 1);
            s.discard_broadcasts();
            s.memberlist_mut().rephase_push_pull(now);
            r
        });
        if let Err(e) = r {
            panic!("formation: node {i} could not merge the seed's state: {e}");
        }
    }
    sim.with_core(seed, |s, now| {
        s.discard_broadcasts();
        s.memberlist_mut().rephase_push_pull(now);
    });
}

/// Runs the scenario once.
pub(crate) fn run(p: &ScaleParams) -> ScaleResult {
    let started = Instant::now();
    let baseline_kib = proc_status_kib("VmRSS");
    let n = p.nodes.max(2);
    let template = Config::lan("", std::net::Ipv4Addr::new(10, 0, 0, 1).into(), PORT);
    let mut sim: Sim<Serf> = Sim::with_machines(p.seed, template, |ctx, cfg, seed, now| {
        let mut sc = SerfConfig::default();
        let role = if ctx.id % 2 == 0 { "web" } else { "db" };
        sc.tags = vec![("role".to_string(), role.to_string())];
        match Serf::new(cfg, sc, seed, now) {
            Ok(s) => s,
            Err(e) => panic!("invalid Serf configuration: {e}"),
        }
    });
    let rec = Rc::new(RefCell::new(Rec {
        killed_idx: vec![usize::MAX; n],
        ..Rec::default()
    }));
    let hook_rec = Rc::clone(&rec);
    sim.set_drive_hook(move |node, serf, now| {
        let mut r = hook_rec.borrow_mut();
        while let Some(ev) = serf.poll_event() {
            if let Event::Query { ltime, id, .. } = &ev {
                // A late answer is refused; nothing to do about it here.
                let _ = serf.respond(now, *ltime, *id, b"ok".to_vec());
            }
            r.on_event(node, now, &ev);
        }
    });

    let ids: Vec<NodeId> = (0..n).map(|i| sim.add_node(&name_of(i))).collect();
    form(&mut sim, &ids);
    let form_wall_s = started.elapsed().as_secs_f64();
    sim.set_loss(p.loss);
    let before = sim.stats();
    let mut pick = Rng::new(p.seed ^ 0x5ca1_ab1e);

    // User events.
    let mut fired = Vec::new();
    for (i, at) in [1.0, 4.0, 7.0].into_iter().enumerate() {
        sim.run_for(secs(at).saturating_sub(sim.now()));
        let sender = ids[pick.below(n)];
        let name = format!("scale-event-{i}");
        {
            let mut r = rec.borrow_mut();
            r.events.push(name.clone());
            r.event_first.push(vec![NONE; n]);
        }
        fired.push(sim.now().as_nanos() as u64);
        if let Err(e) = sim.with_core(sender, |s, _| s.user_event(&name, b"payload", false)) {
            panic!("user event refused: {e}");
        }
    }

    // A query.
    sim.run_for(secs(10.0).saturating_sub(sim.now()));
    let querier = ids[pick.below(n)];
    let params = QueryParams {
        request_ack: true,
        ..QueryParams::default()
    };
    match sim.with_core(querier, |s, now| s.query(now, "scale-query", b"", &params)) {
        Ok((ltime, id, _)) => rec.borrow_mut().query = Some((querier, ltime, id)),
        Err(e) => panic!("query refused: {e}"),
    }

    // Crash 1%.
    let kill_at = (p.vsecs * 0.4).max(12.0);
    sim.run_for(secs(kill_at).saturating_sub(sim.now()));
    let k = (n / 100).max(1);
    let mut victims: Vec<NodeId> = Vec::with_capacity(k);
    while victims.len() < k {
        let v = ids[pick.below(n)];
        if !victims.contains(&v) {
            victims.push(v);
        }
    }
    {
        let mut r = rec.borrow_mut();
        for (j, &v) in victims.iter().enumerate() {
            r.killed_idx[v] = j;
        }
        r.failed_first = vec![vec![NONE; n]; k];
    }
    let killed_ns = sim.now().as_nanos() as u64;
    for &v in &victims {
        sim.crash(v);
    }
    sim.run_for(secs(p.vsecs.max(kill_at)).saturating_sub(sim.now()));

    // Results.
    let r = rec.borrow();
    let need = nodes_for(0.999, n);
    let mut event_t99_9 = Some(0.0f64);
    let mut event_reach = n;
    for (times, &t0) in r.event_first.iter().zip(&fired) {
        event_reach = event_reach.min(times.iter().filter(|&&t| t != NONE).count());
        event_t99_9 = match (event_t99_9, time_to(times, need, t0)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let live: Vec<NodeId> = ids
        .iter()
        .copied()
        .filter(|&i| r.killed_idx[i] == usize::MAX)
        .collect();
    let need99 = nodes_for(0.99, live.len());
    let mut detect_p99 = Some(0.0f64);
    let mut detect_all = Some(0.0f64);
    for per in &r.failed_first {
        let seen: Vec<u64> = live.iter().map(|&o| per[o]).collect();
        detect_p99 = match (detect_p99, time_to(&seen, need99, killed_ns)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        detect_all = match (detect_all, time_to(&seen, seen.len(), killed_ns)) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
    }
    let peak_kib = proc_status_kib("VmHWM");
    let pairs = (n * n) as f64;
    let result = ScaleResult {
        params: p.clone(),
        wall_s: started.elapsed().as_secs_f64(),
        form_wall_s,
        rss_mib: peak_kib as f64 / 1024.0,
        bytes_per_pair: peak_kib.saturating_sub(baseline_kib) as f64 * 1024.0 / pairs,
        event_t99_9,
        event_reach,
        model_t99_9: serf_model_time_lan(n, p.loss, 0.999).as_secs_f64(),
        detect_p99,
        detect_all,
        killed: k,
        false_failures: r.false_failures,
        query_acks: r.acks,
        query_responses: r.responses,
        sim_events: sim.events_processed(),
        packets: sim.stats().packets_sent - before.packets_sent,
    };
    drop(r);
    // Freeing N² records one by one takes minutes at 10,000 nodes; the caller is about
    // to report and exit, so the simulation is left to the end of the process.
    std::mem::forget(sim);
    result
}
