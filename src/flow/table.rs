//! The bounded flow table: a slab of entries indexed by a hash table of slab
//! indices, threaded on an intrusive LRU list so that both idle expiry and
//! eviction at the cap are O(1) (the least recently seen flow is always at
//! the tail).
//!
//! A flow that has ended (TCP FIN both ways, or RST) moves to a second list
//! and is forgotten after the short `closed_timeout` (late ACKs and
//! retransmissions still find it), not after the idle timeout: on a link
//! where most connections are short, this keeps the table, and the part of
//! it the packets touch, a fraction of its size (as Zeek's `tcp_close_delay`
//! and Suricata's closed-state timeout do). At the cap, closed flows are
//! evicted before live ones.
//!
//! The index (`FlowIndex`) holds 8-byte entries (32 bits of hash, a slab
//! index), not keys: with a million flows it is 16 MB instead of about
//! 100 MB, and a look-up touches one line of it before the slot. The key is
//! compared in the slot, which the packet needs next anyway.

use super::FlowKey;
use super::index::FlowIndex;
use crate::findings::Micros;

const NIL: u32 = u32::MAX;

/// The two lists a slot can be on.
const LIVE: usize = 0;
const CLOSED: usize = 1;

/// A flow is moved to the head of the LRU list at most once per this much
/// packet time. Relinking touches two neighbours at random places in memory;
/// doing it on every packet of a busy flow costs cache misses for nothing.
/// Invariant: `last_seen <= placed + RELINK_AFTER` for every slot, so the list
/// order is within this bound of true least-recently-seen order, and idle
/// expiry is at most this late.
const RELINK_AFTER: Micros = 1_000_000;

/// A closed flow overdue by more than this makes `expire` remove every due
/// closed flow at once; otherwise it removes one per call (one per packet).
const CATCH_UP_AFTER: Micros = 100_000;

/// Tail slots given a second chance per insertion at the cap.
const SECOND_CHANCES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictReason {
    /// No packet for longer than the idle timeout.
    Idle,
    /// The table was full and this was the least recently seen flow.
    Capacity,
    /// Ended (FIN both ways or RST) longer than the closed timeout ago.
    Closed,
    /// End of input (offline) or shutdown.
    Flush,
}

#[derive(Debug)]
struct Slot<T> {
    key: FlowKey,
    /// On the closed list (fits in the key's padding).
    closed: bool,
    prev: u32,
    next: u32,
    last_seen: Micros,
    /// When the slot was last moved to the head (of the live list), or
    /// when it was closed.
    placed: Micros,
    value: Option<T>,
}

#[derive(Debug)]
pub struct FlowTable<T> {
    index: FlowIndex,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Per list (`LIVE`, `CLOSED`): most and least recently placed slot.
    head: [u32; 2],
    tail: [u32; 2],
    capacity: usize,
    idle_timeout: Micros,
    closed_timeout: Micros,
    /// The closed tail whose index entry was last prefetched.
    index_prefetched: u32,
}

impl<T> FlowTable<T> {
    /// Bytes of one flow's slot: key, list links, times and the value.
    pub const SLOT_BYTES: usize = std::mem::size_of::<Slot<T>>();
    /// Bytes of the hash index per flow: 8-byte entries, grown by doubling
    /// at 3/4 load, so between 8 ÷ 3/4 and 8 ÷ 3/8 bytes.
    pub const INDEX_BYTES_PER_FLOW: (usize, usize) = (8 * 4 / 3, 8 * 8 / 3 + 1);

