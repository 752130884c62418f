//! memberlist message bodies (docs/memberlist-protocol.md section 4), encoded as Go encodes them: a msgpack map
//! keyed by Go field names in sorted order.

use crate::msgpack::{Reader, Writer};
use crate::Error;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Message type bytes (docs/memberlist-protocol.md section 2).
#[allow(missing_docs)]
pub mod msg_type {
    pub const PING: u8 = 0;
    pub const INDIRECT_PING: u8 = 1;
    pub const ACK: u8 = 2;
    pub const SUSPECT: u8 = 3;
    pub const ALIVE: u8 = 4;
    pub const DEAD: u8 = 5;
    pub const PUSH_PULL: u8 = 6;
    pub const COMPOUND: u8 = 7;
    pub const USER: u8 = 8;
    pub const COMPRESS: u8 = 9;
    pub const ENCRYPT: u8 = 10;
    pub const NACK: u8 = 11;
    pub const HAS_CRC: u8 = 12;
    pub const ERR: u8 = 13;
    pub const HAS_LABEL: u8 = 244;
}

/// Node state numbers used in push/pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStateKind {
    /// 0
    Alive,
    /// 1
    Suspect,
    /// 2
    Dead,
    /// 3
    Left,
}

impl NodeStateKind {
    /// The wire number.
    pub fn as_u8(self) -> u8 {
        match self {
            NodeStateKind::Alive => 0,
            NodeStateKind::Suspect => 1,
            NodeStateKind::Dead => 2,
            NodeStateKind::Left => 3,
        }
    }

    /// From the wire number.
    pub fn from_u64(v: u64) -> Result<Self, Error> {
        Ok(match v {
            0 => NodeStateKind::Alive,
            1 => NodeStateKind::Suspect,
            2 => NodeStateKind::Dead,
            3 => NodeStateKind::Left,
            _ => return Err(Error::Malformed("unknown node state")),
        })
    }
}

/// Decodes an IP carried as 4 or 16 raw bytes (IPv4-mapped IPv6 is normalised to IPv4).
pub fn ip_from_bytes(b: &[u8]) -> Result<IpAddr, Error> {
    match b.len() {
        4 => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let v6 = Ipv6Addr::from(a);
            Ok(match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            })
        }
        _ => Err(Error::Malformed("IP address must be 4 or 16 bytes")),
    }
}

/// Encodes an IP as Go does (4 bytes for IPv4).
pub fn ip_to_bytes(ip: &IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

fn opt_ip(b: &[u8]) -> Result<Option<IpAddr>, Error> {
    if b.is_empty() {
        Ok(None)
    } else {
        ip_from_bytes(b).map(Some)
    }
}

/// ping (type 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ping {
    /// Sequence number.
    pub seq_no: u32,
    /// Intended target's name ("" = anyone).
    pub node: String,
    /// Where the ack should go.
    pub source_addr: Option<IpAddr>,
    /// Where the ack should go.
    pub source_port: u16,
    /// Sender's name.
    pub source_node: String,
}

