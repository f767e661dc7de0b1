//! The whole per-packet pipeline: decode → flow table → reassembly → parsers
//! → classification → observations, then `finish()`.
//!
//! Input: byte 0 picks the link type (and a small flow table, to reach
//! eviction); then records `[dt: u8][len: u16 BE][frame: len bytes]`. `dt`
//! advances the clock by dt × 10 ms, 255 jumps past the idle timeout.
use shadowmcp::decode::linktype;
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::{Engine, EngineConfig};
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::allowlist::Allowlist;
use std::sync::{Arc, OnceLock};

const LINKTYPES: [i32; 4] = [
    linktype::ETHERNET,
    linktype::RAW,
    linktype::LINUX_SLL2,
    linktype::NULL,
];

fn detector() -> Arc<Detector> {
    static D: OnceLock<Arc<Detector>> = OnceLock::new();
    D.get_or_init(|| {
        let sigs = SignatureSet::builtin().expect("builtin signatures load");
        let allow = Allowlist::parse("*.example.com\n10.0.0.0/8\n", "fuzz").expect("allowlist");
        Arc::new(Detector::new(sigs, allow))
    })
    .clone()
}

pub fn run(data: &[u8]) {
    let Some((&hdr, mut rest)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[usize::from(hdr & 3)];
    let mut cfg = EngineConfig::default();
    if hdr & 4 != 0 {
        cfg.max_flows = 4;
        cfg.dns_cache_size = 4;
    }
    let mut engine = Engine::new(cfg, detector());
    let mut ts: i64 = 1_700_000_000_000_000;
    let mut frames = 0u64;
    while let [dt, a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        ts += if *dt == 255 {
            301_000_000
        } else {
            i64::from(*dt) * 10_000
        };
        engine.process_frame(ts, lt, frame);
        frames += 1;
        for obs in engine.drain_observations() {
            let _ = format!("{obs:?}");
        }
        if hdr & 4 != 0 {
            assert!(engine.active_flows() <= 4, "flow table over its cap");
        }
    }
    engine.finish();
    for obs in engine.drain_observations() {
        let _ = format!("{obs:?}");
    }
    assert_eq!(engine.stats().packets, frames);
}
