//! Evasion fixtures as captures. Each conversation below is written to
//! `pcaps/evasion-<name>.pcap` by `SHADOWMCP_WRITE_EVASIONS=1 cargo test
//! --test evasion_pcaps`; without the variable the test checks that the
//! committed files are exactly what this generator makes. Their expected
//! findings are golden files like every capture's (`tests/golden.rs`).
//!
//! These are crafted on purpose — no real client splits a request into 1-byte
//! segments — while the MCP messages in them are copied from real SDK traffic.

mod common;

use common::{Frame, TcpConv, pcap_file, udp_frame};
use std::io::Write;
use std::path::PathBuf;

const INIT: &str = r#"{"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"evasion-client","version":"2.0"}},"jsonrpc":"2.0","id":0}"#;
const CALL: &str = r#"{"method":"tools/call","params":{"name":"search","arguments":{"query":"secret-argument-value"}},"jsonrpc":"2.0","id":2}"#;

fn post(body: &[u8], extra: &str) -> Vec<u8> {
    let mut v = format!(
        "POST /mcp HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

fn session() -> Vec<u8> {
    let mut v = post(INIT.as_bytes(), "");
    v.extend(post(
        CALL.as_bytes(),
        "Mcp-Session-Id: 4f1c0b7e9a2d4c55b1e0a3f6c8d9e7a1\r\n",
    ));
    v
}

fn conv(port: u16) -> TcpConv {
    TcpConv::new("10.1.4.7", port, "10.9.0.5", 8765)
}

fn one_byte_segments() -> Vec<Frame> {
    let mut c = conv(40001);
    c.send(true, &session(), 1).close();
    c.frames
}

fn reordered_overlapping() -> Vec<Frame> {
    let data = session();
    let n = data.len().div_ceil(11);
    let order: Vec<usize> = (0..n).rev().collect();
    let mut c = conv(40002);
    c.send_order(true, &data, 11, &order, true);
    let mut d = conv(40003);
    let at = data
        .windows(10)
        .rposition(|w| w == b"tools/call")
        .unwrap_or(0);
    d.send_with_overlap_decoy(true, &data, at, b"xxxxx/xxxx")
        .close();
    c.close();
    c.frames.into_iter().chain(d.frames).collect()
}

fn chunked_gzip_escapes() -> Vec<Frame> {
    // Tiny chunks with extensions, a gzip body, and escaped method and key.
    let escaped = r#" { "\u006asonrpc" : "2.0", "id":2, "params": {"arguments":{"query":"secret-argument-value"},"name":"search"}, "method" : "\u0074ools\/call" } "#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(escaped.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut chunked = Vec::new();
    for ch in gz.chunks(3) {
        write!(chunked, "{:x};ext=\"e\"\r\n", ch.len()).unwrap();
        chunked.extend_from_slice(ch);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
    let mut stream = post(INIT.as_bytes(), "");
    stream.extend_from_slice(b"POST /mcp HTTP/1.1\r\nhost: 10.9.0.5:8765\r\ncontent-type: application/json\r\nCONTENT-ENCODING: gzip\r\ntransfer-encoding: chunked\r\n\r\n");
    stream.extend_from_slice(&chunked);
    let mut c = conv(40004);
    c.send(true, &stream, 7).close();
    c.frames
}

fn batch_and_pipelining() -> Vec<Frame> {
    // A 2025-03-26 batch in one POST, pipelined with a second request in the
    // same segment.
    let batch =
        format!("[{INIT},{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}]");
    let mut stream = post(batch.as_bytes(), "");
    stream.extend(post(CALL.as_bytes(), ""));
    let mut c = conv(40005);
    c.send(true, &stream, 65_000).close();
    c.frames
}

fn websocket_fragmented_masked() -> Vec<Frame> {
    let mut c = conv(40006);
    c.send(true, b"GET /ws HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mcp\r\n\r\n", 1460)
        .send(false, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mcp\r\n\r\n", 1460);
    // INIT then CALL as text messages in 5-byte masked fragments, a ping
    // between fragments.
    let mut frames = Vec::new();
    for msg in [INIT, CALL] {
        let parts: Vec<&[u8]> = msg.as_bytes().chunks(5).collect();
        for (i, p) in parts.iter().enumerate() {
            let op = if i == 0 { 0x1 } else { 0x0 };
            let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
            let key = [0x11, 0x22, 0x33, (i % 251) as u8];
            frames.push(fin | op);
            frames.push(0x80 | p.len() as u8);
            frames.extend_from_slice(&key);
            frames.extend(p.iter().enumerate().map(|(j, b)| b ^ key[j % 4]));
            if i == 1 {
                frames.extend_from_slice(&[0x89, 0x80, 1, 2, 3, 4]);
            }
        }
    }
    c.send(true, &frames, 9).close();
    c.frames
}

fn tls_split_records() -> Vec<Frame> {
    // The ClientHello of `openssl s_client -servername mcp.example.com`
    // re-framed into 40-byte TLS records, sent in 13-byte segments.
    let rec = include_bytes!("../src/proto/testdata/openssl-s_client-h2.bin");
    let msg = rec.get(5..).unwrap_or_default();
    let mut stream = Vec::new();
    for part in msg.chunks(40) {
        stream.extend_from_slice(&[0x16, 0x03, 0x01]);
        stream.extend_from_slice(&(part.len() as u16).to_be_bytes());
        stream.extend_from_slice(part);
    }
    let mut c = TcpConv::new("10.1.4.7", 40007, "10.9.0.6", 443);
    c.send(true, &stream, 13).close();
    c.frames
}

fn dns_long_cname_chain() -> Vec<Frame> {
    // assistant.corp.example -> hop1 … hop12 -> mcp.notion.com, compressed
    // names, then an SNI-less TLS connection to the answer.
    let mut m: Vec<u8> = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 14, 0, 0, 0, 0];
    let qname_off = m.len();
    for l in ["assistant", "corp", "example"] {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&[0, 1, 0, 1]);
    let mut owner = qname_off as u16;
    for hop in 1..=13 {
        // owner CNAME hopN.<compressed corp.example> (last hop: mcp.notion.com)
        m.extend_from_slice(&(0xc000 | owner).to_be_bytes());
        m.extend_from_slice(&[0, 5, 0, 1, 0, 0, 0x0e, 0x10]);
        let target_off = m.len() + 2;
        let mut rdata = Vec::new();
        if hop < 13 {
            let label = format!("hop{hop}");
            rdata.push(label.len() as u8);
            rdata.extend_from_slice(label.as_bytes());
            rdata.extend_from_slice(&(0xc000u16 | (qname_off as u16 + 10)).to_be_bytes());
        } else {
            for l in ["mcp", "notion", "com"] {
                rdata.push(l.len() as u8);
                rdata.extend_from_slice(l.as_bytes());
            }
            rdata.push(0);
        }
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        owner = target_off as u16;
    }
    m.extend_from_slice(&(0xc000 | owner).to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 198, 51, 100, 44]);
    let client: std::net::IpAddr = "10.1.4.7".parse().unwrap();
    let resolver: std::net::IpAddr = "10.9.0.53".parse().unwrap();
    let t0 = 1_700_000_000_000_000;
    let mut frames = vec![Frame {
        ts: t0,
        bytes: udp_frame(resolver, 53, client, 53001, &m),
    }];
    // A real ClientHello (openssl s_client) with its server_name extension
    // removed: only the DNS answer can name the server.
    let hello = without_sni(include_bytes!(
        "../src/proto/testdata/openssl-s_client-tls12.bin"
    ));
    let mut c = TcpConv::new("10.1.4.7", 40008, "198.51.100.44", 443);
    c.send(true, &hello, 1460).close();
    frames.extend(c.frames.into_iter().map(|mut f| {
        f.ts += 1_000;
        f
    }));
    frames
}

/// Remove the server_name extension from a single-record ClientHello and fix
/// the extension, handshake and record lengths.
fn without_sni(rec: &[u8]) -> Vec<u8> {
    let body = &rec[9..];
    let mut off = 2 + 32;
    off += 1 + body[off] as usize;
    off += 2 + u16::from_be_bytes([body[off], body[off + 1]]) as usize;
    off += 1 + body[off] as usize;
    let head = &body[..off];
    let ext_total = u16::from_be_bytes([body[off], body[off + 1]]) as usize;
    let mut exts = &body[off + 2..off + 2 + ext_total];
    let mut kept = Vec::new();
    while exts.len() >= 4 {
        let len = u16::from_be_bytes([exts[2], exts[3]]) as usize;
        let (one, rest) = exts.split_at(4 + len);
        if one[..2] != [0, 0] {
            kept.extend_from_slice(one);
        }
        exts = rest;
    }
    let mut hs_body = head.to_vec();
    hs_body.extend_from_slice(&(kept.len() as u16).to_be_bytes());
    hs_body.extend_from_slice(&kept);
    let mut out = vec![rec[0], rec[1], rec[2]];
    out.extend_from_slice(&((hs_body.len() + 4) as u16).to_be_bytes());
    out.push(1);
    out.extend_from_slice(&(hs_body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&hs_body);
    out
}

fn header_whitespace_case() -> Vec<Frame> {
    // Field names in odd case, no space or a tab after the colon, trailing
    // spaces and tabs, obs-fold continuation lines (RFC 9112 §5.2; one of
    // them carries the whole Content-Type value), in 17-byte segments.
    let mut stream = format!(
        "POST /mcp HTTP/1.1\r\nhOST:10.9.0.5:8765 \t\r\naccept:\tapplication/json,\r\n \ttext/event-stream\r\ncontent-TYPE:application/json \t \r\nCONTENT-length:\t{}\t\r\n\r\n{INIT}",
        INIT.len()
    )
    .into_bytes();
    stream.extend_from_slice(
        format!(
            "POST /mcp HTTP/1.1\r\nHOST:\t10.9.0.5:8765\r\nContent-Type:\r\n\tapplication/json\r\nmcp-SESSION-id:\t4f1c0b7e9a2d4c55b1e0a3f6c8d9e7a1\t \r\nMCP-Protocol-Version:2025-06-18   \r\nAccept:application/json,text/event-stream\t\r\ncontent-length:{} \r\n\r\n{CALL}",
            CALL.len()
        )
        .as_bytes(),
    );
    let mut c = conv(40009);
    c.send(true, &stream, 17).close();
    c.frames
}

fn all() -> Vec<(&'static str, Vec<Frame>)> {
    vec![
        ("evasion-one-byte-segments", one_byte_segments()),
        ("evasion-reordered-overlapping", reordered_overlapping()),
        ("evasion-chunked-gzip-escapes", chunked_gzip_escapes()),
        ("evasion-batch-pipelining", batch_and_pipelining()),
        (
            "evasion-websocket-fragmented",
            websocket_fragmented_masked(),
        ),
        ("evasion-tls-split-records", tls_split_records()),
        ("evasion-dns-long-cname-chain", dns_long_cname_chain()),
        ("evasion-header-whitespace-case", header_whitespace_case()),
    ]
}

#[test]
fn evasion_captures_match_their_generator() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    let write = std::env::var_os("SHADOWMCP_WRITE_EVASIONS").is_some();
    for (name, frames) in all() {
        let bytes = pcap_file(&frames);
        let path = dir.join(format!("{name}.pcap"));
        if write {
            std::fs::write(&path, &bytes).expect("write capture");
        } else {
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert!(
                on_disk == bytes,
                "{} differs from its generator (SHADOWMCP_WRITE_EVASIONS=1 to rewrite)",
                path.display()
            );
        }
    }
}
