//! IP fragment reassembly (IPv4 and IPv6), so that a datagram split into
//! fragments, by a path with a small MTU or on purpose to hide its content
//! from a sensor, is inspected as the receiving host sees it.
//!
//! Overlaps: a fragment that brings other values for bytes already held is
//! noted (`Notes::overlapping`), and both readings are kept: first bytes
//! win, and last bytes win. The datagram inspected is the first reading if
//! its TCP or UDP checksum holds, else the last one. Chaff, whose checksum
//! a fragmenting tool cannot keep right, so loses when it comes after the
//! real bytes; when it comes before them it loses too, unless the real
//! bytes' checksum was never filled in (captures made on the sending host,
//! with checksum offload), where the last bytes are the better guess:
//! fragroute-style chaff is sent first, to be superseded. Exact repeats are
//! duplicates, ignored. (Current Linux, Windows and BSD stacks drop such a
//! datagram altogether, RFC 5722; a sensor that did the same would be
//! blind to what an older or different receiver accepts.)
//! Memory is bounded: at most [`MAX_DATAGRAMS`] datagrams and
//! [`MAX_HELD_BYTES`] bytes wait per engine (the oldest waiting datagram is
//! dropped to make room), a datagram waits at most [`TIMEOUT`], and none is
//! larger than the 65,535 bytes an IP length field can say.
//!
//! The clock is the fragments' own timestamps, so that engines that are
//! shown the same fragments (every worker is: see `pipeline::shard`) keep
//! the same table and reach the same results.

use crate::findings::Micros;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Datagrams waiting for fragments, per engine.
pub const MAX_DATAGRAMS: usize = 1024;
/// Bytes of fragment data held, per engine (Linux: `ipfrag_high_thresh`,
/// 4 MiB).
pub const MAX_HELD_BYTES: usize = 4 << 20;
/// How long a datagram waits for its missing fragments (Linux:
/// `ipfrag_time`, 30 s).
pub const TIMEOUT: Micros = 30_000_000;
/// Largest IP payload a reassembled datagram may have.
const MAX_PAYLOAD: usize = 65_535;
/// Most separate byte ranges a datagram may have while it waits: fragments
/// in any order leave far fewer; thousands of tiny ones only cost time.
const MAX_HOLES: usize = 256;
/// Most IPv6 extension headers walked before the fragment header.
const MAX_V6_EXTENSIONS: usize = 8;

/// The datagram a fragment belongs to (RFC 791, RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DatagramKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    /// IPv4 protocol; for IPv6, the fragment header's next header.
    pub proto: u8,
}

/// One fragment, as a view into its packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub key: DatagramKey,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: usize,
    /// More fragments follow (not the last one).
    pub more: bool,
    /// TTL or hop limit, copied into the reassembled header.
    pub ttl: u8,
    pub data: &'a [u8],
}

impl<'a> Fragment<'a> {
    /// The fragment in an IP packet (starting at its version nibble);
    /// `None` if the packet is not a fragment or its headers are cut or
    /// inconsistent.
    pub fn parse(ip: &'a [u8]) -> Option<Fragment<'a>> {
        match ip.first()? >> 4 {
            4 => Self::parse_v4(ip),
            6 => Self::parse_v6(ip),
            _ => None,
        }
    }

    fn parse_v4(ip: &'a [u8]) -> Option<Fragment<'a>> {
        let be16 =
            |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*ip.get(i)?, *ip.get(i + 1)?])) };
        let ihl = usize::from(ip.first()? & 0x0f) * 4;
        let total = usize::from(be16(2)?);
        let flags = be16(6)?;
        let more = flags & 0x2000 != 0;
        let offset = usize::from(flags & 0x1fff) * 8;
        if ihl < 20 || total < ihl || (!more && offset == 0) {
            return None;
        }
        let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
        let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
        Some(Fragment {
            key: DatagramKey {
                src: IpAddr::from(src),
                dst: IpAddr::from(dst),
                id: u32::from(be16(4)?),
                proto: *ip.get(9)?,
            },
            offset,
            more,
            ttl: *ip.get(8)?,
            // The frame may carry Ethernet padding past the total length.
            data: ip.get(ihl..total)?,
        })
    }

    fn parse_v6(ip: &'a [u8]) -> Option<Fragment<'a>> {
        let len = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
        let packet = ip.get(..40usize.checked_add(len)?)?;
        let src: [u8; 16] = packet.get(8..24)?.try_into().ok()?;
        let dst: [u8; 16] = packet.get(24..40)?.try_into().ok()?;
        // Walk the unfragmentable part (hop-by-hop, routing, destination
        // options) to the fragment header.
        let mut next = *packet.get(6)?;
        let mut at = 40usize;
        for _ in 0..MAX_V6_EXTENSIONS {
            match next {
                0 | 43 | 60 => {
                    next = *packet.get(at)?;
                    let ext_len = (usize::from(*packet.get(at + 1)?) + 1) * 8;
                    at = at.checked_add(ext_len)?;
                }
                44 => {
                    let h = packet.get(at..at + 8)?;
                    let fo = u16::from_be_bytes([h[2], h[3]]);
                    let offset = usize::from(fo >> 3) * 8;
                    let more = fo & 1 != 0;
                    // An atomic fragment (RFC 6946): offset 0, no more.
                    if offset == 0 && !more {
                        return None;
                    }
                    return Some(Fragment {
                        key: DatagramKey {
                            src: IpAddr::from(src),
                            dst: IpAddr::from(dst),
                            id: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                            proto: h[0],
                        },
                        offset,
                        more,
                        ttl: *packet.get(7)?,
                        data: packet.get(at + 8..)?,
                    });
                }
                _ => return None,
            }
        }
        None
    }
}

