//! Public behaviour of `Semaphore`.
//!
//! Ported behaviours from x/sync's `semaphore/semaphore_test.go`, in our own code:
//! `TestWeighted` (many threads hammering acquire/release of their own weights),
//! `TestWeightedPanic` (releasing what was never acquired panics), `TestWeightedTryAcquire` and
//! `TestWeightedAcquire` (the same acquire/try sequence, with a timed acquire for the second),
//! `TestWeightedDoesntBlockIfTooBig` (an oversized `Acquire(ctx)` pending holds nobody back),
//! `TestLargeAcquireDoesntStarve` (a large request queued behind a stream of small ones gets
//! through) and `TestAllocCancelDoesntStarve` (x/sync's regression: a small request queued
//! behind a large one that gives up is woken). Then FIFO hand-off, the `Permit`, and hostile
//! tests: 64 threads on few cores with exact permit accounting, timeouts and cancellations
//! landing with releases, panics while holding a `Permit`, misuse on one thread while others
//! behave.
//!
//! Every test that could hang runs inside `within` / `join_within` (gosync-testkit).

#![cfg(not(gosync_loom))]

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_semaphore::{Permit, Semaphore};
use gosync_testkit::{join_within, panic_message, panic_site, scaled, wait_until, within, LIMIT};

/// Go's `TestWeighted`: thread `i` acquires and releases `i` permits, `n` threads, capacity `n`.
#[test]
fn weighted_hammer() {
    within(|| {
        let n = scaled(8, 3) as u64;
        let loops = scaled(2000, 20);
        let sem = Arc::new(Semaphore::new(n));
        let inside = Arc::new(AtomicU64::new(0));
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (sem, inside) = (sem.clone(), inside.clone());
                thread::spawn(move || {
                    for _ in 0..loops {
                        sem.acquire(i);
                        let now = inside.fetch_add(i, Ordering::SeqCst) + i;
                        assert!(now <= n, "{now} permits in use of {n}");
                        inside.fetch_sub(i, Ordering::SeqCst);
                        sem.release(i);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sem.available(), n);
    });
}

/// Go's `TestWeightedPanic`, and the state is unchanged afterwards.
#[test]
fn releasing_more_than_held_panics() {
    let sem = Semaphore::new(1);
    let payload = panic::catch_unwind(|| sem.release(1)).unwrap_err();
    assert_eq!(
        panic_message(&*payload),
        "semaphore: released more than held"
    );
    assert_eq!(sem.available(), 1);
    sem.acquire(1);
    let payload = panic::catch_unwind(|| sem.release(2)).unwrap_err();
    assert_eq!(
        panic_message(&*payload),
        "semaphore: released more than held"
    );
    assert_eq!(sem.available(), 0);
    sem.release(1);
    assert_eq!(sem.available(), 1);
}

/// The misuse panic points at the caller's line.
#[test]
fn release_panic_points_at_the_caller() {
    let sem = Semaphore::new(1);
    let expected = line!() + 1;
    let (file, line, _) = panic_site(|| sem.release(1));
    assert!(file.ends_with("semaphore.rs"), "{file}");
    assert_eq!(line, expected);
}

/// Go's `TestWeightedTryAcquire`.
#[test]
fn try_acquire_sequence() {
    let sem = Semaphore::new(2);
    sem.acquire(1);
    let mut tries = vec![sem.try_acquire(1), sem.try_acquire(1)];
    sem.release(2);
    tries.push(sem.try_acquire(1));
    sem.acquire(1);
    tries.push(sem.try_acquire(1));
    assert_eq!(tries, [true, false, true, false]);
}

/// Go's `TestWeightedAcquire`: the same, with a timed acquire (a context with a timeout, and
/// `try_acquire_for`).
#[test]
fn timed_acquire_sequence() {
    let sem = Semaphore::new(2);
    // Long enough for the acquire that should succeed not to find its context already done
    // (which fails at once, by Go's rule) on a slow machine or under miri.
    let by_ctx = |timeout| {
        let (ctx, _cancel) = Context::background().with_timeout(timeout);
        sem.acquire_ctx(&ctx, 1).is_ok()
    };
    let (long, short) = (Duration::from_secs(600), Duration::from_millis(10));
    sem.acquire(1);
    let mut tries = vec![by_ctx(long), by_ctx(short)];
    sem.release(2);
    tries.push(sem.try_acquire_for(1, Duration::from_millis(10)));
    sem.acquire(1);
    tries.push(sem.try_acquire_for(1, Duration::from_millis(10)));
    assert_eq!(tries, [true, false, true, false]);
    sem.release(2);
    assert_eq!(sem.available(), 2);
}

/// Go's `TestWeightedDoesntBlockIfTooBig`: an oversized `acquire_ctx` waits for its context
/// without holding back anyone, and returns the context's error.
#[test]
fn oversized_acquire_ctx_holds_nobody_back() {
    within(|| {
        let sem = Arc::new(Semaphore::new(2));
        let (ctx, cancel) = Context::background().with_cancel();
        let big = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_ctx(&ctx, 3))
        };
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let sem = sem.clone();
                thread::spawn(move || {
                    for _ in 0..scaled(100, 5) {
                        sem.acquire_ctx(&Context::background(), 1).unwrap();
                        sem.release(1);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        cancel.cancel();
        assert_eq!(big.join().unwrap(), Err(ContextError::Canceled));
        assert_eq!(sem.available(), 2);
    });
}

/// Oversized requests: `try_*` fail at once, `acquire` panics naming both numbers.
#[test]
fn oversized_requests() {
    let sem = Semaphore::new(2);
    assert!(!sem.try_acquire(3));
    let start = Instant::now();
    assert!(!sem.try_acquire_for(3, Duration::from_secs(60)));
    assert!(!sem.try_acquire_until(3, Instant::now() + Duration::from_secs(60)));
    assert!(start.elapsed() < Duration::from_secs(30));
    let payload = panic::catch_unwind(|| sem.acquire(3)).unwrap_err();
    let message = panic_message(&*payload);
    assert!(message.contains('3') && message.contains('2'), "{message}");
    assert!(message.starts_with("semaphore: "), "{message}");
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(1));
    assert_eq!(
        sem.acquire_ctx(&ctx, 3),
        Err(ContextError::DeadlineExceeded)
    );
    assert_eq!(sem.available(), 2);
}

/// Go's `TestLargeAcquireDoesntStarve`: small holders keep releasing and re-acquiring; a large
/// request for everything must still get through (it queues, and the small ones queue behind
/// it).
#[test]
fn large_acquire_does_not_starve() {
    within(|| {
        let n = scaled(4, 2) as u64;
        let sem = Arc::new(Semaphore::new(n));
        let running = Arc::new(AtomicBool::new(true));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                sem.acquire(1);
                let (sem, running) = (sem.clone(), running.clone());
                thread::spawn(move || {
                    while running.load(Ordering::Relaxed) {
                        sem.release(1);
                        sem.acquire(1);
                    }
                    sem.release(1);
                })
            })
            .collect();
        sem.acquire(n);
        running.store(false, Ordering::Relaxed);
        sem.release(n);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sem.available(), n);
    });
}

