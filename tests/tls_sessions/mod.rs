//! Real TLS sessions made in-process by rustls: a client and a server over
//! an in-memory pipe exchange HTTP requests and responses while the client
//! writes its secrets as NSS key-log lines (what `SSLKEYLOGFILE` holds). The
//! bytes each side wrote are recorded in order, as a capture would see them.

#![allow(dead_code)]

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// NSS key-log lines, in memory.
#[derive(Debug, Default)]
pub struct NssLog(pub Mutex<String>);

impl rustls::KeyLog for NssLog {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| {
            b.iter().fold(String::new(), |mut s, x| {
                let _ = write!(s, "{x:02x}");
                s
            })
        };
        let mut s = self.0.lock().unwrap();
        let _ = writeln!(s, "{label} {} {}", hex(client_random), hex(secret));
    }
}

impl NssLog {
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

/// One recorded connection.
#[derive(Debug, Default, Clone)]
pub struct Transcript {
    /// (client to server?, bytes) in the order they were written.
    pub chunks: Vec<(bool, Vec<u8>)>,
    /// The application bytes each side wrote (excluding early data).
    pub client_plain: Vec<u8>,
    pub server_plain: Vec<u8>,
    /// 0-RTT bytes the client wrote.
    pub early_plain: Vec<u8>,
    pub resumed: bool,
    pub suite: u16,
    pub version: u16,
}

impl Transcript {
    pub fn stream(&self, c2s: bool) -> Vec<u8> {
        self.chunks
            .iter()
            .filter(|(d, _)| *d == c2s)
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }
}

/// Which session to make.
#[derive(Clone)]
pub struct Options {
    pub tls13: bool,
    /// Suites offered by the client, by IANA number.
    pub suites: Vec<u16>,
    /// The server's key-exchange groups, or `None` for the default. A
    /// server that lacks the client's first group answers with a
    /// HelloRetryRequest.
    pub server_groups: Option<Vec<rustls::NamedGroup>>,
    pub key_update: bool,
    /// Requests (and responses) exchanged.
    pub exchanges: usize,
    /// Bytes of each response body.
    pub body: usize,
    pub early_data: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls13: true,
            suites: vec![0x1301],
            server_groups: None,
            key_update: false,
            exchanges: 2,
            body: 3000,
            early_data: false,
        }
    }
}

fn provider_with(suites: &[u16], groups: Option<&[rustls::NamedGroup]>) -> Arc<CryptoProvider> {
    let mut p = provider::default_provider();
    p.cipher_suites
        .retain(|s| suites.contains(&u16::from(s.suite())));
    if let Some(g) = groups {
        p.kx_groups.retain(|k| g.contains(&k.name()));
    }
    Arc::new(p)
}

/// A client configuration and a server configuration that trust each
/// other; reuse them for resumption.
pub struct Endpoints {
    pub client: Arc<ClientConfig>,
    pub server: Arc<ServerConfig>,
    pub log: Arc<NssLog>,
}

pub fn endpoints(o: &Options) -> Endpoints {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let versions: &[&rustls::SupportedProtocolVersion] = if o.tls13 {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS12]
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let log = Arc::new(NssLog::default());
    let mut client = ClientConfig::builder_with_provider(provider_with(&o.suites, None))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.key_log = log.clone();
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    client.enable_early_data = o.early_data;
    let mut server =
        ServerConfig::builder_with_provider(provider_with(&o.suites, o.server_groups.as_deref()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    if o.early_data {
        server.max_early_data_size = 16384;
    }
    Endpoints {
        client: Arc::new(client),
        server: Arc::new(server),
        log,
    }
}

struct Pair {
    client: ClientConnection,
    server: ServerConnection,
    t: Transcript,
}

impl Pair {
    /// Move every pending byte both ways until neither side has more.
    fn pump(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while self.client.wants_write() {
                let mut b = Vec::new();
                self.client.write_tls(&mut b).unwrap();
                let mut s = &b[..];
                while !s.is_empty() {
                    self.server.read_tls(&mut s).unwrap();
                    self.server.process_new_packets().unwrap();
                }
                self.t.chunks.push((true, b));
                moved = true;
            }
            while self.server.wants_write() {
                let mut b = Vec::new();
                self.server.write_tls(&mut b).unwrap();
                let mut s = &b[..];
                while !s.is_empty() {
                    self.client.read_tls(&mut s).unwrap();
                    self.client.process_new_packets().unwrap();
                }
                self.t.chunks.push((false, b));
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the handshake does not settle");
    }

    fn drain(r: &mut dyn Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        out
    }

    fn exchange(&mut self, i: usize, body: usize) {
        let req =
            format!("GET /mcp/{i} HTTP/1.1\r\nHost: localhost\r\naccept: application/json\r\n\r\n");
        self.client.writer().write_all(req.as_bytes()).unwrap();
        self.t.client_plain.extend_from_slice(req.as_bytes());
        self.pump();
        let got = Self::drain(&mut self.server.reader());
        assert!(req.as_bytes().ends_with(&got) || got.ends_with(req.as_bytes()) || !got.is_empty());
        let payload: String = (0..body).map(|k| (b'a' + (k % 26) as u8) as char).collect();
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{payload}",
            payload.len()
        );
        // In pieces: rustls bounds its plaintext buffers.
        let mut got = 0;
        for piece in resp.as_bytes().chunks(16 * 1024) {
            self.server.writer().write_all(piece).unwrap();
            self.pump();
            got += Self::drain(&mut self.client.reader()).len();
        }
        self.t.server_plain.extend_from_slice(resp.as_bytes());
        assert_eq!(got, resp.len());
    }
}

/// Make one connection with `ep` (a second call with the same endpoints
/// resumes).
pub fn connect(ep: &Endpoints, o: &Options) -> Transcript {
    let name = ServerName::try_from("localhost").unwrap();
    let client = ClientConnection::new(ep.client.clone(), name).unwrap();
    let server = ServerConnection::new(ep.server.clone()).unwrap();
    let mut p = Pair {
        client,
        server,
        t: Transcript::default(),
    };
    if o.early_data
        && let Some(mut early) = p.client.early_data()
    {
        let e = b"POST /early HTTP/1.1\r\ncontent-length: 0\r\n\r\n";
        early.write_all(e).unwrap();
        p.t.early_plain.extend_from_slice(e);
    }
    p.pump();
    assert!(!p.client.is_handshaking() && !p.server.is_handshaking());
    // Early data the server accepted is read first.
    if let Some(mut e) = p.server.early_data() {
        let _ = Pair::drain(&mut e);
    }
    for i in 0..o.exchanges {
        p.exchange(i, o.body);
        if o.key_update && i == 0 {
            p.client.refresh_traffic_keys().unwrap();
            p.server.refresh_traffic_keys().unwrap();
            p.pump();
        }
    }
    p.client.send_close_notify();
    p.pump();
    p.t.resumed = p.client.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    p.t.suite = p
        .client
        .negotiated_cipher_suite()
        .map(|s| u16::from(s.suite()))
        .unwrap_or(0);
    p.t.version = p.client.protocol_version().map(u16::from).unwrap_or(0);
    p.t
}

/// One connection with fresh endpoints: its transcript and key log.
pub fn session(o: &Options) -> (Transcript, String) {
    let ep = endpoints(o);
    let t = connect(&ep, o);
    (t, ep.log.text())
}
