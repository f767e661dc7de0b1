//! End to end: the live sensor (`shadowmcp run`) watching real MCP SDK
//! sessions between two network namespaces, delivering to real receivers.
//!
//! ```text
//!  namespace smcpc<pid> (client)                    namespace smcps<pid> (server)
//!  ┌───────────────────────────────────────┐        ┌──────────────────────────────────┐
//!  │ client_v1.py (MCP SDK 1.x client)     │        │ server_v1.py on 10.251.N.2:8080  │
//!  │ shadowmcp run -i vc<pid>  ◄─captures─ vc<pid> ══ vs<pid>  (unsanctioned)          │
//!  │   └─► 127.0.0.1: HTTPS webhook,       │ .1/24  │ server_v1.py on 10.251.N.3:8080  │
//!  │       rsyslogd (TCP), Alertmanager,   │        │   (sanctioned: on the allowlist) │
//!  │       JSON Lines file; /metrics       │        └──────────────────────────────────┘
//!  └───────────────────────────────────────┘
//! ```
//!
//! The receivers run inside the client namespace because the sensor there
//! cannot reach the host's loopback. The test asserts that the finding for
//! the unsanctioned server reaches every sink and /metrics, that nothing
//! about the sanctioned server reaches any sink, and that SIGTERM stops the
//! sensor cleanly. It needs root (namespaces, capture), `ip netns`, curl,
//! rsyslogd, prometheus-alertmanager and the Python SDK virtualenv made by
//! `pcaps/scripts/setup.sh mcp1`; without one of them it prints
//! `skipping: …` and passes. `SHADOWMCP_E2E=0` skips it too.
//!
//! Every process it starts runs in its own process group and is killed, and
//! both namespaces are deleted, by a guard's `Drop` — also when an assertion
//! fails. Every wait has a deadline; the whole test takes well under a
//! minute once the virtualenv exists (its first creation: ~30 s of pip).

mod netlab;
mod sinks_common;

use netlab::*;
use serde_json::Value;
use sinks_common::{TmpDir, make_pki, which};
use std::path::Path;
use std::time::{Duration, Instant};

/// Ports inside the client namespace (its own loopback: nothing else
/// listens there, so fixed ports cannot collide with other tests).
const WEBHOOK_PORT: u16 = 18443;
const SYSLOG_PORT: u16 = 10514;
const ALERTMANAGER_PORT: u16 = 19093;
const METRICS_PORT: u16 = 9108;
const PROMETHEUS_PORT: u16 = 19090;

/// Deadlines. Besides the virtualenv (netlab), everything from creating
/// the namespaces to SIGTERM takes at most LAB_LIMIT (each wait below is
/// also cut to what is left of it); then STOP_LIMIT for the sensor to exit.
/// Total < 3 minutes; a passing run takes ~6 s once the virtualenv exists.
const LAB_LIMIT: Duration = Duration::from_secs(60);
const START_LIMIT: Duration = Duration::from_secs(30);
const DELIVERY_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(15);

fn skip(why: &str) {
    println!("skipping e2e_sensor: {why}");
}

/// Findings in the webhook receiver's file: each line is one request body, a
/// JSON array of findings.
fn webhook_findings(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .flat_map(|v| v.as_array().cloned().unwrap_or_default())
        .collect()
}

/// The shadow finding the unsanctioned session must produce.
fn is_expected_finding(f: &Value, client: &str, server: &str) -> bool {
    f["verdict"] == "shadow"
        && f["rule"]["id"] == "SMCP-001"
        && f["client"]["ip"] == client
        && f["server"]["ip"] == server
        && f["server"]["port"] == MCP_PORT
        && f["transport"] == "streamable-http"
        && f["mcp"]["client"] == CLIENT_INFO
}

