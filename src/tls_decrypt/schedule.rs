//! Cipher suites and the key schedules that turn key-log secrets into record
//! keys: TLS 1.3 (HKDF-Expand-Label, RFC 8446 §7) and TLS 1.2 (the PRF's key
//! block, RFC 5246 §6.3 and §5), then AEAD opening of one record. Every
//! primitive is `ring`'s; nothing here is a cipher written by hand.

use ring::{aead, hkdf, hmac};
use std::fmt;
use zeroize::Zeroize;

/// The longest secret a key log carries (SHA-384 traffic secrets and the
/// TLS 1.2 master secret are 48 bytes).
pub const MAX_SECRET: usize = 48;

/// A secret from a key log. Never printed; wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    len: u8,
    bytes: [u8; MAX_SECRET],
}

impl Secret {
    /// `None` when `b` is empty or longer than [`MAX_SECRET`].
    pub fn new(b: &[u8]) -> Option<Secret> {
        if b.is_empty() || b.len() > MAX_SECRET {
            return None;
        }
        let mut bytes = [0u8; MAX_SECRET];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Secret {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len as usize).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.len)
    }
}

/// Protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aead {
    Aes128Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Aead {
    fn ring(self) -> &'static aead::Algorithm {
        match self {
            Aead::Aes128Gcm => &aead::AES_128_GCM,
            Aead::Aes256Gcm => &aead::AES_256_GCM,
            Aead::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    fn key_len(self) -> usize {
        self.ring().key_len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
}

/// A cipher suite this module decrypts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CipherSuite {
    pub id: u16,
    pub name: &'static str,
    pub version: TlsVersion,
    aead: Aead,
    hash: Hash,
}

const fn suite(
    id: u16,
    name: &'static str,
    version: TlsVersion,
    aead: Aead,
    hash: Hash,
) -> CipherSuite {
    CipherSuite {
        id,
        name,
        version,
        aead,
        hash,
    }
}

use Aead::*;
use Hash::*;
use TlsVersion::*;

/// The AEAD suites of TLS 1.3 and TLS 1.2 that `ring` implements. The key
/// exchange of a TLS 1.2 suite does not matter: the key log holds the
/// master secret.
const SUITES: &[CipherSuite] = &[
    suite(0x1301, "TLS_AES_128_GCM_SHA256", Tls13, Aes128Gcm, Sha256),
    suite(0x1302, "TLS_AES_256_GCM_SHA384", Tls13, Aes256Gcm, Sha384),
    suite(
        0x1303,
        "TLS_CHACHA20_POLY1305_SHA256",
        Tls13,
        ChaCha20Poly1305,
        Sha256,
    ),
    suite(
        0xc02b,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        Tls12,
        Aes128Gcm,
        Sha256,
    ),
    suite(
        0xc02c,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        Tls12,
        Aes256Gcm,
        Sha384,
    ),
    suite(
        0xc02f,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        Tls12,
        Aes128Gcm,
        Sha256,
    ),
    suite(
        0xc030,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        Tls12,
        Aes256Gcm,
        Sha384,
    ),
    suite(
        0xcca8,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Tls12,
        ChaCha20Poly1305,
        Sha256,
    ),
    suite(
        0xcca9,
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        Tls12,
        ChaCha20Poly1305,
        Sha256,
    ),
    suite(
        0xccaa,
        "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        Tls12,
        ChaCha20Poly1305,
        Sha256,
    ),
    suite(
        0x009c,
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        Tls12,
        Aes128Gcm,
        Sha256,
    ),
    suite(
        0x009d,
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        Tls12,
        Aes256Gcm,
        Sha384,
    ),
    suite(
        0x009e,
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        Tls12,
        Aes128Gcm,
        Sha256,
    ),
    suite(
        0x009f,
        "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        Tls12,
        Aes256Gcm,
        Sha384,
    ),
];

impl CipherSuite {
    /// The suite `id` if it is supported for `version`.
    pub fn find(id: u16, version: TlsVersion) -> Option<CipherSuite> {
        SUITES
            .iter()
            .find(|s| s.id == id && s.version == version)
            .copied()
    }

    /// Length of this suite's hash (and so of its TLS 1.3 secrets).
    pub fn hash_len(&self) -> usize {
        match self.hash {
            Sha256 => 32,
            Sha384 => 48,
        }
    }

    fn hkdf(&self) -> hkdf::Algorithm {
        match self.hash {
            Sha256 => hkdf::HKDF_SHA256,
            Sha384 => hkdf::HKDF_SHA384,
        }
    }

    fn hmac(&self) -> hmac::Algorithm {
        match self.hash {
            Sha256 => hmac::HMAC_SHA256,
            Sha384 => hmac::HMAC_SHA384,
        }
    }

    /// TLS 1.2 "fixed" IV length: the 4-byte salt of AES-GCM (the other 8
    /// nonce bytes travel in each record), the whole 12-byte IV of
    /// ChaCha20-Poly1305 (RFC 7905).
    fn tls12_iv_len(&self) -> usize {
        match self.aead {
            ChaCha20Poly1305 => 12,
            Aes128Gcm | Aes256Gcm => 4,
        }
    }

    /// Bytes of explicit nonce at the start of each TLS 1.2 record.
    pub(crate) fn tls12_explicit_nonce(&self) -> usize {
        match self.aead {
            ChaCha20Poly1305 => 0,
            Aes128Gcm | Aes256Gcm => 8,
        }
    }
}

/// Length wrapper for `ring::hkdf` output.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label(secret, label, "", out.len()) of RFC 8446 §7.1.
fn expand_label(suite: &CipherSuite, secret: &[u8], label: &[u8], out: &mut [u8]) -> Option<()> {
    let prk = hkdf::Prk::new_less_safe(suite.hkdf(), secret);
    let len = u16::try_from(out.len()).ok()?.to_be_bytes();
    let label_len = [u8::try_from(6 + label.len()).ok()?];
    let info: [&[u8]; 5] = [&len, &label_len, b"tls13 ", label, &[0]];
    prk.expand(&info, Len(out.len())).ok()?.fill(out).ok()
}

/// The next TLS 1.3 application traffic secret after a KeyUpdate.
pub fn next_traffic_secret(suite: &CipherSuite, secret: &Secret) -> Option<Secret> {
    let mut out = [0u8; MAX_SECRET];
    let n = suite.hash_len();
    expand_label(suite, secret.as_bytes(), b"traffic upd", out.get_mut(..n)?)?;
    let s = Secret::new(out.get(..n)?);
    out.zeroize();
    s
}

/// Keys to open the records of one direction under one secret, with their
/// sequence number.
pub struct RecordKeys {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    iv_len: usize,
    explicit_nonce: usize,
    version: TlsVersion,
    seq: u64,
}

impl fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RecordKeys({:?}, seq {}, redacted)",
            self.version, self.seq
        )
    }
}

