//! The lock-free reads: a lookup, and the walk under `range`.
//!
//! A lookup pins the epoch, loads the newest table, and reads the head of its key's chain: one
//! load of the header gives the `MOVED` mark and the slots' tag bytes, and only the slots whose
//! tag matches the hash are followed (an entry pointer, then the entry's key). A chain
//! marked `MOVED` was copied into the next table before the mark was set, so the lookup goes on
//! there. No lock, no retry, no write to shared memory.
//!
//! A key is present while its slot holds its entry and the slot's tag is set: an insert stores
//! the slot before the tag, a removal clears the slot before the tag. A reader trusts only slots
//! whose tag it saw set, checks the entry's key, and then loads the bucket's header again and
//! returns the entry only if the slot's tag is still the same: an entry stored into a slot whose
//! old tag the first load saw (the key deleted and stored again into the same slot) is not
//! returned before its own tag is published, so a later lookup never misses what an earlier one
//! returned. Each lookup thus sees every write at one point in time (for an insert, the tag's
//! publication: the unlock in a chain's head, a store in an overflow bucket; for a removal or a
//! replacement, the slot store).
//!
//! # Notes about memory ordering
//!
//! - The header, slots, overflow links, the root and `next` are loaded `Acquire`, pairing with
//!   the `Release` writes that publish them: a head's tags and `MOVED` by the chain lock's unlock
//!   (`Bucket::unlock`, in `table.rs`), an overflow bucket's tags, the slots and the links by
//!   stores in `write.rs` and `resize.rs`. So an entry, a bucket or a table is seen fully built,
//!   and a chain marked `MOVED` is seen copied into `next`.
//! - The second load of a bucket's header (`find_in_chain`) comes after the `Acquire` load of
//!   the slot: it sees at least the header as it was when the writer that stored the entry took
//!   the lock, so a tag seen set there is the entry's own (or a later one's).
//! - Entries and buckets stay allocated while the reader is pinned (see `table.rs`, `retire`).

use std::borrow::Borrow;

use crossbeam_epoch::Guard;
use gosync_park::sync::Ordering;

use crate::resize::Tables;
use crate::table::{matching, occupied, tag, tag_bits, Bucket, Entry, Table, MOVED};

/// An entry and where it is: the bucket and slot a writer changes to replace or remove it.
pub(crate) struct Found<'g, K, V> {
    pub(crate) entry: &'g Entry<K, V>,
    /// `entry` as loaded from its slot, for retiring it (its provenance is the entry's `Box`).
    pub(crate) ptr: *mut Entry<K, V>,
    pub(crate) bucket: &'g Bucket<K, V>,
    pub(crate) slot: usize,
}

/// The entry of `key` in the chain starting at `head`, whose header was loaded as `header`.
///
/// `UNDER_LOCK`: the caller holds the chain's lock (its `header` includes its own unpublished
/// changes), so nothing changes under it. A lock-free caller gets an entry only if its slot's
/// tag is still set after the entry was read (see the notes at the top).
#[inline]
pub(crate) fn find_in_chain<'g, K, V, Q, const UNDER_LOCK: bool>(
    head: &'g Bucket<K, V>,
    mut header: u64,
    hash: u64,
    key: &Q,
    guard: &'g Guard,
) -> Option<Found<'g, K, V>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    let tag = tag(hash);
    for bucket in head.chain(guard) {
        if !std::ptr::eq(bucket, head) {
            // Acquire: pairs with the Release store of the tag after its slot.
            header = bucket.header.load(Ordering::Acquire);
        }
        for slot in matching(header, tag) {
            // Acquire: pairs with the Release store that put the entry in the slot.
            let ptr = bucket.slots[slot].load(Ordering::Acquire);
            // SAFETY: an entry is freed only by the collector after it left every table, once
            // every thread pinned while it was reachable has unpinned; the caller is pinned for
            // 'g and loaded the pointer from the map.
            let Some(entry) = (unsafe { ptr.as_ref() }) else {
                continue;
            };
            let entry = entry.reached();
            // The key alone: its tag matched, and the hash is the entry's last field, which
            // may lie on the next cache line (see `Entry`).
            if entry.key.borrow() != key {
                continue;
            }
            // Acquire: as the first load; the same cache line, just read. A tag cleared since
            // (the key removed, or removed and stored again here with its tag not yet published)
            // means the key was absent at that instant: skip the entry.
            if !UNDER_LOCK
                && tag_bits(bucket.header.load(Ordering::Acquire), slot) != tag_bits(header, slot)
            {
                continue;
            }
            return Some(Found {
                entry,
                ptr,
                bucket,
                slot,
            });
        }
    }
    None
}

