use super::*;
use crate::findings::aggregate::{Severity, Verdict};
use std::collections::BTreeSet;

/// Parse the text exposition into (name, sorted labels, value) samples.
/// Handles the escapes the encoder emits (`\\`, `\"`, `\n`).
type Sample = (String, Vec<(String, String)>, f64);

fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = value.parse().expect("numeric value");
        let (name, mut labels) = match series.split_once('{') {
            None => (series.to_string(), Vec::new()),
            Some((n, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = Vec::new();
                let mut chars = body.chars().peekable();
                while chars.peek().is_some() {
                    let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                    assert_eq!(chars.next(), Some('"'));
                    let mut v = String::new();
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some('n') => v.push('\n'),
                                Some(o) => v.push(o),
                                None => panic!("dangling escape"),
                            },
                            '"' => break,
                            o => v.push(o),
                        }
                    }
                    if chars.peek() == Some(&',') {
                        chars.next();
                    }
                    labels.push((key, v));
                }
                (n.to_string(), labels)
            }
        };
        labels.sort();
        out.push((name, labels, value));
    }
    out
}

fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let text = String::from_utf8(m.render()).expect("utf-8");
    let mut want: Vec<(String, String)> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    want.sort();
    parse(&text)
        .into_iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| v)
}

fn series_count(m: &Metrics, name: &str) -> usize {
    let text = String::from_utf8(m.render()).expect("utf-8");
    parse(&text).iter().filter(|(n, _, _)| n == name).count()
}

fn stats(packets: u64) -> Stats {
    let mut s = Stats {
        packets,
        bytes: packets * 100,
        ipv4: packets,
        tcp: packets / 2,
        udp: packets - packets / 2,
        flows_created: packets / 10,
        flows_evicted_idle: 1,
        flows_evicted_capacity: 2,
        dns_messages: 3,
        dns_errors: 1,
        http_requests: 5,
        http_responses: 4,
        http_errors: 2,
        sse_events: 7,
        mcp_sessions_confirmed: 1,
        ..Stats::default()
    };
    s.decode_error(DecodeError::Malformed);
    s
}

#[test]
fn names_follow_conventions_and_are_unique() {
    let m = Metrics::new().expect("registry builds");
    let names = m.declared_names();
    let set: BTreeSet<&String> = names.iter().collect();
    assert_eq!(set.len(), names.len(), "duplicate name in {names:?}");
    for n in names {
        // The standard process collector's families keep their names.
        assert!(
            n.starts_with("shadowmcp_") || n.starts_with("process_"),
            "{n}"
        );
        assert!(
            n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{n}"
        );
    }
    // Counters, and only counters, end in _total.
    let text = String::from_utf8(m.render()).expect("utf-8");
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut it = line.split(' ').skip(2);
        let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
        assert_eq!(name.ends_with("_total"), kind == "counter", "{line}");
    }
}

