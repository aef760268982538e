//! Queues of parked threads keyed by address: Go's `sema.go` table, for OS threads.
//!
//! A primitive parks the current thread on a *key* (by convention the address of its state
//! word) and later unparks one, some or all threads parked on that key. The queues live in a
//! fixed table of buckets shared by the whole process, so a primitive carries no queue of its
//! own: a mutex stays one byte.
//!
//! Each queued thread is a [`Waiter`] on its own stack, pointed at from its bucket while it is
//! queued. The invariants that make that sound:
//!
//! 1. A waiter is in at most one bucket, the one of its current `key`, and only while its
//!    `state` is not `WOKEN`. Every change of queue membership, of `key`, and the store of
//!    `WOKEN` happen under that bucket's lock.
//! 2. A parked thread does not return from [`park`] while it is queued: it leaves only after
//!    seeing `WOKEN` (set by an unparker that already removed it), or after removing itself
//!    under the lock (timeout, cancellation, a panic unwinding out of `before_sleep` or out of
//!    the cancellation source's methods).
//! 3. An unparker touches a waiter only under the bucket lock and only before it stores `WOKEN`;
//!    to wake it after unlocking it keeps a clone of the waiter's parker, or, for a waiter that
//!    sleeps on its own `state` word (a futex), only that word's address, which the futex wake
//!    does not read. Under loom, whose stand-in for the futex sits next to the word, the wake
//!    uses that stand-in; it wakes the word only after seeing `SLEEPING`, stored by the
//!    sleeper, which from then on leaves only once the wake is done with it (see
//!    [`parker::wake_sleeper`]), so the word is still alive then.
//!
//! Notes about memory ordering: the bucket lock orders everything done under it. The accesses
//! outside it are the waiter's own, to its `state` while it spins or sleeps: the unparker's
//! `Release` swap to `WOKEN` pairs with the waiter's `Acquire` load, so the waiter sees the
//! unpark token stored just before, and every write the unparker made before unparking (which
//! is how a mutex hands its protected data over in a direct hand-off). A futex sleeper's
//! `WAITING -> SLEEPING` exchange orders nothing; it and the swap are read-modify-writes of one
//! word, so the unparker sees `SLEEPING` (and wakes the futex) or the sleeper sees `WOKEN` (and
//! does not sleep). Loom checks this exchange against the swap: under loom an untimed waiter
//! takes the same path, the futex played by a per-waiter stand-in (`facade::parker`).

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::earliest_deadline;
use crate::facade::parker::{self, Parker, SleepWord};
use crate::facade::sync::{AtomicUsize, BookkeepingGuard, BookkeepingLock, Ordering};
use crate::protocol::{default_err, ContextError};
use crate::spin::AdaptiveSpin;
use crate::time::deadline_fired;

/// A waiter's `state`: queued and waiting.
const WAITING: u32 = 0;
/// A waiter's `state`: an unparker removed it and left its token.
const WOKEN: u32 = 1;
/// A waiter's `state`: queued, and asleep (or about to be) on this word: its unparker must wake
/// it by the word's address. Only a waiter without a parker uses it.
const SLEEPING: u32 = 2;

/// Why [`park`] returned.
///
/// # Examples
///
/// ```
/// use gosync_park::{park, ParkOptions, ParkResult};
///
/// // `validate` said no: the thread never slept.
/// let result = park(0x10, ParkOptions::default(), || false, || {}, |_, _| {});
/// assert_eq!(result, ParkResult::Invalid);
/// assert!(!result.is_unparked());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParkResult {
    /// Another thread unparked this one, passing this token (the callback's return value).
    Unparked(usize),
    /// The `validate` callback returned `false`: the thread never slept.
    Invalid,
    /// The deadline passed before any unpark.
    TimedOut,
    /// The cancellation source was cancelled (or its own deadline passed) before any unpark.
    Cancelled,
}

impl ParkResult {
    /// Whether the thread was unparked by another thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_park::ParkResult;
    /// assert!(ParkResult::Unparked(0).is_unparked());
    /// assert!(!ParkResult::TimedOut.is_unparked());
    /// ```
    #[inline]
    pub fn is_unparked(self) -> bool {
        matches!(self, Self::Unparked(_))
    }
}

