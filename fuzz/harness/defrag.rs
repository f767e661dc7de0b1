//! IP fragment reassembly: raw IPv4/IPv6 packets fed to one `Defragmenter`.
//!
//! Input: records `[dt: u8][len: u16 BE][packet: len bytes]`; `dt` advances
//! the clock by dt seconds (the timeout is 30 s). Checks, after every
//! packet: the table stays in its bounds, and a whole datagram is an IP
//! packet whose length field says its size, which the decoder takes.
use shadowmcp::decode::{self, linktype};
use shadowmcp::defrag::{Defragmenter, Fragment, MAX_DATAGRAMS, MAX_HELD_BYTES, Reassembly};

pub fn run(data: &[u8]) {
    let mut d = Defragmenter::default();
    let mut ts: i64 = 0;
    let mut rest = data;
    while let [dt, a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;
        ts += i64::from(*dt) * 1_000_000;
        let Some(fragment) = Fragment::parse(packet) else {
            continue;
        };
        let (outcome, _) = d.add(ts, &fragment);
        assert!(d.len() <= MAX_DATAGRAMS, "{} datagrams wait", d.len());
        // One datagram may outgrow the budget alone, with both readings of
        // an overlap: 2 × 64 KiB.
        assert!(
            d.held_bytes() <= MAX_HELD_BYTES + 2 * 65_536,
            "{} bytes held",
            d.held_bytes()
        );
        if let Reassembly::Complete(p) = outcome {
            let said = match p.first().map(|b| b >> 4) {
                Some(4) => p
                    .get(2..4)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]]))),
                Some(6) => p
                    .get(4..6)
                    .map(|l| 40 + usize::from(u16::from_be_bytes([l[0], l[1]]))),
                _ => None,
            };
            assert_eq!(said, Some(p.len()), "length field of a whole datagram");
            let _ = decode::decode(linktype::RAW, &p);
        }
    }
}
