//! Crashes and event handlers: a user event whose handler had not run when the agent was
//! killed (`kill -9`) runs after the restart (ours, with a snapshot: the handler journal);
//! Go's agent loses it. Figures are printed as `measured:` and recorded.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use serf_interop::{
    go_cli, record_measurement, require, wait_converged, wait_for, work_dir_for_test, Agent,
    AgentSpec, Impl, Prereq, CLI_TIMEOUT, DEADLINE, POLL,
};

/// Events sent in one burst.
const EVENTS: usize = 20;

fn ok<T>(r: Result<T, String>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Handled event names in a handler's output file, with how often each ran.
fn handled(out: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in std::fs::read_to_string(out).unwrap_or_default().lines() {
        if let Some(name) = line.split(' ').next() {
            *m.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    m
}

fn received(agent: &Agent) -> usize {
    agent
        .log_text()
        .matches("Received event: user-event: e")
        .count()
}

#[test]
fn handlers_run_at_least_once_across_kill9() {
    require!(Prereq::GoSerf, Prereq::RustSerf);
    let dir = work_dir_for_test();
    // A slow handler, so that most events are still queued when the agent dies.
    let script = dir.join("handler.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nread -r p\necho \"$SERF_USER_EVENT $p\" >> \"$OUT\"\nsleep 0.5\n",
    )
    .expect("write handler");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let seed = ok(
        Agent::start(AgentSpec::new(Impl::Go, "seed")),
        "starting seed",
    );
    let node = |imp: Impl, name: &str| {
        let out = dir.join(format!("{name}.out"));
        let spec = AgentSpec::new(imp, name)
            .join(&seed.addr())
            .arg(&format!(
                "-snapshot={}",
                dir.join(format!("{name}.snap")).display()
            ))
            .arg(&format!(
                "-event-handler=user=OUT={} {}",
                out.display(),
                script.display()
            ));
        (ok(Agent::start(spec), &format!("starting {name}")), out)
    };
    let (ours, ours_out) = node(Impl::Rust, "ours");
    let (go, go_out) = node(Impl::Go, "go");
    ok(
        wait_converged(&[&seed, &ours, &go], DEADLINE),
        "three agents",
    );
    let sent = std::time::Instant::now();
    for i in 0..EVENTS {
        let r = ok(
            go_cli(
                "event",
                &seed.rpc_addr(),
                &["-coalesce=false", &format!("e{i}"), &format!("p{i}")],
                CLI_TIMEOUT,
            ),
            "serf event",
        );
        assert!(r.success(), "serf event: {}", r.stderr);
    }
    // Ours has every event in hand (Go logs an event only as its handler starts, so its
    // log cannot tell; it got them at the same time) and most handlers have not run yet:
    // kill -9.
    ok(
        wait_for(DEADLINE, POLL, || {
            let n = received(&ours);
            if n == EVENTS {
                Ok(())
            } else {
                Err(format!("ours received {n} of {EVENTS}"))
            }
        }),
        "ours receives the events",
    );
    eprintln!("all received {:?} after the first send", sent.elapsed());
    ours.kill9();
    go.kill9();
    let before = (handled(&ours_out).len(), handled(&go_out).len());
    assert!(
        before.0 < EVENTS && before.1 < EVENTS,
        "the handlers were too fast for the test: {before:?} of {EVENTS} ran before the kill"
    );
    // Restart both from their snapshots.
    let restart = |old: &Agent| {
        let mut spec = old.spec().clone();
        spec.join.clear();
        spec.port = Some(old.port());
        spec.rpc_port = None;
        ok(Agent::start(spec), &format!("restarting {}", old.name()))
    };
    let ours2 = restart(&ours);
    let go2 = restart(&go);
    ok(
        wait_for(Duration::from_secs(60), POLL, || {
            let n = handled(&ours_out).len();
            if n == EVENTS {
                Ok(())
            } else {
                Err(format!("ours handled {n} of {EVENTS}"))
            }
        }),
        "every event handled by ours after the restart",
    );
    // Give Go the same time to catch up (it has nothing left to run).
    std::thread::sleep(Duration::from_secs(2));
    let ours_runs = handled(&ours_out);
    let go_runs = handled(&go_out);
    let dups = ours_runs.values().map(|n| n - 1).sum::<usize>();
    let line = format!(
        "measured: kill -9 with {EVENTS} events in hand: ours ran {} ({} before the kill, {} duplicate runs), Go ran {} ({} before the kill, {} lost)",
        ours_runs.len(),
        before.0,
        dups,
        go_runs.len(),
        before.1,
        EVENTS - go_runs.len()
    );
    eprintln!("{line}");
    record_measurement(&line);
    // Only a handler running at the moment of the kill may run twice.
    assert!(dups <= 1, "{line}: {ours_runs:?}");
    drop((ours2, go2, seed));
}
