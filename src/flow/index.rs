//! The flow table's hash index: open addressing with linear probing over
//! 8-byte entries, each holding 32 bits of the key's hash and a slab index.
//!
//! Why not a general hash map: a look-up here costs one cache line (the
//! entry, with its hash to filter candidates) before the slot itself, where
//! a map with separate control bytes and buckets costs two. With a million
//! flows in flight that line is usually a miss, so it is most of the price
//! of a packet. Growing needs no access to the slots either: an entry's home
//! position is derived from its stored hash.
//!
//! Deletion shifts the following entries of the probe run back (no
//! tombstones), so probe runs stay short however many flows come and go.

/// An empty entry. Stored entries keep the slab index plus one in the low
/// half, so they are never zero.
const EMPTY: u64 = 0;

/// Smallest number of entries once anything is stored.
const MIN_ENTRIES: usize = 64;

#[derive(Debug, Default)]
pub struct FlowIndex {
    entries: Vec<u64>,
    len: usize,
}

fn entry(hash: u32, slot: u32) -> u64 {
    (u64::from(hash) << 32) | (u64::from(slot) + 1)
}

fn entry_hash(e: u64) -> u32 {
    (e >> 32) as u32
}

fn entry_slot(e: u64) -> u32 {
    (e as u32).wrapping_sub(1)
}

impl FlowIndex {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn mask(&self) -> usize {
        self.entries.len().wrapping_sub(1)
    }

    /// The slot whose 32-bit `hash` matches and for which `eq` holds.
    #[inline]
    pub fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        let mask = self.mask();
        let mut pos = hash as usize & mask;
        // At most every entry once: the load factor keeps empty entries, so
        // the bound is never reached; it only makes the loop finite.
        for _ in 0..self.entries.len() {
            let e = *self.entries.get(pos)?;
            if e == EMPTY {
                return None;
            }
            if entry_hash(e) == hash && eq(entry_slot(e)) {
                return Some(entry_slot(e));
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Start loading the line where the probe for `hash` begins. A hint to
    /// the processor, with no effect on any result.
    #[inline]
    pub fn prefetch(&self, hash: u32) {
        if let Some(e) = self.entries.get(hash as usize & self.mask()) {
            crate::prefetch::prefetch(e);
        }
    }

    /// The slot of the first entry carrying `hash` among the first few of
    /// its probe run, without comparing keys: a guess, for prefetching.
    #[inline]
    pub fn peek(&self, hash: u32) -> Option<u32> {
        let mask = self.mask();
        let home = hash as usize & mask;
        (0..4)
            .map_while(|k| self.entries.get((home + k) & mask).copied())
            .take_while(|&e| e != EMPTY)
            .find(|&e| entry_hash(e) == hash)
            .map(entry_slot)
    }

    /// Add `slot` (not present yet) under `hash`.
    pub fn insert(&mut self, hash: u32, slot: u32) {
        // Grow at 3/4 load: linear probing stays at a few entries per probe
        // run, which is one or two cache lines.
        if (self.len + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        self.place(entry(hash, slot));
        self.len += 1;
    }

    fn place(&mut self, e: u64) {
        let mask = self.mask();
        let mut pos = entry_hash(e) as usize & mask;
        for _ in 0..self.entries.len() {
            match self.entries.get_mut(pos) {
                Some(x) if *x == EMPTY => {
                    *x = e;
                    return;
                }
                Some(_) => pos = (pos + 1) & mask,
                None => return,
            }
        }
    }

    fn grow(&mut self) {
        let n = (self.entries.len() * 2).max(MIN_ENTRIES);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; n]);
        for e in old.into_iter().filter(|&e| e != EMPTY) {
            self.place(e);
        }
    }

    /// Remove `slot`, stored under `hash`. Returns whether it was there.
    pub fn remove(&mut self, hash: u32, slot: u32) -> bool {
        let mask = self.mask();
        let target = entry(hash, slot);
        let mut pos = hash as usize & mask;
        let mut found = None;
        for _ in 0..self.entries.len() {
            match self.entries.get(pos) {
                Some(&e) if e == target => {
                    found = Some(pos);
                    break;
                }
                Some(&e) if e != EMPTY => pos = (pos + 1) & mask,
                _ => break,
            }
        }
        let Some(mut hole) = found else {
            return false;
        };
        // Backward shift: move later entries of the run into the hole when
        // their home position does not lie cyclically in (hole, j].
        let mut j = hole;
        for _ in 0..self.entries.len() {
            j = (j + 1) & mask;
            let e = self.entries.get(j).copied().unwrap_or(EMPTY);
            if e == EMPTY {
                break;
            }
            let home = entry_hash(e) as usize & mask;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if stays {
                continue;
            }
            if let Some(h) = self.entries.get_mut(hole) {
                *h = e;
            }
            hole = j;
        }
        if let Some(h) = self.entries.get_mut(hole) {
            *h = EMPTY;
        }
        self.len = self.len.saturating_sub(1);
        true
    }

    /// Forget everything (keeps the allocation).
    pub fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = EMPTY);
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a reference set, with hashes chosen to collide in long runs
    /// that wrap around the end of the array.
    #[test]
    fn matches_a_reference_under_churn() {
        let mut idx = FlowIndex::default();
        let mut reference = std::collections::HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..60_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = (x % 5_000) as u32;
            // Few distinct hash values, most near the top of the range.
            let hash = u32::MAX - (slot % 40);
            let present = reference.contains_key(&slot);
            if x & 3 == 0 && present {
                assert!(idx.remove(hash, slot));
                reference.remove(&slot);
            } else if !present {
                idx.insert(hash, slot);
                reference.insert(slot, hash);
            }
            if step % 4_999 == 0 {
                for (&s, &h) in &reference {
                    assert_eq!(idx.find(h, |c| c == s), Some(s));
                }
                assert_eq!(idx.len(), reference.len());
            }
        }
        for (&s, &h) in &reference {
            assert!(idx.remove(h, s));
        }
        assert_eq!(idx.len(), 0);
        assert!(idx.entries.iter().all(|&e| e == EMPTY));
        assert_eq!(idx.find(1, |_| true), None);
    }
}
