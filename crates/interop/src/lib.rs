//! Interop test harness: runs real agent processes — the Go reference `serf`
//! binary and our Rust `serf` binary — on fresh loopback ports, and inspects
//! their views of the cluster through the agent RPC (by running the Go CLI
//! `serf members -format=json`).
//!
//! Test-only code: panicking helpers are fine here.
//!
//! * Prerequisites: [`go_serf`], [`our_serf`], [`require()`] / [`require!`].
//!   A missing prerequisite skips the test, except when `CI=true`, where it
//!   fails it.
//! * Ports: [`free_gossip_port`] (TCP and UDP both free), [`free_tcp_port`].
//! * Processes: [`AgentSpec`] + [`Agent`]. Every agent is SIGKILLed and reaped
//!   when dropped (also during a panic, when the tail of its log is printed),
//!   and a tiny `sh` watchdog kills it if the test process itself dies.
//! * Views: [`members`], [`members_with`], [`check_view`].
//! * Waiting: [`wait_until`], [`wait_for`], [`wait_member_status`],
//!   [`wait_all_see`], [`wait_all_report`], [`wait_converged`].
//! * Clusters of mixed implementations: [`NodeSpec`] + [`Cluster`].
//!
//! Running:
//! * `cargo test -p serf-interop --test go_only` — Go-only; validates the
//!   harness and the shared scenarios (`tests/common/mod.rs`) and records
//!   Go-vs-Go baselines.
//! * `cargo build --release --bin serf && cargo test -p serf-interop --test mixed`
//!   — Go + Rust clusters. Add `-- --nocapture` to see timings; they are also
//!   appended to `<target>/interop-measurements.txt`. Agent logs are kept in
//!   `<target>/interop-logs/<test>/`.
//!
//! Environment:
//! * `SERF_RS_BIN` — path of the Rust binary (default: the newest of
//!   `<target>/release/serf` and `<target>/debug/serf`).
//! * `SERF_GO_BIN` — path of the Go binary (default `/usr/bin/serf`, then `PATH`).
//! * `CARGO_TARGET_DIR` — honoured when locating `<target>`.
//! * `SERF_INTEROP_LOG_DIR` — where agent logs go (default
//!   `<target>/interop-logs/<test name>/`).
//! * `CI=true` — missing prerequisites fail instead of skip.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Generous default deadline for anything cluster-related (loaded 2-core box).
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Default polling interval.
pub const POLL: Duration = Duration::from_millis(250);
/// Deadline for one CLI invocation (`serf members ...`).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(15);
/// Deadline for an agent to start serving RPC.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Locations and prerequisites
// ---------------------------------------------------------------------------

/// The cargo workspace root (`CARGO_MANIFEST_DIR/../..`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

fn is_executable_file(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable_file(p))
}

/// The Go reference binary: `SERF_GO_BIN`, else `/usr/bin/serf`, else `serf`
/// on `PATH`.
pub fn go_serf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERF_GO_BIN") {
        let p = PathBuf::from(p);
        return is_executable_file(&p).then_some(p);
    }
    let default = PathBuf::from("/usr/bin/serf");
    if is_executable_file(&default) {
        return Some(default);
    }
    find_on_path("serf")
}

/// Our Rust binary: `SERF_RS_BIN`, else the most recently built of
/// `<target>/release/serf` and `<target>/debug/serf`.
pub fn our_serf() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SERF_RS_BIN") {
        let p = PathBuf::from(p);
        return is_executable_file(&p).then_some(p);
    }
    let target = target_dir();
    let mut candidates: Vec<(SystemTime, PathBuf)> = ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("serf"))
        .filter(|p| is_executable_file(p))
        .map(|p| {
            let mtime = fs::metadata(&p)
                .and_then(|m| m.modified())
                .unwrap_or(UNIX_EPOCH);
            (mtime, p)
        })
        .collect();
    // Newest first; on a tie the release build (listed first) wins.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    candidates.into_iter().next().map(|(_, p)| p)
}

/// Whether we run in CI (`CI=true` / `CI=1`).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            v == "true" || v == "1"
        })
        .unwrap_or(false)
}

/// Something a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    /// The Go reference `serf` binary.
    GoSerf,
    /// Our Rust `serf` binary.
    RustSerf,
}

impl Prereq {
    /// `None` when satisfied, else why not.
    pub fn missing(self) -> Option<String> {
        match self {
            Prereq::GoSerf => go_serf().is_none().then(|| {
                "Go serf binary not found (/usr/bin/serf, PATH, SERF_GO_BIN); \
                 install the Debian package `serf`"
                    .to_string()
            }),
            Prereq::RustSerf => our_serf().is_none().then(|| {
                format!(
                    "Rust serf binary not found ({}/{{release,debug}}/serf or SERF_RS_BIN); \
                     build it with `cargo build --release --bin serf`",
                    target_dir().display()
                )
            }),
        }
    }
}

