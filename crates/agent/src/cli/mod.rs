//! Client subcommands (docs/agent-cli.md section 2), behaving like Go serf 0.9.4's `cmd/serf`:
//! output and error messages on stdout (`Ui.Output` adds one newline), flag errors on
//! stderr followed by the command's help on stdout, exit 0/1.
//!
//! [`dispatch`] is the whole command line (what the `serf` binary runs). Each command has
//! its own file; the client commands talk to the agent through [`serf_rpc::Client`].

mod app;
mod event;
mod force_leave;
mod info;
mod join;
mod keygen;
mod keys;
mod leave;
mod members;
mod monitor;
mod query;
mod reachability;
mod rtt;
mod tags;
mod version;

pub use app::{dispatch, exit_quietly_on_broken_pipe};
pub use version::VERSION;

use crate::flags::{FlagSet, Kind, Parsed};
use crate::help;
use serf_rpc::Client;
use std::io::Write;

/// The help text of a command the dispatcher knows (`version`'s is empty).
pub(crate) fn help_for(cmd: &str) -> Option<&'static str> {
    Some(match cmd {
        "agent" => help::AGENT_HELP,
        "event" => help::EVENT_HELP,
        "force-leave" => help::FORCE_LEAVE_HELP,
        "info" => help::INFO_HELP,
        "join" => help::JOIN_HELP,
        "keygen" => help::KEYGEN_HELP,
        "keys" => help::KEYS_HELP,
        "leave" => help::LEAVE_HELP,
        "members" => help::MEMBERS_HELP,
        "monitor" => help::MONITOR_HELP,
        "query" => help::QUERY_HELP,
        "reachability" => help::REACHABILITY_HELP,
        "rtt" => help::RTT_HELP,
        "tags" => help::TAGS_HELP,
        "version" => "",
        _ => return None,
    })
}

/// Runs a client command (one that talks to an agent over RPC); `None` if `cmd` is not one.
pub(crate) async fn run(cmd: &str, args: &[String]) -> Option<i32> {
    Some(match cmd {
        "event" => event::event(args).await,
        "force-leave" => force_leave::force_leave(args).await,
        "info" => info::info(args).await,
        "join" => join::join(args).await,
        "keys" => keys::keys(args).await,
        "leave" => leave::leave(args).await,
        "members" => members::members(args).await,
        "monitor" => monitor::monitor(args).await,
        "query" => query::query(args).await,
        "reachability" => reachability::reachability(args).await,
        "rtt" => rtt::rtt(args).await,
        "tags" => tags::tags(args).await,
        _ => return None,
    })
}

/// Go's `Ui.Output`: the message and a newline on stdout, unbuffered.
pub(crate) fn out(msg: &str) {
    out_bytes(msg.as_bytes());
}

/// [`out`] for raw bytes (Go strings may hold anything).
pub(crate) fn out_bytes(msg: &[u8]) {
    let mut o = std::io::stdout().lock();
    let written = o
        .write_all(msg)
        .and_then(|()| o.write_all(b"\n"))
        .and_then(|()| o.flush());
    if written.is_err() {
        // Go dies of SIGPIPE when stdout is gone; stop as well.
        std::process::exit(1);
    }
}

/// Prints a usage error: the message, an empty line and the help (all stdout).
pub(super) fn usage_error(msg: &str, help: &str) -> i32 {
    out(msg);
    out("");
    out(help);
    1
}

/// Adds `-rpc-addr` and `-rpc-auth`.
fn with_rpc(fs: FlagSet) -> FlagSet {
    fs.add("rpc-addr", Kind::Value).add("rpc-auth", Kind::Value)
}

/// Parses like Go's `FlagSet.Parse` with `ContinueOnError` and `Usage` printing the help on
/// stdout: the error goes to stderr first (`-h`/`-help` print only the help).
fn parse_flags(fs: FlagSet, args: &[String], help: &str) -> Option<Parsed> {
    match fs.parse(args) {
        Ok(p) => Some(p),
        Err(e) => {
            if e != "flag provided but not defined: -help"
                && e != "flag provided but not defined: -h"
            {
                eprintln!("{e}");
            }
            out(help);
            None
        }
    }
}

/// `-rpc-addr` (default `SERF_RPC_ADDR`, else 127.0.0.1:7373) and `-rpc-auth` (default
/// `SERF_RPC_AUTH`).
fn rpc_defaults(p: &Parsed) -> (String, String) {
    let addr = p
        .get("rpc-addr")
        .map(str::to_string)
        .or_else(|| {
            std::env::var("SERF_RPC_ADDR")
                .ok()
                .filter(|a| !a.is_empty())
        })
        .unwrap_or_else(|| "127.0.0.1:7373".to_string());
    let auth = p
        .get("rpc-auth")
        .map(str::to_string)
        .or_else(|| std::env::var("SERF_RPC_AUTH").ok())
        .unwrap_or_default();
    (addr, auth)
}

