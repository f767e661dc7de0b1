//! Webhook sink against a real HTTPS receiver started by the test (hyper +
//! tokio-rustls on loopback, certificates from a CA made with rcgen).

mod sinks_common;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use shadowmcp::sinks::{SinkConfig, SinkHandle};
use sinks_common::*;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

const TOKEN: &str = "Bearer s3cret-token";

#[derive(Default)]
struct Receiver {
    /// Status codes to answer, in order; then `default_status`.
    script: Mutex<VecDeque<u16>>,
    default_status: AtomicU16,
    /// Batches answered with 2xx.
    accepted: Mutex<Vec<Vec<Value>>>,
    requests: AtomicUsize,
    bad_auth: AtomicUsize,
    tls_failures: AtomicUsize,
}

impl Receiver {
    fn ids(&self) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .accepted
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .filter_map(|v| v["test_id"].as_u64())
            .collect();
        ids.sort_unstable();
        ids
    }
}

async fn handle(
    rx: Arc<Receiver>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    rx.requests.fetch_add(1, Ordering::SeqCst);
    let auth_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        == Some(TOKEN);
    let json_ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        == Some("application/json");
    let body = Limited::new(req.into_body(), 8 << 20)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let status = if !auth_ok || !json_ct {
        rx.bad_auth.fetch_add(1, Ordering::SeqCst);
        401
    } else {
        let scripted = rx.script.lock().unwrap().pop_front();
        scripted.unwrap_or_else(|| rx.default_status.load(Ordering::SeqCst))
    };
    if (200..300).contains(&status) {
        let batch: Vec<Value> = serde_json::from_slice(&body).expect("body is a JSON array");
        rx.accepted.lock().unwrap().push(batch);
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(b"{}")));
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    if status == 429 {
        resp.headers_mut()
            .insert("retry-after", hyper::header::HeaderValue::from_static("0"));
    }
    Ok(resp)
}

fn server_tls(pki: &Pki, require_client_cert: bool) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert_pem)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.server_key_pem).unwrap();
    let b = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&pki.ca_pem).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let v =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        b.with_client_cert_verifier(v)
    } else {
        b.with_no_client_auth()
    };
    Arc::new(b.with_single_cert(certs, key).unwrap())
}

