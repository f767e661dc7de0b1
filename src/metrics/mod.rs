//! Prometheus metrics of the live sensor. Every metric name is declared in this
//! module (and listed in `docs/metrics.md`, checked by a test): the names are an
//! interface that dashboards and alerts depend on.
//!
//! Two kinds of sources feed the registry:
//!
//! - **Snapshots.** Workers own plain [`Stats`] (no atomics on the packet path)
//!   and periodically publish their cumulative counters with
//!   [`Metrics::publish_worker_stats`]; capture threads and sinks do the same
//!   with [`CaptureCounters`] and [`SinkCounters`]. The exported values are
//!   computed at scrape time by a custom collector from the latest snapshot of
//!   every source. A value that goes backwards (a restarted engine, a reopened
//!   capture) is folded into a base, so exported counters never decrease.
//! - **Events** (findings, signature reloads, sampled packet timings) update
//!   ordinary atomic prometheus metrics directly.
//!
//! Label cardinality is bounded: label values come from closed sets (protocols,
//! causes, rule ids), from operator configuration (interfaces, sinks: capped),
//! or from the signature list (vendors: capped, the rest folded into `other`).
//! No address, host name or payload byte ever becomes a label.

pub mod server;

pub use server::{Health, serve, serve_listener};

use crate::decode::DecodeError;
use crate::findings::aggregate::{Severity, Verdict, rules};
use crate::findings::output::FindingRecord;
use crate::stats::{COUNTERS, Stats};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};
use rustc_hash::FxHashSet;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Distinct `vendor` label values on `shadowmcp_findings_total`. The built-in
/// signature list names ~150 vendors; beyond the cap new vendors are counted
/// under `other` so a hostile or huge custom list cannot blow up the series.
pub const MAX_VENDOR_LABELS: usize = 200;
/// Interfaces tracked by `publish_capture_stats`; publishes for further
/// interfaces are ignored (a sensor captures on a handful).
pub const MAX_INTERFACES: usize = 64;
/// Sinks tracked by `publish_sink`; further sinks are ignored.
pub const MAX_SINKS: usize = 32;
/// Worker slots tracked by `publish_worker_stats`; further ids are ignored.
pub const MAX_WORKERS: usize = 1024;
/// Longest label value taken from a name (interface, sink, vendor, version),
/// in bytes; longer values are cut at a character boundary.
pub const MAX_LABEL_BYTES: usize = 64;
/// Default listener of the metrics endpoint: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9108";

/// Upper bounds of `shadowmcp_packet_processing_seconds`: 100 ns … 1 ms, a
/// 1-2.5-5 series; slower packets land in `+Inf`.
pub const PACKET_SECONDS_BUCKETS: [f64; 13] = [
    1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
];

pub mod names;
pub use names::*;

/// Protocol label values of the parser families, in export order.
pub const PROTOCOLS: [&str; 7] = ["dns", "tls", "quic", "http", "http2", "sse", "websocket"];

// ---------------------------------------------------------------------------
// Snapshot sources.

/// Cumulative counters of one capture handle, published by its capture thread.
/// All values are totals since the capture was opened; pcap's 32-bit
/// `ps_recv`/`ps_drop`/`ps_ifdrop` must be widened with [`Counter32`] by the
/// publisher. A value lower than the previous one is taken as a reopened
/// capture: the old total is kept and the new one added on top.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CaptureCounters {
    /// Frames handed to the sensor by the capture.
    pub packets: u64,
    /// Captured bytes of those frames (wire bytes when not truncated).
    pub bytes: u64,
    /// Dropped by the kernel: no room in the capture buffer (`ps_drop`).
    pub kernel_drops: u64,
    /// Dropped by the interface or its driver (`ps_ifdrop`).
    pub interface_drops: u64,
    /// Dropped by the sensor: the queue to the workers was full.
    pub queue_full_drops: u64,
}

/// Widens one of libpcap's 32-bit cumulative counters (`ps_recv`, `ps_drop`,
/// `ps_ifdrop`) to 64 bits. They wrap after 2^32 packets — about 70 minutes at
/// a million packets per second — so a lower reading is a wrap, not a reset.
/// Read at least once per wrap period (every few seconds is plenty).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counter32 {
    last: u32,
    total: u64,
}