/// Go's `TestAllocCancelDoesntStarve` (x/sync's regression): one permit held, a request for
/// all ten queues, a request for one queues behind it; when the large one gives up, the small
/// one must be woken, since the nine free permits now cover it.
#[test]
fn a_cancelled_head_wakes_the_waiters_behind_it() {
    for by_timeout in [false, true] {
        within(move || {
            let sem = Arc::new(Semaphore::new(10));
            sem.acquire(1);
            let (ctx, cancel) = Context::background().with_cancel();
            let large = {
                let sem = sem.clone();
                thread::spawn(move || {
                    if by_timeout {
                        sem.try_acquire_for(10, Duration::from_secs(1))
                    } else {
                        sem.acquire_ctx(&ctx, 10).is_ok()
                    }
                })
            };
            wait_until(|| sem.queued() == 1);
            let small = {
                let sem = sem.clone();
                thread::spawn(move || {
                    sem.acquire(1);
                    sem.release(1);
                })
            };
            wait_until(|| sem.queued() == 2);
            cancel.cancel();
            assert!(!large.join().unwrap());
            small.join().unwrap();
            sem.release(1);
            assert_eq!(sem.available(), 10);
        });
    }
}

/// Waiters are served in arrival order, a large head holds back smaller requests behind it,
/// and `try_acquire` fails while anyone is queued even when enough is free.
#[test]
fn fifo_hand_off_and_no_barging() {
    within(|| {
        let sem = Arc::new(Semaphore::new(4));
        sem.acquire(4);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (i, n) in [(0, 3), (1, 1), (2, 2), (3, 1)] {
            let (sem2, order2) = (sem.clone(), order.clone());
            handles.push(thread::spawn(move || {
                sem2.acquire(n);
                order2.lock().unwrap().push(i);
            }));
            wait_until(|| sem.queued() == i + 1);
        }
        sem.release(2);
        // 2 free, the head wants 3: nobody moves, and nobody may barge in.
        assert!(!sem.try_acquire(1));
        assert!(!sem.try_acquire(0));
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.queued(), 4);
        sem.release(2);
        // 4 free: the head takes 3, the next takes 1, the third (2) does not fit.
        wait_until(|| order.lock().unwrap().len() == 2);
        order.lock().unwrap().sort_unstable();
        assert_eq!(*order.lock().unwrap(), [0, 1]);
        assert_eq!(sem.queued(), 2);
        assert_eq!(sem.available(), 0);
        sem.release(4);
        for h in handles {
            h.join().unwrap();
        }
        order.lock().unwrap().sort_unstable();
        assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3]);
        assert_eq!(sem.available(), 1);
        sem.release(3);
        assert!(sem.try_acquire(4));
    });
}

