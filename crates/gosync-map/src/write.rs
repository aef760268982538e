//! The write path: lock one chain, change one slot.
//!
//! A writer finds its key's chain in the root table, locks the chain's head (two bits of its
//! header: see `Bucket::lock`) and, if a resize marked the chain `MOVED` meanwhile, unlocks it
//! and goes on to the same hash's chain in the next table. Holding the lock it looks for the key
//! (running the user's `Eq`: a panic unwinds through `Locked`'s drop, which unlocks, before
//! anything changed), then:
//!
//! - **insert**: stores the entry in the chain's first empty slot, then its tag; or, when the
//!   chain is full, links a new overflow bucket holding it at the chain's end;
//! - **replace**: stores the new entry in the old one's slot (same key, same tag) and retires
//!   the old one;
//! - **remove**: clears the slot, then its tag, and retires the entry.
//!
//! A change to the head's own header (a tag set or cleared there) is not stored at once: it is
//! added to the header by the unlock, in the same instruction (`Locked::delta`), so an insert
//! or a removal in a head costs two read-modify-writes of the line (lock, unlock), as a plain
//! store between them would. Readers see the change at the unlock.
//!
//! Overflow buckets stay linked when they empty (they are reused by later inserts), until a
//! resize leaves them behind or `clear` unlinks them.
//!
//! # Notes about memory ordering
//!
//! - A chain (headers, slots, overflow links) is written only under its head's lock, or by a
//!   resize before any thread can reach it (see `resize.rs`); writers read it `Relaxed` under
//!   the lock, whose `Acquire` orders those reads after the previous holder's writes (and, for a
//!   chain filled by a resize, after the resize, which unlocked the old chain after filling it).
//! - Every store that readers may follow is `Release`, pairing with the `Acquire` loads in
//!   `read.rs`: a slot before its tag on insert, so a reader that sees the tag sees the entry;
//!   the new overflow bucket, built before it is linked.

use std::borrow::Borrow;
use std::cell::Cell;
use std::ptr;

use gosync_park::sync::Ordering;

use crate::read::{find_in_chain, next_table, Found};
use crate::reclaim::Pinned;
use crate::resize::Tables;
use crate::table::{
    empty, occupied, prefetch_matching, retire, tag, tag_bits, with_tag, Bucket, Entry, Table,
    MOVED, TAGS,
};

/// A chain locked by a writer. Unlocks on drop, also when a user's `Eq` or `Clone` panics.
pub(crate) struct Locked<'g, K, V> {
    table: &'g Table<K, V>,
    head: &'g Bucket<K, V>,
    hash: u64,
    pin: &'g Pinned<'g, K, V>,
    /// What the unlock adds to the head's header: this writer's changes to the head's tags.
    delta: Cell<u64>,
}

/// What an insert did.
pub(crate) struct Inserted<'g, K, V> {
    pub(crate) entry: &'g Entry<K, V>,
    /// The table, when the insert had to link an overflow bucket in it: it may need to grow.
    pub(crate) overflowed: Option<&'g Table<K, V>>,
}

impl<K, V> Tables<K, V> {
    /// Locks the chain of `hash` in the newest table that holds it.
    pub(crate) fn lock<'g>(&'g self, hash: u64, pin: &'g Pinned<'g, K, V>) -> Locked<'g, K, V> {
        let mut table = self.root(pin);
        loop {
            let head = table.head(hash);
            prefetch_matching(head, hash);
            if head.lock() & MOVED == 0 {
                return Locked {
                    table,
                    head,
                    hash,
                    pin,
                    delta: Cell::new(0),
                };
            }
            // SAFETY: locked by this thread just above.
            unsafe { head.unlock(0) };
            table = next_table(table, pin);
        }
    }

    /// Removes every entry, chain by chain under each chain's lock, with no resize running;
    /// returns how many it removed. Every key present for the whole call is removed.
    pub(crate) fn clear(&self, pin: &Pinned<'_, K, V>) -> usize {
        self.resizing.lock();
        let mut removed = 0;
        // Under the resize lock no chain of the root is `MOVED`.
        for head in self.root_locked(pin).heads() {
            let header = head.lock();
            removed += clear_chain(head, pin);
            // SAFETY: locked by this thread just above. Clears the head's tags (its slots are
            // cleared already).
            unsafe { head.unlock(0u64.wrapping_sub(header & TAGS)) };
        }
        // SAFETY: locked by this thread above.
        unsafe { self.resizing.unlock() };
        removed
    }
}

/// Empties the slots of the locked chain at `head`, clears the tags of its overflow buckets
/// (the caller's unlock clears the head's) and unlinks them; returns how many entries it
/// removed.
fn clear_chain<K, V>(head: &Bucket<K, V>, pin: &Pinned<'_, K, V>) -> usize {
    let mut removed = 0;
    for bucket in head.chain(pin) {
        // Relaxed: under the lock.
        let header = bucket.header.load(Ordering::Relaxed);
        for slot in occupied(header) {
            let entry = bucket.slots[slot].load(Ordering::Relaxed);
            // Release: as in `Locked::remove`.
            bucket.slots[slot].store(ptr::null_mut(), Ordering::Release);
            // SAFETY: unlinked just above, under the lock, so by nobody else.
            unsafe { pin.retire_entry(entry) };
            removed += 1;
        }
        if !ptr::eq(bucket, head) {
            // Release: as in `Locked::remove`.
            bucket.header.store(0, Ordering::Release);
        }
    }
    // Relaxed load: under the lock. Release store: a reader that sees null does not need the
    // buckets behind it, and one that loaded them stays pinned while it reads them.
    let mut overflow = head.overflow.load(Ordering::Relaxed);
    head.overflow.store(ptr::null_mut(), Ordering::Release);
    while !overflow.is_null() {
        // SAFETY: an overflow bucket unlinked above, alive until retired; read its link first.
        let next = unsafe { (*overflow).overflow.load(Ordering::Relaxed) };
        // SAFETY: unlinked by the store above (nothing else links it), retired once.
        unsafe { retire(overflow, pin) };
        overflow = next;
    }
    removed
}

