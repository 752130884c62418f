//! Event handler scripts (docs/agent-cli.md section 4).
//!
//! * `parse_event_scripts` parses `-event-handler` / `event_handlers` values
//!   (`[filter[,filter...]=]command`), with Go's startup error text.
//! * `Handlers` is the reloadable list of scripts (SIGHUP: `Handlers::replace`,
//!   effective from the next event, like Go's `UpdateScripts`).
//! * `run` consumes coalesced events and runs the matching scripts through
//!   `/bin/sh -c <command>` with Go's `SERF_*` environment and stdin, one event
//!   at a time and, per event, one script at a time in configuration order.
//!   Query handlers' output (stdout+stderr, exit status 0, non-empty) is the
//!   query response.
//!
//! Differences from Go 0.9.4 (all deliberate):
//!
//! * A per-invocation timeout (default 30 s, `HandlerConfig::timeout`): the
//!   script's whole process group is killed (SIGKILL) and the next script/event
//!   proceeds. Go waits forever. Scripts therefore run in their own process
//!   group (a terminal Ctrl-C reaches the agent, not its handlers).
//! * Events wait in a bounded queue (`HandlerConfig::max_pending`); when it is
//!   full the oldest pending event is dropped with a warning. Go blocks its event
//!   loop (and with it the IPC streams) behind a slow handler.
//! * `Script '<cmd>' generated N bytes of output, truncated to 8192` is logged
//!   when the 8 KiB output ring buffer overflowed (Go checks before the script
//!   has run, so never logs it).
//! * Tags are written in the member's tag order (Go: random map order).
//! * A process killed by a signal is reported as `signal: <name>` like Go, a
//!   spawn failure with Rust's I/O error text.
//!
//! Handler directory (for embedders such as serfnode, whose image has no shell):
//! `Handlers::with_dir` also runs `<dir>/<name>` for every event, executed directly
//! (no `/bin/sh`), where `<name>` is the user event or query name, or the member event
//! type (`member-join`; `member_join` is tried too). Names that are not a single path
//! component (empty, `.`, `..`, containing `/` or NUL) run nothing.
//!
//! Query responses: the (at most 8 KiB) output is handed to the `respond`
//! closure unchanged, exactly like Go passes it to `Query.Respond`; the size
//! limit (`query_response_size_limit`), the deadline and "already sent" are
//! that closure's business, its error is logged as
//! `Failed to respond to query 'query: <name>': <err>`.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serf_core::state::{Event, Member};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::coalesce::CoalescedEvent;

/// Size of the output ring buffer (Go `maxBufSize`).
pub(crate) const MAX_OUTPUT: usize = 8 * 1024;

/// Go's `warnSlow`.
pub(crate) const WARN_SLOW: Duration = Duration::from_secs(1);

/// The shell and its flag (Go: `/bin/sh -c`).
const SHELL: &str = "/bin/sh";

/// Which events a script wants: Go's `EventFilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventFilter {
    /// `*`, `member-join`, ..., `user`, `query` (or anything, then invalid).
    pub event: String,
    /// For `user`/`query`: the event/query name; empty = all.
    pub name: String,
}

impl EventFilter {
    /// Parses a comma-separated filter list; empty means `*`. Never fails (see
    /// [`EventFilter::is_valid`]).
    pub(crate) fn parse_list(v: &str) -> Vec<EventFilter> {
        let v = if v.is_empty() { "*" } else { v };
        v.split(',')
            .map(|item| {
                for prefix in ["user", "query"] {
                    if let Some(name) = item
                        .strip_prefix(prefix)
                        .and_then(|rest| rest.strip_prefix(':'))
                    {
                        return EventFilter {
                            event: prefix.to_string(),
                            name: name.to_string(),
                        };
                    }
                }
                EventFilter {
                    event: item.to_string(),
                    name: String::new(),
                }
            })
            .collect()
    }

