//! Cache hints: start fetching a line before the access that needs it.

/// Starts fetching the cache line at `ptr` into this core's cache, to read it. Any address: it
/// is never dereferenced. Does nothing off x86_64, under miri and under loom.
///
/// # Examples
///
/// ```
/// let table = vec![0_u64; 1024];
/// gosync_park::prefetch(&table[512]); // the line arrives while other work runs
/// assert_eq!(table[512], 0);
/// ```
#[inline]
pub fn prefetch<T>(ptr: *const T) {
    #[cfg(all(target_arch = "x86_64", not(any(miri, gosync_loom))))]
    // SAFETY: a prefetch never faults and changes nothing the program can observe, whatever
    // the address (SSE is part of x86_64).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(ptr.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(any(miri, gosync_loom)))))]
    let _ = ptr;
}

/// Starts fetching the cache line at `ptr` to write it (`prefetchw`: the line comes owned, not
/// shared). For a thread that will load a word and then change it with a read-modify-write
/// (a compare-and-swap computed from the load, a lock's `lock bts`): a plain load would fetch
/// the line shared, and the read-modify-write would then have to take it from the other cores
/// a second time. Any address: it is never dereferenced. On a processor without `prefetchw`,
/// and in an SGX enclave (where CPUID faults), a plain [`prefetch`]; off x86_64, under miri and
/// under loom, nothing.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// let word = AtomicU64::new(4);
/// gosync_park::prefetch_for_write(&word);
/// let seen = word.load(Ordering::Relaxed);
/// assert!(word.compare_exchange(seen, seen - 1, Ordering::Acquire, Ordering::Relaxed).is_ok());
/// ```
#[inline]
pub fn prefetch_for_write<T>(ptr: *const T) {
    #[cfg(all(
        target_arch = "x86_64",
        not(any(miri, gosync_loom, target_env = "sgx"))
    ))]
    if prefetchw::has_prefetchw() {
        // SAFETY: this processor has `prefetchw` (`prefetchw::has_prefetchw`), and a prefetch
        // never faults and changes nothing the program can observe, whatever the address.
        // Inline assembly because `_mm_prefetch::<_MM_HINT_ET0>` compiles to `prefetcht0`
        // unless the whole crate is built with the `prfchw` target feature.
        unsafe {
            std::arch::asm!(
                "prefetchw [{}]",
                in(reg) ptr,
                options(nostack, preserves_flags, readonly)
            );
        }
        return;
    }
    prefetch(ptr);
}

/// Whether this processor has `prefetchw` (CPUID `0x8000_0001`, ECX bit 8, `PRFCHW`): not
/// every x86_64 processor does (some early Intel 64 ones fault on it), and std's
/// `is_x86_feature_detected!` does not know the feature. Asked once, then cached: the writer's
/// path is one load and a branch.
#[cfg(all(
    target_arch = "x86_64",
    not(any(miri, gosync_loom, target_env = "sgx"))
))]
mod prefetchw {
    // A plain std atomic, as the buckets hint in `resize.rs`: a fact about the processor,
    // outside what loom models (this module is not built under loom).
    use std::sync::atomic::{AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const ABSENT: u8 = 1;
    const PRESENT: u8 = 2;

    /// `UNKNOWN` until asked, then `ABSENT` or `PRESENT`.
    static CACHED: AtomicU8 = AtomicU8::new(UNKNOWN);

    #[inline]
    pub(super) fn has_prefetchw() -> bool {
        // Relaxed: every thread computes the same answer, so any value read is right.
        match CACHED.load(Ordering::Relaxed) {
            UNKNOWN => detect(),
            cached => cached == PRESENT,
        }
    }

    /// Asks CPUID, and caches the answer.
    #[cold]
    #[inline(never)]
    // `__cpuid` is a safe function on newer toolchains, unsafe on the workspace's oldest.
    #[allow(unused_unsafe)]
    fn detect() -> bool {
        use std::arch::x86_64::__cpuid;
        // SAFETY: every x86_64 processor has CPUID (outside an SGX enclave, excluded above);
        // leaf `0x8000_0000` (the highest extended leaf) is always valid, and leaf
        // `0x8000_0001` is asked only when that reports it.
        let present = unsafe {
            __cpuid(0x8000_0000).eax >= 0x8000_0001 && __cpuid(0x8000_0001).ecx & (1 << 8) != 0
        };
        // Relaxed: see `has_prefetchw`.
        CACHED.store(if present { PRESENT } else { ABSENT }, Ordering::Relaxed);
        present
    }
}
