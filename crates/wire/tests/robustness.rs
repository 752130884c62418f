//! Every decoder is bounded and never panics.
//!
//! * The fuzz seed corpus (`fuzz/seeds/<target>/`: the captured vectors, what they contain,
//!   and every crash input the fuzzers found) is replayed through the same harness functions
//!   the cargo-fuzz targets call (`fuzz/src/lib.rs`, included below).
//! * proptest: random bytes and mutated vectors into every decoder, truncated stream messages,
//!   encode/decode roundtrips, and the hard limits.
// Test code: a failed `expect` is a failed test.
#![allow(clippy::expect_used)]

// The harness is the fuzz crate's public API; here it is a private module.
#[allow(unreachable_pub)]
#[path = "../fuzz/src/lib.rs"]
mod harness;

use base64::Engine;
use proptest::prelude::*;
use serf_testdata::files_under;
use serf_wire::messages::{
    Alive, Message, NodeStateKind, Ping, PushNodeState, PushPull, PushPullHeader, Suspect,
};
use serf_wire::msgpack::{Flavor, Reader, Writer, MAX_DEPTH};
use serf_wire::packet::{self, InboundOptions, PacketOptions, MAX_COMPOUND_PARTS};
use serf_wire::serf::{PushPullState, MAX_EVENT_SLOTS};
use serf_wire::stream::{self, StreamMsg, StreamOptions};
use serf_wire::{lzw, Error, MAX_DECOMPRESSED, MAX_PUSH_PULL_NODES, MAX_PUSH_STATE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// Seed corpus replay.

/// A fuzz harness: any bytes in, panics only on a bug.
type Harness = fn(&[u8]);

/// The fuzz targets, by seed directory name.
const TARGETS: [(&str, Harness); 6] = [
    ("packet", harness::packet),
    ("stream", harness::stream),
    ("message", harness::message),
    ("serf", harness::serf),
    ("lzw", harness::lzw),
    ("msgpack", harness::msgpack),
];

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds")
}

#[test]
fn seed_corpus_replays_without_panic() {
    let root = seeds_dir();
    let files = files_under(&root);
    let mut per_target = [0usize; TARGETS.len()];
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under seeds");
        let target = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("seed path");
        let i = TARGETS
            .iter()
            .position(|(t, _)| *t == target)
            .unwrap_or_else(|| panic!("{}: no fuzz target named {target:?}", f.display()));
        per_target[i] += 1;
    }
    for (i, (t, _)) in TARGETS.iter().enumerate() {
        assert!(per_target[i] > 0, "no seeds for target {t}");
    }
    assert_eq!(seeds().len(), files.len());
    for (path, f, data) in seeds() {
        // Named, so a panic says which seed.
        let r = std::panic::catch_unwind(|| f(data));
        assert!(r.is_ok(), "seed {} panicked", path.display());
    }
}

fn vectors_dir() -> PathBuf {
    serf_testdata::path(serf_testdata::MEMBERLIST_VECTORS)
}

/// Every captured vector, decoded from hex, sorted by name.
fn vectors() -> &'static [(String, Vec<u8>)] {
    static V: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    V.get_or_init(|| {
        let dir = vectors_dir();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let p = e.expect("dir entry").path();
            if p.extension().is_some_and(|x| x == "hex") {
                let name = p
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .expect("name")
                    .to_string();
                let s = std::fs::read_to_string(&p).expect("read vector");
                out.push((name, hex::decode(s.trim()).expect("hex")));
            }
        }
        out.sort();
        assert!(out.len() >= 26, "captured vectors missing");
        out
    })
}

fn is_stream_vector(name: &str) -> bool {
    name.starts_with("tcp_")
}

#[test]
fn seeds_hold_every_captured_vector() {
    for (name, raw) in vectors() {
        let t = if is_stream_vector(name) {
            "stream"
        } else {
            "packet"
        };
        let p = seeds_dir().join(t).join(format!("{name}.bin"));
        let seed = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(&seed, raw, "{} differs from the capture", p.display());
    }
    let b64 = std::fs::read_to_string(vectors_dir().join("encryption-key.b64")).expect("key");
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("base64");
    assert_eq!(
        key,
        harness::FUZZ_KEY,
        "the fuzz keyring is the capture key"
    );
}

