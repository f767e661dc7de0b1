//! The per-packet engine: decode → flow → reassembly → protocol parsers →
//! classification, producing `Observation`s. Synchronous and single-threaded;
//! one engine per worker. Nothing here allocates per packet in the common case
//! (bulk TLS, or any flow already decided): such packets only touch the flow
//! table.

use crate::decode::{self, DecodedPacket, Transport as L4};
use crate::detect::dns_cache::DnsCache;
use crate::detect::host_misses::HostMisses;
use crate::detect::hosts::{Detector, HostClass};
use crate::detect::mcp::{Carrier, Direction, McpSession};
use crate::findings::{Evidence, Micros, Observation, Signal, Transport};
use crate::flow::community_id::community_id_v1;
use crate::flow::reassembly::{Chunk, Reassembler};
use crate::flow::table::{EvictReason, FlowTable};
use crate::flow::{FlowKey, PROTO_TCP, PROTO_UDP, orient};
use crate::proto::http1::{Head, HttpEvent, HttpIdle, HttpLimits, HttpStream, Side};
use crate::proto::ja4::{Ja4Transport, ja4};
use crate::proto::sse::{SseEvent, SseParser};
use crate::proto::tls::{self, ClientHello, HelloProgress};
use crate::proto::websocket::{WsMessage, WsStream, parse_deflate_extension};
use crate::proto::{dns, http1, quic};
use crate::redact::redact_target;
use crate::signatures::hostmatch::{COLON_BYTE, HostBuf, NAME_BYTE, NUMERIC_BYTE, host_byte};
use crate::stats::Stats;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;

/// Bounds and timeouts of one engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub max_flows: usize,
    pub flow_idle_timeout: Micros,
    /// How long a TCP flow is kept after FIN both ways or RST (for its late
    /// packets), instead of the idle timeout.
    pub flow_closed_timeout: Micros,
    pub dns_cache_size: usize,
    pub http: HttpLimits,
    pub sse_max_event_bytes: usize,
    pub websocket_max_message_bytes: usize,
    /// Seed of the Community ID hash.
    pub community_id_seed: u16,
    /// TCP streams reassembled and parsed at once by this engine (a memory
    /// cap: each costs about 1 KiB). Beyond it new streams are counted and
    /// not inspected. With N workers each engine gets 1/N of the sensor's
    /// cap (`limits.max_tcp_streams`), so the bound does not grow with them.
    pub max_tcp_streams: usize,
    /// Heap bytes all inspected streams may hold in buffers (out-of-order
    /// segments, partial messages, bodies kept for classification): the
    /// budget that bounds what the traffic can make the engine allocate.
    /// Over it, a stream that holds more than its share
    /// (`max_buffered_bytes / max_tcp_streams`) when it grows is no longer
    /// inspected (`tcp_streams_shed`). Split among workers like the stream cap.
    pub max_buffered_bytes: usize,
    /// First flow id of this engine: workers of one sensor get disjoint
    /// ranges so flow ids stay unique across them.
    pub flow_id_base: u64,
}

impl EngineConfig {
    /// The configuration of engine `id` of `n` for a whole sensor (or
    /// analyzer) configured as `self`: disjoint flow ids, and an equal share
    /// of the memory bounds, so they do not grow with the workers.
    pub fn for_worker(&self, id: usize, n: usize) -> EngineConfig {
        let n = n.max(1);
        EngineConfig {
            flow_id_base: (id as u64) << 48,
            max_flows: (self.max_flows / n).max(1),
            max_tcp_streams: (self.max_tcp_streams / n).max(1),
            max_buffered_bytes: (self.max_buffered_bytes / n).max(1),
            ..self.clone()
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_flows: 1_000_000,
            flow_idle_timeout: 300 * 1_000_000,
            flow_closed_timeout: 5 * 1_000_000,
            dns_cache_size: 65_536,
            http: HttpLimits::default(),
            sse_max_event_bytes: 256 * 1024,
            websocket_max_message_bytes: 256 * 1024,
            community_id_seed: 0,
            max_tcp_streams: 65_536,
            max_buffered_bytes: 256 * 1024 * 1024,
            flow_id_base: 0,
        }
    }
}

/// Empty-line bytes tolerated before an HTTP request.
const MAX_LEADING_BLANK: usize = 64;

/// Bytes of client data collected before choosing a protocol: enough for the
/// TLS record header and an HTTP method token, so 1-byte segments cannot
/// steer the choice.
const PROBE_BYTES: usize = 8;

/// Flow state. Kept small: everything large is boxed and created only when a
/// flow turns out to carry something we parse.
#[derive(Debug)]
struct Flow {
    id: u64,
    /// Endpoint `a` of the key is the client.
    client_is_a: bool,
    /// FIN seen: bit 0 from the client, bit 1 from the server.
    fin: u8,
    app: App,
}

#[derive(Debug)]
enum App {
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

/// Stream blocks kept for reuse per engine (about 40 KB): enough to absorb
/// the bursts of a flood of short connections, where streams end as fast as
/// they start.
const SPARE_STREAMS: usize = 64;

/// Ended streams whose blocks are emptied this many stream ends later, not
/// at once: emptying frees the request head's text and the block itself,
/// which reads allocator headers last touched when the connection began. The
/// headers are prefetched when the stream ends and read when it leaves this
/// queue, by which time they have arrived. Bounded: at most this many ended
/// streams' buffers outlive their stream.
const RETIRE_AFTER: usize = 16;

/// Index 0 is client → server, 1 is server → client.
#[derive(Debug)]
struct TcpState {
    reasm: [Reassembler; 2],
    /// Bytes delivered by reassembly that the parser has not consumed yet.
    pending: [Vec<u8>; 2],
    app: TcpApp,
    /// What this stream's buffers held when last counted in
    /// `Stats::tcp_buffered_bytes`.
    held: usize,
}

impl TcpState {
    /// Nothing buffered yet. With `TcpApp::Done`, what a kept block holds:
    /// nothing to free.
    fn new(app: TcpApp) -> Self {
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

// The HTTP variant is inline on purpose (see below): TcpState lives in its
// own allocation, so its size is paid once per inspected stream.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum TcpApp {
    Probe,
    Tls,
    /// Inline, not boxed: a connection's stream and HTTP state are one
    /// allocation, loaded (and freed) together.
    Http(HttpApp),
    WebSocket(Box<WsApp>),
    Dns,
    Done,
}

#[derive(Debug)]
struct HttpApp {
    req: HttpStream,
    resp: HttpStream,
    conv: Conversation,
    /// The current response is `text/event-stream`.
    sse: Option<Box<SseParser>>,
    /// A WebSocket upgrade was requested by the client.
    ws_requested: bool,
    /// `Sec-WebSocket-Extensions` of the 101 response.
    ws_extensions: Option<Box<str>>,
    /// Per direction: the parser reported a protocol switch.
    upgraded: [bool; 2],
    /// The latest request was CONNECT (a proxy tunnel may follow).
    connect: bool,
}

impl HttpApp {
    /// A connection between messages, with these parsers and conversation
    /// and nothing else pending (no upgrade, tunnel or event stream).
    fn new(req: HttpStream, resp: HttpStream, conv: Conversation) -> Self {
        HttpApp {
            req,
            resp,
            conv,
            sse: None,
            ws_requested: false,
            ws_extensions: None,
            upgraded: [false, false],
            connect: false,
        }
    }
}

// Per-connection state is allocated for every inspected stream (up to
// `max_tcp_streams` per engine) and touched again when it is freed: rarely
// used parts (SSE parser, body decoder, MCP inventory) are boxed on demand.
const _: () = assert!(std::mem::size_of::<Flow>() <= 32);
const _: () = assert!(std::mem::size_of::<TcpState>() <= 648);
const _: () = assert!(std::mem::size_of::<HttpApp>() <= 496);
// What an idle HTTP connection's last packets touch instead (3 lines).
const _: () = assert!(std::mem::size_of::<IdleHttp>() <= 192);

/// An HTTP connection between messages that has shown nothing MCP-like,
/// with nothing buffered: all its stream state (two reassemblers, two
/// parsers, the conversation) comes down to this, and is rebuilt from it,
/// exactly, when either side sends again. Most cleartext HTTP connections
/// spend their end in this state (a request, its response, the close), so
/// their last packets touch a small block instead of the stream state, and
/// the stream's block is reused at once while it is still in cache.
#[derive(Debug)]
struct IdleHttp {
    /// Per direction: the next sequence number expected (`None`: not known
    /// yet).
    next: [Option<u32>; 2],
    /// The request and response parsers between messages.
    parsers: [HttpIdle; 2],
    /// The latest request head (see `Conversation::request`): a response
    /// that proves MCP is reported with its Host and target.
    request: Option<Head>,
    host_checked: bool,
    /// What this connection counts in `Stats::tcp_buffered_bytes` (the
    /// head's text).
    held: usize,
}

#[derive(Debug)]
struct WsApp {
    streams: [WsStream; 2],
    conv: Conversation,
}

/// What a cleartext conversation has shown so far.
#[derive(Debug, Default)]
struct Conversation {
    session: McpSession,
    /// The latest request head, as sent: its Host and target are
    /// normalised and redacted only when an observation is made. A request
    /// without Host is given the previous request's.
    request: Option<Head>,
    legacy_sse: bool,
    websocket: bool,
    /// The known-server path check ran (once per connection).
    host_checked: bool,
    counted: bool,
}

impl Conversation {
    fn raw_host(&self) -> Option<&str> {
        self.request.as_ref()?.header("host")
    }

    fn raw_target(&self) -> Option<&str> {
        self.request.as_ref().map(Head::target)
    }

    fn host(&self) -> Option<String> {
        self.raw_host().and_then(host_without_port)
    }

