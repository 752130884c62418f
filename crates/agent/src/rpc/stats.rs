//! The `stats` answer (`serf info`): agent, runtime, serf, tags and event-handler sections.

use super::conn::Ctl;
use serf_core::MemberStatus;
use serf_rpc::{Body, StatsResponse, StatsSection};

/// The `stats` body.
pub(super) fn stats_body(ctl: &Ctl) -> Vec<u8> {
    let members = ctl.agent.members();
    let count = |st: MemberStatus| {
        members
            .iter()
            .filter(|m| m.status == st)
            .count()
            .to_string()
    };
    let (name, serf) = ctl.agent.with_core(|c| {
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
    let tags = ctl.agent.tags();
    let cpus = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .to_string();
    let runtime = [
        ("arch", go_arch().to_string()),
        ("cpu_count", cpus.clone()),
        ("goroutines", "0".to_string()),
        ("max_procs", cpus),
        ("os", std::env::consts::OS.to_string()),
        (
            "version",
            format!("rust-serf {}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    let handlers: Vec<(String, String)> = ctl
        .handlers
        .scripts()
        .iter()
        .map(|h| (h.stats_key(), h.script.clone()))
        .collect();
    let section = |name: &str, kv: Vec<(&str, &str)>| StatsSection {
        name: name.as_bytes().to_vec(),
        entries: Some(
            kv.into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        ),
    };
    StatsResponse {
        sections: Some(vec![
            section("agent", vec![("name", name.as_str())]),
            section(
                "event_handlers",
                handlers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            ),
            section(
                "runtime",
                runtime.iter().map(|(k, v)| (*k, v.as_str())).collect(),
            ),
            section("serf", serf.iter().map(|(k, v)| (*k, v.as_str())).collect()),
            section(
                "tags",
                tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
            ),
        ]),
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
