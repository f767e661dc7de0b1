//! Fault: the captured interface goes down, then disappears, and returns.
//!
//! The live sensor (`shadowmcp run`) captures on the client end of a veth
//! pair between two network namespaces (the lab of `tests/netlab`), as in
//! `tests/e2e_sensor.rs`. The test runs a real MCP SDK session and waits for
//! its finding; takes the veth down and up again; deletes it and creates it
//! anew (a new interface index under the same name). After each fault it
//! asserts the sensor's log line and metrics (`shadowmcp_capture_up`,
//! `shadowmcp_capture_failures_total`, `shadowmcp_capture_reopens_total`,
//! `/readyz`), then runs another session to a new server address and
//! asserts that it is found: capture resumed.
//!
//! Needs root (namespaces, capture), `ip`, curl and the MCP SDK virtualenv
//! (`pcaps/scripts/setup.sh mcp1`); without one of them it prints
//! `skipping: …` and passes. Every wait is bounded; a passing run takes
//! about 15 s.

mod netlab;
mod sinks_common;

use netlab::*;
use serde_json::Value;
use sinks_common::TmpDir;
use std::path::Path;
use std::time::{Duration, Instant};

/// Inside the client namespace (its own loopback).
const METRICS_PORT: u16 = 9108;
/// The whole test, from the namespaces to the sensor's exit.
const LAB_LIMIT: Duration = Duration::from_secs(55);
const START_LIMIT: Duration = Duration::from_secs(20);
const FINDING_LIMIT: Duration = Duration::from_secs(15);
/// A fault must be noticed (log line, metrics) within this.
const NOTICE_LIMIT: Duration = Duration::from_secs(10);
/// Reopening waits at most 5 s between attempts (REOPEN_MAX_DELAY).
const REOPEN_LIMIT: Duration = Duration::from_secs(12);

fn skip(why: &str) {
    println!("skipping fault_capture: {why}");
}

fn finding_for(path: &Path, server: &str) -> Option<Value> {
    jsonl_findings(path).into_iter().find(|f| {
        f["verdict"] == "shadow"
            && f["rule"]["id"] == "SMCP-001"
            && f["server"]["ip"] == server
            && f["mcp"]["client"] == CLIENT_INFO
    })
}

