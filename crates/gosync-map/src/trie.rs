//! The concurrent hash-trie under [`Map`](crate::Map).
//!
//! The trie is a tree of 16-way indirect nodes indexed by successive 4-bit digits of a 64-bit
//! hash, most significant first. A child slot holds nothing, an indirect node, or a chain of
//! entries whose keys all have the same full hash (a chain longer than one exists only for full
//! hash collisions). Entries never change once published: a new value for a key is a new entry
//! that replaces the old one in its chain.
//!
//! - Readers pin the epoch, walk the slots with `Acquire` loads and compare keys. They take no
//!   lock and never wait.
//! - A writer walks the same way to the slot where its key lives or would live, locks the node
//!   that holds the slot, checks that the node is still in the trie (`dead`) and that the slot
//!   still ends the walk, and changes the slot or one link of the chain with a `Release` store.
//!   Everything it unlinks is handed to the epoch collector, which frees it once no pinned
//!   reader can still see it.
//! - When a new key lands on a slot that holds a chain of another hash, the writer publishes, in
//!   one store, a fresh indirect node (or a path of them, while the two hashes share digits)
//!   holding both. Keys only ever move deeper, inside the subtree of their own hash prefix: this
//!   is what lets `for_each` visit each key at most once without a lock.
//! - When a removal empties a node, the writer marks it dead and unlinks it from its parent,
//!   locking child then parent (the only place two locks are held, always upwards, so no
//!   deadlock). A writer that locks a dead node starts over.
//!
//! The design is Go 1.24's `internal/sync.HashTrieMap`, with the garbage collector replaced by
//! epoch reclamation.
//!
//! # Notes about memory ordering
//!
//! - Every store that publishes a pointer (a slot, an `overflow` link) is `Release`, and every
//!   load that follows one outside a node lock is `Acquire`: a reader that sees a pointer sees
//!   the entry or node fully built behind it.
//! - Under a node's lock, its slots and the links of its chains are read `Relaxed`: they are
//!   written only under the same lock, whose `Acquire` orders them after the last holder's
//!   writes.
//! - `dead` is written and read only under the node's lock: `Relaxed`.
//! - Reclamation: crossbeam-epoch's pin is a full fence; an object unlinked before a reader
//!   pinned is invisible to that reader, and one unlinked after is freed only once the reader
//!   unpins.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ptr;

use crossbeam_epoch::{Guard, Shared};
use gosync_mutex::RawMutex;
use gosync_park::sync::{AtomicBool, AtomicPtr, Ordering};

/// Bits of the hash consumed per level.
const BITS: u32 = 4;
/// Children per indirect node.
const WIDTH: usize = 1 << BITS;
/// The shift of the root's digit: the top 4 bits of the hash.
const ROOT_SHIFT: u32 = u64::BITS - BITS;
/// The low bit of a child pointer: set for an indirect node, clear for an entry chain. Both
/// types are at least 8-aligned, so the bit is free.
const NODE_TAG: usize = 1;

/// One key and its value, immutable once published, plus the link to the next entry of the same
/// full hash.
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    overflow: AtomicPtr<Entry<K, V>>,
}

impl<K, V> Entry<K, V> {
    pub(crate) fn new(key: K, value: V) -> Box<Self> {
        Box::new(Self {
            key,
            value,
            overflow: AtomicPtr::new(ptr::null_mut()),
        })
    }
}

/// The entry of `key` in the chain starting at `head` (null: empty), with the entry before it.
///
/// Walks raw pointers as loaded from the links, so that the pointer a writer later retires
/// carries the provenance of the `Box` it came from, not of a shared reference.
fn find_in_chain<'g, K, V, Q>(
    head: *mut Entry<K, V>,
    key: &Q,
    _guard: &'g Guard,
) -> Option<Found<'g, K, V>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    let mut prev = None;
    let mut current = head;
    // SAFETY: a linked entry is freed only after the epoch passes every thread pinned while it
    // was reachable; the caller is pinned for 'g and loaded `head` from the trie.
    while let Some(entry) = unsafe { current.as_ref() } {
        if entry.key.borrow() == key {
            return Some(Found {
                entry,
                ptr: current,
                prev,
            });
        }
        prev = Some(entry);
        // Acquire: pairs with the Release store that published the next entry.
        current = entry.overflow.load(Ordering::Acquire);
    }
    None
}

