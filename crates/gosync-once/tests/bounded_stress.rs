//! Stress: bounded and context waits racing inits that succeed, fail or panic. Every
//! function given back must be unrun; at most one init succeeds; nothing hangs.

// Thousands of threads and timed waits: too slow for miri, which runs the smaller tests of
// every bounded wait.
#![cfg(not(any(gosync_loom, miri)))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use gosync_context::Context;
use gosync_once::OnceCell;
use gosync_testkit::within;

#[test]
fn bounded_waits_racing_failing_and_panicking_inits() {
    within(|| {
        gosync_testkit::quiet_panics("init panics", || {
            for round in 0..300u32 {
                let cell = Arc::new(OnceCell::<u32>::new());
                let ran = Arc::new(AtomicUsize::new(0));
                let succeeded = Arc::new(AtomicUsize::new(0));
                let threads: Vec<_> = (0..6u32)
                    .map(|i| {
                        let (cell, ran, succeeded) = (cell.clone(), ran.clone(), succeeded.clone());
                        thread::spawn(move || {
                            let (ctx, cancel) = Context::background().with_cancel();
                            let f = {
                                let (ran, succeeded) = (ran.clone(), succeeded.clone());
                                move || -> Result<u32, ()> {
                                    ran.fetch_add(1, Ordering::SeqCst);
                                    thread::yield_now();
                                    match (i + round) % 3 {
                                        0 => Err(()),
                                        1 if i % 2 == 0 => panic!("init panics"),
                                        _ => {
                                            succeeded.fetch_add(1, Ordering::SeqCst);
                                            Ok(i)
                                        }
                                    }
                                }
                            };
                            let got = panic::catch_unwind(AssertUnwindSafe(|| match i % 4 {
                                0 => cell
                                    .try_get_or_try_init_for(Duration::from_micros(50), f)
                                    .map(|r| r.copied())
                                    .map_err(|_| ()),
                                1 => cell
                                    .try_get_or_try_init(f)
                                    .map(|r| r.copied())
                                    .map_err(|_| ()),
                                2 => {
                                    if i % 3 == 0 {
                                        cancel.cancel();
                                    }
                                    let c2 = cancel.clone();
                                    let t = thread::spawn(move || c2.cancel());
                                    let r = cell
                                        .get_or_try_init_ctx(&ctx, f)
                                        .map(|r| r.copied())
                                        .map_err(|_| ());
                                    t.join().unwrap();
                                    r
                                }
                                _ => Ok(cell.get_or_try_init(f).copied()),
                            }));
                            drop(cancel);
                            got
                        })
                    })
                    .collect();
                for t in threads {
                    let _ = t.join().unwrap();
                }
                assert!(succeeded.load(Ordering::SeqCst) <= 1, "two inits succeeded");
                if succeeded.load(Ordering::SeqCst) == 1 {
                    assert!(cell.get().is_some());
                } else {
                    assert!(cell.get().is_none());
                }
                assert!(!cell.has_sleepers(), "PARKED left set");
            }
        })
    });
}

/// An init that panics while bounded and context waiters sleep behind it wakes them all; one of
/// them runs its own function, the rest get its value.
#[test]
fn a_panicking_init_wakes_bounded_and_ctx_sleepers() {
    within(|| {
        let cell = Arc::new(OnceCell::<u32>::new());
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (in_tx, in_rx) = std::sync::mpsc::channel::<()>();
        let runner = {
            let cell = cell.clone();
            thread::spawn(move || {
                panic::catch_unwind(AssertUnwindSafe(|| {
                    cell.get_or_init(|| {
                        in_tx.send(()).unwrap();
                        go_rx.recv().unwrap();
                        panic!("init panics");
                    })
                }))
                .is_err()
            })
        };
        in_rx.recv().unwrap();
        let ran = Arc::new(AtomicUsize::new(0));
        let (ctx, _cancel) = Context::background().with_cancel();
        let waiters: Vec<_> = (0..4u32)
            .map(|i| {
                let (cell, ran, ctx) = (cell.clone(), ran.clone(), ctx.clone());
                thread::spawn(move || {
                    let f = move || {
                        ran.fetch_add(1, Ordering::SeqCst);
                        10 + i
                    };
                    match i % 2 {
                        0 => cell
                            .try_get_or_init_for(Duration::from_secs(3600), f)
                            .ok()
                            .copied(),
                        _ => cell.get_or_init_ctx(&ctx, f).ok().copied(),
                    }
                })
            })
            .collect();
        gosync_testkit::wait_until(|| cell.has_sleepers());
        gosync_testkit::quiet_panics("init panics", || {
            go_tx.send(()).unwrap();
            assert!(gosync_testkit::join_within(runner));
        });
        let got: Vec<_> = waiters
            .into_iter()
            .map(gosync_testkit::join_within)
            .collect();
        let value = *cell.get().expect("a waiter initialised the cell");
        assert!(got.iter().all(|g| *g == Some(value)), "{got:?}");
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    });
}