    /// Whether the event type is one Go accepts.
    pub(crate) fn is_valid(&self) -> bool {
        matches!(
            self.event.as_str(),
            "member-join"
                | "member-leave"
                | "member-failed"
                | "member-update"
                | "member-reap"
                | "user"
                | "query"
                | "*"
        )
    }

    /// Go's `EventFilter.Invoke`.
    pub(crate) fn matches(&self, e: &CoalescedEvent) -> bool {
        if self.event == "*" {
            return true;
        }
        if e.event_type() != Some(self.event.as_str()) {
            return false;
        }
        if self.name.is_empty() {
            return true;
        }
        match (self.event.as_str(), e) {
            ("user", CoalescedEvent::Other(Event::User { name, .. })) => *name == self.name,
            ("query", CoalescedEvent::Other(Event::Query { name, .. })) => *name == self.name,
            _ => true,
        }
    }
}

/// One handler entry: a filter and the command (Go's `EventScript`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventScript {
    /// The filter.
    pub filter: EventFilter,
    /// Command run with `/bin/sh -c`, or the program's path when `direct`.
    pub script: String,
    /// Execute `script` as a program (no shell, no arguments).
    pub direct: bool,
}

impl EventScript {
    /// The key of this entry in `serf info`'s `event_handlers` (`event:name`).
    pub(crate) fn stats_key(&self) -> String {
        format!("{}:{}", self.filter.event, self.filter.name)
    }
}

impl fmt::Display for EventScript {
    /// Go's `EventScript.String()`: `Event 'user:deploy' invoking 'x.sh'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.filter.name.is_empty() {
            write!(
                f,
                "Event '{}' invoking '{}'",
                self.filter.event, self.script
            )
        } else {
            write!(
                f,
                "Event '{}:{}' invoking '{}'",
                self.filter.event, self.filter.name, self.script
            )
        }
    }
}

/// Parses one `[filters=]command` value into one entry per filter item, without
/// validation (Go's `ParseEventScript`).
pub(crate) fn parse_event_script(spec: &str) -> Vec<EventScript> {
    let (filter, script) = spec.split_once('=').unwrap_or(("", spec));
    EventFilter::parse_list(filter)
        .into_iter()
        .map(|filter| EventScript {
            filter,
            script: script.to_string(),
            direct: false,
        })
        .collect()
}

/// Parses and validates all handler values in order. The error is the line Go
/// prints (after `==> `) before exiting:
/// `Invalid event script: Event 'bogus' invoking 'foo.sh'`.
pub(crate) fn parse_event_scripts<S: AsRef<str>>(specs: &[S]) -> Result<Vec<EventScript>, String> {
    let scripts: Vec<EventScript> = specs
        .iter()
        .flat_map(|s| parse_event_script(s.as_ref()))
        .collect();
    match scripts.iter().find(|s| !s.filter.is_valid()) {
        Some(bad) => Err(format!("Invalid event script: {bad}")),
        None => Ok(scripts),
    }
}

/// Limits of the handler runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HandlerConfig {
    /// Kill a script (its process group) after this long; `None` = wait forever (Go).
    pub timeout: Option<Duration>,
    /// Maximum events waiting behind the running one; the oldest is dropped beyond.
    pub max_pending: usize,
    /// Log `Script '<cmd>' slow, execution exceeding 1s` after this long.
    pub warn_slow: Duration,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            timeout: Some(Duration::from_secs(30)),
            max_pending: 1024,
            warn_slow: WARN_SLOW,
        }
    }
}

/// The reloadable script list plus the runner's limits.
#[derive(Debug)]
pub(crate) struct Handlers {
    scripts: Mutex<Arc<Vec<EventScript>>>,
    config: HandlerConfig,
    dir: Option<std::path::PathBuf>,
    journal: Option<Arc<journal::Journal>>,
}

impl Handlers {
    /// New handler set.
    pub(crate) fn new(scripts: Vec<EventScript>, config: HandlerConfig) -> Self {
        Handlers {
            scripts: Mutex::new(Arc::new(scripts)),
            config,
            dir: None,
            journal: None,
        }
    }

