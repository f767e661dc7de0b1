//! The fields of a finding that syslog and Alertmanager put into labels and
//! structured data. Read from the documented JSON (docs/findings.md) so the
//! sinks depend only on field names, not on the engine's types.

use serde_json::Value;

/// Longest value kept per field; server names are at most 253 bytes (RFC
/// 1035), everything else is shorter, so this only trims hostile input.
const MAX_FIELD: usize = 512;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alert {
    pub timestamp: String,
    pub first_seen: String,
    pub verdict: String,
    pub severity: String,
    pub confidence: String,
    pub rule_id: String,
    pub rule_name: String,
    pub client_ip: String,
    pub server_name: Option<String>,
    pub server_ip: Option<String>,
    pub server_port: Option<u64>,
    pub server_vendor: Option<String>,
    pub transport: String,
    pub community_id: Option<String>,
    /// Name of the sensor that made the finding.
    pub observer: Option<String>,
    pub count: u64,
    /// `signal: detail` of each evidence item (at most 8 kept).
    pub evidence: Vec<String>,
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_FIELD {
        return s.to_owned();
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").to_owned()
}

fn text(v: &Value, ptr: &str) -> Option<String> {
    match v.pointer(ptr)? {
        Value::String(s) if !s.is_empty() => Some(cut(s)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Alert {
    pub fn from_finding(v: &Value) -> Alert {
        let t = |p| text(v, p).unwrap_or_default();
        Alert {
            timestamp: t("/timestamp"),
            first_seen: t("/first_seen"),
            verdict: t("/verdict"),
            severity: t("/severity"),
            confidence: t("/confidence"),
            rule_id: t("/rule/id"),
            rule_name: t("/rule/name"),
            client_ip: t("/client/ip"),
            server_name: text(v, "/server/name"),
            server_ip: text(v, "/server/ip"),
            server_port: v.pointer("/server/port").and_then(Value::as_u64),
            server_vendor: text(v, "/server/vendor"),
            transport: t("/transport"),
            community_id: text(v, "/community_id"),
            observer: text(v, "/observer/name"),
            count: v.pointer("/count").and_then(Value::as_u64).unwrap_or(0),
            evidence: v
                .pointer("/evidence")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .take(8)
                        .map(|e| {
                            let sig = e.get("signal").and_then(Value::as_str).unwrap_or("");
                            let det = e.get("detail").and_then(Value::as_str).unwrap_or("");
                            cut(&format!("{sig}: {det}"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The server as people name it: host name, else address, else `-`.
    pub fn server(&self) -> &str {
        self.server_name
            .as_deref()
            .or(self.server_ip.as_deref())
            .unwrap_or("-")
    }

    /// One line for humans: `shadow MCP: 10.1.4.7 -> mcp.x.com (SMCP-010 …, high confidence)`.
    pub fn summary(&self) -> String {
        let vendor = self
            .server_vendor
            .as_deref()
            .map(|v| format!(" [{v}]"))
            .unwrap_or_default();
        format!(
            "{} MCP: {} -> {}{} ({} {}, {} confidence, {})",
            if self.verdict.is_empty() {
                "unknown"
            } else {
                &self.verdict
            },
            self.client_ip,
            self.server(),
            vendor,
            self.rule_id,
            self.rule_name,
            self.confidence,
            self.transport
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_documented_example() {
        // The example object of docs/findings.md.
        let v: Value = serde_json::from_str(r#"{"timestamp":"2026-11-22T05:01:02.123456Z","verdict":"shadow","severity":"high","confidence":"high",
 "rule":{"id":"SMCP-001","name":"MCP session over cleartext Streamable HTTP"},
 "client":{"ip":"10.1.4.7","port":51234},
 "server":{"ip":"10.9.0.5","port":8080,"name":"mcp.example-vendor.com","vendor":null,"path":"/mcp"},
 "transport":"streamable-http",
 "evidence":[{"signal":"http-jsonrpc","detail":"initialize request"},{"signal":"http-header","detail":"Mcp-Session-Id in response"}],
 "community_id":"1:wCb3OG7yAFWelaUydu0D+125CLM=",
 "first_seen":"2026-11-22T05:01:02.123456Z","last_seen":"2026-11-22T05:03:40.000001Z","count":3}"#).unwrap();
        let a = Alert::from_finding(&v);
        assert_eq!(a.rule_id, "SMCP-001");
        assert_eq!(a.client_ip, "10.1.4.7");
        assert_eq!(a.server(), "mcp.example-vendor.com");
        assert_eq!(a.server_ip.as_deref(), Some("10.9.0.5"));
        assert_eq!(a.server_port, Some(8080));
        assert_eq!(a.server_vendor, None);
        assert_eq!(a.count, 3);
        assert_eq!(a.evidence.len(), 2);
        assert!(
            a.summary()
                .starts_with("shadow MCP: 10.1.4.7 -> mcp.example-vendor.com (SMCP-001")
        );
    }

    #[test]
    fn hostile_shapes() {
        for v in [
            Value::Null,
            serde_json::json!([]),
            serde_json::json!({"rule": 5, "client": "x", "server": {"name": ["a"]}, "count": -1}),
            serde_json::json!({"server": {"name": "é".repeat(1000)}}),
        ] {
            let a = Alert::from_finding(&v);
            assert!(a.server().len() <= MAX_FIELD);
            assert_eq!(a.count, 0);
        }
    }
}
