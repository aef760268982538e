//! The bare lock word: Go's `sync.Mutex` algorithm on gosync-park's keyed queues.
//!
//! Notes about memory ordering: a lock is an `Acquire` read-modify-write of `state` that sets
//! `LOCKED` (the fast-path CAS, the slow path's CAS, `try_lock`), and an unlock is the `Release`
//! `fetch_sub` that clears it, so each critical section happens before the next one that sees
//! the lock free. In a direct hand-off nobody else can take the lock in between (`STARVING`
//! keeps newcomers out), the unlocker's callback reads the state with `Acquire` (the release it
//! sees may be another owner's: an unlock's slow path can run after a later owner's release) and
//! sets `LOCKED` again for the woken thread, and the park layer's `Release` store of the woken
//! flag (after the callback) and the woken thread's `Acquire` load of it carry the previous
//! owner's writes to the new owner. Every other change to `state` (`PARKED`, `STARVING`) is `Relaxed`: it is made
//! under the key's bucket lock or by the owner, guards no data, and a thread that acts on it
//! re-reads the word with an `Acquire` CAS before touching data.

use std::fmt;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::sync::{AtomicU8, Ordering};
use gosync_park::{
    cancelled_error, deadline_passed, park, unpark_one, Cancellation, ParkOptions, ParkResult,
    ParkedBits, SpinWait, WaitClock, STARVATION_THRESHOLD,
};

/// `state`: some thread holds the lock.
const LOCKED: u8 = 0b001;
/// `state`: threads are (or may be) queued on [`RawMutex::key`]; unlock must take the slow path.
const PARKED: u8 = 0b010;
/// `state`: starvation mode; unlock hands the lock to the head waiter, newcomers queue.
const STARVING: u8 = 0b100;

/// Whether a thread that sees `state` may take the lock with a CAS. In starvation mode the lock
/// is handed over, never left to newcomers: between an unlock's `fetch_sub` and its hand-off
/// the state is `PARKED | STARVING`, which counts as held (Go's rule: "the mutex is still
/// considered locked if mutexStarving is set").
#[inline]
fn is_free(state: u8) -> bool {
    state & (LOCKED | STARVING) == 0
}

/// Whether a thread that found the lock held may spin on it rather than park: only while nobody
/// is queued. Spinning past a queue would only steal time from the owner and the woken waiter.
#[inline]
fn may_spin(state: u8) -> bool {
    state & (PARKED | STARVING) == 0
}

/// Whether `state` is one the algorithm can produce: `STARVING` only with `PARKED`.
#[cfg(test)]
fn is_consistent(state: u8) -> bool {
    state & !(LOCKED | PARKED | STARVING) == 0 && (state & STARVING == 0 || state & PARKED != 0)
}

