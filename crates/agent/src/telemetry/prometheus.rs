//! `/metrics`: Prometheus text format. Everything the agent records through the `metrics`
//! facade (the go-metrics names, dots turned into underscores: `memberlist_udp_sent`,
//! `serf_events`, `serf_queries`, `memberlist_gossip`, `memberlist_probeNode`, the RTT
//! samples, `agent_invoke_*` handler durations, snapshot writes, ...) is rendered by the
//! `metrics-exporter-prometheus` recorder, installed next to the go-metrics-compatible one
//! only when the HTTP API is on. Labelled gauges read from the agent at scrape time are
//! added: members by status, the health (awareness) score, queue depths (memberlist's
//! broadcast queue and Serf's intent, event and query queues), Lamport clocks, the size of
//! the keyring, RPC clients connected, and handler runs by outcome (their durations are
//! the exporter's `agent_invoke_*` summaries).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use serf_core::MemberStatus;
use std::fmt::Write as _;
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The exporter's recorder (its handle is kept for [`prometheus_text`]).
pub(super) fn recorder() -> PrometheusRecorder {
    let r = PrometheusBuilder::new().build_recorder();
    let _ = HANDLE.set(r.handle());
    r
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// The whole `/metrics` answer.
pub(crate) fn prometheus_text(agent: &serf_runtime::Agent) -> String {
    let mut out = HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    let members = agent.members();
    let statuses = [
        MemberStatus::Alive,
        MemberStatus::Leaving,
        MemberStatus::Left,
        MemberStatus::Failed,
    ];
    let by_status: Vec<(String, f64)> = statuses
        .iter()
        .map(|st| {
            (
                format!("status=\"{}\"", st.as_str()),
                members.iter().filter(|m| m.status == *st).count() as f64,
            )
        })
        .collect();
    gauge(
        &mut out,
        "serf_members",
        "Members known to this agent, by status.",
        &by_status,
    );
    let (health, queues, clocks, keys) = agent.with_core(|c| {
        let st = c.state();
        let (intents, queries, events) = st.queued();
        (
            c.memberlist().health() as f64,
            vec![
                (
                    "queue=\"broadcast\"".to_string(),
                    c.memberlist().queued_broadcasts() as f64,
                ),
                ("queue=\"intent\"".to_string(), intents as f64),
                ("queue=\"event\"".to_string(), events as f64),
                ("queue=\"query\"".to_string(), queries as f64),
            ],
            vec![
                ("clock=\"member\"".to_string(), st.clock() as f64),
                ("clock=\"event\"".to_string(), st.event_clock() as f64),
                ("clock=\"query\"".to_string(), st.query_clock() as f64),
            ],
            c.keyring().keys().len() as f64,
        )
    });
    gauge(
        &mut out,
        "serf_health_score",
        "Local health awareness score (0 is healthy; higher slows probing).",
        &[(String::new(), health)],
    );
    gauge(
        &mut out,
        "serf_queue_depth",
        "Serf broadcast queues, by queue.",
        &queues,
    );
    gauge(
        &mut out,
        "serf_lamport_time",
        "Lamport clocks, by clock.",
        &clocks,
    );
    gauge(
        &mut out,
        "serf_keyring_keys",
        "Keys in the keyring.",
        &[(String::new(), keys)],
    );
    let relaxed = std::sync::atomic::Ordering::Relaxed;
    gauge(
        &mut out,
        "serf_rpc_clients",
        "RPC clients connected now.",
        &[(
            String::new(),
            crate::rpc::server::CLIENTS.load(relaxed) as f64,
        )],
    );
    let runs = crate::handlers::RUNS.load(relaxed);
    let failures = crate::handlers::FAILURES.load(relaxed);
    let _ = writeln!(
        out,
        "# HELP serf_handler_runs_total Event handler scripts run, by outcome."
    );
    let _ = writeln!(out, "# TYPE serf_handler_runs_total counter");
    let _ = writeln!(
        out,
        "serf_handler_runs_total{{outcome=\"ok\"}} {}",
        runs.saturating_sub(failures)
    );
    let _ = writeln!(
        out,
        "serf_handler_runs_total{{outcome=\"failed\"}} {failures}"
    );
    out
}