/// A source of cancellation that a parked thread also listens to: a `Context` implements it.
///
/// A parked thread registers a [`Waker`] before it sleeps and unregisters it when it leaves;
/// when the source is cancelled it must call [`Waker::wake`] on every registered waker. The
/// thread then checks [`is_cancelled`](Self::is_cancelled), removes itself from its queue and
/// returns [`ParkResult::Cancelled`]. Deadlines need no timer: the thread sleeps no later than
/// [`deadline`](Self::deadline).
///
/// # Examples
///
/// A one-shot cancellation flag (gosync's `Context` is the full version):
///
/// ```
/// use gosync_park::{park, Cancellation, ParkOptions, ParkResult, Waker};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Mutex;
/// use std::time::Instant;
///
/// #[derive(Default)]
/// struct Flag {
///     cancelled: AtomicBool,
///     wakers: Mutex<Vec<Waker>>,
/// }
///
/// impl Flag {
///     fn cancel(&self) {
///         self.cancelled.store(true, Ordering::SeqCst);
///         for waker in self.wakers.lock().unwrap().drain(..) {
///             waker.wake();
///         }
///     }
/// }
///
/// impl Cancellation for Flag {
///     fn is_cancelled(&self) -> bool {
///         self.cancelled.load(Ordering::SeqCst)
///     }
///     fn deadline(&self) -> Option<Instant> {
///         None
///     }
///     fn register(&self, waker: Waker) -> bool {
///         let mut wakers = self.wakers.lock().unwrap();
///         // Checked under the same lock as `cancel` drains: no waker is missed.
///         if self.is_cancelled() {
///             return false;
///         }
///         wakers.push(waker);
///         true
///     }
///     fn unregister(&self, waker_id: usize) {
///         self.wakers.lock().unwrap().retain(|w| w.id() != waker_id);
///     }
/// }
///
/// let flag = Flag::default();
/// flag.cancel();
/// let options = ParkOptions { cancel: Some(&flag), ..ParkOptions::default() };
/// assert_eq!(park(0x20, options, || true, || {}, |_, _| {}), ParkResult::Cancelled);
/// ```
pub trait Cancellation: Sync {
    /// Whether the source is cancelled, counting a deadline that has passed.
    fn is_cancelled(&self) -> bool;
    /// Why the source is done, or `None` while it is not: Go's `ctx.Err()`. The first reason
    /// wins and never changes. By default: `DeadlineExceeded` once [`deadline`](Self::deadline)
    /// has passed, else `Canceled` once [`is_cancelled`](Self::is_cancelled) says so; a source
    /// that knows which came first overrides it. A wait that gave up because of the source maps
    /// this to its error with [`cancelled_error`](crate::cancelled_error).
    fn err(&self) -> Option<ContextError> {
        default_err(self)
    }
    /// When the source cancels itself, if ever.
    fn deadline(&self) -> Option<Instant>;
    /// Keeps `waker` to wake on cancellation. Returns `false`, keeping nothing, when the
    /// source is already cancelled.
    fn register(&self, waker: Waker) -> bool;
    /// Forgets the waker registered with this id, if still kept.
    fn unregister(&self, waker_id: usize);
}

/// A handle that wakes one parked thread so that it re-checks its cancellation source.
///
/// A parked thread hands one to [`Cancellation::register`]; see the example there.
#[derive(Clone, Debug)]
pub struct Waker {
    id: usize,
    parker: Parker,
}

impl Waker {
    /// An id unique among the wakers currently registered anywhere (the address of the parked
    /// thread's queue entry), for [`Cancellation::unregister`]. See the example on
    /// [`Cancellation`].
    #[inline]
    pub fn id(&self) -> usize {
        self.id
    }

    /// Wakes the thread. Harmless if it has already left. See the example on [`Cancellation`].
    #[inline]
    pub fn wake(&self) {
        self.parker.unpark();
    }
}

/// How to park; see [`park`].
///
/// # Examples
///
/// ```
/// use gosync_park::{park, ParkOptions, ParkResult};
/// use std::time::{Duration, Instant};
///
/// let options = ParkOptions {
///     token: 3,                                            // seen by `unpark_filter`
///     deadline: Some(Instant::now() + Duration::from_millis(1)),
///     front: true,                                         // jump the queue
///     ..ParkOptions::default()                             // no cancellation; spin first
/// };
/// assert_eq!(park(0x30, options, || true, || {}, |_, _| {}), ParkResult::TimedOut);
/// ```
#[derive(Clone, Copy, Default)]
pub struct ParkOptions<'a> {
    /// A value unparkers see in [`unpark_filter`]'s filter (a semaphore waiter's request, say).
    pub token: usize,
    /// Give up at this instant.
    pub deadline: Option<Instant>,
    /// Give up when this is cancelled.
    pub cancel: Option<&'a dyn Cancellation>,
    /// Sleep at once, without the adaptive spin (see [`spin`](crate::spin)): for a waiter that
    /// has already spun on its own terms, such as a mutex after its back-off. Letting such a
    /// waiter sleep leaves the lock to the running threads, which is what makes a contended
    /// mutex fast; spinning again would only keep the lock's cache line bouncing.
    pub sleep_at_once: bool,
    /// Queue at the head rather than the tail (a waiter re-parking after a failed hand-over
    /// keeps its turn, as Go's `queueLifo`).
    pub front: bool,
}

impl fmt::Debug for ParkOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParkOptions")
            .field("token", &self.token)
            .field("deadline", &self.deadline)
            .field("cancel", &self.cancel.map(|_| ".."))
            .field("sleep_at_once", &self.sleep_at_once)
            .field("front", &self.front)
            .finish()
    }
}

/// What an unpark did; passed to its callback while the queue is still locked.
///
/// # Examples
///
/// ```
/// let result = gosync_park::unpark_one(0x40, |result| {
///     assert_eq!((result.unparked, result.requeued, result.have_more), (0, 0, false));
///     0
/// });
/// assert_eq!(result, gosync_park::UnparkResult::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnparkResult {
    /// Threads unparked.
    pub unparked: usize,
    /// Threads moved to another key ([`unpark_requeue`] only).
    pub requeued: usize,
    /// Whether threads remain parked on the key after this call.
    pub have_more: bool,
}

