//! Go's `sync.Map` for Rust: a concurrent hash map whose reads take no lock.
//!
//! [`Map`] is a table of cache-line buckets: reads find a key's bucket with one hash, compare
//! tag bytes and follow only matching entries, with atomic loads and never waiting; a write
//! locks only the one bucket chain it changes; the table doubles while readers and writers go
//! on; replaced and removed entries are freed by `crossbeam-epoch` once no reader can see them.
//! On top of
//! Go's methods it has a borrowing read ([`Map::load_with`]) and an atomic read-modify-write of
//! one key ([`Map::update`]).
//!
//! `docs/map.md` in the repository explains the design and its measurements.
//!
//! # Examples
//!
//! ```
//! use gosync_map::Map;
//! use std::sync::Arc;
//! use std::thread;
//!
//! let hits = Arc::new(Map::new());
//! let handles: Vec<_> = (0..4)
//!     .map(|_| {
//!         let hits = Arc::clone(&hits);
//!         thread::spawn(move || {
//!             for page in ["/", "/about"] {
//!                 hits.update(page, |n: Option<&u64>| Some(n.map_or(1, |n| n + 1)));
//!             }
//!         })
//!     })
//!     .collect();
//! for h in handles {
//!     h.join().unwrap();
//! }
//! assert_eq!(hits.load("/"), Some(4));
//! assert_eq!(hits.len(), 2);
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod pending;
mod read;
mod reclaim;
mod resize;
mod table;
mod write;

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::Cancellation;
use pending::{Pending, Turn};
use reclaim::{Len, Pinned, Reclaim};
use resize::Tables;
use table::Entry;
use write::Locked;

