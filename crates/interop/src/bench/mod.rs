//! `scripts/bench`: clusters of our agents and of Go's `serf` on loopback, started one at
//! a time and alternating (ours, Go, ours, Go, …), measured the same way, and one markdown
//! table of Go's figure, ours and the ratio ours / Go.
//!
//! Run: `scripts/bench [--quick]` (builds `serf` and the `bench` bin in release mode, then
//! runs `target/<triple>/release/bench`). `--quick` runs each measurement once, at smaller sizes,
//! in under five minutes on two cores; the full run repeats each three times and reports
//! medians. Without Go's `serf` (`/usr/bin/serf`, `SERF_GO_BIN`) only ours is measured.
//! Agent logs: `<target>/interop-logs/bench/`. `--tails [--runs N]` runs only the
//! worst-case measurements of [`tails`] instead, and `--events [--runs K]` only the
//! user-event latency pooled over many fresh clusters ([`events`]).
//!
//! What is measured (N = 10 unless said otherwise):
//! * join convergence: agent 0 started; then N−1 agents spawned at once, each `-join`ing
//!   agent 0; time from that spawn until every agent lists all N alive (polled over RPC).
//! * idle: after a settling pause, VmRSS (mean over agents and samples), CPU time
//!   (`utime + stime`) and bytes on the wire per agent over a window ([`wire`]).
//! * user-event latency: an event sent over RPC to agent 0; time until the last agent's
//!   RPC event stream (`stream user`) delivers it; at N=10, and on clusters of 3 and 30.
//! * query latency: `query` over RPC to agent 0 with acks; time until all N acks and
//!   until all N responses (every agent runs the handler `echo ok` for it).
//! * event throughput: user events sent back to back over one RPC connection for a few
//!   seconds; events/s accepted and the share delivered on every agent.
//! * graceful leave: SIGINT to one agent; when each other agent lists it `left`.
//! * failure detection: SIGKILL of one agent; when every other one lists it `failed`.
//! * many agents: agent 0, then the others spawned at once, each joining agent 0 and a
//!   random earlier agent; time until every agent lists all alive.

mod cluster;
pub mod events;
mod metrics;
mod report;
pub mod tails;
pub mod wire;

pub use cluster::{
    all_alive, connect_ready, lists_as, BenchCluster, Deliveries, Delivery, JoinPattern, Reached,
    ViewPred, RPC_TIMEOUT,
};
pub use report::{Report, Val};

use crate::{go_serf, our_serf, run_with_timeout, Impl};
use std::process::Command;
use std::time::{Duration, Instant};

/// Sizes, repetitions and windows of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `--quick`.
    pub quick: bool,
    /// Clusters per measurement and implementation.
    pub reps: usize,
    /// The main cluster size.
    pub n: usize,
    /// Further join-convergence sizes.
    pub more_join_sizes: Vec<usize>,
    /// Cluster sizes, besides `n`, whose user-event latency is measured too.
    pub event_sizes: Vec<usize>,
    /// Agents started at once for the "many agents" measurement.
    pub many: usize,
    /// Deadline for the "many agents" convergence.
    pub many_deadline: Duration,
    /// Pause after convergence before the idle window.
    pub idle_settle: Duration,
    /// The idle window.
    pub idle_window: Duration,
    /// Events and queries per latency measurement.
    pub samples: usize,
    /// How long the throughput loop sends.
    pub throughput_for: Duration,
    /// Whether Go's agents are measured.
    pub go: bool,
    /// `--tails`: only the worst-case runs of [`tails`].
    pub tails: bool,
    /// `--events`: only the pooled user-event latency of [`events`].
    pub events: bool,
    /// Fresh clusters per implementation (and size) for `--tails` and `--events`.
    pub runs: usize,
    /// `--sizes`: the cluster sizes for `--events`.
    pub sizes: Vec<usize>,
    /// `--settle`: the pause between convergence and the first event for `--events`.
    pub settle: Duration,
}

