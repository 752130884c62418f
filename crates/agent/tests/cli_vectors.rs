//! Runs our `serf` binary against every recorded run of the real CLI in
//! `testdata/serf/vectors/cli_vectors.json`.
//!
//! * Runs without RPC (help texts, usage, version, flag and argument errors) are run as
//!   recorded; a connection-refused run gets a freshly closed port.
//! * Runs with RPC are replayed: a fake agent listens on a free port and plays the recorded
//!   agent→client bytes, chunk by chunk, each once the client has sent as many bytes as the
//!   real CLI had at that point. The bytes our client sends are checked against the
//!   recording (maps compared independently of key order, everything else byte-exact).
//! * stdout, stderr and the exit code must be identical, after normalising what Go prints in
//!   random order (tag order, key listings, the order of acks and responses) and times.
//!
//! A second test compares our CLI with the Go CLI (`/usr/bin/serf` or `SERF_GO_BIN`) on
//! argument and flag errors that are not in the recording.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_wire::msgpack::{Kind, Reader, Writer};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const OURS: &str = env!("CARGO_BIN_EXE_serf");

fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

fn load_vectors() -> Vec<serde_json::Value> {
    let rel = format!("{}/cli_vectors.json", serf_testdata::SERF_VECTORS);
    let text = serf_testdata::read_string(&rel);
    serde_json::from_str(&text).expect("cli_vectors.json is JSON")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

// ---------------------------------------------------------------------------
// msgpack canonical form: maps sorted by their encoded keys
// ---------------------------------------------------------------------------

fn canonical_value(buf: &[u8], r: &mut Reader<'_>, out: &mut Vec<u8>) {
    match r.peek_kind().expect("msgpack") {
        Kind::Map => {
            let n = r.map_len().expect("map");
            let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for _ in 0..n {
                let mut k = Vec::new();
                canonical_value(buf, r, &mut k);
                let mut v = Vec::new();
                canonical_value(buf, r, &mut v);
                entries.push((k, v));
            }
            entries.sort();
            let mut w = Writer::new();
            w.map(n);
            out.extend_from_slice(&w.into_vec());
            for (k, v) in entries {
                out.extend_from_slice(&k);
                out.extend_from_slice(&v);
            }
        }
        Kind::Array => {
            let n = r.array_len().expect("array");
            let mut w = Writer::new();
            w.array(n);
            out.extend_from_slice(&w.into_vec());
            for _ in 0..n {
                canonical_value(buf, r, out);
            }
        }
        _ => {
            let start = r.position();
            r.skip().expect("value");
            out.extend_from_slice(&buf[start..r.position()]);
        }
    }
}

/// A stream of msgpack objects with every map's entries sorted.
fn canonical(buf: &[u8]) -> Vec<u8> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.remaining().is_empty() {
        let before = r.position();
        let mut probe = r.clone();
        if probe.skip().is_err() {
            // Trailing garbage/incomplete: keep raw.
            out.extend_from_slice(&buf[before..]);
            break;
        }
        canonical_value(buf, &mut r, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------
// Fake agent replaying a recorded connection
// ---------------------------------------------------------------------------

struct Chunk {
    c2s: bool,
    bytes: Vec<u8>,
}

struct Replay {
    /// What our client sent.
    received: Vec<u8>,
    /// Problems seen by the fake agent.
    problems: Vec<String>,
}

/// Whether a client chunk starts with a `stop` request (sent by `serf monitor` after SIGINT).
fn is_stop(bytes: &[u8]) -> bool {
    let mut cmd = String::new();
    let _ = Reader::new(bytes).struct_fields(|k, r| {
        if k == b"Command" {
            cmd = r.string()?;
            return Ok(true);
        }
        Ok(false)
    });
    cmd == "stop"
}

fn serve(listener: TcpListener, chunks: Vec<Chunk>, interrupt: mpsc::Sender<()>) -> Replay {
    let mut problems = Vec::new();
    let mut received = Vec::new();
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sock = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                problems.push(format!("no connection: {e}"));
                return Replay { received, problems };
            }
        }
    };
    sock.set_nonblocking(false).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut interrupted = false;
    for ch in &chunks {
        if ch.c2s {
            if !interrupted && is_stop(&ch.bytes) {
                // `serf monitor` ends on Ctrl-C: let it print, then interrupt it.
                std::thread::sleep(Duration::from_millis(300));
                let _ = interrupt.send(());
                interrupted = true;
            }
            let mut buf = vec![0u8; ch.bytes.len()];
            if let Err(e) = sock.read_exact(&mut buf) {
                problems.push(format!(
                    "client sent less than recorded ({} bytes so far): {e}",
                    received.len()
                ));
                return Replay { received, problems };
            }
            received.extend_from_slice(&buf);
        } else if let Err(e) = sock.write_all(&ch.bytes) {
            problems.push(format!("writing to client: {e}"));
            return Replay { received, problems };
        }
    }
    // Whatever the client sends until it closes.
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    match sock.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => problems.push(format!("client did not close: {e}")),
    }
    received.extend_from_slice(&rest);
    Replay { received, problems }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
    interrupt: Option<mpsc::Receiver<()>>,
) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serf");
    let pid = child.id();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let te = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(rx) = &interrupt {
            if rx.try_recv().is_ok() {
                let _ = Command::new("kill")
                    .arg("-INT")
                    .arg(pid.to_string())
                    .status();
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let s = child.wait().unwrap();
            eprintln!("killed after {timeout:?}");
            break s;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: to.join().unwrap(),
        stderr: te.join().unwrap(),
    }
}

