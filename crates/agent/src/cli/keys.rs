//! `serf keys`.

use super::{columnize_lines, connect, out, parse_flags, with_rpc};
use crate::flags::{FlagSet, Kind};
use crate::help::KEYS_HELP;

/// `PrefixedUi{InfoPrefix: "==> "}.Info`.
fn info(msg: &str) {
    if msg.is_empty() {
        out("");
    } else {
        out(&format!("==> {msg}"));
    }
}

/// Prints the per-node failures (`failed: | node | message`, columnized, Go's order is
/// random; ours is sorted by node), an empty line and `<prefix>: <err>`.
fn report_failure(messages: &[(String, String)], prefix: &str, err: &str) {
    if !messages.is_empty() {
        let mut msgs: Vec<&(String, String)> = messages.iter().collect();
        msgs.sort();
        let lines: Vec<String> = msgs
            .iter()
            .map(|(node, msg)| format!("failed: | {node} | {msg}"))
            .collect();
        out(&columnize_lines(&lines));
    }
    out("");
    out(&format!("{prefix}: {err}"));
}

/// `serf keys -install=<key> | -use=<key> | -remove=<key> | -list`.
pub(super) async fn keys(args: &[String]) -> i32 {
    let fs = with_rpc(
        FlagSet::new()
            .add("install", Kind::Value)
            .add("use", Kind::Value)
            .add("remove", Kind::Value)
            .add("list", Kind::Bool),
    );
    let Some(p) = parse_flags(fs, args, KEYS_HELP) else {
        return 1;
    };
    let list = p.bool("list");
    let install = p.get("install").unwrap_or("").to_string();
    let use_key = p.get("use").unwrap_or("").to_string();
    let remove = p.get("remove").unwrap_or("").to_string();
    let mut found = list;
    for arg in [&install, &use_key, &remove] {
        if found && !arg.is_empty() {
            out("Only one of -install, -use, -remove, or -list allowed");
            return 1;
        }
        found = found || !arg.is_empty();
    }
    if !found {
        out(KEYS_HELP);
        return 1;
    }
    let Some(mut c) = connect(&p).await else {
        return 1;
    };
    let code = if list {
        info("Asking all members for installed keys...");
        let (resp, res) = c.list_keys().await;
        match res {
            Err(e) => {
                report_failure(
                    &resp.messages,
                    "Failed to gather member keys",
                    &e.to_string(),
                );
                1
            }
            Ok(()) => {
                info("Keys gathered, listing cluster keys...");
                out("");
                let mut keys = resp.keys.unwrap_or_default();
                keys.sort();
                let lines: Vec<String> = keys
                    .iter()
                    .map(|(k, n)| format!("{k} | [{n}/{}]", resp.num_nodes))
                    .collect();
                out(&columnize_lines(&lines));
                0
            }
        }
    } else {
        let (command, key, start, done, prefix) = if !install.is_empty() {
            (
                "install-key",
                install,
                "Installing key on all members...",
                "Successfully installed key!",
                "Error installing key",
            )
        } else if !use_key.is_empty() {
            (
                "use-key",
                use_key,
                "Changing primary key on all members...",
                "Successfully changed primary key!",
                "Error changing primary key",
            )
        } else {
            (
                "remove-key",
                remove,
                "Removing key on all members...",
                "Successfully removed key!",
                "Error removing key",
            )
        };
        info(start);
        let (resp, res) = match command {
            "install-key" => c.install_key(&key).await,
            "use-key" => c.use_key(&key).await,
            _ => c.remove_key(&key).await,
        };
        match res {
            Err(e) => {
                report_failure(&resp.messages, prefix, &e.to_string());
                1
            }
            Ok(()) => {
                info(done);
                0
            }
        }
    };
    c.close().await;
    code
}