impl Settings {
    /// From the command line (`--quick`, `--no-go`, `--samples N`).
    pub fn from_args(args: &[String]) -> Result<Settings, String> {
        let mut quick = false;
        let mut go = true;
        let mut samples = None;
        let mut tails = false;
        let mut events = false;
        let mut runs = None;
        let mut sizes = events::SIZES.to_vec();
        let mut settle = Duration::ZERO;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => quick = true,
                "--no-go" => go = false,
                "--tails" => tails = true,
                "--events" => events = true,
                "--runs" => runs = Some(count(it.next(), "--runs")?),
                "--samples" => samples = Some(count(it.next(), "--samples")?),
                "--sizes" => {
                    let v = it.next().ok_or("--sizes needs a list such as 3,10,30")?;
                    sizes = v
                        .split(',')
                        .map(|x| x.trim().parse::<usize>().ok().filter(|&n| n >= 2))
                        .collect::<Option<Vec<usize>>>()
                        .ok_or_else(|| format!("--sizes: not a list of sizes ≥ 2: {v:?}"))?;
                }
                "--settle" => {
                    let v = it.next().ok_or("--settle needs seconds")?;
                    let secs: f64 = v
                        .parse()
                        .ok()
                        .filter(|x: &f64| x.is_finite() && *x >= 0.0 && *x <= 3600.0)
                        .ok_or_else(|| format!("--settle: not a number of seconds: {v:?}"))?;
                    settle = Duration::from_secs_f64(secs);
                }
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let mut settings = if quick {
            Settings {
                quick,
                reps: 1,
                n: 10,
                more_join_sizes: Vec::new(),
                event_sizes: vec![3, 30],
                many: 100,
                many_deadline: Duration::from_secs(60),
                idle_settle: Duration::from_secs(3),
                idle_window: Duration::from_secs(10),
                samples: 5,
                throughput_for: Duration::from_secs(3),
                go,
                tails,
                events,
                runs: 0,
                sizes,
                settle,
            }
        } else {
            Settings {
                quick,
                reps: 3,
                n: 10,
                more_join_sizes: vec![30],
                event_sizes: vec![3, 30],
                many: 200,
                many_deadline: Duration::from_secs(120),
                idle_settle: Duration::from_secs(5),
                idle_window: Duration::from_secs(30),
                samples: 10,
                throughput_for: Duration::from_secs(5),
                go,
                tails,
                events,
                runs: 0,
                sizes,
                settle,
            }
        };
        if tails && events {
            return Err("--tails and --events are separate runs".into());
        }
        settings.runs = runs.unwrap_or(if tails { 20 } else { 8 });
        if events {
            settings.samples = 10;
        }
        if let Some(n) = samples {
            settings.samples = n;
        }
        Ok(settings)
    }
}

/// The number after `flag` (at least 1).
fn count(v: Option<&String>, flag: &str) -> Result<usize, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a number"))?;
    let n: usize = v
        .parse()
        .map_err(|_| format!("{flag}: not a number: {v:?}"))?;
    Ok(n.max(1))
}

/// Usage text.
pub const USAGE: &str =
    "usage: bench [--quick] [--no-go] [--samples N] | bench --tails|--events [--runs N] [--samples N] [--no-go]\n  \
    --quick      one cluster per measurement and implementation, N=10 and 100 at once (< 5 min)\n  \
    --no-go      measure only ours (also automatic when Go's serf is not installed)\n  \
    --samples N  events and queries per latency measurement (quick: 5, full: 10)\n  \
    --tails      only the worst cases: join N=60, leave and detection N=30, on fresh clusters\n  \
    --events     only user-event latency at N=3, 10, 30, pooled over fresh clusters\n  \
    --runs N     fresh clusters per implementation (and size): --tails 20, --events 8\n  \
    --sizes L    cluster sizes for --events (default 3,10,30)\n  \
    --settle S   seconds between convergence and the first event for --events (default 0)";

