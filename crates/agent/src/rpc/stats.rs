//! The `stats` answer (`serf info`): agent, runtime, serf, tags and event-handler sections.

use super::conn::Ctl;
use serf_core::MemberStatus;
use serf_rpc::{Body, StatsResponse, StatsSection};

/// The `stats` answer as named sections of key/value pairs, in Go's order: `agent`,
/// `event_handlers`, `runtime`, `serf`, `tags`. Shared by the RPC and the HTTP API.
pub(crate) fn stats_sections(
    agent: &serf_runtime::Agent,
    handlers: &crate::handlers::Handlers,
) -> Vec<(&'static str, Vec<(String, String)>)> {
    let members = agent.members();
    let count = |st: MemberStatus| {
        members
            .iter()
            .filter(|m| m.status == st)
            .count()
            .to_string()
    };
    let (name, serf) = agent.with_core(|c| {
        let st = c.state();
        let (intents, queries, events) = st.queued();
        let serf = vec![
            ("encrypted", (!c.keyring().is_empty()).to_string()),
            ("coordinate_resets", st.coordinate_resets().to_string()),
            ("event_queue", events.to_string()),
            ("event_time", st.event_clock().to_string()),
            ("failed", count(MemberStatus::Failed)),
            ("health_score", c.memberlist().health().to_string()),
            ("intent_queue", intents.to_string()),
            ("left", count(MemberStatus::Left)),
            ("member_time", st.clock().to_string()),
            ("members", members.len().to_string()),
            ("query_queue", queries.to_string()),
            ("query_time", st.query_clock().to_string()),
        ];
        (c.name().to_string(), serf)
    });
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let own = |kv: Vec<(&str, String)>| -> Vec<(String, String)> {
        kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    };
    vec![
        ("agent", own(vec![("name", name)])),
        (
            "event_handlers",
            handlers
                .scripts()
                .iter()
                .map(|h| (h.stats_key(), h.script.clone()))
                .collect(),
        ),
        (
            "runtime",
            own(vec![
                ("arch", go_arch().to_string()),
                ("cpu_count", cpus.clone()),
                ("goroutines", "0".to_string()),
                ("max_procs", cpus),
                ("os", std::env::consts::OS.to_string()),
                (
                    "version",
                    format!("rust-serf {}", env!("CARGO_PKG_VERSION")),
                ),
            ]),
        ),
        ("serf", own(serf)),
        ("tags", agent.tags()),
    ]
}

/// The `stats` body.
pub(super) fn stats_body(ctl: &Ctl) -> Vec<u8> {
    let sections = stats_sections(&ctl.agent, &ctl.handlers);
    StatsResponse {
        sections: Some(
            sections
                .into_iter()
                .map(|(name, kv)| StatsSection {
                    name: name.as_bytes().to_vec(),
                    entries: Some(
                        kv.into_iter()
                            .map(|(k, v)| (k.into_bytes(), v.into_bytes()))
                            .collect(),
                    ),
                })
                .collect(),
        ),
    }
    .encode()
}

/// The architecture as Go's `runtime.GOARCH` names it, for scripts reading `serf info`.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => {
            if cfg!(target_endian = "little") {
                "ppc64le"
            } else {
                "ppc64"
            }
        }
        "mips64" => {
            if cfg!(target_endian = "little") {
                "mips64le"
            } else {
                "mips64"
            }
        }
        other => other,
    }
}
