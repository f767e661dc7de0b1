//! HTTP/2 connections (prior knowledge, `Upgrade: h2c`, and later TLS with
//! ALPN `h2`): both directions through one passive parser; every stream is
//! a request/response exchange classified as an HTTP/1.1 one is (the same
//! heads, bodies and SSE events into one conversation per connection).

use super::super::buffer::{Next, feed_buffered};
use super::super::context::{Ctx, FlowMeta};
use super::super::observe::{Conversation, emit_conversation, is_event_stream, sse_data};
use super::http::{DiscoveryRequest, discovery_answer, discovery_request, known_path};
use crate::detect::mcp::{Carrier, Direction};
use crate::proto::http1::Head;
use crate::proto::http2::{H2Connection, H2Event, H2Limits, H2Stats, Sender};
use crate::proto::sse::SseParser;

/// Event streams followed at once per connection; further ones are
/// classified as plain bodies.
const MAX_SSE_STREAMS: usize = 16;
/// GET streams remembered per connection (see `H2App::documents`).
const MAX_GET_STREAMS: usize = 64;

#[derive(Debug)]
pub(crate) struct H2App {
    conn: H2Connection,
    conv: Conversation,
    /// Response event streams in progress, by stream.
    sse: Vec<(u32, SseParser)>,
    /// Streams whose request is a GET not answered by an event stream: their
    /// response is a document, whose JSON-RPC examples are content, not
    /// messages (at most [`MAX_GET_STREAMS`]; a GET beyond is classified).
    documents: Vec<u32>,
    /// Streams whose request asked for an MCP discovery document (at most
    /// [`MAX_SSE_STREAMS`]).
    discovery: Vec<(u32, DiscoveryRequest)>,
    /// The parser's counters as last added to the engine's.
    counted: H2Stats,
    /// Scratch list of parser events, reused by every call.
    events: Vec<H2Event>,
}

impl H2App {
    /// A connection that began with the client preface (prior knowledge or
    /// ALPN h2).
    pub(super) fn start(limits: H2Limits) -> Box<Self> {
        Self::with(H2Connection::new(limits), Conversation::default())
    }

    /// The HTTP/2 connection an HTTP/1.1 `Upgrade: h2c` became: `request`
    /// is the upgraded request (stream 1), `conv` what the HTTP/1.1 part
    /// showed.
    pub(super) fn upgraded(limits: H2Limits, request: &Head, conv: Conversation) -> Box<Self> {
        Self::with(H2Connection::after_upgrade(limits, request), conv)
    }

    fn with(conn: H2Connection, mut conv: Conversation) -> Box<Self> {
        conv.http2 = true;
        Box::new(H2App {
            conn,
            conv,
            sse: Vec::new(),
            documents: Vec::new(),
            discovery: Vec::new(),
            counted: H2Stats::default(),
            events: Vec::new(),
        })
    }

    /// Heap bytes the parser, the event streams and the conversation hold.
    pub(super) fn held_bytes(&self) -> usize {
        self.conn
            .held_bytes()
            .saturating_add(self.sse.iter().map(|(_, p)| p.held_bytes()).sum())
            .saturating_add(self.conv.request.as_ref().map_or(0, Head::held_bytes))
    }
}

/// HTTP/2 bytes of direction `dir`.
pub(super) fn data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    h: &mut H2App,
) -> Next {
    let Some(buf) = pending.get_mut(dir) else {
        return Next::Stay;
    };
    let sender = if dir == 0 {
        Sender::Client
    } else {
        Sender::Server
    };
    let cap = h.conn.limits().max_caller_buffer();
    let mut events = std::mem::take(&mut h.events);
    let conn = &mut h.conn;
    let fed = feed_buffered(buf, data, cap, |d| conn.feed(sender, d, &mut events));
    for ev in events.drain(..) {
        on_event(ctx, meta, h, dir == 0, ev);
    }
    h.events = events;
    count(ctx, h);
    emit_conversation(ctx, meta, &mut h.conv);
    match fed {
        Ok(()) => Next::Stay,
        // Framing or compression state lost: nothing more can be read.
        Err(_) => Next::Done,
    }
}

/// The end of the connection: bodies read until then end here.
pub(super) fn close(ctx: &mut Ctx<'_>, meta: &FlowMeta, h: &mut H2App) {
    let mut events = std::mem::take(&mut h.events);
    h.conn.on_close(&mut events);
    // What ends with the connection is a response read until close.
    for ev in events.drain(..) {
        on_event(ctx, meta, h, false, ev);
    }
    h.events = events;
    count(ctx, h);
    emit_conversation(ctx, meta, &mut h.conv);
}

