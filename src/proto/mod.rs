//! Application-protocol parsers. Pure functions and small state machines over
//! `&[u8]`: no I/O, no flow bookkeeping, no knowledge of MCP signatures.
//! Every parser bounds what it stores and never panics on input.

pub mod dns;
pub mod hpack;
pub mod http1;
pub mod http2;
pub mod ja4;
pub mod quic;
pub mod sse;
pub mod tls;
pub mod websocket;

/// Heap bytes charged for one live decompressor (inflate window and state,
/// or a brotli/zstd decoder's buffers) in the engine's memory budget: an
/// estimate, since the libraries do not report their allocations.
pub const DECODER_BYTES: usize = 64 * 1024;
