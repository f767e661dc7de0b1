//! Test helpers: build Ethernet frames of TCP/UDP conversations with exact
//! sequence numbers, then cut, reorder and duplicate segments, and run them
//! through the engine.

#![allow(dead_code)]

use shadowmcp::decode::linktype;
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::{Engine, EngineConfig};
use shadowmcp::findings::aggregate::{Aggregator, Assessment, Finding, assess};
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::allowlist::Allowlist;
use std::net::IpAddr;
use std::sync::Arc;

pub struct Frame {
    pub ts: i64,
    pub bytes: Vec<u8>,
}

fn ip_builder(src: IpAddr, dst: IpAddr) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
    let eth = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("mixed address families"),
    }
}

pub fn tcp_frame(
    src: IpAddr,
    sport: u16,
    dst: IpAddr,
    dport: u16,
    seq: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = ip_builder(src, dst).tcp(sport, dport, seq, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('A') {
        b = b.ack(1);
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("tcp frame");
    out
}

pub fn udp_frame(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ip_builder(src, dst)
        .udp(sport, dport)
        .write(&mut out, payload)
        .expect("udp frame");
    out
}

/// One TCP connection. Each `send` is a list of (offset, bytes) segments of
/// one direction's stream; helpers produce the usual cuts.
pub struct TcpConv {
    pub client: IpAddr,
    pub cport: u16,
    pub server: IpAddr,
    pub sport: u16,
    cseq: u32,
    sseq: u32,
    pub frames: Vec<Frame>,
    ts: i64,
}

impl TcpConv {
    pub fn new(client: &str, cport: u16, server: &str, sport: u16) -> Self {
        let mut c = Self {
            client: client.parse().expect("client ip"),
            cport,
            server: server.parse().expect("server ip"),
            sport,
            cseq: 1000,
            sseq: 5000,
            frames: Vec::new(),
            ts: 1_700_000_000_000_000,
        };
        c.push(true, c.cseq - 1, "S", &[]);
        c.push(false, c.sseq - 1, "SA", &[]);
        c
    }

    fn push(&mut self, from_client: bool, seq: u32, flags: &str, payload: &[u8]) {
        self.ts += 100;
        let f = if from_client {
            tcp_frame(
                self.client,
                self.cport,
                self.server,
                self.sport,
                seq,
                flags,
                payload,
            )
        } else {
            tcp_frame(
                self.server,
                self.sport,
                self.client,
                self.cport,
                seq,
                flags,
                payload,
            )
        };
        self.frames.push(Frame {
            ts: self.ts,
            bytes: f,
        });
    }

    /// Send `data` from one side cut into `seg`-byte segments, in order.
    pub fn send(&mut self, from_client: bool, data: &[u8], seg: usize) -> &mut Self {
        let order: Vec<usize> = (0..data.len().div_ceil(seg.max(1))).collect();
        self.send_order(from_client, data, seg, &order, false)
    }

    /// Send `data` cut into `seg`-byte segments in the given segment order;
    /// with `dup`, each segment is also sent twice.
    pub fn send_order(
        &mut self,
        from_client: bool,
        data: &[u8],
        seg: usize,
        order: &[usize],
        dup: bool,
    ) -> &mut Self {
        let base = if from_client { self.cseq } else { self.sseq };
        let seg = seg.max(1);
        for &i in order {
            let start = i * seg;
            let Some(chunk) = data.get(start..(start + seg).min(data.len())) else {
                continue;
            };
            let seq = base.wrapping_add(start as u32);
            self.push(from_client, seq, "AP", chunk);
            if dup {
                self.push(from_client, seq, "AP", chunk);
            }
        }
        if from_client {
            self.cseq = base.wrapping_add(data.len() as u32);
        } else {
            self.sseq = base.wrapping_add(data.len() as u32);
        }
        self
    }

    /// Overlapping retransmission: first `data` with a decoy overwriting bytes
    /// [at, at+len) that were already sent (first delivered must win).
    pub fn send_with_overlap_decoy(
        &mut self,
        from_client: bool,
        data: &[u8],
        at: usize,
        decoy: &[u8],
    ) -> &mut Self {
        let base = if from_client { self.cseq } else { self.sseq };
        self.push(from_client, base, "AP", data);
        self.push(from_client, base.wrapping_add(at as u32), "AP", decoy);
        if from_client {
            self.cseq = base.wrapping_add(data.len() as u32);
        } else {
            self.sseq = base.wrapping_add(data.len() as u32);
        }
        self
    }

    pub fn close(&mut self) -> &mut Self {
        let (c, s) = (self.cseq, self.sseq);
        self.push(true, c, "FA", &[]);
        self.push(false, s, "FA", &[]);
        self
    }
}

pub fn detector() -> Arc<Detector> {
    let sigs = SignatureSet::builtin().expect("built-in signatures load");
    Arc::new(Detector::new(sigs, Allowlist::empty()))
}

/// Run frames through one engine and return assessed findings.
pub fn run_frames<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Vec<(Finding, Assessment)> {
    let det = detector();
    let mut engine = Engine::new(EngineConfig::default(), det.clone());
    let mut agg = Aggregator::new(1000);
    for f in frames {
        engine.process_frame(f.ts, linktype::ETHERNET, &f.bytes);
        for o in engine.drain_observations() {
            agg.add(&o);
        }
    }
    engine.finish();
    for o in engine.drain_observations() {
        agg.add(&o);
    }
    agg.into_sorted()
        .into_iter()
        .map(|f| {
            let a = assess(&f, &det);
            (f, a)
        })
        .collect()
}

/// A classic pcap file (Ethernet, microsecond timestamps) of these frames.
pub fn pcap_file(frames: &[Frame]) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [
        0xa1b2_c3d4u32.to_le_bytes().as_slice(),
        &2u16.to_le_bytes(),
        &4u16.to_le_bytes(),
        &[0; 8],
        &65535u32.to_le_bytes(),
        &1u32.to_le_bytes(),
    ] {
        v.extend_from_slice(x);
    }
    for f in frames {
        let (sec, usec) = (
            f.ts.div_euclid(1_000_000) as u32,
            f.ts.rem_euclid(1_000_000) as u32,
        );
        for x in [sec, usec, f.bytes.len() as u32, f.bytes.len() as u32] {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v.extend_from_slice(&f.bytes);
    }
    v
}
