//! JA4 TLS client fingerprint (FoxIO, BSD-3-Clause part of JA4+ only).
//!
//! Spec: FoxIO-LLC/ja4 `technical_details/JA4.md`; summary with the verified
//! examples in `reference/fingerprints.md` (a). Only JA4 itself is implemented:
//! the other JA4+ methods are under the FoxIO License 1.1.
//!
//! `JA4 = a_b_c`:
//! * a: transport, version, SNI d/i, cipher count, extension count, ALPN chars;
//! * b: sha256 of the sorted cipher list, first 12 hex;
//! * c: sha256 of the sorted extension list (without SNI/ALPN) `_` signature
//!   algorithms in wire order, first 12 hex.
//!
//! GREASE (RFC 8701) is dropped everywhere. The inputs are the capped lists of
//! [`ClientHello`] (512 ciphers, 128 extensions, 256 signature algorithms), so a
//! hostile hello beyond those caps hashes differently from the FoxIO tool.

use super::tls::{ClientHello, EXT_ALPN, EXT_SERVER_NAME, alpn_bytes, is_grease};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ja4Transport {
    Tcp,
    Quic,
}

/// Hash of an empty list (JA4.md: "if there are no ciphers … 000000000000").
const EMPTY_HASH: &str = "000000000000";

/// `a_b_c`, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
pub fn ja4(hello: &ClientHello, transport: Ja4Transport) -> String {
    let (b, c) = raw_lists(hello);
    format!("{}_{}_{}", part_a(hello, transport), hash12(&b), hash12(&c))
}

/// `ja4_r`: the same fingerprint with the sorted lists in clear instead of
/// hashed (for debugging and for matching against published raw values).
pub fn ja4_r(hello: &ClientHello, transport: Ja4Transport) -> String {
    let (b, c) = raw_lists(hello);
    format!("{}_{}_{}", part_a(hello, transport), b, c)
}

/// The 10-character readable prefix.
pub fn part_a(hello: &ClientHello, transport: Ja4Transport) -> String {
    let proto = match transport {
        Ja4Transport::Tcp => 't',
        Ja4Transport::Quic => 'q',
    };
    // supported_versions (RFC 8446 §4.2.1) wins over legacy_version.
    let version = hello
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(hello.legacy_version);
    // Presence of the extension, not validity of the name, decides d/i.
    let sni = if hello.extensions.contains(&EXT_SERVER_NAME) {
        'd'
    } else {
        'i'
    };
    let ciphers = count(&hello.cipher_suites);
    let exts = count(&hello.extensions);
    let (a0, a1) = alpn_chars(hello.alpn.first().map(String::as_str));
    format!(
        "{proto}{}{sni}{ciphers:02}{exts:02}{a0}{a1}",
        version_code(version)
    )
}

fn count(list: &[u16]) -> usize {
    list.iter().filter(|v| !is_grease(**v)).count().min(99)
}

fn version_code(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last character of the first ALPN value; if either is not ASCII
/// alphanumeric, the first and last hex digit of the value instead.
fn alpn_chars(first: Option<&str>) -> (char, char) {
    let raw = first.map(alpn_bytes).unwrap_or_default();
    let (Some(&f), Some(&l)) = (raw.first(), raw.last()) else {
        return ('0', '0');
    };
    if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
        (char::from(f), char::from(l))
    } else {
        (hex_digit(f >> 4), hex_digit(l & 0x0f))
    }
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n & 0x0f), 16).unwrap_or('0')
}

/// Parts b and c before hashing (each empty when its list is empty).
fn raw_lists(hello: &ClientHello) -> (String, String) {
    let b = sorted_hex(hello.cipher_suites.iter().copied());
    let mut c = sorted_hex(
        hello
            .extensions
            .iter()
            .copied()
            .filter(|&e| e != EXT_SERVER_NAME && e != EXT_ALPN),
    );
    let sigs: Vec<u16> = hello
        .signature_algorithms
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .collect();
    // No extensions left means no signature_algorithms extension either; keep
    // the empty-list rule simple and never emit a lone "_sigs".
    if !c.is_empty() && !sigs.is_empty() {
        c.push('_');
        push_hex_list(&mut c, &sigs);
    }
    (b, c)
}

