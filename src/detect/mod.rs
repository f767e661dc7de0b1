//! Detection: the MCP JSON-RPC classifier, the DNS name cache, and the
//! host classification against signatures and the allowlist.

pub mod discovery;
pub mod dns_cache;
pub mod host_misses;
pub mod hosts;
pub mod jsonrpc;
pub mod mcp;
