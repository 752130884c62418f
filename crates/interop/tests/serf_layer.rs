//! The Serf layer above membership, in mixed clusters of real Go agents and
//! ours: user events through event handlers, queries (and their filters), tag
//! updates, key rotation, RTT estimates, snapshot rejoin after kill -9, size
//! limits, and memory under an event flood.
//!
//! Every agent is driven with the Go CLI (`serf event|query|tags|keys|rtt`),
//! so our RPC server is exercised exactly as Go's client uses it; the event
//! flood uses a minimal blocking RPC client (messages from `serf-rpc`).
//!
//! Run: `cargo build -p serf-agent && cargo test -p serf-interop --test serf_layer -- --test-threads=2`
//! (add `--nocapture` for timings; figures also go to
//! `<target>/interop-measurements.txt`). Handler scripts, their output and
//! snapshots are kept in `<target>/interop-work/<test>/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serf_interop::{
    fmt_secs, fmt_view, go_cli, go_serf, keygen, record_measurement, require, run_with_timeout,
    wait_all_report, wait_all_see, wait_converged, wait_for, work_dir_for_test, Agent, AgentSpec,
    CliOutput, Cluster, Impl, NodeSpec, Prereq, CLI_TIMEOUT, DEADLINE, POLL,
};
use serf_rpc::Body;
use serf_wire::msgpack::Reader;

const GO: Impl = Impl::Go;
const RUST: Impl = Impl::Rust;

/// How long to keep watching for duplicates after everyone has an event.
const DUPLICATE_WATCH: Duration = Duration::from_secs(5);

fn ok<T>(r: Result<T, String>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Go CLI against an agent's RPC, panicking if the CLI cannot be run at all.
fn cli(agent: &Agent, sub: &str, args: &[&str]) -> CliOutput {
    cli_timeout(agent, sub, args, CLI_TIMEOUT)
}

fn cli_timeout(agent: &Agent, sub: &str, args: &[&str], timeout: Duration) -> CliOutput {
    ok(
        go_cli(sub, &agent.rpc_addr(), args, timeout),
        &format!(
            "running `serf {sub} {}` at {}",
            args.join(" "),
            agent.name()
        ),
    )
}

/// Writes an executable `/bin/sh` script.
fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}")).expect("writing script");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod script");
    path
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn names(agents: &[&Agent]) -> BTreeSet<String> {
    agents.iter().map(|a| a.name().to_string()).collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Standard 2 Go + 2 Rust topology, joined across implementations:
/// go1 (seed), rs1 → go1, go2 → rs1, rs2 → go1 + go2.
fn two_plus_two(tags: [&[(&str, &str)]; 4], args: &dyn Fn(&str) -> Vec<String>) -> Vec<NodeSpec> {
    let base = [
        NodeSpec::new(GO, "go1"),
        NodeSpec::new(RUST, "rs1").join(0),
        NodeSpec::new(GO, "go2").join(1),
        NodeSpec::new(RUST, "rs2").join(0).join(2),
    ];
    base.into_iter()
        .zip(tags)
        .map(|(mut n, tags)| {
            for (k, v) in tags {
                n = n.tag(k, v);
            }
            for a in args(&n.name.clone()) {
                n = n.arg(&a);
            }
            n
        })
        .collect()
}

fn start_converged(nodes: &[NodeSpec], key: Option<&str>) -> Cluster {
    let cluster = ok(Cluster::start(nodes, key), "starting cluster");
    let took = ok(cluster.wait_converged(DEADLINE), "convergence");
    eprintln!(
        "cluster {:?} converged {} after the last start",
        names(&cluster.all()),
        fmt_secs(took)
    );
    cluster
}

// ---------------------------------------------------------------------------
// 1. User events through event handlers
// ---------------------------------------------------------------------------

/// Every agent runs a `user` event handler that appends
/// `$SERF_EVENT $SERF_USER_EVENT <payload> $SERF_SELF_NAME` to its own file.
/// Events sent through a Go agent and through ours (coalesced and not) reach
/// every handler exactly once.
#[test]
fn user_event_runs_handlers_exactly_once() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let dir = work_dir_for_test();
    let script = write_script(
        &dir,
        "record.sh",
        "payload=$(cat)\nprintf '%s %s %s %s\\n' \"$SERF_EVENT\" \"$SERF_USER_EVENT\" \"$payload\" \"$SERF_SELF_NAME\" >> \"$1\"\n",
    );
    let out_file = |name: &str| dir.join(format!("{name}.events"));
    let nodes = two_plus_two([&[], &[], &[], &[]], &|name| {
        vec![format!(
            "-event-handler=user={} {}",
            script.display(),
            out_file(name).display()
        )]
    });
    let cluster = start_converged(&nodes, None);
    let go1 = cluster.agent("go1");
    let rs1 = cluster.agent("rs1");

    // (sent through, name, payload, coalesce)
    let cases: [(&Agent, &str, &str, bool); 4] = [
        (go1, "deploy", "v1", true),
        (rs1, "deploy2", "v2", true),
        (rs1, "deploy3", "v3", false),
        (go1, "deploy4", "v4", false),
    ];
    let mut timings = Vec::new();
    for (i, (via, name, payload, coalesce)) in cases.iter().enumerate() {
        let mut args = Vec::new();
        if !coalesce {
            args.push("-coalesce=false");
        }
        args.push(name);
        args.push(payload);
        let t0 = Instant::now();
        let out = cli(via, "event", &args);
        assert!(
            out.success(),
            "`serf event {}` via {} failed: {out}",
            args.join(" "),
            via.name()
        );
        assert_eq!(
            out.stdout,
            format!("Event '{name}' dispatched! Coalescing enabled: {coalesce}\n"),
            "`serf event` output via {}",
            via.name()
        );
        let line_for = |node: &str| format!("user {name} {payload} {node}");
        let count = |node: &str| {
            read_lines(&out_file(node))
                .iter()
                .filter(|l| **l == line_for(node))
                .count()
        };
        let all = cluster.all();
        let delivered = wait_for(DEADLINE, Duration::from_millis(100), || {
            let missing: Vec<&str> = all
                .iter()
                .map(|a| a.name())
                .filter(|n| count(n) == 0)
                .collect();
            if missing.is_empty() {
                Ok(t0.elapsed())
            } else {
                Err(format!(
                    "no `{}` line yet on {missing:?}",
                    line_for("<node>")
                ))
            }
        });
        let took = ok(
            delivered,
            &format!(
                "event {name} (coalesce={coalesce}) sent via {} should run every handler",
                via.name()
            ),
        );
        // No duplicates may follow.
        let watch = Instant::now();
        while watch.elapsed() < DUPLICATE_WATCH {
            for a in &all {
                let lines = read_lines(&out_file(a.name()));
                let n = count(a.name());
                assert_eq!(
                    n,
                    1,
                    "{} ran its handler {n} times for event {name} (coalesce={coalesce}, via {}); file: {lines:?}",
                    a.name(),
                    via.name()
                );
                // Nothing else either: one line per event so far, each for this node.
                assert_eq!(
                    lines.len(),
                    i + 1,
                    "{} has unexpected handler lines after {} events: {lines:?}",
                    a.name(),
                    i + 1
                );
                assert!(
                    lines.iter().all(|l| l.ends_with(&format!(" {}", a.name()))),
                    "{} has lines for another node: {lines:?}",
                    a.name()
                );
            }
            thread::sleep(Duration::from_millis(250));
        }
        timings.push(format!(
            "{name}(via={},coalesce={coalesce})={}",
            via.name(),
            fmt_secs(took)
        ));
    }
    record_measurement(&format!(
        "USER-EVENT handlers-all-ran: {}",
        timings.join(" ")
    ));
}

