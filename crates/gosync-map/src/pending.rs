//! The calls of `load_or_store_with` whose `f` is running, so that concurrent callers for the
//! same absent key wait for that one `f` instead of running their own.
//!
//! A caller that finds its key absent takes the registry lock, and either finds a computation
//! of the same key (and sleeps in gosync-park, keyed by the computation's state word, until it
//! finishes, then starts over) or registers its own. The computing caller runs `f` with no lock
//! held, then inserts the value and unregisters in one critical section of the registry lock, so
//! a later caller either finds the computation or finds the key in the map. If `f` panics, the
//! registration is removed and the waiters woken all the same: they start over, and one of them
//! runs its own `f`.
//!
//! A bounded waiter that gives up leaves its park queue under the queue lock and drops its
//! handle to the computation: the registry never held anything of it, so the computation and its
//! other waiters go on as before.
//!
//! # Notes about memory ordering
//!
//! `state` is set to `FINISHED` with `Release` after the insert, and waiters read it with
//! `Acquire`, so a woken waiter's next lookup sees the inserted entry. A waiter's check before it
//! sleeps runs under the park queue lock, which the finisher takes after its store to wake the
//! queue: either the check sees `FINISHED`, or the waiter is queued before the wake.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::Instant;

use gosync_mutex::Mutex;
use gosync_park::sync::{Arc, AtomicU32, Ordering};
use gosync_park::{Cancellation, ParkOptions, ParkResult};

/// `Computation::state`: `f` is running.
const RUNNING: u32 = 0;
/// `Computation::state`: `f` returned (and its value was offered to the map) or panicked.
const FINISHED: u32 = 1;

/// One running `f`.
struct Computation<K> {
    hash: u64,
    /// The key of the caller running `f`. Read only under the registry lock while registered;
    /// the caller keeps it in place until it unregisters under the same lock.
    key: *const K,
    /// The thread running `f` (its `thread_ticket`): a call for the same key on that thread
    /// comes from inside `f` and would wait for itself.
    runner: usize,
    state: AtomicU32,
}

impl<K> Computation<K> {
    /// The park key its waiters sleep on: the address of its state word, which stays allocated
    /// while any of them holds the computation.
    fn park_key(&self) -> usize {
        &self.state as *const AtomicU32 as usize
    }
}

/// The registry of running computations.
pub(crate) struct Pending<K> {
    running: Mutex<Vec<Arc<Computation<K>>>>,
}

/// What a caller whose key is absent does next.
pub(crate) enum Turn<'a, K> {
    /// Another caller is computing this key: wait for it, then start over.
    Wait(Waiter<K>),
    /// This thread is computing this key: the caller runs inside its own `f`, and waiting
    /// would never end.
    OwnKey,
    /// This caller computes; dropping the registration (also by a panic) unregisters it.
    Compute(Registration<'a, K>),
}

impl<K: Eq> Pending<K> {
    pub(crate) fn new() -> Self {
        Self {
            running: Mutex::new(Vec::new()),
        }
    }

    /// Joins the computation of `key` if one runs, or registers this caller's.
    ///
    /// `key` must stay where it is until the registration is finished or dropped.
    pub(crate) fn begin<'a>(&'a self, hash: u64, key: &K) -> Turn<'a, K> {
        let mut running = self.running.lock();
        let me = gosync_park::thread_ticket();
        if let Some(computation) = Self::find(&running, hash, key) {
            if computation.runner == me {
                return Turn::OwnKey;
            }
            return Turn::Wait(Waiter(Arc::clone(computation)));
        }
        let computation = Arc::new(Computation {
            hash,
            key,
            runner: me,
            state: AtomicU32::new(RUNNING),
        });
        running.push(Arc::clone(&computation));
        Turn::Compute(Registration {
            pending: self,
            computation,
            unregistered: false,
        })
    }

    /// The registered computation of `key`; `running` is the locked registry.
    fn find<'r>(
        running: &'r [Arc<Computation<K>>],
        hash: u64,
        key: &K,
    ) -> Option<&'r Arc<Computation<K>>> {
        running.iter().find(|c| {
            // SAFETY: registered computations' keys stay in place until unregistered, which
            // happens under the registry lock, held by our caller.
            c.hash == hash && unsafe { &*c.key } == key
        })
    }

    /// How many callers wait for the computation of `key`, or `None` when none runs: every
    /// handle to a computation but the registry's and its runner's is a waiter's.
    #[cfg(any(gosync_loom, feature = "test-hooks"))]
    pub(crate) fn waiters(&self, hash: u64, key: &K) -> Option<usize> {
        let running = self.running.lock();
        Self::find(&running, hash, key).map(|c| Arc::strong_count(c) - 2)
    }
}

