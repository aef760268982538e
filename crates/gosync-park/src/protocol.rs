//! What every primitive does around a park, written once: mark the state word as having
//! sleepers and park, clear the mark when the last sleeper leaves, take a released lock back
//! when a scope ends, and say why a cancellable wait gave up.
//!
//! Notes about memory ordering: the "parked" bits are set and cleared with `Relaxed`
//! read-modify-writes, always under the bucket lock of the key the sleepers queue on (in
//! `park`'s validate and abort callbacks, and in the unpark callbacks), which orders them
//! against the queue; they guard no data. A waker that tests them outside that lock re-reads
//! them under it before it decides anything.

use std::error::Error;
use std::fmt;
use std::ops::{BitAnd, BitOr};

use crate::facade::sync::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crate::{park_with_token, unpark_filter, Cancellation, FilterOp, ParkOptions, ParkResult};

/// A primitive's state word with "threads are parked" bits: the two steps of the park protocol
/// that every primitive shares (`docs/park.md`, "The protocol a primitive follows").
///
/// Implemented for the facade's `AtomicU8`, `AtomicU32`, `AtomicU64` and `AtomicUsize`. Both
/// methods must run under the bucket lock of the key the sleepers queue on: in `park`'s
/// `validate` and `on_abort` callbacks ([`park_while`] does both) or in an unpark callback.
///
/// # Examples
///
/// A latch: threads wait while `CLOSED` is set; `open` clears it and wakes them if `PARKED`
/// says anyone sleeps.
///
/// ```
/// use gosync_park::sync::{AtomicU8, Ordering};
/// use gosync_park::{park_while, unpark_all, ParkOptions, ParkedBits};
///
/// const CLOSED: u8 = 1;
/// const PARKED: u8 = 2;
///
/// struct Latch(AtomicU8);
///
/// impl Latch {
///     fn wait(&self) {
///         let key = &self.0 as *const AtomicU8 as usize;
///         while self.0.load(Ordering::Acquire) & CLOSED != 0 {
///             park_while(&self.0, key, PARKED, |state| state & CLOSED != 0, ParkOptions::default());
///         }
///     }
///
///     fn open(&self) {
///         // Release: pairs with the Acquire load in `wait`.
///         if self.0.fetch_and(!CLOSED, Ordering::Release) & PARKED != 0 {
///             let key = &self.0 as *const AtomicU8 as usize;
///             gosync_park::unpark_filter(key, |_| gosync_park::FilterOp::Unpark, |_| {
///                 self.0.clear_parked(PARKED); // under the lock: everyone leaves
///                 0
///             });
///         }
///     }
/// }
///
/// let latch = Latch(AtomicU8::new(CLOSED));
/// std::thread::scope(|s| {
///     s.spawn(|| latch.wait());
///     latch.open();
/// });
/// latch.wait(); // open: returns at once
/// ```
pub trait ParkedBits {
    /// The word's integer type.
    type Bits: Copy + Eq + BitAnd<Output = Self::Bits> + BitOr<Output = Self::Bits>;

    /// The validate step of a park: sets `parked` as long as `busy(state)` holds, and returns
    /// whether it did (sleep) or found the thread need not wait (`false`: retry). Run under the
    /// queue's lock. See the example on [`ParkedBits`].
    fn set_parked_while(&self, parked: Self::Bits, busy: impl FnMut(Self::Bits) -> bool) -> bool;

    /// Clears `parked`: the last sleeper on the key has left. Run under the queue's lock. See
    /// the example on [`ParkedBits`].
    fn clear_parked(&self, parked: Self::Bits);
}

