//! Telemetry as Go serf emits it through armon/go-metrics: statsite (TCP) and
//! statsd (UDP) lines named `serf-agent.<metric>`, and the in-memory dump
//! written to stderr on SIGUSR1 (which must not stop the agent).
//!
//! A Go agent and ours run side by side, each with its own statsite and statsd
//! listeners in this test; both see the same join, user event and query. The
//! metric names Go emits for that traffic (its runtime gauges aside) must all
//! come from ours too, with the same type suffix.
//!
//! Run: `cargo build -p serf-agent && cargo test -p serf-interop --test telemetry`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use serf_interop::{
    go_cli, require, wait_converged, wait_until, work_dir_for_test, Agent, AgentSpec, Impl, Prereq,
    CLI_TIMEOUT, DEADLINE, POLL,
};

/// Lines received by one agent's sinks.
#[derive(Clone, Default)]
struct Collected {
    statsite: Arc<Mutex<String>>,
    statsd: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Collected {
    /// `name -> type` of every statsite line so far.
    fn statsite_names(&self) -> BTreeMap<String, String> {
        parse_lines(&self.statsite.lock().unwrap())
    }

    fn statsd_names(&self) -> BTreeMap<String, String> {
        let text: String = self
            .statsd
            .lock()
            .unwrap()
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect();
        parse_lines(&text)
    }
}

fn parse_lines(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let Some((value, kind)) = rest.split_once('|') else {
            continue;
        };
        // Go's `%f`: six decimals.
        assert!(
            value.split_once('.').is_some_and(|(_, f)| f.len() == 6),
            "value not formatted as %f: {line:?}"
        );
        out.insert(name.to_string(), kind.to_string());
    }
    out
}

/// Starts a statsite (TCP) and a statsd (UDP) listener; returns their addresses.
fn sinks(c: &Collected) -> (String, String) {
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addrs = (
        tcp.local_addr().unwrap().to_string(),
        udp.local_addr().unwrap().to_string(),
    );
    let statsite = c.statsite.clone();
    thread::spawn(move || {
        for conn in tcp.incoming() {
            let Ok(mut conn) = conn else { return };
            let statsite = statsite.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    statsite
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
    });
    let statsd = c.statsd.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = udp.recv(&mut buf) {
            statsd.lock().unwrap().push(buf[..n].to_vec());
        }
    });
    addrs
}

