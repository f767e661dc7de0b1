//! HTTP/2 (RFC 9113) observed passively: both directions of one connection,
//! framing, HPACK, multiplexed streams, each request and response handed
//! over as an HTTP/1 [`Head`] so that a caller classifies an HTTP/2 stream
//! exactly as it classifies an HTTP/1.1 exchange.
//!
//! One [`H2Connection`] per TCP connection. [`H2Connection::feed`] takes the
//! contiguous unconsumed bytes of one direction (say which with [`Sender`]),
//! consumes what it can and emits [`H2Event`]s, each naming its stream; the
//! caller keeps the rest and calls again with more appended, as with
//! `http1::HttpStream::feed`. DATA payloads are consumed as they arrive;
//! other frames once complete, so the caller never holds more than
//! [`H2Limits::max_caller_buffer`] bytes of one direction. A connection
//! starts in one of two ways:
//! - [`H2Connection::new`]: prior knowledge (a cleartext connection whose
//!   client bytes begin with [`PREFACE`], see [`looks_like_preface`]) or TLS
//!   with ALPN `h2` (the same bytes once decrypted);
//! - [`H2Connection::after_upgrade`]: HTTP/1.1 `Upgrade: h2c` answered by
//!   `101`: the server's bytes after the 101 and the client's bytes after
//!   its upgraded request. Stream 1 is that request: its response arrives
//!   as HTTP/2 on stream 1 (the request itself is the caller's HTTP/1 head).
//!
//! What is read: the client preface; DATA, HEADERS, CONTINUATION, PRIORITY,
//! RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY and WINDOW_UPDATE frames
//! (unknown types are skipped, RFC 9113 §4.1); padding; HPACK blocks with a
//! dynamic table per direction kept in step ([`super::hpack`]), with the
//! receiver's SETTINGS_HEADER_TABLE_SIZE bounding size updates and its
//! SETTINGS_MAX_FRAME_SIZE bounding frames; informational (1xx) heads;
//! trailers; pushed requests. Bodies are de-coded (gzip/deflate) with the
//! HTTP/1 decoder ([`ContentDecoder`]): a `text/event-stream` body is
//! streamed (`StreamData`), any other one delivered whole (`Body`) at the
//! end of its stream, within bounds (`truncated` beyond them), exactly as
//! `http1` does.
//!
//! Heads: a request head has the method of `:method`, the target of `:path`
//! (`:authority` for CONNECT), every regular field in order, and a `host`
//! field with `:authority` when the block has no Host; a response head has
//! the status of `:status` (0 when absent or not three digits). Field names
//! are as sent (lower case in HTTP/2; look-ups are case-insensitive anyway).
//! `minor_version` is 1. Other pseudo-fields (`:scheme`, `:protocol`) are
//! not kept.
//!
//! Leniency (a sensor follows what real peers do, and only stops where it
//! could no longer follow): flow control is not tracked (WINDOW_UPDATE is
//! only checked for size); stream state is followed only as far as events
//! need it, so frames on closed, unknown or untracked streams are ignored
//! (counted) rather than errors, but their header blocks are still decoded
//! to keep HPACK in step; a SETTINGS_MAX_FRAME_SIZE outside the protocol
//! range is clamped; uppercase or connection-specific fields, pseudo-fields
//! after regular ones and a Content-Length that disagrees with the DATA are
//! accepted; HEADERS on a stream whose final head was seen are trailers,
//! with or without END_STREAM. The client's preface is required; the
//! server's first frame being SETTINGS is not.
//!
//! Errors: framing and HPACK errors cannot be recovered from (frame
//! boundaries or the compression context are lost), so any [`H2Error`]
//! stops the whole connection: both directions then return it from `feed`,
//! consuming nothing. As in `http1`, an error met after part of `data` was
//! consumed is returned by the next call ([`H2Connection::error`] tells at
//! once). A hole in the TCP stream ([`H2Connection::on_gap`]) is such an
//! error. Nothing on the wire can make the parser panic.
//!
//! Bounds against hostile peers (all in [`H2Limits`], each trip counted in
//! [`H2Stats`]): frame length (the receiver's SETTINGS_MAX_FRAME_SIZE, at
//! most `max_frame_size`); one header block's bytes and CONTINUATION frames
//! (the 2024 "CONTINUATION flood"); the HPACK dynamic table; the decoded
//! header list (fields beyond it are dropped, the head still delivered);
//! concurrent streams (further ones are not tracked: their events are lost,
//! counted) and total streams per connection; RST_STREAM from the client
//! before any response head (the 2023 "rapid reset"); buffered body bytes
//! per stream and per connection; decoded body size. [`H2Connection::held_bytes`]
//! reports the heap held for a memory budget.
//!
//! Not supported: a connection joined mid-way (the HPACK context is
//! unknown), server push beyond the pushed request head and its response,
//! RFC 8441 extended CONNECT (WebSockets over HTTP/2: the CONNECT head is
//! delivered, the tunnelled bytes come as body data), HTTP/3.

use rustc_hash::FxHashMap;

use super::hpack::{HpackDecoder, HpackError};
use super::http1::{ContentCoding, ContentDecoder, Head, HttpLimits, STREAM_MAX_RATIO};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header (RFC 9113 §4.1).
pub const FRAME_HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE before any SETTINGS, and its lowest legal value.
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// Largest SETTINGS frame read (2730 settings; real ones carry at most a dozen).
pub const MAX_SETTINGS_FRAME: usize = 16_384;
/// Largest frame length the protocol can express.
const PROTOCOL_MAX_FRAME_SIZE: u32 = (1 << 24) - 1;

const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;

const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// Names of the entries of [`H2Stats::frames`] (frame type codes 0..=9,
/// then every unknown type), for metric labels.
pub const FRAME_TYPE_NAMES: [&str; 11] = [
    "data",
    "headers",
    "priority",
    "rst_stream",
    "settings",
    "push_promise",
    "ping",
    "goaway",
    "window_update",
    "continuation",
    "unknown",
];

/// A header block buffer larger than this is released once decoded, rather
/// than kept for the next block.
const KEEP_BLOCK_BUFFER: usize = 16 * 1024;

/// Cheap probe on the first client bytes: they are (a prefix of) the
/// HTTP/2 client preface.
pub fn looks_like_preface(data: &[u8]) -> bool {
    if data.len() >= PREFACE.len() {
        data.starts_with(PREFACE)
    } else {
        !data.is_empty() && PREFACE.starts_with(data)
    }
}

/// Which end of the connection sent the bytes given to `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Client,
    Server,
}

impl Sender {
    fn idx(self) -> usize {
        match self {
            Sender::Client => 0,
            Sender::Server => 1,
        }
    }

    fn other(self) -> Self {
        match self {
            Sender::Client => Sender::Server,
            Sender::Server => Sender::Client,
        }
    }
}

/// Bounds on what one connection may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H2Limits {
    /// Highest SETTINGS_MAX_FRAME_SIZE honoured: a frame is an error above
    /// its receiver's setting (16,384 until one is seen) or above this.
    pub max_frame_size: u32,
    /// Bytes of one header block (HEADERS or PUSH_PROMISE and its
    /// CONTINUATIONs, padding excluded).
    pub max_header_block_bytes: usize,
    /// CONTINUATION frames in one header block.
    pub max_continuation_frames: u32,
    /// Decoded header list as RFC 9113 counts it (name + value + 32 per
    /// field); fields beyond are dropped.
    pub max_header_list_bytes: usize,
    /// Regular fields kept per head; more are dropped.
    pub max_headers: usize,
    /// HPACK dynamic table size per direction.
    pub max_table_size: usize,
    /// Streams followed at once; further new streams are not tracked.
    pub max_concurrent_streams: usize,
    /// Streams opened over the connection's life before it is an error.
    pub max_total_streams: u32,
    /// Streams the client resets before any response head, before it is an
    /// error (rapid reset).
    pub max_rapid_resets: u32,
    /// Body bytes (as received) kept per stream and direction.
    pub max_body_bytes: usize,
    /// Body bytes after Content-Encoding decoding, per stream and direction.
    pub max_decoded_bytes: usize,
    /// Body bytes kept over all streams of the connection.
    pub max_connection_body_bytes: usize,
}

impl Default for H2Limits {
    fn default() -> Self {
        Self {
            max_frame_size: 1 << 20,
            max_header_block_bytes: 64 * 1024,
            max_continuation_frames: 64,
            max_header_list_bytes: 64 * 1024,
            max_headers: 128,
            max_table_size: 64 * 1024,
            max_concurrent_streams: 128,
            max_total_streams: 100_000,
            max_rapid_resets: 1_000,
            max_body_bytes: 256 * 1024,
            max_decoded_bytes: 1024 * 1024,
            max_connection_body_bytes: 1024 * 1024,
        }
    }
}

impl H2Limits {
    /// Defaults, with the body and header-count bounds of the HTTP/1 parser.
    pub fn from_http(http: &HttpLimits) -> Self {
        Self {
            max_headers: http.max_headers,
            max_body_bytes: http.max_body_bytes,
            max_decoded_bytes: http.max_decoded_bytes,
            ..Self::default()
        }
    }

    /// Most bytes of one direction the caller may have to hold unconsumed
    /// (one complete non-DATA frame): a larger backlog cannot happen unless
    /// the parser failed.
    pub fn max_caller_buffer(&self) -> usize {
        FRAME_HEADER_LEN.saturating_add(self.max_header_block_bytes.max(MAX_SETTINGS_FRAME))
    }
}

/// What the parser found, in wire order per direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum H2Event {
    /// A request head (from the client) or a response head (from the
    /// server). A 1xx response head is followed by the final one.
    Head { stream: u32, head: Head },
    /// A trailer section (fields only).
    Trailers { stream: u32, head: Head },
    /// The server promised stream `promised` for this pushed request head;
    /// the pushed response comes as `Head` and body on `promised`.
    PushPromise {
        stream: u32,
        promised: u32,
        head: Head,
    },
    /// The whole body of a message (not an event stream), decoded;
    /// `truncated` when it exceeded a bound or its decoding failed.
    Body {
        stream: u32,
        data: Vec<u8>,
        truncated: bool,
    },
    /// Part of a `text/event-stream` body, decoded, as it arrived.
    StreamData { stream: u32, data: Vec<u8> },
    /// END_STREAM from this direction (or the connection closed under it).
    MessageEnd { stream: u32 },
    /// RST_STREAM on a followed stream: it is closed in both directions.
    Reset { stream: u32, code: u32 },
    /// GOAWAY: streams above `last_stream` were not processed.
    GoAway { last_stream: u32, code: u32 },
}

