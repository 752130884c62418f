//! The tags a serfnode gossips (SPEC §1.5) and the node info read back from them (§3.1).
//!
//! | tag | value |
//! |---|---|
//! | `role` | the role |
//! | `ip` | the advertised serf IP |
//! | `serf_port` | the gossip port, decimal |
//! | `rpc` | the RPC port, decimal |
//! | `timestamp` | agent start, epoch seconds as Python 2's `str(float)` wrote it (`1432836000.12`) |
//! | `service` | the service IP (default: the serf IP) |
//! | `service_port` | decimal, default `0` |
//! | `ports` | the ports published on the serfnode container (below) |
//!
//! The `ports` tag is a list of entries separated by a vertical bar; each entry is the
//! container port, `t` (TCP) or `u` (UDP), and the host ports joined by commas:
//! `8000t8000|7946u7946` ([`PortMap::encode`], [`PortMap::decode`]).
//!
//! # UDP ports: `/udp`, not the original's `/u`
//!
//! On the wire a UDP entry stays `7946u7946` (old and new nodes read each other's tags).
//! In the node info the original decoded it to the key `"7946/u"` (SPEC §7.2 bug 2); this
//! crate decodes it to `"7946/udp"`, Docker's own spelling and what the TCP keys
//! (`"8000/tcp"`) suggest. No known consumer read the `/u` keys (the projects that used
//! serfnode published TCP ports only), so the fix is taken over compatibility.
//!
//! # Who is a serfnode
//!
//! A member is read as a serfnode when it carries the tags `role` and `timestamp`, which
//! every serfnode version sets. The other tags fall back as the SPEC describes (`service`
//! to the member's address) or to the member's own data (`serf_port` to its gossip port,
//! `service_port` to `"0"`, `ports` to none). A plain `serf agent` in the cluster (no such
//! tags) gives `None` instead of the original's `KeyError` on every node (§7.2 bug 15).
//! Malformed `ports` entries from another node are skipped, never fatal.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};
use serf_core::Member;

use crate::config::Config;

/// Tag `role`.
pub const TAG_ROLE: &str = "role";
/// Tag `ip`.
pub const TAG_IP: &str = "ip";
/// Tag `serf_port`.
pub const TAG_SERF_PORT: &str = "serf_port";
/// Tag `rpc`.
pub const TAG_RPC: &str = "rpc";
/// Tag `timestamp`.
pub const TAG_TIMESTAMP: &str = "timestamp";
/// Tag `service`.
pub const TAG_SERVICE: &str = "service";
/// Tag `service_port`.
pub const TAG_SERVICE_PORT: &str = "service_port";
/// Tag `ports`.
pub const TAG_PORTS: &str = "ports";

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    /// TCP: `t` in the tag, `/tcp` in the node info.
    Tcp,
    /// UDP: `u` in the tag, `/udp` in the node info (the original wrote `/u`).
    Udp,
}

impl Proto {
    /// Docker's spelling: `tcp`, `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    fn tag_char(self) -> char {
        match self {
            Proto::Tcp => 't',
            Proto::Udp => 'u',
        }
    }
}

/// Why a `ports` tag entry could not be decoded (see [`PortMap::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortsTagError {
    /// The entry.
    pub entry: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PortsTagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ports tag entry {:?}: {}", self.entry, self.reason)
    }
}

impl std::error::Error for PortsTagError {}

/// Published ports: (container port, protocol) to host ports (no duplicates, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortMap(BTreeMap<(u16, Proto), Vec<u16>>);

impl PortMap {
    /// No ports.
    pub fn new() -> PortMap {
        PortMap::default()
    }

    /// Adds host ports for a container port (duplicates are dropped).
    pub fn insert(&mut self, port: u16, proto: Proto, host_ports: impl IntoIterator<Item = u16>) {
        let list = self.0.entry((port, proto)).or_default();
        for h in host_ports {
            if !list.contains(&h) {
                list.push(h);
            }
        }
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, ordered by port then protocol.
    pub fn iter(&self) -> impl Iterator<Item = (u16, Proto, &[u16])> + '_ {
        self.0
            .iter()
            .map(|((p, proto), hs)| (*p, *proto, hs.as_slice()))
    }

