//! UDP packet framing (docs/memberlist-protocol.md section 5): compound, compress, CRC, encryption, label.
//!
//! Sending, innermost first: payload (one message or a compound) -> compress (only if
//! smaller) -> CRC (if the peer speaks protocol >= 5) -> encrypt -> label. Receiving
//! reverses it; compound and compress may nest, up to [`MAX_NESTING`].

use crate::crypto::{Keyring, NONCE_SIZE};
use crate::messages::{msg_type, Message};
use crate::msgpack::{Reader, Writer};
use crate::{lzw, Error, MAX_DECOMPRESSED};

/// Most parts a compound may carry toward memberlist < 0.2.4 peers.
pub const MAX_COMPOUND_PARTS: usize = 127;
/// How deep compound/compress may nest on receive.
pub const MAX_NESTING: usize = 4;
/// Most messages one datagram may expand to.
pub const MAX_MESSAGES_PER_PACKET: usize = 4096;
/// Largest label (memberlist >= 0.3.0).
pub const MAX_LABEL: usize = 255;

/// Builds `07 N len.. parts..`. Parts beyond 127 or longer than 65535 bytes are an error.
pub fn make_compound<B: AsRef<[u8]>>(parts: &[B]) -> Result<Vec<u8>, Error> {
    if parts.len() > MAX_COMPOUND_PARTS {
        return Err(Error::Limit("too many compound parts"));
    }
    let total: usize = parts.iter().map(|p| p.as_ref().len()).sum();
    let mut out = Vec::with_capacity(2 + 2 * parts.len() + total);
    out.push(msg_type::COMPOUND);
    out.push(parts.len() as u8);
    for p in parts {
        let n =
            u16::try_from(p.as_ref().len()).map_err(|_| Error::Limit("compound part too long"))?;
        out.extend_from_slice(&n.to_be_bytes());
    }
    for p in parts {
        out.extend_from_slice(p.as_ref());
    }
    Ok(out)
}

/// Splits a compound body (after the `07`). Returns the parts and whether the tail was
/// truncated (parts past the end are dropped, the earlier ones kept, as Go does).
pub fn split_compound(body: &[u8]) -> Result<(Vec<&[u8]>, bool), Error> {
    let (&n, rest) = body
        .split_first()
        .ok_or(Error::Malformed("compound without count"))?;
    let n = n as usize;
    if rest.len() < 2 * n {
        return Err(Error::Malformed("compound length table truncated"));
    }
    let (lens, mut data) = rest.split_at(2 * n);
    let mut parts = Vec::with_capacity(n);
    for i in 0..n {
        let l = usize::from(u16::from_be_bytes([lens[2 * i], lens[2 * i + 1]]));
        if l > data.len() {
            return Ok((parts, true));
        }
        let (p, r) = data.split_at(l);
        parts.push(p);
        data = r;
    }
    Ok((parts, false))
}

/// Wraps `msg` as `09 {Algo: 0, Buf: lzw(msg)}`.
pub fn compress_message(msg: &[u8]) -> Result<Vec<u8>, Error> {
    let buf = lzw::compress(msg)?;
    let mut w = Writer::from_vec(Vec::with_capacity(buf.len() + 16));
    w.raw(&[msg_type::COMPRESS]);
    w.map(2).str("Algo").uint(0).str("Buf").bytes(&buf);
    Ok(w.into_vec())
}