/// A user event with Lamport time `u64::MAX`, sent as a raw datagram to a Go agent of an
/// unencrypted mixed cluster, wraps every event clock to 0 (Go's clocks wrap; ours once
/// stuck at the top and then refused every Go-origin event as old). Afterwards events
/// sent through Go and through ours must again reach every node. (Go's nodes hide events
/// below their join-time floor for the first few; ours reset that floor on a wrap.)
#[test]
fn events_flow_both_ways_after_a_u64_max_event_clock() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    use serf_wire::messages::Message;
    use serf_wire::serf::{SerfMessage, UserEvent};
    let dir = work_dir_for_test();
    let script = write_script(
        &dir,
        "record.sh",
        "cat >/dev/null\nprintf '%s\\n' \"$SERF_USER_EVENT\" >> \"$1\"\n",
    );
    let out_file = |name: &str| dir.join(format!("{name}.events"));
    let nodes = two_plus_two([&[], &[], &[], &[]], &|name| {
        vec![format!(
            "-event-handler=user={} {}",
            script.display(),
            out_file(name).display()
        )]
    });
    let cluster = start_converged(&nodes, None);
    let all = cluster.all();
    let poison = Message::User(
        SerfMessage::UserEvent(UserEvent {
            ltime: u64::MAX,
            name: "poison".into(),
            payload: Vec::new(),
            cc: false,
        })
        .encode(),
    )
    .encode();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    udp.send_to(&poison, cluster.agent("go1").addr())
        .expect("send poison");
    let has = |node: &str, name: &str| read_lines(&out_file(node)).iter().any(|l| l == name);
    let spread = wait_for(DEADLINE, POLL, || {
        let missing: Vec<&str> = all
            .iter()
            .map(|a| a.name())
            .filter(|n| !has(n, "poison"))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("poison not yet on {missing:?}"))
        }
    });
    ok(spread, "the u64::MAX event should reach every node");
    // Events through Go and through ours, one pair per round, until one of each has
    // reached every node.
    let (mut go_ok, mut rs_ok) = (false, false);
    for round in 0..8 {
        for via in ["go1", "rs1"] {
            let name = format!("after-{via}-{round}");
            let out = cli(cluster.agent(via), "event", &["-coalesce=false", &name]);
            assert!(out.success(), "`serf event` via {via}: {out}");
            let everywhere = wait_for(Duration::from_secs(10), POLL, || {
                if all.iter().all(|a| has(a.name(), &name)) {
                    Ok(())
                } else {
                    Err(String::new())
                }
            });
            if everywhere.is_ok() {
                if via == "go1" {
                    go_ok = true;
                } else {
                    rs_ok = true;
                }
            }
        }
        if go_ok && rs_ok {
            record_measurement(&format!(
                "CLOCK-WRAP events everywhere again after round {round}"
            ));
            break;
        }
    }
    let files: Vec<(String, Vec<String>)> = all
        .iter()
        .map(|a| (a.name().to_string(), read_lines(&out_file(a.name()))))
        .collect();
    assert!(
        go_ok && rs_ok,
        "after the wrap: Go-origin everywhere {go_ok}, ours everywhere {rs_ok}; {files:?}"
    );
}

// ---------------------------------------------------------------------------
// 2./3. Queries
// ---------------------------------------------------------------------------

/// `serf query -format=json` output: acks and responses (payloads trimmed of
/// one trailing newline).
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueryResult {
    acks: BTreeSet<String>,
    responses: BTreeMap<String, String>,
}

fn parse_query_json(text: &str) -> Result<QueryResult, String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("query output is not JSON ({e}): {text:?}"))?;
    let acks = match v.get("Acks") {
        Some(serde_json::Value::Null) => BTreeSet::new(),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("ack {x} is not a string"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("no \"Acks\" in {text:?}")),
    };
    let responses = match v.get("Responses") {
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, x)| {
                x.as_str()
                    .map(|s| (k.clone(), s.strip_suffix('\n').unwrap_or(s).to_string()))
                    .ok_or_else(|| format!("response {x} is not a string"))
            })
            .collect::<Result<_, _>>()?,
        Some(serde_json::Value::Null) => BTreeMap::new(),
        _ => return Err(format!("no \"Responses\" in {text:?}")),
    };
    Ok(QueryResult { acks, responses })
}

/// `serf query -format=json -timeout=<t> <extra...> name payload` via `agent`.
fn query_json(
    agent: &Agent,
    extra: &[&str],
    name: &str,
    payload: &str,
    timeout: &str,
) -> Result<QueryResult, String> {
    let to = format!("-timeout={timeout}");
    let mut args = vec!["-format=json", to.as_str()];
    args.extend_from_slice(extra);
    args.push(name);
    args.push(payload);
    let out = go_cli("query", &agent.rpc_addr(), &args, Duration::from_secs(60))?;
    if !out.success() {
        return Err(format!(
            "`serf query {}` via {} failed: {out}",
            args.join(" "),
            agent.name()
        ));
    }
    parse_query_json(&out.stdout)
}

/// Query handler: answers `<node>:<query name>:<payload>`.
fn respond_script(dir: &Path) -> PathBuf {
    write_script(
        dir,
        "respond.sh",
        "payload=$(cat)\necho \"$SERF_SELF_NAME:$SERF_QUERY_NAME:$payload\"\n",
    )
}

