//! Property tests for TCP reassembly (src/flow/reassembly.rs): any
//! segmentation, reordering, duplication and overlapping retransmission of a
//! stream yields the original bytes, or reports gaps without ever placing a
//! byte at a wrong stream position; the out-of-order buffer stays bounded.

use proptest::prelude::*;
use shadowmcp::flow::reassembly::{
    Chunk, MAX_OOO_BYTES, MAX_OOO_SEGMENTS, Reassembler, SEGMENT_OVERHEAD,
};

/// Deterministic stream bytes from a seed (xorshift64*): no period a
/// misplaced chunk could hide in.
fn stream(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// How one case cuts and perturbs the stream.
#[derive(Debug, Clone)]
struct Plan {
    seed: u64,
    isn: u32,
    len: usize,
    /// Segment lengths are drawn from 1..=max_seg.
    max_seg: usize,
    /// Each segment is sent at a position shifted by up to `window` slots.
    window: usize,
    /// Per-mille probabilities.
    dup: u32,
    overlap: u32,
    drop: u32,
}

fn plan(max_len: usize) -> impl Strategy<Value = Plan> {
    (
        any::<u64>(),
        prop_oneof![any::<u32>(), (u32::MAX - 4096)..=u32::MAX],
        0..=max_len,
        prop_oneof![1..=8usize, 1..=600usize, 1..=4000usize],
        prop_oneof![Just(0usize), 1..=4usize, 1..=64usize],
        prop_oneof![Just(0u32), 0..=300u32],
        prop_oneof![Just(0u32), 0..=300u32],
        prop_oneof![Just(0u32), Just(0u32), 0..=200u32],
    )
        .prop_map(
            |(seed, isn, len, max_seg, window, dup, overlap, drop)| Plan {
                seed,
                isn,
                len,
                max_seg,
                window,
                dup,
                overlap,
                drop,
            },
        )
}

/// The segments `(stream offset, length)` in sending order, and whether any
/// byte of the stream was never sent.
fn segments(p: &Plan) -> (Vec<(usize, usize)>, bool) {
    // Its own PRNG so the plan alone reproduces a case.
    let mut x = p.seed.rotate_left(17) | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if n == 0 { 0 } else { x % n }
    };
    let mut cuts = Vec::new();
    let mut off = 0usize;
    while off < p.len {
        let n = (1 + rnd(p.max_seg as u64) as usize).min(p.len - off);
        cuts.push((off, n));
        off += n;
    }
    let mut sent: Vec<(u64, (usize, usize))> = Vec::new();
    let mut missing = false;
    for (i, &(o, n)) in cuts.iter().enumerate() {
        let slot = (i as u64) * 4;
        if rnd(1000) < u64::from(p.drop) {
            missing = true;
        } else {
            sent.push((slot + rnd(p.window as u64 * 4 + 1), (o, n)));
        }
        if rnd(1000) < u64::from(p.dup) {
            sent.push((slot + rnd(p.window as u64 * 4 + 8), (o, n)));
        }
        if rnd(1000) < u64::from(p.overlap) {
            // A retransmission covering parts of this and the next segments.
            let start = o.saturating_sub(rnd(n as u64 + 1) as usize);
            let end = (o + n + rnd(2 * p.max_seg as u64 + 1) as usize).min(p.len);
            sent.push((slot + rnd(p.window as u64 * 4 + 8), (start, end - start)));
        }
    }
    // Stable sort: equal keys keep generation order.
    sent.sort_by_key(|&(k, _)| k);
    (sent.into_iter().map(|(_, s)| s).collect(), missing)
}

