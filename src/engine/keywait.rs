//! TLS connections whose records wait for session keys. Live, a key log is
//! followed by polling, so the keys of a connection reach the key table a
//! moment after its first encrypted records: those records are held by the
//! connection's decryptor (bounded there) and retried here when the key
//! table changes, or given up at the deadline. A connection that ends
//! while it waits is parked (its decryption state only, its stream state
//! released) until its keys come or its deadline passes, so a short session
//! is still read.
//!
//! The per-packet cost is one comparison of the packet clock with the next
//! sweep; a sweep runs at most every [`SWEEP_EVERY`] and only when a
//! connection waits.

use super::apps::decrypt::DecryptApp;
use super::context::FlowMeta;
use crate::findings::Micros;

/// Most often (on the packet or wall clock) the waiting connections are
/// looked at: when the key table changed since the last look.
pub(super) const SWEEP_EVERY: Micros = 100_000;
/// How often they are looked at when it did not (for their deadline).
pub(super) const DEADLINE_EVERY: Micros = 1_000_000;

/// An ended connection waiting for its keys.
#[derive(Debug)]
pub(super) struct Parked {
    pub(super) meta: FlowMeta,
    pub(super) app: Box<DecryptApp>,
}

#[derive(Debug, Default)]
pub(super) struct KeyWaits {
    /// Open flows: (flow table index, flow id). The id tells a reused slot.
    pub(super) open: Vec<(u32, u64)>,
    pub(super) parked: Vec<Parked>,
    /// Key-table generation at the last sweep.
    pub(super) generation: Option<u64>,
    /// Clock of the last look, and of the last sweep made for deadlines.
    pub(super) swept: Micros,
    pub(super) deadline_swept: Micros,
}

impl KeyWaits {
    pub(super) fn is_empty(&self) -> bool {
        self.open.is_empty() && self.parked.is_empty()
    }

    /// Whether a sweep at `now` is due: something waits and the last sweep
    /// is [`SWEEP_EVERY`] old.
    #[inline]
    pub(super) fn due(&self, now: Micros) -> bool {
        !self.is_empty() && now.saturating_sub(self.swept) >= SWEEP_EVERY
    }
}
