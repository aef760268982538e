//! Go's `sync.WaitGroup`: wait for a collection of tasks to finish.
//!
//! | Go | here |
//! | --- | --- |
//! | `var wg sync.WaitGroup` | [`WaitGroup::new`], `WaitGroup::default()` |
//! | `wg.Add(n)` | [`wg.add(n)`](WaitGroup::add) |
//! | `wg.Done()` | [`wg.done()`](WaitGroup::done) |
//! | `defer wg.Done()` | [`let _done = wg.done_guard();`](WaitGroup::done_guard) (also runs during a panic) |
//! | `wg.Wait()` | [`wg.wait()`](WaitGroup::wait) |
//! | `wg.Go(f)` | [`wg.go(f)`](WaitGroup::go) on an `Arc<WaitGroup>` |
//! | (no Go analog) | [`wait_for`](WaitGroup::wait_for), [`wait_until`](WaitGroup::wait_until), [`wait_ctx`](WaitGroup::wait_ctx), [`count`](WaitGroup::count) |
//!
//! A task started by [`go`](WaitGroup::go) that panics is not lost: the next wait re-raises its
//! panic, or a [`GoPanics`] (the first payload and the count) when several panicked.
//!
//! # Examples
//!
//! ```
//! use gosync_waitgroup::WaitGroup;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let wg = Arc::new(WaitGroup::new());
//! let hits = Arc::new(AtomicUsize::new(0));
//! for _ in 0..4 {
//!     let hits = Arc::clone(&hits);
//!     wg.go(move || { hits.fetch_add(1, Ordering::Relaxed); });
//! }
//! wg.wait();
//! assert_eq!(hits.load(Ordering::Relaxed), 4);
//! ```

// Notes about memory ordering: every change of the counter (`add`, `done`) is a Release
// compare-exchange (checked before it is made, so no thread ever sees an invalid counter), and every other change of the state word is a read-modify-write too, so
// each `done` heads a release sequence that runs through all later changes. A waiter's Acquire
// load that sees the counter at zero therefore synchronizes with every `done` (and sees every
// write a task made before its `done`). The flag and generation updates order nothing of their
// own: the queue's lock orders the check-then-sleep against the release (see `wait_released`).
// The `PANICKED` flag pairs a Release `fetch_or` (after the payload is stored) with the Acquire
// `fetch_and` of the waiter that takes it.

use std::any::Any;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::sync::{AtomicU64, BookkeepingLock, Ordering};
use gosync_park::{
    cancelled_error, deadline_passed, park_while, Cancellation, ParkOptions, ParkResult,
};

/// A thread is parked on the state's address, or has announced it is about to park.
const WAITERS: u64 = 1;
/// A task started by `go` panicked; its payload waits in `WaitGroup::panic`.
const PANICKED: u64 = 1 << 1;
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
    state: AtomicU64,
    /// The panics of `go` tasks not yet re-raised: the first payload and a count.
    panics: BookkeepingLock<Option<GoPanics>>,
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
    fn try_apply(&self, delta: i32) -> Result<(), &'static str> {
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

    /// Re-raises a stored task panic, if there is one and no other waiter took it.
    #[inline]
    fn take_panic(&self) {
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
    /// `add`), except while the thread is already panicking: then the counter is left as it
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
    pub fn done_guard(&self) -> DoneGuard<'_> {
        DoneGuard { wg: self }
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
}

/// Calls [`WaitGroup::done`] when dropped, also during a panic: Go's `defer wg.Done()`. Made by
/// [`WaitGroup::done_guard`], which has the details and an example.
#[must_use = "dropping the guard at once calls done at once"]
pub struct DoneGuard<'a> {
    wg: &'a WaitGroup,
}

impl Drop for DoneGuard<'_> {
    fn drop(&mut self) {
        if let Err(message) = self.wg.try_apply(-1) {
            // A second panic while unwinding would abort the process; the counter is unchanged.
            if !std::thread::panicking() {
                panic!("{message}");
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
