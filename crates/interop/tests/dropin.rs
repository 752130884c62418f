//! Drop-in details found by running the same commands against Go's `serf` and ours:
//! how addresses and empty values are read, which address is advertised, the log lines
//! an operator sees from start to shutdown, signals Go ignores, Go regex syntax in
//! filters, the tags file, and arguments that are not UTF-8. Each test runs Go's binary
//! next to ours and compares.
//!
//! Run: `cargo build -p serf-agent && cargo test -p serf-interop --test dropin`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use serf_interop::{
    free_gossip_port, free_tcp_port, go_cli, go_serf, our_serf, require, run_with_timeout,
    wait_until, work_dir_for_test, Agent, AgentSpec, Impl, Prereq, CLI_TIMEOUT, DEADLINE, POLL,
};

const BOTH: [Impl; 2] = [Impl::Go, Impl::Rust];

fn start(spec: AgentSpec) -> Agent {
    Agent::start(spec).unwrap_or_else(|e| panic!("start: {e}"))
}

/// The banner line `name: 'value'` of an agent's output.
fn banner_value(log: &str, name: &str) -> Option<String> {
    log.lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
        .map(|v| v.trim_matches('\'').to_string())
}

/// `-bind` with a host name or an empty host, `-rpc-addr` with an empty host, and
/// empty `-node=` / `-encrypt=` start the agent as Go does, with the same banner.
#[test]
fn addresses_and_empty_values_are_read_like_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let dir = work_dir_for_test();
    std::fs::create_dir_all(&dir).unwrap();
    let null_cfg = dir.join("null.json");
    std::fs::write(&null_cfg, "null").unwrap();
    type Variant = fn(u16, u16, &str) -> Vec<String>;
    let variants: [(&str, Variant); 4] = [
        ("localhost", |p, _, _| vec![format!("-bind=localhost:{p}")]),
        ("empty hosts", |p, r, _| {
            vec![format!("-bind=:{p}"), format!("-rpc-addr=:{r}")]
        }),
        ("empty values", |_, _, _| {
            vec!["-node=".into(), "-encrypt=".into(), "-advertise=".into()]
        }),
        ("null config", |_, _, cfg| {
            vec![format!("-config-file={cfg}")]
        }),
    ];
    for (what, extra) in variants {
        let mut seen = Vec::new();
        for imp in BOTH {
            let mut spec = AgentSpec::new(imp, &format!("dropin-{imp}"));
            let (p, r) = (free_gossip_port(), free_tcp_port());
            spec.port = Some(p);
            spec.rpc_port = Some(r);
            for a in extra(p, r, &null_cfg.display().to_string()) {
                spec = spec.arg(&a);
            }
            // Spawned, not started: with `-node=` the agent's name is the host name.
            let a = Agent::spawn(spec).unwrap();
            assert!(
                wait_until(DEADLINE, POLL, || a
                    .log_text()
                    .contains("Message Compression")),
                "{what}: {imp} did not start: {}",
                a.log_text()
            );
            let log = a.log_text();
            let norm = |v: Option<String>| {
                v.map(|v| {
                    v.replace(&p.to_string(), "PORT")
                        .replace(&r.to_string(), "RPC")
                        .replace(&format!("dropin-{imp}"), "NAME")
                })
            };
            seen.push((
                imp,
                norm(banner_value(&log, "Node name")),
                norm(banner_value(&log, "Bind addr")),
                norm(banner_value(&log, "RPC addr")),
                norm(banner_value(&log, "Encrypted")),
            ));
            a.sigint().unwrap();
            a.wait_exit(DEADLINE).expect("exits");
        }
        assert!(seen[0].1.is_some(), "{what}: Go printed no banner");
        assert_eq!(
            (&seen[0].1, &seen[0].2, &seen[0].3, &seen[0].4),
            (&seen[1].1, &seen[1].2, &seen[1].3, &seen[1].4),
            "{what}: banner of Go vs ours"
        );
    }
}

