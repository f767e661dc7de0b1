//! One ClientHello handshake message (as QUIC CRYPTO frames carry it), plus JA4.
use shadowmcp::proto::ja4::{Ja4Transport, ja4, ja4_r, part_a};
use shadowmcp::proto::tls;

pub fn run(data: &[u8]) {
    if let Ok(hello) = tls::parse_client_hello_message(data) {
        let _ = ja4(&hello, Ja4Transport::Quic);
        let _ = ja4_r(&hello, Ja4Transport::Tcp);
        // JA4 part a is always 10 characters (FoxIO JA4 spec).
        assert_eq!(part_a(&hello, Ja4Transport::Tcp).len(), 10);
    }
}
