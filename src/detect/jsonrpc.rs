//! JSON-RPC 2.0 (jsonrpc.org/specification) framing for untrusted payloads:
//! a cheap aho-corasick prefilter, then a real `serde_json` parse of single
//! messages and batches, so escapes and whitespace cannot hide a method.
//!
//! STUB: the public API below is the contract; the implementation is pending.
