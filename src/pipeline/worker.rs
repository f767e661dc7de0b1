//! The worker loop: one engine fed with batches from its queue, its
//! observations handed on, its counters reported. The same loop for live
//! capture, pipes and capture files.

use super::batch::Batch;
use super::detector::DetectorView;
use super::dispatch::QueuePolicy;
use crate::capture::FrameAt;
use crate::engine::Engine;
use crate::findings::Observation;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a running worker reports its counters.
pub const REPORT_EVERY: Duration = Duration::from_millis(500);
/// How often an idle worker retries TLS connections waiting for keys.
const KEY_POLL_EVERY: Duration = Duration::from_millis(100);

/// Where workers send observations, with the queue policy of their source.
#[derive(Clone)]
pub struct ObservationSender {
    tx: Sender<Observation>,
    policy: QueuePolicy,
    dropped: Arc<AtomicU64>,
}

impl ObservationSender {
    /// `dropped` counts observations lost on a full queue
    /// (`QueuePolicy::DropNewest`).
    pub fn new(tx: Sender<Observation>, policy: QueuePolicy, dropped: Arc<AtomicU64>) -> Self {
        Self {
            tx,
            policy,
            dropped,
        }
    }

    pub fn send(&self, o: Observation) {
        let sent = match self.policy {
            QueuePolicy::Block => self.tx.send(o).is_ok(),
            QueuePolicy::DropNewest => self.tx.try_send(o).is_ok(),
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every observation an engine made since the last call.
    pub fn send_all(&self, engine: &mut Engine) {
        for o in engine.drain_observations() {
            self.send(o);
        }
    }
}

/// What a worker tells whoever watches it (metrics, the final summary).
pub trait Monitor: Send + 'static {
    /// The engine's counters, every [`REPORT_EVERY`] and once at the end.
    fn report(&mut self, _engine: &Engine) {}
    /// A batch of `frames` frames took `seconds`.
    fn batch_done(&mut self, _frames: usize, _seconds: f64) {}
    /// The wall clock, for sources whose packet times are wall-clock times
    /// (live capture): TLS connections waiting for keys are then retried,
    /// and given up at their deadline, while no packets come. `None`
    /// offline, where only packet time counts.
    fn clock(&self) -> Option<crate::findings::Micros> {
        None
    }
}

/// No one watches (offline runs read the counters at the end).
impl Monitor for () {}

/// One engine at work: batches in, observations out, counters reported
/// every [`REPORT_EVERY`]. Driven by a worker thread ([`run`]) or, with one
/// worker and one interface, by the capture thread itself
/// ([`super::Dispatcher::inline`]).
pub struct WorkerLoop {
    engine: Engine,
    detector: DetectorView,
    out: ObservationSender,
    monitor: Box<dyn Monitor>,
    last_report: Instant,
    last_idle_poll: Instant,
}

impl WorkerLoop {
    pub fn new(
        engine: Engine,
        detector: DetectorView,
        out: ObservationSender,
        monitor: Box<dyn Monitor>,
    ) -> Self {
        Self {
            engine,
            detector,
            out,
            monitor,
            last_report: Instant::now(),
            last_idle_poll: Instant::now(),
        }
    }

    /// How long to wait for the next batch before [`WorkerLoop::idle`].
    pub fn idle_wait(&self) -> Duration {
        if self.engine.waiting_for_keys() && self.monitor.clock().is_some() {
            KEY_POLL_EVERY
        } else {
            REPORT_EVERY
        }
    }

    /// No batch came for a while: live, TLS connections waiting for keys
    /// are retried on the wall clock (at most every [`KEY_POLL_EVERY`]).
    pub fn idle(&mut self) {
        if self.last_idle_poll.elapsed() < KEY_POLL_EVERY {
            return;
        }
        self.last_idle_poll = Instant::now();
        if self.engine.waiting_for_keys()
            && let Some(now) = self.monitor.clock()
        {
            self.engine.poll_decryption(now);
            self.out.send_all(&mut self.engine);
        }
    }

    /// Process one batch and hand its observations on.
    pub fn batch(&mut self, batch: &Batch) {
        let (data, frames) = batch.parts();
        self.frames(batch.linktype(), data, frames);
    }

    /// Process frames of `linktype` lying in `data` (a batch, or a ring
    /// block in place) and hand their observations on.
    pub fn frames(&mut self, linktype: i32, data: &[u8], frames: &[FrameAt]) {
        if let Some(d) = self.detector.changed() {
            self.engine.set_detector(d);
        }
        let start = Instant::now();
        self.engine.process_batch(linktype, data, frames);
        self.monitor
            .batch_done(frames.len(), start.elapsed().as_secs_f64());
        self.out.send_all(&mut self.engine);
    }

    /// Report the counters if [`REPORT_EVERY`] has passed.
    pub fn tick(&mut self) {
        if self.last_report.elapsed() >= REPORT_EVERY {
            self.last_report = Instant::now();
            self.monitor.report(&self.engine);
        }
    }

    /// Finish every flow, hand the last observations on, report.
    pub fn finish(mut self) -> Engine {
        self.engine.finish();
        self.out.send_all(&mut self.engine);
        self.monitor.report(&self.engine);
        self.engine
    }
}

/// Run an engine on the batches of `input` until every sender is gone,
/// then finish its flows. Batches go back to `free` for reuse.
pub fn run(mut work: WorkerLoop, input: Receiver<Batch>, free: Sender<Batch>) -> Engine {
    loop {
        match input.recv_timeout(work.idle_wait()) {
            Ok(batch) => {
                work.batch(&batch);
                // Full (more batches in flight than the pool keeps) or the
                // reader gone: dropped.
                let _ = free.try_send(batch);
            }
            Err(RecvTimeoutError::Timeout) => work.idle(),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        work.tick();
    }
    work.finish()
}
