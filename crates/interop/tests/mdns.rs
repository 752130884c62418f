//! mDNS discovery (`-discover=<cluster>`) between the Go reference agent and ours.
//!
//! Multicast needs a real link, so every test builds its own topology of network
//! namespaces: one namespace holding a bridge (multicast snooping off) and one namespace
//! per agent, linked to the bridge by a veth pair (`eth0`, 10.234.0.N/24, a route for
//! 224.0.0.0/4; IPv6 link-local only). Nothing is added to the host's own namespace, so
//! all traffic stays inside the namespaces made here. Agents run with `ip netns exec`,
//! bind their namespace's address, serve RPC on 127.0.0.1:7373 of their namespace, and are
//! started with `-discover=testcl` and no `-join`: they must find each other.
//!
//! Names carry the test process id (`serfmdns-<pid>-<tag>-…`); `Drop` kills the agents and
//! deletes the namespaces (also when a test fails), and namespaces left by a test process
//! that no longer exists are removed first.
//!
//! Needs root and `ip` (iproute2), plus both binaries: skipped with a message when one is
//! missing, failed under `CI=true`.
//!
//! Run: `cargo build --bin serf && cargo test -p serf-interop --test mdns -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::netns::{netns_prereq, Netns, NetnsSpec};
use serf_interop::{
    describe_status, fmt_view, go_serf, parse_members_json, require, run_with_timeout, wait_until,
    work_dir_for_test, Impl, Member, Prereq,
};
use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const PREFIX: &str = "serfmdns-";
const CLUSTER: &str = "testcl";
const RPC: &str = "127.0.0.1:7373";
const CMD_TIMEOUT: Duration = Duration::from_secs(15);
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Topology
// ---------------------------------------------------------------------------

/// A bridge (multicast snooping off) and one namespace per agent with a multicast route.
type Topology = Netns;

/// Builds a topology, or returns `None` after reporting the missing prerequisite.
fn topology(tag: &str, n: usize) -> Option<Topology> {
    Netns::new(
        NetnsSpec {
            prefix: PREFIX,
            subnet: "10.234.0",
            multicast: true,
            nft_table: None,
        },
        tag,
        n,
    )
}

// ---------------------------------------------------------------------------
// Agents in namespaces
// ---------------------------------------------------------------------------

/// An agent running in namespace `ns`; SIGKILLed and reaped on drop.
struct NsAgent {
    name: String,
    imp: Impl,
    ns: String,
    ip: String,
    log: PathBuf,
    child: Child,
    watchdog: Option<Child>,
}

impl NsAgent {
    fn spawn(topo: &Topology, i: usize, imp: Impl, name: &str) -> NsAgent {
        let bin = imp.bin().expect("binary (checked by require!)");
        let ns = topo.ns(i);
        let ip = topo.ip(i);
        let log = work_dir_for_test().join(format!("{name}-{imp}.log"));
        let out = File::create(&log).expect("creating the agent log");
        let err = out.try_clone().expect("cloning the log handle");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(&bin)
            .arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={ip}"))
            .arg(format!("-rpc-addr={RPC}"))
            .arg(format!("-discover={CLUSTER}"))
            .arg("-log-level=debug")
            .env_remove("SERF_RPC_AUTH")
            .env_remove("SERF_RPC_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawning the agent");
        // `ip netns exec` execs the agent, so this pid is the agent's. The watchdog kills it
        // should this test process die without running Drop.
        let watchdog = serf_interop::spawn_watchdog(child.id(), "serf-mdns-watchdog");
        NsAgent {
            name: name.to_string(),
            imp,
            ns,
            ip,
            log,
            child,
            watchdog,
        }
    }

    fn addr(&self) -> String {
        format!("{}:7946", self.ip)
    }

