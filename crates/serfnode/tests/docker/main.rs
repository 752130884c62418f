//! serfnode on real Docker: serfnode containers, children, a Go `serf` member, networks.
//! Run by `scripts/test`; with `CI=true` a missing Docker, busybox-static or Go serf is a
//! failure. Figures (times from start or death to files) are printed as `measured:`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

use harness::{must, poll, ready, Container, Scope, BUSYBOX_IMAGE, GO_IMAGE};
use serde_json::Value;
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(60);

/// The ids in a node's `/serfnodes_by_id.json`, sorted.
fn ids(c: &Container) -> Option<Vec<String>> {
    let v = c.json("/serfnodes_by_id.json")?;
    let mut k: Vec<String> = v.as_object()?.keys().cloned().collect();
    k.sort();
    Some(k)
}

fn wait_ids(c: &Container, want: &[&str]) -> Duration {
    let start = Instant::now();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    poll(&format!("{} to list {want:?}", c.name), CONVERGE, || {
        (ids(c).as_ref() == Some(&want)).then_some(())
    });
    start.elapsed()
}

/// The managed block's `role -> address` lines of a node's `/etc/hosts`.
fn hosts_roles(c: &Container) -> Option<Vec<(String, String)>> {
    let text = c.cat("/etc/hosts")?;
    let mut in_block = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("# BEGIN serfnode") {
            in_block = true;
        } else if line.starts_with("# END serfnode") {
            in_block = false;
        } else if in_block {
            let mut parts = line.split(' ');
            let ip = parts.next()?.to_string();
            for name in parts {
                out.push((name.to_string(), ip.clone()));
            }
        }
    }
    out.sort();
    Some(out)
}

fn go_agent(scope: &Scope, suffix: &str, network: &str, join: &str) -> Container {
    scope.run(
        suffix,
        &[
            "--network",
            network,
            GO_IMAGE,
            "agent",
            "-node",
            suffix,
            "-bind",
            "0.0.0.0:7946",
            "-join",
            join,
            "-event-handler",
            "user:deploy=cat >> /tmp/handled",
            "-event-handler",
            "user:supervisor=cat >> /tmp/supervisor; echo >> /tmp/supervisor",
        ],
    )
}

