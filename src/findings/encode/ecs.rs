//! Elastic Common Schema 9.x: one alert document per finding record
//! (`event.kind: alert`). Field by field: docs/findings.md, "ECS". Facts
//! without an ECS field (JA4, offered ALPN list, verdict, MCP inventory,
//! evidence, every Community ID) are under the custom `shadowmcp.*`.

use super::ocsf::finding_uid;
use super::{
    enum_name, ip_protocol, list, mcp_inventory, non_empty, object, severity_name, summary,
    url_scheme, verdict_name,
};
use crate::findings::Transport;
use crate::findings::aggregate::Severity;
use crate::findings::output::FindingRecord;
use serde_json::{Value, json};

pub const ECS_VERSION: &str = "9.4.0";

/// `event.severity`: the numbers Elastic detection rules use for low,
/// medium and high; 1 for a sanctioned (informational) finding.
fn severity_number(s: Severity) -> u32 {
    match s {
        Severity::Info => 1,
        Severity::Low => 21,
        Severity::Medium => 47,
        Severity::High => 73,
    }
}

/// `network.protocol`: the application protocol, lower case.
fn app_protocol(t: Transport) -> &'static str {
    match t {
        Transport::Dns => "dns",
        Transport::Tls => "tls",
        Transport::Quic => "quic",
        Transport::StreamableHttp | Transport::Sse => "http",
        Transport::Http2 => "http2",
        Transport::Websocket => "websocket",
    }
}

/// One value as a string, several as an array (ECS fields may hold arrays).
fn one_or_many(items: &[String]) -> Option<Value> {
    match items {
        [] => None,
        [one] => Some(json!(one)),
        many => Some(json!(many)),
    }
}

/// The alert document of one record.
pub fn encode(r: &FindingRecord) -> Value {
    let observer = r.observer.as_ref();
    let tls = r.tls.as_ref();
    let mcp = &r.mcp;
    let mut related_ip = vec![json!(r.client.ip)];
    if let Some(ip) = r.server.ip.filter(|ip| *ip != r.client.ip) {
        related_ip.push(json!(ip));
    }
    let destination_address = r
        .server
        .name
        .clone()
        .or(r.server.ip.map(|ip| ip.to_string()));
    object([
        ("@timestamp", Some(json!(r.timestamp))),
        ("ecs", Some(json!({ "version": ECS_VERSION }))),
        ("message", Some(json!(summary(r)))),
        (
            "event",
            Some(json!({
                "kind": "alert",
                "category": ["network", "intrusion_detection"],
                "type": ["info"],
                "module": "shadowmcp",
                "dataset": "shadowmcp.finding",
                "severity": severity_number(r.severity),
                "created": r.timestamp,
                "start": r.first_seen,
                "end": r.last_seen,
            })),
        ),
        (
            "rule",
            Some(json!({
                "id": r.rule.id,
                "name": r.rule.name,
                "description": r.rule.description,
                "ruleset": "shadowmcp",
            })),
        ),
        (
            "source",
            Some(object([
                ("ip", Some(json!(r.client.ip))),
                ("address", Some(json!(r.client.ip.to_string()))),
                ("port", r.client.port.map(|p| json!(p))),
            ])),
        ),
        (
            "destination",
            Some(object([
                ("ip", r.server.ip.map(|ip| json!(ip))),
                ("port", r.server.port.map(|p| json!(p))),
                ("domain", r.server.name.as_ref().map(|n| json!(n))),
                ("address", destination_address.map(|a| json!(a))),
            ])),
        ),
        (
            "network",
            Some(object([
                ("community_id", r.community_id.as_ref().map(|c| json!(c))),
                ("transport", ip_protocol(r.transport).map(|(n, _)| json!(n))),
                ("protocol", Some(json!(app_protocol(r.transport)))),
                (
                    "type",
                    Some(json!(if r.client.ip.is_ipv4() {
                        "ipv4"
                    } else {
                        "ipv6"
                    })),
                ),
            ])),
        ),
        (
            "tls",
            tls.map(|t| {
                object([
                    (
                        "client",
                        t.server_name.as_ref().map(|s| json!({ "server_name": s })),
                    ),
                    ("version", t.version.as_ref().map(|v| json!(v))),
                    ("version_protocol", t.version.as_ref().map(|_| json!("tls"))),
                ])
            }),
        ),
        (
            "url",
            r.server.path.as_ref().map(|p| {
                object([
                    ("path", Some(json!(p))),
                    ("domain", r.server.name.as_ref().map(|n| json!(n))),
                    ("port", r.server.port.map(|p| json!(p))),
                    ("scheme", Some(json!(url_scheme(r.transport)))),
                ])
            }),
        ),
        (
            "observer",
            observer.map(|o| {
                object([
                    ("name", Some(json!(o.name))),
                    ("hostname", o.hostname.as_ref().map(|h| json!(h))),
                    ("type", Some(json!("sensor"))),
                    ("product", Some(json!("shadowmcp"))),
                    ("vendor", Some(json!("shadowmcp"))),
                    ("version", Some(json!(env!("CARGO_PKG_VERSION")))),
                    (
                        "ingress",
                        one_or_many(&o.interfaces).map(|n| json!({ "interface": { "name": n } })),
                    ),
                ])
            }),
        ),
        (
            "log",
            observer
                .and_then(|o| one_or_many(&o.files))
                .map(|p| json!({ "file": { "path": p } })),
        ),
        (
            "related",
            Some(object([
                ("ip", Some(Value::Array(related_ip))),
                ("hosts", r.server.name.as_ref().map(|n| json!([n]))),
            ])),
        ),
        (
            "shadowmcp",
            Some(object([
                ("finding_id", Some(json!(finding_uid(r)))),
                ("verdict", Some(json!(verdict_name(r.verdict)))),
                ("confidence", Some(json!(enum_name(&r.confidence)))),
                ("severity", Some(json!(severity_name(r.severity)))),
                ("transport", Some(json!(enum_name(&r.transport)))),
                ("count", Some(json!(r.count))),
                ("repeats", r.repeats.map(|n| json!(n))),
                ("sanctioned_by", r.sanctioned_by.as_ref().map(|s| json!(s))),
                ("vendor", r.server.vendor.as_ref().map(|v| json!(v))),
                ("community_ids", list(&r.community_ids)),
                (
                    "tls",
                    tls.map(|t| {
                        object([
                            ("ja4", t.ja4.as_ref().map(|j| json!(j))),
                            ("alpn", list(&t.alpn)),
                        ])
                    })
                    .and_then(non_empty),
                ),
                ("evidence", Some(json!(r.evidence))),
                ("mcp", mcp_inventory(mcp)),
            ])),
        ),
    ])
}
