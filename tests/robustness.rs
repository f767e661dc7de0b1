//! Hostile-input smoke test: every frame of the demo capture, mutated many
//! ways (byte flips, truncation, splices, random bytes), through the whole
//! engine. Nothing may panic; tables stay within their caps. The dedicated
//! fuzz targets go further; this keeps a deterministic floor in every run.

use shadowmcp::capture::FileSource;
use shadowmcp::decode::linktype;
use shadowmcp::engine::{Engine, EngineConfig};
use std::path::PathBuf;

mod common;

/// splitmix64: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn demo_frames() -> Vec<(i64, Vec<u8>)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap");
    let mut src = FileSource::open(&path).expect("demo capture");
    let mut v = Vec::new();
    while let Ok(Some(f)) = src.next_frame() {
        v.push((f.ts, f.data.to_vec()));
    }
    v
}

#[test]
fn mutated_frames_never_panic() {
    let frames = demo_frames();
    assert!(frames.len() > 300);
    let cfg = EngineConfig {
        max_flows: 512,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg, common::detector());
    let mut rng = Rng(0x5eed);
    let mut fed = 0u64;
    for round in 0..100 {
        for (ts, f) in &frames {
            let mut m = f.clone();
            match rng.below(5) {
                0 => {
                    // Flip a few bytes past the Ethernet header.
                    for _ in 0..=rng.below(4) {
                        let i = 14 + rng.below(m.len().saturating_sub(14).max(1));
                        if let Some(b) = m.get_mut(i) {
                            *b ^= 1 << rng.below(8);
                        }
                    }
                }
                1 => m.truncate(rng.below(m.len() + 1)),
                2 => {
                    // Splice the tail of another frame in.
                    let (_, other) = &frames[rng.below(frames.len())];
                    let at = rng.below(m.len() + 1);
                    m.truncate(at);
                    m.extend_from_slice(&other[rng.below(other.len() + 1)..]);
                }
                3 => {
                    // Random payload behind a valid header.
                    let keep = 54.min(m.len());
                    m.truncate(keep);
                    for _ in 0..rng.below(1500) {
                        m.push(rng.next() as u8);
                    }
                }
                _ => {}
            }
            engine.process_frame(ts + round * 1_000, linktype::ETHERNET, &m);
            fed += 1;
            engine.drain_observations().for_each(drop);
            assert!(engine.active_flows() <= 512);
        }
    }
    // Also every link type on garbage.
    for lt in [
        linktype::NULL,
        linktype::RAW,
        linktype::LINUX_SLL,
        linktype::LINUX_SLL2,
        4242,
    ] {
        for _ in 0..2000 {
            let len = rng.below(200);
            let g: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            engine.process_frame(0, lt, &g);
        }
    }
    engine.finish();
    assert_eq!(engine.stats().packets, fed + 10_000);
}
