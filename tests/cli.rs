//! Command-line behaviour: exit codes, errors that name the file and packet,
//! and the signature commands.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowmcp"))
}

/// A path named `name` in a scratch directory of its own, which is removed
/// when the returned guard drops.
fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("shadowmcp-cli-")
        .tempdir()
        .expect("tmp dir");
    let path = dir.path().join(name);
    (dir, path)
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
    let (_scratch, p) = tmp("text.pcap");
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
    let (_scratch, p) = tmp("truncated.pcap");
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
    // Memory caps of zero would inspect nothing: refused, with the range.
    for flag in ["--tcp-buffer-mib", "--max-tcp-streams"] {
        let o = bin()
            .args(["analyze", flag, "0", "x.pcap"])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "{flag}");
        assert!(
            stderr(&o).contains(flag) && stderr(&o).contains("1..="),
            "{}",
            stderr(&o)
        );
    }
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

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn findings(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn allowlist_sanctions_and_hides_unless_asked() {
    let (_scratch, allow) = tmp("allow.txt");
    std::fs::write(
        &allow,
        "# approved\nmcp.notion.com\n*.linear.app   # whole vendor\n10.0.0.0/8\n",
    )
    .expect("write");
    let cap = root().join("pcaps/tls-sni-known.pcap");
    let o = bin()
        .args(["analyze", "--quiet", "--allowlist"])
        .arg(&allow)
        .arg(&cap)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let names: Vec<String> = findings(&o)
        .iter()
        .map(|f| f["server"]["name"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(!names.contains(&"mcp.notion.com".to_owned()), "{names:?}");
    assert!(!names.contains(&"mcp.linear.app".to_owned()), "{names:?}");
    assert!(names.contains(&"api.githubcopilot.com".to_owned()));

    let o = bin()
        .args(["analyze", "--quiet", "--report-sanctioned", "--allowlist"])
        .arg(&allow)
        .arg(&cap)
        .output()
        .expect("run");
    let all = findings(&o);
    let notion = all
        .iter()
        .find(|f| f["server"]["name"] == "mcp.notion.com")
        .expect("notion reported");
    assert_eq!(notion["verdict"], "sanctioned");
    assert_eq!(notion["severity"], "info");
    assert_eq!(notion["sanctioned_by"], "mcp.notion.com");
    let linear = all
        .iter()
        .find(|f| f["server"]["name"] == "mcp.linear.app")
        .expect("linear reported");
    assert_eq!(linear["sanctioned_by"], "*.linear.app");
}

#[test]
fn bad_allowlist_is_exit_2_with_line() {
    let (_scratch, allow) = tmp("bad-allow.txt");
    std::fs::write(&allow, "mcp.notion.com\nnot a host!\n").expect("write");
    let o = bin()
        .args(["analyze", "--allowlist"])
        .arg(&allow)
        .arg(root().join("pcaps/quic.pcap"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad-allow.txt:2"), "{}", stderr(&o));
}

#[test]
fn fail_on_findings_is_exit_3_only_with_shadow_findings() {
    let o = bin()
        .args(["analyze", "--quiet", "--fail-on-findings"])
        .arg(root().join("pcaps/quic.pcap"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(3));
    let o = bin()
        .args(["analyze", "--quiet", "--fail-on-findings"])
        .arg(root().join("pcaps/negative-lookalikes.pcap"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn min_confidence_filters() {
    let o = bin()
        .args(["analyze", "--quiet", "--min-confidence", "high"])
        .arg(root().join("pcaps/tls-sni-known.pcap"))
        .output()
        .expect("run");
    let all = findings(&o);
    assert_eq!(all.len(), 2, "only notion and linear are high");
    assert!(all.iter().all(|f| f["confidence"] == "high"));
}

#[test]
fn output_file_and_text_format() {
    let (_scratch, out) = tmp("findings.txt");
    let o = bin()
        .args(["analyze", "--quiet", "--format", "text", "-o"])
        .arg(&out)
        .arg(root().join("pcaps/py-streamable-sse.pcap"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    let text = std::fs::read_to_string(&out).expect("output written");
    assert!(
        text.contains("SMCP-001")
            && text.contains("fixture-client 0.9.1")
            && text.contains("tools/call"),
        "{text}"
    );
}

#[test]
fn signatures_check_and_list() {
    let o = bin()
        .args(["signatures", "check"])
        .arg(root().join("signatures"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (_scratch, dir) = tmp("sigs-broken");
    std::fs::create_dir_all(&dir).expect("dir");
    for f in std::fs::read_dir(root().join("signatures"))
        .expect("signatures/")
        .flatten()
    {
        if f.path().extension().is_some_and(|e| e == "toml") {
            std::fs::copy(f.path(), dir.join(f.file_name())).expect("copy");
        }
    }
    let servers = dir.join("servers.toml");
    let mut text = std::fs::read_to_string(&servers).expect("read");
    text.push_str("\n[[server]]\nhost = \"bad host name\"\nvendor = \"X\"\nbogus_key = 1\n");
    std::fs::write(&servers, text).expect("write");
    let o = bin()
        .args(["signatures", "check"])
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("servers.toml:"),
        "errors name the file and position: {err}"
    );
    let o = bin().args(["signatures", "list"]).output().expect("run");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("mcp.notion.com") && text.contains("*.mcp.cloudflare.com"),
        "{text}"
    );
}

#[test]
fn example_sensor_config_checks() {
    let text =
        std::fs::read_to_string(root().join("deploy/shadowmcp.toml")).expect("example config");
    let allow = root().join("deploy/allowlist.example.txt");
    // --check-config checks the host too: point the example at what this
    // machine has (an interface, a writable directory).
    let (_scratch, logs) = tmp("logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    let text = text
        .replace(
            "/etc/shadowmcp/allowlist.txt",
            allow.to_str().expect("utf-8 path"),
        )
        .replace("interfaces = [\"eth1\"]", "interfaces = [\"lo\"]")
        .replace("/var/log/shadowmcp", logs.to_str().expect("utf-8 path"));
    let (_scratch, cfg) = tmp("shadowmcp.toml");
    std::fs::write(&cfg, text).expect("write");
    let o = bin()
        .args(["run", "--check-config", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("OK"));
}

#[test]
fn bad_sensor_config_names_key_and_position() {
    let (_scratch, cfg) = tmp("bad.toml");
    std::fs::write(
        &cfg,
        "[capture]\ninterfaces = [\"eth0\"]\nworkers = \"two\"\n",
    )
    .expect("write");
    let o = bin()
        .args(["run", "--check-config", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("bad.toml:3:") && err.contains("capture.workers"),
        "{err}"
    );
    let o = bin()
        .args([
            "run",
            "--check-config",
            "-i",
            "eth0",
            "--sink",
            "carrier-pigeon:x",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// `analyze --config` reads the same TOML as `run`: its detection and
/// limits settings apply, flags override them, and a bad value names the
/// file and the key (or the flag that set it).
#[test]
fn analyze_reads_the_run_configuration() {
    let (_scratch, cfg) = tmp("analyze.toml");
    std::fs::write(&cfg, "[detection]\nmin_confidence = \"high\"\n").expect("write config");
    let capture = root().join("pcaps/tls-sni-known.pcap");
    let o = bin()
        .args(["analyze", "--quiet", "--config"])
        .arg(&cfg)
        .arg(&capture)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let high = findings(&o);
    assert_eq!(high.len(), 2, "only notion and linear are high");
    let o = bin()
        .args(["analyze", "--quiet", "--min-confidence", "low", "--config"])
        .arg(&cfg)
        .arg(&capture)
        .output()
        .expect("run");
    assert!(
        findings(&o).len() > high.len(),
        "the flag overrides the file"
    );

    std::fs::write(
        &cfg,
        "[limits]\nflow_timeout_secs = 10\nclosed_flow_timeout_secs = 20\n",
    )
    .expect("write config");
    let o = bin()
        .args(["analyze", "--quiet", "--config"])
        .arg(&cfg)
        .arg(&capture)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("analyze.toml") && err.contains("limits.closed_flow_timeout_secs"),
        "{err}"
    );
}

/// Limits that would lose findings or cannot be met are refused, naming
/// the flag.
#[test]
fn analyze_refuses_limits_that_cannot_work() {
    let capture = root().join("pcaps/tls-sni-known.pcap");
    for (args, names) in [
        (vec!["--flow-timeout", "0"], "--flow-timeout"),
        (vec!["--closed-timeout", "400"], "--closed-timeout"),
        (vec!["--max-flows", "0"], "--max-flows"),
        (vec!["--workers", "0"], "--workers"),
        (vec!["--workers", "100000"], "--workers"),
    ] {
        let o = bin()
            .arg("analyze")
            .args(&args)
            .arg(&capture)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(names), "{args:?}: {}", stderr(&o));
    }
}

/// `run --log-format json`: every line on standard error is one JSON
/// object, fatal errors included.
#[test]
fn run_logs_json_lines() {
    let o = bin()
        .args([
            "run",
            "--log-format",
            "json",
            "--metrics-listen",
            "127.0.0.1:0",
            "-i",
            "nosuchif0",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "signatures loaded" && l["level"] == "INFO"),
        "{err}"
    );
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR", "{err}");
    assert!(
        last["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nosuchif0")),
        "{err}"
    );
}

/// `signatures update` writes an overlay from saved registry pages;
/// `analyze --overlay` then knows the host only the overlay names (a TLS
/// connection with that SNI becomes a finding naming it).
#[test]
fn analyze_uses_an_overlay_written_by_signatures_update() {
    let (_scratch, dir) = tmp("overlay-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    let o = bin()
        .args(["signatures", "update", "--source"])
        .arg(root().join("tests/data/signatures/overlay-e2e-pages.json"))
        .arg("--output")
        .arg(&dir)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let capture = root().join("pcaps/tls-sni-known.pcap");
    let names = |extra: &[&std::ffi::OsStr]| {
        let o = bin()
            .args(["analyze", "--quiet", "--no-default-overlays"])
            .args(extra)
            .arg(&capture)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        findings(&o)
            .iter()
            .filter_map(|f| f["server"]["name"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert!(!names(&[]).iter().any(|n| n == "www.example.org"));
    let with = names(&["--overlay".as_ref(), dir.as_os_str()]);
    assert!(with.iter().any(|n| n == "www.example.org"), "{with:?}");
}

/// `analyze --format ocsf|ecs`: one SIEM document per finding (schema
/// validation of both formats: tests/siem_formats.rs).
#[test]
fn analyze_writes_ocsf_and_ecs() {
    let capture = root().join("pcaps/tls-sni-known.pcap");
    let json = bin()
        .args(["analyze", "--quiet", "--no-default-overlays"])
        .arg(&capture)
        .output()
        .expect("run");
    let n = findings(&json).len();
    assert!(n > 0);
    for (format, check) in [("ocsf", "/class_uid"), ("ecs", "/event/kind")] {
        let o = bin()
            .args([
                "analyze",
                "--quiet",
                "--no-default-overlays",
                "--format",
                format,
            ])
            .arg(&capture)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let docs = findings(&o);
        assert_eq!(docs.len(), n, "{format}");
        for d in docs {
            let v = d.pointer(check).cloned().unwrap_or_default();
            let want = if format == "ocsf" {
                serde_json::json!(2004)
            } else {
                serde_json::json!("alert")
            };
            assert_eq!(v, want, "{format}: {d}");
        }
    }
}

/// Every input is checked before any is read: a missing second capture
/// leaves nothing analysed or written; `-o` onto an input is refused and
/// the capture stays as it was.
#[test]
fn inputs_are_checked_before_anything_is_written() {
    let capture = root().join("pcaps/tls-sni-known.pcap");
    let (_scratch, out) = tmp("never-written.jsonl");
    let _ = std::fs::remove_file(&out);
    let o = bin()
        .args(["analyze", "--quiet", "-o"])
        .arg(&out)
        .arg(&capture)
        .arg("/nonexistent/second.pcap")
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/second.pcap"),
        "{}",
        stderr(&o)
    );
    assert!(
        !out.exists(),
        "findings written before the inputs were checked"
    );

    let (_scratch, copy) = tmp("evidence.pcap");
    std::fs::copy(&capture, &copy).expect("copy capture");
    let before = std::fs::read(&copy).expect("read");
    let o = bin()
        .args(["analyze", "--quiet", "-o"])
        .arg(&copy)
        .arg(&copy)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("refusing to overwrite"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&copy).expect("read"), before);
}

/// The text table writes an IPv6 server with its port as `[addr]:port`.
#[test]
fn text_table_brackets_ipv6_servers() {
    let o = bin()
        .args([
            "analyze",
            "--quiet",
            "--no-default-overlays",
            "--format",
            "text",
        ])
        .arg(root().join("pcaps/ipv6.pcap"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("[::1]:"), "{text}");
    assert!(!text.contains(" ::1:"), "{text}");
}

/// Only the plaintext proves MCP on `tools.internal.example` (no `mcp`
/// label, on no list): without the key log nothing is reported; with it
/// the session is found and marked `tls-decrypted`. A malformed key-log
/// line is warned about with its number and the rest is used.
#[test]
fn tls_keylog_reveals_what_names_cannot() {
    let capture = root().join("pcaps/py-tls13-h1.pcap");
    let o = bin()
        .args(["analyze", "--quiet", "--no-default-overlays"])
        .arg(&capture)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(findings(&o).is_empty(), "{:?}", findings(&o));

    let keys = std::fs::read_to_string(root().join("pcaps/py-tls13-h1.keys")).expect("keys");
    let (_scratch, damaged) = tmp("damaged.keys");
    std::fs::write(&damaged, format!("CLIENT_RANDOM zz\n{keys}")).expect("write");
    let o = bin()
        .args(["analyze", "--no-default-overlays", "--tls-keylog"])
        .arg(&damaged)
        .arg(&capture)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("damaged.keys:1:"), "{}", stderr(&o));
    let found = findings(&o);
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f["server"]["name"], "tools.internal.example");
    assert_eq!(f["rule"]["id"], "SMCP-001");
    assert!(
        f["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|x| x["signal"] == "tls-decrypted")),
        "{f}"
    );
}

/// `-` reads the capture from standard input, pcap and pcapng alike (read
/// once: a pipe cannot be reopened).
#[test]
fn dash_reads_a_capture_from_standard_input() {
    use std::io::Write as _;
    let run = |name: &str, stdin: bool| {
        let path = root().join(name);
        let mut cmd = bin();
        cmd.args(["analyze", "--no-default-overlays"]);
        if !stdin {
            return cmd.arg(&path).output().expect("run");
        }
        let mut child = cmd
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        let bytes = std::fs::read(&path).expect("capture");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&bytes)
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let packets = |o: &std::process::Output| {
        stderr(o)
            .lines()
            .find(|l| l.starts_with("packets "))
            .map(str::to_owned)
    };
    let strip = |o: &std::process::Output| {
        findings(o)
            .into_iter()
            .map(|mut f| {
                f.as_object_mut().map(|m| m.remove("observer"));
                f
            })
            .collect::<Vec<_>>()
    };
    let (file, piped) = (
        run("pcaps/tls-sni-known.pcap", false),
        run("pcaps/tls-sni-known.pcap", true),
    );
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert!(!strip(&file).is_empty());
    assert_eq!(strip(&piped), strip(&file));
    let (file, piped) = (
        run("pcaps/py-tls13-pcapng-dsb.pcapng", false),
        run("pcaps/py-tls13-pcapng-dsb.pcapng", true),
    );
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert!(packets(&piped).is_some());
    assert_eq!(packets(&piped), packets(&file));
    // The pcapng carries its keys (a Decryption Secrets Block): piped in,
    // it is decrypted as the file is, without --tls-keylog.
    let decrypted = |o: &std::process::Output| {
        strip(o)
            .iter()
            .filter(|f| {
                f["evidence"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x["signal"] == "tls-decrypted"))
            })
            .count()
    };
    assert_eq!(decrypted(&file), 1, "{:?}", strip(&file));
    assert_eq!(strip(&piped), strip(&file));
    assert!(
        stderr(&piped).contains("tls decryption: flows with keys"),
        "{}",
        stderr(&piped)
    );
    // A classic pcap piped in is not decrypted (nothing would be).
    let plain = run("pcaps/tls-sni-known.pcap", true);
    assert!(
        !stderr(&plain).contains("tls decryption"),
        "{}",
        stderr(&plain)
    );
}

/// `run --metrics-listen` takes a host name with a port.
#[test]
fn metrics_listen_takes_a_host_name() {
    let o = bin()
        .args([
            "run",
            "--check-config",
            "-i",
            "lo",
            "--metrics-listen",
            "localhost:9108",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = bin()
        .args([
            "run",
            "--check-config",
            "-i",
            "lo",
            "--metrics-listen",
            "nohost",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("HOST:PORT"), "{}", stderr(&o));
}

/// `run --check-config` checks what `run` would refuse, short of capturing,
/// and lists every problem: a missing interface, a BPF filter that does
/// not compile, a port out of range, a file sink in a missing directory, an
/// unknown user.
#[test]
fn check_config_lists_every_problem_run_would_meet() {
    let o = bin()
        .args([
            "run",
            "--check-config",
            "-i",
            "nosuchif0",
            "--bpf",
            "port foo",
            "--sink",
            "syslog+udp://host:99999",
            "--sink",
            "jsonl:/nonexistent/dir/f.jsonl",
            "--user",
            "nosuchuser",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    for want in [
        "nosuchif0",
        "port foo",
        "99999",
        "/nonexistent/dir",
        "nosuchuser",
        "5 problem(s)",
    ] {
        assert!(err.contains(want), "{want}: {err}");
    }
    // The bad sink is named by its spec, spelled once, as given.
    let line = err
        .lines()
        .find(|l| l.contains("99999"))
        .unwrap_or_default();
    assert!(
        line.contains("--sink \"syslog+udp://host:99999\": port")
            && line.matches("--sink").count() == 1
            && line.matches("99999").count() == 2,
        "{line}"
    );
    let o = bin()
        .args(["run", "--check-config", "-i", "lo", "--bpf", "tcp port 443"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `run --check-config` and `--tls-keylog`: a key log that does not exist
/// yet is normal (the client writes it when it starts) and only warned
/// about; one in a directory that does not exist, or a directory, is a
/// problem; one readable by others is warned about.
#[test]
fn check_config_checks_key_logs() {
    use std::os::unix::fs::PermissionsExt as _;
    let check = |keylog: &std::path::Path| {
        bin()
            .args(["run", "--check-config", "-i", "lo", "--tls-keylog"])
            .arg(keylog)
            .output()
            .expect("run")
    };
    let (_scratch, dir) = tmp("keylog-check");
    std::fs::create_dir_all(&dir).expect("dir");
    let later = dir.join("later.keys");
    let _ = std::fs::remove_file(&later);
    let o = check(&later);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist yet"), "{}", stderr(&o));

    let o = check(&dir.join("no/such/dir/k.keys"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    let o = check(&dir);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));

    std::fs::write(&later, "").expect("write");
    std::fs::set_permissions(&later, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let o = check(&later);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("chmod 600"), "{}", stderr(&o));
    std::fs::set_permissions(&later, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = check(&later);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("key log"), "{}", stderr(&o));
}

/// The options of one `--help`: long name, whether it takes a value, and
/// the `[default: …]` it shows (continuation lines joined).
fn help_options(args: &[&str]) -> Vec<(String, bool, Option<String>)> {
    let o = bin().args(args).arg("--help").output().expect("help");
    assert_eq!(o.status.code(), Some(0), "{args:?}");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut entries: Vec<String> = Vec::new();
    // The options section: from `Options:` to the next title (examples).
    let options = text
        .lines()
        .skip_while(|l| *l != "Options:")
        .skip(1)
        .take_while(|l| !l.chars().next().is_some_and(char::is_alphabetic));
    for line in options {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.is_empty() {
            // Blank lines separate paragraphs of one option's long help.
        } else if indent <= 6 && t.starts_with('-') {
            entries.push(t.to_owned());
        } else if indent > 6
            && let Some(last) = entries.last_mut()
        {
            last.push(' ');
            last.push_str(t);
        } else {
            // A section title or an example ends the entry.
            entries.push(String::new());
        }
    }
    entries
        .iter()
        .filter_map(|e| {
            let mut words = e.split_whitespace().skip_while(|w| !w.starts_with("--"));
            let name = words.next()?.trim_end_matches(',').to_owned();
            let takes_value = words.next().is_some_and(|w| w.starts_with(['<', '[']));
            let default = e
                .split_once("[default: ")
                .and_then(|(_, rest)| rest.split_once(']').map(|(v, _)| v.to_owned()));
            Some((name, takes_value, default))
        })
        .collect()
}

/// Every option that takes a value and has a default shows it in
/// `--help`, and the value shown is the one the program uses: for the
/// flags that override a configuration key, `Config::default()`'s.
#[test]
fn help_shows_every_default_and_it_is_the_one_used() {
    use shadowmcp::config::Config;
    use shadowmcp::signatures::update::{DEFAULT_OUTPUT_DIR, DEFAULT_SOURCE, UpdateOptions};
    let c = Config::default();
    let name = |v: serde_json::Value| v.as_str().map(str::to_owned).expect("a string");
    let shared = vec![
        ("--sensor-name", "the host name".to_owned()),
        ("--signatures", "the built-in set".to_owned()),
        (
            "--min-confidence",
            name(serde_json::to_value(c.detection.min_confidence).expect("json")),
        ),
        ("--max-flows", c.limits.max_flows.to_string()),
        ("--max-tcp-streams", c.limits.max_tcp_streams.to_string()),
        ("--tcp-buffer-mib", c.limits.tcp_buffer_mib.to_string()),
        ("--flow-timeout", c.limits.flow_timeout_secs.to_string()),
        (
            "--closed-timeout",
            c.limits.closed_flow_timeout_secs.to_string(),
        ),
    ];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(
        c.capture.workers, cores,
        "run's default is one worker per core"
    );
    let mut run = shared.clone();
    run.extend([
        ("--snaplen", c.capture.snaplen.to_string()),
        ("--buffer-size", c.capture.buffer_size_mib.to_string()),
        ("--promisc", c.capture.promisc.to_string()),
        ("--workers", "one per core".to_owned()),
        ("--metrics-listen", c.metrics.listen.to_string()),
        ("--log-format", "text".to_owned()),
    ]);
    let mut analyze = shared;
    analyze.extend([
        ("--format", "json".to_owned()),
        ("--workers", "1".to_owned()),
    ]);
    let u = UpdateOptions::default();
    let update = vec![
        ("--source", DEFAULT_SOURCE.to_owned()),
        ("--output", DEFAULT_OUTPUT_DIR.to_owned()),
        ("--timeout", format!("{}s", u.timeout.as_secs())),
        ("--max-pages", u.max_pages.to_string()),
        ("--signatures", "the built-in set".to_owned()),
    ];
    let list = vec![("--signatures", "the built-in set".to_owned())];
    // Options that take a value but have no default: nothing unless given.
    let none = [
        "--config",
        "--interface",
        "--bpf",
        "--sink",
        "--user",
        "--allowlist",
        "--overlay",
        "--output",
        "--tls-keylog",
        "--ca-file",
    ];
    let mut problems = Vec::new();
    for (args, want) in [
        (&["run"][..], run),
        (&["analyze"][..], analyze),
        (&["signatures", "update"][..], update),
        (&["signatures", "list"][..], list),
        (&["signatures", "check"][..], vec![]),
    ] {
        let opts = help_options(args);
        assert!(opts.len() > 2, "{args:?}: no options parsed");
        for (opt, takes_value, shown) in &opts {
            let expected = want.iter().find(|(o, _)| o == opt).map(|(_, v)| v);
            match (expected, shown) {
                (Some(w), Some(s)) if w == s => {}
                (Some(w), _) => problems.push(format!("{args:?} {opt}: shows {shown:?}, uses {w}")),
                (None, Some(s)) => problems.push(format!("{args:?} {opt}: unexpected default {s}")),
                (None, None) if *takes_value && !none.contains(&opt.as_str()) => {
                    problems.push(format!("{args:?} {opt}: no default shown"))
                }
                (None, None) => {}
            }
        }
        for (o, _) in &want {
            if !opts.iter().any(|(n, _, _)| n == o) {
                problems.push(format!("{args:?} {o}: not in the help"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