impl Counter32 {
    /// Feed the latest raw reading; returns the widened total.
    pub fn update(&mut self, raw: u32) -> u64 {
        let delta = raw.wrapping_sub(self.last);
        self.last = raw;
        self.total = self.total.saturating_add(u64::from(delta));
        self.total
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The source was reopened and counts from zero again: keep the total,
    /// so the next reading is not taken for a wrap (a jump of ~2^32).
    pub fn restart(&mut self) {
        self.last = 0;
    }
}

/// Counters of one alert sink, published by the sink. The first four are
/// cumulative (monotonic, same reset rule as [`CaptureCounters`]); the last two
/// are current levels.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkCounters {
    /// Findings delivered (acknowledged by the destination).
    pub delivered: u64,
    /// Delivery attempts that were retried.
    pub retries: u64,
    /// Delivery attempts that failed (each retry that fails counts).
    pub failures: u64,
    /// Findings given up on: queue and spool full, or retries exhausted.
    pub dropped: u64,
    /// Findings waiting in the in-memory queue now.
    pub queue_depth: u64,
    /// Bytes in the on-disk spool now.
    pub spool_bytes: u64,
}

/// TLS decryption counters (the run's `tls_decrypt::DecryptContext` and
/// key table), published by the sensor. All cumulative but the two levels.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DecryptCounters {
    pub stats: crate::tls_decrypt::DecryptStats,
    pub keys: crate::tls_decrypt::KeyTableStats,
    /// Bytes of records held for keys now.
    pub held_bytes: u64,
}

/// The cumulative fields of [`DecryptCounters`], in the order of
/// [`D_SERIES`].
const D_FIELDS: usize = 15;

/// (family, label value) of each cumulative decryption field.
const D_SERIES: [(&str, Option<&str>); D_FIELDS] = [
    (TLS_DECRYPT_FLOWS_WITH_KEYS, None),
    (TLS_DECRYPT_FLOWS_DECRYPTED, None),
    (TLS_DECRYPT_FAILURES, Some("missing_keys")),
    (TLS_DECRYPT_FAILURES, Some("auth_failure")),
    (TLS_DECRYPT_FAILURES, Some("unsupported")),
    (TLS_DECRYPT_FAILURES, Some("not_tls")),
    (TLS_DECRYPT_RECORDS, Some("decrypted")),
    (TLS_DECRYPT_RECORDS, Some("dropped")),
    (TLS_DECRYPT_RECORDS, Some("early_data_skipped")),
    (TLS_DECRYPT_RECORDS, Some("skipped")),
    (TLS_DECRYPT_RECORDS_HELD, None),
    (TLS_DECRYPT_PLAINTEXT_BYTES, None),
    (TLS_KEYLOG_LINES, Some("key")),
    (TLS_KEYLOG_LINES, Some("ignored")),
    (TLS_KEYLOG_LINES, Some("malformed")),
];

impl DecryptCounters {
    fn cumulative(&self) -> [u64; D_FIELDS] {
        let (s, k) = (&self.stats, &self.keys);
        [
            s.flows_with_keys,
            s.flows_decrypted,
            s.flows_missing_keys,
            s.auth_failures,
            s.unsupported,
            s.flows_not_tls,
            s.records_decrypted,
            s.records_dropped,
            s.early_data_skipped,
            s.records_skipped,
            s.records_held,
            s.plaintext_bytes,
            k.inserted,
            k.ignored_lines,
            k.malformed_lines,
        ]
    }
}

#[derive(Debug)]
struct DecryptSlot {
    counters: Mono<D_FIELDS>,
    evicted: Mono<1>,
    held_bytes: u64,
    keys: u64,
}

/// Latest cumulative values of one source plus the totals of its earlier
/// incarnations, per field: exported = base + last, never decreasing.
#[derive(Debug, Clone)]
struct Mono<const N: usize> {
    last: [u64; N],
    base: [u64; N],
}

impl<const N: usize> Mono<N> {
    fn new() -> Self {
        Self {
            last: [0; N],
            base: [0; N],
        }
    }

    fn update(&mut self, new: [u64; N]) {
        for ((l, b), n) in self.last.iter_mut().zip(self.base.iter_mut()).zip(new) {
            if n < *l {
                // The source restarted from zero: keep what it had counted.
                *b = b.saturating_add(*l);
            }
            *l = n;
        }
    }

    /// The source is gone or replaced: its totals stay, the next publish
    /// under the same key starts from zero.
    fn retire(&mut self) {
        for (l, b) in self.last.iter_mut().zip(self.base.iter_mut()) {
            *b = b.saturating_add(*l);
            *l = 0;
        }
    }

    fn value(&self, i: usize) -> u64 {
        match (self.base.get(i), self.last.get(i)) {
            (Some(b), Some(l)) => b.saturating_add(*l),
            _ => 0,
        }
    }
}

