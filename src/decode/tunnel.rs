//! Tunnels a mirrored packet may arrive in, opened so that the packet
//! inside is what gets inspected: VXLAN (UDP 4789: AWS VPC Traffic
//! Mirroring, Azure virtual network TAP), GENEVE (UDP 6081), GRE (with
//! ERSPAN type II and III from switch SPAN sessions) and MPLS label stacks.
//! Each function takes the tunnel's payload and gives the link type and
//! bytes of the packet inside, as a view into the same frame; `None` when
//! the header is cut, of another version, or carries something else.

use super::linktype;

/// The UDP ports of VXLAN (RFC 7348) and GENEVE (RFC 8926).
pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
/// The IP protocol of GRE (RFC 2784).
pub const IP_PROTO_GRE: u8 = 47;
/// MPLS unicast and multicast EtherTypes.
pub const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];

/// Most MPLS labels walked before the payload.
const MAX_MPLS_LABELS: usize = 8;

/// An EtherType-style protocol number to the link type of what follows.
fn by_protocol(protocol: u16) -> Option<i32> {
    match protocol {
        0x6558 => Some(linktype::ETHERNET),
        0x0800 | 0x86dd => Some(linktype::RAW),
        _ => None,
    }
}

/// A VXLAN payload: 8 bytes of header with the I flag (a valid VNI), then
/// an Ethernet frame.
pub fn vxlan(payload: &[u8]) -> Option<(i32, &[u8])> {
    let flags = *payload.first()?;
    if flags & 0x08 == 0 {
        return None;
    }
    Some((linktype::ETHERNET, payload.get(8..)?))
}

/// A GENEVE payload: version 0, options of the length the header gives,
/// then the packet its protocol type names.
pub fn geneve(payload: &[u8]) -> Option<(i32, &[u8])> {
    let b0 = *payload.first()?;
    if b0 >> 6 != 0 {
        return None;
    }
    let options = usize::from(b0 & 0x3f) * 4;
    let protocol = u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]);
    let lt = by_protocol(protocol)?;
    Some((lt, payload.get(8 + options..)?))
}

/// A GRE payload (version 0): the optional checksum, key and sequence
/// fields skipped, then the packet its protocol type names, or the Ethernet
/// frame of an ERSPAN type II or III header.
pub fn gre(payload: &[u8]) -> Option<(i32, &[u8])> {
    let flags = u16::from_be_bytes([*payload.first()?, *payload.get(1)?]);
    if flags & 0x0007 != 0 {
        return None;
    }
    let protocol = u16::from_be_bytes([*payload.get(2)?, *payload.get(3)?]);
    let mut at = 4;
    for bit in [0x8000, 0x2000, 0x1000] {
        if flags & bit != 0 {
            at += 4;
        }
    }
    let rest = payload.get(at..)?;
    match protocol {
        // ERSPAN type II: an 8-byte header.
        0x88be => Some((linktype::ETHERNET, rest.get(8..)?)),
        // ERSPAN type III: 12 bytes, and an 8-byte platform sub-header when
        // its O flag is set.
        0x22eb => {
            let sub = if *rest.get(11)? & 1 != 0 { 8 } else { 0 };
            Some((linktype::ETHERNET, rest.get(12 + sub..)?))
        }
        p => Some((by_protocol(p)?, rest)),
    }
}