/// A caller's wait for another caller's `f`.
pub(crate) struct Waiter<K>(Arc<Computation<K>>);

impl<K> Waiter<K> {
    /// Sleeps until the computation finishes (returned or panicked): `true`; or gives up when
    /// `deadline` passes or `cancel` is done first: `false`. A past deadline gives up at once
    /// unless the computation has finished; one that finishes just as the wait gives up counts
    /// as finished.
    pub(crate) fn wait(
        &self,
        deadline: Option<Instant>,
        cancel: Option<&dyn Cancellation>,
    ) -> bool {
        let computation = &*self.0;
        let options = ParkOptions {
            deadline,
            cancel,
            ..ParkOptions::default()
        };
        loop {
            // Acquire: pairs with the Release in `Registration::wake`.
            if computation.state.load(Ordering::Acquire) != RUNNING {
                return true;
            }
            if deadline.is_some_and(gosync_park::deadline_passed) {
                return false;
            }
            let result = gosync_park::park(
                computation.park_key(),
                options,
                // Relaxed: under the queue lock, which `wake` takes after its store.
                || computation.state.load(Ordering::Relaxed) == RUNNING,
                || {},
                |_, _| {},
            );
            if matches!(result, ParkResult::TimedOut | ParkResult::Cancelled) {
                // Acquire: as above.
                return computation.state.load(Ordering::Acquire) != RUNNING;
            }
        }
    }
}

/// This caller's registered computation.
pub(crate) struct Registration<'a, K> {
    pending: &'a Pending<K>,
    computation: Arc<Computation<K>>,
    unregistered: bool,
}

impl<K> Registration<'_, K> {
    /// Runs `insert` (which may move the registered key into the map) and unregisters, in one
    /// critical section of the registry lock, then wakes the waiters.
    ///
    /// Also when `insert` panics (the user's `Eq`, say): the caller drops its key after the
    /// lock, so it is unregistered before the lock is released, lest another caller's `find`
    /// compare against it; then the panic goes on.
    pub(crate) fn finish<R>(mut self, insert: impl FnOnce() -> R) -> R {
        let mut running = self.pending.running.lock();
        let result = catch_unwind(AssertUnwindSafe(insert));
        self.unregister(&mut running);
        drop(running);
        self.wake();
        result.unwrap_or_else(|payload| resume_unwind(payload))
    }

    fn unregister(&mut self, running: &mut Vec<Arc<Computation<K>>>) {
        running.retain(|c| !Arc::ptr_eq(c, &self.computation));
        self.unregistered = true;
    }

    fn wake(&self) {
        // Release: pairs with the waiters' Acquire, after the insert.
        self.computation.state.store(FINISHED, Ordering::Release);
        gosync_park::unpark_all(self.computation.park_key(), 0);
    }
}

impl<K> Drop for Registration<'_, K> {
    /// Unregisters a computation whose `f` or insert panicked (or which found the key after
    /// all), and wakes its waiters to start over.
    fn drop(&mut self) {
        if !self.unregistered {
            let pending = self.pending;
            self.unregister(&mut pending.running.lock());
            self.wake();
        }
    }
}
