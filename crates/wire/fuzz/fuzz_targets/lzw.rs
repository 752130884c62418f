//! Fuzz target `lzw`: lzw::decompress with a 1 MiB cap, and compress/decompress roundtrip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_wire_fuzz::lzw(data));