macro_rules! parked_bits {
    ($($atomic:ty => $bits:ty),+) => {$(
        impl ParkedBits for $atomic {
            type Bits = $bits;

            #[inline]
            fn set_parked_while(
                &self,
                parked: $bits,
                mut busy: impl FnMut($bits) -> bool,
            ) -> bool {
                // Relaxed: under the queue lock (see the notes above); the busy bits are re-read
                // by the exchange, which fails if a release changed them meanwhile.
                let mut state = self.load(Ordering::Relaxed);
                loop {
                    if !busy(state) {
                        return false;
                    }
                    if state & parked == parked {
                        return true;
                    }
                    match self.compare_exchange_weak(
                        state,
                        state | parked,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return true,
                        Err(actual) => state = actual,
                    }
                }
            }

            #[inline]
            fn clear_parked(&self, parked: $bits) {
                // Relaxed: under the queue lock (see the notes above).
                self.fetch_and(!parked, Ordering::Relaxed);
            }
        }
    )+};
}

parked_bits!(AtomicU8 => u8, AtomicU32 => u32, AtomicU64 => u64, AtomicUsize => usize);

/// Parks on `key` while `busy(state)` holds, with `parked` set in `word` meanwhile, and clears
/// `parked` if this thread gives up as the last one queued on `key`: "set the parked bit while
/// busy, then park", and "clear it when the last waiter leaves" on timeout or cancellation.
///
/// Returns [`ParkResult::Invalid`] at once when `busy` no longer holds (retry from the top).
/// The primitive's unpark callbacks clear `parked` themselves when they empty the queue
/// ([`ParkedBits::clear_parked`]).
///
/// # Examples
///
/// See [`ParkedBits`]; and a wait that gives up:
///
/// ```
/// use gosync_park::sync::AtomicU32;
/// use gosync_park::{park_while, ParkOptions, ParkResult};
/// use std::time::Instant;
///
/// const HELD: u32 = 1;
/// const PARKED: u32 = 2;
/// let word = AtomicU32::new(HELD);
/// let options = ParkOptions { deadline: Some(Instant::now()), ..ParkOptions::default() };
/// let result = park_while(&word, 0x100, PARKED, |s| s & HELD != 0, options);
/// assert_eq!(result, ParkResult::TimedOut);
/// assert_eq!(word.into_inner(), HELD); // the last waiter left: the mark is gone
/// ```
pub fn park_while<W: ParkedBits + ?Sized>(
    word: &W,
    key: usize,
    parked: W::Bits,
    busy: impl FnMut(W::Bits) -> bool,
    options: ParkOptions<'_>,
) -> ParkResult {
    let token = options.token;
    park_while_with_token(word, key, parked, busy, || token, options)
}

/// As [`park_while`], with the park token made by `token()` under the queue's lock, just before
/// `parked` is set (and also when `busy` then turns out false, the token going unused): a
/// ticket taken there follows the queue's order, and a thread that sees `parked` set by this
/// one can be made to see the ticket (a `Release` fence in `token`, an `Acquire` fence after
/// its load). See [`park_with_token`].
///
/// # Examples
///
/// ```
/// use gosync_park::sync::{AtomicU32, AtomicUsize, Ordering};
/// use gosync_park::{park_while_with_token, ParkOptions, ParkResult};
/// use std::time::Instant;
///
/// let (word, tickets) = (AtomicU32::new(1), AtomicUsize::new(0));
/// let options = ParkOptions { deadline: Some(Instant::now()), ..ParkOptions::default() };
/// let ticket = || tickets.fetch_add(1, Ordering::Relaxed);
/// let result = park_while_with_token(&word, 0x300, 2, |s| s & 1 != 0, ticket, options);
/// assert_eq!(result, ParkResult::TimedOut);
/// assert_eq!(tickets.load(Ordering::Relaxed), 1);
/// ```
pub fn park_while_with_token<W: ParkedBits + ?Sized>(
    word: &W,
    key: usize,
    parked: W::Bits,
    busy: impl FnMut(W::Bits) -> bool,
    token: impl FnOnce() -> usize,
    options: ParkOptions<'_>,
) -> ParkResult {
    park_with_token(
        key,
        options,
        || {
            let token = token();
            word.set_parked_while(parked, busy).then_some(token)
        },
        || {},
        |_, was_last| {
            if was_last {
                word.clear_parked(parked);
            }
        },
    )
}

