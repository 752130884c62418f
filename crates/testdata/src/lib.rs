//! The repository's recorded test data, found from any test in the workspace.
//!
//! Everything a test reads lives under `testdata/` at the repository root (captures and
//! vectors recorded from Debian's Go `serf`; see `testdata/README.md`). Tests name a file by
//! its path below `testdata/`; this crate turns that into an absolute path and reads it,
//! and a missing or unreadable file fails the test with a message naming the full path.
//! Paths that would leave `testdata/` (absolute, or with `..`) are refused, so every file a
//! test opens through here lies inside the repository
//! (`tests/self_contained.rs` checks the rest).

#![forbid(unsafe_code)]

use std::path::{Component, Path, PathBuf};

/// The repository root (the workspace directory holding `Cargo.lock`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match manifest.parent().and_then(Path::parent) {
        Some(root) => root.to_path_buf(),
        None => manifest.to_path_buf(),
    }
}

/// The absolute path of `rel`, a path below `testdata/`.
///
/// # Panics
///
/// If `rel` is absolute or contains `..`: test data must stay inside the repository.
pub fn path(rel: &str) -> PathBuf {
    let ok = Path::new(rel)
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    assert!(
        ok && !rel.is_empty(),
        "test data path {rel:?} must be relative and stay inside testdata/"
    );
    repo_root().join("testdata").join(rel)
}

/// The bytes of `testdata/<rel>`.
///
/// # Panics
///
/// If the file cannot be read; the message names the full path and the error.
pub fn read(rel: &str) -> Vec<u8> {
    let p = path(rel);
    match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) => panic!("cannot read test data file {}: {e}", p.display()),
    }
}

/// The text of `testdata/<rel>`.
///
/// # Panics
///
/// If the file cannot be read or is not UTF-8; the message names the full path.
pub fn read_string(rel: &str) -> String {
    let p = path(rel);
    match std::fs::read_to_string(&p) {
        Ok(s) => s,
        Err(e) => panic!("cannot read test data file {}: {e}", p.display()),
    }
}

/// The files directly in the directory `testdata/<rel>` whose name ends with `suffix`,
/// sorted by name.
///
/// # Panics
///
/// If the directory cannot be read or holds no such file; the message names the path.
pub fn files(rel: &str, suffix: &str) -> Vec<PathBuf> {
    let dir = path(rel);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => panic!("cannot read test data directory {}: {e}", dir.display()),
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    assert!(
        !out.is_empty(),
        "no *{suffix} files in test data directory {}",
        dir.display()
    );
    out
}

/// Every file below `dir` (any depth), sorted: seed corpora and other trees of inputs
/// that live outside `testdata/` (`fuzz/seeds`, `crates/wire/fuzz/seeds`).
///
/// # Panics
///
/// If a directory cannot be read; the message names it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => panic!("cannot read directory {}: {e}", dir.display()),
        };
        for p in entries.flatten().map(|e| e.path()) {
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// The captured memberlist vectors directory, below `testdata/`.
pub const MEMBERLIST_VECTORS: &str = "memberlist/captures/vectors";

/// The Serf vectors directory (RPC, CLI, agent and gossip recordings), below `testdata/`.
pub const SERF_VECTORS: &str = "serf/vectors";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_testdata() {
        assert!(path("serf/vectors/cli_vectors.json").starts_with(repo_root().join("testdata")));
        for bad in ["/etc/passwd", "../Cargo.toml", "serf/../../x", ""] {
            assert!(std::panic::catch_unwind(|| path(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_file_names_its_path() {
        let err = std::panic::catch_unwind(|| read("no/such/file.json")).err();
        let msg = err
            .and_then(|e| e.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("testdata/no/such/file.json"), "{msg}");
    }
}
