//! What the sensor reports: evidence items, per-flow observations produced by
//! the engine, and findings aggregated per (client, server).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

pub mod aggregate;
pub mod encode;
pub mod live;
pub mod observer;
pub mod output;
mod tls_info;

pub use observer::Observer;
pub use tls_info::TlsInfo;

/// Packet time in microseconds since the Unix epoch.
pub type Micros = i64;

/// Kinds of evidence. Serialized in kebab-case (`http-jsonrpc`, `tls-sni`, ...);
/// the names are part of the findings format (docs/findings.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Signal {
    /// A JSON-RPC message in an HTTP body that is MCP by structure.
    HttpJsonrpc,
    /// MCP-specific HTTP headers (Mcp-Method, MCP-Protocol-Version, Mcp-Session-Id).
    HttpHeader,
    /// The request path is a published MCP endpoint of a known server.
    HttpPath,
    /// Legacy HTTP+SSE transport: an `event: endpoint` SSE event.
    SseEndpoint,
    /// A JSON-RPC message in an SSE `data:` field.
    SseJsonrpc,
    /// WebSocket upgrade with subprotocol `mcp`.
    WebsocketSubprotocol,
    /// A JSON-RPC message in a WebSocket text message.
    WebsocketJsonrpc,
    /// OAuth protected-resource discovery towards an MCP server (supporting only).
    OauthDiscovery,
    TlsSni,
    QuicSni,
    /// The ClientHello offers Encrypted Client Hello.
    Ech,
    DnsQuery,
    /// The server address was learned from a DNS answer for the name.
    DnsAnswerIp,
    /// The name has `mcp` as a DNS label or a dash-separated part of one.
    HostnameHeuristic,
    /// The name is on the known-server list.
    KnownServer,
    /// What the observation shows was read inside TLS, decrypted with keys
    /// from a key log (TLS version and cipher suite).
    TlsDecrypted,
    /// MCP discovery: a server card, catalog or registry request or its
    /// answer, or an Agent Identity & Discovery (`_agent` TXT) record naming
    /// an MCP endpoint (supporting only: interest in MCP, not a session).
    McpDiscovery,
    /// The host was named by an MCP discovery answer seen earlier (detail:
    /// where).
    DiscoveredHost,
}

impl Signal {
    /// Evidence that proves MCP by protocol structure (not by name).
    pub fn is_protocol_proof(self) -> bool {
        matches!(
            self,
            Signal::HttpJsonrpc
                | Signal::HttpHeader
                | Signal::SseEndpoint
                | Signal::SseJsonrpc
                | Signal::WebsocketSubprotocol
                | Signal::WebsocketJsonrpc
        )
    }
}

/// How the client reached the server; ordered from weakest to strongest view.
/// The legacy SSE transport ranks above Streamable HTTP because its POSTs look
/// like Streamable HTTP: once the `endpoint` stream is seen, the whole
/// conversation is the legacy transport. `Http2` is Streamable HTTP carried
/// by HTTP/2 (the legacy transport over HTTP/2 is still `Sse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Transport {
    Dns,
    Tls,
    Quic,
    StreamableHttp,
    Http2,
    Sse,
    Websocket,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Evidence {
    pub signal: Signal,
    pub detail: String,
}

impl Evidence {
    pub fn new(signal: Signal, detail: impl Into<String>) -> Self {
        Self {
            signal,
            detail: detail.into(),
        }
    }
}

/// What a cleartext session revealed about MCP use. Sets are bounded by the
/// collector (see `detect::mcp::MAX_INVENTORY_ITEMS`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct McpInventory {
    pub protocol_version: Option<String>,
    /// `name version` of the client implementation.
    pub client: Option<String>,
    /// `name version` of the server implementation.
    pub server: Option<String>,
    pub methods: BTreeSet<String>,
    pub tools_listed: BTreeSet<String>,
    pub tools_called: BTreeSet<String>,
    /// Remote endpoint URLs named by discovery answers (redacted).
    pub remotes: BTreeSet<String>,
}

impl McpInventory {
    /// Nothing revealed (equal to `default()`, usable in a `static`).
    pub const EMPTY: McpInventory = McpInventory {
        protocol_version: None,
        client: None,
        server: None,
        methods: BTreeSet::new(),
        tools_listed: BTreeSet::new(),
        tools_called: BTreeSet::new(),
        remotes: BTreeSet::new(),
    };

    pub fn is_empty(&self) -> bool {
        *self == Self::EMPTY
    }

    /// Merge another snapshot into this one (later values win for scalars).
    pub fn merge(&mut self, other: &McpInventory, cap: usize) {
        if other.protocol_version.is_some() {
            self.protocol_version.clone_from(&other.protocol_version);
        }
        if other.client.is_some() {
            self.client.clone_from(&other.client);
        }
        if other.server.is_some() {
            self.server.clone_from(&other.server);
        }
        self.merge_sets(other, cap);
    }

    /// Add the other snapshot's methods, tools and remotes, up to `cap` each.
    pub fn merge_sets(&mut self, other: &McpInventory, cap: usize) {
        for (dst, src) in [
            (&mut self.methods, &other.methods),
            (&mut self.tools_listed, &other.tools_listed),
            (&mut self.tools_called, &other.tools_called),
            (&mut self.remotes, &other.remotes),
        ] {
            for item in src {
                if dst.len() >= cap {
                    break;
                }
                dst.insert(item.clone());
            }
        }
    }
}

/// One piece of flow-level evidence from the engine, before aggregation.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub ts: Micros,
    /// Engine-assigned flow number, used to count distinct flows per finding.
    pub flow_id: u64,
    pub client_ip: IpAddr,
    pub client_port: Option<u16>,
    pub server_ip: Option<IpAddr>,
    pub server_port: Option<u16>,
    /// Lower-case host name (no port), or `None` when only an address is known.
    pub server_name: Option<String>,
    /// Request path (already redacted) when cleartext HTTP showed one.
    pub path: Option<String>,
    pub transport: Transport,
    pub community_id: Option<String>,
    pub evidence: Vec<Evidence>,
    /// Set for cleartext sessions whose MCP use is proven by structure.
    pub mcp: Option<McpInventory>,
    /// Set where the observation comes from a TLS or QUIC ClientHello.
    pub tls: Option<TlsInfo>,
    /// Set on a request that does not prove MCP on its own (a POST carrying
    /// only MCP method names, as the legacy HTTP+SSE transport's POSTs do,
    /// each possibly on its own connection): the redacted target it was sent
    /// to. It joins the finding of the same (client, server) whose event
    /// stream announced that endpoint and makes no finding by itself.
    pub joins_endpoint: Option<String>,
}
