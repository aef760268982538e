//! The loom/std facade: every gosync crate takes its atomics, cells, threads and spin hints
//! from here, so one `--cfg gosync_loom` model-checks all of them, down to the park queues.
//!
//! Under `cfg(gosync_loom)` these are `loom`'s types; otherwise they are `std`'s, at no cost.

/// Atomics, `Arc` and a plain bookkeeping lock.
///
/// # Examples
///
/// ```
/// use gosync_park::sync::{Arc, AtomicU32, Ordering};
///
/// let word = Arc::new(AtomicU32::new(0));
/// word.store(1, Ordering::Release);
/// assert_eq!(word.load(Ordering::Acquire), 1);
/// ```
pub mod sync {
    #[cfg(gosync_loom)]
    pub use loom::sync::{
        atomic::{
            fence, AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicU8,
            AtomicUsize, Ordering,
        },
        Arc,
    };
    #[cfg(not(gosync_loom))]
    pub use std::sync::{
        atomic::{
            fence, AtomicBool, AtomicI64, AtomicIsize, AtomicPtr, AtomicU32, AtomicU64, AtomicU8,
            AtomicUsize, Ordering,
        },
        Arc,
    };

    #[cfg(gosync_loom)]
    type InnerMutex<T> = loom::sync::Mutex<T>;
    #[cfg(gosync_loom)]
    type InnerGuard<'a, T> = loom::sync::MutexGuard<'a, T>;
    #[cfg(not(gosync_loom))]
    type InnerMutex<T> = std::sync::Mutex<T>;
    #[cfg(not(gosync_loom))]
    type InnerGuard<'a, T> = std::sync::MutexGuard<'a, T>;

    /// A plain lock for short bookkeeping (queue buckets, lists of wakers), never held while a
    /// thread sleeps. It ignores poisoning: every critical section that uses it leaves its data
    /// consistent before anything in it can panic.
    ///
    /// This is not the user-facing `gosync::Mutex`; it is `std::sync::Mutex` (loom's under loom),
    /// which the park layer itself sits on.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_park::sync::BookkeepingLock;
    ///
    /// let wakers = BookkeepingLock::new(Vec::<u32>::new());
    /// wakers.lock().push(7);
    /// assert_eq!(*wakers.lock(), [7]);
    /// ```
    pub struct BookkeepingLock<T>(InnerMutex<T>);

    /// The guard of a [`BookkeepingLock`].
    pub type BookkeepingGuard<'a, T> = InnerGuard<'a, T>;

