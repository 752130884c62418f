//! `mdns_probe SERVICE [WAIT_MS]`: a one-shot mDNS querier for the `mdns` interop test,
//! run inside a test network namespace (`ip netns exec`). Sends, from ephemeral ports as
//! hashicorp/mdns does, one PTR question for SERVICE (e.g. `_serf_testcl._tcp.local.`) to
//! 224.0.0.251:5353 and, when the namespace has an `eth0`, to [ff02::fb%eth0]:5353; then
//! prints every datagram received within WAIT_MS (default 1500) as `<source> <hex>`.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

fn query(service: &str) -> Result<Vec<u8>, String> {
    let mut q = vec![0x4d, 0x44, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in service.trim_end_matches('.').split('.') {
        let len = u8::try_from(label.len()).map_err(|_| format!("label too long: {label}"))?;
        if len == 0 || len > 63 {
            return Err(format!("bad label in {service:?}"));
        }
        q.push(len);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 12, 0, 1]);
    Ok(q)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let service = args.first().ok_or("usage: mdns_probe SERVICE [WAIT_MS]")?;
    let wait = args
        .get(1)
        .map(|s| s.parse::<u64>().map_err(|e| format!("WAIT_MS: {e}")))
        .transpose()?
        .unwrap_or(1500);
    let q = query(service)?;
    let mut socks = Vec::new();
    let v4 = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| format!("bind v4: {e}"))?;
    v4.send_to(&q, (Ipv4Addr::new(224, 0, 0, 251), 5353))
        .map_err(|e| format!("send v4: {e}"))?;
    socks.push(v4);
    let eth0 = std::fs::read_to_string("/sys/class/net/eth0/ifindex")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    if let Some(index) = eth0 {
        if let Ok(v6) = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0)) {
            let to = SocketAddrV6::new(
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb),
                5353,
                0,
                index,
            );
            if v6.send_to(&q, to).is_ok() {
                socks.push(v6);
            }
        }
    }
    for s in &socks {
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_millis(wait);
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        let mut got = false;
        for s in &socks {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                got = true;
                let from = match from {
                    SocketAddr::V6(a) => SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, 0)),
                    a => a,
                };
                println!("{from} {}", hex(buf.get(..n).unwrap_or_default()));
            }
        }
        if !got {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("mdns_probe: {e}");
        std::process::exit(1);
    }
}