#[test]
fn workers_are_summed() {
    let m = Metrics::new().expect("registry builds");
    m.publish_worker(0, &stats(100), 7);
    m.publish_worker(1, &stats(50), 3);
    m.publish_worker(5, &stats(1), 0);
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(151.0));
    assert_eq!(value(&m, PROCESSED_BYTES, &[]), Some(15100.0));
    assert_eq!(value(&m, FLOWS_ACTIVE, &[]), Some(10.0));
    assert_eq!(value(&m, FLOWS_CREATED, &[]), Some(15.0));
    assert_eq!(value(&m, FLOWS_EVICTED, &[("reason", "idle")]), Some(3.0));
    assert_eq!(
        value(&m, FLOWS_EVICTED, &[("reason", "capacity")]),
        Some(6.0)
    );
    assert_eq!(value(&m, IP_PACKETS, &[("version", "4")]), Some(151.0));
    assert_eq!(value(&m, IP_PACKETS, &[("version", "6")]), Some(0.0));
    assert_eq!(
        value(&m, TRANSPORT_PACKETS, &[("protocol", "udp")]),
        Some(76.0)
    );
    assert_eq!(
        value(&m, DECODE_ERRORS, &[("kind", "malformed")]),
        Some(3.0)
    );
    assert_eq!(value(&m, DECODE_ERRORS, &[("kind", "not_ip")]), Some(0.0));
    // http counts requests and responses.
    assert_eq!(
        value(&m, PARSER_MESSAGES, &[("protocol", "http")]),
        Some(27.0)
    );
    assert_eq!(
        value(&m, PARSER_MESSAGES, &[("protocol", "sse")]),
        Some(21.0)
    );
    assert_eq!(value(&m, PARSER_ERRORS, &[("protocol", "dns")]), Some(3.0));
    assert_eq!(value(&m, PARSER_ERRORS, &[("protocol", "sse")]), Some(0.0));
    assert_eq!(value(&m, MCP_SESSIONS, &[]), Some(3.0));
    // Every protocol has both series.
    assert_eq!(series_count(&m, PARSER_MESSAGES), PROTOCOLS.len());
    assert_eq!(series_count(&m, PARSER_ERRORS), PROTOCOLS.len());

    // A later snapshot replaces the earlier one of the same worker.
    m.publish_worker(1, &stats(60), 0);
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(161.0));
    assert_eq!(value(&m, FLOWS_ACTIVE, &[]), Some(7.0));
    // publish_worker_stats keeps the flow gauge.
    m.publish_worker_stats(0, &stats(120));
    assert_eq!(value(&m, FLOWS_ACTIVE, &[]), Some(7.0));
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(181.0));
}

#[test]
fn engine_counters_never_decrease() {
    let m = Metrics::new().expect("registry builds");
    m.publish_worker(0, &stats(10), 1);
    // Engine restarted without retire: the old total is kept.
    m.publish_worker(0, &stats(4), 1);
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(14.0));
    // Explicit retire: counts stay, flows leave, next publish starts at zero.
    m.retire_worker(0);
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(14.0));
    assert_eq!(value(&m, FLOWS_ACTIVE, &[]), Some(0.0));
    m.publish_worker(0, &stats(30), 2);
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(44.0));
    // Huge values saturate instead of overflowing.
    m.publish_worker(1, &stats(u64::MAX / 100), 0);
    m.publish_worker(2, &stats(u64::MAX / 100), 0);
    let b = value(&m, PROCESSED_BYTES, &[]).expect("series");
    assert!(b >= (u64::MAX / 2) as f64, "{b}");
}

#[test]
fn concurrent_workers_and_scrapes_stay_monotonic() {
    let m = Arc::new(Metrics::new().expect("registry builds"));
    const WORKERS: usize = 4;
    const STEPS: u64 = 300;
    let publishers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let m = m.clone();
            std::thread::spawn(move || {
                for i in 1..=STEPS {
                    let s = Stats {
                        packets: i,
                        ..Stats::default()
                    };
                    m.publish_worker(w, &s, 1);
                }
            })
        })
        .collect();
    let scraper = {
        let m = m.clone();
        std::thread::spawn(move || {
            let mut last = 0.0;
            for _ in 0..50 {
                let v = value(&m, PROCESSED_PACKETS, &[]).expect("series");
                assert!(v >= last, "counter went back from {last} to {v}");
                last = v;
            }
        })
    };
    for p in publishers {
        p.join().expect("publisher");
    }
    scraper.join().expect("scraper");
    assert_eq!(
        value(&m, PROCESSED_PACKETS, &[]),
        Some((WORKERS as u64 * STEPS) as f64)
    );
    assert_eq!(value(&m, FLOWS_ACTIVE, &[]), Some(WORKERS as f64));
}

#[test]
fn worker_slots_are_capped() {
    let m = Metrics::new().expect("registry builds");
    for w in 0..MAX_WORKERS + 10 {
        m.publish_worker(w, &stats(1), 1);
    }
    assert_eq!(value(&m, PROCESSED_PACKETS, &[]), Some(MAX_WORKERS as f64));
}

