//! The tls13-bulk scenario: TLS 1.3 connections sealed for real under
//! TLS_AES_128_GCM_SHA256, with their secrets in an NSS key log.
//!
//! Each connection draws its four traffic secrets at random (the key
//! exchange is not carried out: a passive decryptor and Wireshark take the
//! secrets from the key log and never see it), derives record keys with the
//! TLS 1.3 key schedule (HKDF-Expand-Label, RFC 8446 §7.1 and §7.3) and seals
//! with `ring`'s AES-128-GCM (nonce = IV XOR sequence number, the record
//! header as additional data, §5.2-5.3). Flights: ClientHello;
//! ServerHello + ChangeCipherSpec; EncryptedExtensions (ALPN http/1.1),
//! Certificate, CertificateVerify, Finished under the server handshake
//! secret; ChangeCipherSpec and Finished under the client handshake
//! secret; then HTTP/1.1 under the application secrets, the server's first
//! flight starting with a NewSessionTicket; the client ends with a
//! close_notify alert. Most connections download one to three files
//! (`--bulk-min-kb`..`--bulk-max-kb`, log-uniform, 16 KiB records); a share
//! (`--mcp-share`) are MCP Streamable HTTP sessions. No server name says
//! `mcp`: only the plaintext can prove MCP.

use crate::Cli;
use crate::egress::{
    Budget, Flow, Msg, NewFlow, POOL_LEN, Part, Parts, Ports, Sched, drive, ends, tcp_nominal,
};
use crate::http::{self, h1_request, h1_response};
use crate::payloads::{client_hello_with_random, ext, put_u16, server_hello};
use crate::pcap::PcapWriter;
use crate::rng::Rng;
use ring::{aead, hkdf};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// Servers the downloads come from.
const BULK_NAMES: &[&str] = &[
    "downloads.example.net",
    "cdn.example.com",
    "artifacts.example.org",
    "media.example.io",
    "updates.example.com",
    "static.example.net",
];

/// Servers of the MCP sessions: names on no list and without `mcp`.
const MCP_TLS_NAMES: &[&str] = &[
    "assist.example.com",
    "copilot-gw.example.net",
    "kb.example.org",
];

/// A self-signed P-256 certificate for the Certificate message.
const CERT_DER: &[u8] = include_bytes!("cert.der");

/// Largest plaintext of a record (RFC 8446 §5.1).
const MAX_PLAIN: usize = 1 << 14;
/// TLS 1.3 inner content types (RFC 8446 §5.1).
const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;

/// HKDF-Expand-Label(secret, label, "", out.len()) with SHA-256.
fn expand_label(secret: &[u8], label: &[u8], out: &mut [u8]) {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    // Lengths here are fixed and far below HKDF's limit of 255 blocks.
    if let Ok(okm) = prk.expand(&info, Len(out.len())) {
        let _ = okm.fill(out);
    }
}

/// Keys sealing one direction under one traffic secret.
pub struct DirKeys {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl DirKeys {
    fn new(secret: &[u8; 32]) -> io::Result<Self> {
        let mut key = [0u8; 16];
        let mut iv = [0u8; 12];
        expand_label(secret, b"key", &mut key);
        expand_label(secret, b"iv", &mut iv);
        let unbound = aead::UnboundKey::new(&aead::AES_128_GCM, &key)
            .map_err(|_| io::Error::other("AES-128-GCM key"))?;
        Ok(DirKeys {
            key: aead::LessSafeKey::new(unbound),
            iv,
            seq: 0,
        })
    }

    /// One TLSCiphertext record of `plain` with inner type `inner` into `rec`.
    fn seal(&mut self, inner: u8, plain: &[u8], rec: &mut Vec<u8>) {
        let len = plain.len() + 1 + 16;
        let header = [0x17, 0x03, 0x03, (len >> 8) as u8, len as u8];
        rec.clear();
        rec.extend_from_slice(&header);
        rec.extend_from_slice(plain);
        rec.push(inner);
        let mut nonce = self.iv;
        for (n, s) in nonce.iter_mut().skip(4).zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        let tag = self.key.seal_in_place_separate_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(header),
            rec.get_mut(5..).unwrap_or_default(),
        );
        if let Ok(tag) = tag {
            rec.extend_from_slice(tag.as_ref());
        }
    }
}

#[derive(Clone, Copy)]
pub enum Epoch {
    Handshake,
    Application,
}

/// Record keys of a connection: [handshake, application] × [client, server].
pub struct ConnKeys {
    keys: [[DirKeys; 2]; 2],
}

