//! Request bodies (docs/agent-rpc.md section 4), and [`Request`], a decoded request.

use crate::body::{opt_bytes, opt_str_array, str_array, str_map, Body};
use crate::error::DecodeError;
use crate::header::Command;
use serf_wire::msgpack::{Reader, Writer};

/// Decodes a struct with one field of interest.
fn one_field<T: Default>(
    r: &mut Reader<'_>,
    key: &[u8],
    mut read: impl FnMut(&mut Reader<'_>) -> Result<T, serf_wire::Error>,
) -> Result<T, serf_wire::Error> {
    let mut out = T::default();
    r.struct_fields(|k, r| {
        if k == key {
            out = read(r)?;
            return Ok(true);
        }
        Ok(false)
    })?;
    Ok(out)
}

/// `handshake {Version}`; the agent accepts version 1 only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandshakeRequest {
    /// Protocol version (1).
    pub version: i64,
}

impl Body for HandshakeRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Version").int(self.version);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(HandshakeRequest {
            version: one_field(r, b"Version", |r| r.i64())?,
        })
    }
}

/// `auth {AuthKey}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthRequest {
    /// The agent's `rpc_auth` token.
    pub auth_key: String,
}

impl Body for AuthRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("AuthKey").str(&self.auth_key);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(AuthRequest {
            auth_key: one_field(r, b"AuthKey", |r| r.string())?,
        })
    }
}

/// `members-filtered {Name, Status, Tags}`: regular expressions the agent anchors as
/// `^expr$` ("" matches anything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersFilteredRequest {
    /// Name pattern.
    pub name: String,
    /// Status pattern.
    pub status: String,
    /// Tag name → value pattern.
    pub tags: Vec<(String, String)>,
}

impl Body for MembersFilteredRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(3)
            .str("Name")
            .str(&self.name)
            .str("Status")
            .str(&self.status);
        w.str("Tags");
        str_map(w, &self.tags);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = MembersFilteredRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"Name" => q.name = r.string()?,
                b"Status" => q.status = r.string()?,
                b"Tags" => q.tags = r.str_map()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `join {Existing, Replay}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinRequest {
    /// Addresses to join.
    pub existing: Vec<String>,
    /// Replay old user events.
    pub replay: bool,
}

impl Body for JoinRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2).str("Existing");
        str_array(w, &self.existing);
        w.str("Replay").bool(self.replay);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = JoinRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"Existing" => q.existing = r.str_array()?,
                b"Replay" => q.replay = r.bool()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `force-leave {Node, Prune}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForceLeaveRequest {
    /// The member.
    pub node: String,
    /// Also forget it at once.
    pub prune: bool,
}

impl Body for ForceLeaveRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2)
            .str("Node")
            .str(&self.node)
            .str("Prune")
            .bool(self.prune);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = ForceLeaveRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"Node" => q.node = r.string()?,
                b"Prune" => q.prune = r.bool()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `tags {DeleteTags, Tags}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagsRequest {
    /// Tags to set.
    pub tags: Vec<(String, String)>,
    /// Tags to delete (`None` is sent as nil).
    pub delete_tags: Option<Vec<String>>,
}

impl Body for TagsRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2).str("DeleteTags");
        opt_str_array(w, self.delete_tags.as_deref());
        w.str("Tags");
        str_map(w, &self.tags);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = TagsRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"Tags" => q.tags = r.str_map()?,
                b"DeleteTags" => q.delete_tags = Some(r.str_array()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `event {Coalesce, Name, Payload}`: a user event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventRequest {
    /// Event name.
    pub name: String,
    /// Payload (`None` is sent as nil).
    pub payload: Option<Vec<u8>>,
    /// Whether the event may be coalesced.
    pub coalesce: bool,
}

impl Body for EventRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(3)
            .str("Coalesce")
            .bool(self.coalesce)
            .str("Name")
            .str(&self.name);
        w.str("Payload");
        opt_bytes(w, self.payload.as_deref());
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = EventRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"Name" => q.name = r.string()?,
                b"Payload" => q.payload = Some(r.byte_vec()?),
                b"Coalesce" => q.coalesce = r.bool()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `query {FilterNodes, FilterTags, Name, Payload, RelayFactor, RequestAck, Timeout}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryRequest {
    /// `FilterNodes` (`None`: nil).
    pub filter_nodes: Option<Vec<String>>,
    /// `FilterTags` (`None`: nil).
    pub filter_tags: Option<Vec<(String, String)>>,
    /// `Name`.
    pub name: String,
    /// `Payload` (`None`: nil).
    pub payload: Option<Vec<u8>>,
    /// `RelayFactor`.
    pub relay_factor: u8,
    /// `RequestAck`.
    pub request_ack: bool,
    /// `Timeout` in nanoseconds (0: the agent's default).
    pub timeout_nanos: i64,
}

