//! The condition variable: Go's `sync.Cond` (and the runtime's `notifyList`) on gosync-park's
//! keyed queues.
//!
//! Notes about memory ordering: `Cond::state` is written only under the bucket lock of the
//! `Cond`'s key (in `park`'s validate and abort callbacks, in the unpark callbacks, in the
//! requeue's validate), and every read that decides anything is made under that lock too, which
//! orders them. The one read outside it is the `Relaxed` fast-path load in `signal`/`broadcast`:
//! a waiter stores its lock's address (under the bucket lock) before it releases the lock, so a
//! signaller that comes after that release in happens-before order (it took the lock, or learned
//! through any other synchronisation that the waiter had released it) reads that value or a later
//! one, by coherence; a later one is `EMPTY` only once the queue was emptied, by a wake or a
//! timeout. A stale non-empty value costs a look at the queue, nothing more. The data the
//! condition is about is published by the lock the waiter takes back, not by the `Cond`.

use std::fmt;
use std::ops::DerefMut;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_mutex::RawMutex;
use gosync_park::sync::{AtomicPtr, Ordering};
use gosync_park::{
    cancelled_error, deadline_passed, park, unpark_filter, unpark_one, unpark_requeue, FilterOp,
    ParkOptions, ParkResult, RequeueOp, UnparkResult,
};

use crate::lockable::sealed::TOKEN;
use crate::lockable::Lockable;

/// `state`: nobody waits.
const EMPTY: *mut RawMutex = std::ptr::null_mut();

/// The address behind [`mixed`]: no `RawMutex` can live where this byte lives.
static MIXED_MARK: u8 = 0;

/// `state`: the waiters use different locks, or a lock a broadcast cannot requeue onto (an
/// `RwMutex`): a broadcast wakes them all.
#[inline]
fn mixed() -> *mut RawMutex {
    std::ptr::addr_of!(MIXED_MARK).cast_mut().cast()
}

/// The unpark token the `Cond` gives the threads it wakes: "signalled, take your lock back".
/// It must differ from the mutex's hand-off token, which a waiter requeued onto a mutex may
/// receive instead and which means "you own the lock already".
const TOKEN_SIGNALED: usize = RawMutex::TOKEN_NORMAL;
static_assertions::const_assert_ne!(TOKEN_SIGNALED, RawMutex::TOKEN_HANDOFF);

