//! Public behaviour of `WaitGroup`.
//!
//! Ported behaviours from Go's `src/sync/waitgroup_test.go`: `TestWaitGroup` (two phases of
//! workers, each phase released only when all are done, the group reused), `TestWaitGroupMisuse`
//! (a negative counter panics with Go's text), `TestWaitGroupRace` (done racing wait), and
//! `TestWaitGroupGo` (`Go` + `Wait`), rewritten in our own code; plus the timeout, context and
//! panic-carrying additions.
//!
//! Every test that could hang runs inside `within` (from `gosync-testkit`), which fails it after
//! a generous limit instead of hanging the run.

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_testkit::{panic_message, panic_site, scaled, within, LIMIT};
use gosync_waitgroup::{GoPanics, WaitGroup};

/// Go's `testWaitGroup`: `n` workers check in on one group, then wait on a second group that
/// the main thread releases; the first group must not be released before all check in.
fn two_phases(wg1: &Arc<WaitGroup>, wg2: &Arc<WaitGroup>) {
    let n = scaled(16, 4);
    wg1.add(n as isize);
    wg2.add(n as isize);
    let exited = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for _ in 0..n {
        let (wg1, wg2, exited, tx) = (wg1.clone(), wg2.clone(), exited.clone(), tx.clone());
        thread::spawn(move || {
            wg1.done();
            wg2.wait();
            exited.fetch_add(1, Ordering::Relaxed);
            tx.send(()).unwrap();
        });
    }
    wg1.wait();
    // Every worker checked in; none can have passed wg2.
    assert_eq!(
        exited.load(Ordering::Relaxed),
        0,
        "wg2 released before wg2.done"
    );
    for _ in 0..n {
        wg2.done();
    }
    for _ in 0..n {
        rx.recv_timeout(LIMIT)
            .expect("a worker did not leave wg2.wait");
    }
}

#[test]
fn two_phases_and_reuse() {
    within(|| {
        let wg1 = Arc::new(WaitGroup::new());
        let wg2 = Arc::new(WaitGroup::new());
        // Run the same test a few times to ensure that the groups can be reused.
        for _ in 0..scaled(8, 2) {
            two_phases(&wg1, &wg2);
        }
    });
}

#[test]
fn negative_counter_panics_with_gos_text() {
    let wg = WaitGroup::new();
    wg.add(1);
    wg.done();
    let caught = panic::catch_unwind(|| wg.done()).unwrap_err();
    assert_eq!(panic_message(&*caught), "sync: negative WaitGroup counter");
    let caught = panic::catch_unwind(|| wg.add(-5)).unwrap_err();
    assert_eq!(panic_message(&*caught), "sync: negative WaitGroup counter");
    let caught = panic::catch_unwind(|| wg.add(isize::MIN)).unwrap_err();
    assert_eq!(panic_message(&*caught), "sync: negative WaitGroup counter");
    // The counter is left at zero and the group still works.
    assert_eq!(wg.count(), 0);
    wg.add(1);
    wg.done();
    wg.wait();
}

#[test]
fn overflow_panics() {
    let wg = WaitGroup::new();
    wg.add(i32::MAX as isize);
    let caught = panic::catch_unwind(|| wg.add(1)).unwrap_err();
    assert_eq!(panic_message(&*caught), "sync: WaitGroup counter overflow");
    assert_eq!(wg.count(), i32::MAX as usize);
}

#[test]
fn zero_counter_waits_return_at_once() {
    let wg = WaitGroup::default();
    wg.wait();
    assert!(wg.wait_for(Duration::ZERO));
    assert_eq!(wg.wait_ctx(&Context::background()), Ok(()));
    assert_eq!(wg.count(), 0);
}

#[test]
fn wait_for_times_out() {
    let wg = WaitGroup::new();
    wg.add(1);
    assert!(!wg.wait_for(Duration::ZERO));
    assert!(!wg.wait_for(Duration::from_millis(20)));
    assert_eq!(wg.count(), 1);
    wg.done();
    assert!(wg.wait_for(Duration::ZERO));
}

#[test]
fn wait_for_released_by_done() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let worker = {
            let wg = wg.clone();
            thread::spawn(move || wg.done())
        };
        assert!(wg.wait_for(Duration::from_secs(60)));
        worker.join().unwrap();
    });
}

#[test]
fn wait_ctx_already_done_fails_at_once() {
    let wg = WaitGroup::new();
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    // Even with a zero counter: the cancellation came first.
    assert_eq!(wg.wait_ctx(&ctx), Err(ContextError::Canceled));
    let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
    assert_eq!(wg.wait_ctx(&ctx), Err(ContextError::DeadlineExceeded));
}

#[test]
fn wait_ctx_cancelled_from_another_thread() {
    within(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let (ctx, cancel) = Context::background().with_cancel();
        let canceller = thread::spawn(move || cancel.cancel());
        assert_eq!(wg.wait_ctx(&ctx), Err(ContextError::Canceled));
        canceller.join().unwrap();
        assert_eq!(wg.count(), 1);
        // The group is not disturbed.
        wg.done();
        wg.wait();
    });
}

