//! TCP stream reassembly for one direction.
//!
//! Policy (documented in docs/detection.md):
//! - In-order data is delivered straight from the packet, without a copy.
//! - Bytes already delivered are never replaced: a retransmission or an
//!   overlapping segment only contributes the bytes beyond what was delivered
//!   ("first delivered wins"). Among buffered out-of-order segments, the one
//!   with the lowest sequence number wins; equal starts keep the first received.
//! - Out-of-order segments are copied into a bounded buffer
//!   (`MAX_OOO_BYTES`, `MAX_OOO_SEGMENTS`). When it is full, or at end of
//!   stream, the hole is declared a gap: the stream jumps to the next buffered
//!   segment and the consumer is told (`Chunk::Gap`) so it can resynchronise.

/// Bytes of out-of-order data held per direction, each segment also charged
/// `SEGMENT_OVERHEAD` so that floods of tiny segments are bounded too.
pub const MAX_OOO_BYTES: usize = 128 * 1024;
/// Out-of-order segments held per direction.
pub const MAX_OOO_SEGMENTS: usize = 1024;
/// Bookkeeping charged per buffered segment.
pub const SEGMENT_OVERHEAD: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    Data(&'a [u8]),
    /// `n` bytes of the stream were never seen.
    Gap(u32),
}

#[derive(Debug)]
struct Segment {
    seq: u32,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Reassembler {
    next: u32,
    synced: bool,
    ooo: Vec<Segment>,
    /// Bytes of `ooo` with their overhead, at most `MAX_OOO_BYTES` (32-bit:
    /// every inspected stream carries two reassemblers).
    ooo_bytes: u32,
    /// Holes declared in this direction.
    pub gaps: u32,
    /// Segments that carried only bytes already delivered.
    pub retransmissions: u32,
    /// Gaps declared because the out-of-order buffer was full.
    pub overflows: u32,
}

/// Signed distance from `b` to `a` in sequence space (RFC 9293 §3.4 arithmetic).
fn seq_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

impl Reassembler {
    pub fn new() -> Self {
        Self::default()
    }

    /// A SYN carries the initial sequence number; data starts at ISN + 1.
    pub fn on_syn(&mut self, isn: u32) {
        if !self.synced {
            self.next = isn.wrapping_add(1);
            self.synced = true;
        }
    }

    /// Where the stream stands when nothing is buffered out of order: the
    /// next sequence number expected (`Some(None)` before the stream's start
    /// is known). `None` while segments are buffered.
    pub fn idle(&self) -> Option<Option<u32>> {
        self.ooo
            .is_empty()
            .then_some(self.synced.then_some(self.next))
    }

    /// A reassembler in the state [`Reassembler::idle`] described (its
    /// counters start again from zero).
    pub fn resume(next: Option<u32>) -> Self {
        Self {
            next: next.unwrap_or(0),
            synced: next.is_some(),
            ..Self::default()
        }
    }

    /// Bytes currently buffered out of order.
    pub fn buffered(&self) -> usize {
        self.ooo_bytes as usize
    }

    fn set_buffered(&mut self, n: usize) {
        self.ooo_bytes = u32::try_from(n).unwrap_or(u32::MAX);
    }