// ---------------------------------------------------------------------------------------
// Random bytes and mutated vectors.

fn all_decoders(data: &[u8]) {
    for (_, f) in TARGETS {
        f(data);
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(u32, u8),
    SetByte(u32, u8),
    Truncate(u32),
    Insert(u32, Vec<u8>),
    Remove(u32, u8),
    Duplicate(u32, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<u32>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        2 => (any::<u32>(), any::<u8>()).prop_map(|(p, b)| Mutation::SetByte(p, b)),
        1 => any::<u32>().prop_map(Mutation::Truncate),
        2 => (any::<u32>(), prop::collection::vec(any::<u8>(), 1..9))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        1 => (any::<u32>(), 1u8..16).prop_map(|(p, n)| Mutation::Remove(p, n)),
        1 => (any::<u32>(), 1u8..32).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    let at = |p: u32, len: usize| p as usize % (len + 1);
    match m {
        Mutation::FlipBit(p, b) => {
            if !buf.is_empty() {
                let i = *p as usize % buf.len();
                buf[i] ^= 1 << b;
            }
        }
        Mutation::SetByte(p, v) => {
            if !buf.is_empty() {
                let i = *p as usize % buf.len();
                buf[i] = *v;
            }
        }
        Mutation::Truncate(p) => buf.truncate(at(*p, buf.len())),
        Mutation::Insert(p, b) => {
            let i = at(*p, buf.len());
            buf.splice(i..i, b.iter().copied());
        }
        Mutation::Remove(p, n) => {
            let i = at(*p, buf.len());
            let end = (i + usize::from(*n)).min(buf.len());
            buf.drain(i..end);
        }
        Mutation::Duplicate(p, n) => {
            let i = at(*p, buf.len());
            let end = (i + usize::from(*n)).min(buf.len());
            let copy = buf[i..end].to_vec();
            buf.splice(end..end, copy);
        }
    }
}

/// A message type byte (or a framing/label byte) followed by random bytes, to get past the
/// first dispatch more often than uniform bytes do.
fn typed_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![0u8..14, Just(0xf4), Just(0xff)],
        prop::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(t, mut rest)| {
            rest.insert(0, t);
            rest
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        all_decoders(&data);
    }

    #[test]
    fn typed_random_bytes_never_panic(data in typed_bytes()) {
        all_decoders(&data);
    }

    #[test]
    fn random_msgpack_maps_never_panic(
        fields in prop::collection::vec(
            (prop::sample::select(vec![
                "Node", "SeqNo", "SourceAddr", "SourceNode", "SourcePort", "Addr",
                "Incarnation", "Meta", "Port", "Vsn", "From", "Payload", "Target", "Nack",
                "Join", "Nodes", "UserStateLen", "Name", "State", "LTime", "Events",
                "Filters", "ID", "Algo", "Buf", "Error", "Vec", "StatusLTimes",
            ]), prop::collection::vec(any::<u8>(), 0..24)),
            0..10,
        ),
        t in prop_oneof![0u8..14, Just(0xff)],
    ) {
        // A map of real field names with random values reaches the field decoders.
        let mut w = Writer::new();
        w.raw(&[t]).map(fields.len());
        for (k, v) in &fields {
            w.str(k).raw(v);
        }
        all_decoders(&w.buf);
    }
}

/// Every seed file with the harness of its target directory.
fn seeds() -> &'static [(PathBuf, Harness, Vec<u8>)] {
    static S: OnceLock<Vec<(PathBuf, Harness, Vec<u8>)>> = OnceLock::new();
    S.get_or_init(|| {
        let mut out = Vec::new();
        for (t, f) in TARGETS {
            for p in files_under(&seeds_dir().join(t)) {
                let data = std::fs::read(&p).expect("read seed");
                out.push((p, f, data));
            }
        }
        out
    })
}

fn mutate(buf: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = buf.to_vec();
    for m in muts {
        apply(&mut b, m);
    }
    b
}