/// Start-up errors for addresses, tags, durations and config files: Go's text and code.
#[test]
fn startup_errors_match_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let dir = work_dir_for_test();
    std::fs::create_dir_all(&dir).unwrap();
    let list_cfg = dir.join("list.json");
    std::fs::write(&list_cfg, "[1]").unwrap();
    let bind = format!("-bind=127.0.0.1:{}", free_gossip_port());
    let cases: Vec<Vec<String>> = vec![
        vec![bind.clone(), "-rpc-addr=127.0.0.1".into()],
        vec![bind.clone(), "-tag".into(), "=x".into()],
        vec![bind.clone(), "-retry-interval=abc".into()],
        vec![bind.clone(), "-broadcast-timeout=5".into()],
        vec![bind.clone(), format!("-config-file={}", list_cfg.display())],
        vec!["-bind=127.0.0.1:99999".into()],
        vec!["-bind=::1".into()],
        vec![bind.clone(), "-advertise=[::1".into()],
    ];
    let (go, ours) = (go_serf().unwrap(), our_serf().unwrap());
    for c in cases {
        let mut outs = Vec::new();
        for bin in [&go, &ours] {
            let mut cmd = Command::new(bin);
            cmd.arg("agent").arg("-node=x").args(&c);
            let out = run_with_timeout(cmd, Duration::from_secs(20)).unwrap();
            outs.push((
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ));
        }
        assert_eq!(outs[1], outs[0], "serf agent -node=x {}", c.join(" "));
    }
}

/// Ports already taken (gossip TCP, gossip UDP, RPC) and a snapshot that cannot be opened:
/// the same text and code as Go, naming the protocol, address and port, or the file.
#[test]
fn bind_and_snapshot_errors_match_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let dir = work_dir_for_test();
    std::fs::create_dir_all(&dir).unwrap();
    let tcp_taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp_taken.local_addr().unwrap().port();
    let udp_port = free_gossip_port();
    let udp_taken = std::net::UdpSocket::bind(("127.0.0.1", udp_port)).unwrap();
    let snapshot = dir.join("no-such-dir").join("snap");
    let free_rpc = || format!("-rpc-addr=127.0.0.1:{}", free_tcp_port());
    let free_bind = || format!("-bind=127.0.0.1:{}", free_gossip_port());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![format!("-bind=127.0.0.1:{tcp_port}"), free_rpc()],
            "Failed to start TCP listener on \"127.0.0.1\" port",
        ),
        (
            vec![format!("-bind=127.0.0.1:{udp_port}"), free_rpc()],
            "Failed to start UDP listener on \"127.0.0.1\" port",
        ),
        (
            vec![free_bind(), format!("-rpc-addr=127.0.0.1:{tcp_port}")],
            "Error starting RPC listener: listen tcp 127.0.0.1:",
        ),
        (
            vec![
                free_bind(),
                free_rpc(),
                format!("-snapshot={}", snapshot.display()),
            ],
            "failed to open snapshot: open ",
        ),
    ];
    let (go, ours) = (go_serf().unwrap(), our_serf().unwrap());
    for (args, want) in cases {
        let mut outs = Vec::new();
        for bin in [&go, &ours] {
            let mut cmd = Command::new(bin);
            cmd.arg("agent").arg("-node=x").args(&args);
            let out = run_with_timeout(cmd, Duration::from_secs(20)).unwrap();
            outs.push((
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            ));
        }
        assert!(
            outs[0].1.contains(want),
            "Go's output changed: {:?}",
            outs[0]
        );
        assert_eq!(outs[1], outs[0], "serf agent -node=x {}", args.join(" "));
    }
    drop((tcp_taken, udp_taken));
}

/// `-retry-join` to a peer that starts later: the agent keeps retrying, joins, and then
/// keeps running (it once exited as if the attempts had run out); with
/// `-retry-max` and no peer it exits 1 with Go's log line. Both implementations.
#[test]
fn retry_join_joins_late_peers_and_keeps_running() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    for imp in BOTH {
        let seed_port = free_gossip_port();
        let joiner = start(
            AgentSpec::new(imp, "joiner")
                .arg(&format!("-retry-join=127.0.0.1:{seed_port}"))
                .arg("-retry-interval=1s"),
        );
        let seed = start(AgentSpec {
            port: Some(seed_port),
            ..AgentSpec::new(Impl::Rust, "seed")
        });
        let joined = wait_until(DEADLINE, POLL, || {
            joiner
                .members()
                .is_ok_and(|m| m.iter().any(|m| m.name == "seed"))
        });
        assert!(
            joined,
            "{imp} joiner never joined:\n{}",
            joiner.log_tail(30)
        );
        // The join is done; nothing should end the agent now. Watch it for a while.
        let exited = wait_until(Duration::from_secs(3), POLL, || !joiner.is_running());
        assert!(
            !exited,
            "{imp} joiner exited after joining:\n{}",
            joiner.log_tail(30)
        );
        assert!(joiner.rpc_reachable(), "{imp} joiner stopped answering RPC");
        drop(seed);

        let dead_port = free_gossip_port();
        let giving_up = Agent::spawn(
            AgentSpec::new(imp, "giver")
                .arg(&format!("-retry-join=127.0.0.1:{dead_port}"))
                .arg("-retry-interval=1s")
                .arg("-retry-max=1"),
        )
        .unwrap();
        let status = giving_up.wait_exit(DEADLINE);
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(1),
            "{imp}: {}",
            giving_up.log_tail(20)
        );
        assert!(
            giving_up
                .log_line_containing("maximum retry join attempts made, exiting")
                .is_some(),
            "{imp}: {}",
            giving_up.log_tail(20)
        );
    }
}

