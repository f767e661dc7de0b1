//! JSON-RPC parsing and the MCP classifier on HTTP heads, bodies, SSE events
//! and WebSocket messages.
//!
//! Byte 0 selects the carrier/direction; the input up to the first blank
//! line is parsed as an HTTP head (request or response) and inspected, the
//! rest is a payload.
use shadowmcp::detect::jsonrpc;
use shadowmcp::detect::mcp::{Carrier, Direction, McpClassifier, McpSession, sanitize};
use shadowmcp::proto::http1::{HttpEvent, HttpLimits, HttpStream, Side};
use shadowmcp::proto::sse::SseParser;
use shadowmcp::signatures::SignatureSet;
use std::sync::OnceLock;

fn classifier() -> &'static McpClassifier {
    static C: OnceLock<McpClassifier> = OnceLock::new();
    C.get_or_init(|| {
        let sigs = SignatureSet::builtin().expect("builtin signatures load");
        McpClassifier::new(&sigs)
    })
}

pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let c = classifier();
    let mut session = McpSession::new();

    // Direct parse: bounded batch.
    if let Some(p) = jsonrpc::parse(rest) {
        assert!(p.messages.len() <= jsonrpc::MAX_BATCH_MESSAGES);
        for m in &p.messages {
            let _ = (m.method(), m.params(), m.result());
        }
    }
    let _ = jsonrpc::json_start(rest);
    if let Some(clean) = std::str::from_utf8(rest).ok().and_then(sanitize) {
        assert!(clean.chars().count() <= shadowmcp::detect::mcp::MAX_FIELD_CHARS);
    }

    // Head (up to the first blank line) + payload.
    let split = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    let (head_bytes, payload) = rest.split_at(split);
    if !head_bytes.is_empty() {
        let side = if sel & 1 == 0 {
            Side::Request
        } else {
            Side::Response
        };
        let mut h = HttpStream::new(side, HttpLimits::default());
        let mut ev = Vec::new();
        let _ = h.feed(head_bytes, &mut ev);
        for e in ev {
            if let HttpEvent::Head(head) = e {
                match side {
                    Side::Request => c.inspect_request_head(&head, &mut session),
                    Side::Response => c.inspect_response_head(&head, &mut session),
                }
            }
        }
    }
    let dir = if sel & 2 == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    match sel >> 2 & 3 {
        0 => c.inspect_payload(payload, dir, Carrier::HttpBody, &mut session),
        1 => c.inspect_payload(payload, dir, Carrier::WebSocket, &mut session),
        _ => {
            let mut sse = SseParser::new(256 * 1024);
            let mut events = Vec::new();
            sse.feed(payload, &mut events);
            for e in &events {
                c.inspect_sse_event(e, &mut session);
            }
        }
    }
    // Feeding the same payload again (a replayed message) must be harmless.
    c.inspect_payload(payload, dir, Carrier::HttpBody, &mut session);
    let evidence = session.take_new_evidence();
    assert!(evidence.len() <= shadowmcp::detect::mcp::MAX_EVIDENCE);
    let _ = session.is_confirmed();
    let _ = session.rejected_as();
    let _ = session.take_inventory_changed();
}
