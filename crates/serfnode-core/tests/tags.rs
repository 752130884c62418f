//! Tests of `serfnode_core::tags`.
//!
//! SPEC §8 items covered: 1 (the tag set and defaults), 5 (member name is the id),
//! 7 (`serf_ip`, `serf_port` strings), 8 (`service` defaults to the serf IP), 9 (ports tag
//! `8000t8000|7946u7946`; node info uses `/udp`, a documented deviation from `/u`),
//! 10 (no ports: `ports=` and `{}`), 11 (timestamp text), 14 (values are strings),
//! 45 (the join address `/me` printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Duration;

use serf_core::{Member, MemberStatus};
use serfnode_core::config::{Config, Env};
use serfnode_core::tags::{NodeInfo, NodeTags, PortMap, Proto, Timestamp};

fn member(name: &str, addr: &str, tags: &[(&str, &str)]) -> Member {
    Member {
        name: name.to_string(),
        addr: addr.parse().unwrap(),
        port: 7946,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        status: MemberStatus::Alive,
        vsn: [2, 5, 4, 2, 5, 4],
        status_ltime: 1,
        leave_time: None,
    }
}

fn config(pairs: &[(&str, &str)]) -> Config {
    let env: Env = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_sources(&env, None).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn default_tags() {
    // §8 item 1.
    let c = config(&[]);
    let t = NodeTags::new(
        &c,
        ip("172.17.0.5"),
        Duration::from_millis(1_432_836_000_120),
        PortMap::new(),
    );
    let want: Vec<(String, String)> = [
        ("role", "no_role"),
        ("ip", "172.17.0.5"),
        ("serf_port", "7946"),
        ("rpc", "7373"),
        ("timestamp", "1432836000.12"),
        ("service", "172.17.0.5"),
        ("service_port", "0"),
        ("ports", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(t.to_tags(), want);
}

#[test]
fn configured_tags() {
    // §8 items 7 and 8.
    let c = config(&[
        ("ROLE", "redis"),
        ("SERF_IP", "1.2.3.4"),
        ("SERF_PORT", "8000"),
        ("RPC_PORT", "7000"),
        ("SERVICE_IP", "9.9.9.9"),
        ("SERVICE_PORT", "6379"),
    ]);
    let t = NodeTags::new(&c, ip("172.17.0.5"), Duration::from_secs(5), PortMap::new());
    assert_eq!(t.ip, ip("1.2.3.4"));
    assert_eq!(t.service, ip("9.9.9.9"));
    let tags = t.to_tags();
    let get = |k: &str| tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("role"), Some("redis"));
    assert_eq!(get("ip"), Some("1.2.3.4"));
    assert_eq!(get("serf_port"), Some("8000"));
    assert_eq!(get("rpc"), Some("7000"));
    assert_eq!(get("service"), Some("9.9.9.9"));
    assert_eq!(get("service_port"), Some("6379"));
    assert_eq!(get("timestamp"), Some("5.0"));
    let c = config(&[("SERF_IP", "1.2.3.4")]);
    let t = NodeTags::new(&c, ip("172.17.0.5"), Duration::from_secs(5), PortMap::new());
    assert_eq!(t.service, ip("1.2.3.4"));
}

#[test]
fn timestamp_text_like_python() {
    // §8 item 11: epoch seconds as a decimal string.
    let ts = |ms: u64| {
        Timestamp::from_unix(Duration::from_millis(ms))
            .as_str()
            .to_string()
    };
    assert_eq!(ts(1_432_836_000_120), "1432836000.12");
    assert_eq!(ts(1_432_836_000_100), "1432836000.1");
    assert_eq!(ts(1_432_836_000_000), "1432836000.0");
    assert_eq!(ts(1_432_836_000_999), "1432836001.0");
    assert_eq!(ts(1_432_836_000_054), "1432836000.05");
    assert_eq!(ts(0), "0.0");
    let t = Timestamp::from_unix(Duration::from_millis(1_432_836_000_120));
    assert_eq!(t.seconds(), Some(1_432_836_000.12));
    assert_eq!(Timestamp::from_tag("abc").seconds(), None);
    assert_eq!(Timestamp::from_tag("nan").seconds(), None);
    assert_eq!(Timestamp::from_tag("1e999").seconds(), None);
}

#[test]
fn timestamps_compare_numerically() {
    // §7.2 bug 14: the original compared the strings.
    use std::cmp::Ordering::*;
    let t = Timestamp::from_tag;
    assert_eq!(t("999999999.5").cmp_age(&t("1000000000.0")), Less);
    assert_eq!(t("10").cmp_age(&t("9")), Greater);
    assert_eq!(t("5.0").cmp_age(&t("5")), Equal);
    assert_eq!(t("5").cmp_age(&t("x")), Less);
    assert_eq!(t("x").cmp_age(&t("5")), Greater);
}

#[test]
fn ports_tag_encoding() {
    // §8 items 9 and 10.
    let mut p = PortMap::new();
    p.insert(8000, Proto::Tcp, [8000]);
    p.insert(7946, Proto::Udp, [7946]);
    p.insert(7946, Proto::Tcp, [7946, 17946, 7946]);
    assert_eq!(p.encode(), "7946t7946,17946|7946u7946|8000t8000");
    assert_eq!(PortMap::decode(&p.encode()), Ok(p.clone()));
    assert_eq!(PortMap::new().encode(), "");
    assert_eq!(PortMap::decode(""), Ok(PortMap::new()));
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"7946/tcp":["7946","17946"],"7946/udp":["7946"],"8000/tcp":["8000"]}"#
    );
    // The original's order (dict order) decodes the same.
    assert_eq!(
        PortMap::decode("8000t8000|7946u7946|7946t7946,17946"),
        Ok(p)
    );
}

