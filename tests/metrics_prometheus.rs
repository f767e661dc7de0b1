//! End to end with a real Prometheus server (Debian package `prometheus`):
//! the metrics endpoint is scraped every second, the real engine analyzes a
//! real MCP session capture, and Prometheus's HTTP API must then show the
//! finding counter risen, with the right labels. Skipped, with a note, when
//! the `prometheus` binary is absent (`PROMETHEUS_BIN` overrides the path).

use shadowmcp::analyze::{AnalyzeOptions, analyze};
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::EngineConfig;
use shadowmcp::findings::aggregate::Confidence;
use shadowmcp::metrics::{Health, Metrics, serve_listener};
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::allowlist::Allowlist;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest wait for Prometheus to start, scrape, and show a value.
const DEADLINE: Duration = Duration::from_secs(60);

/// Kills Prometheus and removes its files however the test ends.
struct PrometheusGuard {
    child: Child,
    dir: PathBuf,
}

impl Drop for PrometheusGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os("SHADOWMCP_KEEP_PROMETHEUS").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl PrometheusGuard {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The metrics server on an ephemeral loopback port, stopped on drop.
struct MetricsServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl MetricsServer {
    fn start(metrics: Arc<Metrics>, health: Arc<Health>) -> MetricsServer {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        l.set_nonblocking(true).expect("nonblocking");
        let addr = l.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(l)?;
                serve_listener(listener, metrics, health, async {
                    let _ = rx.await;
                })
                .await
            })
        });
        MetricsServer {
            addr,
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free loopback port")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Instant query through Prometheus's HTTP API; the `result` vector, or None
/// while Prometheus is not answering yet. HTTP/1.0 so the reply is not chunked.
fn query(port: u16, promql: &str) -> Option<Vec<serde_json::Value>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "GET /api/v1/query?query={} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
        percent_encode(promql)
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8(buf).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    if v["status"] != "success" {
        return None;
    }
    v["data"]["result"].as_array().cloned()
}

fn sample_value(r: &serde_json::Value) -> f64 {
    r["value"][1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Poll `promql` until `ok` accepts the result or the deadline passes.
fn wait_for(
    port: u16,
    promql: &str,
    guard: &PrometheusGuard,
    ok: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < DEADLINE {
        if let Some(r) = query(port, promql) {
            if ok(&r) {
                return r;
            }
            last = Some(r);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "timed out waiting for {promql}; last result {last:?}\nprometheus log:\n{}",
        guard.log()
    );
}

#[test]
fn prometheus_scrapes_a_finding_from_a_real_session() {
    let bin = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus"));
    if !bin.exists() {
        eprintln!(
            "skipping: {} not found (apt-get install prometheus)",
            bin.display()
        );
        return;
    }
    let capture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pcaps/py-streamable-sse.pcap");
    if !capture.exists() {
        eprintln!("skipping: {} not found", capture.display());
        return;
    }

    let metrics = Arc::new(Metrics::new().expect("registry builds"));
    let health = Arc::new(Health::new());
    let server = MetricsServer::start(metrics.clone(), health.clone());

    let dir = std::env::temp_dir().join(format!(
        "shadowmcp-prometheus-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: shadowmcp\n    static_configs:\n      - targets: [\"{}\"]\n",
        server.addr
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let web_port = free_port();
    let child = Command::new(&bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    let prom = PrometheusGuard { child, dir };

    // 1. Prometheus scrapes the idle sensor: target up, no finding yet.
    wait_for(web_port, "up{job=\"shadowmcp\"}", &prom, |r| {
        r.len() == 1 && sample_value(&r[0]) == 1.0
    });
    let before = query(web_port, "shadowmcp_findings_total").unwrap_or_default();
    assert!(before.is_empty(), "findings before any traffic: {before:?}");

    // 2. The real engine analyzes a real MCP session; the findings and the
    //    engine counters go to the metrics as the sensor will report them.
    let sigs = SignatureSet::builtin().expect("built-in signatures");
    metrics.signatures_loaded(&sigs.version, sigs.servers.len());
    let detector = Arc::new(Detector::new(sigs, Allowlist::empty()));
    let opts = AnalyzeOptions {
        files: vec![capture],
        engine: EngineConfig::default(),
        report_sanctioned: true,
        min_confidence: Confidence::Low,
        progress: false,
        workers: 1,
        observer: shadowmcp::findings::Observer::new(Some("test-sensor")),
        decrypt: None,
    };
    let result = analyze(&opts, detector);
    assert!(
        !result.records.is_empty(),
        "the capture holds an MCP session"
    );
    for r in &result.records {
        metrics.record_finding(r);
    }
    metrics.publish_worker(0, &result.stats, 0);
    metrics.set_workers(1);

    // 3. Prometheus shows the counter risen, with bounded, correct labels.
    let found = wait_for(web_port, "shadowmcp_findings_total", &prom, |r| {
        r.iter().map(sample_value).sum::<f64>() >= 1.0
    });
    let session = found
        .iter()
        .find(|r| r["metric"]["rule"] == "SMCP-001")
        .unwrap_or_else(|| panic!("no SMCP-001 series in {found:?}"));
    assert_eq!(session["metric"]["verdict"], "shadow", "{session}");
    assert_eq!(session["metric"]["severity"], "high", "{session}");
    assert_eq!(session["metric"]["vendor"], "none", "{session}");
    assert!(sample_value(session) >= 1.0, "{session}");
    let labels: Vec<&String> = session["metric"]
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    for l in &labels {
        assert!(
            [
                "__name__", "instance", "job", "verdict", "severity", "rule", "vendor"
            ]
            .contains(&l.as_str()),
            "unexpected label {l}"
        );
    }

    // The engine counters arrived too.
    let packets = wait_for(web_port, "shadowmcp_processed_packets_total", &prom, |r| {
        r.len() == 1 && sample_value(&r[0]) > 0.0
    });
    assert_eq!(sample_value(&packets[0]), result.stats.packets as f64);
    let sessions = wait_for(web_port, "shadowmcp_mcp_sessions_total", &prom, |r| {
        r.len() == 1 && sample_value(&r[0]) >= 1.0
    });
    assert_eq!(
        sample_value(&sessions[0]),
        result.stats.mcp_sessions_confirmed as f64
    );
    drop(prom);
    drop(server);
}
