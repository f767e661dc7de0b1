//! QUIC v1 (RFC 9000/9001) and v2 (RFC 9369) client Initial packets: derive
//! the Initial keys (rustls), remove header protection, decrypt, and reassemble
//! CRYPTO frames into the TLS ClientHello handshake message.
//!
//! The sensor plays the server's part: Initial keys are a public function of
//! the client's Destination Connection ID (RFC 9001 §5.2), so anyone on the
//! path can read the ClientHello. All cryptography is rustls' (`ring`
//! provider); this module only parses headers, decodes packet numbers, walks
//! frames and reassembles the CRYPTO stream.
//!
//! Bounds per tracker: at most [`MAX_INITIAL_PACKETS`] Initial packets are
//! decrypted and at most [`MAX_CRYPTO_BYTES`] of CRYPTO stream are buffered
//! (plus a 1-bit-per-byte fill map); past either cap the flow is `Failed`.

use rustls::Side;
use rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
use rustls::quic::{DirectionalKeys, Version};

pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;
/// draft-ietf-quic-transport-29; drafts 30–32 (`0xff00001e..=0xff000020`)
/// share its Initial salt (draft-ietf-quic-tls-32 §5.2) and are accepted too.
pub const VERSION_DRAFT_29: u32 = 0xff00_001d;
const VERSION_DRAFT_32: u32 = 0xff00_0020;

/// RFC 9000 §17.2: a v1 connection ID is at most 20 bytes; longer ones are dropped.
pub const MAX_CID_LEN: usize = 20;
/// Initial packets decrypted per tracker before giving up. A ClientHello with
/// a post-quantum key share spans 2–3 Initials; 16 leaves room for
/// retransmissions, ACK-only Initials and one Retry.
pub const MAX_INITIAL_PACKETS: u32 = 16;
/// CRYPTO stream bytes buffered per tracker. Real ClientHellos are 0.3–3 KiB;
/// TLS allows 2^24, which no client sends in an Initial.
pub const MAX_CRYPTO_BYTES: usize = 64 * 1024;

/// RFC 9001 §5.4.2: the header-protection sample starts 4 bytes after the
/// start of the Packet Number field, as if it were 4 bytes long.
const PN_MAX_LEN: usize = 4;
/// AES-based header protection samples 16 bytes (RFC 9001 §5.4.3).
const HP_SAMPLE_LEN: usize = 16;

/// TLS HandshakeType client_hello (RFC 8446 §4).
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;

// Frame types allowed in a client Initial (RFC 9000 §12.4, Table 3).
const FRAME_PADDING: u8 = 0x00;
const FRAME_PING: u8 = 0x01;
const FRAME_ACK: u8 = 0x02;
const FRAME_ACK_ECN: u8 = 0x03;
const FRAME_CRYPTO: u8 = 0x06;
const FRAME_CONNECTION_CLOSE: u8 = 0x1c;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuicProgress {
    /// The datagram holds no client Initial of a version we can decrypt.
    NotInitial,
    /// Initial(s) decrypted, ClientHello not complete yet.
    NeedMore,
    /// The complete ClientHello handshake message (type 1, u24 length, body).
    Hello { version: u32, message: Vec<u8> },
    /// Decryption or frame parsing failed; give up on this flow.
    Failed(&'static str),
}

/// Cheap check: long header, fixed bit, a supported version and packet type
/// Initial, with a Destination Connection ID of at most 20 bytes.
///
/// Does not look at direction (a server Initial passes too) and does not
/// require the 1200-byte minimum of RFC 9000 §14.1: the caller decides
/// direction, and a short datagram simply fails to decrypt later.
/// A client that greases the fixed bit (RFC 9287) is not recognised.
pub fn is_client_initial(datagram: &[u8]) -> bool {
    let mut r = Reader::new(datagram);
    let (Some(first), Some(version)) = (r.u8(), r.u32()) else {
        return false;
    };
    first & (FORM_LONG | FIXED_BIT) == (FORM_LONG | FIXED_BIT)
        && rustls_version(version).is_some()
        && long_type(version, first) == LongType::Initial
        && r.u8().is_some_and(|len| usize::from(len) <= MAX_CID_LEN)
}

/// Per-flow state for the client direction of one QUIC connection attempt.
///
/// Keys come from the first client Initial's DCID. Later Initials that carry
/// the server's chosen connection ID (RFC 9000 §7.2) still decrypt with those
/// keys; an Initial that only decrypts with keys from its own new DCID (after
/// a Retry, RFC 9001 §5.2) or with a new version restarts reassembly.
#[derive(Default)]
pub struct InitialTracker {
    state: State,
    keys: Option<InitialKeys>,
    /// Largest packet number decrypted with the current keys (RFC 9000 A.3).
    largest_pn: Option<u64>,
    /// Initial packets for which decryption was attempted.
    packets: u32,
    crypto: CryptoStream,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Active,
    /// The ClientHello was returned; nothing more to do.
    Done,
    Failed(&'static str),
}

/// Client Initial keys and what they were derived from.
struct InitialKeys {
    version: u32,
    dcid: Vec<u8>,
    client: DirectionalKeys,
}

impl std::fmt::Debug for InitialTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitialTracker")
            .field("state", &self.state)
            .field("version", &self.keys.as_ref().map(|k| k.version))
            .field("dcid_len", &self.keys.as_ref().map(|k| k.dcid.len()))
            .field("largest_pn", &self.largest_pn)
            .field("packets", &self.packets)
            .field("crypto_contiguous", &self.crypto.contiguous)
            .finish()
    }
}

