//! MCP discovery on the wire: the requests a client makes to find MCP
//! servers (server cards, catalogs, the registry API), the documents that
//! answer them, and the DNS `_agent` TXT records of Agent Identity &
//! Discovery (AID). A discovery fetch shows interest in MCP, not a session;
//! the hosts the answers name are remembered ([`DiscoveredHosts`]) so that a
//! later connection to one of them is attributed to where it was found.
//!
//! Sources of the shapes: SEP-1649/SEP-2127 (MCP Server Cards:
//! `/.well-known/mcp.json`, `/.well-known/mcp/server-card.json`, the
//! `application/mcp-server-card+json` media type, `serverInfo`,
//! `transport.endpoint`, `remotes`), the MCP Registry API (`/v0/servers`,
//! `/v0.1/servers`: `servers[].server` in the `server.json` format, with
//! `remotes[].url`), the AI Catalog (`/.well-known/ai-catalog.json`,
//! `application/ai-catalog+json`) and AID (`v=aid1;uri=…;proto=mcp`, short
//! keys `u` and `p`).
//!
//! Bounds: documents over [`MAX_DOCUMENT_BYTES`] are not parsed; the walk
//! visits at most [`MAX_NODES`] JSON values to depth [`MAX_DEPTH`] and keeps
//! at most [`MAX_SERVERS`] servers and [`MAX_REMOTES`] remote URLs.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use super::mcp::sanitize;
use crate::proto::host::host_without_port;
use crate::redact::redact_target;

/// Largest discovery document parsed (a registry page of 100 servers is
/// well under this).
pub const MAX_DOCUMENT_BYTES: usize = 512 * 1024;
/// JSON values visited per document.
pub const MAX_NODES: usize = 50_000;
/// Nesting followed per document.
pub const MAX_DEPTH: usize = 12;
/// Servers kept per document.
pub const MAX_SERVERS: usize = 64;
/// Remote URLs kept per document.
pub const MAX_REMOTES: usize = 64;
/// Hosts remembered per engine by default (see [`DiscoveredHosts`]).
pub const DEFAULT_DISCOVERED_HOSTS: usize = 4096;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryKind {
    /// `/.well-known/mcp.json` (the first Server Card proposal).
    WellKnownMcp,
    /// `/.well-known/mcp/server-card.json`, or any URL fetched with
    /// `Accept: application/mcp-server-card+json` (`<mcp-url>/server-card`).
    ServerCard,
    /// `/.well-known/mcp/catalog.json`.
    Catalog,
    /// `/.well-known/ai-catalog.json` or `Accept: application/ai-catalog+json`.
    AiCatalog,
    /// The MCP Registry API: `/v0/servers`, `/v0.1/servers` (and below).
    Registry,
}

impl DiscoveryKind {
    pub fn label(self) -> &'static str {
        match self {
            DiscoveryKind::WellKnownMcp | DiscoveryKind::ServerCard => "server card",
            DiscoveryKind::Catalog => "MCP catalog",
            DiscoveryKind::AiCatalog => "AI catalog",
            DiscoveryKind::Registry => "MCP registry API",
        }
    }

    /// The request alone is worth reporting: the well-known names and media
    /// types are MCP's own. A registry path is generic (`/v0/servers` is a
    /// plausible path of any API): only a registry-shaped answer counts.
    pub fn request_is_evidence(self) -> bool {
        self != DiscoveryKind::Registry
    }
}

/// The discovery kind of a request (`GET` only), from its target and
/// `Accept` header.
pub fn request_kind(method: &str, target: &str, accept: Option<&str>) -> Option<DiscoveryKind> {
    if !method.eq_ignore_ascii_case("GET") {
        return None;
    }
    let path = origin_form(target).split(['?', '#']).next().unwrap_or("");
    let path = path.to_ascii_lowercase();
    let accept = accept.map(str::to_ascii_lowercase).unwrap_or_default();
    let kind = match path.as_str() {
        "/.well-known/mcp.json" => DiscoveryKind::WellKnownMcp,
        "/.well-known/mcp/server-card.json" => DiscoveryKind::ServerCard,
        "/.well-known/mcp/catalog.json" => DiscoveryKind::Catalog,
        "/.well-known/ai-catalog.json" => DiscoveryKind::AiCatalog,
        p if ["/v0/servers", "/v0.1/servers"]
            .iter()
            .any(|r| p == *r || p.strip_prefix(r).is_some_and(|s| s.starts_with('/'))) =>
        {
            DiscoveryKind::Registry
        }
        _ if accept.contains("application/mcp-server-card+json") => DiscoveryKind::ServerCard,
        _ if accept.contains("application/ai-catalog+json") => DiscoveryKind::AiCatalog,
        _ => return None,
    };
    Some(kind)
}

