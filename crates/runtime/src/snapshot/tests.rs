//! Tests of the parent module `snapshot`.

use super::*;
use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Go 0.9.4 files, from vectors/agent_vectors.json "files".
const GO_AFTER_KILL9: &str = "alive: snap 127.0.0.1:17969\nalive: alpha 127.0.0.1:17946\nclock: 27\nalive: beta 127.0.0.1:17947\nevent-clock: 6\n";
const GO_AFTER_LEAVE: &str = "alive: snap 127.0.0.1:17969\nalive: alpha 127.0.0.1:17946\nclock: 27\nalive: beta 127.0.0.1:17947\nevent-clock: 6\nalive: snap 127.0.0.1:17969\nalive: beta 127.0.0.1:17947\nalive: alpha 127.0.0.1:17946\nleave\nclock: 28\n";
const GO_ALPHA: &str = "alive: alpha 127.0.0.1:17946\nalive: beta 127.0.0.1:17947\nclock: 1\nevent-clock: 1\nevent-clock: 2\nevent-clock: 3\nalive: tmpnode 127.0.0.1:17960\nclock: 2\nclock: 3\nnot-alive: tmpnode\nquery-clock: 1\nclock: 4\nquery-clock: 3\nclock: 5\nclock: 7\nclock: 8\nclock: 9\nquery-clock: 4\nquery-clock: 5\nalive: leaver 127.0.0.1:17961\nclock: 10\nclock: 11\nnot-alive: leaver\nclock: 13\nevent-clock: 4\nevent-clock: 5\nquery-clock: 6\nquery-clock: 7\nclock: 14\nquery-clock: 9\nquery-clock: 10\nquery-clock: 11\nquery-clock: 12\nclock: 15\nclock: 16\nquery-clock: 13\nalive: leaver2 127.0.0.1:17962\nclock: 18\nclock: 19\nnot-alive: leaver2\nalive: sigint 127.0.0.1:17963\nclock: 21\nnot-alive: sigint\nclock: 22\nalive: sigterm 127.0.0.1:17964\nclock: 24\nnot-alive: sigterm\nnot-alive: sigterm\nclock: 25\nquery-clock: 14\nclock: 26\nalive: snap 127.0.0.1:17969\nclock: 27\nevent-clock: 6\nclock: 28\nnot-alive: snap\nclock: 29\nleave\nclock: 30\n";

const CHILD_ENV: &str = "SERF_SNAPSHOT_CRASH_CHILD";

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("serf-snapshot-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, content: &str) -> PathBuf {
        let p = self.0.join("snap");
        fs::write(&p, content).unwrap();
        p
    }

    fn path(&self) -> PathBuf {
        self.0.join("snap")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn replay(content: &str, rejoin: bool) -> Replay {
    let dir = TempDir::new();
    let p = dir.file(content);
    Snapshot::open(&p, rejoin).unwrap().1
}

fn names(r: &Replay) -> Vec<&str> {
    r.alive.iter().map(|(n, _)| n.as_str()).collect()
}

#[test]
fn format_round_trip() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, r) = Snapshot::open(&p, false).unwrap();
    assert_eq!(r, Replay::default());
    s.alive("a", addr("10.0.0.1:7946")).unwrap();
    s.alive("with space", addr("[::1]:7947")).unwrap();
    s.alive("mapped", addr("[::ffff:10.0.0.9]:1")).unwrap();
    s.alive("gone", addr("10.0.0.2:7946")).unwrap();
    s.clock(5).unwrap();
    s.not_alive("gone").unwrap();
    s.clock(5).unwrap(); // not grown: not written
    s.clock(4).unwrap();
    s.event_clock(3).unwrap();
    s.event_clock(3).unwrap();
    s.query_clock(9).unwrap();
    s.query_clock(2).unwrap();
    s.clock(7).unwrap();
    s.close().unwrap();
    let text = fs::read_to_string(&p).unwrap();
    assert_eq!(
        text,
        "alive: a 10.0.0.1:7946\nalive: with space [::1]:7947\nalive: mapped 10.0.0.9:1\n\
         alive: gone 10.0.0.2:7946\nclock: 5\nnot-alive: gone\nevent-clock: 3\n\
         query-clock: 9\nclock: 7\n"
    );
    let (s, r) = Snapshot::open(&p, false).unwrap();
    assert_eq!(
        r.alive,
        vec![
            ("a".to_string(), addr("10.0.0.1:7946")),
            ("mapped".to_string(), addr("10.0.0.9:1")),
            ("with space".to_string(), addr("[::1]:7947")),
        ]
    );
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (7, 3, 9)
    );
    assert!(!r.left);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // The reopened writer continues from the replayed clocks.
    assert_eq!(
        (s.last_clock(), s.last_event_clock(), s.last_query_clock()),
        (7, 3, 9)
    );
    assert_eq!(s.alive_nodes().count(), 3);
    assert_eq!(s.size(), text.len() as u64);
}

