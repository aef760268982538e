//! Epoch reclamation and the striped length count.
//!
//! Each map has its own crossbeam-epoch collector rather than the process-wide one. So the
//! entries a map retires are dropped only by threads that use that map (a `Map` is `Sync` only
//! when its keys and values are `Send`), and all of them are dropped by the time the map's own
//! drop returns: a key or value that borrows data never outlives the map.
//!
//! # Notes about memory ordering
//!
//! The length stripes are statistics: `Relaxed` throughout. `len` is exact once writers stop.

use crossbeam_epoch::{Collector, Guard};
use crossbeam_utils::CachePadded;
use gosync_park::sync::{AtomicIsize, Ordering};

/// A map's epoch collector and each thread's registration with it.
pub(crate) struct Reclaim {
    // Field order is drop order: the handles first, so that the collector's shared state is
    // freed by the collector's own drop, never from inside a handle's finalisation (which would
    // free the very `Local` it runs on).
    #[cfg(not(gosync_loom))]
    participants: thread_local::ThreadLocal<Participant>,
    /// Loom runs its threads on one OS thread, where `ThreadLocal` cannot tell them apart: a
    /// list keyed by loom's thread ids instead.
    #[cfg(gosync_loom)]
    participants: gosync_park::sync::BookkeepingLock<Vec<(loom::thread::ThreadId, Participant)>>,
    collector: Collector,
}

/// One thread's registration with a map's collector.
struct Participant(crossbeam_epoch::LocalHandle);

// SAFETY: a `LocalHandle` is `!Send` because two threads must not use it at once. `ThreadLocal`
// gives each handle to one thread only (a later thread reuses the id only after that thread has
// exited, with all its guards gone; under loom the list is keyed by thread id), and drops them
// all in the map's drop, when no thread uses the map.
unsafe impl Send for Participant {}

impl Reclaim {
    pub(crate) fn new() -> Self {
        Self {
            collector: Collector::new(),
            #[cfg(not(gosync_loom))]
            participants: thread_local::ThreadLocal::new(),
            #[cfg(gosync_loom)]
            participants: gosync_park::sync::BookkeepingLock::new(Vec::new()),
        }
    }

    /// Pins the current thread: nothing retired from now on is freed until the guard drops.
    #[inline]
    pub(crate) fn pin(&self) -> Guard {
        #[cfg(not(gosync_loom))]
        return self
            .participants
            .get_or(|| Participant(self.collector.register()))
            .0
            .pin();
        #[cfg(gosync_loom)]
        return {
            let me = loom::thread::current().id();
            let mut participants = self.participants.lock();
            match participants.iter().find(|(id, _)| *id == me) {
                Some((_, p)) => p.0.pin(),
                None => {
                    let p = Participant(self.collector.register());
                    let guard = p.0.pin();
                    participants.push((me, p));
                    guard
                }
            }
        };
    }
}

/// Stripes of the length count, each on its own cache line.
const STRIPES: usize = 8;

/// The number of entries, as a sum of per-thread-group deltas, so writers on different threads
/// do not contend on one counter.
pub(crate) struct Len {
    stripes: [CachePadded<AtomicIsize>; STRIPES],
}

impl Len {
    pub(crate) fn new() -> Self {
        Self {
            stripes: std::array::from_fn(|_| CachePadded::new(AtomicIsize::new(0))),
        }
    }

    #[inline]
    pub(crate) fn add(&self, delta: isize) {
        self.stripes[stripe()].fetch_add(delta, Ordering::Relaxed);
    }

    /// The sum, which concurrent writers can make momentarily negative: read as 0.
    pub(crate) fn get(&self) -> usize {
        let sum: isize = self.stripes.iter().map(|s| s.load(Ordering::Relaxed)).sum();
        sum.max(0) as usize
    }
}

/// This thread's stripe, handed out round-robin when the thread first asks.
#[inline]
fn stripe() -> usize {
    // A std atomic, not the loom facade's: it only spreads threads over stripes, and loom
    // forbids its atomics in statics.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    std::thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
    }
    STRIPE.try_with(|s| *s).unwrap_or(0)
}
