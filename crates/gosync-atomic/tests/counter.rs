//! Public behaviour of `Counter`: exact totals once adders stop, from many threads; negative
//! deltas; wrapping overflow (as Go's `Add`); reset; reads while adds run never go backwards.

#![cfg(not(gosync_loom))]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use gosync_atomic::Counter;
use gosync_testkit::{join_within, scaled, within};

#[test]
fn sixty_four_threads_count_exactly() {
    within(|| {
        let counter = Arc::new(Counter::new());
        let threads = scaled(64, 4);
        let per_thread = scaled(10_000, 50);
        let start = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (counter, start) = (counter.clone(), start.clone());
                thread::spawn(move || {
                    start.wait();
                    for i in 0..per_thread {
                        match (t + i) % 3 {
                            0 => counter.inc(),
                            1 => counter.add(2),
                            _ => counter.dec(),
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            join_within(handle);
        }
        let expected: i64 = (0..threads)
            .flat_map(|t| (0..per_thread).map(move |i| [1, 2, -1][(t + i) % 3]))
            .sum();
        assert_eq!(counter.value(), expected);
    });
}

#[test]
fn overflow_wraps_like_go() {
    let counter = Counter::new();
    counter.add(i64::MAX);
    counter.inc();
    assert_eq!(counter.value(), i64::MIN);
    // Adds that wrap on different threads' cells still sum to the wrapped total.
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let counter = &counter;
            move || counter.add(i64::MAX)
        })
        .collect();
    thread::scope(|s| {
        for add in threads {
            s.spawn(add);
        }
    });
    let expected = (0..4).fold(i64::MIN, |total, _| total.wrapping_add(i64::MAX));
    assert_eq!(counter.value(), expected);
}

#[test]
fn reset_after_adders_stop() {
    let counter = Counter::default();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| counter.add(10));
        }
    });
    assert_eq!(counter.value(), 40);
    counter.reset();
    assert_eq!(counter.value(), 0);
    thread::scope(|s| {
        s.spawn(|| counter.dec());
    });
    assert_eq!(counter.value(), -1);
}

#[test]
fn reads_during_increments_never_go_backwards() {
    within(|| {
        let counter = Arc::new(Counter::new());
        let done = Arc::new(AtomicBool::new(false));
        let per_thread = scaled(20_000, 100);
        let adders: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                thread::spawn(move || {
                    for _ in 0..per_thread {
                        counter.inc();
                    }
                })
            })
            .collect();
        let reader = {
            let (counter, done) = (counter.clone(), done.clone());
            thread::spawn(move || {
                let mut last = 0;
                while !done.load(Ordering::SeqCst) {
                    let now = counter.value();
                    assert!(now >= last, "{now} after {last}");
                    last = now;
                }
            })
        };
        for adder in adders {
            join_within(adder);
        }
        done.store(true, Ordering::SeqCst);
        join_within(reader);
        assert_eq!(counter.value(), 4 * per_thread as i64);
    });
}
