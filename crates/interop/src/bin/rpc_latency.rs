//! RPC latency benchmark: one Go `serf` agent and one of ours, each alone on loopback; a
//! client (`serf_rpc::Client`) sends queries that ask for acks and times how long the
//! local ack and the end of the query take to arrive.
//!
//! Run: `cargo build --release && cargo run --release -p serf-interop --bin rpc_latency
//! [-- QUERIES]` (default 20). Prints the median and the slowest run for each, and the
//! ratio ours / Go's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{Agent, AgentSpec, Impl};
use serf_rpc::{Client, QueryRecordType, QueryRequest};
use std::time::{Duration, Instant};

/// Milliseconds to the ack and to `done`, per query.
async fn measure(rpc_addr: &str, queries: usize) -> Vec<(f64, f64)> {
    let mut client = Client::connect(rpc_addr, "").await.expect("connect");
    let request = QueryRequest {
        name: "latency".into(),
        request_ack: true,
        timeout_nanos: 200_000_000,
        ..QueryRequest::default()
    };
    let mut out = Vec::with_capacity(queries);
    for _ in 0..queries {
        let started = Instant::now();
        let stream = client.query(&request).await.expect("query");
        let mut ack = None;
        loop {
            let rec = client.recv(&stream).await.expect("record");
            match rec.kind {
                QueryRecordType::Ack if ack.is_none() => ack = Some(started.elapsed()),
                QueryRecordType::Done => break,
                _ => {}
            }
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        out.push((ack.map_or(f64::NAN, ms), ms(started.elapsed())));
    }
    out
}

fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let queries: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let mut acks = Vec::new();
    for imp in [Impl::Go, Impl::Rust] {
        let agent = Agent::start(AgentSpec::new(imp, "latency").log_level(Some("info")))
            .unwrap_or_else(|e| panic!("start {imp}: {e}"));
        let runs = measure(&agent.rpc_addr(), queries).await;
        let (ack_med, ack_max) = median(runs.iter().map(|r| r.0).collect());
        let (done_med, _) = median(runs.iter().map(|r| r.1).collect());
        println!(
            "{imp:>4}: local query ack median {ack_med:.2} ms (slowest {ack_max:.2} ms), query done (200 ms timeout) median {done_med:.1} ms, {queries} queries"
        );
        acks.push(ack_med);
    }
    println!("ack latency ratio ours/Go: {:.2}", acks[1] / acks[0]);
}
