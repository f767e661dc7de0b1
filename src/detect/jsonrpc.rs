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
//! instead of a stack overflow. A message is read member by member: only
//! `params`, `result` and `error` become `Value` trees, transient and
//! proportional to the (capped) payload; other members are checked and
//! skipped.

use aho_corasick::AhoCorasick;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

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
    // recursion limit. The payload is read member by member: no map of
    // each message is built (see `Members`).
    match serde_json::from_slice::<Payload>(body).ok()? {
        Payload::Single(m) => Some(Parsed {
            messages: vec![m?],
            batch: false,
            truncated: false,
        }),
        Payload::Batch { messages, len } => {
            if len == 0 {
                return None;
            }
            Some(Parsed {
                messages: messages?,
                batch: true,
                truncated: len > MAX_BATCH_MESSAGES,
            })
        }
    }
}

/// A payload read straight into messages (see [`parse`]).
enum Payload {
    Single(Option<Message>),
    /// The first [`MAX_BATCH_MESSAGES`] entries (`None` if any of them is
    /// not a message) and the number of entries.
    Batch {
        messages: Option<Vec<Message>>,
        len: usize,
    },
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object or array")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Payload, A::Error> {
                Ok(Payload::Single(Members::read(map)?.message()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
                let mut messages = Some(Vec::new());
                let mut len = 0usize;
                while len < MAX_BATCH_MESSAGES && messages.is_some() {
                    let Some(m) = seq.next_element::<Members>()? else {
                        break;
                    };
                    len += 1;
                    match (m.message(), &mut messages) {
                        (Some(m), Some(v)) => v.push(m),
                        _ => messages = None,
                    }
                }
                // The rest (past the cap, or after an entry that spoils the
                // batch) is checked to be JSON, not read.
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    len = len.saturating_add(1);
                }
                Ok(Payload::Batch { messages, len })
            }
        }
        d.deserialize_any(V)
    }
}

/// The members of one JSON value that JSON-RPC reads. Of a repeated member
/// the last counts, as in a parse into a map; other members, and values that
/// are not objects, are checked to be JSON and skipped.
#[derive(Default)]
struct Members {
    object: bool,
    jsonrpc: Option<Value>,
    id: Option<Value>,
    method: Option<Value>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
}