fn start(imp: Impl, name: &str, c: &Collected, join: Option<&Agent>) -> Agent {
    let (statsite, statsd) = sinks(c);
    let dir = work_dir_for_test();
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join(format!("{name}.json"));
    std::fs::write(
        &cfg,
        format!(r#"{{"statsite_addr": "{statsite}", "statsd_addr": "{statsd}"}}"#),
    )
    .unwrap();
    let mut spec = AgentSpec::new(imp, name).arg(&format!("-config-file={}", cfg.display()));
    if let Some(j) = join {
        spec = spec.join(&j.addr());
    }
    Agent::start(spec).unwrap()
}

/// Metrics that the traffic of this test makes Go emit (checked on Go too, so a
/// renamed metric in a future Go shows up here rather than passing silently).
const EXPECTED: &[(&str, &str)] = &[
    ("serf-agent.memberlist.udp.sent", "c"),
    ("serf-agent.memberlist.udp.received", "c"),
    ("serf-agent.memberlist.msg.alive", "c"),
    ("serf-agent.memberlist.probeNode", "ms"),
    ("serf-agent.memberlist.gossip", "ms"),
    ("serf-agent.serf.member.join", "c"),
    ("serf-agent.serf.msgs.sent", "ms"),
    ("serf-agent.serf.msgs.received", "ms"),
    ("serf-agent.serf.coordinate.adjustment-ms", "ms"),
    ("serf-agent.serf.events", "c"),
    ("serf-agent.serf.events.telemetry-ev", "c"),
    ("serf-agent.serf.queries", "c"),
    ("serf-agent.serf.queries.telemetry-q", "c"),
    ("serf-agent.serf.query_acks", "c"),
    ("serf-agent.agent.ipc.accept", "c"),
    ("serf-agent.agent.ipc.command", "c"),
];

fn missing(names: &BTreeMap<String, String>) -> Vec<String> {
    EXPECTED
        .iter()
        .filter(|(n, k)| names.get(*n).map(String::as_str) != Some(*k))
        .map(|(n, k)| format!("{n}|{k}"))
        .collect()
}

#[test]
fn statsite_statsd_and_sigusr1_match_go() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let (go_c, rust_c) = (Collected::default(), Collected::default());
    let go = start(Impl::Go, "tele-go", &go_c, None);
    let rust = start(Impl::Rust, "tele-rust", &rust_c, Some(&go));
    wait_converged(&[&go, &rust], DEADLINE).unwrap();

    // The same traffic through both: an event and a query sent at each.
    for a in [&go, &rust] {
        let ev = go_cli("event", &a.rpc_addr(), &["telemetry-ev", "x"], CLI_TIMEOUT).unwrap();
        assert!(ev.success(), "{ev}");
        let q = go_cli(
            "query",
            &a.rpc_addr(),
            &["-timeout=2s", "telemetry-q"],
            CLI_TIMEOUT,
        )
        .unwrap();
        assert!(q.success(), "{q}");
    }

    let complete = wait_until(DEADLINE, POLL, || {
        missing(&go_c.statsite_names()).is_empty()
            && missing(&rust_c.statsite_names()).is_empty()
            && missing(&go_c.statsd_names()).is_empty()
            && missing(&rust_c.statsd_names()).is_empty()
    });
    let (gs, rs) = (go_c.statsite_names(), rust_c.statsite_names());
    assert!(
        complete,
        "statsite metrics missing: go {:?}, ours {:?}; statsd missing: go {:?}, ours {:?}",
        missing(&gs),
        missing(&rs),
        missing(&go_c.statsd_names()),
        missing(&rust_c.statsd_names()),
    );
    // Every Go metric name outside its Go runtime gauges has the same type in ours
    // when ours emits it at all.
    for (name, kind) in &gs {
        if let Some(ours) = rs.get(name) {
            assert_eq!(ours, kind, "type of {name}");
        }
    }
    // statsd datagrams stay within Go's 1400-byte packing limit (statsdMaxLen).
    for d in rust_c.statsd.lock().unwrap().iter() {
        assert!(d.len() <= 1400, "statsd datagram of {} bytes", d.len());
    }
    let go_only: BTreeSet<&String> = gs
        .keys()
        .filter(|n| !rs.contains_key(*n) && !n.contains(".runtime."))
        .collect();
    eprintln!("emitted by Go only in this run: {go_only:?}");

    // SIGUSR1: the in-memory dump, and the agent keeps running. The dump holds
    // finished 10 s intervals only, so ask until one has finished.
    for a in [&go, &rust] {
        let dumped = wait_until(Duration::from_secs(40), Duration::from_secs(2), || {
            a.signal("USR1").unwrap();
            thread::sleep(Duration::from_millis(300));
            a.log_text()
                .lines()
                .any(|l| l.contains("][C] 'serf-agent.serf.events':"))
        });
        assert!(dumped, "{}: no metrics dump after SIGUSR1", a.name());
        assert!(a.is_running(), "{} exited on SIGUSR1", a.name());
        assert!(a.members().is_ok(), "{} stopped serving", a.name());
        let log = a.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("][C] 'serf-agent.serf.events':"))
            .unwrap();
        // [2026-11-23 00:27:00 +0000 UTC][C] 'serf-agent.serf.events': Count: 1 Sum: 1.000 LastUpdated: ...
        assert!(
            line.starts_with('[') && line.contains(" +0000 UTC][C] ") && line.contains("Count: "),
            "{}: dump line {line:?}",
            a.name()
        );
    }
}