#[test]
fn refuses_unwritable_names() {
    let dir = TempDir::new();
    let (mut s, _) = Snapshot::open(&dir.path(), false).unwrap();
    assert!(s.alive("a\nleave", addr("1.2.3.4:5")).is_err());
    assert!(s.not_alive("a\nleave").is_err());
    assert!(s.alive(&"x".repeat(MAX_LINE), addr("1.2.3.4:5")).is_err());
    let long = "y".repeat(MAX_LINE - 40);
    s.alive(&long, addr("1.2.3.4:5")).unwrap();
    assert_eq!(s.alive_nodes().count(), 1);
    drop(s);
    let (_, r) = Snapshot::open(&dir.path(), false).unwrap();
    assert_eq!(names(&r), vec![long.as_str()]);
}

#[test]
fn replay_alive_not_alive_and_clocks() {
    let r = replay(
        "alive: a 1.1.1.1:1\nalive: b 2.2.2.2:2\nalive: a 1.1.1.1:9\nnot-alive: b\n\
         not-alive: never\nclock: 3\nclock: 2\nevent-clock: 4\nquery-clock: 5\n",
        false,
    );
    assert_eq!(r.alive, vec![("a".to_string(), addr("1.1.1.1:9"))]);
    // The last value wins, as in Go.
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (2, 4, 5)
    );
    assert!(!r.left);
    assert!(r.warnings.is_empty());
}

#[test]
fn replay_leave() {
    let text = "alive: a 1.1.1.1:1\nclock: 3\nevent-clock: 4\nquery-clock: 5\nleave\nclock: 6\n";
    let r = replay(text, false);
    assert!(r.alive.is_empty());
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (6, 0, 0)
    );
    assert!(r.left);

    let r = replay(text, true);
    assert_eq!(names(&r), vec!["a"]);
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (6, 4, 5)
    );
    assert!(r.left);

    // A restart after the leave: later lines count again.
    let r = replay(
        &format!("{text}alive: b 2.2.2.2:2\nevent-clock: 9\n"),
        false,
    );
    assert_eq!(names(&r), vec!["b"]);
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (6, 9, 0)
    );
    assert!(!r.left);
}

