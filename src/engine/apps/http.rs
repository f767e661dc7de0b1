//! HTTP/1.x connections: both directions' parsers, the conversation they
//! carry (request heads, bodies, SSE events) classified as MCP, the
//! known-server path check, the switches to WebSocket and to a CONNECT
//! tunnel, and the idle form a connection takes between messages.

use super::super::EngineConfig;
use super::super::buffer::feed_buffered;
use super::super::context::{Ctx, FlowMeta};
use super::super::observe::{
    Conversation, emit_conversation, is_event_stream, push_observation, sse_data,
};
use super::super::pool::PooledBlock;
use crate::detect::discovery::{self, DiscoveryKind};
use crate::detect::mcp::{Carrier, Direction};
use crate::findings::{Evidence, McpInventory, Signal, Transport};
use crate::proto::host::host_part;
use crate::proto::http1::{Head, HttpEvent, HttpIdle, HttpStream, Side};
use crate::proto::sse::SseParser;
use crate::signatures::hostmatch::HostBuf;

/// What an HTTP connection turned into.
pub(super) enum Switch {
    Stay,
    /// Both directions upgraded to WebSocket.
    WebSocket,
    /// `Upgrade: h2c` accepted (101): HTTP/2 from here on.
    Http2,
    /// A 2xx answer to CONNECT: a tunnel through a proxy.
    Tunnel,
}

#[derive(Debug)]
pub(crate) struct HttpApp {
    pub(super) req: HttpStream,
    pub(super) resp: HttpStream,
    pub(super) conv: Conversation,
    /// The current response is `text/event-stream`.
    pub(super) sse: Option<Box<SseParser>>,
    /// A WebSocket upgrade was requested by the client.
    pub(super) ws_requested: bool,
    /// An HTTP/2 upgrade (`Upgrade: h2c`) was requested by the client.
    pub(super) h2c_requested: bool,
    /// `Sec-WebSocket-Extensions` of the 101 response.
    pub(super) ws_extensions: Option<Box<str>>,
    /// Per direction: the parser reported a protocol switch.
    pub(super) upgraded: [bool; 2],
    /// The latest request was CONNECT (a proxy tunnel may follow).
    pub(super) connect: bool,
    /// The response being read answers a GET and is not an event stream:
    /// a document (a page, a JSON file), whose JSON-RPC examples are
    /// content, not messages.
    pub(super) document: bool,
    /// The latest request asked for an MCP discovery document.
    pub(super) discovery: Option<DiscoveryKind>,
    /// The response being read is a 2xx answer to it: with the answer so
    /// far when it has no length and runs to the close (HTTP/1.0 style),
    /// parsed at its end, bounded by the document size the parser takes.
    /// Boxed: the connection state has a size budget, and answers are rare.
    #[allow(clippy::box_collection)] // 8 bytes in the state, not 24
    pub(super) discovery_answer: Option<Box<Vec<u8>>>,
}

impl HttpApp {
    /// A connection between messages, with these parsers and conversation
    /// and nothing else pending (no upgrade, tunnel or event stream).
    pub(super) fn new(req: HttpStream, resp: HttpStream, conv: Conversation) -> Self {
        HttpApp {
            req,
            resp,
            conv,
            sse: None,
            ws_requested: false,
            h2c_requested: false,
            ws_extensions: None,
            upgraded: [false, false],
            connect: false,
            document: false,
            discovery: None,
            discovery_answer: None,
        }
    }
}

impl HttpApp {
    /// A new connection, before its first request.
    pub(super) fn start(cfg: &EngineConfig) -> Self {
        HttpApp::new(
            HttpStream::new(Side::Request, cfg.http),
            HttpStream::new(Side::Response, cfg.http),
            Conversation::default(),
        )
    }

    /// The connection an idle form stands for (its request head is moved
    /// here).
    pub(in crate::engine) fn resume(cfg: &EngineConfig, idle: &mut IdleHttp) -> Self {
        let [p0, p1] = idle.parsers;
        HttpApp::new(
            HttpStream::resume(Side::Request, cfg.http, p0),
            HttpStream::resume(Side::Response, cfg.http, p1),
            Conversation {
                request: idle.request.take(),
                host_checked: idle.host_checked,
                ..Conversation::default()
            },
        )
    }

