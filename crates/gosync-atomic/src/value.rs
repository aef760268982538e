//! [`Value`]: a shared, swappable `Arc<T>` whose loads write no shared cache line.
//!
//! The `Value` owns one strong count of the current `Arc`, kept as the raw pointer from
//! `Arc::into_raw` in `current`. A [`ValueGuard`] is a crossbeam-epoch pin plus that pointer: it
//! counts nothing, and pinning writes only the pinning thread's own epoch slot. A store swaps the
//! pointer and hands the `Value`'s count of the old `Arc` to the retire list; a function deferred
//! through the epoch moves it to the list's ready side once every thread pinned at the time of
//! the store has unpinned, and the `Value`'s next `load` or store drops it. Never the deferred
//! function itself: it runs on whichever thread collects epoch garbage, at any time, also while
//! the `Value` is being dropped, and a drop there is one the `Value`'s drop would have to wait
//! for (for a `T` that borrows, the borrow may end once the `Value` is gone), which deadlocks
//! when that drop needs a lock the dropping thread holds. Dropping the `Value` drops what is
//! still on its list, since no guard can outlive the borrow it came from: so every stored value
//! is dropped at the latest with the `Value`, even while deferred functions are still queued
//! (they then find nothing to move).

// Notes about memory ordering: every access to `current` is SeqCst, as Go's atomics are; the
// fast paths are a plain load on x86 and the stores are read-modify-writes anyway. The swap or
// compare-exchange that publishes a new `Arc` releases the writes that built it, and every load
// of `current` acquires them. Freeing is ordered by crossbeam-epoch: a reader pins (a SeqCst
// fence) before it loads `current`, and a deferred function runs only after every thread pinned
// when it was deferred has unpinned (Release) and the collector has seen that (Acquire), so
// each reader's last access to an old value happens before its drop. The retire list's lock
// orders retiring, reclaiming, the drops of ready values and the `Value`'s own drop; `has_ready`
// is only a hint for whether to take that lock. A [`ValueReader`] compares `current`
// with the address of the `Arc` it caches: it holds that `Arc`, so the address cannot be reused
// while cached, and equal addresses mean the current value is the cached one (no ABA).

use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::ops::Deref;

use crossbeam_epoch::{self as epoch, Guard};
use gosync_park::sync::{
    Arc, AtomicBool, AtomicPtr, BookkeepingLock,
    Ordering::{Relaxed, SeqCst},
};

/// A store that leaves a multiple of this many old values waiting seals this thread's deferred
/// functions and tries to advance the epoch (`Guard::flush`). Otherwise crossbeam-epoch seals
/// them only once 64 have piled up on the thread (or it exits); flushing on every store frees
/// old values soonest but made a store four times as slow. So at most seven old values of a
/// `Value` wait for such later epoch activity, and all of them go when the `Value` drops.
const FLUSH_EVERY: usize = 8;

/// Old values whose last readers may still be pinned, shared between the `Value` and its
/// deferred functions.
struct RetireList<T> {
    state: BookkeepingLock<Retired<T>>,
    /// Set (under the lock) when `ready` gains values, cleared when they are taken: whether a
    /// `load` needs the lock at all.
    has_ready: AtomicBool,
}

/// Each `Arc` is the count the `Value` owned while the value was current.
struct Retired<T> {
    /// Old values whose last readers may still be pinned.
    waiting: Vec<Arc<T>>,
    /// Old values no reader can reach any more, for the `Value`'s next `load` or store to drop.
    ready: Vec<Arc<T>>,
}

