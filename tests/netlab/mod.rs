//! Network-namespace lab shared by the live-sensor tests: two namespaces
//! joined by a veth pair, bounded child processes, the MCP SDK virtualenv,
//! and readers for the sensor's outputs. Everything a test starts is killed,
//! and both namespaces are deleted, by `Lab`'s `Drop`.
#![allow(dead_code)]

use crate::sinks_common::TmpDir;
use serde_json::Value;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The MCP servers' port in the server namespace.
pub const MCP_PORT: u16 = 8080;
/// What client_v1.py announces in `initialize` (clientInfo).
pub const CLIENT_INFO: &str = "fixture-client 0.9.1";
/// The virtualenv check and creation (only when it is missing) take at most
/// 2 × SDK_CHECK_LIMIT + SETUP_LIMIT.
pub const SDK_CHECK_LIMIT: Duration = Duration::from_secs(10);
pub const SETUP_LIMIT: Duration = Duration::from_secs(70);
/// One MCP client session.
pub const SESSION_LIMIT: Duration = Duration::from_secs(45);

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Runs `cmd` to completion within `limit` (killed after it), stdout and
/// stderr captured in files under `dir`. None when it could not start or
/// ran out of time.
pub fn run_bounded(
    mut cmd: Command,
    dir: &Path,
    tag: &str,
    limit: Duration,
) -> Option<(ExitStatus, String, String)> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = dir.join(format!("run-{n}-{tag}.out"));
    let err = dir.join(format!("run-{n}-{tag}.err"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(File::create(&out).ok()?)
        .stderr(File::create(&err).ok()?)
        .process_group(0)
        .spawn()
        .ok()?;
    let end = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                kill_group(child.id(), "KILL");
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    status.map(|s| (s, read(&out), read(&err)))
}

/// The checks every namespace test starts with: not disabled by
/// `SHADOWMCP_E2E=0`, running as root, and every program in `needs`
/// (name, Debian package) installed. Ok: their paths in order; Err: why the
/// test skips.
pub fn preflight(needs: &[(&str, &str)]) -> Result<Vec<PathBuf>, String> {
    if std::env::var("SHADOWMCP_E2E").is_ok_and(|v| v == "0") {
        return Err("SHADOWMCP_E2E=0".into());
    }
    if !is_root() {
        return Err("needs root (network namespaces, packet capture)".into());
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (bin, pkg) in needs {
        match crate::sinks_common::which(bin) {
            Some(p) => found.push(p),
            None => missing.push(format!("{bin} ({pkg})")),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "not installed: {} (scripts/setup.sh --test-receivers)",
            missing.join(", ")
        ));
    }
    Ok(found)
}

/// Signals the process group `pgid` (every process we start leads its own).
pub fn kill_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces named by this test whose test process is gone (a run killed
/// by a timeout cannot clean up): delete them so they do not accumulate.
pub fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix("smcpc")
            .or_else(|| name.strip_prefix("smcps"))
        else {
            continue;
        };
        if pid.is_empty()
            || !pid.bytes().all(|b| b.is_ascii_digit())
            || Path::new("/proc").join(pid).exists()
        {
            continue;
        }
        if let Ok(p) = Command::new("ip").args(["netns", "pids", name]).output() {
            for q in String::from_utf8_lossy(&p.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-KILL", q]).status();
            }
        }
        let _ = ip(&["netns", "del", name]);
    }
}