/// The decision of [`unpark_filter`]'s filter for one waiter, in queue order. See the
/// example on [`unpark_filter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterOp {
    /// Unpark this waiter and go on.
    Unpark,
    /// Leave this waiter parked and go on.
    Skip,
    /// Leave this waiter and every later one parked.
    Stop,
}

/// The decision of [`unpark_requeue`]'s validate callback. See the example on
/// [`unpark_requeue`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequeueOp {
    /// Do nothing.
    Abort,
    /// Unpark the first waiter and move the others to the target key.
    UnparkOneRequeueRest,
    /// Move every waiter to the target key.
    RequeueAll,
    /// Unpark the first waiter and leave the others where they are.
    UnparkOne,
    /// Move the first waiter to the target key and leave the others where they are: a
    /// condition variable's signal while the mutex is held, so that the mutex's unlock wakes
    /// the waiter once, instead of a wake-up that finds the mutex still held.
    RequeueOne,
}

impl RequeueOp {
    /// Whether only the first waiter is picked (unparked or moved).
    fn picks_one(self) -> bool {
        matches!(self, Self::UnparkOne | Self::RequeueOne)
    }

    /// Whether the first picked waiter is unparked rather than moved.
    fn unparks_first(self) -> bool {
        matches!(self, Self::UnparkOneRequeueRest | Self::UnparkOne)
    }
}

/// One parked thread, on its own stack. See the module docs for the invariants.
struct Waiter {
    /// The key it is queued on; changed only by [`unpark_requeue`], under both buckets' locks.
    key: AtomicUsize,
    park_token: usize,
    /// Written by the unparker before it stores `WOKEN`.
    unpark_token: AtomicUsize,
    state: SleepWord,
    /// How its thread sleeps: on its parker, for a wait that can time out or be cancelled (the
    /// futex sleep has no timeout, and a cancellation's waker needs a handle it can keep); `None`:
    /// on `state` itself (a futex), which the unparker wakes by address. That spares every
    /// untimed wait the reference counting of a thread handle, on both sides of the hand-over.
    parker: Option<Parker>,
}

/// How an unparker wakes a waiter once it has unlocked the bucket.
enum Wake {
    /// Unpark the waiter's parker.
    Parker(Parker),
    /// Wake the futex sleeper on this word, which may dangle by then (not under loom: see
    /// [`parker::wake_sleeper`]). A late wake can reach whatever sleeps at that address
    /// afterwards (the same thread's next wait, most likely): a spurious wake-up, which every
    /// futex sleeper tolerates, ours by re-checking its state.
    Word(*const SleepWord),
}

impl Wake {
    #[inline]
    fn wake(self) {
        match self {
            Self::Parker(parker) => parker.unpark(),
            // SAFETY: `Waiter::wake` made this only on seeing `SLEEPING`, which the sleeper
            // stored itself before calling `sleep_while` (see `Waiter::sleep`): the contract of
            // `wake_sleeper`.
            Self::Word(word) => unsafe { parker::wake_sleeper(word) },
        }
    }
}

impl Waiter {
    /// Whether an unparker has woken it. `Acquire` pairs with the `Release` in [`Self::wake`].
    #[inline]
    fn is_woken(&self) -> bool {
        self.state.load(Ordering::Acquire) == WOKEN
    }

    /// Leaves `token` and marks it woken. Returns how to wake its thread once the bucket is
    /// unlocked (`None`: it is not asleep), taken before the store: after it the waiter may
    /// return and its memory be gone.
    ///
    /// Takes the waiter by pointer, not `&self`: a reference argument stays protected until
    /// the call returns, and the waiter's stack frame may be freed before then (its thread
    /// returns as soon as it sees `WOKEN`), which is undefined behaviour for a reference to
    /// the whole waiter (found by miri under Tree Borrows). Only the state word, an atomic, is
    /// borrowed across the store, as `Arc`'s drop borrows its count.
    ///
    /// # Safety
    ///
    /// The caller holds the lock of the bucket `waiter` is queued in, and it is not woken yet.
    unsafe fn wake(waiter: WaiterRef, token: usize) -> Option<Wake> {
        let this = waiter.0.as_ptr();
        // SAFETY: queued and not woken, so its thread is still inside `park` (invariant 2)
        // until the swap below; these borrows end before it.
        let parker = unsafe { (*this).parker.clone() };
        // SAFETY: as above.
        let word: *const SleepWord = unsafe { std::ptr::addr_of!((*this).state) };
        // SAFETY: as above. Relaxed: published by the Release swap below.
        unsafe { (*this).unpark_token.store(token, Ordering::Relaxed) };
        // SAFETY: as above; after the swap the waiter may be gone, and nothing but `word`'s
        // address is used. Release: pairs with `is_woken`'s Acquire, publishing the token and
        // everything the unparker wrote before unparking. A swap, so that it is ordered with the
        // sleeper's `WAITING -> SLEEPING` exchange: one of the two sees the other.
        let before = unsafe { (*word).swap(WOKEN, Ordering::Release) };
        match parker {
            Some(parker) => Some(Wake::Parker(parker)),
            None => (before == SLEEPING).then_some(Wake::Word(word)),
        }
    }