/// A shared value that threads load and replace atomically: Go's `atomic.Value` and
/// `atomic.Pointer[T]`, holding an `Arc<T>`.
///
/// [`load`](Self::load) returns a [`ValueGuard`] that derefs to the current value: it pins the
/// thread's epoch (crossbeam-epoch) and reads one pointer, writing only the calling thread's own
/// epoch slot, so readers on many cores never fight over a reference count.
/// [`load_arc`](Self::load_arc) takes an owned `Arc` when the value must outlive the guard, and
/// [`reader`](Self::reader) gives a hot loop a handle whose loads cost one atomic load and a
/// compare while nothing is stored. Writers [`store`](Self::store), [`swap`](Self::swap),
/// [`compare_and_swap`](Self::compare_and_swap) (by pointer) or [`update`](Self::update)
/// (read-copy-update).
///
/// An old value is dropped exactly once, after its last guard, reader and `Arc` are gone: by
/// the first `load` or store of this `Value` after crossbeam-epoch has seen no reader can reach
/// it (which it checks now and then as threads pin), and at the latest when the `Value` is
/// dropped. (Up to seven old values of a `Value` may wait for the storing thread's next stores
/// before the epoch is checked for them.) Only calls on this `Value` drop its old values, never
/// another thread's epoch collection, so the `Value`'s own drop never waits for another
/// thread.
///
/// If `T`'s drop panics, the panic surfaces in the call that dropped that old value, as an
/// `Arc<T>`'s does on whichever thread drops the last count: a later `load` or store of this
/// `Value`, or its drop. Every other value of the `Value` is still dropped exactly once, at the
/// latest when the `Value` drops.
///
/// # Differences from Go
///
/// - One type per `Value`, checked at compile time: Go's `atomic.Value` panics on a `Store` of
///   another type or of `nil` at run time. There is no "nothing stored yet" state; use
///   `Value<Option<T>>` for Go's nil.
/// - `load` returns a guard, not a copy: hold it briefly (while it lives, the thread stays
///   pinned and no epoch garbage anywhere in the process can be freed). Use `load_arc` to keep
///   a value.
///
/// # Bounds
///
/// Every method needs `T: Send + Sync`, as sharing an `Arc<T>` between threads does, and for
/// two reasons of its own: readers on any thread borrow the value through their guards
/// (`Sync`), and an old value is dropped by whichever thread next loads or stores after its
/// last reader, or by the thread that drops the `Value`, which need not be the thread that
/// stored it (`Send`). Go has no such bound: its garbage collector frees old values, and
/// sharing is never checked.
///
/// # Differences from other crates
///
/// `arc_swap::ArcSwap` plays the same role. Its `load` takes a slot in a per-thread debt list and
/// gives it back when the guard drops (two atomic read-modify-writes); this `load` pins an epoch
/// (one), and a [`ValueReader`] needs none while nothing is stored. A store here defers the old
/// value's drop instead of waiting for readers to pay their debts.
///
/// # Examples
///
/// ```
/// use gosync_atomic::Value;
/// use std::sync::Arc;
///
/// let routes = Value::new(vec!["/a"]);
/// let before: Arc<Vec<&str>> = routes.load_arc();
/// routes.update(|old| {
///     let mut new = old.clone();
///     new.push("/b");
///     new
/// });
/// assert_eq!(*routes.load(), ["/a", "/b"]);
/// assert_eq!(*before, ["/a"]); // an old value lives on while an `Arc` holds it
/// ```
pub struct Value<T> {
    /// `Arc::into_raw` of the current value; the `Value` owns one strong count of it. Never null.
    current: AtomicPtr<T>,
    /// Old values waiting for their grace period (see the module docs).
    retired: Arc<RetireList<T>>,
    /// The `Value` owns `Arc<T>`s: it is `Send`/`Sync` exactly when `Arc<T>` is.
    _owns: PhantomData<Arc<T>>,
}

impl<T: Send + Sync> Value<T> {
    /// Creates a `Value` holding `value`.
    ///
    /// # Examples
    ///
    /// ```
    /// let greeting = gosync_atomic::Value::new(String::from("hello"));
    /// assert_eq!(*greeting.load(), "hello");
    /// ```
    #[must_use]
    pub fn new(value: T) -> Self {
        Self {
            current: AtomicPtr::new(Arc::into_raw(Arc::new(value)).cast_mut()),
            retired: Arc::new(RetireList {
                state: BookkeepingLock::new(Retired {
                    waiting: Vec::new(),
                    ready: Vec::new(),
                }),
                has_ready: AtomicBool::new(false),
            }),
            _owns: PhantomData,
        }
    }