/// Bound to 0.0.0.0 without -advertise, ours advertises the address Go picks.
#[test]
fn advertised_private_address_matches_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let mut addrs = Vec::new();
    for imp in BOTH {
        let p = free_gossip_port();
        let mut spec = AgentSpec::new(imp, &format!("adv-{imp}"));
        spec.port = Some(p);
        let a = start(spec.arg(&format!("-bind=0.0.0.0:{p}")));
        let me = a
            .members()
            .unwrap()
            .into_iter()
            .find(|m| m.name == a.name())
            .expect("lists itself");
        // The address without the port (each agent has its own).
        let ip = me
            .addr
            .rsplit_once(':')
            .map_or(me.addr.clone(), |(ip, _)| ip.to_string());
        addrs.push(ip);
        a.sigint().unwrap();
        a.wait_exit(DEADLINE).expect("exits");
    }
    assert_eq!(addrs[1], addrs[0], "advertised address: ours vs Go");
}

/// Log lines from start (with a join) to SIGTERM: every line Go writes, ours writes.
#[test]
fn lifecycle_log_lines_match_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let seed = start(AgentSpec::new(Impl::Go, "log-seed"));
    let mut sets = Vec::new();
    for imp in BOTH {
        let name = format!("log-{imp}");
        let a = start(AgentSpec::new(imp, &name).join(&seed.addr()));
        // Wait for the join's log lines (written when the banner is done).
        assert!(wait_until(DEADLINE, POLL, || a
            .log_text()
            .contains("agent: joined: 1 nodes")));
        // An event and a query through the agent, and one from the seed.
        for (at, name) in [(a.rpc_addr(), "ev-local"), (seed.rpc_addr(), "ev-seed")] {
            let out = go_cli("event", &at, &[name, "payload"], CLI_TIMEOUT).unwrap();
            assert!(out.success(), "{out}");
        }
        let out = go_cli(
            "query",
            &a.rpc_addr(),
            &["-timeout=1s", "q-local", "p"],
            CLI_TIMEOUT,
        )
        .unwrap();
        assert!(out.success(), "{out}");
        assert!(wait_until(DEADLINE, POLL, || a
            .log_text()
            .contains("messageUserEventType: ev-seed")
            || imp == Impl::Rust
                && a.log_text().contains("user-event: ev-seed")));
        a.sigterm().unwrap();
        a.wait_exit(DEADLINE).expect("exits");
        let log = a.log_text();
        let lines: BTreeSet<String> = log
            .lines()
            .filter_map(|l| {
                // "    2026/11/23 00:00:00 [INFO] agent: ..." without the time.
                let l = l.trim();
                let i = l.find(" [")?;
                Some(l[i + 1..].to_string())
            })
            // Not compared: lines whose presence depends on timing (the periodic
            // push/pull either side may start within the test, the inbound streams
            // it causes) or on connection order.
            .filter(|l| {
                !l.contains("Accepted client")
                    && !l.contains("Received event")
                    && !l.contains("Stream connection")
                    // A named peer means a periodic push/pull (a join has no name).
                    && (!l.contains("Initiating push/pull sync with: ")
                        || l.contains("Initiating push/pull sync with:  "))
            })
            .map(|l| {
                l.replace(&name, "NAME")
                    .replace(&a.port().to_string(), "PORT")
                    .replace(&seed.port().to_string(), "SEEDPORT")
            })
            .collect();
        sets.push(lines);
    }
    let missing: Vec<&String> = sets[0].difference(&sets[1]).collect();
    assert!(
        missing.is_empty(),
        "log lines Go wrote and ours did not: {missing:#?}\nours: {:#?}",
        sets[1]
    );
    for must in [
        "[INFO] agent: Serf agent starting",
        "[INFO] serf: EventMemberJoin: NAME 127.0.0.1",
        "[INFO] agent: joining: [127.0.0.1:SEEDPORT] replay: false",
        "[INFO] agent: requesting serf shutdown",
        "[WARN] serf: Shutdown without a Leave",
        "[INFO] agent: shutdown complete",
    ] {
        assert!(sets[0].contains(must), "Go no longer writes {must:?}");
    }
}

