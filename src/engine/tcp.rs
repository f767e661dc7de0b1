//! TCP streams: reassembly of both directions into the stream's
//! application, the stream cap and the buffer budget that bound what the
//! traffic can make the engine hold, the idle form of HTTP connections
//! between messages, and the end of a stream.

use super::EngineConfig;
use super::apps::TcpApp;
use super::apps::decrypt;
use super::apps::http::{HttpApp, IdleHttp};
use super::buffer::Next;
use super::context::{Ctx, FlowMeta};
use super::keywait::Parked;
use super::state::{App, Flow, StreamBlocks, TcpState};
use crate::decode;
use crate::findings::Micros;
use crate::flow::FlowKey;
use crate::flow::reassembly::{Chunk, Reassembler};
use crate::flow::table::EvictReason;
use crate::proto::http1::Head;

/// A flow leaves the table: deliver what reassembly still holds, finish
/// read-until-close bodies, count the reason.
pub(super) fn finish_flow(
    ctx: &mut Ctx<'_>,
    blocks: &mut StreamBlocks,
    key: FlowKey,
    flow: Flow,
    reason: EvictReason,
    now: Micros,
) {
    match reason {
        EvictReason::Idle => ctx.stats.flows_evicted_idle += 1,
        EvictReason::Capacity => ctx.stats.flows_evicted_capacity += 1,
        EvictReason::Closed | EvictReason::Flush => {}
    }
    let st = match flow.app {
        App::Tcp(st) => st,
        App::HttpIdle(idle) => return close_idle(ctx, blocks, idle),
        _ => return,
    };
    let meta = flow_meta(&key, flow.id, flow.client_is_a, now);
    close_tcp(ctx, blocks, &meta, st, false);
}

/// The metadata of a flow known by its key (no packet at hand).
pub(super) fn flow_meta(key: &FlowKey, id: u64, client_is_a: bool, now: Micros) -> FlowMeta {
    let (a, b) = (key.addr_a(), key.addr_b());
    let (client, client_port, server, server_port) = if client_is_a {
        (a, key.port_a, b, key.port_b)
    } else {
        (b, key.port_b, a, key.port_a)
    };
    FlowMeta {
        id,
        client,
        client_port,
        server,
        server_port,
        proto: key.proto,
        ts: now,
    }
}

/// End of a TCP stream: deliver what reassembly still holds, finish a
/// read-until-close body, report, and release the stream's budget. With
/// `park`, a TLS connection whose records wait for keys keeps its
/// decryption state until they come (see `keywait`).
pub(super) fn close_tcp(
    ctx: &mut Ctx<'_>,
    blocks: &mut StreamBlocks,
    meta: &FlowMeta,
    mut st: Box<TcpState>,
    park: bool,
) {
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
        r.flush(&mut |chunk| stream_chunk(ctx, &meta, dir, chunk, pending, app));
    }
    let waiting = matches!(app, TcpApp::Decrypt(d) if decrypt::waiting(d));
    let room = ctx.parked.len() < ctx.cfg.max_key_waits_parked;
    if park && waiting && !room {
        ctx.stats.tls_key_waits_full += 1;
    }
    if park
        && waiting
        && room
        && let TcpApp::Decrypt(d) = std::mem::replace(app, TcpApp::Done)
    {
        ctx.parked.push(Parked { meta, app: d });
        ctx.stats.tls_key_waits_parked = ctx.parked.len() as u64;
    } else {
        app.close(ctx, &meta);
        if waiting {
            // Given up now, not when the retired block is emptied: the
            // decryptor counts the missing keys and gives its held bytes
            // back to the shared budget as it goes.
            *app = TcpApp::Done;
        }
    }
    blocks.streams.retire(st);
}

