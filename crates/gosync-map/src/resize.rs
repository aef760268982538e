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
//!   copies into the new table are stored `Release`, and the `MOVED` mark is stored `Release`
//!   after them, pairing with the readers' `Acquire` loads of the header.

use std::ptr;

use crossbeam_epoch::Guard;
use gosync_mutex::RawMutex;
use gosync_park::sync::{AtomicPtr, Ordering};

use crate::reclaim::Pinned;
use crate::table::{occupied, retire, Table, MOVED};
use crate::write::place;

/// The root table and the lock that serialises resizes (and `clear`).
pub(crate) struct Tables<K, V> {
    /// The newest table that every chain has been moved into. Owned: a `Box` given up with
    /// `into_raw`, freed in `drop` (or retired by the resize that replaces it).
    root: AtomicPtr<Table<K, V>>,
    /// Held for a whole resize, and by `clear`.
    pub(crate) resizing: RawMutex,
}

impl<K, V> Tables<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            root: AtomicPtr::new(Box::into_raw(Box::new(Table::new(1)))),
            resizing: RawMutex::new(),
        }
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
            head.lock.lock();
            for bucket in head.chain(guard) {
                // Relaxed: the chain is written only under its lock, which this thread holds.
                let header = bucket.header.load(Ordering::Relaxed);
                for slot in occupied(header) {
                    let entry = bucket.slots[slot].load(Ordering::Relaxed);
                    // SAFETY: a slot with a set tag holds a live entry, and the lock keeps it
                    // there.
                    let hash = unsafe { (*entry).hash };
                    place(new.head(hash), entry);
                }
            }
            // Relaxed load: under the lock. Release store: pairs with the Acquire load of the
            // header by readers, who then find the chain's keys in `new`.
            let header = head.header.load(Ordering::Relaxed);
            head.header.store(header | MOVED, Ordering::Release);
            // SAFETY: locked by this thread above.
            unsafe { head.lock.unlock() };
        }
        // Release: pairs with the Acquire load in `root`.
        self.root.store(new_ptr, Ordering::Release);
        // SAFETY: no longer the root, so unreachable for anyone who loads the root from now on
        // (and every chain of it is `MOVED`); retired once, here, under the resize lock.
        unsafe { retire(old_ptr, guard) };
    }
}

impl<K, V> Drop for Tables<K, V> {
    fn drop(&mut self) {
        let root = self.root.load(Ordering::Relaxed);
        // SAFETY: the root is owned by the map, which is being dropped: no thread can reach it.
        let mut table = unsafe { Box::from_raw(root) };
        // A resize installs its table before it unlocks, and it runs no user code, so the root
        // never has a half-filled successor.
        debug_assert!(table.next.load(Ordering::Relaxed).is_null());
        table.free_entries();
    }
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use crate::Map;

    #[test]
    fn the_sixth_key_of_a_one_bucket_table_grows_it() {
        let m = Map::new();
        let buckets = |m: &Map<u64, u64>| m.tables.root(&m.reclaim.pin()).len();
        for k in 0..5 {
            m.store(k, k);
        }
        assert_eq!(buckets(&m), 1);
        m.store(5, 5);
        assert_eq!(buckets(&m), 2);
        // Past 7/8 of the slots, the next insert that overflows a chain doubles the table (and
        // one must overflow once the slots run out): 100 keys end in 32 buckets, 1000 in 256.
        let (n, expected) = if cfg!(miri) { (100, 32) } else { (1000, 256) };
        for k in 6..n {
            m.store(k, k);
        }
        assert_eq!(buckets(&m), expected);
        assert!((0..n).all(|k| m.load(&k) == Some(k)));
    }
}
