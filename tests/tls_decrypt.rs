//! Decryption of real TLS sessions (rustls client and server, in-process)
//! from the client's NSS key log: every supported version and suite,
//! KeyUpdate, HelloRetryRequest, resumption, 0-RTT, wrong, missing and late
//! keys, and damaged or oddly cut input.

mod tls_sessions;

use proptest::prelude::*;
use shadowmcp::tls_decrypt::{
    DecryptContext, DecryptLimits, DecryptStats, Dir, DoneReason, KeyTable, TlsDecryptor, TlsEvent,
};
use std::sync::Arc;
use tls_sessions::{Options, Transcript, connect, endpoints, session};

/// What a decryptor handed back.
#[derive(Debug, Default, PartialEq, Eq)]
struct Out {
    client: Vec<u8>,
    server: Vec<u8>,
    alpn: Option<Vec<u8>>,
    suite: Option<&'static str>,
    done: Option<DoneReason>,
}

impl Out {
    fn on(&mut self, e: TlsEvent<'_>) {
        match e {
            TlsEvent::Plaintext { dir, data } => match dir {
                Dir::ClientToServer => self.client.extend_from_slice(data),
                Dir::ServerToClient => self.server.extend_from_slice(data),
            },
            TlsEvent::Alpn(a) => self.alpn = Some(a.to_vec()),
            TlsEvent::Negotiated { suite, .. } => self.suite = suite.map(|s| s.name),
            TlsEvent::Done(r) => self.done = Some(r),
            // Everything is read here (see `large_records_can_be_passed_over`).
            TlsEvent::Skippable { .. } => {}
        }
    }
}

fn context(keys: &str) -> Arc<DecryptContext> {
    let table = Arc::new(KeyTable::new(10_000));
    table.load_bytes(keys.as_bytes(), "test");
    Arc::new(DecryptContext::new(
        table,
        DecryptLimits::default(),
        16 << 20,
    ))
}

fn dir(c2s: bool) -> Dir {
    if c2s {
        Dir::ClientToServer
    } else {
        Dir::ServerToClient
    }
}

/// Feed the chunks in the order they were written.
fn decrypt_with(ctx: &Arc<DecryptContext>, chunks: &[(bool, Vec<u8>)]) -> Out {
    let mut d = TlsDecryptor::new(ctx.clone());
    let mut out = Out::default();
    for (c2s, b) in chunks {
        d.feed(dir(*c2s), b, 0, &mut |e| out.on(e));
    }
    out
}

fn decrypt(t: &Transcript, keys: &str) -> (Out, DecryptStats) {
    let ctx = context(keys);
    let out = decrypt_with(&ctx, &t.chunks);
    (out, ctx.counters.snapshot())
}

