//! A bounded address → name cache fed by DNS answers, so that a later flow
//! without SNI (IP literal, ECH) is attributed to the name that was looked up.
//!
//! Bounds: at most `capacity` addresses, each with at most
//! [`MAX_NAMES_PER_ADDR`] names of at most [`MAX_NAME_LEN`] bytes; the
//! insertion-order queue holds at most `2 * capacity + 1` entries (it is
//! compacted when stale entries pile up).
//!
//! Eviction is by insertion order (FIFO with refresh): inserting an address
//! again moves it to the back. This is O(1) amortised: the queue holds
//! `(addr, generation)` pairs and an entry whose generation no longer matches
//! the map is stale and skipped, instead of being searched for and removed.
//!
//! Expired names are not returned by [`DnsCache::lookup`] but stay in memory
//! until their address is inserted again or evicted (lazy removal).

use crate::findings::Micros;
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::net::IpAddr;

/// Names kept per address, most recent first. Shared CDN addresses serve
/// many names; the most recent few are the likely ones for a new flow.
pub const MAX_NAMES_PER_ADDR: usize = 4;

/// Longest name stored, in bytes: a 255-octet wire name (RFC 1035 §2.3.4)
/// with every octet escaped as `\DDD` needs at most 1020 characters.
pub const MAX_NAME_LEN: usize = 1024;

/// TTL floor. Resolvers and stub caches hold answers longer than very short
/// TTLs (browsers keep a minute or more), and connections opened while the
/// record was valid stay open long after it expires (HTTP keep-alive, SSE
/// streams, WebSocket), so a 4 s TTL must not make the name vanish before
/// the flow we want to attribute is even seen.
pub const MIN_TTL_SECS: u32 = 300;

/// TTL ceiling. Addresses behind CDNs and cloud load balancers are reused
/// for other names; a day caps how stale an attribution can get.
pub const MAX_TTL_SECS: u32 = 86_400;

const MICROS_PER_SEC: i64 = 1_000_000;

#[derive(Debug)]
struct NameEntry {
    name: Box<str>,
    expires: Micros,
}

#[derive(Debug)]
struct AddrEntry {
    /// Generation of this address's latest insertion (matches one queue entry).
    generation: u64,
    /// Most recent first, at most `MAX_NAMES_PER_ADDR`.
    names: Vec<NameEntry>,
}

#[derive(Debug)]
pub struct DnsCache {
    capacity: usize,
    map: FxHashMap<IpAddr, AddrEntry>,
    /// Insertion order, oldest first; entries whose generation differs from
    /// the map's are stale.
    order: VecDeque<(IpAddr, u64)>,
    next_generation: u64,
    evictions: u64,
}

impl DnsCache {
    /// At most `capacity` addresses are kept; the least recently inserted go first.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: FxHashMap::default(),
            order: VecDeque::new(),
            next_generation: 0,
            evictions: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Remember that `name` resolved to `addr` at `now` with `ttl_secs`
    /// (clamped to a documented minimum and maximum).
    ///
    /// TTL is clamped to [`MIN_TTL_SECS`, `MAX_TTL_SECS`]. The name is
    /// stored lower-cased; empty names and names over [`MAX_NAME_LEN`] bytes
    /// are ignored. Inserting a known (addr, name) pair moves the name to
    /// the front and keeps the later of the two expiry times: a client that
    /// got the earlier, longer-lived answer may still be using it.
    pub fn insert(&mut self, addr: IpAddr, name: &str, ttl_secs: u32, now: Micros) {
        if self.capacity == 0 || name.is_empty() || name.len() > MAX_NAME_LEN {
            return;
        }
        let ttl = ttl_secs.clamp(MIN_TTL_SECS, MAX_TTL_SECS);
        let expires = now.saturating_add(i64::from(ttl) * MICROS_PER_SEC);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);

        let entry = self.map.entry(addr).or_insert_with(|| AddrEntry {
            generation,
            names: Vec::with_capacity(1),
        });
        entry.generation = generation;
        // Drop names that have expired by now, then the old copy of this name.
        entry.names.retain(|n| n.expires > now);
        let mut expires = expires;
        if let Some(i) = entry
            .names
            .iter()
            .position(|n| n.name.eq_ignore_ascii_case(name))
        {
            let old = entry.names.remove(i);
            expires = expires.max(old.expires);
        }
        entry.names.insert(
            0,
            NameEntry {
                name: name.to_ascii_lowercase().into_boxed_str(),
                expires,
            },
        );
        entry.names.truncate(MAX_NAMES_PER_ADDR);
        self.order.push_back((addr, generation));