/// Checks prerequisites. Returns `true` if all are there. Otherwise: under
/// `CI=true` panics (a missing prerequisite in CI is a failure); elsewhere
/// prints `skipping: <why>` to stderr and returns `false` — the caller
/// should return early (see [`require!`]).
pub fn require(kinds: &[Prereq]) -> bool {
    let why: Vec<String> = kinds.iter().filter_map(|k| k.missing()).collect();
    if why.is_empty() {
        return true;
    }
    let test = current_test_name();
    if in_ci() {
        panic!(
            "{test}: missing prerequisite in CI (CI=true): {}",
            why.join("; ")
        );
    }
    eprintln!("skipping: {test}: {}", why.join("; "));
    false
}

/// `require!(Prereq::GoSerf, Prereq::RustSerf);` at the top of a test:
/// returns early (skip) when a prerequisite is missing, panics under `CI=true`.
#[macro_export]
macro_rules! require {
    ($($kind:expr),+ $(,)?) => {
        if !$crate::require(&[$($kind),+]) {
            return;
        }
    };
}

/// Name of the running test (libtest names each test thread after the test).
pub fn current_test_name() -> String {
    thread::current()
        .name()
        .filter(|n| *n != "main")
        .map(str::to_string)
        .unwrap_or_else(|| format!("pid{}", std::process::id()))
}

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

fn used_ports() -> &'static Mutex<HashSet<u16>> {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    USED.get_or_init(|| Mutex::new(HashSet::new()))
}

fn claim(port: u16) -> bool {
    let mut used = used_ports().lock().unwrap_or_else(|e| e.into_inner());
    used.insert(port)
}

/// A port free on 127.0.0.1 for BOTH TCP and UDP (what a gossip bind needs).
/// Never returns the same port twice within this process.
pub fn free_gossip_port() -> u16 {
    // Below the ephemeral range (32768+ on Linux), so that no outgoing connection of a
    // running agent can take the port between our check and the agent's bind.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let mut x = u64::from(seed) | 1;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 12000) as u16;
        let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        let udp_ok = UdpSocket::bind(("127.0.0.1", port)).is_ok();
        drop(tcp);
        if udp_ok && claim(port) {
            return port;
        }
    }
    panic!("could not find a port free for both TCP and UDP on 127.0.0.1");
}

/// A TCP port free on 127.0.0.1 (for RPC). Never returns the same port twice
/// within this process. Nothing listens on it afterwards, so it also serves as
/// a "closed port" for join-failure tests.
pub fn free_tcp_port() -> u16 {
    for _ in 0..1000 {
        let Ok(tcp) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else {
            continue;
        };
        let port = addr.port();
        drop(tcp);
        if claim(port) {
            return port;
        }
    }
    panic!("could not find a free TCP port on 127.0.0.1");
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// Runs `cmd` to completion with captured stdout/stderr, killing it after
/// `timeout`.
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    let desc = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawning {desc}: {e}"))?;
    let out_reader = child.stdout.take().map(|mut s| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let err_reader = child.stderr.take().map(|mut s| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf);
            buf
        })
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {timeout:?}: {desc}"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("waiting for {desc}: {e}"));
            }
        }
    };
    let stdout = out_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err_reader.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Human description of an exit status: `exit 1`, `signal 9`.
pub fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => format!("{status}"),
    }
}

// ---------------------------------------------------------------------------
// Members (via the CLI)
// ---------------------------------------------------------------------------

/// One entry of `serf members -format=json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// `ip:port`.
    pub addr: String,
    /// Gossip port.
    pub port: u16,
    /// Tags (`{}` when none).
    pub tags: BTreeMap<String, String>,
    /// `alive`, `leaving`, `left`, `failed` (or `none`).
    pub status: String,
    /// `min`, `max`, `version` (Serf delegate protocol).
    pub protocol: BTreeMap<String, i64>,
}

fn json_str(v: &serde_json::Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("member field {key:?} missing or not a string in {v}"))
}