/// The Python interpreter of the SDK 1.x virtualenv, made by the project's
/// pinned install when missing.
pub fn mcp_python(scratch: &Path) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("SHADOWMCP_MCP1_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let scripts = repo().join("pcaps/scripts");
    let py = scripts.join(".venv-mcp1/bin/python");
    let has_sdk = |py: &Path| {
        let mut c = Command::new(py);
        c.args([
            "-c",
            "import mcp.server.fastmcp, mcp.client.streamable_http",
        ]);
        matches!(run_bounded(c, scratch, "import-mcp", SDK_CHECK_LIMIT), Some((s, _, _)) if s.success())
    };
    if py.is_file() && has_sdk(&py) {
        return Ok(py);
    }
    println!("e2e_sensor: creating the MCP SDK virtualenv (pcaps/scripts/setup.sh mcp1)");
    let mut c = Command::new("bash");
    c.arg(scripts.join("setup.sh")).arg("mcp1");
    match run_bounded(c, scratch, "setup", SETUP_LIMIT) {
        Some((s, _, _)) if s.success() && has_sdk(&py) => Ok(py),
        Some((s, _, err)) => Err(format!(
            "pcaps/scripts/setup.sh mcp1 failed ({s}); no network to PyPI? {}",
            err.lines().last().unwrap_or("")
        )),
        None => Err(format!(
            "pcaps/scripts/setup.sh mcp1 did not finish within {SETUP_LIMIT:?}"
        )),
    }
}

/// Everything the test started; `Drop` kills the processes (whole process
/// groups) and deletes the namespaces, on success and on panic alike.
pub struct Lab {
    pub pid: u32,
    pub client_ns: String,
    pub server_ns: String,
    pub veth_client: String,
    pub net: String,
    pub dir: TmpDir,
    /// Every wait ends by this instant at the latest.
    pub deadline: Instant,
    pub namespaces: Vec<String>,
    pub children: Vec<(String, Child)>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failing = std::thread::panicking();
        for (name, child) in &mut self.children {
            if let Ok(None) = child.try_wait() {
                kill_group(child.id(), "KILL");
                let _ = child.kill();
            }
            let _ = child.wait();
            if failing {
                let log = std::fs::read_to_string(self.dir.join(&format!("{name}.err")))
                    .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("--- {name} stderr (last lines) ---");
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                eprintln!("warning: {e}");
            }
        }
    }
}

impl Lab {
    pub fn addr(&self, host: u8) -> String {
        format!("{}.{host}", self.net)
    }

