//! Footprint benchmark: a cluster of N Go `serf` agents and a cluster of N of ours, side by
//! side on loopback in the same run; after they converge, samples every agent's resident
//! memory (VmRSS) and CPU time (utime + stime from /proc) over an idle window.
//!
//! Run: `cargo build --release && cargo run --release -p serf-interop --bin footprint
//! [-- N WINDOW_SECS]` (defaults: 10 agents each, 30 s window).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{cpu_ticks, rss_kib, Agent, Cluster, Impl, NodeSpec, DEADLINE, USER_HZ};
use std::time::{Duration, Instant};

struct Sample {
    rss_mean_kib: f64,
    rss_max_kib: u64,
    cpu_pct: f64,
}

fn measure(agents: &[&Agent], window: Duration) -> Sample {
    let pids: Vec<u32> = agents.iter().map(|a| a.pid()).collect();
    let t0: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p).unwrap_or(0)).collect();
    let start = Instant::now();
    let mut rss_sum = 0u64;
    let mut rss_n = 0u64;
    let mut rss_max = 0u64;
    while start.elapsed() < window {
        for &p in &pids {
            if let Some(r) = rss_kib(p) {
                rss_sum += r;
                rss_n += 1;
                rss_max = rss_max.max(r);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let secs = start.elapsed().as_secs_f64();
    let t1: Vec<u64> = pids.iter().map(|&p| cpu_ticks(p).unwrap_or(0)).collect();
    let ticks: u64 = t0.iter().zip(&t1).map(|(a, b)| b.saturating_sub(*a)).sum();
    let cpu_pct = ticks as f64 / USER_HZ as f64 / secs / pids.len() as f64 * 100.0;
    Sample {
        rss_mean_kib: rss_sum as f64 / rss_n.max(1) as f64,
        rss_max_kib: rss_max,
        cpu_pct,
    }
}

fn cluster(imp: Impl, prefix: &str, n: usize) -> Cluster {
    let nodes: Vec<NodeSpec> = (0..n)
        .map(|i| {
            let s = NodeSpec::new(imp, &format!("{prefix}{i}")).tag("role", "bench");
            if i == 0 {
                s
            } else {
                s.join(i - 1)
            }
        })
        .collect();
    Cluster::start_with_log_level(&nodes, None, Some("info")).expect("cluster start")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    let window = Duration::from_secs(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30));
    let ours = serf_interop::our_serf().expect("build ours first: cargo build --release");
    let go = serf_interop::go_serf().expect("install Go serf: apt-get install -y serf");
    println!("ours: {}  go: {}", ours.display(), go.display());
    let go_cluster = cluster(Impl::Go, "go", n);
    let rs_cluster = cluster(Impl::Rust, "rs", n);
    go_cluster
        .wait_converged(DEADLINE)
        .expect("go cluster converged");
    rs_cluster
        .wait_converged(DEADLINE)
        .expect("rust cluster converged");
    // Let start-up gossip settle before measuring the idle state.
    std::thread::sleep(Duration::from_secs(5));
    let go_all = go_cluster.all();
    let rs_all = rs_cluster.all();
    let (g, r) = std::thread::scope(|s| {
        let g = s.spawn(|| measure(&go_all, window));
        let r = s.spawn(|| measure(&rs_all, window));
        (
            g.join().expect("go sampler"),
            r.join().expect("rust sampler"),
        )
    });
    println!(
        "{n} agents each, idle window {}s, loopback",
        window.as_secs()
    );
    println!(
        "{:<8} {:>14} {:>14} {:>16}",
        "impl", "RSS mean MiB", "RSS max MiB", "idle CPU %/agent"
    );
    for (name, x) in [("go", &g), ("rust", &r)] {
        println!(
            "{:<8} {:>14.2} {:>14.2} {:>16.3}",
            name,
            x.rss_mean_kib / 1024.0,
            x.rss_max_kib as f64 / 1024.0,
            x.cpu_pct
        );
    }
    let line = format!(
        "FOOTPRINT n={n} window={}s rss_mean go={:.2}MiB rust={:.2}MiB ratio={:.3} cpu go={:.3}% rust={:.3}% ratio={:.3}",
        window.as_secs(),
        g.rss_mean_kib / 1024.0,
        r.rss_mean_kib / 1024.0,
        r.rss_mean_kib / g.rss_mean_kib,
        g.cpu_pct,
        r.cpu_pct,
        if g.cpu_pct > 0.0 { r.cpu_pct / g.cpu_pct } else { f64::NAN }
    );
    println!("{line}");
    serf_interop::record_measurement(&line);
}
