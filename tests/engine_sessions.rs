//! Whole-engine tests on synthetic TCP conversations carrying real-shaped MCP
//! (and look-alike) traffic: segmentation, reordering, duplication, overlap,
//! chunking, compression, escapes, pipelining, keep-alive budgets, and the
//! protocols that must not be called MCP.

mod common;

use common::{Frame, TcpConv, run_frames, udp_frame};
use shadowmcp::findings::aggregate::{Confidence, Verdict};
use shadowmcp::findings::{Signal, Transport};
use std::io::Write;

const INIT: &str = r#"{"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"fixture-client","version":"1.4.2"}},"jsonrpc":"2.0","id":0}"#;
const CALL: &str = r#"{"method":"tools/call","params":{"name":"search","arguments":{"query":"secret-argument-value"}},"jsonrpc":"2.0","id":2}"#;
const INIT_RESULT: &str = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":false}},"serverInfo":{"name":"weather","version":"1.9.4"}}}"#;

fn post(body: &str, extra: &str) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn sse_response(body: &str) -> Vec<u8> {
    let event = format!("event: message\r\ndata: {body}\r\n\r\n");
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nmcp-session-id: 4f1c0b7e9a2d4c55b1e0a3f6c8d9e7a1\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n0\r\n\r\n",
        event.len()
    )
    .into_bytes()
}

fn session_client_bytes() -> Vec<u8> {
    let mut v = post(INIT, "");
    v.extend(post(
        CALL,
        "Mcp-Session-Id: 4f1c0b7e9a2d4c55b1e0a3f6c8d9e7a1\r\nMCP-Protocol-Version: 2025-06-18\r\n",
    ));
    v
}

fn assert_mcp_found(conv: &TcpConv) {
    let found = run_frames(&conv.frames);
    assert_eq!(found.len(), 1, "one finding expected, got {found:#?}");
    let (f, a) = &found[0];
    assert_eq!(a.confidence, Confidence::High, "{f:#?}");
    assert_eq!(a.verdict, Verdict::Shadow);
    assert_eq!(f.transport, Transport::StreamableHttp);
    assert!(f.has(Signal::HttpJsonrpc), "{f:#?}");
    assert!(f.mcp.methods.contains("tools/call"), "{:?}", f.mcp.methods);
    assert!(
        f.mcp.tools_called.contains("search"),
        "{:?}",
        f.mcp.tools_called
    );
    assert_eq!(f.mcp.protocol_version.as_deref(), Some("2025-06-18"));
    let all = format!("{f:?}");
    assert!(
        !all.contains("secret-argument-value"),
        "argument values must never be recorded"
    );
}

fn conv() -> TcpConv {
    TcpConv::new("10.1.4.7", 51234, "10.9.0.5", 8765)
}

#[test]
fn session_in_whole_segments() {
    let mut c = conv();
    c.send(true, &session_client_bytes(), 1460)
        .send(false, &sse_response(INIT_RESULT), 1460)
        .close();
    assert_mcp_found(&c);
    let (f, _) = &run_frames(&c.frames)[0];
    assert_eq!(f.mcp.client.as_deref(), Some("fixture-client 1.4.2"));
    assert_eq!(f.mcp.server.as_deref(), Some("weather 1.9.4"));
}

#[test]
fn one_byte_segments() {
    let mut c = conv();
    c.send(true, &session_client_bytes(), 1).close();
    assert_mcp_found(&c);
}

#[test]
fn reversed_segments_with_duplicates() {
    let data = session_client_bytes();
    let n = data.len().div_ceil(7);
    let order: Vec<usize> = (0..n).rev().collect();
    // 7-byte segments in reverse order overflow nothing: the stream is short.
    let mut c = conv();
    c.send_order(true, &data, 7, &order, true).close();
    assert_mcp_found(&c);
}

#[test]
fn overlapping_decoy_does_not_replace_delivered_bytes() {
    let data = session_client_bytes();
    let at = data
        .windows(10)
        .rposition(|w| w == b"tools/call")
        .expect("method in stream");
    let mut c = conv();
    c.send_with_overlap_decoy(true, &data, at, b"xxxxx/xxxx")
        .close();
    assert_mcp_found(&c);
}

