//! Workers of one sensor share the DNS name cache: the DNS answer handled by
//! one engine attributes the SNI-less TLS connection handled by another.

mod common;

use shadowmcp::capture::FileSource;
use shadowmcp::decode::{self, Transport};
use shadowmcp::detect::dns_cache::DnsCache;
use shadowmcp::engine::{Engine, EngineConfig};
use shadowmcp::findings::aggregate::{Aggregator, Confidence, assess};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Every frame of the capture `name`, in order, to one of two engines that
/// share a DNS cache: to the second when `second` says so. `setup` sees both
/// engines first. The findings, aggregated as `analyze` does.
fn two_workers(
    name: &str,
    second: impl Fn(&Transport) -> bool,
    setup: impl FnOnce(&mut Engine, &mut Engine),
) -> Vec<shadowmcp::findings::aggregate::Finding> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("pcaps")
        .join(name);
    let mut src = FileSource::open(&path).expect("capture");
    let lt = src.linktype();
    let det = common::detector();
    let cache = Arc::new(Mutex::new(DnsCache::new(1024)));
    let cfg = |base| EngineConfig {
        flow_id_base: base,
        ..EngineConfig::default()
    };
    let mut first = Engine::with_dns_cache(cfg(0), det.clone(), cache.clone());
    let mut other = Engine::with_dns_cache(cfg(1 << 48), det, cache);
    setup(&mut first, &mut other);
    let mut agg = Aggregator::new(100);
    while let Ok(Some(f)) = src.next_frame() {
        let to_other = decode::decode(lt, f.data).is_ok_and(|p| second(&p.transport));
        let e = if to_other { &mut other } else { &mut first };
        e.process_frame(f.ts, lt, f.data);
        e.drain_observations().for_each(|o| agg.add(&o));
    }
    for e in [&mut first, &mut other] {
        e.finish();
        e.drain_observations().for_each(|o| agg.add(&o));
    }
    agg.into_sorted()
}

#[test]
fn dns_on_one_worker_attributes_tls_on_another() {
    let det = common::detector();
    let found = two_workers(
        "dns-then-tls.pcap",
        |t| !matches!(t, Transport::Udp { .. }),
        |_, _| {},
    );
    let stripe = found
        .iter()
        .find(|f| f.server_name.as_deref() == Some("mcp.stripe.com"))
        .expect("stripe found");
    assert_eq!(
        assess(stripe, &det).confidence,
        Confidence::High,
        "TLS attributed through the shared cache: {stripe:#?}"
    );
    assert!(stripe.has(shadowmcp::findings::Signal::DnsAnswerIp));
    assert!(
        found
            .iter()
            .any(|f| f.server_name.as_deref() == Some("mcp.linear.app")
                && f.has(shadowmcp::findings::Signal::DnsAnswerIp))
    );
}