/// Starts the receiver; returns its port.
async fn start_receiver(
    rx: Arc<Receiver>,
    tls: Arc<rustls::ServerConfig>,
) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(tls);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let rx = rx.clone();
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(_) => {
                        rx.tls_failures.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                let svc = hyper::service::service_fn(move |req| handle(rx.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, task)
}

fn webhook(port: u16, extra: serde_json::Value) -> SinkConfig {
    let mut cfg = serde_json::json!({
        "type": "webhook",
        "url": format!("https://localhost:{port}/hook"),
        "headers": {"Authorization": TOKEN},
        "batch_max": 10,
        "batch_timeout_ms": 50,
        "backoff_initial_ms": 10,
        "backoff_max_ms": 100,
        "timeout_ms": 3000,
    });
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let c: SinkConfig = serde_json::from_value(cfg).unwrap();
    c.validate().unwrap();
    c
}

fn with_ca(pki: &Pki) -> serde_json::Value {
    serde_json::json!({"ca_file": pki.ca_pem})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_batches_with_bearer_over_custom_ca() {
    let dir = TmpDir::new("wh-ok");
    let pki = make_pki(dir.path(), "a");
    let rx = Arc::new(Receiver::default());
    rx.default_status.store(200, Ordering::SeqCst);
    let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, false)).await;
    let sink = SinkHandle::start(&webhook(port, with_ca(&pki))).unwrap();
    for i in 0..25 {
        sink.send(Arc::new(finding(i)));
    }
    assert!(sink.flush(Duration::from_secs(10)).await);
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!(
        rx.ids(),
        (0..25).collect::<Vec<_>>(),
        "each finding exactly once"
    );
    assert_eq!(rx.bad_auth.load(Ordering::SeqCst), 0);
    let batches = rx.accepted.lock().unwrap();
    assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 10));
    assert!(batches.len() >= 3);
    // The finding arrives as sent.
    assert_eq!(
        batches[0][0],
        finding(batches[0][0]["test_id"].as_u64().unwrap())
    );
    assert_eq!(stats.delivered, 25);
    assert_eq!((stats.dropped, stats.failures, stats.retries), (0, 0, 0));
    assert_eq!(stats.queue_depth, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_500_and_429_then_delivers_once() {
    let dir = TmpDir::new("wh-retry");
    let pki = make_pki(dir.path(), "a");
    let rx = Arc::new(Receiver::default());
    rx.default_status.store(200, Ordering::SeqCst);
    rx.script.lock().unwrap().extend([500, 503, 429]);
    let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, false)).await;
    let sink = SinkHandle::start(&webhook(port, with_ca(&pki))).unwrap();
    for i in 0..5 {
        sink.send(Arc::new(finding(i)));
    }
    assert!(sink.flush(Duration::from_secs(10)).await);
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!(rx.ids(), vec![0, 1, 2, 3, 4]);
    assert_eq!(rx.requests.load(Ordering::SeqCst), 4);
    assert_eq!(stats.retries, 3);
    assert_eq!(stats.delivered, 5);
    assert_eq!(stats.dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_dropped_and_counted_without_retry() {
    let dir = TmpDir::new("wh-4xx");
    let pki = make_pki(dir.path(), "a");
    let rx = Arc::new(Receiver::default());
    rx.default_status.store(200, Ordering::SeqCst);
    rx.script.lock().unwrap().push_back(422);
    let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, false)).await;
    let sink = SinkHandle::start(&webhook(port, with_ca(&pki))).unwrap();
    for i in 0..3 {
        sink.send(Arc::new(finding(i)));
    }
    assert!(sink.flush(Duration::from_secs(10)).await);
    sink.send(Arc::new(finding(3)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!(rx.ids(), vec![3]);
    assert_eq!(
        (
            stats.dropped,
            stats.failures,
            stats.retries,
            stats.delivered
        ),
        (3, 1, 0, 1)
    );
    // A wrong token is a 401: dropped, counted.
    let mut cfg = webhook(port, with_ca(&pki));
    if let SinkConfig::Webhook(w) = &mut cfg {
        w.headers = BTreeMap::from([("Authorization".to_string(), "Bearer wrong".to_string())]);
    }
    let sink = SinkHandle::start(&cfg).unwrap();
    sink.send(Arc::new(finding(9)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!((stats.dropped, stats.delivered), (1, 0));
    assert_eq!(rx.bad_auth.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_and_missing_client_cert_fail_verification() {
    let dir = TmpDir::new("wh-ca");
    let pki = make_pki(dir.path(), "a");
    let other = make_pki(dir.path(), "b");
    let rx = Arc::new(Receiver::default());
    rx.default_status.store(200, Ordering::SeqCst);
    let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, true)).await;

    // Server certificate from another CA: never trusted.
    let sink = SinkHandle::start(&webhook(
        port,
        serde_json::json!({"ca_file": other.ca_pem, "max_retries": 1,
            "client_cert": pki.client_cert_pem, "client_key": pki.client_key_pem}),
    ))
    .unwrap();
    sink.send(Arc::new(finding(1)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!((stats.delivered, stats.dropped, stats.retries), (0, 1, 1));

    // Default roots (web PKI) do not trust the test CA either.
    let sink = SinkHandle::start(&webhook(port, serde_json::json!({"max_retries": 0}))).unwrap();
    sink.send(Arc::new(finding(2)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!((stats.delivered, stats.dropped), (0, 1));

    // Right CA, but the server requires a client certificate.
    let sink = SinkHandle::start(&webhook(
        port,
        serde_json::json!({"ca_file": pki.ca_pem, "max_retries": 0}),
    ))
    .unwrap();
    sink.send(Arc::new(finding(3)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!((stats.delivered, stats.dropped), (0, 1));
    assert!(rx.ids().is_empty());
    assert_eq!(rx.requests.load(Ordering::SeqCst), 0);

    // Right CA and client certificate: delivered.
    let sink = SinkHandle::start(&webhook(
        port,
        serde_json::json!({"ca_file": pki.ca_pem,
            "client_cert": pki.client_cert_pem, "client_key": pki.client_key_pem}),
    ))
    .unwrap();
    sink.send(Arc::new(finding(4)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!(stats.delivered, 1);
    assert_eq!(rx.ids(), vec![4]);
    assert!(rx.tls_failures.load(Ordering::SeqCst) >= 3);
}

fn spool_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spool_survives_outage_and_restart_exactly_once() {
    let dir = TmpDir::new("wh-spool");
    let pki = make_pki(dir.path(), "a");
    let spool = dir.join("spool");
    let rx = Arc::new(Receiver::default());
    rx.default_status.store(503, Ordering::SeqCst);
    let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, false)).await;
    let extra = serde_json::json!({"ca_file": pki.ca_pem, "spool_dir": spool,
        "max_retries": 1, "queue": 4});

    // Receiver down; a small queue overflows into the spool too.
    let sink = SinkHandle::start(&webhook(port, extra.clone())).unwrap();
    for i in 0..50 {
        sink.send(Arc::new(finding(i)));
    }
    let _ = sink.flush(Duration::from_secs(5)).await;
    let stats = sink.flush_and_close(Duration::from_secs(3)).await;
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.dropped, 0, "nothing lost while the receiver is down");
    assert_eq!(stats.spooled, 50);
    assert!(stats.spool_bytes > 0);
    assert!(
        spool_files(&spool) >= 5,
        "segments of at most batch_max findings"
    );
    assert!(rx.requests.load(Ordering::SeqCst) >= 2, "it did try");
    assert!(rx.ids().is_empty());

    // Sensor restarts; receiver is back. Spooled findings first, then new ones.
    rx.default_status.store(200, Ordering::SeqCst);
    let sink = SinkHandle::start(&webhook(port, extra)).unwrap();
    for i in 50..55 {
        sink.send(Arc::new(finding(i)));
    }
    let all: Vec<u64> = (0..55).collect();
    let got = wait_for(Duration::from_secs(20), || {
        let ids = rx.ids();
        (ids.len() >= 55).then_some(ids)
    });
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!(got.as_ref(), Some(&all), "every finding exactly once");
    assert_eq!(rx.ids(), all, "no duplicate after close");
    assert_eq!(stats.delivered, 55);
    assert_eq!(stats.spool_bytes, 0);
    assert_eq!(spool_files(&spool), 0);
    // The first accepted batch came from the spool (older findings first).
    let first = rx.accepted.lock().unwrap()[0].clone();
    assert!(first.iter().all(|v| v["test_id"].as_u64().unwrap() < 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_without_spool_drops_and_counts() {
    let dir = TmpDir::new("wh-full");
    let pki = make_pki(dir.path(), "a");
    let rx = Arc::new(Receiver::default());
    rx.default_status.store(503, Ordering::SeqCst);
    let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, false)).await;
    let sink = SinkHandle::start(&webhook(
        port,
        serde_json::json!({"ca_file": pki.ca_pem, "queue": 2, "max_retries": 2, "batch_max": 1}),
    ))
    .unwrap();
    for i in 0..20 {
        sink.send(Arc::new(finding(i)));
    }
    let stats = sink.flush_and_close(Duration::from_secs(3)).await;
    assert_eq!(stats.delivered, 0);
    assert_eq!(stats.dropped, 20, "every finding accounted for: {stats:?}");
    assert_eq!(stats.queue_depth, 0);
}

/// A receiver that accepts connections and never answers.
async fn start_silent_receiver() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            if held.len() < 64 {
                held.push(s);
            }
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_bounds_a_hanging_receiver() {
    let dir = TmpDir::new("wh-hang");
    let (port, _srv) = start_silent_receiver().await;
    let cfg = |extra: serde_json::Value| {
        let mut v = serde_json::json!({"type": "webhook",
            "url": format!("http://127.0.0.1:{port}/hook"), "timeout_ms": 60000,
            "batch_timeout_ms": 0});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value::<SinkConfig>(v).unwrap()
    };
    // Without spool: dropped and counted, within the deadline (plus grace).
    let sink = SinkHandle::start(&cfg(serde_json::json!({}))).unwrap();
    sink.send(Arc::new(finding(1)));
    sink.send(Arc::new(finding(2)));
    let t0 = std::time::Instant::now();
    let stats = sink.flush_and_close(Duration::from_millis(800)).await;
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(
        (stats.delivered, stats.dropped, stats.queue_depth),
        (0, 2, 0)
    );

    // With spool: kept on disk for the next start.
    let spool = dir.join("spool");
    let sink = SinkHandle::start(&cfg(serde_json::json!({"spool_dir": spool}))).unwrap();
    sink.send(Arc::new(finding(3)));
    let t0 = std::time::Instant::now();
    let stats = sink.flush_and_close(Duration::from_millis(800)).await;
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!((stats.delivered, stats.dropped, stats.spooled), (0, 0, 1));
    assert_eq!(spool_files(&spool), 1);
}

/// Set in the child process of `spool_on_a_full_filesystem_*`: the spool
/// directory (a tiny tmpfs mounted by the parent).
const ENOSPC_CHILD: &str = "SHADOWMCP_TEST_ENOSPC_SPOOL";
/// Findings sent while the receiver is down: ~300 × ~700 bytes, far more
/// than the 64 KiB file system holds.
const ENOSPC_FINDINGS: u64 = 300;

fn is_root() -> bool {
    // SAFETY: plain libc call.
    unsafe { libc::geteuid() == 0 }
}

/// Unmounts the tmpfs when the test ends, also on panic.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fault: the spool lives on a file system that fills up (ENOSPC) while
/// the receiver is down. The sink must keep running, count and log every
/// finding it cannot write, and deliver each spooled finding exactly once
/// when the receiver returns. The parent mounts a 64 KiB tmpfs (root only)
/// and re-runs this test in a child process so that the sink's warnings on
/// standard error can be checked.
#[test]
fn spool_on_a_full_filesystem_drops_counts_logs_then_delivers_once() {
    if let Some(spool) = std::env::var_os(ENOSPC_CHILD) {
        // Sinks log through tracing, as in the sensor.
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
        return enospc_child(std::path::PathBuf::from(spool));
    }
    if !is_root() {
        println!("skipping: mounting a tmpfs for the full-disk spool test needs root");
        return;
    }
    let dir = TmpDir::new("wh-enospc");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs"])
        .arg(&spool)
        .status();
    if !status.as_ref().is_ok_and(|s| s.success()) {
        println!("skipping: cannot mount a tmpfs here ({status:?})");
        return;
    }
    let _mount = Mount(spool.clone());
    let log = dir.join("child.err");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "spool_on_a_full_filesystem_drops_counts_logs_then_delivers_once",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENOSPC_CHILD, &spool)
        .stdout(std::fs::File::create(dir.join("child.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = wait_for(Duration::from_secs(50), || child.try_wait().ok().flatten());
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = std::fs::read_to_string(dir.join("child.out")).unwrap_or_default();
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "child failed or timed out ({status:?}):\n{out}\n{err}"
    );
    let summary = out.lines().find(|l| l.contains("enospc child: passed"));
    assert!(summary.is_some(), "{out}\n{err}");
    println!("{}", summary.unwrap_or_default());
    // Logged: the write error with its cause, and the count so far.
    assert!(
        err.contains(
            "sink spool-full: 1 finding(s) dropped: spool write failed: No space left on device"
        ),
        "{err}"
    );
    assert!(err.contains("finding(s) spooled"), "{err}");
}

fn enospc_child(spool: std::path::PathBuf) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = TmpDir::new("wh-enospc-pki");
        let pki = make_pki(dir.path(), "a");
        let rx = Arc::new(Receiver::default());
        rx.default_status.store(503, Ordering::SeqCst);
        let (port, _srv) = start_receiver(rx.clone(), server_tls(&pki, false)).await;
        let sink = SinkHandle::start(&webhook(
            port,
            // One spool file takes more than the file system holds, so the
            // disk fills up in the middle of a line (a short write).
            serde_json::json!({"name": "spool-full", "ca_file": pki.ca_pem,
                "spool_dir": spool, "max_retries": 0, "batch_max": 200}),
        ))
        .unwrap();
        for i in 0..ENOSPC_FINDINGS {
            sink.send(Arc::new(finding(i)));
        }
        // Every finding is either on disk or counted as dropped.
        let settled = wait_for(Duration::from_secs(20), || {
            let s = sink.stats().snapshot();
            (s.spooled + s.dropped == ENOSPC_FINDINGS).then_some(s)
        });
        let down = settled.unwrap_or_else(|| panic!("not settled: {:?}", sink.stats().snapshot()));
        assert_eq!(down.delivered, 0);
        assert!(down.spooled >= 10, "the first findings fit: {down:?}");
        assert!(down.dropped >= 100, "the file system is full: {down:?}");
        assert!(down.spool_bytes <= 64 * 1024, "{down:?}");
        let on_disk: u64 = std::fs::read_dir(&spool)
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        assert_eq!(on_disk, down.spool_bytes, "no torn line left on disk");
        // The drop count reaches the metric the sensor exports.
        let metrics = shadowmcp::metrics::Metrics::new().unwrap();
        metrics.publish_sink(
            "spool-full",
            shadowmcp::metrics::SinkCounters {
                delivered: down.delivered,
                retries: down.retries,
                failures: down.failures,
                dropped: down.dropped,
                queue_depth: down.queue_depth,
                spool_bytes: down.spool_bytes,
            },
        );
        let text = String::from_utf8(metrics.render()).unwrap();
        let line = format!(
            "shadowmcp_sink_dropped_total{{sink=\"spool-full\"}} {}",
            down.dropped
        );
        assert!(text.contains(&line), "{line} not in:\n{text}");

        // The receiver returns: each spooled finding exactly once.
        rx.default_status.store(200, Ordering::SeqCst);
        let got = wait_for(Duration::from_secs(20), || {
            let ids = rx.ids();
            (ids.len() as u64 >= down.spooled).then_some(ids)
        })
        .unwrap_or_else(|| {
            panic!(
                "spool not delivered: {:?} {:?}",
                sink.stats().snapshot(),
                rx.ids()
            )
        });
        // The sink still works, and the spool has room again.
        for i in ENOSPC_FINDINGS..ENOSPC_FINDINGS + 5 {
            sink.send(Arc::new(finding(i)));
        }
        assert!(sink.flush(Duration::from_secs(10)).await);
        let end = sink.flush_and_close(Duration::from_secs(5)).await;
        let ids = rx.ids();
        let mut unique = ids.clone();
        unique.dedup();
        assert_eq!(unique, ids, "a finding delivered twice");
        assert_eq!(got.len() as u64, down.spooled, "{got:?}");
        assert!(got.starts_with(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), "{got:?}");
        assert!(
            ids.ends_with(&[300, 301, 302, 303, 304]),
            "new findings after recovery: {ids:?}"
        );
        assert_eq!(end.delivered, down.spooled + 5);
        assert_eq!(end.dropped, down.dropped, "nothing else lost: {end:?}");
        assert_eq!(end.spool_bytes, 0);
        assert_eq!(spool_files(&spool), 0);
        println!(
            "enospc child: passed: {} spooled, {} dropped, {} delivered",
            down.spooled, down.dropped, end.delivered
        );
    });
}

/// A writer the test reads back (the sensor's log).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Retries against a receiver that is down (a closed loopback port) are
/// logged at warn, but not one line per retry: 30 quick retries give one
/// line, and the counter has the exact number.
#[tokio::test(flavor = "current_thread")]
async fn retries_are_logged_at_warn_rate_limited() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let log = LogBuffer::default();
    let w = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || w.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let cfg: SinkConfig = serde_json::from_value(serde_json::json!({
        "type": "webhook",
        "url": format!("http://127.0.0.1:{closed}/hook"),
        "batch_max": 1,
        "batch_timeout_ms": 0,
        "max_retries": 30,
        "backoff_initial_ms": 1,
        "backoff_max_ms": 4,
        "timeout_ms": 1000,
    }))
    .unwrap();
    let sink = SinkHandle::start(&cfg).unwrap();
    sink.send(Arc::new(finding(1)));
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((stats.retries, stats.dropped), (30, 1), "{stats:?}");
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let retry_lines: Vec<&str> = text.lines().filter(|l| l.contains("retry ")).collect();
    assert_eq!(retry_lines.len(), 1, "{text}");
    assert!(retry_lines[0].contains(" WARN "), "{text}");
    assert!(retry_lines[0].contains("retry 1 of 30"), "{text}");
}