#[test]
fn capture_counters_per_interface() {
    let m = Metrics::new().expect("registry builds");
    let c = CaptureCounters {
        packets: 1000,
        bytes: 64_000,
        kernel_drops: 5,
        interface_drops: 2,
        queue_full_drops: 9,
    };
    m.publish_capture_stats("eth0", c);
    m.publish_capture_stats(
        "eth1",
        CaptureCounters {
            packets: 1,
            ..Default::default()
        },
    );
    assert_eq!(value(&m, PACKETS, &[("interface", "eth0")]), Some(1000.0));
    assert_eq!(value(&m, PACKETS, &[("interface", "eth1")]), Some(1.0));
    assert_eq!(value(&m, BYTES, &[("interface", "eth0")]), Some(64000.0));
    for (cause, v) in [("kernel", 5.0), ("interface", 2.0), ("queue_full", 9.0)] {
        assert_eq!(
            value(
                &m,
                CAPTURE_DROPS,
                &[("interface", "eth0"), ("cause", cause)]
            ),
            Some(v),
            "{cause}"
        );
    }
    // Reopened capture: counters restart from zero, exported totals do not.
    m.publish_capture_stats(
        "eth0",
        CaptureCounters {
            packets: 10,
            bytes: 640,
            kernel_drops: 6,
            ..Default::default()
        },
    );
    assert_eq!(value(&m, PACKETS, &[("interface", "eth0")]), Some(1010.0));
    assert_eq!(
        value(
            &m,
            CAPTURE_DROPS,
            &[("interface", "eth0"), ("cause", "kernel")]
        ),
        Some(6.0)
    );
    assert_eq!(
        value(
            &m,
            CAPTURE_DROPS,
            &[("interface", "eth0"), ("cause", "queue_full")]
        ),
        Some(9.0)
    );
    // Capped interface count.
    for i in 0..MAX_INTERFACES + 5 {
        m.publish_capture_stats(&format!("if{i}"), c);
    }
    assert_eq!(series_count(&m, PACKETS), MAX_INTERFACES);
}

#[test]
fn sink_counters_and_levels() {
    let m = Metrics::new().expect("registry builds");
    let s = SinkCounters {
        delivered: 10,
        retries: 3,
        failures: 4,
        dropped: 1,
        queue_depth: 50,
        spool_bytes: 4096,
    };
    m.publish_sink("syslog", s);
    m.publish_sink(
        "syslog",
        SinkCounters {
            delivered: 12,
            queue_depth: 2,
            spool_bytes: 0,
            ..s
        },
    );
    let l = [("sink", "syslog")];
    assert_eq!(value(&m, SINK_DELIVERIES, &l), Some(12.0));
    assert_eq!(value(&m, SINK_RETRIES, &l), Some(3.0));
    assert_eq!(value(&m, SINK_FAILURES, &l), Some(4.0));
    assert_eq!(value(&m, SINK_DROPPED, &l), Some(1.0));
    // Levels follow the latest value down.
    assert_eq!(value(&m, SINK_QUEUE_DEPTH, &l), Some(2.0));
    assert_eq!(value(&m, SINK_SPOOL_BYTES, &l), Some(0.0));
    for i in 0..MAX_SINKS + 3 {
        m.publish_sink(&format!("s{i}"), s);
    }
    assert_eq!(series_count(&m, SINK_DELIVERIES), MAX_SINKS);
    // Huge levels clamp into the gauge range instead of wrapping negative.
    m.publish_sink(
        "syslog",
        SinkCounters {
            spool_bytes: u64::MAX,
            ..s
        },
    );
    assert!(value(&m, SINK_SPOOL_BYTES, &l).expect("series") > 0.0);
}