    /// Marks user events done in `journal` once handled (see [`journal`]).
    pub(crate) fn with_journal(mut self, journal: Arc<journal::Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The journal, if any.
    pub(crate) fn journal(&self) -> Option<&Arc<journal::Journal>> {
        self.journal.as_ref()
    }

    /// Tells the journal that `event` needs nothing more from the handlers.
    fn finished(&self, event: &CoalescedEvent) {
        if let (Some(j), CoalescedEvent::Other(e)) = (&self.journal, event) {
            j.done(e);
        }
    }

    /// Also runs the executable `<dir>/<event name>` for every event (module doc).
    pub(crate) fn with_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.dir = Some(dir);
        self
    }

    /// The scripts for `event`: the matching configured ones, then the handler
    /// directory's program for it, if that exists.
    pub(crate) fn matching(&self, event: &CoalescedEvent) -> Vec<EventScript> {
        let mut out: Vec<EventScript> = self
            .scripts()
            .iter()
            .filter(|s| s.filter.matches(event))
            .cloned()
            .collect();
        if let Some(program) = self.dir.as_deref().and_then(|d| dir_program(d, event)) {
            out.push(EventScript {
                filter: EventFilter {
                    event: "*".to_string(),
                    name: String::new(),
                },
                script: program.to_string_lossy().into_owned(),
                direct: true,
            });
        }
        out
    }

    /// Atomically replaces the scripts (SIGHUP); used from the next event on.
    pub(crate) fn replace(&self, scripts: Vec<EventScript>) {
        let mut guard = self.scripts.lock().unwrap_or_else(|e| e.into_inner());
        *guard = Arc::new(scripts);
    }