    /// Sleeps until woken (and, with a parker, at most for `timeout`). May return
    /// spuriously; the caller re-checks.
    fn sleep(&self, timeout: Option<Duration>) {
        match &self.parker {
            Some(parker) => parker.sleep_for(timeout),
            None => {
                // Relaxed: only the unparker's swap changes the state besides us, and both are
                // read-modify-writes of this word: one of the two sees the other. The caller's
                // `is_woken` orders the data. Failing means `WOKEN` or `SLEEPING` (already
                // stored before a spurious return).
                let before = self
                    .state
                    .compare_exchange(WAITING, SLEEPING, Ordering::Relaxed, Ordering::Relaxed)
                    .unwrap_or_else(std::convert::identity);
                // With `WOKEN` the unparker has been, and the caller sees it on its next look
                // (its wake, if it saw our `SLEEPING` before a spurious return, comes late: see
                // `Wake::Word`; under loom the sleep never returns before its wake). Otherwise
                // the state is `SLEEPING`, stored by us, and the unparker that replaces it wakes
                // the word.
                if before != WOKEN {
                    parker::sleep_while(&self.state, SLEEPING);
                }
            }
        }
    }
}

/// A pointer to a queued [`Waiter`].
#[derive(Clone, Copy, PartialEq, Eq)]
struct WaiterRef(NonNull<Waiter>);

// SAFETY: a `WaiterRef` is dereferenced only under its bucket's lock while the waiter is queued,
// when (invariant 2) the waiter is alive; `Waiter` itself is `Sync` (atomics and a `Thread`).
unsafe impl Send for WaiterRef {}

impl WaiterRef {
    /// # Safety
    ///
    /// The caller holds the lock of the bucket this waiter is queued in.
    #[inline]
    unsafe fn get(&self) -> &Waiter {
        // SAFETY: the waiter is queued and the caller holds its bucket's lock, so by invariant 2
        // its thread is still inside `park` and its stack frame is alive.
        unsafe { self.0.as_ref() }
    }

    /// # Safety
    ///
    /// As for [`get`](Self::get).
    #[inline]
    unsafe fn key(&self) -> usize {
        // SAFETY: forwarded to the caller. Relaxed: keys change only under this bucket's lock,
        // which the caller holds.
        unsafe { self.get() }.key.load(Ordering::Relaxed)
    }
}

type Queue = VecDeque<WaiterRef>;

/// One bucket of the table, on its own cache line so that unrelated keys do not false-share.
#[repr(align(128))]
struct Bucket {
    queue: BookkeepingLock<Queue>,
}

impl Bucket {
    crate::const_unless_loom! {
        const fn new() -> Self {
            Self {
                queue: BookkeepingLock::new(VecDeque::new()),
            }
        }
    }
}

/// log2 of the number of buckets: 256 normally (32 KiB, so a few hundred keys in use rarely
/// share one), 1 under loom: keys are heap addresses that change from one model iteration to
/// the next, and loom needs every iteration to take the same locks.
#[cfg(not(gosync_loom))]
const BUCKET_BITS: u32 = 8;
#[cfg(gosync_loom)]
const BUCKET_BITS: u32 = 0;

#[cfg(not(gosync_loom))]
static TABLE: [Bucket; 1 << BUCKET_BITS] = [const { Bucket::new() }; 1 << BUCKET_BITS];

#[cfg(gosync_loom)]
loom::lazy_static! {
    static ref TABLE: [Bucket; 1 << BUCKET_BITS] = [Bucket::new()];
}

/// The bucket index of `key` (Fibonacci hashing: keys are aligned addresses).
#[inline]
fn bucket_index(key: usize) -> usize {
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    (key as u64)
        .wrapping_mul(GOLDEN)
        .checked_shr(64 - BUCKET_BITS)
        .unwrap_or(0) as usize
}

#[inline]
fn lock_bucket(key: usize) -> BookkeepingGuard<'static, Queue> {
    TABLE[bucket_index(key)].queue.lock()
}

/// Locks the bucket `waiter` is queued in, following it if a requeue moves it meanwhile.
/// Returns its key and the locked queue.
fn lock_bucket_of(waiter: &Waiter) -> (usize, BookkeepingGuard<'static, Queue>) {
    loop {
        // Relaxed: re-checked under the lock, which orders it against requeues.
        let key = waiter.key.load(Ordering::Relaxed);
        let queue = lock_bucket(key);
        if waiter.key.load(Ordering::Relaxed) == key {
            return (key, queue);
        }
    }
}

/// Whether `queue` holds a waiter on `key`. The caller holds the queue's lock.
fn has_waiter(queue: &Queue, key: usize) -> bool {
    // SAFETY: the caller holds the lock of `queue`, in which every entry is queued.
    queue.iter().any(|w| unsafe { w.key() } == key)
}

