//! JSON-RPC 2.0 (jsonrpc.org/specification) framing for untrusted payloads:
//! a cheap aho-corasick prefilter, then a real `serde_json` parse of single
//! messages and batches, so escapes and whitespace cannot hide a method.
//!
//! This module knows nothing about MCP; it only answers "is this a JSON-RPC 2.0
//! message (or batch), and what kind".
//!
//! Bounds: the payload is capped at [`MAX_PAYLOAD_BYTES`] before parsing and a
//! batch is cut at [`MAX_BATCH_MESSAGES`]; nesting is bounded by serde_json's
//! recursion limit (128 levels), which turns deep input into a parse error
//! instead of a stack overflow. The parsed `Value` tree is transient: its size
//! is proportional to the (capped) payload.

use aho_corasick::AhoCorasick;
use serde_json::{Map, Number, Value};

/// Largest payload handed to the JSON parser. Bigger payloads are not JSON-RPC
/// we care about (MCP messages are small) and would only cost CPU and memory.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

/// Messages taken from one batch (JSON-RPC 2.0 §6); the rest are ignored and
/// [`Parsed::truncated`] is set. MCP allowed batches only in 2025-03-26 and
/// real clients send a handful at most.
pub const MAX_BATCH_MESSAGES: usize = 64;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Cheap test run before any parse.
///
/// Soundness: JSON (RFC 8259 §7) can spell a character of a member name either
/// literally or as an escape. The only escape that yields a letter is `\uXXXX`;
/// the short escapes (`\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`) decode to
/// punctuation or control characters, none of which occur in `jsonrpc`. So any
/// text whose decoded form has a member named `jsonrpc` contains either the
/// literal bytes `jsonrpc` or at least one `\u`. A payload with neither cannot
/// be JSON-RPC 2.0 and is skipped without parsing. (JSON on the wire is UTF-8,
/// RFC 8259 §8.1, so no other encoding can hide the name.)
#[derive(Debug, Clone)]
pub struct Prefilter {
    /// `None` only if the automaton could not be built (it always can for
    /// two short literals); the filter then lets everything through, which
    /// stays sound.
    ac: Option<AhoCorasick>,
}

impl Default for Prefilter {
    fn default() -> Self {
        Self::new()
    }
}

impl Prefilter {
    pub fn new() -> Self {
        Self {
            ac: AhoCorasick::new(["jsonrpc", "\\u"]).ok(),
        }
    }

    /// Whether `payload` may hold a JSON-RPC message: it starts (after an
    /// optional UTF-8 BOM and JSON whitespace) with `{` or `[`, and contains
    /// `jsonrpc` or a `\u` escape.
    pub fn may_be_jsonrpc(&self, payload: &[u8]) -> bool {
        let body = json_start(payload);
        matches!(body.first(), Some(b'{' | b'['))
            && body.len() <= MAX_PAYLOAD_BYTES
            && self.ac.as_ref().is_none_or(|ac| ac.is_match(body))
    }
}

/// The payload after a UTF-8 BOM and leading JSON whitespace (RFC 8259 §2).
pub fn json_start(payload: &[u8]) -> &[u8] {
    let p = payload.strip_prefix(UTF8_BOM).unwrap_or(payload);
    let skip = p
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    p.get(skip..).unwrap_or_default()
}

/// A request id (JSON-RPC 2.0 §4: string, number or null).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id {
    Null,
    Number(Number),
    String(String),
}

impl Id {
    fn from_value(v: Value) -> Option<Id> {
        match v {
            Value::Null => Some(Id::Null),
            Value::Number(n) => Some(Id::Number(n)),
            Value::String(s) => Some(Id::String(s)),
            _ => None,
        }
    }
}

/// One JSON-RPC 2.0 message, validated (`"jsonrpc": "2.0"` present).
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `method` and `id` (§4).
    Request {
        id: Id,
        method: String,
        params: Option<Value>,
    },
    /// `method`, no `id` member (§4.1).
    Notification {
        method: String,
        params: Option<Value>,
    },
    /// `result` (§5).
    Response { id: Id, result: Value },
    /// `error` with an integer `code` (§5.1).
    Error { id: Id, code: i64 },
}

