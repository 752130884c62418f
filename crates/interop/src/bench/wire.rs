//! Bytes on the wire of one cluster: an nftables table of our own counts every TCP and UDP
//! packet leaving a gossip port of the watched agents or going to one (the loopback
//! interface passes each packet through the `output` hook once). Needs root and `nft`;
//! without them the whole loopback interface's transmit counter is used instead.

use crate::netns::{has_command, is_root, run_cmd};
use crate::{run_with_timeout, CLI_TIMEOUT};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// Name of this process's table (deleted on drop and, since release builds abort on
/// panic without unwinding, from a panic hook too; a `sh` watcher deletes it if this
/// process is killed; tables of dead benchmark processes are removed at start).
static TABLE: OnceLock<String> = OnceLock::new();

/// How bytes are counted.
#[derive(Debug)]
pub enum WireCounter {
    /// nftables counters on the watched gossip ports (IP packet lengths, headers included).
    Nft {
        /// Table name (family `inet`).
        table: String,
        /// A `sh` loop that deletes the table should this process die without unwinding.
        watcher: Option<Child>,
    },
    /// Bytes transmitted on `lo` (`/proc/net/dev`), whatever sent them.
    Loopback,
}

fn nft(script: &str) -> Result<String, String> {
    let mut cmd = Command::new("nft");
    cmd.arg(script);
    let out = run_with_timeout(cmd, CLI_TIMEOUT)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "nft {script:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Deletes tables `serf_bench_<pid>` left by benchmark processes that are gone.
fn remove_stale_tables() {
    let Ok(list) = nft("list tables inet") else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.trim().strip_prefix("table inet serf_bench_") else {
            continue;
        };
        if name.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{name}")).exists() {
            let _ = run_cmd(
                "nft",
                &["delete", "table", "inet", &format!("serf_bench_{name}")],
            );
        }
    }
}

fn loopback_tx_bytes() -> Result<u64, String> {
    let dev = std::fs::read_to_string("/proc/net/dev").map_err(|e| e.to_string())?;
    dev.lines()
        .find_map(|l| l.trim().strip_prefix("lo:"))
        .and_then(|rest| rest.split_whitespace().nth(8))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no lo line in /proc/net/dev".to_string())
}

impl Default for WireCounter {
    fn default() -> Self {
        WireCounter::new()
    }
}

impl WireCounter {
    /// The nftables counter when root and `nft` are there, else the loopback fallback.
    pub fn new() -> WireCounter {
        if !is_root() || !has_command("nft", "--version") {
            return WireCounter::Loopback;
        }
        remove_stale_tables();
        let table = format!("serf_bench_{}", std::process::id());
        let script = format!(
            "add table inet {table}; \
             add set inet {table} ports {{ type inet_service; }}; \
             add chain inet {table} out {{ type filter hook output priority 0; policy accept; }}; \
             add rule inet {table} out meta l4proto {{ tcp, udp }} th sport @ports counter; \
             add rule inet {table} out meta l4proto {{ tcp, udp }} th sport != @ports th dport @ports counter"
        );
        match nft(&script) {
            Ok(_) => {
                let _ = TABLE.set(table.clone());
                let previous = std::panic::take_hook();
                std::panic::set_hook(Box::new(move |info| {
                    if let Some(t) = TABLE.get() {
                        let _ = run_cmd("nft", &["delete", "table", "inet", t]);
                    }
                    previous(info);
                }));
                let watcher = Command::new("sh")
                    .arg("-c")
                    .arg("while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; nft delete table inet \"$2\"")
                    .arg("serf-bench-nft-watchdog")
                    .arg(std::process::id().to_string())
                    .arg(&table)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .ok();
                WireCounter::Nft { table, watcher }
            }
            Err(e) => {
                eprintln!("bench: nftables counters unavailable ({e}); counting all of lo");
                let _ = nft(&format!("delete table inet {table}"));
                WireCounter::Loopback
            }
        }
    }

    /// Counts the packets of these gossip ports from now on (replacing earlier ones).
    pub fn watch(&self, ports: &[u16]) -> Result<(), String> {
        let WireCounter::Nft { table, .. } = self else {
            return Ok(());
        };
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        nft(&format!(
            "flush set inet {table} ports; add element inet {table} ports {{ {} }}",
            list.join(", ")
        ))
        .map(|_| ())
    }

    /// The byte count so far (compare two readings).
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            WireCounter::Nft { table, .. } => {
                let text = nft(&format!("list chain inet {table} out"))?;
                let words: Vec<&str> = text.split_whitespace().collect();
                Ok(words
                    .windows(2)
                    .filter(|w| w[0] == "bytes")
                    .filter_map(|w| w[1].parse::<u64>().ok())
                    .sum())
            }
            WireCounter::Loopback => loopback_tx_bytes(),
        }
    }

    /// What the figure covers, for the report.
    pub fn describe(&self) -> &'static str {
        match self {
            WireCounter::Nft { .. } => {
                "IP bytes (headers included) of TCP and UDP packets from or to the cluster's \
                 gossip ports, counted by an nftables table on the output hook"
            }
            WireCounter::Loopback => {
                "ALL bytes sent on lo during the window (no root or no nft), whatever sent them, \
                 divided by N: an upper bound on a shared machine"
            }
        }
    }
}

impl Drop for WireCounter {
    fn drop(&mut self) {
        if let WireCounter::Nft { table, watcher } = self {
            if let Some(mut w) = watcher.take() {
                let _ = w.kill();
                let _ = w.wait();
            }
            let _ = run_cmd("nft", &["delete", "table", "inet", table]);
        }
    }
}
