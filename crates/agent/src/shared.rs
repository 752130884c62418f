//! Helpers shared by the agent runner, the RPC server, discovery and telemetry (kept apart
//! so that none of them has to import another).

use serf_runtime::Agent;

/// The OS host name (Go's `os.Hostname`).
pub(crate) fn os_hostname() -> Result<String, String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("could not determine host: {e}"))
}

/// Go's `Agent.Join`: the join with the log lines written around it.
pub(crate) async fn join_logged(
    agent: &Agent,
    addrs: &[String],
    replay: bool,
) -> Result<usize, (usize, String)> {
    tracing::info!(target: "serf::agent", "joining: [{}] replay: {replay}", addrs.join(" "));
    let r = agent.join(addrs, replay).await;
    let n = match &r {
        Ok(n) | Err((n, _)) => *n,
    };
    if n > 0 {
        tracing::info!(target: "serf::agent", "joined: {n} nodes");
    }
    if let Err((_, e)) = &r {
        tracing::warn!(target: "serf::agent", "error joining: {e}");
    }
    r
}

/// Sleeps until `at`, or forever when there is no deadline (for `select!` loops whose
/// timer may be unset).
pub(crate) async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