fn first_line(cmd: &str, args: &[&str]) -> String {
    let mut c = Command::new(cmd);
    c.args(args);
    run_with_timeout(c, Duration::from_secs(10))
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

/// Runs every measurement and returns the report text (header, table, notes).
pub async fn run(s: &Settings, command_line: &str) -> Result<String, String> {
    let started = Instant::now();
    let ours = our_serf().ok_or("our serf binary not found: cargo build --release --bin serf")?;
    let go = if s.go { go_serf() } else { None };
    let mut imps = vec![Impl::Rust];
    if go.is_some() {
        imps.push(Impl::Go);
    }
    let mut header = vec![
        format!("command: {command_line}"),
        format!(
            "date: {}",
            first_line("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        ),
        format!("kernel: {}", read_trim("/proc/sys/kernel/osrelease")),
        format!(
            "CPU: {}, {} cores",
            cpu_model(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
        format!("load average at start: {}", read_trim("/proc/loadavg")),
        format!(
            "ours: {} ({})",
            ours.display(),
            first_line(&ours.display().to_string(), &["version"])
        ),
    ];
    match &go {
        Some(g) => header.push(format!(
            "Go: {} ({})",
            g.display(),
            first_line(&g.display().to_string(), &["version"])
        )),
        None => header.push(
            "Go: not measured (no Go serf: install Debian's `serf`, or --no-go given); \
             Go columns are empty"
                .into(),
        ),
    }
    eprintln!("{}", header.join("\n"));
    if s.tails || s.events {
        let table = if s.tails {
            tails::measure(&imps, s.runs).await
        } else {
            events::measure(&imps, s).await
        };
        let mut out = String::new();
        for h in &header {
            out.push_str(&format!("{h}  \n"));
        }
        out.push_str(&format!(
            "mode: {} ({} runs per implementation, fresh clusters, ours first in each \
             pair), loopback\n\n{table}",
            if s.tails { "tails" } else { "events" },
            s.runs
        ));
        out.push_str(&format!(
            "\nload average at end: {}; wall time {:.0}s\n",
            read_trim("/proc/loadavg"),
            started.elapsed().as_secs_f64()
        ));
        return Ok(out);
    }
    let wire = wire::WireCounter::new();
    let mut report = Report::default();
    let n = s.n;
    let join_label = |size: usize| format!("join convergence, N={size} (s)");
    for &size in std::iter::once(&n).chain(&s.more_join_sizes) {
        report.declare(&join_label(size), 2);
    }
    let deadline = Duration::from_secs(60);
    for rep in 0..s.reps {
        for &imp in &imps {
            eprintln!("[bench] run {}/{}: {imp}, N={n}", rep + 1, s.reps);
            let first = JoinPattern::First;
            let label = join_label(n);
            let join = metrics::join(&mut report, &label, imp, n, first, deadline);
            let Some(mut c) = join.await else {
                continue;
            };
            metrics::idle(&mut report, &c, s, &wire).await;
            match c.subscribe_user_events().await {
                Ok(mut d) => {
                    metrics::event_latency(&mut report, &mut c, &mut d, s).await;
                    metrics::query_latency(&mut report, &c, s).await;
                }
                Err(e) => eprintln!("[bench] {imp:>4}: event streams: {e}"),
            }
            metrics::leave(&mut report, &mut c).await;
            metrics::failure(&mut report, &mut c).await;
            drop(c);
            // A fresh cluster for the flood, so that its queued broadcasts do not slow down
            // the leave and failure measurements (its join time is not recorded).
            eprintln!(
                "[bench] run {}/{}: {imp}, throughput, N={n}",
                rep + 1,
                s.reps
            );
            let mut scratch = Report::default();
            let join = metrics::join(
                &mut scratch,
                "(throughput cluster)",
                imp,
                n,
                first,
                deadline,
            );
            let Some(mut c) = join.await else {
                report.record(
                    "event throughput: events/s accepted over one RPC connection",
                    0,
                    imp,
                    Val::fail("throughput cluster did not converge"),
                );
                continue;
            };
            match c.subscribe_user_events().await {
                Ok(mut d) => metrics::throughput(&mut report, &mut c, &mut d, s).await,
                Err(e) => eprintln!("[bench] {imp:>4}: event streams: {e}"),
            }
        }
    }
    for &size in &s.more_join_sizes {
        for rep in 0..s.reps {
            for &imp in &imps {
                eprintln!("[bench] run {}/{}: {imp}, join N={size}", rep + 1, s.reps);
                let label = join_label(size);
                metrics::join(&mut report, &label, imp, size, JoinPattern::First, deadline).await;
            }
        }
    }
    for &size in &s.event_sizes {
        for rep in 0..s.reps {
            for &imp in &imps {
                eprintln!(
                    "[bench] run {}/{}: {imp}, user events, N={size}",
                    rep + 1,
                    s.reps
                );
                // Its join time is not recorded (join rows are N=10 and the sizes above).
                let mut scratch = Report::default();
                let label = "(event-latency cluster)";
                let join =
                    metrics::join(&mut scratch, label, imp, size, JoinPattern::First, deadline);
                let Some(mut c) = join.await else {
                    continue;
                };
                match c.subscribe_user_events().await {
                    Ok(mut d) => metrics::event_latency(&mut report, &mut c, &mut d, s).await,
                    Err(e) => eprintln!("[bench] {imp:>4}: event streams: {e}"),
                }
            }
        }
    }
    for rep in 0..s.reps {
        for &imp in &imps {
            eprintln!(
                "[bench] run {}/{}: {imp}, {} agents at once",
                rep + 1,
                s.reps,
                s.many
            );
            let label = format!("{} agents started at once: all see all alive (s)", s.many);
            metrics::join(
                &mut report,
                &label,
                imp,
                s.many,
                JoinPattern::FirstAndRandom,
                s.many_deadline,
            )
            .await;
        }
    }
    let mut out = String::new();
    for h in &header {
        out.push_str(&format!("{h}  \n"));
    }
    out.push_str(&format!(
        "mode: {} ({} cluster(s) per measurement and implementation{}), loopback, \
         clusters run one at a time, ours first in each pair\n\n",
        if s.quick { "quick" } else { "full" },
        s.reps,
        if s.reps > 1 { "; medians" } else { "" }
    ));
    out.push_str(&report.markdown(go.is_some()));
    out.push_str(&format!(
        "\nNotes:\n\
         * Times are polled over RPC every max(50 ms, 2 ms × N) per agent: ±one poll interval.\n\
         * Join times run from spawning agents 1..N−1 (agent 0 already up), so they include \
         process start-up.\n\
         * Latencies are read by this benchmark process on its RPC event streams, not by \
         event-handler scripts; query responses come from the handler `echo ok` (a fork per \
         query per agent, for both).\n\
         * Idle window {}s after a {}s pause; CPU from utime+stime (10 ms ticks); bytes on the \
         wire: {}.\n\
         * Throughput: the sender and the stream readers share the machine's cores with the \
         agents.\n\
         * Indicative only on a shared, loaded machine; ratios from the same run are the \
         meaningful part.\n",
        s.idle_window.as_secs(),
        s.idle_settle.as_secs(),
        wire.describe()
    ));
    let failures = report.failures();
    if !failures.is_empty() {
        out.push_str("\nFailures:\n");
        for f in failures {
            out.push_str(&format!("* {f}\n"));
        }
    }
    out.push_str(&format!(
        "\nload average at end: {}; wall time {:.0}s\n",
        read_trim("/proc/loadavg"),
        started.elapsed().as_secs_f64()
    ));
    Ok(out)
}