fn go_members(go: &Container) -> Option<Value> {
    harness::docker(&["exec", &go.id, "serf", "members", "-format", "json"])
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// Waits until the Go member sees `n` members alive.
fn wait_go_alive(go: &Container, n: usize, what: &str) {
    poll(what, CONVERGE, || {
        let m = go_members(go)?;
        let alive = m["members"]
            .as_array()?
            .iter()
            .filter(|m| m["status"] == "alive")
            .count();
        (alive == n).then_some(())
    });
}

fn go_status(go: &Container, name: &str) -> Option<String> {
    go_members(go)?["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == name)
        .and_then(|m| m["status"].as_str().map(str::to_string))
}

#[test]
fn a_cluster_of_serfnodes_and_a_go_member_as_files_and_hosts() {
    if !ready("a_cluster_of_serfnodes_and_a_go_member_as_files_and_hosts") {
        return;
    }
    harness::images();
    let scope = Scope::new("cluster");
    let net = scope.network("net", &[]);
    let started = Instant::now();
    let a = scope.serfnode("a", &net, &["ROLE=db"], &[]);
    let first_files = poll("a's files", CONVERGE, || {
        a.json("/serfnode/serfnodes_by_role.json")
    });
    let a_ready = started.elapsed();
    let a_id = poll("a's node id", CONVERGE, || a.cat("/serfnode/node_id"));
    let a_id = a_id.trim().to_string();
    assert_eq!(a_id.len(), 32, "{a_id}");
    assert!(a_id
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert!(first_files["db"][0]["id"] == a_id.as_str(), "{first_files}");
    let b = scope.serfnode(
        "b",
        &net,
        &["ROLE=db", &format!("PEER={}", a.name), "NODE_NAME=b"],
        &[],
    );
    let c = scope.serfnode(
        "c",
        &net,
        &[
            "ROLE=web",
            &format!("PEER=nosuchhost-{}:7946,{}", std::process::id(), a.name),
            "NODE_NAME=c",
            "SERVICE_IP=10.9.9.9",
            "SERVICE_PORT=8080",
        ],
        &[],
    );
    let go = go_agent(&scope, "go", &net, &a.name);
    wait_ids(&c, &[&a_id, "b", "c"]);
    wait_ids(&a, &[&a_id, "b", "c"]);
    wait_go_alive(&go, 4, "the Go member to see 4 alive");
    // Node info: exactly the 8 fields, strings except ports; the Go member is skipped.
    let by_id = c.json("/serfnodes_by_id.json").expect("by_id");
    for (id, info) in by_id.as_object().expect("object") {
        let obj = info.as_object().expect("node info");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "id",
                "ports",
                "role",
                "serf_ip",
                "serf_port",
                "service_ip",
                "service_port",
                "timestamp"
            ]
        );
        for (k, v) in obj {
            if k == "ports" {
                assert!(v.is_object(), "{id}: ports {v}");
            } else {
                assert!(v.is_string(), "{id}: {k} = {v}");
            }
        }
        assert_eq!(info["id"], id.as_str());
        assert_eq!(info["serf_port"], "7946");
    }
    assert_eq!(by_id["c"]["service_ip"], "10.9.9.9");
    assert_eq!(by_id["c"]["service_port"], "8080");
    assert_eq!(by_id["b"]["service_ip"], by_id["b"]["serf_ip"]);
    assert_eq!(by_id["b"]["serf_ip"], b.ip(&net).as_str());
    let by_role = c.json("/serfnodes_by_role.json").expect("by_role");
    assert_eq!(by_role["db"].as_array().map(Vec::len), Some(2));
    assert_eq!(by_role["web"].as_array().map(Vec::len), Some(1));
    // The /serfnode copies are the same files.
    for f in ["serfnodes_by_id.json", "serfnodes_by_role.json"] {
        assert_eq!(
            c.cat(&format!("/{f}")),
            c.cat(&format!("/serfnode/{f}")),
            "{f}"
        );
    }
    // me.json and parent.json: this node's id and its own container.
    let me = c.json("/me.json").expect("me.json");
    assert_eq!(me["id"], "c");
    assert_eq!(me["inspect"]["Id"], c.id.as_str());
    assert_eq!(c.cat("/me.json"), c.cat("/serfnode/parent.json"));
    assert_eq!(c.cat("/agent_up").as_deref(), Some("serf up"));
    assert_eq!(
        c.cat("/tmp/init").as_deref(),
        Some("init"),
        "the init hook ran"
    );
    // /etc/hosts: the oldest db (a), web at its service IP; Docker's lines kept.
    let a_ip = a.ip(&net);
    let b_ip = b.ip(&net);
    poll("c's hosts block", CONVERGE, || {
        (hosts_roles(&c)?
            == vec![
                ("db".to_string(), a_ip.clone()),
                ("web".to_string(), "10.9.9.9".to_string()),
            ])
        .then_some(())
    });
    let hosts = c.cat("/etc/hosts").expect("hosts");
    assert!(hosts.contains("127.0.0.1\tlocalhost"), "{hosts}");
    assert!(hosts.contains(&c.ip(&net)), "{hosts}");
    // The Go member sees our tags.
    let m = go_members(&go).expect("members");
    let tags = &m["members"]
        .as_array()
        .expect("list")
        .iter()
        .find(|m| m["name"] == "c")
        .expect("c")["tags"];
    for t in [
        "role",
        "ip",
        "serf_port",
        "rpc",
        "timestamp",
        "service",
        "service_port",
        "ports",
    ] {
        assert!(tags.get(t).is_some(), "tag {t} missing: {tags}");
    }
    // A query from the Go CLI is answered by every serfnode's handler.
    let q = must(&[
        "exec", &go.id, "serf", "query", "-format", "json", "-timeout", "5s", "whoami",
    ]);
    let q: Value = serde_json::from_str(&q).expect("query json");
    assert_eq!(q["Responses"]["c"], "I am c\n", "{q}");
    assert_eq!(q["Responses"]["b"], "I am b\n", "{q}");
    // A handler's orphan is reaped by serfnode as PID 1: no zombie stays.
    must(&["exec", &go.id, "serf", "event", "orphan", ""]);
    poll("the orphan to finish", CONVERGE, || c.cat("/tmp/orphan"));
    poll("no zombie in c", CONVERGE, || {
        let ps = must(&["exec", &c.id, "/bin/busybox", "ps", "-o", "stat,comm"]);
        (!ps.lines().any(|l| l.trim_start().starts_with('Z'))).then_some(())
    });
    // A member dies: gone from the files and from the hosts block on the others.
    must(&["kill", &a.id]);
    let died = Instant::now();
    wait_ids(&c, &["b", "c"]);
    let files_after_death = died.elapsed();
    poll("db to move to b", CONVERGE, || {
        (hosts_roles(&c)?
            == vec![
                ("db".to_string(), b_ip.clone()),
                ("web".to_string(), "10.9.9.9".to_string()),
            ])
        .then_some(())
    });
    let hosts_after_death = died.elapsed();
    // The last db dies: the role is pruned.
    must(&["kill", &b.id]);
    poll("db to be pruned", CONVERGE, || {
        (hosts_roles(&c)? == vec![("web".to_string(), "10.9.9.9".to_string())]).then_some(())
    });
    let by_role = c.json("/serfnodes_by_role.json").expect("by_role");
    assert!(by_role.get("db").is_none(), "{by_role}");
    eprintln!(
        "measured: docker run to files {:.2}s; member death to files {:.2}s, to hosts {:.2}s",
        a_ready.as_secs_f64(),
        files_after_death.as_secs_f64(),
        hosts_after_death.as_secs_f64()
    );
}

const CHILD_SCRIPT: &str = r#"#!/bin/sh
cp /me.json /tmp/me.json
echo "started $X $Y" >> /tmp/child.log
# The test says when every member is up.
while [ ! -e /serfnode/go ]; do sleep 0.1; done
printf 'not json\n' > /serfnode/parent
printf '{"x": 1}\n' > /serfnode/parent
printf '["deploy", {"v": 2}]\n' > /serfnode/parent
trap 'exit 0' TERM
while true; do sleep 1; done
"#;

#[test]
fn children_fifo_events_handlers_stop_and_restart() {
    if !ready("children_fifo_events_handlers_stop_and_restart") {
        return;
    }
    harness::images();
    let scope = Scope::new("children");
    let net = scope.network("net", &[]);
    let script = scope.dir.join("child.sh");
    std::fs::write(&script, CHILD_SCRIPT).expect("script");
    let yml = scope.dir.join("serfnode.yml");
    std::fs::write(
        &yml,
        format!(
            "serfnode:\n  environment:\n    X: parent\nchildren:\n  - app:\n      image: {BUSYBOX_IMAGE}\n      command: sh /child.sh\n      ports: [\"8080:8080\"]\n      volumes: [\"{}:/child.sh:ro\"]\n      environment: {{X: child, Y: child}}\n",
            script.display()
        ),
    )
    .expect("yml");
    let yml_mount = format!("{}:/serfnode.yml:ro", yml.display());
    let docker_run_name = scope.name("dockerrun");
    let p = scope.serfnode(
        "p",
        &net,
        &[
            "ROLE=app",
            &format!("DOCKER_NAME={docker_run_name}"),
            &format!("DOCKER_RUN=-e A=1 {BUSYBOX_IMAGE} sh -c 'trap \"exit 0\" TERM; while true; do sleep 1; done'"),
        ],
        &["-v", &yml_mount],
    );
    let p_id = poll("p's node id", CONVERGE, || p.cat("/serfnode/node_id"))
        .trim()
        .to_string();
    let q = scope.serfnode(
        "q",
        &net,
        &["ROLE=db", "NODE_NAME=q", &format!("PEER={}", p.name)],
        &[],
    );
    let go = go_agent(&scope, "go", &net, &p.name);
    wait_ids(&q, &[&p_id, "q"]);
    wait_go_alive(&go, 3, "the Go member to see 3 alive");
    must(&["exec", &p.id, "/bin/busybox", "touch", "/serfnode/go"]);
    // The child: found by label, sharing p's network and volumes.
    let filter = format!("label=serfnode.parent={}", p.id);
    let app_filter = [filter.as_str(), "--filter", "label=serfnode.child=app"];
    let kid_id = poll("the child container", CONVERGE, || {
        let mut args = vec!["ps", "-aq", "--no-trunc", "--filter"];
        args.extend_from_slice(&app_filter);
        let out = must(&args);
        (!out.is_empty()).then_some(out)
    });
    // The DOCKER_RUN child: its own network, the parent's volumes, the given options.
    let dr = poll("the DOCKER_RUN child running", CONVERGE, || {
        harness::docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.HostConfig.NetworkMode}}",
            &docker_run_name,
        ])
        .ok()
        .filter(|s| s.starts_with("true"))
    });
    assert_eq!(dr, "true default");
    let dr_env = must(&["inspect", "-f", "{{.Config.Env}}", &docker_run_name]);
    assert!(dr_env.contains("A=1"), "{dr_env}");
    assert!(must(&[
        "inspect",
        "-f",
        "{{.HostConfig.VolumesFrom}}",
        &docker_run_name
    ])
    .contains(&p.id));
    let kid = Container {
        name: must(&["inspect", "-f", "{{.Name}}", &kid_id])
            .trim_start_matches('/')
            .to_string(),
        id: kid_id,
    };
    assert_eq!(
        kid.inspect("{{.HostConfig.NetworkMode}}"),
        format!("container:{}", p.id)
    );
    assert!(kid.inspect("{{.HostConfig.VolumesFrom}}").contains(&p.id));
    assert_eq!(
        kid.inspect("{{index .Config.Labels \"serfnode.child\"}}"),
        "app"
    );
    // Its /me.json (written without a shell in the child), its entry in the parent.
    let kid_me: Value = poll("the child's /me.json copy", CONVERGE, || {
        kid.cat("/tmp/me.json")
            .and_then(|t| serde_json::from_str(&t).ok())
    });
    assert_eq!(kid_me["id"], p_id.as_str());
    assert_eq!(kid_me["inspect"]["Id"], kid.id.as_str());
    let p_me = p.json("/me.json").expect("p me.json");
    assert_eq!(
        kid_me["inspect"]["NetworkSettings"],
        p_me["inspect"]["NetworkSettings"]
    );
    let by_name = poll("children_by_name.json", CONVERGE, || {
        p.json("/children_by_name.json")
    });
    assert_eq!(by_name[kid.name.as_str()]["id"], p_id.as_str(), "{by_name}");
    assert_eq!(
        kid.cat("/tmp/child.log").as_deref(),
        Some("started parent child")
    );
    // The child's FIFO line ran the deploy handler on every member, Go included; the
    // bad lines before it were logged and dropped.
    for node in [&p, &q] {
        let line = poll(
            &format!("deploy handled on {}", node.name),
            CONVERGE,
            || node.cat("/tmp/handled"),
        );
        assert!(line.starts_with("user deploy "), "{line}");
        assert!(line.ends_with(" {\"v\": 2}"), "{line}");
    }
    let go_got = poll("deploy handled by Go", CONVERGE, || go.cat("/tmp/handled"));
    assert_eq!(go_got, "{\"v\": 2}");
    // A child that exits is started again (the same container).
    let pid_before = kid.inspect("{{.State.Pid}}");
    must(&["kill", &kid.id]);
    let t = Instant::now();
    poll("the killed child running again", CONVERGE, || {
        (kid.inspect("{{.State.Running}}") == "true" && kid.inspect("{{.State.Pid}}") != pid_before)
            .then_some(())
    });
    eprintln!(
        "measured: a killed child was running again after {:.2}s",
        t.elapsed().as_secs_f64()
    );
    // Child state changes (this restart) reach the cluster as `supervisor` events, in
    // the original shape.
    let sup = poll("a supervisor event at the Go member", CONVERGE, || {
        go.cat("/tmp/supervisor")
            .filter(|t| t.contains("PROCESS_STATE_RUNNING"))
    });
    let last: Value =
        serde_json::from_str(sup.lines().rfind(|l| !l.is_empty()).expect("line")).expect("json");
    for k in [
        "processname",
        "groupname",
        "from_state",
        "pid",
        "eventname",
        "node",
    ] {
        assert!(last[k].is_string(), "{k} in {last}");
    }
    assert_eq!(last["node"], p_id.as_str());
    let logs = p.logs();
    assert!(
        logs.contains("FIFO: line dropped: Wrong payload: not json"),
        "{logs}"
    );
    // The restarted child sent its lines again: two bad lines per run.
    assert_eq!(logs.matches("FIFO: line dropped").count() % 2, 0, "{logs}");
    // docker restart: same node id, same child container, a fresh FIFO.
    let kid_pid = kid.inspect("{{.State.Pid}}");
    let t = Instant::now();
    must(&["restart", &p.id]);
    poll("p back and seen alive by the Go member", CONVERGE, || {
        (go_status(&go, &p_id).as_deref() == Some("alive") && p.cat("/serfnode/ready").is_some())
            .then_some(())
    });
    eprintln!(
        "measured: docker restart to ready {:.2}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        p.cat("/serfnode/node_id").map(|s| s.trim().to_string()),
        Some(p_id.clone())
    );
    assert!(p.logs().contains("Caught") || p.logs().contains("caught terminate"));
    let mut args = vec!["ps", "-aq", "--no-trunc", "--filter"];
    args.extend_from_slice(&app_filter);
    let kids = must(&args);
    assert_eq!(kids, kid.id, "the child is reused, not duplicated");
    poll("the child running again", CONVERGE, || {
        (kid.inspect("{{.State.Running}}") == "true" && kid.inspect("{{.State.Pid}}") != kid_pid)
            .then_some(())
    });
    must(&[
        "exec",
        &p.id,
        "/bin/busybox",
        "test",
        "-p",
        "/serfnode/parent",
    ]);
    must(&["exec", &p.id, "/bin/busybox", "rm", "/serfnode/go"]);
    wait_ids(&q, &[&p_id, "q"]);
    // docker stop: a graceful leave the others see, the child stopped, exit 0.
    let t = Instant::now();
    must(&["stop", &p.id]);
    let stop_took = t.elapsed();
    poll("the Go member to see p left", CONVERGE, || {
        (go_status(&go, &p_id).as_deref() == Some("left")).then_some(())
    });
    wait_ids(&q, &["q"]);
    assert_eq!(p.inspect("{{.State.ExitCode}}"), "0", "{}", p.logs());
    assert_eq!(kid.inspect("{{.State.Running}}"), "false");
    assert_eq!(
        must(&["inspect", "-f", "{{.State.Running}}", &docker_run_name]),
        "false"
    );
    eprintln!(
        "measured: docker stop of a serfnode with a child {:.2}s",
        stop_took.as_secs_f64()
    );
}

