//! Choice of the address to advertise when bound to an unspecified address.
//!
//! This mirrors what go-sockaddr's `GetPrivateIP` (used by memberlist) picks on Linux:
//!
//! 1. every IP address of every interface;
//! 2. keep addresses whose network is not inside a non-forwardable block (RFC 6890);
//! 3. keep addresses on interfaces with the `IFF_UP` flag (administratively up, which is
//!    not the same as having a carrier: a docker bridge without containers is kept);
//! 4. order: addresses on the default-route interface first, then IPv4 before IPv6, then
//!    larger networks (shorter prefixes) first; ties keep the host's listing order;
//! 5. keep addresses whose network lies inside an RFC 6890 special-purpose block;
//! 6. the first one left wins.
//!
//! "Inside a block" compares networks, not just addresses: the interface's network
//! (address masked by its prefix length) must lie entirely within the block.
//!
//! [`select_private_ip`] is the pure selection; [`host_private_ip`] gathers the host data.

use std::net::IpAddr;

/// One address of one interface, as seen on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    /// Interface (link) name, e.g. `eth0` (no `:label` suffix).
    pub name: String,
    /// Whether the interface has the `IFF_UP` flag.
    pub up: bool,
    /// The address.
    pub ip: IpAddr,
    /// Prefix length of the address's network.
    pub prefix_len: u8,
}

/// An IPv4 or IPv6 block `addr/len`.
type Block = (IpAddr, u8);

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Block {
    (IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)), len)
}

#[allow(clippy::too_many_arguments)]
const fn v6(a: u16, b: u16, c: u16, d: u16, e: u16, f: u16, g: u16, h: u16, len: u8) -> Block {
    (
        IpAddr::V6(std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h)),
        len,
    )
}

/// Special-purpose blocks of RFC 6890, as listed by go-sockaddr.
const RFC6890: &[Block] = &[
    v4(0, 0, 0, 0, 8),
    v4(10, 0, 0, 0, 8),
    v4(100, 64, 0, 0, 10),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(172, 16, 0, 0, 12),
    v4(192, 0, 0, 0, 24),
    v4(192, 0, 0, 0, 29),
    v4(192, 0, 2, 0, 24),
    v4(192, 88, 99, 0, 24),
    v4(192, 168, 0, 0, 16),
    v4(198, 18, 0, 0, 15),
    v4(198, 51, 100, 0, 24),
    v4(203, 0, 113, 0, 24),
    v4(240, 0, 0, 0, 4),
    v4(255, 255, 255, 255, 32),
    v6(0, 0, 0, 0, 0, 0, 0, 1, 128),
    v6(0, 0, 0, 0, 0, 0, 0, 0, 128),
    v6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0, 96),
    v6(0, 0, 0, 0, 0, 0xffff, 0, 0, 96),
    v6(0x100, 0, 0, 0, 0, 0, 0, 0, 64),
    v6(0x2001, 0, 0, 0, 0, 0, 0, 0, 16),
    v6(0x2002, 0, 0, 0, 0, 0, 0, 0, 16),
    v6(0xfc00, 0, 0, 0, 0, 0, 0, 0, 7),
    v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10),
];

/// Blocks that RFC 6890 marks as not forwardable, as listed by go-sockaddr.
const NOT_FORWARDABLE: &[Block] = &[
    v4(0, 0, 0, 0, 8),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(192, 0, 0, 0, 24),
    v4(192, 0, 2, 0, 24),
    v4(198, 51, 100, 0, 24),
    v4(203, 0, 113, 0, 24),
    v4(240, 0, 0, 0, 4),
    v4(255, 255, 255, 255, 32),
    v6(0, 0, 0, 0, 0, 0, 0, 1, 128),
    v6(0, 0, 0, 0, 0, 0, 0, 0, 128),
    v6(0, 0, 0, 0, 0, 0xffff, 0, 0, 96),
    v6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0, 32),
    v6(0x2001, 0x10, 0, 0, 0, 0, 0, 0, 28),
    v6(0xfe80, 0, 0, 0, 0, 0, 0, 0, 10),
];

/// First and last address of `ip/len`, widened to 128 bits, with the family.
fn range(ip: IpAddr, len: u8) -> (bool, u128, u128) {
    let (is_v4, bits, value) = match ip {
        IpAddr::V4(a) => (true, 32u32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, 128u32, u128::from(a)),
    };
    let len = u32::from(len).min(bits);
    let host_bits = bits - len;
    let host_mask = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    let first = value & !host_mask;
    (is_v4, first, first | host_mask)
}

