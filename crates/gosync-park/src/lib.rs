//! The wait/wake layer under every gosync primitive, and the only crate in gosync that puts a
//! thread to sleep.
//!
//! Go's runtime has one mechanism under all of `sync`: a table of wait queues keyed by address
//! (`runtime/sema.go`), with FIFO order, direct hand-off and timeouts. This crate is that
//! mechanism for OS threads:
//!
//! - **Word waits** ([`wait`], [`wake_one`], [`wake_all`]): sleep while an `AtomicU32` holds a
//!   value, on a futex (`atomic-wait`). The cheapest untimed wait.
//! - **Queues keyed by address** ([`park`], [`park_with_token`], [`unpark_one`],
//!   [`unpark_all`], [`unpark_filter`], [`unpark_requeue`]): FIFO queues with a validate step
//!   under the queue lock (no lost wake-ups), park tokens (what a waiter tells its waker, made
//!   under that lock if need be), hand-off tokens (the releaser decides, under the lock, what
//!   the woken thread gets), deadlines, [`Cancellation`] (a `Context`), queueing at the head,
//!   and requeueing.
//! - **The protocol around a park** ([`park_while`], [`park_while_with_token`],
//!   [`ParkedBits`], [`unlocked`], [`RelockOnDrop`], [`cancelled_error`], [`ContextError`],
//!   the hand-off tokens [`TOKEN_NORMAL`] and [`TOKEN_HANDOFF`], [`mark_if_parked`]) and **time**
//!   ([`deadline_after`], [`deadline_passed`], [`earliest_deadline`], [`WaitClock`],
//!   [`STARVATION_THRESHOLD`]): what every primitive does around a wait, written once.
//! - **Spinning** ([`SpinWait`] and the adaptive spin inside every wait): see [`spin`].
//! - **Loom** ([`model`]): everything that differs under `--cfg gosync_loom`, in one place,
//!   and [`const_unless_loom!`] for `const` constructors.
//! - **Stripes** ([`thread_ticket`]): the per-thread number striped structures index with.
//! - **Panics that cannot be raised** ([`discard_panic`], [`drop_discarding_panic`]): what a
//!   primitive drops on a path that already raises a panic.
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
pub mod model;
mod protocol;
mod queue;
pub mod spin;
mod ticket;
mod time;
mod unwind;
mod word;

pub use facade::{cell, hint, sync, thread};
pub use protocol::{
    cancelled_error, mark_if_parked, park_while, park_while_with_token, unlocked, ContextError,
    ParkedBits, RelockOnDrop, TOKEN_HANDOFF, TOKEN_NORMAL,
};
pub use queue::{
    park, park_with_token, unpark_all, unpark_filter, unpark_one, unpark_requeue, Cancellation,
    FilterOp, ParkOptions, ParkResult, RequeueOp, UnparkResult, Waker,
};
pub use spin::SpinWait;
pub use ticket::{thread_identity, thread_ticket};
pub use time::{
    deadline_after, deadline_passed, earliest_deadline, WaitClock, STARVATION_THRESHOLD,
};
pub use unwind::{discard_panic, drop_discarding_panic};
pub use word::{wait, wake_all, wake_one};