#[test]
fn analyze_output_does_not_depend_on_the_number_of_workers() {
    use shadowmcp::analyze::{AnalyzeOptions, analyze};
    let run = |workers| {
        let opts = AnalyzeOptions {
            files: vec![PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap")],
            engine: EngineConfig::default(),
            report_sanctioned: false,
            min_confidence: Confidence::Low,
            progress: false,
            workers,
            observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
            decrypt: None,
        };
        let mut lines: Vec<String> = analyze(&opts, common::detector())
            .records
            .iter()
            .map(|r| serde_json::to_string(r).expect("json"))
            .collect();
        lines.sort();
        lines
    };
    let one = run(1);
    assert!(one.len() >= 10);
    for n in [2, 3] {
        assert_eq!(run(n), one, "{n} workers");
    }
}

/// The stream cap bounds the whole analyzer's memory: N workers share it
/// rather than each having all of it.
#[test]
fn workers_share_the_tcp_stream_cap() {
    use shadowmcp::analyze::{AnalyzeOptions, analyze};
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-stream-cap-")
        .tempdir()
        .expect("scratch dir");
    let pcap = dir.path().join("flood.pcap");
    // 200 connections that each send a request and stay open.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_shadowmcp-bench-gen"))
        .args([
            "--scenario",
            "flow-flood",
            "--flows",
            "200",
            "--open",
            "--seed",
            "7",
        ])
        .arg("-o")
        .arg(&pcap)
        .status()
        .expect("bench-gen runs");
    assert!(status.success());
    let skipped = |workers| {
        let opts = AnalyzeOptions {
            files: vec![pcap.clone()],
            engine: EngineConfig {
                max_tcp_streams: 16,
                ..EngineConfig::default()
            },
            report_sanctioned: false,
            min_confidence: Confidence::Low,
            progress: false,
            workers,
            observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
            decrypt: None,
        };
        analyze(&opts, common::detector()).stats.tcp_streams_skipped
    };
    let (one, two) = (skipped(1), skipped(2));
    assert_eq!(one, 200 - 16);
    assert_eq!(two, 200 - 16, "two workers inspect 8 streams each");
}

fn run_analyze(files: Vec<PathBuf>, workers: usize) -> shadowmcp::analyze::AnalyzeResult {
    let opts = shadowmcp::analyze::AnalyzeOptions {
        files,
        engine: EngineConfig::default(),
        report_sanctioned: false,
        min_confidence: Confidence::Low,
        progress: false,
        workers,
        observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
        decrypt: None,
    };
    shadowmcp::analyze::analyze(&opts, common::detector())
}

fn sorted_lines(r: &shadowmcp::analyze::AnalyzeResult) -> Vec<String> {
    let mut lines: Vec<String> = r
        .records
        .iter()
        .map(|x| serde_json::to_string(x).expect("json"))
        .collect();
    lines.sort();
    lines
}

/// A pipe can be read only once: the workers get their frames from one
/// reading thread, and find the same as one worker.
#[test]
fn workers_reading_a_pipe_find_the_same() {
    let demo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap");
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-pipe-")
        .tempdir()
        .expect("scratch dir");
    let fifo = dir.path().join("capture.pcap");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let writer = {
        let (fifo, demo) = (fifo.clone(), demo.clone());
        std::thread::spawn(move || {
            let bytes = std::fs::read(demo).expect("demo");
            std::fs::write(fifo, bytes).expect("write to the pipe");
        })
    };
    let piped = run_analyze(vec![fifo.clone()], 2);
    writer.join().expect("writer");
    let one = run_analyze(vec![demo], 1);
    assert!(!one.records.is_empty());
    assert_eq!(sorted_lines(&piped), sorted_lines(&one));
    assert_eq!(piped.stats.packets, one.stats.packets);
}

/// Workers that each read the files report a damaged or unusable file once,
/// and count every packet once.
#[test]
fn workers_reading_files_report_each_problem_once() {
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-mw-")
        .tempdir()
        .expect("scratch dir");
    let dir = dir.path();
    let demo = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/demo.pcap"))
        .expect("demo");
    let cut = dir.join("cut.pcap");
    std::fs::write(&cut, &demo[..demo.len() - 7]).expect("cut");
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"not a capture at all, just text").expect("junk");
    let files = vec![cut, junk];
    let one = run_analyze(files.clone(), 1);
    let three = run_analyze(files, 3);
    assert_eq!((one.damaged.len(), one.unusable.len()), (1, 1));
    assert_eq!((three.damaged.len(), three.unusable.len()), (1, 1));
    // The damaged record is numbered among all records, not among a
    // worker's own.
    assert_eq!(three.damaged, one.damaged);
    assert_eq!(three.stats.packets, one.stats.packets);
    assert_eq!(sorted_lines(&three), sorted_lines(&one));
}

