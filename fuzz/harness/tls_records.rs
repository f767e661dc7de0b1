//! TLS ClientHello reassembled from a client byte stream (records), plus JA4.
use shadowmcp::proto::ja4::{Ja4Transport, ja4, ja4_r};
use shadowmcp::proto::tls::{self, HelloProgress};

pub fn run(data: &[u8]) {
    let _ = tls::looks_like_tls(data);
    match tls::parse_client_hello_records(data) {
        HelloProgress::Complete(hello) => {
            let _ = ja4(&hello, Ja4Transport::Tcp);
            let _ = ja4_r(&hello, Ja4Transport::Quic);
            if let Some(sni) = &hello.sni {
                assert!(sni.len() <= tls::MAX_SNI_LEN);
            }
        }
        HelloProgress::NeedMore => {
            // A stream that still needs bytes is within the reassembly bound.
            assert!(data.len() <= tls::MAX_HELLO_BYTES + tls::MAX_RECORD_LEN + 5);
        }
        HelloProgress::NotTls | HelloProgress::Invalid(_) => {}
    }
}
