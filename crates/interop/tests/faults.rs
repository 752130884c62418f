//! Real network faults between Go `serf` agents and ours: a partition and its heal, UDP
//! blocked with TCP open, 10% random loss, and a node starved of CPU.
//!
//! Every test builds its own network: a "switch" namespace holding a bridge, and one
//! namespace per agent linked to it by a veth pair (`eth0`, 10.236.0.N/24). Faults are
//! nftables rules in table `inet serffault` of an agent's namespace. Nothing is added to
//! the host's own namespace, so all traffic stays inside namespaces made here. Agents run
//! with `ip netns exec`, bind their namespace's address, and serve RPC on 127.0.0.1:7373
//! of their namespace; a `netns_watch` helper per agent (in the same namespace) polls its
//! member list over RPC and streams it back.
//!
//! Names carry the test process id (`serffault-<pid>-<tag>-…`). `Drop` guards SIGCONT and
//! kill the processes started here (by pid), delete each nft table and namespace by the
//! name it was made with (the veths go with their namespaces), also when a test fails;
//! namespaces left by a test process that no longer exists are removed first.
//!
//! Needs root, `ip` (iproute2), `nft` (nftables) and both binaries: skipped with a message
//! when one is missing, failed under `CI=true`. The tests use disjoint names, so they may
//! run concurrently; each takes one to two minutes.
//!
//! Run: `cargo build --bin serf && cargo test -p serf-interop --test faults -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::netns::{netns_prereq, run_cmd, Netns, NetnsSpec};
use serf_interop::{
    current_test_name, go_serf, require, spawn_watchdog, work_dir_for_test, Impl, Prereq,
};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const PREFIX: &str = "serffault-";
const TABLE: &str = "serffault";
const RPC: &str = "127.0.0.1:7373";
const WATCH_MS: u64 = 200;

/// Root, `ip`, `nft` and both binaries; false (after a skip message) when not all there.
fn prereq() -> bool {
    require(&[Prereq::GoSerf, Prereq::RustSerf]) && netns_prereq(true)
}

// ---------------------------------------------------------------------------
// Network: namespaces, bridge, nftables
// ---------------------------------------------------------------------------

const SPEC: NetnsSpec = NetnsSpec {
    prefix: PREFIX,
    subnet: "10.236.0",
    multicast: false,
    nft_table: Some(TABLE),
};

/// The test network ([`Netns`]) and the faults made of its nftables rules.
struct Net(Netns);

impl Net {
    fn new(tag: &str, n: usize) -> Option<Net> {
        Netns::new(SPEC, tag, n).map(Net)
    }

    fn ns(&self, i: usize) -> String {
        self.0.ns(i)
    }

    fn ip(i: usize) -> String {
        format!("{}.{i}", SPEC.subnet)
    }

    /// Drops everything (or only `proto`, e.g. `udp`) arriving at namespace `i` from
    /// `peers`. Dropped on arrival, not on the way out: a drop in the sender's own output
    /// hook fails its `sendto` with EPERM, which memberlist treats differently from a loss.
    fn block(&self, i: usize, peers: &[usize], proto: Option<&str>) {
        let set: Vec<String> = peers.iter().map(|&p| Self::ip(p)).collect();
        let set = format!("{{ {} }}", set.join(", "));
        let l4 = proto.map_or(String::new(), |p| format!("meta l4proto {p} "));
        self.0.rule(i, &format!("{l4}ip saddr {set} drop"));
    }

    /// [`Net::block`] both ways between every node of `a` and every node of `b`.
    fn cut(&self, a: &[usize], b: &[usize], proto: Option<&str>) {
        for &i in a {
            self.block(i, b, proto);
        }
        for &i in b {
            self.block(i, a, proto);
        }
    }

    /// Drops 1 in `one_in` packets arriving on `eth0` of namespace `i`, at random.
    fn random_loss(&self, i: usize, one_in: u32) {
        self.0.rule(
            i,
            &format!("iifname eth0 numgen random mod {one_in} 0 drop"),
        );
    }

    /// Removes every rule of namespace `i`.
    fn clear(&self, i: usize) {
        self.0.flush(i);
    }
}

// ---------------------------------------------------------------------------
// Agents and their watchers
// ---------------------------------------------------------------------------

/// One member-list poll: when it arrived, and name → status.
type View = (Instant, BTreeMap<String, String>);

