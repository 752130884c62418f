//! Bad RPC clients against our agent: malformed requests, unknown commands, missing or wrong
//! authentication, oversized and deeply nested objects, floods of connections, and clients
//! that vanish in the middle of a stream. Each gets Go's answer (or a closed connection),
//! nothing leaks, and the agent keeps serving. Compared with the Go agent where Go answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_interop::{require, Agent, AgentSpec, Impl, Prereq};
use serf_rpc::{
    AuthRequest, Body, HandshakeRequest, MonitorRequest, QueryRequest, Request, RequestHeader,
    ResponseHeader, StreamRequest,
};
use serf_wire::msgpack::{Flavor, Reader, Writer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A request header, for any command name (unknown ones included).
fn header(cmd: &str, seq: u64) -> Vec<u8> {
    RequestHeader {
        command: cmd.to_string(),
        seq,
    }
    .encode()
}

/// A hand-made (possibly malformed) body.
fn body(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::with_flavor(Flavor::Rpc);
    f(&mut w);
    w.into_vec()
}

fn handshake() -> Vec<u8> {
    Request::Handshake(HandshakeRequest { version: 1 }).encode(1)
}

fn connect(a: &Agent) -> TcpStream {
    let s = TcpStream::connect(a.rpc_addr()).expect("connect rpc");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Reads response headers until `n` are seen or the peer closes; returns the Error texts
/// and whether the connection was closed.
fn read_errors(s: &mut TcpStream, n: usize) -> (Vec<String>, bool) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Parse whatever complete objects we have (headers only: these requests have no
        // response bodies).
        loop {
            let mut r = Reader::new(&buf);
            if r.skip().is_err() {
                break;
            }
            let used = r.position();
            let h = ResponseHeader::decode(&buf[..used]).expect("header");
            out.push(h.error);
            buf.drain(..used);
        }
        if out.len() >= n {
            return (out, false);
        }
        match s.read(&mut chunk) {
            Ok(0) => return (out, true),
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(_) => return (out, true),
        }
    }
}

fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn still_serving(a: &Agent) {
    let m = a
        .members()
        .unwrap_or_else(|e| panic!("{} stopped serving RPC: {e}", a.name()));
    assert!(m.iter().any(|x| x.name == a.name()));
    assert!(a.is_running(), "{} exited", a.name());
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn start(imp: Impl, name: &str, auth: Option<&str>) -> (Agent, Option<tempfile_dir::Dir>) {
    let mut spec = AgentSpec::new(imp, name);
    let mut dir = None;
    if let Some(tok) = auth {
        let d = tempfile_dir::Dir::new(name);
        let path = d.path.join("auth.json");
        std::fs::write(&path, format!("{{\"rpc_auth\": \"{tok}\"}}")).expect("write config");
        spec = spec.arg(&format!("-config-file={}", path.display()));
        dir = Some(d);
    }
    if let Some(tok) = auth {
        let a = Agent::spawn(spec).expect("agent");
        let ready =
            serf_interop::wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
                std::process::Command::new("serf")
                    .args([
                        "members",
                        &format!("-rpc-addr={}", a.rpc_addr()),
                        &format!("-rpc-auth={tok}"),
                    ])
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        assert!(ready, "{} did not start: {}", a.name(), a.log_tail(20));
        return (a, dir);
    }
    (Agent::start(spec).expect("agent"), dir)
}

/// Minimal temp dir (removed on drop).
mod tempfile_dir {
    pub(crate) struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub(crate) fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("serf-rpc-{tag}-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&path);
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The `agent.ipc` warning and error lines of a log, without timestamps.
fn ipc_misuse_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("agent.ipc:") && (l.contains("[ERR]") || l.contains("[WARN]")))
        .filter_map(|l| l.find('[').map(|i| l[i..].trim().to_string()))
        .collect()
}

/// RPC misuse is logged as Go logs it: a command before the handshake and an unknown
/// command at `[ERR]` ("Failed to evaluate request: ..."), a command before `auth` at
/// `[WARN]`; a stream cut inside a header, like a clean close, is not logged.
#[test]
fn rpc_misuse_is_logged_like_go() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let send = |a: &Agent, bytes: &[u8]| {
        let mut s = connect(a);
        let _ = s.write_all(bytes);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    };
    let mut logs = Vec::new();
    for imp in [Impl::Go, Impl::Rust] {
        let (open, _d) = start(imp, &format!("rpc-misuse-{imp}"), None);
        send(&open, &header("members", 1));
        send(&open, &[handshake(), header("no-such-command", 2)].concat());
        send(&open, &[handshake(), vec![0x82, 0xa7]].concat());
        let (authed, _d2) = start(imp, &format!("rpc-misuse-auth-{imp}"), Some("sekrit"));
        send(&authed, &[handshake(), header("members", 2)].concat());
        let lines = |a: &Agent, want: usize| {
            serf_interop::wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
                ipc_misuse_lines(&a.log_text()).len() >= want
            });
            ipc_misuse_lines(&a.log_text())
        };
        let mut all = lines(&open, 2);
        all.extend(lines(&authed, 1));
        logs.push(all);
    }
    assert_eq!(logs[0].len(), 3, "Go's lines: {:?}", logs[0]);
    assert_eq!(logs[1], logs[0], "ours vs Go's agent.ipc lines");
}

