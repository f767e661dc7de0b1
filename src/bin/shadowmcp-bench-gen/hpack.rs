//! An HPACK encoder (RFC 7541) as HTTP/2 clients and servers use one: a
//! dynamic table per direction, indexed fields where a table has the pair,
//! literals with incremental indexing for fields that repeat, without
//! indexing for ones that change, never indexed for credentials, and
//! Huffman-coded strings when they are shorter. The tables are the
//! library's (`shadowmcp::proto::hpack`), so the encoding matches what its
//! decoder expects only if both follow the RFC.

use shadowmcp::proto::hpack::{HUFFMAN, STATIC_TABLE, encode_int};
use std::collections::VecDeque;

/// Dynamic table size every HTTP/2 endpoint starts with (RFC 9113 §6.5.2).
const TABLE_SIZE: usize = 4096;
/// Per-entry overhead counted in the table size (RFC 7541 §4.1).
const ENTRY_OVERHEAD: usize = 32;

/// How a field is represented.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// Indexed when a table has name and value, else a literal with
    /// incremental indexing (RFC 7541 §6.1, §6.2.1).
    Index,
    /// Literal without indexing (§6.2.2): values that change every time.
    NoIndex,
    /// Literal never indexed (§6.2.3): credentials.
    Never,
}

pub struct Encoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    size: usize,
    /// Huffman-code strings when that is shorter (most encoders); some
    /// simple ones never do.
    huffman: bool,
}

impl Encoder {
    pub fn new(huffman: bool) -> Self {
        Encoder {
            table: VecDeque::new(),
            size: 0,
            huffman,
        }
    }

    /// 1-based index of (name, value), or of name alone when `value` is None.
    fn find(&self, name: &[u8], value: Option<&[u8]>) -> Option<usize> {
        let hit = |n: &[u8], v: &[u8]| n == name && value.is_none_or(|x| x == v);
        STATIC_TABLE
            .iter()
            .position(|&(n, v)| hit(n, v))
            .map(|i| i + 1)
            .or_else(|| {
                self.table
                    .iter()
                    .position(|(n, v)| hit(n, v))
                    .map(|i| i + 1 + STATIC_TABLE.len())
            })
    }

    pub fn field(&mut self, out: &mut Vec<u8>, name: &str, value: &str, repr: Repr) {
        let (name, value) = (name.as_bytes(), value.as_bytes());
        if repr == Repr::Index
            && let Some(i) = self.find(name, Some(value))
        {
            encode_int(out, 0x80, 7, i);
            return;
        }
        let (first, prefix) = match repr {
            Repr::Index => (0x40, 6),
            Repr::NoIndex => (0x00, 4),
            Repr::Never => (0x10, 4),
        };
        match self.find(name, None) {
            Some(i) => encode_int(out, first, prefix, i),
            None => {
                encode_int(out, first, prefix, 0);
                self.string(out, name);
            }
        }
        self.string(out, value);
        if repr == Repr::Index {
            self.insert(name, value);
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let need = name.len() + value.len() + ENTRY_OVERHEAD;
        while self.size + need > TABLE_SIZE {
            let Some((n, v)) = self.table.pop_back() else {
                break;
            };
            self.size -= n.len() + v.len() + ENTRY_OVERHEAD;
        }
        if need <= TABLE_SIZE {
            self.table.push_front((name.to_vec(), value.to_vec()));
            self.size += need;
        }
    }

    fn string(&self, out: &mut Vec<u8>, s: &[u8]) {
        let bits: usize = s
            .iter()
            .map(|&b| usize::from(HUFFMAN[usize::from(b)].1))
            .sum();
        if self.huffman && bits.div_ceil(8) < s.len() {
            encode_int(out, 0x80, 7, bits.div_ceil(8));
            huffman(out, s);
        } else {
            encode_int(out, 0, 7, s.len());
            out.extend_from_slice(s);
        }
    }
}

/// Huffman code of `s`, padded with the EOS prefix (RFC 7541 §5.2).
fn huffman(out: &mut Vec<u8>, s: &[u8]) {
    let mut acc: u64 = 0;
    let mut bits = 0u32;
    for &b in s {
        let (code, len) = HUFFMAN[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shadowmcp::proto::hpack::HpackDecoder;

    fn decode(dec: &mut HpackDecoder, block: &[u8]) -> Vec<(String, String)> {
        let mut got = Vec::new();
        dec.decode(block, &mut |n: &[u8], v: &[u8]| {
            got.push((
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ));
        })
        .unwrap();
        got
    }

    /// RFC 7541 C.4.1: the first request of the Huffman examples.
    #[test]
    fn matches_the_rfc_example() {
        let mut e = Encoder::new(true);
        let mut out = Vec::new();
        e.field(&mut out, ":method", "GET", Repr::Index);
        e.field(&mut out, ":scheme", "http", Repr::Index);
        e.field(&mut out, ":path", "/", Repr::Index);
        e.field(&mut out, ":authority", "www.example.com", Repr::Index);
        let want = [
            0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
            0x90, 0xf4, 0xff,
        ];
        assert_eq!(out, want);
    }

    /// Blocks in sequence stay in step with the library's decoder, in every
    /// representation, with and without Huffman coding.
    #[test]
    fn decodes_back_through_the_library() {
        for huff in [true, false] {
            let mut e = Encoder::new(huff);
            let mut d = HpackDecoder::new(TABLE_SIZE);
            for i in 0..50 {
                let fields = [
                    (":method", "POST".to_string(), Repr::Index),
                    (":path", "/mcp".to_string(), Repr::Index),
                    ("mcp-session-id", format!("{:032x}", i / 10), Repr::Index),
                    ("content-length", (i * 37).to_string(), Repr::NoIndex),
                    ("authorization", format!("Bearer t{i}"), Repr::Never),
                ];
                let mut block = Vec::new();
                for (n, v, r) in &fields {
                    e.field(&mut block, n, v, *r);
                }
                let got = decode(&mut d, &block);
                let want: Vec<_> = fields
                    .iter()
                    .map(|(n, v, _)| (n.to_string(), v.clone()))
                    .collect();
                assert_eq!(got, want, "block {i}, huffman {huff}");
            }
        }
    }
}
