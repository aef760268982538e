//! Tasks and their panics: [`WaitGroup::go`], [`WaitGroup::done_guard`] (Go's
//! `defer wg.Done()`), and how the panics of `go` tasks reach the waiter ([`GoPanics`]).
//!
//! Notes about memory ordering: the `PANICKED` flag pairs a Release `fetch_or` (after the
//! payload is stored under the `panics` lock) with the Acquire `fetch_and` of the waiter that
//! takes it.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::Arc;

use gosync_park::sync::Ordering;

use crate::waitgroup::PANICKED;
use crate::WaitGroup;

impl WaitGroup {
    /// Re-raises a stored task panic, if there is one and no other waiter took it.
    #[inline]
    pub(crate) fn take_panic(&self) {
        // Relaxed: a hint; the Acquire `fetch_and` below decides.
        if self.state.load(Ordering::Relaxed) & PANICKED != 0 {
            self.rethrow();
        }
    }

    #[cold]
    fn rethrow(&self) {
        // Acquire: pairs with the Release `fetch_or` in `store_panic`, so the payload stored
        // before it is in the slot.
        if self.state.fetch_and(!PANICKED, Ordering::Acquire) & PANICKED != 0 {
            let panics = self.panics.lock().take();
            match panics {
                Some(GoPanics { first, count: 1 }) => panic::resume_unwind(first),
                Some(panics) => panic::resume_unwind(Box::new(panics)),
                None => {}
            }
        }
    }

    /// Keeps a task's panic for the next wait: the first one's payload, and a count of them all.
    #[cold]
    fn store_panic(&self, payload: Box<dyn Any + Send>) {
        {
            let mut slot = self.panics.lock();
            match &mut *slot {
                Some(panics) => {
                    panics.count += 1;
                    return;
                }
                None => {
                    *slot = Some(GoPanics {
                        first: payload,
                        count: 1,
                    })
                }
            }
        }
        // Release: publishes the slot's new contents to the Acquire `fetch_and` in `rethrow`.
        self.state.fetch_or(PANICKED, Ordering::Release);
    }

    /// Runs `f` on a new thread as one more task of this group: Go's `WaitGroup.Go`.
    ///
    /// The counter is raised before the thread starts and lowered when `f` returns, also when
    /// it panics; the panic is then kept and re-raised by the next wait that sees the counter at
    /// zero (any of [`wait`](Self::wait), [`wait_for`](Self::wait_for),
    /// [`wait_until`](Self::wait_until), [`wait_ctx`](Self::wait_ctx)), once.
    ///
    /// When one task panicked, the wait re-raises that panic's own payload. When several did
    /// before a wait took them, none is dropped silently: the wait re-raises a [`GoPanics`]
    /// carrying the first payload and how many tasks panicked.
    ///
    /// # Panics
    ///
    /// As [`add`](Self::add); and if the thread cannot be spawned (the counter is lowered again
    /// first).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_waitgroup::WaitGroup;
    /// use std::sync::Arc;
    ///
    /// let wg = Arc::new(WaitGroup::new());
    /// wg.go(|| panic!("task failed"));
    /// let caught = std::panic::catch_unwind(|| wg.wait());
    /// assert!(caught.is_err());
    /// wg.wait(); // handed over once: this one returns
    /// ```
    #[track_caller]
    pub fn go<F: FnOnce() + Send + 'static>(self: &Arc<Self>, f: F) {
        self.add(1);
        let wg = Arc::clone(self);
        let task = move || {
            let _done = wg.done_guard();
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
                wg.store_panic(payload);
            }
        };
        let spawn = panic::catch_unwind(AssertUnwindSafe(|| gosync_park::thread::spawn(task)));
        if let Err(payload) = spawn {
            // The task never started: take back its count before passing the panic on.
            self.done();
            panic::resume_unwind(payload);
        }
    }

    /// A guard that calls [`done`](Self::done) when dropped: Go's `defer wg.Done()`, for a
    /// thread the caller starts itself after an [`add`](Self::add).
    ///
    /// The guard calls `done` also when the thread unwinds from a panic, so a waiter is never
    /// left waiting for a task that failed. (Unlike [`go`](Self::go), the panic is not carried
    /// to the waiter: the thread's own `JoinHandle` has it.)
    ///
    /// # Panics
    ///
    /// On drop, `sync: negative WaitGroup counter` if the counter is zero (a `done` without its
    /// `add`), naming the line that made the guard (a drop has no caller to point at), except
    /// while the thread is already panicking: then the counter is left as it
    /// is, since a second panic would abort the process.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_waitgroup::WaitGroup;
    /// use std::sync::Arc;
    ///
    /// let wg = Arc::new(WaitGroup::new());
    /// let workers: Vec<_> = (0..3)
    ///     .map(|i| {
    ///         wg.add(1);
    ///         let wg = Arc::clone(&wg);
    ///         std::thread::spawn(move || {
    ///             let _done = wg.done_guard(); // defer wg.Done()
    ///             if i == 1 {
    ///                 panic!("worker {i} failed");
    ///             }
    ///         })
    ///     })
    ///     .collect();
    /// wg.wait(); // returns although a worker panicked
    /// let failed = workers.into_iter().map(|w| w.join().is_err());
    /// assert_eq!(failed.filter(|&failed| failed).count(), 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn done_guard(&self) -> DoneGuard<'_> {
        DoneGuard {
            wg: self,
            made_at: Location::caller(),
        }
    }
}