/// A mutated packet vector whose CRC and encryption are redone around the mutated content,
/// so the mutation reaches the message decoders instead of failing the CRC or the tag.
fn mutate_inside_packet(raw: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let kr = harness::keyring();
    let crc_inside = |plain: &[u8]| match plain.split_first() {
        Some((12, rest)) if rest.len() >= 4 => packet::add_crc(&mutate(&rest[4..], muts)),
        _ => mutate(plain, muts),
    };
    match kr.decrypt(raw, b"") {
        Ok(plain) => {
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&raw[1..13]);
            kr.encrypt(1, &nonce, &crc_inside(&plain), b"")
                .expect("encrypt")
        }
        Err(_) => crc_inside(raw),
    }
}

/// A mutated stream vector, re-encrypted around the mutated plaintext if it was encrypted.
fn mutate_inside_stream(raw: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let kr = harness::keyring();
    if raw.first() == Some(&10) && raw.len() > 5 {
        if let Ok(plain) = kr.decrypt(&raw[5..], &raw[..5]) {
            let enc = stream::encode_stream(&mutate(&plain, muts), false, Some(kr), b"", &[1; 12]);
            return enc.expect("encrypt");
        }
    }
    mutate(raw, muts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_vectors_never_panic(muts in prop::collection::vec(mutation(), 1..6)) {
        // Every seed (the captured vectors and what they contain) through its own target.
        for (_, f, data) in seeds() {
            f(&mutate(data, &muts));
        }
        // The captured vectors again, mutated under their CRC and encryption.
        for (name, raw) in vectors() {
            if is_stream_vector(name) {
                harness::stream(&mutate_inside_stream(raw, &muts));
            } else {
                harness::packet(&mutate_inside_packet(raw, &muts));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Truncated stream messages.

fn stream_variants() -> [StreamOptions<'static>; 3] {
    let kr = harness::keyring();
    [
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
    ]
}

#[test]
fn every_truncated_stream_vector_is_an_error() {
    for (name, raw) in vectors().iter().filter(|(n, _)| is_stream_vector(n)) {
        let encrypted = raw[0] == 10;
        for opts in stream_variants()
            .iter()
            .filter(|o| o.keyring.is_some() == encrypted)
        {
            let (_, used) = stream::decode_stream(raw, opts).expect(name);
            assert_eq!(used, raw.len());
            for cut in 0..raw.len() {
                assert!(
                    stream::decode_stream(&raw[..cut], opts).is_err(),
                    "{name} cut at {cut} decoded"
                );
            }
            // A plain prefix never needs more than the whole message: Eof until complete.
            if !encrypted && raw[0] != 9 {
                for cut in 0..raw.len() {
                    assert_eq!(
                        stream::decode_stream(&raw[..cut], opts).err(),
                        Some(Error::Eof),
                        "{name} cut at {cut}"
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies for message fields.

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9.-]{0,20}",
        1 => prop::collection::vec(any::<char>(), 0..40).prop_map(|v| v.into_iter().collect()),
        1 => prop::collection::vec(any::<char>(), 32..300).prop_map(|v| v.into_iter().collect()),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        any::<[u8; 4]>().prop_map(|b| IpAddr::V6(Ipv4Addr::from(b).to_ipv6_mapped())),
        Just(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    ]
}

/// What the decoder returns for an address: IPv4-mapped IPv6 becomes IPv4.
fn norm(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn meta() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..=512)
}

fn vsn() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        4 => prop::collection::vec(any::<u8>(), 6),
    ]
}

fn ping() -> impl Strategy<Value = Ping> {
    (
        any::<u32>(),
        name(),
        prop::option::of(ip()),
        any::<u16>(),
        name(),
    )
        .prop_map(
            |(seq_no, node, source_addr, source_port, source_node)| Ping {
                seq_no,
                node,
                source_addr: source_addr.map(norm),
                source_port,
                source_node,
            },
        )
}

fn alive() -> impl Strategy<Value = Alive> {
    (any::<u32>(), name(), ip(), any::<u16>(), meta(), vsn()).prop_map(
        |(incarnation, node, addr, port, meta, vsn)| Alive {
            incarnation,
            node,
            addr: norm(addr),
            port,
            meta,
            vsn,
        },
    )
}

fn suspect() -> impl Strategy<Value = Suspect> {
    (any::<u32>(), name(), name()).prop_map(|(incarnation, node, from)| Suspect {
        incarnation,
        node,
        from,
    })
}

fn node_state() -> impl Strategy<Value = PushNodeState> {
    (
        name(),
        ip(),
        any::<u16>(),
        meta(),
        any::<u32>(),
        0u64..4,
        vsn(),
    )
        .prop_map(
            |(name, addr, port, meta, incarnation, state, vsn)| PushNodeState {
                name,
                addr: norm(addr),
                port,
                meta,
                incarnation,
                state: NodeStateKind::from_u64(state).expect("state"),
                vsn,
            },
        )
}

fn push_pull() -> impl Strategy<Value = PushPull> {
    (
        any::<bool>(),
        prop::collection::vec(node_state(), 0..6),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(join, nodes, user_state)| PushPull {
            join,
            nodes,
            user_state,
        })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        ping().prop_map(Message::Ping),
        alive().prop_map(Message::Alive),
        suspect().prop_map(Message::Suspect),
        suspect().prop_map(Message::Dead),
    ]
}

fn stream_msg() -> impl Strategy<Value = (StreamMsg, Vec<u8>)> {
    prop_oneof![
        ping().prop_map(|p| {
            let b = Message::Ping(p.clone()).encode();
            (StreamMsg::Ping(p), b)
        }),
        push_pull().prop_map(|pp| {
            let b = serf_wire::encode_push_pull(&pp);
            (StreamMsg::PushPull(pp), b)
        }),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|u| {
            let b = stream::encode_user_stream(&u);
            (StreamMsg::User(u), b)
        }),
        name().prop_map(|e| {
            let b = stream::encode_err(&e);
            (StreamMsg::Err(serf_wire::messages::ErrResp { error: e }), b)
        }),
    ]
}

// ---------------------------------------------------------------------------------------
// Roundtrips.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn msgpack_uint_roundtrip(v in prop_oneof![any::<u64>(), 0u64..300, 60000u64..70000]) {
        let mut w = Writer::new();
        w.uint(v);
        let expected_len = match v {
            0..=127 => 1,
            128..=255 => 2,
            256..=65535 => 3,
            65536..=0xffff_ffff => 5,
            _ => 9,
        };
        prop_assert_eq!(w.buf.len(), expected_len);
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.uint(), Ok(v));
        prop_assert!(r.remaining().is_empty());
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.skip(), Ok(()));
        prop_assert!(r.remaining().is_empty());
    }

    #[test]
    fn msgpack_int_roundtrip(v in prop_oneof![any::<i64>(), -300i64..300]) {
        let mut w = Writer::new();
        w.int(v);
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.i64(), Ok(v));
        prop_assert!(r.remaining().is_empty());
        prop_assert_eq!(Reader::new(&w.buf).int_any(), Ok(i128::from(v)));
        if v >= 0 {
            prop_assert_eq!(Reader::new(&w.buf).uint(), Ok(v as u64));
        } else {
            prop_assert!(Reader::new(&w.buf).uint().is_err());
        }
    }

    #[test]
    fn msgpack_f64_roundtrip(bits in any::<u64>()) {
        let mut w = Writer::new();
        w.f64(f64::from_bits(bits));
        let got = Reader::new(&w.buf).f64().map(f64::to_bits);
        prop_assert_eq!(got, Ok(bits));
    }

    #[test]
    fn msgpack_str_roundtrip(s in name(), rpc in any::<bool>()) {
        let flavor = if rpc { Flavor::Rpc } else { Flavor::Gossip };
        let mut w = Writer::with_flavor(flavor);
        w.str(&s).uint(7);
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.string(), Ok(s.clone()));
        prop_assert_eq!(r.uint(), Ok(7));
        prop_assert!(r.remaining().is_empty());
        if !rpc {
            // Gossip never writes str8 (d9).
            prop_assert_ne!(w.buf[0], 0xd9);
        }
    }

    #[test]
    fn msgpack_bytes_roundtrip(b in prop::collection::vec(any::<u8>(), 0..600), rpc in any::<bool>()) {
        let flavor = if rpc { Flavor::Rpc } else { Flavor::Gossip };
        let mut w = Writer::with_flavor(flavor);
        w.bytes(&b).bool(true);
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.bytes(), Ok(&b[..]));
        prop_assert_eq!(r.bool(), Ok(true));
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.byte_vec(), Ok(b.clone()));
        let mut r = Reader::new(&w.buf);
        prop_assert_eq!(r.skip(), Ok(()));
        prop_assert_eq!(r.skip(), Ok(()));
        prop_assert!(r.remaining().is_empty());
        if !rpc {
            // Byte slices are raw strings in gossip: never bin.
            prop_assert!(!(0xc4..=0xc6).contains(&w.buf[0]));
        }
    }

    #[test]
    fn message_roundtrip(m in message()) {
        let enc = m.encode();
        prop_assert_eq!(Message::decode(&enc), Ok(m.clone()));
        harness::message(&enc);
    }

    #[test]
    fn message_roundtrips_through_packet_framing(
        m in message(),
        compress in any::<bool>(),
        crc in any::<bool>(),
        encrypt in any::<bool>(),
        label in prop_oneof![Just(Vec::new()), prop::collection::vec(any::<u8>(), 1..=255)],
        nonce in any::<[u8; 12]>(),
    ) {
        let kr = harness::keyring();
        let keyring = encrypt.then_some(kr);
        let out = PacketOptions { compress, crc, keyring, label: &label };
        let p = packet::encode_packet(m.encode(), &out, &nonce).expect("encode");
        let inb = InboundOptions { keyring, verify_incoming: encrypt, label: &label };
        let d = packet::decode_packet(&p, &inb).expect("decode");
        prop_assert!(d.errors.is_empty());
        prop_assert_eq!(d.messages, vec![m]);
    }

    #[test]
    fn push_pull_roundtrip(pp in push_pull()) {
        let enc = serf_wire::encode_push_pull(&pp);
        let (m, used) = stream::decode_stream(&enc, &StreamOptions::default()).expect("decode");
        prop_assert_eq!(used, enc.len());
        prop_assert_eq!(m, StreamMsg::PushPull(pp));
    }

    #[test]
    fn stream_roundtrip_and_truncation(
        (msg, plain) in stream_msg(),
        compress in any::<bool>(),
        encrypt in any::<bool>(),
        nonce in any::<[u8; 12]>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let kr = harness::keyring();
        let keyring = encrypt.then_some(kr);
        let enc = stream::encode_stream(&plain, compress, keyring, b"", &nonce).expect("encode");
        let opts = StreamOptions { keyring, verify_incoming: encrypt, label: b"" };
        // Followed by the next message's bytes: exactly one message is consumed.
        let mut two = enc.clone();
        two.extend_from_slice(&enc);
        let (m, used) = stream::decode_stream(&two, &opts).expect("decode");
        prop_assert_eq!(used, enc.len());
        prop_assert_eq!(m, msg);
        // Any proper prefix is an error (Eof while plain), never a message.
        let cut = cut.index(enc.len());
        let r = stream::decode_stream(&enc[..cut], &opts);
        prop_assert!(r.is_err(), "prefix of {} bytes decoded: {:?}", cut, r);
        if !compress && !encrypt {
            prop_assert_eq!(r.err(), Some(Error::Eof));
        }
    }

    #[test]
    fn compound_roundtrip(parts in prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..48), 0..=MAX_COMPOUND_PARTS)
    ) {
        let c = packet::make_compound(&parts).expect("make");
        prop_assert_eq!(c[0], 7);
        let (split, truncated) = packet::split_compound(&c[1..]).expect("split");
        prop_assert!(!truncated);
        prop_assert_eq!(split, parts.iter().map(Vec::as_slice).collect::<Vec<_>>());
    }
}

