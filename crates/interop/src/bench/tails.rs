//! `scripts/bench --tails`: the worst cases over many fresh clusters, for ours and Go's,
//! interleaved (ours, Go, ours, Go, …). Medians hide what users remember: the one join
//! that took a minute, the leave reported as a failure. Each run starts new clusters:
//!
//! * join convergence, N=60: agent 0, then 59 agents spawned at once, each `-join`ing
//!   agent 0; time until every agent lists all 60 alive. Bound: 5 s.
//! * graceful leave, N=30: SIGINT to one agent of a second, fresh cluster of 30; time
//!   until the last of the other 29 lists it `left`. Bound: 2 s.
//! * failure detection, N=30: then SIGKILL of another agent of that cluster; time until
//!   the last of the remaining 28 lists it `failed`. Bound: [`detection_bound`].
//!
//! The table gives, per implementation, the median, the worst run and how many runs were
//! over the bound; every run's figure is listed below it.

use super::cluster::{BenchCluster, JoinPattern};
use super::metrics::{failure_reached, leave_reached};
use super::report::column_name;
use crate::Impl;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::sleep;

/// Cluster size for the join measurement.
pub const JOIN_N: usize = 60;
/// Cluster size for the leave and detection measurements.
pub const LEAVE_N: usize = 30;
/// No join convergence at N=60 may take longer (issue 12).
pub const JOIN_BOUND_S: f64 = 5.0;
/// No graceful leave at N ≤ 30 may take longer (issue 12).
pub const LEAVE_BOUND_S: f64 = 2.0;

/// The suspicion model's bound on failure detection in a cluster of `n` over `runs` runs,
/// with Serf's LAN settings (probe interval 1 s, suspicion multiplier 4), in seconds:
///
/// * the first probe of the dead node: each of the `n − 1` living members probes one member
///   per interval, the dead one with probability `1 / (n − 1)`, so an interval passes
///   without a probe of it with probability `q = (1 − 1/(n − 1))^(n − 1)` (0.36 at n=30).
///   The gap `g` that `runs` runs exceed with probability at most 1% is
///   `ln(0.01 / runs) / ln(q)` intervals (7.5 s for 20 runs at n=30);
/// * the failed probe itself, direct and indirect: one interval;
/// * the minimum suspicion timeout, `4 · log10(n)` intervals (5.9 s at n=30), which the
///   confirmations of the other probers bring the timeout down to;
/// * one second for the dead message to spread and for the benchmark's polling.
///
/// 15.4 s at n=30 and 20 runs. Go's agents follow the same model.
pub fn detection_bound(n: usize, runs: usize) -> f64 {
    let living = (n.max(3) - 1) as f64;
    let q = (1.0 - 1.0 / living).powf(living);
    let gap = (0.01 / runs.max(1) as f64).ln() / q.ln();
    let suspicion = 4.0 * (n as f64).log10().max(1.0);
    gap + 1.0 + suspicion + 1.0
}

/// One measurement's per-run figures for one implementation.
#[derive(Debug, Default, Clone)]
struct Series {
    /// Seconds, or why the run gave none.
    runs: Vec<Result<f64, String>>,
}

impl Series {
    fn push(&mut self, r: Result<Duration, String>) {
        self.runs.push(r.map(|d| d.as_secs_f64()));
    }

    fn ok(&self) -> Vec<f64> {
        let mut v: Vec<f64> = self.runs.iter().filter_map(|r| r.clone().ok()).collect();
        v.sort_by(f64::total_cmp);
        v
    }

    fn median(&self) -> String {
        let v = self.ok();
        if v.is_empty() {
            return "—".into();
        }
        format!("{:.2}", v[(v.len() - 1) / 2])
    }

    /// The worst run; a run that never got there is the worst of all.
    fn worst(&self) -> String {
        if self.runs.iter().any(Result::is_err) {
            return "never (see below)".into();
        }
        self.ok()
            .last()
            .map_or_else(|| "—".into(), |w| format!("{w:.2}"))
    }

    /// Runs over `bound` (a run that never got there counts), of all runs.
    fn over(&self, bound: f64) -> String {
        let over = self
            .runs
            .iter()
            .filter(|r| r.as_ref().map_or(true, |&s| s > bound))
            .count();
        format!("{over} of {}", self.runs.len())
    }

    fn list(&self) -> String {
        let parts: Vec<String> = self
            .runs
            .iter()
            .map(|r| match r {
                Ok(s) => format!("{s:.2}"),
                Err(e) => format!("FAILED ({e})"),
            })
            .collect();
        parts.join(", ")
    }
}

/// A table row: its label, its bound (s) and which series it shows.
type Row = (String, f64, fn(&Tails) -> &Series);

/// The three series of one implementation.
#[derive(Debug, Default, Clone)]
struct Tails {
    join: Series,
    leave: Series,
    detect: Series,
}

