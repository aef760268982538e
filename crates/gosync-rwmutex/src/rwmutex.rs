//! [`RwMutex`]: the lock and its data, and the ways to take it.

use std::fmt;
use std::time::{Duration, Instant};

use gosync_park::cell::UnsafeCell;

use crate::raw::GiveUp;
use crate::{RawRwMutex, RwMutexReadGuard, RwMutexUpgradableReadGuard, RwMutexWriteGuard};

/// A reader-writer lock with Go's writer preference: any number of readers, or one writer.
///
/// Readers get shared access ([`read`](Self::read)), a writer exclusive access
/// ([`write`](Self::write)); an upgradable reader ([`upgradable_read`](Self::upgradable_read))
/// reads alongside plain readers and can become the writer without letting another writer in
/// between. The lock is not reentrant: a thread holding a read guard that calls `read` again
/// deadlocks if a writer is waiting in between (as in Go, where recursive read locking is
/// prohibited for this reason).
///
/// A panic while a guard is held releases the lock: there is no poisoning.
///
/// # Differences from Go
///
/// - The lock owns its data, and guards release it when dropped (`defer mu.Unlock()` is the
///   default).
/// - Timed variants, upgradable reads and downgrades are additions; the `_ctx` variants stand
///   for Go's `select` on a lock and `ctx.Done()`.
/// - `RLocker()` has no counterpart type: a condition variable waits with a read guard.
///
/// # Differences from std
///
/// - Writer preference as in Go: `std::sync::RwLock`'s policy is platform-defined.
/// - No poisoning; timeouts; upgradable reads; `const fn new`.
/// - Guards may be sent to other threads (the lock is not tied to the thread that took it).
///
/// # Examples
///
/// ```
/// use gosync_rwmutex::RwMutex;
///
/// let lock = RwMutex::new(5);
/// {
///     let r1 = lock.read();
///     let r2 = lock.read();
///     assert_eq!(*r1 + *r2, 10);
/// }
/// *lock.write() += 1;
/// assert_eq!(lock.into_inner(), 6);
/// ```
pub struct RwMutex<T: ?Sized> {
    pub(crate) raw: RawRwMutex,
    pub(crate) data: UnsafeCell<T>,
}