    fn members(&self) -> Result<Vec<Member>, String> {
        let cli = go_serf().ok_or("Go serf binary not found")?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(cli)
            .args(["members", "-format=json", &format!("-rpc-addr={RPC}")])
            .env_remove("SERF_RPC_AUTH")
            .env_remove("SERF_RPC_ADDR");
        let out = run_with_timeout(cmd, CMD_TIMEOUT)?;
        if !out.status.success() {
            return Err(format!(
                "members in {} failed ({}): {}",
                self.ns,
                describe_status(&out.status),
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        }
        parse_members_json(&String::from_utf8_lossy(&out.stdout))
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} agent {} exited ({}) before serving RPC",
                    self.imp,
                    self.name,
                    describe_status(&status)
                );
            }
            if let Ok(view) = self.members() {
                if view.iter().any(|m| m.name == self.name) {
                    return;
                }
            }
            assert!(
                start.elapsed() < READY_TIMEOUT,
                "{} agent {} not ready after {READY_TIMEOUT:?}",
                self.imp,
                self.name
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_text(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The addresses of every `agent: joining: [...]` log line.
    fn joined_addrs(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter_map(|l| l.split_once("agent: joining: [").map(|(_, r)| r))
            .filter_map(|r| r.split_once(']').map(|(list, _)| list))
            .flat_map(|list| list.split_whitespace().map(str::to_string))
            .collect()
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let text = self.log_text();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "\n===== {} agent {} ({}) log tail: {} =====\n{}\n===== end {} =====",
                self.imp,
                self.name,
                self.ns,
                self.log.display(),
                lines[lines.len().saturating_sub(40)..].join("\n"),
                self.name
            );
        }
    }
}

/// Waits until every agent lists exactly `agents`, all alive.
fn wait_cluster(agents: &[&NsAgent]) -> Duration {
    let start = Instant::now();
    let mut names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    names.sort_unstable();
    let mut last = String::new();
    let ok = wait_until(DISCOVERY_TIMEOUT, Duration::from_millis(200), || {
        agents.iter().all(|a| match a.members() {
            Ok(view) => {
                let mut alive: Vec<&str> = view
                    .iter()
                    .filter(|m| m.status == "alive")
                    .map(|m| m.name.as_str())
                    .collect();
                alive.sort_unstable();
                let want_addrs = view.iter().all(|m| {
                    agents
                        .iter()
                        .find(|x| x.name == m.name)
                        .is_some_and(|x| m.addr == x.addr() && m.port == 7946)
                });
                if alive == names && want_addrs && view.len() == names.len() {
                    true
                } else {
                    last = format!("{}: {}", a.name, fmt_view(&view));
                    false
                }
            }
            Err(e) => {
                last = e;
                false
            }
        })
    });
    assert!(
        ok,
        "no cluster of {names:?} after {DISCOVERY_TIMEOUT:?}; last view {last}"
    );
    start.elapsed()
}

/// `first` runs alone (it queries once at start and then only after 60 s); `second`,
/// started later, must find it by its own start-up query and join it.
fn discovery(tag: &str, first: Impl, second: Impl) {
    require!(first.prereq(), second.prereq(), Prereq::GoSerf);
    if !netns_prereq(false) {
        return;
    }
    let Some(topo) = topology(tag, 2) else {
        return;
    };
    let mut a = NsAgent::spawn(&topo, 1, first, &format!("{first}-alpha"));
    a.wait_ready();
    let mut b = NsAgent::spawn(&topo, 2, second, &format!("{second}-beta"));
    b.wait_ready();
    let took = wait_cluster(&[&a, &b]);
    eprintln!("[mdns] {first} seed, {second} discoverer: cluster after {took:?}");
    // The discoverer joined the seed (and itself: each address is joined once).
    let joined = b.joined_addrs();
    assert!(
        joined.contains(&a.addr()),
        "{} did not join {} through mDNS; joins: {joined:?}",
        b.name,
        a.addr()
    );
    assert!(
        b.log_text().contains("agent.mdns: Joined"),
        "no `agent.mdns: Joined N hosts` line in {}",
        b.log.display()
    );
    // The seed only joined itself (its next query is 60 s away).
    let joined = a.joined_addrs();
    assert!(
        !joined.contains(&b.addr()),
        "{} joined {} itself: {joined:?}",
        a.name,
        b.addr()
    );
    drop((a, b));
    drop(topo);
}

