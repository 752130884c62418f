//! mDNS discovery (`-discover=<cluster>`, config key `discover`), wire-compatible with
//! Go Serf 0.9.4, which uses `github.com/hashicorp/mdns` (docs/agent-cli.md section 3.6).
//!
//! Two halves, as in Go:
//!
//! * **Responder**: UDP 5353 (IPv4 and IPv6, `SO_REUSEADDR`), member of 224.0.0.251 and
//!   ff02::fb. It serves the service `_serf_<cluster>._tcp.local.` with instance name = node
//!   name, SRV (priority 10, weight 1, port = memberlist advertise port, target = OS
//!   hostname + `.`), TXT `Serf '<cluster>' cluster` and A/AAAA = advertise IP, every record
//!   with TTL 120 s and no cache-flush bit. Answers go, like hashicorp/mdns, all in the
//!   Answer section of one message (PTR, SRV, A, AAAA, TXT), name-compressed exactly as
//!   `miekg/dns` does; header `0x8400`, ID 0 (the query ID when the question asked for a
//!   unicast reply), no question section. A query from a source port other than 5353 (a
//!   "legacy"/one-shot querier, which is how hashicorp/mdns queries) or asking for a unicast
//!   reply (QU bit) is answered by unicast to its source; a multicast question from port
//!   5353 is answered on the multicast group.
//! * **Querier**: at start and every 60 s, a one-second query: one PTR question for the
//!   service (QM, ID random, flags 0) to `224.0.0.251:5353` and `[ff02::fb]:5353` from fresh
//!   ephemeral-port sockets, collecting the answers sent back to them (hashicorp/mdns
//!   responders always answer to the query's source). Each complete service entry (address,
//!   port and TXT) gives `ip:port`; new ones are joined in one batch once no new one has come
//!   for 100 ms (`[INFO] agent.mdns: Joined N hosts`), and each address is tried only once,
//!   our own included.
//!
//! Why not the `mdns-sd` crate: it refuses host names that do not end in `.local.` (Go
//! advertises `<hostname>.`), and it only announces the addresses that lie in the subnet
//! of the interface it sends on, so an advertise address that is not on that interface
//! (NAT, an explicit `-advertise`) is never published and Go's querier, which needs an
//! A/AAAA record to complete an entry, never finds us. It also caps legacy-unicast TTLs to
//! 10 s and runs its own browse schedule instead of Serf's.

use serf_runtime::Agent;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

mod dns;
use dns::*;

/// The mDNS port.
pub(crate) const MDNS_PORT: u16 = 5353;
const V4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const V6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb);
/// TTL of every record we serve (hashicorp/mdns `defaultTTL`).
const TTL: u32 = 120;
/// Time between two queries.
const POLL_INTERVAL: Duration = Duration::from_secs(60);
/// How long no new host must arrive before a batch is joined.
const QUIET_INTERVAL: Duration = Duration::from_millis(100);
/// How long one query collects answers.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Buffered discovered hosts (a full buffer drops, as Go's non-blocking send does).
const HOSTS_BUFFER: usize = 32;

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_TXT: u16 = 16;
const TYPE_AAAA: u16 = 28;
const TYPE_SRV: u16 = 33;
const TYPE_ANY: u16 = 255;
const CLASS_IN: u16 = 1;
/// The QU ("unicast response preferred") bit of a question's class.
const QU_BIT: u16 = 0x8000;

