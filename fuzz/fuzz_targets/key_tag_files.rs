//! Fuzz target `key_tag_files`: keyring file and tags file texts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| serf_fuzz::key_tag_files(data));