#[test]
fn live_sensor_reports_real_mcp_session_to_every_sink() {
    let bins = match preflight(&[
        ("ip", "iproute2"),
        ("curl", "curl"),
        ("rsyslogd", "rsyslog"),
        ("prometheus-alertmanager", "prometheus-alertmanager"),
    ]) {
        Ok(b) => b,
        Err(e) => return skip(&e),
    };
    let (rsyslogd, alertmanager) = (bins[2].clone(), bins[3].clone());
    // A real Prometheus scraping the sensor (Debian `prometheus`); optional:
    // without it that part is skipped with a note.
    let prometheus = which("prometheus");
    if prometheus.is_none() {
        eprintln!("note: prometheus not installed; the scrape-through-Prometheus check is skipped");
    }
    let dir = TmpDir::new("e2e");
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
    let (client_ip, server_ip, sanctioned_ip) = (lab.addr(1), lab.addr(2), lab.addr(3));
    let d = lab.dir.path().to_owned();
    println!(
        "e2e_sensor: namespaces {} / {}, {client_ip} -> {server_ip} (shadow), {sanctioned_ip} (sanctioned), files in {}",
        lab.client_ns,
        lab.server_ns,
        d.display()
    );

    // --- Receivers, in the client namespace on its loopback.
    let pki = make_pki(&d, "webhook");
    let webhook_out = d.join("webhook.jsonl");
    let mut c = lab.in_ns(&lab.client_ns, &python);
    c.arg(repo().join("tests/e2e/webhook_receiver.py"))
        .arg("127.0.0.1")
        .arg(WEBHOOK_PORT.to_string())
        .arg(&pki.server_cert_pem)
        .arg(&pki.server_key_pem)
        .arg(&webhook_out);
    lab.spawn("webhook", c);

    let syslog_out = d.join("syslog.log");
    let rsyslog_conf = d.join("rsyslog.conf");
    std::fs::create_dir_all(d.join("rsyslog")).unwrap();
    std::fs::write(
        &rsyslog_conf,
        format!(
            "global(workDirectory=\"{wd}\" maxMessageSize=\"64k\")\n\
             template(name=\"fields\" type=\"string\" string=\"%app-name%\\t%msgid%\\t%structured-data%\\t%msg%\\n\")\n\
             ruleset(name=\"r\") {{ action(type=\"omfile\" file=\"{out}\" template=\"fields\") }}\n\
             module(load=\"imtcp\")\n\
             input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{SYSLOG_PORT}\" ruleset=\"r\")\n",
            wd = d.join("rsyslog").display(),
            out = syslog_out.display(),
        ),
    )
    .unwrap();
    let mut c = lab.in_ns(&lab.client_ns, &rsyslogd);
    c.arg("-n")
        .arg("-f")
        .arg(&rsyslog_conf)
        .arg("-i")
        .arg(d.join("rsyslog.pid"));
    lab.spawn("rsyslogd", c);

    let am_conf = d.join("alertmanager.yml");
    std::fs::write(
        &am_conf,
        "route:\n  receiver: blackhole\n  group_by: [rule, client]\nreceivers:\n  - name: blackhole\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("alertmanager")).unwrap();
    let mut c = lab.in_ns(&lab.client_ns, &alertmanager);
    c.arg(format!("--config.file={}", am_conf.display()))
        .arg(format!(
            "--storage.path={}",
            d.join("alertmanager").display()
        ))
        .arg(format!(
            "--web.listen-address=127.0.0.1:{ALERTMANAGER_PORT}"
        ))
        .arg("--cluster.listen-address=");
    lab.spawn("alertmanager", c);

    if let Some(prom) = &prometheus {
        let conf = d.join("prometheus.yml");
        std::fs::write(
            &conf,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: shadowmcp\n    static_configs:\n      - targets: ['127.0.0.1:{METRICS_PORT}']\n"
            ),
        )
        .unwrap();
        let mut c = lab.in_ns(&lab.client_ns, prom);
        c.arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                d.join("prometheus").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}"));
        lab.spawn("prometheus", c);
    }

    // --- MCP servers (Python SDK 1.x FastMCP, streamable HTTP), server namespace.
    for (name, addr) in [
        ("mcp-server", server_ip.as_str()),
        ("mcp-sanctioned", sanctioned_ip.as_str()),
    ] {
        let mut c = lab.in_ns(&lab.server_ns, &python);
        c.arg(repo().join("pcaps/scripts/py/server_v1.py"))
            .args(["--transport", "streamable-http", "--host", addr])
            .args(["--port", &MCP_PORT.to_string(), "--name", name]);
        lab.spawn(name, c);
    }

    let ca = pki.ca_pem.display().to_string();
    let webhook_url = format!("https://127.0.0.1:{WEBHOOK_PORT}/");
    lab.wait("the webhook receiver", START_LIMIT, &["webhook"], |l| {
        l.assert_running("webhook");
        (l.curl(&webhook_url, &["--cacert", &ca]).0 == 200).then_some(())
    });
    lab.wait("rsyslogd", START_LIMIT, &["rsyslogd"], |l| {
        l.assert_running("rsyslogd");
        let ns = l.client_ns.clone();
        l.tcp_open(&ns, "127.0.0.1", SYSLOG_PORT).then_some(())
    });
    let am = format!("http://127.0.0.1:{ALERTMANAGER_PORT}");
    lab.wait("Alertmanager", START_LIMIT, &["alertmanager"], |l| {
        l.assert_running("alertmanager");
        (l.curl(&format!("{am}/-/ready"), &[]).0 == 200).then_some(())
    });
    // Probed from inside the server namespace (its loopback path), so the
    // sensor never sees these connections.
    for (name, addr) in [
        ("mcp-server", &server_ip),
        ("mcp-sanctioned", &sanctioned_ip),
    ] {
        lab.wait(name, START_LIMIT, &[name], |l| {
            l.assert_running(name);
            let ns = l.server_ns.clone();
            l.tcp_open(&ns, addr, MCP_PORT).then_some(())
        });
    }

    // --- The sensor, capturing on the client's veth end.
    let allowlist = d.join("allowlist.txt");
    std::fs::write(
        &allowlist,
        format!("# sanctioned MCP server of the e2e test\n{sanctioned_ip}\n"),
    )
    .unwrap();
    let jsonl_out = d.join("findings.jsonl");
    let config = d.join("sensor.toml");
    std::fs::write(
        &config,
        format!(
            r#"[capture]
interfaces = ["{veth}"]
promisc = false
workers = 2
buffer_size_mib = 8

[detection]
allowlist = "{allowlist}"

[metrics]
enabled = true
listen = "127.0.0.1:{METRICS_PORT}"

[[sinks]]
type = "webhook"
name = "siem"
url = "{webhook_url}ingest"
ca_file = "{ca}"
batch_timeout_ms = 200
backoff_initial_ms = 100
backoff_max_ms = 1000

[[sinks]]
type = "syslog"
name = "syslog"
transport = "tcp"
address = "127.0.0.1:{SYSLOG_PORT}"
hostname = "e2e-sensor"
backoff_initial_ms = 100
backoff_max_ms = 1000

[[sinks]]
type = "alertmanager"
name = "alertmanager"
url = "{am}"
labels = {{ sensor = "e2e" }}
batch_timeout_ms = 200
backoff_initial_ms = 100
backoff_max_ms = 1000

[[sinks]]
type = "jsonl"
name = "file"
path = "{jsonl}"
"#,
            veth = lab.veth_client,
            allowlist = allowlist.display(),
            jsonl = jsonl_out.display(),
        ),
    )
    .unwrap();
    let metrics_url = format!("http://127.0.0.1:{METRICS_PORT}");
    let sensor_pid = lab.start_sensor(&config, &metrics_url, START_LIMIT);
    let scrape = |l: &Lab| {
        let (code, body) = l.curl(&format!("{metrics_url}/metrics"), &[]);
        assert_eq!(code, 200, "/metrics");
        body
    };
    let sessions_before =
        metric_sum(&scrape(&lab), "shadowmcp_mcp_sessions_total", &[]).unwrap_or(0.0);

    // --- The unsanctioned session: its finding must reach every sink.
    lab.mcp_session(&python, &server_ip);
    let expect = |f: &Value| is_expected_finding(f, &client_ip, &server_ip);
    let logs = ["sensor", "webhook"];
    let hook = lab.wait("the finding at the webhook", DELIVERY_LIMIT, &logs, |_| {
        webhook_findings(&webhook_out).into_iter().find(expect)
    });
    assert_eq!(hook["severity"], "high");
    assert_eq!(hook["confidence"], "high");
    assert!(
        hook["mcp"]["methods"]
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == "initialize")),
        "{hook}"
    );
    let file = lab.wait(
        "the finding in the JSON Lines file",
        DELIVERY_LIMIT,
        &logs,
        |_| jsonl_findings(&jsonl_out).into_iter().find(expect),
    );
    assert_eq!(file["community_id"], hook["community_id"]);

    let logs = ["sensor", "rsyslogd"];
    let line = lab.wait("the finding in rsyslog", DELIVERY_LIMIT, &logs, |_| {
        std::fs::read_to_string(&syslog_out)
            .unwrap_or_default()
            .lines()
            .find(|l| l.contains(&format!("server_ip=\"{server_ip}\"")))
            .map(str::to_owned)
    });
    let fields: Vec<&str> = line.splitn(4, '\t').collect();
    assert_eq!(fields.len(), 4, "{line}");
    assert_eq!(fields[0], "shadowmcp", "APP-NAME: {line}");
    assert_eq!(fields[1], "SMCP-001", "MSGID: {line}");
    assert!(fields[2].contains("verdict=\"shadow\""), "{line}");
    assert!(
        fields[2].contains(&format!("client=\"{client_ip}\"")),
        "{line}"
    );
    let msg: Value = serde_json::from_str(fields[3].trim()).expect("MSG is the finding JSON");
    assert!(expect(&msg), "{msg}");

    let logs = ["sensor", "alertmanager"];
    let alert = lab.wait("the alert in Alertmanager", DELIVERY_LIMIT, &logs, |l| {
        let (code, body) = l.curl(&format!("{am}/api/v2/alerts"), &[]);
        let alerts: Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
        alerts
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["alertname"] == "ShadowMCP"
                    && a["labels"]["server_ip"] == server_ip.as_str()
            })
            .cloned()
    });
    let labels = &alert["labels"];
    assert_eq!(labels["verdict"], "shadow", "{alert}");
    assert_eq!(labels["rule"], "SMCP-001", "{alert}");
    assert_eq!(labels["client"], client_ip.as_str(), "{alert}");
    assert_eq!(labels["sensor"], "e2e", "{alert}");
    assert_eq!(labels["transport"], "streamable-http", "{alert}");
    assert!(
        labels["server"]
            .as_str()
            .is_some_and(|s| s.contains(&server_ip)),
        "server label names the server: {alert}"
    );
    assert_eq!(alert["status"]["state"], "active", "{alert}");

    // --- /metrics shows it (the counters are published about once a second).
    let veth_label = format!("interface=\"{}\"", lab.veth_client);
    let metrics = lab.wait(
        "the finding in /metrics",
        DELIVERY_LIMIT,
        &["sensor"],
        |l| {
            let m = scrape(l);
            let findings = metric_sum(
                &m,
                "shadowmcp_findings_total",
                &["verdict=\"shadow\"", "rule=\"SMCP-001\""],
            )
            .unwrap_or(0.0);
            let delivered = ["siem", "syslog", "alertmanager", "file"].iter().all(|s| {
                metric_sum(
                    &m,
                    "shadowmcp_sink_deliveries_total",
                    &[&format!("sink=\"{s}\"")],
                )
                .unwrap_or(0.0)
                    >= 1.0
            });
            // Worker counters are snapshots published about twice a second.
            let sessions = metric_sum(&m, "shadowmcp_mcp_sessions_total", &[]).unwrap_or(0.0);
            (findings >= 1.0 && delivered && sessions > sessions_before).then_some(m)
        },
    );
    if prometheus.is_some() {
        // Prometheus scraped the running sensor: ask it, through its API.
        let url = format!("http://127.0.0.1:{PROMETHEUS_PORT}/api/v1/query");
        let query = "query=sum(shadowmcp_findings_total{verdict=\"shadow\",rule=\"SMCP-001\"})";
        let value = lab.wait(
            "the finding counter in Prometheus",
            DELIVERY_LIMIT,
            &["prometheus"],
            |l| {
                let (code, body) = l.curl(&url, &["-G", "--data-urlencode", query]);
                let v: Value = serde_json::from_str(&body).ok()?;
                let value = v["data"]["result"][0]["value"][1]
                    .as_str()?
                    .parse::<f64>()
                    .ok()?;
                (code == 200 && value >= 1.0).then_some(value)
            },
        );
        assert!(value >= 1.0);
    }
    let packets = metric_sum(&metrics, "shadowmcp_packets_total", &[&veth_label]);
    assert!(
        packets.is_some_and(|p| p > 0.0),
        "packets on {veth_label}: {packets:?}"
    );
    assert!(
        metric_sum(
            &metrics,
            "shadowmcp_findings_total",
            &["verdict=\"sanctioned\""]
        )
        .unwrap_or(0.0)
            == 0.0,
        "sanctioned findings are not reported"
    );
    // Let the first session's counters settle (published about twice a
    // second), so that any later increase is the sanctioned session's.
    let mut last = (
        metric_sum(&metrics, "shadowmcp_mcp_sessions_total", &[]).unwrap_or(0.0),
        Instant::now(),
    );
    let sessions_mid = lab.wait(
        "MCP session counters to settle",
        DELIVERY_LIMIT,
        &["sensor"],
        |l| {
            let now = metric_sum(&scrape(l), "shadowmcp_mcp_sessions_total", &[]).unwrap_or(0.0);
            if now != last.0 {
                last = (now, Instant::now());
            }
            (last.1.elapsed() >= Duration::from_millis(1500)).then_some(now)
        },
    );

    // --- The sanctioned session: seen by the sensor (MCP sessions counter
    // moves), reported nowhere.
    lab.mcp_session(&python, &sanctioned_ip);
    lab.wait(
        "the sanctioned session in /metrics",
        DELIVERY_LIMIT,
        &["sensor"],
        |l| {
            let now = metric_sum(&scrape(l), "shadowmcp_mcp_sessions_total", &[]).unwrap_or(0.0);
            (now > sessions_mid).then_some(())
        },
    );
    let (code, body) = lab.curl(&format!("{metrics_url}/readyz"), &[]);
    assert_eq!((code, body.trim()), (200, "ready"));

    // --- SIGTERM: the sensor flushes its sinks and exits 0 within 15 s.
    lab.stop_sensor(sensor_pid, STOP_LIMIT);
    let log = lab.log("sensor");
    assert!(log.contains("sink closed"), "{log}");

    // After the flush every sink holds all it will ever get: nothing about
    // the sanctioned server, and the shadow finding exactly once per sink
    // (the suppression window holds repeats back).
    let (code, alerts) = lab.curl(&format!("{am}/api/v2/alerts"), &[]);
    assert_eq!(code, 200);
    let sinks = [
        (
            "webhook",
            std::fs::read_to_string(&webhook_out).unwrap_or_default(),
        ),
        (
            "rsyslog",
            std::fs::read_to_string(&syslog_out).unwrap_or_default(),
        ),
        (
            "jsonl",
            std::fs::read_to_string(&jsonl_out).unwrap_or_default(),
        ),
        ("alertmanager", alerts),
    ];
    for (sink, text) in &sinks {
        assert!(
            !text.contains(sanctioned_ip.as_str()),
            "{sink} mentions the sanctioned server {sanctioned_ip}:\n{text}"
        );
    }
    let n_hook = webhook_findings(&webhook_out)
        .iter()
        .filter(|f| expect(f))
        .count();
    let n_file = jsonl_findings(&jsonl_out)
        .iter()
        .filter(|f| expect(f))
        .count();
    assert_eq!((n_hook, n_file), (1, 1), "one finding per sink");
    println!(
        "e2e_sensor: passed in {:.1} s (pid {})",
        started.elapsed().as_secs_f64(),
        lab.pid
    );
}