/// The bare lock of a [`Mutex`](crate::Mutex): one byte, no data, no guard.
///
/// For code that needs a lock apart from the data it protects: a condition variable (gosync's
/// `Cond` unlocks and relocks it around a wait), and `lock_api`-generic code (with the `lock_api`
/// feature, it implements [`lock_api::RawMutex`](https://docs.rs/lock_api/0.4/lock_api/trait.RawMutex.html) and [`lock_api::RawMutexTimed`](https://docs.rs/lock_api/0.4/lock_api/trait.RawMutexTimed.html)). Prefer
/// [`Mutex`](crate::Mutex), whose guard makes the pairing of lock and unlock automatic.
///
/// The algorithm is Go's `sync.Mutex`: normal mode lets a running thread take a just-released
/// lock (throughput), and a waiter kept out for more than 1 ms switches the lock to starvation
/// mode, where each unlock hands ownership straight to the longest waiter. The waiting happens in
/// gosync-park's queues, keyed by this lock's address, so the lock stays one byte.
///
/// # Differences from Go
///
/// Go's `Unlock` of an unlocked mutex is a fatal error; [`unlock`](Self::unlock) here is an
/// `unsafe fn` whose caller promises the lock is held. As in Go, the lock is not tied to a
/// thread: one thread may lock it and another unlock it.
///
/// # Examples
///
/// ```
/// use gosync_mutex::RawMutex;
///
/// static LOCK: RawMutex = RawMutex::new();
///
/// LOCK.lock();
/// assert!(LOCK.is_locked());
/// assert!(!LOCK.try_lock());
/// // SAFETY: this thread locked it just above.
/// unsafe { LOCK.unlock() };
/// assert!(!LOCK.is_locked());
/// ```
pub struct RawMutex {
    /// The lock word. The states the algorithm produces:
    ///
    /// | bits | meaning |
    /// | --- | --- |
    /// | `0` | free, nobody queued |
    /// | `LOCKED` | held, nobody queued: unlock is one CAS |
    /// | `PARKED` | free, threads queued: a woken waiter and running threads race for it (normal mode) |
    /// | `LOCKED \| PARKED` | held, threads queued: unlock wakes the head waiter and frees the lock |
    /// | `LOCKED \| PARKED \| STARVING` | held, starvation mode: unlock hands it to the head waiter |
    /// | `PARKED \| STARVING` | being handed over (between an unlock's `fetch_sub` and its hand-off): held for newcomers |
    ///
    /// `PARKED` is set and cleared only under the key's bucket lock (in park's validate, in the
    /// unpark callback, in the abort callback of the last waiter leaving, in the requeue of a
    /// condition variable), so it is set whenever a thread is queued. (A misused unlock of a
    /// free lock borrows from the marks and puts them back outside that lock, before its own
    /// wake takes the lock: see `unlock_slow`.) `STARVING` is set by a waiter
    /// re-queueing itself at the head after it waited more than 1 ms, under the same lock, and
    /// only while the lock is held; it is cleared when the last waiter leaves, and by a waiter that
    /// received the lock by hand-off after waiting less than 1 ms.
    state: AtomicU8,
}

impl RawMutex {
    /// The unpark token of a plain wake-up: the lock was released, and the woken thread must lock
    /// it again (with [`lock`](Self::lock)), possibly racing other threads.
    pub const TOKEN_NORMAL: usize = gosync_park::TOKEN_NORMAL;

    /// The unpark token of a hand-off: the unlocking thread passed the lock to the woken thread
    /// without releasing it. The woken thread owns the lock and must not lock it again.
    ///
    /// A condition variable whose waiters were requeued onto [`key`](Self::key) sees this token
    /// (or [`TOKEN_NORMAL`](Self::TOKEN_NORMAL)) as the result of its own park.
    pub const TOKEN_HANDOFF: usize = gosync_park::TOKEN_HANDOFF;

    gosync_park::const_unless_loom! {
        /// Creates an unlocked lock. A `const fn`, so it can initialise a `static`.
        ///
        /// # Examples
        ///
        /// ```
        /// use gosync_mutex::RawMutex;
        ///
        /// static LOCK: RawMutex = RawMutex::new();
        /// assert!(!LOCK.is_locked());
        /// ```
        #[inline]
        #[must_use]
        pub const fn new() -> Self {
            Self {
                state: AtomicU8::new(0),
            }
        }
    }

    /// Locks, blocking the current thread until it can.
    ///
    /// Not reentrant: locking a lock this thread holds deadlocks, as in Go.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_mutex::RawMutex::new();
    /// lock.lock();
    /// assert!(lock.is_locked());
    /// // SAFETY: locked just above.
    /// unsafe { lock.unlock() };
    /// ```
    #[inline]
    pub fn lock(&self) {
        if !self.try_lock_fast() {
            let locked = self.lock_slow(None, None);
            debug_assert!(locked, "an untimed lock cannot time out");
        }
    }

    /// Locks if the lock is free now; never blocks. Returns whether it locked.
    ///
    /// In starvation mode the lock is never free to newcomers, so this fails while threads are
    /// queued for a hand-off.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_mutex::RawMutex::new();
    /// assert!(lock.try_lock());
    /// assert!(!lock.try_lock());
    /// // SAFETY: locked by the first try_lock.
    /// unsafe { lock.unlock() };
    /// ```
    #[inline]
    #[must_use = "the lock is taken only when this returns true"]
    pub fn try_lock(&self) -> bool {
        // Relaxed: only a guess for the CAS, which Acquires.
        self.lock_if_free(self.state.load(Ordering::Relaxed))
            .is_ok()
    }