/// What became of a fragment's datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembly {
    /// Fragments are still missing.
    Waiting,
    /// The datagram is whole: a complete IPv4 or IPv6 packet (header of
    /// 20 or 40 bytes, no options or extension headers), to be decoded as
    /// raw IP.
    Complete(Vec<u8>),
    /// The fragment brought nothing new: its bytes were all held already,
    /// with the same values.
    Duplicate,
    /// The datagram was dropped for this reason.
    Dropped(DropReason),
}

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Lengths that no sender produces: a non-last fragment whose length
    /// is not a multiple of 8, a second different last fragment, data past
    /// the last fragment's end, more than 65,535 bytes, or more than
    /// [`MAX_HOLES`] separate pieces.
    Invalid,
}

/// What else happened while a fragment was added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Notes {
    /// Datagrams that waited longer than [`TIMEOUT`], dropped.
    pub timed_out: u64,
    /// Datagrams dropped to make room under the bounds.
    pub evicted: u64,
    /// The fragment overlapped bytes held already with other values; the
    /// first ones were kept.
    pub overlapping: bool,
}

#[derive(Debug)]
struct Waiting {
    first_seen: Micros,
    /// Received byte ranges, sorted and disjoint.
    ranges: Vec<(usize, usize)>,
    /// Payload bytes, at their offsets (gaps are zero until filled); where
    /// fragments overlap, the first bytes.
    data: Vec<u8>,
    /// Once fragments overlapped with other bytes: the payload with the
    /// last bytes instead. The whole datagram is the first reading if its
    /// TCP or UDP checksum holds, else this one (see the module comment).
    last: Option<Vec<u8>>,
    /// Payload length, known once the last fragment came.
    total: Option<usize>,
    ttl: u8,
}

impl Waiting {
    fn held(&self) -> usize {
        self.data.capacity() + self.last.as_ref().map_or(0, Vec::capacity)
    }

    fn is_whole(&self) -> bool {
        matches!((self.total, self.ranges.as_slice()), (Some(total), [(0, end)]) if *end == total)
    }
}

/// The datagrams waiting for fragments in one engine.
#[derive(Debug, Default)]
pub struct Defragmenter {
    waiting: HashMap<DatagramKey, Waiting>,
    /// Datagrams in the order they came (with their first timestamp, which
    /// tells an entry whose datagram has gone and come back): the oldest is
    /// found without a scan, for eviction and timeouts. Entries of
    /// datagrams that have gone are skipped when met, and compacted away.
    order: VecDeque<(Micros, DatagramKey)>,
    held: usize,
    /// The latest fragment timestamp seen, and when the table was last
    /// looked at for datagrams past [`TIMEOUT`].
    now: Micros,
    swept: Micros,
}

impl Defragmenter {
    /// Datagrams waiting now.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Bytes of fragment data held now.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Add a fragment seen at `ts`. Also reports datagrams that timed out
    /// or were evicted on the way.
    pub fn add(&mut self, ts: Micros, f: &Fragment<'_>) -> (Reassembly, Notes) {
        self.now = self.now.max(ts);
        let mut notes = Notes::default();
        if self.now.saturating_sub(self.swept) >= TIMEOUT / 30 {
            self.swept = self.now;
            notes.timed_out = self.expire();
        }
        let outcome = self.insert(f, &mut notes);
        (outcome, notes)
    }

