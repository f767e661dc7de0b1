//! MCP classification of JSON-RPC messages and HTTP heads, for every published
//! protocol revision (legacy handshake 2024-11-05 … 2025-11-25, and 2026-07-28).
//!
//! A flow is *confirmed* as MCP by one strong proof, or by two weak signals of
//! different kinds. Strong proofs are shapes no other protocol produces:
//!
//! * an `initialize` request with a `YYYY-MM-DD` `protocolVersion`, a
//!   `capabilities` object and `clientInfo.name`, and none of LSP's
//!   `processId`/`rootUri`/`rootPath`/`workspaceFolders` (spec
//!   `schema/2025-11-25/schema.ts` `InitializeRequestParams`; LSP 3.17
//!   `InitializeParams`; ACP sends an integer `protocolVersion`);
//! * the matching result: date `protocolVersion` + `serverInfo` + `capabilities`;
//! * `_meta` keys in the `io.modelcontextprotocol/` namespace on a request or
//!   notification, or `io.modelcontextprotocol/serverInfo` in a result's
//!   `_meta` (2026-07-28, SEP-2575);
//! * a request head with both `Mcp-Method` and a valid `MCP-Protocol-Version`
//!   (2026-07-28 streamable-http: both are required on every POST);
//! * a `tools/list` result: `tools` is a non-empty array of objects that all
//!   have `name` and an `inputSchema` object.
//!
//! Weak signals (one kind each): an MCP-only method name; `Mcp-Session-Id`;
//! `MCP-Protocol-Version` alone; the legacy SSE `endpoint` event; the WebSocket
//! subprotocol `mcp`; a tool result (`CallToolResult`: `content` blocks with
//! `isError` or `structuredContent`), so a lone stateless `tools/call`
//! answered by its result is two kinds. The subprotocol is weak on purpose: it is a bare token any
//! application could pick, but together with an MCP method (a second kind) it
//! confirms, which is exactly "strong together with an MCP method later".
//! OAuth discovery (RFC 9728 `resource_metadata`, protected-resource GETs) is
//! recorded as supporting evidence only and never counts towards confirmation:
//! it is generic OAuth, not MCP.
//!
//! Negatives: a method with a foreign prefix (`eth_`, `textDocument/`,
//! `session/`, `message/`, ...) or an LSP/ACP-shaped `initialize` marks the
//! session `rejected_as` that protocol. A rejected session is still confirmed
//! by strong proof (a gateway may carry both), but weak signals no longer
//! confirm it. Shared methods (`initialize`, `ping`, `tasks/*`) are never
//! evidence on their own.
//!
//! Structure, not direction, decides: the `Direction` of a payload is not used
//! (mid-stream captures can mislabel it, and MCP servers send requests too).
//!
//! Nothing here records argument values: only method names, tool names,
//! implementation names/versions and protocol versions, each sanitised.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use rustc_hash::FxHashSet;
use serde_json::{Map, Value};

use super::jsonrpc::{self, Message, Prefilter};
use crate::findings::{Evidence, McpInventory, Signal};
use crate::proto::http1::Head;
use crate::proto::sse::SseEvent;
use crate::signatures::SignatureSet;

/// Bound on each inventory set (methods, tools) per session.
pub const MAX_INVENTORY_ITEMS: usize = 64;

/// Evidence items gathered per session (deduplicated). After the cap only the
/// inventory keeps changing.
pub const MAX_EVIDENCE: usize = 32;

/// Weak/supporting evidence may fill only this much of [`MAX_EVIDENCE`], so a
/// later strong proof (the item that explains the confirmation) always fits.
const MAX_WEAK_EVIDENCE: usize = 24;

/// Characters kept of any string taken from the wire (names, versions, ...).
pub const MAX_FIELD_CHARS: usize = 128;

/// Spec defaults, used when a signature set leaves a field empty (an empty
/// `_meta` prefix would otherwise match every key).
const DEFAULT_META_PREFIX: &str = "io.modelcontextprotocol/";
const DEFAULT_VERSION_HEADER: &str = "MCP-Protocol-Version";
const DEFAULT_SESSION_HEADER: &str = "Mcp-Session-Id";
const DEFAULT_METHOD_HEADER: &str = "Mcp-Method";
const DEFAULT_NAME_HEADER: &str = "Mcp-Name";
const DEFAULT_WS_SUBPROTOCOL: &str = "mcp";
const DEFAULT_OAUTH_PATH: &str = "/.well-known/oauth-protected-resource";

/// Longest SSE `endpoint` URI accepted (legacy HTTP+SSE, 2024-11-05
/// transports.mdx). Real ones are a path plus a 32–36 char session id.
const MAX_ENDPOINT_LEN: usize = 2048;

/// Distinct protocol names kept for `rejected_as` beyond the built-in ones
/// (names come from signature files; each is interned once, see [`intern`]).
const MAX_INTERNED_NAMES: usize = 32;

/// Weak signal kinds (bit flags); confirmation needs two different bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Weak {
    Method = 1,
    SessionHeader = 2,
    VersionHeader = 4,
    SseEndpoint = 8,
    WsSubprotocol = 16,
    /// A `tools/call` result (`CallToolResult`): a `content` array of typed
    /// blocks with `isError` or `structuredContent`.
    ToolResult = 32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strength {
    Strong,
    Weak(Weak),
    /// Recorded, never counted (OAuth discovery).
    Supporting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

/// What carried a payload; selects the evidence signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    HttpBody,
    SseData,
    WebSocket,
}

impl Carrier {
    fn signal(self) -> Signal {
        match self {
            Carrier::HttpBody => Signal::HttpJsonrpc,
            Carrier::SseData => Signal::SseJsonrpc,
            Carrier::WebSocket => Signal::WebsocketJsonrpc,
        }
    }
}

/// Per-flow classification state.
#[derive(Debug, Default)]
pub struct McpSession {
    /// Created on the first item: most cleartext HTTP connections never
    /// show one, and a connection's state is kept small.
    inventory: Option<Box<McpInventory>>,
    confirmed: bool,
    rejected_as: Option<&'static str>,
    pending: Vec<Evidence>,
    inventory_changed: bool,
    /// Every evidence item gathered so far (≤ [`MAX_EVIDENCE`]), for dedupe.
    seen: Vec<Evidence>,
    /// `Weak` bits seen.
    weak_kinds: u8,
}

impl McpSession {
    pub fn new() -> Self {
        Self::default()
    }

    /// What the session revealed so far.
    pub fn inventory(&self) -> &McpInventory {
        static EMPTY: McpInventory = McpInventory::EMPTY;
        self.inventory.as_deref().unwrap_or(&EMPTY)
    }

    /// Nothing seen yet: no evidence, no inventory, no verdict. A pristine
    /// session is what [`McpSession::new`] makes, so a caller may drop it
    /// and start a new one later.
    pub fn is_pristine(&self) -> bool {
        self.inventory.is_none()
            && !self.confirmed
            && self.rejected_as.is_none()
            && self.pending.is_empty()
            && !self.inventory_changed
            && self.seen.is_empty()
            && self.weak_kinds == 0
    }

    /// MCP is proven for this flow.
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// The flow was recognised as another JSON-RPC protocol (`LSP`, `ACP`, ...).
    pub fn rejected_as(&self) -> Option<&'static str> {
        self.rejected_as
    }

    /// Evidence gathered since the last call. Before confirmation nothing is
    /// returned; the call after confirmation returns everything gathered so far.
    pub fn take_new_evidence(&mut self) -> Vec<Evidence> {
        if self.confirmed {
            std::mem::take(&mut self.pending)
        } else {
            Vec::new()
        }
    }

    /// An MCP method name was seen and no other protocol was recognised:
    /// what a request of the legacy HTTP+SSE transport shows on its own.
    pub fn has_mcp_method(&self) -> bool {
        self.weak_kinds & Weak::Method as u8 != 0 && self.rejected_as.is_none()
    }

    /// Every evidence item gathered so far, confirmed or not.
    pub fn gathered_evidence(&self) -> &[Evidence] {
        &self.seen
    }

    /// Whether the inventory changed since the last call.
    pub fn take_inventory_changed(&mut self) -> bool {
        std::mem::take(&mut self.inventory_changed)
    }

    fn signal(&mut self, strength: Strength, signal: Signal, detail: String) {
        match strength {
            Strength::Strong => self.confirmed = true,
            Strength::Weak(kind) => {
                self.weak_kinds |= kind as u8;
                if self.rejected_as.is_none() && self.weak_kinds.count_ones() >= 2 {
                    self.confirmed = true;
                }
            }
            Strength::Supporting => {}
        }
        let ev = Evidence::new(signal, detail);
        let limit = if strength == Strength::Strong {
            MAX_EVIDENCE
        } else {
            MAX_WEAK_EVIDENCE
        };
        if self.seen.len() < limit && !self.seen.contains(&ev) {
            self.seen.push(ev.clone());
            self.pending.push(ev);
        }
    }

    fn reject(&mut self, protocol: &'static str) {
        if self.rejected_as.is_none() {
            self.rejected_as = Some(protocol);
        }
    }

    fn set_protocol_version(&mut self, v: &str) {
        let inv = self.inventory.get_or_insert_default();
        set_scalar(&mut inv.protocol_version, v, &mut self.inventory_changed);
    }

    fn set_client(&mut self, info: &Map<String, Value>) {
        if let Some(s) = implementation(info) {
            let inv = self.inventory.get_or_insert_default();
            set_scalar(&mut inv.client, &s, &mut self.inventory_changed);
        }
    }

    fn set_server(&mut self, info: &Map<String, Value>) {
        if let Some(s) = implementation(info) {
            let inv = self.inventory.get_or_insert_default();
            set_scalar(&mut inv.server, &s, &mut self.inventory_changed);
        }
    }

    fn add_method(&mut self, m: &str) {
        let inv = self.inventory.get_or_insert_default();
        add_item(&mut inv.methods, m, &mut self.inventory_changed);
    }

    fn add_tool_called(&mut self, t: &str) {
        let inv = self.inventory.get_or_insert_default();
        add_item(&mut inv.tools_called, t, &mut self.inventory_changed);
    }

    fn add_tool_listed(&mut self, t: &str) {
        let inv = self.inventory.get_or_insert_default();
        add_item(&mut inv.tools_listed, t, &mut self.inventory_changed);
    }
}

