//! Deterministic generator of large benchmark captures (classic pcap, Ethernet).
//!
//! Scenarios (see docs/performance.md):
//!
//! - `egress-mix`: interleaved traffic as on an egress link. A pool of
//!   `--concurrency` flows is kept open; each step picks a flow at random and
//!   lets it send its next packet or burst. Flow mix by count: DNS over UDP
//!   (query + A/AAAA answer), TLS 1.3 (byte-correct ClientHello with SNI and
//!   ALPN, ServerHello, then application_data records: most of the bytes),
//!   cleartext HTTP/1.1 REST with JSON bodies on keep-alive connections, and
//!   about 0.5 % cleartext MCP Streamable HTTP sessions.
//! - `flow-flood`: `--flows` distinct short TCP flows (handshake, one small
//!   request, FIN teardown: 7 packets each), all started within
//!   `--duration-s` seconds of capture time so none idles out.
//!
//! Same arguments and seed give the same file, byte for byte. Output is
//! streamed through a `BufWriter`; memory is bounded by the flow pool
//! (egress-mix) or by the flows in flight (flow-flood, about 20k for 1M flows).

use clap::{Parser, ValueEnum};
use etherparse::PacketBuilder;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// ~1 GB of TLS bulk, DNS, HTTP REST and a few MCP sessions, interleaved.
    EgressMix,
    /// Many distinct short TCP flows of small packets.
    FlowFlood,
}

#[derive(Parser)]
#[command(
    name = "shadowmcp-bench-gen",
    about = "Write deterministic benchmark captures (classic pcap, Ethernet) for shadowmcp"
)]
struct Cli {
    /// Which traffic to generate.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Output pcap file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// PRNG seed: same seed and arguments give the same file.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// egress-mix: stop opening new flows once the file reaches this size (MiB).
    #[arg(long, default_value_t = 1024)]
    size_mb: u64,
    /// egress-mix: flows open at once.
    #[arg(long, default_value_t = 3000)]
    concurrency: usize,
    /// egress-mix: average link rate, sets the timestamps (Mbit/s).
    #[arg(long, default_value_t = 1000)]
    rate_mbps: u64,
    /// flow-flood: number of distinct TCP flows.
    #[arg(long, default_value_t = 1_000_000)]
    flows: u64,
    /// flow-flood: all flows start and end within this many seconds.
    #[arg(long, default_value_t = 60)]
    duration_s: u64,
    /// flow-flood: bytes of the client's request in each flow.
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// flow-flood: leave every flow open (the server acknowledges the
    /// request, nobody closes), five packets per flow: all flows stay alive
    /// in a sensor's table until its idle timeout.
    #[arg(long)]
    open: bool,
}

/// 2025-06-15T00:00:00Z: a fixed start so the file never depends on the clock.
const START_NS: u64 = 1_750_000_000 * 1_000_000_000;
/// Ethernet snap length written in the pcap header; generated frames are < 1600 bytes.
const SNAPLEN: u32 = 65_535;
/// TCP payload per segment (an MSS of 1460 minus timestamp options, rounded).
const MSS: usize = 1400;
/// Longest TLS 1.3 ciphertext of a full record: 2^14 + 1 (content type) + 16 (AEAD tag)
/// (RFC 8446 §5.2 allows up to 2^14 + 256).
const TLS_MAX_BODY: usize = 16_384 + 17;
/// SYN options: MSS 1460, NOP NOP, SACK permitted, NOP, window scale 7.
const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];
const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const DNS_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x35];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = std::time::Instant::now();
    match run(&cli) {
        Ok(summary) => {
            eprintln!(
                "{}: {} packets, {} bytes, {} flows, {:.1} s of capture time, generated in {:.1} s",
                cli.output.display(),
                summary.packets,
                summary.bytes,
                summary.flows,
                summary.capture_ns as f64 / 1e9,
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shadowmcp-bench-gen: {}: {e}", cli.output.display());
            ExitCode::from(2)
        }
    }
}

struct Summary {
    packets: u64,
    bytes: u64,
    flows: u64,
    capture_ns: u64,
}

fn run(cli: &Cli) -> io::Result<Summary> {
    let file = File::create(&cli.output)?;
    let mut pw = PcapWriter::new(BufWriter::with_capacity(1 << 20, file))?;
    let flows = match cli.scenario {
        Scenario::EgressMix => egress_mix(cli, &mut pw)?,
        Scenario::FlowFlood => flow_flood(cli, &mut pw)?,
    };
    let capture_ns = pw.last_ns.saturating_sub(START_NS);
    let (packets, bytes) = (pw.packets, pw.bytes);
    pw.w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(Summary {
        packets,
        bytes,
        flows,
        capture_ns,
    })
}

// ---------------------------------------------------------------- PRNG

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough to vary traffic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }
    /// Uniform in 0..n (0 when n is 0), by multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn range(&mut self, lo: u64, hi_incl: u64) -> u64 {
        lo + self.below(hi_incl.saturating_sub(lo).saturating_add(1))
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Log-uniform in lo..=hi: many small transfers, a few large ones.
    fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let f = self.unit();
        ((lo as f64) * ((hi as f64) / (lo as f64)).powf(f)) as u64
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }
}

/// SplitMix64 finaliser, also used as a stateless hash of flow indexes.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------- pcap writing

/// Classic pcap (microsecond timestamps, little endian, LINKTYPE_ETHERNET).
struct PcapWriter<W: Write> {
    w: W,
    packets: u64,
    bytes: u64,
    last_ns: u64,
}

impl<W: Write> PcapWriter<W> {
    fn new(mut w: W) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
        w.write_all(&h)?;
        Ok(PcapWriter {
            w,
            packets: 0,
            bytes: 24,
            last_ns: START_NS,
        })
    }

    fn record_header(&mut self, ts_ns: u64, len: usize) -> io::Result<()> {
        let len = u32::try_from(len).map_err(|_| io::Error::other("frame too large"))?;
        let mut h = [0u8; 16];
        let us = ts_ns / 1000;
        h[0..4].copy_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&len.to_le_bytes());
        h[12..16].copy_from_slice(&len.to_le_bytes());
        self.w.write_all(&h)?;
        self.packets += 1;
        self.bytes += 16 + u64::from(len);
        self.last_ns = self.last_ns.max(ts_ns);
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Addrs {
    V4 { client: [u8; 4], server: [u8; 4] },
    V6 { client: [u8; 16], server: [u8; 16] },
}

/// Both ends of a flow; "client" is the side that opens it.
#[derive(Clone, Copy)]
struct Ends {
    client_mac: [u8; 6],
    server_mac: [u8; 6],
    addrs: Addrs,
    client_port: u16,
    server_port: u16,
}