/// Retry the records an open TLS connection holds for keys; returns
/// whether it still waits. A connection that is done is closed as in
/// [`tcp_segment`].
pub(super) fn poll_keys(
    ctx: &mut Ctx<'_>,
    blocks: &mut StreamBlocks,
    meta: &FlowMeta,
    flow: &mut Flow,
    now: Micros,
) -> bool {
    let App::Tcp(st) = &mut flow.app else {
        return false;
    };
    let TcpState {
        reasm,
        pending,
        app,
        held,
    } = &mut **st;
    let TcpApp::Decrypt(d) = app else {
        return false;
    };
    let done = decrypt::poll(ctx, meta, d, now) == Next::Done;
    let waiting = !done && decrypt::waiting(d);
    if done {
        *app = TcpApp::Done;
    }
    let before = *held;
    *held = held_bytes(reasm, pending, app);
    let total = &mut ctx.stats.tcp_buffered_bytes;
    *total = total
        .saturating_sub(before as u64)
        .saturating_add(*held as u64);
    if done && let App::Tcp(st) = std::mem::replace(&mut flow.app, App::Done) {
        close_tcp(ctx, blocks, meta, st, false);
    }
    waiting
}

/// End of an idle HTTP connection: nothing to finish or report (an idle
/// parser ends without events, a pristine conversation has nothing to say),
/// only the stream's budget to release.
pub(super) fn close_idle(ctx: &mut Ctx<'_>, blocks: &mut StreamBlocks, idle: Box<IdleHttp>) {
    ctx.stats.tcp_streams_active = ctx.stats.tcp_streams_active.saturating_sub(1);
    ctx.stats.tcp_buffered_bytes = ctx
        .stats
        .tcp_buffered_bytes
        .saturating_sub(idle.held as u64);
    blocks.idle.retire(idle);
}

/// A TCP segment without data: nothing for reassembly or the parsers (the
/// end of the stream is the caller's), only the initial sequence numbers. A
/// pure ACK does not touch the stream state.
pub(super) fn tcp_no_data(flow: &mut Flow, dir: usize, seq: u32, flags: decode::TcpFlags) {
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
#[allow(clippy::too_many_arguments)]
pub(super) fn tcp_segment(
    ctx: &mut Ctx<'_>,
    blocks: &mut StreamBlocks,
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
        let mut st = blocks.streams.take_empty();
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
        let mut st = blocks.streams.take_empty();
        resume_http(ctx.cfg, &mut idle, &mut st);
        blocks.idle.recycle(idle);
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
        stream_chunk(ctx, meta, dir, chunk, pending, app)
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
            close_tcp(ctx, blocks, meta, st, false);
        }
    } else if let App::Tcp(st) = &mut flow.app
        && let Some(idle) = idle_http(st)
    {
        // Between messages with nothing to show: keep only the idle form.
        let total = &mut ctx.stats.tcp_buffered_bytes;
        *total = total
            .saturating_sub(st.held as u64)
            .saturating_add(idle.held as u64);
        let idle = blocks.idle.take(idle);
        if let App::Tcp(st) = std::mem::replace(&mut flow.app, App::HttpIdle(idle)) {
            blocks.streams.recycle(st);
        }
    }
}

/// Heap bytes a stream's buffers hold: reassembly, unconsumed data and the
/// application's partial messages (see `EngineConfig::max_buffered_bytes`).
pub(super) fn held_bytes(reasm: &[Reassembler; 2], pending: &[Vec<u8>; 2], app: &TcpApp) -> usize {
    let mut n: usize = reasm.iter().map(Reassembler::buffered).sum();
    n = n.saturating_add(pending.iter().map(Vec::capacity).sum());
    n.saturating_add(app.held_bytes())
}

/// One piece of reassembled stream for direction `dir`, to the stream's
/// application.
fn stream_chunk(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    chunk: Chunk<'_>,
    pending: &mut [Vec<u8>; 2],
    app: &mut TcpApp,
) {
    match chunk {
        Chunk::Data(data) => app.data(ctx, meta, dir, data, pending),
        Chunk::Gap(_) => app.gap(dir, pending),
    }
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
    if !quiet {
        return None;
    }
    let (parsers, request, host_checked) = h.idle_parts()?;
    Some(IdleHttp {
        next,
        parsers,
        held: request.as_ref().map_or(0, Head::held_bytes),
        request,
        host_checked,
    })
}

/// Make the empty stream state `st` the one an idle HTTP connection stands
/// for (its request head is moved there).
fn resume_http(cfg: &EngineConfig, idle: &mut IdleHttp, st: &mut TcpState) {
    let [n0, n1] = idle.next;
    st.app = TcpApp::Http(HttpApp::resume(cfg, idle));
    st.reasm = [Reassembler::resume(n0), Reassembler::resume(n1)];
    st.held = idle.held;
}
