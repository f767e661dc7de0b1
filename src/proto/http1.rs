//! HTTP/1.0 and HTTP/1.1 message framing (RFC 9112), one parser per direction:
//! keep-alive and pipelining, Content-Length and chunked bodies, gzip/deflate
//! Content-Encoding within a size bound, header count and size limits, and the
//! switch to another protocol after `Upgrade`/`101` or `CONNECT`.
//!
//! The parser is incremental and passive: [`HttpStream::feed`] takes the
//! contiguous unconsumed bytes of one direction, consumes what it can and
//! emits [`HttpEvent`]s. A head is consumed only once complete; body bytes are
//! consumed as they arrive, so the caller never buffers more than one
//! incomplete head (≤ `max_head_bytes`) or one chunk-size/trailer line.
//!
//! Leniency choices (a sensor must follow real clients, but must not be
//! desynchronised by ambiguous framing):
//! - bare LF line endings are accepted everywhere (RFC 9112 §2.2);
//! - empty lines before a start line are skipped (RFC 9112 §2.2), on both sides;
//! - obs-fold continuation lines are joined to the previous value with one SP
//!   (RFC 9112 §5.2 allows this replacement);
//! - whitespace between a field name and the colon is rejected (`BadHeader`),
//!   as RFC 9112 §5.1 requires of servers: it is a known smuggling vector;
//! - `HTTP/1.x` with x > 1 is read as HTTP/1.1 (RFC 9110 §6.2);
//! - field values containing NUL or a bare CR are rejected (RFC 9110 §5.5).
//!
//! Body delivery: a `text/event-stream` body or a response read until close
//! is streamed as `StreamData` (nothing is kept); any other body is collected
//! into one `Body` of at most `max_body_bytes` de-chunked bytes (the rest is
//! consumed and dropped, `truncated = true`). `MessageEnd` closes every
//! message, bodiless ones included; a body of zero bytes gives no `Body`.
//!
//! Content-Encoding (and transfer codings before `chunked`): gzip/x-gzip,
//! deflate (zlib, or raw deflate when the zlib header is absent, as browsers
//! do) and identity, stacked up to [`MAX_CODINGS`], decoded in reverse order
//! of application. Decoded output is bounded by `max_decoded_bytes` (buffered
//! bodies) or by [`STREAM_MAX_RATIO`] (streams); the decompressor stops at the
//! bound, so a zip bomb costs at most that much work. A corrupt or incomplete
//! compressed body is delivered as far as it decoded, `truncated = true`. An
//! unknown coding (br, zstd, …) is not decoded: the body is delivered raw and
//! [`codings_supported`] on the `Head` tells the caller so.
//!
//! Errors: when `feed` hits malformed input after consuming part of `data`, it
//! returns `Ok(consumed)` and reports the error on the next call, so an `Err`
//! always refers to the bytes at offset 0 of `data`. The parser then stays
//! failed (every `feed` returns the same error, consuming nothing) until
//! [`HttpStream::on_gap`] is called; it then skips the rest of the offending
//! line and resynchronises on the next start line.

use smallvec::SmallVec;
use std::io::{self, Write};

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};

/// Pending request methods kept for pipelined responses (bounded FIFO).
pub const MAX_PENDING_REQUESTS: usize = 64;
/// Longest chunk-size line incl. chunk extensions (RFC 9112 §7.1.1 sets no
/// limit; extensions are ignored, so a generous bound suffices).
pub const MAX_CHUNK_LINE: usize = 4096;
/// Most Content-Encoding/Transfer-Encoding layers decoded; more are treated as
/// an unknown coding (no real sender stacks more than two).
pub const MAX_CODINGS: usize = 4;
/// For streamed bodies nothing is kept, so the decoded total is bounded by a
/// ratio instead of a fixed size: `max_decoded_bytes + ratio × compressed`.
/// Text compresses ~5–20×; deflate bombs reach ~1000× (RFC 1951 max ~1032:1).
pub const STREAM_MAX_RATIO: usize = 64;
/// Longest method accepted as plausible while resynchronising after a gap.
const MAX_RESYNC_METHOD: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Start line plus all header lines.
    pub max_head_bytes: usize,
    pub max_headers: usize,
    /// Bytes of (de-chunked) body kept per message; the rest is skipped.
    pub max_body_bytes: usize,
    /// Bytes after Content-Encoding decompression (a bound against zip bombs).
    pub max_decoded_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_head_bytes: 16 * 1024,
            max_headers: 128,
            max_body_bytes: 256 * 1024,
            max_decoded_bytes: 1024 * 1024,
        }
    }
}

/// A parsed message head. Its text (invalid UTF-8 replaced) is kept in one
/// buffer with the method, target and every field name and value as spans
/// of it: one allocation per head with up to three fields, two with more,
/// where a string per item cost five or more on every request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    text: String,
    method: Span,
    target: Span,
    /// Response status (0 for requests).
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// A response to a GET (the method given to
    /// `HttpStream::expect_response_to`; an unpaired response is not): its
    /// body is a document, not a message stream.
    pub answers_get: bool,
    /// Header fields in wire order: (name as sent, value trimmed); a few
    /// inline, so a small head is one heap block.
    fields: Fields,
    /// One bit per field name ([`name_bit`]): a look-up of a name whose bit
    /// is clear answers without comparing (most looked-up names are absent).
    names: u64,
}

/// The bit of a field name in `Head::names`: equal for names that are equal
/// ASCII case-insensitively (length and last byte with bit 5 set, which
/// lower-cases letters and maps other bytes the same way on both sides).
#[inline]
fn name_bit(name: &[u8]) -> u64 {
    let last = name.last().map_or(0, |&b| u32::from(b | 0x20));
    1 << (((name.len() as u32) << 3 ^ last) & 63)
}

/// Fields kept inside the head: a request of three or fewer (a GET from
/// curl, most probes) costs no second allocation, and no second block to
/// free when its connection ends.
const INLINE_FIELDS: usize = 3;
type Fields = SmallVec<[(Span, Span); INLINE_FIELDS]>;

/// A byte range of `Head::text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Head {
    fn get(&self, s: Span) -> &str {
        self.text
            .get(s.start as usize..s.end as usize)
            .unwrap_or_default()
    }

    fn span_from(&self, start: usize) -> Span {
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(self.text.len()).unwrap_or(u32::MAX),
        }
    }

    /// Append `bytes` (invalid UTF-8 replaced) and return their span.
    fn push_lossy(&mut self, bytes: &[u8]) -> Span {
        let start = self.text.len();
        // Valid UTF-8 (nearly always ASCII) is checked far faster than the
        // lossy conversion walks it.
        match std::str::from_utf8(bytes) {
            Ok(s) => self.text.push_str(s),
            Err(_) => self.text.push_str(&String::from_utf8_lossy(bytes)),
        }
        self.span_from(start)
    }

    /// Whether field name `n` is `name`, ASCII case-insensitively: lengths
    /// first, then bytes (no UTF-8 boundary checks).
    fn name_is(&self, n: Span, name: &str) -> bool {
        (n.end - n.start) as usize == name.len()
            && self
                .text
                .as_bytes()
                .get(n.start as usize..n.end as usize)
                .is_some_and(|b| b.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// Prefetch the headers of the head's heap blocks (text, and the fields
    /// when there are more than fit inline), which freeing it reads: a hint
    /// only.
    pub fn prefetch_blocks(&self) {
        if let Some(b) = self.text.as_bytes().first() {
            crate::prefetch::prefetch_block_header(b);
        }
        if self.fields.spilled()
            && let Some(f) = self.fields.first()
        {
            crate::prefetch::prefetch_block_header(f);
        }
    }

    /// Heap bytes the head holds (for the engine's memory budget).
    pub fn held_bytes(&self) -> usize {
        let fields = if self.fields.spilled() {
            self.fields.capacity() * std::mem::size_of::<(Span, Span)>()
        } else {
            0
        };
        self.text.capacity().saturating_add(fields)
    }

    /// Request method (empty for responses).
    pub fn method(&self) -> &str {
        self.get(self.method)
    }

    /// Request target as sent (empty for responses).
    pub fn target(&self) -> &str {
        self.get(self.target)
    }

    /// Set the request line's method and target.
    pub fn set_request_line(&mut self, method: &str, target: &str) {
        self.method = self.push_lossy(method.as_bytes());
        self.target = self.push_lossy(target.as_bytes());
    }

    /// Append a header field.
    pub fn push_header(&mut self, name: &str, value: &str) {
        let n = self.push_lossy(name.as_bytes());
        let v = self.push_lossy(value.as_bytes());
        self.names |= name_bit(self.get(n).as_bytes());
        self.fields.push((n, v));
    }

    /// Header fields in wire order: (name as sent, value trimmed).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields.iter().map(|&(n, v)| (self.get(n), self.get(v)))
    }

    /// First value of a header, name compared case-insensitively.
    #[inline]
    pub fn header(&self, name: &str) -> Option<&str> {
        if self.names & name_bit(name.as_bytes()) == 0 {
            return None;
        }
        self.fields
            .iter()
            .find(|&&(n, _)| self.name_is(n, name))
            .map(|&(_, v)| self.get(v))
    }

    /// All values of a header in wire order, name compared case-insensitively.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let candidates = if self.names & name_bit(name.as_bytes()) == 0 {
            &[][..]
        } else {
            &self.fields[..]
        };
        candidates
            .iter()
            .filter(move |&&(n, _)| self.name_is(n, name))
            .map(|&(_, v)| self.get(v))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    Head(Head),
    /// The whole body of a message with a known length (or chunked), de-chunked
    /// and decoded; `truncated` when it exceeded a limit.
    Body {
        data: Vec<u8>,
        truncated: bool,
    },
    /// Part of a streamed body (`text/event-stream`, or read-until-close),
    /// de-chunked and decoded, delivered as it arrives.
    StreamData(Vec<u8>),
    MessageEnd,
    /// The connection left HTTP (Upgrade/101, CONNECT): stop feeding this parser.
    Upgraded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    HeadTooLarge,
    TooManyHeaders,
    BadStartLine,
    BadHeader,
    BadContentLength,
    BadChunk,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::HeadTooLarge => "HTTP head exceeds the size limit",
            Self::TooManyHeaders => "too many HTTP header fields",
            Self::BadStartLine => "malformed HTTP start line",
            Self::BadHeader => "malformed HTTP header field",
            Self::BadContentLength => "invalid or conflicting Content-Length",
            Self::BadChunk => "malformed chunked body",
        };
        f.write_str(s)
    }
}

impl std::error::Error for HttpError {}

/// [`HttpLimits`] as each parser keeps them: both directions of every
/// inspected connection hold a copy, so the fields are 32-bit (a limit above
/// 4 GiB acts as 4 GiB).
#[derive(Debug, Clone, Copy)]
struct Limits {
    head: u32,
    headers: u32,
    body: u32,
    decoded: u32,
}

impl Limits {
    fn new(l: HttpLimits) -> Self {
        let narrow = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        Self {
            head: narrow(l.max_head_bytes),
            headers: narrow(l.max_headers),
            body: narrow(l.max_body_bytes),
            decoded: narrow(l.max_decoded_bytes),
        }
    }

    fn max_head_bytes(self) -> usize {
        self.head as usize
    }

    fn max_headers(self) -> usize {
        self.headers as usize
    }

    fn max_body_bytes(self) -> usize {
        self.body as usize
    }

    fn max_decoded_bytes(self) -> usize {
        self.decoded as usize
    }
}

/// Counters for telemetry, per parser (saturating; 32-bit, since every
/// inspected connection carries two sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HttpStats {
    /// Message heads parsed.
    pub messages: u32,
    /// Bodies delivered with `truncated = true`, or streams cut by the ratio bound.
    pub truncated_bodies: u32,
    /// Bodies delivered raw because a coding was unknown (see [`codings_supported`]).
    pub undecoded_bodies: u32,
    /// `expect_response_to` calls dropped because the FIFO was full.
    pub pipeline_overflows: u32,
    /// Bytes discarded while resynchronising after a gap or an error.
    pub resync_skipped_bytes: u32,
}

/// FIFO of the kinds of requests awaiting a response, two bits each in one
/// integer: no allocation per connection (a queue on the heap was freed
/// with every connection, usually long after it was last touched).
#[derive(Debug, Default, Clone, Copy)]
struct PendingKinds {
    /// 128 bits as bytes: a `u128` field would align the stream (and the
    /// engine's per-connection state around it) to 16 bytes, and words to 8,
    /// padding it.
    bits: [u8; 16],
    len: u8,
}

const _: () = assert!(MAX_PENDING_REQUESTS * 2 <= 128);

impl PendingKinds {
    fn bits(&self) -> u128 {
        u128::from_le_bytes(self.bits)
    }

    fn set_bits(&mut self, b: u128) {
        self.bits = b.to_le_bytes();
    }

    fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Ignored when full (the caller checks and counts that first).
    fn push_back(&mut self, kind: ReqKind) {
        if self.len() >= MAX_PENDING_REQUESTS {
            return;
        }
        let code: u128 = match kind {
            ReqKind::Head => 0,
            ReqKind::Connect => 1,
            ReqKind::Other => 2,
            ReqKind::Get => 3,
        };
        self.set_bits(self.bits() | code << (2 * u32::from(self.len)));
        self.len += 1;
    }

