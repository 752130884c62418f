//! `serf agent` behaviour compared with Go's: configuration errors, signals, reload, and
//! Serf's README quick start run verbatim with our binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{go_serf, our_serf, require, wait_until, Agent, AgentSpec, Impl, Prereq};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("serf-agent-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("tmp");
        TempDir(p)
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p.display().to_string()
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(bin: &Path, args: &[String]) -> (i32, String) {
    let out = serf_interop::run_with_timeout(
        {
            let mut c = Command::new(bin);
            c.args(args);
            c
        },
        Duration::from_secs(20),
    )
    .expect("run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Start-up errors print the same text and exit with the same code as Go's agent.
#[test]
fn config_errors_match_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let d = TempDir::new("cfgerr");
    let bad = d.file("bad.json", r#"{"bogus_key": 1}"#);
    let bad2 = d.file("bad2.json", r#"{"node_name": 5}"#);
    let port = serf_interop::free_gossip_port();
    let bind = format!("-bind=127.0.0.1:{port}");
    let rpc = format!("-rpc-addr=127.0.0.1:{}", serf_interop::free_tcp_port());
    let keyring = d.file(
        "kr.json",
        r#"["K24COKR20XbURcR4k6YoT+tpBtw6fEPRF0mHCuP/Ufc="]"#,
    );
    let cases: Vec<Vec<String>> = vec![
        vec![format!("-config-file={bad}")],
        vec![format!("-config-file={bad2}")],
        vec!["-config-file=/nonexistent.json".into()],
        vec!["-node=x".into(), "-profile=bogus".into()],
        vec!["-node=x".into(), "-log-level=bogus".into()],
        vec!["-node=x".into(), "-event-handler=bogus=foo.sh".into()],
        vec!["-node=x".into(), "-tag=novalue".into()],
        vec!["-node=x".into(), "-encrypt=!!".into()],
        vec!["-node=x".into(), "-iface=no-such-iface0".into()],
        vec!["-node=x".into(), "-retry-max=abc".into()],
        vec![
            "-node=x".into(),
            bind.clone(),
            rpc.clone(),
            "-encrypt=bm90LWEta2V5".into(),
        ],
        vec![
            "-node=x".into(),
            bind.clone(),
            "-encrypt=K24COKR20XbURcR4k6YoT+tpBtw6fEPRF0mHCuP/Ufc=".into(),
            format!("-keyring-file={keyring}"),
        ],
        vec![
            "-node=x".into(),
            bind.clone(),
            format!("-tags-file={}/tags.json", d.0.display()),
            "-tag".into(),
            "a=b".into(),
        ],
    ];
    let (go, ours) = (go_serf().expect("go"), our_serf().expect("ours"));
    for c in cases {
        let args: Vec<String> = std::iter::once("agent".to_string())
            .chain(c.iter().cloned())
            .collect();
        let (gc, gout) = run(&go, &args);
        let (rc, rout) = run(&ours, &args);
        assert_eq!(
            (rc, rout.as_str()),
            (gc, gout.as_str()),
            "serf {}",
            args.join(" ")
        );
    }
}

fn spec(imp: Impl, name: &str) -> AgentSpec {
    AgentSpec::new(imp, name)
}

#[test]
fn sigterm_fails_and_leave_on_terminate_leaves() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let d = TempDir::new("term");
    let lot = d.file("lot.json", r#"{"leave_on_terminate": true}"#);
    let seed = Agent::start(spec(Impl::Go, "seed")).expect("seed");
    let plain = Agent::start(spec(Impl::Rust, "plain").join(&seed.addr())).expect("plain");
    let leaver = Agent::start(
        spec(Impl::Rust, "leaver")
            .join(&seed.addr())
            .arg(&format!("-config-file={lot}")),
    )
    .expect("leaver");
    assert!(serf_interop::wait_member_status(
        &seed.rpc_addr(),
        "leaver",
        "alive",
        Duration::from_secs(30)
    )
    .is_ok());
    plain.sigterm().expect("sigterm");
    leaver.sigterm().expect("sigterm");
    let pc = plain
        .wait_exit(Duration::from_secs(30))
        .expect("plain exits");
    let lc = leaver
        .wait_exit(Duration::from_secs(30))
        .expect("leaver exits");
    assert_eq!(
        pc.code(),
        Some(1),
        "SIGTERM without leave_on_terminate exits 1, as Go"
    );
    assert_eq!(
        lc.code(),
        Some(0),
        "SIGTERM with leave_on_terminate leaves and exits 0"
    );
    serf_interop::wait_member_status(&seed.rpc_addr(), "plain", "failed", Duration::from_secs(60))
        .expect("failed");
    serf_interop::wait_member_status(&seed.rpc_addr(), "leaver", "left", Duration::from_secs(30))
        .expect("left");
}

#[test]
fn sighup_reloads_handlers_and_keeps_tags_file_tags() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    let d = TempDir::new("hup");
    let tags = d.file("tags.json", r#"{"role":"web","dc":"east"}"#);
    let out1 = d.0.join("h1.out");
    let out2 = d.0.join("h2.out");
    let h1 = d.file(
        "h1.sh",
        &format!("#!/bin/sh\necho \"$SERF_EVENT\" >> {}\n", out1.display()),
    );
    let h2 = d.file(
        "h2.sh",
        &format!("#!/bin/sh\necho \"$SERF_EVENT\" >> {}\n", out2.display()),
    );
    for h in [&h1, &h2] {
        let _ = Command::new("chmod").args(["+x", h]).status();
    }
    let cfg = d.0.join("cfg.json");
    std::fs::write(&cfg, format!(r#"{{"event_handlers": ["user={h1}"]}}"#)).expect("cfg");
    let seed = Agent::start(spec(Impl::Go, "hub")).expect("go");
    let a = Agent::start(
        spec(Impl::Rust, "hup")
            .join(&seed.addr())
            .arg(&format!("-tags-file={tags}"))
            .arg(&format!("-config-file={}", cfg.display())),
    )
    .expect("ours");
    let fire = |name: &str| {
        let o = Command::new("serf")
            .args([
                "event",
                &format!("-rpc-addr={}", seed.rpc_addr()),
                "-coalesce=false",
                name,
            ])
            .output()
            .expect("serf event");
        assert!(o.status.success());
    };
    fire("one");
    assert!(wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || { std::fs::read_to_string(&out1).is_ok_and(|s| s.contains("user")) }
    ));
    // Reload with another handler.
    std::fs::write(&cfg, format!(r#"{{"event_handlers": ["user={h2}"]}}"#)).expect("cfg");
    let _ = Command::new("kill")
        .args(["-HUP", &a.pid().to_string()])
        .status();
    std::thread::sleep(Duration::from_millis(500));
    fire("two");
    assert!(wait_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || { std::fs::read_to_string(&out2).is_ok_and(|s| s.contains("user")) }
    ));
    // Tags survive the reload (Go wipes them and writes {} to the tags file).
    let file = std::fs::read_to_string(&tags).expect("tags file");
    assert!(
        file.contains("\"role\":\"web\"") && file.contains("\"dc\":\"east\""),
        "tags file: {file}"
    );
    let view = seed.members().expect("members");
    let me = view.iter().find(|m| m.name == "hup").expect("hup");
    assert_eq!(me.tags.get("role").map(String::as_str), Some("web"));
    assert!(a.is_running());
}

/// Serf's README quick start, verbatim (ports 5000/5001 and RPC 7373/7374), with our binary
/// as `serf`. Falls back to free ports only if those are taken on this machine.
#[test]
fn readme_quick_start_verbatim() {
    if !require(&[Prereq::RustSerf]) {
        return;
    }
    let ours = our_serf().expect("ours");
    let free = |p: u16| {
        std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()
            && std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok()
    };
    let (b1, b2, r1, r2) = if free(5000) && free(5001) && free(7373) && free(7374) {
        (5000, 5001, 7373, 7374)
    } else {
        eprintln!("note: README ports in use here, using free ports with the same commands");
        (
            serf_interop::free_gossip_port(),
            serf_interop::free_gossip_port(),
            serf_interop::free_tcp_port(),
            serf_interop::free_tcp_port(),
        )
    };
    let d = TempDir::new("readme");
    /// Kills and reaps the child on every exit path, panics included.
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let spawn = |args: &[String], log: &str| {
        let f = std::fs::File::create(d.0.join(log)).expect("log");
        let g = f.try_clone().expect("clone");
        Child(
            Command::new(&ours)
                .args(args)
                .stdout(f)
                .stderr(g)
                .spawn()
                .expect("spawn"),
        )
    };
    let foo = spawn(
        &[
            "agent".into(),
            "-node=foo".into(),
            format!("-bind=127.0.0.1:{b1}"),
            format!("-rpc-addr=127.0.0.1:{r1}"),
        ],
        "foo.log",
    );
    let bar = spawn(
        &[
            "agent".into(),
            "-node=bar".into(),
            format!("-bind=127.0.0.1:{b2}"),
            format!("-rpc-addr=127.0.0.1:{r2}"),
        ],
        "bar.log",
    );
    let members = |rpc: u16| {
        let mut args = vec!["members".to_string()];
        if rpc != 7373 {
            args.push(format!("-rpc-addr=127.0.0.1:{rpc}"));
        }
        run(&ours, &args)
    };
    assert!(wait_until(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || members(r1).0 == 0 && members(r2).0 == 0
    ));
    let (code, out) = run(
        &ours,
        &[
            "join".into(),
            format!("-rpc-addr=127.0.0.1:{r1}"),
            format!("127.0.0.1:{b2}"),
        ],
    );
    assert_eq!(
        (code, out.trim()),
        (0, "Successfully joined cluster by contacting 1 nodes.")
    );
    let ok = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let (c, out) = members(r1);
        c == 0 && out.lines().filter(|l| l.contains("alive")).count() == 2
    });
    let (_, out) = members(r1);
    drop((foo, bar));
    assert!(ok, "serf members after the join:\n{out}");
    assert!(out.contains("foo") && out.contains("bar"), "{out}");
}

/// `-log-json` / `log_json` (ours only; Go 0.9.4 has no JSON logs): every log line on the
/// console and through `monitor` is one JSON object with hclog's field names.
#[test]
fn log_json_lines_are_hclog_objects() {
    if !require(&[Prereq::RustSerf]) {
        return;
    }
    let d = TempDir::new("logjson");
    let cfg = d.file("json.json", r#"{"log_json": true}"#);
    let agent = Agent::start(
        spec(Impl::Rust, "json")
            .log_level(Some("debug"))
            .arg(&format!("-config-file={cfg}")),
    )
    .expect("start");
    let check = |line: &str| {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for k in ["@timestamp", "@level", "@module", "@message"] {
            assert!(v[k].is_string(), "{k} missing in {line}");
        }
        let ts = v["@timestamp"].as_str().unwrap();
        assert!(
            ts.len() == 27 && ts.ends_with('Z') && &ts[10..11] == "T",
            "{ts}"
        );
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&v["@level"].as_str().unwrap()),
            "{line}"
        );
        v
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let monitored = rt.block_on(async {
        let mut c = serf_rpc::Client::connect(&agent.rpc_addr(), "")
            .await
            .unwrap();
        let stream = c.monitor("debug").await.unwrap();
        let rec = tokio::time::timeout(Duration::from_secs(10), c.recv(&stream))
            .await
            .expect("a monitor record")
            .unwrap();
        String::from_utf8(rec.log).unwrap()
    });
    check(monitored.trim_end());
    assert!(wait_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || agent
            .log_text()
            .contains("\"@message\":\"Received event: member-join\"")
    ));
    let text = agent.log_text();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    assert!(lines.len() >= 2, "{text}");
    let modules: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| check(l)["@module"].as_str().unwrap().to_string())
        .collect();
    assert!(
        modules.contains("agent") && modules.contains("serf"),
        "{modules:?}"
    );
    // Nothing else is logged in Go's text format.
    assert!(!text.contains("[INFO]"), "{text}");
}

/// `Type=notify`: with `NOTIFY_SOCKET` set, the agent says `READY=1` once it runs and
/// `STOPPING=1` when it leaves (ours only).
#[test]
fn sd_notify_ready_and_stopping() {
    if !require(&[Prereq::RustSerf]) {
        return;
    }
    let d = TempDir::new("notify");
    let sock_path = d.0.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let port = serf_interop::free_gossip_port();
    let rpc = serf_interop::free_tcp_port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Command::new(our_serf().expect("our serf"))
        .args([
            "agent",
            "-node=notify",
            &format!("-bind=127.0.0.1:{port}"),
            &format!("-rpc-addr=127.0.0.1:{rpc}"),
        ])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map(Kill)
        .expect("spawn");
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("READY=1 within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    let _ = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status();
    let n = sock.recv(&mut buf);
    let stopping = n.map(|n| String::from_utf8_lossy(&buf[..n]).to_string());
    let status = child.0.wait().expect("wait");
    assert_eq!(ready, "READY=1");
    assert_eq!(stopping.as_deref().ok(), Some("STOPPING=1"));
    assert_eq!(status.code(), Some(0));
}