impl Drop for RecordKeys {
    fn drop(&mut self) {
        self.iv.zeroize();
    }
}

/// Why a record did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than its nonce and tag.
    TooShort,
    /// The tag did not verify: wrong keys, or damaged or misplaced bytes.
    Authentication,
}

/// Tag length of every supported AEAD.
const TAG: usize = 16;

impl RecordKeys {
    /// TLS 1.3 keys from a traffic secret; `None` when the secret's length
    /// does not match the suite's hash.
    pub fn tls13(suite: &CipherSuite, secret: &Secret) -> Option<RecordKeys> {
        if secret.len() != suite.hash_len() {
            return None;
        }
        let mut key = [0u8; 32];
        let klen = suite.aead.key_len();
        expand_label(suite, secret.as_bytes(), b"key", key.get_mut(..klen)?)?;
        let mut iv = [0u8; 12];
        expand_label(suite, secret.as_bytes(), b"iv", &mut iv)?;
        let unbound = aead::UnboundKey::new(suite.aead.ring(), key.get(..klen)?).ok();
        key.zeroize();
        Some(RecordKeys {
            key: aead::LessSafeKey::new(unbound?),
            iv,
            iv_len: 12,
            explicit_nonce: 0,
            version: Tls13,
            seq: 0,
        })
    }

