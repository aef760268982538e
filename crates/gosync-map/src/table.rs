//! The layout under [`Map`](crate::Map): a power-of-two array of cache-line buckets, each holding
//! a few pointers to immutable entries, a tag byte per slot, a lock and an overflow link.
//!
//! - An **entry** (`Entry`) is one key, its value and its full hash, in a `Box` of its own,
//!   never changed once published. A new value for a key is a new entry stored into the same
//!   slot; the old one is retired to the epoch collector. A key stays in its slot for as long as
//!   it is present in a table: writers never move entries between slots.
//! - A **bucket** (`Bucket`, 64 bytes) is a header word, `SLOTS` entry pointers and the link to
//!   an overflow bucket. The header holds one tag byte per slot (`0` for an empty slot, else the
//!   top 7 bits of the entry's hash with the high bit set) and, in its top byte, the `MOVED`
//!   mark and the chain's lock (`LOCKED`, `PARKED`, `STARVING`). Only a chain's first bucket
//!   (its head) uses the lock and `MOVED`: the lock covers the whole chain. Readers ignore the
//!   lock bits.
//! - A **table** (`Table`) is the bucket array, indexed by the low bits of the hash, and the link
//!   to the table it is being moved into (see `resize.rs`).
//!
//! Readers (`read.rs`) follow this structure with `Acquire` loads and no lock; writers
//! (`write.rs`) lock a chain's head; the resize (`resize.rs`) moves chains into a table twice as
//! large.
//!
//! # Notes about memory ordering
//!
//! - This file builds and frees the structure: it reads the atomics `Relaxed` where it owns the
//!   structure outright (in `drop`, with `&mut` or from the collector, when no thread can reach
//!   it any more) and with `Acquire` in `chain`, which readers use (pairing with the `Release`
//!   store of the `overflow` link in `write.rs` and `resize.rs`).
//! - The chain lock is taken with an `Acquire` read-modify-write of the head's header and
//!   released with a `Release` one (`Bucket::unlock`), which also publishes the holder's changes
//!   to the head's tags and `MOVED` (pairing with the readers' `Acquire` loads of the header, and
//!   with the next holder's lock). In starvation mode the lock is handed over: the thread that
//!   holds `LOCKED` (the unlocker, having taken it back with `try_lock`'s `Acquire`, or a newcomer
//!   that took it first) passes it to the woken waiter through gosync-park, whose `Release` store
//!   of the wake (after the unpark callback) and the waiter's `Acquire` load of it carry every
//!   earlier holder's writes on. `PARKED` and `STARVING` are set and cleared under gosync-park's
//!   queue lock (`Relaxed`, see `gosync_park::ParkedBits`), except that an owner may clear
//!   `STARVING`; they guard no data.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crossbeam_epoch::{Guard, Shared};
use gosync_park::sync::{AtomicPtr, AtomicU64, Ordering};
use gosync_park::{
    park_while, unpark_one, ParkOptions, ParkResult, ParkedBits, SpinWait, WaitClock,
    STARVATION_THRESHOLD, TOKEN_HANDOFF, TOKEN_NORMAL,
};

/// Entry slots per bucket: with the header (which holds the lock) and the overflow link, a
/// bucket is one 64-byte cache line.
pub(crate) const SLOTS: usize = 6;

/// The header bit that marks a chain as moved to the next table (only on a chain's head).
pub(crate) const MOVED: u64 = 1 << 63;
/// The header bit of a chain's lock (only on a chain's head).
const LOCKED: u64 = 1 << 56;
/// The header bit that says threads sleep waiting for the chain's lock.
const PARKED: u64 = 1 << 57;
/// The header bit of the lock's starvation mode (only with `PARKED`): a waiter has waited longer
/// than `STARVATION_THRESHOLD`, so the lock goes to the head waiter by hand-off and a newcomer
/// that takes it passes it on untouched.
const STARVING: u64 = 1 << 58;

/// The high bit of each slot's tag byte in the header.
const TAG_HIGH_BITS: u64 = 0x8080_8080_8080;
/// The low 7 bits of each slot's tag byte.
const TAG_LOW_BITS: u64 = 0x7F7F_7F7F_7F7F;
/// Adds a byte's value to every slot's byte.
const TAG_ONES: u64 = 0x0101_0101_0101;
/// Every slot's tag byte.
pub(crate) const TAGS: u64 = TAG_HIGH_BITS | TAG_LOW_BITS;

