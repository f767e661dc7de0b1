//! Syslog sink: RFC 5424 messages over UDP (RFC 5426, one datagram per
//! message), TCP (RFC 6587 §3.4.1 octet counting) or TLS (RFC 5425, same
//! framing, rustls).
//!
//! Message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG` with
//! MSGID the rule id, structured data `[shadowmcp@32473 rule="…" client="…"
//! server="…" …]` (32473 is the private enterprise number reserved for
//! documentation, RFC 5612) and MSG the finding JSON; when that would exceed
//! `max_message_bytes`, MSG is the one-line summary instead.

use super::alert::Alert;
use super::config::{SyslogConfig, SyslogTransport};
use super::worker::{Backend, Outcome};
use super::{SinkError, encoded, output_ts};
use crate::findings::encode::Format;
use rustls::pki_types::ServerName;
use serde_json::Value;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Largest UDP payload (RFC 5426 §3.2: 65535 minus IP and UDP headers).
const UDP_MAX: usize = 65_507;
/// Largest message over TCP/TLS we will frame.
const STREAM_MAX: usize = 1024 * 1024;
/// Smallest message size every receiver must accept (RFC 5424 §6.1).
const MIN_MESSAGE: usize = 480;

/// Fixed header fields of the messages of one sink.
#[derive(Debug, Clone)]
pub struct SyslogFormat {
    /// 0–23 (RFC 5424 §6.2.1).
    pub facility: u8,
    pub app_name: String,
    pub hostname: String,
    pub procid: String,
    /// Encoding of the finding in MSG.
    pub body: Format,
}

/// Facility by RFC 5424 name or number.
pub fn parse_facility(s: &str) -> Option<u8> {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    let s = s.trim().to_ascii_lowercase();
    if let Ok(n) = s.parse::<u8>() {
        return (n < 24).then_some(n);
    }
    match s.as_str() {
        "security" => Some(4),
        "cron2" => Some(15),
        _ => NAMES
            .iter()
            .position(|n| *n == s)
            .and_then(|p| u8::try_from(p).ok()),
    }
}

/// Finding severity to syslog severity (RFC 5424 §6.2.1 table 2).
fn syslog_severity(sev: &str) -> u8 {
    match sev {
        "high" => 2,   // critical
        "medium" => 4, // warning
        "low" => 5,    // notice
        _ => 6,        // informational
    }
}

/// PRINTUSASCII (33–126) only, at most `max` characters, `-` when empty
/// (RFC 5424 §6.2: the NILVALUE).
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .filter(|c| ('!'..='~').contains(c))
        .take(max)
        .collect();
    if out.is_empty() { "-".into() } else { out }
}

/// PARAM-VALUE escaping (RFC 5424 §6.3.3): `"`, `\` and `]` get a
/// backslash. Control characters become spaces so that the message stays
/// one line for receivers that split on newlines.
fn sd_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Truncates at a UTF-8 boundary.
fn cut_bytes(mut v: Vec<u8>, max: usize) -> Vec<u8> {
    if v.len() <= max {
        return v;
    }
    let mut end = max;
    while end > 0 && v.get(end).is_some_and(|b| (b & 0xC0) == 0x80) {
        end -= 1;
    }
    v.truncate(end);
    v
}

