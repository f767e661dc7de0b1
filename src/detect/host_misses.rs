//! Host header values that matched no known server, remembered per engine.
//!
//! Every cleartext HTTP connection's Host is checked once against the
//! known-server signatures: about 500 instructions (the name is cut from its
//! port, checked, lower-cased and looked up), most of a short connection's
//! detection work besides the head parse. On a real link most connections go
//! to hosts seen moments before (keep-alive pools, polling, retries), and
//! nearly all of them are no known server: this small direct-mapped set
//! answers "no match" for those from the raw value in a few dozen.
//!
//! Only misses are kept (a match also depends on the request's path), only
//! values of up to [`MAX_VALUE`] bytes, and the set is emptied whenever the
//! signatures change. A hostile Host only costs the full check again.

use std::hash::Hasher;

/// Entries (a power of two): a few KB per engine.
const SLOTS: usize = 64;
/// Longer Host values are not remembered (checked each time).
pub const MAX_VALUE: usize = 47;

#[derive(Clone, Copy)]
struct Slot {
    /// 0: empty.
    len: u8,
    value: [u8; MAX_VALUE],
}

const EMPTY: Slot = Slot {
    len: 0,
    value: [0; MAX_VALUE],
};

pub struct HostMisses {
    slots: Box<[Slot; SLOTS]>,
}

impl std::fmt::Debug for HostMisses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = self.slots.iter().filter(|s| s.len > 0).count();
        f.debug_struct("HostMisses").field("used", &used).finish()
    }
}

impl Default for HostMisses {
    fn default() -> Self {
        Self {
            slots: Box::new([EMPTY; SLOTS]),
        }
    }
}

fn slot_of(value: &[u8]) -> usize {
    let mut h = rustc_hash::FxHasher::default();
    h.write(value);
    // The top bits of the multiplicative hash are the well-mixed ones.
    (h.finish() >> (64 - SLOTS.trailing_zeros())) as usize
}

impl HostMisses {
    /// `value` (a Host header as sent) was remembered as matching no known
    /// server.
    pub fn contains(&self, value: &str) -> bool {
        let v = value.as_bytes();
        if v.is_empty() || v.len() > MAX_VALUE {
            return false;
        }
        self.slots
            .get(slot_of(v))
            .is_some_and(|s| usize::from(s.len) == v.len() && s.value.get(..v.len()) == Some(v))
    }

    /// Remember that `value` matched no known server (replacing whatever
    /// shared its slot).
    pub fn insert(&mut self, value: &str) {
        let v = value.as_bytes();
        if v.is_empty() || v.len() > MAX_VALUE {
            return;
        }
        if let Some(s) = self.slots.get_mut(slot_of(v))
            && let Some(dst) = s.value.get_mut(..v.len())
        {
            dst.copy_from_slice(v);
            s.len = v.len() as u8;
        }
    }

    /// Forget everything (the signatures changed).
    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_exact_values_within_bounds() {
        let mut m = HostMisses::default();
        assert!(!m.contains("www.example.org"));
        m.insert("www.example.org");
        assert!(m.contains("www.example.org"));
        // Exact bytes only: case, port and prefixes are other values.
        for other in [
            "WWW.example.org",
            "www.example.org:80",
            "www.example.or",
            "",
        ] {
            assert!(!m.contains(other), "{other}");
        }
        let long = "a".repeat(MAX_VALUE + 1);
        m.insert(&long);
        assert!(!m.contains(&long));
        let longest = "b".repeat(MAX_VALUE);
        m.insert(&longest);
        assert!(m.contains(&longest));
        m.clear();
        assert!(!m.contains("www.example.org"));
        assert!(!m.contains(&longest));
    }

    #[test]
    fn a_value_evicts_only_its_slot() {
        let mut m = HostMisses::default();
        let names: Vec<String> = (0..1000).map(|i| format!("h{i}.example")).collect();
        for n in &names {
            m.insert(n);
        }
        // The last one is always there; no value is ever reported that was
        // not inserted; at most one per slot survives.
        assert!(m.contains(names.last().map(String::as_str).unwrap_or_default()));
        assert!(!m.contains("never.example"));
        let kept = names.iter().filter(|n| m.contains(n)).count();
        assert!((1..=SLOTS).contains(&kept), "{kept}");
    }
}
