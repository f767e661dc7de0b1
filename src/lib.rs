//! shadowmcp: a passive network sensor that finds shadow MCP — clients talking
//! to remote Model Context Protocol servers that security has not approved.
//!
//! Pipeline: capture → decode → flow → reassembly → protocol parsers →
//! detection (MCP classifier, signatures, allowlist) → findings.

pub mod analyze;
pub mod capture;
pub mod config;
pub mod decode;
pub mod defrag;
pub mod detect;
pub mod engine;
pub mod findings;
pub mod flow;
pub mod metrics;
pub mod pipeline;
pub mod prefetch;
pub mod privileges;
pub mod proto;
pub mod redact;
pub mod sensor;
pub mod signatures;
pub mod sinks;
pub mod stats;
pub mod tls_decrypt;