/// One RFC 5424 message for a finding, at most `max_len` bytes.
pub fn format_rfc5424(
    finding: &Value,
    f: &SyslogFormat,
    timestamp: &str,
    max_len: usize,
) -> Vec<u8> {
    let a = Alert::from_finding(finding);
    let pri = u16::from(f.facility.min(23)) * 8 + u16::from(syslog_severity(&a.severity));
    let mut sd = String::from("[shadowmcp@32473");
    let count = a.count.to_string();
    let port = a.server_port.map(|p| p.to_string());
    for (k, v) in [
        ("verdict", Some(a.verdict.as_str())),
        ("severity", Some(a.severity.as_str())),
        ("confidence", Some(a.confidence.as_str())),
        ("rule", Some(a.rule_id.as_str())),
        ("client", Some(a.client_ip.as_str())),
        (
            "server",
            a.server_name.as_deref().or(a.server_ip.as_deref()),
        ),
        ("server_ip", a.server_ip.as_deref()),
        ("server_port", port.as_deref()),
        ("vendor", a.server_vendor.as_deref()),
        ("transport", Some(a.transport.as_str())),
        ("count", Some(count.as_str())),
        ("community_id", a.community_id.as_deref()),
        ("observer", a.observer.as_deref()),
    ] {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            continue;
        };
        sd.push(' ');
        sd.push_str(k);
        sd.push_str("=\"");
        sd_escape(v, &mut sd);
        sd.push('"');
    }
    sd.push(']');
    let head = format!(
        "<{pri}>1 {} {} {} {} {} {sd} ",
        header_field(timestamp, 64),
        header_field(&f.hostname, 255),
        header_field(&f.app_name, 48),
        header_field(&f.procid, 128),
        header_field(&a.rule_id, 32),
    );
    let mut msg = head.clone().into_bytes();
    let json = encoded(f.body, finding).and_then(|e| serde_json::to_vec(e.as_ref()).ok());
    if let Some(json) = json
        && msg.len() + json.len() <= max_len
    {
        msg.extend_from_slice(&json);
        return msg;
    }
    let summary: String = a
        .summary()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    msg.extend_from_slice(summary.as_bytes());
    cut_bytes(msg, max_len)
}

fn local_hostname() -> String {
    for p in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(s) = std::fs::read_to_string(p) {
            let s = s.trim();
            if !s.is_empty() {
                return s.to_owned();
            }
        }
    }
    "-".into()
}

/// Adds the default port when `addr` has none; returns (address, host).
fn split_address(addr: &str, default_port: u16) -> Result<(String, String), SinkError> {
    let bad = || SinkError::Config(format!("syslog address {addr:?}: expected host:port"));
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok((
            SocketAddr::new(ip, default_port).to_string(),
            ip.to_string(),
        ));
    }
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        return match after {
            "" => Ok((format!("[{host}]:{default_port}"), host.to_owned())),
            p => {
                let p = p.strip_prefix(':').ok_or_else(bad)?;
                p.parse::<u16>().map_err(|_| bad())?;
                Ok((addr.to_owned(), host.to_owned()))
            }
        };
    }
    match addr.rsplit_once(':') {
        Some((host, p)) if !host.is_empty() && !host.contains(':') => {
            p.parse::<u16>().map_err(|_| bad())?;
            Ok((addr.to_owned(), host.to_owned()))
        }
        None if !addr.is_empty() => Ok((format!("{addr}:{default_port}"), addr.to_owned())),
        _ => Err(bad()),
    }
}

enum Conn {
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

pub(crate) struct SyslogBackend {
    transport: SyslogTransport,
    address: String,
    server_name: Option<ServerName<'static>>,
    tls: Option<TlsConnector>,
    format: SyslogFormat,
    max_len: usize,
    timeout: Duration,
    conn: Option<Conn>,
}

impl SyslogBackend {
    pub(crate) fn new(c: &SyslogConfig) -> Result<Self, SinkError> {
        let default_port = if c.transport == SyslogTransport::Tls {
            6514
        } else {
            514
        };
        let (address, host) = split_address(c.address.trim(), default_port)?;
        let facility = parse_facility(&c.facility).ok_or_else(|| {
            SinkError::Config(format!("unknown syslog facility {:?}", c.facility))
        })?;
        let (tls, server_name) = if c.transport == SyslogTransport::Tls {
            let cfg = super::tls::client_config(
                c.ca_file.as_deref(),
                c.client_cert.as_deref(),
                c.client_key.as_deref(),
            )?;
            let name = c.tls_server_name.clone().unwrap_or(host);
            let sn = ServerName::try_from(name.clone())
                .map_err(|_| SinkError::Config(format!("invalid TLS server name {name:?}")))?;
            (Some(TlsConnector::from(Arc::new(cfg))), Some(sn))
        } else {
            (None, None)
        };
        let cap = if c.transport == SyslogTransport::Udp {
            UDP_MAX
        } else {
            STREAM_MAX
        };
        Ok(SyslogBackend {
            transport: c.transport,
            address,
            server_name,
            tls,
            format: SyslogFormat {
                facility,
                app_name: c.app_name.clone(),
                hostname: c.hostname.clone().unwrap_or_else(local_hostname),
                procid: std::process::id().to_string(),
                body: c.format,
            },
            max_len: c.max_message_bytes.clamp(MIN_MESSAGE, cap),
            timeout: Duration::from_millis(c.timeout_ms.max(1)),
            conn: None,
        })
    }