/// An entry found under its node's lock, with the entry before it in the chain (`None`: it is
/// the head, stored in the slot itself).
pub(crate) struct Found<'g, K, V> {
    pub(crate) entry: &'g Entry<K, V>,
    /// `entry` as loaded from its link, for retiring it.
    ptr: *mut Entry<K, V>,
    prev: Option<&'g Entry<K, V>>,
}

impl<K, V> Clone for Found<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Found<'_, K, V> {}

/// A 16-way node of the trie.
#[repr(align(8))]
struct Indirect<K, V> {
    children: [AtomicPtr<()>; WIDTH],
    /// Held by a writer changing `children` or `dead`.
    lock: RawMutex,
    /// Set (under `lock`) when the node was unlinked from its parent: writers must start over.
    dead: AtomicBool,
    /// The node this one hangs from; null for the root. Parents outlive their children: a node
    /// is unlinked only once empty.
    parent: *const Indirect<K, V>,
    _entries: PhantomData<Box<Entry<K, V>>>,
}

impl<K, V> Indirect<K, V> {
    fn allocate(parent: *const Self) -> *mut Self {
        Box::into_raw(Box::new(Self {
            children: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
            lock: RawMutex::new(),
            dead: AtomicBool::new(false),
            parent,
            _entries: PhantomData,
        }))
    }

    fn is_empty(&self) -> bool {
        // Relaxed: called under the node's lock (see the notes at the top).
        self.children
            .iter()
            .all(|c| c.load(Ordering::Relaxed).is_null())
    }
}

/// What a child slot holds.
enum Child<'g, K, V> {
    Empty,
    /// The head of a chain, as loaded (see `find_in_chain`).
    Entries(*mut Entry<K, V>),
    Node(&'g Indirect<K, V>),
}

fn tag_entry<K, V>(entry: *mut Entry<K, V>) -> *mut () {
    entry.cast()
}

fn tag_node<K, V>(node: *mut Indirect<K, V>) -> *mut () {
    node.cast::<u8>().wrapping_add(NODE_TAG).cast()
}

/// Reads a child pointer.
///
/// # Safety
///
/// `raw` was loaded from a slot of a node reachable under `_guard` (or is owned by the caller),
/// so what it points to lives for `'g`.
unsafe fn child<'g, K, V>(raw: *mut (), _guard: &'g Guard) -> Child<'g, K, V> {
    if raw.is_null() {
        Child::Empty
    } else if raw as usize & NODE_TAG != 0 {
        let node = raw
            .cast::<u8>()
            .wrapping_sub(NODE_TAG)
            .cast::<Indirect<K, V>>();
        // SAFETY: a tagged pointer was made by `tag_node` from a live node; the caller's pin
        // keeps it alive.
        Child::Node(unsafe { &*node })
    } else {
        Child::Entries(raw.cast())
    }
}

#[inline]
fn digit(hash: u64, shift: u32) -> usize {
    (hash >> shift) as usize & (WIDTH - 1)
}

/// Hands `ptr` (a `Box` given up with `into_raw`, now unlinked) to the epoch collector.
///
/// # Safety
///
/// `ptr` is unreachable from the trie for anyone pinning after now, and nobody else defers it.
unsafe fn retire<T>(ptr: *const T, guard: &Guard) {
    // SAFETY: the caller's promise; crossbeam frees it once every current pin is gone.
    unsafe { guard.defer_destroy(Shared::from(ptr)) }
}

/// The trie: a root that is never unlinked.
pub(crate) struct Trie<K, V> {
    /// Owned (a `Box` given up with `into_raw`, freed in `drop`). A raw pointer rather than a
    /// `Box`, because children keep raw pointers to it as their parent.
    root: *mut Indirect<K, V>,
}

