//! What a TLS or QUIC ClientHello tells about a connection, as structured
//! fields of a finding (the same facts are also in the free-text evidence).

use crate::proto::tls::{ClientHello, is_grease};
use serde::{Deserialize, Serialize};

/// ALPN names kept per finding, and their longest length in characters:
/// enough for every registered protocol id, small against a hostile hello.
pub const MAX_ALPN: usize = 8;
const MAX_ALPN_CHARS: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsInfo {
    /// The SNI host name as sent (lower-cased); the ECH public name when the
    /// real name is hidden; `None` without SNI.
    pub server_name: Option<String>,
    /// ALPN protocol names offered, in wire order (at most [`MAX_ALPN`]).
    pub alpn: Vec<String>,
    /// JA4 fingerprint of the ClientHello.
    pub ja4: Option<String>,
    /// Highest protocol version the client offered (`1.3`, `1.2`, ...): the
    /// ClientHello does not say which one the server chose.
    pub version: Option<String>,
}

impl TlsInfo {
    /// The fields of a parsed ClientHello; `ja4` as the engine computed it.
    pub fn from_client_hello(hello: &ClientHello, ja4: impl Into<String>) -> TlsInfo {
        TlsInfo {
            server_name: hello.sni.clone(),
            alpn: hello
                .alpn
                .iter()
                .take(MAX_ALPN)
                .map(|a| a.chars().take(MAX_ALPN_CHARS).collect())
                .collect(),
            ja4: Some(ja4.into()),
            version: offered_version(hello).map(str::to_owned),
        }
    }
}

/// `supported_versions` (TLS 1.3, RFC 8446 §4.2.1) when present, else the
/// legacy version field; GREASE values ignored.
fn offered_version(hello: &ClientHello) -> Option<&'static str> {
    let best = hello
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(hello.legacy_version);
    match best {
        0x0304 => Some("1.3"),
        0x0303 => Some("1.2"),
        0x0302 => Some("1.1"),
        0x0301 => Some("1.0"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefers_supported_versions_and_skips_grease() {
        let mut h = ClientHello {
            legacy_version: 0x0303,
            supported_versions: vec![0x3a3a, 0x0304, 0x0303],
            alpn: (0..20).map(|i| format!("p{i}")).collect(),
            sni: Some("mcp.example.com".into()),
            ..Default::default()
        };
        let t = TlsInfo::from_client_hello(&h, "t13d");
        assert_eq!(t.version.as_deref(), Some("1.3"));
        assert_eq!(t.alpn.len(), MAX_ALPN);
        assert_eq!(t.server_name.as_deref(), Some("mcp.example.com"));
        h.supported_versions.clear();
        assert_eq!(
            TlsInfo::from_client_hello(&h, "x").version.as_deref(),
            Some("1.2")
        );
        h.legacy_version = 0x0300;
        assert_eq!(TlsInfo::from_client_hello(&h, "x").version, None);
    }
}