/// A condition variable: Go's `sync.Cond`.
///
/// Threads that hold a lock and find the state they need is not there yet call
/// [`wait`](Self::wait), which releases the lock, sleeps until another thread calls
/// [`signal`](Self::signal) (wakes the longest waiter) or [`broadcast`](Self::broadcast) (wakes
/// all waiters), and takes the lock back before returning. The lock is passed as its guard, any
/// [`Lockable`]: a [`MutexGuard`](gosync_mutex::MutexGuard), an `RwMutexWriteGuard`, or an
/// `RwMutexReadGuard`.
///
/// # Waiting in a loop
///
/// Between the wake-up and the moment the waiter holds the lock again, other threads may take
/// the lock and change the state again (a broadcast woke several consumers for one item, or a
/// running thread got the lock first). So a waiter checks its condition in a loop, as in Go:
///
/// ```text
/// let mut guard = mutex.lock();
/// while !condition(&guard) {
///     cond.wait(&mut guard);
/// }
/// // use the state: the condition holds and the lock is held
/// ```
///
/// [`wait_while`](Self::wait_while) is that loop.
///
/// # Guarantees
///
/// - **FIFO**: `signal` wakes the thread that has waited longest, as Go's ticket-ordered
///   `notifyList`.
/// - **No lost and no early wake-ups**: a waiter is queued before its lock is released, so a
///   signal sent after the waiter released the lock finds it; a signal sent when nobody waits is
///   lost, and does not wake a thread that starts waiting later. There are no spurious
///   wake-ups: `wait` returns only after a `signal` or `broadcast` picked this thread (or, for
///   the timed and context waits, at the timeout or cancellation).
/// - **No stampede**: when all waiters use the same `Mutex`, `broadcast` wakes at most one of them
///   and moves the rest onto the mutex's own queue, so they get the mutex one at a time as it is
///   released instead of all waking to fight for it.
/// - **One wake-up per hand-over**: a `signal` sent while the waiter's `Mutex` is held (as Go
///   code usually signals, under the lock) does not wake the waiter only for it to find the
///   mutex held and sleep again: it moves the waiter onto the mutex's queue, and the unlock
///   wakes it (wait morphing). With the mutex free, or with an `RwMutex`, it wakes the waiter.
/// - `signal` and `broadcast` with no waiter take no lock: one atomic load.
///
/// A `Cond` may be used with different locks at different times, and even with different locks
/// at once (a broadcast then simply wakes everyone).
///
/// # Differences from Go
///
/// - The lock is not a field (`c.L`) but the guard passed to each wait, so a `Cond` is made with
///   [`Cond::new`] alone and cannot be waited on without holding the lock.
/// - Timed waits ([`wait_for`](Self::wait_for), [`wait_until`](Self::wait_until)) and a
///   cancellable one ([`wait_ctx`](Self::wait_ctx)), which Go's `Cond` lacks (Go code reaches
///   for channels there), and the waiting loop itself ([`wait_while`](Self::wait_while),
///   [`wait_while_for`](Self::wait_while_for), [`wait_while_until`](Self::wait_while_until),
///   [`wait_while_ctx`](Self::wait_while_ctx)).
/// - Go panics when a `Cond` is copied after first use; a Rust value that is borrowed cannot be
///   moved, so there is nothing to check.
///
/// # Differences from std
///
/// - No spurious wake-ups, and FIFO wake order (std's `Condvar` promises neither).
/// - `wait` borrows the guard (`&mut`) instead of consuming and returning it, and returns no
///   `LockResult` (no poisoning).
/// - Works with gosync's `Mutex` and `RwMutex` guards (in read or write mode).
/// - Signals are `signal`/`broadcast` (Go's names) rather than `notify_one`/`notify_all`.
///
/// # Examples
///
/// A queue whose consumers wait for items:
///
/// ```
/// use gosync_cond::Cond;
/// use gosync_mutex::Mutex;
/// use std::collections::VecDeque;
/// use std::sync::Arc;
///
/// let shared = Arc::new((Mutex::new(VecDeque::new()), Cond::new()));
/// let consumer = {
///     let shared = Arc::clone(&shared);
///     std::thread::spawn(move || {
///         let (queue, cond) = &*shared;
///         let mut sum = 0;
///         for _ in 0..3 {
///             let mut guard = queue.lock();
///             cond.wait_while(&mut guard, |q| q.is_empty());
///             sum += guard.pop_front().unwrap();
///         }
///         sum
///     })
/// };
/// let (queue, cond) = &*shared;
/// for item in [1, 2, 3] {
///     queue.lock().push_back(item);
///     cond.signal();
/// }
/// assert_eq!(consumer.join().unwrap(), 6);
/// ```
pub struct Cond {
    /// Who waits, as far as a broadcast needs to know:
    ///
    /// | value | meaning |
    /// | --- | --- |
    /// | `EMPTY` | nobody is queued on this `Cond`'s key |
    /// | the address of a `RawMutex` | every queued waiter waits with that mutex |
    /// | `mixed()` | the queued waiters use different locks, or an `RwMutex` |
    ///
    /// Changed only under the bucket lock of [`Cond::key`], together with the queue, so under
    /// that lock it is `EMPTY` exactly when nobody is queued (as parking_lot's condvar). While it
    /// holds an address, the mutex there is alive: each waiter borrows it until it leaves.
    state: AtomicPtr<RawMutex>,
}