/// The table that `table`'s chain `MOVED` was copied into.
#[inline]
pub(crate) fn next_table<'g, K, V>(table: &'g Table<K, V>, _guard: &'g Guard) -> &'g Table<K, V> {
    // Acquire: pairs with the Release store of `next` in `grow`, made before any chain was
    // marked `MOVED` (and the caller saw the mark with an Acquire load or under the chain's lock).
    let next = table.next.load(Ordering::Acquire);
    // SAFETY: set before any chain was marked, and a table is retired only once it is no longer
    // the root, after the table it moved into became the root: the pin keeps both alive.
    unsafe { &*next }
}

impl<K, V> Tables<K, V> {
    /// The entry of `key`, without a lock.
    #[inline]
    pub(crate) fn find<'g, Q>(
        &'g self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
    ) -> Option<&'g Entry<K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mut table = self.root(guard);
        loop {
            let head = table.head(hash);
            // Acquire: pairs with the unlock that published the head's tags and `MOVED` (after
            // the slots, and after the chain was copied).
            let header = head.header.load(Ordering::Acquire);
            if header & MOVED == 0 {
                return find_in_chain::<_, _, _, false>(head, header, hash, key, guard)
                    .map(|found| found.entry);
            }
            table = next_table(table, guard);
        }
    }
}

impl<K: Eq, V> Tables<K, V> {
    /// Calls `f` on every entry, each key at most once, until it returns `false`.
    ///
    /// Walks the table that is the root when it starts, chain by chain; a chain already moved
    /// is walked in the next table instead, as the two chains it split into (`i` and `i + n`),
    /// which hold the keys of chain `i` and no others. Each chain is read into a list before `f`
    /// runs, so no lock is held while `f` runs and `f` may change the map.
    ///
    /// A key present for the whole walk is visited: it stays in its slot while present, and a
    /// chain that is moved stays intact in the old table (the walk reads either, whichever it
    /// finds marked). A key is visited at most once: chains hold disjoint keys, and within one
    /// chain's list a key deleted and stored again while it was read (two entries) is kept once.
    pub(crate) fn for_each<'g>(
        &'g self,
        guard: &'g Guard,
        f: &mut dyn FnMut(&'g Entry<K, V>) -> bool,
    ) -> bool {
        let table = self.root(guard);
        let mut list = Vec::new();
        (0..table.len()).all(|index| visit(table, index, &mut list, guard, f))
    }
}

/// Calls `f` on the entries of chain `index` of `table` (or of the chains it moved to).
fn visit<'g, K: Eq, V>(
    table: &'g Table<K, V>,
    index: usize,
    list: &mut Vec<&'g Entry<K, V>>,
    guard: &'g Guard,
    f: &mut dyn FnMut(&'g Entry<K, V>) -> bool,
) -> bool {
    let head = table.at(index);
    // Acquire: as in `find`.
    if head.header.load(Ordering::Acquire) & MOVED != 0 {
        let next = next_table(table, guard);
        return visit(next, index, list, guard, f)
            && visit(next, index + table.len(), list, guard, f);
    }
    list.clear();
    for bucket in head.chain(guard) {
        // Acquire: as in `find_in_chain`.
        let header = bucket.header.load(Ordering::Acquire);
        for slot in occupied(header) {
            // Acquire: as in `find_in_chain`.
            let ptr = bucket.slots[slot].load(Ordering::Acquire);
            // SAFETY: as in `find_in_chain`.
            if let Some(entry) = unsafe { ptr.as_ref() } {
                list.push(entry.reached());
            }
        }
    }
    list.sort_unstable_by_key(|entry| entry.hash);
    for (i, entry) in list.iter().enumerate() {
        let mut earlier = list[..i].iter().rev().take_while(|e| e.hash == entry.hash);
        if earlier.any(|e| e.key == entry.key) {
            continue;
        }
        if !f(entry) {
            return false;
        }
    }
    true
}
