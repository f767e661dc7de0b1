//! Aggregation of observations into one finding per (client IP, server), and
//! the assessment of each finding: verdict, confidence, rule and severity.

use super::{Evidence, McpInventory, Micros, Observation, Signal, Transport};
use crate::detect::hosts::Detector;
use crate::detect::mcp::MAX_INVENTORY_ITEMS;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Evidence items kept per finding.
pub const MAX_EVIDENCE: usize = 32;
/// Distinct flow ids remembered per finding for `count`; beyond this the count
/// still grows by observation but may over-count flows.
const MAX_TRACKED_FLOWS: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
}

/// Detection rules. Ids are stable: alert routing and suppression key on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub name: &'static str,
}

pub mod rules {
    use super::Rule;
    pub const HTTP_SESSION: Rule = Rule {
        id: "SMCP-001",
        name: "MCP session over cleartext Streamable HTTP",
    };
    pub const SSE_SESSION: Rule = Rule {
        id: "SMCP-002",
        name: "MCP session over the legacy HTTP+SSE transport",
    };
    pub const WEBSOCKET_SESSION: Rule = Rule {
        id: "SMCP-003",
        name: "MCP session over WebSocket",
    };
    pub const HTTP_KNOWN_PATH: Rule = Rule {
        id: "SMCP-004",
        name: "Cleartext request to a published MCP endpoint of a known server",
    };
    pub const TLS_KNOWN: Rule = Rule {
        id: "SMCP-010",
        name: "TLS/QUIC connection to a known MCP server",
    };
    pub const TLS_SHARED: Rule = Rule {
        id: "SMCP-011",
        name: "TLS/QUIC connection to a shared host that also serves MCP",
    };
    pub const TLS_HEURISTIC: Rule = Rule {
        id: "SMCP-012",
        name: "TLS/QUIC connection to an MCP-like host name",
    };
    pub const DNS_KNOWN: Rule = Rule {
        id: "SMCP-020",
        name: "DNS lookup of a known MCP server",
    };
    pub const DNS_HEURISTIC: Rule = Rule {
        id: "SMCP-021",
        name: "DNS lookup of an MCP-like host name",
    };
    pub const ALL: [Rule; 9] = [
        HTTP_SESSION,
        SSE_SESSION,
        WEBSOCKET_SESSION,
        HTTP_KNOWN_PATH,
        TLS_KNOWN,
        TLS_SHARED,
        TLS_HEURISTIC,
        DNS_KNOWN,
        DNS_HEURISTIC,
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
    /// Time of the observation whose flow is shown.
    shown_ts: Micros,
    flows: FxHashSet<u64>,
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
            shown_ts: o.ts,
            flows: FxHashSet::default(),
        }
    }

    /// Fold one observation in. The flow endpoints shown are those of the
    /// strongest transport seen (a cleartext session beats a DNS lookup).
    pub fn add(&mut self, o: &Observation) {
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
            self.mcp.merge(inv, MAX_INVENTORY_ITEMS);
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
        } else if heuristic {
            (Medium, rules::TLS_HEURISTIC)
        } else if shared {
            (Low, rules::TLS_SHARED)
        } else {
            (Low, rules::TLS_HEURISTIC)
        }
    } else if dedicated {
        (Medium, rules::DNS_KNOWN)
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
    pub fn into_sorted(self) -> Vec<Finding> {
        let mut v: Vec<Finding> = self.findings.into_values().collect();
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
