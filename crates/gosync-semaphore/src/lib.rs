//! Go's `golang.org/x/sync/semaphore.Weighted`: a weighted semaphore whose waiters are served
//! in arrival order.
//!
//! | Go | here |
//! | --- | --- |
//! | `semaphore.NewWeighted(n)` | [`Semaphore::new`] (`const`) |
//! | `s.Acquire(ctx, n)` | [`s.acquire_ctx(&ctx, n)`](Semaphore::acquire_ctx), or [`s.acquire(n)`](Semaphore::acquire) without a context |
//! | `s.TryAcquire(n)` | [`s.try_acquire(n)`](Semaphore::try_acquire) |
//! | `s.Release(n)` | [`s.release(n)`](Semaphore::release), or drop a [`Permit`] |
//! | (no Go analog) | [`try_acquire_for`](Semaphore::try_acquire_for), [`try_acquire_until`](Semaphore::try_acquire_until), [`acquire_permit`](Semaphore::acquire_permit) (and `try_acquire_permit`, `_for`, `_until`, [`acquire_permit_ctx`](Semaphore::acquire_permit_ctx)), [`Permit::forget`], [`available`](Semaphore::available), [`capacity`](Semaphore::capacity) |
//!
//! # Examples
//!
//! At most two workers in the expensive section at a time:
//!
//! ```
//! use gosync_semaphore::Semaphore;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! static SLOTS: Semaphore = Semaphore::new(2);
//! let inside = AtomicU64::new(0);
//! std::thread::scope(|s| {
//!     for _ in 0..8 {
//!         s.spawn(|| {
//!             let _permit = SLOTS.acquire_permit(1);
//!             assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
//!             inside.fetch_sub(1, Ordering::SeqCst);
//!         });
//!     }
//! });
//! assert_eq!(SLOTS.available(), 2);
//! ```

// Notes about memory ordering: permits guard whatever the user protects with them, so every
// transfer of permits is a Release/Acquire pair. A release that puts permits back in the word
// is a Release read-modify-write and a `try_acquire` that takes them is an Acquire one. A
// release that hands permits to a queued waiter writes the word under the queue lock and wakes
// the waiter through `gosync_park`, whose Release store of the wake-up pairs with the waiter's
// Acquire load, so the waiter sees everything the releaser wrote before `release`. `QUEUED` is
// set and cleared only under the queue lock (the park layer's validate, abort and unpark
// callbacks), and while it is set nothing outside that lock changes the word, which is what lets
// a releaser read the word there and decide who gets what.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::sync::{AtomicU64, Ordering};
use gosync_park::{
    cancelled_error, deadline_after, deadline_passed, park_while, unpark_filter, Cancellation,
    FilterOp, ParkOptions, ParkResult, SpinWait,
};

/// At least one thread is queued on the state's address: permits go through the queue, in
/// arrival order, and nobody may take them from the word.
const QUEUED: u64 = 1 << 63;
/// The permits available right now (the low 63 bits).
const AVAILABLE: u64 = QUEUED - 1;
/// The largest capacity: what the word holds, and what a waiter's request in a park token
/// (a `usize`) holds.
const MAX_CAPACITY: u64 = if usize::BITS < 64 {
    usize::MAX as u64
} else {
    AVAILABLE
};
/// The unpark token of a waiter that was handed its permits.
const GRANTED: usize = 1;