proptest! {
    // Up to 127 messages of up to ~1 KiB each: fewer cases keep the suite fast in debug.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn compound_of_messages_roundtrips(msgs in prop::collection::vec(message(), 1..=MAX_COMPOUND_PARTS)) {
        let parts: Vec<Vec<u8>> = msgs.iter().map(Message::encode).collect();
        let c = packet::make_compound(&parts).expect("make");
        let d = packet::decode_packet(&c, &InboundOptions::default()).expect("decode");
        prop_assert!(d.errors.is_empty());
        prop_assert_eq!(d.messages, msgs);
    }
}

#[test]
fn compound_of_128_parts_is_refused() {
    let parts = vec![vec![0u8; 1]; MAX_COMPOUND_PARTS + 1];
    assert!(matches!(
        packet::make_compound(&parts),
        Err(Error::Limit(_))
    ));
    let parts = vec![vec![0u8; 1]; MAX_COMPOUND_PARTS];
    assert!(packet::make_compound(&parts).is_ok());
    assert!(matches!(
        packet::make_compound(&[vec![0u8; 65536]]),
        Err(Error::Limit(_))
    ));
}

#[test]
fn msgpack_long_strings_and_bytes_roundtrip() {
    for n in [0usize, 31, 32, 255, 256, 65535, 65536, 70000] {
        let s = "x".repeat(n);
        for flavor in [Flavor::Gossip, Flavor::Rpc] {
            let mut w = Writer::with_flavor(flavor);
            w.str(&s).bytes(s.as_bytes());
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.string().as_deref(), Ok(s.as_str()), "{n} {flavor:?}");
            assert_eq!(r.bytes(), Ok(s.as_bytes()), "{n} {flavor:?}");
            assert!(r.remaining().is_empty());
            // Truncated by one byte: Eof, not a shorter string.
            let mut r = Reader::new(&w.buf[..w.buf.len() - 1]);
            assert!(r.string().is_ok());
            assert_eq!(r.bytes(), Err(Error::Eof));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hard limits.

fn keyed() -> StreamOptions<'static> {
    StreamOptions {
        keyring: Some(harness::keyring()),
        verify_incoming: true,
        label: b"",
    }
}

#[test]
fn oversized_encrypted_stream_frame_is_refused_from_its_header() {
    for len in [MAX_PUSH_STATE as u32 + 1, 1 << 30, u32::MAX] {
        let mut head = vec![10u8];
        head.extend_from_slice(&len.to_be_bytes());
        assert!(
            matches!(stream::decode_stream(&head, &keyed()), Err(Error::Limit(_))),
            "frame of {len} bytes"
        );
    }
    // At the limit the reader just asks for the rest.
    let mut head = vec![10u8];
    head.extend_from_slice(&(MAX_PUSH_STATE as u32).to_be_bytes());
    assert_eq!(stream::decode_stream(&head, &keyed()), Err(Error::Eof));
}

/// `09 {Algo: 0, Buf: lzw(41 MiB of zeros)}`, built once.
fn lzw_bomb() -> &'static (Vec<u8>, Vec<u8>) {
    static B: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    B.get_or_init(|| {
        let zeros = vec![0u8; 41 * 1024 * 1024];
        let buf = lzw::compress(&zeros).expect("compress");
        let mut w = Writer::new();
        w.raw(&[9])
            .map(2)
            .str("Algo")
            .uint(0)
            .str("Buf")
            .bytes(&buf);
        (buf, w.into_vec())
    })
}