const SYN: u8 = 1;
const ACK: u8 = 2;
const PSH: u8 = 4;
const FIN: u8 = 8;

struct Seg<'a> {
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &'a [u8],
}

fn ip_step(ends: &Ends, from_client: bool) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let (src_mac, dst_mac) = if from_client {
        (ends.client_mac, ends.server_mac)
    } else {
        (ends.server_mac, ends.client_mac)
    };
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    match ends.addrs {
        Addrs::V4 { client, server } if from_client => eth.ipv4(client, server, 64),
        Addrs::V4 { client, server } => eth.ipv4(server, client, 57),
        Addrs::V6 { client, server } if from_client => eth.ipv6(client, server, 64),
        Addrs::V6 { client, server } => eth.ipv6(server, client, 57),
    }
}

fn write_tcp<W: Write>(pw: &mut PcapWriter<W>, ts_ns: u64, ends: &Ends, s: &Seg) -> io::Result<()> {
    let (sp, dp) = if s.from_client {
        (ends.client_port, ends.server_port)
    } else {
        (ends.server_port, ends.client_port)
    };
    let mut t = ip_step(ends, s.from_client).tcp(sp, dp, s.seq, 502);
    if s.flags & SYN != 0 {
        t = t
            .syn()
            .options_raw(&SYN_OPTIONS)
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    if s.flags & ACK != 0 {
        t = t.ack(s.ack);
    }
    if s.flags & PSH != 0 {
        t = t.psh();
    }
    if s.flags & FIN != 0 {
        t = t.fin();
    }
    pw.record_header(ts_ns, t.size(s.payload.len()))?;
    t.write(&mut pw.w, s.payload)
        .map_err(|e| io::Error::other(e.to_string()))
}

fn write_udp<W: Write>(
    pw: &mut PcapWriter<W>,
    ts_ns: u64,
    ends: &Ends,
    from_client: bool,
    payload: &[u8],
) -> io::Result<()> {
    let (sp, dp) = if from_client {
        (ends.client_port, ends.server_port)
    } else {
        (ends.server_port, ends.client_port)
    };
    let u = ip_step(ends, from_client).udp(sp, dp);
    pw.record_header(ts_ns, u.size(payload.len()))?;
    u.write(&mut pw.w, payload)
        .map_err(|e| io::Error::other(e.to_string()))
}

// ---------------------------------------------------------------- names and payloads

/// Ordinary destinations of an office egress link.
const NAMES: &[&str] = &[
    "www.google.com",
    "www.gstatic.com",
    "fonts.googleapis.com",
    "accounts.google.com",
    "mail.google.com",
    "drive.google.com",
    "www.youtube.com",
    "i.ytimg.com",
    "rr3---sn-4g5e6nzz.googlevideo.com",
    "login.microsoftonline.com",
    "outlook.office365.com",
    "teams.microsoft.com",
    "graph.microsoft.com",
    "update.microsoft.com",
    "www.bing.com",
    "api.github.com",
    "github.com",
    "objects.githubusercontent.com",
    "registry.npmjs.org",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "static.crates.io",
    "index.docker.io",
    "production.cloudflare.docker.com",
    "slack.com",
    "wss-primary.slack.com",
    "edgeapi.slack.com",
    "zoom.us",
    "www.atlassian.com",
    "acme.atlassian.net",
    "www.salesforce.com",
    "acme.my.salesforce.com",
    "s3.amazonaws.com",
    "ec2.eu-west-1.amazonaws.com",
    "sts.amazonaws.com",
    "d1a2b3c4d5e6f7.cloudfront.net",
    "cdn.jsdelivr.net",
    "unpkg.com",
    "www.wikipedia.org",
    "en.wikipedia.org",
    "upload.wikimedia.org",
    "www.nytimes.com",
    "www.bbc.co.uk",
    "www.linkedin.com",
    "media.licdn.com",
    "www.dropbox.com",
    "api.openai.com",
    "api.anthropic.com",
    "ocsp.digicert.com",
    "ctldl.windowsupdate.com",
    "time.apple.com",
    "gateway.icloud.com",
    "www.apple.com",
    "play.googleapis.com",
    "firebaseinstallations.googleapis.com",
    "sentry.io",
    "o123456.ingest.sentry.io",
    "api.segment.io",
    "www.notion.so",
];

/// Known remote MCP servers (see known-servers.csv): a small share of names.
const MCP_NAMES: &[&str] = &[
    "mcp.notion.com",
    "mcp.linear.app",
    "mcp.sentry.dev",
    "mcp.atlassian.com",
    "mcp.asana.com",
    "mcp.stripe.com",
];

/// Internal REST services reached over cleartext HTTP.
const REST_HOSTS: &[&str] = &[
    "inventory.corp.example",
    "orders.corp.example",
    "api.internal.example",
    "billing.corp.example",
];

/// Internal MCP servers reached over cleartext Streamable HTTP.
const MCP_HTTP_HOSTS: &[&str] = &["mcp-gw.corp.example:8000", "tools.corp.example:8080"];

const WORDS: &[&str] = &[
    "alpha",
    "bravo",
    "cable",
    "delta",
    "engine",
    "filter",
    "gasket",
    "hinge",
    "insulator",
    "joint",
    "kettle",
    "lever",
    "magnet",
    "nozzle",
    "oxide",
    "piston",
    "quartz",
    "rotor",
    "sensor",
    "turbine",
    "valve",
    "washer",
    "yoke",
    "zinc",
];

/// Deterministic address of a server name (documentation ranges, RFC 5737 / RFC 3849).
fn name_v4(name: &str) -> [u8; 4] {
    let h = fnv1a(name.as_bytes());
    let nets = [[203, 0, 113], [198, 51, 100], [192, 0, 2]];
    let n = nets[(h % 3) as usize];
    [n[0], n[1], n[2], ((h >> 8) % 250 + 2) as u8]
}

fn name_v6(name: &str) -> [u8; 16] {
    let h = fnv1a(name.as_bytes());
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[8..].copy_from_slice(&h.to_be_bytes());
    a
}

fn fnv1a(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn put_u16(v: &mut Vec<u8>, x: usize) {
    v.extend_from_slice(&(x as u16).to_be_bytes());
}

fn ext(out: &mut Vec<u8>, ty: u16, body: &[u8]) {
    out.extend_from_slice(&ty.to_be_bytes());
    put_u16(out, body.len());
    out.extend_from_slice(body);
}

/// A TLS 1.3 ClientHello record as a current browser sends it (RFC 8446 §4.1.2),
/// with SNI (RFC 6066 §3), ALPN h2 + http/1.1 (RFC 7301) and an X25519 key share.
fn client_hello(sni: &str, rng: &mut Rng) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut exts = Vec::with_capacity(256);
    let mut sn = Vec::new();
    put_u16(&mut sn, name.len() + 3);
    sn.push(0); // host_name
    put_u16(&mut sn, name.len());
    sn.extend_from_slice(name);
    ext(&mut exts, 0x0000, &sn);
    ext(&mut exts, 0x0017, &[]); // extended_master_secret
    ext(&mut exts, 0xff01, &[0]); // renegotiation_info
    ext(
        &mut exts,
        0x000a,
        &[0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18],
    ); // x25519, P-256, P-384
    ext(&mut exts, 0x000b, &[1, 0]); // ec_point_formats: uncompressed
    ext(&mut exts, 0x0023, &[]); // session_ticket
    ext(
        &mut exts,
        0x0010,
        &[
            0, 12, 2, b'h', b'2', 8, b'h', b't', b't', b'p', b'/', b'1', b'.', b'1',
        ],
    );
    ext(&mut exts, 0x0005, &[1, 0, 0, 0, 0]); // status_request: OCSP
    ext(
        &mut exts,
        0x000d,
        &[
            0, 16, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x03, 0x08, 0x05, 0x05, 0x01, 0x08,
            0x06, 0x06, 0x01,
        ],
    );
    ext(&mut exts, 0x0012, &[]); // signed_certificate_timestamp
    let mut ks = vec![0, 36, 0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&rng.bytes::<32>());
    ext(&mut exts, 0x0033, &ks); // key_share
    ext(&mut exts, 0x002d, &[1, 1]); // psk_key_exchange_modes: psk_dhe_ke
    ext(&mut exts, 0x002b, &[4, 0x03, 0x04, 0x03, 0x03]); // supported_versions
    let mut body = Vec::with_capacity(exts.len() + 128);
    body.extend_from_slice(&[0x03, 0x03]);
    body.extend_from_slice(&rng.bytes::<32>());
    body.push(32);
    body.extend_from_slice(&rng.bytes::<32>());
    let suites: [u16; 9] = [
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8,
    ];
    put_u16(&mut body, suites.len() * 2);
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // compression: null
    put_u16(&mut body, exts.len());
    body.extend_from_slice(&exts);
    handshake_record(1, &body, [0x03, 0x01])
}

/// ServerHello selecting TLS 1.3 and TLS_AES_128_GCM_SHA256, then the
/// middlebox-compatibility ChangeCipherSpec (RFC 8446 §D.4).
fn server_hello(rng: &mut Rng) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&rng.bytes::<32>());
    body.push(32);
    body.extend_from_slice(&rng.bytes::<32>());
    body.extend_from_slice(&[0x13, 0x01, 0]);
    let mut exts = Vec::new();
    ext(&mut exts, 0x002b, &[0x03, 0x04]);
    let mut ks = vec![0x00, 0x1d, 0, 32];
    ks.extend_from_slice(&rng.bytes::<32>());
    ext(&mut exts, 0x0033, &ks);
    put_u16(&mut body, exts.len());
    body.extend_from_slice(&exts);
    let mut rec = handshake_record(2, &body, [0x03, 0x03]);
    rec.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
    rec
}