fn set_scalar(slot: &mut Option<String>, raw: &str, changed: &mut bool) {
    let Some(v) = sanitize(raw) else { return };
    if slot.as_deref() != Some(v.as_str()) {
        *slot = Some(v);
        *changed = true;
    }
}

fn add_item(set: &mut BTreeSet<String>, raw: &str, changed: &mut bool) {
    let Some(v) = sanitize(raw) else { return };
    if set.len() < MAX_INVENTORY_ITEMS && !set.contains(&v) {
        set.insert(v);
        *changed = true;
    }
}

/// Drop control characters, trim, keep at most [`MAX_FIELD_CHARS`] chars.
/// `None` when nothing printable is left.
pub fn sanitize(raw: &str) -> Option<String> {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_FIELD_CHARS)
        .collect();
    let t = s.trim();
    if t.is_empty() {
        None
    } else {
        Some(t.to_owned())
    }
}

/// `name version` of an MCP `Implementation` object (version optional: some
/// servers send `""`, e.g. python-sdk's default server version).
fn implementation(info: &Map<String, Value>) -> Option<String> {
    let name = sanitize(info.get("name")?.as_str()?)?;
    match info
        .get("version")
        .and_then(Value::as_str)
        .and_then(sanitize)
    {
        Some(v) => Some(format!("{name} {v}")),
        None => Some(name),
    }
}

/// `name` and `version` for an evidence detail: `"cursor" 1.2`.
fn implementation_detail(info: Option<&Map<String, Value>>) -> String {
    let Some(info) = info else {
        return String::new();
    };
    let name = info
        .get("name")
        .and_then(Value::as_str)
        .and_then(sanitize)
        .unwrap_or_default();
    match info
        .get("version")
        .and_then(Value::as_str)
        .and_then(sanitize)
    {
        Some(v) => format!("\"{name}\" {v}"),
        None => format!("\"{name}\""),
    }
}

/// `YYYY-MM-DD`, the shape of every published MCP revision string.
pub fn is_date_version(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| {
        b.get(r).map(|d| {
            d.iter()
                .fold(0u32, |acc, x| acc * 10 + u32::from(x.saturating_sub(b'0')))
        })
    };
    b.len() == 10
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && num(5..7).is_some_and(|m| (1..=12).contains(&m))
        && num(8..10).is_some_and(|d| (1..=31).contains(&d))
}

/// `&'static str` for a protocol name from a signature file. Well-known names
/// are static; others are leaked once each (at most [`MAX_INTERNED_NAMES`],
/// so the leak is bounded by the set of names ever configured).
fn intern(name: &str) -> &'static str {
    const KNOWN: &[&str] = &["LSP", "ACP", "A2A", "Ethereum JSON-RPC"];
    const OTHER: &str = "other JSON-RPC";
    if let Some(k) = KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)) {
        return k;
    }
    static POOL: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let Ok(mut pool) = POOL.get_or_init(|| Mutex::new(Vec::new())).lock() else {
        return OTHER;
    };
    if let Some(p) = pool.iter().find(|p| **p == name) {
        return p;
    }
    match sanitize(name) {
        Some(s) if pool.len() < MAX_INTERNED_NAMES && s == name => {
            let leaked: &'static str = Box::leak(s.into_boxed_str());
            pool.push(leaked);
            leaked
        }
        _ => OTHER,
    }
}

/// Headers by name (case-insensitive), all occurrences.
fn header_values<'a>(head: &'a Head, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    head.header_values(name)
}

/// A DPoP-bound token (RFC 9449: `Authorization: DPoP <token>` with a `DPoP`
/// proof header), recorded as supporting evidence: it is reported only with
/// the MCP proof of the same conversation. The token is never recorded.
fn dpop(head: &Head, session: &mut McpSession) {
    let scheme = head
        .header("authorization")
        .and_then(|v| v.split_whitespace().next())
        .is_some_and(|s| s.eq_ignore_ascii_case("dpop"));
    if scheme {
        let proof = if head.header("dpop").is_some() {
            " with a DPoP proof"
        } else {
            ""
        };
        session.signal(
            Strength::Supporting,
            Signal::HttpHeader,
            format!("Authorization: DPoP <redacted>{proof} (sender-constrained token)"),
        );
    }
}

/// A header value that names a method: non-empty, no whitespace or controls.
fn token_like(v: &str) -> bool {
    !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80)
}

/// Decode the 2026-07-28 encoding of non-ASCII header values (`=?base64?…?=`,
/// SEP-2243); other values are returned as sent.
fn decode_header_value(v: &str) -> String {
    if let Some(inner) = v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
        && inner.len() <= 4 * MAX_FIELD_CHARS
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT.decode(inner)
        && let Ok(s) = String::from_utf8(bytes)
    {
        return s;
    }
    v.to_owned()
}

/// Validate the `data` of an SSE `endpoint` event as a URI reference and
/// return it redacted like every request target (`crate::redact`: query
/// values and key-like path segments, where session ids and platform keys
/// travel) with the fragment dropped.
fn redacted_endpoint(data: &str) -> Option<String> {
    let d = data.trim();
    let uri_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b);
    if d.is_empty() || d.len() > MAX_ENDPOINT_LEN || !d.bytes().all(uri_char) {
        return None;
    }
    let lower = d.get(..8).unwrap_or(d).to_ascii_lowercase();
    let looks_like_endpoint = d.starts_with('/')
        || lower.starts_with("http://")
        || lower.starts_with("https://")
        || d.contains('?');
    if !looks_like_endpoint {
        return None;
    }
    let d = d.split('#').next().unwrap_or_default();
    // An absolute URL keeps its scheme and authority; the path and query go
    // through the same redaction as every other request target.
    let (origin, target) = match d.find("://") {
        Some(i) => {
            let after = i.saturating_add(3);
            match d.get(after..).and_then(|rest| rest.find('/')) {
                Some(j) => d
                    .split_at_checked(after.saturating_add(j))
                    .unwrap_or((d, "")),
                None => (d, ""),
            }
        }
        None => ("", d),
    };
    let out = format!("{origin}{}", crate::redact::redact_target(target));
    sanitize(&out)
}

/// Content block types of MCP (schema.ts `ContentBlock`).
const CONTENT_TYPES: &[&str] = &["text", "image", "audio", "resource", "resource_link"];

/// A `CallToolResult`: `content` is an array of blocks, each an object with
/// an MCP content `type`; and `isError` is a boolean or `structuredContent`
/// an object (either marks the tool result, a bare `content` array is too
/// common a shape).
fn is_call_tool_result(r: &Map<String, Value>) -> bool {
    let Some(content) = r.get("content").and_then(Value::as_array) else {
        return false;
    };
    let blocks_ok = content.iter().all(|b| {
        b.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| CONTENT_TYPES.contains(&t))
    });
    let marked = r.get("isError").is_some_and(Value::is_boolean)
        || r.get("structuredContent").is_some_and(Value::is_object);
    blocks_ok && marked
}

/// What an `initialize` request looks like.
#[derive(Debug, PartialEq)]
enum InitShape<'a> {
    Mcp {
        version: &'a str,
        client: &'a Map<String, Value>,
    },
    Lsp,
    Acp,
    Unknown,
}

/// Keys of LSP `InitializeParams` (LSP 3.17 §initialize) that MCP never sends.
const LSP_INIT_KEYS: &[&str] = &["processId", "rootUri", "rootPath", "workspaceFolders"];
/// LSP `ClientCapabilities` groups that have no MCP counterpart.
const LSP_CLIENT_CAPS: &[&str] = &["textDocument", "workspace", "notebookDocument", "window"];
/// LSP `ServerCapabilities` members (result side).
const LSP_SERVER_CAPS: &[&str] = &[
    "textDocumentSync",
    "hoverProvider",
    "completionProvider",
    "definitionProvider",
];

fn classify_initialize(params: Option<&Map<String, Value>>) -> InitShape<'_> {
    let Some(p) = params else {
        return InitShape::Unknown;
    };
    let caps = p.get("capabilities").and_then(Value::as_object);
    if LSP_INIT_KEYS.iter().any(|k| p.contains_key(*k))
        || caps.is_some_and(|c| LSP_CLIENT_CAPS.iter().any(|k| c.contains_key(*k)))
    {
        return InitShape::Lsp;
    }
    // ACP (Zed Agent Client Protocol): integer protocolVersion, clientCapabilities.
    if p.get("protocolVersion").is_some_and(Value::is_number)
        || p.contains_key("clientCapabilities")
    {
        return InitShape::Acp;
    }
    let version = p
        .get("protocolVersion")
        .and_then(Value::as_str)
        .filter(|v| is_date_version(v));
    let client = p
        .get("clientInfo")
        .and_then(Value::as_object)
        .filter(|c| c.get("name").is_some_and(Value::is_string));
    match (version, caps, client) {
        (Some(version), Some(_), Some(client)) => InitShape::Mcp { version, client },
        _ => InitShape::Unknown,
    }
}

