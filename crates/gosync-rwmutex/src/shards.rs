//! Per-thread reader counts: how [`RwMutex`](crate::RwMutex) readers keep off each other's
//! cache lines while they contend.
//!
//! A lock starts as one word that counts its readers. Readers on different cores that all
//! increment that word take turns owning its cache line, and that hand-over, not the locking,
//! is what a read-mostly lock then spends its time on. So when a guard's reader finds another
//! reader inside, the lock starts counting guards' readers in [`ReaderShards`]: one counter per
//! shard, each on a cache line of its own (`crossbeam_utils::CachePadded`), as many shards as
//! the machine has cores (a power of two, at most [`MAX_SHARDS`]). A guard then takes its read
//! lock by incrementing the counter of its thread's shard, and a writer, once it has claimed
//! the lock, checks every shard for readers still inside.
//!
//! That check costs a writer a look at every shard, which only pays while reads outnumber
//! writes. So each shard also counts the readers that entered it, and a writer that finds fewer
//! than [`KEEP_SHARDED_READS`] entries per shard since the previous writer's look sends readers
//! back to the word (`raw.rs` clears `SHARDED`) until they contend again.
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

/// A writer that finds fewer readers than this per shard entered since the previous writer
/// looked sends readers back to the lock word: with so few reads between writes, the writers'
/// looks at every shard cost more than the readers save. Under loom one per shard, so that a
/// model with two reads through the shards before a write explores a writer keeping them, and
/// one with fewer a writer sending readers back.
pub(crate) const KEEP_SHARDED_READS: usize = if gosync_park::model::IS_LOOM { 1 } else { 2 };

/// A shard's word: the readers inside in the low half, the readers that ever entered (wrapping)
/// in the high half.
const INSIDE_BITS: u32 = usize::BITS / 2;
/// The readers inside, in a shard's word.
const INSIDE_MASK: usize = (1 << INSIDE_BITS) - 1;
/// A reader entering a shard: one more inside, one more entry.
const ENTER: usize = 1 + (1 << INSIDE_BITS);
/// A shard with this many readers inside takes no more; they count in the lock word instead
/// (long before the count could reach the entries half).
const SHARD_FULL: usize = 1 << (INSIDE_BITS - 1);

/// One shard: readers inside and readers entered, alone on a cache line.
pub(crate) struct Shard(CachePadded<AtomicUsize>);

impl Shard {
    fn new() -> Self {
        Self(CachePadded::new(AtomicUsize::new(0)))
    }

    /// Counts a reader in. Returns `false` if the shard was full (the reader is counted all the
    /// same, and must [`leave`](Self::leave)).
    ///
    /// SeqCst: the first half of the reader's side of the store-buffering pattern in `raw.rs`;
    /// its `SeqCst` look at the lock word follows.
    #[inline]
    pub(crate) fn enter(&self) -> bool {
        self.0.fetch_add(ENTER, Ordering::SeqCst) & INSIDE_MASK < SHARD_FULL
    }

    /// Counts a reader out.
    #[inline]
    pub(crate) fn leave(&self) {
        // SeqCst: the first half of the leaving reader's side of the store-buffering pattern in
        // `raw.rs`. Also a release: pairs with the Acquire loads of the writer that looks at the
        // shards next, so this reader's reads happen before its writes.
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

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

/// What a writer found when it looked at the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShardsSeen {
    /// A reader is inside.
    Busy,
    /// Nobody is inside; `entered` sums the shards' entry counts (wrapping), for
    /// [`ReaderShards::few_entered_since`].
    Empty { entered: usize },
}

/// A lock's shards, allocated on first use. Null until then; never freed before the lock.
///
/// The allocation is `1 + shard_count()` lines: the first holds, for writers only, the entries
/// the previous writer saw; the shards follow.
pub(crate) struct ReaderShards {
    block: AtomicPtr<Shard>,
}

impl ReaderShards {
    gosync_park::const_unless_loom! {
        /// No shards yet.
        pub(crate) const fn new() -> Self {
            Self {
                block: AtomicPtr::new(ptr::null_mut()),
            }
        }
    }