/// The path and query of a target in origin or absolute form.
fn origin_form(target: &str) -> &str {
    match target.find("://") {
        Some(i) => {
            let rest = target.get(i.saturating_add(3)..).unwrap_or_default();
            rest.find('/').and_then(|j| rest.get(j..)).unwrap_or("/")
        }
        None => target,
    }
}

/// What a discovery document names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiscoveryDoc {
    /// `name version` of each server described (sanitised).
    pub servers: Vec<String>,
    /// Remote (hosted) endpoint URLs, redacted like request targets.
    pub remotes: Vec<String>,
    /// Host names of the remotes (lower case, no port), deduplicated.
    pub hosts: Vec<String>,
}

impl DiscoveryDoc {
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty() && self.remotes.is_empty()
    }
}

/// Keys whose values describe how to reach a server: URLs found inside them
/// are remote endpoints. Elsewhere in a card, `url` is a website, a
/// repository or an icon, and is not taken.
const ENDPOINT_KEYS: &[&str] = &["remotes", "transport", "transports", "endpoints"];
/// Keys of a URL inside an endpoint description.
const URL_KEYS: &[&str] = &["url", "endpoint", "uri"];

/// Parse a discovery answer. `None` when it is not a JSON object or array,
/// is too large, or names no server and no remote.
pub fn parse_document(body: &[u8]) -> Option<DiscoveryDoc> {
    let body = super::jsonrpc::json_start(body);
    if body.len() > MAX_DOCUMENT_BYTES || !matches!(body.first(), Some(b'{' | b'[')) {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut w = Walk {
        doc: DiscoveryDoc::default(),
        nodes: 0,
    };
    w.value(&v, 0, false);
    (!w.doc.is_empty()).then_some(w.doc)
}

struct Walk {
    doc: DiscoveryDoc,
    nodes: usize,
}

impl Walk {
    fn value(&mut self, v: &Value, depth: usize, in_endpoint: bool) {
        self.nodes = self.nodes.saturating_add(1);
        if self.nodes > MAX_NODES || depth > MAX_DEPTH {
            return;
        }
        match v {
            Value::Object(m) => self.object(m, depth, in_endpoint),
            Value::Array(a) => {
                for x in a {
                    self.value(x, depth.saturating_add(1), in_endpoint);
                }
            }
            Value::String(s) if in_endpoint => self.remote(s),
            _ => {}
        }
    }

    fn object(&mut self, m: &Map<String, Value>, depth: usize, in_endpoint: bool) {
        self.server(m);
        // An AI catalog entry for MCP: its own `url` is the endpoint.
        let mcp_entry = ["protocol", "type", "kind"].iter().any(|k| {
            m.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|t| t.to_ascii_lowercase().contains("mcp"))
        });
        if in_endpoint || mcp_entry {
            for k in URL_KEYS {
                if let Some(s) = m.get(*k).and_then(Value::as_str) {
                    self.remote(s);
                }
            }
        }
        for (k, x) in m {
            let into_endpoint = in_endpoint || ENDPOINT_KEYS.contains(&k.as_str());
            if matches!(x, Value::Object(_) | Value::Array(_)) || into_endpoint {
                self.value(x, depth.saturating_add(1), into_endpoint);
            }
        }
    }

    /// A server description: `serverInfo` (server card), or `name` with
    /// `remotes`/`packages`/`transport` (registry `server.json`, card).
    fn server(&mut self, m: &Map<String, Value>) {
        let info = m.get("serverInfo").and_then(Value::as_object).or_else(|| {
            ["remotes", "packages", "transport"]
                .iter()
                .any(|k| m.contains_key(*k))
                .then_some(m)
        });
        let Some(info) = info else { return };
        let Some(name) = info.get("name").and_then(Value::as_str).and_then(sanitize) else {
            return;
        };
        let entry = match info
            .get("version")
            .and_then(Value::as_str)
            .and_then(sanitize)
        {
            Some(v) => format!("{name} {v}"),
            None => name,
        };
        if self.doc.servers.len() < MAX_SERVERS && !self.doc.servers.contains(&entry) {
            self.doc.servers.push(entry);
        }
    }

    fn remote(&mut self, url: &str) {
        let Some((shown, host)) = remote_url(url) else {
            return;
        };
        if self.doc.remotes.len() < MAX_REMOTES && !self.doc.remotes.contains(&shown) {
            self.doc.remotes.push(shown);
        }
        if self.doc.hosts.len() < MAX_REMOTES && !self.doc.hosts.contains(&host) {
            self.doc.hosts.push(host);
        }
    }
}