/// One key and its value, immutable once published, with the key's full hash (so a resize
/// never runs the user's `Hash`).
///
/// The key and the value come first and a lookup reads nothing else (it trusts the tag and
/// compares keys, as hashbrown does): an entry block is 16-aligned, so a lookup of a `u64` key
/// and value touches one cache line, where reading the hash at the end (or at the front) would
/// cross into a second line for one block in four.
#[repr(C)]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    pub(crate) hash: u64,
    /// Under loom, a cell created with the entry and read by every lookup that reaches the entry
    /// ([`Entry::reached`]): a lookup that could reach an entry without its construction
    /// happening before fails the model. (The key and value were made before the writer pinned,
    /// whose fence orders them; the entry is built after.)
    #[cfg(gosync_loom)]
    built: gosync_park::cell::UnsafeCell<()>,
}

// A `u64` key and value fill the entry's first 16 bytes, all a lookup reads.
#[cfg(not(gosync_loom))]
const _: () = assert!(
    std::mem::offset_of!(Entry<u64, u64>, value) == 8
        && std::mem::offset_of!(Entry<u64, u64>, hash) == 16
        && std::mem::size_of::<Entry<u64, u64>>() == 24
);

impl<K, V> Entry<K, V> {
    /// An entry, to be put in a `Box` (see `Pinned::new_entry`).
    pub(crate) fn unboxed(hash: u64, key: K, value: V) -> Self {
        Self {
            hash,
            key,
            value,
            #[cfg(gosync_loom)]
            built: gosync_park::cell::UnsafeCell::new(()),
        }
    }

    /// Records, under loom, that a lookup reached this entry; nothing otherwise.
    #[inline]
    pub(crate) fn reached(&self) -> &Self {
        #[cfg(gosync_loom)]
        self.built.ptr();
        self
    }
}

/// The tag byte of `hash`: its top 7 bits with the high bit set, so never the empty tag `0`.
#[inline]
pub(crate) fn tag(hash: u64) -> u64 {
    (hash >> 57) | 0x80
}

/// The header with slot `slot`'s tag byte set to `tag` (`0`: empty).
#[inline]
pub(crate) fn with_tag(header: u64, slot: usize, tag: u64) -> u64 {
    header & !(0xFF << (8 * slot)) | tag << (8 * slot)
}

/// Slot `slot`'s tag byte, in place in the header.
#[inline]
pub(crate) fn tag_bits(header: u64, slot: usize) -> u64 {
    header & 0xFF << (8 * slot)
}

/// The slots of `header` whose tag byte is `tag`, as a bit set of their high bits (iterate with
/// [`Slots`]). Exact: no byte is reported that does not match.
#[inline]
pub(crate) fn matching(header: u64, tag: u64) -> Slots {
    let x = (header ^ tag.wrapping_mul(TAG_ONES)) & TAGS;
    // A byte of `x` is zero iff adding 0x7F to its low 7 bits leaves its high bit clear and its
    // own high bit is clear; no carry crosses a byte.
    Slots(!(((x & TAG_LOW_BITS) + TAG_LOW_BITS) | x) & TAG_HIGH_BITS)
}

/// The slots of `header` that are empty.
#[inline]
pub(crate) fn empty(header: u64) -> Slots {
    matching(header, 0)
}

/// The slots of `header` that hold an entry (a set tag).
#[inline]
pub(crate) fn occupied(header: u64) -> Slots {
    Slots(!empty(header).0 & TAG_HIGH_BITS)
}

/// A set of slot indices, from [`matching`] or [`empty`].
#[derive(Clone, Copy)]
pub(crate) struct Slots(u64);

impl Iterator for Slots {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let slot = self.0.trailing_zeros() as usize / 8;
        self.0 &= self.0 - 1;
        Some(slot)
    }
}

/// A bucket: one cache line.
#[repr(C, align(64))]
pub(crate) struct Bucket<K, V> {
    /// Tag bytes of the slots (byte `i` for slot `i`) and, on a chain's head, `MOVED` and the
    /// chain's lock. Tags and `MOVED` are written only under the head's lock.
    pub(crate) header: AtomicU64,
    /// The entries (null: empty). Owned by the newest table whose chain holds them.
    pub(crate) slots: [AtomicPtr<Entry<K, V>>; SLOTS],
    /// The next bucket of the chain (null: none), owned by this table (`Table::drop`).
    pub(crate) overflow: AtomicPtr<Bucket<K, V>>,
}

