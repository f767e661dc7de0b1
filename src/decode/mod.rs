//! Link and network decoding: turns one captured frame into addresses, ports
//! and a transport payload, as borrowed views (no copy). Link types handled:
//! Ethernet (with 802.1Q / QinQ tags), Linux cooked v1 and v2, BSD NULL/LOOP,
//! raw IPv4/IPv6. IPv4/IPv6 and their extension headers are sliced by
//! `etherparse`. Packets inside VXLAN, GENEVE, GRE (and ERSPAN) tunnels and
//! MPLS label stacks are decoded to the packet inside ([`tunnel`]).

pub mod tunnel;

use etherparse::{EtherType, NetSlice, SlicedPacket, TransportSlice};
use std::net::IpAddr;

/// libpcap DLT_* / LINKTYPE_* numbers (tcpdump.org/linktypes.html).
pub mod linktype {
    pub const NULL: i32 = 0;
    pub const ETHERNET: i32 = 1;
    pub const RAW_OPENBSD: i32 = 12;
    pub const RAW_BSD: i32 = 14;
    pub const RAW: i32 = 101;
    pub const LOOP: i32 = 108;
    pub const LINUX_SLL: i32 = 113;
    pub const IPV4: i32 = 228;
    pub const IPV6: i32 = 229;
    pub const LINUX_SLL2: i32 = 276;

    /// Whether the decoder understands this link type.
    pub fn is_supported(lt: i32) -> bool {
        matches!(
            lt,
            NULL | ETHERNET
                | RAW_OPENBSD
                | RAW_BSD
                | RAW
                | LOOP
                | LINUX_SLL
                | IPV4
                | IPV6
                | LINUX_SLL2
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp {
        sport: u16,
        dport: u16,
        seq: u32,
        flags: TcpFlags,
        payload: &'a [u8],
    },
    Udp {
        sport: u16,
        dport: u16,
        payload: &'a [u8],
    },
    /// Another IP protocol (ICMP, SCTP, ...): counted, not inspected.
    Other { proto: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedPacket<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub transport: Transport<'a>,
}

/// Why a frame could not be decoded; each kind has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeError {
    UnsupportedLinkType,
    /// Shorter than its link-layer header.
    TruncatedLink,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): not an error of the input, just not ours.
    NotIp,
    /// Malformed or truncated IP / transport header.
    Malformed,
    /// An IPv4 or IPv6 fragment: not an error, but not a packet to decode
    /// alone either; the engine reassembles it ([`fragment`],
    /// [`crate::defrag`]) and counts fragments with their own counters.
    Fragment,
}

impl DecodeError {
    /// The errors counted as decode errors (all but [`DecodeError::Fragment`]).
    pub const ALL: [DecodeError; 4] = [
        DecodeError::UnsupportedLinkType,
        DecodeError::TruncatedLink,
        DecodeError::NotIp,
        DecodeError::Malformed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DecodeError::UnsupportedLinkType => "unsupported_link_type",
            DecodeError::TruncatedLink => "truncated_link",
            DecodeError::NotIp => "not_ip",
            DecodeError::Malformed => "malformed",
            DecodeError::Fragment => "ip_fragment",
        }
    }
}

/// Decode one frame of the given link type.
#[inline]
pub fn decode(linktype: i32, frame: &[u8]) -> Result<DecodedPacket<'_>, DecodeError> {
    if linktype == linktype::ETHERNET
        && let Some(p) = decode_ethernet_tcp(frame)
    {
        return Ok(p);
    }
    decode_general(linktype, frame)
}

