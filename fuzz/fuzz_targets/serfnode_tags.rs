//! Fuzz target `serfnode_tags`: serfnode tags::PortMap::decode and hosts::rewrite.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::serfnode_tags(data));