    /// The allocation, if installed. Acquire: pairs with the Release that installed it, so
    /// its zeroed counters are seen before they are used.
    #[inline]
    fn block(&self) -> Option<&[Shard]> {
        let block = self.block.load(Ordering::Acquire);
        // SAFETY: non-null means installed: `1 + shard_count()` lines that live as long as
        // `self`.
        (!block.is_null()).then(|| unsafe { &*ptr::slice_from_raw_parts(block, block_len()) })
    }

    /// This thread's shard and its index, if the shards exist.
    #[inline]
    pub(crate) fn home(&self) -> Option<(usize, &Shard)> {
        let index = home_index();
        self.block().map(|block| (index, &block[1 + index]))
    }

    /// The shard at `index`.
    ///
    /// # Panics
    ///
    /// If `index` did not come from [`home`](Self::home) on this same `ReaderShards`.
    #[inline]
    pub(crate) fn at(&self, index: usize) -> &Shard {
        &self.block().expect("a shard slot of a lock without shards")[1 + index]
    }

    /// Whether the shards are allocated.
    #[inline]
    pub(crate) fn installed(&self) -> bool {
        // Relaxed: a hint; `install` copes with a race.
        !self.block.load(Ordering::Relaxed).is_null()
    }

    /// Allocates the shards, unless another thread got there first.
    #[cold]
    pub(crate) fn install(&self) {
        let block: Box<[Shard]> = (0..block_len()).map(|_| Shard::new()).collect();
        let mine = Box::into_raw(block).cast::<Shard>();
        // Release: pairs with the Acquire in `block`, publishing the zeroed counters.
        // Relaxed on failure: the allocation seen there is not touched here.
        if self
            .block
            .compare_exchange(ptr::null_mut(), mine, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: `mine` came from `Box::into_raw` of `block_len()` lines just above and was
            // never shared.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(mine, block_len())) });
        }
    }

    /// Looks at every shard: whether a reader is inside. `Empty` if there are no shards.
    ///
    /// The writer that holds the lock calls it, after a `SeqCst` fence (see `raw.rs`).
    pub(crate) fn look(&self) -> ShardsSeen {
        let mut entered = 0_usize;
        for shard in self.block().map_or(&[][..], |block| &block[1..]) {
            // Acquire: pairs with the Release in `Shard::leave`.
            let word = shard.0.load(Ordering::Acquire);
            if word & INSIDE_MASK != 0 {
                return ShardsSeen::Busy;
            }
            entered = entered.wrapping_add(word >> INSIDE_BITS);
        }
        ShardsSeen::Empty { entered }
    }

    /// Records `entered`, from a [`look`](Self::look) of the writer that now holds the lock, and
    /// returns whether fewer than [`KEEP_SHARDED_READS`] readers per shard entered since the
    /// previous such record.
    pub(crate) fn few_entered_since(&self, entered: usize) -> bool {
        let Some(block) = self.block() else {
            return true;
        };
        // Relaxed: only writers holding the lock touch it, and the lock orders them.
        let before = block[0].0.swap(entered, Ordering::Relaxed);
        let since = entered.wrapping_sub(before) & (usize::MAX >> INSIDE_BITS);
        since < KEEP_SHARDED_READS * (block.len() - 1)
    }

