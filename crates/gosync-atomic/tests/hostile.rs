//! `Value` and `Counter` as a hostile user drives them: values whose drop re-enters the
//! `Value`, panics in `update` closures and in drops, readers dropped on other threads, many
//! threads on few cores, and exact drop counts on every path.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;

use gosync_atomic::{Counter, Value};
use gosync_testkit::{join_within, panic_message, scaled, wait_until, within};

mod common;

use common::{Census, Counted};

#[test]
fn a_panicking_update_closure_stores_nothing_and_leaks_nothing() {
    let census = Arc::new(Census::default());
    let value = Value::new(Counted::new(&census, 0));
    let calls = AtomicUsize::new(0);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        value.update(|old| {
            // The first attempt loses a race on purpose, the second panics.
            if calls.fetch_add(1, SeqCst) == 0 {
                value.store(Counted::new(&census, old.id + 100));
                Counted::new(&census, old.id + 1)
            } else {
                panic!("update closure gave up")
            }
        })
    }));
    assert_eq!(
        panic_message(&*result.unwrap_err()),
        "update closure gave up"
    );
    assert_eq!(calls.load(SeqCst), 2);
    assert_eq!(value.load().id, 100, "the racing store stays");
    // The value still works afterwards.
    assert_eq!(
        value.update(|old| Counted::new(&census, old.id + 1)).id,
        101
    );
    drop(value);
    assert_eq!(census.live(), 0);
}

/// A value whose drop stores into the same (static) `Value`: retirement runs the drop on
/// whichever thread collects epoch garbage, maybe inside another store.
#[derive(Debug)]
struct StoresOnDrop {
    generation: usize,
}

static REENTERED: OnceLock<Value<StoresOnDrop>> = OnceLock::new();
static REENTRANT_DROPS: AtomicUsize = AtomicUsize::new(0);

impl Drop for StoresOnDrop {
    fn drop(&mut self) {
        REENTRANT_DROPS.fetch_add(1, SeqCst);
        if self.generation % 3 == 0 && self.generation > 0 {
            if let Some(value) = REENTERED.get() {
                value.store(StoresOnDrop { generation: 0 });
                drop(value.load());
                drop(value.load_arc());
            }
        }
    }
}

#[test]
fn a_drop_that_stores_into_its_own_value_neither_deadlocks_nor_corrupts() {
    let value = REENTERED.get_or_init(|| Value::new(StoresOnDrop { generation: 0 }));
    let per_thread = scaled(2_000, 30);
    within(move || {
        thread::scope(|s| {
            for t in 0..4 {
                s.spawn(move || {
                    for i in 0..per_thread {
                        let generation = t * per_thread + i + 1;
                        value.store(StoresOnDrop { generation });
                        let _ = value.update(|old| StoresOnDrop {
                            generation: old.generation + 1,
                        });
                        crossbeam_epoch::pin().flush();
                    }
                });
            }
        });
    });
    // Old values are dropped once the epoch moves on (other tests may hold it back a while).
    wait_until(|| {
        crossbeam_epoch::pin().flush();
        REENTRANT_DROPS.load(SeqCst) > 0
    });
}

#[test]
fn readers_moved_to_and_dropped_on_other_threads_release_their_values() {
    let census = Arc::new(Census::default());
    let value = Value::new(Counted::new(&census, 0));
    let rounds = scaled(200, 10);
    for round in 1..=rounds {
        let mut reader = value.reader();
        assert_eq!(reader.load().id, round - 1);
        value.store(Counted::new(&census, round));
        // The reader's cached old value moves with it and is released over there.
        let seen = within_scope(&value, move || {
            let seen = reader.load().id;
            drop(reader);
            seen
        });
        assert_eq!(seen, round);
    }
    drop(value);
    assert_eq!(census.live(), 0);
}

/// Runs `f` on a scoped thread and returns its result (the scope bounds the wait).
fn within_scope<T: Send, R: Send>(_borrowed: &T, f: impl FnOnce() -> R + Send) -> R {
    thread::scope(|s| s.spawn(f).join().unwrap())
}

