//! Aggregation of observations into one finding per (client IP, server), and
//! the assessment of each finding: verdict, confidence, rule and severity.

use super::{Evidence, McpInventory, Micros, Observation, Signal, TlsInfo, Transport};
use crate::detect::hosts::Detector;
use crate::detect::mcp::MAX_INVENTORY_ITEMS;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Evidence items kept per finding.
pub const MAX_EVIDENCE: usize = 32;
/// Distinct flow ids remembered per finding for `count`; beyond this the count
/// still grows by observation but may over-count flows.
const MAX_TRACKED_FLOWS: usize = 4096;
/// Requests waiting for the event stream that announced their endpoint
/// (`Observation::joins_endpoint`), per finding; beyond this they are dropped.
pub const MAX_PENDING_PARTS: usize = 64;
/// Community IDs listed per finding: those of its earliest distinct flows.
/// `count` keeps the number of flows.
pub const MAX_COMMUNITY_IDS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Shadow,
    Sanctioned,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

/// `as_str` and `Display` spell a unit enum as its JSON does (`high`), for
/// logs and labels (a test checks they agree with serde).
macro_rules! json_spelling {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$v => $s),+
                }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
json_spelling!(Verdict { Shadow => "shadow", Sanctioned => "sanctioned" });
json_spelling!(Confidence { Low => "low", Medium => "medium", High => "high" });
json_spelling!(Severity { Info => "info", Low => "low", Medium => "medium", High => "high" });

/// Detection rules. Ids are stable: alert routing and suppression key on them.
/// Serialized as `{"id", "name"}`; read back by id (an unknown id is an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
    /// One sentence on what the rule matched (SIEM formats carry it).
    #[serde(skip)]
    pub description: &'static str,
}

impl Rule {
    pub fn by_id(id: &str) -> Option<Rule> {
        rules::ALL.into_iter().find(|r| r.id == id)
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            id: String,
        }
        let w = Wire::deserialize(d)?;
        Rule::by_id(&w.id)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rule id {:?}", w.id)))
    }
}

pub mod rules {
    use super::Rule;
    pub const HTTP_SESSION: Rule = Rule {
        id: "SMCP-001",
        name: "MCP session over cleartext Streamable HTTP",
        description: "A cleartext HTTP exchange carried MCP JSON-RPC messages or MCP headers (Streamable HTTP transport).",
    };
    pub const SSE_SESSION: Rule = Rule {
        id: "SMCP-002",
        name: "MCP session over the legacy HTTP+SSE transport",
        description: "An SSE stream announced an MCP message endpoint or carried MCP JSON-RPC messages (legacy HTTP+SSE transport).",
    };
    pub const WEBSOCKET_SESSION: Rule = Rule {
        id: "SMCP-003",
        name: "MCP session over WebSocket",
        description: "A WebSocket connection negotiated the mcp subprotocol or carried MCP JSON-RPC messages.",
    };
    pub const HTTP_KNOWN_PATH: Rule = Rule {
        id: "SMCP-004",
        name: "Cleartext request to a published MCP endpoint of a known server",
        description: "A cleartext HTTP request went to the path a known MCP server publishes as its endpoint.",
    };
    pub const TLS_KNOWN: Rule = Rule {
        id: "SMCP-010",
        name: "TLS/QUIC connection to a known MCP server",
        description: "A TLS or QUIC ClientHello named a host on the known MCP server list (SNI, or a DNS answer for the address).",
    };
    pub const TLS_SHARED: Rule = Rule {
        id: "SMCP-011",
        name: "TLS/QUIC connection to a shared host that also serves MCP",
        description: "A TLS or QUIC connection went to a known host that serves MCP next to other APIs.",
    };
    pub const TLS_HEURISTIC: Rule = Rule {
        id: "SMCP-012",
        name: "TLS/QUIC connection to an MCP-like host name",
        description: "A TLS or QUIC connection went to a host whose name looks like an MCP server.",
    };
    pub const DISCOVERY: Rule = Rule {
        id: "SMCP-005",
        name: "MCP discovery: server card, catalog, registry or AID record",
        description: "A client fetched an MCP server card, catalog or registry page, or looked up an Agent Identity & Discovery record naming an MCP endpoint: interest in MCP, not a session.",
    };
    pub const TLS_DISCOVERED: Rule = Rule {
        id: "SMCP-013",
        name: "TLS/QUIC connection to a host named by MCP discovery",
        description: "A TLS or QUIC ClientHello named a host that an MCP discovery answer seen earlier gave as an MCP endpoint.",
    };
    pub const DNS_KNOWN: Rule = Rule {
        id: "SMCP-020",
        name: "DNS lookup of a known MCP server",
        description: "A DNS lookup asked for a host on the known MCP server list.",
    };
    pub const DNS_HEURISTIC: Rule = Rule {
        id: "SMCP-021",
        name: "DNS lookup of an MCP-like host name",
        description: "A DNS lookup asked for a host whose name looks like an MCP server.",
    };
    pub const DNS_DISCOVERED: Rule = Rule {
        id: "SMCP-022",
        name: "DNS lookup of a host named by MCP discovery",
        description: "A DNS lookup asked for a host that an MCP discovery answer seen earlier gave as an MCP endpoint.",
    };
    pub const ALL: [Rule; 12] = [
        HTTP_SESSION,
        SSE_SESSION,
        WEBSOCKET_SESSION,
        HTTP_KNOWN_PATH,
        DISCOVERY,
        TLS_KNOWN,
        TLS_SHARED,
        TLS_HEURISTIC,
        TLS_DISCOVERED,
        DNS_KNOWN,
        DNS_HEURISTIC,
        DNS_DISCOVERED,
    ];
}

