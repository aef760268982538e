//! [`RawRwMutex`]: the lock word, its state machine and its wait queues.
//!
//! This file holds the state word and what every path shares; each path has its own file:
//! `read.rs` (shared locks, in the word or a shard), `write.rs` (the exclusive lock and its
//! release), `claim.rs` (the writer queue that writers and upgradable readers take turns
//! through), `drain.rs` (a writer waiting for the readers inside to leave), `tentative.rs`
//! (`try_write` and `try_upgrade` on a sharded lock) and `upgrade.rs`.
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
//! Writer tickets (`writer_tickets`): a writer takes one (`Relaxed`) and runs a `Release` fence
//! before it parks, which sets `QUEUED_WRITER` by a read-modify-write of the word (or finds it
//! set by an earlier writer, whose own fence came before); a reader that saw `QUEUED_WRITER`
//! runs an `Acquire` fence before it reads the next ticket, so its ticket comes after every
//! writer whose mark it saw, and it is let in before a writer only when that writer came after.
//!
//! Bits that only say who is parked (`PARKED_*`, `QUEUED_WRITER`) are set and cleared under the
//! lock of the queue they describe, so they need no ordering of their own: `Relaxed`. Readers
//! that `QUEUED_WRITER` holds back wait for it to clear; an upgradable reader holds the lock
//! meanwhile, so no data is handed over by it.
//!
//! Readers counted in shards (see `shards.rs`) meet writers without a read-modify-write on a
//! common word, so each side changes its own word, then loads the other's (the store-buffering
//! pattern). A writer runs a `SeqCst` fence in between. A reader, whose path must stay cheap,
//! makes its shard change and its load of the state word `SeqCst` accesses instead of
//! fencing (on x86-64 a locked instruction and a plain load, where a fence is an `mfence`).
//! That orders the two sides just as two fences would, in the single total order `S` of
//! `SeqCst` operations: the reader's change precedes its load in `S`; if that load reads a value
//! older than the writer's change, it precedes the writer's fence, which follows the change; and
//! if the writer's load of the shard reads a value older than the reader's change, the fence
//! precedes that change (C++20 [atomics.order] p4). Both at once would be a cycle in `S`. Loom
//! treats `SeqCst` accesses as `AcqRel`, so under loom the reader fences as well (`read.rs`).
//!
//! - a reader increments its shard, then loads the state word: if `SHARDED` is set and
//!   `WRITER` clear the reader is in, otherwise it backs out (and fails, waits, or counts itself
//!   in the word instead);
//! - a writer sets `WRITER`, fences, and loads the shards: so either the reader sees `WRITER`
//!   or the writer sees the reader's increment (and waits for it to leave);
//! - a reader leaving decrements its shard (also a release: pairs with the writer's `Acquire`
//!   loads of the shards), then loads the state word for `PARKED_DRAIN`; a writer about to
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
//! after its own claim, which also comes after that value: by `S`, that writer saw the
//! reader's increment, so it cleared `SHARDED` only after the reader had left. Only locks whose
//! readers contend pay for a writer's fence and its look at the shards.
//!
//! `try_write` and `try_upgrade` on a sharded lock must not send readers away while they only
//! try (Go's `TryRLock` fails only for a writer that holds the lock or waits for it), yet they
//! cannot count the shards' readers in one atomic step. So their claim stays tentative until it
//! is decided:
//!
//! 1. a compare-and-swap sets `TRYING_WRITE` (`TRYING_UPGRADE`) if the word shows no lock held
//!    (only the caller's upgradable lock) and no other tentative claim of that kind;
//! 2. a `SeqCst` fence, then a look at the shards: a reader inside makes the claimer back out,
//!    clearing its bit, having sent nobody away;
//! 3. otherwise a compare-and-swap (`Acquire`) swaps the bit for `WRITER` if the word still shows
//!    no other lock or claim; if it does not, the claimer backs out.
//!
//! A reader whose look at the word (after its increment) shows the bit does not trust the shards:
//! it leaves its shard and counts itself in the word, where it either comes before step 3, which
//! then fails, or sees the `WRITER` step 3 set and backs out. A reader whose look comes before step
//! 1 in the word's modification order precedes the claimer's fence in `S` (or it would have seen
//! step 1), so step 2 sees its increment, or the decrement it left with (a release, read by the
//! look's `Acquire`). A reader whose look comes after step 3 sees `WRITER`. So no reader is inside
//! once step 3 succeeds, and no reader was sent away by a claim that failed. Only the claimer
//! clears its bit; a second `try_write` that finds the bit set fails, as Go's `TryLock` fails on
//! the writers' mutex that another `TryLock` holds for an instant. For the argument about `SHARDED`
//! above, a tentative claim counts from step 1.

