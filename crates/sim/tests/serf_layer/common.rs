//! A cluster of whole Serf machines on the simulator, with every node's events recorded.

use serf_core::{Event, MemberStatus, Serf, SerfConfig};
use serf_membership::Config;
use serf_sim::{NodeId, Sim, PORT};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

pub(crate) type SerfSim = Sim<Serf>;

pub(crate) fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Every event any node emitted: `(time, node, event)`, in order.
pub(crate) type Log = Rc<RefCell<Vec<(Duration, NodeId, Event)>>>;

/// Payload every node answers a query with: its own name.
pub(crate) fn answer_of(name: &str) -> Vec<u8> {
    format!("answer from {name}").into_bytes()
}

/// A simulator of Serf nodes. Even nodes carry `role=web`, odd ones `role=db`. Each node
/// answers every query with [`answer_of`] its name, as an event handler would; `tweak`
/// adjusts each node's memberlist and Serf configuration.
pub(crate) fn serf_sim(
    seed: u64,
    tweak: impl Fn(NodeId, &mut Config, &mut SerfConfig) + 'static,
) -> (SerfSim, Log) {
    let template = Config::lan("", "10.0.0.1".parse().unwrap(), PORT);
    let mut sim = Sim::with_machines(seed, template, move |ctx, mut cfg, node_seed, now| {
        let mut sc = SerfConfig::default();
        let role = if ctx.id % 2 == 0 { "web" } else { "db" };
        sc.tags = vec![("role".to_string(), role.to_string())];
        tweak(ctx.id, &mut cfg, &mut sc);
        Serf::new(cfg, sc, node_seed, now).expect("valid configuration")
    });
    let log: Log = Rc::default();
    let hook_log = Rc::clone(&log);
    sim.set_drive_hook(move |node, serf, now| {
        let mut log = hook_log.borrow_mut();
        while let Some(ev) = serf.poll_event() {
            if let Event::Query { ltime, id, .. } = &ev {
                let answer = answer_of(serf.name());
                // Internal queries never reach here; a late answer is simply refused.
                let _ = serf.respond(now, *ltime, *id, answer);
            }
            log.push((now, node, ev));
        }
    });
    (sim, log)
}

/// Adds `n` nodes named `node-000`..; each joins a random earlier one, 50 ms apart.
pub(crate) fn start(sim: &mut SerfSim, n: usize) -> Vec<NodeId> {
    let mut pick = serf_membership::Rng::new(sim.seed() ^ 0x5e4f);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = sim.add_node(&format!("node-{i:03}"));
        if i > 0 {
            sim.join(id, ids[pick.below(i)]);
        }
        ids.push(id);
        sim.run_for(Duration::from_millis(50));
    }
    ids
}

/// Whether every one of `observers` gives `member` the status `want` (`None`: unknown).
pub(crate) fn all_see(
    sim: &SerfSim,
    observers: &[NodeId],
    member: NodeId,
    want: Option<MemberStatus>,
) -> bool {
    observers.iter().all(|&o| status(sim, o, member) == want)
}

/// The status `observer`'s Serf gives `member`.
pub(crate) fn status(sim: &SerfSim, observer: NodeId, member: NodeId) -> Option<MemberStatus> {
    let name = sim.name(member).to_string();
    sim.core(observer)
        .members()
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.status)
}

/// Every running node's Serf sees exactly `alive` as alive members.
pub(crate) fn serf_converged(sim: &SerfSim, alive: &[NodeId]) -> bool {
    let want: BTreeSet<String> = alive.iter().map(|&i| sim.name(i).to_string()).collect();
    sim.live_nodes().iter().all(|&o| {
        let got: BTreeSet<String> = sim
            .core(o)
            .members()
            .into_iter()
            .filter(|m| m.status == MemberStatus::Alive)
            .map(|m| m.name)
            .collect();
        got == want
    })
}

/// Starts `n` nodes and waits until every Serf sees all of them alive.
pub(crate) fn converged(sim: &mut SerfSim, n: usize) -> Vec<NodeId> {
    let ids = start(sim, n);
    let ok = sim.run_until(|s| serf_converged(s, &ids), secs(60.0));
    assert!(ok, "seed {}: {n} Serf nodes did not converge", sim.seed());
    ids
}

/// Runs until `pred` holds on the log, or `max` of virtual time passed.
pub(crate) fn run_until_log(
    sim: &mut SerfSim,
    log: &Log,
    max: Duration,
    mut pred: impl FnMut(&[(Duration, NodeId, Event)]) -> bool,
) -> bool {
    sim.run_until(|_| pred(&log.borrow()), max)
}
