//! `Mutex<T>` and its guard: a [`RawMutex`] next to the data it protects.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::cell::UnsafeCell;

use crate::RawMutex;

/// A mutual exclusion lock protecting a `T`: Go's `sync.Mutex`, holding its data as Rust's
/// `Mutex` does.
///
/// [`lock`](Self::lock) blocks until the lock is free and returns a [`MutexGuard`], through which
/// the data is reached; dropping the guard unlocks (Go's `defer mu.Unlock()`), also when the
/// thread panics. The whole lock is one byte besides the data: waiting threads queue in
/// gosync-park, keyed by the lock's address.
///
/// # Fairness
///
/// As in Go, the lock has two modes. In normal mode a thread that is already running may take a
/// lock that was just released, even when others are queued: this keeps the lock moving at the
/// speed of the running threads. A queued thread that keeps losing that race and has waited more
/// than 1 ms switches the lock to starvation mode: then each unlock hands the lock straight to
/// the longest waiter, and newcomers queue behind it instead of taking it. The lock returns to
/// normal mode once a waiter gets it within 1 ms or the queue empties. So no waiter waits without
/// bound while others keep re-acquiring.
///
/// # Differences from Go
///
/// - The data lives inside the lock and is reached only through the guard, so it cannot be
///   touched unlocked, and the unlock cannot be forgotten.
/// - Go's `Unlock` of an unlocked mutex is a fatal error; here the guard makes it impossible.
/// - The guard cannot move to another thread (it is `!Send`), while Go lets any goroutine call
///   `Unlock`. [`RawMutex`] allows it.
/// - [`try_lock_for`](Self::try_lock_for) and [`try_lock_until`](Self::try_lock_until) add the
///   timed lock Go lacks.
///
/// # Differences from std
///
/// - No poisoning: a panic while the guard is held unlocks, and the next `lock` succeeds, so
///   [`lock`](Self::lock) returns the guard itself rather than a `LockResult`. Code that must
///   know whether an update was cut short checks its own invariants.
/// - Go's fairness (above); std's lock makes no promise.
/// - Timed locking, and [`is_locked`](Self::is_locked).
///
/// # Examples
///
/// ```
/// use gosync_mutex::Mutex;
/// use std::sync::Arc;
/// use std::thread;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..4)
///     .map(|_| {
///         let counter = Arc::clone(&counter);
///         thread::spawn(move || {
///             for _ in 0..100 {
///                 *counter.lock() += 1;
///             }
///         })
///     })
///     .collect();
/// for handle in handles {
///     handle.join().unwrap();
/// }
/// assert_eq!(*counter.lock(), 400);
/// ```
pub struct Mutex<T: ?Sized> {
    raw: RawMutex,
    data: UnsafeCell<T>,
}

/// `Mutex<T>` moves between threads with its `T`.
// SAFETY: the mutex owns its `T`; sending the mutex sends the `T`, which requires `T: Send`.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}

