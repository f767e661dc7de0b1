//! The order in which a batch of frames is processed: with many flows in
//! flight each frame's flow look-up is a chain of cache misses (index
//! entry, table slot, stream state), so the frames ahead are decoded and
//! their look-ups prefetched in stages a few frames apart, overlapping those
//! misses with the work on the current frame. Hints only: they change no
//! state and no result, so a batch gives what its frames one by one give.

use super::Engine;
use super::apps::http::IdleHttp;
use super::state::{App, Flow, TcpState};
use crate::capture::FrameAt;
use crate::decode::{self, DecodeError, DecodedPacket, Transport as L4};
use crate::findings::Micros;
use crate::flow::{FlowKey, PROTO_TCP, PROTO_UDP};

/// Frames between a flow's first prefetch stage and its processing (the
/// later stages follow at 4 and 2 frames ahead).
const AHEAD: usize = 6;
/// Ring of look-ahead frames (more than `AHEAD`).
const RING: usize = 8;

/// A frame's flow key, direction and table hash, computed once per frame:
/// the batch needs the hash ahead of time for its prefetch, the engine the
/// key for the look-up.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlowLookup {
    pub(super) key: FlowKey,
    /// The packet travels from the key's endpoint `a` to `b`.
    pub(super) a_to_b: bool,
    pub(super) hash: u32,
    /// The flow table slot the index pointed to when the frame's slot was
    /// prefetched ([`Engine::prefetch_slot`]): checked against the key and
    /// used instead of a second probe of the index.
    pub(super) slot: Option<u32>,
}

impl FlowLookup {
    /// `None` when the packet is neither TCP nor UDP.
    pub(super) fn of(p: &DecodedPacket<'_>) -> Option<Self> {
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

impl Engine {
    /// Process frames in order: `frames` gives each one's timestamp,
    /// offset and length within `data`, all of link type `linktype`.
    pub fn process_batch<'a>(&mut self, linktype: i32, data: &'a [u8], frames: &[FrameAt]) {
        let frame = |i: usize| frame_at(data, frames.get(i)?);
        // Frames i .. i + AHEAD decoded once (for the prefetch and for the
        // engine), with their flow hashes, by position modulo RING.
        type Ahead<'a> = Option<(
            Micros,
            &'a [u8],
            Result<DecodedPacket<'a>, DecodeError>,
            Option<FlowLookup>,
        )>;
        let decode_at = |i: usize| -> Ahead<'a> {
            let (ts, frame) = frame(i)?;
            let d = decode::decode(linktype, frame);
            let h = d.as_ref().ok().and_then(FlowLookup::of);
            Some((ts, frame, d, h))
        };
        let mut ring: [Ahead<'a>; RING] = [None; RING];
        // Decode frame `j` into its ring place and start its first stage.
        let admit = |ring: &mut [Ahead<'a>; RING], engine: &Engine, j: usize| {
            if let Some(r) = ring.get_mut(j % RING) {
                *r = decode_at(j);
                if let Some((_, _, _, Some(h))) = r {
                    engine.prefetch_index(h);
                }
            }
        };
        for i in 0..AHEAD {
            admit(&mut ring, self, i);
        }
        for i in 0..frames.len() {
            admit(&mut ring, self, i + AHEAD);
            if let Some(Some((_, _, _, Some(h)))) = ring.get_mut((i + 4) % RING) {
                self.prefetch_slot(h);
            }
            // The stream state only for a segment that uses it: data for the
            // parsers, or a FIN or RST that may end it (a pure ACK does not).
            if let Some(Some((_, _, d, Some(h)))) = ring.get((i + 2) % RING)
                && !is_pure_ack(d)
            {
                self.prefetch_state(h);
            }
            if let Some(Some((ts, frame, d, h))) = ring.get(i % RING) {
                self.process_decoded(*ts, linktype, frame, d, h.as_ref());
            }
        }
    }

    // Start loading what a frame processed soon will need, in stages a few
    // frames apart, since each stage needs the previous one's line: the
    // flow's index entry, its slot, its stream state. Hints only: they
    // change no state and no result.

    /// Prefetch, first stage: the frame's index entry.
    fn prefetch_index(&self, look: &FlowLookup) {
        self.flows.prefetch_index(look.hash);
    }

    /// Prefetch, second stage: the frame's flow table slot, which is
    /// remembered in `look` for the third stage and for the look-up.
    fn prefetch_slot(&self, look: &mut FlowLookup) {
        look.slot = self.flows.prefetch_slot(look.hash);
    }

    /// Prefetch, third stage: the TCP stream state of the frame's flow (with
    /// the HTTP state, which is part of it), or its idle form.
    fn prefetch_state(&self, look: &FlowLookup) {
        match look.slot.and_then(|i| self.flows.peek_value_at(i)) {
            Some(Flow {
                app: App::Tcp(st), ..
            }) => {
                let st: &TcpState = st;
                crate::prefetch::prefetch_all(st);
            }
            Some(Flow {
                app: App::HttpIdle(idle),
                ..
            }) => {
                let idle: &IdleHttp = idle;
                crate::prefetch::prefetch_all(idle);
            }
            _ => {}
        }
    }
}

/// The frame that `(timestamp, offset, length)` places in `data`.
pub fn frame_at<'a>(data: &'a [u8], &(ts, off, len): &FrameAt) -> Option<(Micros, &'a [u8])> {
    let o = off as usize;
    Some((ts, data.get(o..o.saturating_add(len as usize))?))
}

/// A TCP segment without data, FIN or RST: the engine does not touch its
/// stream state.
fn is_pure_ack(d: &Result<DecodedPacket<'_>, DecodeError>) -> bool {
    matches!(d, Ok(p) if matches!(p.transport, L4::Tcp { flags, payload, .. }
        if payload.is_empty() && !flags.fin && !flags.rst && !flags.syn))
}

#[cfg(test)]
mod tests {
    use super::is_pure_ack;

    #[test]
    fn only_segments_without_data_fin_rst_or_syn_are_pure_acks() {
        use crate::decode::{decode, linktype};
        use etherparse::PacketBuilder;
        let tcp = |flags: &str, data: &[u8]| {
            let b = PacketBuilder::ethernet2([1; 6], [2; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 80, 7, 1024)
                .ack(1);
            let b = match flags {
                "F" => b.fin(),
                "R" => b.rst(),
                "S" => b.syn(),
                _ => b,
            };
            let mut out = Vec::new();
            b.write(&mut out, data).expect("frame");
            out
        };
        let pure = |f: &[u8]| is_pure_ack(&decode(linktype::ETHERNET, f));
        assert!(pure(&tcp("", b"")));
        assert!(!pure(&tcp("", b"x")));
        for flag in ["F", "R", "S"] {
            assert!(!pure(&tcp(flag, b"")), "{flag}");
        }
        let mut udp = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(40000, 53)
            .write(&mut udp, b"")
            .expect("frame");
        assert!(!pure(&udp));
    }
}
