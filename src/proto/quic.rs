//! QUIC v1 (RFC 9000/9001) and v2 (RFC 9369) client Initial packets: derive
//! the Initial keys (rustls), remove header protection, decrypt, and reassemble
//! CRYPTO frames into the TLS ClientHello handshake message.
//!
//! STUB: the public API below is the contract; the implementation is pending.

pub const VERSION_1: u32 = 0x0000_0001;
pub const VERSION_2: u32 = 0x6b33_43cf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuicProgress {
    /// The datagram holds no client Initial of a version we can decrypt.
    NotInitial,
    /// Initial(s) decrypted, ClientHello not complete yet.
    NeedMore,
    /// The complete ClientHello handshake message (type 1, u24 length, body).
    Hello { version: u32, message: Vec<u8> },
    /// Decryption or frame parsing failed; give up on this flow.
    Failed(&'static str),
}

/// Cheap check: long header, fixed bit, a supported version and packet type Initial.
pub fn is_client_initial(_datagram: &[u8]) -> bool {
    false
}

/// Per-flow state for the client direction of one QUIC connection attempt.
#[derive(Debug, Default)]
pub struct InitialTracker {}

impl InitialTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed one client→server UDP payload (may hold coalesced packets).
    pub fn on_client_datagram(&mut self, _datagram: &[u8]) -> QuicProgress {
        QuicProgress::NotInitial
    }
}