/// Sharing a `Mutex<T>` lets each thread in turn reach the `T` mutably through a guard, as if the
/// `T` were sent to it, so `T: Send` is needed (and enough: only one thread reaches it at a time).
// SAFETY: the lock gives one thread at a time access to the data, with each critical section
// ordered before the next (see `raw.rs`), so sharing the mutex amounts to sending the `T`.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    gosync_park::const_unless_loom! {
        /// Creates an unlocked mutex holding `value`. Usable in `static`s: Go's zero value is
        /// ready, and so is this.
        ///
        /// # Examples
        ///
        /// ```
        /// use gosync_mutex::Mutex;
        ///
        /// static NAMES: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        /// NAMES.lock().push("gopher");
        /// assert_eq!(NAMES.lock().len(), 1);
        /// ```
        #[inline]
        pub const fn new(value: T) -> Self {
            Self {
                raw: RawMutex::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex and returns its data. No locking is needed: owning the mutex proves
    /// no guard exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let mutex = gosync_mutex::Mutex::new(String::from("go"));
    /// mutex.lock().push_str("pher");
    /// assert_eq!(mutex.into_inner(), "gopher");
    /// ```
    #[inline]
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, blocking the current thread until it can, and returns a guard that
    /// unlocks when dropped.
    ///
    /// Not reentrant: locking a mutex this thread holds deadlocks, as in Go.
    ///
    /// # Examples
    ///
    /// ```
    /// let mutex = gosync_mutex::Mutex::new(1);
    /// *mutex.lock() += 1;
    /// assert_eq!(*mutex.lock(), 2);
    /// ```
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.raw.lock();
        // SAFETY: just locked.
        unsafe { MutexGuard::new(self) }
    }

    /// Locks the mutex if it is free now; never blocks. Go's `TryLock`.
    ///
    /// In starvation mode the lock is never free to newcomers, so this fails while threads are
    /// queued for a hand-off.
    ///
    /// # Examples
    ///
    /// ```
    /// let mutex = gosync_mutex::Mutex::new(());
    /// let guard = mutex.try_lock().expect("free");
    /// assert!(mutex.try_lock().is_none());
    /// drop(guard);
    /// assert!(mutex.try_lock().is_some());
    /// ```
    #[inline]
    #[must_use = "the mutex is locked only when this returns a guard"]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        // SAFETY: `try_lock` returned true: locked.
        self.raw
            .try_lock()
            .then(|| unsafe { MutexGuard::new(self) })
    }

    /// Locks the mutex, giving up after `timeout`.
    ///
    /// A zero timeout still locks a free mutex; a timeout too large to represent waits forever.
    /// The waiting thread sleeps until the mutex is handed to it, it wins the lock, or the time
    /// is up.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mutex = gosync_mutex::Mutex::new(());
    /// let guard = mutex.try_lock_for(Duration::from_secs(1)).expect("free");
    /// assert!(mutex.try_lock_for(Duration::from_millis(1)).is_none());
    /// drop(guard);
    /// ```
    #[inline]
    #[must_use = "the mutex is locked only when this returns a guard"]
    pub fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        // SAFETY: `try_lock_for` returned true: locked.
        self.raw
            .try_lock_for(timeout)
            .then(|| unsafe { MutexGuard::new(self) })
    }

    /// Locks the mutex, giving up at `deadline`.
    ///
    /// A deadline in the past still locks a free mutex, and otherwise returns `None` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let mutex = gosync_mutex::Mutex::new(());
    /// let guard = mutex.try_lock_until(Instant::now()).expect("free");
    /// assert!(mutex.try_lock_until(Instant::now() + Duration::from_millis(1)).is_none());
    /// drop(guard);
    /// ```
    #[inline]
    #[must_use = "the mutex is locked only when this returns a guard"]
    pub fn try_lock_until(&self, deadline: Instant) -> Option<MutexGuard<'_, T>> {
        // SAFETY: `try_lock_until` returned true: locked.
        self.raw
            .try_lock_until(deadline)
            .then(|| unsafe { MutexGuard::new(self) })
    }

    /// Locks the mutex, giving up when `ctx` is done (cancelled, or past its deadline).
    ///
    /// A context that is already done fails at once, even when the mutex is free (the
    /// cancellation came first, as in x/sync). The waiting thread sleeps until it gets the
    /// lock or the context's cancellation (or deadline) wakes it.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the lock is taken; nothing is held then.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_mutex::Mutex;
    /// use std::time::Duration;
    ///
    /// let mutex = Mutex::new(0);
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(60));
    /// *mutex.lock_ctx(&ctx).expect("free") += 1;
    ///
    /// let guard = mutex.lock();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
    /// assert_eq!(mutex.lock_ctx(&ctx).err(), Some(ContextError::DeadlineExceeded));
    /// drop(guard);
    /// ```
    #[inline]
    pub fn lock_ctx(&self, ctx: &Context) -> Result<MutexGuard<'_, T>, ContextError> {
        self.raw.lock_ctx(ctx)?;
        // SAFETY: `lock_ctx` returned `Ok`: locked.
        Ok(unsafe { MutexGuard::new(self) })
    }

    /// Whether the mutex is locked right now. Only a hint: it may change at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let mutex = gosync_mutex::Mutex::new(());
    /// let guard = mutex.lock();
    /// assert!(mutex.is_locked());
    /// drop(guard);
    /// assert!(!mutex.is_locked());
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// The data, through exclusive access: no locking is needed, since `&mut self` proves no
    /// guard exists.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut mutex = gosync_mutex::Mutex::new(1);
    /// *mutex.get_mut() = 2;
    /// assert_eq!(*mutex.lock(), 2);
    /// ```
    #[inline]
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }
}

impl<T: Default> Default for Mutex<T> {
    /// An unlocked mutex holding `T::default()`.
    #[inline]
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    /// An unlocked mutex holding `value`.
    #[inline]
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    /// Shows the data if the mutex is free (locking it briefly), `<locked>` otherwise; it never
    /// blocks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Some(guard) => d.field("data", &&*guard),
            None => d.field("data", &format_args!("<locked>")),
        };
        d.finish_non_exhaustive()
    }
}

