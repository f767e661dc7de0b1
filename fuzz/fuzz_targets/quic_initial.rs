//! libFuzzer entry point; the input format and the checks are in
//! `fuzz/harness/quic_initial.rs`, shared with the time-bounded smoke run of
//! `tests/fuzz_smoke.rs`.
#![no_main]

#[path = "../harness/quic_initial.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