/// Built once per signature set; shared by all flows.
#[derive(Debug)]
pub struct McpClassifier {
    prefilter: Prefilter,
    mcp_methods: FxHashSet<String>,
    shared_methods: FxHashSet<String>,
    foreign_prefixes: Vec<(String, &'static str)>,
    meta_prefix: String,
    /// `<prefix>protocolVersion`, `<prefix>clientInfo`, `<prefix>serverInfo`.
    meta_version_key: String,
    meta_client_key: String,
    meta_server_key: String,
    protocol_versions: Vec<String>,
    version_header: String,
    session_header: String,
    method_header: String,
    name_header: String,
    ws_subprotocols: Vec<String>,
    oauth_paths: Vec<String>,
}

fn or_default(v: &str, default: &str) -> String {
    if v.trim().is_empty() {
        default.to_owned()
    } else {
        v.trim().to_owned()
    }
}

impl McpClassifier {
    pub fn new(sigs: &SignatureSet) -> Self {
        let j = &sigs.jsonrpc;
        let h = &sigs.http;
        let pick_header = |suffix: &str, default: &str| {
            h.method_headers
                .iter()
                .find(|n| n.to_ascii_lowercase().ends_with(suffix))
                .map_or_else(|| default.to_owned(), |n| n.trim().to_owned())
        };
        let non_empty = |v: &[String], default: &str| {
            let out: Vec<String> = v
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            if out.is_empty() {
                vec![default.to_owned()]
            } else {
                out
            }
        };
        let meta_prefix = or_default(&j.meta_key_prefix, DEFAULT_META_PREFIX);
        Self {
            prefilter: Prefilter::new(),
            mcp_methods: j.mcp_methods.iter().cloned().collect(),
            shared_methods: j.shared_methods.iter().cloned().collect(),
            foreign_prefixes: j
                .foreign_method_prefixes
                .iter()
                .filter(|(p, _)| !p.is_empty())
                .map(|(p, name)| (p.clone(), intern(name)))
                .collect(),
            meta_version_key: format!("{meta_prefix}protocolVersion"),
            meta_client_key: format!("{meta_prefix}clientInfo"),
            meta_server_key: format!("{meta_prefix}serverInfo"),
            meta_prefix,
            protocol_versions: j.protocol_versions.clone(),
            version_header: or_default(&h.protocol_version_header, DEFAULT_VERSION_HEADER),
            session_header: or_default(&h.session_header, DEFAULT_SESSION_HEADER),
            method_header: pick_header("-method", DEFAULT_METHOD_HEADER),
            name_header: pick_header("-name", DEFAULT_NAME_HEADER),
            ws_subprotocols: non_empty(&h.websocket_subprotocols, DEFAULT_WS_SUBPROTOCOL),
            oauth_paths: non_empty(&h.oauth_discovery_paths, DEFAULT_OAUTH_PATH),
        }
    }

    /// A protocol revision string: date-shaped, or listed in the signatures
    /// (future revisions need not be dates, `mcp_types/version.py`).
    fn valid_version(&self, v: &str) -> bool {
        is_date_version(v) || self.protocol_versions.iter().any(|p| p == v)
    }

    /// An MCP-only method (weak evidence); shared methods never count.
    fn is_mcp_method(&self, m: &str) -> bool {
        m != "initialize" && !self.shared_methods.contains(m) && self.mcp_methods.contains(m)
    }

    fn foreign_protocol(&self, m: &str) -> Option<&'static str> {
        self.foreign_prefixes
            .iter()
            .find(|(p, _)| m.starts_with(p.as_str()))
            .map(|(_, n)| *n)
    }