#[test]
fn lzw_bomb_is_refused() {
    let (buf, msg) = lzw_bomb();
    // It fits in one datagram.
    assert!(
        msg.len() < serf_wire::UDP_RECV_BUFFER,
        "{} bytes",
        msg.len()
    );
    assert!(matches!(
        lzw::decompress(buf, MAX_DECOMPRESSED),
        Err(Error::Limit(_))
    ));
    assert!(matches!(
        packet::decode_packet(msg, &InboundOptions::default()),
        Err(Error::Limit(_))
    ));
    assert!(matches!(
        stream::decode_stream(msg, &StreamOptions::default()),
        Err(Error::Limit(_))
    ));
}

#[test]
fn lzw_cap_is_exact() {
    let data = vec![7u8; 10_000];
    let c = lzw::compress(&data).expect("compress");
    assert_eq!(lzw::decompress(&c, 10_000).as_deref(), Ok(&data[..]));
    assert!(matches!(lzw::decompress(&c, 9_999), Err(Error::Limit(_))));
}

#[test]
fn tiny_lzw_streams_decode() {
    // Regression (found by the `lzw` harness roundtrip): a compressed stream of <= 8 bytes
    // (plaintext of <= 5 bytes) decoded as empty, because the decoder's first call only
    // buffers input.
    for n in 0..=64usize {
        let data: Vec<u8> = (0..n).map(|i| (i * 31) as u8).collect();
        let c = lzw::compress(&data).expect("compress");
        assert_eq!(
            lzw::decompress(&c, n).as_deref(),
            Ok(&data[..]),
            "{n} bytes"
        );
    }
    assert_eq!(lzw::decompress(&[0x00, 0x01, 0x04, 0x04], 1), Ok(vec![0]));
    let user = Message::User(Vec::new()).encode();
    let p = packet::compress_message(&user).expect("compress");
    let d = packet::decode_packet(&p, &InboundOptions::default()).expect("decode");
    assert_eq!(d.messages, vec![Message::User(Vec::new())]);
}

