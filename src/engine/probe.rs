//! The protocol probe: which application a TCP stream carries, chosen from
//! the client's first bytes (the server's are never needed: every protocol
//! parsed over TCP starts with the client), whatever the port.

use crate::proto::{http1, http2, tls};

/// Empty-line bytes tolerated before an HTTP request.
const MAX_LEADING_BLANK: usize = 64;

/// Bytes of client data collected before choosing a protocol: enough for the
/// TLS record header and an HTTP method token, so 1-byte segments cannot
/// steer the choice.
const PROBE_BYTES: usize = 8;

/// What the client's first bytes show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    Tls,
    Http,
    /// The HTTP/2 client preface (prior knowledge, or a decrypted mirror).
    Http2,
    Dns,
    /// Nothing we parse.
    Nothing,
}

/// The application of a stream whose first client bytes are `probe`
/// (to a server on `server_port`); `None` while more bytes could change the
/// answer.
pub(super) fn choose(probe: &[u8], server_port: u16) -> Option<Choice> {
    // The preface starts like an HTTP/1 request line (`PRI * HTTP/2.0`):
    // tell them apart first, on the whole preface.
    if http2::looks_like_preface(probe) {
        return (probe.len() >= http2::PREFACE.len()).then_some(Choice::Http2);
    }
    // HTTP allows empty lines before a request (RFC 9112 §2.2); look past
    // a bounded run of them so they cannot hide the method.
    let blank = probe
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let text = probe.get(blank..).unwrap_or_default();
    let could_be_more = probe.first() == Some(&0x16)
        || http1::looks_like_request(text)
        || (text.is_empty() && blank <= MAX_LEADING_BLANK)
        || server_port == 53;
    let is_tls = tls::looks_like_tls(probe);
    if !is_tls && text.len() < PROBE_BYTES && could_be_more {
        return None;
    }
    let is_http = blank <= MAX_LEADING_BLANK && http1::looks_like_request(text);
    Some(if is_tls {
        Choice::Tls
    } else if is_http {
        Choice::Http
    } else if server_port == 53 {
        Choice::Dns
    } else {
        Choice::Nothing
    })
}
