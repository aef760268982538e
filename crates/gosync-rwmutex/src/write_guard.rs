//! [`RwMutexWriteGuard`]: the exclusive lock held on an [`RwMutex`].

use std::marker::PhantomData;
use std::ops::DerefMut;

use crate::shards::ReadSlot;
use crate::{RawRwMutex, RwMutex, RwMutexReadGuard, RwMutexUpgradableReadGuard};

/// Exclusive access to the data of an [`RwMutex`]; the write lock is released when it is
/// dropped.
///
/// A condition variable waits with it: [`raw`](Self::raw) reaches the raw lock to release it
/// with [`RawRwMutex::unlock_exclusive`] and take it again with
/// [`RawRwMutex::lock_exclusive`], or [`unlocked`](Self::unlocked) does both around a closure.
///
/// # Examples
///
/// ```
/// let lock = gosync_rwmutex::RwMutex::new(1);
/// let mut guard = lock.write();
/// *guard += 1;
/// assert_eq!(format!("{guard:?}"), "2");
/// ```
#[must_use = "if unused the RwMutex will immediately unlock"]
pub struct RwMutexWriteGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Not `Send` or `Sync` unless `&RwMutex<T>` is (which needs `T: Send + Sync`).
    marker: PhantomData<&'a mut T>,
}

impl<'a, T: ?Sized> RwMutexWriteGuard<'a, T> {
    /// Turns the write lock into a read lock without letting any writer in between. Readers
    /// that waited for this writer are let in too.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexWriteGuard};
    /// let lock = RwMutex::new(1);
    /// let mut writer = lock.write();
    /// *writer = 2;
    /// let reader = RwMutexWriteGuard::downgrade(writer);
    /// assert_eq!(*reader, 2);
    /// assert!(lock.try_read().is_some());
    /// ```
    pub fn downgrade(guard: Self) -> RwMutexReadGuard<'a, T> {
        let lock = guard.lock;
        std::mem::forget(guard);
        // SAFETY: the write guard held the exclusive lock and was forgotten, so this is the only
        // release of it; the read guard made below owns the shared lock it becomes.
        unsafe { lock.raw.downgrade() };
        lock.read_guard(ReadSlot::WORD)
    }

    /// Turns the write lock into an upgradable read lock: readers may enter again, writers may
    /// not.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexWriteGuard};
    /// let lock = RwMutex::new(1);
    /// let upgradable = RwMutexWriteGuard::downgrade_to_upgradable(lock.write());
    /// assert!(lock.try_read().is_some());
    /// assert!(lock.try_write().is_none());
    /// ```
    pub fn downgrade_to_upgradable(guard: Self) -> RwMutexUpgradableReadGuard<'a, T> {
        let lock = guard.lock;
        std::mem::forget(guard);
        // SAFETY: as in `downgrade`, for the upgradable lock.
        unsafe { lock.raw.downgrade_to_upgradable() };
        lock.upgradable_guard()
    }

    /// The raw lock this guard holds exclusively.
    ///
    /// A caller that releases it (`unsafe` [`RawRwMutex::unlock_exclusive`]) must take it again
    /// ([`RawRwMutex::lock_exclusive`]) before the guard is used or dropped, and must not touch
    /// the data meanwhile: a condition variable does exactly this while it holds `&mut guard`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexWriteGuard};
    ///
    /// let lock = RwMutex::new(1);
    /// let mut guard = lock.write();
    /// let raw = RwMutexWriteGuard::raw(&guard);
    /// // SAFETY: the guard holds the exclusive lock; it is taken again before the guard is
    /// // used, and nobody touches the data through the guard meanwhile.
    /// unsafe { raw.unlock_exclusive() };
    /// assert_eq!(*lock.read(), 1);
    /// raw.lock_exclusive();
    /// *guard = 2;
    /// ```
    #[inline]
    pub fn raw(guard: &Self) -> &'a RawRwMutex {
        &guard.lock.raw
    }

    /// Releases the write lock, runs `f`, and takes the write lock again (also if `f` panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexWriteGuard};
    /// let lock = RwMutex::new(1);
    /// let mut guard = lock.write();
    /// let seen = RwMutexWriteGuard::unlocked(&mut guard, || *lock.read());
    /// assert_eq!(seen, 1);
    /// ```
    pub fn unlocked<U>(guard: &mut Self, f: impl FnOnce() -> U) -> U {
        let raw = &guard.lock.raw;
        gosync_park::unlocked(
            // SAFETY: the guard holds the exclusive lock; `&mut guard` keeps the data out of
            // reach until the relock takes the lock again.
            || unsafe { raw.unlock_exclusive() },
            || raw.lock_exclusive(),
            f,
        )
    }
}

impl<T: ?Sized> DerefMut for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the exclusive lock, and `&mut self` makes this the only
        // access through it.
        unsafe { &mut *self.lock.data.mut_ptr() }
    }
}

impl<T: ?Sized> Drop for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this guard holds the exclusive lock and gives it up here.
        unsafe { self.lock.raw.unlock_exclusive() };
    }
}

crate::guard::shared_guard_impls!(RwMutexWriteGuard, write);

impl<T: ?Sized> RwMutex<T> {
    #[inline]
    pub(crate) fn write_guard(&self) -> RwMutexWriteGuard<'_, T> {
        RwMutexWriteGuard {
            lock: self,
            marker: PhantomData,
        }
    }
}