#[cfg(not(gosync_loom))]
const _: () = assert!(std::mem::size_of::<Bucket<u64, u64>>() == 64);

impl<K, V> Bucket<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            header: AtomicU64::new(0),
            slots: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            overflow: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Locks the chain whose head this is; returns its header as locked.
    #[inline]
    pub(crate) fn lock(&self) -> u64 {
        if self.try_lock() {
            // Relaxed: the tags and `MOVED` are written only under the lock, which ordered them.
            let header = self.header.load(Ordering::Relaxed);
            if header & STARVING == 0 {
                return header;
            }
            // Taken between an unlock and its hand-off: a waiter is owed it. (Or a waiter set
            // `STARVING` after this thread took it, queued behind it: passing it on is as fair.)
            self.hand_over();
        }
        self.lock_slow()
    }

    /// Sets `LOCKED`; returns whether it was clear (this thread took the lock).
    #[inline]
    fn try_lock(&self) -> bool {
        // Acquire: pairs with the Release of the unlock that freed it (or of `hand_over`'s
        // `fetch_and`, which frees a lock nobody was owed). One `lock bts`, with no load before
        // it (which would fetch the line shared, then again to own it). Only the `LOCKED` bit
        // of the result is used: needing the whole old header would make it a `lock cmpxchg`
        // loop after a plain load (measured 10% slower on store/delete, docs/map.md).
        self.header.fetch_or(LOCKED, Ordering::Acquire) & LOCKED == 0
    }

    /// Waits for the chain's lock: spins a little, then sleeps in gosync-park on the header's
    /// address with `PARKED` set, until an unlock wakes it to race for the lock again or hands
    /// the lock over. A woken thread that loses the race queues again at the front, keeping its
    /// turn (Go's `queueLifo`); once it has waited longer than `STARVATION_THRESHOLD` it queues
    /// with `STARVING` too, and from then on each unlock hands the lock to the head waiter
    /// (Go's starvation mode), so a hot key or a slow `Eq` under the lock cannot keep a waiter
    /// out forever. The mode ends with the last waiter, or when a waiter is handed the lock
    /// after a short wait (the queue is moving).
    #[cold]
    #[inline(never)]
    fn lock_slow(&self) -> u64 {
        let mut spin = SpinWait::new();
        let mut woken = false;
        // Started at the first park: Go's `waitStartTime`.
        let mut clock: Option<WaitClock> = None;
        let mut starving = false;
        loop {
            // Relaxed: only a guess; `try_lock` Acquires.
            let header = self.header.load(Ordering::Relaxed);
            if header & (LOCKED | STARVING) == 0 && self.try_lock() {
                // Relaxed: as in `lock`.
                let header = self.header.load(Ordering::Relaxed);
                if header & STARVING == 0 {
                    return header;
                }
                self.hand_over();
            } else if header & STARVING == 0 && spin.spin() {
                continue;
            }
            let options = ParkOptions {
                front: woken,
                // This thread has spun already: sleeping now leaves the line to the holder.
                sleep_at_once: true,
                ..ParkOptions::default()
            };
            let mode = if starving { PARKED | STARVING } else { PARKED };
            let clock = clock.get_or_insert_with(WaitClock::start);
            // Sleeps only if the lock is still held (or owed to a waiter: `STARVING` without
            // `LOCKED` is an unlock between its release and its hand-off), with `PARKED` set,
            // under the queue lock that `unlock_slow` and `hand_over` take too: no lost
            // wake-up. Whatever the result but a hand-off: try again.
            match park_while(
                &self.header,
                self.park_key(),
                mode,
                |header| header & (LOCKED | STARVING) != 0,
                options,
            ) {
                ParkResult::Unparked(TOKEN_HANDOFF) => {
                    if !clock.woken_after(STARVATION_THRESHOLD) {
                        // Relaxed: this thread owns the lock; the mode bit guards no data.
                        self.header.fetch_and(!STARVING, Ordering::Relaxed);
                    }
                    // Relaxed: the hand-off ordered the previous holders' writes before this
                    // (see the notes at the top).
                    return self.header.load(Ordering::Relaxed);
                }
                ParkResult::Unparked(_) => {
                    woken = true;
                    starving = starving || clock.woken_after(STARVATION_THRESHOLD);
                }
                _ => {}
            }
        }
    }

    /// Passes the lock, which this thread holds and has not used, to the head waiter, or frees it
    /// if nobody waits any more (an earlier unlock may have woken the last one since this thread
    /// saw `STARVING`).
    #[cold]
    #[inline(never)]
    fn hand_over(&self) {
        unpark_one(self.park_key(), |woken| {
            if woken.unparked == 0 {
                // Release: pairs with the Acquire of the next lock (this thread wrote nothing,
                // but passes on what its own lock acquired).
                self.header
                    .fetch_and(!(LOCKED | PARKED | STARVING), Ordering::Release);
                return TOKEN_NORMAL;
            }
            if !woken.have_more {
                self.header.clear_parked(PARKED | STARVING);
            }
            TOKEN_HANDOFF
        });
    }

    /// Unlocks the chain whose head this is, adding `delta` to the header in the same step:
    /// the holder's changes to the head's tag bytes and `MOVED` (a tag set into an empty byte,
    /// a tag taken out of its byte, `MOVED` set), which only the holder makes, so the sum is
    /// exact and carries into no other byte.
    ///
    /// # Safety
    ///
    /// The caller locked this chain with [`Bucket::lock`] and has not unlocked it since, and
    /// `delta` is exactly the sum of its own changes to the head's header since that lock: a tag
    /// set into a byte that was empty, minus a tag it removed, and `MOVED` only from the resize
    /// that has copied the chain into `next`. Anything else corrupts the header for readers, who
    /// ignore the lock bits and trust it: a stray `MOVED` sends them to a null `next`, a wrong
    /// tag makes them skip a present key, and a second unlock borrows from the bits above
    /// `LOCKED` (checked: it panics, after the damage).
    #[inline]
    pub(crate) unsafe fn unlock(&self, delta: u64) {
        // Release: pairs with the Acquire of the next lock, and with the readers' Acquire loads
        // of the header (a tag published here was stored after its slot). One `lock xadd`.
        let header = self
            .header
            .fetch_add(delta.wrapping_sub(LOCKED), Ordering::Release);
        // One branch for both the check and the waiters: the fast path tests the two bits.
        if header & (LOCKED | PARKED) != LOCKED {
            self.unlock_slow(header);
        }
    }

    /// Checks that the unlock found the chain locked (`header`, as it was before), then, in
    /// starvation mode, takes the lock back and hands it to the head waiter; otherwise wakes
    /// one waiter to race for it, and clears `PARKED` if it was the last.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, header: u64) {
        assert!(
            header & LOCKED != 0,
            "gosync-map: a chain lock was unlocked while not locked (a double unlock); \
             the chain's header is corrupt"
        );
        if header & STARVING != 0 {
            // The `lock xadd` published this holder's changes and freed the lock, as it must
            // on the fast path, which cannot know the mode without a load. Take the lock back
            // to hand it over; a newcomer that took it first sees `STARVING` and hands it
            // over itself (`lock`), and waiters sleep meanwhile (`lock_slow`'s `busy`).
            if self.try_lock() {
                self.hand_over();
            }
            return;
        }
        unpark_one(self.park_key(), |woken| {
            if !woken.have_more {
                self.header.clear_parked(PARKED | STARVING);
            }
            TOKEN_NORMAL
        });
    }

    /// Switches the lock to starvation mode if it is held and a thread waits for it, and
    /// returns whether it did: a test hook (a waiter switches it after waiting 1 ms), so that
    /// models reach the hand-off deterministically.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub(crate) fn force_starvation(&self) -> bool {
        gosync_park::mark_if_parked(&self.header, self.park_key(), PARKED | STARVING, |header| {
            header & LOCKED != 0
        })
    }

    /// The key that waiters for this chain's lock sleep on: the header's address.
    fn park_key(&self) -> usize {
        std::ptr::from_ref(&self.header) as usize
    }

    /// This bucket and the overflow buckets after it, for a reader pinned for `'g`.
    #[inline]
    pub(crate) fn chain<'g>(&'g self, _guard: &'g Guard) -> impl Iterator<Item = &'g Self> {
        std::iter::successors(Some(self), |bucket| {
            // Acquire: pairs with the Release store that linked the overflow bucket, so its
            // slots and header are seen as built.
            let next = bucket.overflow.load(Ordering::Acquire);
            // SAFETY: an overflow bucket is freed with its table, or (unlinked by `clear`) by
            // the collector, in both cases after every thread pinned while it was reachable has
            // unpinned; the caller is pinned for 'g and reached `self` from the map.
            unsafe { next.as_ref() }
        })
    }
}