#[test]
fn findings_labels_and_vendor_cap() {
    let m = Metrics::new().expect("registry builds");
    m.finding(Verdict::Shadow, Severity::High, "SMCP-001", None);
    m.finding(Verdict::Shadow, Severity::High, "SMCP-001", None);
    m.finding(
        Verdict::Sanctioned,
        Severity::Info,
        "SMCP-010",
        Some("Notion"),
    );
    m.finding(Verdict::Shadow, Severity::Low, "not-a-rule", Some("none"));
    assert_eq!(
        value(
            &m,
            FINDINGS,
            &[
                ("verdict", "shadow"),
                ("severity", "high"),
                ("rule", "SMCP-001"),
                ("vendor", "none")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(
            &m,
            FINDINGS,
            &[
                ("verdict", "sanctioned"),
                ("severity", "info"),
                ("rule", "SMCP-010"),
                ("vendor", "Notion")
            ]
        ),
        Some(1.0)
    );
    // Unknown rule ids and the reserved vendor word fold into "other".
    assert_eq!(
        value(
            &m,
            FINDINGS,
            &[
                ("verdict", "shadow"),
                ("severity", "low"),
                ("rule", "other"),
                ("vendor", "other")
            ]
        ),
        Some(1.0)
    );

    let m = Metrics::new().expect("registry builds");
    let n = MAX_VENDOR_LABELS + 50;
    for i in 0..n {
        m.finding(
            Verdict::Shadow,
            Severity::Medium,
            "SMCP-010",
            Some(&format!("vendor-{i}")),
        );
    }
    // A vendor seen before the cap keeps its own series afterwards.
    m.finding(
        Verdict::Shadow,
        Severity::Medium,
        "SMCP-010",
        Some("vendor-0"),
    );
    let text = String::from_utf8(m.render()).expect("utf-8");
    let samples: Vec<_> = parse(&text)
        .into_iter()
        .filter(|(name, _, _)| name == FINDINGS)
        .collect();
    assert_eq!(samples.len(), MAX_VENDOR_LABELS + 1);
    let total: f64 = samples.iter().map(|s| s.2).sum();
    assert_eq!(total, (n + 1) as f64);
    let vendor = |v: &str| {
        samples
            .iter()
            .find(|s| s.1.iter().any(|(k, x)| k == "vendor" && x == v))
            .map(|s| s.2)
    };
    assert_eq!(vendor("other"), Some(50.0));
    assert_eq!(vendor("vendor-0"), Some(2.0));
}

#[test]
fn label_values_are_cut_at_char_boundaries() {
    assert_eq!(label_value(""), "unknown");
    assert_eq!(label_value("eth0"), "eth0");
    let long = "é".repeat(MAX_LABEL_BYTES); // 2 bytes each
    let cut = label_value(&long);
    assert!(cut.len() <= MAX_LABEL_BYTES);
    assert_eq!(cut.chars().count(), MAX_LABEL_BYTES / 2);
    let odd = format!("a{}", "€".repeat(40)); // 1 + 3n bytes
    let cut = label_value(&odd);
    assert!(cut.len() <= MAX_LABEL_BYTES && odd.starts_with(&cut));
    // Hostile characters survive escaping in the exposition.
    let m = Metrics::new().expect("registry builds");
    let evil = "a\"b\\c\nd} 1\n# TYPE x counter";
    m.publish_sink(evil, SinkCounters::default());
    assert_eq!(
        value(&m, SINK_DELIVERIES, &[("sink", &label_value(evil))]),
        Some(0.0)
    );
}

#[test]
fn signatures_and_reloads() {
    let m = Metrics::new().expect("registry builds");
    assert_eq!(
        value(&m, SIGNATURE_RELOADS, &[("result", "failure")]),
        Some(0.0)
    );
    m.signatures_loaded("2026.05.1", 150);
    m.reload(false);
    m.signatures_loaded("2026.06.0", 160);
    m.reload(true);
    assert_eq!(series_count(&m, SIGNATURES_INFO), 1);
    assert_eq!(
        value(&m, SIGNATURES_INFO, &[("version", "2026.06.0")]),
        Some(1.0)
    );
    assert_eq!(value(&m, SIGNATURE_SERVERS, &[]), Some(160.0));
    assert_eq!(
        value(&m, SIGNATURE_RELOADS, &[("result", "success")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, SIGNATURE_RELOADS, &[("result", "failure")]),
        Some(1.0)
    );
    assert!(value(&m, SIGNATURE_LAST_RELOAD, &[]).expect("series") > 1.6e9);
}

#[test]
fn packet_histogram_buckets() {
    let m = Metrics::new().expect("registry builds");
    for s in [5e-8, 3e-7, 2e-6, 0.002, f64::NAN, -1.0, f64::INFINITY] {
        m.observe_packet_seconds(s);
    }
    let count = format!("{PACKET_SECONDS}_count");
    let bucket = format!("{PACKET_SECONDS}_bucket");
    assert_eq!(value(&m, &count, &[]), Some(4.0));
    assert_eq!(value(&m, &bucket, &[("le", "0.0000001")]), Some(1.0));
    assert_eq!(value(&m, &bucket, &[("le", "0.000001")]), Some(2.0));
    assert_eq!(value(&m, &bucket, &[("le", "0.001")]), Some(3.0));
    assert_eq!(value(&m, &bucket, &[("le", "+Inf")]), Some(4.0));
}

/// Populate every source so that every family has at least one series.
fn populated() -> Metrics {
    let m = Metrics::with_build("9.9.9", "abc123").expect("registry builds");
    m.set_workers(2);
    m.publish_worker(0, &stats(10), 1);
    m.publish_capture_stats("eth0", CaptureCounters::default());
    m.capture_event("eth0", CaptureEvent::Opened);
    m.publish_sink("file", SinkCounters::default());
    m.finding(Verdict::Shadow, Severity::High, "SMCP-001", None);
    m.finding_suppressed("SMCP-021");
    m.findings_dropped(1);
    m.signatures_loaded("1", 1);
    m.reload(true);
    m.observe_packet_seconds(1e-6);
    m.publish_decryption(DecryptCounters::default());
    m
}

#[test]
fn counter32_restart_is_not_a_wrap() {
    let mut c = Counter32::default();
    assert_eq!(c.update(1000), 1000);
    // A reopened capture handle counts from zero again.
    c.restart();
    assert_eq!(c.update(5), 1005);
    assert_eq!(c.update(7), 1007);
    // A real wrap is still a wrap.
    let mut w = Counter32::default();
    w.update(u32::MAX - 1);
    assert_eq!(w.update(3), u64::from(u32::MAX) + 4);
}

#[test]
fn capture_events_track_state_and_count() {
    let m = Metrics::new().expect("registry builds");
    let v = |name: &str, labels: &[(&str, &str)]| value(&m, name, labels);
    m.capture_event("eth1", CaptureEvent::Opened);
    assert_eq!(v(CAPTURE_UP, &[("interface", "eth1")]), Some(1.0));
    // Both results are exported from the start.
    let ok = [("interface", "eth1"), ("result", "success")];
    let failed = [("interface", "eth1"), ("result", "failure")];
    assert_eq!(v(CAPTURE_REOPENS, &failed), Some(0.0));
    assert_eq!(v(CAPTURE_FAILURES, &[("interface", "eth1")]), Some(0.0));
    m.capture_event("eth1", CaptureEvent::Failed);
    m.capture_event("eth1", CaptureEvent::ReopenFailed);
    m.capture_event("eth1", CaptureEvent::ReopenFailed);
    assert_eq!(v(CAPTURE_UP, &[("interface", "eth1")]), Some(0.0));
    m.capture_event("eth1", CaptureEvent::Reopened);
    assert_eq!(v(CAPTURE_UP, &[("interface", "eth1")]), Some(1.0));
    assert_eq!(v(CAPTURE_FAILURES, &[("interface", "eth1")]), Some(1.0));
    assert_eq!(v(CAPTURE_REOPENS, &failed), Some(2.0));
    assert_eq!(v(CAPTURE_REOPENS, &ok), Some(1.0));
    // Bounded: interfaces past the cap are not exported.
    for i in 0..MAX_INTERFACES + 10 {
        m.capture_event(&format!("if{i}"), CaptureEvent::Opened);
    }
    let text = String::from_utf8(m.render()).expect("utf-8");
    let series = text
        .lines()
        .filter(|l| l.starts_with(&format!("{CAPTURE_UP}{{")))
        .count();
    assert_eq!(series, MAX_INTERFACES);
}

#[test]
fn every_declared_metric_is_exported() {
    let m = populated();
    let text = String::from_utf8(m.render()).expect("utf-8");
    let exported: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect();
    let declared: BTreeSet<String> = m.declared_names().iter().cloned().collect();
    assert_eq!(exported, declared);
    assert_eq!(
        value(
            &m,
            BUILD_INFO,
            &[("version", "9.9.9"), ("commit", "abc123")]
        ),
        Some(1.0)
    );
}

#[test]
fn docs_list_exactly_the_declared_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md");
    let doc = std::fs::read_to_string(path).expect("docs/metrics.md exists");
    // Reference table rows: | `name` | type | labels | meaning |
    let is_row = |l: &str| l.starts_with("| `shadowmcp_") || l.starts_with("| `process_");
    let documented: Vec<String> = doc
        .lines()
        .filter(|l| is_row(l))
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect();
    let doc_set: BTreeSet<String> = documented.iter().cloned().collect();
    assert_eq!(doc_set.len(), documented.len(), "a name is listed twice");
    let m = Metrics::new().expect("registry builds");
    let declared: BTreeSet<String> = m.declared_names().iter().cloned().collect();
    let missing: Vec<_> = declared.difference(&doc_set).collect();
    let extra: Vec<_> = doc_set.difference(&declared).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented: {missing:?}; documented but not declared: {extra:?}"
    );
    // The documented type matches the exported one.
    let text = String::from_utf8(populated().render()).expect("utf-8");
    for line in doc.lines().filter(|l| is_row(l)) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cols.get(1).unwrap_or(&"").trim_matches('`');
        let kind = cols.get(2).unwrap_or(&"");
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} documented as {kind}"
        );
    }
}