impl ConnKeys {
    /// From the secrets in key-log order: client handshake, server
    /// handshake, client application, server application.
    pub fn new(s: &[[u8; 32]; 4]) -> io::Result<Self> {
        Ok(ConnKeys {
            keys: [
                [DirKeys::new(&s[0])?, DirKeys::new(&s[1])?],
                [DirKeys::new(&s[2])?, DirKeys::new(&s[3])?],
            ],
        })
    }

    fn dir(&mut self, epoch: Epoch, from_client: bool) -> &mut DirKeys {
        let e = &mut self.keys[epoch as usize];
        &mut e[usize::from(!from_client)]
    }
}

/// Plaintext of one direction sealed into records as the segments need them.
pub struct Sealed {
    from_client: bool,
    epoch: Epoch,
    inner: u8,
    plain: Parts,
    scratch: Vec<u8>,
    rec: Vec<u8>,
    rec_pos: usize,
}

impl Sealed {
    pub fn new(from_client: bool, epoch: Epoch, inner: u8, parts: Vec<Part>) -> Self {
        Sealed {
            from_client,
            epoch,
            inner,
            plain: Parts::new(parts),
            scratch: Vec::new(),
            rec: Vec::new(),
            rec_pos: 0,
        }
    }

    pub fn is_from_client(&self) -> bool {
        self.from_client
    }

    pub fn is_done(&self) -> bool {
        self.plain.is_empty() && self.rec_pos >= self.rec.len()
    }

    /// Finish only the record under way (a capture cut mid-transfer).
    pub fn cut(&mut self) {
        self.plain = Parts::default();
    }

    pub fn fill(&mut self, out: &mut Vec<u8>, max: usize, pool: &[u8], keys: &mut ConnKeys) {
        while out.len() < max {
            if self.rec_pos >= self.rec.len() {
                if self.plain.is_empty() {
                    return;
                }
                self.scratch.clear();
                self.plain.fill(&mut self.scratch, MAX_PLAIN, pool);
                keys.dir(self.epoch, self.from_client).seal(
                    self.inner,
                    &self.scratch,
                    &mut self.rec,
                );
                self.rec_pos = 0;
            }
            let take = (max - out.len()).min(self.rec.len() - self.rec_pos);
            out.extend_from_slice(&self.rec[self.rec_pos..self.rec_pos + take]);
            self.rec_pos += take;
        }
    }
}

/// A handshake message: type, 24-bit length, body (RFC 8446 §4).
fn hs_msg(out: &mut Vec<u8>, ty: u8, body: &[u8]) {
    out.push(ty);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(body);
}

fn u24(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u32).to_be_bytes()[1..]);
}

/// EncryptedExtensions (ALPN http/1.1), Certificate, CertificateVerify, Finished.
fn server_handshake(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    let mut exts = Vec::new();
    ext(&mut exts, 0x0010, b"\x00\x09\x08http/1.1");
    let mut ee = Vec::new();
    put_u16(&mut ee, exts.len());
    ee.extend_from_slice(&exts);
    hs_msg(&mut out, 8, &ee);
    let mut cert = vec![0]; // empty certificate_request_context
    u24(&mut cert, CERT_DER.len() + 5);
    u24(&mut cert, CERT_DER.len());
    cert.extend_from_slice(CERT_DER);
    put_u16(&mut cert, 0);
    hs_msg(&mut out, 11, &cert);
    // ecdsa_secp256r1_sha256 with a DER ECDSA-Sig-Value of two 32-byte integers.
    let mut sig = vec![0x30, 68, 0x02, 32];
    let mut r = rng.bytes::<32>();
    r[0] &= 0x7f;
    sig.extend_from_slice(&r);
    sig.extend_from_slice(&[0x02, 32]);
    let mut s = rng.bytes::<32>();
    s[0] &= 0x7f;
    sig.extend_from_slice(&s);
    let mut cv = vec![0x04, 0x03];
    put_u16(&mut cv, sig.len());
    cv.extend_from_slice(&sig);
    hs_msg(&mut out, 15, &cv);
    hs_msg(&mut out, 20, &rng.bytes::<32>());
    out
}