    /// From Docker's `NetworkSettings.Ports` object of the serfnode container (`{"8000/tcp":
    /// [{"HostIp": "0.0.0.0", "HostPort": "8000"}], "9000/tcp": null}`): unpublished ports
    /// (null), protocols other than tcp/udp (which the original crashed on) and entries
    /// that are not well formed are left out; host ports are deduplicated (Docker lists one
    /// binding per address family).
    pub fn from_docker_ports(ports: &serde_json::Value) -> PortMap {
        let mut map = PortMap::new();
        let Some(obj) = ports.as_object() else {
            return map;
        };
        for (key, bindings) in obj {
            let Some((port, proto)) = key.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let proto = match proto {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                _ => continue,
            };
            let Some(list) = bindings.as_array() else {
                continue;
            };
            let hosts = list.iter().filter_map(|b| {
                b.get("HostPort")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|h| h.parse::<u16>().ok())
            });
            map.insert(port, proto, hosts);
        }
        map
    }

    /// The `ports` tag value: `8000t8000|7946u7946`, empty for no ports.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (port, proto, hosts)) in self.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            out.push_str(&port.to_string());
            out.push(proto.tag_char());
            let hosts: Vec<String> = hosts.iter().map(u16::to_string).collect();
            out.push_str(&hosts.join(","));
        }
        out
    }

    /// Decodes a `ports` tag strictly: the first bad entry is an error.
    pub fn decode(tag: &str) -> Result<PortMap, PortsTagError> {
        let mut map = PortMap::new();
        for entry in tag.split('|').filter(|e| !e.is_empty()) {
            let (port, proto, hosts) = decode_entry(entry)?;
            map.insert(port, proto, hosts);
        }
        Ok(map)
    }

    /// Decodes a `ports` tag, skipping bad entries (for tags of other nodes).
    pub fn decode_lenient(tag: &str) -> PortMap {
        let mut map = PortMap::new();
        for entry in tag.split('|').filter(|e| !e.is_empty()) {
            if let Ok((port, proto, hosts)) = decode_entry(entry) {
                map.insert(port, proto, hosts);
            }
        }
        map
    }
}

fn decode_entry(entry: &str) -> Result<(u16, Proto, Vec<u16>), PortsTagError> {
    let err = |reason| PortsTagError {
        entry: entry.to_string(),
        reason,
    };
    let split = entry
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| err("no protocol letter (t or u)"))?;
    let (digits, rest) = entry.split_at(split);
    let port = digits
        .parse::<u16>()
        .map_err(|_| err("the container port is not a port number"))?;
    let mut rest_chars = rest.chars();
    let proto = match rest_chars.next() {
        Some('t') => Proto::Tcp,
        Some('u') => Proto::Udp,
        _ => return Err(err("the protocol letter is not t or u")),
    };
    let hosts_text = rest_chars.as_str();
    let mut hosts = Vec::new();
    for h in hosts_text.split(',').filter(|h| !h.is_empty()) {
        hosts.push(
            h.parse::<u16>()
                .map_err(|_| err("a host port is not a port number"))?,
        );
    }
    Ok((port, proto, hosts))
}

/// The node info's `ports` value: `{"8000/tcp": ["8000"], "7946/udp": ["7946"]}`.
impl Serialize for PortMap {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries: BTreeMap<String, Vec<String>> = self
            .iter()
            .map(|(p, proto, hosts)| {
                (
                    format!("{p}/{}", proto.as_str()),
                    hosts.iter().map(u16::to_string).collect(),
                )
            })
            .collect();
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (k, v) in &entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The `timestamp` tag: agent start time in epoch seconds, as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timestamp(String);

impl Timestamp {
    /// Formats a time since the epoch as Python 2's `str(time.time())` did: rounded to
    /// hundredths (12 significant digits for 10-digit seconds), trailing zeros dropped but
    /// one decimal kept (`1432836000.12`, `1432836000.1`, `1432836000.0`).
    pub fn from_unix(since_epoch: Duration) -> Timestamp {
        let centis = (since_epoch.as_secs() as u128) * 100
            + (since_epoch.subsec_nanos() as u128 + 5_000_000) / 10_000_000;
        let secs = centis / 100;
        let frac = centis % 100;
        let text = if frac.is_multiple_of(10) {
            format!("{secs}.{}", frac / 10)
        } else {
            format!("{secs}.{frac:02}")
        };
        Timestamp(text)
    }