    /// Takes the lock as long as it is free, starting from the guess `state`. Returns the state
    /// that found it held.
    #[inline]
    fn lock_if_free(&self, mut state: u8) -> Result<(), u8> {
        while is_free(state) {
            // Acquire: pairs with the Release of the unlock that freed it.
            match self.state.compare_exchange_weak(
                state,
                state | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
        Err(state)
    }

    /// Locks, giving up after `timeout`. Returns whether it locked.
    ///
    /// A zero timeout still locks a free lock. A timeout too large to represent waits forever.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = gosync_mutex::RawMutex::new();
    /// assert!(lock.try_lock_for(Duration::ZERO));
    /// assert!(!lock.try_lock_for(Duration::from_millis(1)));
    /// // SAFETY: locked by the first call.
    /// unsafe { lock.unlock() };
    /// ```
    #[inline]
    #[must_use = "the lock is taken only when this returns true"]
    pub fn try_lock_for(&self, timeout: Duration) -> bool {
        self.lock_until(gosync_park::deadline_after(timeout))
    }

    /// Locks, giving up at `deadline`. Returns whether it locked.
    ///
    /// A deadline in the past still locks a free lock, and otherwise returns `false` at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// let lock = gosync_mutex::RawMutex::new();
    /// assert!(lock.try_lock_until(Instant::now()));
    /// assert!(!lock.try_lock_until(Instant::now() + Duration::from_millis(1)));
    /// // SAFETY: locked by the first call.
    /// unsafe { lock.unlock() };
    /// ```
    #[inline]
    #[must_use = "the lock is taken only when this returns true"]
    pub fn try_lock_until(&self, deadline: Instant) -> bool {
        self.lock_until(Some(deadline))
    }

    /// Locks, giving up when `ctx` is done (cancelled, or past its deadline).
    ///
    /// A context that is already done fails at once, even when the lock is free (the
    /// cancellation came first, as in x/sync).
    ///
    /// # Errors
    ///
    /// The context's error when it is done before the lock is taken; the lock is then not held.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_mutex::RawMutex;
    ///
    /// let lock = RawMutex::new();
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// assert_eq!(lock.lock_ctx(&ctx), Ok(()));
    /// cancel.cancel();
    /// // SAFETY: locked just above.
    /// unsafe { lock.unlock() };
    /// assert_eq!(lock.lock_ctx(&ctx), Err(ContextError::Canceled));
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    pub fn lock_ctx(&self, ctx: &Context) -> Result<(), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        if self.try_lock_fast() || self.lock_slow(None, Some(ctx)) {
            Ok(())
        } else {
            Err(cancelled_error(ctx))
        }
    }

    /// Locks, giving up at `deadline` if there is one.
    #[inline]
    fn lock_until(&self, deadline: Option<Instant>) -> bool {
        self.try_lock_fast() || self.lock_slow(deadline, None)
    }

    /// The uncontended lock: one CAS from free and unmarked.
    #[inline]
    fn try_lock_fast(&self) -> bool {
        // Acquire: pairs with the Release of the unlock that freed it.
        self.state
            .compare_exchange_weak(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Unlocks.
    ///
    /// If threads are waiting, one of them is woken: in normal mode it races running threads for
    /// the lock; in starvation mode it receives the lock directly.
    ///
    /// # Safety
    ///
    /// The lock must be locked, and the caller must own that locked state: it (or a thread that
    /// passed ownership to it, since the lock is not tied to a thread) locked it and has not
    /// unlocked it since. Unlocking a lock that someone else holds breaks their mutual exclusion.
    /// Unlocking a lock that is free panics, whether or not threads wait for it, as Go's
    /// `Unlock` of an unlocked mutex is fatal: `sync: unlock of unlocked mutex`; the lock is
    /// left free and its waiters are woken as by any unlock. Unlocking a lock that another
    /// thread holds is not caught (the word does not say who holds it; Go's is the same).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_mutex::RawMutex::new();
    /// lock.lock();
    /// // SAFETY: this thread locked it and has not unlocked it.
    /// unsafe { lock.unlock() };
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    #[track_caller]
    pub unsafe fn unlock(&self) {
        // Release: pairs with the Acquire of the next lock. One `lock dec` rather than a CAS
        // (measurably cheaper uncontended); with marks set, the slow path wakes a waiter.
        let unlocked = self.state.fetch_sub(LOCKED, Ordering::Release);
        if unlocked != LOCKED {
            self.unlock_slow(unlocked);
        }
    }

    /// Whether the lock is held by some thread right now. Only a hint: it may change at once.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_mutex::RawMutex::new();
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    pub fn is_locked(&self) -> bool {
        // Relaxed: a snapshot that orders nothing.
        !is_free(self.state.load(Ordering::Relaxed))
    }

    /// The park key of this lock: the address of its state word. Waiters queue in gosync-park
    /// under this key.
    ///
    /// A condition variable requeues its waiters onto this key (`gosync_park::unpark_requeue`),
    /// so that a broadcast lets them in one at a time instead of waking them all to fight over
    /// the lock, and a signal sent while the lock is held wakes its waiter once, at the unlock,
    /// instead of waking it to find the lock held. It must then call [`mark_parked_if_locked`](Self::mark_parked_if_locked) or
    /// [`mark_parked`](Self::mark_parked) under the requeue's bucket locks, and each requeued
    /// thread, when unparked, owns the lock if its token is
    /// [`TOKEN_HANDOFF`](Self::TOKEN_HANDOFF) and otherwise calls [`lock`](Self::lock).
    ///
    /// # Examples
    ///
    /// A thread queued on the key directly, as a requeued condition-variable waiter is: the
    /// unlock wakes it, and it owns the lock on a hand-off or locks it otherwise.
    ///
    /// ```
    /// use gosync_mutex::RawMutex;
    /// use gosync_park::{park, ParkOptions, ParkResult};
    /// use std::sync::Arc;
    ///
    /// let lock = Arc::new(RawMutex::new());
    /// lock.lock();
    /// let waiter = {
    ///     let lock = Arc::clone(&lock);
    ///     std::thread::spawn(move || {
    ///         // Sleeps only while the lock is held (checked under the queue's lock).
    ///         let validate = || lock.mark_parked_if_locked();
    ///         match park(lock.key(), ParkOptions::default(), validate, || {}, |_, _| {}) {
    ///             ParkResult::Unparked(RawMutex::TOKEN_HANDOFF) => {}
    ///             _ => lock.lock(),
    ///         }
    ///         // SAFETY: this thread owns the lock, by hand-off or by `lock`.
    ///         unsafe { lock.unlock() };
    ///     })
    /// };
    /// // SAFETY: locked above; the waiter, if queued, is woken by this unlock.
    /// unsafe { lock.unlock() };
    /// waiter.join().unwrap();
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    pub fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Marks the lock as having queued waiters if it is locked, and returns whether it did.
    ///
    /// For a condition variable's requeue: call it under the bucket locks of
    /// `gosync_park::unpark_requeue` (in its `validate` callback). If it returns `true`, the lock
    /// is held and its unlock will take the slow path and wake the requeued threads, so they can
    /// all be requeued (`RequeueOp::RequeueAll`, or `RequeueOne` for a signal); if `false`, the
    /// lock is free and the condition variable must wake one thread itself
    /// (`RequeueOp::UnparkOne`, or `UnparkOneRequeueRest` and then
    /// [`mark_parked`](Self::mark_parked) for the rest). Calling it elsewhere is harmless but makes the next unlock slower.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_mutex::RawMutex::new();
    /// assert!(!lock.mark_parked_if_locked());
    /// lock.lock();
    /// assert!(lock.mark_parked_if_locked());
    /// // SAFETY: locked just above. The unlock finds nobody queued and clears the mark.
    /// unsafe { lock.unlock() };
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    pub fn mark_parked_if_locked(&self) -> bool {
        // Under the requeue's bucket locks (see `key`).
        self.state.set_parked_while(PARKED, |state| !is_free(state))
    }

    /// Marks the lock as having queued waiters, whether or not it is locked.
    ///
    /// For a condition variable that requeued threads onto [`key`](Self::key) while waking one
    /// of them to take the lock: call it under the requeue's bucket locks (in its callback, when
    /// threads were requeued), so that whoever unlocks next wakes the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = gosync_mutex::RawMutex::new();
    /// lock.mark_parked();
    /// // A free lock with the mark still locks; the slow unlock clears the mark.
    /// lock.lock();
    /// // SAFETY: locked just above.
    /// unsafe { lock.unlock() };
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    pub fn mark_parked(&self) {
        // Relaxed: as in `mark_parked_if_locked`.
        self.state.fetch_or(PARKED, Ordering::Relaxed);
    }

    /// Switches the lock to starvation mode if it is locked and a thread is queued on it, and
    /// returns whether it did. The next unlock then hands the lock to the head waiter.
    ///
    /// A test hook (normally a waiter switches the mode after waiting 1 ms), so that models can
    /// reach the hand-off path deterministically: only under loom and with the `test-hooks`
    /// feature, which is not part of the API (see `gosync_park::model`).
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub fn force_starvation(&self) -> bool {
        gosync_park::mark_if_parked(&self.state, self.key(), PARKED | STARVING, |state| {
            !is_free(state)
        })
    }

    /// Whether the mark "threads are queued" (or the starvation mode, which implies it) is set.
    ///
    /// A test hook: models check that the mark is cleared once the last waiter has left, however
    /// it left (woken, handed the lock, timed out). Only under loom and with the `test-hooks`
    /// feature, as [`force_starvation`](Self::force_starvation).
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub fn is_parked(&self) -> bool {
        // Relaxed: a snapshot for tests.
        self.state.load(Ordering::Relaxed) & (PARKED | STARVING) != 0
    }

    /// The contended lock: spin while that may help, then queue; in normal mode race for the
    /// lock each time we are woken, in starvation mode receive it by hand-off. Gives up (`false`)
    /// at `deadline` or when `cancel` is cancelled.
    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>, cancel: Option<&dyn Cancellation>) -> bool {
        if deadline.is_some_and(deadline_passed) {
            // A past deadline: only a free lock will do.
            return self.try_lock();
        }
        let mut spin = SpinWait::new();
        // Set at the first park: Go's `waitStartTime`.
        let mut clock: Option<WaitClock> = None;
        let mut starving = false;
        // Relaxed: only a guess for the CAS below, which Acquires.
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            match self.lock_if_free(state) {
                Ok(()) => return true,
                Err(held) => state = held,
            }
            if may_spin(state) && spin.spin() {
                state = self.state.load(Ordering::Relaxed);
                continue;
            }

            // Queue: at the tail the first time, at the head after losing a race once woken
            // (Go's `queueLifo`), keeping this thread's turn. A waiter that has waited too long
            // also switches the lock to starvation mode as it re-queues.
            let options = ParkOptions {
                deadline,
                cancel,
                front: clock.is_some(),
                // This thread has spun already (above); sleeping now leaves the lock to the
                // running threads instead of bouncing its cache line (see `sleep_at_once`).
                sleep_at_once: true,
                ..ParkOptions::default()
            };
            let mode = if starving { PARKED | STARVING } else { PARKED };
            // Under the bucket lock, which unlock_slow's callback also holds; a lock released
            // meanwhile makes us race for it instead of sleeping.
            let validate = || self.state.set_parked_while(mode, |state| !is_free(state));
            let on_abort = |_key, was_last: bool| {
                if was_last {
                    // We never give up while owning the lock, so no data is published here. If
                    // an unlock is handing it over, clearing STARVING leaves it free.
                    self.state.clear_parked(PARKED | STARVING);
                }
            };
            let clock = clock.get_or_insert_with(WaitClock::start);
            match park(self.key(), options, validate, || {}, on_abort) {
                ParkResult::Unparked(Self::TOKEN_HANDOFF) => {
                    // Eventual fairness, Go's way: the previous owner kept the lock locked and
                    // passed it to us. Starvation mode ends when hand-offs are no longer needed:
                    // when we got the lock within the threshold (the unlocker already ended it
                    // if we were the last waiter).
                    if !clock.woken_after(STARVATION_THRESHOLD) {
                        // Relaxed: we own the lock; the mode bit guards no data.
                        self.state.fetch_and(!STARVING, Ordering::Relaxed);
                    }
                    return true;
                }
                ParkResult::Unparked(_) => {
                    starving = clock.woken_after(STARVATION_THRESHOLD) || starving;
                }
                ParkResult::Invalid => {}
                ParkResult::TimedOut | ParkResult::Cancelled => return false,
            }
            spin.reset();
            state = self.state.load(Ordering::Relaxed);
        }
    }

    /// The unlock with waiters (or the mode bits) set, after the lock was released: wake the head
    /// waiter, and in starvation mode hand the lock to it.
    #[cold]
    #[track_caller]
    fn unlock_slow(&self, unlocked: u8) {
        // `unlocked` is the word this unlock changed, not a later look at it: another thread's
        // misuse may have broken the word since, and the panic is that thread's to raise. An
        // owner's unlock always finds `LOCKED` set; without it the lock was free (or being
        // handed over, which no unlock may touch either), and subtracting `LOCKED` borrowed
        // from the marks above it: the lowest mark set was cleared and every bit below it set,
        // `LOCKED` among them (from `0`, every bit of the word, bits no lock ever sets). Nobody
        // can take the lock meanwhile, as it looks held, and a hand-off under way fails its
        // compare-and-swap (below), so that `LOCKED` is this unlock's to clear. The repair
        // frees it with `PARKED` set, which the borrow cleared (`STARVING` never comes without
        // `PARKED`, so the borrow leaves it) and which threads queued meanwhile need: an extra
        // mark only sends the wake below down its slow path, which clears it if nobody waits.
        // The wake then runs as for any unlock, and the panic follows.
        let misused = unlocked & LOCKED == 0;
        if misused {
            // Relaxed: the misuse published nothing; the wake below fixes the marks under the
            // queue lock.
            if unlocked == 0 {
                self.state.fetch_and(PARKED, Ordering::Relaxed);
            } else {
                self.state.fetch_or(PARKED, Ordering::Relaxed);
                self.state.fetch_and(!LOCKED, Ordering::Relaxed);
            }
        }
        unpark_one(self.key(), |result| {
            // Acquire: pairs with the Release `fetch_sub` of the unlock that freed the lock,
            // which need not be ours (see below), so that a hand-off carries that owner's
            // writes on to the woken thread. PARKED and STARVING change under this lock.
            let state = self.state.load(Ordering::Acquire);
            // Hand over only a lock nobody holds: our release may have found the lock in normal
            // mode, a newcomer may have taken it since, and a waiter may then have switched it
            // to starvation mode; the newcomer's own unlock hands it over then. While STARVING
            // is set and LOCKED clear, nobody can set LOCKED but us (newcomers keep out, and
            // STARVING is only cleared under this lock or by an owner), save a misused unlock's
            // borrow, which the compare-and-swap below finds.
            if result.unparked != 0 && state & (LOCKED | STARVING) == STARVING {
                // Starvation mode: pass the lock to the woken head waiter. The mode ends with
                // the last waiter.
                let marks = if result.have_more {
                    PARKED | STARVING
                } else {
                    0
                };
                // A compare-and-swap, not a store: a misused unlock (of this lock being handed
                // over) changes the word outside this lock, and its repair clears the `LOCKED`
                // its borrow set; stored over, that bit would be the woken thread's, and the
                // lock would have two owners. If one came in, the woken thread races as in
                // normal mode below, and the misuse's own wake hands the lock on.
                // Relaxed: the hand-off publishes our writes through the park layer.
                if self
                    .state
                    .compare_exchange(state, LOCKED | marks, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
                {
                    return Self::TOKEN_HANDOFF;
                }
            }
            // Normal mode: the lock is free already (a newcomer may hold it by now, or a
            // misuse's borrow makes it look held until its repair); the woken thread races for
            // it. The marks go with the last waiter (STARVING too: it can be left set when
            // requeued condition-variable waiters were the last to leave).
            if !result.have_more {
                // Relaxed: see above; the lock's own bit is not touched.
                self.state
                    .fetch_and(!(PARKED | STARVING), Ordering::Relaxed);
            }
            Self::TOKEN_NORMAL
        });
        if misused {
            panic!("sync: unlock of unlocked mutex");
        }
    }
}

impl Default for RawMutex {
    /// An unlocked lock.
    #[inline]
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMutex")
            .field("locked", &self.is_locked())
            .finish_non_exhaustive()
    }
}

/// `lock_api`'s lock over this one, for `lock_api::Mutex<RawMutex, T>` and generic code.
#[cfg(all(feature = "lock_api", not(gosync_loom)))]
// SAFETY: `lock` and a `true` from `try_lock` give the caller the lock, exclusive until the
// matching `unlock`, with every write of the previous owner visible (see the notes about memory
// ordering above); `INIT` is unlocked. The guard is `!Send`, as `MutexGuard`'s.
unsafe impl lock_api::RawMutex for RawMutex {
    const INIT: Self = Self::new();