impl Message {
    /// Method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request { method, .. } | Message::Notification { method, .. } => Some(method),
            _ => None,
        }
    }

    /// `params` of a request or notification.
    pub fn params(&self) -> Option<&Value> {
        match self {
            Message::Request { params, .. } | Message::Notification { params, .. } => {
                params.as_ref()
            }
            _ => None,
        }
    }

    /// `result` of a successful response.
    pub fn result(&self) -> Option<&Value> {
        match self {
            Message::Response { result, .. } => Some(result),
            _ => None,
        }
    }

    /// Validate one JSON value as a JSON-RPC 2.0 message. Anything else
    /// (missing or wrong `jsonrpc`, both `result` and `error`, a non-string
    /// method, params that are neither object nor array) is `None`.
    pub fn from_value(v: Value) -> Option<Message> {
        let Value::Object(mut obj) = v else {
            return None;
        };
        if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return None;
        }
        let id = match obj.remove("id") {
            Some(v) => Some(Id::from_value(v)?),
            None => None,
        };
        if let Some(method) = obj.remove("method") {
            let Value::String(method) = method else {
                return None;
            };
            if obj.contains_key("result") || obj.contains_key("error") {
                return None;
            }
            let params = take_params(&mut obj)?;
            return Some(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            });
        }
        match (obj.remove("result"), obj.remove("error")) {
            (Some(result), None) => Some(Message::Response { id: id?, result }),
            (None, Some(Value::Object(err))) => {
                let code = err.get("code").and_then(Value::as_i64)?;
                // §5: `id` is required in responses, null when it could not be read.
                Some(Message::Error {
                    id: id.unwrap_or(Id::Null),
                    code,
                })
            }
            _ => None,
        }
    }
}

/// `params` must be structured (object or array) when present (§4.2).
/// Outer `None` = invalid message.
fn take_params(obj: &mut Map<String, Value>) -> Option<Option<Value>> {
    match obj.remove("params") {
        None => Some(None),
        Some(p @ (Value::Object(_) | Value::Array(_))) => Some(Some(p)),
        Some(_) => None,
    }
}

/// A parsed payload: one message, or a batch of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// In wire order; at most [`MAX_BATCH_MESSAGES`].
    pub messages: Vec<Message>,
    /// The payload was a JSON array (batch, JSON-RPC 2.0 §6).
    pub batch: bool,
    /// The batch had more than [`MAX_BATCH_MESSAGES`] entries.
    pub truncated: bool,
}