/// The pre-dispatch errors, the same from both implementations.
#[test]
fn protocol_errors_match_go() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    for imp in [Impl::Go, Impl::Rust] {
        let (a, _d) = start(imp, &format!("rpc-{imp:?}").to_lowercase(), None);
        // A command before the handshake: error, then the connection is closed.
        let mut s = connect(&a);
        s.write_all(&header("members", 1)).expect("write");
        let (errs, _) = read_errors(&mut s, 1);
        assert_eq!(errs, vec!["Handshake required"], "{imp:?}");
        assert!(closed(&mut s), "{imp:?}: closed after 'Handshake required'");
        // Unsupported IPC version.
        let mut s = connect(&a);
        s.write_all(&Request::Handshake(HandshakeRequest { version: 2 }).encode(1))
            .expect("write");
        assert_eq!(
            read_errors(&mut s, 1).0,
            vec!["Unsupported IPC version"],
            "{imp:?}"
        );
        // A second handshake, then an unknown command (which closes the connection).
        let mut s = connect(&a);
        s.write_all(&[handshake(), handshake(), header("bogus", 3)].concat())
            .expect("write");
        let (errs, _) = read_errors(&mut s, 3);
        assert_eq!(
            errs,
            vec!["", "Handshake already performed", "Unsupported command"],
            "{imp:?}"
        );
        assert!(
            closed(&mut s),
            "{imp:?}: closed after 'Unsupported command'"
        );
        // A second handshake with a bad version: the version is checked first.
        let mut s = connect(&a);
        let bad = Request::Handshake(HandshakeRequest { version: 2 }).encode(2);
        s.write_all(&[handshake(), bad].concat()).expect("write");
        assert_eq!(
            read_errors(&mut s, 2).0,
            vec!["", "Unsupported IPC version"],
            "{imp:?}"
        );
        still_serving(&a);
    }
}

