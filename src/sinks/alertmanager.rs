//! Prometheus Alertmanager sink (API v2, `POST /api/v2/alerts`).
//!
//! Each finding becomes one alert named `ShadowMCP` with labels severity,
//! confidence, verdict, rule, client, server, server_ip, vendor, transport,
//! observer (empty ones left out), so that routes can group and silence by
//! them. The finding itself is attached as the `finding` annotation in the
//! sink's `format` (Alertmanager's own alert shape does not change).
//! `endsAt` is the send time plus `resolve_timeout_secs`: a finding that is
//! made again re-sends the alert and keeps it firing; otherwise it resolves.

use super::alert::Alert;
use super::config::AlertmanagerConfig;
use super::http::{HttpPoster, TlsFiles};
use super::output_ts;
use super::worker::{Backend, Outcome};
use super::{SinkError, encoded};
use crate::findings::encode::Format;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Longest annotation value (the finding JSON is attached as `finding`).
const MAX_ANNOTATION: usize = 16 * 1024;

pub(crate) struct AlertmanagerBackend {
    http: HttpPoster,
    labels: BTreeMap<String, String>,
    resolve: Duration,
    generator_url: Option<String>,
    format: Format,
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn alerts_url(base: &str) -> String {
    let (main, query) = match base.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (base, None),
    };
    let main = main.trim_end_matches('/');
    let mut u = if main.ends_with("/api/v2/alerts") {
        main.to_owned()
    } else {
        format!("{main}/api/v2/alerts")
    };
    if let Some(q) = query {
        u.push('?');
        u.push_str(q);
    }
    u
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

impl AlertmanagerBackend {
    pub(crate) fn new(c: &AlertmanagerConfig) -> Result<Self, SinkError> {
        for k in c.labels.keys() {
            if !valid_label_name(k) {
                return Err(SinkError::Config(format!("invalid label name {k:?}")));
            }
        }
        let http = HttpPoster::new(
            &alerts_url(&c.url),
            TlsFiles {
                ca_file: c.ca_file.as_deref(),
                client_cert: c.client_cert.as_deref(),
                client_key: c.client_key.as_deref(),
            },
            &c.headers,
            Duration::from_millis(c.timeout_ms.max(1)),
        )?;
        Ok(AlertmanagerBackend {
            http,
            labels: c.labels.clone(),
            resolve: Duration::from_secs(c.resolve_timeout_secs.clamp(1, 365 * 86_400)),
            generator_url: c.generator_url.clone(),
            format: c.format,
        })
    }

