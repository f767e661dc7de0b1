//! HPACK header block decoding (RFC 7541) for a passive observer: one
//! [`HpackDecoder`] per direction of an HTTP/2 connection keeps the dynamic
//! table in step with the sender's encoder.
//!
//! Written here rather than taken from a crate: the decoders published on
//! crates.io are either internal to a client/server library (h2's is
//! private) or unmaintained, and none bounds the dynamic table by the
//! observer's own cap independently of what the peers negotiated, which a
//! passive decoder needs (it cannot refuse a setting, only stop).
//!
//! Bounds: the dynamic table never exceeds the cap given to
//! [`HpackDecoder::new`] (a size update above it is
//! [`HpackError::TableSizeOverCap`]); integers above `u32::MAX` are rejected;
//! string lengths are checked against the block; Huffman output is at most
//! 8/5 of its input. Decoded fields are handed to a callback, so the caller
//! bounds the header list (see `http2`). The scratch buffers for a literal's
//! name and value are reused from block to block.
//!
//! Strictness: everything RFC 7541 calls a decoding error is an error (the
//! decoder state is then unusable, as the table may have diverged): an index
//! outside both tables, a size update after the first field of a block or
//! above the receiver's SETTINGS_HEADER_TABLE_SIZE, the EOS symbol or
//! padding other than ≤ 7 one-bits in a Huffman string.

use std::collections::VecDeque;

/// Initial dynamic table size (RFC 7541 §4.2, RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Per-entry overhead counted in the table size (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("HPACK header block ends inside a representation")]
    Truncated,
    #[error("HPACK integer exceeds 32 bits")]
    BadInteger,
    #[error("HPACK index {0} is in neither the static nor the dynamic table")]
    BadIndex(u32),
    #[error("invalid Huffman-coded HPACK string (EOS symbol or bad padding)")]
    BadHuffman,
    #[error("HPACK dynamic table size update to {0} above the receiver's setting {1}")]
    TableSizeUpdate(u32, u32),
    #[error("HPACK dynamic table size update to {0} above the observer's cap {1}")]
    TableSizeOverCap(u32, u32),
    #[error("HPACK dynamic table size update after a header field")]
    LateSizeUpdate,
}

/// RFC 7541 Appendix A, index 1..=61 (public for the benchmark
/// generator's encoder).
pub const STATIC_TABLE: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// RFC 7541 Appendix B: (code, length in bits) per symbol 0..=255, then EOS
/// (public for the benchmark generator's encoder).
pub const HUFFMAN: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

const MIN_CODE_LEN: usize = 5;
const MAX_CODE_LEN: usize = 30;
const EOS: u16 = 256;

/// The Huffman code as a canonical code (RFC 7541's is one: within a length,
/// codes are consecutive in symbol order): per length, the first code, how
/// many codes there are and where their symbols start in `symbols`. A
/// decoder then needs one comparison per candidate length, no tree.
struct Canonical {
    first: [u32; MAX_CODE_LEN + 1],
    count: [u16; MAX_CODE_LEN + 1],
    offset: [u16; MAX_CODE_LEN + 1],
    symbols: [u16; 257],
}

const CANONICAL: Canonical = {
    let mut first = [u32::MAX; MAX_CODE_LEN + 1];
    let mut count = [0u16; MAX_CODE_LEN + 1];
    let mut i = 0;
    while i < HUFFMAN.len() {
        let (code, len) = HUFFMAN[i];
        count[len as usize] += 1;
        if code < first[len as usize] {
            first[len as usize] = code;
        }
        i += 1;
    }
    let mut offset = [0u16; MAX_CODE_LEN + 1];
    let mut acc = 0u16;
    let mut l = 1;
    while l <= MAX_CODE_LEN {
        offset[l] = acc;
        acc += count[l];
        l += 1;
    }
    // A non-canonical table would index out of bounds here: a compile error.
    let mut symbols = [0u16; 257];
    let mut s = 0;
    while s < HUFFMAN.len() {
        let (code, len) = HUFFMAN[s];
        let at = offset[len as usize] as u32 + (code - first[len as usize]);
        symbols[at as usize] = s as u16;
        s += 1;
    }
    Canonical {
        first,
        count,
        offset,
        symbols,
    }
};