    /// Creates both namespaces and the veth pair; every wait ends within
    /// `limit`. Err = `ip netns` is not usable here (a skip, not a failure).
    pub fn create(dir: TmpDir, limit: Duration) -> Result<Lab, String> {
        let pid = std::process::id();
        // 10.251.N.0/24 with N from the pid: the addresses exist only inside
        // the two namespaces, the pid makes concurrent runs easy to tell apart.
        let net = format!("10.251.{}", pid % 250 + 1);
        let mut lab = Lab {
            pid,
            client_ns: format!("smcpc{pid}"),
            server_ns: format!("smcps{pid}"),
            veth_client: format!("vc{pid}"),
            net,
            dir,
            deadline: Instant::now() + limit,
            namespaces: Vec::new(),
            children: Vec::new(),
        };
        let (c, s) = (lab.client_ns.clone(), lab.server_ns.clone());
        ip(&["netns", "add", &c])?;
        lab.namespaces.push(c.clone());
        ip(&["netns", "add", &s])?;
        lab.namespaces.push(s.clone());
        for (ns, dev) in [(&c, "lo"), (&s, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        lab.add_veth()?;
        Ok(lab)
    }

    /// The server side of the veth pair.
    pub fn veth_server(&self) -> String {
        format!("vs{}", self.pid)
    }

    /// Creates the veth pair (again, after a test deleted it) with its
    /// addresses: .1 in the client namespace, .2 and .3 in the server's.
    pub fn add_veth(&self) -> Result<(), String> {
        let (c, s) = (&self.client_ns, &self.server_ns);
        let (vc, vs) = (&self.veth_client, &self.veth_server());
        // Created inside the client namespace, the peer moved straight into
        // the server namespace: the host's own interfaces are never touched.
        ip(&[
            "-n", c, "link", "add", vc, "type", "veth", "peer", "name", vs, "netns", s,
        ])?;
        let (a1, a2, a3) = (self.addr(1), self.addr(2), self.addr(3));
        ip(&["-n", c, "addr", "add", &format!("{a1}/24"), "dev", vc])?;
        ip(&["-n", s, "addr", "add", &format!("{a2}/24"), "dev", vs])?;
        ip(&["-n", s, "addr", "add", &format!("{a3}/24"), "dev", vs])?;
        for (ns, dev) in [(c, vc), (s, vs)] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(())
    }

    /// A sensor configuration capturing on the client veth (promiscuous:
    /// replayed frames carry other addresses) with `workers` workers, the
    /// metrics endpoint on `metrics_port`, a JSON Lines sink to `jsonl`
    /// named `file`, then `extra` (more sinks).
    pub fn sensor_config(
        &self,
        workers: usize,
        metrics_port: u16,
        jsonl: &Path,
        extra: &str,
    ) -> String {
        format!(
            r#"[capture]
interfaces = ["{veth}"]
promisc = true
workers = {workers}
buffer_size_mib = 4

[metrics]
enabled = true
listen = "127.0.0.1:{metrics_port}"

[[sinks]]
type = "jsonl"
name = "file"
path = "{jsonl}"
{extra}"#,
            veth = self.veth_client,
            jsonl = jsonl.display(),
        )
    }

    /// Sends `pcap` out of the server end of the veth as fast as
    /// `tcpreplay` can; asserts that it succeeded within 20 s.
    pub fn replay(&self, tcpreplay: &Path, pcap: &Path) {
        let mut c = self.in_ns(&self.server_ns, tcpreplay);
        c.args(["--topspeed", "-q", "-i", &self.veth_server()])
            .arg(pcap);
        match run_bounded(c, self.dir.path(), "tcpreplay", Duration::from_secs(20)) {
            Some((s, out, err)) => assert!(s.success(), "tcpreplay failed: {out}\n{err}"),
            None => panic!("tcpreplay did not finish"),
        }
    }

    pub fn in_ns(&self, ns: &str, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Starts a long-running process (stdout/stderr in `<name>.out/.err`),
    /// in its own process group so that `Drop` reaches its children too.
    pub fn spawn(&mut self, name: &str, mut cmd: Command) -> u32 {
        let out = File::create(self.dir.join(&format!("{name}.out"))).unwrap();
        let err = File::create(self.dir.join(&format!("{name}.err"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let id = child.id();
        self.children.push((name.to_owned(), child));
        id
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(&format!("{name}.err"))).unwrap_or_default()
    }

    /// Panics (with its log) if the named process has already exited.
    pub fn assert_running(&mut self, name: &str) {
        let exited = self
            .children
            .iter_mut()
            .find(|(n, _)| n == name)
            .and_then(|(_, c)| c.try_wait().ok().flatten());
        if let Some(s) = exited {
            panic!("{name} exited ({s}): {}", self.log(name));
        }
    }

    /// `curl` inside the client namespace: (HTTP status, body); status 0 when
    /// nothing answered.
    pub fn curl(&self, url: &str, extra: &[&str]) -> (u16, String) {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.client_ns,
            "curl",
            "-s",
            "--max-time",
            "5",
        ])
        .args(extra)
        .args(["-w", "\n%{http_code}", url]);
        match run_bounded(c, self.dir.path(), "curl", Duration::from_secs(10)) {
            Some((_, out, _)) => {
                let (body, code) = out.rsplit_once('\n').unwrap_or(("", out.as_str()));
                (code.trim().parse().unwrap_or(0), body.to_owned())
            }
            None => (0, String::new()),
        }
    }

    /// Whether something accepts TCP connections on `addr:port` in `ns`.
    pub fn tcp_open(&self, ns: &str, addr: &str, port: u16) -> bool {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "bash", "-c"])
            .arg(format!("exec 3<>/dev/tcp/{addr}/{port}"));
        matches!(run_bounded(c, self.dir.path(), "probe", Duration::from_secs(5)), Some((s, _, _)) if s.success())
    }

    /// Polls `f` every 100 ms until it returns Some or `limit` passes; then
    /// panics with `what` and the logs of the processes named in `logs`.
    pub fn wait<T>(
        &mut self,
        what: &str,
        limit: Duration,
        logs: &[&str],
        mut f: impl FnMut(&mut Lab) -> Option<T>,
    ) -> T {
        let end = (Instant::now() + limit).min(self.deadline);
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if Instant::now() >= end {
                let mut msg = format!(
                    "timed out waiting for {what} (limit {limit:?}, cut to the test deadline)"
                );
                for l in logs {
                    msg.push_str(&format!("\n--- {l} ---\n{}", self.log(l)));
                }
                panic!("{msg}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts `shadowmcp run --config CONFIG` in the client namespace as the
    /// child named `sensor` and waits up to `limit` for its `/readyz` at
    /// `base` (`http://127.0.0.1:PORT`). Returns its pid.
    pub fn start_sensor(&mut self, config: &Path, base: &str, limit: Duration) -> u32 {
        let ns = self.client_ns.clone();
        let mut c = self.in_ns(&ns, Path::new(env!("CARGO_BIN_EXE_shadowmcp")));
        c.args(["run", "--config"])
            .arg(config)
            .env("SHADOWMCP_LOG", "info");
        let pid = self.spawn("sensor", c);
        self.wait("the sensor's /readyz", limit, &["sensor"], |l| {
            l.assert_running("sensor");
            (l.curl(&format!("{base}/readyz"), &[]).0 == 200).then_some(())
        });
        pid
    }

    /// SIGTERM to the process group of the child named `sensor` (started
    /// with `spawn("sensor", …)`); waits up to `limit` for it to exit and
    /// asserts that it exited 0.
    pub fn stop_sensor(&mut self, pid: u32, limit: Duration) {
        self.stop_sensor_with_status(pid, limit, 0);
    }

    /// As [`Self::stop_sensor`], asserting exit status `code` (4: findings
    /// were lost).
    pub fn stop_sensor_with_status(&mut self, pid: u32, limit: Duration, code: i32) {
        kill_group(pid, "TERM");
        self.deadline = Instant::now() + limit;
        let status = self.wait(
            "the sensor to exit after SIGTERM",
            limit,
            &["sensor"],
            |l| {
                l.children
                    .iter_mut()
                    .find(|(n, _)| n == "sensor")
                    .and_then(|(_, c)| c.try_wait().ok().flatten())
            },
        );
        assert_eq!(
            status.code(),
            Some(code),
            "sensor exit status {status}: {}",
            self.log("sensor")
        );
    }

    /// Runs one MCP SDK client session from the client namespace.
    pub fn mcp_session(&self, python: &Path, server: &str) {
        let url = format!("http://{server}:{MCP_PORT}/mcp");
        let mut c = self.in_ns(&self.client_ns, python);
        c.arg(repo().join("pcaps/scripts/py/client_v1.py")).args([
            "--transport",
            "streamable-http",
            "--url",
            &url,
        ]);
        let limit = SESSION_LIMIT.min(self.deadline.saturating_duration_since(Instant::now()));
        match run_bounded(c, self.dir.path(), "client", limit) {
            Some((s, out, err)) => assert!(
                s.success() && out.contains("negotiated"),
                "MCP client session to {url} failed ({s}):\n{out}\n{err}"
            ),
            None => panic!("MCP client session to {url} did not finish within {limit:?}"),
        }
    }
}

pub fn jsonl_findings(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// Sum of the samples of `name` whose labels contain every `label="value"`
/// in `labels` (Prometheus text format).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labelset, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some((l, v)) => (l, v),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(v) => ("", v),
                None => continue,
            },
        };
        if labels.iter().all(|l| labelset.contains(l))
            && let Ok(v) = value.trim().parse::<f64>()
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}
