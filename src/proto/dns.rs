//! DNS messages (RFC 1035) over UDP and TCP: questions and the answers that
//! matter for attribution (A, AAAA, CNAME, SVCB/HTTPS).
//!
//! The input is untrusted: every read is bounds-checked, compression pointers
//! must point strictly backwards (so decoding always terminates) and are also
//! hop-limited, and every collection is capped (see the `MAX_*` constants).
//! Only the header, the question section and the first [`MAX_ANSWERS`]
//! answer records are read; authority and additional sections are ignored
//! because attribution only needs what the client asked and what it got.
//!
//! Strictness: a message whose header promises more than it contains, or
//! whose known records (A, AAAA, CNAME, SVCB, HTTPS) are internally
//! inconsistent (an A record whose RDLENGTH is not 4, a CNAME target that
//! overruns its RDATA, an SvcParam overrunning the record ...) is rejected as
//! a whole: such a message comes from a broken or hostile sender, and
//! attributing traffic with half of it would be guesswork.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_TXT: u16 = 16;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SVCB: u16 = 64;
pub const TYPE_HTTPS: u16 = 65;

/// CLASS IN (RFC 1035 §3.2.4). A/AAAA layouts are defined for IN only.
pub const CLASS_IN: u16 = 1;

/// Fixed header size (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Questions decoded per message; the rest are skipped without decoding.
/// Real queries carry exactly one (RFC 9619 makes QDCOUNT > 1 an error).
pub const MAX_QUESTIONS: usize = 32;
/// Answer records decoded per message. A CNAME chain plus a full A/AAAA
/// RRset fits well below this; later records are not read.
pub const MAX_ANSWERS: usize = 64;
/// Compression pointers followed while decoding one name (RFC 1035 §4.1.4
/// sets no limit; real encoders need a handful).
pub const MAX_POINTER_HOPS: usize = 64;
/// Maximum label length (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Maximum name length in wire octets, length octets and root included
/// (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;
/// CNAME links followed backwards from an address to the question name.
pub const MAX_CNAME_DEPTH: usize = 16;
/// Entries returned by [`DnsMessage::resolved_addresses`].
pub const MAX_RESOLVED: usize = 64;
/// ALPN ids kept per SVCB record (RFC 9460 §7.1); browsers publish 1–3.
pub const MAX_ALPN: usize = 8;
/// ipv4hint / ipv6hint addresses kept per SVCB record (RFC 9460 §7.3).
pub const MAX_HINTS: usize = 16;

/// SvcParamKeys (RFC 9460 §14.3.2).
const SVC_KEY_ALPN: u16 = 1;
const SVC_KEY_IPV4HINT: u16 = 4;
const SVC_KEY_ECH: u16 = 5;
const SVC_KEY_IPV6HINT: u16 = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsError {
    /// The message ended before a field that its header or a length promised.
    Truncated(&'static str),
    /// Compression pointers formed a loop or exceeded the hop limit.
    PointerLoop,
    /// A name longer than 255 octets or a label longer than 63.
    NameTooLong,
    /// Any other structural violation.
    Malformed(&'static str),
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsError::Truncated(what) => write!(f, "DNS message truncated in {what}"),
            DnsError::PointerLoop => f.write_str("DNS compression pointer loop"),
            DnsError::NameTooLong => f.write_str("DNS name or label too long"),
            DnsError::Malformed(what) => write!(f, "malformed DNS message: {what}"),
        }
    }
}

