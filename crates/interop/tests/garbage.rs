//! Hostile input: garbage, truncated, oversized and random UDP and TCP traffic is thrown at
//! our agent while it is part of a mixed Go/Rust cluster. The agent must log and drop it,
//! keep running, and the cluster must stay whole (nobody suspected into `failed`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serf_interop::{fmt_view, require, Agent, Cluster, NodeSpec, Prereq, DEADLINE};
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Deterministic xorshift for reproducible garbage.
struct Xs(u64);
impl Xs {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn vectors() -> Vec<Vec<u8>> {
    serf_testdata::files(serf_testdata::MEMBERLIST_VECTORS, ".hex")
        .iter()
        .map(|p| {
            let s = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            hex::decode(s.trim()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

/// Datagrams: random, truncated and bit-flipped captures, oversized, hand-made hostile shapes.
fn udp_payloads() -> Vec<Vec<u8>> {
    let mut rng = Xs(0x5eed_f00d);
    let mut out: Vec<Vec<u8>> = Vec::new();
    for n in [0usize, 1, 2, 5, 13, 29, 100, 1400, 9000, 65000] {
        out.push(rng.bytes(n));
    }
    for v in vectors() {
        for cut in [1, v.len() / 3, v.len() / 2, v.len().saturating_sub(1)] {
            out.push(v[..cut].to_vec());
        }
        for _ in 0..4 {
            let mut m = v.clone();
            let i = (rng.next() as usize) % m.len();
            m[i] ^= 1 << (rng.next() % 8);
            out.push(m);
        }
    }
    // Every type byte followed by garbage.
    for t in 0..=255u8 {
        let mut m = vec![t];
        m.extend(rng.bytes(40));
        out.push(m);
    }
    // Compound claiming 255 parts of 65535 bytes.
    let mut c = vec![7u8, 255];
    c.extend(std::iter::repeat_n(0xffu8, 510));
    out.push(c);
    // Nested compress/compound bombs and deep msgpack nesting.
    out.push(
        [
            vec![9u8, 0x82, 0xa4],
            b"Algo".to_vec(),
            vec![0, 0xa3],
            b"Buf".to_vec(),
            vec![0xda, 0x10, 0x00],
            rng.bytes(4096),
        ]
        .concat(),
    );
    let mut deep = vec![0u8];
    deep.extend(std::iter::repeat_n(0x91u8, 5000));
    out.push(deep);
    // CRC header with a wrong checksum around a valid ping.
    let mut crc = vec![12u8, 1, 2, 3, 4];
    crc.extend(&vectors()[0]);
    out.push(crc);
    // Alive with a 3-byte Vsn (crashes memberlist 0.2.2; we must refuse it).
    let mut w = serf_wire::msgpack::Writer::new();
    w.raw(&[4])
        .map(6)
        .str("Addr")
        .bytes(&[127, 0, 0, 1])
        .str("Incarnation")
        .uint(99);
    w.str("Meta")
        .nil()
        .str("Node")
        .str("intruder")
        .str("Port")
        .uint(1)
        .str("Vsn")
        .bytes(&[1, 5, 2]);
    out.push(w.into_vec());
    // Encrypted-looking packets.
    for n in [1usize, 28, 29, 45, 200] {
        let mut m = vec![1u8];
        m.extend(rng.bytes(n));
        out.push(m);
    }
    out
}

/// Streams: each is written on its own connection.
fn tcp_payloads() -> Vec<Vec<u8>> {
    let mut rng = Xs(0xdead_beef);
    let mut out: Vec<Vec<u8>> = vec![
        vec![],
        rng.bytes(1),
        rng.bytes(4096),
        // Encrypted frame announcing 4 GiB.
        vec![10, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        // Push/pull header announcing 2^30 nodes and a huge user state.
        {
            let mut w = serf_wire::msgpack::Writer::new();
            w.raw(&[6])
                .map(3)
                .str("Join")
                .bool(false)
                .str("Nodes")
                .uint(1 << 30);
            w.str("UserStateLen").uint(1 << 31);
            w.into_vec()
        },
        // Stream user message announcing 1 GiB.
        {
            let mut w = serf_wire::msgpack::Writer::new();
            w.raw(&[8]).map(1).str("UserMsgLen").uint(1 << 30);
            w.into_vec()
        },
        // Compressed wrapper around garbage.
        [
            vec![9u8, 0x82, 0xa4],
            b"Algo".to_vec(),
            vec![0, 0xa3],
            b"Buf".to_vec(),
            vec![0xc4, 0x40],
            rng.bytes(64),
        ]
        .concat(),
        // Label prefix toward an unlabelled node.
        [vec![244u8, 3], b"abc".to_vec(), rng.bytes(20)].concat(),
    ];
    for v in vectors().into_iter().filter(|v| v.len() > 100) {
        out.push(v[..v.len() / 2].to_vec());
    }
    out
}

fn barrage(target: &Agent) {
    let to = target.addr();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
    let udp = udp_payloads();
    for round in 0..3 {
        for p in &udp {
            let _ = sock.send_to(p, &to);
        }
        if round == 0 {
            eprintln!("sent {} hostile datagrams per round", udp.len());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let tcp = tcp_payloads();
    // Half-open connections that send part of a message and then stall, plus a burst of
    // hostile streams, all at once.
    let mut held = Vec::new();
    for _ in 0..20 {
        if let Ok(mut s) = TcpStream::connect(&to) {
            let _ = s.write_all(&[6, 0x83]);
            held.push(s);
        }
    }
    let mut handles = Vec::new();
    for p in tcp {
        let to = to.clone();
        handles.push(std::thread::spawn(move || {
            if let Ok(mut s) = TcpStream::connect(&to) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
                let _ = s.write_all(&p);
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut sink = Vec::new();
                let _ = s.read_to_end(&mut sink);
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    eprintln!(
        "sent {} hostile streams and held {} stalled connections",
        tcp_payloads().len(),
        held.len()
    );
    drop(held);
}

fn assert_whole(cluster: &Cluster, watch: Duration) {
    let until = Instant::now() + watch;
    loop {
        for a in cluster.all() {
            let view = a
                .members()
                .unwrap_or_else(|e| panic!("{} stopped answering: {e}", a.name()));
            let bad: Vec<_> = view.iter().filter(|m| m.status != "alive").collect();
            assert!(
                bad.is_empty(),
                "{} sees non-alive members: {}",
                a.name(),
                fmt_view(&view)
            );
            assert_eq!(
                view.len(),
                cluster.agents.len(),
                "{} view: {}",
                a.name(),
                fmt_view(&view)
            );
        }
        if Instant::now() >= until {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn run(encrypt: Option<&str>) {
    if !require(&[Prereq::GoSerf, Prereq::RustSerf]) {
        return;
    }
    use serf_interop::Impl::{Go, Rust};
    let nodes = [
        NodeSpec::new(Go, "go1"),
        NodeSpec::new(Rust, "rust1").join(0),
        NodeSpec::new(Go, "go2").join(1),
        NodeSpec::new(Rust, "rust2").join(0),
    ];
    let cluster = Cluster::start(&nodes, encrypt).expect("cluster");
    cluster
        .wait_converged(DEADLINE)
        .expect("converged before the barrage");
    let target = &cluster.agents[1];
    let started = Instant::now();
    barrage(target);
    barrage(&cluster.agents[3]);
    eprintln!("barrage took {:?}", started.elapsed());
    // The agents keep running and nobody is marked failed, for longer than a suspicion
    // timeout.
    assert_whole(&cluster, Duration::from_secs(12));
    for a in [&cluster.agents[1], &cluster.agents[3]] {
        assert!(a.is_running(), "{} exited after hostile input", a.name());
    }
    let log = std::fs::read_to_string(target.log_path()).unwrap_or_default();
    assert!(
        log.contains("dropping packet"),
        "hostile datagrams were not logged as dropped"
    );
    assert!(
        log.contains("failed to read stream"),
        "hostile streams were not logged"
    );
}

#[test]
fn hostile_input_plain_cluster() {
    run(None);
}

#[test]
fn hostile_input_encrypted_cluster() {
    let key = serf_interop::keygen();
    run(Some(&key));
}