/// A bucket array and the table its chains are being moved into.
pub(crate) struct Table<K, V> {
    buckets: Box<[Bucket<K, V>]>,
    /// `buckets.len() - 1`.
    mask: usize,
    /// The table twice as large that a resize moves the chains into (null: none yet). Set
    /// before the first chain is marked `MOVED`.
    pub(crate) next: AtomicPtr<Table<K, V>>,
}

impl<K, V> Table<K, V> {
    /// A table of `len` empty buckets; `len` is a power of two.
    pub(crate) fn new(len: usize) -> Self {
        debug_assert!(len.is_power_of_two());
        Self {
            buckets: (0..len).map(|_| Bucket::new()).collect(),
            mask: len - 1,
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    /// The buckets' address with the log2 of their count in its low bits, for
    /// `Tables::prefetch`.
    pub(crate) fn buckets_hint(&self) -> *mut u8 {
        let bits = self.buckets.len().trailing_zeros() as usize;
        debug_assert!(bits < 64 && self.buckets.as_ptr().align_offset(64) == 0);
        self.buckets
            .as_ptr()
            .cast::<u8>()
            .cast_mut()
            .wrapping_add(bits)
    }

    /// The head of the chain of `hash`.
    #[inline]
    pub(crate) fn head(&self, hash: u64) -> &Bucket<K, V> {
        self.at(hash as usize)
    }

    /// The head of chain `index` (taken modulo the length).
    #[inline]
    pub(crate) fn at(&self, index: usize) -> &Bucket<K, V> {
        // SAFETY: `mask` is `buckets.len() - 1`, so the index is in bounds.
        unsafe { self.buckets.get_unchecked(index & self.mask) }
    }

    pub(crate) fn heads(&self) -> impl Iterator<Item = &Bucket<K, V>> {
        self.buckets.iter()
    }

    /// Whether a table holding `len` entries should grow: beyond 7/8 of its slots.
    pub(crate) fn is_crowded(&self, len: usize) -> bool {
        len * 8 > self.buckets.len() * SLOTS * 7
    }

    /// Frees every entry in the table: only for the newest table, which owns them, when no
    /// thread can reach it any more. Each drop is caught: a key's or value's panicking drop
    /// goes to `keep_panic`, and the other entries are dropped all the same.
    pub(crate) fn free_entries(&mut self, mut keep_panic: impl FnMut(Box<dyn Any + Send>)) {
        for head in self.buckets.iter() {
            let mut bucket: *const Bucket<K, V> = head;
            // SAFETY: `bucket` is the head or an overflow bucket of this table, live until the
            // table drops.
            while let Some(b) = unsafe { bucket.as_ref() } {
                for slot in &b.slots {
                    let entry = slot.load(Ordering::Relaxed);
                    if entry.is_null() {
                        continue;
                    }
                    // SAFETY: the newest table owns its entries; each is in one slot of it,
                    // freed once here (the table's own drop leaves entries alone).
                    let entry = unsafe { Box::from_raw(entry) };
                    if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(entry))) {
                        keep_panic(payload);
                    }
                }
                bucket = b.overflow.load(Ordering::Relaxed);
            }
        }
    }
}