/// Starts mDNS discovery for `agent`: advertises it under `cluster` and joins the agents
/// found. `iface` is the `-iface`/`interface` setting (the multicast interface; `None`:
/// the system default, as in Go). `replay` is `replay_on_join`.
///
/// Must be called from within the Tokio runtime. Runs until the agent shuts down. Fails
/// (Go: `==> Error starting mDNS listener: <err>`, exit 1) when neither the IPv4 nor the
/// IPv6 multicast listener can be set up, or on an invalid service definition.
pub(crate) fn start(
    agent: &Agent,
    cluster: &str,
    iface: Option<&str>,
    replay: bool,
) -> Result<(), String> {
    let node = agent.name();
    let advertise = agent
        .with_core(|s| {
            s.memberlist()
                .local_node()
                .map(|n| SocketAddr::new(n.addr, n.port))
        })
        .unwrap_or_else(|| agent.local_addr());
    let host = format!("{}.", crate::shared::os_hostname()?);
    let zone = Zone::new(&node, cluster, &host, advertise)?;
    let iface = iface.and_then(|name| {
        let found = Iface::lookup(name);
        if found.is_none() {
            tracing::warn!(target: "agent.mdns", "interface {name:?} not found, using the default multicast interface");
        }
        found
    });
    let (stop_tx, stop) = watch::channel(false);
    let sockets = Responder::bind(iface.as_ref())?;
    {
        let agent = agent.clone();
        tokio::spawn(async move {
            agent.stopped().await;
            let _ = stop_tx.send(true);
        });
    }
    sockets.spawn(Arc::new(zone), stop.clone());
    let service = service_name(cluster);
    let join_agent = agent.clone();
    let poll_iface = iface.clone();
    tokio::spawn(discover_loop(
        move |tx| {
            let service = service.clone();
            let iface = poll_iface.clone();
            tokio::spawn(async move {
                if let Err(e) = query(&service, iface.as_ref(), &tx).await {
                    tracing::error!(target: "agent.mdns", "Failed to poll for new hosts: {e}");
                }
            });
        },
        move |addrs: Vec<String>| {
            let agent = join_agent.clone();
            async move { agent_join(&agent, &addrs, replay).await }
        },
        stop,
    ));
    Ok(())
}

/// A join with the log lines Go's `Agent.Join` writes around it.
async fn agent_join(agent: &Agent, addrs: &[String], replay: bool) -> Result<usize, String> {
    crate::shared::join_logged(agent, addrs, replay)
        .await
        .map_err(|(_, e)| e.trim_end().to_string())
}

/// The service name (`_serf_<cluster>._tcp.local.`).
fn service_name(cluster: &str) -> String {
    format!("_serf_{}._tcp.local.", cluster.trim_matches('.'))
}

// ---------------------------------------------------------------------------
// Discovery loop
// ---------------------------------------------------------------------------

