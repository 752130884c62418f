//! Fuzz target `serfnode_fifo`: serfnode FIFO lines: fifo::parse_line and EventDecoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::serfnode_fifo(data));
