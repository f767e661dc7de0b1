//! Key logs carried inside pcapng files (Decryption Secrets Blocks): a real
//! rustls session written as a capture, its key log injected by Wireshark's
//! `editcap --inject-secrets`, read back through `FileSource` (libpcap
//! reads the packets, the secrets come from the block walk) and decrypted;
//! the same capture and key log decrypted by `tshark` as a cross-check; and
//! a pcapng with several secrets blocks between the packets, read from a
//! FIFO (the file is read once).
//!
//! Needs `editcap` and `tshark` (Debian: tshark; `scripts/setup.sh
//! --test-receivers` installs them). Without them the test says so and
//! skips, except in CI.

mod common;
mod tls_sessions;

use common::{Frame, TcpConv, pcap_file};
use shadowmcp::capture::FileSource;
use shadowmcp::tls_decrypt::{
    DecryptContext, DecryptLimits, Dir, KeyTable, TlsDecryptor, TlsEvent,
};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use tls_sessions::{Options, Transcript, session};

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "{tool} is missing (scripts/setup.sh --test-receivers installs it)"
        );
        eprintln!("skipped: {tool} is not installed");
    }
    ok
}

/// A scratch directory, removed when dropped.
fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("shadowmcp-{name}-"))
        .tempdir()
        .unwrap()
}

/// The session as TCP frames (client 10.0.0.1:50000, server 10.0.0.2:443).
fn frames(t: &Transcript) -> Vec<Frame> {
    let mut c = TcpConv::new("10.0.0.1", 50000, "10.0.0.2", 443);
    for (c2s, b) in &t.chunks {
        c.send(*c2s, b, 1400);
    }
    c.close();
    c.frames
}

/// Direction and TCP payload of a frame of [`frames`].
fn payload(frame: &[u8]) -> Option<(Dir, Vec<u8>)> {
    let p = etherparse::SlicedPacket::from_ethernet(frame).ok()?;
    let Some(etherparse::TransportSlice::Tcp(tcp)) = p.transport else {
        return None;
    };
    let dir = if tcp.destination_port() == 443 {
        Dir::ClientToServer
    } else {
        Dir::ServerToClient
    };
    Some((dir, tcp.payload().to_vec()))
}

#[derive(Default)]
struct Plain {
    client: Vec<u8>,
    server: Vec<u8>,
}

impl Plain {
    fn on(&mut self, e: TlsEvent<'_>) {
        if let TlsEvent::Plaintext { dir, data } = e {
            match dir {
                Dir::ClientToServer => self.client.extend_from_slice(data),
                Dir::ServerToClient => self.server.extend_from_slice(data),
            }
        }
    }
}

/// Read a capture as the analyzer would: secrets taken before each frame
/// is handled. Returns the plaintext and the frame number (1-based) before
/// which each secrets block was seen.
fn read_and_decrypt(path: &Path) -> (Plain, Vec<u64>) {
    let table = Arc::new(KeyTable::new(1000));
    let ctx = Arc::new(DecryptContext::new(
        table.clone(),
        DecryptLimits::default(),
        1 << 20,
    ));
    let mut d = TlsDecryptor::new(ctx);
    let mut plain = Plain::default();
    let mut seen = Vec::new();
    let mut src = FileSource::open(path).unwrap();
    loop {
        let frame = src.next_frame().unwrap().map(|f| (f.ts, f.data.to_vec()));
        for block in src.take_secrets() {
            let r = table.load_decryption_secrets_block(&block);
            assert_eq!(r.malformed, 0);
            seen.push(src.packets());
            d.poll(0, &mut |e| plain.on(e));
        }
        let Some((ts, data)) = frame else { break };
        if let Some((dir, p)) = payload(&data) {
            d.feed(dir, &p, ts, &mut |e| plain.on(e));
        }
    }
    (plain, seen)
}

