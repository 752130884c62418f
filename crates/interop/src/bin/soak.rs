//! Soak test: a 10-node mixed cluster (5 Go `serf` agents, 5 of ours) on loopback under a
//! steady stream of user events (5/s), queries (one every 2 s) and membership churn (every
//! 20 s one node, Go or ours in turn, leaves gracefully and a fresh one joins). Every 30 s
//! it prints the resident memory of each agent; at the end the start and end RSS of ours
//! and Go's, and for the agents that stayed the whole run, how many of the events sent
//! were handled (Serf's gossip is best effort: a few may be missed by both).
//!
//! Run: `scripts/soak MINUTES` (not part of the test suite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{work_dir_for_test, Agent, AgentSpec, Impl};
use serf_rpc::{Client, EventRequest, QueryRecordType, QueryRequest};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn rss_kib(pid: u32) -> u64 {
    serf_interop::rss_kib(pid).unwrap_or(0)
}

fn handled(out: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

struct Node {
    agent: Agent,
    out: PathBuf,
    stable: bool,
    rss_start: u64,
}

fn start(
    imp: Impl,
    name: &str,
    join: Option<&str>,
    dir: &Path,
    script: &Path,
    stable: bool,
) -> Node {
    let out = dir.join(format!("{name}.out"));
    let mut spec = AgentSpec::new(imp, name).arg(&format!(
        "-event-handler=user=OUT={} {}",
        out.display(),
        script.display()
    ));
    if let Some(j) = join {
        spec = spec.join(j);
    }
    let agent = Agent::start(spec).unwrap_or_else(|e| panic!("start {name}: {e}"));
    let rss_start = rss_kib(agent.pid());
    Node {
        agent,
        out,
        stable,
        rss_start,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let minutes: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5.0);
    let dir = work_dir_for_test();
    let script = dir.join("handler.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$SERF_USER_EVENT\" >> \"$OUT\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut nodes: Vec<Node> = Vec::new();
    nodes.push(start(Impl::Go, "go0", None, &dir, &script, true));
    let seed = nodes[0].agent.addr();
    for i in 0..10 {
        let (imp, name) = if i % 2 == 0 {
            (Impl::Rust, format!("rs{}", i / 2))
        } else if i < 9 {
            (Impl::Go, format!("go{}", i / 2 + 1))
        } else {
            continue;
        };
        // The last two of each kind churn; the others stay the whole run.
        let stable = !matches!(name.as_str(), "rs3" | "rs4" | "go3" | "go4");
        nodes.push(start(imp, &name, Some(&seed), &dir, &script, stable));
    }
    println!("soak: {} agents, {minutes} min", nodes.len());
    let mut client = Client::connect(&nodes[1].agent.rpc_addr(), "")
        .await
        .expect("rpc");
    let deadline = Instant::now() + Duration::from_secs_f64(minutes * 60.0);
    let mut sent = 0u64;
    let mut queries = 0u64;
    let mut query_acks = 0u64;
    let mut churn = 0usize;
    let mut generation = 0;
    let mut next_query = Instant::now();
    let mut next_churn = Instant::now() + Duration::from_secs(20);
    let mut next_report = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let name = format!("s{sent}");
        client
            .user_event(&EventRequest {
                name,
                payload: None,
                coalesce: false,
            })
            .await
            .expect("event");
        sent += 1;
        if Instant::now() >= next_query {
            next_query += Duration::from_secs(2);
            let stream = client
                .query(&QueryRequest {
                    name: "soak".into(),
                    request_ack: true,
                    timeout_nanos: 1_000_000_000,
                    ..QueryRequest::default()
                })
                .await
                .expect("query");
            queries += 1;
            loop {
                let rec = client.recv(&stream).await.expect("record");
                match rec.kind {
                    QueryRecordType::Ack => query_acks += 1,
                    QueryRecordType::Done => break,
                    _ => {}
                }
            }
        }
        if Instant::now() >= next_churn {
            next_churn += Duration::from_secs(20);
            let churners: Vec<usize> = (0..nodes.len()).filter(|&i| !nodes[i].stable).collect();
            let i = churners[churn % churners.len()];
            churn += 1;
            generation += 1;
            let imp = nodes[i].agent.imp();
            let _ = nodes[i].agent.sigint();
            let _ = nodes[i].agent.wait_exit(Duration::from_secs(10));
            let name = format!(
                "{}-{generation}",
                nodes[i].agent.name().split('-').next().unwrap_or("x")
            );
            nodes[i] = start(imp, &name, Some(&seed), &dir, &script, false);
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(30);
            let line: Vec<String> = nodes
                .iter()
                .map(|n| {
                    format!(
                        "{}={:.1}",
                        n.agent.name(),
                        rss_kib(n.agent.pid()) as f64 / 1024.0
                    )
                })
                .collect();
            println!("rss MiB: {}", line.join(" "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!(
        "sent {sent} events, {queries} queries ({query_acks} acks), {churn} leave+join rounds"
    );
    for n in nodes.iter().filter(|n| n.stable) {
        let got = handled(&n.out);
        let missing = (0..sent)
            .filter(|i| !got.contains(&format!("s{i}")))
            .count();
        println!(
            "{:>4} ({}): RSS {:.1} -> {:.1} MiB, events handled {}/{sent} ({missing} missed)",
            n.agent.name(),
            n.agent.imp(),
            n.rss_start as f64 / 1024.0,
            rss_kib(n.agent.pid()) as f64 / 1024.0,
            sent as usize - missing,
        );
    }
}
