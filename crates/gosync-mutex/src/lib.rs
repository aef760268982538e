//! Go's `sync.Mutex` for Rust: a one-byte mutual exclusion lock with Go's fairness.
//!
//! - [`Mutex<T>`]: the lock with its data, reached through a [`MutexGuard`] that unlocks on drop.
//! - [`RawMutex`]: the bare lock word, for condition variables and `lock_api`-generic code.
//!
//! | Go | here |
//! | --- | --- |
//! | `var mu sync.Mutex` (zero value) | `Mutex::new(data)` (`const`), `Mutex::default()` |
//! | `mu.Lock(); defer mu.Unlock()` | `let guard = mu.lock();` (unlocks on drop) |
//! | `mu.TryLock()` | `mu.try_lock()` → `Option<MutexGuard>` |
//! | (none) | `mu.try_lock_for(timeout)`, `mu.try_lock_until(deadline)` |
//! | a lock that gives up with `ctx` | [`mu.lock_ctx(&ctx)`](Mutex::lock_ctx) → `Result<MutexGuard, ContextError>` |
//! | `sync.Locker` | [`RawMutex`] (and `lock_api::RawMutex` with the `lock_api` feature) |
//!
//! The algorithm is Go's: normal mode favours running threads, and a waiter kept out for more
//! than 1 ms switches the lock to starvation mode, where ownership passes straight down the queue
//! (see [`Mutex`]'s "Fairness"). Threads wait in gosync-park's queues, keyed by the lock's
//! address, so `size_of::<Mutex<()>>()` is 1.
//!
//! # Features
//!
//! - `lock_api`: implements [`lock_api::RawMutex`](https://docs.rs/lock_api/0.4/lock_api/trait.RawMutex.html) and [`lock_api::RawMutexTimed`](https://docs.rs/lock_api/0.4/lock_api/trait.RawMutexTimed.html) for
//!   [`RawMutex`], so `lock_api::Mutex<gosync_mutex::RawMutex, T>` works.
//!
//! # Examples
//!
//! ```
//! use gosync_mutex::Mutex;
//! use std::time::Duration;
//!
//! let balance = Mutex::new(100);
//! {
//!     let mut guard = balance.lock();
//!     *guard -= 30;
//! } // unlocked here
//! assert_eq!(*balance.try_lock_for(Duration::from_secs(1)).unwrap(), 70);
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod mutex;
mod raw;

pub use mutex::{Mutex, MutexGuard};
pub use raw::RawMutex;