#[test]
fn ports_tag_errors() {
    for (tag, reason) in [
        ("8000", "no protocol letter (t or u)"),
        ("8000x80", "the protocol letter is not t or u"),
        ("t80", "the container port is not a port number"),
        ("99999t1", "the container port is not a port number"),
        ("80t8a", "a host port is not a port number"),
    ] {
        let e = PortMap::decode(tag).unwrap_err();
        assert_eq!(e.reason, reason, "{tag}");
        assert_eq!(e.to_string(), format!("ports tag entry {tag:?}: {reason}"));
    }
    let p = PortMap::decode_lenient("8000t8000|junk|80u|9t9,x");
    let mut want = PortMap::new();
    want.insert(8000, Proto::Tcp, [8000]);
    want.insert(80, Proto::Udp, []);
    assert_eq!(p, want);
}

#[test]
fn ports_from_docker_inspect() {
    let ports = serde_json::json!({
        "8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8000"}, {"HostIp": "::", "HostPort": "8000"}],
        "7946/udp": [{"HostIp": "0.0.0.0", "HostPort": "7946"}],
        "9000/tcp": null,
        "5000/sctp": [{"HostIp": "0.0.0.0", "HostPort": "5000"}],
        "bad": [],
        "7373/tcp": [{"HostPort": ""}]
    });
    let p = PortMap::from_docker_ports(&ports);
    assert_eq!(p.encode(), "7373t|7946u7946|8000t8000");
    assert!(PortMap::from_docker_ports(&serde_json::Value::Null).is_empty());
}

#[test]
fn node_info_from_a_serfnode_member() {
    // §8 items 5, 9 (with /udp), 14.
    let m = member(
        "n1",
        "10.0.0.5",
        &[
            ("role", "redis"),
            ("ip", "10.0.0.5"),
            ("serf_port", "7946"),
            ("rpc", "7373"),
            ("timestamp", "1432836000.12"),
            ("service", "10.0.0.50"),
            ("service_port", "6379"),
            ("ports", "8000t8000|7946u7946"),
        ],
    );
    let n = NodeInfo::from_member(&m).unwrap();
    assert_eq!(n.id, "n1");
    assert_eq!(
        serde_json::to_string(&n).unwrap(),
        r#"{"id":"n1","role":"redis","serf_ip":"10.0.0.5","serf_port":"7946","service_ip":"10.0.0.50","service_port":"6379","timestamp":"1432836000.12","ports":{"7946/udp":["7946"],"8000/tcp":["8000"]}}"#
    );
}

#[test]
fn node_info_fallbacks() {
    // §3.1: service falls back to serf_ip; missing ports is {} (§8 item 10).
    let m = member("n2", "fd00::2", &[("role", "db"), ("timestamp", "7")]);
    let n = NodeInfo::from_member(&m).unwrap();
    assert_eq!(n.serf_ip, "fd00::2");
    assert_eq!(n.service_ip, "fd00::2");
    assert_eq!(n.serf_port, "7946");
    assert_eq!(n.service_port, "0");
    assert!(n.ports.is_empty());
    let v = serde_json::to_value(&n).unwrap();
    assert_eq!(v["ports"], serde_json::json!({}));
}

#[test]
fn plain_serf_agents_are_not_serfnodes() {
    // §7.2 bug 15: a plain `serf agent` must not break anything.
    assert!(NodeInfo::from_member(&member("go", "10.0.0.7", &[])).is_none());
    assert!(NodeInfo::from_member(&member("go", "10.0.0.7", &[("role", "web")])).is_none());
    assert!(NodeInfo::from_member(&member("go", "10.0.0.7", &[("timestamp", "1")])).is_none());
}

#[test]
fn round_trip_config_to_node_info() {
    let c = config(&[
        ("ROLE", "app"),
        ("SERF_IP", "10.0.0.6"),
        ("SERVICE_PORT", "8080"),
    ]);
    let mut ports = PortMap::new();
    ports.insert(8080, Proto::Tcp, [8080]);
    let t = NodeTags::new(
        &c,
        ip("172.17.0.9"),
        Duration::from_millis(1_432_836_101_500),
        ports,
    );
    let m = Member {
        tags: t.to_tags(),
        ..member("a9e1", "10.0.0.6", &[])
    };
    let n = NodeInfo::from_member(&m).unwrap();
    assert_eq!(n.role, "app");
    assert_eq!(n.service_ip, "10.0.0.6");
    assert_eq!(n.service_port, "8080");
    assert_eq!(n.timestamp.as_str(), "1432836101.5");
    assert_eq!(n.ports, t.ports);
}

#[test]
fn join_address_like_the_me_helper() {
    // §8 item 45.
    let m = member("n", "10.0.0.5", &[("role", "r"), ("timestamp", "1")]);
    assert_eq!(
        NodeInfo::from_member(&m).unwrap().join_address(),
        "10.0.0.5:7946"
    );
    let m = member(
        "n",
        "fd00::5",
        &[("role", "r"), ("timestamp", "1"), ("serf_port", "8000")],
    );
    assert_eq!(
        NodeInfo::from_member(&m).unwrap().join_address(),
        "[fd00::5]:8000"
    );
}
