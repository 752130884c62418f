//! Fuzz harnesses for `serf-wire`, one function per decoder.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these, and `crates/wire/tests/robustness.rs`
//! includes this very file (`#[path]`) to replay the seed corpus and its proptest inputs
//! through the same code. Every function accepts any bytes; it panics only when a decoder
//! panics or breaks one of the invariants checked here (bounded output, consumed length
//! within the input, decode -> encode -> decode is stable).
#![forbid(unsafe_code)]

use serf_wire::lzw;
use serf_wire::messages::Message;
use serf_wire::msgpack::Reader;
use serf_wire::packet::{self, InboundOptions, MAX_MESSAGES_PER_PACKET};
use serf_wire::serf::{self, Coordinate, PushPullState, SerfMessage};
use serf_wire::stream::{self, StreamMsg, StreamOptions};
use serf_wire::{Key, Keyring, MAX_DECOMPRESSED, MAX_PUSH_STATE};
use std::sync::OnceLock;

/// The 32-byte AES-256 key of the captures (`captures/vectors/encryption-key.b64`), so the
/// encrypted seeds decrypt and their plaintext is fuzzed too.
pub const FUZZ_KEY: [u8; 32] = [
    88, 47, 13, 152, 255, 2, 64, 140, 192, 190, 7, 173, 189, 190, 53, 202, 234, 0, 44, 31, 161,
    149, 23, 207, 186, 27, 52, 69, 141, 72, 5, 28,
];

/// Output cap used by the `lzw` target (the packet and stream targets use the real
/// [`MAX_DECOMPRESSED`]).
pub const LZW_FUZZ_CAP: usize = 1 << 20;

/// The fixed keyring holding [`FUZZ_KEY`].
pub fn keyring() -> &'static Keyring {
    static KR: OnceLock<Keyring> = OnceLock::new();
    KR.get_or_init(|| match Key::new(&FUZZ_KEY) {
        Ok(k) => Keyring::new(k, vec![]),
        Err(e) => panic!("fuzz key refused: {e}"),
    })
}

/// Target `packet`: `packet::decode_packet` without encryption, with the fixed keyring
/// (encryption optional and required) and with a label expected.
pub fn packet(data: &[u8]) {
    let kr = keyring();
    let variants = [
        InboundOptions::default(),
        InboundOptions {
            keyring: Some(kr),
            verify_incoming: false,
            label: b"",
        },
        InboundOptions {
            keyring: Some(kr),
            verify_incoming: true,
            label: b"",
        },
        InboundOptions {
            keyring: None,
            verify_incoming: false,
            label: b"fuzz",
        },
    ];
    for opts in &variants {
        if let Ok(d) = packet::decode_packet(data, opts) {
            assert!(d.messages.len() <= MAX_MESSAGES_PER_PACKET);
            for m in &d.messages {
                message_roundtrip(m);
            }
        }
    }
}

/// Target `message`: `messages::Message::decode`.
pub fn message(data: &[u8]) {
    if let Ok(m) = Message::decode(data) {
        message_roundtrip(&m);
    }
}

/// A decoded message re-encodes to bytes that decode to the same message.
fn message_roundtrip(m: &Message) {
    let enc = m.encode();
    match Message::decode(&enc) {
        Ok(again) => assert_eq!(&again, m, "message changed after re-encoding"),
        Err(e) => panic!("re-encoded message does not decode: {e} ({m:?})"),
    }
}

/// Target `stream`: `stream::decode_stream` without encryption and with the fixed keyring
/// (encryption optional and required).
pub fn stream(data: &[u8]) {
    let kr = keyring();
    let variants = [
        StreamOptions::default(),
        StreamOptions {
            keyring: Some(kr),
            verify_incoming: false,
            label: b"",
        },
        StreamOptions {
            keyring: Some(kr),
            verify_incoming: true,
            label: b"",
        },
    ];
    for opts in &variants {
        if let Ok((msg, used)) = stream::decode_stream(data, opts) {
            assert!(
                used > 0 && used <= data.len(),
                "consumed {used} of {}",
                data.len()
            );
            assert!(used <= MAX_PUSH_STATE + 64);
            // The consumed prefix alone is the same message.
            match stream::decode_stream(&data[..used], opts) {
                Ok((again, n)) => {
                    assert_eq!(n, used);
                    assert_eq!(again, msg, "prefix decodes differently");
                }
                Err(e) => panic!("consumed prefix does not decode: {e}"),
            }
            stream_roundtrip(&msg);
        }
    }
}

