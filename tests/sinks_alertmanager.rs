//! Alertmanager sink against Prometheus Alertmanager (Debian package
//! `prometheus-alertmanager`), started by the test on a loopback port; the
//! alerts are read back with `GET /api/v2/alerts`.

mod sinks_common;

use serde_json::Value;
use shadowmcp::sinks::{SinkConfig, SinkHandle};
use sinks_common::*;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

fn alertmanager_bin() -> Option<std::path::PathBuf> {
    let p = which("prometheus-alertmanager").or_else(|| which("alertmanager"));
    if p.is_none() {
        println!("skipping: Alertmanager not installed (apt-get install prometheus-alertmanager)");
    }
    p
}

fn our_alerts(port: u16) -> Vec<Value> {
    let Some((200, body)) = http_get(port, "/api/v2/alerts") else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["labels"]["alertname"] == "ShadowMCP")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_with_routing_labels() {
    let Some(bin) = alertmanager_bin() else {
        return;
    };
    let dir = TmpDir::new("alertmanager");
    let conf = dir.join("alertmanager.yml");
    std::fs::write(
        &conf,
        "route:\n  receiver: blackhole\n  group_by: [rule, client]\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let port = free_tcp_port();
    let child = Command::new(&bin)
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let _guard = ChildGuard(child);
    let ready = wait_for(Duration::from_secs(30), || {
        matches!(http_get(port, "/-/ready"), Some((200, _))).then_some(())
    });
    assert!(
        ready.is_some(),
        "alertmanager not ready: {}",
        std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
    );

    let cfg: SinkConfig = serde_json::from_value(serde_json::json!({
        "type": "alertmanager",
        "url": format!("http://127.0.0.1:{port}"),
        "labels": {"sensor": "dc1"},
        "resolve_timeout_secs": 600,
        "generator_url": "https://sensor.example/ui",
        "backoff_initial_ms": 10, "backoff_max_ms": 200,
    }))
    .unwrap();
    cfg.validate().unwrap();
    let sink = SinkHandle::start(&cfg).unwrap();
    let mut low = finding(2);
    low["severity"] = "low".into();
    low["confidence"] = "low".into();
    low["rule"]["id"] = "SMCP-011".into();
    low["server"]["vendor"] = Value::Null;
    sink.send(Arc::new(finding(1)));
    sink.send(Arc::new(low));
    assert!(sink.flush(Duration::from_secs(10)).await);

    let alerts = wait_for(Duration::from_secs(15), || {
        let a = our_alerts(port);
        (a.len() >= 2).then_some(a)
    })
    .expect("two alerts in Alertmanager");
    assert_eq!(alerts.len(), 2);
    let by_client = |ip: &str| {
        alerts
            .iter()
            .find(|a| a["labels"]["client"] == ip)
            .cloned()
            .unwrap_or_else(|| panic!("no alert for {ip}: {alerts:?}"))
    };
    let a = by_client("10.1.4.1");
    let l = &a["labels"];
    assert_eq!(l["severity"], "high");
    assert_eq!(l["confidence"], "high");
    assert_eq!(l["verdict"], "shadow");
    assert_eq!(l["rule"], "SMCP-010");
    assert_eq!(l["server"], "mcp.example-vendor.com");
    assert_eq!(l["server_ip"], "192.0.2.10");
    assert_eq!(l["vendor"], "Example \"Vendor\"");
    assert_eq!(l["transport"], "tls");
    assert_eq!(l["sensor"], "dc1");
    assert_eq!(a["status"]["state"], "active");
    assert_eq!(a["generatorURL"], "https://sensor.example/ui");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("10.1.4.1 -> mcp.example-vendor.com")
    );
    let ends = humantime::parse_rfc3339(a["endsAt"].as_str().unwrap()).expect("endsAt RFC 3339");
    let left = ends.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(
        left > Duration::from_secs(500) && left <= Duration::from_secs(601),
        "{left:?}"
    );
    let b = by_client("10.1.4.2");
    assert_eq!(b["labels"]["severity"], "low");
    assert_eq!(b["labels"]["rule"], "SMCP-011");
    assert!(b["labels"].get("vendor").is_none(), "null vendor left out");

    // Re-sending the same finding keeps one alert firing (same label set).
    let fp = a["fingerprint"].clone();
    sink.send(Arc::new(finding(1)));
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((stats.delivered, stats.dropped), (3, 0));
    let alerts = our_alerts(port);
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts.iter().filter(|x| x["fingerprint"] == fp).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_alertmanager_is_counted() {
    let port = free_tcp_port(); // nothing listens there
    let cfg: SinkConfig = serde_json::from_value(serde_json::json!({
        "type": "alertmanager", "url": format!("http://127.0.0.1:{port}/"),
        "max_retries": 2, "backoff_initial_ms": 5, "backoff_max_ms": 20,
    }))
    .unwrap();
    let sink = SinkHandle::start(&cfg).unwrap();
    sink.send(Arc::new(finding(1)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!(
        (
            stats.delivered,
            stats.dropped,
            stats.retries,
            stats.failures
        ),
        (0, 1, 2, 1)
    );
}