// ---------------------------------------------------------------------------
// Normalisation of what Go prints in random order
// ---------------------------------------------------------------------------

/// `members` text: the tag cell (`k=v,...`) sorted; cells split at 2+ spaces; the line
/// length is kept so that alignment is still compared.
fn norm_members_line(line: &str) -> String {
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
    format!("{}|{}", line.chars().count(), cells.join("|"))
}

fn normalise(argv: &[String], text: &str) -> String {
    let sub = argv.get(1).map(String::as_str).unwrap_or("");
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    // Event-handler paths recorded under a temp dir.
    for l in &mut lines {
        if let Some(i) = l.find("/handler.sh") {
            let start = l[..i].rfind([' ', '"']).map_or(0, |p| p + 1);
            l.replace_range(start..i, "$TMPDIR");
        }
        if l.starts_with("Query time: ") {
            *l = "Query time: X sec, time to last response: Y sec".to_string();
        }
    }
    match sub {
        "members" if !argv.iter().any(|a| a.contains("json")) => {
            lines = lines.iter().map(|l| norm_members_line(l)).collect();
        }
        // Key listings and per-node failures come from Go maps.
        "keys" => lines.sort(),
        // Acks and responses arrive on two channels read by one select.
        "query" if !argv.iter().any(|a| a.contains("json")) => {
            let n = lines.len();
            if n > 3 {
                lines[1..n - 3].sort();
            }
        }
        _ => {}
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------

struct Outcome {
    stdout: String,
    stderr: String,
    code: i32,
    problems: Vec<String>,
}

fn run_vector(v: &serde_json::Value) -> Outcome {
    let argv: Vec<String> = v["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let conns = v["rpc"].as_array().cloned().unwrap_or_default();
    let mut args: Vec<String> = argv[1..].to_vec();
    let mut cmd = Command::new(OURS);
    cmd.env_remove("SERF_RPC_ADDR").env_remove("SERF_RPC_AUTH");
    let mut problems = Vec::new();
    let mut server = None;
    let mut rx = None;
    let mut closed_port = None;
    if let Some(conn) = conns.first() {
        assert_eq!(conns.len(), 1, "one connection per run");
        let chunks: Vec<Chunk> = conn["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Chunk {
                c2s: c["dir"] == "c2s",
                bytes: unhex(c["hex"].as_str().unwrap()),
            })
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut has_addr = false;
        for a in &mut args {
            if a.starts_with("-rpc-addr=") {
                *a = format!("-rpc-addr={addr}");
                has_addr = true;
            }
        }
        if !has_addr {
            // Recorded with SERF_RPC_ADDR / SERF_RPC_AUTH in the environment.
            cmd.env("SERF_RPC_ADDR", &addr);
            let objs = conn["client_to_agent"]["objects"].as_array().unwrap();
            if let Some(key) = objs.iter().find_map(|o| o["decoded"]["AuthKey"].as_str()) {
                if !args.iter().any(|a| a.starts_with("-rpc-auth")) {
                    cmd.env("SERF_RPC_AUTH", key);
                }
            }
        }
        let expected_c2s = unhex(conn["client_to_agent"]["hex"].as_str().unwrap());
        let (tx, r) = mpsc::channel();
        rx = Some(r);
        server = Some((
            std::thread::spawn(move || serve(listener, chunks, tx)),
            expected_c2s,
        ));
    } else {
        // Connection failures: point the run at a port nobody listens on.
        for a in &mut args {
            if a == "-rpc-addr=127.0.0.1:1" {
                let p = free_port();
                *a = format!("-rpc-addr=127.0.0.1:{p}");
                closed_port = Some(p);
            }
        }
    }
    cmd.args(&args);
    let out = run_with_timeout(cmd, Duration::from_secs(30), rx);
    if let Some((h, expected)) = server {
        let replay = h.join().unwrap();
        problems.extend(replay.problems);
        if canonical(&replay.received) != canonical(&expected) {
            problems.push(format!(
                "client bytes differ:\n  ours: {}\n  go:   {}",
                replay
                    .received
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
                expected
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            ));
        }
    }
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if let Some(p) = closed_port {
        stdout = stdout.replace(&format!("127.0.0.1:{p}"), "127.0.0.1:1");
    }
    Outcome {
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
        problems,
    }
}

#[test]
fn every_recorded_cli_run_matches() {
    let vectors = load_vectors();
    assert_eq!(vectors.len(), 71);
    let mut failures = Vec::new();
    let mut exact = 0;
    let mut normalised = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        let argv: Vec<String> = v["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let want_out = v["stdout"].as_str().unwrap();
        let want_err = v["stderr"].as_str().unwrap();
        let want_code = v["exit_code"].as_i64().unwrap() as i32;
        let got = run_vector(v);
        if argv.len() == 2 && argv[1] == "keygen" {
            // Random key: same shape.
            let key = got.stdout.trim_end();
            let ok = got.code == 0
                && got.stderr.is_empty()
                && key.len() == 44
                && key.ends_with('=')
                && got.stdout.ends_with('\n');
            if !ok {
                failures.push(format!("#{i} {argv:?}: bad key output {:?}", got.stdout));
            }
            normalised.push(format!("#{i} {argv:?} (random key)"));
            continue;
        }
        let same_raw = got.stdout == want_out && got.stderr == want_err && got.code == want_code;
        let same = got.code == want_code
            && got.stderr == want_err
            && normalise(&argv, &got.stdout) == normalise(&argv, want_out);
        if same_raw {
            exact += 1;
        } else if same {
            normalised.push(format!("#{i} {argv:?}"));
        }
        if !same || !got.problems.is_empty() {
            failures.push(format!(
                "#{i} {argv:?}\n  exit {} (want {want_code})\n  stdout {:?}\n  want   {:?}\n  stderr {:?}\n  want   {:?}\n  problems: {:?}",
                got.code, got.stdout, want_out, got.stderr, want_err, got.problems
            ));
        }
    }
    eprintln!(
        "{} vectors: {exact} byte-identical, {} equal after normalisation, {} failing\nnormalised: {}",
        vectors.len(),
        normalised.len(),
        failures.len(),
        normalised.join("; ")
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------
// Differential tests against the Go CLI (no agent needed)
// ---------------------------------------------------------------------------

fn go_serf() -> Option<PathBuf> {
    let p = std::env::var_os("SERF_GO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/serf"));
    p.is_file().then_some(p)
}

fn run_bin(bin: &Path, args: &[String], env: &[(&str, &str)]) -> (String, String, i32) {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("SERF_RPC_ADDR")
        .env_remove("SERF_RPC_AUTH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_with_timeout(cmd, Duration::from_secs(20), None);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn argument_errors_match_the_go_cli() {
    let Some(go) = go_serf() else {
        assert!(!in_ci(), "Go serf binary missing");
        eprintln!("skipping: Go serf binary not found");
        return;
    };
    let closed = format!("-rpc-addr=127.0.0.1:{}", free_port());
    let cases: Vec<Vec<&str>> = vec![
        vec!["-h"],
        vec!["-help"],
        vec!["-x", "members"],
        vec!["-h", "members"],
        vec!["members", "extra", "-h"],
        vec!["nosuch", "-h"],
        vec!["-version"],
        vec!["members", "-v"],
        vec!["-h", "-v"],
        vec!["version", "extra"],
        vec!["keygen", "-x", "-h"],
        vec!["", "version"],
        vec!["members", "-help=1"],
        vec!["members", "--", "-h"],
        vec!["members", "-tag", "bad", &closed],
        vec!["members", "-tag=", &closed],
        vec!["members", "-format"],
        vec!["members", "---x"],
        vec!["members", "-=x"],
        vec!["members", "-detailed=maybe"],
        vec!["members", "-role=", &closed],
        vec!["members", "-role=web", &closed],
        vec!["members", "-rpc-addr="],
        vec!["members", "-rpc-addr=127.0.0.1"],
        vec!["members", "-rpc-addr=127.0.0.1:99999"],
        vec!["members", "-rpc-addr=::1:5"],
        vec!["members", "-rpc-addr=[::1]"],
        vec!["join", &closed],
        vec!["join", &closed, "a"],
        vec!["join", "-replay=x", "a"],
        vec!["leave", &closed],
        vec!["leave", "-bogus"],
        vec!["force-leave", &closed],
        vec!["force-leave", &closed, "a", "b"],
        vec!["force-leave", &closed, "a"],
        vec!["force-leave", "-prune=nope", "a"],
        vec!["event", &closed],
        vec!["event", &closed, "n"],
        vec!["event", "-coalesce=bad", "n"],
        vec!["query", &closed],
        vec!["query", &closed, "a", "b", "c"],
        vec!["query", &closed, "-tag", "bad", "q"],
        vec!["query", &closed, "-timeout=5", "q"],
        vec!["query", &closed, "-timeout=", "q"],
        vec!["query", &closed, "-relay-factor=x", "q"],
        vec!["query", &closed, "-relay-factor=-1", "q"],
        vec!["query", &closed, "-relay-factor=0x100", "q"],
        vec!["query", &closed, "-relay-factor=99999999999999999999", "q"],
        vec!["query", &closed, "-format=xml", "q"],
        vec!["query", &closed, "q"],
        vec!["reachability", &closed],
        vec!["reachability", "-verbose=2"],
        vec!["info", &closed],
        vec!["info", &closed, "-format=xml"],
        vec!["rtt", &closed],
        vec!["rtt", &closed, "a", "b", "c"],
        vec!["tags", &closed],
        vec!["tags", &closed, "-set", "bad"],
        vec!["tags", &closed, "-delete", "k"],
        vec!["keys", &closed],
        vec!["keys", &closed, "-list"],
        vec!["keys", &closed, "-use=k", "-remove=k"],
        vec!["keys", &closed, "-list=false"],
        vec!["keys", &closed, "-install=k"],
        vec!["monitor", &closed],
        vec!["monitor", "-log-level"],
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<String> = case.iter().map(|s| s.to_string()).collect();
        let ours = run_bin(Path::new(OURS), &args, &[]);
        let theirs = run_bin(&go, &args, &[]);
        if ours != theirs {
            failures.push(format!("{case:?}\n  ours: {ours:?}\n  go:   {theirs:?}"));
        }
    }
    // Environment defaults (SERF_RPC_ADDR, and SERF_RPC_AUTH sent to a closed port).
    let env_addr = format!("127.0.0.1:{}", free_port());
    for env in [
        vec![("SERF_RPC_ADDR", env_addr.as_str())],
        vec![("SERF_RPC_ADDR", env_addr.as_str()), ("SERF_RPC_AUTH", "x")],
    ] {
        let args = vec!["members".to_string()];
        let ours = run_bin(Path::new(OURS), &args, &env);
        let theirs = run_bin(&go, &args, &env);
        if ours != theirs {
            failures.push(format!("env {env:?}\n  ours: {ours:?}\n  go:   {theirs:?}"));
        }
    }
    // keygen ignores its arguments; only the shape of the key can be compared.
    let (key, err, code) = run_bin(Path::new(OURS), &["keygen".into(), "x".into()], &[]);
    if key.len() != 45 || !err.is_empty() || code != 0 {
        failures.push(format!("keygen x: {key:?} {err:?} {code}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn canonical_form_ignores_map_order() {
    let a = unhex("82a16101a16202");
    let b = unhex("82a16202a16101");
    assert_eq!(canonical(&a), canonical(&b));
    assert_ne!(canonical(&unhex("81a161c0")), canonical(&unhex("81a16180")));
}
