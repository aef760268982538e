//! [`RwMutexReadGuard`]: a shared lock held on an [`RwMutex`].

use std::marker::PhantomData;

use crate::shards::ReadSlot;
use crate::{RawRwMutex, RwMutex};

/// Shared access to the data of an [`RwMutex`]; the read lock is released when it is dropped.
///
/// A condition variable waits with it as Go's `RLocker`: [`raw`](Self::raw) reaches the raw
/// lock to release it with [`RawRwMutex::unlock_shared`] and take it again with
/// [`RawRwMutex::lock_shared`], or [`unlocked`](Self::unlocked) does both around a closure.
///
/// The guard remembers where its read lock is counted (in the lock word, or in its thread's
/// counter once readers contend, see [`RwMutex`]), so it may be dropped on another thread.
///
/// # Examples
///
/// ```
/// let lock = gosync_rwmutex::RwMutex::new(String::from("hi"));
/// let guard = lock.read();
/// assert_eq!(guard.len(), 2);
/// assert_eq!(format!("{guard}"), "hi");
/// ```
#[must_use = "if unused the RwMutex will immediately unlock"]
pub struct RwMutexReadGuard<'a, T: ?Sized> {
    lock: &'a RwMutex<T>,
    /// Where the read lock is counted, for its release.
    slot: ReadSlot,
    /// Not `Send` or `Sync` unless `&RwMutex<T>` is (which needs `T: Send + Sync`).
    marker: PhantomData<&'a T>,
}

impl<'a, T: ?Sized> RwMutexReadGuard<'a, T> {
    /// The raw lock this guard holds a shared lock on.
    ///
    /// A caller that releases it (`unsafe` [`RawRwMutex::unlock_shared`]) must take it again
    /// ([`RawRwMutex::lock_shared`]) before the guard is used or dropped, and must not read the
    /// data meanwhile: a condition variable does exactly this while it holds `&mut guard`.
    /// (That is why this takes `&mut`: a read lock counted in the guard's thread's counter moves
    /// into the lock word first, where the raw calls count.)
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexReadGuard};
    ///
    /// let lock = RwMutex::new(1);
    /// let mut guard = lock.read();
    /// let raw = RwMutexReadGuard::raw(&mut guard);
    /// // SAFETY: the guard holds a shared lock; it is taken again before the guard is used,
    /// // and nobody reads through the guard meanwhile.
    /// unsafe { raw.unlock_shared() };
    /// *lock.write() = 2;
    /// raw.lock_shared();
    /// assert_eq!(*guard, 2);
    /// ```
    #[track_caller]
    #[inline]
    pub fn raw(guard: &mut Self) -> &'a RawRwMutex {
        // SAFETY: the guard holds the read lock counted in `slot`, and keeps the slot it is
        // moved to.
        guard.slot = unsafe { guard.lock.raw.count_in_word(guard.slot) };
        &guard.lock.raw
    }

    /// Releases the read lock, runs `f`, and takes the read lock again (also if `f` panics).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexReadGuard};
    /// let lock = RwMutex::new(1);
    /// let mut guard = lock.read();
    /// RwMutexReadGuard::unlocked(&mut guard, || *lock.write() = 2);
    /// assert_eq!(*guard, 2);
    /// ```
    pub fn unlocked<U>(guard: &mut Self, f: impl FnOnce() -> U) -> U {
        let raw = &guard.lock.raw;
        let held = guard.slot;
        let slot = &mut guard.slot;
        gosync_park::unlocked(
            // SAFETY: the guard holds the read lock counted in `held`; `&mut guard` keeps the
            // data out of reach until the relock takes the lock again (and records where).
            || unsafe { raw.unlock_read(held) },
            || *slot = raw.lock_read(),
            f,
        )
    }
}

impl<T: ?Sized> Drop for RwMutexReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this guard holds the read lock counted in `slot` and gives it up here.
        unsafe { self.lock.raw.unlock_read(self.slot) };
    }
}

crate::guard::shared_guard_impls!(RwMutexReadGuard, read);

impl<T: ?Sized> RwMutex<T> {
    #[inline]
    pub(crate) fn read_guard(&self, slot: ReadSlot) -> RwMutexReadGuard<'_, T> {
        RwMutexReadGuard {
            lock: self,
            slot,
            marker: PhantomData,
        }
    }
}
