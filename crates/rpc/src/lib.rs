//! The Serf agent RPC ("IPC") protocol, as spoken by Go's `serf` 0.9.4 agent and CLI (Go's
//! `client` package), with typed messages and an async [`Client`].
//!
//! `docs/agent-rpc.md` in the repository describes the protocol byte by byte, with
//! captures from the real binaries; this crate follows it. In short:
//!
//! * **Transport.** One TCP connection (the agent's `rpc_addr`, default
//!   `127.0.0.1:7373`) carrying a plain concatenation of msgpack objects: no length
//!   prefix, no delimiter. [`ObjectReader`] cuts the stream into objects.
//! * **Requests.** A [`RequestHeader`] `{Command, Seq}`, followed by exactly one body
//!   object for the commands where [`Command::has_body`] is true ([`Request`] holds the
//!   typed bodies: [`HandshakeRequest`], [`JoinRequest`], [`QueryRequest`], ...). The
//!   client picks `Seq`; Go's starts at 1 and counts up.
//! * **Responses.** A [`ResponseHeader`] `{Error, Seq}` (`Error` empty on success),
//!   followed by a body for the commands that have one ([`MembersResponse`],
//!   [`JoinResponse`], [`KeyResponse`], [`StatsResponse`], [`CoordinateResponse`]); those
//!   bodies are sent also when `Error` is set.
//! * **Lifecycle.** `handshake {Version: 1}` must come first, then `auth {AuthKey}` if the
//!   agent has a token; an unknown command or an undecodable body closes the connection.
//! * **Streams.** `stream`, `monitor` and `query` are answered by a header, and then by
//!   any number of records, each a response header carrying the request's `Seq` and one
//!   body: [`StreamEvent`] for `stream`, [`LogRecord`] for `monitor`, [`QueryRecord`]
//!   (`ack`, `response`, then `done`) for `query`. Records interleave with the answers to
//!   later requests, so a client dispatches by `Seq`. `stop {Stop: seq}` ends a `stream`
//!   or `monitor`.
//!
//! Every message type implements [`Body`]: `encode` matches go-msgpack's encoding byte for
//! byte (struct keys sorted, non-negative integers unsigned, `[]byte` as bin), `decode` is
//! bounded by its input, ignores unknown keys, treats missing keys as zero values and
//! fails with a [`DecodeError`] rather than panicking.
//!
//! ```no_run
//! # async fn demo() -> Result<(), serf_rpc::ClientError> {
//! let mut client = serf_rpc::Client::connect("127.0.0.1:7373", "").await?;
//! let joined = client.join(&["10.0.0.2:7946".to_string()], false).await?;
//! println!("contacted {joined} nodes");
//! let monitor = client.monitor("debug").await?;
//! loop {
//!     let line = client.recv(&monitor).await?;
//!     println!("{}", String::from_utf8_lossy(&line.log));
//! }
//! # }
//! ```
#![forbid(unsafe_code)]

mod body;
pub mod client;
mod dial;
mod error;
mod header;
mod reader;
mod records;
mod requests;
mod responses;
pub mod skim;

pub use body::Body;
pub use client::{Client, KeyOutcome, Record, StreamHandle};
pub use error::{ClientError, DecodeError, ReadError};
pub use header::{Command, RequestHeader, ResponseHeader};
pub use reader::{ObjectReader, MAX_OBJECT};
pub use records::{LogRecord, QueryRecord, QueryRecordType, StreamEvent};
pub use requests::{
    AuthRequest, CoordinateRequest, EventRequest, ForceLeaveRequest, HandshakeRequest, JoinRequest,
    KeyRequest, MembersFilteredRequest, MonitorRequest, QueryRequest, Request, RespondRequest,
    StopRequest, StreamRequest, TagsRequest,
};
pub use responses::{
    Coordinate, CoordinateResponse, JoinResponse, KeyResponse, Member, MembersResponse,
    StatsResponse, StatsSection,
};

/// The protocol version this crate speaks (the only one Go's agent accepts).
pub const VERSION: i64 = 1;
