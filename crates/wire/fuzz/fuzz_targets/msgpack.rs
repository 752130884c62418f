//! Fuzz target `msgpack`: msgpack::Reader::skip over a value sequence, and every typed read.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_wire_fuzz::msgpack(data));