/// Go's `AgentMDNS.run`: polls at once and every [`POLL_INTERVAL`] (`poll` starts one query
/// feeding the channel), batches new addresses until [`QUIET_INTERVAL`] passes without
/// one, joins the batch and never retries an address.
async fn discover_loop<P, J, F>(mut poll: P, mut join: J, mut stop: watch::Receiver<bool>)
where
    P: FnMut(mpsc::Sender<SocketAddr>),
    J: FnMut(Vec<String>) -> F,
    F: Future<Output = Result<usize, String>>,
{
    let (tx, mut rx) = mpsc::channel::<SocketAddr>(HOSTS_BUFFER);
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending: Vec<String> = Vec::new();
    let mut quiet: Option<Instant> = None;
    let mut next_poll = Instant::now();
    loop {
        let quiet_at = quiet;
        tokio::select! {
            _ = wait_stop(&mut stop) => return,
            Some(addr) = rx.recv() => {
                let a = addr.to_string();
                if seen.contains(&a) || pending.contains(&a) {
                    continue;
                }
                pending.push(a);
                quiet = Some(Instant::now() + QUIET_INTERVAL);
            }
            _ = crate::shared::sleep_until_opt(quiet_at) => {
                quiet = None;
                let batch = std::mem::take(&mut pending);
                match join(batch.clone()).await {
                    Ok(n) if n > 0 => tracing::info!(target: "agent.mdns", "Joined {n} hosts"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(target: "agent.mdns", "Failed to join: {e}"),
                }
                seen.extend(batch);
            }
            _ = tokio::time::sleep_until(next_poll) => {
                next_poll = Instant::now() + POLL_INTERVAL;
                poll(tx.clone());
            }
        }
    }
}

/// Resolves once `stop` is (or has become) true, or its sender is gone.
async fn wait_stop(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Interfaces and sockets
// ---------------------------------------------------------------------------

/// The multicast interface chosen with `-iface`.
#[derive(Debug, Clone)]
struct Iface {
    index: u32,
    v4: Option<Ipv4Addr>,
}

impl Iface {
    fn lookup(name: &str) -> Option<Iface> {
        let addrs = if_addrs::get_if_addrs().unwrap_or_default();
        let mine: Vec<_> = addrs.iter().filter(|i| i.name == name).collect();
        let index = mine.iter().find_map(|i| i.index).or_else(|| {
            std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
        })?;
        let v4 = mine.iter().find_map(|i| match i.ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        });
        Some(Iface { index, v4 })
    }
}

fn udp_socket(v6: bool) -> std::io::Result<Socket> {
    let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if v6 {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

fn into_tokio(s: Socket) -> std::io::Result<UdpSocket> {
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// The multicast listener on port 5353 (Go's `net.ListenMulticastUDP`).
fn listen_multicast(v6: bool, iface: Option<&Iface>) -> std::io::Result<UdpSocket> {
    let s = udp_socket(v6)?;
    s.set_reuse_address(true)?;
    if v6 {
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, MDNS_PORT)).into())?;
        let index = iface.map_or(0, |i| i.index);
        if index != 0 {
            s.set_multicast_if_v6(index)?;
        }
        s.join_multicast_v6(&V6_GROUP, index)?;
    } else {
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, MDNS_PORT)).into())?;
        match iface {
            Some(i) => {
                if let Some(a) = i.v4 {
                    s.set_multicast_if_v4(&a)?;
                }
                s.join_multicast_v4_n(&V4_GROUP, &InterfaceIndexOrAddress::Index(i.index))?;
            }
            None => s.join_multicast_v4(&V4_GROUP, &Ipv4Addr::UNSPECIFIED)?,
        }
    }
    into_tokio(s)
}

/// An ephemeral-port socket that sends queries and receives the answers.
fn query_socket(v6: bool, iface: Option<&Iface>) -> std::io::Result<UdpSocket> {
    let s = udp_socket(v6)?;
    if v6 {
        s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0)).into())?;
        if let Some(i) = iface {
            s.set_multicast_if_v6(i.index)?;
        }
    } else {
        s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)).into())?;
        if let Some(a) = iface.and_then(|i| i.v4) {
            s.set_multicast_if_v4(&a)?;
        }
    }
    into_tokio(s)
}

/// The responder's listeners.
struct Responder {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    v6_scope: u32,
}

impl Responder {
    fn bind(iface: Option<&Iface>) -> Result<Responder, String> {
        let v4 = listen_multicast(false, iface)
            .map_err(|e| tracing::debug!(target: "agent.mdns", "no IPv4 multicast listener: {e}"))
            .ok();
        let v6 = listen_multicast(true, iface)
            .map_err(|e| tracing::debug!(target: "agent.mdns", "no IPv6 multicast listener: {e}"))
            .ok();
        if v4.is_none() && v6.is_none() {
            return Err("No multicast listeners could be started".to_string());
        }
        Ok(Responder {
            v4,
            v6,
            v6_scope: iface.map_or(0, |i| i.index),
        })
    }

    fn spawn(self, zone: Arc<Zone>, stop: watch::Receiver<bool>) {
        if let Some(s) = self.v4 {
            let group = SocketAddr::from((V4_GROUP, MDNS_PORT));
            tokio::spawn(serve(s, zone.clone(), group, stop.clone()));
        }
        if let Some(s) = self.v6 {
            let group = SocketAddr::V6(SocketAddrV6::new(V6_GROUP, MDNS_PORT, 0, self.v6_scope));
            tokio::spawn(serve(s, zone, group, stop));
        }
    }
}

