//! Scenarios shared by `go_only.rs` (both sides Go: validates the harness and
//! the scenarios themselves, and gives a Go-vs-Go baseline) and `mixed.rs`
//! (side A = Go, side B = Rust).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::{Duration, Instant};

use serf_interop::{
    describe_status, fmt_secs, fmt_view, keygen, record_measurement, require, wait_all_report,
    wait_converged, Agent, AgentSpec, Cluster, Impl, NodeSpec, Prereq, DEADLINE, POLL,
};

/// Deadline for a process to exit after SIGINT / a failed join.
pub(crate) const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// One side of a scenario: an implementation and a label used in node names
/// and measurement lines.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side {
    pub imp: Impl,
    pub label: &'static str,
}

pub(crate) const GO: Side = Side {
    imp: Impl::Go,
    label: "go",
};
pub(crate) const RUST: Side = Side {
    imp: Impl::Rust,
    label: "rust",
};
/// Go-only runs use two Go "sides" with distinct labels.
pub(crate) const GO_A: Side = Side {
    imp: Impl::Go,
    label: "goa",
};
pub(crate) const GO_B: Side = Side {
    imp: Impl::Go,
    label: "gob",
};

/// Checks the prerequisites of both sides (skip, or panic under CI=true).
pub(crate) fn require_sides(a: Side, b: Side) -> bool {
    // The Go CLI is always needed: it is how views are read.
    let mut kinds = vec![Prereq::GoSerf];
    for s in [a, b] {
        if !kinds.contains(&s.imp.prereq()) {
            kinds.push(s.imp.prereq());
        }
    }
    require(&kinds)
}

fn node(side: Side, i: usize) -> NodeSpec {
    NodeSpec::new(side.imp, &format!("{}{i}", side.label))
        .tag("impl", side.label)
        .tag("idx", &i.to_string())
}

fn ok<T>(r: Result<T, String>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e}"),
    }
}