/// SIGUSR2 is caught and ignored by Go's runtime: neither agent stops.
#[test]
fn sigusr2_does_not_stop_the_agent() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    for imp in BOTH {
        let a = start(AgentSpec::new(imp, &format!("usr2-{imp}")));
        a.signal("USR2").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert!(a.is_running(), "{imp} agent stopped on SIGUSR2");
        assert!(a.members().is_ok(), "{imp} agent stopped serving");
    }
}

/// `\Q...\E` (Go regex syntax) in `members -name` and `-tag` filters.
#[test]
fn go_regex_quoting_in_member_filters() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    for imp in BOTH {
        let a = start(AgentSpec::new(imp, "q.1").tag("role", "a+b"));
        for args in [&["-name", r"\Qq.1\E"][..], &["-tag", r"role=\Qa+b\E"][..]] {
            let out = go_cli("members", &a.rpc_addr(), args, CLI_TIMEOUT).unwrap();
            assert!(
                out.success() && out.stdout.contains("q.1"),
                "{imp}: serf members {args:?}: {out}"
            );
        }
    }
}

/// `serf tags -set` with a tags file: the file Go writes, byte for byte, mode 0600.
#[test]
fn tags_file_is_written_like_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let dir = work_dir_for_test();
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for imp in BOTH {
        let path = dir.join(format!("tags-{imp}.json"));
        let _ = std::fs::remove_file(&path);
        let a = start(
            AgentSpec::new(imp, &format!("tags-{imp}"))
                .arg(&format!("-tags-file={}", path.display())),
        );
        let out = go_cli(
            "tags",
            &a.rpc_addr(),
            &["-set", "b=2", "-set", "a=<&>", "-set", "c=x y"],
            CLI_TIMEOUT,
        )
        .unwrap();
        assert!(out.success(), "{imp}: {out}");
        assert!(wait_until(DEADLINE, POLL, || std::fs::read_to_string(
            &path
        )
        .is_ok_and(|t| t.contains("\"c\""))));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        files.push((std::fs::read_to_string(&path).unwrap(), mode));
    }
    assert_eq!(files[1], files[0], "tags file and mode: ours vs Go");
}

/// An argument that is not UTF-8 is taken as it comes: Go's exit codes, no crash.
#[test]
fn non_utf8_arguments_do_not_crash() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let arg = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    let key = std::ffi::OsStr::new("k");
    let cases: [Vec<&std::ffi::OsStr>; 3] = [
        vec![std::ffi::OsStr::new("version"), arg],
        vec![arg],
        vec![std::ffi::OsStr::new("keygen"), key, arg],
    ];
    for args in cases {
        let mut codes = Vec::new();
        for bin in [go_serf().unwrap(), our_serf().unwrap()] {
            let mut cmd = Command::new(&bin);
            cmd.args(&args);
            let out = run_with_timeout(cmd, Duration::from_secs(20)).unwrap();
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains("panicked"),
                "{} {args:?} panicked",
                bin.display()
            );
            codes.push(out.status.code());
        }
        assert_eq!(codes[1], codes[0], "exit code of serf {args:?}: ours vs Go");
    }
}

