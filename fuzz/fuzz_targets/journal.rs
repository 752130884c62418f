//! Fuzz target `journal`: handler journal parser, and re-written journal lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::journal(data));
