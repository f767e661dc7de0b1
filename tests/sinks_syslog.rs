//! Syslog sink against rsyslog (Debian packages `rsyslog`, and
//! `rsyslog-gnutls` for TLS), started by the test on loopback ports. rsyslog
//! parses each message as RFC 5424 and writes its fields to a file, which
//! the test reads back.

mod sinks_common;

use serde_json::Value;
use shadowmcp::sinks::{SinkConfig, SinkHandle};
use sinks_common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const SEP: &str = "\u{1f}";

/// rsyslog writes: facility, severity, hostname, app-name, procid, msgid,
/// structured data, msg — separated by U+001F.
fn template() -> String {
    format!(
        "template(name=\"fields\" type=\"string\" string=\"%syslogfacility-text%{SEP}%syslogseverity-text%{SEP}%hostname%{SEP}%app-name%{SEP}%procid%{SEP}%msgid%{SEP}%structured-data%{SEP}%msg%\\n\")\n"
    )
}

struct Rsyslog {
    _guard: ChildGuard,
    out: PathBuf,
    _dir: TmpDir,
}

fn rsyslogd() -> Option<PathBuf> {
    let p = which("rsyslogd");
    if p.is_none() {
        println!("skipping: rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls)");
    }
    p
}

/// Starts rsyslogd in the foreground with `inputs` (config lines), waiting
/// until `tcp_port` accepts connections.
fn start_rsyslog(bin: &Path, dir: TmpDir, globals: &str, inputs: &str, tcp_port: u16) -> Rsyslog {
    let out = dir.join("out.log");
    let conf = format!(
        "global(workDirectory=\"{wd}\" maxMessageSize=\"64k\" {globals})\n{tpl}\
         ruleset(name=\"r\") {{ action(type=\"omfile\" file=\"{out}\" template=\"fields\") }}\n{inputs}\n",
        wd = dir.path().display(),
        tpl = template(),
        out = out.display(),
    );
    let conf_path = dir.join("rsyslog.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-n")
        .arg("-f")
        .arg(&conf_path)
        .arg("-i")
        .arg(dir.join("rsyslog.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let guard = ChildGuard(child);
    if !wait_tcp(tcp_port, Duration::from_secs(15)) {
        let err = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
        panic!("rsyslogd did not listen on {tcp_port}: {err}");
    }
    Rsyslog {
        _guard: guard,
        out,
        _dir: dir,
    }
}

#[derive(Debug)]
struct Line {
    facility: String,
    severity: String,
    hostname: String,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    msg: Value,
}

fn read_lines(path: &Path, app: &str) -> Vec<Line> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(SEP).collect();
            if f.len() != 8 || f[3] != app {
                return None;
            }
            Some(Line {
                facility: f[0].into(),
                severity: f[1].into(),
                hostname: f[2].into(),
                app: f[3].into(),
                procid: f[4].into(),
                msgid: f[5].into(),
                sd: f[6].into(),
                msg: serde_json::from_str(f[7].trim()).unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn syslog_cfg(transport: &str, port: u16, app: &str, extra: Value) -> SinkConfig {
    let mut v = serde_json::json!({
        "type": "syslog", "transport": transport, "address": format!("127.0.0.1:{port}"),
        "app_name": app, "facility": "local3", "hostname": "sensor-7",
        "max_message_bytes": 16384, "backoff_initial_ms": 10, "backoff_max_ms": 200,
    });
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    serde_json::from_value(v).unwrap()
}

fn check(lines: &[Line], ids: std::ops::Range<u64>, app: &str) {
    let mut got: Vec<u64> = lines
        .iter()
        .filter_map(|l| l.msg["test_id"].as_u64())
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        ids.clone().collect::<Vec<_>>(),
        "each message exactly once"
    );
    for l in lines {
        let id = l.msg["test_id"].as_u64().unwrap();
        assert_eq!(l.msg, finding(id), "MSG is the finding JSON");
        assert_eq!(l.facility, "local3");
        assert_eq!(l.severity, "crit");
        assert_eq!(l.hostname, "sensor-7");
        assert_eq!(l.app, app);
        assert_eq!(l.procid, std::process::id().to_string());
        assert_eq!(l.msgid, "SMCP-010");
        assert!(
            l.sd.starts_with("[shadowmcp@32473 verdict=\"shadow\" severity=\"high\""),
            "{}",
            l.sd
        );
        assert!(l.sd.contains(" rule=\"SMCP-010\""), "{}", l.sd);
        assert!(
            l.sd.contains(&format!(" client=\"10.1.4.{id}\"")),
            "{}",
            l.sd
        );
        assert!(
            l.sd.contains(" server=\"mcp.example-vendor.com\""),
            "{}",
            l.sd
        );
        // `"` inside a PARAM-VALUE is escaped (RFC 5424 §6.3.3).
        assert!(l.sd.contains(r#" vendor="Example \"Vendor\"""#), "{}", l.sd);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp_into_rsyslog() {
    let Some(bin) = rsyslogd() else { return };
    let (udp, tcp) = (free_udp_port(), free_tcp_port());
    let inputs = format!(
        "module(load=\"imudp\")\nmodule(load=\"imtcp\")\n\
         input(type=\"imudp\" address=\"127.0.0.1\" port=\"{udp}\" ruleset=\"r\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\" ruleset=\"r\")"
    );
    let rs = start_rsyslog(&bin, TmpDir::new("rsyslog"), "", &inputs, tcp);

    let sink =
        SinkHandle::start(&syslog_cfg("tcp", tcp, "smcp-tcp", serde_json::json!({}))).unwrap();
    for i in 0..20 {
        sink.send(Arc::new(finding(i)));
    }
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((stats.delivered, stats.dropped), (20, 0));
    let lines = wait_for(Duration::from_secs(15), || {
        let l = read_lines(&rs.out, "smcp-tcp");
        (l.len() >= 20).then_some(l)
    })
    .expect("20 TCP messages in rsyslog's file");
    check(&lines, 0..20, "smcp-tcp");

    let sink =
        SinkHandle::start(&syslog_cfg("udp", udp, "smcp-udp", serde_json::json!({}))).unwrap();
    for i in 0..10 {
        sink.send(Arc::new(finding(i)));
        // UDP has no flow control; pace so loopback buffers never overflow.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!(stats.delivered, 10);
    let lines = wait_for(Duration::from_secs(15), || {
        let l = read_lines(&rs.out, "smcp-udp");
        (l.len() >= 10).then_some(l)
    })
    .expect("10 UDP datagrams in rsyslog's file");
    check(&lines, 0..10, "smcp-udp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reconnects_after_receiver_restart() {
    let Some(bin) = rsyslogd() else { return };
    let tcp = free_tcp_port();
    let inputs = format!(
        "module(load=\"imtcp\")\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tcp}\" ruleset=\"r\")"
    );
    let rs = start_rsyslog(&bin, TmpDir::new("rsyslog-re"), "", &inputs, tcp);
    let sink = SinkHandle::start(&syslog_cfg(
        "tcp",
        tcp,
        "smcp-re",
        serde_json::json!({"max_retries": 20}),
    ))
    .unwrap();
    sink.send(Arc::new(finding(1)));
    assert!(sink.flush(Duration::from_secs(10)).await);
    let out = rs.out.clone();
    assert!(
        wait_for(Duration::from_secs(15), || (read_lines(&out, "smcp-re")
            .len()
            == 1)
            .then_some(()))
        .is_some()
    );
    // Restart the receiver: the sink's connection is now dead.
    let Rsyslog { _guard, _dir, .. } = rs;
    drop(_guard);
    let rs = start_rsyslog(&bin, _dir, "", &inputs, tcp);
    sink.send(Arc::new(finding(2)));
    sink.send(Arc::new(finding(3)));
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!(stats.dropped, 0);
    let lines = wait_for(Duration::from_secs(15), || {
        let l = read_lines(&rs.out, "smcp-re");
        (l.len() >= 3).then_some(l)
    })
    .expect("messages after reconnect");
    check(&lines, 1..4, "smcp-re");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_into_rsyslog_gtls() {
    let Some(bin) = rsyslogd() else { return };
    if !Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
        && !Path::new("/usr/lib/aarch64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
    {
        println!("skipping: rsyslog TLS driver not installed (apt-get install rsyslog-gnutls)");
        return;
    }
    let dir = TmpDir::new("rsyslog-tls");
    let pki = make_pki(dir.path(), "s");
    let other = make_pki(dir.path(), "o");
    let tls = free_tcp_port();
    let globals = format!(
        "defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{}\" \
         defaultNetstreamDriverCertFile=\"{}\" defaultNetstreamDriverKeyFile=\"{}\"",
        pki.ca_pem.display(),
        pki.server_cert_pem.display(),
        pki.server_key_pem.display()
    );
    let inputs = format!(
        "module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n\
         input(type=\"imtcp\" address=\"127.0.0.1\" port=\"{tls}\" ruleset=\"r\")"
    );
    let rs = start_rsyslog(&bin, dir, &globals, &inputs, tls);

    let sink = SinkHandle::start(&syslog_cfg(
        "tls",
        tls,
        "smcp-tls",
        serde_json::json!({"ca_file": pki.ca_pem, "tls_server_name": "localhost"}),
    ))
    .unwrap();
    for i in 0..10 {
        sink.send(Arc::new(finding(i)));
    }
    let stats = sink.flush_and_close(Duration::from_secs(10)).await;
    assert_eq!((stats.delivered, stats.dropped), (10, 0));
    let lines = wait_for(Duration::from_secs(15), || {
        let l = read_lines(&rs.out, "smcp-tls");
        (l.len() >= 10).then_some(l)
    })
    .expect("10 TLS messages in rsyslog's file");
    check(&lines, 0..10, "smcp-tls");

    // A CA that did not sign rsyslog's certificate: nothing is sent.
    let sink = SinkHandle::start(&syslog_cfg(
        "tls",
        tls,
        "smcp-badca",
        serde_json::json!({"ca_file": other.ca_pem, "max_retries": 1}),
    ))
    .unwrap();
    sink.send(Arc::new(finding(1)));
    let stats = sink.flush_and_close(Duration::from_secs(5)).await;
    assert_eq!((stats.delivered, stats.dropped, stats.failures), (0, 1, 1));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(read_lines(&rs.out, "smcp-badca").is_empty());
}
