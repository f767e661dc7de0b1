//! DNS messages (RFC 1035) over UDP and TCP: questions and the answers that
//! matter for attribution (A, AAAA, CNAME, SVCB/HTTPS).
//!
//! STUB: the public API below is the contract; the implementation is pending.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TYPE_A: u16 = 1;
pub const TYPE_CNAME: u16 = 5;
pub const TYPE_AAAA: u16 = 28;
pub const TYPE_SVCB: u16 = 64;
pub const TYPE_HTTPS: u16 = 65;

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

/// Parse one DNS message (the UDP payload, or one TCP message without its
/// 2-byte length prefix).
pub fn parse_message(_buf: &[u8]) -> Result<DnsMessage, DnsError> {
    Err(DnsError::Malformed("not implemented"))
}

/// DNS over TCP: split 2-byte length-prefixed messages. Returns the complete
/// messages found and the number of bytes consumed.
pub fn split_tcp_messages(_buf: &[u8]) -> (Vec<&[u8]>, usize) {
    (Vec::new(), 0)
}

impl DnsMessage {
    /// Every A/AAAA answer (and SVCB address hint) with the names that resolve to it.
    pub fn resolved_addresses(&self) -> Vec<ResolvedAddress> {
        Vec::new()
    }
}
