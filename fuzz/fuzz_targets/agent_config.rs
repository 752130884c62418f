//! Fuzz target `agent_config`: agent JSON config text (-config-file) and Go durations.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::agent_config(data));
