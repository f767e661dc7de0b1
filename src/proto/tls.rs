//! TLS ClientHello (RFC 8446 §4.1.2) from the client's first flight, also when
//! the hello is split across several records and TCP segments.
//!
//! Two entry points:
//! * [`parse_client_hello_records`] walks TLS records (RFC 8446 §5.1) from the
//!   first byte of a TCP stream and reassembles the handshake message;
//! * [`parse_client_hello_message`] parses a bare handshake message (as found
//!   in QUIC CRYPTO frames, RFC 9001 §4).
//!
//! Everything here reads untrusted bytes: no panics, every stored collection
//! has a documented cap, and the single-record case (by far the most common)
//! is parsed in place without copying.

/// Extension numbers the sensor looks at (IANA TLS ExtensionType registry).
pub const EXT_SERVER_NAME: u16 = 0x0000;
pub const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
pub const EXT_ALPN: u16 = 0x0010;
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
pub const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;

/// The largest first flight we reassemble; post-quantum hellos are ~2 KiB,
/// the TLS record limit is 16 KiB.
pub const MAX_HELLO_BYTES: usize = 16 * 1024 + 5;

/// RFC 8446 §5.1: TLSPlaintext.length MUST NOT exceed 2^14. A little slack
/// keeps odd-but-working stacks visible without letting a length field make
/// us wait for arbitrary amounts of data.
pub const MAX_RECORD_LEN: usize = (1 << 14) + 256;

/// Cap on records walked for one hello. Anti-DPI tools split the hello into
/// many tiny records, so this is generous; it bounds the work on a stream of
/// empty records (which carry no progress).
pub const MAX_RECORDS: usize = 4096;

/// Caps on what a [`ClientHello`] stores. Wire vectors may be longer (cipher
/// suites up to 32767 entries); the rest is validated for framing but not kept.
pub const MAX_CIPHER_SUITES: usize = 512;
pub const MAX_EXTENSIONS: usize = 128;
pub const MAX_SIGNATURE_ALGORITHMS: usize = 256;
/// RFC 7301 §3.1 does not bound the list; 16 covers every real client.
pub const MAX_ALPN: usize = 16;
/// RFC 1035 §2.3.4: 255 octets on the wire, 253 in text form.
pub const MAX_SNI_LEN: usize = 253;

const CONTENT_CHANGE_CIPHER_SPEC: u8 = 0x14;
const CONTENT_ALERT: u8 = 0x15;
const CONTENT_HANDSHAKE: u8 = 0x16;
const CONTENT_APPLICATION_DATA: u8 = 0x17;
const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
/// RFC 8446 §5.1 record header: type(1) version(2) length(2).
const RECORD_HEADER_LEN: usize = 5;
/// RFC 8446 §4: msg_type(1) length(3).
const HANDSHAKE_HEADER_LEN: usize = 4;

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
    /// ALPN protocol names in wire order (at most [`MAX_ALPN`]). A name made only
    /// of printable ASCII (0x21..=0x7e) that does not start with `0x` is kept as
    /// is; any other name is written as `0x` + lowercase hex of its bytes, so the
    /// raw bytes stay recoverable with [`alpn_bytes`].
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

