//! Which worker a frame goes to: a symmetric hash of its flow (both
//! directions meet in one engine), computed at fixed offsets for most
//! frames since every reader pays it on every frame.

use crate::decode::{self, Transport as L4};
use crate::flow::{PROTO_TCP, PROTO_UDP};

/// What [`shard`] gives for an IP fragment: every worker. Only the whole
/// datagram tells its flow (a fragment past the first has no ports), so
/// every worker reassembles it and the one its flow hashes to processes it
/// (see `Engine::process_fragment`); fragments are rare, and this keeps the
/// flow in one engine.
pub const EVERY_WORKER: usize = usize::MAX;

/// Worker index for a frame: the symmetric flow hash, so both directions of
/// a flow meet in the same engine. Frames that do not decode go to worker 0,
/// which counts them (a malformed frame that looks like plain TCP/UDP at the
/// fixed offsets may go to another worker: it is counted there, once); IP
/// fragments go to [`EVERY_WORKER`].
/// Also says whether the frame is DNS: the capture thread stores its answers
/// in the shared name cache at once, before it reads the packets that follow,
/// so the connection the answer names finds it whatever its worker.
#[inline]
pub fn shard(linktype: i32, frame: &[u8], workers: usize) -> (usize, bool) {
    // Most frames: IPv4 at fixed offsets, hashed without building the tuple
    // (the IPv4-mapped prefix cancels in the XOR of the two addresses).
    if linktype == decode::linktype::ETHERNET
        && let Some(v4) = raw_ipv4(frame)
    {
        let hash = fold_hash(u64::from(v4.src ^ v4.dst), 0, v4.sport ^ v4.dport, v4.proto);
        return (pick_worker(hash, workers), v4.sport == 53 || v4.dport == 53);
    }
    shard_by_tuple(linktype, frame, workers)
}

/// [`shard`] for the other frames, through the tuple. Kept out of line so
/// that the common path stays small.
#[inline(never)]
fn shard_by_tuple(linktype: i32, frame: &[u8], workers: usize) -> (usize, bool) {
    let flow = if linktype == decode::linktype::ETHERNET {
        raw_flow(frame)
    } else {
        None
    };
    let t = match flow.map_or_else(|| decoded_flow(linktype, frame), Ok) {
        Ok(t) => t,
        Err(decode::DecodeError::Fragment) if workers > 1 => return (EVERY_WORKER, false),
        Err(_) => return (0, false),
    };
    (
        pick_worker(t.shard_hash(), workers),
        t.sport == 53 || t.dport == 53,
    )
}

/// Multiply-shift: the worker from the top bits of the hash.
fn pick_worker(hash: u32, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    ((u64::from(hash) * workers as u64) >> 32) as usize
}

/// The flow hash from the XOR of the two addresses (as 128-bit numbers, in
/// two halves), of the two ports, and the protocol: the same for both
/// directions, folded with one wide multiply (a dozen instructions, since
/// every reader pays it on every frame).
fn fold_hash(addr_lo: u64, addr_hi: u64, ports: u16, proto: u8) -> u32 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let x = addr_lo ^ addr_hi.rotate_left(17) ^ u64::from(ports) << 40 ^ u64::from(proto) << 56;
    let m = u128::from(x) * u128::from(K);
    ((m >> 64) as u64 ^ m as u64) as u32
}

/// A packet's addresses (as 128-bit numbers, IPv4-mapped for v4), ports and
/// IP protocol, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tuple {
    src: u128,
    sport: u16,
    dst: u128,
    dport: u16,
    proto: u8,
}

impl Tuple {
    fn of(p: &decode::DecodedPacket<'_>) -> Tuple {
        let (sport, dport, proto) = match p.transport {
            L4::Tcp { sport, dport, .. } => (sport, dport, PROTO_TCP),
            L4::Udp { sport, dport, .. } => (sport, dport, PROTO_UDP),
            L4::Other { proto } => (0, 0, proto),
        };
        Tuple {
            src: crate::flow::ip_number(p.src),
            sport,
            dst: crate::flow::ip_number(p.dst),
            dport,
            proto,
        }
    }

    /// The same for both directions of a flow (see [`fold_hash`]).
    fn shard_hash(&self) -> u32 {
        let a = self.src ^ self.dst;
        fold_hash(
            a as u64,
            (a >> 64) as u64,
            self.sport ^ self.dport,
            self.proto,
        )
    }
}

/// The tuple of a frame, through the full decoder.
fn decoded_flow(linktype: i32, frame: &[u8]) -> Result<Tuple, decode::DecodeError> {
    decode::decode(linktype, frame).map(|p| Tuple::of(&p))
}

