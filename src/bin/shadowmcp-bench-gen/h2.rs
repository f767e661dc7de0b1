//! HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) on one connection.
//!
//! The client sends the preface, its SETTINGS and a connection
//! WINDOW_UPDATE, then its requests without waiting; the server answers
//! with its SETTINGS, a WINDOW_UPDATE and the SETTINGS ACK, then the
//! responses. Each batch of exchanges is a set of streams open at once,
//! whose DATA frames the server interleaves. Header blocks are HPACK-coded
//! as clients and servers do (module `hpack`). The client grants each
//! stream a 1 MiB window and tops up stream and connection every 512 KiB
//! received; the server tops up the connection for request bodies. The
//! client ends with GOAWAY (NO_ERROR).

use crate::egress::{Msg, Part};
use crate::hpack::{Encoder, Repr};
use crate::http::{Batch, Body, DATE, Request, Response, SERVER, USER_AGENT};
use std::collections::VecDeque;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const ACK: u8 = 1;
const END_HEADERS: u8 = 4;

/// SETTINGS_MAX_FRAME_SIZE's initial value, the size both sides use.
const MAX_FRAME: usize = 16_384;
/// SETTINGS_INITIAL_WINDOW_SIZE the client advertises.
const CLIENT_STREAM_WINDOW: u32 = 1 << 20;
/// The client's first connection WINDOW_UPDATE (as browsers do).
const CLIENT_CONN_INCREMENT: u32 = 15 << 20;
/// The client tops up its windows after this much DATA.
const CLIENT_UPDATE_EVERY: usize = 512 << 10;
/// The server tops up the connection after this much request DATA.
const SERVER_UPDATE_EVERY: usize = 16 << 10;

fn frame_header(out: &mut Vec<u8>, len: usize, ty: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.push(ty);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
}

fn frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    frame_header(out, payload.len(), ty, flags, stream);
    out.extend_from_slice(payload);
}

fn settings(out: &mut Vec<u8>, pairs: &[(u16, u32)]) {
    let mut p = Vec::with_capacity(6 * pairs.len());
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(out, SETTINGS, 0, 0, &p);
}

fn window_update(out: &mut Vec<u8>, stream: u32, increment: usize) {
    frame(
        out,
        WINDOW_UPDATE,
        0,
        stream,
        &(increment as u32 & 0x7fff_ffff).to_be_bytes(),
    );
}

/// A header block as HEADERS and, past the frame size, CONTINUATION frames.
fn headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool) {
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut ty = HEADERS;
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if chunks.peek().is_none() {
        frame(out, HEADERS, flags | END_HEADERS, stream, &[]);
    }
    while let Some(c) = chunks.next() {
        if chunks.peek().is_none() {
            flags |= END_HEADERS;
        }
        frame(out, ty, flags, stream, c);
        ty = CONTINUATION;
        flags = 0;
    }
}

/// Frame bytes built up as parts: literal bytes, with download bodies left
/// in the pool.
#[derive(Default)]
struct Flight {
    parts: Vec<Part>,
    lit: Vec<u8>,
}

impl Flight {
    fn data(&mut self, stream: u32, body: &Body, at: usize, n: usize, end: bool) {
        frame_header(
            &mut self.lit,
            n,
            DATA,
            if end { END_STREAM } else { 0 },
            stream,
        );
        match body {
            Body::Json(s) => self
                .lit
                .extend_from_slice(s.as_bytes().get(at..at + n).unwrap_or_default()),
            Body::Pool { off, .. } => {
                self.parts.push(Part::Bytes(std::mem::take(&mut self.lit)));
                self.parts.push(Part::Pool {
                    off: off + at,
                    len: n,
                });
            }
        }
    }

    fn take(&mut self) -> Vec<Part> {
        if !self.lit.is_empty() {
            self.parts.push(Part::Bytes(std::mem::take(&mut self.lit)));
        }
        std::mem::take(&mut self.parts)
    }