#[test]
fn chunked_tiny_chunks_with_extensions() {
    let mut body = Vec::new();
    for ch in CALL.as_bytes().chunks(3) {
        write!(body, "{:x};ext=1\r\n", ch.len()).unwrap();
        body.extend_from_slice(ch);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let mut stream = post(INIT, "");
    stream.extend_from_slice(
        b"POST /mcp HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    stream.extend_from_slice(&body);
    let mut c = conv();
    c.send(true, &stream, 5).close();
    assert_mcp_found(&c);
}

#[test]
fn gzip_request_body() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(CALL.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let mut stream = post(INIT, "");
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .unwrap();
    stream.extend_from_slice(&gz);
    let mut c = conv();
    c.send(true, &stream, 100).close();
    assert_mcp_found(&c);
}

#[test]
fn json_escapes_whitespace_and_key_order() {
    let init = r#" { "id" : 0 , "jsonrpc" : "2.0" , "params" : { "clientInfo" : { "version" : "1.4.2" , "name" : "fixture-client" } , "capabilities" : { } , "protocolVersion" : "2025-06-18" } , "method" : "initialize" } "#;
    let call = r#"{"\u006asonrpc":"2.0","id":2,"method":"\u0074ools\/call","params":{"name":"search","arguments":{"query":"secret-argument-value"}}}"#;
    let mut stream = post(init, "");
    stream.extend(post(call, ""));
    let mut c = conv();
    c.send(true, &stream, 1460).close();
    assert_mcp_found(&c);
}

#[test]
fn pipelined_requests_in_one_segment_and_ipv6() {
    let mut c = TcpConv::new("2001:db8::7", 51234, "2001:db8::5", 8765);
    c.send(true, &session_client_bytes(), 65_000).close();
    assert_mcp_found(&c);
}

#[test]
fn later_call_on_keep_alive_connection_is_seen() {
    // A large unrelated request first: the budget is per message, not per flow.
    let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(600_000));
    let mut stream = format!(
        "POST /upload HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{big}",
        big.len()
    )
    .into_bytes();
    stream.extend(session_client_bytes());
    let mut c = conv();
    c.send(true, &stream, 1460).close();
    assert_mcp_found(&c);
}

fn assert_no_finding(client_stream: &[u8]) {
    let mut c = conv();
    c.send(true, client_stream, 1460).close();
    let found = run_frames(&c.frames);
    assert!(found.is_empty(), "no finding expected: {found:#?}");
}

#[test]
fn lsp_initialize_is_not_mcp() {
    let lsp = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"processId":4242,"rootUri":"file:///src","clientInfo":{"name":"vscode","version":"1.95"},"capabilities":{"textDocument":{"hover":{}}}}}"#;
    let mut s = post(lsp, "");
    s.extend(post(
        r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
        "",
    ));
    assert_no_finding(&s);
}

#[test]
fn ethereum_jsonrpc_is_not_mcp() {
    assert_no_finding(&post(
        r#"{"jsonrpc":"2.0","method":"eth_blockNumber","params":[],"id":1}"#,
        "",
    ));
}

#[test]
fn openai_tools_request_is_not_mcp() {
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{}}}}]}"#;
    assert_no_finding(&post(body, ""));
}

#[test]
fn a2a_tasks_are_not_mcp() {
    let mut s = post(
        r#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","parts":[]}}}"#,
        "",
    );
    s.extend(post(
        r#"{"jsonrpc":"2.0","id":2,"method":"tasks/get","params":{"id":"t1"}}"#,
        "",
    ));
    assert_no_finding(&s);
}

#[test]
fn web_page_with_mcp_examples_is_not_mcp() {
    let page = format!(
        "<html><body><pre>{}</pre><pre>{}</pre></body></html>",
        INIT.replace('"', "&quot;"),
        CALL
    );
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    );
    let mut c = conv();
    c.send(
        true,
        b"GET /docs/mcp HTTP/1.1\r\nHost: docs.example.org\r\n\r\n",
        1460,
    )
    .send(false, resp.as_bytes(), 1460)
    .close();
    assert!(run_frames(&c.frames).is_empty());
}

#[test]
fn leading_empty_lines_before_the_request() {
    // RFC 9112 §2.2: a server SHOULD ignore empty lines before a request.
    let mut stream = b"\r\n\r\n\n".to_vec();
    stream.extend(session_client_bytes());
    let mut c = conv();
    c.send(true, &stream, 1).close();
    assert_mcp_found(&c);
}

