//! `lock_api` traits for [`RawRwMutex`] (feature `lock_api`), so that `lock_api`-generic code
//! (`lock_api::RwLock<RawRwMutex, T>`) can use gosync's lock.
//!
//! Every method forwards to the inherent method of the same name, whose contract is the trait's.

use std::time::{Duration, Instant};

use lock_api::{
    GuardSend, RawRwLock, RawRwLockDowngrade, RawRwLockTimed, RawRwLockUpgrade,
    RawRwLockUpgradeDowngrade, RawRwLockUpgradeTimed,
};

use crate::RawRwMutex;

/// `RawRwMutex` is a reader-writer lock: `lock_exclusive` excludes every other lock,
/// `lock_shared` excludes exclusive ones, and each acquisition synchronises with the release it
/// follows (Acquire/Release, see the notes in `raw.rs`). It is not tied to a thread, so guards
/// may be sent (`GuardSend`).
// SAFETY: as documented above; the inherent methods implement exactly these guarantees.
unsafe impl RawRwLock for RawRwMutex {
    #[allow(clippy::declare_interior_mutable_const)] // required by the trait
    const INIT: Self = RawRwMutex::new();

    type GuardMarker = GuardSend;

    #[inline]
    fn lock_shared(&self) {
        RawRwMutex::lock_shared(self);
    }

    #[inline]
    fn try_lock_shared(&self) -> bool {
        RawRwMutex::try_lock_shared(self)
    }

    #[inline]
    #[track_caller]
    unsafe fn unlock_shared(&self) {
        // SAFETY: the trait's contract (a shared lock is held) is the inherent method's.
        unsafe { RawRwMutex::unlock_shared(self) }
    }

    #[inline]
    fn lock_exclusive(&self) {
        RawRwMutex::lock_exclusive(self);
    }

    #[inline]
    fn try_lock_exclusive(&self) -> bool {
        RawRwMutex::try_lock_exclusive(self)
    }

    #[inline]
    #[track_caller]
    unsafe fn unlock_exclusive(&self) {
        // SAFETY: the trait's contract (the exclusive lock is held) is the inherent method's.
        unsafe { RawRwMutex::unlock_exclusive(self) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        RawRwMutex::is_locked(self)
    }

    #[inline]
    fn is_locked_exclusive(&self) -> bool {
        RawRwMutex::is_locked_exclusive(self)
    }
}

/// Timed acquisitions give up at the deadline and leave the lock as if they had never been
/// attempted (a writer that gave up lets in the readers it held back).
// SAFETY: the timed methods acquire exactly as the untimed ones when they return `true`.
unsafe impl RawRwLockTimed for RawRwMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[inline]
    fn try_lock_shared_for(&self, timeout: Duration) -> bool {
        RawRwMutex::try_lock_shared_for(self, timeout)
    }

    #[inline]
    fn try_lock_shared_until(&self, deadline: Instant) -> bool {
        RawRwMutex::try_lock_shared_until(self, deadline)
    }

    #[inline]
    fn try_lock_exclusive_for(&self, timeout: Duration) -> bool {
        RawRwMutex::try_lock_exclusive_for(self, timeout)
    }

    #[inline]
    fn try_lock_exclusive_until(&self, deadline: Instant) -> bool {
        RawRwMutex::try_lock_exclusive_until(self, deadline)
    }
}

/// Downgrading turns the exclusive lock into a shared one atomically: no writer gets in between.
// SAFETY: `downgrade` adds the caller as a reader before it releases the writer claim.
unsafe impl RawRwLockDowngrade for RawRwMutex {
    #[inline]
    #[track_caller]
    unsafe fn downgrade(&self) {
        // SAFETY: the trait's contract (the exclusive lock is held) is the inherent method's.
        unsafe { RawRwMutex::downgrade(self) }
    }
}

/// At most one upgradable lock is held at a time; it coexists with shared locks and excludes
/// exclusive ones, and upgrading waits for the shared locks to go with no writer in between.
// SAFETY: `UPGRADABLE` and `WRITER` exclude each other and each other's kind in the state word.
unsafe impl RawRwLockUpgrade for RawRwMutex {
    #[inline]
    fn lock_upgradable(&self) {
        RawRwMutex::lock_upgradable(self);
    }

    #[inline]
    fn try_lock_upgradable(&self) -> bool {
        RawRwMutex::try_lock_upgradable(self)
    }

    #[inline]
    #[track_caller]
    unsafe fn unlock_upgradable(&self) {
        // SAFETY: the trait's contract (the upgradable lock is held) is the inherent method's.
        unsafe { RawRwMutex::unlock_upgradable(self) }
    }

    #[inline]
    unsafe fn upgrade(&self) {
        // SAFETY: as for `unlock_upgradable`.
        unsafe { RawRwMutex::upgrade(self) }
    }

    #[inline]
    unsafe fn try_upgrade(&self) -> bool {
        // SAFETY: as for `unlock_upgradable`.
        unsafe { RawRwMutex::try_upgrade(self) }
    }
}

/// Downgrades between the three kinds, each atomic as [`RawRwLockDowngrade`]'s.
// SAFETY: each downgrade keeps the caller counted in before it gives up the stronger kind.
unsafe impl RawRwLockUpgradeDowngrade for RawRwMutex {
    #[inline]
    #[track_caller]
    unsafe fn downgrade_upgradable(&self) {
        // SAFETY: the trait's contract (the upgradable lock is held) is the inherent method's.
        unsafe { RawRwMutex::downgrade_upgradable(self) }
    }

    #[inline]
    unsafe fn downgrade_to_upgradable(&self) {
        // SAFETY: the trait's contract (the exclusive lock is held) is the inherent method's.
        unsafe { RawRwMutex::downgrade_to_upgradable(self) }
    }
}

/// Timed upgradable locking and upgrading, giving up at the deadline with the lock as before.
// SAFETY: a failed timed upgrade gives the caller back exactly the upgradable lock it held.
unsafe impl RawRwLockUpgradeTimed for RawRwMutex {
    #[inline]
    fn try_lock_upgradable_for(&self, timeout: Duration) -> bool {
        RawRwMutex::try_lock_upgradable_for(self, timeout)
    }

    #[inline]
    fn try_lock_upgradable_until(&self, deadline: Instant) -> bool {
        RawRwMutex::try_lock_upgradable_until(self, deadline)
    }

    #[inline]
    unsafe fn try_upgrade_for(&self, timeout: Duration) -> bool {
        // SAFETY: the trait's contract (the upgradable lock is held) is the inherent method's.
        unsafe { RawRwMutex::try_upgrade_for(self, timeout) }
    }

    #[inline]
    unsafe fn try_upgrade_until(&self, deadline: Instant) -> bool {
        // SAFETY: as for `try_upgrade_for`.
        unsafe { RawRwMutex::try_upgrade_until(self, deadline) }
    }
}