impl InitialTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one client→server UDP payload (may hold coalesced packets).
    ///
    /// `Failed` is sticky: later calls return the same reason. After `Hello`,
    /// later calls return `NotInitial`.
    pub fn on_client_datagram(&mut self, datagram: &[u8]) -> QuicProgress {
        match self.state {
            State::Done => return QuicProgress::NotInitial,
            State::Failed(reason) => return QuicProgress::Failed(reason),
            State::Active => {}
        }
        match self.walk_datagram(datagram) {
            Ok(progress) => progress,
            Err(reason) => {
                self.fail(reason);
                QuicProgress::Failed(reason)
            }
        }
    }

    fn fail(&mut self, reason: &'static str) {
        self.state = State::Failed(reason);
        self.keys = None;
        self.crypto = CryptoStream::default();
    }

    /// Loops over the coalesced packets of one datagram (RFC 9000 §12.2).
    fn walk_datagram(&mut self, datagram: &[u8]) -> Result<QuicProgress, &'static str> {
        let mut rest = datagram;
        let mut first_dcid: Option<&[u8]> = None;
        let mut saw_initial = false;
        while !rest.is_empty() {
            let packet = match parse_long_header(rest) {
                Ok(p) => p,
                // A malformed or truncated first packet that announces itself
                // as an Initial is this flow's problem; anything else
                // (short header, trailing padding, junk after a valid packet)
                // simply ends the datagram.
                Err(HeaderError::Malformed(reason))
                    if first_dcid.is_none() && is_client_initial(rest) =>
                {
                    return Err(reason);
                }
                Err(_) => break,
            };
            // §12.2: ignore later packets with another DCID than the first one.
            match first_dcid {
                None => first_dcid = Some(packet.dcid),
                Some(d) if d != packet.dcid => break,
                Some(_) => {}
            }
            let Some((bytes, after)) = rest.split_at_checked(packet.len) else {
                break;
            };
            rest = after;
            if packet.kind != LongType::Initial {
                // 0-RTT or Handshake coalesced after the Initial: not ours to read.
                continue;
            }
            saw_initial = true;
            self.packets = self.packets.saturating_add(1);
            if self.packets > MAX_INITIAL_PACKETS {
                return Err("too many Initial packets");
            }
            let plain = self.decrypt(bytes, &packet)?;
            parse_frames(&plain, &mut self.crypto)?;
            if let Some(message) = self.crypto.client_hello()? {
                let version = packet.version;
                self.state = State::Done;
                self.keys = None;
                self.crypto = CryptoStream::default();
                return Ok(QuicProgress::Hello { version, message });
            }
        }
        Ok(if saw_initial {
            QuicProgress::NeedMore
        } else {
            QuicProgress::NotInitial
        })
    }

    /// Decrypts one Initial, choosing or re-deriving keys as described on
    /// [`InitialTracker`]. Returns the plaintext frames.
    fn decrypt(&mut self, bytes: &[u8], packet: &LongPacket<'_>) -> Result<Vec<u8>, &'static str> {
        if let Some(keys) = &self.keys {
            let same_version = keys.version == packet.version;
            if same_version {
                if let Some((pn, plain)) =
                    unprotect(&keys.client, bytes, packet.pn_offset, self.largest_pn)
                {
                    self.note_pn(pn);
                    return Ok(plain);
                }
                if keys.dcid == packet.dcid {
                    return Err("Initial packet failed authentication");
                }
            }
        }
        // First Initial, a Retry (new DCID), or a new version (after Version
        // Negotiation): derive from this packet and start over.
        let client = initial_client_keys(packet.version, packet.dcid)
            .ok_or("no QUIC Initial keys for this version")?;
        let (pn, plain) = unprotect(&client, bytes, packet.pn_offset, None)
            .ok_or("Initial packet failed authentication")?;
        self.keys = Some(InitialKeys {
            version: packet.version,
            dcid: packet.dcid.to_vec(),
            client,
        });
        self.crypto = CryptoStream::default();
        self.largest_pn = None;
        self.note_pn(pn);
        Ok(plain)
    }

    fn note_pn(&mut self, pn: u64) {
        self.largest_pn = Some(self.largest_pn.map_or(pn, |l| l.max(pn)));
    }
}

/// Maps a wire version to rustls' key schedule variant.
fn rustls_version(version: u32) -> Option<Version> {
    match version {
        VERSION_1 => Some(Version::V1),
        VERSION_2 => Some(Version::V2),
        VERSION_DRAFT_29..=VERSION_DRAFT_32 => Some(Version::V1Draft),
        _ => None,
    }
}

/// Client-side Initial keys for `dcid`, as the server derives them
/// (`Side::Server` ⇒ `remote` = the client's keys). Always AES-128-GCM with
/// SHA-256 (RFC 9001 §5.2).
fn initial_client_keys(version: u32, dcid: &[u8]) -> Option<DirectionalKeys> {
    let suite = TLS13_AES_128_GCM_SHA256.tls13()?.quic_suite()?;
    Some(
        suite
            .keys(dcid, Side::Server, rustls_version(version)?)
            .remote,
    )
}

/// Removes header protection and decrypts one Initial (`packet` is exactly
/// the packet's bytes). Returns the full packet number and the plaintext, or
/// `None` when the packet is too short or fails authentication.
fn unprotect(
    keys: &DirectionalKeys,
    packet: &[u8],
    pn_offset: usize,
    largest_pn: Option<u64>,
) -> Option<(u64, Vec<u8>)> {
    let sample_start = pn_offset.checked_add(PN_MAX_LEN)?;
    let sample = packet.get(sample_start..sample_start.checked_add(HP_SAMPLE_LEN)?)?;
    let mut first = *packet.first()?;
    let mut pn_bytes = [0u8; PN_MAX_LEN];
    pn_bytes.copy_from_slice(packet.get(pn_offset..sample_start)?);
    keys.header
        .decrypt_in_place(sample, &mut first, &mut pn_bytes)
        .ok()?;
    let pn_len = usize::from(first & 0x03) + 1;
    let pn_bytes = pn_bytes.get(..pn_len)?;
    let truncated = pn_bytes
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let pn = decode_packet_number(largest_pn, truncated, pn_len);

    let header_len = pn_offset.checked_add(pn_len)?;
    let mut buf = packet.to_vec();
    *buf.first_mut()? = first;
    buf.get_mut(pn_offset..header_len)?
        .copy_from_slice(pn_bytes);
    let (header, payload) = buf.split_at_mut_checked(header_len)?;
    let plain_len = keys
        .packet
        .decrypt_in_place(pn, header, payload)
        .ok()?
        .len();
    buf.truncate(header_len.checked_add(plain_len)?);
    buf.drain(..header_len);
    Some((pn, buf))
}

