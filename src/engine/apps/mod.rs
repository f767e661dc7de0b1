//! Applications carried by TCP streams. Each protocol is one module here,
//! with the same entry points: data (reassembled bytes of one direction),
//! gap (a hole reassembly could not fill), close, and the heap bytes it
//! holds. [`TcpApp`] is the registry: one variant per application, and the
//! dispatch below. Adding a protocol is a module here, its parser in
//! `proto/`, a variant, its arms in the four dispatch methods, and a rule in
//! `probe.rs` (or a switch from the application it follows).

pub(super) mod decrypt;
pub(super) mod dns;
pub(super) mod http;
pub(super) mod http2;
pub(super) mod quic;
pub(super) mod tls;
pub(super) mod websocket;

use super::buffer::Next;
use super::context::{Ctx, FlowMeta};
use super::probe::{self, Choice};
use crate::proto::http2::H2Limits;
use decrypt::DecryptApp;
use http::{HttpApp, Switch};
use http2::H2App;
use websocket::WsApp;

// The HTTP variant is inline on purpose: TcpState lives in its own
// allocation, so its size is paid once per inspected stream.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum TcpApp {
    /// Before the client's first bytes have chosen a protocol.
    Probe,
    Tls,
    /// TLS with session keys: its records decrypted into an application.
    Decrypt(Box<DecryptApp>),
    /// Inline, not boxed: a connection's stream and HTTP state are one
    /// allocation, loaded (and freed) together.
    Http(HttpApp),
    Http2(Box<H2App>),
    WebSocket(Box<WsApp>),
    Dns,
    Done,
}

impl TcpApp {
    /// Reassembled bytes of direction `dir` (0: client → server), with
    /// `pending`, each direction's bytes the application has not consumed.
    /// Plaintext bytes of direction `dir` coming next that the application
    /// would drop unseen (see [`crate::proto::http1::HttpStream::discardable`]).
    pub(super) fn discardable(&self, dir: usize) -> u64 {
        match self {
            TcpApp::Http(h) => match dir {
                0 => h.req.discardable(),
                _ => h.resp.discardable(),
            },
            _ => 0,
        }
    }

    /// `n` bytes of direction `dir`, at most [`TcpApp::discardable`], went
    /// by unseen.
    pub(super) fn skip(&mut self, dir: usize, n: u64) {
        if let TcpApp::Http(h) = self {
            match dir {
                0 => h.req.skip_body(n),
                _ => h.resp.skip_body(n),
            }
        }
    }

    pub(super) fn data(
        &mut self,
        ctx: &mut Ctx<'_>,
        meta: &FlowMeta,
        dir: usize,
        data: &[u8],
        pending: &mut [Vec<u8>; 2],
    ) {
        let next = match self {
            TcpApp::Probe => return self.probe(ctx, meta, dir, data, pending),
            TcpApp::Tls => tls::data(ctx, meta, dir, data, pending),
            TcpApp::Decrypt(d) => decrypt::data(ctx, meta, dir, data, pending, d),
            TcpApp::Dns => dns::stream_data(ctx, meta, dir, data, pending),
            TcpApp::Http(h) => match http::data(ctx, meta, dir, data, pending, h) {
                Switch::Stay => Next::Stay,
                Switch::WebSocket => {
                    let w = WsApp::from_http(h, ctx.cfg.websocket_max_message_bytes);
                    *self = TcpApp::WebSocket(w);
                    return self.replay(ctx, meta, pending);
                }
                Switch::Http2 => {
                    // `Upgrade: h2c` accepted: the upgraded request is
                    // stream 1, its answer and everything after is HTTP/2.
                    let request = h.conv.request.clone().unwrap_or_default();
                    let conv = std::mem::take(&mut h.conv);
                    let limits = H2Limits::from_http(&ctx.cfg.http);
                    ctx.stats.http2_connections += 1;
                    *self = TcpApp::Http2(H2App::upgraded(limits, &request, conv));
                    return self.replay(ctx, meta, pending);
                }
                Switch::Tunnel => {
                    // A proxy tunnel (2xx to CONNECT): whatever the client
                    // sends next (usually a TLS ClientHello) is probed afresh.
                    *self = TcpApp::Probe;
                    if let Some(p) = pending.get_mut(1) {
                        p.clear();
                    }
                    return self.replay(ctx, meta, pending);
                }
            },
            TcpApp::Http2(h) => http2::data(ctx, meta, dir, data, pending, h),
            TcpApp::WebSocket(w) => {
                websocket::data(ctx, meta, dir, data, pending, w);
                Next::Stay
            }
            TcpApp::Done => Next::Stay,
        };
        if next == Next::Done {
            *self = TcpApp::Done;
        }
    }

