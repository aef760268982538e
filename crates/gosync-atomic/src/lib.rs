//! Go's `sync/atomic` for shared values: [`Value`] (Go's `atomic.Value` and `atomic.Pointer[T]`)
//! and a striped [`Counter`].
//!
//! Plain integers, flags and raw pointers need no crate: `std::sync::atomic` has them all. This
//! crate adds what std lacks, a shared value that readers load without a lock and without
//! touching a shared reference count, and a counter many threads can bump without fighting over
//! one cache line.
//!
//! # From Go's `sync/atomic`
//!
//! Every Go atomic is sequentially consistent. `Ordering::SeqCst` gives exactly Go's semantics;
//! weaker orderings are Rust's addition, for code that can argue them.
//!
//! | Go | Rust |
//! | --- | --- |
//! | `atomic.Int32`, `atomic.Int64`, `atomic.Uint32`, `atomic.Uint64`, `atomic.Uintptr` | `std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize}` |
//! | `atomic.Bool` | `std::sync::atomic::AtomicBool` |
//! | `x.Load()`, `LoadInt64(&x)` | `x.load(Ordering::SeqCst)` |
//! | `x.Store(v)`, `StoreInt64(&x, v)` | `x.store(v, Ordering::SeqCst)` |
//! | `x.Swap(v)`, `SwapInt64(&x, v)` | `x.swap(v, Ordering::SeqCst)` (the old value) |
//! | `x.Add(d)`, `AddInt64(&x, d)` | `x.fetch_add(d, Ordering::SeqCst) + d` (Go returns the new value, Rust the old; both wrap on overflow) |
//! | `x.CompareAndSwap(old, new)`, `CompareAndSwapInt64(&x, old, new)` | `x.compare_exchange(old, new, Ordering::SeqCst, Ordering::SeqCst).is_ok()` |
//! | `x.And(m)`, `x.Or(m)`, `AndInt32`, `OrUint64`, … | `x.fetch_and(m, Ordering::SeqCst)`, `x.fetch_or(m, Ordering::SeqCst)` (both return the old value, as Go's) |
//! | `atomic.Pointer[T]`, `LoadPointer`, `StorePointer`, `SwapPointer` | [`Value<T>`]: [`load`](Value::load), [`store`](Value::store), [`swap`](Value::swap); or `std::sync::atomic::AtomicPtr<T>` with your own reclamation |
//! | `CompareAndSwapPointer`, `Pointer[T].CompareAndSwap` | [`Value::compare_and_swap`] (compares by pointer, as Go's) |
//! | `atomic.Value` | [`Value<T>`]: one type per `Value`, checked by the compiler |
//! | a hot `atomic.Int64` many goroutines `Add` to | [`Counter`] |
//! | a load, change, `CompareAndSwap` retry loop | [`Value::update`] |
//! | (no Go analog) a per-thread cached reader | [`Value::reader`], [`ValueReader`] |
//!
//! Go's garbage collector frees an old value once nothing points to it. Here [`Value`] holds an
//! `Arc<T>` and frees an old value once no [`ValueGuard`], no [`ValueReader`] and no `Arc`
//! refers to it, through epoch-based reclamation (`crossbeam-epoch`): the `Value`'s next `load`
//! or store drops it, and its drop drops the rest.
//!
//! # Examples
//!
//! ```
//! use gosync_atomic::{Counter, Value};
//!
//! #[derive(Debug, PartialEq)]
//! struct Config { workers: usize }
//!
//! let config = Value::new(Config { workers: 4 });
//! let requests = Counter::new();
//! std::thread::scope(|s| {
//!     for _ in 0..2 {
//!         s.spawn(|| {
//!             let workers = config.load().workers;
//!             assert!(workers == 4 || workers == 8);
//!             requests.inc();
//!         });
//!     }
//!     config.store(Config { workers: 8 });
//! });
//! assert_eq!(config.load().workers, 8);
//! assert_eq!(requests.value(), 2);
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod counter;
mod value;

pub use counter::Counter;
pub use value::{Value, ValueGuard, ValueReader};
