//! Micro-benchmarks of the per-packet hot path, one group per stage:
//! link/IP decode, flow lookup, TLS ClientHello, DNS, HTTP request head, an
//! HTTP/2 connection and HPACK blocks, the JSON-RPC prefilter and the MCP
//! classifier, TLS record decryption from a key log, and the whole engine
//! over a real capture. Inputs are the committed captures and parser test
//! data, so the numbers follow real traffic, not synthetic best cases.
//!
//!     cargo bench --bench hot_paths                 # all groups
//!     cargo bench --bench hot_paths -- flow_lookup  # one group
//!
//! Throughput is reported in bytes or elements per second; see
//! docs/performance.md for how these relate to the whole-process figures.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shadowmcp::capture::FileSource;
use shadowmcp::decode::{Transport, decode};
use shadowmcp::detect::hosts::Detector;
use shadowmcp::detect::jsonrpc::{self, Prefilter};
use shadowmcp::detect::mcp::{Carrier, Direction, McpClassifier, McpSession};
use shadowmcp::engine::{Engine, EngineConfig};
use shadowmcp::flow::FlowKey;
use shadowmcp::flow::table::FlowTable;
use shadowmcp::proto::{dns, http1, tls};
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::allowlist::Allowlist;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

#[path = "../tests/tls_sessions/mod.rs"]
mod tls_sessions;

/// Every frame of a committed capture, with its timestamp and link type.
fn frames(name: &str) -> (i32, Vec<(i64, Vec<u8>)>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name);
    let mut src = FileSource::open(&path).expect("committed capture opens");
    let lt = src.linktype();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame().expect("committed capture reads") {
        out.push((f.ts, f.data.to_vec()));
    }
    (lt, out)
}

fn signatures() -> SignatureSet {
    SignatureSet::builtin().expect("builtin signatures load")
}

fn detector() -> Arc<Detector> {
    let allow = Allowlist::parse("*.example.com\n", "bench").expect("allowlist parses");
    Arc::new(Detector::new(signatures(), allow))
}

const INIT: &[u8] = br#"{"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"bench-client","version":"2.0"}},"jsonrpc":"2.0","id":0}"#;
const REST: &[u8] = br#"{"id":1234,"name":"widget","tags":["a","b","c"],"price":12.5,"stock":{"warehouse":"north","count":17}}"#;

fn bench_decode(c: &mut Criterion) {
    let (lt, fr) = frames("py-streamable-json.pcap");
    let bytes: usize = fr.iter().map(|(_, f)| f.len()).sum();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(fr.len() as u64));
    g.bench_function(format!("ethernet_tcp_{}_frames_{bytes}B", fr.len()), |b| {
        b.iter(|| {
            let mut n = 0usize;
            for (_, f) in &fr {
                if let Ok(p) = decode(lt, black_box(f)) {
                    n += usize::from(matches!(p.transport, Transport::Tcp { .. }));
                }
            }
            n
        })
    });
    g.finish();
}

/// Keys for `n` distinct IPv4 flows, spread like the flow-flood capture.
fn flow_keys(n: u32) -> Vec<FlowKey> {
    (0..n)
        .map(|i| {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 4)));
            let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, (i % 200) as u8));
            FlowKey::from_packet(src, 40_000 + (i & 15) as u16, dst, 443, 6).0
        })
        .collect()
}

