//! Go's `sync.Cond` for Rust: a condition variable that threads wait on while holding a lock,
//! until another thread signals that something changed.
//!
//! - [`Cond`]: the condition variable. [`wait`](Cond::wait) releases the lock, sleeps until a
//!   [`signal`](Cond::signal) or [`broadcast`](Cond::broadcast), and takes the lock back.
//! - [`Lockable`]: the guards a `Cond` can wait with (Go's `sync.Locker`): gosync's
//!   [`MutexGuard`](gosync_mutex::MutexGuard), [`RwMutexWriteGuard`](gosync_rwmutex::RwMutexWriteGuard)
//!   and [`RwMutexReadGuard`](gosync_rwmutex::RwMutexReadGuard) (Go's `RWMutex.RLocker()`).
//! - [`WaitTimeoutResult`]: what a timed wait reports.
//!
//! | Go | here |
//! | --- | --- |
//! | `c := sync.NewCond(&mu)`, `var c sync.Cond` | `Cond::new()` (`const`), `Cond::default()`; the lock is passed to each wait |
//! | `c.L.Lock(); for !cond { c.Wait() }` | `let mut g = mu.lock(); while !cond(&g) { c.wait(&mut g) }` |
//! | (the same loop) | [`c.wait_while(&mut g, \|v\| !cond(v))`](Cond::wait_while), with a `MutexGuard` or an `RwMutexWriteGuard` |
//! | `c.Signal()` | [`c.signal()`](Cond::signal): wakes the longest waiter |
//! | `c.Broadcast()` | [`c.broadcast()`](Cond::broadcast): wakes every waiter |
//! | `sync.NewCond(rw.RLocker())` | wait with an [`RwMutexReadGuard`](gosync_rwmutex::RwMutexReadGuard) |
//! | (none) | [`wait_for`](Cond::wait_for), [`wait_until`](Cond::wait_until), [`wait_ctx`](Cond::wait_ctx) |
//! | (none) | [`wait_while_for`](Cond::wait_while_for), [`wait_while_until`](Cond::wait_while_until), [`wait_while_ctx`](Cond::wait_while_ctx): the loop with a timeout, a deadline or a context |
//!
//! As Go's, a `Cond` promises no spurious wake-ups and wakes waiters in FIFO order; the waiting
//! is done in gosync-park's queues, keyed by the `Cond`'s address, so the `Cond` itself is one
//! word.
//!
//! # Examples
//!
//! A one-slot mailbox: the consumer waits until the producer has put a message in.
//!
//! ```
//! use gosync_cond::Cond;
//! use gosync_mutex::Mutex;
//! use std::sync::Arc;
//!
//! let mailbox = Arc::new((Mutex::new(None), Cond::new()));
//! let producer = {
//!     let mailbox = Arc::clone(&mailbox);
//!     std::thread::spawn(move || {
//!         let (slot, cond) = &*mailbox;
//!         *slot.lock() = Some("hello");
//!         cond.signal();
//!     })
//! };
//! let (slot, cond) = &*mailbox;
//! let mut guard = slot.lock();
//! while guard.is_none() {
//!     cond.wait(&mut guard);
//! }
//! assert_eq!(guard.take(), Some("hello"));
//! drop(guard);
//! producer.join().unwrap();
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod cond;
mod lockable;

pub use cond::{Cond, WaitTimeoutResult};
pub use lockable::Lockable;
