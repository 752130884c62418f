//! A node's view of the cluster, read through the CLI (`serf members -format=json`).

use super::*;

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
