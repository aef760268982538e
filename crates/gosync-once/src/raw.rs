//! The state machine under [`Once`](crate::Once) and [`OnceCell`](crate::OnceCell): one futex
//! word that says whether the function has run, is running, or is running with threads asleep
//! waiting for it.
//!
//! Notes about memory ordering: the thread that runs the function publishes its writes with the
//! `Release` swap to `COMPLETE` in [`Completion::drop`]; every reader that sees `COMPLETE` does so
//! with an `Acquire` load (the done path, and the loads after each wait) and so sees those writes.
//! The `Acquire` on the `INCOMPLETE -> RUNNING` exchange pairs with the `Release` swap back to
//! `INCOMPLETE` of a run that failed or panicked, so a retrying thread sees the state that run
//! left. `RUNNING -> QUEUED` only announces a sleeper and orders nothing.

use gosync_park::sync::{AtomicU32, Ordering};

/// Nobody has run the function yet, or the last attempt failed (a `OnceCell` error or panic).
const INCOMPLETE: u32 = 0;
/// A thread is running the function; nobody sleeps on the word.
const RUNNING: u32 = 1;
/// A thread is running the function and at least one thread sleeps on the word.
const QUEUED: u32 = 2;
/// The function has run (for `Once`, possibly by panicking, which Go counts as done).
pub(crate) const COMPLETE: u32 = 3;

/// The state a run leaves behind when its function panics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnPanic {
    /// Go's `Once`: a panicking function counts as done.
    Complete,
    /// std's `OnceLock`: the cell stays empty and a waiting thread takes over.
    Retry,
}

/// The once word. See the constants above for its states.
pub(crate) struct RawOnce {
    state: AtomicU32,
}

impl RawOnce {
    gosync_park::const_unless_loom! {
        pub(crate) const fn new() -> Self {
            Self {
                state: AtomicU32::new(INCOMPLETE),
            }
        }
    }

    gosync_park::const_unless_loom! {
        /// A word that starts out complete (a `OnceCell` made from a value).
        pub(crate) const fn new_complete() -> Self {
            Self {
                state: AtomicU32::new(COMPLETE),
            }
        }
    }

    /// Whether the function has run: the done path, one load.
    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        // Acquire: pairs with the Release swap in `Completion::drop`, so the caller sees every
        // write the function made.
        self.state.load(Ordering::Acquire) == COMPLETE
    }

    /// Whether the function has run, through exclusive access.
    #[inline]
    pub(crate) fn is_complete_mut(&mut self) -> bool {
        // Relaxed: `&mut self` means no other thread can touch the word now; whatever handed us
        // exclusive access (a join, a move) already ordered the earlier writes.
        self.state.load(Ordering::Relaxed) == COMPLETE
    }

    /// Marks the word as never run, through exclusive access (`OnceCell::take`).
    #[inline]
    pub(crate) fn reset_mut(&mut self) {
        // Relaxed: exclusive access, as in `is_complete_mut`.
        self.state.store(INCOMPLETE, Ordering::Relaxed);
    }

    /// Runs `f` unless the function has run already, or waits for the thread running it.
    ///
    /// `f` returns whether it completed: `false` (a `OnceCell` init error) leaves the word
    /// `INCOMPLETE` so that the next caller tries again. If `f` panics, the word becomes what
    /// `on_panic` says and the panic continues. Every thread that was asleep is woken.
    ///
    /// Returns when the word is `COMPLETE`, or right after this thread's own `f` returned `false`.
    /// Calling it from inside `f` on the same word deadlocks, as in Go.
    #[cold]
    pub(crate) fn call(&self, on_panic: OnPanic, f: &mut dyn FnMut() -> bool) {
        // Acquire: pairs with the Release swap in `Completion::drop` (see the notes).
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            match state {
                COMPLETE => return,
                INCOMPLETE => {
                    // Acquire: pairs with the Release swap of an earlier failed run.
                    if let Err(now) = self.state.compare_exchange_weak(
                        INCOMPLETE,
                        RUNNING,
                        Ordering::Acquire,
                        Ordering::Acquire,
                    ) {
                        state = now;
                        continue;
                    }
                    let mut completion = Completion {
                        state: &self.state,
                        set_to: match on_panic {
                            OnPanic::Complete => COMPLETE,
                            OnPanic::Retry => INCOMPLETE,
                        },
                    };
                    completion.set_to = if f() { COMPLETE } else { INCOMPLETE };
                    return;
                }
                RUNNING => {
                    // Relaxed: only announces a sleeper; the Acquire load after the wait orders
                    // the data. On failure, Acquire as for the initial load.
                    if let Err(now) = self.state.compare_exchange_weak(
                        RUNNING,
                        QUEUED,
                        Ordering::Relaxed,
                        Ordering::Acquire,
                    ) {
                        state = now;
                        continue;
                    }
                    state = QUEUED;
                }
                _ => {
                    debug_assert_eq!(state, QUEUED);
                    gosync_park::wait(&self.state, QUEUED);
                    // Acquire: pairs with the Release swap in `Completion::drop`.
                    state = self.state.load(Ordering::Acquire);
                }
            }
        }
    }
}

/// Ends a run: stores the outcome and wakes the sleepers, also when the function unwinds.
struct Completion<'a> {
    state: &'a AtomicU32,
    set_to: u32,
}

impl Drop for Completion<'_> {
    fn drop(&mut self) {
        // Release: publishes the function's writes to the Acquire loads in `is_complete` and
        // `call` (see the notes).
        if self.state.swap(self.set_to, Ordering::Release) == QUEUED {
            gosync_park::wake_all(self.state);
        }
    }
}

impl std::fmt::Debug for RawOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Relaxed: a snapshot for display only.
        let state = match self.state.load(Ordering::Relaxed) {
            INCOMPLETE => "incomplete",
            COMPLETE => "complete",
            _ => "running",
        };
        f.write_str(state)
    }
}