fn handshake_record(msg_type: u8, body: &[u8], version: [u8; 2]) -> Vec<u8> {
    let mut rec = Vec::with_capacity(body.len() + 9);
    rec.extend_from_slice(&[0x16, version[0], version[1]]);
    put_u16(&mut rec, body.len() + 4);
    rec.push(msg_type);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(body);
    rec
}

/// DNS query and answer (RFC 1035 §4.1) for one A or AAAA record.
fn dns_pair(name: &str, aaaa: bool, rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
    let id = rng.next() as u16;
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; QDCOUNT 1
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    let qtype: u16 = if aaaa { 28 } else { 1 };
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&[0, 1]);
    let mut a = q.clone();
    a[2..8].copy_from_slice(&[0x81, 0x80, 0, 1, 0, 1]); // QR RD RA; ANCOUNT 1
    a.extend_from_slice(&[0xc0, 0x0c]); // pointer to the question name
    a.extend_from_slice(&qtype.to_be_bytes());
    a.extend_from_slice(&[0, 1]);
    a.extend_from_slice(&(60 + rng.below(3540) as u32).to_be_bytes());
    if aaaa {
        a.extend_from_slice(&[0, 16]);
        a.extend_from_slice(&name_v6(name));
    } else {
        a.extend_from_slice(&[0, 4]);
        a.extend_from_slice(&name_v4(name));
    }
    (q, a)
}

/// A JSON object of about `target` bytes describing an inventory item.
fn json_item(rng: &mut Rng, target: usize) -> String {
    let id = rng.below(10_000_000);
    let mut s = format!(
        "{{\"id\":{id},\"name\":\"item-{id}\",\"sku\":\"SKU-{:06X}\",\"qty\":{},\"price\":{}.{:02},\"tags\":[\"{}\",\"{}\"],\"description\":\"",
        rng.below(0xFF_FFFF),
        rng.below(500),
        rng.below(1000),
        rng.below(100),
        rng.pick(WORDS),
        rng.pick(WORDS),
    );
    while s.len() + 3 < target {
        s.push_str(rng.pick(WORDS));
        s.push(' ');
    }
    s.push_str("\"}");
    s
}

