//! The allowlist of sanctioned MCP servers: one entry per line — exact host,
//! `*.suffix`, IP address or CIDR — with `#` comments and blank lines.
//!
//! ```text
//! # sanctioned servers
//! mcp.notion.com          # exact name (case-insensitive, trailing dot ignored)
//! *.mcp.example.com       # any name strictly below the suffix, not the suffix itself
//! 192.0.2.10              # one address
//! 2001:db8::/32           # a network (CIDR)
//! ```
//!
//! Look-up cost: exact names and suffixes are in `FxHashSet`-like maps (a name
//! is checked, then each of its parent suffixes: at most 127 probes for a
//! 253-byte name); single addresses are in a hash map; networks are scanned
//! linearly, which is fine for the thousands of entries an allowlist holds
//! (the longest prefix wins, so the reported entry does not depend on order).

use std::fmt;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use rustc_hash::FxHashMap;

use super::hostmatch::{HostBuf, MAX_HOST_LEN, MAX_LABEL_LEN};

/// Allowlist files larger than this are refused (bounded memory): 8 MiB is
/// hundreds of thousands of entries.
pub const MAX_ALLOWLIST_BYTES: u64 = 8 * 1024 * 1024;
/// At most this many errors are collected; one summary error follows.
pub const MAX_ERRORS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for AllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: about the file itself (missing, unreadable, too large).
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    /// Entry texts as written (comment and surrounding space removed); the
    /// maps below index into it.
    entries: Vec<String>,
    /// Lower-cased exact host -> entry.
    exact: FxHashMap<Box<str>, usize>,
    /// Lower-cased suffix (without `*.`) -> entry.
    suffixes: FxHashMap<Box<str>, usize>,
    addrs: FxHashMap<IpAddr, usize>,
    nets: Vec<(IpNet, usize)>,
    /// What was read otherwise than written (a URL taken as its host), for
    /// the operator; bounded.
    pub notes: Vec<String>,
}

