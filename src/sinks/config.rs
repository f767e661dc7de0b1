//! Sink configuration: a serde enum for configuration files (TOML/JSON,
//! unknown keys rejected) and the compact `--sink` command-line form.

use super::SinkError;
use super::worker::Policy;
use crate::findings::encode::Format;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One sink. In TOML: `[[sinks]]` tables with `type = "jsonl" | "webhook" |
/// "syslog" | "alertmanager"` and the fields of the matching struct.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    Jsonl(JsonlConfig),
    Webhook(WebhookConfig),
    Syslog(SyslogConfig),
    Alertmanager(AlertmanagerConfig),
}

/// JSON Lines to standard output (`path = "-"`) or to a file with size-based
/// rotation.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Encoding of each line: `json` (the findings format), `ocsf`, `ecs`.
    #[serde(default)]
    pub format: Format,
    /// File path, or `-` for standard output.
    #[serde(default = "dash")]
    pub path: String,
    /// Rotate before a line would make the file larger than this; 0 = never.
    #[serde(default = "d_jsonl_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`file.1` newest … `file.N`); 0 = truncate.
    #[serde(default = "d_keep")]
    pub keep: u32,
    #[serde(default = "d_queue")]
    pub queue: usize,
}

/// JSON array batches POSTed over HTTP(S).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Encoding of each finding in the POSTed array: `json`, `ocsf`, `ecs`.
    #[serde(default)]
    pub format: Format,
    pub url: String,
    /// PEM bundle of trusted CAs; replaces the built-in web PKI roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain (with `client_key`) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Extra request headers. A value `env:NAME` is read from the
    /// environment variable NAME at start (keeps tokens out of files).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "d_batch_max")]
    pub batch_max: usize,
    #[serde(default = "d_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    #[serde(default = "d_queue")]
    pub queue: usize,
    /// Directory of the on-disk spool; none = in memory only.
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    #[serde(default = "d_spool_max_bytes")]
    pub spool_max_bytes: u64,
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    #[serde(default = "d_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "d_backoff_max_ms")]
    pub backoff_max_ms: u64,
    /// Per-request timeout (connect + TLS + response headers).
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    Udp,
    Tcp,
    Tls,
}

/// RFC 5424 syslog over UDP (RFC 5426), TCP (RFC 6587) or TLS (RFC 5425).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Encoding of the finding in MSG: `json`, `ocsf`, `ecs` (the header and
    /// structured data do not change).
    #[serde(default)]
    pub format: Format,
    #[serde(default = "d_syslog_transport")]
    pub transport: SyslogTransport,
    /// `host:port`; the port defaults to 514 (UDP, TCP) or 6514 (TLS).
    pub address: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Name checked against the server certificate; default: the host of
    /// `address`.
    #[serde(default)]
    pub tls_server_name: Option<String>,
    #[serde(default = "d_app_name")]
    pub app_name: String,
    /// Facility name (`user`, `daemon`, `auth`, `authpriv`, `local0`…`local7`,
    /// …) or number 0–23.
    #[serde(default = "d_facility")]
    pub facility: String,
    /// HOSTNAME field; default: the machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Longest message sent (bytes, framing excluded). Longer ones carry a
    /// one-line summary instead of the finding JSON. Default 8192 (rsyslog's
    /// default `maxMessageSize`); UDP is capped at 65507 (RFC 5426 §3.2).
    #[serde(default = "d_max_message_bytes")]
    pub max_message_bytes: usize,
    #[serde(default = "d_queue")]
    pub queue: usize,
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    #[serde(default = "d_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "d_backoff_max_ms")]
    pub backoff_max_ms: u64,
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
}

/// Prometheus Alertmanager, API v2 (`POST /api/v2/alerts`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub name: Option<String>,
    /// Encoding of the finding attached as the `finding` annotation: `json`,
    /// `ocsf`, `ecs` (labels and the other annotations do not change).
    #[serde(default)]
    pub format: Format,
    /// Base URL (`http://127.0.0.1:9093`); `/api/v2/alerts` is appended
    /// unless the path already ends with it.
    pub url: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Static labels added to every alert (e.g. `sensor = "dc1"`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `endsAt` = send time + this: the alert resolves unless re-sent.
    #[serde(default = "d_resolve_timeout_secs")]
    pub resolve_timeout_secs: u64,
    #[serde(default)]
    pub generator_url: Option<String>,
    #[serde(default = "d_batch_max")]
    pub batch_max: usize,
    #[serde(default = "d_batch_timeout_ms")]
    pub batch_timeout_ms: u64,
    #[serde(default = "d_queue")]
    pub queue: usize,
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    #[serde(default = "d_backoff_initial_ms")]
    pub backoff_initial_ms: u64,
    #[serde(default = "d_backoff_max_ms")]
    pub backoff_max_ms: u64,
    #[serde(default = "d_timeout_ms")]
    pub timeout_ms: u64,
}

