//! The live sensor's two pipeline shapes find what `analyze` finds.
//!
//! With one worker and one interface the capture thread runs the engine
//! itself (`Dispatcher::inline`); with two workers it shards batches into
//! the workers' queues. `tcpreplay` sends `pcaps/demo.pcap` (findings of
//! every kind) onto the veth of the lab of `tests/netlab` while
//! `shadowmcp run` captures there, once per shape. The test asserts that
//! every frame sent was processed (none dropped at a queue or in the
//! kernel), and that both shapes report the same findings, each one that
//! `analyze` reports for the file (live, repeats of a client, server and
//! rule are held back by the suppression window, so live reports a subset).
//!
//! Needs root (namespaces, capture), `ip`, curl and tcpreplay; without one
//! of them it prints `skipping: …` and passes.

mod netlab;
mod sinks_common;

use netlab::*;
use serde_json::Value;
use sinks_common::TmpDir;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const METRICS_PORT: u16 = 9108;
const LAB_LIMIT: Duration = Duration::from_secs(50);
const START_LIMIT: Duration = Duration::from_secs(20);
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(15);

fn skip(why: &str) {
    println!("skipping live_pipeline: {why}");
}

/// What a finding is about, whichever flow of the pair was reported first.
fn key(f: &Value) -> String {
    format!(
        "{} {} {} {} {}",
        f["verdict"], f["rule"]["id"], f["server"]["name"], f["server"]["port"], f["transport"]
    )
}

/// Frames in a classic pcap file, counted by `analyze`'s summary.
fn analyze(pcap: &Path) -> (u64, BTreeSet<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
        .args(["analyze", "--no-progress"])
        .arg(pcap)
        .output()
        .expect("analyze runs");
    assert!(out.status.success(), "analyze: {out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let findings = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|f| key(&f))
        .collect();
    let summary = String::from_utf8_lossy(&out.stderr);
    let packets = summary
        .lines()
        .find_map(|l| l.strip_prefix("packets "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("packets line in the summary");
    (packets, findings)
}

/// One live run with `workers` workers: (frames processed, frames dropped
/// by the kernel or at a queue, findings).
fn live_run(workers: usize, tcpreplay: &Path, pcap: &Path) -> Option<(f64, f64, BTreeSet<String>)> {
    remove_stale_namespaces();
    let mut lab = match Lab::create(TmpDir::new("live-pipeline"), LAB_LIMIT) {
        Ok(l) => l,
        Err(e) => {
            skip(&format!("ip netns unavailable: {e}"));
            return None;
        }
    };
    let d = lab.dir.path().to_owned();
    let jsonl = d.join("findings.jsonl");
    let config = d.join("sensor.toml");
    std::fs::write(
        &config,
        lab.sensor_config(workers, METRICS_PORT, &jsonl, ""),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{METRICS_PORT}");
    let pid = lab.start_sensor(&config, &base, START_LIMIT);
    let metric = |l: &Lab, name: &str| {
        let (code, body) = l.curl(&format!("{base}/metrics"), &[]);
        assert_eq!(code, 200, "/metrics");
        metric_sum(&body, name, &[]).unwrap_or(0.0)
    };
    lab.replay(tcpreplay, pcap);
    // Every frame captured has been processed, and that count holds for 1 s.
    let mut last = (-1.0, Instant::now());
    let (processed, dropped) = lab.wait(
        "the frames to be processed",
        SETTLE_LIMIT,
        &["sensor"],
        |l| {
            l.assert_running("sensor");
            let processed = metric(l, "shadowmcp_processed_packets_total");
            let captured = metric(l, "shadowmcp_packets_total");
            if processed != last.0 {
                last = (processed, Instant::now());
            }
            (processed > 0.0 && processed == captured && last.1.elapsed() >= Duration::from_secs(1))
                .then(|| (processed, metric(l, "shadowmcp_capture_drops_total")))
        },
    );
    // Stopping ends every flow and flushes the findings to the sink.
    lab.stop_sensor(pid, STOP_LIMIT);
    let findings = jsonl_findings(&jsonl).iter().map(key).collect();
    Some((processed, dropped, findings))
}

/// One test, the captures one after the other: the lab's names come from
/// the process id.
#[test]
fn inline_and_queued_workers_find_what_analyze_finds() {
    replay_in_both_shapes("pcaps/demo.pcap", 4);
    // IP fragments reach every worker (only the whole datagram tells its
    // flow); the datagram's own worker inspects it, and each fragment is
    // counted once.
    replay_in_both_shapes("pcaps/fragroute-ipv4-tiny-random.pcap", 1);
    // A VXLAN mirror: the tunnel's source port differs per direction, the
    // flow inside decides the worker.
    replay_in_both_shapes("pcaps/tunnel-vxlan.pcap", 1);
}

/// `capture` replayed to a sensor with one worker (inline) and with two
/// (queues): every frame processed once, none dropped, the same findings
/// in both shapes, all of them ones `analyze` reports (at least `least`).
fn replay_in_both_shapes(capture: &str, least: usize) {
    let bins = match preflight(&[
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("tcpreplay", "tcpreplay"),
    ]) {
        Ok(b) => b,
        Err(e) => return skip(&e),
    };
    let tcpreplay = bins[2].clone();
    let pcap = repo().join(capture);
    let (packets, offline) = analyze(&pcap);
    assert!(offline.len() >= least, "{capture} findings: {offline:?}");
    let Some((p1, d1, inline)) = live_run(1, &tcpreplay, &pcap) else {
        return;
    };
    let Some((p2, d2, queued)) = live_run(2, &tcpreplay, &pcap) else {
        return;
    };
    // Besides the replay the veth carries the kernel's own few frames
    // (IPv6 neighbour discovery and MLD as the link comes up).
    for (shape, processed, dropped) in [("inline", p1, d1), ("queued", p2, d2)] {
        assert_eq!(dropped, 0.0, "{shape}: frames dropped");
        let processed = processed as u64;
        assert!(
            (packets..packets + 32).contains(&processed),
            "{shape}: {processed} frames processed, {packets} sent"
        );
    }
    assert!(!inline.is_empty(), "no finding live");
    assert_eq!(inline, queued, "one worker inline vs two workers");
    assert!(
        inline.is_subset(&offline),
        "live {inline:?}\nnot all in analyze's {offline:?}"
    );
    println!(
        "live_pipeline {capture}: {} findings live (both shapes), {} by analyze, {packets} frames",
        inline.len(),
        offline.len()
    );
}