    /// The current value, behind a guard: Go's `Load`.
    ///
    /// The guard keeps the value alive without counting it: it pins the calling thread's epoch
    /// (crossbeam-epoch), which writes only that thread's own slot. A store that replaces the
    /// value meanwhile does not disturb the guard; the old value is dropped after it.
    ///
    /// Keep guards short-lived: while one is held, the thread stays pinned and epoch garbage
    /// (this crate's and any other crossbeam-epoch user's) waits. Take [`load_arc`](Self::load_arc)
    /// to keep the value, or a [`reader`](Self::reader) for a hot loop.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = gosync_atomic::Value::new(1);
    /// let guard = value.load();
    /// value.store(2);
    /// assert_eq!(*guard, 1); // still the value it loaded
    /// assert_eq!(*value.load(), 2);
    /// ```
    #[inline]
    pub fn load(&self) -> ValueGuard<'_, T> {
        self.drop_ready();
        let pin = epoch::pin();
        ValueGuard {
            ptr: self.current.load(SeqCst),
            _pin: pin,
            _value: PhantomData,
        }
    }

    /// The current value as an owned `Arc`: a pin, a load and a reference-count increment.
    ///
    /// The increment writes the value's shared count, which is what [`load`](Self::load) avoids:
    /// use this to keep the value beyond a short scope or to send it to another thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = gosync_atomic::Value::new(1);
    /// let kept = value.load_arc();
    /// value.store(2);
    /// assert_eq!((*kept, *value.load()), (1, 2));
    /// ```
    #[must_use]
    pub fn load_arc(&self) -> Arc<T> {
        ValueGuard::to_arc(&self.load())
    }

    /// A per-thread handle for hot loops: it keeps the last value it loaded and, on each
    /// [`load`](ValueReader::load), only checks whether the `Value` still holds it.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = gosync_atomic::Value::new(1);
    /// let mut reader = value.reader();
    /// assert_eq!(**reader.load(), 1);
    /// value.store(2);
    /// assert_eq!(**reader.load(), 2);
    /// ```
    #[must_use]
    pub fn reader(&self) -> ValueReader<'_, T> {
        ValueReader {
            value: self,
            cached: self.load_arc(),
        }
    }

    /// Replaces the value: Go's `Store`. The old value is dropped once nothing refers to it.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = gosync_atomic::Value::new("old");
    /// value.store("new");
    /// assert_eq!(*value.load(), "new");
    /// ```
    pub fn store(&self, value: T) {
        let pin = epoch::pin();
        let old = self
            .current
            .swap(Arc::into_raw(Arc::new(value)).cast_mut(), SeqCst);
        self.retire(old, &pin);
    }

    /// Replaces the value and returns the old one: Go's `Swap`.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = gosync_atomic::Value::new(1);
    /// assert_eq!(*value.swap(2), 1);
    /// assert_eq!(*value.load(), 2);
    /// ```
    pub fn swap(&self, value: T) -> Arc<T> {
        let pin = epoch::pin();
        let old = self
            .current
            .swap(Arc::into_raw(Arc::new(value)).cast_mut(), SeqCst);
        // SAFETY: `old` was the current value under this pin and is retired only below.
        let previous = unsafe { counted(old) };
        self.retire(old, &pin);
        previous
    }

    /// Replaces the value with `new` if the current value is `current` (the same allocation,
    /// as Go compares pointers): Go's `CompareAndSwap`, returning `Ok(previous)` (which is
    /// `current`) or `Err(actual)`, the value found instead. On failure `new` is dropped.
    ///
    /// # Errors
    ///
    /// `Err(actual)` when the `Value` did not hold `current`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_atomic::Value;
    /// use std::sync::Arc;
    ///
    /// let value = Value::new(1);
    /// let seen = value.load_arc();
    /// assert!(value.compare_and_swap(&seen, Arc::new(2)).is_ok());
    /// // `seen` is no longer current: an equal value in another allocation does not match.
    /// let actual = value.compare_and_swap(&Arc::new(2), Arc::new(3)).unwrap_err();
    /// assert_eq!(*actual, 2);
    /// ```
    pub fn compare_and_swap(&self, current: &Arc<T>, new: Arc<T>) -> Result<Arc<T>, Arc<T>> {
        let pin = epoch::pin();
        let new = Arc::into_raw(new).cast_mut();
        match self
            .current
            .compare_exchange(Arc::as_ptr(current).cast_mut(), new, SeqCst, SeqCst)
        {
            Ok(old) => {
                self.retire(old, &pin);
                Ok(Arc::clone(current))
            }
            Err(actual) => {
                // SAFETY: `new` came from `Arc::into_raw` above and was never published.
                drop(unsafe { Arc::from_raw(new) });
                // SAFETY: `actual` was the current value under this pin.
                Err(unsafe { counted(actual) })
            }
        }
    }

    /// Replaces the value with `f(current)`, retrying with the newer value when another store
    /// got in between (read-copy-update), and returns the value it stored.
    ///
    /// `f` may run several times under contention; only its last result is stored, and each
    /// other result is dropped. The thread stays pinned while `f` runs, so keep `f` short. If
    /// `f` panics, nothing is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// let hits = gosync_atomic::Value::new(0_u64);
    /// std::thread::scope(|s| {
    ///     for _ in 0..4 {
    ///         s.spawn(|| hits.update(|n| n + 1));
    ///     }
    /// });
    /// assert_eq!(*hits.load(), 4);
    /// ```
    pub fn update(&self, mut f: impl FnMut(&T) -> T) -> Arc<T> {
        let pin = epoch::pin();
        let mut current = self.current.load(SeqCst);
        loop {
            // SAFETY: `current` was loaded under this pin, so it is not freed before it ends.
            let next = Arc::new(f(unsafe { &*current }));
            let published = Arc::into_raw(Arc::clone(&next)).cast_mut();
            match self
                .current
                .compare_exchange(current, published, SeqCst, SeqCst)
            {
                Ok(old) => {
                    self.retire(old, &pin);
                    return next;
                }
                Err(actual) => {
                    // SAFETY: `published` holds the count taken above and was never published.
                    drop(unsafe { Arc::from_raw(published) });
                    current = actual;
                }
            }
        }
    }

    /// Hands the `Value`'s count of `old`, just unlinked from `current` by this thread, to the
    /// retire list, and defers taking it off once every thread pinned now has unpinned.
    fn retire(&self, old: *mut T, pin: &Guard) {
        // SAFETY: `old` came from `Arc::into_raw`, and this thread's swap or compare-exchange
        // took it out of `current`, so the `Value`'s count of it is this thread's to move.
        let old = unsafe { Arc::from_raw(old.cast_const()) };
        let address = Arc::as_ptr(&old) as usize;
        let pending = {
            let mut retired = self.retired.state.lock();
            retired.waiting.push(old);
            retired.waiting.len()
        };
        let retired = Arc::clone(&self.retired);
        // SAFETY: the function borrows nothing from the stack (it owns an `Arc` and an address).
        // It may run on any thread, where it moves an `Arc<T>` between two lists and drops
        // none. It may run after the `Value`, and `T`'s lifetime, are gone: the `Value`'s drop
        // has then emptied the lists, so it finds no `T` to touch, and frees only the list.
        unsafe { pin.defer_unchecked(move || reclaim(&retired, address)) };
        if pending % FLUSH_EVERY == 0 {
            pin.flush();
        }
        self.drop_ready();
    }

    /// Drops the old values that no reader can reach any more, if there are any.
    #[inline]
    fn drop_ready(&self) {
        // Relaxed: a hint; the lock orders the lists (a value made ready just now is dropped by
        // a later call).
        if self.retired.has_ready.load(Relaxed) {
            self.drop_ready_now();
        }
    }

    #[cold]
    fn drop_ready_now(&self) {
        let ready = {
            let mut state = self.retired.state.lock();
            // Relaxed: under the lock, as every change of the lists.
            self.retired.has_ready.store(false, Relaxed);
            mem::take(&mut state.ready)
        };
        // After the lock: `T`'s drop may use this `Value`. If one panics, the rest go back for
        // a later call, so that one panic leaves at a time and no value is lost.
        let mut dropping = PutBackOnUnwind {
            retired: &self.retired,
            rest: ready.into_iter(),
        };
        for old in dropping.rest.by_ref() {
            drop(old);
        }
    }
}