/// `RwMutex<T>` hands out `&T` to several threads at once (needs `T: Sync`) and `&mut T` to one
/// thread at a time (needs `T: Send`).
// SAFETY: the lock lets `&mut T` out only to one writer at a time and `&T` only while no writer
// is inside, so sharing the lock shares `T` as described above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T> RwMutex<T> {
    gosync_park::const_unless_loom! {
        /// A new unlocked lock holding `value`.
        ///
        /// # Examples
        ///
        /// ```
        /// use gosync_rwmutex::RwMutex;
        /// static COUNT: RwMutex<u32> = RwMutex::new(0);
        /// *COUNT.write() += 1;
        /// assert_eq!(*COUNT.read(), 1);
        /// ```
        #[inline]
        pub const fn new(value: T) -> Self {
            Self {
                raw: RawRwMutex::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock, returning its data.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(String::from("go"));
    /// assert_eq!(lock.into_inner(), "go");
    /// ```
    #[inline]
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwMutex<T> {
    /// Locks for reading, waiting while a writer holds the lock or waits for it (Go's `RLock`).
    ///
    /// # Panics
    ///
    /// Panics with `sync: too many readers` if the reader count would overflow (only after
    /// leaking an astronomical number of guards).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// let a = lock.read();
    /// let b = lock.read();
    /// assert_eq!(*a + *b, 2);
    /// ```
    #[track_caller]
    #[inline]
    pub fn read(&self) -> RwMutexReadGuard<'_, T> {
        self.read_guard(self.raw.lock_read())
    }

    /// Locks for reading if no writer holds the lock or waits for it; never blocks (Go's
    /// `TryRLock`). A thread that only tries to write ([`try_write`](Self::try_write)) does not
    /// make it fail.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// let writer = lock.write();
    /// assert!(lock.try_read().is_none());
    /// drop(writer);
    /// assert!(lock.try_read().is_some());
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_read(&self) -> Option<RwMutexReadGuard<'_, T>> {
        self.raw.try_lock_read().map(|slot| self.read_guard(slot))
    }

    /// Locks for reading, giving up after `timeout`.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// let writer = lock.write();
    /// assert!(lock.try_read_for(Duration::from_millis(1)).is_none());
    /// drop(writer);
    /// assert!(lock.try_read_for(Duration::ZERO).is_some());
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_read_for(&self, timeout: Duration) -> Option<RwMutexReadGuard<'_, T>> {
        self.raw
            .try_lock_read_until(GiveUp::at(gosync_park::deadline_after(timeout)))
            .map(|slot| self.read_guard(slot))
    }

    /// Locks for reading, giving up at `deadline`. A past deadline still succeeds when the lock
    /// is free at once.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// assert!(lock.try_read_until(Instant::now()).is_some());
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_read_until(&self, deadline: Instant) -> Option<RwMutexReadGuard<'_, T>> {
        self.raw
            .try_lock_read_until(GiveUp::at(Some(deadline)))
            .map(|slot| self.read_guard(slot))
    }

    /// Locks for writing (Go's `Lock`). From the moment this call claims the lock, new readers
    /// wait; it then waits for the readers inside to leave.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(vec![1]);
    /// lock.write().push(2);
    /// assert_eq!(*lock.read(), [1, 2]);
    /// ```
    #[inline]
    pub fn write(&self) -> RwMutexWriteGuard<'_, T> {
        self.raw.lock_exclusive();
        self.write_guard()
    }

    /// Locks for writing if nobody holds the lock; never blocks (Go's `TryLock`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// let reader = lock.read();
    /// assert!(lock.try_write().is_none());
    /// drop(reader);
    /// assert!(lock.try_write().is_some());
    /// ```
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_write(&self) -> Option<RwMutexWriteGuard<'_, T>> {
        self.raw.try_lock_exclusive().then(|| self.write_guard())
    }

    /// Locks for writing, giving up after `timeout`. A writer that gives up while readers are
    /// inside lets in the readers it held back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// let reader = lock.read();
    /// assert!(lock.try_write_for(Duration::from_millis(1)).is_none());
    /// drop(reader);
    /// assert!(lock.try_write_for(Duration::ZERO).is_some());
    /// ```
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_write_for(&self, timeout: Duration) -> Option<RwMutexWriteGuard<'_, T>> {
        self.raw
            .try_lock_exclusive_for(timeout)
            .then(|| self.write_guard())
    }

    /// Locks for writing, giving up at `deadline`. A past deadline still succeeds when the lock
    /// is free at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// assert!(lock.try_write_until(Instant::now()).is_some());
    /// ```
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_write_until(&self, deadline: Instant) -> Option<RwMutexWriteGuard<'_, T>> {
        self.raw
            .try_lock_exclusive_until(deadline)
            .then(|| self.write_guard())
    }

    /// Locks for an upgradable read: shared with plain readers, exclusive against writers and
    /// other upgradable readers. Waits for writers and upgradable readers ahead of it.
    ///
    /// Hold it briefly when writers may be waiting: a writer queued behind it holds back the
    /// readers that come after it (writer preference) until it has had its turn, which waits
    /// for this guard. One that gives up (a timeout, a context) lets in the readers that no
    /// writer still queued came before, so timed writers that keep retrying do not keep
    /// readers out meanwhile.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    ///
    /// let lock = RwMutex::new(0);
    /// let guard = lock.upgradable_read();
    /// if *guard == 0 {
    ///     let mut writer = RwMutexUpgradableReadGuard::upgrade(guard);
    ///     *writer = 1;
    /// }
    /// assert_eq!(*lock.read(), 1);
    /// ```
    #[track_caller]
    #[inline]
    pub fn upgradable_read(&self) -> RwMutexUpgradableReadGuard<'_, T> {
        self.raw.lock_upgradable();
        self.upgradable_guard()
    }

    /// Locks for an upgradable read if no writer or upgradable reader holds the lock; never
    /// blocks.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(0);
    /// let first = lock.try_upgradable_read();
    /// assert!(first.is_some());
    /// assert!(lock.try_upgradable_read().is_none());
    /// assert!(lock.try_read().is_some());
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_upgradable_read(&self) -> Option<RwMutexUpgradableReadGuard<'_, T>> {
        self.raw
            .try_lock_upgradable()
            .then(|| self.upgradable_guard())
    }

    /// Locks for an upgradable read, giving up after `timeout`.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = gosync_rwmutex::RwMutex::new(0);
    /// let writer = lock.write();
    /// assert!(lock.try_upgradable_read_for(Duration::from_millis(1)).is_none());
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_upgradable_read_for(
        &self,
        timeout: Duration,
    ) -> Option<RwMutexUpgradableReadGuard<'_, T>> {
        self.raw
            .try_lock_upgradable_for(timeout)
            .then(|| self.upgradable_guard())
    }

    /// Locks for an upgradable read, giving up at `deadline`. A past deadline still succeeds
    /// when the lock is free at once.
    ///
    /// # Panics
    ///
    /// As [`read`](Self::read).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// let lock = gosync_rwmutex::RwMutex::new(0);
    /// assert!(lock.try_upgradable_read_until(Instant::now()).is_some());
    /// ```
    #[track_caller]
    #[must_use = "if unused the lock is released at once (or was never taken)"]
    #[inline]
    pub fn try_upgradable_read_until(
        &self,
        deadline: Instant,
    ) -> Option<RwMutexUpgradableReadGuard<'_, T>> {
        self.raw
            .try_lock_upgradable_until(deadline)
            .then(|| self.upgradable_guard())
    }

    /// The data, through exclusive access: no locking needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut lock = gosync_rwmutex::RwMutex::new(1);
    /// *lock.get_mut() = 2;
    /// assert_eq!(*lock.read(), 2);
    /// ```
    #[inline]
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// The raw lock under this `RwMutex`. Taking it through the raw lock's safe methods without
    /// releasing it only leaks the lock; releasing it is `unsafe`, for whoever holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_rwmutex::RwMutex::new(1);
    /// let guard = lock.write();
    /// assert!(lock.raw().is_locked_exclusive());
    /// ```
    #[inline]
    pub fn raw(&self) -> &RawRwMutex {
        &self.raw
    }
}

impl<T: Default> Default for RwMutex<T> {
    /// An unlocked lock holding `T::default()` (Go's zero value).
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for RwMutex<T> {
    /// An unlocked lock holding `value`.
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwMutex");
        match self.try_read() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}