    fn is_empty(&self) -> bool {
        self.lit.is_empty() && self.parts.is_empty()
    }
}

fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn request_block(e: &mut Encoder, r: &Request) -> Vec<u8> {
    let mut b = Vec::with_capacity(128);
    e.field(&mut b, ":method", r.method, Repr::Index);
    e.field(&mut b, ":scheme", "http", Repr::Index);
    e.field(&mut b, ":authority", r.host, Repr::Index);
    e.field(&mut b, ":path", &r.path, Repr::Index);
    e.field(&mut b, "user-agent", USER_AGENT, Repr::Index);
    e.field(&mut b, "accept", "application/json", Repr::Index);
    for (n, v) in &r.extra {
        let repr = if n.eq_ignore_ascii_case("authorization") {
            Repr::Never
        } else {
            Repr::Index
        };
        e.field(&mut b, &lower(n), v, repr);
    }
    if r.method != "GET" {
        e.field(&mut b, "content-type", r.body.content_type(), Repr::Index);
        let len = r.body.len().to_string();
        e.field(&mut b, "content-length", &len, Repr::NoIndex);
    }
    b
}

fn response_block(e: &mut Encoder, r: &Response) -> Vec<u8> {
    let mut b = Vec::with_capacity(96);
    e.field(&mut b, ":status", &r.status.to_string(), Repr::Index);
    e.field(&mut b, "date", DATE, Repr::Index);
    e.field(&mut b, "server", SERVER, Repr::Index);
    if r.body.len() > 0 {
        e.field(&mut b, "content-type", r.body.content_type(), Repr::Index);
    }
    for (n, v) in &r.extra {
        e.field(&mut b, &lower(n), v, Repr::Index);
    }
    let len = r.body.len().to_string();
    e.field(&mut b, "content-length", &len, Repr::NoIndex);
    b
}