/// Moves a ready old value, once no reader can reach it, to where the `Value`'s next call drops
/// it; nothing if the `Value`'s drop took it already.
fn reclaim<T>(retired: &RetireList<T>, address: usize) {
    let mut state = retired.state.lock();
    let index = state
        .waiting
        .iter()
        .position(|old| Arc::as_ptr(old) as usize == address);
    if let Some(index) = index {
        let old = state.waiting.swap_remove(index);
        state.ready.push(old);
        // Relaxed: under the lock (see `drop_ready`).
        retired.has_ready.store(true, Relaxed);
    }
}

/// The ready old values not dropped yet when a drop among them panics: back on the list.
struct PutBackOnUnwind<'a, T> {
    retired: &'a RetireList<T>,
    rest: std::vec::IntoIter<Arc<T>>,
}

impl<T> Drop for PutBackOnUnwind<'_, T> {
    fn drop(&mut self) {
        if self.rest.len() != 0 {
            let mut state = self.retired.state.lock();
            state.ready.extend(self.rest.by_ref());
            // Relaxed: under the lock (see `drop_ready`).
            self.retired.has_ready.store(true, Relaxed);
        }
    }
}

/// An owned `Arc` of `ptr`, by taking one more strong count.
///
/// # Safety
///
/// `ptr` came from `Arc::into_raw` and is kept alive meanwhile: it was loaded from `current`
/// under an epoch pin that is still held.
unsafe fn counted<T>(ptr: *const T) -> Arc<T> {
    // SAFETY: the caller guarantees a live `Arc` allocation whose count is at least one.
    unsafe {
        Arc::increment_strong_count(ptr);
        Arc::from_raw(ptr)
    }
}