/// A flattened `Stats`: the counter table's values, then the decode
/// errors by kind.
const STAT_FIELDS: usize = COUNTERS.len() + DecodeError::ALL.len();

fn flatten(s: &Stats) -> [u64; STAT_FIELDS] {
    let mut v = [0u64; STAT_FIELDS];
    let values = s.values();
    let all = values.iter().chain(s.decode_errors.iter());
    for (slot, x) in v.iter_mut().zip(all) {
        *slot = *x;
    }
    v
}

#[derive(Debug)]
struct WorkerSlot {
    stats: Mono<STAT_FIELDS>,
    active_flows: u64,
}

const C_FIELDS: usize = 5;
const K_FIELDS: usize = 4;

#[derive(Debug)]
struct SinkSlot {
    counters: Mono<K_FIELDS>,
    queue_depth: u64,
    spool_bytes: u64,
}

#[derive(Debug, Default)]
struct Snapshots {
    workers: BTreeMap<usize, WorkerSlot>,
    interfaces: BTreeMap<String, Mono<C_FIELDS>>,
    sinks: BTreeMap<String, SinkSlot>,
    /// Only when decryption is configured.
    decryption: Option<DecryptSlot>,
}

/// Lock even if a publisher panicked while holding the lock: the snapshot
/// data stays consistent field by field, and metrics must keep working.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Cut a label value to `MAX_LABEL_BYTES` at a character boundary; an empty
/// value becomes `unknown` (Prometheus treats empty as absent).
fn label_value(s: &str) -> String {
    let mut end = s.len().min(MAX_LABEL_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let v = s.get(..end).unwrap_or_default();
    if v.is_empty() {
        "unknown".to_string()
    } else {
        v.to_string()
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One exported family of the snapshot collector.
struct Family {
    kind: Kind,
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
}

const SNAPSHOT_FAMILIES: &[Family] = &[
    Family {
        kind: Kind::Counter,
        name: PACKETS,
        help: "Frames received from the capture, per interface.",
        labels: &["interface"],
    },
    Family {
        kind: Kind::Counter,
        name: BYTES,
        help: "Bytes of frames received from the capture, per interface.",
        labels: &["interface"],
    },
    Family {
        kind: Kind::Counter,
        name: CAPTURE_DROPS,
        help: "Frames lost before analysis, per interface and cause (kernel, interface, queue_full).",
        labels: &["interface", "cause"],
    },
    Family {
        kind: Kind::Counter,
        name: PROCESSED_PACKETS,
        help: "Frames processed by the analysis workers.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: PROCESSED_BYTES,
        help: "Bytes of frames processed by the analysis workers.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: IP_PACKETS,
        help: "Decoded IP packets by IP version.",
        labels: &["version"],
    },
    Family {
        kind: Kind::Counter,
        name: TRANSPORT_PACKETS,
        help: "Decoded IP packets by transport protocol (tcp, udp, other).",
        labels: &["protocol"],
    },
    Family {
        kind: Kind::Counter,
        name: DECODE_ERRORS,
        help: "Frames that could not be decoded to TCP/UDP, by kind.",
        labels: &["kind"],
    },
    Family {
        kind: Kind::Gauge,
        name: FLOWS_ACTIVE,
        help: "Flows in the flow tables of all workers.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: FLOWS_CREATED,
        help: "Flows created.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: FLOWS_EVICTED,
        help: "Flows evicted from the flow table, by reason (idle, capacity).",
        labels: &["reason"],
    },
    Family {
        kind: Kind::Gauge,
        name: TLS_DECRYPT_WAITING,
        help: "TLS connections waiting for session keys, by state (open: retried when keys come; parked: ended, kept for their keys).",
        labels: &["state"],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_WAITS_FULL,
        help: "TLS connections that found the waiting or parked table full (decryption.max_waiting_connections, max_parked_connections).",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: IP_FRAGMENTS,
        help: "IPv4 and IPv6 fragments read (reassembled before inspection).",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: IP_FRAGMENT_ANOMALIES,
        help: "IP fragments that repeated or overlapped held bytes or had impossible lengths, by kind (duplicate, overlap, invalid).",
        labels: &["kind"],
    },
    Family {
        kind: Kind::Counter,
        name: IP_DATAGRAMS,
        help: "IP datagrams made of fragments, by result (reassembled, timeout, evicted).",
        labels: &["result"],
    },
    Family {
        kind: Kind::Counter,
        name: TCP_GAPS,
        help: "TCP byte ranges declared lost by reassembly.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TCP_STREAM_OVERFLOWS,
        help: "TCP out-of-order buffers that hit their cap.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TCP_STREAMS_SKIPPED,
        help: "New TCP streams not inspected because a worker already parsed its share of the maximum of concurrent streams.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TCP_STREAMS_SHED,
        help: "TCP streams no longer inspected because the buffer budget was exceeded while they held more than their share of it.",
        labels: &[],
    },
    Family {
        kind: Kind::Gauge,
        name: TCP_BUFFERED_BYTES,
        help: "Heap bytes held in the buffers of inspected TCP streams (reassembly, partial messages, kept bodies).",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: PARSER_MESSAGES,
        help: "Messages parsed, by protocol (dns, tls, quic, http, http2, sse, websocket).",
        labels: &["protocol"],
    },
    Family {
        kind: Kind::Counter,
        name: PARSER_ERRORS,
        help: "Parse errors, by protocol (dns, tls, quic, http, http2, sse, websocket).",
        labels: &["protocol"],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_ECH,
        help: "TLS and QUIC ClientHellos with Encrypted Client Hello.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: MCP_SESSIONS,
        help: "Flows confirmed as MCP sessions by protocol structure.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: HTTP2_CONNECTIONS,
        help: "Connections parsed as HTTP/2 (prior knowledge or an h2c upgrade).",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: HTTP2_STREAMS,
        help: "HTTP/2 streams opened by clients or promised by servers.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: HTTP2_FRAMES,
        help: "HTTP/2 frames read, by type (data, headers, …, unknown).",
        labels: &["type"],
    },
    Family {
        kind: Kind::Counter,
        name: HTTP2_LIMITS,
        help: "HTTP/2 bounds reached, by bound (concurrent_streams, frame_size, header_block, hpack_table, total_streams, rapid_reset).",
        labels: &["limit"],
    },
    Family {
        kind: Kind::Counter,
        name: DNS_CACHE_EVICTIONS,
        help: "DNS answer cache entries evicted before expiry because the cache was full.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_FLOWS_WITH_KEYS,
        help: "TLS connections whose session keys were found in the key table.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_FLOWS_DECRYPTED,
        help: "TLS connections with at least one record decrypted.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_FAILURES,
        help: "TLS connections whose decryption stopped, by reason (missing_keys, auth_failure, unsupported, not_tls).",
        labels: &["reason"],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_RECORDS,
        help: "TLS records by result (decrypted, dropped while waiting for keys, early_data_skipped, skipped: passed over undecrypted because their plaintext would be dropped unseen).",
        labels: &["result"],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_RECORDS_HELD,
        help: "TLS records that waited for their keys (then decrypted or dropped).",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_DECRYPT_PLAINTEXT_BYTES,
        help: "Bytes of TLS application data decrypted.",
        labels: &[],
    },
    Family {
        kind: Kind::Gauge,
        name: TLS_DECRYPT_HELD_BYTES,
        help: "Bytes of TLS records held now while waiting for their keys.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_KEYLOG_LINES,
        help: "Key log lines read, by result (key, ignored, malformed).",
        labels: &["result"],
    },
    Family {
        kind: Kind::Gauge,
        name: TLS_KEYS,
        help: "Client randoms whose session secrets are in the key table.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: TLS_KEYS_EVICTED,
        help: "Key table entries evicted (oldest first) to stay within decryption.max_session_keys.",
        labels: &[],
    },
    Family {
        kind: Kind::Counter,
        name: SINK_DELIVERIES,
        help: "Findings delivered, per sink.",
        labels: &["sink"],
    },
    Family {
        kind: Kind::Counter,
        name: SINK_RETRIES,
        help: "Delivery attempts retried, per sink.",
        labels: &["sink"],
    },
    Family {
        kind: Kind::Counter,
        name: SINK_FAILURES,
        help: "Delivery attempts that failed, per sink.",
        labels: &["sink"],
    },
    Family {
        kind: Kind::Counter,
        name: SINK_DROPPED,
        help: "Findings given up on, per sink.",
        labels: &["sink"],
    },
    Family {
        kind: Kind::Gauge,
        name: SINK_QUEUE_DEPTH,
        help: "Findings waiting in the in-memory queue, per sink.",
        labels: &["sink"],
    },
    Family {
        kind: Kind::Gauge,
        name: SINK_SPOOL_BYTES,
        help: "Bytes in the on-disk spool, per sink.",
        labels: &["sink"],
    },
];

/// Computes the snapshot families at scrape time.
struct SnapshotCollector {
    state: Arc<Mutex<Snapshots>>,
    descs: Vec<Desc>,
}

impl SnapshotCollector {
    fn new(state: Arc<Mutex<Snapshots>>) -> prometheus::Result<Self> {
        let descs = SNAPSHOT_FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.to_string(),
                    f.help.to_string(),
                    f.labels.iter().map(|l| l.to_string()).collect(),
                    Default::default(),
                )
            })
            .collect::<prometheus::Result<Vec<_>>>()?;
        Ok(Self { state, descs })
    }

    /// (family name, label values, value) of every series, from one
    /// consistent view of the snapshots.
    fn samples(&self) -> Vec<(&'static str, Vec<String>, u64)> {
        let st = lock(&self.state);
        let mut out: Vec<(&'static str, Vec<String>, u64)> = Vec::new();
        let mut total = [0u64; STAT_FIELDS];
        let mut active = 0u64;
        for w in st.workers.values() {
            for (i, t) in total.iter_mut().enumerate() {
                *t = t.saturating_add(w.stats.value(i));
            }
            active = active.saturating_add(w.active_flows);
        }
        let t = |i: usize| total.get(i).copied().unwrap_or(0);
        let one = |name, v| (name, Vec::new(), v);
        let lab = |name, l: &str, v| (name, vec![l.to_string()], v);
        // Every exported counter of the table; series of one family and
        // label are summed (a counter vector adds what it is given twice).
        for (i, def) in COUNTERS.iter().enumerate() {
            match def.metric {
                Some((family, None)) => out.push(one(family, t(i))),
                Some((family, Some(label))) => out.push(lab(family, label, t(i))),
                None => {}
            }
        }
        for (k, e) in DecodeError::ALL.iter().enumerate() {
            out.push(lab(DECODE_ERRORS, e.as_str(), t(COUNTERS.len() + k)));
        }
        out.push(one(FLOWS_ACTIVE, active));

        for (iface, c) in &st.interfaces {
            out.push(lab(PACKETS, iface, c.value(0)));
            out.push(lab(BYTES, iface, c.value(1)));
            for (k, cause) in ["kernel", "interface", "queue_full"].iter().enumerate() {
                out.push((
                    CAPTURE_DROPS,
                    vec![iface.clone(), cause.to_string()],
                    c.value(2 + k),
                ));
            }
        }
        if let Some(d) = &st.decryption {
            for (i, (family, label)) in D_SERIES.iter().enumerate() {
                let v = d.counters.value(i);
                out.push(match label {
                    Some(l) => lab(family, l, v),
                    None => one(family, v),
                });
            }
            out.push(one(TLS_KEYS_EVICTED, d.evicted.value(0)));
            out.push(one(TLS_KEYS, d.keys));
            out.push(one(TLS_DECRYPT_HELD_BYTES, d.held_bytes));
        }
        for (sink, s) in &st.sinks {
            out.push(lab(SINK_DELIVERIES, sink, s.counters.value(0)));
            out.push(lab(SINK_RETRIES, sink, s.counters.value(1)));
            out.push(lab(SINK_FAILURES, sink, s.counters.value(2)));
            out.push(lab(SINK_DROPPED, sink, s.counters.value(3)));
            out.push(lab(SINK_QUEUE_DEPTH, sink, s.queue_depth));
            out.push(lab(SINK_SPOOL_BYTES, sink, s.spool_bytes));
        }
        out
    }
}

impl Collector for SnapshotCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let samples = self.samples();
        let mut out = Vec::with_capacity(SNAPSHOT_FAMILIES.len());
        // Fresh metric objects per scrape (a few dozen series, once per scrape
        // interval): the library builds well-formed families from them.
        for f in SNAPSHOT_FAMILIES {
            let mine = samples.iter().filter(|s| s.0 == f.name);
            let opts = Opts::new(f.name, f.help);
            let fams = match f.kind {
                Kind::Counter => IntCounterVec::new(opts, f.labels).map(|v| {
                    for (_, l, x) in mine {
                        let l: Vec<&str> = l.iter().map(String::as_str).collect();
                        if let Ok(c) = v.get_metric_with_label_values(&l) {
                            c.inc_by(*x);
                        }
                    }
                    v.collect()
                }),
                Kind::Gauge => IntGaugeVec::new(opts, f.labels).map(|v| {
                    for (_, l, x) in mine {
                        let l: Vec<&str> = l.iter().map(String::as_str).collect();
                        if let Ok(g) = v.get_metric_with_label_values(&l) {
                            g.set(i64::try_from(*x).unwrap_or(i64::MAX));
                        }
                    }
                    v.collect()
                }),
            };
            out.extend(fams.unwrap_or_default());
        }
        out
    }
}

