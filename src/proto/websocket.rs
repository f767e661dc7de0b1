//! WebSocket (RFC 6455) frames after an HTTP/1.1 upgrade: masking,
//! fragmentation, control frames, and permessage-deflate (RFC 7692).
//!
//! One [`WsStream`] parses one direction of an upgraded connection.
//!
//! * Payload bytes are consumed as they arrive (per-frame state keeps the
//!   remaining length and mask offset), so a huge frame never needs a huge
//!   caller buffer. A frame *header* is consumed only once complete; until
//!   then `feed` returns fewer bytes than given and the caller keeps the rest.
//! * Memory: one message buffer bounded by `max_message_bytes` (after
//!   inflation for compressed messages), plus a fixed 32 KiB inflate scratch
//!   and the inflater's own 32 KiB window.
//! * Oversized messages are not an error: the rest of the message is
//!   consumed and discarded, nothing is emitted for it, the [`WsStream::oversized`]
//!   counter goes up, and parsing continues with the next frame.
//! * Tolerated deviations (a passive sensor must not be stricter than the
//!   endpoints it watches): unmasked client frames and masked server frames
//!   (RFC 6455 §5.1 says MUST close) are accepted and unmasked when needed;
//!   non-minimal length encodings are accepted; data after Close is parsed.
//! * permessage-deflate: one raw-deflate inflater, kept across messages for
//!   context takeover. `max_window_bits` is not applied: flate2's default
//!   miniz_oxide backend has no `new_with_window_bits` (needs a zlib
//!   feature), and the 15-bit window decodes any smaller-window stream.
//!   With no_context_takeover, miniz_oxide reads a back-reference into the
//!   (reset) window as zeros instead of failing, so such a protocol violation
//!   yields garbage text rather than an inflate error.
//! * Violations that make the framing meaningless return [`WsError::BadFrame`]
//!   (see [`WsStream::feed`]); any error is terminal for the stream.

use flate2::{Decompress, FlushDecompress, Status};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsMessage {
    /// A complete (reassembled, unmasked, inflated) text message; bytes as received.
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    BadFrame,
    MessageTooLarge,
    Inflate,
}

/// Negotiated permessage-deflate parameters (from the 101 response).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeflateParams {
    /// For the direction being parsed: each message is compressed independently.
    pub no_context_takeover: bool,
    pub max_window_bits: u8,
}

/// RFC 7692 §7.1.2: window bits range 8..=15, default 15.
const DEFAULT_WINDOW_BITS: u8 = 15;

/// Parse `Sec-WebSocket-Extensions` of the 101 response; `from_client` selects
/// which direction's `*_no_context_takeover` / `*_max_window_bits` apply.
///
/// Returns the parameters of the first `permessage-deflate` element (RFC 7692
/// §5); unknown or malformed parameters are ignored, a missing or invalid
/// window size reads as 15.
pub fn parse_deflate_extension(header: &str, from_client: bool) -> Option<DeflateParams> {
    let prefix = if from_client { "client_" } else { "server_" };
    // RFC 6455 §9.1: extensions are comma separated, parameters `;` separated.
    header.split(',').find_map(|ext| {
        let mut parts = ext.split(';').map(str::trim);
        if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
            return None;
        }
        let mut params = DeflateParams {
            no_context_takeover: false,
            max_window_bits: DEFAULT_WINDOW_BITS,
        };
        for param in parts {
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (param, None),
            };
            let Some(name) = name
                .get(..prefix.len())
                .filter(|p| p.eq_ignore_ascii_case(prefix))
                .and_then(|_| name.get(prefix.len()..))
            else {
                continue;
            };
            if name.eq_ignore_ascii_case("no_context_takeover") {
                params.no_context_takeover = true;
            } else if name.eq_ignore_ascii_case("max_window_bits") {
                params.max_window_bits = value
                    .and_then(|v| v.parse::<u8>().ok())
                    .filter(|b| (8..=15).contains(b))
                    .unwrap_or(DEFAULT_WINDOW_BITS);
            }
        }
        Some(params)
    })
}

// RFC 6455 §5.2 opcodes.
const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// RFC 6455 §5.5: control frames carry at most 125 payload bytes.
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// RFC 7692 §7.2.2: the sender strips this empty stored block's tail; the
/// receiver appends it before inflating.
const DEFLATE_TRAILER: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Scratch sizes: inflate output chunk and unmasking chunk.
const INFLATE_CHUNK: usize = 32 * 1024;
const UNMASK_CHUNK: usize = 4 * 1024;