/// An absolute `http(s)`/`ws(s)` URL: redacted for display (scheme and
/// authority kept, path and query through [`redact_target`]) and its host.
pub fn remote_url(url: &str) -> Option<(String, String)> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if !["http", "https", "ws", "wss"].contains(&scheme.as_str()) || url.len() > 2048 {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    let path = rest.get(end..).unwrap_or_default();
    // Userinfo never goes into a report.
    let hostport = authority.rsplit('@').next().unwrap_or(authority);
    let host = host_without_port(hostport)?;
    let path = path.split('#').next().unwrap_or_default();
    let shown = format!("{scheme}://{hostport}{}", redact_target(path));
    Some((sanitize(&shown)?, host))
}

/// An AID record (`_agent.<domain>` TXT) that names an MCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// The endpoint URL, redacted.
    pub uri: String,
    /// Its host.
    pub host: String,
}

/// Parse the text of an `_agent` TXT record (its strings joined): `key=value`
/// pairs separated by `;`. `Some` only for `proto`/`p` = `mcp` with an
/// absolute endpoint URL.
pub fn parse_agent_record(owner: &str, text: &str) -> Option<AgentRecord> {
    let first = owner.split('.').next().unwrap_or_default();
    if !first.eq_ignore_ascii_case("_agent") {
        return None;
    }
    let mut proto = None;
    let mut uri = None;
    for pair in text.split(';').take(32) {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        match k.trim().to_ascii_lowercase().as_str() {
            "proto" | "p" => proto = Some(v.trim()),
            "uri" | "u" => uri = Some(v.trim()),
            _ => {}
        }
    }
    if !proto.is_some_and(|p| p.eq_ignore_ascii_case("mcp")) {
        return None;
    }
    let (uri, host) = remote_url(uri?)?;
    Some(AgentRecord { uri, host })
}

/// Hosts named by discovery answers, with where each was found: a bounded
/// map, oldest insertion evicted first (inserting again refreshes). One per
/// engine: the discovery answer and the connection it leads to are
/// usually seconds apart on the same client.
#[derive(Debug)]
pub struct DiscoveredHosts {
    capacity: usize,
    map: FxHashMap<Box<str>, (Box<str>, u64)>,
    order: VecDeque<(Box<str>, u64)>,
    generation: u64,
}

impl Default for DiscoveredHosts {
    fn default() -> Self {
        Self::new(DEFAULT_DISCOVERED_HOSTS)
    }
}