/// Whether a timed wait ([`Cond::wait_for`], [`Cond::wait_until`]) returned because its time
/// was up rather than because it was signalled.
///
/// # Examples
///
/// ```
/// use gosync_cond::Cond;
/// use gosync_mutex::Mutex;
/// use std::time::Duration;
///
/// let mutex = Mutex::new(());
/// let cond = Cond::new();
/// let result = cond.wait_for(&mut mutex.lock(), Duration::from_millis(1));
/// assert!(result.timed_out()); // nobody signalled
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "the result says whether the wait timed out"]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait gave up at its deadline. `false` means a `signal` or `broadcast` woke it.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::time::Instant;
    ///
    /// let mutex = Mutex::new(());
    /// let cond = Cond::new();
    /// assert!(cond.wait_until(&mut mutex.lock(), Instant::now()).timed_out());
    /// ```
    #[inline]
    #[must_use]
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// How a wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Woken {
    /// A `signal` or `broadcast` picked this waiter.
    Signaled,
    /// The deadline passed first.
    TimedOut,
    /// The context was done first.
    Cancelled,
}

impl Cond {
    gosync_park::const_unless_loom! {
        /// Creates a condition variable with no waiters. Usable in `static`s: Go's zero `Cond`
        /// is ready, and so is this.
        ///
        /// # Examples
        ///
        /// ```
        /// use gosync_cond::Cond;
        ///
        /// static READY: Cond = Cond::new();
        /// READY.signal(); // nobody waits: the signal is lost
        /// ```
        #[inline]
        #[must_use]
        pub const fn new() -> Self {
            Self {
                state: AtomicPtr::new(EMPTY),
            }
        }
    }

    /// The key its waiters park on: its own address.
    #[inline]
    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Releases the lock held by `guard`, sleeps until [`signal`](Self::signal) or
    /// [`broadcast`](Self::broadcast) wakes this thread, and takes the lock back. Go's
    /// `c.Wait()`.
    ///
    /// The thread is queued before the lock is released, so a signal sent by a thread that takes
    /// the lock after us cannot be missed. When `wait` returns, the lock is held again, but the
    /// condition may have changed since the signal: check it in a loop (see
    /// ["Waiting in a loop"](Self#waiting-in-a-loop)), or use [`wait_while`](Self::wait_while).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(false), Cond::new()));
    /// let setter = {
    ///     let pair = Arc::clone(&pair);
    ///     std::thread::spawn(move || {
    ///         *pair.0.lock() = true;
    ///         pair.1.signal();
    ///     })
    /// };
    /// let (started, cond) = &*pair;
    /// let mut guard = started.lock();
    /// while !*guard {
    ///     cond.wait(&mut guard);
    /// }
    /// drop(guard);
    /// setter.join().unwrap();
    /// ```
    #[inline]
    pub fn wait<G: Lockable>(&self, guard: &mut G) {
        let woken = self.wait_inner(guard, ParkOptions::default());
        debug_assert_eq!(woken, Woken::Signaled, "an untimed wait cannot give up");
    }

    /// Waits until `condition` returns `false`, checking it with the lock held before each
    /// wait and after each wake-up: the loop around [`wait`](Self::wait) that Go's docs ask for.
    ///
    /// `condition` gets the data mutably; it is not called again once it returned `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new()));
    /// let worker = {
    ///     let pair = Arc::clone(&pair);
    ///     std::thread::spawn(move || {
    ///         for _ in 0..3 {
    ///             *pair.0.lock() += 1;
    ///             pair.1.broadcast();
    ///         }
    ///     })
    /// };
    /// let (done, cond) = &*pair;
    /// let mut guard = done.lock();
    /// cond.wait_while(&mut guard, |done| *done < 3);
    /// assert_eq!(*guard, 3);
    /// drop(guard);
    /// worker.join().unwrap();
    /// ```
    pub fn wait_while<G: Lockable + DerefMut>(
        &self,
        guard: &mut G,
        mut condition: impl FnMut(&mut G::Target) -> bool,
    ) {
        while condition(&mut **guard) {
            self.wait(guard);
        }
    }

