//! `shadowmcp analyze`: capture files in, findings out.

use crate::capture::{CaptureError, FileSource, FrameAt};
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig};
use crate::findings::aggregate::{Aggregator, Confidence, Verdict, assess};
use crate::findings::output::FindingRecord;
use crate::sensor::{Batch, feed_frames, frame_at, shard};
use crate::stats::Stats;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Distinct (client, server) pairs kept per run.
pub const MAX_FINDINGS: usize = 100_000;
/// Frames taken from the reader's buffer at a time: as many as a worker's
/// batch.
const BLOCK_FRAMES: usize = 256;

pub struct AnalyzeOptions {
    pub files: Vec<PathBuf>,
    pub engine: EngineConfig,
    pub report_sanctioned: bool,
    pub min_confidence: Confidence,
    pub progress: bool,
    /// Engine threads; 1 analyses on the reading thread (and is the mode
    /// the golden outputs are made with).
    pub workers: usize,
}

pub struct AnalyzeResult {
    pub records: Vec<FindingRecord>,
    pub stats: Stats,
    /// Files that could not be opened at all.
    pub unusable: Vec<CaptureError>,
    /// Files that ended in a read error (what came before still counts).
    pub damaged: Vec<CaptureError>,
    pub shadow: usize,
    pub sanctioned: usize,
    pub by_confidence: [usize; 3],
    pub suppressed_below_confidence: usize,
    pub findings_dropped: u64,
}

pub fn analyze(opts: &AnalyzeOptions, detector: Arc<Detector>) -> AnalyzeResult {
    let mut engine = Engine::new(opts.engine.clone(), detector.clone());
    let mut agg = Aggregator::new(MAX_FINDINGS);
    let mut pool = (opts.workers > 1).then(|| Pool::start(opts, &detector));
    let mut unusable = Vec::new();
    let mut damaged = Vec::new();
    let total: u64 = opts
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar =
        (opts.progress && std::io::stderr().is_terminal() && total > 64 * 1024 * 1024).then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
    // One worker: frames are still gathered in batches, so that the engine
    // can prefetch the flows of the frames ahead (see `Batch::feed`).
    // Observations keep their order, so the output is the same.
    let mut batch = Batch::new(0);
    for path in &opts.files {
        let mut src = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                unusable.push(e);
                continue;
            }
        };
        let linktype = src.linktype();
        batch.clear(linktype);
        if src.reads_blocks() {
            // A classic pcap: frames are taken a block at a time from the
            // reader's buffer; one worker processes them there, uncopied.
            let read = read_blocks(&mut src, bar.as_ref(), |block, frames| {
                if let Some(p) = pool.as_mut() {
                    for (ts, frame) in frames.iter().filter_map(|f| frame_at(block, f)) {
                        p.push(linktype, ts, frame);
                    }
                    return;
                }
                feed_frames(linktype, block, frames, &mut engine);
                for o in engine.drain_observations() {
                    agg.add(&o);
                }
            });
            if let Err(e) = read {
                damaged.push(e);
            }
            continue;
        }
        loop {
            match src.next_frame() {
                Ok(Some(frame)) => {
                    if let Some(b) = &bar {
                        // pcap record header + captured bytes.
                        b.inc(16 + frame.data.len() as u64);
                    }
                    if let Some(p) = pool.as_mut() {
                        p.push(linktype, frame.ts, frame.data);
                        continue;
                    }
                    batch.push(frame.ts, frame.data);
                    if batch.full() {
                        run_batch(&mut batch, &mut engine, &mut agg);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    damaged.push(e);
                    break;
                }
            }
        }
        run_batch(&mut batch, &mut engine, &mut agg);
    }
    engine.finish();
    for o in engine.drain_observations() {
        agg.add(&o);
    }
    let mut stats = engine.stats().clone();
    if let Some(p) = pool {
        let (pool_stats, pool_agg) = p.finish();
        stats.merge(&pool_stats);
        agg = pool_agg;
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let findings_dropped = agg.dropped;
    let mut records = Vec::new();
    let (mut shadow, mut sanctioned, mut by_confidence, mut suppressed) = (0, 0, [0usize; 3], 0);
    for f in agg.into_sorted() {
        let a = assess(&f, &detector);
        if a.confidence < opts.min_confidence {
            suppressed += 1;
            continue;
        }
        match a.verdict {
            Verdict::Shadow => shadow += 1,
            Verdict::Sanctioned => {
                sanctioned += 1;
                if !opts.report_sanctioned {
                    continue;
                }
            }
        }
        if let Some(c) = by_confidence.get_mut(a.confidence as usize) {
            *c += 1;
        }
        records.push(FindingRecord::new(&f, &a, f.first_seen));
    }
    AnalyzeResult {
        records,
        stats,
        unusable,
        damaged,
        shadow,
        sanctioned,
        by_confidence,
        suppressed_below_confidence: suppressed,
        findings_dropped,
    }
}

