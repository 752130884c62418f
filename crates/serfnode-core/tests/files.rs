//! Tests of `serfnode_core::files`.
//!
//! SPEC §8 items covered: 5 (`id` fields are the node name), 9 and 10 (`ports` in node
//! info, `/udp`), 12 (the files contain this node), 13 (`me.json`/`parent.json` content),
//! 14 (two roles: 2 ids, 2 one-element lists, string values), 15 (failed/left members
//! absent), 17 (atomic replace, no litter), 18 (children map key and NetworkSettings),
//! 19 (a child's `/me.json` equals its entry plus newline). Also §7.2 bug 12 (mode 0644)
//! and bug 15 (plain serf members skipped).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::{json, Value};
use serf_core::{Member, MemberStatus};
use serfnode_core::files::{
    alive_nodes, atomic_write, child_me_json, children_by_name, container_info, serfnodes_by_id,
    serfnodes_by_role, FilesError,
};

fn member(name: &str, addr: &str, tags: &[(&str, &str)], status: MemberStatus) -> Member {
    Member {
        name: name.to_string(),
        addr: addr.parse().unwrap(),
        port: 7946,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        status,
        vsn: [2, 5, 4, 2, 5, 4],
        status_ltime: 1,
        leave_time: None,
    }
}

fn redis() -> Member {
    member(
        "5b0d",
        "10.0.0.5",
        &[
            ("role", "redis"),
            ("ip", "10.0.0.5"),
            ("serf_port", "7946"),
            ("rpc", "7373"),
            ("timestamp", "1432836000.12"),
            ("service", "10.0.0.5"),
            ("service_port", "0"),
            ("ports", "6379t6379|7946t7946"),
        ],
        MemberStatus::Alive,
    )
}

fn app() -> Member {
    member(
        "a9e1",
        "10.0.0.6",
        &[
            ("role", "app"),
            ("ip", "10.0.0.6"),
            ("serf_port", "7946"),
            ("rpc", "7373"),
            ("timestamp", "1432836101.5"),
            ("service", "10.0.0.6"),
            ("service_port", "8080"),
            ("ports", "8080t8080|7946t7946|7946u7946"),
        ],
        MemberStatus::Alive,
    )
}

const REDIS_INFO: &str = r#"{"id": "5b0d", "role": "redis", "serf_ip": "10.0.0.5", "serf_port": "7946", "service_ip": "10.0.0.5", "service_port": "0", "timestamp": "1432836000.12", "ports": {"6379/tcp": ["6379"], "7946/tcp": ["7946"]}}"#;
const APP_INFO: &str = r#"{"id": "a9e1", "role": "app", "serf_ip": "10.0.0.6", "serf_port": "7946", "service_ip": "10.0.0.6", "service_port": "8080", "timestamp": "1432836101.5", "ports": {"7946/tcp": ["7946"], "7946/udp": ["7946"], "8080/tcp": ["8080"]}}"#;

