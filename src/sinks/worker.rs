//! The task behind every sink: batching, retries with exponential backoff
//! and jitter, spool use, flush and close. Sinks differ only in their
//! [`Backend`], which delivers one batch.

use super::spool::Spool;
use super::{SinkStats, log_this_drop, warn};
use serde_json::Value;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub(crate) enum Msg {
    Finding(Arc<Value>),
    Flush(oneshot::Sender<()>),
    /// Deliver what is left, then stop; give up at the instant given.
    Close(Instant),
}

/// Result of one delivery attempt of a batch.
#[derive(Debug)]
pub(crate) enum Outcome {
    Delivered,
    /// Worth retrying (connection error, HTTP 408/429/5xx). `done` leading
    /// items were delivered anyway (stream sinks); `after` is a server hint
    /// (`Retry-After`).
    Retry {
        done: usize,
        reason: String,
        after: Option<Duration>,
    },
    /// Never worth retrying (HTTP 4xx): the rest of the batch is dropped.
    Reject {
        done: usize,
        reason: String,
    },
}

pub(crate) trait Backend: Send + 'static {
    fn deliver(&mut self, batch: &[Arc<Value>]) -> impl Future<Output = Outcome> + Send;
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub batch_max: usize,
    pub batch_timeout: Duration,
    pub max_retries: u32,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

/// Exponential backoff with "equal jitter": half the delay is fixed, half is
/// random, so clients that failed together do not retry together.
pub(crate) fn backoff(p: &Policy, attempt: u32) -> Duration {
    let base = p
        .backoff_initial
        .saturating_mul(1u32 << attempt.min(20))
        .min(p.backoff_max);
    let half = base / 2;
    let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
    let r = random_u64() % span.saturating_add(1);
    half + Duration::from_micros(r)
}

