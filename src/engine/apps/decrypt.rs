//! TLS with session keys (from a key log or a pcapng Decryption Secrets
//! Block): the ClientHello judged as for any TLS connection, and the
//! records of both directions decrypted into an application of their own,
//! probed like a cleartext stream (HTTP/1.1, or HTTP/2 from its preface),
//! so the plaintext gets the same MCP proof, inventory and redaction. What
//! the plaintext proves is marked `tls-decrypted`, with the TLS version and
//! cipher suite.

use super::super::buffer::Next;
use super::super::context::{Ctx, FlowMeta};
use super::TcpApp;
use super::tls;
use crate::findings::{Evidence, Micros, Signal};
use crate::tls_decrypt::{DecryptContext, Dir, TlsDecryptor, TlsEvent};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct DecryptApp {
    dec: TlsDecryptor,
    /// The ClientHello was read (or could not be).
    hello_done: bool,
    /// The application the plaintext carries, and its unconsumed bytes.
    inner: TcpApp,
    inner_pending: [Vec<u8>; 2],
    /// `TLS 1.3 TLS_AES_128_GCM_SHA256`, once the ServerHello chose.
    negotiated: Option<Box<str>>,
    /// In the engine's list of flows waiting for keys.
    listed: bool,
}

impl DecryptApp {
    pub(super) fn new(ctx: Arc<DecryptContext>) -> Box<Self> {
        Box::new(DecryptApp {
            dec: TlsDecryptor::new(ctx),
            hello_done: false,
            inner: TcpApp::Probe,
            inner_pending: [Vec::new(), Vec::new()],
            negotiated: None,
            listed: false,
        })
    }

    pub(super) fn held_bytes(&self) -> usize {
        self.inner
            .held_bytes()
            .saturating_add(self.inner_pending.iter().map(Vec::capacity).sum())
    }
}

/// Record bytes of direction `dir`.
pub(super) fn data(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    dir: usize,
    data: &[u8],
    pending: &mut [Vec<u8>; 2],
    app: &mut DecryptApp,
) -> Next {
    if !app.hello_done && dir == 0 && tls::data(ctx, meta, 0, data, pending) == Next::Done {
        app.hello_done = true;
    }
    let from = Dir::from_index(dir);
    let next = drive(ctx, meta, app, &mut |dec, ev| {
        dec.feed(from, data, meta.ts, &mut &mut *ev)
    });
    if next == Next::Stay && !app.listed && app.dec.waiting_for_keys() {
        // Records wait for keys: the engine retries this flow when the key
        // table changes (see `keywait`).
        app.listed = true;
        ctx.key_wait = true;
    }
    next
}

/// Retry the records held for keys (the key table changed, or `now` may be
/// past the deadline).
pub(in crate::engine) fn poll(
    ctx: &mut Ctx<'_>,
    meta: &FlowMeta,
    app: &mut DecryptApp,
    now: Micros,
) -> Next {
    let next = drive(ctx, meta, app, &mut |dec, ev| dec.poll(now, &mut &mut *ev));
    if !app.dec.waiting_for_keys() {
        app.listed = false;
    }
    next
}

/// Whether records of this connection wait for keys.
pub(in crate::engine) fn waiting(app: &DecryptApp) -> bool {
    app.dec.waiting_for_keys()
}

/// A call of the decryptor (feed or poll) with the event handler to use.
type Step<'s> = &'s mut dyn FnMut(&mut TlsDecryptor, &mut dyn FnMut(TlsEvent<'_>));

/// Run one step of the decryptor, its plaintext to the inner application.
fn drive(ctx: &mut Ctx<'_>, meta: &FlowMeta, app: &mut DecryptApp, step: Step<'_>) -> Next {
    let before = ctx.out.len();
    let DecryptApp {
        dec,
        inner,
        inner_pending,
        negotiated,
        ..
    } = app;
    step(dec, &mut |ev| match ev {
        TlsEvent::Negotiated { suite, version, .. } => {
            let v = match version {
                0x0304 => "TLS 1.3",
                0x0303 => "TLS 1.2",
                _ => "TLS",
            };
            let s = suite.map_or("unsupported suite", |s| s.name);
            *negotiated = Some(format!("{v} {s}").into_boxed_str());
        }
        TlsEvent::Plaintext { dir, data } => {
            let d = dir.index();
            inner.data(ctx, meta, d, data, inner_pending);
        }
        TlsEvent::Skippable { dir, len, skip } => {
            // A record whose plaintext the application would drop unseen
            // (the part of a download past the body limit) is not decrypted.
            let d = dir.index();
            let len = len as u64;
            let idle = inner_pending.get(d).is_some_and(Vec::is_empty);
            if idle && inner.discardable(d) >= len {
                inner.skip(d, len);
                skip.set(true);
            }
        }
        TlsEvent::Alpn(_) | TlsEvent::Done(_) => {}
    });
    mark_decrypted(ctx, meta, before, app.negotiated.as_deref());
    // Undecryptable (no keys in time, a suite not decrypted here, a record
    // that fails authentication), or plaintext that is nothing we parse:
    // only the ClientHello's evidence remains.
    let over = app.dec.done().is_some() || matches!(app.inner, TcpApp::Done);
    if over && app.hello_done {
        app.dec.skip();
        return Next::Done;
    }
    Next::Stay
}

/// A hole in the records: decryption cannot resume.
pub(in crate::engine) fn close(ctx: &mut Ctx<'_>, meta: &FlowMeta, app: &mut DecryptApp) {
    let before = ctx.out.len();
    app.inner.close(ctx, meta);
    mark_decrypted(ctx, meta, before, app.negotiated.as_deref());
}

/// Observations of this flow made from plaintext since `before` say so.
fn mark_decrypted(ctx: &mut Ctx<'_>, meta: &FlowMeta, before: usize, negotiated: Option<&str>) {
    let detail = negotiated.unwrap_or("TLS");
    for o in ctx.out.iter_mut().skip(before) {
        if o.flow_id == meta.id && !o.evidence.iter().any(|e| e.signal == Signal::TlsDecrypted) {
            o.evidence
                .push(Evidence::new(Signal::TlsDecrypted, detail.to_owned()));
        }
    }
}
