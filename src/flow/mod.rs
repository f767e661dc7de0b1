//! Flows: a canonical bidirectional key, client/server orientation, the
//! bounded flow table, Community ID, and TCP stream reassembly.

pub mod community_id;
pub mod index;
pub mod reassembly;
pub mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;

/// Canonical 5-tuple: the endpoint that sorts lower (address, then port) is `a`.
/// Addresses are stored as 16 bytes (IPv4-mapped for v4) to keep the key small
/// and cheap to hash: the address as a 128-bit number in the machine's byte
/// order (no byte swap per packet; 2-byte alignment keeps the flow table's
/// slot at 96 bytes, where a `u128` field would make it 112).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    a: [u8; 16],
    b: [u8; 16],
    pub port_a: u16,
    pub port_b: u16,
    pub proto: u8,
    pub v6: bool,
}

/// The address as a 128-bit number (IPv4-mapped for v4): built with whole
/// integer operations, where going through octet arrays compiles to a loop
/// of single-byte moves.
#[inline]
pub(crate) fn ip_number(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => 0xffff_0000_0000 | u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl FlowKey {
    /// Key for a packet; the flag says whether the packet travels a → b.
    #[inline]
    pub fn from_packet(
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        proto: u8,
    ) -> (FlowKey, bool) {
        let (sn, dn) = (ip_number(src), ip_number(dst));
        let v6 = src.is_ipv6();
        let s = sn.to_ne_bytes();
        let d = dn.to_ne_bytes();
        // (address, port) order, without branches: the numeric order of the
        // addresses is their byte-wise order.
        let src_first = (sn < dn) | ((sn == dn) & (sport <= dport));
        if src_first {
            (
                FlowKey {
                    a: s,
                    b: d,
                    port_a: sport,
                    port_b: dport,
                    proto,
                    v6,
                },
                true,
            )
        } else {
            (
                FlowKey {
                    a: d,
                    b: s,
                    port_a: dport,
                    port_b: sport,
                    proto,
                    v6,
                },
                false,
            )
        }
    }

    fn addr(&self, bytes: [u8; 16]) -> IpAddr {
        let v6 = Ipv6Addr::from(u128::from_ne_bytes(bytes));
        if self.v6 {
            IpAddr::V6(v6)
        } else {
            IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
        }
    }

    pub fn addr_a(&self) -> IpAddr {
        self.addr(self.a)
    }

    pub fn addr_b(&self) -> IpAddr {
        self.addr(self.b)
    }

    /// Hash for the flow table's index: the key read as five machine words,
    /// each folded in with a multiply-rotate (the FxHash step); the high
    /// half of the last product, which depends on every word.
    #[inline]
    pub fn table_hash(&self) -> u32 {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let (a, b) = (u128::from_ne_bytes(self.a), u128::from_ne_bytes(self.b));
        let tail = u64::from(self.port_a)
            | u64::from(self.port_b) << 16
            | u64::from(self.proto) << 32
            | u64::from(self.v6) << 40;
        let mut h = 0u64;
        for x in [a as u64, (a >> 64) as u64, b as u64, (b >> 64) as u64, tail] {
            h = (h.rotate_left(26) ^ x).wrapping_mul(K);
        }
        // The high half of the last product depends on every word.
        (h >> 32) as u32
    }
}

/// Ports that identify the server side when the SYN was not seen.
fn is_service_port(port: u16) -> bool {
    matches!(
        port,
        53 | 80 | 443 | 853 | 8000 | 8080 | 8443 | 8765 | 3000 | 5000
    )
}

/// Decide whether `a` is the client for a flow whose first packet went
/// `first_a_to_b`. With a SYN (without ACK) its sender is the client; with a
/// SYN-ACK its receiver. Otherwise: a well-known or common service port marks
/// the server; then the ephemeral range (>= 32768, RFC 6056 and Linux defaults)
/// marks the client; then the lower port is the server; last, the first sender.
pub fn orient(key: &FlowKey, first_a_to_b: bool, syn: bool, ack: bool) -> bool {
    if syn {
        return if ack { !first_a_to_b } else { first_a_to_b };
    }
    let (pa, pb) = (key.port_a, key.port_b);
    let (sa, sb) = (
        is_service_port(pa) || pa < 1024,
        is_service_port(pb) || pb < 1024,
    );
    if sa != sb {
        return sb;
    }
    let (ea, eb) = (pa >= 32768, pb >= 32768);
    if ea != eb {
        return ea;
    }
    if pa != pb {
        return pa > pb;
    }
    first_a_to_b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_symmetric() {
        let c: IpAddr = "10.0.0.9".parse().unwrap();
        let s: IpAddr = "10.0.0.1".parse().unwrap();
        let (k1, d1) = FlowKey::from_packet(c, 50000, s, 443, PROTO_TCP);
        let (k2, d2) = FlowKey::from_packet(s, 443, c, 50000, PROTO_TCP);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        assert_eq!(k1.addr_a(), s);
        assert_eq!(k1.addr_b(), c);
        assert_eq!(k1.table_hash(), k2.table_hash());
    }

    #[test]
    fn orientation() {
        let c: IpAddr = "10.0.0.9".parse().unwrap();
        let s: IpAddr = "10.0.0.1".parse().unwrap();
        let (k, a_to_b) = FlowKey::from_packet(c, 50000, s, 443, PROTO_TCP);
        // a is the server (10.0.0.1 sorts first); the packet went b -> a.
        assert!(!a_to_b);
        assert!(!orient(&k, a_to_b, true, false), "SYN sender is the client");
        assert!(
            !orient(&k, !a_to_b, true, true),
            "SYN-ACK receiver is the client"
        );
        assert!(!orient(&k, a_to_b, false, true), "443 is the server port");
        assert!(
            !orient(&k, !a_to_b, false, true),
            "mid-stream from the server side"
        );
        let (k2, d2) = FlowKey::from_packet(c, 40001, s, 40002, PROTO_TCP);
        // Both ephemeral: the lower port (40001, endpoint b) is the server.
        assert_eq!((k2.port_a, k2.port_b), (40002, 40001));
        assert!(orient(&k2, d2, false, false));
    }
}