/// Push every segment (then flush) and check, chunk by chunk, that each
/// delivered byte sits at its original position. Returns (bytes delivered,
/// gaps reported, stream position reached).
fn run(p: &Plan, data: &[u8], segs: &[(usize, usize)]) -> (Vec<u8>, u32, usize) {
    let mut r = Reassembler::new();
    r.on_syn(p.isn);
    let mut delivered = Vec::new();
    let mut gaps = 0u32;
    let mut pos = 0usize;
    let mut sink = |c: Chunk<'_>| match c {
        Chunk::Data(d) => {
            assert!(!d.is_empty(), "empty data chunk");
            let want = data.get(pos..pos + d.len());
            assert_eq!(Some(d), want, "bytes delivered at wrong position {pos}");
            pos += d.len();
            delivered.extend_from_slice(d);
        }
        Chunk::Gap(n) => {
            assert!(n > 0, "empty gap");
            gaps += 1;
            pos += n as usize;
            assert!(pos <= data.len(), "gap past the end of the stream");
        }
    };
    for &(o, n) in segs {
        let seq = p.isn.wrapping_add(1).wrapping_add(o as u32);
        r.push(seq, &data[o..o + n], &mut sink);
        assert!(
            r.buffered() <= MAX_OOO_BYTES,
            "buffer {} over bound",
            r.buffered()
        );
    }
    r.flush(&mut sink);
    assert_eq!(r.buffered(), 0, "flush left data buffered");
    assert_eq!(r.gaps, gaps);
    (delivered, gaps, pos)
}

/// Whether everything pushed fits the out-of-order bounds at once, whatever
/// the order: then nothing can be forced out as a gap.
fn fits_bounds(segs: &[(usize, usize)]) -> bool {
    segs.len() < MAX_OOO_SEGMENTS
        && segs
            .iter()
            .map(|&(_, n)| n + SEGMENT_OVERHEAD)
            .sum::<usize>()
            <= MAX_OOO_BYTES
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Small streams: whenever no byte is missing and the reordering fits the
    /// bounds, the exact stream comes out with no gap.
    #[test]
    fn lossless_within_bounds_is_exact(p in plan(20_000)) {
        let data = stream(p.seed, p.len);
        let (segs, missing) = segments(&p);
        let (out, gaps, pos) = run(&p, &data, &segs);
        let end = segs.iter().map(|&(o, n)| o + n).max().unwrap_or(0);
        // Everything sent up to the furthest byte is accounted for.
        prop_assert_eq!(pos, end);
        if !missing && fits_bounds(&segs) {
            prop_assert_eq!(gaps, 0);
            prop_assert_eq!(out, data);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Streams larger than the buffer, with loss and wide reordering: gaps are
    /// reported, nothing is misplaced, the buffer never exceeds its bound.
    #[test]
    fn lossy_or_over_bounds_never_misplaces(p in plan(400_000)) {
        let data = stream(p.seed, p.len);
        let (segs, _) = segments(&p);
        let (out, gaps, pos) = run(&p, &data, &segs);
        let end = segs.iter().map(|&(o, n)| o + n).max().unwrap_or(0);
        prop_assert_eq!(pos, end);
        if gaps == 0 {
            // No gap reported: the delivered bytes are the stream's prefix.
            prop_assert_eq!(&out[..], &data[..pos]);
        }
    }
}

/// The worst case for the segment bound: a hole at the start, then many
/// one-byte segments in order (each a new buffered segment costing the
/// overhead). Buffering stays bounded and every byte after the hole arrives.
#[test]
fn tiny_segments_after_a_hole_stay_bounded() {
    let data = stream(7, 5000);
    let p = Plan {
        seed: 7,
        isn: 1000,
        len: data.len(),
        max_seg: 1,
        window: 0,
        dup: 0,
        overlap: 0,
        drop: 0,
    };
    // Odd offsets only: every segment is separate, none contiguous.
    let segs: Vec<(usize, usize)> = (1..data.len()).step_by(2).map(|o| (o, 1)).collect();
    let (out, gaps, pos) = run(&p, &data, &segs);
    assert_eq!(pos, data.len());
    assert_eq!(out.len(), segs.len());
    assert_eq!(gaps as usize, segs.len());
}