impl Ping {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        let n = 2
            + usize::from(self.source_addr.is_some())
            + usize::from(!self.source_node.is_empty())
            + usize::from(self.source_port != 0);
        w.map(n)
            .str("Node")
            .str(&self.node)
            .str("SeqNo")
            .uint(u64::from(self.seq_no));
        if let Some(ip) = &self.source_addr {
            w.str("SourceAddr").bytes(&ip_to_bytes(ip));
        }
        if !self.source_node.is_empty() {
            w.str("SourceNode").str(&self.source_node);
        }
        if self.source_port != 0 {
            w.str("SourcePort").uint(u64::from(self.source_port));
        }
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Ping::default();
        r.struct_fields(|k, r| {
            match k {
                b"Node" => m.node = r.string()?,
                b"SeqNo" => m.seq_no = r.u32()?,
                b"SourceAddr" => m.source_addr = opt_ip(r.bytes()?)?,
                b"SourceNode" => m.source_node = r.string()?,
                b"SourcePort" => m.source_port = r.u16()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// indirect ping request (type 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectPing {
    /// Requester's sequence number.
    pub seq_no: u32,
    /// Target IP.
    pub target: IpAddr,
    /// Target port.
    pub port: u16,
    /// Target name.
    pub node: String,
    /// Whether the relay should nack.
    pub nack: bool,
    /// Requester address.
    pub source_addr: Option<IpAddr>,
    /// Requester port.
    pub source_port: u16,
    /// Requester name.
    pub source_node: String,
}

impl IndirectPing {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        let n = 5
            + usize::from(self.source_addr.is_some())
            + usize::from(!self.source_node.is_empty())
            + usize::from(self.source_port != 0);
        w.map(n)
            .str("Nack")
            .bool(self.nack)
            .str("Node")
            .str(&self.node);
        w.str("Port")
            .uint(u64::from(self.port))
            .str("SeqNo")
            .uint(u64::from(self.seq_no));
        if let Some(ip) = &self.source_addr {
            w.str("SourceAddr").bytes(&ip_to_bytes(ip));
        }
        if !self.source_node.is_empty() {
            w.str("SourceNode").str(&self.source_node);
        }
        if self.source_port != 0 {
            w.str("SourcePort").uint(u64::from(self.source_port));
        }
        w.str("Target").bytes(&ip_to_bytes(&self.target));
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut target = None;
        let mut m = IndirectPing {
            seq_no: 0,
            target: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            node: String::new(),
            nack: false,
            source_addr: None,
            source_port: 0,
            source_node: String::new(),
        };
        r.struct_fields(|k, r| {
            match k {
                b"Nack" => m.nack = r.bool()?,
                b"Node" => m.node = r.string()?,
                b"Port" => m.port = r.u16()?,
                b"SeqNo" => m.seq_no = r.u32()?,
                b"SourceAddr" => m.source_addr = opt_ip(r.bytes()?)?,
                b"SourceNode" => m.source_node = r.string()?,
                b"SourcePort" => m.source_port = r.u16()?,
                b"Target" => target = opt_ip(r.bytes()?)?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        m.target = target.ok_or(Error::Malformed("indirect ping without target"))?;
        Ok(m)
    }
}

/// ack (type 2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ack {
    /// Sequence number being acknowledged.
    pub seq_no: u32,
    /// Ping delegate payload (Serf: coordinate), empty = nil.
    pub payload: Vec<u8>,
}

impl Ack {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(2).str("Payload").opt_bytes(&self.payload);
        w.str("SeqNo").uint(u64::from(self.seq_no));
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Ack::default();
        r.struct_fields(|k, r| {
            match k {
                b"Payload" => m.payload = r.byte_vec()?,
                b"SeqNo" => m.seq_no = r.u32()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// nack (type 11).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Nack {
    /// The requester's sequence number.
    pub seq_no: u32,
}

impl Nack {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(1).str("SeqNo").uint(u64::from(self.seq_no));
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Nack::default();
        r.struct_fields(|k, r| {
            match k {
                b"SeqNo" => m.seq_no = r.u32()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// suspect (type 3) and dead (type 5) share a shape.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suspect {
    /// Incarnation of the accused as known to `from`.
    pub incarnation: u32,
    /// Accused.
    pub node: String,
    /// Accuser.
    pub from: String,
}

/// dead (type 5); `from == node` means a graceful leave.
pub type Dead = Suspect;

impl Suspect {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(3).str("From").str(&self.from);
        w.str("Incarnation").uint(u64::from(self.incarnation));
        w.str("Node").str(&self.node);
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = Suspect::default();
        r.struct_fields(|k, r| {
            match k {
                b"From" => m.from = r.string()?,
                b"Incarnation" => m.incarnation = r.u32()?,
                b"Node" => m.node = r.string()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// alive (type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alive {
    /// Incarnation (>= 1).
    pub incarnation: u32,
    /// Name.
    pub node: String,
    /// IP.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Metadata (empty = nil).
    pub meta: Vec<u8>,
    /// `[PMin, PMax, PCur, DMin, DMax, DCur]`, or empty if the sender sent none.
    pub vsn: Vec<u8>,
}

impl Alive {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(6).str("Addr").bytes(&ip_to_bytes(&self.addr));
        w.str("Incarnation").uint(u64::from(self.incarnation));
        w.str("Meta")
            .opt_bytes(&self.meta)
            .str("Node")
            .str(&self.node);
        w.str("Port")
            .uint(u64::from(self.port))
            .str("Vsn")
            .opt_bytes(&self.vsn);
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut addr = None;
        let mut m = Alive {
            incarnation: 0,
            node: String::new(),
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            meta: Vec::new(),
            vsn: Vec::new(),
        };
        r.struct_fields(|k, r| {
            match k {
                b"Addr" => addr = opt_ip(r.bytes()?)?,
                b"Incarnation" => m.incarnation = r.u32()?,
                b"Meta" => m.meta = r.byte_vec()?,
                b"Node" => m.node = r.string()?,
                b"Port" => m.port = r.u16()?,
                b"Vsn" => m.vsn = r.byte_vec()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        m.addr = addr.ok_or(Error::Malformed("alive without address"))?;
        Ok(m)
    }
}

/// push/pull header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PushPullHeader {
    /// Number of node states that follow.
    pub nodes: usize,
    /// Bytes of delegate state after the node states.
    pub user_state_len: usize,
    /// Join or periodic sync.
    pub join: bool,
}

impl PushPullHeader {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(3)
            .str("Join")
            .bool(self.join)
            .str("Nodes")
            .uint(self.nodes as u64);
        w.str("UserStateLen").uint(self.user_state_len as u64);
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = PushPullHeader::default();
        r.struct_fields(|k, r| {
            match k {
                b"Join" => m.join = r.bool()?,
                b"Nodes" => m.nodes = r.len_field()?,
                b"UserStateLen" => m.user_state_len = r.len_field()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// One node in a push/pull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushNodeState {
    /// Name.
    pub name: String,
    /// IP.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Metadata.
    pub meta: Vec<u8>,
    /// Incarnation.
    pub incarnation: u32,
    /// State.
    pub state: NodeStateKind,
    /// Version bytes (6, or empty).
    pub vsn: Vec<u8>,
}

impl PushNodeState {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(7).str("Addr").bytes(&ip_to_bytes(&self.addr));
        w.str("Incarnation").uint(u64::from(self.incarnation));
        w.str("Meta")
            .opt_bytes(&self.meta)
            .str("Name")
            .str(&self.name);
        w.str("Port").uint(u64::from(self.port));
        w.str("State").uint(u64::from(self.state.as_u8()));
        w.str("Vsn").opt_bytes(&self.vsn);
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut addr = None;
        let mut m = PushNodeState {
            name: String::new(),
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            meta: Vec::new(),
            incarnation: 0,
            state: NodeStateKind::Alive,
            vsn: Vec::new(),
        };
        r.struct_fields(|k, r| {
            match k {
                b"Addr" => addr = opt_ip(r.bytes()?)?,
                b"Incarnation" => m.incarnation = r.u32()?,
                b"Meta" => m.meta = r.byte_vec()?,
                b"Name" => m.name = r.string()?,
                b"Port" => m.port = r.u16()?,
                b"State" => m.state = NodeStateKind::from_u64(r.uint()?)?,
                b"Vsn" => m.vsn = r.byte_vec()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        m.addr = addr.ok_or(Error::Malformed("node state without address"))?;
        Ok(m)
    }
}

/// A complete push/pull message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPull {
    /// Join or periodic.
    pub join: bool,
    /// Every known node.
    pub nodes: Vec<PushNodeState>,
    /// Delegate (Serf) state, raw.
    pub user_state: Vec<u8>,
}

/// A stream user message header (type 8 over TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserMsgHeader {
    /// Bytes that follow.
    pub user_msg_len: usize,
}

/// error reply (type 13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrResp {
    /// Text.
    pub error: String,
}

impl ErrResp {
    /// Appends the map body.
    pub fn encode_body(&self, w: &mut Writer) {
        w.map(1).str("Error").str(&self.error);
    }

    /// Decodes the map body.
    pub fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let mut m = ErrResp::default();
        r.struct_fields(|k, r| {
            match k {
                b"Error" => m.error = r.string()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(m)
    }
}

/// One packet-level memberlist message (what a compound part or a whole packet holds once
/// framing is removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 0
    Ping(Ping),
    /// 1
    IndirectPing(IndirectPing),
    /// 2
    Ack(Ack),
    /// 3
    Suspect(Suspect),
    /// 4
    Alive(Alive),
    /// 5
    Dead(Dead),
    /// 8: opaque delegate bytes
    User(Vec<u8>),
    /// 11
    Nack(Nack),
}

impl Message {
    /// Encodes with the type byte.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        w.into_vec()
    }

    /// Appends type byte and body.
    pub fn encode_into(&self, w: &mut Writer) {
        match self {
            Message::Ping(m) => {
                w.raw(&[msg_type::PING]);
                m.encode_body(w)
            }
            Message::IndirectPing(m) => {
                w.raw(&[msg_type::INDIRECT_PING]);
                m.encode_body(w)
            }
            Message::Ack(m) => {
                w.raw(&[msg_type::ACK]);
                m.encode_body(w)
            }
            Message::Suspect(m) => {
                w.raw(&[msg_type::SUSPECT]);
                m.encode_body(w)
            }
            Message::Alive(m) => {
                w.raw(&[msg_type::ALIVE]);
                m.encode_body(w)
            }
            Message::Dead(m) => {
                w.raw(&[msg_type::DEAD]);
                m.encode_body(w)
            }
            Message::User(b) => {
                w.raw(&[msg_type::USER]).raw(b);
            }
            Message::Nack(m) => {
                w.raw(&[msg_type::NACK]);
                m.encode_body(w)
            }
        }
    }

    /// Decodes one plain message (type byte + body). Framing types are not accepted here.
    pub fn decode(buf: &[u8]) -> Result<Self, Error> {
        let (&t, body) = buf.split_first().ok_or(Error::Malformed("empty message"))?;
        let mut r = Reader::new(body);
        let m = match t {
            msg_type::PING => Message::Ping(Ping::decode_body(&mut r)?),
            msg_type::INDIRECT_PING => Message::IndirectPing(IndirectPing::decode_body(&mut r)?),
            msg_type::ACK => Message::Ack(Ack::decode_body(&mut r)?),
            msg_type::SUSPECT => Message::Suspect(Suspect::decode_body(&mut r)?),
            msg_type::ALIVE => Message::Alive(Alive::decode_body(&mut r)?),
            msg_type::DEAD => Message::Dead(Suspect::decode_body(&mut r)?),
            msg_type::USER => return Ok(Message::User(body.to_vec())),
            msg_type::NACK => Message::Nack(Nack::decode_body(&mut r)?),
            _ => return Err(Error::UnknownType(t)),
        };
        Ok(m)
    }
}

/// Encodes a push/pull message (type byte included, no compression or encryption).
pub fn encode_push_pull(pp: &PushPull) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[msg_type::PUSH_PULL]);
    PushPullHeader {
        nodes: pp.nodes.len(),
        user_state_len: pp.user_state.len(),
        join: pp.join,
    }
    .encode_body(&mut w);
    for n in &pp.nodes {
        n.encode_body(&mut w);
    }
    w.raw(&pp.user_state);
    w.into_vec()
}
