//! Every captured vector in testdata/memberlist/captures/vectors decodes, and the
//! deterministic ones re-encode byte for byte.
// Test code: a failed `expect` is a failed test.
#![allow(clippy::expect_used)]

use base64::Engine;
use serf_wire::messages::Message;
use serf_wire::packet::{self, InboundOptions, PacketOptions};
use serf_wire::serf::{decode_tags, PushPullState, SerfMessage};
use serf_wire::stream::{self, StreamMsg, StreamOptions};
use serf_wire::{Key, Keyring};
use std::path::PathBuf;

fn dir() -> PathBuf {
    serf_testdata::path(serf_testdata::MEMBERLIST_VECTORS)
}

fn vector(name: &str) -> Vec<u8> {
    let p = dir().join(format!("{name}.hex"));
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    hex::decode(s.trim()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn keyring() -> Keyring {
    let b64 = serf_testdata::read_string(&format!(
        "{}/encryption-key.b64",
        serf_testdata::MEMBERLIST_VECTORS
    ));
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("base64");
    Keyring::new(Key::new(&key).expect("key"), vec![])
}

fn plain() -> InboundOptions<'static> {
    InboundOptions::default()
}

/// Re-encodes a decoded plain packet (optionally with CRC) and compares.
fn roundtrip_packet(name: &str, crc: bool) -> Vec<Message> {
    let raw = vector(name);
    let d = packet::decode_packet(&raw, &plain()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(d.errors.is_empty(), "{name}: {:?}", d.errors);
    let parts: Vec<Vec<u8>> = d.messages.iter().map(Message::encode).collect();
    let payload = if parts.len() == 1 {
        parts[0].clone()
    } else {
        packet::make_compound(&parts).expect("compound")
    };
    let opts = PacketOptions {
        crc,
        ..Default::default()
    };
    let again = packet::encode_packet(payload, &opts, &[0; 12]).expect("encode");
    assert_eq!(
        hex::encode(&again),
        hex::encode(&raw),
        "{name} re-encodes byte for byte"
    );
    d.messages
}

#[test]
fn ping_is_byte_exact() {
    let m = roundtrip_packet("udp_ping", false);
    match &m[0] {
        Message::Ping(p) => {
            assert_eq!(p.node, "b");
            assert_eq!(p.seq_no, 1);
            assert_eq!(p.source_node, "a");
            assert_eq!(p.source_port, 27946);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn plain_packets_roundtrip() {
    for (name, crc) in [
        ("udp_ack_with_payload", false),
        ("udp_indirect_ping", false),
        ("udp_ping_suspect_compound", false),
        ("udp_nack_suspect_compound", false),
        ("udp_suspect_crc", true),
        ("udp_ping_suspect_to_suspect_crc", true),
        ("udp_dead_crc", true),
        ("udp_alive_refute_crc", true),
        ("udp_dead_leave_crc", true),
        ("udp_user_event_crc", true),
        ("udp_query_crc", true),
        ("udp_query_response", false),
        ("udp_ping_join_piggyback", false),
        ("udp_gossip_alive_alive_join_crc", true),
    ] {
        roundtrip_packet(name, crc);
    }
}

#[test]
fn alive_refute_fields() {
    let m = roundtrip_packet("udp_alive_refute_crc", true);
    match &m[0] {
        Message::Alive(a) => {
            assert_eq!(a.node, "c");
            assert_eq!(a.incarnation, 2);
            assert_eq!(a.vsn, [1, 5, 2, 2, 5, 5]);
            assert_eq!(a.meta, [0xff, 0x80]);
            assert!(decode_tags(&a.meta).is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn serf_messages_in_user_parts_roundtrip() {
    for name in [
        "udp_user_event_crc",
        "udp_query_crc",
        "udp_query_response",
        "udp_gossip_alive_alive_join_crc",
    ] {
        let d = packet::decode_packet(&vector(name), &plain()).expect(name);
        let mut seen = 0;
        for m in d.messages {
            if let Message::User(b) = m {
                let s = SerfMessage::decode(&b).unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(
                    s.encode(),
                    b,
                    "{name}: serf message re-encodes byte for byte"
                );
                seen += 1;
            }
        }
        assert!(seen > 0, "{name} holds a serf message");
    }
}

#[test]
fn compressed_ack_decodes_and_recompresses_identically() {
    let raw = vector("udp_ack_compressed");
    let d = packet::decode_packet(&raw, &plain()).expect("decode");
    let ack = d.messages[0].encode();
    assert_eq!(ack.len(), 150);
    let opts = PacketOptions {
        compress: true,
        ..Default::default()
    };
    let again = packet::encode_packet(ack, &opts, &[0; 12]).expect("encode");
    assert_eq!(hex::encode(again), hex::encode(raw));
}

#[test]
fn encrypted_packets_decrypt() {
    let kr = keyring();
    let opts = InboundOptions {
        keyring: Some(&kr),
        verify_incoming: true,
        label: b"",
    };
    let d = packet::decode_packet(&vector("udp_encrypted_ping"), &opts).expect("ping");
    assert_eq!(
        d.messages[0].encode(),
        roundtrip_packet("udp_ping", false)[0].encode()
    );
    let d = packet::decode_packet(&vector("udp_encrypted_join_crc"), &opts).expect("join");
    match &d.messages[0] {
        Message::User(b) => assert!(matches!(SerfMessage::decode(b), Ok(SerfMessage::Join(_)))),
        other => panic!("{other:?}"),
    }
    // Without the key, or with plaintext expected, the packet is refused.
    assert!(packet::decode_packet(&vector("udp_encrypted_ping"), &plain()).is_err());
    let other = Keyring::new(Key::new(&[7u8; 32]).expect("key"), vec![]);
    let o = InboundOptions {
        keyring: Some(&other),
        verify_incoming: true,
        label: b"",
    };
    assert!(packet::decode_packet(&vector("udp_encrypted_ping"), &o).is_err());
}

fn decode_stream_vector(name: &str, kr: Option<&Keyring>) -> StreamMsg {
    let raw = vector(name);
    let opts = StreamOptions {
        keyring: kr,
        verify_incoming: true,
        label: b"",
    };
    let (m, used) = stream::decode_stream(&raw, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(used, raw.len(), "{name} consumed exactly");
    // Every proper prefix asks for more bytes (or, once inside a compressed/encrypted
    // frame, fails cleanly), never panics or succeeds.
    for cut in [0, 1, raw.len() / 2, raw.len() - 1] {
        assert!(stream::decode_stream(&raw[..cut], &opts).is_err());
    }
    m
}

#[test]
fn push_pull_streams() {
    let req = decode_stream_vector("tcp_pushpull_join_request", None);
    let StreamMsg::PushPull(pp) = &req else {
        panic!("{req:?}")
    };
    assert!(pp.join);
    assert_eq!(pp.nodes.len(), 1);
    assert_eq!(pp.nodes[0].name, "b");
    assert_eq!(pp.user_state.len(), 585);
    let st = PushPullState::decode(&pp.user_state).expect("serf state");
    assert_eq!(st.events.len(), 512);
    assert_eq!(st.status_ltimes, vec![("b".to_string(), 0)]);
    assert_eq!(
        st.encode(),
        pp.user_state,
        "serf state re-encodes byte for byte"
    );
    assert_eq!(
        serf_wire::encode_push_pull(pp),
        vector("tcp_pushpull_join_request")
    );

    let resp = decode_stream_vector("tcp_pushpull_join_response", None);
    let StreamMsg::PushPull(pr) = &resp else {
        panic!("{resp:?}")
    };
    assert_eq!(pr.nodes[0].name, "a");
    assert_eq!(
        serf_wire::encode_push_pull(pr),
        vector("tcp_pushpull_join_response")
    );

    let comp = decode_stream_vector("tcp_pushpull_join_request_compressed", None);
    assert_eq!(comp, req);
    let again = stream::encode_stream(&serf_wire::encode_push_pull(pp), true, None, b"", &[0; 12])
        .expect("encode");
    assert_eq!(
        hex::encode(again),
        hex::encode(vector("tcp_pushpull_join_request_compressed"))
    );

    let kr = keyring();
    assert_eq!(
        decode_stream_vector("tcp_pushpull_join_request_encrypted", Some(&kr)),
        req
    );
    assert_eq!(
        decode_stream_vector("tcp_pushpull_join_response_encrypted", Some(&kr)),
        resp
    );
    assert_eq!(
        decode_stream_vector("tcp_pushpull_join_request_enc_comp", Some(&kr)),
        req
    );

    // Encryption mismatches give Go's error texts.
    let plain_opts = StreamOptions::default();
    let e = stream::decode_stream(&vector("tcp_pushpull_join_request_encrypted"), &plain_opts);
    assert_eq!(
        e.err().map(|e| e.to_string()).as_deref(),
        Some(stream::ERR_REMOTE_ENCRYPTED)
    );
    let enc_opts = StreamOptions {
        keyring: Some(&kr),
        verify_incoming: true,
        label: b"",
    };
    let e = stream::decode_stream(&vector("tcp_pushpull_join_request"), &enc_opts);
    assert_eq!(
        e.err().map(|e| e.to_string()).as_deref(),
        Some(stream::ERR_REMOTE_PLAIN)
    );
}

#[test]
fn encrypted_stream_roundtrip_uses_header_as_aad() {
    let kr = keyring();
    let msg = vector("tcp_pushpull_join_request");
    let enc = stream::encode_stream(&msg, false, Some(&kr), b"", &[3; 12]).expect("encrypt");
    assert_eq!(
        enc.len(),
        vector("tcp_pushpull_join_request_encrypted").len()
    );
    assert_eq!(
        &enc[..5],
        &vector("tcp_pushpull_join_request_encrypted")[..5]
    );
    let opts = StreamOptions {
        keyring: Some(&kr),
        verify_incoming: true,
        label: b"",
    };
    let (m, _) = stream::decode_stream(&enc, &opts).expect("decrypt");
    assert!(matches!(m, StreamMsg::PushPull(_)));
    // Tampering with the length header breaks authentication.
    let mut bad = enc.clone();
    bad[4] ^= 1;
    assert!(stream::decode_stream(&bad, &opts).is_err());
}

#[test]
fn fallback_ping_and_ack_streams() {
    let StreamMsg::Ping(p) = decode_stream_vector("tcp_fallback_ping", None) else {
        panic!()
    };
    assert_eq!(p.seq_no, 10);
    assert_eq!(Message::Ping(p).encode(), vector("tcp_fallback_ping"));
    let StreamMsg::Ack(a) = decode_stream_vector("tcp_fallback_ack", None) else {
        panic!()
    };
    assert!(a.payload.is_empty());
    assert_eq!(Message::Ack(a).encode(), vector("tcp_fallback_ack"));
}

#[test]
fn key_sizes_and_versions() {
    for n in [16, 24, 32] {
        let kr = Keyring::new(Key::new(&vec![9u8; n]).expect("key"), vec![]);
        for v in [0u8, 1] {
            let c = kr.encrypt(v, &[1; 12], b"hello", b"").expect("enc");
            assert_eq!(c[0], v);
            assert_eq!(kr.decrypt(&c, b"").expect("dec"), b"hello");
        }
    }
    assert!(Key::new(&[0u8; 20]).is_err());
    // Secondary keys decrypt; only the primary encrypts.
    let k1 = Key::new(&[1u8; 32]).expect("k1");
    let k2 = Key::new(&[2u8; 32]).expect("k2");
    let old = Keyring::new(k1.clone(), vec![]);
    let mut both = Keyring::new(k2.clone(), vec![k1.clone()]);
    let c = old.encrypt(1, &[0; 12], b"x", b"").expect("enc");
    assert_eq!(both.decrypt(&c, b"").expect("dec"), b"x");
    both.use_key(k1.as_bytes()).expect("use");
    assert!(both.remove(k1.as_bytes()).is_err());
    both.remove(k2.as_bytes()).expect("remove");
    assert_eq!(both.keys().len(), 1);
}

#[test]
fn labels() {
    let opts = PacketOptions {
        label: b"prod",
        ..Default::default()
    };
    let p = packet::encode_packet(vector("udp_ping"), &opts, &[0; 12]).expect("label");
    assert_eq!(&p[..6], &[0xf4, 4, b'p', b'r', b'o', b'd']);
    let ok = InboundOptions {
        label: b"prod",
        ..Default::default()
    };
    assert_eq!(
        packet::decode_packet(&p, &ok).expect("ok").messages.len(),
        1
    );
    let wrong = InboundOptions {
        label: b"test",
        ..Default::default()
    };
    assert!(packet::decode_packet(&p, &wrong).is_err());
    assert!(packet::decode_packet(&p, &plain()).is_err());
    assert!(packet::decode_packet(&vector("udp_ping"), &ok).is_err());
}
