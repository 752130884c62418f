//! Fuzz target `serfnode_config`: serfnode Config::from_sources (YAML text and environment).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::serfnode_config(data));
