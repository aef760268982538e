//! Go's `x/sync/singleflight`: concurrent calls for one key run once, and every caller gets
//! the value.
//!
//! | Go | here |
//! | --- | --- |
//! | `var g singleflight.Group` | [`Group::new`], `Group::default()` |
//! | `v, err, shared := g.Do(key, fn)` | `let (v, shared) = g.call(key, f)` ([`Group::call`]) |
//! | `g.Forget(key)` | [`g.forget(&key)`](Group::forget) |
//! | `select { case r := <-g.DoChan(key, fn): ...; case <-ctx.Done(): ... }` | [`g.call_ctx(&ctx, key, f)`](Group::call_ctx) |
//! | (no Go analog) | [`try_call_for`](Group::try_call_for), [`try_call_until`](Group::try_call_until) |
//!
//! # Examples
//!
//! ```
//! use gosync_singleflight::Group;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! let group = Group::new();
//! let loads = AtomicUsize::new(0);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             let (config, _shared) = group.call("config", || {
//!                 loads.fetch_add(1, Ordering::Relaxed);
//!                 String::from("loaded")
//!             });
//!             assert_eq!(config, "loaded");
//!         });
//!     }
//! });
//! // Between 1 and 4 loads, depending on how the calls overlapped.
//! assert!((1..=4).contains(&loads.load(Ordering::Relaxed)));
//! ```

// Notes about memory ordering: a flight's `state` word carries `DONE`, `PARKED` and the count
// of callers waiting on it. The count rises only under the group's map lock while the flight is
// in the map, and the leader reads it after taking that lock once `f` has returned (when the
// flight has left the map), so the lock orders every join before the leader's look. The leader
// writes the outcome before its Release `fetch_or(DONE)`; a waiter reads the outcome only after
// an Acquire load (or failed exchange) that saw `DONE`, which pairs with it. A waiter that gives
// up leaves with a read-modify-write that fails once `DONE` is set, so it either leaves before
// the leader's `fetch_or` (and never reads the outcome) or stays and reads it. `PARKED` is set
// and cleared under the park queue's lock (`gosync_park::park_while`) and orders nothing.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{Arc, AtomicUsize, BookkeepingLock, Ordering};
use gosync_park::{
    cancelled_error, deadline_passed, drop_discarding_panic, park_while, Cancellation, ParkOptions,
};

/// A key shared between the map of flights and the flight's leader: `std`'s `Arc`, not the
/// facade's, whose loom version has no `Hash`, `Eq` or `Borrow`. The key is never written
/// through it, and only its last reference runs the key's `Drop`.
type SharedKey<K> = std::sync::Arc<K>;

/// The flight's `f` has returned (or panicked) and its outcome is published.
const DONE: usize = 1;
/// A caller is parked on the state's address, or is about to park.
const PARKED: usize = 1 << 1;
/// One waiting caller in the count (the bits above `PARKED`).
const WAITER_ONE: usize = 1 << 2;

/// How many callers wait on a flight, in a state word.
#[inline]
fn waiters(state: usize) -> usize {
    state / WAITER_ONE
}

/// Runs a function once per key for all the callers that ask for it at the same time: Go's
/// `singleflight.Group`.
///
/// The first [`call`](Self::call) for a key starts a *flight*: it runs `f` on the caller's
/// thread. Every call for the same key that arrives while the flight is under way waits for it
/// instead of running its own `f`, and gets a clone of the value. When the flight lands, the key is
/// free again: the next call starts a new flight. Waiting callers sleep in gosync's parking
/// queues and are woken by the flight's end.
///
/// # Differences from Go
///
/// - No `error` in the result: `V` is whatever `f` returns, a `Result` if it can fail (it is
///   shared like any value, so its error type must be `Clone`; an `Arc` around it does).
/// - A panic in `f` reaches every caller: the one that ran it panics with the original
///   payload, each waiting caller panics with the same message, and the key is free again.
///   (Go's `Do` re-panics in the waiters too; its `DoChan` ends the process.)
/// - `DoChan` is replaced by waits that give up: [`call_ctx`](Self::call_ctx),
///   [`try_call_for`](Self::try_call_for), [`try_call_until`](Self::try_call_until). The
///   flight goes on for the others when a waiter gives up.
/// - `shared` counts only callers that received the value: one that gave up does not make it
///   shared.
/// - The value is cloned once per waiting caller; the caller that ran `f` gets the original,
///   and a flight nobody joined clones nothing.
///
/// # Examples
///
/// ```
/// use gosync_singleflight::Group;
///
/// let group: Group<u32, String> = Group::new();
/// let (value, shared) = group.call(7, || "seven".to_string());
/// assert_eq!(value, "seven");
/// assert!(!shared); // nobody else asked at the same time
/// ```
pub struct Group<K, V> {
    /// The flights under way, by key. Each key is shared with the flight's leader, which drops
    /// the last reference after the lock is released, whichever way the flight left the map:
    /// a key's `Drop` may use the group.
    flights: BookkeepingLock<HashMap<SharedKey<K>, Arc<Flight<V>>>>,
}