/// The common frame read by hand: Ethernet II, then IPv4 (not fragmented)
/// or IPv6 without extension headers, then TCP. `None` for anything else or
/// anything the general path would reject, which then decides. Where it
/// answers, the answer is the general path's (a property test checks it);
/// it only skips the generic slicing machinery.
#[inline(always)]
fn decode_ethernet_tcp(frame: &[u8]) -> Option<DecodedPacket<'_>> {
    let be16 = |b: &[u8], i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
    };
    let ip = frame.get(14..)?;
    let (src, dst, l4) = match be16(frame, 12)? {
        0x0800 => {
            let b0 = *ip.first()?;
            let ihl = usize::from(b0 & 0x0f) * 4;
            let total = usize::from(be16(ip, 2)?);
            // Version 4, a complete header within the total length, which the
            // frame holds; no More Fragments flag, no offset; protocol TCP.
            if b0 >> 4 != 4
                || ihl < 20
                || total < ihl
                || ip.len() < total
                || be16(ip, 6)? & 0x3fff != 0
                || *ip.get(9)? != 6
            {
                return None;
            }
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ip.get(ihl..total)?)
        }
        0x86dd => {
            // Version 6, an explicit payload length (0 means jumbogram or
            // "to the end": left to the general path), next header TCP.
            let len = usize::from(be16(ip, 4)?);
            if *ip.first()? >> 4 != 6 || len == 0 || *ip.get(6)? != 6 {
                return None;
            }
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ip.get(40..40 + len)?)
        }
        _ => return None,
    };
    let off = usize::from(*l4.get(12)? >> 4) * 4;
    if off < 20 {
        return None;
    }
    let flags = *l4.get(13)?;
    let seq = u32::from_be_bytes(l4.get(4..8)?.try_into().ok()?);
    Some(DecodedPacket {
        src,
        dst,
        transport: Transport::Tcp {
            sport: be16(l4, 0)?,
            dport: be16(l4, 2)?,
            seq,
            flags: TcpFlags {
                syn: flags & 0x02 != 0,
                ack: flags & 0x10 != 0,
                fin: flags & 0x01 != 0,
                rst: flags & 0x04 != 0,
            },
            payload: l4.get(off..)?,
        },
    })
}

/// The IP fragment a frame carries, for [`crate::defrag`]; `None` for a
/// frame [`decode`] does not call a [`DecodeError::Fragment`].
pub fn fragment(linktype: i32, frame: &[u8]) -> Option<crate::defrag::Fragment<'_>> {
    let sliced = slice(linktype, frame).ok()?;
    // Where the IP header starts in the frame: its view is a part of it.
    let header = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => v4.header().slice(),
        Some(NetSlice::Ipv6(v6)) => v6.header().slice(),
        _ => return None,
    };
    let start = (header.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
    crate::defrag::Fragment::parse(frame.get(start..)?)
}

/// A frame sliced by `etherparse` from its link layer on.
fn slice(linktype: i32, frame: &[u8]) -> Result<SlicedPacket<'_>, DecodeError> {
    match linktype {
        linktype::ETHERNET => SlicedPacket::from_ethernet(frame),
        linktype::LINUX_SLL => {
            // SLL v1: packet type (2), ARPHRD (2), addr len (2), addr (8),
            // protocol (2) = 16 bytes. Read by hand: interfaces with unusual
            // ARPHRD values (tun, ipip) still carry plain IP.
            let proto = frame.get(14..16).ok_or(DecodeError::TruncatedLink)?;
            let rest = frame.get(16..).ok_or(DecodeError::TruncatedLink)?;
            SlicedPacket::from_ether_type(EtherType(u16::from_be_bytes([proto[0], proto[1]])), rest)
        }
        linktype::LINUX_SLL2 => {
            // SLL2: protocol type (2), reserved (2), ifindex (4), arphrd (2),
            // packet type (1), addr len (1), addr (8) = 20 bytes.
            let proto = frame.get(0..2).ok_or(DecodeError::TruncatedLink)?;
            let rest = frame.get(20..).ok_or(DecodeError::TruncatedLink)?;
            let ether_type = EtherType(u16::from_be_bytes([proto[0], proto[1]]));
            SlicedPacket::from_ether_type(ether_type, rest)
        }
        linktype::NULL | linktype::LOOP => {
            // 4-byte address family: host byte order for NULL, network order
            // for LOOP. Any of the BSD AF_INET6 values (24, 28, 30) or AF_INET (2).
            let rest = frame.get(4..).ok_or(DecodeError::TruncatedLink)?;
            SlicedPacket::from_ip(rest)
        }
        linktype::RAW
        | linktype::RAW_BSD
        | linktype::RAW_OPENBSD
        | linktype::IPV4
        | linktype::IPV6 => SlicedPacket::from_ip(frame),
        _ => return Err(DecodeError::UnsupportedLinkType),
    }
    .map_err(|_| DecodeError::Malformed)
}