/// Aggregation state of one (client, server) pair.
#[derive(Debug, Clone)]
pub struct Finding {
    pub client_ip: IpAddr,
    pub client_port: Option<u16>,
    pub server_ip: Option<IpAddr>,
    pub server_port: Option<u16>,
    pub server_name: Option<String>,
    pub path: Option<String>,
    pub transport: Transport,
    pub community_id: Option<String>,
    pub evidence: BTreeSet<Evidence>,
    pub mcp: McpInventory,
    pub first_seen: Micros,
    pub last_seen: Micros,
    pub count: u64,
    /// The ClientHello shown: that of the strongest transport, earliest first.
    pub tls: Option<TlsInfo>,
    /// Community IDs of the earliest distinct flows with the time each was
    /// first seen, sorted, at most [`MAX_COMMUNITY_IDS`].
    pub community_ids: Vec<(Micros, String)>,
    /// Time of the observation whose flow is shown.
    shown_ts: Micros,
    /// Rank of the observation whose ClientHello is shown.
    tls_rank: Option<(Transport, std::cmp::Reverse<Micros>)>,
    /// (time, flow) of the observation each inventory scalar (protocol
    /// version, client, server) was taken from.
    inventory_at: [(Micros, u64); 3],
    flows: FxHashSet<u64>,
    /// An observation that stands on its own was added: only such a finding
    /// is reported.
    pub proven: bool,
    /// Requests to an endpoint no event stream of this finding announced
    /// (yet), at most [`MAX_PENDING_PARTS`].
    parts: Vec<Observation>,
}

impl Finding {
    pub(crate) fn new(o: &Observation) -> Self {
        Self {
            client_ip: o.client_ip,
            client_port: o.client_port,
            server_ip: o.server_ip,
            server_port: o.server_port,
            server_name: o.server_name.clone(),
            path: o.path.clone(),
            transport: o.transport,
            community_id: o.community_id.clone(),
            evidence: BTreeSet::new(),
            mcp: McpInventory::default(),
            first_seen: o.ts,
            last_seen: o.ts,
            count: 0,
            tls: None,
            community_ids: Vec::new(),
            shown_ts: o.ts,
            tls_rank: None,
            inventory_at: [(Micros::MIN, 0); 3],
            flows: FxHashSet::default(),
            proven: false,
            parts: Vec::new(),
        }
    }

    /// Keeps the [`MAX_COMMUNITY_IDS`] IDs first seen earliest. The result
    /// does not depend on arrival order: an ID evicted here was first seen no
    /// earlier than every kept one, and the kept maximum only decreases.
    fn add_community_id(&mut self, ts: Micros, cid: &str) {
        let ids = &mut self.community_ids;
        if let Some(e) = ids.iter_mut().find(|(_, c)| c == cid) {
            e.0 = e.0.min(ts);
        } else if ids.len() < MAX_COMMUNITY_IDS {
            ids.push((ts, cid.to_owned()));
        } else if ids
            .last()
            .is_some_and(|(t, c)| (ts, cid) < (*t, c.as_str()))
        {
            ids.pop();
            ids.push((ts, cid.to_owned()));
        } else {
            return;
        }
        ids.sort_unstable();
    }

