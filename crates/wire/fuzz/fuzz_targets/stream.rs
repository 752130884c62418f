//! Fuzz target `stream`: stream::decode_stream, plain and with the fixed keyring (optional/required).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_wire_fuzz::stream(data));
