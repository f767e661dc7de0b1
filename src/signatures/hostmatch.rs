//! Host-name and path matching for signature entries, without allocation on
//! the lookup path for lower-case names, the usual form (called once per TLS
//! ClientHello / DNS answer / HTTP request; a name with upper-case letters is
//! lower-cased into one small string).
//!
//! Host forms (all compared case-insensitively, one trailing dot ignored):
//! * exact: `mcp.notion.com`;
//! * suffix: `*.mcp.cloudflare.com` matches any name strictly below the suffix
//!   (`a.mcp.cloudflare.com`, `a.b.mcp.cloudflare.com`), never the suffix itself;
//! * placeholder: `bedrock-agentcore.{region}.amazonaws.com`, where `{region}`
//!   stands for exactly one non-empty label. Both forms can be combined.

use crate::proto::host::{DOT_BYTE, NAME_BYTE, NUMERIC_BYTE, UPPER_BYTE, host_byte};
use std::borrow::Cow;

/// Longest host name in dotted text form: 255 octets on the wire minus the
/// length octets (RFC 1035 §2.3.4, RFC 2181 §11).
pub const MAX_HOST_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest published endpoint path accepted in a signature file. Paths are
/// short in practice (`/mcp/v1/http`); the cap bounds memory and match time.
pub const MAX_PATH_LEN: usize = 1024;

/// A host name in lower case: the name itself when it has no upper-case
/// letter (the common case: no copy), else a lower-cased copy. Look-ups in
/// hash maps of lower-case keys then compare it as is.
pub(crate) struct HostBuf<'a> {
    name: Cow<'a, str>,
    /// Where the last label starts.
    last_label: usize,
    /// Only digits and dots: perhaps an IPv4 address rather than a name.
    numeric: bool,
}

impl<'a> HostBuf<'a> {
    /// Normalise `host` (ASCII lower case, one trailing dot removed). `None` for
    /// names that no signature can match: empty, longer than 253 bytes, an empty
    /// label, or a byte outside letters, digits, `-`, `_` and `.` (the loader
    /// rejects such characters in signatures, so no match is lost).
    pub(crate) fn new(host: &'a str) -> Option<HostBuf<'a>> {
        let host = host.strip_suffix('.').unwrap_or(host);
        let bytes = host.as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_HOST_LEN {
            return None;
        }
        // One table load per byte and no branch: the classes of all bytes
        // and of any byte, and whether a dot follows a dot (or starts).
        let (mut all, mut any) = (NAME_BYTE | NUMERIC_BYTE, 0u8);
        let (mut prev_dot, mut empty_label) = (true, false);
        let mut last_label = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let class = host_byte(b);
            all &= class;
            any |= class;
            let dot = class & DOT_BYTE != 0;
            empty_label |= prev_dot & dot;
            prev_dot = dot;
            last_label = if dot { i + 1 } else { last_label };
        }
        // `prev_dot` at the end: "a..", the stripped name still ends with a dot.
        if all & NAME_BYTE == 0 || empty_label || prev_dot {
            return None;
        }
        let upper = any & UPPER_BYTE != 0;
        let name = if upper {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        Some(HostBuf {
            name,
            last_label,
            numeric: all & NUMERIC_BYTE != 0,
        })
    }

    /// Whether the name is an IPv4 address in dotted-decimal form (a name
    /// cannot hold the colons of an IPv6 one).
    pub(crate) fn is_ipv4_literal(&self) -> bool {
        self.numeric && self.as_str().parse::<std::net::Ipv4Addr>().is_ok()
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// The name and its last label (`com` of `mcp.example.com`).
    pub(crate) fn name_and_last_label(&self) -> (&str, &str) {
        let h = self.as_str();
        (h, h.get(self.last_label..).unwrap_or(h))
    }
}

pub(crate) fn is_placeholder(label: &str) -> bool {
    label.len() > 2 && label.starts_with('{') && label.ends_with('}')
}

/// Whether the host entry is a pattern (suffix or placeholder) rather than an
/// exact name.
pub fn is_pattern(host: &str) -> bool {
    host.starts_with("*.") || host.contains('{')
}

/// Match a host pattern against a normalised host name (see [`HostBuf`]);
/// literal labels compare case-insensitively.
pub fn pattern_matches(pattern: &str, host: &str) -> bool {
    let (wild, body) = match pattern.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let body = body.strip_suffix('.').unwrap_or(body);
    let mut pat_labels = body.rsplit('.');
    let mut host_labels = host.rsplit('.');
    loop {
        match (pat_labels.next(), host_labels.next()) {
            (Some(p), Some(h)) => {
                if h.is_empty() || !(is_placeholder(p) || p.eq_ignore_ascii_case(h)) {
                    return false;
                }
            }
            (Some(_), None) => return false,
            // More host labels than the pattern has: only below a `*.` suffix,
            // and never an empty label.
            (None, Some(h)) => return wild && !h.is_empty(),
            (None, None) => return !wild,
        }
    }
}

/// Ordering key for patterns: more labels first, then more literal labels,
/// then a fixed-depth pattern before a `*.` one. The first match in this order
/// is the most specific.
pub(crate) fn pattern_specificity(pattern: &str) -> (usize, usize, bool) {
    let (wild, body) = match pattern.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    let labels = body.split('.').count();
    let literal = body.split('.').filter(|l| !is_placeholder(l)).count();
    (labels, literal, !wild)
}

/// Why a host or path of a signature entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty host")]
    EmptyHost,
    #[error("host longer than {MAX_HOST_LEN} characters")]
    HostTooLong,
    #[error("empty label in host `{0}`")]
    EmptyLabel(String),
    #[error("label `{0}` longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong(String),
    #[error("`*` is only allowed as the whole first label (`*.suffix`) in `{0}`")]
    MisplacedWildcard(String),
    #[error(
        "a {{placeholder}} must be a whole label made of letters, digits, `-` or `_`: `{label}` in `{host}`"
    )]
    BadPlaceholder { label: String, host: String },
    #[error("placeholders are not allowed here: `{0}`")]
    PlaceholderNotAllowed(String),
    #[error("invalid character {ch:?} in host `{host}`")]
    HostChar { ch: char, host: String },
    #[error("pattern `{0}` is too broad: it needs at least two literal labels")]
    TooBroad(String),
    #[error("path `{0}` must start with `/`")]
    RelativePath(String),
    #[error("path longer than {MAX_PATH_LEN} characters")]
    PathTooLong,
    #[error("invalid character {ch:?} in path `{path}` (no spaces, query or fragment)")]
    PathChar { ch: char, path: String },
    #[error("a {{placeholder}} must be a whole path segment: `{segment}` in `{path}`")]
    PathPlaceholder { segment: String, path: String },
}