/// RFC 9000 Appendix A.3: the packet number closest to `largest + 1` whose
/// low `pn_len * 8` bits equal `truncated`. Before any packet the expected
/// number is 0 (Chrome's first Initial is packet 1, which decodes fine).
fn decode_packet_number(largest: Option<u64>, truncated: u64, pn_len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << (pn_len.clamp(1, PN_MAX_LEN) * 8);
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | (truncated & mask);
    if expected
        .checked_sub(hwin)
        .is_some_and(|low| candidate <= low)
        && candidate < (1u64 << 62) - win
    {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

const FORM_LONG: u8 = 0x80;
const FIXED_BIT: u8 = 0x40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LongType {
    Initial,
    ZeroRtt,
    Handshake,
    Retry,
}

/// Long Packet Type bits: v1 (RFC 9000 §17.2) vs v2 (RFC 9369 §3.2).
fn long_type(version: u32, first: u8) -> LongType {
    let bits = (first >> 4) & 0x03;
    match (version == VERSION_2, bits) {
        (false, 0) | (true, 1) => LongType::Initial,
        (false, 1) | (true, 2) => LongType::ZeroRtt,
        (false, 2) | (true, 3) => LongType::Handshake,
        _ => LongType::Retry,
    }
}

/// One long-header packet inside a datagram.
#[derive(Debug)]
struct LongPacket<'a> {
    version: u32,
    kind: LongType,
    dcid: &'a [u8],
    /// Offset of the (protected) Packet Number field.
    pn_offset: usize,
    /// Total bytes of this packet: header + Length field's worth.
    len: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum HeaderError {
    /// Short header, unknown version, Retry, or fixed bit clear: stop here.
    NotOurs,
    Malformed(&'static str),
}

/// Parses a long header (RFC 9000 §17.2) up to the Packet Number field.
fn parse_long_header(data: &[u8]) -> Result<LongPacket<'_>, HeaderError> {
    const TRUNCATED: HeaderError = HeaderError::Malformed("truncated Initial packet");
    let mut r = Reader::new(data);
    let first = r.u8().ok_or(HeaderError::NotOurs)?;
    if first & (FORM_LONG | FIXED_BIT) != (FORM_LONG | FIXED_BIT) {
        return Err(HeaderError::NotOurs);
    }
    let version = r.u32().ok_or(HeaderError::NotOurs)?;
    if rustls_version(version).is_none() {
        return Err(HeaderError::NotOurs);
    }
    let kind = long_type(version, first);
    if kind == LongType::Retry {
        // Servers send Retry; it has no Length field to skip by.
        return Err(HeaderError::NotOurs);
    }
    let dcid_len = usize::from(r.u8().ok_or(TRUNCATED)?);
    if dcid_len > MAX_CID_LEN {
        return Err(HeaderError::Malformed("connection ID longer than 20 bytes"));
    }
    let dcid = r.bytes(dcid_len).ok_or(TRUNCATED)?;
    let scid_len = usize::from(r.u8().ok_or(TRUNCATED)?);
    if scid_len > MAX_CID_LEN {
        return Err(HeaderError::Malformed("connection ID longer than 20 bytes"));
    }
    r.bytes(scid_len).ok_or(TRUNCATED)?;
    if kind == LongType::Initial {
        let token_len = r.varint().ok_or(TRUNCATED)?;
        r.bytes(usize::try_from(token_len).map_err(|_| TRUNCATED)?)
            .ok_or(TRUNCATED)?;
    }
    let length = r.varint().ok_or(TRUNCATED)?;
    let pn_offset = r.pos();
    let len = usize::try_from(length)
        .ok()
        .and_then(|l| pn_offset.checked_add(l))
        .filter(|&end| end <= data.len())
        .ok_or(TRUNCATED)?;
    Ok(LongPacket {
        version,
        kind,
        dcid,
        pn_offset,
        len,
    })
}

/// Walks the frames of a decrypted Initial payload, feeding CRYPTO data into
/// `crypto`. Any frame type not allowed in an Initial fails the flow.
fn parse_frames(payload: &[u8], crypto: &mut CryptoStream) -> Result<(), &'static str> {
    const BAD: &str = "malformed frame in Initial";
    let mut r = Reader::new(payload);
    // Frame types are varints that MUST be minimally encoded (RFC 9000
    // §12.4), so every allowed type is one byte on the wire.
    while let Some(frame_type) = r.u8() {
        match frame_type {
            FRAME_PADDING | FRAME_PING => {}
            FRAME_ACK | FRAME_ACK_ECN => {
                // RFC 9000 §19.3: Largest Acknowledged, ACK Delay, ACK Range
                // Count, First ACK Range, then (Gap, ACK Range Length) pairs.
                let _largest = r.varint().ok_or(BAD)?;
                let _delay = r.varint().ok_or(BAD)?;
                let ranges = r.varint().ok_or(BAD)?;
                let _first = r.varint().ok_or(BAD)?;
                // Each pair takes at least 2 bytes, so a huge count runs out
                // of payload quickly instead of looping long.
                for _ in 0..ranges {
                    r.varint().ok_or(BAD)?;
                    r.varint().ok_or(BAD)?;
                }
                if frame_type == FRAME_ACK_ECN {
                    // §19.3.2: ECT0, ECT1, ECN-CE counts.
                    for _ in 0..3 {
                        r.varint().ok_or(BAD)?;
                    }
                }
            }
            FRAME_CRYPTO => {
                let offset = r.varint().ok_or(BAD)?;
                let len = r.varint().ok_or(BAD)?;
                let data = usize::try_from(len)
                    .ok()
                    .and_then(|l| r.bytes(l))
                    .ok_or(BAD)?;
                crypto.insert(offset, data)?;
            }
            // The client is giving up; nothing after it matters.
            FRAME_CONNECTION_CLOSE => break,
            _ => return Err("frame type not allowed in Initial"),
        }
    }
    Ok(())
}

/// The Initial-space CRYPTO stream, reassembled by offset. On overlap the
/// first bytes received win (a retransmission cannot rewrite the hello).
#[derive(Default)]
struct CryptoStream {
    /// Stream bytes `[0, data.len())`; holes are zero until filled. Grows to
    /// the highest end offset seen, at most [`MAX_CRYPTO_BYTES`].
    data: Vec<u8>,
    /// One bit per byte of `data`: set when that byte has been received.
    filled: Vec<u64>,
    /// `[0, contiguous)` is fully received.
    contiguous: usize,
}

impl CryptoStream {
    fn insert(&mut self, offset: u64, bytes: &[u8]) -> Result<(), &'static str> {
        const OVER: &str = "CRYPTO data beyond buffer cap";
        let start = usize::try_from(offset).map_err(|_| OVER)?;
        let end = start.checked_add(bytes.len()).ok_or(OVER)?;
        if end > MAX_CRYPTO_BYTES {
            return Err(OVER);
        }
        if end > self.data.len() {
            self.data.resize(end, 0);
            self.filled.resize(end.div_ceil(64), 0);
        }
        for (pos, &byte) in (start..end).zip(bytes) {
            let bit = 1u64 << (pos % 64);
            if let (Some(word), Some(slot)) =
                (self.filled.get_mut(pos / 64), self.data.get_mut(pos))
                && *word & bit == 0
            {
                *word |= bit;
                *slot = byte;
            }
        }
        while self.is_filled(self.contiguous) {
            self.contiguous += 1;
        }
        Ok(())
    }

    fn is_filled(&self, pos: usize) -> bool {
        pos < self.data.len()
            && self
                .filled
                .get(pos / 64)
                .is_some_and(|w| w & (1u64 << (pos % 64)) != 0)
    }

    /// The complete ClientHello message once `[0, 4 + length)` is contiguous.
    fn client_hello(&self) -> Result<Option<Vec<u8>>, &'static str> {
        let Some(head) = self.data.get(..self.contiguous.min(4)) else {
            return Ok(None);
        };
        match head.first() {
            None => return Ok(None),
            Some(&HANDSHAKE_CLIENT_HELLO) => {}
            Some(_) => return Err("CRYPTO stream does not start with a ClientHello"),
        }
        let &[_, a, b, c] = head else {
            return Ok(None);
        };
        let total = 4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c));
        if total > MAX_CRYPTO_BYTES {
            return Err("ClientHello larger than buffer cap");
        }
        if self.contiguous < total {
            return Ok(None);
        }
        Ok(self.data.get(..total).map(<[u8]>::to_vec))
    }
}

/// Bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn pos(&self) -> usize {
        self.pos
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    fn u8(&mut self) -> Option<u8> {
        self.bytes(1)?.first().copied()
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes(b.try_into().ok()?))
    }

    /// RFC 9000 §16 variable-length integer (1, 2, 4 or 8 bytes).
    fn varint(&mut self) -> Option<u64> {
        let first = *self.buf.get(self.pos)?;
        let len = 1usize << (first >> 6);
        let b = self.bytes(len)?;
        Some(
            b.iter()
                .skip(1)
                .fold(u64::from(first & 0x3f), |acc, &x| (acc << 8) | u64::from(x)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    /// RFC 9001 Appendix A / RFC 9369 Appendix A: client's original DCID.
    const RFC_DCID: &str = "8394c8f03e515708";

    /// RFC 9001 A.2 (and RFC 9369 A.2, same plaintext): the CRYPTO frame at
    /// the start of the client Initial's payload; 917 bytes of PADDING follow.
    const RFC_CRYPTO_FRAME: &str = "
        060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
        04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
        616d706c652e636f6dff01000100000a00080006001d00170018001000070005
        04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
        baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
        0d0010000e0403050306030203080408050806002d00020101001c0002400100
        3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
        75300901100f088394c8f03e51570806048000ffff";

    /// RFC 9001 A.2: the complete 1200-byte protected client Initial (v1, pn 2).
    const RFC9001_CLIENT_INITIAL: &str = "
        c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
        d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
        1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
        8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
        30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
        457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
        4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
        4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
        485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
        059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
        7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
        9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
        be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
        68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
        c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
        f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
        291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
        25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
        14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
        ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
        e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
        c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
        203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
        cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
        fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
        a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
        90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
        162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
        40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
        6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
        8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
        be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
        54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
        760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
        f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
        056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
        7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
        e221af44860018ab0856972e194cd934";

    /// RFC 9369 A.2: the same client Initial protected with QUIC v2 keys.
    const RFC9369_CLIENT_INITIAL: &str = "
        d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485
        dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04
        9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d
        250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a
        12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500
        cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68
        18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33
        12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3
        d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd
        6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520
        bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045
        636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f
        ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12
        16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5
        4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4
        fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b
        8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7
        14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9
        9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91
        abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd
        80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db
        848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18
        d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15
        c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc
        7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61
        f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710
        10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b
        3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e
        06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce
        8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1
        34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1
        e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd
        5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3
        8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89
        d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53
        6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19
        9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b
        a18b2faa745b6fe189cf772a9f84cbfc";

    /// RFC 9001 A.3: the server's Initial (v1). Same type bits as a client Initial.
    const RFC9001_SERVER_INITIAL: &str = "
        cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a
        5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3
        dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84
        022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4
        2158407dd074ee";

    /// The RFC sample ClientHello (handshake message, 241 bytes, SNI example.com).
    fn rfc_hello() -> Vec<u8> {
        hex(RFC_CRYPTO_FRAME)[4..].to_vec()
    }

    // ----- test packet construction (rustls client-side keys) -----

    fn varint(v: u64) -> Vec<u8> {
        if v < 1 << 6 {
            vec![v as u8]
        } else if v < 1 << 14 {
            (v as u16 | 0x4000).to_be_bytes().to_vec()
        } else if v < 1 << 30 {
            (v as u32 | 0x8000_0000).to_be_bytes().to_vec()
        } else {
            (v | 0xc000_0000_0000_0000).to_be_bytes().to_vec()
        }
    }

    fn crypto_frame(offset: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![FRAME_CRYPTO];
        f.extend(varint(offset));
        f.extend(varint(data.len() as u64));
        f.extend(data);
        f
    }

    /// A protected client Initial, as a client would send it.
    struct Seal<'a> {
        version: u32,
        /// DCID the keys are derived from (the client's original DCID).
        key_dcid: &'a [u8],
        /// DCID on the wire.
        dcid: &'a [u8],
        token: &'a [u8],
        pn: u64,
        pn_len: usize,
    }

    impl Seal<'_> {
        fn v1(dcid: &[u8], pn: u64) -> Seal<'_> {
            Seal {
                version: VERSION_1,
                key_dcid: dcid,
                dcid,
                token: b"",
                pn,
                pn_len: 1,
            }
        }

        fn packet(&self, frames: &[u8]) -> Vec<u8> {
            self.packet_typed(frames, if self.version == VERSION_2 { 1 } else { 0 })
        }

        fn packet_typed(&self, frames: &[u8], type_bits: u8) -> Vec<u8> {
            let suite = TLS13_AES_128_GCM_SHA256
                .tls13()
                .unwrap()
                .quic_suite()
                .unwrap();
            let keys = suite
                .keys(
                    self.key_dcid,
                    Side::Client,
                    rustls_version(self.version).unwrap(),
                )
                .local;
            let mut payload = frames.to_vec();
            // The header-protection sample needs 4 bytes after the PN start.
            if payload.len() + self.pn_len < 4 {
                payload.resize(4 - self.pn_len, FRAME_PADDING);
            }
            let mut header = vec![0xc0 | type_bits << 4 | (self.pn_len as u8 - 1)];
            header.extend(self.version.to_be_bytes());
            header.push(self.dcid.len() as u8);
            header.extend(self.dcid);
            header.push(4);
            header.extend(b"scid");
            if type_bits == (self.version == VERSION_2) as u8 {
                header.extend(varint(self.token.len() as u64));
                header.extend(self.token);
            }
            header.extend(varint((self.pn_len + payload.len() + 16) as u64));
            let pn_offset = header.len();
            header.extend(&self.pn.to_be_bytes()[8 - self.pn_len..]);
            let tag = keys
                .packet
                .encrypt_in_place(self.pn, &header, &mut payload)
                .unwrap();
            payload.extend(tag.as_ref());
            let sample = payload[4 - self.pn_len..20 - self.pn_len].to_vec();
            let (first, rest) = header.split_at_mut(1);
            keys.header
                .encrypt_in_place(&sample, &mut first[0], &mut rest[pn_offset - 1..])
                .unwrap();
            header.extend(payload);
            header
        }
    }

    /// A synthetic ClientHello handshake message whose body mentions `name`.
    fn fake_hello(name: &str, body_len: usize) -> Vec<u8> {
        let mut body = b"\x03\x03".to_vec();
        while body.len() < body_len {
            body.extend(name.as_bytes());
        }
        body.truncate(body_len);
        let mut m = vec![HANDSHAKE_CLIENT_HELLO];
        m.extend(&(body.len() as u32).to_be_bytes()[1..]);
        m.extend(body);
        m
    }

    fn expect_hello(p: QuicProgress) -> (u32, Vec<u8>) {
        match p {
            QuicProgress::Hello { version, message } => (version, message),
            other => panic!("expected Hello, got {other:?}"),
        }
    }

    // ----- RFC vectors -----

    #[test]
    fn rfc9001_client_initial_decrypts() {
        let pkt = hex(RFC9001_CLIENT_INITIAL);
        assert_eq!(pkt.len(), 1200);
        assert!(is_client_initial(&pkt));

        // Step by step: header, packet number 2 (RFC 9001 A.2), exact plaintext.
        let hdr = parse_long_header(&pkt).unwrap();
        assert_eq!(hdr.dcid, &hex(RFC_DCID)[..]);
        assert_eq!((hdr.pn_offset, hdr.len), (18, 1200));
        let keys = initial_client_keys(VERSION_1, hdr.dcid).unwrap();
        let (pn, plain) = unprotect(&keys, &pkt, hdr.pn_offset, None).unwrap();
        assert_eq!(pn, 2);
        let mut expected = hex(RFC_CRYPTO_FRAME);
        expected.resize(1162, 0);
        assert_eq!(plain, expected);

        let mut t = InitialTracker::new();
        let (version, message) = expect_hello(t.on_client_datagram(&pkt));
        assert_eq!(version, VERSION_1);
        assert_eq!(message, rfc_hello());
        assert!(contains(&message, b"example.com"));
        // Done: the tracker has nothing more to say.
        assert_eq!(t.on_client_datagram(&pkt), QuicProgress::NotInitial);
    }

    #[test]
    fn rfc9369_v2_client_initial_decrypts() {
        let pkt = hex(RFC9369_CLIENT_INITIAL);
        assert_eq!(pkt.len(), 1200);
        assert!(is_client_initial(&pkt));
        let hdr = parse_long_header(&pkt).unwrap();
        let keys = initial_client_keys(VERSION_2, hdr.dcid).unwrap();
        let (pn, _) = unprotect(&keys, &pkt, hdr.pn_offset, None).unwrap();
        assert_eq!(pn, 2);
        // v1 keys must not open a v2 packet (different salt and labels).
        let v1 = initial_client_keys(VERSION_1, hdr.dcid).unwrap();
        assert!(unprotect(&v1, &pkt, hdr.pn_offset, None).is_none());

        let (version, message) = expect_hello(InitialTracker::new().on_client_datagram(&pkt));
        assert_eq!(version, VERSION_2);
        assert_eq!(message, rfc_hello());
    }

    #[test]
    fn server_initial_is_not_a_client_hello() {
        // A server Initial has Initial type bits, so the cheap check passes,
        // but it is protected with the server's keys and cannot be opened.
        let pkt = hex(RFC9001_SERVER_INITIAL);
        assert!(is_client_initial(&pkt));
        assert!(matches!(
            InitialTracker::new().on_client_datagram(&pkt),
            QuicProgress::Failed(_)
        ));
    }

    #[test]
    fn truncation_at_every_offset_never_succeeds_or_panics() {
        for vector in [RFC9001_CLIENT_INITIAL, RFC9369_CLIENT_INITIAL] {
            let pkt = hex(vector);
            for n in 0..pkt.len() {
                let got = InitialTracker::new().on_client_datagram(&pkt[..n]);
                assert!(
                    matches!(got, QuicProgress::NotInitial | QuicProgress::Failed(_)),
                    "cut at {n}: {got:?}"
                );
                let _ = is_client_initial(&pkt[..n]);
            }
        }
    }

    #[test]
    fn corrupted_bytes_fail_authentication() {
        let pkt = hex(RFC9001_CLIENT_INITIAL);
        // Payload, tag, packet number, and a DCID byte (wrong keys).
        for pos in [30, 600, 1199, 19, 10] {
            let mut bad = pkt.clone();
            bad[pos] ^= 0x01;
            let got = InitialTracker::new().on_client_datagram(&bad);
            assert!(
                matches!(got, QuicProgress::Failed(_)),
                "flip at {pos}: {got:?}"
            );
        }
        // Failed is sticky, even for a good packet afterwards.
        let mut bad = pkt.clone();
        bad[600] ^= 0x80;
        let mut t = InitialTracker::new();
        let first = t.on_client_datagram(&bad);
        assert_eq!(t.on_client_datagram(&pkt), first);
    }

    #[test]
    fn not_initial_inputs() {
        let v1 = hex(RFC9001_CLIENT_INITIAL);
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xc0],
            // short header (1-RTT)
            vec![0x40; 50],
            // Version Negotiation (version 0)
            hex("c000000000088394c8f03e51570800"),
        ];
        // Unknown version.
        let mut unknown = v1.clone();
        unknown[1..5].copy_from_slice(&0x1a2a_3a4au32.to_be_bytes());
        cases.push(unknown);
        // Fixed bit clear.
        let mut unfixed = v1.clone();
        unfixed[0] &= !FIXED_BIT;
        cases.push(unfixed);
        // v1 with 0-RTT type bits; v2 with type 0 (= Retry in v2).
        let mut zero_rtt = v1.clone();
        zero_rtt[0] |= 0x10;
        cases.push(zero_rtt);
        let mut v2_retry = hex(RFC9369_CLIENT_INITIAL);
        v2_retry[0] &= !0x30;
        cases.push(v2_retry);
        // DCID length 21.
        let mut long_cid = v1.clone();
        long_cid[5] = 21;
        cases.push(long_cid);
        for case in &cases {
            assert!(!is_client_initial(case), "{case:02x?}");
            let mut t = InitialTracker::new();
            assert_eq!(t.on_client_datagram(case), QuicProgress::NotInitial);
            // The tracker is still usable afterwards.
            assert_eq!(expect_hello(t.on_client_datagram(&v1)).1, rfc_hello());
        }
    }

    // ----- constructed packets -----

    #[test]
    fn hello_split_over_two_initials_out_of_order() {
        let dcid = hex("0011223344556677");
        let hello = fake_hello("split.example.net", 1500);
        let (a, b) = hello.split_at(700);
        // Packet 0 holds the head, packet 1 the tail; feed the tail first.
        let p0 = Seal::v1(&dcid, 0).packet(&crypto_frame(0, a));
        let p1 = Seal::v1(&dcid, 1).packet(&crypto_frame(700, b));
        let mut t = InitialTracker::new();
        assert_eq!(t.on_client_datagram(&p1), QuicProgress::NeedMore);
        let (version, message) = expect_hello(t.on_client_datagram(&p0));
        assert_eq!(version, VERSION_1);
        assert_eq!(message, hello);
    }

    #[test]
    fn frames_out_of_order_with_ping_ack_padding_and_overlap() {
        let dcid = hex("a1a2a3a4a5a6a7a8");
        let hello = fake_hello("frames.example", 400);
        let mut frames = vec![FRAME_PING];
        frames.extend(crypto_frame(200, &hello[200..]));
        frames.extend([FRAME_PADDING; 3]);
        // ACK with ECN: largest 7, delay 0x1234, 2 ranges, counts.
        frames.push(FRAME_ACK_ECN);
        for v in [7, 0x1234, 2, 1, 0, 1, 2, 0, 5, 6, 70_000] {
            frames.extend(varint(v));
        }
        // Overlapping retransmission with different bytes: first wins.
        let mut forged = hello[150..260].to_vec();
        forged.iter_mut().for_each(|b| *b ^= 0xff);
        frames.extend(crypto_frame(200, &forged[50..]));
        frames.push(FRAME_ACK);
        for v in [3, 0, 0, 3] {
            frames.extend(varint(v));
        }
        frames.extend(crypto_frame(0, &hello[..210]));
        frames.extend(crypto_frame(150, &forged));
        frames.extend(vec![FRAME_PADDING; 600]);
        let p = Seal::v1(&dcid, 1).packet(&frames);
        let (_, message) = expect_hello(InitialTracker::new().on_client_datagram(&p));
        assert_eq!(message, hello);
    }

    #[test]
    fn coalesced_packets() {
        let dcid = hex("0102030405060708");
        let hello = fake_hello("coalesced.example", 900);
        // Two Initials in one datagram, then a 0-RTT packet, then zero padding.
        let mut d = Seal::v1(&dcid, 0).packet(&crypto_frame(450, &hello[450..]));
        d.extend(Seal::v1(&dcid, 1).packet(&crypto_frame(0, &hello[..450])));
        let zero_rtt = Seal::v1(&dcid, 2).packet_typed(&[FRAME_PING; 40], 1);
        d.extend(&zero_rtt);
        d.extend([0u8; 64]);
        let (_, message) = expect_hello(InitialTracker::new().on_client_datagram(&d));
        assert_eq!(message, hello);

        // A 0-RTT first, then the Initial: the 0-RTT is skipped by Length.
        let mut d = zero_rtt.clone();
        d.extend(Seal::v1(&dcid, 0).packet(&crypto_frame(0, &hello)));
        assert_eq!(
            expect_hello(InitialTracker::new().on_client_datagram(&d)).1,
            hello
        );

        // A second packet with another DCID is ignored (RFC 9000 §12.2).
        let other = hex("ffffffffffffffff");
        let mut d = Seal::v1(&dcid, 0).packet(&crypto_frame(0, &hello[..450]));
        d.extend(Seal::v1(&other, 0).packet(&crypto_frame(450, &hello[450..])));
        assert_eq!(
            InitialTracker::new().on_client_datagram(&d),
            QuicProgress::NeedMore
        );

        // A datagram of only 0-RTT holds no Initial.
        assert_eq!(
            InitialTracker::new().on_client_datagram(&zero_rtt),
            QuicProgress::NotInitial
        );
    }

    #[test]
    fn retry_new_dcid_restarts_reassembly() {
        let original = hex("1111111111111111");
        let retry_cid = hex("2222222222222222");
        let old = fake_hello("before-retry.example", 800);
        let new = fake_hello("after-retry.example", 800);
        let mut t = InitialTracker::new();
        assert_eq!(
            t.on_client_datagram(&Seal::v1(&original, 0).packet(&crypto_frame(0, &old[..400]))),
            QuicProgress::NeedMore
        );
        // After Retry: new DCID, keys from it, a token, packet numbers go on.
        let after = |pn, frames: &[u8]| {
            Seal {
                version: VERSION_1,
                key_dcid: &retry_cid,
                dcid: &retry_cid,
                token: b"retry-token-bytes",
                pn,
                pn_len: 2,
            }
            .packet(frames)
        };
        // The tail of the new hello alone must not complete with the old head.
        assert_eq!(
            t.on_client_datagram(&after(1, &crypto_frame(400, &new[400..]))),
            QuicProgress::NeedMore
        );
        let (_, message) =
            expect_hello(t.on_client_datagram(&after(2, &crypto_frame(0, &new[..400]))));
        assert_eq!(message, new);
    }

    #[test]
    fn server_chosen_dcid_keeps_original_keys() {
        // RFC 9000 §7.2: after the server's first Initial the client uses the
        // server's SCID as DCID, but Initial keys stay those of the original DCID.
        let original = hex("3333333333333333");
        let server_cid = hex("44444444");
        let hello = fake_hello("dcid-switch.example", 600);
        let mut t = InitialTracker::new();
        let first = Seal::v1(&original, 0).packet(&crypto_frame(0, &hello[..300]));
        assert_eq!(t.on_client_datagram(&first), QuicProgress::NeedMore);
        let second = Seal {
            version: VERSION_1,
            key_dcid: &original,
            dcid: &server_cid,
            token: b"",
            pn: 1,
            pn_len: 1,
        }
        .packet(&crypto_frame(300, &hello[300..]));
        assert_eq!(expect_hello(t.on_client_datagram(&second)).1, hello);
    }

    #[test]
    fn versions_v2_and_draft29_round_trip() {
        let dcid = hex("5555555555555555");
        let hello = fake_hello("versions.example", 300);
        for version in [VERSION_2, VERSION_DRAFT_29, 0xff00_0020] {
            let seal = Seal {
                version,
                key_dcid: &dcid,
                dcid: &dcid,
                token: b"",
                pn: 0,
                pn_len: 4,
            };
            let p = seal.packet(&crypto_frame(0, &hello));
            assert!(is_client_initial(&p));
            let (v, message) = expect_hello(InitialTracker::new().on_client_datagram(&p));
            assert_eq!((v, message), (version, hello.clone()));
        }
        // A version change restarts with keys for the new version.
        let mut t = InitialTracker::new();
        let v1 = Seal::v1(&dcid, 0).packet(&crypto_frame(0, &hello[..100]));
        assert_eq!(t.on_client_datagram(&v1), QuicProgress::NeedMore);
        let v2 = Seal {
            version: VERSION_2,
            key_dcid: &dcid,
            dcid: &dcid,
            token: b"",
            pn: 0,
            pn_len: 1,
        };
        assert_eq!(
            t.on_client_datagram(&v2.packet(&crypto_frame(100, &hello[100..]))),
            QuicProgress::NeedMore
        );
        let (v, m) =
            expect_hello(t.on_client_datagram(&v2.packet(&crypto_frame(0, &hello[..100]))));
        assert_eq!((v, m), (VERSION_2, hello));
    }

    #[test]
    fn packet_number_decoding() {
        // RFC 9000 A.3 example.
        assert_eq!(
            decode_packet_number(Some(0xa82f_30ea), 0x9b32, 2),
            0xa82f_9b32
        );
        assert_eq!(decode_packet_number(None, 1, 1), 1);
        assert_eq!(decode_packet_number(None, 250, 1), 250);
        assert_eq!(decode_packet_number(Some(250), 4, 1), 260);
        assert_eq!(decode_packet_number(Some(260), 0xff, 1), 255);
        // Saturates instead of overflowing near the top of the range.
        assert_eq!(
            decode_packet_number(Some(u64::MAX), 0, 4),
            0xffff_ffff_0000_0000
        );

        // The nonce uses the full packet number, so a wrong decode fails AEAD.
        let dcid = hex("6666666666666666");
        let hello = fake_hello("pn.example", 200);
        let mut t = InitialTracker::new();
        let mut seal = Seal::v1(&dcid, 250);
        assert_eq!(
            t.on_client_datagram(&seal.packet(&crypto_frame(0, &hello[..100]))),
            QuicProgress::NeedMore
        );
        seal.pn = 260; // encoded as 0x04 in one byte
        let (_, m) =
            expect_hello(t.on_client_datagram(&seal.packet(&crypto_frame(100, &hello[100..]))));
        assert_eq!(m, hello);
    }

    #[test]
    fn hostile_frames_and_caps() {
        let dcid = hex("7777777777777777");
        let failed = |frames: &[u8]| {
            let p = Seal::v1(&dcid, 0).packet(frames);
            let got = InitialTracker::new().on_client_datagram(&p);
            assert!(
                matches!(got, QuicProgress::Failed(_)),
                "{frames:02x?}: {got:?}"
            );
        };
        // STREAM frame, non-minimal CRYPTO type encoding, truncated CRYPTO,
        // truncated ACK, huge ACK range count.
        failed(&[0x08, 0x00, 0x01, 0x61]);
        failed(&[0x40, 0x06, 0x00, 0x01, 0x01]);
        failed(&[FRAME_CRYPTO, 0x00, 0x10, 0x01, 0x00]);
        failed(&[FRAME_ACK, 0x00, 0x00]);
        failed(&[FRAME_ACK, 0x00, 0x00, 0xbf, 0xff, 0xff, 0xff, 0x00, 0x00]);
        // CRYPTO stream that is not a ClientHello.
        failed(&crypto_frame(0, &[0x02, 0x00, 0x00, 0x01, 0x00]));
        // CRYPTO beyond the cap, and a hello announcing more than the cap.
        failed(&crypto_frame(MAX_CRYPTO_BYTES as u64, b"x"));
        failed(&crypto_frame((1 << 62) - 1, b"x"));
        failed(&crypto_frame(0, &[0x01, 0x01, 0x00, 0x00]));

        // CONNECTION_CLOSE ends the frame walk (anything after is ignored).
        let mut frames = crypto_frame(0, &[0x01, 0x00, 0x00]);
        frames.extend([FRAME_CONNECTION_CLOSE, 0xff, 0xff]);
        let p = Seal::v1(&dcid, 0).packet(&frames);
        assert_eq!(
            InitialTracker::new().on_client_datagram(&p),
            QuicProgress::NeedMore
        );

        // At most MAX_INITIAL_PACKETS Initials per tracker.
        let mut t = InitialTracker::new();
        for pn in 0..u64::from(MAX_INITIAL_PACKETS) {
            let p = Seal::v1(&dcid, pn).packet(&[FRAME_PING]);
            assert_eq!(t.on_client_datagram(&p), QuicProgress::NeedMore, "pn {pn}");
        }
        let p = Seal::v1(&dcid, 99).packet(&[FRAME_PING]);
        assert!(matches!(t.on_client_datagram(&p), QuicProgress::Failed(_)));
    }

    #[test]
    fn constructed_split_hello_truncated_everywhere() {
        let dcid = hex("8888888888888888");
        let hello = fake_hello("trunc.example", 300);
        let mut d = Seal::v1(&dcid, 0).packet(&crypto_frame(0, &hello[..150]));
        let first_len = d.len();
        d.extend(Seal::v1(&dcid, 1).packet(&crypto_frame(150, &hello[150..])));
        for n in 0..d.len() {
            let got = InitialTracker::new().on_client_datagram(&d[..n]);
            // Once the first packet is whole, a cut second packet is ignored.
            if n >= first_len {
                assert_eq!(got, QuicProgress::NeedMore, "cut at {n}");
            } else {
                assert!(
                    matches!(got, QuicProgress::NotInitial | QuicProgress::Failed(_)),
                    "cut at {n}: {got:?}"
                );
            }
        }
        assert_eq!(
            expect_hello(InitialTracker::new().on_client_datagram(&d)).1,
            hello
        );
    }

    // ----- real captures -----

    fn testdata_dir() -> Option<PathBuf> {
        let base = std::env::var_os("SHADOWMCP_TESTDATA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/work/shared/testdata"));
        let dir = base.join("quic-initial");
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!("skipping: {} not found", dir.display());
            None
        }
    }

    /// UDP payloads from `src_port` to port 443, in capture order.
    fn client_payloads(path: &std::path::Path, src_port: u16) -> Vec<Vec<u8>> {
        use etherparse::{SlicedPacket, TransportSlice};
        let mut cap = pcap::Capture::from_file(path).expect("open capture");
        let ethernet = cap.get_datalink() == pcap::Linktype::ETHERNET;
        let mut out = Vec::new();
        while let Ok(pkt) = cap.next_packet() {
            let sliced = if ethernet {
                SlicedPacket::from_ethernet(pkt.data)
            } else {
                SlicedPacket::from_ip(pkt.data)
            };
            if let Ok(s) = sliced
                && let Some(TransportSlice::Udp(udp)) = s.transport
                && udp.source_port() == src_port
                && udp.destination_port() == 443
            {
                out.push(udp.payload().to_vec());
            }
        }
        out
    }

    #[test]
    fn real_chrome_captures() {
        let Some(dir) = testdata_dir() else { return };
        let cases = [
            (
                "quic-tls-handshake.pcapng",
                59102,
                "2fadc20ded383f8c",
                "www.google.com",
            ),
            (
                "quic-with-several-tls-frames.pcapng",
                55906,
                "fa29602f3c763cc7",
                "ogs.google.com",
            ),
            (
                "chrome-cloudflare-quic-with-secrets.pcapng",
                50280,
                "203f9e9f68698274",
                "cloudflare-quic.com",
            ),
        ];
        for (file, port, dcid, sni) in cases {
            let datagrams = client_payloads(&dir.join(file), port);
            assert!(!datagrams.is_empty(), "{file}: no client datagrams");
            let first = &datagrams[0];
            assert!(is_client_initial(first), "{file}");
            // Chrome starts Initial packet numbers at 1.
            let hdr = parse_long_header(first).unwrap();
            assert_eq!(hdr.dcid, &hex(dcid)[..], "{file}");
            let keys = initial_client_keys(hdr.version, hdr.dcid).unwrap();
            let (pn, _) = unprotect(&keys, &first[..hdr.len], hdr.pn_offset, None).unwrap();
            assert_eq!(pn, 1, "{file}");

            let mut t = InitialTracker::new();
            let mut hello = None;
            for d in &datagrams {
                match t.on_client_datagram(d) {
                    QuicProgress::Hello { version, message } => {
                        hello = Some((version, message));
                        break;
                    }
                    QuicProgress::Failed(r) => panic!("{file}: failed: {r}"),
                    _ => {}
                }
            }
            let (version, message) = hello.unwrap_or_else(|| panic!("{file}: no ClientHello"));
            assert_eq!(version, VERSION_1, "{file}");
            assert_eq!(message[0], HANDSHAKE_CLIENT_HELLO);
            let len = usize::from(message[1]) << 16
                | usize::from(message[2]) << 8
                | usize::from(message[3]);
            assert_eq!(message.len(), 4 + len, "{file}");
            assert!(
                contains(&message, sni.as_bytes()),
                "{file}: SNI {sni} not found"
            );
        }
    }
}
