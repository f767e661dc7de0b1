//! The detector in force (signatures and allowlist), replaced atomically
//! on reload. Threads check the generation (one relaxed load per batch) and
//! fetch the new one when it moved.

use crate::detect::hosts::Detector;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub struct DetectorSlot {
    detector: RwLock<Arc<Detector>>,
    generation: AtomicU64,
}

impl DetectorSlot {
    pub fn new(detector: Arc<Detector>) -> Self {
        Self {
            detector: RwLock::new(detector),
            generation: AtomicU64::new(0),
        }
    }

    pub fn current(&self) -> Arc<Detector> {
        match self.detector.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Bumped by every [`DetectorSlot::replace`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn replace(&self, d: Detector) {
        match self.detector.write() {
            Ok(mut g) => *g = Arc::new(d),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(d),
        }
        self.generation.fetch_add(1, Ordering::Release);
    }
}

/// A thread's view of the slot: the detector it uses, refreshed when the
/// slot's generation moved.
pub struct DetectorView {
    slot: Arc<DetectorSlot>,
    generation: u64,
    current: Arc<Detector>,
}

impl DetectorView {
    pub fn new(slot: Arc<DetectorSlot>) -> Self {
        let generation = slot.generation();
        let current = slot.current();
        Self {
            slot,
            generation,
            current,
        }
    }

    /// The new detector, if it was replaced since the last call.
    pub fn changed(&mut self) -> Option<Arc<Detector>> {
        let g = self.slot.generation();
        if g == self.generation {
            return None;
        }
        self.generation = g;
        self.current = self.slot.current();
        Some(self.current.clone())
    }

    /// The detector as of the last [`DetectorView::changed`].
    pub fn current(&self) -> &Arc<Detector> {
        &self.current
    }
}
