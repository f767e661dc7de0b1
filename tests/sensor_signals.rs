//! The live sensor as a process: SIGHUP with a broken signature file keeps
//! the old set (counted as a failed reload), a fixed file reloads, and
//! SIGTERM exits cleanly. Captures on `lo` with a filter that matches
//! nothing; needs root (skipped otherwise).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sensor(Child);

impl Drop for Sensor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

fn get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn metric(text: &str, line_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn wait_for(port: u16, prefix: &str, want: f64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if get(port, "/metrics")
            .and_then(|t| metric(&t, prefix))
            .is_some_and(|m| m >= want)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn reload_keeps_old_set_on_error_and_sigterm_exits() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: live capture needs root");
        return;
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-sig-")
        .tempdir()
        .expect("scratch dir");
    let dir = dir.path();
    for f in std::fs::read_dir(root.join("signatures"))
        .expect("signatures")
        .flatten()
    {
        if f.path().extension().is_some_and(|e| e == "toml") {
            std::fs::copy(f.path(), dir.join(f.file_name())).expect("copy");
        }
    }
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .args([
            "run",
            "-i",
            "lo",
            "--bpf",
            "udp port 9",
            "--workers",
            "2",
            "--sink",
            "jsonl:-",
        ])
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--signatures")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sensor");
    let mut sensor = Sensor(child);
    let pid = sensor.0.id() as i32;
    assert!(
        wait_for(port, "shadowmcp_build_info", 1.0),
        "sensor did not come up"
    );
    // /metrics answers before the capture threads are started; readiness
    // follows once they are (bounded wait).
    let until = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let r = get(port, "/readyz").unwrap_or_default();
        if r.starts_with("HTTP/1.1 200") || Instant::now() >= until {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    // A broken file: the reload fails and the old set stays.
    let servers = dir.join("servers.toml");
    let good = std::fs::read_to_string(&servers).expect("read");
    std::fs::write(&servers, "[[server]\nhost = ").expect("break");
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(
        wait_for(
            port,
            "shadowmcp_signature_reloads_total{result=\"failure\"}",
            1.0
        ),
        "failed reload counted"
    );
    let text = get(port, "/metrics").unwrap_or_default();
    assert!(
        text.contains("shadowmcp_signatures_info{version="),
        "{text}"
    );

    // Fixed: the reload succeeds.
    std::fs::write(&servers, good).expect("fix");
    unsafe { libc::kill(pid, libc::SIGHUP) };
    assert!(
        wait_for(
            port,
            "shadowmcp_signature_reloads_total{result=\"success\"}",
            1.0
        ),
        "successful reload counted"
    );

    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = sensor.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "sensor did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = sensor.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "exit status {status:?}\n{err}");
    assert!(
        err.contains("reload failed, keeping the previous set"),
        "{err}"
    );
    assert!(err.contains("stopped"), "{err}");
}

/// A DNS query for a known MCP server, sent over `lo` to port 53: the
/// sensor reports it (SMCP-020) whatever answers.
fn dns_query_for_known_server() {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["mcp", "notion", "com"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let _ = s.send_to(&q, "127.0.0.1:53");
}

/// Runs the sensor on `lo` with one sink, makes one finding, waits until
/// the sink counted `counter`, stops it with SIGTERM; its exit status and
/// standard error.
fn run_until_sink_counted(sink: &str, counter: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-lost-")
        .tempdir()
        .expect("scratch dir");
    let dir = dir.path();
    let config = dir.join("sensor.toml");
    std::fs::write(
        &config,
        format!("[findings]\nsettle_millis = 0\n\n[[sinks]]\n{sink}\n"),
    )
    .expect("config");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .args(["run", "-i", "lo", "--bpf", "udp port 53", "--workers", "1"])
        .arg("--config")
        .arg(&config)
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--no-default-overlays")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sensor");
    let mut sensor = Sensor(child);
    let until = Instant::now() + Duration::from_secs(15);
    while !get(port, "/readyz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < until, "sensor not ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Repeated until counted: the first query may precede the capture.
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        dns_query_for_known_server();
        let text = get(port, "/metrics").unwrap_or_default();
        if metric(&text, counter).is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(Instant::now() < until, "{counter} never counted:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    unsafe { libc::kill(sensor.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = sensor.0.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if let Some(mut e) = sensor.0.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status, err)
}

/// Findings a sink gave up on make `run` exit 4, not 0: a webhook whose
/// receiver is down (a closed loopback port; no spool, no retries). The
/// same finding delivered (a JSON Lines file) exits 0.
#[test]
fn lost_findings_make_run_exit_non_zero() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: live capture needs root");
        return;
    }
    let closed = free_port();
    let (status, err) = run_until_sink_counted(
        &format!(
            "type = \"webhook\"\nurl = \"http://127.0.0.1:{closed}/in\"\nmax_retries = 0\ntimeout_ms = 2000"
        ),
        "shadowmcp_sink_dropped_total{",
    );
    assert_eq!(status.code(), Some(4), "{err}");
    assert!(err.contains("findings were lost"), "{err}");

    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-delivered-")
        .tempdir()
        .expect("scratch dir");
    let out = dir.path().join("delivered.jsonl");
    let (status, err) = run_until_sink_counted(
        &format!("type = \"jsonl\"\npath = \"{}\"", out.display()),
        "shadowmcp_sink_deliveries_total{",
    );
    assert_eq!(status.code(), Some(0), "{err}");
}