/// An agent in namespace `i`, with a `netns_watch` streaming its member list; both
/// SIGCONTed, SIGKILLed and reaped on drop.
struct NsAgent {
    name: String,
    imp: Impl,
    i: usize,
    ns: String,
    log: PathBuf,
    child: Child,
    watchdog: Option<Child>,
    watch: Option<Child>,
    views: Arc<Mutex<Vec<View>>>,
}

impl NsAgent {
    fn spawn(net: &Net, i: usize, imp: Impl, name: &str, join: Option<usize>) -> NsAgent {
        let bin = imp.bin().expect("binary (checked by prereq)");
        let ns = net.ns(i);
        let ip = Net::ip(i);
        let log = work_dir_for_test().join(format!("{name}-{imp}.log"));
        let out = File::create(&log).expect("creating the agent log");
        let err = out.try_clone().expect("cloning the log handle");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns])
            .arg(&bin)
            .arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={ip}:7946"))
            .arg(format!("-rpc-addr={RPC}"))
            .env_remove("SERF_RPC_AUTH")
            .env_remove("SERF_RPC_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if let Some(j) = join {
            cmd.arg(format!("-join={}:7946", Net::ip(j)));
        }
        let child = cmd.spawn().expect("spawning the agent");
        // `ip netns exec` execs the agent, so this pid is the agent's. The watchdog kills it
        // should this test process die without running Drop.
        let watchdog = spawn_watchdog(child.id(), "serf-fault-watchdog");
        let mut agent = NsAgent {
            name: name.to_string(),
            imp,
            i,
            ns,
            log,
            child,
            watchdog,
            watch: None,
            views: Arc::default(),
        };
        agent.start_watch();
        agent
    }

    fn start_watch(&mut self) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(env!("CARGO_BIN_EXE_netns_watch"))
            .args([RPC, &WATCH_MS.to_string(), "900"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning netns_watch");
        let stdout = child.stdout.take().expect("piped stdout");
        let views = Arc::clone(&self.views);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let mut parts = line.split_whitespace();
                let _unix_ms = parts.next();
                let rest: Vec<&str> = parts.collect();
                if rest.first() == Some(&"ERR") {
                    continue;
                }
                let view: BTreeMap<String, String> = rest
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                views
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((Instant::now(), view));
            }
        });
        self.watch = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The latest view, if any.
    fn view(&self) -> Option<View> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// Every view received since `since`.
    fn views_since(&self, since: Instant) -> Vec<View> {
        self.views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(t, _)| *t >= since)
            .cloned()
            .collect()
    }

    fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status();
    }

    fn log_text(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Log lines containing `needle`.
    fn count_log(&self, needle: &str) -> usize {
        self.log_text()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// `serf join` from this agent to the agent in namespace `to` (Go CLI over RPC).
    fn join(&self, to: usize) -> Result<(), String> {
        let cli = go_serf().ok_or("Go serf binary not found")?;
        let cli = cli.to_string_lossy().into_owned();
        let rpc = format!("-rpc-addr={RPC}");
        let addr = format!("{}:7946", Net::ip(to));
        run_cmd(
            "ip",
            &["netns", "exec", &self.ns, &cli, "join", &rpc, &addr],
        )
    }
}

impl Drop for NsAgent {
    fn drop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if let Some(mut w) = self.watch.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        self.signal("CONT");
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
                lines[lines.len().saturating_sub(30)..].join("\n"),
                self.name
            );
        }
    }
}

/// Whether `view` lists exactly `names`, all with `status`.
fn all_with_status(view: &BTreeMap<String, String>, names: &[&str], status: &str) -> bool {
    names
        .iter()
        .all(|n| view.get(*n).is_some_and(|s| s == status))
}