#[test]
fn authentication_is_enforced() {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    for imp in [Impl::Go, Impl::Rust] {
        let (a, _d) = start(imp, &format!("auth-{imp:?}").to_lowercase(), Some("s3cret"));
        let mut s = connect(&a);
        s.write_all(&[handshake(), header("members", 2)].concat())
            .expect("write");
        let (errs, closed_) = read_errors(&mut s, 2);
        assert_eq!(errs, vec!["", "Authentication required"], "{imp:?}");
        assert!(!closed_, "{imp:?}: stays open");
        let auth = |tok: &str, seq| {
            Request::Auth(AuthRequest {
                auth_key: tok.to_string(),
            })
            .encode(seq)
        };
        s.write_all(&auth("wrong", 3)).expect("write");
        assert_eq!(
            read_errors(&mut s, 1).0,
            vec!["Invalid authentication token"],
            "{imp:?}"
        );
        s.write_all(&auth("s3cret", 4)).expect("write");
        assert_eq!(read_errors(&mut s, 1).0, vec![""], "{imp:?}");
        // The Go CLI with the token works, without it fails with Go's text.
        let ok = std::process::Command::new("serf")
            .args([
                "members",
                &format!("-rpc-addr={}", a.rpc_addr()),
                "-rpc-auth=s3cret",
            ])
            .output()
            .expect("serf");
        assert!(
            ok.status.success(),
            "{imp:?}: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
        let bad = std::process::Command::new("serf")
            .args(["members", &format!("-rpc-addr={}", a.rpc_addr())])
            .output()
            .expect("serf");
        assert_eq!(
            String::from_utf8_lossy(&bad.stdout).trim(),
            "Error retrieving members: Authentication required",
            "{imp:?}"
        );
    }
}

#[test]
fn garbage_requests_close_the_connection_only() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let (a, _d) = start(Impl::Rust, "rpc-garbage", None);
    let payloads: Vec<Vec<u8>> = vec![
        vec![0xc1; 16],                                                  // reserved byte
        vec![0xff, 0x00, 0x12, 0x34],                                    // not a map
        [vec![0xdb, 0x7f, 0xff, 0xff, 0xff], vec![b'a'; 1024]].concat(), // 2 GiB string announced
        vec![0x91; 100_000],                                             // deep nesting
        [handshake(), vec![0xda, 0xff, 0xff]].concat(), // truncated object after a good one
        [
            handshake(),
            header("join", 2),
            vec![0x81, 0xa8],
            b"Existing".to_vec(),
            vec![0x05],
        ]
        .concat(), // wrong type
        [
            handshake(),
            header("members-filtered", 2),
            body(|w| {
                w.map(1).str("Name").str("(");
            }),
        ]
        .concat(), // invalid regex: closed without a reply, as Go
    ];
    for p in &payloads {
        let mut s = connect(&a);
        let _ = s.write_all(p);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    still_serving(&a);
}

/// `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// An oversized request (an 8 MiB user event, a 4 MiB query) gets Go's error reply and
/// the connection stays usable, as with Go's agent; ours reads it with bounded memory (the
/// long payload is cut while it streams in), where Go's grows by the declared size.
#[test]
fn oversized_requests_get_gos_error_with_memory_bounded() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let event = body(|w| {
        w.map(3)
            .str("Coalesce")
            .bool(false)
            .str("Name")
            .str("x")
            .str("Payload")
            .bytes(&vec![0u8; 8 << 20]);
    });
    let query = body(|w| {
        w.map(7)
            .str("FilterNodes")
            .nil()
            .str("FilterTags")
            .nil()
            .str("Name")
            .str("q")
            .str("Payload")
            .bytes(&vec![1u8; 4 << 20])
            .str("RelayFactor")
            .uint(0)
            .str("RequestAck")
            .bool(false)
            .str("Timeout")
            .int(0);
    });
    let mut replies = Vec::new();
    for imp in [Impl::Go, Impl::Rust] {
        let (a, _d) = start(imp, &format!("rpc-oversized-{imp}"), None);
        let before = rss_kib(a.pid());
        let mut s = connect(&a);
        let requests = [
            handshake(),
            header("event", 2),
            event.clone(),
            header("query", 3),
            query.clone(),
            header("members", 4),
        ]
        .concat();
        s.write_all(&requests).expect("write");
        // handshake, event, query (an error, so no stream follows), members.
        let (errs, closed) = read_errors(&mut s, 4);
        assert!(!closed, "{imp}: connection closed: {errs:?}");
        let grew = rss_kib(a.pid()).saturating_sub(before);
        eprintln!("{imp}: replies {errs:?}; RSS grew by {grew} KiB");
        if imp == Impl::Rust {
            assert!(grew < 16 * 1024, "ours grew by {grew} KiB");
        }
        replies.push(errs);
        still_serving(&a);
    }
    assert_eq!(replies[1], replies[0], "ours vs Go's replies");
}

