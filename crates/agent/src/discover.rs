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
            _ = sleep_until_opt(quiet_at) => {
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

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
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
        let mut multicast = Vec::new();
        let mut unicast = Vec::new();
        for q in &msg.questions {
            let recs = self.records(q);
            if q.qclass & QU_BIT != 0 {
                unicast.extend(recs);
            } else {
                multicast.extend(recs);
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

// ---------------------------------------------------------------------------
// DNS messages
// ---------------------------------------------------------------------------

/// A domain name as labels (without the root label).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Name(Vec<Vec<u8>>);

impl Name {
    /// Parses a dotted name (the trailing dot is optional), as `miekg/dns` packs a plain
    /// string: each dot ends a label; empty or over-long labels are refused.
    fn parse(s: &str) -> Result<Name, String> {
        let s = s.strip_suffix('.').unwrap_or(s);
        if s.is_empty() {
            return Ok(Name(Vec::new()));
        }
        let labels: Vec<Vec<u8>> = s.split('.').map(|l| l.as_bytes().to_vec()).collect();
        let name = Name(labels);
        name.check()?;
        Ok(name)
    }

    fn check(&self) -> Result<(), String> {
        let mut total = 1usize;
        for l in &self.0 {
            if l.is_empty() {
                return Err("empty label".to_string());
            }
            if l.len() > 63 {
                return Err("label longer than 63 bytes".to_string());
            }
            total += l.len() + 1;
        }
        if total > 255 {
            return Err("name longer than 255 bytes".to_string());
        }
        Ok(())
    }

    /// `a.b.c.` (`.` for the root).
    fn dotted(&self) -> String {
        if self.0.is_empty() {
            return ".".to_string();
        }
        let mut s = String::new();
        for l in &self.0 {
            s.push_str(&String::from_utf8_lossy(l));
            s.push('.');
        }
        s
    }

    fn eq_ignore_case(&self, other: &Name) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Question {
    name: Name,
    qtype: u16,
    qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RData {
    Ptr(Name),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    },
    Txt(Vec<Vec<u8>>),
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    name: Name,
    rtype: u16,
    class: u16,
    ttl: u32,
    data: RData,
}

impl Record {
    /// One of our records: class IN (no cache-flush bit), TTL 120.
    fn new(name: Name, data: RData) -> Record {
        let rtype = match &data {
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::Txt(_) => TYPE_TXT,
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Other => 0,
        };
        Record {
            name,
            rtype,
            class: CLASS_IN,
            ttl: TTL,
            data,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    id: u16,
    flags: u16,
    questions: Vec<Question>,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("overflow")?;
        let b = self.buf.get(self.pos..end).ok_or("truncated message")?;
        self.pos = end;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self) -> Result<Name, String> {
        let (name, next) = read_name(self.buf, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Reads a possibly compressed name at `start`; returns it and the offset after it.
fn read_name(buf: &[u8], start: usize) -> Result<(Name, usize), String> {
    let mut labels = Vec::new();
    let mut pos = start;
    let mut next = None;
    let mut jumps = 0;
    let mut total = 1usize;
    loop {
        let len = *buf.get(pos).ok_or("truncated name")?;
        match len & 0xc0 {
            0x00 => {
                if len == 0 {
                    return Ok((Name(labels), next.unwrap_or(pos + 1)));
                }
                let l = usize::from(len);
                let label = buf.get(pos + 1..pos + 1 + l).ok_or("truncated label")?;
                total += l + 1;
                if total > 255 {
                    return Err("name too long".to_string());
                }
                labels.push(label.to_vec());
                pos += 1 + l;
            }
            0xc0 => {
                let lo = *buf.get(pos + 1).ok_or("truncated pointer")?;
                jumps += 1;
                if jumps > 64 {
                    return Err("too many compression pointers".to_string());
                }
                if next.is_none() {
                    next = Some(pos + 2);
                }
                pos = (usize::from(len & 0x3f) << 8) | usize::from(lo);
            }
            _ => return Err("bad label type".to_string()),
        }
    }
}

impl Message {
    fn parse(buf: &[u8]) -> Result<Message, String> {
        let mut r = Reader { buf, pos: 0 };
        let id = r.u16()?;
        let flags = r.u16()?;
        let qd = r.u16()?;
        let an = r.u16()?;
        let ns = r.u16()?;
        let ar = r.u16()?;
        let mut questions = Vec::new();
        for _ in 0..qd {
            let name = r.name()?;
            let qtype = r.u16()?;
            let qclass = r.u16()?;
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
        }
        let mut sections = [Vec::new(), Vec::new(), Vec::new()];
        for (section, count) in sections.iter_mut().zip([an, ns, ar]) {
            for _ in 0..count {
                section.push(read_record(&mut r)?);
            }
        }
        let [answers, authorities, additionals] = sections;
        Ok(Message {
            id,
            flags,
            questions,
            answers,
            authorities,
            additionals,
        })
    }
}

fn read_record(r: &mut Reader<'_>) -> Result<Record, String> {
    let name = r.name()?;
    let rtype = r.u16()?;
    let class = r.u16()?;
    let ttl = r.u32()?;
    let rdlen = usize::from(r.u16()?);
    let start = r.pos;
    let rdata = r.bytes(rdlen)?;
    let end = r.pos;
    let data = match rtype {
        TYPE_PTR => {
            let (n, after) = read_name(r.buf, start)?;
            if after > end {
                return Err("PTR overruns its data".to_string());
            }
            RData::Ptr(n)
        }
        TYPE_SRV => {
            let f = rdata.get(..6).ok_or("short SRV")?;
            let (target, after) = read_name(r.buf, start + 6)?;
            if after > end {
                return Err("SRV overruns its data".to_string());
            }
            RData::Srv {
                priority: u16::from_be_bytes([f[0], f[1]]),
                weight: u16::from_be_bytes([f[2], f[3]]),
                port: u16::from_be_bytes([f[4], f[5]]),
                target,
            }
        }
        TYPE_TXT => {
            let mut strings = Vec::new();
            let mut p = 0usize;
            while p < rdata.len() {
                let l = usize::from(rdata[p]);
                let s = rdata.get(p + 1..p + 1 + l).ok_or("TXT overruns its data")?;
                strings.push(s.to_vec());
                p += 1 + l;
            }
            RData::Txt(strings)
        }
        TYPE_A => {
            let b: [u8; 4] = rdata.try_into().map_err(|_| "bad A record")?;
            RData::A(Ipv4Addr::from(b))
        }
        TYPE_AAAA => {
            let b: [u8; 16] = rdata.try_into().map_err(|_| "bad AAAA record")?;
            RData::Aaaa(Ipv6Addr::from(b))
        }
        _ => RData::Other,
    };
    Ok(Record {
        name,
        rtype,
        class,
        ttl,
        data,
    })
}

/// Packs messages the way `miekg/dns` does with compression on: every name's suffixes are
/// remembered where they were written (offsets below 16384), owner names and PTR targets
/// are compressed against them, SRV targets are written in full (RFC 2782) but remembered.
struct Packer {
    buf: Vec<u8>,
    seen: HashMap<Vec<Vec<u8>>, u16>,
}

impl Packer {
    fn new() -> Packer {
        Packer {
            buf: Vec::with_capacity(512),
            seen: HashMap::new(),
        }
    }

    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn name(&mut self, name: &Name, compress: bool) -> Result<(), String> {
        name.check()?;
        for i in 0..name.0.len() {
            let suffix = &name.0[i..];
            if let Some(&p) = self.seen.get(suffix) {
                if compress {
                    self.u16(0xc000 | p);
                    return Ok(());
                }
            } else if let Ok(off) = u16::try_from(self.buf.len()) {
                if off < 0x4000 {
                    self.seen.insert(suffix.to_vec(), off);
                }
            }
            let label = &name.0[i];
            self.buf
                .push(u8::try_from(label.len()).map_err(|_| "label too long")?);
            self.buf.extend_from_slice(label);
        }
        self.buf.push(0);
        Ok(())
    }

    fn record(&mut self, rr: &Record) -> Result<(), String> {
        self.name(&rr.name, true)?;
        self.u16(rr.rtype);
        self.u16(rr.class);
        self.buf.extend_from_slice(&rr.ttl.to_be_bytes());
        let len_at = self.buf.len();
        self.u16(0);
        match &rr.data {
            RData::Ptr(n) => self.name(n, true)?,
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                self.u16(*priority);
                self.u16(*weight);
                self.u16(*port);
                self.name(target, false)?;
            }
            RData::Txt(strings) => {
                for s in strings {
                    self.buf
                        .push(u8::try_from(s.len()).map_err(|_| "TXT string too long")?);
                    self.buf.extend_from_slice(s);
                }
            }
            RData::A(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Aaaa(a) => self.buf.extend_from_slice(&a.octets()),
            RData::Other => {}
        }
        let rdlen = u16::try_from(self.buf.len() - len_at - 2).map_err(|_| "record too long")?;
        self.buf[len_at..len_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        Ok(())
    }

    fn header(&mut self, id: u16, flags: u16, counts: [usize; 4]) -> Result<(), String> {
        self.u16(id);
        self.u16(flags);
        for c in counts {
            self.u16(u16::try_from(c).map_err(|_| "too many records")?);
        }
        Ok(())
    }
}

/// An authoritative response (`0x8400`) with `answers` in the Answer section.
fn encode_response(id: u16, answers: &[Record]) -> Result<Vec<u8>, String> {
    let mut p = Packer::new();
    p.header(id, 0x8400, [0, answers.len(), 0, 0])?;
    for rr in answers {
        p.record(rr)?;
    }
    Ok(p.buf)
}

/// A standard query (flags 0, no recursion desired) with one PTR question.
fn encode_query(id: u16, name: &Name, unicast: bool) -> Vec<u8> {
    let mut p = Packer::new();
    let _ = p.header(id, 0, [1, 0, 0, 0]);
    if p.name(name, true).is_err() {
        return Vec::new();
    }
    p.u16(TYPE_PTR);
    p.u16(if unicast { CLASS_IN | QU_BIT } else { CLASS_IN });
    p.buf
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Frame 1 of vectors/mdns_capture.txt (UDP payload): Go's query.
    const GO_QUERY: &str = "70cd 0000 0001 0000 0000 0000 0c5f 7365 7266 5f74 6573 7463 6c04
        5f74 6370 056c 6f63 616c 0000 0c00 01";
    /// Frame 2 (UDP payload): Go's answer for node md1, port 7959, host vm, 127.0.0.1.
    const GO_ANSWER: &str = "0000 8400 0000 0004 0000 0000 0c5f 7365 7266 5f74 6573 7463 6c04
        5f74 6370 056c 6f63 616c 0000 0c00 0100 0000 7800 0603 6d64 31c0 0cc0 2f00 2100 0100
        0000 7800 0a00 0a00 011f 1702 766d 00c0 4700 0100 0100 0000 7800 047f 0000 01c0 2f00
        1000 0100 0000 7800 1615 5365 7266 2027 7465 7374 636c 2720 636c 7573 7465 72";

    fn md1() -> Zone {
        Zone::new("md1", "testcl", "vm.", "127.0.0.1:7959".parse().unwrap()).unwrap()
    }

    #[test]
    fn answer_is_byte_identical_to_go() {
        let from: SocketAddr = "192.0.2.2:33175".parse().unwrap();
        let replies = md1().handle(&hex(GO_QUERY), from);
        assert_eq!(
            replies,
            vec![Reply {
                bytes: hex(GO_ANSWER),
                multicast: false
            }]
        );
    }

    #[test]
    fn query_is_byte_identical_to_go() {
        let name = Name::parse(&service_name("testcl")).unwrap();
        assert_eq!(encode_query(0x70cd, &name, false), hex(GO_QUERY));
    }

    #[test]
    fn go_answer_gives_the_host() {
        let msg = Message::parse(&hex(GO_ANSWER)).unwrap();
        assert_eq!(msg.answers.len(), 4);
        assert!(msg.answers.iter().all(|r| r.ttl == 120 && r.class == 1));
        let mut e = Entries::default();
        let out = e.absorb(&msg);
        assert_eq!(out.complete, vec!["127.0.0.1:7959".parse().unwrap()]);
        assert!(out.incomplete.is_none());
        // The same answer again (e.g. over IPv6) is not reported twice.
        assert!(e.absorb(&msg).complete.is_empty());
    }

    #[test]
    fn answers_from_other_layouts() {
        // mdns-sd / avahi style: PTR as answer, the rest as additional records with the
        // cache-flush bit, address last.
        let z = Zone::new("n2", "c", "h.local.", "[fd00::2]:7000".parse().unwrap()).unwrap();
        let mut recs = z.records(&Question {
            name: Name::parse("_serf_c._tcp.local.").unwrap(),
            qtype: TYPE_PTR,
            qclass: 1,
        });
        for r in recs.iter_mut().skip(1) {
            r.class |= 0x8000;
        }
        let ptr = recs.remove(0);
        let aaaa = recs.remove(1);
        recs.push(aaaa);
        let mut p = Packer::new();
        p.header(0, 0x8400, [0, 1, 0, recs.len()]).unwrap();
        p.record(&ptr).unwrap();
        for r in &recs {
            p.record(r).unwrap();
        }
        let msg = Message::parse(&p.buf).unwrap();
        let out = Entries::default().absorb(&msg);
        assert_eq!(out.complete, vec!["[fd00::2]:7000".parse().unwrap()]);

        // Only a PTR: incomplete, so the instance is asked for.
        let mut p = Packer::new();
        p.header(0, 0x8400, [0, 1, 0, 0]).unwrap();
        p.record(&ptr).unwrap();
        let out = Entries::default().absorb(&Message::parse(&p.buf).unwrap());
        assert!(out.complete.is_empty());
        assert_eq!(out.incomplete.as_deref(), Some("n2._serf_c._tcp.local."));
    }

    fn q(name: &str, qtype: u16) -> Question {
        Question {
            name: Name::parse(name).unwrap(),
            qtype,
            qclass: 1,
        }
    }

    fn types(recs: &[Record]) -> Vec<u16> {
        recs.iter().map(|r| r.rtype).collect()
    }

    #[test]
    fn records_follow_hashicorp_mdns() {
        let z = Zone::new("md1", "testcl", "vm.", "10.0.0.1:7946".parse().unwrap()).unwrap();
        let svc = "_serf_testcl._tcp.local.";
        let inst = "md1._serf_testcl._tcp.local.";
        assert_eq!(types(&z.records(&q(svc, TYPE_PTR))), [12, 33, 1, 16]);
        assert_eq!(types(&z.records(&q(svc, TYPE_ANY))), [12, 33, 1, 16]);
        assert!(z.records(&q(svc, TYPE_SRV)).is_empty());
        assert_eq!(
            types(&z.records(&q("_SERF_testcl._TCP.local", TYPE_PTR))),
            [12, 33, 1, 16]
        );
        assert_eq!(types(&z.records(&q(inst, TYPE_ANY))), [33, 1, 16]);
        assert_eq!(types(&z.records(&q(inst, TYPE_SRV))), [33, 1]);
        assert_eq!(types(&z.records(&q(inst, TYPE_TXT))), [16]);
        assert_eq!(types(&z.records(&q(inst, TYPE_A))), [1]);
        assert!(z.records(&q(inst, TYPE_AAAA)).is_empty());
        assert!(z.records(&q(inst, TYPE_PTR)).is_empty());
        assert_eq!(types(&z.records(&q("vm.", TYPE_A))), [1]);
        assert!(z.records(&q("vm.", TYPE_TXT)).is_empty());
        let e = z.records(&q("_services._dns-sd._udp.local.", TYPE_PTR));
        assert_eq!(e[0].data, RData::Ptr(Name::parse(svc).unwrap()));
        assert!(z
            .records(&q("_serf_other._tcp.local.", TYPE_PTR))
            .is_empty());
        // An IPv6 advertise address gives an AAAA record instead.
        let z6 = Zone::new("md1", "testcl", "vm.", "[fd00::1]:7946".parse().unwrap()).unwrap();
        assert_eq!(types(&z6.records(&q(svc, TYPE_PTR))), [12, 33, 28, 16]);
        // Dotted node names give more labels, as in Go.
        let zd = Zone::new("a.b", "c", "h.", "10.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!(zd.instance.0.len(), 5);
    }

    #[test]
    fn reply_destinations_and_ids() {
        let z = md1();
        let name = Name::parse(&service_name("testcl")).unwrap();
        // QM from port 5353: multicast, ID 0.
        let r = z.handle(
            &encode_query(7, &name, false),
            "10.0.0.9:5353".parse().unwrap(),
        );
        assert_eq!(r.len(), 1);
        assert!(r[0].multicast);
        assert_eq!(&r[0].bytes[..2], &[0, 0]);
        // QU: unicast with the query's ID.
        let r = z.handle(
            &encode_query(7, &name, true),
            "10.0.0.9:5353".parse().unwrap(),
        );
        assert_eq!(r.len(), 1);
        assert!(!r[0].multicast);
        assert_eq!(&r[0].bytes[..2], &[0, 7]);
        // Responses, unknown names: nothing.
        assert!(z
            .handle(&hex(GO_ANSWER), "10.0.0.9:5353".parse().unwrap())
            .is_empty());
        let other = Name::parse("_serf_x._tcp.local.").unwrap();
        assert!(z
            .handle(
                &encode_query(7, &other, false),
                "10.0.0.9:1".parse().unwrap()
            )
            .is_empty());
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(Zone::new("", "c", "h.", "10.0.0.1:1".parse().unwrap()).is_err());
        assert!(Zone::new("n", "c", "h.", "10.0.0.1:0".parse().unwrap()).is_err());
        let long = "x".repeat(64);
        assert!(Zone::new(&long, "c", "h.", "10.0.0.1:1".parse().unwrap()).is_err());
        assert!(Zone::new("a..b", "c", "h.", "10.0.0.1:1".parse().unwrap()).is_err());
    }

    #[test]
    fn malformed_input_never_panics() {
        let z = md1();
        let from: SocketAddr = "10.0.0.9:4000".parse().unwrap();
        for packet in [hex(GO_QUERY), hex(GO_ANSWER)] {
            for cut in 0..packet.len() {
                let _ = z.handle(&packet[..cut], from);
                if let Ok(m) = Message::parse(&packet[..cut]) {
                    let _ = Entries::default().absorb(&m);
                }
            }
            for i in 0..packet.len() {
                for v in [0x00, 0x3f, 0xc0, 0xff] {
                    let mut p = packet.clone();
                    p[i] = v;
                    let _ = z.handle(&p, from);
                    if let Ok(m) = Message::parse(&p) {
                        let _ = Entries::default().absorb(&m);
                    }
                }
            }
        }
        // A pointer loop.
        let mut p = hex("0000 0000 0001 0000 0000 0000");
        p.extend_from_slice(&[0xc0, 12, 0, 12, 0, 1]);
        assert!(Message::parse(&p).is_err());
    }

    #[tokio::test]
    async fn batches_after_quiet_and_never_repeats() {
        let joins: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let j = joins.clone();
        let p = polls.clone();
        let task = tokio::spawn(discover_loop(
            move |tx: mpsc::Sender<SocketAddr>| {
                p.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    for a in ["10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.1:7946"] {
                        let _ = tx.send(a.parse().unwrap()).await;
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    for a in ["10.0.0.2:7946", "10.0.0.3:7946"] {
                        let _ = tx.send(a.parse().unwrap()).await;
                    }
                });
            },
            move |addrs: Vec<String>| {
                let j = j.clone();
                async move {
                    let n = addrs.len();
                    j.lock().unwrap().push(addrs);
                    Ok(n)
                }
            },
            stop,
        ));
        tokio::time::sleep(Duration::from_millis(900)).await;
        let _ = stop_tx.send(true);
        task.await.unwrap();
        assert_eq!(polls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            *joins.lock().unwrap(),
            vec![
                vec!["10.0.0.1:7946".to_string(), "10.0.0.2:7946".to_string()],
                vec!["10.0.0.3:7946".to_string()],
            ]
        );
    }
}
