//! The wait/wake layer under every gosync primitive, and the only crate in gosync that puts a
//! thread to sleep.
//!
//! Go's runtime has one mechanism under all of `sync`: a table of wait queues keyed by address
//! (`runtime/sema.go`), with FIFO order, direct hand-off and timeouts. This crate is that
//! mechanism for OS threads:
//!
//! - **Word waits** ([`wait`], [`wake_one`], [`wake_all`]): sleep while an `AtomicU32` holds a
//!   value, on a futex (`atomic-wait`). The cheapest untimed wait.
//! - **Queues keyed by address** ([`park`], [`unpark_one`], [`unpark_all`], [`unpark_filter`],
//!   [`unpark_requeue`]): FIFO queues with a validate step under the queue lock (no lost
//!   wake-ups), hand-off tokens (the releaser decides, under the lock, what the woken thread
//!   gets), deadlines, [`Cancellation`] (a `Context`), queueing at the head, and requeueing.
//! - **Spinning** ([`SpinWait`] and the adaptive spin inside every wait): see [`spin`].
//! - **Stripes** ([`thread_ticket`]): the per-thread number striped structures index with.
//! - **The loom/std facade** ([`sync`], [`thread`], [`hint`], [`cell`]): every gosync crate takes
//!   its atomics, cells and threads from here, so `--cfg gosync_loom` model-checks them all, all
//!   the way down to these queues.
//!
//! `docs/park.md` in the repository explains the choices for people building primitives on it.
//!
//! # Examples
//!
//! A one-shot event built on a queue: the check and the sleep are atomic against the setter.
//!
//! ```
//! use gosync_park::{park, unpark_all, ParkOptions};
//! use std::sync::atomic::{AtomicBool, Ordering};
//! use std::time::{Duration, Instant};
//!
//! let set = AtomicBool::new(false);
//! let key = &set as *const AtomicBool as usize;
//! let options = ParkOptions {
//!     deadline: Some(Instant::now() + Duration::from_millis(1)),
//!     ..ParkOptions::default()
//! };
//! let result = park(key, options, || !set.load(Ordering::Acquire), || {}, |_, _| {});
//! assert_eq!(result, gosync_park::ParkResult::TimedOut);
//!
//! set.store(true, Ordering::Release);
//! unpark_all(key, 0);
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod facade;
mod queue;
pub mod spin;
mod ticket;
mod word;

use std::time::{Duration, Instant};

pub use facade::{cell, hint, sync, thread};
pub use queue::{
    park, unpark_all, unpark_filter, unpark_one, unpark_requeue, Cancellation, FilterOp,
    ParkOptions, ParkResult, RequeueOp, UnparkResult, Waker,
};
pub use spin::SpinWait;
pub use ticket::thread_ticket;
pub use word::{wait, wake_all, wake_one};

/// The deadline `timeout` from now, or `None` when that is too far to represent (wait forever).
///
/// Every `try_*_for(timeout)` in gosync turns its timeout into a deadline with this.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert!(gosync_park::deadline_after(Duration::from_secs(1)).is_some());
/// assert!(gosync_park::deadline_after(Duration::MAX).is_none());
/// ```
#[inline]
pub fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Whether `deadline` has passed.
///
/// Under loom, where time does not exist, every deadline counts as passed at the first look:
/// a timed wait then models "the timeout fires at any point of the race". Every primitive asks
/// this rather than the clock, so the rule is the same everywhere.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// assert!(gosync_park::deadline_passed(Instant::now()));
/// assert!(!gosync_park::deadline_passed(Instant::now() + Duration::from_secs(60)));
/// ```
#[inline]
pub fn deadline_passed(deadline: Instant) -> bool {
    #[cfg(gosync_loom)]
    return {
        let _ = deadline;
        true
    };
    #[cfg(not(gosync_loom))]
    return Instant::now() >= deadline;
}

/// The earlier of two optional deadlines, `None` meaning "never".
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// let now = Instant::now();
/// let later = now + Duration::from_secs(1);
/// assert_eq!(gosync_park::earliest_deadline(Some(later), Some(now)), Some(now));
/// assert_eq!(gosync_park::earliest_deadline(None, Some(later)), Some(later));
/// assert_eq!(gosync_park::earliest_deadline(None, None), None);
/// ```
#[inline]
pub fn earliest_deadline(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
