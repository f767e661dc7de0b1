//! Rendering findings: JSON Lines (the format documented in docs/findings.md)
//! and an aligned text table for analysts.

use super::aggregate::{Assessment, Confidence, Finding, Rule, Severity, Verdict};
use super::{Evidence, Micros, Observer, TlsInfo, Transport};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 UTC with microseconds.
pub fn format_ts(ts: Micros) -> String {
    let t = if ts >= 0 {
        UNIX_EPOCH + Duration::from_micros(ts.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_micros(ts.unsigned_abs())
    };
    humantime::format_rfc3339_micros(t).to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRef {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerRef {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub name: Option<String>,
    pub vendor: Option<String>,
    /// Request path seen in cleartext (redacted).
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct McpRef {
    pub protocol_version: Option<String>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub methods: Vec<String>,
    /// Tool names listed by the server or called by the client.
    pub tools: Vec<String>,
    pub tools_called: Vec<String>,
    /// Remote endpoint URLs named by discovery answers (redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<String>,
}

/// One finding as written to sinks. Field names are the documented interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingRecord {
    pub timestamp: String,
    pub verdict: Verdict,
    pub severity: Severity,
    pub confidence: Confidence,
    pub rule: Rule,
    pub client: ClientRef,
    pub server: ServerRef,
    pub transport: Transport,
    /// The ClientHello of the flow shown (TLS and QUIC findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    pub evidence: Vec<Evidence>,
    pub mcp: McpRef,
    pub community_id: Option<String>,
    /// Community IDs of the earliest distinct flows (at most
    /// `aggregate::MAX_COMMUNITY_IDS`; `count` is the number of flows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub community_ids: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanctioned_by: Option<String>,
    /// Live sensor only: flows of this (client, server, rule) suppressed since
    /// the previous emission (0 on the first one; a roll-up carries the count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u64>,
    /// The sensor that made the finding, when the caller named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observer: Option<Observer>,
}

impl FindingRecord {
    /// `timestamp` is when the finding was made: in offline analysis the
    /// packet time of its first evidence, so output is reproducible.
    pub fn new(f: &Finding, a: &Assessment, timestamp: Micros) -> Self {
        let mut tools: Vec<String> = f
            .mcp
            .tools_listed
            .union(&f.mcp.tools_called)
            .cloned()
            .collect();
        tools.sort();
        FindingRecord {
            timestamp: format_ts(timestamp),
            verdict: a.verdict,
            severity: a.severity,
            confidence: a.confidence,
            rule: a.rule,
            client: ClientRef {
                ip: f.client_ip,
                port: f.client_port,
            },
            server: ServerRef {
                ip: f.server_ip,
                port: f.server_port,
                name: f.server_name.clone(),
                vendor: a.vendor.clone(),
                path: f.path.clone(),
            },
            transport: f.transport,
            tls: f.tls.clone(),
            evidence: f.evidence.iter().cloned().collect(),
            mcp: McpRef {
                protocol_version: f.mcp.protocol_version.clone(),
                client: f.mcp.client.clone(),
                server: f.mcp.server.clone(),
                methods: f.mcp.methods.iter().cloned().collect(),
                tools,
                tools_called: f.mcp.tools_called.iter().cloned().collect(),
                remotes: f.mcp.remotes.iter().cloned().collect(),
            },
            community_id: f.community_id.clone(),
            community_ids: f.community_ids.iter().map(|(_, c)| c.clone()).collect(),
            first_seen: format_ts(f.first_seen),
            last_seen: format_ts(f.last_seen),
            count: f.count,
            sanctioned_by: a.sanctioned_by.clone(),
            repeats: None,
            observer: None,
        }
    }

    /// Names the sensor that made the finding (`observer` in the JSON).
    pub fn with_observer(mut self, observer: &Observer) -> Self {
        self.observer = Some(observer.clone());
        self
    }
}

pub fn write_json_lines(w: &mut dyn Write, records: &[FindingRecord]) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *w, r)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

fn cell(s: &str, width: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(width).collect();
    if s.chars().count() > width && width > 1 {
        out.pop();
        out.push('…');
    }
    out
}

/// An aligned table, one line per finding, then the evidence of each.
pub fn write_text(w: &mut dyn Write, records: &[FindingRecord]) -> io::Result<()> {
    if records.is_empty() {
        writeln!(w, "No findings.")?;
        return Ok(());
    }
    writeln!(
        w,
        "{:<10} {:<6} {:<8} {:<22} {:<34} {:<14} {:<15} {:<10} {:<24} {:>5}",
        "VERDICT",
        "CONF",
        "RULE",
        "CLIENT",
        "SERVER",
        "VENDOR",
        "TRANSPORT",
        "PROTOCOL",
        "CLIENT APP",
        "FLOWS"
    )?;
    for r in records {
        let server = match (&r.server.name, r.server.ip, r.server.port) {
            (Some(n), _, Some(p)) => format!("{n}:{p}"),
            (Some(n), _, None) => n.clone(),
            // An IPv6 address in brackets, so its port reads as one.
            (None, Some(ip), Some(p)) => std::net::SocketAddr::new(ip, p).to_string(),
            (None, Some(ip), None) => ip.to_string(),
            (None, None, _) => "-".into(),
        };
        let transport = serde_json::to_value(r.transport)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        writeln!(
            w,
            "{:<10} {:<6} {:<8} {:<22} {:<34} {:<14} {:<15} {:<10} {:<24} {:>5}",
            format!("{:?}", r.verdict).to_lowercase(),
            format!("{:?}", r.confidence).to_lowercase(),
            r.rule.id,
            cell(&r.client.ip.to_string(), 22),
            cell(&server, 34),
            cell(r.server.vendor.as_deref().unwrap_or("-"), 14),
            transport.unwrap_or_default(),
            cell(r.mcp.protocol_version.as_deref().unwrap_or("-"), 10),
            cell(r.mcp.client.as_deref().unwrap_or("-"), 24),
            r.count,
        )?;
    }
    writeln!(w)?;
    for (i, r) in records.iter().enumerate() {
        let server = r
            .server
            .name
            .clone()
            .or(r.server.ip.map(|i| i.to_string()))
            .unwrap_or_default();
        writeln!(
            w,
            "[{}] {} -> {} — {} ({})",
            i + 1,
            r.client.ip,
            server,
            r.rule.name,
            r.rule.id
        )?;
        writeln!(
            w,
            "    first seen {}  last seen {}  community id {}",
            r.first_seen,
            r.last_seen,
            r.community_id.as_deref().unwrap_or("-")
        )?;
        if !r.mcp.methods.is_empty() {
            writeln!(w, "    methods: {}", r.mcp.methods.join(", "))?;
        }
        if !r.mcp.tools.is_empty() {
            writeln!(w, "    tools: {}", r.mcp.tools.join(", "))?;
        }
        if let Some(s) = &r.mcp.server {
            writeln!(w, "    server implementation: {s}")?;
        }
        if let Some(s) = &r.sanctioned_by {
            writeln!(w, "    sanctioned by allowlist entry {s}")?;
        }
        for e in &r.evidence {
            let sig = serde_json::to_value(e.signal)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            writeln!(w, "    - {sig}: {}", e.detail)?;
        }
    }
    Ok(())
}
