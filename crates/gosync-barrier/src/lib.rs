//! A cyclic barrier: a fixed number of threads wait for each other, then all go on, as many
//! times as needed.
//!
//! Go has no barrier in `sync`; Go programs build one from a `WaitGroup` or a `Mutex` + `Cond`.
//! This one is the full kind (Java's `CyclicBarrier`): an action per trip, timeouts, context
//! cancellation, a broken state and [`reset`](Barrier::reset).
//!
//! | operation | here |
//! | --- | --- |
//! | wait for the others | [`wait`](Barrier::wait), [`wait_for`](Barrier::wait_for), [`wait_until`](Barrier::wait_until), [`wait_ctx`](Barrier::wait_ctx) |
//! | run code once per trip, before anyone goes on | [`Barrier::with_action`] |
//! | give up on the round | [`break_barrier`](Barrier::break_barrier), [`reset`](Barrier::reset) |
//! | inspect | [`is_broken`](Barrier::is_broken), [`n_waiting`](Barrier::n_waiting), [`parties`](Barrier::parties) |
//!
//! # Examples
//!
//! ```
//! use gosync_barrier::Barrier;
//!
//! let barrier = Barrier::new(3);
//! std::thread::scope(|s| {
//!     for _ in 0..3 {
//!         s.spawn(|| {
//!             for round in 0..2 {
//!                 let passed = barrier.wait().expect("nobody gives up");
//!                 assert_eq!(passed.generation(), round);
//!             }
//!         });
//!     }
//! });
//! ```

// Notes about memory ordering: every field of the state is changed only under the park queue's
// lock of `Barrier::key` (in the park layer's validate and abort callbacks and in unpark
// callbacks), which orders all of it; the fields are atomics so that `is_broken`, `n_waiting` and
// the first guess of a wait can read them outside that lock (Relaxed snapshots that decide
// nothing). Everything a party wrote before `wait` happens before the trip: its arrival takes the
// lock before the leader's does. Everything the parties and the action wrote before the release
// happens before every party's return: the park layer's Release store of the wake-up pairs with
// the woken thread's Acquire load.

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::sync::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use gosync_park::{
    cancelled_error, deadline_after, deadline_passed, park, unpark_filter, Cancellation, FilterOp,
    ParkOptions, ParkResult,
};

/// `Barrier::flags`: the barrier is broken; every wait fails until `reset`.
const BROKEN: u8 = 1;
/// `Barrier::flags`: the last party arrived and the leader runs the action; the parties are
/// decided, and threads arriving now wait for the next generation.
const TRIPPING: u8 = 1 << 1;
/// `Barrier::flags`: the last trip's action panicked (read by late parties, see `late`).
const LAST_TRIP_BROKEN: u8 = 1 << 2;

/// Park token kind: a party of the generation in the token's high bits.
const MEMBER: usize = 0;
/// Park token kind: a party whose timeout fired during its trip's action, waiting again.
const LATE: usize = 1;
/// Park token kind: a thread that arrived during a trip; it arrives again afterwards.
const PENDING: usize = 2;
const KIND_MASK: usize = 3;

/// Unpark token: the barrier tripped.
const TRIPPED: usize = 1;
/// Unpark token: the barrier broke (or was reset) before it tripped.
const BROKE: usize = 2;

/// A park token: the generation (truncated; only compared while it is current) and the kind.
#[inline]
fn park_token(generation: u64, kind: usize) -> usize {
    ((generation as usize) << 2) | kind
}

/// What a wait has become, decided under the queue lock.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// The guesses made before locking were stale: start over.
    Retry,
    /// The barrier is (or was found) broken.
    Broken,
    /// The last party of this generation: runs the action and releases the others.
    Leader(u64),
    /// A party of this generation, queued.
    Member(u64),
    /// Queued until the trip under way ends, not yet a party.
    Pending,
    /// Gave up while its trip's action ran: it waits for the trip's outcome after all.
    Late(u64),
    /// Gave up and broke the barrier for this generation.
    GaveUp(u64),
}