impl<K, V> Drop for Table<K, V> {
    /// Frees the overflow buckets; the entries belong to the newest table (`free_entries`).
    fn drop(&mut self) {
        for head in self.buckets.iter() {
            let mut bucket = head.overflow.load(Ordering::Relaxed);
            while !bucket.is_null() {
                // SAFETY: an overflow bucket of this table (linked from a `Box::into_raw`),
                // freed once, here, when nothing can reach the table.
                let owned = unsafe { Box::from_raw(bucket) };
                bucket = owned.overflow.load(Ordering::Relaxed);
            }
        }
    }
}

/// Starts fetching the entries of `head`'s slots whose tag matches `hash`, for a writer about
/// to lock the chain: its `lock bts` waits for the thread's earlier stores (the new entry it
/// just wrote), and the entry it compares next arrives meanwhile. Only the head, as the
/// writer's own lookup does first. A hint: the loads order nothing, and a slot that changes
/// before the lock costs only a useless fetch. Pinned, the slots hold entries or null; neither
/// is dereferenced here.
#[inline]
pub(crate) fn prefetch_matching<K, V>(head: &Bucket<K, V>, hash: u64) {
    #[cfg(all(target_arch = "x86_64", not(any(miri, gosync_loom))))]
    {
        // Relaxed: a hint (see above); the lock's own Acquire orders what the writer reads.
        let header = head.header.load(Ordering::Relaxed);
        for slot in matching(header, tag(hash)) {
            // Relaxed: as the header.
            prefetch(head.slots[slot].load(Ordering::Relaxed));
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(any(miri, gosync_loom)))))]
    let _ = (head, hash);
}