    fn pop_front(&mut self) -> Option<ReqKind> {
        if self.len == 0 {
            return None;
        }
        let code = self.bits() & 3;
        self.set_bits(self.bits() >> 2);
        self.len -= 1;
        Some(match code {
            0 => ReqKind::Head,
            1 => ReqKind::Connect,
            2 => ReqKind::Other,
            _ => ReqKind::Get,
        })
    }
}

/// An idle parser's state: the requests awaiting a response (see
/// [`HttpStream::idle`]).
#[derive(Debug, Clone, Copy)]
pub struct HttpIdle {
    pending: PendingKinds,
}

/// How the response to a pending request must be framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqKind {
    Head,
    Connect,
    /// GET: framed like `Other`; its response body is a document, not a
    /// message stream (see [`Head::answers_get`]).
    Get,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a start line and header section.
    Head,
    /// Content-Length body, bytes still to come.
    Fixed {
        remaining: u64,
    },
    ChunkSize,
    ChunkData {
        remaining: u64,
    },
    /// CRLF after chunk data.
    ChunkEnd,
    /// Trailer section; `seen` bytes so far (bounded by `max_head_bytes`).
    Trailers {
        seen: usize,
    },
    /// Response body delimited by the end of the connection (RFC 9112 §6.3 item 8).
    UntilClose,
    Upgraded,
    /// Discarding bytes until a start line; `at_line_start` says whether
    /// offset 0 of the next `data` begins a line.
    Resync {
        at_line_start: bool,
    },
    Failed(HttpError),
}

/// Per-message body state.
#[derive(Debug, Default)]
struct BodyState {
    /// Deliver as `StreamData` rather than one `Body`.
    stream: bool,
    /// Emit `Upgraded` after `MessageEnd`.
    upgrade_after: bool,
    /// De-chunked body bytes received so far.
    raw_seen: usize,
    /// Buffered (decoded) body, bounded by `max_body_bytes`/`max_decoded_bytes`.
    kept: Vec<u8>,
    truncated: bool,
    decoder: Option<Box<Decoder>>,
}

/// One direction of an HTTP/1 connection.
#[derive(Debug)]
pub struct HttpStream {
    side: Side,
    limits: Limits,
    state: State,
    /// Offset of the first incomplete head line in `data` (avoids rescanning
    /// a growing head on every call; relies on the caller's append contract).
    head_scan: u32,
    body: BodyState,
    /// Methods of requests awaiting a response (≤ `MAX_PENDING_REQUESTS`).
    pending: PendingKinds,
    stats: HttpStats,
}

/// Result of one state step inside `feed`.
enum Step {
    /// Consumed this many bytes (possibly 0 with a state change); go on.
    Advance(usize),
    /// Need more data.
    Wait,
}

impl HttpStream {
    pub fn new(side: Side, limits: HttpLimits) -> Self {
        Self {
            side,
            limits: Limits::new(limits),
            state: State::Head,
            head_scan: 0,
            body: BodyState::default(),
            pending: PendingKinds::default(),
            stats: HttpStats::default(),
        }
    }

    pub fn side(&self) -> Side {
        self.side
    }

    pub fn limits(&self) -> HttpLimits {
        let l = self.limits;
        HttpLimits {
            max_head_bytes: l.max_head_bytes(),
            max_headers: l.max_headers(),
            max_body_bytes: l.max_body_bytes(),
            max_decoded_bytes: l.max_decoded_bytes(),
        }
    }

    pub fn stats(&self) -> HttpStats {
        self.stats
    }

    /// Heap bytes this parser holds for the current message (body kept for
    /// classification, a content decoder), for the engine's memory budget.
    pub fn held_bytes(&self) -> usize {
        let decoder = if self.body.decoder.is_some() {
            crate::proto::DECODER_BYTES
        } else {
            0
        };
        self.body.kept.capacity().saturating_add(decoder)
    }

    /// The error the parser is stuck on (see the module doc), if any. Since
    /// an error met after some progress is reported by the *next* `feed`, a
    /// caller can check this instead of waiting for more data.
    pub fn error(&self) -> Option<HttpError> {
        match self.state {
            State::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// True once `Upgraded` was emitted (the parser consumes nothing more).
    pub fn is_upgraded(&self) -> bool {
        self.state == State::Upgraded
    }

    /// Undo an `Upgraded` on the request side when the peer refused the
    /// upgrade (the response was not `101`, or not 2xx to `CONNECT`): the
    /// connection stays HTTP and parsing resumes at the next request.
    pub fn cancel_upgrade(&mut self) {
        if self.state == State::Upgraded {
            self.state = State::Head;
            self.head_scan = 0;
        }
    }

    /// What the parser holds between two messages, when that is all it holds
    /// (no partial head, no body, no error, no upgrade): a parser made by
    /// [`HttpStream::resume`] from it parses what follows as this one would.
    /// Lets a caller release an idle connection's parsers.
    pub fn idle(&self) -> Option<HttpIdle> {
        (self.state == State::Head && self.head_scan == 0).then_some(HttpIdle {
            pending: self.pending,
        })
    }

    /// A parser between messages, as [`HttpStream::idle`] described one
    /// (its telemetry counters start again from zero).
    pub fn resume(side: Side, limits: HttpLimits, idle: HttpIdle) -> Self {
        Self {
            pending: idle.pending,
            ..Self::new(side, limits)
        }
    }

    /// Feed contiguous stream bytes. Returns how many bytes were consumed; the
    /// caller keeps the rest and calls again with more data appended.
    ///
    /// Parses as many messages as `data` holds. An error met after some
    /// progress is returned by the next call (see [`HttpStream::error`]).
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<HttpEvent>) -> Result<usize, HttpError> {
        let out_start = out.len();
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            let step = match self.state {
                State::Failed(e) => return if pos == 0 { Err(e) } else { Ok(pos) },
                State::Upgraded => return Ok(pos),
                State::Resync { at_line_start } => self.step_resync(rest, at_line_start),
                State::Head => self.step_head(rest, out),
                State::Fixed { remaining } => self.step_fixed(rest, remaining, out, out_start),
                State::ChunkSize => self.step_chunk_size(rest),
                State::ChunkData { remaining } => {
                    self.step_chunk_data(rest, remaining, out, out_start)
                }
                State::ChunkEnd => self.step_chunk_end(rest),
                State::Trailers { seen } => self.step_trailers(rest, seen, out, out_start),
                State::UntilClose => {
                    if rest.is_empty() {
                        Ok(Step::Wait)
                    } else {
                        self.body_bytes(rest, out, out_start);
                        Ok(Step::Advance(rest.len()))
                    }
                }
            };
            match step {
                Ok(Step::Advance(n)) => pos = pos.saturating_add(n),
                Ok(Step::Wait) => return Ok(pos),
                Err(e) => {
                    self.state = State::Failed(e);
                    self.body = BodyState::default();
                    self.head_scan = 0;
                    return if pos == 0 { Err(e) } else { Ok(pos) };
                }
            }
        }
    }