/// The plaintext of both directions comes back exactly.
fn assert_recovers(t: &Transcript, keys: &str) -> DecryptStats {
    let (out, stats) = decrypt(t, keys);
    assert_eq!(out.done, None, "{stats:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.client),
        String::from_utf8_lossy(&t.client_plain)
    );
    assert_eq!(out.server, t.server_plain);
    assert_eq!(out.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(stats.flows_with_keys, 1);
    assert_eq!(stats.auth_failures, 0);
    assert_eq!(
        stats.plaintext_bytes,
        (t.client_plain.len() + t.server_plain.len()) as u64
    );
    stats
}

#[test]
fn tls13_each_suite() {
    for (id, name) in [
        (0x1301, "TLS_AES_128_GCM_SHA256"),
        (0x1302, "TLS_AES_256_GCM_SHA384"),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    ] {
        let (t, keys) = session(&Options {
            suites: vec![id],
            ..Options::default()
        });
        assert_eq!((t.version, t.suite), (0x0304, id));
        assert_recovers(&t, &keys);
        let (out, _) = decrypt(&t, &keys);
        assert_eq!(out.suite, Some(name));
    }
}

#[test]
fn tls13_key_update_both_directions() {
    let o = Options {
        key_update: true,
        exchanges: 3,
        ..Options::default()
    };
    let (t, keys) = session(&o);
    let stats = assert_recovers(&t, &keys);
    assert!(stats.records_decrypted > 8, "{stats:?}");
}

#[test]
fn tls13_hello_retry_request() {
    let o = Options {
        // The client's first key share is X25519; the server only takes
        // P-256 and must ask again.
        server_groups: Some(vec![rustls::NamedGroup::secp256r1]),
        ..Options::default()
    };
    let (t, keys) = session(&o);
    let s2c = t.stream(false);
    let hrr = shadowmcp::tls_decrypt::record::HRR_RANDOM;
    assert!(s2c.windows(32).any(|w| w == hrr), "no HelloRetryRequest");
    assert_recovers(&t, &keys);
}

#[test]
fn tls13_resumption_and_early_data() {
    let o = Options::default();
    let ep = endpoints(&o);
    let first = connect(&ep, &o);
    let second = connect(&ep, &o);
    assert!(!first.resumed && second.resumed);
    let keys = ep.log.text();
    assert_recovers(&first, &keys);
    assert_recovers(&second, &keys);

    // 0-RTT: the early data is skipped (its secret is not used), the rest
    // decrypts.
    let o = Options {
        early_data: true,
        ..Options::default()
    };
    let ep = endpoints(&o);
    connect(&ep, &o);
    let t = connect(&ep, &o);
    assert!(t.resumed && !t.early_plain.is_empty());
    let stats = assert_recovers(&t, &ep.log.text());
    assert!(stats.early_data_skipped >= 1, "{stats:?}");
}

#[test]
fn tls12_aead_suites_and_resumption() {
    for (id, name) in [
        (0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
        (0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
        (0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ] {
        let o = Options {
            tls13: false,
            suites: vec![id],
            ..Options::default()
        };
        let ep = endpoints(&o);
        let first = connect(&ep, &o);
        let second = connect(&ep, &o);
        assert_eq!((first.version, first.suite), (0x0303, id));
        // rustls always uses the extended master secret; the key log holds
        // the master secret either way.
        assert!(!first.resumed && second.resumed, "{name}");
        let keys = ep.log.text();
        assert_recovers(&first, &keys);
        assert_recovers(&second, &keys);
        assert_eq!(decrypt(&first, &keys).0.suite, Some(name));
    }
}

#[test]
fn direction_order_does_not_matter() {
    for tls13 in [true, false] {
        let o = Options {
            tls13,
            suites: vec![if tls13 { 0x1302 } else { 0xc02c }],
            ..Options::default()
        };
        let (t, keys) = session(&o);
        // Server's bytes first, then the client's, and the reverse.
        for first in [false, true] {
            let ctx = context(&keys);
            let chunks: Vec<_> = [first, !first].iter().map(|c| (*c, t.stream(*c))).collect();
            let out = decrypt_with(&ctx, &chunks);
            assert_eq!(
                (out.client, out.server),
                (t.client_plain.clone(), t.server_plain.clone())
            );
        }
    }
}

/// Flip one byte of every secret.
fn damage(keys: &str) -> String {
    keys.lines()
        .map(|l| {
            let mut l = l.to_string();
            let c = if l.ends_with('0') { "1" } else { "0" };
            l.replace_range(l.len() - 1.., c);
            l + "\n"
        })
        .collect()
}

#[test]
fn wrong_keys_stop_the_flow_and_count() {
    for tls13 in [true, false] {
        let o = Options {
            tls13,
            suites: vec![if tls13 { 0x1303 } else { 0xcca9 }],
            ..Options::default()
        };
        let (t, keys) = session(&o);
        let (out, stats) = decrypt(&t, &damage(&keys));
        assert_eq!(out.done, Some(DoneReason::AuthFailure));
        assert!(out.client.is_empty() && out.server.is_empty());
        assert_eq!(stats.auth_failures, 1);
        // A damaged record does the same with the right keys.
        let mut chunks = t.chunks.clone();
        let last = chunks.iter().rposition(|(c2s, _)| !c2s).unwrap();
        let n = chunks[last].1.len();
        chunks[last].1[n - 3] ^= 0x40;
        let ctx = context(&keys);
        let out = decrypt_with(&ctx, &chunks);
        assert_eq!(out.done, Some(DoneReason::AuthFailure));
        assert_eq!(ctx.counters.snapshot().auth_failures, 1);
    }
}

#[test]
fn missing_keys_are_held_then_dropped_at_the_deadline() {
    let (t, _) = session(&Options::default());
    let ctx = context("");
    let mut d = TlsDecryptor::new(ctx.clone());
    let mut out = Out::default();
    for (c2s, b) in &t.chunks {
        d.feed(dir(*c2s), b, 1_000, &mut |e| out.on(e));
    }
    assert!(d.waiting_for_keys());
    let s = ctx.counters.snapshot();
    assert!(s.records_held > 4, "{s:?}");
    assert!(ctx.budget.used() > 0);
    // Not yet at the deadline.
    d.poll(1_000 + DecryptLimits::default().hold_timeout, &mut |e| {
        out.on(e)
    });
    assert_eq!(out.done, None);
    d.poll(2_000 + DecryptLimits::default().hold_timeout, &mut |e| {
        out.on(e)
    });
    assert_eq!(out.done, Some(DoneReason::MissingKeys));
    let s = ctx.counters.snapshot();
    assert_eq!(s.flows_missing_keys, 1);
    assert_eq!(s.records_dropped, s.records_held, "{s:?}");
    assert_eq!(ctx.budget.used(), 0);
    assert!(out.client.is_empty());

    // A connection dropped while it waits (flow ended or evicted) counts
    // the same and gives its budget back.
    let ctx = context("");
    let mut d = TlsDecryptor::new(ctx.clone());
    for (c2s, b) in &t.chunks {
        d.feed(dir(*c2s), b, 1_000, &mut |_| {});
    }
    assert!(ctx.budget.used() > 0);
    drop(d);
    let s = ctx.counters.snapshot();
    assert_eq!(s.flows_missing_keys, 1);
    assert_eq!(s.records_dropped, s.records_held, "{s:?}");
    assert_eq!(ctx.budget.used(), 0);
}

#[test]
fn keys_arriving_late_release_the_held_records() {
    for tls13 in [true, false] {
        let o = Options {
            tls13,
            suites: vec![if tls13 { 0x1301 } else { 0xc02b }],
            ..Options::default()
        };
        let (t, keys) = session(&o);
        let table = Arc::new(KeyTable::new(100));
        let ctx = Arc::new(DecryptContext::new(
            table.clone(),
            DecryptLimits::default(),
            1 << 20,
        ));
        let mut d = TlsDecryptor::new(ctx.clone());
        let mut out = Out::default();
        let half = t.chunks.len() / 2;
        for (c2s, b) in &t.chunks[..half] {
            d.feed(dir(*c2s), b, 0, &mut |e| out.on(e));
        }
        assert!(out.client.is_empty() && out.server.is_empty());
        table.load_bytes(keys.as_bytes(), "late");
        d.poll(5, &mut |e| out.on(e));
        for (c2s, b) in &t.chunks[half..] {
            d.feed(dir(*c2s), b, 10, &mut |e| out.on(e));
        }
        assert_eq!(out.done, None);
        assert_eq!(out.client, t.client_plain);
        assert_eq!(out.server, t.server_plain);
        assert_eq!(ctx.budget.used(), 0);
        assert!(!d.waiting_for_keys());
    }
}

#[test]
fn hold_bounds_end_the_flow() {
    let (t, _) = session(&Options {
        body: 20_000,
        exchanges: 4,
        ..Options::default()
    });
    // A global budget smaller than what the flow would hold.
    let ctx = Arc::new(DecryptContext::new(
        Arc::new(KeyTable::new(10)),
        DecryptLimits::default(),
        4096,
    ));
    let out = decrypt_with(&ctx, &t.chunks);
    assert_eq!(out.done, Some(DoneReason::HoldLimit));
    assert_eq!(ctx.budget.used(), 0);
    assert!(ctx.counters.snapshot().records_dropped > 0);
}

/// A caller that would drop a record's plaintext has it passed over
/// undecrypted; the records after it (KeyUpdate included) still open, each
/// byte of plaintext in its place.
#[test]
fn large_records_can_be_passed_over() {
    for tls13 in [true, false] {
        let o = Options {
            tls13,
            suites: if tls13 { vec![0x1301] } else { vec![0xc02b] },
            key_update: tls13,
            exchanges: 3,
            body: 100_000,
            ..Options::default()
        };
        let (t, keys) = session(&o);
        let ctx = context(&keys);
        let mut d = TlsDecryptor::new(ctx.clone());
        // Server bytes accounted for (read or passed over), and every read
        // piece must be the server's plaintext at that position.
        let (mut at, mut passed, mut offered) = (0usize, 0usize, 0usize);
        let mut client = Vec::new();
        for (c2s, b) in &t.chunks {
            d.feed(dir(*c2s), b, 0, &mut |e| match e {
                TlsEvent::Plaintext {
                    dir: Dir::ServerToClient,
                    data,
                } => {
                    assert_eq!(Some(data), t.server_plain.get(at..at + data.len()));
                    at += data.len();
                }
                TlsEvent::Plaintext { data, .. } => client.extend_from_slice(data),
                TlsEvent::Skippable { dir, len, skip } => {
                    offered += 1;
                    // Every other server record: reading resumes in between.
                    if dir == Dir::ServerToClient && offered % 2 == 1 {
                        skip.set(true);
                        at += len;
                        passed += len;
                    }
                }
                TlsEvent::Done(r) => panic!("{r:?}"),
                _ => {}
            });
        }
        let stats = ctx.counters.snapshot();
        assert_eq!(client, t.client_plain, "tls13 {tls13}");
        assert_eq!(at, t.server_plain.len(), "tls13 {tls13}");
        assert!(
            passed > 100_000,
            "tls13 {tls13}: {passed} bytes passed over"
        );
        assert!(stats.records_skipped > 0 && stats.records_decrypted > 0);
        assert_eq!(stats.auth_failures, 0);
    }
}

#[test]
fn skipped_flows_ignore_the_rest() {
    let (t, keys) = session(&Options::default());
    let ctx = context(&keys);
    let mut d = TlsDecryptor::new(ctx.clone());
    let mut out = Out::default();
    let (first, rest) = t.chunks.split_at(3);
    for (c2s, b) in first {
        d.feed(dir(*c2s), b, 0, &mut |e| out.on(e));
    }
    let before = ctx.counters.snapshot().records_decrypted;
    let (c, s) = (out.client.len(), out.server.len());
    d.skip();
    for (c2s, b) in rest {
        d.feed(dir(*c2s), b, 0, &mut |e| out.on(e));
    }
    assert_eq!((out.client.len(), out.server.len()), (c, s));
    assert_eq!(d.done(), Some(DoneReason::Skipped));
    assert_eq!(ctx.counters.snapshot().records_decrypted, before);
}

#[test]
fn not_tls_and_unsupported() {
    let ctx = context("");
    let out = decrypt_with(&ctx, &[(true, b"GET / HTTP/1.1\r\n\r\n".to_vec())]);
    assert_eq!(out.done, Some(DoneReason::NotTls));
    // A TLS 1.2 ServerHello choosing a CBC suite.
    let mut sh = vec![3, 3];
    sh.extend([7; 32]);
    sh.push(0);
    sh.extend([0xc0, 0x13, 0]);
    let mut msg = vec![2, 0, 0, sh.len() as u8];
    msg.extend(&sh);
    let mut rec = vec![22, 3, 3, 0, msg.len() as u8];
    rec.extend(&msg);
    let out = decrypt_with(&ctx, &[(false, rec)]);
    assert_eq!(
        out.done,
        Some(DoneReason::Unsupported {
            version: 0x0303,
            suite: 0xc013
        })
    );
    assert_eq!(ctx.counters.snapshot().unsupported, 1);
}

/// Sessions for the property tests, made once.
fn corpus() -> &'static [(Transcript, String)] {
    static C: std::sync::OnceLock<Vec<(Transcript, String)>> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        vec![
            session(&Options {
                key_update: true,
                ..Options::default()
            }),
            session(&Options {
                tls13: false,
                suites: vec![0xc02c],
                ..Options::default()
            }),
        ]
    })
}

/// `chunks` re-cut at the given points (per direction, in write order).
fn recut(t: &Transcript, cuts: &[usize]) -> Vec<(bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut k = 0;
    for (c2s, b) in &t.chunks {
        let mut rest = &b[..];
        while !rest.is_empty() {
            let n = cuts
                .get(k)
                .copied()
                .unwrap_or(usize::MAX)
                .max(1)
                .min(rest.len());
            k += 1;
            out.push((*c2s, rest[..n].to_vec()));
            rest = &rest[n..];
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any segmentation of the byte streams gives the same plaintext.
    #[test]
    fn any_segmentation_same_plaintext(which in 0usize..2, cuts in prop::collection::vec(1usize..700, 0..200)) {
        let (t, keys) = &corpus()[which];
        let ctx = context(keys);
        let out = decrypt_with(&ctx, &recut(t, &cuts));
        prop_assert_eq!(out.done, None);
        prop_assert_eq!(&out.client, &t.client_plain);
        prop_assert_eq!(&out.server, &t.server_plain);
        // With the keys at hand, a record cut across segments is ordinary
        // reassembly, not a record held for keys.
        let s = ctx.counters.snapshot();
        prop_assert_eq!((s.records_held, s.records_dropped), (0, 0));
    }

    /// Truncated, reordered, duplicated or dropped segments: no panic, the
    /// budget comes back, and whatever plaintext comes out is a prefix of
    /// the true one.
    #[test]
    fn damaged_streams_do_not_panic(
        which in 0usize..2,
        cuts in prop::collection::vec(1usize..900, 0..100),
        swaps in prop::collection::vec((0usize..400, 0usize..400), 0..6),
        drop_at in prop::option::of(0usize..400),
        truncate in prop::option::of(0usize..400),
    ) {
        let (t, keys) = &corpus()[which];
        let mut chunks = recut(t, &cuts);
        let n = chunks.len();
        for (a, b) in swaps {
            chunks.swap(a % n, b % n);
        }
        if let Some(i) = drop_at {
            chunks.remove(i % n);
        }
        if let Some(i) = truncate {
            chunks.truncate(i % n);
        }
        let ctx = context(keys);
        {
            let out = decrypt_with(&ctx, &chunks);
            prop_assert!(t.client_plain.starts_with(&out.client));
            prop_assert!(t.server_plain.starts_with(&out.server));
        }
        prop_assert_eq!(ctx.budget.used(), 0);
    }
}

/// The committed fuzz seeds hold sessions that decrypt, so the fuzzer
/// starts from the decrypting paths.
#[test]
fn fuzz_seeds_reach_decryption() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/tls_decrypt");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let seed = std::fs::read(e.unwrap().path()).unwrap();
        let klen = u16::from_be_bytes([seed[1], seed[2]]) as usize;
        let keys = std::str::from_utf8(&seed[3..3 + klen]).unwrap();
        let mut chunks = Vec::new();
        let mut rest = &seed[3 + klen..];
        while rest.len() >= 2 {
            let h = u16::from_be_bytes([rest[0], rest[1]]);
            let len = (h & 0x7fff) as usize;
            chunks.push((h & 0x8000 == 0, rest[2..2 + len].to_vec()));
            rest = &rest[2 + len..];
        }
        let out = decrypt_with(&context(keys), &chunks);
        assert!(out.done.is_none() && !out.client.is_empty() && !out.server.is_empty());
        n += 1;
    }
    assert_eq!(n, 3);
}

/// Write the seed inputs of the `tls_decrypt` fuzz target (real sessions
/// and their key logs, in the harness's input format) to
/// fuzz/seeds/tls_decrypt/. Run by hand when the format changes:
/// `cargo test --test tls_decrypt -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/tls_decrypt");
    std::fs::create_dir_all(&dir).unwrap();
    let small = Options {
        exchanges: 1,
        body: 300,
        ..Options::default()
    };
    for (name, o) in [
        (
            "tls13-key-update",
            Options {
                key_update: true,
                exchanges: 2,
                ..small.clone()
            },
        ),
        (
            "tls13-hrr-chacha",
            Options {
                suites: vec![0x1303],
                server_groups: Some(vec![rustls::NamedGroup::secp256r1]),
                ..small.clone()
            },
        ),
        (
            "tls12-gcm",
            Options {
                tls13: false,
                suites: vec![0xc02f, 0xc02b],
                ..small.clone()
            },
        ),
    ] {
        let (t, keys) = session(&o);
        let mut seed = vec![0u8];
        seed.extend((keys.len() as u16).to_be_bytes());
        seed.extend(keys.as_bytes());
        for (c2s, b) in &t.chunks {
            for piece in b.chunks(0x7fff) {
                let h = piece.len() as u16 | if *c2s { 0 } else { 0x8000 };
                seed.extend(h.to_be_bytes());
                seed.extend(piece);
            }
        }
        std::fs::write(dir.join(format!("{name}.bin")), seed).unwrap();
    }
}
