//! The flow pool and its scheduler (shared by `egress-mix` and `tls13-bulk`),
//! and the egress-mix scenario.
//!
//! A pool of `--concurrency` flows is kept open; each step picks a flow at
//! random and lets it send its next packet or burst. Egress-mix flows, by
//! count: DNS over UDP (query + A/AAAA answer), TLS 1.3 (byte-correct
//! ClientHello with SNI and ALPN, ServerHello, then application_data
//! records: most of the bytes), cleartext HTTP/1.1 REST with JSON bodies on
//! keep-alive connections, and about 0.5 % cleartext MCP Streamable HTTP
//! sessions.
//!
//! With `--http2-share` the mix is built for twin captures: every flow's
//! content comes from its own PRNG (seeded by the flow's number), cleartext
//! HTTP flows include binary downloads, a share of them speaks HTTP/2 with
//! prior knowledge (or, with `--http2-twin`, HTTP/1.1 carrying the same
//! bodies), and the file ends when the flows opened reach the size budget
//! and all of them have finished. The same seed then gives the same flows
//! in both captures, whatever their HTTP version.

use crate::Cli;
use crate::h2;
use crate::http::{self, Batch};
use crate::payloads::{
    MCP_HTTP_HOSTS, MCP_NAMES, NAMES, REST_HOSTS, client_hello, dns_pair, name_v4, name_v6,
    server_hello,
};
use crate::pcap::{
    ACK, Addrs, DNS_MAC, Ends, FIN, GATEWAY_MAC, MSS, PSH, PcapWriter, START_NS, SYN, Seg,
    write_tcp, write_udp,
};
use crate::rng::{Rng, mix64};
use crate::tls13::{ConnKeys, Sealed};
use std::collections::VecDeque;
use std::io::{self, Write};

/// Longest TLS 1.3 ciphertext of a full record: 2^14 + 1 (content type) + 16 (AEAD tag)
/// (RFC 8446 §5.2 allows up to 2^14 + 256).
pub const TLS_MAX_BODY: usize = 16_384 + 17;

/// Bytes of a message: literal, or a stretch of the random pool (wrapping).
pub enum Part {
    Bytes(Vec<u8>),
    Pool { off: usize, len: usize },
}

impl Part {
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(b) => b.len(),
            Part::Pool { len, .. } => *len,
        }
    }
}

/// Parts not yet sent, and how far into the first one.
#[derive(Default)]
pub struct Parts {
    parts: VecDeque<Part>,
    pos: usize,
}