/// The whole connection as alternating client and server flights. With
/// `huffman`, the client Huffman-codes strings where that is shorter (most
/// encoders do); without, it never does (some simple ones).
pub fn connection(batches: &[Batch], huffman: bool) -> VecDeque<Msg> {
    let mut cenc = Encoder::new(huffman);
    let mut senc = Encoder::new(true);
    let mut msgs = VecDeque::new();
    let mut client = Flight::default();
    client.lit.extend_from_slice(PREFACE);
    settings(
        &mut client.lit,
        &[(2, 0), (3, 100), (4, CLIENT_STREAM_WINDOW)],
    );
    window_update(&mut client.lit, 0, CLIENT_CONN_INCREMENT as usize);
    let mut server = Flight::default();
    settings(&mut server.lit, &[(3, 128), (5, MAX_FRAME as u32)]);
    window_update(&mut server.lit, 0, 1 << 20);
    frame(&mut server.lit, SETTINGS, ACK, 0, &[]);
    let mut settings_acked = false;
    let mut next_stream = 1u32;
    // Request DATA the server has not yet credited back.
    let mut uncredited = 0usize;
    for batch in batches {
        if !settings_acked && !msgs.is_empty() {
            frame(&mut client.lit, SETTINGS, ACK, 0, &[]);
            settings_acked = true;
        }
        let first = next_stream;
        for (i, ex) in batch.iter().enumerate() {
            let id = first + 2 * i as u32;
            let block = request_block(&mut cenc, &ex.req);
            let len = ex.req.body.len();
            headers(&mut client.lit, id, &block, len == 0);
            let mut at = 0;
            while at < len {
                let n = (len - at).min(MAX_FRAME);
                client.data(id, &ex.req.body, at, n, at + n == len);
                at += n;
            }
            uncredited += len;
        }
        next_stream = first + 2 * batch.len() as u32;
        msgs.push_back(Msg::parts(true, client.take()));

        if uncredited >= SERVER_UPDATE_EVERY {
            window_update(&mut server.lit, 0, uncredited);
            uncredited = 0;
        }
        for (i, ex) in batch.iter().enumerate() {
            let block = response_block(&mut senc, &ex.resp);
            headers(
                &mut server.lit,
                first + 2 * i as u32,
                &block,
                ex.resp.body.len() == 0,
            );
        }
        // DATA frames of the batch's streams in turn.
        let mut sent = vec![0usize; batch.len()];
        let mut pending = vec![0usize; batch.len()];
        let mut conn_pending = 0usize;
        loop {
            let mut any = false;
            for (i, ex) in batch.iter().enumerate() {
                let len = ex.resp.body.len();
                let at = sent[i];
                if at >= len {
                    continue;
                }
                any = true;
                let n = (len - at).min(MAX_FRAME);
                let id = first + 2 * i as u32;
                server.data(id, &ex.resp.body, at, n, at + n == len);
                sent[i] += n;
                pending[i] += n;
                conn_pending += n;
                if conn_pending >= CLIENT_UPDATE_EVERY {
                    // The client credits what it read before more comes.
                    msgs.push_back(Msg::parts(false, server.take()));
                    for (j, p) in pending.iter_mut().enumerate() {
                        let still_open = sent[j] < batch[j].resp.body.len();
                        if *p > 0 && still_open {
                            window_update(&mut client.lit, first + 2 * j as u32, *p);
                        }
                        *p = 0;
                    }
                    window_update(&mut client.lit, 0, conn_pending);
                    conn_pending = 0;
                    msgs.push_back(Msg::parts(true, client.take()));
                }
            }
            if !any {
                break;
            }
        }
        if !server.is_empty() {
            msgs.push_back(Msg::parts(false, server.take()));
        }
    }
    if !settings_acked {
        frame(&mut client.lit, SETTINGS, ACK, 0, &[]);
    }
    // GOAWAY: last peer-initiated stream 0, NO_ERROR.
    frame(&mut client.lit, GOAWAY, 0, 0, &[0; 8]);
    msgs.push_back(Msg::parts(true, client.take()));
    msgs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{Chunk, POOL_LEN};
    use crate::http;
    use crate::rng::Rng;
    use shadowmcp::proto::hpack::HpackDecoder;

    /// Each direction's bytes, with pool stretches copied out.
    fn wire(msgs: VecDeque<Msg>, pool: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (mut c, mut s) = (Vec::new(), Vec::new());
        for m in msgs {
            let Chunk::Parts(mut p) = m.chunk else {
                panic!("plain parts expected")
            };
            let out = if m.from_client { &mut c } else { &mut s };
            while !p.is_empty() {
                p.fill(out, out.len() + 4096, pool);
            }
        }
        (c, s)
    }

    struct Frame {
        ty: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    }

    fn frames(mut b: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let len = usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
            assert!(len <= MAX_FRAME);
            out.push(Frame {
                ty: b[3],
                flags: b[4],
                stream: u32::from_be_bytes(b[5..9].try_into().unwrap()),
                payload: b[9..9 + len].to_vec(),
            });
            b = &b[9 + len..];
        }
        out
    }

    /// A decoded message: stream, header fields, body, ended.
    type Message = (u32, Vec<(String, String)>, Vec<u8>, bool);

    /// Requests or responses decoded from the frames, in the order their
    /// headers came.
    fn decode(fs: &[Frame]) -> Vec<Message> {
        let mut d = HpackDecoder::new(4096);
        let mut out: Vec<Message> = Vec::new();
        for f in fs {
            match f.ty {
                HEADERS => {
                    assert!(f.flags & END_HEADERS != 0);
                    let mut fields = Vec::new();
                    d.decode(&f.payload, |n, v| {
                        fields.push((
                            String::from_utf8(n.to_vec()).unwrap(),
                            String::from_utf8(v.to_vec()).unwrap(),
                        ))
                    })
                    .unwrap();
                    out.push((f.stream, fields, Vec::new(), f.flags & END_STREAM != 0));
                }
                DATA => {
                    let s = out.iter_mut().find(|s| s.0 == f.stream).unwrap();
                    assert!(!s.3, "DATA after END_STREAM");
                    s.2.extend_from_slice(&f.payload);
                    s.3 = f.flags & END_STREAM != 0;
                }
                _ => {}
            }
        }
        out
    }

    fn credited(fs: &[Frame], stream: u32) -> usize {
        fs.iter()
            .filter(|f| f.ty == WINDOW_UPDATE && f.stream == stream)
            .map(|f| u32::from_be_bytes(f.payload[..4].try_into().unwrap()) as usize)
            .sum()
    }

    /// A connection carries exactly the HTTP/1.1 twin's requests and bodies,
    /// its header blocks decode with the library's HPACK decoder, and no
    /// side sends more DATA than the other's windows allow.
    #[test]
    fn connection_carries_the_exchanges() {
        let pool: Vec<u8> = (0..POOL_LEN).map(|i| (i * 7 + i / 251) as u8).collect();
        for seed in 0..20 {
            let mut rng = Rng(seed);
            let mut batches: Vec<Batch> = vec![http::mcp_exchanges("h:8000", &mut rng)];
            batches.extend(
                http::bulk_exchanges("h:8000", &mut rng, POOL_LEN, 1000, 3 << 20)
                    .into_iter()
                    .map(|e| vec![e]),
            );
            let mut rest = http::rest_exchanges("h:8000", &mut rng, Some("t"));
            while !rest.is_empty() {
                let n = rest.len().min(3);
                batches.push(rest.drain(..n).collect());
            }
            let (c, s) = wire(connection(&batches, seed % 2 == 0), &pool);
            assert!(c.starts_with(PREFACE));
            let cf = frames(&c[PREFACE.len()..]);
            let sf = frames(&s);
            assert_eq!((cf[0].ty, sf[0].ty), (SETTINGS, SETTINGS));
            assert_eq!(cf.last().unwrap().ty, GOAWAY);
            let reqs = decode(&cf);
            let resps = decode(&sf);
            let all: Vec<&http::Exchange> = batches.iter().flatten().collect();
            assert_eq!(reqs.len(), all.len());
            assert_eq!(resps.len(), all.len());
            for (i, ex) in all.iter().enumerate() {
                let id = 1 + 2 * i as u32;
                let (sid, fields, body, ended) = &reqs[i];
                assert_eq!(*sid, id);
                assert!(ended);
                let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                assert_eq!(get(":method"), Some(ex.req.method));
                assert_eq!(get(":path"), Some(ex.req.path.as_str()));
                assert_eq!(get(":authority"), Some("h:8000"));
                let mut want = Vec::new();
                let mut p = crate::egress::Parts::new([ex.req.body.part()]);
                p.fill(&mut want, usize::MAX, &pool);
                assert_eq!(body, &want);
                let resp = resps.iter().find(|r| r.0 == id).unwrap();
                assert!(resp.3);
                let mut want = Vec::new();
                let mut p = crate::egress::Parts::new([ex.resp.body.part()]);
                p.fill(&mut want, usize::MAX, &pool);
                assert_eq!(resp.2, want, "seed {seed} stream {id}");
                // Stream window: the initial one plus what the client credited.
                let window = CLIENT_STREAM_WINDOW as usize + credited(&cf, id);
                assert!(want.len() <= window);
            }
            let down: usize = resps.iter().map(|r| r.2.len()).sum();
            assert!(down <= 65_535 + credited(&cf, 0));
            let up: usize = reqs.iter().map(|r| r.2.len()).sum();
            assert!(up <= 65_535 + credited(&sf, 0) + SERVER_UPDATE_EVERY);
        }
    }
}