#[test]
fn a_partition_by_network_disconnect_heals() {
    if !ready("a_partition_by_network_disconnect_heals") {
        return;
    }
    harness::images();
    let scope = Scope::new("partition");
    let octet = 100 + std::process::id() % 100;
    let subnet = format!("10.213.{octet}.0/24");
    let net = scope.network("net", &["--subnet", &subnet]);
    let ip1 = format!("10.213.{octet}.10");
    let ip2 = format!("10.213.{octet}.11");
    let n1 = scope.serfnode("n1", &net, &["NODE_NAME=n1", "ROLE=x"], &["--ip", &ip1]);
    let n2 = scope.serfnode(
        "n2",
        &net,
        &["NODE_NAME=n2", "ROLE=y", &format!("PEER={ip1}")],
        &["--ip", &ip2],
    );
    wait_ids(&n1, &["n1", "n2"]);
    must(&["network", "disconnect", &net, &n2.id]);
    let t = Instant::now();
    wait_ids(&n1, &["n1"]);
    let detect = t.elapsed();
    must(&["network", "connect", "--ip", &ip2, &net, &n2.id]);
    let t = Instant::now();
    wait_ids(&n1, &["n1", "n2"]);
    wait_ids(&n2, &["n1", "n2"]);
    eprintln!(
        "measured: partition detected in {:.2}s, healed in {:.2}s",
        detect.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn invalid_configuration_stops_start_up_with_one_line() {
    if !ready("invalid_configuration_stops_start_up_with_one_line") {
        return;
    }
    harness::images();
    let scope = Scope::new("badconfig");
    let net = scope.network("net", &[]);
    let yml = scope.dir.join("serfnode.yml");
    std::fs::write(
        &yml,
        format!("children:\n  - app:\n      image: {BUSYBOX_IMAGE}\n      colour: blue\n"),
    )
    .expect("yml");
    let mount = format!("{}:/serfnode.yml:ro", yml.display());
    for (suffix, env, extra, needle) in [
        ("port", vec!["SERF_PORT=abc"], vec![], "SERF_PORT"),
        ("yml", vec![], vec!["-v", mount.as_str()], "colour"),
    ] {
        let c = scope.serfnode(suffix, &net, &env, &extra);
        poll("the container to exit", CONVERGE, || {
            (c.inspect("{{.State.Running}}") == "false").then_some(())
        });
        assert_eq!(c.inspect("{{.State.ExitCode}}"), "2");
        let logs = c.logs();
        assert_eq!(logs.lines().count(), 1, "{logs}");
        assert!(logs.contains(needle), "{logs}");
        let filter = format!("label=serfnode.parent={}", c.id);
        assert_eq!(
            must(&["ps", "-aq", "--filter", &filter]),
            "",
            "nothing half-started"
        );
    }
}

/// `docker-compose down` for a project, when the test ends.
struct Compose {
    project: String,
    file: String,
    http_port: u16,
}

impl Compose {
    fn cmd(&self, args: &[&str]) -> Result<String, String> {
        let out = std::process::Command::new("docker-compose")
            .args(["-p", &self.project, "-f", &self.file])
            .args(args)
            .env("SERFNODE_IMAGE", harness::NODE_IMAGE)
            .env("SERF_IMAGE", harness::SERF_IMAGE)
            .env("SERF_HTTP_PORT", self.http_port.to_string())
            .output()
            .map_err(|e| format!("docker-compose: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "docker-compose {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "-v", "--remove-orphans", "-t", "15"]);
    }
}

#[test]
fn the_compose_example_runs() {
    if !ready("the_compose_example_runs") {
        return;
    }
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if std::process::Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(!in_ci, "CI=true but docker-compose is not installed");
        eprintln!("skipping the_compose_example_runs: needs docker-compose (apt-get install docker-compose)");
        return;
    }
    harness::images();
    // The example's child image is busybox, as the test's is.
    must(&["tag", BUSYBOX_IMAGE, "serfnode-demo-child:dev"]);
    let scope = Scope::new("compose");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/serfnode/docker-compose.yml")
        .to_string_lossy()
        .into_owned();
    let compose = Compose {
        project: format!("sntest{}compose", std::process::id()),
        file,
        http_port: 0,
    };
    // Recorded before `up` so that whatever it started is removed, children included.
    let up = compose.cmd(&["up", "-d"]);
    let ids = compose.cmd(&["ps", "-q"]).unwrap_or_default();
    let mut nodes = Vec::new();
    for id in ids.split_whitespace() {
        let full = must(&["inspect", "-f", "{{.Id}}", id]);
        scope.adopt(&full);
        nodes.push(Container {
            name: must(&["inspect", "-f", "{{.Name}}", &full]),
            id: full,
        });
    }
    up.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(nodes.len(), 3, "three services");
    for n in &nodes {
        wait_ids(n, &["db1", "db2", "web"]);
    }
    let web = nodes
        .iter()
        .find(|n| n.json("/me.json").is_some_and(|m| m["id"] == "web"))
        .expect("web");
    let filter = format!("label=serfnode.parent={}", web.id);
    poll("web's child running", CONVERGE, || {
        let kid = must(&["ps", "-q", "--filter", &filter]);
        (!kid.is_empty()).then_some(())
    });
    // The child's FIFO event ran the deploy handler on every node.
    for n in &nodes {
        let line = poll(&format!("deploy handled on {}", n.name), CONVERGE, || {
            n.cat("/tmp/handled")
        });
        assert!(line.ends_with(" {\"from\": \"app\"}"), "{line}");
    }
    compose
        .cmd(&["stop", "-t", "15"])
        .unwrap_or_else(|e| panic!("{e}"));
    for n in &nodes {
        assert_eq!(n.inspect("{{.State.ExitCode}}"), "0", "{}", n.logs());
    }
    assert_eq!(
        must(&["ps", "-q", "--filter", &filter]),
        "",
        "the child was stopped"
    );
}

/// A port free for TCP and UDP on the host (bound and released: the test claims it next).
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// The multi-host shape: nodes on different Docker networks (as on different hosts) that
/// cannot reach each other's container addresses advertise a host address (`SERF_IP`) and
/// publish their gossip port, TCP and UDP, under the same number (`SERF_PORT`). A third
/// node is attached to both networks.
#[test]
fn serfnodes_on_two_networks_join_through_published_ports() {
    if !ready("serfnodes_on_two_networks_join_through_published_ports") {
        return;
    }
    harness::images();
    let scope = Scope::new("twonets");
    let net1 = scope.network("net1", &[]);
    let net2 = scope.network("net2", &[]);
    // The host's address on net1: every container reaches it.
    let host = must(&[
        "network",
        "inspect",
        "-f",
        "{{(index .IPAM.Config 0).Gateway}}",
        &net1,
    ]);
    let node = |suffix: &str, net: &str, peer: Option<u16>| {
        let port = free_port();
        let publish_tcp = format!("{port}:{port}/tcp");
        let publish_udp = format!("{port}:{port}/udp");
        let mut env = vec![
            format!("NODE_NAME={suffix}"),
            format!("ROLE={suffix}"),
            format!("SERF_IP={host}"),
            format!("SERF_PORT={port}"),
        ];
        if let Some(p) = peer {
            env.push(format!("PEER={host}:{p}"));
        }
        let env: Vec<&str> = env.iter().map(String::as_str).collect();
        (
            scope.serfnode(suffix, net, &env, &["-p", &publish_tcp, "-p", &publish_udp]),
            port,
        )
    };
    let (a, pa) = node("a", &net1, None);
    let (b, _) = node("b", &net1, Some(pa));
    must(&["network", "connect", &net2, &b.id]);
    let (c, pc) = node("c", &net2, Some(pa));
    for n in [&a, &b, &c] {
        wait_ids(n, &["a", "b", "c"]);
    }
    // The published ports are in the tags, decoded with Docker's spelling of UDP.
    let by_id = a.json("/serfnodes_by_id.json").expect("by_id");
    let ports = &by_id["c"]["ports"];
    assert_eq!(
        ports[format!("{pc}/tcp")],
        serde_json::json!([pc.to_string()]),
        "{ports}"
    );
    assert_eq!(
        ports[format!("{pc}/udp")],
        serde_json::json!([pc.to_string()]),
        "{ports}"
    );
    assert_eq!(by_id["c"]["serf_ip"], host.as_str());
    // Stable: nobody is suspected over a few probe rounds.
    std::thread::sleep(Duration::from_secs(5));
    for n in [&a, &b, &c] {
        assert_eq!(
            ids(n),
            Some(vec!["a".to_string(), "b".to_string(), "c".to_string()])
        );
        let logs = n.logs();
        assert!(!logs.contains("Suspect"), "{}: {logs}", n.name);
    }
}

#[test]
fn gossip_encryption_and_rpc_auth() {
    if !ready("gossip_encryption_and_rpc_auth") {
        return;
    }
    harness::images();
    let scope = Scope::new("secure");
    let net = scope.network("net", &[]);
    let key = "KF2hUxRX2tu4TaiAZMIfGDIWO2UjVGoe7YgJXGhd3AU=";
    let env = |name: &str, peer: Option<&str>| {
        let mut v = vec![
            format!("NODE_NAME={name}"),
            format!("ROLE={name}"),
            format!("SERF_ENCRYPT_KEY={key}"),
            "RPC_AUTH=s3cret".to_string(),
        ];
        if let Some(p) = peer {
            v.push(format!("PEER={p}"));
        }
        v
    };
    let e1 = env("e1", None);
    let e1: Vec<&str> = e1.iter().map(String::as_str).collect();
    let n1 = scope.serfnode("e1", &net, &e1, &[]);
    let e2 = env("e2", Some(&n1.name));
    let e2: Vec<&str> = e2.iter().map(String::as_str).collect();
    let n2 = scope.serfnode("e2", &net, &e2, &[]);
    let go = scope.run(
        "go",
        &[
            "--network",
            &net,
            GO_IMAGE,
            "agent",
            "-node",
            "go",
            "-encrypt",
            key,
            "-join",
            &n1.name,
        ],
    );
    // A node without the key cannot get in.
    let plain = scope.serfnode(
        "plain",
        &net,
        &["NODE_NAME=plain", &format!("PEER={}", n1.name)],
        &[],
    );
    wait_ids(&n2, &["e1", "e2"]);
    wait_go_alive(&go, 3, "the Go member in the encrypted cluster");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(ids(&n1), Some(vec!["e1".to_string(), "e2".to_string()]));
    assert_eq!(ids(&plain), Some(vec!["plain".to_string()]));
    // The agent's RPC (what children reach on 127.0.0.1) wants the token.
    let with = must(&["exec", &n1.id, "serf", "members", "-rpc-auth=s3cret"]);
    assert!(with.contains("e2") && with.contains("go"), "{with}");
    let without = harness::docker(&["exec", &n1.id, "serf", "members"]);
    assert!(without.is_err(), "members without the token: {without:?}");
}

/// One HTTP GET to the host's loopback; (status, body).
fn http_get(port: u16, path: &str, token: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_string()))
}