    /// As [`wait_while`](Self::wait_while), but gives up after `timeout`: std's
    /// `wait_timeout_while`.
    ///
    /// Returns whether it gave up with `condition` still `true`; either way the lock is held on
    /// return. A condition that is already `false` returns at once without waiting, and so
    /// does a zero timeout (after one check of the condition).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::time::Duration;
    ///
    /// let queue = Mutex::new(Vec::<u32>::new());
    /// let cond = Cond::new();
    /// let mut guard = queue.lock();
    /// let result = cond.wait_while_for(&mut guard, Duration::from_millis(1), |q| q.is_empty());
    /// assert!(result.timed_out()); // nobody pushed anything
    /// guard.push(1);
    /// let result = cond.wait_while_for(&mut guard, Duration::from_secs(60), |q| q.is_empty());
    /// assert!(!result.timed_out()); // not empty: no wait
    /// ```
    pub fn wait_while_for<G: Lockable + DerefMut>(
        &self,
        guard: &mut G,
        timeout: Duration,
        condition: impl FnMut(&mut G::Target) -> bool,
    ) -> WaitTimeoutResult {
        let Some(deadline) = gosync_park::deadline_after(timeout) else {
            self.wait_while(guard, condition);
            return WaitTimeoutResult(false);
        };
        self.wait_while_until(guard, deadline, condition)
    }

    /// As [`wait_while`](Self::wait_while), but gives up at `deadline`.
    ///
    /// Returns whether it gave up with `condition` still `true`; either way the lock is held on
    /// return. A condition that is already `false` returns at once without waiting; a deadline
    /// already past returns at once after one check of the condition, without releasing the
    /// lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new()));
    /// let worker = {
    ///     let pair = Arc::clone(&pair);
    ///     std::thread::spawn(move || {
    ///         *pair.0.lock() = 3;
    ///         pair.1.broadcast();
    ///     })
    /// };
    /// let (count, cond) = &*pair;
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// let mut guard = count.lock();
    /// assert!(!cond.wait_while_until(&mut guard, deadline, |n| *n < 3).timed_out());
    /// assert_eq!(*guard, 3);
    /// // A deadline already past: one look at the condition, then timed out.
    /// assert!(cond.wait_while_until(&mut guard, Instant::now(), |n| *n < 10).timed_out());
    /// drop(guard);
    /// worker.join().unwrap();
    /// ```
    pub fn wait_while_until<G: Lockable + DerefMut>(
        &self,
        guard: &mut G,
        deadline: Instant,
        mut condition: impl FnMut(&mut G::Target) -> bool,
    ) -> WaitTimeoutResult {
        while condition(&mut **guard) {
            if deadline_passed(deadline) {
                return WaitTimeoutResult(true);
            }
            if self.wait_deadline(guard, deadline).timed_out() {
                // The last word goes to the condition, seen with the lock held again.
                return WaitTimeoutResult(condition(&mut **guard));
            }
        }
        WaitTimeoutResult(false)
    }

