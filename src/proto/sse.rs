//! Server-Sent Events (`text/event-stream`, WHATWG HTML §9.2): split a byte
//! stream into events (`event:`, `data:`, `id:` fields).
//!
//! Follows the "event stream interpretation" algorithm (HTML §9.2.6) with
//! these choices:
//!
//! * **Dispatch rule (deviation):** the spec dispatches only when the data
//!   buffer is non-empty. We also emit an event when only `event:` or `id:`
//!   was set, because MCP Streamable HTTP (2025-11-25) sends a "priming"
//!   event carrying an `id:` and empty data, and that is a useful signal.
//! * `SseEvent::id` is the `id:` seen *in this event*, not the spec's
//!   persistent "last event ID" buffer (which the sensor does not need).
//! * `event:` with an empty value is reported as `None` (the spec's default
//!   type "message").
//! * `retry:` and unknown fields are ignored.
//! * Bytes that are not UTF-8 are converted lossily (U+FFFD), per line; line
//!   terminators are ASCII so this equals decoding the whole stream.
//!
//! Memory: one event (its partially buffered line plus the stored data,
//! event and id) is bounded by `max_event_bytes`; a larger event is dropped,
//! counted in [`SseParser::dropped`], and the parser discards input up to
//! the next blank line. Comment lines (`:` first) are never buffered, so
//! keep-alives of any length cost nothing.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
    pub id: Option<String>,
}

/// UTF-8 byte order mark; HTML §9.2.6: "one leading U+FEFF BYTE ORDER MARK
/// character must be ignored if any are present".
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// What the parser knows about the line currently being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineState {
    /// No byte of the line seen yet (a terminator now means a blank line).
    Fresh,
    /// A field line; its bytes so far are in `line` (unless skipping).
    Field,
    /// A comment line (first byte `:`); its bytes are discarded.
    Comment,
}

#[derive(Debug)]
pub struct SseParser {
    max_event_bytes: usize,
    /// Bytes of the BOM matched so far at stream start; `None` once decided.
    bom_matched: Option<usize>,
    /// The previous feed ended with CR: a leading LF in the next one belongs
    /// to the same CRLF terminator.
    pending_cr: bool,
    line_state: LineState,
    /// Partial field line carried across feeds (bounded by `max_event_bytes`).
    line: Vec<u8>,
    /// The current event exceeded the bound: ignore lines up to a blank one.
    skipping: bool,
    event: Option<String>,
    data: String,
    /// At least one `data` field was seen (the spec's "data buffer non-empty",
    /// since each data line appends a LF there).
    data_set: bool,
    id: Option<String>,
    dropped: u64,
}

