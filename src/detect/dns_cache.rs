//! A bounded address → name cache fed by DNS answers, so that a later flow
//! without SNI (IP literal, ECH) is attributed to the name that was looked up.
//!
//! STUB: the public API below is the contract; the implementation is pending.

use crate::findings::Micros;
use std::net::IpAddr;

#[derive(Debug)]
pub struct DnsCache {
    capacity: usize,
}

impl DnsCache {
    /// At most `capacity` addresses are kept; the least recently inserted go first.
    pub fn new(capacity: usize) -> Self {
        Self { capacity }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Remember that `name` resolved to `addr` at `now` with `ttl_secs`
    /// (clamped to a documented minimum and maximum).
    pub fn insert(&mut self, _addr: IpAddr, _name: &str, _ttl_secs: u32, _now: Micros) {}

    /// The most recently seen unexpired name for `addr`.
    pub fn lookup(&self, _addr: IpAddr, _now: Micros) -> Option<&str> {
        None
    }

    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries dropped to stay within capacity.
    pub fn evictions(&self) -> u64 {
        0
    }
}