    /// Between messages with nothing to show (no upgrade, tunnel or event
    /// stream, nothing MCP-like): the parsers' idle forms, the request head
    /// (taken out) and whether the Host was checked. `None` otherwise.
    pub(in crate::engine) fn idle_parts(&mut self) -> Option<([HttpIdle; 2], Option<Head>, bool)> {
        let conv = &self.conv;
        let plain = !(self.ws_requested
            || self.h2c_requested
            || self.connect
            || self.upgraded.contains(&true))
            && self.sse.is_none()
            && self.ws_extensions.is_none()
            && self.discovery.is_none()
            && conv.session.is_pristine()
            && !(conv.legacy_sse || conv.websocket || conv.counted);
        if !plain {
            return None;
        }
        let parsers = [self.req.idle()?, self.resp.idle()?];
        Some((parsers, self.conv.request.take(), self.conv.host_checked))
    }

    /// Heap bytes the parsers and the conversation hold.
    pub(super) fn held_bytes(&self) -> usize {
        self.req
            .held_bytes()
            .saturating_add(self.resp.held_bytes())
            .saturating_add(self.sse.as_ref().map_or(0, |p| p.held_bytes()))
            .saturating_add(self.conv.request.as_ref().map_or(0, Head::held_bytes))
    }

    /// Prefetch what freeing this state frees (a hint only).
    pub(super) fn prefetch_frees(&self) {
        if let Some(head) = &self.conv.request {
            head.prefetch_blocks();
        }
    }
}

/// A hole in direction `dir`: that parser resynchronises on the next
/// message; an event stream in progress is abandoned.
pub(super) fn gap(h: &mut HttpApp, dir: usize, pending: &mut [Vec<u8>; 2]) {
    if let Some(p) = pending.get_mut(dir) {
        p.clear();
    }
    if dir == 0 {
        h.req.on_gap()
    } else {
        h.resp.on_gap()
    }
    h.sse = None;
}

/// The end of the connection: a response read until close ends here.
pub(super) fn close(ctx: &mut Ctx<'_>, meta: &FlowMeta, h: &mut HttpApp) {
    let mut events = std::mem::take(ctx.events);
    h.resp.on_close(&mut events);
    for ev in events.drain(..) {
        response_event(ctx, meta, h, ev);
    }
    *ctx.events = events;
    emit_conversation(ctx, meta, &mut h.conv);
}

/// An HTTP connection between messages that has shown nothing MCP-like,
/// with nothing buffered: all its stream state (two reassemblers, two
/// parsers, the conversation) comes down to this, and is rebuilt from it,
/// exactly, when either side sends again. Most cleartext HTTP connections
/// spend their end in this state (a request, its response, the close), so
/// their last packets touch a small block instead of the stream state, and
/// the stream's block is reused at once while it is still in cache.
#[derive(Debug)]
pub(crate) struct IdleHttp {
    /// Per direction: the next sequence number expected (`None`: not known
    /// yet).
    pub(in crate::engine) next: [Option<u32>; 2],
    /// The request and response parsers between messages.
    pub(in crate::engine) parsers: [HttpIdle; 2],
    /// The latest request head (see `Conversation::request`): a response
    /// that proves MCP is reported with its Host and target.
    pub(in crate::engine) request: Option<Head>,
    pub(in crate::engine) host_checked: bool,
    /// What this connection counts in `Stats::tcp_buffered_bytes` (the
    /// head's text).
    pub(in crate::engine) held: usize,
}

impl PooledBlock for IdleHttp {
    fn prefetch_frees(&self) {
        if let Some(head) = &self.request {
            head.prefetch_blocks();
        }
    }

    fn empty(&mut self) {
        self.request = None;
    }
}