#[test]
fn vanishing_stream_clients_leak_nothing() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let (a, _d) = start(Impl::Rust, "rpc-leak", None);
    let pid = a.pid();
    // Warm up, then take the baseline.
    for _ in 0..5 {
        let mut s = connect(&a);
        s.write_all(&handshake()).expect("write");
        let _ = read_errors(&mut s, 1);
    }
    std::thread::sleep(Duration::from_millis(500));
    let base = fd_count(pid);
    let started = Instant::now();
    for i in 0..300u64 {
        let mut s = connect(&a);
        let mut req = handshake();
        req.extend(Request::Stream(StreamRequest { filter: "*".into() }).encode(2));
        req.extend(
            Request::Monitor(MonitorRequest {
                log_level: "debug".into(),
            })
            .encode(3),
        );
        if i % 3 == 0 {
            // A query stream too.
            req.extend(
                Request::Query(QueryRequest {
                    filter_tags: Some(Vec::new()),
                    name: "leak".into(),
                    payload: Some(Vec::new()),
                    timeout_nanos: 300_000_000,
                    ..QueryRequest::default()
                })
                .encode(4),
            );
        }
        s.write_all(&req).expect("write");
        let _ = read_errors(&mut s, 3);
        drop(s); // vanish mid-stream
    }
    eprintln!("300 vanishing stream clients in {:?}", started.elapsed());
    // Events and logs keep flowing; dead subscribers must not pile up.
    a.members().expect("serving");
    let settled =
        serf_interop::wait_until(Duration::from_secs(20), Duration::from_millis(250), || {
            fd_count(pid) <= base + 2
        });
    assert!(settled, "fds grew from {base} to {}", fd_count(pid));
    // A burst beyond the client limit that hangs up at once: the next client is
    // served, not turned away while the dead ones release their slots.
    let conns: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(a.rpc_addr()).ok())
        .collect();
    drop(conns);
    still_serving(&a);
}

/// 1,000 connections that never send a handshake (far more than the 256 client slots)
/// cannot keep a real client out: each is closed 2 s after it got a slot (or at once when
/// no slot is free), so `serf members` gets in while the test still holds them all.
#[test]
fn silent_connections_cannot_lock_out_real_clients() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let (a, _d) = start(Impl::Rust, "rpc-lockout", None);
    let conns: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(a.rpc_addr()).ok())
        .collect();
    assert!(conns.len() >= 900, "only {} connections", conns.len());
    let started = Instant::now();
    let mut served = None;
    while started.elapsed() < Duration::from_secs(20) {
        if a.members().is_ok() {
            served = Some(started.elapsed());
            break;
        }
    }
    let n = conns.len();
    let served = served.unwrap_or_else(|| panic!("locked out for 20 s by {n} silent connections"));
    eprintln!("with {n} silent connections held, `serf members` served after {served:?}");
    drop(conns);
    still_serving(&a);
}

/// 300 real clients at once (more than the 256 slots): every one is served, the surplus
/// after a short wait for a slot.
#[test]
fn three_hundred_concurrent_clients_are_all_served() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let (a, _d) = start(Impl::Rust, "rpc-300", None);
    let addr = a.rpc_addr();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let served = rt.block_on(async {
        let tasks: Vec<_> = (0..300)
            .map(|_| {
                let addr = addr.clone();
                tokio::spawn(async move {
                    let mut c = serf_rpc::Client::connect(&addr, "").await.ok()?;
                    c.members().await.ok().map(|m| m.len())
                })
            })
            .collect();
        let mut ok = 0;
        for t in tasks {
            if matches!(t.await, Ok(Some(1))) {
                ok += 1;
            }
        }
        ok
    });
    assert_eq!(
        served, 300,
        "only {served} of 300 concurrent clients were served"
    );
    still_serving(&a);
}

#[test]
fn clients_beyond_the_limit_are_closed_and_the_agent_survives() {
    if !require(&[Prereq::RustSerf, Prereq::GoSerf]) {
        return;
    }
    let (a, _d) = start(Impl::Rust, "rpc-limit", None);
    // Hold more idle connections than the limit (256) for longer than the
    // agent waits for a free slot (5 s): the surplus is closed by the agent.
    let mut conns: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(a.rpc_addr()).ok())
        .collect();
    assert_eq!(conns.len(), 300, "connect failed");
    let last = conns.len() - 1;
    conns[last]
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut b = [0u8; 64];
    let outcome = conns[last].read(&mut b);
    assert!(
        matches!(outcome, Ok(0))
            || matches!(&outcome, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the 300th idle client was kept: {outcome:?}"
    );
    drop(conns);
    still_serving(&a);
}