impl Body for QueryRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(7).str("FilterNodes");
        opt_str_array(w, self.filter_nodes.as_deref());
        w.str("FilterTags");
        match &self.filter_tags {
            Some(t) => str_map(w, t),
            None => {
                w.nil();
            }
        }
        w.str("Name").str(&self.name).str("Payload");
        opt_bytes(w, self.payload.as_deref());
        w.str("RelayFactor").uint(u64::from(self.relay_factor));
        w.str("RequestAck").bool(self.request_ack);
        w.str("Timeout").int(self.timeout_nanos);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = QueryRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"FilterNodes" => q.filter_nodes = Some(r.str_array()?),
                b"FilterTags" => q.filter_tags = Some(r.str_map()?),
                b"Name" => q.name = r.string()?,
                b"Payload" => q.payload = Some(r.byte_vec()?),
                b"RelayFactor" => q.relay_factor = r.u8()?,
                b"RequestAck" => q.request_ack = r.bool()?,
                b"Timeout" => q.timeout_nanos = r.i64()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `respond {ID, Payload}`: answers a query seen on this connection's `stream`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RespondRequest {
    /// The query's `ID` from its [`StreamEvent::Query`](crate::StreamEvent::Query) record.
    pub id: u64,
    /// The response.
    pub payload: Vec<u8>,
}

impl Body for RespondRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2)
            .str("ID")
            .uint(self.id)
            .str("Payload")
            .bytes(&self.payload);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut q = RespondRequest::default();
        r.struct_fields(|k, r| {
            match k {
                b"ID" => q.id = r.uint()?,
                b"Payload" => q.payload = r.byte_vec()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(q)
    }
}

/// `monitor {LogLevel}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonitorRequest {
    /// Minimum level (`TRACE`, `DEBUG`, `INFO`, `WARN`; case-insensitive).
    pub log_level: String,
}

impl Body for MonitorRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("LogLevel").str(&self.log_level);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(MonitorRequest {
            log_level: one_field(r, b"LogLevel", |r| r.string())?,
        })
    }
}

/// `stream {Type}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRequest {
    /// Event filter, as for event handlers (`*`, `member-join,user:deploy`, ...).
    pub filter: String,
}

impl Body for StreamRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Type").str(&self.filter);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(StreamRequest {
            filter: one_field(r, b"Type", |r| r.string())?,
        })
    }
}

/// `stop {Stop}`: ends the stream or monitor started with that Seq.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopRequest {
    /// The Seq of the `stream` or `monitor` request.
    pub stop: u64,
}

impl Body for StopRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Stop").uint(self.stop);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(StopRequest {
            stop: one_field(r, b"Stop", |r| r.uint())?,
        })
    }
}

/// `install-key`, `use-key`, `remove-key` `{Key}` (base64).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    /// The base64 key.
    pub key: String,
}

impl Body for KeyRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Key").str(&self.key);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(KeyRequest {
            key: one_field(r, b"Key", |r| r.string())?,
        })
    }
}

/// `get-coordinate {Node}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoordinateRequest {
    /// The member.
    pub node: String,
}

impl Body for CoordinateRequest {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Node").str(&self.node);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        Ok(CoordinateRequest {
            node: one_field(r, b"Node", |r| r.string())?,
        })
    }
}