    /// Response parsers only: the method of the next request in pipeline order
    /// (HEAD responses have no body; a 2xx to CONNECT is a tunnel).
    ///
    /// The FIFO holds at most [`MAX_PENDING_REQUESTS`]; when full, the newest
    /// method is dropped (counted in `pipeline_overflows`) so that the older
    /// responses stay paired correctly; the unmatched ones assume GET.
    pub fn expect_response_to(&mut self, method: &str) {
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            self.stats.pipeline_overflows = self.stats.pipeline_overflows.saturating_add(1);
            return;
        }
        let kind = if method.eq_ignore_ascii_case("HEAD") {
            ReqKind::Head
        } else if method.eq_ignore_ascii_case("CONNECT") {
            ReqKind::Connect
        } else if method.eq_ignore_ascii_case("GET") {
            ReqKind::Get
        } else {
            ReqKind::Other
        };
        self.pending.push_back(kind);
    }

    /// A hole in the TCP stream: drop partial state and resynchronise on the
    /// next message start.
    ///
    /// Offset 0 of the next `data` counts as a line start (a segment often
    /// begins with a new message), except after an error, where the line at
    /// offset 0 is the offending one and is skipped. A tunnel stays a tunnel.
    /// The pipelining FIFO is kept: responses lost in the gap cannot be known.
    pub fn on_gap(&mut self) {
        self.body = BodyState::default();
        self.head_scan = 0;
        self.state = match self.state {
            State::Upgraded => State::Upgraded,
            State::Failed(_) => State::Resync {
                at_line_start: false,
            },
            _ => State::Resync {
                at_line_start: true,
            },
        };
    }

    /// End of stream: finish a read-until-close body.
    ///
    /// A message cut short by the close (Content-Length or chunked) is also
    /// delivered: a buffered body as `Body { truncated: true }`, then
    /// `MessageEnd`; a streamed one just ends.
    pub fn on_close(&mut self, out: &mut Vec<HttpEvent>) {
        match self.state {
            State::UntilClose => self.finish_message(out, out.len()),
            State::Fixed { .. }
            | State::ChunkSize
            | State::ChunkData { .. }
            | State::ChunkEnd
            | State::Trailers { .. } => {
                if !self.body.stream {
                    self.body.truncated = true;
                    // Deliver even an empty body: the truncation is the news.
                    self.body.raw_seen = self.body.raw_seen.max(1);
                }
                self.finish_message(out, out.len());
            }
            _ => {}
        }
        if self.state != State::Upgraded {
            self.state = State::Head;
        }
        self.head_scan = 0;
    }

    fn step_resync(&mut self, rest: &[u8], at_line_start: bool) -> Result<Step, HttpError> {
        let mut cand = if at_line_start {
            0
        } else {
            match memchr::memchr(b'\n', rest) {
                Some(nl) => nl.saturating_add(1),
                None => {
                    self.skipped(rest.len());
                    return Ok(if rest.is_empty() {
                        Step::Wait
                    } else {
                        Step::Advance(rest.len())
                    });
                }
            }
        };
        loop {
            let line_rest = rest.get(cand..).unwrap_or_default();
            match memchr::memchr(b'\n', line_rest) {
                Some(nl) => {
                    let line = strip_cr(line_rest.get(..nl).unwrap_or_default());
                    let ok = match self.side {
                        Side::Request => parse_request_line(line).is_ok(),
                        Side::Response => parse_status_line(line).is_ok(),
                    };
                    if ok {
                        self.skipped(cand);
                        self.state = State::Head;
                        self.head_scan = 0;
                        return Ok(Step::Advance(cand));
                    }
                    cand = cand.saturating_add(nl).saturating_add(1);
                }
                None => {
                    // Incomplete last line: keep it if it may still become a
                    // start line, otherwise drop it with everything before.
                    let keep = line_rest.len() <= self.limits.max_head_bytes()
                        && plausible_start(self.side, line_rest);
                    let skip = if keep { cand } else { rest.len() };
                    self.skipped(skip);
                    self.state = State::Resync {
                        at_line_start: keep || (skip == 0 && at_line_start),
                    };
                    return Ok(if skip == 0 {
                        Step::Wait
                    } else {
                        Step::Advance(skip)
                    });
                }
            }
        }
    }

    fn skipped(&mut self, n: usize) {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.stats.resync_skipped_bytes = self.stats.resync_skipped_bytes.saturating_add(n);
    }

    fn step_head(&mut self, rest: &[u8], out: &mut Vec<HttpEvent>) -> Result<Step, HttpError> {
        // RFC 9112 §2.2: ignore empty lines received before a start line.
        if self.head_scan == 0 {
            if rest.starts_with(b"\n") {
                return Ok(Step::Advance(1));
            }
            if rest.starts_with(b"\r\n") {
                return Ok(Step::Advance(2));
            }
            if rest == b"\r" {
                return Ok(Step::Wait);
            }
        }
        let max = self.limits.max_head_bytes();
        // Only look at max+1 bytes: a longer head is rejected anyway.
        let window = rest
            .get(..rest.len().min(max.saturating_add(1)))
            .unwrap_or(rest);
        let mut line_start = (self.head_scan as usize).min(window.len());
        // One iterator over the newlines (not a search per line): the head
        // ends at the first empty line after the start line.
        let base = line_start;
        let scan = window.get(base..).unwrap_or_default();
        let mut end = None;
        for off in newlines(scan) {
            let nl = base.saturating_add(off);
            let line = window.get(line_start..nl).unwrap_or_default();
            if line_start > 0 && strip_cr(line).is_empty() {
                end = Some(nl.saturating_add(1));
                break;
            }
            line_start = nl.saturating_add(1);
        }
        let Some(end) = end else {
            if rest.len() > max {
                return Err(HttpError::HeadTooLarge);
            }
            // `line_start` is within the head limit's window: it fits.
            self.head_scan = u32::try_from(line_start).unwrap_or(u32::MAX);
            return Ok(Step::Wait);
        };
        if end > max {
            return Err(HttpError::HeadTooLarge);
        }
        self.head_scan = 0;
        let raw = window.get(..end).unwrap_or_default();
        let head = parse_head(raw, self.side, self.limits.max_headers())?;
        self.start_message(head, out)?;
        Ok(Step::Advance(end))
    }

    /// Decide the framing of a parsed head (RFC 9112 §6.3), emit `Head` and
    /// set up the body state. Errors are raised before anything is emitted.
    fn start_message(&mut self, mut head: Head, out: &mut Vec<HttpEvent>) -> Result<(), HttpError> {
        let te = transfer_encoding(&head);
        let mut upgrade_after = false;
        let mut bodiless = false;
        let mut interim = false;
        match self.side {
            Side::Request => {
                let connect = head.method().eq_ignore_ascii_case("CONNECT");
                // RFC 9110 §7.8: Upgrade is ignored in HTTP/1.0 requests.
                upgrade_after = connect || (head.minor_version >= 1 && wants_upgrade(&head));
                if te.present && !te.chunked {
                    // RFC 9112 §6.3 item 4: the length cannot be determined.
                    return Err(HttpError::BadHeader);
                }
            }
            Side::Response => {
                let status = head.status;
                // 1xx other than 101 are interim: the final response that
                // follows answers the same request (RFC 9110 §15.2).
                interim = (100..200).contains(&status) && status != 101;
                let kind = if interim {
                    ReqKind::Other
                } else {
                    self.pending.pop_front().unwrap_or(ReqKind::Other)
                };
                head.answers_get = kind == ReqKind::Get;
                if status == 101 || (kind == ReqKind::Connect && (200..300).contains(&status)) {
                    upgrade_after = true;
                    bodiless = true;
                }
                if interim || status == 204 || status == 304 || kind == ReqKind::Head {
                    bodiless = true;
                }
            }
        }
        let mut next = State::Head;
        if !bodiless && !interim {
            if te.present {
                next = if te.chunked {
                    State::ChunkSize
                } else {
                    State::UntilClose
                };
            } else if let Some(len) = content_length(&head)? {
                if len > 0 {
                    next = State::Fixed { remaining: len };
                }
            } else if self.side == Side::Response {
                next = State::UntilClose;
            }
        }
        let mut body = BodyState {
            upgrade_after,
            ..BodyState::default()
        };
        if next != State::Head {
            body.stream = next == State::UntilClose || is_event_stream(&head);
            let mut chain: Vec<Coding> = Vec::new();
            let known = collect_codings(head.header_values("content-encoding"), &mut chain)
                && te.known
                && chain.len() + te.codings.len() <= MAX_CODINGS;
            if known {
                chain.extend_from_slice(&te.codings);
                if !chain.is_empty() {
                    body.decoder = Some(Box::new(Decoder::new(&chain)));
                }
            } else {
                self.stats.undecoded_bodies = self.stats.undecoded_bodies.saturating_add(1);
            }
            if let State::Fixed { remaining } = next
                && !body.stream
            {
                // A hostile Content-Length must not reserve memory up front.
                let hint = usize::try_from(remaining).unwrap_or(usize::MAX);
                body.kept
                    .reserve(hint.min(self.limits.max_body_bytes()).min(64 * 1024));
            }
        }
        self.stats.messages = self.stats.messages.saturating_add(1);
        out.push(HttpEvent::Head(head));
        self.body = body;
        if next == State::Head {
            self.finish_message(out, out.len());
        } else {
            self.state = next;
        }
        Ok(())
    }

    /// Body bytes coming next that this parser would drop unseen: a body
    /// that is not streamed, past `max_body_bytes`, in a Content-Length body
    /// or a chunk. The message's (or chunk's) last byte is never counted, so
    /// that it ends the usual way. A caller that has these bytes in a costly
    /// form (TLS records not yet decrypted) may drop up to this many and
    /// report them with [`HttpStream::skip_body`].
    pub fn discardable(&self) -> u64 {
        let remaining = match self.state {
            State::Fixed { remaining } | State::ChunkData { remaining } => remaining,
            _ => return 0,
        };
        let b = &self.body;
        if b.stream || b.raw_seen < self.limits.max_body_bytes() {
            return 0;
        }
        remaining.saturating_sub(1)
    }

    /// `n` body bytes (at most [`HttpStream::discardable`]) went by unseen.
    pub fn skip_body(&mut self, n: u64) {
        let n = n.min(self.discardable());
        match &mut self.state {
            State::Fixed { remaining } | State::ChunkData { remaining } => {
                *remaining = remaining.saturating_sub(n);
            }
            _ => return,
        }
        let b = &mut self.body;
        b.raw_seen = b
            .raw_seen
            .saturating_add(usize::try_from(n).unwrap_or(usize::MAX));
        b.truncated = true;
    }

    /// Deliver up to `remaining` body bytes from `rest`; returns how many were
    /// taken and how many the message (or chunk) still owes.
    fn take_body(
        &mut self,
        rest: &[u8],
        remaining: u64,
        out: &mut Vec<HttpEvent>,
        out_start: usize,
    ) -> (usize, u64) {
        let n = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        self.body_bytes(rest.get(..n).unwrap_or_default(), out, out_start);
        (n, remaining.saturating_sub(n as u64))
    }

    fn step_fixed(
        &mut self,
        rest: &[u8],
        remaining: u64,
        out: &mut Vec<HttpEvent>,
        out_start: usize,
    ) -> Result<Step, HttpError> {
        if rest.is_empty() {
            return Ok(Step::Wait);
        }
        let (n, left) = self.take_body(rest, remaining, out, out_start);
        if left == 0 {
            self.finish_message(out, out_start);
        } else {
            self.state = State::Fixed { remaining: left };
        }
        Ok(Step::Advance(n))
    }

    fn step_chunk_data(
        &mut self,
        rest: &[u8],
        remaining: u64,
        out: &mut Vec<HttpEvent>,
        out_start: usize,
    ) -> Result<Step, HttpError> {
        if rest.is_empty() {
            return Ok(Step::Wait);
        }
        let (n, left) = self.take_body(rest, remaining, out, out_start);
        self.state = if left == 0 {
            State::ChunkEnd
        } else {
            State::ChunkData { remaining: left }
        };
        Ok(Step::Advance(n))
    }

    fn step_chunk_size(&mut self, rest: &[u8]) -> Result<Step, HttpError> {
        let window = rest
            .get(..rest.len().min(MAX_CHUNK_LINE.saturating_add(1)))
            .unwrap_or(rest);
        let Some(nl) = memchr::memchr(b'\n', window) else {
            return if rest.len() > MAX_CHUNK_LINE {
                Err(HttpError::BadChunk)
            } else {
                Ok(Step::Wait)
            };
        };
        let line = strip_cr(window.get(..nl).unwrap_or_default());
        let size = parse_chunk_size(line).ok_or(HttpError::BadChunk)?;
        self.state = if size == 0 {
            State::Trailers { seen: 0 }
        } else {
            State::ChunkData { remaining: size }
        };
        Ok(Step::Advance(nl.saturating_add(1)))
    }

    fn step_chunk_end(&mut self, rest: &[u8]) -> Result<Step, HttpError> {
        let n = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") {
            1
        } else if rest.is_empty() || rest == b"\r" {
            return Ok(Step::Wait);
        } else {
            return Err(HttpError::BadChunk);
        };
        self.state = State::ChunkSize;
        Ok(Step::Advance(n))
    }

    fn step_trailers(
        &mut self,
        rest: &[u8],
        seen: usize,
        out: &mut Vec<HttpEvent>,
        out_start: usize,
    ) -> Result<Step, HttpError> {
        // Trailer fields are skipped; their section is bounded like a head.
        let max = self.limits.max_head_bytes();
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            return if seen.saturating_add(rest.len()) > max {
                Err(HttpError::BadChunk)
            } else {
                Ok(Step::Wait)
            };
        };
        let line = strip_cr(rest.get(..nl).unwrap_or_default());
        let used = nl.saturating_add(1);
        if line.is_empty() {
            self.finish_message(out, out_start);
        } else {
            let seen = seen.saturating_add(used);
            if seen > max {
                return Err(HttpError::BadChunk);
            }
            self.state = State::Trailers { seen };
        }
        Ok(Step::Advance(used))
    }

    /// De-chunked body bytes: decode, then buffer or stream them.
    fn body_bytes(&mut self, bytes: &[u8], out: &mut Vec<HttpEvent>, out_start: usize) {
        let limits = self.limits;
        let b = &mut self.body;
        b.raw_seen = b.raw_seen.saturating_add(bytes.len());
        if b.stream {
            let mut decoded = Vec::new();
            let data: &[u8] = match b.decoder.as_mut() {
                Some(dec) => {
                    let budget = limits
                        .max_decoded_bytes()
                        .saturating_add(b.raw_seen.saturating_mul(STREAM_MAX_RATIO));
                    if !dec.push(bytes, budget, &mut decoded) && !b.truncated {
                        b.truncated = true;
                        self.stats.truncated_bodies = self.stats.truncated_bodies.saturating_add(1);
                    }
                    &decoded
                }
                None => bytes,
            };
            push_stream(out, out_start, data);
            return;
        }
        let room = limits
            .max_body_bytes()
            .saturating_sub(b.raw_seen.saturating_sub(bytes.len()));
        let take = bytes.get(..bytes.len().min(room)).unwrap_or_default();
        if take.len() < bytes.len() {
            b.truncated = true;
        }
        if take.is_empty() {
            return;
        }
        match b.decoder.as_mut() {
            Some(dec) => {
                if !dec.push(take, limits.max_decoded_bytes(), &mut b.kept) {
                    b.truncated = true;
                }
            }
            None => b.kept.extend_from_slice(take),
        }
    }

    /// Emit the end of the current message and pick the next state.
    fn finish_message(&mut self, out: &mut Vec<HttpEvent>, out_start: usize) {
        let mut body = std::mem::take(&mut self.body);
        if let Some(dec) = body.decoder.as_mut() {
            // End of the compressed data: flush the last output and check that
            // each stream was complete (gzip also checks its CRC-32).
            if body.stream {
                let budget = self
                    .limits
                    .max_decoded_bytes()
                    .saturating_add(body.raw_seen.saturating_mul(STREAM_MAX_RATIO));
                let mut tail = Vec::new();
                if !dec.finish(budget, &mut tail) && !body.truncated {
                    body.truncated = true;
                    self.stats.truncated_bodies = self.stats.truncated_bodies.saturating_add(1);
                }
                push_stream(out, out_start, &tail);
            } else if !dec.finish(self.limits.max_decoded_bytes(), &mut body.kept) {
                body.truncated = true;
            }
        }
        if !body.stream && body.raw_seen > 0 {
            if body.truncated {
                self.stats.truncated_bodies = self.stats.truncated_bodies.saturating_add(1);
            }
            out.push(HttpEvent::Body {
                data: body.kept,
                truncated: body.truncated,
            });
        }
        out.push(HttpEvent::MessageEnd);
        if body.upgrade_after {
            out.push(HttpEvent::Upgraded);
            self.state = State::Upgraded;
        } else {
            self.state = State::Head;
        }
    }
}

/// Append streamed bytes, merging with a `StreamData` emitted earlier in the
/// same `feed` call (one event per call and message, not one per chunk).
fn push_stream(out: &mut Vec<HttpEvent>, out_start: usize, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if out.len() > out_start
        && let Some(HttpEvent::StreamData(prev)) = out.last_mut()
    {
        prev.extend_from_slice(data);
        return;
    }
    out.push(HttpEvent::StreamData(data.to_vec()));
}

/// Cheap probe on the first client bytes: an HTTP method token followed by a space.
pub fn looks_like_request(stream: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    METHODS.iter().any(|m| {
        stream.len() >= m.len() && stream.starts_with(m)
            || m.starts_with(stream) && !stream.is_empty()
    })
}

/// True when every Content-Encoding and Transfer-Encoding coding of `head` is
/// one this parser decodes (gzip, x-gzip, deflate, identity, chunked) within
/// [`MAX_CODINGS`]. Otherwise the body is delivered raw, still encoded.
pub fn codings_supported(head: &Head) -> bool {
    let te = transfer_encoding(head);
    let mut chain = Vec::new();
    collect_codings(head.header_values("content-encoding"), &mut chain)
        && te.known
        && chain.len() + te.codings.len() <= MAX_CODINGS
}

/// What [`ContentDecoder::for_head`] found in a head's Content-Encoding.
#[derive(Debug)]
pub enum ContentCoding {
    /// No coding, or only `identity`: the body is used as is.
    Identity,
    /// gzip/deflate layers this decoder undoes.
    Decode(ContentDecoder),
    /// A coding this module does not decode (br, zstd, ...), or more than
    /// [`MAX_CODINGS`]: the body can only be delivered raw.
    Unsupported,
}

/// The Content-Encoding decoder of HTTP/1 bodies for bodies framed by
/// another protocol (HTTP/2 DATA frames): the same codings, the same
/// zlib/raw deflate sniffing, the same output bounds. Transfer-Encoding is
/// not consulted (HTTP/2 has none).
#[derive(Debug)]
pub struct ContentDecoder(Decoder);

