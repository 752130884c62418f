//! What a hostile query filter costs: one Go `serf` agent and one of ours, each alone on
//! loopback, receive QUERIES (default 20) queries whose tag filter is a regular expression
//! that expands to millions of states, `((((a{100}){100}){100}){10})`. Prints the CPU time
//! and the resident-memory growth of each agent while it handles them, and the ratios.
//!
//! Run: `cargo build --release && cargo run --release -p serf-interop --bin regex_cost
//! [-- QUERIES]`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{Agent, AgentSpec, Impl};
use serf_rpc::{Client, QueryRecordType, QueryRequest};
use std::time::Duration;

/// User+system CPU seconds and resident KiB of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = stat.rsplit_once(')').expect("comm").1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the state field.
    let ticks: u64 = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (ticks as f64 / 100.0, rss)
}

async fn hostile_queries(rpc_addr: &str, queries: usize) {
    let mut client = Client::connect(rpc_addr, "").await.expect("connect");
    let request = QueryRequest {
        name: "filtered".into(),
        filter_tags: Some(vec![("role".into(), "((((a{100}){100}){100}){10})".into())]),
        timeout_nanos: 50_000_000,
        ..QueryRequest::default()
    };
    for _ in 0..queries {
        let stream = client.query(&request).await.expect("query");
        loop {
            let rec = client.recv(&stream).await.expect("record");
            if rec.kind == QueryRecordType::Done {
                break;
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let queries: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let mut results = Vec::new();
    for imp in [Impl::Go, Impl::Rust] {
        let agent = Agent::start(AgentSpec::new(imp, "regex").tag("role", "web"))
            .unwrap_or_else(|e| panic!("start {imp}: {e}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (cpu0, rss0) = usage(agent.pid());
        hostile_queries(&agent.rpc_addr(), queries).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (cpu1, rss1) = usage(agent.pid());
        let cpu = cpu1 - cpu0;
        let rss = rss1.saturating_sub(rss0) as f64 / 1024.0;
        println!(
            "{imp:>4}: {queries} hostile filters: {cpu:.2} s CPU, RSS {:.1} -> {:.1} MiB (+{rss:.1} MiB)",
            rss0 as f64 / 1024.0,
            rss1 as f64 / 1024.0
        );
        results.push((cpu, rss));
    }
    println!(
        "ours/Go: CPU {:.2}x, RSS growth {:.1} vs {:.1} MiB",
        results[1].0 / results[0].0.max(0.01),
        results[1].1,
        results[0].1
    );
}
