//! JA4 TLS client fingerprint (FoxIO, BSD-3-Clause part of JA4+ only).
//!
//! STUB: the public API below is the contract; the implementation is pending.

use super::tls::ClientHello;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ja4Transport {
    Tcp,
    Quic,
}

/// `a_b_c`, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
pub fn ja4(_hello: &ClientHello, _transport: Ja4Transport) -> String {
    String::new()
}
