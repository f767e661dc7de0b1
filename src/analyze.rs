//! `shadowmcp analyze`: capture files in, findings out.

use crate::capture::{CaptureError, FileSource, FrameAt};
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig};
use crate::findings::Micros;
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
    // Files can be read once per worker unless one is a pipe or a device.
    let regular = opts
        .files
        .iter()
        .all(|f| std::fs::metadata(f).is_ok_and(|m| m.is_file()));
    let Outcome {
        stats,
        agg,
        unusable,
        damaged,
    } = if opts.workers > 1 && regular {
        analyze_parallel(opts, &detector, bar.as_ref())
    } else {
        analyze_serial(opts, &detector, bar.as_ref())
    };
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

/// One worker on the reading thread, or (`--workers N` on a pipe or a
/// device, which can be read only once) a reading thread that hands frames
/// to N workers.
fn analyze_serial(
    opts: &AnalyzeOptions,
    detector: &Arc<Detector>,
    bar: Option<&indicatif::ProgressBar>,
) -> Outcome {
    let mut engine = Engine::new(opts.engine.clone(), detector.clone());
    let mut agg = Aggregator::new(MAX_FINDINGS);
    let mut pool = (opts.workers > 1).then(|| Pool::start(opts, detector));
    // One worker: frames are still gathered in batches, so that the engine
    // can prefetch the flows of the frames ahead (see `Batch::feed`).
    // Observations keep their order, so the output is the same.
    let mut batch = Batch::new(0);
    let every = |_, _, _: &[u8]| true;
    let (unusable, damaged) = read_files(&opts.files, bar, every, |linktype, read| match read {
        // A classic pcap: frames are taken a block at a time from the
        // reader's buffer; one worker processes them there, uncopied.
        Read::Block(block, frames) => {
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
        }
        Read::Frame(ts, frame) => {
            if let Some(p) = pool.as_mut() {
                p.push(linktype, ts, frame);
                return;
            }
            // A batch never spans files (each ends with `FileEnd`).
            if batch.is_empty() {
                batch.set_linktype(linktype);
            }
            batch.push(ts, frame);
            if batch.full() {
                run_batch(&mut batch, &mut engine, |o| agg.add(&o));
            }
        }
        Read::FileEnd => run_batch(&mut batch, &mut engine, |o| agg.add(&o)),
    });
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
    Outcome {
        stats,
        agg,
        unusable,
        damaged,
    }
}

/// What [`read_files`] hands on.
enum Read<'a> {
    /// A classic pcap, a block at a time: the block's bytes and the place of
    /// each of its frames (uncopied).
    Block(&'a [u8], &'a [FrameAt]),
    /// Other formats, a frame at a time.
    Frame(Micros, &'a [u8]),
    /// The end of a file (its last frames were handed on).
    FileEnd,
}