/// An MPLS label stack: the labels up to the bottom of the stack, then an
/// IPv4 or IPv6 packet (told by its version nibble).
pub fn mpls(payload: &[u8]) -> Option<(i32, &[u8])> {
    let mut at = 0;
    for _ in 0..MAX_MPLS_LABELS {
        let bottom = *payload.get(at + 2)? & 1 != 0;
        at += 4;
        if bottom {
            let inner = payload.get(at..)?;
            return matches!(inner.first()? >> 4, 4 | 6).then_some((linktype::RAW, inner));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Transport, decode};
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

    /// The packet inside: Ethernet, IPv4 10.1.4.7:40000 → 10.9.0.5:443 TCP.
    fn inner_ethernet(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 1, 4, 7], [10, 9, 0, 5], 64)
            .tcp(40000, 443, 7, 1024)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn outer_udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(sport, dport)
            .write(&mut out, payload)
            .unwrap();
        out
    }

    fn outer_gre(gre_and_inner: &[u8]) -> Vec<u8> {
        let mut out = vec![4; 6];
        out.extend_from_slice(&[3; 6]);
        out.extend_from_slice(&[0x08, 0x00]);
        let h = Ipv4Header::new(
            gre_and_inner.len() as u16,
            64,
            IpNumber(IP_PROTO_GRE),
            [192, 0, 2, 1],
            [192, 0, 2, 2],
        )
        .unwrap();
        h.write(&mut out).unwrap();
        out.extend_from_slice(gre_and_inner);
        out
    }

    fn assert_inner(frame: &[u8], what: &str) {
        let p = decode(linktype::ETHERNET, frame).unwrap_or_else(|e| panic!("{what}: {e:?}"));
        assert_eq!(p.src.to_string(), "10.1.4.7", "{what}");
        match p.transport {
            Transport::Tcp {
                sport,
                dport,
                payload,
                ..
            } => {
                assert_eq!((sport, dport), (40000, 443), "{what}");
                assert_eq!(payload, b"POST /mcp", "{what}");
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    #[test]
    fn the_packet_inside_each_tunnel_is_decoded() {
        let inner = inner_ethernet(b"POST /mcp");
        let ip = &inner[14..];

        let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        vx.extend_from_slice(&inner);
        assert_inner(&outer_udp(51000, VXLAN_PORT, &vx), "vxlan");

        // GENEVE with 8 bytes of options, carrying Ethernet.
        let mut gv = vec![0x02, 0, 0x65, 0x58, 0, 0, 42, 0];
        gv.extend_from_slice(&[0xaa; 8]);
        gv.extend_from_slice(&inner);
        assert_inner(&outer_udp(51000, GENEVE_PORT, &gv), "geneve");

        // GRE with a key, carrying IPv4.
        let mut gr = vec![0x20, 0, 0x08, 0x00, 0, 0, 0, 9];
        gr.extend_from_slice(ip);
        assert_inner(&outer_gre(&gr), "gre");

        // ERSPAN type II (GRE with a sequence number).
        let mut e2 = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
        e2.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0]);
        e2.extend_from_slice(&inner);
        assert_inner(&outer_gre(&e2), "erspan ii");

        // ERSPAN type III with its platform sub-header.
        let mut e3 = vec![0, 0, 0x22, 0xeb];
        e3.extend_from_slice(&[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        e3.extend_from_slice(&[0; 8]);
        e3.extend_from_slice(&inner);
        assert_inner(&outer_gre(&e3), "erspan iii");

        // Two MPLS labels over Ethernet.
        let mut m = inner[..12].to_vec();
        m.extend_from_slice(&[0x88, 0x47, 0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64]);
        m.extend_from_slice(ip);
        assert_inner(&m, "mpls");

        // VXLAN inside GRE inside VXLAN: three deep is opened.
        let mut gr2 = vec![0, 0, 0x08, 0x00];
        let mut vx_in = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 3], [192, 0, 2, 4], 64)
            .udp(52000, VXLAN_PORT)
            .write(&mut vx_in, &vx)
            .unwrap();
        gr2.extend_from_slice(&vx_in);
        let gre_frame = outer_gre(&gr2);
        let mut vx_out = vec![0x08, 0, 0, 0, 0, 0, 43, 0];
        vx_out.extend_from_slice(&gre_frame);
        assert_inner(&outer_udp(53000, VXLAN_PORT, &vx_out), "nested");
    }

    #[test]
    fn what_is_not_a_tunnel_stays_the_outer_packet() {
        // Port 4789 without the VXLAN I flag, and a GENEVE header of
        // another version: ordinary UDP.
        let inner = inner_ethernet(b"POST /mcp");
        for (port, head) in [
            (VXLAN_PORT, [0u8; 8]),
            (GENEVE_PORT, [0x40, 0, 0x65, 0x58, 0, 0, 0, 0]),
        ] {
            let mut p = head.to_vec();
            p.extend_from_slice(&inner);
            let frame = outer_udp(51000, port, &p);
            let d = decode(linktype::ETHERNET, &frame).unwrap();
            assert!(matches!(d.transport, Transport::Udp { dport, .. } if dport == port));
        }
        // A VXLAN header over bytes that are not a frame.
        let frame = outer_udp(51000, VXLAN_PORT, &[0x08, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3]);
        let d = decode(linktype::ETHERNET, &frame).unwrap();
        assert!(matches!(d.transport, Transport::Udp { .. }));
        // Cut headers.
        assert_eq!(vxlan(&[0x08, 0, 0]), None);
        assert_eq!(geneve(&[0x3f, 0, 0x65, 0x58, 0, 0, 0, 0]), None);
        assert_eq!(gre(&[0x80, 0, 0x08, 0x00]), None);
        assert_eq!(mpls(&[0, 0, 0, 64, 0, 0, 0, 64]), None);
    }

    /// Both directions of the flow inside go to one worker, whatever the
    /// tunnel's own source port (it may differ per direction).
    #[test]
    fn the_flow_inside_decides_the_worker() {
        let back = {
            let mut out = Vec::new();
            PacketBuilder::ethernet2([2; 6], [1; 6])
                .ipv4([10, 9, 0, 5], [10, 1, 4, 7], 64)
                .tcp(443, 40000, 9, 1024)
                .write(&mut out, b"HTTP/1.1 200 OK")
                .unwrap();
            out
        };
        let wrap = |sport: u16, frame: &[u8]| {
            let mut vx = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
            vx.extend_from_slice(frame);
            outer_udp(sport, VXLAN_PORT, &vx)
        };
        let there = inner_ethernet(b"POST /mcp");
        for workers in [2, 3, 7, 16] {
            let mut seen = std::collections::BTreeSet::new();
            for sport in [1000u16, 2000, 3000, 4000, 5000, 6000] {
                seen.insert(
                    crate::pipeline::shard(linktype::ETHERNET, &wrap(sport, &there), workers).0,
                );
                seen.insert(
                    crate::pipeline::shard(linktype::ETHERNET, &wrap(sport ^ 77, &back), workers).0,
                );
            }
            assert_eq!(seen.len(), 1, "{workers} workers: {seen:?}");
        }
    }
}