    /// Add one observation. A request that joins an endpoint
    /// (`Observation::joins_endpoint`) is folded in once an event stream of
    /// this finding announced that endpoint, whichever arrives first; the
    /// result does not depend on the order.
    pub fn add(&mut self, o: &Observation) {
        if let Some(target) = &o.joins_endpoint {
            if self.announces(target) {
                self.fold(o);
            } else if self.parts.len() < MAX_PENDING_PARTS {
                self.parts.push(o.clone());
            }
            return;
        }
        self.proven = true;
        self.fold(o);
        if !self.parts.is_empty() && o.evidence.iter().any(|e| e.signal == Signal::SseEndpoint) {
            let parts = std::mem::take(&mut self.parts);
            let (joined, waiting): (Vec<_>, Vec<_>) = parts.into_iter().partition(|p| {
                p.joins_endpoint
                    .as_deref()
                    .is_some_and(|t| self.announces(t))
            });
            self.parts = waiting;
            for p in &joined {
                self.fold(p);
            }
        }
    }

    /// An `endpoint` event of this finding named the request target
    /// `target` (both redacted alike; an absolute URL is compared by its
    /// path and query).
    fn announces(&self, target: &str) -> bool {
        let target = origin_form(target);
        self.evidence.iter().any(|e| {
            e.signal == Signal::SseEndpoint
                && e.detail
                    .strip_prefix("event: endpoint ")
                    .is_some_and(|uri| origin_form(uri) == target)
        })
    }

    /// Fold one observation in. The flow endpoints shown are those of the
    /// strongest transport seen (a cleartext session beats a DNS lookup).
    fn fold(&mut self, o: &Observation) {
        if self.count == 0 {
            // Nothing folded yet (the finding was made from a request still
            // waiting for its endpoint): start from this observation.
            let parts = std::mem::take(&mut self.parts);
            let proven = self.proven;
            *self = Finding::new(o);
            self.parts = parts;
            self.proven = proven;
        }
        self.first_seen = self.first_seen.min(o.ts);
        self.last_seen = self.last_seen.max(o.ts);
        // The flow shown is the earliest one of the strongest transport, so
        // the result does not depend on the order observations arrive in
        // (several workers).
        let stronger =
            o.transport > self.transport || (o.transport == self.transport && o.ts < self.shown_ts);
        if stronger {
            self.transport = o.transport;
            self.shown_ts = o.ts;
            self.client_port = o.client_port;
            self.server_port = o.server_port;
            self.community_id.clone_from(&o.community_id);
            if o.path.is_some() {
                self.path.clone_from(&o.path);
            }
        }
        if o.server_ip.is_some() && (stronger || self.server_ip.is_none()) {
            self.server_ip = o.server_ip;
        }
        if self.path.is_none() {
            self.path.clone_from(&o.path);
        }
        if self.server_name.is_none() {
            self.server_name.clone_from(&o.server_name);
        }
        for e in &o.evidence {
            if self.evidence.len() >= MAX_EVIDENCE {
                break;
            }
            self.evidence.insert(e.clone());
        }
        if let Some(inv) = &o.mcp {
            self.merge_inventory(inv, (o.ts, o.flow_id));
        }
        if let Some(t) = &o.tls {
            let rank = Some((o.transport, std::cmp::Reverse(o.ts)));
            if rank > self.tls_rank {
                self.tls_rank = rank;
                self.tls = Some(t.clone());
            }
        }
        if let Some(cid) = &o.community_id {
            self.add_community_id(o.ts, cid);
        }
        if self.flows.len() < MAX_TRACKED_FLOWS {
            if self.flows.insert(o.flow_id) {
                self.count += 1;
            }
        } else if !self.flows.contains(&o.flow_id) {
            self.count += 1;
        }
    }

    pub fn has(&self, s: Signal) -> bool {
        self.evidence.iter().any(|e| e.signal == s)
    }

