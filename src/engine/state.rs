//! The state kept per flow, and per inspected TCP stream, with the size
//! bounds that keep it small: every flow costs a table slot, every
//! inspected stream a block from the pools.

use super::apps::TcpApp;
use super::apps::http::{HttpApp, IdleHttp};
use super::pool::{BlockPool, PooledBlock};
use crate::flow::reassembly::Reassembler;
use crate::proto::quic;

/// Flow state. Kept small: everything large is boxed and created only when a
/// flow turns out to carry something we parse.
#[derive(Debug)]
pub(super) struct Flow {
    pub(super) id: u64,
    /// Endpoint `a` of the key is the client.
    pub(super) client_is_a: bool,
    /// FIN seen: bit 0 from the client, bit 1 from the server.
    pub(super) fin: u8,
    pub(super) app: App,
}

#[derive(Debug)]
pub(super) enum App {
    /// TCP before any payload: only the initial sequence numbers.
    TcpNew {
        isn: [Option<u32>; 2],
    },
    Tcp(Box<TcpState>),
    /// An HTTP connection between messages that has shown nothing MCP-like.
    HttpIdle(Box<IdleHttp>),
    /// UDP DNS: every datagram is parsed on its own.
    Dns,
    Quic(Box<quic::InitialTracker>),
    /// Nothing more to learn from this flow.
    Done,
}

/// Index 0 is client → server, 1 is server → client.
#[derive(Debug)]
pub(super) struct TcpState {
    pub(super) reasm: [Reassembler; 2],
    /// Bytes delivered by reassembly that the parser has not consumed yet.
    pub(super) pending: [Vec<u8>; 2],
    pub(super) app: TcpApp,
    /// What this stream's buffers held when last counted in
    /// `Stats::tcp_buffered_bytes`.
    pub(super) held: usize,
}

impl TcpState {
    /// Nothing buffered yet. With `TcpApp::Done`, what a kept block holds:
    /// nothing to free.
    pub(super) fn new(app: TcpApp) -> Self {
        TcpState {
            reasm: [Reassembler::new(), Reassembler::new()],
            pending: [Vec::new(), Vec::new()],
            app,
            held: 0,
        }
    }
}

/// The empty state, as a kept block holds it.
impl Default for TcpState {
    fn default() -> Self {
        TcpState::new(TcpApp::Done)
    }
}

impl PooledBlock for TcpState {
    fn prefetch_frees(&self) {
        self.app.prefetch_frees();
    }

    /// As `TcpState::new(TcpApp::Done)`, field by field: the HTTP state
    /// (most of the block) is dropped, not overwritten.
    fn empty(&mut self) {
        self.app = TcpApp::Done;
        self.pending = [Vec::new(), Vec::new()];
        self.reasm = [Reassembler::new(), Reassembler::new()];
        self.held = 0;
    }
}

/// The engine's pools: stream states, and idle HTTP connections.
#[derive(Debug, Default)]
pub(super) struct StreamBlocks {
    pub(super) streams: BlockPool<TcpState>,
    pub(super) idle: BlockPool<IdleHttp>,
}

// Per-connection state is allocated for every inspected stream (up to
// `max_tcp_streams` per engine) and touched again when it is freed: rarely
// used parts (SSE parser, body decoder, MCP inventory) are boxed on demand.
const _: () = assert!(std::mem::size_of::<Flow>() <= 32);
const _: () = assert!(std::mem::size_of::<TcpState>() <= 656);
const _: () = assert!(std::mem::size_of::<HttpApp>() <= 504);
// What an idle HTTP connection's last packets touch instead (3 lines).
const _: () = assert!(std::mem::size_of::<IdleHttp>() <= 192);

#[cfg(test)]
mod memory_tests {
    use super::Flow;
    use crate::flow::table::FlowTable;

    /// The memory per flow that docs/operations.md gives (the one place
    /// the docs state it) is what the types make it: the flow table's slot
    /// (key, links, times and the `Flow` asserted above) plus its share of
    /// the hash index, rounded up to the next 10 bytes.
    #[test]
    fn documented_memory_per_flow_is_the_slot_and_index_size() {
        let slot = FlowTable::<Flow>::SLOT_BYTES;
        let (index_low, index_high) = FlowTable::<Flow>::INDEX_BYTES_PER_FLOW;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md");
        let doc = std::fs::read_to_string(path).expect("docs/operations.md");
        let line = doc
            .lines()
            .find(|l| l.starts_with("memory ≈ max_flows × ~"))
            .expect("the memory estimate");
        let documented: usize = line
            .trim_start_matches("memory ≈ max_flows × ~")
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number of bytes");
        assert!(
            doc.contains(&format!("state: {slot} bytes)")),
            "docs/operations.md: the slot is {slot} bytes"
        );
        // Stated once: other pages link to it.
        let root = env!("CARGO_MANIFEST_DIR");
        let mut pages = vec![format!("{root}/README.md")];
        for e in std::fs::read_dir(format!("{root}/docs"))
            .expect("docs/")
            .flatten()
        {
            pages.push(e.path().display().to_string());
        }
        for page in pages.iter().filter(|p| !p.ends_with("operations.md")) {
            let text = std::fs::read_to_string(page).unwrap_or_default();
            assert!(
                !text.contains("max_flows` ×") && !text.contains("max_flows ×"),
                "{page} states a memory per flow: link to docs/operations.md#sizing"
            );
        }
        let (low, high) = (slot + index_low, slot + index_high);
        assert!(
            documented >= low && documented <= high.div_ceil(10) * 10,
            "docs say ~{documented} B per flow; the types make {low}–{high} B"
        );
    }
}
