//! Tests of `serfnode_core::hosts`.
//!
//! SPEC §8 items covered: 8 (role maps to SERVICE_IP), 34 (oldest member wins), 35 (the
//! role moves when the oldest fails), 36 (decided: a role with no alive member is pruned),
//! 37 (two roles on one IP share a line), 39 (line format). Also §7.2 bug 4 (comments and
//! `localhost` kept, deterministic order, idempotent) and bug 14 (numeric timestamps).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use serf_core::{Member, MemberStatus};
use serfnode_core::hosts::{elect, rewrite, rewrite_roles, BEGIN_MARKER, END_MARKER};

const DOCKER: &str = include_str!("data/docker-hosts");

fn member(name: &str, role: &str, service: &str, ts: &str, status: MemberStatus) -> Member {
    Member {
        name: name.to_string(),
        addr: "10.9.9.9".parse().unwrap(),
        port: 7946,
        tags: vec![
            ("role".to_string(), role.to_string()),
            ("timestamp".to_string(), ts.to_string()),
            ("service".to_string(), service.to_string()),
        ],
        status,
        vsn: [2, 5, 4, 2, 5, 4],
        status_ltime: 1,
        leave_time: None,
    }
}

fn alive(name: &str, role: &str, service: &str, ts: &str) -> Member {
    member(name, role, service, ts, MemberStatus::Alive)
}