impl H2Event {
    /// The stream the event belongs to (none for GOAWAY).
    pub fn stream(&self) -> Option<u32> {
        match self {
            H2Event::Head { stream, .. }
            | H2Event::Trailers { stream, .. }
            | H2Event::PushPromise { stream, .. }
            | H2Event::Body { stream, .. }
            | H2Event::StreamData { stream, .. }
            | H2Event::MessageEnd { stream }
            | H2Event::Reset { stream, .. } => Some(*stream),
            H2Event::GoAway { .. } => None,
        }
    }
}

/// Why parsing of a connection stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum H2Error {
    #[error("client bytes do not begin with the HTTP/2 connection preface")]
    BadPreface,
    #[error("HTTP/2 frame of {len} bytes above the {max}-byte maximum")]
    FrameTooLarge { len: u32, max: u32 },
    #[error("malformed HTTP/2 {0} frame")]
    BadFrame(&'static str),
    #[error("HTTP/2 protocol error: {0}")]
    Protocol(&'static str),
    #[error("HPACK: {0}")]
    Hpack(#[from] HpackError),
    #[error("HTTP/2 header block above the size limit")]
    HeaderBlockTooLarge,
    #[error("HTTP/2 header block in more CONTINUATION frames than the limit")]
    TooManyContinuations,
    #[error("more HTTP/2 streams on one connection than the limit")]
    TooManyStreams,
    #[error("more HTTP/2 streams reset before their response than the limit")]
    RapidReset,
    #[error("hole in the TCP stream: HTTP/2 framing and HPACK state are lost")]
    Gap,
}

/// Counters of one connection (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct H2Stats {
    /// Frames by type, indexed as [`FRAME_TYPE_NAMES`].
    pub frames: [u32; 11],
    /// Streams opened by the client or promised by the server.
    pub streams_opened: u32,
    /// New streams not followed because `max_concurrent_streams` were open.
    pub streams_untracked: u32,
    /// Followed streams closed by RST_STREAM.
    pub streams_reset: u32,
    /// Heads delivered (requests, responses incl. 1xx, pushed requests).
    pub heads: u32,
    pub trailers: u32,
    pub goaways: u32,
    /// Bodies delivered with `truncated = true`.
    pub truncated_bodies: u32,
    /// Bodies delivered raw because their Content-Encoding is not decoded.
    pub undecoded_bodies: u32,
    /// Heads whose fields went past `max_header_list_bytes`/`max_headers`.
    pub truncated_header_lists: u32,
    /// Frames on closed, unknown or untracked streams, skipped.
    pub ignored_frames: u32,
    /// RST_STREAM from the client before a response head.
    pub rapid_resets: u32,
    /// Errors that stopped the connection (0 or 1), whatever their kind;
    /// the counters below tell the bound-related ones apart.
    pub errors: u32,
    pub oversized_frames: u32,
    /// Header blocks over `max_header_block_bytes` or
    /// `max_continuation_frames` (CONTINUATION flood).
    pub header_block_overflows: u32,
    /// HPACK size updates above `max_table_size`.
    pub hpack_table_overflows: u32,
    /// Any HPACK decoding error (the table overflow included).
    pub hpack_errors: u32,
    /// `max_total_streams` reached.
    pub stream_limit_trips: u32,
    /// `max_rapid_resets` reached.
    pub rapid_reset_trips: u32,
}

fn bump(c: &mut u32) {
    *c = c.saturating_add(1);
}

/// How far one direction of a stream has got.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No final head yet (1xx heads leave it here).
    #[default]
    Idle,
    /// Final head seen: DATA is body, HEADERS are trailers.
    Open,
    Ended,
}

#[derive(Debug, Default)]
struct Body {
    /// Deliver as `StreamData` rather than one `Body`.
    stream_mode: bool,
    /// Body bytes received, before decoding.
    raw_seen: usize,
    kept: Vec<u8>,
    truncated: bool,
    decoder: Option<Box<ContentDecoder>>,
}

#[derive(Debug, Default)]
struct Half {
    phase: Phase,
    body: Body,
}

#[derive(Debug, Default)]
struct Stream {
    halves: [Half; 2],
}

#[derive(Debug, Clone, Copy)]
enum BlockKind {
    Headers { end_stream: bool },
    PushPromise { promised: u32 },
}

/// A header block awaiting its CONTINUATION frames.
#[derive(Debug, Clone, Copy)]
struct Block {
    stream: u32,
    kind: BlockKind,
    continuations: u32,
}

#[derive(Debug, Clone, Copy)]
enum Read {
    /// At a frame boundary.
    Frame,
    /// Inside a DATA frame: content bytes, then padding bytes.
    Data {
        stream: u32,
        content: u32,
        pad: u32,
        end_stream: bool,
    },
    /// Inside a frame whose remaining bytes are not needed.
    Skip { left: u32 },
}

/// One direction's framing and compression state.
#[derive(Debug)]
struct Dir {
    hpack: HpackDecoder,
    await_preface: bool,
    read: Read,
    block: Option<Block>,
    block_buf: Vec<u8>,
    /// The receiver's SETTINGS_MAX_FRAME_SIZE, clamped.
    max_frame: u32,
}

impl Dir {
    fn new(limits: &H2Limits, await_preface: bool) -> Self {
        Self {
            hpack: HpackDecoder::new(limits.max_table_size),
            await_preface,
            read: Read::Frame,
            block: None,
            block_buf: Vec::new(),
            max_frame: DEFAULT_MAX_FRAME_SIZE
                .min(limits.max_frame_size.max(DEFAULT_MAX_FRAME_SIZE)),
        }
    }
}

/// Both directions of one HTTP/2 connection.
#[derive(Debug)]
pub struct H2Connection {
    limits: H2Limits,
    dirs: [Dir; 2],
    streams: FxHashMap<u32, Stream>,
    /// Highest stream the client opened: a HEADERS on a lower, unknown one
    /// belongs to a closed or untracked stream.
    last_client_stream: u32,
    failed: Option<H2Error>,
    /// Body bytes kept over all streams.
    body_bytes: usize,
    stats: H2Stats,
}

impl H2Connection {
    /// A connection seen from its start (prior knowledge, or TLS with ALPN
    /// `h2`): the client's bytes must begin with [`PREFACE`].
    pub fn new(limits: H2Limits) -> Self {
        Self {
            dirs: [Dir::new(&limits, true), Dir::new(&limits, false)],
            limits,
            streams: FxHashMap::default(),
            last_client_stream: 0,
            failed: None,
            body_bytes: 0,
            stats: H2Stats::default(),
        }
    }

    /// A connection switched from HTTP/1.1 by `Upgrade: h2c` and `101`:
    /// `request` is the upgraded request head, whose `HTTP2-Settings`
    /// (base64url SETTINGS payload, RFC 7540 §3.2.1) are the client's
    /// initial settings (ignored when malformed). Feed the server's bytes
    /// after the 101 and the client's bytes after the request: stream 1 is
    /// open with the request already complete, and its response comes as
    /// `Head` on stream 1.
    pub fn after_upgrade(limits: H2Limits, request: &Head) -> Self {
        use base64::Engine as _;
        const URL_SAFE_LENIENT: base64::engine::GeneralPurpose =
            base64::engine::GeneralPurpose::new(
                &base64::alphabet::URL_SAFE,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
                    .with_decode_allow_trailing_bits(true),
            );
        let mut c = Self::new(limits);
        if let Some(v) = request.header("http2-settings")
            && let Ok(payload) = URL_SAFE_LENIENT.decode(v.trim())
            && payload.len() % 6 == 0
            && payload.len() <= MAX_SETTINGS_FRAME
        {
            c.apply_settings(Sender::Client, &payload);
        }
        let mut s = Stream::default();
        s.halves[Sender::Client.idx()].phase = Phase::Ended;
        c.streams.insert(1, s);
        c.last_client_stream = 1;
        c.stats.streams_opened = 1;
        c
    }

    pub fn limits(&self) -> H2Limits {
        self.limits
    }

    pub fn stats(&self) -> H2Stats {
        self.stats
    }

    /// The error that stopped the connection, if any.
    pub fn error(&self) -> Option<H2Error> {
        self.failed
    }

    /// Streams followed now.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Heap bytes held (HPACK tables, header block buffers, streams, kept
    /// bodies, content decoders), for the caller's memory budget.
    pub fn held_bytes(&self) -> usize {
        let dirs: usize = self
            .dirs
            .iter()
            .map(|d| d.hpack.held_bytes().saturating_add(d.block_buf.capacity()))
            .sum();
        let slots = self
            .streams
            .capacity()
            .saturating_mul(std::mem::size_of::<(u32, Stream)>());
        let bodies: usize = self
            .streams
            .values()
            .flat_map(|s| s.halves.iter())
            .map(|h| {
                let dec = if h.body.decoder.is_some() {
                    super::DECODER_BYTES
                } else {
                    0
                };
                h.body.kept.capacity().saturating_add(dec)
            })
            .sum();
        dirs.saturating_add(slots).saturating_add(bodies)
    }

    /// Feed contiguous bytes sent by `from`. Returns how many were consumed;
    /// the caller keeps the rest and calls again with more data appended.
    /// An error met after some progress is returned by the next call (see
    /// [`H2Connection::error`]).
    pub fn feed(
        &mut self,
        from: Sender,
        data: &[u8],
        out: &mut Vec<H2Event>,
    ) -> Result<usize, H2Error> {
        let out_start = out.len();
        let mut pos = 0usize;
        loop {
            if let Some(e) = self.failed {
                return if pos == 0 { Err(e) } else { Ok(pos) };
            }
            let rest = data.get(pos..).unwrap_or_default();
            match self.step(from, rest, out, out_start) {
                Ok(0) => return Ok(pos),
                Ok(n) => pos = pos.saturating_add(n),
                Err(e) => {
                    self.fail(e);
                    return if pos == 0 { Err(e) } else { Ok(pos) };
                }
            }
        }
    }

    /// A hole in either direction's TCP stream: parsing cannot go on.
    pub fn on_gap(&mut self) {
        if self.failed.is_none() {
            self.failed = Some(H2Error::Gap);
            self.release();
        }
    }