    /// Sets are united; each scalar is the value of the latest observation
    /// (by time, then flow) that has one, so the result does not depend on
    /// the order observations arrive in (several workers).
    fn merge_inventory(&mut self, inv: &McpInventory, at: (Micros, u64)) {
        let scalars = [
            (&mut self.mcp.protocol_version, &inv.protocol_version),
            (&mut self.mcp.client, &inv.client),
            (&mut self.mcp.server, &inv.server),
        ];
        for ((dst, src), taken) in scalars.into_iter().zip(self.inventory_at.iter_mut()) {
            if src.is_some() && at >= *taken {
                dst.clone_from(src);
                *taken = at;
            }
        }
        self.mcp.merge_sets(inv, MAX_INVENTORY_ITEMS);
    }
}

/// The path and query of a request target or URL (`http://h:1/m?x` → `/m?x`).
fn origin_form(uri: &str) -> &str {
    match uri.find("://") {
        Some(i) => {
            let rest = uri.get(i.saturating_add(3)..).unwrap_or_default();
            rest.find('/').and_then(|j| rest.get(j..)).unwrap_or("/")
        }
        None => uri,
    }
}

/// The result of assessing a finding against signatures and allowlist.
#[derive(Debug, Clone)]
pub struct Assessment {
    pub verdict: Verdict,
    pub confidence: Confidence,
    pub severity: Severity,
    pub rule: Rule,
    pub vendor: Option<String>,
    /// The allowlist entry that sanctions the server.
    pub sanctioned_by: Option<String>,
}

/// Decide confidence and rule from the evidence. Protocol proof beats any
/// name; a dedicated known MCP host seen in a handshake is high; names shared
/// with ordinary APIs, and heuristics, are weaker (docs/findings.md).
pub fn assess(f: &Finding, det: &Detector) -> Assessment {
    let name = f.server_name.as_deref();
    let known = name.and_then(|n| det.signatures.match_host(n));
    let heuristic = name.is_some_and(|n| det.signatures.heuristic_match(n));
    let vendor = known.map(|m| m.server.vendor.clone());
    let dedicated = known.is_some_and(|m| !m.server.shared_host && !m.server.context_only);
    let shared = known.is_some_and(|m| m.server.shared_host && !m.server.context_only);
    let proof = f.evidence.iter().any(|e| e.signal.is_protocol_proof());
    let handshake = f.has(Signal::TlsSni) || f.has(Signal::QuicSni) || f.has(Signal::DnsAnswerIp);
    use Confidence::*;
    let (confidence, rule) = if proof {
        let rule = match f.transport {
            Transport::Websocket => rules::WEBSOCKET_SESSION,
            Transport::Sse => rules::SSE_SESSION,
            _ => rules::HTTP_SESSION,
        };
        (High, rule)
    } else if f.has(Signal::HttpPath) {
        (
            if dedicated { High } else { Medium },
            rules::HTTP_KNOWN_PATH,
        )
    } else if handshake {
        if dedicated {
            (High, rules::TLS_KNOWN)
        } else if f.has(Signal::DiscoveredHost) {
            (Medium, rules::TLS_DISCOVERED)
        } else if heuristic {
            (Medium, rules::TLS_HEURISTIC)
        } else if shared {
            (Low, rules::TLS_SHARED)
        } else {
            (Low, rules::TLS_HEURISTIC)
        }
    } else if f.has(Signal::McpDiscovery) {
        // An answer that names an MCP server or endpoint; a request alone
        // (or one answered by something else) only shows interest.
        let named = f.mcp.server.is_some() || !f.mcp.remotes.is_empty();
        (if named { Medium } else { Low }, rules::DISCOVERY)
    } else if dedicated {
        (Medium, rules::DNS_KNOWN)
    } else if f.has(Signal::DiscoveredHost) {
        (Low, rules::DNS_DISCOVERED)
    } else if shared {
        (Low, rules::DNS_KNOWN)
    } else {
        (Low, rules::DNS_HEURISTIC)
    };
    let sanctioned_by = det.allowlist.matches(name, f.server_ip).map(str::to_owned);
    let verdict = if sanctioned_by.is_some() {
        Verdict::Sanctioned
    } else {
        Verdict::Shadow
    };
    let severity = match (verdict, confidence) {
        (Verdict::Sanctioned, _) => Severity::Info,
        (_, High) => Severity::High,
        (_, Medium) => Severity::Medium,
        (_, Low) => Severity::Low,
    };
    Assessment {
        verdict,
        confidence,
        severity,
        rule,
        vendor,
        sanctioned_by,
    }
}

