//! Every capture in `pcaps/` is analyzed by the real binary and compared with
//! its reviewed golden output `pcaps/expected/<name>.jsonl`. Extra arguments
//! for a capture live in `pcaps/expected/<name>.args` (one per line; paths are
//! relative to the repository root). Regenerate after a reviewed change with
//! `SHADOWMCP_BLESS=1 cargo test --test golden` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("pcaps"))
        .expect("pcaps/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .collect();
    v.sort();
    v
}

/// Whether every finding of `small` is one of `big`'s (same rule, client
/// and server) with evidence that `big`'s has too.
fn within(small: &str, big: &str) -> bool {
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let key = |f: &serde_json::Value| {
        (
            f["rule"]["id"].clone(),
            f["client"].clone(),
            f["server"].clone(),
        )
    };
    let evidence = |f: &serde_json::Value| f["evidence"].as_array().cloned().unwrap_or_default();
    let big = parse(big);
    let small = parse(small);
    !small.is_empty()
        && small.iter().all(|s| {
            big.iter()
                .any(|b| key(b) == key(s) && evidence(s).iter().all(|e| evidence(b).contains(e)))
        })
}

fn run(capture: &Path) -> (String, String, i32) {
    run_with(capture, &[])
}

fn run_with(capture: &Path, extra: &[&str]) -> (String, String, i32) {
    let name = capture
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    let args_file = root().join("pcaps/expected").join(format!("{name}.args"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shadowmcp"));
    // Overlays installed on the machine must not change golden outputs.
    cmd.current_dir(root())
        .arg("analyze")
        .arg("--no-progress")
        .arg("--no-default-overlays")
        .args(["--sensor-name", "golden-sensor"])
        .args(extra);
    if let Ok(text) = std::fs::read_to_string(&args_file) {
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            cmd.arg(line);
        }
    }
    // Relative to the repository root: the path is in every finding.
    cmd.arg(capture.strip_prefix(root()).unwrap_or(capture));
    let out = cmd.output().expect("run shadowmcp");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn every_capture_matches_its_golden_output() {
    let bless = std::env::var_os("SHADOWMCP_BLESS").is_some();
    let caps = captures();
    assert!(!caps.is_empty(), "no captures in pcaps/");
    let mut failures = Vec::new();
    for cap in &caps {
        let name = cap
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let golden = root().join("pcaps/expected").join(format!("{name}.jsonl"));
        let (stdout, stderr, code) = run(cap);
        // The output does not depend on the number of workers, order included
        // (docs/findings.md, "Workers and reproducibility"), except that what
        // discovery attributes (SMCP-013, and the lookups and connections a
        // discovered host joins) is found only when one worker read both:
        // then each finding is one of the one-worker run's, with part of
        // its evidence.
        let (parallel, _, _) = run_with(cap, &["--workers", "3"]);
        let same = if stdout.contains("\"discovered-host\"") {
            within(&parallel, &stdout)
        } else {
            parallel == stdout
        };
        if !bless && !same {
            failures.push(format!(
                "{name}: --workers 3 differs from --workers 1\n--- 1\n{stdout}\n--- 3\n{parallel}"
            ));
        }
        if code != 0 {
            failures.push(format!("{name}: exit {code}\n{stderr}"));
            continue;
        }
        if bless {
            std::fs::write(&golden, &stdout).expect("write golden");
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == stdout => {}
            Ok(want) => failures.push(format!(
                "{name}: output differs from {}\n--- want\n{want}\n--- got\n{stdout}",
                golden.display()
            )),
            Err(_) => failures.push(format!(
                "{name}: no golden file {} (run with SHADOWMCP_BLESS=1 and review)",
                golden.display()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} captures failed:\n{}",
        failures.len(),
        caps.len(),
        failures.join("\n\n")
    );
}

/// The text format of every capture: no line wider than 120 columns, and
/// no name cut: every word of the vendors, servers, client and server
/// applications, tools and evidence of the JSON findings appears whole.
#[test]
fn text_output_fits_120_columns_and_keeps_words_whole() {
    let mut failures = Vec::new();
    let mut rows = 0;
    for cap in captures() {
        let name = cap
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        let (text, stderr, code) = run_with(&cap, &["--format", "text"]);
        assert_eq!(code, 0, "{name}: {stderr}");
        for (n, line) in text.lines().enumerate() {
            if line.chars().count() > 120 {
                failures.push(format!(
                    "{name}:{}: {} columns: {line}",
                    n + 1,
                    line.chars().count()
                ));
            }
        }
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let (json, _, _) = run(&cap);
        for f in json
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            rows += 1;
            let mut words: Vec<String> = Vec::new();
            let mut add = |v: &serde_json::Value| {
                if let Some(s) = v.as_str() {
                    words.extend(s.split_whitespace().map(str::to_owned));
                }
            };
            for k in ["name", "vendor"] {
                add(&f["server"][k]);
            }
            for k in ["client", "server"] {
                add(&f["mcp"][k]);
            }
            for t in f["mcp"]["tools"].as_array().into_iter().flatten() {
                add(t);
            }
            for e in f["evidence"].as_array().into_iter().flatten() {
                add(&e["detail"]);
            }
            for w in words {
                if !tokens.iter().any(|t| t.contains(w.as_str())) {
                    failures.push(format!("{name}: `{w}` is not whole in the text output"));
                }
            }
        }
    }
    assert!(rows > 50, "only {rows} findings rendered");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
