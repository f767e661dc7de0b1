//! `shadowmcp run`: the live sensor.
//!
//! ```text
//! capture thread (one per interface) ──batches, sharded by a symmetric flow hash──► worker threads (Engine each)
//!        │ bounded queues: full = counted drop                                          │ observations
//!        ▼                                                                               ▼
//!   libpcap stats                                                      findings thread (LiveFindings) ──► sinks
//! tokio runtime: sinks, metrics server, signals (SIGHUP reload, SIGTERM/SIGINT flush and exit)
//! ```
//!
//! The per-packet path (capture → worker → engine) is synchronous; tokio only
//! hosts the I/O around it.

use crate::capture::FrameAt;
use crate::capture::live::{LiveOptions, LiveSource, LiveStats};
use crate::config::Config;
use crate::decode::{self, DecodeError, DecodedPacket, Transport as L4};
use crate::detect::dns_cache::DnsCache;
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig, FlowLookup};
use crate::findings::live::{LiveFindings, LiveSettings, Outcome};
use crate::findings::{Micros, Observation};
use crate::flow::{PROTO_TCP, PROTO_UDP};
use crate::metrics::{
    CaptureCounters, CaptureEvent, Counter32, Health, Metrics, PacketSampler, SinkCounters,
};
use crate::signatures::SignatureSet;
use crate::signatures::allowlist::Allowlist;
use crate::sinks::SinkSet;
use crate::stats::Stats;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Packets per batch handed from a capture thread to a worker.
const BATCH_PACKETS: usize = 256;
/// Bytes per batch (whichever fills first).
const BATCH_BYTES: usize = 512 * 1024;
/// Longest a partial batch waits for more frames while the capture is idle
/// (every partial batch is also handed over on each 500 ms report).
const IDLE_FLUSH: Duration = Duration::from_millis(10);
/// Frames between a flow's first prefetch stage and its processing (the
/// later stages follow at 4 and 2 frames ahead).
const AHEAD: usize = 6;
/// Ring of look-ahead hashes (more than `AHEAD`).
const RING: usize = 8;
/// How long sinks get to deliver pending findings at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Observations queued between the workers and the findings thread.
const OBSERVATION_QUEUE: usize = 65_536;
/// Reopening a failed capture: first wait, doubled after each failed
/// attempt up to the cap. The cap bounds how long the sensor stays blind
/// after the interface is back; an attempt is one failed open, cheap.
const REOPEN_FIRST_DELAY: Duration = Duration::from_millis(500);
const REOPEN_MAX_DELAY: Duration = Duration::from_secs(5);

/// A batch of frames from one interface, stored contiguously so that handing
/// it over costs one channel send, and recycled so that steady state does
/// not allocate.
pub(crate) struct Batch {
    linktype: i32,
    data: Vec<u8>,
    /// (timestamp, offset, length) per frame.
    frames: Vec<FrameAt>,
}