#[test]
fn wait_ctx_deadline() {
    within(|| {
        let wg = WaitGroup::new();
        wg.add(1);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
        assert_eq!(wg.wait_ctx(&ctx), Err(ContextError::DeadlineExceeded));
    });
}

#[test]
fn wait_ctx_released_by_done() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(2);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_secs(60));
        for _ in 0..2 {
            let wg = wg.clone();
            thread::spawn(move || wg.done());
        }
        assert_eq!(wg.wait_ctx(&ctx), Ok(()));
    });
}

#[test]
fn go_and_wait() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        let hits = Arc::new(AtomicUsize::new(0));
        let n = scaled(32, 4);
        for _ in 0..n {
            let hits = hits.clone();
            wg.go(move || {
                hits.fetch_add(1, Ordering::Relaxed);
            });
        }
        wg.wait();
        assert_eq!(hits.load(Ordering::Relaxed), n);
        assert_eq!(wg.count(), 0);
    });
}

#[test]
fn go_panic_is_reraised_by_wait_once() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        let hits = Arc::new(AtomicUsize::new(0));
        wg.go(|| panic!("task exploded"));
        for _ in 0..3 {
            let hits = hits.clone();
            wg.go(move || {
                hits.fetch_add(1, Ordering::Relaxed);
            });
        }
        let caught = panic::catch_unwind(AssertUnwindSafe(|| wg.wait())).unwrap_err();
        assert_eq!(panic_message(&*caught), "task exploded");
        // Every task finished (done ran for the panicking one too).
        assert_eq!(hits.load(Ordering::Relaxed), 3);
        assert_eq!(wg.count(), 0);
        // Handed over once.
        wg.wait();
        assert!(wg.wait_for(Duration::ZERO));
    });
}

#[test]
fn go_panic_reaches_wait_for_and_wait_ctx() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.go(|| panic!("one"));
        let caught = panic::catch_unwind(AssertUnwindSafe(|| wg.wait_for(Duration::from_secs(60))))
            .unwrap_err();
        assert_eq!(panic_message(&*caught), "one");
        wg.go(|| panic!("two"));
        let ctx = Context::background();
        let caught = panic::catch_unwind(AssertUnwindSafe(|| wg.wait_ctx(&ctx))).unwrap_err();
        assert_eq!(panic_message(&*caught), "two");
        assert_eq!(wg.wait_ctx(&ctx), Ok(()));
    });
}

#[test]
fn many_waiters_all_released() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let waiters: Vec<_> = (0..scaled(8, 3))
            .map(|i| {
                let wg = wg.clone();
                thread::spawn(move || match i % 3 {
                    0 => wg.wait(),
                    1 => assert!(wg.wait_for(Duration::from_secs(60))),
                    _ => assert_eq!(wg.wait_ctx(&Context::background()), Ok(())),
                })
            })
            .collect();
        wg.done();
        for w in waiters {
            w.join().unwrap();
        }
    });
}

#[test]
fn stress_done_races_wait() {
    within(|| {
        let rounds = scaled(2000, 10);
        let wg = Arc::new(WaitGroup::new());
        let sum = Arc::new(AtomicUsize::new(0));
        for round in 0..rounds {
            wg.add(2);
            for _ in 0..2 {
                let (wg, sum) = (wg.clone(), sum.clone());
                thread::spawn(move || {
                    sum.fetch_add(1, Ordering::Relaxed);
                    wg.done();
                });
            }
            if round % 2 == 0 {
                wg.wait();
            } else {
                while !wg.wait_for(Duration::from_micros(50)) {}
            }
            // Every done's write is visible once wait returns.
            assert_eq!(sum.load(Ordering::Relaxed), 2 * (round + 1));
        }
    });
}

#[test]
fn stress_many_done_one_wait() {
    within(|| {
        let per_worker = scaled(20_000, 20);
        let wg = Arc::new(WaitGroup::new());
        wg.add(2 * per_worker as isize);
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let wg = wg.clone();
                thread::spawn(move || {
                    for _ in 0..per_worker {
                        wg.done();
                    }
                })
            })
            .collect();
        wg.wait();
        assert_eq!(wg.count(), 0);
        for w in workers {
            w.join().unwrap();
        }
    });
}

/// Waits (bounded) until a thread is parked in a wait on `wg`: its `Debug` shows the waiters'
/// mark, which a waiter sets under the queue lock as it queues.
fn until_waiting(wg: &WaitGroup) {
    gosync_testkit::wait_until(|| format!("{wg:?}").contains("waiters: true"));
}

#[test]
fn wait_until_checks_at_once_when_the_deadline_is_past() {
    let wg = WaitGroup::new();
    assert!(wg.wait_until(Instant::now()));
    wg.add(1);
    assert!(!wg.wait_until(Instant::now()));
    assert!(!wg.wait_until(Instant::now() + Duration::from_millis(5)));
    assert_eq!(wg.count(), 1);
    wg.done();
    assert!(wg.wait_until(Instant::now()));
}

