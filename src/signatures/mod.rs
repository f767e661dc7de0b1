//! Signature sets: known MCP servers and platforms, hostname heuristics, and
//! the JSON-RPC / HTTP vocabulary of MCP. Loaded from TOML files (documented in
//! `signatures/README.md`); the default set is compiled into the binary.
//!
//! STUB: the public API below is the contract; the implementation is pending.

use std::fmt;
use std::path::Path;

pub mod allowlist;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// One vendor's MCP server.
    Server,
    /// A gateway or hosting platform that fronts many servers.
    Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownServer {
    /// Host as written: exact (`mcp.notion.com`), suffix (`*.mcp.cloudflare.com`),
    /// or with one-label placeholders (`bedrock-agentcore.{region}.amazonaws.com`).
    pub host: String,
    pub vendor: String,
    pub kind: ServerKind,
    /// Published endpoint paths (`/mcp`, `/sse`, ...); empty = any.
    pub paths: Vec<String>,
    /// The host also serves ordinary web/API traffic: a name match alone is not
    /// proof of MCP use.
    pub shared_host: bool,
    /// Match only as context (vendor attribution) when MCP is proven by other
    /// evidence; never report on the name alone (generic hosting suffixes).
    pub context_only: bool,
    pub source: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMatch<'a> {
    pub server: &'a KnownServer,
    /// Exact host entry (as opposed to a pattern).
    pub exact: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostnameHeuristics {
    /// Tokens that mark an MCP host when they are a whole DNS label or a
    /// dash-separated part of one (`mcp`).
    pub tokens: Vec<String>,
    /// Names (exact or `*.suffix`) never reported by the heuristic.
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonRpcSignatures {
    /// Methods (requests and notifications) that exist only in MCP.
    pub mcp_methods: Vec<String>,
    /// Methods MCP shares with other JSON-RPC protocols (`initialize`, `ping`,
    /// `tasks/get`, ...): never evidence on their own.
    pub shared_methods: Vec<String>,
    /// Method prefixes of other protocols: (prefix, protocol name), e.g.
    /// (`eth_`, `Ethereum JSON-RPC`), (`textDocument/`, `LSP`).
    pub foreign_method_prefixes: Vec<(String, String)>,
    /// `io.modelcontextprotocol/`: the `_meta` key namespace of 2026-07-28.
    pub meta_key_prefix: String,
    /// Published protocol revisions, e.g. `2024-11-05` … `2026-07-28`.
    pub protocol_versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpSignatures {
    /// `MCP-Protocol-Version`.
    pub protocol_version_header: String,
    /// `Mcp-Session-Id`.
    pub session_header: String,
    /// `Mcp-Method`, `Mcp-Name` (2026-07-28, required on every POST).
    pub method_headers: Vec<String>,
    /// WebSocket subprotocols used by MCP SDKs (`mcp`).
    pub websocket_subprotocols: Vec<String>,
    /// OAuth discovery paths (`/.well-known/oauth-protected-resource`, ...).
    pub oauth_discovery_paths: Vec<String>,
}

/// A problem in a signature file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SignatureSet {
    /// Set version (from the set's manifest) for logs and metrics.
    pub version: String,
    pub servers: Vec<KnownServer>,
    pub heuristics: HostnameHeuristics,
    pub jsonrpc: JsonRpcSignatures,
    pub http: HttpSignatures,
    /// Public names of ECH fronts (`cloudflare-ech.com`).
    pub ech_public_names: Vec<String>,
}

impl SignatureSet {
    /// The set compiled into the binary (`signatures/` at build time).
    pub fn builtin() -> Result<SignatureSet, Vec<SignatureError>> {
        Ok(SignatureSet::default())
    }

    /// Load every file of a signature directory; all errors are reported.
    pub fn load_dir(_dir: &Path) -> Result<SignatureSet, Vec<SignatureError>> {
        Ok(SignatureSet::default())
    }

    /// Known server or platform for a host name (case-insensitive, trailing dot ignored).
    pub fn match_host(&self, _host: &str) -> Option<HostMatch<'_>> {
        None
    }

    /// The label-aware `mcp` heuristic.
    pub fn heuristic_match(&self, _host: &str) -> bool {
        false
    }

    /// Whether `path` (without query) is one of the server's published endpoints.
    pub fn path_matches(server: &KnownServer, path: &str) -> bool {
        server.paths.is_empty() || server.paths.iter().any(|p| p == path)
    }

    /// Whether `name` is a known ECH public name.
    pub fn is_ech_public_name(&self, name: &str) -> bool {
        self.ech_public_names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}