    fn path(&self) -> Option<String> {
        self.raw_target().map(redact_target)
    }
}

/// Addresses of the packet's flow, oriented.
#[derive(Debug, Clone, Copy)]
struct FlowMeta {
    id: u64,
    client: IpAddr,
    client_port: u16,
    server: IpAddr,
    server_port: u16,
    proto: u8,
    ts: Micros,
}

impl FlowMeta {
    /// The metadata of flow `id` for a packet from `src` to `dst`.
    #[inline]
    fn oriented(
        id: u64,
        from_client: bool,
        src: (IpAddr, u16),
        dst: (IpAddr, u16),
        proto: u8,
        ts: Micros,
    ) -> Self {
        let ((client, client_port), (server, server_port)) =
            if from_client { (src, dst) } else { (dst, src) };
        FlowMeta {
            id,
            client,
            client_port,
            server,
            server_port,
            proto,
            ts,
        }
    }
}

/// Everything the flow handlers need besides the flow itself.
struct Ctx<'a> {
    detector: &'a Detector,
    dns_cache: &'a Mutex<DnsCache>,
    stats: &'a mut Stats,
    out: &'a mut Vec<Observation>,
    cfg: &'a EngineConfig,
    /// Scratch list for HTTP parser events, reused by every connection.
    events: &'a mut Vec<HttpEvent>,
    blocks: &'a mut StreamBlocks,
    host_misses: &'a mut HostMisses,
}

/// Heap blocks of one kind, for reuse: an ended one is emptied after a
/// delay (`RETIRE_AFTER`), then kept for a new one (`SPARE_STREAMS`).
#[derive(Debug)]
struct BlockPool<T> {
    retiring: VecDeque<Box<T>>,
    // The boxes are the point: their heap blocks are what is reused.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<T>>,
}

impl<T> Default for BlockPool<T> {
    fn default() -> Self {
        Self {
            retiring: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

/// What a pooled block holds beyond itself.
trait PooledBlock {
    /// Prefetch the allocator headers of the heap blocks that emptying
    /// this one frees (a hint only).
    fn prefetch_frees(&self);
    /// Free what it holds; the block itself stays.
    fn empty(&mut self);
}

impl PooledBlock for TcpState {
    fn prefetch_frees(&self) {
        if let TcpApp::Http(h) = &self.app
            && let Some(head) = &h.conv.request
        {
            head.prefetch_blocks();
        }
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

impl PooledBlock for IdleHttp {
    fn prefetch_frees(&self) {
        if let Some(head) = &self.request {
            head.prefetch_blocks();
        }
    }

    fn empty(&mut self) {
        self.request = None;
    }
}

impl<T: PooledBlock> BlockPool<T> {
    /// Its owner has ended (and reported): empty the block later. Emptying
    /// frees what it holds, which reads allocator headers last touched when
    /// the connection began: they are prefetched now and read when the
    /// block leaves the queue.
    fn retire(&mut self, block: Box<T>) {
        crate::flow::prefetch_block_header(&*block);
        block.prefetch_frees();
        self.retiring.push_back(block);
        if self.retiring.len() > RETIRE_AFTER
            && let Some(old) = self.retiring.pop_front()
        {
            self.recycle(old);
        }
    }

    /// A block no longer needed (ended, or left by a connection that went
    /// idle or came back): emptied, and kept for a later one (a new one
    /// then needs no allocation).
    fn recycle(&mut self, mut block: Box<T>) {
        block.empty();
        if self.spare.len() < SPARE_STREAMS {
            self.spare.push(block);
        }
    }

    /// An empty block (`TcpState::new(TcpApp::Done)`, as `recycle` leaves
    /// one), to be filled in place: a spare one (no allocation), or a new one.
    fn take_empty(&mut self) -> Box<T>
    where
        T: Default,
    {
        self.spare.pop().unwrap_or_default()
    }

    /// A block holding `value`: a spare one (no allocation), or a new one.
    fn take(&mut self, value: T) -> Box<T> {
        match self.spare.pop() {
            Some(mut block) => {
                *block = value;
                block
            }
            None => Box::new(value),
        }
    }
}

/// The engine's pools: stream states, and idle HTTP connections.
#[derive(Debug, Default)]
struct StreamBlocks {
    streams: BlockPool<TcpState>,
    idle: BlockPool<IdleHttp>,
}

/// A frame's flow key, direction and table hash, computed once per frame:
/// the batch needs the hash ahead of time for its prefetch, the engine the
/// key for the look-up.
#[derive(Debug, Clone, Copy)]
pub struct FlowLookup {
    key: FlowKey,
    /// The packet travels from the key's endpoint `a` to `b`.
    a_to_b: bool,
    hash: u32,
    /// The flow table slot the index pointed to when the frame's slot was
    /// prefetched ([`Engine::prefetch_slot`]): checked against the key and
    /// used instead of a second probe of the index.
    slot: Option<u32>,
}

impl FlowLookup {
    /// `None` when the packet is neither TCP nor UDP.
    pub fn of(p: &DecodedPacket<'_>) -> Option<Self> {
        let (sport, dport, proto) = match p.transport {
            L4::Tcp { sport, dport, .. } => (sport, dport, PROTO_TCP),
            L4::Udp { sport, dport, .. } => (sport, dport, PROTO_UDP),
            L4::Other { .. } => return None,
        };
        let (key, a_to_b) = FlowKey::from_packet(p.src, sport, p.dst, dport, proto);
        Some(Self {
            key,
            a_to_b,
            hash: key.table_hash(),
            slot: None,
        })
    }
}

pub struct Engine {
    cfg: EngineConfig,
    detector: Arc<Detector>,
    flows: FlowTable<Flow>,
    /// Shared by the workers of one sensor: a DNS answer handled by one
    /// worker attributes a TLS flow handled by another.
    dns_cache: Arc<Mutex<DnsCache>>,
    stats: Stats,
    next_flow_id: u64,
    out: Vec<Observation>,
    http_events: Vec<HttpEvent>,
    /// Blocks of ended streams, reused by new ones (see `SPARE_STREAMS`).
    blocks: StreamBlocks,
    /// Host values that matched no known server (see `known_path`).
    host_misses: HostMisses,
    now: Micros,
}

impl Engine {
    pub fn new(cfg: EngineConfig, detector: Arc<Detector>) -> Self {
        Self {
            flows: FlowTable::new(
                cfg.max_flows,
                cfg.flow_idle_timeout,
                cfg.flow_closed_timeout,
            ),
            dns_cache: Arc::new(Mutex::new(DnsCache::new(cfg.dns_cache_size))),
            next_flow_id: cfg.flow_id_base.saturating_add(1),
            cfg,
            detector,
            stats: Stats::default(),
            out: Vec::new(),
            http_events: Vec::new(),
            blocks: StreamBlocks::default(),
            host_misses: HostMisses::default(),
            now: 0,
        }
    }

    /// An engine that shares its DNS name cache with other engines (the
    /// workers of one sensor).
    pub fn with_dns_cache(
        cfg: EngineConfig,
        detector: Arc<Detector>,
        cache: Arc<Mutex<DnsCache>>,
    ) -> Self {
        let mut e = Self::new(cfg, detector);
        e.dns_cache = cache;
        e
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn active_flows(&self) -> usize {
        self.flows.len()
    }

    /// Replace the detector (signature reload); existing flows keep their state.
    pub fn set_detector(&mut self, detector: Arc<Detector>) {
        self.detector = detector;
        // New signatures: a name that matched nothing may match now.
        self.host_misses.clear();
    }

    /// The flow table and the context its handlers need, borrowed together.
    fn parts(&mut self) -> (&mut FlowTable<Flow>, Ctx<'_>, Micros) {
        let Self {
            flows,
            detector,
            dns_cache,
            stats,
            out,
            cfg,
            now,
            http_events,
            blocks,
            host_misses,
            ..
        } = self;
        (
            flows,
            Ctx {
                detector,
                dns_cache,
                stats,
                out,
                cfg,
                events: http_events,
                blocks,
                host_misses,
            },
            *now,
        )
    }

    /// Observations produced since the last call.
    pub fn drain_observations(&mut self) -> std::vec::Drain<'_, Observation> {
        self.out.drain(..)
    }

    // Start loading what a frame processed soon will need, in stages a few
    // frames apart, since each stage needs the previous one's line: the
    // flow's index entry, its slot, its stream state. Hints only: they
    // change no state and no result.

    /// Prefetch, first stage: the frame's index entry.
    pub fn prefetch_index(&self, look: &FlowLookup) {
        self.flows.prefetch_index(look.hash);
    }

    /// Prefetch, second stage: the frame's flow table slot, which is
    /// remembered in `look` for the third stage and for the look-up.
    pub fn prefetch_slot(&self, look: &mut FlowLookup) {
        look.slot = self.flows.prefetch_slot(look.hash);
    }

    /// Prefetch, third stage: the TCP stream state of the frame's flow (with
    /// the HTTP state, which is part of it), or its idle form.
    pub fn prefetch_state(&self, look: &FlowLookup) {
        match look.slot.and_then(|i| self.flows.peek_value_at(i)) {
            Some(Flow {
                app: App::Tcp(st), ..
            }) => {
                let st: &TcpState = st;
                crate::flow::prefetch_all(st);
            }
            Some(Flow {
                app: App::HttpIdle(idle),
                ..
            }) => {
                let idle: &IdleHttp = idle;
                crate::flow::prefetch_all(idle);
            }
            _ => {}
        }
    }

    /// Process one captured frame.
    pub fn process_frame(&mut self, ts: Micros, linktype: i32, frame: &[u8]) {
        self.process_decoded(ts, frame.len(), &decode::decode(linktype, frame), None);
    }

    /// Process one frame of `len` bytes that the caller already decoded
    /// (with [`decode::decode`]) and possibly keyed (`lookup`, from
    /// [`FlowLookup::of`] of the same packet), as [`Engine::process_frame`]
    /// would.
    pub fn process_decoded(
        &mut self,
        ts: Micros,
        len: usize,
        decoded: &Result<DecodedPacket<'_>, decode::DecodeError>,
        lookup: Option<&FlowLookup>,
    ) {
        self.stats.packets += 1;
        self.stats.bytes += len as u64;
        match decoded {
            Ok(p) => self.process_packet(ts, p, lookup),
            Err(e) => self.stats.decode_error(*e),
        }
    }

    /// Process one decoded packet; `lookup`, if given, is `FlowLookup::of(p)`.
    fn process_packet(&mut self, ts: Micros, p: &DecodedPacket<'_>, lookup: Option<&FlowLookup>) {
        if p.src.is_ipv4() {
            self.stats.ipv4 += 1;
        } else {
            self.stats.ipv6 += 1;
        }
        self.now = self.now.max(ts);
        self.expire();
        // Keyed by the caller (the batch, for its prefetch) or here.
        // By reference: the key is not copied on the way to the table.
        let computed;
        let look = match lookup {
            Some(l) => l,
            None => match FlowLookup::of(p) {
                Some(l) => {
                    computed = l;
                    &computed
                }
                None => {
                    self.stats.other_ip += 1;
                    return;
                }
            },
        };
        match p.transport {
            L4::Tcp {
                sport,
                dport,
                seq,
                flags,
                payload,
            } => {
                self.stats.tcp += 1;
                self.tcp(ts, look, p.src, sport, p.dst, dport, seq, flags, payload);
            }
            L4::Udp {
                sport,
                dport,
                payload,
            } => {
                self.stats.udp += 1;
                self.udp(ts, look, p.src, sport, p.dst, dport, payload);
            }
            L4::Other { .. } => self.stats.other_ip += 1,
        }
    }

    fn expire(&mut self) {
        let (flows, mut ctx, now) = self.parts();
        flows.expire(now, |key, flow, reason| {
            finish_flow(&mut ctx, key, flow, reason, now)
        });
    }

    /// End of input: finish every flow (pending reassembly, read-until-close bodies).
    pub fn finish(&mut self) {
        let (flows, mut ctx, now) = self.parts();
        flows.drain(|key, flow, reason| finish_flow(&mut ctx, key, flow, reason, now));
        self.stats.dns_cache_evictions = lock(&self.dns_cache).evictions();
    }

    /// Look up or create the flow of a packet; returns its index and whether
    /// the packet travels client → server.
    fn flow_for(
        &mut self,
        ts: Micros,
        look: &FlowLookup,
        new_app: impl FnOnce() -> App,
        client_is_src: impl FnOnce(&FlowKey, bool) -> bool,
    ) -> Option<(u32, bool)> {
        let &FlowLookup {
            key,
            a_to_b,
            hash,
            slot,
        } = look;
        let id = self.next_flow_id;
        let (flows, mut ctx, now) = self.parts();
        let (idx, is_new) = flows.get_or_insert_hashed(
            key,
            hash,
            slot,
            ts,
            || {
                let src_is_client = client_is_src(&key, a_to_b);
                Flow {
                    id,
                    client_is_a: src_is_client == a_to_b,
                    fin: 0,
                    app: new_app(),
                }
            },
            |k, f, r| finish_flow(&mut ctx, k, f, r, now),
        );
        if is_new {
            self.next_flow_id += 1;
            self.stats.flows_created += 1;
        }
        let flow = self.flows.get_mut(idx)?;
        Some((idx, flow.client_is_a == a_to_b))
    }

    #[allow(clippy::too_many_arguments)]
    fn tcp(
        &mut self,
        ts: Micros,
        look: &FlowLookup,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        seq: u32,
        flags: decode::TcpFlags,
        payload: &[u8],
    ) {
        let new_app = || App::TcpNew { isn: [None, None] };
        let client_is_src =
            |key: &FlowKey, a_to_b| orient(key, a_to_b, flags.syn, flags.ack) == a_to_b;
        let Some((mut idx, mut from_client)) = self.flow_for(ts, look, new_app, client_is_src)
        else {
            return;
        };
        // A new connection on the tuple of one that has ended (the port
        // reused): start afresh rather than ignore it as the old one's tail.
        if flags.syn && !flags.ack && self.flows.is_closed(idx) {
            let (flows, mut ctx, now) = self.parts();
            if let Some((key, flow)) = flows.remove(idx) {
                finish_flow(&mut ctx, key, flow, EvictReason::Closed, now);
            }
            let Some(again) = self.flow_for(ts, look, new_app, client_is_src) else {
                return;
            };
            (idx, from_client) = again;
        }
        let dir = usize::from(!from_client);
        let (flows, mut ctx, _) = self.parts();
        let already_closed = flows.is_closed(idx);
        let Some(flow) = flows.get_mut(idx) else {
            return;
        };
        if flags.fin {
            flow.fin |= if dir == 0 { 1 } else { 2 };
        }
        let closing = (flags.rst || flow.fin == 3) && !already_closed;
        // Written out rather than as a closure building the metadata on
        // demand, which measured +17 instructions/packet (code generation).
        if payload.is_empty() {
            // Most segments: only sequence-number bookkeeping, no metadata.
            tcp_no_data(flow, dir, seq, flags);
            if !closing {
                return;
            }
        }
        let meta = FlowMeta::oriented(
            flow.id,
            from_client,
            (src, sport),
            (dst, dport),
            PROTO_TCP,
            ts,
        );
        if !payload.is_empty() {
            tcp_segment(&mut ctx, &meta, flow, dir, seq, flags, payload);
        }
        if closing {
            // Ended: finish the parsers, drop the buffers, and keep a tiny
            // tombstone for the late packets, for the closed timeout only.
            if let Some(flow) = flows.get_mut(idx) {
                match std::mem::replace(&mut flow.app, App::Done) {
                    App::Tcp(st) => close_tcp(&mut ctx, &meta, st),
                    App::HttpIdle(idle) => close_idle(&mut ctx, idle),
                    _ => {}
                }
            }
            flows.close(idx, ts);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn udp(
        &mut self,
        ts: Micros,
        look: &FlowLookup,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        payload: &[u8],
    ) {
        let is_dns = sport == 53 || dport == 53;
        let initial = !is_dns && quic::is_client_initial(payload);
        let Some((idx, from_client)) = self.flow_for(
            ts,
            look,
            || {
                if is_dns {
                    App::Dns
                } else if initial {
                    App::Quic(Box::new(quic::InitialTracker::new()))
                } else {
                    App::Done
                }
            },
            // The sender of a QUIC client Initial is the client; DNS: the side
            // not on port 53; otherwise port heuristics.
            |key, a_to_b| {
                if initial {
                    true
                } else if is_dns {
                    dport == 53
                } else {
                    orient(key, a_to_b, false, false) == a_to_b
                }
            },
        ) else {
            return;
        };
        let (flows, mut ctx, _) = self.parts();
        let Some(flow) = flows.get_mut(idx) else {
            return;
        };
        let meta = FlowMeta::oriented(
            flow.id,
            from_client,
            (src, sport),
            (dst, dport),
            PROTO_UDP,
            ts,
        );
        match &mut flow.app {
            App::Dns => match dns::parse_message(payload) {
                Ok(msg) => on_dns(&mut ctx, &meta, &msg),
                Err(_) => ctx.stats.dns_errors += 1,
            },
            App::Quic(tracker) if from_client => match tracker.on_client_datagram(payload) {
                quic::QuicProgress::NeedMore => {}
                quic::QuicProgress::Hello { message, .. } => {
                    match tls::parse_client_hello_message(&message) {
                        Ok(hello) => {
                            ctx.stats.quic_client_hellos += 1;
                            on_client_hello(&mut ctx, &meta, &hello, Transport::Quic);
                        }
                        Err(_) => ctx.stats.quic_errors += 1,
                    }
                    flow.app = App::Done;
                }
                quic::QuicProgress::Failed(_) => {
                    ctx.stats.quic_errors += 1;
                    flow.app = App::Done;
                }
                quic::QuicProgress::NotInitial => flow.app = App::Done,
            },
            _ => {}
        }
    }
}

/// A flow leaves the table: deliver what reassembly still holds, finish
/// read-until-close bodies, count the reason.
fn finish_flow(ctx: &mut Ctx<'_>, key: FlowKey, flow: Flow, reason: EvictReason, now: Micros) {
    match reason {
        EvictReason::Idle => ctx.stats.flows_evicted_idle += 1,
        EvictReason::Capacity => ctx.stats.flows_evicted_capacity += 1,
        EvictReason::Closed | EvictReason::Flush => {}
    }
    let st = match flow.app {
        App::Tcp(st) => st,
        App::HttpIdle(idle) => return close_idle(ctx, idle),
        _ => return,
    };
    let (a, b) = (key.addr_a(), key.addr_b());
    let (client, client_port, server, server_port) = if flow.client_is_a {
        (a, key.port_a, b, key.port_b)
    } else {
        (b, key.port_b, a, key.port_a)
    };
    let meta = FlowMeta {
        id: flow.id,
        client,
        client_port,
        server,
        server_port,
        proto: key.proto,
        ts: now,
    };
    close_tcp(ctx, &meta, st);
}

/// End of a TCP stream: deliver what reassembly still holds, finish a
/// read-until-close body, report, and release the stream's budget.
fn close_tcp(ctx: &mut Ctx<'_>, meta: &FlowMeta, mut st: Box<TcpState>) {
    ctx.stats.tcp_streams_active = ctx.stats.tcp_streams_active.saturating_sub(1);
    // The state is freed after this: its buffers leave the budget.
    ctx.stats.tcp_buffered_bytes = ctx.stats.tcp_buffered_bytes.saturating_sub(st.held as u64);
    st.held = 0;
    let meta = *meta;
    let TcpState {
        reasm,
        pending,
        app,
        held: _,
    } = &mut *st;
    for (dir, r) in reasm.iter_mut().enumerate() {
        r.flush(&mut |chunk| tcp_chunk(ctx, &meta, dir, chunk, pending, app));
    }
    if let TcpApp::Http(h) = app {
        let mut events = std::mem::take(ctx.events);
        h.resp.on_close(&mut events);
        for ev in events.drain(..) {
            http_response_event(ctx, &meta, h, ev);
        }
        *ctx.events = events;
        emit_conversation(ctx, &meta, &mut h.conv);
    }
    ctx.blocks.streams.retire(st);
}

/// End of an idle HTTP connection: nothing to finish or report (an idle
/// parser ends without events, a pristine conversation has nothing to say),
/// only the stream's budget to release.
fn close_idle(ctx: &mut Ctx<'_>, idle: Box<IdleHttp>) {
    ctx.stats.tcp_streams_active = ctx.stats.tcp_streams_active.saturating_sub(1);
    ctx.stats.tcp_buffered_bytes = ctx
        .stats
        .tcp_buffered_bytes
        .saturating_sub(idle.held as u64);
    ctx.blocks.idle.retire(idle);
}

/// The idle form of an HTTP connection, taken from its stream state, when
/// the connection has one now (see `IdleHttp`). Takes the request head out.
fn idle_http(st: &mut TcpState) -> Option<IdleHttp> {
    let TcpApp::Http(h) = &mut st.app else {
        return None;
    };
    let [r0, r1] = &st.reasm;
    let (next, quiet) = (
        [r0.idle()?, r1.idle()?],
        st.pending.iter().all(Vec::is_empty),
    );
    let conv = &h.conv;
    let plain = !(h.ws_requested || h.connect || h.upgraded.contains(&true))
        && h.sse.is_none()
        && h.ws_extensions.is_none()
        && conv.session.is_pristine()
        && !(conv.legacy_sse || conv.websocket || conv.counted);
    if !(quiet && plain) {
        return None;
    }
    let parsers = [h.req.idle()?, h.resp.idle()?];
    let request = h.conv.request.take();
    Some(IdleHttp {
        next,
        parsers,
        held: request.as_ref().map_or(0, Head::held_bytes),
        request,
        host_checked: h.conv.host_checked,
    })
}

/// Make the empty stream state `st` the one an idle HTTP connection stands
/// for (its request head is moved there).
fn resume_http(cfg: &EngineConfig, idle: &mut IdleHttp, st: &mut TcpState) {
    let IdleHttp {
        next: [n0, n1],
        parsers: [p0, p1],
        ref mut request,
        host_checked,
        held,
    } = *idle;
    let request = request.take();
    st.app = TcpApp::Http(HttpApp::new(
        HttpStream::resume(Side::Request, cfg.http, p0),
        HttpStream::resume(Side::Response, cfg.http, p1),
        Conversation {
            request,
            host_checked,
            ..Conversation::default()
        },
    ));
    st.reasm = [Reassembler::resume(n0), Reassembler::resume(n1)];
    st.held = held;
}

/// A TCP segment without data: nothing for reassembly or the parsers (the
/// end of the stream is the caller's), only the initial sequence numbers. A
/// pure ACK does not touch the stream state.
fn tcp_no_data(flow: &mut Flow, dir: usize, seq: u32, flags: decode::TcpFlags) {
    if !flags.syn {
        return;
    }
    match &mut flow.app {
        App::TcpNew { isn } => {
            if let Some(slot) = isn.get_mut(dir) {
                *slot = Some(seq);
            }
        }
        App::Tcp(st) => {
            if let Some(r) = st.reasm.get_mut(dir) {
                r.on_syn(seq);
            }
        }
        // As `Reassembler::on_syn`: the first SYN sets the start.
        App::HttpIdle(idle) => {
            if let Some(next @ None) = idle.next.get_mut(dir) {
                *next = Some(seq.wrapping_add(1));
            }
        }
        App::Dns | App::Quic(_) | App::Done => {}
    }
}

/// The part of a TCP segment with data that concerns the flow's payload: initial
/// sequence numbers, stream state, reassembly and the parsers.
fn tcp_segment(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    flow: &mut Flow,
    dir: usize,
    seq: u32,
    flags: decode::TcpFlags,
    payload: &[u8],
) {
    if let App::TcpNew { isn } = &mut flow.app {
        if let (true, Some(slot)) = (flags.syn, isn.get_mut(dir)) {
            *slot = Some(seq);
        }
        if ctx.stats.tcp_streams_active >= ctx.cfg.max_tcp_streams as u64 {
            ctx.stats.tcp_streams_skipped += 1;
            flow.app = App::Done;
            return;
        }
        ctx.stats.tcp_streams_active += 1;
        // A block an ended stream left (warm, no allocation), or a new one,
        // set up in place.
        let mut st = ctx.blocks.streams.take_empty();
        st.app = TcpApp::Probe;
        for (r, i) in st.reasm.iter_mut().zip(isn.iter()) {
            if let Some(i) = i {
                r.on_syn(*i);
            }
        }
        flow.app = App::Tcp(st);
    }
    if matches!(flow.app, App::HttpIdle(_))
        && let App::HttpIdle(mut idle) = std::mem::replace(&mut flow.app, App::Done)
    {
        // Still counted in `tcp_streams_active` and the buffer budget.
        let mut st = ctx.blocks.streams.take_empty();
        resume_http(ctx.cfg, &mut idle, &mut st);
        ctx.blocks.idle.recycle(idle);
        flow.app = App::Tcp(st);
    }
    let App::Tcp(st) = &mut flow.app else { return };
    // SYN with data (TFO): data starts after the SYN's sequence number.
    let seq = if flags.syn { seq.wrapping_add(1) } else { seq };
    let TcpState {
        reasm,
        pending,
        app,
        held,
    } = &mut **st;
    let Some(r) = reasm.get_mut(dir) else { return };
    let (gaps_before, overflows_before) = (r.gaps, r.overflows);
    r.push(seq, payload, &mut |chunk| {
        tcp_chunk(ctx, meta, dir, chunk, pending, app)
    });
    ctx.stats.tcp_gaps += u64::from(r.gaps - gaps_before);
    ctx.stats.tcp_stream_overflow += u64::from(r.overflows - overflows_before);
    // The buffer budget: count what the stream holds now; over budget, a
    // stream that grew beyond its share is shed (its buffers are freed
    // below), so floods of large partial messages cannot exhaust memory
    // while streams that hold little go on being inspected.
    let before = *held;
    *held = held_bytes(reasm, pending, app);
    let total = &mut ctx.stats.tcp_buffered_bytes;
    *total = total
        .saturating_sub(before as u64)
        .saturating_add(*held as u64);
    let share = ctx.cfg.max_buffered_bytes / ctx.cfg.max_tcp_streams.max(1);
    if *total > ctx.cfg.max_buffered_bytes as u64
        && *held > before
        && *held > share
        && !matches!(app, TcpApp::Done)
    {
        ctx.stats.tcp_streams_shed += 1;
        *app = TcpApp::Done;
    }
    if matches!(app, TcpApp::Done) {
        // Nothing more to learn: finish the parsers, drop the buffers, and
        // keep a tiny tombstone so the rest of the flow costs one table
        // lookup per packet.
        if let App::Tcp(st) = std::mem::replace(&mut flow.app, App::Done) {
            close_tcp(ctx, meta, st);
        }
    } else if let App::Tcp(st) = &mut flow.app
        && let Some(idle) = idle_http(st)
    {
        // Between messages with nothing to show: keep only the idle form.
        let total = &mut ctx.stats.tcp_buffered_bytes;
        *total = total
            .saturating_sub(st.held as u64)
            .saturating_add(idle.held as u64);
        let idle = ctx.blocks.idle.take(idle);
        if let App::Tcp(st) = std::mem::replace(&mut flow.app, App::HttpIdle(idle)) {
            ctx.blocks.streams.recycle(st);
        }
    }
}

/// Heap bytes a stream's buffers hold: reassembly, unconsumed data and the
/// parsers' partial messages (see `EngineConfig::max_buffered_bytes`).
fn held_bytes(reasm: &[Reassembler; 2], pending: &[Vec<u8>; 2], app: &TcpApp) -> usize {
    let mut n: usize = reasm.iter().map(Reassembler::buffered).sum();
    n = n.saturating_add(pending.iter().map(Vec::capacity).sum());
    let parsers = match app {
        TcpApp::Http(h) => h
            .req
            .held_bytes()
            .saturating_add(h.resp.held_bytes())
            .saturating_add(h.sse.as_ref().map_or(0, |p| p.held_bytes()))
            .saturating_add(h.conv.request.as_ref().map_or(0, Head::held_bytes)),
        TcpApp::WebSocket(w) => w.streams.iter().map(WsStream::held_bytes).sum(),
        TcpApp::Probe | TcpApp::Tls | TcpApp::Dns | TcpApp::Done => 0,
    };
    n.saturating_add(parsers)
}

/// One piece of reassembled stream for direction `dir`.
fn tcp_chunk(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    chunk: Chunk<'_>,
    pending: &mut [Vec<u8>; 2],
    app: &mut TcpApp,
) {
    let data = match chunk {
        Chunk::Data(d) => d,
        Chunk::Gap(_) => {
            match app {
                TcpApp::Http(h) => {
                    if let Some(p) = pending.get_mut(dir) {
                        p.clear();
                    }
                    if dir == 0 {
                        h.req.on_gap()
                    } else {
                        h.resp.on_gap()
                    }
                    h.sse = None;
                }
                // A hole in a hello, a WebSocket frame stream or DNS/TCP framing
                // cannot be resynchronised reliably: stop.
                TcpApp::Probe | TcpApp::Tls | TcpApp::WebSocket(_) | TcpApp::Dns => {
                    *app = TcpApp::Done
                }
                TcpApp::Done => {}
            }
            return;
        }
    };
    if matches!(app, TcpApp::Probe) {
        if dir != 0 {
            // Every protocol we parse over TCP starts with the client.
            return;
        }
        let Some(buf) = pending.get_mut(0) else {
            return;
        };
        // Probe the segment itself when nothing is buffered (the common
        // case: the first segment holds the method or the record header), so
        // it is not copied.
        let buffered = !buf.is_empty();
        if buffered {
            buf.extend_from_slice(data);
        }
        let probe: &[u8] = if buffered { buf } else { data };
        // HTTP allows empty lines before a request (RFC 9112 §2.2); look past
        // a bounded run of them so they cannot hide the method.
        let blank = probe
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let text = probe.get(blank..).unwrap_or_default();
        let could_be_more = probe.first() == Some(&0x16)
            || http1::looks_like_request(text)
            || (text.is_empty() && blank <= MAX_LEADING_BLANK)
            || meta.server_port == 53;
        let is_tls = tls::looks_like_tls(probe);
        if !is_tls && text.len() < PROBE_BYTES && could_be_more {
            if !buffered {
                buf.extend_from_slice(data);
            }
            return;
        }
        let is_http = blank <= MAX_LEADING_BLANK && http1::looks_like_request(text);
        *app = if is_tls {
            TcpApp::Tls
        } else if is_http {
            TcpApp::Http(HttpApp::new(
                HttpStream::new(Side::Request, ctx.cfg.http),
                HttpStream::new(Side::Response, ctx.cfg.http),
                Conversation::default(),
            ))
        } else if meta.server_port == 53 {
            TcpApp::Dns
        } else {
            TcpApp::Done
        };
        if matches!(app, TcpApp::Done) {
            buf.clear();
            return;
        }
        if !buffered {
            app_data(ctx, meta, 0, data, pending, app);
            return;
        }
        // Replay the probed bytes through the chosen parser.
        let probed = std::mem::take(buf);
        app_data(ctx, meta, 0, &probed, pending, app);
        return;
    }
    app_data(ctx, meta, dir, data, pending, app);
}

/// Feed stream data to the flow's protocol parser.
fn app_data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    app: &mut TcpApp,
) {
    match app {
        TcpApp::Tls => {
            if dir != 0 {
                return;
            }
            let Some(buf) = pending.get_mut(0) else {
                return;
            };
            let progress = if buf.is_empty() {
                tls::parse_client_hello_records(data)
            } else {
                buf.extend_from_slice(data);
                tls::parse_client_hello_records(buf)
            };
            match progress {
                HelloProgress::NeedMore => {
                    if buf.is_empty() {
                        buf.extend_from_slice(data);
                    }
                    if buf.len() > tls::MAX_HELLO_BYTES {
                        ctx.stats.tls_errors += 1;
                        *app = TcpApp::Done;
                    }
                    return;
                }
                HelloProgress::Complete(hello) => {
                    ctx.stats.tls_client_hellos += 1;
                    on_client_hello(ctx, meta, &hello, Transport::Tls);
                }
                HelloProgress::NotTls | HelloProgress::Invalid(_) => ctx.stats.tls_errors += 1,
            }
            *app = TcpApp::Done;
        }
        TcpApp::Dns => {
            let Some(buf) = pending.get_mut(dir) else {
                return;
            };
            buf.extend_from_slice(data);
            let (msgs, used) = dns::split_tcp_messages(buf);
            for m in msgs {
                match dns::parse_message(m) {
                    Ok(msg) => on_dns(ctx, meta, &msg),
                    Err(_) => ctx.stats.dns_errors += 1,
                }
            }
            buf.drain(..used.min(buf.len()));
            if buf.len() > 65_537 {
                *app = TcpApp::Done;
            }
        }
        TcpApp::Http(h) => {
            match http_data(ctx, meta, dir, data, pending, h) {
                Switch::Stay => {}
                Switch::WebSocket => {
                    let ws = into_websocket(ctx, meta, h, pending);
                    *app = ws;
                }
                Switch::Tunnel => {
                    // A proxy tunnel (2xx to CONNECT): whatever the client sends
                    // next (usually a TLS ClientHello) is probed afresh.
                    *app = TcpApp::Probe;
                    if let Some(p) = pending.get_mut(1) {
                        p.clear();
                    }
                    let tunneled = pending.get_mut(0).map(std::mem::take).unwrap_or_default();
                    if !tunneled.is_empty() {
                        tcp_chunk(ctx, meta, 0, Chunk::Data(&tunneled), pending, app);
                    }
                }
            }
        }
        TcpApp::WebSocket(w) => ws_data(ctx, meta, dir, data, pending, w),
        TcpApp::Probe | TcpApp::Done => {}
    }
}

/// Feed a parser from `data`, using `pending` only for bytes it could not
/// consume yet. The unconsumed tail is bounded by the parser's head limit.
fn feed_buffered<E>(
    pending: &mut Vec<u8>,
    data: &[u8],
    cap: usize,
    mut feed: impl FnMut(&[u8]) -> Result<usize, E>,
) -> Result<(), Option<E>> {
    if pending.is_empty() {
        let used = feed(data).map_err(Some)?;
        if let Some(rest) = data.get(used..) {
            pending.extend_from_slice(rest);
        }
    } else {
        pending.extend_from_slice(data);
        let used = feed(pending).map_err(Some)?;
        pending.drain(..used.min(pending.len()));
    }
    if pending.len() > cap {
        Err(None)
    } else {
        Ok(())
    }
}

/// What an HTTP connection turned into.
enum Switch {
    Stay,
    /// Both directions upgraded to WebSocket.
    WebSocket,
    /// A 2xx answer to CONNECT: a tunnel through a proxy.
    Tunnel,
}

/// HTTP data for one direction.
fn http_data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    h: &mut HttpApp,
) -> Switch {
    let cap = ctx.cfg.http.max_head_bytes + 64 * 1024;
    let Some(buf) = pending.get_mut(dir) else {
        return Switch::Stay;
    };
    // The engine's scratch list: no per-connection allocation.
    let mut events = std::mem::take(ctx.events);
    let parser = if dir == 0 { &mut h.req } else { &mut h.resp };
    if h.upgraded.get(dir).copied().unwrap_or(true) {
        // Bytes after an upgrade wait for the other side's answer.
        buf.extend_from_slice(data);
        if buf.len() > cap {
            buf.clear();
        }
        *ctx.events = events;
        return Switch::Stay;
    }
    let result = feed_buffered(buf, data, cap, |d| parser.feed(d, &mut events));
    if result.is_err() {
        ctx.stats.http_errors += 1;
        buf.clear();
        parser.on_gap();
    }
    let mut switched = Switch::Stay;
    for ev in events.drain(..) {
        if let (HttpEvent::Upgraded, Some(u)) = (&ev, h.upgraded.get_mut(dir)) {
            *u = true;
        }
        if dir == 0 {
            http_request_event(ctx, meta, h, ev);
        } else {
            match http_response_event(ctx, meta, h, ev) {
                Switch::Stay => {}
                other => switched = other,
            }
        }
    }
    *ctx.events = events;
    emit_conversation(ctx, meta, &mut h.conv);
    switched
}

fn http_request_event(ctx: &mut Ctx<'_>, meta: &FlowMeta, h: &mut HttpApp, ev: HttpEvent) {
    let classifier = &ctx.detector.classifier;
    match ev {
        HttpEvent::Head(mut head) => {
            ctx.stats.http_requests += 1;
            h.ws_requested = head.header("upgrade").is_some_and(|u| {
                u.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
            });
            h.resp.expect_response_to(head.method());
            h.connect = head.method().eq_ignore_ascii_case("CONNECT");
            classifier.inspect_request_head(&head, &mut h.conv.session);
            let mut has_host = head.header("host").is_some();
            if !has_host && let Some(prev) = h.conv.raw_host() {
                let prev = prev.to_owned();
                head.push_header("Host", &prev);
                has_host = true;
            }
            h.conv.request = Some(head);
            if !h.conv.host_checked && has_host {
                h.conv.host_checked = true;
                known_path(ctx, meta, &h.conv);
            }
        }
        HttpEvent::Body { data, .. } | HttpEvent::StreamData(data) => {
            classifier.inspect_payload(
                &data,
                Direction::ClientToServer,
                Carrier::HttpBody,
                &mut h.conv.session,
            );
        }
        HttpEvent::MessageEnd | HttpEvent::Upgraded => {}
    }
}

/// What the response made of the connection (WebSocket, a proxy tunnel, or nothing).
fn http_response_event(
    ctx: &mut Ctx<'_>,
    _meta: &FlowMeta,
    h: &mut HttpApp,
    ev: HttpEvent,
) -> Switch {
    let classifier = &ctx.detector.classifier;
    match ev {
        HttpEvent::Head(head) => {
            ctx.stats.http_responses += 1;
            classifier.inspect_response_head(&head, &mut h.conv.session);
            // A refused upgrade or CONNECT (interim 1xx answers aside): the
            // connection stays HTTP, so the request side resumes parsing.
            let accepted = head.status == 101 || (h.connect && (200..300).contains(&head.status));
            if !accepted && head.status >= 200 && h.upgraded[0] {
                h.req.cancel_upgrade();
                h.upgraded[0] = false;
                h.ws_requested = false;
            }
            let is_sse = head.header("content-type").is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
            h.sse = is_sse.then(|| Box::new(SseParser::new(ctx.cfg.sse_max_event_bytes)));
            if head.status == 101 {
                h.ws_extensions = head.header("sec-websocket-extensions").map(Box::from);
            }
        }
        HttpEvent::Body { data, .. } => {
            classifier.inspect_payload(
                &data,
                Direction::ServerToClient,
                Carrier::HttpBody,
                &mut h.conv.session,
            );
        }
        HttpEvent::StreamData(data) => {
            if let Some(sse) = h.sse.as_mut() {
                let mut events: Vec<SseEvent> = Vec::new();
                sse.feed(&data, &mut events);
                for ev in &events {
                    ctx.stats.sse_events += 1;
                    if ev.event.as_deref() == Some("endpoint") {
                        h.conv.legacy_sse = true;
                    }
                    classifier.inspect_sse_event(ev, &mut h.conv.session);
                }
            } else {
                classifier.inspect_payload(
                    &data,
                    Direction::ServerToClient,
                    Carrier::HttpBody,
                    &mut h.conv.session,
                );
            }
        }
        HttpEvent::MessageEnd => h.sse = None,
        HttpEvent::Upgraded if h.ws_requested => return Switch::WebSocket,
        HttpEvent::Upgraded if h.connect => return Switch::Tunnel,
        HttpEvent::Upgraded => {}
    }
    Switch::Stay
}

/// Turn an upgraded HTTP connection into a WebSocket one, replaying the bytes
/// each side sent after its upgrade head.
fn into_websocket(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    h: &mut HttpApp,
    pending: &mut [Vec<u8>; 2],
) -> TcpApp {
    let ext = h.ws_extensions.as_deref().unwrap_or("");
    let max = ctx.cfg.websocket_max_message_bytes;
    let mut w = Box::new(WsApp {
        streams: [
            WsStream::new(true, parse_deflate_extension(ext, true), max),
            WsStream::new(false, parse_deflate_extension(ext, false), max),
        ],
        conv: std::mem::take(&mut h.conv),
    });
    w.conv.websocket = true;
    for dir in 0..2 {
        let Some(buf) = pending.get_mut(dir) else {
            continue;
        };
        let bytes = std::mem::take(buf);
        ws_data(ctx, meta, dir, &bytes, pending, &mut w);
    }
    TcpApp::WebSocket(w)
}

fn ws_data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    w: &mut WsApp,
) {
    let (Some(buf), Some(stream)) = (pending.get_mut(dir), w.streams.get_mut(dir)) else {
        return;
    };
    let mut msgs = Vec::new();
    if feed_buffered(buf, data, 64 * 1024, |d| stream.feed(d, &mut msgs)).is_err() {
        ctx.stats.websocket_errors += 1;
        buf.clear();
    }
    let d = if dir == 0 {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    for m in msgs {
        ctx.stats.websocket_messages += 1;
        if let WsMessage::Text(t) = m {
            ctx.detector
                .classifier
                .inspect_payload(&t, d, Carrier::WebSocket, &mut w.conv.session);
        }
    }
    emit_conversation(ctx, meta, &mut w.conv);
}

/// Cleartext request to a known server on one of its published paths.
fn known_path(ctx: &mut Ctx<'_>, meta: &FlowMeta, conv: &Conversation) {
    let Some(raw) = conv.raw_host() else {
        return;
    };
    if ctx.host_misses.contains(raw) {
        return;
    }
    let name = host_lookup_name(raw);
    let Some((name, m)) = name
        .as_ref()
        .and_then(|n| ctx.detector.signatures.match_host_buf(n).map(|m| (n, m)))
    else {
        ctx.host_misses.insert(raw);
        return;
    };
    let method = conv.request.as_ref().map_or("", Head::method);
    let host = name.as_str().to_owned();
    let target = conv.raw_target().unwrap_or("");
    let path = target.split('?').next().unwrap_or("");
    if m.server.paths.is_empty() || !crate::signatures::SignatureSet::path_matches(m.server, path) {
        return;
    }
    let redacted = conv.path();
    let evidence = vec![
        Evidence::new(
            Signal::HttpPath,
            format!("{method} {}", redacted.as_deref().unwrap_or("")),
        ),
        Evidence::new(Signal::KnownServer, m.server.vendor.clone()),
    ];
    push_observation(
        ctx,
        meta,
        Some(host),
        redacted,
        Transport::StreamableHttp,
        evidence,
        None,
    );
}

/// Emit what a cleartext conversation proved since the last call.
fn emit_conversation(ctx: &mut Ctx<'_>, meta: &FlowMeta, conv: &mut Conversation) {
    let evidence = conv.session.take_new_evidence();
    let changed = conv.session.take_inventory_changed();
    if !conv.session.is_confirmed() || (evidence.is_empty() && !changed) {
        return;
    }
    if !conv.counted {
        conv.counted = true;
        ctx.stats.mcp_sessions_confirmed += 1;
    }
    if evidence.iter().any(|e| e.signal == Signal::SseEndpoint) {
        conv.legacy_sse = true;
    }
    let transport = if conv.websocket {
        Transport::Websocket
    } else if conv.legacy_sse {
        Transport::Sse
    } else {
        Transport::StreamableHttp
    };
    let name = conv.host().or_else(|| {
        lock(ctx.dns_cache)
            .lookup(meta.server, meta.ts)
            .map(str::to_owned)
    });
    let inventory = conv.session.inventory().clone();
    push_observation(
        ctx,
        meta,
        name,
        conv.path(),
        transport,
        evidence,
        Some(inventory),
    );
}

fn push_observation(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    server_name: Option<String>,
    path: Option<String>,
    transport: Transport,
    evidence: Vec<Evidence>,
    mcp: Option<crate::findings::McpInventory>,
) {
    let community_id = (meta.proto == PROTO_TCP || meta.proto == PROTO_UDP).then(|| {
        community_id_v1(
            ctx.cfg.community_id_seed,
            meta.client,
            meta.client_port,
            meta.server,
            meta.server_port,
            meta.proto,
        )
    });
    ctx.out.push(Observation {
        ts: meta.ts,
        flow_id: meta.id,
        client_ip: meta.client,
        client_port: Some(meta.client_port),
        server_ip: Some(meta.server),
        server_port: Some(meta.server_port),
        server_name,
        path,
        transport,
        community_id,
        evidence,
        mcp,
        tls: None,
    });
}

/// Host header value without port; `None` for IP literals (attributed by DNS instead).
fn host_without_port(host: &str) -> Option<String> {
    host_name(host).map(str::to_ascii_lowercase)
}

/// The name part of a Host value: without the port, the brackets of an
/// IPv6 literal and trailing dots; not checked.
fn host_part(host: &str) -> &str {
    // Header values come without surrounding blanks: `trim` (which decodes
    // characters, for Unicode white space) only when an end byte could be one.
    let ends_plain = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
    let h = if ends_plain(host.as_bytes().first()) && ends_plain(host.as_bytes().last()) {
        host
    } else {
        host.trim()
    };
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        // A port is the digits after the last colon.
        match h.as_bytes().iter().rposition(|&b| b == b':') {
            Some(c)
                if h.as_bytes()
                    .get(c + 1..)
                    .is_some_and(|p| p.iter().all(u8::is_ascii_digit)) =>
            {
                h.get(..c).unwrap_or(h)
            }
            _ => h,
        }
    };
    if name.ends_with('.') {
        name.trim_end_matches('.')
    } else {
        name
    }
}

/// The name of a Host value for the signature look-up, checked and
/// lower-cased in one pass: `None` where [`host_name`] gives none, or a name
/// the look-up rejects (an empty label), which no signature matches.
fn host_lookup_name(host: &str) -> Option<HostBuf<'_>> {
    HostBuf::new(host_part(host)).filter(|b| !b.is_ipv4_literal())
}

/// [`host_without_port`] before lower-casing, borrowed: a checked name
/// (`None` for an address or a byte no name has).
fn host_name(host: &str) -> Option<&str> {
    let name = host_part(host);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    // One pass: the characters a name may have, and whether it could be an
    // address (only digits and dots, or a colon).
    let (mut all, mut any) = (NAME_BYTE | NUMERIC_BYTE, 0);
    for b in name.bytes() {
        let class = host_byte(b);
        all &= class;
        any |= class;
    }
    let (valid, numeric) = (all & NAME_BYTE != 0, all & NUMERIC_BYTE != 0);
    let colon = any & COLON_BYTE != 0;
    if (numeric || colon) && name.parse::<IpAddr>().is_ok() {
        return None;
    }
    valid.then_some(name)
}

/// Evidence that explains why a name matters.
fn name_evidence(class: &HostClass<'_>, name: &str, out: &mut Vec<Evidence>) {
    if let Some(m) = class.known {
        let mut d = m.server.vendor.clone();
        if m.server.shared_host {
            d.push_str(" (shared host: name alone does not prove MCP)");
        }
        if !m.exact {
            d.push_str(&format!(" (pattern {})", m.server.host));
        }
        out.push(Evidence::new(Signal::KnownServer, d));
    }
    // The heuristic only adds something for names that are not on the list.
    if class.heuristic && class.known.is_none() {
        out.push(Evidence::new(
            Signal::HostnameHeuristic,
            format!("'mcp' label in {name}"),
        ));
    }
}

/// `, ALPN h2,http/1.1`: at most 4 values of at most 24 characters, so a
/// hostile hello cannot bloat the evidence.
fn alpn_summary(alpn: &[String]) -> String {
    if alpn.is_empty() {
        return String::new();
    }
    let mut shown: Vec<String> = alpn
        .iter()
        .take(4)
        .map(|a| a.chars().take(24).collect())
        .collect();
    if alpn.len() > 4 {
        shown.push(format!("+{} more", alpn.len() - 4));
    }
    format!(", ALPN {}", shown.join(","))
}

fn on_client_hello(ctx: &mut Ctx<'_>, meta: &FlowMeta, hello: &ClientHello, transport: Transport) {
    let ja4 = ja4(
        hello,
        if transport == Transport::Quic {
            Ja4Transport::Quic
        } else {
            Ja4Transport::Tcp
        },
    );
    let sni_signal = if transport == Transport::Quic {
        Signal::QuicSni
    } else {
        Signal::TlsSni
    };
    let ech_front = hello
        .sni
        .as_deref()
        .filter(|s| ctx.detector.signatures.is_ech_public_name(s));
    if hello.ech.is_some() {
        ctx.stats.tls_ech += 1;
    }
    let mut evidence = Vec::new();
    let alpn = alpn_summary(&hello.alpn);
    let name = match (&hello.sni, ech_front) {
        (Some(sni), None) => {
            evidence.push(Evidence::new(
                sni_signal,
                format!("{sni} (JA4 {ja4}{alpn})"),
            ));
            if hello.ech.is_some() {
                evidence.push(Evidence::new(
                    Signal::Ech,
                    "ECH offered with a plain SNI (GREASE or unknown config)",
                ));
            }
            sni.clone()
        }
        _ => {
            // No usable SNI: an IP-literal connection or an ECH front. The DNS
            // answer that led here names the server.
            let Some(name) = lock(ctx.dns_cache)
                .lookup(meta.server, meta.ts)
                .map(str::to_owned)
            else {
                return;
            };
            evidence.push(Evidence::new(
                Signal::DnsAnswerIp,
                format!("{} was resolved from {name}", meta.server),
            ));
            match ech_front {
                Some(front) => evidence.push(Evidence::new(
                    Signal::Ech,
                    format!("server name hidden by ECH (front {front}); JA4 {ja4}"),
                )),
                None => evidence.push(Evidence::new(
                    sni_signal,
                    format!("no SNI (JA4 {ja4}{alpn})"),
                )),
            }
            name
        }
    };
    let Some(class) = ctx.detector.reportable_host(&name) else {
        return;
    };
    name_evidence(&class, &name, &mut evidence);
    push_observation(ctx, meta, Some(name), None, transport, evidence, None);
}

fn on_dns(ctx: &mut Ctx<'_>, meta: &FlowMeta, msg: &dns::DnsMessage) {
    ctx.stats.dns_messages += 1;
    let resolved = if msg.is_response {
        msg.resolved_addresses()
    } else {
        Vec::new()
    };
    // Names worth reporting: the questions, and names reached through CNAME
    // chains (`assistant.corp.example` CNAME `mcp.linear.app`). Bounded.
    let mut names: Vec<&str> = msg
        .questions
        .iter()
        .take(4)
        .map(|q| q.name.as_str())
        .collect();
    for n in resolved.iter().flat_map(|r| r.names.iter()) {
        if names.len() >= 16 {
            break;
        }
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    for name in names {
        let Some(class) = ctx.detector.reportable_host(name) else {
            continue;
        };
        let mut evidence = Vec::new();
        match msg.questions.iter().find(|q| q.name == name) {
            Some(q) => evidence.push(Evidence::new(
                Signal::DnsQuery,
                format!("{} {name}", qtype_name(q.qtype)),
            )),
            None => {
                let alias = resolved
                    .iter()
                    .find(|r| r.names.iter().any(|n| n == name))
                    .and_then(|r| r.names.first())
                    .map_or("", String::as_str);
                evidence.push(Evidence::new(
                    Signal::DnsQuery,
                    format!("{alias} is an alias (CNAME) of {name}"),
                ));
            }
        }
        let mut first_addr = None;
        let addrs: Vec<String> = resolved
            .iter()
            .filter(|r| r.names.iter().any(|n| n == name))
            .take(8)
            .map(|r| {
                first_addr.get_or_insert(r.addr);
                r.addr.to_string()
            })
            .collect();
        if !addrs.is_empty() {
            evidence.push(Evidence::new(
                Signal::DnsQuery,
                format!("{name} answered {}", addrs.join(", ")),
            ));
        }
        if msg
            .answers
            .iter()
            .any(|a| matches!(&a.data, dns::RData::Svcb(s) if s.ech) && a.name == name)
        {
            evidence.push(Evidence::new(
                Signal::Ech,
                format!("{name} publishes an ECH config (HTTPS record)"),
            ));
        }
        name_evidence(&class, name, &mut evidence);
        // The flow's client is the querier; the server of the finding is the
        // resolved address (if seen), not the DNS resolver.
        push_dns_observation(ctx, meta, first_addr, name.to_owned(), evidence);
    }
    remember_answers(ctx.detector, ctx.dns_cache, &resolved, meta.ts);
}

/// Store the addresses of notable names in the DNS cache. Prefer a name on
/// the known-server list (the question, not the CDN target it aliases), then
/// any other notable name.
fn remember_answers(
    detector: &Detector,
    cache: &Mutex<DnsCache>,
    resolved: &[dns::ResolvedAddress],
    ts: Micros,
) {
    for r in resolved {
        let known = r
            .names
            .iter()
            .find(|n| detector.signatures.match_host(n).is_some());
        if let Some(name) =
            known.or_else(|| r.names.iter().find(|n| detector.classify_host(n).is_some()))
        {
            lock(cache).insert(r.addr, name, r.ttl, ts);
        }
    }
}

/// For a reader that hands packets to several engines: store the DNS answers
/// of a frame in the shared cache right away, so that a connection read
/// later cannot be looked up before the engine holding the DNS flow caught
/// up. Engines store the same answers again (idempotent).
pub fn prime_dns_cache(
    detector: &Detector,
    cache: &Mutex<DnsCache>,
    ts: Micros,
    linktype: i32,
    frame: &[u8],
) {
    let Ok(p) = decode::decode(linktype, frame) else {
        return;
    };
    let L4::Udp {
        sport: 53, payload, ..
    } = p.transport
    else {
        return;
    };
    if let Ok(msg) = dns::parse_message(payload)
        && msg.is_response
    {
        remember_answers(detector, cache, &msg.resolved_addresses(), ts);
    }
}

fn push_dns_observation(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    server_ip: Option<IpAddr>,
    name: String,
    evidence: Vec<Evidence>,
) {
    ctx.out.push(Observation {
        ts: meta.ts,
        flow_id: meta.id,
        client_ip: meta.client,
        client_port: Some(meta.client_port),
        server_ip,
        server_port: None,
        server_name: Some(name),
        path: None,
        transport: Transport::Dns,
        // The DNS exchange's own flow (querier ↔ resolver), to pivot to DNS logs.
        community_id: Some(community_id_v1(
            ctx.cfg.community_id_seed,
            meta.client,
            meta.client_port,
            meta.server,
            meta.server_port,
            meta.proto,
        )),
        evidence,
        mcp: None,
        tls: None,
    });
}

fn qtype_name(t: u16) -> String {
    match t {
        dns::TYPE_A => "A".into(),
        dns::TYPE_AAAA => "AAAA".into(),
        dns::TYPE_CNAME => "CNAME".into(),
        dns::TYPE_HTTPS => "HTTPS".into(),
        dns::TYPE_SVCB => "SVCB".into(),
        other => format!("TYPE{other}"),
    }
}

/// A poisoned lock only means another worker panicked mid-update; the cache
/// is still usable.
fn lock(m: &Mutex<DnsCache>) -> std::sync::MutexGuard<'_, DnsCache> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(c: u16, from_client: bool, seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
        let (client, server) = ([10, 0, (c >> 8) as u8, c as u8], [10, 9, 9, 9]);
        let (src, dst, sport, dport) = if from_client {
            (client, server, 40_000, 80)
        } else {
            (server, client, 80, 40_000)
        };
        let mut b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src, dst, 64)
            .tcp(sport, dport, seq, 65535);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'A' => b.ack(1),
                'F' => b.fin(),
                _ => b.psh(),
            };
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("frame");
        out
    }