#[test]
fn capture_survives_interface_down_and_deletion() {
    if let Err(e) = preflight(&[("ip", "iproute2"), ("curl", "curl")]) {
        return skip(&e);
    }
    let dir = TmpDir::new("fault-capture");
    let python = match mcp_python(dir.path()) {
        Ok(p) => p,
        Err(e) => return skip(&e),
    };
    remove_stale_namespaces();
    let mut lab = match Lab::create(dir, LAB_LIMIT) {
        Ok(l) => l,
        Err(e) => return skip(&format!("ip netns unavailable: {e}")),
    };
    let started = Instant::now();
    let d = lab.dir.path().to_owned();
    let veth = lab.veth_client.clone();
    let (client_ns, server_ns) = (lab.client_ns.clone(), lab.server_ns.clone());
    // A fourth address, added after the veth is recreated: a third server
    // (a new finding, not a repeat held back by the suppression window).
    let servers = [lab.addr(2), lab.addr(3), lab.addr(4)];

    // One MCP server on every address of the server namespace: its socket
    // outlives the veth being deleted and recreated.
    let mut c = lab.in_ns(&server_ns, &python);
    c.arg(repo().join("pcaps/scripts/py/server_v1.py"))
        .args(["--transport", "streamable-http", "--host", "0.0.0.0"])
        .args(["--port", &MCP_PORT.to_string(), "--name", "mcp-server"]);
    lab.spawn("mcp-server", c);
    let first = servers[0].clone();
    lab.wait("the MCP server", START_LIMIT, &["mcp-server"], |l| {
        l.assert_running("mcp-server");
        l.tcp_open(&server_ns, &first, MCP_PORT).then_some(())
    });

    let jsonl = d.join("findings.jsonl");
    let config = d.join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\ninterfaces = [\"{veth}\"]\npromisc = false\nworkers = 1\nbuffer_size_mib = 4\n\n\
             [metrics]\nenabled = true\nlisten = \"127.0.0.1:{METRICS_PORT}\"\n\n\
             [[sinks]]\ntype = \"jsonl\"\nname = \"file\"\npath = \"{jsonl}\"\n",
            jsonl = jsonl.display(),
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{METRICS_PORT}");
    let sensor_pid = lab.start_sensor(&config, &base, START_LIMIT);
    let iface = format!("interface=\"{veth}\"");
    let metric = |l: &Lab, name: &str, labels: &[&str]| {
        let (code, body) = l.curl(&format!("{base}/metrics"), &[]);
        assert_eq!(code, 200, "/metrics");
        metric_sum(&body, name, labels)
    };
    assert_eq!(metric(&lab, "shadowmcp_capture_up", &[&iface]), Some(1.0));
    assert_eq!(
        metric(&lab, "shadowmcp_capture_failures_total", &[&iface]),
        Some(0.0)
    );

    // --- Baseline: a session is found.
    lab.mcp_session(&python, &servers[0]);
    lab.wait("the first finding", FINDING_LIMIT, &["sensor"], |_| {
        finding_for(&jsonl, &servers[0])
    });

    // --- Fault 1: the interface goes down, and comes back up.
    let down_at = Instant::now();
    ip(&["-n", &client_ns, "link", "set", &veth, "down"]).unwrap();
    lab.wait(
        "the capture failure after link down",
        NOTICE_LIMIT,
        &["sensor"],
        |l| {
            let failed = metric(l, "shadowmcp_capture_failures_total", &[&iface]);
            let log = l.log("sensor");
            (failed == Some(1.0)
                && log.contains(&format!("capture lost: {veth}: interface went down")))
            .then_some(())
        },
    );
    let noticed_down = down_at.elapsed();
    // A down interface cannot be opened: the attempts fail until it is up.
    lab.wait(
        "a failed reopen while the link is down",
        REOPEN_LIMIT,
        &["sensor"],
        |l| {
            let failed = metric(
                l,
                "shadowmcp_capture_reopens_total",
                &[&iface, "result=\"failure\""],
            );
            let log = l.log("sensor");
            (failed >= Some(1.0) && log.contains("capture still down")).then_some(())
        },
    );
    let failed_while_down = metric(
        &lab,
        "shadowmcp_capture_reopens_total",
        &[&iface, "result=\"failure\""],
    )
    .unwrap_or(0.0);
    ip(&["-n", &client_ns, "link", "set", &veth, "up"]).unwrap();
    let reopened = lab.wait(
        "the capture to be reopened after link up",
        REOPEN_LIMIT,
        &["sensor"],
        |l| {
            let up = metric(l, "shadowmcp_capture_up", &[&iface]);
            let ok = metric(
                l,
                "shadowmcp_capture_reopens_total",
                &[&iface, "result=\"success\""],
            );
            (up == Some(1.0) && ok >= Some(1.0)).then(|| down_at.elapsed())
        },
    );
    lab.mcp_session(&python, &servers[1]);
    lab.wait(
        "the finding after link down/up",
        FINDING_LIMIT,
        &["sensor"],
        |_| finding_for(&jsonl, &servers[1]),
    );

    // --- Fault 2: the interface disappears (deleted with its peer), then a
    // new one with the same name appears.
    let gone_at = Instant::now();
    ip(&["-n", &client_ns, "link", "del", &veth]).unwrap();
    lab.wait(
        "the capture failure after deletion",
        NOTICE_LIMIT,
        &["sensor"],
        |l| {
            let failed = metric(l, "shadowmcp_capture_failures_total", &[&iface]);
            let up = metric(l, "shadowmcp_capture_up", &[&iface]);
            let log = l.log("sensor");
            // The deletion takes the link down first, so the loss may be
            // logged as "went down"; the reopen attempts then name the
            // missing device.
            (failed == Some(2.0)
                && up == Some(0.0)
                && (log.contains("interface disappeared") || log.contains("No such device")))
            .then_some(())
        },
    );
    let (code, body) = lab.curl(&format!("{base}/readyz"), &[]);
    assert_eq!(
        (code, body.trim()),
        (503, "not ready: capture not open"),
        "readiness while the interface is gone"
    );
    // Reopening fails while it is gone: counted, and logged again (the
    // attempts of this outage count from 1).
    lab.wait(
        "a failed reopen while the interface is gone",
        REOPEN_LIMIT,
        &["sensor"],
        |l| {
            let failed = metric(
                l,
                "shadowmcp_capture_reopens_total",
                &[&iface, "result=\"failure\""],
            );
            let logged = l.log("sensor").matches("capture still down").count();
            (failed > Some(failed_while_down) && logged >= 2).then_some(())
        },
    );
    lab.add_veth().unwrap();
    ip(&[
        "-n",
        &server_ns,
        "addr",
        "add",
        &format!("{}/24", servers[2]),
        "dev",
        &lab.veth_server(),
    ])
    .unwrap();
    let recreated_at = Instant::now();
    let recaptured = lab.wait(
        "the capture to be reopened on the new interface",
        REOPEN_LIMIT,
        &["sensor"],
        |l| {
            let up = metric(l, "shadowmcp_capture_up", &[&iface]);
            let ok = metric(
                l,
                "shadowmcp_capture_reopens_total",
                &[&iface, "result=\"success\""],
            );
            (up == Some(1.0) && ok >= Some(2.0)).then(|| recreated_at.elapsed())
        },
    );
    let (code, _) = lab.curl(&format!("{base}/readyz"), &[]);
    assert_eq!(code, 200, "ready again");
    lab.mcp_session(&python, &servers[2]);
    lab.wait(
        "the finding on the recreated interface",
        FINDING_LIMIT,
        &["sensor"],
        |_| finding_for(&jsonl, &servers[2]),
    );
    let log = lab.log("sensor");
    assert_eq!(log.matches("capture reopened").count(), 2, "{log}");
    for l in log.lines().filter(|l| l.contains("capture")) {
        println!("sensor log: {l}");
    }
    let gone_total = gone_at.elapsed();

    // --- The sensor stops cleanly.
    lab.stop_sensor(sensor_pid, Duration::from_secs(15));
    println!(
        "fault_capture: passed in {:.1} s; link down noticed in {:.1} s, recaptured {:.1} s after the down \
         (link kept down for {failed_while_down} failed reopen(s)); recaptured {:.1} s after the interface was \
         recreated ({:.1} s from deletion to the third finding)",
        started.elapsed().as_secs_f64(),
        noticed_down.as_secs_f64(),
        reopened.as_secs_f64(),
        recaptured.as_secs_f64(),
        gone_total.as_secs_f64(),
    );
}