    /// End of the connection: every followed stream still open ends, a
    /// buffered body delivered as `Body { truncated: true }` first.
    pub fn on_close(&mut self, out: &mut Vec<H2Event>) {
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            for from in [Sender::Client, Sender::Server] {
                let open = self
                    .streams
                    .get(&id)
                    .is_some_and(|s| s.halves[from.idx()].phase == Phase::Open);
                if open {
                    if let Some(h) = self.half_mut(id, from) {
                        h.body.truncated = true;
                    }
                    self.end_half(id, from, None, out, out.len());
                }
            }
        }
        self.streams.clear();
        self.body_bytes = 0;
    }

    fn fail(&mut self, e: H2Error) {
        self.failed = Some(e);
        let s = &mut self.stats;
        bump(&mut s.errors);
        match e {
            H2Error::FrameTooLarge { .. } => bump(&mut s.oversized_frames),
            H2Error::HeaderBlockTooLarge | H2Error::TooManyContinuations => {
                bump(&mut s.header_block_overflows)
            }
            H2Error::TooManyStreams => bump(&mut s.stream_limit_trips),
            H2Error::RapidReset => bump(&mut s.rapid_reset_trips),
            H2Error::Hpack(h) => {
                bump(&mut s.hpack_errors);
                if matches!(h, HpackError::TableSizeOverCap(..)) {
                    bump(&mut s.hpack_table_overflows);
                }
            }
            _ => {}
        }
        self.release();
    }

    /// Free what a stopped connection holds.
    fn release(&mut self) {
        self.streams = FxHashMap::default();
        self.body_bytes = 0;
        for d in &mut self.dirs {
            d.block_buf = Vec::new();
            d.block = None;
            d.hpack = HpackDecoder::new(0);
        }
    }

    /// One step: the number of bytes consumed, 0 when more are needed.
    fn step(
        &mut self,
        from: Sender,
        rest: &[u8],
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<usize, H2Error> {
        let d = from.idx();
        if self.dirs[d].await_preface {
            let n = rest.len().min(PREFACE.len());
            if rest.get(..n) != PREFACE.get(..n) {
                return Err(H2Error::BadPreface);
            }
            if n < PREFACE.len() {
                return Ok(0);
            }
            self.dirs[d].await_preface = false;
            return Ok(n);
        }
        match self.dirs[d].read {
            Read::Frame => self.step_frame(from, rest, out, out_start),
            Read::Skip { left } => {
                let n = rest.len().min(left as usize);
                let left = left - n as u32;
                self.dirs[d].read = if left == 0 {
                    Read::Frame
                } else {
                    Read::Skip { left }
                };
                Ok(n)
            }
            Read::Data {
                stream,
                content,
                pad,
                end_stream,
            } => {
                let n;
                let (content, pad) = if content > 0 {
                    n = rest.len().min(content as usize);
                    self.on_body(
                        from,
                        stream,
                        rest.get(..n).unwrap_or_default(),
                        out,
                        out_start,
                    );
                    (content - n as u32, pad)
                } else {
                    n = rest.len().min(pad as usize);
                    (content, pad - n as u32)
                };
                if n == 0 {
                    return Ok(0);
                }
                self.dirs[d].read = Read::Data {
                    stream,
                    content,
                    pad,
                    end_stream,
                };
                if content == 0 && pad == 0 {
                    self.data_frame_done(from, stream, end_stream, out, out_start);
                }
                Ok(n)
            }
        }
    }

    fn data_frame_done(
        &mut self,
        from: Sender,
        stream: u32,
        end_stream: bool,
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) {
        self.dirs[from.idx()].read = Read::Frame;
        if end_stream {
            self.end_half(stream, from, None, out, out_start);
        }
    }

    fn step_frame(
        &mut self,
        from: Sender,
        rest: &[u8],
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<usize, H2Error> {
        let Some(hdr) = rest.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(0);
        };
        let len = u32::from_be_bytes([0, hdr[0], hdr[1], hdr[2]]);
        let ty = hdr[3];
        let flags = hdr[4];
        let sid = u32::from_be_bytes([hdr[5], hdr[6], hdr[7], hdr[8]]) & 0x7fff_ffff;
        let d = from.idx();
        let max = self.dirs[d].max_frame;
        if len > max {
            return Err(H2Error::FrameTooLarge { len, max });
        }
        if let Some(b) = self.dirs[d].block
            && (ty != CONTINUATION || sid != b.stream)
        {
            return Err(H2Error::Protocol(
                "frame other than CONTINUATION in a header block",
            ));
        }
        let len_us = len as usize;
        // Whole-frame types: the size checks come before waiting for the
        // payload, so the caller never buffers an oversized frame.
        match ty {
            DATA => {
                if sid == 0 {
                    return Err(H2Error::Protocol("DATA on stream 0"));
                }
                let mut used = FRAME_HEADER_LEN;
                let mut pad = 0u32;
                if flags & FLAG_PADDED != 0 {
                    let Some(&p) = rest.get(FRAME_HEADER_LEN) else {
                        return Ok(0);
                    };
                    pad = u32::from(p);
                    if len == 0 || pad > len - 1 {
                        return Err(H2Error::Protocol("DATA padding exceeds the frame"));
                    }
                    used += 1;
                }
                self.count_frame(ty);
                let content = len - (used - FRAME_HEADER_LEN) as u32 - pad;
                let end_stream = flags & FLAG_END_STREAM != 0;
                if !self.accepts_body(sid, from) {
                    bump(&mut self.stats.ignored_frames);
                }
                if content == 0 && pad == 0 {
                    self.data_frame_done(from, sid, end_stream, out, out_start);
                } else {
                    self.dirs[d].read = Read::Data {
                        stream: sid,
                        content,
                        pad,
                        end_stream,
                    };
                }
                return Ok(used);
            }
            HEADERS | PUSH_PROMISE | CONTINUATION => {
                if len_us > self.limits.max_header_block_bytes {
                    return Err(H2Error::HeaderBlockTooLarge);
                }
            }
            PRIORITY => check_len(len, 5, "PRIORITY")?,
            RST_STREAM => check_len(len, 4, "RST_STREAM")?,
            PING => check_len(len, 8, "PING")?,
            WINDOW_UPDATE => check_len(len, 4, "WINDOW_UPDATE")?,
            SETTINGS => {
                let ack = flags & FLAG_ACK != 0;
                if (ack && len != 0) || !len.is_multiple_of(6) || len_us > MAX_SETTINGS_FRAME {
                    return Err(H2Error::BadFrame("SETTINGS"));
                }
            }
            GOAWAY => {
                if len < 8 {
                    return Err(H2Error::BadFrame("GOAWAY"));
                }
                // Only the fixed part is read; debug data is skipped.
                let Some((last, code)) = rest
                    .get(FRAME_HEADER_LEN..)
                    .and_then(|r| r.first_chunk::<8>())
                    .map(|f| f.split_at(4))
                else {
                    return Ok(0);
                };
                if sid != 0 {
                    return Err(H2Error::Protocol("GOAWAY on a stream"));
                }
                self.count_frame(ty);
                let last_stream = be_u32(last) & 0x7fff_ffff;
                let code = be_u32(code);
                bump(&mut self.stats.goaways);
                out.push(H2Event::GoAway { last_stream, code });
                if len > 8 {
                    self.dirs[d].read = Read::Skip { left: len - 8 };
                }
                return Ok(FRAME_HEADER_LEN + 8);
            }
            _ => {
                self.count_frame(ty);
                if len > 0 {
                    self.dirs[d].read = Read::Skip { left: len };
                }
                return Ok(FRAME_HEADER_LEN);
            }
        }
        let total = FRAME_HEADER_LEN + len_us;
        let Some(payload) = rest.get(FRAME_HEADER_LEN..total) else {
            return Ok(0);
        };
        self.count_frame(ty);
        match ty {
            HEADERS => self.on_headers(from, sid, flags, payload, out, out_start)?,
            PUSH_PROMISE => self.on_push_promise(from, sid, flags, payload, out, out_start)?,
            CONTINUATION => self.on_continuation(from, sid, flags, payload, out, out_start)?,
            PRIORITY | RST_STREAM if sid == 0 => {
                return Err(H2Error::Protocol("stream frame on stream 0"));
            }
            RST_STREAM => {
                let code = be_u32(payload);
                self.on_reset(from, sid, code, out, out_start)?;
            }
            SETTINGS | PING if sid != 0 => {
                return Err(H2Error::Protocol("connection frame on a stream"));
            }
            SETTINGS if flags & FLAG_ACK == 0 => self.apply_settings(from, payload),
            _ => {}
        }
        Ok(total)
    }

    fn count_frame(&mut self, ty: u8) {
        let i = usize::from(ty).min(FRAME_TYPE_NAMES.len() - 1);
        if let Some(c) = self.stats.frames.get_mut(i) {
            bump(c);
        }
    }

    fn half_mut(&mut self, sid: u32, from: Sender) -> Option<&mut Half> {
        self.streams
            .get_mut(&sid)
            .map(|s| &mut s.halves[from.idx()])
    }

    fn accepts_body(&self, sid: u32, from: Sender) -> bool {
        self.streams
            .get(&sid)
            .is_some_and(|s| s.halves[from.idx()].phase == Phase::Open)
    }

    /// SETTINGS sent by `from` govern what the other side sends.
    fn apply_settings(&mut self, from: Sender, payload: &[u8]) {
        let to = from.other().idx();
        let cap = self.limits.max_frame_size.max(DEFAULT_MAX_FRAME_SIZE);
        for s in payload.chunks_exact(6) {
            let (id, value) = s.split_at(2);
            let id = id.first_chunk::<2>().map_or(0, |b| u16::from_be_bytes(*b));
            let value = be_u32(value);
            match id {
                SETTINGS_HEADER_TABLE_SIZE => self.dirs[to].hpack.set_allowed(value as usize),
                SETTINGS_MAX_FRAME_SIZE => {
                    self.dirs[to].max_frame = value
                        .clamp(DEFAULT_MAX_FRAME_SIZE, PROTOCOL_MAX_FRAME_SIZE)
                        .min(cap);
                }
                _ => {}
            }
        }
    }

    fn on_headers(
        &mut self,
        from: Sender,
        sid: u32,
        flags: u8,
        payload: &[u8],
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<(), H2Error> {
        if sid == 0 {
            return Err(H2Error::Protocol("HEADERS on stream 0"));
        }
        let mut p = payload;
        let pad = if flags & FLAG_PADDED != 0 {
            let (&n, r) = p.split_first().ok_or(H2Error::BadFrame("HEADERS"))?;
            p = r;
            usize::from(n)
        } else {
            0
        };
        if flags & FLAG_PRIORITY != 0 {
            p = p.get(5..).ok_or(H2Error::BadFrame("HEADERS"))?;
        }
        let frag = p
            .get(
                ..p.len()
                    .checked_sub(pad)
                    .ok_or(H2Error::Protocol("HEADERS padding exceeds the frame"))?,
            )
            .unwrap_or_default();
        let kind = BlockKind::Headers {
            end_stream: flags & FLAG_END_STREAM != 0,
        };
        self.start_block(from, sid, kind, frag, flags, out, out_start)
    }

    fn on_push_promise(
        &mut self,
        from: Sender,
        sid: u32,
        flags: u8,
        payload: &[u8],
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<(), H2Error> {
        if sid == 0 || from == Sender::Client {
            return Err(H2Error::Protocol(
                "PUSH_PROMISE from the client or on stream 0",
            ));
        }
        let mut p = payload;
        let pad = if flags & FLAG_PADDED != 0 {
            let (&n, r) = p.split_first().ok_or(H2Error::BadFrame("PUSH_PROMISE"))?;
            p = r;
            usize::from(n)
        } else {
            0
        };
        let (id, p) = p
            .split_first_chunk::<4>()
            .ok_or(H2Error::BadFrame("PUSH_PROMISE"))?;
        let promised = u32::from_be_bytes(*id) & 0x7fff_ffff;
        let frag = p
            .get(
                ..p.len()
                    .checked_sub(pad)
                    .ok_or(H2Error::Protocol("PUSH_PROMISE padding exceeds the frame"))?,
            )
            .unwrap_or_default();
        self.start_block(
            from,
            sid,
            BlockKind::PushPromise { promised },
            frag,
            flags,
            out,
            out_start,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn start_block(
        &mut self,
        from: Sender,
        sid: u32,
        kind: BlockKind,
        frag: &[u8],
        flags: u8,
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<(), H2Error> {
        let d = &mut self.dirs[from.idx()];
        d.block_buf.clear();
        d.block_buf.extend_from_slice(frag);
        d.block = Some(Block {
            stream: sid,
            kind,
            continuations: 0,
        });
        if flags & FLAG_END_HEADERS != 0 {
            self.end_block(from, out, out_start)?;
        }
        Ok(())
    }

    fn on_continuation(
        &mut self,
        from: Sender,
        sid: u32,
        flags: u8,
        payload: &[u8],
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<(), H2Error> {
        let limits = self.limits;
        let d = &mut self.dirs[from.idx()];
        let Some(b) = d.block.as_mut() else {
            return Err(H2Error::Protocol("CONTINUATION without a header block"));
        };
        if b.stream != sid {
            return Err(H2Error::Protocol("CONTINUATION on another stream"));
        }
        b.continuations = b.continuations.saturating_add(1);
        if b.continuations > limits.max_continuation_frames {
            return Err(H2Error::TooManyContinuations);
        }
        if d.block_buf.len().saturating_add(payload.len()) > limits.max_header_block_bytes {
            return Err(H2Error::HeaderBlockTooLarge);
        }
        d.block_buf.extend_from_slice(payload);
        if flags & FLAG_END_HEADERS != 0 {
            self.end_block(from, out, out_start)?;
        }
        Ok(())
    }

    /// A complete header block: decode it (always, to keep HPACK in step),
    /// then deliver it if its stream is followed.
    fn end_block(
        &mut self,
        from: Sender,
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<(), H2Error> {
        let limits = self.limits;
        let d = &mut self.dirs[from.idx()];
        let Some(block) = d.block.take() else {
            return Ok(());
        };
        let mut builder = HeadBuilder::new(&limits);
        let decoded = d.hpack.decode(&d.block_buf, |n, v| builder.field(n, v));
        if d.block_buf.capacity() > KEEP_BLOCK_BUFFER {
            d.block_buf = Vec::new();
        } else {
            d.block_buf.clear();
        }
        decoded?;
        if builder.truncated {
            bump(&mut self.stats.truncated_header_lists);
        }
        let sid = block.stream;
        match block.kind {
            BlockKind::PushPromise { promised } => {
                if promised == 0 || self.streams.contains_key(&promised) {
                    bump(&mut self.stats.ignored_frames);
                    return Ok(());
                }
                if self.open_stream(promised)? {
                    if let Some(h) = self.half_mut(promised, Sender::Client) {
                        h.phase = Phase::Ended;
                    }
                    bump(&mut self.stats.heads);
                    out.push(H2Event::PushPromise {
                        stream: sid,
                        promised,
                        head: builder.finish(true),
                    });
                }
                Ok(())
            }
            BlockKind::Headers { end_stream } => {
                if !self.streams.contains_key(&sid) {
                    let new =
                        from == Sender::Client && sid > self.last_client_stream && sid % 2 == 1;
                    if !new {
                        bump(&mut self.stats.ignored_frames);
                        return Ok(());
                    }
                    self.last_client_stream = sid;
                    if !self.open_stream(sid)? {
                        return Ok(());
                    }
                }
                let stats = &mut self.stats;
                let Some(stream) = self.streams.get_mut(&sid) else {
                    return Ok(());
                };
                let half = &mut stream.halves[from.idx()];
                match half.phase {
                    Phase::Idle => {
                        let head = builder.finish(from == Sender::Client);
                        let interim = from == Sender::Server
                            && (100..200).contains(&head.status)
                            && !end_stream;
                        if !interim {
                            half.phase = Phase::Open;
                            let (body, supported) = body_for(&head);
                            half.body = body;
                            if !supported {
                                bump(&mut stats.undecoded_bodies);
                            }
                        }
                        bump(&mut stats.heads);
                        out.push(H2Event::Head { stream: sid, head });
                    }
                    Phase::Open => {
                        bump(&mut stats.trailers);
                        let head = builder.finish_trailers();
                        if end_stream {
                            // After the buffered body, which ends here.
                            self.end_half(sid, from, Some(head), out, out_start);
                            return Ok(());
                        }
                        out.push(H2Event::Trailers { stream: sid, head });
                    }
                    Phase::Ended => {
                        bump(&mut stats.ignored_frames);
                        return Ok(());
                    }
                }
                if end_stream {
                    self.end_half(sid, from, None, out, out_start);
                }
                Ok(())
            }
        }
    }

    /// Count a new stream and follow it if there is room; false when it is
    /// not followed.
    fn open_stream(&mut self, sid: u32) -> Result<bool, H2Error> {
        bump(&mut self.stats.streams_opened);
        if self.stats.streams_opened > self.limits.max_total_streams {
            return Err(H2Error::TooManyStreams);
        }
        if self.streams.len() >= self.limits.max_concurrent_streams {
            bump(&mut self.stats.streams_untracked);
            return Ok(false);
        }
        self.streams.insert(sid, Stream::default());
        Ok(true)
    }

    fn on_reset(
        &mut self,
        from: Sender,
        sid: u32,
        code: u32,
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) -> Result<(), H2Error> {
        if from == Sender::Client {
            let answered = self
                .streams
                .get(&sid)
                .is_some_and(|s| s.halves[Sender::Server.idx()].phase != Phase::Idle);
            if !answered {
                bump(&mut self.stats.rapid_resets);
                if self.stats.rapid_resets > self.limits.max_rapid_resets {
                    return Err(H2Error::RapidReset);
                }
            }
        }
        let Some(_) = self.streams.get(&sid) else {
            return Ok(());
        };
        // A body cut short by the reset is still worth classifying.
        for side in [Sender::Client, Sender::Server] {
            if let Some(h) = self.half_mut(sid, side)
                && h.phase == Phase::Open
                && !h.body.stream_mode
                && h.body.raw_seen > 0
            {
                h.body.truncated = true;
                let body = std::mem::take(&mut h.body);
                self.deliver_body(sid, body, out, out_start);
            }
        }
        if let Some(s) = self.streams.remove(&sid) {
            for h in &s.halves {
                self.body_bytes = self.body_bytes.saturating_sub(h.body.kept.len());
            }
        }
        bump(&mut self.stats.streams_reset);
        out.push(H2Event::Reset { stream: sid, code });
        Ok(())
    }

    /// Body bytes of a DATA frame.
    fn on_body(
        &mut self,
        from: Sender,
        sid: u32,
        bytes: &[u8],
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) {
        let limits = self.limits;
        let Some(stream) = self.streams.get_mut(&sid) else {
            return;
        };
        let half = &mut stream.halves[from.idx()];
        if half.phase != Phase::Open {
            return;
        }
        let b = &mut half.body;
        b.raw_seen = b.raw_seen.saturating_add(bytes.len());
        if b.stream_mode {
            let mut decoded = Vec::new();
            let data: &[u8] = match b.decoder.as_mut() {
                Some(dec) => {
                    let budget = limits
                        .max_decoded_bytes
                        .saturating_add(b.raw_seen.saturating_mul(STREAM_MAX_RATIO));
                    if !dec.push(bytes, budget, &mut decoded) {
                        b.truncated = true;
                    }
                    &decoded
                }
                None => bytes,
            };
            push_stream(out, out_start, sid, data);
            return;
        }
        let before = b.kept.len();
        let conn_room = limits
            .max_connection_body_bytes
            .saturating_sub(self.body_bytes);
        let room = limits
            .max_body_bytes
            .saturating_sub(b.raw_seen.saturating_sub(bytes.len()));
        let take = bytes.get(..bytes.len().min(room)).unwrap_or_default();
        if take.len() < bytes.len() {
            b.truncated = true;
        }
        if !take.is_empty() {
            match b.decoder.as_mut() {
                Some(dec) => {
                    let limit = limits
                        .max_decoded_bytes
                        .min(before.saturating_add(conn_room));
                    if !dec.push(take, limit, &mut b.kept) {
                        b.truncated = true;
                    }
                }
                None => {
                    let fit = take.get(..take.len().min(conn_room)).unwrap_or_default();
                    if fit.len() < take.len() {
                        b.truncated = true;
                    }
                    b.kept.extend_from_slice(fit);
                }
            }
        }
        self.body_bytes = self
            .body_bytes
            .saturating_add(b.kept.len().saturating_sub(before));
    }

    /// END_STREAM from `from` on `sid`: deliver the body, the trailers that
    /// carried the END_STREAM if any, and `MessageEnd`; forget the stream
    /// once both directions ended.
    fn end_half(
        &mut self,
        sid: u32,
        from: Sender,
        trailers: Option<Head>,
        out: &mut Vec<H2Event>,
        out_start: usize,
    ) {
        let limits = self.limits;
        let Some(half) = self.half_mut(sid, from) else {
            return;
        };
        if half.phase != Phase::Open {
            // END_STREAM before any head (malformed) or twice.
            if half.phase == Phase::Idle {
                half.phase = Phase::Ended;
            }
            self.forget_if_done(sid);
            return;
        }
        half.phase = Phase::Ended;
        let mut body = std::mem::take(&mut half.body);
        if let Some(dec) = body.decoder.as_mut() {
            if body.stream_mode {
                let budget = limits
                    .max_decoded_bytes
                    .saturating_add(body.raw_seen.saturating_mul(STREAM_MAX_RATIO));
                let mut tail = Vec::new();
                if !dec.finish(budget, &mut tail) {
                    body.truncated = true;
                }
                push_stream(out, out_start, sid, &tail);
            } else if body.raw_seen > 0 && !dec.finish(limits.max_decoded_bytes, &mut body.kept) {
                body.truncated = true;
            }
        }
        if body.stream_mode && body.truncated {
            bump(&mut self.stats.truncated_bodies);
        }
        self.deliver_body(sid, body, out, out_start);
        if let Some(head) = trailers {
            out.push(H2Event::Trailers { stream: sid, head });
        }
        out.push(H2Event::MessageEnd { stream: sid });
        self.forget_if_done(sid);
    }

    /// Emit a buffered body (if any bytes came) and release its count.
    fn deliver_body(&mut self, sid: u32, body: Body, out: &mut Vec<H2Event>, _out_start: usize) {
        self.body_bytes = self.body_bytes.saturating_sub(body.kept.len());
        if body.stream_mode || body.raw_seen == 0 {
            return;
        }
        if body.truncated {
            bump(&mut self.stats.truncated_bodies);
        }
        out.push(H2Event::Body {
            stream: sid,
            data: body.kept,
            truncated: body.truncated,
        });
    }

    fn forget_if_done(&mut self, sid: u32) {
        if self
            .streams
            .get(&sid)
            .is_some_and(|s| s.halves.iter().all(|h| h.phase == Phase::Ended))
        {
            self.streams.remove(&sid);
        }
    }
}

/// The big-endian u32 at the start of `b` (0 when shorter: callers have
/// checked the length).
fn be_u32(b: &[u8]) -> u32 {
    b.first_chunk::<4>().map_or(0, |c| u32::from_be_bytes(*c))
}

fn check_len(len: u32, want: u32, name: &'static str) -> Result<(), H2Error> {
    if len == want {
        Ok(())
    } else {
        Err(H2Error::BadFrame(name))
    }
}

/// Body state for a message with this head, and whether its
/// Content-Encoding is one that is decoded.
fn body_for(head: &Head) -> (Body, bool) {
    let stream_mode = head.header("content-type").is_some_and(|v| {
        v.split(';')
            .next()
            .unwrap_or_default()
            .trim_matches([' ', '\t'])
            .eq_ignore_ascii_case("text/event-stream")
    });
    let (decoder, supported) = match ContentDecoder::for_head(head) {
        ContentCoding::Decode(d) => (Some(Box::new(d)), true),
        ContentCoding::Identity => (None, true),
        ContentCoding::Unsupported => (None, false),
    };
    let body = Body {
        stream_mode,
        decoder,
        ..Body::default()
    };
    (body, supported)
}

/// Append streamed bytes, merging with the previous event of this `feed`
/// call when it is `StreamData` of the same stream.
fn push_stream(out: &mut Vec<H2Event>, out_start: usize, sid: u32, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    if out.len() > out_start
        && let Some(H2Event::StreamData { stream, data: prev }) = out.last_mut()
        && *stream == sid
    {
        prev.extend_from_slice(data);
        return;
    }
    out.push(H2Event::StreamData {
        stream: sid,
        data: data.to_vec(),
    });
}

/// Builds a [`Head`] from decoded fields, pseudo-fields apart, within the
/// header list bounds.
struct HeadBuilder {
    head: Head,
    method: Option<Vec<u8>>,
    path: Option<Vec<u8>>,
    authority: Option<Vec<u8>>,
    status: u16,
    has_host: bool,
    list_bytes: usize,
    fields: usize,
    max_list: usize,
    max_fields: usize,
    truncated: bool,
}

impl HeadBuilder {
    fn new(limits: &H2Limits) -> Self {
        Self {
            head: Head::default(),
            method: None,
            path: None,
            authority: None,
            status: 0,
            has_host: false,
            list_bytes: 0,
            fields: 0,
            max_list: limits.max_header_list_bytes,
            max_fields: limits.max_headers,
            truncated: false,
        }
    }

    fn field(&mut self, name: &[u8], value: &[u8]) {
        self.list_bytes = self
            .list_bytes
            .saturating_add(name.len())
            .saturating_add(value.len())
            .saturating_add(32);
        if self.list_bytes > self.max_list {
            self.truncated = true;
            return;
        }
        if name.first() == Some(&b':') {
            match name {
                b":method" => self.method = Some(value.to_vec()),
                b":path" => self.path = Some(value.to_vec()),
                b":authority" => self.authority = Some(value.to_vec()),
                b":status" => {
                    self.status = match value {
                        [a, b, c] if value.iter().all(u8::is_ascii_digit) => {
                            u16::from(a - b'0') * 100
                                + u16::from(b - b'0') * 10
                                + u16::from(c - b'0')
                        }
                        _ => 0,
                    }
                }
                _ => {}
            }
            return;
        }
        if self.fields >= self.max_fields {
            self.truncated = true;
            return;
        }
        self.fields += 1;
        if name.eq_ignore_ascii_case(b"host") {
            self.has_host = true;
        }
        self.head.push_header(
            &String::from_utf8_lossy(name),
            &String::from_utf8_lossy(value),
        );
    }

    fn finish(mut self, request: bool) -> Head {
        self.head.minor_version = 1;
        if request {
            let method = self.method.as_deref().unwrap_or_default();
            let target = match &self.path {
                Some(p) => p.as_slice(),
                None => self.authority.as_deref().unwrap_or_default(),
            };
            self.head.set_request_line(
                &String::from_utf8_lossy(method),
                &String::from_utf8_lossy(target),
            );
            if !self.has_host
                && let Some(a) = &self.authority
            {
                self.head.push_header("host", &String::from_utf8_lossy(a));
            }
        } else {
            self.head.status = self.status;
        }
        self.head
    }

    fn finish_trailers(mut self) -> Head {
        self.head.minor_version = 1;
        self.head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::hpack::encode_int;
    use crate::proto::hpack::test_encoder::Encoder;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    type Ev = H2Event;

    fn frame(ty: u8, flags: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.push(ty);
        f.push(flags);
        f.extend_from_slice(&sid.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn block(enc: &mut Encoder, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        for (n, v) in fields {
            enc.field(&mut b, n.as_bytes(), v.as_bytes(), 0x1c);
        }
        b
    }

    const END: u8 = FLAG_END_STREAM | FLAG_END_HEADERS;

    fn client_start() -> Vec<u8> {
        let mut c = PREFACE.to_vec();
        c.extend(frame(SETTINGS, 0, 0, &[]));
        c
    }

    /// Feed like the engine: append each segment to what is unconsumed.
    fn feed_split(
        conn: &mut H2Connection,
        from: Sender,
        bytes: &[u8],
        seg: usize,
    ) -> (Vec<Ev>, Option<H2Error>) {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        let mut err = None;
        for chunk in bytes.chunks(seg.max(1)) {
            pending.extend_from_slice(chunk);
            match conn.feed(from, &pending, &mut out) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
            assert!(pending.len() <= conn.limits().max_caller_buffer() + seg);
        }
        if err.is_none() {
            err = conn.error();
        }
        (out, err)
    }

    fn feed(conn: &mut H2Connection, from: Sender, bytes: &[u8]) -> Vec<Ev> {
        let (ev, err) = feed_split(conn, from, bytes, bytes.len());
        assert_eq!(err, None, "events so far: {ev:?}");
        ev
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const BODY: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#;

    /// A POST and its gzip-encoded response, as two byte streams.
    fn exchange() -> (Vec<u8>, Vec<u8>) {
        let mut ce = Encoder::default();
        let mut c = client_start();
        let req = block(
            &mut ce,
            &[
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/mcp"),
                (":authority", "mcp.example.com"),
                ("content-type", "application/json"),
                ("mcp-protocol-version", "2025-06-18"),
            ],
        );
        c.extend(frame(HEADERS, FLAG_END_HEADERS, 1, &req));
        c.extend(frame(DATA, FLAG_END_STREAM, 1, BODY));
        let mut se = Encoder::default();
        let mut s = frame(SETTINGS, 0, 0, &[]);
        s.extend(frame(SETTINGS, FLAG_ACK, 0, &[]));
        let resp = block(
            &mut se,
            &[
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
        );
        s.extend(frame(HEADERS, FLAG_END_HEADERS, 1, &resp));
        let z = gzip(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let (a, b) = z.split_at(z.len() / 2);
        s.extend(frame(DATA, 0, 1, a));
        s.extend(frame(DATA, FLAG_END_STREAM, 1, b));
        (c, s)
    }

    #[test]
    fn a_request_and_its_gzip_response_become_heads_and_bodies() {
        let (c, s) = exchange();
        let mut conn = H2Connection::new(H2Limits::default());
        let ev = feed(&mut conn, Sender::Client, &c);
        let [
            Ev::Head { stream: 1, head },
            Ev::Body {
                stream: 1,
                data,
                truncated: false,
            },
            Ev::MessageEnd { stream: 1 },
        ] = &ev[..]
        else {
            panic!("{ev:?}");
        };
        assert_eq!(head.method(), "POST");
        assert_eq!(head.target(), "/mcp");
        assert_eq!(head.header("Host"), Some("mcp.example.com"));
        assert_eq!(head.header("MCP-Protocol-Version"), Some("2025-06-18"));
        assert_eq!(head.header(":method"), None);
        assert_eq!(data, BODY);
        assert_eq!(conn.open_streams(), 1);
        let ev = feed(&mut conn, Sender::Server, &s);
        let [
            Ev::Head { stream: 1, head },
            Ev::Body {
                stream: 1,
                data,
                truncated: false,
            },
            Ev::MessageEnd { stream: 1 },
        ] = &ev[..]
        else {
            panic!("{ev:?}");
        };
        assert_eq!(head.status, 200);
        assert_eq!(data, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        assert_eq!(conn.open_streams(), 0);
        let st = conn.stats();
        assert_eq!(st.frames[usize::from(DATA)], 3);
        assert_eq!(st.frames[usize::from(SETTINGS)], 3);
        assert_eq!(st.heads, 2);
        assert_eq!(st.streams_opened, 1);
    }

    #[test]
    fn every_segmentation_gives_the_same_events() {
        let (c, s) = exchange();
        let mut reference = H2Connection::new(H2Limits::default());
        let want = (
            feed(&mut reference, Sender::Client, &c),
            feed(&mut reference, Sender::Server, &s),
        );
        for seg in 1..40 {
            let mut conn = H2Connection::new(H2Limits::default());
            let got = (
                feed_split(&mut conn, Sender::Client, &c, seg),
                feed_split(&mut conn, Sender::Server, &s, seg),
            );
            assert_eq!((got.0.0, got.1.0), want.clone(), "segments of {seg}");
            assert_eq!(conn.stats(), reference.stats());
        }
    }

    #[test]
    fn continuation_frames_join_one_block() {
        let mut enc = Encoder::default();
        let req = block(
            &mut enc,
            &[
                (":method", "GET"),
                (":path", "/sse"),
                ("accept", "text/event-stream"),
            ],
        );
        let mut c = client_start();
        c.extend(frame(HEADERS, FLAG_END_STREAM, 3, &req[..2]));
        c.extend(frame(CONTINUATION, 0, 3, &req[2..5]));
        c.extend(frame(CONTINUATION, FLAG_END_HEADERS, 3, &req[5..]));
        let mut conn = H2Connection::new(H2Limits::default());
        let ev = feed(&mut conn, Sender::Client, &c);
        let [Ev::Head { stream: 3, head }, Ev::MessageEnd { stream: 3 }] = &ev[..] else {
            panic!("{ev:?}");
        };
        assert_eq!(head.header("accept"), Some("text/event-stream"));
        assert_eq!(head.header("host"), None);
        assert_eq!(conn.stats().frames[usize::from(CONTINUATION)], 2);
    }

    #[test]
    fn padding_and_priority_are_stripped() {
        let mut enc = Encoder::default();
        let req = block(&mut enc, &[(":method", "POST"), (":path", "/")]);
        let mut p = vec![3u8];
        p.extend_from_slice(&[0, 0, 0, 0, 16]); // PRIORITY fields
        p.extend_from_slice(&req);
        p.extend_from_slice(&[0; 3]);
        let mut c = client_start();
        c.extend(frame(
            HEADERS,
            FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY,
            1,
            &p,
        ));
        let mut d = vec![5u8];
        d.extend_from_slice(b"hello");
        d.extend_from_slice(&[0; 5]);
        c.extend(frame(DATA, FLAG_PADDED, 1, &d));
        c.extend(frame(DATA, FLAG_PADDED | FLAG_END_STREAM, 1, &[0]));
        let mut conn = H2Connection::new(H2Limits::default());
        for seg in [1, 7, c.len()] {
            let mut conn2 = H2Connection::new(H2Limits::default());
            let (ev, err) = feed_split(&mut conn2, Sender::Client, &c, seg);
            assert_eq!(err, None);
            assert!(
                matches!(&ev[1], Ev::Body { data, .. } if data == b"hello"),
                "{ev:?}"
            );
        }
        let ev = feed(&mut conn, Sender::Client, &c);
        assert_eq!(ev.len(), 3);
        // Padding longer than the frame is an error.
        let mut conn = H2Connection::new(H2Limits::default());
        let mut bad = client_start();
        bad.extend(frame(DATA, FLAG_PADDED, 1, &[4, 1, 2]));
        let (_, err) = feed_split(&mut conn, Sender::Client, &bad, 64);
        assert!(matches!(err, Some(H2Error::Protocol(_))), "{err:?}");
    }

    #[test]
    fn control_frames_and_unknown_types_are_read_and_counted() {
        let mut c = client_start();
        c.extend(frame(PRIORITY, 0, 1, &[0, 0, 0, 0, 7]));
        c.extend(frame(PING, 0, 0, &[1; 8]));
        c.extend(frame(WINDOW_UPDATE, 0, 0, &[0, 1, 0, 0]));
        c.extend(frame(0xfa, 0x3, 5, &[9; 40]));
        c.extend(frame(PING, FLAG_ACK, 0, &[1; 8]));
        let mut conn = H2Connection::new(H2Limits::default());
        assert!(feed(&mut conn, Sender::Client, &c).is_empty());
        let f = conn.stats().frames;
        assert_eq!(
            (f[2], f[6], f[8], f[10]),
            (1, 2, 1, 1),
            "priority, ping, window_update, unknown"
        );
        for (ty, len, sid) in [
            (PRIORITY, 4, 1),
            (PING, 7, 0),
            (WINDOW_UPDATE, 3, 0),
            (RST_STREAM, 5, 1),
            (SETTINGS, 5, 0),
        ] {
            let mut bad = client_start();
            bad.extend(frame(ty, 0, sid, &vec![0; len]));
            let mut conn = H2Connection::new(H2Limits::default());
            let (_, err) = feed_split(&mut conn, Sender::Client, &bad, 100);
            assert!(
                matches!(err, Some(H2Error::BadFrame(_))),
                "type {ty}: {err:?}"
            );
        }
        for (ty, len, sid) in [
            (PING, 8, 1),
            (SETTINGS, 0, 1),
            (DATA, 1, 0),
            (RST_STREAM, 4, 0),
        ] {
            let mut bad = client_start();
            bad.extend(frame(ty, 0, sid, &vec![0; len]));
            let mut conn = H2Connection::new(H2Limits::default());
            let (_, err) = feed_split(&mut conn, Sender::Client, &bad, 100);
            assert!(
                matches!(err, Some(H2Error::Protocol(_))),
                "type {ty}: {err:?}"
            );
        }
    }

    fn open(conn: &mut H2Connection, enc: &mut Encoder, sid: u32, end: bool) -> Vec<Ev> {
        let req = block(enc, &[(":method", "POST"), (":path", "/mcp")]);
        let flags = if end { END } else { FLAG_END_HEADERS };
        feed(conn, Sender::Client, &frame(HEADERS, flags, sid, &req))
    }

    fn started() -> (H2Connection, Encoder) {
        let mut conn = H2Connection::new(H2Limits::default());
        feed(&mut conn, Sender::Client, &client_start());
        (conn, Encoder::default())
    }

    #[test]
    fn rst_stream_delivers_the_partial_body_and_closes_the_stream() {
        let (mut conn, mut enc) = started();
        open(&mut conn, &mut enc, 1, false);
        feed(&mut conn, Sender::Client, &frame(DATA, 0, 1, b"partial"));
        let ev = feed(
            &mut conn,
            Sender::Client,
            &frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]),
        );
        assert_eq!(
            ev,
            vec![
                Ev::Body {
                    stream: 1,
                    data: b"partial".to_vec(),
                    truncated: true
                },
                Ev::Reset { stream: 1, code: 8 }
            ]
        );
        assert_eq!(conn.open_streams(), 0);
        // Later frames on it are ignored, but HPACK stays in step.
        let mut se = Encoder::default();
        let resp = block(&mut se, &[(":status", "200"), ("x-after", "reset")]);
        assert!(feed(&mut conn, Sender::Server, &frame(HEADERS, END, 1, &resp)).is_empty());
        open(&mut conn, &mut enc, 3, true);
        let resp = block(&mut se, &[(":status", "204"), ("x-after", "reset")]);
        let ev = feed(&mut conn, Sender::Server, &frame(HEADERS, END, 3, &resp));
        assert!(
            matches!(&ev[0], Ev::Head { stream: 3, head } if head.status == 204 && head.header("x-after") == Some("reset"))
        );
        assert_eq!(conn.stats().ignored_frames, 1);
        assert_eq!(conn.stats().streams_reset, 1);
    }

    #[test]
    fn goaway_is_reported_and_its_debug_data_skipped() {
        let (mut conn, _) = started();
        let mut p = vec![0, 0, 0, 5, 0, 0, 0, 2];
        p.extend_from_slice(&[b'x'; 100]);
        let mut s = frame(GOAWAY, 0, 0, &p);
        s.extend(frame(PING, 0, 0, &[0; 8]));
        for seg in [1, 10, s.len()] {
            let mut c = H2Connection::new(H2Limits::default());
            feed(&mut c, Sender::Client, &client_start());
            let (ev, err) = feed_split(&mut c, Sender::Server, &s, seg);
            assert_eq!(err, None);
            assert_eq!(
                ev,
                vec![Ev::GoAway {
                    last_stream: 5,
                    code: 2
                }]
            );
            assert_eq!(c.stats().frames[usize::from(PING)], 1);
        }
        let (_, err) = feed_split(&mut conn, Sender::Server, &frame(GOAWAY, 0, 0, &[0; 7]), 64);
        assert_eq!(err, Some(H2Error::BadFrame("GOAWAY")));
    }

    #[test]
    fn push_promise_carries_a_request_and_opens_the_promised_stream() {
        let (mut conn, mut enc) = started();
        open(&mut conn, &mut enc, 1, true);
        let mut se = Encoder::default();
        let pushed = block(
            &mut se,
            &[
                (":method", "GET"),
                (":path", "/style.css"),
                (":authority", "a.example"),
            ],
        );
        let mut p = vec![0, 0, 0, 2];
        p.extend_from_slice(&pushed);
        let mut s = frame(PUSH_PROMISE, FLAG_END_HEADERS, 1, &p);
        let resp = block(&mut se, &[(":status", "200")]);
        s.extend(frame(HEADERS, FLAG_END_HEADERS, 2, &resp));
        s.extend(frame(DATA, FLAG_END_STREAM, 2, b"body{}"));
        let ev = feed(&mut conn, Sender::Server, &s);
        let [
            Ev::PushPromise {
                stream: 1,
                promised: 2,
                head,
            },
            Ev::Head { stream: 2, .. },
            Ev::Body { stream: 2, .. },
            Ev::MessageEnd { stream: 2 },
        ] = &ev[..]
        else {
            panic!("{ev:?}");
        };
        assert_eq!(head.target(), "/style.css");
        assert_eq!(head.header("host"), Some("a.example"));
        // The promised stream is done in both directions.
        assert_eq!(conn.open_streams(), 1);
        // A client may not push.
        let mut conn = H2Connection::new(H2Limits::default());
        let mut c = client_start();
        c.extend(frame(
            PUSH_PROMISE,
            FLAG_END_HEADERS,
            1,
            &[0, 0, 0, 2, 0x82],
        ));
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 100);
        assert!(matches!(err, Some(H2Error::Protocol(_))));
    }

    #[test]
    fn trailers_interim_heads_and_event_streams() {
        let (mut conn, mut enc) = started();
        open(&mut conn, &mut enc, 1, true);
        let mut se = Encoder::default();
        let mut s = frame(
            HEADERS,
            FLAG_END_HEADERS,
            1,
            &block(&mut se, &[(":status", "103"), ("link", "</a>")]),
        );
        s.extend(frame(
            HEADERS,
            FLAG_END_HEADERS,
            1,
            &block(
                &mut se,
                &[(":status", "200"), ("content-type", "text/event-stream")],
            ),
        ));
        s.extend(frame(DATA, 0, 1, b"data: {\"a\":1}\n\n"));
        s.extend(frame(DATA, 0, 1, b"data: 2\n\n"));
        s.extend(frame(
            HEADERS,
            END,
            1,
            &block(&mut se, &[("grpc-status", "0")]),
        ));
        let ev = feed(&mut conn, Sender::Server, &s);
        let [
            Ev::Head { head: h1, .. },
            Ev::Head { head: h2, .. },
            Ev::StreamData { stream: 1, data },
            Ev::Trailers { stream: 1, head: t },
            Ev::MessageEnd { stream: 1 },
        ] = &ev[..]
        else {
            panic!("{ev:?}");
        };
        assert_eq!((h1.status, h2.status), (103, 200));
        assert_eq!(data, b"data: {\"a\":1}\n\ndata: 2\n\n");
        assert_eq!(t.header("grpc-status"), Some("0"));
        assert_eq!(conn.stats().trailers, 1);
        assert_eq!(conn.open_streams(), 0);
    }

    #[test]
    fn frames_above_the_receivers_max_frame_size_are_errors() {
        let (mut conn, mut enc) = started();
        open(&mut conn, &mut enc, 1, true);
        let mut se = Encoder::default();
        feed(
            &mut conn,
            Sender::Server,
            &frame(
                HEADERS,
                FLAG_END_HEADERS,
                1,
                &block(&mut se, &[(":status", "200")]),
            ),
        );
        let big = vec![b'a'; 16_385];
        let (_, err) = feed_split(&mut conn, Sender::Server, &frame(DATA, 0, 1, &big), 16);
        assert_eq!(
            err,
            Some(H2Error::FrameTooLarge {
                len: 16_385,
                max: 16_384
            })
        );
        assert_eq!(conn.stats().oversized_frames, 1);
        assert_eq!(conn.stats().errors, 1);
        // Once the client allows larger frames, the server may send them,
        // up to the observer's cap.
        let limits = H2Limits {
            max_frame_size: 32_768,
            ..H2Limits::default()
        };
        let mut conn = H2Connection::new(limits);
        let mut c = PREFACE.to_vec();
        c.extend(frame(SETTINGS, 0, 0, &[0, 5, 0, 1, 0, 0]));
        feed(&mut conn, Sender::Client, &c);
        open(&mut conn, &mut Encoder::default(), 1, true);
        let mut se = Encoder::default();
        let mut s = frame(
            HEADERS,
            FLAG_END_HEADERS,
            1,
            &block(&mut se, &[(":status", "200")]),
        );
        s.extend(frame(DATA, FLAG_END_STREAM, 1, &big));
        let ev = feed(&mut conn, Sender::Server, &s);
        assert!(
            matches!(&ev[1], Ev::Body { data, truncated: false, .. } if data.len() == big.len())
        );
        let (_, err) = feed_split(
            &mut conn,
            Sender::Server,
            &frame(DATA, 0, 1, &vec![0; 32_769]),
            4096,
        );
        assert_eq!(
            err,
            Some(H2Error::FrameTooLarge {
                len: 32_769,
                max: 32_768
            })
        );
        // The client's frames are still bounded by the server's default.
        let mut conn = H2Connection::new(limits);
        let mut c = client_start();
        c.extend(frame(DATA, 0, 1, &big));
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 4096);
        assert!(matches!(err, Some(H2Error::FrameTooLarge { .. })));
    }

    #[test]
    fn continuation_floods_are_cut_by_frames_and_by_bytes() {
        let limits = H2Limits {
            max_continuation_frames: 4,
            max_header_block_bytes: 100,
            ..H2Limits::default()
        };
        let mut c = client_start();
        c.extend(frame(HEADERS, 0, 1, &[0x82]));
        for _ in 0..5 {
            c.extend(frame(CONTINUATION, 0, 1, &[]));
        }
        let mut conn = H2Connection::new(limits);
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 50);
        assert_eq!(err, Some(H2Error::TooManyContinuations));
        assert_eq!(conn.stats().header_block_overflows, 1);
        let mut c = client_start();
        c.extend(frame(HEADERS, 0, 1, &[0x82; 60]));
        c.extend(frame(CONTINUATION, 0, 1, &[0x82; 60]));
        let mut conn = H2Connection::new(limits);
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 50);
        assert_eq!(err, Some(H2Error::HeaderBlockTooLarge));
        // One frame above the block bound is refused from its header alone.
        let mut c = client_start();
        c.extend(frame(HEADERS, FLAG_END_HEADERS, 1, &[0x82; 101])[..12].to_vec());
        let mut conn = H2Connection::new(limits);
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 50);
        assert_eq!(err, Some(H2Error::HeaderBlockTooLarge));
        // Another frame inside a block is a protocol error.
        let mut c = client_start();
        c.extend(frame(HEADERS, 0, 1, &[0x82]));
        c.extend(frame(PING, 0, 0, &[0; 8]));
        let mut conn = H2Connection::new(limits);
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 50);
        assert!(matches!(err, Some(H2Error::Protocol(_))));
        let mut c = client_start();
        c.extend(frame(CONTINUATION, FLAG_END_HEADERS, 1, &[0x82]));
        let mut conn = H2Connection::new(limits);
        let (_, err) = feed_split(&mut conn, Sender::Client, &c, 50);
        assert!(matches!(err, Some(H2Error::Protocol(_))));
    }

    #[test]
    fn hpack_table_is_bounded_by_setting_and_cap() {
        let limits = H2Limits {
            max_table_size: 8192,
            ..H2Limits::default()
        };
        // The client allows 65536; the server's encoder selects 8192: fine.
        let mut c = PREFACE.to_vec();
        c.extend(frame(SETTINGS, 0, 0, &[0, 1, 0, 1, 0, 0]));
        let mut conn = H2Connection::new(limits);
        feed(&mut conn, Sender::Client, &c);
        open(&mut conn, &mut Encoder::default(), 1, true);
        let mut b = Vec::new();
        encode_int(&mut b, 0x20, 5, 8192);
        b.push(0x88);
        let ev = feed(&mut conn, Sender::Server, &frame(HEADERS, END, 1, &b));
        assert!(matches!(&ev[0], Ev::Head { head, .. } if head.status == 200));
        // Above the observer's cap: the connection stops.
        open(&mut conn, &mut Encoder::default(), 3, true);
        let mut b = Vec::new();
        encode_int(&mut b, 0x20, 5, 16384);
        let (_, err) = feed_split(&mut conn, Sender::Server, &frame(HEADERS, END, 3, &b), 64);
        assert_eq!(
            err,
            Some(H2Error::Hpack(HpackError::TableSizeOverCap(16384, 8192)))
        );
        assert_eq!(conn.stats().hpack_table_overflows, 1);
        assert_eq!(conn.stats().hpack_errors, 1);
        // Above what the receiver advertised (default 4096).
        let (mut conn, mut enc) = started();
        open(&mut conn, &mut enc, 1, true);
        let mut b = Vec::new();
        encode_int(&mut b, 0x20, 5, 4097);
        let (_, err) = feed_split(&mut conn, Sender::Server, &frame(HEADERS, END, 1, &b), 64);
        assert_eq!(
            err,
            Some(H2Error::Hpack(HpackError::TableSizeUpdate(4097, 4096)))
        );
    }

    #[test]
    fn header_lists_beyond_the_bound_are_truncated_not_fatal() {
        let limits = H2Limits {
            max_header_list_bytes: 200,
            max_headers: 3,
            ..H2Limits::default()
        };
        let mut conn = H2Connection::new(H2Limits {
            max_header_list_bytes: 10_000,
            ..limits
        });
        feed(&mut conn, Sender::Client, &client_start());
        let mut enc = Encoder::default();
        let fields: Vec<(String, String)> =
            (0..6).map(|i| (format!("x-{i}"), "v".repeat(10))).collect();
        let mut list: Vec<(&str, &str)> = vec![(":method", "GET"), (":path", "/")];
        list.extend(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let ev = feed(
            &mut conn,
            Sender::Client,
            &frame(HEADERS, END, 1, &block(&mut enc, &list)),
        );
        let Ev::Head { head, .. } = &ev[0] else {
            panic!()
        };
        assert_eq!(head.headers().count(), 3);
        assert_eq!(conn.stats().truncated_header_lists, 1);
        // Bytes: the pseudo-fields (42 + 38) and two fields of 45 fit in 200.
        let mut conn = H2Connection::new(H2Limits {
            max_headers: 100,
            ..limits
        });
        feed(&mut conn, Sender::Client, &client_start());
        let mut enc = Encoder::default();
        let ev = feed(
            &mut conn,
            Sender::Client,
            &frame(HEADERS, END, 1, &block(&mut enc, &list)),
        );
        let Ev::Head { head, .. } = &ev[0] else {
            panic!()
        };
        assert_eq!(head.headers().count(), 2);
        assert_eq!(head.method(), "GET");
    }

    #[test]
    fn streams_beyond_the_concurrency_bound_are_not_followed() {
        let limits = H2Limits {
            max_concurrent_streams: 2,
            max_total_streams: 5,
            ..H2Limits::default()
        };
        let mut conn = H2Connection::new(limits);
        feed(&mut conn, Sender::Client, &client_start());
        let mut enc = Encoder::default();
        assert_eq!(open(&mut conn, &mut enc, 1, false).len(), 1);
        assert_eq!(open(&mut conn, &mut enc, 3, false).len(), 1);
        assert!(open(&mut conn, &mut enc, 5, false).is_empty());
        assert_eq!(conn.stats().streams_untracked, 1);
        // DATA on the untracked stream is ignored.
        assert!(
            feed(
                &mut conn,
                Sender::Client,
                &frame(DATA, FLAG_END_STREAM, 5, b"x")
            )
            .is_empty()
        );
        // Closing one makes room again.
        feed(&mut conn, Sender::Client, &frame(RST_STREAM, 0, 1, &[0; 4]));
        assert_eq!(open(&mut conn, &mut enc, 7, false).len(), 1);
        assert_eq!(open(&mut conn, &mut enc, 9, true).len(), 0);
        // The sixth stream exceeds the total.
        let req = block(&mut enc, &[(":method", "GET"), (":path", "/")]);
        let (_, err) = feed_split(
            &mut conn,
            Sender::Client,
            &frame(HEADERS, END, 11, &req),
            100,
        );
        assert_eq!(err, Some(H2Error::TooManyStreams));
        assert_eq!(conn.stats().stream_limit_trips, 1);
    }

    #[test]
    fn rapid_resets_stop_the_connection() {
        let limits = H2Limits {
            max_rapid_resets: 3,
            ..H2Limits::default()
        };
        let mut conn = H2Connection::new(limits);
        feed(&mut conn, Sender::Client, &client_start());
        let mut enc = Encoder::default();
        let mut c = Vec::new();
        for i in 0..4u32 {
            let req = block(&mut enc, &[(":method", "GET"), (":path", "/")]);
            c.extend(frame(HEADERS, END, 2 * i + 1, &req));
            c.extend(frame(RST_STREAM, 0, 2 * i + 1, &[0, 0, 0, 8]));
        }
        let (ev, err) = feed_split(&mut conn, Sender::Client, &c, 1000);
        assert_eq!(err, Some(H2Error::RapidReset));
        assert_eq!(
            ev.iter().filter(|e| matches!(e, Ev::Reset { .. })).count(),
            3
        );
        assert_eq!(conn.stats().rapid_reset_trips, 1);
        // Resets after a response head do not count.
        let (mut conn, mut enc) = started();
        let mut se = Encoder::default();
        for i in 0..10u32 {
            open(&mut conn, &mut enc, 2 * i + 1, true);
            let resp = block(&mut se, &[(":status", "200")]);
            feed(
                &mut conn,
                Sender::Server,
                &frame(HEADERS, FLAG_END_HEADERS, 2 * i + 1, &resp),
            );
            feed(
                &mut conn,
                Sender::Client,
                &frame(RST_STREAM, 0, 2 * i + 1, &[0, 0, 0, 8]),
            );
        }
        assert_eq!(conn.stats().rapid_resets, 0);
    }

    #[test]
    fn bodies_are_bounded_per_stream_and_per_connection() {
        let limits = H2Limits {
            max_body_bytes: 10,
            max_connection_body_bytes: 15,
            ..H2Limits::default()
        };
        let mut conn = H2Connection::new(limits);
        feed(&mut conn, Sender::Client, &client_start());
        let mut enc = Encoder::default();
        open(&mut conn, &mut enc, 1, false);
        open(&mut conn, &mut enc, 3, false);
        feed(&mut conn, Sender::Client, &frame(DATA, 0, 1, &[b'a'; 12]));
        let held = conn.held_bytes();
        feed(&mut conn, Sender::Client, &frame(DATA, 0, 3, &[b'b'; 8]));
        assert!(conn.held_bytes() > held);
        let ev = feed(
            &mut conn,
            Sender::Client,
            &frame(DATA, FLAG_END_STREAM, 1, &[]),
        );
        assert_eq!(
            ev,
            vec![
                Ev::Body {
                    stream: 1,
                    data: vec![b'a'; 10],
                    truncated: true
                },
                Ev::MessageEnd { stream: 1 }
            ]
        );
        // Stream 3 got only what the connection bound left (15 - 10).
        let ev = feed(
            &mut conn,
            Sender::Client,
            &frame(DATA, FLAG_END_STREAM, 3, &[]),
        );
        assert!(matches!(&ev[0], Ev::Body { data, truncated: true, .. } if data.len() == 5));
        assert_eq!(conn.stats().truncated_bodies, 2);
        // A gzip bomb stops at the decoded bound.
        let limits = H2Limits {
            max_decoded_bytes: 1000,
            ..H2Limits::default()
        };
        let mut conn = H2Connection::new(limits);
        feed(&mut conn, Sender::Client, &client_start());
        let req = block(
            &mut Encoder::default(),
            &[
                (":method", "POST"),
                (":path", "/"),
                ("content-encoding", "gzip"),
            ],
        );
        feed(
            &mut conn,
            Sender::Client,
            &frame(HEADERS, FLAG_END_HEADERS, 1, &req),
        );
        let z = gzip(&vec![b'z'; 100_000]);
        let ev = feed(
            &mut conn,
            Sender::Client,
            &frame(DATA, FLAG_END_STREAM, 1, &z),
        );
        assert!(
            matches!(&ev[0], Ev::Body { data, truncated: true, .. } if data.len() == 1000),
            "{ev:?}"
        );
    }

    #[test]
    fn errors_stop_both_directions_and_persist() {
        let mut conn = H2Connection::new(H2Limits::default());
        let mut out = Vec::new();
        assert_eq!(
            conn.feed(Sender::Client, b"GET / HTTP/1.1\r\n", &mut out),
            Err(H2Error::BadPreface)
        );
        assert_eq!(
            conn.feed(Sender::Server, &frame(PING, 0, 0, &[0; 8]), &mut out),
            Err(H2Error::BadPreface)
        );
        assert_eq!(conn.stats().errors, 1);
        // An error after progress: consumed bytes returned, error next.
        let mut conn = H2Connection::new(H2Limits::default());
        let mut c = client_start();
        c.extend(frame(PING, 0, 0, &[0; 3]));
        let n = conn.feed(Sender::Client, &c, &mut out).unwrap();
        assert_eq!(n, client_start().len());
        assert_eq!(conn.error(), Some(H2Error::BadFrame("PING")));
        assert_eq!(
            conn.feed(Sender::Client, &c[n..], &mut out),
            Err(H2Error::BadFrame("PING"))
        );
        // A gap is final too.
        let (mut conn, _) = started();
        conn.on_gap();
        assert_eq!(
            conn.feed(Sender::Client, &[0; 9], &mut out),
            Err(H2Error::Gap)
        );
        // A prefix of the preface waits.
        let mut conn = H2Connection::new(H2Limits::default());
        assert_eq!(conn.feed(Sender::Client, &PREFACE[..10], &mut out), Ok(0));
        assert!(looks_like_preface(&PREFACE[..10]));
        assert!(!looks_like_preface(b"PRI * HTTP/1.1"));
        assert!(!looks_like_preface(b""));
    }

    #[test]
    fn h2c_upgrade_answers_stream_one_and_applies_http2_settings() {
        let mut req = Head::default();
        req.set_request_line("POST", "/mcp");
        req.push_header("Upgrade", "h2c");
        // SETTINGS_MAX_FRAME_SIZE = 20000, base64url without padding.
        req.push_header("HTTP2-Settings", "AAUAAE4g");
        let mut conn = H2Connection::after_upgrade(H2Limits::default(), &req);
        let mut se = Encoder::default();
        let mut s = frame(SETTINGS, 0, 0, &[]);
        s.extend(frame(
            HEADERS,
            FLAG_END_HEADERS,
            1,
            &block(
                &mut se,
                &[(":status", "200"), ("content-type", "application/json")],
            ),
        ));
        s.extend(frame(DATA, FLAG_END_STREAM, 1, &vec![b' '; 20_000]));
        let ev = feed(&mut conn, Sender::Server, &s);
        assert!(matches!(&ev[0], Ev::Head { stream: 1, head } if head.status == 200));
        assert!(matches!(&ev[1], Ev::Body { stream: 1, data, .. } if data.len() == 20_000));
        assert_eq!(ev[2], Ev::MessageEnd { stream: 1 });
        assert_eq!(conn.open_streams(), 0);
        // The client then sends its preface and opens stream 3.
        let mut c = client_start();
        c.extend(frame(
            HEADERS,
            END,
            3,
            &block(
                &mut Encoder::default(),
                &[(":method", "GET"), (":path", "/x")],
            ),
        ));
        let ev = feed(&mut conn, Sender::Client, &c);
        assert!(matches!(&ev[0], Ev::Head { stream: 3, .. }));
    }

    #[test]
    fn on_close_ends_open_streams_with_truncated_bodies() {
        let (mut conn, mut enc) = started();
        open(&mut conn, &mut enc, 1, false);
        feed(
            &mut conn,
            Sender::Client,
            &frame(DATA, 0, 1, b"{\"jsonrpc\""),
        );
        let mut out = Vec::new();
        conn.on_close(&mut out);
        assert_eq!(
            out,
            vec![
                Ev::Body {
                    stream: 1,
                    data: b"{\"jsonrpc\"".to_vec(),
                    truncated: true
                },
                Ev::MessageEnd { stream: 1 }
            ]
        );
        assert_eq!(conn.open_streams(), 0);
    }

    /// A connection of `reqs` requests (stream 1, 3, ...) whose header
    /// blocks are encoded with per-field `choices` of representation, the
    /// blocks cut into HEADERS + CONTINUATION frames of `frag` bytes.
    fn encoded_connection(reqs: &[Vec<(String, String, u8)>], frag: usize) -> Vec<u8> {
        let mut enc = Encoder::default();
        let mut c = client_start();
        for (i, fields) in reqs.iter().enumerate() {
            let sid = 2 * i as u32 + 1;
            let mut b = Vec::new();
            enc.field(
                &mut b,
                b":method",
                b"POST",
                fields.first().map_or(0, |f| f.2),
            );
            enc.field(&mut b, b":path", b"/mcp", fields.last().map_or(0, |f| f.2));
            for (n, v, choice) in fields {
                enc.field(&mut b, n.as_bytes(), v.as_bytes(), *choice);
            }
            let pieces: Vec<&[u8]> = b.chunks(frag.max(1)).collect();
            for (k, piece) in pieces.iter().enumerate() {
                let last = k + 1 == pieces.len();
                let flags = if last { FLAG_END_HEADERS } else { 0 };
                let ty = if k == 0 { HEADERS } else { CONTINUATION };
                c.extend(frame(ty, flags, sid, piece));
            }
            if pieces.is_empty() {
                c.extend(frame(HEADERS, FLAG_END_HEADERS, sid, &[]));
            }
            c.extend(frame(DATA, FLAG_END_STREAM, sid, b"{}"));
        }
        c
    }

    proptest::proptest! {
        /// Any mix of HPACK representations (indexed, literal with or
        /// without indexing, never indexed, Huffman or not), with blocks
        /// cut into any CONTINUATION frames, gives the same events as plain
        /// literals in one frame.
        #[test]
        fn any_hpack_representation_mix_gives_the_same_events(
            reqs in proptest::collection::vec(
                proptest::collection::vec(
                    (
                        proptest::sample::select(vec![
                            "accept", "content-type", "mcp-session-id",
                            "mcp-protocol-version", "x-a", "user-agent",
                        ]),
                        proptest::sample::select(vec![
                            "", "application/json", "text/event-stream", "2025-06-18",
                            "sess-\u{e9}", "curl/8.5.0",
                        ]),
                        proptest::num::u8::ANY,
                    ),
                    0..8,
                ),
                1..5,
            ),
            frag in 1usize..40,
        ) {
            let reqs: Vec<Vec<(String, String, u8)>> = reqs
                .into_iter()
                .map(|f| f.into_iter().map(|(n, v, c)| (n.to_string(), v.to_string(), c)).collect())
                .collect();
            let plain: Vec<Vec<(String, String, u8)>> = reqs
                .iter()
                .map(|f| f.iter().map(|(n, v, _)| (n.clone(), v.clone(), 2)).collect())
                .collect();
            let mut want_conn = H2Connection::new(H2Limits::default());
            let want = feed(&mut want_conn, Sender::Client, &encoded_connection(&plain, 1 << 20));
            // One-byte frames are a CONTINUATION flood by default.
            let mut conn = H2Connection::new(H2Limits {
                max_continuation_frames: 10_000,
                ..H2Limits::default()
            });
            let got = feed(&mut conn, Sender::Client, &encoded_connection(&reqs, frag));
            proptest::prop_assert_eq!(got, want);
        }

        /// Arbitrary bytes after a valid start never panic, and the caller's
        /// unconsumed backlog stays bounded.
        #[test]
        fn arbitrary_frames_are_safe(
            c in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            s in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            seg in 1usize..64,
        ) {
            let mut conn = H2Connection::new(H2Limits::default());
            let mut cb = client_start();
            cb.extend_from_slice(&c);
            let _ = feed_split(&mut conn, Sender::Client, &cb, seg);
            let _ = feed_split(&mut conn, Sender::Server, &s, seg);
            let mut out = Vec::new();
            conn.on_close(&mut out);
        }
    }
}
