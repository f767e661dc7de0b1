//! TLS ClientHello (RFC 8446 §4.1.2) from the client's first flight, also when
//! the hello is split across several records and TCP segments.
//!
//! STUB: the public API below is the contract; the implementation is pending.

/// Extension numbers the sensor looks at (IANA TLS ExtensionType registry).
pub const EXT_SERVER_NAME: u16 = 0x0000;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
pub const EXT_ALPN: u16 = 0x0010;
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
pub const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;

/// The largest first flight we reassemble; post-quantum hellos are ~2 KiB,
/// the TLS record limit is 16 KiB.
pub const MAX_HELLO_BYTES: usize = 16 * 1024 + 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchOffer {
    /// ECHClientHello.type: 0 outer, 1 inner.
    pub outer: bool,
    pub kdf_id: u16,
    pub aead_id: u16,
    pub config_id: u8,
    pub payload_len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    pub legacy_version: u16,
    /// In wire order, GREASE included (JA4 filters it).
    pub cipher_suites: Vec<u16>,
    /// Extension types in wire order, GREASE included.
    pub extensions: Vec<u16>,
    /// First host_name entry, lower-cased; `None` when absent or not valid text.
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub supported_versions: Vec<u16>,
    /// signature_algorithms in wire order.
    pub signature_algorithms: Vec<u16>,
    pub ech: Option<EchOffer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloProgress {
    /// A valid prefix: feed more client bytes.
    NeedMore,
    /// The stream does not start with a TLS handshake record.
    NotTls,
    /// TLS, but the hello is malformed or larger than `MAX_HELLO_BYTES`.
    Invalid(&'static str),
    Complete(ClientHello),
}

/// Cheap probe on the first bytes of a client stream: a handshake record (0x16)
/// with a plausible version (0x03 0x00..=0x04).
pub fn looks_like_tls(stream: &[u8]) -> bool {
    matches!(stream, [0x16, 0x03, 0..=4, ..])
}

/// Parse the ClientHello from the start of the client's byte stream (records).
pub fn parse_client_hello_records(_stream: &[u8]) -> HelloProgress {
    HelloProgress::NeedMore
}

/// Parse a bare handshake message (type 1, u24 length, body), as carried in
/// QUIC CRYPTO frames.
pub fn parse_client_hello_message(_msg: &[u8]) -> Result<ClientHello, &'static str> {
    Err("not implemented")
}