#[test]
fn wait_until_released_by_done_mid_wait() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let waiter = {
            let wg = wg.clone();
            thread::spawn(move || wg.wait_until(Instant::now() + LIMIT * 2))
        };
        until_waiting(&wg);
        wg.done();
        assert!(waiter.join().unwrap());
        assert_eq!(
            format!("{wg:?}"),
            "WaitGroup { count: 0, waiters: false, panicked: false }"
        );
    });
}

#[test]
fn wait_ctx_cancelled_mid_wait_leaves_the_count_alone() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(3);
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let wg = wg.clone();
            thread::spawn(move || wg.wait_ctx(&ctx))
        };
        until_waiting(&wg);
        cancel.cancel();
        assert_eq!(waiter.join().unwrap(), Err(ContextError::Canceled));
        // The last waiter left: the mark is gone, and the count is as it was.
        assert_eq!(
            format!("{wg:?}"),
            "WaitGroup { count: 3, waiters: false, panicked: false }"
        );
        for _ in 0..3 {
            wg.done();
        }
        wg.wait();
    });
}

#[test]
fn several_go_panics_are_carried_with_their_count() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        let n = 4;
        for i in 0..n {
            wg.go(move || panic!("task {i} failed"));
        }
        wg.go(|| {});
        let caught = panic::catch_unwind(AssertUnwindSafe(|| wg.wait())).unwrap_err();
        let panics = caught
            .downcast::<GoPanics>()
            .expect("several panics come as GoPanics");
        assert_eq!(panics.count(), n);
        let shown = panics.to_string();
        assert!(shown.starts_with("4 tasks started by WaitGroup::go panicked; the first: task "));
        assert!(format!("{panics:?}").contains("count: 4"));
        let first = panic_message(&*panics.into_first());
        assert!(
            first.starts_with("task ") && first.ends_with(" failed"),
            "{first}"
        );
        // All handed over at once: the next wait returns.
        wg.wait();
        // A later single panic comes with its own payload again.
        wg.go(|| panic!("alone"));
        let caught = panic::catch_unwind(AssertUnwindSafe(|| wg.wait())).unwrap_err();
        assert_eq!(panic_message(&*caught), "alone");
    });
}

#[test]
fn done_guard_runs_done_also_when_the_thread_panics() {
    within(|| {
        let wg = Arc::new(WaitGroup::new());
        let workers: Vec<_> = (0..4)
            .map(|i| {
                wg.add(1);
                let wg = wg.clone();
                thread::spawn(move || {
                    let _done = wg.done_guard();
                    if i % 2 == 0 {
                        panic!("worker {i}");
                    }
                })
            })
            .collect();
        wg.wait();
        assert_eq!(wg.count(), 0);
        let failed = workers
            .into_iter()
            .map(|w| w.join().is_err())
            .filter(|&failed| failed)
            .count();
        assert_eq!(failed, 2);
    });
}

#[test]
fn done_guard_without_add_panics_unless_already_panicking() {
    let wg = WaitGroup::new();
    let made_at = line!() + 1;
    let caught = panic::catch_unwind(AssertUnwindSafe(|| drop(wg.done_guard()))).unwrap_err();
    // A drop has no caller to point at: the message names the line that made the guard.
    let message = panic_message(&*caught);
    let expected = format!(
        "sync: negative WaitGroup counter (the DoneGuard made at {}:{made_at}:",
        file!()
    );
    assert!(message.starts_with(&expected), "{message}");
    // While unwinding, a second panic would abort: the guard leaves the counter alone instead.
    let caught = panic::catch_unwind(AssertUnwindSafe(|| {
        let _done = wg.done_guard();
        panic!("the work failed");
    }))
    .unwrap_err();
    assert_eq!(panic_message(&*caught), "the work failed");
    assert_eq!(wg.count(), 0);
    wg.add(1);
    let guard = wg.done_guard();
    assert!(format!("{guard:?}").starts_with("DoneGuard { wg: WaitGroup { count: 1"));
    drop(guard);
    assert_eq!(wg.count(), 0);
}

/// The file and line the panic of `f` names.
fn panic_location(f: impl FnOnce()) -> (String, u32) {
    let (file, line, _) = panic_site(f);
    (file, line)
}

#[test]
fn misuse_panics_name_the_callers_line() {
    let wg = Arc::new(WaitGroup::new());
    let here = |line| (file!().to_owned(), line);
    assert_eq!(panic_location(|| wg.done()), here(line!()));
    assert_eq!(panic_location(|| wg.add(-1)), here(line!()));
    assert_eq!(panic_location(|| wg.add(isize::MAX)), here(line!()));
    wg.add(i32::MAX as isize);
    assert_eq!(panic_location(|| wg.go(|| {})), here(line!()));
}
