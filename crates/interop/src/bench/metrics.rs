//! The measurements, each on a running [`BenchCluster`] of one implementation.

use super::cluster::{lists_as, BenchCluster, Deliveries, JoinPattern, Reached, RPC_TIMEOUT};
use super::report::{Report, Val};
use super::wire::WireCounter;
use super::Settings;
use crate::{cpu_ticks, rss_kib, Impl, USER_HZ};
use serf_rpc::{Client, EventRequest, QueryRecordType, QueryRequest};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::time::{sleep, timeout};

/// Seconds, from a time or a failure.
fn secs(r: Result<Duration, String>) -> Val {
    match r {
        Ok(d) => Val::Num(d.as_secs_f64()),
        Err(e) => Val::fail(e),
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median_of(mut v: Vec<f64>) -> Val {
    if v.is_empty() {
        return Val::fail("no samples");
    }
    v.sort_by(f64::total_cmp);
    Val::Num(v[v.len() / 2])
}

fn progress(imp: Impl, what: &str, v: &Val) {
    match v {
        Val::Num(x) => eprintln!("[bench] {imp:>4}: {what}: {x:.3}"),
        Val::Fail { detail, .. } => eprintln!("[bench] {imp:>4}: {what}: FAILED: {detail}"),
    }
}

fn record(report: &mut Report, label: &str, decimals: usize, imp: Impl, v: Val) {
    progress(imp, label, &v);
    report.record(label, decimals, imp, v);
}

/// Starts a cluster of `n` and records its convergence time under `label`; returns the
/// cluster if it converged.
pub(crate) async fn join(
    report: &mut Report,
    label: &str,
    imp: Impl,
    n: usize,
    pattern: JoinPattern,
    deadline: Duration,
) -> Option<BenchCluster> {
    let prefix = format!("{}-{n}-", imp.label());
    let args = vec!["-event-handler=query:bench=echo ok".to_string()];
    match BenchCluster::start(imp, &prefix, n, pattern, &args, deadline).await {
        Ok((cluster, reached)) => {
            let converged = reached.last();
            let ok = converged.is_ok();
            record(report, label, 2, imp, secs(converged));
            ok.then_some(cluster)
        }
        Err(e) => {
            record(report, label, 2, imp, Val::fail(e));
            None
        }
    }
}

/// Idle resident memory, CPU and bytes on the wire per agent over `s.idle_window`.
pub(crate) async fn idle(report: &mut Report, c: &BenchCluster, s: &Settings, wire: &WireCounter) {
    let imp = c.imp;
    sleep(s.idle_settle).await;
    let pids = c.pids();
    let watched = wire.watch(&c.ports());
    let b0 = wire.bytes();
    let ticks = |pids: &[u32]| -> u64 { pids.iter().filter_map(|&p| cpu_ticks(p)).sum() };
    let t0 = ticks(&pids);
    let start = Instant::now();
    let (mut rss_sum, mut rss_n) = (0u64, 0u64);
    while start.elapsed() < s.idle_window {
        for &p in &pids {
            if let Some(r) = rss_kib(p) {
                rss_sum += r;
                rss_n += 1;
            }
        }
        sleep(Duration::from_secs(1)).await;
    }
    let t1 = ticks(&pids);
    let b1 = wire.bytes();
    let secs = start.elapsed().as_secs_f64();
    let n = pids.len() as f64;
    let rss = if rss_n > 0 {
        Val::Num(rss_sum as f64 / rss_n as f64 / 1024.0)
    } else {
        Val::fail("no VmRSS readings")
    };
    record(report, "idle RSS per agent (MiB)", 1, imp, rss);
    let cpu = (t1.saturating_sub(t0)) as f64 / USER_HZ as f64 / secs / n * 100.0;
    record(
        report,
        "idle CPU per agent (% of a core)",
        3,
        imp,
        Val::Num(cpu),
    );
    let bytes = match (watched, b0, b1) {
        (Ok(()), Ok(b0), Ok(b1)) => Val::Num(b1.saturating_sub(b0) as f64 / secs / n),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Val::fail(e),
    };
    record(
        report,
        "idle bytes on the wire per agent (B/s)",
        0,
        imp,
        bytes,
    );
}

/// Waits until all `n` agents have delivered the event `name`; the times from `t0` of
/// the deliveries, in order.
async fn wait_delivered(
    d: &mut Deliveries,
    name: &str,
    n: usize,
    t0: Instant,
    deadline: Duration,
) -> Result<Vec<Duration>, String> {
    let end = t0 + deadline;
    let mut seen = HashSet::new();
    let mut times = Vec::with_capacity(n);
    while seen.len() < n {
        let left = end.saturating_duration_since(Instant::now());
        match timeout(left, d.rx.recv()).await {
            Ok(Some(ev)) if ev.name == name => {
                if seen.insert(ev.node) {
                    times.push(ev.at.saturating_duration_since(t0));
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return Err("event streams closed".into()),
            Err(_) => {
                return Err(format!(
                    "event {name} reached {}/{n} agents in {}s",
                    seen.len(),
                    deadline.as_secs()
                ))
            }
        }
    }
    times.sort();
    Ok(times)
}

/// User-event latency: events sent over RPC to agent 0, until the last agent's event
/// stream delivers each; the median over `s.samples` events, in ms.
pub(crate) async fn event_latency(
    report: &mut Report,
    c: &mut BenchCluster,
    d: &mut Deliveries,
    s: &Settings,
) {
    let imp = c.imp;
    let n = c.len();
    let (spreads, failure) = event_samples(c, d, s.samples).await;
    let lat: Vec<f64> = spreads.iter().filter_map(|v| v.last().copied()).collect();
    let v = match failure {
        Some(e) if lat.is_empty() => Val::fail(e),
        _ => median_of(lat),
    };
    record(
        report,
        &format!("user event → last of {n} agents' event streams (ms, median)"),
        1,
        imp,
        v,
    );
}

/// The pause between two latency samples (events, queries): 200 to 400 ms, at random. A fixed pause would
/// lock the sends to the sender's gossip ticks (200 ms apart): every event would then
/// wait almost a whole interval, or almost none, for its first gossip round, depending on
/// the cluster (single clusters of 3 measured medians from 1 ms to 200 ms that way).
fn sample_gap() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // The low bits of the clock after an await are as good as random here.
    Duration::from_millis(200 + u64::from(nanos / 1000 % 200))
}

/// `samples` user events sent over RPC to agent 0, one at a time, 200-400 ms apart
/// ([`sample_gap`]): for each, the times in ms, in order, at which the agents' event
/// streams delivered it (the last is the event's latency); and the last error,
/// if some event was not delivered everywhere within 10 s.
pub(crate) async fn event_samples(
    c: &mut BenchCluster,
    d: &mut Deliveries,
    samples: usize,
) -> (Vec<Vec<f64>>, Option<String>) {
    let n = c.len();
    let mut lat = Vec::new();
    let mut failure = None;
    for k in 0..samples {
        let name = format!("lat{k}");
        let req = EventRequest {
            name: name.clone(),
            payload: Some(b"x".to_vec()),
            coalesce: false,
        };
        let t0 = Instant::now();
        let sent = match c.client(0).await {
            Ok(client) => match timeout(RPC_TIMEOUT, client.user_event(&req)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("event: {e}")),
                Err(_) => Err("event: timed out".to_string()),
            },
            Err(e) => Err(e),
        };
        match sent {
            Ok(()) => match wait_delivered(d, &name, n, t0, Duration::from_secs(10)).await {
                Ok(t) => lat.push(t.into_iter().map(millis).collect()),
                Err(e) => failure = Some(e),
            },
            Err(e) => failure = Some(e),
        }
        sleep(sample_gap()).await;
    }
    (lat, failure)
}

/// Query round trips from agent 0: time until all N acks and until all N responses
/// (each agent answers with the handler `echo ok`); medians over `s.samples` queries, in ms.
pub(crate) async fn query_latency(report: &mut Report, c: &BenchCluster, s: &Settings) {
    let imp = c.imp;
    let n = c.len();
    let (mut acks, mut resps) = (Vec::new(), Vec::new());
    let mut failure = None;
    for _ in 0..s.samples {
        match one_query(&c.agents[0].rpc_addr(), n).await {
            Ok((a, r)) => {
                acks.push(millis(a));
                resps.push(millis(r));
            }
            Err(e) => failure = Some(e),
        }
        sleep(sample_gap()).await;
    }
    let pick = |v: Vec<f64>| match &failure {
        Some(e) if v.is_empty() => Val::fail(e.clone()),
        _ => median_of(v),
    };
    record(
        report,
        &format!("query → all {n} acks (ms, median)"),
        1,
        imp,
        pick(acks),
    );
    record(
        report,
        &format!("query → all {n} responses (ms, median)"),
        1,
        imp,
        pick(resps),
    );
}

async fn one_query(rpc_addr: &str, n: usize) -> Result<(Duration, Duration), String> {
    // A connection per query, dropped as soon as all answers are in (before `done`).
    let mut client = timeout(RPC_TIMEOUT, Client::connect(rpc_addr, ""))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let req = QueryRequest {
        name: "bench".into(),
        request_ack: true,
        timeout_nanos: 5_000_000_000,
        ..QueryRequest::default()
    };
    let t0 = Instant::now();
    let handle = timeout(RPC_TIMEOUT, client.query(&req))
        .await
        .map_err(|_| "query timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let (mut acks, mut resps) = (HashSet::new(), HashSet::new());
    let (mut t_ack, mut t_resp) = (None, None);
    while t_ack.is_none() || t_resp.is_none() {
        let rec = timeout(RPC_TIMEOUT, client.recv(&handle))
            .await
            .map_err(|_| "query record timed out".to_string())?
            .map_err(|e| e.to_string())?;
        match rec.kind {
            QueryRecordType::Ack => {
                acks.insert(rec.from);
                if acks.len() == n && t_ack.is_none() {
                    t_ack = Some(t0.elapsed());
                }
            }
            QueryRecordType::Response => {
                resps.insert(rec.from);
                if resps.len() == n && t_resp.is_none() {
                    t_resp = Some(t0.elapsed());
                }
            }
            QueryRecordType::Done => {
                return Err(format!(
                    "query done with {}/{n} acks, {}/{n} responses",
                    acks.len(),
                    resps.len()
                ))
            }
            QueryRecordType::Other(t) => return Err(format!("unexpected query record {t:?}")),
        }
    }
    match (t_ack, t_resp) {
        (Some(a), Some(r)) => Ok((a, r)),
        _ => Err("query incomplete".into()),
    }
}

/// Event throughput: user events sent back to back over one RPC connection to agent 0
/// (8-byte payload, coalesce off) for `s.throughput_for`; events/s accepted, and the share
/// of them delivered on every agent's event stream.
pub(crate) async fn throughput(
    report: &mut Report,
    c: &mut BenchCluster,
    d: &mut Deliveries,
    s: &Settings,
) {
    let imp = c.imp;
    let n = c.len();
    let mut sent = 0u64;
    let mut error = None;
    let start = Instant::now();
    match c.client(0).await {
        Ok(client) => {
            while start.elapsed() < s.throughput_for {
                let req = EventRequest {
                    name: "tp".into(),
                    payload: Some(format!("{sent:08}").into_bytes()),
                    coalesce: false,
                };
                match timeout(RPC_TIMEOUT, client.user_event(&req)).await {
                    Ok(Ok(())) => sent += 1,
                    Ok(Err(e)) => {
                        error = Some(format!("event {sent}: {e}"));
                        break;
                    }
                    Err(_) => {
                        error = Some(format!("event {sent}: timed out"));
                        break;
                    }
                }
            }
        }
        Err(e) => error = Some(e),
    }
    let elapsed = start.elapsed().as_secs_f64();
    // Drain: until no delivery for 2 s (at most 30 s).
    let mut per_node: Vec<HashSet<u64>> = vec![HashSet::new(); n];
    let hard = Instant::now() + Duration::from_secs(30);
    while Instant::now() < hard {
        match timeout(Duration::from_secs(2), d.rx.recv()).await {
            Ok(Some(ev)) if ev.name == "tp" => {
                if let Some(seq) = std::str::from_utf8(&ev.payload)
                    .ok()
                    .and_then(|p| p.parse::<u64>().ok())
                {
                    per_node[ev.node].insert(seq);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for set in &per_node {
        for &seq in set {
            *counts.entry(seq).or_default() += 1;
        }
    }
    let everywhere = counts.values().filter(|&&k| k == n).count();
    let rate = match &error {
        Some(e) if sent == 0 => Val::fail(e.clone()),
        _ => Val::Num(sent as f64 / elapsed),
    };
    if let Some(e) = &error {
        eprintln!("[bench] {imp:>4}: throughput loop stopped: {e}");
    }
    record(
        report,
        "event throughput: events/s accepted over one RPC connection",
        0,
        imp,
        rate,
    );
    let share = if sent > 0 {
        Val::Num(everywhere as f64 / sent as f64 * 100.0)
    } else {
        Val::fail("nothing sent")
    };
    record(
        report,
        &format!("… of those, delivered on all {n} agents (%)"),
        1,
        imp,
        share,
    );
    let count = Val::Num(everywhere as f64);
    let label = format!("… of those, delivered on all {n} agents (events)");
    record(report, &label, 0, imp, count);
}

/// SIGINT to the last agent; when each other agent lists it `left` (the agent is killed
/// if it has not exited 15 s later).
pub(crate) async fn leave_reached(c: &mut BenchCluster) -> Reached {
    let imp = c.imp;
    let i = c.len() - 1;
    let observers: Vec<usize> = (0..i).collect();
    let name = c.agents[i].name().to_string();
    let t0 = Instant::now();
    let reached = match c.agents[i].sigint() {
        Ok(()) => {
            c.wait_views(
                &observers,
                lists_as(&name, "left"),
                t0,
                Duration::from_secs(60),
            )
            .await
        }
        Err(e) => Reached {
            times: vec![Err(e)],
            deadline: Duration::ZERO,
        },
    };
    if c.agents[i].wait_exit(Duration::from_secs(15)).is_none() {
        eprintln!("[bench] {imp:>4}: {name} still running 15 s after SIGINT; killing it");
    }
    c.agents[i].kill9();
    reached
}

/// SIGKILL of the second-to-last agent; when each remaining agent lists it `failed`.
pub(crate) async fn failure_reached(c: &mut BenchCluster, deadline: Duration) -> Reached {
    let i = c.len() - 2;
    let observers: Vec<usize> = (0..i).collect();
    let name = c.agents[i].name().to_string();
    let t0 = Instant::now();
    c.agents[i].kill9();
    c.wait_views(&observers, lists_as(&name, "failed"), t0, deadline)
        .await
}

/// Graceful leave of the last agent ([`leave_reached`]): the median and the last observer.
pub(crate) async fn leave(report: &mut Report, c: &mut BenchCluster) {
    let imp = c.imp;
    let n = c.len();
    let reached = leave_reached(c).await;
    record(
        report,
        &format!("graceful leave, N={n}: median observer sees `left` (s)"),
        2,
        imp,
        secs(reached.median()),
    );
    record(
        report,
        &format!("graceful leave, N={n}: last observer sees `left` (s)"),
        2,
        imp,
        secs(reached.last()),
    );
}

/// Failure detection ([`failure_reached`]): when the last remaining agent lists it
/// `failed`.
pub(crate) async fn failure(report: &mut Report, c: &mut BenchCluster) {
    let imp = c.imp;
    let observers = c.len() - 2;
    let reached = failure_reached(c, Duration::from_secs(60)).await;
    record(
        report,
        &format!("failure detection (SIGKILL), {observers} observers: last sees `failed` (s)"),
        2,
        imp,
        secs(reached.last()),
    );
}
