//! [`RawRwMutex`]: the lock word, its state machine and its wait queues.
//!
//! Notes about memory ordering
//!
//! Every acquisition ends in an `Acquire` that reads from the `Release` of the release it
//! follows, or in a wake-up through the park layer (whose `WOKEN` store is `Release` and whose
//! wake-up check is `Acquire`, so a thread handed the lock sees everything its releaser did):
//!
//! - a reader's `fetch_add` (`Acquire`) reads from the last writer's release (`Release` CAS);
//! - a writer's claim (`Acquire` CAS) reads from the last release of a writer or upgradable
//!   reader, and its drain check (`Acquire` load of the reader count) reads from the readers'
//!   `Release` `fetch_sub`s, which are read-modify-writes and so continue one release sequence;
//! - a hand-off (readers counted in, a claim passed to a parked writer) is published to the
//!   threads it wakes by the park layer's wake-up;
//! - every change that clears `WRITER` or `UPGRADABLE` is a `Release` read-modify-write, also when
//!   it hands the claim on, because readers may enter through their fast path reading from it.
//!
//! Bits that only say who is parked (`PARKED_*`) are set and cleared under the lock of the queue
//! they describe, so they need no ordering of their own: `Relaxed`.
//!
//! Readers counted in shards (see `shards.rs`) meet writers without a read-modify-write on a
//! common word, so each side stores, runs a `SeqCst` fence, then loads (the store-buffering
//! pattern, whose fences are ordered in the single total order `S`):
//!
//! - a reader increments its shard, fences, and loads the state word: if `SHARDED` is set and
//!   `WRITER` clear the reader is in, otherwise it backs out;
//! - a writer sets `WRITER`, fences, and loads the shards: so either the reader sees `WRITER`
//!   or the writer sees the reader's increment (and waits for it to leave);
//! - a reader leaving decrements its shard (`Release`: pairs with the writer's `Acquire` loads
//!   of the shards), fences, and loads the state word for `PARKED_DRAIN`; a writer about to
//!   sleep sets `PARKED_DRAIN`, fences, and loads the shards: so either the reader wakes it or
//!   it sees the decrement and does not sleep.
//!
//! `SHARDED` is set by a reader inside the lock that finds another reader inside, and cleared
//! by a writer that holds `WRITER` and has found every shard empty (when few readers entered
//! them since the previous writer looked: see `shards.rs`). A writer that holds
//! `WRITER` and reads a state without `SHARDED` knows that no reader is inside through a shard:
//! such a reader's last load of the word showed `SHARDED` without `WRITER`. That value comes
//! before this writer's claim in the word's modification order (or the reader would have seen
//! `WRITER`), and `SHARDED` was cleared between the two, by a writer that looked at the shards
//! after its own claim, which also comes after that value: by the fences, that writer saw the
//! reader's increment, so it cleared `SHARDED` only after the reader had left. Only locks whose
//! readers contend pay for a writer's fence and its look at the shards.

use std::fmt;
use std::time::{Duration, Instant};

use gosync_park::sync::{fence, AtomicUsize, Ordering};
use gosync_park::{park, unpark_filter, unpark_one, FilterOp, ParkOptions, ParkResult, SpinWait};

use crate::shards::{ReadSlot, ReaderShards, Shard, ShardsSeen};

/// Readers are parked on the reader key, waiting for `WRITER` to clear.
const PARKED_READERS: usize = 0b0_0001;
/// Writers or upgradable readers are parked on the writer key. Implies `WRITER | UPGRADABLE`.
const PARKED_WRITERS: usize = 0b0_0010;
/// The owner of `WRITER` is parked on the drain key, waiting for the readers to leave.
const PARKED_DRAIN: usize = 0b0_0100;
/// A writer holds the lock, or has claimed it and waits for the readers inside to leave.
const WRITER: usize = 0b0_1000;
/// An upgradable reader holds the lock (and is also counted as one reader).
const UPGRADABLE: usize = 0b1_0000;
/// Guards' readers are counted in the lock's shards rather than in this word. Set by a reader
/// that finds another reader inside (which allocates the shards the first time); cleared by a
/// writer that finds the shards empty and rarely entered since the previous writer looked, so
/// that a lock written about as often as it is read counts in the word, and only read-mostly
/// locks pay a writer's look at the shards.
const SHARDED: usize = 0b10_0000;
/// One reader: the bits from here up count the readers inside (plus, for an instant, readers
/// that saw `WRITER` after their increment and are backing out).
const READER: usize = 0b100_0000;
/// The reader count.
const READERS_MASK: usize = !(READER - 1);
/// The top bit of the count: a reader that sees it set backs out and panics, long before the
/// count could wrap into the flag bits.
const READERS_OVERFLOW: usize = 1 << (usize::BITS - 1);

/// Queue keys, as offsets from the address of the state word.
const READER_KEY: usize = 0;
const WRITER_KEY: usize = 1;
const DRAIN_KEY: usize = 2;

/// Park tokens on the writer key: what the waiter wants.
const WANTS_WRITE: usize = 0;
const WANTS_UPGRADABLE: usize = 1;

/// Unpark tokens: try again.
const TOKEN_RETRY: usize = 0;
/// Unpark tokens: the releaser gave the waiter what it wanted; it holds the lock (a writer still
/// waits for the readers inside to leave).
const TOKEN_HANDOFF: usize = 1;

/// What a writer holding `WRITER` finds of the readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadersSeen {
    /// A reader is inside (counted in the word or in a shard).
    Inside,
    /// No reader is inside; readers count in the word.
    Gone,
    /// No reader is inside; readers count in the shards, whose entry counts sum to `entered`.
    GoneFromShards { entered: usize },
}

