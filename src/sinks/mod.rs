//! Alert sinks of the live sensor: where findings go once they are made.
//!
//! Every sink runs as its own tokio task behind a bounded queue. The live
//! sensor's findings thread (after `findings::live` has held, suppressed or
//! updated each finding) calls [`SinkSet::send_record`], which never waits:
//! when a queue is full the finding goes to the on-disk spool (webhook with
//! `spool_dir`) or is dropped and counted in [`SinkStats::dropped`].
//!
//! Sinks see findings as `serde_json::Value`, the JSON of
//! [`crate::findings::output::FindingRecord`]; the only field names they read
//! are the documented ones (docs/findings.md), gathered in [`Alert`].
//! Options, delivery semantics and counters: docs/sinks.md.

mod alert;
mod alertmanager;
mod config;
pub(crate) mod http;
mod jsonl;
pub mod spool;
mod syslog;
pub(crate) mod tls;
mod webhook;
mod worker;

pub use alert::Alert;
pub use config::{
    AlertmanagerConfig, JsonlConfig, SinkConfig, SyslogConfig, SyslogTransport, WebhookConfig,
};
pub use syslog::{SyslogFormat, format_rfc5424};

use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use worker::Msg;

/// Largest serialised finding a sink accepts. Findings carry at most 32
/// evidence items and bounded names, so real ones are a few KiB; anything
/// larger is dropped (counted) rather than buffered.
pub const MAX_FINDING_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("sink configuration: {0}")]
    Config(String),
    /// A `--sink` argument that does not parse: the spec, spelled once.
    #[error("--sink {spec:?}: {message}")]
    Spec { spec: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

/// Counts serialised bytes, failing once past the cap (no allocation).
struct SizeCap(usize);

impl std::io::Write for SizeCap {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(b.len());
        if self.0 > MAX_FINDING_BYTES {
            return Err(std::io::Error::other("too large"));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// True when the finding's JSON exceeds [`MAX_FINDING_BYTES`].
fn too_large(v: &Value) -> bool {
    serde_json::to_writer(SizeCap(0), v).is_err()
}

/// Counters of one sink. Counters only grow; `queue_depth` and `spool_bytes`
/// are gauges. Shared with the sink's task; read with [`SinkStats::snapshot`].
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Findings the receiver acknowledged (HTTP 2xx, written to the file or
    /// stream, sent as a datagram).
    pub delivered: AtomicU64,
    /// Delivery attempts repeated after a retryable failure.
    pub retries: AtomicU64,
    /// Deliveries (batches) that finally failed: retries exhausted or rejected.
    pub failures: AtomicU64,
    /// Findings given up for good: queue full without spool, spool full,
    /// rejected by the receiver, retries exhausted without spool, too large,
    /// unreadable spool lines, left in the queue at a shutdown timeout.
    pub dropped: AtomicU64,
    /// Findings written to the spool (queue full, receiver down, shutdown).
    pub spooled: AtomicU64,
    /// Findings waiting in the in-memory queue or in the batch in delivery.
    pub queue_depth: AtomicU64,
    /// Bytes in the on-disk spool.
    pub spool_bytes: AtomicU64,
}

/// A plain copy of [`SinkStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SinkStatsSnapshot {
    pub delivered: u64,
    pub retries: u64,
    pub failures: u64,
    pub dropped: u64,
    pub spooled: u64,
    pub queue_depth: u64,
    pub spool_bytes: u64,
}

impl SinkStats {
    pub fn snapshot(&self) -> SinkStatsSnapshot {
        SinkStatsSnapshot {
            delivered: self.delivered.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            spooled: self.spooled.load(Ordering::Relaxed),
            queue_depth: self.queue_depth.load(Ordering::Relaxed),
            spool_bytes: self.spool_bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Saturating decrement of a gauge.
    pub(crate) fn sub(counter: &AtomicU64, n: usize) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n as u64))
        });
    }
}

/// RFC 3339 UTC with microseconds, as in findings.
pub(crate) fn output_ts(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// A finding in the sink's format; `None` (logged) when the JSON handed to
/// the sink is not a finding record and the format needs one.
pub(crate) fn encoded(
    format: crate::findings::encode::Format,
    v: &Value,
) -> Option<std::borrow::Cow<'_, Value>> {
    match crate::findings::encode::encode_value(format, v) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!(%format, error = %e, "finding skipped by a sink");
            None
        }
    }
}

/// A sink's warnings go to the sensor's log, with the sink's name.
pub(crate) fn warn(name: &str, msg: &str) {
    tracing::warn!(sink = name, "sink {name}: {msg}");
}

/// True for 1, 2, 4, 8, … so that a flood of drops logs O(log n) lines
/// while the exact number stays in the counter.
pub(crate) fn log_this_drop(total: u64) -> bool {
    total.is_power_of_two()
}

