//! WebSocket frames (RFC 6455 §5) with or without permessage-deflate
//! (RFC 7692), with arbitrary segmentation.
use shadowmcp::proto::websocket::{DeflateParams, WsMessage, WsStream, parse_deflate_extension};

pub fn run(data: &[u8]) {
    let [flags, seed, rest @ ..] = data else {
        return;
    };
    let from_client = flags & 1 != 0;
    let deflate = match flags >> 1 & 3 {
        0 => None,
        1 => Some(DeflateParams {
            no_context_takeover: true,
            max_window_bits: 15,
        }),
        2 => Some(DeflateParams {
            no_context_takeover: false,
            max_window_bits: 8 + (flags >> 4 & 7),
        }),
        // The extension header itself from the start of the input.
        _ => {
            let (hdr, _) = rest.split_at(rest.len().min(64));
            parse_deflate_extension(&String::from_utf8_lossy(hdr), from_client)
        }
    };
    let max = if flags & 0x80 != 0 { 64 } else { 256 * 1024 };
    let mut ws = WsStream::new(from_client, deflate, max);
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut x = u32::from(*seed) | 1;
    let mut pos = 0usize;
    while pos < rest.len() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((x >> 16) as usize % 64 + 1).min(rest.len() - pos);
        pending.extend_from_slice(&rest[pos..pos + n]);
        pos += n;
        match ws.feed(&pending, &mut out) {
            Ok(used) => {
                assert!(used <= pending.len());
                pending.drain(..used);
            }
            Err(_) => break,
        }
        // A frame header is at most 14 bytes (RFC 6455 §5.2); payload bytes
        // are consumed as they arrive, so the caller never holds much.
        assert!(
            pending.len() <= 64 * 1024 + 64,
            "caller buffer {}",
            pending.len()
        );
    }
    for m in &out {
        if let WsMessage::Text(b) | WsMessage::Binary(b) = m {
            assert!(b.len() <= max, "message of {} > cap {max}", b.len());
        }
    }
}
