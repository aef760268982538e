//! Public behaviour of `Once`, `OnceCell`, `once_func` and `once_value`.
//!
//! Ported behaviours from Go's `src/sync/once_test.go` (`TestOnce`, `TestOncePanic`) and
//! `src/sync/oncefunc_test.go` (`TestOnceFunc`, `TestOnceValue`, `TestOnceValues`, the panic
//! tests `TestOnceXGoexit`/`TestOnceFuncPanic...`, concurrency), rewritten in our own code; plus
//! `OnceCell` retry-after-error and racing `get_or_init`.
//!
//! Every test that could hang runs inside `within` (from `gosync-testkit`), which fails it after
//! a generous limit instead of hanging the run.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use gosync_once::{once_func, once_value, Once, OnceCell};
use gosync_testkit::{panic_message, scaled, within};

/// How many threads the racing tests start.
const THREADS: usize = scaled(10, 4);

/// Runs `f(i)` for each `i` in `0..THREADS` on a thread of its own, all started together, and
/// returns the results in order.
fn race<T: Send>(f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let start = Barrier::new(THREADS);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (f, start) = (&f, &start);
                scope.spawn(move || {
                    start.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Spawns `run` with its own handle of `shared` and returns once it is inside an initializer:
/// `run` is also given `inside`, which the initializer it starts calls first. The caller's next
/// call then finds that initializer running (or finished).
fn spawn_inside_init<S: Send + Sync + 'static, T: Send + 'static>(
    shared: &Arc<S>,
    run: impl FnOnce(&S, &dyn Fn()) -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let started = Arc::new(Barrier::new(2));
    let runner = {
        let (shared, started) = (shared.clone(), started.clone());
        thread::spawn(move || {
            run(&shared, &|| {
                started.wait();
            })
        })
    };
    started.wait();
    runner
}

#[test]
fn many_threads_run_f_exactly_once() {
    within(|| {
        let once = Once::new();
        let runs = AtomicUsize::new(0);
        race(|_| {
            once.call_once(|| {
                // Not atomic on purpose: every caller must see this write.
                let before = runs.load(Ordering::Relaxed);
                runs.store(before + 1, Ordering::Relaxed);
            });
            // Go's TestOnce: after Do returns, the function has run.
            assert_eq!(runs.load(Ordering::Relaxed), 1);
        });
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert!(once.is_done());
    });
}

#[test]
fn panicking_f_counts_as_done() {
    let once = Once::new();
    let caught = panic::catch_unwind(|| once.call_once(|| panic!("failed")));
    assert_eq!(panic_message(&*caught.unwrap_err()), "failed");
    assert!(once.is_done());
    // Go's TestOncePanic: the second Do does not run its function.
    once.call_once(|| panic!("Once.Do called twice"));
}

#[test]
fn waiters_of_a_panicking_f_are_released() {
    within(|| {
        let once = Arc::new(Once::new());
        let runner = spawn_inside_init(&once, |once, inside| {
            once.call_once(|| {
                inside();
                panic!("first");
            })
        });
        // The runner is inside f: this call waits (or finds it done) and must not run its own f.
        once.call_once(|| panic!("second f ran"));
        assert!(runner.join().is_err());
        assert!(once.is_done());
    });
}

#[test]
fn default_is_not_done() {
    assert!(!Once::default().is_done());
}

#[test]
fn once_func_runs_once() {
    let runs = AtomicUsize::new(0);
    let f = once_func(|| {
        runs.fetch_add(1, Ordering::Relaxed);
    });
    for _ in 0..3 {
        f();
    }
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn once_func_concurrent_callers_wait_and_see_writes() {
    within(|| {
        let value = AtomicUsize::new(0);
        let f = once_func(|| value.store(7, Ordering::Relaxed));
        race(|_| {
            f();
            assert_eq!(value.load(Ordering::Relaxed), 7);
        });
    });
}

#[test]
fn once_func_repanics_every_call() {
    let runs = AtomicUsize::new(0);
    let f = once_func(|| {
        runs.fetch_add(1, Ordering::Relaxed);
        panic!("x");
    });
    for _ in 0..3 {
        let caught = panic::catch_unwind(AssertUnwindSafe(&f)).unwrap_err();
        assert!(panic_message(&*caught).contains('x'));
    }
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn once_value_returns_the_first_value() {
    let runs = AtomicUsize::new(0);
    let f = once_value(|| {
        runs.fetch_add(1, Ordering::Relaxed);
        String::from("v")
    });
    assert_eq!(f(), "v");
    assert_eq!(f(), "v");
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn once_value_as_once_values() {
    let f = once_value(|| (1, "one"));
    assert_eq!(f(), (1, "one"));
    let g = once_value(|| "nope".parse::<i32>().map_err(|e| e.to_string()));
    assert!(g().is_err());
    assert_eq!(g(), g());
}

#[test]
fn once_value_repanics_each_call_with_the_first_message() {
    let runs = AtomicUsize::new(0);
    let f = once_value(|| -> u32 {
        runs.fetch_add(1, Ordering::Relaxed);
        panic!("first failure {}", 42);
    });
    for _ in 0..3 {
        let caught = panic::catch_unwind(AssertUnwindSafe(&f)).unwrap_err();
        assert!(
            panic_message(&*caught).contains("first failure 42"),
            "got {:?}",
            panic_message(&*caught)
        );
    }
    assert_eq!(runs.load(Ordering::Relaxed), 1);
}

#[test]
fn once_value_racing_callers_get_one_value() {
    within(|| {
        let runs = AtomicUsize::new(0);
        let f = once_value(|| runs.fetch_add(1, Ordering::Relaxed) + 100);
        assert_eq!(race(|_| f()), vec![100; THREADS]);
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn cell_retries_after_error() {
    let cell = OnceCell::new();
    assert_eq!(cell.get_or_try_init(|| Err::<u32, _>("no")), Err("no"));
    assert_eq!(cell.get(), None);
    assert_eq!(cell.get_or_try_init(|| Ok::<_, &str>(5)), Ok(&5));
    assert_eq!(cell.get_or_try_init(|| Err::<u32, _>("later")), Ok(&5));
}

#[test]
fn cell_stays_empty_after_panic() {
    let cell = OnceCell::new();
    assert!(panic::catch_unwind(AssertUnwindSafe(|| cell.get_or_init(|| panic!("p")))).is_err());
    assert_eq!(cell.get(), None);
    assert_eq!(*cell.get_or_init(|| 9), 9);
}

#[test]
fn cell_waiter_takes_over_after_a_panic() {
    within(|| {
        let cell = Arc::new(OnceCell::new());
        let runner = spawn_inside_init(&cell, |cell, inside| {
            cell.get_or_init(|| {
                inside();
                panic!("first");
            });
        });
        // Either waits for the panicking runner and then runs its own, or runs its own after it.
        assert_eq!(*cell.get_or_init(|| 2), 2);
        assert!(runner.join().is_err());
    });
}

#[test]
fn cell_waiter_takes_over_after_an_error() {
    within(|| {
        let cell = Arc::new(OnceCell::new());
        let runner = spawn_inside_init(&cell, |cell, inside| {
            cell.get_or_try_init(|| {
                inside();
                Err(())
            })
            .copied()
        });
        assert_eq!(cell.get_or_try_init(|| Ok::<_, ()>(3)), Ok(&3));
        assert_eq!(runner.join().unwrap(), Err(()));
    });
}

#[test]
fn cell_racing_get_or_init_returns_the_same_reference() {
    within(|| {
        let cell: OnceCell<String> = OnceCell::new();
        let runs = AtomicUsize::new(0);
        let addresses = race(|i| {
            let v = cell.get_or_init(|| {
                runs.fetch_add(1, Ordering::Relaxed);
                format!("thread {i}")
            });
            v as *const String as usize
        });
        assert!(addresses.iter().all(|a| *a == addresses[0]));
        assert_eq!(runs.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn cell_set_get_take_into_inner() {
    let mut cell = OnceCell::new();
    assert_eq!(cell.set(1), Ok(()));
    assert_eq!(cell.set(2), Err(2));
    assert_eq!(cell.get(), Some(&1));
    *cell.get_mut().unwrap() = 3;
    assert_eq!(cell.take(), Some(3));
    assert_eq!(cell.take(), None);
    assert_eq!(cell.set(4), Ok(()));
    assert_eq!(cell.into_inner(), Some(4));
    assert_eq!(OnceCell::<u8>::new().into_inner(), None);
}

#[test]
fn cell_traits() {
    let cell = OnceCell::from(String::from("a"));
    let copy = cell.clone();
    assert_eq!(copy.get().map(String::as_str), Some("a"));
    assert_eq!(cell, copy);
    assert_ne!(cell, OnceCell::default());
    assert_eq!(OnceCell::<String>::default().clone(), OnceCell::new());
}

#[test]
fn cell_drop_drops_the_value() {
    let value = Arc::new(());
    let cell = OnceCell::new();
    cell.set(value.clone()).unwrap();
    assert_eq!(Arc::strong_count(&value), 2);
    drop(cell);
    assert_eq!(Arc::strong_count(&value), 1);
    // An empty cell drops nothing, and a taken value is not dropped twice.
    drop(OnceCell::<Arc<()>>::new());
    let mut cell = OnceCell::from(value.clone());
    let taken = cell.take();
    drop(cell);
    assert_eq!(Arc::strong_count(&value), 2);
    drop(taken);
    assert_eq!(Arc::strong_count(&value), 1);
}

#[test]
fn stress_many_onces() {
    within(|| {
        let rounds = scaled(500, 5);
        for _ in 0..rounds {
            let once = Arc::new(Once::new());
            let cell = Arc::new(OnceCell::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let (once, cell, runs) = (once.clone(), cell.clone(), runs.clone());
                    thread::spawn(move || {
                        once.call_once(|| {
                            runs.fetch_add(1, Ordering::Relaxed);
                        });
                        *cell.get_or_init(|| i)
                    })
                })
                .collect();
            let values: Vec<usize> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(values.iter().all(|v| *v == values[0]));
            assert_eq!(runs.load(Ordering::Relaxed), 1);
        }
    });
}