/// Connects with the `-rpc-*` flags; prints `Error connecting to Serf agent: <err>`.
async fn connect(p: &Parsed) -> Option<Client> {
    let (addr, auth) = rpc_defaults(p);
    match Client::connect(&addr, &auth).await {
        Ok(c) => Some(c),
        Err(e) => {
            out(&format!("Error connecting to Serf agent: {e}"));
            None
        }
    }
}

/// `agent.UnmarshalTags`: `key=value` pairs (split at the first `=`, non-empty key) into a
/// map (a repeated key keeps its first position and its last value).
fn unmarshal_tags(pairs: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for t in pairs {
        match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                if let Some(e) = out.iter_mut().find(|(ek, _)| ek == k) {
                    e.1 = v.to_string();
                } else {
                    out.push((k.to_string(), v.to_string()));
                }
            }
            _ => return Err(format!("Invalid tag: '{t}'")),
        }
    }
    Ok(out)
}

/// ryanuber/columnize `SimpleFormat`: cells separated by `|` are trimmed and left-aligned
/// to the widest cell of their column (in runes), joined by two spaces; the last cell of a
/// line is not padded; the final newline is dropped.
pub(crate) fn columnize_lines(lines: &[String]) -> String {
    let split: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &split {
        for (i, c) in cells.iter().enumerate() {
            let n = c.chars().count();
            if widths.len() <= i {
                widths.push(n);
            } else if widths[i] < n {
                widths[i] = n;
            }
        }
    }
    let mut out = String::new();
    for cells in &split {
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
                out.push('\n');
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(widths[i] - c.chars().count()));
                out.push_str("  ");
            }
        }
    }
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

/// Aligns rows like [`columnize_lines`] and trims the result (Go's `formatOutput` text path).
#[cfg(test)]
fn columnize(rows: &[Vec<String>]) -> String {
    let lines: Vec<String> = rows.iter().map(|r| r.join("|")).collect();
    columnize_lines(&lines).trim().to_string()
}

/// Go's `strings.TrimSpace` on bytes.
fn trim_space(b: &[u8]) -> &[u8] {
    match std::str::from_utf8(b) {
        Ok(s) => s.trim().as_bytes(),
        Err(_) => b.trim_ascii(),
    }
}

/// A SIGINT listener registered now (Go's `makeShutdownCh`), for the commands that handle
/// Ctrl-C themselves.
struct Interrupt(Option<tokio::signal::unix::Signal>);

impl Interrupt {
    fn new() -> Self {
        Interrupt(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok())
    }

    async fn recv(&mut self) {
        match &mut self.0 {
            Some(s) => {
                if s.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columnize_matches_go() {
        let rows = vec![
            vec![
                "alpha".into(),
                "127.0.0.1:17946".into(),
                "alive".into(),
                "role=web".into(),
            ],
            vec![
                "tmpnode".into(),
                "127.0.0.1:17960".into(),
                "left".into(),
                "".into(),
            ],
            vec![
                "leaver".into(),
                "127.0.0.1:17961".into(),
                "left".into(),
                "".into(),
            ],
        ];
        assert_eq!(
            columnize(&rows),
            "alpha    127.0.0.1:17946  alive  role=web\ntmpnode  127.0.0.1:17960  left   \nleaver   127.0.0.1:17961  left"
        );
        assert_eq!(
            columnize_lines(&[
                "failed: | alpha | Keyring is empty".to_string(),
                "failed: | beta | Keyring is empty".to_string()
            ]),
            "failed:  alpha  Keyring is empty\nfailed:  beta   Keyring is empty"
        );
        assert_eq!(columnize_lines(&[]), "");
    }

    #[test]
    fn tags_like_unmarshal_tags() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            unmarshal_tags(&s(&["a=1", "b=", "a=x=y"])),
            Ok(vec![
                ("a".to_string(), "x=y".to_string()),
                ("b".to_string(), String::new())
            ])
        );
        assert_eq!(
            unmarshal_tags(&s(&["bad"])),
            Err("Invalid tag: 'bad'".to_string())
        );
        assert_eq!(
            unmarshal_tags(&s(&["=v"])),
            Err("Invalid tag: '=v'".to_string())
        );
    }
}