use std::fmt;
use std::time::Instant;

use gosync_context::Context;
use gosync_park::sync::{AtomicUsize, Ordering};
use gosync_park::{Cancellation, ParkOptions};
// Unpark tokens, gosync-park's shared pair: `TOKEN_RETRY` (a plain wake-up) says try again;
// `TOKEN_HANDOFF` says the releaser gave the waiter what it wanted, so it holds the lock (a writer
// still waits for the readers inside to leave).
use gosync_park::{TOKEN_HANDOFF, TOKEN_NORMAL as TOKEN_RETRY};

use crate::shards::ReaderShards;

mod claim;
mod ctx;
mod drain;
mod read;
mod tentative;
mod upgrade;
mod write;

/// Readers are parked on the reader key, waiting for `WRITER` or `QUEUED_WRITER` to clear.
const PARKED_READERS: usize = 1 << 0;
/// Writers or upgradable readers are parked on the writer key. Implies `WRITER | UPGRADABLE`.
const PARKED_WRITERS: usize = 1 << 1;
/// The owner of `WRITER` is parked on the drain key, waiting for the readers to leave.
const PARKED_DRAIN: usize = 1 << 2;
/// A writer holds the lock, or has claimed it and waits for the readers inside to leave.
const WRITER: usize = 1 << 3;
/// An upgradable reader holds the lock (and is also counted as one reader).
const UPGRADABLE: usize = 1 << 4;
/// Guards' readers are counted in the lock's shards rather than in this word. Set by a reader
/// that finds another reader inside (which allocates the shards the first time); cleared by a
/// writer that finds the shards empty and rarely entered since the previous writer looked, so
/// that a lock written about as often as it is read counts in the word, and only read-mostly
/// locks pay a writer's look at the shards.
const SHARDED: usize = 1 << 5;
/// A writer (not an upgradable reader) is parked on the writer key, behind the holder of
/// `WRITER` or `UPGRADABLE`. New readers wait while it is set: Go's writer preference, which
/// `WRITER` alone would give up while an upgradable reader holds the lock. Set and cleared with
/// `PARKED_WRITERS`, under the writer queue's lock.
const QUEUED_WRITER: usize = 1 << 6;
/// A `try_write` on a sharded lock is deciding: a tentative claim that holds nobody back.
/// Readers that see it count themselves in the word, where the claim's final
/// compare-and-swap sees them (see the notes at the top).
const TRYING_WRITE: usize = 1 << 7;
/// As `TRYING_WRITE`, for the upgradable reader's `try_upgrade`.
const TRYING_UPGRADE: usize = 1 << 8;
/// What sends new readers away: a writer holding or claiming the lock, or queued for it.
const HOLDS_BACK_READERS: usize = WRITER | QUEUED_WRITER;
/// What sends a reader from its shard to the word: a tentative claim deciding.
const TRYING: usize = TRYING_WRITE | TRYING_UPGRADE;
/// One reader: the bits from here up count the readers inside (plus, for an instant, readers
/// that saw `WRITER` after their increment and are backing out).
const READER: usize = 1 << 9;
/// The reader count.
const READERS_MASK: usize = !(READER - 1);
/// The top bit of the count: a reader that sees it set backs out and panics, long before the
/// count could wrap into the flag bits.
const READERS_OVERFLOW: usize = 1 << (usize::BITS - 1);

/// Queue keys, as offsets from the address of the state word.
const READER_KEY: usize = 0;
const WRITER_KEY: usize = 1;
const DRAIN_KEY: usize = 2;

/// Park tokens on the writer key: what the waiter wants (the low bit). A writer's token also
/// carries its ticket (the other bits; see `RawRwMutex::writer_tickets`).
const WANTS_WRITE: usize = 0;
const WANTS_UPGRADABLE: usize = 1;
/// The bit of a writer-key token that says what the waiter wants.
const WANTS_MASK: usize = 1;
/// Tickets count up by this, keeping the low bit of a token for `WANTS_MASK`.
const TICKET_STEP: usize = 2;