/// How a wait failed, before the caller turns it into a [`BarrierError`].
enum Failure {
    Broken,
    /// This thread's timeout or cancellation came first.
    GaveUp,
}

/// A cyclic barrier for a fixed number of threads (the *parties*).
///
/// Each [`wait`](Self::wait) blocks until `parties` threads have called it; then the barrier
/// *trips*: the last thread to arrive (the *leader*) runs the action given to
/// [`with_action`](Self::with_action), if any, and then everyone is released, and the barrier
/// is ready for the next round (a new *generation*). Everything each party wrote before its
/// `wait` is visible to every party, and to the action, after the trip.
///
/// A waiter that times out or is cancelled breaks the barrier: every thread waiting with it
/// gets [`BarrierError::Broken`] (the one that gave up gets `TimedOut`/`Canceled`), and every
/// later `wait` gets `Broken` until [`reset`](Self::reset). Once the last party has arrived the
/// trip is decided: a timeout that fires while the action runs is too late, and that waiter
/// waits for the trip's outcome like the others. A thread that arrives while the action runs
/// waits for the next generation; if it gives up there, the trip under way still completes,
/// and the barrier is broken from the next generation on. A panicking action breaks the
/// barrier (the others get `Broken`) and the panic continues on the leader's thread.
///
/// Parties spin briefly, then sleep in gosync's parking queues; a trip of two threads is a
/// couple of queue operations.
///
/// # Differences from std
///
/// `std::sync::Barrier` has no timeout, cancellation, action or broken state; its
/// `BarrierWaitResult::is_leader` is this one's too. Here `wait` returns a `Result`, since a
/// barrier can break.
///
/// # Examples
///
/// An action that combines the parties' results once per round:
///
/// ```
/// use gosync_barrier::Barrier;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let total = Arc::new(AtomicU64::new(0));
/// let rounds = Arc::new(AtomicU64::new(0));
/// let barrier = {
///     let rounds = Arc::clone(&rounds);
///     Barrier::with_action(4, move || { rounds.fetch_add(1, Ordering::Relaxed); })
/// };
/// std::thread::scope(|s| {
///     for i in 1..=4 {
///         let (barrier, total) = (&barrier, &total);
///         s.spawn(move || {
///             total.fetch_add(i, Ordering::Relaxed);
///             barrier.wait().unwrap();
///             assert_eq!(total.load(Ordering::Relaxed), 10); // everyone's write is in
///         });
///     }
/// });
/// assert_eq!(rounds.load(Ordering::Relaxed), 1);
/// ```
pub struct Barrier {
    parties: usize,
    /// Parties arrived in the current generation and waiting (zero while tripping). Its
    /// address is the parking key.
    arrived: AtomicUsize,
    /// `BROKEN`, `TRIPPING`, `LAST_TRIP_BROKEN`.
    flags: AtomicU8,
    /// The current generation: +1 per trip and per reset.
    generation: AtomicU64,
    /// Late parties (see [`Role::Late`]) that have not read their trip's outcome yet; while
    /// there are any, `LAST_TRIP_BROKEN` must stay, so no new trip may start.
    late: AtomicUsize,
    action: Option<Box<dyn Fn() + Send + Sync>>,
}

static_assertions::assert_impl_all!(Barrier: Send, Sync);
static_assertions::assert_impl_all!(BarrierError: Send, Sync, Error);

impl Barrier {
    /// Creates a barrier for `parties` threads.
    ///
    /// # Panics
    ///
    /// If `parties` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = gosync_barrier::Barrier::new(1);
    /// assert!(barrier.wait().unwrap().is_leader()); // one party: every wait trips
    /// ```
    #[track_caller]
    #[must_use]
    pub fn new(parties: usize) -> Self {
        Self::build(parties, None)
    }

