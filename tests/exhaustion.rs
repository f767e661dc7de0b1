//! Resource exhaustion: floods that fill every table while a real MCP
//! session runs; memory stays within the caps and the session is found.

mod common;

use common::{Frame, TcpConv, tcp_frame};
use shadowmcp::decode::linktype;
use shadowmcp::engine::{Engine, EngineConfig};
use shadowmcp::findings::aggregate::{Aggregator, Confidence, assess};
use std::net::IpAddr;

const INIT: &str = r#"{"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"flood-survivor","version":"1.0"}},"jsonrpc":"2.0","id":0}"#;

fn post(body: &str) -> Vec<u8> {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: 10.9.0.5:8765\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// SYNs from distinct sources, all within a fraction of a second.
fn syn_flood(n: u32, first: u32, ts: i64) -> Vec<Frame> {
    (first..first + n)
        .map(|i| {
            let src = IpAddr::from([172, 16 + (i >> 16) as u8, (i >> 8) as u8, i as u8]);
            Frame {
                ts: ts + i64::from(i % 1000),
                bytes: tcp_frame(src, 40000, "10.9.0.9".parse().unwrap(), 443, i, "S", &[]),
            }
        })
        .collect()
}

#[test]
fn syn_flood_around_a_session_keeps_memory_bounded_and_finds_it() {
    let mut session = TcpConv::new("10.1.4.7", 51234, "10.9.0.5", 8765);
    session.send(true, &post(INIT), 7).close();
    // Interleave: after every session packet, 2,000 new flood flows: far more
    // than the table holds, all within the same second.
    let cap = 5_000;
    let mut frames: Vec<Frame> = Vec::new();
    for (k, f) in session.frames.drain(..).enumerate() {
        frames.extend(syn_flood(2_000, k as u32 * 2_000, f.ts));
        frames.push(f);
    }
    let det = common::detector();
    let mut engine = Engine::new(
        EngineConfig {
            max_flows: cap,
            ..EngineConfig::default()
        },
        det.clone(),
    );
    let mut agg = Aggregator::new(100);
    for f in &frames {
        engine.process_frame(f.ts, linktype::ETHERNET, &f.bytes);
        assert!(engine.active_flows() <= cap);
        engine.drain_observations().for_each(|o| agg.add(&o));
    }
    engine.finish();
    engine.drain_observations().for_each(|o| agg.add(&o));
    assert!(
        engine.stats().flows_evicted_capacity > 50_000,
        "the flood was evicted: {:?}",
        engine.stats()
    );
    let found = agg.into_sorted();
    assert_eq!(found.len(), 1, "the session survived the flood");
    let a = assess(&found[0], &det);
    assert_eq!(a.confidence, Confidence::High);
    assert_eq!(found[0].mcp.client.as_deref(), Some("flood-survivor 1.0"));
}

/// Many connections that each leave a large partial HTTP head (in order, or
/// out of order so that reassembly buffers it): the buffers stay within the
/// engine's budget, the streams that hold too much are shed, and a real
/// session that arrives while the budget is exceeded is still found.
#[test]
fn large_partial_messages_stay_within_the_buffer_budget() {
    let budget = 1024 * 1024;
    let cfg = EngineConfig {
        max_tcp_streams: 256,
        max_buffered_bytes: budget,
        ..EngineConfig::default()
    };
    let det = common::detector();
    let mut engine = Engine::new(cfg, det.clone());
    let mut agg = Aggregator::new(100);
    let mut head = b"GET /upload HTTP/1.1\r\nHost: bulk.example\r\nX-Pad: ".to_vec();
    head.resize(12 * 1024, b'a');
    let mut peak = 0;
    for i in 0..200u16 {
        let client = format!("10.20.{}.{}", i / 250, i % 250 + 1);
        let mut conv = TcpConv::new(&client, 40_000 + i, "10.9.0.7", 80);
        if i % 2 == 0 {
            conv.send(true, &head, 1400);
        } else {
            // The first segment never arrives: the rest waits in reassembly.
            let order: Vec<usize> = (1..head.len().div_ceil(1400)).collect();
            conv.send_order(true, &head, 1400, &order, false);
        }
        for f in &conv.frames {
            engine.process_frame(f.ts, linktype::ETHERNET, &f.bytes);
            peak = peak.max(engine.stats().tcp_buffered_bytes);
        }
    }
    // One growth step past the budget at most (a segment, a Vec doubling).
    assert!(peak <= budget as u64 + 64 * 1024, "peak {peak}");
    assert!(
        peak > budget as u64 / 2,
        "the flood did fill the budget: {peak}"
    );
    let shed = engine.stats().tcp_streams_shed;
    assert!(shed > 50, "streams over their share were shed: {shed}");

    let mut session = TcpConv::new("10.1.4.7", 51234, "10.9.0.5", 8765);
    session.send(true, &post(INIT), 1400);
    for f in &session.frames {
        engine.process_frame(f.ts, linktype::ETHERNET, &f.bytes);
        engine.drain_observations().for_each(|o| agg.add(&o));
    }
    assert_eq!(
        engine.stats().tcp_streams_shed,
        shed,
        "the session holds little: not shed"
    );
    engine.finish();
    engine.drain_observations().for_each(|o| agg.add(&o));
    assert_eq!(
        engine.stats().tcp_buffered_bytes,
        0,
        "every stream's buffers left the count when it ended"
    );
    let found = agg.into_sorted();
    let s = found
        .iter()
        .find(|f| f.mcp.client.as_deref() == Some("flood-survivor 1.0"))
        .expect("the session was found");
    assert!(assess(s, &det).confidence >= Confidence::Medium);
}