/// Queries issued through ours and through Go reach every agent, Go and Rust,
/// and collect every ack and every handler response.
#[test]
fn queries_both_ways() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let dir = work_dir_for_test();
    let script = respond_script(&dir);
    let nodes = two_plus_two([&[], &[], &[], &[]], &|_| {
        vec![format!("-event-handler=query={}", script.display())]
    });
    let cluster = start_converged(&nodes, None);
    let everyone = names(&cluster.all());
    let mut timings = Vec::new();
    for origin in ["rs1", "go1", "rs2", "go2"] {
        let via = cluster.agent(origin);
        let qname = format!("q-from-{origin}");
        let payload = format!("ping-{origin}");
        let t0 = Instant::now();
        let res = ok(
            query_json(via, &[], &qname, &payload, "5s"),
            &format!("query via {origin}"),
        );
        timings.push(format!("{origin}={}", fmt_secs(t0.elapsed())));
        assert_eq!(
            res.acks, everyone,
            "query {qname} via {origin}: acks from {:?}, expected every node",
            res.acks
        );
        let want: BTreeMap<String, String> = everyone
            .iter()
            .map(|n| (n.clone(), format!("{n}:{qname}:{payload}")))
            .collect();
        assert_eq!(
            res.responses, want,
            "query {qname} via {origin}: responses differ from every node's handler output"
        );
    }
    // -no-ack and -relay-factor, through Go and through ours side by side
    // (one query at a time per agent).
    let extras: BTreeMap<&str, Vec<Result<QueryResult, String>>> = thread::scope(|s| {
        let handles: Vec<_> = ["go1", "rs1"]
            .into_iter()
            .map(|origin| {
                let via = cluster.agent(origin);
                let h = s.spawn(move || {
                    vec![
                        query_json(via, &["-no-ack"], &format!("noack-{origin}"), "n", "3s"),
                        query_json(
                            via,
                            &["-relay-factor=2"],
                            &format!("relay-{origin}"),
                            "r",
                            "3s",
                        ),
                    ]
                });
                (origin, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(origin, h)| (origin, h.join().expect("query thread panicked")))
            .collect()
    });
    for (origin, results) in &extras {
        for (i, r) in results.iter().enumerate() {
            let (qname, payload, want_acks) = match i {
                0 => (format!("noack-{origin}"), "n", BTreeSet::new()),
                _ => (format!("relay-{origin}"), "r", everyone.clone()),
            };
            let r = ok(r.clone(), &format!("query {qname}"));
            assert_eq!(r.acks, want_acks, "query {qname}: acks");
            let want: BTreeMap<String, String> = everyone
                .iter()
                .map(|n| (n.clone(), format!("{n}:{qname}:{payload}")))
                .collect();
            assert_eq!(r.responses, want, "query {qname}: responses");
        }
    }
    // Text format, streamed by our RPC server.
    let rs1 = cluster.agent("rs1");
    let out = cli_timeout(
        rs1,
        "query",
        &["-timeout=5s", "q-text", "hello"],
        Duration::from_secs(60),
    );
    assert!(out.success(), "text query via rs1: {out}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("Query 'q-text' dispatched"),
        "{out}"
    );
    for n in &everyone {
        assert!(
            lines.contains(&format!("Ack from '{n}'").as_str()),
            "text query via rs1: no ack line for {n}: {out}"
        );
        assert!(
            lines.contains(&format!("Response from '{n}': {n}:q-text:hello").as_str()),
            "text query via rs1: no response line for {n}: {out}"
        );
    }
    assert!(lines.contains(&"Total Acks: 4"), "{out}");
    assert!(lines.contains(&"Total Responses: 4"), "{out}");
    record_measurement(&format!(
        "QUERY 4-node full round (timeout 5s) via {}",
        timings.join(" ")
    ));
}

/// Filtered queries: the same filters issued through a Go agent and through
/// ours select exactly the same responders, which equal the expected set.
#[test]
fn query_filters_match_go() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let dir = work_dir_for_test();
    let script = respond_script(&dir);
    let nodes = two_plus_two(
        [
            &[("role", "web"), ("dc", "a")],
            &[("role", "db"), ("dc", "a")],
            &[("role", "dns"), ("dc", "b")],
            &[("role", "web"), ("dc", "b")],
        ],
        &|_| vec![format!("-event-handler=query={}", script.display())],
    );
    let cluster = start_converged(&nodes, None);
    let all = ["go1", "rs1", "go2", "rs2"];
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["-node=go1", "-node=rs2"], vec!["go1", "rs2"]),
        (vec!["-tag", "role=d."], vec!["rs1", "go2"]),
        (vec!["-tag", "dc=^a$"], vec!["go1", "rs1"]),
        (vec!["-tag", "role=d.", "-tag", "dc=^a$"], vec!["rs1"]),
        (
            vec!["-node=go2", "-node=rs1", "-node=rs2", "-tag", "dc=b"],
            vec!["go2", "rs2"],
        ),
        (
            vec!["-tag", "role=^web$", "-tag", "dc=."],
            vec!["go1", "rs2"],
        ),
        (vec!["-tag", "role=w"], vec!["go1", "rs2"]),
        (vec!["-tag", "missing=.*"], all.to_vec()),
        (vec!["-tag", "missing=x"], vec![]),
        (vec!["-tag", "dc=A"], vec![]),
        (vec!["-node=nobody"], vec![]),
        (vec!["-node=rs1"], vec!["rs1"]),
    ];
    // One query at a time per origin: Go 0.9.4 keys its response collectors
    // by query LTime, and concurrent `Query` calls on one Go agent can share
    // an LTime (the later collector replaces the earlier one: "query reply ID
    // mismatch"). The two origins run side by side.
    let per_origin: BTreeMap<&str, Vec<Result<QueryResult, String>>> = thread::scope(|s| {
        let handles: Vec<_> = ["go1", "rs1"]
            .into_iter()
            .map(|origin| {
                let via = cluster.agent(origin);
                let cases = &cases;
                let h = s.spawn(move || {
                    cases
                        .iter()
                        .enumerate()
                        .map(|(i, (filter, _))| {
                            query_json(via, filter, &format!("f{i}-{origin}"), "x", "3s")
                        })
                        .collect::<Vec<_>>()
                });
                (origin, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(origin, h)| (origin, h.join().expect("query thread panicked")))
            .collect()
    });
    let mut failures = Vec::new();
    for (i, (filter, want)) in cases.iter().enumerate() {
        let want = set(want);
        let mut seen = BTreeMap::new();
        for origin in ["go1", "rs1"] {
            match &per_origin[origin][i] {
                Ok(r) => {
                    let responders: BTreeSet<String> = r.responses.keys().cloned().collect();
                    if responders != want || r.acks != want {
                        failures.push(format!(
                            "filter {filter:?} via {origin}: responders {responders:?}, acks {:?}, expected {want:?}",
                            r.acks
                        ));
                    }
                    for (n, p) in &r.responses {
                        let expect = format!("{n}:f{i}-{origin}:x");
                        if *p != expect {
                            failures.push(format!(
                                "filter {filter:?} via {origin}: {n} answered {p:?}, expected {expect:?}"
                            ));
                        }
                    }
                    seen.insert(origin, responders);
                }
                Err(e) => failures.push(format!("filter {filter:?} via {origin}: {e}")),
            }
        }
        if let (Some(g), Some(r)) = (seen.get("go1"), seen.get("rs1")) {
            if g != r {
                failures.push(format!(
                    "filter {filter:?}: responders via Go {g:?} differ from via ours {r:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "filtered queries:\n{}",
        failures.join("\n")
    );
    eprintln!(
        "{} filter cases agree between Go and Rust origins",
        cases.len()
    );
}

// ---------------------------------------------------------------------------
// 4. Tags
// ---------------------------------------------------------------------------

fn wait_tags_seen(
    observers: &[&Agent],
    node: &str,
    want: &BTreeMap<String, String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(DEADLINE, POLL, || {
        for o in observers {
            let view = o.members()?;
            match view.iter().find(|m| m.name == node) {
                Some(m) if m.tags == *want && m.status == "alive" => {}
                _ => {
                    return Err(format!(
                        "{} does not list {node} alive with tags {want:?}: {}",
                        o.name(),
                        fmt_view(&view)
                    ))
                }
            }
        }
        Ok(())
    })?;
    Ok(start.elapsed())
}

/// `serf tags -set k=v -delete x` on ours → Go agents see the change; the
/// same on a Go agent → ours see it.
#[test]
fn tag_changes_seen_both_ways() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let nodes = two_plus_two(
        [
            &[("x", "gx"), ("keep", "1")],
            &[("x", "rx"), ("keep", "2")],
            &[("keep", "3")],
            &[("keep", "4")],
        ],
        &|_| Vec::new(),
    );
    let cluster = start_converged(&nodes, None);
    let (go1, rs1) = (cluster.agent("go1"), cluster.agent("rs1"));
    let tagmap = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    let mut figures = Vec::new();
    for (changed, value, keep, observers) in [
        (rs1, "v", "2", cluster.all()),
        (go1, "gv", "1", cluster.all()),
    ] {
        let set_arg = format!("k={value}");
        let out = cli(changed, "tags", &["-set", &set_arg, "-delete", "x"]);
        assert!(out.success(), "`serf tags` via {}: {out}", changed.name());
        assert_eq!(
            out.stdout,
            "Successfully updated agent tags\n",
            "`serf tags` output via {}",
            changed.name()
        );
        let want = tagmap(&[("k", value), ("keep", keep)]);
        let took = ok(
            wait_tags_seen(&observers, changed.name(), &want),
            &format!("tags changed on {}", changed.name()),
        );
        figures.push(format!(
            "{}-change-seen-by-all={}",
            changed.name(),
            fmt_secs(took)
        ));
    }
    // A second change on ours: overwrite a value, add another, delete `keep`.
    let out = cli(
        rs1,
        "tags",
        &["-set", "k=v2", "-set", "new=", "-delete", "keep"],
    );
    assert!(out.success(), "second `serf tags` via rs1: {out}");
    let want = tagmap(&[("k", "v2"), ("new", "")]);
    let took = ok(
        wait_tags_seen(&cluster.all(), "rs1", &want),
        "second tag change on rs1",
    );
    figures.push(format!("rs1-second-change-seen-by-all={}", fmt_secs(took)));
    record_measurement(&format!("TAGS {}", figures.join(" ")));
}

// ---------------------------------------------------------------------------
// 5. Key rotation
// ---------------------------------------------------------------------------

/// Minimal blocking agent-RPC client: the messages are `serf_rpc`'s; this only adds a
/// blocking socket so that the flood test can pipeline requests.
struct RpcClient {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    seq: u64,
}

fn rpc_header(cmd: &str, seq: u64) -> Vec<u8> {
    serf_rpc::RequestHeader {
        command: cmd.to_string(),
        seq,
    }
    .encode()
}

impl RpcClient {
    fn connect(addr: &str) -> Result<RpcClient, String> {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let mut c = RpcClient {
            stream,
            buf: Vec::new(),
            start: 0,
            seq: 0,
        };
        let body = serf_rpc::HandshakeRequest {
            version: serf_rpc::VERSION,
        }
        .encode();
        let (err, _) = c.call("handshake", Some(&body), false)?;
        if !err.is_empty() {
            return Err(format!("handshake refused: {err}"));
        }
        Ok(c)
    }

    fn send(&mut self, cmd: &str, body: Option<&[u8]>) -> Result<u64, String> {
        let seq = self.seq;
        self.seq += 1;
        let mut out = rpc_header(cmd, seq);
        if let Some(b) = body {
            out.extend_from_slice(b);
        }
        self.stream
            .write_all(&out)
            .map_err(|e| format!("sending {cmd}: {e}"))?;
        Ok(seq)
    }

    /// The next whole msgpack object.
    fn read_object(&mut self) -> Result<Vec<u8>, String> {
        let mut chunk = [0u8; 65536];
        loop {
            if self.start < self.buf.len() {
                let pending = &self.buf[self.start..];
                let mut r = Reader::new(pending);
                match r.skip() {
                    Ok(()) => {
                        let obj = pending[..r.position()].to_vec();
                        self.start += r.position();
                        if self.start > 1 << 20 {
                            self.buf.drain(..self.start);
                            self.start = 0;
                        }
                        return Ok(obj);
                    }
                    Err(serf_wire::Error::Eof) => {}
                    Err(e) => return Err(format!("bad msgpack from agent: {e}")),
                }
            }
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("reading from agent: {e}"))?;
            if n == 0 {
                return Err("agent closed the RPC connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// `(Seq, Error)` of the next response header.
    fn read_header(&mut self) -> Result<(u64, String), String> {
        let obj = self.read_object()?;
        let h = serf_rpc::ResponseHeader::decode(&obj)
            .map_err(|e| format!("bad response header: {e}"))?;
        Ok((h.seq, h.error))
    }

    /// One request; reads the response header and, if `resp_body`, the body.
    fn call(
        &mut self,
        cmd: &str,
        body: Option<&[u8]>,
        resp_body: bool,
    ) -> Result<(String, Option<Vec<u8>>), String> {
        let seq = self.send(cmd, body)?;
        let (rseq, err) = self.read_header()?;
        if rseq != seq {
            return Err(format!("{cmd}: response seq {rseq}, expected {seq}"));
        }
        let body = if resp_body {
            Some(self.read_object()?)
        } else {
            None
        };
        Ok((err, body))
    }
}

/// A key operation's RPC answer.
#[derive(Debug, Default)]
struct KeyResponse {
    error: String,
    keys: BTreeMap<String, u64>,
    /// Shown through `Debug` when an assertion fails.
    #[allow(dead_code)]
    messages: BTreeMap<String, String>,
    num_err: u64,
    num_nodes: u64,
    num_resp: u64,
}

fn key_op(agent: &Agent, cmd: &str, key: Option<&str>) -> Result<KeyResponse, String> {
    let mut c = RpcClient::connect(&agent.rpc_addr())?;
    let body = key.map(|k| serf_rpc::KeyRequest { key: k.to_string() }.encode());
    let (error, body) = c.call(cmd, body.as_deref(), true)?;
    let body = body.unwrap_or_default();
    let r = serf_rpc::KeyResponse::decode(&body)
        .map_err(|e| format!("bad {cmd} response body: {e}"))?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(KeyResponse {
        error,
        keys: r
            .keys
            .unwrap_or_default()
            .into_iter()
            .map(|(k, n)| (k, count(n)))
            .collect(),
        messages: r.messages.into_iter().collect(),
        num_err: count(r.num_err),
        num_nodes: count(r.num_nodes),
        num_resp: count(r.num_resp),
    })
}

/// Parses `serf keys -list` output into key → (count, total).
fn parse_key_list(text: &str) -> BTreeMap<String, (u64, u64)> {
    text.lines()
        .filter(|l| !l.starts_with("==>") && !l.trim().is_empty())
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let key = parts.next()?;
            let frac = parts.next()?.trim_start_matches('[').trim_end_matches(']');
            let (a, b) = frac.split_once('/')?;
            Some((key.to_string(), (a.parse().ok()?, b.parse().ok()?)))
        })
        .collect()
}

/// Encrypted 2 Go + 2 Rust: install (via ours), use (via Go), remove the old
/// key (via ours); `-list` through both shows only the new key on 4/4 nodes;
/// every node stays alive throughout; a new Rust agent with only the new key
/// then joins.
#[test]
fn key_rotation_mixed_encrypted() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let old = keygen();
    let nodes = two_plus_two([&[], &[], &[], &[]], &|_| Vec::new());
    let cluster = start_converged(&nodes, Some(&old));
    let (go1, rs1, go2) = (
        cluster.agent("go1"),
        cluster.agent("rs1"),
        cluster.agent("go2"),
    );
    let go_bin = go_serf().expect("Go serf");
    let mut keygen_cmd = Command::new(&go_bin);
    keygen_cmd.arg("keygen");
    let out = ok(run_with_timeout(keygen_cmd, CLI_TIMEOUT), "serf keygen");
    assert!(out.status.success(), "serf keygen failed");
    let new = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(new.len(), 44, "serf keygen printed {new:?}");

    let everyone = names(&cluster.all());
    let stop = AtomicBool::new(false);
    let violations: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let polls = AtomicU64::new(0);
    let mut steps = Vec::new();
    thread::scope(|s| {
        // Watch every view during the whole rotation.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                for a in cluster.all() {
                    match a.members() {
                        Ok(view) => {
                            for n in &everyone {
                                if !view.iter().any(|m| m.name == *n && m.status == "alive") {
                                    violations.lock().unwrap().push(format!(
                                        "{} does not see {n} alive: {}",
                                        a.name(),
                                        fmt_view(&view)
                                    ));
                                }
                            }
                        }
                        Err(e) => violations
                            .lock()
                            .unwrap()
                            .push(format!("members via {}: {e}", a.name())),
                    }
                }
                polls.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(300));
            }
        });
        let run = |via: &Agent, arg: String, success: &str| -> CliOutput {
            let t0 = Instant::now();
            let out = cli_timeout(via, "keys", &[&arg], Duration::from_secs(60));
            eprintln!(
                "serf keys {} via {} took {}:\n{}",
                arg.split('=').next().unwrap_or(""),
                via.name(),
                fmt_secs(t0.elapsed()),
                out.stdout
            );
            assert!(
                out.success(),
                "`serf keys {arg}` via {} failed: {out}",
                via.name()
            );
            assert!(
                out.stdout.contains(success),
                "`serf keys {arg}` via {}: no {success:?}: {out}",
                via.name()
            );
            out
        };
        let list = |via: &Agent| -> BTreeMap<String, (u64, u64)> {
            let out = run(
                via,
                "-list".to_string(),
                "==> Keys gathered, listing cluster keys...",
            );
            parse_key_list(&out.stdout)
        };
        let t0 = Instant::now();
        run(
            rs1,
            format!("-install={new}"),
            "==> Successfully installed key!",
        );
        steps.push(format!("install(rs1)={}", fmt_secs(t0.elapsed())));
        let both: BTreeMap<String, (u64, u64)> =
            [(old.clone(), (4, 4)), (new.clone(), (4, 4))].into();
        assert_eq!(list(go1), both, "after install, listed via go1");
        assert_eq!(list(rs1), both, "after install, listed via rs1");

        let t0 = Instant::now();
        run(
            go1,
            format!("-use={new}"),
            "==> Successfully changed primary key!",
        );
        steps.push(format!("use(go1)={}", fmt_secs(t0.elapsed())));
        let t0 = Instant::now();
        run(
            rs1,
            format!("-remove={old}"),
            "==> Successfully removed key!",
        );
        steps.push(format!("remove(rs1)={}", fmt_secs(t0.elapsed())));

        let only_new: BTreeMap<String, (u64, u64)> = [(new.clone(), (4, 4))].into();
        assert_eq!(list(go1), only_new, "after rotation, listed via go1");
        assert_eq!(list(rs1), only_new, "after rotation, listed via rs1");

        // The RPC answers count every node (repeating the operations is a no-op).
        for via in [rs1, go1] {
            for (cmd, key) in [
                ("list-keys", None),
                ("install-key", Some(new.as_str())),
                ("use-key", Some(new.as_str())),
                ("remove-key", Some(old.as_str())),
            ] {
                let r = ok(key_op(via, cmd, key), &format!("{cmd} via {}", via.name()));
                assert!(
                    r.error.is_empty() && r.num_err == 0 && r.num_nodes == 4 && r.num_resp == 4,
                    "{cmd} via {}: {r:?} (expected no error, 4 nodes, 4 responses)",
                    via.name()
                );
                if cmd == "list-keys" {
                    assert_eq!(
                        r.keys,
                        [(new.clone(), 4)].into(),
                        "list-keys via {}",
                        via.name()
                    );
                }
            }
        }
        // Removing the primary is refused by every node, with Go's text.
        for via in [rs1, go1] {
            let out = cli_timeout(via, "keys", &[&format!("-remove={new}")], DEADLINE);
            assert_eq!(
                out.code(),
                1,
                "removing the primary via {}: {out}",
                via.name()
            );
            assert!(
                out.stdout
                    .contains("Error removing key: 4/4 nodes reported failure"),
                "removing the primary via {}: {out}",
                via.name()
            );
            assert_eq!(
                out.stdout
                    .matches("Removing the primary key is not allowed")
                    .count(),
                4,
                "removing the primary via {}: {out}",
                via.name()
            );
        }
        // Keep watching a little: a node left behind by the rotation would
        // start failing probes now.
        thread::sleep(Duration::from_secs(5));
        stop.store(true, Ordering::Relaxed);
    });
    let violations = violations.into_inner().unwrap();
    assert!(
        violations.is_empty(),
        "members not all alive during the rotation ({} polls):\n{}",
        polls.load(Ordering::Relaxed),
        violations.join("\n")
    );

    // A newcomer with only the new key joins through a Go agent.
    let t0 = Instant::now();
    let rs3 = ok(
        Agent::start(AgentSpec::new(RUST, "rs3").encrypt(&new).join(&go2.addr())),
        "starting rs3 with only the new key",
    );
    let mut all = cluster.all();
    all.push(&rs3);
    let took = ok(
        wait_converged(&all, DEADLINE),
        "rs3 (new key only) joins the rotated cluster",
    );
    steps.push(format!(
        "newcomer-converged={}",
        fmt_secs(t0.elapsed().max(took))
    ));
    record_measurement(&format!("KEY-ROTATION {}", steps.join(" ")));
}