    fn insert(&mut self, f: &Fragment<'_>, notes: &mut Notes) -> Reassembly {
        let Some(end) = f.offset.checked_add(f.data.len()) else {
            return self.drop_datagram(&f.key, DropReason::Invalid);
        };
        if end > MAX_PAYLOAD || (f.more && (f.data.is_empty() || !f.data.len().is_multiple_of(8))) {
            return self.drop_datagram(&f.key, DropReason::Invalid);
        }
        let has = self.waiting.get(&f.key).map(|w| w.data.len());
        if has.is_none() {
            while self.waiting.len() >= MAX_DATAGRAMS && self.evict_oldest(&f.key) {
                notes.evicted += 1;
            }
        }
        // Room for this fragment's bytes; one datagram alone always fits.
        let growth = end.saturating_sub(has.unwrap_or(0));
        while self.held + growth > MAX_HELD_BYTES && self.evict_oldest(&f.key) {
            notes.evicted += 1;
        }
        if has.is_none() {
            self.order.push_back((self.now, f.key));
            if self.order.len() > 2 * MAX_DATAGRAMS {
                let waiting = &self.waiting;
                self.order
                    .retain(|(t, k)| waiting.get(k).is_some_and(|w| w.first_seen == *t));
            }
            self.waiting.insert(
                f.key,
                Waiting {
                    first_seen: self.now,
                    ranges: Vec::new(),
                    data: Vec::new(),
                    last: None,
                    total: None,
                    ttl: f.ttl,
                },
            );
        }
        let Some(w) = self.waiting.get_mut(&f.key) else {
            return Reassembly::Waiting;
        };
        let start = f.offset;
        // The last fragment fixes the length; nothing may lie past it.
        let total = if f.more { w.total } else { Some(end) };
        if (!f.more && w.total.is_some_and(|t| t != end))
            || total.is_some_and(|t| w.ranges.last().is_some_and(|&(_, e)| e > t) || end > t)
        {
            return self.drop_datagram(&f.key, DropReason::Invalid);
        }
        w.total = total;
        let before = w.held();
        if w.data.len() < end {
            w.data.reserve_exact(end - w.data.len());
            w.data.resize(end, 0);
        }
        // Bytes held already keep their first value; only the gaps between
        // held ranges are filled from this fragment.
        let mut filled = false;
        let mut differs = false;
        let mut at = start;
        let past_end = (end, end);
        let ranges = w.ranges.iter().chain(std::iter::once(&past_end));
        for &(s, e) in ranges.filter(|&&(s, e)| e > start && s <= end) {
            let gap = at..s.min(end);
            if !gap.is_empty() {
                let src = f.data.get(gap.start - start..gap.end - start);
                if let (Some(dst), Some(src)) = (w.data.get_mut(gap.clone()), src) {
                    dst.copy_from_slice(src);
                    filled = true;
                }
            }
            let held = s.max(at)..e.min(end);
            if !held.is_empty() {
                let new = f.data.get(held.start - start..held.end - start);
                differs |= w.data.get(held) != new;
            }
            at = at.max(e);
        }
        if differs && w.last.is_none() {
            w.last = Some(w.data.clone());
        }
        if let Some(dst) = w.last.as_mut().and_then(|l| {
            if l.len() < end {
                l.resize(end, 0);
            }
            l.get_mut(start..end)
        }) {
            dst.copy_from_slice(f.data);
        }
        notes.overlapping = differs;
        let outcome = if filled || differs {
            Reassembly::Waiting
        } else {
            Reassembly::Duplicate
        };
        let at = w.ranges.partition_point(|&(s, _)| s < start);
        w.ranges.insert(at, (start, end));
        // Merge touching or overlapping neighbours: a whole datagram is one
        // range.
        w.ranges.dedup_by(|next, kept| {
            let joins = next.0 <= kept.1;
            if joins {
                kept.1 = kept.1.max(next.1);
            }
            joins
        });
        if w.ranges.len() > MAX_HOLES {
            return self.drop_datagram(&f.key, DropReason::Invalid);
        }
        self.held = self.held.saturating_add(w.held()).saturating_sub(before);
        if !w.is_whole() {
            return outcome;
        }
        match self.waiting.remove(&f.key) {
            Some(w) => {
                self.held = self.held.saturating_sub(w.held());
                let payload = match &w.last {
                    Some(last) if !checksum_holds(&f.key, &w.data) => last,
                    _ => &w.data,
                };
                Reassembly::Complete(datagram(&f.key, w.ttl, payload))
            }
            None => Reassembly::Waiting,
        }
    }

