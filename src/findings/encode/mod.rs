//! Encodings of finding records: the documented JSON (docs/findings.md) and
//! the SIEM schemas OCSF and ECS. Every encoder maps one [`FindingRecord`]
//! to one JSON object; a new format is one module and one [`Format`] variant.
//!
//! Sinks carry the documented JSON (it is what they read their labels from
//! and what the spool stores) and encode it at delivery with
//! [`encode_value`].

pub mod ecs;
pub mod json;
pub mod ocsf;

use super::aggregate::{Severity, Verdict};
use super::output::FindingRecord;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::{self, Write};

/// Output format of `analyze` and of each sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The documented findings JSON.
    #[default]
    Json,
    /// OCSF 1.7.0 Detection Finding (class 2004).
    Ocsf,
    /// Elastic Common Schema 9.x alert document.
    Ecs,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Json, Format::Ocsf, Format::Ecs];

    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Ocsf => "ocsf",
            Format::Ecs => "ecs",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown output format {0:?} (expected json, ocsf or ecs)")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The JSON handed to a sink is not a finding record.
    #[error("not a finding record: {0}")]
    NotAFinding(serde_json::Error),
    #[error("finding not serialisable: {0}")]
    Json(#[from] serde_json::Error),
}

/// One record in `format`.
pub fn encode(format: Format, r: &FindingRecord) -> Result<Value, EncodeError> {
    Ok(match format {
        Format::Json => json::encode(r)?,
        Format::Ocsf => ocsf::encode(r),
        Format::Ecs => ecs::encode(r),
    })
}

/// A record already in the documented JSON, in `format`: borrowed as is for
/// `json`, read back into a [`FindingRecord`] and encoded otherwise.
pub fn encode_value(format: Format, v: &Value) -> Result<Cow<'_, Value>, EncodeError> {
    if format == Format::Json {
        return Ok(Cow::Borrowed(v));
    }
    let r = FindingRecord::deserialize_from(v).map_err(EncodeError::NotAFinding)?;
    encode(format, &r).map(Cow::Owned)
}

/// Records as JSON Lines in `format`. `json` writes exactly what
/// [`super::output::write_json_lines`] writes.
pub fn write_records(
    w: &mut dyn Write,
    format: Format,
    records: &[FindingRecord],
) -> io::Result<()> {
    if format == Format::Json {
        return json::write(w, records);
    }
    for r in records {
        let v = encode(format, r).map_err(io::Error::other)?;
        serde_json::to_writer(&mut *w, &v)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

impl FindingRecord {
    /// Reads a record back from its documented JSON.
    pub fn deserialize_from(v: &Value) -> Result<FindingRecord, serde_json::Error> {
        serde::Deserialize::deserialize(v)
    }
}

/// Milliseconds since the Unix epoch of a record time (RFC 3339).
pub(crate) fn epoch_ms(ts: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(ts).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

/// `shadow MCP: 10.1.4.7 -> mcp.x.com (SMCP-010 …, high confidence)`.
pub(crate) fn summary(r: &FindingRecord) -> String {
    let server = server_label(r);
    let vendor = r
        .server
        .vendor
        .as_deref()
        .map(|v| format!(" [{v}]"))
        .unwrap_or_default();
    format!(
        "{} MCP: {} -> {server}{vendor} ({} {}, {} confidence, {})",
        verdict_name(r.verdict),
        r.client.ip,
        r.rule.id,
        r.rule.name,
        enum_name(&r.confidence),
        enum_name(&r.transport),
    )
}

/// The server as people name it: host name, else address.
pub(crate) fn server_label(r: &FindingRecord) -> String {
    match (&r.server.name, r.server.ip) {
        (Some(n), _) => n.clone(),
        (None, Some(ip)) => ip.to_string(),
        (None, None) => "-".into(),
    }
}

pub(crate) fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Shadow => "shadow",
        Verdict::Sanctioned => "sanctioned",
    }
}

pub(crate) fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
    }
}

/// The serde name of a unit enum value (`streamable-http`, `high`).
pub(crate) fn enum_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// IP protocol of the flow shown, when the transport implies it. DNS is
/// left out: the record does not say whether the lookup went over UDP or TCP.
pub(crate) fn ip_protocol(t: super::Transport) -> Option<(&'static str, u8)> {
    use super::Transport::*;
    match t {
        Dns => None,
        Quic => Some(("udp", 17)),
        Tls | StreamableHttp | Http2 | Sse | Websocket => Some(("tcp", 6)),
    }
}

/// URL scheme of a cleartext request: the WebSocket upgrade's `ws`, else `http`.
pub(crate) fn url_scheme(t: super::Transport) -> &'static str {
    if t == super::Transport::Websocket {
        "ws"
    } else {
        "http"
    }
}

/// The MCP inventory of a finding as an object of its known parts; `None`
/// when nothing is known (the same shape in every format's custom fields).
pub(crate) fn mcp_inventory(mcp: &crate::findings::output::McpRef) -> Option<Value> {
    non_empty(object([
        (
            "protocol_version",
            mcp.protocol_version.as_ref().map(|s| serde_json::json!(s)),
        ),
        ("client", mcp.client.as_ref().map(|s| serde_json::json!(s))),
        ("server", mcp.server.as_ref().map(|s| serde_json::json!(s))),
        ("methods", list(&mcp.methods)),
        ("tools", list(&mcp.tools)),
        ("tools_called", list(&mcp.tools_called)),
        ("remotes", list(&mcp.remotes)),
    ]))
}

/// A JSON object of the pairs whose value is present.
pub(crate) fn object<'a>(pairs: impl IntoIterator<Item = (&'a str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            m.insert(k.to_owned(), v);
        }
    }
    Value::Object(m)
}

/// `Some(object)` unless it has no member.
pub(crate) fn non_empty(v: Value) -> Option<Value> {
    v.as_object().is_some_and(|m| !m.is_empty()).then_some(v)
}

/// `Some(value)` of a non-empty list.
pub(crate) fn list<T: Into<Value> + Clone>(items: &[T]) -> Option<Value> {
    (!items.is_empty()).then(|| Value::Array(items.iter().cloned().map(Into::into).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().ok(), Some(f));
            assert_eq!(f.to_string().to_uppercase().parse::<Format>().ok(), Some(f));
        }
        assert!("cef".parse::<Format>().is_err());
        assert_eq!(Format::default(), Format::Json);
    }

    #[test]
    fn epoch_ms_of_record_times() {
        assert_eq!(epoch_ms("1970-01-01T00:00:01.234567Z"), Some(1234));
        assert_eq!(epoch_ms("not a time"), None);
    }
}