    /// An HTTP request head (method, path, MCP headers, WebSocket subprotocol).
    pub fn inspect_request_head(&self, head: &Head, session: &mut McpSession) {
        let version = head
            .header(&self.version_header)
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let valid_version = version.filter(|v| self.valid_version(v));
        if let Some(v) = valid_version {
            session.set_protocol_version(v);
        }
        let method = head
            .header(&self.method_header)
            .map(str::trim)
            .filter(|m| token_like(m));
        if let Some(m) = method {
            session.add_method(m);
            if m == "tools/call"
                && let Some(name) = head.header(&self.name_header)
            {
                session.add_tool_called(&decode_header_value(name.trim()));
            }
        }
        match (method, valid_version) {
            (Some(m), Some(v)) => session.signal(
                Strength::Strong,
                Signal::HttpHeader,
                format!(
                    "{}: {} ({} {v})",
                    self.method_header,
                    sanitize(m).unwrap_or_default(),
                    self.version_header
                ),
            ),
            (None, Some(v)) => session.signal(
                Strength::Weak(Weak::VersionHeader),
                Signal::HttpHeader,
                format!("{}: {v}", self.version_header),
            ),
            _ => {}
        }
        self.session_header(head, session);
        dpop(head, session);

        let is_upgrade = header_values(head, "upgrade").any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
        });
        if is_upgrade {
            self.ws_subprotocol(head, session);
        }

        if let Some(v) = valid_version
            && head.method().eq_ignore_ascii_case("GET")
            && let Some(p) = self.oauth_path(head.target())
        {
            // Only the well-known prefix goes into the detail: the rest of the
            // path is the MCP endpoint path, which may carry secrets.
            session.signal(
                Strength::Supporting,
                Signal::OauthDiscovery,
                format!("GET {p}… ({} {v})", self.version_header),
            );
        }
    }

    /// The configured OAuth discovery path `target` starts with (query and
    /// absolute-form scheme/authority ignored).
    fn oauth_path(&self, target: &str) -> Option<&str> {
        let path = match target.find("://") {
            Some(i) => {
                let rest = target.get(i + 3..).unwrap_or_default();
                rest.find('/')
                    .and_then(|j| rest.get(j..))
                    .unwrap_or_default()
            }
            None => target,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        self.oauth_paths
            .iter()
            .find(|p| path.starts_with(p.as_str()))
            .map(String::as_str)
    }

    fn session_header(&self, head: &Head, session: &mut McpSession) {
        // Session ids are visible ASCII 0x21–0x7E (2025-03-26 transports.mdx).
        if let Some(id) = head.header(&self.session_header)
            && !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_graphic())
        {
            session.signal(
                Strength::Weak(Weak::SessionHeader),
                Signal::HttpHeader,
                format!("{}: <redacted>", self.session_header),
            );
        }
    }

    fn ws_subprotocol(&self, head: &Head, session: &mut McpSession) {
        let offered = header_values(head, "sec-websocket-protocol")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find_map(|t| {
                self.ws_subprotocols
                    .iter()
                    .find(|s| s.eq_ignore_ascii_case(t))
            });
        if let Some(sp) = offered {
            session.signal(
                Strength::Weak(Weak::WsSubprotocol),
                Signal::WebsocketSubprotocol,
                format!("Sec-WebSocket-Protocol: {sp}"),
            );
        }
    }

    /// An HTTP response head (Mcp-Session-Id, WWW-Authenticate resource_metadata, ...).
    pub fn inspect_response_head(&self, head: &Head, session: &mut McpSession) {
        self.session_header(head, session);
        if let Some(v) = head.header(&self.version_header).map(str::trim)
            && self.valid_version(v)
        {
            session.set_protocol_version(v);
            session.signal(
                Strength::Weak(Weak::VersionHeader),
                Signal::HttpHeader,
                format!("{}: {v}", self.version_header),
            );
        }
        // 101 Switching Protocols selecting the subprotocol (RFC 6455 §4.2.2).
        if head.status == 101 {
            self.ws_subprotocol(head, session);
        }
        // RFC 9728 §5.1: `WWW-Authenticate: Bearer resource_metadata="<url>"`.
        for v in header_values(head, "www-authenticate") {
            let lower = v.to_ascii_lowercase();
            let Some(i) = lower.find("resource_metadata=") else {
                continue;
            };
            let url = lower
                .get(i + "resource_metadata=".len()..)
                .unwrap_or_default();
            let url = url.trim_start_matches('"');
            let url = url.split(['"', ',', ' ']).next().unwrap_or_default();
            if !lower.contains("bearer") {
                continue;
            }
            if let Some(p) = self
                .oauth_paths
                .iter()
                .find(|p| p.contains("protected-resource") && url.contains(&p.to_ascii_lowercase()))
            {
                session.signal(
                    Strength::Supporting,
                    Signal::OauthDiscovery,
                    format!("WWW-Authenticate: Bearer resource_metadata=\"…{p}…\""),
                );
                break;
            }
        }
    }

    /// One payload that may carry JSON-RPC: an HTTP body, an SSE `data` field, a
    /// WebSocket text message.
    pub fn inspect_payload(
        &self,
        payload: &[u8],
        _dir: Direction,
        carrier: Carrier,
        session: &mut McpSession,
    ) {
        if !self.prefilter.may_be_jsonrpc(payload) {
            return;
        }
        let Some(parsed) = jsonrpc::parse(payload) else {
            return;
        };
        let signal = carrier.signal();
        for msg in &parsed.messages {
            self.inspect_message(msg, signal, session);
        }
    }

    /// An SSE event (the legacy transport's `event: endpoint`; JSON-RPC in `data`).
    pub fn inspect_sse_event(&self, event: &SseEvent, session: &mut McpSession) {
        if event.event.as_deref().map(str::trim) == Some("endpoint") {
            if let Some(uri) = redacted_endpoint(&event.data) {
                session.signal(
                    Strength::Weak(Weak::SseEndpoint),
                    Signal::SseEndpoint,
                    format!("event: endpoint {uri}"),
                );
            }
            return;
        }
        if !event.data.is_empty() {
            self.inspect_payload(
                event.data.as_bytes(),
                Direction::ServerToClient,
                Carrier::SseData,
                session,
            );
        }
    }

    fn inspect_message(&self, msg: &Message, signal: Signal, session: &mut McpSession) {
        match msg {
            Message::Request { method, params, .. } | Message::Notification { method, params } => {
                self.inspect_call(
                    method,
                    params.as_ref().and_then(Value::as_object),
                    signal,
                    session,
                );
            }
            Message::Response { result, .. } => {
                if let Some(r) = result.as_object() {
                    self.inspect_result(r, signal, session);
                }
            }
            Message::Error { .. } => {}
        }
    }

    /// A request or notification.
    fn inspect_call(
        &self,
        method: &str,
        params: Option<&Map<String, Value>>,
        signal: Signal,
        session: &mut McpSession,
    ) {
        session.add_method(method);
        if let Some(proto) = self.foreign_protocol(method) {
            session.reject(proto);
        }
        let tool = if method == "tools/call" {
            params.and_then(|p| p.get("name")).and_then(Value::as_str)
        } else {
            None
        };
        if let Some(t) = tool {
            session.add_tool_called(t);
        }
        // `tools/call "search"`: the method, plus the tool name for calls.
        let mut label = sanitize(method).unwrap_or_default();
        if let Some(t) = tool.and_then(sanitize) {
            label = format!("{label} \"{t}\"");
        }

        // (c) 2026-07-28 per-request metadata.
        let mut meta_proof = false;
        if let Some(meta) = params
            .and_then(|p| p.get("_meta"))
            .and_then(Value::as_object)
            && meta
                .keys()
                .any(|k| k.starts_with(self.meta_prefix.as_str()))
        {
            let version = meta.get(&self.meta_version_key).and_then(Value::as_str);
            if let Some(v) = version {
                session.set_protocol_version(v);
            }
            let client = meta.get(&self.meta_client_key).and_then(Value::as_object);
            if let Some(c) = client {
                session.set_client(c);
            }
            let mut detail = format!("{label} with {} _meta", self.meta_prefix);
            match (version.and_then(sanitize), client) {
                (Some(v), Some(c)) => {
                    let c = implementation_detail(Some(c));
                    detail += &format!(" (protocolVersion {v}, client {c})");
                }
                (Some(v), None) => detail += &format!(" (protocolVersion {v})"),
                (None, Some(c)) => {
                    detail += &format!(" (client {})", implementation_detail(Some(c)));
                }
                (None, None) => {}
            }
            session.signal(Strength::Strong, signal, detail);
            meta_proof = true;
        }

        if method == "initialize" {
            match classify_initialize(params) {
                InitShape::Mcp { version, client } => {
                    session.set_protocol_version(version);
                    session.set_client(client);
                    session.signal(
                        Strength::Strong,
                        signal,
                        format!(
                            "initialize request (protocolVersion {version}, client {})",
                            implementation_detail(Some(client))
                        ),
                    );
                }
                InitShape::Lsp => session.reject("LSP"),
                InitShape::Acp => session.reject("ACP"),
                InitShape::Unknown => {}
            }
        } else if !meta_proof && self.is_mcp_method(method) {
            // A strong `_meta` item already names the method: no weak duplicate.
            session.signal(Strength::Weak(Weak::Method), signal, label);
        }
    }

    /// A successful response's `result` object.
    fn inspect_result(&self, r: &Map<String, Value>, signal: Signal, session: &mut McpSession) {
        let caps = r.get("capabilities").and_then(Value::as_object);
        let version = r.get("protocolVersion");

        // (b) InitializeResult.
        if let (Some(v), Some(info), Some(_)) = (
            version
                .and_then(Value::as_str)
                .filter(|v| is_date_version(v)),
            r.get("serverInfo").and_then(Value::as_object),
            caps,
        ) {
            session.set_protocol_version(v);
            session.set_server(info);
            session.signal(
                Strength::Strong,
                signal,
                format!(
                    "initialize result (protocolVersion {v}, server {})",
                    implementation_detail(Some(info))
                ),
            );
        } else if caps.is_some_and(|c| LSP_SERVER_CAPS.iter().any(|k| c.contains_key(*k))) {
            session.reject("LSP");
        } else if version.is_some_and(Value::is_number) && r.contains_key("agentCapabilities") {
            session.reject("ACP");
        }

        // (c) result `_meta` with the server's identity (2026-07-28).
        if let Some(info) = r
            .get("_meta")
            .and_then(Value::as_object)
            .and_then(|m| m.get(&self.meta_server_key))
            .and_then(Value::as_object)
        {
            session.set_server(info);
            session.signal(
                Strength::Strong,
                signal,
                format!(
                    "result with _meta {}serverInfo (server {})",
                    self.meta_prefix,
                    implementation_detail(Some(info))
                ),
            );
        }

        // (g) CallToolResult: typed content blocks, with isError or
        // structuredContent (schema.ts `CallToolResult`).
        if is_call_tool_result(r) {
            session.signal(
                Strength::Weak(Weak::ToolResult),
                signal,
                "tools/call result (content, isError/structuredContent)".to_owned(),
            );
        }

        // (f) ListToolsResult: every entry is a Tool with name + inputSchema.
        if let Some(tools) = r.get("tools").and_then(Value::as_array)
            && !tools.is_empty()
            && tools.iter().all(|t| {
                t.get("name").is_some_and(Value::is_string)
                    && t.get("inputSchema").is_some_and(Value::is_object)
            })
        {
            for name in tools
                .iter()
                .filter_map(|t| t.get("name").and_then(Value::as_str))
            {
                session.add_tool_listed(name);
            }
            let n = tools.len();
            let plural = if n == 1 { "" } else { "s" };
            session.signal(
                Strength::Strong,
                signal,
                format!("tools/list result ({n} tool{plural})"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::{HttpSignatures, JsonRpcSignatures};

    // ---- fixtures ------------------------------------------------------
    //
    // `CAP_*` bodies and heads were captured on 127.0.0.1 from python-sdk 2.3.0
    // (MCPServer "demo-server" with one tool `search`, `Client` in
    // mode="legacy" / "2026-07-28", and `sse_client`), through a logging TCP
    // proxy. Other fixtures are the spec's examples (mcp-wire.md §2, §6) or
    // the other protocols' published shapes.

    const CAP_INIT_REQ: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp","version":"0.1.0"}}}"#;
    const CAP_INIT_RES: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"prompts":{"listChanged":false},"resources":{"listChanged":false,"subscribe":false},"tools":{"listChanged":false}},"protocolVersion":"2025-11-25","serverInfo":{"name":"demo-server","version":""}}}"#;
    const CAP_INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    const CAP_TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    const CAP_TOOLS_LIST_RES: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"description":"Search things.","inputSchema":{"properties":{"query":{"title":"Query","type":"string"},"limit":{"default":5,"title":"Limit","type":"integer"}},"required":["query"],"type":"object","title":"searchArguments"},"name":"search","outputSchema":{"properties":{"result":{"title":"Result","type":"string"}},"required":["result"],"type":"object","title":"searchOutput"}}]}}"#;
    const CAP_TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{"query":"secret-arg","limit":2}}}"#;
    const CAP_TOOLS_CALL_RES: &str = r#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"text":"results for secret-arg","type":"text"}],"isError":false,"structuredContent":{"result":"results for secret-arg"}}}"#;
    const CAP_INIT_REQ_HEAD: &str = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:18201\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nUser-Agent: python-httpx2/2.16.2\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\nContent-Length: 152\r\n";
    const CAP_INIT_RES_HEAD: &str = "HTTP/1.1 200 OK\r\ndate: Sun, 22 Nov 2026 04:32:22 GMT\r\nserver: uvicorn\r\ncache-control: no-cache, no-transform\r\nconnection: keep-alive\r\ncontent-type: text/event-stream\r\nmcp-session-id: e03460e6bdbe4ea0a43b3526cdac3b01\r\nx-accel-buffering: no\r\nTransfer-Encoding: chunked\r\n";
    const CAP_LEGACY_POST_HEAD: &str = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:18201\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\nmcp-session-id: e03460e6bdbe4ea0a43b3526cdac3b01\r\nmcp-protocol-version: 2025-11-25\r\nContent-Length: 46\r\n";

    const CAP_MODERN_HEAD: &str = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:18202\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\nUser-Agent: python-httpx2/2.16.2\r\naccept: application/json, text/event-stream\r\ncontent-type: application/json\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: search\r\nContent-Length: 301\r\n";
    const CAP_MODERN_TOOLS_LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    const CAP_MODERN_TOOLS_CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"secret-arg","limit":2},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"mcp","version":"0.1.0"},"io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    const CAP_MODERN_DISCOVER_RES: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"cacheScope":"private","capabilities":{"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"tools":{"listChanged":true}},"resultType":"complete","supportedVersions":["2026-07-28"],"ttlMs":0,"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"demo-server","version":""}}}}"#;
    const CAP_MODERN_CALL_RES: &str = r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"text":"results for secret-arg","type":"text"}],"isError":false,"resultType":"complete","structuredContent":{"result":"results for secret-arg"},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"demo-server","version":""}}}}"#;

    const CAP_SSE_ENDPOINT: &str = "/messages/?session_id=54e4eece4811438caffedaff86e8c603";

    // LSP 3.17 `initialize` (shape of what VS Code sends, trimmed).
    const LSP_INIT: &str = r#"Content-Length: 0