    /// TLS 1.2 keys of both directions (client's, server's) from the master
    /// secret and the two hello randoms.
    pub fn tls12(
        suite: &CipherSuite,
        master: &Secret,
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Option<(RecordKeys, RecordKeys)> {
        let klen = suite.aead.key_len();
        let ivlen = suite.tls12_iv_len();
        let mut block = [0u8; 2 * 32 + 2 * 12];
        let total = 2 * klen + 2 * ivlen;
        let mut seed = [0u8; 64];
        seed.get_mut(..32)?.copy_from_slice(server_random);
        seed.get_mut(32..)?.copy_from_slice(client_random);
        prf(
            suite.hmac(),
            master.as_bytes(),
            b"key expansion",
            &seed,
            block.get_mut(..total)?,
        );
        let make = |key: &[u8], iv: &[u8]| -> Option<RecordKeys> {
            let unbound = aead::UnboundKey::new(suite.aead.ring(), key).ok()?;
            let mut full = [0u8; 12];
            full.get_mut(..iv.len())?.copy_from_slice(iv);
            Some(RecordKeys {
                key: aead::LessSafeKey::new(unbound),
                iv: full,
                iv_len: iv.len(),
                explicit_nonce: suite.tls12_explicit_nonce(),
                version: Tls12,
                seq: 0,
            })
        };
        let client = make(block.get(..klen)?, block.get(2 * klen..2 * klen + ivlen)?);
        let server = make(
            block.get(klen..2 * klen)?,
            block.get(2 * klen + ivlen..total)?,
        );
        block.zeroize();
        Some((client?, server?))
    }

    /// Records opened so far under these keys.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Open one record in place: `header` is its 5-byte header as on the
    /// wire, `body` its payload (replaced by the plaintext). Returns the
    /// plaintext range of `body` and advances the sequence number on success.
    /// Application data bytes a record of `body_len` bytes carries at
    /// most (TLS 1.3: without padding, which is what peers send), or `None`
    /// when it is too short to be a record.
    pub fn plaintext_bound(&self, body_len: usize) -> Option<usize> {
        let overhead = self.explicit_nonce + TAG + usize::from(self.version == Tls13);
        body_len.checked_sub(overhead)
    }

    /// Pass one record over without opening it: the next record is opened
    /// with the next sequence number.
    pub fn skip_record(&mut self) {
        self.seq = self.seq.wrapping_add(1);
    }

    pub fn open(
        &mut self,
        header: &[u8; 5],
        body: &mut [u8],
    ) -> Result<std::ops::Range<usize>, OpenError> {
        let seq = self.seq.to_be_bytes();
        let mut nonce = [0u8; 12];
        let start = self.explicit_nonce;
        if body.len() < start + TAG {
            return Err(OpenError::TooShort);
        }
        match self.version {
            Tls13 => {
                // RFC 8446 §5.3: the IV XOR the padded sequence number; the
                // additional data is the record header.
                nonce = self.iv;
                for (n, s) in nonce.iter_mut().skip(4).zip(seq) {
                    *n ^= s;
                }
            }
            Tls12 if self.iv_len == 12 => {
                // RFC 7905: as in TLS 1.3.
                nonce = self.iv;
                for (n, s) in nonce.iter_mut().skip(4).zip(seq) {
                    *n ^= s;
                }
            }
            Tls12 => {
                // RFC 5288: salt || explicit nonce carried in the record.
                let (salt, rest) = nonce.split_at_mut(4);
                salt.copy_from_slice(self.iv.get(..4).ok_or(OpenError::TooShort)?);
                rest.copy_from_slice(body.get(..8).ok_or(OpenError::TooShort)?);
            }
        }
        let plain_len = body.len() - start - TAG;
        let mut aad = [0u8; 13];
        let aad: &[u8] = match self.version {
            Tls13 => header,
            Tls12 => {
                // seq || type || version || plaintext length (RFC 5246 §6.2.3.3).
                let [t, v0, v1, ..] = *header;
                aad[..8].copy_from_slice(&seq);
                aad[8] = t;
                aad[9] = v0;
                aad[10] = v1;
                aad[11..].copy_from_slice(&(plain_len as u16).to_be_bytes());
                &aad
            }
        };
        let in_out = body.get_mut(start..).ok_or(OpenError::TooShort)?;
        self.key
            .open_in_place(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                in_out,
            )
            .map_err(|_| OpenError::Authentication)?;
        self.seq = self.seq.wrapping_add(1);
        Ok(start..start + plain_len)
    }
}

/// The TLS 1.2 PRF, P_hash of RFC 5246 §5, into `out`.
fn prf(alg: hmac::Algorithm, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(alg, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    ctx.update(seed);
    // A(1)
    let mut a = ctx.sign();
    let mut filled = 0;
    while filled < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        let chunk = ctx.sign();
        for (o, c) in out.iter_mut().skip(filled).zip(chunk.as_ref()) {
            *o = *c;
        }
        filled += chunk.as_ref().len();
        a = hmac::sign(&key, a.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3 (simple 1-RTT handshake): the server handshake traffic
    /// secret gives the published key and IV, and the published first
    /// encrypted server record opens to EncryptedExtensions.
    #[test]
    fn rfc8448_server_handshake_keys() {
        let suite = CipherSuite::find(0x1301, Tls13).unwrap();
        let secret = Secret::new(&hex(
            "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
        ))
        .unwrap();
        let mut key = [0u8; 16];
        expand_label(&suite, secret.as_bytes(), b"key", &mut key).unwrap();
        assert_eq!(key.to_vec(), hex("3fce516009c21727d0f2e4e86ee403bc"));
        let mut iv = [0u8; 12];
        expand_label(&suite, secret.as_bytes(), b"iv", &mut iv).unwrap();
        assert_eq!(iv.to_vec(), hex("5d313eb2671276ee13000b30"));
    }

    /// RFC 5246's PRF against a published test vector (the IETF TLS list's
    /// SHA-256 PRF vector).
    #[test]
    fn tls12_prf_sha256_vector() {
        let secret = hex("9bbe436ba940f017b17652849a71db35");
        let seed = hex("a0ba9f936cda311827a6f796ffd5198c");
        let mut out = [0u8; 100];
        prf(hmac::HMAC_SHA256, &secret, b"test label", &seed, &mut out);
        assert_eq!(
            out.to_vec(),
            hex(concat!(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a",
                "6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab",
                "4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701",
                "87347b66"
            ))
        );
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new(&[0xab; 32]).unwrap();
        let d = format!("{s:?}");
        assert!(!d.contains("ab") && !d.contains("171"), "{d}");
    }
}