#[test]
fn torn_last_line_ignored_and_cut() {
    let dir = TempDir::new();
    let p = dir.file("alive: a 1.1.1.1:1\nclock: 3\nalive: b 2.2.2.2:79");
    let (mut s, r) = Snapshot::open(&p, false).unwrap();
    assert_eq!(names(&r), vec!["a"]);
    assert_eq!(r.last_clock, 3);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("incomplete"), "{:?}", r.warnings);
    // The fragment is gone, so the next line does not glue onto it.
    s.alive("c", addr("3.3.3.3:3")).unwrap();
    drop(s);
    assert_eq!(
        fs::read_to_string(&p).unwrap(),
        "alive: a 1.1.1.1:1\nclock: 3\nalive: c 3.3.3.3:3\n"
    );
    let r = replay(&fs::read_to_string(&p).unwrap(), false);
    assert_eq!(names(&r), vec!["a", "c"]);
    assert!(r.warnings.is_empty());

    // A file that is nothing but a fragment.
    let r = replay("alive: x 1.1.1.1:1", false);
    assert!(r.alive.is_empty());
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn garbage_lines_skipped() {
    let r = replay(
        "# comment\ncoordinate: {\"Vec\":[1]}\nbogus line\nalive: nospace\n\
         alive: host not-an-addr\nalive: h host.example:7946\nclock: x\nclock: +5\n\
         clock: 99999999999999999999\nevent-clock: -1\nquery-clock: \nleave \n\
         not-alive:missing-space\n\nalive: ok 1.2.3.4:5\nclock: 8\n",
        false,
    );
    assert_eq!(names(&r), vec!["ok"]);
    assert_eq!(r.last_clock, 8);
    assert!(!r.left, "`leave ` with a trailing space is not a leave");
    assert_eq!(r.warnings.len(), 12, "{:#?}", r.warnings);
    assert!(
        r.warnings[0].starts_with("line 3: unrecognized"),
        "{:?}",
        r.warnings
    );

    let bytes = b"alive: a 1.1.1.1:1\n\xff\xfe\nclock: 2\n".to_vec();
    let dir = TempDir::new();
    let p = dir.path();
    fs::write(&p, &bytes).unwrap();
    let (_, r) = Snapshot::open(&p, false).unwrap();
    assert_eq!(names(&r), vec!["a"]);
    assert_eq!(r.last_clock, 2);
    assert_eq!(r.warnings.len(), 1);
}

#[test]
fn huge_lines_and_many_warnings_are_bounded() {
    let dir = TempDir::new();
    let p = dir.path();
    {
        let mut f = BufWriter::new(File::create(&p).unwrap());
        f.write_all(b"alive: a 1.1.1.1:1\n").unwrap();
        // A 20 MB line, then a huge number of garbage lines.
        let chunk = vec![b'z'; 1 << 20];
        f.write_all(b"alive: ").unwrap();
        for _ in 0..20 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b" 1.2.3.4:5\n").unwrap();
        for i in 0..200_000 {
            writeln!(f, "junk {i}").unwrap();
        }
        f.write_all(b"clock: 11\n").unwrap();
        // And a huge torn tail.
        for _ in 0..5 {
            f.write_all(&chunk).unwrap();
        }
    }
    let (mut s, r) = Snapshot::open(&p, false).unwrap();
    assert_eq!(names(&r), vec!["a"]);
    assert_eq!(r.last_clock, 11);
    assert_eq!(r.warnings.len(), MAX_WARNINGS + 1);
    assert!(r.warnings[0].contains("too long"), "{}", r.warnings[0]);
    assert!(r.warnings[MAX_WARNINGS].contains("more warnings suppressed"));
    assert!(r.warnings.iter().all(|w| w.len() < 300));
    // The file is far over the compaction threshold: the next record compacts it.
    s.clock(12).unwrap();
    drop(s);
    assert_eq!(
        fs::read_to_string(&p).unwrap(),
        "alive: a 1.1.1.1:1\nclock: 12\nevent-clock: 0\nquery-clock: 0\n"
    );
}

#[test]
fn replay_alive_set_is_capped() {
    let dir = TempDir::new();
    let p = dir.path();
    {
        let mut f = BufWriter::new(File::create(&p).unwrap());
        let name = "n".repeat(3000);
        let n = MAX_REPLAY_ALIVE_BYTES / (3000 + NODE_OVERHEAD) + 10;
        for i in 0..n {
            writeln!(f, "alive: {name}{i} 1.1.1.1:1").unwrap();
        }
    }
    let (_, r) = Snapshot::open(&p, false).unwrap();
    let n = MAX_REPLAY_ALIVE_BYTES / (3000 + NODE_OVERHEAD) + 10;
    assert!(
        r.alive.len() < n && r.alive.len() > n - 100,
        "{}",
        r.alive.len()
    );
    assert!(r.warnings.iter().any(|w| w.contains("alive set too large")));
}

