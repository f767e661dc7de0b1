//! `shadowmcp analyze`: capture files in, findings out.

use crate::capture::{CaptureError, FileSource, FrameAt};
use crate::detect::dns_cache::DnsCache;
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig, frame_at};
use crate::findings::aggregate::{Aggregator, Confidence, Verdict, assess};
use crate::findings::output::FindingRecord;
use crate::findings::{Micros, Observation, Observer};
use crate::pipeline::EVERY_WORKER;
use crate::pipeline::{self, Batch, DetectorSlot, ObservationSender, QueuePolicy, Workers, shard};
use crate::stats::Stats;
use crate::tls_decrypt::DecryptContext;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;

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
    /// The sensor named in every finding, with the files read.
    pub observer: Observer,
    /// Session keys (`--tls-keylog`, and the pcapng secrets met on the
    /// way): TLS connections are decrypted when set.
    pub decrypt: Option<Arc<DecryptContext>>,
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
    } = if opts.workers <= 1 {
        analyze_serial(opts, &detector, bar.as_ref())
    } else if regular {
        analyze_parallel(opts, &detector, bar.as_ref())
    } else {
        analyze_piped(opts, &detector, bar.as_ref())
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
        records.push(FindingRecord::new(&f, &a, f.first_seen).with_observer(&opts.observer));
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

/// An engine that decrypts with the run's session keys, if any.
fn with_keys(mut engine: Engine, opts: &AnalyzeOptions) -> Engine {
    if let Some(k) = &opts.decrypt {
        engine.set_decryption(k.clone());
    }
    engine
}

/// One worker, on the reading thread: no hand-off at all.
fn analyze_serial(
    opts: &AnalyzeOptions,
    detector: &Arc<Detector>,
    bar: Option<&indicatif::ProgressBar>,
) -> Outcome {
    let mut serial = Serial {
        engine: with_keys(Engine::new(opts.engine.clone(), detector.clone()), opts),
        agg: Aggregator::new(MAX_FINDINGS),
        batch: Batch::new(0),
        frames: Vec::with_capacity(BLOCK_FRAMES),
    };
    let (unusable, damaged) = read_files(&opts.files, bar, opts.decrypt.as_deref(), &mut serial);
    let Serial {
        mut engine,
        mut agg,
        ..
    } = serial;
    engine.finish();
    for o in engine.drain_observations() {
        agg.add(&o);
    }
    Outcome {
        stats: engine.stats().clone(),
        agg,
        unusable,
        damaged,
    }
}

/// `--workers N` on a pipe or a device, which can be read only once: the
/// reading thread shards frames into batches for N worker threads, as the
/// live sensor's capture thread does; offline, full queues make the reader
/// wait instead of dropping.
fn analyze_piped(
    opts: &AnalyzeOptions,
    detector: &Arc<Detector>,
    bar: Option<&indicatif::ProgressBar>,
) -> Outcome {
    let n = opts.workers.max(1);
    let cache = Arc::new(Mutex::new(DnsCache::new(opts.engine.dns_cache_size.max(1))));
    let slot = Arc::new(DetectorSlot::new(detector.clone()));
    let (obs, collect) = spawn_collector();
    let engines = pipeline::engines(&opts.engine, n, detector, &cache)
        .into_iter()
        .map(|e| with_keys(e, opts))
        .collect();
    let workers = match Workers::start(engines, PIPED_QUEUE_BATCHES, &slot, &obs, |_| ()) {
        Ok(w) => w,
        // No thread could be started: the analysis still runs, on this one.
        Err(_) => {
            drop(obs);
            let _ = collect.join();
            return analyze_serial(opts, detector, bar);
        }
    };
    drop(obs);
    let mut piped = Piped {
        dispatch: workers.dispatcher(QueuePolicy::Block, &slot, &cache),
        frames: Vec::with_capacity(BLOCK_FRAMES),
    };
    let (unusable, damaged) = read_files(&opts.files, bar, opts.decrypt.as_deref(), &mut piped);
    drop(piped);
    let mut stats = Stats::default();
    for e in workers.finish() {
        stats.merge(e.stats());
    }
    Outcome {
        stats,
        agg: collect
            .join()
            .unwrap_or_else(|_| Aggregator::new(MAX_FINDINGS)),
        unusable,
        damaged,
    }
}

/// The next block of a classic pcap file's records (up to `BLOCK_FRAMES`,
/// uncopied, their places in `frames`); `None` at the end of the file.
fn next_block<'a>(
    src: &'a mut FileSource,
    frames: &mut Vec<FrameAt>,
) -> Result<Option<&'a [u8]>, CaptureError> {
    let every = |_, _, _: &[u8]| true;
    let block = src.next_frames(frames, (BLOCK_FRAMES, usize::MAX), every)?;
    Ok((!block.is_empty()).then_some(block))
}