    async fn connect(&self) -> Result<Conn, ConnectError> {
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(self.timeout, tokio::net::lookup_host(&self.address))
                .await
                .map_err(|_| ConnectError::LookupTimeout)?
                .map_err(|e| ConnectError::Lookup(self.address.clone(), e))?
                .take(16)
                .collect();
        let mut last = ConnectError::NoAddress(self.address.clone());
        for sa in addrs {
            match self.connect_to(sa).await {
                Ok(c) => return Ok(c),
                Err(e) => last = ConnectError::Address(sa, Box::new(e)),
            }
        }
        Err(last)
    }

    async fn connect_to(&self, sa: SocketAddr) -> Result<Conn, ConnectError> {
        match self.transport {
            SyslogTransport::Udp => {
                let local: SocketAddr = if sa.is_ipv4() {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                };
                let s = UdpSocket::bind(local).await?;
                s.connect(sa).await?;
                Ok(Conn::Udp(s))
            }
            SyslogTransport::Tcp | SyslogTransport::Tls => {
                let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(sa))
                    .await
                    .map_err(|_| ConnectError::ConnectTimeout)??;
                let _ = tcp.set_nodelay(true);
                match (&self.tls, &self.server_name) {
                    (Some(tls), Some(sn)) => {
                        let s = tokio::time::timeout(self.timeout, tls.connect(sn.clone(), tcp))
                            .await
                            .map_err(|_| ConnectError::HandshakeTimeout)?
                            .map_err(ConnectError::Tls)?;
                        Ok(Conn::Tls(Box::new(s)))
                    }
                    _ => Ok(Conn::Tcp(tcp)),
                }
            }
        }
    }
}

/// Why the receiver could not be reached; the sink retries and says this.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("name lookup timeout")]
    LookupTimeout,
    #[error("{0}: {1}")]
    Lookup(String, std::io::Error),
    #[error("{0}: no address")]
    NoAddress(String),
    #[error("{0}: {1}")]
    Address(SocketAddr, Box<ConnectError>),
    #[error("connect timeout")]
    ConnectTimeout,
    #[error("TLS handshake timeout")]
    HandshakeTimeout,
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A syslog receiver never sends data: a readable stream means it closed
/// (or reset) the connection, which a write alone would only reveal one
/// message too late. Zero-timeout poll: the read is polled once.
async fn stream_alive(conn: &mut Conn) -> bool {
    let mut buf = [0u8; 512];
    let r = match conn {
        Conn::Udp(_) => return true,
        Conn::Tcp(s) => tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await,
        Conn::Tls(s) => tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await,
    };
    // Pending = alive. Data is ignored (TLS 1.3 session tickets are consumed
    // by rustls inside read and do not surface here).
    matches!(r, Err(_) | Ok(Ok(1..)))
}