impl Allowlist {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn load(path: &Path) -> Result<Allowlist, Vec<AllowlistError>> {
        let origin = path.display().to_string();
        let fail = |message: String| {
            vec![AllowlistError {
                file: origin.clone(),
                line: 0,
                message,
            }]
        };
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let mut buf = Vec::new();
        file.take(MAX_ALLOWLIST_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if buf.len() as u64 > MAX_ALLOWLIST_BYTES {
            return Err(fail(format!(
                "file larger than {MAX_ALLOWLIST_BYTES} bytes"
            )));
        }
        let text = String::from_utf8(buf).map_err(|e| {
            fail(format!(
                "not valid UTF-8 (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Self::parse(&text, &origin)
    }

    /// `origin` names the source in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Allowlist, Vec<AllowlistError>> {
        let mut list = Allowlist::default();
        let mut errors: Vec<AllowlistError> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n.saturating_add(1);
            let entry = raw.split('#').next().unwrap_or("").trim();
            if entry.is_empty() {
                continue;
            }
            let entry = match url_host(entry) {
                Some(host) => {
                    if list.notes.len() < MAX_ERRORS {
                        list.notes.push(format!(
                            "{origin}:{line}: `{entry}` is a URL: its host `{host}` is allowed"
                        ));
                    }
                    host
                }
                None => entry,
            };
            if let Err(message) = list.add(entry) {
                if errors.len() < MAX_ERRORS {
                    errors.push(AllowlistError {
                        file: origin.to_string(),
                        line,
                        message: message.to_string(),
                    });
                } else if errors.len() == MAX_ERRORS {
                    errors.push(AllowlistError {
                        file: origin.to_string(),
                        line,
                        message: format!("too many errors; stopped after {MAX_ERRORS}"),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(list)
        } else {
            Err(errors)
        }
    }

    fn add(&mut self, entry: &str) -> Result<(), EntryError> {
        let idx = self.entries.len();
        // Addresses first: `::1` or `10.0.0.0/8` are not host names.
        if let Ok(ip) = entry.parse::<IpAddr>() {
            self.addrs.entry(ip).or_insert(idx);
        } else if entry.contains('/') {
            let net = entry
                .parse::<IpNet>()
                .map_err(|_| EntryError::Cidr(entry.into()))?;
            // Store the network address form so `10.1.2.3/8` matches like `10.0.0.0/8`.
            self.nets.push((net.trunc(), idx));
        } else if entry.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            // `10.1.2.300` is a mistyped address, not a host name.
            return Err(EntryError::Address(entry.into()));
        } else if let Some(suffix) = entry.strip_prefix("*.") {
            let name = validate_name(suffix).map_err(|m| EntryError::Suffix(entry.into(), m))?;
            self.suffixes.entry(name.into_boxed_str()).or_insert(idx);
        } else {
            let name = validate_name(entry).map_err(|m| EntryError::Name(entry.into(), m))?;
            self.exact.entry(name.into_boxed_str()).or_insert(idx);
        }
        self.entries.push(entry.to_string());
        Ok(())
    }

    /// The entry (as written) that sanctions this server, by name or address.
    /// Names are tried first (exact, then the nearest `*.suffix`), then the
    /// address (exact, then the longest matching prefix).
    pub fn matches(&self, name: Option<&str>, ip: Option<IpAddr>) -> Option<&str> {
        let by_name = name.and_then(HostBuf::new).and_then(|buf| {
            let h = buf.as_str();
            if let Some(&i) = self.exact.get(h) {
                return Some(i);
            }
            // Walk the parents: a.b.c -> b.c -> c (strictly below the suffix).
            let mut rest = h;
            while let Some((_, parent)) = rest.split_once('.') {
                if let Some(&i) = self.suffixes.get(parent) {
                    return Some(i);
                }
                rest = parent;
            }
            None
        });
        let idx = by_name.or_else(|| {
            let ip = ip.map(canonical_ip)?;
            self.addrs.get(&ip).copied().or_else(|| {
                self.nets
                    .iter()
                    .filter(|(net, _)| net.contains(&ip))
                    .max_by_key(|(net, _)| net.prefix_len())
                    .map(|&(_, i)| i)
            })
        })?;
        self.entries.get(idx).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The host of an entry written as a URL (`https://mcp.notion.com/mcp`),
/// without scheme, credentials, port and path; `None` for other entries.
fn url_host(entry: &str) -> Option<&str> {
    let (_, rest) = entry.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.split(':').next().unwrap_or(host),
    };
    (!host.is_empty()).then_some(host)
}

/// Compare IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, seen on dual-stack
/// sockets) as the IPv4 address they carry.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why an allowlist line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum EntryError {
    #[error("invalid CIDR `{0}`")]
    Cidr(String),
    #[error("invalid IP address `{0}`")]
    Address(String),
    #[error("invalid suffix `{0}`: {1}")]
    Suffix(String, NameError),
    #[error("invalid entry `{0}`: {1}")]
    Name(String, NameError),
}

/// Why a name is not a host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum NameError {
    #[error("empty name")]
    Empty,
    #[error("longer than {MAX_HOST_LEN} characters")]
    TooLong,
    #[error("empty label")]
    EmptyLabel,
    #[error("label longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong,
    #[error("invalid character {0:?}")]
    Char(char),
}

/// Lower-cased host name, or why it is not one: letters, digits, `-`, `_`,
/// labels of 1..=63 characters, at most 253 characters (RFC 1035 §2.3.4).
fn validate_name(raw: &str) -> Result<String, NameError> {
    let name = raw.strip_suffix('.').unwrap_or(raw);
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_HOST_LEN {
        return Err(NameError::TooLong);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong);
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(NameError::Char(c));
        }
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# sanctioned MCP servers
mcp.notion.com
  MCP.Linear.APP.   # trailing dot, mixed case
*.mcp.example.com
192.0.2.10
2001:db8::1
10.0.0.0/8
10.20.0.0/16        # more specific network
2001:db8:100::/48

";

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn parses_and_matches() {
        let a = Allowlist::parse(SAMPLE, "allow.txt").unwrap();
        assert_eq!(a.len(), 8);
        assert_eq!(
            a.matches(Some("mcp.notion.com"), None),
            Some("mcp.notion.com")
        );
        assert_eq!(
            a.matches(Some("MCP.NOTION.COM."), None),
            Some("mcp.notion.com")
        );
        assert_eq!(
            a.matches(Some("mcp.linear.app"), None),
            Some("MCP.Linear.APP.")
        );
        assert_eq!(a.matches(Some("notion.com"), None), None);
        assert_eq!(a.matches(Some("x.mcp.notion.com"), None), None);
        // suffix: strictly below
        assert_eq!(
            a.matches(Some("a.mcp.example.com"), None),
            Some("*.mcp.example.com")
        );
        assert_eq!(
            a.matches(Some("a.b.mcp.example.com"), None),
            Some("*.mcp.example.com")
        );
        assert_eq!(a.matches(Some("mcp.example.com"), None), None);
        assert_eq!(a.matches(Some("xmcp.example.com"), None), None);
        // addresses
        assert_eq!(a.matches(None, ip("192.0.2.10")), Some("192.0.2.10"));
        assert_eq!(a.matches(None, ip("::ffff:192.0.2.10")), Some("192.0.2.10"));
        assert_eq!(a.matches(None, ip("192.0.2.11")), None);
        assert_eq!(a.matches(None, ip("2001:db8::1")), Some("2001:db8::1"));
        assert_eq!(a.matches(None, ip("10.1.2.3")), Some("10.0.0.0/8"));
        assert_eq!(a.matches(None, ip("10.20.3.4")), Some("10.20.0.0/16"));
        assert_eq!(a.matches(None, ip("11.0.0.1")), None);
        assert_eq!(
            a.matches(None, ip("2001:db8:100:1::5")),
            Some("2001:db8:100::/48")
        );
        assert_eq!(a.matches(None, ip("2001:db8:101::5")), None);
        // a name that does not match falls back to the address
        assert_eq!(
            a.matches(Some("other.example"), ip("10.0.0.1")),
            Some("10.0.0.0/8")
        );
        assert_eq!(
            a.matches(Some("mcp.notion.com"), ip("10.0.0.1")),
            Some("mcp.notion.com")
        );
        assert_eq!(a.matches(None, None), None);
    }

    #[test]
    fn non_canonical_cidr_matches_its_network() {
        let a = Allowlist::parse("10.1.2.3/8\n", "x").unwrap();
        assert_eq!(a.matches(None, ip("10.200.0.1")), Some("10.1.2.3/8"));
    }

    #[test]
    fn bad_lines_are_all_reported_with_line_numbers() {
        let text = "\
ok.example.com
bad host.com
# comment
10.0.0.0/33
*.
a..b
*.*.example.com
300.1.1.1/8
-x/y
good.example # fine
é.example
";
        let errs = Allowlist::parse(text, "list.txt").unwrap_err();
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4, 5, 6, 7, 8, 9, 11]);
        assert!(errs.iter().all(|e| e.file == "list.txt"));
        assert_eq!(
            errs[0].to_string(),
            format!("list.txt:2: {}", errs[0].message)
        );
        assert!(errs[1].message.contains("CIDR"), "{}", errs[1].message);
    }

    #[test]
    fn empty_and_comment_only() {
        let a = Allowlist::parse("\n  \n# x\n\t# y\n", "x").unwrap();
        assert!(a.is_empty());
        assert_eq!(a.matches(Some("a.b"), ip("1.2.3.4")), None);
        assert!(Allowlist::empty().is_empty());
    }

    #[test]
    fn crlf_and_trailing_comment() {
        let a = Allowlist::parse("a.example\r\nb.example#c\r\n", "x").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a.matches(Some("b.example"), None), Some("b.example"));
    }

