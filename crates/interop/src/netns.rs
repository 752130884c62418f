//! Test networks of Linux network namespaces, for the tests that need real links between
//! agents (mDNS multicast, partitions, packet loss): a "switch" namespace holding a bridge,
//! and one namespace per agent linked to it by a veth pair (`eth0`, `<subnet>.N/24`).
//! Nothing is added to the host's own namespace, so all traffic stays inside the
//! namespaces made here.
//!
//! Names carry the test process id (`<prefix><pid>-<tag>-…`). [`Netns`] deletes what it
//! made, by name, on drop (also when a test fails; the veths go with their namespaces),
//! and namespaces left by a test process that no longer exists are removed before a new
//! network is built.
//!
//! Optional per-agent parts: a multicast route (mDNS), and an nftables table with an empty
//! `input` chain for fault rules ([`Netns::rule`], [`Netns::flush`]).

use crate::{current_test_name, describe_status, in_ci, run_with_timeout};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CMD_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether this process runs as root (namespaces and nftables need it).
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Whether `cmd arg` runs and succeeds (`ip -V`, `nft --version`).
pub fn has_command(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Skips (outside CI: a message on stderr) or fails (under `CI=true`: a panic) the
/// running test for a missing prerequisite.
pub fn missing(why: &str) {
    let test = current_test_name();
    if in_ci() {
        panic!("{test}: missing prerequisite in CI (CI=true): {why}");
    }
    eprintln!("skipping: {test}: {why}");
}

/// Root and `ip`, plus `nft` when `nft` is true; false (after [`missing`]) when not all
/// there.
pub fn netns_prereq(nft: bool) -> bool {
    if !is_root() {
        missing("network namespaces need root");
        return false;
    }
    if !has_command("ip", "-V") {
        missing("no `ip` command (install iproute2)");
        return false;
    }
    if nft && !has_command("nft", "--version") {
        missing("no `nft` command (install nftables)");
        return false;
    }
    true
}

/// Runs `prog args…` with a deadline; `Err` names the command, its status and stderr.
pub fn run_cmd(prog: &str, args: &[&str]) -> Result<(), String> {
    let mut cmd = Command::new(prog);
    cmd.args(args);
    let out = run_with_timeout(cmd, CMD_TIMEOUT)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{prog} {}` failed ({}): {}",
            args.join(" "),
            describe_status(&out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn list_netns() -> Vec<String> {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What a test network looks like.
#[derive(Debug, Clone, Copy)]
pub struct NetnsSpec {
    /// Name prefix, ending in `-` (`serfmdns-`); one per test file.
    pub prefix: &'static str,
    /// The first three octets of the agents' /24 (`10.234.0`).
    pub subnet: &'static str,
    /// Turn the bridge's multicast snooping off and route 224.0.0.0/4 out of `eth0`, with
    /// IPv6 duplicate-address detection off so link-local addresses work at once (mDNS).
    pub multicast: bool,
    /// An nftables table (`inet <name>`, chain `input`, empty) in every agent namespace.
    pub nft_table: Option<&'static str>,
}

/// A switch namespace with a bridge plus `n` agent namespaces (1..=n). Removed on drop.
#[derive(Debug)]
pub struct Netns {
    spec: NetnsSpec,
    base: String,
    n: usize,
}

impl Netns {
    /// Builds the network for test `tag`. `None` after [`missing`] when namespaces cannot
    /// be made at all (a missing capability); panics on a later failure.
    pub fn new(spec: NetnsSpec, tag: &str, n: usize) -> Option<Netns> {
        Self::remove_stale(&spec);
        let net = Netns {
            spec,
            base: format!("{}{}-{tag}", spec.prefix, std::process::id()),
            n,
        };
        net.teardown();
        if let Err(e) = run_cmd("ip", &["netns", "add", &net.switch()]) {
            missing(&format!("cannot create network namespaces: {e}"));
            return None;
        }
        if let Err(e) = net.build() {
            panic!("building the test network: {e}");
        }
        Some(net)
    }

    /// Deletes this prefix's namespaces whose creating test process is gone (e.g. it was
    /// SIGKILLed).
    fn remove_stale(spec: &NetnsSpec) {
        for ns in list_netns() {
            let Some(rest) = ns.strip_prefix(spec.prefix) else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                if let Some(table) = spec.nft_table {
                    let _ = run_cmd(
                        "ip",
                        &[
                            "netns", "exec", &ns, "nft", "delete", "table", "inet", table,
                        ],
                    );
                }
                let _ = run_cmd("ip", &["netns", "del", &ns]);
            }
        }
    }

    /// The switch namespace's name.
    pub fn switch(&self) -> String {
        format!("{}-sw", self.base)
    }

    /// Agent namespace `i`'s name.
    pub fn ns(&self, i: usize) -> String {
        format!("{}-{i}", self.base)
    }

    /// Agent `i`'s address.
    pub fn ip(&self, i: usize) -> String {
        format!("{}.{i}", self.spec.subnet)
    }

    fn build(&self) -> Result<(), String> {
        let sw = self.switch();
        let mut bridge = vec!["-n", &sw, "link", "add", "br0", "type", "bridge"];
        if self.spec.multicast {
            bridge.extend(["mcast_snooping", "0"]);
        }
        run_cmd("ip", &bridge)?;
        run_cmd("ip", &["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 1..=self.n {
            let ns = self.ns(i);
            let port = format!("v{i}");
            run_cmd("ip", &["netns", "add", &ns])?;
            if self.spec.multicast {
                let mut dad = Command::new("ip");
                dad.args(["netns", "exec", &ns, "sh", "-c"]).arg(
                    "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; \
                     echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad",
                );
                let _ = run_with_timeout(dad, CMD_TIMEOUT);
            }
            run_cmd(
                "ip",
                &[
                    "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            )?;
            run_cmd(
                "ip",
                &["-n", &sw, "link", "set", &port, "master", "br0", "up"],
            )?;
            run_cmd("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            let cidr = format!("{}/24", self.ip(i));
            run_cmd("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"])?;
            run_cmd("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            if self.spec.multicast {
                run_cmd(
                    "ip",
                    &["-n", &ns, "route", "add", "224.0.0.0/4", "dev", "eth0"],
                )?;
            }
            if let Some(table) = self.spec.nft_table {
                self.nft(i, &["add", "table", "inet", table])?;
                let chain = "{ type filter hook input priority 0; policy accept; }";
                self.nft(i, &["add", "chain", "inet", table, "input", chain])?;
            }
        }
        Ok(())
    }

    /// Runs `nft args…` in agent namespace `i`.
    pub fn nft(&self, i: usize, args: &[&str]) -> Result<(), String> {
        let ns = self.ns(i);
        let mut full = vec!["netns", "exec", &ns, "nft"];
        full.extend_from_slice(args);
        run_cmd("ip", &full)
    }

    fn table(&self) -> &'static str {
        self.spec
            .nft_table
            .expect("this test network was built without an nftables table")
    }

    /// Adds one rule to the `input` chain of namespace `i` (`nft add rule inet <table>
    /// input <rule…>`).
    pub fn rule(&self, i: usize, rule: &str) {
        let mut args = vec!["add", "rule", "inet", self.table(), "input"];
        args.extend(rule.split_whitespace());
        self.nft(i, &args).expect("adding an nft rule");
    }

    /// Removes every rule of namespace `i`.
    pub fn flush(&self, i: usize) {
        self.nft(i, &["flush", "chain", "inet", self.table(), "input"])
            .expect("flushing the nft chain");
    }

    fn teardown(&self) {
        let existing = list_netns();
        for i in 1..=self.n {
            let ns = self.ns(i);
            if existing.contains(&ns) {
                if let Some(table) = self.spec.nft_table {
                    let _ = self.nft(i, &["delete", "table", "inet", table]);
                }
                let _ = run_cmd("ip", &["netns", "del", &ns]);
            }
        }
        let sw = self.switch();
        if existing.contains(&sw) {
            let _ = run_cmd("ip", &["-n", &sw, "link", "del", "br0"]);
            let _ = run_cmd("ip", &["netns", "del", &sw]);
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.teardown();
    }
}