impl Backend for SyslogBackend {
    async fn deliver(&mut self, batch: &[Arc<Value>]) -> Outcome {
        if let Some(c) = self.conn.as_mut()
            && !stream_alive(c).await
        {
            self.conn = None;
        }
        if self.conn.is_none() {
            match self.connect().await {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    return Outcome::Retry {
                        done: 0,
                        reason: e.to_string(),
                        after: None,
                    };
                }
            }
        }
        let ts = output_ts(SystemTime::now());
        // Owned while writing: if this future is dropped mid-message (shutdown
        // deadline), the half-written connection is closed, never reused.
        let Some(mut conn) = self.conn.take() else {
            return Outcome::Retry {
                done: 0,
                reason: "not connected".into(),
                after: None,
            };
        };
        for (i, v) in batch.iter().enumerate() {
            let msg = format_rfc5424(v, &self.format, &ts, self.max_len);
            let r = match &mut conn {
                Conn::Udp(s) => s.send(&msg).await.map(|_| ()),
                Conn::Tcp(s) => write_framed(s, &msg).await,
                Conn::Tls(s) => write_framed(s.as_mut(), &msg).await,
            };
            if let Err(e) = r {
                return Outcome::Retry {
                    done: i,
                    reason: e.to_string(),
                    after: None,
                };
            }
        }
        let r = match &mut conn {
            Conn::Udp(_) => Ok(()),
            Conn::Tcp(s) => s.flush().await,
            Conn::Tls(s) => s.flush().await,
        };
        if let Err(e) = r {
            return Outcome::Retry {
                done: batch.len(),
                reason: e.to_string(),
                after: None,
            };
        }
        self.conn = Some(conn);
        Outcome::Delivered
    }
}

