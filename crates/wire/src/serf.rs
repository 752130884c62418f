//! Serf messages carried in memberlist user messages (docs/serf-protocol.md section 3):
//! `[serf type u8][msgpack map]`, and the tag encoding of node metadata.

use crate::msgpack::{Reader, Writer};
use crate::{Error, META_MAX_SIZE};

/// Serf message type bytes.
#[allow(missing_docs)]
pub mod serf_type {
    pub const LEAVE: u8 = 0;
    pub const JOIN: u8 = 1;
    pub const PUSH_PULL: u8 = 2;
    pub const USER_EVENT: u8 = 3;
    pub const QUERY: u8 = 4;
    pub const QUERY_RESPONSE: u8 = 5;
    pub const CONFLICT_RESPONSE: u8 = 6;
    pub const KEY_REQUEST: u8 = 7;
    pub const KEY_RESPONSE: u8 = 8;
    pub const RELAY: u8 = 9;
}

/// Largest number of event slots accepted in a push/pull.
pub const MAX_EVENT_SLOTS: usize = 65536;

/// Join intent (type 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinIntent {
    /// Member clock.
    pub ltime: u64,
    /// Node.
    pub node: String,
}

/// Leave intent (type 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaveIntent {
    /// Member clock.
    pub ltime: u64,
    /// Node.
    pub node: String,
    /// Erase the member (force-leave -prune).
    pub prune: bool,
}

/// User event (type 3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEvent {
    /// Event clock.
    pub ltime: u64,
    /// Name.
    pub name: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Can coalesce.
    pub cc: bool,
}

/// One slot of the push/pull event ring.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEventsSlot {
    /// Event clock of the slot.
    pub ltime: u64,
    /// Events (name, payload) at that time.
    pub events: Vec<(String, Vec<u8>)>,
}

/// Serf push/pull state (type 2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushPullState {
    /// Member clock.
    pub ltime: u64,
    /// Every member's status clock.
    pub status_ltimes: Vec<(String, u64)>,
    /// Members that left.
    pub left_members: Vec<String>,
    /// Event clock.
    pub event_ltime: u64,
    /// Event ring, `None` for empty slots.
    pub events: Vec<Option<UserEventsSlot>>,
    /// Query clock.
    pub query_ltime: u64,
}