    /// `capacity` flows at most (at least 1); flows idle for `idle_timeout`
    /// microseconds, and closed flows after `closed_timeout`, are expired by
    /// `expire`.
    pub fn new(capacity: usize, idle_timeout: Micros, closed_timeout: Micros) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize - 1);
        Self {
            index: FlowIndex::default(),
            slots: Vec::new(),
            free: Vec::new(),
            head: [NIL; 2],
            tail: [NIL; 2],
            capacity,
            idle_timeout,
            closed_timeout: closed_timeout.min(idle_timeout),
            index_prefetched: NIL,
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

    /// Take slot `i` off the list it is on.
    fn unlink(&mut self, i: u32) {
        let (prev, next, list) = match self.slots.get(i as usize) {
            Some(s) => (s.prev, s.next, usize::from(s.closed)),
            None => return,
        };
        match self.slots.get_mut(prev as usize) {
            Some(p) => p.next = next,
            None => self.head[list] = next,
        }
        match self.slots.get_mut(next as usize) {
            Some(n) => n.prev = prev,
            None => self.tail[list] = prev,
        }
    }

    /// Put slot `i` at the head of the list its `closed` flag names.
    fn push_front(&mut self, i: u32) {
        let Some(list) = self.slots.get(i as usize).map(|s| usize::from(s.closed)) else {
            return;
        };
        let old = self.head[list];
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.prev = NIL;
            s.next = old;
        }
        match self.slots.get_mut(old as usize) {
            Some(h) => h.prev = i,
            None => self.tail[list] = i,
        }
        self.head[list] = i;
    }

    /// Remove the flow at the tail of a list.
    fn pop_tail(&mut self, list: usize) -> Option<(FlowKey, T)> {
        let i = self.tail[list];
        self.remove_index(i)
    }

    /// The flow in slot `i` has ended: keep it for the closed timeout only.
    pub fn close(&mut self, i: u32, now: Micros) {
        match self.slots.get(i as usize) {
            Some(s) if s.value.is_some() && !s.closed => {}
            _ => return,
        }
        self.unlink(i);
        if let Some(s) = self.slots.get_mut(i as usize) {
            s.closed = true;
            s.placed = s.last_seen.max(now);
        }
        self.push_front(i);
    }

    /// Whether the flow in slot `i` has ended (see [`FlowTable::close`]).
    pub fn is_closed(&self, i: u32) -> bool {
        self.slots.get(i as usize).is_some_and(|s| s.closed)
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
        on_evict: impl FnMut(FlowKey, T, EvictReason),
    ) -> (u32, bool) {
        self.get_or_insert_hashed(key, key.table_hash(), None, now, make, on_evict)
    }

    /// [`FlowTable::get_or_insert`] with `hash == key.table_hash()` already
    /// computed (for the prefetch of the frames ahead), and the slot the
    /// flow was last seen in, if known ([`FlowTable::prefetch_slot`]): a
    /// hint, used only if that slot still holds the flow.
    pub fn get_or_insert_hashed(
        &mut self,
        key: FlowKey,
        hash: u32,
        hint: Option<u32>,
        now: Micros,
        make: impl FnOnce() -> T,
        mut on_evict: impl FnMut(FlowKey, T, EvictReason),
    ) -> (u32, bool) {
        debug_assert_eq!(hash, key.table_hash());
        let slots = &self.slots;
        // Keys are unique among the flows in the table: a slot holding a
        // flow of this key holds the flow.
        let holds = |j: u32| {
            slots
                .get(j as usize)
                .is_some_and(|s| s.key == key && s.value.is_some())
        };
        let found = match hint {
            Some(j) if holds(j) => Some(j),
            _ => self.index.find(hash, holds),
        };
        if let Some(i) = found {
            let mut relink = false;
            if let Some(s) = self.slots.get_mut(i as usize) {
                // Packet time can step back across files or reordered capture; never regress.
                s.last_seen = s.last_seen.max(now);
                // A closed flow stays where it was closed: late packets do
                // not keep it.
                if !s.closed && s.last_seen.saturating_sub(s.placed) > RELINK_AFTER {
                    s.placed = s.last_seen;
                    relink = true;
                }
            }
            if relink && self.head[LIVE] != i {
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
            // Closed flows go first: nothing more is learned from them.
            if self.tail[CLOSED] != NIL {
                match self.pop_tail(CLOSED) {
                    Some((k, v)) => on_evict(k, v, EvictReason::Capacity),
                    None => break,
                }
                continue;
            }
            let tail = self.tail[LIVE];
            let touched = self
                .slots
                .get(tail as usize)
                .is_some_and(|s| s.last_seen > s.placed);
            if touched && chances < SECOND_CHANCES && self.head[LIVE] != tail {
                chances += 1;
                if let Some(s) = self.slots.get_mut(tail as usize) {
                    s.placed = s.last_seen;
                }
                self.unlink(tail);
                self.push_front(tail);
                continue;
            }
            match self.pop_tail(LIVE) {
                Some((k, v)) => on_evict(k, v, EvictReason::Capacity),
                None => break,
            }
        }
        let slot = Slot {
            key,
            closed: false,
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
    /// slot of the flow with this hash, if it exists. Returns that slot, a
    /// guess made without comparing keys (see [`FlowTable::peek_value_at`]
    /// and the hint of [`FlowTable::get_or_insert_hashed`]).
    #[inline]
    pub fn prefetch_slot(&self, hash: u32) -> Option<u32> {
        let i = self.index.peek(hash)?;
        if let Some(s) = self.slots.get(i as usize) {
            // A slot spans two or three lines (the compiler orders its
            // fields, so the key may sit in any): load them all.
            crate::prefetch::prefetch_all(s);
        }
        Some(i)
    }

    /// The value in slot `i` (a guess of [`FlowTable::prefetch_slot`],
    /// which may since have been given to another flow: for prefetching
    /// what it points to).
    #[inline]
    pub fn peek_value_at(&self, i: u32) -> Option<&T> {
        self.slots.get(i as usize)?.value.as_ref()
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

    /// Expire flows idle for longer than the idle timeout, and closed flows
    /// closed for longer than the closed timeout, oldest first.
    pub fn expire(&mut self, now: Micros, mut on_evict: impl FnMut(FlowKey, T, EvictReason)) {
        while let Some(s) = self.slots.get(self.tail[LIVE] as usize) {
            if now.saturating_sub(s.last_seen) <= self.idle_timeout {
                break;
            }
            match self.pop_tail(LIVE) {
                Some((k, v)) => on_evict(k, v, EvictReason::Idle),
                None => break,
            }
        }
        while let Some(s) = self.slots.get(self.tail[CLOSED] as usize) {
            let closed_for = now.saturating_sub(s.placed);
            if closed_for <= self.closed_timeout {
                // Its removal will need its index entry: load it once, now
                // that the slot (and so the key) is at hand.
                if self.index_prefetched != self.tail[CLOSED] {
                    self.index_prefetched = self.tail[CLOSED];
                    self.index.prefetch(s.key.table_hash());
                }
                break;
            }
            let next = s.prev;
            match self.pop_tail(CLOSED) {
                Some((k, v)) => on_evict(k, v, EvictReason::Closed),
                None => break,
            }
            // Closed flows usually fall due one at a time, a few packets
            // apart: start loading the next one (cold: closed seconds ago)
            // and look at it on the next call. Far behind (a gap in packet
            // time), catch up now.
            if closed_for <= self.closed_timeout.saturating_add(CATCH_UP_AFTER) {
                if let Some(n) = self.slots.get(next as usize) {
                    crate::prefetch::prefetch_all(n);
                }
                break;
            }
        }
    }

    /// Remove every flow, oldest first (closed ones, then live ones).
    pub fn drain(&mut self, mut on_evict: impl FnMut(FlowKey, T, EvictReason)) {
        // Walk the lists from the tail and empty the index once at the end,
        // rather than unlinking and unindexing every flow.
        for list in [CLOSED, LIVE] {
            let mut i = self.tail[list];
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
        }
        self.index.clear();
        self.head = [NIL; 2];
        self.tail = [NIL; 2];
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

    /// The slot hint of a look-up is used only while its slot holds the
    /// flow: a stale hint (the slot freed and given to another flow), a
    /// wrong one or one out of range falls back to the index.
    #[test]
    fn a_slot_hint_is_checked_against_the_key() {
        let mut t = FlowTable::new(100, 1_000_000, 1_000_000);
        let get = |t: &mut FlowTable<u16>, n: u16, hint: Option<u32>| {
            let k = key(n);
            t.get_or_insert_hashed(k, k.table_hash(), hint, 0, || n, |_, _, _| {})
        };
        let (one, _) = get(&mut t, 1, None);
        let (two, _) = get(&mut t, 2, None);
        assert_eq!(get(&mut t, 1, Some(one)), (one, false));
        assert_eq!(get(&mut t, 2, Some(one)), (two, false), "wrong hint");
        assert_eq!(get(&mut t, 2, Some(u32::MAX)), (two, false), "out of range");
        // Flow 1 leaves; flow 3 takes its slot.
        assert!(t.remove(one).is_some());
        let (three, new) = get(&mut t, 3, None);
        assert!(new);
        assert_eq!(three, one, "the freed slot is reused");
        // Flow 1 again, with its old (now stale) slot as the hint: a new
        // flow, not flow 3.
        let (again, new) = get(&mut t, 1, Some(one));
        assert!(new);
        assert_ne!(again, three);
        assert_eq!(t.get_mut(three).copied(), Some(3));
        assert_eq!(t.get_mut(again).copied(), Some(1));
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn capacity_evicts_least_recent() {
        let mut t = FlowTable::new(3, 1_000_000, 1_000_000);
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
        let mut t = FlowTable::new(100, 50, 50);
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
        let mut t = FlowTable::new(1000, i64::MAX, i64::MAX);
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

    #[test]
    fn closed_flows_expire_after_the_closed_timeout_and_go_first_at_the_cap() {
        let mut t = FlowTable::new(3, 1_000, 10);
        let mut ids = Vec::new();
        for n in 1..=3u16 {
            ids.push(t.get_or_insert(key(n), 0, || n, |_, _, _| {}).0);
        }
        t.close(ids[1], 5);
        assert!(t.is_closed(ids[1]) && !t.is_closed(ids[0]));
        // A late packet finds the closed flow and does not revive it.
        let (i, new) = t.get_or_insert(key(2), 12, || 99, |_, _, _| {});
        assert_eq!((i, new), (ids[1], false));
        let mut gone = Vec::new();
        t.expire(15, |_, v, r| gone.push((v, r)));
        assert!(gone.is_empty(), "closed 10 us ago: kept");
        t.expire(16, |_, v, r| gone.push((v, r)));
        assert_eq!(gone, [(2, EvictReason::Closed)]);
        // At the cap a closed flow is evicted before the oldest live one.
        t.get_or_insert(key(4), 20, || 4, |_, _, _| {});
        let four = t.get_or_insert(key(4), 20, || 0, |_, _, _| {}).0;
        t.close(four, 21);
        let mut evicted = Vec::new();
        t.get_or_insert(key(5), 22, || 5, |_, v, r| evicted.push((v, r)));
        assert_eq!(evicted, [(4, EvictReason::Capacity)]);
        // Drain: both lists, every flow once.
        let one = t.get_or_insert(key(1), 23, || 0, |_, _, _| {}).0;
        t.close(one, 23);
        let mut rest = Vec::new();
        t.drain(|_, v, _| rest.push(v));
        rest.sort_unstable();
        assert_eq!(rest, [1, 3, 5]);
        assert!(t.is_empty());
    }

    #[test]
    fn closed_flows_due_together_leave_one_per_call_unless_far_behind() {
        let mut t = FlowTable::new(100, 60_000_000, 10);
        for n in 1..=6u16 {
            let i = t.get_or_insert(key(n), 0, || n, |_, _, _| {}).0;
            t.close(i, i64::from(n));
        }
        let mut gone = Vec::new();
        // Flows 1 to 3 are due (just): one per call, oldest first.
        for _ in 0..4 {
            t.expire(13 + 1, |_, v, _| gone.push(v));
        }
        assert_eq!(gone, [1, 2, 3]);
        assert_eq!(t.len(), 3);
        // Far behind (a gap in packet time): everything due goes at once.
        t.expire(16 + CATCH_UP_AFTER + 1, |_, v, _| gone.push(v));
        assert_eq!(gone, [1, 2, 3, 4, 5, 6]);
        assert!(t.is_empty());
    }
}
