//! End to end, live TLS decryption: the sensor (`shadowmcp run -i <veth>
//! --tls-keylog FILE`) follows the key log that a real MCP client writes
//! while it runs, and reads the MCP session inside TLS.
//!
//! ```text
//!  namespace smcpc<pid> (client)                       namespace smcps<pid> (server)
//!  ┌───────────────────────────────────────────┐       ┌──────────────────────────────────────┐
//!  │ client_httpx.py (MCP SDK 1.x over httpx), │       │ server_v1.py, FastMCP under uvicorn  │
//!  │   SSLKEYLOGFILE=keys.log                  │       │ with TLS on 10.251.N.2:8443,         │
//!  │ shadowmcp run -i vc<pid> --tls-keylog     ◄─ vc ══ vs ─ certificate for                │
//!  │   keys.log  → findings.jsonl, /metrics    │       │ tools.internal.example               │
//!  └───────────────────────────────────────────┘       └──────────────────────────────────────┘
//! ```
//!
//! The server name has no `mcp` label and is on no list, so only the
//! decrypted plaintext can show MCP. The key log does not exist when the
//! sensor starts (the client creates it). With the key log the finding
//! carries `tls-decrypted` evidence and the session's MCP methods; the same
//! session watched by a sensor without `--tls-keylog` gives no finding.
//!
//! Needs root (namespaces, capture), `ip netns`, curl and the Python SDK
//! virtualenv of `pcaps/scripts/setup.sh mcp1` (or SHADOWMCP_MCP1_PYTHON);
//! without one of them it prints `skipping: …` and passes.
//! `SHADOWMCP_E2E=0` skips it too. Every wait has a deadline; a passing
//! run takes ~10 s once the virtualenv exists.

mod netlab;
mod sinks_common;

use netlab::*;
use serde_json::Value;
use sinks_common::TmpDir;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const TLS_PORT: u16 = 8443;
const METRICS_PORT: u16 = 9108;
const SERVER_NAME: &str = "tools.internal.example";
const LAB_LIMIT: Duration = Duration::from_secs(90);
const START_LIMIT: Duration = Duration::from_secs(30);
const DELIVERY_LIMIT: Duration = Duration::from_secs(20);
const STOP_LIMIT: Duration = Duration::from_secs(15);

fn skip(why: &str) {
    println!("skipping e2e_tls_keylog: {why}");
}

/// A throwaway CA and a certificate for [`SERVER_NAME`]: (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "shadowmcp e2e TLS CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = rcgen::CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let mut sp = CertificateParams::new(vec![SERVER_NAME.to_string()]).unwrap();
    sp.distinguished_name.push(DnType::CommonName, SERVER_NAME);
    let key = KeyPair::generate().unwrap();
    let cert = sp.signed_by(&key, &ca).unwrap();
    let p = |n: &str| dir.join(n);
    std::fs::write(p("ca.pem"), ca.pem()).unwrap();
    std::fs::write(p("server.pem"), cert.pem()).unwrap();
    std::fs::write(p("server.key"), key.serialize_pem()).unwrap();
    (p("ca.pem"), p("server.pem"), p("server.key"))
}

fn decrypted(f: &Value) -> bool {
    f["evidence"]
        .as_array()
        .is_some_and(|e| e.iter().any(|x| x["signal"] == "tls-decrypted"))
}

