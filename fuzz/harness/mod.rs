//! Fuzz harnesses: one `run(data)` per target. Each is compiled twice: into
//! its libFuzzer binary (`fuzz/fuzz_targets/<name>.rs`, coverage-guided, with
//! AddressSanitizer) and into `tests/fuzz_smoke.rs`, which replays the seed
//! corpus and random mutations of it for a bounded time in every test run.

pub mod allowlist;
pub mod config;
pub mod decode;
pub mod defrag;
pub mod dns;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod jsonrpc_mcp;
pub mod pcap_file;
pub mod pipeline;
pub mod quic_initial;
pub mod registry_pages;
pub mod signatures_load;
pub mod sse;
pub mod tls_decrypt;
pub mod tls_keylog;
pub mod tls_message;
pub mod tls_records;
pub mod websocket;