    /// Connection `c`: handshake and client segments at their offsets.
    fn conn(c: u16, segments: &[(u32, &[u8])]) -> Vec<Vec<u8>> {
        let mut v = vec![
            frame(c, true, 999, "S", b""),
            frame(c, false, 4999, "SA", b""),
        ];
        for &(off, data) in segments {
            v.push(frame(c, true, 1000 + off, "AP", data));
        }
        v
    }

    fn observations(engine: &mut Engine, frames: &[Vec<u8>], ts: &mut Micros) -> Vec<String> {
        for f in frames {
            *ts += 10;
            engine.process_frame(*ts, crate::decode::linktype::ETHERNET, f);
        }
        engine
            .drain_observations()
            .map(|o| {
                format!(
                    "{:?} {:?} {:?} {:?}",
                    o.server_name, o.path, o.evidence, o.mcp
                )
            })
            .collect()
    }

    /// Streams that end leave their blocks for later streams. A kept block
    /// holds no buffer (they would escape the buffer budget), the pool stays
    /// at its bound, and a stream started in a reused block sees exactly
    /// what it would in a fresh engine.
    #[test]
    fn ended_streams_leave_empty_blocks_for_new_ones() {
        let cfg = EngineConfig::default();
        let detector = Arc::new(crate::detect::hosts::Detector::new(
            crate::signatures::SignatureSet::builtin().expect("signatures"),
            crate::signatures::allowlist::Allowlist::empty(),
        ));
        let mut engine = Engine::new(cfg.clone(), detector.clone());
        let mut ts = 1_700_000_000_000_000;
        // Each stream holds a partial head of a known server's request and
        // an out-of-order segment when it ends.
        let partial = format!(
            "POST /mcp HTTP/1.1\r\nHost: mcp.notion.com\r\nX-Pad: {}\r\n",
            "p".repeat(4000)
        );
        // All open at once, then all closed: more ended streams than kept blocks.
        let n = SPARE_STREAMS as u16 + 20;
        let mut frames = Vec::new();
        for c in 0..n {
            frames.extend(conn(c, &[(0, partial.as_bytes()), (9000, b"late")]));
        }
        for c in 0..n {
            frames.push(frame(c, true, 50_000, "FA", b""));
            frames.push(frame(c, false, 5000, "FA", b""));
        }
        observations(&mut engine, &frames, &mut ts);
        // The last streams to end wait to be emptied; the others' blocks
        // are kept, up to the bound.
        assert_eq!(engine.blocks.streams.retiring.len(), RETIRE_AFTER);
        assert_eq!(engine.blocks.streams.spare.len(), SPARE_STREAMS);
        for st in &engine.blocks.streams.spare {
            assert_eq!(held_bytes(&st.reasm, &st.pending, &st.app), 0);
            assert!(st.pending.iter().all(|p| p.capacity() == 0));
            assert!(matches!(st.app, TcpApp::Done), "{:?}", st.app);
        }
        assert_eq!(engine.stats().tcp_buffered_bytes, 0);
        assert_eq!(engine.stats().tcp_streams_active, 0);

        // A new MCP session, in a reused block and in a fresh engine.
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}"#;
        let req = format!(
            "POST /mcp HTTP/1.1\r\nHost: mcp.example.org\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let session = conn(1000, &[(0, req.as_bytes())]);
        let reused = observations(&mut engine, &session, &mut ts);
        assert_eq!(engine.blocks.streams.spare.len(), SPARE_STREAMS - 1);
        let mut fresh_engine = Engine::new(cfg, detector);
        let mut ts2 = ts - 10 * session.len() as Micros;
        let fresh = observations(&mut fresh_engine, &session, &mut ts2);
        assert!(!fresh.is_empty());
        assert_eq!(reused, fresh);
    }