#[test]
fn go_snapshots() {
    let r = replay(GO_AFTER_KILL9, false);
    assert_eq!(
        r.alive,
        vec![
            ("alpha".to_string(), addr("127.0.0.1:17946")),
            ("beta".to_string(), addr("127.0.0.1:17947")),
            ("snap".to_string(), addr("127.0.0.1:17969")),
        ]
    );
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (27, 6, 0)
    );
    assert!(!r.left);
    assert!(r.warnings.is_empty());

    let r = replay(GO_AFTER_LEAVE, false);
    assert!(r.alive.is_empty());
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (28, 0, 0)
    );
    assert!(r.left);
    let r = replay(GO_AFTER_LEAVE, true);
    assert_eq!(names(&r), vec!["alpha", "beta", "snap"]);
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (28, 6, 0)
    );

    let r = replay(GO_ALPHA, false);
    assert!(r.alive.is_empty());
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (30, 0, 0)
    );
    assert!(r.left);
    assert!(r.warnings.is_empty());
    let r = replay(GO_ALPHA, true);
    assert_eq!(names(&r), vec!["alpha", "beta"]);
    assert_eq!(
        (r.last_clock, r.last_event_clock, r.last_query_clock),
        (30, 6, 14)
    );

    // Appending to a Go file continues it.
    let dir = TempDir::new();
    let p = dir.file(GO_AFTER_KILL9);
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    s.clock(27).unwrap();
    s.event_clock(6).unwrap();
    s.clock(30).unwrap();
    s.not_alive("beta").unwrap();
    drop(s);
    let text = fs::read_to_string(&p).unwrap();
    assert_eq!(
        text,
        format!("{GO_AFTER_KILL9}clock: 30\nnot-alive: beta\n")
    );
}

#[test]
fn writer_after_leave() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    s.alive("a", addr("1.1.1.1:1")).unwrap();
    s.event_clock(2).unwrap();
    s.clock(3).unwrap();
    s.leave().unwrap();
    assert!(s.is_leaving());
    // Ignored after a leave, except the clock.
    s.alive("b", addr("2.2.2.2:2")).unwrap();
    s.not_alive("a").unwrap();
    s.event_clock(5).unwrap();
    s.query_clock(5).unwrap();
    s.leave().unwrap();
    s.clock(4).unwrap();
    s.close().unwrap();
    let text = fs::read_to_string(&p).unwrap();
    assert_eq!(
        text,
        "alive: a 1.1.1.1:1\nevent-clock: 2\nclock: 3\nleave\nclock: 4\n"
    );
    let r = replay(&text, false);
    assert!(r.left && r.alive.is_empty());
}

/// Replays `text` with both `rejoin_after_leave` settings, comparing everything but
/// warnings.
fn same_replay(a: &str, b: &str) {
    for rejoin in [false, true] {
        let mut ra = replay(a, rejoin);
        let mut rb = replay(b, rejoin);
        ra.warnings.clear();
        rb.warnings.clear();
        assert_eq!(ra, rb, "rejoin_after_leave = {rejoin}");
    }
}

