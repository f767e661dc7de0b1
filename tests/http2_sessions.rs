//! HTTP/2 through the whole engine: the real SDK session of
//! `pcaps/py-h2c-streamable.pcap` (h2c with prior knowledge, HPACK with a
//! dynamic table, SSE in DATA frames), its bytes cut into segments of any
//! size, gives the finding the capture gives.

mod common;

use common::{Frame, TcpConv, run_frames};
use proptest::prelude::*;
use shadowmcp::capture::FileSource;
use shadowmcp::decode::{Transport, decode};
use std::path::Path;

/// The capture's TCP payloads in order: (from the client, bytes), runs of
/// the same direction joined.
fn messages() -> Vec<(bool, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/py-h2c-streamable.pcap");
    let mut src = FileSource::open(&path).expect("capture opens");
    let lt = src.linktype();
    let mut out: Vec<(bool, Vec<u8>)> = Vec::new();
    while let Some(f) = src.next_frame().expect("capture reads") {
        let Ok(p) = decode(lt, f.data) else { continue };
        let Transport::Tcp { dport, payload, .. } = p.transport else {
            continue;
        };
        if payload.is_empty() {
            continue;
        }
        let from_client = dport == 8780;
        match out.last_mut() {
            Some((c, bytes)) if *c == from_client => bytes.extend_from_slice(payload),
            _ => out.push((from_client, payload.to_vec())),
        }
    }
    out
}

fn found(msgs: &[(bool, Vec<u8>)], seg: impl Fn(usize) -> usize) -> String {
    let mut c = TcpConv::new("10.1.4.7", 51000, "10.9.0.5", 8780);
    for (i, (from_client, bytes)) in msgs.iter().enumerate() {
        c.send(*from_client, bytes, seg(i));
    }
    c.close();
    let frames: &[Frame] = &c.frames;
    let found = run_frames(frames);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (f, a) = &found[0];
    format!(
        "{:?} {:?} {:?} {:?} {:?} {a:?}",
        f.server_name, f.path, f.transport, f.evidence, f.mcp
    )
}

#[test]
fn the_sdk_session_is_found_in_whole_and_in_one_byte_segments() {
    let msgs = messages();
    assert!(msgs.len() >= 6, "{} messages", msgs.len());
    let whole = found(&msgs, |_| 65_000);
    for want in ["Http2", "fixture-client", "fixture-server", "get_weather"] {
        assert!(whole.contains(want), "{want}: {whole}");
    }
    assert_eq!(found(&msgs, |_| 1), whole);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn segmentation_does_not_change_the_finding(
        sizes in proptest::collection::vec(1usize..120, 40),
    ) {
        let msgs = messages();
        let whole = found(&msgs, |_| 65_000);
        let split = found(&msgs, |i| sizes.get(i).copied().unwrap_or(5));
        prop_assert_eq!(split, whole);
    }
}
