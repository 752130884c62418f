//! `scripts/bench --events [--runs K] [--samples S]`: user-event latency pooled over many
//! fresh clusters, for ours and Go's, interleaved.
//!
//! One cluster's median says more about that cluster than about the implementation: its
//! members' gossip ticks have random phases, and which nodes the first rounds reach and
//! when those tick decides an event's latency. Single clusters of 10 gave ratios from
//! 0.75 to 1.26 within one hour. This mode starts `K`
//! (default 8) clusters per size and implementation, of 3, 10 and 30 agents, sends `S`
//! (default 10) events through each (RPC to agent 0, 200 to 400 ms apart, at random), and reports, per size,
//! the median and 90th percentile over all `K × S` events of the time until the last
//! agent's RPC event stream delivered the event.

use super::cluster::{BenchCluster, JoinPattern};
use super::metrics::event_samples;
use super::report::column_name;
use super::Settings;
use crate::Impl;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::sleep;

/// The cluster sizes measured by default (`--sizes`).
pub const SIZES: [usize; 3] = [3, 10, 30];

/// Nearest-rank percentile `p` (0..=100) of sorted `v`.
fn percentile(v: &[f64], p: usize) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = (p * v.len()).div_ceil(100).max(1);
    v.get(rank - 1).copied()
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |x| format!("{x:.1}"))
}

/// Runs the measurement and returns its markdown table.
pub(crate) async fn measure(imps: &[Impl], s: &Settings) -> String {
    let (runs, samples) = (s.runs, s.samples);
    // spreads[size index][implementation index]: every event's delivery times on all
    // agents, in order (ms); the last is the event's latency.
    let mut spreads = vec![vec![Vec::<Vec<f64>>::new(); imps.len()]; s.sizes.len()];
    let mut failures = Vec::new();
    for (si, &n) in s.sizes.iter().enumerate() {
        for run in 1..=runs {
            for (k, &imp) in imps.iter().enumerate() {
                eprintln!("[events] N={n} run {run}/{runs}: {imp}");
                let prefix = format!("{}-e{n}r{run}-", imp.label());
                let started = BenchCluster::start(
                    imp,
                    &prefix,
                    n,
                    JoinPattern::First,
                    &[],
                    Duration::from_secs(60),
                )
                .await
                .and_then(|(c, reached)| reached.last().map(|_| c));
                let mut c = match started {
                    Ok(c) => c,
                    Err(e) => {
                        failures.push(format!("{imp} N={n} run {run}: no cluster: {e}"));
                        continue;
                    }
                };
                let mut d = match c.subscribe_user_events().await {
                    Ok(d) => d,
                    Err(e) => {
                        failures.push(format!("{imp} N={n} run {run}: event streams: {e}"));
                        continue;
                    }
                };
                sleep(s.settle).await;
                let (spread, failure) = event_samples(&mut c, &mut d, samples).await;
                if let Some(e) = failure {
                    failures.push(format!("{imp} N={n} run {run}: {e}"));
                }
                let sorted = latencies(&spread);
                eprintln!(
                    "[events] {imp:>4} N={n} run {run}: median {} ms over {}",
                    fmt_ms(percentile(&sorted, 50)),
                    sorted.len()
                );
                spreads[si][k].extend(spread);
            }
        }
    }
    let mut out = String::new();
    let mut head = "| user event → last agent's event stream (ms) |".to_string();
    let mut rule = "|---|".to_string();
    for imp in imps {
        let who = column_name(*imp);
        let _ = write!(head, " {who} median | {who} p90 | {who} events |");
        rule.push_str("---:|---:|---:|");
    }
    let both = imps.len() == 2;
    if both {
        head.push_str(" ours/Go (median) |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{head}\n{rule}");
    for (si, &n) in s.sizes.iter().enumerate() {
        let _ = write!(out, "| N={n} |");
        let mut medians = Vec::new();
        for per_imp in &spreads[si] {
            let v = &latencies(per_imp);
            let median = percentile(v, 50);
            medians.push(median);
            let _ = write!(
                out,
                " {} | {} | {} |",
                fmt_ms(median),
                fmt_ms(percentile(v, 90)),
                v.len()
            );
        }
        if both {
            // imps is [Rust, Go].
            let ratio = match (medians[0], medians[1]) {
                (Some(ours), Some(go)) if go > 0.0 => super::report::ratio(ours / go),
                _ => "—".into(),
            };
            let _ = write!(out, " {ratio} |");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "\nSpread: the median over events of the time (ms) at which the k-th agent's \
         stream delivered it (k=1 is the sender itself).\n"
    );
    let _ = writeln!(out, "{}", spread_table(imps, &s.sizes, &spreads));
    let _ = writeln!(
        out,
        "{runs} fresh clusters per size and implementation, {samples} events each \
         (the first {:.1} s after the cluster converged), interleaved (ours, Go, ours, Go, …).",
        s.settle.as_secs_f64()
    );
    if !failures.is_empty() {
        let _ = writeln!(out, "\nFailures:");
        for f in failures {
            let _ = writeln!(out, "* {f}");
        }
    }
    out
}

/// Each event's latency (its last delivery), sorted.
fn latencies(spreads: &[Vec<f64>]) -> Vec<f64> {
    let mut v: Vec<f64> = spreads.iter().filter_map(|t| t.last().copied()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median over events of the k-th delivery, for a few ranks k per size.
fn spread_table(imps: &[Impl], sizes: &[usize], spreads: &[Vec<Vec<Vec<f64>>>]) -> String {
    let mut out = String::from("| N | k |");
    let mut rule = String::from("|---:|---:|");
    for imp in imps {
        let _ = write!(out, " {imp} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "\n{rule}");
    for (si, &n) in sizes.iter().enumerate() {
        let mut ranks: Vec<usize> = vec![1, 2, 3, 4, n / 2, n.saturating_sub(1), n];
        ranks.retain(|&k| k >= 1 && k <= n);
        ranks.sort_unstable();
        ranks.dedup();
        for k in ranks {
            let _ = write!(out, "| {n} | {k} |");
            for per_imp in &spreads[si] {
                let mut kth: Vec<f64> = per_imp
                    .iter()
                    .filter_map(|v| v.get(k - 1).copied())
                    .collect();
                kth.sort_by(f64::total_cmp);
                let _ = write!(out, " {} |", fmt_ms(percentile(&kth, 50)));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50), Some(5.0));
        assert_eq!(percentile(&v, 90), Some(9.0));
        assert_eq!(percentile(&v, 100), Some(10.0));
        assert_eq!(percentile(&[], 50), None);
    }
}