#[test]
fn compaction_triggers_and_preserves_state() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    let mut log = String::new();
    let mut max_size = 0;
    let mut compactions = 0;
    let mut last_size = 0;
    for i in 0..20_000u64 {
        let name = format!("node-{}", i % 300);
        let a = SocketAddr::new([10, 0, (i % 7) as u8, 1].into(), 7946);
        if i % 3 == 2 {
            s.not_alive(&name).unwrap();
            log.push_str(&format!("not-alive: {name}\n"));
        } else {
            s.alive(&name, a).unwrap();
            log.push_str(&format!("alive: {name} {a}\n"));
        }
        if i % 10 == 0 {
            s.clock(i).unwrap();
            s.event_clock(i / 2).unwrap();
            s.query_clock(i / 3).unwrap();
            log.push_str(&format!(
                "clock: {i}\nevent-clock: {}\nquery-clock: {}\n",
                i / 2,
                i / 3
            ));
        }
        if s.size() < last_size {
            compactions += 1;
        }
        last_size = s.size();
        max_size = max_size.max(s.size());
        assert!(s.size() <= s.max_size() + 64);
    }
    assert!(compactions >= 3, "{compactions} compactions");
    assert!(max_size <= MIN_COMPACT_SIZE + 64);
    assert!(log.len() as u64 > 4 * MIN_COMPACT_SIZE);
    let on_disk = fs::metadata(&p).unwrap().len();
    assert_eq!(on_disk, s.size());
    assert!(!compact_path(&p).exists());
    let mode = fs::metadata(&p).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o111, 0);
    drop(s);
    same_replay(&fs::read_to_string(&p).unwrap(), &log);

    // Forced compaction is exactly Go's layout.
    let (mut s, r) = Snapshot::open(&p, false).unwrap();
    s.compact().unwrap();
    let mut expected = String::new();
    for (n, a) in &r.alive {
        expected.push_str(&format!("alive: {n} {a}\n"));
    }
    expected.push_str(&format!(
        "clock: {}\nevent-clock: {}\nquery-clock: {}\n",
        r.last_clock, r.last_event_clock, r.last_query_clock
    ));
    assert_eq!(fs::read_to_string(&p).unwrap(), expected);
    // And the descriptor appends to the new file.
    s.not_alive("node-0").unwrap();
    assert!(fs::read_to_string(&p)
        .unwrap()
        .ends_with("query-clock: 6663\nnot-alive: node-0\n"));
}

#[test]
fn compaction_threshold_follows_alive_count() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    for i in 0..2000 {
        s.alive(&format!("n{i}"), addr("1.1.1.1:1")).unwrap();
    }
    assert_eq!(s.max_size(), 2000 * 256);
    s.set_min_compact_size(1 << 20);
    assert_eq!(s.max_size(), 1 << 20);
}

#[test]
fn compaction_after_leave_keeps_leave() {
    for rejoin in [false, true] {
        let dir = TempDir::new();
        let p = dir.path();
        let (mut s, _) = Snapshot::open(&p, rejoin).unwrap();
        s.alive("a", addr("1.1.1.1:1")).unwrap();
        s.clock(3).unwrap();
        s.event_clock(4).unwrap();
        s.query_clock(5).unwrap();
        s.leave().unwrap();
        s.clock(6).unwrap();
        let before = fs::read_to_string(&p).unwrap();
        s.compact().unwrap();
        drop(s);
        let after = fs::read_to_string(&p).unwrap();
        assert!(after.contains("\nleave\nclock: 6\n"), "{after}");
        same_replay(&before, &after);
    }
}

#[test]
fn failed_compaction_is_retried_after_interval() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    s.set_min_compact_size(200);
    // A directory with content in the way makes the compaction fail.
    let blocker = compact_path(&p);
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), "").unwrap();
    let mut errors = 0;
    for _ in 0..40 {
        if s.alive("same", addr("1.1.1.1:1")).is_err() {
            errors += 1;
        }
    }
    // One failed attempt; the other lines were appended normally.
    assert_eq!(errors, 1);
    assert!(s.last_compact_failure.is_some());
    assert!(s.size() > 600);
    fs::remove_dir_all(&blocker).unwrap();
    s.alive("late", addr("1.1.1.1:1")).unwrap();
    assert!(s.size() > 600, "no retry before the interval");
    s.last_compact_failure = Some(Instant::now() - COMPACTION_RETRY_INTERVAL);
    s.alive("later", addr("1.1.1.1:1")).unwrap();
    assert!(s.last_compact_failure.is_none());
    assert!(s.size() < 200);
    drop(s);
    let r = replay(&fs::read_to_string(&p).unwrap(), false);
    assert_eq!(names(&r), vec!["late", "later", "same"]);
}

