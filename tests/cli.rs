//! Command-line behaviour: exit codes, errors that name the file and packet,
//! and the signature commands.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shadowmcp-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A classic pcap (Ethernet) with the given frames.
fn pcap_bytes(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    etherparse::PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(40000, 9999)
        .write(&mut out, payload)
        .expect("frame");
    out
}

#[test]
fn missing_file_is_exit_2_and_named() {
    let o = bin()
        .args(["analyze", "/nonexistent/capture.pcap"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/capture.pcap"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn not_a_capture_is_exit_2() {
    let p = tmp("text.pcap");
    std::fs::write(&p, b"this is not a capture file at all").expect("write");
    let o = bin()
        .args(["analyze", "--quiet"])
        .arg(&p)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("text.pcap"));
}

#[test]
fn truncated_capture_names_file_and_packet_and_keeps_earlier_packets() {
    let frames: Vec<Vec<u8>> = (0..5).map(|i| udp_frame(&[i; 40])).collect();
    let mut bytes = pcap_bytes(&frames);
    bytes.truncate(bytes.len() - 10);
    let p = tmp("truncated.pcap");
    std::fs::write(&p, &bytes).expect("write");
    let o = bin().args(["analyze"]).arg(&p).output().expect("run");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("truncated.pcap: packet 5"), "{err}");
    assert!(
        err.contains("packets 4 "),
        "the 4 complete packets count: {err}"
    );
}

#[test]
fn bad_arguments_are_exit_2() {
    let o = bin()
        .args(["analyze", "--format", "xml", "x.pcap"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let o = bin().args(["analyze"]).output().expect("run");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn help_explains_itself() {
    let o = bin().args(["analyze", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--signatures",
        "--allowlist",
        "--format",
        "--output",
        "--report-sanctioned",
        "--fail-on-findings",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
}
