//! Our `serf` CLI against live agents, compared with the Go CLI run against the same agent
//! (Go agents and ours): every client command, normalising what Go prints in random order
//! (member order, tag order, acks/responses, key listings) and what changes between two
//! runs (times, goroutines, RTT estimates).
//!
//! Run: `cargo build --bin serf && cargo test -p serf-interop --test cli -- --nocapture`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{
    describe_status, go_serf, keygen, our_serf, require, run_with_timeout, wait_member_status,
    wait_until, work_dir_for_test, Agent, AgentSpec, CliOutput, Cluster, Impl, NodeSpec, Prereq,
    CLI_TIMEOUT, DEADLINE, POLL,
};
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Running the two CLIs
// ---------------------------------------------------------------------------

fn cli_bin(imp: Impl) -> PathBuf {
    match imp {
        Impl::Go => go_serf().expect("Go serf"),
        Impl::Rust => our_serf().expect("our serf"),
    }
}

/// `<bin> <sub> -rpc-addr=<rpc> <args...>` with extra environment.
fn cli_env(imp: Impl, sub: &str, rpc: &str, args: &[&str], env: &[(&str, &str)]) -> CliOutput {
    let mut cmd = Command::new(cli_bin(imp));
    cmd.arg(sub);
    if !rpc.is_empty() {
        cmd.arg(format!("-rpc-addr={rpc}"));
    }
    cmd.args(args)
        .env_remove("SERF_RPC_AUTH")
        .env_remove("SERF_RPC_ADDR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with_timeout(cmd, CLI_TIMEOUT).unwrap();
    CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn cli(imp: Impl, sub: &str, rpc: &str, args: &[&str]) -> CliOutput {
    cli_env(imp, sub, rpc, args, &[])
}

/// Runs the command with our CLI and then with Go's against the same agent, and checks
/// exit code, stderr and normalised stdout are equal. Returns our output.
fn same(
    what: &str,
    agent: &Agent,
    sub: &str,
    args: &[&str],
    norm: fn(&str) -> String,
) -> CliOutput {
    let ours = cli(Impl::Rust, sub, &agent.rpc_addr(), args);
    let go = cli(Impl::Go, sub, &agent.rpc_addr(), args);
    compare(
        &format!("{what} ({} agent {})", agent.imp(), agent.name()),
        &ours,
        &go,
        norm,
    );
    ours
}

fn compare(what: &str, ours: &CliOutput, go: &CliOutput, norm: fn(&str) -> String) {
    assert_eq!(
        (ours.code(), ours.stderr.as_str(), norm(&ours.stdout)),
        (go.code(), go.stderr.as_str(), norm(&go.stdout)),
        "{what}: our CLI vs Go CLI\n  ours: {ours}\n  go:   {go}"
    );
}

// ---------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------

fn exact(s: &str) -> String {
    s.to_string()
}

fn sorted_lines(s: &str) -> String {
    let mut l: Vec<&str> = s.lines().collect();
    l.sort_unstable();
    l.join("\n")
}

/// `members` text: lines sorted, tag lists sorted, cells split at 2+ spaces (the trimmed
/// line length is kept to compare alignment; member order decides which line loses its
/// trailing padding).
fn members_text(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|line| {
            let cells: Vec<String> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    if c.contains('=') && !c.contains(": ") {
                        let mut t: Vec<&str> = c.split(',').collect();
                        t.sort_unstable();
                        t.join(",")
                    } else {
                        c.to_string()
                    }
                })
                .collect();
            format!("{}|{}", line.trim_end().chars().count(), cells.join("|"))
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

/// `members -format=json`: the members sorted by name (keys and indentation stay as
/// printed, so the text format is still compared member by member).
fn members_json(s: &str) -> String {
    let v: serde_json::Value = match serde_json::from_str(s) {
        Ok(v) => v,
        Err(_) => return s.to_string(),
    };
    let Some(list) = v["members"].as_array() else {
        return s.to_string();
    };
    let mut items: Vec<String> = list
        .iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect();
    items.sort();
    // Also check the indentation/line structure independently of order.
    let mut lines: Vec<&str> = s.lines().map(|l| l.trim_end_matches(',')).collect();
    lines.sort_unstable();
    format!("{}\n--\n{}", items.join("\n"), lines.join("\n"))
}

/// `query` text: the first line, the sorted ack/response lines, the totals.
fn query_text(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if lines.len() < 2 {
        return s.to_string();
    }
    let totals = lines.iter().filter(|l| l.starts_with("Total ")).count();
    let mut mid: Vec<&str> = lines[1..lines.len() - totals].to_vec();
    mid.sort_unstable();
    let mut out = vec![lines[0]];
    out.extend(mid);
    out.extend(&lines[lines.len() - totals..]);
    out.join("\n")
}

/// `query -format=json`: `Acks` sorted.
fn query_json(s: &str) -> String {
    let mut v: serde_json::Value = match serde_json::from_str(s) {
        Ok(v) => v,
        Err(_) => return s.to_string(),
    };
    if let Some(a) = v["Acks"].as_array_mut() {
        a.sort_by_key(|x| x.to_string());
    }
    // Arrival order moves the separating commas between ack lines.
    let mut lines: Vec<&str> = s.lines().map(|l| l.trim_end_matches(',')).collect();
    lines.sort_unstable();
    format!("{v}\n--\n{}", lines.join("\n"))
}

/// Stats values that change by themselves between two runs.
fn volatile(section: &str, key: &str) -> bool {
    (section == "runtime" && key == "goroutines")
        || (section == "serf"
            && (key.ends_with("_time") || key.ends_with("_queue") || key == "health_score"))
}

/// `info` text: sections and keys, volatile values blanked.
fn info_text(s: &str) -> String {
    let mut section = String::new();
    let mut out = Vec::new();
    for l in s.lines() {
        if let Some(kv) = l.strip_prefix('\t') {
            let (k, v) = kv.split_once(" = ").unwrap_or((kv, ""));
            let v = if volatile(&section, k) { "*" } else { v };
            out.push(format!("\t{k} = {v}"));
        } else {
            section = l.trim_end_matches(':').to_string();
            out.push(l.to_string());
        }
    }
    out.join("\n")
}

/// `info -format=json`: volatile values blanked (key order and indentation kept).
fn info_json(s: &str) -> String {
    let mut section = String::new();
    let mut out = Vec::new();
    for l in s.lines() {
        let t = l.trim();
        if l.starts_with("  \"") && l.ends_with('{') {
            section = t.split('"').nth(1).unwrap_or("").to_string();
            out.push(l.to_string());
        } else if l.starts_with("    \"") {
            let key = t.split('"').nth(1).unwrap_or("");
            if volatile(&section, key) {
                out.push(format!("    \"{key}\": *"));
            } else {
                out.push(l.to_string());
            }
        } else {
            out.push(l.to_string());
        }
    }
    out.join("\n")
}

/// `rtt`: the estimate blanked.
fn rtt_text(s: &str) -> String {
    match s.find(" rtt: ") {
        Some(i) if s.ends_with(" ms\n") => format!("{} rtt: X ms", &s[..i]),
        _ => s.to_string(),
    }
}

/// `reachability -verbose`: times blanked, ack lines sorted.
fn reach_text(s: &str) -> String {
    let mut lines: Vec<String> = s
        .lines()
        .map(|l| {
            if l.starts_with("Query time: ") {
                "Query time: X".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// Background CLI processes (monitor)
// ---------------------------------------------------------------------------

struct Bg {
    child: Child,
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
}

impl Bg {
    fn spawn(imp: Impl, sub: &str, rpc: &str, args: &[&str]) -> Bg {
        let mut child = Command::new(cli_bin(imp))
            .arg(sub)
            .arg(format!("-rpc-addr={rpc}"))
            .args(args)
            .env_remove("SERF_RPC_AUTH")
            .env_remove("SERF_RPC_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut o = child.stdout.take().unwrap();
        let mut e = child.stderr.take().unwrap();
        Bg {
            child,
            out: Some(thread::spawn(move || {
                let mut b = Vec::new();
                let _ = o.read_to_end(&mut b);
                b
            })),
            err: Some(thread::spawn(move || {
                let mut b = Vec::new();
                let _ = e.read_to_end(&mut b);
                b
            })),
        }
    }

    fn sigint(&self) {
        let _ = Command::new("kill")
            .arg("-INT")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the exit (killing it after `timeout`); returns (code, stdout, stderr).
    fn finish(mut self, timeout: Duration) -> (i32, String, String) {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                let s = self.child.wait().unwrap();
                panic!(
                    "{:?} did not exit within {timeout:?}: {}",
                    self.child,
                    describe_status(&s)
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let out = self.out.take().unwrap().join().unwrap();
        let err = self.err.take().unwrap().join().unwrap();
        (
            status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The sorted lines of the `Event Info:` block whose `Name` is `name`.
fn event_block(out: &str, name: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = out.lines().collect();
    let needle = format!("\tName: \"{name}\"");
    for (i, l) in lines.iter().enumerate() {
        if *l != "Event Info:" {
            continue;
        }
        let mut block: Vec<String> = lines[i + 1..]
            .iter()
            .take_while(|l| l.starts_with('\t'))
            .map(|l| l.to_string())
            .collect();
        if block.contains(&needle) {
            block.sort();
            return Some(block);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------

const HANDLER: &str = "-event-handler=query:cliq=echo resp-from-$SERF_SELF_NAME";

/// g1 (Go) ← r1 (Rust) ← g2 (Go), with tags and a `cliq` query handler on every node.
fn read_cluster() -> Cluster {
    let nodes = [
        NodeSpec::new(Impl::Go, "g1")
            .tag("role", "web")
            .tag("dc", "east")
            .tag("weird-tag.name", "x y")
            .arg(HANDLER),
        NodeSpec::new(Impl::Rust, "r1")
            .tag("role", "db")
            .join(0)
            .arg(HANDLER),
        NodeSpec::new(Impl::Go, "g2").join(1).arg(HANDLER),
    ];
    let cluster = Cluster::start(&nodes, None).unwrap();
    cluster.wait_converged(DEADLINE).unwrap();
    cluster
}

fn prereqs() -> bool {
    require(&[Prereq::GoSerf, Prereq::RustSerf])
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// members, info, rtt, query, event, force-leave, keys (unencrypted), join errors and
/// reachability: our CLI prints what the Go CLI prints, against a Go agent and ours.
#[test]
fn read_commands_match_go_cli() {
    if !prereqs() {
        return;
    }
    let cluster = read_cluster();
    let closed = format!("127.0.0.1:{}", serf_interop::free_tcp_port());
    for name in ["g1", "r1"] {
        let a = cluster.agent(name);
        let other = if name == "g1" { "r1" } else { "g1" };

        // members
        let out = same("members", a, "members", &[], members_text);
        assert_eq!(out.stdout.lines().count(), 3, "{out}");
        same(
            "members -detailed",
            a,
            "members",
            &["-detailed"],
            members_text,
        );
        let out = same(
            "members json",
            a,
            "members",
            &["-format=json"],
            members_json,
        );
        assert_eq!(
            serf_interop::parse_members_json(&out.stdout).unwrap().len(),
            3
        );
        same(
            "members filters",
            a,
            "members",
            &["-status=alive", "-tag", "role=w.*"],
            members_text,
        );
        same("members -name", a, "members", &["-name=g."], members_text);
        same("members -role", a, "members", &["-role=db"], members_text);
        same("members none", a, "members", &["-name=nobody"], exact);
        same(
            "members none json",
            a,
            "members",
            &["-name=nobody", "-format=json"],
            exact,
        );
        same("members xml", a, "members", &["-format=xml"], exact);
        // An invalid regex makes the agent drop the connection.
        same("members bad regex", a, "members", &["-name=("], exact);

        // info
        let out = same("info", a, "info", &[], info_text);
        assert!(out.stdout.contains(&format!("\tname = {name}\n")), "{out}");
        same("info json", a, "info", &["-format=json"], info_json);
        same("info xml", a, "info", &["-format=xml"], exact);

        // rtt (coordinates need a few pings)
        assert!(
            wait_until(DEADLINE, POLL, || cli(
                Impl::Go,
                "rtt",
                &a.rpc_addr(),
                &[other]
            )
            .success()),
            "no coordinate for {other} on {name}"
        );
        let out = same("rtt", a, "rtt", &[other], rtt_text);
        assert!(
            out.stdout
                .starts_with(&format!("Estimated {other} <-> {name} rtt: ")),
            "{out}"
        );
        same("rtt two", a, "rtt", &[name, other], rtt_text);
        same("rtt nobody", a, "rtt", &["nobody"], exact);
        same("rtt none", a, "rtt", &[], exact);

        // query
        let out = same(
            "query",
            a,
            "query",
            &["-timeout=2s", "cliq", "payload"],
            query_text,
        );
        for n in ["g1", "r1", "g2"] {
            assert!(
                out.stdout
                    .contains(&format!("Response from '{n}': resp-from-{n}\n")),
                "{out}"
            );
        }
        assert!(
            out.stdout.ends_with("Total Acks: 3\nTotal Responses: 3\n"),
            "{out}"
        );
        same(
            "query json",
            a,
            "query",
            &["-format=json", "-timeout=2s", "cliq"],
            query_json,
        );
        let out = same(
            "query filtered",
            a,
            "query",
            &["-no-ack", "-node=r1", "-node=g2", "-timeout=2s", "cliq"],
            query_text,
        );
        assert!(out.stdout.ends_with("Total Responses: 2\n"), "{out}");
        same(
            "query tag filter",
            a,
            "query",
            &["-tag", "role=d.*", "-relay-factor=1", "-timeout=2s", "cliq"],
            query_text,
        );
        same(
            "query no handler",
            a,
            "query",
            &["-timeout=1s", "nohandler"],
            query_text,
        );
        same("query _serf_", a, "query", &["_serf_x"], exact);
        same("query format", a, "query", &["-format=yaml", "q"], exact);

        // event, force-leave
        let out = same("event", a, "event", &["deploy", "v1"], exact);
        assert_eq!(
            out.stdout,
            "Event 'deploy' dispatched! Coalescing enabled: true\n"
        );
        same(
            "event no coalesce",
            a,
            "event",
            &["-coalesce=false", "restart"],
            exact,
        );
        let big = "x".repeat(600);
        same("event too big", a, "event", &["big", &big], exact);
        let out = same("force-leave", a, "force-leave", &["nobody"], exact);
        assert_eq!((out.code(), out.stdout.as_str()), (0, ""));
        same(
            "force-leave prune",
            a,
            "force-leave",
            &["-prune", "nobody2"],
            exact,
        );

        // keys without encryption
        let out = same("keys -list", a, "keys", &["-list"], sorted_lines);
        assert!(out.stdout.contains("Keyring is empty"), "{out}");
        same(
            "keys -install",
            a,
            "keys",
            &["-install=not_base64"],
            sorted_lines,
        );

        // join errors
        let out = same("join closed port", a, "join", &[&closed], exact);
        assert!(
            out.stdout
                .starts_with("Error joining the cluster: 1 error occurred:\n"),
            "{out}"
        );

        // reachability
        let out = same("reachability", a, "reachability", &[], exact);
        assert_eq!(
            out.stdout,
            "Total members: 3, live members: 3\nStarting reachability test...\nSuccessfully contacted all live nodes\n"
        );
        same(
            "reachability -verbose",
            a,
            "reachability",
            &["-verbose"],
            reach_text,
        );
    }
}

/// tags, join and leave, through our CLI and Go's, on Go agents and ours.
#[test]
fn tags_join_leave_match_go_cli() {
    if !prereqs() {
        return;
    }
    let g1 = Agent::start(AgentSpec::new(Impl::Go, "tg1").tag("role", "web")).unwrap();
    let r1 = Agent::start(AgentSpec::new(Impl::Rust, "tr1").join(&g1.addr())).unwrap();
    let g3 = Agent::start(AgentSpec::new(Impl::Go, "tg3")).unwrap();
    let r3 = Agent::start(AgentSpec::new(Impl::Rust, "tr3")).unwrap();
    wait_member_status(&g1.rpc_addr(), "tr1", "alive", DEADLINE).unwrap();

    for a in [&g1, &r1] {
        let ours = cli(
            Impl::Rust,
            "tags",
            &a.rpc_addr(),
            &["-set", "k=v", "-set", "k2=a=b"],
        );
        assert_eq!(ours.stdout, "Successfully updated agent tags\n", "{ours}");
        let m = a.members().unwrap();
        let me = m.iter().find(|m| m.name == a.name()).unwrap();
        assert_eq!(me.tags.get("k2").map(String::as_str), Some("a=b"), "{m:?}");
        let go = cli(
            Impl::Go,
            "tags",
            &a.rpc_addr(),
            &["-delete", "k", "-delete", "k2"],
        );
        compare("tags", &ours, &go, exact);
        let m = a.members().unwrap();
        let me = m.iter().find(|m| m.name == a.name()).unwrap();
        assert!(!me.tags.contains_key("k"), "{m:?}");
        same("tags bad", a, "tags", &["-set", "bad"], exact);
        same("tags help", a, "tags", &[], exact);
    }

    // Our CLI: a Go agent joins a Rust agent; Go's CLI: a Rust agent joins a Go agent.
    let ours = cli(Impl::Rust, "join", &g3.rpc_addr(), &[&r1.addr()]);
    let go = cli(Impl::Go, "join", &r3.rpc_addr(), &["-replay", &g1.addr()]);
    compare("join", &ours, &go, exact);
    assert_eq!(
        ours.stdout,
        "Successfully joined cluster by contacting 1 nodes.\n"
    );
    wait_member_status(&g1.rpc_addr(), "tg3", "alive", DEADLINE).unwrap();
    wait_member_status(&g1.rpc_addr(), "tr3", "alive", DEADLINE).unwrap();

    // leave: our CLI on the Go agent, Go's on ours; both agents exit 0.
    let ours = cli(Impl::Rust, "leave", &g3.rpc_addr(), &[]);
    let go = cli(Impl::Go, "leave", &r3.rpc_addr(), &[]);
    compare("leave", &ours, &go, exact);
    assert_eq!(ours.stdout, "Graceful leave complete\n");
    for a in [&g3, &r3] {
        let st = a
            .wait_exit(Duration::from_secs(30))
            .expect("agent exits after leave");
        assert!(st.success(), "{} exit {}", a.name(), describe_status(&st));
    }
    wait_member_status(&g1.rpc_addr(), "tg3", "left", DEADLINE).unwrap();
    wait_member_status(&g1.rpc_addr(), "tr3", "left", DEADLINE).unwrap();
    // Both agents are gone now: connection errors.
    same("leave refused", &g3, "leave", &[], exact);
}

/// keys on an encrypted Go+Rust cluster: list, install, use, remove, failures.
#[test]
fn keys_match_go_cli() {
    if !prereqs() {
        return;
    }
    let key1 = keygen();
    let nodes = [
        NodeSpec::new(Impl::Go, "enc1"),
        NodeSpec::new(Impl::Rust, "enc2").join(0),
    ];
    let cluster = Cluster::start(&nodes, Some(&key1)).unwrap();
    cluster.wait_converged(DEADLINE).unwrap();
    let (g, r) = (cluster.agent("enc1"), cluster.agent("enc2"));
    let key2 = keygen();
    let install = format!("-install={key2}");
    let use2 = format!("-use={key2}");
    let use1 = format!("-use={key1}");
    let remove1 = format!("-remove={key1}");
    let remove2 = format!("-remove={key2}");

    for a in [g, r] {
        let out = same("keys -list", a, "keys", &["-list"], sorted_lines);
        assert!(out.stdout.contains(&format!("{key1}  [2/2]")), "{out}");
    }
    // Install with our CLI on the Go agent, again (idempotent) with Go's on ours.
    let ours = cli(Impl::Rust, "keys", &g.rpc_addr(), &[&install]);
    let go = cli(Impl::Go, "keys", &r.rpc_addr(), &[&install]);
    compare("keys -install", &ours, &go, exact);
    assert_eq!(
        ours.stdout,
        "==> Installing key on all members...\n==> Successfully installed key!\n"
    );
    for a in [g, r] {
        let out = same("keys -list two keys", a, "keys", &["-list"], sorted_lines);
        assert!(out.stdout.contains(&format!("{key2}  [2/2]")), "{out}");
    }
    let ours = cli(Impl::Rust, "keys", &r.rpc_addr(), &[&use2]);
    let go = cli(Impl::Go, "keys", &g.rpc_addr(), &[&use2]);
    compare("keys -use", &ours, &go, exact);
    // Removing the primary key fails on every node.
    for a in [g, r] {
        let out = same("keys -remove primary", a, "keys", &[&remove2], sorted_lines);
        assert_eq!(out.code(), 1, "{out}");
        assert!(
            out.stdout
                .contains("Removing the primary key is not allowed"),
            "{out}"
        );
    }
    let ours = cli(Impl::Rust, "keys", &g.rpc_addr(), &[&remove1]);
    let go = cli(Impl::Go, "keys", &r.rpc_addr(), &[&remove1]);
    compare("keys -remove", &ours, &go, exact);
    assert_eq!(
        ours.stdout,
        "==> Removing key on all members...\n==> Successfully removed key!\n"
    );
    for a in [g, r] {
        same("keys -use missing", a, "keys", &[&use1], sorted_lines);
        same(
            "keys bad base64",
            a,
            "keys",
            &["-install=not_base64"],
            sorted_lines,
        );
        same(
            "keys bad size",
            a,
            "keys",
            &["-install=bm90LWEta2V5"],
            sorted_lines,
        );
        same("keys -list final", a, "keys", &["-list"], sorted_lines);
    }
}

/// monitor: logs and events through our CLI and Go's, concurrently on the same agent; bad
/// levels; the remote going away.
#[test]
fn monitor_matches_go_cli() {
    if !prereqs() {
        return;
    }
    let g = Agent::start(AgentSpec::new(Impl::Go, "mg")).unwrap();
    let r = Agent::start(AgentSpec::new(Impl::Rust, "mr").join(&g.addr())).unwrap();
    wait_member_status(&g.rpc_addr(), "mr", "alive", DEADLINE).unwrap();

    for a in [&g, &r] {
        same(
            "monitor bad level",
            a,
            "monitor",
            &["-log-level=bogus"],
            exact,
        );
        let ours = Bg::spawn(Impl::Rust, "monitor", &a.rpc_addr(), &["-log-level=debug"]);
        let go = Bg::spawn(Impl::Go, "monitor", &a.rpc_addr(), &["-log-level=debug"]);
        thread::sleep(Duration::from_secs(2));
        let ev = format!("mon-{}", a.name());
        let fired = cli(
            Impl::Go,
            "event",
            &a.rpc_addr(),
            &["-coalesce=false", &ev, "pay load"],
        );
        assert!(fired.success(), "{fired}");
        thread::sleep(Duration::from_secs(3));
        ours.sigint();
        go.sigint();
        let (oc, oo, oe) = ours.finish(Duration::from_secs(10));
        let (gc, go_out, ge) = go.finish(Duration::from_secs(10));
        assert_eq!(
            (oc, oe.as_str()),
            (gc, ge.as_str()),
            "exit/stderr\nours: {oo}\ngo: {go_out}"
        );
        assert_eq!(oc, 0);
        assert!(
            oo.lines()
                .any(|l| l.contains(" [INFO] ") || l.contains(" [DEBUG] ")),
            "no log lines from our monitor on {}: {oo}",
            a.name()
        );
        let ob = event_block(&oo, &ev);
        let gb = event_block(&go_out, &ev);
        assert!(
            ob.is_some(),
            "no event in our monitor output on {}: {oo}",
            a.name()
        );
        assert_eq!(ob, gb, "event block on {}", a.name());
        let block = ob.unwrap();
        assert!(
            block.contains(
                &"\tPayload: []byte{0x70, 0x61, 0x79, 0x20, 0x6c, 0x6f, 0x61, 0x64}".to_string()
            ),
            "{block:?}"
        );
    }

    // Ctrl-C during a query (exit 1, no totals) and a reachability test.
    for a in [&g, &r] {
        for (sub, args) in [
            ("query", &["-timeout=20s", "slow"][..]),
            ("reachability", &[][..]),
        ] {
            let ours = Bg::spawn(Impl::Rust, sub, &a.rpc_addr(), args);
            let go = Bg::spawn(Impl::Go, sub, &a.rpc_addr(), args);
            thread::sleep(Duration::from_millis(1500));
            ours.sigint();
            go.sigint();
            let (oc, oo, oe) = ours.finish(Duration::from_secs(10));
            let (gc, go_out, ge) = go.finish(Duration::from_secs(10));
            assert_eq!(
                (oc, sorted_lines(&oo), oe),
                (gc, sorted_lines(&go_out), ge),
                "{sub} interrupted on {}",
                a.name()
            );
            assert_eq!(oc, 1);
        }
    }

    // The agent goes away under both monitors.
    for a in [&r, &g] {
        let ours = Bg::spawn(Impl::Rust, "monitor", &a.rpc_addr(), &[]);
        let go = Bg::spawn(Impl::Go, "monitor", &a.rpc_addr(), &[]);
        thread::sleep(Duration::from_secs(2));
        a.kill9();
        let (oc, oo, _) = ours.finish(Duration::from_secs(15));
        let (gc, go_out, _) = go.finish(Duration::from_secs(15));
        let tail = "\nRemote side ended the monitor! This usually means that the\nremote side has exited or crashed.\n";
        assert_eq!(oc, gc);
        assert_eq!(oc, 1);
        assert!(oo.ends_with(tail), "ours: {oo}");
        assert!(go_out.ends_with(tail), "go: {go_out}");
    }
}

/// RPC auth: agents with `rpc_auth`, clients without, with a wrong and the right token
/// (flag and SERF_RPC_AUTH).
#[test]
fn rpc_auth_matches_go_cli() {
    if !prereqs() {
        return;
    }
    let dir = work_dir_for_test();
    let conf = dir.join("auth.json");
    std::fs::write(&conf, "{\"rpc_auth\": \"s3cret\"}").unwrap();
    let conf_arg = format!("-config-file={}", conf.display());
    let g = Agent::spawn(AgentSpec::new(Impl::Go, "ag").arg(&conf_arg)).unwrap();
    let r = Agent::spawn(AgentSpec::new(Impl::Rust, "ar").arg(&conf_arg)).unwrap();
    for a in [&g, &r] {
        assert!(
            wait_until(DEADLINE, POLL, || cli(
                Impl::Go,
                "members",
                &a.rpc_addr(),
                &["-rpc-auth=s3cret"]
            )
            .success()),
            "{} agent with rpc_auth did not come up",
            a.imp()
        );
        let out = same("no auth", a, "members", &[], exact);
        assert_eq!(
            out.stdout,
            "Error retrieving members: Authentication required\n"
        );
        let out = same("wrong auth", a, "members", &["-rpc-auth=wrong"], exact);
        assert_eq!(
            out.stdout,
            "Error connecting to Serf agent: Invalid authentication token\n"
        );
        same(
            "right auth",
            a,
            "members",
            &["-rpc-auth=s3cret"],
            members_text,
        );
        same("no auth query", a, "query", &["q"], exact);
        same("no auth monitor", a, "monitor", &[], exact);
        same("no auth keys", a, "keys", &["-list"], exact);
        same("no auth info", a, "info", &[], exact);
        let env = [
            ("SERF_RPC_ADDR", a.rpc_addr()),
            ("SERF_RPC_AUTH", "s3cret".to_string()),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ours = cli_env(Impl::Rust, "info", "", &[], &env);
        let go = cli_env(Impl::Go, "info", "", &[], &env);
        compare("env auth", &ours, &go, info_text);
        assert!(ours.success(), "{ours}");
    }
}
