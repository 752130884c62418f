//! Queries: tag and node filters decide who answers, relays carry answers through loss,
//! and a partition limits answers to the querier's side.

use crate::common::*;
use serf_core::{Event, QueryParams};
use serf_sim::NodeId;
use std::collections::BTreeSet;
use std::time::Duration;

const SEEDS: std::ops::RangeInclusive<u64> = 1..=24;
const N: usize = 10;

#[derive(Debug, Default)]
struct Outcome {
    acks: BTreeSet<String>,
    responses: BTreeSet<String>,
    bad_payloads: usize,
    done: bool,
}

/// Issues a query from `from` and runs until it is done; collects who acked and answered.
fn query(sim: &mut SerfSim, log: &Log, from: NodeId, params: QueryParams) -> Outcome {
    let start = log.borrow().len();
    let (ltime, id, _) = sim
        .with_core(from, |s, now| s.query(now, "who", b"", &params))
        .expect("query accepted");
    let mine = |ev: &Event| match ev {
        Event::QueryAck {
            ltime: l, id: i, ..
        }
        | Event::QueryResponse {
            ltime: l, id: i, ..
        }
        | Event::QueryDone { ltime: l, id: i } => (*l, *i) == (ltime, id),
        _ => false,
    };
    let done = run_until_log(sim, log, secs(30.0), |l| {
        l[start..]
            .iter()
            .any(|(_, n, ev)| *n == from && matches!(ev, Event::QueryDone { .. }) && mine(ev))
    });
    let mut out = Outcome {
        done,
        ..Outcome::default()
    };
    for (_, n, ev) in &log.borrow()[start..] {
        if *n != from || !mine(ev) {
            continue;
        }
        match ev {
            Event::QueryAck { from, .. } => {
                out.acks.insert(from.clone());
            }
            Event::QueryResponse { from, payload, .. } => {
                if *payload != answer_of(from) {
                    out.bad_payloads += 1;
                }
                out.responses.insert(from.clone());
            }
            _ => {}
        }
    }
    out
}

fn names(sim: &SerfSim, ids: impl IntoIterator<Item = NodeId>) -> BTreeSet<String> {
    ids.into_iter().map(|i| sim.name(i).to_string()).collect()
}

#[test]
fn tag_filter_and_relays_through_loss() {
    let (mut got, mut want) = (0usize, 0usize);
    for seed in SEEDS {
        let (mut sim, log) = serf_sim(seed, |_, _, _| {});
        let ids = converged(&mut sim, N);
        sim.set_loss(0.10);
        let web = names(&sim, ids.iter().copied().filter(|i| i % 2 == 0));
        let params = QueryParams {
            filter_tags: vec![("role".into(), "^web$".into())],
            request_ack: true,
            relay_factor: 3,
            timeout: secs(5.0),
            ..QueryParams::default()
        };
        let out = query(&mut sim, &log, ids[1], params);
        assert!(out.done, "seed {seed}: the query never finished");
        assert_eq!(out.bad_payloads, 0, "seed {seed}");
        assert!(
            out.responses.is_subset(&web),
            "seed {seed}: {:?} answered",
            out.responses
        );
        assert!(
            out.acks.is_subset(&web),
            "seed {seed}: {:?} acked",
            out.acks
        );
        assert!(
            out.responses.len() >= web.len() - 1,
            "seed {seed}: only {:?} of {web:?} answered",
            out.responses
        );
        got += out.responses.len();
        want += web.len();
    }
    eprintln!("tag-filtered query, 10% loss, relay factor 3: {got} of {want} answers");
    assert!(got * 100 >= want * 95, "{got} of {want} answers");
}

#[test]
fn node_filter_picks_exactly_the_named_nodes() {
    for seed in SEEDS {
        let (mut sim, log) = serf_sim(seed, |_, _, _| {});
        let ids = converged(&mut sim, N);
        let chosen = names(&sim, [ids[2], ids[7], ids[9]]);
        let params = QueryParams {
            filter_nodes: chosen.iter().cloned().collect(),
            request_ack: true,
            timeout: secs(3.0),
            ..QueryParams::default()
        };
        let out = query(&mut sim, &log, ids[0], params);
        assert!(out.done, "seed {seed}");
        assert_eq!(out.responses, chosen, "seed {seed}");
        assert_eq!(out.acks, chosen, "seed {seed}");
    }
}

#[test]
fn partition_limits_answers_to_the_querier_side() {
    for seed in SEEDS {
        let (mut sim, log) = serf_sim(seed, |_, _, _| {});
        let ids = converged(&mut sim, N);
        let (left, right): (Vec<NodeId>, Vec<NodeId>) = ids.iter().partition(|&&i| i < N / 2);
        sim.partition(&[left.clone(), right.clone()]);
        let params = QueryParams {
            timeout: secs(2.0),
            ..QueryParams::default()
        };
        let out = query(&mut sim, &log, left[0], params);
        assert!(out.done, "seed {seed}");
        // Half the gossip targets are cut off, so a node may miss a 2 s query; nobody
        // across the partition can answer.
        let reachable = names(&sim, left.iter().copied());
        assert!(
            out.responses.is_subset(&reachable),
            "seed {seed}: {:?}",
            out.responses
        );
        assert!(
            out.responses.len() >= reachable.len() - 2,
            "seed {seed}: {:?}",
            out.responses
        );
        sim.heal();
        // After the partition heals, everyone answers again.
        let ok = sim.run_until(|s| serf_converged(s, &ids), Duration::from_secs(120));
        assert!(ok, "seed {seed}: no reconvergence after heal");
        let out = query(&mut sim, &log, left[0], QueryParams::default());
        assert_eq!(
            out.responses,
            names(&sim, ids.iter().copied()),
            "seed {seed}"
        );
    }
}