// ---------------------------------------------------------------------------
// 6. RTT
// ---------------------------------------------------------------------------

/// Parses `Estimated a <-> b rtt: 0.347 ms`.
fn parse_rtt(text: &str) -> Option<(String, String, f64)> {
    let rest = text.trim().strip_prefix("Estimated ")?;
    let (pair, ms) = rest.split_once(" rtt: ")?;
    let (a, b) = pair.split_once(" <-> ")?;
    let ms: f64 = ms.strip_suffix(" ms")?.parse().ok()?;
    Some((a.to_string(), b.to_string(), ms))
}

/// `serf rtt` through a Go agent about a Rust node and through ours about a
/// Go node: both print a plausible estimate once coordinates have settled.
#[test]
fn rtt_both_ways() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let nodes = two_plus_two([&[], &[], &[], &[]], &|_| Vec::new());
    let cluster = start_converged(&nodes, None);
    let (go1, rs1) = (cluster.agent("go1"), cluster.agent("rs1"));
    let cases: [(&Agent, Vec<&str>, (&str, &str)); 4] = [
        (go1, vec!["rs1"], ("rs1", "go1")),
        (rs1, vec!["go1"], ("go1", "rs1")),
        (go1, vec!["rs1", "rs2"], ("rs1", "rs2")),
        (rs1, vec!["go1", "go2"], ("go1", "go2")),
    ];
    let mut figures = Vec::new();
    let t0 = Instant::now();
    for (via, args, (a, b)) in &cases {
        let mut last = String::new();
        let est = wait_for(DEADLINE, Duration::from_millis(500), || {
            let out = cli(via, "rtt", args);
            last = out.to_string();
            if !out.success() {
                return Err(format!("not yet: {out}"));
            }
            let (pa, pb, ms) =
                parse_rtt(&out.stdout).ok_or_else(|| format!("unparsable rtt output: {out}"))?;
            if (pa.as_str(), pb.as_str()) != (*a, *b) {
                return Err(format!("names {pa} <-> {pb}, expected {a} <-> {b}: {out}"));
            }
            if !(ms.is_finite() && (0.0..50.0).contains(&ms)) {
                return Err(format!("implausible estimate {ms} ms: {out}"));
            }
            Ok(ms)
        });
        let ms = ok(
            est,
            &format!(
                "`serf rtt {}` via {} (last: {last})",
                args.join(" "),
                via.name()
            ),
        );
        figures.push(format!(
            "{a}<->{b}(via {})={ms:.3}ms@{}",
            via.name(),
            fmt_secs(t0.elapsed())
        ));
    }
    // Unknown node: Go's error, exit 1, from our RPC too.
    for via in [go1, rs1] {
        let out = cli(via, "rtt", &["nobody"]);
        assert_eq!(out.code(), 1, "rtt nobody via {}: {out}", via.name());
        assert_eq!(
            out.stdout,
            "Could not find a coordinate for node \"nobody\"\n",
            "rtt nobody via {}",
            via.name()
        );
    }
    record_measurement(&format!("RTT {}", figures.join(" ")));
}