#[test]
fn editcap_injected_secrets_decrypt_and_tshark_agrees() {
    if !have("editcap") || !have("tshark") {
        return;
    }
    let dir = temp_dir("dsb");
    let dir = dir.path();
    for (name, o) in [
        ("tls13", Options::default()),
        (
            "tls12",
            Options {
                tls13: false,
                suites: vec![0xc02f, 0xc02b],
                ..Options::default()
            },
        ),
    ] {
        let (t, keys) = session(&o);
        let pcap = dir.join(format!("{name}.pcap"));
        let keylog = dir.join(format!("{name}.keys"));
        let pcapng = dir.join(format!("{name}.pcapng"));
        std::fs::write(&pcap, pcap_file(&frames(&t))).unwrap();
        std::fs::write(&keylog, &keys).unwrap();

        // Wireshark decrypts the same capture with the same key log.
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&pcap)
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keylog.display()))
            .args([
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "http.request.uri",
            ])
            .output()
            .unwrap();
        let uris = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            uris.lines().collect::<Vec<_>>(),
            ["/mcp/0", "/mcp/1"],
            "{name}: tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let st = Command::new("editcap")
            .arg("--inject-secrets")
            .arg(format!("tls,{}", keylog.display()))
            .arg(&pcap)
            .arg(&pcapng)
            .status()
            .unwrap();
        assert!(st.success());
        let (plain, seen) = read_and_decrypt(&pcapng);
        assert_eq!(seen.len(), 1, "{name}: one secrets block");
        assert!(seen[0] <= 1, "{name}: secrets before the packets: {seen:?}");
        assert_eq!(plain.client, t.client_plain, "{name}");
        assert_eq!(plain.server, t.server_plain, "{name}");

        // Without the secrets block nothing decrypts.
        let (plain, seen) = read_and_decrypt(&pcap);
        assert!(seen.is_empty() && plain.client.is_empty());
    }
}

/// pcapng blocks, little-endian.
fn block(ty: u32, body: &[u8]) -> Vec<u8> {
    let mut padded = body.to_vec();
    while !padded.len().is_multiple_of(4) {
        padded.push(0);
    }
    let len = 12 + padded.len() as u32;
    let mut b = ty.to_le_bytes().to_vec();
    b.extend(len.to_le_bytes());
    b.extend(padded);
    b.extend(len.to_le_bytes());
    b
}

fn secrets_block(text: &str) -> Vec<u8> {
    let mut body = 0x544c_534bu32.to_le_bytes().to_vec();
    body.extend((text.len() as u32).to_le_bytes());
    body.extend(text.as_bytes());
    block(0x0a, &body)
}

/// A pcapng of `frames` with secrets blocks inserted before the given
/// frame indexes.
fn pcapng(frames: &[Frame], secrets: &[(usize, String)]) -> Vec<u8> {
    let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    let mut f = block(0x0a0d_0d0a, &shb);
    let mut idb = 1u16.to_le_bytes().to_vec();
    idb.extend([0, 0]);
    idb.extend(65535u32.to_le_bytes());
    f.extend(block(1, &idb));
    for (i, fr) in frames.iter().enumerate() {
        for (_, text) in secrets.iter().filter(|(at, _)| *at == i) {
            f.extend(secrets_block(text));
        }
        let ts = fr.ts as u64;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend(((ts >> 32) as u32).to_le_bytes());
        epb.extend((ts as u32).to_le_bytes());
        epb.extend((fr.bytes.len() as u32).to_le_bytes());
        epb.extend((fr.bytes.len() as u32).to_le_bytes());
        epb.extend(&fr.bytes);
        f.extend(block(6, &epb));
    }
    f
}

#[test]
fn several_secrets_blocks_between_packets_read_once_from_a_fifo() {
    let (t, keys) = session(&Options {
        exchanges: 3,
        ..Options::default()
    });
    let frames = frames(&t);
    let lines: Vec<&str> = keys.lines().collect();
    let (a, b) = lines.split_at(2);
    // Handshake secrets before the ServerHello's frame, the traffic
    // secrets after the first application records (held until they come).
    let first_app = frames.len() / 2;
    let file = pcapng(
        &frames,
        &[(3, a.join("\n") + "\n"), (first_app, b.join("\n") + "\n")],
    );
    let dir = temp_dir("dsb-fifo");
    let dir = dir.path();
    let fifo = dir.join("capture.pcapng");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let writer = {
        let (fifo, file) = (fifo.clone(), file.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            let _ = w.write_all(&file);
        })
    };
    let (plain, seen) = read_and_decrypt(&fifo);
    writer.join().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    // Each block is there before the packet that follows it is handled.
    assert!(seen[0] <= 4 && seen[1] <= first_app as u64 + 1, "{seen:?}");
    assert_eq!(plain.client, t.client_plain);
    assert_eq!(plain.server, t.server_plain);
    // The same bytes as a regular file read the same.
    let path = dir.join("regular.pcapng");
    std::fs::write(&path, &file).unwrap();
    let (again, _) = read_and_decrypt(&path);
    assert_eq!(again.server, t.server_plain);
}
