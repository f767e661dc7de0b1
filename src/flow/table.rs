//! The bounded flow table: a slab of entries indexed by a hash table of slab
//! indices, threaded on an intrusive LRU list so that both idle expiry and
//! eviction at the cap are O(1) (the least recently seen flow is always at
//! the tail).
//!
//! The index (`FlowIndex`) holds 8-byte entries (32 bits of hash, a slab
//! index), not keys: with a million flows it is 16 MB instead of about
//! 100 MB, and a look-up touches one line of it before the slot. The key is
//! compared in the slot, which the packet needs next anyway.

use super::FlowKey;
use super::index::FlowIndex;
use crate::findings::Micros;

const NIL: u32 = u32::MAX;

/// A flow is moved to the head of the LRU list at most once per this much
/// packet time. Relinking touches two neighbours at random places in memory;
/// doing it on every packet of a busy flow costs cache misses for nothing.
/// Invariant: `last_seen <= placed + RELINK_AFTER` for every slot, so the list
/// order is within this bound of true least-recently-seen order, and idle
/// expiry is at most this late.
const RELINK_AFTER: Micros = 1_000_000;

/// Tail slots given a second chance per insertion at the cap.
const SECOND_CHANCES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictReason {
    /// No packet for longer than the idle timeout.
    Idle,
    /// The table was full and this was the least recently seen flow.
    Capacity,
    /// End of input (offline) or shutdown.
    Flush,
}

#[derive(Debug)]
struct Slot<T> {
    key: FlowKey,
    prev: u32,
    next: u32,
    last_seen: Micros,
    /// When the slot was last moved to the head.
    placed: Micros,
    value: Option<T>,
}

#[derive(Debug)]
pub struct FlowTable<T> {
    index: FlowIndex,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    capacity: usize,
    idle_timeout: Micros,
}