/// Answers the queries arriving on one listener.
async fn serve(
    sock: UdpSocket,
    zone: Arc<Zone>,
    group: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::select! {
            _ = wait_stop(&mut stop) => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(target: "agent.mdns", "mDNS read error: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let Some(packet) = buf.get(..n) else { continue };
        for reply in zone.handle(packet, from) {
            let to = if reply.multicast { group } else { from };
            if let Err(e) = sock.send_to(&reply.bytes, to).await {
                tracing::debug!(target: "agent.mdns", "mDNS send to {to} failed: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Querier
// ---------------------------------------------------------------------------

/// One query (hashicorp/mdns `Query` with default parameters): sends the PTR question,
/// collects answers for [`QUERY_TIMEOUT`] and sends every complete entry's address to
/// `hosts` (never blocking: dropped when the buffer is full).
async fn query(
    service: &str,
    iface: Option<&Iface>,
    hosts: &mpsc::Sender<SocketAddr>,
) -> Result<(), String> {
    let v4 = query_socket(false, iface).ok();
    let v6 = query_socket(true, iface).ok();
    if v4.is_none() && v6.is_none() {
        return Err("failed to bind to any unicast udp port".to_string());
    }
    let service = Name::parse(service)?;
    let send = |name: &Name| {
        let q = encode_query(random_id(), name, false);
        let v4 = v4.as_ref();
        let v6 = v6.as_ref();
        async move {
            let mut sent = false;
            let mut last_err = String::new();
            if let Some(s) = v4 {
                match s.send_to(&q, (V4_GROUP, MDNS_PORT)).await {
                    Ok(_) => sent = true,
                    Err(e) => last_err = e.to_string(),
                }
            }
            if let Some(s) = v6 {
                let scope = iface.map_or(0, |i| i.index);
                let to = SocketAddrV6::new(V6_GROUP, MDNS_PORT, 0, scope);
                match s.send_to(&q, to).await {
                    Ok(_) => sent = true,
                    Err(e) => {
                        tracing::debug!(target: "agent.mdns", "IPv6 query not sent: {e}");
                        if last_err.is_empty() {
                            last_err = e.to_string();
                        }
                    }
                }
            }
            if sent {
                Ok(())
            } else {
                Err(last_err)
            }
        }
    };
    send(&service).await?;
    let mut entries = Entries::default();
    let deadline = Instant::now() + QUERY_TIMEOUT;
    let mut b4 = vec![0u8; 65536];
    let mut b6 = vec![0u8; 65536];
    loop {
        let packet = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            r = recv_opt(v4.as_ref(), &mut b4) => r.and_then(|n| b4.get(..n)),
            r = recv_opt(v6.as_ref(), &mut b6) => r.and_then(|n| b6.get(..n)),
        };
        let Some(packet) = packet else { continue };
        let msg = match Message::parse(packet) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(target: "agent.mdns", "ignoring a malformed answer: {e}");
                continue;
            }
        };
        let outcome = entries.absorb(&msg);
        for addr in outcome.complete {
            let _ = hosts.try_send(addr);
        }
        if let Some(name) = outcome.incomplete {
            // hashicorp/mdns then asks for the instance itself.
            if let Ok(n) = Name::parse(&name) {
                if let Err(e) = send(&n).await {
                    tracing::debug!(target: "agent.mdns", "Failed to query instance {name}: {e}");
                }
            }
        }
    }
}

/// One datagram from `sock` (never resolves without a socket); `None` after a read error
/// (and a short pause, so that a failing socket cannot spin).
async fn recv_opt(sock: Option<&UdpSocket>, buf: &mut [u8]) -> Option<usize> {
    match sock {
        Some(s) => match s.recv_from(buf).await {
            Ok((n, _)) => Some(n),
            Err(e) => {
                tracing::debug!(target: "agent.mdns", "mDNS read error: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        },
        None => std::future::pending().await,
    }
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    u16::from_be_bytes(b)
}

/// A service entry being assembled from answers (hashicorp/mdns `ServiceEntry`).
#[derive(Debug, Default, Clone)]
struct Entry {
    port: u16,
    /// The last A or AAAA address seen (Go's deprecated `Addr`, which Serf uses).
    addr: Option<IpAddr>,
    has_txt: bool,
    sent: bool,
}

impl Entry {
    fn complete(&self) -> bool {
        self.addr.is_some() && self.port != 0 && self.has_txt
    }
}

/// The entries of one query, keyed by name; an SRV target is an alias of its instance.
#[derive(Debug, Default)]
struct Entries {
    slots: Vec<Entry>,
    names: HashMap<String, usize>,
}

/// What one answer message changed.
#[derive(Debug, Default)]
struct Absorbed {
    /// Addresses of entries that became complete.
    complete: Vec<SocketAddr>,
    /// The last touched entry's name, when it is still incomplete.
    incomplete: Option<String>,
}

impl Entries {
    fn ensure(&mut self, name: &str) -> usize {
        if let Some(&i) = self.names.get(name) {
            return i;
        }
        self.slots.push(Entry::default());
        let i = self.slots.len() - 1;
        self.names.insert(name.to_string(), i);
        i
    }

    fn absorb(&mut self, msg: &Message) -> Absorbed {
        let mut touched: Vec<usize> = Vec::new();
        let mut last: Option<(usize, String)> = None;
        for rr in msg.answers.iter().chain(msg.additionals.iter()) {
            let owner = rr.name.dotted();
            let idx = match &rr.data {
                RData::Ptr(target) => {
                    let t = target.dotted();
                    Some((self.ensure(&t), t))
                }
                RData::Srv { port, target, .. } => {
                    let t = target.dotted();
                    let i = self.ensure(&owner);
                    if t != owner {
                        self.names.insert(t, i);
                    }
                    if let Some(e) = self.slots.get_mut(i) {
                        e.port = *port;
                    }
                    Some((i, owner))
                }
                RData::Txt(_) => {
                    let i = self.ensure(&owner);
                    if let Some(e) = self.slots.get_mut(i) {
                        e.has_txt = true;
                    }
                    Some((i, owner))
                }
                RData::A(a) => {
                    let i = self.ensure(&owner);
                    if let Some(e) = self.slots.get_mut(i) {
                        e.addr = Some(IpAddr::V4(*a));
                    }
                    Some((i, owner))
                }
                RData::Aaaa(a) => {
                    let i = self.ensure(&owner);
                    if let Some(e) = self.slots.get_mut(i) {
                        e.addr = Some(IpAddr::V6(*a));
                    }
                    Some((i, owner))
                }
                RData::Other => None,
            };
            if let Some((i, name)) = idx {
                if !touched.contains(&i) {
                    touched.push(i);
                }
                last = Some((i, name));
            }
        }
        let mut out = Absorbed::default();
        for i in touched {
            if let Some(e) = self.slots.get_mut(i) {
                if e.complete() && !e.sent {
                    e.sent = true;
                    if let Some(ip) = e.addr {
                        out.complete.push(SocketAddr::new(ip, e.port));
                    }
                }
            }
        }
        if let Some((i, name)) = last {
            if self.slots.get(i).is_some_and(|e| !e.complete()) {
                out.incomplete = Some(name);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------
// Responder zone (hashicorp/mdns `MDNSService`)
// ---------------------------------------------------------------------------

/// What we advertise.
#[derive(Debug)]
struct Zone {
    /// `_services._dns-sd._udp.local.`
    enumeration: Name,
    /// `_serf_<cluster>._tcp.local.`
    service: Name,
    /// `<node>._serf_<cluster>._tcp.local.`
    instance: Name,
    /// `<hostname>.`
    host: Name,
    port: u16,
    ips: Vec<IpAddr>,
    txt: Vec<Vec<u8>>,
}

/// One reply to send.
#[derive(Debug, PartialEq, Eq)]
struct Reply {
    bytes: Vec<u8>,
    /// To the multicast group (else to the query's source).
    multicast: bool,
}

impl Zone {
    fn new(node: &str, cluster: &str, host: &str, advertise: SocketAddr) -> Result<Zone, String> {
        if node.is_empty() {
            return Err("missing service instance name".to_string());
        }
        if advertise.port() == 0 {
            return Err("missing service port".to_string());
        }
        let service = service_name(cluster);
        let txt = format!("Serf '{cluster}' cluster").into_bytes();
        if txt.len() > 255 {
            return Err(format!("TXT record too long for cluster name {cluster:?}"));
        }
        Ok(Zone {
            enumeration: Name::parse("_services._dns-sd._udp.local.")?,
            instance: Name::parse(&format!("{node}.{service}"))
                .map_err(|e| format!("invalid mDNS instance name {node:?}: {e}"))?,
            service: Name::parse(&service)
                .map_err(|e| format!("invalid mDNS service name {service:?}: {e}"))?,
            host: Name::parse(host).map_err(|e| format!("invalid host name {host:?}: {e}"))?,
            port: advertise.port(),
            ips: vec![advertise.ip()],
            txt: vec![txt],
        })
    }

    /// The replies to one received packet.
    fn handle(&self, packet: &[u8], from: SocketAddr) -> Vec<Reply> {
        let msg = match Message::parse(packet) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(target: "agent.mdns", "ignoring a malformed packet from {from}: {e}");
                return Vec::new();
            }
        };
        // Ignored: responses (QR), a non-zero opcode or rcode (RFC 6762 section 18), and,
        // as in Go, truncated queries (known answers to follow are not supported).
        const QR: u16 = 0x8000;
        const OPCODE: u16 = 0x7800;
        const TC: u16 = 0x0200;
        const RCODE: u16 = 0x000f;
        if msg.flags & (QR | OPCODE | TC | RCODE) != 0 {
            return Vec::new();
        }
        let mut multicast: Vec<Record> = Vec::new();
        let mut unicast: Vec<Record> = Vec::new();
        for q in &msg.questions {
            let recs = self.records(q);
            let list = if q.qclass & QU_BIT != 0 {
                &mut unicast
            } else {
                &mut multicast
            };
            // Each record once, whatever the case of the question's name: a query repeating
            // one question hundreds of times (compression pointers make each 6 bytes) must
            // not draw a reply many times its size, to the group or to a spoofed source.
            for r in recs {
                if !list.iter().any(|o| same_record(o, &r)) {
                    list.push(r);
                }
            }
        }
        let mut out = Vec::new();
        if !multicast.is_empty() {
            match encode_response(0, &multicast) {
                Ok(bytes) => out.push(Reply {
                    bytes,
                    // A one-shot querier (not on port 5353) only hears unicast.
                    multicast: from.port() == MDNS_PORT,
                }),
                Err(e) => tracing::debug!(target: "agent.mdns", "cannot encode answer: {e}"),
            }
        }
        if !unicast.is_empty() {
            match encode_response(msg.id, &unicast) {
                Ok(bytes) => out.push(Reply {
                    bytes,
                    multicast: false,
                }),
                Err(e) => tracing::debug!(target: "agent.mdns", "cannot encode answer: {e}"),
            }
        }
        out
    }

    /// hashicorp/mdns `MDNSService.Records`.
    fn records(&self, q: &Question) -> Vec<Record> {
        let ptr_like = q.qtype == TYPE_PTR || q.qtype == TYPE_ANY;
        if q.name.eq_ignore_case(&self.enumeration) {
            if !ptr_like {
                return Vec::new();
            }
            return vec![Record::new(
                q.name.clone(),
                RData::Ptr(self.service.clone()),
            )];
        }
        if q.name.eq_ignore_case(&self.service) {
            if !ptr_like {
                return Vec::new();
            }
            let mut v = vec![Record::new(
                q.name.clone(),
                RData::Ptr(self.instance.clone()),
            )];
            v.extend(self.instance_records(&self.instance, TYPE_ANY));
            return v;
        }
        if q.name.eq_ignore_case(&self.instance) {
            return self.instance_records(&q.name, q.qtype);
        }
        if q.name.eq_ignore_case(&self.host) && (q.qtype == TYPE_A || q.qtype == TYPE_AAAA) {
            return self.instance_records(&q.name, q.qtype);
        }
        Vec::new()
    }

    fn instance_records(&self, name: &Name, qtype: u16) -> Vec<Record> {
        match qtype {
            TYPE_ANY => {
                let mut v = self.instance_records(name, TYPE_SRV);
                v.extend(self.instance_records(name, TYPE_TXT));
                v
            }
            TYPE_A => self
                .ips
                .iter()
                .filter_map(|ip| v4_of(ip).map(|a| Record::new(self.host.clone(), RData::A(a))))
                .collect(),
            TYPE_AAAA => self
                .ips
                .iter()
                .filter_map(|ip| match ip {
                    IpAddr::V6(a) if v4_of(ip).is_none() => {
                        Some(Record::new(self.host.clone(), RData::Aaaa(*a)))
                    }
                    _ => None,
                })
                .collect(),
            TYPE_SRV => {
                let mut v = vec![Record::new(
                    name.clone(),
                    RData::Srv {
                        priority: 10,
                        weight: 1,
                        port: self.port,
                        target: self.host.clone(),
                    },
                )];
                v.extend(self.instance_records(name, TYPE_A));
                v.extend(self.instance_records(name, TYPE_AAAA));
                v
            }
            TYPE_TXT => vec![Record::new(name.clone(), RData::Txt(self.txt.clone()))],
            _ => Vec::new(),
        }
    }
}

/// IPv4 addresses, including IPv4-mapped IPv6 ones (Go's `To4`).
fn v4_of(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(a) => a.to_ipv4_mapped(),
    }
}

/// Whether two records are the same answer (owner names compared without case).
fn same_record(a: &Record, b: &Record) -> bool {
    a.rtype == b.rtype && a.class == b.class && a.data == b.data && a.name.eq_ignore_case(&b.name)
}

/// One packet through the codec, the responder and the querier's bookkeeping, for
/// [`crate::fuzzing::dns`].
pub(crate) fn fuzz_packet(packet: &[u8]) -> Result<crate::fuzzing::DnsReport, String> {
    let msg = Message::parse(packet)?;
    // Re-encoded with the packer (questions, then the three record sections).
    let reencoded = (|| {
        let mut p = Packer::new();
        p.header(
            msg.id,
            msg.flags,
            [
                msg.questions.len(),
                msg.answers.len(),
                msg.authorities.len(),
                msg.additionals.len(),
            ],
        )
        .ok()?;
        for q in &msg.questions {
            p.name(&q.name, true).ok()?;
            p.u16(q.qtype);
            p.u16(q.qclass);
        }
        for rr in msg
            .answers
            .iter()
            .chain(&msg.authorities)
            .chain(&msg.additionals)
        {
            p.record(rr).ok()?;
        }
        Some(p.buf)
    })();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 7946);
    let zone = Zone::new("node", "fuzz", "host", addr)?;
    let mut replies = Vec::new();
    for port in [MDNS_PORT, 40000] {
        let from = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), port);
        replies.extend(zone.handle(packet, from).into_iter().map(|r| r.bytes));
    }
    let mut entries = Entries::default();
    let absorbed = entries.absorb(&msg);
    Ok(crate::fuzzing::DnsReport {
        message: format!("{msg:?}"),
        reencoded,
        replies,
        complete: absorbed.complete,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