/// A context that is already done fails at once, even when the permits are free.
#[test]
fn done_context_fails_at_once() {
    let sem = Semaphore::new(1);
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(sem.acquire_ctx(&ctx, 1), Err(ContextError::Canceled));
    let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
    assert_eq!(
        sem.acquire_ctx(&ctx, 1),
        Err(ContextError::DeadlineExceeded)
    );
    assert_eq!(sem.available(), 1);
}

/// A zero timeout or a past deadline takes what is free and otherwise fails at once.
#[test]
fn zero_timeouts() {
    let sem = Semaphore::new(1);
    assert!(sem.try_acquire_for(1, Duration::ZERO));
    assert!(!sem.try_acquire_for(1, Duration::ZERO));
    assert!(!sem.try_acquire_until(1, Instant::now() - Duration::from_millis(1)));
    sem.release(1);
    assert!(sem.try_acquire_until(1, Instant::now()));
    sem.release(1);
}

/// A `Permit` releases on drop, also during a panic; `forget` keeps the permits taken. (Nothing
/// here blocks, so no `within`: a panic is slow under miri.)
#[test]
fn permits_release_on_drop_and_unwind() {
    let sem = Arc::new(Semaphore::new(3));
    let panicked = {
        let sem = sem.clone();
        thread::spawn(move || {
            let _permit = sem.try_acquire_permit(2).expect("free");
            panic!("worker failed");
        })
        .join()
    };
    assert!(panicked.is_err());
    assert_eq!(sem.available(), 3);
    let permit: Permit<'_> = sem
        .try_acquire_permit(2)
        .expect("released during the unwind");
    assert_eq!(format!("{permit:?}"), "Permit { permits: 2, .. }");
    assert!(sem.try_acquire_permit(2).is_none());
    permit.forget();
    assert_eq!(sem.available(), 1);
    sem.release(2);
    assert!(format!("{sem:?}").contains("capacity: 3"));
}