/// One run of `f` and the callers waiting for it.
struct Flight<V> {
    /// `DONE`, `PARKED`, and the count of waiting callers above them.
    state: AtomicUsize,
    /// The thread running `f` (its `thread_ticket`): a call for the key on that thread comes
    /// from inside `f` and would wait for itself.
    leader: usize,
    /// Written once by the leader before `DONE` (only if someone waits), read after it.
    outcome: UnsafeCell<Option<Outcome<V>>>,
}

/// What a flight hands to its waiting callers.
enum Outcome<V> {
    Value(V),
    /// The message of the panic that ended `f` (or the clone of its value).
    Panicked(String),
}

// SAFETY: `outcome` is written by one thread (the leader) before the Release store of `DONE`
// and only read (shared, through `&V`) after an Acquire load that saw `DONE`, so no access
// races; the value moves from the leader's thread to whichever drops the flight (`V: Send`) and
// is cloned through `&V` on several threads at once (`V: Sync`).
unsafe impl<V: Send + Sync> Sync for Flight<V> {}

/// What a caller is to do after looking a key up.
enum Role<K, V> {
    /// No flight under way: run `f` and land this new flight (stored under the shared key).
    Lead(Arc<Flight<V>>, SharedKey<K>),
    /// A flight is under way, and this caller is counted among its waiters. The caller's key
    /// is handed back to drop after the lock, as in the two roles below: its `Drop` may use the
    /// group.
    Wait(Arc<Flight<V>>, K),
    /// A flight is under way and the caller's deadline has passed: it does not wait.
    GiveUp(K),
    /// This thread leads the flight under way: the caller runs inside its own `f`.
    OwnFlight(K),
}

