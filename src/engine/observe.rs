//! Observations: what a conversation proved, with the flow's addresses and
//! Community ID, handed to the findings layer. Shared by every application
//! module (HTTP and WebSocket carry the same conversation state).

use super::context::{Ctx, FlowMeta, lock};
use crate::detect::hosts::HostClass;
use crate::detect::mcp::McpSession;
use crate::findings::{Evidence, McpInventory, Observation, Signal, Transport};
use crate::flow::PROTO_TCP;
use crate::flow::PROTO_UDP;
use crate::flow::community_id::community_id_v1;
use crate::proto::host::host_without_port;
use crate::proto::http1::Head;
use crate::proto::sse::{SseEvent, SseParser};
use crate::redact::redact_target;

/// What a cleartext conversation has shown so far.
#[derive(Debug, Default)]
pub(super) struct Conversation {
    pub(super) session: McpSession,
    /// The latest request head, as sent: its Host and target are
    /// normalised and redacted only when an observation is made. A request
    /// without Host is given the previous request's.
    pub(super) request: Option<Head>,
    pub(super) legacy_sse: bool,
    pub(super) websocket: bool,
    /// Carried by HTTP/2.
    pub(super) http2: bool,
    /// The known-server path check ran (once per connection).
    pub(super) host_checked: bool,
    pub(super) counted: bool,
}

impl Conversation {
    pub(super) fn raw_host(&self) -> Option<&str> {
        self.request.as_ref()?.header("host")
    }

    pub(super) fn raw_target(&self) -> Option<&str> {
        self.request.as_ref().map(Head::target)
    }

    pub(super) fn host(&self) -> Option<String> {
        self.raw_host().and_then(host_without_port)
    }

    pub(super) fn path(&self) -> Option<String> {
        self.raw_target().map(redact_target)
    }
}

/// Emit what a cleartext conversation proved since the last call.
pub(super) fn emit_conversation(ctx: &mut Ctx<'_>, meta: &FlowMeta, conv: &mut Conversation) {
    let evidence = conv.session.take_new_evidence();
    let changed = conv.session.take_inventory_changed();
    if !conv.session.is_confirmed() {
        if changed {
            emit_request_part(ctx, meta, conv);
        }
        return;
    }
    if evidence.is_empty() && !changed {
        return;
    }
    if !conv.counted {
        conv.counted = true;
        ctx.stats.mcp_sessions_confirmed += 1;
    }
    if evidence.iter().any(|e| e.signal == Signal::SseEndpoint) {
        conv.legacy_sse = true;
    }
    let transport = if conv.websocket {
        Transport::Websocket
    } else if conv.legacy_sse {
        Transport::Sse
    } else if conv.http2 {
        Transport::Http2
    } else {
        Transport::StreamableHttp
    };
    let name = conv.host().or_else(|| {
        lock(ctx.dns_cache)
            .lookup(meta.server, meta.ts)
            .map(str::to_owned)
    });
    let inventory = conv.session.inventory().clone();
    push_observation(
        ctx,
        meta,
        name,
        conv.path(),
        transport,
        evidence,
        Some(inventory),
    );
}

/// A POST whose body named MCP methods without proving MCP (the legacy
/// HTTP+SSE transport's requests, each possibly on its own connection): an
/// observation that joins the session whose event stream announced the
/// endpoint it went to (`Observation::joins_endpoint`), and is dropped
/// otherwise.
fn emit_request_part(ctx: &mut Ctx<'_>, meta: &FlowMeta, conv: &Conversation) {
    let is_post = conv
        .request
        .as_ref()
        .is_some_and(|h| h.method().eq_ignore_ascii_case("POST"));
    if !is_post || !conv.session.has_mcp_method() {
        return;
    }
    let Some(target) = conv.path() else {
        return;
    };
    let name = conv.host().or_else(|| {
        lock(ctx.dns_cache)
            .lookup(meta.server, meta.ts)
            .map(str::to_owned)
    });
    let evidence = conv.session.gathered_evidence().to_vec();
    let inventory = conv.session.inventory().clone();
    if let Some(o) = push_observation(
        ctx,
        meta,
        name,
        Some(target.clone()),
        Transport::StreamableHttp,
        evidence,
        Some(inventory),
    ) {
        o.joins_endpoint = Some(target);
    }
}

/// An observation of the flow `meta`; returned for the caller to complete
/// (the TLS fields of a ClientHello).
pub(super) fn push_observation<'o>(
    ctx: &'o mut Ctx<'_>,
    meta: &FlowMeta,
    server_name: Option<String>,
    path: Option<String>,
    transport: Transport,
    evidence: Vec<Evidence>,
    mcp: Option<McpInventory>,
) -> Option<&'o mut Observation> {
    let community_id = (meta.proto == PROTO_TCP || meta.proto == PROTO_UDP).then(|| {
        community_id_v1(
            ctx.cfg.community_id_seed,
            meta.client,
            meta.client_port,
            meta.server,
            meta.server_port,
            meta.proto,
        )
    });
    ctx.out.push(Observation {
        ts: meta.ts,
        flow_id: meta.id,
        client_ip: meta.client,
        client_port: Some(meta.client_port),
        server_ip: Some(meta.server),
        server_port: Some(meta.server_port),
        server_name,
        path,
        transport,
        community_id,
        evidence,
        mcp,
        tls: None,
        joins_endpoint: None,
    });
    ctx.out.last_mut()
}

/// Evidence that explains why a name matters.
pub(super) fn name_evidence(class: &HostClass<'_>, name: &str, out: &mut Vec<Evidence>) {
    if let Some(m) = class.known {
        let mut d = m.server.vendor.clone();
        if m.server.shared_host {
            d.push_str(" (shared host: name alone does not prove MCP)");
        }
        if !m.exact {
            d.push_str(&format!(" (pattern {})", m.server.host));
        }
        out.push(Evidence::new(Signal::KnownServer, d));
    }
    // The heuristic only adds something for names that are not on the list.
    if class.heuristic && class.known.is_none() {
        out.push(Evidence::new(
            Signal::HostnameHeuristic,
            format!("'mcp' label in {name}"),
        ));
    }
}

/// The response carries an event stream (`text/event-stream`).
pub(super) fn is_event_stream(head: &Head) -> bool {
    head.header("content-type").is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
    })
}

/// Bytes of a response event stream: each event classified into the
/// conversation (an `endpoint` event marks the legacy HTTP+SSE transport);
/// events and events dropped over the size bound counted.
pub(super) fn sse_data(
    ctx: &mut Ctx<'_>,
    sse: &mut SseParser,
    data: &[u8],
    conv: &mut Conversation,
) {
    let mut events: Vec<SseEvent> = Vec::new();
    let dropped = sse.dropped();
    sse.feed(data, &mut events);
    ctx.stats.sse_errors += sse.dropped().saturating_sub(dropped);
    for ev in &events {
        ctx.stats.sse_events += 1;
        if ev.event.as_deref() == Some("endpoint") {
            conv.legacy_sse = true;
        }
        ctx.detector
            .classifier
            .inspect_sse_event(ev, &mut conv.session);
    }
}
