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
const _: () = assert!(std::mem::size_of::<TcpState>() <= 648);
const _: () = assert!(std::mem::size_of::<HttpApp>() <= 496);
// What an idle HTTP connection's last packets touch instead (3 lines).
const _: () = assert!(std::mem::size_of::<IdleHttp>() <= 192);