/// Query (type 4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Query clock.
    pub ltime: u64,
    /// Id.
    pub id: u32,
    /// Where responses go.
    pub addr: Vec<u8>,
    /// Where responses go.
    pub port: u16,
    /// Origin node.
    pub source_node: String,
    /// Encoded filters.
    pub filters: Vec<Vec<u8>>,
    /// 1 = ack, 2 = no broadcast.
    pub flags: u32,
    /// Relay factor.
    pub relay_factor: u8,
    /// Timeout in ns.
    pub timeout: i64,
    /// Name.
    pub name: String,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Query response or ack (type 5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryResponse {
    /// Query clock.
    pub ltime: u64,
    /// Query id.
    pub id: u32,
    /// Responder.
    pub from: String,
    /// 1 = ack.
    pub flags: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

/// A decoded Serf message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerfMessage {
    /// 0
    Leave(LeaveIntent),
    /// 1
    Join(JoinIntent),
    /// 3
    UserEvent(UserEvent),
    /// 4
    Query(Query),
    /// 5
    QueryResponse(QueryResponse),
    /// 9: destination and the inner message, forwarded as is.
    Relay {
        /// Destination IP.
        dest_ip: Vec<u8>,
        /// Destination port.
        dest_port: u16,
        /// Destination name.
        dest_name: String,
        /// Inner Serf message (type byte + body).
        inner: Vec<u8>,
    },
}

impl SerfMessage {
    /// Encodes type byte and body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            SerfMessage::Leave(m) => {
                w.raw(&[serf_type::LEAVE]).map(3).str("LTime").uint(m.ltime);
                w.str("Node").str(&m.node).str("Prune").bool(m.prune);
            }
            SerfMessage::Join(m) => {
                w.raw(&[serf_type::JOIN]).map(2).str("LTime").uint(m.ltime);
                w.str("Node").str(&m.node);
            }
            SerfMessage::UserEvent(m) => {
                w.raw(&[serf_type::USER_EVENT]).map(4).str("CC").bool(m.cc);
                w.str("LTime").uint(m.ltime).str("Name").str(&m.name);
                w.str("Payload").opt_bytes(&m.payload);
            }
            SerfMessage::Query(m) => {
                w.raw(&[serf_type::QUERY])
                    .map(11)
                    .str("Addr")
                    .bytes(&m.addr);
                w.str("Filters");
                if m.filters.is_empty() {
                    w.nil();
                } else {
                    w.array(m.filters.len());
                    for f in &m.filters {
                        w.bytes(f);
                    }
                }
                w.str("Flags")
                    .uint(u64::from(m.flags))
                    .str("ID")
                    .uint(u64::from(m.id));
                w.str("LTime").uint(m.ltime).str("Name").str(&m.name);
                w.str("Payload")
                    .opt_bytes(&m.payload)
                    .str("Port")
                    .uint(u64::from(m.port));
                w.str("RelayFactor").uint(u64::from(m.relay_factor));
                w.str("SourceNode")
                    .str(&m.source_node)
                    .str("Timeout")
                    .int(m.timeout);
            }
            SerfMessage::QueryResponse(m) => {
                w.raw(&[serf_type::QUERY_RESPONSE])
                    .map(5)
                    .str("Flags")
                    .uint(u64::from(m.flags));
                w.str("From").str(&m.from).str("ID").uint(u64::from(m.id));
                w.str("LTime")
                    .uint(m.ltime)
                    .str("Payload")
                    .opt_bytes(&m.payload);
            }
            SerfMessage::Relay {
                dest_ip,
                dest_port,
                dest_name,
                inner,
            } => {
                w.raw(&[serf_type::RELAY]).map(2).str("DestAddr").map(3);
                w.str("IP")
                    .bytes(dest_ip)
                    .str("Port")
                    .uint(u64::from(*dest_port));
                w.str("Zone").str("").str("DestName").str(dest_name);
                w.raw(inner);
            }
        }
        w.into_vec()
    }

    /// Decodes a Serf user message. Push/pull state (type 2) is decoded by
    /// [`PushPullState::decode`]; nested-only types are refused.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let (&t, body) = buf
            .split_first()
            .ok_or(Error::Malformed("empty serf message"))?;
        let mut r = Reader::new(body);
        Ok(match t {
            serf_type::LEAVE => {
                let mut m = LeaveIntent::default();
                r.struct_fields(|k, r| {
                    match k {
                        b"LTime" => m.ltime = r.uint()?,
                        b"Node" => m.node = r.string()?,
                        b"Prune" => m.prune = r.bool()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::Leave(m)
            }
            serf_type::JOIN => {
                let mut m = JoinIntent::default();
                r.struct_fields(|k, r| {
                    match k {
                        b"LTime" => m.ltime = r.uint()?,
                        b"Node" => m.node = r.string()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::Join(m)
            }
            serf_type::USER_EVENT => {
                let mut m = UserEvent::default();
                r.struct_fields(|k, r| {
                    match k {
                        b"CC" => m.cc = r.bool()?,
                        b"LTime" => m.ltime = r.uint()?,
                        b"Name" => m.name = r.string()?,
                        b"Payload" => m.payload = r.byte_vec()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::UserEvent(m)
            }
            serf_type::QUERY => {
                let mut m = Query::default();
                r.struct_fields(|k, r| {
                    match k {
                        b"Addr" => m.addr = r.byte_vec()?,
                        b"Filters" => {
                            let n = r.array_len()?;
                            m.filters = Vec::with_capacity(n);
                            for _ in 0..n {
                                m.filters.push(r.byte_vec()?);
                            }
                        }
                        b"Flags" => m.flags = r.u32()?,
                        b"ID" => m.id = r.u32()?,
                        b"LTime" => m.ltime = r.uint()?,
                        b"Name" => m.name = r.string()?,
                        b"Payload" => m.payload = r.byte_vec()?,
                        b"Port" => m.port = r.u16()?,
                        b"RelayFactor" => m.relay_factor = r.u8()?,
                        b"SourceNode" => m.source_node = r.string()?,
                        b"Timeout" => m.timeout = r.i64()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::Query(m)
            }
            serf_type::QUERY_RESPONSE => {
                let mut m = QueryResponse::default();
                r.struct_fields(|k, r| {
                    match k {
                        b"Flags" => m.flags = r.u32()?,
                        b"From" => m.from = r.string()?,
                        b"ID" => m.id = r.u32()?,
                        b"LTime" => m.ltime = r.uint()?,
                        b"Payload" => m.payload = r.byte_vec()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                SerfMessage::QueryResponse(m)
            }
            serf_type::RELAY => {
                let (mut ip, mut port, mut name) = (Vec::new(), 0u16, String::new());
                r.struct_fields(|k, r| {
                    match k {
                        b"DestAddr" => r.struct_fields(|k, r| {
                            match k {
                                b"IP" => ip = r.byte_vec()?,
                                b"Port" => port = r.u16()?,
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?,
                        b"DestName" => name = r.string()?,
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                let inner = r.remaining().to_vec();
                if inner.is_empty() {
                    return Err(Error::Malformed("relay without inner message"));
                }
                SerfMessage::Relay {
                    dest_ip: ip,
                    dest_port: port,
                    dest_name: name,
                    inner,
                }
            }
            other => return Err(Error::UnknownType(other)),
        })
    }
}

impl PushPullState {
    /// Encodes `02` + map. Pass the full ring to keep byte parity with Go.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&[serf_type::PUSH_PULL])
            .map(6)
            .str("EventLTime")
            .uint(self.event_ltime);
        w.str("Events").array(self.events.len());
        for slot in &self.events {
            match slot {
                None => {
                    w.nil();
                }
                Some(s) => {
                    w.map(2).str("Events").array(s.events.len());
                    for (name, payload) in &s.events {
                        w.map(2)
                            .str("Name")
                            .str(name)
                            .str("Payload")
                            .opt_bytes(payload);
                    }
                    w.str("LTime").uint(s.ltime);
                }
            }
        }
        w.str("LTime")
            .uint(self.ltime)
            .str("LeftMembers")
            .array(self.left_members.len());
        for m in &self.left_members {
            w.str(m);
        }
        w.str("QueryLTime").uint(self.query_ltime);
        w.str("StatusLTimes").map(self.status_ltimes.len());
        for (n, t) in &self.status_ltimes {
            w.str(n).uint(*t);
        }
        w.into_vec()
    }

    /// Decodes `02` + map.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let (&t, body) = buf
            .split_first()
            .ok_or(Error::Malformed("empty serf state"))?;
        if t != serf_type::PUSH_PULL {
            return Err(Error::Malformed("serf state is not a push/pull message"));
        }
        let mut r = Reader::new(body);
        let mut m = PushPullState::default();
        r.struct_fields(|k, r| {
            match k {
                b"EventLTime" => m.event_ltime = r.uint()?,
                b"Events" => {
                    let n = r.array_len()?;
                    if n > MAX_EVENT_SLOTS {
                        return Err(Error::Limit("too many event slots"));
                    }
                    // A repeated key replaces the slice, as go-msgpack does; appending would
                    // let repeats grow the ring past MAX_EVENT_SLOTS.
                    m.events.clear();
                    for _ in 0..n {
                        if r.try_nil()? {
                            m.events.push(None);
                            continue;
                        }
                        let mut slot = UserEventsSlot::default();
                        r.struct_fields(|k, r| {
                            match k {
                                b"LTime" => slot.ltime = r.uint()?,
                                b"Events" => {
                                    let n = r.array_len()?;
                                    slot.events.clear();
                                    for _ in 0..n {
                                        let (mut name, mut payload) = (String::new(), Vec::new());
                                        r.struct_fields(|k, r| {
                                            match k {
                                                b"Name" => name = r.string()?,
                                                b"Payload" => payload = r.byte_vec()?,
                                                _ => return Ok(false),
                                            }
                                            Ok(true)
                                        })?;
                                        slot.events.push((name, payload));
                                    }
                                }
                                _ => return Ok(false),
                            }
                            Ok(true)
                        })?;
                        m.events.push(Some(slot));
                    }
                }
                b"LTime" => m.ltime = r.uint()?,
                b"LeftMembers" => m.left_members = r.str_array()?,
                b"QueryLTime" => m.query_ltime = r.uint()?,
                b"StatusLTimes" => {
                    let n = r.map_len()?;
                    for _ in 0..n {
                        let k = r.string()?;
                        let v = r.uint()?;
                        m.status_ltimes.push((k, v));
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// Encodes tags as Serf meta (`ff` + msgpack map); errors above 512 bytes with Go's text.
pub fn encode_tags(tags: &[(String, String)]) -> Result<Vec<u8>, String> {
    let mut w = Writer::new();
    w.raw(&[0xff]);
    w.str_map(
        tags.len(),
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let b = w.into_vec();
    if b.len() > META_MAX_SIZE {
        return Err(format!(
            "Encoded length of tags exceeds limit of {META_MAX_SIZE} bytes"
        ));
    }
    Ok(b)
}

/// Decodes Serf meta into tags (a meta without the magic byte is the legacy role string).
pub fn decode_tags(meta: &[u8]) -> Vec<(String, String)> {
    match meta.split_first() {
        Some((0xff, rest)) => {
            let mut r = Reader::new(rest);
            let mut out = Vec::new();
            if let Ok(n) = r.map_len() {
                for _ in 0..n {
                    match (r.string(), r.string()) {
                        (Ok(k), Ok(v)) => out.push((k, v)),
                        _ => break,
                    }
                }
            }
            out
        }
        _ => vec![(
            "role".to_string(),
            String::from_utf8_lossy(meta).into_owned(),
        )],
    }
}

/// Serf's ping payload: version byte 1 + msgpack coordinate.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Coordinate {
    /// Euclidean part.
    pub vec: Vec<f64>,
    /// Error estimate.
    pub error: f64,
    /// Adjustment.
    pub adjustment: f64,
    /// Height.
    pub height: f64,
}

impl Coordinate {
    /// Encodes `01` + map (the ack payload form).
    pub fn encode_payload(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&[1]).map(4).str("Adjustment").f64(self.adjustment);
        w.str("Error")
            .f64(self.error)
            .str("Height")
            .f64(self.height);
        w.str("Vec").array(self.vec.len());
        for v in &self.vec {
            w.f64(*v);
        }
        w.into_vec()
    }

    /// Decodes the ack payload form.
    pub fn decode_payload(buf: &[u8]) -> Result<Self, Error> {
        let (&v, body) = buf
            .split_first()
            .ok_or(Error::Malformed("empty ping payload"))?;
        if v != 1 {
            return Err(Error::Malformed("unsupported ping payload version"));
        }
        let mut r = Reader::new(body);
        let mut c = Coordinate::default();
        r.struct_fields(|k, r| {
            match k {
                b"Adjustment" => c.adjustment = r.f64()?,
                b"Error" => c.error = r.f64()?,
                b"Height" => c.height = r.f64()?,
                b"Vec" => {
                    let n = r.array_len()?;
                    if n > 64 {
                        return Err(Error::Limit("coordinate dimension too large"));
                    }
                    c.vec = Vec::with_capacity(n);
                    for _ in 0..n {
                        c.vec.push(r.f64()?);
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(c)
    }
}