/// Every frame of every file that `keep` accepts (given the file's link
/// type), in order, to `each` with the file's link type. Returns the files
/// that could not be opened and those that ended in a read error (what came
/// before it was handed on).
fn read_files(
    files: &[PathBuf],
    bar: Option<&indicatif::ProgressBar>,
    mut keep: impl FnMut(i32, Micros, &[u8]) -> bool,
    mut each: impl FnMut(i32, Read<'_>),
) -> (Vec<CaptureError>, Vec<CaptureError>) {
    let (mut unusable, mut damaged) = (Vec::new(), Vec::new());
    let mut frames = Vec::with_capacity(BLOCK_FRAMES);
    for path in files {
        let mut src = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                unusable.push(e);
                continue;
            }
        };
        let linktype = src.linktype();
        let read = loop {
            if src.reads_blocks() {
                let kept = |ts, frame: &[u8]| keep(linktype, ts, frame);
                match src.next_frames(&mut frames, BLOCK_FRAMES, kept) {
                    Ok([]) => break Ok(()),
                    Ok(block) => {
                        if let Some(b) = bar {
                            // Record headers and captured bytes.
                            b.inc(block.len() as u64);
                        }
                        if !frames.is_empty() {
                            each(linktype, Read::Block(block, &frames));
                        }
                    }
                    Err(e) => break Err(e),
                }
            } else {
                match src.next_frame() {
                    Ok(Some(frame)) => {
                        if let Some(b) = bar {
                            // pcap record header + captured bytes.
                            b.inc(16 + frame.data.len() as u64);
                        }
                        if keep(linktype, frame.ts, frame.data) {
                            each(linktype, Read::Frame(frame.ts, frame.data));
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            }
        };
        each(linktype, Read::FileEnd);
        if let Err(e) = read {
            damaged.push(e);
        }
    }
    (unusable, damaged)
}

/// Feed a batch to the engine, hand its observations on, empty it.
fn run_batch(
    batch: &mut Batch,
    engine: &mut Engine,
    mut deliver: impl FnMut(crate::findings::Observation),
) {
    batch.feed(engine);
    engine.drain_observations().for_each(&mut deliver);
    let lt = batch.linktype();
    batch.clear(lt);
}

/// What the engines of a run found and met.
struct Outcome {
    stats: crate::stats::Stats,
    agg: Aggregator,
    unusable: Vec<CaptureError>,
    damaged: Vec<CaptureError>,
}

/// One thread that aggregates the observations of several engines.
fn spawn_collector() -> (
    crossbeam_channel::Sender<crate::findings::Observation>,
    std::thread::JoinHandle<Aggregator>,
) {
    let (tx, rx) = crossbeam_channel::bounded::<crate::findings::Observation>(65_536);
    let handle = std::thread::spawn(move || {
        let mut agg = Aggregator::new(MAX_FINDINGS);
        for o in rx {
            agg.add(&o);
        }
        agg
    });
    (tx, handle)
}

/// Store the DNS answers of a frame another worker handles in the shared
/// name cache. Rare next to the frames around it: out of line, so that the
/// per-frame filter stays small.
#[cold]
#[inline(never)]
fn prime_foreign_dns(
    det: &Detector,
    cache: &std::sync::Mutex<crate::detect::dns_cache::DnsCache>,
    ts: Micros,
    lt: i32,
    frame: &[u8],
) {
    crate::engine::prime_dns_cache(det, cache, ts, lt, frame);
}

/// `--workers N` on regular files: every worker reads the files itself and
/// keeps the frames of its shard (the symmetric flow hash of [`shard`]), so
/// no thread hands frames to another, nothing is copied, and N workers use N
/// cores (a reading thread would be one more, on the cores the workers
/// need). Reading is cheap next to processing: the page cache serves every
/// reader. A worker stores the DNS answers it skips in the shared name cache
/// as it meets them, so a connection an answer names finds it whichever
/// worker handles each, as with one worker.
fn analyze_parallel(
    opts: &AnalyzeOptions,
    detector: &Arc<Detector>,
    bar: Option<&indicatif::ProgressBar>,
) -> Outcome {
    let n = opts.workers.max(1);
    let cache = Arc::new(std::sync::Mutex::new(
        crate::detect::dns_cache::DnsCache::new(opts.engine.dns_cache_size.max(1)),
    ));
    let (obs, collect) = spawn_collector();
    let workers: Vec<_> = (0..n)
        .map(|id| {
            let cfg = opts.engine.for_worker(id, n);
            let (det, cache, obs) = (detector.clone(), cache.clone(), obs.clone());
            let files = opts.files.clone();
            // The first worker shows the progress.
            let bar = bar.filter(|_| id == 0).cloned();
            std::thread::spawn(move || {
                let mut engine = Engine::with_dns_cache(cfg, det.clone(), cache.clone());
                let mut batch = Batch::new(0);
                let send = |o| {
                    let _ = obs.send(o);
                };
                // The frames of this worker's shard; the DNS answers of the
                // others are stored in the shared cache as they are met.
                let keep = |lt, ts, frame: &[u8]| {
                    let (w, dns) = shard(lt, frame, n);
                    if dns && w != id {
                        prime_foreign_dns(&det, &cache, ts, lt, frame);
                    }
                    w == id
                };
                let (unusable, damaged) =
                    read_files(&files, bar.as_ref(), keep, |lt, read| match read {
                        Read::Block(block, frames) => {
                            feed_frames(lt, block, frames, &mut engine);
                            engine.drain_observations().for_each(send);
                        }
                        Read::Frame(ts, frame) => {
                            if batch.is_empty() {
                                batch.set_linktype(lt);
                            }
                            batch.push(ts, frame);
                            if batch.full() {
                                run_batch(&mut batch, &mut engine, send);
                            }
                        }
                        Read::FileEnd => run_batch(&mut batch, &mut engine, send),
                    });
                engine.finish();
                engine.drain_observations().for_each(send);
                (engine.stats().clone(), unusable, damaged)
            })
        })
        .collect();
    drop(obs);
    let mut out = Outcome {
        stats: crate::stats::Stats::default(),
        agg: Aggregator::new(MAX_FINDINGS),
        unusable: Vec::new(),
        damaged: Vec::new(),
    };
    for (id, h) in workers.into_iter().enumerate() {
        if let Ok((stats, unusable, damaged)) = h.join() {
            out.stats.merge(&stats);
            // Every worker meets the same files and the same read errors.
            if id == 0 {
                out.unusable = unusable;
                out.damaged = damaged;
            }
        }
    }
    if let Ok(agg) = collect.join() {
        out.agg = agg;
    }
    out
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
        let (obs_tx, collector) = spawn_collector();
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        // Every batch in flight can come back: queues plus one per worker.
        let (free_tx, free_rx) = crossbeam_channel::bounded::<Batch>(n * 66);
        for id in 0..n {
            let (tx, rx) = crossbeam_channel::bounded::<Batch>(64);
            queues.push(tx);
            let cfg = opts.engine.for_worker(id, n);
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
