//! Public behaviour of `Value`, `ValueGuard` and `ValueReader`.
//!
//! Ported behaviours from Go's `src/sync/atomic/value_test.go`: `TestValue` (store then load),
//! `TestValueConcurrent` (every load sees one whole stored value), `TestValueSwapConcurrent`
//! (the swapped-out values add up to all stored minus the last) and
//! `TestValueCompareAndSwapConcurrent` (a CAS retry loop counts exactly), rewritten in our own
//! code; plus exact drop counting: every stored value is dropped exactly once, never while a
//! guard, reader or `Arc` still refers to it, and at the latest when the `Value` drops.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use gosync_atomic::{Value, ValueGuard};
use gosync_testkit::{join_within, panic_message, scaled, within};

/// Counts how many `Tracked` values exist, to check every drop.
#[derive(Debug, Default)]
struct Live {
    created: AtomicUsize,
    dropped: AtomicUsize,
}

impl Live {
    fn new() -> Arc<Self> {
        Arc::default()
    }

    fn track(self: &Arc<Self>, id: usize) -> Tracked {
        self.created.fetch_add(1, Ordering::SeqCst);
        Tracked {
            id,
            double: 2 * id,
            alive: AtomicBool::new(true),
            live: Arc::clone(self),
        }
    }

    fn alive(&self) -> usize {
        self.created.load(Ordering::SeqCst) - self.dropped.load(Ordering::SeqCst)
    }
}

/// A value that knows whether it was dropped (so a read after free is caught by the `alive`
/// check, besides miri) and keeps two fields that must agree (so a torn value is caught).
#[derive(Debug)]
struct Tracked {
    id: usize,
    double: usize,
    alive: AtomicBool,
    live: Arc<Live>,
}