    /// As [`wait_while`](Self::wait_while), but gives up when `ctx` is done (cancelled, or
    /// past its deadline).
    ///
    /// Either way the lock is held on return. A context that is already done fails at once,
    /// even when the condition is already `false` (the cancellation came first, as in x/sync);
    /// otherwise a `false` condition returns `Ok` without waiting.
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before the condition turned `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_context::{Context, ContextError};
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new()));
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// let worker = {
    ///     let pair = Arc::clone(&pair);
    ///     std::thread::spawn(move || {
    ///         *pair.0.lock() = 3;
    ///         pair.1.broadcast();
    ///     })
    /// };
    /// let (count, cond) = &*pair;
    /// let mut guard = count.lock();
    /// assert_eq!(cond.wait_while_ctx(&mut guard, &ctx, |n| *n < 3), Ok(()));
    /// cancel.cancel();
    /// let result = cond.wait_while_ctx(&mut guard, &ctx, |n| *n < 10);
    /// assert_eq!(result, Err(ContextError::Canceled));
    /// drop(guard);
    /// worker.join().unwrap();
    /// ```
    pub fn wait_while_ctx<G: Lockable + DerefMut>(
        &self,
        guard: &mut G,
        ctx: &Context,
        mut condition: impl FnMut(&mut G::Target) -> bool,
    ) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        while condition(&mut **guard) {
            if let Err(err) = self.wait_ctx(guard, ctx) {
                // The last word goes to the condition, seen with the lock held again (as in
                // `wait_while_until`): it may have turned `false` before the context was done.
                return if condition(&mut **guard) {
                    Err(err)
                } else {
                    Ok(())
                };
            }
        }
        Ok(())
    }

    /// As [`wait`](Self::wait), but gives up after `timeout`.
    ///
    /// Returns whether it gave up; either way the lock is held again on return. A zero timeout
    /// returns at once, timed out, without releasing the lock (nothing could have signalled
    /// this thread); a timeout too large to represent waits forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::time::Duration;
    ///
    /// let mutex = Mutex::new(());
    /// let cond = Cond::new();
    /// let mut guard = mutex.lock();
    /// assert!(cond.wait_for(&mut guard, Duration::from_millis(1)).timed_out());
    /// assert!(mutex.is_locked()); // held again
    /// ```
    #[inline]
    pub fn wait_for<G: Lockable>(&self, guard: &mut G, timeout: Duration) -> WaitTimeoutResult {
        if timeout.is_zero() {
            return WaitTimeoutResult(true);
        }
        match gosync_park::deadline_after(timeout) {
            // Not past: it was read from the clock a moment ago, plus a timeout.
            Some(deadline) => self.wait_deadline(guard, deadline),
            None => {
                self.wait(guard);
                WaitTimeoutResult(false)
            }
        }
    }

    /// As [`wait`](Self::wait), but gives up at `deadline`.
    ///
    /// Returns whether it gave up; either way the lock is held again on return. A deadline
    /// already past returns at once, timed out, without releasing the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    /// use std::time::{Duration, Instant};
    ///
    /// let pair = Arc::new((Mutex::new(false), Cond::new()));
    /// let setter = {
    ///     let pair = Arc::clone(&pair);
    ///     std::thread::spawn(move || {
    ///         *pair.0.lock() = true;
    ///         pair.1.signal();
    ///     })
    /// };
    /// let (ready, cond) = &*pair;
    /// let deadline = Instant::now() + Duration::from_secs(60);
    /// let mut guard = ready.lock();
    /// while !*guard {
    ///     if cond.wait_until(&mut guard, deadline).timed_out() {
    ///         break;
    ///     }
    /// }
    /// assert!(*guard);
    /// drop(guard);
    /// setter.join().unwrap();
    /// ```
    pub fn wait_until<G: Lockable>(&self, guard: &mut G, deadline: Instant) -> WaitTimeoutResult {
        if deadline_passed(deadline) {
            return WaitTimeoutResult(true);
        }
        self.wait_deadline(guard, deadline)
    }

    /// The timed wait under [`wait_for`](Self::wait_for) and [`wait_until`](Self::wait_until),
    /// once they know `deadline` has not passed: the park reads the clock from here on (once
    /// per look, see gosync-park), so a timed wait that times out reads it three times, besides
    /// the reading inside the sleep itself.
    fn wait_deadline<G: Lockable>(&self, guard: &mut G, deadline: Instant) -> WaitTimeoutResult {
        let options = ParkOptions {
            deadline: Some(deadline),
            ..ParkOptions::default()
        };
        match self.wait_inner(guard, options) {
            Woken::Signaled => WaitTimeoutResult(false),
            Woken::TimedOut => WaitTimeoutResult(true),
            Woken::Cancelled => unreachable!("a wait without a context cannot be cancelled"),
        }
    }

    /// As [`wait`](Self::wait), but gives up when `ctx` is done (cancelled, or past its
    /// deadline).
    ///
    /// Either way the lock is held again on return. A context that is already done returns its
    /// error at once, without releasing the lock (the cancellation came first, as in x/sync).
    ///
    /// # Errors
    ///
    /// The context's error, [`ContextError::Canceled`] or [`ContextError::DeadlineExceeded`],
    /// when it is done before a signal picks this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_context::{Context, ContextError};
    /// use gosync_mutex::Mutex;
    /// use std::time::Duration;
    ///
    /// let mutex = Mutex::new(());
    /// let cond = Cond::new();
    /// let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
    /// let result = cond.wait_ctx(&mut mutex.lock(), &ctx);
    /// assert_eq!(result, Err(ContextError::DeadlineExceeded));
    /// ```
    pub fn wait_ctx<G: Lockable>(&self, guard: &mut G, ctx: &Context) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        let options = ParkOptions {
            cancel: Some(ctx),
            ..ParkOptions::default()
        };
        match self.wait_inner(guard, options) {
            Woken::Signaled => Ok(()),
            Woken::Cancelled | Woken::TimedOut => Err(cancelled_error(ctx)),
        }
    }

    /// The wait under every variant: queue on our key, release the lock, sleep, retake the lock.
    fn wait_inner<G: Lockable>(&self, guard: &mut G, options: ParkOptions<'_>) -> Woken {
        let key = self.key();
        // What a broadcast may do with us: requeue onto this mutex, or only wake us.
        let lock = guard.requeue_target(TOKEN).map_or_else(mixed, |raw| {
            debug_assert_eq!(
                raw.key(),
                raw as *const RawMutex as usize,
                "a mutex's key is its address"
            );
            (raw as *const RawMutex).cast_mut()
        });
        let validate = || {
            // Relaxed: under our bucket lock (see the notes about memory ordering).
            let state = self.state.load(Ordering::Relaxed);
            if state == EMPTY {
                self.state.store(lock, Ordering::Relaxed);
            } else if state != lock {
                self.state.store(mixed(), Ordering::Relaxed);
            }
            true
        };
        // Set if a signal or broadcast moved us onto the mutex's queue before we gave up.
        let mut requeued = false;
        let on_abort = |left: usize, was_last: bool| {
            requeued = left != key;
            if !requeued && was_last {
                // Relaxed: under our bucket lock; the last waiter leaves.
                self.state.store(EMPTY, Ordering::Relaxed);
            }
        };
        let guard_ref = &mut *guard;
        let before_sleep = move || {
            // SAFETY: the guard holds its lock (a `&mut` to a live guard), and it is taken back
            // below before `wait_inner` returns and the guard can be used again.
            unsafe { guard_ref.unlock(TOKEN) }
        };
        let result = park(key, options, validate, before_sleep, on_abort);
        let woken = match result {
            ParkResult::Unparked(RawMutex::TOKEN_HANDOFF) => {
                // Requeued onto the mutex, whose unlock handed it to us: we own it already.
                debug_assert!(lock != mixed(), "only a mutex hands its lock over");
                return Woken::Signaled;
            }
            ParkResult::Unparked(_) => Woken::Signaled,
            // A signal or broadcast picked us (and requeued us) before we gave up: count it as
            // a wake, or the signal would be lost.
            ParkResult::TimedOut | ParkResult::Cancelled if requeued => Woken::Signaled,
            ParkResult::TimedOut => Woken::TimedOut,
            ParkResult::Cancelled => Woken::Cancelled,
            ParkResult::Invalid => unreachable!("the validate callback always parks"),
        };
        guard.relock(TOKEN);
        woken
    }

    /// Wakes the thread that has waited longest, if any thread waits. Go's `c.Signal()`.
    ///
    /// A signal with no waiter is lost: it does not wake a thread that starts waiting later.
    /// The caller need not hold the lock (Go allows both); holding it makes "the waiter saw the
    /// old state and is waiting" and "I changed the state" one atomic step.
    ///
    /// With no waiter this is a single atomic load. When the waiter's `Mutex` is held, the
    /// waiter moves onto the mutex's queue and the unlock wakes it (see
    /// ["Guarantees"](Self#guarantees)); a timed or cancellable wait that gives up meanwhile
    /// still counts as signalled, so the signal is not lost.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(0), Cond::new()));
    /// let waiter = {
    ///     let pair = Arc::clone(&pair);
    ///     std::thread::spawn(move || {
    ///         let mut guard = pair.0.lock();
    ///         pair.1.wait_while(&mut guard, |n| *n == 0);
    ///         *guard
    ///     })
    /// };
    /// *pair.0.lock() = 42;
    /// pair.1.signal();
    /// assert_eq!(waiter.join().unwrap(), 42);
    /// ```
    #[inline]
    pub fn signal(&self) {
        // Relaxed: see the notes about memory ordering.
        if self.state.load(Ordering::Relaxed) != EMPTY {
            self.signal_slow();
        }
    }

    #[cold]
    fn signal_slow(&self) {
        // Relaxed: a guess, re-checked under our bucket lock.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state == EMPTY {
                return;
            }
            if state == mixed() {
                unpark_one(self.key(), |result| self.left(result));
                return;
            }
            // Every waiter uses the mutex at `state`. If the mutex is held (typically by us: Go
            // code signals under the lock), a woken waiter would only find it held and sleep
            // again on the mutex: move it onto the mutex's queue instead, so that the unlock
            // wakes it once (wait morphing). If the mutex is free, wake it.
            let requeue = RequeueOp::RequeueOne;
            match self.requeue_onto(state, requeue, RequeueOp::UnparkOne, |_, r| self.left(r)) {
                Some(now) => state = now,
                None => return,
            }
        }
    }

    /// The unpark callback's bookkeeping once waiters left our queue: `EMPTY` when none is left.
    /// Runs under our bucket lock.
    fn left(&self, result: UnparkResult) -> usize {
        if !result.have_more {
            // Relaxed: under our bucket lock; the queue is now empty.
            self.state.store(EMPTY, Ordering::Relaxed);
        }
        TOKEN_SIGNALED
    }

    /// Moves our waiters onto the mutex at `mutex`, which `state` named when we looked: with
    /// `held` when the mutex is held (marking it, so that its unlock wakes them), with `free`
    /// otherwise; `callback` is `unpark_requeue`'s. Returns the state found instead, doing
    /// nothing, if the waiters changed since we looked.
    fn requeue_onto(
        &self,
        mutex: *mut RawMutex,
        held: RequeueOp,
        free: RequeueOp,
        callback: impl FnOnce(RequeueOp, UnparkResult) -> usize,
    ) -> Option<*mut RawMutex> {
        let mut changed = None;
        let validate = || {
            // Relaxed: under our bucket lock.
            let now = self.state.load(Ordering::Relaxed);
            if now != mutex {
                changed = Some(now);
                return RequeueOp::Abort;
            }
            // SAFETY: `state` holds this address under our bucket lock, which we hold, so a
            // waiter that borrows that mutex is queued and the mutex is alive.
            let raw = unsafe { &*mutex };
            if raw.mark_parked_if_locked() {
                held
            } else {
                free
            }
        };
        unpark_requeue(self.key(), mutex as usize, validate, callback);
        changed
    }

    /// Wakes every thread waiting now. Go's `c.Broadcast()`.
    ///
    /// When the waiters all use the same `Mutex`, at most one of them is woken (none if the mutex
    /// is held); the others move to the mutex's queue and get the mutex one at a time, as it is
    /// released, without a stampede. With other locks, every waiter is woken.
    ///
    /// With no waiter this is a single atomic load.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_cond::Cond;
    /// use gosync_mutex::Mutex;
    /// use std::sync::Arc;
    ///
    /// let pair = Arc::new((Mutex::new(false), Cond::new()));
    /// let waiters: Vec<_> = (0..3)
    ///     .map(|_| {
    ///         let pair = Arc::clone(&pair);
    ///         std::thread::spawn(move || {
    ///             let mut guard = pair.0.lock();
    ///             pair.1.wait_while(&mut guard, |go| !*go);
    ///         })
    ///     })
    ///     .collect();
    /// *pair.0.lock() = true;
    /// pair.1.broadcast();
    /// for waiter in waiters {
    ///     waiter.join().unwrap();
    /// }
    /// ```
    #[inline]
    pub fn broadcast(&self) {
        // Relaxed: see the notes about memory ordering.
        let state = self.state.load(Ordering::Relaxed);
        if state != EMPTY {
            self.broadcast_slow(state);
        }
    }

    #[cold]
    fn broadcast_slow(&self, mut state: *mut RawMutex) {
        loop {
            if state == EMPTY {
                return;
            }
            if state == mixed() {
                unpark_filter(self.key(), |_| FilterOp::Unpark, |result| self.left(result));
                return;
            }
            // Every waiter uses the mutex at `state`: move them there. Held, its unlock wakes
            // the first of them; free, we wake the first, whose unlock wakes the next.
            let requeued = |op, result: UnparkResult| {
                if op == RequeueOp::UnparkOneRequeueRest && result.requeued != 0 {
                    // SAFETY: requeued waiters borrow the mutex and are still queued on it
                    // under the bucket locks we hold, so it is alive.
                    let raw = unsafe { &*state };
                    // The woken waiter will lock it; its unlock must wake the next.
                    raw.mark_parked();
                }
                self.left(result)
            };
            let (held, free) = (RequeueOp::RequeueAll, RequeueOp::UnparkOneRequeueRest);
            match self.requeue_onto(state, held, free, requeued) {
                Some(now) => state = now,
                None => return,
            }
        }
    }
}