/// What happened to a live capture handle (see [`Metrics::capture_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureEvent {
    /// Opened at start-up.
    Opened,
    /// The handle failed: the interface went down or disappeared.
    Failed,
    /// A reopen attempt succeeded; capture resumes.
    Reopened,
    /// A reopen attempt failed; another follows after a backoff.
    ReopenFailed,
}

// ---------------------------------------------------------------------------

fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Shadow => "shadow",
        Verdict::Sanctioned => "sanctioned",
    }
}

fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
    }
}

/// Rule ids are a closed set; anything else is `other`.
fn rule_label(id: &str) -> &'static str {
    rules::ALL
        .iter()
        .find(|r| r.id == id)
        .map_or("other", |r| r.id)
}

/// Every metric of the sensor and the registry that exports them.
pub struct Metrics {
    registry: Registry,
    declared: Vec<String>,
    snapshots: Arc<Mutex<Snapshots>>,
    vendors: Mutex<FxHashSet<String>>,
    /// Interfaces with capture-state series (capped like the snapshots).
    capture_interfaces: Mutex<FxHashSet<String>>,
    capture_up: IntGaugeVec,
    capture_failures: IntCounterVec,
    capture_reopens: IntCounterVec,
    workers: IntGauge,
    findings: IntCounterVec,
    findings_suppressed: IntCounterVec,
    findings_dropped: IntCounter,
    signatures_info: IntGaugeVec,
    signature_servers: IntGauge,
    signature_reloads: IntCounterVec,
    signature_last_reload: Gauge,
    packet_seconds: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("declared", &self.declared.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Build the registry with every metric. `commit` is the source revision
    /// shown in `shadowmcp_build_info` (e.g. from the build environment).
    pub fn new() -> prometheus::Result<Self> {
        Self::with_build(
            env!("CARGO_PKG_VERSION"),
            option_env!("SHADOWMCP_GIT_COMMIT").unwrap_or("unknown"),
        )
    }

    pub fn with_build(version: &str, commit: &str) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let mut declared = Vec::new();
        let mut reg = |c: Box<dyn Collector>| -> prometheus::Result<()> {
            declared.extend(c.desc().iter().map(|d| d.fq_name.clone()));
            registry.register(c)
        };

        let build_info = IntGaugeVec::new(
            Opts::new(
                BUILD_INFO,
                "Always 1; the labels name the running build (version, commit).",
            ),
            &["version", "commit"],
        )?;
        build_info
            .with_label_values(&[&label_value(version), &label_value(commit)])
            .set(1);
        reg(Box::new(build_info))?;

        let workers = IntGauge::new(WORKERS, "Analysis worker threads running.")?;
        reg(Box::new(workers.clone()))?;

        let snapshots = Arc::new(Mutex::new(Snapshots::default()));
        reg(Box::new(SnapshotCollector::new(snapshots.clone())?))?;

        let capture_up = IntGaugeVec::new(
            Opts::new(
                CAPTURE_UP,
                "1 while the interface's capture handle is open, 0 while it is down and being reopened.",
            ),
            &["interface"],
        )?;
        reg(Box::new(capture_up.clone()))?;
        let capture_failures = IntCounterVec::new(
            Opts::new(
                CAPTURE_FAILURES,
                "Capture handles that failed (interface down or gone), per interface.",
            ),
            &["interface"],
        )?;
        reg(Box::new(capture_failures.clone()))?;
        let capture_reopens = IntCounterVec::new(
            Opts::new(
                CAPTURE_REOPENS,
                "Attempts to reopen a failed capture, per interface and result (success, failure).",
            ),
            &["interface", "result"],
        )?;
        reg(Box::new(capture_reopens.clone()))?;

        let findings = IntCounterVec::new(
            Opts::new(
                FINDINGS,
                "Findings reported, by verdict, severity, rule id and vendor (vendor from the signature list, or none / other).",
            ),
            &["verdict", "severity", "rule", "vendor"],
        )?;
        reg(Box::new(findings.clone()))?;
        let findings_suppressed = IntCounterVec::new(
            Opts::new(
                FINDINGS_SUPPRESSED,
                "Findings not reported because of configuration (minimum confidence, rule suppression), by rule id.",
            ),
            &["rule"],
        )?;
        reg(Box::new(findings_suppressed.clone()))?;
        let findings_dropped = IntCounter::new(
            FINDINGS_DROPPED,
            "Findings lost because the finding table was full.",
        )?;
        reg(Box::new(findings_dropped.clone()))?;

        let signatures_info = IntGaugeVec::new(
            Opts::new(
                SIGNATURES_INFO,
                "Always 1; the version label names the signature set in use.",
            ),
            &["version"],
        )?;
        reg(Box::new(signatures_info.clone()))?;
        let signature_servers = IntGauge::new(
            SIGNATURE_SERVERS,
            "Known MCP servers in the signature set in use.",
        )?;
        reg(Box::new(signature_servers.clone()))?;
        let signature_reloads = IntCounterVec::new(
            Opts::new(
                SIGNATURE_RELOADS,
                "Signature reloads, by result (success, failure).",
            ),
            &["result"],
        )?;
        for r in ["success", "failure"] {
            signature_reloads.with_label_values(&[r]);
        }
        reg(Box::new(signature_reloads.clone()))?;
        let signature_last_reload = Gauge::new(
            SIGNATURE_LAST_RELOAD,
            "Unix time of the last successful signature load or reload.",
        )?;
        reg(Box::new(signature_last_reload.clone()))?;

        let packet_seconds = Histogram::with_opts(
            HistogramOpts::new(
                PACKET_SECONDS,
                "Time to process one packet in a worker: the mean over each batch of packets (up to 256).",
            )
            .buckets(PACKET_SECONDS_BUCKETS.to_vec()),
        )?;
        reg(Box::new(packet_seconds.clone()))?;

        // The standard process_* families (resident memory, CPU seconds,
        // file descriptors, threads) read from /proc/self at each scrape.
        reg(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;

        Ok(Self {
            registry,
            declared,
            snapshots,
            vendors: Mutex::new(FxHashSet::default()),
            capture_interfaces: Mutex::new(FxHashSet::default()),
            capture_up,
            capture_failures,
            capture_reopens,
            workers,
            findings,
            findings_suppressed,
            findings_dropped,
            signatures_info,
            signature_servers,
            signature_reloads,
            signature_last_reload,
            packet_seconds,
        })
    }

    /// The registry, to add process metrics or encode elsewhere.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Names of every declared metric family (histograms by base name).
    pub fn declared_names(&self) -> &[String] {
        &self.declared
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec only fails on malformed families, which the
        // library builds itself; on error the partial output is still served.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }

    // --- snapshots -------------------------------------------------------

    /// Publish the cumulative counters of worker `worker_id`'s engine, and
    /// the size of its flow table. Call every second or so.
    pub fn publish_worker(&self, worker_id: usize, stats: &Stats, active_flows: usize) {
        self.publish_worker_inner(worker_id, stats, Some(active_flows as u64));
    }

    /// Publish counters only; the worker's flow count stays as last published.
    pub fn publish_worker_stats(&self, worker_id: usize, stats: &Stats) {
        self.publish_worker_inner(worker_id, stats, None);
    }

    fn publish_worker_inner(&self, worker_id: usize, stats: &Stats, active_flows: Option<u64>) {
        // Flatten outside the lock: scrapes wait on it.
        let values = flatten(stats);
        let mut st = lock(&self.snapshots);
        let len = st.workers.len();
        let slot = match st.workers.entry(worker_id) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                if len >= MAX_WORKERS {
                    return;
                }
                e.insert(WorkerSlot {
                    stats: Mono::new(),
                    active_flows: 0,
                })
            }
        };
        slot.stats.update(values);
        if let Some(a) = active_flows {
            slot.active_flows = a;
        }
    }

