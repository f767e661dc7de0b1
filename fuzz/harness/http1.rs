//! HTTP/1.x request or response stream with arbitrary segmentation.
//!
//! Byte 0: side and options; byte 1: split seed. The caller contract of
//! `HttpStream::feed` is followed: unconsumed bytes are kept and fed again
//! with the next segment appended (as the engine does).
use shadowmcp::proto::http1::{self, HttpEvent, HttpLimits, HttpStream, Side};

pub fn run(data: &[u8]) {
    let [flags, seed, rest @ ..] = data else {
        return;
    };
    let side = if flags & 1 == 0 {
        Side::Request
    } else {
        Side::Response
    };
    // Small limits reach the truncation paths with small inputs.
    let limits = if flags & 2 == 0 {
        HttpLimits::default()
    } else {
        HttpLimits {
            max_head_bytes: 256,
            max_headers: 8,
            max_body_bytes: 64,
            max_decoded_bytes: 256,
        }
    };
    let _ = http1::looks_like_request(rest);
    let mut s = HttpStream::new(side, limits);
    if side == Side::Response {
        let methods = ["GET", "HEAD", "CONNECT", "POST"];
        let first = usize::from(flags >> 4);
        for i in 0..=usize::from(flags >> 2 & 1) {
            s.expect_response_to(methods[(first + i) % methods.len()]);
        }
    }
    let mut out = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    // Segment lengths from a tiny LCG seeded by `seed`: 1..=64 bytes.
    let mut x = u32::from(*seed) | 1;
    let mut pos = 0usize;
    let mut bound = 0usize;
    while pos < rest.len() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((x >> 16) as usize % 64 + 1).min(rest.len() - pos);
        let seg = &rest[pos..pos + n];
        pos += n;
        if flags & 8 != 0 && x & 0xff == 0 {
            // An occasional hole in the TCP stream.
            s.on_gap();
            pending.clear();
            continue;
        }
        pending.extend_from_slice(seg);
        match s.feed(&pending, &mut out) {
            Ok(used) => {
                assert!(used <= pending.len());
                pending.drain(..used);
            }
            Err(_) => pending.clear(),
        }
        for ev in out.drain(..) {
            match ev {
                HttpEvent::Head(h) => {
                    if let Some(h) = h.header("content-type") {
                        let _ = h.len();
                    }
                    let _ = http1::codings_supported(&h);
                    if side == Side::Response && h.status == 101 {
                        s.cancel_upgrade();
                    }
                }
                HttpEvent::Body { data, .. } => bound = bound.max(data.len()),
                HttpEvent::StreamData(d) => bound = bound.max(d.len()),
                HttpEvent::MessageEnd | HttpEvent::Upgraded => {}
            }
        }
        if s.is_upgraded() {
            // The engine stops feeding an upgraded stream.
            break;
        }
        // What the caller must buffer is bounded by the head limit (the
        // engine's cap is `max_head_bytes + 64 KiB`).
        assert!(
            pending.len() <= limits.max_head_bytes + 64 * 1024 + 64,
            "caller buffer {} not bounded",
            pending.len()
        );
    }
    s.on_close(&mut out);
    let _ = s.stats();
    let _ = bound;
}
