//! The state machine under [`Once`](crate::Once) and [`OnceCell`](crate::OnceCell): one word
//! that says whether the function has run or is running, with a bit for threads asleep on it.
//!
//! Callers that find a run under way sleep through gosync-park's queue keyed by the word's
//! address, with the shared protocol (`park_while`), so that `OnceCell`'s bounded waits can give
//! up at a deadline or a cancellation: a sleeper sets `PARKED` under the queue lock while the
//! run goes on, and the run that ends swaps the state (clearing `PARKED`) and then unparks
//! every sleeper on the key, taking the same lock, so no wake-up is lost. A sleeper that gives
//! up as the last one on the key clears `PARKED` under the lock.
//!
//! Notes about memory ordering: the thread that runs the function publishes its writes with the
//! `Release` swap in [`Completion::drop`]; every reader that sees `COMPLETE` does so with an
//! `Acquire` load (the done path, and the loads after each wait) and so sees those writes. The
//! `Acquire` on the exchange that starts a run pairs with the `Release` swap back to
//! `INCOMPLETE` of a run that failed or panicked, so a retrying thread sees the state that run
//! left. `PARKED` is set and cleared with `Relaxed` read-modify-writes under the queue lock
//! (gosync-park's `ParkedBits`) and orders nothing; the exchanges that start a run keep it.

use std::time::Instant;

use gosync_park::sync::{AtomicU32, Ordering};
use gosync_park::{deadline_passed, park_while, Cancellation, ParkOptions, ParkResult};

/// Nobody has run the function yet, or the last attempt failed (a `OnceCell` error or panic).
const INCOMPLETE: u32 = 0;
/// A thread is running the function.
const RUNNING: u32 = 1;
/// The function has run (for `Once`, possibly by panicking, which Go counts as done). Never
/// combined with `PARKED`: the swap that completes clears it.
pub(crate) const COMPLETE: u32 = 2;
/// The run state: one of the three above.
const RUN_STATE: u32 = 3;
/// At least one thread sleeps on the word's key (set and cleared under the queue lock).
const PARKED: u32 = 4;

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

    /// The parking key: the word's address.
    #[inline]
    fn key(&self) -> usize {
        &self.state as *const AtomicU32 as usize
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

    /// Whether a thread sleeps on the word (a test hook's answer).
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub(crate) fn has_sleepers(&self) -> bool {
        // Relaxed: a snapshot that orders nothing.
        self.state.load(Ordering::Relaxed) & PARKED != 0
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
    /// A wait behind another thread's run gives up at `deadline` or when `cancel` is done,
    /// without running `f`: then it returns `false`. Giving up looks at the word once more, so
    /// that a run which ended (but has not woken its sleepers yet) counts: `COMPLETE` is
    /// `true`, and a word left `INCOMPLETE` by a failed run is free for `f` to run (a timed
    /// wait) unless `cancel` is done. Otherwise it returns `true` when the word is `COMPLETE`,
    /// or right after this thread's own `f` returned `false`. Calling it from inside `f` on
    /// the same word deadlocks, as in Go.
    #[cold]
    pub(crate) fn call(
        &self,
        on_panic: OnPanic,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
        f: &mut dyn FnMut() -> bool,
    ) -> bool {
        // Acquire: pairs with the Release swap in `Completion::drop` (see the notes).
        let mut state = self.state.load(Ordering::Acquire);
        // Set once a wait has timed out or been cancelled: the next look at a run under way
        // gives up (under loom a timeout fires whatever the clock says).
        let mut gave_up = false;
        loop {
            match state & RUN_STATE {
                COMPLETE => return true,
                INCOMPLETE => {
                    if cancel.is_some_and(|cancel| cancel.is_cancelled()) {
                        return false;
                    }
                    // Acquire: pairs with the Release swap of an earlier failed run. (`state`
                    // has no `PARKED`: sleepers set it only while a run is under way, and the
                    // swap that ends the run clears it.)
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
                        word: self,
                        set_to: match on_panic {
                            OnPanic::Complete => COMPLETE,
                            OnPanic::Retry => INCOMPLETE,
                        },
                    };
                    completion.set_to = if f() { COMPLETE } else { INCOMPLETE };
                    return true;
                }
                _ => {
                    debug_assert_eq!(state & RUN_STATE, RUNNING);
                    if gave_up || deadline.is_some_and(deadline_passed) {
                        return false;
                    }
                    let options = ParkOptions {
                        deadline,
                        cancel,
                        ..ParkOptions::default()
                    };
                    let running = |now: u32| now & RUN_STATE == RUNNING;
                    match park_while(&self.state, self.key(), PARKED, running, options) {
                        ParkResult::Unparked(_) | ParkResult::Invalid => {}
                        ParkResult::TimedOut | ParkResult::Cancelled => gave_up = true,
                    }
                    // Acquire: pairs with the Release swap in `Completion::drop`.
                    state = self.state.load(Ordering::Acquire);
                }
            }
        }
    }
}

/// Ends a run: stores the outcome and wakes the sleepers, also when the function unwinds.
struct Completion<'a> {
    word: &'a RawOnce,
    set_to: u32,
}

impl Drop for Completion<'_> {
    fn drop(&mut self) {
        // Release: publishes the function's writes to the Acquire loads in `is_complete` and
        // `call` (see the notes). Clears `PARKED`: every sleeper is woken next, under the
        // queue lock that orders this swap against their `park_while`.
        if self.word.state.swap(self.set_to, Ordering::Release) & PARKED != 0 {
            gosync_park::unpark_all(self.word.key(), 0);
        }
    }
}

impl std::fmt::Debug for RawOnce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Relaxed: a snapshot for display only.
        let state = match self.state.load(Ordering::Relaxed) & RUN_STATE {
            INCOMPLETE => "incomplete",
            COMPLETE => "complete",
            _ => "running",
        };
        f.write_str(state)
    }
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use gosync_testkit::{join_within, spawn_with, wait_until, within};

    use super::*;

    /// A timed wait that times out after the run it waits for failed (the word free again,
    /// its sleepers not woken yet) runs its own function rather than giving up on a free word.
    #[test]
    fn a_timeout_after_the_run_failed_runs_the_function() {
        within(|| {
            let word = Arc::new(RawOnce::new());
            // A run under way in some other thread; it never wakes anyone here.
            word.state.store(RUNNING, Ordering::Relaxed);
            let mut timeout = Duration::from_millis(10);
            loop {
                let waiter = spawn_with(&word, move |word| {
                    let mut ran = false;
                    let deadline = Instant::now() + timeout;
                    let done = word.call(OnPanic::Retry, Some(deadline), None, &mut || {
                        ran = true;
                        true
                    });
                    (done, ran)
                });
                wait_until(|| {
                    word.state.load(Ordering::Relaxed) & PARKED != 0 || waiter.is_finished()
                });
                // The run fails while the waiter still sleeps (`PARKED` is cleared before a
                // wait that timed out looks at the word again).
                let failed = word.state.compare_exchange(
                    RUNNING | PARKED,
                    INCOMPLETE,
                    Ordering::Release,
                    Ordering::Relaxed,
                );
                if failed.is_ok() {
                    assert_eq!(join_within(waiter), (true, true), "ran on the free word");
                    break;
                }
                // Timed out before that, with the run still going: it gave up, rightly. A
                // busy machine; again with longer.
                assert_eq!(join_within(waiter), (false, false));
                timeout *= 2;
            }
            assert!(word.is_complete());
        });
    }
}