fn names(agents: &[&Agent]) -> String {
    agents
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// (a) One `seed` node, one `joiner` node that `-join`s it. Both views list
/// both nodes alive with their tags, addresses and protocol versions.
pub(crate) fn pair_join(seed: Side, joiner: Side) {
    pair_join_with(seed, joiner, None)
}

/// [`pair_join`] with an optional gossip key on every node.
pub(crate) fn pair_join_with(seed: Side, joiner: Side, key: Option<&str>) {
    if !require_sides(seed, joiner) {
        return;
    }
    let started = Instant::now();
    let nodes = [
        NodeSpec::new(seed.imp, &format!("{}-seed", seed.label))
            .tag("role", "web")
            .tag("dc", "x"),
        NodeSpec::new(joiner.imp, &format!("{}-joiner", joiner.label))
            .tag("role", "db")
            .tag("dc", "y")
            .join(0),
    ];
    let cluster = ok(Cluster::start(&nodes, key), "starting cluster");
    let took = ok(cluster.wait_converged(DEADLINE), "convergence");
    for a in cluster.all() {
        let view = ok(a.members(), "members");
        assert_eq!(view.len(), 2, "{} view: {}", a.name(), fmt_view(&view));
        for m in &view {
            let want = [("max", 5), ("min", 2), ("version", 5)];
            for (k, v) in want {
                assert_eq!(
                    m.protocol.get(k),
                    Some(&v),
                    "{} lists {} with protocol {:?}, expected max=5 min=2 version=5",
                    a.name(),
                    m.name,
                    m.protocol
                );
            }
        }
    }
    eprintln!(
        "{} joins {}: converged {} after start ({} total)",
        joiner.label,
        seed.label,
        fmt_secs(took),
        fmt_secs(started.elapsed())
    );
}

/// (b) 3 + 3 agents joined through a mix of seeds; every agent sees all six
/// alive with correct tags.
pub(crate) fn three_plus_three(a: Side, b: Side) {
    three_plus_three_with(a, b, None)
}

/// [`three_plus_three`] with an optional gossip key on every node.
pub(crate) fn three_plus_three_with(a: Side, b: Side, key: Option<&str>) {
    if !require_sides(a, b) {
        return;
    }
    let nodes = [
        node(a, 1),                 // 0: seed
        node(b, 1).join(0),         // 1: B joins A
        node(a, 2).join(1),         // 2: A joins B
        node(b, 2).join(2),         // 3: B joins A (which joined via B)
        node(a, 3).join(1).join(0), // 4: A joins B and A
        node(b, 3).join(3),         // 5: B joins B
    ];
    let cluster = ok(Cluster::start(&nodes, key), "starting cluster");
    let took = ok(cluster.wait_converged(DEADLINE), "convergence of 3+3");
    for ag in cluster.all() {
        let view = ok(ag.members(), "members");
        assert_eq!(view.len(), 6, "{} view: {}", ag.name(), fmt_view(&view));
    }
    eprintln!(
        "3 {} + 3 {}: all 6 views converged {} after the last start",
        a.label,
        b.label,
        fmt_secs(took)
    );
}

/// (c) 2 A + 2 B. kill -9 one B → every A reports it failed; kill -9 one A →
/// every remaining B reports it failed. Prints both detection times.
pub(crate) fn kill9_detection(a: Side, b: Side) {
    kill9_detection_with(a, b, None)
}

/// [`kill9_detection`] with an optional gossip key on every node.
pub(crate) fn kill9_detection_with(a: Side, b: Side, key: Option<&str>) {
    if !require_sides(a, b) {
        return;
    }
    let nodes = [
        node(a, 1),
        node(b, 1).join(0),
        node(a, 2).join(1),
        node(b, 2).join(0),
    ];
    let cluster = ok(Cluster::start(&nodes, key), "starting cluster");
    ok(cluster.wait_converged(DEADLINE), "convergence");
    let a1 = cluster.agent(&format!("{}1", a.label));
    let b1 = cluster.agent(&format!("{}1", b.label));
    let a2 = cluster.agent(&format!("{}2", a.label));
    let b2 = cluster.agent(&format!("{}2", b.label));

    // B killed, seen by every A.
    let t0 = Instant::now();
    b1.kill9();
    let seen_by_a = ok(
        wait_all_report(&[a1, a2], b1.name(), "failed", t0, DEADLINE),
        &format!("{} killed: A side detection", b1.name()),
    );
    let b_killed_seen_by_a = seen_by_a.iter().map(|(_, t)| *t).max().unwrap_or_default();
    // The surviving B must agree as well (not timed).
    ok(
        wait_all_report(&[b2], b1.name(), "failed", t0, DEADLINE),
        &format!("{} killed: seen by {}", b1.name(), b2.name()),
    );

    // A killed, seen by every remaining B.
    let t1 = Instant::now();
    a1.kill9();
    let seen_by_b = ok(
        wait_all_report(&[b2], a1.name(), "failed", t1, DEADLINE),
        &format!("{} killed: B side detection", a1.name()),
    );
    let a_killed_seen_by_b = seen_by_b.iter().map(|(_, t)| *t).max().unwrap_or_default();
    ok(
        wait_all_report(&[a2], a1.name(), "failed", t1, DEADLINE),
        &format!("{} killed: seen by {}", a1.name(), a2.name()),
    );
    // The survivors still see each other alive.
    ok(
        wait_converged(&[a2, b2], DEADLINE),
        "survivors still converged",
    );

    let per = |v: &[(String, Duration)]| {
        v.iter()
            .map(|(n, t)| format!("{n}:{}", fmt_secs(*t)))
            .collect::<Vec<_>>()
            .join(",")
    };
    record_measurement(&format!(
        "DETECTION{} {b}-killed-seen-by-{a}={} {a}-killed-seen-by-{b}={} (per observer: {} | {})",
        if key.is_some() { " encrypted" } else { "" },
        fmt_secs(b_killed_seen_by_a),
        fmt_secs(a_killed_seen_by_b),
        per(&seen_by_a),
        per(&seen_by_b),
        a = a.label,
        b = b.label,
    ));
}

/// (d) 2 A + 2 B. SIGINT one B → every A shows it left, and the process
/// exits (status equal to the Go reference: 0); then the same for one A seen
/// by the remaining B.
pub(crate) fn graceful_leave(a: Side, b: Side) {
    graceful_leave_with(a, b, None)
}

/// [`graceful_leave`] with an optional gossip key on every node.
pub(crate) fn graceful_leave_with(a: Side, b: Side, key: Option<&str>) {
    if !require_sides(a, b) {
        return;
    }
    let nodes = [
        node(a, 1),
        node(b, 1).join(0),
        node(a, 2).join(1),
        node(b, 2).join(0),
    ];
    let cluster = ok(Cluster::start(&nodes, key), "starting cluster");
    ok(cluster.wait_converged(DEADLINE), "convergence");
    let a1 = cluster.agent(&format!("{}1", a.label));
    let b1 = cluster.agent(&format!("{}1", b.label));
    let a2 = cluster.agent(&format!("{}2", a.label));
    let b2 = cluster.agent(&format!("{}2", b.label));

    let leave = |leaver: &Agent, observers: &[&Agent]| -> (Duration, Duration) {
        let t0 = Instant::now();
        ok(leaver.sigint(), "SIGINT");
        let seen = ok(
            wait_all_report(observers, leaver.name(), "left", t0, DEADLINE),
            &format!(
                "{} sent SIGINT: {} should show it left",
                leaver.name(),
                names(observers)
            ),
        );
        let status = leaver.wait_exit(EXIT_DEADLINE).unwrap_or_else(|| {
            panic!(
                "{} did not exit within {:?} of SIGINT",
                leaver.name(),
                EXIT_DEADLINE
            )
        });
        let exited = t0.elapsed();
        // The Go reference exits 0 after a graceful leave on SIGINT.
        assert!(
            status.success(),
            "{} exited with {} after SIGINT; the Go agent exits 0",
            leaver.name(),
            describe_status(&status)
        );
        let seen_max = seen.iter().map(|(_, t)| *t).max().unwrap_or_default();
        (seen_max, exited)
    };

    let (b_left_seen, b_exit) = leave(b1, &[a1, a2]);
    ok(
        wait_all_report(&[b2], b1.name(), "left", Instant::now(), DEADLINE),
        &format!("{} left: seen by {}", b1.name(), b2.name()),
    );
    let (a_left_seen, a_exit) = leave(a1, &[b2]);
    ok(
        wait_all_report(&[a2], a1.name(), "left", Instant::now(), DEADLINE),
        &format!("{} left: seen by {}", a1.name(), a2.name()),
    );
    ok(
        wait_converged(&[a2, b2], DEADLINE),
        "survivors still converged",
    );
    record_measurement(&format!(
        "LEAVE {b}-left-seen-by-{a}={} {a}-left-seen-by-{b}={} {b}-exit={} {a}-exit={}",
        fmt_secs(b_left_seen),
        fmt_secs(a_left_seen),
        fmt_secs(b_exit),
        fmt_secs(a_exit),
        a = a.label,
        b = b.label,
    ));
}

/// How long the intruders of [`encrypted_cluster`] are watched if they keep
/// running instead of exiting.
const INTRUDER_WATCH: Duration = Duration::from_secs(15);

/// (e) 2 A + 2 B with one key converge. Then intruders try to join: an A
/// with a different key (via a B seed), a B with no key (via an A seed), a B
/// with a different key (via an A seed) and an A with no key (via a B seed).
/// Each must exit non-zero or never appear in anyone's view; afterwards the
/// original four are still all alive everywhere and all still running.
pub(crate) fn encrypted_cluster(a: Side, b: Side) {
    if !require_sides(a, b) {
        return;
    }
    let key = keygen();
    let other_key = keygen();
    let nodes = [
        node(a, 1),
        node(b, 1).join(0),
        node(a, 2).join(1),
        node(b, 2).join(0).join(2),
    ];
    let cluster = ok(
        Cluster::start(&nodes, Some(&key)),
        "starting encrypted cluster",
    );
    ok(cluster.wait_converged(DEADLINE), "encrypted convergence");
    let a_seed = cluster.agent(&format!("{}1", a.label));
    let b_seed = cluster.agent(&format!("{}1", b.label));

    let intruder_specs = [
        AgentSpec::new(a.imp, &format!("{}-wrongkey", a.label))
            .encrypt(&other_key)
            .join(&b_seed.addr()),
        AgentSpec::new(b.imp, &format!("{}-nokey", b.label)).join(&a_seed.addr()),
        AgentSpec::new(b.imp, &format!("{}-wrongkey", b.label))
            .encrypt(&other_key)
            .join(&a_seed.addr()),
        AgentSpec::new(a.imp, &format!("{}-nokey", a.label)).join(&b_seed.addr()),
    ];
    let intruders: Vec<Agent> = intruder_specs
        .into_iter()
        .map(|s| ok(Agent::spawn(s), "spawning intruder"))
        .collect();
    let intruder_names: Vec<&str> = intruders.iter().map(|i| i.name()).collect();

    // Watch: no original node may ever list an intruder; intruders should exit.
    let watch_start = Instant::now();
    let mut outcome: Vec<Option<String>> = vec![None; intruders.len()];
    loop {
        for o in cluster.all() {
            let view = ok(o.members(), &format!("members of {}", o.name()));
            if let Some(m) = view
                .iter()
                .find(|m| intruder_names.contains(&m.name.as_str()))
            {
                panic!(
                    "{} lists intruder {} ({}): {}",
                    o.name(),
                    m.name,
                    m.status,
                    fmt_view(&view)
                );
            }
        }
        for (i, intr) in intruders.iter().enumerate() {
            if outcome[i].is_none() {
                if let Some(st) = intr.try_exit_status() {
                    assert!(
                        !st.success(),
                        "intruder {} exited successfully (exit 0); expected a failed join",
                        intr.name()
                    );
                    outcome[i] = Some(format!(
                        "exited {} after {}",
                        describe_status(&st),
                        fmt_secs(intr.uptime())
                    ));
                }
            }
        }
        if outcome.iter().all(Option::is_some) || watch_start.elapsed() >= INTRUDER_WATCH {
            break;
        }
        std::thread::sleep(POLL);
    }
    for (i, intr) in intruders.iter().enumerate() {
        let how = outcome[i].clone().unwrap_or_else(|| {
            // Still running: acceptable only if it never joined anyone. Its own
            // view must not contain an original node as alive.
            if let Ok(view) = intr.members() {
                let joined: Vec<&str> = view
                    .iter()
                    .filter(|m| m.status == "alive" && m.name != intr.name())
                    .map(|m| m.name.as_str())
                    .collect();
                assert!(
                    joined.is_empty(),
                    "intruder {} still running and sees {:?} alive",
                    intr.name(),
                    joined
                );
            }
            format!(
                "still running after {}, never joined",
                fmt_secs(INTRUDER_WATCH)
            )
        });
        let why = intr
            .log_line_containing("Failed to join")
            .unwrap_or_default();
        eprintln!("intruder {}: {how}; {why}", intr.name());
    }
    drop(intruders);

    ok(
        cluster.wait_converged(DEADLINE),
        "original four still converged after intrusion attempts",
    );
    for ag in cluster.all() {
        assert!(
            ag.is_running(),
            "{} is no longer running: {}",
            ag.name(),
            ag.try_exit_status()
                .map(|s| describe_status(&s))
                .unwrap_or_default()
        );
        let view = ok(ag.members(), "members");
        assert_eq!(view.len(), 4, "{} view: {}", ag.name(), fmt_view(&view));
    }
}

/// (f) `serf agent -join=<closed port>` exits non-zero. Returns the exit
/// status and the "Failed to join" line.
pub(crate) fn join_failure_status(imp: Impl) -> (std::process::ExitStatus, String) {
    let closed = serf_interop::free_tcp_port();
    let agent = ok(
        Agent::spawn(
            AgentSpec::new(imp, &format!("{imp}-lonely")).join(&format!("127.0.0.1:{closed}")),
        ),
        "spawning",
    );
    let status = agent.wait_exit(EXIT_DEADLINE).unwrap_or_else(|| {
        panic!(
            "{imp} agent with -join=127.0.0.1:{closed} (nothing listening) still running after {:?}",
            EXIT_DEADLINE
        )
    });
    let line = agent
        .log_line_containing("Failed to join")
        .or_else(|| agent.log_line_containing("rror"))
        .unwrap_or_default();
    assert!(
        !status.success(),
        "{imp} agent exited successfully although -join=127.0.0.1:{closed} cannot succeed; log:\n{}",
        agent.log_tail(30)
    );
    (status, line)
}
