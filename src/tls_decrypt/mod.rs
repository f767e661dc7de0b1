//! Decryption of TLS from key logs, offline and live.
//!
//! - [`keylog`]: NSS key log lines (`SSLKEYLOGFILE`) into a bounded
//!   [`KeyTable`] shared by workers; a [`KeyLogFollower`] for a file that
//!   grows; the key-log bytes of pcapng Decryption Secrets Blocks.
//! - [`session`]: [`TlsDecryptor`], one per TCP connection, fed each
//!   direction's reassembled bytes, handing back plaintext.
//! - [`schedule`]: suites and key schedules (TLS 1.3 HKDF, TLS 1.2 PRF) and
//!   AEAD record opening, all on `ring`.
//! - [`record`]: record framing, handshake reassembly, hello fields.
//!
//! QUIC (HTTP/3) and TLS 1.2 CBC suites are not decrypted; see
//! docs/decryption.md.

pub mod keylog;
pub mod record;
pub mod schedule;
pub mod session;

pub use keylog::{
    FollowerHandle, KeyLogError, KeyLogFollower, KeyTable, KeyTableStats, LoadReport,
};
pub use schedule::{CipherSuite, TlsVersion};
pub use session::{
    DecryptContext, DecryptCounters, DecryptLimits, DecryptStats, Dir, DoneReason, HoldBudget,
    TlsDecryptor, TlsEvent,
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Decryptors move with their flows between threads; the context and
    /// the key table are shared by every worker.
    #[test]
    fn thread_bounds() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        send::<TlsDecryptor>();
        shared::<DecryptContext>();
        shared::<KeyTable>();
        send::<KeyLogFollower>();
    }
}
