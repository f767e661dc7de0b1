//! libFuzzer entry point; the input format and the checks are in
//! `fuzz/harness/http2.rs`, shared with the time-bounded smoke run of
//! `tests/fuzz_smoke.rs`.
#![no_main]

#[path = "../harness/http2.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