impl<K: Hash + Eq + Clone, V: Clone> Group<K, V> {
    /// Creates a group with no flights (Go's zero value).
    ///
    /// # Examples
    ///
    /// ```
    /// let group = gosync_singleflight::Group::<&str, u64>::new();
    /// assert_eq!(group.call("answer", || 42), (42, false));
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self {
            flights: BookkeepingLock::new(HashMap::new()),
        }
    }

    /// Runs `f` for `key`, unless a flight for `key` is under way: then waits for it and
    /// returns a clone of its value. Go's `Do`.
    ///
    /// Returns the value and whether it was *shared*: `true` when more than one caller
    /// received this flight's value (the one that ran `f` included).
    ///
    /// # Panics
    ///
    /// If `f` panics: the caller that ran it resumes the panic with its payload, and every
    /// caller waiting for that flight panics with the same message. The key is free again
    /// before anyone panics. Also if `V::clone` panics (on the caller that cloned), and if
    /// the key's `Hash`, `Eq` or `Drop` panics as the flight's caller frees the key (then every
    /// waiting caller panics with that message, and the key is free again).
    ///
    /// Panics if called from inside its own `f` (on the thread running it) for the same key,
    /// which would wait for itself (Go's `Do` deadlocks); after [`forget`](Self::forget) it
    /// starts a new flight instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_singleflight::Group;
    ///
    /// let group = Group::new();
    /// let (value, shared) = group.call("key", || vec![1, 2, 3]);
    /// assert_eq!((value, shared), (vec![1, 2, 3], false));
    ///
    /// let failing = || -> Vec<i32> { panic!("load failed") };
    /// let caught = std::panic::catch_unwind(|| group.call("key", failing));
    /// assert!(caught.is_err());
    /// assert_eq!(group.call("key", || vec![4]).0, [4]); // the key is free again
    /// ```
    #[track_caller]
    pub fn call(&self, key: K, f: impl FnOnce() -> V) -> (V, bool) {
        let received = self.call_until(key, f, None, None);
        received.expect("an untimed, uncancellable wait always receives")
    }

    /// As [`call`](Self::call), but a caller that would wait for another's flight gives up
    /// when `ctx` is done; the flight goes on for the others.
    ///
    /// A caller that starts a flight runs `f` itself and returns its value whatever `ctx`
    /// does meanwhile: pass `ctx` into `f` for it to stop early.
    ///
    /// # Errors
    ///
    /// The context's error when it is done first. A context that is done already fails at
    /// once, even when no flight is under way.
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call): for a caller that received the flight's outcome, and when
    /// called from inside its own `f` for the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_context::{Context, ContextError};
    /// use gosync_singleflight::Group;
    ///
    /// let group = Group::new();
    /// let ctx = Context::background();
    /// assert_eq!(group.call_ctx(&ctx, 1, || "one"), Ok(("one", false)));
    ///
    /// let (done, cancel) = ctx.with_cancel();
    /// cancel.cancel();
    /// assert_eq!(group.call_ctx(&done, 1, || "one"), Err(ContextError::Canceled));
    /// ```
    #[track_caller]
    pub fn call_ctx(
        &self,
        ctx: &Context,
        key: K,
        f: impl FnOnce() -> V,
    ) -> Result<(V, bool), ContextError> {
        if let Some(err) = ctx.err() {
            return Err(err);
        }
        self.call_until(key, f, None, Some(ctx))
            .ok_or_else(|| cancelled_error(ctx))
    }

    /// As [`call`](Self::call), but a caller that would wait for another's flight gives up
    /// after `timeout` and returns `None`; the flight goes on for the others.
    ///
    /// A caller that starts a flight runs `f` itself and returns its value however long it
    /// takes. A zero timeout returns `None` at once when a flight is under way.
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call): for a caller that received the flight's outcome, and when
    /// called from inside its own `f` for the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let group = gosync_singleflight::Group::new();
    /// assert_eq!(group.try_call_for("k", Duration::ZERO, || 1), Some((1, false)));
    /// ```
    #[must_use = "None means this caller gave up without a value"]
    #[track_caller]
    pub fn try_call_for(
        &self,
        key: K,
        timeout: Duration,
        f: impl FnOnce() -> V,
    ) -> Option<(V, bool)> {
        // A timeout too far to represent has no deadline: it waits as long as it takes.
        self.call_until(key, f, gosync_park::deadline_after(timeout), None)
    }

    /// As [`try_call_for`](Self::try_call_for), with a deadline: a caller that would wait
    /// gives up at `deadline`; a past deadline returns `None` at once when a flight is under
    /// way.
    ///
    /// # Panics
    ///
    /// As [`call`](Self::call): for a caller that received the flight's outcome, and when
    /// called from inside its own `f` for the same key.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let group = gosync_singleflight::Group::new();
    /// // No flight under way: this caller runs `f`, past deadline or not.
    /// assert_eq!(group.try_call_until("k", Instant::now(), || 1), Some((1, false)));
    /// ```
    #[must_use = "None means this caller gave up without a value"]
    #[track_caller]
    pub fn try_call_until(
        &self,
        key: K,
        deadline: Instant,
        f: impl FnOnce() -> V,
    ) -> Option<(V, bool)> {
        self.call_until(key, f, Some(deadline), None)
    }

    /// Forgets the flight under way for `key`, if any: the next call for `key` starts a new
    /// flight instead of waiting for it. Callers already waiting still get its value. Go's
    /// `Forget`.
    ///
    /// # Examples
    ///
    /// ```
    /// let group = gosync_singleflight::Group::new();
    /// group.forget(&"nothing in flight"); // a no-op
    /// assert_eq!(group.call("nothing in flight", || 1), (1, false));
    /// ```
    pub fn forget(&self, key: &K) {
        // The stored key drops after the map lock is released: its `Drop` may use the group.
        let removed = self.flights.lock().remove_entry(key);
        drop(removed);
    }

    /// The core of every call: lead a new flight, or wait for the one under way until
    /// `deadline` or `cancel`. `None` when the caller gave up.
    #[track_caller]
    fn call_until(
        &self,
        key: K,
        f: impl FnOnce() -> V,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
    ) -> Option<(V, bool)> {
        match self.join(key, deadline) {
            Role::Lead(flight, stored) => Some(self.lead(stored, &flight, f)),
            // The key drops after the wait: until then this caller is counted as a waiter, and a
            // panic in its `Drop` must not leave a count that nobody answers for.
            Role::Wait(flight, _key) => flight.wait(deadline, cancel),
            Role::GiveUp(_key) => None,
            Role::OwnFlight(key) => {
                // Dropped before the panic: a key whose `Drop` panics too would abort the
                // process while unwinding.
                drop(key);
                panic!(
                    "gosync_singleflight::Group::call: called from inside its own `f` for the \
                     same key (it would wait for itself forever)"
                )
            }
        }
    }

    /// Finds the flight for `key` and counts the caller among its waiters, or starts one under
    /// `key` itself (no clone under the lock).
    fn join(&self, key: K, deadline: Option<Instant>) -> Role<K, V> {
        // Before the lock, which is held long enough already: every path needs it (to lead,
        // or to spot a call from its own `f`).
        let me = gosync_park::thread_ticket();
        let mut flights = self.flights.lock();
        if let Some(flight) = flights.get(&key) {
            if flight.leader == me {
                return Role::OwnFlight(key);
            }
            if deadline.is_some_and(deadline_passed) {
                return Role::GiveUp(key);
            }
            // Relaxed: under the map lock, which the leader takes before it reads the count
            // (see the notes at the top of the file).
            flight.state.fetch_add(WAITER_ONE, Ordering::Relaxed);
            return Role::Wait(Arc::clone(flight), key);
        }
        let flight = Arc::new(Flight {
            state: AtomicUsize::new(0),
            leader: me,
            outcome: UnsafeCell::new(None),
        });
        let stored = SharedKey::new(key);
        // The insert runs the keys' `Eq` (and `Hash`, when the map grows), which may panic: the
        // key's `Drop` may use the group, so it runs after the lock.
        let inserted = panic::catch_unwind(AssertUnwindSafe(|| {
            flights.insert(SharedKey::clone(&stored), Arc::clone(&flight))
        }));
        if let Err(payload) = inserted {
            drop(flights);
            drop(stored);
            panic::resume_unwind(payload);
        }
        Role::Lead(flight, stored)
    }

    /// Runs `f` for a flight this caller started, frees the key, and hands the outcome to the
    /// flight's waiters.
    fn lead(
        &self,
        stored: SharedKey<K>,
        flight: &Arc<Flight<V>>,
        f: impl FnOnce() -> V,
    ) -> (V, bool) {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let mut stored = Some(stored);
        let removed = panic::catch_unwind(AssertUnwindSafe(|| {
            let key: &K = stored.as_deref().expect("taken only below");
            let mut flights = self.flights.lock();
            // A `forget` may have removed this flight, and a newer one may hold the key.
            if flights.get(key).is_some_and(|now| Arc::ptr_eq(now, flight)) {
                flights.remove_entry(key)
            } else {
                None
            }
        }))
        // The stored key's own `Drop` runs here, after the lock, with the last reference.
        .and_then(|entry| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                drop(entry);
                drop(stored.take());
            }))
        });
        if let Err(payload) = removed {
            // The key's `Hash`, `Eq` or `Drop` panicked: take the flight out without them (by
            // pointer; the map drops only its reference to the key), then land it with that
            // panic, so that no waiter sleeps forever and the key is free again. Only that
            // first panic goes on: a later one, of the key's or the value's `Drop`, is
            // discarded.
            self.flights
                .lock()
                .retain(|_, now| !Arc::ptr_eq(now, flight));
            drop_discarding_panic(stored.take());
            // Relaxed: after the map lock, as below.
            let anyone_waits = waiters(flight.state.load(Ordering::Relaxed)) > 0;
            flight.land(anyone_waits.then(|| Outcome::Panicked(panic_text(&*payload))));
            drop_discarding_panic(result);
            panic::resume_unwind(payload);
        }
        // Relaxed: after the map lock, which ordered every join before it (see the notes).
        let anyone_waits = waiters(flight.state.load(Ordering::Relaxed)) > 0;
        match result {
            Ok(value) => {
                if !anyone_waits {
                    flight.land(None);
                    return (value, false);
                }
                match panic::catch_unwind(AssertUnwindSafe(|| value.clone())) {
                    Ok(copy) => {
                        let shared = flight.land(Some(Outcome::Value(copy)));
                        (value, shared)
                    }
                    Err(payload) => {
                        flight.land(Some(Outcome::Panicked(panic_text(&*payload))));
                        panic::resume_unwind(payload)
                    }
                }
            }
            Err(payload) => {
                flight.land(anyone_waits.then(|| Outcome::Panicked(panic_text(&*payload))));
                panic::resume_unwind(payload)
            }
        }
    }
}