impl<T> Drop for Value<T> {
    fn drop(&mut self) {
        // SAFETY: the `Value` owns a count of `current`; no guard or reader can outlive the
        // borrow it came from, so nothing else reads through this pointer any more.
        let current = unsafe { Arc::from_raw(self.current.load(SeqCst).cast_const()) };
        // The same reason frees the old values now: only queued deferred functions still know
        // of them, and they find the lists empty (and never drop a value themselves, so none
        // is being dropped elsewhere now). Taken off the lists before any drop runs, so that a
        // panicking drop (of `current` or an old value) still drops the rest as it unwinds,
        // here, rather than leaving them to a later call that never comes.
        let (waiting, ready) = {
            let mut state = self.retired.state.lock();
            (mem::take(&mut state.waiting), mem::take(&mut state.ready))
        };
        // `waiting` and `ready` drop as the panic of `current`'s drop leaves, and a `Vec` drops
        // every element past one that panics.
        drop(current);
        drop(ready);
        drop(waiting);
    }
}

impl<T: Default + Send + Sync> Default for Value<T> {
    /// A `Value` holding `T::default()`.
    fn default() -> Self {
        Self::new(T::default())
    }
}

impl<T: Send + Sync> From<T> for Value<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T: fmt::Debug + Send + Sync> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Value")
            .field("value", &&*self.load())
            .finish()
    }
}

/// The current value of a [`Value`], kept alive by an epoch pin; from [`Value::load`].
///
/// It derefs to the value. It counts nothing: the pin, which writes only the calling thread's
/// epoch slot, keeps the value from being freed. Stores made meanwhile do not change what it
/// sees. Drop it soon: while it lives, the thread stays pinned (see [`Value::load`]).
///
/// # Examples
///
/// ```
/// let value = gosync_atomic::Value::new(vec![1, 2]);
/// let guard = value.load();
/// assert_eq!(guard.len(), 2);
/// ```
#[must_use = "the guard is the loaded value; dropping it at once loads nothing"]
pub struct ValueGuard<'a, T> {
    /// The value's `Arc` pointer, alive while `_pin` is held.
    ptr: *const T,
    _pin: Guard,
    _value: PhantomData<&'a Value<T>>,
}