{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"processId":4242,"clientInfo":{"name":"Visual Studio Code","version":"1.95.0"},"locale":"en","rootPath":"/home/u/p","rootUri":"file:///home/u/p","capabilities":{"workspace":{"applyEdit":true},"textDocument":{"hover":{"contentFormat":["markdown"]}}},"trace":"off","workspaceFolders":[{"uri":"file:///home/u/p","name":"p"}]}}"#;
    // ACP (Zed Agent Client Protocol) initialize and its result.
    const ACP_INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":1,"clientCapabilities":{"fs":{"readTextFile":true,"writeTextFile":true},"terminal":true}}}"#;
    const ACP_INIT_RES: &str = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":1,"agentCapabilities":{"loadSession":true,"promptCapabilities":{"image":true}},"authMethods":[]}}"#;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The vocabulary the signature files carry (signatures/README.md).
    fn sigs() -> SignatureSet {
        SignatureSet {
            jsonrpc: JsonRpcSignatures {
                mcp_methods: strings(&[
                    "tools/list",
                    "tools/call",
                    "resources/list",
                    "resources/templates/list",
                    "resources/read",
                    "resources/subscribe",
                    "resources/unsubscribe",
                    "prompts/list",
                    "prompts/get",
                    "completion/complete",
                    "logging/setLevel",
                    "sampling/createMessage",
                    "roots/list",
                    "elicitation/create",
                    "server/discover",
                    "subscriptions/listen",
                    "notifications/initialized",
                    "notifications/cancelled",
                    "notifications/progress",
                    "notifications/message",
                    "notifications/tools/list_changed",
                    "notifications/resources/updated",
                    "notifications/resources/list_changed",
                    "notifications/prompts/list_changed",
                    "notifications/roots/list_changed",
                    "notifications/elicitation/complete",
                    "notifications/tasks/status",
                    "notifications/subscriptions/acknowledged",
                ]),
                shared_methods: strings(&[
                    "initialize",
                    "ping",
                    "tasks/get",
                    "tasks/cancel",
                    "tasks/list",
                    "tasks/result",
                ]),
                foreign_method_prefixes: [
                    ("eth_", "Ethereum JSON-RPC"),
                    ("net_", "Ethereum JSON-RPC"),
                    ("web3_", "Ethereum JSON-RPC"),
                    ("textDocument/", "LSP"),
                    ("workspace/", "LSP"),
                    ("$/", "LSP"),
                    ("window/", "LSP"),
                    ("session/", "ACP"),
                    ("message/", "A2A"),
                    ("agent/", "A2A"),
                ]
                .iter()
                .map(|(p, n)| ((*p).to_owned(), (*n).to_owned()))
                .collect(),
                meta_key_prefix: "io.modelcontextprotocol/".to_owned(),
                protocol_versions: strings(&[
                    "2024-11-05",
                    "2025-03-26",
                    "2025-06-18",
                    "2025-11-25",
                    "2026-07-28",
                ]),
            },
            http: HttpSignatures {
                protocol_version_header: "MCP-Protocol-Version".to_owned(),
                session_header: "Mcp-Session-Id".to_owned(),
                method_headers: strings(&["Mcp-Method", "Mcp-Name"]),
                websocket_subprotocols: strings(&["mcp"]),
                oauth_discovery_paths: strings(&[
                    "/.well-known/oauth-protected-resource",
                    "/.well-known/oauth-authorization-server",
                ]),
            },
            ..SignatureSet::default()
        }
    }

    /// A `Head` from header text (start line + `Name: value` lines), the way
    /// the HTTP parser hands it over.
    fn head(text: &str) -> Head {
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let start = lines.next().unwrap_or_default();
        let mut h = Head::default();
        h.minor_version = 1;
        let parts: Vec<&str> = start.splitn(3, ' ').collect();
        if start.starts_with("HTTP/") {
            h.status = parts.get(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        } else {
            h.set_request_line(
                parts.first().copied().unwrap_or_default(),
                parts.get(1).copied().unwrap_or_default(),
            );
        }
        for l in lines {
            if let Some((n, v)) = l.split_once(':') {
                h.push_header(n, v.trim());
            }
        }
        h
    }

    fn sse(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: None,
        }
    }

    struct T {
        c: McpClassifier,
        s: McpSession,
    }

    impl T {
        fn new() -> Self {
            Self {
                c: McpClassifier::new(&sigs()),
                s: McpSession::new(),
            }
        }
        fn with(sigs: &SignatureSet) -> Self {
            Self {
                c: McpClassifier::new(sigs),
                s: McpSession::new(),
            }
        }
        fn body(&mut self, p: &str) -> &mut Self {
            self.c.inspect_payload(
                p.as_bytes(),
                Direction::ClientToServer,
                Carrier::HttpBody,
                &mut self.s,
            );
            self
        }
        fn reply(&mut self, p: &str) -> &mut Self {
            self.c.inspect_payload(
                p.as_bytes(),
                Direction::ServerToClient,
                Carrier::HttpBody,
                &mut self.s,
            );
            self
        }
        fn ws(&mut self, p: &str) -> &mut Self {
            self.c.inspect_payload(
                p.as_bytes(),
                Direction::ClientToServer,
                Carrier::WebSocket,
                &mut self.s,
            );
            self
        }
        fn sse(&mut self, event: Option<&str>, data: &str) -> &mut Self {
            self.c.inspect_sse_event(&sse(event, data), &mut self.s);
            self
        }
        fn req(&mut self, h: &str) -> &mut Self {
            self.c.inspect_request_head(&head(h), &mut self.s);
            self
        }
        fn resp(&mut self, h: &str) -> &mut Self {
            self.c.inspect_response_head(&head(h), &mut self.s);
            self
        }
        fn confirmed(&self) -> bool {
            self.s.is_confirmed()
        }
        fn details(&mut self) -> Vec<(Signal, String)> {
            self.s
                .take_new_evidence()
                .into_iter()
                .map(|e| (e.signal, e.detail))
                .collect()
        }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    // ---- every revision, positive --------------------------------------

    #[test]
    fn legacy_streamable_http_session_from_capture() {
        let mut t = T::new();
        t.req(CAP_INIT_REQ_HEAD).body(CAP_INIT_REQ);
        assert!(t.confirmed(), "initialize alone is strong proof");
        t.resp(CAP_INIT_RES_HEAD).sse(Some("message"), CAP_INIT_RES);
        t.req(CAP_LEGACY_POST_HEAD).body(CAP_INITIALIZED);
        t.req(CAP_LEGACY_POST_HEAD)
            .body(CAP_TOOLS_LIST)
            .sse(Some("message"), CAP_TOOLS_LIST_RES);
        t.req(CAP_LEGACY_POST_HEAD)
            .body(CAP_TOOLS_CALL)
            .sse(Some("message"), CAP_TOOLS_CALL_RES);
        assert_eq!(t.s.rejected_as(), None);

        let inv = t.s.inventory();
        assert_eq!(inv.protocol_version.as_deref(), Some("2025-11-25"));
        assert_eq!(inv.client.as_deref(), Some("mcp 0.1.0"));
        assert_eq!(inv.server.as_deref(), Some("demo-server"));
        assert_eq!(
            inv.methods,
            set(&[
                "initialize",
                "notifications/initialized",
                "tools/list",
                "tools/call"
            ])
        );
        assert_eq!(inv.tools_listed, set(&["search"]));
        assert_eq!(inv.tools_called, set(&["search"]));

        let ev = t.details();
        let want = [
            (
                Signal::HttpJsonrpc,
                "initialize request (protocolVersion 2025-11-25, client \"mcp\" 0.1.0)",
            ),
            (Signal::HttpHeader, "Mcp-Session-Id: <redacted>"),
            (
                Signal::SseJsonrpc,
                "initialize result (protocolVersion 2025-11-25, server \"demo-server\")",
            ),
            (Signal::HttpHeader, "MCP-Protocol-Version: 2025-11-25"),
            (Signal::HttpJsonrpc, "notifications/initialized"),
            (Signal::HttpJsonrpc, "tools/list"),
            (Signal::SseJsonrpc, "tools/list result (1 tool)"),
            (Signal::HttpJsonrpc, "tools/call \"search\""),
            (
                Signal::SseJsonrpc,
                "tools/call result (content, isError/structuredContent)",
            ),
        ];
        let want: Vec<(Signal, String)> = want.iter().map(|(s, d)| (*s, (*d).to_owned())).collect();
        assert_eq!(ev, want);
        // Evidence is handed out once.
        assert!(t.details().is_empty());
        // Argument values never leak into the report.
        let dump = format!("{:?} {:?}", t.s.inventory(), ev);
        assert!(!dump.contains("secret-arg"), "{dump}");
        assert!(!dump.contains("e03460e6"), "{dump}");
    }

    /// A lone stateless `tools/call` (no initialize, no MCP headers, `method`
    /// after a large `params`) answered by its tool result is two weak kinds.
    #[test]
    fn lone_tools_call_answered_by_a_tool_result_confirms() {
        let big = "x".repeat(200_000);
        let call = format!(
            r#"{{"params":{{"arguments":{{"blob":"{big}"}},"name":"echo"}},"id":7,"method":"tools/call","jsonrpc":"2.0"}}"#
        );
        let mut t = T::new();
        t.body(&call);
        assert!(!t.confirmed(), "a method alone is weak");
        t.reply(r#"{"result":{"isError":false,"content":[{"type":"text","text":"ok"}]},"id":7,"jsonrpc":"2.0"}"#);
        assert!(t.confirmed());
        assert_eq!(t.s.inventory().tools_called, set(&["echo"]));
        // A bare `content` array is not a tool result.
        let mut t = T::new();
        t.body(&call).reply(
            r#"{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"ok"}]}}"#,
        );
        assert!(!t.confirmed());
        // Nor are blocks of another vocabulary.
        let mut t = T::new();
        t.body(&call)
            .reply(r#"{"jsonrpc":"2.0","id":7,"result":{"isError":false,"content":[{"type":"paragraph"}]}}"#);
        assert!(!t.confirmed());
    }

    #[test]
    fn dpop_is_recorded_next_to_mcp_proof_only() {
        let h =
            "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: DPoP eyJsecret\r\nDPoP: eyJproof\r\n";
        let mut t = T::new();
        t.req(h);
        assert!(!t.confirmed());
        assert!(t.details().is_empty(), "supporting only");
        t.body(CAP_INIT_REQ);
        let ev = t.details();
        assert!(
            ev.contains(&(
                Signal::HttpHeader,
                "Authorization: DPoP <redacted> with a DPoP proof (sender-constrained token)"
                    .to_owned()
            )),
            "{ev:?}"
        );
        assert!(!format!("{ev:?}").contains("eyJ"));
        let mut t = T::new();
        t.req("POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer eyJ\r\n")
            .body(CAP_INIT_REQ);
        assert!(!format!("{:?}", t.details()).contains("DPoP"));
    }

    /// Spec example bodies (`basic/lifecycle.mdx` of each revision).
    #[test]
    fn initialize_of_every_handshake_revision_confirms() {
        let cases = [
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"ExampleClient","version":"1.0.0"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"ExampleClient","version":"1.0.0"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{}},"clientInfo":{"name":"ExampleClient","title":"Example Client Display Name","version":"1.0.0"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}},"tasks":{"requests":{"elicitation":{"create":{}},"sampling":{"createMessage":{}}}}},"clientInfo":{"name":"ExampleClient","title":"Example Client Display Name","version":"1.0.0","description":"An example MCP client application","icons":[{"src":"https://example.com/icon.png","mimeType":"image/png","sizes":["48x48"]}],"websiteUrl":"https://example.com"}}}"#,
            // Pre-release string still sent by old TypeScript clients.
            r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-10-07","capabilities":{},"clientInfo":{"name":"cursor","version":"1.2"}}}"#,
        ];
        for body in cases {
            let mut t = T::new();
            t.body(body);
            assert!(t.confirmed(), "{body}");
            let v = &body[body.find("\"protocolVersion\":\"").unwrap() + 19..][..10];
            assert_eq!(t.s.inventory().protocol_version.as_deref(), Some(v));
            assert!(t.s.inventory().client.is_some());
        }
        let mut t = T::new();
        t.body(cases[4]);
        assert_eq!(
            t.details(),
            vec![(
                Signal::HttpJsonrpc,
                "initialize request (protocolVersion 2024-10-07, client \"cursor\" 1.2)".to_owned()
            )]
        );
    }

    #[test]
    fn server_side_initialize_result_confirms_and_overrides_version() {
        let mut t = T::new();
        // Client asks for 2025-11-25, server negotiates down to 2025-06-18.
        t.body(CAP_INIT_REQ);
        t.sse(
            Some("message"),
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"logging":{},"tools":{"listChanged":true}},"serverInfo":{"name":"ExampleServer","title":"Example","version":"1.0.0"},"instructions":"x"}}"#,
        );
        assert!(t.confirmed());
        assert_eq!(
            t.s.inventory().protocol_version.as_deref(),
            Some("2025-06-18")
        );
        assert_eq!(
            t.s.inventory().server.as_deref(),
            Some("ExampleServer 1.0.0")
        );

        // The result alone (response direction only, e.g. asymmetric capture).
        let mut t = T::new();
        t.reply(CAP_INIT_RES);
        assert!(t.confirmed());
        assert_eq!(t.s.inventory().server.as_deref(), Some("demo-server"));
    }

    #[test]
    fn modern_2026_07_28_without_handshake() {
        // Body only: the `_meta` namespace proves it.
        let mut t = T::new();
        t.body(CAP_MODERN_TOOLS_LIST);
        assert!(t.confirmed());
        assert_eq!(
            t.s.inventory().protocol_version.as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(t.s.inventory().client.as_deref(), Some("mcp 0.1.0"));
        assert_eq!(
            t.details(),
            vec![(
                Signal::HttpJsonrpc,
                "tools/list with io.modelcontextprotocol/ _meta (protocolVersion 2026-07-28, client \"mcp\" 0.1.0)".to_owned()
            )]
        );
        // Full exchange: heads, call, results.
        let mut t = T::new();
        t.req(CAP_MODERN_HEAD)
            .body(CAP_MODERN_TOOLS_CALL)
            .reply(CAP_MODERN_CALL_RES);
        t.reply(CAP_MODERN_DISCOVER_RES);
        assert!(t.confirmed());
        let inv = t.s.inventory();
        assert_eq!(inv.server.as_deref(), Some("demo-server"));
        assert_eq!(inv.methods, set(&["tools/call"]));
        assert_eq!(inv.tools_called, set(&["search"]));
        let ev = t.details();
        assert_eq!(
            ev.get(..2),
            Some(
                &[
                    (
                        Signal::HttpHeader,
                        "Mcp-Method: tools/call (MCP-Protocol-Version 2026-07-28)".to_owned()
                    ),
                    (
                        Signal::HttpJsonrpc,
                        "tools/call \"search\" with io.modelcontextprotocol/ _meta (protocolVersion 2026-07-28, client \"mcp\" 0.1.0)".to_owned()
                    ),
                ][..]
            )
        );
        let dump = format!("{:?}{ev:?}", t.s.inventory);
        assert!(!dump.contains("secret-arg"));

        // A result carrying only the server identity in `_meta` (the
        // server/discover result) is proof from the response side alone.
        let mut t = T::new();
        t.reply(CAP_MODERN_DISCOVER_RES);
        assert!(t.confirmed());
        // Notifications carry `_meta` too.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#);
        assert!(t.confirmed());
    }

    #[test]
    fn initialize_with_namespaced_meta_keeps_both_proofs() {
        // 2025-11-25 tasks put `io.modelcontextprotocol/related-task` in `_meta`.
        let mut t = T::new();
        t.ws(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"},"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t"}}}}"#);
        assert!(t.confirmed());
        assert_eq!(t.s.inventory().client.as_deref(), Some("x 1"));
        assert_eq!(
            t.details(),
            vec![
                (
                    Signal::WebsocketJsonrpc,
                    "initialize with io.modelcontextprotocol/ _meta".to_owned()
                ),
                (
                    Signal::WebsocketJsonrpc,
                    "initialize request (protocolVersion 2025-11-25, client \"x\" 1)".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn modern_headers_only_post() {
        let mut t = T::new();
        t.req(CAP_MODERN_HEAD);
        assert!(t.confirmed());
        assert_eq!(
            t.s.inventory().protocol_version.as_deref(),
            Some("2026-07-28")
        );
        assert_eq!(t.s.inventory().methods, set(&["tools/call"]));
        assert_eq!(t.s.inventory().tools_called, set(&["search"]));
        assert_eq!(
            t.details(),
            vec![(
                Signal::HttpHeader,
                "Mcp-Method: tools/call (MCP-Protocol-Version 2026-07-28)".to_owned()
            )]
        );
        // Spec example, header names in any case; non-ASCII Mcp-Name in the
        // `=?base64?…?=` form ("café" -> Y2Fmw6k=).
        let mut t = T::new();
        t.req("POST /mcp HTTP/1.1\r\nContent-Type: application/json\r\nMCP-PROTOCOL-VERSION: 2026-07-28\r\nMCP-METHOD: tools/call\r\nmcp-name: =?base64?Y2Fmw6k=?=\r\nMcp-Param-Region: us-west1\r\n");
        assert!(t.confirmed());
        assert_eq!(t.s.inventory().tools_called, set(&["café"]));
        // Mcp-Name is a tool only for tools/call.
        let mut t = T::new();
        t.req("POST /mcp HTTP/1.1\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: prompts/get\r\nMcp-Name: greet\r\n");
        assert!(t.confirmed());
        assert!(t.s.inventory().tools_called.is_empty());
        assert_eq!(t.s.inventory().methods, set(&["prompts/get"]));
    }

    #[test]
    fn headers_that_do_not_prove_alone() {
        // Mcp-Method without a version.
        let mut t = T::new();
        t.req("POST /mcp HTTP/1.1\r\nMcp-Method: tools/call\r\n");
        assert!(!t.confirmed());
        // Version header that is not a revision.
        let mut t = T::new();
        t.req("POST /mcp HTTP/1.1\r\nMcp-Method: tools/call\r\nMCP-Protocol-Version: banana\r\n");
        assert!(!t.confirmed());
        assert_eq!(t.s.inventory().protocol_version, None);
        // Version alone is one weak kind; the session header is a second.
        let mut t = T::new();
        t.req("GET /mcp HTTP/1.1\r\nMCP-Protocol-Version: 2025-06-18\r\n");
        assert!(!t.confirmed());
        assert!(
            t.details().is_empty(),
            "nothing is released before confirmation"
        );
        t.req("GET /mcp HTTP/1.1\r\nMCP-Protocol-Version: 2025-06-18\r\nMcp-Session-Id: 1868a90c-0000\r\n");
        assert!(t.confirmed());
        assert_eq!(t.details().len(), 2);
        // A session id with a space is not one.
        let mut t = T::new();
        t.resp("HTTP/1.1 200 OK\r\nMcp-Session-Id: a b\r\n");
        t.body(CAP_TOOLS_LIST);
        assert!(!t.confirmed());
    }

    #[test]
    fn batch_with_initialize_2025_03_26() {
        let mut t = T::new();
        t.body(
            r#"[{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"mcp","version":"0.1.0"}}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
        );
        assert!(t.confirmed());
        assert_eq!(
            t.s.inventory().methods,
            set(&["initialize", "notifications/initialized"])
        );
        // Two MCP methods are the same weak kind: not enough.
        let mut t = T::new();
        t.body(&format!(
            "[{CAP_INITIALIZED},{CAP_TOOLS_LIST},{CAP_TOOLS_CALL}]"
        ));
        assert!(!t.confirmed());
        assert_eq!(t.s.inventory().methods.len(), 3);
    }

    #[test]
    fn escapes_whitespace_and_key_order() {
        for body in [
            r#"{"jsonrpc":"2.0","id":3,"method":"tools\/call","params":{"name":"search"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"\u0074ools/call","params":{"name":"search"}}"#,
            r#"{"\u006asonrpc":"2.0","id":3,"method":"tools/call","params":{"\u006eame":"search"}}"#,
            "\u{feff}\r\n  {\n\t\"params\" : { \"name\" : \"search\" } ,\n \"method\" : \"tools/call\", \"id\" : 3 , \"jsonrpc\" : \"2.0\" }\n",
        ] {
            let mut t = T::new();
            t.resp("HTTP/1.1 200 OK\r\nmcp-session-id: e03460e6bdbe4ea0a43b3526cdac3b01\r\n");
            t.body(body);
            assert!(t.confirmed(), "{body}");
            assert_eq!(t.s.inventory().tools_called, set(&["search"]), "{body}");
        }
        // An escaped initialize is still strong proof.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","id":1,"method":"\u0069nitialize","params":{"\u0070rotocolVersion":"2025\u002d06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#);
        assert!(t.confirmed());
        // Key order in initialize.
        let mut t = T::new();
        t.body(r#"{"params":{"clientInfo":{"version":"1","name":"x"},"capabilities":{},"protocolVersion":"2025-06-18"},"method":"initialize","id":"abc","jsonrpc":"2.0"}"#);
        assert!(t.confirmed());
    }

    // ---- other protocols, negative -------------------------------------

    #[test]
    fn lsp_initialize_is_rejected() {
        let body = LSP_INIT.split_once("\n\n").unwrap().1;
        let mut t = T::new();
        t.ws(body);
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), Some("LSP"));
        t.ws(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#);
        t.ws(r#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///a.rs","languageId":"rust","version":1,"text":""}}}"#);
        t.reply(r#"{"jsonrpc":"2.0","id":0,"result":{"capabilities":{"textDocumentSync":2,"hoverProvider":true},"serverInfo":{"name":"rust-analyzer","version":"1"}}}"#);
        assert!(!t.confirmed());
        // Even an MCP-looking protocolVersion does not turn LSP into MCP.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","processId":null,"rootUri":null,"capabilities":{},"clientInfo":{"name":"x"}}}"#);
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), Some("LSP"));
        // LSP result shape alone.
        let mut t = T::new();
        t.reply(r#"{"jsonrpc":"2.0","id":0,"result":{"capabilities":{"completionProvider":{}}}}"#);
        assert_eq!(t.s.rejected_as(), Some("LSP"));
    }

    #[test]
    fn acp_initialize_is_rejected() {
        let mut t = T::new();
        t.ws(ACP_INIT).ws(ACP_INIT_RES);
        t.ws(r#"{"jsonrpc":"2.0","id":1,"method":"session/new","params":{"cwd":"/home/u","mcpServers":[]}}"#);
        t.ws(r#"{"jsonrpc":"2.0","id":2,"method":"session/prompt","params":{"sessionId":"s1","prompt":[{"type":"text","text":"hi"}]}}"#);
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), Some("ACP"));
        let mut t = T::new();
        t.reply(ACP_INIT_RES);
        assert_eq!(t.s.rejected_as(), Some("ACP"));
    }

    #[test]
    fn a2a_is_rejected_and_weak_signals_no_longer_confirm() {
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","id":"1","method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":"hello"}],"messageId":"9229e770"}}}"#);
        t.body(r#"{"jsonrpc":"2.0","id":"2","method":"tasks/get","params":{"id":"3f36680c","historyLength":10}}"#);
        t.body(r#"{"jsonrpc":"2.0","id":"3","method":"tasks/cancel","params":{"id":"3f36680c"}}"#);
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), Some("A2A"));
        // Two weak kinds would confirm an unrejected flow, not this one.
        t.resp("HTTP/1.1 200 OK\r\nMcp-Session-Id: abc\r\n")
            .body(CAP_TOOLS_LIST);
        assert!(!t.confirmed());
        assert!(t.details().is_empty());
        // Shared methods alone are no evidence.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","id":"2","method":"tasks/get","params":{"id":"x"}}"#);
        t.body(r#"{"jsonrpc":"2.0","id":"3","method":"ping"}"#);
        t.resp("HTTP/1.1 200 OK\r\nMcp-Session-Id: abc\r\n");
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), None);
    }

    #[test]
    fn ethereum_is_rejected() {
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":83}"#);
        t.reply(r#"{"id":83,"jsonrpc":"2.0","result":"0x4b7"}"#);
        t.body(r#"[{"jsonrpc":"2.0","method":"net_version","params":[],"id":1},{"jsonrpc":"2.0","method":"web3_clientVersion","params":[],"id":2}]"#);
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), Some("Ethereum JSON-RPC"));
    }

    #[test]
    fn llm_api_tools_array_is_not_mcp() {
        let mut t = T::new();
        t.req("POST /v1/chat/completions HTTP/1.1\r\nHost: api.openai.com\r\nContent-Type: application/json\r\n");
        t.body(r#"{"model":"gpt-4o","messages":[{"role":"user","content":"What's the weather in Paris?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"Get weather","parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}],"tool_choice":"auto"}"#);
        t.reply(r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}]},"finish_reason":"tool_calls"}]}"#);
        // Anthropic-style tools carry `input_schema`, and a tools array with
        // `inputSchema` but no JSON-RPC envelope proves nothing either.
        t.body(r#"{"model":"claude","tools":[{"name":"get_weather","input_schema":{"type":"object"}}]}"#);
        t.body(r#"{"tools":[{"name":"search","inputSchema":{"type":"object"}}]}"#);
        assert!(!t.confirmed());
        assert_eq!(t.s.rejected_as(), None);
        assert!(t.s.inventory().is_empty());
    }

    #[test]
    fn documents_that_merely_contain_mcp_are_not_mcp() {
        let mut t = T::new();
        t.reply(r#"<!doctype html><html><body><pre>{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}</pre></body></html>"#);
        t.reply(r#"{"docs":[{"jsonrpc":"2.0","method":"tools/call"}]}"#);
        t.reply(r#"[{"title":"example","body":{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}}]"#);
        // A JSON-RPC response of some other API whose result quotes MCP.
        t.reply(r#"{"jsonrpc":"2.0","id":9,"result":{"example":{"jsonrpc":"2.0","method":"tools/call","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}}}"#);
        assert!(!t.confirmed());
        assert!(t.s.inventory().is_empty());
    }

    #[test]
    fn near_miss_shapes_are_not_strong() {
        for body in [
            // No clientInfo.
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{}}}"#,
            // clientInfo without name.
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"version":"1"}}}"#,
            // Not a date.
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-13-01","capabilities":{},"clientInfo":{"name":"x"}}}"#,
            // capabilities not an object.
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":[],"clientInfo":{"name":"x"}}}"#,
            // Result without serverInfo.
            r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{}}}"#,
            // Empty tool list; tool without inputSchema; one bad entry.
            r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a"}]}}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a","inputSchema":{}},{"name":"b","inputSchema":"x"}]}}"#,
            // Other reverse-DNS namespaces, and the prefix in a value.
            r#"{"jsonrpc":"2.0","id":1,"method":"x/y","params":{"_meta":{"com.example/protocolVersion":"1"}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x/y","params":{"_meta":{"k":"io.modelcontextprotocol/x"}}}"#,
            // A result echoing the namespace but not the server identity.
            r#"{"jsonrpc":"2.0","id":1,"result":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        ] {
            let mut t = T::new();
            t.body(body);
            assert!(!t.confirmed(), "{body}");
        }
    }

    // ---- weak signal combinations --------------------------------------

    #[test]
    fn one_weak_signal_is_not_enough_two_kinds_are() {
        let mut t = T::new();
        t.body(CAP_TOOLS_CALL);
        assert!(!t.confirmed());
        assert!(t.details().is_empty());
        assert!(
            t.s.take_inventory_changed(),
            "inventory is kept before confirmation"
        );
        assert_eq!(t.s.inventory().tools_called, set(&["search"]));
        t.resp(CAP_INIT_RES_HEAD);
        assert!(t.confirmed());
        assert_eq!(
            t.details(),
            vec![
                (Signal::HttpJsonrpc, "tools/call \"search\"".to_owned()),
                (Signal::HttpHeader, "Mcp-Session-Id: <redacted>".to_owned()),
            ]
        );
        // Later evidence is handed out incrementally; duplicates never again.
        t.body(CAP_TOOLS_CALL);
        assert!(t.details().is_empty());
        t.body(CAP_TOOLS_LIST);
        assert_eq!(
            t.details(),
            vec![(Signal::HttpJsonrpc, "tools/list".to_owned())]
        );
    }

    #[test]
    fn legacy_http_sse_transport_from_capture() {
        // GET /sse stream: endpoint event, then results.
        let mut t = T::new();
        t.req("GET /sse HTTP/1.1\r\nHost: 127.0.0.1:18204\r\nAccept: text/event-stream\r\nCache-Control: no-store\r\n");
        t.sse(Some("endpoint"), CAP_SSE_ENDPOINT);
        assert!(!t.confirmed());
        t.sse(Some("message"), CAP_INIT_RES);
        assert!(t.confirmed());
        let ev = t.details();
        assert_eq!(
            ev.first(),
            Some(&(
                Signal::SseEndpoint,
                "event: endpoint /messages/?session_id=<redacted>".to_owned()
            ))
        );
        // Endpoint + an MCP method (two weak kinds) confirm without handshake.
        let mut t = T::new();
        t.sse(
            Some("endpoint"),
            "https://mcp.example.com/messages?sessionId=0b6c1f&api_key=SECRET#frag",
        );
        t.sse(None, CAP_TOOLS_LIST);
        assert!(t.confirmed());
        let ev = t.details();
        assert!(ev.contains(&(
            Signal::SseEndpoint,
            "event: endpoint https://mcp.example.com/messages?sessionId=<redacted>&api_key=<redacted>".to_owned()
        )));
        assert!(!format!("{ev:?}").contains("SECRET"));
        // Data that is not a URI reference is not an endpoint event.
        for data in ["hello world", "", "{\"jsonrpc\":\"2.0\"}", "ready", "/a b"] {
            let mut t = T::new();
            t.sse(Some("endpoint"), data).body(CAP_TOOLS_LIST);
            assert!(!t.confirmed(), "{data:?}");
        }
    }

    #[test]
    fn websocket_subprotocol_plus_method_confirms() {
        let up = "GET /ws HTTP/1.1\r\nHost: server.smithery.ai\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n";
        let mut t = T::new();
        t.req(up).resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: mcp\r\n");
        assert!(!t.confirmed(), "the subprotocol alone is weak");
        t.ws(CAP_TOOLS_LIST);
        assert!(t.confirmed());
        assert_eq!(
            t.details(),
            vec![
                (
                    Signal::WebsocketSubprotocol,
                    "Sec-WebSocket-Protocol: mcp".to_owned()
                ),
                (Signal::WebsocketJsonrpc, "tools/list".to_owned()),
            ]
        );
        // Not an upgrade: ignored. Other subprotocols: ignored.
        let mut t = T::new();
        t.req("GET /ws HTTP/1.1\r\nSec-WebSocket-Protocol: mcp\r\n")
            .ws(CAP_TOOLS_LIST);
        assert!(!t.confirmed());
        let mut t = T::new();
        t.req("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: graphql-ws, mcpx\r\n").ws(CAP_TOOLS_LIST);
        assert!(!t.confirmed());
        // Listed among others.
        let mut t = T::new();
        t.req("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: chat, mcp\r\n")
            .ws(CAP_TOOLS_LIST);
        assert!(t.confirmed());
    }

    #[test]
    fn oauth_discovery_is_supporting_only() {
        let mut t = T::new();
        t.resp("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\", scope=\"files:read\"\r\n");
        t.req("GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nMCP-Protocol-Version: 2025-06-18\r\nAccept: application/json\r\n");
        assert!(
            !t.confirmed(),
            "OAuth discovery + one weak kind is not proof"
        );
        t.body(CAP_INIT_REQ);
        assert!(t.confirmed());
        let ev = t.details();
        assert!(ev.contains(&(
            Signal::OauthDiscovery,
            "WWW-Authenticate: Bearer resource_metadata=\"…/.well-known/oauth-protected-resource…\"".to_owned()
        )));
        assert!(
            ev.contains(&(
                Signal::OauthDiscovery,
                "GET /.well-known/oauth-protected-resource… (MCP-Protocol-Version 2025-06-18)"
                    .to_owned()
            ))
        );
        // A well-known GET without the MCP header is ordinary OAuth.
        let mut t = T::new();
        t.req("GET /.well-known/oauth-protected-resource HTTP/1.1\r\n");
        t.resp("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\", resource_metadata=\"https://a/.well-known/oauth-protected-resource\"\r\n");
        t.body(CAP_INIT_REQ);
        assert!(
            t.details()
                .iter()
                .all(|(s, _)| *s != Signal::OauthDiscovery)
        );
    }

    #[test]
    fn rejected_session_confirmed_by_strong_proof() {
        // A gateway carrying both A2A and MCP.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","id":"1","method":"message/send","params":{}}"#);
        assert_eq!(t.s.rejected_as(), Some("A2A"));
        t.body(CAP_MODERN_TOOLS_LIST);
        assert!(t.confirmed());
        assert_eq!(
            t.s.rejected_as(),
            Some("A2A"),
            "the rejection is kept for the report"
        );
        // Strong header proof works too.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","method":"eth_chainId","params":[],"id":1}"#)
            .req(CAP_MODERN_HEAD);
        assert!(t.confirmed());
    }

    #[test]
    fn unknown_foreign_protocol_names_are_interned() {
        let mut s = sigs();
        s.jsonrpc
            .foreign_method_prefixes
            .push(("getblock".into(), "Bitcoin Core".into()));
        let mut t = T::with(&s);
        t.body(r#"{"jsonrpc":"2.0","id":1,"method":"getblockchaininfo","params":[]}"#);
        assert_eq!(t.s.rejected_as(), Some("Bitcoin Core"));
        assert_eq!(intern("lsp"), "LSP");
        let a = intern("Bitcoin Core");
        assert!(std::ptr::eq(a, intern("Bitcoin Core")), "interned once");
        assert_eq!(intern("bad\u{7}name"), "other JSON-RPC");
    }

    #[test]
    fn empty_signature_set_keeps_structural_proofs() {
        let mut t = T::with(&SignatureSet::default());
        t.body(CAP_TOOLS_CALL).resp(CAP_INIT_RES_HEAD);
        assert!(
            !t.confirmed(),
            "no method vocabulary: only the session header counts"
        );
        t.body(CAP_INIT_REQ);
        assert!(t.confirmed());
        let mut t = T::with(&SignatureSet::default());
        t.req(CAP_MODERN_HEAD);
        assert!(t.confirmed(), "header names fall back to the spec's");
        let mut t = T::with(&SignatureSet::default());
        t.body(CAP_MODERN_TOOLS_LIST);
        assert!(t.confirmed());
        let mut t = T::with(&SignatureSet::default());
        t.reply(CAP_TOOLS_LIST_RES);
        assert!(t.confirmed());
    }

    // ---- bounds and hostile input --------------------------------------

    #[test]
    fn deep_nesting_does_not_crash() {
        let mut t = T::new();
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"a\",\"arguments\":{}{}}}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        t.body(&deep);
        t.sse(None, &"{\"a\":".repeat(10_000));
        t.ws(&"[".repeat(10_000));
        assert!(!t.confirmed());
        assert!(t.s.inventory().is_empty());
    }

    #[test]
    fn huge_batch_and_inventory_caps() {
        let calls: Vec<String> = (0..10_000)
            .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"tool{i}"}}}}"#))
            .collect();
        let mut t = T::new();
        t.body(&format!("[{}]", calls.join(",")));
        // Only the first MAX_BATCH_MESSAGES messages are looked at.
        assert_eq!(
            t.s.inventory().tools_called.len(),
            jsonrpc::MAX_BATCH_MESSAGES.min(MAX_INVENTORY_ITEMS)
        );
        // Many payloads: each set stops at the cap; evidence stops too.
        for c in &calls[..200] {
            t.body(c);
        }
        for i in 0..200 {
            t.body(&format!(r#"{{"jsonrpc":"2.0","method":"x/m{i}"}}"#));
        }
        t.reply(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"tools":[{}]}}}}"#,
            (0..200)
                .map(|i| format!(r#"{{"name":"t{i}","inputSchema":{{}}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        ));
        t.resp(CAP_INIT_RES_HEAD);
        t.body(CAP_INIT_REQ);
        assert!(t.confirmed());
        let inv = t.s.inventory();
        assert_eq!(inv.tools_called.len(), MAX_INVENTORY_ITEMS);
        assert_eq!(inv.tools_listed.len(), MAX_INVENTORY_ITEMS);
        assert_eq!(inv.methods.len(), MAX_INVENTORY_ITEMS);
        let ev = t.details();
        assert!(ev.len() <= MAX_EVIDENCE, "{}", ev.len());
        // The confirming proofs made it in despite the flood of weak items.
        assert!(ev.iter().any(|(_, d)| d.starts_with("initialize request")));
        assert!(
            ev.iter()
                .any(|(_, d)| d.starts_with("tools/list result (200 tools)"))
        );
        // Fill the cap with distinct strong items: it holds at MAX_EVIDENCE,
        // while the inventory keeps following the traffic.
        for i in 0..100 {
            t.body(&format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"c{i}","version":"1"}}}}}}"#
            ));
        }
        let more = t.details();
        assert_eq!(ev.len() + more.len(), MAX_EVIDENCE);
        assert_eq!(t.s.inventory().client.as_deref(), Some("c99 1"));
        assert!(t.s.take_inventory_changed());
        t.reply(CAP_MODERN_DISCOVER_RES);
        assert!(t.s.take_inventory_changed());
        assert!(t.details().is_empty());
    }

    #[test]
    fn strings_are_sanitised() {
        let long = "n".repeat(1000);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"evil\u001b[31m\nname","version":"{long}"}}}}}}"#
        );
        let mut t = T::new();
        t.body(&body);
        t.body(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a\u0000b\r\nc"}}"#,
        );
        let client = t.s.inventory().client.clone().unwrap();
        assert!(client.starts_with("evil[31mname n"), "{client}");
        assert_eq!(client.chars().count(), MAX_FIELD_CHARS);
        assert_eq!(t.s.inventory().tools_called, set(&["abc"]));
        for (_, d) in t.details() {
            assert!(!d.chars().any(char::is_control), "{d:?}");
        }
        // Whitespace-only names are dropped.
        let mut t = T::new();
        t.body(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":" \t "}}"#);
        assert!(t.s.inventory().tools_called.is_empty());
    }

    #[test]
    fn inventory_changed_flag() {
        let mut t = T::new();
        assert!(!t.s.take_inventory_changed());
        t.body(CAP_INIT_REQ);
        assert!(t.s.take_inventory_changed());
        assert!(!t.s.take_inventory_changed());
        t.body(CAP_INIT_REQ);
        assert!(!t.s.take_inventory_changed(), "same values: no change");
        t.body(CAP_TOOLS_LIST);
        assert!(t.s.take_inventory_changed());
        t.reply(CAP_TOOLS_CALL_RES);
        assert!(!t.s.take_inventory_changed());
    }

    #[test]
    fn truncation_at_every_offset() {
        let payloads = [
            CAP_INIT_REQ,
            CAP_INIT_RES,
            CAP_MODERN_TOOLS_CALL,
            CAP_TOOLS_LIST_RES,
            ACP_INIT,
        ];
        for p in payloads {
            for i in 0..p.len() {
                let Some(cut) = p.get(..i) else { continue };
                let mut t = T::new();
                t.body(cut);
                t.sse(Some("message"), cut);
                t.sse(Some("endpoint"), cut);
                assert!(!t.confirmed(), "prefix {i} of {p}");
            }
        }
        let heads = [CAP_MODERN_HEAD, CAP_INIT_RES_HEAD];
        for h in heads {
            for i in 0..h.len() {
                let mut t = T::new();
                t.req(&h[..i]).resp(&h[..i]);
            }
        }
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        // Deterministic byte flips over real payloads (cheap fuzzing).
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let c = McpClassifier::new(&sigs());
        let alphabet = b"{}[]\",:\\u0123456789abcdefjsonrpc /-_";
        for p in [
            CAP_INIT_REQ,
            CAP_INIT_RES,
            CAP_MODERN_TOOLS_CALL,
            CAP_TOOLS_LIST_RES,
            LSP_INIT,
        ] {
            for _ in 0..300 {
                let mut b = p.as_bytes().to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let len = b.len() as u64;
                    let i = usize::try_from(next() % len).unwrap_or(0);
                    let ch = alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap_or(0)];
                    if let Some(x) = b.get_mut(i) {
                        *x = ch;
                    }
                }
                let mut s = McpSession::new();
                c.inspect_payload(&b, Direction::ClientToServer, Carrier::HttpBody, &mut s);
                let text = String::from_utf8_lossy(&b);
                c.inspect_sse_event(&sse(Some("endpoint"), &text), &mut s);
                let _ = s.take_new_evidence();
            }
        }
    }

    #[test]
    fn date_versions() {
        for ok in [
            "2024-11-05",
            "2025-03-26",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28",
            "2024-10-07",
        ] {
            assert!(is_date_version(ok), "{ok}");
        }
        for bad in [
            "",
            "2025-6-18",
            "2025-06-181",
            "2025-00-10",
            "2025-13-10",
            "2025-06-32",
            "2025/06/18",
            "１２３４-06-18",
            "abcd-ef-gh",
            "1",
        ] {
            assert!(!is_date_version(bad), "{bad}");
        }
        // A non-date revision listed in the signatures is accepted on headers.
        let mut s = sigs();
        s.jsonrpc.protocol_versions.push("draft-2027".into());
        let mut t = T::with(&s);
        t.req(
            "POST /mcp HTTP/1.1\r\nMCP-Protocol-Version: draft-2027\r\nMcp-Method: tools/list\r\n",
        );
        assert!(t.confirmed());
    }

    #[test]
    fn endpoint_redaction() {
        assert_eq!(
            redacted_endpoint(CAP_SSE_ENDPOINT).as_deref(),
            Some("/messages/?session_id=<redacted>")
        );
        assert_eq!(redacted_endpoint("/messages").as_deref(), Some("/messages"));
        assert_eq!(
            redacted_endpoint("/m?tok&a=1&&b=").as_deref(),
            Some("/m?<redacted>&a=<redacted>&&b=<redacted>")
        );
        assert_eq!(
            redacted_endpoint("messages?sessionId=1").as_deref(),
            Some("messages?sessionId=<redacted>")
        );
        assert_eq!(redacted_endpoint("javascript:alert(1)"), None);
        assert_eq!(redacted_endpoint(&format!("/{}", "a".repeat(5000))), None);
    }
}