/// Batches queued per worker when reading a pipe.
const PIPED_QUEUE_BATCHES: usize = 64;

/// [`analyze_piped`]'s reading thread.
struct Piped {
    dispatch: pipeline::Dispatcher,
    frames: Vec<FrameAt>,
}

impl FrameSink for Piped {
    fn records(&mut self, _: usize, src: &mut FileSource) -> Result<Option<usize>, CaptureError> {
        let linktype = src.linktype();
        let Some(block) = next_block(src, &mut self.frames)? else {
            return Ok(None);
        };
        for (ts, frame) in self.frames.iter().filter_map(|f| frame_at(block, f)) {
            self.dispatch.push(linktype, ts, frame);
        }
        Ok(Some(block.len()))
    }

    fn frame(&mut self, linktype: i32, ts: Micros, frame: &[u8]) {
        self.dispatch.push(linktype, ts, frame);
    }

    fn file_end(&mut self) {}
}

/// Where [`read_files`] hands what it reads.
trait FrameSink {
    /// One step through classic pcap file number `file` (see
    /// [`FileSource::reads_blocks`]): the bytes of the records passed,
    /// `None` at the end of the file.
    fn records(&mut self, file: usize, src: &mut FileSource)
    -> Result<Option<usize>, CaptureError>;
    /// One frame of a file that libpcap reads.
    fn frame(&mut self, linktype: i32, ts: Micros, frame: &[u8]);
    /// The end of a file: its last frames are to be handed on.
    fn file_end(&mut self);
}

