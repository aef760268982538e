//! Go's `sync.WaitGroup`: wait for a collection of tasks to finish.
//!
//! | Go | here |
//! | --- | --- |
//! | `var wg sync.WaitGroup` | [`WaitGroup::new`], `WaitGroup::default()` |
//! | `wg.Add(n)` | [`wg.add(n)`](WaitGroup::add) |
//! | `wg.Done()` | [`wg.done()`](WaitGroup::done) |
//! | `defer wg.Done()` | [`let _done = wg.done_guard();`](WaitGroup::done_guard) (also runs during a panic) |
//! | `wg.Wait()` | [`wg.wait()`](WaitGroup::wait) |
//! | `wg.Go(f)` | [`wg.go(f)`](WaitGroup::go) on an `Arc<WaitGroup>` |
//! | (no Go analog) | [`wait_for`](WaitGroup::wait_for), [`wait_until`](WaitGroup::wait_until), [`wait_ctx`](WaitGroup::wait_ctx), [`count`](WaitGroup::count) |
//!
//! A task started by [`go`](WaitGroup::go) that panics is not lost: the next wait re-raises its
//! panic, or a [`GoPanics`] (the first payload and the count) when several panicked.
//!
//! # Examples
//!
//! ```
//! use gosync_waitgroup::WaitGroup;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//!
//! let wg = Arc::new(WaitGroup::new());
//! let hits = Arc::new(AtomicUsize::new(0));
//! for _ in 0..4 {
//!     let hits = Arc::clone(&hits);
//!     wg.go(move || { hits.fetch_add(1, Ordering::Relaxed); });
//! }
//! wg.wait();
//! assert_eq!(hits.load(Ordering::Relaxed), 4);
//! ```

mod tasks;
mod waitgroup;

pub use tasks::{DoneGuard, GoPanics};
pub use waitgroup::WaitGroup;
