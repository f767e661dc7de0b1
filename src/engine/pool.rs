//! Heap blocks kept for reuse: the per-connection state of a flood of
//! short connections is allocated and freed as fast as packets arrive, so
//! an ended connection's block is emptied a little later (its allocator
//! headers prefetched meanwhile) and handed to the next connection.

use std::collections::VecDeque;

/// Stream blocks kept for reuse per engine (about 40 KB): enough to absorb
/// the bursts of a flood of short connections, where streams end as fast as
/// they start.
pub(super) const SPARE_STREAMS: usize = 64;

/// Ended streams whose blocks are emptied this many stream ends later, not
/// at once: emptying frees the request head's text and the block itself,
/// which reads allocator headers last touched when the connection began. The
/// headers are prefetched when the stream ends and read when it leaves this
/// queue, by which time they have arrived. Bounded: at most this many ended
/// streams' buffers outlive their stream.
pub(super) const RETIRE_AFTER: usize = 16;

/// Heap blocks of one kind, for reuse: an ended one is emptied after a
/// delay (`RETIRE_AFTER`), then kept for a new one (`SPARE_STREAMS`).
#[derive(Debug)]
pub(super) struct BlockPool<T> {
    pub(super) retiring: VecDeque<Box<T>>,
    // The boxes are the point: their heap blocks are what is reused.
    #[allow(clippy::vec_box)]
    pub(super) spare: Vec<Box<T>>,
}

impl<T> Default for BlockPool<T> {
    fn default() -> Self {
        Self {
            retiring: VecDeque::new(),
            spare: Vec::new(),
        }
    }
}

/// What a pooled block holds beyond itself.
pub(super) trait PooledBlock {
    /// Prefetch the allocator headers of the heap blocks that emptying
    /// this one frees (a hint only).
    fn prefetch_frees(&self);
    /// Free what it holds; the block itself stays.
    fn empty(&mut self);
}

impl<T: PooledBlock> BlockPool<T> {
    /// Its owner has ended (and reported): empty the block later. Emptying
    /// frees what it holds, which reads allocator headers last touched when
    /// the connection began: they are prefetched now and read when the
    /// block leaves the queue.
    pub(super) fn retire(&mut self, block: Box<T>) {
        crate::prefetch::prefetch_block_header(&*block);
        block.prefetch_frees();
        self.retiring.push_back(block);
        if self.retiring.len() > RETIRE_AFTER
            && let Some(old) = self.retiring.pop_front()
        {
            self.recycle(old);
        }
    }

    /// A block no longer needed (ended, or left by a connection that went
    /// idle or came back): emptied, and kept for a later one (a new one
    /// then needs no allocation).
    pub(super) fn recycle(&mut self, mut block: Box<T>) {
        block.empty();
        if self.spare.len() < SPARE_STREAMS {
            self.spare.push(block);
        }
    }

    /// An empty block (`TcpState::new(TcpApp::Done)`, as `recycle` leaves
    /// one), to be filled in place: a spare one (no allocation), or a new one.
    pub(super) fn take_empty(&mut self) -> Box<T>
    where
        T: Default,
    {
        self.spare.pop().unwrap_or_default()
    }

    /// A block holding `value`: a spare one (no allocation), or a new one.
    pub(super) fn take(&mut self, value: T) -> Box<T> {
        match self.spare.pop() {
            Some(mut block) => {
                *block = value;
                block
            }
            None => Box::new(value),
        }
    }
}
