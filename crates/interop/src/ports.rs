//! Free loopback ports, chosen at run time and never handed out twice in one process.

use super::*;

fn used_ports() -> &'static Mutex<HashSet<u16>> {
    static USED: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    USED.get_or_init(|| Mutex::new(HashSet::new()))
}

fn claim(port: u16) -> bool {
    let mut used = used_ports().lock().unwrap_or_else(|e| e.into_inner());
    used.insert(port)
}

/// A port free on 127.0.0.1 for BOTH TCP and UDP (what a gossip bind needs).
/// Never returns the same port twice within this process.
pub fn free_gossip_port() -> u16 {
    // Below the ephemeral range (32768+ on Linux), so that no outgoing connection of a
    // running agent can take the port between our check and the agent's bind.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let mut x = u64::from(seed) | 1;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 12000) as u16;
        let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        let udp_ok = UdpSocket::bind(("127.0.0.1", port)).is_ok();
        drop(tcp);
        if udp_ok && claim(port) {
            return port;
        }
    }
    panic!("could not find a port free for both TCP and UDP on 127.0.0.1");
}

/// A TCP port free on 127.0.0.1 (for RPC). Never returns the same port twice
/// within this process. Nothing listens on it afterwards, so it also serves as
/// a "closed port" for join-failure tests.
pub fn free_tcp_port() -> u16 {
    for _ in 0..1000 {
        let Ok(tcp) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = tcp.local_addr() else {
            continue;
        };
        let port = addr.port();
        drop(tcp);
        if claim(port) {
            return port;
        }
    }
    panic!("could not find a free TCP port on 127.0.0.1");
}