/// RFC 8701 §2: GREASE values are `0x?a?a` with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// Raw bytes of an entry of [`ClientHello::alpn`] (undoes the `0x` hex escape).
pub fn alpn_bytes(value: &str) -> Vec<u8> {
    if let Some(hex) = value.strip_prefix("0x") {
        let b = hex.as_bytes();
        if b.len().is_multiple_of(2) && b.iter().all(u8::is_ascii_hexdigit) {
            return b
                .chunks_exact(2)
                .filter_map(|p| Some(hex_val(*p.first()?)? << 4 | hex_val(*p.get(1)?)?))
                .collect();
        }
    }
    value.as_bytes().to_vec()
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// How a record header prefix (up to 5 bytes) compares with a TLS record.
fn record_version_ok(major: Option<&u8>, minor: Option<&u8>) -> bool {
    // RFC 8446 §5.1 legacy_record_version; 0x0300 (SSLv3) ..= 0x0304.
    major.is_none_or(|&m| m == 0x03) && minor.is_none_or(|&m| m <= 0x04)
}

/// Parse the ClientHello from the start of the client's byte stream (records).
///
/// `stream` is a prefix of the client's bytes; call again with a longer prefix
/// after [`HelloProgress::NeedMore`]. Only the records up to the end of the
/// hello are read; what follows (e.g. early data) is ignored.
///
/// Policy for a first record that is TLS but not a handshake (ChangeCipherSpec,
/// alert, application data with a valid record version): `Invalid`, because a
/// client must start with its ClientHello (RFC 8446 §4.1.2). Any other first
/// byte is `NotTls`. A non-handshake record before the hello is complete is
/// `Invalid` (RFC 8446 §5.1: handshake messages must not be interleaved).
/// Zero-length handshake records are forbidden by RFC 8446 §5.1 but skipped
/// here (bounded by [`MAX_RECORDS`]) so that such a stream still yields its SNI.
pub fn parse_client_hello_records(stream: &[u8]) -> HelloProgress {
    // First-record checks can be decided on 1..3 bytes.
    match (stream.first(), stream.get(1), stream.get(2)) {
        (None, _, _) => return HelloProgress::NeedMore,
        (Some(&CONTENT_HANDSHAKE), maj, min) => {
            if !record_version_ok(maj, min) {
                return HelloProgress::NotTls;
            }
        }
        (
            Some(&(CONTENT_CHANGE_CIPHER_SPEC | CONTENT_ALERT | CONTENT_APPLICATION_DATA)),
            maj,
            min,
        ) => {
            if !record_version_ok(maj, min) {
                return HelloProgress::NotTls;
            }
            if min.is_none() {
                return HelloProgress::NeedMore;
            }
            return HelloProgress::Invalid("non-handshake record before ClientHello");
        }
        _ => return HelloProgress::NotTls,
    }

    let mut pos = 0usize;
    let mut records = 0usize;
    // Zero-copy while all handshake bytes so far come from one record.
    let mut first: &[u8] = &[];
    // Used from the second non-empty record on; never longer than MAX_HELLO_BYTES.
    let mut joined: Vec<u8> = Vec::new();
    let mut spanning = false;

    loop {
        let Some(hdr) = stream.get(pos..pos.saturating_add(RECORD_HEADER_LEN)) else {
            // Partial header: check what is there.
            let rest = stream.get(pos..).unwrap_or_default();
            if let Some(&t) = rest.first()
                && t != CONTENT_HANDSHAKE
            {
                return HelloProgress::Invalid("non-handshake record inside ClientHello");
            }
            if !record_version_ok(rest.get(1), rest.get(2)) {
                return HelloProgress::Invalid("bad record version");
            }
            return HelloProgress::NeedMore;
        };
        let [ctype, maj, min, len_hi, len_lo] = *hdr else {
            return HelloProgress::Invalid("internal: record header");
        };
        if ctype != CONTENT_HANDSHAKE {
            return HelloProgress::Invalid("non-handshake record inside ClientHello");
        }
        if !record_version_ok(Some(&maj), Some(&min)) {
            return HelloProgress::Invalid("bad record version");
        }
        let len = usize::from(u16::from_be_bytes([len_hi, len_lo]));
        if len > MAX_RECORD_LEN {
            return HelloProgress::Invalid("record longer than 2^14");
        }
        records += 1;
        if records > MAX_RECORDS {
            return HelloProgress::Invalid("too many records for one ClientHello");
        }
        let frag_start = pos + RECORD_HEADER_LEN;
        let frag_end = frag_start.saturating_add(len);
        let record_complete = frag_end <= stream.len();
        let frag = stream
            .get(frag_start..frag_end.min(stream.len()))
            .unwrap_or_default();

        if !spanning && first.is_empty() {
            first = frag;
        } else if !frag.is_empty() {
            if !spanning {
                spanning = true;
                joined.extend_from_slice(first);
            }
            // Never copy beyond what the hello can need.
            let room = MAX_HELLO_BYTES.saturating_sub(joined.len());
            joined.extend_from_slice(frag.get(..room.min(frag.len())).unwrap_or_default());
        }
        let hs: &[u8] = if spanning { &joined } else { first };

        if let Some(&t) = hs.first()
            && t != HANDSHAKE_CLIENT_HELLO
        {
            return HelloProgress::NotTls;
        }
        if let Some(&[_, a, b, c]) = hs.get(..HANDSHAKE_HEADER_LEN) {
            let body_len = u32::from_be_bytes([0, a, b, c]) as usize;
            let need = HANDSHAKE_HEADER_LEN + body_len;
            if need > MAX_HELLO_BYTES {
                return HelloProgress::Invalid("ClientHello larger than MAX_HELLO_BYTES");
            }
            if let Some(msg) = hs.get(..need) {
                return match parse_client_hello_message(msg) {
                    Ok(h) => HelloProgress::Complete(h),
                    Err(e) => HelloProgress::Invalid(e),
                };
            }
        }
        if !record_complete {
            return HelloProgress::NeedMore;
        }
        pos = frag_end;
    }
}

/// A bounds-checked big-endian reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n)?;
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }
    /// `opaque x<0..2^8-1>`
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    /// `opaque x<0..2^16-1>`
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Iterate a list of u16 values; `None` on odd length.
fn u16_list(b: &[u8]) -> Option<impl Iterator<Item = u16> + '_> {
    if !b.len().is_multiple_of(2) {
        return None;
    }
    Some(
        b.chunks_exact(2)
            .filter_map(|p| Some(u16::from_be_bytes([*p.first()?, *p.get(1)?]))),
    )
}