    /// Creates a barrier for `parties` threads that runs `action` once per trip, on the last
    /// thread to arrive, before any party is released.
    ///
    /// # Panics
    ///
    /// If `parties` is zero.
    ///
    /// # Examples
    ///
    /// See [`Barrier`].
    #[track_caller]
    #[must_use]
    pub fn with_action(parties: usize, action: impl Fn() + Send + Sync + 'static) -> Self {
        Self::build(parties, Some(Box::new(action)))
    }

    #[track_caller]
    fn build(parties: usize, action: Option<Box<dyn Fn() + Send + Sync>>) -> Self {
        assert!(parties > 0, "barrier: parties must be at least 1");
        Self {
            parties,
            arrived: AtomicUsize::new(0),
            flags: AtomicU8::new(0),
            generation: AtomicU64::new(0),
            late: AtomicUsize::new(0),
            action,
        }
    }

    /// The parking key: the address of `arrived`.
    #[inline]
    fn key(&self) -> usize {
        &self.arrived as *const AtomicUsize as usize
    }

    /// Waits until all parties have called `wait`.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Broken`] if the barrier is broken, or breaks while this thread waits
    /// (another waiter gave up, [`break_barrier`](Self::break_barrier), [`reset`](Self::reset),
    /// a panicking action).
    ///
    /// # Panics
    ///
    /// On the leader's thread, if the action panics (the panic continues there).
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = gosync_barrier::Barrier::new(2);
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| barrier.wait().unwrap().is_leader());
    ///     let mine = barrier.wait().unwrap().is_leader();
    ///     assert!(mine != other.join().unwrap()); // exactly one leader
    /// });
    /// ```
    pub fn wait(&self) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_inner(None, None)
            .map_err(|failure| match failure {
                Failure::Broken | Failure::GaveUp => BarrierError::Broken,
            })
    }

    /// Waits as [`wait`](Self::wait) does, at most `timeout`. A zero timeout trips the barrier
    /// if this is the last party and breaks it otherwise.
    ///
    /// # Errors
    ///
    /// [`BarrierError::TimedOut`] when the timeout passes first (the barrier is then broken for
    /// the others); [`BarrierError::Broken`] as for `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_barrier::{Barrier, BarrierError};
    /// use std::time::Duration;
    ///
    /// let barrier = Barrier::new(2);
    /// assert_eq!(barrier.wait_for(Duration::from_millis(1)), Err(BarrierError::TimedOut));
    /// assert!(barrier.is_broken());
    /// ```
    pub fn wait_for(&self, timeout: Duration) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_by(deadline_after(timeout))
    }

    /// Waits as [`wait`](Self::wait) does, until `deadline` at most.
    ///
    /// # Errors
    ///
    /// As [`wait_for`](Self::wait_for).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_barrier::{Barrier, BarrierError};
    /// use std::time::Instant;
    ///
    /// let barrier = Barrier::new(2);
    /// assert_eq!(barrier.wait_until(Instant::now()), Err(BarrierError::TimedOut));
    /// ```
    pub fn wait_until(&self, deadline: Instant) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_by(Some(deadline))
    }

    fn wait_by(&self, deadline: Option<Instant>) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_inner(deadline, None)
            .map_err(|failure| match failure {
                Failure::Broken => BarrierError::Broken,
                Failure::GaveUp => BarrierError::TimedOut,
            })
    }

    /// Waits as [`wait`](Self::wait) does, until `ctx` is done at most.
    ///
    /// # Errors
    ///
    /// [`BarrierError::Canceled`] with the context's error when it is done first (a deadline
    /// reached is `Canceled(ContextError::DeadlineExceeded)`); the barrier is then broken for
    /// the others. A context that is already done fails at once, and breaks the barrier, even
    /// if this is the last party. [`BarrierError::Broken`] as for `wait`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_barrier::{Barrier, BarrierError};
    /// use gosync_context::{Context, ContextError};
    ///
    /// let barrier = Barrier::new(2);
    /// let (ctx, cancel) = Context::background().with_cancel();
    /// cancel.cancel(); // normally from another thread, while the call below waits
    /// assert_eq!(barrier.wait_ctx(&ctx), Err(BarrierError::Canceled(ContextError::Canceled)));
    /// assert_eq!(barrier.wait(), Err(BarrierError::Broken));
    /// ```
    pub fn wait_ctx(&self, ctx: &Context) -> Result<BarrierWaitResult, BarrierError> {
        if let Some(err) = ctx.err() {
            self.break_barrier();
            return Err(BarrierError::Canceled(err));
        }
        self.wait_inner(None, Some(ctx))
            .map_err(|failure| match failure {
                Failure::Broken => BarrierError::Broken,
                Failure::GaveUp => BarrierError::Canceled(cancelled_error(ctx)),
            })
    }

    /// The waiting core. Arrival, leaving and every wake-up decision happen under the queue
    /// lock: a thread's arrival is `park`'s validate step, a thread that gives up decides in
    /// `park`'s abort step, and the releases decide in their unpark callbacks.
    fn wait_inner(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
    ) -> Result<BarrierWaitResult, Failure> {
        loop {
            // Relaxed: guesses for the park token, re-checked under the lock.
            let generation = self.generation.load(Ordering::Relaxed);
            let pending = self.flags.load(Ordering::Relaxed) & TRIPPING != 0
                || self.late.load(Ordering::Relaxed) != 0;
            let kind = if pending { PENDING } else { MEMBER };
            let role = Cell::new(Role::Retry);
            let options = ParkOptions {
                token: park_token(generation, kind),
                deadline,
                cancel,
                // A deadline already past: no point spinning before giving up.
                sleep_at_once: deadline.is_some_and(deadline_passed),
                ..ParkOptions::default()
            };
            let result = park(
                self.key(),
                options,
                || self.arrive(generation, pending, &role),
                || {},
                |_, _| self.leave(&role),
            );
            match (result, role.get()) {
                (ParkResult::Invalid, Role::Retry) | (ParkResult::Unparked(_), Role::Pending) => {}
                (ParkResult::Invalid, Role::Leader(generation)) => return self.lead(generation),
                (ParkResult::Unparked(TRIPPED), Role::Member(generation)) => {
                    return Ok(BarrierWaitResult::party(generation))
                }
                (ParkResult::Unparked(_), _) | (_, Role::Broken) => return Err(Failure::Broken),
                (_, Role::Late(generation)) => return self.await_late(generation),
                (_, Role::GaveUp(generation)) => {
                    self.wake_members(generation);
                    return Err(Failure::GaveUp);
                }
                // A thread that gave up while pending behind a trip or its late parties (it
                // broke the barrier for later generations in `leave`: nobody of that trip
                // waits for it, and nobody has arrived for the next).
                _ => return Err(Failure::GaveUp),
            }
        }
    }

    /// A thread's arrival, under the queue lock (`park`'s validate): whether it sleeps.
    fn arrive(&self, guessed_generation: u64, guessed_pending: bool, role: &Cell<Role>) -> bool {
        // Relaxed, here and in every method that runs under the queue lock: the lock orders them.
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & BROKEN != 0 {
            role.set(Role::Broken);
            return false;
        }
        let generation = self.generation.load(Ordering::Relaxed);
        let pending = flags & TRIPPING != 0 || self.late.load(Ordering::Relaxed) != 0;
        if generation != guessed_generation || pending != guessed_pending {
            return false;
        }
        if pending {
            role.set(Role::Pending);
            return true;
        }
        let arrived = self.arrived.load(Ordering::Relaxed) + 1;
        if arrived == self.parties {
            self.arrived.store(0, Ordering::Relaxed);
            self.flags.fetch_or(TRIPPING, Ordering::Relaxed);
            role.set(Role::Leader(generation));
            return false;
        }
        self.arrived.store(arrived, Ordering::Relaxed);
        role.set(Role::Member(generation));
        true
    }

    /// A queued thread giving up, under the queue lock (`park`'s abort step, after it left the
    /// queue).
    fn leave(&self, role: &Cell<Role>) {
        let generation = match role.get() {
            Role::Member(generation) => generation,
            Role::Pending => {
                // Not a party of the trip under way, whose outcome is decided, but a waiter that
                // gave up all the same: it breaks the barrier for the generations after it. The
                // trip's release keeps `BROKEN`, and the threads pending with this one find it
                // when they arrive again.
                let flags = self.flags.fetch_or(BROKEN, Ordering::Relaxed);
                if flags & TRIPPING == 0 && self.late.load(Ordering::Relaxed) == 0 {
                    // The late parties are done, and the last of them has yet to wake the
                    // pending threads (`wake_pending`, after its lock): threads that arrived
                    // meanwhile are parties of the next generation, which this breaks. They are
                    // woken as when one of them gives up.
                    self.arrived.store(0, Ordering::Relaxed);
                    role.set(Role::GaveUp(self.generation.load(Ordering::Relaxed)));
                }
                return;
            }
            _ => return,
        };
        let flags = self.flags.load(Ordering::Relaxed);
        if flags & TRIPPING != 0 {
            // Its trip is decided (queued parties always belong to the trip under way).
            self.late.fetch_add(1, Ordering::Relaxed);
            role.set(Role::Late(generation));
        } else if flags & BROKEN != 0 {
            // Broken by someone else; their wake-up has not reached this thread yet.
            role.set(Role::Broken);
        } else {
            self.flags.fetch_or(BROKEN, Ordering::Relaxed);
            self.arrived.store(0, Ordering::Relaxed);
            role.set(Role::GaveUp(generation));
        }
    }

    /// The leader: runs the action, then releases the parties with the outcome.
    fn lead(&self, generation: u64) -> Result<BarrierWaitResult, Failure> {
        if let Some(action) = &self.action {
            /// Breaks the barrier if the action unwinds, so that nobody waits forever.
            struct BreakOnUnwind<'a>(&'a Barrier);
            impl Drop for BreakOnUnwind<'_> {
                fn drop(&mut self) {
                    self.0.release(BROKE);
                }
            }
            let on_unwind = BreakOnUnwind(self);
            action();
            std::mem::forget(on_unwind);
        }
        self.release(TRIPPED);
        Ok(BarrierWaitResult {
            generation,
            leader: true,
        })
    }

    /// Ends the trip under way: wakes every queued thread (the parties, late parties waiting
    /// again, threads pending for the next generation) with `outcome`.
    fn release(&self, outcome: usize) {
        let late_woken = Cell::new(0);
        unpark_filter(
            self.key(),
            |token| {
                if token & KIND_MASK == LATE {
                    late_woken.set(late_woken.get() + 1);
                }
                FilterOp::Unpark
            },
            |_| {
                let mut flags = self.flags.load(Ordering::Relaxed) & !(TRIPPING | LAST_TRIP_BROKEN);
                if outcome == TRIPPED {
                    self.generation.fetch_add(1, Ordering::Relaxed);
                } else {
                    flags |= BROKEN | LAST_TRIP_BROKEN;
                }
                self.flags.store(flags, Ordering::Relaxed);
                self.late.fetch_sub(late_woken.get(), Ordering::Relaxed);
                outcome
            },
        );
    }

    /// A party whose timeout or cancellation came while its trip's action ran: waits, without
    /// deadline, for the trip's outcome (the action is running, so this is short).
    fn await_late(&self, generation: u64) -> Result<BarrierWaitResult, Failure> {
        let outcome = Cell::new(TRIPPED);
        let last_late = Cell::new(false);
        let options = ParkOptions {
            token: park_token(generation, LATE),
            ..ParkOptions::default()
        };
        let validate = || {
            let flags = self.flags.load(Ordering::Relaxed);
            if flags & TRIPPING != 0 {
                return true; // still this trip: no other can start while `late` is non-zero
            }
            if flags & LAST_TRIP_BROKEN != 0 {
                outcome.set(BROKE);
            }
            last_late.set(self.late.fetch_sub(1, Ordering::Relaxed) == 1);
            false
        };
        let outcome = match park(self.key(), options, validate, || {}, |_, _| {}) {
            ParkResult::Unparked(token) => token,
            _ => {
                if last_late.get() {
                    self.wake_pending();
                }
                outcome.get()
            }
        };
        if outcome == TRIPPED {
            Ok(BarrierWaitResult::party(generation))
        } else {
            Err(Failure::Broken)
        }
    }

    /// Wakes the threads waiting for the late parties to finish, so that they arrive again.
    fn wake_pending(&self) {
        unpark_filter(
            self.key(),
            |token| match token & KIND_MASK {
                PENDING => FilterOp::Unpark,
                _ => FilterOp::Skip,
            },
            |_| 0,
        );
    }

    /// Wakes the parties of `generation` with `Broken`, after a waiter broke it.
    fn wake_members(&self, generation: u64) {
        let member = park_token(generation, MEMBER);
        unpark_filter(
            self.key(),
            |token| {
                if token == member {
                    FilterOp::Unpark
                } else {
                    FilterOp::Skip
                }
            },
            |_| BROKE,
        );
    }

    /// Breaks the barrier (and, with `reset`, starts a new generation) under the queue lock,
    /// waking the parties waiting with `Broken`. A trip under way is decided: its parties are
    /// left to it.
    fn break_generation(&self, reset: bool) {
        unpark_filter(
            self.key(),
            |token| {
                let flags = self.flags.load(Ordering::Relaxed);
                let member = park_token(self.generation.load(Ordering::Relaxed), MEMBER);
                if flags & TRIPPING == 0 && token == member {
                    FilterOp::Unpark
                } else {
                    FilterOp::Skip
                }
            },
            |_| {
                let flags = self.flags.load(Ordering::Relaxed);
                if flags & TRIPPING == 0 {
                    self.arrived.store(0, Ordering::Relaxed);
                }
                if reset {
                    self.flags.store(flags & !BROKEN, Ordering::Relaxed);
                    self.generation.fetch_add(1, Ordering::Relaxed);
                } else {
                    self.flags.store(flags | BROKEN, Ordering::Relaxed);
                }
                BROKE
            },
        );
    }

    /// Breaks the barrier: every thread waiting gets [`BarrierError::Broken`], and so does
    /// every later wait until [`reset`](Self::reset). A trip already decided (its action
    /// running) still completes.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_barrier::{Barrier, BarrierError};
    ///
    /// let barrier = Barrier::new(2);
    /// barrier.break_barrier();
    /// assert!(barrier.is_broken());
    /// assert_eq!(barrier.wait(), Err(BarrierError::Broken));
    /// ```
    pub fn break_barrier(&self) {
        self.break_generation(false);
    }

    /// Breaks the current waiters (they get [`BarrierError::Broken`]) and starts a fresh,
    /// unbroken generation. A trip already decided (its action running) still completes.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = gosync_barrier::Barrier::new(1);
    /// barrier.break_barrier();
    /// barrier.reset();
    /// assert!(!barrier.is_broken());
    /// assert_eq!(barrier.wait().unwrap().generation(), 1); // the reset counted
    /// ```
    pub fn reset(&self) {
        self.break_generation(true);
    }

    /// Whether the barrier is broken. A snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// let barrier = gosync_barrier::Barrier::new(2);
    /// assert!(!barrier.is_broken());
    /// ```
    #[must_use]
    pub fn is_broken(&self) -> bool {
        // Relaxed: a snapshot that orders nothing.
        self.flags.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// How many parties are waiting for the current generation to fill. A snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gosync_barrier::Barrier::new(2).n_waiting(), 0);
    /// ```
    #[must_use]
    pub fn n_waiting(&self) -> usize {
        // Relaxed: a snapshot that orders nothing.
        self.arrived.load(Ordering::Relaxed)
    }

    /// The number of threads that must wait for the barrier to trip.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(gosync_barrier::Barrier::new(3).parties(), 3);
    /// ```
    #[must_use]
    pub fn parties(&self) -> usize {
        self.parties
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties)
            .field("n_waiting", &self.n_waiting())
            .field("generation", &self.generation.load(Ordering::Relaxed))
            .field("broken", &self.is_broken())
            .field("action", &self.action.is_some())
            .finish()
    }
}