/// Parks the current thread on `key` until it is unparked, its deadline passes or its
/// cancellation source is cancelled.
///
/// Under the key's bucket lock, `validate` runs first: if it returns `false` the thread does
/// not park ([`ParkResult::Invalid`]). This is what makes a check-then-sleep atomic against
/// unparkers, which take the same lock. Then the thread is queued, the lock released, and
/// `before_sleep` runs (a condition variable unlocks its mutex there). If the thread gives up
/// (timeout, cancellation), `on_abort(key, was_last)` runs under the lock after it has left the
/// queue, `was_last` telling whether no thread remains parked on the key, so that a primitive
/// can clear its "someone is parked" bit atomically with the last waiter leaving.
///
/// Callbacks run with a bucket lock held: they must be short and must not park or unpark. If
/// `before_sleep` or one of the cancellation source's methods panics, the thread leaves the
/// queue as a timeout would (running `on_abort`, unless an unparker came first) and the panic
/// goes on; a panic in `on_abort` reaches the caller with the thread out of the queue (or is
/// discarded if it comes while one of those panics unwinds). Before sleeping the thread spins
/// for a while (see the [`spin`](crate::spin) module).
///
/// # Examples
///
/// ```
/// use gosync_park::{park, unpark_one, ParkOptions, ParkResult};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let ready = Arc::new(AtomicBool::new(false));
/// let key = Arc::as_ptr(&ready) as usize;
/// let setter = {
///     let ready = Arc::clone(&ready);
///     std::thread::spawn(move || {
///         ready.store(true, Ordering::Release);
///         unpark_one(key, |_| 0);
///     })
/// };
/// while !ready.load(Ordering::Acquire) {
///     // Sleeps only if `ready` is still false under the queue's lock: no lost wake-up.
///     let result = park(key, ParkOptions::default(), || !ready.load(Ordering::Acquire), || {}, |_, _| {});
///     assert!(matches!(result, ParkResult::Unparked(0) | ParkResult::Invalid));
/// }
/// setter.join().unwrap();
/// ```
pub fn park(
    key: usize,
    options: ParkOptions<'_>,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    on_abort: impl FnOnce(usize, bool),
) -> ParkResult {
    let token = options.token;
    park_with_token(
        key,
        options,
        || validate().then_some(token),
        before_sleep,
        on_abort,
    )
}

/// As [`park`], with the park token chosen by `validate` under the queue's lock (`None`: do not
/// park; `options.token` is not used). A token made there follows the order in which threads
/// join the queue: a ticket taken in `validate` is larger than that of every thread that parked
/// on the key before, and smaller than that of every thread that parks after (so, for waiters
/// that never park at the front, it follows their order in the queue).
///
/// # Examples
///
/// ```
/// use gosync_park::{park_with_token, unpark_filter, FilterOp, ParkOptions, ParkResult};
/// use std::time::Instant;
///
/// let next_ticket = std::cell::Cell::new(7);
/// let options = ParkOptions { deadline: Some(Instant::now()), ..ParkOptions::default() };
/// let take_ticket = || Some(next_ticket.replace(next_ticket.get() + 1));
/// let result = park_with_token(0x200, options, take_ticket, || {}, |_, _| {});
/// assert_eq!(result, ParkResult::TimedOut);
/// assert_eq!(next_ticket.get(), 8);
/// ```
pub fn park_with_token(
    key: usize,
    options: ParkOptions<'_>,
    validate: impl FnOnce() -> Option<usize>,
    before_sleep: impl FnOnce(),
    on_abort: impl FnOnce(usize, bool),
) -> ParkResult {
    let mut waiter = Waiter {
        key: AtomicUsize::new(key),
        park_token: 0,
        unpark_token: AtomicUsize::new(0),
        state: SleepWord::new(WAITING),
        parker: (options.deadline.is_some() || options.cancel.is_some())
            .then(Parker::for_current_thread),
    };
    {
        let mut queue = lock_bucket(key);
        let Some(token) = validate() else {
            return ParkResult::Invalid;
        };
        // Not shared yet: it is queued just below.
        waiter.park_token = token;
        let entry = WaiterRef(NonNull::from(&waiter));
        if options.front {
            queue.push_front(entry);
        } else {
            queue.push_back(entry);
        }
    }
    // From here until `wait` returns, `waiter` is (or may be) queued: it must not be popped off
    // the stack, and a panic that leaves meanwhile takes it out.
    let mut queued = LeaveOnUnwind {
        waiter: Some(&waiter),
        on_abort: Some(on_abort),
    };
    before_sleep();
    let result = wait(&waiter, &options, &mut queued.on_abort);
    queued.waiter = None;
    result
}

/// Takes a parked thread out of its queue as a timeout would, running `on_abort` (so the
/// caller's "parked" bit follows the queue), when a panic leaves [`park`] while the thread is
/// still queued: `before_sleep`'s, or a cancellation source's (`deadline`, `register`,
/// `is_cancelled`). A thread that already left (an unparker took it out, or it aborted and then
/// `on_abort` or `unregister` panicked) stays out; if an unparker won the race, its token is
/// dropped with the panic. A panic of `on_abort` here is discarded: the first one goes on.
/// Disarmed (`waiter: None`) when `wait` returns.
struct LeaveOnUnwind<'a, F: FnOnce(usize, bool)> {
    waiter: Option<&'a Waiter>,
    on_abort: Option<F>,
}

