//! Fuzz target `regex`: gocompat::regex::compile and translate (Go RE2 filters, 256 KiB program limit).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::regex(data));
