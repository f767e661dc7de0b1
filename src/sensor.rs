//! `shadowmcp run`: the live sensor.
//!
//! ```text
//! capture thread (one per interface) ─► pipeline: Dispatcher ─► worker threads (Engine each)
//! key log follower (one per key log) ─► key table shared by the engines (TLS decryption)
//!        │ drop-newest queues: full = counted drop                  │ observations
//!        ▼                                                           ▼
//!   libpcap stats                                   findings thread (LiveFindings) ─► sinks
//! tokio runtime: sinks, metrics server, signals (SIGHUP reload, SIGTERM/SIGINT flush and exit)
//! ```
//!
//! With one worker and one interface there is no worker thread: the capture
//! thread runs the engine on each batch itself (`Dispatcher::inline`).
//!
//! This module wires live interfaces to the pipeline (`crate::pipeline`,
//! the same workers and engine batch path `analyze` runs) and the pipeline
//! to the findings layer and the sinks. The per-packet path is synchronous;
//! tokio only hosts the I/O around it.

use crate::capture::CaptureError;
use crate::capture::live::{Interface, LiveOptions, LiveStats};
use crate::config::Config;
use crate::detect::dns_cache::DnsCache;
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig};
use crate::findings::aggregate::Assessment;
use crate::findings::live::{LiveFindings, LiveSettings, Outcome};
use crate::findings::output::FindingRecord;
use crate::findings::{Micros, Observation};
use crate::metrics::{
    CaptureCounters, CaptureEvent, Counter32, DecryptCounters, Health, Metrics, SinkCounters,
};
use crate::pipeline::{
    self, DetectorSlot, DetectorView, Dispatcher, Monitor, ObservationSender, QueuePolicy,
    WorkerLoop, Workers,
};
use crate::sinks::SinkSet;
use crate::stats::Stats;
use crate::tls_decrypt::{DecryptContext, FollowerHandle, KeyLogFollower, KeyTable};
use crossbeam_channel::{Receiver, TryRecvError, bounded};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Longest a partial batch waits for more frames while the capture is idle
/// (every partial batch is also handed over on each 500 ms report).
const IDLE_FLUSH: Duration = Duration::from_millis(10);
/// How long sinks get to deliver pending findings at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Observations queued between the workers and the findings thread.
const OBSERVATION_QUEUE: usize = 65_536;
/// Longest the findings thread sleeps between two rounds of draining the
/// observation queue (findings are held for `settle_millis` anyway).
const FINDINGS_POLL: Duration = Duration::from_millis(20);
/// Reopening a failed capture: first wait, doubled after each failed
/// attempt up to the cap. The cap bounds how long the sensor stays blind
/// after the interface is back; an attempt is one failed open, cheap.
const REOPEN_FIRST_DELAY: Duration = Duration::from_millis(500);
const REOPEN_MAX_DELAY: Duration = Duration::from_secs(5);