/// Every frame of every file, in order, to `sink`. Returns the files that
/// could not be opened and those that ended in a read error (what came
/// before it was handed on).
fn read_files(
    files: &[PathBuf],
    bar: Option<&indicatif::ProgressBar>,
    keys: Option<&DecryptContext>,
    sink: &mut impl FrameSink,
) -> (Vec<CaptureError>, Vec<CaptureError>) {
    let (mut unusable, mut damaged) = (Vec::new(), Vec::new());
    for (i, path) in files.iter().enumerate() {
        let mut src = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                unusable.push(e);
                continue;
            }
        };
        let linktype = src.linktype();
        // A pcapng capture may carry its session keys, whatever its name
        // or source (a pipe): decrypt the TLS connections that start in it.
        if let Some(k) = keys
            && src.is_pcapng()
        {
            k.enable();
        }
        let read = loop {
            let passed = if src.reads_blocks() {
                match sink.records(i, &mut src) {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            } else {
                // Session keys a pcapng carries (Decryption Secrets Blocks)
                // reach the key table before the packets after them are
                // processed (frames wait in batches).
                if let Some(k) = keys {
                    for block in src.take_secrets() {
                        k.table.load_decryption_secrets_block(&block);
                    }
                }
                match src.next_frame() {
                    Ok(Some(frame)) => {
                        sink.frame(linktype, frame.ts, frame.data);
                        // pcap record header + captured bytes.
                        16 + frame.data.len()
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            if let Some(b) = bar {
                b.inc(passed as u64);
            }
        };
        sink.file_end();
        if let Err(e) = read {
            damaged.push(e);
        }
    }
    (unusable, damaged)
}

/// [`analyze_serial`]'s reading thread and its engine.
struct Serial {
    engine: Engine,
    agg: Aggregator,
    /// Frames of a file libpcap reads, gathered in batches so that the
    /// engine can prefetch the flows of the frames ahead. A batch never
    /// spans files.
    batch: Batch,
    frames: Vec<FrameAt>,
}

impl FrameSink for Serial {
    /// A block at a time from the reader's buffer, processed there,
    /// uncopied.
    fn records(&mut self, _: usize, src: &mut FileSource) -> Result<Option<usize>, CaptureError> {
        let linktype = src.linktype();
        let Some(block) = next_block(src, &mut self.frames)? else {
            return Ok(None);
        };
        self.engine.process_batch(linktype, block, &self.frames);
        for o in self.engine.drain_observations() {
            self.agg.add(&o);
        }
        Ok(Some(block.len()))
    }

    fn frame(&mut self, linktype: i32, ts: Micros, frame: &[u8]) {
        let (agg, engine) = (&mut self.agg, &mut self.engine);
        self.batch.add(linktype, ts, frame, |b| {
            run_batch(b, engine, |o| agg.add(&o))
        });
    }

    fn file_end(&mut self) {
        let agg = &mut self.agg;
        run_batch(&mut self.batch, &mut self.engine, |o| agg.add(&o));
    }
}

/// Run a batch on the engine, hand its observations on, empty it.
fn run_batch(batch: &mut Batch, engine: &mut Engine, deliver: impl FnMut(Observation)) {
    batch.run(engine);
    engine.drain_observations().for_each(deliver);
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

/// One thread that aggregates the observations of several engines; offline
/// nothing is dropped (a full queue makes the workers wait).
fn spawn_collector() -> (ObservationSender, std::thread::JoinHandle<Aggregator>) {
    let (tx, rx) = crossbeam_channel::bounded::<Observation>(65_536);
    let tx = ObservationSender::new(tx, QueuePolicy::Block, Arc::default());
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
/// need, and frames read on one core and analysed on another cost as much
/// as reading them twice). The page cache serves every reader. Only one
/// worker walks each block of records and sorts its frames into shards
/// ([`SharedWalks`]); the others read past it with their lists.
fn analyze_parallel(
    opts: &AnalyzeOptions,
    detector: &Arc<Detector>,
    bar: Option<&indicatif::ProgressBar>,
) -> Outcome {
    let n = opts.workers.max(1);
    let cache = Arc::new(std::sync::Mutex::new(
        crate::detect::dns_cache::DnsCache::new(opts.engine.dns_cache_size.max(1)),
    ));
    let walks = Arc::new(SharedWalks::default());
    let (obs, collect) = spawn_collector();
    let workers: Vec<_> = (0..n)
        .map(|id| {
            let mut worker = ShardWorker {
                id,
                lists: (0..n).map(|_| ShardLists::default()).collect(),
                walks: walks.clone(),
                engine: with_keys(
                    Engine::with_dns_cache(
                        opts.engine.for_worker(id, n),
                        detector.clone(),
                        cache.clone(),
                    ),
                    opts,
                ),
                detector: detector.clone(),
                cache: cache.clone(),
                batch: Batch::new(0),
                obs: obs.clone(),
            };
            let files = opts.files.clone();
            let keys = opts.decrypt.clone();
            // The first worker shows the progress.
            let bar = bar.filter(|_| id == 0).cloned();
            std::thread::spawn(move || {
                let (unusable, damaged) =
                    read_files(&files, bar.as_ref(), keys.as_deref(), &mut worker);
                let mut engine = worker.engine;
                engine.finish();
                worker.obs.send_all(&mut engine);
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

/// The frames of one worker's shard in a block of records, and (how many
/// of those come before it, the frame) of each DNS frame of another shard:
/// its answers go to the shared name cache at that place, so that a
/// connection an answer names finds it whichever worker handles each, as
/// with one worker.
#[derive(Default)]
struct ShardLists {
    frames: Vec<FrameAt>,
    foreign_dns: Vec<(usize, FrameAt)>,
}

impl ShardLists {
    fn with_capacity(frames: usize) -> Self {
        ShardLists {
            frames: Vec::with_capacity(frames),
            foreign_dns: Vec::new(),
        }
    }

    /// Place a frame (at `at`) of shard `w` in every worker's lists.
    fn route(lists: &mut [ShardLists], w: usize, dns: bool, at: FrameAt) {
        if dns {
            for (v, l) in lists.iter_mut().enumerate() {
                if v != w {
                    l.foreign_dns.push((l.frames.len(), at));
                }
            }
        }
        if w == EVERY_WORKER {
            lists.iter_mut().for_each(|l| l.frames.push(at));
        } else if let Some(l) = lists.get_mut(w) {
            l.frames.push(at);
        }
    }
}

/// A block of records that one worker walked: where it is in which file,
/// and the lists of the workers that have not passed it yet.
struct Walked {
    file: usize,
    start: u64,
    len: usize,
    records: u64,
    lists: Vec<Option<ShardLists>>,
}

impl Walked {
    /// Frames and DNS places held in the lists not yet taken.
    fn entries(&self) -> usize {
        self.lists
            .iter()
            .flatten()
            .map(|l| l.frames.len() + l.foreign_dns.len())
            .sum()
    }
}

/// Blocks of records walked by one worker, for the others to read past:
/// the worker that reaches a block first walks it, sorts its frames into
/// shards and leaves the others' lists here; the others only take their
/// list. Whichever worker is ahead does the walking, which slows it until
/// another is ahead, so the walking shares itself out and no worker ever
/// waits for another. A worker that finds nothing walks the block itself.
/// Bounded in blocks and in list entries: the oldest blocks go first.
#[derive(Default)]
struct SharedWalks(std::sync::Mutex<std::collections::VecDeque<Walked>>);

/// Bytes of records in a block that one worker walks for all.
const WALK_BYTES: u64 = 256 * 1024;
/// Blocks kept for the workers behind.
const WALKS_KEPT: usize = 256;
/// List entries kept (16 bytes a frame, 24 a DNS place): a DNS flood read
/// by many workers puts every frame in every list.
const WALKED_ENTRIES_KEPT: usize = 1 << 20;

impl SharedWalks {
    /// Worker `worker`'s list of the block at `start` of `file`, with the
    /// block's length and number of records, if another worker walked it.
    fn take(&self, file: usize, start: u64, worker: usize) -> Option<(usize, u64, ShardLists)> {
        let mut q = self.0.lock().ok()?;
        let i = q.iter().position(|w| w.file == file && w.start == start)?;
        let w = q.get_mut(i)?;
        let (len, records) = (w.len, w.records);
        let mine = w.lists.get_mut(worker)?.take();
        if w.lists.iter().all(Option::is_none) {
            q.remove(i);
        }
        Some((len, records, mine?))
    }

    fn publish(&self, walked: Walked) {
        let Ok(mut q) = self.0.lock() else {
            return;
        };
        if q.iter()
            .any(|w| w.file == walked.file && w.start == walked.start)
        {
            return;
        }
        let mut held: usize = q.iter().map(Walked::entries).sum::<usize>() + walked.entries();
        while q.len() >= WALKS_KEPT || held > WALKED_ENTRIES_KEPT {
            let Some(old) = q.pop_front() else {
                break;
            };
            held -= old.entries();
        }
        q.push_back(walked);
    }
}

/// One of [`analyze_parallel`]'s workers.
struct ShardWorker {
    id: usize,
    /// Every worker's lists for the block being walked.
    lists: Vec<ShardLists>,
    walks: Arc<SharedWalks>,
    engine: Engine,
    detector: Arc<Detector>,
    cache: Arc<std::sync::Mutex<crate::detect::dns_cache::DnsCache>>,
    /// Frames of a file libpcap reads (a batch never spans files).
    batch: Batch,
    obs: ObservationSender,
}

impl ShardWorker {
    /// Feed this worker's frames of a block, storing the DNS answers of the
    /// other shards in the shared cache at their place among them.
    fn feed(&mut self, linktype: i32, block: &[u8], lists: &ShardLists) {
        let mut from = 0;
        for &(before, dns) in &lists.foreign_dns {
            if let Some(run) = lists.frames.get(from..before) {
                self.engine.process_batch(linktype, block, run);
            }
            from = before;
            if let Some((ts, frame)) = frame_at(block, &dns) {
                prime_foreign_dns(&self.detector, &self.cache, ts, linktype, frame);
            }
        }
        if let Some(run) = lists.frames.get(from..) {
            self.engine.process_batch(linktype, block, run);
        }
        self.obs.send_all(&mut self.engine);
    }
}

impl FrameSink for ShardWorker {
    /// The next block: read past with the list another worker left, or
    /// walked and sorted into shards here.
    fn records(
        &mut self,
        file: usize,
        src: &mut FileSource,
    ) -> Result<Option<usize>, CaptureError> {
        let linktype = src.linktype();
        let pos = src.position();
        if let Some((len, records, mine)) = self.walks.take(file, pos, self.id)
            // The file is shorter than when the other worker read it: walk.
            && let Some(block) = src.skip_records(len, records)?
        {
            self.feed(linktype, block, &mine);
            return Ok(Some(len));
        }
        // Blocks end at the first record on or past a multiple of
        // WALK_BYTES, where every worker's walk ends whatever its buffer
        // holds (unless its buffer ends first), so that all fall in step.
        let limit = usize::try_from(WALK_BYTES - pos % WALK_BYTES).unwrap_or(usize::MAX);
        let n = self.lists.len();
        let mut records = 0u64;
        let lists = &mut self.lists;
        let route = |ts, offset, frame: &[u8]| {
            let (w, dns) = shard(linktype, frame, n);
            ShardLists::route(lists, w, dns, (ts, offset, frame.len() as u32));
            records += 1;
            false
        };
        let block = src.next_frames(&mut Vec::new(), (usize::MAX, limit), route)?;
        if block.is_empty() {
            return Ok(None);
        }
        let len = block.len();
        let others = self
            .lists
            .iter_mut()
            .enumerate()
            .map(|(v, l)| {
                (v != self.id).then(|| {
                    let fresh = ShardLists::with_capacity(l.frames.len());
                    std::mem::replace(l, fresh)
                })
            })
            .collect();
        self.walks.publish(Walked {
            file,
            start: pos,
            len,
            records,
            lists: others,
        });
        // This worker's list, emptied after for the next block.
        let Some(mut mine) = self.lists.get_mut(self.id).map(std::mem::take) else {
            return Ok(Some(len));
        };
        self.feed(linktype, block, &mine);
        mine.frames.clear();
        mine.foreign_dns.clear();
        if let Some(l) = self.lists.get_mut(self.id) {
            *l = mine;
        }
        Ok(Some(len))
    }

    fn frame(&mut self, linktype: i32, ts: Micros, frame: &[u8]) {
        let (w, dns) = shard(linktype, frame, self.lists.len());
        if dns && w != self.id {
            prime_foreign_dns(&self.detector, &self.cache, ts, linktype, frame);
        }
        if w != self.id && w != EVERY_WORKER {
            return;
        }
        let (obs, engine) = (&self.obs, &mut self.engine);
        self.batch.add(linktype, ts, frame, |b| {
            run_batch(b, engine, |o| obs.send(o))
        });
    }

    fn file_end(&mut self) {
        let obs = &self.obs;
        run_batch(&mut self.batch, &mut self.engine, |o| obs.send(o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signatures::SignatureSet;
    use crate::signatures::allowlist::Allowlist;

    /// pcaps/demo.pcap `times` times over, each copy 100 s after the one
    /// before: a file of many blocks.
    fn long_capture(times: i64, name: &str) -> PathBuf {
        let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap");
        let mut src = FileSource::open(&demo).expect("demo capture");
        let mut frames = Vec::new();
        while let Ok(Some(f)) = src.next_frame() {
            frames.push((f.ts, f.data.to_vec()));
        }
        let mut out = Vec::new();
        for x in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for copy in 0..times {
            for (ts, data) in &frames {
                let ts = ts + copy * 100_000_000;
                let len = data.len() as u32;
                let (sec, usec) = ((ts / 1_000_000) as u32, (ts % 1_000_000) as u32);
                for x in [sec, usec, len, len] {
                    out.extend_from_slice(&x.to_le_bytes());
                }
                out.extend_from_slice(data);
            }
        }
        let path =
            std::env::temp_dir().join(format!("shadowmcp-{name}-{}.pcap", std::process::id()));
        std::fs::write(&path, out).expect("write capture");
        path
    }

    /// Worker `id` of two reading `files` alone: its packet count and its
    /// observations.
    fn run_worker(id: usize, walks: &Arc<SharedWalks>, files: &[PathBuf]) -> (u64, Vec<String>) {
        let sigs = SignatureSet::builtin().expect("built-in signatures");
        let detector = Arc::new(Detector::new(sigs, Allowlist::empty()));
        let cache = Arc::new(std::sync::Mutex::new(
            crate::detect::dns_cache::DnsCache::new(1024),
        ));
        let (tx, rx) = crossbeam_channel::unbounded();
        let obs = ObservationSender::new(tx, QueuePolicy::Block, Arc::default());
        let mut worker = ShardWorker {
            id,
            lists: (0..2).map(|_| ShardLists::default()).collect(),
            walks: walks.clone(),
            engine: Engine::with_dns_cache(
                EngineConfig::default().for_worker(id, 2),
                detector.clone(),
                cache.clone(),
            ),
            detector,
            cache,
            batch: Batch::new(0),
            obs,
        };
        let (unusable, damaged) = read_files(files, None, None, &mut worker);
        assert!(unusable.is_empty() && damaged.is_empty());
        worker.engine.finish();
        let packets = worker.engine.stats().packets;
        worker.obs.send_all(&mut worker.engine);
        drop(worker);
        (packets, rx.iter().map(|o| format!("{o:?}")).collect())
    }

    /// A worker that reads past the blocks another worker walked, with the
    /// lists that worker left, sees exactly what it sees walking them itself.
    #[test]
    fn reading_past_walked_blocks_is_walking_them() {
        let path = long_capture(12, "walked");
        let files = vec![path.clone()];
        let alone = run_worker(1, &Arc::new(SharedWalks::default()), &files);
        // Worker 0 walks the whole file first and leaves every block.
        let walks = Arc::new(SharedWalks::default());
        let first = run_worker(0, &walks, &files);
        let left = walks.0.lock().map(|q| q.len()).unwrap_or(0);
        let after = run_worker(1, &walks, &files);
        let remaining = walks.0.lock().map(|q| q.len()).unwrap_or(usize::MAX);
        let _ = std::fs::remove_file(&path);
        // Several blocks, all of them taken by worker 1.
        assert!(left >= 5, "{left} blocks");
        assert_eq!(remaining, 0);
        assert!(alone.0 > 1000 && !alone.1.is_empty());
        assert_eq!(after, alone);
        // The two workers split the packets.
        assert!(first.0 > 1000);
    }

    #[test]
    fn walked_blocks_are_taken_once_by_each_worker_and_bounded() {
        let walks = SharedWalks::default();
        let walked = |start, lists: usize| Walked {
            file: 0,
            start,
            len: 10,
            records: 1,
            lists: (0..lists)
                .map(|i| (i > 0).then(ShardLists::default))
                .collect(),
        };
        walks.publish(walked(100, 3));
        // The same block walked again by another worker is not kept twice.
        walks.publish(walked(100, 3));
        assert!(walks.take(0, 100, 0).is_none(), "the walker's own");
        assert!(walks.take(1, 100, 1).is_none(), "another file");
        assert_eq!(walks.take(0, 100, 1).map(|t| (t.0, t.1)), Some((10, 1)));
        assert!(walks.take(0, 100, 1).is_none(), "taken once");
        assert!(walks.take(0, 100, 2).is_some());
        assert_eq!(walks.0.lock().map(|q| q.len()).ok(), Some(0));
        for i in 0..WALKS_KEPT as u64 + 10 {
            walks.publish(walked(i * 10, 2));
        }
        assert_eq!(walks.0.lock().map(|q| q.len()).ok(), Some(WALKS_KEPT));
        assert!(walks.take(0, 0, 1).is_none(), "the oldest went first");
        assert!(walks.take(0, (WALKS_KEPT as u64 + 9) * 10, 1).is_some());
        // Three blocks of 400,000 frames each: the first goes.
        let big = |start| {
            let mut w = walked(start, 2);
            if let Some(Some(l)) = w.lists.get_mut(1) {
                l.frames = vec![(0, 0, 0); 400_000];
            }
            w
        };
        let walks = SharedWalks::default();
        for start in [1, 2, 3] {
            walks.publish(big(start));
        }
        assert!(walks.take(0, 1, 1).is_none(), "over the entries kept");
        assert!(walks.take(0, 2, 1).is_some() && walks.take(0, 3, 1).is_some());
    }
}
