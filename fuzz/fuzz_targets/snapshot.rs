//! Fuzz target `snapshot`: snapshot::replay_bytes, and replay of its compacted form.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::snapshot(data));