/// A concurrent map, Go's `sync.Map`: many threads load, store and delete at once, reads take
/// no lock, and a write locks only one bucket of the map.
///
/// Keys are hashed with `S` (by default [`RandomState`], as `HashMap`) into a table of buckets
/// that doubles as the map grows (it never shrinks). A value is never changed in place: a store
/// publishes a new entry and the old one is dropped once no reader can still see it, on
/// whichever thread the epoch collector runs it, and at the latest when the map drops. Every
/// stored value is dropped exactly once. A removed entry first waits in its thread's batch
/// (about 6 KB of entries, 16 to 256 of them) until that thread has removed enough more from
/// this map to fill it (up to 255 more); the batch of a thread that exits waits until the map
/// drops, or until a new thread takes over the exited one's registration and fills it. A full
/// batch then waits for the grace period and for a later collection, which threads using the
/// map run as they go. Each thread keeps a stock of its own for this map until the map drops:
/// up to a batch of spare entry blocks and three vectors of a batch's length (12 KB for a `u64`
/// key and value, 16 blocks at least for large entries), besides its batch. The map keeps, until
/// it drops, up to 1.5 MB of spare entries (65,536 blocks for a `u64` key and value, about
/// 2.5 MB of heap with the allocator's overhead and the batches' vectors; for entries over
/// 24 KB, 64 of them): enough to reuse, rather than allocate again, the entries that pile up
/// while a thread holds the epoch back (one descheduled on a busy machine, or inside a long
/// [`range`](Self::range)). Only a map that once had that many entries allocated at one time
/// (live, or removed and waiting) keeps that much; `clear` does not return it.
///
/// A key's or value's `Drop` that panics while the collector drops a batch does not stop the
/// other drops: the rest of that batch and every other batch are still dropped. The map keeps
/// the panic (the first one only; later ones are discarded) and raises it again from the next
/// write to see it, on any thread ([`store`](Self::store), [`swap`](Self::swap),
/// [`delete`](Self::delete), [`clear`](Self::clear), … any method that can change the map), at
/// the very start of that write, before it has done anything: that call changes nothing and
/// returns nothing, and its arguments are dropped. Reads ([`load`](Self::load),
/// [`load_with`](Self::load_with), [`contains_key`](Self::contains_key),
/// [`range`](Self::range), [`len`](Self::len)) never raise it. A panic no write has raised is
/// raised at the end of the map's drop, once every entry is dropped; so is the first panic of
/// a live key's or value's `Drop` in the map's drop, which drops every other entry all the
/// same. A map dropped while its thread already unwinds discards the kept panic. Later
/// panicking drops in the same batch are caught and discarded too; only an entry whose key's
/// and value's drops both panic aborts the process (the value's panics while the key's
/// unwinds, as in any struct).
///
/// Reads ([`load`](Self::load), [`load_with`](Self::load_with),
/// [`contains_key`](Self::contains_key), [`range`](Self::range)) never block, whatever the
/// writers do. A slow hasher, or one that returns the same hash for every key, still gives a
/// correct map (keys of one full hash are chained and compared one by one). As with std's
/// `HashMap`, keys whose `Hash` and `Eq` disagree are a logic error: the map stays memory-safe and
/// drops every value once, but which of those keys a lookup finds is unspecified.
///
/// The keys' `Eq` and `Clone` and the values' `PartialEq` (for the compare methods) run while a
/// write holds one of the map's locks, so they must not call the same map: a write there waits
/// for itself. Every closure the methods take (`f` of [`update`](Self::update),
/// [`range`](Self::range), [`load_or_store_with`](Self::load_or_store_with), …) runs with no
/// lock held and may use the map.
///
/// Each thread that uses the map registers with it once (in a `thread_local::ThreadLocal`).
/// Using the map from a thread-local destructor works when the thread used the map before that
/// thread-local was first set; otherwise the destructor may run after the registry's own,
/// which cannot register the thread any more, and the process aborts.
///
/// # Differences from Go
///
/// - Keys and values are typed (`K`, `V`) rather than `any`; keys need `Hash + Eq`.
/// - A reader may still be looking at a removed or replaced value, so the value cannot be moved
///   out to the caller: [`load_and_delete`](Self::load_and_delete) and [`swap`](Self::swap)
///   return a clone (`V: Clone`), and the stored one is dropped later. Use
///   [`delete`](Self::delete) and [`store`](Self::store) when the old value is not needed.
///   Likewise [`compare_and_swap`](Self::compare_and_swap) needs `K: Clone`, because the new
///   entry needs a key of its own.
/// - [`load_or_store_with`](Self::load_or_store_with) computes the value only when the key is
///   absent, once for all concurrent callers; [`update`](Self::update) and
///   [`load_with`](Self::load_with) have no Go counterpart.
/// - [`len`](Self::len) exists (Go has none); it is exact when no write is in flight.
///
/// # Differences from std
///
/// `HashMap` needs `&mut` to write; this map takes `&self` everywhere, so it is shared through
/// an `Arc` or a `static`. Reads return clones ([`load`](Self::load)) or lend the value to a
/// closure ([`load_with`](Self::load_with), [`range`](Self::range)) rather than returning
/// references, because an entry can be replaced at any moment.
///
/// # Examples
///
/// ```
/// use gosync_map::Map;
///
/// let m = Map::new();
/// m.store("a", 1);
/// assert_eq!(m.load("a"), Some(1));
/// assert_eq!(m.load_or_store("a", 2), (1, true));
/// assert!(m.compare_and_swap("a", &1, 3));
/// assert_eq!(m.load_and_delete("a"), Some(3));
/// assert!(m.is_empty());
/// ```
pub struct Map<K, V, S = RandomState> {
    // Field order is drop order: the live entries are dropped first (`Map::drop`), then the
    // tables' buckets, then the collector runs the retired entries, and the spare stock raises
    // a kept panic.
    tables: Tables<K, V>,
    reclaim: Reclaim<K, V>,
    len: Len,
    pending: Pending<K>,
    hasher: S,
}

// SAFETY: the map owns its keys and values; moving it to another thread moves them, and retired
// ones may be dropped there: `K: Send, V: Send`. The hasher moves with it.
unsafe impl<K: Send, V: Send, S: Send> Send for Map<K, V, S> {}

// SAFETY: through `&Map` threads insert keys and values that others drop (`Send`), read them
// concurrently through shared references (`Sync`), and hash with the shared hasher (`S: Sync`).
// All shared state is behind atomics and locks (see `table.rs`, `read.rs`, `write.rs`).
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Sync for Map<K, V, S> {}

impl<K: Hash + Eq, V> Map<K, V> {
    /// Creates an empty map with the default hasher, as `HashMap::new`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: gosync_map::Map<u64, String> = gosync_map::Map::new();
    /// assert!(m.is_empty());
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::with_hasher(RandomState::new())
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> Default for Map<K, V, S> {
    /// An empty map, as Go's zero `sync.Map`.
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Map<K, V, S> {
    /// Creates an empty map that hashes keys with `hasher`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    ///
    /// let m = gosync_map::Map::with_hasher(RandomState::new());
    /// m.store(1, "one");
    /// assert_eq!(m.load(&1), Some("one"));
    /// ```
    #[must_use]
    pub fn with_hasher(hasher: S) -> Self {
        Self {
            tables: Tables::new(),
            reclaim: Reclaim::new(),
            len: Len::new(),
            pending: Pending::new(),
            hasher,
        }
    }

    /// The hash of `key`, built in line (`hash_one` is left out of line by the compiler, a call
    /// per operation).
    #[inline(always)]
    // Not `hash_one`: it is not inlined. (`allow`, not `expect`: the crates build on Rust 1.80.)
    #[allow(clippy::manual_hash_one)]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        key.hash(&mut hasher);
        hasher.finish()
    }

    /// A clone of the value stored for `key`, or `None`: Go's `Load`.
    ///
    /// Takes no lock and never waits for a writer.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(String::from("k"), 7);
    /// assert_eq!(m.load("k"), Some(7));
    /// assert_eq!(m.load("x"), None);
    /// ```
    #[inline]
    pub fn load<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.load_with(key, V::clone)
    }

