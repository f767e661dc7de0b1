//! Micro-benchmarks of the per-packet hot path, one group per stage:
//! link/IP decode, flow lookup, TLS ClientHello, DNS, HTTP request head, the
//! JSON-RPC prefilter and the MCP classifier, TLS record decryption from a
//! key log, and the whole engine over a real capture. Inputs are the committed captures and parser test data, so the
//! numbers follow real traffic, not synthetic best cases.
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
    bench_decode,
    bench_flow_lookup,
    bench_tls,
    bench_dns,
    bench_http,
    bench_mcp,
    bench_tls_decrypt,
    bench_engine
);
criterion_main!(benches);
