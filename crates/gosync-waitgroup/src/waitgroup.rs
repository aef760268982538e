//! The counter, its state word and the waits.
//!
//! Notes about memory ordering: every change of the counter (`add`, `done`) is a Release
//! compare-exchange, checked before it is made (so no thread ever sees an invalid counter), and
//! every other change of the state word is a read-modify-write too, so each `done` heads a
//! release sequence that runs through all later changes. A waiter's Acquire load that sees the
//! counter at zero therefore synchronizes with every `done` (and sees every write a task made
//! before its `done`). The flag and generation updates order nothing of their own: the queue's
//! lock orders the check-then-sleep against the release (see `wait_released`). The `PANICKED`
//! flag is argued in `tasks.rs`.

use std::fmt;
use std::panic;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};

use gosync_park::sync::{AtomicU64, BookkeepingLock, Ordering};
use gosync_park::{
    cancelled_error, deadline_passed, park_while, Cancellation, ParkOptions, ParkResult,
};

use crate::GoPanics;

/// A thread is parked on the state's address, or has announced it is about to park.
const WAITERS: u64 = 1;
/// A task started by `go` panicked; its payload waits in `WaitGroup::panics`.
pub(crate) const PANICKED: u64 = 1 << 1;
/// One generation: added each time the counter reaches zero with waiters, which releases them.
const GENERATION_ONE: u64 = 1 << 2;
/// The generation's bits (30, wrapping).
const GENERATION_MASK: u64 = 0xFFFF_FFFC;
/// Where the counter (an `i32`, as Go's) starts.
const COUNTER_SHIFT: u32 = 32;

/// The counter in a state word.
#[inline]
fn counter(state: u64) -> i32 {
    (state >> COUNTER_SHIFT) as u32 as i32
}

/// `delta` placed in the counter's bits, for a wrapping add to the state word.
#[inline]
fn counter_bits(delta: i32) -> u64 {
    u64::from(delta as u32) << COUNTER_SHIFT
}

/// Waits for a collection of tasks to finish: Go's `sync.WaitGroup`.
///
/// The counter says how many tasks are outstanding: [`add`](Self::add) raises it before tasks
/// start, each task calls [`done`](Self::done) when it finishes, and [`wait`](Self::wait)
/// blocks until the counter is zero. Everything a task wrote before its `done` is visible to
/// the thread that returns from `wait`. [`go`](Self::go) does all three steps for a task run on
/// a new thread.
///
/// `done` is one compare-exchange when nobody waits; waiters sleep in gosync's parking queues
/// and are woken by the `done` that brings the counter to zero.
///
/// # Differences from Go
///
/// - Extra waits: [`wait_for`](Self::wait_for) and [`wait_until`](Self::wait_until) (a
///   timeout or deadline) and [`wait_ctx`](Self::wait_ctx) (a `Context`), and
///   [`count`](Self::count).
/// - [`done_guard`](Self::done_guard) is `defer wg.Done()` as a value.
/// - A misusing call panics without changing the counter, so other threads' calls are never
///   disturbed by it (Go's may see the bad counter before its panic).
/// - [`go`](Self::go) takes `self: &Arc<Self>`, since the task's thread must keep the group
///   alive; a panicking task's panic is re-raised by the next `wait` instead of ending the
///   process (a Rust thread's panic does not).
/// - The same misuse panics, with Go's messages: `sync: negative WaitGroup counter`, and, when
///   detected, `sync: WaitGroup misuse: Add called concurrently with Wait` and `sync: WaitGroup is
///   reused before previous Wait has returned`. Like Go, the misuse checks catch some races,
///   not all. The counter is an `i32`, as Go's; raising it past `i32::MAX` panics.
/// - A `WaitGroup` may be moved (Rust's borrows make that safe); Go's must not be copied.
///
/// # Differences from other crates
///
/// `crossbeam_utils::sync::WaitGroup` counts clones of a handle; this one counts explicitly, as
/// Go's does, and can be a `static`.
///
/// # Examples
///
/// ```
/// use gosync_waitgroup::WaitGroup;
/// use std::sync::Mutex;
///
/// let wg = WaitGroup::new();
/// let results = Mutex::new(Vec::new());
/// std::thread::scope(|s| {
///     for i in 0..3 {
///         wg.add(1);
///         let (wg, results) = (&wg, &results);
///         s.spawn(move || {
///             results.lock().unwrap().push(i * i);
///             wg.done();
///         });
///     }
///     wg.wait();
///     assert_eq!(results.lock().unwrap().len(), 3);
/// });
/// ```
pub struct WaitGroup {
    /// The counter (high 32 bits) and the bits above: `WAITERS`, `PANICKED`, the generation.
    pub(crate) state: AtomicU64,
    /// The panics of `go` tasks not yet re-raised: the first payload and a count.
    pub(crate) panics: BookkeepingLock<Option<GoPanics>>,
}