impl Members {
    fn read<'de, A: MapAccess<'de>>(mut map: A) -> Result<Members, A::Error> {
        let mut m = Members {
            object: true,
            ..Members::default()
        };
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::Jsonrpc => &mut m.jsonrpc,
                Key::Id => &mut m.id,
                Key::Method => &mut m.method,
                Key::Params => &mut m.params,
                Key::Result => &mut m.result,
                Key::Error => &mut m.error,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            // A JSON `null` is kept as `Value::Null`: present, unlike absent.
            *slot = Some(map.next_value::<Value>()?);
        }
        Ok(m)
    }

    /// The JSON-RPC 2.0 message these members make. Anything else (not an
    /// object, missing or wrong `jsonrpc`, both `result` and `error`, a
    /// non-string method, params that are neither object nor array) is
    /// `None`.
    fn message(self) -> Option<Message> {
        if !self.object || self.jsonrpc.as_ref().and_then(Value::as_str) != Some("2.0") {
            return None;
        }
        let id = match self.id {
            Some(v) => Some(Id::from_value(v)?),
            None => None,
        };
        if let Some(method) = self.method {
            let Value::String(method) = method else {
                return None;
            };
            if self.result.is_some() || self.error.is_some() {
                return None;
            }
            let params = match self.params {
                None => None,
                Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
                Some(_) => return None,
            };
            return Some(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            });
        }
        match (self.result, self.error) {
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

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Members, A::Error> {
                Members::read(map)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Members, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Members::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Members, E> {
                Ok(Members::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Members, E> {
                Ok(Members::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Members, E> {
                Ok(Members::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Members, E> {
                Ok(Members::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<Members, E> {
                Ok(Members::default())
            }
            fn visit_unit<E>(self) -> Result<Members, E> {
                Ok(Members::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// A member name, matched without copying it.
enum Key {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "jsonrpc" => Key::Jsonrpc,
                    "id" => Key::Id,
                    "method" => Key::Method,
                    "params" => Key::Params,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
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

    /// The rules as first written, on a `Value` parsed whole.
    fn reference_message(v: Value) -> Option<Message> {
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
            let params = match obj.remove("params") {
                None => None,
                Some(p @ (Value::Object(_) | Value::Array(_))) => Some(p),
                Some(_) => return None,
            };
            return Some(match id {
                Some(id) => Message::Request { id, method, params },
                None => Message::Notification { method, params },
            });
        }
        match (obj.remove("result"), obj.remove("error")) {
            (Some(result), None) => Some(Message::Response { id: id?, result }),
            (None, Some(Value::Object(err))) => {
                let code = err.get("code").and_then(Value::as_i64)?;
                Some(Message::Error {
                    id: id.unwrap_or(Id::Null),
                    code,
                })
            }
            _ => None,
        }
    }

    /// The parse as first written: the whole payload into a `Value`, then
    /// the rules on each message. The reference for `parse`.
    fn reference_parse(payload: &[u8]) -> Option<Parsed> {
        let body = json_start(payload);
        if body.len() > MAX_PAYLOAD_BYTES || !matches!(body.first(), Some(b'{' | b'[')) {
            return None;
        }
        match serde_json::from_slice::<Value>(body).ok()? {
            Value::Array(items) if !items.is_empty() => {
                let truncated = items.len() > MAX_BATCH_MESSAGES;
                let messages = items
                    .into_iter()
                    .take(MAX_BATCH_MESSAGES)
                    .map(reference_message)
                    .collect::<Option<Vec<_>>>()?;
                Some(Parsed {
                    messages,
                    batch: true,
                    truncated,
                })
            }
            v @ Value::Object(_) => Some(Parsed {
                messages: vec![reference_message(v)?],
                batch: false,
                truncated: false,
            }),
            _ => None,
        }
    }

    /// Member names, each with the values worth trying for it (right and
    /// wrong types, `null`), so that valid messages are common.
    const MEMBERS: &[(&str, &[&str])] = &[
        (
            "jsonrpc",
            &[r#""2.0""#, r#""2.0""#, r#""1.0""#, "2.0", "null"],
        ),
        (r"\u006asonrpc", &[r#""2.0""#, "null"]),
        (
            "id",
            &[
                "1",
                r#""a""#,
                "null",
                "{}",
                "1.5",
                "18446744073709551615",
                "-3",
            ],
        ),
        ("method", &[r#""tools/call""#, "7", "null", r#""""#]),
        (r"meth\u006fd", &[r#""initialize""#, "null"]),
        (
            "params",
            &["{}", "[]", "null", r#""s""#, r#"{"a":[1,{"b":null}]}"#],
        ),
        (
            "result",
            &["{}", "null", "1", r#"{"jsonrpc":"2.0","method":"m"}"#],
        ),
        (
            "error",
            &[
                r#"{"code":-32000}"#,
                r#"{"code":"x"}"#,
                r#"{"code":1.5}"#,
                "null",
                "3",
                "{}",
            ],
        ),
        ("x", &["true", "[]", r#"{"id":2}"#]),
        ("", &["0"]),
    ];

    fn object(members: &[(usize, usize)]) -> String {
        let body: Vec<String> = members
            .iter()
            .map(|&(k, v)| {
                let (name, values) = MEMBERS[k % MEMBERS.len()];
                format!("\"{name}\":{}", values[v % values.len()])
            })
            .collect();
        format!("{{{}}}", body.join(","))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8192))]
        /// Objects and batches built from the members that matter (repeated,
        /// null, of the wrong type, with escaped names), scalars in batches,
        /// and cut or extended texts: `parse` gives exactly what the
        /// reference gives.
        #[test]
        fn parse_agrees_with_the_value_reference(
            items in proptest::collection::vec(
                proptest::collection::vec((0usize..10, 0usize..8), 0..6), 1..4),
            versioned in proptest::bool::weighted(0.8),
            batch in proptest::bool::ANY,
            scalar in proptest::option::of(proptest::sample::select(vec!["7", "null", r#""s""#, "[]"])),
            cut in proptest::option::of(0usize..200),
            tail in proptest::sample::select(vec!["", " ", "\n", "x", ",{}"]),
        ) {
            // Mostly with the version first, as real messages are.
            let objects: Vec<String> = items
                .iter()
                .map(|m| {
                    let mut m = m.clone();
                    if versioned {
                        m.insert(0, (0, 0));
                    }
                    object(&m)
                })
                .collect();
            let mut text = if batch {
                let mut entries = objects.clone();
                if let Some(v) = scalar {
                    entries.push(v.to_string());
                }
                format!("[{}]", entries.join(","))
            } else {
                objects[0].clone()
            };
            text.push_str(tail);
            if let Some(c) = cut {
                text.truncate(c.min(text.len()));
            }
            proptest::prop_assert_eq!(parse(text.as_bytes()), reference_parse(text.as_bytes()), "{}", text);
        }
    }

    #[test]
    fn batch_entries_past_the_cap_are_checked_as_json_only() {
        let msg = r#"{"jsonrpc":"2.0","method":"tools/list","id":1}"#;
        let mut entries = vec![msg; MAX_BATCH_MESSAGES + 6];
        entries[MAX_BATCH_MESSAGES + 2] = r#"{"not":"rpc"}"#;
        let text = format!("[{}]", entries.join(","));
        let p = parse(text.as_bytes()).expect("a batch");
        assert!(p.truncated);
        assert_eq!(p.messages.len(), MAX_BATCH_MESSAGES);
        assert_eq!(Some(p), reference_parse(text.as_bytes()));
        entries[MAX_BATCH_MESSAGES + 2] = r#"{"not":rpc}"#;
        let text = format!("[{}]", entries.join(","));
        assert_eq!(parse(text.as_bytes()), None);
        // One bad entry within the cap spoils the batch.
        entries[MAX_BATCH_MESSAGES + 2] = msg;
        entries[3] = "7";
        let text = format!("[{}]", entries.join(","));
        assert_eq!(parse(text.as_bytes()), None);
    }
}
