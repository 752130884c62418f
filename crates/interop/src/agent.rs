//! Agent processes (Go or ours): spawned on fresh ports, watched, killed and reaped on drop.

use super::*;

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