/// Why the sensor could not start (nothing is captured yet; exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("no interface to capture on (capture.interfaces or --interface)")]
    NoInterface,
    #[error(transparent)]
    Signatures(#[from] crate::detect::hosts::LoadErrors),
    #[error("sink: {0}")]
    Sink(String),
    #[error("metrics: {0}")]
    Metrics(String),
    #[error("metrics listener {addr}: {source}")]
    MetricsListen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error(transparent)]
    Privileges(#[from] crate::privileges::PrivilegeError),
    #[error("cannot start the {what}: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Counters and state shared by the sensor's threads, read by the metrics
/// endpoint and the final summary.
pub struct SensorState {
    /// Latest cumulative engine counters of each worker.
    pub workers: Mutex<Vec<Stats>>,
    /// Per interface: libpcap counters and packets dropped on full queues.
    pub interfaces: Mutex<Vec<InterfaceState>>,
    pub observations_dropped: Arc<AtomicU64>,
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

fn wall_micros() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

struct CaptureThread {
    source: Interface,
    options: LiveOptions,
    index: usize,
    /// Into the workers' queues; a full queue drops the batch (counted).
    dispatch: Dispatcher,
    state: Arc<SensorState>,
    stop: Arc<AtomicBool>,
    /// libpcap's 32-bit counters, widened.
    kernel_drops: Counter32,
    interface_drops: Counter32,
}

impl CaptureThread {
    fn run(mut self) {
        let mut lt = self.source.linktype();
        let mut last_report = Instant::now();
        let (mut packets, mut bytes) = (0u64, 0u64);
        // When the oldest frame not yet handed over was read.
        let mut oldest_pending: Option<Instant> = None;
        while !self.stop.load(Ordering::Relaxed) {
            let dispatch = &mut self.dispatch;
            let read = self.source.read(|data, frames, in_place| {
                packets += frames.len() as u64;
                bytes += frames
                    .iter()
                    .map(|&(_, _, len)| u64::from(len))
                    .sum::<u64>();
                dispatch.push_frames(lt, data, frames, in_place);
            });
            match read {
                Ok(1..) => {
                    if oldest_pending.is_none() {
                        oldest_pending = Some(Instant::now());
                    }
                }
                Ok(0) => {
                    self.dispatch.idle();
                    // The ring is empty for now. Hand partial batches over
                    // only once they have waited IDLE_FLUSH: on a link that
                    // is busy but not saturated the ring empties after almost
                    // every packet, and handing over one-frame batches fills
                    // the workers' queues (counted in batches) at a fraction
                    // of their speed.
                    if oldest_pending.is_some_and(|t| t.elapsed() >= IDLE_FLUSH) {
                        self.dispatch.flush();
                        oldest_pending = None;
                    }
                }
                Err(e) => {
                    // Frames read before the failure still reach the workers.
                    self.dispatch.flush();
                    self.report(packets, bytes);
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
                    self.kernel_drops.restart();
                    self.interface_drops.restart();
                    self.capture_down(false);
                }
            }
            if last_report.elapsed() >= Duration::from_millis(500) {
                last_report = Instant::now();
                self.dispatch.flush();
                oldest_pending = None;
                self.report(packets, bytes);
            }
        }
        self.dispatch.flush();
        self.report(packets, bytes);
        // Inline: the engine's flows end here, their findings go out.
        self.dispatch.finish();
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
            match Interface::open(self.source.name(), &self.options) {
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

    fn report(&mut self, packets: u64, bytes: u64) {
        let queue_dropped = self.dispatch.dropped();
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

/// A worker's counters, published for /metrics and the final summary, and
/// its batches' time per packet.
struct LiveMonitor {
    id: usize,
    state: Arc<SensorState>,
}

impl Monitor for LiveMonitor {
    fn report(&mut self, engine: &Engine) {
        let stats = engine.stats();
        self.state
            .metrics
            .publish_worker(self.id, stats, engine.active_flows());
        if let Ok(mut w) = self.state.workers.lock()
            && let Some(s) = w.get_mut(self.id)
        {
            s.clone_from(stats);
        }
    }

    /// Live packet times are wall-clock times.
    fn clock(&self) -> Option<Micros> {
        Some(wall_micros())
    }

    fn batch_done(&mut self, frames: usize, seconds: f64) {
        if frames > 0 {
            self.state
                .metrics
                .observe_packet_seconds(seconds / frames as f64);
        }
    }
}

/// The findings thread: observations in, findings (held, suppressed,
/// updated by `LiveFindings`) out to the sinks.
fn findings_loop(
    mut live: LiveFindings,
    mut detector: DetectorView,
    input: Receiver<Observation>,
    sinks: Arc<SinkSet>,
    state: Arc<SensorState>,
) {
    let mut out = Vec::new();
    let mut last_tick = Instant::now();
    loop {
        if let Some(d) = detector.changed() {
            live.set_detector(d);
        }
        // Everything queued since the last round. The thread sleeps between
        // rounds rather than waiting on the queue, so a worker's send never
        // has to wake it (a system call per observation on the packet path).
        let mut disconnected = false;
        loop {
            match input.try_recv() {
                Ok(o) => live.observe(&o, &mut out),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
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
        // Until the next held finding is due, at most FINDINGS_POLL.
        let wait = live
            .next_due()
            .map_or(i64::MAX, |due| due.saturating_sub(wall_micros()))
            .clamp(1_000, FINDINGS_POLL.as_micros() as i64);
        std::thread::sleep(Duration::from_micros(u64::try_from(wait).unwrap_or(1_000)));
    }
}

fn deliver(outcome: Outcome, sinks: &SinkSet, state: &SensorState) {
    match outcome {
        Outcome::Emit { record, assessment } => {
            state.findings_emitted.fetch_add(1, Ordering::Relaxed);
            log_finding(&record, &assessment);
            state.metrics.record_finding(&record);
            sinks.send_record(&record);
        }
        Outcome::Suppressed { rule } => {
            state.findings_suppressed.fetch_add(1, Ordering::Relaxed);
            state.metrics.finding_suppressed(rule.id);
        }
    }
}

/// One log line per finding reported: enums spelled as in the JSON
/// (`confidence=high`), the server by name or, when only its address is
/// known, by address (`[::1]:8768`).
fn log_finding(record: &FindingRecord, assessment: &Assessment) {
    info!(
        rule = assessment.rule.id,
        verdict = %assessment.verdict,
        confidence = %assessment.confidence,
        client = %record.client.ip,
        server = %crate::findings::output::server_label(record),
        "finding"
    );
}

/// Everything `run` needs that the command line resolved.
pub struct RunOptions {
    pub config: Config,
}

/// How a sensor that ran ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Findings the sinks gave up on over the run, the final flush
    /// included (the sum of `shadowmcp_sink_dropped_total`): a finding
    /// that reached no destination through one of them. Spooled findings
    /// are not lost.
    pub findings_lost: u64,
}

/// Run until SIGTERM/SIGINT. Errors before capture starts are returned
/// (exit 2).
pub fn run(opts: RunOptions) -> Result<Stopped, SensorError> {
    let sensor = Sensor::start(opts.config)?;
    sensor.wait_for_signals();
    Ok(sensor.shutdown())
}

/// A running sensor: its threads and the I/O runtime around them.
struct Sensor {
    cfg: Config,
    runtime: tokio::runtime::Runtime,
    state: Arc<SensorState>,
    slot: Arc<DetectorSlot>,
    stop: Arc<AtomicBool>,
    captures: Vec<JoinHandle<()>>,
    workers: Workers,
    findings: JoinHandle<()>,
    sinks: Arc<SinkSet>,
    metrics_stop: tokio::sync::oneshot::Sender<()>,
    /// TLS decryption from followed key logs, when configured.
    decryption: Option<Decryption>,
}

/// Session keys followed live: the context every worker's engine shares
/// and one polling thread per key log.
struct Decryption {
    ctx: Arc<DecryptContext>,
    followers: Vec<FollowerHandle>,
}

/// Bytes of a key log read per poll (a busy client writes a few hundred
/// bytes per connection).
const KEYLOG_BYTES_PER_POLL: usize = 4 << 20;

impl Decryption {
    /// Follow `cfg.decryption.keylogs` (after privileges are dropped: the
    /// files are read as the sensor's user, as they will be when rotated).
    fn start(cfg: &Config) -> Result<Option<Decryption>, SensorError> {
        let d = &cfg.decryption;
        if d.keylogs.is_empty() {
            return Ok(None);
        }
        let table = Arc::new(KeyTable::new(d.max_session_keys));
        let ctx = Arc::new(DecryptContext::new(
            table.clone(),
            d.limits(),
            d.hold_budget_bytes(),
        ));
        let interval = Duration::from_millis(d.poll_millis);
        let mut followers = Vec::new();
        for path in &d.keylogs {
            let f = KeyLogFollower::new(path, table.clone(), KEYLOG_BYTES_PER_POLL);
            followers.push(f.spawn(interval).map_err(|source| SensorError::Thread {
                what: "key log follower",
                source,
            })?);
            info!(path = %path.display(), poll_ms = d.poll_millis, "following TLS key log");
        }
        Ok(Some(Decryption { ctx, followers }))
    }

    fn counters(&self) -> DecryptCounters {
        DecryptCounters {
            stats: self.ctx.counters.snapshot(),
            keys: self.ctx.table.stats(),
            held_bytes: self.ctx.budget.used() as u64,
        }
    }
}

impl Sensor {
    /// Build the topology and start it: captures opened (while still
    /// privileged), privileges dropped, sinks and metrics up, then the
    /// findings thread, the workers and one capture thread per interface.
    fn start(mut cfg: Config) -> Result<Sensor, SensorError> {
        if cfg.sinks.is_empty() {
            // Findings must go somewhere: JSON Lines on standard output.
            cfg.sinks.push(
                crate::sinks::SinkConfig::parse_cli("jsonl:-")
                    .map_err(|e| SensorError::Sink(e.to_string()))?,
            );
        }
        if cfg.capture.interfaces.is_empty() {
            return Err(SensorError::NoInterface);
        }
        let detector = Detector::load(&cfg.detection)?;
        for n in &detector.allowlist.notes {
            info!("{n}");
        }
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
            .map_err(|e| SensorError::Metrics(e.to_string()))?,
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
            sources.push(Interface::open(name, &options)?);
        }
        drop_privileges(&cfg)?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("shadowmcp-io")
            .build()
            .map_err(|source| SensorError::Thread {
                what: "I/O runtime",
                source,
            })?;
        let sinks = {
            let _guard = runtime.enter();
            Arc::new(SinkSet::start(&cfg.sinks).map_err(|e| SensorError::Sink(e.to_string()))?)
        };
        health.set_sinks_configured(!sinks.is_empty());
        let decryption = Decryption::start(&cfg)?;
        let metrics_stop = serve_metrics(
            &runtime,
            &cfg,
            &metrics,
            &health,
            &sinks,
            decryption.as_ref().map(|d| d.ctx.clone()),
        )?;

        let workers = cfg.capture.workers.max(1);
        metrics.set_workers(workers);
        let state = Arc::new(SensorState {
            workers: Mutex::new(vec![Stats::default(); workers]),
            interfaces: Mutex::new(
                sources
                    .iter()
                    .map(|s| InterfaceState {
                        name: s.name().to_owned(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            observations_dropped: Arc::new(AtomicU64::new(0)),
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
        let detector = Arc::new(detector);
        let slot = Arc::new(DetectorSlot::new(detector.clone()));
        let stop = Arc::new(AtomicBool::new(false));

        // Workers → findings thread → sinks.
        let (obs_tx, obs_rx) = bounded::<Observation>(OBSERVATION_QUEUE);
        let findings = {
            let observer = crate::findings::Observer::new(cfg.sensor.name.as_deref())
                .with_interfaces(&cfg.capture.interfaces);
            let live =
                LiveFindings::new(detector.clone(), live_settings(&cfg)).with_observer(observer);
            let (view, sinks, state) = (
                DetectorView::new(slot.clone()),
                sinks.clone(),
                state.clone(),
            );
            std::thread::Builder::new()
                .name("shadowmcp-findings".into())
                .spawn(move || findings_loop(live, view, obs_rx, sinks, state))
                .map_err(|source| SensorError::Thread {
                    what: "findings thread",
                    source,
                })?
        };
        let out = ObservationSender::new(
            obs_tx,
            QueuePolicy::DropNewest,
            state.observations_dropped.clone(),
        );
        let dns_cache = Arc::new(Mutex::new(DnsCache::new(
            cfg.limits.dns_cache_entries.max(1),
        )));
        let mut engines =
            pipeline::engines(&EngineConfig::from(&cfg), workers, &detector, &dns_cache);
        // Live, a discovery answer and the connection it names usually land
        // on different workers: one table of discovered hosts for all.
        let discovered = Arc::new(Mutex::new(
            crate::detect::discovery::DiscoveredHosts::default(),
        ));
        for e in &mut engines {
            e.share_discovered_hosts(discovered.clone());
            if let Some(d) = &decryption {
                e.set_decryption(d.ctx.clone());
            }
        }
        // One worker and one interface: the capture thread is the worker.
        let mut inline = None;
        if sources.len() == 1
            && engines.len() == 1
            && let Some(engine) = engines.pop()
        {
            let monitor = LiveMonitor {
                id: 0,
                state: state.clone(),
            };
            let view = DetectorView::new(slot.clone());
            let work = WorkerLoop::new(engine, view, out.clone(), Box::new(monitor));
            let view = DetectorView::new(slot.clone());
            inline = Some(Dispatcher::inline(work, view, dns_cache.clone()));
        }
        let pool = Workers::start(engines, cfg.capture.queue_batches, &slot, &out, |id| {
            LiveMonitor {
                id,
                state: state.clone(),
            }
        })
        .map_err(|source| SensorError::Thread {
            what: "workers",
            source,
        })?;
        drop(out);

        // Capture threads → workers.
        let mut captures = Vec::new();
        for (index, source) in sources.into_iter().enumerate() {
            let t = CaptureThread {
                source,
                options: options.clone(),
                index,
                dispatch: match inline.take() {
                    Some(d) => d,
                    None => pool.dispatcher(QueuePolicy::DropNewest, &slot, &dns_cache),
                },
                state: state.clone(),
                stop: stop.clone(),
                kernel_drops: Counter32::default(),
                interface_drops: Counter32::default(),
            };
            captures.push(
                std::thread::Builder::new()
                    .name(format!("shadowmcp-capture-{index}"))
                    .spawn(move || t.run())
                    .map_err(|source| SensorError::Thread {
                        what: "capture thread",
                        source,
                    })?,
            );
        }
        state.capturing.store(true, Ordering::Relaxed);
        health.set_capture_open(true);
        info!(interfaces = ?cfg.capture.interfaces, workers, "capturing");
        Ok(Sensor {
            cfg,
            runtime,
            state,
            slot,
            stop,
            captures,
            workers: pool,
            findings,
            sinks,
            metrics_stop,
            decryption,
        })
    }

    /// Until SIGTERM or SIGINT; SIGHUP reloads signatures and allowlist (a
    /// broken file keeps the previous set).
    fn wait_for_signals(&self) {
        let (cfg, slot, state) = (&self.cfg, &self.slot, &self.state);
        self.runtime.block_on(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::hangup()),
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                error!("cannot install signal handlers");
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => reload(cfg, slot, state),
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                }
            }
        });
    }

    /// Stop capturing, let the workers drain and finish their flows, flush
    /// the findings and every sink, log the totals.
    fn shutdown(self) -> Stopped {
        let Sensor {
            runtime,
            state,
            stop,
            captures,
            workers,
            findings,
            sinks,
            metrics_stop,
            decryption,
            ..
        } = self;
        info!("stopping: draining workers and flushing sinks");
        state.health.set_shutting_down();
        stop.store(true, Ordering::Relaxed);
        for t in captures {
            let _ = t.join();
        }
        drop(workers.finish());
        if let Some(mut d) = decryption {
            // Keys that came up to here were used by the workers' last look.
            d.followers.iter_mut().for_each(FollowerHandle::stop);
            let c = d.counters();
            state.metrics.publish_decryption(c);
            info!(
                flows_with_keys = c.stats.flows_with_keys,
                decrypted = c.stats.flows_decrypted,
                missing_keys = c.stats.flows_missing_keys,
                auth_failures = c.stats.auth_failures,
                unsupported = c.stats.unsupported,
                records_held = c.stats.records_held,
                records_dropped = c.stats.records_dropped,
                keys = c.keys.entries,
                malformed_lines = c.keys.malformed_lines,
                "tls decryption totals"
            );
        }
        let _ = findings.join();
        state.capturing.store(false, Ordering::Relaxed);
        state.health.set_capture_open(false);
        // The metrics task holds the sinks for a moment each second: retry.
        let mut sinks = sinks;
        let mut findings_lost = 0;
        for attempt in 0..50 {
            match Arc::try_unwrap(sinks) {
                Ok(set) => {
                    for (name, s) in runtime.block_on(set.flush_and_close(FLUSH_TIMEOUT)) {
                        findings_lost += s.dropped;
                        info!(
                            sink = name.as_str(),
                            delivered = s.delivered,
                            dropped = s.dropped,
                            "sink closed"
                        );
                    }
                    break;
                }
                Err(shared) if attempt < 49 => {
                    sinks = shared;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(shared) => {
                    // Not flushed: whatever is still queued is lost.
                    for (name, s) in shared.stats() {
                        let lost = s.dropped + s.queue_depth;
                        findings_lost += lost;
                        error!(sink = name.as_str(), lost, "sink not flushed at shutdown");
                    }
                    break;
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
        let _ = metrics_stop.send(());
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
        Stopped { findings_lost }
    }
}

/// SIGHUP: load signatures and allowlist again; a broken file keeps the
/// previous set.
fn reload(cfg: &Config, slot: &DetectorSlot, state: &SensorState) {
    match Detector::load(&cfg.detection) {
        Ok(d) => {
            info!(
                signatures = d.signatures.version.as_str(),
                servers = d.signatures.servers.len(),
                allowlist = d.allowlist.len(),
                "reloaded"
            );
            state
                .metrics
                .signatures_loaded(&d.signatures.version, d.signatures.servers.len());
            state.metrics.reload(true);
            slot.replace(d);
            state.reloads_ok.fetch_add(1, Ordering::Relaxed);
        }
        Err(errors) => {
            for e in errors.0 {
                error!("reload failed, keeping the previous set: {e}");
            }
            state.metrics.reload(false);
            state.reloads_failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Open the captures first, then this: switch to the configured user and
/// clear every capability but the capture ones (kept, unless configured
/// otherwise, to reopen a capture whose interface was recreated).
fn drop_privileges(cfg: &Config) -> Result<(), SensorError> {
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
    Ok(())
}

/// The metrics server (when enabled) and the once-a-second sink counters
/// it shows; returns what stops the server.
fn serve_metrics(
    runtime: &tokio::runtime::Runtime,
    cfg: &Config,
    metrics: &Arc<Metrics>,
    health: &Arc<Health>,
    sinks: &Arc<SinkSet>,
    decrypt: Option<Arc<DecryptContext>>,
) -> Result<tokio::sync::oneshot::Sender<()>, SensorError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    if cfg.metrics.enabled {
        let addr = cfg.metrics.listen;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| SensorError::MetricsListen { addr, source })?;
        info!(listen = %addr, "metrics on /metrics, /healthz, /readyz");
        let (m, h) = (metrics.clone(), health.clone());
        runtime.spawn(async move {
            let stop = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = crate::metrics::serve_listener(listener, m, h, stop).await {
                error!("metrics server: {e}");
            }
        });
    }
    // A weak reference: shutdown must be able to take the sinks back.
    let (m, sk) = (metrics.clone(), Arc::downgrade(sinks));
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Some(d) = &decrypt {
                m.publish_decryption(DecryptCounters {
                    stats: d.counters.snapshot(),
                    keys: d.table.stats(),
                    held_bytes: d.budget.used() as u64,
                });
            }
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
    Ok(stop_tx)
}

/// The findings layer's settings from the configuration.
fn live_settings(cfg: &Config) -> LiveSettings {
    let micros = |secs: u64| i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    LiveSettings {
        window: micros(cfg.findings.suppression_window_secs),
        update_delay: micros(cfg.findings.update_delay_secs),
        max_entries: cfg.limits.max_findings,
        min_confidence: cfg.detection.min_confidence,
        report_sanctioned: cfg.detection.report_sanctioned,
        settle: i64::try_from(cfg.findings.settle_millis.saturating_mul(1_000)).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::aggregate::{Confidence, Severity, Verdict, rules};

    /// A writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(json: bool, record: &FindingRecord, a: &Assessment) -> String {
        let out = Captured::default();
        let w = out.clone();
        let b = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || w.clone());
        if json {
            tracing::subscriber::with_default(b.json().finish(), || log_finding(record, a));
        } else {
            tracing::subscriber::with_default(b.finish(), || log_finding(record, a));
        }
        let text = out.0.lock().map(|v| v.clone()).unwrap_or_default();
        String::from_utf8_lossy(&text).into_owned()
    }

    /// The finding log line spells enums as the JSON does and names a
    /// server known only by its address by that address, IPv6 bracketed.
    #[test]
    fn finding_log_line_is_lowercase_and_names_address_only_servers() {
        let record: FindingRecord = serde_json::from_value(serde_json::json!({
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "verdict": "shadow", "severity": "high", "confidence": "high",
            "rule": {"id": "SMCP-001", "name": "MCP session over cleartext Streamable HTTP"},
            "client": {"ip": "::1", "port": 40000},
            "server": {"ip": "::1", "port": 8768, "name": null, "vendor": null, "path": "/mcp"},
            "transport": "streamable-http", "evidence": [],
            "mcp": {"protocol_version": null, "client": null, "server": null,
                    "methods": [], "tools": [], "tools_called": []},
            "community_id": null,
            "first_seen": "2026-01-01T00:00:00.000000Z",
            "last_seen": "2026-01-01T00:00:00.000000Z", "count": 1
        }))
        .expect("record");
        let a = Assessment {
            verdict: Verdict::Shadow,
            confidence: Confidence::High,
            severity: Severity::High,
            rule: rules::HTTP_SESSION,
            vendor: None,
            sanctioned_by: None,
        };
        let text = logged(false, &record, &a);
        assert!(text.contains("confidence=high"), "{text}");
        assert!(text.contains("verdict=shadow"), "{text}");
        assert!(text.contains("server=[::1]:8768"), "{text}");
        let line: serde_json::Value =
            serde_json::from_str(logged(true, &record, &a).trim()).expect("one JSON line");
        assert_eq!(line["fields"]["confidence"], "high", "{line}");
        assert_eq!(line["fields"]["server"], "[::1]:8768", "{line}");
    }
}