impl<K, V> Trie<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            root: Indirect::allocate(ptr::null()),
        }
    }

    fn root(&self) -> &Indirect<K, V> {
        // SAFETY: the root lives as long as the trie.
        unsafe { &*self.root }
    }

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
        let mut node = self.root();
        let mut shift = ROOT_SHIFT;
        loop {
            // Acquire: pairs with the Release store that published the child.
            let raw = node.children[digit(hash, shift)].load(Ordering::Acquire);
            // SAFETY: loaded from a node reachable under `guard`.
            match unsafe { child(raw, guard) } {
                Child::Empty => return None,
                Child::Entries(head) => {
                    return find_in_chain(head, key, guard).map(|found| found.entry)
                }
                Child::Node(next) => {
                    node = next;
                    shift -= BITS;
                }
            }
        }
    }

    /// Locks the node holding the slot where `hash` ends its walk (a chain or nothing).
    pub(crate) fn lock<'g>(&'g self, hash: u64, guard: &'g Guard) -> Locked<'g, K, V> {
        'from_root: loop {
            let mut node = self.root();
            let mut shift = ROOT_SHIFT;
            loop {
                // Acquire: pairs with the Release store that published the child.
                let raw = node.children[digit(hash, shift)].load(Ordering::Acquire);
                // SAFETY: loaded from a node reachable under `guard`.
                if let Child::Node(next) = unsafe { child::<K, V>(raw, guard) } {
                    node = next;
                    shift -= BITS;
                    continue;
                }
                let locked = Locked::new(node, hash, shift, guard);
                // Relaxed: under the lock.
                if node.dead.load(Ordering::Relaxed) {
                    continue 'from_root;
                }
                // SAFETY: the slot of a live node we hold locked.
                match unsafe { child::<K, V>(locked.slot().load(Ordering::Relaxed), guard) } {
                    // A writer grew the slot into a node since we looked: go on down.
                    Child::Node(next) => {
                        drop(locked);
                        node = next;
                        shift -= BITS;
                    }
                    _ => return locked,
                }
            }
        }
    }

    /// Calls `f` on every entry until it returns `false`; returns whether it never did.
    pub(crate) fn for_each<'g>(
        &'g self,
        guard: &'g Guard,
        f: &mut dyn FnMut(&'g Entry<K, V>) -> bool,
    ) -> bool {
        for_each_in(self.root(), guard, f)
    }

    /// Removes every entry, node by node; returns how many it removed.
    pub(crate) fn clear(&self, guard: &Guard) -> usize {
        clear_node(self.root(), 0, ROOT_SHIFT, guard)
    }
}

fn for_each_in<'g, K, V>(
    node: &'g Indirect<K, V>,
    guard: &'g Guard,
    f: &mut dyn FnMut(&'g Entry<K, V>) -> bool,
) -> bool {
    for slot in &node.children {
        // Acquire: pairs with the Release store that published the child.
        // SAFETY: loaded from a node reachable under `guard`.
        match unsafe { child(slot.load(Ordering::Acquire), guard) } {
            Child::Empty => {}
            Child::Entries(head) => {
                let mut current = head;
                // SAFETY: as in `find_in_chain`.
                while let Some(entry) = unsafe { current.as_ref() } {
                    if !f(entry) {
                        return false;
                    }
                    // Acquire: pairs with the Release store that published the next entry.
                    current = entry.overflow.load(Ordering::Acquire);
                }
            }
            Child::Node(next) => {
                if !for_each_in(next, guard, f) {
                    return false;
                }
            }
        }
    }
    true
}

/// Empties `node` (whose slots are the digits at `shift` of hashes starting with `prefix`):
/// first its subtrees, then its own chains under its lock, then unlinks it if it is left empty.
/// A subtree that appears while it works (a chain grown into a node) is cleared too, so every
/// key present throughout is removed.
fn clear_node<K, V>(node: &Indirect<K, V>, prefix: u64, shift: u32, guard: &Guard) -> usize {
    let mut removed = 0;
    let mut cleared: [*mut (); WIDTH] = [ptr::null_mut(); WIDTH];
    loop {
        for (i, slot) in node.children.iter().enumerate() {
            // Acquire: pairs with the Release store that published the child.
            let raw = slot.load(Ordering::Acquire);
            // SAFETY: loaded from a node reachable under `guard`.
            if let Child::Node(next) = unsafe { child::<K, V>(raw, guard) } {
                if cleared[i] != raw {
                    let digit_bits = (i as u64) << shift;
                    removed += clear_node(next, prefix | digit_bits, shift - BITS, guard);
                    cleared[i] = raw;
                }
            }
        }
        let locked = Locked::new(node, prefix, shift, guard);
        // Relaxed: under the lock.
        if node.dead.load(Ordering::Relaxed) {
            return removed;
        }
        let mut grown = false;
        for (i, slot) in node.children.iter().enumerate() {
            let raw = slot.load(Ordering::Relaxed);
            // SAFETY: the slot of a live node we hold locked.
            match unsafe { child::<K, V>(raw, guard) } {
                Child::Empty => {}
                Child::Node(_) => grown |= cleared[i] != raw,
                Child::Entries(head) => {
                    // Release: a reader that sees the empty slot must not see freed entries
                    // (it cannot: they are retired below only after this store).
                    slot.store(ptr::null_mut(), Ordering::Release);
                    let mut current = head;
                    while !current.is_null() {
                        // SAFETY: `current` is a chain entry unlinked just above, alive until
                        // `guard` unpins; read its link before retiring it.
                        let next = unsafe { (*current).overflow.load(Ordering::Relaxed) };
                        // SAFETY: unlinked by the slot store above, retired once.
                        unsafe { retire(current, guard) };
                        removed += 1;
                        current = next;
                    }
                }
            }
        }
        if !grown {
            locked.prune();
            return removed;
        }
    }
}