impl ContentDecoder {
    /// The decoder for `head`'s Content-Encoding.
    pub fn for_head(head: &Head) -> ContentCoding {
        let mut chain = Vec::new();
        if !collect_codings(head.header_values("content-encoding"), &mut chain) {
            return ContentCoding::Unsupported;
        }
        if chain.is_empty() {
            ContentCoding::Identity
        } else {
            ContentCoding::Decode(Self(Decoder::new(&chain)))
        }
    }

    /// Decode more of the body, appending the output to `out`; every layer
    /// stops at `limit` output bytes in total over the body. Returns false
    /// once decoding stopped (limit reached, or corrupt data): later input
    /// is then ignored.
    pub fn push(&mut self, input: &[u8], limit: usize, out: &mut Vec<u8>) -> bool {
        self.0.push(input, limit, out)
    }

    /// End of the body: flush the last output. Returns false if decoding
    /// had stopped or a compressed stream was incomplete or corrupt.
    pub fn finish(&mut self, limit: usize, out: &mut Vec<u8>) -> bool {
        self.0.finish(limit, out)
    }
}

// ---------------------------------------------------------------------------
// Head parsing
// ---------------------------------------------------------------------------

/// RFC 9110 §5.6.2 tchar, as a table: one load per byte of every method and
/// field name.
const TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let extra = b"!#$%&'*+-.^_`|~";
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
};

fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Every byte visible ASCII (VCHAR, 0x21..=0x7e), as a request target must be.
/// Without an early exit, so the compiler can check many bytes at once.
fn all_vchar(s: &[u8]) -> bool {
    s.iter()
        .fold(true, |ok, &b| ok & (b.wrapping_sub(0x21) <= 0x7e - 0x21))
}

/// Offsets of the newlines in `bytes`, in order, eight bytes at a time.
///
/// A message head is a few short lines: a general search (`memchr`) sets up
/// a vector loop for every line and costs more than the line itself; this
/// scan has no set-up and finds every newline of a word with one mask.
fn newlines(bytes: &[u8]) -> Newlines<'_> {
    Newlines {
        bytes,
        word: 0,
        mask: 0,
    }
}

struct Newlines<'a> {
    bytes: &'a [u8],
    /// Offset of the next word to load.
    word: usize,
    /// One high bit per newline byte of the word before `word`.
    mask: u64,
}

impl Iterator for Newlines<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        while self.mask == 0 {
            let rest = self.bytes.get(self.word..).filter(|r| !r.is_empty())?;
            let w = match rest.first_chunk::<8>() {
                Some(c) => u64::from_le_bytes(*c),
                None => {
                    // Short tail: pad with zero bytes, which are not newlines.
                    let mut c = [0u8; 8];
                    c.iter_mut().zip(rest).for_each(|(d, s)| *d = *s);
                    u64::from_le_bytes(c)
                }
            };
            // Exact zero-byte test on `w ^ '\n'` (no carries between bytes).
            let x = w ^ 0x0a0a_0a0a_0a0a_0a0a;
            self.mask = !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
            self.word = self.word.saturating_add(8);
        }
        let at = self.word.wrapping_sub(8) + (self.mask.trailing_zeros() / 8) as usize;
        self.mask &= self.mask.wrapping_sub(1);
        Some(at)
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', r @ ..] = s {
        s = r;
    }
    while let [r @ .., b' ' | b'\t'] = s {
        s = r;
    }
    s
}

/// `HTTP/1.x` → minor version, x > 1 read as 1 (RFC 9110 §6.2).
fn parse_version(v: &[u8]) -> Option<u8> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit() => {
            Some((d - b'0').min(1))
        }
        _ => None,
    }
}

/// `method SP request-target SP HTTP-version` (RFC 9112 §3).
fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8], u8), HttpError> {
    // The method is a short token: a plain scan beats a vector search's set-up.
    let sp1 = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or(HttpError::BadStartLine)?;
    let (method, rest) = line.split_at_checked(sp1).ok_or(HttpError::BadStartLine)?;
    let rest = rest.get(1..).unwrap_or_default();
    // The version is the last eight bytes after the last space; any other
    // line fails `parse_version` below, as a search for the last space would.
    let (target, version) = match rest.split_last_chunk::<9>() {
        Some((t, [b' ', v @ ..])) => (t, v.as_slice()),
        _ => return Err(HttpError::BadStartLine),
    };
    if !is_token(method) || target.is_empty() || !all_vchar(target) {
        return Err(HttpError::BadStartLine);
    }
    let minor = parse_version(version).ok_or(HttpError::BadStartLine)?;
    Ok((method, target, minor))
}

/// `HTTP-version SP 3DIGIT SP [reason]` (RFC 9112 §4); a missing reason and
/// its SP are tolerated. Returns (minor, status).
fn parse_status_line(line: &[u8]) -> Result<(u8, u16), HttpError> {
    let (version, rest) = line.split_at_checked(8).ok_or(HttpError::BadStartLine)?;
    let minor = parse_version(version).ok_or(HttpError::BadStartLine)?;
    let [b' ', d0, d1, d2, tail @ ..] = rest else {
        return Err(HttpError::BadStartLine);
    };
    if !(d0.is_ascii_digit() && d1.is_ascii_digit() && d2.is_ascii_digit()) {
        return Err(HttpError::BadStartLine);
    }
    if !(tail.is_empty() || tail.first() == Some(&b' ')) {
        return Err(HttpError::BadStartLine);
    }
    let status = u16::from(d0 - b'0') * 100 + u16::from(d1 - b'0') * 10 + u16::from(d2 - b'0');
    // RFC 9110 §15: valid status codes are 100..=599.
    if !(100..=599).contains(&status) {
        return Err(HttpError::BadStartLine);
    }
    Ok((minor, status))
}

/// Parse a complete head (start line, fields, final empty line).
///
/// A head that is valid UTF-8 (nearly every one: heads are ASCII) becomes
/// the text as a whole, with spans pointing into it: one validation and one
/// copy. Otherwise each piece is converted on its own, invalid bytes replaced.
fn parse_head(raw: &[u8], side: Side, max_headers: usize) -> Result<Head, HttpError> {
    let mut head = Head {
        text: String::with_capacity(raw.len()),
        ..Head::default()
    };
    let whole = match std::str::from_utf8(raw) {
        Ok(text) => {
            head.text.push_str(text);
            true
        }
        Err(_) => false,
    };
    // The span of `piece`, a sub-slice of `raw`.
    let span = |head: &mut Head, piece: &[u8]| -> Span {
        if whole {
            let start = offset_in(raw, piece);
            Span {
                start: u32::try_from(start).unwrap_or(u32::MAX),
                end: u32::try_from(start.saturating_add(piece.len())).unwrap_or(u32::MAX),
            }
        } else {
            head.push_lossy(piece)
        }
    };
    // Lines (CR stripped) from one iterator over the newlines.
    let mut line_start = 0usize;
    let mut lines = newlines(raw).map(|nl| {
        let line = raw.get(line_start..nl).unwrap_or_default();
        line_start = nl.saturating_add(1);
        strip_cr(line)
    });
    let start = lines.next().ok_or(HttpError::BadStartLine)?;
    match side {
        Side::Request => {
            let (m, t, minor) = parse_request_line(start)?;
            head.method = span(&mut head, m);
            head.target = span(&mut head, t);
            head.minor_version = minor;
        }
        Side::Response => {
            let (minor, status) = parse_status_line(start)?;
            head.status = status;
            head.minor_version = minor;
        }
    }
    // Collected on the stack, then stored at their exact number: no
    // allocation for a few fields, one for more, whatever the head's size.
    let mut fields: SmallVec<[(Span, Span); 32]> = SmallVec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if let [b' ' | b'\t', ..] = line {
            // obs-fold (RFC 9112 §5.2): replace with SP and join. The joined
            // value is built at the end of the text.
            let &(_, value) = fields.last().ok_or(HttpError::BadHeader)?;
            let extra = trim_ows(line);
            check_value(extra)?;
            if !extra.is_empty() {
                let value = if value.end as usize == head.text.len() {
                    value
                } else {
                    let current = head.get(value).to_owned();
                    let start = head.text.len();
                    head.text.push_str(&current);
                    head.span_from(start)
                };
                if value.end > value.start {
                    head.text.push(' ');
                }
                head.text.push_str(&String::from_utf8_lossy(extra));
                let joined = head.span_from(value.start as usize);
                if let Some(last) = fields.last_mut() {
                    last.1 = joined;
                }
            }
            continue;
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(HttpError::BadHeader)?;
        let (name, value) = line.split_at_checked(colon).ok_or(HttpError::BadHeader)?;
        // A name must be a token: this also rejects `Name :` (RFC 9112 §5.1).
        if !is_token(name) {
            return Err(HttpError::BadHeader);
        }
        let value = trim_ows(value.get(1..).unwrap_or_default());
        check_value(value)?;
        if fields.len() >= max_headers {
            return Err(HttpError::TooManyHeaders);
        }
        head.names |= name_bit(name);
        let name = span(&mut head, name);
        let value = span(&mut head, value);
        fields.push((name, value));
    }
    head.fields = Fields::from_slice(&fields);
    Ok(head)
}

/// Offset of `inner` in `outer`, which it is a sub-slice of.
fn offset_in(outer: &[u8], inner: &[u8]) -> usize {
    let off = (inner.as_ptr() as usize).wrapping_sub(outer.as_ptr() as usize);
    debug_assert!(off.saturating_add(inner.len()) <= outer.len());
    off.min(outer.len())
}

/// RFC 9110 §5.5: NUL and bare CR in a field value are invalid.
fn check_value(v: &[u8]) -> Result<(), HttpError> {
    // Most values are a few words: scanned directly, long ones vectorised.
    let bad = if v.len() <= 32 {
        v.iter().any(|&b| b == 0 || b == b'\r')
    } else {
        memchr::memchr2(0, b'\r', v).is_some()
    };
    if bad {
        return Err(HttpError::BadHeader);
    }
    Ok(())
}

/// Elements of a comma-separated list (RFC 9110 §5.6.1), empty ones dropped.
fn list_items(v: &str) -> impl Iterator<Item = &str> {
    v.split(',')
        .map(|s| s.trim_matches([' ', '\t']))
        .filter(|s| !s.is_empty())
}

/// Content-Length (RFC 9110 §8.6): every value and list element must be the
/// same 1*DIGIT number.
fn content_length(head: &Head) -> Result<Option<u64>, HttpError> {
    let mut found: Option<u64> = None;
    for v in head.header_values("content-length") {
        let mut any = false;
        for item in v.split(',').map(|s| s.trim_matches([' ', '\t'])) {
            if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HttpError::BadContentLength);
            }
            let n: u64 = item.parse().map_err(|_| HttpError::BadContentLength)?;
            if found.is_some_and(|f| f != n) {
                return Err(HttpError::BadContentLength);
            }
            found = Some(n);
            any = true;
        }
        if !any {
            return Err(HttpError::BadContentLength);
        }
    }
    Ok(found)
}

#[derive(Debug, Default)]
struct TransferEncoding {
    /// A non-identity Transfer-Encoding is present.
    present: bool,
    /// `chunked` is the final coding (RFC 9112 §6.3 item 4).
    chunked: bool,
    /// Every coding other than the final chunked is decodable.
    known: bool,
    /// Codings other than chunked, in the order applied.
    codings: Vec<Coding>,
}

fn transfer_encoding(head: &Head) -> TransferEncoding {
    let mut te = TransferEncoding {
        known: true,
        ..TransferEncoding::default()
    };
    // Transient, and bounded by the head size like the header values.
    let mut items: Vec<&str> = Vec::new();
    for v in head.header_values("transfer-encoding") {
        for item in list_items(v) {
            let name = item
                .split(';')
                .next()
                .unwrap_or_default()
                .trim_matches([' ', '\t']);
            if !name.eq_ignore_ascii_case("identity") {
                items.push(name);
            }
        }
    }
    te.present = !items.is_empty();
    if let Some((last, before)) = items.split_last() {
        te.chunked = last.eq_ignore_ascii_case("chunked");
        let applied = if te.chunked { before } else { &items[..] };
        for name in applied {
            match coding_of(name) {
                Some(Some(c)) if te.codings.len() < MAX_CODINGS => te.codings.push(c),
                Some(None) => {}
                _ => te.known = false,
            }
        }
    }
    te
}

fn wants_upgrade(head: &Head) -> bool {
    head.header("upgrade").is_some_and(|u| !u.trim().is_empty())
        && head
            .header_values("connection")
            .any(|v| list_items(v).any(|t| t.eq_ignore_ascii_case("upgrade")))
}

/// Media type `text/event-stream` (WHATWG HTML §9.2), parameters ignored.
fn is_event_stream(head: &Head) -> bool {
    head.header("content-type").is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim_matches([' ', '\t'])
            .eq_ignore_ascii_case("text/event-stream")
    })
}

/// RFC 1952 gzip, RFC 1950 zlib ("deflate", RFC 9110 §8.4.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
}

/// Some(Some) decodable, Some(None) no-op, None unknown.
fn coding_of(name: &str) -> Option<Option<Coding>> {
    if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
        Some(Some(Coding::Gzip))
    } else if name.eq_ignore_ascii_case("deflate") {
        Some(Some(Coding::Deflate))
    } else if name.eq_ignore_ascii_case("identity") {
        Some(None)
    } else {
        None
    }
}