    type GuardMarker = lock_api::GuardNoSend;

    #[inline]
    fn lock(&self) {
        RawMutex::lock(self);
    }

    #[inline]
    fn try_lock(&self) -> bool {
        RawMutex::try_lock(self)
    }

    #[inline]
    #[track_caller]
    unsafe fn unlock(&self) {
        // SAFETY: lock_api's contract on `unlock` is ours: the caller holds the lock.
        unsafe { RawMutex::unlock(self) }
    }

    #[inline]
    fn is_locked(&self) -> bool {
        RawMutex::is_locked(self)
    }
}

/// `lock_api`'s timed locking, for `lock_api::Mutex::try_lock_for` and friends.
#[cfg(all(feature = "lock_api", not(gosync_loom)))]
// SAFETY: a `true` return locks exactly as `lock` does; `false` leaves the caller without the
// lock and the lock as others left it (a timed-out waiter only removes its own queue mark).
unsafe impl lock_api::RawMutexTimed for RawMutex {
    type Duration = Duration;
    type Instant = Instant;

    #[inline]
    fn try_lock_for(&self, timeout: Duration) -> bool {
        RawMutex::try_lock_for(self, timeout)
    }

    #[inline]
    fn try_lock_until(&self, deadline: Instant) -> bool {
        RawMutex::try_lock_until(self, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

    #[test]
    fn only_an_unlocked_state_is_free() {
        assert!(is_free(0));
        assert!(is_free(PARKED));
        assert!(!is_free(LOCKED));
        assert!(!is_free(LOCKED | PARKED));
        assert!(!is_free(LOCKED | PARKED | STARVING));
        assert!(!is_free(PARKED | STARVING), "being handed over");
    }

    #[test]
    fn spinning_only_without_a_queue() {
        assert!(may_spin(LOCKED));
        assert!(may_spin(0));
        assert!(!may_spin(LOCKED | PARKED));
        assert!(!may_spin(LOCKED | PARKED | STARVING));
    }

    #[test]
    fn starving_states_are_queued_and_never_free() {
        let consistent: Vec<u8> = ALL.into_iter().filter(|&s| is_consistent(s)).collect();
        assert_eq!(
            consistent,
            [
                0,
                LOCKED,
                PARKED,
                LOCKED | PARKED,
                PARKED | STARVING,
                LOCKED | PARKED | STARVING
            ]
        );
        for state in consistent {
            if state & STARVING != 0 {
                assert!(!is_free(state) && !may_spin(state));
            }
        }
    }

    #[test]
    #[cfg(not(gosync_loom))] // loom atomics work only inside `loom::model`
    fn slow_unlock_with_a_stale_mark_frees_the_lock() {
        let lock = RawMutex::new();
        lock.lock();
        assert!(lock.mark_parked_if_locked());
        assert_eq!(lock.state.load(Ordering::Relaxed), LOCKED | PARKED);
        // SAFETY: locked above.
        unsafe { lock.unlock() };
        assert_eq!(lock.state.load(Ordering::Relaxed), 0);
    }

    #[test]
    #[cfg(not(gosync_loom))] // loom atomics work only inside `loom::model`
    fn force_starvation_needs_a_waiter() {
        let lock = RawMutex::new();
        assert!(!lock.force_starvation());
        lock.lock();
        assert!(!lock.force_starvation());
        assert_eq!(lock.state.load(Ordering::Relaxed), LOCKED);
        // SAFETY: locked above.
        unsafe { lock.unlock() };
    }
}