/// A weighted semaphore: Go's `x/sync/semaphore.Weighted`.
///
/// It holds [`capacity`](Self::capacity) permits; [`acquire(n)`](Self::acquire) takes `n` of
/// them, waiting until they are free, and [`release(n)`](Self::release) puts them back.
/// [`acquire_permit`](Self::acquire_permit) returns a [`Permit`] that releases on drop.
///
/// Waiters are served strictly in arrival order: a release hands the permits straight to the
/// waiters at the head of the queue (nobody arriving later can take them first), and a large
/// request at the head holds back the smaller ones behind it, so a large request never starves.
/// [`try_acquire`](Self::try_acquire) fails while anyone is queued, even if enough permits are
/// free. A waiter that gives up (timeout, cancellation) leaves the queue and passes the permits
/// it was waiting for on to whoever can now proceed.
///
/// Uncontended, `acquire` and `release` are one atomic read-modify-write each; waiters spin
/// briefly, then sleep in gosync's parking queues.
///
/// # Differences from Go
///
/// - Go's `Acquire(ctx, n)` is [`acquire_ctx`](Self::acquire_ctx); [`acquire`](Self::acquire)
///   waits without a context, and [`try_acquire_for`](Self::try_acquire_for) /
///   [`try_acquire_until`](Self::try_acquire_until) with a deadline.
/// - [`Permit`] releases on drop, also during a panic, and [`Permit::forget`] keeps the permits
///   taken.
/// - The capacity and the requests are `u64` (Go's are `int64`); a capacity above
///   2<sup>63</sup> − 1 (above `usize::MAX` on 32-bit targets) panics.
/// - A request larger than the capacity can never succeed: `try_acquire*` return `false` at
///   once and `acquire` panics (Go's `Acquire` without a deadline would block forever), while
///   `acquire_ctx` waits for the context as Go does, without holding anyone back.
///
/// # Differences from other crates
///
/// `tokio::sync::Semaphore` is for async tasks; this one blocks threads and can be a `static`.
///
/// # Examples
///
/// ```
/// use gosync_semaphore::Semaphore;
///
/// let sem = Semaphore::new(3);
/// sem.acquire(2);
/// assert!(!sem.try_acquire(2));
/// assert!(sem.try_acquire(1));
/// sem.release(3);
/// assert_eq!(sem.available(), 3);
/// ```
pub struct Semaphore {
    /// `QUEUED` and the available permits.
    state: AtomicU64,
    capacity: u64,
}

