//! HPACK header blocks on one decoder, and Huffman strings.
//!
//! Byte 0: the table cap (×64 bytes) and, bit 7, whether the receiver's
//! setting allows up to the cap; then blocks, each a big-endian u16 length
//! and its bytes, decoded in turn on one decoder until the first error (the
//! table may then have diverged). The whole input is also decoded as one
//! Huffman string.
use shadowmcp::proto::hpack::{self, HpackDecoder};

pub fn run(data: &[u8]) {
    let Some((&opts, mut rest)) = data.split_first() else {
        return;
    };
    let cap = usize::from(opts & 0x7f) * 64;
    let mut dec = HpackDecoder::new(cap);
    if opts & 0x80 != 0 {
        dec.set_allowed(cap);
    }
    let mut huff = Vec::new();
    let _ = hpack::huffman_decode(rest, &mut huff);
    assert!(huff.len() <= rest.len() * 8 / 5);
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let n = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (block, next) = tail.split_at(n);
        rest = next;
        let mut total = 0usize;
        let r = dec.decode(block, |name, value| {
            total = total.saturating_add(name.len() + value.len());
        });
        let (size, max) = dec.table_size();
        assert!(size <= max && max <= cap);
        if r.is_err() {
            break;
        }
    }
    let _ = dec.held_bytes();
}
