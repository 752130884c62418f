//! The agent RPC ("IPC") protocol (docs/agent-rpc.md): a stream of msgpack objects, a
//! `{Command, Seq}` header optionally followed by a body, answered by `{Error, Seq}` and
//! optionally a body.

pub(crate) mod client;
pub(crate) mod server;

use serf_wire::msgpack::{Flavor, Reader, Writer};
use serf_wire::Error as WireError;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request object accepted (bigger ones close the connection).
pub(crate) const MAX_OBJECT: usize = 1024 * 1024;

/// Reads whole msgpack objects from a byte stream.
#[derive(Debug)]
pub(crate) struct ObjectReader<R> {
    inner: R,
    buf: Vec<u8>,
}

/// Why reading stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Clean close.
    Closed,
    /// Malformed or oversized input.
    Bad(String),
}

impl<R: AsyncRead + Unpin> ObjectReader<R> {
    /// Wraps a reader.
    pub(crate) fn new(inner: R) -> Self {
        ObjectReader {
            inner,
            buf: Vec::new(),
        }
    }

    /// The next complete object's bytes.
    pub(crate) async fn next(&mut self) -> Result<Vec<u8>, ReadError> {
        let mut chunk = [0u8; 8192];
        loop {
            if !self.buf.is_empty() {
                let mut r = Reader::new(&self.buf);
                match r.skip() {
                    Ok(()) => {
                        let n = r.position();
                        let obj = self.buf[..n].to_vec();
                        self.buf.drain(..n);
                        return Ok(obj);
                    }
                    Err(WireError::Eof) => {}
                    Err(e) => return Err(ReadError::Bad(e.to_string())),
                }
            }
            if self.buf.len() > MAX_OBJECT {
                return Err(ReadError::Bad("request too large".into()));
            }
            let n = self
                .inner
                .read(&mut chunk)
                .await
                .map_err(|e| ReadError::Bad(e.to_string()))?;
            if n == 0 {
                return Err(if self.buf.is_empty() {
                    ReadError::Closed
                } else {
                    ReadError::Bad("EOF".into())
                });
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// A request header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    /// Command name.
    pub command: String,
    /// Sequence number.
    pub seq: u64,
}

impl RequestHeader {
    /// Decodes; unknown keys are ignored, and fields keep `prev` values when absent (Go
    /// reuses the header struct).
    pub(crate) fn decode(obj: &[u8], prev: &RequestHeader) -> Result<Self, WireError> {
        let mut h = prev.clone();
        Reader::new(obj).struct_fields(|k, r| {
            match k {
                b"Command" => h.command = r.string()?,
                b"Seq" => h.seq = r.uint()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(h)
    }
}

/// Encodes a response header.
pub(crate) fn response_header(seq: u64, error: &str) -> Vec<u8> {
    let mut w = Writer::with_flavor(Flavor::Rpc);
    w.map(2).str("Error").str(error).str("Seq").uint(seq);
    w.into_vec()
}