impl<'g, K, V> Locked<'g, K, V> {
    /// The head's header as this writer sees it: with its own changes not yet published.
    fn header(&self) -> u64 {
        // Relaxed: the tags are written only under the lock, which this thread holds.
        let header = self.head.header.load(Ordering::Relaxed);
        header.wrapping_add(self.delta.get())
    }

    /// Test hook: see `Bucket::force_starvation`.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub(crate) fn force_starvation(&self) -> bool {
        self.head.force_starvation()
    }

    /// The entry of `key` in the locked chain.
    pub(crate) fn find<Q>(&self, key: &Q) -> Option<Found<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        find_in_chain::<_, _, _, true>(self.head, self.header(), self.hash, key, self.pin)
    }

    /// Publishes `entry`, whose key is not in the chain, and unlocks.
    pub(crate) fn insert(self, entry: Box<Entry<K, V>>) -> Inserted<'g, K, V> {
        let ptr = Box::into_raw(entry);
        let overflowed = place(self.head, self.header(), ptr, |tag| {
            self.delta.set(self.delta.get().wrapping_add(tag));
        });
        Inserted {
            // SAFETY: published just above; the pin keeps it alive for 'g.
            entry: unsafe { &*ptr },
            overflowed: overflowed.then_some(self.table),
        }
    }

    /// Replaces the found entry with `entry` (same key, new value) and retires the old one.
    pub(crate) fn replace(&self, found: Found<'g, K, V>, entry: Box<Entry<K, V>>) {
        // Release: readers' Acquire loads of the slot see the new entry built.
        found.bucket.slots[found.slot].store(Box::into_raw(entry), Ordering::Release);
        // SAFETY: unlinked just above, under the lock, so by nobody else (a chain it was moved
        // out of is `MOVED`, which readers that pin from now on see before its slots).
        unsafe { self.pin.retire_entry(found.ptr) };
    }

    /// Unlinks the found entry and retires it.
    pub(crate) fn remove(&self, found: Found<'g, K, V>) {
        // Release: a reader that loads the slot after a later insert reuses it sees that entry
        // built (the insert's own store is Release too); null needs nothing.
        found.bucket.slots[found.slot].store(ptr::null_mut(), Ordering::Release);
        if ptr::eq(found.bucket, self.head) {
            // The unlock takes the tag out.
            let tag = tag_bits(self.header(), found.slot);
            self.delta.set(self.delta.get().wrapping_sub(tag));
        } else {
            // Relaxed load: under the lock. Release store: pairs with the readers' Acquire load.
            let header = found.bucket.header.load(Ordering::Relaxed);
            found
                .bucket
                .header
                .store(with_tag(header, found.slot, 0), Ordering::Release);
        }
        // SAFETY: as in `replace`.
        unsafe { self.pin.retire_entry(found.ptr) };
    }
}

impl<K, V> Drop for Locked<'_, K, V> {
    fn drop(&mut self) {
        // SAFETY: `head` is the chain head this guard locked in `Tables::lock`; `delta` holds
        // only this holder's changes to the head's tags.
        unsafe { self.head.unlock(self.delta.get()) };
    }
}

/// Puts `entry` in the first empty slot of the chain at `head`, or in a new overflow bucket
/// linked at its end; returns whether it linked one.
///
/// The caller holds the chain's lock, or is the resize filling a chain nobody else reaches yet.
/// `head_header` is the head's header as the caller sees it; a tag for a slot of the head is
/// not stored but handed to `set_head_tag` (as its bits in place), to be added to the header
/// after the slot store.
pub(crate) fn place<K, V>(
    head: &Bucket<K, V>,
    head_header: u64,
    entry: *mut Entry<K, V>,
    set_head_tag: impl FnOnce(u64),
) -> bool {
    // SAFETY: the caller's entry, live while it holds the lock (or owns the chain).
    let tag = tag(unsafe { (*entry).hash });
    if let Some(slot) = empty(head_header).next() {
        // Release: a reader that loaded an older tag of this slot may load the pointer.
        head.slots[slot].store(entry, Ordering::Release);
        set_head_tag(tag << (8 * slot));
        return false;
    }
    let mut bucket = head;
    loop {
        // Relaxed: as the header below.
        let next = bucket.overflow.load(Ordering::Relaxed);
        // SAFETY: an overflow bucket of the chain, which its table owns and the caller keeps
        // linked (it holds the lock, and its pin keeps the table).
        match unsafe { next.as_ref() } {
            Some(next) => bucket = next,
            None => break,
        }
        // Relaxed: the caller has the chain to itself (see the notes at the top).
        let header = bucket.header.load(Ordering::Relaxed);
        if let Some(slot) = empty(header).next() {
            // Release: as above.
            bucket.slots[slot].store(entry, Ordering::Release);
            // Release: a reader that sees the tag sees the slot's entry built.
            bucket
                .header
                .store(with_tag(header, slot, tag), Ordering::Release);
            return false;
        }
    }
    let fresh = Box::new(Bucket::new());
    // Relaxed: the bucket is published by the Release store below.
    fresh.slots[0].store(entry, Ordering::Relaxed);
    fresh.header.store(tag, Ordering::Relaxed);
    // Release: a reader that follows the link sees the bucket built.
    bucket
        .overflow
        .store(Box::into_raw(fresh), Ordering::Release);
    true
}