/// The worker of a packet decoded already (a datagram reassembled from
/// fragments): what [`shard`] gives for its frame.
pub fn shard_packet(p: &decode::DecodedPacket<'_>, workers: usize) -> usize {
    pick_worker(Tuple::of(p).shard_hash(), workers)
}

/// Addresses, ports and protocol of an IPv4 TCP/UDP frame.
struct RawIpv4 {
    src: u32,
    dst: u32,
    sport: u16,
    dport: u16,
    proto: u8,
}

/// An Ethernet IPv4 TCP/UDP frame without IP options and not a fragment,
/// most frames: every field at a constant offset of one fixed-size prefix,
/// so no bounds check per field. `None` for anything else (a fragment, a
/// header with options, another protocol): see [`raw_flow`].
fn raw_ipv4(frame: &[u8]) -> Option<RawIpv4> {
    let h = frame.first_chunk::<38>()?;
    let proto = h[23];
    if h[12..14] != [0x08, 0x00]
        || h[14] != 0x45
        || u16::from_be_bytes([h[20], h[21]]) & 0x3fff != 0
        || (proto != PROTO_TCP && proto != PROTO_UDP)
    {
        return None;
    }
    let dport = u16::from_be_bytes([h[36], h[37]]);
    if is_tunnel(proto, dport) {
        return None;
    }
    Some(RawIpv4 {
        src: u32::from_be_bytes([h[26], h[27], h[28], h[29]]),
        dst: u32::from_be_bytes([h[30], h[31], h[32], h[33]]),
        sport: u16::from_be_bytes([h[34], h[35]]),
        dport,
        proto,
    })
}

/// A UDP tunnel (VXLAN, GENEVE): its flow is the packet inside, which the
/// decoder opens, not the tunnel's (whose source port may differ between
/// the two directions of the flow inside).
fn is_tunnel(proto: u8, dport: u16) -> bool {
    proto == PROTO_UDP
        && (dport == decode::tunnel::VXLAN_PORT || dport == decode::tunnel::GENEVE_PORT)
}

/// The tuple of an untagged Ethernet frame carrying TCP or UDP over IPv4
/// (not a fragment) or IPv6 (no extension header), read at fixed offsets:
/// every reader shards every frame, and a full decode would be most of its
/// work. The tuple is the one [`decoded_flow`] gives for the same frame;
/// anything else is left to it (`None`).
fn raw_flow(frame: &[u8]) -> Option<Tuple> {
    if let Some(v4) = raw_ipv4(frame) {
        let mapped = |a: u32| 0xffff_0000_0000 | u128::from(a);
        return Some(Tuple {
            src: mapped(v4.src),
            sport: v4.sport,
            dst: mapped(v4.dst),
            dport: v4.dport,
            proto: v4.proto,
        });
    }
    let be16 = |b: &[u8], i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
    };
    let ip = frame.get(14..)?;
    let (src, dst, proto, l4) = match be16(frame, 12)? {
        0x0800 => {
            let b0 = *ip.first()?;
            let ihl = usize::from(b0 & 0x0f) * 4;
            if b0 >> 4 != 4 || ihl < 20 || be16(ip, 6)? & 0x3fff != 0 {
                return None;
            }
            let s = u32::from_be_bytes(ip.get(12..16)?.try_into().ok()?);
            let d = u32::from_be_bytes(ip.get(16..20)?.try_into().ok()?);
            let mapped = |a: u32| 0xffff_0000_0000 | u128::from(a);
            (mapped(s), mapped(d), *ip.get(9)?, ip.get(ihl..)?)
        }
        0x86dd => {
            if *ip.first()? >> 4 != 6 {
                return None;
            }
            let s = u128::from_be_bytes(ip.get(8..24)?.try_into().ok()?);
            let d = u128::from_be_bytes(ip.get(24..40)?.try_into().ok()?);
            (s, d, *ip.get(6)?, ip.get(40..)?)
        }
        _ => return None,
    };
    if proto != PROTO_TCP && proto != PROTO_UDP {
        return None;
    }
    let dport = be16(l4, 2)?;
    if is_tunnel(proto, dport) {
        return None;
    }
    Some(Tuple {
        src,
        sport: be16(l4, 0)?,
        dst,
        dport,
        proto,
    })
}

#[cfg(test)]
mod tests {
    use super::{decoded_flow, pick_worker, raw_flow, shard};
    use crate::decode::linktype;
    use etherparse::PacketBuilder;

