//! Tests of `serfnode_core::config`.
//!
//! SPEC §8 items covered here (the configuration part of them): 1 (defaults), 2 and 3
//! (env over yml, empty env is unset), 4 (PEER), 5 and 6 (NODE_NAME, or a random UUID4 as
//! 32 lowercase hex digits), 7 (SERF_IP,
//! SERF_PORT, bind address), 8 (SERVICE_IP default), 21 (children in order, names),
//! 22 (volumes_from naming a sibling), 23 (serfnode.environment wins), 24 (APP_VOLUMES on
//! every child), 27 (DOCKER_RUN / DOCKER_NAME).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use serfnode_core::config::{Config, ConfigError, Env, VolumesFrom, Warning};

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok(e: &[(&str, &str)], yaml: Option<&str>) -> Config {
    Config::from_sources(&env(e), yaml).unwrap()
}

fn err(e: &[(&str, &str)], yaml: Option<&str>) -> ConfigError {
    Config::from_sources(&env(e), yaml).unwrap_err()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const DATA: &str = include_str!("data/serfnode.yml");

#[test]
fn defaults_with_no_env_and_empty_yml() {
    // §8 item 1: role no_role, serf port 7946, rpc 7373, service port 0, no join.
    for yaml in [
        None,
        Some(""),
        Some("# all commented out\n#serfnode:\n#  role: x\n"),
    ] {
        let c = ok(&[], yaml);
        assert_eq!(c.role, "no_role");
        assert_eq!(c.serf_port, 7946);
        assert_eq!(c.rpc_port, 7373);
        assert_eq!(c.service_port, 0);
        assert!(c.peers.is_empty());
        assert_eq!(c.serf_ip, None);
        assert_eq!(c.service_ip, None);
        assert_eq!(c.node_name, None);
        assert_eq!(c.bind_addr().to_string(), "0.0.0.0:7946");
        assert_eq!(c.rpc_addr().to_string(), "127.0.0.1:7373");
        assert_eq!(c.docker_socket_path(), "/host/run/docker.sock");
        assert!(c.children.is_empty());
        assert!(c.docker_run.is_none());
        assert!(c.encrypt_key.is_none());
        assert!(c.rpc_auth.is_none());
        assert!(c.warnings.is_empty());
        // §8 item 8: the service IP defaults to the serf IP.
        assert_eq!(c.service_ip_or(ip("172.17.0.5")), ip("172.17.0.5"));
    }
}

#[test]
fn env_wins_over_yml_and_empty_env_is_unset() {
    // §8 items 2 and 3.
    let yml = Some("serfnode:\n  role: cache\n");
    assert_eq!(ok(&[("ROLE", "redis")], yml).role, "redis");
    assert_eq!(ok(&[("ROLE", "")], yml).role, "cache");
    assert_eq!(ok(&[], yml).role, "cache");
    // Roles with spaces pass through as one value, like the original's single argument.
    assert_eq!(ok(&[("ROLE", "my role")], None).role, "my role");
}

#[test]
fn yml_section_values_and_env_overrides() {
    let c = ok(&[], Some(DATA));
    assert_eq!(c.role, "cache");
    assert_eq!(c.peers, vec!["10.0.0.5:7946"]);
    assert_eq!(c.serf_ip, Some(ip("10.0.0.9")));
    assert_eq!(c.serf_port, 8000);
    assert_eq!(c.service_ip, Some(ip("10.0.0.10")));
    assert_eq!(c.service_port, 6379);
    assert_eq!(c.extra_ports, vec!["6379:6379"]);

    let c = ok(
        &[
            ("PEER", "1.1.1.1"),
            ("SERF_IP", "1.2.3.4"),
            ("SERF_PORT", "9000"),
            ("SERVICE_IP", "9.9.9.9"),
            ("SERVICE_PORT", "80"),
        ],
        Some(DATA),
    );
    assert_eq!(c.peers, vec!["1.1.1.1"]);
    assert_eq!(c.serf_ip, Some(ip("1.2.3.4")));
    assert_eq!(c.serf_port, 9000);
    assert_eq!(c.service_ip, Some(ip("9.9.9.9")));
    assert_eq!(c.service_port, 80);
}

#[test]
fn serf_ip_and_port_and_service_ip() {
    // §8 items 7 and 8.
    let c = ok(&[("SERF_IP", "1.2.3.4"), ("SERF_PORT", "8000")], None);
    assert_eq!(c.bind_addr().to_string(), "0.0.0.0:8000");
    assert_eq!(c.service_ip_or(ip("172.17.0.5")), ip("1.2.3.4"));
    let c = ok(&[("SERF_IP", "1.2.3.4"), ("SERVICE_IP", "9.9.9.9")], None);
    assert_eq!(c.service_ip_or(ip("172.17.0.5")), ip("9.9.9.9"));
    let c = ok(&[("SERF_IP", "fd00::1")], None);
    assert_eq!(c.serf_ip, Some(ip("fd00::1")));
}

#[test]
fn peer_single_and_lists() {
    // §8 item 4, plus the comma list the original could not do.
    assert_eq!(
        ok(&[("PEER", "10.0.0.5:7946")], None).peers,
        vec!["10.0.0.5:7946"]
    );
    assert_eq!(
        ok(&[("PEER", " a:1, b ,,[::1]:7946 ")], None).peers,
        vec!["a:1", "b", "[::1]:7946"]
    );
    assert_eq!(
        ok(&[], Some("serfnode:\n  peer: [a, 'b:2,c']\n")).peers,
        vec!["a", "b:2", "c"]
    );
    let e = err(&[("PEER", "a b")], None);
    assert!(e.to_string().starts_with("$PEER: invalid value"), "{e}");
}

#[test]
fn node_name_rpc_port_and_docker_socket() {
    // §8 items 5 and 6 (no NODE_NAME: the runtime draws a random one).
    let c = ok(
        &[
            ("NODE_NAME", "n1"),
            ("RPC_PORT", "7000"),
            ("HOST_PREFIX", "/h/"),
            ("DOCKER_SOCKET", "/var/run/docker.sock"),
        ],
        None,
    );
    assert_eq!(c.node_name.as_deref(), Some("n1"));
    assert_eq!(c.rpc_addr().to_string(), "127.0.0.1:7000");
    assert_eq!(c.docker_socket_path(), "/h/var/run/docker.sock");
    assert_eq!(ok(&[("NODE_NAME", "")], None).node_name, None);
}

#[test]
fn bad_ports_name_the_key() {
    for (k, v) in [
        ("SERF_PORT", "abc"),
        ("SERF_PORT", "70000"),
        ("SERF_PORT", "0"),
        ("SERF_PORT", "-1"),
        ("RPC_PORT", "7373x"),
        ("SERVICE_PORT", "1.5"),
    ] {
        let e = err(&[(k, v)], None);
        assert!(
            matches!(&e, ConfigError::InvalidValue { key, .. } if key == &format!("${k}")),
            "{k}={v}: {e:?}"
        );
        assert!(
            e.to_string().starts_with(&format!("${k}: invalid value")),
            "{e}"
        );
    }
    assert_eq!(ok(&[("SERVICE_PORT", "0")], None).service_port, 0);
    let e = err(&[], Some("serfnode:\n  serf_port: nope\n"));
    assert_eq!(
        e.to_string(),
        "serfnode.serf_port: invalid value \"nope\": not a port number (0-65535)"
    );
    let e = err(&[], Some("serfnode:\n  serf_port: [1]\n"));
    assert_eq!(
        e,
        ConfigError::WrongType {
            key: "serfnode.serf_port".into(),
            expected: "a port number",
            found: "a list"
        }
    );
}

#[test]
fn bad_ips_name_the_key() {
    let e = err(&[("SERF_IP", "host.example")], None);
    assert_eq!(
        e.to_string(),
        "$SERF_IP: invalid value \"host.example\": not an IP address"
    );
    let e = err(&[], Some("serfnode:\n  service_ip: 300.1.1.1\n"));
    assert!(e.to_string().starts_with("serfnode.service_ip:"), "{e}");
}

#[test]
fn bad_yaml_is_an_error() {
    let e = err(&[], Some("serfnode: [1, 2\n"));
    assert!(matches!(e, ConfigError::Yaml { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("serfnode.yml is not valid YAML: "),
        "{e}"
    );
    assert!(e.to_string().contains("line"), "{e}");
    let e = err(&[], Some("a: 1\n---\nb: 2\n"));
    assert!(matches!(e, ConfigError::Yaml { .. }), "{e:?}");
    let e = err(&[], Some("- just\n- a list\n"));
    assert_eq!(
        e.to_string(),
        "serfnode.yml (top level): expected a mapping, found a list"
    );
}

#[test]
fn unknown_keys_are_errors() {
    assert_eq!(
        err(&[], Some("serfnod:\n  role: x\n")),
        ConfigError::UnknownKey {
            key: "serfnod".into()
        }
    );
    assert_eq!(
        err(&[], Some("serfnode:\n  rol: x\n")).to_string(),
        "serfnode.rol: unknown key"
    );
    assert_eq!(
        err(
            &[],
            Some("children:\n  - a:\n      image: x\n      imagee: y\n")
        )
        .to_string(),
        "children[0].a.imagee: unknown key"
    );
}

#[test]
fn children_from_yml() {
    // §8 items 21, 22, 23.
    let c = ok(
        &[
            ("APP_VOLUMES", r#"["/tmp:/data"]"#),
            ("APP_VOLUMES_FROM", "[vol]"),
        ],
        Some(DATA),
    );
    assert_eq!(c.children.len(), 2);
    let a = &c.children[0];
    let b = &c.children[1];
    assert_eq!((a.name.as_str(), a.position), ("a", 0));
    assert_eq!((b.name.as_str(), b.position), ("b", 1));
    assert_eq!(a.image, "busybox");
    assert_eq!(a.command, vec!["sleep", "1000"]);
    assert!(b.command.is_empty());
    let expect_a: BTreeMap<String, String> = [("X", "1"), ("Y", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(
        a.environment, expect_a,
        "serfnode.environment wins (§8 item 23)"
    );
    let expect_b: BTreeMap<String, String> = [("X", "1"), ("Z", "4")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(b.environment, expect_b);
    // child's, then serfnode.volumes, then APP_VOLUMES (§8 item 24).
    assert_eq!(a.volumes, vec!["/tmp:/tmp", "/data:/data", "/tmp:/data"]);
    assert_eq!(b.volumes, vec!["/data:/data", "/tmp:/data"]);
    assert_eq!(c.app_volumes, vec!["/tmp:/data"]);
    assert_eq!(
        b.volumes_from,
        vec![
            VolumesFrom::Sibling("a".into()),
            VolumesFrom::Container("other".into()),
            VolumesFrom::Container("storage".into()),
            VolumesFrom::Container("vol".into()),
        ]
    );
    assert_eq!(
        b.resolved_volumes_from(|sibling| format!("{sibling}_app_parent_1234")),
        vec!["a_app_parent_1234", "other", "storage", "vol"]
    );
    assert_eq!(a.working_dir.as_deref(), Some("/work"));
    assert_eq!(
        a.entrypoint,
        Some(vec!["/bin/sh".to_string(), "-c".to_string()])
    );
    assert_eq!(a.user.as_deref(), Some("nobody"));
    assert!(a.privileged);
    assert!(!b.privileged);
    assert_eq!(
        c.warnings,
        vec![
            Warning::NetworkOptionIgnored {
                key: "serfnode.ports".into()
            },
            Warning::NetworkOptionIgnored {
                key: "children[0].a.ports".into()
            },
        ]
    );
    assert!(c.warnings[1]
        .to_string()
        .contains("share the serfnode container's network"));
}

#[test]
fn app_volumes_on_every_child() {
    // §8 item 24.
    let yml = "children:\n  - a: {image: x}\n  - b: {image: y}\n";
    let c = ok(&[("APP_VOLUMES", r#"["/tmp:/data"]"#)], Some(yml));
    for child in &c.children {
        assert_eq!(child.volumes, vec!["/tmp:/data"]);
    }
    let e = err(&[("APP_VOLUMES", "/tmp:/data")], Some(yml));
    assert!(
        e.to_string()
            .starts_with("$APP_VOLUMES: expected a YAML list"),
        "{e}"
    );
    let e = err(&[("APP_PORTS", "[1, [2]]")], None);
    assert!(
        e.to_string()
            .starts_with("$APP_PORTS[1]: expected a string"),
        "{e}"
    );
    let c = ok(&[("APP_PORTS", "[\"80:80\", 443]")], None);
    assert_eq!(c.extra_ports, vec!["80:80", "443"]);
    assert_eq!(
        c.warnings,
        vec![Warning::NetworkOptionIgnored {
            key: "$APP_PORTS".into()
        }]
    );
}

#[test]
fn child_errors_name_the_key() {
    let cases: &[(&str, &str)] = &[
        ("children:\n  - a: {command: x}\n", "children[0].a.image: missing (required)"),
        (
            "children:\n  - a: {image: x, privileged: yes please}\n",
            "children[0].a.privileged: expected a boolean (true or false), found a string",
        ),
        (
            "children:\n  - a: {image: [x]}\n",
            "children[0].a.image: expected a string, number or boolean, found a list",
        ),
        (
            "children:\n  - a: {image: x, volumes: /a:/b}\n",
            "children[0].a.volumes: expected a list, found a string",
        ),
        (
            "children:\n  - a: {image: x, environment: [NOEQUALS]}\n",
            "children[0].a.environment[0]: invalid value \"NOEQUALS\": expected KEY=VALUE",
        ),
        (
            "children:\n  - a: {image: x, command: \"echo 'oops\"}\n",
            "children[0].a.command: invalid value \"echo 'oops\": unterminated single quote",
        ),
        (
            "children:\n  a: {image: x}\n",
            "children: expected a list of one-key mappings (`- name: {image: ...}`), found a mapping",
        ),
        (
            "children:\n  - a: {image: x}\n    b: {image: y}\n",
            "children[0]: invalid value \"\": each child must be a mapping with exactly one key, its name",
        ),
        (
            "children:\n  - a: {image: x}\n  - a: {image: y}\n",
            "children: the name \"a\" is used by more than one child",
        ),
        (
            "children:\n  - bad/name: {image: x}\n",
            "children[0]: invalid value \"bad/name\": a container name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*",
        ),
        (
            "children:\n  - a: {image: x, volumes_from: [a]}\n",
            "children[0].a.volumes_from: invalid value \"a\": a child cannot take volumes from itself",
        ),
        ("children:\n  - a: 5\n", "children[0].a: expected a mapping of child parameters, found a number"),
        ("children:\n  - 5\n", "children[0]: expected a one-key mapping (`- name: {image: ...}`), found a number"),
    ];
    for (yml, want) in cases {
        assert_eq!(err(&[], Some(yml)).to_string(), *want, "{yml}");
    }
}

#[test]
fn command_and_entrypoint_forms() {
    let yml = r#"children:
  - a:
      image: x
      command: ["sh", "-c", "echo 'a b'"]
      entrypoint: 'tini --'
  - b:
      image: 5
      command: redis-server --appendonly "yes please" \"q\"
"#;
    let c = ok(&[], Some(yml));
    assert_eq!(c.children[0].command, vec!["sh", "-c", "echo 'a b'"]);
    assert_eq!(
        c.children[0].entrypoint,
        Some(vec!["tini".to_string(), "--".to_string()])
    );
    assert_eq!(c.children[1].image, "5");
    assert_eq!(
        c.children[1].command,
        vec!["redis-server", "--appendonly", "yes please", "\"q\""]
    );
}

#[test]
fn docker_run_child() {
    // §8 item 27.
    let c = ok(&[("DOCKER_RUN", "-p 80:80 nginx")], None);
    let d = c.docker_run.unwrap();
    assert_eq!(d.name, "app_docker_run");
    assert_eq!(d.raw, "-p 80:80 nginx");
    assert_eq!(d.args, vec!["-p", "80:80", "nginx"]);
    let c = ok(
        &[("DOCKER_RUN", "-e 'A=b c' img"), ("DOCKER_NAME", "web")],
        None,
    );
    let d = c.docker_run.unwrap();
    assert_eq!(d.name, "web");
    assert_eq!(d.args, vec!["-e", "A=b c", "img"]);
    assert!(ok(&[("DOCKER_RUN", "")], None).docker_run.is_none());
    assert!(err(&[("DOCKER_RUN", "  ")], None)
        .to_string()
        .contains("needs at least an image"));
    assert!(err(&[("DOCKER_RUN", "img \"x")], None)
        .to_string()
        .contains("unterminated double quote"));
    assert!(err(&[("DOCKER_RUN", "img"), ("DOCKER_NAME", "a b")], None)
        .to_string()
        .starts_with("$DOCKER_NAME: invalid value"));
}

#[test]
fn encrypt_key_and_rpc_auth() {
    let key = "cg8StVXbQJ0gPvMd9o7yrg==";
    let c = ok(&[("SERF_ENCRYPT_KEY", key), ("RPC_AUTH", "s3cret")], None);
    let k = c.encrypt_key.clone().unwrap();
    assert_eq!(k.as_base64(), key);
    assert_eq!(k.as_bytes().len(), 16);
    assert_eq!(c.rpc_auth.as_ref().unwrap().expose(), "s3cret");
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret") && !debug.contains(key), "{debug}");
    let e = err(&[("SERF_ENCRYPT_KEY", "c2hvcnQ=")], None);
    assert_eq!(
        e.to_string(),
        "$SERF_ENCRYPT_KEY: invalid value \"<redacted>\": the key is 5 bytes; it must be 16, 24 or 32"
    );
    let e = err(&[("SERF_ENCRYPT_KEY", "not base64!")], None);
    assert!(e.to_string().contains("not base64"), "{e}");
    assert!(!e.to_string().contains("not base64!\""), "{e}");
}

#[test]
fn environment_values_and_names() {
    let yml =
        "children:\n  - a:\n      image: x\n      environment: {N: 5, B: true, S: s, F: 1.5}\n";
    let c = ok(&[], Some(yml));
    let env = &c.children[0].environment;
    assert_eq!(env["N"], "5");
    assert_eq!(env["B"], "true");
    assert_eq!(env["S"], "s");
    assert_eq!(env["F"], "1.5");
    let e = err(
        &[],
        Some("children:\n  - a:\n      image: x\n      environment: {N: null}\n"),
    );
    assert_eq!(
        e.to_string(),
        "children[0].a.environment.N: expected a string, number or boolean, found null"
    );
    let e = err(
        &[],
        Some("children:\n  - a:\n      image: x\n      environment: {1: x}\n"),
    );
    assert!(
        e.to_string()
            .starts_with("children[0].a.environment (a key): expected a string"),
        "{e}"
    );
}

#[test]
fn node_name_or_random_uuid4_hex() {
    // §8 items 5 and 6.
    assert_eq!(
        ok(&[("NODE_NAME", "n1")], None).node_name_or([0xff; 16]),
        "n1"
    );
    let c = ok(&[], None);
    let a = c.node_name_or([0xff; 16]);
    assert_eq!(a, "ffffffffffff4fffbfffffffffffffff");
    let b = c.node_name_or([0; 16]);
    assert_eq!(b, "00000000000040008000000000000000");
    for name in [a, b] {
        assert_eq!(name.len(), 32);
        assert!(name
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
    }
}
