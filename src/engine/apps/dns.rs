//! DNS over UDP and TCP: questions and answers naming known or
//! MCP-looking servers are observations, and their answers fill the shared
//! name cache that later names a TLS or HTTP flow by its address.

use super::super::buffer::Next;
use super::super::context::{Ctx, FlowMeta, lock};
use super::super::observe::name_evidence;
use crate::decode::{self, Transport as L4};
use crate::detect::discovery;
use crate::detect::dns_cache::DnsCache;
use crate::detect::hosts::Detector;
use crate::findings::{Evidence, McpInventory, Micros, Observation, Signal, Transport};
use crate::flow::community_id::community_id_v1;
use crate::proto::dns;
use std::net::IpAddr;
use std::sync::Mutex;

/// One DNS message over UDP.
pub(in crate::engine) fn datagram(ctx: &mut Ctx<'_>, meta: &FlowMeta, payload: &[u8]) {
    match dns::parse_message(payload) {
        Ok(msg) => on_dns(ctx, meta, &msg),
        Err(_) => ctx.stats.dns_errors += 1,
    }
}

/// DNS over TCP: length-prefixed messages, either direction.
pub(super) fn stream_data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
) -> Next {
    let Some(buf) = pending.get_mut(dir) else {
        return Next::Stay;
    };
    buf.extend_from_slice(data);
    let (msgs, used) = dns::split_tcp_messages(buf);
    for m in msgs {
        match dns::parse_message(m) {
            Ok(msg) => on_dns(ctx, meta, &msg),
            Err(_) => ctx.stats.dns_errors += 1,
        }
    }
    buf.drain(..used.min(buf.len()));
    if buf.len() > 65_537 {
        return Next::Done;
    }
    Next::Stay
}

