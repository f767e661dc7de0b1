//! Prefetch hints: ask the processor to start loading memory that a packet
//! processed soon will need, so that the cache misses of several packets
//! overlap. Hints only: they cannot fault and change no result. Every speed
//! trick of this kind lives here, and its users (the flow table, the
//! engine's batch schedule and block pools, the HTTP head) only call it.

/// Ask the processor to start loading the cache line holding `r`. A hint
/// only: it cannot fault and changes no result. Used to overlap the cache
/// misses of the next packets' flow look-ups with the work on this one.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 on the address of a live reference; prefetches
    // never fault and have no architectural effect.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(r).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// [`prefetch`] the line just before `*r`: where the allocator keeps the
/// header of the heap block `r` starts, which freeing the block reads.
#[inline(always)]
pub fn prefetch_block_header<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetches never fault, whatever the address (`wrapping_sub`
    // only computes it); no architectural effect.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let header = std::ptr::from_ref(r).cast::<i8>().wrapping_sub(16);
        _mm_prefetch::<_MM_HINT_T0>(header);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// [`prefetch`] every cache line of `*r` (for structures of a few lines),
/// including the line its last bytes straddle into when it does not start
/// on a line.
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    let base = std::ptr::from_ref(r).cast::<u8>();
    let size = std::mem::size_of::<T>();
    if size == 0 {
        return;
    }
    // From the line holding the first byte to the one holding the last.
    let skew = base.addr() % 64;
    for off in (0..skew + size).step_by(64) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `prefetch`; the address is within the lines `*r`
        // occupies (`wrapping_*` only computes it).
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let line = base.wrapping_sub(skew).wrapping_add(off);
            _mm_prefetch::<_MM_HINT_T0>(line.cast::<i8>());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (base, off);
    }
}
