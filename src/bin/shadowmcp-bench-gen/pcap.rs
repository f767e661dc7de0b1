//! Classic pcap writing and Ethernet/IP/TCP/UDP frames.

use etherparse::PacketBuilder;
use std::io::{self, Write};

/// 2025-06-15T00:00:00Z: a fixed start so the file never depends on the clock.
pub const START_NS: u64 = 1_750_000_000 * 1_000_000_000;
/// Ethernet snap length written in the pcap header; generated frames are < 1600 bytes.
const SNAPLEN: u32 = 65_535;
/// TCP payload per segment (an MSS of 1460 minus timestamp options, rounded).
pub const MSS: usize = 1400;
/// SYN options: MSS 1460, NOP NOP, SACK permitted, NOP, window scale 7.
const SYN_OPTIONS: [u8; 12] = [2, 4, 0x05, 0xb4, 1, 1, 4, 2, 1, 3, 3, 7];
pub const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
pub const DNS_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x35];

/// Classic pcap (microsecond timestamps, little endian, LINKTYPE_ETHERNET).
pub struct PcapWriter<W: Write> {
    pub w: W,
    pub packets: u64,
    pub bytes: u64,
    pub last_ns: u64,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut w: W) -> io::Result<Self> {
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
pub enum Addrs {
    V4 { client: [u8; 4], server: [u8; 4] },
    V6 { client: [u8; 16], server: [u8; 16] },
}

/// Both ends of a flow; "client" is the side that opens it.
#[derive(Clone, Copy)]
pub struct Ends {
    pub client_mac: [u8; 6],
    pub server_mac: [u8; 6],
    pub addrs: Addrs,
    pub client_port: u16,
    pub server_port: u16,
}

pub const SYN: u8 = 1;
pub const ACK: u8 = 2;
pub const PSH: u8 = 4;
pub const FIN: u8 = 8;

pub struct Seg<'a> {
    pub from_client: bool,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub payload: &'a [u8],
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

pub fn write_tcp<W: Write>(
    pw: &mut PcapWriter<W>,
    ts_ns: u64,
    ends: &Ends,
    s: &Seg,
) -> io::Result<()> {
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

pub fn write_udp<W: Write>(
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

/// (timestamp µs, frame) of every record of a pcap written by PcapWriter.
#[cfg(test)]
pub fn records(a: &[u8]) -> Vec<(u64, &[u8])> {
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
