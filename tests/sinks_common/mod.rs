//! Helpers shared by the sink integration tests: findings, temporary
//! directories, free loopback ports, a test PKI, and child-process guards.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

/// A finding shaped like docs/findings.md, tagged with `id`.
pub fn finding(id: u64) -> Value {
    json!({
        "timestamp": "2026-11-22T05:01:02.123456Z",
        "verdict": "shadow", "severity": "high", "confidence": "high",
        "rule": {"id": "SMCP-010", "name": "TLS/QUIC connection to a known MCP server"},
        "client": {"ip": format!("10.1.4.{}", id % 250), "port": 51234},
        "server": {"ip": "192.0.2.10", "port": 443, "name": "mcp.example-vendor.com",
                   "vendor": "Example \"Vendor\"", "path": null},
        "transport": "tls",
        "evidence": [{"signal": "tls-sni", "detail": "SNI mcp.example-vendor.com, ALPN h2"}],
        "mcp": {"protocol_version": null, "client": null, "server": null,
                "methods": [], "tools": [], "tools_called": []},
        "community_id": "1:wCb3OG7yAFWelaUydu0D+125CLM=",
        "first_seen": "2026-11-22T05:01:02.123456Z",
        "last_seen": "2026-11-22T05:03:40.000001Z",
        "count": 3,
        "test_id": id
    })
}

pub struct TmpDir(pub PathBuf);

impl TmpDir {
    pub fn new(tag: &str) -> TmpDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "shadowmcp-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TmpDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago (for receivers we start).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Finds an executable in PATH (and the sbin directories, which are not
/// always in a non-root PATH).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    for d in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(PathBuf::from(d));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Kills the child on drop so a failing test leaves no receiver behind.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `f` every 50 ms until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:port.
pub fn wait_tcp(port: u16, limit: Duration) -> bool {
    wait_for(limit, || {
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_millis(200),
        )
        .ok()
    })
    .is_some()
}

/// Plain HTTP/1.0 GET on loopback: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.take(16 * 1024 * 1024).read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

/// A CA and a server certificate for `localhost` / 127.0.0.1 signed by it,
/// plus a client certificate; all as PEM files in `dir`.
pub struct Pki {
    pub ca_pem: PathBuf,
    pub server_cert_pem: PathBuf,
    pub server_key_pem: PathBuf,
    pub client_cert_pem: PathBuf,
    pub client_key_pem: PathBuf,
}

pub fn make_pki(dir: &Path, tag: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("shadowmcp test CA {tag}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

    let mut sp =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    sp.distinguished_name.push(DnType::CommonName, "localhost");
    let skey = KeyPair::generate().unwrap();
    let scert = sp.signed_by(&skey, &ca).unwrap();

    let mut cp = CertificateParams::new(vec!["sensor.test".to_string()]).unwrap();
    cp.distinguished_name.push(DnType::CommonName, "sensor");
    let ckey = KeyPair::generate().unwrap();
    let ccert = cp.signed_by(&ckey, &ca).unwrap();

    let p = |n: &str| dir.join(format!("{tag}-{n}"));
    let pki = Pki {
        ca_pem: p("ca.pem"),
        server_cert_pem: p("server.pem"),
        server_key_pem: p("server.key"),
        client_cert_pem: p("client.pem"),
        client_key_pem: p("client.key"),
    };
    std::fs::write(&pki.ca_pem, ca.pem()).unwrap();
    std::fs::write(&pki.server_cert_pem, scert.pem()).unwrap();
    std::fs::write(&pki.server_key_pem, skey.serialize_pem()).unwrap();
    std::fs::write(&pki.client_cert_pem, ccert.pem()).unwrap();
    std::fs::write(&pki.client_key_pem, ckey.serialize_pem()).unwrap();
    pki
}
