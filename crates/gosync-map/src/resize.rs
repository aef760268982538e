//! The root table and its growth.
//!
//! The map starts with a table of one bucket. When an insert has to link an overflow bucket
//! and the map holds more than 7/8 of the table's slots, the inserting thread grows the table:
//!
//! 1. It takes the map's resize lock (`try_lock`: if another thread is resizing, or `clear`
//!    runs, the insert just returns) and checks that the table is still the root.
//! 2. It allocates a table twice as large and links it as the old table's `next`.
//! 3. Chain by chain, it locks the old chain `i`, copies its entry pointers into chains `i` and
//!    `i + n` of the new table (by the next bit of each entry's stored hash: no user code runs),
//!    marks the old chain `MOVED` and unlocks it. The old chain is left as it was.
//! 4. It makes the new table the root, and retires the old one (its buckets, not the entries,
//!    which the new table now owns).
//!
//! Meanwhile other threads go on: a reader or a writer that meets a `MOVED` chain goes on in
//! `next`, where that chain's keys already are, and a writer on a chain not yet moved changes
//! it in the old table, from where the mover copies it later (it waits for the chain's lock).
//! Nobody but the mover writes to a chain of the new table until its old chain is marked, so it
//! copies without taking the new chains' locks.
//!
//! # Notes about memory ordering
//!
//! - The root is stored `Release` when a table is installed and loaded `Acquire` by every
//!   operation: a thread that finds the new table as root sees every chain copied into it.
//! - `next` is stored `Release` before any chain is marked `MOVED`; see `read.rs` for the loads.
//! - Under the resize lock, the root is loaded `Relaxed`: it is stored only under that lock.
//! - The old chains are read `Relaxed` under their locks (they are written only under them);
//!   copies into the new table are stored `Release`, and the `MOVED` mark is added `Release`
//!   after them by the unlock, pairing with the readers' `Acquire` loads of the header.

use std::any::Any;
use std::ptr;

use crossbeam_epoch::Guard;
use gosync_mutex::RawMutex;
use gosync_park::sync::{AtomicPtr, Ordering};

use crate::reclaim::Pinned;
use crate::table::{occupied, prefetch, prefetch_for_write, retire, Table, MOVED};
use crate::write::place;

/// The root table and the lock that serialises resizes (and `clear`).
pub(crate) struct Tables<K, V> {
    /// The newest table that every chain has been moved into. Owned: a `Box` given up with
    /// `into_raw`, freed in `drop` (or retired by the resize that replaces it).
    root: AtomicPtr<Table<K, V>>,
    /// Held for a whole resize, and by `clear`.
    pub(crate) resizing: RawMutex,
    /// The root's buckets, for [`Tables::prefetch`] only: their address, plus the log2 of
    /// their count in the low bits (a bucket is 64-aligned). A hint that is never dereferenced
    /// and orders nothing, so a plain `std` atomic, outside loom's model.
    buckets_hint: std::sync::atomic::AtomicPtr<u8>,
}

impl<K, V> Tables<K, V> {
    pub(crate) fn new() -> Self {
        let root = Box::new(Table::new(1));
        Self {
            buckets_hint: std::sync::atomic::AtomicPtr::new(root.buckets_hint()),
            root: AtomicPtr::new(Box::into_raw(root)),
            resizing: RawMutex::new(),
        }
    }

    /// Starts fetching the root's bucket of `hash` into the cache, before the caller pins:
    /// the pin's locked instruction and the registration lookup then overlap the fetch. Reads
    /// no memory the program sees; a hint left by a table already retired fetches a line for
    /// nothing.
    #[inline]
    pub(crate) fn prefetch(&self, hash: u64) {
        prefetch(self.hinted_head(hash));
    }

    /// As [`Tables::prefetch`], for a writer that is going to lock the bucket: fetches it to
    /// write, so the lock finds the line owned.
    #[inline]
    pub(crate) fn prefetch_for_write(&self, hash: u64) {
        prefetch_for_write(self.hinted_head(hash));
    }

    /// The address of the root's bucket of `hash` as `buckets_hint` has it (never dereferenced).
    #[inline]
    fn hinted_head(&self, hash: u64) -> *const u8 {
        // Relaxed: a hint (see `buckets_hint`).
        let hint = self.buckets_hint.load(std::sync::atomic::Ordering::Relaxed);
        let bits = hint as usize & 63;
        let index = hash as usize & ((1 << bits) - 1);
        hint.wrapping_sub(bits)
            .wrapping_add(index * std::mem::size_of::<crate::table::Bucket<K, V>>())
    }

    /// The root table.
    #[inline]
    pub(crate) fn root<'g>(&'g self, _guard: &'g Guard) -> &'g Table<K, V> {
        // Acquire: pairs with the Release store that installed the table, after every chain
        // was copied into it.
        let root = self.root.load(Ordering::Acquire);
        // SAFETY: a table is retired only after it stopped being the root; the pin keeps one
        // loaded before that alive.
        unsafe { &*root }
    }

    /// The root, for a thread holding the resize lock (the root changes only under it).
    pub(crate) fn root_locked<'g>(&'g self, _guard: &'g Guard) -> &'g Table<K, V> {
        // Relaxed: stored only under the resize lock, which the caller holds.
        // SAFETY: as in `root`; moreover it cannot be retired while the caller holds the lock.
        unsafe { &*self.root.load(Ordering::Relaxed) }
    }