    pub(crate) fn alert_json(&self, v: &Value, now: SystemTime) -> Value {
        to_alert(
            v,
            now,
            self.resolve,
            &self.labels,
            self.generator_url.as_deref(),
            self.format,
        )
    }
}

/// One Alertmanager alert for a finding.
pub(crate) fn to_alert(
    v: &Value,
    now: SystemTime,
    resolve: Duration,
    extra: &BTreeMap<String, String>,
    generator_url: Option<&str>,
    format: Format,
) -> Value {
    let a = Alert::from_finding(v);
    let mut labels = Map::new();
    for (k, val) in extra {
        labels.insert(k.clone(), Value::String(val.clone()));
    }
    labels.insert("alertname".into(), "ShadowMCP".into());
    let server = a.server_name.clone().or(a.server_ip.clone());
    for (k, val) in [
        ("severity", Some(a.severity.clone())),
        ("confidence", Some(a.confidence.clone())),
        ("verdict", Some(a.verdict.clone())),
        ("rule", Some(a.rule_id.clone())),
        ("client", Some(a.client_ip.clone())),
        ("server", server),
        ("server_ip", a.server_ip.clone()),
        ("vendor", a.server_vendor.clone()),
        ("transport", Some(a.transport.clone())),
        ("observer", a.observer.clone()),
    ] {
        // Alertmanager treats an empty label as absent; leave it out.
        if let Some(val) = val.filter(|s| !s.is_empty()) {
            labels.insert(k.into(), Value::String(val));
        }
    }
    // startsAt: when the sensor first saw it, unless that is in the future
    // (clock skew), which Alertmanager would reject against endsAt.
    let starts = humantime::parse_rfc3339(&a.first_seen)
        .ok()
        .filter(|t| *t <= now)
        .unwrap_or(now);
    let ends = now + resolve;
    let mut desc = format!(
        "{} confidence, rule {} ({}), {} flow(s) via {}",
        a.confidence, a.rule_id, a.rule_name, a.count, a.transport
    );
    for e in &a.evidence {
        desc.push_str("\n- ");
        desc.push_str(e);
    }
    let finding = encoded(format, v)
        .and_then(|e| serde_json::to_string(e.as_ref()).ok())
        .unwrap_or_default();
    let mut alert = json!({
        "labels": labels,
        "annotations": {
            "summary": a.summary(),
            "description": cut(&desc, MAX_ANNOTATION),
            "finding": cut(&finding, MAX_ANNOTATION),
        },
        "startsAt": output_ts(starts),
        "endsAt": output_ts(ends),
    });
    if let (Some(u), Some(obj)) = (generator_url, alert.as_object_mut()) {
        obj.insert("generatorURL".into(), Value::String(u.to_owned()));
    }
    alert
}

impl Backend for AlertmanagerBackend {
    async fn deliver(&mut self, batch: &[Arc<Value>]) -> Outcome {
        let now = SystemTime::now();
        let alerts: Vec<Value> = batch.iter().map(|v| self.alert_json(v, now)).collect();
        let body = serde_json::to_vec(&alerts).unwrap_or_else(|_| b"[]".to_vec());
        self.http.post_json(body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(alerts_url("http://h:9093"), "http://h:9093/api/v2/alerts");
        assert_eq!(alerts_url("http://h:9093/"), "http://h:9093/api/v2/alerts");
        assert_eq!(
            alerts_url("http://h/am/api/v2/alerts"),
            "http://h/am/api/v2/alerts"
        );
        assert_eq!(
            alerts_url("http://h/am?x=1"),
            "http://h/am/api/v2/alerts?x=1"
        );
    }

    #[test]
    fn label_names() {
        assert!(valid_label_name("sensor"));
        assert!(valid_label_name("_x9"));
        assert!(!valid_label_name("9x"));
        assert!(!valid_label_name("a-b"));
        assert!(!valid_label_name(""));
    }

    #[test]
    fn alert_shape() {
        let v = json!({"verdict":"shadow","severity":"high","confidence":"high",
            "rule":{"id":"SMCP-010","name":"TLS/QUIC connection to a known MCP server"},
            "client":{"ip":"10.1.4.7","port":5},"server":{"ip":"192.0.2.1","port":443,"name":"mcp.example.com","vendor":"Example"},
            "transport":"tls","first_seen":"2026-01-01T00:00:00Z","count":2,
            "evidence":[{"signal":"tls-sni","detail":"sni mcp.example.com"}]});
        let now = humantime::parse_rfc3339("2026-01-02T00:00:00Z").unwrap();
        let mut extra = BTreeMap::new();
        extra.insert("sensor".to_string(), "dc1".to_string());
        let a = to_alert(
            &v,
            now,
            Duration::from_secs(300),
            &extra,
            Some("https://ui/x"),
            Format::Json,
        );
        let l = &a["labels"];
        assert_eq!(l["alertname"], "ShadowMCP");
        assert_eq!(l["rule"], "SMCP-010");
        assert_eq!(l["client"], "10.1.4.7");
        assert_eq!(l["server"], "mcp.example.com");
        assert_eq!(l["vendor"], "Example");
        assert_eq!(l["sensor"], "dc1");
        assert_eq!(a["startsAt"], "2026-01-01T00:00:00.000000Z");
        assert_eq!(a["endsAt"], "2026-01-02T00:05:00.000000Z");
        assert_eq!(a["generatorURL"], "https://ui/x");
        assert!(
            a["annotations"]["description"]
                .as_str()
                .unwrap()
                .contains("tls-sni")
        );
        // Labels are all strings; absent values are left out.
        let a = to_alert(
            &json!({"first_seen": "2999-01-01T00:00:00Z"}),
            now,
            Duration::from_secs(1),
            &BTreeMap::new(),
            None,
            Format::Json,
        );
        assert!(
            a["labels"]
                .as_object()
                .unwrap()
                .values()
                .all(Value::is_string)
        );
        assert!(a["labels"].get("vendor").is_none());
        assert_eq!(
            a["startsAt"], "2026-01-02T00:00:00.000000Z",
            "future first_seen ignored"
        );
        assert!(a.get("generatorURL").is_none());
    }
}
