//! Helpers shared by the park layer's test binaries (the std tests and the loom models, so every
//! type comes from the `gosync_park::sync` facade).

use std::time::Instant;

use gosync_park::sync::{AtomicBool, BookkeepingLock, Ordering};
use gosync_park::{Cancellation, Waker};

/// A cancellation source for tests: a flag plus the wakers registered with it.
#[derive(Default)]
pub(crate) struct Flag {
    cancelled: AtomicBool,
    pub(crate) wakers: BookkeepingLock<Vec<Waker>>,
}

impl Flag {
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        for waker in self.wakers.lock().drain(..) {
            waker.wake();
        }
    }
}

impl Cancellation for Flag {
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn register(&self, waker: Waker) -> bool {
        let mut wakers = self.wakers.lock();
        if self.is_cancelled() {
            return false;
        }
        wakers.push(waker);
        true
    }
    fn unregister(&self, id: usize) {
        self.wakers.lock().retain(|w| w.id() != id);
    }
}
