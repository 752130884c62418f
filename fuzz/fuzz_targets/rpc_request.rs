//! Fuzz target `rpc_request`: RPC requests: ObjectReader, RequestHeader::decode_after, Request::decode, re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::rpc_request(data));