    /// The current scripts.
    pub(crate) fn scripts(&self) -> Arc<Vec<EventScript>> {
        self.scripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The limits.
    pub(crate) fn config(&self) -> HandlerConfig {
        self.config
    }
}

/// The local node as handlers see it: name and tags.
pub(crate) type SelfInfo = (String, Vec<(String, String)>);

/// Sends a query response: `(ltime, id, payload)`; the error is logged.
pub(crate) type Respond = Arc<dyn Fn(u64, u32, Vec<u8>) -> Result<(), String> + Send + Sync>;

/// Runs the handlers for every event from `rx` until it closes (then the
/// pending events are still handled). `self_info` returns the local node name
/// and tags; it is called once per event that has a matching script.
pub(crate) async fn run<F>(
    mut rx: mpsc::Receiver<CoalescedEvent>,
    handlers: Arc<Handlers>,
    self_info: F,
    respond: Respond,
) where
    F: Fn() -> SelfInfo + Send + Sync,
{
    let mut queue: VecDeque<CoalescedEvent> = VecDeque::new();
    let mut closed = false;
    loop {
        let event = match queue.pop_front() {
            Some(e) => e,
            None if closed => return,
            None => match rx.recv().await {
                Some(e) => e,
                None => return,
            },
        };
        if event.event_type().is_none() {
            continue;
        }
        let matching = handlers.matching(&event);
        if matching.is_empty() {
            handlers.finished(&event);
            continue;
        }
        let me = self_info();
        let work = handle_event(
            event.clone(),
            matching,
            handlers.config(),
            me,
            respond.clone(),
        );
        tokio::pin!(work);
        loop {
            tokio::select! {
                biased;
                () = &mut work => {
                    handlers.finished(&event);
                    break;
                }
                r = rx.recv(), if !closed => match r {
                    Some(e) if e.event_type().is_some() => {
                        enqueue(&mut queue, e, &handlers);
                    }
                    Some(_) => {}
                    None => closed = true,
                },
            }
        }
    }
}

fn enqueue(queue: &mut VecDeque<CoalescedEvent>, e: CoalescedEvent, handlers: &Handlers) {
    let max = handlers.config().max_pending;
    while queue.len() >= max.max(1) {
        if let Some(old) = queue.pop_front() {
            handlers.finished(&old);
            tracing::warn!(
                "Event handler queue full ({} events pending), dropping oldest '{}' event",
                max,
                old.event_type().unwrap_or("unknown")
            );
        }
    }
    queue.push_back(e);
}

/// Handles one event: every matching script in order (Go's `HandleEvent`).
async fn handle_event(
    event: CoalescedEvent,
    matching: Vec<EventScript>,
    cfg: HandlerConfig,
    (self_name, self_tags): SelfInfo,
    respond: Respond,
) {
    let Some(event_type) = event.event_type() else {
        return;
    };
    let env = script_env(&event, &self_name, &self_tags);
    let stdin = script_stdin(&event);
    for script in matching {
        let started = Instant::now();
        let invoked = invoke(&script, &env, &stdin, cfg).await;
        metrics::histogram!(format!("agent.invoke.{}", script.script))
            .record(started.elapsed().as_secs_f64() * 1e3);
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = match invoked {
            Ok(out) => out,
            Err(e) => {
                FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!("Error invoking script '{}': {}", script.script, e);
                continue;
            }
        };
        if out.total_written > MAX_OUTPUT as u64 {
            tracing::warn!(
                "Script '{}' generated {} bytes of output, truncated to {}",
                script.script,
                out.total_written,
                MAX_OUTPUT
            );
        }
        tracing::debug!(
            "Event '{}' script output: {}",
            event_type,
            String::from_utf8_lossy(&out.output)
        );
        if let Err(e) = out.result {
            FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::error!("Error invoking script '{}': {}", script.script, e);
            continue;
        }
        if let CoalescedEvent::Other(Event::Query {
            ltime, id, name, ..
        }) = &event
        {
            if out.total_written > 0 {
                if let Err(e) = respond(*ltime, *id, out.output) {
                    tracing::warn!("Failed to respond to query 'query: {}': {}", name, e);
                }
            }
        }
    }
}

/// Whether `name` may name a file in the handler directory: one path component.
fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// The handler directory's program for `event`, if one exists (module doc).
fn dir_program(dir: &std::path::Path, event: &CoalescedEvent) -> Option<std::path::PathBuf> {
    let names: Vec<String> = match event {
        CoalescedEvent::Other(Event::User { name, .. })
        | CoalescedEvent::Other(Event::Query { name, .. }) => vec![name.clone()],
        CoalescedEvent::Members { .. } => {
            let t = event.event_type()?;
            vec![t.to_string(), t.replace('-', "_")]
        }
        CoalescedEvent::Other(_) => return None,
    };
    names
        .iter()
        .filter(|n| is_plain_file_name(n))
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// Handler scripts run, and of those the ones that failed (could not start, exited
/// non-zero, were killed), for `/metrics`.
pub(crate) static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// See [`RUNS`].
pub(crate) static FAILURES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Go's `eventClean`: TAB and LF become the two-character escapes.
fn event_clean(v: &str) -> String {
    v.replace('\t', "\\t").replace('\n', "\\n")
}

/// Go's `net.IP.String()` (IPv4-mapped IPv6 addresses print as IPv4).
fn ip_string(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        std::net::IpAddr::V4(v4) => v4.to_string(),
    }
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> &'a str {
    tags.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

/// `SERF_TAG_<NAME>`: upper-cased, every char outside `[A-Z0-9_]` becomes `_`.
pub(crate) fn tag_env_name(key: &str) -> String {
    let mut s = String::from("SERF_TAG_");
    for c in key.chars().flat_map(char::to_uppercase) {
        s.push(
            if c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            },
        );
    }
    s
}

/// The `SERF_*` variables for one invocation, in Go's order (later entries
/// win on duplicate names).
pub(crate) fn script_env(
    event: &CoalescedEvent,
    self_name: &str,
    self_tags: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "SERF_EVENT".to_string(),
            event.event_type().unwrap_or("unknown").to_string(),
        ),
        ("SERF_SELF_NAME".to_string(), self_name.to_string()),
        (
            "SERF_SELF_ROLE".to_string(),
            tag(self_tags, "role").to_string(),
        ),
    ];
    for (k, v) in self_tags {
        env.push((tag_env_name(k), v.clone()));
    }
    match event {
        CoalescedEvent::Other(Event::User { name, ltime, .. }) => {
            env.push(("SERF_USER_EVENT".to_string(), name.clone()));
            env.push(("SERF_USER_LTIME".to_string(), ltime.to_string()));
        }
        CoalescedEvent::Other(Event::Query { name, ltime, .. }) => {
            env.push(("SERF_QUERY_NAME".to_string(), name.clone()));
            env.push(("SERF_QUERY_LTIME".to_string(), ltime.to_string()));
        }
        _ => {}
    }
    env
}