    /// Grows `crowded` into a table twice as large, unless it is no longer the root or another
    /// thread holds the resize lock.
    #[cold]
    pub(crate) fn grow(&self, crowded: &Table<K, V>, pin: &Pinned<'_, K, V>) {
        if !self.resizing.try_lock() {
            return;
        }
        // Relaxed: under the resize lock (see `root_locked`).
        let old_ptr = self.root.load(Ordering::Relaxed);
        let moved = ptr::eq(old_ptr, crowded);
        if moved {
            self.move_all(old_ptr, pin);
            pin.flush_on_drop();
        }
        // SAFETY: locked by this thread above.
        unsafe { self.resizing.unlock() };
    }

    /// Moves every chain of the root `old_ptr` into a new table twice as large, installs it and
    /// retires the old one. The caller holds the resize lock.
    fn move_all(&self, old_ptr: *mut Table<K, V>, guard: &Guard) {
        // SAFETY: the root, which cannot be retired while the resize lock is held.
        let old = unsafe { &*old_ptr };
        let new_ptr = Box::into_raw(Box::new(Table::new(old.len() * 2)));
        // SAFETY: allocated above; freed only after it is installed and replaced.
        let new = unsafe { &*new_ptr };
        // Release: pairs with the Acquire load in `next_table`.
        old.next.store(new_ptr, Ordering::Release);
        for head in old.heads() {
            let head_header = head.lock();
            for bucket in head.chain(guard) {
                let header = if ptr::eq(bucket, head) {
                    head_header
                } else {
                    // Relaxed: the chain is written only under its lock, which this thread holds.
                    bucket.header.load(Ordering::Relaxed)
                };
                for slot in occupied(header) {
                    let entry = bucket.slots[slot].load(Ordering::Relaxed);
                    // SAFETY: a slot with a set tag holds a live entry, and the lock keeps it
                    // there.
                    let hash = unsafe { (*entry).hash };
                    let target = new.head(hash);
                    // Relaxed: nobody else writes this chain before its old one is marked.
                    let target_header = target.header.load(Ordering::Relaxed);
                    place(target, target_header, entry, |tag| {
                        // Release: a reader that sees the tag sees the slot's entry built.
                        target.header.store(target_header | tag, Ordering::Release);
                    });
                }
            }
            // SAFETY: locked by this thread above. The unlock marks the chain `MOVED`, with
            // Release, pairing with the readers' Acquire load of the header, who then find the
            // chain's keys in `new`.
            unsafe { head.unlock(MOVED) };
        }
        // Release: pairs with the Acquire load in `root`.
        self.root.store(new_ptr, Ordering::Release);
        // Relaxed: a hint (see `buckets_hint`).
        self.buckets_hint
            .store(new.buckets_hint(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: no longer the root, so unreachable for anyone who loads the root from now on
        // (and every chain of it is `MOVED`); retired once, here, under the resize lock.
        unsafe { retire(old_ptr, guard) };
    }

    /// Drops every live entry, in the map's drop; hands a key's or value's panicking drop to
    /// `keep_panic` and drops the rest all the same.
    pub(crate) fn free_entries(&mut self, keep_panic: impl FnMut(Box<dyn Any + Send>)) {
        // SAFETY: the root is owned by the map, which is being dropped (`&mut`): no thread can
        // reach it, and it stays allocated until `drop` below.
        let root = unsafe { &mut *self.root.load(Ordering::Relaxed) };
        // A resize installs its table before it unlocks, and it runs no user code, so the root
        // never has a half-filled successor that would own some of the entries.
        debug_assert!(root.next.load(Ordering::Relaxed).is_null());
        root.free_entries(keep_panic);
    }
}

impl<K, V> Drop for Tables<K, V> {
    /// Frees the root's buckets; its entries were dropped before (`Map::drop`).
    fn drop(&mut self) {
        let root = self.root.load(Ordering::Relaxed);
        // SAFETY: the root is owned by the map, which is being dropped: no thread can reach it.
        drop(unsafe { Box::from_raw(root) });
    }
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use crate::Map;

    /// Spreads `u64` keys by a fixed multiplication: where each key lands, and so when a chain
    /// overflows, is the same in every run (with a random seed, a fill could reuse overflow
    /// buckets linked before 7/8 of the slots were used, and grow later).
    #[derive(Default)]
    struct FixedSpread(u64);

    impl std::hash::Hasher for FixedSpread {
        fn finish(&self) -> u64 {
            self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        }
        fn write(&mut self, _: &[u8]) {
            unreachable!("only u64 keys")
        }
        fn write_u64(&mut self, key: u64) {
            self.0 = key;
        }
    }

    type Spread = std::hash::BuildHasherDefault<FixedSpread>;

    #[test]
    fn the_seventh_key_of_a_one_bucket_table_grows_it() {
        let m = Map::with_hasher(Spread::default());
        let buckets = |m: &Map<u64, u64, Spread>| m.tables.root(&m.reclaim.pin()).len();
        for k in 0..6 {
            m.store(k, k);
        }
        assert_eq!(buckets(&m), 1);
        m.store(6, 6);
        assert_eq!(buckets(&m), 2);
        // Past 7/8 of the slots, the next insert that overflows a chain doubles the table (and
        // one must overflow once the slots run out): 100 keys end in 32 buckets, 1000 in 256.
        let (n, expected) = if cfg!(miri) { (100, 32) } else { (1000, 256) };
        for k in 7..n {
            m.store(k, k);
        }
        assert_eq!(buckets(&m), expected);
        assert!((0..n).all(|k| m.load(&k) == Some(k)));
    }
}