    /// The number of readers inside the shards, at about this instant (for display).
    pub(crate) fn readers(&self) -> usize {
        self.block().map_or(0, |block| {
            // Relaxed: a snapshot, ordering nothing.
            block[1..].iter().fold(0, |sum, shard| {
                sum.wrapping_add(shard.0.load(Ordering::Relaxed) & INSIDE_MASK)
            })
        })
    }
}

impl Drop for ReaderShards {
    fn drop(&mut self) {
        // Relaxed: `&mut self` means whatever installed or used the shards happened before.
        let block = self.block.load(Ordering::Relaxed);
        if !block.is_null() {
            // SAFETY: installed by `install` from a `Box` of `block_len()` lines; `&mut self`
            // means no reader can reach them any more.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(block, block_len())) });
        }
    }
}

/// The lines a lock's allocation holds: the writers' line and the shards.
#[inline]
fn block_len() -> usize {
    1 + shard_count()
}

/// The shard count once known ([`shard_count`]); 0 before.
static SHARD_COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many shards each lock gets in this process: the cores available when first asked,
/// rounded up to a power of two, at most [`MAX_SHARDS`]. Fixed once computed, so every lock's
/// allocation and release agree on it. Under loom two, so that two model threads count on
/// different lines.
///
/// Every read lock and unlock asks, so once known the answer is one relaxed load, inlined
/// (the first computation is out of line).
#[inline]
fn shard_count() -> usize {
    if gosync_park::model::IS_LOOM {
        return 2;
    }
    // Relaxed: a cache of a number every thread computes the same; see `count_shards`.
    match SHARD_COUNT.load(std::sync::atomic::Ordering::Relaxed) {
        0 => count_shards(),
        count => count,
    }
}

/// Computes the shard count and caches it in [`SHARD_COUNT`]; the first computation wins, so a
/// lock's allocation and release agree even if the cores available change meanwhile.
#[cold]
fn count_shards() -> usize {
    let count = std::thread::available_parallelism()
        .map_or(1, |cores| cores.get())
        .next_power_of_two()
        .min(MAX_SHARDS);
    // Relaxed: as in `shard_count`.
    match SHARD_COUNT.compare_exchange(
        0,
        count,
        std::sync::atomic::Ordering::Relaxed,
        std::sync::atomic::Ordering::Relaxed,
    ) {
        Ok(_) => count,
        Err(first) => first,
    }
}

/// This thread's shard index, below `shard_count()`: threads take shards in turn
/// ([`gosync_park::thread_ticket`]).
#[inline]
fn home_index() -> usize {
    gosync_park::thread_ticket() & (shard_count() - 1)
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
        assert!(shards.home().is_none() && !shards.installed());
        assert_eq!(shards.look(), ShardsSeen::Empty { entered: 0 });
        shards.install();
        let (index, shard) = shards.home().expect("installed");
        shards.install();
        assert!(
            ptr::eq(shard, shards.at(index)),
            "a second install replaced the shards"
        );
        assert!(shard.enter());
        assert_eq!(shards.look(), ShardsSeen::Busy);
        assert_eq!(shards.readers(), 1);
        shard.leave();
        assert_eq!(shards.readers(), 0);
    }

    #[test]
    fn writers_tell_busy_from_quiet_shards() {
        let shards = ReaderShards::new();
        shards.install();
        let (_, shard) = shards.home().expect("installed");
        let keep = KEEP_SHARDED_READS * shard_count();
        for _ in 0..keep {
            assert!(shard.enter());
            shard.leave();
        }
        let ShardsSeen::Empty { entered } = shards.look() else {
            panic!("nobody is inside");
        };
        assert_eq!(
            shards.look(),
            ShardsSeen::Empty { entered },
            "a look records nothing"
        );
        assert!(
            !shards.few_entered_since(entered),
            "{keep} entries keep the shards"
        );
        assert!(
            shards.few_entered_since(entered),
            "none since the last record"
        );
    }

    #[test]
    fn a_full_shard_refuses_more_readers() {
        let shard = Shard::new();
        shard.0.store(SHARD_FULL - 1, Ordering::Relaxed);
        assert!(shard.enter());
        assert!(!shard.enter());
    }

    #[test]
    fn read_slots_tell_word_from_shard() {
        assert_eq!(ReadSlot::WORD.shard_index(), None);
        assert_eq!(ReadSlot::shard(3).shard_index(), Some(3));
    }
}