/// Whether ticket `a` was taken before ticket `b`. Tickets wrap: this is right while the two
/// were taken fewer than `usize::MAX / 4` parks of writers apart: 2^62 on 64-bit targets. On a
/// 32-bit one, 2^30: a reader parked through that many writer parks, or arriving that many
/// writer parks after the last admission (`readers_admitted_through`), could be let in ahead of
/// a queued writer (never while a writer holds the lock).
#[inline]
fn taken_before(a: usize, b: usize) -> bool {
    (a.wrapping_sub(b) as isize) < 0
}

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
/// `unsafe`, with the contract that the caller holds what it releases. Every waiting acquire
/// (`lock_shared`, `lock_exclusive`, `lock_upgradable`, `upgrade`) comes with `try_`, `_for`,
/// `_until` and `_ctx` forms ([`lock_shared_ctx`](Self::lock_shared_ctx) and the like, as
/// `gosync_mutex::RawMutex::lock_ctx`), with or without the `lock_api` feature.
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
/// | `QUEUED_WRITER` | a writer is parked on the writer key: new readers wait |
/// | `TRYING_WRITE`, `TRYING_UPGRADE` | a `try_write` / `try_upgrade` on a sharded lock is deciding |
/// | the rest | the number of readers counted here (an upgradable reader counts as one) |
///
/// # Cost of the read path
///
/// `lock_shared` is one `fetch_add` on the state word and a test of its old value (as Go's
/// `readerCount.Add`); a reader whose increment shows a writer's claim undoes it and waits.
/// `unlock_shared` is a compare-and-swap that first checks that a reader is counted (a release
/// of an unheld shared lock panics, as Go's `RUnlock` is fatal, before it changes the word), so
/// raw readers contending on the word may retry it; the guards of `RwMutex` release with one
/// `fetch_sub`, as they cannot release a lock they do not hold.
///
/// That line is still shared, and readers on different cores take turns owning it. So the
/// guards of [`RwMutex`](crate::RwMutex), which can remember where their reader was counted, count
/// it in a per-thread shard instead while readers contend: each shard is a counter on a cache line
/// of its own, allocated with the lock's first contended read (one per core, at most 64) and freed
/// with the lock. A sharded read is an increment of the thread's own shard and a load of the state
/// word (both `SeqCst`, and no fence); a writer then checks every shard after claiming, and if few
/// reads came between it and the previous writer, sends readers back to the word until they contend
/// again. The raw `lock_shared`/`unlock_shared` here have nowhere to remember a shard and always
/// count in the word.
///
/// # Differences from Go
///
/// Go's `RWMutex` is a `Mutex` for writers, a reader count and two semaphores. Here one word
/// holds all of it, and the waits go through the park layer's queues, keyed by the word's
/// address: one queue for readers, one for writers and upgradable readers (FIFO, the lock is
/// handed to the longest waiter), one for the writer waiting for readers to leave. The
/// behaviour is Go's: once a writer has claimed the lock, new readers wait; readers parked while
/// a writer held the lock are let in before the next writer; writers hand over in arrival order.
/// Upgradable readers and timeouts are additions; with timeouts, a reader still waits only for
/// the writers blocked when it came: when one of them gives up, the readers that no writer
/// still queued came before go in (writer tickets, taken when a writer parks).
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
    /// The next writer ticket. A writer takes one each time it parks on the writer key, under
    /// the queue's lock (its token carries it), and a reader that parks, held back, notes the
    /// next one as its own token: the writers it must let go first are those whose tickets are
    /// before it. When a writer gives up (or a release or failed upgrade leaves a writer
    /// queued), readers whose writers have all left the queue are let in although later
    /// writers are still queued (`admission_bound`, `admit_readers_up_to`):
    /// Go's `RLock` waits for the writers blocked in `Lock` when it was called, not for every
    /// writer that queues after it. Only the waiting paths touch it.
    writer_tickets: AtomicUsize,
    /// The latest `admission_bound` that readers were let in up to (by a writer's give-up or
    /// release, or a failed upgrade), raised under the reader queue's lock: a reader whose
    /// ticket is not after it has no queued writer ahead of it, so it goes in instead of
    /// parking (unless a writer holds the lock). It covers the readers that were about to park
    /// when the admission looked at the reader queue.
    readers_admitted_through: AtomicUsize,
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

    gosync_park::const_unless_loom! {
        /// An unlocked raw lock.
        ///
        /// # Examples
        ///
        /// ```
        /// let raw = gosync_rwmutex::RawRwMutex::new();
        /// assert!(!raw.is_locked());
        /// ```
        #[inline]
        #[must_use]
        pub const fn new() -> Self {
            Self {
                state: AtomicUsize::new(0),
                shards: ReaderShards::new(),
                writer_tickets: AtomicUsize::new(0),
                readers_admitted_through: AtomicUsize::new(0),
            }
        }
    }

    #[inline]
    fn key(&self, offset: usize) -> usize {
        &self.state as *const AtomicUsize as usize + offset
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

    /// Whether a writer is queued (parked on the writer key), holding new readers back: how a
    /// test waits for that point of a race. Only under loom and with the `test-hooks` feature
    /// (see `gosync_park::model`); not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub fn has_queued_writer(&self) -> bool {
        // Relaxed: a snapshot, ordering nothing.
        self.state.load(Ordering::Relaxed) & QUEUED_WRITER != 0
    }

    /// How many writers (not upgradable readers) are parked on the writer key: how a test
    /// waits for a second writer to queue behind the first. Only under loom and with the
    /// `test-hooks` feature; not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn queued_writers(&self) -> usize {
        let mut writers = 0;
        gosync_park::unpark_filter(
            self.key(WRITER_KEY),
            |token| {
                writers += usize::from(token & WANTS_MASK == WANTS_WRITE);
                gosync_park::FilterOp::Skip
            },
            |_| TOKEN_RETRY,
        );
        writers
    }

    /// Whether a reader sleeps, held back: how a test makes sure a reader's wait is under way.
    /// Only under loom and with the `test-hooks` feature; not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn has_parked_readers(&self) -> bool {
        // Relaxed: a snapshot, ordering nothing.
        self.state.load(Ordering::Relaxed) & PARKED_READERS != 0
    }

    /// Whether a thread sleeps in a wait for the lock (a reader, a writer or an upgradable
    /// reader, or a writer waiting for readers to leave): how a test makes sure a wait it is
    /// about to cancel is under way. Only under loom and with the `test-hooks` feature; not
    /// part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn has_sleepers(&self) -> bool {
        // Relaxed: a snapshot, ordering nothing.
        self.state.load(Ordering::Relaxed) & (PARKED_READERS | PARKED_WRITERS | PARKED_DRAIN) != 0
    }
}