impl DiscoveredHosts {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: FxHashMap::default(),
            order: VecDeque::new(),
            generation: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Remember `host` (lower case) as named by `origin` (a short text).
    pub fn insert(&mut self, host: &str, origin: &str) {
        if host.is_empty() || host.len() > 255 {
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        let g = self.generation;
        let origin: Box<str> = origin.chars().take(256).collect::<String>().into();
        self.map.insert(host.into(), (origin, g));
        self.order.push_back((host.into(), g));
        while self.map.len() > self.capacity {
            let Some((h, g)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&h).is_some_and(|(_, cur)| *cur == g) {
                self.map.remove(&h);
            }
        }
        // Stale queue entries (re-inserted hosts) are dropped in bulk.
        if self.order.len() > self.capacity.saturating_mul(2).saturating_add(1) {
            let map = &self.map;
            self.order
                .retain(|(h, g)| map.get(h).is_some_and(|(_, cur)| cur == g));
        }
    }

    /// Where `host` was named, if it was.
    pub fn get(&self, host: &str) -> Option<&str> {
        self.map.get(host).map(|(o, _)| &**o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_kinds() {
        let k = |m, t, a| request_kind(m, t, a);
        assert_eq!(
            k("GET", "/.well-known/mcp.json", None),
            Some(DiscoveryKind::WellKnownMcp)
        );
        assert_eq!(
            k("GET", "http://h/.well-known/mcp/server-card.json?x=1", None),
            Some(DiscoveryKind::ServerCard)
        );
        assert_eq!(
            k("GET", "/.well-known/mcp/catalog.json", None),
            Some(DiscoveryKind::Catalog)
        );
        assert_eq!(
            k("GET", "/.well-known/ai-catalog.json", None),
            Some(DiscoveryKind::AiCatalog)
        );
        assert_eq!(
            k(
                "GET",
                "/mcp/server-card",
                Some("application/mcp-server-card+json")
            ),
            Some(DiscoveryKind::ServerCard)
        );
        assert_eq!(
            k("GET", "/v0.1/servers?cursor=abc", None),
            Some(DiscoveryKind::Registry)
        );
        assert_eq!(
            k("GET", "/v0/servers/io.x%2Fy/versions", None),
            Some(DiscoveryKind::Registry)
        );
        assert_eq!(k("GET", "/v0/serversx", None), None);
        assert_eq!(k("POST", "/.well-known/mcp.json", None), None);
        assert_eq!(k("GET", "/index.html", Some("text/html")), None);
    }

    #[test]
    fn server_card_names_server_and_remote_not_website() {
        let card = br#"{"$schema":"https://static.modelcontextprotocol.io/schemas/mcp-server-card/v1.json",
            "version":"1.0","protocolVersion":"2025-06-18",
            "serverInfo":{"name":"weather","version":"2.1.0"},
            "websiteUrl":"https://www.example.com","icons":[{"src":"https://cdn.example.com/i.png"}],
            "repository":{"url":"https://github.com/example/weather"},
            "transport":{"type":"streamable-http","endpoint":"https://mcp.example.com/mcp?key=sekrit"}}"#;
        let d = parse_document(card).expect("card");
        assert_eq!(d.servers, ["weather 2.1.0"]);
        assert_eq!(d.hosts, ["mcp.example.com"]);
        assert_eq!(d.remotes.len(), 1);
        assert!(!d.remotes[0].contains("sekrit"), "{:?}", d.remotes);
    }

    #[test]
    fn registry_page_names_every_remote() {
        let page = br#"{"servers":[
            {"server":{"name":"io.example/a","version":"1.0.0","remotes":[{"type":"streamable-http","url":"https://a.example.net/mcp"}]},"_meta":{}},
            {"server":{"name":"io.example/b","version":"0.2.0","remotes":[{"type":"sse","url":"https://user:pw@b.example.org:8443/sse"}]}},
            {"server":{"name":"io.example/c","version":"3","packages":[{"registryType":"npm","identifier":"c"}]}}],
            "metadata":{"nextCursor":"x","count":3}}"#;
        let d = parse_document(page).expect("page");
        assert_eq!(
            d.servers,
            ["io.example/a 1.0.0", "io.example/b 0.2.0", "io.example/c 3"]
        );
        assert_eq!(d.hosts, ["a.example.net", "b.example.org"]);
        assert!(
            d.remotes.iter().all(|r| !r.contains("pw")),
            "{:?}",
            d.remotes
        );
    }

    #[test]
    fn documents_that_name_nothing_are_none() {
        assert_eq!(parse_document(br#"{"error":"not found"}"#), None);
        assert_eq!(parse_document(b"<html></html>"), None);
        assert_eq!(parse_document(br#"{"url":"https://example.com"}"#), None);
        let deep = "[".repeat(5000);
        assert_eq!(parse_document(deep.as_bytes()), None);
    }

    #[test]
    fn agent_records() {
        let r = parse_agent_record(
            "_agent.example.test",
            "v=aid1;uri=https://agent.example.test/mcp;proto=mcp;auth=pat",
        )
        .expect("record");
        assert_eq!(r.host, "agent.example.test");
        let r = parse_agent_record("_agent.example.test", "v=aid1;u=https://x.example/m;p=mcp");
        assert_eq!(r.map(|r| r.host).as_deref(), Some("x.example"));
        assert_eq!(
            parse_agent_record("_agent.example.test", "v=aid1;u=https://x.example/;p=a2a"),
            None
        );
        assert_eq!(
            parse_agent_record("_dmarc.example.test", "v=aid1;u=https://x.example/;p=mcp"),
            None
        );
    }

    #[test]
    fn discovered_hosts_are_bounded_and_refreshed() {
        let mut d = DiscoveredHosts::new(2);
        d.insert("a.example", "card 1");
        d.insert("b.example", "card 2");
        d.insert("a.example", "card 3");
        d.insert("c.example", "card 4");
        assert_eq!(d.len(), 2);
        assert_eq!(d.get("b.example"), None, "oldest insertion goes first");
        assert_eq!(d.get("a.example"), Some("card 3"));
        for i in 0..10_000 {
            d.insert(&format!("h{i}.example"), "x");
        }
        assert_eq!(d.len(), 2);
        assert!(d.order.len() <= 5);
    }
}
