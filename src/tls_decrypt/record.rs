//! TLS record framing and handshake-message reassembly over decrypted or
//! clear record payloads, and the few hello fields decryption needs.

/// Record header length.
pub const HEADER: usize = 5;
/// Largest record payload accepted (RFC 5246 §6.2.3: 2^14 + 2048).
pub const MAX_PAYLOAD: usize = 16384 + 2048;

pub const CHANGE_CIPHER_SPEC: u8 = 20;
pub const ALERT: u8 = 21;
pub const HANDSHAKE: u8 = 22;
pub const APPLICATION_DATA: u8 = 23;
pub const HEARTBEAT: u8 = 24;

pub const HS_CLIENT_HELLO: u8 = 1;
pub const HS_SERVER_HELLO: u8 = 2;
pub const HS_ENCRYPTED_EXTENSIONS: u8 = 8;
pub const HS_FINISHED: u8 = 20;
pub const HS_KEY_UPDATE: u8 = 24;

/// What the next bytes of a stream hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed {
    /// A whole record: its header and payload length.
    Record([u8; HEADER], usize),
    /// Not enough bytes yet.
    Partial,
    /// Not a TLS record header.
    NotTls,
}

/// Frame the record at the start of `b`.
pub fn frame(b: &[u8]) -> Framed {
    let Some(h) = b.first_chunk::<HEADER>() else {
        return Framed::Partial;
    };
    let [ty, major, _, l0, l1] = *h;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if !(CHANGE_CIPHER_SPEC..=HEARTBEAT).contains(&ty) || major != 3 || len > MAX_PAYLOAD {
        return Framed::NotTls;
    }
    if b.len() < HEADER + len {
        return Framed::Partial;
    }
    Framed::Record(*h, len)
}

/// Whole records at the start of `b`.
pub fn count_records(mut b: &[u8]) -> u64 {
    let mut n = 0;
    while let Framed::Record(_, len) = frame(b) {
        n += 1;
        b = b.get(HEADER + len..).unwrap_or_default();
    }
    n
}

/// Reassembles the handshake messages of one direction from record
/// payloads, streaming: the bodies of the few messages read here are kept
/// (bounded); every other message is only walked past.
#[derive(Debug, Default)]
pub struct HandshakeReader {
    hdr: [u8; 4],
    hdr_len: usize,
    remaining: usize,
    keep: bool,
    body: Vec<u8>,
}

/// Largest kept handshake message (a ClientHello with post-quantum key
/// shares is a few KiB).
pub const MAX_KEPT_MESSAGE: usize = 64 * 1024;

/// A kept message was larger than [`MAX_KEPT_MESSAGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

fn kept(ty: u8) -> bool {
    matches!(
        ty,
        HS_CLIENT_HELLO | HS_SERVER_HELLO | HS_ENCRYPTED_EXTENSIONS | HS_KEY_UPDATE
    )
}

impl HandshakeReader {
    /// Whether the reader is between two messages.
    pub fn at_boundary(&self) -> bool {
        self.hdr_len == 0 && self.remaining == 0
    }

    /// Feed `data`; `on_msg(type, body)` for every complete message, the body
    /// empty for messages that are not kept.
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut on_msg: impl FnMut(u8, &[u8]),
    ) -> Result<(), TooLarge> {
        while !data.is_empty() {
            if self.remaining == 0 && self.hdr_len < 4 {
                let take = (4 - self.hdr_len).min(data.len());
                let (h, rest) = data.split_at(take);
                if let Some(dst) = self.hdr.get_mut(self.hdr_len..self.hdr_len + take) {
                    dst.copy_from_slice(h);
                }
                self.hdr_len += take;
                data = rest;
                if self.hdr_len < 4 {
                    return Ok(());
                }
                let [ty, a, b, c] = self.hdr;
                let len = u32::from_be_bytes([0, a, b, c]) as usize;
                self.keep = kept(ty);
                if self.keep && len > MAX_KEPT_MESSAGE {
                    return Err(TooLarge);
                }
                self.body.clear();
                self.remaining = len;
                if len == 0 {
                    self.hdr_len = 0;
                    on_msg(ty, &[]);
                    continue;
                }
            }
            let take = self.remaining.min(data.len());
            let (b, rest) = data.split_at(take);
            if self.keep {
                self.body.extend_from_slice(b);
            }
            self.remaining -= take;
            data = rest;
            if self.remaining == 0 {
                self.hdr_len = 0;
                on_msg(self.hdr[0], &self.body);
                self.body.clear();
            }
        }
        Ok(())
    }
}

/// A forward-only reader of hello fields; every read is checked.
pub struct Cursor<'a>(pub &'a [u8]);

