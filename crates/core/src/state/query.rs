//! Queries (docs/serf-protocol.md sections 3.5-3.10, 9, 10, 12): issuing, receiving, filters,
//! acks, responses, relays, the response collector, and internal `_serf_` queries.

use super::{Event, Member, MemberStatus, SerfState};
use serf_wire::msgpack::{Reader, Writer};
use serf_wire::serf::{serf_type, Query, QueryResponse, SerfMessage};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tracing::{debug, warn};

/// Query flag: acks requested.
pub const FLAG_ACK: u32 = 1;
/// Query flag: receivers must not re-gossip.
pub const FLAG_NO_BROADCAST: u32 = 2;
/// Serf's `QueryTimeoutMult`.
pub const QUERY_TIMEOUT_MULT: u32 = 16;
/// Most received queries kept answerable at once.
pub const MAX_INBOUND_QUERIES: usize = 4096;
/// Longest a received query stays answerable, whatever its timeout says.
pub const MAX_INBOUND_QUERY_TIME: Duration = Duration::from_secs(3600);
/// How long a received query is remembered after its deadline (bounded by
/// [`MAX_INBOUND_QUERIES`]).
pub const INBOUND_QUERY_GRACE: Duration = Duration::from_secs(60);
/// Prefix of internal query names.
pub const INTERNAL_PREFIX: &str = "_serf_";

/// How to run a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    /// Only these nodes answer (empty: all).
    pub filter_nodes: Vec<String>,
    /// Only nodes whose tag matches the (unanchored) regex answer.
    pub filter_tags: Vec<(String, String)>,
    /// Ask for acks.
    pub request_ack: bool,
    /// Extra relays for responses.
    pub relay_factor: u8,
    /// Zero: Go's default (`GossipInterval * 16 * ceil(log10(N+1))`).
    pub timeout: Duration,
    /// Beyond Go: finish as soon as every node expected to answer has answered (and acked,
    /// when acks were requested).
    pub finish_early: bool,
}

/// A query we issued and are collecting answers for.
#[derive(Debug)]
pub(crate) struct Collector {
    id: u32,
    deadline: Duration,
    acks: HashSet<String>,
    responses: HashSet<String>,
    /// Nodes expected to answer (for `finish_early`).
    expected: Option<HashSet<String>>,
    want_acks: bool,
}

/// A query we received and may respond to.
#[derive(Debug)]
pub(crate) struct Inbound {
    ltime: u64,
    source: SocketAddr,
    source_node: String,
    deadline: Duration,
    relay_factor: u8,
    responded: bool,
}

/// Query state kept by [`SerfState`].
#[derive(Debug, Default)]
pub(crate) struct Queries {
    pub(crate) collectors: HashMap<u64, Collector>,
    pub(crate) inbound: HashMap<(u64, u32), Inbound>,
    /// Recent query ids per LTime slot (de-duplication ring).
    pub(crate) ring: Vec<Option<(u64, Vec<u32>)>>,
    pub(crate) min_time: u64,
    /// Internal key operations waiting for the keyring (applied by `Serf`).
    pub(crate) key_ops: Vec<KeyOp>,
}

/// A key-management query received, to apply to the memberlist keyring.
#[derive(Debug, Clone)]
pub(crate) struct KeyOp {
    pub(crate) kind: KeyOpKind,
    pub(crate) key: Vec<u8>,
    pub(crate) ltime: u64,
    pub(crate) id: u32,
    pub(crate) decode_failed: bool,
}

/// Which key operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOpKind {
    /// `_serf_install-key`
    Install,
    /// `_serf_use-key`
    Use,
    /// `_serf_remove-key`
    Remove,
    /// `_serf_list-keys`
    List,
}

impl KeyOpKind {
    /// The internal query name.
    pub fn query_name(self) -> &'static str {
        match self {
            KeyOpKind::Install => "_serf_install-key",
            KeyOpKind::Use => "_serf_use-key",
            KeyOpKind::Remove => "_serf_remove-key",
            KeyOpKind::List => "_serf_list-keys",
        }
    }
}