/// Calls [`WaitGroup::done`] when dropped, also during a panic: Go's `defer wg.Done()`. Made by
/// [`WaitGroup::done_guard`], which has the details and an example.
#[must_use = "dropping the guard at once calls done at once"]
pub struct DoneGuard<'a> {
    wg: &'a WaitGroup,
    /// Where the guard was made, for the misuse panic of its drop.
    made_at: &'static Location<'static>,
}

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        if let Err(message) = self.wg.try_apply(-1) {
            // A second panic while unwinding would abort the process; the counter is unchanged.
            if !std::thread::panicking() {
                panic!("{message} (the DoneGuard made at {})", self.made_at);
            }
        }
    }
}

impl fmt::Debug for DoneGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DoneGuard").field("wg", self.wg).finish()
    }
}

/// What a wait re-raises when several tasks started by [`WaitGroup::go`] panicked before it:
/// the first panic's payload and how many panicked in all. (A single panic is re-raised with its
/// own payload.)
///
/// # Examples
///
/// ```
/// use gosync_waitgroup::{GoPanics, WaitGroup};
/// use std::sync::Arc;
///
/// let wg = Arc::new(WaitGroup::new());
/// for i in 0..3 {
///     wg.go(move || panic!("task {i} failed"));
/// }
/// let caught = std::panic::catch_unwind(|| wg.wait()).unwrap_err();
/// let panics = caught.downcast::<GoPanics>().expect("three tasks panicked");
/// assert_eq!(panics.count(), 3);
/// assert!(panics.to_string().starts_with("3 tasks started by WaitGroup::go panicked"));
/// ```
pub struct GoPanics {
    first: Box<dyn Any + Send>,
    count: usize,
}

impl GoPanics {
    /// How many tasks panicked (at least 2). See the example on [`GoPanics`].
    #[must_use]
    pub fn count(&self) -> usize {
        self.count
    }

    /// The payload of the first task that panicked, as `catch_unwind` would have returned it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use gosync_waitgroup::{GoPanics, WaitGroup};
    /// # use std::sync::Arc;
    /// let wg = Arc::new(WaitGroup::new());
    /// wg.go(|| panic!("first"));
    /// wg.go(|| panic!("second"));
    /// let caught = std::panic::catch_unwind(|| wg.wait()).unwrap_err();
    /// let first = caught.downcast::<GoPanics>().unwrap().into_first();
    /// let message = first.downcast_ref::<&str>().unwrap();
    /// assert!(["first", "second"].contains(message));
    /// ```
    #[must_use]
    pub fn into_first(self) -> Box<dyn Any + Send> {
        self.first
    }

    /// The first panic's message, if its payload is a string (as `panic!` makes it).
    fn first_message(&self) -> Option<&str> {
        let first = &*self.first;
        first
            .downcast_ref::<&'static str>()
            .copied()
            .or_else(|| first.downcast_ref::<String>().map(String::as_str))
    }
}

impl fmt::Debug for GoPanics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoPanics")
            .field("first", &self.first_message())
            .field("count", &self.count)
            .finish()
    }
}

impl fmt::Display for GoPanics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} tasks started by WaitGroup::go panicked", self.count)?;
        match self.first_message() {
            Some(message) => write!(f, "; the first: {message}"),
            None => Ok(()),
        }
    }
}

static_assertions::assert_impl_all!(DoneGuard<'static>: Send, Sync, fmt::Debug);
static_assertions::assert_impl_all!(GoPanics: Send, fmt::Debug, fmt::Display);
static_assertions::assert_not_impl_any!(GoPanics: Sync);