fn http_request(method: &str, host: &str, path: &str, extra: &str, body: &str) -> Vec<u8> {
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench-client/1.0\r\nAccept: application/json\r\n{extra}"
    );
    if method != "GET" {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

fn http_response(status: &str, extra: &str, body: &str) -> Vec<u8> {
    let ct = if body.is_empty() {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    format!(
        "HTTP/1.1 {status}\r\nDate: Sun, 15 Jun 2025 00:00:00 GMT\r\nServer: bench\r\n{ct}{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

// ---------------------------------------------------------------- egress mix flows

/// What one side sends next: literal bytes, or a stream of TLS application_data records.
enum Chunk {
    Bytes { data: Vec<u8>, pos: usize },
    Tls(TlsStream),
}

/// `left` bytes (headers included) of application_data records with random bodies.
struct TlsStream {
    left: usize,
    rec_len: usize,
    rec_off: usize,
    hdr: [u8; 5],
}

impl TlsStream {
    fn new(len: usize) -> Self {
        TlsStream {
            left: len.max(6),
            rec_len: 0,
            rec_off: 0,
            hdr: [0; 5],
        }
    }

    fn fill(&mut self, out: &mut Vec<u8>, max: usize, pool: &[u8], rng: &mut Rng) {
        while out.len() < max && self.left > 0 {
            if self.rec_off == self.rec_len {
                let body = self.left.saturating_sub(5).clamp(1, TLS_MAX_BODY);
                self.rec_len = body + 5;
                self.left = self.left.max(self.rec_len);
                self.rec_off = 0;
                self.hdr = [0x17, 0x03, 0x03, (body >> 8) as u8, body as u8];
            }
            let room = max - out.len();
            let take = if self.rec_off < 5 {
                let take = (5 - self.rec_off).min(room);
                out.extend_from_slice(&self.hdr[self.rec_off..self.rec_off + take]);
                take
            } else {
                let take = (self.rec_len - self.rec_off).min(room);
                let at = rng.below((pool.len() - take) as u64) as usize;
                out.extend_from_slice(&pool[at..at + take]);
                take
            };
            self.rec_off += take;
            self.left -= take;
        }
    }
}

struct Msg {
    from_client: bool,
    chunk: Chunk,
}

impl Msg {
    fn bytes(from_client: bool, data: Vec<u8>) -> Self {
        Msg {
            from_client,
            chunk: Chunk::Bytes { data, pos: 0 },
        }
    }
    fn tls(from_client: bool, len: usize) -> Self {
        Msg {
            from_client,
            chunk: Chunk::Tls(TlsStream::new(len)),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Syn,
    SynAck,
    Data,
    Done,
}

struct TcpFlow {
    ends: Ends,
    phase: Phase,
    /// Next sequence number of each side.
    cseq: u32,
    sseq: u32,
    msgs: VecDeque<Msg>,
}

struct DnsFlow {
    ends: Ends,
    query: Vec<u8>,
    answer: Vec<u8>,
    answered: bool,
    asked: bool,
}

enum Flow {
    Tcp(TcpFlow),
    Dns(DnsFlow),
}

/// Shared state of the egress-mix generator.
struct Mix<'a, W: Write> {
    pw: &'a mut PcapWriter<W>,
    rng: Rng,
    now_ns: u64,
    rate_mbps: u64,
    /// Random bytes that TLS record bodies are cut from (cheaper than a PRNG per byte).
    pool: Vec<u8>,
    seg: Vec<u8>,
    /// Next ephemeral port per client host, so concurrent 5-tuples never collide.
    next_port: Vec<u16>,
    flows: u64,
}

/// Client hosts behind the egress link (10.1.0.0/16, fd00:1::/64).
const CLIENT_HOSTS: u64 = 2000;

impl<W: Write> Mix<'_, W> {
    /// Advance the clock by the wire time of `len` bytes at the configured rate.
    fn tick(&mut self, len: usize) -> u64 {
        // + 24 bytes of preamble, FCS and inter-frame gap per frame.
        let bits = (len as u64 + 24) * 8;
        self.now_ns += bits * 1000 / self.rate_mbps.max(1) + self.rng.below(2000);
        self.now_ns
    }

    fn client(&mut self, v6: bool) -> (usize, [u8; 6], Addrs) {
        let host = self.rng.below(CLIENT_HOSTS) as usize;
        let mac = [0x02, 0x10, 0, 0, (host >> 8) as u8, host as u8];
        let addrs = if v6 {
            let mut c = [0u8; 16];
            c[..4].copy_from_slice(&[0xfd, 0x00, 0x00, 0x01]);
            c[14] = (host >> 8) as u8;
            c[15] = host as u8;
            Addrs::V6 {
                client: c,
                server: [0; 16],
            }
        } else {
            Addrs::V4 {
                client: [10, 1, (host >> 8) as u8, host as u8],
                server: [0; 4],
            }
        };
        (host, mac, addrs)
    }

    fn ends(&mut self, v6: bool, server_name: &str, server_port: u16, server_mac: [u8; 6]) -> Ends {
        let (host, client_mac, addrs) = self.client(v6);
        let addrs = match addrs {
            Addrs::V4 { client, .. } => Addrs::V4 {
                client,
                server: name_v4(server_name),
            },
            Addrs::V6 { client, .. } => Addrs::V6 {
                client,
                server: name_v6(server_name),
            },
        };
        let p = self.next_port.get_mut(host).map_or(32_768, |p| {
            *p = if *p >= 60_999 { 32_768 } else { *p + 1 };
            *p
        });
        Ends {
            client_mac,
            server_mac,
            addrs,
            client_port: p,
            server_port,
        }
    }

    fn pick_name(&mut self) -> &'static str {
        if self.rng.below(1000) < 10 {
            self.rng.pick(MCP_NAMES)
        } else {
            self.rng.pick(NAMES)
        }
    }

    fn tcp(&mut self, ends: Ends, msgs: VecDeque<Msg>) -> Flow {
        Flow::Tcp(TcpFlow {
            ends,
            phase: Phase::Syn,
            cseq: self.rng.next() as u32,
            sseq: self.rng.next() as u32,
            msgs,
        })
    }

    /// A new flow: DNS 40 %, TLS 38 %, REST 21.5 %, MCP 0.5 % (by count).
    fn new_flow(&mut self) -> Flow {
        self.flows += 1;
        let r = self.rng.below(1000);
        let v6 = self.rng.below(10) == 0;
        if r < 400 {
            let name = self.pick_name();
            let aaaa = self.rng.below(5) == 0;
            let (query, answer) = dns_pair(name, aaaa, &mut self.rng);
            let (_, client_mac, addrs) = self.client(v6);
            let addrs = match addrs {
                Addrs::V4 { client, .. } => Addrs::V4 {
                    client,
                    server: [10, 0, 0, 53],
                },
                Addrs::V6 { client, .. } => {
                    let mut s = [0u8; 16];
                    s[..4].copy_from_slice(&[0xfd, 0x00, 0x00, 0x00]);
                    s[15] = 0x53;
                    Addrs::V6 { client, server: s }
                }
            };
            let ends = Ends {
                client_mac,
                server_mac: DNS_MAC,
                addrs,
                client_port: self.rng.range(1024, 65_535) as u16,
                server_port: 53,
            };
            Flow::Dns(DnsFlow {
                ends,
                query,
                answer,
                answered: false,
                asked: false,
            })
        } else if r < 780 {
            let name = self.pick_name();
            let ends = self.ends(v6, name, 443, GATEWAY_MAC);
            let mut msgs = VecDeque::new();
            msgs.push_back(Msg::bytes(true, client_hello(name, &mut self.rng)));
            msgs.push_back(Msg::bytes(false, server_hello(&mut self.rng)));
            // EncryptedExtensions, Certificate, CertificateVerify, Finished.
            msgs.push_back(Msg::tls(false, self.rng.range(2500, 6000) as usize));
            let mut ccs = vec![0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
            ccs.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x35]);
            ccs.extend_from_slice(&self.rng.bytes::<53>());
            msgs.push_back(Msg::bytes(true, ccs));
            let total = self.rng.log_uniform(2_000, 1_000_000);
            let rounds = self.rng.range(1, 4);
            for _ in 0..rounds {
                let upload = self.rng.below(10) == 0;
                let big = (total / rounds) as usize;
                let small = self.rng.range(150, 1200) as usize;
                let (up, down) = if upload { (big, small) } else { (small, big) };
                msgs.push_back(Msg::tls(true, up));
                msgs.push_back(Msg::tls(false, down));
            }
            self.tcp(ends, msgs)
        } else if r < 995 {
            let host = self.rng.pick(REST_HOSTS);
            let port = if self.rng.below(2) == 0 { 80 } else { 8080 };
            let ends = self.ends(v6, host, port, GATEWAY_MAC);
            let mut msgs = VecDeque::new();
            for _ in 0..self.rng.range(1, 12) {
                if self.rng.below(10) < 7 {
                    let n = self.rng.range(80, 3000) as usize;
                    let body = json_item(&mut self.rng, n);
                    msgs.push_back(Msg::bytes(
                        true,
                        http_request("POST", host, "/api/v1/items", "", &body),
                    ));
                    let n = self.rng.range(100, 1500) as usize;
                    let resp = format!(
                        "{{\"status\":\"created\",\"item\":{}}}",
                        json_item(&mut self.rng, n)
                    );
                    msgs.push_back(Msg::bytes(false, http_response("201 Created", "", &resp)));
                } else {
                    let page = self.rng.range(1, 50);
                    let path = format!("/api/v1/items?page={page}&limit=50");
                    msgs.push_back(Msg::bytes(true, http_request("GET", host, &path, "", "")));
                    let mut list = String::from("{\"items\":[");
                    for i in 0..self.rng.range(1, 40) {
                        if i > 0 {
                            list.push(',');
                        }
                        let n = self.rng.range(100, 600) as usize;
                        list.push_str(&json_item(&mut self.rng, n));
                    }
                    list.push_str(&format!("],\"page\":{page}}}"));
                    msgs.push_back(Msg::bytes(false, http_response("200 OK", "", &list)));
                }
            }
            self.tcp(ends, msgs)
        } else {
            let host = self.rng.pick(MCP_HTTP_HOSTS);
            let port = host
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(80);
            let ends = self.ends(v6, host, port, GATEWAY_MAC);
            let msgs = mcp_session(host, &mut self.rng);
            self.tcp(ends, msgs)
        }
    }

    /// Let `flow` send its next packet or burst. Returns false when it is finished.
    fn step(&mut self, flow: &mut Flow) -> io::Result<bool> {
        match flow {
            Flow::Dns(d) => {
                if !d.asked {
                    d.asked = true;
                    let ts = self.tick(d.query.len() + 42);
                    write_udp(self.pw, ts, &d.ends, true, &d.query)?;
                    Ok(true)
                } else if !d.answered {
                    d.answered = true;
                    let ts = self.tick(d.answer.len() + 42);
                    write_udp(self.pw, ts, &d.ends, false, &d.answer)?;
                    Ok(false)
                } else {
                    Ok(false)
                }
            }
            Flow::Tcp(t) => self.step_tcp(t),
        }
    }

    fn emit(&mut self, ends: &Ends, seg: &Seg) -> io::Result<()> {
        let ts = self.tick(seg.payload.len() + 66);
        write_tcp(self.pw, ts, ends, seg)
    }

    fn step_tcp(&mut self, t: &mut TcpFlow) -> io::Result<bool> {
        let ends = t.ends;
        match t.phase {
            Phase::Syn => {
                self.emit(
                    &ends,
                    &Seg {
                        from_client: true,
                        seq: t.cseq,
                        ack: 0,
                        flags: SYN,
                        payload: &[],
                    },
                )?;
                t.cseq = t.cseq.wrapping_add(1);
                t.phase = Phase::SynAck;
                Ok(true)
            }
            Phase::SynAck => {
                let s = Seg {
                    from_client: false,
                    seq: t.sseq,
                    ack: t.cseq,
                    flags: SYN | ACK,
                    payload: &[],
                };
                self.emit(&ends, &s)?;
                t.sseq = t.sseq.wrapping_add(1);
                // The client's ACK follows at once, then its first data.
                let s = Seg {
                    from_client: true,
                    seq: t.cseq,
                    ack: t.sseq,
                    flags: ACK,
                    payload: &[],
                };
                self.emit(&ends, &s)?;
                t.phase = Phase::Data;
                Ok(true)
            }
            Phase::Data => {
                let Some(msg) = t.msgs.front_mut() else {
                    self.close(t)?;
                    return Ok(false);
                };
                let from_client = msg.from_client;
                // A congestion window's worth of segments, then the receiver's ACK.
                let burst = self.rng.range(4, 32);
                let mut done = false;
                let mut seg = std::mem::take(&mut self.seg);
                for _ in 0..burst {
                    seg.clear();
                    match &mut msg.chunk {
                        Chunk::Bytes { data, pos } => {
                            let end = (*pos + MSS).min(data.len());
                            seg.extend_from_slice(data.get(*pos..end).unwrap_or_default());
                            *pos = end;
                            done = *pos >= data.len();
                        }
                        Chunk::Tls(s) => {
                            s.fill(&mut seg, MSS, &self.pool, &mut self.rng);
                            done = s.left == 0;
                        }
                    }
                    let (seq, ack) = if from_client {
                        (t.cseq, t.sseq)
                    } else {
                        (t.sseq, t.cseq)
                    };
                    let s = Seg {
                        from_client,
                        seq,
                        ack,
                        flags: if done { ACK | PSH } else { ACK },
                        payload: &seg,
                    };
                    let next = seq.wrapping_add(seg.len() as u32);
                    if from_client {
                        t.cseq = next;
                    } else {
                        t.sseq = next;
                    }
                    self.emit(&ends, &s)?;
                    if done {
                        break;
                    }
                }
                self.seg = seg;
                let (seq, ack) = if from_client {
                    (t.sseq, t.cseq)
                } else {
                    (t.cseq, t.sseq)
                };
                self.emit(
                    &ends,
                    &Seg {
                        from_client: !from_client,
                        seq,
                        ack,
                        flags: ACK,
                        payload: &[],
                    },
                )?;
                if done {
                    t.msgs.pop_front();
                }
                Ok(true)
            }
            Phase::Done => Ok(false),
        }
    }

    /// Client FIN, server FIN, client ACK (RFC 9293 §3.6).
    fn close(&mut self, t: &mut TcpFlow) -> io::Result<()> {
        let ends = t.ends;
        let s = Seg {
            from_client: true,
            seq: t.cseq,
            ack: t.sseq,
            flags: FIN | ACK,
            payload: &[],
        };
        self.emit(&ends, &s)?;
        t.cseq = t.cseq.wrapping_add(1);
        let s = Seg {
            from_client: false,
            seq: t.sseq,
            ack: t.cseq,
            flags: FIN | ACK,
            payload: &[],
        };
        self.emit(&ends, &s)?;
        t.sseq = t.sseq.wrapping_add(1);
        let s = Seg {
            from_client: true,
            seq: t.cseq,
            ack: t.sseq,
            flags: ACK,
            payload: &[],
        };
        self.emit(&ends, &s)?;
        t.phase = Phase::Done;
        Ok(())
    }

    /// End a flow that is still open when the size target is reached: its
    /// current message is cut short and the connection closed.
    fn finish(&mut self, flow: &mut Flow) -> io::Result<()> {
        match flow {
            Flow::Dns(_) => {
                while self.step(flow)? {}
                Ok(())
            }
            Flow::Tcp(t) => {
                if t.phase == Phase::Done {
                    return Ok(());
                }
                while t.phase != Phase::Data {
                    self.step_tcp(t)?;
                }
                // Only the record under way is finished (a capture cut mid-transfer);
                // later messages are dropped.
                while t.msgs.len() > 1 {
                    t.msgs.pop_back();
                }
                if let Some(Msg {
                    chunk: Chunk::Tls(s),
                    ..
                }) = t.msgs.front_mut()
                {
                    s.left = s.rec_len - s.rec_off;
                    if s.left == 0 {
                        t.msgs.clear();
                    }
                }
                while t.phase == Phase::Data {
                    if !self.step_tcp(t)? {
                        break;
                    }
                }
                Ok(())
            }
        }
    }
}

/// A Streamable HTTP MCP session (protocol 2025-06-18): initialize,
/// notifications/initialized, tools/list, one to three tools/call.
fn mcp_session(host: &str, rng: &mut Rng) -> VecDeque<Msg> {
    let mut msgs = VecDeque::new();
    let sid = format!("{:016x}{:016x}", rng.next(), rng.next());
    let accept = "Accept: application/json, text/event-stream\r\n";
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench-client","version":"1.0"}}}"#;
    msgs.push_back(Msg::bytes(
        true,
        http_request("POST", host, "/mcp", accept, init),
    ));
    let result = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true}},"serverInfo":{"name":"bench-server","version":"1.0"}}}"#;
    let sid_hdr = format!("Mcp-Session-Id: {sid}\r\n");
    msgs.push_back(Msg::bytes(false, http_response("200 OK", &sid_hdr, result)));
    let hdrs = format!("{accept}{sid_hdr}MCP-Protocol-Version: 2025-06-18\r\n");
    let note = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    msgs.push_back(Msg::bytes(
        true,
        http_request("POST", host, "/mcp", &hdrs, note),
    ));
    msgs.push_back(Msg::bytes(false, http_response("202 Accepted", "", "")));
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    msgs.push_back(Msg::bytes(
        true,
        http_request("POST", host, "/mcp", &hdrs, list),
    ));
    let tools = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"search","description":"Search the item catalogue","inputSchema":{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}},{"name":"get_item","description":"Fetch one item by id","inputSchema":{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}}]}}"#;
    msgs.push_back(Msg::bytes(false, http_response("200 OK", "", tools)));
    for id in 2..2 + rng.range(1, 3) {
        let call = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"search","arguments":{{"query":"{} {}"}}}}}}"#,
            rng.pick(WORDS),
            rng.pick(WORDS)
        );
        msgs.push_back(Msg::bytes(
            true,
            http_request("POST", host, "/mcp", &hdrs, &call),
        ));
        let len = rng.range(200, 4000) as usize;
        let text = json_item(rng, len).replace('"', "'");
        let res = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
        );
        msgs.push_back(Msg::bytes(false, http_response("200 OK", "", &res)));
    }
    msgs
}

