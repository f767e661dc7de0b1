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
    let dir = std::env::temp_dir().join(format!("shadowmcp-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
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
        .arg(&dir)
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
    let _ = std::fs::remove_dir_all(&dir);
}