/// Parse a payload as one JSON-RPC 2.0 message or a batch.
///
/// `None` when the payload is not JSON, is too big or too deep, is JSON that
/// is not JSON-RPC 2.0, or is a batch with any entry (within the cap) that is
/// not a JSON-RPC 2.0 message. The strict batch rule keeps arrays of
/// arbitrary documents that merely contain a JSON-RPC example from counting.
/// An empty array is not a batch (§6: "an Array with at least one value").
pub fn parse(payload: &[u8]) -> Option<Parsed> {
    let body = json_start(payload);
    if body.len() > MAX_PAYLOAD_BYTES || !matches!(body.first(), Some(b'{' | b'[')) {
        return None;
    }
    // from_slice rejects trailing non-whitespace and enforces the 128-level
    // recursion limit.
    let value: Value = serde_json::from_slice(body).ok()?;
    match value {
        Value::Array(items) => {
            if items.is_empty() {
                return None;
            }
            let truncated = items.len() > MAX_BATCH_MESSAGES;
            let messages = items
                .into_iter()
                .take(MAX_BATCH_MESSAGES)
                .map(Message::from_value)
                .collect::<Option<Vec<_>>>()?;
            Some(Parsed {
                messages,
                batch: true,
                truncated,
            })
        }
        v @ Value::Object(_) => Some(Parsed {
            messages: vec![Message::from_value(v)?],
            batch: false,
            truncated: false,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(payload: &str) -> Option<Message> {
        let p = parse(payload.as_bytes())?;
        assert!(!p.batch);
        p.messages.into_iter().next()
    }

    #[test]
    fn request_notification_response_error() {
        // From a python-sdk 2.3 capture (Streamable HTTP, 2025-11-25).
        let m = one(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            m,
            Message::Request {
                id: Id::Number(2.into()),
                method: "tools/list".into(),
                params: None
            }
        );
        let m = one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(m.method(), Some("notifications/initialized"));
        assert!(matches!(m, Message::Notification { .. }));
        let m = one(r#"{"jsonrpc":"2.0","id":"a-1","result":{"content":[]}}"#).unwrap();
        assert_eq!(m.result(), Some(&json!({"content": []})));
        assert!(matches!(m, Message::Response { id: Id::String(ref s), .. } if s == "a-1"));
        let m =
            one(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#)
                .unwrap();
        assert_eq!(
            m,
            Message::Error {
                id: Id::Null,
                code: -32700
            }
        );
        // Error without id (allowed by MCP for 4xx bodies).
        let m = one(r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request"}}"#);
        assert_eq!(
            m,
            Some(Message::Error {
                id: Id::Null,
                code: -32000
            })
        );
    }

    #[test]
    fn rejects_non_jsonrpc() {
        for s in [
            r#"{"id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":2.0,"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"str"}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":"x"}}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"docs":[{"jsonrpc":"2.0","method":"tools/call"}]}"#,
            r#""jsonrpc""#,
            "[]",
            "",
            "<html>{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\"}</html>",
            r#"{"jsonrpc":"2.0","method":"x"} trailing"#,
        ] {
            assert_eq!(parse(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn bom_whitespace_and_escapes() {
        let s = "\u{feff} \r\n\t{ \"jsonrpc\" : \"2.0\" , \"method\" : \"tools\\/call\" }";
        assert_eq!(one(s).unwrap().method(), Some("tools/call"));
        let s = r#"{"\u006asonrpc":"2.\u0030","method":"\u0074ools/call","id":1}"#;
        let pf = Prefilter::new();
        assert!(pf.may_be_jsonrpc(s.as_bytes()));
        assert_eq!(one(s).unwrap().method(), Some("tools/call"));
        // Key order does not matter.
        let s = r#"{"params":{"name":"a"},"method":"tools/call","id":7,"jsonrpc":"2.0"}"#;
        assert_eq!(one(s).unwrap().params(), Some(&json!({"name":"a"})));
    }

    #[test]
    fn prefilter() {
        let pf = Prefilter::new();
        assert!(pf.may_be_jsonrpc(b"  {\"jsonrpc\":\"2.0\"}"));
        assert!(pf.may_be_jsonrpc(b"\xEF\xBB\xBF[{\"jsonrpc\":\"2.0\"}]"));
        assert!(!pf.may_be_jsonrpc(b"{\"model\":\"gpt-4o\",\"tools\":[]}"));
        assert!(!pf.may_be_jsonrpc(b"x{\"jsonrpc\":\"2.0\"}"));
        assert!(!pf.may_be_jsonrpc(b"<!doctype html> jsonrpc"));
        assert!(!pf.may_be_jsonrpc(b""));
        // Prefilter is sound: everything `parse` accepts passes it.
        for s in [
            r#"{"jsonrpc":"2.0","method":"a"}"#,
            r#"{"\u006Asonrpc":"2.0","method":"a"}"#,
            r#"[{"jsonrpc":"2.0","method":"a"}]"#,
        ] {
            assert!(parse(s.as_bytes()).is_some());
            assert!(pf.may_be_jsonrpc(s.as_bytes()));
        }
    }

    #[test]
    fn batches() {
        let s = r#"[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}},
                    {"jsonrpc":"2.0","method":"notifications/initialized"}]"#;
        let p = parse(s.as_bytes()).unwrap();
        assert!(p.batch && !p.truncated);
        assert_eq!(p.messages.len(), 2);
        // One bad entry spoils the batch.
        let s = r#"[{"jsonrpc":"2.0","method":"a"},{"title":"not rpc"}]"#;
        assert_eq!(parse(s.as_bytes()), None);
        // Oversized batch: capped, flagged.
        let msg = r#"{"jsonrpc":"2.0","method":"tools/list","id":1}"#;
        let big = format!("[{}]", vec![msg; 10_000].join(","));
        let p = parse(big.as_bytes()).unwrap();
        assert_eq!(p.messages.len(), MAX_BATCH_MESSAGES);
        assert!(p.truncated);
    }

    #[test]
    fn deep_nesting_and_size_caps() {
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"params\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(parse(deep.as_bytes()), None);
        let deep = "[".repeat(100_000);
        assert_eq!(parse(deep.as_bytes()), None);
        let pad = " ".repeat(MAX_PAYLOAD_BYTES);
        let big = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"a\",\"x\":\"{pad}\"}}");
        assert_eq!(parse(big.as_bytes()), None);
        assert!(!Prefilter::new().may_be_jsonrpc(big.as_bytes()));
    }

    #[test]
    fn truncation_at_every_offset_never_panics() {
        let s = br#"[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"mcp","version":"0.1.0"}}}]"#;
        for i in 0..s.len() {
            let cut = s.get(..i).unwrap_or_default();
            // Every strict prefix is incomplete JSON.
            assert_eq!(parse(cut), None, "prefix {i}");
        }
        assert!(parse(s).is_some());
    }
}