#[test]
fn routes() {
    let m = Metrics::new().expect("registry builds");
    let h = Health::new();
    let get = |path: &str| {
        let req = hyper::Request::get(path).body(()).expect("request");
        server::respond(&req, &m, &h)
    };
    assert_eq!(get("/healthz").status(), 200);
    assert_eq!(get("/nope").status(), 404);
    assert_eq!(get("/metrics?x=1").status(), 200);
    assert_eq!(get("/readyz").status(), 503);
    h.set_capture_open(true);
    assert_eq!(get("/readyz").status(), 503);
    h.set_sinks_configured(true);
    assert_eq!(get("/readyz").status(), 200);
    h.set_shutting_down();
    assert_eq!(get("/readyz").status(), 503);
    let post = hyper::Request::post("/metrics").body(()).expect("request");
    assert_eq!(server::respond(&post, &m, &h).status(), 405);
}

#[test]
fn pcap_counters_widen_across_wraps() {
    let mut c = Counter32::default();
    assert_eq!(c.update(0), 0);
    assert_eq!(c.update(10), 10);
    assert_eq!(c.update(10), 10);
    assert_eq!(c.update(u32::MAX - 5), u64::from(u32::MAX) - 5);
    // Wrapped past zero: 6 to reach 2^32, then 4 more.
    assert_eq!(c.update(4), (1u64 << 32) + 4);
    assert_eq!(c.total(), (1u64 << 32) + 4);
    // Two wraps' worth through exported capture counters stays monotonic.
    let m = Metrics::new().expect("registry builds");
    let mut recv = Counter32::default();
    let mut last = 0.0;
    for raw in [1u32, 3_000_000_000, 5, 2_000_000_000, 4_000_000_000, 7] {
        m.publish_capture_stats(
            "eth0",
            CaptureCounters {
                packets: recv.update(raw),
                ..Default::default()
            },
        );
        let v = value(&m, PACKETS, &[("interface", "eth0")]).expect("series");
        assert!(v >= last, "{v} < {last}");
        last = v;
    }
    assert_eq!(last, (2u64 * (1 << 32) + 7) as f64);
}