    /// Publish the TLS decryption counters (only when decryption is
    /// configured: the families are absent otherwise).
    pub fn publish_decryption(&self, c: DecryptCounters) {
        let values = c.cumulative();
        let mut st = lock(&self.snapshots);
        let slot = st.decryption.get_or_insert_with(|| DecryptSlot {
            counters: Mono::new(),
            evicted: Mono::new(),
            held_bytes: 0,
            keys: 0,
        });
        slot.counters.update(values);
        slot.evicted.update([c.keys.evicted]);
        slot.held_bytes = c.held_bytes;
        slot.keys = c.keys.entries;
    }

    /// The worker's engine was replaced or stopped: its counts stay in the
    /// totals, its flows leave the gauge, and the next publish under this id
    /// starts from zero.
    pub fn retire_worker(&self, worker_id: usize) {
        if let Some(w) = lock(&self.snapshots).workers.get_mut(&worker_id) {
            w.stats.retire();
            w.active_flows = 0;
        }
    }

    pub fn set_workers(&self, n: usize) {
        self.workers.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Publish the cumulative counters of one capture handle.
    pub fn publish_capture_stats(&self, interface: &str, c: CaptureCounters) {
        let key = label_value(interface);
        let mut st = lock(&self.snapshots);
        if !st.interfaces.contains_key(&key) && st.interfaces.len() >= MAX_INTERFACES {
            return;
        }
        st.interfaces.entry(key).or_insert_with(Mono::new).update([
            c.packets,
            c.bytes,
            c.kernel_drops,
            c.interface_drops,
            c.queue_full_drops,
        ]);
    }

    /// Publish the counters of one sink (by its configured name).
    pub fn publish_sink(&self, name: &str, c: SinkCounters) {
        let key = label_value(name);
        let mut st = lock(&self.snapshots);
        if !st.sinks.contains_key(&key) && st.sinks.len() >= MAX_SINKS {
            return;
        }
        let slot = st.sinks.entry(key).or_insert_with(|| SinkSlot {
            counters: Mono::new(),
            queue_depth: 0,
            spool_bytes: 0,
        });
        slot.counters
            .update([c.delivered, c.retries, c.failures, c.dropped]);
        slot.queue_depth = c.queue_depth;
        slot.spool_bytes = c.spool_bytes;
    }

    // --- events ----------------------------------------------------------

    /// A live capture handle opened, failed or was reopened. Interfaces
    /// beyond `MAX_INTERFACES` are not exported.
    pub fn capture_event(&self, interface: &str, event: CaptureEvent) {
        let iface = label_value(interface);
        {
            let mut known = lock(&self.capture_interfaces);
            if !known.contains(&iface) {
                if known.len() >= MAX_INTERFACES {
                    return;
                }
                known.insert(iface.clone());
                // Both results exist from the start, so rate() sees the first.
                for r in ["success", "failure"] {
                    self.capture_reopens.with_label_values(&[&iface, r]);
                }
                self.capture_failures.with_label_values(&[&iface]);
            }
        }
        let up = self.capture_up.with_label_values(&[&iface]);
        match event {
            CaptureEvent::Opened => up.set(1),
            CaptureEvent::Failed => {
                up.set(0);
                self.capture_failures.with_label_values(&[&iface]).inc();
            }
            CaptureEvent::Reopened => {
                up.set(1);
                self.capture_reopens
                    .with_label_values(&[&iface, "success"])
                    .inc();
            }
            CaptureEvent::ReopenFailed => {
                self.capture_reopens
                    .with_label_values(&[&iface, "failure"])
                    .inc();
            }
        }
    }

    /// Count one reported finding. `vendor` comes from the signature list;
    /// after `MAX_VENDOR_LABELS` distinct vendors the rest count as `other`.
    pub fn finding(
        &self,
        verdict: Verdict,
        severity: Severity,
        rule_id: &str,
        vendor: Option<&str>,
    ) {
        let vendor = match vendor {
            None => "none".to_string(),
            Some(v) => {
                let v = label_value(v);
                let mut seen = lock(&self.vendors);
                if seen.contains(&v) {
                    v
                } else if v == "none" || v == "other" || seen.len() >= MAX_VENDOR_LABELS {
                    // Reserved values are not vendors; full set folds into other.
                    "other".to_string()
                } else {
                    seen.insert(v.clone());
                    v
                }
            }
        };
        self.findings
            .with_label_values(&[
                verdict_label(verdict),
                severity_label(severity),
                rule_label(rule_id),
                &vendor,
            ])
            .inc();
    }

    /// Count a finding record as written to sinks.
    pub fn record_finding(&self, r: &FindingRecord) {
        self.finding(r.verdict, r.severity, r.rule.id, r.server.vendor.as_deref());
    }

    pub fn finding_suppressed(&self, rule_id: &str) {
        self.findings_suppressed
            .with_label_values(&[rule_label(rule_id)])
            .inc();
    }

    pub fn findings_dropped(&self, n: u64) {
        self.findings_dropped.inc_by(n);
    }

    /// A signature set is in use (at start or after a successful reload).
    pub fn signatures_loaded(&self, version: &str, servers: usize) {
        self.signatures_info.reset();
        self.signatures_info
            .with_label_values(&[&label_value(version)])
            .set(1);
        self.signature_servers
            .set(i64::try_from(servers).unwrap_or(i64::MAX));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.signature_last_reload.set(now);
    }

    /// Result of a reload attempt (on failure the old set stays in use).
    pub fn reload(&self, success: bool) {
        let r = if success { "success" } else { "failure" };
        self.signature_reloads.with_label_values(&[r]).inc();
    }

    /// One sampled per-packet processing time, in seconds.
    pub fn observe_packet_seconds(&self, seconds: f64) {
        if seconds.is_finite() && seconds >= 0.0 {
            self.packet_seconds.observe(seconds);
        }
    }
}

#[cfg(test)]
mod tests;
