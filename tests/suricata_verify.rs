//! The 1,512 real-world captures of Suricata's test suite (none of them MCP)
//! give no finding and no panic. They are read from
//! `../shared/testdata/suricata-verify/pcaps` (never copied into the
//! repository); the test skips, saying so, where that folder is absent.

use std::path::{Path, PathBuf};
use std::process::Command;

fn captures(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() && depth < 8 {
            captures(&p, out, depth + 1);
        } else if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
            out.push(p);
        }
    }
}

#[test]
fn suricata_verify_captures_give_no_finding_and_no_panic() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/suricata-verify/pcaps");
    if !dir.is_dir() {
        println!("skipping: {} absent", dir.display());
        return;
    }
    let mut files = Vec::new();
    captures(&dir, &mut files, 0);
    files.sort();
    assert!(files.len() > 1000, "{} captures", files.len());
    // A hundred captures per run, read as one timeline: a run per capture
    // would take minutes of process start-up.
    for chunk in files.chunks(100) {
        let o = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
            .args(["analyze", "--no-progress"])
            .args(chunk)
            .output()
            .expect("run shadowmcp");
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        let first = chunk.first().map(|p| p.display().to_string());
        assert!(out.trim().is_empty(), "findings from {first:?}…:\n{out}");
        assert!(!err.contains("panicked"), "{err}");
        // Exit 2 only for captures of a link type the sensor does not read
        // (PPP, Cisco HDLC), which are named.
        match o.status.code() {
            Some(0) => {}
            Some(2) => {
                for line in err.lines().filter(|l| l.starts_with("error:")) {
                    assert!(line.contains("unsupported link type"), "{line}");
                }
            }
            other => panic!("exit {other:?} on {first:?}…:\n{err}"),
        }
        assert!(err.contains("findings: shadow 0  sanctioned 0"), "{err}");
    }
}