impl<V: Clone> Flight<V> {
    /// The parking key: the state's address.
    #[inline]
    fn key(&self) -> usize {
        &self.state as *const AtomicUsize as usize
    }

    /// Publishes the outcome (`None` when nobody waits) and wakes the waiters. Returns whether
    /// anyone still waited, that is, whether the value is shared.
    fn land(&self, outcome: Option<Outcome<V>>) -> bool {
        if outcome.is_some() {
            // SAFETY: only the leader writes, once, and no waiter reads before `DONE`, which is
            // stored below (see the `Sync` impl).
            unsafe { *self.outcome.mut_ptr() = outcome };
        }
        // Release: publishes the outcome to the waiters' Acquire loads.
        let prev = self.state.fetch_or(DONE, Ordering::Release);
        if prev & PARKED != 0 {
            gosync_park::unpark_all(self.key(), 0);
        }
        waiters(prev) > 0
    }

    /// Waits for the flight to land, as a counted waiter, until `deadline` or `cancel`.
    /// `None` when the caller gave up first (and left the count).
    fn wait(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
    ) -> Option<(V, bool)> {
        loop {
            // Acquire: pairs with the Release `fetch_or(DONE)` in `land`.
            if self.state.load(Ordering::Acquire) & DONE != 0 {
                return Some((self.received(), true));
            }
            let gave_up = deadline.is_some_and(deadline_passed)
                || matches!(
                    park_while(
                        &self.state,
                        self.key(),
                        PARKED,
                        |state| state & DONE == 0,
                        ParkOptions {
                            deadline,
                            cancel,
                            ..ParkOptions::default()
                        },
                    ),
                    gosync_park::ParkResult::TimedOut | gosync_park::ParkResult::Cancelled
                );
            if gave_up && self.leave() {
                return None;
            }
        }
    }