/// A bound for a wait on a thread that panics: unwinding (with a backtrace) takes minutes under
/// miri on a loaded machine.
fn patient_limit() -> Duration {
    if cfg!(miri) {
        LIMIT * 30
    } else {
        LIMIT
    }
}

/// A holder panicking with a thread queued behind it: the unwind's release wakes the waiter.
/// (Bounded by the waiter's own timeout rather than `within`: a panic is slow under miri.)
#[test]
fn a_panic_while_holding_a_permit_wakes_the_waiter() {
    let sem = Arc::new(Semaphore::new(1));
    let holder_has_it = Arc::new(AtomicBool::new(false));
    let holder = {
        let (sem, has) = (sem.clone(), holder_has_it.clone());
        thread::spawn(move || {
            let _permit = sem.try_acquire_permit(1).expect("free");
            has.store(true, Ordering::SeqCst);
            wait_until(|| sem.queued() == 1);
            panic!("holder failed");
        })
    };
    wait_until(|| holder_has_it.load(Ordering::SeqCst));
    assert!(
        sem.try_acquire_for(1, patient_limit()),
        "the unwind's release did not wake the waiter"
    );
    assert!(holder.join().is_err());
    sem.release(1);
    assert_eq!(sem.available(), 1);
}

/// 64 threads (more than the cores) with mixed weights and every kind of acquire, some giving
/// up by timeout or cancellation while others release, some panicking while holding a
/// `Permit`: at the end every permit is back, and the count in use never exceeded the
/// capacity.
#[test]
fn hostile_mixed_load_keeps_exact_accounting() {
    within(|| {
        const CAPACITY: u64 = 5;
        let threads = scaled(64, 4);
        let rounds = scaled(200, 4);
        let sem = Arc::new(Semaphore::new(CAPACITY));
        let in_use = Arc::new(AtomicU64::new(0));
        let acquired = Arc::new(AtomicUsize::new(0));
        let gave_up = Arc::new(AtomicUsize::new(0));
        let (ctx, cancel) = Context::background().with_cancel();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (sem, in_use) = (sem.clone(), in_use.clone());
                let (acquired, gave_up, ctx) = (acquired.clone(), gave_up.clone(), ctx.clone());
                thread::spawn(move || {
                    for r in 0..rounds {
                        let n = 1 + ((t + r) % 3) as u64;
                        let got = match (t + r) % 5 {
                            0 => {
                                sem.acquire(n);
                                true
                            }
                            1 => sem.try_acquire(n),
                            2 => sem.try_acquire_for(n, Duration::from_micros(50)),
                            3 => sem.acquire_ctx(&ctx, n).is_ok(),
                            _ => {
                                let result = panic::catch_unwind(AssertUnwindSafe(|| {
                                    let _permit = sem.acquire_permit(n);
                                    let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
                                    assert!(now <= CAPACITY);
                                    in_use.fetch_sub(n, Ordering::SeqCst);
                                    // Not under miri, where each unwind takes seconds;
                                    // the other panic tests cover it there.
                                    if r % 2 == 0 && !cfg!(miri) {
                                        panic!("holder failed");
                                    }
                                }));
                                assert_eq!(result.is_err(), r % 2 == 0 && !cfg!(miri));
                                acquired.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                        };
                        if got {
                            let now = in_use.fetch_add(n, Ordering::SeqCst) + n;
                            assert!(now <= CAPACITY, "{now} in use of {CAPACITY}");
                            in_use.fetch_sub(n, Ordering::SeqCst);
                            sem.release(n);
                            acquired.fetch_add(1, Ordering::Relaxed);
                        } else {
                            gave_up.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        // Cancel mid-run: every acquire_ctx from then on fails, the queued ones leave.
        wait_until(|| acquired.load(Ordering::Relaxed) >= threads * rounds / 4);
        cancel.cancel();
        for h in handles {
            join_within(h);
        }
        assert_eq!(
            acquired.load(Ordering::Relaxed) + gave_up.load(Ordering::Relaxed),
            threads * rounds
        );
        assert_eq!(in_use.load(Ordering::SeqCst), 0);
        assert_eq!(sem.available(), CAPACITY);
        assert_eq!(sem.queued(), 0);
        assert!(sem.try_acquire(CAPACITY));
    });
}

/// Timeouts landing at the same moment as releases: the waiter either got its permits (and
/// gives them back) or not, never half; nothing is lost.
#[test]
fn timeouts_racing_releases_lose_nothing() {
    within(|| {
        let sem = Arc::new(Semaphore::new(2));
        let rounds = scaled(300, 20);
        for _ in 0..rounds {
            sem.acquire(2);
            let waiter = {
                let sem = sem.clone();
                thread::spawn(move || {
                    let got = sem.try_acquire_for(2, Duration::from_micros(20));
                    if got {
                        sem.release(2);
                    }
                })
            };
            thread::yield_now();
            sem.release(2);
            waiter.join().unwrap();
            assert_eq!(sem.available(), 2);
        }
    });
}

/// Misuse on one thread (an over-release) while others behave: the panic changes nothing.
/// (Nothing here can block, so no `within`: a panic is slow under miri.)
#[test]
fn misuse_on_one_thread_while_others_behave() {
    let sem = Arc::new(Semaphore::new(3));
    let rounds = scaled(2000, 10);
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let sem = sem.clone();
            thread::spawn(move || {
                for _ in 0..rounds {
                    // Three workers, three permits: never blocks.
                    assert!(sem.try_acquire_permit(1).is_some());
                }
            })
        })
        .collect();
    for _ in 0..scaled(100, 2) {
        // With three workers holding at most one each, releasing 4 is always too many.
        assert!(panic::catch_unwind(|| sem.release(4)).is_err());
    }
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(sem.available(), 3);
}

/// The permit forms of the timed and cancellable acquires: free at once with a zero timeout or
/// a past deadline, `None` at once when busy, and a done context fails at once even when free.
#[test]
fn permit_variants_at_once() {
    let sem = Semaphore::new(2);
    let first = sem
        .try_acquire_permit_for(1, Duration::ZERO)
        .expect("free at once");
    let second = sem
        .try_acquire_permit_until(1, Instant::now() - Duration::from_millis(1))
        .expect("free at once, though the deadline is past");
    assert_eq!((first.permits(), second.permits()), (1, 1));
    assert!(sem.try_acquire_permit_for(1, Duration::ZERO).is_none());
    assert!(sem.try_acquire_permit_until(1, Instant::now()).is_none());
    drop((first, second));
    assert_eq!(sem.available(), 2);
    assert!(sem.try_acquire_permit_for(3, LIMIT).is_none(), "oversized");
    assert!(sem
        .try_acquire_permit_until(3, Instant::now() + LIMIT)
        .is_none());

    let (ctx, cancel) = Context::background().with_cancel();
    let permit = sem.acquire_permit_ctx(&ctx, 2).expect("free");
    assert_eq!((permit.permits(), sem.available()), (2, 0));
    drop(permit);
    cancel.cancel();
    let err = sem.acquire_permit_ctx(&ctx, 1).unwrap_err();
    assert_eq!(err, ContextError::Canceled, "the cancellation came first");
    let (ctx, _cancel) = Context::background().with_deadline(Instant::now());
    let err = sem.acquire_permit_ctx(&ctx, 1).unwrap_err();
    assert_eq!(err, ContextError::DeadlineExceeded);
    assert_eq!(sem.available(), 2, "a failed acquire holds nothing");
}

/// Each permit form waits in the queue and is handed its permits by a release; a cancelled or
/// timed-out one leaves the queue holding nothing, and the waiter behind it gets through.
#[test]
fn permit_variants_wait_and_give_up_holding_nothing() {
    within(|| {
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.acquire_permit(2);
        let waiters: Vec<thread::JoinHandle<u64>> = vec![
            spawn_acquirer(&sem, |sem| {
                sem.try_acquire_permit_for(1, LIMIT).map(|p| p.permits())
            }),
            spawn_acquirer(&sem, |sem| {
                let deadline = Instant::now() + LIMIT;
                sem.try_acquire_permit_until(1, deadline)
                    .map(|p| p.permits())
            }),
        ];
        wait_until(|| sem.queued() == 2);
        drop(held);
        let taken: u64 = waiters.into_iter().map(join_within).sum();
        assert_eq!(taken, 2);
        assert_eq!(sem.available(), 2);

        let held = sem.acquire_permit(2);
        let (ctx, cancel) = Context::background().with_cancel();
        let cancelled = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire_permit_ctx(&ctx, 2).map(|p| p.permits()))
        };
        wait_until(|| sem.queued() == 1);
        let timed = {
            let sem = sem.clone();
            thread::spawn(move || {
                sem.try_acquire_permit_for(2, Duration::from_millis(5))
                    .map(|p| p.permits())
            })
        };
        let behind = spawn_acquirer(&sem, |sem| {
            let (ctx, _cancel) = Context::background().with_timeout(LIMIT);
            sem.acquire_permit_ctx(&ctx, 1).ok().map(|p| p.permits())
        });
        assert_eq!(join_within(timed), None);
        wait_until(|| sem.queued() == 2);
        cancel.cancel();
        assert_eq!(join_within(cancelled), Err(ContextError::Canceled));
        assert_eq!(sem.queued(), 1);
        drop(held);
        assert_eq!(join_within(behind), 1);
        assert_eq!(sem.queued(), 0);
        assert_eq!(sem.available(), 2, "nothing held or leaked");
    });
}

/// A thread running `acquire` on `sem`, returning the permits it held (0 when it got none).
fn spawn_acquirer(
    sem: &Arc<Semaphore>,
    acquire: impl FnOnce(&Semaphore) -> Option<u64> + Send + 'static,
) -> thread::JoinHandle<u64> {
    let sem = sem.clone();
    thread::spawn(move || acquire(&sem).unwrap_or(0))
}

/// A timed permit acquire whose timeout lands with the release: whether it got the permit or
/// not, nothing is lost.
#[test]
fn permit_timeouts_racing_releases_lose_nothing() {
    within(|| {
        let sem = Arc::new(Semaphore::new(1));
        for round in 0..scaled(300, 20) {
            let held = sem.acquire_permit(1);
            let waiter = spawn_acquirer(&sem, move |sem| {
                let timeout = Duration::from_micros(10 + round as u64 % 30);
                sem.try_acquire_permit_for(1, timeout).map(|p| p.permits())
            });
            thread::yield_now();
            drop(held);
            assert!(join_within(waiter) <= 1);
            assert_eq!(sem.available(), 1);
            assert_eq!(sem.queued(), 0);
        }
    });
}

/// `Semaphore::new`'s capacity panic points at the caller's line and names the limit.
#[test]
fn an_oversized_capacity_panics_at_the_caller() {
    let capacity = std::hint::black_box(1u64 << 63);
    let expected = line!() + 1;
    let (file, line, message) = panic_site(|| drop(Semaphore::new(capacity)));
    assert!(message.contains("2^63 - 1"), "{message}");
    assert!(file.ends_with("semaphore.rs"), "{file}");
    assert_eq!(line, expected);
    assert_eq!(Semaphore::new((1 << 63) - 1).capacity(), (1 << 63) - 1);
}