#[test]
fn by_id_matches_the_spec_example() {
    // §3.5 example (with /udp), §8 items 12 and 14.
    let text = serfnodes_by_id(&[redis(), app()]).unwrap();
    assert_eq!(
        text,
        format!(r#"{{"5b0d": {REDIS_INFO}, "a9e1": {APP_INFO}}}"#)
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v.as_object().unwrap().len(), 2);
    for node in v.as_object().unwrap().values() {
        let node = node.as_object().unwrap();
        assert_eq!(node.len(), 8, "exactly the 8 documented fields");
        for (k, val) in node {
            if k == "ports" {
                assert!(val.is_object());
            } else {
                assert!(val.is_string(), "{k} is a string");
            }
        }
    }
}

#[test]
fn by_role_groups_alive_members() {
    // §8 item 14.
    let text = serfnodes_by_role(&[redis(), app()]).unwrap();
    assert_eq!(
        text,
        format!(r#"{{"app": [{APP_INFO}], "redis": [{REDIS_INFO}]}}"#)
    );
}

#[test]
fn by_role_lists_oldest_first() {
    let young = member(
        "z",
        "10.0.0.8",
        &[("role", "redis"), ("timestamp", "2000000000.0")],
        MemberStatus::Alive,
    );
    let old = member(
        "y",
        "10.0.0.9",
        &[("role", "redis"), ("timestamp", "999999999.0")],
        MemberStatus::Alive,
    );
    let v: Value =
        serde_json::from_str(&serfnodes_by_role(&[young, redis(), old]).unwrap()).unwrap();
    let ids: Vec<&str> = v["redis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["y", "5b0d", "z"]);
}

#[test]
fn only_alive_serfnodes() {
    // §8 item 15 and §7.2 bug 15.
    let mut failed = app();
    failed.status = MemberStatus::Failed;
    let mut left = app();
    left.name = "left".into();
    left.status = MemberStatus::Left;
    let mut leaving = app();
    leaving.name = "leaving".into();
    leaving.status = MemberStatus::Leaving;
    let plain = member("go-agent", "10.0.0.7", &[], MemberStatus::Alive);
    let members = [redis(), failed, left, leaving, plain];
    assert_eq!(alive_nodes(&members).len(), 1);
    assert_eq!(
        serfnodes_by_id(&members).unwrap(),
        format!(r#"{{"5b0d": {REDIS_INFO}}}"#)
    );
    assert_eq!(
        serfnodes_by_role(&members).unwrap(),
        format!(r#"{{"redis": [{REDIS_INFO}]}}"#)
    );
    assert_eq!(serfnodes_by_id(&[]).unwrap(), "{}");
    assert_eq!(serfnodes_by_role(&[]).unwrap(), "{}");
}

#[test]
fn no_ports_is_an_empty_object() {
    // §8 item 10.
    let m = member(
        "n",
        "10.0.0.1",
        &[("role", "r"), ("timestamp", "1"), ("ports", "")],
        MemberStatus::Alive,
    );
    let v: Value = serde_json::from_str(&serfnodes_by_id(&[m]).unwrap()).unwrap();
    assert_eq!(v["n"]["ports"], json!({}));
}

#[test]
fn me_and_parent_json() {
    // §8 items 5 and 13.
    let inspect =
        json!({"Id": "abc", "Name": "/parent", "NetworkSettings": {"IPAddress": "172.17.0.5"}});
    let text = container_info("n1", &inspect).unwrap();
    assert_eq!(
        text,
        r#"{"id": "n1", "inspect": {"Id": "abc", "Name": "/parent", "NetworkSettings": {"IPAddress": "172.17.0.5"}}}"#
    );
}

fn parent_inspect() -> Value {
    json!({"Id": "p", "Name": "/parent", "NetworkSettings": {"IPAddress": "172.17.0.5", "Ports": {}}})
}

#[test]
fn children_map_and_child_me_json() {
    // §8 items 18 and 19.
    let child_a = json!({"Id": "c1", "Name": "/redis_app_x", "NetworkSettings": {"IPAddress": ""}, "Config": {"Image": "redis"}});
    let child_b = json!({"Id": "c2", "Name": "web", "Config": {"Image": "nginx"}});
    let text = children_by_name("n1", &parent_inspect(), &[child_a.clone(), child_b]).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let map = v.as_object().unwrap();
    assert_eq!(map.keys().collect::<Vec<_>>(), vec!["redis_app_x", "web"]);
    assert_eq!(map["redis_app_x"]["id"], "n1");
    assert_eq!(
        map["redis_app_x"]["inspect"]["NetworkSettings"],
        parent_inspect()["NetworkSettings"]
    );
    assert_eq!(map["redis_app_x"]["inspect"]["Config"]["Image"], "redis");
    assert_eq!(
        map["web"]["inspect"]["NetworkSettings"],
        parent_inspect()["NetworkSettings"]
    );

    let me = child_me_json("n1", &parent_inspect(), &child_a).unwrap();
    assert!(me.ends_with("}\n"));
    let me_v: Value = serde_json::from_str(&me).unwrap();
    assert_eq!(me_v, map["redis_app_x"]);

    // A restarted child overwrites its entry.
    let restarted = json!({"Id": "c3", "Name": "/redis_app_x"});
    let v: Value = serde_json::from_str(
        &children_by_name("n1", &parent_inspect(), &[child_a, restarted]).unwrap(),
    )
    .unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert_eq!(v["redis_app_x"]["inspect"]["Id"], "c3");
    assert_eq!(
        children_by_name("n1", &parent_inspect(), &[]).unwrap(),
        "{}"
    );
}

#[test]
fn child_without_name() {
    for bad in [
        json!({"Id": "x"}),
        json!({"Name": 5}),
        json!({"Name": "/"}),
        json!(null),
    ] {
        let e = children_by_name("n1", &parent_inspect(), std::slice::from_ref(&bad)).unwrap_err();
        assert!(matches!(e, FilesError::ChildWithoutName));
        assert!(child_me_json("n1", &parent_inspect(), &bad).is_err());
    }
    assert_eq!(
        FilesError::ChildWithoutName.to_string(),
        "a child's inspect document has no \"Name\" string"
    );
}

fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("serfnode-files")
        .join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn atomic_write_replaces_with_mode_0644() {
    // §8 item 17, §7.2 bug 12.
    let dir = scratch("replace");
    atomic_write(&dir, "serfnodes_by_id.json", b"{}").unwrap();
    assert_eq!(fs::read(dir.join("serfnodes_by_id.json")).unwrap(), b"{}");
    atomic_write(&dir, "serfnodes_by_id.json", b"{\"a\": 1}").unwrap();
    assert_eq!(
        fs::read(dir.join("serfnodes_by_id.json")).unwrap(),
        b"{\"a\": 1}"
    );
    let mode = fs::metadata(dir.join("serfnodes_by_id.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(listing(&dir), vec!["serfnodes_by_id.json"]);
}

#[test]
fn atomic_write_errors_leave_no_litter() {
    let dir = scratch("errors");
    // The target is a non-empty directory: the rename fails after the temp file exists.
    fs::create_dir_all(dir.join("taken").join("inside")).unwrap();
    let e = atomic_write(&dir, "taken", b"x").unwrap_err();
    assert!(matches!(e, FilesError::Io { op: "rename", .. }), "{e:?}");
    assert!(e.to_string().starts_with("rename "), "{e}");
    assert_eq!(listing(&dir), vec!["taken"]);
    // A missing directory.
    let e = atomic_write(&dir.join("missing"), "f", b"x").unwrap_err();
    assert!(matches!(e, FilesError::Io { op: "create", .. }), "{e:?}");
    // Names that are not plain file names.
    for name in ["", ".", "..", "a/b", "a\0b"] {
        let e = atomic_write(&dir, name, b"x").unwrap_err();
        assert!(matches!(e, FilesError::InvalidFileName { .. }), "{name:?}");
    }
    assert_eq!(listing(&dir), vec!["taken"]);
}

#[test]
fn concurrent_readers_never_see_a_partial_file() {
    // §8 item 17: a reader sees the old or the new content, whole.
    let dir = scratch("concurrent");
    let big_a = vec![b'a'; 256 * 1024];
    let big_b = vec![b'b'; 256 * 1024];
    atomic_write(&dir, "f.json", &big_a).unwrap();
    let path = dir.join("f.json");
    let reader = std::thread::spawn(move || {
        for _ in 0..200 {
            let content = fs::read(&path).unwrap();
            assert_eq!(content.len(), 256 * 1024);
            assert!(content.iter().all(|&c| c == content[0]));
        }
    });
    for i in 0..50 {
        atomic_write(&dir, "f.json", if i % 2 == 0 { &big_b } else { &big_a }).unwrap();
    }
    reader.join().unwrap();
    assert_eq!(listing(&dir), vec!["f.json"]);
}