fn push_pull_header(nodes: usize, user_state_len: usize) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&[6]);
    PushPullHeader {
        nodes,
        user_state_len,
        join: false,
    }
    .encode_body(&mut w);
    w.into_vec()
}

#[test]
fn push_pull_announcing_too_much_is_refused() {
    let h = push_pull_header(1 << 21, 0);
    assert!(matches!(
        stream::decode_stream(&h, &StreamOptions::default()),
        Err(Error::Limit(_))
    ));
    let h = push_pull_header(MAX_PUSH_PULL_NODES + 1, 0);
    assert!(matches!(
        stream::decode_stream(&h, &StreamOptions::default()),
        Err(Error::Limit(_))
    ));
    // Within the limits, a short buffer just asks for more.
    let h = push_pull_header(MAX_PUSH_PULL_NODES, MAX_PUSH_STATE);
    assert_eq!(
        stream::decode_stream(&h, &StreamOptions::default()),
        Err(Error::Eof)
    );
    let h = push_pull_header(0, MAX_PUSH_STATE + 1);
    assert!(matches!(
        stream::decode_stream(&h, &StreamOptions::default()),
        Err(Error::Limit(_))
    ));
    // A stream user message over 20 MiB.
    let mut w = Writer::new();
    w.raw(&[8])
        .map(1)
        .str("UserMsgLen")
        .uint(MAX_PUSH_STATE as u64 + 1);
    assert!(matches!(
        stream::decode_stream(&w.buf, &StreamOptions::default()),
        Err(Error::Limit(_))
    ));
}