    fn frame(client: [u8; 4], cport: u16, server: [u8; 4], sport: u16, to_server: bool) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if to_server {
            b.ipv4(client, server, 64).tcp(cport, sport, 1, 65535)
        } else {
            b.ipv4(server, client, 64).tcp(sport, cport, 1, 65535)
        };
        let mut out = Vec::new();
        b.write(&mut out, b"x").expect("frame");
        out
    }

    #[test]
    fn both_directions_meet_and_flows_spread_evenly() {
        let mut per_worker = [0usize; 3];
        for i in 0..30_000u32 {
            let client = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            let server = [198, 51, 100, (i % 7) as u8];
            let port = 32_768 + (i % 20_000) as u16;
            let (up, _) = shard(
                linktype::ETHERNET,
                &frame(client, port, server, 443, true),
                3,
            );
            let (down, _) = shard(
                linktype::ETHERNET,
                &frame(client, port, server, 443, false),
                3,
            );
            assert_eq!(up, down, "flow {i}: directions on different workers");
            per_worker[up] += 1;
        }
        for n in per_worker {
            assert!((9_000..=11_000).contains(&n), "uneven: {per_worker:?}");
        }
    }

    /// Plain frames of both IP versions and both transports.
    fn plain_frame(v6: bool, udp: bool, payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6]);
        let b = if v6 {
            b.ipv6([0x20; 16], [0x21; 16], 64)
        } else {
            b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        let mut out = Vec::new();
        let written = if udp {
            b.udp(5353, 53).write(&mut out, payload)
        } else {
            b.tcp(40000, 443, 7, 1024).write(&mut out, payload)
        };
        written.expect("frame");
        out
    }

    #[test]
    fn raw_flow_reads_plain_frames_and_leaves_the_rest() {
        for v6 in [false, true] {
            for udp in [false, true] {
                let f = plain_frame(v6, udp, b"abc");
                let raw = raw_flow(&f).expect("plain frame read at fixed offsets");
                assert_eq!(Some(raw), decoded_flow(linktype::ETHERNET, &f).ok());
            }
        }
        // IPv4 options move the ports: the fixed offsets must not be used.
        let mut opts = plain_frame(false, false, b"abc");
        opts.splice(34..34, [1, 1, 1, 1]);
        opts[14] = 0x46;
        let total = u16::from_be_bytes([opts[16], opts[17]]) + 4;
        opts[16..18].copy_from_slice(&total.to_be_bytes());
        let decoded = decoded_flow(linktype::ETHERNET, &opts).expect("options decode");
        assert_eq!(decoded.sport, 40000);
        assert_eq!(raw_flow(&opts).unwrap_or(decoded), decoded);
        // An IPv4 fragment and a VLAN tag are left to the decoder.
        let mut frag = plain_frame(false, false, b"abcdefgh");
        frag[20] |= 0x20;
        assert_eq!(raw_flow(&frag), None);
        let mut tagged = plain_frame(false, false, b"abc");
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        assert_eq!(raw_flow(&tagged), None);
        assert!(decoded_flow(linktype::ETHERNET, &tagged).is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The IPv4 shard, hashed without the tuple, is the tuple's.
        #[test]
        fn ipv4_shard_agrees_with_the_decoded_tuple(
            client in proptest::array::uniform4(proptest::num::u8::ANY),
            server in proptest::array::uniform4(proptest::num::u8::ANY),
            cport in proptest::num::u16::ANY,
            sport in proptest::sample::select(vec![53u16, 80, 443, 8000, 1]),
            to_server in proptest::bool::ANY,
            workers in 2usize..6,
        ) {
            let f = frame(client, cport, server, sport, to_server);
            let t = decoded_flow(linktype::ETHERNET, &f).expect("decodes");
            let want = (pick_worker(t.shard_hash(), workers), t.sport == 53 || t.dport == 53);
            proptest::prop_assert_eq!(shard(linktype::ETHERNET, &f, workers), want);
        }

        /// Wherever the fixed-offset read and the decoder both answer, they
        /// give the same flow: mutated, truncated and extended frames.
        #[test]
        fn raw_flow_agrees_with_the_decoder(
            v6 in proptest::bool::ANY,
            udp in proptest::bool::ANY,
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
            edits in proptest::collection::vec((0usize..80, proptest::num::u8::ANY), 0..4),
            cut in 0usize..140,
            extra in 0usize..8,
        ) {
            let mut f = plain_frame(v6, udp, &payload);
            for (i, b) in edits {
                if let Some(x) = f.get_mut(i) {
                    *x = b;
                }
            }
            f.extend(std::iter::repeat_n(0u8, extra));
            f.truncate(cut);
            if let (Some(raw), Ok(decoded)) = (raw_flow(&f), decoded_flow(linktype::ETHERNET, &f)) {
                proptest::prop_assert_eq!(raw, decoded);
            }
        }
    }
}