/// Every family the counter table names is declared, with a label exactly
/// when the table gives one, and of the kind the counter is.
#[test]
fn counter_table_families_are_declared() {
    use crate::stats::{COUNTERS, CounterKind};
    for def in COUNTERS {
        let Some((family, label)) = def.metric else {
            continue;
        };
        let f = SNAPSHOT_FAMILIES
            .iter()
            .find(|f| f.name == family)
            .unwrap_or_else(|| panic!("{} names undeclared family {family}", def.field));
        assert_eq!(f.labels.len(), usize::from(label.is_some()), "{family}");
        let gauge = matches!(f.kind, Kind::Gauge);
        assert_eq!(gauge, def.kind == CounterKind::Level, "{}", def.field);
    }
}

/// Decryption series appear once decryption is published, each from its
/// own field, and never decrease.
#[test]
fn decryption_counters_are_exported() {
    let m = Metrics::new().expect("registry builds");
    let text = String::from_utf8(m.render()).expect("utf-8");
    assert!(!text.contains(TLS_DECRYPT_RECORDS), "absent when off");
    let mut c = DecryptCounters::default();
    c.stats.flows_with_keys = 3;
    c.stats.flows_decrypted = 2;
    c.stats.flows_missing_keys = 5;
    c.stats.auth_failures = 7;
    c.stats.unsupported = 11;
    c.stats.records_decrypted = 13;
    c.stats.records_held = 17;
    c.stats.records_dropped = 19;
    c.keys.entries = 23;
    c.keys.evicted = 29;
    c.keys.malformed_lines = 31;
    c.held_bytes = 37;
    m.publish_decryption(c);
    let v = |name: &str, labels: &[(&str, &str)]| value(&m, name, labels);
    assert_eq!(v(TLS_DECRYPT_FLOWS_WITH_KEYS, &[]), Some(3.0));
    assert_eq!(v(TLS_DECRYPT_FLOWS_DECRYPTED, &[]), Some(2.0));
    let fail = |r| v(TLS_DECRYPT_FAILURES, &[("reason", r)]);
    assert_eq!(fail("missing_keys"), Some(5.0));
    assert_eq!(fail("auth_failure"), Some(7.0));
    assert_eq!(fail("unsupported"), Some(11.0));
    assert_eq!(
        v(TLS_DECRYPT_RECORDS, &[("result", "decrypted")]),
        Some(13.0)
    );
    assert_eq!(v(TLS_DECRYPT_RECORDS, &[("result", "dropped")]), Some(19.0));
    assert_eq!(v(TLS_DECRYPT_RECORDS_HELD, &[]), Some(17.0));
    assert_eq!(v(TLS_KEYS, &[]), Some(23.0));
    assert_eq!(v(TLS_KEYS_EVICTED, &[]), Some(29.0));
    assert_eq!(v(TLS_KEYLOG_LINES, &[("result", "malformed")]), Some(31.0));
    assert_eq!(v(TLS_DECRYPT_HELD_BYTES, &[]), Some(37.0));
    // A restarted source does not make a counter go back.
    c.stats.records_decrypted = 1;
    c.held_bytes = 0;
    m.publish_decryption(c);
    assert_eq!(
        v(TLS_DECRYPT_RECORDS, &[("result", "decrypted")]),
        Some(14.0)
    );
    assert_eq!(v(TLS_DECRYPT_HELD_BYTES, &[]), Some(0.0));
}