impl<F: FnOnce(usize, bool)> Drop for LeaveOnUnwind<'_, F> {
    fn drop(&mut self) {
        let Some((key, queue)) = self.waiter.and_then(take_out) else {
            return;
        };
        if let Some(on_abort) = self.on_abort.take() {
            let was_last = !has_waiter(&queue, key);
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| on_abort(key, was_last))) {
                crate::discard_panic(payload);
            }
        }
    }
}

/// Wakes, with token 0, the waiters an unparker took out of the queue, if its `filter` or
/// `callback` panics before it woke them: they would otherwise sleep with nobody left to wake
/// them (and a timed one would not find itself in the queue). Drops while the unparker still
/// holds the bucket lock, under which every `WOKEN` is stored; disarmed by emptying it.
struct WakeOnUnwind(Vec<WaiterRef>);

impl Drop for WakeOnUnwind {
    fn drop(&mut self) {
        self.0.iter().for_each(|&w| wake_taken(w));
    }
}

/// Wakes `w` with token 0 (see [`WakeOnUnwind`]).
#[cold]
fn wake_taken(w: WaiterRef) {
    // SAFETY: `w` was taken out of the queue whose lock the unparker still holds, and not woken
    // yet: it is still parked (invariant 2).
    if let Some(wake) = unsafe { Waiter::wake(w, 0) } {
        wake.wake();
    }
}

/// The waiting half of [`park`]: spin, then sleep until woken, timed out or cancelled.
fn wait(
    waiter: &Waiter,
    options: &ParkOptions<'_>,
    on_abort: &mut Option<impl FnOnce(usize, bool)>,
) -> ParkResult {
    let spin = if options.sleep_at_once {
        AdaptiveSpin::skip()
    } else {
        AdaptiveSpin::spin(|| waiter.is_woken())
    };
    let Err(spin) = spin else {
        return unparked(waiter);
    };
    let cancel = options.cancel;
    let cancel_deadline = cancel.and_then(Cancellation::deadline);
    let deadline = earliest_deadline(options.deadline, cancel_deadline);
    let waker_id = waiter as *const Waiter as usize;
    let registered = cancel.is_some_and(|c| {
        let parker = waiter.parker.clone();
        c.register(Waker {
            id: waker_id,
            parker: parker.expect("a cancellable waiter sleeps on its parker"),
        })
    });
    // Also when a panic (an `on_abort`'s, a source's `is_cancelled`) leaves: a waker left behind
    // would stay in the source's list, under an id (this stack address) another waiter may reuse.
    let _unregister = Unregister {
        registered_with: cancel.filter(|_| registered),
        waker_id,
    };
    // A timed wait reads the clock once per look: its deadline checks and the length of its
    // next sleep share the reading, and the first look takes the spin's last one.
    let mut looked = spin.looked_at();
    let mut spin = Some(spin);
    loop {
        if waiter.is_woken() {
            if let Some(spin) = spin.take() {
                spin.woken_after_sleep();
            }
            break unparked(waiter);
        }
        let now = deadline.map(|_| looked.take().unwrap_or_else(Instant::now));
        let fired = |deadline: Option<Instant>| {
            deadline
                .zip(now)
                .is_some_and(|(deadline, now)| deadline_fired(deadline, now))
        };
        let reason = if cancel.is_some_and(|c| !registered || c.is_cancelled()) {
            Some(ParkResult::Cancelled)
        } else if fired(options.deadline) {
            Some(ParkResult::TimedOut)
        } else if fired(cancel_deadline) {
            // The cancellation source's own deadline, which its `is_cancelled` may not count.
            Some(ParkResult::Cancelled)
        } else {
            None
        };
        if let Some(reason) = reason {
            let on_abort = on_abort.take().expect("a waiter aborts at most once");
            if abort(waiter, on_abort).is_some() {
                break reason;
            }
            // An unparker got there first: its `WOKEN` is visible on the next look.
            continue;
        }
        // Neither deadline has fired: each is later than `now`.
        waiter.sleep(deadline.zip(now).map(|(deadline, now)| deadline - now));
    }
}

/// Takes a parked thread's waker back from the cancellation source it registered with, when the
/// wait ends, also by a panic.
struct Unregister<'a> {
    registered_with: Option<&'a dyn Cancellation>,
    waker_id: usize,
}

impl Drop for Unregister<'_> {
    fn drop(&mut self) {
        let Some(source) = self.registered_with else {
            return;
        };
        if std::thread::panicking() {
            // A second panic would abort the process: the first one goes on.
            if let Err(payload) =
                catch_unwind(AssertUnwindSafe(|| source.unregister(self.waker_id)))
            {
                crate::discard_panic(payload);
            }
        } else {
            source.unregister(self.waker_id);
        }
    }
}