fn bench_flow_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("flow_lookup");
    for n in [1_000u32, 1_000_000] {
        let keys = flow_keys(n);
        let mut table: FlowTable<u64> = FlowTable::new(n as usize, 300_000_000, 5_000_000);
        for (i, k) in keys.iter().enumerate() {
            table.get_or_insert(*k, i as i64, || 0, |_, _, _| {});
        }
        // Look up in a scattered order, as packets of many flows interleave.
        let order: Vec<usize> = (0..keys.len())
            .map(|i| (i.wrapping_mul(2_654_435_761)) % keys.len())
            .collect();
        g.throughput(Throughput::Elements(order.len() as u64));
        g.bench_function(format!("hit_{n}_flows"), |b| {
            b.iter(|| {
                for &i in &order {
                    if let Some(k) = keys.get(i) {
                        let (slot, _) = table.get_or_insert(*k, 1_000, || 0, |_, _, _| {});
                        if let Some(v) = table.get_mut(slot) {
                            *v += 1;
                        }
                    }
                }
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("key_from_packet_ipv4", |b| {
        let src = IpAddr::V4(Ipv4Addr::new(10, 1, 4, 7));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9));
        b.iter(|| FlowKey::from_packet(black_box(src), 40_001, black_box(dst), 443, 6))
    });
    // Insertion at the cap: every new flow evicts the oldest.
    let keys = flow_keys(200_000);
    g.throughput(Throughput::Elements(keys.len() as u64));
    g.bench_function("insert_evict_200000_into_65536", |b| {
        b.iter_batched(
            || FlowTable::<u64>::new(65_536, 300_000_000, 5_000_000),
            |mut table| {
                for (i, k) in keys.iter().enumerate() {
                    table.get_or_insert(*k, i as i64, || 0, |_, _, _| {});
                }
                table.len()
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_tls(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls_client_hello");
    for (name, rec) in [
        (
            "openssl_h2",
            &include_bytes!("../src/proto/testdata/openssl-s_client-h2.bin")[..],
        ),
        (
            "python_ssl",
            &include_bytes!("../src/proto/testdata/python-ssl.bin")[..],
        ),
    ] {
        assert!(matches!(
            tls::parse_client_hello_records(rec),
            tls::HelloProgress::Complete(_)
        ));
        g.throughput(Throughput::Bytes(rec.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| tls::parse_client_hello_records(black_box(rec)))
        });
    }
    g.finish();
}

/// The UDP payloads of the DNS answers in a committed capture.
fn dns_answers() -> Vec<Vec<u8>> {
    let (lt, fr) = frames("dns-then-tls.pcap");
    fr.iter()
        .filter_map(|(_, f)| match decode(lt, f).ok()?.transport {
            Transport::Udp {
                sport: 53, payload, ..
            } => Some(payload.to_vec()),
            _ => None,
        })
        .collect()
}

fn bench_dns(c: &mut Criterion) {
    let answers = dns_answers();
    assert!(!answers.is_empty(), "dns-then-tls.pcap holds DNS answers");
    let bytes: usize = answers.iter().map(Vec::len).sum();
    let mut g = c.benchmark_group("dns");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(format!("parse_{}_answers", answers.len()), |b| {
        b.iter(|| {
            let mut n = 0usize;
            for a in &answers {
                if let Ok(m) = dns::parse_message(black_box(a)) {
                    n += m.resolved_addresses().len();
                }
            }
            n
        })
    });
    g.finish();
}

fn bench_http(c: &mut Criterion) {
    let mut req = format!(
        "POST /mcp HTTP/1.1\r\nHost: mcp.example-vendor.com\r\nUser-Agent: python-httpx/0.28.1\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nMcp-Protocol-Version: 2025-06-18\r\nContent-Length: {}\r\n\r\n",
        INIT.len()
    )
    .into_bytes();
    req.extend_from_slice(INIT);
    let mut g = c.benchmark_group("http1");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("request_head_and_body", |b| {
        let mut events = Vec::new();
        b.iter(|| {
            let mut s = http1::HttpStream::new(http1::Side::Request, http1::HttpLimits::default());
            events.clear();
            let used = s.feed(black_box(&req), &mut events);
            (used.ok(), events.len())
        })
    });
    g.bench_function("looks_like_request", |b| {
        b.iter(|| http1::looks_like_request(black_box(&req)))
    });
    g.finish();
}

/// Hex to bytes (the RFC 7541 Appendix C blocks below).
fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn h2_frame(ty: u8, flags: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[ty, flags]);
    f.extend_from_slice(&sid.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// RFC 7541 C.4 (Huffman requests) and C.6 (Huffman responses, after a
/// table size update to 256): real encoder output, dynamic table in use.
const H2_REQUESTS: [&str; 3] = [
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
];
const H2_RESPONSES: [&str; 3] = [
    "3fe101488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
    "4883640effc1c0bf",
    "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
];

fn bench_http2(c: &mut Criterion) {
    use shadowmcp::proto::hpack::HpackDecoder;
    use shadowmcp::proto::http2::{H2Connection, H2Limits, PREFACE, Sender};
    // Three streams: a POST with a JSON body, two bodiless GETs.
    let mut client = PREFACE.to_vec();
    client.extend(h2_frame(4, 0, 0, &[0, 1, 0, 0, 0x10, 0]));
    for (i, b) in H2_REQUESTS.iter().enumerate() {
        let sid = 2 * i as u32 + 1;
        client.extend(h2_frame(1, if i == 0 { 4 } else { 5 }, sid, &unhex(b)));
        if i == 0 {
            client.extend(h2_frame(0, 1, sid, INIT));
        }
    }
    let mut server = h2_frame(4, 0, 0, &[]);
    for (i, b) in H2_RESPONSES.iter().enumerate() {
        server.extend(h2_frame(1, 5, 2 * i as u32 + 1, &unhex(b)));
    }
    // The input must parse whole: six heads and no error.
    let mut check = H2Connection::new(H2Limits::default());
    let mut ev = Vec::new();
    check
        .feed(Sender::Client, &client, &mut ev)
        .expect("client bytes parse");
    check
        .feed(Sender::Server, &server, &mut ev)
        .expect("server bytes parse");
    assert_eq!(check.stats().heads, 6, "{ev:?}");
    let mut g = c.benchmark_group("http2");
    g.throughput(Throughput::Bytes((client.len() + server.len()) as u64));
    g.bench_function("connection_three_streams", |b| {
        let mut events = Vec::new();
        b.iter(|| {
            let mut conn = H2Connection::new(H2Limits::default());
            events.clear();
            let a = conn.feed(Sender::Client, black_box(&client), &mut events);
            let s = conn.feed(Sender::Server, black_box(&server), &mut events);
            (a.ok(), s.ok(), events.len())
        })
    });
    let blocks: Vec<Vec<u8>> = H2_RESPONSES.iter().map(|b| unhex(b)).collect();
    g.throughput(Throughput::Bytes(
        blocks.iter().map(Vec::len).sum::<usize>() as u64,
    ));
    g.bench_function("hpack_huffman_responses", |b| {
        b.iter(|| {
            let mut d = HpackDecoder::new(4096);
            let mut n = 0usize;
            for blk in &blocks {
                let _ = d.decode(black_box(blk), |name, value| n += name.len() + value.len());
            }
            n
        })
    });
    g.finish();
}

fn bench_mcp(c: &mut Criterion) {
    let sigs = signatures();
    let pre = Prefilter::new();
    let classifier = McpClassifier::new(&sigs);
    let mut g = c.benchmark_group("mcp");
    for (name, body) in [("initialize", INIT), ("rest_json", REST)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(format!("prefilter_{name}"), |b| {
            b.iter(|| pre.may_be_jsonrpc(black_box(body)))
        });
        g.bench_function(format!("jsonrpc_parse_{name}"), |b| {
            b.iter(|| jsonrpc::parse(black_box(body)).is_some())
        });
        g.bench_function(format!("classify_{name}"), |b| {
            b.iter(|| {
                let mut s = McpSession::new();
                classifier.inspect_payload(
                    black_box(body),
                    Direction::ClientToServer,
                    Carrier::HttpBody,
                    &mut s,
                );
                s.is_confirmed()
            })
        });
    }
    g.finish();
}

fn bench_engine(c: &mut Criterion) {
    let det = detector();
    let mut g = c.benchmark_group("engine");
    for name in ["py-streamable-json.pcap", "dns-then-tls.pcap", "quic.pcap"] {
        let (lt, fr) = frames(name);
        let bytes: usize = fr.iter().map(|(_, f)| f.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut e = Engine::new(EngineConfig::default(), det.clone());
                for (ts, f) in &fr {
                    e.process_frame(*ts, lt, f);
                }
                e.finish();
                e.drain_observations().count()
            })
        });
    }
    g.finish();
}

/// What remembering Host misses saves (`detect::host_misses`, used by the
/// HTTP application): the signature look-up of a Host that matches no known
/// server, against the check of the 64-entry set of recent misses.
fn bench_host_misses(c: &mut Criterion) {
    use shadowmcp::detect::host_misses::HostMisses;
    let sigs = signatures();
    let host = "api.widgets.example.org";
    let mut misses = HostMisses::default();
    misses.insert(host);
    let mut g = c.benchmark_group("host_misses");
    g.bench_function("signature_lookup_miss", |b| {
        b.iter(|| sigs.match_host(black_box(host)).is_none())
    });
    g.bench_function("remembered_miss", |b| {
        b.iter(|| misses.contains(black_box(host)))
    });
    g.finish();
}

/// What the shared walk saves with N readers of one file (`analyze`'s
/// parallel readers): walking a block of records and sharding every frame,
/// against reading past a block another reader walked.
fn bench_shared_walks(c: &mut Criterion) {
    // 1 MiB of small frames, as in a flood of short connections.
    let frame = {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 9, 9, 9], 64)
            .tcp(40000, 80, 1, 65535)
            .write(&mut out, &[0u8; 30])
            .expect("frame");
        out
    };
    let mut file = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
        file.extend_from_slice(&v.to_le_bytes());
    }
    let records = (1 << 20) / (16 + frame.len());
    for i in 0..records {
        let mut f = frame.clone();
        if let Some(b) = f.get_mut(35) {
            *b = i as u8; // another source port low byte: another flow
        }
        for v in [1_700_000_000u32, i as u32, f.len() as u32, f.len() as u32] {
            file.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(&f);
    }
    let path =
        std::env::temp_dir().join(format!("shadowmcp-bench-walk-{}.pcap", std::process::id()));
    std::fs::write(&path, &file).expect("write bench capture");
    const BLOCK: usize = 256 * 1024;
    // The blocks as a walk finds them: (bytes, records).
    let mut blocks = Vec::new();
    {
        let mut src = FileSource::open(&path).expect("bench capture opens");
        loop {
            let mut n = 0u64;
            let len = src
                .next_frames(&mut Vec::new(), (usize::MAX, BLOCK), |_, _, _| {
                    n += 1;
                    false
                })
                .expect("reads")
                .len();
            if len == 0 {
                break;
            }
            blocks.push((len, n));
        }
    }
    let mut g = c.benchmark_group("shared_walks");
    g.throughput(Throughput::Elements(records as u64));
    g.bench_function("walk_and_shard", |b| {
        b.iter(|| {
            let mut src = FileSource::open(&path).expect("opens");
            let mut shards = [0u64; 2];
            while !src
                .next_frames(&mut Vec::new(), (usize::MAX, BLOCK), |_, _, f| {
                    let (w, _) = shadowmcp::pipeline::shard(1, f, 2);
                    if let Some(s) = shards.get_mut(w) {
                        *s += 1;
                    }
                    false
                })
                .expect("reads")
                .is_empty()
            {}
            shards
        })
    });
    g.bench_function("read_past_walked", |b| {
        b.iter(|| {
            let mut src = FileSource::open(&path).expect("opens");
            let mut bytes = 0;
            for &(len, n) in &blocks {
                bytes += src
                    .skip_records(len, n)
                    .expect("reads")
                    .map_or(0, <[u8]>::len);
            }
            bytes
        })
    });
    g.finish();
    let _ = std::fs::remove_file(&path);
}

/// Decryption of a real session's records (rustls, 1 MiB of responses in
/// full-size records), per suite: both directions fed to a fresh decryptor
/// with the keys in the table.
fn bench_tls_decrypt(c: &mut Criterion) {
    use shadowmcp::tls_decrypt::{DecryptContext, DecryptLimits, Dir, KeyTable, TlsDecryptor};
    let mut g = c.benchmark_group("tls_decrypt");
    for (name, tls13, suite) in [
        ("tls13_aes128gcm", true, 0x1301),
        ("tls13_chacha20", true, 0x1303),
        ("tls12_aes256gcm", false, 0xc02c),
    ] {
        let (t, keys) = tls_sessions::session(&tls_sessions::Options {
            tls13,
            suites: vec![suite],
            exchanges: 4,
            body: 256 * 1024,
            ..tls_sessions::Options::default()
        });
        let table = Arc::new(KeyTable::new(16));
        table.load_bytes(keys.as_bytes(), "bench");
        let ctx = Arc::new(DecryptContext::new(
            table,
            DecryptLimits::default(),
            1 << 20,
        ));
        let bytes: usize = t.chunks.iter().map(|(_, b)| b.len()).sum();
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut d = TlsDecryptor::new(ctx.clone());
                let mut plain = 0;
                for (c2s, chunk) in &t.chunks {
                    let dir = if *c2s {
                        Dir::ClientToServer
                    } else {
                        Dir::ServerToClient
                    };
                    d.feed(dir, black_box(chunk), 0, &mut |e| {
                        if let shadowmcp::tls_decrypt::TlsEvent::Plaintext { data, .. } = e {
                            plain += data.len();
                        }
                    });
                }
                assert_eq!(plain, t.client_plain.len() + t.server_plain.len());
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_host_misses,
    bench_shared_walks,
    bench_decode,
    bench_flow_lookup,
    bench_tls,
    bench_dns,
    bench_http,
    bench_http2,
    bench_mcp,
    bench_tls_decrypt,
    bench_engine
);
criterion_main!(benches);