// ---------------------------------------------------------------------------
// 7. Snapshot rejoin after kill -9
// ---------------------------------------------------------------------------

/// Replays a snapshot file's member lines: the alive set (name → addr).
fn snapshot_alive(path: &Path) -> BTreeMap<String, String> {
    let mut alive = BTreeMap::new();
    for line in read_lines(path) {
        if let Some(rest) = line.strip_prefix("alive: ") {
            if let Some((name, addr)) = rest.rsplit_once(' ') {
                alive.insert(name.to_string(), addr.to_string());
            }
        } else if let Some(name) = line.strip_prefix("not-alive: ") {
            alive.remove(name);
        } else if line == "leave" {
            alive.clear();
        }
    }
    alive
}

/// The same agent again (same name, tags, gossip port, snapshot) without `-join`.
fn restart_without_join(old: &Agent) -> Agent {
    let mut spec = old.spec().clone();
    spec.join.clear();
    spec.port = Some(old.port());
    spec.rpc_port = None;
    ok(Agent::start(spec), &format!("restarting {}", old.name()))
}

fn check_rejoined(restarted: &Agent, others: &[&Agent], what: &str) -> Duration {
    let t0 = Instant::now();
    let mut all: Vec<&Agent> = others.to_vec();
    all.push(restarted);
    let names: Vec<&str> = all.iter().map(|a| a.name()).collect();
    ok(
        wait_all_see(&all, &names, DEADLINE),
        &format!("{what}: {} rejoins through its snapshot", restarted.name()),
    );
    ok(wait_converged(&all, DEADLINE), what);
    let line = restarted
        .log_line_containing("previously known node")
        .unwrap_or_default();
    eprintln!("{what}: rejoined after {}; {line}", fmt_secs(t0.elapsed()));
    t0.elapsed()
}

