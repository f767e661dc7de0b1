//! Link and IP decoding: first byte picks the link type, the rest is the frame.
use shadowmcp::decode::{Transport, decode, linktype};

const LINKTYPES: [i32; 10] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::RAW_OPENBSD,
    linktype::RAW_BSD,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
];

pub fn run(data: &[u8]) {
    let Some((&sel, frame)) = data.split_first() else {
        return;
    };
    let lt = LINKTYPES[usize::from(sel) % LINKTYPES.len()];
    if let Ok(p) = decode(lt, frame) {
        // The payload must be a view into the frame, never past its end.
        let payload: &[u8] = match &p.transport {
            Transport::Tcp { payload, .. } | Transport::Udp { payload, .. } => payload,
            _ => &[],
        };
        assert!(payload.len() <= frame.len());
    }
}