impl Parts {
    pub fn new(parts: impl IntoIterator<Item = Part>) -> Self {
        Parts {
            parts: parts.into_iter().collect(),
            pos: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Append up to `max - out.len()` bytes to `out`.
    pub fn fill(&mut self, out: &mut Vec<u8>, max: usize, pool: &[u8]) {
        while out.len() < max {
            let Some(front) = self.parts.front() else {
                return;
            };
            let room = max - out.len();
            let (src, part_len): (&[u8], usize) = match front {
                Part::Bytes(b) => (b.get(self.pos..).unwrap_or_default(), b.len()),
                Part::Pool { off, len } => {
                    let at = (off + self.pos) % pool.len().max(1);
                    let end = (at + (len - self.pos)).min(pool.len());
                    (pool.get(at..end).unwrap_or_default(), *len)
                }
            };
            let take = src.len().min(room);
            out.extend_from_slice(&src[..take]);
            self.pos += take;
            if self.pos >= part_len {
                self.parts.pop_front();
                self.pos = 0;
            }
        }
    }
}

/// What one side sends next: parts, a stream of TLS application_data
/// records with random bodies, or records sealed under real keys.
pub enum Chunk {
    Parts(Parts),
    Tls(TlsStream),
    Sealed(Sealed),
}

/// `left` bytes (headers included) of application_data records with random bodies.
pub struct TlsStream {
    pub left: usize,
    pub rec_len: usize,
    pub rec_off: usize,
    hdr: [u8; 5],
}

impl TlsStream {
    pub fn new(len: usize) -> Self {
        TlsStream {
            left: len.max(6),
            rec_len: 0,
            rec_off: 0,
            hdr: [0; 5],
        }
    }

    pub fn fill(&mut self, out: &mut Vec<u8>, max: usize, pool: &[u8], rng: &mut Rng) {
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

pub struct Msg {
    pub from_client: bool,
    pub chunk: Chunk,
}

impl Msg {
    pub fn bytes(from_client: bool, data: Vec<u8>) -> Self {
        Self::parts(from_client, vec![Part::Bytes(data)])
    }
    pub fn parts(from_client: bool, parts: Vec<Part>) -> Self {
        Msg {
            from_client,
            chunk: Chunk::Parts(Parts::new(parts)),
        }
    }
    pub fn tls(from_client: bool, len: usize) -> Self {
        Msg {
            from_client,
            chunk: Chunk::Tls(TlsStream::new(len)),
        }
    }
    pub fn sealed(s: Sealed) -> Self {
        Msg {
            from_client: s.is_from_client(),
            chunk: Chunk::Sealed(s),
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

pub struct TcpFlow {
    ends: Ends,
    phase: Phase,
    /// Next sequence number of each side.
    cseq: u32,
    sseq: u32,
    msgs: VecDeque<Msg>,
    /// Record keys of a connection whose records are sealed for real.
    keys: Option<Box<ConnKeys>>,
}

pub struct DnsFlow {
    ends: Ends,
    query: Vec<u8>,
    answer: Vec<u8>,
    answered: bool,
    asked: bool,
}

pub enum Flow {
    Tcp(TcpFlow),
    Dns(DnsFlow),
}

impl Flow {
    /// A TCP flow that will send `msgs` (initial sequence numbers from `rng`).
    pub fn tcp(
        rng: &mut Rng,
        ends: Ends,
        msgs: VecDeque<Msg>,
        keys: Option<Box<ConnKeys>>,
    ) -> Flow {
        Flow::Tcp(TcpFlow {
            ends,
            phase: Phase::Syn,
            cseq: rng.next() as u32,
            sseq: rng.next() as u32,
            msgs,
            keys,
        })
    }
}

/// Client hosts behind the egress link (10.1.0.0/16, fd00:1::/64).
const CLIENT_HOSTS: u64 = 2000;

/// A client host: (index, MAC, addresses with the server left zero).
pub fn client(rng: &mut Rng, v6: bool) -> (usize, [u8; 6], Addrs) {
    let host = rng.below(CLIENT_HOSTS) as usize;
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

/// Client ephemeral ports: per host in turn (a single stream of flows), or
/// from the flow's number (flows built independently of their order).
pub enum Ports {
    PerHost(Vec<u16>),
    ByFlow,
}

impl Ports {
    pub fn per_host() -> Self {
        Ports::PerHost(vec![32_767; CLIENT_HOSTS as usize])
    }

    fn next(&mut self, host: usize, flow: u64) -> u16 {
        match self {
            Ports::PerHost(next) => next.get_mut(host).map_or(32_768, |p| {
                *p = if *p >= 60_999 { 32_768 } else { *p + 1 };
                *p
            }),
            // Flows this far apart in number are never open at once.
            Ports::ByFlow => 32_768 + (flow % 28_232) as u16,
        }
    }
}

/// Both ends of a TCP flow from a random client host to `server_name`.
pub fn ends(
    rng: &mut Rng,
    ports: &mut Ports,
    flow: u64,
    v6: bool,
    server_name: &str,
    server_port: u16,
) -> Ends {
    let (host, client_mac, addrs) = client(rng, v6);
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
    Ends {
        client_mac,
        server_mac: GATEWAY_MAC,
        addrs,
        client_port: ports.next(host, flow),
        server_port,
    }
}

/// A flow as built by a scenario, with the bytes it is budgeted at.
pub struct NewFlow {
    pub flow: Flow,
    pub nominal: u64,
}

/// On-the-wire estimate of a TCP flow carrying `payload` bytes in `msgs`
/// messages: segments of [`MSS`] with 82 bytes of headers and pcap record,
/// one ACK per message, handshake and teardown.
pub fn tcp_nominal(payload: u64, msgs: usize) -> u64 {
    payload + payload.div_ceil(MSS as u64) * 82 + (msgs as u64 + 6) * 82
}

/// How the pool ends.
pub enum Budget {
    /// Replace finished flows until the file reaches this size, then cut
    /// the open ones short (each finishes its current TLS record).
    FileBytes(u64),
    /// Open flows until their nominal bytes reach this, then let every open
    /// flow run to its end. Flow `n`'s content comes from its own PRNG.
    Nominal { bytes: u64, seed: u64 },
}

/// The PRNG of flow number `n` in a [`Budget::Nominal`] pool.
pub fn flow_rng(seed: u64, n: u64) -> Rng {
    Rng(mix64(
        seed ^ n.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03),
    ))
}

/// Run a pool of `k` flows made by `make(rng, flow number)` until `budget`.
/// Returns the number of flows.
pub fn drive<W: Write>(
    s: &mut Sched<'_, W>,
    k: usize,
    budget: Budget,
    mut make: impl FnMut(&mut Rng, u64) -> io::Result<NewFlow>,
) -> io::Result<u64> {
    let k = k.max(1);
    let mut n = 0u64;
    match budget {
        Budget::FileBytes(target) => {
            let mut flows = Vec::with_capacity(k);
            for _ in 0..k {
                flows.push(make(&mut s.rng, n)?.flow);
                n += 1;
            }
            while s.pw.bytes < target {
                let i = s.rng.below(k as u64) as usize;
                let Some(flow) = flows.get_mut(i) else { break };
                if !s.step(flow)? {
                    *flow = make(&mut s.rng, n)?.flow;
                    n += 1;
                }
            }
            for flow in &mut flows {
                s.finish(flow)?;
            }
        }
        Budget::Nominal { bytes, seed } => {
            let mut flows = Vec::with_capacity(k);
            let mut spent = 0u64;
            let mut open = |spent: &mut u64, n: &mut u64| -> io::Result<Option<Flow>> {
                if *spent >= bytes {
                    return Ok(None);
                }
                let f = make(&mut flow_rng(seed, *n), *n)?;
                *n += 1;
                *spent += f.nominal;
                Ok(Some(f.flow))
            };
            while flows.len() < k {
                match open(&mut spent, &mut n)? {
                    Some(f) => flows.push(f),
                    None => break,
                }
            }
            while !flows.is_empty() {
                let i = s.rng.below(flows.len() as u64) as usize;
                let Some(flow) = flows.get_mut(i) else { break };
                if !s.step(flow)? {
                    match open(&mut spent, &mut n)? {
                        Some(f) => *flow = f,
                        None => {
                            flows.swap_remove(i);
                        }
                    }
                }
            }
        }
    }
    Ok(n)
}

/// Writes the packets of the pool's flows, interleaved, on one clock.
pub struct Sched<'a, W: Write> {
    pub pw: &'a mut PcapWriter<W>,
    /// Scheduling choices (which flow, burst lengths, jitter); also the
    /// content of flows in a [`Budget::FileBytes`] pool.
    pub rng: Rng,
    now_ns: u64,
    rate_mbps: u64,
    /// Random bytes that record bodies and downloads are cut from (cheaper
    /// than a PRNG per byte).
    pub pool: Vec<u8>,
    seg: Vec<u8>,
}

/// Size of the random pool.
pub const POOL_LEN: usize = 1 << 20;

impl<'a, W: Write> Sched<'a, W> {
    pub fn new(pw: &'a mut PcapWriter<W>, seed: u64, rate_mbps: u64) -> Self {
        let mut rng = Rng(seed);
        let mut pool = vec![0u8; POOL_LEN];
        for c in pool.chunks_mut(8) {
            c.copy_from_slice(&rng.next().to_le_bytes()[..c.len()]);
        }
        Sched {
            pw,
            rng,
            now_ns: START_NS,
            rate_mbps,
            pool,
            seg: Vec::with_capacity(MSS),
        }
    }

    /// Advance the clock by the wire time of `len` bytes at the configured rate.
    fn tick(&mut self, len: usize) -> u64 {
        // + 24 bytes of preamble, FCS and inter-frame gap per frame.
        let bits = (len as u64 + 24) * 8;
        self.now_ns += bits * 1000 / self.rate_mbps.max(1) + self.rng.below(2000);
        self.now_ns
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
                        Chunk::Parts(p) => {
                            p.fill(&mut seg, MSS, &self.pool);
                            done = p.is_empty();
                        }
                        Chunk::Tls(s) => {
                            s.fill(&mut seg, MSS, &self.pool, &mut self.rng);
                            done = s.left == 0;
                        }
                        Chunk::Sealed(s) => {
                            if let Some(keys) = t.keys.as_deref_mut() {
                                s.fill(&mut seg, MSS, &self.pool, keys);
                            }
                            done = s.is_done() || t.keys.is_none();
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
                match t.msgs.front_mut().map(|m| &mut m.chunk) {
                    Some(Chunk::Tls(s)) => {
                        s.left = s.rec_len - s.rec_off;
                        if s.left == 0 {
                            t.msgs.clear();
                        }
                    }
                    Some(Chunk::Sealed(s)) => s.cut(),
                    _ => {}
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

// ---------------------------------------------------------------- the egress mix

/// Cleartext HTTP in twin captures: downloads of 16 KiB to 2 MiB.
const BULK_MIN: u64 = 16 << 10;
const BULK_MAX: u64 = 2 << 20;

/// Builds egress-mix flows.
struct EgressMix {
    ports: Ports,
    /// `Some(share)` for twin captures: the share of cleartext HTTP flows
    /// that speak HTTP/2.
    http2_share: Option<f64>,
    /// Write the HTTP/2 share as HTTP/1.1 (the twin).
    http1_twin: bool,
    /// Cleartext HTTP flows, those of the HTTP/2 share, MCP sessions among
    /// them.
    http_flows: u64,
    h2_flows: u64,
    mcp_flows: u64,
    mcp_h2_flows: u64,
}

impl EgressMix {
    fn pick_name(rng: &mut Rng) -> &'static str {
        if rng.below(1000) < 10 {
            rng.pick(MCP_NAMES)
        } else {
            rng.pick(NAMES)
        }
    }

    /// A new flow: DNS 40 %, TLS 38 %, REST 21.5 %, MCP 0.5 % (by count).
    fn new_flow(&mut self, rng: &mut Rng, n: u64) -> NewFlow {
        let r = rng.below(1000);
        let v6 = rng.below(10) == 0;
        if r < 400 {
            let name = Self::pick_name(rng);
            let aaaa = rng.below(5) == 0;
            let (query, answer) = dns_pair(name, aaaa, rng);
            let (_, client_mac, addrs) = client(rng, v6);
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
                client_port: rng.range(1024, 65_535) as u16,
                server_port: 53,
            };
            let nominal = (query.len() + answer.len() + 2 * 58) as u64;
            NewFlow {
                flow: Flow::Dns(DnsFlow {
                    ends,
                    query,
                    answer,
                    answered: false,
                    asked: false,
                }),
                nominal,
            }
        } else if r < 780 {
            let name = Self::pick_name(rng);
            let ends = ends(rng, &mut self.ports, n, v6, name, 443);
            let mut msgs = VecDeque::new();
            msgs.push_back(Msg::bytes(true, client_hello(name, rng)));
            msgs.push_back(Msg::bytes(false, server_hello(rng)));
            // EncryptedExtensions, Certificate, CertificateVerify, Finished.
            let hs = rng.range(2500, 6000);
            msgs.push_back(Msg::tls(false, hs as usize));
            let mut ccs = vec![0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
            ccs.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x35]);
            ccs.extend_from_slice(&rng.bytes::<53>());
            msgs.push_back(Msg::bytes(true, ccs));
            let total = rng.log_uniform(2_000, 1_000_000);
            let rounds = rng.range(1, 4);
            let mut payload = 600 + hs;
            for _ in 0..rounds {
                let upload = rng.below(10) == 0;
                let big = (total / rounds) as usize;
                let small = rng.range(150, 1200) as usize;
                let (up, down) = if upload { (big, small) } else { (small, big) };
                msgs.push_back(Msg::tls(true, up));
                msgs.push_back(Msg::tls(false, down));
                payload += (up + down) as u64;
            }
            let len = msgs.len();
            NewFlow {
                flow: Flow::tcp(rng, ends, msgs, None),
                nominal: tcp_nominal(payload, len),
            }
        } else if r < 995 {
            let host = rng.pick(REST_HOSTS);
            let port = if rng.below(2) == 0 { 80 } else { 8080 };
            let ends = ends(rng, &mut self.ports, n, v6, host, port);
            let batches = if self.http2_share.is_some() {
                // Twin captures: 40 % of these connections download files,
                // the others make authenticated REST calls, up to 3 at once.
                if rng.below(10) < 4 {
                    http::bulk_exchanges(host, rng, POOL_LEN, BULK_MIN, BULK_MAX)
                        .into_iter()
                        .map(|e| vec![e])
                        .collect()
                } else {
                    let token = format!("{:016x}{:016x}", rng.next(), rng.next());
                    let mut ex = http::rest_exchanges(host, rng, Some(&token));
                    let mut batches = Vec::new();
                    while !ex.is_empty() {
                        let take = (rng.range(1, 3) as usize).min(ex.len());
                        batches.push(ex.drain(..take).collect());
                    }
                    batches
                }
            } else {
                http::rest_exchanges(host, rng, None)
                    .into_iter()
                    .map(|e| vec![e])
                    .collect()
            };
            self.http_flow(rng, ends, batches)
        } else {
            let host = rng.pick(MCP_HTTP_HOSTS);
            let port = host
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .unwrap_or(80);
            let ends = ends(rng, &mut self.ports, n, v6, host, port);
            let batches = http::mcp_exchanges(host, rng)
                .into_iter()
                .map(|e| vec![e])
                .collect();
            self.mcp_flows += 1;
            let before = self.h2_flows;
            let f = self.http_flow(rng, ends, batches);
            self.mcp_h2_flows += self.h2_flows - before;
            f
        }
    }

    /// A cleartext HTTP connection: HTTP/1.1, or HTTP/2 for the share.
    fn http_flow(&mut self, rng: &mut Rng, ends: Ends, batches: Vec<Batch>) -> NewFlow {
        let h2 = self.http2_share.is_some_and(|share| rng.unit() < share);
        self.http_flows += 1;
        self.h2_flows += u64::from(h2);
        // Drawn for both twins so that what follows stays in step.
        let huffman = self.http2_share.is_some() && rng.below(5) != 0;
        let msgs = if h2 && !self.http1_twin {
            h2::connection(&batches, huffman)
        } else {
            http::h1_msgs(&batches)
        };
        let nominal = tcp_nominal(http::nominal_bytes(&batches), 2 * batches.len());
        NewFlow {
            flow: Flow::tcp(rng, ends, msgs, None),
            nominal,
        }
    }
}

/// Returns the number of flows and a note for the summary line.
pub fn egress_mix<W: Write>(cli: &Cli, pw: &mut PcapWriter<W>) -> io::Result<(u64, String)> {
    let target = cli.size_mb.saturating_mul(1 << 20);
    let mut s = Sched::new(pw, cli.seed, cli.rate_mbps);
    let twin = cli.http2_share.is_some();
    let mut mix = EgressMix {
        ports: if twin {
            Ports::ByFlow
        } else {
            Ports::per_host()
        },
        http2_share: cli.http2_share,
        http1_twin: cli.http2_twin,
        http_flows: 0,
        h2_flows: 0,
        mcp_flows: 0,
        mcp_h2_flows: 0,
    };
    let budget = if twin {
        Budget::Nominal {
            bytes: target,
            seed: cli.seed,
        }
    } else {
        Budget::FileBytes(target)
    };
    let k = cli.concurrency.unwrap_or(3000);
    let flows = drive(&mut s, k, budget, |rng, n| Ok(mix.new_flow(rng, n)))?;
    let note = if twin {
        format!(
            " ({} cleartext HTTP, {} of them the HTTP/2 share{}; {} MCP sessions, {} in the share)",
            mix.http_flows,
            mix.h2_flows,
            if mix.http1_twin {
                " written as HTTP/1.1"
            } else {
                ""
            },
            mix.mcp_flows,
            mix.mcp_h2_flows
        )
    } else {
        String::new()
    };
    Ok((flows, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::records;
    use clap::Parser;

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

    /// The client SYNs of a capture: (client, client port, server port, ISN).
    fn syns(pcap: &[u8]) -> Vec<(Vec<u8>, u16, u16, u32)> {
        let mut out = Vec::new();
        for (_, frame) in records(pcap) {
            let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
            let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else {
                continue;
            };
            if t.syn() && !t.ack() {
                let src = match p.net {
                    Some(etherparse::NetSlice::Ipv4(ip)) => ip.header().source().to_vec(),
                    Some(etherparse::NetSlice::Ipv6(ip)) => ip.header().source().to_vec(),
                    _ => panic!("not IP"),
                };
                out.push((
                    src,
                    t.source_port(),
                    t.destination_port(),
                    t.sequence_number(),
                ));
            }
        }
        out.sort();
        out
    }

    fn twin(extra: &[&str]) -> Vec<u8> {
        let mut args = vec![
            "gen",
            "--scenario",
            "egress-mix",
            "--size-mb",
            "6",
            "--concurrency",
            "200",
            "--http2-share",
            "0.5",
            "-o",
            "x",
        ];
        args.extend_from_slice(extra);
        let cli = crate::Cli::parse_from(args);
        let mut pw = PcapWriter::new(Vec::new()).unwrap();
        egress_mix(&cli, &mut pw).unwrap();
        pw.w
    }

    /// The HTTP/2 capture and its HTTP/1.1 twin open the same connections;
    /// only the twin without HTTP/2 lacks the preface.
    #[test]
    fn twins_hold_the_same_flows() {
        let h2 = twin(&[]);
        let h1 = twin(&["--http2-twin"]);
        assert_eq!(h2, twin(&[]), "deterministic");
        assert_ne!(h2, h1);
        assert_eq!(syns(&h2), syns(&h1));
        let has = |pcap: &[u8], what: &[u8]| pcap.windows(what.len()).any(|w| w == what);
        assert!(has(&h2, crate::h2::PREFACE));
        assert!(!has(&h1, crate::h2::PREFACE));
        assert!(has(&h1, b"GET /files/"), "downloads among cleartext HTTP");
        // Every flow runs to its end: as many client FINs as SYNs.
        for pcap in [&h2, &h1] {
            let fins = records(pcap)
                .iter()
                .filter(|(_, f)| {
                    let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
                    matches!(p.transport, Some(etherparse::TransportSlice::Tcp(t)) if t.fin())
                })
                .count();
            assert_eq!(fins, 2 * syns(pcap).len());
        }
    }
}
