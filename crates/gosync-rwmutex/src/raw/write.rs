//! The write path: claiming the exclusive lock, giving it up, downgrading.

use std::time::{Duration, Instant};

use gosync_park::sync::Ordering;

use super::tentative::Tentative;
use super::{
    GiveUp, RawRwMutex, PARKED_READERS, READER, READERS_MASK, SHARDED, UPGRADABLE, WANTS_WRITE,
    WRITER,
};

impl RawRwMutex {
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
            self.lock_exclusive_slow(GiveUp::NEVER);
        }
    }

    #[inline]
    fn try_lock_exclusive_fast(&self) -> bool {
        // Acquire: pairs with the Release of the last release (reader, writer or upgradable).
        self.state
            .compare_exchange_weak(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the exclusive lock if nobody holds any lock; never blocks. The attempt holds no
    /// reader back: a `try_lock_shared` beside it fails only if it succeeds (Go's `TryLock`
    /// against `TryRLock`).
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
    #[must_use = "says whether the exclusive lock was taken"]
    #[inline]
    pub fn try_lock_exclusive(&self) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & SHARDED != 0 {
                // Readers may be inside through their shards: the claim stays tentative until
                // the shards are seen empty, so that readers are not sent away meanwhile.
                return self.try_claim_tentatively(Tentative::Write, state);
            }
            if state & (WRITER | UPGRADABLE | READERS_MASK) != 0 {
                return false;
            }
            // Acquire: as in `try_lock_exclusive_fast`. Without `SHARDED` no reader is inside
            // through a shard (see the notes at the top): the claim is the lock.
            match self.state.compare_exchange_weak(
                state,
                state | WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
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
    #[must_use = "says whether the exclusive lock was taken"]
    #[inline]
    pub fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
        self.lock_exclusive_until(GiveUp::at(gosync_park::deadline_after(timeout)))
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
    #[must_use = "says whether the exclusive lock was taken"]
    #[inline]
    pub fn try_lock_exclusive_until(&self, deadline: Instant) -> bool {
        self.lock_exclusive_until(GiveUp::at(Some(deadline)))
    }

    /// Takes the exclusive lock, waiting until `give_up` comes. Returns whether it did. When it
    /// has come already (a zero timeout, a past deadline), this is `try_lock_exclusive`, which
    /// holds no reader back: a claim that then waits for readers for no time would.
    #[inline]
    pub(crate) fn lock_exclusive_until(&self, give_up: GiveUp<'_>) -> bool {
        self.try_lock_exclusive_fast()
            || if give_up.has_come() {
                self.try_lock_exclusive()
            } else {
                self.lock_exclusive_slow(give_up)
            }
    }

    #[cold]
    fn lock_exclusive_slow(&self, give_up: GiveUp<'_>) -> bool {
        if !self.acquire_claim(WANTS_WRITE, give_up) {
            return false;
        }
        if self.wait_for_readers(give_up) {
            return true;
        }
        // Gave up while readers were inside: give the claim back as an unlock would, letting in
        // the readers held back meanwhile.
        self.release_writer_slow(false);
        false
    }

    /// Releases the exclusive lock (Go's `Unlock`). Readers that parked while it was held go in
    /// first; then the longest-waiting writer (or upgradable reader), if any, is handed the lock.
    ///
    /// # Safety
    ///
    /// The caller holds the exclusive lock on `self` and gives it up: it must not release it
    /// again, and must not touch data the lock protects until it locks again.
    ///
    /// # Panics
    ///
    /// If nobody holds the exclusive lock, with Go's fatal error `sync: Unlock of unlocked
    /// RWMutex`, at the caller's line; the lock is left as it was. Not caught, as in Go: a
    /// release while another thread holds the exclusive lock or has claimed it (a writer
    /// waiting for the readers inside to leave, the caller's own shared lock among them), which
    /// lets that writer's claim go and breaks the lock.
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
    #[track_caller]
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
    /// # Panics
    ///
    /// As [`unlock_exclusive`](Self::unlock_exclusive), if nobody holds the exclusive lock.
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
    #[track_caller]
    pub unsafe fn downgrade(&self) {
        self.release_writer_slow(true);
    }

    /// Gives up `WRITER` the slow way: parked readers first, then the claim to the next
    /// writer-queue waiter or nobody; when it went to nobody or to an upgradable reader, the
    /// readers that parked meanwhile or are on their way (`admit_readers_after_release`). With
    /// `downgrade`, the caller stays as a reader.
    #[cold]
    #[track_caller]
    fn release_writer_slow(&self, downgrade: bool) {
        // Relaxed: `WRITER` is this thread's own bit (or, misused, nobody's), and the other
        // bits are re-checked where they are used.
        let state = self.state.load(Ordering::Relaxed);
        if state & WRITER == 0 {
            panic!("sync: Unlock of unlocked RWMutex");
        }
        // Readers that parked behind this writer go in before the next writer (Go's rule, which
        // keeps readers from starving): counted in while `WRITER` still shuts out everyone else.
        // Relaxed: the bit is re-checked under the queue lock.
        if state & PARKED_READERS != 0 {
            self.let_in_parked_readers();
        }
        if downgrade {
            // Relaxed: this thread already holds the lock; the count only matters to the next
            // writer, which sees it by coherence after it gets `WRITER` below.
            self.state.fetch_add(READER, Ordering::Relaxed);
        }
        if !self.pass_on_claim(WRITER) {
            self.admit_readers_after_release();
        }
    }
}