fn dash() -> String {
    "-".into()
}
fn d_jsonl_max_bytes() -> u64 {
    100 * 1024 * 1024
}
fn d_keep() -> u32 {
    5
}
fn d_queue() -> usize {
    10_000
}
fn d_batch_max() -> usize {
    100
}
fn d_batch_timeout_ms() -> u64 {
    1_000
}
fn d_spool_max_bytes() -> u64 {
    64 * 1024 * 1024
}
fn d_max_retries() -> u32 {
    5
}
fn d_backoff_initial_ms() -> u64 {
    500
}
fn d_backoff_max_ms() -> u64 {
    30_000
}
fn d_timeout_ms() -> u64 {
    10_000
}
fn d_syslog_transport() -> SyslogTransport {
    SyslogTransport::Udp
}
fn d_app_name() -> String {
    "shadowmcp".into()
}
fn d_facility() -> String {
    "local0".into()
}
fn d_max_message_bytes() -> usize {
    8192
}
fn d_resolve_timeout_secs() -> u64 {
    300
}

/// Upper bounds on sizes given in configuration, so that a typo cannot ask
/// for unbounded memory: queue entries and batch length.
const MAX_QUEUE: usize = 1_000_000;
const MAX_BATCH: usize = 10_000;

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let auth = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Never put userinfo (credentials) into a name that is logged.
    auth.rsplit_once('@').map_or(auth, |(_, h)| h)
}

impl SinkConfig {
    /// Parses a `--sink` argument:
    /// `jsonl:-`, `jsonl:/var/log/shadowmcp.jsonl`,
    /// `webhook:https://host/path`,
    /// `syslog+udp://host:514`, `syslog+tcp://…`, `syslog+tls://…` (`syslog://` = UDP),
    /// `alertmanager:http://127.0.0.1:9093`.
    /// Every other option takes its default; use a configuration file for more.
    pub fn parse_cli(spec: &str) -> Result<SinkConfig, SinkError> {
        let bad = |m: &str| SinkError::Spec {
            spec: spec.to_owned(),
            message: m.to_owned(),
        };
        let json = if let Some(rest) = spec.strip_prefix("jsonl:") {
            if rest.is_empty() {
                return Err(bad("missing path (use - for standard output)"));
            }
            serde_json::json!({"type": "jsonl", "path": rest})
        } else if spec == "jsonl" {
            serde_json::json!({"type": "jsonl"})
        } else if let Some(url) = spec.strip_prefix("webhook:") {
            serde_json::json!({"type": "webhook", "url": url})
        } else if let Some(url) = spec.strip_prefix("alertmanager:") {
            serde_json::json!({"type": "alertmanager", "url": url})
        } else if let Some(rest) = spec.strip_prefix("syslog") {
            let (transport, addr) = if let Some(a) = rest.strip_prefix("+udp://") {
                ("udp", a)
            } else if let Some(a) = rest.strip_prefix("+tcp://") {
                ("tcp", a)
            } else if let Some(a) = rest.strip_prefix("+tls://") {
                ("tls", a)
            } else if let Some(a) = rest.strip_prefix("://") {
                ("udp", a)
            } else {
                return Err(bad(
                    "expected syslog+udp://, syslog+tcp:// or syslog+tls://",
                ));
            };
            let addr = addr.trim_end_matches('/');
            serde_json::json!({"type": "syslog", "transport": transport, "address": addr})
        } else {
            return Err(bad(
                "expected jsonl:, webhook:, syslog+udp|tcp|tls:// or alertmanager:",
            ));
        };
        let cfg: SinkConfig = serde_json::from_value(json).map_err(|e| bad(&e.to_string()))?;
        cfg.check().map_err(|m| bad(&m))?;
        Ok(cfg)
    }

    /// Checks values serde cannot: URLs, addresses, bounds. Errors name
    /// the sink.
    pub fn validate(&self) -> Result<(), SinkError> {
        self.check()
            .map_err(|m| SinkError::Config(format!("{}: {m}", self.display_name())))
    }