/// Random enough for jitter, no extra dependency: std's per-process random
/// hasher keys mixed with a counter and the clock.
fn random_u64() -> u64 {
    use std::sync::atomic::AtomicU64;
    static CTR: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(CTR.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
pub(crate) fn tests_random() -> u64 {
    random_u64()
}

/// Retries are logged at warn, rate-limited: one line at once, then at most
/// one per interval saying how many were not logged (the exact number is in
/// `shadowmcp_sink_retries_total`).
const RETRY_LOG_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct RetryLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl RetryLog {
    /// `Some(n)` when this retry is to be logged, `n` retries since the
    /// previous line having gone unlogged.
    fn note(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < RETRY_LOG_INTERVAL => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

enum Failure {
    /// Retries exhausted (or the close deadline reached); still worth trying later.
    Exhausted(String),
    Rejected(String),
}

pub(crate) struct Worker<B: Backend> {
    name: Arc<str>,
    backend: B,
    policy: Policy,
    stats: Arc<SinkStats>,
    spool: Option<Arc<Spool>>,
    rx: mpsc::Receiver<Msg>,
    /// The receiver failed after all retries: new batches go to the spool
    /// and the oldest spool segment probes it at `next_probe`.
    down: bool,
    next_probe: Instant,
    closing: Option<Instant>,
    /// Set by the handle at shutdown, seen even while a request is in flight.
    deadline_rx: watch::Receiver<Option<Instant>>,
    retry_log: RetryLog,
}

impl<B: Backend> Worker<B> {
    pub(crate) fn new(
        name: Arc<str>,
        backend: B,
        policy: Policy,
        stats: Arc<SinkStats>,
        spool: Option<Arc<Spool>>,
        rx: mpsc::Receiver<Msg>,
        deadline_rx: watch::Receiver<Option<Instant>>,
    ) -> Self {
        Worker {
            name,
            backend,
            policy,
            stats,
            spool,
            rx,
            down: false,
            next_probe: Instant::now(),
            closing: None,
            deadline_rx,
            retry_log: RetryLog::default(),
        }
    }

    pub(crate) fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    /// The shutdown deadline, once shutdown has begun.
    fn deadline(&self) -> Option<Instant> {
        self.closing.or(*self.deadline_rx.borrow())
    }

    fn spool_has_data(&self) -> bool {
        self.spool.as_ref().is_some_and(|s| !s.is_empty())
    }

    /// `queue_depth` counts a finding until its batch is processed, so that
    /// a sink stopped at the shutdown timeout counts in-flight ones as dropped.
    fn received(&self, n: usize) {
        SinkStats::sub(&self.stats.queue_depth, n);
    }

    async fn run(mut self) {
        loop {
            // Spooled findings go first (they are older), unless the receiver
            // is known to be down and it is not yet time to probe it.
            if self.deadline().is_none()
                && self.spool_has_data()
                && (!self.down || Instant::now() >= self.next_probe)
            {
                self.drain_spool_segment().await;
                // Let queued flush/close requests be seen between segments.
                if let Ok(m) = self.rx.try_recv()
                    && self.handle_first(m).await
                {
                    break;
                }
                continue;
            }
            let first = if self.spool_has_data() {
                let probe = tokio::time::Instant::from_std(self.next_probe);
                tokio::select! {
                    m = self.rx.recv() => m,
                    _ = tokio::time::sleep_until(probe) => continue,
                }
            } else {
                self.rx.recv().await
            };
            let Some(first) = first else { break };
            if self.handle_first(first).await {
                break;
            }
        }
        if let Some(sp) = &self.spool {
            sp.close_open_segment(&self.name);
        }
    }

    /// Collects a batch starting with `first` and delivers it. Returns true
    /// when the worker must stop.
    async fn handle_first(&mut self, first: Msg) -> bool {
        let mut batch: Vec<Arc<Value>> = Vec::new();
        let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
        let mut stop = false;
        match first {
            Msg::Finding(v) => batch.push(v),
            Msg::Flush(t) => flushes.push(t),
            Msg::Close(d) => self.closing = Some(d),
        }
        // Take everything already queued, then wait up to batch_timeout for more.
        let until = tokio::time::Instant::now() + self.policy.batch_timeout;
        while !batch.is_empty()
            && batch.len() < self.policy.batch_max
            && flushes.is_empty()
            && self.closing.is_none()
        {
            let m = match self.rx.try_recv() {
                Ok(m) => Some(m),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    stop = true;
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    if self.policy.batch_timeout.is_zero() {
                        None
                    } else {
                        match tokio::time::timeout_at(until, self.rx.recv()).await {
                            Ok(Some(m)) => Some(m),
                            Ok(None) => {
                                stop = true;
                                None
                            }
                            Err(_) => None,
                        }
                    }
                }
            };
            match m {
                Some(Msg::Finding(v)) => batch.push(v),
                Some(Msg::Flush(t)) => flushes.push(t),
                Some(Msg::Close(d)) => self.closing = Some(d),
                None => break,
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            self.process(batch).await;
            self.received(n);
        }
        if self.closing.is_some() {
            // Close is the last message the handle sends, but drain defensively.
            while let Ok(m) = self.rx.try_recv() {
                match m {
                    Msg::Finding(v) => {
                        self.process(vec![v]).await;
                        self.received(1);
                    }
                    Msg::Flush(t) => flushes.push(t),
                    Msg::Close(_) => {}
                }
            }
            stop = true;
        }
        for f in flushes {
            let _ = f.send(());
        }
        stop
    }

    /// Delivers with retries. On failure returns how many leading items were
    /// delivered and why the rest failed.
    async fn attempt(
        &mut self,
        batch: &[Arc<Value>],
        max_retries: u32,
    ) -> Result<(), (usize, Failure)> {
        let mut off = 0usize;
        let mut attempt = 0u32;
        loop {
            let rest = batch.get(off..).unwrap_or(&[]);
            if rest.is_empty() {
                return Ok(());
            }
            // A request may not outlive the shutdown deadline, even one that
            // started before shutdown began.
            let mut wrx = self.deadline_rx.clone();
            let closing = self.closing;
            let deadline_passed = async move {
                let dl = match closing {
                    Some(d) => Some(d),
                    None => wrx.wait_for(Option::is_some).await.ok().and_then(|r| *r),
                };
                match dl {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let outcome = tokio::select! {
                o = self.backend.deliver(rest) => o,
                _ = deadline_passed => Outcome::Retry {
                    done: 0,
                    reason: "shutdown deadline".into(),
                    after: None,
                },
            };
            match outcome {
                Outcome::Delivered => {
                    SinkStats::add(&self.stats.delivered, rest.len());
                    return Ok(());
                }
                Outcome::Reject { done, reason } => {
                    let done = done.min(rest.len());
                    SinkStats::add(&self.stats.delivered, done);
                    return Err((off + done, Failure::Rejected(reason)));
                }
                Outcome::Retry {
                    done,
                    reason,
                    after,
                } => {
                    let done = done.min(rest.len());
                    SinkStats::add(&self.stats.delivered, done);
                    off += done;
                    if attempt >= max_retries {
                        return Err((off, Failure::Exhausted(reason)));
                    }
                    let delay = after
                        .unwrap_or_else(|| backoff(&self.policy, attempt))
                        .min(self.policy.backoff_max);
                    if let Some(dl) = self.deadline()
                        && Instant::now() + delay > dl
                    {
                        return Err((
                            off,
                            Failure::Exhausted(format!("{reason} (shutdown deadline)")),
                        ));
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if let Some(unlogged) = self.retry_log.note(Instant::now()) {
                        let more = if unlogged > 0 {
                            format!(" ({unlogged} more retries since the last such line)")
                        } else {
                            String::new()
                        };
                        warn(
                            &self.name,
                            &format!(
                                "delivery failed ({reason}); retry {} of {max_retries} in {}{more}",
                                attempt + 1,
                                humantime::format_duration(Duration::from_millis(
                                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)
                                )),
                            ),
                        );
                    }
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    fn mark_down(&mut self) {
        self.down = true;
        self.next_probe = Instant::now() + self.policy.backoff_max;
    }

    fn drop_items(&self, n: usize, why: &str) {
        if n == 0 {
            return;
        }
        let total = self.stats.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        warn(
            &self.name,
            &format!("{n} finding(s) dropped: {why} ({total} dropped so far)"),
        );
    }

    /// Delivers a batch that came from the in-memory queue.
    async fn process(&mut self, batch: Vec<Arc<Value>>) {
        if let Some(sp) = self.spool.clone() {
            // Receiver known down: straight to disk until the next probe.
            if self.down && Instant::now() < self.next_probe {
                sp.append(&self.name, &batch);
                return;
            }
        }
        let retries = if self.spool.is_some() && self.deadline().is_some() {
            // Shutting down with a spool: one try, the spool keeps the rest.
            0
        } else {
            self.policy.max_retries
        };
        match self.attempt(&batch, retries).await {
            Ok(()) => self.down = false,
            Err((off, fail)) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                let rest = batch.get(off..).unwrap_or(&[]);
                match fail {
                    Failure::Rejected(why) => {
                        self.drop_items(rest.len(), &format!("rejected by receiver: {why}"))
                    }
                    Failure::Exhausted(why) => {
                        if let Some(sp) = self.spool.clone() {
                            // Appending first, so the message says how many
                            // made it to disk (the rest are counted drops).
                            let written = sp.append(&self.name, rest);
                            let total = self.stats.failures.load(Ordering::Relaxed);
                            if log_this_drop(total) {
                                warn(
                                    &self.name,
                                    &format!(
                                        "delivery failed ({why}); {written} of {} finding(s) spooled",
                                        rest.len()
                                    ),
                                );
                            }
                            self.mark_down();
                        } else {
                            self.drop_items(rest.len(), &format!("delivery failed: {why}"));
                        }
                    }
                }
            }
        }
    }

    /// Delivers the oldest spool segment; removes it once acknowledged.
    async fn drain_spool_segment(&mut self) {
        let Some(sp) = self.spool.clone() else { return };
        let Some(seg) = sp.oldest(&self.name) else {
            return;
        };
        if seg.items.is_empty() {
            sp.remove(&self.name, seg.seq);
            return;
        }
        let retries = if self.down {
            0
        } else {
            self.policy.max_retries
        };
        match self.attempt(&seg.items, retries).await {
            Ok(()) => {
                sp.remove(&self.name, seg.seq);
                self.down = false;
            }
            Err((off, Failure::Rejected(why))) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                sp.remove(&self.name, seg.seq);
                let n = seg.items.len().saturating_sub(off);
                self.drop_items(n, &format!("spooled findings rejected by receiver: {why}"));
            }
            Err((_, Failure::Exhausted(why))) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if !self.down {
                    warn(
                        &self.name,
                        &format!("receiver unreachable ({why}); findings stay in the spool"),
                    );
                }
                self.mark_down();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_log_is_rate_limited() {
        let mut l = RetryLog::default();
        let t0 = Instant::now();
        assert_eq!(l.note(t0), Some(0));
        for i in 1..100 {
            assert_eq!(l.note(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(l.note(t0 + RETRY_LOG_INTERVAL), Some(99));
        assert_eq!(l.note(t0 + RETRY_LOG_INTERVAL), None);
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = Policy {
            batch_max: 1,
            batch_timeout: Duration::ZERO,
            max_retries: 3,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1_000),
        };
        for attempt in 0..40 {
            let full = Duration::from_millis(100)
                .saturating_mul(1u32 << attempt.min(20))
                .min(Duration::from_millis(1_000));
            let d = backoff(&p, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        // Jitter: 50 draws at the cap are not all equal.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| backoff(&p, 10)).collect();
        assert!(draws.len() > 1);
    }
}
