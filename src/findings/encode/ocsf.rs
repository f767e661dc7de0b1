//! OCSF 1.7.0 Detection Finding (class_uid 2004, category Findings), one
//! event per finding record. Field by field: docs/findings.md, "OCSF".
//! Facts without an OCSF attribute (verdict, MCP inventory, evidence list,
//! ALPN, all Community IDs) go to `unmapped`.

use super::{epoch_ms, ip_protocol, list, mcp_inventory, object, summary, url_scheme};
use crate::findings::aggregate::{Confidence, Severity, Verdict};
use crate::findings::output::FindingRecord;
use serde_json::{Value, json};
use std::net::IpAddr;

pub const OCSF_VERSION: &str = "1.7.0";
pub const CATEGORY_UID: u32 = 2;
pub const CLASS_UID: u32 = 2004;

/// Create for a new finding; Update for a live roll-up (`repeats` > 0).
fn activity(r: &FindingRecord) -> (u32, &'static str) {
    if r.repeats.unwrap_or(0) > 0 {
        (2, "Update")
    } else {
        (1, "Create")
    }
}

/// A sanctioned server is informational whatever the confidence.
fn severity(r: &FindingRecord) -> (u32, &'static str) {
    match (r.verdict, r.severity) {
        (Verdict::Sanctioned, _) | (_, Severity::Info) => (1, "Informational"),
        (_, Severity::Low) => (2, "Low"),
        (_, Severity::Medium) => (3, "Medium"),
        (_, Severity::High) => (4, "High"),
    }
}

fn confidence(c: Confidence) -> (u32, &'static str) {
    match c {
        Confidence::Low => (1, "Low"),
        Confidence::Medium => (2, "Medium"),
        Confidence::High => (3, "High"),
    }
}

/// Stable across the emissions of one finding, so a SIEM can link updates:
/// rule, sensor, client and server.
pub fn finding_uid(r: &FindingRecord) -> String {
    let sensor = r.observer.as_ref().map_or("", |o| o.name.as_str());
    let server = match (&r.server.name, r.server.ip, r.server.port) {
        (Some(n), _, _) => n.clone(),
        (None, Some(ip), Some(p)) => std::net::SocketAddr::new(ip, p).to_string(),
        (None, Some(ip), None) => ip.to_string(),
        (None, None, _) => "-".into(),
    };
    format!("{}/{sensor}/{}/{server}", r.rule.id, r.client.ip)
}

fn ip_version(ip: IpAddr) -> u32 {
    if ip.is_ipv4() { 4 } else { 6 }
}

/// JA4 `a_b_c` and its sections.
fn ja4_fingerprint(ja4: &str) -> Value {
    let mut parts = ja4.splitn(3, '_');
    object([
        ("type_id", Some(json!(1))),
        ("type", Some(json!("JA4"))),
        ("value", Some(json!(ja4))),
        ("section_a", parts.next().map(|s| json!(s))),
        ("section_b", parts.next().map(|s| json!(s))),
        ("section_c", parts.next().map(|s| json!(s))),
    ])
}

fn evidence(r: &FindingRecord) -> Value {
    let proto = ip_protocol(r.transport);
    let tls = r.tls.as_ref();
    // `tls.version` is required in OCSF: without it the hello is described
    // by the destination host name and the JA4 list only.
    let tls_obj = tls.and_then(|t| {
        t.version.as_ref().map(|v| {
            object([
                ("version", Some(json!(v))),
                ("sni", t.server_name.as_ref().map(|s| json!(s))),
            ])
        })
    });
    let query = (r.transport == crate::findings::Transport::Dns)
        .then(|| r.server.name.as_ref().map(|n| json!({ "hostname": n })))
        .flatten();
    let url = r.server.path.as_ref().map(|p| {
        object([
            ("scheme", Some(json!(url_scheme(r.transport)))),
            ("hostname", r.server.name.as_ref().map(|n| json!(n))),
            ("port", r.server.port.map(|p| json!(p))),
            ("path", Some(json!(p))),
        ])
    });
    object([
        (
            "src_endpoint",
            Some(object([
                ("ip", Some(json!(r.client.ip))),
                ("port", r.client.port.map(|p| json!(p))),
            ])),
        ),
        (
            "dst_endpoint",
            Some(object([
                ("ip", r.server.ip.map(|ip| json!(ip))),
                ("port", r.server.port.map(|p| json!(p))),
                ("hostname", r.server.name.as_ref().map(|n| json!(n))),
            ])),
        ),
        (
            "connection_info",
            Some(object([
                ("community_uid", r.community_id.as_ref().map(|c| json!(c))),
                ("protocol_name", proto.map(|(n, _)| json!(n))),
                ("protocol_num", proto.map(|(_, n)| json!(n))),
                ("protocol_ver_id", Some(json!(ip_version(r.client.ip)))),
                // A passive sensor does not know which side is inside.
                ("direction_id", Some(json!(0))),
                ("direction", Some(json!("Unknown"))),
            ])),
        ),
        ("tls", tls_obj),
        (
            "ja4_fingerprint_list",
            tls.and_then(|t| t.ja4.as_deref())
                .map(|j| json!([ja4_fingerprint(j)])),
        ),
        ("query", query),
        ("url", url),
        ("data", Some(json!({ "evidence": r.evidence }))),
    ])
}