    /// What [`Self::validate`] checks; the message names neither the sink
    /// nor the spec (the caller does, once).
    fn check(&self) -> Result<(), String> {
        let bad = |m: String| Err(m);
        let check_url = |u: &str| -> Result<(), String> {
            let uri: hyper::Uri = u.parse().map_err(|e| format!("bad URL: {e}"))?;
            match uri.scheme_str() {
                Some("http") | Some("https") => {}
                _ => return Err("URL scheme must be http or https".into()),
            }
            if uri.host().is_none_or(str::is_empty) {
                return Err("URL has no host".into());
            }
            Ok(())
        };
        let (queue, batch) = match self {
            SinkConfig::Jsonl(c) => {
                if c.path.is_empty() {
                    return bad("empty path".into());
                }
                (c.queue, 1)
            }
            SinkConfig::Webhook(c) => {
                check_url(&c.url)?;
                (c.queue, c.batch_max)
            }
            SinkConfig::Alertmanager(c) => {
                check_url(&c.url)?;
                (c.queue, c.batch_max)
            }
            SinkConfig::Syslog(c) => {
                if c.address.is_empty() {
                    return bad("empty address".into());
                }
                // A port after the last colon (outside IPv6 brackets).
                let tail = c.address.rsplit(']').next().unwrap_or(&c.address);
                if let Some((_, port)) = tail.rsplit_once(':')
                    && !port.parse::<u16>().is_ok_and(|p| p > 0)
                {
                    return bad(format!("port {port:?} is not in 1..=65535"));
                }
                (c.queue, 1)
            }
        };
        if queue == 0 || queue > MAX_QUEUE {
            return bad(format!("queue must be 1..={MAX_QUEUE}"));
        }
        if batch == 0 || batch > MAX_BATCH {
            return bad(format!("batch_max must be 1..={MAX_BATCH}"));
        }
        Ok(())
    }

    /// What `run --check-config` checks beyond the syntax: a JSON Lines
    /// file's directory exists and is writable. Every problem, as text.
    pub fn preflight(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let SinkConfig::Jsonl(c) = self
            && c.path != "-"
        {
            let path = std::path::Path::new(&c.path);
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() && !m.permissions().readonly() => {}
                Ok(m) if m.is_dir() => problems.push(format!(
                    "{}: directory {} is not writable",
                    self.display_name(),
                    dir.display()
                )),
                _ => problems.push(format!(
                    "{}: directory {} does not exist",
                    self.display_name(),
                    dir.display()
                )),
            }
        }
        problems
    }

    /// Encoding of the findings this sink delivers.
    pub fn format(&self) -> Format {
        match self {
            SinkConfig::Jsonl(c) => c.format,
            SinkConfig::Webhook(c) => c.format,
            SinkConfig::Syslog(c) => c.format,
            SinkConfig::Alertmanager(c) => c.format,
        }
    }

    /// The sink's name: `name` if set, else kind and target (never
    /// credentials or URL paths, which may hold tokens).
    pub fn display_name(&self) -> String {
        match self {
            SinkConfig::Jsonl(c) => c.name.clone().unwrap_or_else(|| {
                if c.path == "-" {
                    "jsonl:stdout".into()
                } else {
                    format!("jsonl:{}", c.path)
                }
            }),
            SinkConfig::Webhook(c) => c
                .name
                .clone()
                .unwrap_or_else(|| format!("webhook:{}", host_of(&c.url))),
            SinkConfig::Syslog(c) => c.name.clone().unwrap_or_else(|| {
                let t = match c.transport {
                    SyslogTransport::Udp => "udp",
                    SyslogTransport::Tcp => "tcp",
                    SyslogTransport::Tls => "tls",
                };
                format!("syslog+{t}:{}", c.address)
            }),
            SinkConfig::Alertmanager(c) => c
                .name
                .clone()
                .unwrap_or_else(|| format!("alertmanager:{}", host_of(&c.url))),
        }
    }
}

fn policy(
    batch_max: usize,
    batch_timeout_ms: u64,
    max_retries: u32,
    initial: u64,
    max: u64,
) -> Policy {
    Policy {
        batch_max: batch_max.clamp(1, MAX_BATCH),
        batch_timeout: Duration::from_millis(batch_timeout_ms),
        max_retries,
        backoff_initial: Duration::from_millis(initial.max(1)),
        backoff_max: Duration::from_millis(max.max(initial).max(1)),
    }
}

impl JsonlConfig {
    pub(crate) fn policy(&self) -> Policy {
        // Local writes: small batches, written as soon as they are there.
        policy(64, 0, 3, 100, 1_000)
    }
}

impl WebhookConfig {
    pub(crate) fn policy(&self) -> Policy {
        policy(
            self.batch_max,
            self.batch_timeout_ms,
            self.max_retries,
            self.backoff_initial_ms,
            self.backoff_max_ms,
        )
    }
}

impl SyslogConfig {
    pub(crate) fn policy(&self) -> Policy {
        policy(
            64,
            0,
            self.max_retries,
            self.backoff_initial_ms,
            self.backoff_max_ms,
        )
    }
}

