//! Go's `sync.RWMutex` for Rust: a reader-writer lock with Go's writer preference, upgradable
//! reads and timeouts.
//!
//! | Go | here |
//! | --- | --- |
//! | `var mu sync.RWMutex` | `let mu = RwMutex::new(value);` (or `Default`) |
//! | `mu.RLock(); defer mu.RUnlock()` | `let guard = mu.read();` |
//! | `mu.Lock(); defer mu.Unlock()` | `let guard = mu.write();` |
//! | `mu.TryRLock()` / `mu.TryLock()` | [`RwMutex::try_read`] / [`RwMutex::try_write`] |
//! | `mu.RLocker()` with a `sync.Cond` | `Cond::wait(&mut read_guard)` (see [`RwMutexReadGuard::raw`]) |
//! | (none) | timeouts, [`RwMutex::upgradable_read`], [`RwMutexWriteGuard::downgrade`] |
//!
//! # Writer preference
//!
//! Once a writer is blocked in [`write`](RwMutex::write), new readers wait until that writer
//! has had its turn; readers already inside are not disturbed. Readers that arrived while a
//! writer held the lock go in before the next writer. So under any mix of load, writers never
//! starve and readers never starve.
//!
//! # Cost of the read path
//!
//! [`read`](RwMutex::read) is one `fetch_add` on the lock word and a branch; dropping the guard
//! is one `fetch_sub` and a branch: never a compare-and-swap loop that concurrent readers would
//! make each other retry (the design of Go's `readerCount.Add`).
//!
//! Readers on different cores would still take turns owning that word's cache line. So while
//! readers contend, the lock counts them per thread instead: it has one counter per core (at
//! most 64), each on a cache line of its own, and a guard's read is then an increment of its
//! thread's counter, a fence and a load of the lock word, with no line that two readers both
//! write. A writer pays for it: after claiming the lock it checks every counter. When the
//! writes come so often that few reads fall between them, a writer sends the readers back to
//! the word until they contend again. See [`RawRwMutex`] for the state machine, and
//! `docs/performance.md` for what each way costs.
//!
//! Memory: an `RwMutex<T>` is two words and the `T`. A lock whose readers have contended also
//! owns its counters, one cache-line-padded counter per core plus one for its writers (128 bytes
//! each on x86-64, at most 65 of them), allocated on the first contended read and freed when the
//! lock is dropped. A thread that holds two read guards of one lock at once counts as contention
//! too.
//!
//! # Examples
//!
//! ```
//! use gosync_rwmutex::RwMutex;
//! use std::sync::Arc;
//!
//! let config = Arc::new(RwMutex::new(vec![1, 2, 3]));
//! let readers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let config = Arc::clone(&config);
//!         std::thread::spawn(move || config.read().iter().sum::<i32>())
//!     })
//!     .collect();
//! config.write().push(4);
//! for reader in readers {
//!     let sum = reader.join().unwrap();
//!     assert!(sum == 6 || sum == 10);
//! }
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(all(feature = "lock_api", not(gosync_loom)))]
mod lock_api_impl;
mod raw;
mod shards;

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use gosync_park::cell::UnsafeCell;

pub use raw::RawRwMutex;
use shards::ReadSlot;

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
/// - Timed variants, upgradable reads and downgrades are additions.
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
    raw: RawRwMutex,
    data: UnsafeCell<T>,
}

/// `RwMutex<T>` hands out `&T` to several threads at once (needs `T: Sync`) and `&mut T` to one
/// thread at a time (needs `T: Send`).
// SAFETY: the lock lets `&mut T` out only to one writer at a time and `&T` only while no writer
// is inside, so sharing the lock shares `T` as described above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwMutex<T> {}

impl<T> RwMutex<T> {
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
    #[cfg(not(gosync_loom))]
    #[inline]
    pub const fn new(value: T) -> Self {
        Self {
            raw: RawRwMutex::new(),
            data: UnsafeCell::new(value),
        }
    }

    /// A new unlocked lock holding `value`.
    #[cfg(gosync_loom)]
    pub fn new(value: T) -> Self {
        Self {
            raw: RawRwMutex::new(),
            data: UnsafeCell::new(value),
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
    #[inline]
    fn read_guard(&self, slot: ReadSlot) -> RwMutexReadGuard<'_, T> {
        RwMutexReadGuard {
            lock: self,
            slot,
            marker: PhantomData,
        }
    }

    #[inline]
    fn write_guard(&self) -> RwMutexWriteGuard<'_, T> {
        RwMutexWriteGuard {
            lock: self,
            marker: PhantomData,
        }
    }

    #[inline]
    fn upgradable_guard(&self) -> RwMutexUpgradableReadGuard<'_, T> {
        RwMutexUpgradableReadGuard {
            lock: self,
            marker: PhantomData,
        }
    }

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
    #[inline]
    pub fn read(&self) -> RwMutexReadGuard<'_, T> {
        self.read_guard(self.raw.lock_read())
    }

    /// Locks for reading if no writer holds the lock or waits for it; never blocks (Go's
    /// `TryRLock`).
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
    #[inline]
    pub fn try_read_for(&self, timeout: Duration) -> Option<RwMutexReadGuard<'_, T>> {
        self.raw
            .try_lock_read_until(gosync_park::deadline_after(timeout))
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
    #[inline]
    pub fn try_read_until(&self, deadline: Instant) -> Option<RwMutexReadGuard<'_, T>> {
        self.raw
            .try_lock_read_until(Some(deadline))
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
    #[inline]
    pub fn try_write_until(&self, deadline: Instant) -> Option<RwMutexWriteGuard<'_, T>> {
        self.raw
            .try_lock_exclusive_until(deadline)
            .then(|| self.write_guard())
    }

    /// Locks for an upgradable read: shared with plain readers, exclusive against writers and
    /// other upgradable readers. Waits for writers and upgradable readers ahead of it.
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

