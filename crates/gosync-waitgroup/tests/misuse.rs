//! Misuse on one thread must leave the other threads' correct calls alone: no panic reaches
//! them, and the counter ends exactly where their calls put it.
//!
//! The expected misuse panics (tens of thousands of them) are kept out of the output
//! (`quiet_panics`): they would bury the report of a real failure.
#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use gosync_testkit::{join_within, quiet_panics, scaled};
use gosync_waitgroup::WaitGroup;

/// `wg.add(1000)`; one thread keeps trying `add(-2000)` (each must panic and change nothing)
/// while two others pair `add(1)` with `done()`. Before misuse was validated before being
/// applied, the transient negative counter made thousands of those pairs panic and the count
/// drift.
#[test]
fn a_negative_add_on_one_thread_leaves_the_others_untouched() {
    quiet_panics("sync: negative WaitGroup counter", || {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1000);
        let misuses = scaled(100_000, 20);
        let misusing = Arc::new(AtomicBool::new(true));
        let pairs = Arc::new(AtomicUsize::new(0));

        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (wg, misusing, pairs) =
                    (Arc::clone(&wg), Arc::clone(&misusing), Arc::clone(&pairs));
                thread::spawn(move || {
                    let mut wrongly_panicked = 0;
                    while misusing.load(Ordering::SeqCst) {
                        let caught = panic::catch_unwind(AssertUnwindSafe(|| {
                            wg.add(1);
                            wg.done();
                        }));
                        wrongly_panicked += usize::from(caught.is_err());
                        pairs.fetch_add(1, Ordering::Relaxed);
                    }
                    wrongly_panicked
                })
            })
            .collect();
        let misuser = {
            let (wg, misusing, pairs) =
                (Arc::clone(&wg), Arc::clone(&misusing), Arc::clone(&pairs));
            thread::spawn(move || {
                // Misuse only once the workers run, so that the two overlap.
                gosync_testkit::wait_until(|| pairs.load(Ordering::Relaxed) > 0);
                let mut panicked = 0;
                for _ in 0..misuses {
                    let caught = panic::catch_unwind(AssertUnwindSafe(|| wg.add(-2000)));
                    panicked += usize::from(caught.is_err());
                }
                misusing.store(false, Ordering::SeqCst);
                panicked
            })
        };

        let misuses_panicked = join_within(misuser);
        let wrongly_panicked: usize = workers.into_iter().map(join_within).sum();
        let outcome = (misuses_panicked, wrongly_panicked, wg.count());
        assert_eq!(
            outcome,
            (misuses, 0, 1000),
            "(misuses that panicked, correct pairs that panicked, final count) after {} pairs",
            pairs.load(Ordering::Relaxed)
        );
    });
}

/// The same with `done()` as the misuse: a thread calling `done` on a group whose counter it
/// did not raise, while another keeps the counter between 0 and 1.
#[test]
fn an_extra_done_on_one_thread_leaves_the_others_untouched() {
    quiet_panics("sync: negative WaitGroup counter", || {
        let wg = Arc::new(WaitGroup::new());
        let rounds = scaled(100_000, 50);
        let running = Arc::new(AtomicBool::new(true));

        let misuser = {
            let (wg, running) = (Arc::clone(&wg), Arc::clone(&running));
            thread::spawn(move || {
                let (mut panicked, mut applied) = (0_usize, 0_usize);
                while running.load(Ordering::SeqCst) {
                    match panic::catch_unwind(AssertUnwindSafe(|| wg.done())) {
                        Ok(()) => applied += 1, // took a count the worker had added
                        Err(_) => panicked += 1,
                    }
                }
                (panicked, applied)
            })
        };
        let worker = {
            let wg = Arc::clone(&wg);
            thread::spawn(move || {
                let mut stolen = 0_usize;
                for _ in 0..rounds {
                    wg.add(1);
                    // The misuser may have taken our count: then our `done` is the extra one.
                    if panic::catch_unwind(AssertUnwindSafe(|| wg.done())).is_err() {
                        stolen += 1;
                    }
                }
                stolen
            })
        };
        let stolen = join_within(worker);
        running.store(false, Ordering::SeqCst);
        let (panicked, applied) = join_within(misuser);
        // Each count the misuser took made exactly one of the worker's `done`s the extra one, and
        // nothing else changed the counter.
        assert_eq!(
            (stolen, wg.count()),
            (applied, 0),
            "((worker's dones that panicked, final count), (misuser's dones applied, 0)); {panicked} \
             misuses panicked"
        );
    });
}