impl Batch {
    /// Feed every frame to an engine (see [`feed_frames`]).
    pub(crate) fn feed(&self, engine: &mut Engine) {
        feed_frames(self.linktype, &self.data, &self.frames, engine);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub(crate) fn linktype(&self) -> i32 {
        self.linktype
    }

    pub(crate) fn set_linktype(&mut self, linktype: i32) {
        self.linktype = linktype;
    }

    pub(crate) fn new(linktype: i32) -> Self {
        Self {
            linktype,
            data: Vec::with_capacity(BATCH_BYTES),
            frames: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    pub(crate) fn push(&mut self, ts: Micros, frame: &[u8]) {
        let off = self.data.len() as u32;
        self.data.extend_from_slice(frame);
        self.frames.push((ts, off, frame.len() as u32));
    }

    pub(crate) fn full(&self) -> bool {
        self.frames.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    pub(crate) fn clear(&mut self, linktype: i32) {
        self.linktype = linktype;
        self.data.clear();
        self.frames.clear();
    }
}

/// The frame that `(timestamp, offset, length)` places in `data`.
pub(crate) fn frame_at<'a>(
    data: &'a [u8],
    &(ts, off, len): &FrameAt,
) -> Option<(Micros, &'a [u8])> {
    let o = off as usize;
    Some((ts, data.get(o..o.saturating_add(len as usize))?))
}

/// Feed frames to an engine: `frames` holds (timestamp, offset, length) of
/// each within `data`. With many flows in flight each frame's flow look-up
/// is a chain of cache misses (index entry, slot, stream state); the frames
/// ahead are prefetched in stages so that those misses overlap with the work
/// on the current frame.
pub(crate) fn feed_frames<'a>(
    linktype: i32,
    data: &'a [u8],
    frames: &[FrameAt],
    engine: &mut Engine,
) {
    let frame = |i: usize| frame_at(data, frames.get(i)?);
    // Frames i .. i + AHEAD decoded once (for the prefetch and for the
    // engine), with their flow hashes, by position modulo RING.
    type Ahead<'a> = Option<(
        Micros,
        usize,
        Result<DecodedPacket<'a>, DecodeError>,
        Option<FlowLookup>,
    )>;
    let decode_at = |i: usize| -> Ahead<'a> {
        let (ts, frame) = frame(i)?;
        let d = decode::decode(linktype, frame);
        let h = d.as_ref().ok().and_then(FlowLookup::of);
        Some((ts, frame.len(), d, h))
    };
    let mut ring: [Ahead<'a>; RING] = [None; RING];
    // Decode frame `j` into its ring place and start its first prefetch stage.
    let admit = |ring: &mut [Ahead<'a>; RING], engine: &Engine, j: usize| {
        if let Some(r) = ring.get_mut(j % RING) {
            *r = decode_at(j);
            if let Some((_, _, _, Some(h))) = r {
                engine.prefetch_index(h);
            }
        }
    };
    for i in 0..AHEAD {
        admit(&mut ring, engine, i);
    }
    for i in 0..frames.len() {
        admit(&mut ring, engine, i + AHEAD);
        if let Some(Some((_, _, _, Some(h)))) = ring.get_mut((i + 4) % RING) {
            engine.prefetch_slot(h);
        }
        // The stream state only for a segment that uses it: data for the
        // parsers, or a FIN or RST that may end it (a pure ACK does not).
        if let Some(Some((_, _, d, Some(h)))) = ring.get((i + 2) % RING)
            && !is_pure_ack(d)
        {
            engine.prefetch_state(h);
        }
        if let Some(Some((ts, len, d, h))) = ring.get(i % RING) {
            engine.process_decoded(*ts, *len, d, h.as_ref());
        }
    }
}

/// A TCP segment without data, FIN or RST: the engine does not touch its
/// stream state.
fn is_pure_ack(d: &Result<DecodedPacket<'_>, DecodeError>) -> bool {
    matches!(d, Ok(p) if matches!(p.transport, L4::Tcp { flags, payload, .. }
        if payload.is_empty() && !flags.fin && !flags.rst && !flags.syn))
}

/// Counters and state shared by the sensor's threads, read by the metrics
/// endpoint and the final summary.
pub struct SensorState {
    /// Latest cumulative engine counters of each worker.
    pub workers: Mutex<Vec<Stats>>,
    /// Per interface: libpcap counters and packets dropped on full queues.
    pub interfaces: Mutex<Vec<InterfaceState>>,
    pub observations_dropped: AtomicU64,
    pub findings_emitted: AtomicU64,
    pub findings_suppressed: AtomicU64,
    pub reloads_ok: AtomicU64,
    pub reloads_failed: AtomicU64,
    /// Every capture handle is open.
    pub capturing: AtomicBool,
    /// Capture handles currently failed and being reopened.
    pub captures_down: AtomicUsize,
    pub metrics: Arc<Metrics>,
    /// Readiness: not ready while a capture is down.
    pub health: Arc<Health>,
}

#[derive(Debug, Clone, Default)]
pub struct InterfaceState {
    pub name: String,
    pub pcap: LiveStats,
    pub queue_dropped: u64,
    pub packets: u64,
    pub bytes: u64,
    pub reopen_failures: u64,
}

/// The detector in force; replaced atomically on reload. Threads check the
/// generation (one relaxed load per batch) and fetch the new one when it moved.
struct DetectorSlot {
    detector: RwLock<Arc<Detector>>,
    generation: AtomicU64,
}

impl DetectorSlot {
    fn current(&self) -> Arc<Detector> {
        match self.detector.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, d: Detector) {
        match self.detector.write() {
            Ok(mut g) => *g = Arc::new(d),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(d),
        }
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// Build the detector from the configured signature and allowlist files.
pub fn load_detector(cfg: &Config) -> Result<Detector, Vec<String>> {
    let sigs = match &cfg.detection.signatures {
        Some(dir) => SignatureSet::load_dir(dir),
        None => SignatureSet::builtin(),
    }
    .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let allow = match &cfg.detection.allowlist {
        Some(p) => Allowlist::load(p)
            .map_err(|errs| errs.iter().map(ToString::to_string).collect::<Vec<_>>())?,
        None => Allowlist::empty(),
    };
    Ok(Detector::new(sigs, allow))
}

fn engine_config(cfg: &Config, worker: usize) -> EngineConfig {
    let workers = cfg.capture.workers.max(1);
    EngineConfig {
        flow_id_base: (worker as u64) << 48,
        max_flows: (cfg.limits.max_flows / workers).max(1),
        flow_idle_timeout: i64::try_from(cfg.limits.flow_timeout_secs.saturating_mul(1_000_000))
            .unwrap_or(i64::MAX),
        flow_closed_timeout: i64::try_from(
            cfg.limits
                .closed_flow_timeout_secs
                .saturating_mul(1_000_000),
        )
        .unwrap_or(i64::MAX),
        dns_cache_size: cfg.limits.dns_cache_entries.max(1),
        // The stream cap and the buffer budget bound the sensor's memory:
        // each worker has its share.
        max_tcp_streams: (cfg.limits.max_tcp_streams / workers).max(1),
        max_buffered_bytes: (cfg.limits.tcp_buffer_mib.saturating_mul(1 << 20) / workers).max(1),
        ..EngineConfig::default()
    }
}

/// Worker index for a frame: the symmetric flow hash, so both directions of
/// a flow meet in the same engine. Frames that do not decode go to worker 0,
/// which counts them (a malformed frame that looks like plain TCP/UDP at the
/// fixed offsets may go to another worker: it is counted there, once).
/// Also says whether the frame is DNS: the capture thread stores its answers
/// in the shared name cache at once, before it reads the packets that follow,
/// so the connection the answer names finds it whatever its worker.
#[inline]
pub(crate) fn shard(linktype: i32, frame: &[u8], workers: usize) -> (usize, bool) {
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
    let Some(t) = flow.or_else(|| decoded_flow(linktype, frame)) else {
        return (0, false);
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
fn decoded_flow(linktype: i32, frame: &[u8]) -> Option<Tuple> {
    let p = decode::decode(linktype, frame).ok()?;
    let (sport, dport, proto) = match p.transport {
        L4::Tcp { sport, dport, .. } => (sport, dport, PROTO_TCP),
        L4::Udp { sport, dport, .. } => (sport, dport, PROTO_UDP),
        L4::Other { proto } => (0, 0, proto),
    };
    Some(Tuple {
        src: crate::flow::ip_number(p.src),
        sport,
        dst: crate::flow::ip_number(p.dst),
        dport,
        proto,
    })
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
    Some(RawIpv4 {
        src: u32::from_be_bytes([h[26], h[27], h[28], h[29]]),
        dst: u32::from_be_bytes([h[30], h[31], h[32], h[33]]),
        sport: u16::from_be_bytes([h[34], h[35]]),
        dport: u16::from_be_bytes([h[36], h[37]]),
        proto,
    })
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
    Some(Tuple {
        src,
        sport: be16(l4, 0)?,
        dst,
        dport: be16(l4, 2)?,
        proto,
    })
}

fn wall_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

struct CaptureThread {
    source: LiveSource,
    options: LiveOptions,
    index: usize,
    queues: Vec<Sender<Batch>>,
    free: Receiver<Batch>,
    state: Arc<SensorState>,
    stop: Arc<AtomicBool>,
    /// For storing DNS answers before handing them to a worker.
    slot: Arc<DetectorSlot>,
    dns_cache: Arc<Mutex<DnsCache>>,
    /// libpcap's 32-bit counters, widened.
    kernel_drops: Counter32,
    interface_drops: Counter32,
}

impl CaptureThread {
    fn run(mut self) {
        let n = self.queues.len();
        let mut lt = self.source.linktype();
        let mut pending: Vec<Batch> = (0..n).map(|_| Batch::new(lt)).collect();
        let mut last_report = Instant::now();
        let (mut packets, mut bytes, mut queue_dropped) = (0u64, 0u64, 0u64);
        // When the oldest frame not yet handed over was read.
        let mut oldest_pending: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            match self.source.next_frame() {
                Ok(Some(frame)) => {
                    packets += 1;
                    bytes += frame.data.len() as u64;
                    let (w, dns) = shard(lt, frame.data, n);
                    if dns {
                        // The answer reaches the shared cache before any later
                        // packet of the connection it names is read.
                        crate::engine::prime_dns_cache(
                            &self.slot.current(),
                            &self.dns_cache,
                            frame.ts,
                            lt,
                            frame.data,
                        );
                    }
                    if let Some(b) = pending.get_mut(w) {
                        b.push(frame.ts, frame.data);
                        if b.full() {
                            queue_dropped += self.hand_over(w, &mut pending, lt);
                        }
                    }
                    if oldest_pending.is_none() {
                        oldest_pending = Some(Instant::now());
                    }
                }
                Ok(None) => {
                    // The ring is empty for now. Hand partial batches over
                    // only once they have waited IDLE_FLUSH: on a link that
                    // is busy but not saturated the ring empties after almost
                    // every packet, and handing over one-frame batches fills
                    // the workers' queues (counted in batches) at a fraction
                    // of their speed.
                    if oldest_pending.is_some_and(|t| t.elapsed() >= IDLE_FLUSH) {
                        for w in 0..n {
                            queue_dropped += self.hand_over(w, &mut pending, lt);
                        }
                        oldest_pending = None;
                    }
                }
                Err(e) => {
                    // Frames read before the failure still reach the workers.
                    for w in 0..n {
                        queue_dropped += self.hand_over(w, &mut pending, lt);
                    }
                    self.report(packets, bytes, queue_dropped);
                    warn!(
                        interface = self.source.name(),
                        "capture lost: {e}; reopening with backoff"
                    );
                    self.capture_down(true);
                    if !self.reopen() {
                        break;
                    }
                    // A recreated interface may come back with another link
                    // type; its libpcap counters start from zero.
                    lt = self.source.linktype();
                    for b in &mut pending {
                        b.set_linktype(lt);
                    }
                    self.kernel_drops.restart();
                    self.interface_drops.restart();
                    self.capture_down(false);
                }
            }
            if last_report.elapsed() >= Duration::from_millis(500) {
                last_report = Instant::now();
                for w in 0..n {
                    queue_dropped += self.hand_over(w, &mut pending, lt);
                }
                oldest_pending = None;
                self.report(packets, bytes, queue_dropped);
            }
        }
        for w in 0..n {
            queue_dropped += self.hand_over(w, &mut pending, lt);
        }
        self.report(packets, bytes, queue_dropped);
    }

    /// Send worker `w`'s pending batch; a full queue drops it (counted).
    /// Returns the number of packets dropped.
    fn hand_over(&self, w: usize, pending: &mut [Batch], lt: i32) -> u64 {
        let Some(slot) = pending.get_mut(w) else {
            return 0;
        };
        if slot.frames.is_empty() {
            return 0;
        }
        let mut fresh = self.free.try_recv().unwrap_or_else(|_| Batch::new(lt));
        fresh.clear(lt);
        let batch = std::mem::replace(slot, fresh);
        let Some(q) = self.queues.get(w) else {
            return 0;
        };
        match q.try_send(batch) {
            Ok(()) => 0,
            Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => b.frames.len() as u64,
        }
    }

    /// Metrics and readiness for a capture going down (`true`) or back up.
    fn capture_down(&self, down: bool) {
        let st = &self.state;
        let now_down = if down {
            st.metrics
                .capture_event(self.source.name(), CaptureEvent::Failed);
            st.captures_down.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            st.metrics
                .capture_event(self.source.name(), CaptureEvent::Reopened);
            st.captures_down
                .fetch_sub(1, Ordering::Relaxed)
                .saturating_sub(1)
        };
        st.health.set_capture_open(now_down == 0);
    }

    /// Reopen the interface with backoff until it works or the sensor stops.
    /// Sleeps in short steps so that a stop request is seen promptly.
    fn reopen(&mut self) -> bool {
        let mut delay = REOPEN_FIRST_DELAY;
        let since = Instant::now();
        let mut attempts = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let wake = Instant::now() + delay;
            while Instant::now() < wake {
                if self.stop.load(Ordering::Relaxed) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            attempts += 1;
            match LiveSource::open(self.source.name(), &self.options) {
                Ok(s) => {
                    info!(
                        interface = s.name(),
                        attempts,
                        down_ms = since.elapsed().as_millis() as u64,
                        "capture reopened"
                    );
                    self.source = s;
                    return true;
                }
                Err(e) => {
                    if let Ok(mut ifs) = self.state.interfaces.lock()
                        && let Some(i) = ifs.get_mut(self.index)
                    {
                        i.reopen_failures += 1;
                    }
                    self.state
                        .metrics
                        .capture_event(self.source.name(), CaptureEvent::ReopenFailed);
                    delay = (delay * 2).min(REOPEN_MAX_DELAY);
                    // Logged on attempts 1, 2, 4, 8 …: an interface gone for
                    // a day does not flood the log; the counter is exact.
                    if attempts.is_power_of_two() {
                        warn!(
                            interface = self.source.name(),
                            attempts,
                            next_try_ms = delay.as_millis() as u64,
                            "capture still down: {e}"
                        );
                    }
                }
            }
        }
        false
    }

    fn report(&mut self, packets: u64, bytes: u64, queue_dropped: u64) {
        let pcap = self.source.stats();
        if let Some(p) = pcap {
            // libpcap reports u32 values in u64 fields; widen across wraps.
            self.kernel_drops.update(p.kernel_dropped as u32);
            self.interface_drops.update(p.interface_dropped as u32);
        }
        self.state.metrics.publish_capture_stats(
            self.source.name(),
            CaptureCounters {
                packets,
                bytes,
                kernel_drops: self.kernel_drops.total(),
                interface_drops: self.interface_drops.total(),
                queue_full_drops: queue_dropped,
            },
        );
        if let Ok(mut ifs) = self.state.interfaces.lock()
            && let Some(i) = ifs.get_mut(self.index)
        {
            i.packets = packets;
            i.bytes = bytes;
            i.queue_dropped = queue_dropped;
            if let Some(p) = pcap {
                i.pcap = p;
            }
        }
    }
}

/// One worker thread: an engine fed with batches from the capture threads.
struct Worker {
    id: usize,
    cfg: EngineConfig,
    slot: Arc<DetectorSlot>,
    input: Receiver<Batch>,
    free: Sender<Batch>,
    observations: Sender<Observation>,
    state: Arc<SensorState>,
    dns_cache: Arc<Mutex<DnsCache>>,
}

fn worker(w: Worker) {
    let Worker {
        id,
        cfg,
        slot,
        input,
        free,
        observations,
        state,
        dns_cache,
    } = w;
    let mut generation = slot.generation.load(Ordering::Acquire);
    let mut engine = Engine::with_dns_cache(cfg, slot.current(), dns_cache);
    let mut last_report = Instant::now();
    let mut sampler = PacketSampler::new(crate::metrics::PACKET_SAMPLE_EVERY);
    let forward = |engine: &mut Engine| {
        for o in engine.drain_observations() {
            if observations.try_send(o).is_err() {
                state.observations_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    loop {
        match input.recv_timeout(Duration::from_millis(500)) {
            Ok(batch) => {
                let g = slot.generation.load(Ordering::Acquire);
                if g != generation {
                    generation = g;
                    engine.set_detector(slot.current());
                }
                for &(ts, off, len) in &batch.frames {
                    let (o, l) = (off as usize, len as usize);
                    if let Some(frame) = batch.data.get(o..o.saturating_add(l)) {
                        if sampler.tick() {
                            let t = Instant::now();
                            engine.process_frame(ts, batch.linktype, frame);
                            state
                                .metrics
                                .observe_packet_seconds(t.elapsed().as_secs_f64());
                        } else {
                            engine.process_frame(ts, batch.linktype, frame);
                        }
                    }
                }
                forward(&mut engine);
                let _ = free.try_send(batch);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_report.elapsed() >= Duration::from_millis(500) {
            last_report = Instant::now();
            publish(&state, id, &engine);
        }
    }
    engine.finish();
    forward(&mut engine);
    publish(&state, id, &engine);
}

fn publish(state: &SensorState, id: usize, engine: &Engine) {
    let stats = engine.stats();
    state
        .metrics
        .publish_worker(id, stats, engine.active_flows());
    if let Some(s) = state
        .workers
        .lock()
        .ok()
        .as_mut()
        .and_then(|w| w.get_mut(id))
    {
        s.clone_from(stats);
    }
}

fn findings_loop(
    mut live: LiveFindings,
    slot: Arc<DetectorSlot>,
    input: Receiver<Observation>,
    sinks: Arc<SinkSet>,
    state: Arc<SensorState>,
) {
    let mut generation = slot.generation.load(Ordering::Acquire);
    let mut out = Vec::new();
    let mut last_tick = Instant::now();
    loop {
        let g = slot.generation.load(Ordering::Acquire);
        if g != generation {
            generation = g;
            live.set_detector(slot.current());
        }
        // Wake for the next held finding, or at least once a second.
        let wait = live
            .next_due()
            .map_or(1_000_000, |due| due.saturating_sub(wall_micros()))
            .clamp(1_000, 1_000_000);
        let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(1_000_000));
        let disconnected = match input.recv_timeout(wait) {
            Ok(o) => {
                live.observe(&o, &mut out);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let now = wall_micros();
        if disconnected {
            // Shutting down: held findings go out now.
            live.settle(now, true, &mut out);
        } else if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            live.tick(now, &mut out);
        } else {
            live.settle(now, false, &mut out);
        }
        for outcome in out.drain(..) {
            deliver(outcome, &sinks, &state);
        }
        if disconnected {
            break;
        }
    }
}

fn deliver(outcome: Outcome, sinks: &SinkSet, state: &SensorState) {
    match outcome {
        Outcome::Emit { record, assessment } => {
            state.findings_emitted.fetch_add(1, Ordering::Relaxed);
            info!(
                rule = assessment.rule.id,
                client = %record.client.ip,
                server = record.server.name.as_deref().unwrap_or("-"),
                confidence = ?assessment.confidence,
                "finding"
            );
            state.metrics.record_finding(&record);
            sinks.send_record(&record);
        }
        Outcome::Suppressed { rule } => {
            state.findings_suppressed.fetch_add(1, Ordering::Relaxed);
            state.metrics.finding_suppressed(rule.id);
        }
    }
}

/// Everything `run` needs that the command line resolved.
pub struct RunOptions {
    pub config: Config,
}

/// Run until SIGTERM/SIGINT. Errors before capture starts are returned (exit 2).
pub fn run(opts: RunOptions) -> Result<(), String> {
    let mut cfg = opts.config;
    if cfg.sinks.is_empty() {
        // Findings must go somewhere: JSON Lines on standard output.
        cfg.sinks
            .push(crate::sinks::SinkConfig::parse_cli("jsonl:-").map_err(|e| e.to_string())?);
    }
    if cfg.capture.interfaces.is_empty() {
        return Err("no interface to capture on (capture.interfaces or --interface)".into());
    }
    let detector = load_detector(&cfg).map_err(|e| e.join("\n"))?;
    info!(
        signatures = detector.signatures.version.as_str(),
        servers = detector.signatures.servers.len(),
        allowlist = detector.allowlist.len(),
        "signatures loaded"
    );
    let metrics = Arc::new(
        Metrics::with_build(
            env!("CARGO_PKG_VERSION"),
            option_env!("SHADOWMCP_GIT_COMMIT").unwrap_or("unknown"),
        )
        .map_err(|e| format!("metrics: {e}"))?,
    );
    metrics.signatures_loaded(
        &detector.signatures.version,
        detector.signatures.servers.len(),
    );
    let health = Arc::new(Health::new());
    let options = LiveOptions {
        snaplen: cfg.capture.snaplen,
        buffer_bytes: cfg.capture.buffer_size_mib.saturating_mul(1024 * 1024),
        promisc: cfg.capture.promisc,
        bpf: cfg.capture.bpf.clone(),
        read_timeout_ms: 100,
    };
    // Open every capture while still privileged; then drop privileges.
    let mut sources = Vec::new();
    for name in &cfg.capture.interfaces {
        sources.push(LiveSource::open(name, &options).map_err(|e| e.to_string())?);
    }
    // Keeping the capture capabilities lets a capture be reopened when its
    // interface is deleted and created again (a new packet socket).
    let keep = if cfg.privileges.keep_capture_caps {
        crate::privileges::capture_caps(cfg.capture.promisc)
    } else {
        Vec::new()
    };
    let dropped = crate::privileges::drop_privileges(
        cfg.privileges.user.as_deref(),
        cfg.privileges.group.as_deref(),
        &keep,
    )?;
    if dropped.uid == 0 {
        warn!(
            "running as root (every capability cleared but the capture ones); set privileges.user to run as an unprivileged user"
        );
    }
    info!(
        uid = dropped.uid,
        gid = dropped.gid,
        switched_user = dropped.switched_user,
        kept = ?dropped.kept,
        "capabilities cleared after opening the captures"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("shadowmcp-io")
        .build()
        .map_err(|e| format!("cannot start the I/O runtime: {e}"))?;
    let sinks = {
        let _guard = runtime.enter();
        Arc::new(SinkSet::start(&cfg.sinks).map_err(|e| format!("sinks: {e}"))?)
    };
    health.set_sinks_configured(!sinks.is_empty());
    let (metrics_stop_tx, metrics_stop_rx) = tokio::sync::oneshot::channel::<()>();
    if cfg.metrics.enabled {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(cfg.metrics.listen))
            .map_err(|e| format!("metrics listener {}: {e}", cfg.metrics.listen))?;
        info!(listen = %cfg.metrics.listen, "metrics on /metrics, /healthz, /readyz");
        let (m, h) = (metrics.clone(), health.clone());
        runtime.spawn(async move {
            let stop = async {
                let _ = metrics_stop_rx.await;
            };
            if let Err(e) = crate::metrics::serve_listener(listener, m, h, stop).await {
                error!("metrics server: {e}");
            }
        });
    }
    {
        // Sink counters for /metrics, once a second.
        // A weak reference: shutdown must be able to take the sinks back.
        let (m, sk) = (metrics.clone(), Arc::downgrade(&sinks));
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(sk) = sk.upgrade() else { break };
                for (name, st) in sk.stats() {
                    m.publish_sink(
                        &name,
                        SinkCounters {
                            delivered: st.delivered,
                            retries: st.retries,
                            failures: st.failures,
                            dropped: st.dropped,
                            queue_depth: st.queue_depth,
                            spool_bytes: st.spool_bytes,
                        },
                    );
                }
            }
        });
    }

    let workers = cfg.capture.workers.max(1);
    metrics.set_workers(workers);
    let state = Arc::new(SensorState {
        workers: Mutex::new(Vec::new()),
        interfaces: Mutex::new(Vec::new()),
        observations_dropped: AtomicU64::new(0),
        findings_emitted: AtomicU64::new(0),
        findings_suppressed: AtomicU64::new(0),
        reloads_ok: AtomicU64::new(0),
        reloads_failed: AtomicU64::new(0),
        capturing: AtomicBool::new(false),
        captures_down: AtomicUsize::new(0),
        metrics: metrics.clone(),
        health: health.clone(),
    });
    for s in &sources {
        metrics.capture_event(s.name(), CaptureEvent::Opened);
    }
    if let Ok(mut w) = state.workers.lock() {
        *w = vec![Stats::default(); workers];
    }
    if let Ok(mut ifs) = state.interfaces.lock() {
        *ifs = sources
            .iter()
            .map(|s| InterfaceState {
                name: s.name().to_owned(),
                ..Default::default()
            })
            .collect();
    }
    let slot = Arc::new(DetectorSlot {
        detector: RwLock::new(Arc::new(detector)),
        generation: AtomicU64::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));

    let (obs_tx, obs_rx) = bounded::<Observation>(OBSERVATION_QUEUE);
    let (free_tx, free_rx) = bounded::<Batch>(workers * cfg.capture.queue_batches);
    let mut queues = Vec::new();
    let mut worker_threads: Vec<JoinHandle<()>> = Vec::new();
    let dns_cache = Arc::new(Mutex::new(DnsCache::new(
        cfg.limits.dns_cache_entries.max(1),
    )));
    for id in 0..workers {
        let (tx, rx) = bounded::<Batch>(cfg.capture.queue_batches);
        queues.push(tx);
        let (ecfg, slot, free, obs, state, cache) = (
            engine_config(&cfg, id),
            slot.clone(),
            free_tx.clone(),
            obs_tx.clone(),
            state.clone(),
            dns_cache.clone(),
        );
        worker_threads.push(
            std::thread::Builder::new()
                .name(format!("shadowmcp-worker-{id}"))
                .spawn(move || {
                    worker(Worker {
                        id,
                        cfg: ecfg,
                        slot,
                        input: rx,
                        free,
                        observations: obs,
                        state,
                        dns_cache: cache,
                    })
                })
                .map_err(|e| format!("cannot start worker: {e}"))?,
        );
    }
    drop(obs_tx);
    let live = LiveFindings::new(
        slot.current(),
        LiveSettings {
            window: i64::try_from(
                cfg.findings
                    .suppression_window_secs
                    .saturating_mul(1_000_000),
            )
            .unwrap_or(i64::MAX),
            update_delay: i64::try_from(cfg.findings.update_delay_secs.saturating_mul(1_000_000))
                .unwrap_or(i64::MAX),
            max_entries: cfg.limits.max_findings,
            min_confidence: cfg.detection.min_confidence,
            report_sanctioned: cfg.detection.report_sanctioned,
            settle: i64::try_from(cfg.findings.settle_millis.saturating_mul(1_000))
                .unwrap_or(i64::MAX),
        },
    );
    let findings_thread = {
        let (slot, sinks, state) = (slot.clone(), sinks.clone(), state.clone());
        std::thread::Builder::new()
            .name("shadowmcp-findings".into())
            .spawn(move || findings_loop(live, slot, obs_rx, sinks, state))
            .map_err(|e| format!("cannot start the findings thread: {e}"))?
    };
    let mut capture_threads = Vec::new();
    for (index, source) in sources.into_iter().enumerate() {
        let t = CaptureThread {
            source,
            options: options.clone(),
            index,
            queues: queues.clone(),
            free: free_rx.clone(),
            state: state.clone(),
            stop: stop.clone(),
            slot: slot.clone(),
            dns_cache: dns_cache.clone(),
            kernel_drops: Counter32::default(),
            interface_drops: Counter32::default(),
        };
        capture_threads.push(
            std::thread::Builder::new()
                .name(format!("shadowmcp-capture-{index}"))
                .spawn(move || t.run())
                .map_err(|e| format!("cannot start capture: {e}"))?,
        );
    }
    drop(queues);
    state.capturing.store(true, Ordering::Relaxed);
    health.set_capture_open(true);
    info!(interfaces = ?cfg.capture.interfaces, workers, "capturing");

    // Signals: SIGHUP reloads; SIGTERM/SIGINT stop.
    let reload_cfg = cfg.clone();
    let reload_slot = slot.clone();
    let reload_state = state.clone();
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => match load_detector(&reload_cfg) {
                    Ok(d) => {
                        info!(signatures = d.signatures.version.as_str(), servers = d.signatures.servers.len(), allowlist = d.allowlist.len(), "reloaded");
                        reload_state.metrics.signatures_loaded(&d.signatures.version, d.signatures.servers.len());
                        reload_state.metrics.reload(true);
                        reload_slot.replace(d);
                        reload_state.reloads_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(errors) => {
                        for e in errors {
                            error!("reload failed, keeping the previous set: {e}");
                        }
                        reload_state.metrics.reload(false);
                        reload_state.reloads_failed.fetch_add(1, Ordering::Relaxed);
                    }
                },
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
    });

    info!("stopping: draining workers and flushing sinks");
    health.set_shutting_down();
    stop.store(true, Ordering::Relaxed);
    for t in capture_threads {
        let _ = t.join();
    }
    for t in worker_threads {
        let _ = t.join();
    }
    let _ = findings_thread.join();
    state.capturing.store(false, Ordering::Relaxed);
    health.set_capture_open(false);
    // The metrics task holds the sinks for a moment each second: retry.
    let mut sinks = sinks;
    for _ in 0..50 {
        match Arc::try_unwrap(sinks) {
            Ok(set) => {
                for (name, s) in runtime.block_on(set.flush_and_close(FLUSH_TIMEOUT)) {
                    info!(
                        sink = name.as_str(),
                        delivered = s.delivered,
                        dropped = s.dropped,
                        "sink closed"
                    );
                }
                break;
            }
            Err(shared) => {
                sinks = shared;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    if let Ok(ifs) = state.interfaces.lock() {
        for i in ifs.iter() {
            info!(
                interface = i.name.as_str(),
                packets = i.packets,
                kernel_dropped = i.pcap.kernel_dropped,
                interface_dropped = i.pcap.interface_dropped,
                queue_dropped = i.queue_dropped,
                "capture totals"
            );
        }
    }
    let mut total = Stats::default();
    if let Ok(w) = state.workers.lock() {
        w.iter().for_each(|s| total.merge(s));
    }
    let _ = metrics_stop_tx.send(());
    info!(
        packets = total.packets,
        flows = total.flows_created,
        http_requests = total.http_requests,
        tls_hellos = total.tls_client_hellos,
        dns = total.dns_messages,
        mcp_sessions = total.mcp_sessions_confirmed,
        findings = state.findings_emitted.load(Ordering::Relaxed),
        suppressed = state.findings_suppressed.load(Ordering::Relaxed),
        "stopped"
    );
    Ok(())
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
    fn workers_split_the_sensor_wide_bounds() {
        let mut cfg = crate::config::Config::default();
        cfg.capture.workers = 4;
        cfg.limits.max_flows = 1_000;
        cfg.limits.max_tcp_streams = 400;
        cfg.limits.tcp_buffer_mib = 8;
        let e = super::engine_config(&cfg, 3);
        assert_eq!(e.flow_id_base, 3 << 48);
        assert_eq!((e.max_flows, e.max_tcp_streams), (250, 100));
        assert_eq!(e.max_buffered_bytes, 2 << 20);
    }

    #[test]
    fn only_segments_without_data_fin_rst_or_syn_are_pure_acks() {
        use super::is_pure_ack;
        use crate::decode::decode;
        let tcp = |flags: &str, data: &[u8]| {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 80, 7, 1024)
                .ack(1);
            let b = match flags {
                "F" => b.fin(),
                "R" => b.rst(),
                "S" => b.syn(),
                _ => b,
            };
            let mut out = Vec::new();
            b.write(&mut out, data).expect("frame");
            out
        };
        let pure = |f: &[u8]| is_pure_ack(&decode(linktype::ETHERNET, f));
        assert!(pure(&tcp("", b"")));
        assert!(!pure(&tcp("", b"x")));
        for flag in ["F", "R", "S"] {
            assert!(!pure(&tcp(flag, b"")), "{flag}");
        }
        assert!(!pure(&plain_frame(false, true, b"")));
    }

    #[test]
    fn raw_flow_reads_plain_frames_and_leaves_the_rest() {
        for v6 in [false, true] {
            for udp in [false, true] {
                let f = plain_frame(v6, udp, b"abc");
                let raw = raw_flow(&f).expect("plain frame read at fixed offsets");
                assert_eq!(Some(raw), decoded_flow(linktype::ETHERNET, &f));
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
        assert!(decoded_flow(linktype::ETHERNET, &tagged).is_some());
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
            if let (Some(raw), Some(decoded)) = (raw_flow(&f), decoded_flow(linktype::ETHERNET, &f)) {
                proptest::prop_assert_eq!(raw, decoded);
            }
        }
    }
}