/// The sending side of one running sink.
pub struct SinkHandle {
    name: Arc<str>,
    format: crate::findings::encode::Format,
    tx: mpsc::Sender<Msg>,
    stats: Arc<SinkStats>,
    spool: Option<Arc<spool::Spool>>,
    task: JoinHandle<()>,
    deadline_tx: watch::Sender<Option<Instant>>,
}

impl SinkHandle {
    /// Starts the sink described by `cfg`. Must be called inside a tokio
    /// runtime. Files, TLS material and URLs are checked here, so a bad
    /// configuration fails at start-up rather than at the first finding.
    pub fn start(cfg: &SinkConfig) -> Result<SinkHandle, SinkError> {
        Self::start_named(cfg, &cfg.display_name())
    }

    /// Like [`SinkHandle::start`] with an explicit name (logs and metrics).
    pub fn start_named(cfg: &SinkConfig, name: &str) -> Result<SinkHandle, SinkError> {
        cfg.validate()?;
        let name: Arc<str> = name.into();
        let stats = Arc::new(SinkStats::default());
        let (queue, policy, backend_spool) = match cfg {
            SinkConfig::Jsonl(c) => (c.queue, c.policy(), None),
            SinkConfig::Webhook(c) => {
                let sp = match &c.spool_dir {
                    Some(dir) => Some(Arc::new(spool::Spool::open(
                        dir,
                        c.spool_max_bytes,
                        c.batch_max.max(1),
                        stats.clone(),
                    )?)),
                    None => None,
                };
                (c.queue, c.policy(), sp)
            }
            SinkConfig::Syslog(c) => (c.queue, c.policy(), None),
            SinkConfig::Alertmanager(c) => (c.queue, c.policy(), None),
        };
        let (tx, rx) = mpsc::channel(queue.max(1));
        let (deadline_tx, deadline_rx) = watch::channel(None);
        // Only the backend differs between sinks; the spool is set for
        // webhooks only (None otherwise, above).
        macro_rules! start {
            ($backend:expr) => {
                worker::Worker::new(
                    name.clone(),
                    $backend,
                    policy,
                    stats.clone(),
                    backend_spool.clone(),
                    rx,
                    deadline_rx,
                )
                .spawn()
            };
        }
        let task = match cfg {
            SinkConfig::Jsonl(c) => start!(jsonl::JsonlBackend::new(c)?),
            SinkConfig::Webhook(c) => start!(webhook::WebhookBackend::new(c)?),
            SinkConfig::Syslog(c) => start!(syslog::SyslogBackend::new(c)?),
            SinkConfig::Alertmanager(c) => start!(alertmanager::AlertmanagerBackend::new(c)?),
        };
        Ok(SinkHandle {
            name,
            format: cfg.format(),
            tx,
            stats,
            spool: backend_spool,
            task,
            deadline_tx,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn stats(&self) -> &Arc<SinkStats> {
        &self.stats
    }

    /// Queues a finding; never waits. When the queue is full the finding is
    /// spooled (if the sink has a spool) or dropped and counted. A finding
    /// larger than [`MAX_FINDING_BYTES`] serialised is dropped and counted.
    pub fn send(&self, finding: Arc<Value>) {
        if too_large(&finding) {
            self.drop_too_large();
            return;
        }
        self.send_unchecked(finding);
    }

    fn drop_too_large(&self) {
        let total = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if log_this_drop(total) {
            warn(
                &self.name,
                &format!(
                    "finding larger than {MAX_FINDING_BYTES} bytes dropped ({total} dropped so far)"
                ),
            );
        }
    }

    fn send_unchecked(&self, finding: Arc<Value>) {
        // OCSF and ECS are made from a finding record: anything else would
        // be lost at delivery, so it is dropped (and counted) here.
        if self.format != crate::findings::encode::Format::Json
            && let Err(e) = crate::findings::output::FindingRecord::deserialize_from(&finding)
        {
            let total = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if log_this_drop(total) {
                warn(
                    &self.name,
                    &format!("not a finding record, dropped ({total} so far): {e}"),
                );
            }
            return;
        }
        SinkStats::add(&self.stats.queue_depth, 1);
        match self.tx.try_send(Msg::Finding(finding)) {
            Ok(()) => {}
            Err(e) => {
                SinkStats::sub(&self.stats.queue_depth, 1);
                let (full, msg) = match e {
                    mpsc::error::TrySendError::Full(m) => (true, m),
                    mpsc::error::TrySendError::Closed(m) => (false, m),
                };
                if let (Some(sp), Msg::Finding(v)) = (&self.spool, msg) {
                    let _ = sp.append(&self.name, std::slice::from_ref(&v));
                    return;
                }
                let total = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if log_this_drop(total) {
                    let why = if full { "queue full" } else { "sink stopped" };
                    warn(
                        &self.name,
                        &format!("{why}: finding dropped ({total} dropped so far)"),
                    );
                }
            }
        }
    }

    /// Delivers whatever is queued now (one attempt cycle with retries) and
    /// returns when done or after `timeout`. Returns false on timeout.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let (otx, orx) = oneshot::channel();
        let fut = async {
            if self.tx.send(Msg::Flush(otx)).await.is_err() {
                return false;
            }
            orx.await.is_ok()
        };
        tokio::time::timeout(timeout, fut).await.unwrap_or(false)
    }

    /// Delivers pending findings, then stops the sink. Findings that cannot
    /// be delivered before `timeout` go to the spool (webhook with spool) or
    /// are dropped and counted. Returns the final counters.
    pub async fn flush_and_close(self, timeout: Duration) -> SinkStatsSnapshot {
        let deadline = Instant::now() + timeout;
        let tdeadline = tokio::time::Instant::from_std(deadline);
        let SinkHandle {
            name,
            tx,
            stats,
            mut task,
            deadline_tx,
            ..
        } = self;
        // The worker sees the deadline at once, even mid-request; past it,
        // whatever is left is spooled or dropped quickly.
        let _ = deadline_tx.send(Some(deadline));
        let _ = tokio::time::timeout_at(tdeadline, tx.send(Msg::Close(deadline))).await;
        // Closing the channel ends the worker once the queue is empty, even if
        // the Close message found no room.
        drop(tx);
        // Grace for the final spool writes after the delivery deadline.
        let grace = tdeadline + Duration::from_secs(2);
        let finished = tokio::time::timeout_at(grace, &mut task).await.is_ok();
        if !finished {
            task.abort();
            let left = stats.queue_depth.swap(0, Ordering::Relaxed);
            if left > 0 {
                stats.dropped.fetch_add(left, Ordering::Relaxed);
                warn(
                    &name,
                    &format!("shutdown timeout: {left} queued findings dropped"),
                );
            }
        }
        stats.snapshot()
    }
}

/// All configured sinks; a finding sent to the set goes to every sink.
#[derive(Default)]
pub struct SinkSet {
    sinks: Vec<SinkHandle>,
}

impl SinkSet {
    /// Starts every sink (inside a tokio runtime). Sink names are made unique
    /// by a `#2`, `#3`… suffix.
    pub fn start(configs: &[SinkConfig]) -> Result<SinkSet, SinkError> {
        let mut sinks: Vec<SinkHandle> = Vec::with_capacity(configs.len());
        for cfg in configs {
            let base = cfg.display_name();
            let mut name = base.clone();
            let mut n = 1;
            while sinks.iter().any(|s| *s.name == *name) {
                n += 1;
                name = format!("{base}#{n}");
            }
            sinks.push(SinkHandle::start_named(cfg, &name)?);
        }
        Ok(SinkSet { sinks })
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub fn handles(&self) -> &[SinkHandle] {
        &self.sinks
    }

    /// Queues `finding` on every sink; never waits.
    pub fn send(&self, finding: Value) {
        if too_large(&finding) {
            for s in &self.sinks {
                s.drop_too_large();
            }
            return;
        }
        let v = Arc::new(finding);
        for s in &self.sinks {
            s.send_unchecked(v.clone());
        }
    }

    /// Serialises a finding record and queues it on every sink.
    pub fn send_record(&self, record: &crate::findings::output::FindingRecord) {
        match serde_json::to_value(record) {
            Ok(v) => self.send(v),
            Err(e) => {
                for s in &self.sinks {
                    let total = s.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    if log_this_drop(total) {
                        warn(&s.name, &format!("finding not serialisable: {e}"));
                    }
                }
            }
        }
    }

    /// Name and counters of every sink.
    pub fn stats(&self) -> Vec<(String, SinkStatsSnapshot)> {
        self.sinks
            .iter()
            .map(|s| (s.name.to_string(), s.stats.snapshot()))
            .collect()
    }

    /// Flushes and closes every sink concurrently, all within `timeout`
    /// (used on SIGTERM before exit).
    pub async fn flush_and_close(self, timeout: Duration) -> Vec<(String, SinkStatsSnapshot)> {
        let mut tasks = Vec::with_capacity(self.sinks.len());
        for s in self.sinks {
            let name = s.name.to_string();
            tasks.push((name, tokio::spawn(s.flush_and_close(timeout))));
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (name, t) in tasks {
            let snap = t.await.unwrap_or_default();
            out.push((name, snap));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_cap() {
        assert!(!too_large(&serde_json::json!({"a": "x".repeat(1000)})));
        assert!(!too_large(&Value::String(
            "x".repeat(MAX_FINDING_BYTES - 2)
        )));
        assert!(too_large(&Value::String("x".repeat(MAX_FINDING_BYTES - 1))));
        assert!(too_large(
            &serde_json::json!({"e": vec!["y".repeat(1024); 300]})
        ));
    }

    #[test]
    fn drop_log_schedule() {
        let logged: Vec<u64> = (1..=100).filter(|n| log_this_drop(*n)).collect();
        assert_eq!(logged, vec![1, 2, 4, 8, 16, 32, 64]);
    }
}