#[inline]
fn unparked(waiter: &Waiter) -> ParkResult {
    // Relaxed: ordered after the store by the Acquire in `is_woken`, which the caller saw true.
    ParkResult::Unparked(waiter.unpark_token.load(Ordering::Relaxed))
}

/// Takes `waiter` out of its queue unless an unparker already did. Returns `None` when an
/// unparker won (the waiter is `WOKEN`); otherwise runs `on_abort` under the lock.
fn abort(waiter: &Waiter, on_abort: impl FnOnce(usize, bool)) -> Option<()> {
    let Some((key, queue)) = take_out(waiter) else {
        // Relaxed: `WOKEN` was stored under the bucket lock that `take_out` took since.
        debug_assert!(
            waiter.state.load(Ordering::Relaxed) == WOKEN,
            "gosync-park: a waiting thread is missing from its queue"
        );
        return None;
    };
    on_abort(key, !has_waiter(&queue, key));
    Some(())
}

/// Takes `waiter` out of its queue if it is there, and returns its key with the queue still
/// locked; `None` if it is not: an unparker took it out (it is `WOKEN`, invariant 1), or it left
/// before a panic that unwinds through [`LeaveOnUnwind`].
fn take_out(waiter: &Waiter) -> Option<(usize, BookkeepingGuard<'static, Queue>)> {
    let (key, mut queue) = lock_bucket_of(waiter);
    let me = WaiterRef(NonNull::from(waiter));
    let position = queue.iter().position(|w| *w == me)?;
    queue.remove(position);
    Some((key, queue))
}

/// Runs an unparker's `callback` for the waiter it took out of the queue, which is woken with
/// token 0 if the callback panics (as [`WakeOnUnwind`] does, without its allocation: this is
/// the hot path of every contended unlock).
#[inline]
fn callback_or_wake(woken: Option<WaiterRef>, callback: impl FnOnce() -> usize) -> usize {
    struct Guard(Option<WaiterRef>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.into_iter().for_each(wake_taken);
        }
    }
    let guard = Guard(woken);
    let token = callback();
    std::mem::forget(guard);
    token
}

/// Unparks the longest-waiting thread on `key`.
///
/// `callback` runs under the bucket lock with what was done, before the thread runs; its return
/// value is the token the thread receives ([`ParkResult::Unparked`]). A primitive uses it to
/// update its state atomically with the queue (clear a "parked" bit when `have_more` is false,
/// or hand ownership straight to the woken thread).
///
/// # Examples
///
/// ```
/// let key = 0x1000; // nobody is parked here
/// let result = gosync_park::unpark_one(key, |r| {
///     assert_eq!(r.unparked, 0);
///     0
/// });
/// assert!(!result.have_more);
/// ```
pub fn unpark_one(key: usize, callback: impl FnOnce(UnparkResult) -> usize) -> UnparkResult {
    // The hot path of every contended unlock: no allocation, one scan of the bucket.
    let mut queue = lock_bucket(key);
    // SAFETY: every entry is in the queue whose lock we hold.
    let position = queue.iter().position(|w| unsafe { w.key() } == key);
    let woken = position.and_then(|index| queue.remove(index));
    let result = UnparkResult {
        unparked: usize::from(woken.is_some()),
        requeued: 0,
        have_more: woken.is_some() && has_waiter(&queue, key),
    };
    let token = callback_or_wake(woken, || callback(result));
    // SAFETY: the waiter was in this locked queue and is not woken yet, so it is still parked
    // (invariant 2) until `wake` stores `WOKEN`.
    let wake = woken.and_then(|w| unsafe { Waiter::wake(w, token) });
    drop(queue);
    if let Some(wake) = wake {
        wake.wake();
    }
    result
}

/// Unparks every thread parked on `key`, each receiving `token`. Returns how many.
///
/// # Examples
///
/// ```
/// assert_eq!(gosync_park::unpark_all(0x2000, 0), 0);
/// ```
pub fn unpark_all(key: usize, token: usize) -> usize {
    unpark_filter(key, |_| FilterOp::Unpark, |_| token).unparked
}

/// Unparks the threads parked on `key` that `filter` picks, in queue order.
///
/// `filter` sees each waiter's park token ([`ParkOptions::token`]) and decides; `callback`
/// then runs under the lock with the totals and returns the token every unparked thread
/// receives. A FIFO semaphore uses it to wake waiters from the head while permits last,
/// stopping at the first that does not fit.
///
/// # Examples
///
/// ```
/// use gosync_park::{unpark_filter, FilterOp};
/// let result = unpark_filter(0x3000, |_| FilterOp::Unpark, |r| r.unparked);
/// assert_eq!(result.unparked, 0);
/// ```
pub fn unpark_filter(
    key: usize,
    mut filter: impl FnMut(usize) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> usize,
) -> UnparkResult {
    let mut queue = lock_bucket(key);
    let mut picked = WakeOnUnwind(Vec::new());
    let mut index = 0;
    while index < queue.len() {
        let entry = queue[index];
        // SAFETY: `entry` is in the queue whose lock we hold.
        let waiter = unsafe { entry.get() };
        // Relaxed: under the bucket lock (see `WaiterRef::key`).
        if waiter.key.load(Ordering::Relaxed) != key {
            index += 1;
            continue;
        }
        match filter(waiter.park_token) {
            FilterOp::Unpark => {
                queue.remove(index);
                picked.0.push(entry);
            }
            FilterOp::Skip => index += 1,
            FilterOp::Stop => break,
        }
    }
    let result = UnparkResult {
        unparked: picked.0.len(),
        requeued: 0,
        have_more: has_waiter(&queue, key),
    };
    let token = callback(result);
    let picked = std::mem::take(&mut picked.0);
    // SAFETY: each picked waiter was in this locked queue and is not woken yet, so it is still
    // parked (invariant 2) until `wake` stores `WOKEN`.
    let wakes: Vec<Wake> = picked
        .iter()
        .filter_map(|&w| unsafe { Waiter::wake(w, token) })
        .collect();
    drop(queue);
    for wake in wakes {
        wake.wake();
    }
    result
}

