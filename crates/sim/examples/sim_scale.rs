//! A whole Serf cluster at scale (issue 12): forms `NODES` Serf nodes, sends three user
//! events and a query, crashes 1% of the nodes, and prints one line of `key=value`
//! results: wall time, peak memory, bytes per (node, known member) pair, the user events'
//! 99.9% coverage time next to Serf's model, failure detection times and false failures.
//! The scenario and every figure are defined in `tests/support/scale.rs`.
//!
//! ```text
//! scripts/sim-scale NODES VIRTUAL_SECONDS [LOSS] [SEED]
//! # or
//! cargo run --release -p serf-sim --example sim_scale -- 10000 60 0.1
//! ```
//!
//! Targets at 10,000 nodes and 60 virtual seconds on a 2-core machine: under 10 minutes
//! of wall time and 12 GiB of memory, `event_t99_9_s` within +20% of `model_t99_9_s`,
//! `false_failures=0`. Measured (with eager gossip, 2-core machine, otherwise idle):
//!
//! ```text
//! scripts/sim-scale 10000 60   (7 min 35 s for the whole command, peak RSS 10.5 GiB)
//! nodes=10000 vsecs=60 loss=0 wall_s=441.6 form_wall_s=229.7 rss_mib=10707 bytes_per_pair=112
//! event_t99_9_s=0.264 model_t99_9_s=2.149 event_reach=10000 detect_p99_s=22.629
//! detect_all_s=22.768 killed=100 false_failures=0 query_acks=10000 query_responses=10000 ...
//! scripts/sim-scale 1000 60
//! nodes=1000 vsecs=60 loss=0 wall_s=5.2 form_wall_s=1.8 rss_mib=201 bytes_per_pair=205
//! event_t99_9_s=0.224 model_t99_9_s=1.842 event_reach=1000 detect_p99_s=15.534 ...
//! ```
//!
//! The model is Serf's, for gossip at the ticks only; eager gossip (an extra round as soon
//! as an event is queued) puts ours well under it (1.056 s at 10,000 nodes before).
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The simulation allocates and frees billions of small objects over a large heap
/// (formation, push/pull merges); glibc's allocator spends most of the time coalescing.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/dissemination.rs"]
mod support;

#[path = "../tests/support/scale.rs"]
mod scale;

#[path = "common/args.rs"]
mod args;
use args::arg;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let p = scale::ScaleParams {
        nodes: arg(&args, 0, 1000),
        vsecs: arg(&args, 1, 60.0),
        loss: arg(&args, 2, 0.0),
        seed: arg(&args, 3, 1),
    };
    assert!(p.nodes >= 2, "need at least 2 nodes");
    assert!((0.0..1.0).contains(&p.loss), "loss: a fraction in [0, 1)");
    let r = scale::run(&p);
    println!("{}", r.line());
}