#[test]
fn deep_msgpack_nesting_is_refused() {
    for open in [0x91u8, 0xdc] {
        let mut ok = Vec::new();
        let mut deep = Vec::new();
        for depth in 0..200 {
            let layer: &[u8] = if open == 0x91 { &[0x91] } else { &[0xdc, 0, 1] };
            if depth < MAX_DEPTH {
                ok.extend_from_slice(layer);
            }
            deep.extend_from_slice(layer);
        }
        ok.push(0);
        deep.push(0);
        let mut r = Reader::new(&ok);
        assert_eq!(r.skip(), Ok(()));
        assert!(r.remaining().is_empty());
        assert!(matches!(Reader::new(&deep).skip(), Err(Error::Limit(_))));
    }
    // Maps nest too: {"k": {"k": ...}}.
    let mut deep = Vec::new();
    for _ in 0..100 {
        deep.extend_from_slice(&[0x81, 0xa1, b'k']);
    }
    deep.push(0);
    assert!(matches!(Reader::new(&deep).skip(), Err(Error::Limit(_))));
    // An unknown field holding a deep value makes the whole message fail.
    let mut w = Writer::new();
    w.raw(&[0]).map(1).str("Unknown").raw(&deep);
    assert!(matches!(Message::decode(&w.buf), Err(Error::Limit(_))));
    assert!(matches!(
        packet::decode_packet(&w.buf, &InboundOptions::default()),
        Err(Error::Limit(_))
    ));
    assert!(matches!(
        stream::decode_stream(&w.buf, &StreamOptions::default()),
        Err(Error::Limit(_))
    ));
    let mut w = Writer::new();
    w.raw(&[2]).map(1).str("Unknown").raw(&deep);
    assert!(matches!(
        PushPullState::decode(&w.buf),
        Err(Error::Limit(_))
    ));
    // A long flat array is fine: the limit is on depth, not size.
    let mut flat = Vec::new();
    flat.extend_from_slice(&[0xdc, 0x27, 0x10]);
    flat.extend(std::iter::repeat_n(0u8, 10_000));
    assert_eq!(Reader::new(&flat).skip(), Ok(()));
}

