//! `pcaps/quic.pcap` holds a real aioquic handshake whose ClientHello (a long
//! ALPN list, ~1.9 KB) does not fit one Initial packet: the client sends it
//! as CRYPTO frames in two Initials (offsets 0..1152 and 1152..1923, per
//! `tshark -r pcaps/quic.pcap -Y quic`). This test proves the fixture really
//! is split and that the SNI needs both packets: with the first Initial alone
//! the server name is not known; with both it is.

mod common;

use common::{Frame, run_frames};
use std::path::PathBuf;

/// The client port of the split handshake in quic.pcap (SNI mcp.exa.ai).
const SPLIT_CLIENT_PORT: u16 = 47200;
const SERVER_PORT: u16 = 4433;

/// Frames of a classic little-endian, microsecond pcap file.
fn read_pcap(bytes: &[u8]) -> Vec<Frame> {
    assert_eq!(bytes.get(..4), Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]));
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let mut frames = Vec::new();
    let mut off = 24;
    while off + 16 <= bytes.len() {
        let (sec, usec, caplen) = (u32_at(off), u32_at(off + 4), u32_at(off + 8) as usize);
        let data = bytes[off + 16..off + 16 + caplen].to_vec();
        frames.push(Frame {
            ts: i64::from(sec) * 1_000_000 + i64::from(usec),
            bytes: data,
        });
        off += 16 + caplen;
    }
    frames
}

/// UDP ports and payload of an Ethernet/IPv4 frame.
fn udp(frame: &[u8]) -> Option<(u16, u16, &[u8])> {
    if frame.get(12..14)? != [0x08, 0x00] || *frame.get(23)? != 17 {
        return None;
    }
    let ihl = usize::from(frame.get(14)? & 0x0f) * 4;
    let u = frame.get(14 + ihl..)?;
    let port = |i: usize| u16::from_be_bytes([u[i], u[i + 1]]);
    Some((port(0), port(2), u.get(8..)?))
}

fn names(frames: &[&Frame]) -> Vec<String> {
    run_frames(frames.iter().copied())
        .into_iter()
        .filter_map(|(f, _)| f.server_name)
        .collect()
}

#[test]
fn quic_client_hello_over_two_initials_needs_both() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/quic.pcap");
    let frames = read_pcap(&std::fs::read(path).unwrap());
    let client: Vec<&Frame> = frames
        .iter()
        .filter(|f| {
            udp(&f.bytes).is_some_and(|(s, d, _)| s == SPLIT_CLIENT_PORT && d == SERVER_PORT)
        })
        .collect();
    // The first two client datagrams are QUIC v1 Initials (long header,
    // type 0), each padded to 1200 bytes as RFC 9000 §14.1 requires.
    assert!(client.len() >= 2, "{} client datagrams", client.len());
    for f in &client[..2] {
        let (_, _, p) = udp(&f.bytes).unwrap();
        assert_eq!(p[0] & 0xf0, 0xc0, "long header, Initial");
        assert_eq!(&p[1..5], &[0, 0, 0, 1], "QUIC v1");
        assert!(p.len() >= 1200, "{}", p.len());
    }
    let first_only = names(&client[..1]);
    assert!(
        !first_only.iter().any(|n| n == "mcp.exa.ai"),
        "the first Initial alone must not carry the whole ClientHello: {first_only:?}"
    );
    let both = names(&client[..2]);
    assert!(
        both.iter().any(|n| n == "mcp.exa.ai"),
        "SNI from the ClientHello reassembled across two Initials: {both:?}"
    );
}