/// Every link type, through `etherparse`.
fn decode_general(linktype: i32, frame: &[u8]) -> Result<DecodedPacket<'_>, DecodeError> {
    decode_nested(linktype, frame, 0)
}

/// The packet inside a VXLAN, GENEVE or GRE tunnel, if `sliced` is one and
/// what it carries decodes; kept out of line, since few packets are.
#[cold]
#[inline(never)]
fn open_tunnel<'a>(sliced: &SlicedPacket<'a>, depth: u8) -> Option<DecodedPacket<'a>> {
    let (lt, inner) = match &sliced.transport {
        Some(TransportSlice::Udp(u)) => match u.destination_port() {
            tunnel::VXLAN_PORT => tunnel::vxlan(u.payload())?,
            tunnel::GENEVE_PORT => tunnel::geneve(u.payload())?,
            _ => return None,
        },
        None => {
            let ip = sliced.ip_payload()?;
            if ip.ip_number.0 != tunnel::IP_PROTO_GRE || ip.fragmented {
                return None;
            }
            tunnel::gre(ip.payload)?
        }
        _ => return None,
    };
    decode_nested(lt, inner, depth + 1).ok()
}

/// Tunnels opened inside one another at most (VXLAN inside GRE …).
const MAX_TUNNEL_DEPTH: u8 = 3;