/// Key of a finding: the client address and the server's name, or its
/// address and port when no name is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) client: IpAddr,
    pub(crate) server: String,
}

impl Key {
    /// A named server is one server whatever its port; without a name, one
    /// address can host several servers, so the port is part of the key.
    pub(crate) fn of(o: &Observation) -> Option<Key> {
        let server = match (&o.server_name, o.server_ip, o.server_port) {
            (Some(n), _, _) => n.clone(),
            (None, Some(ip), Some(port)) => std::net::SocketAddr::new(ip, port).to_string(),
            (None, Some(ip), None) => ip.to_string(),
            (None, None, _) => return None,
        };
        Some(Key {
            client: o.client_ip,
            server,
        })
    }
}

/// Collects findings for one run. Bounded: beyond `max_findings` distinct
/// pairs, new pairs are counted in `dropped` and not stored.
#[derive(Debug)]
pub struct Aggregator {
    findings: FxHashMap<Key, Finding>,
    max_findings: usize,
    pub dropped: u64,
}

impl Aggregator {
    pub fn new(max_findings: usize) -> Self {
        Self {
            findings: FxHashMap::default(),
            max_findings,
            dropped: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.findings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn add(&mut self, o: &Observation) {
        let Some(key) = Key::of(o) else { return };
        if let Some(f) = self.findings.get_mut(&key) {
            f.add(o);
            return;
        }
        if self.findings.len() >= self.max_findings {
            self.dropped += 1;
            return;
        }
        let mut f = Finding::new(o);
        f.add(o);
        self.findings.insert(key, f);
    }

    /// Findings in a stable order: first seen, then client, then server.
    /// Findings made only of requests that joined no session are left out.
    pub fn into_sorted(self) -> Vec<Finding> {
        let mut v: Vec<Finding> = self.findings.into_values().filter(|f| f.proven).collect();
        v.sort_by(|a, b| {
            (
                a.first_seen,
                a.client_ip,
                &a.server_name,
                a.server_ip,
                a.server_port,
            )
                .cmp(&(
                    b.first_seen,
                    b.client_ip,
                    &b.server_name,
                    b.server_ip,
                    b.server_port,
                ))
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs spell the enums as the JSON does (`confidence=high`).
    #[test]
    fn display_is_the_json_spelling() {
        fn json<T: Serialize>(v: T) -> String {
            serde_json::to_value(v)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
        for v in [Verdict::Shadow, Verdict::Sanctioned] {
            assert_eq!(v.to_string(), json(v));
        }
        for c in [Confidence::Low, Confidence::Medium, Confidence::High] {
            assert_eq!(c.to_string(), json(c));
        }
        for s in [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
        ] {
            assert_eq!(s.to_string(), json(s));
        }
    }

    fn obs(ts: Micros, flow: u64, transport: Transport, ja4: Option<&str>) -> Observation {
        Observation {
            ts,
            flow_id: flow,
            client_ip: "10.1.4.7".parse().expect("ip"),
            client_port: Some(40000),
            server_ip: Some("198.51.100.7".parse().expect("ip")),
            server_port: Some(443),
            server_name: Some("mcp.example.com".into()),
            path: None,
            transport,
            community_id: Some(format!("1:flow{flow}")),
            evidence: vec![Evidence::new(Signal::TlsSni, "mcp.example.com")],
            mcp: None,
            tls: ja4.map(|j| TlsInfo {
                ja4: Some(j.into()),
                ..Default::default()
            }),
            joins_endpoint: None,
        }
    }

    fn fold(obs: &[Observation]) -> Finding {
        let mut f = Finding::new(&obs[0]);
        for o in obs {
            f.add(o);
        }
        f
    }

    #[test]
    fn community_ids_are_the_earliest_flows_whatever_the_order() {
        let all: Vec<Observation> = (0..100u64)
            .map(|i| obs(i as Micros * 10, i, Transport::Tls, None))
            .collect();
        let forward = fold(&all);
        let mut rev = all.clone();
        rev.reverse();
        let backward = fold(&rev);
        // A shuffled order (a fixed permutation: 37 is coprime with 100).
        let shuffled: Vec<Observation> = (0..100).map(|i| all[(i * 37) % 100].clone()).collect();
        let mixed = fold(&shuffled);
        let want: Vec<String> = (0..MAX_COMMUNITY_IDS)
            .map(|i| format!("1:flow{i}"))
            .collect();
        for f in [&forward, &backward, &mixed] {
            let got: Vec<String> = f.community_ids.iter().map(|(_, c)| c.clone()).collect();
            assert_eq!(got, want);
            assert_eq!(f.count, 100, "every flow counted");
        }
        // The same flow seen again adds nothing.
        let mut again = forward.clone();
        again.add(&all[0]);
        assert_eq!(again.community_ids, forward.community_ids);
    }

    #[test]
    fn tls_fields_are_those_of_the_strongest_then_earliest_hello() {
        let a = obs(20, 1, Transport::Tls, Some("late"));
        let b = obs(10, 2, Transport::Tls, Some("early"));
        let q = obs(30, 3, Transport::Quic, Some("quic"));
        let dns = obs(0, 4, Transport::Dns, None);
        let ja4 = |f: &Finding| f.tls.as_ref().and_then(|t| t.ja4.clone());
        assert_eq!(
            ja4(&fold(&[a.clone(), b.clone()])).as_deref(),
            Some("early")
        );
        assert_eq!(
            ja4(&fold(&[b.clone(), a.clone()])).as_deref(),
            Some("early")
        );
        assert_eq!(
            ja4(&fold(&[q.clone(), a.clone(), dns.clone()])).as_deref(),
            Some("quic")
        );
        assert_eq!(ja4(&fold(&[dns])), None);
    }

    /// A legacy-SSE session: the event stream (endpoint announced, proof)
    /// and POSTs on their own connections that only name methods. The POSTs
    /// to the announced endpoint join whatever the order; one to another
    /// path does not; POSTs alone make no finding.
    #[test]
    fn requests_join_the_stream_that_announced_their_endpoint_in_any_order() {
        let stream = {
            let mut o = obs(10, 1, Transport::Sse, None);
            o.path = Some("/sse".into());
            o.evidence = vec![
                Evidence::new(
                    Signal::SseEndpoint,
                    "event: endpoint /messages/?session_id=<redacted>",
                ),
                Evidence::new(Signal::SseJsonrpc, "initialize result"),
            ];
            o
        };
        let part = |ts, flow, target: &str, method: &str| {
            let mut o = obs(ts, flow, Transport::StreamableHttp, None);
            o.path = Some(target.into());
            o.joins_endpoint = Some(target.into());
            o.evidence = vec![Evidence::new(Signal::HttpJsonrpc, method)];
            o.mcp = Some(McpInventory {
                methods: [method.to_owned()].into_iter().collect(),
                ..McpInventory::default()
            });
            o
        };
        let list = part(20, 2, "/messages/?session_id=<redacted>", "tools/list");
        let call = part(30, 3, "/messages/?session_id=<redacted>", "tools/call");
        let other = part(40, 4, "/other?session_id=<redacted>", "tools/call");
        let orders = [
            vec![stream.clone(), list.clone(), call.clone(), other.clone()],
            vec![call.clone(), other.clone(), list.clone(), stream.clone()],
            vec![list.clone(), stream.clone(), other.clone(), call.clone()],
        ];
        let mut seen = Vec::new();
        for order in orders {
            let mut agg = Aggregator::new(10);
            for o in &order {
                agg.add(o);
            }
            let v = agg.into_sorted();
            assert_eq!(v.len(), 1);
            let f = &v[0];
            assert_eq!(f.count, 3, "the stream and two POSTs");
            assert_eq!(
                f.mcp.methods.iter().map(String::as_str).collect::<Vec<_>>(),
                ["tools/call", "tools/list"]
            );
            assert_eq!(f.transport, Transport::Sse);
            assert_eq!(f.path.as_deref(), Some("/sse"));
            assert_eq!((f.first_seen, f.last_seen), (10, 30));
            seen.push(format!(
                "{:?} {:?} {:?}",
                f.evidence, f.community_ids, f.mcp
            ));
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        // Requests alone are no finding.
        let mut agg = Aggregator::new(10);
        agg.add(&list);
        agg.add(&call);
        assert!(agg.into_sorted().is_empty());
    }
}
