//! The guards a [`Cond`](crate::Cond) can wait with: Go's `sync.Locker`.

use gosync_mutex::{MutexGuard, RawMutex};
use gosync_rwmutex::{RwMutexReadGuard, RwMutexWriteGuard};

/// A lock guard that a [`Cond`](crate::Cond) can release while it waits and take back before
/// it returns: Go's `sync.Locker`.
///
/// Implemented for gosync's guards:
///
/// | guard | Go |
/// | --- | --- |
/// | [`MutexGuard`] | `sync.NewCond(&mu)` |
/// | [`RwMutexWriteGuard`](gosync_rwmutex::RwMutexWriteGuard) | `sync.NewCond(&rw)` |
/// | [`RwMutexReadGuard`](gosync_rwmutex::RwMutexReadGuard) | `sync.NewCond(rw.RLocker())` |
///
/// A wait keeps the guard borrowed mutably, so the data it protects is out of reach while the
/// lock is released; when the wait returns, the guard holds the lock again, in the same mode.
///
/// The trait is sealed because a `Cond` relies on how each guard releases and retakes its lock
/// (with a [`MutexGuard`], a [`broadcast`](crate::Cond::broadcast) moves the waiters straight
/// onto the mutex's queue, and a woken waiter may receive the mutex by hand-off).
///
/// # Differences from Go
///
/// Go's `Cond` holds its `Locker` in the field `L`; here the guard is passed to each wait, so
/// the lock cannot be waited on without being held, and the data stays behind the guard.
///
/// # Examples
///
/// A function that waits with any gosync guard:
///
/// ```
/// use gosync_cond::{Cond, Lockable};
/// use gosync_mutex::Mutex;
/// use std::time::Duration;
///
/// fn nap<G: Lockable>(cond: &Cond, guard: &mut G) -> bool {
///     cond.wait_for(guard, Duration::from_millis(1)).timed_out()
/// }
///
/// let mutex = Mutex::new(0);
/// let cond = Cond::new();
/// assert!(nap(&cond, &mut mutex.lock()));
/// ```
///
/// Sealed: user code can neither implement the trait nor call the methods a `Cond` uses to
/// release and retake the lock (they take a token only this crate can make), so a generic
/// function cannot, say, release a read lock through it and leak the guard:
///
/// ```compile_fail,E0061
/// use gosync_cond::Lockable;
///
/// fn leak<G: Lockable>(guard: &mut G) {
///     guard.relock(); // error: the token argument is missing, and cannot be made here
/// }
/// ```
///
/// ```compile_fail,E0277
/// struct MyGuard;
/// impl gosync_cond::Lockable for MyGuard {} // error: the sealing trait is not implemented
/// ```
pub trait Lockable: sealed::Sealed {}

/// The methods behind [`Lockable`], out of users' reach: the module cannot be named outside
/// this crate, and every method takes a [`Token`](sealed::Token) only this crate can make.
pub(crate) mod sealed {
    use gosync_mutex::RawMutex;

    /// Proof that the caller is this crate: its field is private to the crate.
    #[derive(Clone, Copy, Debug)]
    pub struct Token(());

    /// The one token, for the `Cond` and the tests of this crate.
    pub(crate) const TOKEN: Token = Token(());

    /// How a [`Cond`](crate::Cond) releases and retakes a guard's lock.
    pub trait Sealed {
        /// The mutex a broadcast may requeue this guard's waiter onto: the lock itself when it is
        /// a gosync [`RawMutex`], `None` otherwise (a broadcast then wakes the waiter).
        fn requeue_target(&self, token: Token) -> Option<&RawMutex>;

        /// Releases the lock the guard holds.
        ///
        /// # Safety
        ///
        /// The guard holds its lock, and the caller takes it back (with
        /// [`relock`](Self::relock), or by a hand-off of the mutex from
        /// [`requeue_target`](Self::requeue_target)) before the guard is used or dropped.
        unsafe fn unlock(&mut self, token: Token);

        /// Takes back the lock released by [`unlock`](Self::unlock), in the same mode.
        fn relock(&mut self, token: Token);
    }
}