    /// Add one segment; contiguous data (and gaps) go to `out` in stream order.
    pub fn push(&mut self, seq: u32, data: &[u8], out: &mut impl FnMut(Chunk<'_>)) {
        if data.is_empty() {
            return;
        }
        if !self.synced {
            // Picked up mid-stream: the first segment seen defines the start.
            self.next = seq;
            self.synced = true;
        }
        let d = seq_diff(seq, self.next);
        if d <= 0 {
            let skip = d.unsigned_abs() as usize;
            match data.get(skip..) {
                Some(fresh) if !fresh.is_empty() => {
                    self.next = self.next.wrapping_add(fresh.len() as u32);
                    out(Chunk::Data(fresh));
                    self.drain_ready(out);
                }
                _ => self.retransmissions = self.retransmissions.saturating_add(1),
            }
            return;
        }
        let d = seq_diff(seq, self.next);
        let end = d.saturating_add(data.len() as i32);
        // Already buffered in full (a duplicate): nothing to add.
        if self.ooo.iter().any(|s| {
            let sd = seq_diff(s.seq, self.next);
            sd <= d && sd.saturating_add(s.data.len() as i32) >= end
        }) {
            self.retransmissions = self.retransmissions.saturating_add(1);
            return;
        }
        // Continues the buffered segment that ends exactly where it starts:
        // extend it (the common "hole, then in-order tail" pattern).
        let next = self.next;
        let fits = self.buffered() + data.len() <= MAX_OOO_BYTES;
        if let (true, Some(prev)) = (
            fits,
            self.ooo
                .iter_mut()
                .find(|s| seq_diff(s.seq, next).saturating_add(s.data.len() as i32) == d),
        ) {
            prev.data.extend_from_slice(data);
            self.set_buffered(self.buffered() + data.len());
            return;
        }
        // A new buffered segment. Make room by declaring gaps until it fits.
        let cost = data.len() + SEGMENT_OVERHEAD;
        while (self.buffered() + cost > MAX_OOO_BYTES || self.ooo.len() >= MAX_OOO_SEGMENTS)
            && !self.ooo.is_empty()
        {
            self.overflows = self.overflows.saturating_add(1);
            self.skip_to_first_buffered(out);
            if seq_diff(seq, self.next) <= 0 {
                // The jump overtook this segment: deliver what is new of it.
                return self.push(seq, data, out);
            }
        }
        if cost > MAX_OOO_BYTES {
            // Larger than the whole buffer: the hole before it can never be
            // filled within bounds, so jump to it now.
            let missing = seq_diff(seq, self.next) as u32;
            self.gaps = self.gaps.saturating_add(1);
            out(Chunk::Gap(missing));
            self.next = seq;
            return self.push(seq, data, out);
        }
        let d = seq_diff(seq, self.next);
        let pos = self
            .ooo
            .partition_point(|s| seq_diff(s.seq, self.next) <= d);
        self.set_buffered(self.buffered() + cost);
        self.ooo.insert(
            pos,
            Segment {
                seq,
                data: data.to_vec(),
            },
        );
    }

    /// Deliver buffered segments that became contiguous.
    fn drain_ready(&mut self, out: &mut impl FnMut(Chunk<'_>)) {
        while let Some(first) = self.ooo.first() {
            let d = seq_diff(first.seq, self.next);
            if d > 0 {
                break;
            }
            let seg = self.ooo.remove(0);
            self.set_buffered(
                self.buffered()
                    .saturating_sub(seg.data.len() + SEGMENT_OVERHEAD),
            );
            let skip = d.unsigned_abs() as usize;
            match seg.data.get(skip..) {
                Some(fresh) if !fresh.is_empty() => {
                    self.next = self.next.wrapping_add(fresh.len() as u32);
                    out(Chunk::Data(fresh));
                }
                _ => self.retransmissions = self.retransmissions.saturating_add(1),
            }
        }
    }

    fn skip_to_first_buffered(&mut self, out: &mut impl FnMut(Chunk<'_>)) {
        if let Some(first) = self.ooo.first() {
            let missing = seq_diff(first.seq, self.next);
            if missing > 0 {
                self.gaps = self.gaps.saturating_add(1);
                out(Chunk::Gap(missing as u32));
                self.next = first.seq;
            }
            self.drain_ready(out);
        }
    }

    /// End of stream (FIN, RST, eviction): whatever is buffered is delivered
    /// after declaring the holes in front of it.
    pub fn flush(&mut self, out: &mut impl FnMut(Chunk<'_>)) {
        while !self.ooo.is_empty() {
            self.skip_to_first_buffered(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(r: &mut Reassembler, segs: &[(u32, &[u8])]) -> (Vec<u8>, u32) {
        let mut bytes = Vec::new();
        let mut gaps = 0;
        let mut out = |c: Chunk<'_>| match c {
            Chunk::Data(d) => bytes.extend_from_slice(d),
            Chunk::Gap(_) => gaps += 1,
        };
        for (seq, d) in segs {
            r.push(*seq, d, &mut out);
        }
        r.flush(&mut out);
        (bytes, gaps)
    }

    #[test]
    fn in_order_and_reordered_give_the_same_bytes() {
        let mut r = Reassembler::new();
        r.on_syn(99);
        let (b, g) = collect(&mut r, &[(100, b"hello "), (106, b"world")]);
        assert_eq!((b.as_slice(), g), (&b"hello world"[..], 0));
        let mut r = Reassembler::new();
        r.on_syn(99);
        let (b, g) = collect(&mut r, &[(106, b"world"), (100, b"hello ")]);
        assert_eq!((b.as_slice(), g), (&b"hello world"[..], 0));
    }

    #[test]
    fn retransmission_and_overlap_first_delivered_wins() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let (b, _) = collect(
            &mut r,
            &[(1, b"abcd"), (1, b"XXXX"), (3, b"YYef"), (7, b"g")],
        );
        assert_eq!(b, b"abcdefg");
        assert_eq!(r.retransmissions, 1);
    }

    #[test]
    fn wraparound() {
        let mut r = Reassembler::new();
        r.on_syn(u32::MAX - 2);
        let (b, _) = collect(&mut r, &[(u32::MAX - 1, b"ab"), (0, b"cd")]);
        assert_eq!(b, b"abcd");
    }

    #[test]
    fn hole_becomes_gap_at_flush() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let (b, g) = collect(&mut r, &[(1, b"ab"), (10, b"xy")]);
        assert_eq!((b.as_slice(), g), (&b"abxy"[..], 1));
    }

    #[test]
    fn bounded_buffer_forces_gap() {
        let mut r = Reassembler::new();
        r.on_syn(0);
        let mut gaps = 0;
        let mut delivered = 0usize;
        // Never send seq 1: every segment is out of order.
        for i in 0..10_000u32 {
            r.push(1000 + i * 100, &[7u8; 100], &mut |c| match c {
                Chunk::Data(d) => delivered += d.len(),
                Chunk::Gap(_) => gaps += 1,
            });
            assert!(r.buffered() <= MAX_OOO_BYTES);
        }
        assert!(gaps >= 1);
        assert!(r.overflows >= 1, "forced gaps are counted as overflows");
        assert!(delivered > 0);
    }
}
