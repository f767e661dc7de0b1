//! WebSocket connections (after an HTTP upgrade): both directions' frame
//! parsers, text messages classified as MCP in the conversation the HTTP
//! exchange began.

use super::super::buffer::feed_buffered;
use super::super::context::{Ctx, FlowMeta};
use super::super::observe::{Conversation, emit_conversation};
use super::http::HttpApp;
use crate::detect::mcp::{Carrier, Direction};
use crate::proto::websocket::{WsMessage, WsStream, parse_deflate_extension};

#[derive(Debug)]
pub(crate) struct WsApp {
    streams: [WsStream; 2],
    conv: Conversation,
}

impl WsApp {
    /// The WebSocket an upgraded HTTP connection became: the extensions of
    /// its 101 answer, and its conversation (taken).
    pub(super) fn from_http(h: &mut HttpApp, max_message_bytes: usize) -> Box<Self> {
        let ext = h.ws_extensions.as_deref().unwrap_or("");
        let mut w = Box::new(WsApp {
            streams: [
                WsStream::new(true, parse_deflate_extension(ext, true), max_message_bytes),
                WsStream::new(
                    false,
                    parse_deflate_extension(ext, false),
                    max_message_bytes,
                ),
            ],
            conv: std::mem::take(&mut h.conv),
        });
        w.conv.websocket = true;
        w
    }

    /// Heap bytes the frame parsers hold.
    pub(super) fn held_bytes(&self) -> usize {
        self.streams.iter().map(WsStream::held_bytes).sum()
    }
}

pub(super) fn data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    w: &mut WsApp,
) {
    let (Some(buf), Some(stream)) = (pending.get_mut(dir), w.streams.get_mut(dir)) else {
        return;
    };
    let mut msgs = Vec::new();
    if feed_buffered(buf, data, 64 * 1024, |d| stream.feed(d, &mut msgs)).is_err() {
        ctx.stats.websocket_errors += 1;
        buf.clear();
    }
    let d = if dir == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    for m in msgs {
        ctx.stats.websocket_messages += 1;
        if let WsMessage::Text(t) = m {
            ctx.detector
                .classifier
                .inspect_payload(&t, d, Carrier::WebSocket, &mut w.conv.session);
        }
    }
    emit_conversation(ctx, meta, &mut w.conv);
}