fn observables(r: &FindingRecord) -> Value {
    let mut v = vec![json!({
        "name": "device.ip", "type_id": 2, "type": "IP Address", "value": r.client.ip,
    })];
    if let Some(ip) = r.server.ip {
        v.push(json!({
            "name": "evidences[0].dst_endpoint.ip", "type_id": 2, "type": "IP Address", "value": ip,
        }));
    }
    if let Some(n) = &r.server.name {
        v.push(json!({
            "name": "evidences[0].dst_endpoint.hostname", "type_id": 1, "type": "Hostname", "value": n,
        }));
    }
    Value::Array(v)
}

fn unmapped(r: &FindingRecord) -> Value {
    let mcp = &r.mcp;
    object([
        ("verdict", Some(json!(r.verdict))),
        ("transport", Some(json!(r.transport))),
        ("vendor", r.server.vendor.as_ref().map(|v| json!(v))),
        ("sanctioned_by", r.sanctioned_by.as_ref().map(|s| json!(s))),
        ("repeats", r.repeats.map(|n| json!(n))),
        ("community_ids", list(&r.community_ids)),
        ("tls_alpn", r.tls.as_ref().and_then(|t| list(&t.alpn))),
        ("mcp", mcp_inventory(mcp)),
        (
            "observer_interfaces",
            r.observer.as_ref().and_then(|o| list(&o.interfaces)),
        ),
        (
            "observer_files",
            r.observer.as_ref().and_then(|o| list(&o.files)),
        ),
    ])
}

/// The Detection Finding event of one record.
pub fn encode(r: &FindingRecord) -> Value {
    let (activity_id, activity_name) = activity(r);
    let (severity_id, severity_name) = severity(r);
    let (confidence_id, confidence_name) = confidence(r.confidence);
    let time = epoch_ms(&r.timestamp);
    let first = epoch_ms(&r.first_seen);
    let last = epoch_ms(&r.last_seen);
    let observer = r.observer.as_ref();
    let sources: Vec<&str> = observer
        .map(|o| {
            o.interfaces
                .iter()
                .chain(&o.files)
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    let uid = finding_uid(r);
    let kind = match r.verdict {
        Verdict::Shadow => "Shadow MCP",
        Verdict::Sanctioned => "Sanctioned MCP",
    };
    object([
        ("activity_id", Some(json!(activity_id))),
        ("activity_name", Some(json!(activity_name))),
        ("category_uid", Some(json!(CATEGORY_UID))),
        ("category_name", Some(json!("Findings"))),
        ("class_uid", Some(json!(CLASS_UID))),
        ("class_name", Some(json!("Detection Finding"))),
        ("type_uid", Some(json!(CLASS_UID * 100 + activity_id))),
        (
            "type_name",
            Some(json!(format!("Detection Finding: {activity_name}"))),
        ),
        ("time", time.map(|t| json!(t))),
        ("timezone_offset", Some(json!(0))),
        ("start_time", first.map(|t| json!(t))),
        ("end_time", last.map(|t| json!(t))),
        ("count", Some(json!(r.count))),
        ("severity_id", Some(json!(severity_id))),
        ("severity", Some(json!(severity_name))),
        ("confidence_id", Some(json!(confidence_id))),
        ("confidence", Some(json!(confidence_name))),
        ("status_id", Some(json!(1))),
        ("status", Some(json!("New"))),
        ("is_alert", Some(json!(r.verdict == Verdict::Shadow))),
        ("message", Some(json!(summary(r)))),
        (
            "finding_info",
            Some(object([
                ("uid", Some(json!(uid))),
                ("title", Some(json!(r.rule.name))),
                ("desc", Some(json!(r.rule.description))),
                ("types", Some(json!([kind]))),
                ("first_seen_time", first.map(|t| json!(t))),
                ("last_seen_time", last.map(|t| json!(t))),
                (
                    "analytic",
                    Some(json!({
                        "uid": r.rule.id,
                        "name": r.rule.name,
                        "desc": r.rule.description,
                        "type_id": 1,
                        "type": "Rule",
                    })),
                ),
            ])),
        ),
        (
            "metadata",
            Some(object([
                ("version", Some(json!(OCSF_VERSION))),
                (
                    "product",
                    Some(json!({
                        "name": "shadowmcp",
                        "vendor_name": "shadowmcp",
                        "version": env!("CARGO_PKG_VERSION"),
                    })),
                ),
                ("event_code", Some(json!(r.rule.id))),
                ("correlation_uid", Some(json!(uid))),
                (
                    "reporter",
                    observer.map(|o| {
                        object([
                            ("name", Some(json!(o.name))),
                            ("hostname", o.hostname.as_ref().map(|h| json!(h))),
                        ])
                    }),
                ),
                (
                    "log_source",
                    (!sources.is_empty()).then(|| json!(sources.join(", "))),
                ),
            ])),
        ),
        (
            "device",
            Some(json!({ "ip": r.client.ip, "type_id": 0, "type": "Unknown" })),
        ),
        ("evidences", Some(json!([evidence(r)]))),
        ("observables", Some(observables(r))),
        ("unmapped", Some(unmapped(r))),
    ])
}
