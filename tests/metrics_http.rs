//! The metrics/health HTTP server over real loopback sockets: routes, status
//! codes, content type, readiness states, hostile clients and many concurrent
//! scrapes.

use shadowmcp::metrics::{Health, Metrics, serve_listener};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

struct Server {
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    fn start() -> Server {
        let metrics = Arc::new(Metrics::new().expect("registry builds"));
        let health = Arc::new(Health::new());
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (m, h) = (metrics.clone(), health.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener)?;
                serve_listener(listener, m, h, async {
                    let _ = rx.await;
                })
                .await
            })
        });
        Server {
            addr,
            metrics,
            health,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// Stop the server and wait for `serve_listener` to return.
    fn stop(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().expect("server thread"),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

fn raw(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(buf)
}

fn parse(buf: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    parse(&raw(addr, req.as_bytes()).expect("request"))
}

#[test]
fn metrics_health_and_readiness() {
    let mut srv = Server::start();
    let r = get(srv.addr, "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.head.contains("content-type: text/plain; version=0.0.4"),
        "{}",
        r.head
    );
    assert!(r.body.contains("# TYPE shadowmcp_build_info gauge"));
    assert!(r.body.contains("shadowmcp_processed_packets_total 0"));

    // Values published after start show up in the next scrape.
    srv.metrics.publish_capture_stats(
        "eth0",
        shadowmcp::metrics::CaptureCounters {
            packets: 42,
            ..Default::default()
        },
    );
    let r = get(srv.addr, "/metrics");
    assert!(
        r.body
            .contains("shadowmcp_packets_total{interface=\"eth0\"} 42"),
        "{}",
        r.body
    );

    let r = get(srv.addr, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));

    let r = get(srv.addr, "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "not ready: capture not open\n");
    srv.health.set_capture_open(true);
    let r = get(srv.addr, "/readyz");
    assert_eq!(r.status, 503);
    assert_eq!(r.body, "not ready: no alert sink configured\n");
    srv.health.set_sinks_configured(true);
    let r = get(srv.addr, "/readyz");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));

    assert_eq!(get(srv.addr, "/").status, 404);
    assert_eq!(get(srv.addr, "/metricsx").status, 404);
    assert_eq!(get(srv.addr, "/metrics/../healthz").status, 404);

    // HEAD: headers only.
    let r = raw(
        srv.addr,
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    let r = parse(&r);
    assert_eq!((r.status, r.body.as_str()), (200, ""));

    srv.stop().expect("server returns cleanly on shutdown");
    assert!(TcpStream::connect_timeout(&srv.addr, Duration::from_millis(500)).is_err());
}

#[test]
fn keep_alive_serves_several_requests() {
    let srv = Server::start();
    let req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let text = String::from_utf8(raw(srv.addr, req).expect("request")).expect("utf-8");
    assert_eq!(text.matches("HTTP/1.1 ").count(), 2, "{text}");
    assert!(text.contains("HTTP/1.1 200") && text.contains("HTTP/1.1 503"));
}

#[test]
fn hostile_requests_are_bounded() {
    let srv = Server::start();
    // A body announced but never sent is not waited for.
    let r = raw(
        srv.addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    assert_eq!(parse(&r).status, 405);

    // Oversized head: refused (431) or cut off, never buffered without bound.
    let mut big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 64 * 1024));
    big.extend(b"\r\n\r\n");
    match raw(srv.addr, &big) {
        Ok(r) if !r.is_empty() => assert_eq!(parse(&r).status, 431),
        _ => {} // connection closed/reset while we were still writing
    }

    // Too many header fields.
    let mut many = b"GET /metrics HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        many.extend(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend(b"\r\n");
    if let Ok(r) = raw(srv.addr, &many)
        && !r.is_empty()
    {
        assert_ne!(parse(&r).status, 200);
    }

    // Garbage instead of HTTP.
    let r = raw(
        srv.addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    )
    .unwrap_or_default();
    if !r.is_empty() {
        assert_eq!(parse(&r).status, 400);
    }

    // Still serving afterwards.
    assert_eq!(get(srv.addr, "/healthz").status, 200);
}

#[test]
fn many_concurrent_scrapes() {
    let srv = Server::start();
    srv.metrics.set_workers(3);
    let addr = srv.addr;
    // More clients than the connection cap: the rest queue, none fail.
    let clients: Vec<_> = (0..150)
        .map(|_| {
            std::thread::spawn(move || {
                let r = get(addr, "/metrics");
                (r.status, r.body.contains("shadowmcp_workers 3"))
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("client"), (200, true));
    }
}

#[test]
fn silent_clients_are_cut_off() {
    let srv = Server::start();
    let start = std::time::Instant::now();
    // Half a request line, then silence (slowloris).
    let r = raw(srv.addr, b"GET /met");
    assert!(
        start.elapsed() < Duration::from_secs(9),
        "{:?}",
        start.elapsed()
    );
    // Closed, possibly with a 408.
    if let Ok(r) = r
        && !r.is_empty()
    {
        assert_eq!(parse(&r).status, 408);
    }
}

#[test]
fn large_exposition_is_sent_whole() {
    use shadowmcp::findings::aggregate::{Severity, Verdict};
    let srv = Server::start();
    // ~200 vendor series: well beyond the 8 KiB request buffer.
    for i in 0..shadowmcp::metrics::MAX_VENDOR_LABELS {
        srv.metrics.finding(
            Verdict::Shadow,
            Severity::High,
            "SMCP-010",
            Some(&format!("vendor-with-a-long-name-{i}")),
        );
    }
    let expected = String::from_utf8(srv.metrics.render()).expect("utf-8");
    assert!(expected.len() > 16 * 1024, "{}", expected.len());
    let r = get(srv.addr, "/metrics");
    assert_eq!(r.status, 200);
    // The histogram timestamps nothing, so two renders are identical but
    // for the process_* values, read from /proc at each scrape.
    let stable = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("process_"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(r.body.ends_with('\n') && r.body.contains("\nprocess_threads "));
    assert_eq!(stable(&r.body), stable(&expected));
}
