//! Application-protocol parsers. Pure functions and small state machines over
//! `&[u8]`: no I/O, no flow bookkeeping, no knowledge of MCP signatures.
//! Every parser bounds what it stores and never panics on input.

pub mod dns;
pub mod host;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod ja4;
pub mod quic;
pub mod sse;
pub mod tls;
pub mod websocket;

/// Heap bytes charged for one live decompressor (a gzip or deflate inflate
/// window and its state) in the engine's memory budget: an estimate, since
/// the library does not report its allocations.
pub const DECODER_BYTES: usize = 64 * 1024;