/// What a successful [`Barrier::wait`] returns: which trip it was, and whether this thread led
/// it.
///
/// # Examples
///
/// ```
/// let barrier = gosync_barrier::Barrier::new(1);
/// let first = barrier.wait().unwrap();
/// assert!(first.is_leader());
/// assert_eq!(first.generation(), 0);
/// assert_eq!(barrier.wait().unwrap().generation(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BarrierWaitResult {
    generation: u64,
    leader: bool,
}

impl BarrierWaitResult {
    fn party(generation: u64) -> Self {
        Self {
            generation,
            leader: false,
        }
    }

    /// Whether this thread was the last to arrive: the one that ran the action. One per trip.
    /// See the example on [`BarrierWaitResult`].
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.leader
    }

    /// Which trip this was: 0 for the first; each trip and each [`Barrier::reset`] adds 1. See
    /// the example on [`BarrierWaitResult`].
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// Why a [`Barrier`] wait failed.
///
/// # Examples
///
/// ```
/// use gosync_barrier::BarrierError;
/// use gosync_context::ContextError;
///
/// assert_eq!(BarrierError::Broken.to_string(), "barrier is broken");
/// let canceled = BarrierError::Canceled(ContextError::DeadlineExceeded);
/// assert_eq!(canceled.to_string(), "barrier wait canceled: context deadline exceeded");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BarrierError {
    /// The barrier was broken (by a waiter that gave up, [`Barrier::break_barrier`],
    /// [`Barrier::reset`] or a panicking action) before or while this thread waited.
    Broken,
    /// This thread's timeout passed first; it broke the barrier for the others.
    TimedOut,
    /// This thread's context was done first; it broke the barrier for the others.
    Canceled(ContextError),
}

