//! Fault: the live sensor's webhook receiver is down and the spool
//! directory's file system is full.
//!
//! `shadowmcp run` captures on the client end of a veth pair (the lab of
//! `tests/netlab`); `tcpreplay` sends `pcaps/demo.pcap` (11 findings of
//! every kind; live, 4 of them are reported, the rest are repeats held back
//! by the suppression window) out of the other end. The webhook sink points
//! at a receiver that is not running yet, so findings go to the spool — an
//! 8 KiB tmpfs; with `batch_max = 1` each finding is a file of its own
//! page, so two fit. The test asserts that the sensor keeps
//! running (healthy, ready), that the findings that did not fit are counted
//! in `shadowmcp_sink_dropped_total` and logged with the cause, and that
//! once the receiver starts, the spooled findings are delivered exactly once:
//! the receiver gets every finding of the JSON Lines sink (the reference)
//! except the dropped ones, with no duplicate.
//!
//! Needs root (namespaces, capture, mount), `ip`, curl, tcpreplay and
//! python3; without one of them it prints `skipping: …` and passes.

mod netlab;
mod sinks_common;

use netlab::*;
use serde_json::Value;
use sinks_common::{TmpDir, make_pki};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const METRICS_PORT: u16 = 9108;
const WEBHOOK_PORT: u16 = 18443;
const LAB_LIMIT: Duration = Duration::from_secs(55);
const START_LIMIT: Duration = Duration::from_secs(20);
const SETTLE_LIMIT: Duration = Duration::from_secs(20);
const DELIVERY_LIMIT: Duration = Duration::from_secs(20);

fn skip(why: &str) {
    println!("skipping fault_spool: {why}");
}

/// Unmounts the tmpfs when the test ends, also on panic.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// (rule, community id, client, server) of a finding: unique per emitted
/// finding in this capture.
fn key(f: &Value) -> String {
    format!(
        "{} {} {} {}",
        f["rule"]["id"], f["community_id"], f["client"]["ip"], f["server"]["ip"]
    )
}