/// A decoded request: the command and its typed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `handshake`.
    Handshake(HandshakeRequest),
    /// `auth`.
    Auth(AuthRequest),
    /// `members`.
    Members,
    /// `members-filtered`.
    MembersFiltered(MembersFilteredRequest),
    /// `join`.
    Join(JoinRequest),
    /// `leave`.
    Leave,
    /// `force-leave`.
    ForceLeave(ForceLeaveRequest),
    /// `tags`.
    Tags(TagsRequest),
    /// `event`.
    Event(EventRequest),
    /// `query`.
    Query(QueryRequest),
    /// `respond`.
    Respond(RespondRequest),
    /// `monitor`.
    Monitor(MonitorRequest),
    /// `stream`.
    Stream(StreamRequest),
    /// `stop`.
    Stop(StopRequest),
    /// `install-key`.
    InstallKey(KeyRequest),
    /// `use-key`.
    UseKey(KeyRequest),
    /// `remove-key`.
    RemoveKey(KeyRequest),
    /// `list-keys`.
    ListKeys,
    /// `stats`.
    Stats,
    /// `get-coordinate`.
    GetCoordinate(CoordinateRequest),
}

impl Request {
    /// Decodes the body of `command` (`body` is ignored for commands without one).
    pub fn decode(command: Command, body: &[u8]) -> Result<Request, DecodeError> {
        Ok(match command {
            Command::Handshake => Request::Handshake(HandshakeRequest::decode(body)?),
            Command::Auth => Request::Auth(AuthRequest::decode(body)?),
            Command::Members => Request::Members,
            Command::MembersFiltered => {
                Request::MembersFiltered(MembersFilteredRequest::decode(body)?)
            }
            Command::Join => Request::Join(JoinRequest::decode(body)?),
            Command::Leave => Request::Leave,
            Command::ForceLeave => Request::ForceLeave(ForceLeaveRequest::decode(body)?),
            Command::Tags => Request::Tags(TagsRequest::decode(body)?),
            Command::Event => Request::Event(EventRequest::decode(body)?),
            Command::Query => Request::Query(QueryRequest::decode(body)?),
            Command::Respond => Request::Respond(RespondRequest::decode(body)?),
            Command::Monitor => Request::Monitor(MonitorRequest::decode(body)?),
            Command::Stream => Request::Stream(StreamRequest::decode(body)?),
            Command::Stop => Request::Stop(StopRequest::decode(body)?),
            Command::InstallKey => Request::InstallKey(KeyRequest::decode(body)?),
            Command::UseKey => Request::UseKey(KeyRequest::decode(body)?),
            Command::RemoveKey => Request::RemoveKey(KeyRequest::decode(body)?),
            Command::ListKeys => Request::ListKeys,
            Command::Stats => Request::Stats,
            Command::GetCoordinate => Request::GetCoordinate(CoordinateRequest::decode(body)?),
        })
    }

    /// The command.
    pub fn command(&self) -> Command {
        match self {
            Request::Handshake(_) => Command::Handshake,
            Request::Auth(_) => Command::Auth,
            Request::Members => Command::Members,
            Request::MembersFiltered(_) => Command::MembersFiltered,
            Request::Join(_) => Command::Join,
            Request::Leave => Command::Leave,
            Request::ForceLeave(_) => Command::ForceLeave,
            Request::Tags(_) => Command::Tags,
            Request::Event(_) => Command::Event,
            Request::Query(_) => Command::Query,
            Request::Respond(_) => Command::Respond,
            Request::Monitor(_) => Command::Monitor,
            Request::Stream(_) => Command::Stream,
            Request::Stop(_) => Command::Stop,
            Request::InstallKey(_) => Command::InstallKey,
            Request::UseKey(_) => Command::UseKey,
            Request::RemoveKey(_) => Command::RemoveKey,
            Request::ListKeys => Command::ListKeys,
            Request::Stats => Command::Stats,
            Request::GetCoordinate(_) => Command::GetCoordinate,
        }
    }

    /// The body's encoding (`None` for commands without one).
    pub fn encode_body(&self) -> Option<Vec<u8>> {
        Some(match self {
            Request::Handshake(b) => b.encode(),
            Request::Auth(b) => b.encode(),
            Request::MembersFiltered(b) => b.encode(),
            Request::Join(b) => b.encode(),
            Request::ForceLeave(b) => b.encode(),
            Request::Tags(b) => b.encode(),
            Request::Event(b) => b.encode(),
            Request::Query(b) => b.encode(),
            Request::Respond(b) => b.encode(),
            Request::Monitor(b) => b.encode(),
            Request::Stream(b) => b.encode(),
            Request::Stop(b) => b.encode(),
            Request::InstallKey(b) | Request::UseKey(b) | Request::RemoveKey(b) => b.encode(),
            Request::GetCoordinate(b) => b.encode(),
            Request::Members | Request::Leave | Request::ListKeys | Request::Stats => return None,
        })
    }