impl WaitGroup {
    gosync_park::const_unless_loom! {
        /// Creates a group with a zero counter (Go's zero value).
        ///
        /// # Examples
        ///
        /// ```
        /// static WG: gosync_waitgroup::WaitGroup = gosync_waitgroup::WaitGroup::new();
        /// WG.wait(); // the counter is zero: returns at once
        /// ```
        #[must_use]
        pub const fn new() -> Self {
            Self {
                state: AtomicU64::new(0),
                panics: BookkeepingLock::new(None),
            }
        }
    }

    /// Adds `delta`, which may be negative, to the counter. When the counter reaches zero,
    /// every thread blocked in a wait is released.
    ///
    /// As in Go, an `add` with a positive delta that starts from zero must happen before the
    /// `wait` it is meant for, and reusing the group for a new round must wait until every
    /// `wait` of the previous round has returned.
    ///
    /// # Panics
    ///
    /// - `sync: negative WaitGroup counter` if the counter would go below zero;
    /// - `sync: WaitGroup counter overflow` if it would go above `i32::MAX`;
    /// - `sync: WaitGroup misuse: Add called concurrently with Wait` if a positive `add` from
    ///   zero races with the release of waiters.
    ///
    /// A call that panics changes nothing: the counter is checked before it is changed, so
    /// other threads' calls never see the misuse.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gosync_waitgroup::WaitGroup::new();
    /// wg.add(2);
    /// wg.add(-1);
    /// assert_eq!(wg.count(), 1);
    /// let underflow = std::panic::catch_unwind(|| wg.add(-2));
    /// assert!(underflow.is_err());
    /// assert_eq!(wg.count(), 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn add(&self, delta: isize) {
        let Ok(delta) = i32::try_from(delta) else {
            out_of_range(delta);
        };
        self.apply(delta);
    }

    /// Decrements the counter by one: a task has finished. Go's `Done`.
    ///
    /// # Panics
    ///
    /// `sync: negative WaitGroup counter` if the counter is zero; the counter stays zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gosync_waitgroup::WaitGroup::new();
    /// wg.add(1);
    /// wg.done();
    /// assert_eq!(wg.count(), 0);
    /// ```
    #[inline]
    #[track_caller]
    pub fn done(&self) {
        self.apply(-1);
    }

    /// Adds `delta` to the counter, releasing the waiters when it reaches zero; panics,
    /// changing nothing, if the result is not valid.
    #[inline]
    #[track_caller]
    fn apply(&self, delta: i32) {
        if let Err(message) = self.try_apply(delta) {
            misuse(message);
        }
    }

    /// Adds `delta` to the counter if the result is valid, and releases the waiters when it
    /// reaches zero; otherwise changes nothing and returns the misuse's message. A
    /// compare-exchange rather than a `fetch_add`: a change applied first and undone after a
    /// failed check would let other threads see (and act on) the invalid counter in between.
    #[inline]
    pub(crate) fn try_apply(&self, delta: i32) -> Result<(), &'static str> {
        // Relaxed: a first guess for the exchange, which decides.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let after = check(state, delta)?;
            // Release: heads (or continues) a release sequence that the waiters' Acquire loads
            // pair with (see the notes at the top of the file).
            match self.state.compare_exchange_weak(
                state,
                state.wrapping_add(counter_bits(delta)),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if after == 0 && state & WAITERS != 0 {
                        self.release_waiters();
                    }
                    return Ok(());
                }
                Err(now) => state = now,
            }
        }
    }

    /// If the counter is zero and threads wait, starts a new generation and wakes them. Any
    /// thread that sees that state may call it; exactly one wins the exchange and wakes.
    #[cold]
    fn release_waiters(&self) {
        // Relaxed: the exchange below decides; its ordering comes from the release sequence.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if counter(state) != 0 || state & WAITERS == 0 {
                return;
            }
            let next = (state & !(WAITERS | GENERATION_MASK))
                | (state.wrapping_add(GENERATION_ONE) & GENERATION_MASK);
            // Relaxed: a read-modify-write, so it continues the release sequences of the `done`s
            // (see the notes); the queue lock orders it against the sleepers' validation.
            match self.state.compare_exchange_weak(
                state,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => state = now,
            }
        }
        gosync_park::unpark_all(self.key(), 0);
    }

    /// The parking key: the state's address.
    #[inline]
    fn key(&self) -> usize {
        &self.state as *const AtomicU64 as usize
    }

    /// Blocks until the counter is zero. Go's `Wait`.
    ///
    /// # Panics
    ///
    /// - Re-raises the panic of a task started by [`go`](Self::go) that panicked and whose panic
    ///   no wait has re-raised yet (each such panic reaches one waiter).
    /// - `sync: WaitGroup is reused before previous Wait has returned` if, after this wait was
    ///   released, another `add` from zero came before it could return.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_waitgroup::WaitGroup;
    /// use std::sync::Arc;
    ///
    /// let wg = Arc::new(WaitGroup::new());
    /// wg.add(1);
    /// let worker = {
    ///     let wg = Arc::clone(&wg);
    ///     std::thread::spawn(move || wg.done())
    /// };
    /// wg.wait();
    /// assert_eq!(wg.count(), 0);
    /// # worker.join().unwrap();
    /// ```
    #[track_caller]
    pub fn wait(&self) {
        let released = self.wait_released(None, None);
        debug_assert!(released);
        self.take_panic();
    }

    /// Blocks until the counter is zero or `timeout` has passed. Returns `true` when the
    /// counter reached zero. A zero timeout checks without blocking.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when it returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let wg = gosync_waitgroup::WaitGroup::new();
    /// assert!(wg.wait_for(Duration::ZERO));
    /// wg.add(1);
    /// assert!(!wg.wait_for(Duration::from_millis(1)));
    /// wg.done();
    /// assert!(wg.wait_for(Duration::from_secs(1)));
    /// ```
    #[must_use = "the result says whether the counter reached zero"]
    #[track_caller]
    pub fn wait_for(&self, timeout: Duration) -> bool {
        self.wait_released_then_rethrow(gosync_park::deadline_after(timeout))
    }

    /// Blocks until the counter is zero or `deadline` has passed. Returns `true` when the
    /// counter reached zero. A deadline already past checks without blocking.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when it returns `true`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_waitgroup::WaitGroup;
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    ///
    /// let wg = Arc::new(WaitGroup::new());
    /// wg.add(1);
    /// assert!(!wg.wait_until(Instant::now()));
    /// let worker = {
    ///     let wg = Arc::clone(&wg);
    ///     std::thread::spawn(move || wg.done())
    /// };
    /// assert!(wg.wait_until(Instant::now() + Duration::from_secs(60)));
    /// worker.join().unwrap();
    /// ```
    #[must_use = "the result says whether the counter reached zero"]
    #[track_caller]
    pub fn wait_until(&self, deadline: Instant) -> bool {
        self.wait_released_then_rethrow(Some(deadline))
    }

    /// The timed waits: wait, then re-raise a task's panic if the counter reached zero.
    #[track_caller]
    fn wait_released_then_rethrow(&self, deadline: Option<Instant>) -> bool {
        let released = self.wait_released(deadline, None);
        if released {
            self.take_panic();
        }
        released
    }

    /// Blocks until the counter is zero or `ctx` is done.
    ///
    /// # Errors
    ///
    /// The context's error ([`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`])
    /// when it is done first; a context that is already done fails at once, even when the counter
    /// is zero.
    ///
    /// # Panics
    ///
    /// As [`wait`](Self::wait), when it returns `Ok`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_waitgroup::WaitGroup;
    ///
    /// let wg = WaitGroup::new();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(wg.wait_ctx(&ctx), Ok(()));
    ///
    /// wg.add(1);
    /// cancel.cancel(); // normally from another thread
    /// assert_eq!(wg.wait_ctx(&ctx), Err(ContextError::Canceled));
    /// ```
    #[track_caller]
    pub fn wait_ctx(&self, ctx: &Context) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        if self.wait_released(None, Some(ctx)) {
            self.take_panic();
            Ok(())
        } else {
            Err(cancelled_error(ctx))
        }
    }

    /// The waiting core: `true` when the counter reached zero, `false` on timeout/cancellation.
    ///
    /// A waiter parks on the state's address, setting `WAITERS` under the queue lock as long as
    /// the counter is non-zero and the generation is the one it saw (`gosync_park::park_while`).
    /// The `done` that reaches zero clears `WAITERS` and bumps the generation in one exchange,
    /// then unparks all (taking the same lock), so no wake-up is lost. A waiter that gives up as
    /// the last one on the key clears `WAITERS` under that lock.
    #[track_caller]
    fn wait_released(&self, deadline: Option<Instant>, cancel: Option<&dyn Cancellation>) -> bool {
        loop {
            // Acquire: pairs with the Release of every `done` (see the notes).
            let state = self.state.load(Ordering::Acquire);
            if counter(state) == 0 {
                // Finish a release that is under way before returning, so that a caller that
                // `add`s next never meets a stale `WAITERS` bit.
                if state & WAITERS != 0 {
                    self.release_waiters();
                }
                return true;
            }
            if deadline.is_some_and(deadline_passed) {
                return false;
            }
            let generation = state & GENERATION_MASK;
            let options = ParkOptions {
                deadline,
                cancel,
                ..ParkOptions::default()
            };
            // Under the queue lock, which orders it against the releaser's unpark (taken after
            // its exchange).
            let busy = |now: u64| counter(now) != 0 && now & GENERATION_MASK == generation;
            match park_while(&self.state, self.key(), WAITERS, busy, options) {
                ParkResult::Unparked(_) => {
                    // Acquire: as above.
                    let now = self.state.load(Ordering::Acquire);
                    if now & GENERATION_MASK != generation {
                        if counter(now) != 0 {
                            panic!("sync: WaitGroup is reused before previous Wait has returned");
                        }
                        return true;
                    }
                    // Woken by the release of an earlier round: wait again.
                }
                ParkResult::Invalid => {}
                ParkResult::TimedOut | ParkResult::Cancelled => {
                    // Acquire: as above.
                    let now = self.state.load(Ordering::Acquire);
                    if counter(now) == 0 {
                        if now & WAITERS != 0 {
                            self.release_waiters();
                        }
                        return true;
                    }
                    return false;
                }
            }
        }
    }

    /// The counter now: how many tasks are outstanding. Racy by nature; for diagnostics.
    ///
    /// # Examples
    ///
    /// ```
    /// let wg = gosync_waitgroup::WaitGroup::new();
    /// wg.add(3);
    /// assert_eq!(wg.count(), 3);
    /// ```
    #[must_use]
    pub fn count(&self) -> usize {
        // Relaxed: a snapshot that orders nothing.
        usize::try_from(counter(self.state.load(Ordering::Relaxed))).unwrap_or(0)
    }

    /// Test hook: whether a thread sleeps in a wait. Not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn has_waiters(&self) -> bool {
        // Relaxed: a snapshot that orders nothing.
        self.state.load(Ordering::Relaxed) & WAITERS != 0
    }
}