    impl<T> std::fmt::Debug for BookkeepingLock<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("BookkeepingLock { .. }")
        }
    }

    impl<T: Default> Default for BookkeepingLock<T> {
        fn default() -> Self {
            Self::new(T::default())
        }
    }

    impl<T> BookkeepingLock<T> {
        crate::const_unless_loom! {
            /// Creates the lock. See the example on [`BookkeepingLock`].
            pub const fn new(value: T) -> Self {
                Self(InnerMutex::new(value))
            }
        }

        /// Locks it, ignoring poison (see the type's docs). See the example on
        /// [`BookkeepingLock`].
        #[inline]
        pub fn lock(&self) -> BookkeepingGuard<'_, T> {
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

/// Threads, as `std::thread` (loom's under loom).
///
/// # Examples
///
/// ```
/// let handle = gosync_park::thread::spawn(|| 6 * 7);
/// assert_eq!(handle.join().unwrap(), 42);
/// ```
pub mod thread {
    #[cfg(gosync_loom)]
    pub use loom::thread::{current, park, spawn, yield_now, JoinHandle, Thread};
    #[cfg(not(gosync_loom))]
    pub use std::thread::{current, park, spawn, yield_now, JoinHandle, Thread};
}

/// `spin_loop`, which under loom yields so that the model makes progress.
///
/// # Examples
///
/// ```
/// gosync_park::hint::spin_loop();
/// ```
pub mod hint {
    #[cfg(gosync_loom)]
    pub use loom::hint::spin_loop;
    #[cfg(not(gosync_loom))]
    pub use std::hint::spin_loop;
}

/// An `UnsafeCell` whose accesses loom can check; see [`cell::UnsafeCell`].
pub mod cell {
    /// `std::cell::UnsafeCell` with an access API loom can track: [`ptr`](Self::ptr) for shared
    /// reads and [`mut_ptr`](Self::mut_ptr) for exclusive writes. Under loom each call records an
    /// access at that moment, so a lock whose orderings do not order its critical sections is
    /// reported as a data race.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_park::cell::UnsafeCell;
    ///
    /// let mut cell = UnsafeCell::new(1);
    /// // SAFETY: no other access to the cell exists.
    /// unsafe { *cell.mut_ptr() += 1 };
    /// // SAFETY: no write is in progress.
    /// assert_eq!(unsafe { *cell.ptr() }, 2);
    /// *cell.get_mut() += 1;
    /// assert_eq!(cell.into_inner(), 3);
    /// ```
    #[derive(Default)]
    #[repr(transparent)]
    pub struct UnsafeCell<T: ?Sized>(InnerCell<T>);

    #[cfg(gosync_loom)]
    type InnerCell<T> = loom::cell::UnsafeCell<T>;
    #[cfg(not(gosync_loom))]
    type InnerCell<T> = std::cell::UnsafeCell<T>;

    impl<T: ?Sized> std::fmt::Debug for UnsafeCell<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("UnsafeCell { .. }")
        }
    }

    impl<T> UnsafeCell<T> {
        crate::const_unless_loom! {
            /// Wraps `value`. See the example on [`UnsafeCell`].
            #[inline]
            pub const fn new(value: T) -> Self {
                Self(InnerCell::new(value))
            }
        }

        /// Unwraps the value. See the example on [`UnsafeCell`].
        #[inline]
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    impl<T: ?Sized> UnsafeCell<T> {
        /// A pointer for reading. The caller must ensure no write happens concurrently. See the
        /// example on [`UnsafeCell`].
        #[inline]
        pub fn ptr(&self) -> *const T {
            #[cfg(gosync_loom)]
            return self.0.with(|p| p);
            #[cfg(not(gosync_loom))]
            return self.0.get();
        }

        /// A pointer for writing. The caller must ensure no other access happens concurrently.
        /// See the example on [`UnsafeCell`].
        #[inline]
        pub fn mut_ptr(&self) -> *mut T {
            #[cfg(gosync_loom)]
            return self.0.with_mut(|p| p);
            #[cfg(not(gosync_loom))]
            return self.0.get();
        }

        /// The value, through exclusive access. See the example on [`UnsafeCell`].
        #[inline]
        pub fn get_mut(&mut self) -> &mut T {
            // SAFETY: `&mut self` proves no other access to the cell exists.
            unsafe { &mut *self.mut_ptr() }
        }
    }
}

/// The two ways a parked thread sleeps.
///
/// - A [`Parker`](parker::Parker): a handle that wakes one thread, with `std::thread`'s park/unpark token
///   semantics (an unpark before the sleep makes the sleep return at once), and timeouts. It is
///   the thread's own `std::thread::Thread`; under loom, a `Mutex<bool>` + `Condvar` pair made
///   per wait: loom's own `Thread::unpark` also wakes a thread blocked on a lock or a join, which
///   a stray unpark after a race would do.
/// - A futex on a [`SleepWord`](parker::SleepWord) of the waiter
///   ([`sleep_while`](parker::sleep_while), [`wake_sleeper`](parker::wake_sleeper)): no timeout,
///   but the waker needs only the word's address and keeps nothing of the thread alive. Loom
///   cannot model a futex; under loom each `SleepWord` carries its own stand-in next to the
///   word, a `Mutex<bool>` ("woken") + `Condvar`, on which the sleeper blocks until the waker
///   sets the flag. It is per word, never a process-wide loom object: one of those, standing in
///   for the kernel's futex table, broke loom's own bookkeeping when wakes ran late in an
///   execution. It blocks rather than spins: with two sleepers polling a flag and yielding, loom
///   can schedule the two in turn forever while their waker never runs, and reports that as a
///   model exceeding its branch limit.
///
/// Notes about memory ordering: under loom the stand-in's lock orders the waker's change of the
/// word before the sleeper's return, as the kernel's futex lock does.
pub(crate) mod parker {
    use std::ops::Deref;
    use std::time::Duration;

    use super::sync::AtomicU32;

    /// A waiter's state word that it may sleep on with [`sleep_while`]. It dereferences to the
    /// `AtomicU32`; normally it is nothing more (same layout). Under loom it also holds the
    /// stand-in for the futex (see the module docs).
    #[cfg_attr(not(gosync_loom), repr(transparent))]
    pub(crate) struct SleepWord {
        word: AtomicU32,
        /// "Woken": set once, by the [`wake_sleeper`] that ends the sleep, and never cleared,
        /// so that a later `sleep_while` returns at once, as a futex does on a changed word.
        #[cfg(gosync_loom)]
        futex: (loom::sync::Mutex<bool>, loom::sync::Condvar),
    }