    /// Leaves the waiters' count, unless the flight has landed meanwhile (then the caller
    /// takes the value instead). Returns whether it left.
    fn leave(&self) -> bool {
        // Relaxed: leaving publishes nothing; a failure that saw `DONE` goes back to the
        // Acquire load in `wait`.
        self.state
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |state| {
                (state & DONE == 0).then(|| state - WAITER_ONE)
            })
            .is_ok()
    }

    /// A waiting caller's copy of the landed outcome.
    fn received(&self) -> V {
        // SAFETY: `DONE` was seen with Acquire and this caller was counted when the leader
        // looked, so the outcome is written and is never written again.
        let outcome = unsafe { &*self.outcome.ptr() };
        match outcome {
            Some(Outcome::Value(value)) => value.clone(),
            Some(Outcome::Panicked(message)) => panic!("{message}"),
            None => unreachable!("a flight with waiters lands with an outcome"),
        }
    }
}

/// The text of a panic payload, as `std` prints it.
fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        String::from("Box<dyn Any>")
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Default for Group<K, V> {
    /// Same as [`Group::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// Shows how many flights are under way and how many callers wait for them (a snapshot).
impl<K, V> fmt::Debug for Group<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flights = self.flights.lock();
        // Relaxed: a snapshot for display.
        let waiting: usize = flights
            .values()
            .map(|flight| waiters(flight.state.load(Ordering::Relaxed)))
            .sum();
        f.debug_struct("Group")
            .field("flights", &flights.len())
            .field("waiting", &waiting)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_impl_all!(Group<String, Vec<u8>>: Send, Sync, Default, fmt::Debug);
    static_assertions::assert_not_impl_any!(Group<String, std::cell::Cell<u8>>: Sync);
    static_assertions::assert_not_impl_any!(Group<String, std::rc::Rc<u8>>: Send, Sync);

    #[test]
    fn panic_text_reads_both_string_payloads() {
        assert_eq!(panic_text(&"static"), "static");
        assert_eq!(panic_text(&String::from("owned")), "owned");
        assert_eq!(panic_text(&7_u8), "Box<dyn Any>");
    }

    #[test]
    fn a_waiter_that_leaves_before_landing_is_not_counted() {
        let flight: Flight<u8> = Flight {
            state: AtomicUsize::new(2 * WAITER_ONE),
            leader: gosync_park::thread_ticket(),
            outcome: UnsafeCell::new(None),
        };
        assert!(flight.leave());
        assert!(flight.land(Some(Outcome::Value(1))));
        assert!(!flight.leave()); // landed: the remaining waiter takes the value
        assert_eq!(flight.received(), 1);
    }
}