fn block(lines: &[&str]) -> String {
    let mut s = format!("{BEGIN_MARKER}\n");
    for l in lines {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str(END_MARKER);
    s.push('\n');
    s
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn oldest_member_of_a_role_wins() {
    // §8 items 34 and 35.
    let r1 = alive("r1", "db", "10.0.0.1", "1432836000.12");
    let r2 = alive("r2", "db", "10.0.0.2", "1432836005.12");
    let new = rewrite(DOCKER, &[r2.clone(), r1.clone()]);
    assert_eq!(new, format!("{DOCKER}{}", block(&["10.0.0.1 db"])));
    assert!(!new.contains("10.0.0.2"));
    let failed = Member {
        status: MemberStatus::Failed,
        ..r1
    };
    let new2 = rewrite(&new, &[failed, r2]);
    assert_eq!(new2, format!("{DOCKER}{}", block(&["10.0.0.2 db"])));
}

#[test]
fn timestamps_compare_as_numbers_and_ties_by_name() {
    // §7.2 bug 14: "999999999.9" < "1000000000.0" numerically, not as strings.
    let a = alive("a", "db", "10.0.0.1", "1000000000.0");
    let b = alive("b", "db", "10.0.0.2", "999999999.9");
    assert_eq!(elect(&[a, b])["db"], ip("10.0.0.2"));
    let x = alive("x", "db", "10.0.0.1", "5");
    let w = alive("w", "db", "10.0.0.2", "5.0");
    assert_eq!(elect(&[x.clone(), w.clone()])["db"], ip("10.0.0.2"));
    assert_eq!(elect(&[w, x])["db"], ip("10.0.0.2"));
    // A timestamp that is not a number never beats a numeric one.
    let junk = alive("a", "db", "10.0.0.3", "garbage");
    let real = alive("z", "db", "10.0.0.4", "1432836000.12");
    assert_eq!(elect(&[junk.clone(), real])["db"], ip("10.0.0.4"));
    assert_eq!(elect(&[junk])["db"], ip("10.0.0.3"));
}

#[test]
fn roles_without_alive_members_are_pruned() {
    // §8 item 36, decided: prune (the original kept the line forever).
    let r1 = alive("r1", "db", "10.0.0.1", "1");
    let with = rewrite(DOCKER, std::slice::from_ref(&r1));
    let left = Member {
        status: MemberStatus::Left,
        ..r1
    };
    assert_eq!(rewrite(&with, &[left]), DOCKER);
    assert_eq!(rewrite(&with, &[]), DOCKER);
}

#[test]
fn two_roles_one_address_share_a_line() {
    // §8 items 37 and 39.
    let a = alive("a", "web", "10.0.0.1", "1");
    let b = alive("b", "api", "10.0.0.1", "2");
    let c = alive("c", "db", "10.0.0.3", "3");
    let v6 = alive("d", "cache", "fd00::1", "3");
    let new = rewrite(DOCKER, &[a, b, c, v6]);
    assert_eq!(
        new,
        format!(
            "{DOCKER}{}",
            block(&["10.0.0.1 api web", "10.0.0.3 db", "fd00::1 cache"])
        )
    );
    for line in new
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("10.0.0"))
    {
        let mut parts = line.split(' ');
        assert!(parts.next().unwrap().parse::<IpAddr>().is_ok());
        assert!(parts.all(|p| !p.is_empty()), "single spaces: {line:?}");
    }
}

#[test]
fn service_ip_is_the_address() {
    // §8 item 8: the role maps to the service IP, not the serf IP.
    let m = alive("a", "redis", "9.9.9.9", "1");
    assert!(rewrite("", &[m]).contains("\n9.9.9.9 redis\n"));
}

#[test]
fn comments_and_other_lines_are_kept() {
    let old = "# my comment\n127.0.0.1 localhost   # trailing\n\n10.1.1.1\tthing\n";
    let new = rewrite(old, &[alive("a", "db", "10.0.0.1", "1")]);
    assert_eq!(new, format!("{old}{}", block(&["10.0.0.1 db"])));
}

#[test]
fn localhost_is_kept_or_added() {
    // The original left only `::1 localhost`; here 127.0.0.1 localhost always resolves.
    let m = alive("a", "db", "10.0.0.1", "1");
    let new = rewrite("::1 localhost\n", std::slice::from_ref(&m));
    assert_eq!(
        new,
        format!(
            "::1 localhost\n{}",
            block(&["10.0.0.1 db", "127.0.0.1 localhost"])
        )
    );
    let lo = alive("a", "db", "127.0.0.1", "1");
    assert_eq!(rewrite("", &[lo]), block(&["127.0.0.1 localhost db"]));
    // Idempotent with the added line.
    assert_eq!(rewrite(&new, &[m]), new);
}

#[test]
fn block_stays_in_place_and_is_idempotent() {
    let m = [
        alive("a", "db", "10.0.0.1", "1"),
        alive("b", "web", "10.0.0.2", "1"),
    ];
    let old = format!("1.1.1.1 top\n{}9.9.9.9 after\n", block(&["10.0.0.7 old"]));
    let new = rewrite(&old, &m);
    assert_eq!(
        new,
        format!(
            "1.1.1.1 top\n{}9.9.9.9 after\n",
            block(&["10.0.0.1 db", "10.0.0.2 web", "127.0.0.1 localhost"])
        )
    );
    assert_eq!(rewrite(&new, &m), new);
    let docker = rewrite(DOCKER, &m);
    assert_eq!(rewrite(&docker, &m), docker);
}

#[test]
fn no_trailing_newline_and_empty_file() {
    let m = [alive("a", "db", "10.0.0.1", "1")];
    let new = rewrite("127.0.0.1 localhost", &m);
    assert_eq!(
        new,
        format!("127.0.0.1 localhost\n{}", block(&["10.0.0.1 db"]))
    );
    assert_eq!(rewrite(&new, &m), new);
    assert_eq!(rewrite("", &[]), "");
    assert_eq!(rewrite("x", &[]), "x");
}

#[test]
fn unterminated_block_and_stray_markers() {
    let m = [alive("a", "db", "10.0.0.1", "1")];
    let old = format!("127.0.0.1 localhost\n{BEGIN_MARKER}\n10.0.0.9 db\n");
    assert_eq!(
        rewrite(&old, &m),
        format!("127.0.0.1 localhost\n{}", block(&["10.0.0.1 db"]))
    );
    assert_eq!(rewrite(&old, &[]), "127.0.0.1 localhost\n");
    let stray = format!("127.0.0.1 localhost\n{END_MARKER}\n");
    assert_eq!(rewrite(&stray, &[]), "127.0.0.1 localhost\n");
    // Two blocks (e.g. an edited file) collapse into one, at the first one's place.
    let two = format!(
        "a\n{}b\n{}c\n",
        block(&["1.1.1.1 x"]),
        block(&["2.2.2.2 y"])
    );
    assert_eq!(
        rewrite(&two, &m),
        format!(
            "a\n{}b\nc\n",
            block(&["10.0.0.1 db", "127.0.0.1 localhost"])
        )
    );
}

#[test]
fn unusable_roles_and_services_are_skipped() {
    let bad = [
        alive("a", "my role", "10.0.0.1", "1"),
        alive("b", "x\n1.2.3.4 evil", "10.0.0.1", "1"),
        alive("c", "db", "10.0.0.1 evil", "1"),
        alive("d", "web", "not-an-ip", "1"),
    ];
    assert!(elect(&bad).is_empty());
    assert_eq!(rewrite(DOCKER, &bad), DOCKER);
    // A bad oldest member does not hide a good younger one.
    let ok = alive("e", "web", "10.0.0.5", "9");
    assert_eq!(elect(&[bad[3].clone(), ok])["web"], ip("10.0.0.5"));
}

#[test]
fn plain_serf_members_and_non_alive_are_ignored() {
    let plain = Member {
        tags: vec![],
        ..alive("go", "x", "10.0.0.1", "1")
    };
    let leaving = member("l", "db", "10.0.0.2", "1", MemberStatus::Leaving);
    let failed = member("f", "db", "10.0.0.3", "0", MemberStatus::Failed);
    assert!(elect(&[plain, leaving, failed]).is_empty());
}

#[test]
fn rewrite_roles_skips_bad_names() {
    let mut roles = BTreeMap::new();
    roles.insert("ok".to_string(), ip("10.0.0.1"));
    roles.insert("not ok".to_string(), ip("10.0.0.2"));
    assert_eq!(
        rewrite_roles("127.0.0.1 localhost\n", &roles),
        format!("127.0.0.1 localhost\n{}", block(&["10.0.0.1 ok"]))
    );
}
