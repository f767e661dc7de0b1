//! Both directions of an HTTP/2 connection with arbitrary segmentation and
//! interleaving.
//!
//! Byte 0: options (bit 0: `after_upgrade` rather than `new`; bit 1: small
//! limits; bit 2: prepend the client preface; bit 3: an occasional gap);
//! byte 1: split seed; bytes 2-3: length of the client bytes (big endian),
//! which follow; the rest is the server bytes. The caller contract of
//! `H2Connection::feed` is followed: unconsumed bytes are kept and fed again
//! with the next segment appended (as the engine does).
use shadowmcp::proto::http1::Head;
use shadowmcp::proto::http2::{self, H2Connection, H2Event, H2Limits, Sender};

pub fn run(data: &[u8]) {
    let [flags, seed, l0, l1, rest @ ..] = data else {
        return;
    };
    let split = usize::from(u16::from_be_bytes([*l0, *l1])).min(rest.len());
    let (client_raw, server) = rest.split_at(split);
    let mut client = Vec::new();
    if flags & 4 != 0 {
        client.extend_from_slice(http2::PREFACE);
    }
    client.extend_from_slice(client_raw);
    let _ = http2::looks_like_preface(&client);
    let limits = if flags & 2 == 0 {
        H2Limits::default()
    } else {
        H2Limits {
            max_frame_size: 20_000,
            max_header_block_bytes: 256,
            max_continuation_frames: 3,
            max_header_list_bytes: 200,
            max_headers: 4,
            max_table_size: 256,
            max_concurrent_streams: 3,
            max_total_streams: 8,
            max_rapid_resets: 2,
            max_body_bytes: 64,
            max_decoded_bytes: 256,
            max_connection_body_bytes: 100,
        }
    };
    let mut conn = if flags & 1 == 0 {
        H2Connection::new(limits)
    } else {
        let mut req = Head::default();
        req.set_request_line("GET", "/");
        req.push_header("HTTP2-Settings", "AAEAAEAAAAIAAAAA");
        H2Connection::after_upgrade(limits, &req)
    };
    let mut out = Vec::new();
    let mut pending: [Vec<u8>; 2] = Default::default();
    let mut pos = [0usize; 2];
    let inputs = [&client[..], server];
    let mut x = u32::from(*seed) | 1;
    while pos[0] < inputs[0].len() || pos[1] < inputs[1].len() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let mut i = (x >> 8 & 1) as usize;
        if pos[i] >= inputs[i].len() {
            i ^= 1;
        }
        let who = if i == 0 {
            Sender::Client
        } else {
            Sender::Server
        };
        let n = ((x >> 16) as usize % 64 + 1).min(inputs[i].len() - pos[i]);
        let seg = &inputs[i][pos[i]..pos[i] + n];
        pos[i] += n;
        if flags & 8 != 0 && x & 0xff == 0 {
            conn.on_gap();
        }
        pending[i].extend_from_slice(seg);
        match conn.feed(who, &pending[i], &mut out) {
            Ok(used) => {
                assert!(used <= pending[i].len());
                pending[i].drain(..used);
            }
            Err(_) => {
                assert!(conn.error().is_some());
                pending[i].clear();
            }
        }
        // The backlog is one incomplete frame (or preface) at most.
        assert!(
            conn.error().is_some()
                || pending[i].len() <= limits.max_caller_buffer().max(http2::PREFACE.len()),
            "caller buffer {} not bounded",
            pending[i].len()
        );
        check(&mut out, &limits);
        assert!(conn.open_streams() <= limits.max_concurrent_streams);
    }
    conn.on_close(&mut out);
    check(&mut out, &limits);
    let _ = (conn.stats(), conn.held_bytes());
}

fn check(out: &mut Vec<H2Event>, limits: &H2Limits) {
    for ev in out.drain(..) {
        match ev {
            H2Event::Head { head, .. } | H2Event::Trailers { head, .. } => {
                assert!(head.headers().count() <= limits.max_headers.saturating_add(1));
                let _ = head.header("content-type");
            }
            H2Event::Body { data, .. } => {
                assert!(data.len() <= limits.max_decoded_bytes.max(limits.max_body_bytes));
            }
            _ => {}
        }
    }
}
