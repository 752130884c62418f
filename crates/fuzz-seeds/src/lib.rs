//! Test-only crate: `tests/replay.rs` includes the fuzz harnesses of `fuzz/src/lib.rs` (the
//! cargo-fuzz project at the repository root, outside this workspace) and replays every
//! seed of `fuzz/seeds/<target>/`, including the inputs of crashes found and fixed, so they
//! stay fixed. The library itself is empty.
#![forbid(unsafe_code)]