/// Starts fetching the cache line at `ptr` (any address: it is never dereferenced).
#[inline]
pub(crate) fn prefetch<T>(ptr: *const T) {
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
/// shared), for a writer about to lock the bucket there: the lock's read-for-ownership starts
/// at once rather than at its `lock bts`. Any address: it is never dereferenced. On a processor
/// without `prefetchw`, and in an SGX enclave (where CPUID faults), a plain [`prefetch`].
#[inline]
pub(crate) fn prefetch_for_write<T>(ptr: *const T) {
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

/// Hands `ptr` (a `Box` given up with `into_raw`, now unreachable) to the epoch collector.
///
/// # Safety
///
/// `ptr` is unreachable from the map for anyone pinning after now, and nobody else retires or
/// frees it.
pub(crate) unsafe fn retire<T>(ptr: *mut T, guard: &Guard) {
    // SAFETY: the caller's promise; crossbeam frees it once every current pin is gone.
    unsafe { guard.defer_destroy(Shared::from(ptr.cast_const())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A newcomer that takes the lock between an unlock's release and its hand-off (simulated:
    // the release alone) must pass it on untouched to the starving waiter, then wait its turn.
    #[test]
    #[cfg(not(gosync_loom))] // loom atomics work only inside `loom::model`
    fn a_newcomer_between_release_and_hand_off_passes_the_lock_on() {
        use std::sync::{Arc, Mutex};
        gosync_testkit::within(|| {
            let head = Arc::new(Bucket::<u64, u64>::new());
            let turns = Arc::new(Mutex::new(Vec::new()));
            head.lock();
            let waiter = {
                let (head, turns) = (Arc::clone(&head), Arc::clone(&turns));
                std::thread::spawn(move || {
                    head.lock();
                    turns.lock().unwrap().push("waiter");
                    // SAFETY: locked just above, nothing changed.
                    unsafe { head.unlock(0) };
                })
            };
            gosync_testkit::wait_until(|| head.header.load(Ordering::Relaxed) & PARKED != 0);
            assert!(head.force_starvation());
            // The release of an unlock whose hand-off has not run yet (Release, as the unlock's:
            // pairs with the newcomer's Acquire `lock bts` below).
            let released = head.header.fetch_sub(LOCKED, Ordering::Release);
            head.lock();
            turns.lock().unwrap().push("newcomer");
            // The unlock's slow path, late: the lock is the newcomer's now, so its `try_lock`
            // fails and it must leave the lock and the waiters alone.
            head.unlock_slow(released);
            assert_ne!(
                head.header.load(Ordering::Relaxed) & LOCKED,
                0,
                "still locked"
            );
            // SAFETY: locked just above, nothing changed.
            unsafe { head.unlock(0) };
            gosync_testkit::join_within(waiter);
            assert_eq!(*turns.lock().unwrap(), ["waiter", "newcomer"]);
            assert_eq!(head.header.load(Ordering::Relaxed), 0, "free and unmarked");
        });
    }

    #[test]
    fn tags_match_exactly() {
        let mut header = 0;
        for (slot, t) in [0x80, 0xFF, 0x81, 0x80, 0xFE, 0].into_iter().enumerate() {
            header = with_tag(header, slot, t);
        }
        header |= MOVED;
        assert_eq!(matching(header, 0x80).collect::<Vec<_>>(), [0, 3]);
        assert_eq!(matching(header, 0xFF).collect::<Vec<_>>(), [1]);
        assert_eq!(matching(header, 0x01).count(), 0);
        assert_eq!(empty(header).collect::<Vec<_>>(), [5]);
        let header = with_tag(header, 2, 0);
        assert_eq!(empty(header).collect::<Vec<_>>(), [2, 5]);
        assert_eq!(matching(header, 0x81).count(), 0);
        assert_eq!(empty(0).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        assert_eq!(occupied(header).collect::<Vec<_>>(), [0, 1, 3, 4]);
        assert_eq!(occupied(MOVED | LOCKED | PARKED | STARVING).count(), 0);
        assert_eq!(empty(MOVED | LOCKED | PARKED | STARVING).count(), SLOTS);
    }
}
