//! Decryption of sessions between the OpenSSL command-line tools
//! (`s_client -keylogfile` to `s_server -www` on loopback, through a relay in
//! this test that records both directions): TLS 1.2 without the extended
//! master secret (switched off through an OpenSSL configuration file, which
//! rustls cannot do), TLS 1.2 with it, and TLS 1.3. The plaintext must be
//! the request s_client sent and exactly the response it printed.
//!
//! Needs `openssl` (`scripts/setup.sh --test-receivers` installs it); skips
//! without it, except in CI.

use shadowmcp::tls_decrypt::{
    DecryptContext, DecryptLimits, Dir, KeyTable, TlsDecryptor, TlsEvent,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (client to server?, bytes) in the order the relay read them.
type Recorded = Vec<(bool, Vec<u8>)>;
type Chunks = Arc<Mutex<Recorded>>;

/// Kills the child process it holds when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Copy `from` to `to`, recording every read.
fn pipe(mut from: TcpStream, mut to: TcpStream, c2s: bool, chunks: Chunks) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                chunks.lock().unwrap().push((c2s, buf[..n].to_vec()));
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// One s_client session through a recording relay: (chunks, key log,
/// what s_client printed).
fn session(dir: &Path, client_args: &[&str], no_ems: bool) -> (Recorded, String, Vec<u8>) {
    let mut server = Killed(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                "127.0.0.1:0",
                "-www",
                "-naccept",
                "1",
            ])
            .arg("-cert")
            .arg(dir.join("cert.pem"))
            .arg("-key")
            .arg(dir.join("key.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // "ACCEPT 127.0.0.1:PORT"
    let mut out = BufReader::new(server.0.stdout.take().unwrap());
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "s_server did not start"
        );
        if let Some(p) = line.trim().strip_prefix("ACCEPT 127.0.0.1:") {
            break p.parse().unwrap();
        }
    };
    let relay = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_port = relay.local_addr().unwrap().port();
    let chunks: Chunks = Arc::default();
    let ch = chunks.clone();
    let relay_thread = std::thread::spawn(move || {
        let (client, _) = relay.accept().unwrap();
        let upstream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let ch2 = ch.clone();
        let t = std::thread::spawn(move || pipe(c2, u2, true, ch2));
        pipe(upstream, client, false, ch);
        let _ = t.join();
    });
    let keylog = dir.join("keys.log");
    let _ = std::fs::remove_file(&keylog);
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-quiet", "-ign_eof", "-connect"])
        .arg(format!("127.0.0.1:{relay_port}"))
        .args(client_args)
        .arg("-keylogfile")
        .arg(&keylog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if no_ems {
        cmd.env("OPENSSL_CONF", dir.join("no-ems.cnf"));
    }
    let mut client = Killed(cmd.spawn().unwrap());
    client
        .0
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "s_client did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut printed = Vec::new();
    client
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut printed)
        .unwrap();
    relay_thread.join().unwrap();
    let chunks = chunks.lock().unwrap().clone();
    (chunks, std::fs::read_to_string(&keylog).unwrap(), printed)
}

#[test]
fn openssl_sessions_decrypt() {
    if !Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(std::env::var("CI").is_err(), "openssl is missing");
        eprintln!("skipped: openssl is not installed");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-openssl-")
        .tempdir()
        .expect("scratch dir");
    let dir = dir.path();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("no-ems.cnf"),
        "openssl_conf = c\n[c]\nssl_conf = s\n[s]\nsystem_default = d\n[d]\nOptions = -ExtendedMasterSecret\n",
    )
    .unwrap();
    for (name, args, no_ems, suite) in [
        (
            "TLS 1.2 without extended master secret",
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"][..],
            true,
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ),
        (
            "TLS 1.2 with extended master secret",
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"][..],
            false,
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        ("TLS 1.3", &["-tls1_3"][..], false, "TLS_AES_256_GCM_SHA384"),
    ] {
        let (chunks, keys, printed) = session(dir, args, no_ems);
        // The ClientHello offers the extended master secret (extension 23)
        // only when it is on.
        let hello = &chunks.iter().find(|(c, _)| *c).unwrap().1;
        let offers_ems = hello.windows(4).any(|w| w == [0, 23, 0, 0]);
        if name.starts_with("TLS 1.2") {
            assert_eq!(offers_ems, !no_ems, "{name}");
        }
        let table = Arc::new(KeyTable::new(100));
        table.load_bytes(keys.as_bytes(), name);
        let ctx = Arc::new(DecryptContext::new(
            table,
            DecryptLimits::default(),
            1 << 20,
        ));
        let mut d = TlsDecryptor::new(ctx.clone());
        let (mut c, mut s, mut got_suite) = (Vec::new(), Vec::new(), None);
        for (c2s, b) in &chunks {
            let dir = if *c2s {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            d.feed(dir, b, 0, &mut |e| match e {
                TlsEvent::Plaintext {
                    dir: Dir::ClientToServer,
                    data,
                } => c.extend_from_slice(data),
                TlsEvent::Plaintext {
                    dir: Dir::ServerToClient,
                    data,
                } => s.extend_from_slice(data),
                TlsEvent::Negotiated { suite, .. } => got_suite = suite.map(|s| s.name),
                _ => {}
            });
        }
        assert_eq!(d.done(), None, "{name}: {:?}", ctx.counters.snapshot());
        assert_eq!(got_suite, Some(suite), "{name}");
        assert_eq!(c, b"GET / HTTP/1.0\r\n\r\n", "{name}");
        assert!(s.starts_with(b"HTTP/1.0 200 ok"), "{name}");
        assert_eq!(s, printed, "{name}: the response s_client printed");
    }
}