/// Validate a host entry of a signature file (or an `exclude` entry) and
/// return it normalised (lower case, no trailing dot). `allow_placeholders`
/// is false where only exact and `*.suffix` names make sense.
pub fn validate_host_pattern(raw: &str, allow_placeholders: bool) -> Result<String, PatternError> {
    if raw.is_empty() {
        return Err(PatternError::EmptyHost);
    }
    let lower = raw.to_ascii_lowercase();
    let host = lower.strip_suffix('.').unwrap_or(&lower);
    if host.is_empty() {
        return Err(PatternError::EmptyHost);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(PatternError::HostTooLong);
    }
    let (wild, body) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host),
    };
    let mut labels = 0usize;
    let mut literal = 0usize;
    for label in body.split('.') {
        labels += 1;
        if label.is_empty() {
            return Err(PatternError::EmptyLabel(raw.into()));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(PatternError::LabelTooLong(label.into()));
        }
        if label.contains('*') {
            return Err(PatternError::MisplacedWildcard(raw.into()));
        }
        if label.contains('{') || label.contains('}') {
            let name = label
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .filter(|n| !n.is_empty() && n.bytes().all(is_name_byte));
            if name.is_none() {
                return Err(PatternError::BadPlaceholder {
                    label: label.into(),
                    host: raw.into(),
                });
            }
            if !allow_placeholders {
                return Err(PatternError::PlaceholderNotAllowed(raw.into()));
            }
            continue;
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
        {
            return Err(PatternError::HostChar {
                ch: bad,
                host: raw.into(),
            });
        }
        literal += 1;
    }
    // `*.com` or `{x}.com` would match a whole TLD: refuse patterns that are
    // not anchored by at least two literal labels.
    if (wild || literal < labels) && literal < 2 {
        return Err(PatternError::TooBroad(raw.into()));
    }
    Ok(host.to_string())
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The label-aware token test: `token` equals a whole label or a whole
/// dash-separated part of a label. `host` must be normalised.
pub fn has_token(host: &str, token: &str) -> bool {
    !token.is_empty()
        && host
            .split('.')
            .flat_map(|label| label.split('-'))
            .any(|part| part.eq_ignore_ascii_case(token))
}

/// Whether a request path hits a published endpoint path:
/// * exact match (`/mcp`);
/// * the request continues with `/` or `?` after the published path (`/mcp`
///   matches `/mcp/`, `/mcp/x` and `/mcp?x=1`, not `/mcpx`);
/// * a published path ending in `/` is a prefix (`/api/mcp/` matches
///   `/api/mcp/s/…`, not `/api/mcp`); `/` matches every path;
/// * a `{name}` segment matches exactly one non-empty segment.
///
/// The request's query and fragment are ignored; an absolute-form target
/// (`http://host/mcp`, RFC 9112 §3.2.2) is reduced to its path.
pub fn path_matches_one(published: &str, request: &str) -> bool {
    let request = strip_absolute_form(request);
    let request = request.split(['?', '#']).next().unwrap_or(request);
    if !request.starts_with('/') || !published.starts_with('/') {
        return false;
    }
    let (prefix, body) = match published.strip_suffix('/') {
        Some(rest) => (true, rest),
        None => (false, published),
    };
    let mut req_segs = request.split('/');
    for p in body.split('/') {
        match req_segs.next() {
            Some(r) if p == r => {}
            Some(r) if is_placeholder(p) && !r.is_empty() => {}
            _ => return false,
        }
    }
    // A trailing-slash path needs at least one more (possibly empty) segment:
    // `/api/mcp/` itself yields ["", "api", "mcp", ""].
    !prefix || req_segs.next().is_some()
}

fn strip_absolute_form(target: &str) -> &str {
    let rest = if let Some(r) = target.strip_prefix("http://") {
        r
    } else if let Some(r) = target.strip_prefix("https://") {
        r
    } else {
        return target;
    };
    match rest.find(['/', '?']) {
        Some(i) if rest.as_bytes().get(i) == Some(&b'/') => rest.get(i..).unwrap_or("/"),
        // `http://host` or `http://host?q`: the path is `/` (RFC 9112 §3.2.2).
        _ => "/",
    }
}

/// Validate a published path of a signature entry.
pub fn validate_path(path: &str) -> Result<(), PatternError> {
    if !path.starts_with('/') {
        return Err(PatternError::RelativePath(path.into()));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PatternError::PathTooLong);
    }
    if let Some(c) = path
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#'))
    {
        return Err(PatternError::PathChar {
            ch: c,
            path: path.into(),
        });
    }
    for seg in path.split('/') {
        if (seg.contains('{') || seg.contains('}'))
            && !(is_placeholder(seg)
                && seg
                    .get(1..seg.len() - 1)
                    .is_some_and(|n| n.bytes().all(is_name_byte)))
        {
            return Err(PatternError::PathPlaceholder {
                segment: seg.into(),
                path: path.into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(h: &str) -> Option<String> {
        HostBuf::new(h).map(|b| b.as_str().to_string())
    }

    /// The byte-by-byte rules `HostBuf::new` implements with its class
    /// table, written plainly: the reference for the property test below.
    fn reference_norm(host: &str) -> Option<String> {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return None;
        }
        let ok_bytes = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        let ok_labels = host.split('.').all(|l| !l.is_empty());
        (ok_bytes && ok_labels).then(|| host.to_ascii_lowercase())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Names from an alphabet with every byte class (and bytes outside
        /// them): the table-driven normalisation and its last label agree
        /// with the plain rules.
        #[test]
        fn hostbuf_agrees_with_the_plain_rules(
            chars in proptest::collection::vec(
                proptest::sample::select(vec!['a', 'Z', '0', '-', '_', '.', ':', ' ', 'ü', '\0']),
                0..24,
            )
        ) {
            let h: String = chars.into_iter().collect();
            let buf = HostBuf::new(&h);
            let got = buf.as_ref().map(|b| b.as_str().to_string());
            proptest::prop_assert_eq!(&got, &reference_norm(&h), "{:?}", h);
            if let Some(b) = buf {
                let (name, last) = b.name_and_last_label();
                proptest::prop_assert_eq!(last, name.rsplit('.').next().unwrap_or(name));
            }
        }
    }

    #[test]
    fn hostbuf_normalises_and_rejects() {
        assert_eq!(norm("MCP.Notion.COM.").as_deref(), Some("mcp.notion.com"));
        assert_eq!(norm("a_b.example").as_deref(), Some("a_b.example"));
        for bad in [
            "", ".", "..", "a..b", ".a", "a.b..", "a b.com", "ü.com", "a/b", "a:443",
        ] {
            assert_eq!(norm(bad), None, "{bad:?}");
        }
        let long = "a.".repeat(126) + "a"; // 253 bytes
        assert_eq!(long.len(), 253);
        assert!(norm(&long).is_some());
        assert!(norm(&(long.clone() + ".")).is_some());
        assert!(norm(&format!("b{long}")).is_none());
    }

    #[test]
    fn suffix_and_placeholder_patterns() {
        let p = "*.mcp.cloudflare.com";
        assert!(pattern_matches(p, "a.mcp.cloudflare.com"));
        assert!(pattern_matches(p, "a.b.mcp.cloudflare.com"));
        assert!(!pattern_matches(p, "mcp.cloudflare.com"));
        assert!(!pattern_matches(p, "xmcp.cloudflare.com"));
        assert!(!pattern_matches(p, "cloudflare.com"));
        let q = "bedrock-agentcore.{region}.amazonaws.com";
        assert!(pattern_matches(
            q,
            "bedrock-agentcore.us-east-1.amazonaws.com"
        ));
        assert!(!pattern_matches(q, "bedrock-agentcore.amazonaws.com"));
        assert!(!pattern_matches(q, "bedrock-agentcore.a.b.amazonaws.com"));
        assert!(!pattern_matches(
            q,
            "x.bedrock-agentcore.eu-west-1.amazonaws.com"
        ));
        let r = "*.{x}.example.com";
        assert!(pattern_matches(r, "a.b.example.com"));
        assert!(!pattern_matches(r, "b.example.com"));
    }

    #[test]
    fn specificity_orders_longer_first() {
        assert!(
            pattern_specificity("{g}.gateway.bedrock-agentcore.{r}.amazonaws.com")
                > pattern_specificity("bedrock-agentcore.{r}.amazonaws.com")
        );
        assert!(pattern_specificity("*.a.b.c") > pattern_specificity("*.b.c"));
        assert!(pattern_specificity("x.b.c") > pattern_specificity("*.b.c"));
    }

    #[test]
    fn host_validation() {
        assert_eq!(
            validate_host_pattern("MCP.Example.com.", true).unwrap(),
            "mcp.example.com"
        );
        assert!(validate_host_pattern("*.workers.dev", true).is_ok());
        assert!(validate_host_pattern("{g}.gw.{r}.amazonaws.com", true).is_ok());
        for bad in [
            "",
            ".",
            "a..b",
            "*.com",
            "{x}.com",
            "a.*.com",
            "*x.example.com",
            "a{r}.example.com",
            "{}.example.com",
            "{a.b}.example.com",
            "exa mple.com",
            "https://x.com",
            "x.com/mcp",
            "x.com:443",
            "ü.example",
        ] {
            assert!(validate_host_pattern(bad, true).is_err(), "{bad:?}");
        }
        assert!(validate_host_pattern("{r}.a.example.com", false).is_err());
        assert!(validate_host_pattern(&"a".repeat(64), true).is_err());
    }

    #[test]
    fn token_is_label_aware() {
        for yes in [
            "mcp.x.com",
            "x-mcp.y.io",
            "mcp-server.z.dev",
            "a.b-mcp-c.d",
            "x.mcp",
        ] {
            assert!(has_token(yes, "mcp"), "{yes}");
        }
        for no in [
            "mcpherson.edu",
            "smcp.com",
            "mcpe.net",
            "amcp.org",
            "mcp_x.com",
            "m.c.p",
        ] {
            assert!(!has_token(no, "mcp"), "{no}");
        }
        assert!(!has_token("mcp.x.com", ""));
    }

    #[test]
    fn paths() {
        let m = path_matches_one;
        assert!(m("/mcp", "/mcp"));
        assert!(m("/mcp", "/mcp/"));
        assert!(m("/mcp", "/mcp/x"));
        assert!(m("/mcp", "/mcp?x=1"));
        assert!(m("/mcp", "/mcp#f"));
        assert!(!m("/mcp", "/mcpx"));
        assert!(!m("/mcp", "/"));
        assert!(!m("/mcp", "/MCP"));
        assert!(!m("/mcp", "mcp"));
        assert!(!m("/mcp", ""));
        assert!(m("/api/mcp/", "/api/mcp/s/secret/mcp"));
        assert!(m("/api/mcp/", "/api/mcp/"));
        assert!(!m("/api/mcp/", "/api/mcp"));
        assert!(!m("/api/mcp/", "/api/mcpx/"));
        assert!(m("/", "/"));
        assert!(m("/", "/anything?q"));
        assert!(m("/{id}/sse", "/abc/sse"));
        assert!(!m("/{id}/sse", "//sse"));
        assert!(!m("/{id}/sse", "/sse"));
        assert!(m(
            "/runtimes/{arn}/invocations",
            "/runtimes/arn%3Aaws%2Fx/invocations?qualifier=D"
        ));
        assert!(m("/mcp", "http://h.example/mcp?x"));
        assert!(m("/", "https://h.example"));
        assert!(!m("/mcp", "https://h.example?/mcp"));
    }

    #[test]
    fn path_validation() {
        assert!(validate_path("/mcp").is_ok());
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/{API_KEY}/sse").is_ok());
        for bad in [
            "", "mcp", "/mcp?x", "/m cp", "/a{b}/c", "/{}/x", "/{a/b}", "/x#y",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?}");
        }
    }
}