/// One stdin line of a member event: `name\tip\trole\tk=v,k=v\n`.
fn member_line(m: &Member) -> String {
    let tags = m
        .tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    format!(
        "{}\t{}\t{}\t{}\n",
        event_clean(&m.name),
        ip_string(m.addr),
        event_clean(tag(&m.tags, "role")),
        event_clean(&tags)
    )
}

/// The bytes written to the script's stdin.
pub(crate) fn script_stdin(event: &CoalescedEvent) -> Vec<u8> {
    match event {
        CoalescedEvent::Members { members, .. } => members
            .iter()
            .map(member_line)
            .collect::<String>()
            .into_bytes(),
        CoalescedEvent::Other(Event::User { payload, .. })
        | CoalescedEvent::Other(Event::Query { payload, .. }) => {
            let mut p = payload.clone();
            if p.last().is_some_and(|&b| b != b'\n') {
                p.push(b'\n');
            }
            p
        }
        CoalescedEvent::Other(_) => Vec::new(),
    }
}

/// Result of a script that could be started.
#[derive(Debug)]
struct Invocation {
    /// The last [`MAX_OUTPUT`] bytes of stdout+stderr.
    output: Vec<u8>,
    /// Everything the script wrote.
    total_written: u64,
    /// `Err("exit status 1")`, `Err("signal: killed")`, timeout.
    result: Result<(), String>,
}

/// Go's circbuf: keeps the last `cap` bytes.
#[derive(Debug)]
pub(crate) struct Ring {
    pub(crate) buf: VecDeque<u8>,
    cap: usize,
    pub(crate) total: u64,
}