impl<T: ?Sized> sealed::Sealed for MutexGuard<'_, T> {
    #[inline]
    fn requeue_target(&self, _: sealed::Token) -> Option<&RawMutex> {
        Some(MutexGuard::raw(self))
    }

    #[inline]
    unsafe fn unlock(&mut self, _: sealed::Token) {
        // SAFETY: the guard holds the lock (the caller's promise), and the caller relocks before
        // the guard is used again, which is the contract of `MutexGuard::raw`.
        unsafe { MutexGuard::raw(self).unlock() }
    }

    #[inline]
    fn relock(&mut self, _: sealed::Token) {
        MutexGuard::raw(self).lock();
    }
}

impl<T: ?Sized> Lockable for MutexGuard<'_, T> {}

impl<T: ?Sized> sealed::Sealed for RwMutexWriteGuard<'_, T> {
    #[inline]
    fn requeue_target(&self, _: sealed::Token) -> Option<&RawMutex> {
        None
    }

    #[inline]
    unsafe fn unlock(&mut self, _: sealed::Token) {
        // SAFETY: the guard holds the exclusive lock (the caller's promise), and the caller
        // relocks before the guard is used again, which is the contract of `raw`.
        unsafe { RwMutexWriteGuard::raw(self).unlock_exclusive() }
    }

    #[inline]
    fn relock(&mut self, _: sealed::Token) {
        RwMutexWriteGuard::raw(self).lock_exclusive();
    }
}

impl<T: ?Sized> Lockable for RwMutexWriteGuard<'_, T> {}

impl<T: ?Sized> sealed::Sealed for RwMutexReadGuard<'_, T> {
    #[inline]
    fn requeue_target(&self, _: sealed::Token) -> Option<&RawMutex> {
        None
    }

    #[inline]
    unsafe fn unlock(&mut self, _: sealed::Token) {
        // SAFETY: the guard holds a shared lock (the caller's promise), and the caller relocks
        // before the guard is used again, which is the contract of `raw`.
        unsafe { RwMutexReadGuard::raw(self).unlock_shared() }
    }

    #[inline]
    fn relock(&mut self, _: sealed::Token) {
        RwMutexReadGuard::raw(self).lock_shared();
    }
}

impl<T: ?Sized> Lockable for RwMutexReadGuard<'_, T> {}

#[cfg(test)]
mod tests {
    use super::sealed::{Sealed, TOKEN};
    use gosync_mutex::Mutex;
    use gosync_rwmutex::RwMutex;

    #[test]
    fn mutex_guard_unlocks_and_relocks() {
        let mutex = Mutex::new(1);
        let mut guard = mutex.lock();
        // SAFETY: the guard holds the lock; it is relocked before the guard is used.
        unsafe { guard.unlock(TOKEN) };
        assert!(!mutex.is_locked());
        guard.relock(TOKEN);
        assert!(mutex.is_locked());
        *guard += 1;
        drop(guard);
        assert_eq!(*mutex.lock(), 2);
    }

    #[test]
    fn rwmutex_guards_unlock_and_relock_in_their_mode() {
        let lock = RwMutex::new(1);
        let mut write = lock.write();
        // SAFETY: the guard holds the lock; it is relocked before the guard is used.
        unsafe { write.unlock(TOKEN) };
        assert_eq!(*lock.read(), 1);
        write.relock(TOKEN);
        assert!(lock.try_read().is_none());
        assert!(write.requeue_target(TOKEN).is_none());
        drop(write);

        let mut read = lock.read();
        // SAFETY: as above.
        unsafe { read.unlock(TOKEN) };
        *lock.write() = 2;
        read.relock(TOKEN);
        assert!(lock.try_write().is_none());
        assert!(lock.try_read().is_some());
        assert_eq!(*read, 2);
    }

    #[test]
    fn mutex_guard_requeues_onto_its_own_lock() {
        let mutex = Mutex::new(());
        let guard = mutex.lock();
        let raw = guard
            .requeue_target(TOKEN)
            .expect("a mutex guard can be requeued");
        assert!(raw.is_locked());
    }
}