#[test]
fn huge_counts_do_not_allocate_ahead_of_the_input() {
    for buf in [
        &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
        &[0xdf, 0xff, 0xff, 0xff, 0xff][..],
        &[0xdb, 0xff, 0xff, 0xff, 0xff][..],
        &[0xc6, 0xff, 0xff, 0xff, 0xff][..],
        &[0xc9, 0xff, 0xff, 0xff, 0xff, 0x01][..],
    ] {
        assert_eq!(Reader::new(buf).skip(), Err(Error::Eof));
        assert!(Reader::new(buf).byte_vec().is_err());
        assert!(Reader::new(buf).str_array().is_err());
        assert!(Reader::new(buf).str_map().is_err());
    }
}

#[test]
fn serf_event_slots_are_bounded() {
    // One "Events" array over the limit.
    let mut w = Writer::new();
    w.raw(&[2]).map(1).str("Events").array(MAX_EVENT_SLOTS + 1);
    w.raw(&vec![0xc0; MAX_EVENT_SLOTS + 1]);
    assert!(matches!(
        PushPullState::decode(&w.buf),
        Err(Error::Limit(_))
    ));
    // The same key repeated: the last value wins (as in Go), the bound still holds.
    let mut w = Writer::new();
    w.raw(&[2]).map(3);
    for n in [MAX_EVENT_SLOTS, MAX_EVENT_SLOTS, 3] {
        w.str("Events").array(n);
        w.raw(&vec![0xc0; n]);
    }
    let st = PushPullState::decode(&w.buf).expect("decode");
    assert_eq!(st.events, vec![None; 3]);
}

#[test]
fn packet_nesting_and_message_count_are_bounded() {
    // compound(compound(...(nack))) deeper than MAX_NESTING.
    let nack = Message::Nack(serf_wire::messages::Nack { seq_no: 1 }).encode();
    let mut p = nack.clone();
    for _ in 0..=packet::MAX_NESTING {
        p = packet::make_compound(&[p]).expect("compound");
    }
    let d = packet::decode_packet(&p, &InboundOptions::default()).expect("outer compound");
    assert!(d.messages.is_empty());
    assert!(matches!(d.errors.as_slice(), [Error::Limit(_)]));

    // 255 compounds of 255 nacks: more messages than one packet may hold.
    let mut inner = vec![7u8, 255];
    inner.extend(std::iter::repeat_n([0u8, nack.len() as u8], 255).flatten());
    for _ in 0..255 {
        inner.extend_from_slice(&nack);
    }
    let mut outer = vec![7u8, 255];
    outer.extend(std::iter::repeat_n((inner.len() as u16).to_be_bytes(), 255).flatten());
    for _ in 0..255 {
        outer.extend_from_slice(&inner);
    }
    let d = packet::decode_packet(&outer, &InboundOptions::default()).expect("decode");
    assert_eq!(d.messages.len(), packet::MAX_MESSAGES_PER_PACKET);
    assert!(d.errors.iter().all(|e| matches!(e, Error::Limit(_))));
}