/// [`decode_general`] at tunnel depth `depth`.
fn decode_nested(linktype: i32, frame: &[u8], depth: u8) -> Result<DecodedPacket<'_>, DecodeError> {
    let sliced = slice(linktype, frame)?;
    let nested = depth < MAX_TUNNEL_DEPTH;
    if sliced.net.is_none()
        && nested
        && let Some(ep) = sliced.ether_payload()
        && tunnel::ETHERTYPE_MPLS.contains(&ep.ether_type.0)
        && let Some((lt, inner)) = tunnel::mpls(ep.payload)
    {
        return decode_nested(lt, inner, depth + 1);
    }
    let maybe_tunnel = match &sliced.transport {
        Some(TransportSlice::Tcp(_)) => false,
        Some(TransportSlice::Udp(u)) => {
            matches!(
                u.destination_port(),
                tunnel::VXLAN_PORT | tunnel::GENEVE_PORT
            )
        }
        _ => true,
    };
    if maybe_tunnel
        && nested
        && let Some(p) = open_tunnel(&sliced, depth)
    {
        return Ok(p);
    }
    let (src, dst, fragmented, proto) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.is_payload_fragmented(),
                v4.payload_ip_number().0,
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.is_payload_fragmented(),
                v6.payload().ip_number.0,
            )
        }
        _ => return Err(DecodeError::NotIp),
    };
    if fragmented {
        return Err(DecodeError::Fragment);
    }
    let transport = match sliced.transport {
        Some(TransportSlice::Tcp(tcp)) => Transport::Tcp {
            sport: tcp.source_port(),
            dport: tcp.destination_port(),
            seq: tcp.sequence_number(),
            flags: TcpFlags {
                syn: tcp.syn(),
                ack: tcp.ack(),
                fin: tcp.fin(),
                rst: tcp.rst(),
            },
            payload: tcp.payload(),
        },
        Some(TransportSlice::Udp(udp)) => Transport::Udp {
            sport: udp.source_port(),
            dport: udp.destination_port(),
            payload: udp.payload(),
        },
        _ => Transport::Other { proto },
    };
    Ok(DecodedPacket {
        src,
        dst,
        transport,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_ipv4_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 443, 7, 1024)
            .syn();
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("build");
        out
    }

    #[test]
    fn ethernet_tcp() {
        let f = tcp_ipv4_frame(b"hello");
        let p = decode(linktype::ETHERNET, &f).expect("decode");
        assert_eq!(p.src.to_string(), "10.0.0.1");
        match p.transport {
            Transport::Tcp {
                sport,
                dport,
                seq,
                flags,
                payload,
            } => {
                assert_eq!((sport, dport, seq), (40000, 443, 7));
                assert!(flags.syn && !flags.ack);
                assert_eq!(payload, b"hello");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn vlan_and_qinq() {
        let f = tcp_ipv4_frame(b"x");
        for tags in [1usize, 2] {
            let mut v = f[..12].to_vec();
            for _ in 0..tags {
                v.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
            }
            v.extend_from_slice(&f[12..]);
            let p = decode(linktype::ETHERNET, &v).expect("decode vlan");
            assert!(matches!(p.transport, Transport::Tcp { dport: 443, .. }));
        }
    }

    #[test]
    fn cooked_null_and_raw() {
        let f = tcp_ipv4_frame(b"abc");
        let ip = &f[14..];
        // SLL v1: 16-byte header, protocol at offset 14.
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(ip);
        assert!(decode(linktype::LINUX_SLL, &sll).is_ok());
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(ip);
        assert!(decode(linktype::LINUX_SLL2, &sll2).is_ok());
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(ip);
        assert!(decode(linktype::NULL, &null).is_ok());
        assert!(decode(linktype::RAW, ip).is_ok());
        assert_eq!(decode(999, ip), Err(DecodeError::UnsupportedLinkType));
    }

    #[test]
    fn truncation_never_panics() {
        let f = tcp_ipv4_frame(b"payload bytes");
        for lt in [
            linktype::ETHERNET,
            linktype::LINUX_SLL,
            linktype::LINUX_SLL2,
            linktype::NULL,
            linktype::RAW,
        ] {
            for n in 0..f.len() {
                let _ = decode(lt, &f[..n]);
            }
        }
    }

    fn tcp_ipv6_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv6([0x20; 16], [0x21; 16], 64)
            .tcp(40000, 443, 0xfedc_ba98, 1024)
            .ack(5)
            .fin();
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("build");
        out
    }

    #[test]
    fn fast_path_takes_plain_tcp() {
        for f in [tcp_ipv4_frame(b"abc"), tcp_ipv6_frame(b"abc")] {
            let fast = decode_ethernet_tcp(&f).expect("fast path");
            assert_eq!(Ok(fast), decode_general(linktype::ETHERNET, &f));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Wherever the fast path answers, it answers like etherparse:
        /// mutated, truncated and extended frames of both IP versions.
        #[test]
        fn fast_path_agrees_with_general(
            v6 in proptest::bool::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            edits in proptest::collection::vec((0usize..80, proptest::num::u8::ANY), 0..4),
            cut in 0usize..140,
            extra in 0usize..8,
        ) {
            let mut f = if v6 { tcp_ipv6_frame(&payload) } else { tcp_ipv4_frame(&payload) };
            for (i, b) in edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            f.extend(std::iter::repeat_n(0u8, extra));
            f.truncate(cut);
            if let Some(fast) = decode_ethernet_tcp(&f) {
                proptest::prop_assert_eq!(Ok(fast), decode_general(linktype::ETHERNET, &f));
            }
        }
    }

    #[test]
    fn ipv4_fragment_is_counted() {
        let mut f = tcp_ipv4_frame(b"abcdefgh");
        // Set More Fragments in the IPv4 flags (byte 14+6) and fix nothing else:
        // the decoder must report a fragment, not a TCP packet.
        f[20] |= 0x20;
        assert_eq!(decode(linktype::ETHERNET, &f), Err(DecodeError::Fragment));
    }
}
