//! A reader's side of the pipeline: frames sharded into one batch per
//! worker, handed over when full, with a queue policy for when a worker's
//! queue is full.

use super::batch::Batch;
use super::detector::DetectorView;
use super::shard::{EVERY_WORKER, shard};
use super::worker::WorkerLoop;
use crate::capture::FrameAt;
use crate::detect::dns_cache::DnsCache;
use crate::engine::Engine;
use crate::findings::Micros;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::{Arc, Mutex};

/// What a reader does when a worker's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Wait for the worker: capture files and pipes, where nothing may be
    /// lost. Every DNS frame is also handed over at once, so the worker
    /// holding a DNS flow keeps pace with the frames around it.
    Block,
    /// Drop the batch and count its frames: live capture, where waiting
    /// would make the kernel drop instead, blindly.
    DropNewest,
}

/// Shards a reader's frames into the workers' queues, or runs them on the
/// reader's own engine.
pub struct Dispatcher {
    target: Target,
    pending: Vec<Batch>,
    policy: QueuePolicy,
    detector: DetectorView,
    dns_cache: Arc<Mutex<DnsCache>>,
    dropped: u64,
}

/// Where full batches go.
enum Target {
    Queues {
        queues: Vec<Sender<Batch>>,
        /// Batches the workers are done with, to be filled again: a new
        /// batch per hand-off would cost an allocation and page faults on
        /// 512 KiB.
        free: Receiver<Batch>,
    },
    /// The reader's thread is the only worker: a full batch is processed
    /// at once and its buffer reused. `None` once finished.
    Inline(Option<Box<WorkerLoop>>),
}

impl Dispatcher {
    pub(super) fn new(
        queues: Vec<Sender<Batch>>,
        free: Receiver<Batch>,
        policy: QueuePolicy,
        detector: DetectorView,
        dns_cache: Arc<Mutex<DnsCache>>,
    ) -> Self {
        let pending = queues.iter().map(|_| Batch::new(0)).collect();
        Self {
            target: Target::Queues { queues, free },
            pending,
            policy,
            detector,
            dns_cache,
            dropped: 0,
        }
    }

    /// The only worker, run by the reader's thread: frames are batched as
    /// for a worker thread and each full batch is processed at once, so the
    /// frames are still in this core's cache and nothing is handed over.
    /// Nothing waits in a queue, so nothing is dropped here; a reader that
    /// falls behind leaves the backlog in the kernel's ring (counted there).
    pub fn inline(
        work: WorkerLoop,
        detector: DetectorView,
        dns_cache: Arc<Mutex<DnsCache>>,
    ) -> Self {
        Self {
            target: Target::Inline(Some(Box::new(work))),
            pending: vec![Batch::new(0)],
            policy: QueuePolicy::Block,
            detector,
            dns_cache,
            dropped: 0,
        }
    }

    /// One frame, to its worker's batch.
    pub fn push(&mut self, linktype: i32, ts: Micros, frame: &[u8]) {
        let (w, dns) = match &self.target {
            Target::Queues { queues, .. } => shard(linktype, frame, queues.len()),
            // One engine sees every DNS answer before the packets after it.
            Target::Inline(_) => (0, false),
        };
        if dns {
            // The answer reaches the shared cache before any later packet
            // of the connection it names is read, whichever worker has it.
            self.detector.changed();
            crate::engine::prime_dns_cache(
                self.detector.current(),
                &self.dns_cache,
                ts,
                linktype,
                frame,
            );
        }
        if w == EVERY_WORKER {
            for w in 0..self.pending.len() {
                self.push_to(w, linktype, ts, frame, false);
            }
        } else {
            self.push_to(w, linktype, ts, frame, dns);
        }
    }

    /// One frame to worker `w`'s batch, handed over when full (or at once
    /// for a DNS frame read from a file or pipe).
    fn push_to(&mut self, w: usize, linktype: i32, ts: Micros, frame: &[u8], dns: bool) {
        let Some(b) = self.pending.get_mut(w) else {
            return;
        };
        if !b.is_empty() && b.linktype() != linktype {
            self.hand_over(w);
        }
        let Some(b) = self.pending.get_mut(w) else {
            return;
        };
        if b.is_empty() {
            b.clear(linktype);
        }
        b.push(ts, frame);
        if b.full() || (dns && self.policy == QueuePolicy::Block) {
            self.hand_over(w);
        }
    }

    /// Frames of `linktype` lying in `data`. `in_place`: `data` is a whole
    /// ring block that stays valid for this call only; the inline worker
    /// then processes it where it lies (after any partial batch, to keep
    /// the order), anything else copies the frames into batches.
    pub fn push_frames(&mut self, linktype: i32, data: &[u8], frames: &[FrameAt], in_place: bool) {
        if in_place && matches!(self.target, Target::Inline(Some(_))) {
            self.hand_over(0);
            if let Target::Inline(Some(work)) = &mut self.target {
                work.frames(linktype, data, frames);
            }
            return;
        }
        for &(ts, off, len) in frames {
            let (o, l) = (off as usize, len as usize);
            if let Some(frame) = data.get(o..o.saturating_add(l)) {
                self.push(linktype, ts, frame);
            }
        }
    }

    /// Hand every partial batch over (inline: process it, and report the
    /// engine's counters when due).
    pub fn flush(&mut self) {
        for w in 0..self.pending.len() {
            self.hand_over(w);
        }
        if let Target::Inline(Some(work)) = &mut self.target {
            work.tick();
        }
    }

    /// The source had nothing for a while (inline: the engine's idle work,
    /// see [`WorkerLoop::idle`]).
    pub fn idle(&mut self) {
        if let Target::Inline(Some(work)) = &mut self.target {
            work.idle();
        }
    }

    /// Hand everything over; inline, also finish the engine's flows and
    /// return the engine.
    pub fn finish(mut self) -> Option<Engine> {
        self.flush();
        match &mut self.target {
            Target::Inline(work) => work.take().map(|w| w.finish()),
            Target::Queues { .. } => None,
        }
    }

    /// Frames dropped on full queues so far (`QueuePolicy::DropNewest`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn hand_over(&mut self, w: usize) {
        let Some(slot) = self.pending.get_mut(w) else {
            return;
        };
        if slot.is_empty() {
            return;
        }
        let lt = slot.linktype();
        let (queues, free) = match &mut self.target {
            Target::Queues { queues, free } => (queues, free),
            Target::Inline(work) => {
                if let Some(work) = work {
                    work.batch(slot);
                }
                slot.clear(lt);
                return;
            }
        };
        let Some(q) = queues.get(w) else {
            return;
        };
        let mut fresh = free.try_recv().unwrap_or_else(|_| Batch::new(lt));
        fresh.clear(lt);
        let batch = std::mem::replace(slot, fresh);
        match self.policy {
            QueuePolicy::Block => {
                // A worker gone (it panicked): nothing to wait for.
                let _ = q.send(batch);
            }
            QueuePolicy::DropNewest => match q.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => {
                    self.dropped += b.len() as u64;
                }
            },
        }
    }
}

impl Drop for Dispatcher {
    /// Frames still waiting are handed over (inline: processed, and the
    /// engine's flows finished): a reader that stops (end of input,
    /// shutdown) loses nothing it read.
    fn drop(&mut self) {
        self.flush();
        if let Target::Inline(work) = &mut self.target
            && let Some(w) = work.take()
        {
            w.finish();
        }
    }
}