fn egress_mix<W: Write>(cli: &Cli, pw: &mut PcapWriter<W>) -> io::Result<u64> {
    let target = cli.size_mb.saturating_mul(1 << 20);
    let mut rng = Rng(cli.seed);
    let mut pool = vec![0u8; 1 << 20];
    for c in pool.chunks_mut(8) {
        c.copy_from_slice(&rng.next().to_le_bytes()[..c.len()]);
    }
    let mut mix = Mix {
        pw,
        rng,
        now_ns: START_NS,
        rate_mbps: cli.rate_mbps,
        pool,
        seg: Vec::with_capacity(MSS),
        next_port: vec![32_767; CLIENT_HOSTS as usize],
        flows: 0,
    };
    let k = cli.concurrency.max(1);
    let mut flows: Vec<Flow> = (0..k).map(|_| mix.new_flow()).collect();
    while mix.pw.bytes < target {
        let i = mix.rng.below(k as u64) as usize;
        let Some(flow) = flows.get_mut(i) else { break };
        if !mix.step(flow)? {
            *flow = mix.new_flow();
        }
    }
    for flow in &mut flows {
        mix.finish(flow)?;
    }
    Ok(mix.flows)
}

// ---------------------------------------------------------------- flow flood

/// Seven packets per flow: SYN, SYN-ACK, ACK, request, FIN, FIN, ACK.
const FLOOD_STEPS: u8 = 7;
/// With `--open`: SYN, SYN-ACK, ACK, request, the server's ACK.
const FLOOD_OPEN_STEPS: u8 = 5;