/// Encodes a filter list element: node names.
pub fn node_filter(nodes: &[String]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[0]).array(nodes.len());
    for n in nodes {
        w.str(n);
    }
    w.into_vec()
}

/// Encodes a filter list element: tag regex.
pub fn tag_filter(tag: &str, expr: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[1]).map(2).str("Expr").str(expr).str("Tag").str(tag);
    w.into_vec()
}

/// Encodes a key request payload (`07` + `{Key}`).
pub fn key_request(key: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[serf_type::KEY_REQUEST])
        .map(1)
        .str("Key")
        .bytes(key);
    w.into_vec()
}

/// A key response (`08` + `{Keys, Message, PrimaryKey, Result}`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyResponse {
    /// Success.
    pub result: bool,
    /// Error or info text.
    pub message: String,
    /// Installed keys, base64 (list only).
    pub keys: Vec<String>,
    /// Primary key, base64 (list only).
    pub primary_key: String,
}

impl KeyResponse {
    /// Encodes with the type byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&[serf_type::KEY_RESPONSE]).map(4).str("Keys");
        if self.keys.is_empty() {
            w.nil();
        } else {
            w.array(self.keys.len());
            for k in &self.keys {
                w.str(k);
            }
        }
        w.str("Message")
            .str(&self.message)
            .str("PrimaryKey")
            .str(&self.primary_key);
        w.str("Result").bool(self.result);
        w.into_vec()
    }

    /// Decodes (with the type byte).
    pub fn decode(buf: &[u8]) -> Result<Self, String> {
        let (&t, body) = buf.split_first().ok_or("empty key response")?;
        if t != serf_type::KEY_RESPONSE {
            return Err(format!("Invalid key query response type: {t}"));
        }
        let mut k = KeyResponse::default();
        Reader::new(body)
            .struct_fields(|key, r| {
                match key {
                    b"Keys" => k.keys = r.str_array()?,
                    b"Message" => k.message = r.string()?,
                    b"PrimaryKey" => k.primary_key = r.string()?,
                    b"Result" => k.result = r.bool()?,
                    _ => return Ok(false),
                }
                Ok(true)
            })
            .map_err(|e| format!("Failed to decode key query response: {e}"))?;
        Ok(k)
    }
}

fn decode_key_request(payload: &[u8]) -> Option<Vec<u8>> {
    let (&t, body) = payload.split_first()?;
    if t != serf_type::KEY_REQUEST {
        return None;
    }
    let mut key = Vec::new();
    Reader::new(body)
        .struct_fields(|k, r| {
            if k == b"Key" {
                key = r.byte_vec()?;
                return Ok(true);
            }
            Ok(false)
        })
        .ok()?;
    Some(key)
}