#[test]
fn tls_inside_an_http_connect_tunnel() {
    // An explicit proxy: CONNECT, 200, then the ClientHello in the tunnel.
    let hello = include_bytes!("../src/proto/testdata/openssl-s_client-h2.bin");
    let mut c = TcpConv::new("10.1.4.7", 51234, "10.9.0.3", 3128);
    c.send(
        true,
        b"CONNECT mcp.example.com:443 HTTP/1.1\r\nHost: mcp.example.com:443\r\n\r\n",
        1460,
    )
    .send(false, b"HTTP/1.1 200 Connection established\r\n\r\n", 1460)
    .send(true, hello, 100)
    .close();
    let found = run_frames(&c.frames);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (f, _) = &found[0];
    assert_eq!(f.server_name.as_deref(), Some("mcp.example.com"));
    assert_eq!(f.transport, Transport::Tls);
    assert!(f.has(Signal::TlsSni));
}

#[test]
fn refused_upgrade_keeps_parsing_later_requests() {
    let mut c = conv();
    c.send(true, b"GET /ws HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", 1460)
        .send(false, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", 1460)
        .send(true, &session_client_bytes(), 1460)
        .close();
    assert_mcp_found(&c);
}

#[test]
fn port_reuse_after_close_is_a_new_connection() {
    // A plain request on a tuple, closed; then the same tuple again (the
    // client port reused within the closed timeout) carrying the session.
    let mut first = conv();
    first
        .send(true, b"GET / HTTP/1.1\r\nHost: 10.9.0.5\r\n\r\n", 1460)
        .close();
    let mut second = conv();
    second
        .send(true, &session_client_bytes(), 1460)
        .send(false, &sse_response(INIT_RESULT), 1460)
        .close();
    let last = first.frames.last().map_or(0, |f| f.ts);
    for f in second.frames.iter_mut() {
        f.ts += last + 1_000_000 - 1_700_000_000_000_000;
    }
    let mut reused = first;
    reused.frames.append(&mut second.frames);
    assert_mcp_found(&reused);
}

#[test]
fn a_closed_flow_leaves_the_table_after_the_closed_timeout() {
    use shadowmcp::decode::linktype;
    use shadowmcp::engine::{Engine, EngineConfig};
    let mut c = conv();
    c.send(true, b"GET / HTTP/1.1\r\nHost: 10.9.0.5\r\n\r\n", 1460)
        .close();
    let mut engine = Engine::new(EngineConfig::default(), common::detector());
    for f in &c.frames {
        engine.process_frame(f.ts, linktype::ETHERNET, &f.bytes);
    }
    assert_eq!(engine.active_flows(), 1, "closed, kept for late packets");
    let end = c.frames.last().map_or(0, |f| f.ts);
    // A late ACK of the closed connection finds it: no new flow.
    let ack = common::tcp_frame(c.client, c.cport, c.server, c.sport, 2000, "A", &[]);
    engine.process_frame(end + 1_000_000, linktype::ETHERNET, &ack);
    assert_eq!(engine.stats().flows_created, 1);
    // Any packet 6 s later (default closed timeout 5 s) expires it.
    let other = common::udp_frame(c.client, 5353, c.server, 5353, b"x");
    engine.process_frame(end + 6_000_000, linktype::ETHERNET, &other);
    assert_eq!(engine.active_flows(), 1, "only the new UDP flow is left");
    assert_eq!(engine.stats().flows_evicted_idle, 0, "closed, not idle");
}

/// Plain exchanges before the MCP session leave the connection idle between
/// messages (its stream state released and rebuilt when a side sends again):
/// however the two directions are segmented, and whatever mix of GET and
/// HEAD came first (a HEAD response has a Content-Length but no body), the
/// session is found with the same content as when every message is one
/// segment.
mod idle_between_messages {
    use super::*;
    use proptest::prelude::*;

    fn exchanges(heads: &[bool]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v = Vec::new();
        for (i, &head) in heads.iter().enumerate() {
            let method = if head { "HEAD" } else { "GET" };
            let body = format!(r#"{{"page":{i}}}"#);
            let req =
                format!("{method} /api/items?page={i} HTTP/1.1\r\nHost: 10.9.0.5:8765\r\n\r\n");
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                if head { "" } else { body.as_str() }
            );
            v.push((req.into_bytes(), resp.into_bytes()));
        }
        v.push((session_client_bytes(), sse_response(INIT_RESULT)));
        v
    }

    fn found(heads: &[bool], seg: impl Fn(usize) -> usize) -> String {
        let mut c = conv();
        for (i, (req, resp)) in exchanges(heads).iter().enumerate() {
            c.send(true, req, seg(2 * i))
                .send(false, resp, seg(2 * i + 1));
        }
        c.close();
        let found = run_frames(&c.frames);
        assert_eq!(found.len(), 1, "{found:#?}");
        // All but the times (more segments, later packets).
        let (f, a) = &found[0];
        format!(
            "{:?} {:?} {:?} {:?} {:?} {a:?}",
            f.server_name, f.path, f.transport, f.evidence, f.mcp
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn segmentation_does_not_change_the_finding(
            heads in proptest::collection::vec(any::<bool>(), 0..5),
            sizes in proptest::collection::vec(1usize..200, 12),
        ) {
            let whole = found(&heads, |_| 65_000);
            prop_assert!(whole.contains("weather 1.9.4"), "{whole}");
            let split = found(&heads, |i| sizes.get(i).copied().unwrap_or(7));
            prop_assert_eq!(split, whole);
        }
    }
}

/// A discovery answer without a length, read to the close (HTTP/1.0
/// style), is parsed at its end like one with a length: its remote is
/// recorded.
#[test]
fn discovery_answer_read_until_close() {
    let card = r#"{"name":"close-card","version":"1.0.0","remotes":[{"type":"streamable-http","url":"https://mcp.close-card.example/mcp"}]}"#;
    for length in [false, true] {
        let mut c = conv();
        let head = if length {
            format!(
                "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                card.len()
            )
        } else {
            "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n".to_string()
        };
        c.send(
            true,
            b"GET /.well-known/mcp/server-card.json HTTP/1.0\r\nHost: tools.example\r\n\r\n",
            1460,
        )
        .send(false, format!("{head}{card}").as_bytes(), 40)
        .close();
        let found = run_frames(&c.frames);
        assert_eq!(found.len(), 1, "length {length}: {found:#?}");
        let (f, _) = &found[0];
        assert!(
            f.mcp.remotes.contains("https://mcp.close-card.example/mcp"),
            "length {length}: {:?}",
            f.mcp.remotes
        );
        assert!(
            format!("{:?}", f.evidence).contains("server card answer"),
            "length {length}: {:?}",
            f.evidence
        );
    }
}

/// A DNS lookup, with no connection seen, of a host that a discovery answer
/// named earlier is reported (SMCP-022); before the answer it is not.
#[test]
fn dns_lookup_of_a_discovered_host() {
    let card = r#"{"name":"dns-card","version":"1.0.0","remotes":[{"type":"streamable-http","url":"https://tools.dns-card.example/mcp"}]}"#;
    let mut c = conv();
    c.send(
        true,
        b"GET /.well-known/mcp/server-card.json HTTP/1.1\r\nHost: dns-card.example\r\n\r\n",
        1460,
    )
    .send(
        false,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{card}",
            card.len()
        )
        .as_bytes(),
        1460,
    )
    .close();
    // A query for tools.dns-card.example A, from another client.
    let mut query = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["tools", "dns-card", "example"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let lookup = |ts| Frame {
        ts,
        bytes: udp_frame(
            "10.1.4.8".parse().unwrap(),
            53000,
            "10.0.0.53".parse().unwrap(),
            53,
            &query,
        ),
    };
    let last = c.frames.last().map_or(0, |f| f.ts);
    let rules = |frames: &[Frame]| -> Vec<&'static str> {
        run_frames(frames).iter().map(|(_, a)| a.rule.id).collect()
    };
    // The lookup before the answer: nothing to say of it.
    let mut before = vec![lookup(0)];
    before.extend(c.frames.iter().map(|f| Frame {
        ts: f.ts + 1_000,
        bytes: f.bytes.clone(),
    }));
    assert_eq!(rules(&before), ["SMCP-005"]);
    let mut after: Vec<Frame> = c
        .frames
        .iter()
        .map(|f| Frame {
            ts: f.ts,
            bytes: f.bytes.clone(),
        })
        .collect();
    after.push(lookup(last + 1_000));
    let found = run_frames(&after);
    let dns = found
        .iter()
        .find(|(f, _)| f.transport == Transport::Dns)
        .unwrap_or_else(|| panic!("no DNS finding: {found:#?}"));
    assert_eq!(dns.1.rule.id, "SMCP-022");
    assert_eq!(dns.1.confidence, Confidence::Low);
    assert_eq!(dns.0.server_name.as_deref(), Some("tools.dns-card.example"));
    assert!(dns.0.has(Signal::DiscoveredHost), "{:?}", dns.0.evidence);
}