/// A Rust agent with `-snapshot` is killed with SIGKILL and restarted with
/// the same snapshot and no `-join`: it rejoins from the snapshot. (a) via
/// members known for a while, restarted after the Go agents declared it
/// failed; (b) via the only other member, which joined 3 s before the kill,
/// restarted at once.
#[test]
fn snapshot_rejoin_after_kill9() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let dir = work_dir_for_test();

    // (a) rs1 joins go1; go2 joins later; kill -9 rs1; restart.
    let snap1 = dir.join("rs1.snapshot");
    let go1 = ok(Agent::start(AgentSpec::new(GO, "go1")), "starting go1");
    let rs1 = ok(
        Agent::start(
            AgentSpec::new(RUST, "rs1")
                .join(&go1.addr())
                .arg(&format!("-snapshot={}", snap1.display())),
        ),
        "starting rs1",
    );
    ok(wait_converged(&[&go1, &rs1], DEADLINE), "go1 + rs1");
    let go2 = ok(
        Agent::start(AgentSpec::new(GO, "go2").join(&go1.addr())),
        "starting go2",
    );
    ok(
        wait_converged(&[&go1, &rs1, &go2], DEADLINE),
        "go1 + rs1 + go2",
    );
    let want = set(&["go1", "go2", "rs1"]);
    ok(
        wait_for(DEADLINE, POLL, || {
            let alive = snapshot_alive(&snap1);
            let got: BTreeSet<String> = alive.keys().cloned().collect();
            if got == want {
                Ok(())
            } else {
                Err(format!(
                    "snapshot {} lists {got:?} alive, expected {want:?}: {:?}",
                    snap1.display(),
                    read_lines(&snap1)
                ))
            }
        }),
        "rs1's snapshot records the members",
    );
    let snap_text = read_lines(&snap1);
    let killed = Instant::now();
    rs1.kill9();
    // Restart only once the Go agents have declared it failed.
    ok(
        wait_all_report(&[&go1, &go2], "rs1", "failed", killed, DEADLINE),
        "rs1 killed: the Go agents report it failed",
    );
    let rs1b = restart_without_join(&rs1);
    let took_a = check_rejoined(&rs1b, &[&go1, &go2], "rejoin (a)");
    eprintln!("snapshot before the kill: {snap_text:?}");
    drop(rs1b);
    drop(rs1);
    drop(go2);
    drop(go1);

    // (b) rs2 is a seed; go3 joins it; 3 s later kill -9 rs2; the only
    // member it can rejoin through is go3.
    let snap2 = dir.join("rs2.snapshot");
    let rs2 = ok(
        Agent::start(AgentSpec::new(RUST, "rs2").arg(&format!("-snapshot={}", snap2.display()))),
        "starting rs2",
    );
    let go3 = ok(
        Agent::start(AgentSpec::new(GO, "go3").join(&rs2.addr())),
        "starting go3",
    );
    // go3's -join has completed once its RPC answers (Agent::start).
    let joined = Instant::now();
    ok(wait_converged(&[&rs2, &go3], DEADLINE), "rs2 + go3");
    let settle = Duration::from_secs(3).saturating_sub(joined.elapsed());
    thread::sleep(settle);
    let alive = snapshot_alive(&snap2);
    let snap_text = read_lines(&snap2);
    rs2.kill9();
    let since_join = joined.elapsed();
    assert_eq!(
        alive.get("go3").map(String::as_str),
        Some(go3.addr().as_str()),
        "{:.1}s after go3 joined, rs2's snapshot lacks `alive: go3 {}` (crash safety): {snap_text:?}",
        since_join.as_secs_f64(),
        go3.addr()
    );
    // Restarted at once (go3 may not even have noticed the crash).
    let rs2b = restart_without_join(&rs2);
    let took_b = check_rejoined(&rs2b, &[&go3], "rejoin (b)");
    eprintln!("snapshot before the kill: {snap_text:?}");
    drop(rs2b);
    drop(rs2);
    drop(go3);

    // (c) For comparison, not asserted: does a Go agent's snapshot hold the
    // line 3 s after the join? (Go buffers lines and flushes only when a
    // later line is appended more than 500 ms after the last flush, so what
    // is not on disk now would be lost to a kill -9.)
    let snap3 = dir.join("go-seed.snapshot");
    let go_seed = ok(
        Agent::start(AgentSpec::new(GO, "gosnap").arg(&format!("-snapshot={}", snap3.display()))),
        "starting gosnap",
    );
    let go4 = ok(
        Agent::start(AgentSpec::new(GO, "go4").join(&go_seed.addr())),
        "starting go4",
    );
    let joined = Instant::now();
    ok(wait_converged(&[&go_seed, &go4], DEADLINE), "gosnap + go4");
    thread::sleep(Duration::from_secs(3).saturating_sub(joined.elapsed()));
    let go_has_line = snapshot_alive(&snap3).contains_key("go4");
    eprintln!("Go snapshot 3 s after the join: {:?}", read_lines(&snap3));
    record_measurement(&format!(
        "SNAPSHOT-REJOIN via-old-member={} via-member-joined-{:.1}s-before-kill={} (rust snapshot had the joiner: true; go snapshot had it after 3s: {go_has_line})",
        fmt_secs(took_a),
        since_join.as_secs_f64(),
        fmt_secs(took_b)
    ));
}