/// Whether the network `ip/len` lies entirely inside one of `blocks` of the same family.
fn inside_any(ip: IpAddr, len: u8, blocks: &[Block]) -> bool {
    let (fam, first, last) = range(ip, len);
    blocks.iter().any(|&(b, blen)| {
        let (bfam, bfirst, blast) = range(b, blen);
        bfam == fam && bfirst <= first && blast >= last
    })
}

/// Picks the address go-sockaddr's `GetPrivateIP` would pick from `addrs` (in the host's
/// listing order: interfaces by index, each interface's addresses in kernel order), given
/// the name of the interface holding the IPv4 default route, if any.
pub fn select_private_ip(addrs: &[HostAddr], default_if: Option<&str>) -> Option<IpAddr> {
    let mut kept: Vec<&HostAddr> = addrs
        .iter()
        .filter(|a| !inside_any(a.ip, a.prefix_len, NOT_FORWARDABLE))
        .filter(|a| a.up)
        .collect();
    // Stable: ties keep the listing order (Go's insertion sort does the same for the
    // handful of addresses a host has).
    kept.sort_by_key(|a| {
        (
            default_if != Some(a.name.as_str()),
            a.ip.is_ipv6(),
            a.prefix_len,
        )
    });
    kept.into_iter()
        .find(|a| inside_any(a.ip, a.prefix_len, RFC6890))
        .map(|a| a.ip)
}

/// The interface of the first IPv4 default route with a gateway in `/proc/net/route`
/// text.
///
/// Go runs `ip route` and takes the first line shaped `default via <gw> dev <if> ...`;
/// that is the main IPv4 table, as `/proc/net/route` is. Known differences: for a
/// multipath default route Go finds no default (the `nexthop` lines do not match) while
/// this finds the first hop's interface; `ip route` missing or failing makes Go find none.
pub fn default_interface_from_route_table(text: &str) -> Option<String> {
    const RTF_GATEWAY: u32 = 0x0002;
    const RTF_REJECT: u32 = 0x0200;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            return None;
        }
        let flags = u32::from_str_radix(f[3], 16).ok()?;
        let default = u32::from_str_radix(f[1], 16).ok()? == 0
            && u32::from_str_radix(f[7], 16).ok()? == 0
            && flags & RTF_GATEWAY != 0
            && flags & RTF_REJECT == 0;
        default.then(|| f[0].to_string())
    })
}

/// Whether the link `name` has `IFF_UP` set, from `/sys/class/net/<name>/flags`.
fn sys_if_up(name: &str) -> Option<bool> {
    const IFF_UP: u32 = 0x1;
    let raw = std::fs::read_to_string(format!("/sys/class/net/{name}/flags")).ok()?;
    let raw = raw.trim();
    let hex = raw.strip_prefix("0x").unwrap_or(raw);
    u32::from_str_radix(hex, 16).ok().map(|f| f & IFF_UP != 0)
}