    /// Calls `f` with a reference to the value stored for `key`, without cloning it, and
    /// returns what `f` returns; `None` if the key is absent.
    ///
    /// Takes no lock. `f` runs while the thread is pinned to the current epoch, which holds back
    /// the freeing of retired entries (of this map only): keep it short. It may call into the
    /// map.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, vec![1, 2, 3]);
    /// assert_eq!(m.load_with(&1, |v| v.len()), Some(3));
    /// ```
    #[inline]
    pub fn load_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.tables.prefetch(hash);
        let guard = self.reclaim.pin();
        self.tables
            .find(hash, key, &guard)
            .map(|entry| f(&entry.value))
    }

    /// Whether `key` is present.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store('a', ());
    /// assert!(m.contains_key(&'a'));
    /// assert!(!m.contains_key(&'b'));
    /// ```
    #[inline]
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.load_with(key, |_| ()).is_some()
    }

    /// Sets the value for `key`: Go's `Store`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, "a");
    /// m.store(1, "b");
    /// assert_eq!(m.load(&1), Some("b"));
    /// ```
    pub fn store(&self, key: K, value: V) {
        self.put(key, value, |_| ());
    }

    /// Sets the value for `key` and returns a clone of the previous one: Go's `Swap`.
    ///
    /// A clone, because a reader may still be looking at the previous value; it is dropped once
    /// none can. Use [`store`](Self::store) when the previous value is not needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// assert_eq!(m.swap(1, "a"), None);
    /// assert_eq!(m.swap(1, "b"), Some("a"));
    /// ```
    pub fn swap(&self, key: K, value: V) -> Option<V>
    where
        V: Clone,
    {
        self.put(key, value, V::clone)
    }

    /// Stores `value` for `key`, and applies `previous` to the value it replaced, if any.
    fn put<R>(&self, key: K, value: V, previous: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hash(&key);
        self.tables.prefetch_for_write(hash);
        let guard = self.reclaim.pin_for_write();
        let entry = guard.new_entry(hash, key, value);
        let locked = self.tables.lock(hash, &guard);
        match locked.find(&entry.key) {
            Some(found) => {
                let old = found.entry;
                locked.replace(found, entry);
                drop(locked);
                // The replaced entry is retired, but this thread's pin keeps it alive.
                Some(previous(&old.value))
            }
            None => {
                self.insert(locked, entry, &guard);
                None
            }
        }
    }

    /// Inserts `entry` into the chain `locked` (where its key is absent), unlocks, counts it,
    /// and grows the table if the insert overflowed a chain of a crowded table.
    fn insert<'g>(
        &self,
        locked: Locked<'g, K, V>,
        entry: Box<Entry<K, V>>,
        guard: &'g Pinned<'g, K, V>,
    ) -> &'g Entry<K, V> {
        let inserted = locked.insert(entry);
        self.len.add(1);
        if let Some(table) = inserted.overflowed {
            if table.is_crowded(self.len.get()) {
                self.tables.grow(table, guard);
            }
        }
        inserted.entry
    }

    /// Returns the value stored for `key` if there is one (`(value, true)`); otherwise stores
    /// `value` and returns it (`(value, false)`): Go's `LoadOrStore`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// assert_eq!(m.load_or_store("k", 1), (1, false));
    /// assert_eq!(m.load_or_store("k", 2), (1, true));
    /// ```
    pub fn load_or_store(&self, key: K, value: V) -> (V, bool)
    where
        V: Clone,
    {
        let hash = self.hash(&key);
        let guard = self.reclaim.pin_for_write();
        let (mut key, mut value) = (Some(key), Some(value));
        let (stored, loaded) = self.load_or_store_hashed(hash, &mut key, &mut value, &guard);
        // The unused key and value drop before the clone is made: a panic in their drop would
        // otherwise leak the built result (rustc does not drop a return value when a later
        // local's destructor panics, rust-lang/rust#47949).
        drop((key, value));
        (stored.clone(), loaded)
    }

    /// The value of the key in `key` if present (and `true`), the key and `value` left in their
    /// slots; else `value` once stored (and `false`), both slots emptied. If a key's `Eq`
    /// panics, the key and value are back in their slots as the panic leaves. The caller drops
    /// what its slots hold where it holds no lock (a key's or value's `Drop` may use the map).
    /// Even if replaced or removed meanwhile, the value is freed only after `guard` unpins.
    fn load_or_store_hashed<'g>(
        &'g self,
        hash: u64,
        key: &mut Option<K>,
        value: &mut Option<V>,
        guard: &'g Pinned<'g, K, V>,
    ) -> (&'g V, bool) {
        let lookup = key.as_ref().expect("the key is in its slot");
        if let Some(entry) = self.tables.find(hash, lookup, guard) {
            return (&entry.value, true);
        }
        let entry = guard.new_entry(
            hash,
            key.take().expect("the key is in its slot"),
            value.take().expect("the value is in its slot"),
        );
        let locked = self.tables.lock(hash, guard);
        let found = match catch_unwind(AssertUnwindSafe(|| locked.find(&entry.key))) {
            Ok(None) => return (&self.insert(locked, entry, guard).value, false),
            found => found,
        };
        drop(locked);
        let Entry {
            key: unused_key,
            value: unused_value,
            ..
        } = *entry;
        (*key, *value) = (Some(unused_key), Some(unused_value));
        match found {
            Ok(found) => (&found.expect("handled above").entry.value, true),
            Err(payload) => resume_unwind(payload),
        }
    }

    /// Returns the value stored for `key` if there is one (`(value, true)`); otherwise calls
    /// `f`, stores what it returns and returns that (`(value, false)`).
    ///
    /// `f` runs only when the key is absent, and at most once per insertion: concurrent callers
    /// for the same absent key sleep until the one running `f` has stored its value, and all get
    /// it. `f` runs with no lock held and may use the map, except to call this method (or a
    /// variant) for the same key, which would wait for itself: that call panics.
    ///
    /// The sleep behind another caller's `f` is the one wait of this method; gosync's variants
    /// bound it, and give the key and `f` back unused when they give up:
    /// [`try_load_or_store_with`](Self::try_load_or_store_with) never waits,
    /// [`try_load_or_store_with_for`](Self::try_load_or_store_with_for) and
    /// [`try_load_or_store_with_until`](Self::try_load_or_store_with_until) give up at a
    /// deadline, [`load_or_store_with_ctx`](Self::load_or_store_with_ctx) when a [`Context`] is
    /// done. Each runs its own `f` (however long that takes: it is the caller's own code) when
    /// the key is absent and nobody else is computing it.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `f`. The key then stays absent, and the callers that were waiting
    /// for it start over (one of them runs its own `f`).
    ///
    /// Two keys whose `f`s each wait for the other (`f` for `a` calls this method for `b` while
    /// `f` for `b` calls it for `a`, on two threads) deadlock, as two locks taken in opposite
    /// orders do: nothing can tell that wait from a long `f`. The bounded variants break such a
    /// cycle.
    ///
    /// Panics if called from inside its own `f` (on the thread running it) for the same key,
    /// also from the `Drop` of a value the map drops on that thread while this call computes
    /// the key: the map drops removed and replaced values, a batch at a time, in the
    /// operations of the threads that removed them, so a `store` inside `f` may run such drops,
    /// and so may this call itself, just before and just after `f` runs (it reads and inserts
    /// the key). A value whose `Drop` refills its own key (a cache refreshing on eviction)
    /// should use [`store`](Self::store) or `load_or_store` there.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// assert_eq!(m.load_or_store_with("k", || 1), (1, false));
    /// assert_eq!(m.load_or_store_with("k", || unreachable!()), (1, true));
    /// ```
    #[track_caller]
    pub fn load_or_store_with(&self, key: K, f: impl FnOnce() -> V) -> (V, bool)
    where
        V: Clone,
    {
        self.load_or_store_with_by(key, f, None, None)
            .unwrap_or_else(|_| unreachable!("a wait without a deadline or a context gave up"))
    }

    /// As [`load_or_store_with`](Self::load_or_store_with), but never waits: when another
    /// caller is running its `f` for `key`, gives the key and `f` back unused.
    ///
    /// When the key is absent and nobody is computing it, this runs `f` itself.
    ///
    /// # Errors
    ///
    /// `Err((key, f))` when another caller was running its `f` for the key.
    ///
    /// # Panics
    ///
    /// As [`load_or_store_with`](Self::load_or_store_with): when it runs `f`, and when called
    /// from inside its own `f` for the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// assert_eq!(m.try_load_or_store_with("k", || 1).ok(), Some((1, false)));
    /// assert_eq!(m.try_load_or_store_with("k", || 2).ok(), Some((1, true)));
    /// ```
    #[must_use = "the key and `f` come back unused when another caller is computing the key"]
    #[track_caller]
    pub fn try_load_or_store_with<F>(&self, key: K, f: F) -> Result<(V, bool), (K, F)>
    where
        F: FnOnce() -> V,
        V: Clone,
    {
        self.load_or_store_with_by(key, f, Some(Instant::now()), None)
    }

    /// As [`load_or_store_with`](Self::load_or_store_with), but a wait behind another caller's
    /// `f` gives up after `timeout`, giving the key and `f` back unused. A zero timeout is
    /// [`try_load_or_store_with`](Self::try_load_or_store_with).
    ///
    /// # Errors
    ///
    /// `Err((key, f))` when another caller was still running its `f` for the key at the
    /// deadline.
    ///
    /// # Panics
    ///
    /// As [`load_or_store_with`](Self::load_or_store_with): when it runs `f`, and when called
    /// from inside its own `f` for the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let m = gosync_map::Map::new();
    /// match m.try_load_or_store_with_for("config", Duration::from_secs(1), || 42) {
    ///     Ok((value, _loaded)) => assert_eq!(value, 42),
    ///     // Still being computed elsewhere after 1 s: the key and `f` come back.
    ///     Err((key, f)) => drop((key, f)),
    /// }
    /// ```
    #[must_use = "the key and `f` come back unused when the wait gives up"]
    #[track_caller]
    pub fn try_load_or_store_with_for<F>(
        &self,
        key: K,
        timeout: Duration,
        f: F,
    ) -> Result<(V, bool), (K, F)>
    where
        F: FnOnce() -> V,
        V: Clone,
    {
        self.load_or_store_with_by(key, f, gosync_park::deadline_after(timeout), None)
    }

    /// As [`load_or_store_with`](Self::load_or_store_with), but a wait behind another caller's
    /// `f` gives up at `deadline`, giving the key and `f` back unused. A past deadline is
    /// [`try_load_or_store_with`](Self::try_load_or_store_with).
    ///
    /// # Errors
    ///
    /// `Err((key, f))` when another caller was still running its `f` for the key at the
    /// deadline.
    ///
    /// # Panics
    ///
    /// As [`load_or_store_with`](Self::load_or_store_with): when it runs `f`, and when called
    /// from inside its own `f` for the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let m = gosync_map::Map::new();
    /// let deadline = Instant::now() + Duration::from_secs(1);
    /// assert_eq!(m.try_load_or_store_with_until(1, deadline, || "one").ok(), Some(("one", false)));
    /// ```
    #[must_use = "the key and `f` come back unused when the wait gives up"]
    #[track_caller]
    pub fn try_load_or_store_with_until<F>(
        &self,
        key: K,
        deadline: Instant,
        f: F,
    ) -> Result<(V, bool), (K, F)>
    where
        F: FnOnce() -> V,
        V: Clone,
    {
        self.load_or_store_with_by(key, f, Some(deadline), None)
    }

    /// As [`load_or_store_with`](Self::load_or_store_with), but a wait behind another caller's
    /// `f` gives up when `ctx` is done, giving the key and `f` back unused with the context's
    /// error.
    ///
    /// A context that is already done fails at once, even when the key is present (the
    /// cancellation came first, as in x/sync); so does one done by the time a panicking `f`
    /// sends its waiters back to start over. Once this call runs its own `f`, it finishes it
    /// whatever the context does.
    ///
    /// # Errors
    ///
    /// `Err((key, f, error))` with the context's error ([`ContextError::Canceled`] or
    /// [`ContextError::DeadlineExceeded`]) when it is done before the value is there.
    ///
    /// # Panics
    ///
    /// As [`load_or_store_with`](Self::load_or_store_with): when it runs `f`, and when called
    /// from inside its own `f` for the same key, unless `ctx` is done by then (it fails first,
    /// as above).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    ///
    /// let m = gosync_map::Map::new();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(m.load_or_store_with_ctx(&ctx, "k", || 1).ok(), Some((1, false)));
    /// cancel.cancel();
    /// let (key, _f, err) = m.load_or_store_with_ctx(&ctx, "k", || 2).unwrap_err();
    /// assert_eq!((key, err), ("k", ContextError::Canceled));
    /// ```
    #[must_use = "the key and `f` come back unused when the context is done first"]
    #[track_caller]
    pub fn load_or_store_with_ctx<F>(
        &self,
        ctx: &Context,
        key: K,
        f: F,
    ) -> Result<(V, bool), (K, F, ContextError)>
    where
        F: FnOnce() -> V,
        V: Clone,
    {
        if let Some(err) = ctx.err() {
            return Err((key, f, err));
        }
        self.load_or_store_with_by(key, f, None, Some(ctx))
            .map_err(|(key, f)| (key, f, gosync_park::cancelled_error(ctx)))
    }

    /// Every `load_or_store_with`: the value if present; else `f`'s, if nobody else is
    /// computing the key; else a wait for that caller and a fresh start. Gives the key and `f`
    /// back unused when the wait reaches `deadline`, or when `cancel` is done before it would
    /// compute or wait.
    #[track_caller]
    fn load_or_store_with_by<F>(
        &self,
        key: K,
        f: F,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
    ) -> Result<(V, bool), (K, F)>
    where
        F: FnOnce() -> V,
        V: Clone,
    {
        // A kept panic is raised here, before anything is done (the pin below does not: `f`
        // has run by then).
        self.reclaim.raise_kept_panic();
        let hash = self.hash(&key);
        // The registry lets concurrent callers compare their key with ours in place, so ours
        // stays in this slot until it moves into the map under the registry lock (`finish`):
        // every access below goes through one raw pointer, so the registered reference stays
        // valid until then. The slot drops the key if it never moves (a panic in `f`).
        let mut key_slot = Some(key);
        let key_slot: *mut Option<K> = &mut key_slot;
        // SAFETY: `key_slot` points to the live local above; the key is taken out only at the
        // very end: under the registry lock, or unregistered when giving up.
        let key: &K = unsafe { (*key_slot).as_ref() }.expect("the key is in its slot");
        loop {
            if let Some(value) = self.load_hashed(hash, key) {
                return Ok((value, true));
            }
            // A context done by now came first, even when the key is free (after a panicking
            // `f`, say): it gives up rather than running `f`.
            if cancel.is_some_and(|c| c.is_cancelled()) {
                break;
            }
            let registration = match self.pending.begin(hash, key) {
                Turn::Wait(waiter) if waiter.wait(deadline, cancel) => continue,
                Turn::Wait(_) => break,
                Turn::OwnKey => panic!(
                    "gosync_map::Map::load_or_store_with: called for a key this thread is \
                     computing, from inside its own `f` or from a drop run during that call \
                     (it would wait for itself forever)"
                ),
                Turn::Compute(registration) => registration,
            };
            // A caller that finished before we registered has stored its value by now.
            if let Some(value) = self.load_hashed(hash, key) {
                return Ok((value, true));
            }
            let value = f();
            // Pinned before the registry lock: a first pin may run the collector, which drops
            // values whose `Drop` may call this method.
            let guard = self.reclaim.pin();
            // The key moves into the map under the registry lock, where nobody reads it. If
            // the key is present after all (a plain `store` came first), or a key's `Eq`
            // panics, the key and `f`'s value stay in their slots and drop after the lock.
            let mut value = Some(value);
            let (stored, loaded) = registration.finish(|| {
                // SAFETY: as above; the registry lock is held, so no caller reads the key now,
                // and it is unregistered in this same critical section.
                let key = unsafe { &mut *key_slot };
                self.load_or_store_hashed(hash, key, &mut value, &guard)
            });
            // Before the clone, as in `load_or_store`.
            // SAFETY: as above; unregistered by now.
            drop((unsafe { (*key_slot).take() }, value));
            return Ok((stored.clone(), loaded));
        }
        // SAFETY: as above; this caller gave up without registering, so nobody reads its key.
        let key = unsafe { (*key_slot).take() }.expect("the key is given back once");
        Err((key, f))
    }

    /// Test hook: how many callers wait for the `f` running for `key` (`None` when no `f`
    /// runs for it). Not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn waiters_for(&self, key: &K) -> Option<usize> {
        self.pending.waiters(self.hash(key), key)
    }

    /// Test hook: stores as [`store`](Self::store) does, but while holding the chain's lock
    /// switches it to starvation mode if a writer waits for it (as a waiter does after 1 ms), so
    /// that the unlock hands the lock over; returns whether it switched. Not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn store_forcing_starvation(&self, key: K, value: V) -> bool {
        let hash = self.hash(&key);
        let guard = self.reclaim.pin_for_write();
        let entry = guard.new_entry(hash, key, value);
        let locked = self.tables.lock(hash, &guard);
        let forced = locked.force_starvation();
        match locked.find(&entry.key) {
            Some(found) => locked.replace(found, entry),
            None => {
                self.insert(locked, entry, &guard);
            }
        }
        forced
    }

    fn load_hashed(&self, hash: u64, key: &K) -> Option<V>
    where
        V: Clone,
    {
        let guard = self.reclaim.pin();
        self.tables
            .find(hash, key, &guard)
            .map(|entry| entry.value.clone())
    }

    /// Removes `key` and returns a clone of its value: Go's `LoadAndDelete`.
    ///
    /// A clone, because a reader may still be looking at the removed value; it is dropped once
    /// none can. Use [`delete`](Self::delete) when the value is not needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, "a");
    /// assert_eq!(m.load_and_delete(&1), Some("a"));
    /// assert_eq!(m.load_and_delete(&1), None);
    /// ```
    pub fn load_and_delete<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.remove_if(key, |_| true, V::clone)
    }

    /// Removes `key`, if present: Go's `Delete`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, "a");
    /// m.delete(&1);
    /// assert!(!m.contains_key(&1));
    /// ```
    pub fn delete<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.remove_if(key, |_| true, |_| ());
    }

    /// Removes `key` if its value is equal to `old`; returns whether it did: Go's
    /// `CompareAndDelete`. An absent key is never removed.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, "a");
    /// assert!(!m.compare_and_delete(&1, &"b"));
    /// assert!(m.compare_and_delete(&1, &"a"));
    /// assert!(!m.contains_key(&1));
    /// ```
    #[must_use = "the map is unchanged when this returns false"]
    pub fn compare_and_delete<Q>(&self, key: &Q, old: &V) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: PartialEq,
    {
        self.remove_if(key, |v| v == old, |_| ()).is_some()
    }

    /// Removes `key` if `matches` its value, and applies `removed` to the value.
    fn remove_if<Q, R>(
        &self,
        key: &Q,
        matches: impl Fn(&V) -> bool,
        removed: impl FnOnce(&V) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.tables.prefetch(hash);
        let guard = self.reclaim.pin_for_write();
        // Most misses need no lock.
        if !matches(&self.tables.find(hash, key, &guard)?.value) {
            return None;
        }
        let locked = self.tables.lock(hash, &guard);
        let found = locked.find(key)?;
        if !matches(&found.entry.value) {
            return None;
        }
        let entry = found.entry;
        locked.remove(found);
        drop(locked);
        self.len.add(-1);
        // The removed entry is retired, but this thread's pin keeps it alive.
        Some(removed(&entry.value))
    }

    /// Stores `new` for `key` if its value is equal to `old`; returns whether it did: Go's
    /// `CompareAndSwap`. An absent key is never stored.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// assert!(!m.compare_and_swap(&1, &"a", "b"));
    /// m.store(1, "a");
    /// assert!(m.compare_and_swap(&1, &"a", "b"));
    /// assert_eq!(m.load(&1), Some("b"));
    /// ```
    #[must_use = "the map is unchanged when this returns false"]
    pub fn compare_and_swap<Q>(&self, key: &Q, old: &V, new: V) -> bool
    where
        K: Borrow<Q> + Clone,
        Q: Hash + Eq + ?Sized,
        V: PartialEq,
    {
        let hash = self.hash(key);
        let guard = self.reclaim.pin_for_write();
        match self.tables.find(hash, key, &guard) {
            Some(entry) if entry.value == *old => {}
            _ => return false,
        }
        let locked = self.tables.lock(hash, &guard);
        match locked.find(key) {
            Some(found) if found.entry.value == *old => {
                let key = found.entry.key.clone();
                locked.replace(found, guard.new_entry(hash, key, new));
                true
            }
            _ => false,
        }
    }

    /// Atomically replaces the value of `key` with `f(current)`: `Some(v)` stores `v`, `None`
    /// removes the key (or leaves it absent).
    ///
    /// `f` sees the current value (`None` when absent) and runs with no lock held, so it may
    /// use the map; if another write to the key lands while it runs, `f` runs again on the new
    /// value. So `f` may run more than once, and the result of its last run is stored. An `f`
    /// that writes `key` itself sends itself round again each time: `update` returns only once
    /// a run of `f` leaves the key alone. Like [`load_with`](Self::load_with)'s, `f` runs
    /// pinned: values removed meanwhile are freed only after it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// let add_one = |n: Option<&u32>| Some(n.map_or(1, |n| n + 1));
    /// m.update("hits", add_one);
    /// m.update("hits", add_one);
    /// assert_eq!(m.load("hits"), Some(2));
    /// m.update("hits", |_| None);
    /// assert!(m.is_empty());
    /// ```
    pub fn update(&self, key: K, mut f: impl FnMut(Option<&V>) -> Option<V>) {
        let hash = self.hash(&key);
        let guard = self.reclaim.pin_for_write();
        loop {
            let seen = self.tables.find(hash, &key, &guard);
            let new = f(seen.map(|entry| &entry.value));
            let locked = self.tables.lock(hash, &guard);
            let found = locked.find(&key);
            // The pin keeps `seen` from being freed, so its address names that very entry (a
            // resize moves the entry itself, not a copy).
            let found_ptr = found.as_ref().map(|f| f.entry as *const Entry<K, V>);
            if found_ptr != seen.map(|e| e as *const _) {
                continue;
            }
            match (found, new) {
                (None, None) => {}
                (None, Some(value)) => {
                    self.insert(locked, guard.new_entry(hash, key, value), &guard);
                }
                (Some(found), Some(value)) => {
                    locked.replace(found, guard.new_entry(hash, key, value));
                }
                (Some(found), None) => {
                    locked.remove(found);
                    drop(locked);
                    self.len.add(-1);
                }
            }
            return;
        }
    }

    /// Calls `f` on each key and value until `f` returns `false`: Go's `Range`.
    ///
    /// No lock is held while `f` runs, and `f` may call any method of the map. Each key is
    /// visited at most once, and every key present for the whole call is visited; keys stored
    /// or deleted meanwhile may or may not be. It is not a snapshot. The thread stays pinned to
    /// the epoch for the whole call, which holds back the freeing of this map's retired entries.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// for i in 0..10 {
    ///     m.store(i, i * i);
    /// }
    /// let mut sum = 0;
    /// m.range(|_, v| {
    ///     sum += v;
    ///     true
    /// });
    /// assert_eq!(sum, 285);
    /// ```
    pub fn range(&self, mut f: impl FnMut(&K, &V) -> bool) {
        let guard = self.reclaim.pin();
        self.tables
            .for_each(&guard, &mut |entry| f(&entry.key, &entry.value));
    }

    /// Removes every entry: Go's `Clear`.
    ///
    /// Safe against concurrent use: every key present for the whole call is removed; keys
    /// stored meanwhile may stay.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, 1);
    /// m.store(2, 2);
    /// m.clear();
    /// assert!(m.is_empty());
    /// ```
    pub fn clear(&self) {
        let guard = self.reclaim.pin_for_write();
        let removed = self.tables.clear(&guard);
        self.len.add(-(removed as isize));
    }

    /// The number of entries, in O(1) (a striped count, not a walk).
    ///
    /// Exact when no write is in flight; while writes run it may lag them.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::new();
    /// m.store(1, 1);
    /// m.store(1, 2);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.len.get()
    }

    /// Whether the map has no entries (see [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let m = gosync_map::Map::<u8, u8>::new();
    /// assert!(m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K, V, S> Drop for Map<K, V, S> {
    /// Drops the live entries, then (as the fields drop) the retired ones; raises at the end
    /// the first panic of a key's or value's drop that no write raised (see [`Map`]).
    fn drop(&mut self) {
        let reclaim = &self.reclaim;
        self.tables
            .free_entries(|payload| reclaim.keep_panic(payload));
    }
}

impl<K, V, S> fmt::Debug for Map<K, V, S>
where
    K: Hash + Eq + fmt::Debug,
    V: fmt::Debug,
    S: BuildHasher,
{
    /// Lists the entries, in no particular order (a [`range`](Map::range), not a snapshot).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_map();
        self.range(|k, v| {
            list.entry(k, v);
            true
        });
        list.finish()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher + Default> FromIterator<(K, V)> for Map<K, V, S> {
    /// Collects pairs into a map; a later pair for a key replaces an earlier one.
    ///
    /// # Examples
    ///
    /// ```
    /// let m: gosync_map::Map<_, _> = [(1, "a"), (2, "b")].into_iter().collect();
    /// assert_eq!(m.len(), 2);
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let map = Self::default();
        for (k, v) in pairs {
            map.store(k, v);
        }
        map
    }
}

static_assertions::assert_impl_all!(Map<String, Vec<u8>>: Send, Sync, Default);
static_assertions::assert_not_impl_any!(Map<std::rc::Rc<u8>, u8>: Send, Sync);
static_assertions::assert_not_impl_any!(Map<u8, std::cell::Cell<u8>>: Sync);
