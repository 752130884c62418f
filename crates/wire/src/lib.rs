//! Wire codec for HashiCorp memberlist 0.2.x and Serf 0.9 (agent protocol 5).
//!
//! Pure functions over byte slices: no sockets, no clocks. Everything a peer can send is
//! decoded under hard limits ([`MAX_PUSH_STATE`], [`MAX_DECOMPRESSED`], bounded counts and
//! nesting) and malformed input returns an [`Error`], never a panic.
//!
//! * [`msgpack`]: go-msgpack compatible writer and bounded reader.
//! * [`messages`]: memberlist messages (ping, ack, alive, push/pull, ...).
//! * [`packet`]: UDP framing: compound, LZW compression, CRC, encryption, labels.
//! * [`stream`]: TCP framing, incremental decoding.
//! * [`crypto`]: the AES-GCM keyring.
//! * [`serf`]: Serf messages carried inside memberlist user messages.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod lzw;
pub mod messages;
pub mod msgpack;
pub mod packet;
pub mod serf;
pub mod stream;

pub use crypto::{Key, Keyring};
pub use messages::*;

/// Largest push/pull state (and encrypted stream frame) accepted: 20 MiB.
pub const MAX_PUSH_STATE: usize = 20 * 1024 * 1024;
/// Largest decompressed payload accepted: 40 MiB.
pub const MAX_DECOMPRESSED: usize = 40 * 1024 * 1024;
/// Most node states one push/pull may announce.
pub const MAX_PUSH_PULL_NODES: usize = 1 << 20;
/// Largest node metadata (memberlist `MetaMaxSize`).
pub const META_MAX_SIZE: usize = 512;
/// Budget for packing messages into one UDP packet.
pub const UDP_PACKET_BUDGET: usize = 1400;
/// Receive buffer for one datagram.
pub const UDP_RECV_BUFFER: usize = 65536;

/// A decoding or encoding failure. Every variant is a clean refusal of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input ended before the value did (stream readers: read more).
    Eof,
    /// The input is not what the protocol allows.
    Malformed(&'static str),
    /// A hard limit was hit.
    Limit(&'static str),
    /// A message type this layer does not handle.
    UnknownType(u8),
    /// CRC mismatch.
    Crc,
    /// Decryption or encryption failed.
    Crypto(&'static str),
    /// Encryption configured on one side only (Go's error text).
    Mismatch(&'static str),
    /// Missing or wrong label.
    Label,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Eof => f.write_str("unexpected end of input"),
            Error::Malformed(m) => write!(f, "malformed message: {m}"),
            Error::Limit(m) => write!(f, "limit exceeded: {m}"),
            Error::UnknownType(t) => write!(f, "unknown message type {t}"),
            Error::Crc => f.write_str("CRC mismatch"),
            Error::Crypto(m) => write!(f, "{m}"),
            Error::Mismatch(m) => write!(f, "{m}"),
            Error::Label => f.write_str("missing or unexpected label"),
        }
    }
}

impl std::error::Error for Error {}