fn flow_flood<W: Write>(cli: &Cli, pw: &mut PcapWriter<W>) -> io::Result<u64> {
    // 2^28: 2^24 client addresses (10.0.0.0/8) with 16 ports each.
    let n = cli.flows.min(1 << 28);
    // Flows start evenly over the window minus the longest flow life (~2.4 s).
    let window_ns = cli.duration_s.saturating_sub(3).max(1) * 1_000_000_000;
    let gap_ns = (window_ns / n.max(1)).max(1);
    let payload = flood_payload(cli.payload);
    // Min-heap of (time, flow, step): only flows in flight are held.
    let mut heap: BinaryHeap<Reverse<(u64, u64, u8)>> = BinaryHeap::new();
    let mut next_flow = 0u64;
    let start_of = |i: u64| START_NS + i * gap_ns + mix64(cli.seed ^ i.wrapping_mul(31)) % gap_ns;
    loop {
        // Admit flows that start before the earliest pending packet.
        while next_flow < n {
            let t0 = start_of(next_flow);
            if heap.peek().is_some_and(|Reverse((t, _, _))| *t < t0) {
                break;
            }
            heap.push(Reverse((t0, next_flow, 0)));
            next_flow += 1;
        }
        let Some(Reverse((ts, i, step))) = heap.pop() else {
            break;
        };
        let f = FloodFlow::new(cli.seed, i, n);
        let seg = if cli.open && step == 4 {
            f.server_ack(payload.len())
        } else {
            f.segment(step, &payload)
        };
        write_tcp(pw, ts, &f.ends, &seg)?;
        let steps = if cli.open {
            FLOOD_OPEN_STEPS
        } else {
            FLOOD_STEPS
        };
        if step + 1 < steps {
            heap.push(Reverse((ts + f.delay_after(step), i, step + 1)));
        }
    }
    Ok(n)
}