/// Decode a Huffman-coded string (RFC 7541 §5.2), appending to `out`.
pub fn huffman_decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HpackError> {
    let c = &CANONICAL;
    // Every code is at least 5 bits: output is at most 8/5 of the input.
    out.reserve(input.len().saturating_mul(8) / 5);
    // Bits not yet decoded are the low `nbits` of `acc`, oldest highest.
    let mut acc: u64 = 0;
    let mut nbits: u32 = 0;
    let mut bytes = input.iter();
    loop {
        while nbits <= 56 {
            let Some(&b) = bytes.next() else { break };
            acc = acc << 8 | u64::from(b);
            nbits += 8;
        }
        if nbits == 0 {
            return Ok(());
        }
        // A canonical code of length `len` is found when the next `len`
        // bits are below the end of that length's codes (longer codes'
        // prefixes are all above it): a few compares per symbol.
        let mut decoded = false;
        for len in MIN_CODE_LEN..=MAX_CODE_LEN.min(nbits as usize) {
            let v = (acc >> (nbits - len as u32)) as u32 & ((1u32 << len) - 1);
            let (Some(&first), Some(&count)) = (c.first.get(len), c.count.get(len)) else {
                break;
            };
            if count > 0 && v >= first && v - first < u32::from(count) {
                let at = c
                    .offset
                    .get(len)
                    .map_or(usize::MAX, |&o| usize::from(o))
                    .saturating_add((v - first) as usize);
                let sym = *c.symbols.get(at).ok_or(HpackError::BadHuffman)?;
                if sym == EOS {
                    return Err(HpackError::BadHuffman);
                }
                out.push(sym as u8);
                nbits -= len as u32;
                decoded = true;
                break;
            }
        }
        if !decoded {
            // The code is complete, so ≥ 30 bits always decode: what is
            // left is padding, fewer than 8 one-bits (the EOS prefix).
            if nbits > 7 {
                return Err(HpackError::BadHuffman);
            }
            let mask = (1u64 << nbits) - 1;
            return if acc & mask == mask {
                Ok(())
            } else {
                Err(HpackError::BadHuffman)
            };
        }
    }
}

/// One dynamic table entry: name and value in one allocation.
#[derive(Debug, Clone)]
struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }

    /// Size as RFC 7541 §4.1 counts it.
    fn size(&self) -> usize {
        self.bytes.len().saturating_add(ENTRY_OVERHEAD)
    }
}

/// Decoder of one direction's header blocks.
#[derive(Debug, Clone)]
pub struct HpackDecoder {
    /// Newest entry first (dynamic index 62 is `table[0]`).
    table: VecDeque<Entry>,
    /// Sum of `Entry::size` over the table.
    size: usize,
    /// The table's maximum size, as last set by a size update.
    max_size: usize,
    /// The largest size an update may select: the receiving side's
    /// SETTINGS_HEADER_TABLE_SIZE.
    allowed: usize,
    /// The observer's own bound, whatever the peers agreed.
    cap: usize,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
    table_bytes: usize,
}

impl HpackDecoder {
    /// A decoder at the protocol's initial state (table size 4096), whose
    /// table may never exceed `cap` bytes as RFC 7541 counts them.
    pub fn new(cap: usize) -> Self {
        Self {
            table: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE.min(cap),
            allowed: DEFAULT_TABLE_SIZE,
            cap,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
            table_bytes: 0,
        }
    }

    /// The receiver of this direction advertised SETTINGS_HEADER_TABLE_SIZE:
    /// the encoder may now select up to `size` with a size update.
    pub fn set_allowed(&mut self, size: usize) {
        self.allowed = size;
    }

    /// Current dynamic table size (RFC 7541 §4.1) and its maximum.
    pub fn table_size(&self) -> (usize, usize) {
        (self.size, self.max_size)
    }

    /// Number of dynamic table entries.
    pub fn table_len(&self) -> usize {
        self.table.len()
    }

