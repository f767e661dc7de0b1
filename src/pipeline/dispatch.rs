//! A reader's side of the pipeline: frames sharded into one batch per
//! worker, handed over when full, with a queue policy for when a worker's
//! queue is full.

use super::batch::Batch;
use super::detector::DetectorView;
use super::shard::shard;
use crate::detect::dns_cache::DnsCache;
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

/// Shards a reader's frames into the workers' queues.
pub struct Dispatcher {
    queues: Vec<Sender<Batch>>,
    /// Batches the workers are done with, to be filled again: a new batch
    /// per hand-off would cost an allocation and page faults on 512 KiB.
    free: Receiver<Batch>,
    pending: Vec<Batch>,
    policy: QueuePolicy,
    detector: DetectorView,
    dns_cache: Arc<Mutex<DnsCache>>,
    dropped: u64,
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
            queues,
            free,
            pending,
            policy,
            detector,
            dns_cache,
            dropped: 0,
        }
    }

    /// One frame, to its worker's batch.
    pub fn push(&mut self, linktype: i32, ts: Micros, frame: &[u8]) {
        let (w, dns) = shard(linktype, frame, self.queues.len());
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

    /// Hand every partial batch over.
    pub fn flush(&mut self) {
        for w in 0..self.pending.len() {
            self.hand_over(w);
        }
    }

    /// Frames dropped on full queues so far (`QueuePolicy::DropNewest`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn hand_over(&mut self, w: usize) {
        let (Some(slot), Some(q)) = (self.pending.get_mut(w), self.queues.get(w)) else {
            return;
        };
        if slot.is_empty() {
            return;
        }
        let lt = slot.linktype();
        let mut fresh = self.free.try_recv().unwrap_or_else(|_| Batch::new(lt));
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
    /// Frames still waiting are handed over: a reader that stops (end of
    /// input, shutdown) loses nothing it read.
    fn drop(&mut self) {
        self.flush();
    }
}