impl std::error::Error for DnsError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lower-case, no trailing dot; non-printable octets escaped as `\DDD`.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvcbData {
    pub priority: u16,
    pub target: String,
    pub alpn: Vec<String>,
    /// SvcParamKey 5 (`ech`) present: the name publishes an ECH config.
    pub ech: bool,
    pub ipv4_hints: Vec<Ipv4Addr>,
    pub ipv6_hints: Vec<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    /// SVCB (64) and HTTPS (65).
    Svcb(SvcbData),
    /// TXT of an `_agent.<domain>` name (Agent Identity & Discovery): its
    /// character-strings joined, at most [`MAX_TXT_BYTES`], lossy UTF-8.
    /// Other TXT records (SPF, verification tokens) stay `Other`.
    Txt(String),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRecord {
    pub name: String,
    pub rtype: u16,
    pub ttl: u32,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsMessage {
    pub id: u16,
    pub is_response: bool,
    pub opcode: u8,
    pub rcode: u8,
    pub questions: Vec<Question>,
    pub answers: Vec<ResourceRecord>,
}

/// One address from the answer section with every name that leads to it
/// through the CNAME chain (owner names first-to-last, question name first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAddress {
    pub addr: IpAddr,
    pub ttl: u32,
    pub names: Vec<String>,
}

/// Bounds-checked big-endian reads. `None` means "past the end".
fn be_u16(buf: &[u8], pos: usize) -> Option<u16> {
    let b: [u8; 2] = buf.get(pos..pos.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_be_bytes(b))
}

fn be_u32(buf: &[u8], pos: usize) -> Option<u32> {
    let b: [u8; 4] = buf.get(pos..pos.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Appends one label in presentation form (RFC 1035 §5.1): ASCII
/// lower-cased (names compare case-insensitively, RFC 4343), `.` and `\`
/// escaped with a backslash, everything outside printable ASCII (and space)
/// as `\DDD` decimal, so the result is unambiguous and safe to log.
fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'A'..=b'Z' => out.push(char::from(b.to_ascii_lowercase())),
            b'.' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7E => out.push(char::from(b)),
            _ => {
                out.push('\\');
                out.push(char::from(b'0' + b / 100));
                out.push(char::from(b'0' + (b / 10) % 10));
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
}

/// Same escaping for ALPN ids, without lower-casing (ALPN ids are opaque
/// octet strings, RFC 7301 §3.1).
fn escape_opaque(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\\' | b',' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x21..=0x7E => out.push(char::from(b)),
            _ => {
                out.push('\\');
                out.push(char::from(b'0' + b / 100));
                out.push(char::from(b'0' + (b / 10) % 10));
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    out
}

/// Decodes the (possibly compressed) name at `start` of `msg`.
///
/// `limit` bounds the in-place part of the name, i.e. the octets up to and
/// including the first compression pointer (for a name inside RDATA, the
/// end of that RDATA). Returns the name and the offset just past its
/// in-place part.
///
/// Pointer rule (RFC 1035 §4.1.4: a pointer refers to a *prior* occurrence):
/// each pointer must target an offset strictly before the start of the
/// label run it ends. Targets therefore strictly decrease and decoding
/// terminates; the hop limit is a second, independent bound. A pointer that
/// lands on octets already decoded is reported as `PointerLoop`, any other
/// non-backward pointer as a forward pointer.
fn read_name(msg: &[u8], start: usize, limit: usize) -> Result<(String, usize), DnsError> {
    let limit = limit.min(msg.len());
    let mut out = String::new();
    // Wire length so far, counting the terminating root octet.
    let mut wire_len = 1usize;
    let mut pos = start;
    // Start of the label run being read (the name start, then each target).
    let mut run_start = start;
    // End of the in-place part, set at the first pointer.
    let mut in_place_end: Option<usize> = None;
    // Octet ranges [start, end) already read, to tell loops from forward jumps.
    let mut visited = [(0usize, 0usize); MAX_POINTER_HOPS];
    let mut hops = 0usize;

    loop {
        let lim = if in_place_end.is_some() {
            msg.len()
        } else {
            limit
        };
        let len_octet = *msg
            .get(pos)
            .filter(|_| pos < lim)
            .ok_or(DnsError::Truncated("name"))?;
        match len_octet & 0xC0 {
            0x00 if len_octet == 0 => {
                let end = in_place_end.unwrap_or(pos + 1);
                return Ok((out, end));
            }
            0x00 => {
                let len = usize::from(len_octet);
                let label_start = pos + 1;
                let label_end = label_start + len;
                if label_end > lim {
                    return Err(DnsError::Truncated("label"));
                }
                let label = msg
                    .get(label_start..label_end)
                    .ok_or(DnsError::Truncated("label"))?;
                wire_len += 1 + len;
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                if !out.is_empty() {
                    out.push('.');
                }
                push_label(&mut out, label);
                pos = label_end;
            }
            0xC0 => {
                let low = *msg
                    .get(pos + 1)
                    .filter(|_| pos + 1 < lim)
                    .ok_or(DnsError::Truncated("compression pointer"))?;
                let target = (usize::from(len_octet & 0x3F) << 8) | usize::from(low);
                let run = (run_start, pos + 2);
                if target >= run_start {
                    let seen = |r: &(usize, usize)| r.0 <= target && target < r.1;
                    let earlier = visited.get(..hops).unwrap_or(&[]);
                    if seen(&run) || earlier.iter().any(seen) {
                        return Err(DnsError::PointerLoop);
                    }
                    return Err(DnsError::Malformed("forward compression pointer"));
                }
                if target < HEADER_LEN {
                    return Err(DnsError::Malformed("compression pointer into header"));
                }
                let slot = visited.get_mut(hops).ok_or(DnsError::PointerLoop)?;
                *slot = run;
                hops += 1;
                if in_place_end.is_none() {
                    in_place_end = Some(pos + 2);
                }
                run_start = target;
                pos = target;
            }
            // 0x40 (extended label, RFC 6891 §5) and 0x80 (reserved): read
            // as a length these would be labels longer than 63 octets.
            _ => return Err(DnsError::NameTooLong),
        }
    }
}

/// Skips the name at `pos` without decoding it (for questions past the
/// cap). Returns the offset after it.
fn skip_name(msg: &[u8], mut pos: usize) -> Result<usize, DnsError> {
    let mut wire_len = 1usize;
    loop {
        let len_octet = *msg.get(pos).ok_or(DnsError::Truncated("name"))?;
        match len_octet & 0xC0 {
            0x00 if len_octet == 0 => return Ok(pos + 1),
            0x00 => {
                wire_len += 1 + usize::from(len_octet);
                if wire_len > MAX_NAME_LEN {
                    return Err(DnsError::NameTooLong);
                }
                pos += 1 + usize::from(len_octet);
            }
            0xC0 => {
                if pos + 2 > msg.len() {
                    return Err(DnsError::Truncated("compression pointer"));
                }
                return Ok(pos + 2);
            }
            _ => return Err(DnsError::NameTooLong),
        }
    }
}

/// SVCB/HTTPS RDATA (RFC 9460 §2.2): SvcPriority, TargetName, SvcParams.
fn parse_svcb(msg: &[u8], start: usize, end: usize) -> Result<SvcbData, DnsError> {
    let priority = be_u16(msg, start)
        .filter(|_| start + 2 <= end)
        .ok_or(DnsError::Malformed("SVCB priority"))?;
    // TargetName "MUST NOT be compressed" (RFC 9460 §2.2); pointers are
    // tolerated since decoding them is safe.
    let (target, mut pos) = read_name(msg, start + 2, end)?;
    let mut data = SvcbData {
        priority,
        target,
        alpn: Vec::new(),
        ech: false,
        ipv4_hints: Vec::new(),
        ipv6_hints: Vec::new(),
    };
    // AliasMode: "recipients MUST ignore any SvcParams that are present"
    // (RFC 9460 §2.4.2).
    if priority == 0 {
        return Ok(data);
    }
    while pos < end {
        let (Some(key), Some(len)) = (be_u16(msg, pos), be_u16(msg, pos + 2)) else {
            return Err(DnsError::Malformed("SvcParam header"));
        };
        let value_start = pos + 4;
        let value_end = value_start + usize::from(len);
        if value_end > end {
            return Err(DnsError::Malformed("SvcParam overruns RDATA"));
        }
        let value = msg
            .get(value_start..value_end)
            .ok_or(DnsError::Malformed("SvcParam overruns RDATA"))?;
        match key {
            SVC_KEY_ALPN => parse_alpn(value, &mut data.alpn)?,
            SVC_KEY_ECH => data.ech = true,
            SVC_KEY_IPV4HINT => {
                // RFC 9460 §7.3: a non-empty list of 4-octet addresses.
                if value.is_empty() || value.len() % 4 != 0 {
                    return Err(DnsError::Malformed("ipv4hint length"));
                }
                for chunk in value.chunks_exact(4) {
                    if data.ipv4_hints.len() >= MAX_HINTS {
                        break;
                    }
                    if let Ok(b) = <[u8; 4]>::try_from(chunk) {
                        data.ipv4_hints.push(Ipv4Addr::from(b));
                    }
                }
            }
            SVC_KEY_IPV6HINT => {
                if value.is_empty() || value.len() % 16 != 0 {
                    return Err(DnsError::Malformed("ipv6hint length"));
                }
                for chunk in value.chunks_exact(16) {
                    if data.ipv6_hints.len() >= MAX_HINTS {
                        break;
                    }
                    if let Ok(b) = <[u8; 16]>::try_from(chunk) {
                        data.ipv6_hints.push(Ipv6Addr::from(b));
                    }
                }
            }
            // mandatory, port, dohpath, unknown keys: not needed here.
            _ => {}
        }
        pos = value_end;
    }
    Ok(data)
}

/// `alpn` value (RFC 9460 §7.1.1): a list of length-prefixed alpn-ids.
fn parse_alpn(mut value: &[u8], out: &mut Vec<String>) -> Result<(), DnsError> {
    while let Some((&len, rest)) = value.split_first() {
        let (id, rest) = rest
            .split_at_checked(usize::from(len))
            .ok_or(DnsError::Malformed("alpn-id overruns value"))?;
        if !id.is_empty() && out.len() < MAX_ALPN {
            out.push(escape_opaque(id));
        }
        value = rest;
    }
    Ok(())
}

/// Parses one resource record at `pos`; returns it and the offset after it.
/// Bytes kept of an `_agent` TXT record's text.
pub const MAX_TXT_BYTES: usize = 4096;

/// The first label is `_agent` (AID's well-known node name).
fn is_agent_name(name: &str) -> bool {
    name.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("_agent."))
}

/// TXT RDATA (RFC 1035 §3.3.14): character-strings, each a length byte and
/// that many bytes, joined.
fn parse_txt(rdata: &[u8]) -> Result<String, DnsError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < rdata.len() {
        let len = usize::from(rdata.get(pos).copied().unwrap_or(0));
        let s = rdata
            .get(pos + 1..pos + 1 + len)
            .ok_or(DnsError::Malformed("TXT string overruns RDLENGTH"))?;
        let room = MAX_TXT_BYTES.saturating_sub(out.len());
        out.extend_from_slice(s.get(..room.min(s.len())).unwrap_or_default());
        pos += 1 + len;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn parse_record(msg: &[u8], pos: usize) -> Result<(ResourceRecord, usize), DnsError> {
    let (name, pos) = read_name(msg, pos, msg.len())?;
    let (Some(rtype), Some(class), Some(ttl), Some(rdlen)) = (
        be_u16(msg, pos),
        be_u16(msg, pos + 2),
        be_u32(msg, pos + 4),
        be_u16(msg, pos + 8),
    ) else {
        return Err(DnsError::Truncated("resource record header"));
    };
    // RFC 2181 §8: a TTL with the top bit set is treated as zero.
    let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
    let rd_start = pos + 10;
    let rd_end = rd_start + usize::from(rdlen);
    let rdata = msg
        .get(rd_start..rd_end)
        .ok_or(DnsError::Truncated("rdata"))?;
    // The top bit of CLASS is the mDNS cache-flush flag (RFC 6762 §10.2).
    let is_in = class & 0x7FFF == CLASS_IN;
    let data = match rtype {
        TYPE_A if is_in => {
            let b: [u8; 4] = rdata
                .try_into()
                .map_err(|_| DnsError::Malformed("A RDLENGTH is not 4"))?;
            RData::A(Ipv4Addr::from(b))
        }
        TYPE_AAAA if is_in => {
            let b: [u8; 16] = rdata
                .try_into()
                .map_err(|_| DnsError::Malformed("AAAA RDLENGTH is not 16"))?;
            RData::Aaaa(Ipv6Addr::from(b))
        }
        TYPE_CNAME => {
            let (target, end) = read_name(msg, rd_start, rd_end)?;
            if end != rd_end {
                return Err(DnsError::Malformed("CNAME RDLENGTH mismatch"));
            }
            RData::Cname(target)
        }
        TYPE_SVCB | TYPE_HTTPS => RData::Svcb(parse_svcb(msg, rd_start, rd_end)?),
        TYPE_TXT if is_in && is_agent_name(&name) => RData::Txt(parse_txt(rdata)?),
        _ => RData::Other,
    };
    let rr = ResourceRecord {
        name,
        rtype,
        ttl,
        data,
    };
    Ok((rr, rd_end))
}

/// Parse one DNS message (the UDP payload, or one TCP message without its
/// 2-byte length prefix).
pub fn parse_message(buf: &[u8]) -> Result<DnsMessage, DnsError> {
    let (Some(id), Some(flags), Some(qdcount), Some(ancount)) = (
        be_u16(buf, 0),
        be_u16(buf, 2),
        be_u16(buf, 4),
        be_u16(buf, 6),
    ) else {
        return Err(DnsError::Truncated("header"));
    };
    if buf.len() < HEADER_LEN {
        return Err(DnsError::Truncated("header"));
    }
    let qdcount = usize::from(qdcount);
    let ancount = usize::from(ancount);
    // Cheap early rejection of inflated counts: a question is at least 5
    // octets (root name, QTYPE, QCLASS), a record at least 11.
    if qdcount * 5 > buf.len() - HEADER_LEN {
        return Err(DnsError::Truncated("question section"));
    }

    let mut questions = Vec::with_capacity(qdcount.min(MAX_QUESTIONS));
    let mut pos = HEADER_LEN;
    for i in 0..qdcount {
        if i < MAX_QUESTIONS {
            let (name, after) = read_name(buf, pos, buf.len())?;
            let (Some(qtype), Some(qclass)) = (be_u16(buf, after), be_u16(buf, after + 2)) else {
                return Err(DnsError::Truncated("question"));
            };
            questions.push(Question {
                name,
                qtype,
                qclass,
            });
            pos = after + 4;
        } else {
            pos = skip_name(buf, pos)? + 4;
            if pos > buf.len() {
                return Err(DnsError::Truncated("question"));
            }
        }
    }

    if ancount * 11 > buf.len().saturating_sub(pos) {
        return Err(DnsError::Truncated("answer section"));
    }
    let mut answers = Vec::with_capacity(ancount.min(MAX_ANSWERS));
    for _ in 0..ancount.min(MAX_ANSWERS) {
        let (rr, after) = parse_record(buf, pos)?;
        answers.push(rr);
        pos = after;
    }

    Ok(DnsMessage {
        id,
        is_response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0x0F) as u8,
        rcode: (flags & 0x000F) as u8,
        questions,
        answers,
    })
}

/// DNS over TCP: split 2-byte length-prefixed messages. Returns the complete
/// messages found and the number of bytes consumed.
///
/// Framing per RFC 1035 §4.2.2 / RFC 7766 §8. A zero length prefix carries
/// no message and is consumed silently. An incomplete trailing message is
/// left unconsumed for the caller to retry with more bytes. The result holds
/// at most `buf.len() / 3` slices (each non-empty message costs 3 octets).
pub fn split_tcp_messages(buf: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut messages = Vec::new();
    let mut consumed = 0usize;
    while let Some(len) = be_u16(buf, consumed) {
        let start = consumed + 2;
        let end = start + usize::from(len);
        let Some(msg) = buf.get(start..end) else {
            break;
        };
        if !msg.is_empty() {
            messages.push(msg);
        }
        consumed = end;
    }
    (messages, consumed)
}

impl DnsMessage {
    /// Every A/AAAA answer (and SVCB address hint) with the names that resolve to it.
    ///
    /// The CNAME chain is walked backwards from the owner of the address
    /// record, at most [`MAX_CNAME_DEPTH`] links, never revisiting a name
    /// (CNAME loops end the walk). If several CNAMEs point at the same name,
    /// the first in the answer section wins: answers describe one chain.
    /// `ttl` is the minimum TTL along the chain. For SVCB/HTTPS hints the
    /// chain ends at the record's owner, followed by its TargetName when that
    /// is neither `.` nor already in the chain (the hints are the target's
    /// addresses, RFC 9460 §7.3). Duplicates (same address and names) are
    /// merged keeping the lower TTL; at most [`MAX_RESOLVED`] entries.
    pub fn resolved_addresses(&self) -> Vec<ResolvedAddress> {
        let mut out: Vec<ResolvedAddress> = Vec::new();
        for rr in &self.answers {
            match &rr.data {
                RData::A(a) => {
                    let (names, ttl) = self.chain_to(&rr.name, rr.ttl);
                    push_resolved(&mut out, IpAddr::V4(*a), ttl, names);
                }
                RData::Aaaa(a) => {
                    let (names, ttl) = self.chain_to(&rr.name, rr.ttl);
                    push_resolved(&mut out, IpAddr::V6(*a), ttl, names);
                }
                RData::Svcb(s) if !s.ipv4_hints.is_empty() || !s.ipv6_hints.is_empty() => {
                    let (mut names, ttl) = self.chain_to(&rr.name, rr.ttl);
                    if !s.target.is_empty() && !names.contains(&s.target) {
                        names.push(s.target.clone());
                    }
                    let hints = s
                        .ipv4_hints
                        .iter()
                        .map(|a| IpAddr::V4(*a))
                        .chain(s.ipv6_hints.iter().map(|a| IpAddr::V6(*a)));
                    for addr in hints {
                        push_resolved(&mut out, addr, ttl, names.clone());
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Names leading to `owner` through CNAMEs (first link first, `owner`
    /// last) and the minimum TTL along the way. Iterative, depth-limited.
    fn chain_to(&self, owner: &str, ttl: u32) -> (Vec<String>, u32) {
        let mut rev: Vec<&str> = vec![owner];
        let mut ttl = ttl;
        let mut cur = owner;
        for _ in 0..MAX_CNAME_DEPTH {
            let prev = self.answers.iter().find(|rr| {
                matches!(&rr.data, RData::Cname(t) if t == cur) && !rev.contains(&rr.name.as_str())
            });
            let Some(prev) = prev else { break };
            rev.push(&prev.name);
            ttl = ttl.min(prev.ttl);
            cur = &prev.name;
        }
        (rev.iter().rev().map(|s| (*s).to_owned()).collect(), ttl)
    }
}

fn push_resolved(out: &mut Vec<ResolvedAddress>, addr: IpAddr, ttl: u32, names: Vec<String>) {
    if let Some(dup) = out.iter_mut().find(|r| r.addr == addr && r.names == names) {
        dup.ttl = dup.ttl.min(ttl);
        return;
    }
    if out.len() < MAX_RESOLVED {
        out.push(ResolvedAddress { addr, ttl, names });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes a hex fixture (whitespace ignored).
    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    // Fixtures written by dnspython 2.9.2 (`dns.message.make_response(...)
    // .to_wire()`), an independent encoder that compresses names. The
    // presentation form dnspython printed for each is quoted above it.

    // WWW.Example.COM. IN A (id 0x1234)
    // WWW.Example.COM. 300 IN CNAME a.cdn.example.net.
    // a.cdn.example.net. 60 IN CNAME b.cdn.example.net.
    // b.cdn.example.net. 120 IN A 192.0.2.10
    // b.cdn.example.net. 120 IN A 192.0.2.11
    const CNAME_CHAIN: &str = "
        12348100000100040000000003575757074578616d706c6503434f4d00000100
        01c00c000500010000012c001301610363646e076578616d706c65036e657400
        c02d000500010000003c00040162c02fc04c00010001000000780004c000020a
        c04c00010001000000780004c000020b";

    // mcp.example.com. IN HTTPS (id 0xbeef)
    // mcp.example.com. 3600 IN HTTPS 1 . alpn="h3,h2" ipv4hint="192.0.2.1,192.0.2.2"
    //   ech="ABj+DQAUAAECAwQFBgcICQoLDA0ODxAREhM=" ipv6hint="2001:db8::1" key65000="abc"
    const HTTPS_ECH: &str = "
        beef81000001000100000000036d6370076578616d706c6503636f6d00004100
        01c00c0041000100000e1000520001000001000602683302683200040008c000
        0201c00002020005001a0018fe0d0014000102030405060708090a0b0c0d0e0f
        101112130006001020010db8000000000000000000000001fde80003616263";

    // v6.example.org. IN AAAA (id 7)
    // v6.example.org. 42 IN AAAA 2001:db8::53
    // v6.example.org. 42 IN AAAA 2001:db8:ffff::1
    const AAAA: &str = "
        000781000001000200000000027636076578616d706c65036f726700001c0001
        c00c001c00010000002a001020010db8000000000000000000000053c00c001c
        00010000002a001020010db8ffff00000000000000000001";

    // c0.chain.example. IN A (id 99)
    // cN.chain.example. (1000-N) IN CNAME c(N+1).chain.example.  for N in 0..20
    // c20.chain.example. 50 IN A 198.51.100.7
    // Owners point into the previous record's RDATA, which itself points
    // back to the question: pointer-to-pointer compression.
    const LONG_CHAIN: &str = "
        00638100000100150000000002633005636861696e076578616d706c65000001
        0001c00c00050001000003e80005026331c00fc02e00050001000003e7000502
        6332c00fc03f00050001000003e60005026333c00fc05000050001000003e500
        05026334c00fc06100050001000003e40005026335c00fc07200050001000003
        e30005026336c00fc08300050001000003e20005026337c00fc0940005000100
        0003e10005026338c00fc0a500050001000003e00005026339c00fc0b6000500
        01000003df000603633130c00fc0c700050001000003de000603633131c00fc0
        d900050001000003dd000603633132c00fc0eb00050001000003dc0006036331
        33c00fc0fd00050001000003db000603633134c00fc10f00050001000003da00
        0603633135c00fc12100050001000003d9000603633136c00fc1330005000100
        0003d8000603633137c00fc14500050001000003d7000603633138c00fc15700
        050001000003d6000603633139c00fc16900050001000003d5000603633230c0
        0fc17b00010001000000320004c6336407";

    // api.example.com. IN HTTPS (id 5)
    // api.example.com. 600 IN CNAME edge.example.net.
    // edge.example.net. 200 IN HTTPS 1 svc.example.net. alpn="h2" ipv4hint="203.0.113.5"
    const HTTPS_VIA_CNAME: &str = "
        00058100000100020000000003617069076578616d706c6503636f6d00004100
        01c00c000500010000025800120465646765076578616d706c65036e657400c0
        2d00410001000000c80022000103737663076578616d706c65036e6574000001
        000302683200040004cb007105";

    const FIXTURES: [&str; 5] = [CNAME_CHAIN, HTTPS_ECH, AAAA, LONG_CHAIN, HTTPS_VIA_CNAME];

    // --- a tiny builder for hand-made (mostly hostile) messages ---

    fn header(qd: u16, an: u16) -> Vec<u8> {
        let mut h = vec![0xab, 0xcd, 0x81, 0x80];
        h.extend_from_slice(&qd.to_be_bytes());
        h.extend_from_slice(&an.to_be_bytes());
        h.extend_from_slice(&[0, 0, 0, 0]);
        h
    }

    /// Uncompressed wire name from labels.
    fn wire_name(labels: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for l in labels {
            v.push(l.len() as u8);
            v.extend_from_slice(l);
        }
        v.push(0);
        v
    }

    fn question(name: &[u8], qtype: u16) -> Vec<u8> {
        let mut v = name.to_vec();
        v.extend_from_slice(&qtype.to_be_bytes());
        v.extend_from_slice(&CLASS_IN.to_be_bytes());
        v
    }

    fn record(owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Vec<u8> {
        let mut v = owner.to_vec();
        v.extend_from_slice(&rtype.to_be_bytes());
        v.extend_from_slice(&CLASS_IN.to_be_bytes());
        v.extend_from_slice(&ttl.to_be_bytes());
        v.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        v.extend_from_slice(rdata);
        v
    }

    #[test]
    fn agent_txt_records_are_read_and_other_txt_stays_opaque() {
        let q = wire_name(&[b"_agent", b"example", b"test"]);
        let mut m = header(1, 2);
        m.extend(question(&q, TYPE_TXT));
        // Two character-strings, joined.
        m.extend(record(
            &ptr(12),
            TYPE_TXT,
            60,
            b"\x0dv=aid1;proto=\x26mcp;uri=https://agent.example.test/mcp",
        ));
        let plain = wire_name(&[b"example", b"test"]);
        m.extend(record(&plain, TYPE_TXT, 60, b"\x0bv=spf1 -all"));
        let msg = parse_message(&m).unwrap();
        assert_eq!(
            msg.answers[0].data,
            RData::Txt("v=aid1;proto=mcp;uri=https://agent.example.test/mcp".into())
        );
        assert_eq!(msg.answers[1].data, RData::Other);
        // A string longer than its RDATA is an error, not a panic.
        let mut m = header(1, 1);
        m.extend(question(&q, TYPE_TXT));
        m.extend(record(&ptr(12), TYPE_TXT, 60, b"\x09short"));
        assert!(parse_message(&m).is_err());
    }

    fn ptr(offset: u16) -> [u8; 2] {
        (0xC000 | offset).to_be_bytes()
    }

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse().unwrap())
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cname_chain_compressed_and_lowercased() {
        let m = parse_message(&hex(CNAME_CHAIN)).unwrap();
        assert_eq!(m.id, 0x1234);
        assert!(m.is_response);
        assert_eq!((m.opcode, m.rcode), (0, 0));
        assert_eq!(
            m.questions,
            vec![Question {
                name: "www.example.com".into(),
                qtype: TYPE_A,
                qclass: CLASS_IN
            }]
        );
        assert_eq!(m.answers.len(), 4);
        assert_eq!(m.answers[0].name, "www.example.com");
        assert_eq!(m.answers[0].ttl, 300);
        assert_eq!(m.answers[0].data, RData::Cname("a.cdn.example.net".into()));
        // "b" + pointer into the previous CNAME target.
        assert_eq!(m.answers[1].data, RData::Cname("b.cdn.example.net".into()));
        assert_eq!(m.answers[2].name, "b.cdn.example.net");
        assert_eq!(m.answers[3].data, RData::A("192.0.2.11".parse().unwrap()));

        let chain = names(&["www.example.com", "a.cdn.example.net", "b.cdn.example.net"]);
        assert_eq!(
            m.resolved_addresses(),
            vec![
                ResolvedAddress {
                    addr: v4("192.0.2.10"),
                    ttl: 60,
                    names: chain.clone()
                },
                ResolvedAddress {
                    addr: v4("192.0.2.11"),
                    ttl: 60,
                    names: chain
                },
            ]
        );
    }

    #[test]
    fn https_record_alpn_ech_hints() {
        let m = parse_message(&hex(HTTPS_ECH)).unwrap();
        assert_eq!(m.id, 0xbeef);
        assert_eq!(m.questions[0].qtype, TYPE_HTTPS);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.answers[0].rtype, TYPE_HTTPS);
        let RData::Svcb(s) = &m.answers[0].data else {
            panic!("expected SVCB data, got {:?}", m.answers[0].data);
        };
        assert_eq!(s.priority, 1);
        assert_eq!(s.target, "");
        assert_eq!(s.alpn, names(&["h3", "h2"]));
        assert!(s.ech);
        assert_eq!(
            s.ipv4_hints,
            vec![
                "192.0.2.1".parse::<Ipv4Addr>().unwrap(),
                "192.0.2.2".parse().unwrap()
            ]
        );
        assert_eq!(
            s.ipv6_hints,
            vec!["2001:db8::1".parse::<Ipv6Addr>().unwrap()]
        );

        let r = m.resolved_addresses();
        let addrs: Vec<IpAddr> = r.iter().map(|r| r.addr).collect();
        assert_eq!(
            addrs,
            vec![
                v4("192.0.2.1"),
                v4("192.0.2.2"),
                "2001:db8::1".parse().unwrap()
            ]
        );
        for x in &r {
            assert_eq!(x.names, names(&["mcp.example.com"]));
            assert_eq!(x.ttl, 3600);
        }
    }

    #[test]
    fn https_hints_through_cname_include_target() {
        let m = parse_message(&hex(HTTPS_VIA_CNAME)).unwrap();
        let RData::Svcb(s) = &m.answers[1].data else {
            panic!("expected SVCB data");
        };
        assert_eq!(s.target, "svc.example.net");
        assert!(!s.ech);
        assert_eq!(
            m.resolved_addresses(),
            vec![ResolvedAddress {
                addr: v4("203.0.113.5"),
                ttl: 200,
                names: names(&["api.example.com", "edge.example.net", "svc.example.net"]),
            }]
        );
    }

    #[test]
    fn aaaa_answers() {
        let m = parse_message(&hex(AAAA)).unwrap();
        assert_eq!(m.id, 7);
        let r = m.resolved_addresses();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].addr, "2001:db8::53".parse::<IpAddr>().unwrap());
        assert_eq!(r[1].addr, "2001:db8:ffff::1".parse::<IpAddr>().unwrap());
        assert!(
            r.iter()
                .all(|x| x.ttl == 42 && x.names == ["v6.example.org"])
        );
    }

    #[test]
    fn long_cname_chain_is_depth_limited() {
        let m = parse_message(&hex(LONG_CHAIN)).unwrap();
        assert_eq!(m.answers.len(), 21);
        for (i, rr) in m.answers.iter().take(20).enumerate() {
            assert_eq!(rr.name, format!("c{i}.chain.example"));
            assert_eq!(rr.data, RData::Cname(format!("c{}.chain.example", i + 1)));
        }
        let r = m.resolved_addresses();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].addr, v4("198.51.100.7"));
        // 16 links back from c20: c4 .. c20.
        let expected: Vec<String> = (4..=20).map(|i| format!("c{i}.chain.example")).collect();
        assert_eq!(r[0].names, expected);
        assert_eq!(r[0].ttl, 50);
    }

    #[test]
    fn chain_ttl_is_minimum_and_cname_loops_end() {
        // q: a.test; a CNAME b (ttl 30); b CNAME a (ttl 5, loop); b A 1.2.3.4 (ttl 90)
        let a = wire_name(&[b"a", b"test"]);
        let b = wire_name(&[b"b", b"test"]);
        let mut m = header(1, 3);
        m.extend(question(&a, TYPE_A));
        m.extend(record(&a, TYPE_CNAME, 30, &b));
        m.extend(record(&b, TYPE_CNAME, 5, &a));
        m.extend(record(&b, TYPE_A, 90, &[1, 2, 3, 4]));
        let r = parse_message(&m).unwrap().resolved_addresses();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].names, names(&["a.test", "b.test"]));
        assert_eq!(r[0].ttl, 30);
    }

    #[test]
    fn truncation_at_every_offset_is_an_error() {
        for fx in FIXTURES {
            let full = hex(fx);
            assert!(parse_message(&full).is_ok());
            for cut in 0..full.len() {
                assert!(
                    parse_message(&full[..cut]).is_err(),
                    "prefix of {cut}/{} bytes parsed",
                    full.len()
                );
            }
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        for fx in FIXTURES {
            let full = hex(fx);
            for i in 0..full.len() {
                for x in [0x01, 0x3f, 0x40, 0x80, 0xc0, 0xff] {
                    let mut m = full.clone();
                    m[i] ^= x;
                    if let Ok(msg) = parse_message(&m) {
                        assert!(msg.resolved_addresses().len() <= MAX_RESOLVED);
                    }
                }
            }
        }
    }

    #[test]
    fn self_pointer_is_a_loop() {
        let mut m = header(1, 0);
        m.extend(question(&ptr(12), TYPE_A));
        assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
    }

    #[test]
    fn pointer_into_own_labels_is_a_loop() {
        // "x" then a pointer back to the start of the same name.
        let mut m = header(1, 0);
        let mut name = vec![1, b'x'];
        name.extend(ptr(12));
        m.extend(question(&name, TYPE_A));
        assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
    }

    #[test]
    fn two_pointer_cycle_is_a_loop() {
        // The question's label hides the octets C0 <S>; the answer owner at
        // S points back at them (a legal backward jump), and they point on
        // to S again.
        let mut m = header(1, 1);
        // Question at 12: label of 3 octets [C0, S, 'y'], root, type, class.
        let s = 12 + 1 + 3 + 1 + 4;
        m.extend(question(&[3, 0xC0, s as u8, b'y', 0], TYPE_A));
        assert_eq!(m.len(), s);
        m.extend(record(&ptr(13), TYPE_A, 1, &[1, 2, 3, 4]));
        assert_eq!(parse_message(&m), Err(DnsError::PointerLoop));
    }

    #[test]
    fn forward_pointer_is_rejected() {
        let mut m = header(1, 1);
        m.extend(question(&ptr(18), TYPE_A)); // 12..18, points at the answer
        m.extend(record(&wire_name(&[b"a"]), TYPE_A, 1, &[1, 2, 3, 4]));
        assert_eq!(
            parse_message(&m),
            Err(DnsError::Malformed("forward compression pointer"))
        );
    }

    #[test]
    fn pointer_into_header_is_rejected() {
        let mut m = header(1, 0);
        m.extend(question(&ptr(2), TYPE_A));
        assert!(matches!(parse_message(&m), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn pointer_hop_limit() {
        // A name at 12, then pointers each targeting the previous pointer.
        let mut m = header(0, 0);
        m.extend(wire_name(&[b"a"]));
        let mut at = vec![12usize];
        for _ in 0..=MAX_POINTER_HOPS {
            let prev = *at.last().unwrap();
            at.push(m.len());
            m.extend(ptr(prev as u16));
        }
        // The pointer at index k needs k hops.
        let ok = at[MAX_POINTER_HOPS];
        assert_eq!(read_name(&m, ok, m.len()).unwrap(), ("a".into(), ok + 2));
        let too_far = at[MAX_POINTER_HOPS + 1];
        assert_eq!(read_name(&m, too_far, m.len()), Err(DnsError::PointerLoop));
    }

    #[test]
    fn label_length_limits() {
        let l63 = [b'a'; 63];
        let mut m = header(1, 0);
        m.extend(question(&wire_name(&[&l63]), TYPE_A));
        assert_eq!(parse_message(&m).unwrap().questions[0].name.len(), 63);

        let l64 = [b'a'; 64];
        let mut m = header(1, 0);
        m.extend(question(&wire_name(&[&l64]), TYPE_A));
        assert_eq!(parse_message(&m), Err(DnsError::NameTooLong));
    }

    #[test]
    fn name_length_limits() {
        let l63 = [b'a'; 63];
        let l61 = [b'b'; 61];
        // 3 * (1 + 63) + (1 + 61) + 1 = 255 octets: the maximum.
        let mut m = header(1, 0);
        m.extend(question(&wire_name(&[&l63, &l63, &l63, &l61]), TYPE_A));
        assert_eq!(
            parse_message(&m).unwrap().questions[0].name.len(),
            63 * 3 + 61 + 3
        );

        let l62 = [b'b'; 62];
        let mut m = header(1, 0);
        m.extend(question(&wire_name(&[&l63, &l63, &l63, &l62]), TYPE_A));
        assert_eq!(parse_message(&m), Err(DnsError::NameTooLong));

        // Also when the length is reached through a pointer: the question
        // holds 192 + 1 octets, the answer owner adds a 63-octet label.
        let mut m = header(1, 1);
        m.extend(question(&wire_name(&[&l63, &l63, &l63]), TYPE_A));
        let mut owner = vec![63];
        owner.extend_from_slice(&l63);
        owner.extend(ptr(12));
        m.extend(record(&owner, TYPE_A, 1, &[1, 2, 3, 4]));
        assert_eq!(parse_message(&m), Err(DnsError::NameTooLong));
    }

    #[test]
    fn oversized_counts_with_short_body() {
        let mut m = header(0xFFFF, 0);
        m.extend(question(&wire_name(&[b"a"]), TYPE_A));
        assert!(matches!(parse_message(&m), Err(DnsError::Truncated(_))));

        let mut m = header(1, 0xFFFF);
        m.extend(question(&wire_name(&[b"a"]), TYPE_A));
        m.extend(record(&ptr(12), TYPE_A, 1, &[1, 2, 3, 4]));
        assert!(matches!(parse_message(&m), Err(DnsError::Truncated(_))));

        assert!(matches!(
            parse_message(&header(0, 0)[..11]),
            Err(DnsError::Truncated(_))
        ));
    }

    #[test]
    fn question_and_answer_caps() {
        let mut m = header(40, 100);
        for i in 0..40u8 {
            m.extend(question(&wire_name(&[&[b'q', i]]), TYPE_A));
        }
        for i in 0..100u8 {
            m.extend(record(&ptr(12), TYPE_A, 10, &[10, 0, 0, i]));
        }
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.questions.len(), MAX_QUESTIONS);
        assert_eq!(msg.questions[31].name, "q\\031");
        // The skipped questions were stepped over correctly.
        assert_eq!(msg.answers.len(), MAX_ANSWERS);
        assert_eq!(msg.answers[63].data, RData::A(Ipv4Addr::new(10, 0, 0, 63)));
        assert_eq!(msg.answers[0].name, "q\\000");
        assert_eq!(msg.resolved_addresses().len(), MAX_RESOLVED);
    }

    #[test]
    fn presentation_escaping() {
        let mut m = header(1, 0);
        m.extend(question(
            &wire_name(&[b"A.b", b"sp ce\\", &[0, 0x7f, 0xff], b"COM"]),
            TYPE_A,
        ));
        assert_eq!(
            parse_message(&m).unwrap().questions[0].name,
            "a\\.b.sp\\032ce\\\\.\\000\\127\\255.com"
        );

        let mut m = header(1, 0);
        m.extend(question(&[0], TYPE_A));
        assert_eq!(parse_message(&m).unwrap().questions[0].name, "");
    }

    #[test]
    fn bad_rdlength_for_known_types() {
        let q = wire_name(&[b"a"]);
        for (rtype, rdata) in [
            (TYPE_A, vec![1, 2, 3]),
            (TYPE_A, vec![1, 2, 3, 4, 5]),
            (TYPE_AAAA, vec![0; 4]),
        ] {
            let mut m = header(1, 1);
            m.extend(question(&q, TYPE_A));
            m.extend(record(&ptr(12), rtype, 1, &rdata));
            assert!(matches!(parse_message(&m), Err(DnsError::Malformed(_))));
        }
        // CNAME target longer than RDLENGTH says: the name may not borrow
        // octets from the next field.
        let mut m = header(1, 1);
        m.extend(question(&q, TYPE_A));
        let mut rr = record(&ptr(12), TYPE_CNAME, 1, &wire_name(&[b"bb"]));
        let rdlen_at = rr.len() - 5 - 2;
        rr[rdlen_at + 1] = 2; // RDLENGTH 2 < 4
        m.extend(rr);
        assert!(parse_message(&m).is_err());
        // Unknown types and non-IN A records are opaque.
        let mut m = header(1, 2);
        m.extend(question(&q, TYPE_A));
        m.extend(record(&ptr(12), 16, 1, b"\x03txt"));
        let mut chaos = record(&ptr(12), TYPE_A, 1, &[0, 1]);
        chaos[4] = 3; // CLASS CH
        m.extend(chaos);
        let msg = parse_message(&m).unwrap();
        assert_eq!(msg.answers[0].data, RData::Other);
        assert_eq!(msg.answers[1].data, RData::Other);
    }

    fn svcb_rdata(priority: u16, params: &[(u16, &[u8])]) -> Vec<u8> {
        let mut v = priority.to_be_bytes().to_vec();
        v.push(0); // TargetName "."
        for (k, val) in params {
            v.extend_from_slice(&k.to_be_bytes());
            v.extend_from_slice(&(val.len() as u16).to_be_bytes());
            v.extend_from_slice(val);
        }
        v
    }

    fn svcb_message(rdata: &[u8]) -> Vec<u8> {
        let mut m = header(1, 1);
        m.extend(question(&wire_name(&[b"s", b"test"]), TYPE_SVCB));
        m.extend(record(&ptr(12), TYPE_SVCB, 77, rdata));
        m
    }

    #[test]
    fn svcb_alias_mode_ignores_params_and_hints_are_capped() {
        let hints: Vec<u8> = (0..40u8).flat_map(|i| [10, 1, 1, i]).collect();
        let alias = parse_message(&svcb_message(&svcb_rdata(0, &[(4, &hints)]))).unwrap();
        let RData::Svcb(s) = &alias.answers[0].data else {
            panic!()
        };
        assert!(s.ipv4_hints.is_empty());
        assert!(alias.resolved_addresses().is_empty());

        let alpn: Vec<u8> = (0..20u8).flat_map(|i| [2, b'p', b'a' + i]).collect();
        let msg = parse_message(&svcb_message(&svcb_rdata(
            1,
            &[(1, &alpn), (4, &hints), (5, b"")],
        )))
        .unwrap();
        let RData::Svcb(s) = &msg.answers[0].data else {
            panic!()
        };
        assert_eq!(s.ipv4_hints.len(), MAX_HINTS);
        assert_eq!(s.ipv4_hints[15], Ipv4Addr::new(10, 1, 1, 15));
        assert_eq!(s.alpn.len(), MAX_ALPN);
        assert_eq!(s.alpn[0], "pa");
        assert!(s.ech);
        assert_eq!(msg.resolved_addresses().len(), MAX_HINTS);
    }

    #[test]
    fn svcb_malformed_params() {
        for rdata in [
            svcb_rdata(1, &[(4, &[1, 2, 3])]), // ipv4hint not a multiple of 4
            svcb_rdata(1, &[(6, &[0; 15])]),   // ipv6hint not a multiple of 16
            svcb_rdata(1, &[(1, &[3, b'h', b'2'])]), // alpn-id overruns
            {
                let mut v = svcb_rdata(1, &[(4, &[1, 2, 3, 4])]);
                v.truncate(v.len() - 1); // param length overruns RDATA
                v
            },
            vec![0], // priority cut
        ] {
            assert!(parse_message(&svcb_message(&rdata)).is_err(), "{rdata:?}");
        }
    }

    #[test]
    fn ttl_with_top_bit_is_zero() {
        let mut m = header(1, 1);
        m.extend(question(&wire_name(&[b"a"]), TYPE_A));
        m.extend(record(&ptr(12), TYPE_A, 0x8000_0001, &[1, 2, 3, 4]));
        assert_eq!(parse_message(&m).unwrap().answers[0].ttl, 0);
    }

    #[test]
    fn tcp_framing_across_calls() {
        let a = hex(AAAA);
        let b = hex(CNAME_CHAIN);
        let mut stream = Vec::new();
        for msg in [&a[..], &[][..], &b[..]] {
            stream.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            stream.extend_from_slice(msg);
        }
        // Feed the stream in arbitrary pieces, as a reassembler would.
        for split in 0..stream.len() {
            let mut pending: Vec<u8> = Vec::new();
            let mut got: Vec<Vec<u8>> = Vec::new();
            for piece in [&stream[..split], &stream[split..]] {
                pending.extend_from_slice(piece);
                let (msgs, used) = split_tcp_messages(&pending);
                got.extend(msgs.iter().map(|m| m.to_vec()));
                pending.drain(..used);
            }
            assert!(pending.is_empty(), "split {split}");
            assert_eq!(got, vec![a.clone(), b.clone()], "split {split}");
        }
        assert_eq!(split_tcp_messages(&[0]), (vec![], 0));
        assert_eq!(split_tcp_messages(&[0, 0, 0, 0]), (vec![], 4));
        assert_eq!(split_tcp_messages(&[0, 3, 1, 2]), (vec![], 0));
    }

    /// Real traffic: the Community ID spec's `udp.pcap` holds a query and a
    /// response for google.com (11 A records, TTL 4; dnspython and tcpdump
    /// agree on the contents).
    #[test]
    fn real_capture_udp_pcap() {
        let dir =
            std::env::var("SHADOWMCP_TESTDATA").unwrap_or_else(|_| "/work/shared/testdata".into());
        let path = std::path::Path::new(&dir).join("community-id/udp.pcap");
        let Ok(pcap) = std::fs::read(&path) else {
            eprintln!("skipping: {} not found", path.display());
            return;
        };
        // Classic little-endian pcap, Ethernet, IPv4, UDP.
        let mut payloads = Vec::new();
        let mut off = 24;
        while off + 16 <= pcap.len() {
            let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
            let frame = &pcap[off + 16..off + 16 + incl];
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            payloads.push(frame[14 + ihl + 8..].to_vec());
            off += 16 + incl;
        }
        assert_eq!(payloads.len(), 2);

        let q = parse_message(&payloads[0]).unwrap();
        assert!(!q.is_response);
        assert_eq!(q.id, 3);
        assert_eq!(q.questions[0].name, "google.com");
        assert!(q.answers.is_empty());

        let r = parse_message(&payloads[1]).unwrap();
        assert!(r.is_response);
        assert_eq!(r.id, 3);
        let got: Vec<IpAddr> = r.resolved_addresses().iter().map(|x| x.addr).collect();
        let want: Vec<IpAddr> = [35, 37, 39, 32, 40, 33, 41, 34, 36, 46, 38]
            .iter()
            .map(|&d| IpAddr::V4(Ipv4Addr::new(74, 125, 236, d)))
            .collect();
        assert_eq!(got, want);
        assert!(
            r.resolved_addresses()
                .iter()
                .all(|x| x.ttl == 4 && x.names == ["google.com"])
        );
        for cut in 0..payloads[1].len() {
            assert!(parse_message(&payloads[1][..cut]).is_err());
        }
    }
}
