//! `/etc/hosts`: role names of the cluster (SPEC §5), done better (§7.2 bug 4, §9.6).
//!
//! Each role resolves to the service IP of its *oldest* alive member (smallest numeric
//! `timestamp` tag, ties broken by member name), so that every node, and every child
//! (which shares the parent's `/etc/hosts`), agrees on e.g. `redis` without coordination.
//!
//! Unlike the original, which parsed and regenerated the whole file (dropping comments,
//! collapsing `localhost` to `::1`, never removing a role, arbitrary line order), the
//! rewrite here:
//!
//! - keeps every line outside one managed block byte for byte (comments, blank lines, tabs,
//!   Docker's own entries, the `127.0.0.1 localhost` line);
//! - manages only the block between [`BEGIN_MARKER`] and [`END_MARKER`]: one line
//!   `<service_ip> <role> [<role> ...]` per address (single spaces, `\n`; SPEC §8 items 37
//!   and 39), addresses and roles in sorted order;
//! - prunes roles with no alive member (§8 item 36: the original kept them forever);
//! - adds `127.0.0.1 localhost` inside the block if no line outside it has it;
//! - is idempotent, and with no roles and no block in the file returns the file unchanged.
//!
//! The block stays where it was found; a new block goes at the end. An unterminated block
//! (a begin marker without an end marker) extends to the end of the file. A role name that
//! also appears on a line outside the block is left alone there; resolvers use the first
//! matching line. Roles that are not usable host names (characters other than ASCII
//! letters, digits, `-`, `_`, `.`) and members whose `service` tag is not an IP address are
//! skipped, so that a tag can never inject lines into the file.
//!
//! `/etc/hosts` is a Docker bind mount and cannot be replaced by rename: the caller writes
//! the new text in place, and only when it differs from the old one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serf_core::{Member, MemberStatus};

use crate::tags::NodeInfo;

/// First line of the managed block.
pub const BEGIN_MARKER: &str = "# BEGIN serfnode: role names (oldest alive member of each role); managed, edits are overwritten";
/// Last line of the managed block.
pub const END_MARKER: &str = "# END serfnode";

/// How a begin marker line starts (any version of the text is recognised).
const BEGIN_PREFIX: &str = "# BEGIN serfnode";

/// Longest role accepted as a host name.
const MAX_NAME_LEN: usize = 253;

/// Role to service IP: for each role with an alive serfnode member, the service IP of the
/// oldest one (numeric timestamp, then member name). Members that are not alive, are not
/// serfnodes, have a role that is not a usable host name or a service that is not an IP
/// address are left out.
pub fn elect(members: &[Member]) -> BTreeMap<String, IpAddr> {
    let mut best: BTreeMap<String, (NodeInfo, IpAddr)> = BTreeMap::new();
    for m in members {
        if m.status != MemberStatus::Alive {
            continue;
        }
        let Some(info) = NodeInfo::from_member(m) else {
            continue;
        };
        if !is_host_name(&info.role) {
            continue;
        }
        let Ok(ip) = info.service_ip.parse::<IpAddr>() else {
            continue;
        };
        match best.get(&info.role) {
            Some((current, _)) if current.cmp_age(&info).is_le() => {}
            _ => {
                best.insert(info.role.clone(), (info, ip));
            }
        }
    }
    best.into_iter().map(|(role, (_, ip))| (role, ip)).collect()
}

/// Whether `name` can be written as a host name in `/etc/hosts`.
pub fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The new `/etc/hosts` text for these members (see the module documentation).
pub fn rewrite(old: &str, members: &[Member]) -> String {
    rewrite_roles(old, &elect(members))
}

/// The new `/etc/hosts` text with this role to address map in the managed block. Roles
/// that are not usable host names are skipped.
pub fn rewrite_roles(old: &str, roles: &BTreeMap<String, IpAddr>) -> String {
    // Split the file into the lines outside any managed block, and where the first block was.
    let mut kept: Vec<&str> = Vec::new();
    let mut block_at: Option<usize> = None;
    let mut in_block = false;
    for line in old.split_inclusive('\n') {
        let t = line.trim();
        if in_block {
            if t.starts_with(END_MARKER) {
                in_block = false;
            }
            continue;
        }
        if t.starts_with(BEGIN_PREFIX) {
            in_block = true;
            block_at.get_or_insert(kept.len());
            continue;
        }
        if t.starts_with(END_MARKER) {
            // A stray end marker is ours too.
            continue;
        }
        kept.push(line);
    }

    let block = block_lines(&kept, roles);
    let mut out = String::with_capacity(old.len() + 64);
    let at = block_at.unwrap_or(kept.len());
    for (i, line) in kept.iter().enumerate() {
        if i == at {
            out.push_str(&block);
        }
        out.push_str(line);
    }
    if at >= kept.len() && !block.is_empty() {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&block);
    }
    out
}

/// The managed block's text (markers included), empty when there is no role.
fn block_lines(kept: &[&str], roles: &BTreeMap<String, IpAddr>) -> String {
    let mut by_ip: BTreeMap<IpAddr, Vec<&str>> = BTreeMap::new();
    for (role, ip) in roles {
        if is_host_name(role) {
            by_ip.entry(*ip).or_default().push(role);
        }
    }
    if by_ip.is_empty() {
        return String::new();
    }
    if !has_localhost(kept) {
        by_ip
            .entry(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .or_default()
            .insert(0, "localhost");
    }
    let mut out = String::new();
    out.push_str(BEGIN_MARKER);
    out.push('\n');
    for (ip, names) in by_ip {
        out.push_str(&ip.to_string());
        for name in names {
            out.push(' ');
            out.push_str(name);
        }
        out.push('\n');
    }
    out.push_str(END_MARKER);
    out.push('\n');
    out
}

/// Whether a line maps `localhost` to 127.0.0.1.
fn has_localhost(lines: &[&str]) -> bool {
    lines.iter().any(|line| {
        let content = line.split('#').next().unwrap_or("");
        let mut tokens = content.split_whitespace();
        tokens.next() == Some("127.0.0.1") && tokens.any(|t| t == "localhost")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(is_host_name("redis"));
        assert!(is_host_name("no_role"));
        assert!(is_host_name("a.b-c"));
        assert!(!is_host_name(""));
        assert!(!is_host_name("my role"));
        assert!(!is_host_name("a#b"));
        assert!(!is_host_name("a\nb"));
        assert!(!is_host_name(&"a".repeat(254)));
    }

    #[test]
    fn localhost_detection() {
        assert!(has_localhost(&["127.0.0.1\tlocalhost\n"]));
        assert!(has_localhost(&["127.0.0.1 foo localhost # x\n"]));
        assert!(!has_localhost(&["# 127.0.0.1 localhost\n"]));
        assert!(!has_localhost(&["::1 localhost\n"]));
        assert!(!has_localhost(&["127.0.0.1 x # localhost\n"]));
    }
}