#[test]
fn rust_discovers_go() {
    discovery("rg", Impl::Go, Impl::Rust);
}

#[test]
fn go_discovers_rust() {
    discovery("gr", Impl::Rust, Impl::Go);
}

#[test]
fn rust_discovers_rust() {
    discovery("rr", Impl::Rust, Impl::Rust);
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn replace(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// A one-shot query (from an ephemeral port, as hashicorp/mdns sends it) from a third
/// namespace gets, from the Go agent and from ours, the same answer byte for byte once the
/// node name and address are swapped: unicast from port 5353, ID 0, flags 0x8400, the
/// PTR, SRV, A and TXT records in the Answer section, TTL 120, the same name compression.
#[test]
fn answers_match_go_on_the_wire() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    if !netns_prereq(false) {
        return;
    }
    let Some(topo) = topology("wire", 3) else {
        return;
    };
    // Same-length names, so that only these bytes differ.
    let mut go = NsAgent::spawn(&topo, 1, Impl::Go, "gonode");
    let mut rs = NsAgent::spawn(&topo, 2, Impl::Rust, "rsnode");
    go.wait_ready();
    rs.wait_ready();
    let probe = env!("CARGO_BIN_EXE_mdns_probe");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &topo.ns(3), probe])
        .arg(format!("_serf_{CLUSTER}._tcp.local."))
        .arg("1500");
    let out = run_with_timeout(cmd, CMD_TIMEOUT).expect("running mdns_probe");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mdns_probe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<(String, Vec<u8>)> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(from, h)| (from.to_string(), unhex(h)))
        .collect();
    let from_go: Vec<&(String, Vec<u8>)> = answers
        .iter()
        .filter(|(_, p)| p.windows(6).any(|w| w == b"gonode"))
        .collect();
    let from_rs: Vec<&(String, Vec<u8>)> = answers
        .iter()
        .filter(|(_, p)| p.windows(6).any(|w| w == b"rsnode"))
        .collect();
    assert!(
        from_go.iter().any(|(f, _)| f == "10.234.0.1:5353"),
        "no IPv4 answer from the Go agent: {text}"
    );
    assert!(
        from_rs.iter().any(|(f, _)| f == "10.234.0.2:5353"),
        "no IPv4 answer from ours: {text}"
    );
    assert!(
        from_rs.iter().all(|(f, _)| f.ends_with(":5353")),
        "answers must come from port 5353: {text}"
    );
    assert_eq!(
        from_go.len(),
        from_rs.len(),
        "Go and ours answered over different families: {text}"
    );
    let go_norm = |p: &[u8]| {
        replace(
            &replace(p, b"gonode", b"rsnode"),
            &[4, 10, 234, 0, 1],
            &[4, 10, 234, 0, 2],
        )
    };
    let reference = go_norm(&from_go[0].1);
    assert_eq!(
        &reference[..12],
        &[0, 0, 0x84, 0, 0, 0, 0, 4, 0, 0, 0, 0],
        "Go's answer header"
    );
    for (from, p) in from_go.iter().map(|(f, p)| (f, go_norm(p))) {
        assert_eq!(p, reference, "Go answers differ between families ({from})");
    }
    for (from, p) in &from_rs {
        assert_eq!(
            *p,
            reference,
            "our answer from {from} differs from Go's\n ours: {}\n   go: {}",
            p.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            reference
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
    eprintln!(
        "[mdns] {} answers from Go and {} from ours, identical after renaming ({} bytes)",
        from_go.len(),
        from_rs.len(),
        reference.len()
    );
    drop((go, rs));
    drop(topo);
}