/// Add what the parser counted since the last call to the engine's
/// counters.
fn count(ctx: &mut Ctx<'_>, h: &mut H2App) {
    let now = h.conn.stats();
    let was = std::mem::replace(&mut h.counted, now);
    let d = |a: u32, b: u32| u64::from(a.saturating_sub(b));
    let s = &mut *ctx.stats;
    let f = |i: usize| {
        d(
            now.frames.get(i).copied().unwrap_or(0),
            was.frames.get(i).copied().unwrap_or(0),
        )
    };
    // In the order of `http2::FRAME_TYPE_NAMES`.
    s.http2_frames_data += f(0);
    s.http2_frames_headers += f(1);
    s.http2_frames_priority += f(2);
    s.http2_frames_rst_stream += f(3);
    s.http2_frames_settings += f(4);
    s.http2_frames_push_promise += f(5);
    s.http2_frames_ping += f(6);
    s.http2_frames_goaway += f(7);
    s.http2_frames_window_update += f(8);
    s.http2_frames_continuation += f(9);
    s.http2_frames_unknown += f(10);
    s.http2_streams += d(now.streams_opened, was.streams_opened);
    s.http2_heads += d(now.heads, was.heads);
    s.http2_errors += d(now.errors, was.errors);
    s.http2_streams_untracked += d(now.streams_untracked, was.streams_untracked);
    s.http2_oversized_frames += d(now.oversized_frames, was.oversized_frames);
    s.http2_header_block_overflows += d(now.header_block_overflows, was.header_block_overflows);
    s.http2_hpack_table_overflows += d(now.hpack_table_overflows, was.hpack_table_overflows);
    s.http2_stream_limit_trips += d(now.stream_limit_trips, was.stream_limit_trips);
    s.http2_rapid_reset_trips += d(now.rapid_reset_trips, was.rapid_reset_trips);
}

/// One parser event from the client (`from_client`) or the server.
fn on_event(ctx: &mut Ctx<'_>, meta: &FlowMeta, h: &mut H2App, from_client: bool, ev: H2Event) {
    let classifier = &ctx.detector.classifier;
    let session = &mut h.conv.session;
    let dir = if from_client {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    match ev {
        H2Event::Head { stream, head } if from_client => {
            classifier.inspect_request_head(&head, session);
            if head.method().eq_ignore_ascii_case("GET") && h.documents.len() < MAX_GET_STREAMS {
                h.documents.push(stream);
            }
            let has_host = head.header("host").is_some();
            h.conv.request = Some(head);
            if !h.conv.host_checked && has_host {
                h.conv.host_checked = true;
                known_path(ctx, meta, &h.conv);
            }
            if let Some(d) = DiscoveryRequest::of(&h.conv) {
                if d.kind.request_is_evidence() {
                    discovery_request(ctx, meta, &h.conv, d.kind);
                }
                h.discovery.retain(|(s, _)| *s != stream);
                if h.discovery.len() < MAX_SSE_STREAMS {
                    h.discovery.push((stream, d));
                }
            }
        }
        H2Event::Head { stream, head } => {
            classifier.inspect_response_head(&head, session);
            if let Some((_, d)) = h.discovery.iter_mut().find(|(s, _)| *s == stream) {
                d.answered = (200..300).contains(&head.status);
            }
            h.sse.retain(|(s, _)| *s != stream);
            if is_event_stream(&head) {
                h.documents.retain(|s| *s != stream);
            }
            if is_event_stream(&head) && head.status >= 200 && h.sse.len() < MAX_SSE_STREAMS {
                h.sse
                    .push((stream, SseParser::new(ctx.cfg.sse_max_event_bytes)));
            }
        }
        H2Event::PushPromise { head, .. } => {
            classifier.inspect_request_head(&head, session);
        }
        H2Event::Body { stream, data, .. } if !from_client && h.documents.contains(&stream) => {
            if let Some((_, d)) = h.discovery.iter().find(|(s, _)| *s == stream)
                && d.answered
            {
                discovery_answer(ctx, meta, d, &data);
            }
        }
        H2Event::StreamData { stream, .. } if !from_client && h.documents.contains(&stream) => {}
        H2Event::Body { data, .. } => {
            classifier.inspect_payload(&data, dir, Carrier::HttpBody, session);
        }
        H2Event::StreamData { stream, data } => {
            match h.sse.iter_mut().find(|(s, _)| *s == stream) {
                Some((_, sse)) if !from_client => sse_data(ctx, sse, &data, &mut h.conv),
                _ => classifier.inspect_payload(&data, dir, Carrier::HttpBody, session),
            }
        }
        H2Event::MessageEnd { stream } if !from_client => {
            h.sse.retain(|(s, _)| *s != stream);
            h.documents.retain(|s| *s != stream);
            h.discovery.retain(|(s, _)| *s != stream);
        }
        H2Event::Reset { stream, .. } => {
            h.sse.retain(|(s, _)| *s != stream);
            h.documents.retain(|s| *s != stream);
            h.discovery.retain(|(s, _)| *s != stream);
        }
        H2Event::MessageEnd { .. } | H2Event::Trailers { .. } | H2Event::GoAway { .. } => {}
    }
}