impl Tracked {
    fn check(&self) -> usize {
        assert!(self.alive.load(Ordering::SeqCst), "read of a dropped value");
        assert_eq!(self.double, 2 * self.id, "torn value");
        self.id
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert!(self.alive.swap(false, Ordering::SeqCst), "dropped twice");
        self.live.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn store_then_load() {
    let value = Value::new(String::from("first"));
    assert_eq!(*value.load(), "first");
    value.store(String::from("second"));
    assert_eq!(*value.load(), "second");
    assert_eq!(*value.load_arc(), "second");
    let big = Value::new([7_u8; 4096]);
    assert!(big.load().iter().all(|&b| b == 7));
}

#[test]
fn default_and_from() {
    let value: Value<Vec<u8>> = Value::default();
    assert!(value.load().is_empty());
    let value = Value::from(5);
    assert_eq!(*value.load(), 5);
}

#[test]
fn zero_sized_values() {
    let value = Value::new(());
    let before = value.load_arc();
    value.store(());
    let after = value.load_arc();
    assert!(!Arc::ptr_eq(&before, &after));
    assert!(value.compare_and_swap(&after, Arc::new(())).is_ok());
}

#[test]
fn every_value_is_dropped_once_by_the_time_the_value_drops() {
    let live = Live::new();
    let value = Value::new(live.track(0));
    for id in 1..=scaled(1000, 20) {
        value.store(live.track(id));
    }
    assert_eq!(value.load().check(), scaled(1000, 20));
    drop(value);
    assert_eq!(live.alive(), 0);
}

#[test]
fn a_guard_keeps_its_value_alive_across_stores() {
    let live = Live::new();
    let value = Value::new(live.track(0));
    let guard = value.load();
    for id in 1..=10 {
        value.store(live.track(id));
    }
    // Other loads come and go, which lets the epoch try to collect.
    for _ in 0..scaled(1000, 50) {
        value.load().check();
    }
    assert_eq!(guard.check(), 0);
    drop(guard);
    drop(value);
    assert_eq!(live.alive(), 0);
}

#[test]
fn arcs_outlive_the_value() {
    let live = Live::new();
    let value = Value::new(live.track(0));
    let first = value.load_arc();
    let via_guard = ValueGuard::to_arc(&value.load());
    value.store(live.track(1));
    let swapped = value.swap(live.track(2));
    let mut reader = value.reader();
    assert_eq!(reader.load().check(), 2);
    drop(reader);
    drop(value);
    assert_eq!(live.alive(), 2, "values 0 and 1 are still held by Arcs");
    assert_eq!(
        (first.check(), via_guard.check(), swapped.check()),
        (0, 0, 1)
    );
    drop((first, via_guard));
    assert_eq!(live.alive(), 1);
    drop(swapped);
    assert_eq!(live.alive(), 0);
}

#[test]
fn swap_returns_the_old_value() {
    let value = Value::new(1);
    let old = value.swap(2);
    assert_eq!(*old, 1);
    assert_eq!(*value.swap(3), 2);
    assert_eq!(*value.load(), 3);
}

#[test]
fn compare_and_swap_compares_by_pointer() {
    let live = Live::new();
    let value = Value::new(live.track(0));
    let current = value.load_arc();
    let lookalike = Arc::new(live.track(0));

    let actual = value
        .compare_and_swap(&lookalike, Arc::new(live.track(9)))
        .unwrap_err();
    assert!(
        Arc::ptr_eq(&actual, &current),
        "Err carries the value found"
    );
    assert_eq!(live.alive(), 2, "the rejected new value was dropped");

    let next = Arc::new(live.track(1));
    let previous = value.compare_and_swap(&current, Arc::clone(&next)).unwrap();
    assert!(
        Arc::ptr_eq(&previous, &current),
        "Ok carries the value replaced"
    );
    assert!(Arc::ptr_eq(&value.load_arc(), &next));

    // Storing an old value back is fine: the `Value` takes a count of its own.
    assert!(value.compare_and_swap(&next, Arc::clone(&current)).is_ok());
    assert!(Arc::ptr_eq(&value.load_arc(), &current));
    drop((actual, previous, lookalike));
    drop(value);
    drop(next);
    assert_eq!(live.alive(), 1);
    drop(current);
    assert_eq!(live.alive(), 0);
}

#[test]
fn update_returns_what_it_stored() {
    let value = Value::new(vec![1]);
    let stored = value.update(|v| v.iter().map(|x| x * 10).collect());
    assert_eq!(*stored, [10]);
    assert!(Arc::ptr_eq(&stored, &value.load_arc()));
}

#[test]
fn a_panicking_update_stores_nothing() {
    let live = Live::new();
    let value = Value::new(live.track(0));
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        value.update(|_| panic!("no new value"));
    }))
    .unwrap_err();
    assert_eq!(panic_message(&*caught), "no new value");
    assert_eq!(value.load().check(), 0);
    value.update(|old| live.track(old.id + 1));
    assert_eq!(value.load().check(), 1);
    drop(value);
    assert_eq!(live.alive(), 0);
}

#[test]
fn a_value_whose_drop_uses_another_value() {
    /// Its drop stores into a second `Value` from wherever epoch garbage gets collected.
    struct Noisy(Arc<Value<usize>>);
    impl Drop for Noisy {
        fn drop(&mut self) {
            self.0.update(|n| n + 1);
        }
    }
    let drops = Arc::new(Value::new(0));
    let value = Value::new(Noisy(Arc::clone(&drops)));
    for _ in 0..scaled(200, 10) {
        value.store(Noisy(Arc::clone(&drops)));
    }
    drop(value);
    assert_eq!(*drops.load(), scaled(200, 10) + 1);
}

#[test]
fn reader_sees_each_store_and_holds_its_value() {
    let live = Live::new();
    let value = Value::new(live.track(0));
    let mut reader = value.reader();
    assert_eq!(reader.load().check(), 0);
    value.store(live.track(1));
    value.store(live.track(2));
    assert_eq!(live.alive(), 3, "the reader still holds value 0");
    assert_eq!(reader.load().check(), 2);
    assert_eq!(reader.load().check(), 2);
    let held = Arc::clone(reader.load());
    drop(reader);
    drop(value);
    assert_eq!(live.alive(), 1);
    drop(held);
    assert_eq!(live.alive(), 0);
}