/// A 64-byte (by default) HTTP request: the flood exercises per-flow parser state.
fn flood_payload(len: usize) -> Vec<u8> {
    let head = "GET /";
    let tail = " HTTP/1.1\r\nHost: flood.example\r\n\r\n";
    let fill = len.saturating_sub(head.len() + tail.len());
    let mut p = Vec::with_capacity(len);
    p.extend_from_slice(head.as_bytes());
    p.extend(std::iter::repeat_n(b'a', fill));
    p.extend_from_slice(tail.as_bytes());
    p.truncate(len);
    p
}

/// Everything about flood flow `i`, derived from (seed, i) without stored state.
struct FloodFlow {
    ends: Ends,
    cisn: u32,
    sisn: u32,
    rtt_ns: u64,
    think_ns: u64,
}

impl FloodFlow {
    /// Flow `i` of `n` (n ≤ 2^28 keeps every client address and port distinct).
    fn new(seed: u64, i: u64, n: u64) -> Self {
        let h = mix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
        let h2 = mix64(h);
        // Injective client (address, port): `hosts` client addresses with 16
        // flows each, one port band per flow; a host's flows are spread in time.
        let hosts = n.div_ceil(16).max(1);
        let (host, band) = (i % hosts, i / hosts);
        // Odd multiplier plus offset: a bijection on 24 bits that scatters hosts.
        let a = (host.wrapping_mul(0x9E_3779).wrapping_add(0x5A_5A5A)) & 0xFF_FFFF;
        let port = 32_768 + (band & 15) as u16 * 1_700 + (h % 1_700) as u16;
        let server = (h >> 16) % 500;
        let addrs = if i % 10 == 9 {
            let mut c = [0u8; 16];
            c[..4].copy_from_slice(&[0xfd, 0x00, 0x00, 0x02]);
            c[12] = (a >> 16) as u8;
            c[13] = (a >> 8) as u8;
            c[14] = a as u8;
            let mut s = [0u8; 16];
            s[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            s[14] = (server >> 8) as u8;
            s[15] = server as u8;
            Addrs::V6 {
                client: c,
                server: s,
            }
        } else {
            Addrs::V4 {
                client: [10, (a >> 16) as u8, (a >> 8) as u8, a as u8],
                server: [198, 18 + (server >> 8) as u8, server as u8, 10],
            }
        };
        FloodFlow {
            ends: Ends {
                client_mac: [
                    0x02,
                    0x20,
                    (a >> 24) as u8,
                    (a >> 16) as u8,
                    (a >> 8) as u8,
                    a as u8,
                ],
                server_mac: GATEWAY_MAC,
                addrs,
                client_port: port,
                server_port: if h & (1 << 40) == 0 { 80 } else { 8080 },
            },
            cisn: h2 as u32,
            sisn: (h2 >> 32) as u32,
            rtt_ns: 1_000_000 + (h >> 24) % 99_000_000,
            think_ns: (h2 >> 8) % 2_000_000_000,
        }
    }

    /// Time from packet `step` to the next one, as seen near the client.
    fn delay_after(&self, step: u8) -> u64 {
        match step {
            0 | 4 => self.rtt_ns, // SYN -> SYN-ACK, client FIN -> server FIN
            3 => self.think_ns,   // request -> client closes
            _ => 20_000,
        }
    }

    /// The server acknowledging a request of `len` bytes.
    fn server_ack(&self, len: usize) -> Seg<'static> {
        Seg {
            from_client: false,
            seq: self.sisn.wrapping_add(1),
            ack: self.cisn.wrapping_add(1 + len as u32),
            flags: ACK,
            payload: &[],
        }
    }