/// The process collector is registered: a scrape carries the resident
/// memory and CPU time the sizing guide (docs/operations.md) asks to watch.
#[test]
fn scrape_has_process_metrics() {
    let m = Metrics::new().expect("registry builds");
    let text = String::from_utf8(m.render()).expect("utf-8");
    for family in ["process_resident_memory_bytes", "process_cpu_seconds_total"] {
        let v = text
            .lines()
            .find(|l| l.starts_with(&format!("{family} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        assert!(v.is_some_and(|v| v >= 0.0), "{family} missing:\n{text}");
    }
    assert!(
        text.contains("# TYPE process_resident_memory_bytes gauge\n"),
        "{text}"
    );
}

/// Label values the docs give are the ones the code emits: for every
/// family whose label values come from the counter table, the reference
/// table in docs/metrics.md lists exactly those values, and no page of
/// docs/ or the README selects another (`{reason="cap"}` for `capacity`).
#[test]
fn docs_use_the_label_values_the_code_emits() {
    use crate::stats::COUNTERS;
    use std::collections::BTreeMap;
    let mut emitted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for def in COUNTERS {
        if let Some((family, Some(value))) = def.metric {
            emitted.entry(family).or_default().insert(value.to_owned());
        }
    }
    assert!(emitted.contains_key(FLOWS_EVICTED), "{emitted:?}");
    let root = env!("CARGO_MANIFEST_DIR");
    let reference = std::fs::read_to_string(format!("{root}/docs/metrics.md")).expect("docs");
    for (family, values) in &emitted {
        let f = SNAPSHOT_FAMILIES
            .iter()
            .find(|f| f.name == *family)
            .expect("declared");
        let Some(label) = f.labels.last() else {
            continue;
        };
        let row = reference
            .lines()
            .find(|l| l.starts_with(&format!("| `{family}` |")))
            .unwrap_or_else(|| panic!("{family} not in docs/metrics.md"));
        let labels = row.split('|').nth(3).unwrap_or_default();
        let listed = labels
            .split_once(&format!("`{label}` ("))
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(list, _)| list)
            .unwrap_or_else(|| panic!("{family}: no values listed for `{label}`: {row}"));
        if listed == "same values" {
            // Refers to the row above (parser messages and errors).
            continue;
        }
        let documented: BTreeSet<String> = listed
            .split(',')
            .map(|v| v.trim().trim_matches('`').to_owned())
            .collect();
        assert_eq!(
            &documented, values,
            "{family}{{{label}}} in docs/metrics.md"
        );
    }
    let mut pages = vec![format!("{root}/README.md")];
    for e in std::fs::read_dir(format!("{root}/docs"))
        .expect("docs/")
        .flatten()
    {
        pages.push(e.path().display().to_string());
    }
    let mut wrong = Vec::new();
    for page in pages.iter().filter(|p| p.ends_with(".md")) {
        let text = std::fs::read_to_string(page).expect("page");
        for (family, values) in &emitted {
            for (at, _) in text.match_indices(&format!("{family}{{")) {
                let selector = text
                    .get(at + family.len() + 1..)
                    .and_then(|s| s.split_once('}'))
                    .map_or("", |(s, _)| s);
                for pair in selector.split(',') {
                    let Some((_, v)) = pair.split_once('=') else {
                        continue;
                    };
                    let v = v.trim().trim_start_matches('~').trim_matches('"');
                    let interface_like = v.is_empty() || v.contains('$') || v.contains('.');
                    if !interface_like
                        && !values.contains(v)
                        && !pair.trim().starts_with("interface")
                    {
                        wrong.push(format!("{page}: {family}{{{selector}}}"));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "label values the code never emits:\n{}",
        wrong.join("\n")
    );
}
