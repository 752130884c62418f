//! Fuzz target `mdns`: mDNS/DNS codec, responder and querier bookkeeping.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::mdns(data));