/// Parses the output of `serf members -format=json`:
/// `{"members":[{"name","addr","port","tags":{},"status","protocol":{"max","min","version"}}]}`
/// (`"members": null` when empty).
pub fn parse_members_json(text: &str) -> Result<Vec<Member>, String> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("members output is not JSON ({e}): {text:?}"))?;
    let list = match v.get("members") {
        Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(list)) => list,
        _ => return Err(format!("no \"members\" array in {text:?}")),
    };
    list.iter()
        .map(|m| {
            let port = m
                .get("port")
                .and_then(serde_json::Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("member field \"port\" missing or invalid in {m}"))?;
            let tags = match m.get("tags") {
                Some(serde_json::Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| {
                        v.as_str()
                            .map(|s| (k.clone(), s.to_string()))
                            .ok_or_else(|| format!("tag {k:?} is not a string in {m}"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(serde_json::Value::Null) | None => BTreeMap::new(),
                Some(other) => return Err(format!("\"tags\" is not an object: {other}")),
            };
            let protocol = match m.get("protocol") {
                Some(serde_json::Value::Object(map)) => map
                    .iter()
                    .filter_map(|(k, v)| v.as_i64().map(|n| (k.clone(), n)))
                    .collect(),
                _ => BTreeMap::new(),
            };
            Ok(Member {
                name: json_str(m, "name")?,
                addr: json_str(m, "addr")?,
                port,
                tags,
                status: json_str(m, "status")?,
                protocol,
            })
        })
        .collect()
}

/// `serf members -format=json -rpc-addr=<rpc_addr>` with the Go CLI.
pub fn members(rpc_addr: &str) -> Result<Vec<Member>, String> {
    let cli = go_serf().ok_or("Go serf binary not found")?;
    members_with(&cli, rpc_addr)
}

/// `<cli> members -format=json -rpc-addr=<rpc_addr>` with any CLI binary
/// (e.g. [`our_serf`]).
pub fn members_with(cli: &Path, rpc_addr: &str) -> Result<Vec<Member>, String> {
    let mut cmd = Command::new(cli);
    cmd.arg("members")
        .arg("-format=json")
        .arg(format!("-rpc-addr={rpc_addr}"))
        .env_remove("SERF_RPC_AUTH")
        .env_remove("SERF_RPC_ADDR");
    let out = run_with_timeout(cmd, CLI_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "`{} members -rpc-addr={rpc_addr}` failed ({}): {} {}",
            cli.display(),
            describe_status(&out.status),
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_members_json(&stdout)
}

/// What one CLI invocation printed.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output (lossy UTF-8).
    pub stdout: String,
    /// Standard error (lossy UTF-8).
    pub stderr: String,
}

impl CliOutput {
    /// Whether it exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Exit code (`-1` if killed by a signal).
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }
}

impl fmt::Display for CliOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}; stdout: {:?}; stderr: {:?}",
            describe_status(&self.status),
            self.stdout,
            self.stderr
        )
    }
}

/// Runs the Go CLI `serf <sub> -rpc-addr=<rpc_addr> <args...>` (no
/// `SERF_RPC_*` from the environment), with `timeout`.
pub fn go_cli(
    sub: &str,
    rpc_addr: &str,
    args: &[&str],
    timeout: Duration,
) -> Result<CliOutput, String> {
    let cli = go_serf().ok_or("Go serf binary not found")?;
    let mut cmd = Command::new(&cli);
    cmd.arg(sub)
        .arg(format!("-rpc-addr={rpc_addr}"))
        .args(args)
        .env_remove("SERF_RPC_AUTH")
        .env_remove("SERF_RPC_ADDR");
    let out = run_with_timeout(cmd, timeout)?;
    Ok(CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Short one-line rendering of a view, for messages.
pub fn fmt_view(view: &[Member]) -> String {
    let mut parts: Vec<String> = view
        .iter()
        .map(|m| {
            let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{}@{}:{}[{}]", m.name, m.addr, m.status, tags.join(","))
        })
        .collect();
    parts.sort();
    format!("[{}]", parts.join(" "))
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Polls `f` every `poll` until it returns true or `timeout` passes.
/// Returns whether it became true.
pub fn wait_until(timeout: Duration, poll: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(poll);
    }
}

/// Polls `f` every `poll` until it returns `Ok` or `timeout` passes; the error
/// then is the last one seen (prefixed with the timeout).
pub fn wait_for<T>(
    timeout: Duration,
    poll: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "still not true after {:.1}s: {e}",
                    start.elapsed().as_secs_f64()
                ))
            }
            Err(_) => thread::sleep(poll),
        }
    }
}

/// Waits until the agent at `rpc_addr` lists `name` with `status`.
/// Returns the time it took.
pub fn wait_member_status(
    rpc_addr: &str,
    name: &str,
    status: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(timeout, POLL, || {
        let view = members(rpc_addr)?;
        match view.iter().find(|m| m.name == name) {
            Some(m) if m.status == status => Ok(()),
            _ => Err(format!(
                "{rpc_addr} does not list {name} as {status}: {}",
                fmt_view(&view)
            )),
        }
    })?;
    Ok(start.elapsed())
}