/// The unpark token of a plain wake-up: the woken thread must try again for what it waits for,
/// possibly racing running threads. For locks that also hand themselves over
/// ([`TOKEN_HANDOFF`]).
///
/// # Examples
///
/// See [`TOKEN_HANDOFF`].
pub const TOKEN_NORMAL: usize = 0;

/// The unpark token of a hand-off: the waker kept the lock locked and passed it to the woken
/// thread, which owns it on return from [`park`](crate::park) and must not lock it again. The
/// starvation mode of gosync's mutex and of a map's chain lock ends a waiter's wait with it once
/// the waiter has waited longer than [`STARVATION_THRESHOLD`](crate::STARVATION_THRESHOLD).
///
/// # Examples
///
/// ```
/// use gosync_park::{park, unpark_one, ParkOptions, ParkResult, TOKEN_HANDOFF};
///
/// let key = 0x6000;
/// std::thread::scope(|s| {
///     let waiter = s.spawn(|| park(key, ParkOptions::default(), || true, || {}, |_, _| {}));
///     // Hand over as soon as the waiter is queued (the callback hears whether it was).
///     while unpark_one(key, |_| TOKEN_HANDOFF).unparked == 0 {
///         std::thread::yield_now();
///     }
///     assert_eq!(waiter.join().unwrap(), ParkResult::Unparked(TOKEN_HANDOFF));
/// });
/// ```
pub const TOKEN_HANDOFF: usize = 1;

/// Sets `bits` in `word` if a thread is parked on `key` and `busy(state)` holds, under the
/// queue's lock; returns whether it did.
///
/// For test hooks that switch a lock into a mode its waiters would enter by themselves only after
/// a while (a mutex's starvation mode), so that tests and loom models reach it deterministically.
///
/// # Examples
///
/// ```
/// use gosync_park::sync::AtomicU32;
///
/// const HELD: u32 = 1;
/// const STARVING: u32 = 4;
/// let word = AtomicU32::new(HELD);
/// // Nobody is parked on the key: nothing is marked.
/// assert!(!gosync_park::mark_if_parked(&word, 0x7000, STARVING, |s| s & HELD != 0));
/// assert_eq!(word.into_inner(), HELD);
/// ```
pub fn mark_if_parked<W: ParkedBits + ?Sized>(
    word: &W,
    key: usize,
    bits: W::Bits,
    busy: impl FnMut(W::Bits) -> bool,
) -> bool {
    let mut marked = false;
    // Stops at once: this only borrows the queue's lock to change the word under it.
    unpark_filter(
        key,
        |_| FilterOp::Stop,
        |result| {
            marked = result.have_more && word.set_parked_while(bits, busy);
            TOKEN_NORMAL
        },
    );
    marked
}

/// Takes a released lock back when dropped, also while unwinding: the guard a lock's
/// `unlocked(|| ...)` method (Go's `mu.Unlock(); ...; mu.Lock()`) holds while the user's code
/// runs.
///
/// [`unlocked`] is the usual way to use it.
///
/// # Examples
///
/// ```
/// use gosync_park::RelockOnDrop;
/// use std::cell::Cell;
///
/// let locked = Cell::new(false);
/// let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
///     let _relock = RelockOnDrop::new(|| locked.set(true));
///     panic!("user code failed");
/// }));
/// assert!(result.is_err());
/// assert!(locked.get()); // taken back during the unwind
/// ```
#[must_use = "dropping it at once takes the lock back at once"]
pub struct RelockOnDrop<F: FnOnce()> {
    relock: Option<F>,
}

impl<F: FnOnce()> RelockOnDrop<F> {
    /// A guard that calls `relock` when dropped. See the example on [`RelockOnDrop`].
    #[inline]
    pub fn new(relock: F) -> Self {
        Self {
            relock: Some(relock),
        }
    }
}

impl<F: FnOnce()> Drop for RelockOnDrop<F> {
    #[inline]
    fn drop(&mut self) {
        if let Some(relock) = self.relock.take() {
            relock();
        }
    }
}

