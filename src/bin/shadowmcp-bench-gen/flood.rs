//! The flow-flood scenario: `--flows` distinct short TCP flows (handshake,
//! one small request, FIN teardown: 7 packets each), all started within
//! `--duration-s` seconds of capture time so none idles out.

use crate::Cli;
use crate::pcap::{
    ACK, Addrs, Ends, FIN, GATEWAY_MAC, PSH, PcapWriter, START_NS, SYN, Seg, write_tcp,
};
use crate::rng::mix64;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

/// Seven packets per flow: SYN, SYN-ACK, ACK, request, FIN, FIN, ACK.
const FLOOD_STEPS: u8 = 7;
/// With `--open`: SYN, SYN-ACK, ACK, request, the server's ACK.
const FLOOD_OPEN_STEPS: u8 = 5;

pub fn flow_flood<W: Write>(cli: &Cli, pw: &mut PcapWriter<W>) -> io::Result<u64> {
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
    use crate::pcap::records;
    use clap::Parser;

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