impl SseParser {
    /// `max_event_bytes` bounds one event; a longer one is dropped (counted by the caller via `dropped()`).
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            max_event_bytes,
            bom_matched: Some(0),
            pending_cr: false,
            line_state: LineState::Fresh,
            line: Vec::new(),
            skipping: false,
            event: None,
            data: String::new(),
            data_set: false,
            id: None,
            dropped: 0,
        }
    }

    pub fn max_event_bytes(&self) -> usize {
        self.max_event_bytes
    }

    /// Feed decoded body bytes; completed events are appended to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<SseEvent>) {
        let rest = self.strip_bom(data);
        self.scan(rest, out);
    }

    /// Events dropped because they exceeded the bound.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Heap bytes held for the event being assembled (for the engine's
    /// memory budget).
    pub fn held_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.line
            .capacity()
            .saturating_add(self.data.capacity())
            .saturating_add(opt(&self.event))
            .saturating_add(opt(&self.id))
    }

    /// Skip one leading BOM, which may itself be split across feeds.
    fn strip_bom<'a>(&mut self, mut data: &'a [u8]) -> &'a [u8] {
        while let Some(matched) = self.bom_matched {
            let (Some(&b), Some(&want)) = (data.first(), BOM.get(matched)) else {
                break;
            };
            if b == want {
                data = data.get(1..).unwrap_or_default();
                self.bom_matched = (matched + 1 < BOM.len()).then_some(matched + 1);
            } else {
                // Not a BOM after all: the held-back prefix is ordinary input.
                self.bom_matched = None;
                let held = BOM.get(..matched).unwrap_or_default();
                let mut sink = Vec::new();
                // A BOM prefix holds no line terminator, so nothing is emitted.
                self.scan(held, &mut sink);
            }
        }
        data
    }

    fn scan(&mut self, mut input: &[u8], out: &mut Vec<SseEvent>) {
        if self.pending_cr && !input.is_empty() {
            self.pending_cr = false;
            if input.first() == Some(&b'\n') {
                input = input.get(1..).unwrap_or_default();
            }
        }
        while !input.is_empty() {
            let Some(pos) = memchr::memchr2(b'\r', b'\n', input) else {
                self.partial(input);
                return;
            };
            let (line, rest) = input.split_at_checked(pos).unwrap_or((input, &[]));
            // Terminators (HTML §9.2.6): CRLF, LF, or CR alone.
            input = match rest {
                [b'\r', b'\n', tail @ ..] => tail,
                [b'\r'] => {
                    self.pending_cr = true;
                    &[]
                }
                [_, tail @ ..] => tail,
                [] => &[],
            };
            self.finish_line(line, out);
        }
    }

    /// Bytes of a line whose terminator has not arrived yet.
    fn partial(&mut self, chunk: &[u8]) {
        let Some(&first) = chunk.first() else { return };
        if self.line_state == LineState::Fresh {
            self.line_state = if first == b':' {
                LineState::Comment
            } else {
                LineState::Field
            };
        }
        if self.line_state != LineState::Field || self.skipping {
            return;
        }
        if self.over_bound(self.line.len().saturating_add(chunk.len())) {
            self.drop_event();
        } else {
            self.line.extend_from_slice(chunk);
        }
    }

    /// The last bytes of a line (possibly none) followed by its terminator.
    fn finish_line(&mut self, tail: &[u8], out: &mut Vec<SseEvent>) {
        let state = match (self.line_state, tail.first()) {
            (LineState::Fresh, None) => None,
            (LineState::Fresh, Some(b':')) => Some(LineState::Comment),
            (LineState::Fresh, Some(_)) => Some(LineState::Field),
            (s, _) => Some(s),
        };
        self.line_state = LineState::Fresh;
        match state {
            // Blank line: end of event (or of the oversized one being skipped).
            None => {
                if self.skipping {
                    self.skipping = false;
                } else {
                    self.dispatch(out);
                }
            }
            Some(LineState::Field) if !self.skipping => {
                if self.over_bound(self.line.len().saturating_add(tail.len())) {
                    self.drop_event();
                } else if self.line.is_empty() {
                    // Whole line in this feed: parse it in place.
                    self.field_line(tail);
                } else {
                    let mut line = std::mem::take(&mut self.line);
                    line.extend_from_slice(tail);
                    self.field_line(&line);
                    line.clear();
                    self.line = line;
                }
                if self.over_bound(0) {
                    self.drop_event();
                }
            }
            Some(_) => {}
        }
        self.line.clear();
    }

    /// Would `extra` more bytes push the current event past the bound?
    fn over_bound(&self, extra: usize) -> bool {
        let stored = self
            .data
            .len()
            .saturating_add(self.event.as_ref().map_or(0, String::len))
            .saturating_add(self.id.as_ref().map_or(0, String::len));
        stored.saturating_add(extra) > self.max_event_bytes
    }

    fn drop_event(&mut self) {
        self.dropped = self.dropped.saturating_add(1);
        self.skipping = true;
        self.reset_event();
        // Release the memory an oversized event held.
        self.line = Vec::new();
        self.data = String::new();
    }

    fn reset_event(&mut self) {
        self.event = None;
        self.data.clear();
        self.data_set = false;
        self.id = None;
    }

    /// HTML §9.2.6 "process the field".
    fn field_line(&mut self, line: &[u8]) {
        let (name, value) = match memchr::memchr(b':', line) {
            Some(pos) => {
                let (name, rest) = line.split_at_checked(pos).unwrap_or((line, &[]));
                let value = rest.get(1..).unwrap_or_default();
                // "If value starts with a U+0020 SPACE character, remove it."
                (name, value.strip_prefix(b" ").unwrap_or(value))
            }
            // No colon: the whole line is the field name, value empty.
            None => (line, &[][..]),
        };
        match name {
            b"event" => self.event = Some(lossy(value).into_owned()),
            b"data" => {
                if self.data_set {
                    self.data.push('\n');
                }
                self.data.push_str(&lossy(value));
                self.data_set = true;
            }
            // "If the field value does not contain U+0000 NULL, then set the
            // last event ID buffer to the field value."
            b"id" if !value.contains(&0) => self.id = Some(lossy(value).into_owned()),
            // `retry` (reconnection time) and unknown fields: ignored.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        // Deviation from the spec (see module docs): also dispatch without data.
        if self.data_set || self.event.is_some() || self.id.is_some() {
            out.push(SseEvent {
                event: self.event.take().filter(|e| !e.is_empty()),
                data: std::mem::take(&mut self.data),
                id: self.id.take(),
            });
        }
        self.reset_event();
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    // Valid UTF-8 (nearly every field) is checked by the faster validator;
    // only invalid input goes through the replacing conversion.
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8], max: usize) -> (Vec<SseEvent>, u64) {
        let mut p = SseParser::new(max);
        let mut out = Vec::new();
        p.feed(input, &mut out);
        (out, p.dropped())
    }

    fn parse_bytewise(input: &[u8], max: usize) -> (Vec<SseEvent>, u64) {
        let mut p = SseParser::new(max);
        let mut out = Vec::new();
        for b in input {
            p.feed(std::slice::from_ref(b), &mut out);
        }
        (out, p.dropped())
    }

    fn ev(event: Option<&str>, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn legacy_endpoint_event() {
        // First event of an MCP 2024-11-05 HTTP+SSE stream (python-sdk sse.py).
        let (out, dropped) = parse_all(
            b"event: endpoint\ndata: /messages/?session_id=abc\n\n",
            1024,
        );
        assert_eq!(
            out,
            vec![ev(Some("endpoint"), "/messages/?session_id=abc", None)]
        );
        assert_eq!(dropped, 0);
    }

    #[test]
    fn message_events_with_json() {
        let input = b"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\n\
                      id: 42\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\r\n\r\n";
        let (out, _) = parse_all(input, 4096);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].event.as_deref(), Some("message"));
        let v: serde_json::Value = serde_json::from_str(&out[0].data).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(
            out[1],
            ev(
                None,
                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}",
                Some("42")
            )
        );
    }

    #[test]
    fn multi_line_data_and_field_forms() {
        // Examples from HTML §9.2.6: "data" without colon is an empty line of
        // data; only one leading space is stripped; the last trailing LF goes.
        let (out, _) = parse_all(b"data:YHOO\ndata: +2\ndata\ndata:  10\n\n", 1024);
        assert_eq!(out, vec![ev(None, "YHOO\n+2\n\n 10", None)]);
        // Empty `data:` alone still dispatches, with empty data (spec: buffer is "\n").
        let (out, _) = parse_all(b"data\n\ndata:\n\n", 1024);
        assert_eq!(out, vec![ev(None, "", None), ev(None, "", None)]);
    }

    #[test]
    fn priming_event_without_data_is_emitted() {
        // 2025-11-25 Streamable HTTP priming event: id + empty data.
        let (out, _) = parse_all(b"id: 0\ndata:\n\nid: 7\n\nevent: x\n\n", 1024);
        assert_eq!(
            out,
            vec![
                ev(None, "", Some("0")),
                ev(None, "", Some("7")),
                ev(Some("x"), "", None),
            ]
        );
    }

    #[test]
    fn id_with_nul_ignored_and_unknown_fields() {
        let (out, _) = parse_all(b"id: a\0b\nretry: 1000\nfoo: bar\ndata: x\n\n", 1024);
        assert_eq!(out, vec![ev(None, "x", None)]);
        // Fields without any content never dispatch.
        let (out, _) = parse_all(b"retry: 10\nfoo\n\n\n\n", 1024);
        assert!(out.is_empty());
    }

    #[test]
    fn cr_lf_crlf_mixing() {
        let (out, _) = parse_all(b"data: a\rdata: b\ndata: c\r\n\rdata: d\n\r\n", 1024);
        assert_eq!(out, vec![ev(None, "a\nb\nc", None), ev(None, "d", None)]);
        // LF CR is two terminators, i.e. a blank line.
        let (out, _) = parse_all(b"data: a\n\rdata: b\r\r", 1024);
        assert_eq!(out, vec![ev(None, "a", None), ev(None, "b", None)]);
    }

    #[test]
    fn crlf_split_across_feeds_is_one_terminator() {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        p.feed(b"data: a\r", &mut out);
        p.feed(b"\ndata: b\r", &mut out);
        assert!(out.is_empty(), "no blank line yet");
        p.feed(b"\n\r", &mut out);
        p.feed(b"\n", &mut out);
        assert_eq!(out, vec![ev(None, "a\nb", None)]);
        // An empty feed between CR and LF must not break the pairing.
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        p.feed(b"data: a\r", &mut out);
        p.feed(b"", &mut out);
        p.feed(b"\n\n", &mut out);
        assert_eq!(out, vec![ev(None, "a", None)]);
    }

    #[test]
    fn comments_and_keepalives() {
        let input = b": ping\n\n:\n: ping - 2025-01-01\r\ndata: x\n: inside\ndata: y\n\n";
        let (out, _) = parse_all(input, 1024);
        assert_eq!(out, vec![ev(None, "x\ny", None)]);
        // A comment far larger than the bound is not an oversized event.
        let mut big = b": ".to_vec();
        big.extend(std::iter::repeat_n(b'p', 10_000));
        big.extend_from_slice(b"\ndata: ok\n\n");
        let (out, dropped) = parse_bytewise(&big, 64);
        assert_eq!(out, vec![ev(None, "ok", None)]);
        assert_eq!(dropped, 0);
    }

    #[test]
    fn oversized_event_dropped_next_parsed() {
        let mut input = b"event: message\ndata: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input
            .extend_from_slice(b"\ndata: more\nid: 9\n\nevent: endpoint\ndata: /m?sessionId=1\n\n");
        for (out, dropped) in [parse_all(&input, 256), parse_bytewise(&input, 256)] {
            assert_eq!(dropped, 1);
            assert_eq!(out, vec![ev(Some("endpoint"), "/m?sessionId=1", None)]);
        }
        // Many short data lines adding up past the bound also count.
        let mut input = Vec::new();
        for _ in 0..100 {
            input.extend_from_slice(b"data: 0123456789\n");
        }
        input.extend_from_slice(b"\ndata: next\n\n");
        let (out, dropped) = parse_all(&input, 512);
        assert_eq!(dropped, 1);
        assert_eq!(out, vec![ev(None, "next", None)]);
        // Exactly at the bound is kept: stored data "abcd" is 4 bytes and the
        // longest buffered line "data: abcd" is 10.
        let (out, dropped) = parse_all(b"data: abcd\n\n", 10);
        assert_eq!((out.len(), dropped), (1, 0));
        let (out, dropped) = parse_all(b"data: abcd\n\n", 9);
        assert_eq!((out.len(), dropped), (0, 1));
    }

    #[test]
    fn bom_skipped_once() {
        let input = b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n";
        for (out, _) in [parse_all(input, 1024), parse_bytewise(input, 1024)] {
            // The second BOM is part of a field name "\u{FEFF}data": ignored.
            assert_eq!(out, vec![ev(None, "a", None)]);
        }
        // Partial BOM prefix followed by other bytes is kept as data.
        let (out, _) = parse_bytewise(b"\xEFdata: z\n\ndata: y\n\n", 1024);
        assert_eq!(out, vec![ev(None, "y", None)]);
        let (out, _) = parse_all(b"\xEF\xBB: c\ndata: q\n\n", 1024);
        assert_eq!(out, vec![ev(None, "q", None)]);
        // A BOM followed by a comment.
        let (out, _) = parse_bytewise(b"\xEF\xBB\xBF: hi\ndata: w\n\n", 1024);
        assert_eq!(out, vec![ev(None, "w", None)]);
    }

    #[test]
    fn invalid_utf8_is_lossy() {
        let (out, _) = parse_all(b"event: e\xff\ndata: a\xc3\ndata: \xe2\x82\xac\n\n", 1024);
        assert_eq!(
            out,
            vec![ev(Some("e\u{FFFD}"), "a\u{FFFD}\n\u{20AC}", None)]
        );
    }

    #[test]
    fn any_split_equals_one_shot() {
        let input: &[u8] =
            b"\xEF\xBB\xBF: ping\r\nevent: endpoint\r\ndata: /messages/?session_id=abc\r\n\r\n\
            id: 1\rdata: {\"a\":\r\rdata: b\n\ndata: ";
        let long: Vec<u8> = [input, &[b'y'; 300], b"\n\ndata: tail\r\n\r"].concat();
        let (whole, dropped) = parse_all(&long, 128);
        assert_eq!(dropped, 1);
        assert_eq!(whole.len(), 4);
        assert_eq!(parse_bytewise(&long, 128), (whole.clone(), 1));
        // Every two-piece split.
        for cut in 0..=long.len() {
            let (a, b) = long.split_at(cut);
            let mut p = SseParser::new(128);
            let mut out = Vec::new();
            p.feed(a, &mut out);
            p.feed(b, &mut out);
            assert_eq!(out, whole, "split at {cut}");
            assert_eq!(p.dropped(), 1);
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        // Pseudo-random bytes biased towards the syntax characters.
        let alphabet = b"\r\n:data event id \xEF\xBB\xBF\0\xff";
        let mut state: u32 = 0x1234_5678;
        let mut input = Vec::new();
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            input.push(alphabet[(state as usize) % alphabet.len()]);
        }
        for max in [0, 1, 16, 4096] {
            let (a, da) = parse_all(&input, max);
            let (b, db) = parse_bytewise(&input, max);
            assert_eq!((a, da), (b, db));
        }
    }
}