    /// Header and body as one buffer, ready to write (what Go's client sends).
    pub fn encode(&self, seq: u64) -> Vec<u8> {
        let mut out = crate::RequestHeader {
            command: self.command().name().to_string(),
            seq,
        }
        .encode();
        if let Some(b) = self.encode_body() {
            out.extend_from_slice(&b);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::hex;

    #[test]
    fn query_body_matches_the_real_cli() {
        // `serf query -timeout=2s cli-q payload` (docs/agent-rpc.md 4.9).
        let q = QueryRequest {
            filter_nodes: None,
            filter_tags: Some(Vec::new()),
            name: "cli-q".into(),
            payload: Some(b"payload".to_vec()),
            relay_factor: 0,
            request_ack: true,
            timeout_nanos: 2_000_000_000,
        };
        let bytes = q.encode();
        assert_eq!(
            hex(&bytes),
            "87ab46696c7465724e6f646573c0aa46696c7465725461677380a44e616d65a5636c692d71a75061796c6f6164c4077061796c6f6164ab52656c6179466163746f7200aa5265717565737441636bc3a754696d656f7574ce77359400"
        );
        // Nil FilterNodes decodes as an empty list, as in Go.
        let back = QueryRequest::decode(&bytes).ok();
        assert_eq!(
            back,
            Some(QueryRequest {
                filter_nodes: Some(Vec::new()),
                ..q
            })
        );
    }

    #[test]
    fn every_request_round_trips() {
        let reqs = [
            Request::Handshake(HandshakeRequest { version: 1 }),
            Request::Auth(AuthRequest {
                auth_key: "k".into(),
            }),
            Request::Members,
            Request::MembersFiltered(MembersFilteredRequest {
                name: "a.*".into(),
                status: "alive".into(),
                tags: vec![("role".into(), "web".into())],
            }),
            Request::Join(JoinRequest {
                existing: vec!["127.0.0.1:7946".into()],
                replay: true,
            }),
            Request::Leave,
            Request::ForceLeave(ForceLeaveRequest {
                node: "n".into(),
                prune: true,
            }),
            Request::Tags(TagsRequest {
                tags: vec![("a".into(), "1".into())],
                delete_tags: Some(vec!["b".into()]),
            }),
            Request::Event(EventRequest {
                name: "deploy".into(),
                payload: Some(b"x".to_vec()),
                coalesce: true,
            }),
            Request::Respond(RespondRequest {
                id: 3,
                payload: b"r".to_vec(),
            }),
            Request::Monitor(MonitorRequest {
                log_level: "debug".into(),
            }),
            Request::Stream(StreamRequest { filter: "*".into() }),
            Request::Stop(StopRequest { stop: 4 }),
            Request::InstallKey(KeyRequest { key: "k".into() }),
            Request::UseKey(KeyRequest { key: "k".into() }),
            Request::RemoveKey(KeyRequest { key: "k".into() }),
            Request::ListKeys,
            Request::Stats,
            Request::GetCoordinate(CoordinateRequest { node: "n".into() }),
        ];
        for req in reqs {
            let body = req.encode_body().unwrap_or_default();
            assert_eq!(Request::decode(req.command(), &body).ok(), Some(req));
        }
    }

    #[test]
    fn hostile_bodies_fail_without_panicking() {
        let cases: [&[u8]; 6] = [
            &[],
            &[0x91, 0x01],
            &[0x81],
            &[0x81, 0xc4, 0x01, b'x', 0x01],
            &[0xdf, 0xff, 0xff, 0xff, 0xff],
            &[0x81, 0xa2, b'I', b'D', 0xd3, 0xff],
        ];
        for c in Command::ALL {
            if !c.has_body() {
                continue;
            }
            for bytes in cases {
                assert!(Request::decode(c, bytes).is_err(), "{c} {bytes:?}");
            }
        }
    }
}
