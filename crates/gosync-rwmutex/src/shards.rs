//! Per-thread reader counts: how [`RwMutex`](crate::RwMutex) readers keep off each other's
//! cache lines once they contend.
//!
//! A lock starts as one word that counts its readers. Readers on different cores that all
//! increment that word take turns owning its cache line, and that hand-over, not the locking,
//! is what a read-mostly lock then spends its time on. So the first time a guard's reader finds
//! another reader inside, it gives the lock [`ReaderShards`]: one counter per shard, each on a
//! cache line of its own (`crossbeam_utils::CachePadded`), as many shards as the machine has
//! cores (a power of two, at most [`MAX_SHARDS`]). From then on a guard takes its read lock by
//! incrementing the counter of its thread's shard, and a writer, once it has claimed the lock,
//! checks every shard for readers still inside.
//!
//! The guard remembers where it was counted (a [`ReadSlot`]), so its release goes to the same
//! counter whichever thread drops it, and every counter stays exact. The raw lock's own
//! `lock_shared`/`unlock_shared` (and so `lock_api`'s guards) have nowhere to keep a slot:
//! they always count in the word.
//!
//! Shards are allocated once per lock, on the first contended read, and freed with the lock.
//! A thread's shard is fixed when it first reads through a sharded lock: threads take shards in
//! turn, so up to as many threads as there are shards each have one of their own.

use std::ptr;

use crossbeam_utils::CachePadded;
use gosync_park::sync::{AtomicPtr, AtomicUsize, Ordering};

/// The most shards a lock gets, however many cores there are: a writer checks every one.
pub(crate) const MAX_SHARDS: usize = 64;

/// One shard: the number of readers counted there, alone on its cache line.
pub(crate) type Shard = CachePadded<AtomicUsize>;

/// Where a guard's read lock is counted: in the lock word, or in one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadSlot(usize);

impl ReadSlot {
    /// Counted in the lock word.
    pub(crate) const WORD: Self = Self(usize::MAX);

    /// Counted in the shard at `index`.
    #[inline]
    pub(crate) fn shard(index: usize) -> Self {
        debug_assert!(index < MAX_SHARDS);
        Self(index)
    }

    /// The shard this read lock is counted in, if any.
    #[inline]
    pub(crate) fn shard_index(self) -> Option<usize> {
        (self != Self::WORD).then_some(self.0)
    }
}

/// A lock's shards, allocated on first use. Null until then; never freed before the lock.
pub(crate) struct ReaderShards {
    first: AtomicPtr<Shard>,
}

