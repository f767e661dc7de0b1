//! The live sensor's configuration: a TOML file (example and reference in
//! `deploy/shadowmcp.toml` and `docs/configuration.md`), overridden by flags.
//! Unknown keys and bad values are errors that name the file, the position
//! and the key path (`capture.snaplen`).

use crate::findings::aggregate::Confidence;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A configuration file larger than this is refused.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub sensor: SensorConfig,
    pub capture: CaptureConfig,
    pub detection: DetectionConfig,
    pub limits: LimitsConfig,
    pub findings: FindingsConfig,
    pub metrics: MetricsConfig,
    pub privileges: PrivilegesConfig,
    pub decryption: DecryptionConfig,
    /// Alert sinks, as `[[sinks]]` tables (docs/sinks.md).
    #[serde(skip_serializing)]
    pub sinks: Vec<crate::sinks::SinkConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SensorConfig {
    /// The sensor's name in every finding (`observer.name`); default: the
    /// host name.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Interfaces to capture on; `any` captures on all (Linux cooked capture).
    pub interfaces: Vec<String>,
    /// A BPF filter applied in the kernel (tcpdump syntax); empty = everything.
    pub bpf: String,
    pub snaplen: u32,
    /// Kernel capture buffer per interface, MiB.
    pub buffer_size_mib: u32,
    pub promisc: bool,
    /// Worker threads; packets are sharded by a symmetric flow hash.
    pub workers: usize,
    /// Batches of packets queued per worker before the capture thread drops.
    pub queue_batches: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectionConfig {
    /// Signature directory replacing the built-in set.
    pub signatures: Option<PathBuf>,
    /// Allowlist of sanctioned servers.
    pub allowlist: Option<PathBuf>,
    /// Signature overlay directories merged after the base set, in order
    /// (docs/signatures.md); each must exist.
    pub overlays: Vec<PathBuf>,
    /// Also read /etc/shadowmcp/signatures.d and
    /// /var/lib/shadowmcp/signatures.d when they exist.
    pub default_overlays: bool,
    pub min_confidence: Confidence,
    pub report_sanctioned: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Flows tracked by the whole sensor (split evenly across workers).
    pub max_flows: usize,
    pub flow_timeout_secs: u64,
    /// A TCP flow that ended (FIN both ways, or RST) is kept this long for
    /// its late packets, then forgotten (at most `flow_timeout_secs`).
    pub closed_flow_timeout_secs: u64,
    /// DNS answers remembered per worker for attributing SNI-less flows.
    pub dns_cache_entries: usize,
    /// (client, server) pairs remembered for suppression and roll-ups.
    pub max_findings: usize,
    /// TCP streams reassembled and parsed at once by the whole sensor
    /// (split evenly across workers).
    pub max_tcp_streams: usize,
    /// MiB that the buffers of those streams may hold (split evenly across
    /// workers): the memory the traffic itself can claim.
    pub tcp_buffer_mib: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FindingsConfig {
    /// A finding for the same (client, server, rule) is emitted once per
    /// window; repeats are counted and carried into the next emission.
    pub suppression_window_secs: u64,
    /// When a reported pair reveals more MCP inventory (methods, tools,
    /// server identity), an update is emitted at most this often; 0 = never.
    pub update_delay_secs: u64,
    /// A new finding is held this long before its first emission, so that
    /// the connections of one session, classified by different workers,
    /// make one complete alert; 0 = emit at once.
    pub settle_millis: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Loopback by default: see docs/metrics.md before exposing it.
    /// `ADDRESS:PORT` or `HOST:PORT` ([`parse_listen_address`]).
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
}

/// A listen address that is neither `ADDRESS:PORT` nor a resolvable
/// `HOST:PORT`.
#[derive(Debug, thiserror::Error)]
pub enum ListenAddressError {
    #[error("{0:?} is not an ADDRESS:PORT or HOST:PORT ({1})")]
    Invalid(String, std::io::Error),
    #[error("{0:?}: the host name has no address")]
    NoAddress(String),
}

/// A listen address: `127.0.0.1:9108`, `[::1]:9108`, or a host name with a
/// port (`localhost:9108`), resolved to its first address. The one parser
/// of `[metrics] listen` and `run --metrics-listen`.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, ListenAddressError> {
    use std::net::ToSocketAddrs;
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    s.to_socket_addrs()
        .map_err(|e| ListenAddressError::Invalid(s.to_owned(), e))?
        .next()
        .ok_or_else(|| ListenAddressError::NoAddress(s.to_owned()))
}

fn listen_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen_address(&s).map_err(serde::de::Error::custom)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivilegesConfig {
    /// After opening the captures, switch to this user (when started as root).
    pub user: Option<String>,
    /// Group to switch to; default: the user's primary group.
    pub group: Option<String>,
    /// Keep CAP_NET_RAW (and CAP_NET_ADMIN with promiscuous mode) after
    /// start-up, so that a capture whose interface went away can be opened
    /// again. `false` clears every capability: such a capture then stays
    /// down until the sensor restarts.
    pub keep_capture_caps: bool,
}

/// TLS decryption from key logs (docs/decryption.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecryptionConfig {
    /// NSS key logs (`SSLKEYLOGFILE`) followed while the sensor runs, as
    /// `tail -F` does (`run`), or read whole (`analyze`). A file that does
    /// not exist yet is waited for. Empty: nothing is decrypted live.
    pub keylogs: Vec<PathBuf>,
    /// How often followed key logs are read for new lines.
    pub poll_millis: u64,
    /// How long a connection's records wait for its keys before they are
    /// given up (counted as missing keys).
    pub hold_timeout_secs: u64,
    /// Bytes of records one connection may hold while it waits, KiB.
    pub max_held_per_flow_kib: usize,
    /// Bytes of records all connections together may hold while they wait,
    /// MiB.
    pub hold_budget_mib: usize,
    /// Client randoms whose secrets are kept; the oldest are evicted beyond
    /// (counted).
    pub max_session_keys: usize,
    /// Open TLS connections whose records wait for keys that are retried
    /// when the key table changes (split among workers); beyond, a
    /// connection waits for its own next packets only (counted).
    pub max_waiting_connections: usize,
    /// Ended TLS connections kept until their keys come or their deadline
    /// passes (split among workers); beyond, an ended connection's held
    /// records are given up at once (counted).
    pub max_parked_connections: usize,
}