/// A classic pcap: every frame of the file, a block at a time: `each` gets
/// the block's bytes and (timestamp, offset, length) of its frames.
fn read_blocks(
    src: &mut FileSource,
    bar: Option<&indicatif::ProgressBar>,
    mut each: impl FnMut(&[u8], &[FrameAt]),
) -> Result<(), CaptureError> {
    let mut frames = Vec::with_capacity(BLOCK_FRAMES);
    loop {
        let block = src.next_frames(&mut frames, BLOCK_FRAMES)?;
        if frames.is_empty() {
            return Ok(());
        }
        if let Some(b) = bar {
            // Record headers and captured bytes.
            b.inc(block.len() as u64);
        }
        each(block, &frames);
    }
}

fn run_batch(batch: &mut Batch, engine: &mut Engine, agg: &mut Aggregator) {
    batch.feed(engine);
    for o in engine.drain_observations() {
        agg.add(&o);
    }
    let lt = batch.linktype();
    batch.clear(lt);
}

/// `--workers N`: the reading thread shards frames by a symmetric flow hash
/// into batches for N engine threads (sharing one DNS name cache); a
/// collector thread aggregates their observations. Offline, nothing is
/// dropped: full queues make the reader wait.
struct Pool {
    detector: Arc<Detector>,
    cache: Arc<std::sync::Mutex<crate::detect::dns_cache::DnsCache>>,
    queues: Vec<crossbeam_channel::Sender<Batch>>,
    /// Batches the workers are done with, to be filled again: a new batch
    /// per hand-off would cost an allocation and page faults on 512 KiB.
    recycled: crossbeam_channel::Receiver<Batch>,
    pending: Vec<Batch>,
    workers: Vec<std::thread::JoinHandle<crate::stats::Stats>>,
    collector: std::thread::JoinHandle<Aggregator>,
}

impl Pool {
    fn start(opts: &AnalyzeOptions, detector: &Arc<Detector>) -> Pool {
        let n = opts.workers;
        let cache = Arc::new(std::sync::Mutex::new(
            crate::detect::dns_cache::DnsCache::new(opts.engine.dns_cache_size.max(1)),
        ));
        let (obs_tx, obs_rx) = crossbeam_channel::bounded::<crate::findings::Observation>(65_536);
        let collector = std::thread::spawn(move || {
            let mut agg = Aggregator::new(MAX_FINDINGS);
            for o in obs_rx {
                agg.add(&o);
            }
            agg
        });
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        // Every batch in flight can come back: queues plus one per worker.
        let (free_tx, free_rx) = crossbeam_channel::bounded::<Batch>(n * 66);
        for id in 0..n {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(64);
            queues.push(tx);
            let cfg = EngineConfig {
                flow_id_base: (id as u64) << 48,
                max_flows: (opts.engine.max_flows / n).max(1),
                // Analyzer-wide memory bounds, like the flow cap: split.
                max_tcp_streams: (opts.engine.max_tcp_streams / n).max(1),
                max_buffered_bytes: (opts.engine.max_buffered_bytes / n).max(1),
                ..opts.engine.clone()
            };
            let (det, cache, obs) = (detector.clone(), cache.clone(), obs_tx.clone());
            let free = free_tx.clone();
            workers.push(std::thread::spawn(move || {
                let mut engine = Engine::with_dns_cache(cfg, det, cache);
                for mut batch in rx {
                    batch.feed(&mut engine);
                    for o in engine.drain_observations() {
                        let _ = obs.send(o);
                    }
                    batch.clear(0);
                    // Full (cannot happen) or reader gone: just drop it.
                    let _ = free.try_send(batch);
                }
                engine.finish();
                for o in engine.drain_observations() {
                    let _ = obs.send(o);
                }
                engine.stats().clone()
            }));
        }
        Pool {
            detector: detector.clone(),
            cache,
            queues,
            recycled: free_rx,
            pending: (0..n).map(|_| Batch::new(0)).collect(),
            workers,
            collector,
        }
    }

    fn push(&mut self, linktype: i32, ts: crate::findings::Micros, frame: &[u8]) {
        let (w, dns) = shard(linktype, frame, self.queues.len());
        if dns {
            crate::engine::prime_dns_cache(&self.detector, &self.cache, ts, linktype, frame);
        }
        let Some(b) = self.pending.get_mut(w) else {
            return;
        };
        if !b.is_empty() && b.linktype() != linktype {
            self.flush(w);
        }
        let Some(b) = self.pending.get_mut(w) else {
            return;
        };
        if b.is_empty() {
            b.set_linktype(linktype);
        }
        b.push(ts, frame);
        if b.full() || dns {
            self.flush(w);
        }
    }

    fn flush(&mut self, w: usize) {
        let (Some(slot), Some(q)) = (self.pending.get_mut(w), self.queues.get(w)) else {
            return;
        };
        if slot.is_empty() {
            return;
        }
        let next = self.recycled.try_recv().unwrap_or_else(|_| Batch::new(0));
        let batch = std::mem::replace(slot, next);
        let _ = q.send(batch);
    }

    fn finish(mut self) -> (crate::stats::Stats, Aggregator) {
        for w in 0..self.queues.len() {
            self.flush(w);
        }
        drop(std::mem::take(&mut self.queues));
        let mut stats = crate::stats::Stats::default();
        for h in self.workers {
            if let Ok(s) = h.join() {
                stats.merge(&s);
            }
        }
        let agg = self
            .collector
            .join()
            .unwrap_or_else(|_| Aggregator::new(MAX_FINDINGS));
        (stats, agg)
    }
}