#[test]
fn sixty_four_threads_store_swap_cas_update_and_read_with_exact_drops() {
    let census = Arc::new(Census::default());
    let value = Arc::new(Value::new(Counted::new(&census, 0)));
    let threads = scaled(64, 4);
    let per_thread = scaled(300, 8);
    let gate = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (census, value, gate) =
                (Arc::clone(&census), Arc::clone(&value), Arc::clone(&gate));
            thread::spawn(move || {
                gate.wait();
                let mut reader = value.reader();
                let mut kept = Vec::new();
                for i in 0..per_thread {
                    let id = t * per_thread + i + 1;
                    match (t + i) % 5 {
                        0 => value.store(Counted::new(&census, id)),
                        1 => kept.push(value.swap(Counted::new(&census, id))),
                        2 => {
                            let seen = value.load_arc();
                            let _ =
                                value.compare_and_swap(&seen, Arc::new(Counted::new(&census, id)));
                        }
                        3 => {
                            let _ = value.update(|_| Counted::new(&census, id));
                        }
                        _ => {
                            let guard = value.load();
                            let _ = guard.id;
                            let _ = reader.load().id;
                        }
                    }
                    if kept.len() > 4 {
                        kept.clear();
                    }
                }
                drop(kept);
            })
        })
        .collect();
    for handle in handles {
        join_within(handle);
    }
    let value = Arc::try_unwrap(value).expect("the only handle");
    assert!(census.live() >= 1);
    drop(value);
    assert_eq!(
        census.live(),
        0,
        "every value dropped exactly once by the Value's drop"
    );
}

/// A value whose drop takes a lock (shared statistics, say) and records the thread it ran on.
struct LocksOnDrop {
    drops: Arc<std::sync::Mutex<Vec<thread::ThreadId>>>,
}

impl Drop for LocksOnDrop {
    fn drop(&mut self) {
        self.drops.lock().unwrap().push(thread::current().id());
    }
}

/// Another thread collecting epoch garbage all along never drops an old value: only the
/// `Value`'s own calls and its drop do. So dropping a `Value` never waits for another thread (it
/// waited for a drop running in another thread's collection, which deadlocked when that drop
/// needed a lock the dropping thread held), and every value is dropped exactly once.
#[test]
fn old_values_drop_in_the_values_own_calls_never_in_another_threads_collection() {
    within(|| {
        let drops = Arc::new(std::sync::Mutex::new(Vec::new()));
        let make = || LocksOnDrop {
            drops: Arc::clone(&drops),
        };
        let value = Value::new(make());
        let stop = Arc::new(AtomicBool::new(false));
        let collector = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(SeqCst) {
                    crossbeam_epoch::pin().flush();
                }
            })
        };
        let stores = scaled(2_000, 20);
        for _ in 0..stores {
            value.store(make());
            drop(value.load());
        }
        stop.store(true, SeqCst);
        join_within(collector);
        drop(value);
        let drops = drops.lock().unwrap();
        assert_eq!(drops.len(), stores + 1, "every value dropped exactly once");
        assert!(
            drops.iter().all(|&on| on == thread::current().id()),
            "an old value was dropped on the collecting thread"
        );
    });
}

#[test]
fn counter_sums_exactly_with_sixty_four_threads_and_wraps() {
    let counter = Arc::new(Counter::new());
    let threads = scaled(64, 4);
    let per_thread = scaled(5_000, 20);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..per_thread {
                    counter.add(i64::MAX);
                    counter.add(if t % 2 == 0 { 3 } else { -1 });
                }
            })
        })
        .collect();
    for handle in handles {
        join_within(handle);
    }
    let mut expected = 0_i64;
    for t in 0..threads {
        for _ in 0..per_thread {
            expected = expected.wrapping_add(i64::MAX);
            expected = expected.wrapping_add(if t % 2 == 0 { 3 } else { -1 });
        }
    }
    assert_eq!(counter.value(), expected);
    counter.reset();
    assert_eq!(counter.value(), 0);
}