    /// Heap bytes held: the table's entries and slots, and the scratch buffers.
    pub fn held_bytes(&self) -> usize {
        self.table_bytes
            .saturating_add(self.table.capacity() * std::mem::size_of::<Entry>())
            .saturating_add(self.name_buf.capacity())
            .saturating_add(self.value_buf.capacity())
    }

    /// Decode one complete header block, calling `field(name, value)` for
    /// each field in order. On error the table may be out of step with the
    /// encoder's: the caller must stop using this decoder.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), HpackError> {
        let mut pos = 0usize;
        let mut seen_field = false;
        while let Some(&first) = block.get(pos) {
            if first & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = decode_int(block, &mut pos, 7)?;
                let (name, value) = self.lookup(index)?;
                field(name, value);
                seen_field = true;
            } else if first & 0xe0 == 0x20 {
                // §6.3 Dynamic Table Size Update: only before the first field.
                let size = decode_int(block, &mut pos, 5)?;
                if seen_field {
                    return Err(HpackError::LateSizeUpdate);
                }
                self.size_update(size)?;
            } else {
                // §6.2.1 with incremental indexing (6-bit index), §6.2.2
                // without and §6.2.3 never indexed (4-bit index).
                let indexing = first & 0x40 != 0;
                let index = decode_int(block, &mut pos, if indexing { 6 } else { 4 })?;
                let mut name = std::mem::take(&mut self.name_buf);
                name.clear();
                let got = if index == 0 {
                    read_string(block, &mut pos, &mut name)
                } else {
                    self.lookup(index).map(|(n, _)| name.extend_from_slice(n))
                };
                let mut value = std::mem::take(&mut self.value_buf);
                value.clear();
                let got = got.and_then(|()| read_string(block, &mut pos, &mut value));
                if got.is_ok() {
                    field(&name, &value);
                    if indexing {
                        self.insert(&name, &value);
                    }
                }
                self.name_buf = name;
                self.value_buf = value;
                got?;
                seen_field = true;
            }
        }
        Ok(())
    }

    /// An entry of the static (1..=61) or dynamic (62..) table.
    fn lookup(&self, index: u32) -> Result<(&[u8], &[u8]), HpackError> {
        let i = index as usize;
        if i == 0 {
            return Err(HpackError::BadIndex(index));
        }
        if let Some(&(n, v)) = STATIC_TABLE.get(i - 1) {
            return Ok((n, v));
        }
        self.table
            .get(i - 1 - STATIC_TABLE.len())
            .map(|e| (e.name(), e.value()))
            .ok_or(HpackError::BadIndex(index))
    }

    fn size_update(&mut self, size: u32) -> Result<(), HpackError> {
        let s = size as usize;
        if s > self.cap {
            return Err(HpackError::TableSizeOverCap(
                size,
                u32::try_from(self.cap).unwrap_or(u32::MAX),
            ));
        }
        if s > self.allowed {
            return Err(HpackError::TableSizeUpdate(
                size,
                u32::try_from(self.allowed).unwrap_or(u32::MAX),
            ));
        }
        self.max_size = s;
        self.evict_to(s);
        Ok(())
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            let Some(e) = self.table.pop_back() else {
                self.size = 0;
                break;
            };
            self.size = self.size.saturating_sub(e.size());
            self.table_bytes = self.table_bytes.saturating_sub(e.bytes.len());
        }
    }

    /// §4.4: evict until the entry fits; an entry larger than the table
    /// empties it and is not added.
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let need = name
            .len()
            .saturating_add(value.len())
            .saturating_add(ENTRY_OVERHEAD);
        if need > self.max_size {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - need);
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        let e = Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        };
        self.size = self.size.saturating_add(e.size());
        self.table_bytes = self.table_bytes.saturating_add(e.bytes.len());
        self.table.push_front(e);
    }
}

/// §5.1 integer with an `n`-bit prefix, at most `u32::MAX`.
fn decode_int(block: &[u8], pos: &mut usize, n: u8) -> Result<u32, HpackError> {
    let first = *block.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mask = (1u32 << n) - 1;
    let mut value = u64::from(u32::from(first) & mask);
    if value < u64::from(mask) {
        return Ok(value as u32);
    }
    let mut shift = 0u32;
    loop {
        let b = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value = value.saturating_add(u64::from(b & 0x7f) << shift);
        if value > u64::from(u32::MAX) {
            return Err(HpackError::BadInteger);
        }
        if b & 0x80 == 0 {
            return Ok(value as u32);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::BadInteger);
        }
    }
}