static_assertions::assert_impl_all!(Semaphore: Send, Sync);
static_assertions::assert_impl_all!(Permit<'static>: Send, Sync);

impl Semaphore {
    gosync_park::const_unless_loom! {
        /// Creates a semaphore with `capacity` permits, all available: Go's `NewWeighted`.
        ///
        /// # Panics
        ///
        /// If `capacity` is above 2<sup>63</sup> − 1 = 9 223 372 036 854 775 807 (on targets
        /// with a `usize` narrower than 64 bits, above `usize::MAX`): the permits share a
        /// 64-bit word with a "queued" flag, and a waiter's request travels as a `usize`. In a
        /// `const` or `static` initialiser the panic is a compile-time error.
        ///
        /// # Examples
        ///
        /// ```
        /// static SEM: gosync_semaphore::Semaphore = gosync_semaphore::Semaphore::new(4);
        /// assert_eq!(SEM.capacity(), 4);
        /// ```
        #[must_use]
        #[track_caller]
        pub const fn new(capacity: u64) -> Self {
            assert!(
                capacity <= MAX_CAPACITY,
                "semaphore: capacity above 2^63 - 1 (usize::MAX on 32-bit targets)"
            );
            Self {
                state: AtomicU64::new(capacity),
                capacity,
            }
        }
    }

    /// The parking key: the state's address.
    #[inline]
    fn key(&self) -> usize {
        &self.state as *const AtomicU64 as usize
    }

    /// Takes `n` permits if nobody is queued and `n` are available; never blocks. Go's
    /// `TryAcquire`.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(2);
    /// assert!(sem.try_acquire(2));
    /// assert!(!sem.try_acquire(1));
    /// sem.release(2);
    /// assert!(!sem.try_acquire(3)); // more than the capacity: never
    /// ```
    #[inline]
    #[must_use = "if it returns true, the permits must be released"]
    pub fn try_acquire(&self, n: u64) -> bool {
        // Relaxed: the exchange below decides.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & QUEUED != 0 || state & AVAILABLE < n {
                return false;
            }
            // Acquire: pairs with the Release of the `release` that put these permits back.
            match self.state.compare_exchange_weak(
                state,
                state - n,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => state = now,
            }
        }
    }

    /// Takes `n` permits, waiting in the queue as long as it takes.
    ///
    /// # Panics
    ///
    /// If `n` is larger than the capacity (it could never succeed): the message names both.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_semaphore::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// sem.acquire(1);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| sem.release(1));
    ///     sem.acquire(1); // waits for the release
    /// });
    /// # sem.release(1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn acquire(&self, n: u64) {
        if self.try_acquire(n) {
            return;
        }
        if n > self.capacity {
            oversized(n, self.capacity);
        }
        let acquired = self.acquire_slow(n, None, None);
        debug_assert!(acquired.is_unparked());
    }

    /// Takes `n` permits, waiting at most `timeout`. Returns whether it took them. A zero
    /// timeout takes them only if [`try_acquire`](Self::try_acquire) would.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = gosync_semaphore::Semaphore::new(1);
    /// assert!(sem.try_acquire_for(1, Duration::ZERO));
    /// assert!(!sem.try_acquire_for(1, Duration::from_millis(1)));
    /// sem.release(1);
    /// ```
    #[must_use = "if it returns true, the permits must be released"]
    pub fn try_acquire_for(&self, n: u64, timeout: Duration) -> bool {
        self.try_acquire_by(n, deadline_after(timeout))
    }

    /// Takes `n` permits, waiting until `deadline` at most. Returns whether it took them. A
    /// deadline in the past takes them only if [`try_acquire`](Self::try_acquire) would.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let sem = gosync_semaphore::Semaphore::new(1);
    /// let deadline = Instant::now() + Duration::from_millis(1);
    /// assert!(sem.try_acquire_until(1, deadline));
    /// assert!(!sem.try_acquire_until(1, deadline));
    /// sem.release(1);
    /// ```
    #[must_use = "if it returns true, the permits must be released"]
    pub fn try_acquire_until(&self, n: u64, deadline: Instant) -> bool {
        self.try_acquire_by(n, Some(deadline))
    }

    fn try_acquire_by(&self, n: u64, deadline: Option<Instant>) -> bool {
        if self.try_acquire(n) {
            return true;
        }
        if n > self.capacity || deadline.is_some_and(deadline_passed) {
            return false;
        }
        self.acquire_slow(n, deadline, None).is_unparked()
    }

    /// Takes `n` permits, waiting until they are free or `ctx` is done: Go's `Acquire`.
    ///
    /// # Errors
    ///
    /// The context's error when it is done first. A context that is already done fails at once,
    /// even when the permits are free; and, as in Go, a waiter handed its permits just as its
    /// context is done puts them back and fails. A request larger than the capacity waits for
    /// the context to be done (without holding back anyone queued) and returns its error.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_semaphore::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(sem.acquire_ctx(&ctx, 1), Ok(()));
    /// cancel.cancel(); // normally from another thread, while the call below waits
    /// assert_eq!(sem.acquire_ctx(&ctx, 1), Err(ContextError::Canceled));
    /// sem.release(1);
    /// ```
    pub fn acquire_ctx(&self, ctx: &Context, n: u64) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        if self.try_acquire(n) {
            return Ok(());
        }
        if n > self.capacity {
            ctx.wait();
            return Err(cancelled_error(ctx));
        }
        if !self.acquire_slow(n, None, Some(ctx)).is_unparked() {
            return Err(cancelled_error(ctx));
        }
        if let Some(err) = ctx.err() {
            // Handed the permits as the context was done: the cancellation wins, as in Go.
            self.release(n);
            return Err(err);
        }
        Ok(())
    }

    /// The queued part of every acquire: `Unparked` when a release handed this thread its
    /// permits, `TimedOut`/`Cancelled` when it gave up.
    ///
    /// A waiter parks with its request as the park token, setting `QUEUED` under the queue lock
    /// while anyone is queued or the permits are short; from then on only releases, which hand
    /// permits out under that lock, change the word. A waiter that gives up has left the queue
    /// under the lock (clearing `QUEUED` if it was the last); if others remain, the permits it
    /// was holding them back from go to them now (x/sync once missed this, stranding the small
    /// requests queued behind a cancelled large one).
    #[cold]
    fn acquire_slow(
        &self,
        n: u64,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
    ) -> ParkResult {
        let options = ParkOptions {
            // Lossless: `n` is at most the capacity, at most `usize::MAX` (see `MAX_CAPACITY`).
            token: n as usize,
            deadline,
            cancel,
            ..ParkOptions::default()
        };
        let busy = |state: u64| state & QUEUED != 0 || state & AVAILABLE < n;
        // Before queueing, spin briefly while nobody is queued, as the mutex does: a holder
        // that releases within a few hundred nanoseconds lets this thread take the permits
        // without a hand-off. Queueing at once turns two threads that keep taking one permit
        // into a convoy: each release hands it to the queued thread, so the releaser queues on
        // its next acquire, and every acquire after the first collision waits for a wake.
        let mut spin = SpinWait::new();
        // Relaxed: a hint; `try_acquire` decides.
        while self.state.load(Ordering::Relaxed) & QUEUED == 0 && spin.spin() {
            if self.try_acquire(n) {
                return ParkResult::Unparked(GRANTED);
            }
        }
        loop {
            match park_while(&self.state, self.key(), QUEUED, busy, options) {
                ParkResult::Invalid => {
                    if self.try_acquire(n) {
                        return ParkResult::Unparked(GRANTED);
                    }
                }
                ParkResult::Unparked(token) => return ParkResult::Unparked(token),
                gave_up @ (ParkResult::TimedOut | ParkResult::Cancelled) => {
                    // Relaxed: a hint; `hand_off` decides under the queue lock.
                    if self.state.load(Ordering::Relaxed) & QUEUED != 0 {
                        self.hand_off(0);
                    }
                    return gave_up;
                }
            }
        }
    }

    /// Puts back `n` permits: Go's `Release`. If threads are queued, the permits go straight to
    /// the waiters at the head of the queue, as many as they cover, in order.
    ///
    /// # Panics
    ///
    /// `semaphore: released more than held` if that would make more than the capacity
    /// available. Nothing changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(2);
    /// sem.acquire(2);
    /// sem.release(1);
    /// assert_eq!(sem.available(), 1);
    /// assert!(std::panic::catch_unwind(|| sem.release(2)).is_err());
    /// assert_eq!(sem.available(), 1);
    /// ```
    #[inline]
    #[track_caller]
    pub fn release(&self, n: u64) {
        // Relaxed: the exchange below decides.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & QUEUED != 0 {
                return self.release_queued(n);
            }
            if n > self.capacity - state {
                released_more_than_held();
            }
            // Release: pairs with the Acquire of the `try_acquire` that takes these permits.
            match self.state.compare_exchange_weak(
                state,
                state + n,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => state = now,
            }
        }
    }

    #[cold]
    #[track_caller]
    fn release_queued(&self, n: u64) {
        if !self.hand_off(n) {
            released_more_than_held();
        }
    }

    /// Releases `n` permits under the queue lock, handing them to the waiters at the head that
    /// they cover. Returns `false`, changing nothing, if that would make more than the capacity
    /// available.
    fn hand_off(&self, n: u64) -> bool {
        let capacity = self.capacity;
        let over = Cell::new(false);
        // The permits left to hand out, once the first waiter has been looked at.
        let free = Cell::new(None::<u64>);
        let handed = Cell::new(0);
        unpark_filter(
            self.key(),
            |request| {
                let left = match free.get() {
                    Some(left) => left,
                    None => {
                        // A waiter is queued, so `QUEUED` is set and the word is ours to read
                        // until the callback below writes it. Relaxed: under the queue lock.
                        let available = self.state.load(Ordering::Relaxed) & AVAILABLE;
                        if n > capacity - available {
                            over.set(true);
                            return FilterOp::Stop;
                        }
                        available + n
                    }
                };
                let request = request as u64;
                if request > left {
                    // The head holds back everyone behind it.
                    free.set(Some(left));
                    return FilterOp::Stop;
                }
                free.set(Some(left - request));
                handed.set(handed.get() + request);
                FilterOp::Unpark
            },
            |result| {
                if over.get() {
                    return 0;
                }
                // Nobody queued (the last waiter left before we locked): `QUEUED` is clear and
                // `try_acquire` may race with us, so this is an exchange.
                // Relaxed: the exchange below decides.
                let mut state = self.state.load(Ordering::Relaxed);
                loop {
                    let available = state & AVAILABLE;
                    if n > capacity - available {
                        over.set(true);
                        return 0;
                    }
                    let queued = if result.have_more { QUEUED } else { 0 };
                    let next = (available + n - handed.get()) | queued;
                    // Release: pairs with the Acquire of a later `try_acquire` (the woken
                    // waiters are published by the park layer's wake-up).
                    match self.state.compare_exchange_weak(
                        state,
                        next,
                        Ordering::Release,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return GRANTED,
                        Err(now) => state = now,
                    }
                }
            },
        );
        !over.get()
    }

    /// Waits for `n` permits as [`acquire`](Self::acquire) does and returns them as a
    /// [`Permit`], which releases them when dropped (also during a panic).
    ///
    /// # Panics
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(3);
    /// {
    ///     let permit = sem.acquire_permit(2);
    ///     assert_eq!(permit.permits(), 2);
    ///     assert_eq!(sem.available(), 1);
    /// }
    /// assert_eq!(sem.available(), 3);
    /// ```
    #[inline]
    #[track_caller]
    pub fn acquire_permit(&self, n: u64) -> Permit<'_> {
        self.acquire(n);
        self.taken(n)
    }

    /// Takes `n` permits as [`try_acquire`](Self::try_acquire) does, as a [`Permit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(1);
    /// let permit = sem.try_acquire_permit(1).expect("free");
    /// assert!(sem.try_acquire_permit(1).is_none());
    /// drop(permit);
    /// assert_eq!(sem.available(), 1);
    /// ```
    #[inline]
    #[must_use = "dropping the permit releases it at once"]
    pub fn try_acquire_permit(&self, n: u64) -> Option<Permit<'_>> {
        // `then`, not `then_some`: a permit made and dropped on failure would release.
        self.try_acquire(n).then(|| self.taken(n))
    }

    /// Takes `n` permits as [`try_acquire_for`](Self::try_acquire_for) does, as a [`Permit`]:
    /// `None` when `timeout` passed first (or `n` is larger than the capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let sem = gosync_semaphore::Semaphore::new(1);
    /// let permit = sem.try_acquire_permit_for(1, Duration::ZERO).expect("free at once");
    /// assert!(sem.try_acquire_permit_for(1, Duration::from_millis(1)).is_none());
    /// drop(permit);
    /// assert_eq!(sem.available(), 1);
    /// ```
    #[must_use = "dropping the permit releases it at once"]
    pub fn try_acquire_permit_for(&self, n: u64, timeout: Duration) -> Option<Permit<'_>> {
        self.try_acquire_for(n, timeout).then(|| self.taken(n))
    }

    /// Takes `n` permits as [`try_acquire_until`](Self::try_acquire_until) does, as a
    /// [`Permit`]: `None` when `deadline` passed first (or `n` is larger than the capacity).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let sem = gosync_semaphore::Semaphore::new(1);
    /// let deadline = Instant::now() + Duration::from_millis(1);
    /// let permit = sem.try_acquire_permit_until(1, deadline).expect("free at once");
    /// assert!(sem.try_acquire_permit_until(1, deadline).is_none());
    /// drop(permit);
    /// assert_eq!(sem.available(), 1);
    /// ```
    #[must_use = "dropping the permit releases it at once"]
    pub fn try_acquire_permit_until(&self, n: u64, deadline: Instant) -> Option<Permit<'_>> {
        self.try_acquire_until(n, deadline).then(|| self.taken(n))
    }

    /// Takes `n` permits as [`acquire_ctx`](Self::acquire_ctx) does, as a [`Permit`].
    ///
    /// # Errors
    ///
    /// As [`acquire_ctx`](Self::acquire_ctx): the context's error when it is done first (at
    /// once when it is already done, even with the permits free). Nothing is held then.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_semaphore::Semaphore;
    ///
    /// let sem = Semaphore::new(2);
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let permit = sem.acquire_permit_ctx(&ctx, 2).expect("free");
    /// assert_eq!(sem.available(), 0);
    /// cancel.cancel(); // normally from another thread, while the call below waits
    /// assert_eq!(sem.acquire_permit_ctx(&ctx, 1).unwrap_err(), ContextError::Canceled);
    /// drop(permit);
    /// assert_eq!(sem.available(), 2);
    /// ```
    #[must_use = "dropping the permit releases it at once"]
    pub fn acquire_permit_ctx(&self, ctx: &Context, n: u64) -> Result<Permit<'_>, ContextError> {
        self.acquire_ctx(ctx, n).map(|()| self.taken(n))
    }

    /// The guard for `n` permits this thread has just taken.
    #[inline]
    fn taken(&self, n: u64) -> Permit<'_> {
        Permit {
            semaphore: self,
            permits: n,
        }
    }

    /// The permits available now (none may be taken while threads are queued). A snapshot,
    /// for diagnostics.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(5);
    /// sem.acquire(3);
    /// assert_eq!(sem.available(), 2);
    /// # sem.release(3);
    /// ```
    #[must_use]
    pub fn available(&self) -> u64 {
        // Relaxed: a snapshot that orders nothing.
        self.state.load(Ordering::Relaxed) & AVAILABLE
    }

    /// The number of permits the semaphore was created with.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gosync_semaphore::Semaphore::new(5).capacity(), 5);
    /// ```
    #[must_use]
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Test hook: how many threads are queued. Not part of the API.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    #[doc(hidden)]
    #[must_use]
    pub fn queued(&self) -> usize {
        let count = Cell::new(0);
        unpark_filter(
            self.key(),
            |_| {
                count.set(count.get() + 1);
                FilterOp::Skip
            },
            |_| 0,
        );
        count.get()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("capacity", &self.capacity)
            .field("available", &self.available())
            .field(
                "queued",
                &(self.state.load(Ordering::Relaxed) & QUEUED != 0),
            )
            .finish()
    }
}