    fn segment<'a>(&self, step: u8, payload: &'a [u8]) -> Seg<'a> {
        let c = self.cisn;
        let s = self.sisn;
        let p = payload.len() as u32;
        let (from_client, seq, ack, flags, body): (bool, u32, u32, u8, &[u8]) = match step {
            0 => (true, c, 0, SYN, &[]),
            1 => (false, s, c.wrapping_add(1), SYN | ACK, &[]),
            2 => (true, c.wrapping_add(1), s.wrapping_add(1), ACK, &[]),
            3 => (
                true,
                c.wrapping_add(1),
                s.wrapping_add(1),
                ACK | PSH,
                payload,
            ),
            4 => (
                true,
                c.wrapping_add(1 + p),
                s.wrapping_add(1),
                FIN | ACK,
                &[],
            ),
            5 => (
                false,
                s.wrapping_add(1),
                c.wrapping_add(2 + p),
                FIN | ACK,
                &[],
            ),
            _ => (true, c.wrapping_add(2 + p), s.wrapping_add(2), ACK, &[]),
        };
        Seg {
            from_client,
            seq,
            ack,
            flags,
            payload: body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_hello_lengths_are_consistent() {
        let mut rng = Rng(1);
        let ch = client_hello("mcp.notion.com", &mut rng);
        assert_eq!(ch[0], 0x16);
        let rec_len = usize::from(u16::from_be_bytes([ch[3], ch[4]]));
        assert_eq!(rec_len + 5, ch.len());
        assert_eq!(ch[5], 1);
        let hs_len = (usize::from(ch[6]) << 16) | (usize::from(ch[7]) << 8) | usize::from(ch[8]);
        assert_eq!(hs_len + 4, rec_len);
        // Walk to the extensions and check they exactly fill the message.
        let mut p = 9 + 2 + 32;
        p += 1 + usize::from(ch[p]);
        p += 2 + usize::from(u16::from_be_bytes([ch[p], ch[p + 1]]));
        p += 1 + usize::from(ch[p]);
        let ext_len = usize::from(u16::from_be_bytes([ch[p], ch[p + 1]]));
        p += 2;
        assert_eq!(p + ext_len, ch.len());
        let mut types = Vec::new();
        while p < ch.len() {
            types.push(u16::from_be_bytes([ch[p], ch[p + 1]]));
            p += 4 + usize::from(u16::from_be_bytes([ch[p + 2], ch[p + 3]]));
        }
        assert_eq!(p, ch.len());
        for t in [0x0000, 0x0010, 0x002b, 0x0033] {
            assert!(types.contains(&t), "extension {t:#06x} missing");
        }
        let sni = b"mcp.notion.com";
        assert!(ch.windows(sni.len()).any(|w| w == sni));
    }

    #[test]
    fn tls_stream_is_a_sequence_of_whole_records() {
        let pool = vec![0xAAu8; 1 << 16];
        let mut rng = Rng(7);
        for len in [6, 100, 16_389, 16_406, 50_000] {
            let mut s = TlsStream::new(len);
            let mut all = Vec::new();
            let mut seg = Vec::new();
            while s.left > 0 {
                seg.clear();
                s.fill(&mut seg, MSS, &pool, &mut rng);
                assert!(!seg.is_empty() && seg.len() <= MSS);
                all.extend_from_slice(&seg);
            }
            let mut p = 0;
            while p < all.len() {
                assert_eq!(&all[p..p + 3], &[0x17, 0x03, 0x03], "len {len} at {p}");
                let body = usize::from(u16::from_be_bytes([all[p + 3], all[p + 4]]));
                assert!((1..=TLS_MAX_BODY).contains(&body));
                p += 5 + body;
            }
            assert_eq!(p, all.len(), "len {len}");
            assert!(all.len() >= len);
        }
    }

    #[test]
    fn dns_answer_echoes_the_question() {
        let mut rng = Rng(3);
        let (q, a) = dns_pair("mcp.linear.app", false, &mut rng);
        assert_eq!(&q[..2], &a[..2]);
        assert_eq!(&a[12..q.len()], &q[12..]);
        assert_eq!(&a[a.len() - 4..], &name_v4("mcp.linear.app"));
    }

    #[test]
    fn flood_flows_have_distinct_tuples() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000u64 {
            let f = FloodFlow::new(42, i, 200_000);
            let key = match f.ends.addrs {
                Addrs::V4 { client, .. } => (client.to_vec(), f.ends.client_port),
                Addrs::V6 { client, .. } => (client.to_vec(), f.ends.client_port),
            };
            assert!(
                seen.insert(key),
                "flow {i} repeats a client address and port"
            );
        }
    }

    #[test]
    fn flood_payload_has_the_requested_length() {
        for len in [0, 10, 40, 64, 200] {
            let p = flood_payload(len);
            assert_eq!(p.len(), len);
        }
        assert!(flood_payload(64).ends_with(b"\r\n\r\n"));
    }

    #[test]
    fn egress_mix_is_deterministic_and_well_formed() {
        let cli = Cli::parse_from([
            "gen",
            "--scenario",
            "egress-mix",
            "--size-mb",
            "2",
            "--concurrency",
            "50",
            "-o",
            "x",
        ]);
        let gen_once = || {
            let mut pw = PcapWriter::new(Vec::new()).unwrap();
            egress_mix(&cli, &mut pw).unwrap();
            pw.w
        };
        let a = gen_once();
        assert_eq!(a, gen_once());
        assert!(a.len() >= 2 << 20);
        // Every record parses as Ethernet/IP/TCP or UDP, in time order.
        let recs = records(&a);
        let mut last = 0;
        for (ts, frame) in &recs {
            assert!(*ts >= last, "timestamps go back");
            last = *ts;
            let sliced = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            assert!(sliced.transport.is_some());
        }
        assert!(recs.len() > 1000);
    }

    /// (timestamp µs, frame) of every record of a pcap written by PcapWriter.
    fn records(a: &[u8]) -> Vec<(u64, &[u8])> {
        let mut out = Vec::new();
        let mut p = 24;
        while p < a.len() {
            let word =
                |o: usize| u64::from(u32::from_le_bytes(a[p + o..p + o + 4].try_into().unwrap()));
            let len = word(8) as usize;
            out.push((word(0) * 1_000_000 + word(4), &a[p + 16..p + 16 + len]));
            p += 16 + len;
        }
        assert_eq!(p, a.len());
        out
    }

    #[test]
    fn flow_flood_is_ordered_bounded_and_complete() {
        let cli = Cli::parse_from([
            "gen",
            "--scenario",
            "flow-flood",
            "--flows",
            "5000",
            "--duration-s",
            "20",
            "-o",
            "x",
        ]);
        let mut pw = PcapWriter::new(Vec::new()).unwrap();
        flow_flood(&cli, &mut pw).unwrap();
        let recs = records(&pw.w);
        assert_eq!(recs.len(), 5000 * usize::from(FLOOD_STEPS));
        let t0 = START_NS / 1000;
        let mut last = 0;
        let mut syns = 0;
        for (ts, frame) in &recs {
            assert!(*ts >= last, "timestamps go back");
            last = *ts;
            assert!(*ts - t0 <= 20_000_000, "packet after the window");
            let sliced = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            if let Some(etherparse::TransportSlice::Tcp(t)) = sliced.transport {
                syns += usize::from(t.syn() && !t.ack());
            } else {
                panic!("not TCP");
            }
        }
        assert_eq!(syns, 5000);
    }

    #[test]
    fn open_flood_never_closes() {
        let cli = Cli::parse_from([
            "gen",
            "--scenario",
            "flow-flood",
            "--flows",
            "2000",
            "--open",
            "-o",
            "x",
        ]);
        let mut pw = PcapWriter::new(Vec::new()).unwrap();
        flow_flood(&cli, &mut pw).unwrap();
        let recs = records(&pw.w);
        assert_eq!(recs.len(), 2000 * usize::from(FLOOD_OPEN_STEPS));
        for (_, frame) in &recs {
            let sliced = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            let Some(etherparse::TransportSlice::Tcp(t)) = sliced.transport else {
                panic!("not TCP");
            };
            assert!(!t.fin() && !t.rst(), "an open flood never closes");
        }
    }
}