/// A node locked by a writer, and the slot of `hash` in it. Unlocks on drop, also when a user's
/// `Hash` or `Eq` panics.
pub(crate) struct Locked<'g, K, V> {
    node: &'g Indirect<K, V>,
    hash: u64,
    shift: u32,
    guard: &'g Guard,
}

impl<'g, K, V> Locked<'g, K, V> {
    fn new(node: &'g Indirect<K, V>, hash: u64, shift: u32, guard: &'g Guard) -> Self {
        node.lock.lock();
        Self {
            node,
            hash,
            shift,
            guard,
        }
    }

    fn slot(&self) -> &'g AtomicPtr<()> {
        &self.node.children[digit(self.hash, self.shift)]
    }

    /// The head of the locked slot's chain, as loaded; null when empty.
    fn head(&self) -> *mut Entry<K, V> {
        // Relaxed: under the lock.
        // SAFETY: the slot of a live node we hold locked.
        match unsafe { child(self.slot().load(Ordering::Relaxed), self.guard) } {
            Child::Entries(head) => head,
            Child::Empty => ptr::null_mut(),
            Child::Node(_) => unreachable!("a locked slot never holds a node"),
        }
    }

    /// The entry of `key` in the locked slot's chain.
    pub(crate) fn find<Q>(&self, key: &Q) -> Option<Found<'g, K, V>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        find_in_chain(self.head(), key, self.guard)
    }

    /// Publishes `entry`, whose key is not in the map. `hash_of` rehashes a key already stored
    /// there when the slot must grow into a node; if it panics, nothing has changed.
    pub(crate) fn insert(
        &self,
        entry: Box<Entry<K, V>>,
        hash_of: impl FnOnce(&K) -> u64,
    ) -> &'g Entry<K, V> {
        let old = self.head();
        // Hashed while `entry` is still a `Box`, so a panicking `Hash` frees it.
        // SAFETY: a chain head loaded under the lock; the pin keeps it alive.
        let old_hash = unsafe { old.as_ref() }.map(|head| hash_of(&head.key));
        if old_hash == Some(self.hash) {
            // Relaxed: `entry` is not yet published; the Release below publishes it.
            entry.overflow.store(old, Ordering::Relaxed);
        }
        let new = Box::into_raw(entry);
        let published = match old_hash {
            Some(old_hash) if old_hash != self.hash => tag_node(self.grow(old, old_hash, new)),
            _ => tag_entry(new),
        };
        // Release: readers' Acquire loads of the slot see the entry (or nodes) fully built.
        self.slot().store(published, Ordering::Release);
        // SAFETY: published just above; the pin keeps it alive for 'g.
        unsafe { &*new }
    }

    /// Builds the path of nodes that separates the chain `old` (of hash `old_hash`) from the new
    /// entry `new`, down to the first digit where their hashes differ.
    fn grow(
        &self,
        old: *mut Entry<K, V>,
        old_hash: u64,
        new: *mut Entry<K, V>,
    ) -> *mut Indirect<K, V> {
        let top = Indirect::allocate(self.node);
        let mut node = top;
        let mut shift = self.shift;
        loop {
            // The hashes differ, and agree on every digit down to this level.
            shift -= BITS;
            let (old_digit, new_digit) = (digit(old_hash, shift), digit(self.hash, shift));
            // SAFETY: `node` was allocated above and is not yet published.
            let children = unsafe { &(*node).children };
            // Relaxed: the nodes are not yet published; the caller's Release store publishes them.
            if old_digit != new_digit {
                children[old_digit].store(tag_entry(old), Ordering::Relaxed);
                children[new_digit].store(tag_entry(new), Ordering::Relaxed);
                return top;
            }
            let next = Indirect::allocate(node);
            children[old_digit].store(tag_node(next), Ordering::Relaxed);
            node = next;
        }
    }

    /// Replaces the found entry with `entry` (same key, new value) and retires the old one.
    pub(crate) fn replace(&self, found: Found<'g, K, V>, entry: Box<Entry<K, V>>) {
        // Relaxed: under the lock; `entry` is published by the Release store below.
        let next = found.entry.overflow.load(Ordering::Relaxed);
        entry.overflow.store(next, Ordering::Relaxed);
        let entry = Box::into_raw(entry);
        // Release: readers' Acquire loads see the new entry fully built.
        match found.prev {
            None => self.slot().store(tag_entry(entry), Ordering::Release),
            Some(prev) => prev.overflow.store(entry, Ordering::Release),
        }
        // SAFETY: unlinked just above, under the lock, so by nobody else.
        unsafe { retire(found.ptr, self.guard) };
    }

    /// Unlinks the found entry, retires it, and unlinks the node too if that left it empty.
    pub(crate) fn remove(self, found: Found<'g, K, V>) {
        // Relaxed: under the lock.
        let next = found.entry.overflow.load(Ordering::Relaxed);
        // Release: a reader following the new link sees the entries behind it fully built.
        match found.prev {
            None => self.slot().store(tag_entry(next), Ordering::Release),
            Some(prev) => prev.overflow.store(next, Ordering::Release),
        }
        // SAFETY: unlinked just above, under the lock, so by nobody else.
        unsafe { retire(found.ptr, self.guard) };
        if next.is_null() && found.prev.is_none() {
            self.prune();
        }
    }

    /// Unlinks the locked node while it is empty and not the root, then its parent likewise,
    /// locking each parent before unlocking its child; unlocks the last node.
    fn prune(mut self) {
        while !self.node.parent.is_null() && self.node.is_empty() {
            // SAFETY: a parent outlives its linked children, and this one is linked: it is
            // locked and not dead.
            let parent = unsafe { &*self.node.parent };
            parent.lock.lock();
            let parent_shift = self.shift + BITS;
            let parent_slot = &parent.children[digit(self.hash, parent_shift)];
            // Relaxed: under the locks (`dead` is read by writers under this node's lock).
            self.node.dead.store(true, Ordering::Relaxed);
            // The node as its parent links it: retired through this pointer, not through the
            // shared reference `self.node`. Relaxed: under the parent's lock.
            let tagged = parent_slot.load(Ordering::Relaxed);
            let child = tagged
                .cast::<u8>()
                .wrapping_sub(NODE_TAG)
                .cast::<Indirect<K, V>>();
            debug_assert!(ptr::eq(child, self.node));
            // Release: orders the unlink after the writes to the node, for readers that see null.
            parent_slot.store(ptr::null_mut(), Ordering::Release);
            // SAFETY: this thread locked the node (in `new` or in the previous round).
            unsafe { self.node.lock.unlock() };
            // SAFETY: unlinked just above, under both locks, so by nobody else.
            unsafe { retire(child, self.guard) };
            self.node = parent;
            self.shift = parent_shift;
        }
    }
}

impl<K, V> Drop for Locked<'_, K, V> {
    fn drop(&mut self) {
        // SAFETY: `node` is the node this guard locked (`new`, or the parent `prune` moved to).
        unsafe { self.node.lock.unlock() };
    }
}

impl<K, V> Drop for Trie<K, V> {
    fn drop(&mut self) {
        /// Frees `node` and everything under it. Exclusive access: nothing else can see them.
        fn free<K, V>(node: *mut Indirect<K, V>) {
            // SAFETY: the trie owns the node; `&mut` access to the trie means no reader exists.
            let node = unsafe { Box::from_raw(node) };
            for slot in &node.children {
                let raw = slot.load(Ordering::Relaxed);
                if raw as usize & NODE_TAG != 0 {
                    free(
                        raw.cast::<u8>()
                            .wrapping_sub(NODE_TAG)
                            .cast::<Indirect<K, V>>(),
                    );
                } else {
                    let mut current = raw.cast::<Entry<K, V>>();
                    while !current.is_null() {
                        // SAFETY: a linked entry, owned by the trie, freed once.
                        let entry = unsafe { Box::from_raw(current) };
                        current = entry.overflow.load(Ordering::Relaxed);
                    }
                }
            }
        }
        free(self.root);
    }
}
