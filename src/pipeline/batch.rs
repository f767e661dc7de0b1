//! Batches of frames: what a reader hands to a worker, stored contiguously
//! so that handing one over costs one channel send, and recycled so that
//! the steady state does not allocate.

use crate::capture::FrameAt;
use crate::engine::Engine;
use crate::findings::Micros;

/// Packets per batch.
pub const BATCH_PACKETS: usize = 256;
/// Bytes per batch (whichever fills first).
pub const BATCH_BYTES: usize = 512 * 1024;

/// Frames of one link type, in capture order.
pub struct Batch {
    linktype: i32,
    data: Vec<u8>,
    /// (timestamp, offset, length) per frame.
    frames: Vec<FrameAt>,
}

impl Batch {
    pub fn new(linktype: i32) -> Self {
        Self {
            linktype,
            data: Vec::with_capacity(BATCH_BYTES),
            frames: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    /// Process every frame, in order (see [`Engine::process_batch`]).
    pub fn run(&self, engine: &mut Engine) {
        engine.process_batch(self.linktype, &self.data, &self.frames);
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn linktype(&self) -> i32 {
        self.linktype
    }

    /// The frames' bytes, and each frame's (timestamp, offset, length).
    pub fn parts(&self) -> (&[u8], &[FrameAt]) {
        (&self.data, &self.frames)
    }

    /// Copy a frame in.
    pub fn push(&mut self, ts: Micros, frame: &[u8]) {
        let off = self.data.len() as u32;
        self.data.extend_from_slice(frame);
        self.frames.push((ts, off, frame.len() as u32));
    }

    /// Full: hand it on.
    pub fn full(&self) -> bool {
        self.frames.len() >= BATCH_PACKETS || self.data.len() >= BATCH_BYTES
    }

    /// Empty, for frames of `linktype`.
    pub fn clear(&mut self, linktype: i32) {
        self.linktype = linktype;
        self.data.clear();
        self.frames.clear();
    }

    /// Add a frame of `linktype`; a batch holds one link type, so a batch
    /// of another is first handed to `run` (and emptied). Then, when full,
    /// the batch is handed to `run`.
    pub fn add(
        &mut self,
        linktype: i32,
        ts: Micros,
        frame: &[u8],
        mut run: impl FnMut(&mut Batch),
    ) {
        if !self.is_empty() && self.linktype != linktype {
            run(self);
            self.clear(linktype);
        }
        if self.is_empty() {
            self.linktype = linktype;
        }
        self.push(ts, frame);
        if self.full() {
            run(self);
            self.clear(linktype);
        }
    }
}
