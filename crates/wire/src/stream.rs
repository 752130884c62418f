//! TCP stream framing (docs/memberlist-protocol.md section 7). Plaintext stream messages carry no length, so
//! [`decode_stream`] parses incrementally: it returns [`Error::Eof`] while the buffer holds
//! only part of a message, and the caller reads more and calls again.

use crate::crypto::{Keyring, NONCE_SIZE};
use crate::messages::{msg_type, Ack, ErrResp, Ping, PushNodeState, PushPull, PushPullHeader};
use crate::msgpack::{Reader, Writer};
use crate::packet::decompress_body;
use crate::{Error, MAX_PUSH_PULL_NODES, MAX_PUSH_STATE};

/// One message read from a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMsg {
    /// Fallback ping.
    Ping(Ping),
    /// Fallback ack.
    Ack(Ack),
    /// State exchange.
    PushPull(PushPull),
    /// Reliable user message.
    User(Vec<u8>),
    /// Error reply.
    Err(ErrResp),
}

/// Error text Go sends when an encrypted stream reaches a node without keys.
pub const ERR_REMOTE_ENCRYPTED: &str = "Remote state is encrypted and encryption is not configured";
/// Error text Go sends when a plaintext stream reaches a node that requires encryption.
pub const ERR_REMOTE_PLAIN: &str = "Encryption is configured but remote state is not encrypted";

/// Encodes a stream message: compress (always, if enabled), then encrypt (if a keyring is
/// given) as `0a L payload` with AAD = `0a L` (+ label).
pub fn encode_stream(
    msg: &[u8],
    compress: bool,
    keyring: Option<&Keyring>,
    label: &[u8],
    nonce: &[u8; NONCE_SIZE],
) -> Result<Vec<u8>, Error> {
    let body = if compress {
        crate::packet::compress_message(msg)?
    } else {
        msg.to_vec()
    };
    match keyring.filter(|k| !k.is_empty()) {
        None => Ok(body),
        Some(kr) => {
            let len = (crate::crypto::ENCRYPT_OVERHEAD + body.len()) as u32;
            let mut head = Vec::with_capacity(5 + label.len());
            head.push(msg_type::ENCRYPT);
            head.extend_from_slice(&len.to_be_bytes());
            head.extend_from_slice(label);
            let sealed = kr.encrypt(1, nonce, &body, &head)?;
            let mut out = Vec::with_capacity(5 + sealed.len());
            out.extend_from_slice(&head[..5]);
            out.extend_from_slice(&sealed);
            Ok(out)
        }
    }
}

/// Encodes an error reply body (`0d {Error}`), unframed.
pub fn encode_err(text: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[msg_type::ERR]);
    ErrResp {
        error: text.to_string(),
    }
    .encode_body(&mut w);
    w.into_vec()
}

/// Encodes a stream ping/ack (same bytes as the packet form).
pub fn encode_user_stream(payload: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[msg_type::USER])
        .map(1)
        .str("UserMsgLen")
        .uint(payload.len() as u64);
    w.raw(payload);
    w.into_vec()
}

/// Inbound stream settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamOptions<'a> {
    /// Keys (None or empty = encryption off).
    pub keyring: Option<&'a Keyring>,
    /// Require encryption when keys are set.
    pub verify_incoming: bool,
    /// Label expected in the AAD of encrypted frames.
    pub label: &'a [u8],
}

/// Tries to decode one stream message from the start of `buf`. `Ok((msg, consumed))` on
/// success, `Err(Error::Eof)` if more bytes are needed, any other error is final.
pub fn decode_stream(buf: &[u8], opts: &StreamOptions<'_>) -> Result<(StreamMsg, usize), Error> {
    let &t = buf.first().ok_or(Error::Eof)?;
    let keyring = opts.keyring.filter(|k| !k.is_empty());
    if t == msg_type::ENCRYPT {
        let kr = keyring.ok_or(Error::Mismatch(ERR_REMOTE_ENCRYPTED))?;
        let head = buf.get(..5).ok_or(Error::Eof)?;
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        if len > MAX_PUSH_STATE {
            return Err(Error::Limit("encrypted stream frame over 20 MiB"));
        }
        let payload = buf.get(5..5 + len).ok_or(Error::Eof)?;
        let mut aad = head.to_vec();
        aad.extend_from_slice(opts.label);
        let plain = kr.decrypt(payload, &aad)?;
        let msg = decode_plain(&plain).map_err(|e| match e {
            Error::Eof => Error::Malformed("encrypted stream message truncated"),
            e => e,
        })?;
        return Ok((msg.0, 5 + len));
    }
    if keyring.is_some() && opts.verify_incoming {
        return Err(Error::Mismatch(ERR_REMOTE_PLAIN));
    }
    decode_plain(buf)
}

/// Decodes an unencrypted (possibly compressed) stream message.
fn decode_plain(buf: &[u8]) -> Result<(StreamMsg, usize), Error> {
    let &t = buf.first().ok_or(Error::Eof)?;
    if t == msg_type::COMPRESS {
        let mut r = Reader::new(&buf[1..]);
        let inner = decompress_body(&mut r)?;
        let consumed = 1 + r.position();
        let (m, _) = decode_body(&inner).map_err(|e| match e {
            Error::Eof => Error::Malformed("compressed stream message truncated"),
            e => e,
        })?;
        return Ok((m, consumed));
    }
    decode_body(buf)
}

fn decode_body(buf: &[u8]) -> Result<(StreamMsg, usize), Error> {
    let (&t, rest) = buf.split_first().ok_or(Error::Eof)?;
    let mut r = Reader::new(rest);
    let m = match t {
        msg_type::PING => StreamMsg::Ping(Ping::decode_body(&mut r)?),
        msg_type::ACK => StreamMsg::Ack(Ack::decode_body(&mut r)?),
        msg_type::ERR => StreamMsg::Err(ErrResp::decode_body(&mut r)?),
        msg_type::USER => {
            let mut len = 0usize;
            r.struct_fields(|k, r| {
                if k == b"UserMsgLen" {
                    len = r.len_field()?;
                    return Ok(true);
                }
                Ok(false)
            })?;
            if len > MAX_PUSH_STATE {
                return Err(Error::Limit("stream user message over 20 MiB"));
            }
            StreamMsg::User(r.take(len)?.to_vec())
        }
        msg_type::PUSH_PULL => {
            let h = PushPullHeader::decode_body(&mut r)?;
            if h.nodes > MAX_PUSH_PULL_NODES {
                return Err(Error::Limit("push/pull announces too many nodes"));
            }
            if h.user_state_len > MAX_PUSH_STATE {
                return Err(Error::Limit("push/pull user state over 20 MiB"));
            }
            let mut nodes = Vec::with_capacity(h.nodes.min(1024));
            for _ in 0..h.nodes {
                nodes.push(PushNodeState::decode_body(&mut r)?);
            }
            let user_state = r.take(h.user_state_len)?.to_vec();
            StreamMsg::PushPull(PushPull {
                join: h.join,
                nodes,
                user_state,
            })
        }
        other => return Err(Error::UnknownType(other)),
    };
    if 1 + r.position() > MAX_PUSH_STATE + 64 {
        return Err(Error::Limit("stream message over 20 MiB"));
    }
    Ok((m, 1 + r.position()))
}
