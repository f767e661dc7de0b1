//! The allowlist of sanctioned MCP servers: one entry per line — exact host,
//! `*.suffix`, IP address or CIDR — with `#` comments and blank lines.
//!
//! STUB: the public API below is the contract; the implementation is pending.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for AllowlistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Allowlist {}

impl Allowlist {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn load(_path: &Path) -> Result<Allowlist, Vec<AllowlistError>> {
        Ok(Self::default())
    }

    /// `origin` names the source in errors.
    pub fn parse(_text: &str, _origin: &str) -> Result<Allowlist, Vec<AllowlistError>> {
        Ok(Self::default())
    }

    /// The entry (as written) that sanctions this server, by name or address.
    pub fn matches(&self, _name: Option<&str>, _ip: Option<IpAddr>) -> Option<&str> {
        None
    }

    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