/// HTTP data for one direction.
pub(super) fn data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    h: &mut HttpApp,
) -> Switch {
    let cap = ctx.cfg.http.max_head_bytes + 64 * 1024;
    let Some(buf) = pending.get_mut(dir) else {
        return Switch::Stay;
    };
    // The engine's scratch list: no per-connection allocation.
    let mut events = std::mem::take(ctx.events);
    let parser = if dir == 0 { &mut h.req } else { &mut h.resp };
    if h.upgraded.get(dir).copied().unwrap_or(true) {
        // Bytes after an upgrade wait for the other side's answer.
        buf.extend_from_slice(data);
        if buf.len() > cap {
            buf.clear();
        }
        *ctx.events = events;
        return Switch::Stay;
    }
    let result = feed_buffered(buf, data, cap, |d| parser.feed(d, &mut events));
    if result.is_err() {
        ctx.stats.http_errors += 1;
        buf.clear();
        parser.on_gap();
    }
    let mut switched = Switch::Stay;
    for ev in events.drain(..) {
        if let (HttpEvent::Upgraded, Some(u)) = (&ev, h.upgraded.get_mut(dir)) {
            *u = true;
        }
        if dir == 0 {
            request_event(ctx, meta, h, ev);
        } else {
            match response_event(ctx, meta, h, ev) {
                Switch::Stay => {}
                other => switched = other,
            }
        }
    }
    *ctx.events = events;
    emit_conversation(ctx, meta, &mut h.conv);
    switched
}

fn request_event(ctx: &mut Ctx<'_>, meta: &FlowMeta, h: &mut HttpApp, ev: HttpEvent) {
    let classifier = &ctx.detector.classifier;
    match ev {
        HttpEvent::Head(mut head) => {
            ctx.stats.http_requests += 1;
            let upgrade = head.header("upgrade");
            let upgrade_to = |proto: &str| {
                upgrade.is_some_and(|u| u.split(',').any(|t| t.trim().eq_ignore_ascii_case(proto)))
            };
            h.ws_requested = upgrade_to("websocket");
            h.h2c_requested = upgrade_to("h2c");
            h.resp.expect_response_to(head.method());
            h.connect = head.method().eq_ignore_ascii_case("CONNECT");
            classifier.inspect_request_head(&head, &mut h.conv.session);
            let mut has_host = head.header("host").is_some();
            if !has_host && let Some(prev) = h.conv.raw_host() {
                let prev = prev.to_owned();
                head.push_header("Host", &prev);
                has_host = true;
            }
            h.conv.request = Some(head);
            if !h.conv.host_checked && has_host {
                h.conv.host_checked = true;
                known_path(ctx, meta, &h.conv);
            }
            h.discovery = DiscoveryRequest::of(&h.conv).map(|d| d.kind);
            if let Some(kind) = h.discovery
                && kind.request_is_evidence()
            {
                discovery_request(ctx, meta, &h.conv, kind);
            }
        }
        HttpEvent::Body { data, .. } | HttpEvent::StreamData(data) => {
            classifier.inspect_payload(
                &data,
                Direction::ClientToServer,
                Carrier::HttpBody,
                &mut h.conv.session,
            );
        }
        HttpEvent::MessageEnd | HttpEvent::Upgraded => {}
    }
}