// ---------------------------------------------------------------------------
// 8. Size limits
// ---------------------------------------------------------------------------

/// Oversized events and queries are refused by ours exactly as by Go: same
/// exit status, same text. Sizes around both limits are compared too.
#[test]
fn oversized_events_and_queries_refused() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    // Names of equal length: the encoded query includes the source node name.
    let nodes = [NodeSpec::new(GO, "go1"), NodeSpec::new(RUST, "rs1").join(0)];
    let cluster = start_converged(&nodes, None);
    let (go1, rs1) = (cluster.agent("go1"), cluster.agent("rs1"));
    let x = |n: usize| "x".repeat(n);

    // (payload size, expected exit, expected stdout; None = compare with Go only)
    let events: [(usize, i32, Option<&str>); 4] = [
        (460, 0, Some("Event 'big' dispatched! Coalescing enabled: true\n")),
        (
            500,
            1,
            Some("Error sending event: encoded user event exceeds configured limit of 512 bytes after encoding\n"),
        ),
        (
            600,
            1,
            Some("Error sending event: user event exceeds configured limit of 512 bytes before encoding\n"),
        ),
        (
            10_000,
            1,
            Some("Error sending event: user event exceeds configured limit of 512 bytes before encoding\n"),
        ),
    ];
    let mut failures = Vec::new();
    for (size, code, text) in events {
        let payload = x(size);
        let go = cli(go1, "event", &["big", &payload]);
        let rs = cli(rs1, "event", &["big", &payload]);
        if (rs.code(), &rs.stdout) != (go.code(), &go.stdout) {
            failures.push(format!(
                "event with {size}-byte payload: ours {rs} vs Go {go}"
            ));
        }
        if go.code() != code || text.is_some_and(|t| go.stdout != t) {
            failures.push(format!(
                "event with {size}-byte payload: Go itself gave {go} (test expectation wrong?)"
            ));
        }
    }
    let queries: [(usize, i32, Option<&str>); 3] = [
        (850, 0, Some("Query 'bigq' dispatched")),
        (
            1000,
            1,
            Some("Error sending query: query exceeds limit of 1024 bytes\n"),
        ),
        (
            1100,
            1,
            Some("Error sending query: query exceeds limit of 1024 bytes\n"),
        ),
    ];
    for (size, code, text) in queries {
        let payload = x(size);
        let args = ["-timeout=1s", "bigq", payload.as_str()];
        let go = cli(go1, "query", &args);
        let rs = cli(rs1, "query", &args);
        // A dispatched query prints acks in arrival order: compare the first line.
        let first = |o: &CliOutput| o.stdout.lines().next().unwrap_or("").to_string();
        let same = if code == 0 {
            rs.code() == go.code() && first(&rs) == first(&go)
        } else {
            (rs.code(), &rs.stdout) == (go.code(), &go.stdout)
        };
        if !same {
            failures.push(format!(
                "query with {size}-byte payload: ours {rs} vs Go {go}"
            ));
        }
        let go_ok = go.code() == code
            && text.is_some_and(|t| {
                if code == 0 {
                    first(&go) == t
                } else {
                    go.stdout == t
                }
            });
        if !go_ok {
            failures.push(format!(
                "query with {size}-byte payload: Go itself gave {go} (test expectation wrong?)"
            ));
        }
    }
    assert!(failures.is_empty(), "size limits:\n{}", failures.join("\n"));
    // Both still fine.
    ok(
        cluster.wait_converged(DEADLINE),
        "after the size-limit checks",
    );
}