/// When a wait gives up: at a deadline, when a context is done, or never.
#[derive(Clone, Copy)]
pub(crate) struct GiveUp<'a> {
    deadline: Option<Instant>,
    ctx: Option<&'a Context>,
}

impl<'a> GiveUp<'a> {
    /// Waits for as long as it takes.
    pub(crate) const NEVER: GiveUp<'static> = GiveUp {
        deadline: None,
        ctx: None,
    };

    /// Gives up at `deadline` (`None`: never).
    #[inline]
    pub(crate) fn at(deadline: Option<Instant>) -> Self {
        Self {
            deadline,
            ctx: None,
        }
    }

    /// Gives up when `ctx` is done (cancelled, or its deadline passed).
    #[inline]
    pub(crate) fn with(ctx: &'a Context) -> Self {
        Self {
            deadline: None,
            ctx: Some(ctx),
        }
    }

    /// Whether the waiter must stop trying now.
    #[inline]
    fn has_come(self) -> bool {
        self.deadline.is_some_and(gosync_park::deadline_passed)
            || self.ctx.is_some_and(Context::is_done)
    }

    /// How to park: until the deadline, or until the context is done.
    #[inline]
    fn park_options(self, token: usize) -> ParkOptions<'a> {
        ParkOptions {
            token,
            deadline: self.deadline,
            cancel: self.ctx.map(|ctx| ctx as &dyn Cancellation),
            ..ParkOptions::default()
        }
    }
}

#[cfg(test)]
mod tests;