/// A decoded stream message re-encodes (plain) to bytes that decode to the same message.
fn stream_roundtrip(msg: &StreamMsg) {
    let enc = match msg {
        StreamMsg::Ping(p) => Message::Ping(p.clone()).encode(),
        StreamMsg::Ack(a) => Message::Ack(a.clone()).encode(),
        StreamMsg::PushPull(pp) => serf_wire::encode_push_pull(pp),
        StreamMsg::User(b) => stream::encode_user_stream(b),
        StreamMsg::Err(e) => stream::encode_err(&e.error),
    };
    match stream::decode_stream(&enc, &StreamOptions::default()) {
        Ok((again, n)) => {
            assert_eq!(n, enc.len());
            assert_eq!(&again, msg, "stream message changed after re-encoding");
        }
        Err(e) => panic!("re-encoded stream message does not decode: {e}"),
    }
}

/// Target `serf`: `SerfMessage::decode`, `PushPullState::decode`, `decode_tags` and
/// `Coordinate::decode_payload`, each on the same bytes.
pub fn serf(data: &[u8]) {
    if let Ok(m) = SerfMessage::decode(data) {
        match SerfMessage::decode(&m.encode()) {
            Ok(again) => assert_eq!(again, m, "serf message changed after re-encoding"),
            Err(e) => panic!("re-encoded serf message does not decode: {e} ({m:?})"),
        }
    }
    if let Ok(st) = PushPullState::decode(data) {
        assert!(st.events.len() <= serf::MAX_EVENT_SLOTS);
        match PushPullState::decode(&st.encode()) {
            Ok(again) => assert_eq!(again, st, "serf state changed after re-encoding"),
            Err(e) => panic!("re-encoded serf state does not decode: {e}"),
        }
    }
    let tags = serf::decode_tags(data);
    if let Ok(meta) = serf::encode_tags(&tags) {
        assert_eq!(
            serf::decode_tags(&meta),
            tags,
            "tags changed after re-encoding"
        );
    }
    if let Ok(c) = Coordinate::decode_payload(data) {
        assert!(c.vec.len() <= 64);
        // Compare bytes, not values: NaN is allowed and is not equal to itself.
        let enc = c.encode_payload();
        match Coordinate::decode_payload(&enc) {
            Ok(again) => assert_eq!(again.encode_payload(), enc, "coordinate changed"),
            Err(e) => panic!("re-encoded coordinate does not decode: {e}"),
        }
    }
}

/// Target `lzw`: `lzw::decompress` with a cap of [`LZW_FUZZ_CAP`], and compress/decompress
/// of the input itself.
pub fn lzw(data: &[u8]) {
    if let Ok(out) = lzw::decompress(data, LZW_FUZZ_CAP) {
        assert!(out.len() <= LZW_FUZZ_CAP);
    }
    match lzw::compress(data) {
        Ok(c) => match lzw::decompress(&c, data.len().min(MAX_DECOMPRESSED)) {
            Ok(back) => assert_eq!(back, data, "lzw roundtrip differs"),
            Err(e) => panic!("lzw roundtrip failed: {e}"),
        },
        Err(e) => panic!("lzw compress failed: {e}"),
    }
}

/// Target `msgpack`: `msgpack::Reader::skip` over a sequence of values, plus every typed
/// read on the first value.
pub fn msgpack(data: &[u8]) {
    let mut r = Reader::new(data);
    while !r.remaining().is_empty() {
        let before = r.position();
        if r.skip().is_err() {
            break;
        }
        let after = r.position();
        assert!(after > before && after <= data.len());
        // The value alone skips to exactly its end.
        let mut one = Reader::new(&data[before..after]);
        assert!(one.skip().is_ok(), "a skipped value does not skip alone");
        assert!(one.remaining().is_empty());
    }
    assert!(r.position() <= data.len());

    let fresh = || Reader::new(data);
    let _ = fresh().peek_kind();
    let _ = fresh().try_nil();
    let _ = fresh().map_len();
    let _ = fresh().array_len();
    let _ = fresh().uint();
    let _ = fresh().int_any();
    let _ = fresh().u32();
    let _ = fresh().u16();
    let _ = fresh().u8();
    let _ = fresh().i64();
    let _ = fresh().len_field();
    let _ = fresh().bool();
    let _ = fresh().f64();
    let _ = fresh().str_bytes();
    let _ = fresh().string();
    let _ = fresh().bytes();
    let _ = fresh().byte_vec();
    let _ = fresh().str_map();
    let _ = fresh().str_array();
    let _ = fresh().struct_fields(|_, _| Ok(false));
    if let Ok(n) = fresh().map_len() {
        assert!(n <= data.len());
    }
    if let Ok(n) = fresh().array_len() {
        assert!(n <= data.len());
    }
}
