//! Keys that reach the key table after the records they open, as they do
//! live (a key log followed by polling is read a moment after each
//! handshake): the engine holds the records, retries them when the table
//! changes (`Engine::poll_decryption`, which the live worker calls while no
//! packets come), also for connections that ended meanwhile, and gives them
//! up at the deadline. The capture is the committed Python SDK session over
//! TLS 1.3 (pcaps/py-tls13-h1.pcap, six connections, server name without
//! `mcp`) and its key log.

use shadowmcp::capture::FileSource;
use shadowmcp::detect::hosts::Detector;
use shadowmcp::engine::{Engine, EngineConfig};
use shadowmcp::findings::{Micros, Observation, Signal};
use shadowmcp::signatures::SignatureSet;
use shadowmcp::signatures::allowlist::Allowlist;
use shadowmcp::tls_decrypt::{DecryptContext, DecryptLimits, KeyTable};
use std::path::Path;
use std::sync::Arc;

const PCAP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/py-tls13-h1.pcap");
const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pcaps/py-tls13-h1.keys");

fn engine() -> (Engine, Arc<DecryptContext>) {
    engine_with(EngineConfig::default())
}

fn engine_with(cfg: EngineConfig) -> (Engine, Arc<DecryptContext>) {
    let detector = Arc::new(Detector::new(
        SignatureSet::builtin().expect("signatures"),
        Allowlist::empty(),
    ));
    let mut e = Engine::new(cfg, detector);
    let ctx = Arc::new(DecryptContext::new(
        Arc::new(KeyTable::new(1000)),
        DecryptLimits::default(),
        64 << 20,
    ));
    e.set_decryption(ctx.clone());
    (e, ctx)
}

/// Feed the capture's frames (those `keep` accepts); returns the time of
/// the last one.
fn feed(e: &mut Engine, keep: impl Fn(&[u8]) -> bool, out: &mut Vec<Observation>) -> Micros {
    let mut src = FileSource::open(Path::new(PCAP)).expect("fixture");
    let lt = src.linktype();
    let mut last = 0;
    while let Some(f) = src.next_frame().expect("frame") {
        if keep(f.data) {
            e.process_frame(f.ts, lt, f.data);
            last = f.ts;
        }
    }
    out.extend(e.drain_observations());
    last
}

fn decrypted(out: &[Observation]) -> Vec<&Observation> {
    out.iter()
        .filter(|o| o.evidence.iter().any(|e| e.signal == Signal::TlsDecrypted))
        .collect()
}

fn methods(out: &[Observation]) -> Vec<String> {
    let mut m: Vec<String> = decrypted(out)
        .iter()
        .filter_map(|o| o.mcp.as_ref())
        .flat_map(|i| i.methods.iter().cloned())
        .collect();
    m.sort();
    m.dedup();
    m
}

fn load_keys(ctx: &DecryptContext) {
    let text = std::fs::read(KEYS).expect("keys");
    assert!(ctx.table.load_bytes(&text, "test").keys > 0);
}

/// Whether an Ethernet/IPv4/TCP frame has FIN or RST set.
fn ends(frame: &[u8]) -> bool {
    let Ok(p) = etherparse::SlicedPacket::from_ethernet(frame) else {
        return false;
    };
    matches!(p.transport, Some(etherparse::TransportSlice::Tcp(t)) if t.fin() || t.rst())
}

/// Every connection ended (FIN) before its keys came: they were parked and
/// are read once the keys arrive.
#[test]
fn ended_connections_are_read_when_their_keys_come() {
    let (mut e, ctx) = engine();
    let mut out = Vec::new();
    let last = feed(&mut e, |_| true, &mut out);
    assert!(decrypted(&out).is_empty(), "no keys yet: {out:?}");
    assert!(e.waiting_for_keys());
    assert!(ctx.counters.snapshot().records_held > 0);
    // Nothing changed: a look finds nothing new.
    e.poll_decryption(last + 200_000);
    assert!(e.drain_observations().next().is_none());

    load_keys(&ctx);
    e.poll_decryption(last + 400_000);
    out.extend(e.drain_observations());
    let m = methods(&out);
    assert!(m.contains(&"initialize".to_owned()), "{m:?}");
    assert!(m.contains(&"tools/list".to_owned()), "{m:?}");
    assert!(!e.waiting_for_keys());
    let s = ctx.counters.snapshot();
    assert_eq!(s.flows_missing_keys, 0, "{s:?}");
    assert_eq!(s.records_dropped, 0, "{s:?}");
    assert!(s.flows_decrypted >= 1, "{s:?}");
    assert_eq!(ctx.budget.used(), 0);
}