/// `serf leave` answers once the leave is done: the seed already lists the node as
/// left, and the agent exits right after (a restart on the same ports then works).
#[test]
fn leave_answers_after_the_leave() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let seed = start(AgentSpec::new(Impl::Go, "leave-seed"));
    for imp in BOTH {
        let name = format!("leave-{imp}");
        let a = start(AgentSpec::new(imp, &name).join(&seed.addr()));
        assert!(wait_until(DEADLINE, POLL, || seed.members().is_ok_and(
            |m| m.iter().any(|x| x.name == name && x.status == "alive")
        )));
        let out = go_cli("leave", &a.rpc_addr(), &[], CLI_TIMEOUT).unwrap();
        assert!(out.success(), "{imp}: {out}");
        let status = seed
            .members()
            .unwrap()
            .into_iter()
            .find(|m| m.name == name)
            .map(|m| m.status);
        assert_eq!(
            status.as_deref(),
            Some("left"),
            "{imp}: seed's view when `serf leave` returned"
        );
        let code = a.wait_exit(Duration::from_secs(10));
        assert_eq!(
            code.and_then(|c| c.code()),
            Some(0),
            "{imp}: exit after serf leave"
        );
    }
}

/// An event with no payload: `stream` records carry `Payload` as nil, as Go's do.
#[test]
fn empty_payload_streams_as_nil() {
    use serf_rpc::{HandshakeRequest, Request, StreamRequest};
    use std::io::{Read, Write};
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let mut seen = Vec::new();
    for imp in BOTH {
        let a = start(AgentSpec::new(imp, &format!("nilpay-{imp}")));
        let mut s = std::net::TcpStream::connect(a.rpc_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut req = Request::Handshake(HandshakeRequest { version: 1 }).encode(1);
        req.extend(
            Request::Stream(StreamRequest {
                filter: "user".into(),
            })
            .encode(2),
        );
        s.write_all(&req).unwrap();
        // Let the stream register before the event is sent.
        std::thread::sleep(Duration::from_millis(300));
        let out = go_cli("event", &a.rpc_addr(), &["nilpay"], CLI_TIMEOUT).unwrap();
        assert!(out.success(), "{out}");
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let found = wait_until(Duration::from_secs(20), Duration::from_millis(10), || {
            if let Ok(n) = s.read(&mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.windows(8).any(|w| &w[..7] == b"Payload")
        });
        assert!(found, "{imp}: no stream record");
        let at = buf.windows(8).position(|w| &w[..7] == b"Payload").unwrap();
        seen.push(buf[at + 7]);
    }
    assert_eq!(seen, vec![0xc0, 0xc0], "Payload encoding (Go, ours)");
}

/// `serf keys -install` with bad base64: Go's error (the same input byte) from ours.
#[test]
fn bad_base64_keys_fail_like_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let key = serf_interop::keygen();
    let agents: Vec<Agent> = BOTH
        .iter()
        .map(|imp| start(AgentSpec::new(*imp, &format!("b64-{imp}")).encrypt(&key)))
        .collect();
    for bad in [
        "bad",
        "bogus",
        "YWJjZA==YWJj",
        "YW=j",
        "Y===",
        "YWJjZA=",
        "a\nb",
    ] {
        let outs: Vec<(i32, String)> = agents
            .iter()
            .map(|a| {
                let o = go_cli("keys", &a.rpc_addr(), &["-install", bad], CLI_TIMEOUT).unwrap();
                (o.code(), format!("{}{}", o.stdout, o.stderr))
            })
            .collect();
        assert_eq!(outs[1], outs[0], "serf keys -install {bad:?}: ours vs Go");
    }
}

/// `serf join` with addresses memberlist cannot resolve: Go's error texts.
#[test]
fn join_resolve_errors_match_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let agents: Vec<Agent> = BOTH
        .iter()
        .map(|imp| start(AgentSpec::new(*imp, &format!("joinerr-{imp}"))))
        .collect();
    for addr in [
        "bad host name:x",
        "127.0.0.1:99999",
        "[::1",
        "nonexistent.invalid",
        "x/127.0.0.1:1",
    ] {
        let outs: Vec<(i32, String)> = agents
            .iter()
            .map(|a| {
                let o = go_cli("join", &a.rpc_addr(), &[addr], CLI_TIMEOUT).unwrap();
                // Go names its DNS server ("lookup h on 10.0.0.1:53: ..."); we cannot.
                let text = format!("{}{}", o.stdout, o.stderr);
                let text = match (text.find(" on "), text.find(":53:")) {
                    (Some(i), Some(j)) if i < j => format!("{}{}", &text[..i], &text[j + 3..]),
                    _ => text,
                };
                (o.code(), text)
            })
            .collect();
        assert_eq!(outs[1], outs[0], "serf join {addr:?}: ours vs Go");
    }
}