fn progress(imp: Impl, run: usize, what: &str, r: &Result<Duration, String>) {
    match r {
        Ok(d) => eprintln!(
            "[tails] {imp:>4} run {run}: {what}: {:.2} s",
            d.as_secs_f64()
        ),
        Err(e) => eprintln!("[tails] {imp:>4} run {run}: {what}: FAILED: {e}"),
    }
}

/// One run of the three measurements for `imp`, on two fresh clusters.
async fn one_run(imp: Impl, run: usize, t: &mut Tails) {
    let args = Vec::new();
    let deadline = Duration::from_secs(90);
    let prefix = format!("{}-t{run}-", imp.label());
    let joined = BenchCluster::start(imp, &prefix, JOIN_N, JoinPattern::First, &args, deadline)
        .await
        .and_then(|(c, reached)| reached.last().map(|d| (c, d)));
    let join = joined.map(|(c, d)| {
        drop(c);
        d
    });
    progress(imp, run, &format!("join N={JOIN_N}"), &join);
    t.join.push(join);

    let prefix = format!("{}-l{run}-", imp.label());
    let started = BenchCluster::start(imp, &prefix, LEAVE_N, JoinPattern::First, &args, deadline)
        .await
        .and_then(|(c, reached)| reached.last().map(|_| c));
    let mut c = match started {
        Ok(c) => c,
        Err(e) => {
            let e = format!("the N={LEAVE_N} cluster did not form: {e}");
            eprintln!("[tails] {imp:>4} run {run}: {e}");
            t.leave.push(Err(e.clone()));
            t.detect.push(Err(e));
            return;
        }
    };
    // Let the join's gossip die down, as on a cluster that has been up a while.
    sleep(Duration::from_secs(2)).await;
    let leave = leave_reached(&mut c).await.last();
    progress(imp, run, &format!("leave N={LEAVE_N}"), &leave);
    t.leave.push(leave);
    sleep(Duration::from_secs(1)).await;
    let detect = failure_reached(&mut c, Duration::from_secs(90))
        .await
        .last();
    progress(imp, run, &format!("detection N={LEAVE_N}"), &detect);
    t.detect.push(detect);
}

/// Runs `runs` rounds for each of `imps` and returns the markdown table and the per-run
/// figures.
pub(crate) async fn measure(imps: &[Impl], runs: usize) -> String {
    let mut tails: Vec<Tails> = vec![Tails::default(); imps.len()];
    for run in 1..=runs {
        for (k, &imp) in imps.iter().enumerate() {
            eprintln!("[tails] run {run}/{runs}: {imp}");
            one_run(imp, run, &mut tails[k]).await;
        }
    }
    let detect_bound = detection_bound(LEAVE_N, runs);
    let rows: [Row; 3] = [
        (
            format!("join convergence, N={JOIN_N}: all see all alive (s)"),
            JOIN_BOUND_S,
            |t| &t.join,
        ),
        (
            format!("graceful leave, N={LEAVE_N}: last observer sees `left` (s)"),
            LEAVE_BOUND_S,
            |t| &t.leave,
        ),
        (
            format!("failure detection (SIGKILL), N={LEAVE_N}: last observer sees `failed` (s)"),
            detect_bound,
            |t| &t.detect,
        ),
    ];
    let mut out = String::new();
    let mut head = "| Measurement, over fresh clusters | bound |".to_string();
    let mut rule = "|---|---:|".to_string();
    for imp in imps {
        let who = column_name(*imp);
        let _ = write!(head, " {who} median | {who} worst | {who} runs over |");
        rule.push_str("---:|---:|---:|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for (label, bound, pick) in &rows {
        let _ = write!(out, "| {label} | {bound:.1} |");
        for t in &tails {
            let s = pick(t);
            let _ = write!(
                out,
                " {} | {} | {} |",
                s.median(),
                s.worst(),
                s.over(*bound)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\nEvery run (s):");
    for (label, _, pick) in &rows {
        for (k, t) in tails.iter().enumerate() {
            let _ = writeln!(out, "* {label}, {}: {}", imps[k], pick(t).list());
        }
    }
    let _ = writeln!(
        out,
        "\nThe detection bound ({detect_bound:.1} s) is the suspicion model's, for N={LEAVE_N} \
         and {runs} runs: the gap without a probe of the dead node that {runs} runs exceed \
         with probability ≤ 1%, one probe interval, the minimum suspicion timeout \
         (4·log10(N) intervals) and 1 s for dissemination and polling \
         (`serf_interop::bench::tails::detection_bound`)."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_bound_at_n30_over_20_runs() {
        let b = detection_bound(30, 20);
        assert!((15.2..15.6).contains(&b), "{b}");
        // More runs, a longer worst gap; a bigger cluster, a longer suspicion timeout.
        assert!(detection_bound(30, 100) > b);
        assert!(detection_bound(100, 20) > b);
    }
}
