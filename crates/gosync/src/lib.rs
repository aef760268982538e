//! Go's synchronization toolkit — `sync`, `sync/atomic` and `golang.org/x/sync` — as
//! first-class Rust.
//!
//! This crate only re-exports: each primitive is its own crate (`gosync-mutex`,
//! `gosync-waitgroup`, …), all built on one wait/wake layer (`gosync-park`). Depend on `gosync`
//! for everything, or on a single primitive's crate.
//!
//! | Go | gosync | crate |
//! | --- | --- | --- |
//! | `sync.Mutex` | [`Mutex`], [`MutexGuard`], [`RawMutex`] | `gosync-mutex` |
//! | `sync.RWMutex` | [`RwMutex`] and its guards, [`RawRwMutex`] | `gosync-rwmutex` |
//! | `sync.Cond` | [`Cond`], [`Lockable`], [`WaitTimeoutResult`] | `gosync-cond` |
//! | `sync.Once`, `OnceFunc`, `OnceValue` | [`Once`], [`OnceCell`], [`once_func`], [`once_value`] | `gosync-once` |
//! | `sync.WaitGroup` | [`WaitGroup`] | `gosync-waitgroup` |
//! | `x/sync/semaphore.Weighted` | [`Semaphore`], [`Permit`] | `gosync-semaphore` |
//! | (a cyclic barrier) | [`Barrier`], [`BarrierWaitResult`], [`BarrierError`] | `gosync-barrier` |
//! | `sync.Pool` | [`Pool`], [`Pooled`], [`MAX_IDLE`] | `gosync-pool` |
//! | `sync/atomic`: `atomic.Value`, `atomic.Pointer[T]`; a striped counter | [`atomic::Value`], [`atomic::ValueGuard`], [`atomic::ValueReader`], [`atomic::Counter`] | `gosync-atomic` |
//! | `sync.Map` | [`Map`] | `gosync-map` |
//! | `context` | [`context::Context`], [`context::Canceler`], [`context::ContextError`] | `gosync-context` |
//! | `x/sync/errgroup` | [`errgroup::Group`], [`errgroup::ScopedGroup`], [`errgroup::scope`] | `gosync-errgroup` |
//! | `x/sync/singleflight` | [`singleflight::Group`] | `gosync-singleflight` |
//!
//! Conventions, as everywhere in gosync: guards unlock on drop (also during a panic) and there is
//! no poisoning; misuse Go catches panics with Go's message. Every operation `op` that can wait
//! for another thread has `try_op` (never blocks; where that means nothing on its own, a zero
//! timeout plays it), `try_op_for`/`try_op_until` (a timeout or a deadline) and
//! `op_ctx(&Context)` (gives up when the context is done), whether or not Go takes a `ctx`
//! there. A zero timeout or a past deadline still succeeds when the thing is free at once; a
//! context already done fails at once, even then. The exceptions: [`Once::call_once`] (Go's
//! `Do` has no variants) and the functions from [`once_func`] and [`once_value`] (a call
//! waits behind a first call still running, as Go's), and retaking a lock the caller already
//! owns (a guard's `unlocked`, the end of a [`Cond`] wait), which must return holding it.
//!
//! # Examples
//!
//! ```
//! use gosync::{Mutex, WaitGroup};
//! use std::sync::Arc;
//!
//! let counter = Arc::new(Mutex::new(0));
//! let wg = Arc::new(WaitGroup::new());
//! for _ in 0..4 {
//!     let counter = Arc::clone(&counter);
//!     wg.go(move || *counter.lock() += 1);
//! }
//! wg.wait();
//! assert_eq!(*counter.lock(), 4);
//! ```

pub use gosync_barrier::{Barrier, BarrierError, BarrierWaitResult};
pub use gosync_cond::{Cond, Lockable, WaitTimeoutResult};
pub use gosync_map::Map;
pub use gosync_mutex::{Mutex, MutexGuard, RawMutex};
pub use gosync_once::{once_func, once_value, Once, OnceCell};
pub use gosync_pool::{Pool, Pooled, MAX_IDLE};
pub use gosync_rwmutex::{
    RawRwMutex, RwMutex, RwMutexReadGuard, RwMutexUpgradableReadGuard, RwMutexWriteGuard,
};
pub use gosync_semaphore::{Permit, Semaphore};
pub use gosync_waitgroup::{DoneGuard, GoPanics, WaitGroup};

/// Go's `sync/atomic` for shared values: a swappable `Arc` whose loads touch no shared counter
/// (`atomic.Value`, `atomic.Pointer[T]`), and a striped counter. Plain integers and flags are
/// `std::sync::atomic`'s; the `gosync-atomic` docs map each Go function to them.
pub mod atomic {
    pub use gosync_atomic::{Counter, Value, ValueGuard, ValueReader};
}

/// Go's `context`: cancellation and deadlines that every `_ctx` wait in gosync listens to.
pub mod context {
    pub use gosync_context::{Canceler, Context, ContextError};
}

/// Go's `x/sync/errgroup`: tasks on threads, the first error, a context cancelled on failure.
pub mod errgroup {
    pub use gosync_errgroup::{scope, Group, ScopedGroup};
}

/// Go's `x/sync/singleflight`: concurrent calls for one key run once and share the value.
pub mod singleflight {
    pub use gosync_singleflight::Group;
}
