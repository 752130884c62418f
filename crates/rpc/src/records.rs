//! Stream records: what follows a response header carrying the Seq of a `monitor`,
//! `stream` or `query` request (docs/agent-rpc.md section 5).

use crate::body::{str_bytes, Body};
use crate::responses::{decode_members, encode_members, Member};
use serf_wire::msgpack::{Reader, Writer};

/// A `monitor` record: `{Log}`, one log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRecord {
    /// The line, as raw bytes (without a newline).
    pub log: Vec<u8>,
}

impl Body for LogRecord {
    fn encode_into(&self, w: &mut Writer) {
        w.map(1).str("Log");
        str_bytes(w, &self.log);
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut log = Vec::new();
        r.struct_fields(|k, r| {
            if k == b"Log" {
                log = r.str_bytes()?.to_vec();
                return Ok(true);
            }
            Ok(false)
        })?;
        Ok(LogRecord { log })
    }
}

/// A `stream` record: one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// `{Event, Members}`: `member-join`, `member-leave`, `member-failed`,
    /// `member-update` or `member-reap` (any other `Event` name decodes here too).
    Members {
        /// The event name.
        event: String,
        /// The members concerned.
        members: Vec<Member>,
    },
    /// `{Coalesce, Event: "user", LTime, Name, Payload}`.
    User {
        /// Lamport time.
        ltime: u64,
        /// Event name.
        name: String,
        /// Payload (empty is nil on the wire).
        payload: Vec<u8>,
        /// Whether it may be coalesced.
        coalesce: bool,
    },
    /// `{Event: "query", ID, LTime, Name, Payload}`; answer with `respond` and `ID`.
    Query {
        /// Per-connection query ID for `respond`.
        id: u64,
        /// Lamport time.
        ltime: u64,
        /// Query name.
        name: String,
        /// Payload (empty is nil on the wire).
        payload: Vec<u8>,
    },
}

impl Body for StreamEvent {
    fn encode_into(&self, w: &mut Writer) {
        match self {
            StreamEvent::Members { event, members } => {
                w.map(2).str("Event").str(event).str("Members");
                encode_members(w, members);
            }
            StreamEvent::User {
                ltime,
                name,
                payload,
                coalesce,
            } => {
                w.map(5)
                    .str("Coalesce")
                    .bool(*coalesce)
                    .str("Event")
                    .str("user");
                w.str("LTime")
                    .uint(*ltime)
                    .str("Name")
                    .str(name)
                    .str("Payload")
                    .opt_bytes(payload);
            }
            StreamEvent::Query {
                id,
                ltime,
                name,
                payload,
            } => {
                w.map(5).str("Event").str("query").str("ID").uint(*id);
                w.str("LTime")
                    .uint(*ltime)
                    .str("Name")
                    .str(name)
                    .str("Payload")
                    .opt_bytes(payload);
            }
        }
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let (mut event, mut members) = (String::new(), Vec::new());
        let (mut id, mut ltime, mut coalesce) = (0, 0, false);
        let (mut name, mut payload) = (String::new(), Vec::new());
        r.struct_fields(|k, r| {
            match k {
                b"Event" => event = r.string()?,
                b"Members" => members = decode_members(r)?,
                b"ID" => id = r.uint()?,
                b"LTime" => ltime = r.uint()?,
                b"Coalesce" => coalesce = r.bool()?,
                b"Name" => name = r.string()?,
                b"Payload" => payload = r.byte_vec()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(match event.as_str() {
            "user" => StreamEvent::User {
                ltime,
                name,
                payload,
                coalesce,
            },
            "query" => StreamEvent::Query {
                id,
                ltime,
                name,
                payload,
            },
            _ => StreamEvent::Members { event, members },
        })
    }
}

/// What a [`QueryRecord`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRecordType {
    /// `ack`: a node received the query.
    Ack,
    /// `response`: a node answered.
    Response,
    /// `done`: the query timed out; no more records follow.
    Done,
    /// Any other `Type` text.
    Other(String),
}

impl QueryRecordType {
    /// The text on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            QueryRecordType::Ack => "ack",
            QueryRecordType::Response => "response",
            QueryRecordType::Done => "done",
            QueryRecordType::Other(s) => s,
        }
    }

    fn parse(s: String) -> Self {
        match s.as_str() {
            "ack" => QueryRecordType::Ack,
            "response" => QueryRecordType::Response,
            "done" => QueryRecordType::Done,
            _ => QueryRecordType::Other(s),
        }
    }
}

impl Default for QueryRecordType {
    fn default() -> Self {
        QueryRecordType::Other(String::new())
    }
}

/// A `query` record: `{From, Payload, Type}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryRecord {
    /// `ack`, `response` or `done`.
    pub kind: QueryRecordType,
    /// The node (empty for `done`).
    pub from: String,
    /// The response payload (empty is nil on the wire).
    pub payload: Vec<u8>,
}

impl Body for QueryRecord {
    fn encode_into(&self, w: &mut Writer) {
        w.map(3)
            .str("From")
            .str(&self.from)
            .str("Payload")
            .opt_bytes(&self.payload);
        w.str("Type").str(self.kind.as_str());
    }
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error> {
        let mut rec = QueryRecord::default();
        r.struct_fields(|k, r| {
            match k {
                b"From" => rec.from = r.string()?,
                b"Payload" => rec.payload = r.byte_vec()?,
                b"Type" => rec.kind = QueryRecordType::parse(r.string()?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::hex;

    #[test]
    fn query_records() {
        let ack = [
            0x83, 0xa4, b'F', b'r', b'o', b'm', 0xa5, b'a', b'l', b'p', b'h', b'a', 0xa7, b'P',
            b'a', b'y', b'l', b'o', b'a', b'd', 0xc0, 0xa4, b'T', b'y', b'p', b'e', 0xa3, b'a',
            b'c', b'k',
        ];
        let rec = QueryRecord::decode(&ack).ok();
        let want = QueryRecord {
            kind: QueryRecordType::Ack,
            from: "alpha".into(),
            payload: Vec::new(),
        };
        assert_eq!(rec.as_ref(), Some(&want));
        assert_eq!(want.encode(), ack);
    }

    #[test]
    fn user_event_record_matches_the_capture() {
        // docs/agent-rpc.md 5.1 with payload "pay load".
        let ev = StreamEvent::User {
            ltime: 7,
            name: "mon-ev".into(),
            payload: b"pay load".to_vec(),
            coalesce: false,
        };
        let bytes = ev.encode();
        assert_eq!(
            hex(&bytes),
            "85a8436f616c65736365c2a54576656e74a475736572a54c54696d6507a44e616d65a66d6f6e2d6576a75061796c6f6164c408706179206c6f6164"
        );
        assert_eq!(StreamEvent::decode(&bytes).ok(), Some(ev));
        let log = LogRecord {
            log: b"2024/01/01 [INFO] x".to_vec(),
        };
        assert_eq!(LogRecord::decode(&log.encode()).ok(), Some(log));
    }
}