impl ReaderShards {
    /// No shards yet.
    #[cfg(not(gosync_loom))]
    pub(crate) const fn new() -> Self {
        Self {
            first: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// No shards yet.
    #[cfg(gosync_loom)]
    pub(crate) fn new() -> Self {
        Self {
            first: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// This thread's shard and its index, if the shards exist.
    #[inline]
    pub(crate) fn home(&self) -> Option<(usize, &Shard)> {
        // Acquire: pairs with the Release that installed the shards, so their zeroed counters
        // are seen before this thread counts itself in one.
        let first = self.first.load(Ordering::Acquire);
        if first.is_null() {
            return None;
        }
        let index = home_index();
        // SAFETY: `first` points at `shard_count()` shards that live as long as `self`, and
        // `home_index` is below that count.
        Some((index, unsafe { &*first.add(index) }))
    }

    /// The shard at `index`.
    ///
    /// # Safety
    ///
    /// `index` came from [`home`](Self::home) on this same `ReaderShards` (so the shards exist
    /// and it is in bounds).
    #[inline]
    pub(crate) unsafe fn at(&self, index: usize) -> &Shard {
        // Acquire: pairs with the Release that installed the shards (this may be another thread
        // than the one whose `home` found them).
        let first = self.first.load(Ordering::Acquire);
        debug_assert!(!first.is_null() && index < shard_count());
        // SAFETY: by the caller's promise, `first` points at the live shards and `index` is in
        // bounds.
        unsafe { &*first.add(index) }
    }

    /// Allocates the shards, unless another thread got there first.
    #[cold]
    pub(crate) fn install(&self) {
        let shards: Box<[Shard]> = (0..shard_count())
            .map(|_| CachePadded::new(AtomicUsize::new(0)))
            .collect();
        let mine = Box::into_raw(shards).cast::<Shard>();
        // Release: pairs with the Acquire in `home`, publishing the zeroed counters.
        // Relaxed on failure: the shards seen there are not touched here.
        if self
            .first
            .compare_exchange(ptr::null_mut(), mine, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: `mine` came from `Box::into_raw` of `shard_count()` shards just above and
            // was never shared.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(mine, shard_count())) });
        }
    }

    /// Whether no reader is counted in any shard (true if there are no shards).
    ///
    /// A writer calls it after claiming the lock and a `SeqCst` fence; see `raw.rs`.
    pub(crate) fn all_zero(&self) -> bool {
        // Acquire, here and per shard: pairs with the Release decrement of each reader that
        // left, so its reads happen before the writer's writes.
        let first = self.first.load(Ordering::Acquire);
        if first.is_null() {
            return true;
        }
        // SAFETY: non-null means installed: `shard_count()` shards that live as long as `self`.
        let shards = unsafe { &*ptr::slice_from_raw_parts(first, shard_count()) };
        shards
            .iter()
            .all(|shard| shard.load(Ordering::Acquire) == 0)
    }

    /// The number of readers counted in the shards, at about this instant (for display).
    pub(crate) fn readers(&self) -> usize {
        // Acquire: pairs with the Release that installed the shards (their zeroed counters).
        let first = self.first.load(Ordering::Acquire);
        if first.is_null() {
            return 0;
        }
        // SAFETY: as in `all_zero`.
        let shards = unsafe { &*ptr::slice_from_raw_parts(first, shard_count()) };
        // Relaxed: a snapshot, ordering nothing.
        shards.iter().fold(0, |sum, shard| {
            sum.wrapping_add(shard.load(Ordering::Relaxed))
        })
    }
}

impl Drop for ReaderShards {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means whatever installed or used the shards happened before.
        let first = self.first.load(Ordering::Relaxed);
        if !first.is_null() {
            // SAFETY: installed by `install` from a `Box` of `shard_count()` shards; `&mut self`
            // means no reader can reach them any more.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(first, shard_count())) });
        }
    }
}

/// How many shards each lock gets in this process: the cores available when first asked,
/// rounded up to a power of two, at most [`MAX_SHARDS`]. Fixed once computed, so every lock's
/// allocation and release agree on it.
#[cfg(not(gosync_loom))]
fn shard_count() -> usize {
    static COUNT: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |cores| cores.get())
            .next_power_of_two()
            .min(MAX_SHARDS)
    })
}

/// Under loom: two shards, so that two model threads count on different lines.
#[cfg(gosync_loom)]
fn shard_count() -> usize {
    2
}

/// This thread's shard index, below `shard_count()`: threads take shards in turn when they
/// first read through a sharded lock.
#[inline]
fn home_index() -> usize {
    HOME.with(|home| match home.get() {
        0 => {
            // Relaxed: a ticket, ordering nothing.
            let index =
                NEXT_TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & (shard_count() - 1);
            home.set(index + 1);
            index
        }
        index_plus_one => index_plus_one - 1,
    })
}

#[cfg(not(gosync_loom))]
thread_local! {
    /// One past this thread's shard index; 0 until it has one.
    static HOME: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The next turn to hand out.
#[cfg(not(gosync_loom))]
static NEXT_TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// Under loom: a model thread's shard and the turn counter live for one execution, so that runs
// replay deterministically.
#[cfg(gosync_loom)]
loom::thread_local! {
    static HOME: std::cell::Cell<usize> = std::cell::Cell::new(0);
}

#[cfg(gosync_loom)]
loom::lazy_static! {
    static ref NEXT_TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use super::*;

    #[test]
    fn shard_count_is_a_power_of_two_within_bounds() {
        let count = shard_count();
        assert!(count.is_power_of_two() && count <= MAX_SHARDS, "{count}");
    }

    #[test]
    fn a_thread_keeps_its_shard() {
        assert_eq!(home_index(), home_index());
        assert!(home_index() < shard_count());
    }

    #[test]
    fn install_is_idempotent_and_counts_start_at_zero() {
        let shards = ReaderShards::new();
        assert!(shards.home().is_none());
        assert!(shards.all_zero());
        shards.install();
        let (index, shard) = shards.home().expect("installed");
        shards.install();
        // SAFETY: `index` came from `home` on these shards.
        let again = unsafe { shards.at(index) };
        assert!(
            ptr::eq(shard, again),
            "a second install replaced the shards"
        );
        shard.fetch_add(1, Ordering::Relaxed);
        assert!(!shards.all_zero());
        assert_eq!(shards.readers(), 1);
        shard.fetch_sub(1, Ordering::Relaxed);
        assert!(shards.all_zero());
    }

    #[test]
    fn read_slots_tell_word_from_shard() {
        assert_eq!(ReadSlot::WORD.shard_index(), None);
        assert_eq!(ReadSlot::shard(3).shard_index(), Some(3));
    }
}
