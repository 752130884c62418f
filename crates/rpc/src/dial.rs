//! Connecting as Go's `net.DialTimeout("tcp", addr)` does, with its error texts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Splits `host:port` (`[v6]:port`), or fails with Go's dial error text.
pub(crate) fn split_host_port(addr: &str) -> Result<(String, String), String> {
    serf_gocompat::net::split_host_port(addr)
        .map(|(h, p)| (h.to_string(), p.to_string()))
        .map_err(|e| format!("dial tcp: {e}"))
}

/// The addresses to try for `addr`, or Go's error text.
pub(crate) async fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    if addr.is_empty() {
        return Err("dial tcp: missing address".to_string());
    }
    let (host, port) = split_host_port(addr)?;
    let port: u16 = match port.parse::<u64>() {
        Ok(p) => match u16::try_from(p) {
            Ok(p) => p,
            Err(_) => return Err(format!("dial tcp: address {port}: invalid port")),
        },
        Err(_) if port.is_empty() => 0,
        Err(_) => return Err(format!("dial tcp: lookup tcp/{port}: unknown port")),
    };
    if host.is_empty() {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found: Vec<SocketAddr> = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(list) => list.collect(),
        Err(_) => Vec::new(),
    };
    if found.is_empty() {
        Err(format!("dial tcp: lookup {host}: no such host"))
    } else {
        Ok(found)
    }
}

/// `dial tcp <addr>: connect: <reason>`.
pub(crate) fn dial_error(addr: &SocketAddr, e: &std::io::Error) -> String {
    let addr = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => format!(":{}", addr.port()),
        _ => addr.to_string(),
    };
    let text = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
        std::io::ErrorKind::HostUnreachable => "no route to host".to_string(),
        std::io::ErrorKind::NetworkUnreachable => "network is unreachable".to_string(),
        std::io::ErrorKind::AddrNotAvailable => "cannot assign requested address".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => serf_gocompat::errors::io_text(e),
    };
    format!("dial tcp {addr}: connect: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_addresses_like_go() {
        assert_eq!(
            split_host_port("127.0.0.1:7373"),
            Ok(("127.0.0.1".into(), "7373".into()))
        );
        assert_eq!(
            split_host_port("[::1]:7373"),
            Ok(("::1".into(), "7373".into()))
        );
        assert_eq!(
            split_host_port("127.0.0.1").err().as_deref(),
            Some("dial tcp: address 127.0.0.1: missing port in address")
        );
        assert_eq!(
            split_host_port("::1:5").err().as_deref(),
            Some("dial tcp: address ::1:5: too many colons in address")
        );
    }
}
