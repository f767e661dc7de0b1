//! Rendering findings: JSON Lines (the format documented in docs/findings.md)
//! and an aligned text table for analysts.

use super::aggregate::{Assessment, Confidence, Finding, Rule, Severity, Verdict};
use super::{Evidence, Micros, Observer, TlsInfo, Transport};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 UTC with microseconds.
pub fn format_ts(ts: Micros) -> String {
    let t = if ts >= 0 {
        UNIX_EPOCH + Duration::from_micros(ts.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_micros(ts.unsigned_abs())
    };
    humantime::format_rfc3339_micros(t).to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRef {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerRef {
    pub ip: Option<IpAddr>,
    pub port: Option<u16>,
    pub name: Option<String>,
    pub vendor: Option<String>,
    /// Request path seen in cleartext (redacted).
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct McpRef {
    pub protocol_version: Option<String>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub methods: Vec<String>,
    /// Tool names listed by the server or called by the client.
    pub tools: Vec<String>,
    pub tools_called: Vec<String>,
    /// Remote endpoint URLs named by discovery answers (redacted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<String>,
}

/// One finding as written to sinks. Field names are the documented interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingRecord {
    pub timestamp: String,
    pub verdict: Verdict,
    pub severity: Severity,
    pub confidence: Confidence,
    pub rule: Rule,
    pub client: ClientRef,
    pub server: ServerRef,
    pub transport: Transport,
    /// The ClientHello of the flow shown (TLS and QUIC findings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    pub evidence: Vec<Evidence>,
    pub mcp: McpRef,
    pub community_id: Option<String>,
    /// Community IDs of the earliest distinct flows (at most
    /// `aggregate::MAX_COMMUNITY_IDS`; `count` is the number of flows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub community_ids: Vec<String>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sanctioned_by: Option<String>,
    /// Live sensor only: flows of this (client, server, rule) suppressed since
    /// the previous emission (0 on the first one; a roll-up carries the count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeats: Option<u64>,
    /// The sensor that made the finding, when the caller named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observer: Option<Observer>,
}

impl FindingRecord {
    /// `timestamp` is when the finding was made: in offline analysis the
    /// packet time of its first evidence, so output is reproducible.
    pub fn new(f: &Finding, a: &Assessment, timestamp: Micros) -> Self {
        let mut tools: Vec<String> = f
            .mcp
            .tools_listed
            .union(&f.mcp.tools_called)
            .cloned()
            .collect();
        tools.sort();
        FindingRecord {
            timestamp: format_ts(timestamp),
            verdict: a.verdict,
            severity: a.severity,
            confidence: a.confidence,
            rule: a.rule,
            client: ClientRef {
                ip: f.client_ip,
                port: f.client_port,
            },
            server: ServerRef {
                ip: f.server_ip,
                port: f.server_port,
                name: f.server_name.clone(),
                vendor: a.vendor.clone(),
                path: f.path.clone(),
            },
            transport: f.transport,
            tls: f.tls.clone(),
            evidence: f.evidence.iter().cloned().collect(),
            mcp: McpRef {
                protocol_version: f.mcp.protocol_version.clone(),
                client: f.mcp.client.clone(),
                server: f.mcp.server.clone(),
                methods: f.mcp.methods.iter().cloned().collect(),
                tools,
                tools_called: f.mcp.tools_called.iter().cloned().collect(),
                remotes: f.mcp.remotes.iter().cloned().collect(),
            },
            community_id: f.community_id.clone(),
            community_ids: f.community_ids.iter().map(|(_, c)| c.clone()).collect(),
            first_seen: format_ts(f.first_seen),
            last_seen: format_ts(f.last_seen),
            count: f.count,
            sanctioned_by: a.sanctioned_by.clone(),
            repeats: None,
            observer: None,
        }
    }

    /// Names the sensor that made the finding (`observer` in the JSON).
    pub fn with_observer(mut self, observer: &Observer) -> Self {
        self.observer = Some(observer.clone());
        self
    }
}

pub fn write_json_lines(w: &mut dyn Write, records: &[FindingRecord]) -> io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *w, r)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Widest line of the text format. Names are never cut: a single word
/// longer than the room it gets (a 200-character host name) stays whole on
/// a line of its own, the only case a line is wider.
pub const TEXT_WIDTH: usize = 120;

/// Text from the wire made safe to print: control characters (terminal
/// escapes, newlines) removed.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

fn width_of(s: &str) -> usize {
    s.chars().count()
}

/// Greedy word wrap at spaces into lines of at most `width` characters; a
/// word longer than `width` gets a line of its own, whole.
fn wrap_words(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        if !line.is_empty() && width_of(&line) + 1 + width_of(word) > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Writes `text` wrapped to [`TEXT_WIDTH`]: the first line starts with
/// `first`, the others with `rest` (a hanging indent).
fn write_wrapped(w: &mut dyn Write, first: &str, rest: &str, text: &str) -> io::Result<()> {
    let room = TEXT_WIDTH.saturating_sub(width_of(rest)).max(1);
    let first_room = TEXT_WIDTH.saturating_sub(width_of(first)).max(1);
    let mut lines = wrap_words(text, first_room).into_iter();
    let head = lines.next().unwrap_or_default();
    // The first line was wrapped for its own prefix; the rest again for theirs.
    let tail: Vec<String> = lines.collect();
    writeln!(w, "{first}{head}")?;
    if !tail.is_empty() {
        for l in wrap_words(&tail.join(" "), room) {
            writeln!(w, "{rest}{l}")?;
        }
    }
    Ok(())
}

/// How a table column behaves when the table is too wide.
#[derive(Clone, Copy, PartialEq)]
enum Fit {
    /// Never narrower than its widest cell (short fixed values).
    Fixed,
    /// Wrapped at spaces, never narrower than its longest word.
    Wrap,
    /// Narrowed to at least `floor`; a longer cell (an IPv6 address, a long
    /// host name) is printed whole on a continuation line at the column.
    Overflow { floor: usize },
}

struct Column {
    header: &'static str,
    fit: Fit,
    right: bool,
}

/// Column widths: each as wide as its widest cell; when the table is wider
/// than [`TEXT_WIDTH`], the widest narrowable column gives up a character
/// at a time down to its floor.
fn column_widths(cols: &[Column], rows: &[Vec<String>]) -> Vec<usize> {
    let natural = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .map(|c| width_of(c))
            .chain([width_of(cols[i].header)])
            .max()
            .unwrap_or(0)
    };
    let floor = |i: usize, natural: usize| match cols[i].fit {
        Fit::Fixed => natural,
        Fit::Wrap => rows
            .iter()
            .filter_map(|r| r.get(i))
            .flat_map(|c| c.split_whitespace())
            .map(width_of)
            .chain([width_of(cols[i].header)])
            .max()
            .unwrap_or(0),
        Fit::Overflow { floor } => floor.max(width_of(cols[i].header)).min(natural),
    };
    let mut widths: Vec<usize> = (0..cols.len()).map(natural).collect();
    let floors: Vec<usize> = widths
        .iter()
        .enumerate()
        .map(|(i, &n)| floor(i, n))
        .collect();
    let total = |w: &[usize]| w.iter().sum::<usize>() + w.len().saturating_sub(1);
    while total(&widths) > TEXT_WIDTH {
        let widest = (0..cols.len())
            .filter(|&i| widths[i] > floors[i])
            .max_by_key(|&i| (widths[i] - floors[i], widths[i]));
        match widest {
            Some(i) => widths[i] -= 1,
            None => break,
        }
    }
    widths
}

/// Writes rows under a header; cells are already printable.
fn write_table(w: &mut dyn Write, cols: &[Column], rows: &[Vec<String>]) -> io::Result<()> {
    let widths = column_widths(cols, rows);
    let offsets: Vec<usize> = widths
        .iter()
        .scan(0, |at, &wd| {
            let o = *at;
            *at += wd + 1;
            Some(o)
        })
        .collect();
    let header: Vec<String> = cols.iter().map(|c| c.header.to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(cols.len());
        let mut overflow: Vec<(usize, &str)> = Vec::new();
        for (i, col) in cols.iter().enumerate() {
            let text = row.get(i).map_or("", String::as_str);
            cells.push(match col.fit {
                Fit::Wrap => wrap_words(text, widths[i]),
                _ if width_of(text) <= widths[i] => vec![text.to_owned()],
                _ => {
                    overflow.push((offsets[i], text));
                    vec![String::new()]
                }
            });
        }
        let height = cells.iter().map(Vec::len).max().unwrap_or(1);
        for l in 0..height {
            let mut line = String::new();
            for (i, col) in cols.iter().enumerate() {
                let text = cells[i].get(l).map_or("", String::as_str);
                let pad = widths[i].saturating_sub(width_of(text));
                if i > 0 {
                    line.push(' ');
                }
                if col.right {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(text);
                } else {
                    line.push_str(text);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        for (at, text) in overflow {
            writeln!(w, "{}{text}", " ".repeat(at))?;
        }
    }
    Ok(())
}

/// The server as `name:port`, `addr:port` (IPv6 in brackets), or `-` when
/// neither a name nor an address is known; for the text format and logs.
pub fn server_label(r: &FindingRecord) -> String {
    match (&r.server.name, r.server.ip, r.server.port) {
        (Some(n), _, Some(p)) => format!("{}:{p}", printable(n)),
        (Some(n), _, None) => printable(n),
        // An IPv6 address in brackets, so its port reads as one.
        (None, Some(ip), Some(p)) => std::net::SocketAddr::new(ip, p).to_string(),
        (None, Some(ip), None) => ip.to_string(),
        (None, None, _) => "-".into(),
    }
}

/// The JSON spelling of a unit enum (`streamable-http`, `high`).
fn json_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A table, one row per finding, that fits [`TEXT_WIDTH`] columns, then the
/// details and evidence of each finding, wrapped at spaces.
pub fn write_text(w: &mut dyn Write, records: &[FindingRecord]) -> io::Result<()> {
    if records.is_empty() {
        writeln!(w, "No findings.")?;
        return Ok(());
    }
    let cols = [
        Column {
            header: "VERDICT",
            fit: Fit::Fixed,
            right: false,
        },
        Column {
            header: "CONF",
            fit: Fit::Fixed,
            right: false,
        },
        Column {
            header: "RULE",
            fit: Fit::Fixed,
            right: false,
        },
        Column {
            header: "CLIENT",
            fit: Fit::Overflow { floor: 15 },
            right: false,
        },
        Column {
            header: "SERVER",
            fit: Fit::Overflow { floor: 24 },
            right: false,
        },
        Column {
            header: "VENDOR",
            fit: Fit::Wrap,
            right: false,
        },
        Column {
            header: "TRANSPORT",
            fit: Fit::Fixed,
            right: false,
        },
        Column {
            header: "CLIENT APP",
            fit: Fit::Wrap,
            right: false,
        },
        Column {
            header: "FLOWS",
            fit: Fit::Fixed,
            right: true,
        },
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                json_name(&r.verdict),
                json_name(&r.confidence),
                printable(r.rule.id),
                r.client.ip.to_string(),
                server_label(r),
                printable(r.server.vendor.as_deref().unwrap_or("-")),
                json_name(&r.transport),
                printable(r.mcp.client.as_deref().unwrap_or("-")),
                r.count.to_string(),
            ]
        })
        .collect();
    write_table(w, &cols, &rows)?;
    writeln!(w)?;
    for (i, r) in records.iter().enumerate() {
        let server = r
            .server
            .name
            .as_deref()
            .map(printable)
            .or(r.server.ip.map(|i| i.to_string()))
            .unwrap_or_default();
        write_wrapped(
            w,
            "",
            "    ",
            &format!(
                "[{}] {} -> {} — {} ({})",
                i + 1,
                r.client.ip,
                server,
                r.rule.name,
                r.rule.id
            ),
        )?;
        write_wrapped(
            w,
            "    ",
            "    ",
            &format!("first seen {}  last seen {}", r.first_seen, r.last_seen),
        )?;
        write_wrapped(
            w,
            "    community id ",
            "      ",
            r.community_id.as_deref().unwrap_or("-"),
        )?;
        let lists = [
            (
                "    protocol version: ",
                r.mcp
                    .protocol_version
                    .iter()
                    .map(|s| printable(s))
                    .collect::<Vec<_>>(),
            ),
            (
                "    methods: ",
                r.mcp.methods.iter().map(|s| printable(s)).collect(),
            ),
            (
                "    tools: ",
                r.mcp.tools.iter().map(|s| printable(s)).collect(),
            ),
            (
                "    server implementation: ",
                r.mcp.server.iter().map(|s| printable(s)).collect(),
            ),
        ];
        for (label, items) in lists {
            if !items.is_empty() {
                write_wrapped(w, label, "      ", &items.join(", "))?;
            }
        }
        if let Some(s) = &r.sanctioned_by {
            write_wrapped(
                w,
                "    sanctioned by allowlist entry ",
                "      ",
                &printable(s),
            )?;
        }
        for e in &r.evidence {
            let first = format!("    - {}: ", json_name(&e.signal));
            write_wrapped(w, &first, "      ", &printable(&e.detail))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(client: &str, server: &str, vendor: &str, app: &str) -> FindingRecord {
        serde_json::from_value(serde_json::json!({
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "verdict": "shadow", "severity": "high", "confidence": "high",
            "rule": {"id": "SMCP-010", "name": "TLS/QUIC connection to a known MCP server"},
            "client": {"ip": client, "port": 40000},
            "server": {"ip": null, "port": 443, "name": server, "vendor": vendor, "path": null},
            "transport": "tls", "evidence": [],
            "mcp": {"protocol_version": null, "client": app, "server": null,
                    "methods": [], "tools": [], "tools_called": []},
            "community_id": null,
            "first_seen": "2026-01-01T00:00:00.000000Z",
            "last_seen": "2026-01-01T00:00:00.000000Z", "count": 1
        }))
        .expect("record")
    }

    /// Wide cells wrap at spaces or move whole to a continuation line:
    /// every line fits, every name stays whole.
    #[test]
    fn wide_rows_fit_without_cutting_names() {
        let server = "mcp-gateway.eu-central-1.internal.example-corporation.com";
        let recs = [
            record(
                "2001:db8:1234:5678:9abc:def0:1234:5678",
                server,
                "Example Cloud Platform Services",
                "claude-code-enterprise-edition 2.1.0-beta",
            ),
            record("10.0.0.1", "mcp.notion.com", "Notion", "x 1"),
        ];
        let mut out = Vec::new();
        write_text(&mut out, &recs).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        for line in text.lines() {
            assert!(line.chars().count() <= TEXT_WIDTH, "{line}\n{text}");
        }
        let tokens: Vec<&str> = text.split_whitespace().collect();
        for w in [
            "2001:db8:1234:5678:9abc:def0:1234:5678",
            &format!("{server}:443"),
            "Platform",
            "claude-code-enterprise-edition",
            "2.1.0-beta",
        ] {
            assert!(tokens.contains(&w), "{w} not whole:\n{text}");
        }
    }

    #[test]
    fn control_characters_are_not_printed() {
        let recs = [record(
            "10.0.0.1",
            "mcp.notion.com",
            "No\x1b[2Jtion",
            "a\nb",
        )];
        let mut out = Vec::new();
        write_text(&mut out, &recs).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(text.contains("ab"), "{text}");
    }

    #[test]
    fn a_word_longer_than_the_line_stays_whole() {
        let long = "x".repeat(150);
        assert_eq!(wrap_words(&format!("a {long} b"), 20), ["a", &long, "b"]);
        assert_eq!(wrap_words("", 10), [""]);
    }
}