impl<'a> Cursor<'a> {
    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    pub fn u8(&mut self) -> Option<u8> {
        self.bytes(1)?.first().copied()
    }
    pub fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
    }
    pub fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(n.into())
    }
    pub fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.bytes(n.into())
    }
}

/// Extensions as (type, data), stopping at the first damaged one.
pub fn extensions(b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut c = Cursor(b);
    std::iter::from_fn(move || {
        let ty = c.u16()?;
        let data = c.vec16()?;
        Some((ty, data))
    })
}

pub const EXT_ALPN: u16 = 16;
pub const EXT_EARLY_DATA: u16 = 42;
pub const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest
/// (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// What decryption needs from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello<'a> {
    pub random: [u8; 32],
    /// The ALPN extension's protocol name list (each name length-prefixed).
    pub alpn: Option<&'a [u8]>,
    pub early_data: bool,
}

pub fn client_hello(body: &[u8]) -> Option<ClientHello<'_>> {
    let mut c = Cursor(body);
    c.u16()?;
    let random = <[u8; 32]>::try_from(c.bytes(32)?).ok()?;
    c.vec8()?;
    c.vec16()?;
    c.vec8()?;
    let mut hello = ClientHello {
        random,
        alpn: None,
        early_data: false,
    };
    let exts = c.vec16().unwrap_or_default();
    for (ty, data) in extensions(exts) {
        match ty {
            EXT_ALPN => hello.alpn = Cursor(data).vec16(),
            EXT_EARLY_DATA => hello.early_data = true,
            _ => {}
        }
    }
    Some(hello)
}

/// What decryption needs from a ServerHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello<'a> {
    pub random: [u8; 32],
    /// The negotiated version: `supported_versions` if present, else the
    /// legacy field.
    pub version: u16,
    pub suite: u16,
    pub alpn: Option<&'a [u8]>,
}

impl ServerHello<'_> {
    pub fn is_retry_request(&self) -> bool {
        self.random == HRR_RANDOM
    }
}

/// The one protocol of a server's ALPN extension.
fn selected_alpn(data: &[u8]) -> Option<&[u8]> {
    Cursor(Cursor(data).vec16()?).vec8()
}

pub fn server_hello(body: &[u8]) -> Option<ServerHello<'_>> {
    let mut c = Cursor(body);
    let legacy = c.u16()?;
    let random = <[u8; 32]>::try_from(c.bytes(32)?).ok()?;
    c.vec8()?;
    let suite = c.u16()?;
    c.u8()?;
    let mut hello = ServerHello {
        random,
        version: legacy,
        suite,
        alpn: None,
    };
    let exts = c.vec16().unwrap_or_default();
    for (ty, data) in extensions(exts) {
        match ty {
            EXT_SUPPORTED_VERSIONS => {
                if let Some(v) = Cursor(data).u16() {
                    hello.version = v;
                }
            }
            EXT_ALPN => hello.alpn = selected_alpn(data),
            _ => {}
        }
    }
    Some(hello)
}

/// The ALPN protocol a TLS 1.3 server selected, from EncryptedExtensions.
pub fn encrypted_extensions_alpn(body: &[u8]) -> Option<&[u8]> {
    let exts = Cursor(body).vec16()?;
    extensions(exts)
        .find(|(ty, _)| *ty == EXT_ALPN)
        .and_then(|(_, d)| selected_alpn(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        assert_eq!(frame(&[22, 3, 1]), Framed::Partial);
        assert_eq!(frame(&[22, 3, 1, 0, 2, 9]), Framed::Partial);
        assert_eq!(
            frame(&[22, 3, 1, 0, 2, 9, 9, 7]),
            Framed::Record([22, 3, 1, 0, 2], 2)
        );
        assert_eq!(frame(b"GET / HTTP/1.1"), Framed::NotTls);
        assert_eq!(frame(&[23, 3, 3, 0xff, 0xff]), Framed::NotTls);
        assert_eq!(count_records(&[21, 3, 3, 0, 0, 21, 3, 3, 0, 1, 0, 21]), 2);
    }

    #[test]
    fn handshake_messages_across_pushes() {
        let mut msgs = Vec::new();
        // A kept ServerHello-typed message of 3 bytes, a skipped one of 2,
        // an empty Finished, fed a byte at a time.
        let stream = [2, 0, 0, 3, 1, 2, 3, 11, 0, 0, 2, 9, 9, 20, 0, 0, 0];
        let mut r = HandshakeReader::default();
        for b in stream {
            r.push(&[b], |t, body| msgs.push((t, body.to_vec())))
                .unwrap();
        }
        assert!(r.at_boundary());
        assert_eq!(msgs, vec![(2, vec![1, 2, 3]), (11, vec![]), (20, vec![])]);
        let mut r = HandshakeReader::default();
        assert_eq!(r.push(&[1, 0xff, 0xff, 0xff], |_, _| {}), Err(TooLarge));
    }
}