/// Runs its closure when dropped: puts a lock released by an `unlocked` call back, also when
/// the caller's closure panics.
struct Relock<F: FnMut()>(F);

impl<F: FnMut()> Drop for Relock<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

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
    #[inline]
    pub fn raw(guard: &mut Self) -> &'a RawRwMutex {
        // SAFETY: the guard holds the read lock counted in `slot`, and keeps the slot it is
        // moved to.
        guard.slot = unsafe { guard.lock.raw.count_in_word(guard.slot) };
        &guard.lock.raw
    }

    /// The lock this guard belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexReadGuard};
    /// let lock = RwMutex::new(1);
    /// let guard = lock.read();
    /// assert!(std::ptr::eq(RwMutexReadGuard::rwmutex(&guard), &lock));
    /// ```
    #[inline]
    pub fn rwmutex(guard: &Self) -> &'a RwMutex<T> {
        guard.lock
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
        // SAFETY: the guard holds the read lock counted in `slot`; `&mut guard` keeps the data
        // out of reach until `Relock` takes the lock again (and records where).
        unsafe { raw.unlock_read(guard.slot) };
        let slot = &mut guard.slot;
        let _relock = Relock(|| *slot = raw.lock_read());
        f()
    }
}

impl<T: ?Sized> Deref for RwMutexReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds a shared lock, so no writer is inside.
        unsafe { &*self.lock.data.ptr() }
    }
}

impl<T: ?Sized> Drop for RwMutexReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this guard holds the read lock counted in `slot` and gives it up here.
        unsafe { self.lock.raw.unlock_read(self.slot) };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

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

    /// The lock this guard belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexWriteGuard};
    /// let lock = RwMutex::new(1);
    /// let guard = lock.write();
    /// assert!(std::ptr::eq(RwMutexWriteGuard::rwmutex(&guard), &lock));
    /// ```
    #[inline]
    pub fn rwmutex(guard: &Self) -> &'a RwMutex<T> {
        guard.lock
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
        // SAFETY: the guard holds the exclusive lock; `&mut guard` keeps the data out of reach
        // until `Relock` takes the lock again.
        unsafe { raw.unlock_exclusive() };
        let _relock = Relock(|| raw.lock_exclusive());
        f()
    }
}

impl<T: ?Sized> Deref for RwMutexWriteGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the exclusive lock.
        unsafe { &*self.lock.data.ptr() }
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

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

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
    pub fn try_upgrade(guard: Self) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        // SAFETY: the guard holds the upgradable lock; on success it is forgotten below and the
        // write guard owns the exclusive lock instead.
        if unsafe { guard.lock.raw.try_upgrade() } {
            let lock = guard.lock;
            std::mem::forget(guard);
            Ok(lock.write_guard())
        } else {
            Err(guard)
        }
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
    pub fn try_upgrade_for(
        guard: Self,
        timeout: Duration,
    ) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        // SAFETY: as in `try_upgrade`.
        if unsafe { guard.lock.raw.try_upgrade_for(timeout) } {
            let lock = guard.lock;
            std::mem::forget(guard);
            Ok(lock.write_guard())
        } else {
            Err(guard)
        }
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
    pub fn try_upgrade_until(
        guard: Self,
        deadline: Instant,
    ) -> Result<RwMutexWriteGuard<'a, T>, Self> {
        // SAFETY: as in `try_upgrade`.
        if unsafe { guard.lock.raw.try_upgrade_until(deadline) } {
            let lock = guard.lock;
            std::mem::forget(guard);
            Ok(lock.write_guard())
        } else {
            Err(guard)
        }
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

    /// The lock this guard belongs to.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
    /// let lock = RwMutex::new(1);
    /// let guard = lock.upgradable_read();
    /// assert!(std::ptr::eq(RwMutexUpgradableReadGuard::rwmutex(&guard), &lock));
    /// ```
    #[inline]
    pub fn rwmutex(guard: &Self) -> &'a RwMutex<T> {
        guard.lock
    }
}

impl<T: ?Sized> Deref for RwMutexUpgradableReadGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the upgradable lock, which keeps writers out.
        unsafe { &*self.lock.data.ptr() }
    }
}

impl<T: ?Sized> Drop for RwMutexUpgradableReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: this guard holds the upgradable lock and gives it up here.
        unsafe { self.lock.raw.unlock_upgradable() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwMutexUpgradableReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwMutexUpgradableReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(not(gosync_loom))]
mod assertions {
    use super::*;
    use static_assertions::{assert_impl_all, assert_not_impl_any};
    use std::cell::Cell;
    use std::rc::Rc;

    assert_impl_all!(RawRwMutex: Send, Sync);
    assert_impl_all!(RwMutex<i32>: Send, Sync, Default, From<i32>);
    assert_impl_all!(RwMutex<Cell<i32>>: Send);
    assert_not_impl_any!(RwMutex<Cell<i32>>: Sync);
    assert_not_impl_any!(RwMutex<Rc<i32>>: Send, Sync);
    assert_impl_all!(RwMutexReadGuard<'static, i32>: Send, Sync);
    assert_impl_all!(RwMutexWriteGuard<'static, i32>: Send, Sync);
    assert_impl_all!(RwMutexUpgradableReadGuard<'static, i32>: Send, Sync);
    assert_not_impl_any!(RwMutexReadGuard<'static, Cell<i32>>: Send, Sync);
    assert_not_impl_any!(RwMutexWriteGuard<'static, Cell<i32>>: Send, Sync);
    assert_not_impl_any!(RwMutexUpgradableReadGuard<'static, Rc<i32>>: Send, Sync);
}