/// Go's `TestValueConcurrent` with guards, readers and `load_arc`: loaders on many threads see
/// only whole stored values, in store order per loader, while writers store; afterwards every
/// value is dropped exactly once.
#[test]
fn concurrent_loads_see_whole_values_in_order() {
    within(|| {
        let live = Live::new();
        let value = Arc::new(Value::new(live.track(0)));
        let writers = 2;
        let loaders = scaled(62, 2);
        let stores = scaled(2000, 5);
        let start = Arc::new(Barrier::new(writers + loaders));
        let done = Arc::new(AtomicBool::new(false));
        let loader_handles: Vec<_> = (0..loaders)
            .map(|i| {
                let (value, start, done) = (value.clone(), start.clone(), done.clone());
                thread::spawn(move || {
                    start.wait();
                    let mut reader = value.reader();
                    let mut last_seen = [0; 2];
                    let mut loads = 0_usize;
                    while !done.load(Ordering::SeqCst) || loads < 10 {
                        let id = match (i + loads) % 3 {
                            0 => value.load().check(),
                            1 => value.load_arc().check(),
                            _ => reader.load().check(),
                        };
                        // Writer `w` stores the ids `1 + w + 2n` in increasing order.
                        if id > 0 {
                            let writer = (id - 1) % 2;
                            assert!(id >= last_seen[writer], "went back in time");
                            last_seen[writer] = id;
                        }
                        loads += 1;
                    }
                })
            })
            .collect();
        let writer_handles: Vec<_> = (0..writers)
            .map(|w| {
                let (value, start, live) = (value.clone(), start.clone(), live.clone());
                thread::spawn(move || {
                    start.wait();
                    for n in 0..stores {
                        value.store(live.track(1 + w + 2 * n));
                    }
                })
            })
            .collect();
        for handle in writer_handles {
            join_within(handle);
        }
        done.store(true, Ordering::SeqCst);
        for handle in loader_handles {
            join_within(handle);
        }
        assert_eq!(live.created.load(Ordering::SeqCst), 1 + writers * stores);
        drop(value);
        assert_eq!(live.alive(), 0);
    });
}

/// Go's `TestValueSwapConcurrent`: what all swaps returned plus what is left is what was stored.
#[test]
fn concurrent_swaps_lose_nothing() {
    within(|| {
        let value = Arc::new(Value::new(0_u64));
        let threads = scaled(16, 2) as u64;
        let per_thread = scaled(1000, 10) as u64;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let value = value.clone();
                thread::spawn(move || {
                    (0..per_thread)
                        .map(|i| *value.swap(t * per_thread + i + 1))
                        .sum::<u64>()
                })
            })
            .collect();
        let swapped: u64 = handles.into_iter().map(join_within).sum();
        let all = threads * per_thread;
        assert_eq!(swapped + *value.load(), all * (all + 1) / 2);
    });
}

/// Go's `TestValueCompareAndSwapConcurrent`, plus `update` racing it: each increment lands once.
#[test]
fn concurrent_compare_and_swap_and_update_count_exactly() {
    within(|| {
        let live = Live::new();
        let value = Arc::new(Value::new(live.track(0)));
        let threads = scaled(16, 2);
        let per_thread = scaled(500, 5);
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (value, live) = (value.clone(), live.clone());
                thread::spawn(move || {
                    for _ in 0..per_thread {
                        if t % 2 == 0 {
                            value.update(|old| live.track(old.check() + 1));
                        } else {
                            let mut current = value.load_arc();
                            loop {
                                let next = Arc::new(live.track(current.check() + 1));
                                match value.compare_and_swap(&current, next) {
                                    Ok(_) => break,
                                    Err(actual) => current = actual,
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            join_within(handle);
        }
        assert_eq!(value.load().check(), threads * per_thread);
        drop(value);
        assert_eq!(live.alive(), 0);
    });
}
