//! The calls of `load_or_store_with` whose `f` is running, so that concurrent callers for the
//! same absent key wait for that one `f` instead of running their own.
//!
//! A caller that finds its key absent takes the registry lock, and either finds a computation
//! of the same key (and sleeps on its state word until it finishes, then starts over) or
//! registers its own. The computing caller runs `f` with no lock held, then inserts the value
//! and unregisters in one critical section of the registry lock, so a later caller either finds
//! the computation or finds the key in the map. If `f` panics, the registration is removed and
//! the waiters woken all the same: they start over, and one of them runs its own `f`.
//!
//! # Notes about memory ordering
//!
//! `state` is set to `FINISHED` with `Release` after the insert, and waiters read it with
//! `Acquire`, so a woken waiter's next lookup sees the inserted entry.

use gosync_mutex::Mutex;
use gosync_park::sync::{Arc, AtomicU32, Ordering};

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
    state: AtomicU32,
}

/// The registry of running computations.
pub(crate) struct Pending<K> {
    running: Mutex<Vec<Arc<Computation<K>>>>,
}

/// What a caller whose key is absent does next.
pub(crate) enum Turn<'a, K> {
    /// Another caller is computing this key: wait for it, then start over.
    Wait(Waiter<K>),
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
        let same = running.iter().find(|c| {
            // SAFETY: registered computations' keys stay in place until unregistered, which
            // happens under the lock we hold.
            c.hash == hash && unsafe { &*c.key } == key
        });
        if let Some(computation) = same {
            return Turn::Wait(Waiter(Arc::clone(computation)));
        }
        let computation = Arc::new(Computation {
            hash,
            key,
            state: AtomicU32::new(RUNNING),
        });
        running.push(Arc::clone(&computation));
        Turn::Compute(Registration {
            pending: self,
            computation,
            unregistered: false,
        })
    }
}

/// A caller's wait for another caller's `f`.
pub(crate) struct Waiter<K>(Arc<Computation<K>>);

impl<K> Waiter<K> {
    /// Sleeps until the computation finishes (returned or panicked).
    pub(crate) fn wait(self) {
        // Acquire: pairs with the Release in `Registration::drop`.
        while self.0.state.load(Ordering::Acquire) == RUNNING {
            gosync_park::wait(&self.0.state, RUNNING);
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
    pub(crate) fn finish<R>(mut self, insert: impl FnOnce() -> R) -> R {
        let mut running = self.pending.running.lock();
        let result = insert();
        self.unregister(&mut running);
        drop(running);
        self.wake();
        result
    }

    fn unregister(&mut self, running: &mut Vec<Arc<Computation<K>>>) {
        running.retain(|c| !Arc::ptr_eq(c, &self.computation));
        self.unregistered = true;
    }

    fn wake(&self) {
        // Release: pairs with the waiters' Acquire, after the insert.
        self.computation.state.store(FINISHED, Ordering::Release);
        gosync_park::wake_all(&self.computation.state);
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
