//! Upgradable reads: taking, upgrading, downgrading.

use std::time::{Duration, Instant};

use gosync_park::sync::Ordering;

use super::tentative::Tentative;
use super::{
    GiveUp, RawRwMutex, READER, READERS_MASK, READERS_OVERFLOW, SHARDED, UPGRADABLE,
    WANTS_UPGRADABLE, WRITER,
};

impl RawRwMutex {
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
    #[track_caller]
    #[inline]
    pub fn lock_upgradable(&self) {
        if !self.try_lock_upgradable() {
            self.acquire_claim(WANTS_UPGRADABLE, GiveUp::NEVER);
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
    #[track_caller]
    #[must_use = "says whether the upgradable lock was taken"]
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
    #[track_caller]
    #[must_use = "says whether the upgradable lock was taken"]
    #[inline]
    pub fn try_lock_upgradable_for(&self, timeout: Duration) -> bool {
        self.lock_upgradable_until(GiveUp::at(gosync_park::deadline_after(timeout)))
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
    #[track_caller]
    #[must_use = "says whether the upgradable lock was taken"]
    #[inline]
    pub fn try_lock_upgradable_until(&self, deadline: Instant) -> bool {
        self.lock_upgradable_until(GiveUp::at(Some(deadline)))
    }

    /// Takes an upgradable shared lock, waiting until `give_up` comes. Returns whether it did.
    #[track_caller]
    #[inline]
    pub(crate) fn lock_upgradable_until(&self, give_up: GiveUp<'_>) -> bool {
        self.try_lock_upgradable() || self.acquire_claim(WANTS_UPGRADABLE, give_up)
    }

    /// Releases an upgradable shared lock, handing it to the longest waiting writer or
    /// upgradable reader, if any.
    ///
    /// # Safety
    ///
    /// The caller holds the upgradable lock on `self` and gives it up, as for
    /// [`unlock_shared`](Self::unlock_shared).
    ///
    /// # Panics
    ///
    /// If nobody holds the upgradable lock, with `sync: release of a RwMutex not locked
    /// upgradable`, at the caller's line; the lock is left as it was.
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
    #[track_caller]
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
            self.wait_for_readers(GiveUp::NEVER);
        }
    }

    /// Turns the upgradable lock into the exclusive lock if no plain reader is inside; never
    /// blocks. Returns whether it did. As for [`try_lock_exclusive`](Self::try_lock_exclusive),
    /// the attempt holds no reader back.
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
    #[must_use = "says whether the lock was upgraded"]
    pub unsafe fn try_upgrade(&self) -> bool {
        // Relaxed: the CAS below re-reads the value.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & SHARDED != 0 {
                // As in `try_lock_exclusive`: readers may be inside through their shards.
                return self.try_claim_tentatively(Tentative::Upgrade, state);
            }
            if state & READERS_MASK != READER {
                return false;
            }
            // Acquire: pairs with the Release fetch_sub of the readers that left. Without
            // `SHARDED` no reader is inside through a shard: the claim is the lock.
            match self.state.compare_exchange_weak(
                state,
                state - UPGRADABLE - READER + WRITER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
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
    #[must_use = "says whether the lock was upgraded"]
    pub unsafe fn try_upgrade_for(&self, timeout: Duration) -> bool {
        // SAFETY: forwarded to the caller.
        unsafe { self.upgrade_until(GiveUp::at(gosync_park::deadline_after(timeout))) }
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
    #[must_use = "says whether the lock was upgraded"]
    pub unsafe fn try_upgrade_until(&self, deadline: Instant) -> bool {
        // SAFETY: forwarded to the caller.
        unsafe { self.upgrade_until(GiveUp::at(Some(deadline))) }
    }

    /// Turns the upgradable lock into the exclusive lock, waiting until `give_up` comes (the
    /// caller then still holds the upgradable lock). Returns whether it did.
    ///
    /// # Safety
    ///
    /// As [`try_upgrade`](Self::try_upgrade).
    pub(crate) unsafe fn upgrade_until(&self, give_up: GiveUp<'_>) -> bool {
        if give_up.has_come() {
            // A zero timeout or a past deadline: `try_upgrade`, which holds no reader back.
            // SAFETY: forwarded to the caller.
            return unsafe { self.try_upgrade() };
        }
        if self.claim_from_upgradable() || self.wait_for_readers(give_up) {
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
    /// held, so counting them in is safe), except those that came after a writer still queued:
    /// they are held back still (Go's writer preference), and go in when those writers have had
    /// their turn, or have given up (`writer_left_queue`: its look at the writer queue and this
    /// one are ordered by that queue's lock, and its admission finds `WRITER` gone).
    fn writer_to_upgradable(&self) {
        // Release: pairs with the Acquire of the readers that now enter.
        self.state.fetch_add(
            (UPGRADABLE + READER).wrapping_sub(WRITER),
            Ordering::Release,
        );
        self.admit_readers_after_release();
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
    /// # Panics
    ///
    /// As [`unlock_upgradable`](Self::unlock_upgradable), if nobody holds the upgradable lock.
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
    #[track_caller]
    pub unsafe fn downgrade_upgradable(&self) {
        self.pass_on_claim(UPGRADABLE);
    }
}