    fn drop_datagram(&mut self, key: &DatagramKey, why: DropReason) -> Reassembly {
        if let Some(w) = self.waiting.remove(key) {
            self.held = self.held.saturating_sub(w.held());
        }
        Reassembly::Dropped(why)
    }

    /// The oldest waiting datagram, from the front of `order`, skipping
    /// entries whose datagram has gone.
    fn oldest(&mut self) -> Option<(Micros, DatagramKey)> {
        while let Some(&(t, k)) = self.order.front() {
            if self.waiting.get(&k).is_some_and(|w| w.first_seen == t) {
                return Some((t, k));
            }
            self.order.pop_front();
        }
        None
    }

    /// Drops the oldest waiting datagram unless it is `keep`; whether one
    /// was dropped.
    fn evict_oldest(&mut self, keep: &DatagramKey) -> bool {
        match self.oldest() {
            Some((_, k)) if k != *keep => {
                self.order.pop_front();
                if let Some(w) = self.waiting.remove(&k) {
                    self.held = self.held.saturating_sub(w.held());
                }
                true
            }
            _ => false,
        }
    }

    /// Drops the datagrams that waited longer than [`TIMEOUT`]; how many.
    fn expire(&mut self) -> u64 {
        let mut n = 0;
        while let Some((t, k)) = self.oldest() {
            if self.now.saturating_sub(t) < TIMEOUT {
                break;
            }
            self.order.pop_front();
            if let Some(w) = self.waiting.remove(&k) {
                self.held = self.held.saturating_sub(w.held());
            }
            n += 1;
        }
        n
    }
}

/// Whether a TCP or UDP payload's checksum holds, with the pseudo-header of
/// `key` (RFC 793, RFC 768, RFC 8200 §8.1); true for other protocols and
/// for IPv4 UDP without a checksum.
fn checksum_holds(key: &DatagramKey, payload: &[u8]) -> bool {
    if key.proto != 6 && key.proto != 17 {
        return true;
    }
    if key.proto == 17 && key.src.is_ipv4() && payload.get(6..8) == Some(&[0, 0]) {
        return true;
    }
    let mut sum: u64 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u64::from(pair.first().copied().unwrap_or(0)) << 8;
            sum += hi | u64::from(pair.get(1).copied().unwrap_or(0));
        }
    };
    match (key.src, key.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            add(&s.octets());
            add(&d.octets());
        }
        _ => return false,
    }
    add(&[0, key.proto]);
    add(&u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes());
    add(payload);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

