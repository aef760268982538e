//! [`RwMutexUpgradableReadGuard`]: the upgradable lock held on an [`RwMutex`].

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use crate::shards::ReadSlot;
use crate::{RawRwMutex, RwMutex, RwMutexReadGuard, RwMutexWriteGuard};

/// Shared access to the data of an [`RwMutex`] that can become exclusive; the lock is released
/// when it is dropped.
///
/// At most one upgradable reader holds a lock at a time; it reads alongside plain readers and
/// keeps writers out, so [`upgrade`](Self::upgrade) can turn it into a write guard with no other
/// writer in between (it waits only for the plain readers inside to leave).
///
/// # Examples
///
/// ```
/// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
///
/// let lock = RwMutex::new(Vec::<u32>::new());
/// let guard = lock.upgradable_read();
/// assert!(lock.try_read().is_some());
/// let mut writer = RwMutexUpgradableReadGuard::upgrade(guard);
/// writer.push(1);
/// ```
#[must_use = "if unused the RwMutex will immediately unlock"]
pub struct RwMutexUpgradableReadGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Not `Send` or `Sync` unless `&RwMutex<T>` is (which needs `T: Send + Sync`).
    marker: PhantomData<&'a T>,
}

impl<'a, T: ?Sized> RwMutexUpgradableReadGuard<'a, T> {
    /// Turns the upgradable read into a write lock, waiting for the plain readers inside to
    /// leave (new readers wait meanwhile, as for any writer).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// let lock = RwMutex::new(1);
    /// let mut writer = RwMutexUpgradableReadGuard::upgrade(lock.upgradable_read());
    /// *writer = 2;
    /// ```
    pub fn upgrade(guard: Self) -> RwMutexWriteGuard<'a, T> {
        let lock = guard.lock;
        std::mem::forget(guard);
        // SAFETY: the upgradable guard held the upgradable lock and was forgotten; the write
        // guard made below owns the exclusive lock it becomes.
        unsafe { lock.raw.upgrade() };
        lock.write_guard()
    }

    /// Turns the upgradable read into a write lock if no plain reader is inside; never blocks.
    ///
    /// # Errors
    ///
    /// Gives the guard back, still upgradable, if readers are inside.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// let lock = RwMutex::new(1);
    /// let guard = lock.upgradable_read();
    /// let reader = lock.read();
    /// let guard = RwMutexUpgradableReadGuard::try_upgrade(guard).unwrap_err();
    /// drop(reader);
    /// assert!(RwMutexUpgradableReadGuard::try_upgrade(guard).is_ok());
    /// ```
    #[must_use = "says whether the guard was upgraded (the error gives it back)"]
    pub fn try_upgrade(guard: Self) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        // SAFETY: the guard holds the upgradable lock, which `try_upgrade` turns into the
        // exclusive lock when it returns `true`.
        unsafe { Self::upgrade_if(guard, |raw| raw.try_upgrade()) }
    }

    /// Turns the upgradable read into a write lock, giving up after `timeout`. New readers wait
    /// while it waits, and are let in if it gives up.
    ///
    /// # Errors
    ///
    /// Gives the guard back, still upgradable, if readers were still inside at the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// use std::time::Duration;
    /// let lock = RwMutex::new(1);
    /// let guard = lock.upgradable_read();
    /// let reader = lock.read();
    /// let guard = RwMutexUpgradableReadGuard::try_upgrade_for(guard, Duration::from_millis(1))
    ///     .unwrap_err();
    /// assert!(lock.try_read().is_some());
    /// ```
    #[must_use = "says whether the guard was upgraded (the error gives it back)"]
    pub fn try_upgrade_for(
        guard: Self,
        timeout: Duration,
    ) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        // SAFETY: as in `try_upgrade`.
        unsafe { Self::upgrade_if(guard, |raw| raw.try_upgrade_for(timeout)) }
    }

    /// Turns the upgradable read into a write lock, giving up at `deadline`. A past deadline
    /// still succeeds when no reader is inside.
    ///
    /// # Errors
    ///
    /// Gives the guard back, still upgradable, if readers were still inside at the deadline.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// use std::time::Instant;
    /// let lock = RwMutex::new(1);
    /// let guard = lock.upgradable_read();
    /// assert!(RwMutexUpgradableReadGuard::try_upgrade_until(guard, Instant::now()).is_ok());
    /// ```
    #[must_use = "says whether the guard was upgraded (the error gives it back)"]
    pub fn try_upgrade_until(
        guard: Self,
        deadline: Instant,
    ) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        // SAFETY: as in `try_upgrade`.
        unsafe { Self::upgrade_if(guard, |raw| raw.try_upgrade_until(deadline)) }
    }

    /// Runs `upgrade` on the raw lock: on `true` the guard becomes a write guard, on `false` it
    /// is given back.
    ///
    /// # Safety
    ///
    /// `upgrade` may be called while the guard holds the upgradable lock (it is one of the raw
    /// lock's upgrades), and returns `true` only when it has turned that lock into the
    /// exclusive lock, `false` only when the upgradable lock is still held.
    pub(crate) unsafe fn upgrade_if(
        guard: Self,
        upgrade: impl FnOnce(&RawRwMutex) -> bool,
    ) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        let lock = guard.lock;
        if !upgrade(&lock.raw) {
            return Err(guard);
        }
        // The exclusive lock replaces the upgradable one: the write guard made below releases
        // it, and this guard must not release what it no longer holds.
        std::mem::forget(guard);
        Ok(lock.write_guard())
    }

    /// Turns the upgradable read into a plain read, letting the next writer or upgradable
    /// reader claim the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// let lock = RwMutex::new(1);
    /// let reader = RwMutexUpgradableReadGuard::downgrade(lock.upgradable_read());
    /// assert!(lock.try_upgradable_read().is_some());
    /// assert_eq!(*reader, 1);
    /// ```
    pub fn downgrade(guard: Self) -> RwMutexReadGuard<'a, T> {
        let lock = guard.lock;
        std::mem::forget(guard);
        // SAFETY: as in `upgrade`, for the shared lock.
        unsafe { lock.raw.downgrade_upgradable() };
        lock.read_guard(ReadSlot::WORD)
    }

    /// The raw lock this guard holds an upgradable lock on. Releasing it is `unsafe`
    /// ([`RawRwMutex::unlock_upgradable`]), with the contract given there.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// let lock = RwMutex::new(1);
    /// let guard = lock.upgradable_read();
    /// assert!(RwMutexUpgradableReadGuard::raw(&guard).is_locked());
    /// ```
    #[inline]
    pub fn raw(guard: &Self) -> &'a RawRwMutex {
        &guard.lock.raw
    }
}

impl<T: ?Sized> Drop for RwMutexUpgradableReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this guard holds the upgradable lock and gives it up here.
        unsafe { self.lock.raw.unlock_upgradable() };
    }
}

crate::guard::shared_guard_impls!(RwMutexUpgradableReadGuard, upgradable_read);

impl<T: ?Sized> RwMutex<T> {
    #[inline]
    pub(crate) fn upgradable_guard(&self) -> RwMutexUpgradableReadGuard<'_, T> {
        RwMutexUpgradableReadGuard {
            lock: self,
            marker: PhantomData,
        }
    }
}
