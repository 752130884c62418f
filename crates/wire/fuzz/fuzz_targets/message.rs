//! Fuzz target `message`: messages::Message::decode.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_wire_fuzz::message(data));
