//! Fuzz target `rpc_skim`: skim::skim_chunks (oversized RPC requests), whole and chunked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::rpc_skim(data));