/// Parse a bare handshake message (type 1, u24 length, body), as carried in
/// QUIC CRYPTO frames. Bytes after the message are ignored.
pub fn parse_client_hello_message(msg: &[u8]) -> Result<ClientHello, &'static str> {
    let mut r = Reader::new(msg);
    if r.u8().ok_or("truncated handshake header")? != HANDSHAKE_CLIENT_HELLO {
        return Err("not a ClientHello");
    }
    let l = r.take(3).ok_or("truncated handshake header")?;
    let body_len = match *l {
        [a, b, c] => u32::from_be_bytes([0, a, b, c]) as usize,
        _ => return Err("truncated handshake header"),
    };
    let body = r.take(body_len).ok_or("truncated ClientHello")?;
    parse_body(body)
}

/// RFC 8446 §4.1.2 ClientHello body (also valid for TLS 1.0-1.2, RFC 5246 §7.4.1.2).
fn parse_body(body: &[u8]) -> Result<ClientHello, &'static str> {
    let mut r = Reader::new(body);
    let mut h = ClientHello {
        legacy_version: r.u16().ok_or("truncated legacy_version")?,
        ..ClientHello::default()
    };
    r.take(32).ok_or("truncated random")?;
    let sid = r.vec8().ok_or("truncated session_id")?;
    if sid.len() > 32 {
        // RFC 8446 §4.1.2: legacy_session_id<0..32>.
        return Err("session_id longer than 32");
    }
    let cs = r.vec16().ok_or("truncated cipher_suites")?;
    let suites = u16_list(cs).ok_or("odd cipher_suites length")?;
    h.cipher_suites = suites.take(MAX_CIPHER_SUITES).collect();
    r.vec8().ok_or("truncated compression_methods")?;

    // Extensions are optional before TLS 1.3 (RFC 5246 §7.4.1.2).
    if r.is_empty() {
        return Ok(h);
    }
    let exts = r.vec16().ok_or("truncated extensions")?;
    if !r.is_empty() {
        return Err("trailing bytes after extensions");
    }
    let mut er = Reader::new(exts);
    let mut seen_sni = false;
    while !er.is_empty() {
        let ty = er.u16().ok_or("truncated extension header")?;
        let data = er.vec16().ok_or("extension overflows its block")?;
        if h.extensions.len() < MAX_EXTENSIONS {
            h.extensions.push(ty);
        }
        // Content errors drop only that extension's content (robustness);
        // duplicates are illegal (RFC 8446 §4.2), first one wins.
        match ty {
            EXT_SERVER_NAME if !seen_sni => {
                seen_sni = true;
                h.sni = parse_sni(data);
            }
            EXT_ALPN if h.alpn.is_empty() => h.alpn = parse_alpn(data).unwrap_or_default(),
            EXT_SUPPORTED_VERSIONS if h.supported_versions.is_empty() => {
                h.supported_versions = parse_supported_versions(data).unwrap_or_default();
            }
            EXT_SIGNATURE_ALGORITHMS if h.signature_algorithms.is_empty() => {
                h.signature_algorithms =
                    parse_u16_vec16(data, MAX_SIGNATURE_ALGORITHMS).unwrap_or_default();
            }
            EXT_ENCRYPTED_CLIENT_HELLO if h.ech.is_none() => h.ech = parse_ech(data),
            _ => {}
        }
    }
    Ok(h)
}

