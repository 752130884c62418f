//! Replays the seed corpus of the fuzz targets in `fuzz/` (repository root): every file of
//! `fuzz/seeds/<target>/`, including the inputs of crashes found and fixed, through the
//! harness function the cargo-fuzz target calls (`fuzz/src/lib.rs`, included below).
// Test code: a failed `expect` is a failed test.
#![allow(clippy::expect_used)]

// The harness is the fuzz crate's public API; here it is a private module.
#[allow(unreachable_pub, dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use serf_testdata::files_under;
use std::path::PathBuf;

/// A fuzz harness: any bytes in, panics only on a bug.
type Harness = fn(&[u8]);

/// The fuzz targets, by seed directory name (the same names as the cargo-fuzz targets).
const TARGETS: [(&str, Harness); 14] = [
    ("rpc_request", harness::rpc_request),
    ("rpc_skim", harness::rpc_skim),
    ("regex", harness::regex),
    ("agent_config", harness::agent_config),
    ("config_dir", harness::config_dir),
    ("agent_flags", harness::agent_flags),
    ("key_tag_files", harness::key_tag_files),
    ("snapshot", harness::snapshot),
    ("handler_output", harness::handler_output),
    ("journal", harness::journal),
    ("mdns", harness::mdns),
    ("serfnode_config", harness::serfnode_config),
    ("serfnode_fifo", harness::serfnode_fifo),
    ("serfnode_tags", harness::serfnode_tags),
];

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

#[test]
fn seed_corpus_replays_without_panic() {
    let root = fuzz_dir().join("seeds");
    let mut seen = 0;
    for (t, f) in TARGETS {
        let files = files_under(&root.join(t));
        assert!(!files.is_empty(), "no seeds for target {t}");
        for path in files {
            let data = std::fs::read(&path).expect("read seed");
            // Named, so a panic says which seed.
            let r = std::panic::catch_unwind(|| f(&data));
            assert!(r.is_ok(), "seed {} panicked", path.display());
            seen += 1;
        }
    }
    // Every seed directory is a target.
    let all = files_under(&root);
    assert_eq!(all.len(), seen, "seeds outside the targets' directories");
}

#[test]
fn every_target_is_listed() {
    // The cargo-fuzz manifest and this list name the same targets.
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("manifest");
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "serf-fuzz")
        .collect();
    let listed: Vec<&str> = TARGETS.iter().map(|(t, _)| *t).collect();
    assert_eq!(bins, listed);
    for t in listed {
        assert!(fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{t}.rs"))
            .is_file());
    }
}
