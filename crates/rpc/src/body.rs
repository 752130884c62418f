//! The [`Body`] trait and the msgpack helpers the message types share.

use crate::error::DecodeError;
use serf_wire::msgpack::{Flavor, Reader, Writer};

/// A msgpack object of the protocol: a header, a request or response body, or a stream
/// record. Encoding matches Go's go-msgpack byte for byte (struct keys sorted, non-negative
/// integers unsigned, `[]byte` as bin); decoding follows Go's rules (unknown keys ignored,
/// missing keys zero, nil for an empty map, array or string).
pub trait Body: Sized {
    /// Appends the encoding to `w` (a writer of the RPC flavour).
    fn encode_into(&self, w: &mut Writer);

    /// Decodes one object from `r`. Bounded by the input; never panics.
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, serf_wire::Error>;

    /// The encoding as a fresh buffer.
    fn encode(&self) -> Vec<u8> {
        let mut w = writer();
        self.encode_into(&mut w);
        w.into_vec()
    }

    /// Decodes the first object of `bytes` (trailing bytes are ignored, as a stream reader
    /// would leave them for the next object).
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_from(&mut Reader::new(bytes)).map_err(DecodeError::Msgpack)
    }
}

/// A writer of the RPC flavour (`d9` strings, bin for bytes).
pub(crate) fn writer() -> Writer {
    Writer::with_flavor(Flavor::Rpc)
}

/// A string given as bytes (Go strings may hold anything), in the RPC flavour.
pub(crate) fn str_bytes(w: &mut Writer, b: &[u8]) {
    let n = b.len();
    let mut head = Vec::with_capacity(5);
    if n < 32 {
        head.push(0xa0 | n as u8);
    } else if n < 256 {
        head.extend_from_slice(&[0xd9, n as u8]);
    } else if n < 65536 {
        head.push(0xda);
        head.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        head.push(0xdb);
        head.extend_from_slice(&(n as u32).to_be_bytes());
    }
    w.raw(&head).raw(b);
}

/// A `map[string]string` in the given order.
pub(crate) fn str_map(w: &mut Writer, m: &[(String, String)]) {
    w.str_map(m.len(), m.iter().map(|(k, v)| (k.as_str(), v.as_str())));
}

/// A `[]string`.
pub(crate) fn str_array(w: &mut Writer, a: &[String]) {
    w.array(a.len());
    for s in a {
        w.str(s);
    }
}

/// A `[]string` that may be nil.
pub(crate) fn opt_str_array(w: &mut Writer, a: Option<&[String]>) {
    match a {
        Some(a) => str_array(w, a),
        None => {
            w.nil();
        }
    }
}

/// A `[]byte` that may be nil.
pub(crate) fn opt_bytes(w: &mut Writer, b: Option<&[u8]>) {
    match b {
        Some(b) => w.bytes(b),
        None => w.nil(),
    };
}

/// Hex, for tests.
#[cfg(test)]
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