impl Ring {
    pub(crate) fn new(cap: usize) -> Self {
        Ring {
            buf: VecDeque::with_capacity(cap),
            cap,
            total: 0,
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let data = &data[data.len().saturating_sub(self.cap)..];
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }
}

/// Go's `exec.ExitError` text.
fn exit_error(status: ExitStatus) -> Option<String> {
    if status.success() {
        return None;
    }
    if let Some(code) = status.code() {
        return Some(format!("exit status {code}"));
    }
    let sig = status.signal().unwrap_or(0);
    let name = match sig {
        1 => "hangup".to_string(),
        2 => "interrupt".to_string(),
        3 => "quit".to_string(),
        4 => "illegal instruction".to_string(),
        6 => "aborted".to_string(),
        7 => "bus error".to_string(),
        8 => "floating point exception".to_string(),
        9 => "killed".to_string(),
        11 => "segmentation fault".to_string(),
        13 => "broken pipe".to_string(),
        14 => "alarm clock".to_string(),
        15 => "terminated".to_string(),
        n => format!("signal {n}"),
    };
    Some(format!("signal: {name}"))
}

/// Go-style duration text for whole seconds / milliseconds.
fn fmt_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// The handler processes spawned and not yet waited for. The lock is held across each
/// spawn, so [`reap_orphans`] never sees a handler it could steal the status of.
static SPAWNED: Mutex<std::collections::BTreeSet<u32>> =
    Mutex::new(std::collections::BTreeSet::new());

/// For an embedder that is PID 1 of a container: reaps every zombie child of this
/// process that is not a handler this module is waiting for (orphans re-parented to
/// PID 1, such as a handler's own background children). Returns how many were reaped.
pub fn reap_orphans() -> usize {
    let spawned = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if spawned.contains(&pid) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) S ppid ...`: the command may hold spaces and parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let (Some("Z"), Some(ppid)) = (fields.next(), fields.next()) else {
            continue;
        };
        if ppid.parse::<u32>().ok() != Some(me) {
            continue;
        }
        let Some(p) = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if let Ok(Some(_)) = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::NOHANG)
        {
            reaped += 1;
        }
    }
    reaped
}

/// Kills the process group `pgid` (the script and everything it started).
fn kill_group(pgid: u32) {
    let Some(pid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    if let Err(e) = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL) {
        tracing::error!("Failed to kill event handler process group {pgid}: {e}");
    }
}

/// Runs one script to completion (or timeout). `Err` only when it could not be
/// started.
async fn invoke(
    script: &EventScript,
    env: &[(String, String)],
    stdin: &[u8],
    cfg: HandlerConfig,
) -> std::io::Result<Invocation> {
    let (out_r, out_w) = std::io::pipe()?;
    let out_w2 = out_w.try_clone()?;
    let (in_r, in_w) = std::io::pipe()?;
    // Registered before the spawn so a failure leaves no child behind. Only our
    // ends become non-blocking; the child's ends are separate descriptions.
    let mut reader = pipe::Receiver::from_owned_fd(OwnedFd::from(out_r))?;
    let mut writer = pipe::Sender::from_owned_fd(OwnedFd::from(in_w))?;

    let mut cmd = if script.direct {
        std::process::Command::new(&script.script)
    } else {
        let mut c = std::process::Command::new(SHELL);
        c.arg("-c").arg(&script.script);
        c
    };
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::from(in_r))
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(out_w2))
        .process_group(0);
    let spawned = {
        let mut registry = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
        let r = cmd.spawn();
        if let Ok(c) = &r {
            registry.insert(c.id());
        }
        r
    };
    // The command holds the child's pipe ends; close ours so EOF can happen.
    drop(cmd);
    let mut child = spawned?;
    let pgid = child.id();
    let started = Instant::now();

    let mut ring = Ring::new(MAX_OUTPUT);
    let result = {
        let feed = async move {
            if let Err(e) = writer.write_all(stdin).await {
                tracing::debug!("Error writing event handler stdin: {e}");
            }
            let _ = writer.flush().await;
            drop(writer);
        };
        let drain = async {
            let mut buf = vec![0u8; 4096];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => ring.write(&buf[..n]),
                    Err(e) => {
                        tracing::debug!("Error reading event handler output: {e}");
                        break;
                    }
                }
            }
        };
        let wait = async {
            let waited = tokio::task::spawn_blocking(move || {
                let r = child.wait();
                SPAWNED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&pgid);
                r
            });
            match waited.await {
                Ok(Ok(status)) => exit_error(status).map_or(Ok(()), Err),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(e.to_string()),
            }
        };
        let all = async {
            let ((), (), r) = tokio::join!(feed, drain, wait);
            r
        };
        tokio::pin!(all);

        let slow_at = started + cfg.warn_slow;
        let mut slow_logged = false;
        let deadline = cfg.timeout.map(|t| started + t);
        loop {
            tokio::select! {
                r = &mut all => break r,
                () = tokio::time::sleep_until(slow_at), if !slow_logged => {
                    slow_logged = true;
                    tracing::warn!(
                        "Script '{}' slow, execution exceeding {}",
                        script.script,
                        fmt_duration(cfg.warn_slow)
                    );
                }
                () = crate::shared::sleep_until_opt(deadline) => {
                    let t = cfg.timeout.unwrap_or_default();
                    kill_group(pgid);
                    // Processes that left the group may still hold the output
                    // pipe: do not wait for them for long.
                    let _ = tokio::time::timeout(Duration::from_secs(5), &mut all).await;
                    break Err(format!(
                        "timed out after {}, process group killed",
                        fmt_duration(t)
                    ));
                }
            }
        }
    };
    Ok(Invocation {
        output: ring.buf.into_iter().collect(),
        total_written: ring.total,
        result,
    })
}

pub(crate) mod journal;

#[cfg(test)]
mod tests;
