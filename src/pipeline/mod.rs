//! The pipeline both commands run: a source's frames, sharded by a
//! symmetric flow hash, in batches, to N worker threads, each running one
//! engine on its batches ([`worker::run`]); their observations go to one
//! channel for the findings layer.
//!
//! ```text
//! reader (capture thread, pipe, file) ─► Dispatcher ─batches─► worker 0..N (Engine) ─► observations
//!                                         queue policy: block (files, pipes) or drop newest (live)
//! ```
//!
//! With one worker and one interface the live capture thread runs the
//! engine itself ([`Dispatcher::inline`]): no copy to another core, no
//! hand-off, as in Suricata's "workers" mode.
//!
//! Offline, one worker runs on the reading thread itself and regular files
//! are read by every worker for its own shard (see `analyze`): the batches
//! and the engine's batch path ([`crate::engine::Engine::process_batch`])
//! are the same, only the hand-off differs.

pub mod batch;
pub mod detector;
pub mod dispatch;
pub mod shard;
pub mod worker;

pub use batch::Batch;
pub use detector::{DetectorSlot, DetectorView};
pub use dispatch::{Dispatcher, QueuePolicy};
pub use shard::{EVERY_WORKER, shard, shard_packet};
pub use worker::{Monitor, ObservationSender, WorkerLoop};

use crate::detect::dns_cache::DnsCache;
use crate::detect::hosts::Detector;
use crate::engine::{Engine, EngineConfig};
use crossbeam_channel::{Receiver, Sender, bounded};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The engines of `n` workers for a sensor (or an analysis) configured as
/// `cfg`: disjoint flow ids, an equal share of the memory bounds, one DNS
/// name cache.
pub fn engines(
    cfg: &EngineConfig,
    n: usize,
    detector: &Arc<Detector>,
    dns_cache: &Arc<Mutex<DnsCache>>,
) -> Vec<Engine> {
    (0..n)
        .map(|id| {
            Engine::with_dns_cache(cfg.for_worker(id, n), detector.clone(), dns_cache.clone())
        })
        .collect()
}

/// N worker threads and their queues.
pub struct Workers {
    queues: Vec<Sender<Batch>>,
    free: Receiver<Batch>,
    threads: Vec<JoinHandle<Engine>>,
}

impl Workers {
    /// One thread per engine, each with a queue of `queue_batches` batches;
    /// `monitor(id)` is worker `id`'s monitor.
    pub fn start<M: Monitor + 'static>(
        engines: Vec<Engine>,
        queue_batches: usize,
        slot: &Arc<DetectorSlot>,
        out: &ObservationSender,
        mut monitor: impl FnMut(usize) -> M,
    ) -> std::io::Result<Workers> {
        let n = engines.len();
        let queue_batches = queue_batches.max(1);
        // Every batch in flight can come back: the queues plus one each
        // being processed and one each being filled.
        let (free_tx, free_rx) = bounded::<Batch>(n * (queue_batches + 2));
        let mut queues = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for (id, engine) in engines.into_iter().enumerate() {
            let (tx, rx) = bounded::<Batch>(queue_batches);
            queues.push(tx);
            let (free, view, out) = (
                free_tx.clone(),
                DetectorView::new(slot.clone()),
                out.clone(),
            );
            let work = WorkerLoop::new(engine, view, out, Box::new(monitor(id)));
            threads.push(
                std::thread::Builder::new()
                    .name(format!("shadowmcp-worker-{id}"))
                    .spawn(move || worker::run(work, rx, free))?,
            );
        }
        Ok(Workers {
            queues,
            free: free_rx,
            threads,
        })
    }

    /// A reader's way into the workers' queues.
    pub fn dispatcher(
        &self,
        policy: QueuePolicy,
        slot: &Arc<DetectorSlot>,
        dns_cache: &Arc<Mutex<DnsCache>>,
    ) -> Dispatcher {
        Dispatcher::new(
            self.queues.clone(),
            self.free.clone(),
            policy,
            DetectorView::new(slot.clone()),
            dns_cache.clone(),
        )
    }

    /// Wait for the workers to finish: once every dispatcher is gone, each
    /// processes what its queue holds, finishes its flows and ends. The
    /// engines, in worker order (a worker that panicked is missing).
    pub fn finish(self) -> Vec<Engine> {
        drop(self.queues);
        self.threads
            .into_iter()
            .filter_map(|t| t.join().ok())
            .collect()
    }
}