fn methods(f: &Value) -> Vec<String> {
    f["mcp"]["methods"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts the sensor (`name`) with `config` and `extra` flags in the client
/// namespace and waits for its /readyz.
fn start_sensor(lab: &mut Lab, name: &str, config: &Path, extra: &[&Path]) -> u32 {
    let ns = lab.client_ns.clone();
    let mut c = lab.in_ns(&ns, Path::new(env!("CARGO_BIN_EXE_shadowmcp")));
    c.args(["run", "--config"]).arg(config);
    for e in extra {
        c.arg(e);
    }
    c.env("SHADOWMCP_LOG", "info");
    let pid = lab.spawn(name, c);
    let ready = format!("http://127.0.0.1:{METRICS_PORT}/readyz");
    lab.wait("the sensor's /readyz", START_LIMIT, &[name], |l| {
        l.assert_running(name);
        (l.curl(&ready, &[]).0 == 200).then_some(())
    });
    pid
}

fn stop_sensor(lab: &mut Lab, name: &str, pid: u32) {
    kill_group(pid, "TERM");
    let status = lab.wait("the sensor to exit", STOP_LIMIT, &[name], |l| {
        l.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| c.try_wait().ok().flatten())
    });
    assert!(status.success(), "{name}: {status}: {}", lab.log(name));
}

/// One client session over TLS, its secrets written to `keylog` (created
/// by the client).
fn tls_session(lab: &Lab, python: &Path, ca: &Path, keylog: &Path) {
    let mut c = lab.in_ns(&lab.client_ns, python);
    c.arg(repo().join("pcaps/scripts/py/client_httpx.py"))
        .arg("--url")
        .arg(format!("https://{SERVER_NAME}:{TLS_PORT}/mcp"))
        .arg("--cafile")
        .arg(ca)
        .arg("--pin")
        .arg(format!("{SERVER_NAME}={}", lab.addr(2)))
        .env("SSLKEYLOGFILE", keylog);
    let limit = SESSION_LIMIT.min(lab.deadline.saturating_duration_since(Instant::now()));
    match run_bounded(c, lab.dir.path(), "client", limit) {
        Some((s, out, err)) => assert!(
            s.success() && out.contains("negotiated") && out.contains("call"),
            "MCP client session failed ({s}):\n{out}\n{err}"
        ),
        None => panic!("MCP client session did not finish within {limit:?}"),
    }
}

fn scrape(lab: &Lab) -> String {
    let (code, body) = lab.curl(&format!("http://127.0.0.1:{METRICS_PORT}/metrics"), &[]);
    assert_eq!(code, 200, "/metrics");
    body
}

#[test]
fn live_sensor_decrypts_with_a_key_log_the_client_writes() {
    if let Err(e) = preflight(&[("ip", "iproute2"), ("curl", "curl")]) {
        return skip(&e);
    }
    let dir = TmpDir::new("e2e-tls");
    let python = match mcp_python(dir.path()) {
        Ok(p) => p,
        Err(e) => return skip(&e),
    };
    remove_stale_namespaces();
    let mut lab = match Lab::create(dir, LAB_LIMIT) {
        Ok(l) => l,
        Err(e) => return skip(&format!("ip netns unavailable: {e}")),
    };
    let d = lab.dir.path().to_owned();
    let server_ip = lab.addr(2);
    println!(
        "e2e_tls_keylog: {} -> {server_ip}:{TLS_PORT} ({SERVER_NAME}), files in {}",
        lab.addr(1),
        d.display()
    );
    let (ca, cert, key) = certificates(&d);
    let mut c = lab.in_ns(&lab.server_ns, &python);
    c.arg(repo().join("pcaps/scripts/py/server_v1.py"))
        .args(["--transport", "streamable-http", "--host", &server_ip])
        .args(["--port", &TLS_PORT.to_string()])
        .arg("--certfile")
        .arg(&cert)
        .arg("--keyfile")
        .arg(&key);
    lab.spawn("mcp-server", c);
    lab.wait("the TLS MCP server", START_LIMIT, &["mcp-server"], |l| {
        l.assert_running("mcp-server");
        let ns = l.server_ns.clone();
        l.tcp_open(&ns, &server_ip, TLS_PORT).then_some(())
    });

    let veth = lab.veth_client.clone();
    let config = |jsonl: &Path, workers: usize| {
        let path = d.join(format!(
            "{}.toml",
            jsonl
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("sensor")
        ));
        std::fs::write(
            &path,
            format!(
                "[capture]\ninterfaces = [\"{veth}\"]\npromisc = false\nworkers = {workers}\nbuffer_size_mib = 8\n\n\
                 [detection]\ndefault_overlays = false\n\n\
                 [metrics]\nenabled = true\nlisten = \"127.0.0.1:{METRICS_PORT}\"\n\n\
                 [[sinks]]\ntype = \"jsonl\"\nname = \"file\"\npath = \"{jsonl}\"\n",
                jsonl = jsonl.display(),
            ),
        )
        .unwrap();
        path
    };

    // --- With the key log: it does not exist when the sensor starts. Two
    // workers (queues), then one (the capture thread runs the engine).
    for workers in [2, 1] {
        let keylog = d.join(format!("keys-{workers}.log"));
        let with_keys = d.join(format!("with-keys-{workers}.jsonl"));
        let cfg = config(&with_keys, workers);
        let name = format!("sensor-keys-{workers}");
        let pid = start_sensor(&mut lab, &name, &cfg, &[Path::new("--tls-keylog"), &keylog]);
        assert!(!keylog.exists());
        tls_session(&lab, &python, &ca, &keylog);
        assert!(keylog.exists(), "the client wrote no key log");
        let found = lab.wait(
            "a decrypted finding in the JSON Lines file",
            DELIVERY_LIMIT,
            &[name.as_str()],
            |_| {
                jsonl_findings(&with_keys)
                    .into_iter()
                    .find(|f| decrypted(f) && methods(f).iter().any(|m| m == "tools/call"))
            },
        );
        assert_eq!(found["server"]["name"], SERVER_NAME, "{found}");
        assert_eq!(found["server"]["ip"], server_ip.as_str(), "{found}");
        assert_eq!(found["verdict"], "shadow", "{found}");
        let m = methods(&found);
        for want in ["initialize", "tools/list", "tools/call"] {
            assert!(m.iter().any(|x| x == want), "{want}: {m:?}");
        }
        // Decryption counters are published about once a second: the
        // finding can reach the sink before them.
        let text = lab.wait(
            "the decryption counters on /metrics",
            DELIVERY_LIMIT,
            &[name.as_str()],
            |l| {
                let text = scrape(l);
                (metric_sum(&text, "shadowmcp_tls_decrypt_flows_decrypted_total", &[])
                    .unwrap_or(0.0)
                    >= 1.0)
                    .then_some(text)
            },
        );
        let v = |name: &str, labels: &[&str]| metric_sum(&text, name, labels).unwrap_or(0.0);
        assert!(
            v("shadowmcp_tls_keylog_lines_total", &["result=\"key\""]) >= 5.0,
            "{text}"
        );
        assert_eq!(
            v(
                "shadowmcp_tls_decrypt_failures_total",
                &["reason=\"auth_failure\""]
            ),
            0.0
        );
        stop_sensor(&mut lab, &name, pid);
    }

    // --- The same session without the key log: nothing to report.
    let without = d.join("without-keys.jsonl");
    let cfg = config(&without, 1);
    let pid = start_sensor(&mut lab, "sensor-plain", &cfg, &[]);
    tls_session(&lab, &python, &ca, &d.join("other-keys.log"));
    // The sensor saw the session's ClientHellos...
    lab.wait(
        "the sensor to read the ClientHellos",
        DELIVERY_LIMIT,
        &["sensor-plain"],
        |l| {
            let text = scrape(l);
            (metric_sum(
                &text,
                "shadowmcp_parser_messages_total",
                &["protocol=\"tls\""],
            )
            .unwrap_or(0.0)
                >= 1.0)
                .then_some(())
        },
    );
    assert!(!scrape(&lab).contains("shadowmcp_tls_decrypt_"));
    // ...and, once stopped (held findings are flushed), reported nothing.
    stop_sensor(&mut lab, "sensor-plain", pid);
    let found = jsonl_findings(&without);
    assert!(found.is_empty(), "{found:?}");
}