/// What the response made of the connection (WebSocket, a proxy tunnel, or nothing).
fn response_event(ctx: &mut Ctx<'_>, meta: &FlowMeta, h: &mut HttpApp, ev: HttpEvent) -> Switch {
    let classifier = &ctx.detector.classifier;
    match ev {
        HttpEvent::Head(head) => {
            ctx.stats.http_responses += 1;
            classifier.inspect_response_head(&head, &mut h.conv.session);
            // A refused upgrade or CONNECT (interim 1xx answers aside): the
            // connection stays HTTP, so the request side resumes parsing.
            let accepted = head.status == 101 || (h.connect && (200..300).contains(&head.status));
            if !accepted && head.status >= 200 && h.upgraded[0] {
                h.req.cancel_upgrade();
                h.upgraded[0] = false;
                h.ws_requested = false;
                h.h2c_requested = false;
            }
            h.sse = is_event_stream(&head)
                .then(|| Box::new(SseParser::new(ctx.cfg.sse_max_event_bytes)));
            h.document = head.answers_get && h.sse.is_none();
            h.discovery_answer =
                (h.discovery.is_some() && (200..300).contains(&head.status)).then(Box::default);
            if head.status == 101 {
                h.ws_extensions = head.header("sec-websocket-extensions").map(Box::from);
            }
        }
        HttpEvent::StreamData(data) if h.discovery_answer.is_some() && h.sse.is_none() => {
            if let Some(so_far) = h.discovery_answer.as_mut() {
                // One byte past the bound is enough to tell the parser it
                // is too large.
                let room = (discovery::MAX_DOCUMENT_BYTES + 1).saturating_sub(so_far.len());
                so_far.extend_from_slice(data.get(..room.min(data.len())).unwrap_or(&[]));
            }
        }
        HttpEvent::Body { data, .. } if h.discovery_answer.is_some() => {
            // The request is the latest one (pipelined discovery requests
            // are not told apart).
            if let Some(request) = DiscoveryRequest::of(&h.conv) {
                discovery_answer(ctx, meta, &request, &data);
            }
        }
        // A document answering a GET is content, never a message stream.
        HttpEvent::Body { .. } | HttpEvent::StreamData(_) if h.document => {}
        HttpEvent::Body { data, .. } => {
            classifier.inspect_payload(
                &data,
                Direction::ServerToClient,
                Carrier::HttpBody,
                &mut h.conv.session,
            );
        }
        HttpEvent::StreamData(data) => {
            if let Some(sse) = h.sse.as_mut() {
                sse_data(ctx, sse, &data, &mut h.conv);
            } else {
                classifier.inspect_payload(
                    &data,
                    Direction::ServerToClient,
                    Carrier::HttpBody,
                    &mut h.conv.session,
                );
            }
        }
        HttpEvent::MessageEnd => {
            if let Some(streamed) = h.discovery_answer.take()
                && !streamed.is_empty()
                && let Some(request) = DiscoveryRequest::of(&h.conv)
            {
                discovery_answer(ctx, meta, &request, &streamed);
            }
            h.sse = None;
            h.document = false;
            // Answered (or refused): the connection may go idle again.
            h.discovery = None;
        }
        HttpEvent::Upgraded if h.ws_requested => return Switch::WebSocket,
        HttpEvent::Upgraded if h.h2c_requested => return Switch::Http2,
        HttpEvent::Upgraded if h.connect => return Switch::Tunnel,
        HttpEvent::Upgraded => {}
    }
    Switch::Stay
}

/// Cleartext request to a known server on one of its published paths.
pub(super) fn known_path(ctx: &mut Ctx<'_>, meta: &FlowMeta, conv: &Conversation) {
    let Some(raw) = conv.raw_host() else {
        return;
    };
    if ctx.host_misses.contains(raw) {
        return;
    }
    let name = host_lookup_name(raw);
    let Some((name, m)) = name
        .as_ref()
        .and_then(|n| ctx.detector.signatures.match_host_buf(n).map(|m| (n, m)))
    else {
        ctx.host_misses.insert(raw);
        return;
    };
    let method = conv.request.as_ref().map_or("", Head::method);
    let host = name.as_str().to_owned();
    let target = conv.raw_target().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    if m.server.paths.is_empty() || !crate::signatures::SignatureSet::path_matches(m.server, path) {
        return;
    }
    let redacted = conv.path();
    let evidence = vec![
        Evidence::new(
            Signal::HttpPath,
            format!("{method} {}", redacted.as_deref().unwrap_or("")),
        ),
        Evidence::new(Signal::KnownServer, m.server.vendor.clone()),
    ];
    push_observation(
        ctx,
        meta,
        Some(host),
        redacted,
        Transport::StreamableHttp,
        evidence,
        None,
    );
}

/// A request for an MCP discovery document, as its answer needs it.
#[derive(Debug)]
pub(super) struct DiscoveryRequest {
    pub(super) kind: DiscoveryKind,
    /// The Host as sent (for the detail), and normalised (for the finding).
    raw_host: Option<String>,
    host: Option<String>,
    /// Redacted target.
    path: Option<String>,
    /// The response being read is a 2xx answer to it.
    pub(super) answered: bool,
}

impl DiscoveryRequest {
    /// The discovery request `conv`'s latest request head is, if any.
    pub(super) fn of(conv: &Conversation) -> Option<Self> {
        let head = conv.request.as_ref()?;
        let kind = discovery::request_kind(head.method(), head.target(), head.header("accept"))?;
        Some(DiscoveryRequest {
            kind,
            raw_host: conv.raw_host().map(|h| h.chars().take(128).collect()),
            host: conv.host(),
            path: conv.path(),
            answered: false,
        })
    }
}

/// The request of an MCP discovery document (interest in MCP).
pub(super) fn discovery_request(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    conv: &Conversation,
    kind: DiscoveryKind,
) {
    let path = conv.path();
    let evidence = vec![discovery_request_evidence(path.as_deref(), kind)];
    push_observation(
        ctx,
        meta,
        conv.host(),
        path,
        Transport::StreamableHttp,
        evidence,
        None,
    );
}