    /// A hole in direction `dir`. Only HTTP resynchronises (on the next
    /// message); a hole in a hello, a WebSocket frame stream or DNS/TCP
    /// framing cannot be crossed reliably: stop.
    pub(super) fn gap(&mut self, dir: usize, pending: &mut [Vec<u8>; 2]) {
        match self {
            TcpApp::Http(h) => http::gap(h, dir, pending),
            TcpApp::Probe
            | TcpApp::Tls
            | TcpApp::Decrypt(_)
            | TcpApp::Http2(_)
            | TcpApp::WebSocket(_)
            | TcpApp::Dns => *self = TcpApp::Done,
            TcpApp::Done => {}
        }
    }

    /// The end of the stream (reassembly already delivered what it held).
    pub(super) fn close(&mut self, ctx: &mut Ctx<'_>, meta: &FlowMeta) {
        match self {
            TcpApp::Http(h) => http::close(ctx, meta, h),
            TcpApp::Http2(h) => http2::close(ctx, meta, h),
            TcpApp::Decrypt(d) => decrypt::close(ctx, meta, d),
            _ => {}
        }
    }

    /// Heap bytes the application's parsers hold (partial messages).
    pub(super) fn held_bytes(&self) -> usize {
        match self {
            TcpApp::Http(h) => h.held_bytes(),
            TcpApp::Http2(h) => h.held_bytes(),
            TcpApp::Decrypt(d) => d.held_bytes(),
            TcpApp::WebSocket(w) => w.held_bytes(),
            TcpApp::Probe | TcpApp::Tls | TcpApp::Dns | TcpApp::Done => 0,
        }
    }

    /// Prefetch what freeing this state frees (a hint only).
    pub(super) fn prefetch_frees(&self) {
        if let TcpApp::Http(h) = self {
            h.prefetch_frees();
        }
    }

    /// The application the client's first bytes choose, which is then
    /// given them. They are probed in place when nothing is buffered (the
    /// common case: the first segment holds the method or the record
    /// header), so they are not copied.
    fn probe(
        &mut self,
        ctx: &mut Ctx<'_>,
        meta: &FlowMeta,
        dir: usize,
        data: &[u8],
        pending: &mut [Vec<u8>; 2],
    ) {
        if dir != 0 {
            return;
        }
        let Some(buf) = pending.get_mut(0) else {
            return;
        };
        let buffered = !buf.is_empty();
        if buffered {
            buf.extend_from_slice(data);
        }
        let probed: &[u8] = if buffered { buf } else { data };
        let Some(choice) = probe::choose(probed, meta.server_port) else {
            if !buffered {
                buf.extend_from_slice(data);
            }
            return;
        };
        *self = match choice {
            Choice::Tls => match ctx.decrypt {
                Some(keys) if keys.enabled() => TcpApp::Decrypt(DecryptApp::new(keys.clone())),
                _ => TcpApp::Tls,
            },
            Choice::Http => TcpApp::Http(HttpApp::start(ctx.cfg)),
            Choice::Http2 => {
                ctx.stats.http2_connections += 1;
                TcpApp::Http2(H2App::start(H2Limits::from_http(&ctx.cfg.http)))
            }
            Choice::Dns => TcpApp::Dns,
            Choice::Nothing => {
                buf.clear();
                *self = TcpApp::Done;
                return;
            }
        };
        if !buffered {
            self.data(ctx, meta, 0, data, pending);
            return;
        }
        // Replay the probed bytes through the chosen application.
        let probed = pending.get_mut(0).map(std::mem::take).unwrap_or_default();
        self.data(ctx, meta, 0, &probed, pending);
    }

    /// After a switch: what each direction had buffered goes to the new
    /// application.
    fn replay(&mut self, ctx: &mut Ctx<'_>, meta: &FlowMeta, pending: &mut [Vec<u8>; 2]) {
        for dir in 0..2 {
            let Some(buf) = pending.get_mut(dir) else {
                continue;
            };
            let bytes = std::mem::take(buf);
            self.data(ctx, meta, dir, &bytes, pending);
        }
    }
}