#[test]
fn write_error_recovers_by_compaction() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    s.alive("a", addr("1.1.1.1:1")).unwrap();
    // Swap in a read-only descriptor: the next write fails.
    s.file = File::open(&p).unwrap();
    assert!(s.alive("b", addr("2.2.2.2:2")).is_ok(), "recovered at once");
    assert!(!s.broken);
    s.file = File::open(&p).unwrap();
    s.last_compact_failure = Some(Instant::now());
    assert!(s.alive("c", addr("3.3.3.3:3")).is_err());
    assert!(s.broken);
    assert!(s.clock(9).is_err(), "suspended");
    s.last_compact_failure = Some(Instant::now() - COMPACTION_RETRY_INTERVAL);
    s.not_alive("a").unwrap();
    assert!(!s.broken);
    drop(s);
    let r = replay(&fs::read_to_string(&p).unwrap(), false);
    assert_eq!(names(&r), vec!["b", "c"]);
    assert_eq!(r.last_clock, 9);
}

#[test]
fn every_record_is_in_the_file_when_the_call_returns() {
    let dir = TempDir::new();
    let p = dir.path();
    let (mut s, _) = Snapshot::open(&p, false).unwrap();
    let mut other = File::open(&p).unwrap();
    let mut seen = String::new();
    let mut check = |s: &Snapshot, expect: &str| {
        let mut buf = String::new();
        other.read_to_string(&mut buf).unwrap();
        seen.push_str(&buf);
        assert!(seen.ends_with(expect), "{seen:?} lacks {expect:?}");
        assert_eq!(seen.len() as u64, s.size());
    };
    s.alive("a", addr("1.1.1.1:1")).unwrap();
    check(&s, "alive: a 1.1.1.1:1\n");
    s.clock(1).unwrap();
    check(&s, "clock: 1\n");
    s.event_clock(1).unwrap();
    check(&s, "event-clock: 1\n");
    s.query_clock(1).unwrap();
    check(&s, "query-clock: 1\n");
    s.not_alive("a").unwrap();
    check(&s, "not-alive: a\n");
    s.leave().unwrap();
    check(&s, "leave\n");
}

/// Child half of [`sigkill_loses_nothing`]: records forever, reporting each record on
/// stdout once the call has returned. Does nothing in a normal test run.
#[test]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (mut s, _) = Snapshot::open(Path::new(&path), false).unwrap();
    let mut out = io::stdout().lock();
    for i in 0..10_000_000u64 {
        s.alive(&format!("node-{i}"), addr("10.1.2.3:7946"))
            .unwrap();
        s.event_clock(i + 1).unwrap();
        writeln!(out, "recorded {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_loses_nothing() {
    let dir = TempDir::new();
    let p = dir.path();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "snapshot::tests::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &p)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last: Option<u64> = None;
    // Past the first compaction (about 4,000 records), then kill mid-stream.
    for line in lines.by_ref() {
        if let Some(i) = line.unwrap().strip_prefix("recorded ") {
            let i: u64 = i.parse().unwrap();
            last = Some(i);
            if i == 6000 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    // Records reported before the kill landed.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(i) = line.strip_prefix("recorded ") {
            last = Some(i.parse().unwrap());
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    let last = last.expect("child reported nothing");
    assert!(last >= 6000);
    let (_, r) = Snapshot::open(&p, false).unwrap();
    let alive: std::collections::HashSet<&str> = r.alive.iter().map(|(n, _)| n.as_str()).collect();
    for i in 0..=last {
        assert!(
            alive.contains(format!("node-{i}").as_str()),
            "node-{i} lost"
        );
    }
    assert!(r.last_event_clock > last);
}
