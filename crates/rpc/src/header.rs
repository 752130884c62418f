//! Request and response headers, and the command names.

use crate::body::Body;
use serf_wire::msgpack::{Reader, Writer};

/// A request header `{Command, Seq}`; a body follows for the commands where
/// [`Command::has_body`] is true.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    /// The command name (see [`Command`]).
    pub command: String,
    /// The sequence number the response will carry.
    pub seq: u64,
}

impl RequestHeader {
    /// Decodes like Go's server: fields absent from `obj` keep their `prev` values (Go
    /// decodes every header into the same struct). Unknown keys are ignored.
    pub fn decode_after(obj: &[u8], prev: &RequestHeader) -> Result<Self, crate::DecodeError> {
        Ok(prev.clone().read(&mut Reader::new(obj))?)
    }

    /// Overwrites the fields present in the next object of `r`.
    fn read(mut self, r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        r.struct_fields(|k, r| {
            match k {
                b"Command" => self.command = r.string()?,
                b"Seq" => self.seq = r.uint()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(self)
    }
}

impl Body for RequestHeader {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2)
            .str("Command")
            .str(&self.command)
            .str("Seq")
            .uint(self.seq);
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        RequestHeader::default().read(r)
    }
}

/// A response header `{Error, Seq}`; `Error` is empty on success.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The error text ("" on success).
    pub error: String,
    /// The Seq of the request (or stream) this answers.
    pub seq: u64,
}

impl ResponseHeader {
    /// A header for `seq` with `error` ("" for success).
    pub fn new(seq: u64, error: &str) -> Self {
        ResponseHeader {
            error: error.to_string(),
            seq,
        }
    }

    /// Decodes like Go's client: fields absent from `obj` keep their `prev` values.
    pub fn decode_after(obj: &[u8], prev: &ResponseHeader) -> Result<Self, crate::DecodeError> {
        Ok(prev.clone().read(&mut Reader::new(obj))?)
    }

    /// Overwrites the fields present in the next object of `r`.
    fn read(mut self, r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        r.struct_fields(|k, r| {
            match k {
                b"Error" => self.error = r.string()?,
                b"Seq" => self.seq = r.uint()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(self)
    }
}

impl Body for ResponseHeader {
    fn encode_into(&self, w: &mut Writer) {
        w.map(2)
            .str("Error")
            .str(&self.error)
            .str("Seq")
            .uint(self.seq);
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        ResponseHeader::default().read(r)
    }
}

/// The commands of protocol version 1 (docs/agent-rpc.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `handshake` ([`HandshakeRequest`](crate::HandshakeRequest)); must come first.
    Handshake,
    /// `auth` ([`AuthRequest`](crate::AuthRequest)).
    Auth,
    /// `members` (no body) → [`MembersResponse`](crate::MembersResponse).
    Members,
    /// `members-filtered` ([`MembersFilteredRequest`](crate::MembersFilteredRequest)) →
    /// [`MembersResponse`](crate::MembersResponse).
    MembersFiltered,
    /// `join` ([`JoinRequest`](crate::JoinRequest)) → [`JoinResponse`](crate::JoinResponse).
    Join,
    /// `leave` (no body).
    Leave,
    /// `force-leave` ([`ForceLeaveRequest`](crate::ForceLeaveRequest)).
    ForceLeave,
    /// `tags` ([`TagsRequest`](crate::TagsRequest)).
    Tags,
    /// `event` ([`EventRequest`](crate::EventRequest)).
    Event,
    /// `query` ([`QueryRequest`](crate::QueryRequest)), then
    /// [`QueryRecord`](crate::QueryRecord)s.
    Query,
    /// `respond` ([`RespondRequest`](crate::RespondRequest)).
    Respond,
    /// `monitor` ([`MonitorRequest`](crate::MonitorRequest)), then
    /// [`LogRecord`](crate::LogRecord)s.
    Monitor,
    /// `stream` ([`StreamRequest`](crate::StreamRequest)), then
    /// [`StreamEvent`](crate::StreamEvent)s.
    Stream,
    /// `stop` ([`StopRequest`](crate::StopRequest)).
    Stop,
    /// `install-key` ([`KeyRequest`](crate::KeyRequest)) →
    /// [`KeyResponse`](crate::KeyResponse).
    InstallKey,
    /// `use-key` ([`KeyRequest`](crate::KeyRequest)) → [`KeyResponse`](crate::KeyResponse).
    UseKey,
    /// `remove-key` ([`KeyRequest`](crate::KeyRequest)) →
    /// [`KeyResponse`](crate::KeyResponse).
    RemoveKey,
    /// `list-keys` (no body) → [`KeyResponse`](crate::KeyResponse).
    ListKeys,
    /// `stats` (no body) → [`StatsResponse`](crate::StatsResponse).
    Stats,
    /// `get-coordinate` ([`CoordinateRequest`](crate::CoordinateRequest)) →
    /// [`CoordinateResponse`](crate::CoordinateResponse).
    GetCoordinate,
}

impl Command {
    /// Every command.
    pub const ALL: [Command; 20] = [
        Command::Handshake,
        Command::Auth,
        Command::Members,
        Command::MembersFiltered,
        Command::Join,
        Command::Leave,
        Command::ForceLeave,
        Command::Tags,
        Command::Event,
        Command::Query,
        Command::Respond,
        Command::Monitor,
        Command::Stream,
        Command::Stop,
        Command::InstallKey,
        Command::UseKey,
        Command::RemoveKey,
        Command::ListKeys,
        Command::Stats,
        Command::GetCoordinate,
    ];

    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Command::Handshake => "handshake",
            Command::Auth => "auth",
            Command::Members => "members",
            Command::MembersFiltered => "members-filtered",
            Command::Join => "join",
            Command::Leave => "leave",
            Command::ForceLeave => "force-leave",
            Command::Tags => "tags",
            Command::Event => "event",
            Command::Query => "query",
            Command::Respond => "respond",
            Command::Monitor => "monitor",
            Command::Stream => "stream",
            Command::Stop => "stop",
            Command::InstallKey => "install-key",
            Command::UseKey => "use-key",
            Command::RemoveKey => "remove-key",
            Command::ListKeys => "list-keys",
            Command::Stats => "stats",
            Command::GetCoordinate => "get-coordinate",
        }
    }

    /// The command with this wire name.
    pub fn from_name(name: &str) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether a request body follows the header.
    pub fn has_body(self) -> bool {
        !matches!(
            self,
            Command::Members | Command::Leave | Command::ListKeys | Command::Stats
        )
    }
}

impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::hex;

    #[test]
    fn headers_match_the_captures() {
        // docs/agent-rpc.md section 2.
        let h = RequestHeader {
            command: "handshake".into(),
            seq: 1,
        };
        assert_eq!(
            hex(&h.encode()),
            "82a7436f6d6d616e64a968616e647368616b65a353657101"
        );
        assert_eq!(
            hex(&ResponseHeader::new(1, "").encode()),
            "82a54572726f72a0a353657101"
        );
        let prev = ResponseHeader::new(7, "boom");
        // {Seq: 9}: Error keeps the previous value.
        let h = ResponseHeader::decode_after(&[0x81, 0xa3, b'S', b'e', b'q', 0x09], &prev);
        assert_eq!(h, Ok(ResponseHeader::new(9, "boom")));
    }

    #[test]
    fn command_names_round_trip() {
        for c in Command::ALL {
            assert_eq!(Command::from_name(c.name()), Some(c));
        }
        assert_eq!(Command::from_name("nope"), None);
    }
}