impl<T> ValueGuard<'_, T> {
    /// An owned `Arc` of the guarded value (one reference-count increment).
    ///
    /// An associated function (`ValueGuard::to_arc(&guard)`), so that it does not hide a method
    /// of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_atomic::{Value, ValueGuard};
    ///
    /// let value = Value::new(5);
    /// let kept = ValueGuard::to_arc(&value.load());
    /// value.store(6);
    /// assert_eq!(*kept, 5);
    /// ```
    #[must_use]
    pub fn to_arc(this: &Self) -> Arc<T> {
        // SAFETY: `ptr` was loaded from `current` under `_pin`, which is still held.
        unsafe { counted(this.ptr) }
    }
}

impl<T> Deref for ValueGuard<'_, T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: `ptr` was loaded from `current` under `_pin`: the value is retired, at most,
        // and freed only after every pin taken before its retirement ends, this one included.
        unsafe { &*self.ptr }
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: fmt::Display> fmt::Display for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// A per-thread reader of a [`Value`] for hot loops; from [`Value::reader`].
///
/// It keeps an `Arc` of the last value it loaded. Each [`load`](Self::load) reads the `Value`'s
/// pointer once and compares it with that `Arc`: while nothing was stored, that is the whole
/// cost (Go's `Load` is the same single load), with no pin and no count. After a store, the next
/// `load` takes the new value's `Arc` (a pin and an increment).
///
/// The reader keeps the last value it saw alive until its next `load` that finds a new one, or
/// until it is dropped.
///
/// # Examples
///
/// ```
/// let limit = gosync_atomic::Value::new(10);
/// let mut reader = limit.reader();
/// let mut served = 0;
/// while served < **reader.load() {
///     served += 1;
/// }
/// assert_eq!(served, 10);
/// ```
pub struct ValueReader<'a, T> {
    value: &'a Value<T>,
    /// The last value loaded; its `Arc` keeps its address from being reused.
    cached: Arc<T>,
}

impl<T: Send + Sync> ValueReader<'_, T> {
    /// The `Value`'s current value: one atomic load and a compare when it is the one loaded
    /// last time.
    ///
    /// # Examples
    ///
    /// ```
    /// let value = gosync_atomic::Value::new("a");
    /// let mut reader = value.reader();
    /// value.store("b");
    /// assert_eq!(**reader.load(), "b");
    /// ```
    #[inline]
    pub fn load(&mut self) -> &Arc<T> {
        if self.value.current.load(SeqCst).cast_const() != Arc::as_ptr(&self.cached) {
            self.refresh();
        }
        &self.cached
    }

    #[cold]
    fn refresh(&mut self) {
        self.cached = self.value.load_arc();
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueReader<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueReader")
            .field("cached", &self.cached)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_impl_all!(Value<String>: Send, Sync, Default, From<String>, fmt::Debug);
    static_assertions::assert_not_impl_any!(Value<std::cell::Cell<u8>>: Send, Sync);
    static_assertions::assert_not_impl_any!(Value<std::sync::MutexGuard<'static, u8>>: Send);
    static_assertions::assert_not_impl_any!(ValueGuard<'static, u8>: Send, Sync);
    static_assertions::assert_impl_all!(ValueReader<'static, u8>: Send, Sync, fmt::Debug);

    #[test]
    fn debug_shows_the_value() {
        let value = Value::new(3);
        assert_eq!(format!("{value:?}"), "Value { value: 3 }");
        assert_eq!(format!("{:?} {}", value.load(), value.load()), "3 3");
        assert_eq!(
            format!("{:?}", value.reader()),
            "ValueReader { cached: 3, .. }"
        );
    }
}
