//! Loom models of `Once` and `OnceCell`: racing callers run the function once and see its
//! write, also when it panics; racing `set` and `get_or_init`; a bounded wait giving up (its
//! deadline fires at any point of the race under loom) as the init completes or fails, beside a
//! caller that waits as long as it takes; a cancellation racing the init.

#![cfg(gosync_loom)]

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_once::{Once, OnceCell};
use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{Arc, AtomicUsize, Ordering};
use gosync_park::thread;

/// A `Once` with a plain (non-atomic) value it guards, so loom reports a missing ordering.
struct Guarded {
    once: Once,
    value: UnsafeCell<usize>,
    runs: AtomicUsize,
}

// SAFETY: `value` is written only inside `call_once` and read only after it returned.
unsafe impl Sync for Guarded {}

impl Guarded {
    fn new() -> Self {
        Self {
            once: Once::new(),
            value: UnsafeCell::new(0),
            runs: AtomicUsize::new(0),
        }
    }

    /// Calls `call_once` with a function that writes `value` (and panics when `panics`),
    /// then returns what it reads.
    fn call(&self, panics: bool) -> usize {
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            self.once.call_once(|| {
                self.runs.fetch_add(1, Ordering::Relaxed);
                // SAFETY: only the one running function writes.
                unsafe { *self.value.mut_ptr() = 42 };
                if panics {
                    panic!("f panics");
                }
            })
        }));
        assert!(self.once.is_done());
        // SAFETY: `call_once` returned, so the write happened before (and no write follows).
        unsafe { *self.value.ptr() }
    }
}

fn racing_calls(first_panics: bool, second_panics: bool) {
    loom::model(move || {
        let g = Arc::new(Guarded::new());
        let other = {
            let g = g.clone();
            thread::spawn(move || g.call(second_panics))
        };
        assert_eq!(g.call(first_panics), 42);
        assert_eq!(other.join().unwrap(), 42);
        assert_eq!(g.runs.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn racing_callers_run_f_once() {
    racing_calls(false, false);
}

#[test]
fn racing_callers_with_a_panicking_f() {
    racing_calls(true, true);
}

#[test]
fn three_callers_one_runs() {
    loom::model(|| {
        let g = Arc::new(Guarded::new());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.call(false))
            })
            .collect();
        assert_eq!(g.call(false), 42);
        for h in handles {
            assert_eq!(h.join().unwrap(), 42);
        }
        assert_eq!(g.runs.load(Ordering::Relaxed), 1);
    });
}

#[test]
fn cell_racing_set_and_get_or_init() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::new());
        let setter = {
            let cell = cell.clone();
            thread::spawn(move || cell.set(String::from("set")).is_ok())
        };
        let got = cell.get_or_init(|| String::from("init")).clone();
        let set_won = setter.join().unwrap();
        assert_eq!(got, if set_won { "set" } else { "init" });
        assert_eq!(cell.get().map(String::as_str), Some(got.as_str()));
    });
}

#[test]
fn cell_panicking_init_hands_over() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::new());
        let panicker = {
            let cell = cell.clone();
            thread::spawn(move || {
                panic::catch_unwind(AssertUnwindSafe(|| {
                    cell.get_or_init(|| panic!("init panics"));
                }))
                .is_err()
            })
        };
        assert_eq!(*cell.get_or_init(|| 5), 5);
        // The panicker either panicked or found the value already there.
        let _ = panicker.join().unwrap();
        assert_eq!(cell.get(), Some(&5));
    });
}

/// A deadline that only fires inside the park (loom fires every deadline at the wait's first
/// look), never at the checks before it.
fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

#[test]
fn cell_bounded_wait_racing_the_init() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let runner = {
            let (cell, runs) = (cell.clone(), runs.clone());
            thread::spawn(move || {
                *cell.get_or_init(|| {
                    runs.fetch_add(1, Ordering::Relaxed);
                    1
                })
            })
        };
        let waited = cell.try_get_or_init_until(far(), || {
            runs.fetch_add(1, Ordering::Relaxed);
            2
        });
        let value = runner.join().unwrap();
        match waited {
            // It ran its own function, or was woken by (or gave up at) a finished init.
            Ok(got) => assert_eq!(*got, value),
            // It gave up while the runner's init was under way: nothing ran here.
            Err(_) => assert_eq!(value, 1),
        }
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(cell.get(), Some(&value));
    });
}

#[test]
fn cell_bounded_wait_giving_up_beside_a_patient_waiter_of_a_failing_init() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::<u32>::new());
        let failer = {
            let cell = cell.clone();
            thread::spawn(move || cell.get_or_try_init(|| Err(())).is_err())
        };
        let bounded = {
            let cell = cell.clone();
            thread::spawn(move || cell.try_get_or_init_until(far(), || 2).ok().copied())
        };
        // Waits as long as it takes: a bounded waiter leaving the queue must not strand it.
        let patient = *cell.get_or_init(|| 3);
        let bounded = bounded.join().unwrap();
        let failed = failer.join().unwrap();
        assert!(patient == 2 || patient == 3);
        assert!(bounded.is_none() || bounded == Some(patient));
        if !failed {
            // The failing init never ran: it found the value there.
            assert!(cell.get().is_some());
        }
        assert_eq!(cell.get(), Some(&patient));
    });
}

#[test]
fn cell_cancelled_wait_racing_the_init() {
    loom::model(|| {
        let cell = Arc::new(OnceCell::new());
        let (ctx, cancel) = Context::background().with_cancel();
        let runner = {
            let cell = cell.clone();
            thread::spawn(move || *cell.get_or_init(|| 1))
        };
        let waiter = {
            let cell = cell.clone();
            thread::spawn(move || match cell.get_or_init_ctx(&ctx, || 2) {
                Ok(got) => Ok(*got),
                Err((_, err)) => Err(err),
            })
        };
        cancel.cancel();
        let value = runner.join().unwrap();
        match waiter.join().unwrap() {
            // It ran its own function, or saw (woken, or as it gave up) the finished init.
            Ok(got) => assert_eq!(got, value),
            // Cancelled first, or while the runner's init was under way: nothing ran here.
            Err(err) => {
                assert_eq!(err, ContextError::Canceled);
                assert_eq!(value, 1);
            }
        }
        assert_eq!(cell.get(), Some(&value));
        assert!(!cell.has_sleepers());
    });
}