/// Connections still open (their FINs not seen) are retried from the
/// engine's list.
#[test]
fn open_connections_are_read_when_their_keys_come() {
    let (mut e, ctx) = engine();
    let mut out = Vec::new();
    let last = feed(&mut e, |f| !ends(f), &mut out);
    assert!(decrypted(&out).is_empty());
    assert!(e.waiting_for_keys());
    load_keys(&ctx);
    e.poll_decryption(last + 150_000);
    out.extend(e.drain_observations());
    assert!(methods(&out).contains(&"tools/list".to_owned()), "{out:?}");
    assert!(!e.waiting_for_keys());
    e.finish();
    assert_eq!(ctx.counters.snapshot().flows_missing_keys, 0);
}

/// Keys that never come: at the deadline the held records are dropped
/// (counted), the connections are left with their ClientHello (a name on
/// no list: nothing to report), and keys arriving later change nothing.
#[test]
fn records_are_given_up_at_the_deadline() {
    let (mut e, ctx) = engine();
    let mut out = Vec::new();
    let last = feed(&mut e, |_| true, &mut out);
    let timeout = DecryptLimits::default().hold_timeout;
    e.poll_decryption(last + timeout / 2);
    assert!(e.waiting_for_keys(), "before the deadline");
    e.poll_decryption(last + timeout + 2_000_000);
    assert!(!e.waiting_for_keys());
    let s = ctx.counters.snapshot();
    assert!(s.flows_missing_keys >= 1, "{s:?}");
    assert!(s.records_dropped >= 1, "{s:?}");
    assert_eq!(ctx.budget.used(), 0);
    load_keys(&ctx);
    e.poll_decryption(last + timeout + 3_000_000);
    e.finish();
    out.extend(e.drain_observations());
    assert!(decrypted(&out).is_empty(), "{out:?}");
}

/// The waiting and parked tables are gauged, bounded by the configuration,
/// and a connection that finds one full is counted and not kept.
#[test]
fn waiting_and_parked_tables_are_bounded_and_gauged() {
    let (mut e, ctx) = engine();
    let mut out = Vec::new();
    feed(&mut e, |_| true, &mut out);
    let parked = e.stats().tls_key_waits_parked;
    assert!(parked >= 2, "{:?}", e.stats());
    assert_eq!(e.stats().tls_key_waits_full, 0);
    load_keys(&ctx);
    e.poll_decryption(i64::MAX / 2);
    assert_eq!(e.stats().tls_key_waits_parked, 0);
    assert_eq!(e.stats().tls_key_waits_open, 0);

    let (mut e, ctx) = engine_with(EngineConfig {
        max_key_waits_open: 1,
        max_key_waits_parked: 1,
        ..EngineConfig::default()
    });
    let mut out = Vec::new();
    let last = feed(&mut e, |_| true, &mut out);
    assert_eq!(e.stats().tls_key_waits_parked, 1, "{:?}", e.stats());
    // The others found both tables full: each counted once per table.
    assert!(
        e.stats().tls_key_waits_full >= 2 * (parked - 1),
        "{:?}",
        e.stats()
    );
    load_keys(&ctx);
    e.poll_decryption(last + 400_000);
    out.extend(e.drain_observations());
    let s = ctx.counters.snapshot();
    // The one parked connection is read; the others' records were given up.
    assert!(s.flows_decrypted >= 1, "{s:?}");
    assert!(s.flows_missing_keys >= parked - 1, "{s:?}");
    // What they held went back to the shared budget when they ended.
    assert_eq!(ctx.budget.used(), 0);
}