impl Default for DecryptionConfig {
    fn default() -> Self {
        // The per-connection bounds are the library's.
        let lib = crate::tls_decrypt::DecryptLimits::default();
        Self {
            keylogs: Vec::new(),
            poll_millis: 200,
            hold_timeout_secs: u64::try_from(lib.hold_timeout / 1_000_000).unwrap_or(10),
            max_held_per_flow_kib: lib.max_held_per_flow / 1024,
            hold_budget_mib: 64,
            max_session_keys: 1 << 20,
            max_waiting_connections: 8192,
            max_parked_connections: 2048,
        }
    }
}

impl DecryptionConfig {
    /// The decryptor's bounds.
    pub fn limits(&self) -> crate::tls_decrypt::DecryptLimits {
        crate::tls_decrypt::DecryptLimits {
            max_held_per_flow: self.max_held_per_flow_kib.saturating_mul(1024),
            hold_timeout: i64::try_from(self.hold_timeout_secs.saturating_mul(1_000_000))
                .unwrap_or(i64::MAX),
            ..Default::default()
        }
    }

    /// Bytes all connections may hold while they wait for keys.
    pub fn hold_budget_bytes(&self) -> usize {
        self.hold_budget_mib.saturating_mul(1024 * 1024)
    }
}

impl Default for PrivilegesConfig {
    fn default() -> Self {
        Self {
            user: None,
            group: None,
            keep_capture_caps: true,
        }
    }
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            interfaces: Vec::new(),
            bpf: String::new(),
            snaplen: 65_535,
            buffer_size_mib: 64,
            promisc: true,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_batches: 256,
        }
    }
}

