//! The metrics and health HTTP endpoint: `GET /metrics`, `/healthz`, `/readyz`.
//!
//! Deliberately small and bounded: HTTP/1.1 only, request bodies are never
//! read, request heads are capped, idle or slow clients are cut off, and the
//! number of connections served at once is capped (further clients wait in
//! the listen backlog). The endpoint exposes counters only, never packet data.

use super::Metrics;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; a scrape takes milliseconds, so this only
/// bites under abuse.
pub const MAX_CONNECTIONS: usize = 64;
/// Request line plus headers, in bytes. A Prometheus scrape sends ~300.
/// (hyper's minimum read buffer is 8 KiB.)
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Header fields per request.
pub const MAX_HEADERS: usize = 32;
/// Time to send a request head (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Lifetime of one connection, keep-alive included. Prometheus reconnects.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Content type of the text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Readiness of the sensor, set by the parts that know.
#[derive(Debug, Default)]
pub struct Health {
    capture_open: AtomicBool,
    sinks_configured: AtomicBool,
    shutting_down: AtomicBool,
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every configured capture handle is open.
    pub fn set_capture_open(&self, open: bool) {
        self.capture_open.store(open, Ordering::Relaxed);
    }

    /// The alert sinks are configured and started.
    pub fn set_sinks_configured(&self, ok: bool) {
        self.sinks_configured.store(ok, Ordering::Relaxed);
    }

    /// The sensor is draining: report not ready so orchestration stops
    /// routing to it.
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// `Ok` when ready, else the first reason it is not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if self.shutting_down.load(Ordering::Relaxed) {
            Err("shutting down")
        } else if !self.capture_open.load(Ordering::Relaxed) {
            Err("capture not open")
        } else if !self.sinks_configured.load(Ordering::Relaxed) {
            Err("no alert sink configured")
        } else {
            Ok(())
        }
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Route one request. Pure (no I/O), so tests can call it directly.
pub fn respond<B>(req: &Request<B>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let known = matches!(path, "/metrics" | "/healthz" | "/readyz");
    if !known {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => {
            let mut r = text(StatusCode::OK, metrics.render());
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => match health.ready() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
    }
}

/// Bind `listen` and serve until `shutdown` completes.
pub async fn serve(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    serve_listener(listener, metrics, health, shutdown).await
}

/// Serve on an already bound listener (tests bind port 0 and read the port).
pub async fn serve_listener(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        // Take a slot before accepting, so excess clients queue in the kernel
        // backlog instead of costing tasks and buffers here.
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return Ok(()),
            },
        };
        let stream = tokio::select! {
            () = &mut shutdown => return Ok(()),
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                // Per-connection failures (reset before accept, fd limit):
                // back off briefly and keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (metrics, health, builder) = (metrics.clone(), health.clone(), builder.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = respond(&req, &metrics, &health);
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(permit);
        });
    }
}