/// RFC 6066 §3: ServerNameList; first host_name (type 0) entry.
fn parse_sni(data: &[u8]) -> Option<String> {
    let mut r = Reader::new(data);
    let list = r.vec16()?;
    if !r.is_empty() {
        return None;
    }
    let mut lr = Reader::new(list);
    while !lr.is_empty() {
        let name_type = lr.u8()?;
        let name = lr.vec16()?;
        if name_type == 0 {
            return normalize_host(name);
        }
    }
    None
}

/// Accept LDH names (plus `_`, which occurs in real names), lower-case them
/// and drop one trailing dot. Anything else is not trusted as a name.
fn normalize_host(name: &[u8]) -> Option<String> {
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty()
        || name.len() > MAX_SNI_LEN
        || !name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
    {
        return None;
    }
    // All bytes are ASCII, so this is lossless.
    Some(
        name.iter()
            .map(|&c| char::from(c.to_ascii_lowercase()))
            .collect(),
    )
}

/// RFC 7301 §3.1: ProtocolNameList protocol_name_list<2..2^16-1>,
/// ProtocolName<1..2^8-1>.
fn parse_alpn(data: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(data);
    let list = r.vec16()?;
    if !r.is_empty() {
        return None;
    }
    let mut lr = Reader::new(list);
    let mut out = Vec::new();
    while !lr.is_empty() {
        let name = lr.vec8()?;
        if name.is_empty() {
            return None;
        }
        if out.len() < MAX_ALPN {
            out.push(alpn_text(name));
        }
    }
    Some(out)
}