/// The raw lock under [`RwMutex`](crate::RwMutex): a state word and a pointer to reader
/// shards (allocated when readers contend); no data, no guards.
///
/// Use it to build your own lock types, through the `lock_api` traits (feature `lock_api`),
/// or to release and re-take an [`RwMutex`](crate::RwMutex) in place as a condition variable
/// does (see [`RwMutexWriteGuard::raw`](crate::RwMutexWriteGuard::raw)). Acquiring methods are
/// safe (a lock that is never released is a leak, not unsoundness); releasing methods are
/// `unsafe`, with the contract that the caller holds what it releases.
///
/// # The state word
///
/// | bits | meaning |
/// | --- | --- |
/// | `PARKED_READERS` | readers parked, waiting for the writer claim to go |
/// | `PARKED_WRITERS` | writers / upgradable readers parked (implies `WRITER` or `UPGRADABLE`) |
/// | `PARKED_DRAIN` | the claiming writer parked, waiting for the readers inside to leave |
/// | `WRITER` | a writer holds the lock, or has claimed it and waits for readers to drain |
/// | `UPGRADABLE` | an upgradable reader holds the lock |
/// | `SHARDED` | guards' readers count in the shards (set on a contended read, cleared by a writer) |
/// | the rest | the number of readers counted here (an upgradable reader counts as one) |
///
/// # Cost of the read path
///
/// `lock_shared` is one `fetch_add` on the state word and a test of its old value;
/// `unlock_shared` is one `fetch_sub` and a test. One read-modify-write on one cache line each
/// way, never a compare-and-swap loop, so concurrent readers never retry (as Go's
/// `readerCount.Add`). A reader whose increment shows a writer's claim undoes it and waits.
///
/// That line is still shared, and readers on different cores take turns owning it. So the
/// guards of [`RwMutex`](crate::RwMutex), which can remember where their reader was counted,
/// count it in a per-thread shard instead while readers contend: each shard is a counter on a
/// cache line of its own, allocated with the lock's first contended read (one per core, at most
/// 64) and freed with the lock. A sharded read is an increment of the thread's own shard, a
/// fence and a load of the state word; a writer then checks every shard after claiming, and
/// if few reads came between it and the previous writer, sends readers back to the word until
/// they contend again. The raw `lock_shared`/`unlock_shared` here have nowhere to remember a
/// shard and always count in the word.
///
/// # Differences from Go
///
/// Go's `RWMutex` is a `Mutex` for writers, a reader count and two semaphores. Here one word
/// holds all of it, and the waits go through the park layer's queues, keyed by the word's
/// address: one queue for readers, one for writers and upgradable readers (FIFO, the lock is
/// handed to the longest waiter), one for the writer waiting for readers to leave. The
/// behaviour is Go's: once a writer has claimed the lock, new readers wait; readers parked while
/// a writer held the lock are let in before the next writer; writers hand over in arrival order.
/// Upgradable readers and timeouts are additions.
///
/// # Examples
///
/// ```
/// use gosync_rwmutex::RawRwMutex;
///
/// let raw = RawRwMutex::new();
/// raw.lock_shared();
/// assert!(raw.try_lock_shared());
/// assert!(!raw.try_lock_exclusive());
/// // SAFETY: two shared locks are held, taken just above.
/// unsafe {
///     raw.unlock_shared();
///     raw.unlock_shared();
/// }
/// assert!(raw.try_lock_exclusive());
/// // SAFETY: the exclusive lock is held.
/// unsafe { raw.unlock_exclusive() };
/// ```
pub struct RawRwMutex {
    state: AtomicUsize,
    shards: ReaderShards,
}

impl fmt::Debug for RawRwMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a snapshot for display only.
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("RawRwMutex")
            .field(
                "readers",
                &((state & READERS_MASK) / READER).wrapping_add(self.shards.readers()),
            )
            .field("writer", &(state & WRITER != 0))
            .field("upgradable", &(state & UPGRADABLE != 0))
            .finish()
    }
}

impl Default for RawRwMutex {
    fn default() -> Self {
        Self::new()
    }
}

impl RawRwMutex {
    /// An unlocked raw lock, for `static` and `const` contexts (not available under loom).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::RawRwMutex;
    /// static LOCK: RawRwMutex = RawRwMutex::INIT;
    /// assert!(!LOCK.is_locked());
    /// ```
    #[cfg(not(gosync_loom))]
    #[allow(clippy::declare_interior_mutable_const)] // an initialiser, as lock_api's `INIT`
    pub const INIT: Self = Self::new();