impl Default for DetectionConfig {
    fn default() -> Self {
        Self {
            signatures: None,
            allowlist: None,
            overlays: Vec::new(),
            default_overlays: true,
            min_confidence: Confidence::Low,
            report_sanctioned: false,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_flows: 1_000_000,
            flow_timeout_secs: 300,
            closed_flow_timeout_secs: 5,
            dns_cache_entries: 65_536,
            max_findings: 100_000,
            max_tcp_streams: 65_536,
            tcp_buffer_mib: 256,
        }
    }
}

impl Default for FindingsConfig {
    fn default() -> Self {
        Self {
            suppression_window_secs: 3600,
            update_delay_secs: 30,
            settle_millis: 1000,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9108)),
        }
    }
}

/// A configuration problem: where, which key, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    pub column: usize,
    /// Dotted key path (`capture.snaplen`, `sinks[0].url`); empty for syntax errors.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let upto = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = upto.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let err = |message: String| ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            key: String::new(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        Self::parse(&text, &file)
    }

    /// Parse and validate; `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            ConfigError {
                file: origin.into(),
                line,
                column,
                key: String::new(),
                message: e.message().trim().into(),
            }
        })?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = inner.span().map_or((0, 0), |s| line_col(text, s.start));
            ConfigError {
                file: origin.into(),
                line,
                column,
                key: if key == "." { String::new() } else { key },
                message: inner.message().trim().into(),
            }
        })?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Range checks that types alone cannot express.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, message: String| {
            Err(ConfigError {
                file: origin.into(),
                line: 0,
                column: 0,
                key: key.into(),
                message,
            })
        };
        let c = &self.capture;
        if !(64..=262_144).contains(&c.snaplen) {
            return bad(
                "capture.snaplen",
                format!("{} is outside 64..=262144", c.snaplen),
            );
        }
        if !(1..=256).contains(&c.workers) {
            return bad(
                "capture.workers",
                format!("{} is outside 1..=256", c.workers),
            );
        }
        if !(1..=4096).contains(&c.buffer_size_mib) {
            return bad(
                "capture.buffer_size_mib",
                format!("{} is outside 1..=4096", c.buffer_size_mib),
            );
        }
        if !(1..=65_536).contains(&c.queue_batches) {
            return bad(
                "capture.queue_batches",
                format!("{} is outside 1..=65536", c.queue_batches),
            );
        }
        if c.interfaces
            .iter()
            .any(|i| i.is_empty() || i.len() > 64 || i.chars().any(char::is_whitespace))
        {
            return bad(
                "capture.interfaces",
                "interface names must be non-empty, short, without spaces".into(),
            );
        }
        let l = &self.limits;
        if l.max_flows < c.workers {
            return bad(
                "limits.max_flows",
                format!("{} is below the number of workers", l.max_flows),
            );
        }
        if l.max_tcp_streams < c.workers || l.max_tcp_streams > 16_777_216 {
            return bad(
                "limits.max_tcp_streams",
                format!(
                    "{} is outside {}..=16777216 (at least one per worker)",
                    l.max_tcp_streams, c.workers
                ),
            );
        }
        if !(1..=1_048_576).contains(&l.tcp_buffer_mib) {
            return bad(
                "limits.tcp_buffer_mib",
                format!("{} is outside 1..=1048576", l.tcp_buffer_mib),
            );
        }
        if !(1..=86_400).contains(&l.flow_timeout_secs) {
            return bad(
                "limits.flow_timeout_secs",
                format!("{} is outside 1..=86400", l.flow_timeout_secs),
            );
        }
        if l.closed_flow_timeout_secs > l.flow_timeout_secs {
            return bad(
                "limits.closed_flow_timeout_secs",
                format!(
                    "{} is more than limits.flow_timeout_secs ({})",
                    l.closed_flow_timeout_secs, l.flow_timeout_secs
                ),
            );
        }
        if l.max_findings == 0 {
            return bad("limits.max_findings", "must be at least 1".into());
        }
        if self.findings.suppression_window_secs > 30 * 86_400 {
            return bad(
                "findings.suppression_window_secs",
                "more than 30 days".into(),
            );
        }
        let d = &self.decryption;
        if !(10..=60_000).contains(&d.poll_millis) {
            return bad(
                "decryption.poll_millis",
                format!("{} is outside 10..=60000", d.poll_millis),
            );
        }
        if !(1..=600).contains(&d.hold_timeout_secs) {
            return bad(
                "decryption.hold_timeout_secs",
                format!("{} is outside 1..=600", d.hold_timeout_secs),
            );
        }
        if !(16..=65_536).contains(&d.max_held_per_flow_kib) {
            return bad(
                "decryption.max_held_per_flow_kib",
                format!("{} is outside 16..=65536", d.max_held_per_flow_kib),
            );
        }
        if !(1..=65_536).contains(&d.hold_budget_mib) {
            return bad(
                "decryption.hold_budget_mib",
                format!("{} is outside 1..=65536", d.hold_budget_mib),
            );
        }
        if !(16..=16_777_216).contains(&d.max_session_keys) {
            return bad(
                "decryption.max_session_keys",
                format!("{} is outside 16..=16777216", d.max_session_keys),
            );
        }
        if !(1..=1_048_576).contains(&d.max_waiting_connections) {
            return bad(
                "decryption.max_waiting_connections",
                format!("{} is outside 1..=1048576", d.max_waiting_connections),
            );
        }
        if !(1..=1_048_576).contains(&d.max_parked_connections) {
            return bad(
                "decryption.max_parked_connections",
                format!("{} is outside 1..=1048576", d.max_parked_connections),
            );
        }
        if d.keylogs.iter().any(|p| p.as_os_str().is_empty()) {
            return bad("decryption.keylogs", "an empty path".into());
        }
        if self.findings.settle_millis > 60_000 {
            return bad(
                "findings.settle_millis",
                format!(
                    "{} is more than 60000 (one minute)",
                    self.findings.settle_millis
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip() {
        let text = toml::to_string(&Config::default()).expect("serialize");
        let back = Config::parse(&text, "default").expect("parse");
        assert_eq!(back, Config::default());
    }

    #[test]
    fn full_file() {
        let cfg = Config::parse(
            r#"
[capture]
interfaces = ["eth1", "eth2"]
bpf = "tcp or udp"
workers = 2

[detection]
allowlist = "/etc/shadowmcp/allowlist.txt"
min_confidence = "medium"

[findings]
suppression_window_secs = 600

[metrics]
listen = "0.0.0.0:9108"

[[sinks]]
type = "jsonl"
path = "-"
"#,
            "t.toml",
        )
        .expect("valid");
        assert_eq!(cfg.capture.interfaces, ["eth1", "eth2"]);
        assert_eq!(cfg.detection.min_confidence, Confidence::Medium);
        assert_eq!(cfg.findings.suppression_window_secs, 600);
        assert_eq!(cfg.sinks.len(), 1);
    }

    #[test]
    fn unknown_key_names_path_and_position() {
        let e = Config::parse("[capture]\nworkers = 2\nsnaplenn = 9\n", "x.toml")
            .expect_err("unknown key");
        assert_eq!((e.line, e.key.as_str()), (3, "capture.snaplenn"), "{e}");
        assert!(e.message.contains("snaplenn"), "{e}");
        assert!(e.to_string().starts_with("x.toml:3:"), "{e}");
    }

    #[test]
    fn wrong_type_names_key() {
        let e = Config::parse("[capture]\nsnaplen = \"big\"\n", "x.toml").expect_err("type");
        assert_eq!(e.key, "capture.snaplen", "{e}");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn syntax_error_has_position() {
        let e = Config::parse("[capture\nworkers = 1\n", "x.toml").expect_err("syntax");
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn range_errors_name_the_key() {
        let e = Config::parse("[capture]\nworkers = 0\n", "x.toml").expect_err("range");
        assert_eq!(e.key, "capture.workers");
        let e = Config::parse("[metrics]\nlisten = \"nowhere\"\n", "x.toml").expect_err("addr");
        assert_eq!(e.key, "metrics.listen");
        assert!(e.message.contains("HOST:PORT"), "{e}");
    }

    /// `[metrics] listen` takes what `--metrics-listen` takes: addresses
    /// and host names with a port.
    #[test]
    fn metrics_listen_takes_a_host_name() {
        let c =
            Config::parse("[metrics]\nlisten = \"localhost:9108\"\n", "x.toml").expect("host name");
        assert!(
            c.metrics.listen.ip().is_loopback(),
            "{:?}",
            c.metrics.listen
        );
        assert_eq!(c.metrics.listen.port(), 9108);
        let c = Config::parse("[metrics]\nlisten = \"[::1]:9\"\n", "x.toml").expect("v6");
        assert_eq!(c.metrics.listen, "[::1]:9".parse().expect("addr"));
        let e =
            Config::parse("[metrics]\nlisten = \"localhost\"\n", "x.toml").expect_err("no port");
        assert_eq!(e.key, "metrics.listen", "{e}");
    }

    #[test]
    fn stream_limits_are_checked() {
        let c = Config::parse(
            "[limits]\nmax_tcp_streams = 1000\ntcp_buffer_mib = 64\n",
            "x.toml",
        )
        .expect("valid");
        assert_eq!(
            (c.limits.max_tcp_streams, c.limits.tcp_buffer_mib),
            (1000, 64)
        );
        let e = Config::parse(
            "[capture]\nworkers = 4\n[limits]\nmax_tcp_streams = 3\n",
            "x.toml",
        )
        .expect_err("fewer streams than workers");
        assert_eq!(e.key, "limits.max_tcp_streams");
        let e = Config::parse("[limits]\ntcp_buffer_mib = 0\n", "x.toml").expect_err("zero");
        assert_eq!(e.key, "limits.tcp_buffer_mib");
    }

    #[test]
    fn decryption_section() {
        let c = Config::parse(
            "[decryption]\nkeylogs = [\"/run/keys/a.log\", \"/run/keys/b.log\"]\nhold_timeout_secs = 30\n",
            "x.toml",
        )
        .expect("valid");
        assert_eq!(c.decryption.keylogs.len(), 2);
        assert_eq!(c.decryption.limits().hold_timeout, 30_000_000);
        assert_eq!(
            c.decryption.limits().max_held_per_flow,
            crate::tls_decrypt::DecryptLimits::default().max_held_per_flow
        );
        let e = Config::parse("[decryption]\npoll_millis = 0\n", "x.toml").expect_err("range");
        assert_eq!(e.key, "decryption.poll_millis");
        let e = Config::parse("[decryption]\nkeylog = []\n", "x.toml").expect_err("unknown");
        assert_eq!(e.key, "decryption.keylog");
    }

    #[test]
    fn hostile_input_never_panics() {
        let base = "[capture]\ninterfaces = [\"eth0\"]\n[limits]\nmax_flows = 10\n";
        for n in 0..base.len() {
            let _ = Config::parse(&base[..n], "t");
        }
        let _ = Config::parse(&"[".repeat(100_000), "t");
        let _ = Config::parse(&format!("a = {}", "[".repeat(10_000)), "t");
    }
}
