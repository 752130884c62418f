//! Fuzz target `handler_output`: handler output ring (query response payload) and -event-handler specs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::handler_output(data));