    fn test_engine() -> Engine {
        let detector = Arc::new(crate::detect::hosts::Detector::new(
            crate::signatures::SignatureSet::builtin().expect("signatures"),
            crate::signatures::allowlist::Allowlist::empty(),
        ));
        Engine::new(EngineConfig::default(), detector)
    }

    /// How many flows are HTTP connections in their idle form.
    fn idle_flows(engine: &mut Engine) -> usize {
        let slots = u32::try_from(engine.flows.capacity()).expect("capacity");
        (0..slots)
            .filter(|&i| {
                matches!(
                    engine.flows.get_mut(i),
                    Some(Flow {
                        app: App::HttpIdle(_),
                        ..
                    })
                )
            })
            .count()
    }

    const INITIALIZE_RESULT: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"srv","version":"1.0"}}}"#;

    fn json_response(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// A request showing nothing MCP-like leaves the connection idle (its
    /// stream state released, still counted against the stream cap and the
    /// buffer budget); the response that proves MCP is still reported with
    /// the request's Host and target, as without the idle form.
    #[test]
    fn an_idle_connection_keeps_the_request_its_response_answers() {
        let mut engine = test_engine();
        let mut ts = 1_700_000_000_000_000;
        let req = "GET /api/stream?token=s3cret HTTP/1.1\r\nHost: mcp.example.org\r\n\r\n";
        let frames = conn(1, &[(0, req.as_bytes())]);
        assert!(observations(&mut engine, &frames, &mut ts).is_empty());
        assert_eq!(idle_flows(&mut engine), 1);
        assert_eq!(engine.stats().tcp_streams_active, 1);
        assert!(engine.stats().tcp_buffered_bytes >= req.len() as u64 / 2);
        assert_eq!(
            engine.blocks.streams.spare.len(),
            1,
            "the stream block is kept for reuse"
        );

        let resp = json_response(INITIALIZE_RESULT);
        let out = observations(
            &mut engine,
            &[frame(1, false, 5000, "AP", resp.as_bytes())],
            &mut ts,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].starts_with(r#"Some("mcp.example.org") Some("/api/stream?token="#),
            "{out:?}"
        );
        assert!(!out[0].contains("s3cret"), "{out:?}");
        // Confirmed MCP: the connection keeps its full state from now on.
        assert_eq!(idle_flows(&mut engine), 0);

        let close = [
            frame(1, true, 1000 + req.len() as u32, "FA", b""),
            frame(1, false, 5000 + resp.len() as u32, "FA", b""),
        ];
        observations(&mut engine, &close, &mut ts);
        assert_eq!(engine.stats().tcp_streams_active, 0);
        assert_eq!(engine.stats().tcp_buffered_bytes, 0);
    }

    /// What the parsers hold between messages survives the idle form: a
    /// HEAD request's response has no body whatever its Content-Length,
    /// and a request without Host is given the previous request's.
    #[test]
    fn an_idle_connection_resumes_its_parsers_and_host() {
        let mut engine = test_engine();
        let mut ts = 1_700_000_000_000_000;
        let head = "HEAD / HTTP/1.1\r\nHost: mcp.example.org\r\n\r\n";
        let frames = conn(2, &[(0, head.as_bytes())]);
        observations(&mut engine, &frames, &mut ts);
        assert_eq!(idle_flows(&mut engine), 1);
        // The answer to HEAD: a length, no body.
        let r1 = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 120\r\n\r\n";
        observations(
            &mut engine,
            &[frame(2, false, 5000, "AP", r1.as_bytes())],
            &mut ts,
        );
        assert_eq!(idle_flows(&mut engine), 1, "idle again after the response");
        // Then a request without Host, and its MCP answer, parsed as such
        // only if the HEAD response was known to have no body.
        let req2 = "POST /mcp HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        let resp2 = json_response(INITIALIZE_RESULT);
        let out = observations(
            &mut engine,
            &[
                frame(2, true, 1000 + head.len() as u32, "AP", req2.as_bytes()),
                frame(2, false, 5000 + r1.len() as u32, "AP", resp2.as_bytes()),
            ],
            &mut ts,
        );
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].starts_with(r#"Some("mcp.example.org") Some("/mcp")"#),
            "{out:?}"
        );
    }

    /// Ending an idle connection releases its budget, and its block is
    /// kept for another, like a stream's.
    #[test]
    fn ended_idle_connections_release_their_budget_and_blocks() {
        let mut engine = test_engine();
        let mut ts = 1_700_000_000_000_000;
        let req = "GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n";
        let n = (RETIRE_AFTER + 5) as u16;
        let mut frames = Vec::new();
        for c in 0..n {
            frames.extend(conn(c, &[(0, req.as_bytes())]));
        }
        observations(&mut engine, &frames, &mut ts);
        assert_eq!(idle_flows(&mut engine), usize::from(n));
        assert_eq!(engine.stats().tcp_streams_active, u64::from(n));
        let mut frames = Vec::new();
        for c in 0..n {
            frames.push(frame(c, true, 1000 + req.len() as u32, "FA", b""));
            frames.push(frame(c, false, 5000, "FA", b""));
        }
        observations(&mut engine, &frames, &mut ts);
        assert_eq!(idle_flows(&mut engine), 0);
        assert_eq!(engine.stats().tcp_streams_active, 0);
        assert_eq!(engine.stats().tcp_buffered_bytes, 0);
        assert_eq!(engine.blocks.idle.retiring.len(), RETIRE_AFTER);
        assert_eq!(engine.blocks.idle.spare.len(), 5);
        assert!(engine.blocks.idle.spare.iter().all(|i| i.request.is_none()));
    }

    /// The known-server check on Host: a value that matched nothing is
    /// remembered (and answers the same nothing next time), a known
    /// server's Host is never remembered and is reported on every
    /// connection, and new signatures forget the misses.
    #[test]
    fn host_misses_are_remembered_until_the_signatures_change() {
        let mut engine = test_engine();
        let mut ts = 1_700_000_000_000_000;
        let plain = "GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n";
        let known = "GET /mcp HTTP/1.1\r\nHost: agenttools.wolfram.com\r\n\r\n";
        for c in 0..3 {
            let out = observations(&mut engine, &conn(c, &[(0, plain.as_bytes())]), &mut ts);
            assert!(out.is_empty(), "{out:?}");
            assert!(engine.host_misses.contains("www.example.org"));
            let out = observations(
                &mut engine,
                &conn(10 + c, &[(0, known.as_bytes())]),
                &mut ts,
            );
            assert_eq!(out.len(), 1, "{out:?}");
            assert!(
                out[0].contains("HttpPath") && out[0].contains("KnownServer"),
                "{out:?}"
            );
            assert!(!engine.host_misses.contains("agenttools.wolfram.com"));
        }
        let same = engine.detector.clone();
        engine.set_detector(same);
        assert!(!engine.host_misses.contains("www.example.org"));
    }

    #[test]
    fn host_name_strips_the_port_and_rejects_addresses_and_odd_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("mcp.Example.com", Some("mcp.Example.com")),
            (" mcp.example.com:8080 ", Some("mcp.example.com")),
            ("mcp.example.com.", Some("mcp.example.com")),
            ("mcp.example.com.:443", Some("mcp.example.com")),
            ("mcp.example.com:", Some("mcp.example.com")),
            ("localhost", Some("localhost")),
            ("under_score.example", Some("under_score.example")),
            // Not a port: the colon stays, and a colon is not a name character.
            ("mcp.example.com:http", None),
            ("10.1.2.3", None),
            ("10.1.2.3:8080", None),
            ("[::1]:8080", None),
            ("[2001:db8::1]", None),
            ("::1", None),
            // Digits and dots that are not an address are a name.
            ("1.2.3", Some("1.2.3")),
            ("", None),
            (":80", None),
            ("...", None),
            ("bad host", None),
            ("caf\u{e9}.example", None),
        ];
        for (input, want) in cases {
            assert_eq!(host_name(input), *want, "{input:?}");
        }
        let long = "a".repeat(254);
        assert_eq!(host_name(&long), None);
        assert_eq!(host_name(&long[..253]), Some(&long[..253]));
    }

    /// The one-pass look-up name is the checked name of [`host_name`],
    /// normalised as the signature look-up normalises it.
    fn assert_lookup_name_agrees(host: &str) {
        let want = host_name(host).and_then(HostBuf::new);
        let got = host_lookup_name(host);
        assert_eq!(
            got.as_ref().map(HostBuf::name_and_last_label),
            want.as_ref().map(HostBuf::name_and_last_label),
            "{host:?}"
        );
    }

    #[test]
    fn lookup_name_of_odd_host_values() {
        for h in [
            "mcp.notion.com",
            "MCP.Notion.com:443",
            "mcp.notion.com..",
            "mcp.notion.com.:8080",
            " mcp.notion.com\t",
            "\u{2003}mcp.notion.com",
            "mcp.notion.com\u{a0}",
            "10.1.2.3",
            "10.1.2.3:80",
            "256.1.2.3",
            "1.2.3",
            "[::1]:80",
            "[mcp.notion.com]",
            "a..b",
            ".a",
            "a:b:80",
            "",
            ":",
            "...",
        ] {
            assert_lookup_name_agrees(h);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn lookup_name_agrees_with_the_checked_name(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "B", "1", "0", ".", ":", "80", "[", "]", " ", "\t", "-", "_",
                    "\u{2003}", "é", "255", "mcp", "::1",
                ]),
                0..12,
            ),
        ) {
            assert_lookup_name_agrees(&pieces.concat());
        }

        /// The name part, taken with fast paths for the usual values, is
        /// the one of the plain rules (trim, brackets, port, trailing dots).
        #[test]
        fn host_part_agrees_with_the_plain_rules(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "1", ".", ":", "80", "[", "]", " ", "\t", "\u{2003}", "\u{a0}", "é",
                ]),
                0..10,
            ),
        ) {
            let host = pieces.concat();
            let h = host.trim();
            let name = if let Some(rest) = h.strip_prefix('[') {
                rest.split(']').next().unwrap_or("")
            } else {
                match memchr::memrchr(b':', h.as_bytes()) {
                    Some(c) if h.as_bytes()[c + 1..].iter().all(u8::is_ascii_digit) => &h[..c],
                    _ => h,
                }
            };
            proptest::prop_assert_eq!(host_part(&host), name.trim_end_matches('.'));
        }
    }
}