fn alpn_text(name: &[u8]) -> String {
    let printable = name.iter().all(|c| (0x21..=0x7e).contains(c));
    if printable && !name.starts_with(b"0x") {
        return name.iter().map(|&c| char::from(c)).collect();
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + name.len() * 2);
    s.push_str("0x");
    for &b in name {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// RFC 8446 §4.2.1: ClientHello form, `ProtocolVersion versions<2..254>`.
fn parse_supported_versions(data: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader::new(data);
    let list = r.vec8()?;
    if !r.is_empty() {
        return None;
    }
    Some(u16_list(list)?.collect())
}

/// A `u16 values<..2^16-1>` vector such as signature_algorithms (RFC 8446 §4.2.3).
fn parse_u16_vec16(data: &[u8], cap: usize) -> Option<Vec<u16>> {
    let mut r = Reader::new(data);
    let list = r.vec16()?;
    if !r.is_empty() {
        return None;
    }
    Some(u16_list(list)?.take(cap).collect())
}

/// draft-ietf-tls-esni §5: ECHClientHello.
fn parse_ech(data: &[u8]) -> Option<EchOffer> {
    let mut r = Reader::new(data);
    match r.u8()? {
        0 => {
            let kdf_id = r.u16()?;
            let aead_id = r.u16()?;
            let config_id = r.u8()?;
            r.vec16()?; // enc: empty in the second ClientHello after HRR
            let payload = r.vec16()?;
            r.is_empty().then_some(EchOffer {
                outer: true,
                kdf_id,
                aead_id,
                config_id,
                payload_len: payload.len(),
            })
        }
        1 => r.is_empty().then_some(EchOffer {
            outer: false,
            kdf_id: 0,
            aead_id: 0,
            config_id: 0,
            payload_len: 0,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured on loopback from `openssl s_client -servername mcp.example.com
    /// -alpn h2,http/1.1` (OpenSSL 3.0.19); one record.
    const OPENSSL_H2: &[u8] = include_bytes!("testdata/openssl-s_client-h2.bin");
    /// `openssl s_client -servername api.example.org -tls1_2`: no supported_versions.
    const OPENSSL_TLS12: &[u8] = include_bytes!("testdata/openssl-s_client-tls12.bin");
    /// Python 3 `ssl` client, ALPN http/1.1, server_hostname "Mcp.Example.COM.".
    const PYTHON_SSL: &[u8] = include_bytes!("testdata/python-ssl.bin");

    // Expected lists below come from tshark 4.0 dissecting the same bytes.
    const OPENSSL_H2_CIPHERS: &[u16] = &[
        0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f,
        0x009e, 0xc024, 0xc028, 0x006b, 0xc023, 0xc027, 0x0067, 0xc00a, 0xc014, 0x0039, 0xc009,
        0xc013, 0x0033, 0x009d, 0x009c, 0x003d, 0x003c, 0x0035, 0x002f, 0x00ff,
    ];
    const OPENSSL_SIGALGS: &[u16] = &[
        0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0809, 0x080a, 0x080b, 0x0804, 0x0805, 0x0806,
        0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602,
    ];

    fn complete(p: HelloProgress) -> ClientHello {
        match p {
            HelloProgress::Complete(h) => h,
            other => panic!("expected Complete, got {other:?}"),
        }
    }

    /// The handshake message inside a single-record fixture.
    fn message(stream: &[u8]) -> &[u8] {
        &stream[5..]
    }

    /// Re-frame a handshake message into records of the given fragment sizes
    /// (the last record takes the rest).
    fn reframe(msg: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = msg;
        for (i, &n) in sizes.iter().enumerate() {
            let n = if i + 1 == sizes.len() {
                rest.len()
            } else {
                n.min(rest.len())
            };
            let (a, b) = rest.split_at(n);
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(a.len() as u16).to_be_bytes());
            out.extend_from_slice(a);
            rest = b;
        }
        out
    }

    /// Insert one extension at the front of the extension block of `msg`,
    /// fixing the handshake and extensions lengths.
    fn with_extension(msg: &[u8], ty: u16, data: &[u8]) -> Vec<u8> {
        let body = &msg[4..];
        let mut p = 2 + 32;
        p += 1 + body[p] as usize;
        p += 2 + u16::from_be_bytes([body[p], body[p + 1]]) as usize;
        p += 1 + body[p] as usize;
        let ext_len = u16::from_be_bytes([body[p], body[p + 1]]) as usize;
        let mut nb = body[..p].to_vec();
        nb.extend_from_slice(&((ext_len + 4 + data.len()) as u16).to_be_bytes());
        nb.extend_from_slice(&ty.to_be_bytes());
        nb.extend_from_slice(&(data.len() as u16).to_be_bytes());
        nb.extend_from_slice(data);
        nb.extend_from_slice(&body[p + 2..]);
        let mut out = vec![1];
        out.extend_from_slice(&(nb.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&nb);
        out
    }

    fn sni_ext(name: &[u8]) -> Vec<u8> {
        let mut e = ((name.len() + 3) as u16).to_be_bytes().to_vec();
        e.push(0);
        e.extend_from_slice(&(name.len() as u16).to_be_bytes());
        e.extend_from_slice(name);
        e
    }

    /// A hand-built minimal hello: one cipher, no extensions block at all.
    fn minimal_message() -> Vec<u8> {
        let mut body = vec![0x03, 0x01];
        body.extend_from_slice(&[0x42; 32]);
        body.extend_from_slice(&[0, 0, 2, 0x00, 0x2f, 1, 0]);
        let mut m = vec![1, 0, 0, body.len() as u8];
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn openssl_fixture_fields() {
        assert!(looks_like_tls(OPENSSL_H2));
        let h = complete(parse_client_hello_records(OPENSSL_H2));
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.sni.as_deref(), Some("mcp.example.com"));
        assert_eq!(h.alpn, ["h2", "http/1.1"]);
        assert_eq!(h.cipher_suites, OPENSSL_H2_CIPHERS);
        assert_eq!(h.extensions, [0, 11, 10, 35, 16, 22, 23, 13, 43, 45, 51]);
        assert_eq!(h.signature_algorithms, OPENSSL_SIGALGS);
        assert_eq!(h.supported_versions, [0x0304, 0x0303, 0x0302, 0x0301]);
        assert_eq!(h.ech, None);
        // The QUIC-style entry point sees the same message.
        assert_eq!(parse_client_hello_message(message(OPENSSL_H2)), Ok(h));
    }

    #[test]
    fn openssl_tls12_fixture() {
        let h = complete(parse_client_hello_records(OPENSSL_TLS12));
        assert_eq!(h.sni.as_deref(), Some("api.example.org"));
        assert!(h.alpn.is_empty());
        assert!(h.supported_versions.is_empty());
        assert_eq!(h.extensions, [0, 11, 10, 35, 22, 23, 13]);
        assert_eq!(h.cipher_suites.len(), 28);
        assert_eq!(h.cipher_suites.last(), Some(&0x00ff));
    }

    #[test]
    fn python_fixture_sni_normalised() {
        let h = complete(parse_client_hello_records(PYTHON_SSL));
        // Sent as "Mcp.Example.COM." (tshark shows it verbatim).
        assert_eq!(h.sni.as_deref(), Some("mcp.example.com"));
        assert_eq!(h.alpn, ["http/1.1"]);
        assert_eq!(h.supported_versions, [0x0304, 0x0303]);
        assert_eq!(
            h.extensions,
            [0, 11, 10, 35, 16, 22, 23, 13, 43, 45, 51, 21]
        );
        assert_eq!(h.cipher_suites.len(), 18);
    }

    #[test]
    fn split_across_records() {
        let msg = message(OPENSSL_H2);
        let want = complete(parse_client_hello_records(OPENSSL_H2));
        for sizes in [
            &[1usize, 0][..],
            &[3, 0],
            &[4, 0],
            &[100, 0],
            &[1, 1, 1, 1, 1, 0],
            &[0, 50, 0, 50, 0],
            &[200, 100, 0],
        ] {
            let s = reframe(msg, sizes);
            assert_eq!(
                parse_client_hello_records(&s),
                HelloProgress::Complete(want.clone()),
                "{sizes:?}"
            );
        }
        // Every possible 2-record split point.
        for n in 0..=msg.len() {
            let s = reframe(msg, &[n, 0]);
            assert_eq!(complete(parse_client_hello_records(&s)), want, "split {n}");
        }
        // One byte per record.
        let ones = vec![1usize; msg.len()];
        let s = reframe(msg, &ones);
        assert_eq!(complete(parse_client_hello_records(&s)), want);
    }

    #[test]
    fn every_prefix_needs_more_then_completes() {
        for stream in [
            OPENSSL_H2.to_vec(),
            reframe(message(PYTHON_SSL), &[7, 300, 0]),
            reframe(message(OPENSSL_TLS12), &[0, 2, 0]),
        ] {
            for n in 0..stream.len() {
                assert_eq!(
                    parse_client_hello_records(&stream[..n]),
                    HelloProgress::NeedMore,
                    "prefix {n}"
                );
            }
            assert!(matches!(
                parse_client_hello_records(&stream),
                HelloProgress::Complete(_)
            ));
        }
    }

    #[test]
    fn trailing_data_after_hello_ignored() {
        let mut s = OPENSSL_H2.to_vec();
        s.extend_from_slice(&[0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x17, 0x03]);
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Complete(_)
        ));
    }

    #[test]
    fn truncated_message_never_panics() {
        for fixture in [OPENSSL_H2, OPENSSL_TLS12, PYTHON_SSL] {
            let msg = message(fixture);
            for n in 0..msg.len() {
                assert!(parse_client_hello_message(&msg[..n]).is_err(), "len {n}");
            }
        }
    }

    #[test]
    fn hostile_lengths_never_panic() {
        // Rewrite every byte of a hello with a few "interesting" values and make
        // sure both parsers return; record the count of successes as a sanity check.
        let msg = message(OPENSSL_H2);
        let mut parsed = 0;
        for i in 0..msg.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut m = msg.to_vec();
                m[i] = v;
                if parse_client_hello_message(&m).is_ok() {
                    parsed += 1;
                }
                let _ = parse_client_hello_records(&reframe(&m, &[9, 0]));
            }
        }
        assert!(parsed > 0);
    }

    #[test]
    fn not_tls() {
        for s in [
            &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
            b"POST /mcp HTTP/1.1\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"\x16\x02",         // bad major version
            b"\x16\x03\x05",     // bad minor version
            b"\x80\x2e\x01\x03", // SSLv2-style hello
        ] {
            assert_eq!(
                parse_client_hello_records(s),
                HelloProgress::NotTls,
                "{s:?}"
            );
        }
        // Handshake record, but not a ClientHello (ServerHello type 2).
        let mut m = message(OPENSSL_H2).to_vec();
        m[0] = 2;
        assert_eq!(
            parse_client_hello_records(&reframe(&m, &[0])),
            HelloProgress::NotTls
        );
        assert_eq!(
            parse_client_hello_records(&reframe(&m, &[0, 1, 0])),
            HelloProgress::NotTls
        );
        assert!(parse_client_hello_message(&m).is_err());
        // Early verdict on a 1-byte prefix of a non-TLS stream.
        assert_eq!(parse_client_hello_records(b"G"), HelloProgress::NotTls);
        assert_eq!(parse_client_hello_records(b"\x16"), HelloProgress::NeedMore);
        assert_eq!(
            parse_client_hello_records(b"\x16\x03"),
            HelloProgress::NeedMore
        );
    }

    #[test]
    fn non_handshake_records_are_invalid() {
        // ChangeCipherSpec first.
        let mut s = vec![0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
        s.extend_from_slice(OPENSSL_H2);
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Invalid(_)
        ));
        assert_eq!(parse_client_hello_records(&s[..2]), HelloProgress::NeedMore);
        // Application data interleaved in a split hello.
        let msg = message(OPENSSL_H2);
        let mut s = reframe(&msg[..100], &[0]);
        s.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x02, 0xaa, 0xbb]);
        s.extend_from_slice(&reframe(&msg[100..], &[0]));
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Invalid(_)
        ));
        // Already decidable from the bad record's first byte.
        let cut = reframe(&msg[..100], &[0]).len() + 1;
        assert!(matches!(
            parse_client_hello_records(&s[..cut]),
            HelloProgress::Invalid(_)
        ));
        // Bad version on a continuation record.
        let mut s = reframe(msg, &[100, 0]);
        let second = 5 + 100;
        s[second + 1] = 0x09;
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Invalid(_)
        ));
    }

    #[test]
    fn oversized_lengths() {
        // Record length above 2^14 + slack.
        let s = [0x16, 0x03, 0x01, 0xff, 0xff, 0x01];
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Invalid(_)
        ));
        // Handshake length beyond MAX_HELLO_BYTES: rejected from the header alone.
        let s = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00];
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Invalid(_)
        ));
        // Largest acceptable hello is still only waited for.
        let body = (MAX_HELLO_BYTES - 4) as u32;
        let b = body.to_be_bytes();
        let s = [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, b[1], b[2], b[3]];
        assert_eq!(parse_client_hello_records(&s), HelloProgress::NeedMore);
        // Endless empty records hit the record cap.
        let s: Vec<u8> = [0x16, 0x03, 0x01, 0x00, 0x00].repeat(MAX_RECORDS + 1);
        assert!(matches!(
            parse_client_hello_records(&s),
            HelloProgress::Invalid(_)
        ));
        // session_id longer than 32 (RFC 8446 §4.1.2), otherwise well framed.
        let m = minimal_message();
        let mut long_sid = m[..4 + 34].to_vec();
        long_sid.push(33);
        long_sid.extend_from_slice(&[0x55; 33]);
        long_sid.extend_from_slice(&m[4 + 35..]);
        long_sid[3] += 33;
        assert!(parse_client_hello_message(&long_sid).is_err());
        let mut sid32 = long_sid.clone();
        sid32[4 + 34] = 32;
        sid32.remove(4 + 35);
        sid32[3] -= 1;
        assert!(parse_client_hello_message(&sid32).is_ok());
        // Extension length past the end of the extension block.
        let m = with_extension(&minimal_message_with_exts(), 0x1234, &[1, 2, 3]);
        let mut bad = m.clone();
        let ext_hdr = bad.len() - 3 - 2;
        bad[ext_hdr] = 0xff;
        assert!(parse_client_hello_message(&bad).is_err());
        assert!(parse_client_hello_message(&m).is_ok());
    }

    /// minimal_message plus an empty extensions block.
    fn minimal_message_with_exts() -> Vec<u8> {
        let mut m = minimal_message();
        m.extend_from_slice(&[0, 0]);
        m[3] += 2;
        m
    }

    #[test]
    fn minimal_hello_without_extensions() {
        let h = parse_client_hello_message(&minimal_message()).unwrap();
        assert_eq!(h.legacy_version, 0x0301);
        assert_eq!(h.cipher_suites, [0x002f]);
        assert!(h.extensions.is_empty());
        let h2 = parse_client_hello_message(&minimal_message_with_exts()).unwrap();
        assert_eq!(h, h2);
        // Odd cipher_suites length.
        let mut m = minimal_message();
        m[4 + 35 + 1] = 3;
        assert!(parse_client_hello_message(&m).is_err());
    }

    #[test]
    fn ech_outer_and_inner() {
        let msg = message(OPENSSL_H2);
        // type 0, kdf 0x0001, aead 0x0001, config_id 0x5a, enc 32 bytes, payload 144.
        let mut ech = vec![0, 0x00, 0x01, 0x00, 0x01, 0x5a, 0x00, 0x20];
        ech.extend_from_slice(&[0xee; 32]);
        ech.extend_from_slice(&[0x00, 0x90]);
        ech.extend_from_slice(&[0xcc; 144]);
        let m = with_extension(msg, EXT_ENCRYPTED_CLIENT_HELLO, &ech);
        let h = complete(parse_client_hello_records(&reframe(&m, &[0])));
        assert_eq!(
            h.ech,
            Some(EchOffer {
                outer: true,
                kdf_id: 1,
                aead_id: 1,
                config_id: 0x5a,
                payload_len: 144
            })
        );
        assert_eq!(h.extensions.first(), Some(&EXT_ENCRYPTED_CLIENT_HELLO));
        assert_eq!(h.sni.as_deref(), Some("mcp.example.com"));

        // Inner marker.
        let m = with_extension(msg, EXT_ENCRYPTED_CLIENT_HELLO, &[1]);
        let h = parse_client_hello_message(&m).unwrap();
        assert_eq!(h.ech.map(|e| e.outer), Some(false));

        // Broken ECH content: extension type kept, content ignored.
        let m = with_extension(msg, EXT_ENCRYPTED_CLIENT_HELLO, &ech[..20]);
        let h = parse_client_hello_message(&m).unwrap();
        assert_eq!(h.ech, None);
        assert_eq!(h.extensions.first(), Some(&EXT_ENCRYPTED_CLIENT_HELLO));
        // Unknown ECH type.
        let m = with_extension(msg, EXT_ENCRYPTED_CLIENT_HELLO, &[7]);
        assert_eq!(parse_client_hello_message(&m).unwrap().ech, None);
    }

    #[test]
    fn grease_kept_in_order() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301) && !is_grease(0xfefe));
        let m = with_extension(message(OPENSSL_H2), 0x2a2a, &[]);
        let h = parse_client_hello_message(&m).unwrap();
        assert_eq!(h.extensions.first(), Some(&0x2a2a));
        assert_eq!(h.extensions.len(), 12);
    }

    #[test]
    fn sni_validation() {
        let base = minimal_message_with_exts();
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"Example.COM", Some("example.com")),
            (b"a.b-c_d.example.", Some("a.b-c_d.example")),
            (b"bad host", None),
            (b"evil\x00.com", None),
            (b"caf\xc3\xa9.fr", None),
            (b"", None),
            (b".", None),
        ];
        for (name, want) in cases {
            let h = parse_client_hello_message(&with_extension(&base, 0, &sni_ext(name))).unwrap();
            assert_eq!(h.sni.as_deref(), *want, "{name:?}");
            assert_eq!(h.extensions, [0]);
        }
        let long = vec![b'a'; MAX_SNI_LEN + 1];
        let h = parse_client_hello_message(&with_extension(&base, 0, &sni_ext(&long))).unwrap();
        assert_eq!(h.sni, None);
        // host_name after an unknown name type is still found.
        let ext = [0, 8, 7, 0, 1, b'x', 0, 0, 1, b'y'];
        let h = parse_client_hello_message(&with_extension(&base, 0, &ext)).unwrap();
        assert_eq!(h.sni.as_deref(), Some("y"));
        // Broken inner list length: content ignored, type kept.
        let ext = [0, 9, 0, 0, 1, b'x'];
        let h = parse_client_hello_message(&with_extension(&base, 0, &ext)).unwrap();
        assert_eq!((h.sni, h.extensions), (None, vec![0]));
    }

    #[test]
    fn alpn_escaping() {
        let base = minimal_message_with_exts();
        let ext = [
            0, 11, 2, b'h', b'2', 2, 0x01, 0xab, 4, b'0', b'x', b'4', b'1',
        ];
        let h = parse_client_hello_message(&with_extension(&base, EXT_ALPN, &ext)).unwrap();
        assert_eq!(h.alpn, ["h2", "0x01ab", "0x30783431"]);
        assert_eq!(alpn_bytes(&h.alpn[1]), [0x01, 0xab]);
        assert_eq!(alpn_bytes(&h.alpn[2]), b"0x41");
        assert_eq!(alpn_bytes("h2"), b"h2");
        // Zero-length protocol name is malformed (RFC 7301 §3.1).
        let ext = [0, 3, 0, 1, b'a'];
        let h = parse_client_hello_message(&with_extension(&base, EXT_ALPN, &ext)).unwrap();
        assert!(h.alpn.is_empty());
        // Cap on stored names.
        let mut list = Vec::new();
        for _ in 0..40 {
            list.extend_from_slice(&[1, b'a']);
        }
        let mut ext = (list.len() as u16).to_be_bytes().to_vec();
        ext.extend_from_slice(&list);
        let h = parse_client_hello_message(&with_extension(&base, EXT_ALPN, &ext)).unwrap();
        assert_eq!(h.alpn.len(), MAX_ALPN);
    }
}
