//! Error types: [`DecodeError`] for bodies that do not decode, [`ReadError`] for the object
//! stream, [`ClientError`] for everything a [`Client`](crate::Client) call can fail with.

use std::fmt;

/// A body that does not decode as the expected type.
///
/// Displays as the underlying msgpack error (the text the agent logs and the CLI prints).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Malformed, truncated or mistyped msgpack.
    Msgpack(serf_wire::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Msgpack(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<serf_wire::Error> for DecodeError {
    fn from(e: serf_wire::Error) -> Self {
        DecodeError::Msgpack(e)
    }
}

/// Why [`ObjectReader::next`](crate::ObjectReader::next) returned no object.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadError {
    /// The peer closed the stream between objects.
    Closed,
    /// The peer closed the stream in the middle of an object (displays as `EOF`).
    Truncated,
    /// An object grew beyond [`MAX_OBJECT`](crate::MAX_OBJECT) bytes.
    TooLarge,
    /// The bytes are not msgpack.
    Malformed(DecodeError),
    /// Reading failed.
    Io(std::io::Error),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Closed => f.write_str("connection closed"),
            ReadError::Truncated => f.write_str("EOF"),
            ReadError::TooLarge => f.write_str("request too large"),
            ReadError::Malformed(e) => write!(f, "{e}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// What a [`Client`](crate::Client) call fails with. The `Display` texts are those of Go's
/// `client.RPCClient`, which `serf` prints after its own prefix.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting failed; the text is Go's (`dial tcp 127.0.0.1:1: connect: connection
    /// refused`).
    Dial(String),
    /// Writing a request failed.
    Io(std::io::Error),
    /// Writing a request took longer than [`TIMEOUT`](crate::client::TIMEOUT)
    /// (`i/o timeout`).
    Timeout,
    /// The connection is gone, or the agent sent a header that does not decode
    /// (`client closed`).
    Closed,
    /// A response body or stream record did not decode.
    Protocol(DecodeError),
    /// The agent answered with an error text (its response header's `Error`).
    Remote(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Dial(s) | ClientError::Remote(s) => f.write_str(s),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Timeout => f.write_str("i/o timeout"),
            ClientError::Closed => f.write_str("client closed"),
            ClientError::Protocol(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<DecodeError> for ClientError {
    fn from(e: DecodeError) -> Self {
        ClientError::Protocol(e)
    }
}