/// The proof that a [`Mutex`] is locked, and the way to its data; unlocks when dropped.
///
/// Returned by [`Mutex::lock`] and its `try_` variants. It dereferences to the data. Dropping it
/// unlocks the mutex, also when the thread unwinds from a panic.
///
/// # Differences from Go
///
/// Go unlocks with an explicit `Unlock` (usually deferred) that any goroutine may call. Here the
/// guard's drop unlocks, and the guard stays on the thread that locked.
///
/// # Differences from std
///
/// No poisoning (see [`Mutex`]). [`MutexGuard::raw`] and [`MutexGuard::unlocked`] give
/// access to the lock itself, which a condition variable needs.
///
/// # Examples
///
/// ```
/// let mutex = gosync_mutex::Mutex::new(vec![1, 2]);
/// let mut guard = mutex.lock();
/// guard.push(3);
/// assert_eq!(*guard, [1, 2, 3]);
/// ```
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// `!Send`, as std's guard: the guard unlocks on the thread that locked.
    _not_send: PhantomData<*const ()>,
}

/// Sharing a guard shares `&T` only, so `T: Sync` is what it takes.
// SAFETY: through `&MutexGuard` one reaches only `&T` (via `Deref`), which is sound to share
// between threads exactly when `T: Sync`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// # Safety
    ///
    /// `mutex` is locked and the caller owns that locked state, which the guard takes over.
    #[inline]
    unsafe fn new(mutex: &'a Mutex<T>) -> Self {
        Self {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// The mutex this guard locks.
    ///
    /// An associated function (`MutexGuard::mutex(&guard)`), so as not to hide a method of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_mutex::{Mutex, MutexGuard};
    ///
    /// let mutex = Mutex::new(());
    /// let guard = mutex.lock();
    /// assert!(std::ptr::eq(MutexGuard::mutex(&guard), &mutex));
    /// ```
    #[inline]
    pub fn mutex(this: &Self) -> &'a Mutex<T> {
        this.mutex
    }

    /// The raw lock under this guard, held by it.
    ///
    /// For a condition variable, which keeps the guard (`&mut`, so the data stays out of reach)
    /// while it releases the lock with `unsafe { raw.unlock() }`, sleeps, and takes the lock back
    /// (by a [`RawMutex::TOKEN_HANDOFF`] hand-off or with [`RawMutex::lock`]) before the guard
    /// is used again. Whoever unlocks through this must relock before the guard is used or
    /// dropped: the guard assumes it holds the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_mutex::{Mutex, MutexGuard};
    ///
    /// let mutex = Mutex::new(0);
    /// let mut guard = mutex.lock();
    /// let raw = MutexGuard::raw(&guard);
    /// // SAFETY: the guard holds the lock; it is taken back before the guard is used again.
    /// unsafe { raw.unlock() };
    /// assert!(!mutex.is_locked());
    /// raw.lock();
    /// *guard += 1;
    /// ```
    #[inline]
    pub fn raw(this: &Self) -> &'a RawMutex {
        &this.mutex.raw
    }

    /// Unlocks the mutex while `f` runs, and locks it again before returning (also if `f`
    /// panics). The guard cannot be used meanwhile, since it is borrowed mutably.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_mutex::{Mutex, MutexGuard};
    ///
    /// let mutex = Mutex::new(0);
    /// let mut guard = mutex.lock();
    /// MutexGuard::unlocked(&mut guard, || {
    ///     // Others may lock it here.
    ///     *mutex.lock() += 1;
    /// });
    /// assert_eq!(*guard, 1);
    /// ```
    pub fn unlocked<U>(this: &mut Self, f: impl FnOnce() -> U) -> U {
        let raw = Self::raw(this);
        // SAFETY: the guard holds the lock; `unlocked` takes it back before returning or
        // unwinding, before the guard (borrowed mutably until then) can be used or dropped.
        let unlock = || unsafe { raw.unlock() };
        gosync_park::unlocked(unlock, || raw.lock(), f)
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so no other access to the data is in progress, and
        // the returned borrow ends before the guard (and the lock) goes.
        unsafe { &*self.mutex.data.ptr() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only borrow through the guard.
        unsafe { &mut *self.mutex.data.mut_ptr() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock (it was created locked, and `unlocked` relocks before
        // the guard can be touched again).
        unsafe { self.mutex.raw.unlock() };
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

#[cfg(not(gosync_loom))]
static_assertions::assert_eq_size!(Mutex<()>, u8);
static_assertions::assert_impl_all!(Mutex<std::cell::Cell<u8>>: Send, Sync);
static_assertions::assert_not_impl_any!(Mutex<std::rc::Rc<u8>>: Send, Sync);
static_assertions::assert_impl_all!(MutexGuard<'static, u8>: Sync);
static_assertions::assert_not_impl_any!(MutexGuard<'static, u8>: Send);
static_assertions::assert_not_impl_any!(MutexGuard<'static, std::cell::Cell<u8>>: Sync);
static_assertions::assert_impl_all!(RawMutex: Send, Sync);