        self.evict_over_capacity();
        self.compact_order();
    }

    /// The most recently seen unexpired name for `addr`.
    pub fn lookup(&self, addr: IpAddr, now: Micros) -> Option<&str> {
        self.map
            .get(&addr)?
            .names
            .iter()
            .find(|n| n.expires > now)
            .map(|n| &*n.name)
    }

    /// Every unexpired name for `addr`, most recent first (at most
    /// [`MAX_NAMES_PER_ADDR`]).
    pub fn lookup_all(&self, addr: IpAddr, now: Micros) -> impl Iterator<Item = &str> {
        self.map
            .get(&addr)
            .into_iter()
            .flat_map(|e| e.names.iter())
            .filter(move |n| n.expires > now)
            .map(|n| &*n.name)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries dropped to stay within capacity.
    ///
    /// Counts addresses evicted; names pushed out of an address's
    /// [`MAX_NAMES_PER_ADDR`] list are not counted.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Removes the least recently inserted addresses until within capacity.
    fn evict_over_capacity(&mut self) {
        while self.map.len() > self.capacity {
            let Some((addr, generation)) = self.order.pop_front() else {
                // Unreachable while every map entry has a queue entry; stop
                // rather than spin if that invariant were ever broken.
                break;
            };
            if self
                .map
                .get(&addr)
                .is_some_and(|e| e.generation == generation)
            {
                self.map.remove(&addr);
                self.evictions += 1;
            }
        }
    }

    /// Drops stale queue entries once they outnumber live ones, keeping the
    /// queue within `2 * capacity + 1`. Each compaction is O(queue) and
    /// follows at least `capacity` refreshes, so insert stays O(1) amortised.
    fn compact_order(&mut self) {
        if self.order.len() > self.capacity.saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(addr, g)| map.get(addr).is_some_and(|e| e.generation == *g));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SEC: Micros = 1_000_000;
    const T0: Micros = 1_700_000_000 * SEC;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn capacity_bound_under_many_inserts() {
        let mut c = DnsCache::new(1000);
        let mut new_addrs = 0u64;
        for i in 0..100_000u32 {
            // Mix of new addresses, refreshes of recent ones and re-inserts
            // of long-evicted ones (i / 2 falls behind the window).
            for (addr, name) in [(ip(i), "a.example"), (ip(i / 2), "b.example")] {
                if c.lookup(addr, T0).is_none() {
                    new_addrs += 1;
                }
                c.insert(addr, name, 600, T0);
                assert!(c.len() <= 1000);
                assert!(c.order.len() <= 2 * 1000 + 1);
            }
        }
        assert_eq!(c.len(), 1000);
        // Every address that came in and is no longer here was evicted.
        assert_eq!(c.evictions(), new_addrs - 1000);
        assert!(c.evictions() > 100_000);
        // The newest addresses survive, the oldest are gone.
        assert_eq!(c.lookup(ip(99_999), T0), Some("a.example"));
        assert_eq!(c.lookup(ip(49_999), T0), Some("b.example"));
        assert_eq!(c.lookup(ip(0), T0), None);
    }

    #[test]
    fn evicts_least_recently_inserted_first() {
        let mut c = DnsCache::new(3);
        c.insert(ip(1), "one", 600, T0);
        c.insert(ip(2), "two", 600, T0);
        c.insert(ip(3), "three", 600, T0);
        // Re-inserting 1 makes 2 the oldest.
        c.insert(ip(1), "one", 600, T0);
        c.insert(ip(4), "four", 600, T0);
        assert_eq!(c.lookup(ip(2), T0), None);
        assert_eq!(c.lookup(ip(1), T0), Some("one"));
        assert_eq!(c.evictions(), 1);
        c.insert(ip(5), "five", 600, T0);
        assert_eq!(c.lookup(ip(3), T0), None);
        assert_eq!(c.lookup(ip(1), T0), Some("one"));
        c.insert(ip(6), "six", 600, T0);
        assert_eq!(c.lookup(ip(1), T0), None);
        assert_eq!(c.len(), 3);
        assert_eq!(c.evictions(), 3);
    }

    #[test]
    fn ttl_is_clamped_and_expires() {
        let mut c = DnsCache::new(10);
        // A 4 s TTL (as real google.com answers carry) lasts the 300 s floor.
        c.insert(ip(1), "short.example", 4, T0);
        assert_eq!(c.lookup(ip(1), T0 + 299 * SEC), Some("short.example"));
        assert_eq!(c.lookup(ip(1), T0 + 300 * SEC), None);
        // A week-long TTL is cut to a day.
        c.insert(ip(2), "long.example", 7 * 86_400, T0);
        assert_eq!(c.lookup(ip(2), T0 + 86_399 * SEC), Some("long.example"));
        assert_eq!(c.lookup(ip(2), T0 + 86_400 * SEC), None);
        // In between, the TTL is used as is.
        c.insert(ip(3), "mid.example", 1000, T0);
        assert_eq!(c.lookup(ip(3), T0 + 999 * SEC), Some("mid.example"));
        assert_eq!(c.lookup(ip(3), T0 + 1000 * SEC), None);
        // Expired entries still occupy a slot until evicted or refreshed.
        assert_eq!(c.len(), 3);
        // Far-future timestamps do not overflow.
        c.insert(ip(4), "edge.example", u32::MAX, i64::MAX - 1);
        assert_eq!(c.lookup(ip(4), i64::MAX - 1), Some("edge.example"));
    }

    #[test]
    fn refresh_extends_and_reorders() {
        let mut c = DnsCache::new(10);
        c.insert(ip(1), "a.example", 300, T0);
        c.insert(ip(1), "b.example", 300, T0 + SEC);
        assert_eq!(c.lookup(ip(1), T0 + 2 * SEC), Some("b.example"));
        // Seeing a.example again (different case) makes it current and
        // extends its lifetime.
        c.insert(ip(1), "A.Example", 300, T0 + 200 * SEC);
        assert_eq!(c.lookup(ip(1), T0 + 201 * SEC), Some("a.example"));
        assert_eq!(c.lookup(ip(1), T0 + 400 * SEC), Some("a.example"));
        assert_eq!(c.lookup_all(ip(1), T0 + 201 * SEC).count(), 2);
        // A shorter refresh does not shorten a longer earlier answer.
        c.insert(ip(2), "c.example", 3600, T0);
        c.insert(ip(2), "c.example", 300, T0 + SEC);
        assert_eq!(c.lookup(ip(2), T0 + 3599 * SEC), Some("c.example"));
    }

    #[test]
    fn multiple_names_per_address() {
        let mut c = DnsCache::new(10);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        for (i, n) in ["n1", "n2", "n3", "n4", "n5", "n6"].iter().enumerate() {
            c.insert(v6, n, 600, T0 + i as i64 * SEC);
        }
        let all: Vec<&str> = c.lookup_all(v6, T0 + 10 * SEC).collect();
        assert_eq!(all, ["n6", "n5", "n4", "n3"]);
        assert_eq!(c.lookup(v6, T0 + 10 * SEC), Some("n6"));
        assert_eq!(c.len(), 1);
        assert_eq!(c.evictions(), 0);

        // When the newest name expires, lookup falls back to an older live one.
        let mut c = DnsCache::new(10);
        c.insert(ip(9), "long.example", 3600, T0);
        c.insert(ip(9), "short.example", 300, T0 + SEC);
        assert_eq!(c.lookup(ip(9), T0 + 2 * SEC), Some("short.example"));
        assert_eq!(c.lookup(ip(9), T0 + 400 * SEC), Some("long.example"));
    }

    #[test]
    fn degenerate_inputs() {
        let mut c = DnsCache::new(0);
        c.insert(ip(1), "x", 600, T0);
        assert!(c.is_empty());
        assert_eq!(c.lookup(ip(1), T0), None);

        let mut c = DnsCache::new(4);
        c.insert(ip(1), "", 600, T0);
        c.insert(ip(1), &"a".repeat(MAX_NAME_LEN + 1), 600, T0);
        assert!(c.is_empty());
        assert_eq!(c.capacity(), 4);
    }
}
