//! Fuzz target `agent_flags`: serf agent argument vectors (NUL-separated): Go flag syntax, config from flags.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::agent_flags(data));