    /// An unlocked raw lock.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(!raw.is_locked());
    /// ```
    #[cfg(not(gosync_loom))]
    #[inline]
    pub const fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            shards: ReaderShards::new(),
        }
    }

    /// An unlocked raw lock.
    #[cfg(gosync_loom)]
    pub fn new() -> Self {
        Self {
            state: AtomicUsize::new(0),
            shards: ReaderShards::new(),
        }
    }

    #[inline]
    fn key(&self, offset: usize) -> usize {
        &self.state as *const AtomicUsize as usize + offset
    }

    // ---------------------------------------------------------------------------------------
    // Shared (read) locking
    // ---------------------------------------------------------------------------------------

    /// Takes a shared lock, waiting while a writer holds or has claimed the lock (Go's
    /// `RLock`). Not reentrant: a thread that already holds a shared lock and calls this while
    /// a writer waits deadlocks, as in Go.
    ///
    /// # Panics
    ///
    /// Panics with `sync: too many readers` if the reader count would overflow.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_shared();
    /// // SAFETY: the shared lock is held.
    /// unsafe { raw.unlock_shared() };
    /// ```
    #[inline]
    pub fn lock_shared(&self) {
        self.read_until(None, false)
            .expect("a read lock without a deadline is always taken");
    }

    /// Takes a shared lock if no writer holds or has claimed the lock; never blocks.
    ///
    /// # Panics
    ///
    /// Panics with `sync: too many readers` if the reader count would overflow.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// assert!(!raw.try_lock_shared());
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// assert!(raw.try_lock_shared());
    /// ```
    #[inline]
    pub fn try_lock_shared(&self) -> bool {
        self.try_read(false).is_some()
    }

    /// Takes a shared lock, giving up after `timeout`. Returns whether it did.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(raw.try_lock_shared_for(Duration::ZERO));
    /// // SAFETY: the shared lock is held.
    /// unsafe { raw.unlock_shared() };
    /// ```
    #[inline]
    pub fn try_lock_shared_for(&self, timeout: Duration) -> bool {
        self.read_until(gosync_park::deadline_after(timeout), false)
            .is_some()
    }

    /// Takes a shared lock, giving up at `deadline`. Returns whether it did. A past deadline
    /// still succeeds when the lock is free at once.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// assert!(!raw.try_lock_shared_until(Instant::now()));
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    #[inline]
    pub fn try_lock_shared_until(&self, deadline: Instant) -> bool {
        self.read_until(Some(deadline), false).is_some()
    }

    /// Releases a shared lock (Go's `RUnlock`).
    ///
    /// # Safety
    ///
    /// The caller holds a shared lock on `self` (taken by `lock_shared`, a `try_lock_shared*`
    /// that returned `true`, or a downgrade), and gives it up: it must not release it again, and
    /// must not touch data the lock protects until it locks again.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_shared();
    /// // SAFETY: the shared lock is held.
    /// unsafe { raw.unlock_shared() };
    /// assert!(!raw.is_locked());
    /// ```
    #[inline]
    pub unsafe fn unlock_shared(&self) {
        self.release_reader();
    }

    /// Takes a shared lock for a guard, which keeps the returned slot to release it with.
    #[inline]
    pub(crate) fn lock_read(&self) -> ReadSlot {
        self.read_until(None, true)
            .expect("a read lock without a deadline is always taken")
    }

    /// Takes a shared lock for a guard if no writer holds or has claimed the lock.
    #[inline]
    pub(crate) fn try_lock_read(&self) -> Option<ReadSlot> {
        self.try_read(true)
    }

    /// Takes a shared lock for a guard, giving up at `deadline` (`None`: never).
    #[inline]
    pub(crate) fn try_lock_read_until(&self, deadline: Option<Instant>) -> Option<ReadSlot> {
        self.read_until(deadline, true)
    }

    /// Takes a shared lock (counted as [`try_read`](Self::try_read) does), waiting until
    /// `deadline` (`None`: for as long as it takes).
    #[inline]
    fn read_until(&self, deadline: Option<Instant>, shardable: bool) -> Option<ReadSlot> {
        self.try_read(shardable)
            .or_else(|| self.lock_shared_slow(deadline, shardable))
    }

    /// Releases a guard's shared lock.
    ///
    /// # Safety
    ///
    /// `slot` came from taking a shared lock on `self` that is still held (by `lock_read` and
    /// friends, or [`ReadSlot::WORD`] for a lock counted in the word), and the caller gives that
    /// lock up.
    #[inline]
    pub(crate) unsafe fn unlock_read(&self, slot: ReadSlot) {
        match slot.shard_index() {
            None => self.release_reader(),
            Some(index) => self.leave_shard(self.shards.at(index)),
        }
    }

    /// Moves a guard's shared lock from its shard into the word (if not there already), so that
    /// the raw `unlock_shared`/`lock_shared` can release and retake it. Returns the new slot.
    ///
    /// # Safety
    ///
    /// As [`unlock_read`](Self::unlock_read): `slot` is held; afterwards the returned slot is.
    pub(crate) unsafe fn count_in_word(&self, slot: ReadSlot) -> ReadSlot {
        if let Some(index) = slot.shard_index() {
            // Counted in the word before leaving the shard, so that a writer that sees the
            // shard empty sees this count when it looks at the word again (`readers_seen`).
            // Relaxed: ordered before the Release decrement in `leave_shard`.
            let prev = self.state.fetch_add(READER, Ordering::Relaxed);
            self.leave_shard(self.shards.at(index));
            if prev & READERS_OVERFLOW != 0 {
                self.back_out(prev);
            }
        }
        ReadSlot::WORD
    }

    /// One attempt at a shared lock: in this thread's shard if `shardable` and `SHARDED` is
    /// set, otherwise in the word (and then, if `shardable` and another reader is inside, the
    /// lock counts the reads after this one in its shards).
    #[inline]
    fn try_read(&self, shardable: bool) -> Option<ReadSlot> {
        // Relaxed: only picks the counter; the sharded attempt checks `SHARDED` again after its
        // fence.
        if shardable && self.state.load(Ordering::Relaxed) & SHARDED != 0 {
            if let Some((index, shard)) = self.shards.home() {
                match self.try_read_shard(index, shard) {
                    Ok(slot) => return Some(slot),
                    Err(state) if state & WRITER != 0 => return None,
                    // A writer sent readers back to the word meanwhile, or the shard is full.
                    Err(_) => {}
                }
            }
        }
        // Acquire: pairs with the Release of the last writer's release, whose writes this
        // reader must see.
        let prev = self.state.fetch_add(READER, Ordering::Acquire);
        if prev & (WRITER | READERS_OVERFLOW) != 0 {
            self.back_out(prev);
            return None;
        }
        if shardable && prev & READERS_MASK != 0 && prev & SHARDED == 0 {
            self.shard();
        }
        Some(ReadSlot::WORD)
    }

    /// Makes guards' readers count in the shards (allocating them the first time). Called by a
    /// reader inside, on contention.
    #[cold]
    fn shard(&self) {
        if !self.shards.installed() {
            self.shards.install();
        }
        // Relaxed: readers that see the bit find the shards through `home`'s Acquire (or count
        // in the word if they do not see them yet).
        self.state.fetch_or(SHARDED, Ordering::Relaxed);
    }

    /// One attempt at a shared lock counted in `shard`. On failure, returns the state word seen
    /// (with `WRITER` set, `SHARDED` clear, or neither if the shard was full).
    #[inline]
    fn try_read_shard(&self, index: usize, shard: &Shard) -> Result<ReadSlot, usize> {
        let roomy = shard.enter();
        // SeqCst: pairs with the fence after a writer sets `WRITER` (see the notes at the top).
        fence(Ordering::SeqCst);
        // Acquire: pairs with the Release of the last writer's release, whose writes this
        // reader must see.
        let state = self.state.load(Ordering::Acquire);
        if roomy && state & (WRITER | SHARDED) == SHARDED {
            return Ok(ReadSlot::shard(index));
        }
        self.leave_shard(shard);
        Err(state)
    }

    /// Takes one reader out of `shard`: an unlock, or a reader backing out. Wakes the claiming
    /// writer if it sleeps waiting for readers to leave.
    #[inline]
    fn leave_shard(&self, shard: &Shard) {
        shard.leave();
        // SeqCst: pairs with the fence after a writer sets `PARKED_DRAIN` (see the notes at the
        // top).
        fence(Ordering::SeqCst);
        // Relaxed: the fence orders it; the wake-up goes through the drain queue's lock.
        if self.state.load(Ordering::Relaxed) & PARKED_DRAIN != 0 {
            self.wake_drainer();
        }
    }

    /// Takes one reader out of the count: an unlock, or a reader backing out. Wakes the
    /// claiming writer if this was the last reader it waited for.
    #[inline]
    fn release_reader(&self) {
        // Release: pairs with the Acquire drain check of the writer that claims the lock next,
        // so this reader's reads happen before its writes.
        let prev = self.state.fetch_sub(READER, Ordering::Release);
        if prev & (READERS_MASK | PARKED_DRAIN) == READER | PARKED_DRAIN {
            self.wake_drainer();
        }
    }

    /// Undoes a reader increment that found the lock claimed by a writer (or the count full).
    #[cold]
    fn back_out(&self, prev: usize) {
        self.release_reader();
        if prev & READERS_OVERFLOW != 0 {
            panic!("sync: too many readers");
        }
    }

    /// Waits for a shared lock (counted as `try_read(shardable)` would), giving up at
    /// `deadline`.
    #[cold]
    fn lock_shared_slow(&self, deadline: Option<Instant>, shardable: bool) -> Option<ReadSlot> {
        let mut spin = SpinWait::new();
        loop {
            // Relaxed: only a hint for when to retry; the retry is Acquire.
            let state = self.state.load(Ordering::Relaxed);
            if state & WRITER == 0 {
                if let Some(slot) = self.try_read(shardable) {
                    return Some(slot);
                }
                continue;
            }
            if has_passed(deadline) {
                return None;
            }
            if spin.spin() {
                continue;
            }
            let validate = || self.set_parked_while(PARKED_READERS, WRITER);
            let on_abort = |_, was_last| {
                if was_last {
                    // Relaxed: under the reader queue's lock (see the notes above).
                    self.state.fetch_and(!PARKED_READERS, Ordering::Relaxed);
                }
            };
            let options = ParkOptions {
                deadline,
                ..ParkOptions::default()
            };
            match park(self.key(READER_KEY), options, validate, || {}, on_abort) {
                // The releasing writer counted this thread in the word: it is a reader now.
                ParkResult::Unparked(TOKEN_HANDOFF) => return Some(ReadSlot::WORD),
                ParkResult::TimedOut | ParkResult::Cancelled => return None,
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
        }
    }

    /// The validate step of a park: sets `parked` if any of `busy` is set (and returns `true`:
    /// sleep), otherwise returns `false` (retry). Runs under the queue lock for `parked`.
    fn set_parked_while(&self, parked: usize, busy: usize) -> bool {
        // Relaxed: the parked bits are ordered by the queue lock; the busy bits are re-read by
        // the CAS, which fails if a release cleared them meanwhile.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & busy == 0 {
                return false;
            }
            if state & parked != 0 {
                return true;
            }
            match self.state.compare_exchange_weak(
                state,
                state | parked,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Unparks every parked reader. With `TOKEN_HANDOFF` they are counted in as readers (the
    /// caller holds `WRITER` or `UPGRADABLE`, so no writer can be inside); with `TOKEN_RETRY`
    /// they just try again.
    fn wake_readers(&self, token: usize) {
        unpark_filter(
            self.key(READER_KEY),
            |_| FilterOp::Unpark,
            |result| {
                if token == TOKEN_HANDOFF && result.unparked > 0 {
                    // Relaxed: the new readers are published by their wake-up; the next writer
                    // sees the count by coherence of this one word.
                    self.state
                        .fetch_add(result.unparked * READER, Ordering::Relaxed);
                }
                // Relaxed: under the reader queue's lock.
                self.state.fetch_and(!PARKED_READERS, Ordering::Relaxed);
                token
            },
        );
    }

    #[cold]
    fn wake_drainer(&self) {
        unpark_one(self.key(DRAIN_KEY), |result| {
            if !result.have_more {
                // Relaxed: under the drain queue's lock.
                self.state.fetch_and(!PARKED_DRAIN, Ordering::Relaxed);
            }
            TOKEN_RETRY
        });
    }

    // ---------------------------------------------------------------------------------------
    // Exclusive (write) locking
    // ---------------------------------------------------------------------------------------

    /// Takes the exclusive lock (Go's `Lock`). Once this has claimed the lock, new readers
    /// wait; readers already inside finish first.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// assert!(raw.is_locked_exclusive());
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    #[inline]
    pub fn lock_exclusive(&self) {
        if !self.try_lock_exclusive_fast() {
            self.lock_exclusive_slow(None);
        }
    }

    #[inline]
    fn try_lock_exclusive_fast(&self) -> bool {
        // Acquire: pairs with the Release of the last release (reader, writer or upgradable).
        self.state
            .compare_exchange_weak(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the exclusive lock if nobody holds any lock; never blocks.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(raw.try_lock_exclusive());
    /// assert!(!raw.try_lock_exclusive());
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    #[inline]
    pub fn try_lock_exclusive(&self) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & (WRITER | UPGRADABLE | READERS_MASK) != 0 {
                return false;
            }
            // Acquire: as in `try_lock_exclusive_fast`.
            match self.state.compare_exchange_weak(
                state,
                state | WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        if self.take_over(state | WRITER) {
            return true;
        }
        // A reader is inside through its shard: give the claim back as an unlock would, letting
        // in any reader that parked on seeing it.
        self.release_writer_slow(false);
        false
    }

    /// Takes the exclusive lock, giving up after `timeout`. Returns whether it did. A writer
    /// that gives up while waiting for readers to leave lets in the readers it held back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_shared();
    /// assert!(!raw.try_lock_exclusive_for(Duration::from_millis(1)));
    /// // SAFETY: the shared lock is held.
    /// unsafe { raw.unlock_shared() };
    /// ```
    #[inline]
    pub fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
        self.try_lock_exclusive_fast()
            || self.lock_exclusive_slow(gosync_park::deadline_after(timeout))
    }

    /// Takes the exclusive lock, giving up at `deadline`. Returns whether it did. A past
    /// deadline still succeeds when the lock is free at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(raw.try_lock_exclusive_until(Instant::now()));
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    #[inline]
    pub fn try_lock_exclusive_until(&self, deadline: Instant) -> bool {
        self.try_lock_exclusive_fast() || self.lock_exclusive_slow(Some(deadline))
    }

    #[cold]
    fn lock_exclusive_slow(&self, deadline: Option<Instant>) -> bool {
        if !self.acquire_claim(WANTS_WRITE, deadline) {
            return false;
        }
        if self.wait_for_readers(deadline) {
            return true;
        }
        // Gave up while readers were inside: give the claim back as an unlock would, letting in
        // the readers held back meanwhile.
        self.release_writer_slow(false);
        false
    }

    /// Gets `WRITER` (for `WANTS_WRITE`) or `UPGRADABLE` plus one reader (for
    /// `WANTS_UPGRADABLE`), by CAS when neither is held, otherwise by hand-off from the holder
    /// after parking on the writer key. Returns `false` if `deadline` passed first.
    fn acquire_claim(&self, wants: usize, deadline: Option<Instant>) -> bool {
        let mut spin = SpinWait::new();
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & (WRITER | UPGRADABLE) == 0 {
                let new = if wants == WANTS_WRITE {
                    state | WRITER
                } else {
                    if state & READERS_OVERFLOW != 0 {
                        panic!("sync: too many readers");
                    }
                    state + UPGRADABLE + READER
                };
                // Acquire: pairs with the Release of the previous holder's release.
                match self.state.compare_exchange_weak(
                    state,
                    new,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            if has_passed(deadline) {
                return false;
            }
            if spin.spin() {
                // Relaxed: as above.
                state = self.state.load(Ordering::Relaxed);
                continue;
            }
            let validate = || self.set_parked_while(PARKED_WRITERS, WRITER | UPGRADABLE);
            let on_abort = |_, was_last| {
                if was_last {
                    // Relaxed: under the writer queue's lock.
                    self.state.fetch_and(!PARKED_WRITERS, Ordering::Relaxed);
                }
            };
            let options = ParkOptions {
                token: wants,
                deadline,
                ..ParkOptions::default()
            };
            match park(self.key(WRITER_KEY), options, validate, || {}, on_abort) {
                ParkResult::Unparked(TOKEN_HANDOFF) => return true,
                ParkResult::TimedOut | ParkResult::Cancelled => return false,
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
            // Relaxed: as above.
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// With `WRITER` held by the caller, what it finds of the readers, given `state`, a value
    /// of the word read after `WRITER` was set.
    fn readers_seen(&self, state: usize) -> ReadersSeen {
        if state & READERS_MASK != 0 {
            return ReadersSeen::Inside;
        }
        if state & SHARDED == 0 {
            return ReadersSeen::Gone;
        }
        // SeqCst: pairs with the fence between a reader's shard increment and its look at the
        // word, and with the fence after a leaving reader's decrement (see the notes at the top).
        fence(Ordering::SeqCst);
        let ShardsSeen::Empty { entered } = self.shards.look() else {
            return ReadersSeen::Inside;
        };
        // A guard moving its lock from a shard into the word counts itself there first
        // (`count_in_word`): look at the word again. Acquire: pairs with the Release decrement of
        // that shard, which `look` read, and with the Release fetch_sub of readers leaving the
        // word.
        if self.state.load(Ordering::Acquire) & READERS_MASK != 0 {
            return ReadersSeen::Inside;
        }
        ReadersSeen::GoneFromShards { entered }
    }

    /// With `WRITER` held by the caller, whether no reader is inside (see
    /// [`readers_seen`](Self::readers_seen)). If so, the caller holds the exclusive lock, and
    /// if few readers came through the shards since the previous writer looked, sends readers
    /// back to the word. Called once per exclusive lock taken: it counts the reads between.
    fn take_over(&self, state: usize) -> bool {
        match self.readers_seen(state) {
            ReadersSeen::Inside => false,
            ReadersSeen::Gone => true,
            ReadersSeen::GoneFromShards { entered } => {
                if self.shards.few_entered_since(entered) {
                    // Relaxed: the argument at the top rests on the word's modification order
                    // alone.
                    self.state.fetch_and(!SHARDED, Ordering::Relaxed);
                }
                true
            }
        }
    }

    /// With `WRITER` held, waits until no reader is inside. Returns `false` if `deadline` passed
    /// first (the caller still holds `WRITER`).
    fn wait_for_readers(&self, deadline: Option<Instant>) -> bool {
        let mut spin = SpinWait::new();
        loop {
            // Acquire: pairs with the Release fetch_sub of the readers leaving, so their reads
            // happen before this writer's writes.
            if self.take_over(self.state.load(Ordering::Acquire)) {
                return true;
            }
            if has_passed(deadline) {
                return false;
            }
            if spin.spin() {
                continue;
            }
            let validate = || {
                // Relaxed: a reader leaving the word sees the bit in its fetch_sub (one word's
                // modification order) and takes the drain queue's lock to wake us; one leaving a
                // shard is ordered against it by the fence in `readers_seen`.
                let state = self.state.fetch_or(PARKED_DRAIN, Ordering::Relaxed);
                if self.readers_seen(state) != ReadersSeen::Inside {
                    // Relaxed: under the drain queue's lock; only this thread parks there.
                    self.state.fetch_and(!PARKED_DRAIN, Ordering::Relaxed);
                    return false;
                }
                true
            };
            let on_abort = |_, _| {
                // Relaxed: under the drain queue's lock; only this thread parks there.
                self.state.fetch_and(!PARKED_DRAIN, Ordering::Relaxed);
            };
            let options = ParkOptions {
                deadline,
                ..ParkOptions::default()
            };
            match park(self.key(DRAIN_KEY), options, validate, || {}, on_abort) {
                ParkResult::TimedOut | ParkResult::Cancelled => return false,
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
        }
    }

    /// Releases the exclusive lock (Go's `Unlock`). Readers that parked while it was held go in
    /// first; then the longest-waiting writer (or upgradable reader), if any, is handed the lock.
    ///
    /// # Safety
    ///
    /// The caller holds the exclusive lock on `self` and gives it up: it must not release it
    /// again, and must not touch data the lock protects until it locks again.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// assert!(!raw.is_locked());
    /// ```
    #[inline]
    pub unsafe fn unlock_exclusive(&self) {
        // Release: pairs with the Acquire of whoever locks next.
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.release_writer_slow(false);
        }
    }

    /// Turns the exclusive lock into a shared one, without letting any writer in between.
    /// Readers parked meanwhile are let in too; a parked writer is handed the claim and waits
    /// for them (and this thread) to leave.
    ///
    /// # Safety
    ///
    /// The caller holds the exclusive lock; afterwards it holds a shared lock instead and must
    /// not write through the lock's protection.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.downgrade() };
    /// assert!(raw.try_lock_shared());
    /// // SAFETY: two shared locks are held.
    /// unsafe {
    ///     raw.unlock_shared();
    ///     raw.unlock_shared();
    /// }
    /// ```
    pub unsafe fn downgrade(&self) {
        self.release_writer_slow(true);
    }

    /// Gives up `WRITER` the slow way: parked readers first, then the claim to the next
    /// writer-queue waiter or nobody. With `downgrade`, the caller stays as a reader.
    #[cold]
    fn release_writer_slow(&self, downgrade: bool) {
        // Readers that parked behind this writer go in before the next writer (Go's rule, which
        // keeps readers from starving): counted in while `WRITER` still shuts out everyone else.
        // Relaxed: the bit is re-checked under the queue lock.
        if self.state.load(Ordering::Relaxed) & PARKED_READERS != 0 {
            self.wake_readers(TOKEN_HANDOFF);
        }
        if downgrade {
            // Relaxed: this thread already holds the lock; the count only matters to the next
            // writer, which sees it by coherence after it gets `WRITER` below.
            self.state.fetch_add(READER, Ordering::Relaxed);
        }
        if !self.pass_on_claim(WRITER) {
            // `WRITER` is gone: readers that parked since the first look would wait for nobody.
            // They retry rather than being counted in: a new writer may have claimed already.
            // Relaxed: re-checked under the queue lock.
            if self.state.load(Ordering::Relaxed) & PARKED_READERS != 0 {
                self.wake_readers(TOKEN_RETRY);
            }
        }
    }

    /// Gives up `held` (`WRITER`, `UPGRADABLE + READER` or `UPGRADABLE`), handing it over to the
    /// longest waiter on the writer key if there is one. Returns whether `WRITER` is still set
    /// (handed to a writer).
    fn pass_on_claim(&self, held: usize) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & PARKED_WRITERS == 0 {
                // Release: pairs with the Acquire of the next reader or claimant.
                match self.state.compare_exchange_weak(
                    state,
                    state - held,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return false,
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            let mut handed = None;
            unpark_filter(
                self.key(WRITER_KEY),
                |wants| {
                    if handed.is_some() {
                        return FilterOp::Stop;
                    }
                    let take = if wants == WANTS_WRITE {
                        WRITER
                    } else {
                        UPGRADABLE + READER
                    };
                    // Release: when `WRITER` becomes `UPGRADABLE`, readers may enter through
                    // their fast path reading from this very change: it must publish the
                    // writer's writes to them (the new holder learns them from its wake-up).
                    self.state
                        .fetch_add(take.wrapping_sub(held), Ordering::Release);
                    handed = Some(take);
                    FilterOp::Unpark
                },
                |result| {
                    if !result.have_more {
                        // Relaxed: under the writer queue's lock.
                        self.state.fetch_and(!PARKED_WRITERS, Ordering::Relaxed);
                    }
                    TOKEN_HANDOFF
                },
            );
            if let Some(take) = handed {
                return take == WRITER;
            }
            // Every parked waiter gave up meanwhile; the bit is clear now.
            // Relaxed: as above.
            state = self.state.load(Ordering::Relaxed);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Upgradable reads
    // ---------------------------------------------------------------------------------------

    /// Takes an upgradable shared lock: it coexists with plain readers, excludes writers and
    /// other upgradable readers, and can later become the exclusive lock without letting a
    /// writer in between.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// assert!(raw.try_lock_shared());
    /// assert!(!raw.try_lock_upgradable());
    /// // SAFETY: a shared and the upgradable lock are held.
    /// unsafe {
    ///     raw.unlock_shared();
    ///     raw.unlock_upgradable();
    /// }
    /// ```
    #[inline]
    pub fn lock_upgradable(&self) {
        if !self.try_lock_upgradable() {
            self.acquire_claim(WANTS_UPGRADABLE, None);
        }
    }

    /// Takes an upgradable shared lock if no writer or upgradable reader holds the lock (or
    /// waits for it); never blocks.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(raw.try_lock_upgradable());
    /// // SAFETY: the upgradable lock is held.
    /// unsafe { raw.unlock_upgradable() };
    /// ```
    #[inline]
    pub fn try_lock_upgradable(&self) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & (WRITER | UPGRADABLE | READERS_OVERFLOW) != 0 {
                if state & READERS_OVERFLOW != 0 {
                    panic!("sync: too many readers");
                }
                return false;
            }
            // Acquire: pairs with the Release of the last writer's release.
            match self.state.compare_exchange_weak(
                state,
                state + UPGRADABLE + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    /// Takes an upgradable shared lock, giving up after `timeout`. Returns whether it did.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// assert!(!raw.try_lock_upgradable_for(Duration::from_millis(1)));
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    #[inline]
    pub fn try_lock_upgradable_for(&self, timeout: Duration) -> bool {
        self.try_lock_upgradable()
            || self.acquire_claim(WANTS_UPGRADABLE, gosync_park::deadline_after(timeout))
    }

    /// Takes an upgradable shared lock, giving up at `deadline`. Returns whether it did.
    ///
    /// # Panics
    ///
    /// As [`lock_shared`](Self::lock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(raw.try_lock_upgradable_until(Instant::now()));
    /// // SAFETY: the upgradable lock is held.
    /// unsafe { raw.unlock_upgradable() };
    /// ```
    #[inline]
    pub fn try_lock_upgradable_until(&self, deadline: Instant) -> bool {
        self.try_lock_upgradable() || self.acquire_claim(WANTS_UPGRADABLE, Some(deadline))
    }

    /// Releases an upgradable shared lock, handing it to the longest waiting writer or
    /// upgradable reader, if any.
    ///
    /// # Safety
    ///
    /// The caller holds the upgradable lock on `self` and gives it up, as for
    /// [`unlock_shared`](Self::unlock_shared).
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// // SAFETY: the upgradable lock is held.
    /// unsafe { raw.unlock_upgradable() };
    /// assert!(!raw.is_locked());
    /// ```
    #[inline]
    pub unsafe fn unlock_upgradable(&self) {
        self.pass_on_claim(UPGRADABLE + READER);
    }

    /// Turns the upgradable lock into the exclusive lock, waiting for the plain readers inside
    /// to leave (new readers wait meanwhile, as for a writer).
    ///
    /// # Safety
    ///
    /// The caller holds the upgradable lock; afterwards it holds the exclusive lock instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// // SAFETY: the upgradable lock is held.
    /// unsafe { raw.upgrade() };
    /// assert!(raw.is_locked_exclusive());
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    pub unsafe fn upgrade(&self) {
        if !self.claim_from_upgradable() {
            self.wait_for_readers(None);
        }
    }

    /// Turns the upgradable lock into the exclusive lock if no plain reader is inside; never
    /// blocks. Returns whether it did.
    ///
    /// # Safety
    ///
    /// The caller holds the upgradable lock; on `true` it holds the exclusive lock instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// raw.lock_shared();
    /// // SAFETY: the upgradable lock is held.
    /// assert!(!unsafe { raw.try_upgrade() });
    /// // SAFETY: the shared lock is held; then the upgradable one.
    /// unsafe { raw.unlock_shared() };
    /// assert!(unsafe { raw.try_upgrade() });
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    pub unsafe fn try_upgrade(&self) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & READERS_MASK != READER {
                return false;
            }
            // Acquire: pairs with the Release fetch_sub of the readers that left.
            match self.state.compare_exchange_weak(
                state,
                state - UPGRADABLE - READER + WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        if self.take_over(state - UPGRADABLE - READER + WRITER) {
            return true;
        }
        // A reader is inside through its shard: back to the upgradable lock.
        self.writer_to_upgradable();
        false
    }

    /// Turns the upgradable lock into the exclusive lock, giving up after `timeout` (the caller
    /// then still holds the upgradable lock). Returns whether it did.
    ///
    /// # Safety
    ///
    /// As [`try_upgrade`](Self::try_upgrade).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// raw.lock_shared();
    /// // SAFETY: the upgradable lock is held.
    /// assert!(!unsafe { raw.try_upgrade_for(Duration::from_millis(1)) });
    /// // SAFETY: the shared and the upgradable lock are held.
    /// unsafe {
    ///     raw.unlock_shared();
    ///     raw.unlock_upgradable();
    /// }
    /// ```
    pub unsafe fn try_upgrade_for(&self, timeout: Duration) -> bool {
        // SAFETY: forwarded to the caller.
        unsafe { self.try_upgrade_deadline(gosync_park::deadline_after(timeout)) }
    }

    /// Turns the upgradable lock into the exclusive lock, giving up at `deadline` (the caller
    /// then still holds the upgradable lock). Returns whether it did.
    ///
    /// # Safety
    ///
    /// As [`try_upgrade`](Self::try_upgrade).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// // SAFETY: the upgradable lock is held.
    /// assert!(unsafe { raw.try_upgrade_until(Instant::now()) });
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    pub unsafe fn try_upgrade_until(&self, deadline: Instant) -> bool {
        // SAFETY: forwarded to the caller.
        unsafe { self.try_upgrade_deadline(Some(deadline)) }
    }

    /// # Safety
    ///
    /// As [`try_upgrade`](Self::try_upgrade).
    unsafe fn try_upgrade_deadline(&self, deadline: Option<Instant>) -> bool {
        if self.claim_from_upgradable() || self.wait_for_readers(deadline) {
            return true;
        }
        self.writer_to_upgradable();
        false
    }

    /// With the upgradable lock held, swaps it for `WRITER`. Returns whether no reader was left
    /// inside (the exclusive lock is then held; otherwise the caller waits for readers).
    fn claim_from_upgradable(&self) -> bool {
        // Acquire: pairs with the Release fetch_sub of the readers that already left.
        let prev = self
            .state
            .fetch_add(WRITER.wrapping_sub(UPGRADABLE + READER), Ordering::Acquire);
        self.take_over(prev.wrapping_add(WRITER).wrapping_sub(UPGRADABLE + READER))
    }

    /// With `WRITER` held and no writer behind it needing it, turns it into the upgradable lock
    /// and lets in the readers that parked meanwhile (no writer can claim while `UPGRADABLE` is
    /// held, so counting them in is safe).
    fn writer_to_upgradable(&self) {
        // Release: pairs with the Acquire of the readers that now enter.
        let prev = self.state.fetch_add(
            (UPGRADABLE + READER).wrapping_sub(WRITER),
            Ordering::Release,
        );
        if prev & PARKED_READERS != 0 {
            self.wake_readers(TOKEN_HANDOFF);
        }
    }

    /// Turns the exclusive lock into the upgradable lock: readers may enter again, writers may
    /// not.
    ///
    /// # Safety
    ///
    /// The caller holds the exclusive lock; afterwards it holds the upgradable lock instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.downgrade_to_upgradable() };
    /// assert!(raw.try_lock_shared());
    /// // SAFETY: a shared and the upgradable lock are held.
    /// unsafe {
    ///     raw.unlock_shared();
    ///     raw.unlock_upgradable();
    /// }
    /// ```
    pub unsafe fn downgrade_to_upgradable(&self) {
        self.writer_to_upgradable();
    }

    /// Turns the upgradable lock into a plain shared lock, handing the upgradable slot to the
    /// longest waiting writer or upgradable reader, if any.
    ///
    /// # Safety
    ///
    /// The caller holds the upgradable lock; afterwards it holds a shared lock instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_upgradable();
    /// // SAFETY: the upgradable lock is held.
    /// unsafe { raw.downgrade_upgradable() };
    /// assert!(raw.try_lock_upgradable());
    /// // SAFETY: a shared and the upgradable lock are held.
    /// unsafe {
    ///     raw.unlock_shared();
    ///     raw.unlock_upgradable();
    /// }
    /// ```
    pub unsafe fn downgrade_upgradable(&self) {
        self.pass_on_claim(UPGRADABLE);
    }

    // ---------------------------------------------------------------------------------------
    // Observers
    // ---------------------------------------------------------------------------------------

    /// Whether any lock is held (or a writer has claimed it), at this instant. A snapshot for
    /// diagnostics and assertions, not for synchronisation.
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// assert!(!raw.is_locked());
    /// raw.lock_shared();
    /// assert!(raw.is_locked());
    /// // SAFETY: the shared lock is held.
    /// unsafe { raw.unlock_shared() };
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        // Relaxed: a snapshot, ordering nothing.
        self.state.load(Ordering::Relaxed) & (WRITER | UPGRADABLE | READERS_MASK) != 0
            || self.shards.readers() != 0
    }

    /// Whether a writer holds the lock or has claimed it (and waits for readers to leave), at
    /// this instant. A snapshot, as [`is_locked`](Self::is_locked).
    ///
    /// # Examples
    ///
    /// ```
    /// let raw = gosync_rwmutex::RawRwMutex::new();
    /// raw.lock_exclusive();
    /// assert!(raw.is_locked_exclusive());
    /// // SAFETY: the exclusive lock is held.
    /// unsafe { raw.unlock_exclusive() };
    /// ```
    #[inline]
    pub fn is_locked_exclusive(&self) -> bool {
        // Relaxed: a snapshot, ordering nothing.
        self.state.load(Ordering::Relaxed) & WRITER != 0
    }
}

/// Whether `deadline` has passed (`None` never does).
#[inline]
fn has_passed(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shards::{KEEP_SHARDED_READS, MAX_SHARDS};

    #[test]
    fn flag_bits_are_distinct_and_below_the_count() {
        let flags = [
            PARKED_READERS,
            PARKED_WRITERS,
            PARKED_DRAIN,
            WRITER,
            UPGRADABLE,
            SHARDED,
        ];
        let mut all = 0;
        for flag in flags {
            assert_eq!(flag.count_ones(), 1);
            assert_eq!(all & flag, 0);
            all |= flag;
            assert!(flag < READER);
        }
        assert_eq!(all | READERS_MASK, usize::MAX);
    }

    #[test]
    fn a_reader_backing_out_leaves_the_count_unchanged() {
        let raw = RawRwMutex::new();
        raw.lock_exclusive();
        assert!(!raw.try_lock_shared());
        assert_eq!(raw.state.load(Ordering::Relaxed), WRITER);
        // SAFETY: the exclusive lock is held.
        unsafe { raw.unlock_exclusive() };
        assert_eq!(raw.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn upgrade_and_downgrade_move_between_states() {
        let raw = RawRwMutex::new();
        raw.lock_upgradable();
        assert_eq!(raw.state.load(Ordering::Relaxed), UPGRADABLE + READER);
        // SAFETY: each call holds what it gives up, in sequence.
        unsafe {
            raw.upgrade();
            assert_eq!(raw.state.load(Ordering::Relaxed), WRITER);
            raw.downgrade_to_upgradable();
            assert_eq!(raw.state.load(Ordering::Relaxed), UPGRADABLE + READER);
            raw.downgrade_upgradable();
            assert_eq!(raw.state.load(Ordering::Relaxed), READER);
            raw.unlock_shared();
        }
        assert_eq!(raw.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn contended_guard_reads_shard_the_lock() {
        let raw = RawRwMutex::new();
        let state = || raw.state.load(Ordering::Relaxed);
        let first = raw.lock_read();
        assert_eq!((first, state()), (ReadSlot::WORD, READER));
        // Finds `first` inside: gives the lock its shards; is itself counted in the word.
        let second = raw.lock_read();
        assert_eq!((second, state()), (ReadSlot::WORD, SHARDED + 2 * READER));
        let third = raw.lock_read();
        assert!(third.shard_index().is_some());
        assert_eq!(state(), SHARDED + 2 * READER);
        // The raw shared lock keeps counting in the word.
        assert!(raw.try_lock_shared());
        assert_eq!(state(), SHARDED + 3 * READER);
        // SAFETY: each lock released here is held, and released once.
        unsafe {
            raw.unlock_shared();
            raw.unlock_read(first);
            raw.unlock_read(second);
        }
        assert_eq!(state(), SHARDED);
        assert!(raw.is_locked(), "the reader in its shard");
        assert!(!raw.try_lock_exclusive());
        assert_eq!(
            state(),
            SHARDED,
            "a failed try_lock_exclusive leaves no claim"
        );
        // SAFETY: `third` is held; then the slot it moved to is.
        unsafe {
            let third = raw.count_in_word(third);
            assert_eq!((third, state()), (ReadSlot::WORD, SHARDED + READER));
            raw.unlock_read(third);
        }
        assert!(!raw.is_locked());
        // A writer that finds the shards empty sends readers back to the word.
        assert!(raw.try_lock_exclusive());
        assert_eq!(state(), WRITER);
        // SAFETY: the exclusive lock is held.
        unsafe { raw.unlock_exclusive() };
        assert_eq!(state(), 0);
        let (first, second) = (raw.lock_read(), raw.lock_read());
        assert_eq!((first, second), (ReadSlot::WORD, ReadSlot::WORD));
        assert_eq!(state(), SHARDED + 2 * READER, "contended again");
        let third = raw.lock_read();
        assert!(third.shard_index().is_some());
        // SAFETY: the three read locks are held.
        unsafe {
            raw.unlock_read(first);
            raw.unlock_read(second);
            raw.unlock_read(third);
        }
        // Reads came through the shards often enough since the last writer looked: the next
        // writer keeps them there.
        for _ in 0..KEEP_SHARDED_READS * MAX_SHARDS {
            let slot = raw.lock_read();
            assert!(slot.shard_index().is_some());
            // SAFETY: the read lock was just taken.
            unsafe { raw.unlock_read(slot) };
        }
        assert!(raw.try_lock_exclusive());
        assert_eq!(state(), SHARDED + WRITER);
        // SAFETY: the exclusive lock is held.
        unsafe { raw.unlock_exclusive() };
        assert_eq!(state(), SHARDED);
        let slot = raw.lock_read();
        assert!(slot.shard_index().is_some());
        // SAFETY: the read lock was just taken.
        unsafe { raw.unlock_read(slot) };
    }

    #[test]
    #[should_panic(expected = "sync: too many readers")]
    fn reader_overflow_panics() {
        let raw = RawRwMutex::new();
        raw.state.store(READERS_OVERFLOW, Ordering::Relaxed);
        raw.lock_shared();
    }
}