/// Gathers the host's addresses and default interface and runs [`select_private_ip`].
pub fn host_private_ip() -> Option<IpAddr> {
    let ifs = if_addrs::get_if_addrs().ok()?;
    let mut addrs: Vec<(u32, HostAddr)> = ifs
        .into_iter()
        .map(|i| {
            // getifaddrs names IPv4 addresses by label (`eth0:1`); Go uses the link name.
            let name = i.name.split(':').next().unwrap_or(&i.name).to_string();
            // IFF_UP as Go reads it; if sysfs is unavailable fall back to the running flag.
            let up = sys_if_up(&name).unwrap_or_else(|| i.is_oper_up());
            let (ip, prefix_len) = match &i.addr {
                if_addrs::IfAddr::V4(a) => (IpAddr::V4(a.ip), a.prefixlen),
                if_addrs::IfAddr::V6(a) => (IpAddr::V6(a.ip), a.prefixlen),
            };
            let index = i.index.unwrap_or(u32::MAX);
            (
                index,
                HostAddr {
                    name,
                    up,
                    ip,
                    prefix_len,
                },
            )
        })
        .collect();
    // Go lists interface by interface (by index); getifaddrs lists all IPv4 first.
    addrs.sort_by_key(|(index, _)| *index);
    let addrs: Vec<HostAddr> = addrs.into_iter().map(|(_, a)| a).collect();
    let default_if = std::fs::read_to_string("/proc/net/route")
        .ok()
        .and_then(|t| default_interface_from_route_table(&t));
    select_private_ip(&addrs, default_if.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(name: &str, up: bool, cidr: &str) -> HostAddr {
        let (ip, len) = cidr.split_once('/').unwrap();
        HostAddr {
            name: name.to_string(),
            up,
            ip: ip.parse().unwrap(),
            prefix_len: len.parse().unwrap(),
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn this_machine_picks_ula_on_default_interface() {
        // eth0 has TEST-NET-1 (not forwardable) and a ULA; docker0 is IFF_UP but no carrier.
        let addrs = [
            a("lo", true, "127.0.0.1/8"),
            a("lo", true, "::1/128"),
            a("eth0", true, "192.0.2.2/24"),
            a("eth0", true, "fd00::2/64"),
            a("eth0", true, "fe80::1c2d:3eff:fe4f:5a6b/64"),
            a("docker0", true, "172.17.0.1/16"),
        ];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), ip("fd00::2"));
        // Without a default route, IPv4 sorts first and docker0 wins.
        assert_eq!(select_private_ip(&addrs, None), ip("172.17.0.1"));
    }

    #[test]
    fn normal_host_picks_ten_net_on_eth0() {
        let addrs = [
            a("lo", true, "127.0.0.1/8"),
            a("docker0", true, "172.17.0.1/16"),
            a("eth0", true, "10.1.2.3/24"),
            a("eth0", true, "fe80::1/64"),
        ];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), ip("10.1.2.3"));
    }

    #[test]
    fn ipv4_before_ipv6_on_default_interface() {
        let addrs = [
            a("eth0", true, "fd00::5/64"),
            a("eth0", true, "192.168.1.5/24"),
        ];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), ip("192.168.1.5"));
    }

    #[test]
    fn down_interface_skipped() {
        let addrs = [
            a("eth0", false, "10.0.0.5/24"),
            a("eth1", true, "192.168.7.7/24"),
        ];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), ip("192.168.7.7"));
    }

    #[test]
    fn non_forwardable_ranges_skipped() {
        let addrs = [
            a("lo", true, "127.0.0.1/8"),
            a("eth0", true, "169.254.3.4/16"),
            a("eth0", true, "192.0.2.9/24"),
            a("eth0", true, "198.51.100.9/24"),
            a("eth0", true, "203.0.113.9/24"),
            a("eth0", true, "fe80::9/64"),
            a("lo", true, "::1/128"),
            a("eth1", true, "100.64.1.1/10"),
        ];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), ip("100.64.1.1"));
    }

    #[test]
    fn network_must_lie_inside_the_block() {
        // 192.0.2.2/16 is not inside 192.0.2.0/24, so it is forwardable, but neither is it
        // inside any RFC 6890 block.
        let addrs = [a("eth0", true, "192.0.2.2/16")];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), None);
        // 10.1.2.3/7 spans beyond 10.0.0.0/8.
        let addrs = [a("eth0", true, "10.1.2.3/7")];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), None);
    }

    #[test]
    fn no_private_address_gives_none() {
        let addrs = [
            a("lo", true, "127.0.0.1/8"),
            a("eth0", true, "8.8.4.4/24"),
            a("eth0", true, "2a00:1450::1/64"),
            a("eth0", true, "fe80::1/64"),
        ];
        assert_eq!(select_private_ip(&addrs, Some("eth0")), None);
        assert_eq!(select_private_ip(&[], None), None);
    }

    #[test]
    fn larger_network_sorts_first() {
        let addrs = [
            a("eth0", true, "192.168.1.5/24"),
            a("eth1", true, "10.9.0.1/16"),
            a("eth2", true, "172.20.0.1/12"),
        ];
        assert_eq!(select_private_ip(&addrs, None), ip("172.20.0.1"));
        // The default interface still comes before size.
        assert_eq!(select_private_ip(&addrs, Some("eth0")), ip("192.168.1.5"));
        // Equal sizes keep listing order.
        let addrs = [
            a("eth1", true, "10.9.0.1/24"),
            a("eth0", true, "192.168.1.5/24"),
        ];
        assert_eq!(select_private_ip(&addrs, None), ip("10.9.0.1"));
    }

    #[test]
    fn default_interface_from_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            default_interface_from_route_table(text).as_deref(),
            Some("eth0")
        );
        // `default dev wg0` (no gateway) is not what Go matches.
        let no_gw = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n\
            wg0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\n";
        assert_eq!(default_interface_from_route_table(no_gw), None);
        assert_eq!(default_interface_from_route_table(""), None);
    }
}
