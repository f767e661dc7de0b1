//! libFuzzer entry point; the input format and the checks are in
//! `fuzz/harness/defrag.rs`, shared with the time-bounded smoke run of
//! `tests/fuzz_smoke.rs`.
#![no_main]

#[path = "../harness/defrag.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