fn sorted_hex(values: impl Iterator<Item = u16>) -> String {
    let mut v: Vec<u16> = values.filter(|x| !is_grease(*x)).collect();
    v.sort_unstable();
    let mut s = String::with_capacity(v.len() * 5);
    push_hex_list(&mut s, &v);
    s
}

fn push_hex_list(s: &mut String, v: &[u16]) {
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{x:04x}");
    }
}

/// SHA-256, first 12 lowercase hex characters; `000000000000` for "".
fn hash12(s: &str) -> String {
    if s.is_empty() {
        return EMPTY_HASH.to_string();
    }
    let digest = Sha256::digest(s.as_bytes());
    let mut out = String::with_capacity(12);
    for b in digest.iter().take(6) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::tls::{HelloProgress, parse_client_hello_records};

    /// The JA4.md worked example (15 ciphers in Chrome's wire order, 16
    /// extensions, 8 signature algorithms, ALPN h2, SNI present).
    fn spec_example() -> ClientHello {
        ClientHello {
            legacy_version: 0x0303,
            cipher_suites: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
                0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
                0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
            ],
            sni: Some("example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            supported_versions: vec![0x0304, 0x0303],
            signature_algorithms: vec![
                0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
            ],
            ech: None,
        }
    }

    #[test]
    fn spec_part_hashes() {
        assert_eq!(
            hash12("002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"),
            "8daaf6152771"
        );
        let h = spec_example();
        let (b, c) = raw_lists(&h);
        assert_eq!(hash12(&b), "8daaf6152771");
        assert_eq!(
            c,
            "0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601"
        );
        assert_eq!(hash12(&c), "e5627efa2ab1");
        let no_sigs = ClientHello {
            signature_algorithms: vec![],
            ..h
        };
        assert_eq!(hash12(&raw_lists(&no_sigs).1), "6d807ffa2a79");
    }

    #[test]
    fn spec_example_full() {
        let h = spec_example();
        assert_eq!(
            ja4(&h, Ja4Transport::Tcp),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        assert_eq!(
            ja4(&h, Ja4Transport::Quic),
            "q13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        assert!(ja4_r(&h, Ja4Transport::Tcp).starts_with("t13d1516h2_002f,0035,"));
    }

    #[test]
    fn grease_everywhere_is_ignored() {
        let plain = spec_example();
        let mut g = plain.clone();
        g.cipher_suites.insert(0, 0x0a0a);
        g.extensions.insert(0, 0x2a2a);
        g.extensions.push(0xdada);
        g.supported_versions.insert(0, 0xfafa);
        g.signature_algorithms.insert(3, 0x1a1a);
        assert_eq!(ja4(&g, Ja4Transport::Tcp), ja4(&plain, Ja4Transport::Tcp));
    }

    #[test]
    fn part_a_rules() {
        let base = spec_example();
        // No supported_versions: legacy_version decides.
        let h = ClientHello {
            supported_versions: vec![],
            legacy_version: 0x0301,
            ..base.clone()
        };
        assert_eq!(&part_a(&h, Ja4Transport::Tcp)[1..3], "10");
        let h = ClientHello {
            supported_versions: vec![],
            legacy_version: 0x0300,
            ..base.clone()
        };
        assert_eq!(&part_a(&h, Ja4Transport::Tcp)[1..3], "s3");
        let h = ClientHello {
            supported_versions: vec![0x7f17],
            ..base.clone()
        };
        assert_eq!(&part_a(&h, Ja4Transport::Tcp)[1..3], "00");
        // Only GREASE in supported_versions: fall back to legacy.
        let h = ClientHello {
            supported_versions: vec![0x3a3a],
            ..base.clone()
        };
        assert_eq!(&part_a(&h, Ja4Transport::Tcp)[1..3], "12");
        // No SNI extension; an SNI extension whose name was rejected still counts.
        let mut h = base.clone();
        h.extensions.retain(|&e| e != 0);
        h.sni = None;
        assert_eq!(part_a(&h, Ja4Transport::Tcp), "t13i1515h2");
        let h = ClientHello {
            sni: None,
            ..base.clone()
        };
        assert_eq!(part_a(&h, Ja4Transport::Tcp), "t13d1516h2");
        // Counts cap at 99.
        let h = ClientHello {
            cipher_suites: (1..=300).collect(),
            extensions: (0x100..0x100 + 128).collect(),
            ..base.clone()
        };
        assert_eq!(&part_a(&h, Ja4Transport::Tcp)[4..8], "9999");
        // ALPN variants.
        let alpn = |v: &[&str]| {
            let h = ClientHello {
                alpn: v.iter().map(|s| s.to_string()).collect(),
                ..base.clone()
            };
            part_a(&h, Ja4Transport::Quic)[8..].to_string()
        };
        assert_eq!(alpn(&[]), "00");
        assert_eq!(alpn(&["http/1.1", "h2"]), "h1");
        assert_eq!(alpn(&["h3"]), "h3");
        assert_eq!(alpn(&["x"]), "xx");
        // Non-alnum edge: 0xAB 0xCD -> first and last hex digit "ad" (JA4.md).
        assert_eq!(alpn(&["0xabcd"]), "ad");
        assert_eq!(alpn(&["h2-"]), "6d");
        assert_eq!(alpn(&["0x61016200"]), "60");
    }

    #[test]
    fn empty_lists_hash_to_zeros() {
        let h = ClientHello {
            legacy_version: 0x0303,
            ..ClientHello::default()
        };
        assert_eq!(
            ja4(&h, Ja4Transport::Tcp),
            "t12i000000_000000000000_000000000000"
        );
        // Only SNI and ALPN: c list empty after removal.
        let h = ClientHello {
            extensions: vec![0x0000, 0x0010],
            cipher_suites: vec![0x1301],
            ..ClientHello::default()
        };
        assert!(ja4(&h, Ja4Transport::Tcp).ends_with("_000000000000"));
    }

    /// Fixtures captured from local clients; expected JA4 computed independently
    /// from tshark's dissection of the same bytes.
    #[test]
    fn captured_clients() {
        for (bytes, want) in [
            (
                &include_bytes!("testdata/openssl-s_client-h2.bin")[..],
                "t13d3111h2_e8f1e7e78f70_1f22a2ca17c4",
            ),
            (
                &include_bytes!("testdata/openssl-s_client-tls12.bin")[..],
                "t12d280700_d943125447b4_e7e480e5a997",
            ),
            (
                &include_bytes!("testdata/python-ssl.bin")[..],
                "t13d1812h1_85036bcba153_d41ae481755e",
            ),
        ] {
            let HelloProgress::Complete(h) = parse_client_hello_records(bytes) else {
                panic!("fixture did not parse");
            };
            assert_eq!(ja4(&h, Ja4Transport::Tcp), want);
        }
    }

    fn testdata_dir() -> Option<std::path::PathBuf> {
        let dir = std::env::var_os("SHADOWMCP_TESTDATA")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/work/shared/testdata".into());
        dir.is_dir().then_some(dir)
    }

    /// Chrome's TLS-over-TCP hello in FoxIO's pcap (frame 4, from port 57098);
    /// FoxIO's snapshot gives the JA4 below.
    #[test]
    fn chrome_cloudflare_tcp_pcap() {
        let Some(dir) = testdata_dir() else {
            eprintln!("skipping: test data folder absent (set SHADOWMCP_TESTDATA)");
            return;
        };
        let path = dir.join("quic-initial/chrome-cloudflare-quic-with-secrets.pcapng");
        if !path.is_file() {
            eprintln!("skipping: {} absent", path.display());
            return;
        }
        let mut cap = pcap::Capture::from_file(&path).expect("open pcapng");
        let mut stream = Vec::new();
        while let Ok(pkt) = cap.next_packet() {
            let Ok(sliced) = etherparse::SlicedPacket::from_ethernet(pkt.data) else {
                continue;
            };
            if let Some(etherparse::TransportSlice::Tcp(tcp)) = sliced.transport
                && tcp.source_port() == 57098
                && !tcp.payload().is_empty()
            {
                stream.extend_from_slice(tcp.payload());
                if let HelloProgress::Complete(h) = parse_client_hello_records(&stream) {
                    assert_eq!(h.sni.as_deref(), Some("cloudflare-quic.com"));
                    assert_eq!(
                        ja4(&h, Ja4Transport::Tcp),
                        "t13d1516h2_8daaf6152771_e5627efa2ab1"
                    );
                    return;
                }
            }
        }
        panic!("no complete ClientHello from port 57098");
    }
}
