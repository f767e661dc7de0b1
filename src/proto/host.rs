//! Host names as they appear in `Host` headers, HTTP/2 `:authority`, SNI
//! and DNS: the byte classes of a name, and the name part of a Host value
//! (without port, IPv6 brackets and trailing dots), checked.

use std::net::IpAddr;

/// Byte classes of host names, as bits of [`host_byte`]: a byte a name may
/// have (letter, digit, `-`, `_`, `.`), an upper-case letter, a dot, a byte
/// of a dotted-decimal address (digit or dot), a colon.
pub const NAME_BYTE: u8 = 1;
pub const UPPER_BYTE: u8 = 2;
pub const DOT_BYTE: u8 = 4;
pub const NUMERIC_BYTE: u8 = 8;
pub const COLON_BYTE: u8 = 16;

const HOST_BYTES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            NAME_BYTE | NUMERIC_BYTE
        } else if c.is_ascii_lowercase() || c == b'-' || c == b'_' {
            NAME_BYTE
        } else if c.is_ascii_uppercase() {
            NAME_BYTE | UPPER_BYTE
        } else if c == b'.' {
            NAME_BYTE | DOT_BYTE | NUMERIC_BYTE
        } else if c == b':' {
            COLON_BYTE
        } else {
            0
        };
        b += 1;
    }
    t
};

/// The class bits of one byte of a host name (see [`NAME_BYTE`]).
#[inline]
pub fn host_byte(b: u8) -> u8 {
    HOST_BYTES[usize::from(b)]
}

/// A Host value (or `:authority`) without port, lower-cased; `None` for IP literals (attributed by DNS instead).
pub fn host_without_port(host: &str) -> Option<String> {
    host_name(host).map(str::to_ascii_lowercase)
}

/// The name part of a Host value: without the port, the brackets of an
/// IPv6 literal and trailing dots; not checked.
pub fn host_part(host: &str) -> &str {
    // Header values come without surrounding blanks: `trim` (which decodes
    // characters, for Unicode white space) only when an end byte could be one.
    let ends_plain = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_graphic());
    let h = if ends_plain(host.as_bytes().first()) && ends_plain(host.as_bytes().last()) {
        host
    } else {
        host.trim()
    };
    let name = if let Some(rest) = h.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        // A port is the digits after the last colon.
        match h.as_bytes().iter().rposition(|&b| b == b':') {
            Some(c)
                if h.as_bytes()
                    .get(c + 1..)
                    .is_some_and(|p| p.iter().all(u8::is_ascii_digit)) =>
            {
                h.get(..c).unwrap_or(h)
            }
            _ => h,
        }
    };
    if name.ends_with('.') {
        name.trim_end_matches('.')
    } else {
        name
    }
}

/// [`host_without_port`] before lower-casing, borrowed: a checked name
/// (`None` for an address or a byte no name has).
pub fn host_name(host: &str) -> Option<&str> {
    let name = host_part(host);
    if name.is_empty() || name.len() > 253 {
        return None;
    }
    // One pass: the characters a name may have, and whether it could be an
    // address (only digits and dots, or a colon).
    let (mut all, mut any) = (NAME_BYTE | NUMERIC_BYTE, 0);
    for b in name.bytes() {
        let class = host_byte(b);
        all &= class;
        any |= class;
    }
    let (valid, numeric) = (all & NAME_BYTE != 0, all & NUMERIC_BYTE != 0);
    let colon = any & COLON_BYTE != 0;
    if (numeric || colon) && name.parse::<IpAddr>().is_ok() {
        return None;
    }
    valid.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_strips_the_port_and_rejects_addresses_and_odd_names() {
        let cases: &[(&str, Option<&str>)] = &[
            ("mcp.Example.com", Some("mcp.Example.com")),
            (" mcp.example.com:8080 ", Some("mcp.example.com")),
            ("mcp.example.com.", Some("mcp.example.com")),
            ("mcp.example.com.:443", Some("mcp.example.com")),
            ("mcp.example.com:", Some("mcp.example.com")),
            ("localhost", Some("localhost")),
            ("under_score.example", Some("under_score.example")),
            // Not a port: the colon stays, and a colon is not a name character.
            ("mcp.example.com:http", None),
            ("10.1.2.3", None),
            ("10.1.2.3:8080", None),
            ("[::1]:8080", None),
            ("[2001:db8::1]", None),
            ("::1", None),
            // Digits and dots that are not an address are a name.
            ("1.2.3", Some("1.2.3")),
            ("", None),
            (":80", None),
            ("...", None),
            ("bad host", None),
            ("caf\u{e9}.example", None),
        ];
        for (input, want) in cases {
            assert_eq!(host_name(input), *want, "{input:?}");
        }
        let long = "a".repeat(254);
        assert_eq!(host_name(&long), None);
        assert_eq!(host_name(&long[..253]), Some(&long[..253]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// The name part, taken with fast paths for the usual values, is
        /// the one of the plain rules (trim, brackets, port, trailing dots).
        #[test]
        fn host_part_agrees_with_the_plain_rules(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "1", ".", ":", "80", "[", "]", " ", "\t", "\u{2003}", "\u{a0}", "é",
                ]),
                0..10,
            ),
        ) {
            let host = pieces.concat();
            let h = host.trim();
            let name = if let Some(rest) = h.strip_prefix('[') {
                rest.split(']').next().unwrap_or("")
            } else {
                match memchr::memrchr(b':', h.as_bytes()) {
                    Some(c) if h.as_bytes()[c + 1..].iter().all(u8::is_ascii_digit) => &h[..c],
                    _ => h,
                }
            };
            proptest::prop_assert_eq!(host_part(&host), name.trim_end_matches('.'));
        }
    }
}