    #[test]
    fn hostile_names_do_not_panic() {
        let a = Allowlist::parse(SAMPLE, "x").unwrap();
        let long = "a.".repeat(300);
        for n in [
            "",
            ".",
            "..",
            "\u{0}",
            "é",
            &long,
            "a.mcp.example.com..",
            ".mcp.example.com",
        ] {
            assert_eq!(a.matches(Some(n), None), None, "{n:?}");
        }
        let max = format!("{}.mcp.example.com", "a.".repeat(117) + "a");
        assert!(max.len() <= 253);
        assert_eq!(a.matches(Some(&max), None), Some("*.mcp.example.com"));
    }

    #[test]
    fn load_from_file_and_errors() {
        let dir = std::env::temp_dir().join(format!("shadowmcp-allow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("allow.txt");
        std::fs::write(&p, "mcp.notion.com\nbad name\n").unwrap();
        let errs = Allowlist::load(&p).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].line, 2);
        assert_eq!(errs[0].file, p.display().to_string());
        std::fs::write(&p, "mcp.notion.com\n").unwrap();
        assert_eq!(Allowlist::load(&p).unwrap().len(), 1);
        std::fs::write(&p, [b'a', 0xff, b'\n']).unwrap();
        assert!(
            Allowlist::load(&p).unwrap_err()[0]
                .message
                .contains("UTF-8")
        );
        let missing = Allowlist::load(&dir.join("nope.txt")).unwrap_err();
        assert_eq!(missing[0].line, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn urls_give_their_host_and_address_typos_are_errors() {
        let a = Allowlist::parse(
            "https://mcp.notion.com/mcp\nhttp://user@[2001:db8::7]:8080/x\n",
            "allow.txt",
        )
        .expect("URLs are accepted");
        assert!(a.matches(Some("mcp.notion.com"), None).is_some());
        assert!(
            a.matches(None, Some("2001:db8::7".parse().unwrap()))
                .is_some()
        );
        assert_eq!(a.notes.len(), 2);
        assert!(a.notes[0].contains("allow.txt:1"), "{:?}", a.notes);
        let errs = Allowlist::parse("ok.example\n10.1.2.300\n", "allow.txt").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "allow.txt:2: invalid IP address `10.1.2.300`"
        );
        let missing = Allowlist::load(Path::new("/nonexistent/allow.txt")).unwrap_err();
        assert!(!missing[0].to_string().contains(":0:"), "{}", missing[0]);
    }
}
