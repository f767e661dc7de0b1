//! NSS key-log text through the line parser in pieces, into a small bounded
//! key table. Input: byte 0 = piece length (0 = whole input at once), then
//! the text.
use shadowmcp::tls_decrypt::KeyTable;
use shadowmcp::tls_decrypt::keylog::LineParser;

pub fn run(data: &[u8]) {
    let Some((&step, text)) = data.split_first() else {
        return;
    };
    let table = KeyTable::new(8);
    let mut p = LineParser::new("fuzz");
    let step = if step == 0 {
        text.len().max(1)
    } else {
        step.into()
    };
    for piece in text.chunks(step) {
        p.push(piece, &table);
    }
    p.finish(&table);
    let r = &p.report;
    // Every line is counted once, whichever way the text was cut.
    let lines = text.split(|b| *b == b'\n').count() as u64
        - u64::from(text.is_empty() || text.ends_with(b"\n"));
    assert_eq!(r.keys + r.ignored + r.malformed, lines);
    assert_eq!(
        *r,
        table.load_bytes(text, "fuzz-whole"),
        "cut changed the result"
    );
    // The table stays within its bound (8 entries over 16 shards: one per
    // shard).
    assert!(table.stats().entries <= 16);
}
