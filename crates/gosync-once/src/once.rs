//! [`Once`]: Go's `sync.Once`.

use std::fmt;

use crate::raw::{OnPanic, RawOnce};

/// Runs a function exactly once, however many threads call it: Go's `sync.Once`.
///
/// The first [`call_once`](Self::call_once) runs its function; every other call, concurrent or
/// later, returns without running its own. Concurrent callers wait (asleep, not spinning) until
/// the first function has returned, and then see everything it wrote. Once done, a call costs one
/// atomic load.
///
/// # Differences from Go
///
/// - `Do(f)` is [`call_once`](Self::call_once); [`is_done`](Self::is_done) has no Go analog.
/// - As in Go, if the function panics the `Once` counts as done: the panic goes on in the thread
///   that ran it, and later calls return at once without running anything.
/// - As in Go, calling `call_once` on the same `Once` from inside its own function deadlocks.
///
/// # Differences from std
///
/// [`std::sync::Once`] is poisoned by a panicking function (later `call_once` calls panic);
/// here a panic counts as done, as in Go. There is no `call_once_force` and no `OnceState`.
///
/// # Examples
///
/// ```
/// use gosync_once::Once;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static INIT: Once = Once::new();
/// static RUNS: AtomicUsize = AtomicUsize::new(0);
///
/// std::thread::scope(|s| {
///     for _ in 0..4 {
///         s.spawn(|| INIT.call_once(|| { RUNS.fetch_add(1, Ordering::Relaxed); }));
///     }
/// });
/// assert_eq!(RUNS.load(Ordering::Relaxed), 1);
/// assert!(INIT.is_done());
/// ```
pub struct Once {
    raw: RawOnce,
}

impl Once {
    gosync_park::const_unless_loom! {
        /// Creates a `Once` whose function has not run yet (Go's zero value).
        ///
        /// # Examples
        ///
        /// ```
        /// static ONCE: gosync_once::Once = gosync_once::Once::new();
        /// assert!(!ONCE.is_done());
        /// ```
        #[must_use]
        pub const fn new() -> Self {
            Self {
                raw: RawOnce::new(),
            }
        }
    }

    /// Runs `f` if no function has run on this `Once` yet; otherwise returns without running it,
    /// after waiting for a concurrent first call to finish. Go's `Once.Do`.
    ///
    /// When this returns (normally), the first function has returned or panicked, and all its
    /// writes are visible to this thread.
    ///
    /// # Panics
    ///
    /// If `f` panics, the panic continues in this thread, and the `Once` counts as done (Go's
    /// rule): other callers stop waiting and no function runs again.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_once::Once;
    ///
    /// let once = Once::new();
    /// let mut runs = 0;
    /// once.call_once(|| runs += 1);
    /// once.call_once(|| runs += 1);
    /// assert_eq!(runs, 1);
    ///
    /// // A panicking function counts as done.
    /// let once = Once::new();
    /// let result = std::panic::catch_unwind(|| once.call_once(|| panic!("boom")));
    /// assert!(result.is_err());
    /// assert!(once.is_done());
    /// once.call_once(|| unreachable!());
    /// ```
    #[inline]
    pub fn call_once(&self, f: impl FnOnce()) {
        if self.raw.is_complete() {
            return;
        }
        let mut f = Some(f);
        self.raw.call(OnPanic::Complete, None, None, &mut || {
            (f.take().expect("the once function runs at most once"))();
            true
        });
    }

    /// Whether a function has run (or panicked) on this `Once`. When `true`, its writes are
    /// visible to this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let once = gosync_once::Once::new();
    /// assert!(!once.is_done());
    /// once.call_once(|| {});
    /// assert!(once.is_done());
    /// ```
    #[inline]
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.raw.is_complete()
    }
}

impl Default for Once {
    /// Same as [`Once::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Once {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Once").field("state", &self.raw).finish()
    }
}