    impl SleepWord {
        #[inline]
        pub(crate) fn new(value: u32) -> Self {
            Self {
                word: AtomicU32::new(value),
                #[cfg(gosync_loom)]
                futex: Default::default(),
            }
        }
    }

    impl Deref for SleepWord {
        type Target = AtomicU32;

        #[inline]
        fn deref(&self) -> &AtomicU32 {
            &self.word
        }
    }

    /// Sleeps while `word` holds `expected`, checked atomically with going to sleep: a wake
    /// (see [`wake_sleeper`]) after a change of the word is never lost. May return spuriously;
    /// callers re-check.
    ///
    /// The caller stored `expected` itself, and whoever changes the word from `expected` calls
    /// [`wake_sleeper`] afterwards: under loom only that wake ends the sleep (the word is not
    /// read), so that the sleeper is still here when the waker reaches its stand-in.
    #[inline]
    pub(crate) fn sleep_while(word: &SleepWord, expected: u32) {
        #[cfg(not(gosync_loom))]
        atomic_wait::wait(&word.word, expected);
        #[cfg(gosync_loom)]
        {
            let _ = expected;
            let (lock, condvar) = &word.futex;
            let mut woken = lock.lock().unwrap();
            while !*woken {
                woken = condvar.wait(woken).unwrap();
            }
        }
    }

    /// Wakes the thread sleeping on `word` in [`sleep_while`], if any. The caller has changed
    /// the word first, from the `expected` the sleeper stored. Normally the pointer may dangle
    /// (the sleeper may have seen the change and left): it is only an address to the futex,
    /// never read.
    ///
    /// # Safety
    ///
    /// Under loom the stand-in is reached through the pointer, so the caller must have seen the
    /// sleeper's `expected` in its change of the word: the sleeper is then in (or on its way
    /// to) [`sleep_while`], which it leaves only after this wake has set the flag and released
    /// the stand-in's lock, the last thing the wake does. Normally there is no requirement.
    #[inline]
    pub(crate) unsafe fn wake_sleeper(word: *const SleepWord) {
        #[cfg(not(gosync_loom))]
        atomic_wait::wake_one(word.cast::<AtomicU32>());
        #[cfg(gosync_loom)]
        {
            // SAFETY: by the caller's contract the sleeper stays in `sleep_while`, its word
            // alive, until this wake releases the lock.
            let (lock, condvar) = unsafe { &(*word).futex };
            let mut woken = lock.lock().unwrap();
            *woken = true;
            condvar.notify_one();
            drop(woken);
        }
    }

    /// Wakes one thread; see the module docs.
    #[derive(Clone, Debug)]
    pub(crate) struct Parker(
        #[cfg(not(gosync_loom))] std::thread::Thread,
        #[cfg(gosync_loom)] loom::sync::Arc<(loom::sync::Mutex<bool>, loom::sync::Condvar)>,
    );

    impl Parker {
        /// A parker for the calling thread, to hand to whoever will wake it.
        #[inline]
        pub(crate) fn for_current_thread() -> Self {
            #[cfg(not(gosync_loom))]
            return Self(std::thread::current());
            #[cfg(gosync_loom)]
            return Self(loom::sync::Arc::new(Default::default()));
        }

        /// Makes the token available and wakes the thread if it sleeps.
        #[inline]
        pub(crate) fn unpark(&self) {
            #[cfg(not(gosync_loom))]
            self.0.unpark();
            #[cfg(gosync_loom)]
            {
                let (token, condvar) = &*self.0;
                *token.lock().unwrap() = true;
                condvar.notify_one();
            }
        }

        /// Called by the thread this parker belongs to: sleeps until the token is available
        /// (consuming it) or `timeout` (`None`: no limit) has passed. May return spuriously;
        /// callers re-check.
        #[inline]
        pub(crate) fn sleep_for(&self, timeout: Option<Duration>) {
            #[cfg(not(gosync_loom))]
            match timeout {
                None => std::thread::park(),
                Some(timeout) => std::thread::park_timeout(timeout),
            }
            #[cfg(gosync_loom)]
            {
                let (token, condvar) = &*self.0;
                let mut available = token.lock().unwrap();
                // Under loom a deadline has always passed (see `time`): only untimed sleeps wait.
                while !*available && timeout.is_none() {
                    available = condvar.wait(available).unwrap();
                }
                *available = false;
            }
        }
    }
}