/// Moves the threads parked on `from` to `to`, optionally unparking the first: a condition
/// variable's broadcast wakes one waiter and queues the rest on the mutex, so they are let in one
/// at a time instead of stampeding; its signal moves the first waiter onto a held mutex, or
/// wakes it when the mutex is free ([`RequeueOp::RequeueOne`], [`RequeueOp::UnparkOne`]).
///
/// `validate` runs first under both buckets' locks and decides; `callback` then runs with what
/// was done (`have_more`: whether threads remain parked on `from`) and returns the token for the
/// unparked thread. Requeued threads keep their order and go behind the threads already parked
/// on `to`.
///
/// # Examples
///
/// ```
/// use gosync_park::{unpark_requeue, RequeueOp};
/// let result = unpark_requeue(0x4000, 0x5000, || RequeueOp::RequeueAll, |_, _| 0);
/// assert_eq!((result.unparked, result.requeued), (0, 0));
/// ```
pub fn unpark_requeue(
    from: usize,
    to: usize,
    validate: impl FnOnce() -> RequeueOp,
    callback: impl FnOnce(RequeueOp, UnparkResult) -> usize,
) -> UnparkResult {
    let (from_index, to_index) = (bucket_index(from), bucket_index(to));
    // Two buckets are always locked in index order, so two requeues cannot deadlock.
    let (mut from_queue, mut to_queue) = if from_index == to_index {
        (lock_bucket(from), None)
    } else if from_index < to_index {
        let first = lock_bucket(from);
        (first, Some(lock_bucket(to)))
    } else {
        let first = lock_bucket(to);
        (lock_bucket(from), Some(first))
    };
    let op = validate();
    if op == RequeueOp::Abort {
        return UnparkResult::default();
    }
    // The first waiter picked, and (for the `All`/`Rest` ops) the others, in queue order.
    let mut first = None;
    let mut rest = Vec::new();
    if op.picks_one() {
        // The hot path of a signal: one scan of the bucket, no allocation.
        // SAFETY: every entry is in the queue whose lock we hold.
        let position = from_queue.iter().position(|w| unsafe { w.key() } == from);
        first = position.and_then(|index| from_queue.remove(index));
    } else {
        from_queue.retain(|w| {
            // SAFETY: `w` is in the queue whose lock we hold.
            let matches = unsafe { w.key() } == from;
            if matches {
                if first.is_none() {
                    first = Some(*w);
                } else {
                    rest.push(*w);
                }
            }
            !matches
        });
    }
    let woken = if op.unparks_first() {
        first.take()
    } else {
        None
    };
    let target: &mut Queue = match to_queue.as_mut() {
        Some(queue) => queue,
        None => &mut from_queue,
    };
    let mut requeued = 0;
    for w in first.into_iter().chain(rest) {
        // SAFETY: `w` was in the locked `from` queue; Relaxed: under both buckets' locks.
        unsafe { w.get() }.key.store(to, Ordering::Relaxed);
        target.push_back(w);
        requeued += 1;
    }
    let result = UnparkResult {
        unparked: usize::from(woken.is_some()),
        requeued,
        // The ops that pick every waiter leave none on `from`, unless they put them back there.
        have_more: (op.picks_one() || from == to) && has_waiter(&from_queue, from),
    };
    let token = callback_or_wake(woken, || callback(op, result));
    // SAFETY: `w` was in the locked `from` queue and is not woken yet.
    let wake = woken.and_then(|w| unsafe { Waiter::wake(w, token) });
    drop(to_queue);
    drop(from_queue);
    if let Some(wake) = wake {
        wake.wake();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_index_stays_in_the_table() {
        for key in (0..4096).map(|k| k * 8) {
            assert!(bucket_index(key) < TABLE.len());
        }
    }

    #[test]
    fn nearby_keys_spread_over_buckets() {
        let buckets: std::collections::HashSet<_> = (0..64usize)
            .map(|k| bucket_index(0x7f00_0000 + k * 8))
            .collect();
        assert!(
            buckets.len() >= 32,
            "poor spread: {} buckets for 64 keys",
            buckets.len()
        );
    }
}