/// Decodes a compress body from a reader (positioned after `09`) and returns the inner bytes.
pub fn decompress_body(r: &mut Reader<'_>) -> Result<Vec<u8>, Error> {
    let mut algo = 0u8;
    let mut buf: &[u8] = &[];
    r.struct_fields(|k, r| {
        match k {
            b"Algo" => algo = r.u8()?,
            b"Buf" => buf = r.bytes()?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    if algo != 0 {
        return Err(Error::Malformed("unknown compression algorithm"));
    }
    let out = lzw::decompress(buf, MAX_DECOMPRESSED)?;
    if out.is_empty() {
        return Err(Error::Malformed("empty decompressed message"));
    }
    Ok(out)
}

/// Prefixes `0c crc32_be`.
pub fn add_crc(inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len() + 5);
    out.push(msg_type::HAS_CRC);
    out.extend_from_slice(&crc32fast::hash(inner).to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// How to frame an outgoing packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketOptions<'a> {
    /// Try LZW and keep it if smaller.
    pub compress: bool,
    /// Prefix a CRC (the peer's PMax >= 5).
    pub crc: bool,
    /// Encrypt with the primary key (version 1).
    pub keyring: Option<&'a Keyring>,
    /// Label prefix (empty = none).
    pub label: &'a [u8],
}

/// Frames a payload (one message or a compound) for sending. `nonce` is used only when
/// encrypting and must be fresh for every packet.
pub fn encode_packet(
    payload: Vec<u8>,
    opts: &PacketOptions<'_>,
    nonce: &[u8; NONCE_SIZE],
) -> Result<Vec<u8>, Error> {
    let mut buf = payload;
    if opts.compress {
        let c = compress_message(&buf)?;
        if c.len() < buf.len() {
            buf = c;
        }
    }
    if opts.crc {
        buf = add_crc(&buf);
    }
    if let Some(kr) = opts.keyring {
        buf = kr.encrypt(1, nonce, &buf, opts.label)?;
    }
    if !opts.label.is_empty() {
        if opts.label.len() > MAX_LABEL {
            return Err(Error::Limit("label too long"));
        }
        let mut out = Vec::with_capacity(buf.len() + 2 + opts.label.len());
        out.push(msg_type::HAS_LABEL);
        out.push(opts.label.len() as u8);
        out.extend_from_slice(opts.label);
        out.extend_from_slice(&buf);
        buf = out;
    }
    Ok(buf)
}

/// How to read an incoming packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct InboundOptions<'a> {
    /// Keys to decrypt with (None = encryption off).
    pub keyring: Option<&'a Keyring>,
    /// Require encryption when a keyring is set (`GossipVerifyIncoming`).
    pub verify_incoming: bool,
    /// Expected label (empty = none).
    pub label: &'a [u8],
}

/// What a datagram held.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Every message, in order, compounds flattened.
    pub messages: Vec<Message>,
    /// Parts that could not be decoded (the others are still delivered).
    pub errors: Vec<Error>,
}

/// Removes a label prefix if present and checks it against `expected`.
pub fn strip_label<'b>(buf: &'b [u8], expected: &[u8]) -> Result<&'b [u8], Error> {
    if buf.first() == Some(&msg_type::HAS_LABEL) {
        let n = *buf.get(1).ok_or(Error::Malformed("label truncated"))? as usize;
        if n == 0 {
            return Err(Error::Malformed("empty label"));
        }
        let label = buf
            .get(2..2 + n)
            .ok_or(Error::Malformed("label truncated"))?;
        if label != expected {
            return Err(Error::Label);
        }
        Ok(&buf[2 + n..])
    } else if expected.is_empty() {
        Ok(buf)
    } else {
        Err(Error::Label)
    }
}

/// Unframes a datagram: label, decryption, CRC, then compound/compress recursively.
pub fn decode_packet(buf: &[u8], opts: &InboundOptions<'_>) -> Result<Decoded, Error> {
    let buf = strip_label(buf, opts.label)?;
    let plain;
    let mut data = buf;
    if let Some(kr) = opts.keyring.filter(|k| !k.is_empty()) {
        match kr.decrypt(buf, opts.label) {
            Ok(p) => {
                plain = p;
                data = &plain;
            }
            Err(e) if opts.verify_incoming => return Err(e),
            Err(_) => {}
        }
    }
    if data.len() >= 5 && data[0] == msg_type::HAS_CRC {
        let want = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
        if crc32fast::hash(&data[5..]) != want {
            return Err(Error::Crc);
        }
        data = &data[5..];
    }
    let mut out = Decoded::default();
    unframe(data, 0, &mut out)?;
    Ok(out)
}

fn unframe(data: &[u8], depth: usize, out: &mut Decoded) -> Result<(), Error> {
    if depth > MAX_NESTING {
        return Err(Error::Limit("compound/compress nested too deep"));
    }
    let &t = data.first().ok_or(Error::Malformed("empty message"))?;
    match t {
        msg_type::COMPOUND => {
            let (parts, truncated) = split_compound(&data[1..])?;
            if truncated {
                out.errors.push(Error::Malformed("compound truncated"));
            }
            for p in parts {
                if let Err(e) = unframe(p, depth + 1, out) {
                    out.errors.push(e);
                }
            }
        }
        msg_type::COMPRESS => {
            let mut r = Reader::new(&data[1..]);
            let inner = decompress_body(&mut r)?;
            unframe(&inner, depth + 1, out)?;
        }
        _ => {
            if out.messages.len() >= MAX_MESSAGES_PER_PACKET {
                return Err(Error::Limit("too many messages in one packet"));
            }
            out.messages.push(Message::decode(data)?);
        }
    }
    Ok(())
}
