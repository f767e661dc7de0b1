//! The per-packet engine: decode → flow → TCP reassembly → application
//! parsers → classification, producing `Observation`s. Synchronous and
//! single-threaded; one engine per worker. Nothing here allocates per
//! packet in the common case (bulk TLS, or any flow already decided): such
//! packets only touch the flow table.
//!
//! ```text
//! mod.rs        the engine: batches and frames in, flows looked up, layer 4
//! schedule.rs   the prefetch schedule of a batch
//! tcp.rs        TCP streams: reassembly, stream cap and buffer budget, end
//! probe.rs      which application a stream carries
//! apps/         one module per application (http, websocket, tls, dns, quic)
//! observe.rs    observations from what a conversation proved
//! context.rs    what every handler is given; state.rs, pool.rs: the state
//! keywait.rs    TLS connections waiting for session keys (live key logs)
//! ```

mod apps;
mod buffer;
mod config;
mod context;
mod keywait;
mod observe;
mod pool;
mod probe;
mod schedule;
mod state;
mod tcp;

pub use apps::dns::prime_dns_cache;
pub use config::EngineConfig;
pub use schedule::frame_at;

use crate::decode::{self, DecodeError, DecodedPacket, Transport as L4};
use crate::defrag::{Defragmenter, Reassembly};
use crate::detect::discovery::DiscoveredHosts;
use crate::detect::dns_cache::DnsCache;
use crate::detect::host_misses::HostMisses;
use crate::detect::hosts::Detector;
use crate::findings::{Micros, Observation};
use crate::flow::table::{EvictReason, FlowTable};
use crate::flow::{FlowKey, PROTO_TCP, PROTO_UDP, orient};
use crate::proto::http1::HttpEvent;
use crate::proto::quic;
use crate::stats::Stats;
use crate::tls_decrypt::DecryptContext;
use buffer::Next;
use context::{Ctx, FlowMeta, lock};
use keywait::KeyWaits;
use schedule::FlowLookup;
use state::{App, Flow, StreamBlocks};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
    /// Hosts named by MCP discovery answers (server cards, catalogs, the
    /// registry, `_agent` TXT records), for the connections that follow:
    /// this engine's own offline (the output must not depend on how the
    /// workers' reading interleaves), shared by the live sensor's workers.
    discovered: Arc<Mutex<DiscoveredHosts>>,
    /// Session keys: TLS connections are decrypted when set.
    decrypt: Option<Arc<DecryptContext>>,
    /// TLS connections whose records wait for keys.
    key_waits: KeyWaits,
    /// IP datagrams waiting for their fragments.
    defrag: Defragmenter,
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
            discovered: Arc::new(Mutex::new(DiscoveredHosts::default())),
            decrypt: None,
            key_waits: KeyWaits::default(),
            defrag: Defragmenter::default(),
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

    /// Remember discovered hosts in `table`, shared with other engines (the
    /// live sensor's workers: a discovery answer and the connection it
    /// names usually land on different workers).
    pub fn share_discovered_hosts(&mut self, table: Arc<Mutex<DiscoveredHosts>>) {
        self.discovered = table;
    }

    /// Decrypt TLS connections with the session keys of `ctx` (shared by
    /// the engines of a run).
    pub fn set_decryption(&mut self, ctx: Arc<DecryptContext>) {
        self.decrypt = Some(ctx);
    }

    /// Replace the detector (signature reload); existing flows keep their state.
    pub fn set_detector(&mut self, detector: Arc<Detector>) {
        self.detector = detector;
        // New signatures: a name that matched nothing may match now.
        self.host_misses.clear();
    }

    /// The flow table and the context its handlers need, borrowed together.
    fn parts(&mut self) -> (&mut FlowTable<Flow>, Ctx<'_>, &mut StreamBlocks, Micros) {
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
            discovered,
            decrypt,
            key_waits,
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
                host_misses,
                discovered: &*discovered,
                decrypt: decrypt.as_ref(),
                key_wait: false,
                parked: &mut key_waits.parked,
            },
            blocks,
            *now,
        )
    }

    /// Observations produced since the last call.
    pub fn drain_observations(&mut self) -> std::vec::Drain<'_, Observation> {
        self.out.drain(..)
    }

    /// Process one captured frame.
    pub fn process_frame(&mut self, ts: Micros, linktype: i32, frame: &[u8]) {
        let decoded = decode::decode(linktype, frame);
        self.process_decoded(ts, linktype, frame, &decoded, None);
    }

    /// Process one frame that the caller already decoded (with
    /// [`decode::decode`]) and possibly keyed (`lookup`, from
    /// [`FlowLookup::of`] of the same packet), as [`Engine::process_frame`]
    /// would.
    fn process_decoded(
        &mut self,
        ts: Micros,
        linktype: i32,
        frame: &[u8],
        decoded: &Result<DecodedPacket<'_>, DecodeError>,
        lookup: Option<&FlowLookup>,
    ) {
        match decoded {
            Ok(p) => {
                self.stats.packets += 1;
                self.stats.bytes += frame.len() as u64;
                self.process_packet(ts, p, lookup)
            }
            Err(DecodeError::Fragment) => self.process_fragment(ts, linktype, frame),
            Err(e) => {
                self.stats.packets += 1;
                self.stats.bytes += frame.len() as u64;
                self.stats.decode_error(*e)
            }
        }
    }

    /// An IP fragment: held until its datagram is whole, which is then
    /// processed as one packet. Every worker is shown every fragment (see
    /// `pipeline::shard`) and keeps the same table, since their clock is
    /// the fragments' own: worker 0 counts them, and the worker that the
    /// whole datagram's flow is sharded to processes it.
    #[cold]
    #[inline(never)]
    fn process_fragment(&mut self, ts: Micros, linktype: i32, frame: &[u8]) {
        let counts = self.cfg.worker == 0;
        let stats = &mut self.stats;
        let mut count = |f: fn(&mut Stats) -> &mut u64, n: u64| {
            if counts {
                *f(stats) += n;
            }
        };
        count(|s| &mut s.packets, 1);
        count(|s| &mut s.bytes, frame.len() as u64);
        count(|s| &mut s.ip_fragments, 1);
        let Some(fragment) = decode::fragment(linktype, frame) else {
            count(|s| &mut s.ip_fragments_invalid, 1);
            return;
        };
        let (outcome, notes) = self.defrag.add(ts, &fragment);
        count(|s| &mut s.ip_datagrams_timed_out, notes.timed_out);
        count(|s| &mut s.ip_datagrams_evicted, notes.evicted);
        count(
            |s| &mut s.ip_fragments_overlapping,
            u64::from(notes.overlapping),
        );
        let datagram = match outcome {
            Reassembly::Waiting => return,
            Reassembly::Duplicate => return count(|s| &mut s.ip_fragments_duplicate, 1),
            Reassembly::Dropped(_) => return count(|s| &mut s.ip_fragments_invalid, 1),
            Reassembly::Complete(d) => d,
        };
        count(|s| &mut s.ip_datagrams_reassembled, 1);
        match decode::decode(decode::linktype::RAW, &datagram) {
            Ok(p) if crate::pipeline::shard_packet(&p, self.cfg.workers) == self.cfg.worker => {
                self.process_packet(ts, &p, None)
            }
            Ok(_) => {}
            // Not decodable: worker 0's, as `shard` gives such frames.
            Err(e) if counts => self.stats.decode_error(e),
            Err(_) => {}
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
        if self.key_waits.due(self.now) {
            self.poll_decryption(self.now);
        }
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
        let (flows, mut ctx, blocks, now) = self.parts();
        flows.expire(now, |key, flow, reason| {
            tcp::finish_flow(&mut ctx, blocks, key, flow, reason, now)
        });
    }

    /// End of input: finish every flow (pending reassembly, read-until-close bodies).
    pub fn finish(&mut self) {
        // Keys that came last are still used.
        self.key_waits.generation = None;
        self.poll_decryption(self.now);
        let (flows, mut ctx, blocks, now) = self.parts();
        flows.drain(|key, flow, reason| tcp::finish_flow(&mut ctx, blocks, key, flow, reason, now));
        // Ended connections still waiting: their keys did not come.
        for mut p in std::mem::take(ctx.parked) {
            apps::decrypt::close(&mut ctx, &p.meta, &mut p.app);
        }
        self.key_waits.open.clear();
        self.stats.tls_key_waits_open = 0;
        self.stats.tls_key_waits_parked = 0;
        self.stats.dns_cache_evictions = lock(&self.dns_cache).evictions();
    }

    /// Whether TLS connections wait for session keys (the caller should
    /// call [`Engine::poll_decryption`] while no packets come).
    pub fn waiting_for_keys(&self) -> bool {
        !self.key_waits.is_empty()
    }

    /// Retry the TLS connections whose records wait for session keys, if
    /// the key table changed, and give up those past their deadline. `now`
    /// is the caller's clock (the wall clock live; it only moves the
    /// engine's clock forward). Cheap when nothing waits; looks at most
    /// every 100 ms.
    pub fn poll_decryption(&mut self, now: Micros) {
        let Some(dc) = &self.decrypt else {
            return;
        };
        self.now = self.now.max(now);
        let now = self.now;
        let w = &mut self.key_waits;
        if w.is_empty() {
            return;
        }
        let generation = dc.table.generation();
        let changed = w.generation != Some(generation);
        w.swept = now;
        if !changed && now.saturating_sub(w.deadline_swept) < keywait::DEADLINE_EVERY {
            return;
        }
        w.generation = Some(generation);
        w.deadline_swept = now;
        let mut open = std::mem::take(&mut w.open);
        let mut parked = std::mem::take(&mut w.parked);
        let (flows, mut ctx, blocks, _) = self.parts();
        open.retain(|&(idx, id)| {
            let Some(key) = flows.key(idx).copied() else {
                return false;
            };
            let Some(flow) = flows.get_mut(idx).filter(|f| f.id == id) else {
                return false;
            };
            let meta = tcp::flow_meta(&key, id, flow.client_is_a, now);
            tcp::poll_keys(&mut ctx, blocks, &meta, flow, now)
        });
        parked.retain_mut(|p| {
            p.meta.ts = now;
            let next = apps::decrypt::poll(&mut ctx, &p.meta, &mut p.app, now);
            if next == Next::Stay && apps::decrypt::waiting(&p.app) {
                return true;
            }
            apps::decrypt::close(&mut ctx, &p.meta, &mut p.app);
            false
        });
        // Connections that started waiting or ended during the sweep.
        parked.append(ctx.parked);
        open.append(&mut self.key_waits.open);
        self.key_waits.open = open;
        self.key_waits.parked = parked;
        self.stats.tls_key_waits_open = self.key_waits.open.len() as u64;
        self.stats.tls_key_waits_parked = self.key_waits.parked.len() as u64;
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
        let (flows, mut ctx, blocks, now) = self.parts();
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
            |k, f, r| tcp::finish_flow(&mut ctx, blocks, k, f, r, now),
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
            let (flows, mut ctx, blocks, now) = self.parts();
            if let Some((key, flow)) = flows.remove(idx) {
                tcp::finish_flow(&mut ctx, blocks, key, flow, EvictReason::Closed, now);
            }
            let Some(again) = self.flow_for(ts, look, new_app, client_is_src) else {
                return;
            };
            (idx, from_client) = again;
        }
        let dir = usize::from(!from_client);
        let (flows, mut ctx, blocks, _) = self.parts();
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
            tcp::tcp_no_data(flow, dir, seq, flags);
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
            tcp::tcp_segment(&mut ctx, blocks, &meta, flow, dir, seq, flags, payload);
        }
        if closing {
            // Ended: finish the parsers, drop the buffers, and keep a tiny
            // tombstone for the late packets, for the closed timeout only.
            if let Some(flow) = flows.get_mut(idx) {
                match std::mem::replace(&mut flow.app, App::Done) {
                    App::Tcp(st) => tcp::close_tcp(&mut ctx, blocks, &meta, st, true),
                    App::HttpIdle(idle) => tcp::close_idle(&mut ctx, blocks, idle),
                    _ => {}
                }
            }
            flows.close(idx, ts);
        } else if ctx.key_wait {
            if self.key_waits.open.len() < self.cfg.max_key_waits_open {
                self.key_waits.open.push((idx, meta.id));
                self.stats.tls_key_waits_open = self.key_waits.open.len() as u64;
            } else {
                self.stats.tls_key_waits_full += 1;
            }
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
        let (flows, mut ctx, _, _) = self.parts();
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
            App::Dns => apps::dns::datagram(&mut ctx, &meta, payload),
            App::Quic(tracker) if from_client => {
                let next = apps::quic::client_datagram(&mut ctx, &meta, tracker, payload);
                if next == Next::Done {
                    flow.app = App::Done;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::apps::TcpApp;
    use super::pool::{RETIRE_AFTER, SPARE_STREAMS};
    use super::tcp::held_bytes;
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
        // A POST: the JSON answer to a GET is a document, never classified.
        let req = "POST /api/stream?token=s3cret HTTP/1.1\r\nHost: mcp.example.org\r\nContent-Length: 0\r\n\r\n";
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
}