/// RFC 6587 §3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`.
async fn write_framed<W: AsyncWriteExt + Unpin>(w: &mut W, msg: &[u8]) -> std::io::Result<()> {
    let mut framed = format!("{} ", msg.len()).into_bytes();
    framed.extend_from_slice(msg);
    w.write_all(&framed).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt() -> SyslogFormat {
        SyslogFormat {
            facility: 16,
            app_name: "shadowmcp".into(),
            hostname: "sensor-1".into(),
            procid: "42".into(),
            body: Format::Json,
        }
    }

    fn finding() -> Value {
        json!({"verdict":"shadow","severity":"high","confidence":"high",
            "rule":{"id":"SMCP-001","name":"MCP session over cleartext Streamable HTTP"},
            "client":{"ip":"10.1.4.7","port":51234},
            "server":{"ip":"10.9.0.5","port":8080,"name":"we\"ird]na\\me\nx","vendor":null},
            "transport":"streamable-http","count":3})
    }

    #[test]
    fn message_layout_and_escaping() {
        let m = format_rfc5424(&finding(), &fmt(), "2026-11-22T05:01:02.123456Z", 8192);
        let s = String::from_utf8(m).unwrap();
        // local0 (16) * 8 + critical (2) = 130.
        let expect = "<130>1 2026-11-22T05:01:02.123456Z sensor-1 shadowmcp 42 SMCP-001 [shadowmcp@32473 verdict=\"shadow\" severity=\"high\" confidence=\"high\" rule=\"SMCP-001\" client=\"10.1.4.7\" server=\"we\\\"ird\\]na\\\\me x\" server_ip=\"10.9.0.5\" server_port=\"8080\" transport=\"streamable-http\" count=\"3\"] {";
        assert!(s.starts_with(expect), "{s}");
        assert!(!s.contains('\n'));
        let json_start = s.find("] {").unwrap() + 2;
        let v: Value = serde_json::from_str(&s[json_start..]).unwrap();
        assert_eq!(v, finding());
    }

    #[test]
    fn oversize_uses_summary_and_respects_limit() {
        let mut f = finding();
        f["evidence"] = json!([{"signal": "x", "detail": "d".repeat(20_000)}]);
        let m = format_rfc5424(&f, &fmt(), "2026-11-22T05:01:02Z", 2048);
        assert!(m.len() <= 2048);
        let s = String::from_utf8(m).unwrap();
        assert!(s.ends_with("shadow MCP: 10.1.4.7 -> we\"ird]na\\me x (SMCP-001 MCP session over cleartext Streamable HTTP, high confidence, streamable-http)"), "{s}");
        // Every limit from tiny to large yields valid UTF-8 no longer than asked.
        let mut f2 = finding();
        f2["server"]["name"] = json!("é".repeat(300));
        for max in 0..1200 {
            let m = format_rfc5424(&f2, &fmt(), "t", max);
            assert!(m.len() <= max);
            assert!(std::str::from_utf8(&m).is_ok());
        }
    }

    #[test]
    fn nil_fields_and_hostile_header_values() {
        let f = SyslogFormat {
            facility: 200,
            app_name: "a p\tp".repeat(40),
            hostname: String::new(),
            procid: "1".into(),
            body: Format::Json,
        };
        let m = format_rfc5424(&json!({}), &f, "", 8192);
        let s = String::from_utf8(m).unwrap();
        // Facility clamped to 23, severity informational (6): 23*8+6 = 190.
        assert!(s.starts_with("<190>1 - - "), "{s}");
        let app = s.split(' ').nth(3).unwrap();
        assert_eq!(app.len(), 48);
        assert!(s.contains(" - [shadowmcp@32473 count=\"0\"] "), "{s}");
    }

    #[test]
    fn body_in_the_sink_format_and_observer_in_structured_data() {
        let mut f = finding();
        f["timestamp"] = json!("2026-11-22T05:01:02.123456Z");
        f["first_seen"] = f["timestamp"].clone();
        f["last_seen"] = f["timestamp"].clone();
        f["evidence"] = json!([]);
        f["community_id"] = Value::Null;
        f["mcp"] = json!({"protocol_version": null, "client": null, "server": null,
            "methods": [], "tools": [], "tools_called": []});
        f["observer"] = json!({"name": "tap-1", "interfaces": ["eth1"]});
        let ocsf = SyslogFormat {
            body: Format::Ocsf,
            ..fmt()
        };
        let s = String::from_utf8(format_rfc5424(&f, &ocsf, "t", 8192)).unwrap();
        assert!(s.contains(" observer=\"tap-1\"]"), "{s}");
        let body: Value = serde_json::from_str(&s[s.find("] {").unwrap() + 2..]).unwrap();
        assert_eq!(body["class_uid"], 2004);
        assert_eq!(body["metadata"]["reporter"]["name"], "tap-1");
        // Not a finding record: the summary instead of an empty body.
        let s = String::from_utf8(format_rfc5424(&json!({"x": 1}), &ocsf, "t", 8192)).unwrap();
        assert!(
            s.ends_with("] unknown MCP:  -> - ( ,  confidence, )"),
            "{s}"
        );
    }

    #[test]
    fn facilities() {
        assert_eq!(parse_facility("local0"), Some(16));
        assert_eq!(parse_facility("LOCAL7"), Some(23));
        assert_eq!(parse_facility("authpriv"), Some(10));
        assert_eq!(parse_facility("user"), Some(1));
        assert_eq!(parse_facility("3"), Some(3));
        assert_eq!(parse_facility("24"), None);
        assert_eq!(parse_facility("bogus"), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            split_address("127.0.0.1", 514).unwrap(),
            ("127.0.0.1:514".into(), "127.0.0.1".into())
        );
        assert_eq!(
            split_address("127.0.0.1:1514", 514).unwrap().0,
            "127.0.0.1:1514"
        );
        assert_eq!(
            split_address("::1", 6514).unwrap(),
            ("[::1]:6514".into(), "::1".into())
        );
        assert_eq!(split_address("[::1]", 6514).unwrap().0, "[::1]:6514");
        assert_eq!(
            split_address("[::1]:99", 6514).unwrap(),
            ("[::1]:99".into(), "::1".into())
        );
        assert_eq!(
            split_address("logs.example", 6514).unwrap(),
            ("logs.example:6514".into(), "logs.example".into())
        );
        for bad in ["", ":514", "h:99999", "h:x", "[::1", "[zz]:1", "[::1]x"] {
            assert!(split_address(bad, 514).is_err(), "{bad}");
        }
    }
}