impl fmt::Display for BarrierError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Broken => f.write_str("barrier is broken"),
            Self::TimedOut => f.write_str("barrier wait timed out"),
            Self::Canceled(err) => write!(f, "barrier wait canceled: {err}"),
        }
    }
}

impl Error for BarrierError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Canceled(err) => Some(err),
            _ => None,
        }
    }
}

#[cfg(all(test, not(gosync_loom)))]
mod tests {
    use super::*;

    /// A pending thread giving up once the late parties are done (`late` back to 0, the trip
    /// over) while a party of the next generation has already arrived: that generation is
    /// broken, and the giver-up wakes its parties (`GaveUp`), as a party giving up does. The
    /// interleaving (a late party between its count and `wake_pending`, a party arriving then,
    /// the pending thread's timeout firing then) needs about five preemptions, beyond the loom
    /// runs of `cargo xtask verify`; here the decision is driven directly.
    #[test]
    fn pending_giving_up_after_the_late_parties_breaks_the_next_generation() {
        let barrier = Barrier::new(2);
        barrier.generation.store(1, Ordering::Relaxed);
        barrier.arrived.store(1, Ordering::Relaxed);
        let role = Cell::new(Role::Pending);
        barrier.leave(&role);
        assert!(matches!(role.get(), Role::GaveUp(1)));
        assert_eq!(barrier.arrived.load(Ordering::Relaxed), 0);
        assert!(barrier.is_broken());
    }

    /// While a late party still runs (`late` non-zero), nobody has arrived for the next
    /// generation: a pending thread giving up only breaks the barrier for later arrivals.
    #[test]
    fn pending_giving_up_behind_a_late_party_only_breaks_the_barrier() {
        let barrier = Barrier::new(2);
        barrier.late.store(1, Ordering::Relaxed);
        let role = Cell::new(Role::Pending);
        barrier.leave(&role);
        assert!(matches!(role.get(), Role::Pending));
        assert!(barrier.is_broken());
    }
}