// ---------------------------------------------------------------------------
// 9. Event flood
// ---------------------------------------------------------------------------

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn mib(kib: u64) -> String {
    format!("{:.1}MiB", kib as f64 / 1024.0)
}

const FLOOD_EVENTS: u64 = 10_000;
const RSS_LIMIT_KIB: u64 = 64 * 1024;

/// 10,000 user events pipelined on one RPC connection to our agent: every
/// request is answered, memory stays bounded, and the agent stays healthy
/// and alive for the Go agents.
#[test]
fn event_flood_memory_bounded() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let nodes = two_plus_two([&[], &[], &[], &[]], &|_| Vec::new());
    let cluster = start_converged(&nodes, None);
    let rs1 = cluster.agent("rs1");
    let rs2 = cluster.agent("rs2");
    let (pid, pid2) = (rs1.pid(), rs2.pid());
    let before = rss_kib(pid).expect("VmRSS of rs1");
    let before2 = rss_kib(pid2).expect("VmRSS of rs2");

    let stop = AtomicBool::new(false);
    let peak = AtomicU64::new(before);
    let peak2 = AtomicU64::new(before2);
    let mut client = ok(RpcClient::connect(&rs1.rpc_addr()), "RPC connect to rs1");
    // Build every request up front: ~400-byte payloads (under the 512-byte
    // limit), 100 distinct names, half of them coalesced.
    let mut requests = Vec::new();
    for i in 0..FLOOD_EVENTS {
        let payload = format!("{i:08}-{}", "p".repeat(391));
        let event = serf_rpc::Request::Event(serf_rpc::EventRequest {
            name: format!("flood-{}", i % 100),
            payload: Some(payload.into_bytes()),
            coalesce: i % 2 == 0,
        });
        requests.extend_from_slice(&event.encode(client.seq + i));
    }
    let first_seq = client.seq;
    client.seq += FLOOD_EVENTS;
    let mut writer = client.stream.try_clone().expect("clone RPC stream");

    let t0 = Instant::now();
    let (answered, errors, secs) = thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if let Some(r) = rss_kib(pid) {
                    peak.fetch_max(r, Ordering::Relaxed);
                }
                if let Some(r) = rss_kib(pid2) {
                    peak2.fetch_max(r, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let w = s.spawn(move || writer.write_all(&requests).map_err(|e| e.to_string()));
        let mut answered = 0u64;
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut read_err = None;
        while answered < FLOOD_EVENTS {
            match client.read_header() {
                Ok((seq, err)) => {
                    if seq != first_seq + answered {
                        read_err = Some(format!(
                            "response {answered} has seq {seq}, expected {}",
                            first_seq + answered
                        ));
                        break;
                    }
                    answered += 1;
                    if !err.is_empty() {
                        *errors.entry(err).or_default() += 1;
                    }
                }
                Err(e) => {
                    read_err = Some(e);
                    break;
                }
            }
        }
        let secs = t0.elapsed();
        let write_res = w.join().unwrap_or_else(|_| Err("writer panicked".into()));
        if let Some(e) = read_err {
            stop.store(true, Ordering::Relaxed);
            panic!(
                "flood: after {answered} answers: {e} (writer: {write_res:?})\n--- rs1 log tail ---\n{}",
                rs1.log_tail(30)
            );
        }
        ok(write_res, "writing the flood");
        // Keep sampling while the cluster digests the flood.
        thread::sleep(Duration::from_secs(10));
        stop.store(true, Ordering::Relaxed);
        (answered, errors, secs)
    });
    let after = rss_kib(pid).expect("VmRSS of rs1 after the flood");
    let after2 = rss_kib(pid2).unwrap_or(0);
    let (peak, peak2) = (peak.into_inner(), peak2.into_inner());
    record_measurement(&format!(
        "FLOOD events={FLOOD_EVENTS} secs={:.2} rate={:.0}/s rss_before={} rss_peak={} rss_after={} (receiver rs2: before={} peak={} after={}) errors={errors:?}",
        secs.as_secs_f64(),
        FLOOD_EVENTS as f64 / secs.as_secs_f64(),
        mib(before),
        mib(peak),
        mib(after),
        mib(before2),
        mib(peak2),
        mib(after2),
    ));
    assert_eq!(answered, FLOOD_EVENTS);
    assert!(
        errors.is_empty(),
        "some flood events were refused: {errors:?}"
    );
    assert!(
        rs1.is_running() && rs2.is_running(),
        "an agent died during the flood"
    );
    assert!(
        peak < RSS_LIMIT_KIB,
        "rs1 peak RSS {} exceeds {} during the flood",
        mib(peak),
        mib(RSS_LIMIT_KIB)
    );
    assert!(
        peak2 < RSS_LIMIT_KIB,
        "rs2 (receiver) peak RSS {} exceeds {} during the flood",
        mib(peak2),
        mib(RSS_LIMIT_KIB)
    );
    drop(client);
    // Still healthy: answers members, everyone sees everyone alive.
    ok(rs1.members(), "rs1 answers members after the flood");
    ok(
        cluster.wait_converged(DEADLINE),
        "cluster after the flood (Go agents see ours alive)",
    );
    // And still delivers events.
    let out = cli(rs1, "event", &["after-flood", "ok"]);
    assert!(out.success(), "event after the flood: {out}");
}