/// A worker reads past runs of blocks that hold none of its frames (here
/// hundreds of one-byte segments of one connection another worker owns)
/// and still meets the flows after them in the same file.
#[test]
fn workers_read_past_blocks_without_their_frames() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    // One file: the one-connection capture, then the demo capture moved to
    // start a second later.
    let mut frames = Vec::new();
    let mut last = 0;
    for name in ["evasion-one-byte-segments.pcap", "demo.pcap"] {
        let mut src = FileSource::open(&dir.join(name)).expect("capture");
        assert_eq!(src.linktype(), 1, "{name}: Ethernet");
        let mut shift = None;
        while let Ok(Some(f)) = src.next_frame() {
            let d = *shift.get_or_insert(last + 1_000_000 - f.ts);
            frames.push(common::Frame {
                ts: f.ts + d,
                bytes: f.data.to_vec(),
            });
        }
        last = frames.last().map_or(0, |f| f.ts);
    }
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-runs-")
        .tempdir()
        .expect("scratch dir");
    let path = dir.path().join("runs.pcap");
    std::fs::write(&path, common::pcap_file(&frames)).expect("write");
    let one = run_analyze(vec![path.clone()], 1);
    let many: Vec<_> = [2, 3]
        .map(|n| (n, run_analyze(vec![path.clone()], n)))
        .into();
    assert_eq!(one.stats.packets, frames.len() as u64);
    assert!(one.records.len() >= 10);
    for (n, r) in many {
        assert_eq!(r.stats.packets, one.stats.packets, "{n} workers");
        assert_eq!(sorted_lines(&r), sorted_lines(&one), "{n} workers");
    }
}

/// The live sensor's workers share one table of discovered hosts: a server
/// card read by one engine attributes the TLS connection another engine
/// reads (SMCP-013); with a table each, the connection is not attributed.
#[test]
fn discovery_on_one_worker_attributes_tls_on_another_when_shared() {
    let run = |shared: bool| {
        // The fixture's TLS connections go to port 8443, its discovery
        // fetches to the HTTP server on another port.
        let tls = |t: &Transport| {
            matches!(
                t,
                Transport::Tcp { sport: 8443, .. } | Transport::Tcp { dport: 8443, .. }
            )
        };
        let found = two_workers("discovery-cards.pcap", tls, |a, b| {
            if shared {
                let table = Arc::new(Mutex::new(
                    shadowmcp::detect::discovery::DiscoveredHosts::default(),
                ));
                a.share_discovered_hosts(table.clone());
                b.share_discovered_hosts(table);
            }
        });
        found
            .iter()
            .filter(|f| f.has(shadowmcp::findings::Signal::DiscoveredHost))
            .filter_map(|f| f.server_name.clone())
            .collect::<Vec<_>>()
    };
    let shared = run(true);
    assert!(
        shared.iter().any(|n| n == "weather.registry.test"),
        "{shared:?}"
    );
    assert!(
        run(false).is_empty(),
        "tables of their own attribute nothing"
    );
}

/// IP fragments go to every worker, which all reassemble them; the
/// datagram's own worker inspects it and worker 0 counts: any number of
/// workers finds and counts what one does.
#[test]
fn fragmented_sessions_are_found_and_counted_once_by_any_number_of_workers() {
    for name in [
        "fragroute-ipv4-tiny-random.pcap",
        "fragroute-ipv6-tiny-reverse.pcap",
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("pcaps")
            .join(name);
        let one = run_analyze(vec![path.clone()], 1);
        assert_eq!(one.records.len(), 1, "{name}");
        assert!(one.stats.ip_datagrams_reassembled > 10, "{name}");
        assert_eq!(one.stats.ip_fragments_invalid, 0, "{name}");
        for n in [2, 3] {
            let r = run_analyze(vec![path.clone()], n);
            assert_eq!(sorted_lines(&r), sorted_lines(&one), "{name}, {n} workers");
            for (what, a, b) in [
                ("packets", r.stats.packets, one.stats.packets),
                ("fragments", r.stats.ip_fragments, one.stats.ip_fragments),
                (
                    "reassembled",
                    r.stats.ip_datagrams_reassembled,
                    one.stats.ip_datagrams_reassembled,
                ),
                ("tcp", r.stats.tcp, one.stats.tcp),
            ] {
                assert_eq!(a, b, "{name}, {n} workers: {what}");
            }
        }
    }
}
