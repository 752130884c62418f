//! The repository is self-contained: a clone with nothing beside it has every file its
//! tests, docs and scripts name.
//!
//! * No tracked file refers to the reference folder that lived beside the repository during
//!   development, or to an absolute path of the machine it was written on.
//! * Every `docs/...` and `testdata/...` path named in a tracked file is itself tracked (a
//!   file, or a directory holding tracked files; a `*` pattern needs its directory).
//! * The data directories the tests read through `serf_testdata` are tracked.
//!
//! Reads the file list from `git ls-files`; outside a git checkout the test skips with a
//! message, except with `CI=true`, where it fails.

use std::collections::BTreeSet;
use std::process::Command;

fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Tracked files, relative to the repository root; `None` outside a git checkout.
fn tracked() -> Option<BTreeSet<String>> {
    let root = serf_testdata::repo_root();
    let out = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z", "--cached"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let list = String::from_utf8_lossy(&out.stdout);
    Some(
        list.split('\0')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

fn tracked_or_skip() -> Option<BTreeSet<String>> {
    let t = tracked();
    if t.is_none() {
        assert!(
            !in_ci(),
            "CI=true but the repository is not a git checkout (git ls-files failed)"
        );
        eprintln!("skipping: not a git checkout, cannot list tracked files");
    }
    t
}

/// Tracked text files (no NUL byte, valid UTF-8) and their contents.
fn text_files(files: &BTreeSet<String>) -> Vec<(String, String)> {
    let root = serf_testdata::repo_root();
    files
        .iter()
        .filter_map(|f| {
            let bytes = std::fs::read(root.join(f)).ok()?;
            if bytes.contains(&0) {
                return None;
            }
            String::from_utf8(bytes).ok().map(|s| (f.clone(), s))
        })
        .collect()
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '*')
}

/// Every `docs/...` / `testdata/...` path token in `text`, trailing punctuation removed.
fn repo_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for prefix in ["docs/", "testdata/"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(prefix) {
            let start = from + i;
            from = start + prefix.len();
            let before = text[..start].chars().next_back();
            if before.is_some_and(|c| is_path_char(c) || c == '{') {
                continue; // part of a longer path (e.g. `crates/x/docs/`)
            }
            let tail: String = text[start..]
                .chars()
                .take_while(|&c| is_path_char(c))
                .collect();
            let token = tail.trim_end_matches(['.', ',', ':', ')']);
            if token.len() > prefix.len() {
                out.push(token.to_string());
            }
        }
    }
    out
}

fn is_tracked(path: &str, files: &BTreeSet<String>) -> bool {
    // A glob names its directory: `testdata/x/*.hex` needs `testdata/x/` to hold files.
    let path = match path.find('*') {
        Some(i) => &path[..path[..i].rfind('/').map_or(0, |j| j + 1)],
        None => path,
    };
    let dir = format!("{}/", path.trim_end_matches('/'));
    files.contains(path)
        || files
            .range(dir.clone()..)
            .next()
            .is_some_and(|f| f.starts_with(&dir))
}

#[test]
fn no_tracked_file_points_outside_the_repository() {
    let Some(files) = tracked_or_skip() else {
        return;
    };
    // Spelled in pieces so this file does not match itself.
    let forbidden = [concat!("..", "/shared"), concat!("/wo", "rk/")];
    let mut bad = Vec::new();
    for (name, text) in text_files(&files) {
        if name == "Cargo.lock" {
            continue;
        }
        for (n, line) in text.lines().enumerate() {
            if forbidden.iter().any(|f| line.contains(f)) {
                bad.push(format!("{name}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "tracked lines point outside the repository:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_named_docs_and_testdata_path_is_tracked() {
    let Some(files) = tracked_or_skip() else {
        return;
    };
    let mut missing = Vec::new();
    let mut checked = 0;
    for (name, text) in text_files(&files) {
        // Recorded data may quote paths of the machine it was recorded on.
        if name.starts_with("testdata/") && !name.ends_with("README.md") {
            continue;
        }
        // This crate names made-up paths in its own tests.
        if name.starts_with("crates/testdata/") {
            continue;
        }
        for p in repo_paths(&text) {
            checked += 1;
            if !is_tracked(&p, &files) {
                missing.push(format!("{name}: {p}"));
            }
        }
    }
    assert!(
        checked > 20,
        "only {checked} docs/testdata paths found: the scan is broken"
    );
    assert!(
        missing.is_empty(),
        "named but not in the repository:\n{}",
        missing.join("\n")
    );
}

#[test]
fn test_data_directories_are_tracked() {
    let Some(files) = tracked_or_skip() else {
        return;
    };
    for dir in [
        serf_testdata::MEMBERLIST_VECTORS,
        serf_testdata::SERF_VECTORS,
    ] {
        let p = format!("testdata/{dir}");
        assert!(is_tracked(&p, &files), "{p} holds no tracked file");
    }
    for f in [
        "cli_vectors.json",
        "agent_vectors.json",
        "rpc_vectors.json",
        "gossip_vectors.json",
    ] {
        let p = format!("testdata/{}/{f}", serf_testdata::SERF_VECTORS);
        assert!(files.contains(&p), "{p} is not tracked");
    }
}

#[test]
fn path_scanner_finds_paths() {
    let got = repo_paths(
        "see `docs/agent-rpc.md` §4, (testdata/serf/vectors/x.json). and crates/a/docs/no",
    );
    assert_eq!(got, ["docs/agent-rpc.md", "testdata/serf/vectors/x.json"]);
}