/// §5.2 string literal, appended to `out`.
fn read_string(block: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = decode_int(block, pos, 7)? as usize;
    let end = pos.checked_add(len).ok_or(HpackError::Truncated)?;
    let raw = block.get(*pos..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        huffman_decode(raw, out)
    } else {
        out.extend_from_slice(raw);
        Ok(())
    }
}

/// A test-only HPACK encoder that can produce every representation, to
/// check the decoder against any mix of them (and to build HTTP/2 frames).
/// Write an integer with an N-bit prefix (RFC 7541 §5.1), the prefix's
/// other bits set from `first`: the encoder side, for the benchmark
/// generator and the tests.
pub fn encode_int(out: &mut Vec<u8>, first: u8, prefix: u8, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut v = value - max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

#[cfg(test)]
pub(crate) mod test_encoder {
    use super::{ENTRY_OVERHEAD, HUFFMAN, STATIC_TABLE};
    use std::collections::VecDeque;

    /// Encoder state mirroring the decoder's dynamic table.
    pub struct Encoder {
        table: VecDeque<(Vec<u8>, Vec<u8>)>,
        size: usize,
        max: usize,
    }

    impl Default for Encoder {
        fn default() -> Self {
            Self {
                table: VecDeque::new(),
                size: 0,
                max: super::DEFAULT_TABLE_SIZE,
            }
        }
    }

    impl Encoder {
        pub fn size(&self) -> usize {
            self.size
        }

        pub fn size_update(&mut self, out: &mut Vec<u8>, max: usize) {
            encode_int(out, 0x20, 5, max);
            self.max = max;
            self.evict(max);
        }

        fn evict(&mut self, max: usize) {
            while self.size > max {
                let (n, v) = self.table.pop_back().unwrap();
                self.size -= n.len() + v.len() + ENTRY_OVERHEAD;
            }
        }

        fn find(&self, name: &[u8], value: Option<&[u8]>) -> Option<usize> {
            let stat = STATIC_TABLE
                .iter()
                .position(|&(n, v)| n == name && value.is_none_or(|x| x == v))
                .map(|i| i + 1);
            stat.or_else(|| {
                self.table
                    .iter()
                    .position(|(n, v)| n == name && value.is_none_or(|x| x == v.as_slice()))
                    .map(|i| i + 1 + STATIC_TABLE.len())
            })
        }

        /// Encode a field. `choice` picks the representation: bits 0-1
        /// indexed (when the pair is in a table) / with incremental
        /// indexing / without indexing / never indexed; bit 2 name by index
        /// when possible; bits 3 and 4 Huffman for name and value.
        pub fn field(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8], choice: u8) {
            let mut kind = choice & 3;
            if kind == 0 {
                if let Some(i) = self.find(name, Some(value)) {
                    encode_int(out, 0x80, 7, i);
                    return;
                }
                kind = 1;
            }
            let (bits, prefix) = match kind {
                1 => (0x40, 6),
                2 => (0x00, 4),
                _ => (0x10, 4),
            };
            match self.find(name, None).filter(|_| choice & 4 != 0) {
                Some(i) => encode_int(out, bits, prefix, i),
                None => {
                    encode_int(out, bits, prefix, 0);
                    encode_str(out, name, choice & 8 != 0);
                }
            }
            encode_str(out, value, choice & 16 != 0);
            if kind == 1 {
                let need = name.len() + value.len() + ENTRY_OVERHEAD;
                if need > self.max {
                    self.evict(0);
                } else {
                    self.evict(self.max - need);
                    self.table.push_front((name.to_vec(), value.to_vec()));
                    self.size += need;
                }
            }
        }
    }

    use super::encode_int;

    pub fn encode_str(out: &mut Vec<u8>, s: &[u8], huffman: bool) {
        if !huffman {
            encode_int(out, 0, 7, s.len());
            out.extend_from_slice(s);
            return;
        }
        let h = huffman_encode(s);
        encode_int(out, 0x80, 7, h.len());
        out.extend_from_slice(&h);
    }

    pub fn huffman_encode(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut acc: u64 = 0;
        let mut bits = 0u32;
        for &b in s {
            let (code, len) = HUFFMAN[usize::from(b)];
            acc = acc << len | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        if bits > 0 {
            out.push((acc << (8 - bits)) as u8 | (0xff >> bits));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    type Fields = Vec<(String, String)>;

    fn decode(d: &mut HpackDecoder, block: &[u8]) -> Result<Fields, HpackError> {
        let mut out = Vec::new();
        d.decode(block, |n, v| {
            out.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            ))
        })?;
        Ok(out)
    }

    fn fields(list: &[(&str, &str)]) -> Fields {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn table(d: &HpackDecoder) -> Fields {
        d.table
            .iter()
            .map(|e| {
                (
                    String::from_utf8(e.name().to_vec()).unwrap(),
                    String::from_utf8(e.value().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn huffman_table_is_a_complete_canonical_prefix_code() {
        // Kraft sum exactly 1 (complete) and, sorted by (length, code), each
        // code follows the previous one canonically (prefix-free).
        let kraft: u64 = HUFFMAN.iter().map(|&(_, l)| 1u64 << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
        let mut sorted: Vec<(u8, u32)> = HUFFMAN.iter().map(|&(c, l)| (l, c)).collect();
        sorted.sort();
        for w in sorted.windows(2) {
            let ((l0, c0), (l1, c1)) = (w[0], w[1]);
            assert_eq!(c1, (c0 + 1) << (l1 - l0), "not canonical at {c0:#x}/{l0}");
        }
    }

    #[test]
    fn integers_of_rfc7541_c1() {
        let mut p = 0;
        assert_eq!(decode_int(&[0x0a], &mut p, 5), Ok(10));
        let mut p = 0;
        assert_eq!(decode_int(&[0x1f, 0x9a, 0x0a], &mut p, 5), Ok(1337));
        assert_eq!(p, 3);
        let mut p = 0;
        assert_eq!(decode_int(&[0x2a], &mut p, 8), Ok(42));
        // u32::MAX fits; one more does not; a sixth continuation byte never.
        let max = [0x1f, 0xe0, 0xff, 0xff, 0xff, 0x0f];
        let mut p = 0;
        assert_eq!(decode_int(&max, &mut p, 5), Ok(u32::MAX));
        let over = [0x1f, 0xe1, 0xff, 0xff, 0xff, 0x0f];
        let mut p = 0;
        assert_eq!(decode_int(&over, &mut p, 5), Err(HpackError::BadInteger));
        let long = [0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
        let mut p = 0;
        assert_eq!(decode_int(&long, &mut p, 5), Err(HpackError::BadInteger));
        let mut p = 0;
        assert_eq!(
            decode_int(&[0x1f, 0x80], &mut p, 5),
            Err(HpackError::Truncated)
        );
    }

    #[test]
    fn single_representations_of_rfc7541_c2() {
        let mut d = HpackDecoder::new(4096);
        let b = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        assert_eq!(
            decode(&mut d, &b).unwrap(),
            fields(&[("custom-key", "custom-header")])
        );
        assert_eq!(d.table_size(), (55, 4096));
        assert_eq!(table(&d), fields(&[("custom-key", "custom-header")]));

        let mut d = HpackDecoder::new(4096);
        let b = hex("040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(
            decode(&mut d, &b).unwrap(),
            fields(&[(":path", "/sample/path")])
        );
        assert_eq!(d.table_len(), 0);

        let mut d = HpackDecoder::new(4096);
        let b = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
        assert_eq!(
            decode(&mut d, &b).unwrap(),
            fields(&[("password", "secret")])
        );
        assert_eq!(d.table_len(), 0);

        let mut d = HpackDecoder::new(4096);
        assert_eq!(
            decode(&mut d, &hex("82")).unwrap(),
            fields(&[(":method", "GET")])
        );
        assert_eq!(d.table_len(), 0);
    }

    /// C.3 (plain) and C.4 (Huffman): three requests on one decoder.
    fn requests(blocks: [&str; 3]) {
        let mut d = HpackDecoder::new(4096);
        let r1 = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[0])).unwrap(), fields(&r1));
        assert_eq!(table(&d), fields(&[(":authority", "www.example.com")]));
        assert_eq!(d.table_size().0, 57);
        let mut r2 = r1.to_vec();
        r2.push(("cache-control", "no-cache"));
        assert_eq!(decode(&mut d, &hex(blocks[1])).unwrap(), fields(&r2));
        assert_eq!(
            table(&d),
            fields(&[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table_size().0, 110);
        let r3 = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[2])).unwrap(), fields(&r3));
        assert_eq!(
            table(&d),
            fields(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table_size().0, 164);
    }

    #[test]
    fn requests_without_huffman_rfc7541_c3() {
        requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn requests_with_huffman_rfc7541_c4() {
        requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    /// C.5 (plain) and C.6 (Huffman): three responses, table size 256, so
    /// entries are evicted.
    fn responses(blocks: [&str; 3]) {
        let mut d = HpackDecoder::new(4096);
        d.set_allowed(256);
        d.size_update(256).unwrap();
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let loc = "https://www.example.com";
        let r1 = [
            (":status", "302"),
            ("cache-control", "private"),
            ("date", date1),
            ("location", loc),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[0])).unwrap(), fields(&r1));
        assert_eq!(
            table(&d),
            fields(&[
                ("location", loc),
                ("date", date1),
                ("cache-control", "private"),
                (":status", "302")
            ])
        );
        assert_eq!(d.table_size().0, 222);
        let mut r2 = r1;
        r2[0] = (":status", "307");
        assert_eq!(decode(&mut d, &hex(blocks[1])).unwrap(), fields(&r2));
        assert_eq!(
            table(&d),
            fields(&[
                (":status", "307"),
                ("location", loc),
                ("date", date1),
                ("cache-control", "private")
            ])
        );
        assert_eq!(d.table_size().0, 222);
        let date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
        let cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        let r3 = [
            (":status", "200"),
            ("cache-control", "private"),
            ("date", date2),
            ("location", loc),
            ("content-encoding", "gzip"),
            ("set-cookie", cookie),
        ];
        assert_eq!(decode(&mut d, &hex(blocks[2])).unwrap(), fields(&r3));
        assert_eq!(
            table(&d),
            fields(&[
                ("set-cookie", cookie),
                ("content-encoding", "gzip"),
                ("date", date2)
            ])
        );
        assert_eq!(d.table_size().0, 215);
    }

    #[test]
    fn responses_without_huffman_rfc7541_c5() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
             3d31",
        ]);
    }

    #[test]
    fn responses_with_huffman_rfc7541_c6() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn huffman_rejects_eos_and_bad_padding() {
        let mut out = Vec::new();
        // "a" is 00011 (5 bits) + 111 padding.
        assert_eq!(huffman_decode(&[0x1f], &mut out), Ok(()));
        assert_eq!(out, b"a");
        // Padding with a zero bit.
        assert_eq!(
            huffman_decode(&[0x1e], &mut out),
            Err(HpackError::BadHuffman)
        );
        // A full byte of padding (8 one-bits) after "a".
        assert_eq!(
            huffman_decode(&[0x1f, 0xff], &mut out),
            Err(HpackError::BadHuffman)
        );
        // The EOS symbol itself (30 one-bits) then padding.
        assert_eq!(
            huffman_decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HpackError::BadHuffman)
        );
    }

    #[test]
    fn indexes_outside_both_tables_are_errors() {
        let mut d = HpackDecoder::new(4096);
        assert_eq!(decode(&mut d, &[0x80]), Err(HpackError::BadIndex(0)));
        // 62 with an empty dynamic table.
        assert_eq!(decode(&mut d, &[0xbe]), Err(HpackError::BadIndex(62)));
        // Literal whose indexed name is out of range.
        assert_eq!(
            decode(&mut d, &[0x7f, 0x00, 0x01, b'x']),
            Err(HpackError::BadIndex(63))
        );
        // A string longer than the block.
        assert_eq!(
            decode(&mut d, &[0x40, 0x05, b'a']),
            Err(HpackError::Truncated)
        );
    }

    #[test]
    fn size_updates_are_bounded_by_setting_and_cap() {
        let mut d = HpackDecoder::new(8192);
        // Above the default setting of 4096.
        assert_eq!(
            decode(&mut d, &hex("3fe1 3f")),
            Err(HpackError::TableSizeUpdate(8192, 4096))
        );
        d.set_allowed(1 << 20);
        // Above the cap although the receiver allowed it.
        assert_eq!(
            decode(&mut d, &hex("3fe1 7f")),
            Err(HpackError::TableSizeOverCap(16384, 8192))
        );
        let mut d = HpackDecoder::new(8192);
        decode(
            &mut d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        )
        .unwrap();
        assert_eq!(d.table_len(), 1);
        // Size 0 empties the table; a later update restores room.
        decode(&mut d, &hex("20 3fe1 1f")).unwrap();
        assert_eq!(d.table_size(), (0, 4096));
        // An update after a field is an error.
        assert_eq!(
            decode(&mut d, &hex("82 20")),
            Err(HpackError::LateSizeUpdate)
        );
    }

    #[test]
    fn an_entry_larger_than_the_table_empties_it() {
        let mut d = HpackDecoder::new(4096);
        decode(&mut d, &hex("3f15")).unwrap(); // size 52
        assert_eq!(d.table_size(), (0, 52));
        decode(&mut d, &hex("4001 6101 62")).unwrap(); // a: b, 34 bytes
        assert_eq!(d.table_len(), 1);
        // 21-byte value: 1 + 21 + 32 = 54 > 52.
        let mut b = hex("4001 6115");
        b.extend_from_slice(&[b'v'; 21]);
        decode(&mut d, &b).unwrap();
        assert_eq!(d.table_size(), (0, 52));
        assert_eq!(d.table_len(), 0);
    }
    proptest::proptest! {
        /// Any header list, encoded with any mix of representations (and
        /// table size updates), decodes to itself, block after block.
        #[test]
        fn any_representation_mix_decodes_to_the_same_fields(
            blocks in proptest::collection::vec(
                (
                    proptest::option::of(0usize..600),
                    proptest::collection::vec(
                        (
                            proptest::sample::select(vec![
                                ":method", ":path", ":authority", "content-type", "accept",
                                "mcp-session-id", "x-custom", "cookie", "date",
                            ]),
                            proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                            proptest::num::u8::ANY,
                        ),
                        0..12,
                    ),
                ),
                1..6,
            )
        ) {
            let mut enc = test_encoder::Encoder::default();
            let mut dec = HpackDecoder::new(4096);
            for (update, fields) in blocks {
                let mut block = Vec::new();
                if let Some(size) = update {
                    enc.size_update(&mut block, size);
                }
                let mut want = Vec::new();
                for (name, value, choice) in fields {
                    enc.field(&mut block, name.as_bytes(), &value, choice);
                    want.push((name.as_bytes().to_vec(), value));
                }
                let mut got = Vec::new();
                dec.decode(&block, |n, v| got.push((n.to_vec(), v.to_vec()))).unwrap();
                proptest::prop_assert_eq!(got, want);
                proptest::prop_assert_eq!(dec.table_size().0, enc_size(&enc));
            }
        }

        /// Huffman decoding inverts encoding for any bytes.
        #[test]
        fn huffman_round_trips(s in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut out = Vec::new();
            huffman_decode(&test_encoder::huffman_encode(&s), &mut out).unwrap();
            proptest::prop_assert_eq!(out, s);
        }

        /// Arbitrary blocks never panic, and the table stays within its cap.
        #[test]
        fn arbitrary_blocks_are_safe(block in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut dec = HpackDecoder::new(1024);
            dec.set_allowed(1 << 20);
            let _ = dec.decode(&block, |_, _| {});
            proptest::prop_assert!(dec.table_size().0 <= 1024);
        }
    }

    fn enc_size(enc: &test_encoder::Encoder) -> usize {
        enc.size()
    }
}