impl<F: FnOnce()> fmt::Debug for RelockOnDrop<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelockOnDrop").finish_non_exhaustive()
    }
}

/// Runs `f` with a lock released: calls `unlock`, then `f`, then `relock`, which runs also if
/// `f` panics (so the caller's guard, which assumes it holds the lock, is right again when the
/// panic reaches it).
///
/// # Examples
///
/// ```
/// use std::cell::Cell;
///
/// let held = Cell::new(true);
/// let seen = gosync_park::unlocked(|| held.set(false), || held.set(true), || held.get());
/// assert!(!seen);
/// assert!(held.get());
/// ```
#[inline]
pub fn unlocked<U>(unlock: impl FnOnce(), relock: impl FnOnce(), f: impl FnOnce() -> U) -> U {
    unlock();
    let _relock = RelockOnDrop::new(relock);
    f()
}

/// Why a cancellable wait gave up: Go's `context.Canceled` and `context.DeadlineExceeded`.
///
/// Its `Display` is Go's text: `context canceled` and `context deadline exceeded`. It is
/// defined here, next to [`Cancellation`], and re-exported by gosync-context (as
/// `gosync_context::ContextError`), so that every `_ctx` wait maps its outcome the same way
/// ([`cancelled_error`]).
///
/// # Examples
///
/// ```
/// use gosync_park::ContextError;
///
/// assert_eq!(ContextError::Canceled.to_string(), "context canceled");
/// assert_eq!(ContextError::DeadlineExceeded.to_string(), "context deadline exceeded");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextError {
    /// The context was cancelled (its own cancel, or an ancestor's).
    Canceled,
    /// The context's deadline (its own or an ancestor's) passed.
    DeadlineExceeded,
}

impl fmt::Display for ContextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Canceled => "context canceled",
            Self::DeadlineExceeded => "context deadline exceeded",
        })
    }
}

impl Error for ContextError {}

/// The error of a wait that [`park`](crate::park) ended with [`ParkResult::Cancelled`] (or that
/// otherwise gave up because of `source`): the source's own error, as Go's `ctx.Err()` after
/// `Done()`.
///
/// The park layer returns `Cancelled` for two reasons: the source said it was cancelled (it
/// then reports its error, which never changes back), or the source's deadline passed by the
/// park layer's look at the clock, which a source that does not count its deadline in
/// [`Cancellation::err`] may not report yet. So when the source reports nothing, the deadline
/// it was parked against is why: [`ContextError::DeadlineExceeded`].
///
/// # Examples
///
/// ```
/// use gosync_park::{cancelled_error, Cancellation, ContextError, Waker};
/// use std::time::{Duration, Instant};
///
/// /// A source that never cancels and whose deadline it does not count itself.
/// struct Deadline(Instant);
/// impl Cancellation for Deadline {
///     fn is_cancelled(&self) -> bool { false }
///     fn deadline(&self) -> Option<Instant> { Some(self.0) }
///     fn register(&self, _: Waker) -> bool { true }
///     fn unregister(&self, _: usize) {}
/// }
///
/// let source = Deadline(Instant::now() + Duration::from_secs(60));
/// assert_eq!(cancelled_error(&source), ContextError::DeadlineExceeded);
/// ```
#[inline]
#[must_use]
pub fn cancelled_error(source: &(impl Cancellation + ?Sized)) -> ContextError {
    source.err().unwrap_or(ContextError::DeadlineExceeded)
}

/// The default of [`Cancellation::err`]: `DeadlineExceeded` when the source's deadline has
/// passed, `Canceled` when it says it is cancelled otherwise, nothing while it is neither. (A
/// source that knows which came first, as a `Context` does, says so itself.)
#[inline]
pub(crate) fn default_err(source: &(impl Cancellation + ?Sized)) -> Option<ContextError> {
    if source.deadline().is_some_and(crate::deadline_passed) {
        Some(ContextError::DeadlineExceeded)
    } else if source.is_cancelled() {
        Some(ContextError::Canceled)
    } else {
        None
    }
}