/// NewSessionTicket (RFC 8446 §4.6.1).
fn new_session_ticket(rng: &mut Rng) -> Vec<u8> {
    let mut b = Vec::with_capacity(220);
    b.extend_from_slice(&7200u32.to_be_bytes());
    b.extend_from_slice(&rng.bytes::<4>());
    b.push(8);
    b.extend_from_slice(&rng.bytes::<8>());
    put_u16(&mut b, 192);
    for _ in 0..6 {
        b.extend_from_slice(&rng.bytes::<32>());
    }
    put_u16(&mut b, 0);
    let mut out = Vec::new();
    hs_msg(&mut out, 4, &b);
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Builds tls13-bulk connections and writes their key log.
struct TlsBulk<K: Write> {
    ports: Ports,
    keylog: K,
    mcp_share: f64,
    bulk_min: u64,
    bulk_max: u64,
    mcp_sessions: u64,
    /// Application data plaintext sealed (HTTP heads and bodies).
    app_bytes: u64,
}

impl<K: Write> TlsBulk<K> {
    fn new_flow(&mut self, rng: &mut Rng, n: u64) -> io::Result<NewFlow> {
        let mcp = rng.unit() < self.mcp_share;
        let name = rng.pick(if mcp { MCP_TLS_NAMES } else { BULK_NAMES });
        let v6 = rng.below(10) == 0;
        let ends = ends(rng, &mut self.ports, n, v6, name, 443);
        let (hello, random) = client_hello_with_random(name, rng);
        let secrets = [
            rng.bytes::<32>(),
            rng.bytes::<32>(),
            rng.bytes::<32>(),
            rng.bytes::<32>(),
        ];
        let cr = hex(&random);
        for (label, s) in [
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
            "SERVER_HANDSHAKE_TRAFFIC_SECRET",
            "CLIENT_TRAFFIC_SECRET_0",
            "SERVER_TRAFFIC_SECRET_0",
        ]
        .iter()
        .zip(&secrets)
        {
            writeln!(self.keylog, "{label} {cr} {}", hex(s))?;
        }
        let keys = ConnKeys::new(&secrets)?;
        let mut msgs = VecDeque::new();
        let mut plain = 0u64;
        msgs.push_back(Msg::bytes(true, hello));
        msgs.push_back(Msg::bytes(false, server_hello(rng)));
        let hs = server_handshake(rng);
        plain += hs.len() as u64 + 600;
        msgs.push_back(Msg::sealed(Sealed::new(
            false,
            Epoch::Handshake,
            HANDSHAKE,
            vec![Part::Bytes(hs)],
        )));
        msgs.push_back(Msg::bytes(true, vec![0x14, 0x03, 0x03, 0x00, 0x01, 0x01]));
        let mut fin = Vec::new();
        hs_msg(&mut fin, 20, &rng.bytes::<32>());
        msgs.push_back(Msg::sealed(Sealed::new(
            true,
            Epoch::Handshake,
            HANDSHAKE,
            vec![Part::Bytes(fin)],
        )));
        let exchanges = if mcp {
            self.mcp_sessions += 1;
            http::mcp_exchanges(name, rng)
        } else {
            http::bulk_exchanges(name, rng, POOL_LEN, self.bulk_min, self.bulk_max)
        };
        let app = |from_client, inner, parts| {
            Msg::sealed(Sealed::new(from_client, Epoch::Application, inner, parts))
        };
        let size = |parts: &[Part]| parts.iter().map(|p| p.len() as u64).sum::<u64>();
        for (i, ex) in exchanges.iter().enumerate() {
            let req = h1_request(&ex.req);
            self.app_bytes += size(&req);
            msgs.push_back(app(true, APPLICATION_DATA, req));
            if i == 0 {
                let t = new_session_ticket(rng);
                plain += t.len() as u64;
                msgs.push_back(app(false, HANDSHAKE, vec![Part::Bytes(t)]));
            }
            let resp = h1_response(&ex.resp);
            self.app_bytes += size(&resp);
            msgs.push_back(app(false, APPLICATION_DATA, resp));
        }
        plain += http::nominal_bytes(&[exchanges]);
        // close_notify (RFC 8446 §6.1).
        msgs.push_back(app(true, ALERT, vec![Part::Bytes(vec![1, 0])]));
        let wire = plain + plain.div_ceil(MAX_PLAIN as u64) * 22;
        let len = msgs.len();
        Ok(NewFlow {
            flow: Flow::tcp(rng, ends, msgs, Some(Box::new(keys))),
            nominal: tcp_nominal(wire, len),
        })
    }
}

/// The key log's path: `--keylog`, else the output with extension `.keys`.
pub fn keylog_path(cli: &Cli) -> std::path::PathBuf {
    cli.keylog
        .clone()
        .unwrap_or_else(|| cli.output.with_extension("keys"))
}

/// What [`tls13_bulk`] wrote.
pub struct TlsCounts {
    pub connections: u64,
    pub mcp_sessions: u64,
    /// Application data plaintext sealed (HTTP heads and bodies).
    pub app_bytes: u64,
}

/// Write the scenario to `pw` and its key log to `keylog`.
pub fn tls13_bulk<W: Write, K: Write>(
    cli: &Cli,
    pw: &mut PcapWriter<W>,
    keylog: K,
) -> io::Result<TlsCounts> {
    let mut s = Sched::new(pw, cli.seed, cli.rate_mbps);
    let mut conns = TlsBulk {
        ports: Ports::ByFlow,
        keylog,
        mcp_share: cli.mcp_share,
        bulk_min: cli.bulk_min_kb.max(1) << 10,
        bulk_max: cli.bulk_max_kb.max(cli.bulk_min_kb).max(1) << 10,
        mcp_sessions: 0,
        app_bytes: 0,
    };
    let budget = Budget::Nominal {
        bytes: cli.size_mb.saturating_mul(1 << 20),
        seed: cli.seed,
    };
    let k = cli.concurrency.unwrap_or(64);
    let flows = drive(&mut s, k, budget, |rng, n| conns.new_flow(rng, n))?;
    conns.keylog.flush()?;
    Ok(TlsCounts {
        connections: flows,
        mcp_sessions: conns.mcp_sessions,
        app_bytes: conns.app_bytes,
    })
}

/// Create the key log file (mode 0600: it holds secrets).
pub fn create_keylog(path: &Path) -> io::Result<BufWriter<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    Ok(BufWriter::new(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pcap::records;
    use clap::Parser;
    use shadowmcp::tls_decrypt::schedule::{CipherSuite, RecordKeys, Secret, TlsVersion};

    /// Records sealed here open with the library's TLS 1.3 key schedule and
    /// AEAD (two independent derivations from the same secret).
    #[test]
    fn sealed_records_open_with_the_library() {
        let secret = [0x5au8; 32];
        let mut mine = DirKeys::new(&secret).unwrap();
        let suite = CipherSuite::find(0x1301, TlsVersion::Tls13).unwrap();
        let mut theirs = RecordKeys::tls13(&suite, &Secret::new(&secret).unwrap()).unwrap();
        let mut rec = Vec::new();
        for (i, len) in [0usize, 1, 100, MAX_PLAIN].into_iter().enumerate() {
            let plain: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
            mine.seal(APPLICATION_DATA, &plain, &mut rec);
            let header: [u8; 5] = rec[..5].try_into().unwrap();
            assert_eq!(usize::from(u16::from_be_bytes([rec[3], rec[4]])), len + 17);
            let mut body = rec[5..].to_vec();
            let range = theirs.open(&header, &mut body).unwrap();
            assert_eq!(
                &body[range.clone()],
                &[plain.as_slice(), &[APPLICATION_DATA]].concat()[..]
            );
        }
        // A damaged record does not open.
        mine.seal(APPLICATION_DATA, b"x", &mut rec);
        let header: [u8; 5] = rec[..5].try_into().unwrap();
        let mut body = rec[5..].to_vec();
        body[0] ^= 1;
        assert!(theirs.open(&header, &mut body).is_err());
    }

    #[test]
    fn scenario_is_deterministic_with_four_secrets_per_connection() {
        let cli = crate::Cli::parse_from([
            "gen",
            "--scenario",
            "tls13-bulk",
            "--size-mb",
            "3",
            "--bulk-max-kb",
            "512",
            "--mcp-share",
            "0.5",
            "-o",
            "x",
        ]);
        let run = || {
            let mut pw = PcapWriter::new(Vec::new()).unwrap();
            let mut keys = Vec::new();
            let n = tls13_bulk(&cli, &mut pw, &mut keys).unwrap();
            (pw.w, keys, n.connections, n.mcp_sessions)
        };
        let (pcap, keys, flows, mcp) = run();
        assert_eq!((pcap.clone(), keys.clone()), {
            let again = run();
            (again.0, again.1)
        });
        assert!(mcp > 0 && mcp < flows);
        let keys = String::from_utf8(keys).unwrap();
        assert_eq!(keys.lines().count() as u64, 4 * flows);
        for line in keys.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 3);
            assert_eq!((f[1].len(), f[2].len()), (64, 64));
        }
        let syns = records(&pcap)
            .iter()
            .filter(|(_, f)| {
                let p = etherparse::SlicedPacket::from_ethernet(f).unwrap();
                matches!(p.transport, Some(etherparse::TransportSlice::Tcp(t)) if t.syn() && !t.ack())
            })
            .count() as u64;
        assert_eq!(syns, flows);
    }
}
