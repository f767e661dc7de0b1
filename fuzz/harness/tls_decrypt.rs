//! The TLS decryption state machine of one connection. Input: byte 0 =
//! flags (bit 0: skip the connection half way; bit 1: poll past the key
//! deadline at the end), a u16 big-endian key-log length and that much
//! key-log text (loaded into the key table first), then chunks of
//! [u16 big-endian: top bit = server to client, 15 bits = length][bytes].
//! Seeds carry real rustls sessions and their key logs, so the decrypting
//! paths are reached.
use shadowmcp::tls_decrypt::{
    DecryptContext, DecryptLimits, Dir, KeyTable, TlsDecryptor, TlsEvent,
};
use std::sync::Arc;

const BUDGET: usize = 128 * 1024;

pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let klen = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (keys, mut rest) = rest.split_at(klen);
    let table = Arc::new(KeyTable::new(64));
    table.load_bytes(keys, "fuzz");
    let limits = DecryptLimits {
        max_held_per_flow: 64 * 1024,
        ..DecryptLimits::default()
    };
    let ctx = Arc::new(DecryptContext::new(table, limits, BUDGET));
    let input = data.len() as u64;
    {
        let mut d = TlsDecryptor::new(ctx.clone());
        let mut plain = 0u64;
        let mut on = |e: TlsEvent<'_>| {
            if let TlsEvent::Plaintext { data, .. } = e {
                assert!(!data.is_empty());
                plain += data.len() as u64;
            }
        };
        let mut now = 0;
        let mut chunks = 0;
        while let Some((h, r)) = rest.split_first_chunk::<2>() {
            let h = u16::from_be_bytes(*h);
            let n = usize::from(h & 0x7fff).min(r.len());
            let (bytes, r) = r.split_at(n);
            rest = r;
            let dir = if h & 0x8000 == 0 {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            now += 1000;
            chunks += 1;
            if flags & 1 != 0 && chunks == 8 {
                d.skip();
            }
            d.feed(dir, bytes, now, &mut on);
            assert!(ctx.budget.used() <= BUDGET);
        }
        if flags & 2 != 0 {
            d.poll(now + limits.hold_timeout + 1, &mut on);
            assert!(!d.waiting_for_keys());
        }
        // Plaintext is never longer than the ciphertext it came from.
        assert!(plain <= input);
        assert_eq!(ctx.counters.snapshot().plaintext_bytes, plain);
    }
    // Every held byte is given back when the connection goes.
    assert_eq!(ctx.budget.used(), 0);
}
