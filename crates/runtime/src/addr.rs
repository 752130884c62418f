//! Address strings as Go reads them: `net.SplitHostPort` (with its error texts),
//! the agent's `AddrParts` (a missing port becomes the default one), and
//! `net.ResolveTCPAddr` (host names are resolved, IPv4 preferred; an empty host means
//! every interface).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

pub use serf_gocompat::net::split_host_port;
use serf_gocompat::net::{addr_err, AddrProblem};

/// A port as `net.ResolveTCPAddr` reads it: a number up to 65535 or a service name.
fn port(p: &str) -> Result<u16, String> {
    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
        return p.parse().map_err(|_| addr_err(p, "invalid port"));
    }
    if p.is_empty() {
        return Ok(0);
    }
    // A service name, from the services database as Go's resolver reads it.
    service_port(p).ok_or_else(|| addr_err(&format!("tcp/{p}"), "unknown port"))
}

/// The TCP port of service `name` (or an alias) in /etc/services.
fn service_port(name: &str) -> Option<u16> {
    let db = std::fs::read_to_string("/etc/services").ok()?;
    db.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut f = line.split_whitespace();
        let service = f.next()?;
        let (port, proto) = f.next()?.split_once('/')?;
        let named = service == name || f.any(|alias| alias == name);
        (named && proto == "tcp")
            .then(|| port.parse().ok())
            .flatten()
    })
}

/// `strconv.ParseUint(p, 10, 16)` as memberlist parses a join address's port.
pub fn parse_port_u16(p: &str) -> Result<u16, String> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {p:?}: invalid syntax"));
    }
    p.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {p:?}: value out of range"))
}

/// memberlist's `ensurePort`: `s` with `port` appended unless it has one.
pub fn ensure_port(s: &str, port: u16) -> String {
    let has_port = if s.rfind('[') == Some(0) {
        s.rfind(':') > s.rfind(']')
    } else {
        s.matches(':').count() == 1
    };
    if has_port {
        return s.to_string();
    }
    let host = s.trim_matches(|c| c == '[' || c == ']');
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `net.ResolveTCPAddr("tcp", host:port)` for a split address.
fn resolve(host: &str, port_s: &str) -> Result<SocketAddr, String> {
    let port = port(port_s)?;
    if host.is_empty() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let literal = host.split('%').next().unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| format!("lookup {host}: no such host"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| found.first())
        .copied()
        .ok_or_else(|| format!("lookup {host}: no such host"))
}

/// The agent's `AddrParts`: `address` with `default_port` when it has none, resolved.
pub fn addr_parts(address: &str, default_port: u16) -> Result<SocketAddr, String> {
    match split_host_port(address) {
        Ok((host, p)) => resolve(host, p),
        Err(e) if e.problem == AddrProblem::MissingPort => {
            let with_port = format!("{address}:{default_port}");
            let (host, p) = split_host_port(&with_port)?;
            resolve(host, p)
        }
        Err(e) => Err(e.into()),
    }
}

/// What `net.Listen("tcp", address)` accepts: a port is required.
pub fn listen_addr(address: &str) -> Result<SocketAddr, String> {
    let (host, p) = split_host_port(address)?;
    resolve(host, p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_go() {
        fn split(s: &str) -> Result<(&str, &str), String> {
            split_host_port(s).map_err(|e| e.to_string())
        }
        assert_eq!(split("a:1"), Ok(("a", "1")));
        assert_eq!(split(":1"), Ok(("", "1")));
        assert_eq!(split("[::1]:1"), Ok(("::1", "1")));
        let err = |s: &str, text: &str| assert_eq!(split(s), Err(text.to_string()));
        err("127.0.0.1", "address 127.0.0.1: missing port in address");
        err("::1", "address ::1: too many colons in address");
        err("[::1]", "address [::1]: missing port in address");
        err("[::1", "address [::1: missing ']' in address");
        err("[::1]:1:2", "address [::1]:1:2: too many colons in address");
    }

    #[test]
    fn addr_parts_like_the_agent() {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(addr_parts("0.0.0.0", 7946), Ok(v4("0.0.0.0:7946")));
        assert_eq!(addr_parts("10.0.0.1:99", 7946), Ok(v4("10.0.0.1:99")));
        assert_eq!(addr_parts(":5000", 7946), Ok(v4("0.0.0.0:5000")));
        assert_eq!(addr_parts("[::1]", 7946), Ok(v4("[::1]:7946")));
        assert_eq!(addr_parts("localhost:5000", 7946), Ok(v4("127.0.0.1:5000")));
        assert_eq!(addr_parts("localhost", 7946), Ok(v4("127.0.0.1:7946")));
        assert_eq!(
            addr_parts("127.0.0.1:99999", 7946),
            Err("address 99999: invalid port".into())
        );
        assert!(addr_parts("no-such-host.invalid:1", 7946)
            .unwrap_err()
            .contains("no such host"));
    }

    #[test]
    fn join_addresses_like_memberlist() {
        assert_eq!(ensure_port("a", 7946), "a:7946");
        assert_eq!(ensure_port("a:1", 7946), "a:1");
        assert_eq!(ensure_port("::1", 7946), "[::1]:7946");
        assert_eq!(ensure_port("[::1]", 7946), "[::1]:7946");
        assert_eq!(ensure_port("[::1]:5", 7946), "[::1]:5");
        assert_eq!(
            parse_port_u16("x"),
            Err("strconv.ParseUint: parsing \"x\": invalid syntax".into())
        );
        assert_eq!(
            parse_port_u16("99999"),
            Err("strconv.ParseUint: parsing \"99999\": value out of range".into())
        );
    }

    #[test]
    fn listen_needs_a_port() {
        assert_eq!(
            listen_addr("127.0.0.1"),
            Err("address 127.0.0.1: missing port in address".into())
        );
        assert_eq!(
            listen_addr(":7373"),
            Ok("0.0.0.0:7373".parse::<SocketAddr>().unwrap())
        );
    }
}
