//! JSON Lines sink: file output with size-based rotation and retention,
//! and a set of sinks fed and closed together.

mod sinks_common;

use serde_json::Value;
use shadowmcp::sinks::{SinkConfig, SinkHandle, SinkSet};
use sinks_common::*;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn jsonl(path: &Path, max_bytes: u64, keep: u32) -> SinkConfig {
    serde_json::from_value(serde_json::json!({
        "type": "jsonl", "path": path, "max_bytes": max_bytes, "keep": keep,
    }))
    .unwrap()
}

fn ids_in(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("every line is JSON");
            v["test_id"].as_u64().unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotates_by_size_and_keeps_n() {
    let dir = TmpDir::new("jsonl-rot");
    let path = dir.join("findings.jsonl");
    let line_len = serde_json::to_vec(&finding(10)).unwrap().len() as u64 + 1;
    // Room for three lines (ids 10..99 have equal length) per file.
    let max = line_len * 3 + line_len / 2;
    let sink = SinkHandle::start(&jsonl(&path, max, 2)).unwrap();
    for i in 10..30 {
        sink.send(Arc::new(finding(i)));
    }
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((stats.delivered, stats.dropped), (20, 0));
    // 20 lines, 3 per file: current has 2 (28, 29), .1 has 25..28, .2 has 22..25.
    assert_eq!(ids_in(&path), vec![28, 29]);
    assert_eq!(ids_in(&dir.join("findings.jsonl.1")), vec![25, 26, 27]);
    assert_eq!(ids_in(&dir.join("findings.jsonl.2")), vec![22, 23, 24]);
    assert!(
        !dir.join("findings.jsonl.3").exists(),
        "only keep=2 rotated files"
    );
    for p in [
        path.clone(),
        dir.join("findings.jsonl.1"),
        dir.join("findings.jsonl.2"),
    ] {
        assert!(std::fs::metadata(&p).unwrap().len() <= max);
    }

    // A restart appends to the current file and counts its size.
    let sink = SinkHandle::start(&jsonl(&path, max, 2)).unwrap();
    for i in 30..32 {
        sink.send(Arc::new(finding(i)));
    }
    sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!(ids_in(&path), vec![31]);
    assert_eq!(ids_in(&dir.join("findings.jsonl.1")), vec![28, 29, 30]);
    assert_eq!(ids_in(&dir.join("findings.jsonl.2")), vec![25, 26, 27]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_zero_truncates_and_no_limit_never_rotates() {
    let dir = TmpDir::new("jsonl-keep0");
    let path = dir.join("f.jsonl");
    let line_len = serde_json::to_vec(&finding(10)).unwrap().len() as u64 + 1;
    let sink = SinkHandle::start(&jsonl(&path, line_len * 2, 0)).unwrap();
    for i in 10..15 {
        sink.send(Arc::new(finding(i)));
    }
    sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!(ids_in(&path), vec![14]);
    assert!(!dir.join("f.jsonl.1").exists());

    // A line larger than max_bytes still goes out, alone in its file.
    let big = dir.join("big.jsonl");
    let sink = SinkHandle::start(&jsonl(&big, 10, 1)).unwrap();
    for i in 10..13 {
        sink.send(Arc::new(finding(i)));
    }
    sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!(ids_in(&big), vec![12]);
    assert_eq!(ids_in(&dir.join("big.jsonl.1")), vec![11]);

    let unl = dir.join("unlimited.jsonl");
    let sink = SinkHandle::start(&jsonl(&unl, 0, 3)).unwrap();
    for i in 0..100 {
        sink.send(Arc::new(finding(i)));
    }
    sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!(ids_in(&unl), (0..100).collect::<Vec<_>>());
    assert!(!dir.join("unlimited.jsonl.1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_finding_is_dropped_and_counted() {
    let dir = TmpDir::new("jsonl-big");
    let path = dir.join("f.jsonl");
    let sink = SinkHandle::start(&jsonl(&path, 0, 1)).unwrap();
    let mut big = finding(1);
    big["evidence"] = serde_json::json!([{"signal": "x", "detail": "d".repeat(300 * 1024)}]);
    sink.send(Arc::new(big));
    sink.send(Arc::new(finding(2)));
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((stats.delivered, stats.dropped), (1, 1));
    assert_eq!(ids_in(&path), vec![2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_path_fails_at_start() {
    let dir = TmpDir::new("jsonl-bad");
    let r = SinkHandle::start(&jsonl(&dir.join("no/such/dir/f.jsonl"), 0, 1));
    assert!(r.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_set_fans_out_and_names_are_unique() {
    let dir = TmpDir::new("jsonl-set");
    let a = dir.join("a.jsonl");
    let b = dir.join("b.jsonl");
    let cfgs = vec![
        SinkConfig::parse_cli(&format!("jsonl:{}", a.display())).unwrap(),
        SinkConfig::parse_cli(&format!("jsonl:{}", b.display())).unwrap(),
        SinkConfig::parse_cli(&format!("jsonl:{}", b.display())).unwrap(),
    ];
    let set = SinkSet::start(&cfgs).unwrap();
    let names: Vec<String> = set.stats().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        vec![
            format!("jsonl:{}", a.display()),
            format!("jsonl:{}", b.display()),
            format!("jsonl:{}#2", b.display()),
        ]
    );
    for i in 0..7 {
        set.send(finding(i));
    }
    let stats = set.flush_and_close(Duration::from_secs(10)).await;
    assert!(
        stats
            .iter()
            .all(|(_, s)| s.delivered == 7 && s.dropped == 0)
    );
    assert_eq!(ids_in(&a), (0..7).collect::<Vec<_>>());
    // Two sinks on the same file: every finding twice.
    let mut ids = ids_in(&b);
    ids.sort_unstable();
    assert_eq!(ids, (0..7).flat_map(|i| [i, i]).collect::<Vec<_>>());
}

/// A `format` per sink: the same finding as OCSF and as ECS; JSON that is
/// not a finding record cannot be encoded and is dropped, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sink_encodes_in_its_format() {
    let dir = TmpDir::new("jsonl-format");
    let cfg = |file: &str, format: &str| -> SinkConfig {
        serde_json::from_value(serde_json::json!({
            "type": "jsonl", "path": dir.join(file), "format": format,
        }))
        .unwrap()
    };
    let set = SinkSet::start(&[
        cfg("json.jsonl", "json"),
        cfg("ocsf.jsonl", "ocsf"),
        cfg("ecs.jsonl", "ecs"),
    ])
    .unwrap();
    set.send(finding(7));
    set.send(serde_json::json!({"not": "a finding"}));
    let stats = set.flush_and_close(Duration::from_secs(10)).await;
    let counts: Vec<(u64, u64)> = stats
        .iter()
        .map(|(_, s)| (s.delivered, s.dropped))
        .collect();
    assert_eq!(counts, [(2, 0), (1, 1), (1, 1)]);
    let lines = |f: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    assert_eq!(lines("json.jsonl")[0], finding(7));
    let o = &lines("ocsf.jsonl")[0];
    assert_eq!(o["class_uid"], 2004);
    assert_eq!(o["finding_info"]["analytic"]["uid"], "SMCP-010");
    assert_eq!(o["evidences"][0]["src_endpoint"]["ip"], "10.1.4.7");
    let e = &lines("ecs.jsonl")[0];
    assert_eq!(e["event"]["kind"], "alert");
    assert_eq!(e["destination"]["domain"], "mcp.example-vendor.com");
    assert_eq!(
        e["network"]["community_id"],
        "1:wCb3OG7yAFWelaUydu0D+125CLM="
    );
}

#[test]
fn unknown_format_is_a_configuration_error() {
    let r: Result<SinkConfig, _> = serde_json::from_value(serde_json::json!({
        "type": "webhook", "url": "http://127.0.0.1:1/", "format": "cef",
    }));
    assert!(r.is_err());
}