#[cold]
#[track_caller]
fn oversized(n: u64, capacity: u64) -> ! {
    panic!("semaphore: acquire of {n} permits can never succeed: the capacity is {capacity}")
}

#[cold]
#[track_caller]
fn released_more_than_held() -> ! {
    panic!("semaphore: released more than held")
}

/// Permits taken from a [`Semaphore`], released when dropped (also during a panic).
///
/// Made by [`Semaphore::acquire_permit`] and its variants ([`try_acquire_permit`],
/// [`try_acquire_permit_for`], [`try_acquire_permit_until`], [`acquire_permit_ctx`]).
///
/// [`try_acquire_permit`]: Semaphore::try_acquire_permit
/// [`try_acquire_permit_for`]: Semaphore::try_acquire_permit_for
/// [`try_acquire_permit_until`]: Semaphore::try_acquire_permit_until
/// [`acquire_permit_ctx`]: Semaphore::acquire_permit_ctx
///
/// # Examples
///
/// ```
/// let sem = gosync_semaphore::Semaphore::new(1);
/// let result = std::panic::catch_unwind(|| {
///     let _permit = sem.acquire_permit(1);
///     panic!("work failed");
/// });
/// assert!(result.is_err());
/// assert_eq!(sem.available(), 1); // released during the unwind
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct Permit<'a> {
    semaphore: &'a Semaphore,
    permits: u64,
}

impl Permit<'_> {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(4);
    /// assert_eq!(sem.acquire_permit(3).permits(), 3);
    /// ```
    #[must_use]
    pub fn permits(&self) -> u64 {
        self.permits
    }

    /// Keeps the permits taken: they are not released, now or later (unless someone calls
    /// [`Semaphore::release`] for them).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = gosync_semaphore::Semaphore::new(2);
    /// sem.acquire_permit(1).forget();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.semaphore.release(self.permits);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("permits", &self.permits)
            .finish_non_exhaustive()
    }
}
