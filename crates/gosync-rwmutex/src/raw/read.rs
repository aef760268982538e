//! The read path: shared locks counted in the word or in a shard, and readers waiting for a
//! writer to go.

use std::cell::Cell;
use std::time::{Duration, Instant};

use gosync_park::sync::{fence, Ordering};
use gosync_park::{
    park_while, unpark_filter, unpark_one, FilterOp, ParkResult, ParkedBits, SpinWait,
};

use crate::shards::{ReadSlot, Shard};

use super::{
    taken_before, GiveUp, RawRwMutex, DRAIN_KEY, HOLDS_BACK_READERS, PARKED_DRAIN, PARKED_READERS,
    QUEUED_WRITER, READER, READERS_MASK, READERS_OVERFLOW, READER_KEY, SHARDED, TOKEN_HANDOFF,
    TOKEN_RETRY, TRYING, WRITER,
};

impl RawRwMutex {
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
    #[track_caller]
    #[inline]
    pub fn lock_shared(&self) {
        self.read_until(GiveUp::NEVER, false)
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
    #[track_caller]
    #[must_use = "says whether the shared lock was taken"]
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
    #[track_caller]
    #[must_use = "says whether the shared lock was taken"]
    #[inline]
    pub fn try_lock_shared_for(&self, timeout: Duration) -> bool {
        self.read_until(GiveUp::at(gosync_park::deadline_after(timeout)), false)
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
    #[track_caller]
    #[must_use = "says whether the shared lock was taken"]
    #[inline]
    pub fn try_lock_shared_until(&self, deadline: Instant) -> bool {
        self.read_until(GiveUp::at(Some(deadline)), false).is_some()
    }

    /// Releases a shared lock (Go's `RUnlock`).
    ///
    /// # Safety
    ///
    /// The caller holds a shared lock on `self` (taken by `lock_shared`, a `try_lock_shared*`
    /// that returned `true`, or a downgrade), and gives it up: it must not release it again, and
    /// must not touch data the lock protects until it locks again.
    ///
    /// # Panics
    ///
    /// If no shared lock taken through the raw calls is held at all, with Go's fatal error
    /// `sync: RUnlock of unlocked RWMutex`, at the caller's line; the lock is left as it was.
    /// Not caught, as Go's `RUnlock` does not catch them either: a release of a shared lock that
    /// another thread holds (the count cannot tell whose it is), and, while a writer holds or
    /// claims the lock, a release that meets the momentary count of a reader that found the
    /// writer and is backing out (the count is then short by one for good, and later readers
    /// panic with `sync: too many readers`; Go's count likewise includes the readers waiting
    /// for the writer).
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
    #[track_caller]
    pub unsafe fn unlock_shared(&self) {
        // A compare-and-swap, not the guards' `fetch_sub` (`release_reader`): a release with no
        // reader counted must be caught before it changes the word, since a count wrapped round
        // even for an instant is acted on by other threads (a reader sees it full, a releaser
        // sees zero). Raw locks count their readers in the word, never in a shard.
        // Relaxed: the CAS re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & READERS_MASK == 0 {
                panic!("sync: RUnlock of unlocked RWMutex");
            }
            // Release: as `release_reader`'s.
            match self.state.compare_exchange_weak(
                state,
                state - READER,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        self.reader_left(state);
    }

    /// Takes a shared lock for a guard, which keeps the returned slot to release it with.
    #[track_caller]
    #[inline]
    pub(crate) fn lock_read(&self) -> ReadSlot {
        self.read_until(GiveUp::NEVER, true)
            .expect("a read lock without a deadline is always taken")
    }

    /// Takes a shared lock for a guard if no writer holds or has claimed the lock.
    #[track_caller]
    #[inline]
    pub(crate) fn try_lock_read(&self) -> Option<ReadSlot> {
        self.try_read(true)
    }

    /// Takes a shared lock for a guard, waiting until `give_up` comes.
    #[track_caller]
    #[inline]
    pub(crate) fn try_lock_read_until(&self, give_up: GiveUp<'_>) -> Option<ReadSlot> {
        self.read_until(give_up, true)
    }

    /// Takes a shared lock (counted as [`try_read`](Self::try_read) does), waiting until
    /// `give_up` comes.
    #[track_caller]
    #[inline]
    pub(super) fn read_until(&self, give_up: GiveUp<'_>, shardable: bool) -> Option<ReadSlot> {
        self.try_read(shardable)
            .or_else(|| self.lock_shared_slow(give_up, shardable))
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
    #[track_caller]
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
    #[track_caller]
    #[inline]
    fn try_read(&self, shardable: bool) -> Option<ReadSlot> {
        // Relaxed: only picks the counter; the sharded attempt checks `SHARDED` again after its
        // fence.
        if shardable && self.state.load(Ordering::Relaxed) & SHARDED != 0 {
            if let Some((index, shard)) = self.shards.home() {
                match self.try_read_shard(index, shard) {
                    Ok(slot) => return Some(slot),
                    Err(state) if state & HOLDS_BACK_READERS != 0 => return None,
                    // A writer sent readers back to the word meanwhile, a `try_write` or
                    // `try_upgrade` is deciding (see the notes at the top), or the shard is full.
                    Err(_) => {}
                }
            }
        }
        // Acquire: pairs with the Release of the last writer's release, whose writes this
        // reader must see.
        let prev = self.state.fetch_add(READER, Ordering::Acquire);
        if prev & (HOLDS_BACK_READERS | READERS_OVERFLOW) != 0 {
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
    /// (with `HOLDS_BACK_READERS` or `TRYING` set, `SHARDED` clear, or none of them if the shard
    /// was full).
    #[inline]
    fn try_read_shard(&self, index: usize, shard: &Shard) -> Result<ReadSlot, usize> {
        let roomy = shard.enter();
        model_fence();
        // SeqCst: with the SeqCst increment, pairs with the fence after a writer sets `WRITER`
        // (see the notes at the top). Also an acquire: pairs with the Release of the last
        // writer's release, whose writes this reader must see.
        let state = self.state.load(Ordering::SeqCst);
        if roomy && state & (HOLDS_BACK_READERS | TRYING | SHARDED) == SHARDED {
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
        model_fence();
        // SeqCst: with the SeqCst decrement, pairs with the fence after a writer sets
        // `PARKED_DRAIN` (see the notes at the top); the wake-up goes through the drain queue's
        // lock.
        if self.state.load(Ordering::SeqCst) & PARKED_DRAIN != 0 {
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
        self.reader_left(prev);
    }

    /// After a reader left the word's count (`prev`: the word before): wakes the claiming
    /// writer if this was the last reader it waited for.
    #[inline]
    fn reader_left(&self, prev: usize) {
        if prev & (READERS_MASK | PARKED_DRAIN) == READER | PARKED_DRAIN {
            self.wake_drainer();
        }
    }

    /// Undoes a reader increment that found the lock claimed by a writer (or the count full).
    #[track_caller]
    #[cold]
    fn back_out(&self, prev: usize) {
        self.release_reader();
        if prev & READERS_OVERFLOW != 0 {
            panic!("sync: too many readers");
        }
    }

    /// Waits for a shared lock (counted as `try_read(shardable)` would), giving up at
    /// `deadline`.
    #[track_caller]
    #[cold]
    fn lock_shared_slow(&self, give_up: GiveUp<'_>, shardable: bool) -> Option<ReadSlot> {
        let mut spin = SpinWait::new();
        // The next writer ticket when this reader first found itself held back: the writers it
        // waits for are those before it (see `RawRwMutex::writer_tickets`). Taken once: the
        // writers that queue later came after this call.
        let mut first_ticket_after = None;
        loop {
            // Relaxed: only a hint for when to retry; the retry is Acquire.
            let state = self.state.load(Ordering::Relaxed);
            if state & HOLDS_BACK_READERS == 0 {
                if let Some(slot) = self.try_read(shardable) {
                    return Some(slot);
                }
                continue;
            }
            if give_up.has_come() {
                return None;
            }
            if spin.spin() {
                continue;
            }
            let ticket_after = *first_ticket_after.get_or_insert_with(|| {
                // Acquire: pairs with the Release fence of the writer whose `QUEUED_WRITER`
                // (or a later change of the word) the load above saw, so that the ticket read
                // next comes after that writer's.
                fence(Ordering::Acquire);
                // Relaxed: ordered by the fence above.
                self.writer_tickets.load(Ordering::Relaxed)
            });
            // Set when this thread counted itself in under the queue's lock instead of parking.
            let entered = Cell::new(false);
            let busy = |state: usize| {
                if state & HOLDS_BACK_READERS == 0 {
                    return false;
                }
                // Relaxed: raised only under this queue's lock, which we hold.
                let admitted_through = self.readers_admitted_through.load(Ordering::Relaxed);
                if !taken_before(admitted_through, ticket_after) && self.count_in_unless_writer(1) {
                    // A give-up let in the readers up to here while this one was on its way
                    // to park: no writer it waits for is queued.
                    entered.set(true);
                    return false;
                }
                true
            };
            match park_while(
                &self.state,
                self.key(READER_KEY),
                PARKED_READERS,
                busy,
                give_up.park_options(ticket_after),
            ) {
                // The releasing writer counted this thread in the word: it is a reader now.
                ParkResult::Unparked(TOKEN_HANDOFF) => return Some(ReadSlot::WORD),
                ParkResult::Invalid if entered.get() => return Some(ReadSlot::WORD),
                ParkResult::TimedOut | ParkResult::Cancelled => return None,
                ParkResult::Unparked(_) | ParkResult::Invalid => spin.reset(),
            }
        }
    }

    /// Unparks every parked reader, counted in as a reader (the caller holds `WRITER`, so no
    /// other writer can be inside): Go's rule that readers parked while a writer held the lock
    /// go in before the next writer.
    pub(super) fn let_in_parked_readers(&self) {
        unpark_filter(
            self.key(READER_KEY),
            |_| FilterOp::Unpark,
            |result| {
                if result.unparked > 0 {
                    // Relaxed: the new readers are published by their wake-up; the next writer
                    // sees the count by coherence of this one word.
                    self.state
                        .fetch_add(result.unparked * READER, Ordering::Relaxed);
                }
                self.state.clear_parked(PARKED_READERS);
                TOKEN_HANDOFF
            },
        );
    }

    /// Lets in the parked readers whose ticket (the next writer ticket when they parked) is not
    /// after `bound` (`admission_bound`): no writer they wait for is still queued. They are
    /// counted in the word, unless a writer holds or has claimed the lock: then they stay
    /// parked for what ends that writer's hold (its release, or a failed upgrade or downgrade,
    /// which run this admission again), or, if the claim lands between the look and the
    /// count-in, they try again. Readers about to park with such a ticket go in instead
    /// (`readers_admitted_through`). For a caller that holds nothing, a shared lock (a writer
    /// that downgraded) or the upgradable lock.
    pub(super) fn admit_readers_up_to(&self, bound: usize) {
        unpark_filter(
            self.key(READER_KEY),
            |ticket_after| {
                // Relaxed: a hint; the count-in below decides.
                let writer_holds = self.state.load(Ordering::Relaxed) & WRITER != 0;
                if writer_holds || taken_before(bound, ticket_after) {
                    // A writer inside lets them in on its release; or a writer it waits for
                    // is still queued.
                    FilterOp::Skip
                } else {
                    FilterOp::Unpark
                }
            },
            |result| {
                // Relaxed: read and raised only under this queue's lock, which we hold.
                let through = self.readers_admitted_through.load(Ordering::Relaxed);
                if taken_before(through, bound) {
                    self.readers_admitted_through
                        .store(bound, Ordering::Relaxed);
                }
                if !result.have_more {
                    self.state.clear_parked(PARKED_READERS);
                }
                if result.unparked > 0 && self.count_in_unless_writer(result.unparked) {
                    TOKEN_HANDOFF
                } else {
                    TOKEN_RETRY
                }
            },
        );
    }

    /// After `WRITER` went to nobody or became the upgradable lock: lets in the readers that
    /// parked behind it and no queued writer came before (`admit_readers_up_to`), also those on
    /// their way to park behind a writer that queued after them. Looks at the queues only when
    /// a reader is parked or a writer queued: otherwise the readers on their way find nothing
    /// holding them back (or a writer that queues while they are on their way, which may go
    /// first: the two calls overlap).
    pub(super) fn admit_readers_after_release(&self) {
        // Relaxed: this thread's own change that cleared `WRITER` comes before this load in the
        // word's modification order, and a reader parks only by a compare-and-swap of the whole
        // word (`set_parked_while`): a `PARKED_READERS` this load misses was set after that
        // change, so what holds that reader back is a new claim (whose release lets it in) or
        // a writer really queued (whose turn or give-up does).
        if self.state.load(Ordering::Relaxed) & (PARKED_READERS | QUEUED_WRITER) != 0 {
            let bound = self.admission_bound(|_| {});
            self.admit_readers_up_to(bound);
        }
    }

    /// Adds `readers` to the word's count unless `WRITER` is set; returns whether it did.
    fn count_in_unless_writer(&self, readers: usize) -> bool {
        // Relaxed: the exchange below re-reads it.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WRITER != 0 {
                return false;
            }
            if state & READERS_OVERFLOW != 0 {
                return false; // they retry, and the one that overflows panics as usual
            }
            // Acquire: pairs with the Release of the last writer's release, whose writes the
            // readers let in must see (their wake-up passes them on from this thread).
            match self.state.compare_exchange_weak(
                state,
                state + readers * READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
    }

    #[cold]
    fn wake_drainer(&self) {
        unpark_one(self.key(DRAIN_KEY), |result| {
            if !result.have_more {
                self.state.clear_parked(PARKED_DRAIN);
            }
            TOKEN_RETRY
        });
    }
}

/// Between a reader's `SeqCst` change of its shard and its `SeqCst` look at the lock word: a
/// `SeqCst` fence under loom only. The two `SeqCst` accesses already order the reader's side of
/// the store-buffering pattern against the writer's fence (see the notes at the top), and cost
/// no fence of their own on x86-64; loom, which treats `SeqCst` accesses as `AcqRel`, needs the
/// fence to see that order.
#[inline]
fn model_fence() {
    if gosync_park::model::IS_LOOM {
        fence(Ordering::SeqCst);
    }
}