/// Encodes a Serf `Member` as the conflict response wants it (Status as an integer).
fn encode_member(w: &mut Writer, m: &Member) {
    let status = match m.status {
        MemberStatus::None => 0,
        MemberStatus::Alive => 1,
        MemberStatus::Leaving => 2,
        MemberStatus::Left => 3,
        MemberStatus::Failed => 4,
    };
    w.map(11)
        .str("Addr")
        .bytes(&serf_wire::ip_to_bytes(&m.addr));
    w.str("DelegateCur")
        .uint(u64::from(m.vsn[5]))
        .str("DelegateMax")
        .uint(u64::from(m.vsn[4]));
    w.str("DelegateMin")
        .uint(u64::from(m.vsn[3]))
        .str("Name")
        .str(&m.name);
    w.str("Port")
        .uint(u64::from(m.port))
        .str("ProtocolCur")
        .uint(u64::from(m.vsn[2]));
    w.str("ProtocolMax")
        .uint(u64::from(m.vsn[1]))
        .str("ProtocolMin")
        .uint(u64::from(m.vsn[0]));
    w.str("Status").uint(status);
    w.str("Tags").str_map(
        m.tags.len(),
        m.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
}

/// Decodes a conflict response: `Some(None)` for a type-6 payload without a usable address
/// (a nil `Member`, which Go still counts as a response), `Some(Some((ip, port)))` otherwise;
/// `None` if it is not a conflict response at all.
pub fn decode_conflict_member(buf: &[u8]) -> Option<Option<(IpAddr, u16)>> {
    let (&t, body) = buf.split_first()?;
    if t != serf_type::CONFLICT_RESPONSE {
        return None;
    }
    let (mut addr, mut port) = (None, 0u16);
    let mut r = Reader::new(body);
    if r.try_nil().unwrap_or(false) {
        return Some(None);
    }
    let ok = r
        .struct_fields(|k, r| {
            match k {
                b"Addr" => addr = serf_wire::ip_from_bytes(r.bytes()?).ok(),
                b"Port" => port = r.u16()?,
                _ => return Ok(false),
            }
            Ok(true)
        })
        .is_ok();
    if !ok {
        return None;
    }
    Some(addr.map(|a| (a, port)))
}

impl SerfState {
    fn tag_value(&self, tag: &str) -> &str {
        self.cfg
            .tags
            .iter()
            .find(|(k, _)| k == tag)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Go's `shouldProcessQuery`.
    fn filters_match(&self, filters: &[Vec<u8>]) -> bool {
        for f in filters {
            let Some((&t, body)) = f.split_first() else {
                return false;
            };
            let mut r = Reader::new(body);
            match t {
                0 => match r.str_array() {
                    Ok(names) if names.contains(&self.name) => {}
                    _ => return false,
                },
                1 => {
                    let (mut expr, mut tag) = (String::new(), String::new());
                    let ok = r
                        .struct_fields(|k, r| {
                            match k {
                                b"Expr" => expr = r.string()?,
                                b"Tag" => tag = r.string()?,
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })
                        .is_ok();
                    if !ok {
                        return false;
                    }
                    match serf_gocompat::regex::compile(&expr) {
                        Ok(re) if re.is_match(self.tag_value(&tag)) => {}
                        Ok(_) => return false,
                        Err(e) => {
                            warn!("failed to compile filter regex ({expr}): {e}");
                            return false;
                        }
                    }
                }
                other => {
                    warn!("query has unrecognized filter type: {other}");
                    return false;
                }
            }
        }
        true
    }

    /// Which known members would pass the filters (for finishing early).
    fn expected_responders(&self, params: &QueryParams) -> HashSet<String> {
        self.members
            .values()
            .filter(|m| m.status == MemberStatus::Alive)
            .filter(|m| {
                params.filter_nodes.is_empty() || params.filter_nodes.iter().any(|n| n == m.name())
            })
            .filter(|m| {
                params.filter_tags.iter().all(|(tag, expr)| {
                    let v = m
                        .tags()
                        .iter()
                        .find(|(k, _)| k == tag)
                        .map_or("", |(_, v)| v.as_str());
                    serf_gocompat::regex::compile(expr).is_ok_and(|re| re.is_match(v))
                })
            })
            .map(|m| m.name().to_string())
            .collect()
    }

    /// Go's default query timeout for `n` live members.
    pub fn default_query_timeout(&self, gossip_interval: Duration, n: usize) -> Duration {
        let scale = ((n as f64) + 1.0).log10().ceil().max(1.0) as u32;
        gossip_interval * QUERY_TIMEOUT_MULT * scale
    }

    /// Issues a query: returns `(ltime, id, deadline)`. `timeout` must be resolved.
    pub(crate) fn start_query(
        &mut self,
        now: Duration,
        name: &str,
        payload: &[u8],
        params: &QueryParams,
        timeout: Duration,
    ) -> Result<(u64, u32, Duration), crate::Error> {
        if self.cfg.protocol < 4 {
            return Err(crate::Error::QueriesNotSupported);
        }
        let mut filters = Vec::new();
        if !params.filter_nodes.is_empty() {
            filters.push(node_filter(&params.filter_nodes));
        }
        for (tag, expr) in &params.filter_tags {
            filters.push(tag_filter(tag, expr));
        }
        let ltime = self.query_clock.time();
        let id = (self.rng.next_u64() & 0x7fff_ffff) as u32;
        let q = Query {
            ltime,
            id,
            addr: serf_wire::ip_to_bytes(&self.advertise.ip()),
            port: self.advertise.port(),
            source_node: self.name.clone(),
            filters,
            flags: if params.request_ack { FLAG_ACK } else { 0 },
            relay_factor: params.relay_factor,
            timeout: i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            name: name.to_string(),
            payload: payload.to_vec(),
        };
        let raw = SerfMessage::Query(q.clone()).encode();
        if raw.len() > self.cfg.query_size_limit {
            return Err(crate::Error::QueryTooLarge {
                limit: self.cfg.query_size_limit,
            });
        }
        let deadline = now + timeout;
        let expected = if params.finish_early {
            Some(self.expected_responders(params))
        } else {
            None
        };
        self.queries.collectors.insert(
            ltime,
            Collector {
                id,
                deadline,
                acks: HashSet::new(),
                responses: HashSet::new(),
                expected,
                want_acks: params.request_ack,
            },
        );
        if self.handle_query(&q) {
            self.query_queue_push(raw);
        }
        Ok((ltime, id, deadline))
    }

    pub(crate) fn query_queue_push(&mut self, raw: Vec<u8>) {
        self.query_queue.queue(None, raw, None);
        self.query_queue.prune(self.cfg.max_queue_depth);
        self.gossip_wanted |= self.query_queue.len() <= super::EAGER_BACKLOG_MAX;
    }

    /// Receives a query; returns whether to re-broadcast it.
    pub(crate) fn handle_query(&mut self, q: &Query) -> bool {
        if self.query_clock.witness(q.ltime) {
            // As for user events: a wrapped clock must not hide new queries.
            warn!("query clock wrapped past its maximum (query {})", q.name);
            self.queries.min_time = 0;
        }
        if q.ltime < self.queries.min_time {
            return false;
        }
        let n = self.queries.ring.len() as u64;
        let cur = self.query_clock.time();
        if cur > n && q.ltime < cur - n {
            warn!(
                "received old query {} from time {} (current: {cur})",
                q.name, q.ltime
            );
            return false;
        }
        let idx = (q.ltime % n) as usize;
        match &mut self.queries.ring[idx] {
            Some((lt, ids)) if *lt == q.ltime => {
                if ids.contains(&q.id) {
                    return false;
                }
                ids.push(q.id);
            }
            slot => *slot = Some((q.ltime, vec![q.id])),
        }
        metrics::counter!("serf.queries").increment(1);
        metrics::counter!(format!("serf.queries.{}", q.name)).increment(1);
        let rebroadcast = q.flags & FLAG_NO_BROADCAST == 0;
        if !self.filters_match(&q.filters) {
            return rebroadcast;
        }
        let Ok(ip) = serf_wire::ip_from_bytes(&q.addr) else {
            debug!("query without a valid source address");
            return rebroadcast;
        };
        let source = SocketAddr::new(ip, q.port);
        if q.flags & FLAG_ACK != 0 {
            let ack = QueryResponse {
                ltime: q.ltime,
                id: q.id,
                from: self.name.clone(),
                flags: FLAG_ACK,
                payload: vec![],
            };
            let raw = SerfMessage::QueryResponse(ack).encode();
            self.send_response(source, &q.source_node, raw, q.relay_factor);
        }
        // The timeout comes from the wire: keep the record no longer than an hour, and keep
        // at most MAX_INBOUND_QUERIES of them (the oldest deadline goes first).
        let timeout =
            Duration::from_nanos(u64::try_from(q.timeout).unwrap_or(0)).min(MAX_INBOUND_QUERY_TIME);
        let deadline = self.now + timeout;
        if self.queries.inbound.len() >= MAX_INBOUND_QUERIES {
            if let Some(k) = self
                .queries
                .inbound
                .iter()
                .min_by_key(|(_, v)| v.deadline)
                .map(|(k, _)| *k)
            {
                self.queries.inbound.remove(&k);
            }
        }
        self.queries.inbound.insert(
            (q.ltime, q.id),
            Inbound {
                ltime: q.ltime,
                source,
                source_node: q.source_node.clone(),
                deadline,
                relay_factor: q.relay_factor,
                responded: false,
            },
        );
        if let Some(suffix) = q.name.strip_prefix(INTERNAL_PREFIX) {
            self.handle_internal_query(suffix, q);
        } else {
            self.events.push_back(Event::Query {
                ltime: q.ltime,
                id: q.id,
                name: q.name.clone(),
                payload: q.payload.clone(),
                source_node: q.source_node.clone(),
                deadline,
            });
        }
        rebroadcast
    }

    fn handle_internal_query(&mut self, suffix: &str, q: &Query) {
        match suffix {
            "ping" => {}
            "conflict" => {
                let node = String::from_utf8_lossy(&q.payload).into_owned();
                if node == self.name {
                    return;
                }
                let mut w = Writer::new();
                w.raw(&[serf_type::CONFLICT_RESPONSE]);
                match self.members.get(node.as_str()) {
                    Some(m) => encode_member(&mut w, &m.member()),
                    None => {
                        w.nil();
                    }
                }
                let _ = self.respond(q.ltime, q.id, w.into_vec());
            }
            "install-key" | "use-key" | "remove-key" | "list-keys" => {
                let kind = match suffix {
                    "install-key" => KeyOpKind::Install,
                    "use-key" => KeyOpKind::Use,
                    "remove-key" => KeyOpKind::Remove,
                    _ => KeyOpKind::List,
                };
                let key = decode_key_request(&q.payload);
                self.queries.key_ops.push(KeyOp {
                    kind,
                    decode_failed: key.is_none(),
                    key: key.unwrap_or_default(),
                    ltime: q.ltime,
                    id: q.id,
                });
            }
            other => warn!("Unhandled internal query '{other}'"),
        }
    }

    /// Sends a response (or ack) to the query's source, plus relays.
    fn send_response(
        &mut self,
        source: SocketAddr,
        source_node: &str,
        raw: Vec<u8>,
        relay_factor: u8,
    ) {
        self.direct.push_back((source, raw.clone()));
        if relay_factor == 0 || self.members.len() < usize::from(relay_factor) + 1 {
            return;
        }
        let relay = SerfMessage::Relay {
            dest_ip: serf_wire::ip_to_bytes(&source.ip()),
            dest_port: source.port(),
            dest_name: source_node.to_string(),
            inner: raw,
        }
        .encode();
        if relay.len() > self.cfg.query_response_size_limit {
            warn!(
                "relayed response exceeds limit of {} bytes",
                self.cfg.query_response_size_limit
            );
            return;
        }
        let mut cands: Vec<SocketAddr> = self
            .members
            .values()
            .filter(|m| {
                m.name() != self.name && m.status == MemberStatus::Alive && m.info.vsn[1] >= 5
            })
            .map(|m| SocketAddr::new(m.info.addr, m.info.port))
            .collect();
        cands.sort();
        for _ in 0..relay_factor {
            if cands.is_empty() {
                break;
            }
            let i = self.rng.below(cands.len());
            let to = cands.swap_remove(i);
            self.direct.push_back((to, relay.clone()));
        }
    }

    /// Responds to a received query (once, before its deadline, within the size limit).
    pub fn respond(&mut self, ltime: u64, id: u32, payload: Vec<u8>) -> Result<(), crate::Error> {
        let limit = self.cfg.query_response_size_limit;
        let now = self.now;
        let name = self.name.clone();
        let Some(q) = self.queries.inbound.get_mut(&(ltime, id)) else {
            return Err(crate::Error::NoPendingQuery);
        };
        if q.responded {
            return Err(crate::Error::AlreadyResponded);
        }
        if now > q.deadline {
            return Err(crate::Error::ResponsePastDeadline);
        }
        let raw = SerfMessage::QueryResponse(QueryResponse {
            ltime: q.ltime,
            id,
            from: name,
            flags: 0,
            payload,
        })
        .encode();
        if raw.len() > limit {
            return Err(crate::Error::ResponseTooLarge { limit });
        }
        q.responded = true;
        let (source, source_node, rf) = (q.source, q.source_node.clone(), q.relay_factor);
        self.send_response(source, &source_node, raw, rf);
        Ok(())
    }

    /// A response or ack to one of our queries arrived.
    pub(crate) fn handle_query_response(&mut self, r: QueryResponse) {
        let Some(c) = self.queries.collectors.get_mut(&r.ltime) else {
            debug!(
                "reply for non-running query (LTime: {}, ID: {}) from {}",
                r.ltime, r.id, r.from
            );
            return;
        };
        if c.id != r.id {
            debug!(
                "query reply ID mismatch (Local: {}, Response: {})",
                c.id, r.id
            );
            return;
        }
        if self.now > c.deadline {
            return;
        }
        if r.flags & FLAG_ACK != 0 {
            if c.acks.insert(r.from.clone()) {
                metrics::counter!("serf.query_acks").increment(1);
                self.events.push_back(Event::QueryAck {
                    ltime: r.ltime,
                    id: r.id,
                    from: r.from,
                });
            } else {
                metrics::counter!("serf.query_duplicate_acks").increment(1);
            }
        } else if c.responses.insert(r.from.clone()) {
            metrics::counter!("serf.query_responses").increment(1);
            self.events.push_back(Event::QueryResponse {
                ltime: r.ltime,
                id: r.id,
                from: r.from,
                payload: r.payload,
            });
        } else {
            metrics::counter!("serf.query_duplicate_responses").increment(1);
        }
        self.check_finished_early(r.ltime);
    }

    fn check_finished_early(&mut self, ltime: u64) {
        let done = self.queries.collectors.get(&ltime).is_some_and(|c| {
            c.expected.as_ref().is_some_and(|exp| {
                exp.iter().all(|n| c.responses.contains(n))
                    && (!c.want_acks || exp.iter().all(|n| c.acks.contains(n)))
            })
        });
        if done {
            if let Some(c) = self.queries.collectors.remove(&ltime) {
                self.events.push_back(Event::QueryDone { ltime, id: c.id });
            }
        }
    }

    /// Closes expired collectors and forgets expired inbound queries.
    pub(crate) fn expire_queries(&mut self, now: Duration) {
        let mut done: Vec<(u64, u32)> = self
            .queries
            .collectors
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(l, c)| (*l, c.id))
            .collect();
        done.sort_unstable();
        for (ltime, id) in done {
            self.queries.collectors.remove(&ltime);
            self.events.push_back(Event::QueryDone { ltime, id });
        }
        // Kept a while past the deadline so a late answer gets Go's "past the deadline"
        // error rather than "no pending query" (Go's handler still holds the query).
        self.queries
            .inbound
            .retain(|_, q| q.deadline + INBOUND_QUERY_GRACE >= now);
    }

    /// The earliest collector deadline.
    pub(crate) fn next_query_deadline(&self) -> Option<Duration> {
        self.queries.collectors.values().map(|c| c.deadline).min()
    }

    /// Number of nodes expected to answer a key query (memberlist `NumMembers`).
    pub(crate) fn take_key_ops(&mut self) -> Vec<KeyOp> {
        std::mem::take(&mut self.queries.key_ops)
    }
}