/// A 2xx answer to a discovery request: the servers and remote endpoints it
/// names go into the inventory, and their hosts are remembered for the
/// connections that follow.
pub(super) fn discovery_answer(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    request: &DiscoveryRequest,
    body: &[u8],
) {
    let Some(doc) = discovery::parse_document(body) else {
        return;
    };
    let kind = request.kind;
    let path = request.path.clone();
    let origin = format!(
        "the {} from {}{}",
        kind.label(),
        request.raw_host.as_deref().map_or_else(
            || format!("{}:{}", meta.server, meta.server_port),
            |h| h.chars().take(128).collect()
        ),
        path.as_deref().unwrap_or("")
    );
    if let Ok(mut t) = ctx.discovered.lock() {
        for host in &doc.hosts {
            t.insert(host, &origin);
        }
    }
    let mut detail = format!("{} answer", kind.label());
    let shown: Vec<String> = doc
        .servers
        .iter()
        .take(4)
        .map(|s| format!("\"{s}\""))
        .collect();
    if !shown.is_empty() {
        detail += &format!(": {}", shown.join(", "));
        if doc.servers.len() > shown.len() {
            detail += &format!(" +{} more", doc.servers.len() - shown.len());
        }
    }
    let n = doc.remotes.len();
    detail += &format!(" ({n} remote{})", if n == 1 { "" } else { "s" });
    let inventory = McpInventory {
        server: (doc.servers.len() == 1)
            .then(|| doc.servers.first().cloned())
            .flatten(),
        remotes: doc.remotes.into_iter().collect(),
        ..McpInventory::default()
    };
    let mut evidence = vec![Evidence::new(Signal::McpDiscovery, detail)];
    if !kind.request_is_evidence() {
        evidence.push(discovery_request_evidence(path.as_deref(), kind));
    }
    push_observation(
        ctx,
        meta,
        request.host.clone(),
        path,
        Transport::StreamableHttp,
        evidence,
        Some(inventory),
    );
}

/// The name of a Host value for the signature look-up, checked and
/// lower-cased in one pass: `None` where [`host_name`] gives none, or a name
/// the look-up rejects (an empty label), which no signature matches.
fn host_lookup_name(host: &str) -> Option<HostBuf<'_>> {
    HostBuf::new(host_part(host)).filter(|b| !b.is_ipv4_literal())
}

/// The evidence a discovery request gives: its path and what it asked for.
fn discovery_request_evidence(path: Option<&str>, kind: DiscoveryKind) -> Evidence {
    Evidence::new(
        Signal::McpDiscovery,
        format!("GET {} ({} request)", path.unwrap_or(""), kind.label()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::host::host_name;

    /// The one-pass look-up name is the checked name of [`host_name`],
    /// normalised as the signature look-up normalises it.
    fn assert_lookup_name_agrees(host: &str) {
        let want = host_name(host).and_then(HostBuf::new);
        let got = host_lookup_name(host);
        assert_eq!(
            got.as_ref().map(HostBuf::name_and_last_label),
            want.as_ref().map(HostBuf::name_and_last_label),
            "{host:?}"
        );
    }

    #[test]
    fn lookup_name_of_odd_host_values() {
        for h in [
            "mcp.notion.com",
            "MCP.Notion.com:443",
            "mcp.notion.com..",
            "mcp.notion.com.:8080",
            " mcp.notion.com\t",
            "\u{2003}mcp.notion.com",
            "mcp.notion.com\u{a0}",
            "10.1.2.3",
            "10.1.2.3:80",
            "256.1.2.3",
            "1.2.3",
            "[::1]:80",
            "[mcp.notion.com]",
            "a..b",
            ".a",
            "a:b:80",
            "",
            ":",
            "...",
        ] {
            assert_lookup_name_agrees(h);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn lookup_name_agrees_with_the_checked_name(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "B", "1", "0", ".", ":", "80", "[", "]", " ", "\t", "-", "_",
                    "\u{2003}", "é", "255", "mcp", "::1",
                ]),
                0..12,
            ),
        ) {
            assert_lookup_name_agrees(&pieces.concat());
        }
    }
}