/// Waits until every agent lists every name in `alive` with status `alive`.
/// Returns the time it took.
pub fn wait_all_see(
    agents: &[&Agent],
    alive: &[&str],
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(timeout, POLL, || {
        for a in agents {
            let view = a.members()?;
            for name in alive {
                if !view.iter().any(|m| m.name == *name && m.status == "alive") {
                    return Err(format!(
                        "{} does not see {name} alive: {}",
                        a.name(),
                        fmt_view(&view)
                    ));
                }
            }
        }
        Ok(())
    })?;
    Ok(start.elapsed())
}

/// Waits until every observer lists `name` with `status`, recording when each
/// observer first did. Times are measured from `since` (e.g. the instant of
/// the kill). Returns `(observer name, time)` per observer.
pub fn wait_all_report(
    observers: &[&Agent],
    name: &str,
    status: &str,
    since: Instant,
    timeout: Duration,
) -> Result<Vec<(String, Duration)>, String> {
    let mut seen: Vec<Option<Duration>> = vec![None; observers.len()];
    let mut last: Vec<String> = vec![String::new(); observers.len()];
    let deadline = Instant::now() + timeout;
    loop {
        for (i, o) in observers.iter().enumerate() {
            if seen[i].is_some() {
                continue;
            }
            match o.members() {
                Ok(view) => {
                    if view.iter().any(|m| m.name == name && m.status == status) {
                        seen[i] = Some(since.elapsed());
                    } else {
                        last[i] = fmt_view(&view);
                    }
                }
                Err(e) => last[i] = e,
            }
        }
        if seen.iter().all(Option::is_some) {
            return Ok(observers
                .iter()
                .zip(seen)
                .map(|(o, t)| (o.name().to_string(), t.unwrap_or_default()))
                .collect());
        }
        if Instant::now() >= deadline {
            let pending: Vec<String> = observers
                .iter()
                .zip(&seen)
                .zip(&last)
                .filter(|((_, t), _)| t.is_none())
                .map(|((o, _), l)| format!("{} sees {l}", o.name()))
                .collect();
            return Err(format!(
                "after {:.1}s not every observer reports {name} as {status}: {}",
                since.elapsed().as_secs_f64(),
                pending.join("; ")
            ));
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// Checks one agent's view: every agent in `expected` is listed `alive` with
/// the right address, port and exactly its tags.
pub fn check_view(observer: &Agent, expected: &[&Agent]) -> Result<(), String> {
    let view = observer.members()?;
    for e in expected {
        let Some(m) = view.iter().find(|m| m.name == e.name()) else {
            return Err(format!(
                "{} does not list {}: {}",
                observer.name(),
                e.name(),
                fmt_view(&view)
            ));
        };
        if m.status != "alive" {
            return Err(format!(
                "{} lists {} as {:?}, not alive: {}",
                observer.name(),
                e.name(),
                m.status,
                fmt_view(&view)
            ));
        }
        if m.addr != e.addr() || m.port != e.port() {
            return Err(format!(
                "{} lists {} at {} (port {}), expected {}",
                observer.name(),
                e.name(),
                m.addr,
                m.port,
                e.addr()
            ));
        }
        if &m.tags != e.tags() {
            return Err(format!(
                "{} lists {} with tags {:?}, expected {:?}",
                observer.name(),
                e.name(),
                m.tags,
                e.tags()
            ));
        }
    }
    Ok(())
}

/// Waits until every agent's view lists every agent alive with the right
/// address and tags ([`check_view`]). Returns the time it took.
pub fn wait_converged(agents: &[&Agent], timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    wait_for(timeout, POLL, || {
        agents.iter().try_for_each(|a| check_view(a, agents))
    })?;
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------
// Keys, measurements
// ---------------------------------------------------------------------------

/// Standard base64 (with padding).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A fresh gossip key: 32 random bytes from /dev/urandom, base64 (what
/// `serf keygen` prints).
pub fn keygen() -> String {
    let mut key = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .expect("reading /dev/urandom");
    base64_encode(&key)
}

/// `5.2s`.
pub fn fmt_secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Path of the measurements file (`<workspace>/target/interop-measurements.txt`).
pub fn measurements_file() -> PathBuf {
    target_dir().join("interop-measurements.txt")
}

/// Prints `line` to stdout and appends it (with a timestamp and the test
/// name) to [`measurements_file`].
pub fn record_measurement(line: &str) {
    println!("{line}");
    let path = measurements_file();
    if let Some(dir) = path.parent() {
        let _ = fs::create_dir_all(dir);
    }
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
        let rust_bin = our_serf()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none".to_string());
        let _ = writeln!(
            f,
            "{line} test={} rust_bin={rust_bin} unix={ts}",
            current_test_name()
        );
    }
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

/// Which implementation runs an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Impl {
    /// The Go reference binary.
    Go,
    /// Our Rust binary.
    Rust,
}

impl Impl {
    /// Path of the binary.
    pub fn bin(self) -> Option<PathBuf> {
        match self {
            Impl::Go => go_serf(),
            Impl::Rust => our_serf(),
        }
    }

    /// The prerequisite that provides the binary.
    pub fn prereq(self) -> Prereq {
        match self {
            Impl::Go => Prereq::GoSerf,
            Impl::Rust => Prereq::RustSerf,
        }
    }

    /// `go` / `rust`.
    pub fn label(self) -> &'static str {
        match self {
            Impl::Go => "go",
            Impl::Rust => "rust",
        }
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Starts a tiny `sh` loop that SIGKILLs `agent_pid` should this test process die without
/// running Drop (e.g. SIGKILLed by a CI timeout). It exits on its own once the agent is gone,
/// and only ever signals that pid. `tag` names it in `ps`.
pub fn spawn_watchdog(agent_pid: u32, tag: &str) -> Option<Child> {
    Command::new("sh")
        .arg("-c")
        .arg(
            "while kill -0 \"$1\" 2>/dev/null; do \
               kill -0 \"$2\" 2>/dev/null || exit 0; sleep 1; \
             done; kill -9 \"$2\" 2>/dev/null",
        )
        .arg(tag)
        .arg(std::process::id().to_string())
        .arg(agent_pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// How to start one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Implementation.
    pub imp: Impl,
    /// `-node`.
    pub name: String,
    /// `-tag k=v`, in order.
    pub tags: Vec<(String, String)>,
    /// `-join=ADDR`, in order.
    pub join: Vec<String>,
    /// `-encrypt=KEY`.
    pub encrypt: Option<String>,
    /// `-log-level=...` (default `debug`; `None` omits the flag).
    pub log_level: Option<String>,
    /// Extra arguments appended at the end.
    pub extra_args: Vec<String>,
    /// Gossip port (default: a fresh [`free_gossip_port`]).
    pub port: Option<u16>,
    /// RPC port (default: a fresh [`free_tcp_port`]).
    pub rpc_port: Option<u16>,
}

impl AgentSpec {
    /// An agent of implementation `imp` named `name`, debug logging, fresh ports.
    pub fn new(imp: Impl, name: &str) -> Self {
        AgentSpec {
            imp,
            name: name.to_string(),
            tags: Vec::new(),
            join: Vec::new(),
            encrypt: None,
            log_level: Some("debug".to_string()),
            extra_args: Vec::new(),
            port: None,
            rpc_port: None,
        }
    }

    /// Adds `-tag k=v`.
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.push((k.to_string(), v.to_string()));
        self
    }

    /// Adds `-join=addr`.
    pub fn join(mut self, addr: &str) -> Self {
        self.join.push(addr.to_string());
        self
    }

    /// Sets `-encrypt=key`.
    pub fn encrypt(mut self, key: &str) -> Self {
        self.encrypt = Some(key.to_string());
        self
    }

    /// Sets or clears `-log-level`.
    pub fn log_level(mut self, level: Option<&str>) -> Self {
        self.log_level = level.map(str::to_string);
        self
    }

    /// Appends an extra argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.extra_args.push(a.to_string());
        self
    }

    /// The command line (after the binary) for the given ports.
    pub fn args(&self, port: u16, rpc_port: u16) -> Vec<String> {
        let mut args = vec![
            "agent".to_string(),
            format!("-node={}", self.name),
            format!("-bind=127.0.0.1:{port}"),
            format!("-rpc-addr=127.0.0.1:{rpc_port}"),
        ];
        args.extend(self.join.iter().map(|j| format!("-join={j}")));
        if let Some(key) = &self.encrypt {
            args.push(format!("-encrypt={key}"));
        }
        for (k, v) in &self.tags {
            args.push("-tag".to_string());
            args.push(format!("{k}={v}"));
        }
        if let Some(level) = &self.log_level {
            args.push(format!("-log-level={level}"));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

fn log_dir_for_test() -> PathBuf {
    static CLEANED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let base = std::env::var_os("SERF_INTEROP_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("interop-logs"));
    let test: String = current_test_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = base.join(test);
    let cleaned = CLEANED.get_or_init(|| Mutex::new(HashSet::new()));
    let mut cleaned = cleaned.lock().unwrap_or_else(|e| e.into_inner());
    if cleaned.insert(dir.clone()) {
        // First agent of this test in this process: drop logs of older runs.
        let _ = fs::remove_dir_all(&dir);
    }
    let _ = fs::create_dir_all(&dir);
    dir
}

/// A scratch directory for the running test (`<target>/interop-work/<test>/`),
/// emptied the first time a test asks for it in this process and kept
/// afterwards for inspection (handler scripts, their output, snapshots).
pub fn work_dir_for_test() -> PathBuf {
    static CLEANED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let test: String = current_test_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let dir = target_dir().join("interop-work").join(test);
    let cleaned = CLEANED.get_or_init(|| Mutex::new(HashSet::new()));
    let mut cleaned = cleaned.lock().unwrap_or_else(|e| e.into_inner());
    if cleaned.insert(dir.clone()) {
        let _ = fs::remove_dir_all(&dir);
    }
    let _ = fs::create_dir_all(&dir);
    dir
}

struct Proc {
    child: Child,
    status: Option<ExitStatus>,
}

/// A running agent process. Dropping it SIGKILLs and reaps the process (and
/// prints the tail of its log if the thread is panicking).
#[derive(Debug)]
pub struct Agent {
    spec: AgentSpec,
    tags: BTreeMap<String, String>,
    bin: PathBuf,
    port: u16,
    rpc_port: u16,
    pid: u32,
    log_path: PathBuf,
    started: Instant,
    proc_: Mutex<Proc>,
    watchdog: Mutex<Option<Child>>,
}

impl fmt::Debug for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proc")
            .field("pid", &self.child.id())
            .field("status", &self.status)
            .finish()
    }
}

static AGENT_SEQ: AtomicU64 = AtomicU64::new(0);

impl Agent {
    /// Spawns the agent and returns at once (no readiness wait). Use this for
    /// agents expected to fail (e.g. a `-join` that must be refused).
    pub fn spawn(spec: AgentSpec) -> Result<Agent, String> {
        let bin = spec.imp.bin().ok_or_else(|| {
            spec.imp
                .prereq()
                .missing()
                .unwrap_or_else(|| format!("{} binary not found", spec.imp))
        })?;
        let port = spec.port.unwrap_or_else(free_gossip_port);
        let rpc_port = spec.rpc_port.unwrap_or_else(free_tcp_port);
        let dir = log_dir_for_test();
        let seq = AGENT_SEQ.fetch_add(1, Ordering::Relaxed);
        let log_path = dir.join(format!("{}-{}-{port}-{seq}.log", spec.name, spec.imp));
        let mut log = File::create(&log_path)
            .map_err(|e| format!("creating log {}: {e}", log_path.display()))?;
        let args = spec.args(port, rpc_port);
        let _ = writeln!(
            log,
            "### {} {}\n### test {}",
            bin.display(),
            args.join(" "),
            current_test_name()
        );
        let log_err = log
            .try_clone()
            .map_err(|e| format!("cloning log handle: {e}"))?;
        let child = Command::new(&bin)
            .args(&args)
            .current_dir(&dir)
            .env_remove("SERF_RPC_AUTH")
            .env_remove("SERF_RPC_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| format!("spawning {} {}: {e}", bin.display(), args.join(" ")))?;
        let pid = child.id();
        let watchdog = spawn_watchdog(pid, "serf-interop-watchdog");
        let tags = spec.tags.iter().cloned().collect();
        Ok(Agent {
            spec,
            tags,
            bin,
            port,
            rpc_port,
            pid,
            log_path,
            started: Instant::now(),
            proc_: Mutex::new(Proc {
                child,
                status: None,
            }),
            watchdog: Mutex::new(watchdog),
        })
    }

    /// Spawns the agent and waits until its RPC answers `members` listing
    /// itself. Retries with fresh ports (up to 3 times) if the bind failed
    /// with "address already in use".
    pub fn start(spec: AgentSpec) -> Result<Agent, String> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let agent = Agent::spawn(spec.clone())?;
            match agent.wait_ready(STARTUP_TIMEOUT) {
                Ok(()) => return Ok(agent),
                Err(e) => {
                    let log = agent.log_text().to_ascii_lowercase();
                    let port_clash = spec.port.is_none()
                        && spec.rpc_port.is_none()
                        && (log.contains("address already in use") || log.contains("addrinuse"));
                    if port_clash && attempt < 3 {
                        eprintln!("[interop] {}: port clash, retrying: {e}", spec.name);
                        agent.kill9();
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Waits until the agent's RPC answers `members` and lists the agent
    /// itself; fails early if the process exits.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        let fail = |why: String| {
            format!(
                "{} agent {} did not become ready after {:.1}s: {why}\n--- log tail ({}) ---\n{}",
                self.imp(),
                self.name(),
                start.elapsed().as_secs_f64(),
                self.log_path.display(),
                self.log_tail(40)
            )
        };
        loop {
            if let Some(status) = self.try_exit_status() {
                return Err(fail(format!(
                    "process exited ({})",
                    describe_status(&status)
                )));
            }
            let last = match self.members() {
                Ok(view) if view.iter().any(|m| m.name == self.name()) => return Ok(()),
                Ok(view) => format!("its view lacks itself: {}", fmt_view(&view)),
                Err(e) => e,
            };
            if start.elapsed() >= timeout {
                return Err(fail(last));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Node name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Implementation.
    pub fn imp(&self) -> Impl {
        self.spec.imp
    }

    /// The spec it was started from.
    pub fn spec(&self) -> &AgentSpec {
        &self.spec
    }

    /// Tags it was started with.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }

    /// Binary path.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Gossip port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT` (gossip).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:RPCPORT`.
    pub fn rpc_addr(&self) -> String {
        format!("127.0.0.1:{}", self.rpc_port)
    }

    /// OS process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Log file (stdout + stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Time since spawn.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// This agent's view via the Go CLI.
    pub fn members(&self) -> Result<Vec<Member>, String> {
        members(&self.rpc_addr())
    }

    /// Whether a TCP connection to the RPC port succeeds.
    pub fn rpc_reachable(&self) -> bool {
        TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.rpc_port)),
            Duration::from_secs(2),
        )
        .is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Proc> {
        self.proc_.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Exit status if the process has exited (reaps it), else `None`.
    pub fn try_exit_status(&self) -> Option<ExitStatus> {
        let mut p = self.lock();
        if p.status.is_none() {
            if let Ok(Some(s)) = p.child.try_wait() {
                p.status = Some(s);
            }
        }
        p.status
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        self.try_exit_status().is_none()
    }

    /// SIGKILL (`Child::kill`), then reap.
    pub fn kill9(&self) {
        let mut p = self.lock();
        if p.status.is_none() {
            let _ = p.child.kill();
            if let Ok(s) = p.child.wait() {
                p.status = Some(s);
            }
        }
    }

    /// Sends a signal with `kill -<sig> <pid>` (only if not yet reaped, so the
    /// pid is still ours).
    pub fn signal(&self, sig: &str) -> Result<(), String> {
        let p = self.lock();
        if p.status.is_some() {
            return Err(format!("{} already exited", self.name()));
        }
        // Holding the lock: nobody can reap the child meanwhile.
        let out = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .output()
            .map_err(|e| format!("running kill: {e}"))?;
        drop(p);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "kill -{sig} {} failed: {}",
                self.pid,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// SIGINT (graceful leave).
    pub fn sigint(&self) -> Result<(), String> {
        self.signal("INT")
    }

    /// SIGTERM.
    pub fn sigterm(&self) -> Result<(), String> {
        self.signal("TERM")
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(timeout, Duration::from_millis(50), || {
            status = self.try_exit_status();
            status.is_some()
        });
        status
    }

    /// Whole log so far.
    pub fn log_text(&self) -> String {
        fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Last `n` lines of the log, leaving out the `Accepted client` lines
    /// that every `serf members` poll produces.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| !l.contains("Accepted client"))
            .collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// First log line containing `needle`, if any.
    pub fn log_line_containing(&self, needle: &str) -> Option<String> {
        self.log_text()
            .lines()
            .find(|l| l.contains(needle))
            .map(|l| l.trim().to_string())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut w) = self
            .watchdog
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = w.kill();
            let _ = w.wait();
        }
        let was_running = self.is_running();
        self.kill9();
        if thread::panicking() {
            eprintln!(
                "\n===== {} agent {} ({}, rpc {}, {}) log tail: {} =====\n{}\n===== end {} =====",
                self.imp(),
                self.name(),
                self.addr(),
                self.rpc_addr(),
                if was_running {
                    "was running".to_string()
                } else {
                    self.try_exit_status()
                        .map(|s| format!("had exited: {}", describe_status(&s)))
                        .unwrap_or_default()
                },
                self.log_path.display(),
                self.log_tail(40),
                self.name()
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Clusters
// ---------------------------------------------------------------------------

/// One node of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Implementation.
    pub imp: Impl,
    /// Node name.
    pub name: String,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Indices of earlier nodes to `-join` at start.
    pub join: Vec<usize>,
    /// Extra agent arguments (e.g. `-event-handler=...`), appended last.
    pub args: Vec<String>,
}

impl NodeSpec {
    /// A node with no tags and no joins (a seed).
    pub fn new(imp: Impl, name: &str) -> Self {
        NodeSpec {
            imp,
            name: name.to_string(),
            tags: Vec::new(),
            join: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds a tag.
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.push((k.to_string(), v.to_string()));
        self
    }

    /// Joins the earlier node with index `i` at start.
    pub fn join(mut self, i: usize) -> Self {
        self.join.push(i);
        self
    }

    /// Appends an extra agent argument.
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
}

/// Agents started in order, each `-join`ing earlier ones by index.
#[derive(Debug)]
pub struct Cluster {
    /// The agents, in spec order.
    pub agents: Vec<Agent>,
}

impl Cluster {
    /// Starts every node in order (waiting for each one's RPC), with the
    /// same `-encrypt` key on all when given.
    pub fn start(nodes: &[NodeSpec], encrypt: Option<&str>) -> Result<Cluster, String> {
        Self::start_with_log_level(nodes, encrypt, Some("debug"))
    }

    /// Like [`Cluster::start`], with the agents' `-log-level` (None: the default).
    pub fn start_with_log_level(
        nodes: &[NodeSpec],
        encrypt: Option<&str>,
        log_level: Option<&str>,
    ) -> Result<Cluster, String> {
        let mut agents: Vec<Agent> = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let mut spec = AgentSpec::new(n.imp, &n.name).log_level(log_level);
            for (k, v) in &n.tags {
                spec = spec.tag(k, v);
            }
            for &j in &n.join {
                let seed = agents.get(j).ok_or_else(|| {
                    format!("node {i} ({}) joins node {j}, which is not earlier", n.name)
                })?;
                spec = spec.join(&seed.addr());
            }
            if let Some(key) = encrypt {
                spec = spec.encrypt(key);
            }
            for a in &n.args {
                spec = spec.arg(a);
            }
            match Agent::start(spec) {
                Ok(agent) => agents.push(agent),
                Err(e) => {
                    let others: Vec<String> = agents
                        .iter()
                        .map(|a| {
                            format!(
                                "--- {} agent {} log tail ({}) ---\n{}",
                                a.imp(),
                                a.name(),
                                a.log_path().display(),
                                a.log_tail(15)
                            )
                        })
                        .collect();
                    return Err(format!("{e}\n{}", others.join("\n")));
                }
            }
        }
        Ok(Cluster { agents })
    }

    /// The agent named `name` (panics if none).
    pub fn agent(&self, name: &str) -> &Agent {
        self.agents
            .iter()
            .find(|a| a.name() == name)
            .unwrap_or_else(|| panic!("no agent named {name}"))
    }

    /// All agents.
    pub fn all(&self) -> Vec<&Agent> {
        self.agents.iter().collect()
    }

    /// Agents of one implementation.
    pub fn of(&self, imp: Impl) -> Vec<&Agent> {
        self.agents.iter().filter(|a| a.imp() == imp).collect()
    }

    /// Agents except those named.
    pub fn except(&self, names: &[&str]) -> Vec<&Agent> {
        self.agents
            .iter()
            .filter(|a| !names.contains(&a.name()))
            .collect()
    }

    /// [`wait_converged`] over all agents.
    pub fn wait_converged(&self, timeout: Duration) -> Result<Duration, String> {
        wait_converged(&self.all(), timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foob"), "Zm9vYg==");
        assert_eq!(base64_encode(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(keygen().len(), 44);
    }

    #[test]
    fn parses_members_json() {
        let text = r#"{
  "members": [
    {
      "name": "a",
      "addr": "127.0.0.1:27946",
      "port": 27946,
      "tags": {
        "role": "web"
      },
      "status": "alive",
      "protocol": {
        "max": 5,
        "min": 2,
        "version": 5
      }
    }
  ]
}"#;
        let v = parse_members_json(text).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].name, "a");
        assert_eq!(v[0].port, 27946);
        assert_eq!(v[0].tags.get("role").map(String::as_str), Some("web"));
        assert_eq!(v[0].protocol.get("version"), Some(&5));
        assert!(parse_members_json("{\n  \"members\": null\n}")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn gossip_ports_are_distinct() {
        let a = free_gossip_port();
        let b = free_gossip_port();
        let c = free_tcp_port();
        assert!(a != b && b != c && a != c);
    }
}
