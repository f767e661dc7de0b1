//! Server-Sent Events parsing with arbitrary segmentation.
use shadowmcp::proto::sse::SseParser;

pub fn run(data: &[u8]) {
    let [cap, seed, rest @ ..] = data else {
        return;
    };
    // Event size cap: 1..=256 bytes or the engine default.
    let max = if *cap == 0 {
        256 * 1024
    } else {
        usize::from(*cap)
    };
    let mut p = SseParser::new(max);
    let mut out = Vec::new();
    let mut x = u32::from(*seed) | 1;
    let mut pos = 0usize;
    while pos < rest.len() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((x >> 16) as usize % 48 + 1).min(rest.len() - pos);
        p.feed(&rest[pos..pos + n], &mut out);
        pos += n;
    }
    for ev in &out {
        // Oversized events are dropped, never delivered (lossy UTF-8 may
        // turn one invalid byte into the 3-byte U+FFFD).
        assert!(
            ev.data.len() <= 3 * max,
            "event of {} > cap {max}",
            ev.data.len()
        );
    }
    // The same bytes in one piece give the same events.
    let mut whole = SseParser::new(max);
    let mut out2 = Vec::new();
    whole.feed(rest, &mut out2);
    assert_eq!(out, out2, "segmentation changed the events");
}