impl AlertmanagerConfig {
    pub(crate) fn policy(&self) -> Policy {
        policy(
            self.batch_max,
            self.batch_timeout_ms,
            self.max_retries,
            self.backoff_initial_ms,
            self.backoff_max_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_specs() {
        let c = SinkConfig::parse_cli("webhook:https://hooks.example/path?x=1").unwrap();
        match &c {
            SinkConfig::Webhook(w) => {
                assert_eq!(w.url, "https://hooks.example/path?x=1");
                assert_eq!(w.batch_max, 100);
                assert!(w.spool_dir.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.display_name(), "webhook:hooks.example");
        let c = SinkConfig::parse_cli("syslog+tcp://127.0.0.1:514").unwrap();
        match &c {
            SinkConfig::Syslog(s) => {
                assert_eq!(s.transport, SyslogTransport::Tcp);
                assert_eq!(s.address, "127.0.0.1:514");
                assert_eq!(s.facility, "local0");
            }
            other => panic!("{other:?}"),
        }
        let c = SinkConfig::parse_cli("syslog://[::1]:514").unwrap();
        assert!(
            matches!(&c, SinkConfig::Syslog(s) if s.transport == SyslogTransport::Udp && s.address == "[::1]:514")
        );
        let c = SinkConfig::parse_cli("jsonl:/var/log/shadowmcp.jsonl").unwrap();
        assert!(
            matches!(&c, SinkConfig::Jsonl(j) if j.path == "/var/log/shadowmcp.jsonl" && j.keep == 5)
        );
        let c = SinkConfig::parse_cli("jsonl:-").unwrap();
        assert_eq!(c.display_name(), "jsonl:stdout");
        let c = SinkConfig::parse_cli("alertmanager:http://127.0.0.1:9093").unwrap();
        assert!(matches!(&c, SinkConfig::Alertmanager(a) if a.resolve_timeout_secs == 300));
        // Credentials in the URL never reach the name.
        let c = SinkConfig::parse_cli("webhook:https://user:secret@h.example/x").unwrap();
        assert_eq!(c.display_name(), "webhook:h.example");
    }

    /// A bad `--sink` is reported with its spec spelled once, as given.
    #[test]
    fn cli_errors_spell_the_spec_once() {
        for spec in [
            "syslog+udp://host:99999",
            "webhook:ftp://x/y",
            "webhook:https:///nohost",
            "kafka:x",
            "jsonl:",
            "alertmanager:not a url",
        ] {
            let e = SinkConfig::parse_cli(spec).expect_err(spec).to_string();
            assert!(e.starts_with(&format!("--sink {spec:?}: ")), "{e}");
            assert_eq!(e.matches(spec).count(), 1, "{e}");
            assert_eq!(e.matches("--sink").count(), 1, "{e}");
        }
    }

    #[test]
    fn cli_rejects() {
        for bad in [
            "",
            "jsonl:",
            "webhook:",
            "webhook:ftp://x/y",
            "webhook:https:///nohost",
            "syslog+sctp://h:1",
            "syslog:h",
            "kafka:x",
            "alertmanager:not a url",
        ] {
            assert!(SinkConfig::parse_cli(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn toml_config_and_unknown_fields() {
        #[derive(Deserialize)]
        struct File {
            sink: Vec<SinkConfig>,
        }
        let f: File = toml::from_str(
            r#"
[[sink]]
type = "webhook"
url = "https://h.example/in"
headers = { Authorization = "Bearer x" }
spool_dir = "/var/spool/shadowmcp"
batch_max = 10

[[sink]]
type = "syslog"
transport = "tls"
address = "logs.example:6514"
facility = "authpriv"
"#,
        )
        .unwrap();
        assert_eq!(f.sink.len(), 2);
        assert!(
            matches!(&f.sink[0], SinkConfig::Webhook(w) if w.batch_max == 10
            && w.headers.get("Authorization").map(String::as_str) == Some("Bearer x"))
        );
        assert!(matches!(&f.sink[1], SinkConfig::Syslog(s) if s.transport == SyslogTransport::Tls));
        let r: Result<File, _> =
            toml::from_str("[[sink]]\ntype = \"webhook\"\nurl = \"https://h/\"\nbatchmax = 3\n");
        assert!(r.is_err(), "unknown field accepted");
        let r: Result<File, _> = toml::from_str("[[sink]]\ntype = \"kafka\"\n");
        assert!(r.is_err());
        let r: Result<File, _> = toml::from_str(
            "[[sink]]\ntype = \"syslog\"\naddress = \"h:1\"\ntransport = \"quic\"\n",
        );
        assert!(r.is_err());
    }

    #[test]
    fn validate_bounds() {
        let c: SinkConfig = serde_json::from_value(
            serde_json::json!({"type":"webhook","url":"https://h/","queue":0}),
        )
        .unwrap();
        assert!(c.validate().is_err());
        let c: SinkConfig = serde_json::from_value(
            serde_json::json!({"type":"webhook","url":"https://h/","batch_max":1000000}),
        )
        .unwrap();
        assert!(c.validate().is_err());
    }
}
