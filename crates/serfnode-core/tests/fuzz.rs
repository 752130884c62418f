//! Property tests: hostile input never panics the FIFO parser, the hosts rewriter or the
//! configuration reader, and their invariants hold on random input.
//!
//! SPEC §8 items touched: 29-33 (FIFO robustness: any bytes, any read boundaries),
//! 34-39 (hosts: idempotent, only valid `<ip> <names>` lines written, other lines kept).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use proptest::prelude::*;
use serf_core::{Member, MemberStatus};
use serfnode_core::config::{Config, Env};
use serfnode_core::fifo::{parse_line, EventDecoder, USER_EVENT_SIZE_LIMIT};
use serfnode_core::hosts::{is_host_name, rewrite, BEGIN_MARKER, END_MARKER};

fn status() -> impl Strategy<Value = MemberStatus> {
    prop_oneof![
        4 => Just(MemberStatus::Alive),
        1 => Just(MemberStatus::Failed),
        1 => Just(MemberStatus::Left),
        1 => Just(MemberStatus::Leaving),
        1 => Just(MemberStatus::None),
    ]
}

fn tag_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}",
        "10\\.0\\.0\\.[0-9]{1,2}",
        "fd00::[0-9a-f]{1,3}",
        "[0-9]{1,10}(\\.[0-9]{1,2})?",
        any::<String>(),
        Just(String::new()),
        Just("x\n127.0.0.1 evil".to_string()),
        Just("# BEGIN serfnode".to_string()),
    ]
}

fn member() -> impl Strategy<Value = Member> {
    (
        "[a-z0-9]{1,8}",
        status(),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just("role".to_string()),
                    Just("timestamp".to_string()),
                    Just("service".to_string()),
                    Just("ports".to_string()),
                    Just("serf_port".to_string()),
                    "[a-z]{1,5}",
                ],
                tag_value(),
            ),
            0..8,
        ),
    )
        .prop_map(|(name, status, tags)| Member {
            name,
            addr: "10.1.2.3".parse().unwrap(),
            port: 7946,
            tags,
            status,
            vsn: [2, 5, 4, 2, 5, 4],
            status_ltime: 0,
            leave_time: None,
        })
}

fn hosts_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just("127.0.0.1\tlocalhost\n".to_string()),
        Just("::1 localhost ip6-localhost\n".to_string()),
        Just("# a comment\n".to_string()),
        Just("\n".to_string()),
        Just(format!("{BEGIN_MARKER}\n")),
        Just(format!("{END_MARKER}\n")),
        Just("10.0.0.1 db\n".to_string()),
        Just("\r\n".to_string()),
        any::<String>(),
    ];
    proptest::collection::vec(line, 0..10).prop_map(|l| l.concat())
}

fn yaml_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("serfnode:\n".to_string()),
        Just("children:\n".to_string()),
        Just("  role: ".to_string()),
        Just("  peer: ".to_string()),
        Just("  serf_port: ".to_string()),
        Just("  service_ip: ".to_string()),
        Just("  environment: ".to_string()),
        Just("  volumes_from: ".to_string()),
        Just("  - a:\n".to_string()),
        Just("  - b: ".to_string()),
        Just("      image: ".to_string()),
        Just("      command: ".to_string()),
        Just("      privileged: ".to_string()),
        Just("      volumes_from: [a, b]\n".to_string()),
        Just("      environment: {X: 1}\n".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("&x ".to_string()),
        Just("*x".to_string()),
        Just("\n".to_string()),
        Just("- ".to_string()),
        "[a-z0-9 :'\"]{0,8}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..16).prop_map(|p| p.concat())
}

fn env() -> impl Strategy<Value = Env> {
    let key = prop_oneof![
        Just("ROLE"),
        Just("PEER"),
        Just("SERF_IP"),
        Just("SERF_PORT"),
        Just("NODE_NAME"),
        Just("RPC_PORT"),
        Just("SERVICE_IP"),
        Just("SERVICE_PORT"),
        Just("APP_PORTS"),
        Just("APP_VOLUMES"),
        Just("APP_VOLUMES_FROM"),
        Just("DOCKER_SOCKET"),
        Just("DOCKER_RUN"),
        Just("DOCKER_NAME"),
        Just("SERF_ENCRYPT_KEY"),
        Just("RPC_AUTH"),
        Just("HOST_PREFIX"),
    ];
    let value = prop_oneof![
        any::<String>(),
        "[0-9]{0,6}",
        "\\[[a-z0-9\", :]{0,12}\\]?",
        "[A-Za-z0-9+/]{0,44}={0,2}",
    ];
    proptest::collection::btree_map(key.prop_map(str::to_string), value, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn fifo_parse_line_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(ev) = parse_line(&bytes) {
            prop_assert!(!ev.name.is_empty());
            prop_assert!(ev.name.len() + ev.payload.len() <= USER_EVENT_SIZE_LIMIT);
            prop_assert!(ev.payload.is_ascii());
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&ev.payload).is_ok());
        }
    }

    #[test]
    fn fifo_json_like_lines(name in any::<String>(), payload in any::<String>(), extra in 0usize..3) {
        let mut items = vec![serde_json::Value::String(name), serde_json::Value::String(payload)];
        for _ in 0..extra {
            items.push(serde_json::Value::Null);
        }
        let line = serde_json::to_vec(&items).unwrap();
        let got = parse_line(&line);
        if extra > 0 {
            prop_assert!(got.is_err());
        }
    }

    #[test]
    fn fifo_read_boundaries_do_not_matter(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'['), Just(b'"'), Just(b']'), Just(b','), any::<u8>()],
            0..400,
        ),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let whole = EventDecoder::new().push(&bytes);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut d = EventDecoder::new();
        let mut got = Vec::new();
        let mut start = 0;
        for p in points {
            got.extend(d.push(&bytes[start..p]));
            start = p;
        }
        got.extend(d.push(&bytes[start..]));
        prop_assert_eq!(got, whole);
        let _ = d.close();
    }

    #[test]
    fn hosts_rewrite_is_safe_and_idempotent(
        old in hosts_text(),
        members in proptest::collection::vec(member(), 0..8),
    ) {
        let new = rewrite(&old, &members);
        prop_assert_eq!(rewrite(&new, &members), new.clone());
        // Inside the block only `<ip> <host names>` lines.
        let mut in_block = false;
        for line in new.lines() {
            if line == BEGIN_MARKER {
                in_block = true;
                continue;
            }
            if line == END_MARKER {
                in_block = false;
                continue;
            }
            if in_block {
                let mut parts = line.split(' ');
                let ip = parts.next().unwrap_or("");
                prop_assert!(ip.parse::<IpAddr>().is_ok(), "{:?}", line);
                for name in parts {
                    prop_assert!(is_host_name(name), "{:?}", line);
                }
            }
        }
        // A file without markers keeps its text as a prefix.
        if !old.contains("# BEGIN serfnode") && !old.contains(END_MARKER) {
            prop_assert!(new.starts_with(&old));
        }
    }

    #[test]
    fn hosts_rewrite_random_text(old in any::<String>(), members in proptest::collection::vec(member(), 0..4)) {
        let new = rewrite(&old, &members);
        prop_assert_eq!(rewrite(&new, &members), new);
    }

    #[test]
    fn config_from_random_yaml_never_panics(yaml in yaml_text(), env in env()) {
        let _ = Config::from_sources(&env, Some(&yaml));
    }

    #[test]
    fn config_from_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = Config::from_sources(&Env::new(), Some(&text));
    }
}