/// With context takeover an oversized compressed message must still be
/// inflated (output discarded) to keep the shared LZ77 window in sync. This
/// caps that CPU work per message; beyond it the window is lost and the stream
/// fails with `MessageTooLarge` (deflate expands up to ~1032:1, RFC 1951).
const MAX_DISCARD_INFLATE: u64 = 64 * 1024 * 1024;

/// Header of the frame whose payload is being read.
#[derive(Debug, Clone, Copy)]
struct Frame {
    opcode: u8,
    /// RSV1 on a data frame: the message is compressed (RFC 7692 §6).
    compressed: bool,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Position in the payload modulo 4, for unmasking (RFC 6455 §5.3).
    mask_off: usize,
    remaining: u64,
}

/// The data message being reassembled.
#[derive(Debug)]
struct Message {
    binary: bool,
    compressed: bool,
    buf: Vec<u8>,
    /// Exceeded `max_message_bytes`: content is discarded.
    oversized: bool,
    /// Inflating failed (only without context takeover): content discarded.
    failed: bool,
    /// The deflate data ended with a BFINAL block (RFC 7692 §7.2.3.4).
    stream_end: bool,
    /// Inflated bytes thrown away after the message became oversized.
    discarded: u64,
}

#[derive(Debug)]
pub struct WsStream {
    from_client: bool,
    max_message_bytes: usize,
    deflate: Option<DeflateParams>,
    /// Created on the first compressed message; kept across messages for
    /// context takeover.
    inflater: Option<Decompress>,
    inflate_out: Vec<u8>,
    frame: Option<Frame>,
    message: Option<Message>,
    oversized: u64,
    inflate_errors: u64,
    discard_limit: u64,
    failed: Option<WsError>,
}

impl WsStream {
    /// Heap bytes held (message being assembled, inflate buffers), for the
    /// engine's memory budget.
    pub fn held_bytes(&self) -> usize {
        let inflater = if self.inflater.is_some() {
            crate::proto::DECODER_BYTES
        } else {
            0
        };
        self.inflate_out
            .capacity()
            .saturating_add(self.message.as_ref().map_or(0, |m| m.buf.capacity()))
            .saturating_add(inflater)
    }

