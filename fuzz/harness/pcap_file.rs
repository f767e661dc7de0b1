//! The classic pcap reader: the input is a whole capture file. Every frame
//! must lie inside the input, and reading must end (at the end of the input
//! or with an error) within as many records as the input could hold.
use shadowmcp::capture::pcapfile::{PcapReader, Sniff};

pub fn run(data: &[u8]) {
    let Ok(Sniff::Classic(mut r)) = PcapReader::sniff(data, |_| true) else {
        return;
    };
    // A record takes at least its 16-byte header.
    let bound = data.len() / 16 + 1;
    for _ in 0..bound {
        match r.next_frame() {
            Ok(Some(f)) => assert!(f.data.len() <= data.len()),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("more records than the input can hold");
}