impl<T> FlowTable<T> {
    /// `capacity` flows at most (at least 1); flows idle for `idle_timeout`
    /// microseconds are expired by `expire`.
    pub fn new(capacity: usize, idle_timeout: Micros) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize - 1);
        Self {
            index: FlowIndex::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity,
            idle_timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = match self.slots.get(i as usize) {
            Some(s) => (s.prev, s.next),
            None => return,
        };
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.prev = NIL;
            s.next = old;
        }
        match self.slots.get_mut(old as usize) {
            Some(h) => h.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    /// Remove the least recently seen flow.
    fn pop_tail(&mut self) -> Option<(FlowKey, T)> {
        let i = self.tail;
        self.remove_index(i)
    }

    fn remove_index(&mut self, i: u32) -> Option<(FlowKey, T)> {
        let slot = self.slots.get(i as usize)?;
        // A free slot is not in the index or the list.
        slot.value.as_ref()?;
        let key = slot.key;
        self.unlink(i);
        self.index.remove(key.table_hash(), i);
        self.free.push(i);
        let value = self.slots.get_mut(i as usize)?.value.take()?;
        Some((key, value))
    }

    /// Find the flow for `key`, or create it with `make` (evicting the least
    /// recently seen flow when the table is full; the victim is handed to
    /// `on_evict`). Marks the flow as seen at `now`. Returns the slot index and
    /// whether the flow is new.
    pub fn get_or_insert(
        &mut self,
        key: FlowKey,
        now: Micros,
        make: impl FnOnce() -> T,
        mut on_evict: impl FnMut(FlowKey, T, EvictReason),
    ) -> (u32, bool) {
        let hash = key.table_hash();
        let slots = &self.slots;
        let found = self.index.find(hash, |j| {
            slots
                .get(j as usize)
                .is_some_and(|s| s.key == key && s.value.is_some())
        });
        if let Some(i) = found {
            let mut relink = false;
            if let Some(s) = self.slots.get_mut(i as usize) {
                // Packet time can step back across files or reordered capture; never regress.
                s.last_seen = s.last_seen.max(now);
                if s.last_seen.saturating_sub(s.placed) > RELINK_AFTER {
                    s.placed = s.last_seen;
                    relink = true;
                }
            }
            if relink && self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return (i, false);
        }
        // At the cap, evict the least recently seen flow. The list is only
        // approximately ordered (see RELINK_AFTER), so a tail slot seen since
        // it was placed gets a second chance at the head: a busy session is
        // not pushed out by a burst of new flows. Bounded per insertion.
        let mut chances = 0;
        while self.index.len() >= self.capacity {
            let tail = self.tail;
            let touched = self
                .slots
                .get(tail as usize)
                .is_some_and(|s| s.last_seen > s.placed);
            if touched && chances < SECOND_CHANCES && self.head != tail {
                chances += 1;
                if let Some(s) = self.slots.get_mut(tail as usize) {
                    s.placed = s.last_seen;
                }
                self.unlink(tail);
                self.push_front(tail);
                continue;
            }
            match self.pop_tail() {
                Some((k, v)) => on_evict(k, v, EvictReason::Capacity),
                None => break,
            }
        }
        let slot = Slot {
            key,
            prev: NIL,
            next: NIL,
            last_seen: now,
            placed: now,
            value: Some(make()),
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slots.get_mut(i as usize) {
                    *s = slot;
                }
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(hash, i);
        self.push_front(i);
        (i, true)
    }

    /// Prefetch, first stage: the index line of the flow with this hash.
    #[inline]
    pub fn prefetch_index(&self, hash: u32) {
        self.index.prefetch(hash);
    }

    /// Prefetch, second stage (once the index line is likely loaded): the
    /// slot of the flow with this hash, if it exists.
    #[inline]
    pub fn prefetch_slot(&self, hash: u32) {
        if let Some(s) = self
            .index
            .peek(hash)
            .and_then(|i| self.slots.get(i as usize))
        {
            super::prefetch(s);
            // A slot spans two lines; the value sits in the second.
            super::prefetch(&s.value);
        }
    }

    /// The value of the flow with this hash, guessed without comparing keys
    /// (for prefetching what it points to).
    #[inline]
    pub fn peek_value(&self, hash: u32) -> Option<&T> {
        self.slots
            .get(self.index.peek(hash)? as usize)?
            .value
            .as_ref()
    }

    pub fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.slots.get_mut(i as usize)?.value.as_mut()
    }

    pub fn key(&self, i: u32) -> Option<&FlowKey> {
        self.slots
            .get(i as usize)
            .filter(|s| s.value.is_some())
            .map(|s| &s.key)
    }

    /// Remove one flow (e.g. after a TCP RST when nothing more can be learned).
    pub fn remove(&mut self, i: u32) -> Option<(FlowKey, T)> {
        self.remove_index(i)
    }

    /// Expire flows idle for longer than the timeout, oldest first.
    pub fn expire(&mut self, now: Micros, mut on_evict: impl FnMut(FlowKey, T, EvictReason)) {
        while let Some(s) = self.slots.get(self.tail as usize) {
            if now.saturating_sub(s.last_seen) <= self.idle_timeout {
                break;
            }
            match self.pop_tail() {
                Some((k, v)) => on_evict(k, v, EvictReason::Idle),
                None => break,
            }
        }
    }

    /// Remove every flow, oldest first.
    pub fn drain(&mut self, mut on_evict: impl FnMut(FlowKey, T, EvictReason)) {
        // Walk the list from the tail and empty the index once at the end,
        // rather than unlinking and unindexing every flow.
        let mut i = self.tail;
        for _ in 0..self.slots.len() {
            let Some(s) = self.slots.get_mut(i as usize) else {
                break;
            };
            let prev = s.prev;
            if let Some(v) = s.value.take() {
                on_evict(s.key, v, EvictReason::Flush);
            }
            i = prev;
        }
        self.index.clear();
        self.head = NIL;
        self.tail = NIL;
        self.slots.clear();
        self.free.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::PROTO_TCP;
    use std::net::IpAddr;

    fn key(n: u16) -> FlowKey {
        let c: IpAddr = "10.0.0.1".parse().unwrap();
        let s: IpAddr = "10.0.0.2".parse().unwrap();
        FlowKey::from_packet(c, n, s, 443, PROTO_TCP).0
    }

    #[test]
    fn capacity_evicts_least_recent() {
        let mut t = FlowTable::new(3, 1_000_000);
        let mut evicted = Vec::new();
        for n in 1..=3 {
            t.get_or_insert(
                key(n),
                n as i64 * 2_000_000,
                || n,
                |_, v, _| evicted.push(v),
            );
        }
        // Touch flow 1 seconds later (relinks are per second) so flow 2 is the oldest.
        t.get_or_insert(key(1), 10_000_000, || 0, |_, v, _| evicted.push(v));
        t.get_or_insert(
            key(4),
            11_000_000,
            || 4,
            |_, v, r| {
                assert_eq!(r, EvictReason::Capacity);
                evicted.push(v)
            },
        );
        assert_eq!(evicted, vec![2]);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn idle_expiry_and_drain() {
        let mut t = FlowTable::new(100, 50);
        for n in 0..10u16 {
            t.get_or_insert(key(n), n as i64 * 10, || n, |_, _, _| {});
        }
        let mut gone = Vec::new();
        t.expire(100, |_, v, r| {
            assert_eq!(r, EvictReason::Idle);
            gone.push(v)
        });
        // Flows seen at 0..=40 are idle for more than 50 at t=100.
        assert_eq!(gone, vec![0, 1, 2, 3, 4]);
        let mut rest = Vec::new();
        t.drain(|_, v, _| rest.push(v));
        assert_eq!(rest, vec![5, 6, 7, 8, 9]);
        assert!(t.is_empty());
    }

    #[test]
    fn bounded_under_flood_and_slots_reused() {
        let mut t = FlowTable::new(1000, i64::MAX);
        let mut evictions = 0;
        for n in 0..50_000u32 {
            let k = FlowKey::from_packet(
                IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
                1234,
                "10.255.0.1".parse().unwrap(),
                80,
                PROTO_TCP,
            )
            .0;
            t.get_or_insert(k, n as i64, || n, |_, _, _| evictions += 1);
        }
        assert_eq!(t.len(), 1000);
        assert_eq!(evictions, 49_000);
        assert!(t.slots.len() <= 1001);
    }
}
