//! Fuzz target `config_dir`: up to four agent JSON config texts merged as -config-dir merges them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::config_dir(data));