    /// A timestamp as received in a tag (any text).
    pub fn from_tag(text: &str) -> Timestamp {
        Timestamp(text.to_string())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The numeric value, when the text is a finite decimal number.
    pub fn seconds(&self) -> Option<f64> {
        let t = self.0.trim();
        if t.is_empty()
            || !t.bytes().all(|b| {
                b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+' || b == b'e' || b == b'E'
            })
        {
            return None;
        }
        t.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// Oldest first: numeric order; texts that are not numbers sort after all numbers
    /// (never elected as "oldest"), among themselves by text.
    pub fn cmp_age(&self, other: &Timestamp) -> std::cmp::Ordering {
        match (self.seconds(), other.seconds()) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => self.0.cmp(&other.0),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What this serfnode gossips about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTags {
    /// `role`.
    pub role: String,
    /// `ip`: the advertised serf IP.
    pub ip: IpAddr,
    /// `serf_port`.
    pub serf_port: u16,
    /// `rpc`.
    pub rpc: u16,
    /// `timestamp`.
    pub timestamp: Timestamp,
    /// `service`.
    pub service: IpAddr,
    /// `service_port`.
    pub service_port: u16,
    /// `ports`.
    pub ports: PortMap,
}

impl NodeTags {
    /// The tags for `config`, given what only the running system knows: the serf IP
    /// (`config.serf_ip`, else the detected one), the agent's start time and the ports
    /// published on the serfnode container.
    pub fn new(
        config: &Config,
        detected_serf_ip: IpAddr,
        started: Duration,
        ports: PortMap,
    ) -> NodeTags {
        let ip = config.serf_ip.unwrap_or(detected_serf_ip);
        NodeTags {
            role: config.role.clone(),
            ip,
            serf_port: config.serf_port,
            rpc: config.rpc_port,
            timestamp: Timestamp::from_unix(started),
            service: config.service_ip.unwrap_or(ip),
            service_port: config.service_port,
            ports,
        }
    }

    /// The tags, in the order the original passed them to `serf agent`.
    pub fn to_tags(&self) -> Vec<(String, String)> {
        vec![
            (TAG_ROLE.to_string(), self.role.clone()),
            (TAG_IP.to_string(), self.ip.to_string()),
            (TAG_SERF_PORT.to_string(), self.serf_port.to_string()),
            (TAG_RPC.to_string(), self.rpc.to_string()),
            (
                TAG_TIMESTAMP.to_string(),
                self.timestamp.as_str().to_string(),
            ),
            (TAG_SERVICE.to_string(), self.service.to_string()),
            (TAG_SERVICE_PORT.to_string(), self.service_port.to_string()),
            (TAG_PORTS.to_string(), self.ports.encode()),
        ]
    }
}

/// A serfnode member as the file API shows it (SPEC §3.1 "Node info"): the 8 documented
/// fields, all strings except `ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Member name (the node id).
    pub id: String,
    /// Tag `role`.
    pub role: String,
    /// The member's address.
    pub serf_ip: String,
    /// Tag `serf_port` (else the member's gossip port).
    pub serf_port: String,
    /// Tag `service` (else `serf_ip`).
    pub service_ip: String,
    /// Tag `service_port` (else `"0"`).
    pub service_port: String,
    /// Tag `timestamp`.
    pub timestamp: Timestamp,
    /// Tag `ports`, decoded (bad entries skipped).
    pub ports: PortMap,
}

impl NodeInfo {
    /// Reads a member's tags; `None` when it is not a serfnode (no `role` or no
    /// `timestamp` tag). The member's status is not looked at.
    pub fn from_member(member: &Member) -> Option<NodeInfo> {
        let tag = |name: &str| {
            member
                .tags
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let role = tag(TAG_ROLE)?;
        let timestamp = tag(TAG_TIMESTAMP)?;
        let serf_ip = member.addr.to_string();
        Some(NodeInfo {
            id: member.name.clone(),
            role: role.to_string(),
            serf_port: tag(TAG_SERF_PORT)
                .map(str::to_string)
                .unwrap_or_else(|| member.port.to_string()),
            service_ip: tag(TAG_SERVICE)
                .map(str::to_string)
                .unwrap_or_else(|| serf_ip.clone()),
            service_port: tag(TAG_SERVICE_PORT).unwrap_or("0").to_string(),
            timestamp: Timestamp::from_tag(timestamp),
            ports: PortMap::decode_lenient(tag(TAG_PORTS).unwrap_or("")),
            serf_ip,
        })
    }

    /// The address to join this node at, `<serf_ip>:<serf_port>` (IPv6 in brackets), as
    /// the original's `/me` helper printed it (SPEC §1.9).
    pub fn join_address(&self) -> String {
        match self.serf_ip.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{}", self.serf_port),
            _ => format!("{}:{}", self.serf_ip, self.serf_port),
        }
    }

    /// Oldest first (numeric timestamp), ties broken by id.
    pub fn cmp_age(&self, other: &NodeInfo) -> std::cmp::Ordering {
        self.timestamp
            .cmp_age(&other.timestamp)
            .then_with(|| self.id.cmp(&other.id))
    }
}

impl Serialize for NodeInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("NodeInfo", 8)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("role", &self.role)?;
        s.serialize_field("serf_ip", &self.serf_ip)?;
        s.serialize_field("serf_port", &self.serf_port)?;
        s.serialize_field("service_ip", &self.service_ip)?;
        s.serialize_field("service_port", &self.service_port)?;
        s.serialize_field("timestamp", self.timestamp.as_str())?;
        s.serialize_field("ports", &self.ports)?;
        s.end()
    }
}