fn webhook_findings(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn webhook_spool_on_a_full_disk_in_the_live_sensor() {
    let bins = match preflight(&[
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("tcpreplay", "tcpreplay"),
        ("python3", "python3"),
    ]) {
        Ok(b) => b,
        Err(e) => return skip(&e),
    };
    let (tcpreplay, python) = (bins[2].clone(), bins[3].clone());
    remove_stale_namespaces();
    let mut lab = match Lab::create(TmpDir::new("fault-spool"), LAB_LIMIT) {
        Ok(l) => l,
        Err(e) => return skip(&format!("ip netns unavailable: {e}")),
    };
    let started = Instant::now();
    let d = lab.dir.path().to_owned();
    let spool = d.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8k,mode=0700", "tmpfs"])
        .arg(&spool)
        .status();
    if !mounted.as_ref().is_ok_and(|s| s.success()) {
        return skip(&format!("cannot mount a tmpfs here ({mounted:?})"));
    }
    // Declared after the lab: unmounted before the lab's directory goes.
    let _mount = Mount(spool.clone());
    let pki = make_pki(&d, "webhook");
    let client_ns = lab.client_ns.clone();

    let jsonl = d.join("findings.jsonl");
    let config = d.join("sensor.toml");
    let webhook = format!(
        r#"
[[sinks]]
type = "webhook"
name = "siem"
url = "https://127.0.0.1:{WEBHOOK_PORT}/ingest"
ca_file = "{ca}"
spool_dir = "{spool}"
max_retries = 0
batch_max = 1
batch_timeout_ms = 100
backoff_initial_ms = 100
backoff_max_ms = 300
timeout_ms = 2000
"#,
        ca = pki.ca_pem.display(),
        spool = spool.display(),
    );
    std::fs::write(
        &config,
        lab.sensor_config(1, METRICS_PORT, &jsonl, &webhook),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{METRICS_PORT}");
    let sensor_pid = lab.start_sensor(&config, &base, START_LIMIT);
    let metric = |l: &Lab, name: &str| {
        let (code, body) = l.curl(&format!("{base}/metrics"), &[]);
        assert_eq!(code, 200, "/metrics");
        metric_sum(&body, name, &["sink=\"siem\""]).unwrap_or(0.0)
    };

    // --- Traffic with the receiver down: the spool fills up.
    lab.replay(&tcpreplay, &repo().join("pcaps/demo.pcap"));
    // Settled: the reference sink has every finding and the webhook sink
    // has nothing left in memory; the count has not moved for 2 s.
    let mut last = (0usize, Instant::now());
    let (emitted, dropped, spool_bytes) =
        lab.wait("the findings to settle", SETTLE_LIMIT, &["sensor"], |l| {
            l.assert_running("sensor");
            let n = jsonl_findings(&jsonl).len();
            if n != last.0 {
                last = (n, Instant::now());
            }
            let depth = metric(l, "shadowmcp_sink_queue_depth");
            let dropped = metric(l, "shadowmcp_sink_dropped_total");
            let bytes = metric(l, "shadowmcp_sink_spool_bytes");
            (n > 0 && depth == 0.0 && last.1.elapsed() >= Duration::from_secs(2))
                .then_some((n, dropped, bytes))
        });
    // Live, repeats for the same client and server are held back by the
    // suppression window: fewer findings than `analyze` prints.
    assert!(emitted >= 3, "findings from demo.pcap: {emitted}");
    assert!(dropped >= 1.0, "8 KiB cannot hold {emitted} findings");
    assert!(
        (dropped as usize) < emitted && spool_bytes > 0.0,
        "the first findings are spooled: {dropped} dropped of {emitted}, {spool_bytes} bytes"
    );
    assert_eq!(metric(&lab, "shadowmcp_sink_deliveries_total"), 0.0);
    let log = lab.log("sensor");
    assert!(
        log.contains(
            "sink siem: 1 finding(s) dropped: spool write failed: No space left on device"
        ),
        "{log}"
    );
    // Still alive and ready: a full spool is not a reason to stop.
    lab.assert_running("sensor");
    assert_eq!(lab.curl(&format!("{base}/healthz"), &[]).0, 200);
    assert_eq!(lab.curl(&format!("{base}/readyz"), &[]).0, 200);

    // --- The receiver starts: the spool is delivered, exactly once.
    let received = d.join("webhook.jsonl");
    let mut c = lab.in_ns(&client_ns, &python);
    c.arg(repo().join("tests/e2e/webhook_receiver.py"))
        .arg("127.0.0.1")
        .arg(WEBHOOK_PORT.to_string())
        .arg(&pki.server_cert_pem)
        .arg(&pki.server_key_pem)
        .arg(&received);
    lab.spawn("webhook", c);
    let expected = emitted - dropped as usize;
    let delivered_at = Instant::now();
    lab.wait(
        "the spooled findings at the receiver",
        DELIVERY_LIMIT,
        &["sensor", "webhook"],
        |l| {
            let delivered = metric(l, "shadowmcp_sink_deliveries_total");
            let bytes = metric(l, "shadowmcp_sink_spool_bytes");
            (delivered as usize >= expected && bytes == 0.0).then_some(())
        },
    );
    let delivery_secs = delivered_at.elapsed().as_secs_f64();
    // A moment for a duplicate, if any, to arrive.
    std::thread::sleep(Duration::from_millis(500));
    let got = webhook_findings(&received);
    let reference: BTreeSet<String> = jsonl_findings(&jsonl).iter().map(key).collect();
    let got_keys: Vec<String> = got.iter().map(key).collect();
    let unique: BTreeSet<String> = got_keys.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        got_keys.len(),
        "delivered twice: {got_keys:?}"
    );
    assert_eq!(got.len(), expected, "{got_keys:?}");
    assert!(unique.is_subset(&reference), "{unique:?} vs {reference:?}");
    assert_eq!(metric(&lab, "shadowmcp_sink_dropped_total"), dropped);
    assert_eq!(
        metric(&lab, "shadowmcp_sink_deliveries_total") as usize,
        expected
    );

    // --- The sensor stops cleanly, with exit status 4: findings were lost
    // on the full spool.
    lab.stop_sensor_with_status(sensor_pid, Duration::from_secs(15), 4);
    println!(
        "fault_spool: passed in {:.1} s; {emitted} findings, {dropped} dropped on the full spool \
         ({spool_bytes} bytes spooled), {expected} delivered exactly once {delivery_secs:.1} s \
         after the receiver started",
        started.elapsed().as_secs_f64(),
    );
}