fn fmt_view(view: &BTreeMap<String, String>) -> String {
    view.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls until `pred` holds for every agent's latest view, or `timeout`.
fn wait_views(
    agents: &[&NsAgent],
    timeout: Duration,
    what: &str,
    pred: impl Fn(&NsAgent, &BTreeMap<String, String>) -> bool,
) {
    let start = Instant::now();
    loop {
        let ok = agents
            .iter()
            .all(|a| a.view().is_some_and(|(_, v)| pred(a, &v)));
        if ok {
            return;
        }
        if start.elapsed() > timeout {
            let views: Vec<String> = agents
                .iter()
                .map(|a| {
                    let v = a.view().map(|(_, v)| fmt_view(&v)).unwrap_or_default();
                    format!("{}: {v}", a.name)
                })
                .collect();
            panic!(
                "{what}: not within {timeout:?}; views:\n{}",
                views.join("\n")
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Starts agents `specs[k] = (impl, name)` in namespaces 1..; each joins namespace 1's.
fn start_cluster(net: &Net, specs: &[(Impl, &str)]) -> Vec<NsAgent> {
    let mut agents = Vec::new();
    for (k, (imp, name)) in specs.iter().enumerate() {
        let join = (k > 0).then_some(1);
        agents.push(NsAgent::spawn(net, k + 1, *imp, name, join));
        if k == 0 {
            // The seed must listen before the others join it.
            let a = &agents[0];
            wait_views(&[a], Duration::from_secs(30), "seed agent up", |a, v| {
                v.contains_key(&a.name)
            });
        }
    }
    let names: Vec<&str> = specs.iter().map(|(_, n)| *n).collect();
    let refs: Vec<&NsAgent> = agents.iter().collect();
    wait_views(
        &refs,
        Duration::from_secs(60),
        "initial convergence",
        |_, v| v.len() == names.len() && all_with_status(v, &names, "alive"),
    );
    agents
}

fn names_of(agents: &[NsAgent]) -> Vec<&str> {
    agents.iter().map(|a| a.name.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// A mixed cluster (3 Go + 3 ours, each half mixed) is cut in two with nftables drops,
/// held until each half has marked the other failed and for 40 s in all (by then some
/// nodes have forgotten the other half in memberlist and some still hold it dead), then
/// healed. The heal is followed at once by one exchange across, a `serf join` from a Go
/// node to a Go node of the other half: it stands in for the first reconnect, which Serf
/// fires every 30 s at a random phase per node. From there every node, Go and ours, must
/// see every node alive within 5 s of the heal. Two cycles. Before the core fix, one of
/// our nodes could miss the news and wait up to its next push/pull (~14 s measured).
#[test]
fn partition_heals_within_5s_for_every_node() {
    if !prereq() {
        return;
    }
    let Some(net) = Net::new("heal", 6) else {
        return;
    };
    let specs = [
        (Impl::Go, "go-a1"),
        (Impl::Rust, "rs-a2"),
        (Impl::Go, "go-a3"),
        (Impl::Go, "go-b4"),
        (Impl::Rust, "rs-b5"),
        (Impl::Rust, "rs-b6"),
    ];
    let agents = start_cluster(&net, &specs);
    let names = names_of(&agents);
    let refs: Vec<&NsAgent> = agents.iter().collect();
    let (a, b): (Vec<usize>, Vec<usize>) = (vec![1, 2, 3], vec![4, 5, 6]);
    let side = |i: usize| if a.contains(&i) { &a } else { &b };
    let mut worst = (Duration::ZERO, String::new());
    for cycle in 1..=2 {
        let cut = Instant::now();
        net.cut(&a, &b, None);
        wait_views(
            &refs,
            Duration::from_secs(60),
            "each half marks the other failed",
            |ag, v| {
                names.iter().enumerate().all(|(k, n)| {
                    let want = if side(ag.i).contains(&(k + 1)) {
                        "alive"
                    } else {
                        "failed"
                    };
                    v.get(*n).is_some_and(|s| s == want)
                })
            },
        );
        let detect = cut.elapsed();
        thread::sleep(Duration::from_secs(40).saturating_sub(cut.elapsed()));
        for i in 1..=6 {
            net.clear(i);
        }
        let healed = Instant::now();
        agents[0].join(4).expect("serf join across the healed cut");
        wait_views(
            &refs,
            Duration::from_secs(60),
            "everyone alive after the heal",
            |_, v| all_with_status(v, &names, "alive"),
        );
        let mut per_node = Vec::new();
        for ag in &agents {
            let first = ag
                .views_since(healed)
                .into_iter()
                .find(|(_, v)| all_with_status(v, &names, "alive"))
                .map(|(t, _)| t.saturating_duration_since(healed))
                .expect("a view with everyone alive");
            per_node.push(format!("{}={:.2}s", ag.name, first.as_secs_f64()));
            if first > worst.0 {
                worst = (first, format!("{} in cycle {cycle}", ag.name));
            }
        }
        println!(
            "measured: heal cycle {cycle}: halves marked each other failed after {:.1} s; \
             seconds from heal until each node saw all six alive: {}",
            detect.as_secs_f64(),
            per_node.join(" ")
        );
        assert!(
            worst.0 <= Duration::from_secs(5),
            "cycle {cycle}: a node took more than 5 s after the heal to see everyone alive: {}",
            per_node.join(" ")
        );
    }
    println!(
        "measured: slowest node to see all six alive after a heal: {:.2} s ({})",
        worst.0.as_secs_f64(),
        worst.1
    );
}

/// UDP is dropped between a Go agent and ours (both ways), TCP stays open. In a cluster
/// of just these two, every UDP probe fails and there are no relays for indirect probes:
/// only memberlist's TCP fallback ping keeps each from accusing the other. Neither may
/// ever see the other failed over 30 s, and both must log that the fallback worked.
#[test]
fn udp_blocked_tcp_open_no_false_failure() {
    if !prereq() {
        return;
    }
    let Some(net) = Net::new("udp", 2) else {
        return;
    };
    let agents = start_cluster(&net, &[(Impl::Go, "go-u1"), (Impl::Rust, "rs-u2")]);
    let names = names_of(&agents);
    net.cut(&[1], &[2], Some("udp"));
    let blocked = Instant::now();
    thread::sleep(Duration::from_secs(30));
    for ag in &agents {
        let views = ag.views_since(blocked);
        assert!(
            views.len() > 50,
            "{}: too few polls ({})",
            ag.name,
            views.len()
        );
        if let Some((t, v)) = views
            .iter()
            .find(|(_, v)| !all_with_status(v, &names, "alive"))
        {
            panic!(
                "{} saw {} after {:.1} s with UDP blocked",
                ag.name,
                fmt_view(v),
                t.saturating_duration_since(blocked).as_secs_f64()
            );
        }
    }
    for ag in &agents {
        let other = names.iter().find(|n| **n != ag.name).expect("two agents");
        let fallback = ag.count_log(&format!("Was able to connect to {other}"));
        let accused = ag.count_log(&format!("Suspect {other} has failed"));
        println!(
            "measured: UDP blocked 30 s: {} ({}) probed {other} through the TCP fallback {fallback} times, \
             accused it {accused} times",
            ag.name, ag.imp
        );
        assert!(
            fallback > 0,
            "{}: no probe went through the TCP fallback",
            ag.name
        );
        assert_eq!(accused, 0, "{}: accused {other} with TCP open", ag.name);
    }
}

/// 10% of the packets arriving at each agent of a mixed cluster (3 Go + 3 ours) are
/// dropped at random for two minutes. No node may ever be seen failed by any node.
#[test]
fn ten_percent_loss_no_node_ever_failed() {
    if !prereq() {
        return;
    }
    let Some(net) = Net::new("loss", 6) else {
        return;
    };
    let specs = [
        (Impl::Go, "go-l1"),
        (Impl::Rust, "rs-l2"),
        (Impl::Go, "go-l3"),
        (Impl::Rust, "rs-l4"),
        (Impl::Go, "go-l5"),
        (Impl::Rust, "rs-l6"),
    ];
    let agents = start_cluster(&net, &specs);
    let names = names_of(&agents);
    for i in 1..=agents.len() {
        net.random_loss(i, 10);
    }
    let lossy = Instant::now();
    thread::sleep(Duration::from_secs(120));
    for i in 1..=agents.len() {
        net.clear(i);
    }
    let mut polls = 0;
    for ag in &agents {
        let views = ag.views_since(lossy);
        polls += views.len();
        assert!(
            views.len() > 200,
            "{}: too few polls ({})",
            ag.name,
            views.len()
        );
        if let Some((t, v)) = views
            .iter()
            .find(|(_, v)| !all_with_status(v, &names, "alive"))
        {
            panic!(
                "{} saw {} after {:.1} s of 10% loss",
                ag.name,
                fmt_view(v),
                t.saturating_duration_since(lossy).as_secs_f64()
            );
        }
    }
    for imp in [Impl::Go, Impl::Rust] {
        let accusations: usize = agents
            .iter()
            .filter(|a| a.imp == imp)
            .map(|a| a.count_log("has failed, no acks received"))
            .sum();
        println!(
            "measured: 10% loss for 120 s: suspicions raised by the 3 {imp} agents' probes: {accusations}"
        );
    }
    println!("measured: 10% loss for 120 s: {polls} member-list polls, no member ever seen failed");
}

/// Accusations of one starved node by the others of a mixed cluster.
struct Starved {
    suspected: usize,
    failed: usize,
}

/// A cluster of the victim (`imp`) and four others (2 Go, 2 ours); the victim is stopped
/// for `stopped`, then runs for `running`, over and over (SIGSTOP/SIGCONT) for 45 s.
/// Counts the others' probes that suspected it and their failed events about it.
fn starve(tag: &str, imp: Impl, stopped: Duration, running: Duration) -> Option<Starved> {
    let net = Net::new(tag, 5)?;
    let victim = format!("victim-{tag}");
    let specs = [
        (Impl::Go, format!("go-{tag}1")),
        (Impl::Rust, format!("rs-{tag}2")),
        (Impl::Go, format!("go-{tag}3")),
        (Impl::Rust, format!("rs-{tag}4")),
        (imp, victim.clone()),
    ];
    let specs: Vec<(Impl, &str)> = specs.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let agents = start_cluster(&net, &specs);
    let names = names_of(&agents);
    let v = &agents[4];
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(45) {
        v.signal("STOP");
        thread::sleep(stopped);
        v.signal("CONT");
        thread::sleep(running);
    }
    // Let a pending suspicion run out before counting.
    thread::sleep(Duration::from_secs(10));
    let others = &agents[..4];
    let suspected = others
        .iter()
        .map(|a| a.count_log(&format!("Suspect {victim} has failed")))
        .sum();
    let failed = others
        .iter()
        .map(|a| a.count_log(&format!("EventMemberFailed: {victim} ")))
        .sum();
    let refs: Vec<&NsAgent> = agents.iter().collect();
    wait_views(
        &refs,
        Duration::from_secs(60),
        "everyone alive after the starvation",
        |_, v| all_with_status(v, &names, "alive"),
    );
    Some(Starved { suspected, failed })
}

/// Runs [`starve`] with a Go victim and with one of ours at the same time, in separate
/// networks (so both share the machine's load), prints both counts and checks ours
/// against Go's.
fn compare_starved(tag: &str, stopped: Duration, running: Duration) {
    let go_tag = format!("{tag}go");
    let go = thread::Builder::new()
        .name(format!("{}-go", current_test_name()))
        .spawn(move || starve(&go_tag, Impl::Go, stopped, running))
        .expect("thread");
    let ours = starve(&format!("{tag}rs"), Impl::Rust, stopped, running);
    let go = go.join().expect("the Go scenario panicked");
    let (Some(go), Some(ours)) = (go, ours) else {
        return;
    };
    println!(
        "measured: stopped {} ms / running {} ms for 45 s: Go victim suspected {} times, \
         failed {} times; our victim suspected {} times, failed {} times (by 2 Go + 2 ours)",
        stopped.as_millis(),
        running.as_millis(),
        go.suspected,
        go.failed,
        ours.suspected,
        ours.failed
    );
    assert!(
        ours.suspected <= go.suspected + 3,
        "ours suspected {} times, Go's {}",
        ours.suspected,
        go.suspected
    );
    assert!(
        ours.failed <= go.failed + 1,
        "ours failed {} times, Go's {}",
        ours.failed,
        go.failed
    );
}

/// A node starved of CPU (stopped 300 ms of every second) is not accused by the others
/// more when it is one of ours than when it is a Go agent. At this rate neither is
/// usually accused at all (an ack delayed 300 ms still beats the probe's deadline).
#[test]
fn starved_node_not_accused_more_than_go() {
    if !prereq() {
        return;
    }
    compare_starved("s", Duration::from_millis(300), Duration::from_millis(700));
}

/// The same, starved harder (stopped 1.5 s, then running 1 s): longer than the 1 s probe
/// deadline, so probes that start early in a stop fail whoever the victim is, and the
/// accusations are true ones. Not run by default: a minute long, and the counts vary as much
/// between runs as between the two implementations. With the release build, four runs
/// (suspected by the others, ours vs Go): 8 vs 8, 8 vs 12, 12 vs 6, 14 vs 8. An strace of our
/// victim shows it answering the pings queued while it was stopped, and the TCP fallback
/// ping, within 2 ms of SIGCONT, as Go's does; the earlier 11 vs 6 and 8 vs 4 were measured
/// with the debug build.
#[test]
#[ignore = "a minute long; the counts at 1.5 s stops vary between runs as much as between implementations"]
fn hard_starved_node_not_accused_more_than_go() {
    if !prereq() {
        return;
    }
    compare_starved(
        "h",
        Duration::from_millis(1500),
        Duration::from_millis(1000),
    );
}
