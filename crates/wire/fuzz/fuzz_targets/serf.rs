//! Fuzz target `serf`: serf::SerfMessage::decode, PushPullState::decode, decode_tags, Coordinate::decode_payload.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_wire_fuzz::serf(data));