/// `examples/compose`: five of our agents (the image shaped as `scripts/serf-image` makes
/// it: non-root, health check) join by service name; convergence is read through the
/// published HTTP API; `docker-compose stop` makes every node leave and exit.
#[test]
fn the_serf_compose_example_converges_through_the_http_api() {
    if !ready("the_serf_compose_example_converges_through_the_http_api") {
        return;
    }
    if std::process::Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but docker-compose is missing"
        );
        eprintln!("skipping: needs docker-compose");
        return;
    }
    harness::images();
    let scope = Scope::new("serfcompose");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let compose = Compose {
        project: format!("sntest{}serfcompose", std::process::id()),
        file: std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/compose/docker-compose.yml")
            .to_string_lossy()
            .into_owned(),
        http_port: port,
    };
    let up = compose.cmd(&["up", "-d"]);
    let ids = compose.cmd(&["ps", "-q"]).unwrap_or_default();
    for id in ids.split_whitespace() {
        scope.adopt(&must(&["inspect", "-f", "{{.Id}}", id]));
    }
    up.unwrap_or_else(|e| panic!("{e}"));
    let t = Instant::now();
    poll("five alive members through the HTTP API", CONVERGE, || {
        let (st, body) = http_get(port, "/v1/members?status=alive", "demo-token")?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (st == 200 && v["members"].as_array()?.len() == 5).then_some(())
    });
    eprintln!(
        "measured: compose up to 5 alive through the API {:.2}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        http_get(port, "/v1/members", "wrong").map(|r| r.0),
        Some(401)
    );
    let serf1 = compose.cmd(&["ps", "-q", "serf1"]).expect("serf1");
    assert_eq!(
        must(&["inspect", "-f", "{{.Config.User}}", &serf1]),
        "65534:65534"
    );
    poll("serf1 healthy", CONVERGE, || {
        (must(&["inspect", "-f", "{{.State.Health.Status}}", &serf1]) == "healthy").then_some(())
    });
    compose
        .cmd(&["stop", "-t", "15"])
        .unwrap_or_else(|e| panic!("{e}"));
    // Every node stopped by itself within the grace period (SIGINT: leave and exit), none
    // had to be killed. (When all five leave at once, a node whose peers are already gone
    // may report its leave as timed out and exit 1, as Go's agent does.)
    for id in ids.split_whitespace() {
        let code = must(&["inspect", "-f", "{{.State.ExitCode}}", id]);
        assert!(code == "0" || code == "1", "{id} exited {code}");
    }
}