/// A whole datagram: a plain IPv4 or IPv6 header, then the payload.
fn datagram(key: &DatagramKey, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(40 + payload.len());
    match (key.src, key.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = len.saturating_add(20);
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&(key.id as u16).to_be_bytes());
            out.extend_from_slice(&[0, 0, ttl, key.proto, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&[key.proto, ttl]);
            out.extend_from_slice(&v6(s));
            out.extend_from_slice(&v6(d));
        }
    }
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{self, Transport, linktype};
    use etherparse::PacketBuilder;

    /// An IPv4 UDP datagram's IP packet, cut into fragments of `size`
    /// payload bytes (a multiple of 8), with ID `id`.
    fn v4_fragments(payload: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
        let mut whole = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5353, 53)
            .write(&mut whole, payload)
            .unwrap();
        let body = &whole[20..];
        body.chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let offset = i * size;
                let more = offset + chunk.len() < body.len();
                let mut h = whole[..20].to_vec();
                h[2..4].copy_from_slice(&((20 + chunk.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&id.to_be_bytes());
                let fo = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&fo.to_be_bytes());
                h.extend_from_slice(chunk);
                h
            })
            .collect()
    }

    /// The same for IPv6, with a fragment header.
    fn v6_fragments(payload: &[u8], size: usize, id: u32) -> Vec<Vec<u8>> {
        let mut whole = Vec::new();
        PacketBuilder::ipv6([1; 16], [2; 16], 64)
            .udp(5353, 53)
            .write(&mut whole, payload)
            .unwrap();
        let body = &whole[40..];
        body.chunks(size)
            .enumerate()
            .map(|(i, chunk)| {
                let offset = i * size;
                let more = offset + chunk.len() < body.len();
                let mut h = whole[..40].to_vec();
                h[4..6].copy_from_slice(&((8 + chunk.len()) as u16).to_be_bytes());
                h[6] = 44;
                let fo = (offset as u16) | u16::from(more);
                h.extend_from_slice(&[17, 0]);
                h.extend_from_slice(&fo.to_be_bytes());
                h.extend_from_slice(&id.to_be_bytes());
                h.extend_from_slice(chunk);
                h
            })
            .collect()
    }

    fn feed(d: &mut Defragmenter, packets: &[Vec<u8>]) -> Vec<Reassembly> {
        packets
            .iter()
            .map(|p| d.add(0, &Fragment::parse(p).expect("a fragment")).0)
            .collect()
    }

    fn udp_payload(datagram: &[u8]) -> Vec<u8> {
        match decode::decode(linktype::RAW, datagram)
            .expect("decodes")
            .transport
        {
            Transport::Udp { payload, .. } => payload.to_vec(),
            other => panic!("not UDP: {other:?}"),
        }
    }

    #[test]
    fn in_order_and_reversed_fragments_give_the_datagram() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        for v6 in [false, true] {
            let mut frags = if v6 {
                v6_fragments(&payload, 1232, 7)
            } else {
                v4_fragments(&payload, 1480, 7)
            };
            for reverse in [false, true] {
                if reverse {
                    frags.reverse();
                }
                let mut d = Defragmenter::default();
                let mut out = feed(&mut d, &frags);
                let last = out.pop().unwrap();
                assert!(out.iter().all(|r| *r == Reassembly::Waiting), "{out:?}");
                let Reassembly::Complete(dgram) = last else {
                    panic!("not complete: {last:?}");
                };
                assert_eq!(udp_payload(&dgram), payload, "v6 {v6} reverse {reverse}");
                assert!(d.is_empty());
                assert_eq!(d.held_bytes(), 0);
            }
        }
    }

    #[test]
    fn tiny_first_fragment_that_splits_the_transport_header() {
        // 8 bytes: the UDP header alone; the classic evasion cuts a TCP
        // header this way.
        let frags = v4_fragments(b"a query that is not in the first fragment", 8, 9);
        let mut d = Defragmenter::default();
        let out = feed(&mut d, &frags);
        let Some(Reassembly::Complete(dgram)) = out.last() else {
            panic!("{out:?}");
        };
        assert_eq!(
            udp_payload(dgram),
            b"a query that is not in the first fragment"
        );
    }

    #[test]
    fn duplicates_are_ignored_and_overlaps_keep_the_first_bytes() {
        let payload: Vec<u8> = (0..64u8).collect();
        let frags = v4_fragments(&payload, 24, 1);
        let mut d = Defragmenter::default();
        assert_eq!(feed(&mut d, &frags[..1]), [Reassembly::Waiting]);
        assert_eq!(feed(&mut d, &frags[..1]), [Reassembly::Duplicate]);
        // A fragment at offset 16 whose first 8 bytes rewrite bytes 16..24
        // of the first one (chaff), and whose rest is new and right.
        let body = &v4_fragments(&payload, 8, 1);
        let mut chaff = frags[1].clone();
        chaff[6..8].copy_from_slice(&(0x2000u16 | 2).to_be_bytes());
        chaff.truncate(20);
        chaff.extend_from_slice(&[0xee; 8]);
        chaff.extend_from_slice(&body[3][20..]);
        chaff.extend_from_slice(&body[4][20..]);
        let len = chaff.len() as u16;
        chaff[2..4].copy_from_slice(&len.to_be_bytes());
        let (r, notes) = d.add(0, &Fragment::parse(&chaff).unwrap());
        assert_eq!(r, Reassembly::Waiting);
        assert!(notes.overlapping);
        // Held bytes again, with the same values, and 8 new ones: no
        // overlap noted.
        let (r, notes) = d.add(0, &Fragment::parse(&frags[1]).unwrap());
        assert_eq!(r, Reassembly::Waiting);
        assert!(!notes.overlapping);
        let out = feed(&mut d, &frags[2..]);
        let Some(Reassembly::Complete(dgram)) = out.last() else {
            panic!("{out:?}");
        };
        // The first bytes won: the chaff is not in the datagram.
        assert_eq!(udp_payload(dgram), payload);
    }

    #[test]
    fn chaff_that_comes_first_loses_on_its_checksum() {
        let payload: Vec<u8> = (0..64u8).collect();
        for v6 in [false, true] {
            let frags = if v6 {
                v6_fragments(&payload, 24, 5)
            } else {
                v4_fragments(&payload, 24, 5)
            };
            // A copy of the second fragment with other bytes, sent first.
            let mut chaff = frags[1].clone();
            let n = chaff.len();
            chaff[n - 24..].fill(0xee);
            let mut d = Defragmenter::default();
            assert_eq!(feed(&mut d, &[chaff]), [Reassembly::Waiting]);
            let (r, notes) = d.add(0, &Fragment::parse(&frags[1]).unwrap());
            assert_eq!(r, Reassembly::Waiting);
            assert!(notes.overlapping, "v6 {v6}");
            let out = feed(&mut d, &[frags[0].clone(), frags[2].clone()]);
            let Some(Reassembly::Complete(dgram)) = out.last() else {
                panic!("{out:?}");
            };
            assert_eq!(udp_payload(dgram), payload, "v6 {v6}");
        }
    }

    #[test]
    fn impossible_lengths_are_dropped() {
        let frags = v4_fragments(&[1u8; 40], 16, 3);
        // A non-last fragment whose length is not a multiple of 8.
        let mut odd = frags[0].clone();
        odd.truncate(odd.len() - 3);
        let len = odd.len() as u16;
        odd[2..4].copy_from_slice(&len.to_be_bytes());
        let mut d = Defragmenter::default();
        assert_eq!(
            feed(&mut d, &[odd]),
            [Reassembly::Dropped(DropReason::Invalid)]
        );
        // Data past the end the last fragment set.
        let mut d = Defragmenter::default();
        let last = frags.last().unwrap().clone();
        assert_eq!(feed(&mut d, &[last]), [Reassembly::Waiting]);
        let mut past = frags[0].clone();
        past[6..8].copy_from_slice(&(0x2000u16 | 100).to_be_bytes());
        assert_eq!(
            feed(&mut d, &[past]),
            [Reassembly::Dropped(DropReason::Invalid)]
        );
        // An offset that would make the datagram longer than 65,535 bytes.
        let mut huge = frags[0].clone();
        huge[6..8].copy_from_slice(&(0x2000u16 | 0x1fff).to_be_bytes());
        let mut d = Defragmenter::default();
        assert_eq!(
            feed(&mut d, &[huge]),
            [Reassembly::Dropped(DropReason::Invalid)]
        );
    }

    #[test]
    fn not_fragments() {
        let mut whole = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut whole, b"x")
            .unwrap();
        assert_eq!(Fragment::parse(&whole), None);
        assert_eq!(Fragment::parse(&[]), None);
        assert_eq!(Fragment::parse(&[0x45]), None);
        // An IPv6 atomic fragment (offset 0, no more) is a whole packet.
        let mut atomic = v6_fragments(b"x", 8, 1).remove(0);
        atomic[40 + 2..40 + 4].copy_from_slice(&[0, 0]);
        assert_eq!(Fragment::parse(&atomic), None);
    }

    #[test]
    fn bounds_evict_the_oldest_and_time_out() {
        let mut d = Defragmenter::default();
        let mut evicted = 0;
        for id in 0..(MAX_DATAGRAMS as u16 + 10) {
            let first = v4_fragments(&[0u8; 32], 16, id).remove(0);
            let (r, e) = d.add(i64::from(id), &Fragment::parse(&first).unwrap());
            assert_eq!(r, Reassembly::Waiting);
            evicted += e.evicted;
        }
        assert_eq!(d.len(), MAX_DATAGRAMS);
        assert_eq!(evicted, 10);
        // The oldest went: the first ID's second half no longer completes.
        let second = v4_fragments(&[0u8; 32], 16, 0).remove(1);
        assert_eq!(
            d.add(20_000, &Fragment::parse(&second).unwrap()).0,
            Reassembly::Waiting
        );
        // Past the timeout every waiting datagram goes.
        let late = v4_fragments(&[0u8; 32], 16, 60_000).remove(0);
        let (_, e) = d.add(TIMEOUT + 30_000, &Fragment::parse(&late).unwrap());
        assert_eq!(e.timed_out, MAX_DATAGRAMS as u64);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn held_bytes_stay_under_the_budget() {
        let mut d = Defragmenter::default();
        // First halves of 60 KiB datagrams: far more than the budget.
        let payload = vec![0u8; 60 * 1024];
        for id in 0..200u16 {
            let first = v4_fragments(&payload, 30 * 1024, id).remove(0);
            d.add(0, &Fragment::parse(&first).unwrap());
            assert!(d.held_bytes() <= MAX_HELD_BYTES, "{}", d.held_bytes());
        }
        assert!(d.len() < 200);
    }
}