impl Default for Cond {
    /// A condition variable with no waiters.
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Cond {
    /// Shows whether threads wait right now (only a hint: it may change at once).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a snapshot that orders nothing.
        let waiting = self.state.load(Ordering::Relaxed) != EMPTY;
        f.debug_struct("Cond")
            .field("has_waiters", &waiting)
            .finish()
    }
}

static_assertions::assert_impl_all!(Cond: Send, Sync, Default, fmt::Debug);
static_assertions::assert_impl_all!(WaitTimeoutResult: Send, Sync, Copy);
#[cfg(not(gosync_loom))]
static_assertions::assert_eq_size!(Cond, usize);

#[cfg(test)]
mod tests {
    use super::*;
    use gosync_mutex::Mutex;

    #[test]
    fn state_starts_and_ends_empty() {
        let cond = Cond::new();
        assert_eq!(cond.state.load(Ordering::Relaxed), EMPTY);
        let mutex = Mutex::new(());
        let timed_out = cond.wait_for(&mut mutex.lock(), Duration::from_millis(1));
        assert!(timed_out.timed_out());
        assert_eq!(cond.state.load(Ordering::Relaxed), EMPTY);
    }

    #[test]
    fn past_deadline_keeps_the_lock() {
        let cond = Cond::new();
        let mutex = Mutex::new(());
        let mut guard = mutex.lock();
        assert!(cond.wait_until(&mut guard, Instant::now()).timed_out());
        assert!(cond.wait_for(&mut guard, Duration::ZERO).timed_out());
        assert!(mutex.is_locked());
    }

    #[test]
    fn debug_shows_waiters() {
        assert_eq!(format!("{:?}", Cond::new()), "Cond { has_waiters: false }");
    }
}
