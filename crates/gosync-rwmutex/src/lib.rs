//! Go's `sync.RWMutex` for Rust: a reader-writer lock with Go's writer preference, upgradable
//! reads, timeouts and cancellation by a `Context`.
//!
//! | Go | here |
//! | --- | --- |
//! | `var mu sync.RWMutex` | `let mu = RwMutex::new(value);` (or `Default`) |
//! | `mu.RLock(); defer mu.RUnlock()` | `let guard = mu.read();` |
//! | `mu.Lock(); defer mu.Unlock()` | `let guard = mu.write();` |
//! | `mu.TryRLock()` / `mu.TryLock()` | [`RwMutex::try_read`] / [`RwMutex::try_write`] |
//! | `mu.RLocker()` with a `sync.Cond` | `Cond::wait(&mut read_guard)` (see [`RwMutexReadGuard::raw`]) |
//! | `mu.Lock()` in a `select` on `ctx.Done()` | [`RwMutex::write_ctx`], [`RwMutex::read_ctx`] |
//! | (none) | timeouts, [`RwMutex::upgradable_read`], [`RwMutexWriteGuard::downgrade`] |
//!
//! Every way to take the lock comes in four kinds: one that waits as long as it takes
//! (`read`), one that never waits (`try_read`), two that give up at a deadline
//! (`try_read_for`, `try_read_until`) and one that gives up when a `Context` is done
//! (`read_ctx`); the same holds for `write`, `upgradable_read` and
//! [`upgrade`](RwMutexUpgradableReadGuard::upgrade). [`RawRwMutex`] has the same kinds for
//! each of its acquires (`lock_shared`, `try_lock_shared`, `try_lock_shared_for`,
//! `try_lock_shared_until`, [`lock_shared_ctx`](RawRwMutex::lock_shared_ctx), and so on).
//!
//! # Writer preference
//!
//! Once a writer is blocked in [`write`](RwMutex::write), new readers wait until that writer
//! has had its turn; readers already inside are not disturbed, and neither is an upgradable
//! reader the writer queues behind. Readers that arrived while a writer held the lock go in
//! before the next writer. So under any mix of load, writers never starve and readers never
//! starve, as long as every lock taken is released. A reader waits for the writers that were
//! blocked when it came, as Go's `RLock` waits for every writer blocked in `Lock`, and not for
//! writers that queue after it: when a writer gives up (a deadline, a cancelled context), the
//! readers it held back go in unless a writer that came before them is still queued. So timed
//! writers that keep retrying do not keep readers out, also behind a long-held upgradable
//! guard. (A writer that queues while a reader is still on its way to sleep may go first: the
//! two calls overlap.) A thread that only tries ([`try_write`](RwMutex::try_write)) holds
//! nobody back: [`try_read`](RwMutex::try_read) fails only while a writer holds the lock or
//! waits for it.
//!
//! # Cost of the read path
//!
//! [`read`](RwMutex::read) is one `fetch_add` on the lock word and a branch; dropping the guard
//! is one `fetch_sub` and a branch: never a compare-and-swap loop that concurrent readers would
//! make each other retry (the design of Go's `readerCount.Add`).
//!
//! Readers on different cores would still take turns owning that word's cache line. So while
//! readers contend, the lock counts them per thread instead: it has one counter per core (at
//! most 64), each on a cache line of its own, and a guard's read is then an increment of its
//! thread's counter and a load of the lock word, with no line that two readers both
//! write. A writer pays for it: after claiming the lock it checks every counter. When the
//! writes come so often that few reads fall between them, a writer sends the readers back to
//! the word until they contend again. See [`RawRwMutex`] for the state machine, and
//! `docs/performance.md` for what each way costs.
//!
//! Memory: an `RwMutex<T>` is four words and the `T` (the lock word, the shards' pointer, and
//! two words that only waiting readers and writers touch). A lock whose readers have contended also
//! owns its counters, one cache-line-padded counter per core plus one for its writers (128 bytes
//! each on x86-64, at most 65 of them), allocated on the first contended read and freed when the
//! lock is dropped. A thread that holds two read guards of one lock at once counts as contention
//! too.
//!
//! # Examples
//!
//! ```
//! use gosync_rwmutex::RwMutex;
//! use std::sync::Arc;
//!
//! let config = Arc::new(RwMutex::new(vec![1, 2, 3]));
//! let readers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let config = Arc::clone(&config);
//!         std::thread::spawn(move || config.read().iter().sum::<i32>())
//!     })
//!     .collect();
//! config.write().push(4);
//! for reader in readers {
//!     let sum = reader.join().unwrap();
//!     assert!(sum == 6 || sum == 10);
//! }
//! ```

#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod ctx;
mod guard;
#[cfg(all(feature = "lock_api", not(gosync_loom)))]
mod lock_api_impl;
mod raw;
mod read_guard;
mod rwmutex;
mod shards;
mod upgradable_guard;
mod write_guard;

pub use raw::RawRwMutex;
pub use read_guard::RwMutexReadGuard;
pub use rwmutex::RwMutex;
pub use upgradable_guard::RwMutexUpgradableReadGuard;
pub use write_guard::RwMutexWriteGuard;

#[cfg(not(gosync_loom))]
mod assertions {
    use super::*;
    use static_assertions::{assert_impl_all, assert_not_impl_any};
    use std::cell::Cell;
    use std::rc::Rc;

    assert_impl_all!(RawRwMutex: Send, Sync);
    assert_impl_all!(RwMutex<i32>: Send, Sync, Default, From<i32>);
    assert_impl_all!(RwMutex<Cell<i32>>: Send);
    assert_not_impl_any!(RwMutex<Cell<i32>>: Sync);
    assert_not_impl_any!(RwMutex<Rc<i32>>: Send, Sync);
    assert_impl_all!(RwMutexReadGuard<'static, i32>: Send, Sync);
    assert_impl_all!(RwMutexWriteGuard<'static, i32>: Send, Sync);
    assert_impl_all!(RwMutexUpgradableReadGuard<'static, i32>: Send, Sync);
    assert_not_impl_any!(RwMutexReadGuard<'static, Cell<i32>>: Send, Sync);
    assert_not_impl_any!(RwMutexWriteGuard<'static, Cell<i32>>: Send, Sync);
    assert_not_impl_any!(RwMutexUpgradableReadGuard<'static, Rc<i32>>: Send, Sync);
}
