//! Fuzz target `packet`: packet::decode_packet, plain, with the fixed keyring (optional/required) and with a label.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_wire_fuzz::packet(data));