fn on_dns(ctx: &mut Ctx<'_>, meta: &FlowMeta, msg: &dns::DnsMessage) {
    ctx.stats.dns_messages += 1;
    let resolved = if msg.is_response {
        msg.resolved_addresses()
    } else {
        Vec::new()
    };
    // Names worth reporting: the questions, and names reached through CNAME
    // chains (`assistant.corp.example` CNAME `mcp.linear.app`). Bounded.
    let mut names: Vec<&str> = msg
        .questions
        .iter()
        .take(4)
        .map(|q| q.name.as_str())
        .collect();
    for n in resolved.iter().flat_map(|r| r.names.iter()) {
        if names.len() >= 16 {
            break;
        }
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for name in names {
        let class = ctx.detector.reportable_host(name);
        // A host an MCP discovery answer named earlier (this engine's
        // table offline, the sensor's live).
        let discovered = ctx
            .discovered
            .lock()
            .ok()
            .and_then(|t| t.get(name).map(str::to_owned));
        if class.is_none() && discovered.is_none() {
            continue;
        }
        let mut evidence = Vec::new();
        match msg.questions.iter().find(|q| q.name == name) {
            Some(q) => evidence.push(Evidence::new(
                Signal::DnsQuery,
                format!("{} {name}", qtype_name(q.qtype)),
            )),
            None => {
                let alias = resolved
                    .iter()
                    .find(|r| r.names.iter().any(|n| n == name))
                    .and_then(|r| r.names.first())
                    .map_or("", String::as_str);
                evidence.push(Evidence::new(
                    Signal::DnsQuery,
                    format!("{alias} is an alias (CNAME) of {name}"),
                ));
            }
        }
        let mut first_addr = None;
        let addrs: Vec<String> = resolved
            .iter()
            .filter(|r| r.names.iter().any(|n| n == name))
            .take(8)
            .map(|r| {
                first_addr.get_or_insert(r.addr);
                r.addr.to_string()
            })
            .collect();
        if !addrs.is_empty() {
            evidence.push(Evidence::new(
                Signal::DnsQuery,
                format!("{name} answered {}", addrs.join(", ")),
            ));
        }
        if msg
            .answers
            .iter()
            .any(|a| matches!(&a.data, dns::RData::Svcb(s) if s.ech) && a.name == name)
        {
            evidence.push(Evidence::new(
                Signal::Ech,
                format!("{name} publishes an ECH config (HTTPS record)"),
            ));
        }
        if let Some(origin) = discovered {
            evidence.push(Evidence::new(
                Signal::DiscoveredHost,
                format!("{name} was named by {origin}"),
            ));
        }
        if let Some(class) = class {
            name_evidence(&class, name, &mut evidence);
        }
        // The flow's client is the querier; the server of the finding is the
        // resolved address (if seen), not the DNS resolver.
        push_dns_observation(ctx, meta, first_addr, name.to_owned(), evidence);
    }
    agent_records(ctx, meta, msg);
    remember_answers(ctx.detector, ctx.dns_cache, &resolved, meta.ts);
}

/// Agent Identity & Discovery: an `_agent.<domain>` TXT answer with
/// `proto=mcp` names an MCP endpoint. Its host is remembered for the
/// connections that follow, and the lookup is an observation of interest
/// in MCP for the endpoint's host.
fn agent_records(ctx: &mut Ctx<'_>, meta: &FlowMeta, msg: &dns::DnsMessage) {
    if !msg.is_response {
        return;
    }
    for a in msg.answers.iter().take(16) {
        let dns::RData::Txt(text) = &a.data else {
            continue;
        };
        let Some(rec) = discovery::parse_agent_record(&a.name, text) else {
            continue;
        };
        if let Ok(mut t) = ctx.discovered.lock() {
            t.insert(&rec.host, &format!("the AID record {}", a.name));
        }
        let evidence = vec![Evidence::new(
            Signal::McpDiscovery,
            format!("TXT {}: proto=mcp, uri {}", a.name, rec.uri),
        )];
        let inventory = McpInventory {
            remotes: std::iter::once(rec.uri).collect(),
            ..McpInventory::default()
        };
        push_dns_observation(ctx, meta, None, rec.host, evidence);
        if let Some(o) = ctx.out.last_mut() {
            o.mcp = Some(inventory);
        }
    }
}

/// Store the addresses of notable names in the DNS cache. Prefer a name on
/// the known-server list (the question, not the CDN target it aliases), then
/// any other notable name.
fn remember_answers(
    detector: &Detector,
    cache: &Mutex<DnsCache>,
    resolved: &[dns::ResolvedAddress],
    ts: Micros,
) {
    for r in resolved {
        let known = r
            .names
            .iter()
            .find(|n| detector.signatures.match_host(n).is_some());
        if let Some(name) =
            known.or_else(|| r.names.iter().find(|n| detector.classify_host(n).is_some()))
        {
            lock(cache).insert(r.addr, name, r.ttl, ts);
        }
    }
}

/// For a reader that hands packets to several engines: store the DNS answers
/// of a frame in the shared cache right away, so that a connection read
/// later cannot be looked up before the engine holding the DNS flow caught
/// up. Engines store the same answers again (idempotent).
pub fn prime_dns_cache(
    detector: &Detector,
    cache: &Mutex<DnsCache>,
    ts: Micros,
    linktype: i32,
    frame: &[u8],
) {
    let Ok(p) = decode::decode(linktype, frame) else {
        return;
    };
    let L4::Udp {
        sport: 53, payload, ..
    } = p.transport
    else {
        return;
    };
    if let Ok(msg) = dns::parse_message(payload)
        && msg.is_response
    {
        remember_answers(detector, cache, &msg.resolved_addresses(), ts);
    }
}

fn push_dns_observation(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    server_ip: Option<IpAddr>,
    name: String,
    evidence: Vec<Evidence>,
) {
    ctx.out.push(Observation {
        ts: meta.ts,
        flow_id: meta.id,
        client_ip: meta.client,
        client_port: Some(meta.client_port),
        server_ip,
        server_port: None,
        server_name: Some(name),
        path: None,
        transport: Transport::Dns,
        // The DNS exchange's own flow (querier ↔ resolver), to pivot to DNS logs.
        community_id: Some(community_id_v1(
            ctx.cfg.community_id_seed,
            meta.client,
            meta.client_port,
            meta.server,
            meta.server_port,
            meta.proto,
        )),
        evidence,
        mcp: None,
        tls: None,
        joins_endpoint: None,
    });
}

fn qtype_name(t: u16) -> String {
    match t {
        dns::TYPE_A => "A".into(),
        dns::TYPE_AAAA => "AAAA".into(),
        dns::TYPE_CNAME => "CNAME".into(),
        dns::TYPE_HTTPS => "HTTPS".into(),
        dns::TYPE_SVCB => "SVCB".into(),
        dns::TYPE_TXT => "TXT".into(),
        other => format!("TYPE{other}"),
    }
}