/// Append Content-Encoding codings in applied order; false if one is unknown
/// or there are more than [`MAX_CODINGS`].
fn collect_codings<'a>(values: impl Iterator<Item = &'a str>, chain: &mut Vec<Coding>) -> bool {
    for v in values {
        for item in list_items(v) {
            match coding_of(item) {
                Some(Some(c)) => {
                    if chain.len() >= MAX_CODINGS {
                        return false;
                    }
                    chain.push(c);
                }
                Some(None) => {}
                None => return false,
            }
        }
    }
    true
}

/// `chunk-size [BWS ; chunk-ext]` (RFC 9112 §7.1, §7.1.1); extensions ignored.
fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let (hex, tail) = line.split_at_checked(digits)?;
    let mut size: u64 = 0;
    for &b in hex {
        let d = (b as char).to_digit(16)?;
        size = size.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    let tail = trim_ows(tail);
    if tail.is_empty() || tail.first() == Some(&b';') {
        Some(size)
    } else {
        None
    }
}

/// Could this incomplete line still become a start line (resync)?
fn plausible_start(side: Side, partial: &[u8]) -> bool {
    match side {
        Side::Request => {
            let method_len = memchr::memchr(b' ', partial).unwrap_or(partial.len());
            let method = partial.get(..method_len).unwrap_or_default();
            method.len() <= MAX_RESYNC_METHOD && method.iter().all(|&b| is_tchar(b))
        }
        Side::Response => {
            const P: &[u8] = b"HTTP/1.";
            if partial.len() <= P.len() {
                P.starts_with(partial)
            } else {
                partial.starts_with(P)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Content decoding
// ---------------------------------------------------------------------------

/// Output of one decoding layer, bounded: refuses bytes beyond `limit` (total
/// over the message), which stops the decompressor (zip-bomb bound).
#[derive(Debug, Default)]
struct Sink {
    buf: Vec<u8>,
    total: usize,
    limit: usize,
}

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.total);
        if room == 0 {
            return Err(io::Error::other("decoded size limit"));
        }
        let n = b.len().min(room);
        self.buf.extend_from_slice(b.get(..n).unwrap_or_default());
        self.total = self.total.saturating_add(n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One decoding layer. `deflate` is sniffed: a valid zlib header selects
/// zlib, anything else raw deflate, as browsers do.
#[derive(Debug)]
enum Layer {
    Gzip(Box<GzDecoder<Sink>>),
    Zlib(Box<ZlibDecoder<Sink>>),
    Raw(Box<DeflateDecoder<Sink>>),
    /// Deflate before its first two bytes arrived.
    Sniff {
        head: [u8; 2],
        len: usize,
    },
}

impl Layer {
    fn sink(&mut self) -> Option<&mut Sink> {
        match self {
            Layer::Gzip(d) => Some(d.get_mut()),
            Layer::Zlib(d) => Some(d.get_mut()),
            Layer::Raw(d) => Some(d.get_mut()),
            Layer::Sniff { .. } => None,
        }
    }

    fn writer(&mut self) -> Option<&mut dyn Write> {
        match self {
            Layer::Gzip(d) => Some(d.as_mut()),
            Layer::Zlib(d) => Some(d.as_mut()),
            Layer::Raw(d) => Some(d.as_mut()),
            Layer::Sniff { .. } => None,
        }
    }

    /// Feed compressed bytes; output collects in the layer's sink.
    fn write_input(&mut self, input: &[u8], limit: usize) -> io::Result<()> {
        if let Layer::Sniff { head, len } = self {
            let mut h = *head;
            let mut n = *len;
            let mut rest = input;
            while n < 2 {
                let Some((&b, r)) = rest.split_first() else {
                    *head = h;
                    *len = n;
                    return Ok(());
                };
                if let Some(slot) = h.get_mut(n) {
                    *slot = b;
                }
                n += 1;
                rest = r;
            }
            let sink = Sink {
                limit,
                ..Sink::default()
            };
            *self = if is_zlib_header(h[0], h[1]) {
                Layer::Zlib(Box::new(ZlibDecoder::new(sink)))
            } else {
                Layer::Raw(Box::new(DeflateDecoder::new(sink)))
            };
            self.write_input(&h, limit)?;
            return self.write_input(rest, limit);
        }
        if let Some(s) = self.sink() {
            s.limit = limit;
        }
        let Some(w) = self.writer() else {
            return Ok(());
        };
        let mut rest = input;
        while !rest.is_empty() {
            match w.write(rest) {
                // The compressed stream ended: trailing bytes are ignored.
                Ok(0) => break,
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // Push out everything decodable so far (streamed bodies need it now).
        w.flush()
    }

    /// End of input: complete the stream; an error if it was cut short.
    fn finish(&mut self, limit: usize) -> io::Result<()> {
        if let Some(s) = self.sink() {
            s.limit = limit;
        }
        match self {
            Layer::Gzip(d) => d.try_finish(),
            Layer::Zlib(d) => d.try_finish(),
            Layer::Raw(d) => d.try_finish(),
            Layer::Sniff { .. } => Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }

    fn take_output(&mut self) -> Vec<u8> {
        self.sink()
            .map(|s| std::mem::take(&mut s.buf))
            .unwrap_or_default()
    }
}

/// RFC 1950 §2.2: CM = 8, CINFO ≤ 7, FCHECK makes CMF·256 + FLG a multiple of 31.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

/// A chain of decoding layers, outermost (last applied) first.
#[derive(Debug)]
struct Decoder {
    layers: Vec<Layer>,
    dead: bool,
}

impl Decoder {
    fn new(applied: &[Coding]) -> Self {
        let layers = applied
            .iter()
            .rev()
            .map(|c| match c {
                Coding::Gzip => Layer::Gzip(Box::new(GzDecoder::new(Sink::default()))),
                Coding::Deflate => Layer::Sniff {
                    head: [0; 2],
                    len: 0,
                },
            })
            .collect();
        Self {
            layers,
            dead: false,
        }
    }

    /// Decode `input` and append the output to `out`, each layer bounded by
    /// `limit` bytes in total. Returns false once decoding stopped (limit hit
    /// or corrupt data); later input is then ignored.
    fn push(&mut self, input: &[u8], limit: usize, out: &mut Vec<u8>) -> bool {
        if self.dead {
            return false;
        }
        let mut carry: Option<Vec<u8>> = None;
        let mut ok = true;
        for layer in &mut self.layers {
            let inp: &[u8] = carry.as_deref().unwrap_or(input);
            if layer.write_input(inp, limit).is_err() {
                ok = false;
            }
            carry = Some(layer.take_output());
        }
        if let Some(c) = carry {
            out.extend_from_slice(&c);
        }
        if !ok {
            self.dead = true;
        }
        ok
    }

    /// End of the body: finish every layer in turn, feeding each one's last
    /// output to the next. Returns false if decoding stopped or a compressed
    /// stream was incomplete or corrupt.
    fn finish(&mut self, limit: usize, out: &mut Vec<u8>) -> bool {
        if self.dead {
            return false;
        }
        self.dead = true;
        let mut carry: Option<Vec<u8>> = None;
        let mut ok = true;
        for layer in &mut self.layers {
            if let Some(c) = carry.as_deref()
                && layer.write_input(c, limit).is_err()
            {
                ok = false;
            }
            if layer.finish(limit).is_err() {
                ok = false;
            }
            carry = Some(layer.take_output());
        }
        if let Some(c) = carry {
            out.extend_from_slice(&c);
        }
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    type Ev = HttpEvent;

    fn small_limits() -> HttpLimits {
        HttpLimits {
            max_head_bytes: 512,
            max_headers: 8,
            max_body_bytes: 64,
            max_decoded_bytes: 128,
        }
    }

    /// Deterministic xorshift64* so piece sizes are reproducible.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Feed like a real caller: keep unconsumed bytes, append the next piece.
    /// `piece` gives the size of each next piece. Returns events, the first
    /// error, and how many bytes were left unconsumed.
    fn feed_with(
        p: &mut HttpStream,
        data: &[u8],
        mut piece: impl FnMut() -> usize,
    ) -> (Vec<Ev>, Option<HttpError>, usize) {
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut off = 0;
        while off < data.len() {
            let n = piece().clamp(1, data.len() - off);
            buf.extend_from_slice(&data[off..off + n]);
            off += n;
            match p.feed(&buf, &mut out) {
                Ok(c) => {
                    assert!(c <= buf.len());
                    buf.drain(..c);
                }
                Err(e) => return (out, Some(e), buf.len()),
            }
            if let Some(e) = p.error() {
                // Reported again, without consuming, by the next call.
                assert_eq!(p.feed(&buf, &mut Vec::new()), Err(e));
                return (out, Some(e), buf.len());
            }
        }
        (out, None, buf.len())
    }

    fn one_shot(p: &mut HttpStream, data: &[u8]) -> (Vec<Ev>, Option<HttpError>, usize) {
        feed_with(p, data, || usize::MAX)
    }

    fn req(data: &[u8]) -> (Vec<Ev>, Option<HttpError>, usize) {
        one_shot(
            &mut HttpStream::new(Side::Request, HttpLimits::default()),
            data,
        )
    }

    fn resp(data: &[u8], methods: &[&str]) -> (Vec<Ev>, Option<HttpError>, usize) {
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        for m in methods {
            p.expect_response_to(m);
        }
        one_shot(&mut p, data)
    }

    /// Merge adjacent StreamData: their split depends on arrival, not content.
    fn normalize(evs: Vec<Ev>) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in evs {
            if let (Ev::StreamData(new), Some(Ev::StreamData(prev))) = (&e, out.last_mut()) {
                prev.extend_from_slice(new);
                continue;
            }
            out.push(e);
        }
        out
    }

    fn heads(evs: &[Ev]) -> Vec<&Head> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Head(h) => Some(h),
                _ => None,
            })
            .collect()
    }

    fn bodies(evs: &[Ev]) -> Vec<(&[u8], bool)> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::Body { data, truncated } => Some((data.as_slice(), *truncated)),
                _ => None,
            })
            .collect()
    }

    fn stream_bytes(evs: &[Ev]) -> Vec<u8> {
        evs.iter()
            .filter_map(|e| match e {
                Ev::StreamData(d) => Some(d.as_slice()),
                _ => None,
            })
            .flatten()
            .copied()
            .collect()
    }

    fn count(evs: &[Ev], want: &Ev) -> usize {
        evs.iter().filter(|e| *e == want).count()
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn with_body(head: &str, body: &[u8]) -> Vec<u8> {
        let mut v = head.replace("{LEN}", &body.len().to_string()).into_bytes();
        v.extend_from_slice(body);
        v
    }

    /// Chunked framing of `body` in pieces of `size` bytes, each chunk with
    /// an extension, and one trailer field.
    fn chunked(body: &[u8], size: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for c in body.chunks(size) {
            v.extend_from_slice(format!("{:x};ext=\"v\"\r\n", c.len()).as_bytes());
            v.extend_from_slice(c);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"0\r\nX-Trailer: done\r\n\r\n");
        v
    }

    const INIT_BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"1.0"}}}"#;

    /// An MCP Streamable HTTP exchange shaped like real client traffic.
    fn mcp_requests() -> Vec<u8> {
        let mut v = with_body(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nContent-Length: {LEN}\r\n\r\n",
            INIT_BODY,
        );
        v.extend_from_slice(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nMcp-Session-Id: abc\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        v.extend_from_slice(&chunked(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            7,
        ));
        v.extend_from_slice(
            b"GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nAccept: text/event-stream\r\n\r\n",
        );
        v
    }

    const SSE: &[u8] = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n";

    fn mcp_responses() -> Vec<u8> {
        let mut v =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
                      transfer-encoding: chunked\r\n\r\n"
                .to_vec();
        v.extend_from_slice(&chunked(SSE, 5));
        v.extend_from_slice(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n");
        let z = gzip(br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#);
        v.extend_from_slice(&with_body(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {LEN}\r\n\r\n",
            &z,
        ));
        v
    }

    #[test]
    fn keep_alive_three_requests_in_one_buffer() {
        let data = mcp_requests();
        let (evs, err, left) = req(&data);
        assert_eq!(err, None);
        assert_eq!(left, 0);
        let hs = heads(&evs);
        assert_eq!(hs.len(), 3);
        assert_eq!(hs[0].method(), "POST");
        assert_eq!(hs[0].target(), "/mcp");
        assert_eq!(hs[0].minor_version, 1);
        assert_eq!(hs[0].header("content-type"), Some("application/json"));
        assert_eq!(hs[1].header("MCP-SESSION-ID"), Some("abc"));
        assert_eq!(hs[2].method(), "GET");
        let b = bodies(&evs);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0], (INIT_BODY, false));
        assert_eq!(
            b[1].0,
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#
        );
        assert_eq!(count(&evs, &Ev::MessageEnd), 3);
        // Order: Head, Body, MessageEnd per message; the GET is bodiless.
        assert!(matches!(evs.last(), Some(Ev::MessageEnd)));
        assert!(matches!(evs[evs.len() - 2], Ev::Head(_)));
    }

    #[test]
    fn pipelined_responses_with_head() {
        let mut data = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec();
        // Response to HEAD: Content-Length describes the GET body; none follows.
        data.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        data.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop");
        let (evs, err, left) = resp(&data, &["GET", "HEAD", "get"]);
        assert_eq!((err, left), (None, 0));
        assert_eq!(heads(&evs).len(), 3);
        assert_eq!(heads(&evs)[2].status, 404);
        assert_eq!(
            bodies(&evs),
            vec![(&b"hello"[..], false), (&b"nop"[..], false)]
        );
        assert_eq!(count(&evs, &Ev::MessageEnd), 3);

        // Without knowing the HEAD, the second message would eat the third's head.
        let (evs, _, _) = resp(&data, &[]);
        assert_ne!(heads(&evs).len(), 3);
    }

    #[test]
    fn pipelined_requests_without_bodies() {
        let data = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c HTTP/1.0\r\n\r\n";
        let (evs, err, left) = req(data);
        assert_eq!((err, left), (None, 0));
        let t: Vec<_> = heads(&evs)
            .iter()
            .map(|h| (h.method().to_owned(), h.target().to_owned()))
            .collect();
        assert_eq!(
            t,
            vec![
                ("GET".into(), "/a".into()),
                ("HEAD".into(), "/b".into()),
                ("GET".into(), "/c".into())
            ]
        );
        assert_eq!(heads(&evs)[2].minor_version, 0);
        assert_eq!(evs.len(), 6);
    }

    #[test]
    fn piecewise_feeding_matches_one_shot() {
        for (side, data) in [
            (Side::Request, mcp_requests()),
            (Side::Response, mcp_responses()),
        ] {
            let mk = || {
                let mut p = HttpStream::new(side, HttpLimits::default());
                for m in ["POST", "POST", "GET"] {
                    p.expect_response_to(m);
                }
                p
            };
            let (whole, err, left) = one_shot(&mut mk(), &data);
            assert_eq!((err, left), (None, 0));
            let whole = normalize(whole);
            assert_eq!(count(&whole, &Ev::MessageEnd), 3);
            let (bytewise, err, left) = feed_with(&mut mk(), &data, || 1);
            assert_eq!((err, left), (None, 0));
            assert_eq!(normalize(bytewise), whole);
            for seed in 1..=20u64 {
                let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                let (ev, err, left) = feed_with(&mut mk(), &data, || 1 + rng.below(40));
                assert_eq!((err, left), (None, 0), "seed {seed}");
                assert_eq!(normalize(ev), whole, "seed {seed}");
            }
        }
    }

    /// Body bytes past the body limit may go by unseen: the same events
    /// as when they are fed, and the next message parses.
    #[test]
    fn body_past_the_limit_can_be_skipped() {
        let limits = HttpLimits {
            max_body_bytes: 100,
            ..HttpLimits::default()
        };
        let body = vec![b'x'; 1000];
        let mut msg = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec();
        msg.extend_from_slice(&body);
        msg.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        let run = |skip: bool| {
            let mut p = HttpStream::new(Side::Response, limits);
            p.expect_response_to("GET");
            p.expect_response_to("GET");
            let mut out = Vec::new();
            let head = msg.len() - body.len() - 27;
            // Head and the first 150 body bytes.
            let mut at = p.feed(&msg[..head + 150], &mut out).unwrap();
            if skip {
                // 849 of the 850 left: the last byte ends the message.
                assert_eq!(p.discardable(), 849);
                p.skip_body(10_000);
                at += 849;
            }
            while at < msg.len() {
                at += p.feed(&msg[at..], &mut out).unwrap();
            }
            out
        };
        let (fed, skipped) = (run(false), run(true));
        assert_eq!(fed, skipped);
        assert!(matches!(fed.last(), Some(Ev::MessageEnd)));
        assert_eq!(fed.iter().filter(|e| matches!(e, Ev::Head(_))).count(), 2);
        // Nothing to skip within the limit, in a head, or in a stream.
        let mut p = HttpStream::new(Side::Response, limits);
        p.expect_response_to("GET");
        let mut out = Vec::new();
        p.feed(&msg[..60], &mut out).unwrap();
        assert_eq!(p.discardable(), 0);
    }

    #[test]
    fn sse_response_is_streamed_as_it_arrives() {
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        p.expect_response_to("GET");
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: Text/Event-Stream; charset=utf-8\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut out = Vec::new();
        assert_eq!(p.feed(head, &mut out), Ok(head.len()));
        assert!(matches!(out.as_slice(), [Ev::Head(_)]));
        // The first event arrives; it must be delivered before the stream ends.
        let c1 = chunked(SSE, 1000);
        let first = &c1[..c1.len() - b"0\r\nX-Trailer: done\r\n\r\n".len()];
        out.clear();
        assert_eq!(p.feed(first, &mut out), Ok(first.len()));
        assert_eq!(out, vec![Ev::StreamData(SSE.to_vec())]);
        // Half a chunk: the data part already delivered is consumed.
        out.clear();
        let n = p.feed(b"f\r\ndata: partial", &mut out).unwrap();
        assert_eq!(n, b"f\r\ndata: partial".len());
        assert_eq!(out, vec![Ev::StreamData(b"data: partial".to_vec())]);
        out.clear();
        assert_eq!(p.feed(b"\n\n\r\n0\r\n\r\n", &mut out), Ok(9));
        assert_eq!(out, vec![Ev::StreamData(b"\n\n".to_vec()), Ev::MessageEnd]);
    }

    #[test]
    fn read_until_close_response_streams_and_ends_on_close() {
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        let mut out = Vec::new();
        let d = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":";
        assert_eq!(p.feed(d, &mut out), Ok(d.len()));
        assert_eq!(p.feed(b"1}", &mut out), Ok(2));
        assert_eq!(
            normalize(out.clone())[1..],
            [Ev::StreamData(b"{\"a\":1}".to_vec())]
        );
        p.on_close(&mut out);
        assert_eq!(out.last(), Some(&Ev::MessageEnd));
        assert_eq!(count(&out, &Ev::MessageEnd), 1);
    }

    #[test]
    fn chunked_with_tiny_chunks_extensions_and_trailers() {
        let body: Vec<u8> = (0..=255u8).collect();
        let mut data = b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        data.extend_from_slice(&chunked(&body, 1));
        data.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        let (evs, err, left) = req(&data);
        assert_eq!((err, left), (None, 0));
        assert_eq!(bodies(&evs), vec![(&body[..], false)]);
        assert_eq!(heads(&evs)[1].target(), "/next");

        // RFC 9112 §7.1.1 extension forms, bare LF, uppercase hex, BWS.
        let data = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                     A ; name=value;x\r\n0123456789\r\n\
                     1;quoted=\"a;b\"\nZ\n\
                     0\nTrailer-A: 1\nTrailer-B: 2\n\n";
        let (evs, err, left) = req(data);
        assert_eq!((err, left), (None, 0));
        assert_eq!(bodies(&evs), vec![(&b"0123456789Z"[..], false)]);
    }

    #[test]
    fn chunked_wins_over_content_length() {
        let data =
            b"POST / HTTP/1.1\r\nContent-Length: 100\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        let z = gzip(b"inner");
        let mut v = data.to_vec();
        v.extend_from_slice(&chunked(&z, 3));
        let (evs, err, left) = req(&v);
        assert_eq!((err, left), (None, 0));
        // Transfer coding gzip (before chunked) is decoded too.
        assert_eq!(bodies(&evs), vec![(&b"inner"[..], false)]);
        // Request with a final coding other than chunked: length unknowable.
        let (_, err, _) = req(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!(err, Some(HttpError::BadHeader));
        // The same on a response means read until close.
        let (evs, err, _) = resp(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, x-custom\r\n\r\nabc",
            &[],
        );
        assert_eq!(err, None);
        assert_eq!(stream_bytes(&evs), b"abc");
    }

    #[test]
    fn bad_chunks() {
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"5 x\r\nhello\r\n",
            b"1\r\nab\r\n",           // data longer than its size
            b"11111111111111111\r\n", // 17 hex digits overflow u64
        ] {
            let mut v = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            v.extend_from_slice(bad);
            v.extend_from_slice(b"0\r\n\r\n");
            let (evs, err, _) = req(&v);
            assert_eq!(
                err,
                Some(HttpError::BadChunk),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
            // The head was delivered, the message never completed.
            assert_eq!(heads(&evs).len(), 1);
            assert_eq!(count(&evs, &Ev::MessageEnd), 0);
        }
        // Leading zeros are fine however many.
        let v = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000000001\r\nA\r\n0\r\n\r\n";
        assert_eq!(bodies(&req(v).0), vec![(&b"A"[..], false)]);
        // An endless chunk-size line is bounded.
        let mut v = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        v.extend(std::iter::repeat_n(b'x', MAX_CHUNK_LINE));
        assert_eq!(req(&v).1, Some(HttpError::BadChunk));
        // Endless trailers are bounded too.
        let mut p = HttpStream::new(Side::Request, small_limits());
        let mut v = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        for _ in 0..100 {
            v.extend_from_slice(b"X-T: 0123456789\r\n");
        }
        assert_eq!(one_shot(&mut p, &v).1, Some(HttpError::BadChunk));
    }

    #[test]
    fn gzip_body_is_decoded() {
        let z = gzip(INIT_BODY);
        let data = with_body(
            "POST /mcp HTTP/1.1\r\nContent-Encoding: x-gzip\r\nContent-Length: {LEN}\r\n\r\n",
            &z,
        );
        let (evs, err, _) = req(&data);
        assert_eq!(err, None);
        assert_eq!(bodies(&evs), vec![(INIT_BODY, false)]);
        assert!(codings_supported(heads(&evs)[0]));
    }

    #[test]
    fn gzip_bomb_is_cut_at_max_decoded_bytes() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let z = gzip(&zeros);
        assert!(z.len() < 64 * 1024);
        let limits = HttpLimits::default();
        let mut data = with_body(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {LEN}\r\n\r\n",
            &z,
        );
        data.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        for seed in [0u64, 7] {
            let mut p = HttpStream::new(Side::Response, limits);
            let mut rng = Rng(seed + 1);
            let piece = move || {
                if seed == 0 {
                    usize::MAX
                } else {
                    1 + rng.below(3000)
                }
            };
            let (evs, err, left) = feed_with(&mut p, &data, piece);
            assert_eq!((err, left), (None, 0));
            let b = bodies(&evs);
            assert_eq!(b.len(), 1);
            assert_eq!(b[0].0.len(), limits.max_decoded_bytes);
            assert!(b[0].0.iter().all(|&x| x == 0));
            assert!(b[0].1, "truncated");
            // The framing stays intact: the next response is parsed.
            assert_eq!(heads(&evs)[1].status, 204);
            assert_eq!(p.stats().truncated_bodies, 1);
        }
        // A streamed bomb is bounded by the ratio budget.
        let data = with_body(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Encoding: gzip\r\nContent-Length: {LEN}\r\n\r\n",
            &z,
        );
        let (evs, err, _) = resp(&data, &[]);
        assert_eq!(err, None);
        let n = stream_bytes(&evs).len();
        assert!(n >= limits.max_decoded_bytes);
        assert!(n <= limits.max_decoded_bytes + z.len() * STREAM_MAX_RATIO);
        assert_eq!(evs.last(), Some(&Ev::MessageEnd));
    }

    #[test]
    fn deflate_zlib_and_raw() {
        for enc in [zlib(INIT_BODY), raw_deflate(INIT_BODY)] {
            let data = with_body(
                "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: {LEN}\r\n\r\n",
                &enc,
            );
            let whole = bodies(&resp(&data, &[]).0)
                .iter()
                .map(|(d, t)| (d.to_vec(), *t))
                .collect::<Vec<_>>();
            assert_eq!(whole, vec![(INIT_BODY.to_vec(), false)]);
            // Sniffing must work when the two header bytes arrive separately.
            let mut p = HttpStream::new(Side::Response, HttpLimits::default());
            let (evs, err, _) = feed_with(&mut p, &data, || 1);
            assert_eq!(err, None);
            assert_eq!(bodies(&evs), vec![(INIT_BODY, false)]);
        }
    }

    #[test]
    fn stacked_codings_decode_in_reverse_order() {
        // "deflate, gzip": deflate applied first, gzip last (RFC 9110 §8.4).
        let enc = gzip(&zlib(INIT_BODY));
        let data = with_body(
            "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Encoding: identity, gzip\r\nContent-Length: {LEN}\r\n\r\n",
            &enc,
        );
        assert_eq!(bodies(&resp(&data, &[]).0), vec![(INIT_BODY, false)]);
    }

    #[test]
    fn unknown_or_corrupt_coding() {
        // Unknown coding: raw bytes, flagged by codings_supported and stats.
        let data =
            b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 4\r\n\r\n\x1b\x03\x00\xf8";
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        let (evs, err, _) = one_shot(&mut p, data);
        assert_eq!(err, None);
        assert_eq!(bodies(&evs), vec![(&b"\x1b\x03\x00\xf8"[..], false)]);
        assert!(!codings_supported(heads(&evs)[0]));
        assert_eq!(p.stats().undecoded_bodies, 1);
        // Corrupt gzip: decoding stops, body flagged, framing unaffected.
        let mut z = gzip(INIT_BODY);
        let mid = z.len() / 2;
        z[mid..].iter_mut().for_each(|b| *b = 0xff);
        let mut data = with_body(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {LEN}\r\n\r\n",
            &z,
        );
        data.extend_from_slice(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n");
        let (evs, err, left) = resp(&data, &[]);
        assert_eq!((err, left), (None, 0));
        let b = bodies(&evs);
        assert!(b[0].1);
        // The part before the damage decodes correctly.
        let same = b[0]
            .0
            .iter()
            .zip(INIT_BODY)
            .take_while(|(a, b)| a == b)
            .count();
        assert!(same >= 16, "{same}");
        assert_eq!(heads(&evs)[1].status, 304);
    }

    #[test]
    fn body_over_max_body_bytes_is_truncated_and_skipped() {
        let body = vec![b'x'; 1000];
        let mut data = with_body("POST / HTTP/1.1\r\nContent-Length: {LEN}\r\n\r\n", &body);
        data.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let mut p = HttpStream::new(Side::Request, small_limits());
        let (evs, err, left) = one_shot(&mut p, &data);
        assert_eq!((err, left), (None, 0));
        assert_eq!(bodies(&evs), vec![(&body[..64], true)]);
        assert_eq!(heads(&evs).len(), 2);
    }

    #[test]
    fn upgrade_101_and_request_upgrade() {
        let ws = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut data = ws.to_vec();
        data.extend_from_slice(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
        let mut p = HttpStream::new(Side::Request, HttpLimits::default());
        let mut out = Vec::new();
        assert_eq!(p.feed(&data, &mut out), Ok(ws.len()));
        assert!(matches!(
            out.as_slice(),
            [Ev::Head(_), Ev::MessageEnd, Ev::Upgraded]
        ));
        assert!(p.is_upgraded());
        assert_eq!(p.feed(&data[ws.len()..], &mut out), Ok(0));
        assert_eq!(out.len(), 3);
        // Refused upgrade: the connection stays HTTP.
        p.cancel_upgrade();
        assert_eq!(p.feed(b"GET /again HTTP/1.1\r\n\r\n", &mut out), Ok(23));

        let r =
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let mut data = r.to_vec();
        data.extend_from_slice(b"\x81\x05hello");
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        p.expect_response_to("GET");
        let mut out = Vec::new();
        assert_eq!(p.feed(&data, &mut out), Ok(r.len()));
        assert!(
            matches!(out.as_slice(), [Ev::Head(h), Ev::MessageEnd, Ev::Upgraded] if h.status == 101)
        );
        assert_eq!(p.feed(&data[r.len()..], &mut out), Ok(0));

        // Upgrade without the Connection token, or in HTTP/1.0: not an upgrade.
        for d in [
            &b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"[..],
            b"GET / HTTP/1.0\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgraded\r\n\r\n",
        ] {
            let (evs, err, _) = req(d);
            assert_eq!(err, None);
            assert_eq!(
                count(&evs, &Ev::Upgraded),
                0,
                "{:?}",
                String::from_utf8_lossy(d)
            );
        }
    }

    #[test]
    fn connect_request_and_response() {
        let (evs, err, left) = req(b"CONNECT mcp.example.com:443 HTTP/1.1\r\nHost: mcp.example.com:443\r\n\r\n\x16\x03\x01");
        assert_eq!(err, None);
        assert_eq!(left, 3);
        assert_eq!(heads(&evs)[0].target(), "mcp.example.com:443");
        assert_eq!(evs.last(), Some(&Ev::Upgraded));

        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        p.expect_response_to("CONNECT");
        let (evs, _, left) = one_shot(
            &mut p,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
        );
        assert_eq!(left, 3);
        assert_eq!(evs.last(), Some(&Ev::Upgraded));

        // A refused CONNECT is an ordinary response with a body.
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        p.expect_response_to("CONNECT");
        let (evs, _, left) = one_shot(
            &mut p,
            b"HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno",
        );
        assert_eq!(left, 0);
        assert_eq!(bodies(&evs), vec![(&b"no"[..], false)]);
        assert_eq!(count(&evs, &Ev::Upgraded), 0);
    }

    #[test]
    fn interim_and_bodiless_responses() {
        let data =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n\
                     HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n\
                     HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        // The 100 must not consume the HEAD entry: the 204 answers the first request.
        for m in ["POST", "GET", "HEAD"] {
            p.expect_response_to(m);
        }
        let (evs, err, left) = one_shot(&mut p, data);
        assert_eq!((err, left), (None, 2));
        assert_eq!(
            heads(&evs).iter().map(|h| h.status).collect::<Vec<_>>(),
            vec![100, 204, 304, 200]
        );
        // The 200 answers the HEAD: Content-Length but no body, "ok" is left
        // as the start of a (bad) next response.
        assert_eq!(bodies(&evs).len(), 0);
        assert_eq!(count(&evs, &Ev::MessageEnd), 4);
    }

    #[test]
    fn pending_kinds_keep_fifo_order_to_the_bound() {
        let kinds = [
            ReqKind::Head,
            ReqKind::Connect,
            ReqKind::Get,
            ReqKind::Other,
        ];
        let mut q = PendingKinds::default();
        for i in 0..MAX_PENDING_REQUESTS + 3 {
            q.push_back(kinds[i % 4]);
        }
        assert_eq!(q.len(), MAX_PENDING_REQUESTS);
        for i in 0..MAX_PENDING_REQUESTS {
            assert_eq!(q.pop_front(), Some(kinds[i % 4]));
        }
        assert_eq!(q.pop_front(), None);
        q.push_back(ReqKind::Connect);
        assert_eq!(q.pop_front(), Some(ReqKind::Connect));
    }

    #[test]
    fn pipeline_fifo_is_bounded() {
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        for _ in 0..MAX_PENDING_REQUESTS {
            p.expect_response_to("HEAD");
        }
        p.expect_response_to("GET");
        assert_eq!(p.stats().pipeline_overflows, 1);
        assert_eq!(p.pending.len(), MAX_PENDING_REQUESTS);
    }

    #[test]
    fn header_name_case_and_whitespace_variants() {
        for name in ["content-length", "CONTENT-LENGTH", "Content-length"] {
            let d = format!("POST / HTTP/1.1\r\n{name}:   3 \t\r\n\r\nabc");
            let (evs, err, _) = req(d.as_bytes());
            assert_eq!(err, None);
            assert_eq!(bodies(&evs), vec![(&b"abc"[..], false)]);
            // Name kept as sent, value trimmed.
            assert_eq!(heads(&evs)[0].headers().next(), Some((name, "3")));
        }
        // Whitespace before the colon is rejected (RFC 9112 §5.1).
        for bad in [
            "Content-Length : 3",
            "Content-Length\t: 3",
            " Leading: x",
            ": empty",
            "NoColon",
        ] {
            let d = format!("POST / HTTP/1.1\r\n{bad}\r\n\r\nabc");
            assert_eq!(req(d.as_bytes()).1, Some(HttpError::BadHeader), "{bad}");
        }
        // NUL and bare CR in a value.
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n").1,
            Some(HttpError::BadHeader)
        );
        assert_eq!(
            req(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n").1,
            Some(HttpError::BadHeader)
        );
        // Non-UTF-8 values are kept lossily.
        let (evs, _, _) = req(b"GET / HTTP/1.1\r\nX-Name: caf\xe9\r\n\r\n");
        assert_eq!(heads(&evs)[0].header("x-name"), Some("caf\u{fffd}"));
    }

    #[test]
    fn byte_classes_follow_the_rfc() {
        for b in 0..=255u8 {
            let tchar = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), tchar, "{b:#x}");
            assert_eq!(
                all_vchar(&[b'a', b, b'z']),
                (0x21..=0x7e).contains(&b),
                "{b:#x}"
            );
        }
        assert!(all_vchar(b""));
    }

    #[test]
    fn header_lookup_agrees_with_a_scan_in_any_case() {
        // Names that share a filter bit, names with non-letter last bytes,
        // and the same names looked up in other cases: the filter may only
        // skip names that are absent.
        let names = [
            "Host",
            "X-1",
            "x-q",
            "X-Q",
            "Upgrade",
            "Accept",
            "Mcp-Session-Id",
            "A",
            "b~",
            "B^",
            "X-Content-Length",
            "content-type",
        ];
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for (i, n) in names.iter().enumerate() {
            raw.extend_from_slice(format!("{n}: v{i}\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let (evs, err, _) = req(&raw);
        assert_eq!(err, None);
        let parsed = heads(&evs)[0].clone();
        let mut pushed = Head::default();
        for (i, n) in names.iter().enumerate() {
            pushed.push_header(n, &format!("v{i}"));
        }
        let probes = names
            .iter()
            .flat_map(|n| {
                [
                    n.to_string(),
                    n.to_ascii_uppercase(),
                    n.to_ascii_lowercase(),
                ]
            })
            .chain(["Hosts", "X-2", "Transfer-Encoding", "", "b^", "a~"].map(String::from));
        for h in [&parsed, &pushed] {
            for p in probes.clone() {
                let scan = h
                    .headers()
                    .find(|(n, _)| n.eq_ignore_ascii_case(&p))
                    .map(|(_, v)| v);
                assert_eq!(h.header(&p), scan, "{p}");
                let all: Vec<_> = h
                    .headers()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(&p))
                    .map(|(_, v)| v)
                    .collect();
                assert_eq!(h.header_values(&p).collect::<Vec<_>>(), all, "{p}");
            }
        }
        assert_eq!(parsed.header("x-q"), Some("v2"));
        assert_eq!(parsed.header_values("X-Q").count(), 2);
    }

    #[test]
    fn obs_fold_is_joined_and_bare_lf_accepted() {
        let (evs, err, _) =
            req(b"\r\n\nGET / HTTP/1.1\nX-Long: first\n  second\n\tthird\nHost: h\n\n");
        assert_eq!(err, None);
        let h = heads(&evs)[0];
        assert_eq!(h.header("x-long"), Some("first second third"));
        assert_eq!(h.header("host"), Some("h"));
        // A fold onto an empty value, then the next field still separate.
        let (evs, err, _) = req(b"GET / HTTP/1.1\r\nX-E:\r\n  v\r\nX-F: w\r\n\r\n");
        assert_eq!(err, None);
        let h = heads(&evs)[0];
        assert_eq!(
            h.headers().collect::<Vec<_>>(),
            [("X-E", "v"), ("X-F", "w")]
        );
        // The same in a head that is not valid UTF-8 (pieces converted one by one).
        let (evs, err, _) = req(b"GET /t HTTP/1.1\r\nX-E: a\r\n  b\r\n c\r\nX-F: w\xe9\r\n\r\n");
        assert_eq!(err, None);
        let h = heads(&evs)[0];
        assert_eq!((h.method(), h.target()), ("GET", "/t"));
        assert_eq!(
            h.headers().collect::<Vec<_>>(),
            [("X-E", "a b c"), ("X-F", "w\u{fffd}")]
        );
        // A fold with no field before it is an error.
        assert_eq!(
            req(b"GET / HTTP/1.1\r\n folded\r\n\r\n").1,
            Some(HttpError::BadHeader)
        );
    }

    #[test]
    fn content_length_validation() {
        let ok = b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab";
        assert_eq!(bodies(&req(ok).0), vec![(&b"ab"[..], false)]);
        for bad in [
            "Content-Length: 2\r\nContent-Length: 3",
            "Content-Length: 2, 3",
            "Content-Length: +2",
            "Content-Length: -1",
            "Content-Length: 0x10",
            "Content-Length: ",
            "Content-Length: 99999999999999999999999",
        ] {
            let d = format!("POST / HTTP/1.1\r\n{bad}\r\n\r\nab");
            let (evs, err, _) = req(d.as_bytes());
            assert_eq!(err, Some(HttpError::BadContentLength), "{bad}");
            assert!(evs.is_empty(), "no Head before a framing error");
        }
    }

    #[test]
    fn start_line_variants() {
        let ok_req: [&[u8]; 3] = [
            b"GET /path?q=1 HTTP/1.1\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\n\r\n",
            b"M-SEARCH * HTTP/1.9\r\n\r\n",
        ];
        for d in ok_req {
            let (evs, err, _) = req(d);
            assert_eq!(err, None, "{:?}", String::from_utf8_lossy(d));
            assert_eq!(heads(&evs)[0].minor_version, 1);
        }
        for d in [
            &b"GET  / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/2.0\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            assert_eq!(
                req(d).1,
                Some(HttpError::BadStartLine),
                "{:?}",
                String::from_utf8_lossy(d)
            );
        }
        for (d, st) in [
            (&b"HTTP/1.1 200\r\n\r\n"[..], 200),
            (b"HTTP/1.0 404 \r\n\r\n", 404),
            (b"HTTP/1.1 599 x y\r\n\r\n", 599),
        ] {
            let (evs, err, _) = resp(d, &["HEAD"]);
            assert_eq!(err, None);
            assert_eq!(heads(&evs)[0].status, st);
        }
        for d in [
            &b"HTTP/1.1 20 OK\r\n\r\n"[..],
            b"HTTP/1.1 2000\r\n\r\n",
            b"HTTP/1.1 600 X\r\n\r\n",
            b"HTTP/1.1 099 X\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
        ] {
            assert_eq!(
                resp(d, &[]).1,
                Some(HttpError::BadStartLine),
                "{:?}",
                String::from_utf8_lossy(d)
            );
        }
    }

    #[test]
    fn small_heads_keep_their_fields_inline_and_large_ones_spill_whole() {
        for n in [0usize, 1, INLINE_FIELDS, INLINE_FIELDS + 1, 40] {
            let mut raw = String::from("GET /x HTTP/1.1\r\n");
            for i in 0..n {
                raw.push_str(&format!("X-F{i}: v{i}\r\n"));
            }
            raw.push_str("\r\n");
            let head = parse_head(raw.as_bytes(), Side::Request, 128).expect("parses");
            // Every field, in wire order, whichever way it is stored.
            let got: Vec<(String, String)> = head
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let want: Vec<(String, String)> = (0..n)
                .map(|i| (format!("X-F{i}"), format!("v{i}")))
                .collect();
            assert_eq!(got, want, "{n} fields");
            assert_eq!(head.fields.spilled(), n > INLINE_FIELDS, "{n} fields");
            // Spilled fields are stored at their exact number and counted in
            // the memory budget; inline ones are part of the head itself.
            let fields = if n > INLINE_FIELDS {
                assert_eq!(head.fields.capacity(), n);
                n * std::mem::size_of::<(Span, Span)>()
            } else {
                0
            };
            assert_eq!(head.held_bytes(), head.text.capacity() + fields);
        }
    }

    #[test]
    fn header_limits() {
        let mut p = HttpStream::new(Side::Request, small_limits());
        let mut d = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..9 {
            d.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        d.extend_from_slice(b"\r\n");
        assert_eq!(one_shot(&mut p, &d).1, Some(HttpError::TooManyHeaders));
        // Exactly max_headers is fine.
        let mut p = HttpStream::new(Side::Request, small_limits());
        let mut d = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..8 {
            d.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        d.extend_from_slice(b"\r\n");
        assert_eq!(one_shot(&mut p, &d).1, None);

        // Complete but too large.
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(600));
        let mut p = HttpStream::new(Side::Request, small_limits());
        assert_eq!(
            one_shot(&mut p, big.as_bytes()).1,
            Some(HttpError::HeadTooLarge)
        );
        // Incomplete and already too large, fed in pieces: detected before the end.
        let mut p = HttpStream::new(Side::Request, small_limits());
        let endless = format!("GET / HTTP/1.1\r\n{}", "X: 0123456789\r\n".repeat(100));
        let (_, err, left) = feed_with(&mut p, endless.as_bytes(), || 10);
        assert_eq!(err, Some(HttpError::HeadTooLarge));
        assert!(left <= 512 + 10);
        // The limit is inclusive.
        let exact_pad = 512 - "GET / HTTP/1.1\r\nX: \r\n\r\n".len();
        let exact = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(exact_pad));
        assert_eq!(exact.len(), 512);
        let mut p = HttpStream::new(Side::Request, small_limits());
        assert_eq!(one_shot(&mut p, exact.as_bytes()).1, None);
    }

    #[test]
    fn error_after_progress_is_reported_on_next_call() {
        let d = b"GET /ok HTTP/1.1\r\n\r\nBROKEN LINE\r\n\r\n";
        let mut p = HttpStream::new(Side::Request, HttpLimits::default());
        let mut out = Vec::new();
        assert_eq!(p.feed(d, &mut out), Ok(20));
        assert_eq!(heads(&out).len(), 1);
        assert_eq!(p.feed(&d[20..], &mut out), Err(HttpError::BadStartLine));
        assert_eq!(p.feed(&d[20..], &mut out), Err(HttpError::BadStartLine));
        // Recovery: skip the bad line, find the next request.
        p.on_gap();
        let mut rest = d[20..].to_vec();
        rest.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
        let n = p.feed(&rest, &mut out).unwrap();
        assert_eq!(n, rest.len());
        assert_eq!(heads(&out)[1].target(), "/after");
    }

    #[test]
    fn gap_resync_request_side() {
        let mut p = HttpStream::new(Side::Request, HttpLimits::default());
        let mut out = Vec::new();
        let first = b"POST /mcp HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\":";
        assert_eq!(p.feed(first, &mut out), Ok(first.len()));
        p.on_gap();
        // After the hole: the tail of the body, including a line that is not
        // a request line, then the next request.
        let after = b"\"2.0\",\"id\":9}\r\nGET is not / a request\r\nPOST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let n = p.feed(after, &mut out).unwrap();
        assert_eq!(n, after.len());
        let hs = heads(&out);
        assert_eq!(hs.len(), 2);
        assert_eq!(bodies(&out), vec![(&b"{}"[..], false)]);
        assert!(p.stats().resync_skipped_bytes > 0);

        // A segment that starts exactly with a request is not skipped.
        let mut p = HttpStream::new(Side::Request, HttpLimits::default());
        let mut out = Vec::new();
        p.on_gap();
        assert_eq!(p.feed(b"GET / HTTP/1.1\r\n\r\n", &mut out), Ok(18));
        assert_eq!(heads(&out).len(), 1);

        // A partial plausible line is kept for the next call, garbage is dropped.
        let mut p = HttpStream::new(Side::Request, HttpLimits::default());
        p.on_gap();
        let mut out = Vec::new();
        assert_eq!(p.feed(b"junk\x00\x01\r\nPO", &mut out), Ok(8));
        assert_eq!(p.feed(b"POST / HTTP/1.1\r\n\r\n", &mut out), Ok(19));
        assert_eq!(heads(&out).len(), 1);
        assert_eq!(
            p.feed(b"\x00\x01\x02 binary without newline", &mut out),
            Ok(0)
        );
        p.on_gap();
        assert_eq!(
            p.feed(b"\x00\x01\x02 binary without newline", &mut out),
            Ok(26)
        );
    }

    #[test]
    fn gap_resync_response_side() {
        let mut p = HttpStream::new(Side::Response, HttpLimits::default());
        let mut out = Vec::new();
        let d = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nevent: mess";
        assert_eq!(p.feed(d, &mut out), Ok(d.len()));
        p.on_gap();
        out.clear();
        // The old message is dropped, not ended; lines that are not a status
        // line (body tail, chunk framing) are skipped.
        let d = b"age\r\n\r\n0\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(p.feed(d, &mut out), Ok(d.len()));
        assert!(
            matches!(out.as_slice(), [Ev::Head(h), Ev::MessageEnd] if h.status == 202),
            "{out:?}"
        );
        assert_eq!(p.stats().resync_skipped_bytes, 12);
    }

    #[test]
    fn truncation_at_every_offset_never_panics() {
        for (side, data) in [
            (Side::Request, mcp_requests()),
            (Side::Response, mcp_responses()),
        ] {
            let mut full = HttpStream::new(side, HttpLimits::default());
            let full_ev = normalize(one_shot(&mut full, &data).0);
            for cut in 0..=data.len() {
                let mut p = HttpStream::new(side, HttpLimits::default());
                let (ev, err, left) = one_shot(&mut p, &data[..cut]);
                assert_eq!(err, None, "cut {cut}");
                assert!(left <= cut);
                let ev = normalize(ev);
                // Every complete event is one of the full run, in order; only
                // the last one may be a partial stream.
                for (i, e) in ev.iter().enumerate() {
                    match (e, full_ev.get(i)) {
                        (Ev::StreamData(a), Some(Ev::StreamData(b))) => {
                            assert!(b.starts_with(a), "cut {cut}")
                        }
                        (a, b) => assert_eq!(Some(a), b, "cut {cut}"),
                    }
                }
                let mut close = Vec::new();
                p.on_close(&mut close);
                p.on_gap();
                let _ = p.feed(&data[cut..], &mut close);
            }
        }
    }

    #[test]
    fn hostile_random_input_never_panics() {
        let mut rng = Rng(0x5eed);
        let seeds: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"Content-Encoding: gzip\r\nContent-Length: 9\r\n\r\n",
            b"\r\n0\r\n;\n:",
        ];
        for round in 0..300 {
            let mut d = Vec::new();
            while d.len() < 400 {
                if rng.below(3) == 0 {
                    d.extend_from_slice(seeds[rng.below(seeds.len())]);
                } else {
                    d.push(rng.next() as u8);
                }
            }
            let side = if round % 2 == 0 {
                Side::Request
            } else {
                Side::Response
            };
            let mut p = HttpStream::new(side, small_limits());
            let mut out = Vec::new();
            let mut buf = Vec::new();
            for c in d.chunks(1 + rng.below(50)) {
                buf.extend_from_slice(c);
                match p.feed(&buf, &mut out) {
                    Ok(n) => {
                        buf.drain(..n);
                    }
                    Err(_) => {
                        p.on_gap();
                        buf.clear();
                    }
                }
                assert!(buf.len() <= 512 + MAX_CHUNK_LINE + 50);
            }
            p.on_close(&mut out);
        }
    }

    #[test]
    fn stream_data_is_coalesced_per_call() {
        let mut d = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        d.extend_from_slice(&chunked(SSE, 1));
        let (evs, err, _) = resp(&d, &[]);
        assert_eq!(err, None);
        assert!(
            matches!(evs.as_slice(), [Ev::Head(_), Ev::StreamData(s), Ev::MessageEnd] if s == SSE)
        );
    }

    #[test]
    fn close_mid_body_delivers_truncated_body() {
        let mut p = HttpStream::new(Side::Request, HttpLimits::default());
        let mut out = Vec::new();
        let d = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc";
        assert_eq!(p.feed(d, &mut out), Ok(d.len()));
        p.on_close(&mut out);
        assert_eq!(
            &out[1..],
            &[
                Ev::Body {
                    data: b"abc".to_vec(),
                    truncated: true
                },
                Ev::MessageEnd
            ]
        );
    }

    #[test]
    fn parser_is_send() {
        // Flow tables may move parsers between worker threads.
        fn assert_send<T: Send>() {}
        assert_send::<HttpStream>();
    }

    #[test]
    fn probe_for_requests() {
        assert!(looks_like_request(b"POST /mcp HTTP/1.1\r\n"));
        assert!(looks_like_request(b"PO"));
        assert!(!looks_like_request(b""));
        assert!(!looks_like_request(b"\x16\x03\x01"));
        assert!(!looks_like_request(b"GETX / HTTP/1.1"));
    }

    /// The start-line rules as first written, with general searches: the
    /// reference for the scans that replaced them.
    fn reference_request_line(line: &[u8]) -> Result<(&[u8], &[u8], u8), HttpError> {
        let sp1 = memchr::memchr(b' ', line).ok_or(HttpError::BadStartLine)?;
        let (method, rest) = line.split_at(sp1);
        let rest = &rest[1..];
        let sp2 = memchr::memrchr(b' ', rest).ok_or(HttpError::BadStartLine)?;
        let (target, version) = rest.split_at(sp2);
        let version = &version[1..];
        if !is_token(method) || target.is_empty() || !all_vchar(target) {
            return Err(HttpError::BadStartLine);
        }
        let minor = parse_version(version).ok_or(HttpError::BadStartLine)?;
        Ok((method, target, minor))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Every offset, in order, whatever the length and alignment (the
        /// word scan pads the tail and must not report the padding).
        #[test]
        fn newlines_finds_what_a_byte_search_finds(
            bytes in proptest::collection::vec(
                proptest::sample::select(vec![b'\n', b'\r', b'a', 0u8, 0x0b, 0x8a, 0xff, 0x09]),
                0..80,
            ),
            skip in 0usize..8,
        ) {
            let hay = bytes.get(skip..).unwrap_or_default();
            let got: Vec<usize> = newlines(hay).collect();
            let want: Vec<usize> = memchr::memchr_iter(b'\n', hay).collect();
            proptest::prop_assert_eq!(got, want);
        }

        /// Request lines made of the pieces that matter (spaces, a version
        /// with a wrong byte, control bytes) parse exactly as the reference.
        #[test]
        fn request_line_agrees_with_the_reference(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "GET", " ", "/a", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.x",
                    "\t", "é", "P:", "", " HTTP/1.1",
                ]),
                0..7,
            )
        ) {
            let line = pieces.concat();
            proptest::prop_assert_eq!(
                parse_request_line(line.as_bytes()),
                reference_request_line(line.as_bytes()),
                "{:?}", line
            );
        }
    }

    #[test]
    fn newlines_on_words_and_tails() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n",
            b"abcdefg\n",
            b"abcdefgh\n",
            b"\n\n\n\n\n\n\n\n\n",
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"\x8a\x0a\x0b\x09\x00",
        ];
        for c in cases {
            let want: Vec<usize> = c
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i)
                .collect();
            assert_eq!(newlines(c).collect::<Vec<_>>(), want, "{c:?}");
        }
    }
}
