//! Go's `sync.Pool`: a set of reusable objects that threads take and give back, so that hot
//! paths stop allocating.
//!
//! | Go | here |
//! | --- | --- |
//! | `sync.Pool{New: f}` | [`Pool::new(f)`](Pool::new) |
//! | `Reset()` before every `Put` | [`Pool::with_reset(f, reset)`](Pool::with_reset): runs by itself |
//! | `p.Get().(*T)` | [`pool.get()`](Pool::get) (a guard that puts back on drop) or [`pool.take()`](Pool::take) |
//! | `p.Put(x)` | dropping the [`Pooled`] guard, or [`pool.put(x)`](Pool::put) |
//! | objects idle across two GCs are dropped | [`pool.trim()`](Pool::trim) runs one cycle; [`pool.clear()`](Pool::clear) drops all |
//! | (no Go analog) | a cap on idle objects: [`Pool::with_max_idle`], [`Pool::max_idle`] |
//!
//! Per-thread slots, a lock-free shared queue and a victim generation, as Go's per-P caches,
//! shared chains and victim cache: see [`Pool`] for how it is built and how idle memory is
//! bounded.
//!
//! # Examples
//!
//! A buffer per request, reused across threads, cleared on its way back:
//!
//! ```
//! use gosync_pool::Pool;
//! use std::io::Write;
//! use std::sync::Arc;
//!
//! let buffers = Arc::new(Pool::with_reset(|| Vec::<u8>::with_capacity(4096), Vec::clear));
//! let workers: Vec<_> = (0..4)
//!     .map(|id| {
//!         let buffers = Arc::clone(&buffers);
//!         std::thread::spawn(move || {
//!             let mut buf = buffers.get();
//!             write!(buf, "request {id}").unwrap();
//!             buf.len()
//!         })
//!     })
//!     .collect();
//! for worker in workers {
//!     assert_eq!(worker.join().unwrap(), 9);
//! }
//! assert!(buffers.get().is_empty());
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod pool;
mod pooled;
mod queue;
mod slot;

pub use pool::{Pool, MAX_IDLE};
pub use pooled::Pooled;

static_assertions::assert_impl_all!(Pool<Vec<u8>>: Send, Sync);
static_assertions::assert_impl_all!(Pooled<'static, Vec<u8>>: Send, Sync);
static_assertions::assert_not_impl_any!(Pool<std::rc::Rc<u8>>: Send, Sync);
static_assertions::assert_not_impl_any!(Pooled<'static, std::cell::Cell<u8>>: Sync);
