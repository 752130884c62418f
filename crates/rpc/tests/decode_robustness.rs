//! Every decoder of the protocol against truncated and mutated input: errors, never
//! panics, and re-encoding what decodes is stable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serf_rpc::*;

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn samples() -> Vec<(Command, Vec<u8>)> {
    let member = Member {
        name: "alpha".into(),
        addr: vec![10, 0, 0, 1],
        port: 7946,
        tags: vec![("role".into(), "web".into())],
        status: "alive".into(),
        protocol: [1, 5, 2],
        delegate: [2, 5, 4],
    };
    let mut out: Vec<(Command, Vec<u8>)> = vec![
        (
            Command::MembersFiltered,
            MembersFilteredRequest {
                name: "a.*".into(),
                status: "alive".into(),
                tags: vec![("role".into(), "w.*".into())],
            }
            .encode(),
        ),
        (
            Command::Query,
            QueryRequest {
                filter_nodes: Some(vec!["a".into(), "b".into()]),
                filter_tags: Some(vec![("dc".into(), "east".into())]),
                name: "q".into(),
                payload: Some(vec![1, 2, 3]),
                relay_factor: 2,
                request_ack: true,
                timeout_nanos: 1_000_000,
            }
            .encode(),
        ),
        (
            Command::Tags,
            TagsRequest {
                tags: vec![("a".into(), "b".into())],
                delete_tags: Some(vec!["c".into()]),
            }
            .encode(),
        ),
        (
            Command::Join,
            JoinRequest {
                existing: vec!["10.0.0.1:7946".into()],
                replay: true,
            }
            .encode(),
        ),
    ];
    // Response bodies and records are decoded through `Request::decode` only for the
    // request samples; the rest are checked below with their own types.
    out.push((
        Command::Members,
        MembersResponse {
            members: vec![member.clone(), member.clone()],
        }
        .encode(),
    ));
    out.push((
        Command::Stream,
        StreamEvent::Members {
            event: "member-join".into(),
            members: vec![member],
        }
        .encode(),
    ));
    out
}

fn decode_everything(bytes: &[u8]) {
    for c in Command::ALL {
        let _ = Request::decode(c, bytes);
    }
    let _ = RequestHeader::decode(bytes);
    let _ = ResponseHeader::decode(bytes);
    let _ = MembersResponse::decode(bytes);
    let _ = JoinResponse::decode(bytes);
    let _ = KeyResponse::decode(bytes);
    let _ = StatsResponse::decode(bytes);
    let _ = CoordinateResponse::decode(bytes);
    let _ = LogRecord::decode(bytes);
    let _ = StreamEvent::decode(bytes);
    let _ = QueryRecord::decode(bytes);
}

#[test]
fn truncations_and_mutations_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (_, bytes) in samples() {
        for n in 0..bytes.len() {
            decode_everything(&bytes[..n]);
        }
        for _ in 0..2000 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() % b.len() as u64) as usize;
                b[i] = rng.next() as u8;
            }
            decode_everything(&b);
        }
    }
    for _ in 0..5000 {
        let len = (rng.next() % 64) as usize;
        let b: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        decode_everything(&b);
    }
}

#[test]
fn what_decodes_re_encodes_stably() {
    for (c, bytes) in samples() {
        if let Ok(req) = Request::decode(c, &bytes) {
            let body = req.encode_body().unwrap_or_default();
            assert_eq!(Request::decode(c, &body).ok(), Some(req), "{c}");
        }
    }
    let ev = StreamEvent::decode(&samples()[5].1).expect("a member event");
    assert_eq!(StreamEvent::decode(&ev.encode()).ok(), Some(ev));
}