/// The counter after adding `delta` to the one in `state`, or the message of the misuse that
/// would be: Go's checks, made before anything changes.
#[inline]
fn check(state: u64, delta: i32) -> Result<i32, &'static str> {
    let after = i64::from(counter(state)) + i64::from(delta);
    if after < 0 {
        return Err("sync: negative WaitGroup counter");
    }
    let Ok(after) = i32::try_from(after) else {
        return Err("sync: WaitGroup counter overflow");
    };
    if delta > 0 && counter(state) == 0 && state & WAITERS != 0 {
        // The counter is zero with waiters only while the `done` that reached zero releases
        // them: this `add` races with a `wait` that has already returned or is about to.
        return Err("sync: WaitGroup misuse: Add called concurrently with Wait");
    }
    Ok(after)
}

/// The panic of a refused `add`.
#[cold]
#[inline(never)]
#[track_caller]
fn misuse(message: &'static str) -> ! {
    panic!("{message}")
}

/// The panic of an `add` whose delta does not fit the counter.
#[cold]
#[inline(never)]
#[track_caller]
fn out_of_range(delta: isize) -> ! {
    if delta < 0 {
        panic!("sync: negative WaitGroup counter")
    }
    panic!("sync: WaitGroup counter overflow")
}

impl Default for WaitGroup {
    /// Same as [`WaitGroup::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a snapshot for display.
        let state = self.state.load(Ordering::Relaxed);
        f.debug_struct("WaitGroup")
            .field("count", &counter(state))
            .field("waiters", &(state & WAITERS != 0))
            .field("panicked", &(state & PANICKED != 0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_impl_all!(WaitGroup: Send, Sync, Default, fmt::Debug);
    static_assertions::assert_impl_all!(WaitGroup: std::panic::RefUnwindSafe, std::panic::UnwindSafe);

    #[test]
    fn counter_bits_round_trip() {
        for delta in [0, 1, -1, 7, i32::MAX, i32::MIN] {
            assert_eq!(counter(counter_bits(delta)), delta);
        }
        let state = counter_bits(5) | WAITERS | GENERATION_MASK;
        assert_eq!(counter(state.wrapping_add(counter_bits(-5))), 0);
        assert_eq!(
            state.wrapping_add(counter_bits(-5)) & !(counter_bits(1) - 1),
            0
        );
    }

    #[test]
    fn release_bumps_the_generation_and_clears_waiters() {
        let wg = WaitGroup::new();
        wg.state.store(WAITERS | GENERATION_MASK, Ordering::Relaxed);
        wg.release_waiters();
        // The generation wraps within its bits and leaves the counter alone.
        assert_eq!(wg.state.load(Ordering::Relaxed), 0);
        wg.state.store(WAITERS | PANICKED, Ordering::Relaxed);
        wg.release_waiters();
        assert_eq!(wg.state.load(Ordering::Relaxed), PANICKED | GENERATION_ONE);
    }

    #[test]
    fn add_from_zero_during_a_release_is_misuse() {
        let wg = WaitGroup::new();
        // The state a `done` leaves between reaching zero and releasing the waiters.
        wg.state.store(WAITERS, Ordering::Relaxed);
        let caught = panic::catch_unwind(|| wg.add(1)).unwrap_err();
        assert_eq!(
            caught.downcast_ref::<String>().map(String::as_str),
            Some("sync: WaitGroup misuse: Add called concurrently with Wait")
        );
        // Nothing changed: the releasing `done` finishes the release.
        assert_eq!(wg.state.load(Ordering::Relaxed), WAITERS);
    }

    #[test]
    fn debug_shows_the_counter() {
        let wg = WaitGroup::new();
        wg.add(2);
        assert_eq!(
            format!("{wg:?}"),
            "WaitGroup { count: 2, waiters: false, panicked: false }"
        );
    }
}
