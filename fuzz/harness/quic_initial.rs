//! QUIC client Initials (RFC 9000 §17.2.2, RFC 9001 §5).
//!
//! Random bytes almost never pass AEAD authentication, so two modes:
//! - raw (first byte even): the rest is split into datagrams (u16 length
//!   prefix) fed as is: long-header parsing, coalescing, key derivation and
//!   authentication failures;
//! - sealed (first byte odd): each chunk is the *plaintext frames* of one
//!   Initial, sealed with the real client Initial keys of a fixed DCID, so the
//!   fuzzer reaches frame parsing and CRYPTO reassembly behind decryption.
use rustls::Side;
use rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
use rustls::quic::{Keys, Version};
use shadowmcp::proto::quic::{self, InitialTracker, QuicProgress};
use std::sync::OnceLock;

const DCID: &[u8] = b"\x83\x94\xc8\xf0\x3e\x51\x57\x08";

fn client_keys(version: Version) -> Keys {
    let suite = TLS13_AES_128_GCM_SHA256
        .tls13()
        .and_then(|s| s.quic_suite())
        .expect("AES-128-GCM QUIC suite");
    suite.keys(DCID, Side::Client, version)
}

fn varint(v: u64, out: &mut Vec<u8>) {
    // RFC 9000 §16; lengths here are < 2^14.
    if v < 64 {
        out.push(v as u8);
    } else {
        out.extend(((v as u16) | 0x4000).to_be_bytes());
    }
}

/// One protected Initial carrying `frames` with packet number `pn`.
fn seal(keys: &Keys, version: u32, frames: &[u8], pn: u8) -> Option<Vec<u8>> {
    let mut payload = frames.to_vec();
    // Header-protection sample: 4 bytes after the PN start (RFC 9001 §5.4.2).
    if payload.len() < 3 {
        payload.resize(3, 0);
    }
    let type_bits = if version == quic::VERSION_2 { 1u8 } else { 0 };
    let mut header = vec![0xc0 | (type_bits << 4)];
    header.extend(version.to_be_bytes());
    header.push(DCID.len() as u8);
    header.extend(DCID);
    header.push(0); // empty SCID
    header.push(0); // empty token
    varint((1 + payload.len() + 16) as u64, &mut header);
    let pn_offset = header.len();
    header.push(pn);
    let tag = keys
        .local
        .packet
        .encrypt_in_place(u64::from(pn), &header, &mut payload)
        .ok()?;
    payload.extend(tag.as_ref());
    let sample = payload.get(3..19)?.to_vec();
    let (first, rest) = header.split_at_mut(1);
    keys.local
        .header
        .encrypt_in_place(&sample, &mut first[0], &mut rest[pn_offset - 1..])
        .ok()?;
    header.extend(payload);
    Some(header)
}

fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = match rest {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => rest.len(),
        };
        let body = rest.get(2..).unwrap_or_default();
        let (chunk, tail) = body.split_at(len.min(body.len()));
        rest = tail;
        Some(chunk)
    })
}

fn feed(tracker: &mut InitialTracker, datagram: &[u8]) -> bool {
    let _ = quic::is_client_initial(datagram);
    match tracker.on_client_datagram(datagram) {
        QuicProgress::Hello { message, .. } => {
            let _ = shadowmcp::proto::tls::parse_client_hello_message(&message);
            true
        }
        QuicProgress::Failed(_) => true,
        QuicProgress::NotInitial | QuicProgress::NeedMore => false,
    }
}

pub fn run(data: &[u8]) {
    static KEYS: OnceLock<(Keys, Keys)> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut tracker = InitialTracker::new();
    if mode & 1 == 0 {
        for d in split(rest).take(32) {
            if feed(&mut tracker, d) {
                break;
            }
        }
        return;
    }
    let (v1, v2) = KEYS.get_or_init(|| (client_keys(Version::V1), client_keys(Version::V2)));
    let (keys, version) = if mode & 2 == 0 {
        (v1, quic::VERSION_1)
    } else {
        (v2, quic::VERSION_2)
    };
    for (pn, frames) in split(rest).take(32).enumerate() {
        let Some(dgram) = seal(keys, version, frames, pn as u8) else {
            return;
        };
        if feed(&mut tracker, &dgram) {
            break;
        }
    }
}