    pub fn new(
        from_client: bool,
        deflate: Option<DeflateParams>,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            from_client,
            max_message_bytes,
            deflate,
            inflater: None,
            inflate_out: Vec::new(),
            frame: None,
            message: None,
            oversized: 0,
            inflate_errors: 0,
            discard_limit: MAX_DISCARD_INFLATE,
            failed: None,
        }
    }

    pub fn from_client(&self) -> bool {
        self.from_client
    }

    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Messages skipped because they exceeded `max_message_bytes`.
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    /// Compressed messages skipped because their deflate data was corrupt
    /// (only counted with `no_context_takeover`; otherwise it is an error).
    pub fn inflate_errors(&self) -> u64 {
        self.inflate_errors
    }

    /// Feed contiguous stream bytes; returns bytes consumed (the caller keeps the rest).
    ///
    /// Errors, all terminal (later calls return the same error; messages
    /// already pushed to `out` stay valid):
    /// * `BadFrame`: reserved opcode or RSV bit, RSV1 without negotiated
    ///   deflate or on a continuation/control frame, fragmented or >125-byte
    ///   control frame, continuation without a message, new data frame inside
    ///   a fragmented message, 64-bit length with the top bit set.
    /// * `Inflate`: corrupt deflate data while the LZ77 window is shared
    ///   across messages (later messages cannot be decoded).
    /// * `MessageTooLarge`: an oversized compressed message would need more
    ///   than 64 MiB of discarded inflation to keep the shared window.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<WsMessage>) -> Result<usize, WsError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.feed_inner(data, out);
        if let Err(e) = r {
            self.failed = Some(e);
        }
        r
    }

    fn feed_inner(&mut self, data: &[u8], out: &mut Vec<WsMessage>) -> Result<usize, WsError> {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            let mut frame = match self.frame {
                Some(f) => f,
                None => {
                    let Some((frame, header_len)) = self.parse_header(rest)? else {
                        break;
                    };
                    pos = pos.saturating_add(header_len);
                    self.begin_frame(&frame)?;
                    frame
                }
            };
            let rest = data.get(pos..).unwrap_or_default();
            let take = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let chunk = rest.get(..take).unwrap_or_default();
            pos = pos.saturating_add(take);
            frame.remaining = frame.remaining.saturating_sub(take as u64);
            self.payload(&mut frame, chunk)?;
            if frame.remaining > 0 {
                // Input exhausted mid-payload.
                self.frame = Some(frame);
                break;
            }
            self.frame = None;
            self.end_frame(&frame, out)?;
        }
        Ok(pos)
    }

    /// RFC 6455 §5.2 base framing. `Ok(None)`: header incomplete.
    fn parse_header(&self, b: &[u8]) -> Result<Option<(Frame, usize)>, WsError> {
        let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        let rsv1 = b0 & 0x40 != 0;
        let opcode = b0 & 0x0F;
        // RSV2/RSV3: no extension we accept defines them.
        if b0 & 0x30 != 0 {
            return Err(WsError::BadFrame);
        }
        let is_control = opcode & 0x08 != 0;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(WsError::BadFrame),
        }
        // RFC 7692 §6.1: RSV1 ("Per-Message Compressed") only on the first
        // frame of a data message, and only when negotiated.
        if rsv1 && (self.deflate.is_none() || is_control || opcode == OP_CONTINUATION) {
            return Err(WsError::BadFrame);
        }
        let masked = b1 & 0x80 != 0;
        let (len, mut off) = match b1 & 0x7F {
            126 => match b.get(2..4) {
                Some(&[x, y]) => (u64::from(u16::from_be_bytes([x, y])), 4usize),
                _ => return Ok(None),
            },
            127 => match b.get(2..10).and_then(|s| <[u8; 8]>::try_from(s).ok()) {
                Some(arr) => {
                    let len = u64::from_be_bytes(arr);
                    // "the most significant bit MUST be 0"
                    if len >> 63 != 0 {
                        return Err(WsError::BadFrame);
                    }
                    (len, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        // RFC 6455 §5.5: control frames are never fragmented and short.
        if is_control && (!fin || len > MAX_CONTROL_PAYLOAD) {
            return Err(WsError::BadFrame);
        }
        let mask = if masked {
            match b
                .get(off..off + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
            {
                Some(key) => {
                    off += 4;
                    Some(key)
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        let frame = Frame {
            opcode,
            compressed: rsv1,
            fin,
            mask,
            mask_off: 0,
            remaining: len,
        };
        Ok(Some((frame, off)))
    }

    /// Start-of-frame bookkeeping for data frames (fragmentation, RFC 6455 §5.4).
    fn begin_frame(&mut self, frame: &Frame) -> Result<(), WsError> {
        let compressed = frame.compressed;
        match frame.opcode {
            OP_TEXT | OP_BINARY => {
                // A new message may not start inside a fragmented one.
                if self.message.is_some() {
                    return Err(WsError::BadFrame);
                }
                self.message = Some(Message {
                    binary: frame.opcode == OP_BINARY,
                    compressed,
                    buf: Vec::new(),
                    oversized: false,
                    failed: false,
                    stream_end: false,
                    discarded: 0,
                });
                if compressed && self.inflater.is_none() {
                    // Raw deflate, 15-bit window. flate2's default (miniz_oxide)
                    // backend lacks `new_with_window_bits`; a 32 KiB window
                    // decodes streams made with any smaller window anyway.
                    self.inflater = Some(Decompress::new(false));
                }
            }
            OP_CONTINUATION if self.message.is_none() => return Err(WsError::BadFrame),
            _ => {}
        }
        Ok(())
    }

    /// Payload bytes of the current frame (a prefix or middle piece).
    fn payload(&mut self, frame: &mut Frame, chunk: &[u8]) -> Result<(), WsError> {
        if frame.opcode & 0x08 != 0 || chunk.is_empty() {
            // Control payloads (close code/reason, ping data) are not needed.
            return Ok(());
        }
        let Some(msg) = self.message.as_mut() else {
            return Ok(());
        };
        let mask_off = frame.mask_off;
        frame.mask_off = (mask_off + chunk.len() % 4) % 4;
        if msg.compressed {
            let mut scratch = [0u8; UNMASK_CHUNK];
            let mut off = mask_off;
            for piece in chunk.chunks(UNMASK_CHUNK) {
                let buf = scratch.get_mut(..piece.len()).unwrap_or_default();
                buf.copy_from_slice(piece);
                if let Some(key) = frame.mask {
                    unmask(buf, key, off);
                }
                off = (off + piece.len() % 4) % 4;
                self.inflate(buf)?;
            }
            return Ok(());
        }
        if msg.oversized {
            return Ok(());
        }
        if msg.buf.len().saturating_add(chunk.len()) > self.max_message_bytes {
            msg.oversized = true;
            msg.buf = Vec::new();
            return Ok(());
        }
        let start = msg.buf.len();
        msg.buf.extend_from_slice(chunk);
        if let (Some(key), Some(tail)) = (frame.mask, msg.buf.get_mut(start..)) {
            unmask(tail, key, mask_off);
        }
        Ok(())
    }

    /// Inflate a piece of the current compressed message into its buffer.
    fn inflate(&mut self, mut input: &[u8]) -> Result<(), WsError> {
        let no_takeover = self.deflate.is_some_and(|d| d.no_context_takeover);
        let (Some(msg), Some(inflater)) = (self.message.as_mut(), self.inflater.as_mut()) else {
            return Ok(());
        };
        if msg.failed || msg.stream_end || (msg.oversized && no_takeover) {
            // Nothing to keep in sync: skip the input.
            return Ok(());
        }
        if self.inflate_out.len() != INFLATE_CHUNK {
            self.inflate_out.resize(INFLATE_CHUNK, 0);
        }
        loop {
            let (in0, out0) = (inflater.total_in(), inflater.total_out());
            let status = inflater.decompress(input, &mut self.inflate_out, FlushDecompress::None);
            let consumed = usize::try_from(inflater.total_in().saturating_sub(in0)).unwrap_or(0);
            let produced = usize::try_from(inflater.total_out().saturating_sub(out0)).unwrap_or(0);
            input = input.get(consumed..).unwrap_or_default();
            let status = match status {
                Ok(s) => s,
                Err(_) if no_takeover => {
                    msg.failed = true;
                    msg.buf = Vec::new();
                    return Ok(());
                }
                Err(_) => return Err(WsError::Inflate),
            };
            let output = self.inflate_out.get(..produced).unwrap_or_default();
            if msg.oversized {
                msg.discarded = msg.discarded.saturating_add(produced as u64);
                if msg.discarded > self.discard_limit {
                    return Err(WsError::MessageTooLarge);
                }
            } else if msg.buf.len().saturating_add(produced) > self.max_message_bytes {
                // Bomb-safe: stop storing at the cap.
                msg.oversized = true;
                msg.buf = Vec::new();
                msg.discarded = produced as u64;
                if no_takeover {
                    return Ok(());
                }
            } else {
                msg.buf.extend_from_slice(output);
            }
            if status == Status::StreamEnd {
                // BFINAL block: any further bytes (e.g. our trailer) are not deflate data.
                msg.stream_end = true;
                return Ok(());
            }
            let output_full = produced == self.inflate_out.len();
            if (input.is_empty() && !output_full) || (consumed == 0 && produced == 0) {
                return Ok(());
            }
        }
    }

    fn end_frame(&mut self, frame: &Frame, out: &mut Vec<WsMessage>) -> Result<(), WsError> {
        match frame.opcode {
            OP_CLOSE => out.push(WsMessage::Close),
            OP_PING | OP_PONG => {}
            // Data frame: the message is complete on FIN (RFC 6455 §5.4).
            _ if frame.fin => self.end_message(out)?,
            _ => {}
        }
        Ok(())
    }

    fn end_message(&mut self, out: &mut Vec<WsMessage>) -> Result<(), WsError> {
        let compressed = self.message.as_ref().is_some_and(|m| m.compressed);
        if compressed {
            // RFC 7692 §7.2.2: append 0x00 0x00 0xff 0xff, then inflate.
            self.inflate(&DEFLATE_TRAILER)?;
        }
        let Some(msg) = self.message.take() else {
            return Ok(());
        };
        if compressed {
            let no_takeover = self.deflate.is_some_and(|d| d.no_context_takeover);
            // After BFINAL the inflater is finished; without takeover each
            // message starts from an empty window (RFC 7692 §7.1.1). After a
            // BFINAL block the window is lost (rare; senders use sync flush).
            if (no_takeover || msg.stream_end || msg.failed)
                && let Some(d) = self.inflater.as_mut()
            {
                d.reset(false);
            }
        }
        if msg.failed {
            self.inflate_errors = self.inflate_errors.saturating_add(1);
        } else if msg.oversized {
            self.oversized = self.oversized.saturating_add(1);
        } else if msg.binary {
            out.push(WsMessage::Binary(msg.buf));
        } else {
            out.push(WsMessage::Text(msg.buf));
        }
        Ok(())
    }
}

/// RFC 6455 §5.3: `j = i MOD 4; transformed[i] = original[i] XOR key[j]`,
/// with `offset` the payload position of `buf[0]` modulo 4.
fn unmask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    for (b, k) in buf.iter_mut().zip(key.iter().cycle().skip(offset % 4)) {
        *b ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    const MAX: usize = 1 << 20;

    /// Feed like a real caller: keep what was not consumed, append the next
    /// `chunk` bytes, feed again.
    fn feed_chunked(
        ws: &mut WsStream,
        data: &[u8],
        chunk: usize,
    ) -> Result<Vec<WsMessage>, WsError> {
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for piece in data.chunks(chunk.max(1)) {
            pending.extend_from_slice(piece);
            let n = ws.feed(&pending, &mut out)?;
            assert!(n <= pending.len());
            pending.drain(..n);
            // Only an incomplete header (< 14 bytes) may be left over.
            assert!(pending.len() < 14, "kept {} bytes", pending.len());
        }
        Ok(out)
    }

    fn parse(data: &[u8], deflate: Option<DeflateParams>) -> Result<Vec<WsMessage>, WsError> {
        let mut ws = WsStream::new(false, deflate, MAX);
        let mut out = Vec::new();
        let n = ws.feed(data, &mut out)?;
        assert_eq!(n, data.len(), "all complete frames consumed");
        Ok(out)
    }

    /// Encode one frame (test helper, RFC 6455 §5.2).
    fn frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![b0];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xFFFF => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(key) => {
                f.extend_from_slice(&key);
                f.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    /// Raw-deflate `msg` with a sync flush and strip the 00 00 ff ff tail (RFC 7692 §7.2.1).
    fn deflate_msg(c: &mut Compress, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.len() / 2 + 64);
        let mut input = msg;
        loop {
            out.reserve(64 * 1024);
            let before = c.total_in();
            c.compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        assert!(out.ends_with(&DEFLATE_TRAILER));
        out.truncate(out.len() - 4);
        out
    }

    fn text(s: &[u8]) -> WsMessage {
        WsMessage::Text(s.to_vec())
    }

    const PMD: Option<DeflateParams> = Some(DeflateParams {
        no_context_takeover: false,
        max_window_bits: 15,
    });
    const PMD_NO_TAKEOVER: Option<DeflateParams> = Some(DeflateParams {
        no_context_takeover: true,
        max_window_bits: 15,
    });

    // RFC 6455 §5.7 examples, verbatim.
    const UNMASKED_HELLO: &[u8] = &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    const MASKED_HELLO: &[u8] = &[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    const FRAG_HEL: &[u8] = &[0x01, 0x03, 0x48, 0x65, 0x6c];
    const FRAG_LO: &[u8] = &[0x80, 0x02, 0x6c, 0x6f];
    const PING_HELLO: &[u8] = &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
    const MASKED_PONG_HELLO: &[u8] = &[
        0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    // RFC 7692 §7.2.3.1 / §7.2.3.2 examples, verbatim.
    const DEFLATED_HELLO: &[u8] = &[0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    const DEFLATED_HELLO_AGAIN: &[u8] = &[0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00];

    #[test]
    fn rfc6455_single_frames() {
        assert_eq!(parse(UNMASKED_HELLO, None), Ok(vec![text(b"Hello")]));
        // Client direction, masked.
        let mut ws = WsStream::new(true, None, MAX);
        let mut out = Vec::new();
        assert_eq!(ws.feed(MASKED_HELLO, &mut out), Ok(MASKED_HELLO.len()));
        assert_eq!(out, vec![text(b"Hello")]);
        // Unmasked client frame: tolerated.
        let mut ws = WsStream::new(true, None, MAX);
        let mut out = Vec::new();
        assert_eq!(ws.feed(UNMASKED_HELLO, &mut out), Ok(UNMASKED_HELLO.len()));
        assert_eq!(out, vec![text(b"Hello")]);
    }

    #[test]
    fn rfc6455_fragmented_and_control() {
        let data = [FRAG_HEL, FRAG_LO].concat();
        assert_eq!(parse(&data, None), Ok(vec![text(b"Hello")]));
        // Ping and masked pong produce nothing; the next message is intact.
        let data = [PING_HELLO, MASKED_PONG_HELLO, UNMASKED_HELLO].concat();
        assert_eq!(parse(&data, None), Ok(vec![text(b"Hello")]));
        // Ping interleaved between fragments (RFC 6455 §5.4).
        let data = [FRAG_HEL, PING_HELLO, MASKED_PONG_HELLO, FRAG_LO].concat();
        assert_eq!(parse(&data, None), Ok(vec![text(b"Hello")]));
        // Close with status 1000.
        let data = [&[0x88, 0x02, 0x03, 0xe8][..], UNMASKED_HELLO].concat();
        assert_eq!(
            parse(&data, None),
            Ok(vec![WsMessage::Close, text(b"Hello")])
        );
    }

    #[test]
    fn rfc6455_extended_lengths() {
        // "256 bytes binary message in a single unmasked frame": 0x82 0x7E 0x0100.
        let payload: Vec<u8> = (0..=255u8).collect();
        let mut data = vec![0x82, 0x7E, 0x01, 0x00];
        data.extend_from_slice(&payload);
        assert_eq!(parse(&data, None), Ok(vec![WsMessage::Binary(payload)]));
        // "64KiB binary message": 0x82 0x7F 0x0000000000010000.
        let payload: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut data = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
        data.extend_from_slice(&payload);
        assert_eq!(
            parse(&data, None),
            Ok(vec![WsMessage::Binary(payload.clone())])
        );
        // Same, masked, fed in odd-sized pieces (mask offset carried across feeds).
        let data = frame(0x82, &payload, Some([0xde, 0xad, 0xbe, 0xef]));
        let mut ws = WsStream::new(true, None, MAX);
        assert_eq!(
            feed_chunked(&mut ws, &data, 4093),
            Ok(vec![WsMessage::Binary(payload)])
        );
    }

    #[test]
    fn payload_consumed_as_it_arrives() {
        let payload = vec![0x41u8; 100_000];
        let data = frame(0x81, &payload, Some([1, 2, 3, 4]));
        let mut ws = WsStream::new(true, None, MAX);
        let mut out = Vec::new();
        // Partial header: nothing consumed.
        assert_eq!(ws.feed(&data[..5], &mut out), Ok(0));
        // Header (2 + 8 + 4) and the available payload are consumed.
        assert_eq!(ws.feed(&data[..1000], &mut out), Ok(1000));
        assert_eq!(ws.feed(&data[1000..], &mut out), Ok(data.len() - 1000));
        assert_eq!(out, vec![WsMessage::Text(payload)]);
    }

    #[test]
    fn rfc7692_examples() {
        assert_eq!(parse(DEFLATED_HELLO, PMD), Ok(vec![text(b"Hello")]));
        // §7.2.3.1 compressed message in two fragments.
        let data = [
            &[0x41, 0x03, 0xf2, 0x48, 0xcd][..],
            &[0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00],
        ]
        .concat();
        assert_eq!(parse(&data, PMD), Ok(vec![text(b"Hello")]));
        // §7.2.3.2 context takeover: the second "Hello" is a back-reference.
        let data = [DEFLATED_HELLO, DEFLATED_HELLO_AGAIN].concat();
        assert_eq!(parse(&data, PMD), Ok(vec![text(b"Hello"), text(b"Hello")]));
        // Without context takeover the window is reset between messages, so
        // the back-reference no longer yields "Hello" (miniz_oxide reads the
        // empty window as zeros instead of reporting "distance too far back").
        let data = [DEFLATED_HELLO, DEFLATED_HELLO_AGAIN, DEFLATED_HELLO].concat();
        let out = parse(&data, PMD_NO_TAKEOVER).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!((&out[0], &out[2]), (&text(b"Hello"), &text(b"Hello")));
        assert_ne!(out[1], text(b"Hello"));
        // Corrupt deflate data (BTYPE=11 is reserved, RFC 1951 §3.2.3) without
        // takeover: the message is skipped and counted, the stream continues.
        let data = [DEFLATED_HELLO, &[0xc1, 0x02, 0xff, 0xff], DEFLATED_HELLO].concat();
        let mut ws = WsStream::new(false, PMD_NO_TAKEOVER, MAX);
        let mut out = Vec::new();
        assert_eq!(ws.feed(&data, &mut out), Ok(data.len()));
        assert_eq!(out, vec![text(b"Hello"), text(b"Hello")]);
        assert_eq!(ws.inflate_errors(), 1);
        // With takeover, corrupt deflate data is terminal.
        let bad = [DEFLATED_HELLO, &[0xc1, 0x02, 0xff, 0xff][..]].concat();
        let mut ws = WsStream::new(false, PMD, MAX);
        let mut out = Vec::new();
        assert_eq!(ws.feed(&bad, &mut out), Err(WsError::Inflate));
        assert_eq!(out, vec![text(b"Hello")]);
        assert_eq!(ws.feed(UNMASKED_HELLO, &mut out), Err(WsError::Inflate));
        // §7.2.3.3 stored block, §7.2.3.4 BFINAL block.
        let stored = [
            0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let bfinal = [0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let data = [&stored[..], &bfinal, &bfinal, DEFLATED_HELLO].concat();
        assert_eq!(parse(&data, PMD), Ok(vec![text(b"Hello"); 4]));
        // Uncompressed message on a deflate stream (RSV1 clear).
        assert_eq!(parse(UNMASKED_HELLO, PMD), Ok(vec![text(b"Hello")]));
    }

    #[test]
    fn compressed_masked_large_with_takeover() {
        let mut c = Compress::new(Compression::default(), false);
        let msgs: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                format!(
                    "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"tools/list\",\"pad\":\"{}\"}}",
                    "abc".repeat(20_000 + i)
                )
                .into_bytes()
            })
            .collect();
        let mut data = Vec::new();
        for m in &msgs {
            let z = deflate_msg(&mut c, m);
            // Split each compressed message into 3 fragments.
            let (a, rest) = z.split_at(z.len() / 3);
            let (b, d) = rest.split_at(rest.len() / 2);
            data.extend(frame(0x41, a, Some([9, 8, 7, 6])));
            data.extend(frame(0x00, b, Some([1, 2, 3, 4])));
            data.extend(frame(0x80, d, Some([5, 5, 5, 5])));
        }
        let want: Vec<WsMessage> = msgs.iter().map(|m| WsMessage::Text(m.clone())).collect();
        for chunk in [data.len(), 1, 7, 1000] {
            let mut ws = WsStream::new(true, PMD, MAX);
            assert_eq!(
                feed_chunked(&mut ws, &data, chunk),
                Ok(want.clone()),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn oversized_message_skipped_next_parsed() {
        let big = vec![b'x'; 5000];
        let data = [
            frame(0x01, &big[..3000], Some([1, 1, 1, 1])),
            PING_HELLO.to_vec(),
            frame(0x80, &big[3000..], Some([2, 2, 2, 2])),
            frame(0x82, &big[..1024], Some([3, 3, 3, 3])),
            MASKED_HELLO.to_vec(),
        ]
        .concat();
        for chunk in [data.len(), 1, 13] {
            let mut ws = WsStream::new(true, None, 1024);
            let out = feed_chunked(&mut ws, &data, chunk);
            assert_eq!(
                out,
                Ok(vec![
                    WsMessage::Binary(big[..1024].to_vec()),
                    text(b"Hello")
                ])
            );
            assert_eq!(ws.oversized(), 1);
        }
    }

    #[test]
    fn deflate_bomb_bounded() {
        // 20 MB of zeros deflates to ~20 KB.
        let zeros = vec![0u8; 20 << 20];
        for params in [PMD, PMD_NO_TAKEOVER] {
            let mut c = Compress::new(Compression::best(), false);
            let bomb = deflate_msg(&mut c, &zeros);
            assert!(bomb.len() < 64 * 1024);
            let after = deflate_msg(&mut c, b"{\"after\":true}");
            let data = [frame(0xc2, &bomb, None), frame(0xc1, &after, None)].concat();
            let mut ws = WsStream::new(false, params, 64 * 1024);
            let mut out = Vec::new();
            assert_eq!(ws.feed(&data, &mut out), Ok(data.len()));
            assert_eq!(out, vec![text(b"{\"after\":true}")]);
            assert_eq!(ws.oversized(), 1);
        }
        // With takeover, discarding past the budget gives up.
        let mut c = Compress::new(Compression::best(), false);
        let bomb = deflate_msg(&mut c, &zeros);
        let mut ws = WsStream::new(false, PMD, 64 * 1024);
        ws.discard_limit = 1 << 20;
        let mut out = Vec::new();
        assert_eq!(
            ws.feed(&frame(0xc2, &bomb, None), &mut out),
            Err(WsError::MessageTooLarge)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn bad_frames() {
        let cases: &[(&[u8], Option<DeflateParams>)] = &[
            // 64-bit length with the most significant bit set.
            (&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1], None),
            // Reserved opcodes.
            (&[0x83, 0x00], None),
            (&[0x8B, 0x00], None),
            // RSV2 / RSV3.
            (&[0xA1, 0x00], None),
            (&[0x91, 0x00], PMD),
            // RSV1 without negotiated deflate, on a continuation, on a control frame.
            (&[0xC1, 0x00], None),
            (&[0x01, 0x01, b'a', 0xC0, 0x00], PMD),
            (&[0xC9, 0x00], PMD),
            // Control frame too long / fragmented.
            (&[0x89, 0x7E, 0x00, 0x7E], None),
            (&[0x09, 0x00], None),
            // Continuation without a message; text inside a fragmented message.
            (&[0x80, 0x00], None),
            (&[0x01, 0x01, b'a', 0x81, 0x00], None),
        ];
        for (data, params) in cases {
            let mut ws = WsStream::new(false, *params, MAX);
            let mut out = Vec::new();
            assert_eq!(
                ws.feed(data, &mut out),
                Err(WsError::BadFrame),
                "{data:02x?}"
            );
            // Terminal.
            assert_eq!(ws.feed(UNMASKED_HELLO, &mut out), Err(WsError::BadFrame));
            assert!(out.is_empty());
        }
        // Maximal legal 64-bit length is fine: header consumed, waiting for payload.
        let mut ws = WsStream::new(false, None, 16);
        let mut out = Vec::new();
        let hdr = [
            0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3,
        ];
        assert_eq!(ws.feed(&hdr, &mut out), Ok(hdr.len()));
        assert!(out.is_empty());
    }

    /// A stream mixing every feature, used for split/truncation tests.
    fn mixed_stream() -> (Vec<u8>, Vec<WsMessage>) {
        let mut c = Compress::new(Compression::default(), false);
        let json = br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        let z1 = deflate_msg(&mut c, json);
        let z2 = deflate_msg(&mut c, json);
        let k = Some([0x37, 0xfa, 0x21, 0x3d]);
        let data = [
            frame(0xc1, &z1, k),
            MASKED_HELLO.to_vec(),
            frame(0x41, &z2[..3], k),
            frame(0x89, b"ping", k),
            frame(0x80, &z2[3..], k),
            frame(0x82, &[7u8; 300], k),
            frame(0x01, b"", k),
            frame(0x80, b"x", k),
            frame(0x88, &[0x03, 0xe8], k),
        ]
        .concat();
        let want = vec![
            text(json),
            text(b"Hello"),
            text(json),
            WsMessage::Binary(vec![7u8; 300]),
            text(b"x"),
            WsMessage::Close,
        ];
        (data, want)
    }

    #[test]
    fn bytewise_equals_one_shot() {
        let (data, want) = mixed_stream();
        for chunk in [data.len(), 1, 2, 3, 5] {
            let mut ws = WsStream::new(true, PMD, MAX);
            assert_eq!(
                feed_chunked(&mut ws, &data, chunk),
                Ok(want.clone()),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn truncation_at_every_offset() {
        let (data, want) = mixed_stream();
        for cut in 0..=data.len() {
            let mut ws = WsStream::new(true, PMD, MAX);
            let mut out = Vec::new();
            let n = ws.feed(&data[..cut], &mut out).unwrap();
            assert!(cut - n < 14, "cut {cut}: only a partial header may remain");
            assert!(want.starts_with(&out), "cut {cut}");
            // Resuming from the unconsumed point completes the stream.
            assert_eq!(ws.feed(&data[n..], &mut out), Ok(data.len() - n));
            assert_eq!(out, want, "cut {cut}");
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..300 {
            let len = 1 + round * 7 % 600;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            for params in [None, PMD, PMD_NO_TAKEOVER] {
                let mut ws = WsStream::new(round % 2 == 0, params, 256);
                let mut out = Vec::new();
                if let Ok(n) = ws.feed(&data, &mut out) {
                    assert!(n <= data.len());
                }
                // Also hostile payload behind a valid compressed header.
                let mut ws = WsStream::new(false, params, 256);
                let f = frame(0xc1, &data, None);
                let r = ws.feed(&f, &mut out);
                assert!(params.is_none() || matches!(r, Ok(_) | Err(WsError::Inflate)));
            }
        }
    }

    #[test]
    fn deflate_extension_header() {
        let p = |h: &str, c: bool| parse_deflate_extension(h, c);
        assert_eq!(
            p("permessage-deflate", true),
            Some(DeflateParams {
                no_context_takeover: false,
                max_window_bits: 15
            })
        );
        let h = "permessage-deflate; client_no_context_takeover; server_max_window_bits=10";
        assert_eq!(
            p(h, true),
            Some(DeflateParams {
                no_context_takeover: true,
                max_window_bits: 15
            })
        );
        assert_eq!(
            p(h, false),
            Some(DeflateParams {
                no_context_takeover: false,
                max_window_bits: 10
            })
        );
        // Quoted value, case, other extensions before it, whitespace.
        let h = "x-webkit-foo, PerMessage-Deflate ;Server_No_Context_Takeover ; client_max_window_bits=\"9\"";
        assert_eq!(
            p(h, false),
            Some(DeflateParams {
                no_context_takeover: true,
                max_window_bits: 15
            })
        );
        assert_eq!(
            p(h, true),
            Some(DeflateParams {
                no_context_takeover: false,
                max_window_bits: 9
            })
        );
        // Out-of-range / malformed window bits fall back to 15.
        assert_eq!(
            p("permessage-deflate; client_max_window_bits=99", true).map(|d| d.max_window_bits),
            Some(15)
        );
        assert_eq!(p("", true), None);
        assert_eq!(p("x-permessage-deflate, deflate-frame", true), None);
        assert_eq!(p("permessage-deflate-x", false), None);
    }
}
