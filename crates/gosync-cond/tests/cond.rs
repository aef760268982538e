//! Public behaviour of `Cond`.
//!
//! Ported from Go's `src/sync/cond_test.go` (behaviours, in our own code): `TestCondSignal`
//! (each signal wakes exactly one waiter), `TestCondSignalGenerations` (a signal wakes the
//! oldest waiter), `TestCondBroadcast` (rounds of broadcasts wake every waiter of the round),
//! `TestRace` (a three-thread hand-over of a counter), `TestCondSignalStealing` (a wake-up
//! meant for an earlier waiter is not stolen by a later one). Added: FIFO order of signals, a
//! signal with no waiter is lost, timed and context waits, `RwMutex` guards, one `Cond` with
//! several mutexes, and a producer/consumer stress test.
//!
//! Bounded joins and waits come from `gosync-testkit`: no wait here can hang the suite.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_cond::{Cond, Lockable};
use gosync_context::{Context, ContextError};
use gosync_mutex::Mutex;
use gosync_rwmutex::RwMutex;
use gosync_testkit::{join_within, scaled, spawn_with, LIMIT};

/// Receives within [`LIMIT`].
fn recv<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(LIMIT)
        .expect("no message within the time limit")
}

/// A mutex and a condition variable, shared.
type Shared<T> = Arc<(Mutex<T>, Cond)>;

fn shared<T>(value: T) -> Shared<T> {
    Arc::new((Mutex::new(value), Cond::new()))
}

/// Starts a thread that locks `pair`'s mutex, reports while holding it, then runs `wait` with
/// the guard and returns its result. Returns once the thread is queued on the `Cond`: the report
/// came while it held the lock, and we then took the lock, which it released only inside `wait`.
fn queue_waiter<T: Send + 'static, R: Send + 'static>(
    pair: &Shared<T>,
    wait: impl FnOnce(&Cond, &mut gosync_mutex::MutexGuard<'_, T>) -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    let (running_tx, running_rx) = mpsc::channel();
    let waiter = {
        let pair = Arc::clone(pair);
        thread::spawn(move || {
            let (mutex, cond) = &*pair;
            let mut guard = mutex.lock();
            running_tx.send(()).unwrap();
            wait(cond, &mut guard)
        })
    };
    recv(&running_rx);
    drop(pair.0.lock());
    waiter
}

/// A thread queued on `pair`'s `Cond` (see [`queue_waiter`]) that waits once and then reports
/// `id` on `awake`.
fn start_waiter(
    pair: &Shared<()>,
    id: usize,
    awake: &mpsc::Sender<usize>,
) -> thread::JoinHandle<()> {
    let awake = awake.clone();
    queue_waiter(pair, move |cond, guard| {
        cond.wait(guard);
        awake.send(id).unwrap();
    })
}

#[test]
fn each_signal_wakes_exactly_one_waiter() {
    let pair = shared(());
    let (awake_tx, awake) = mpsc::channel();
    let waiters: Vec<_> = (0..3)
        .map(|id| start_waiter(&pair, id, &awake_tx))
        .collect();
    for _ in 0..3 {
        assert!(awake.try_recv().is_err(), "a waiter woke without a signal");
        {
            let _guard = pair.0.lock();
            pair.1.signal();
        }
        recv(&awake);
        assert!(awake.try_recv().is_err(), "one signal woke two waiters");
    }
    // A signal with nobody waiting does nothing.
    pair.1.signal();
    for waiter in waiters {
        join_within(waiter);
    }
}

#[test]
fn signal_wakes_the_oldest_waiter_generations() {
    let n = scaled(50, 5);
    let pair = shared(());
    let (awake_tx, awake) = mpsc::channel();
    let mut waiters = Vec::new();
    for id in 0..n {
        waiters.push(start_waiter(&pair, id, &awake_tx));
        if id > 0 {
            assert_eq!(
                recv(&awake),
                id - 1,
                "a newer waiter took the older's signal"
            );
        }
        let _guard = pair.0.lock();
        pair.1.signal();
    }
    assert_eq!(recv(&awake), n - 1);
    for waiter in waiters {
        join_within(waiter);
    }
}

#[test]
fn signals_wake_waiters_in_fifo_order() {
    let pair = shared(());
    let (awake_tx, awake) = mpsc::channel();
    let waiters: Vec<_> = [7, 3, 5]
        .into_iter()
        .map(|id| start_waiter(&pair, id, &awake_tx))
        .collect();
    for expected in [7, 3, 5] {
        {
            let _guard = pair.0.lock();
            pair.1.signal();
        }
        assert_eq!(recv(&awake), expected);
    }
    for waiter in waiters {
        join_within(waiter);
    }
}

#[test]
fn broadcast_wakes_every_waiter_of_each_round() {
    let n = scaled(20, 3);
    let rounds = scaled(20, 2);
    // The round number; waiters of round `r` wait until it moves past `r`.
    let pair = shared(0usize);
    let (running_tx, running) = mpsc::channel();
    let (awake_tx, awake) = mpsc::channel();
    let waiters: Vec<_> = (0..n)
        .map(|id| {
            let pair = Arc::clone(&pair);
            let running_tx = running_tx.clone();
            let awake_tx = awake_tx.clone();
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                for round in 0..rounds {
                    let mut guard = mutex.lock();
                    running_tx.send(id).unwrap();
                    while *guard == round {
                        cond.wait(&mut guard);
                    }
                    awake_tx.send(round).unwrap();
                }
            })
        })
        .collect();
    for round in 0..rounds {
        for _ in 0..n {
            recv(&running);
        }
        // Every waiter of this round reported while holding the lock, and waits until we
        // change the round under the lock.
        {
            let mut guard = pair.0.lock();
            assert!(
                awake.try_recv().is_err(),
                "a waiter woke before the broadcast"
            );
            *guard += 1;
            pair.1.broadcast();
        }
        for _ in 0..n {
            assert_eq!(recv(&awake), round);
        }
    }
    for waiter in waiters {
        join_within(waiter);
    }
}

#[test]
fn broadcast_without_the_lock_wakes_everyone() {
    let pair = shared(());
    let (awake_tx, awake) = mpsc::channel();
    let waiters: Vec<_> = (0..4)
        .map(|id| start_waiter(&pair, id, &awake_tx))
        .collect();
    pair.1.broadcast();
    let mut ids: Vec<_> = (0..4).map(|_| recv(&awake)).collect();
    ids.sort_unstable();
    assert_eq!(ids, [0, 1, 2, 3]);
    for waiter in waiters {
        join_within(waiter);
    }
}

#[test]
fn race_three_threads_hand_a_counter_over() {
    for _ in 0..scaled(20, 2) {
        let pair = shared(0u32);
        let first = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                let mut x = mutex.lock();
                *x = 1;
                cond.wait(&mut x);
                assert_eq!(*x, 2, "want 2");
                *x = 3;
                cond.signal();
            })
        };
        let second = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                loop {
                    let mut x = mutex.lock();
                    if *x == 1 {
                        *x = 2;
                        cond.signal();
                        break;
                    }
                    drop(x);
                    thread::yield_now();
                }
            })
        };
        let third = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                loop {
                    let mut x = mutex.lock();
                    if *x == 2 {
                        cond.wait(&mut x);
                        assert_eq!(*x, 3, "want 3");
                        break;
                    }
                    if *x == 3 {
                        break;
                    }
                    drop(x);
                    thread::yield_now();
                }
            })
        };
        join_within(first);
        join_within(second);
        join_within(third);
    }
}

#[test]
fn a_wake_up_is_not_stolen_by_a_later_waiter() {
    for _ in 0..scaled(100, 3) {
        let pair = shared(false);
        let (tx, rx) = mpsc::channel();
        let first = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                let mut guard = mutex.lock();
                tx.send(()).unwrap();
                cond.wait(&mut guard);
                drop(guard);
                tx.send(()).unwrap();
            })
        };
        recv(&rx);
        drop(pair.0.lock());
        // The first waiter is queued. Wake it from one thread while another keeps waiting.
        let broadcaster = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || pair.1.broadcast())
        };
        let second = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                let mut done = mutex.lock();
                while !*done {
                    cond.wait(&mut done);
                }
            })
        };
        recv(&rx); // the first waiter got its wake-up
        *pair.0.lock() = true;
        pair.1.broadcast();
        join_within(broadcaster);
        join_within(second);
        join_within(first);
    }
}

#[test]
fn a_signal_with_no_waiter_is_lost() {
    let pair = shared(());
    pair.1.signal();
    pair.1.broadcast();
    let mut guard = pair.0.lock();
    let result = pair.1.wait_for(&mut guard, Duration::from_millis(20));
    assert!(result.timed_out(), "an earlier signal woke a later waiter");
}

#[test]
fn wait_for_times_out_holding_the_lock() {
    let pair = shared(5);
    let mut guard = pair.0.lock();
    assert!(pair
        .1
        .wait_for(&mut guard, Duration::from_millis(5))
        .timed_out());
    *guard += 1;
    assert!(pair.0.try_lock().is_none(), "the lock is held again");
    drop(guard);
    assert_eq!(*pair.0.lock(), 6);
}

#[test]
fn wait_for_is_woken_before_its_timeout() {
    let pair = shared(false);
    let waiter = queue_waiter(&pair, |cond, guard| {
        let result = cond.wait_for(guard, LIMIT * 6);
        (result.timed_out(), **guard)
    });
    *pair.0.lock() = true;
    pair.1.signal();
    assert_eq!(join_within(waiter), (false, true));
}

#[test]
fn wait_ctx_cancelled_from_another_thread() {
    let pair = shared(0);
    let (ctx, cancel) = Context::background().with_cancel();
    let waiter = start_waiting(&pair, move |cond, guard| cond.wait_ctx(guard, &ctx));
    cancel.cancel();
    assert_eq!(join_within(waiter), Err(ContextError::Canceled));
    assert_eq!(*pair.0.lock(), 1);
}

#[test]
fn wait_ctx_signalled_and_deadline() {
    let pair = shared(());
    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    let mut guard = pair.0.lock();
    assert_eq!(
        pair.1.wait_ctx(&mut guard, &ctx),
        Err(ContextError::DeadlineExceeded)
    );
    drop(guard);

    let waiter = queue_waiter(&pair, |cond, guard| {
        cond.wait_ctx(guard, &Context::background())
    });
    pair.1.signal();
    assert_eq!(join_within(waiter), Ok(()));
}

#[test]
fn wait_ctx_already_done_keeps_the_lock() {
    let pair = shared(());
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let mut guard = pair.0.lock();
    assert_eq!(
        pair.1.wait_ctx(&mut guard, &ctx),
        Err(ContextError::Canceled)
    );
    // The lock was never released: a thread trying it meanwhile would have got it.
    let other = {
        let pair = Arc::clone(&pair);
        thread::spawn(move || pair.0.try_lock().is_none())
    };
    assert!(join_within(other));
}

/// Waits with any guard until the flag under `lock` is set; the flag is read through `read`.
fn wait_with<G: Lockable>(cond: &Cond, guard: &mut G, read: impl Fn(&G) -> bool) {
    while !read(guard) {
        cond.wait(guard);
    }
}

#[test]
fn waits_with_rwmutex_write_and_read_guards() {
    waits_with_rwmutex_guards(false);
}

/// As above, on a lock whose readers are counted per thread: a read guard's wait moves its
/// read lock into the lock word and back.
#[test]
fn waits_with_read_guards_of_a_sharded_rwmutex() {
    waits_with_rwmutex_guards(true);
}

fn waits_with_rwmutex_guards(sharded: bool) {
    let state = Arc::new((RwMutex::new(0u32), Cond::new()));
    if sharded {
        // Two reads at once make the lock count its readers per thread from then on.
        let (first, second) = (state.0.read(), state.0.read());
        drop((first, second));
    }
    let (tx, rx) = mpsc::channel();
    let writer_waiter = {
        let state = Arc::clone(&state);
        let tx = tx.clone();
        thread::spawn(move || {
            let (lock, cond) = &*state;
            let mut guard = lock.write();
            tx.send(()).unwrap();
            wait_with(cond, &mut guard, |g| **g >= 1);
            *guard += 10; // exclusive again
        })
    };
    let reader_waiters: Vec<_> = (0..2)
        .map(|_| {
            let state = Arc::clone(&state);
            let tx = tx.clone();
            thread::spawn(move || {
                let (lock, cond) = &*state;
                let mut guard = lock.read();
                tx.send(()).unwrap();
                wait_with(cond, &mut guard, |g| **g >= 11);
                *guard
            })
        })
        .collect();
    for _ in 0..3 {
        recv(&rx);
    }
    // Each waiter reported while holding the lock; taking it for writing means each has
    // released it inside `wait`.
    *state.0.write() = 1;
    state.1.broadcast();
    join_within(writer_waiter);
    state.1.broadcast();
    for reader in reader_waiters {
        assert!(join_within(reader) >= 11);
    }
}

#[test]
fn one_cond_with_two_mutexes_at_different_times_and_at_once() {
    let cond = Arc::new(Cond::new());
    let a = Arc::new(Mutex::new(false));
    let b = Arc::new(Mutex::new(false));
    let waiter = |mutex: &Arc<Mutex<bool>>, tx: &mpsc::Sender<()>| {
        let (cond, mutex, tx) = (Arc::clone(&cond), Arc::clone(mutex), tx.clone());
        thread::spawn(move || {
            let mut guard = mutex.lock();
            tx.send(()).unwrap();
            while !*guard {
                cond.wait(&mut guard);
            }
        })
    };
    let (tx, rx) = mpsc::channel();

    // At different times: first with `a`, then with `b`.
    for mutex in [&a, &b] {
        let handle = waiter(mutex, &tx);
        recv(&rx);
        *mutex.lock() = true;
        cond.signal();
        join_within(handle);
        *mutex.lock() = false;
    }

    // At once: a broadcast wakes the waiters of both.
    let first = waiter(&a, &tx);
    recv(&rx);
    drop(a.lock());
    let second = waiter(&b, &tx);
    recv(&rx);
    drop(b.lock());
    *a.lock() = true;
    *b.lock() = true;
    cond.broadcast();
    join_within(first);
    join_within(second);
}

#[test]
fn wait_while_checks_before_waiting() {
    let pair = shared(3);
    let mut guard = pair.0.lock();
    let mut calls = 0;
    pair.1.wait_while(&mut guard, |n| {
        calls += 1;
        *n != 3
    });
    assert_eq!(calls, 1);
}

#[test]
fn stress_producers_and_consumers() {
    const CAPACITY: usize = 4;
    let per_producer = scaled(2_000, 20);
    let producers = 3;
    let consumers = 3;
    let total = per_producer * producers;
    // (queue, items taken so far), not-empty, not-full.
    let state = Arc::new((
        Mutex::new((VecDeque::new(), 0usize)),
        Cond::new(),
        Cond::new(),
    ));
    let producer_threads: Vec<_> = (0..producers)
        .map(|p| {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let (mutex, not_empty, not_full) = &*state;
                for i in 0..per_producer {
                    let mut guard = mutex.lock();
                    not_full.wait_while(&mut guard, |(queue, _)| queue.len() == CAPACITY);
                    guard.0.push_back(p * per_producer + i);
                    not_empty.signal();
                }
            })
        })
        .collect();
    let consumer_threads: Vec<_> = (0..consumers)
        .map(|_| {
            let state = Arc::clone(&state);
            thread::spawn(move || {
                let (mutex, not_empty, not_full) = &*state;
                let mut sum = 0usize;
                loop {
                    let mut guard = mutex.lock();
                    not_empty.wait_while(&mut guard, |(queue, taken)| {
                        queue.is_empty() && *taken < total
                    });
                    if guard.1 == total {
                        // Everything was taken: wake the other consumers so they see it too.
                        not_empty.broadcast();
                        return sum;
                    }
                    sum += guard.0.pop_front().unwrap();
                    guard.1 += 1;
                    not_full.signal();
                    if guard.1 == total {
                        not_empty.broadcast();
                    }
                }
            })
        })
        .collect();
    for producer in producer_threads {
        join_within(producer);
    }
    let sum: usize = consumer_threads.into_iter().map(join_within).sum();
    assert_eq!(sum, total * (total - 1) / 2);
}

#[test]
fn stress_broadcast_requeue_lets_everyone_in() {
    let waiters = 6;
    let rounds = scaled(200, 3);
    // (generation, waiters that saw it)
    let pair = shared((0usize, 0usize));
    let threads: Vec<_> = (0..waiters)
        .map(|_| {
            spawn_with(&pair, move |(mutex, cond)| {
                for round in 0..rounds {
                    let mut guard = mutex.lock();
                    guard.1 += 1;
                    cond.broadcast(); // tells the driver another one arrived
                    cond.wait_while(&mut guard, |(generation, _)| *generation == round);
                }
            })
        })
        .collect();
    let (mutex, cond) = &*pair;
    for round in 0..rounds {
        let mut guard = mutex.lock();
        cond.wait_while(&mut guard, |(_, arrived)| *arrived < waiters);
        guard.1 = 0;
        guard.0 = round + 1;
        cond.broadcast();
    }
    for thread in threads {
        join_within(thread);
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "driven by microsecond timeouts, which under miri's slow clock-checking loop run for many minutes; loom models the timeout races"
)]
fn stress_timeouts_race_signals_and_broadcasts() {
    let waiters = 4;
    let target = scaled(3_000, 30);
    // (counter, waiters finished)
    let pair = shared((0usize, 0usize));
    let threads: Vec<_> = (0..waiters)
        .map(|id| {
            spawn_with(&pair, move |(mutex, cond)| {
                let mut guard = mutex.lock();
                let mut timeouts = 0usize;
                while guard.0 < target {
                    // Short timeouts race the signals; a requeued waiter that times out must
                    // still come back holding the lock.
                    let timeout = Duration::from_micros(50 * (id as u64 + 1));
                    if cond.wait_for(&mut guard, timeout).timed_out() {
                        timeouts += 1;
                    }
                }
                guard.1 += 1;
                timeouts
            })
        })
        .collect();
    let (mutex, cond) = &*pair;
    for i in 0..target {
        let mut guard = mutex.lock();
        guard.0 += 1;
        if i % 3 == 0 {
            cond.broadcast();
        } else {
            drop(guard);
            cond.signal();
        }
    }
    cond.broadcast();
    for thread in threads {
        join_within(thread);
    }
    assert_eq!(mutex.lock().1, waiters);
}

/// A thread queued on `pair`'s `Cond` (see [`queue_waiter`]) that runs `wait`, then adds one
/// to the data (so the lock is provably held again) and returns `wait`'s result.
fn start_waiting<R: Send + 'static>(
    pair: &Shared<u32>,
    wait: impl FnOnce(&Cond, &mut gosync_mutex::MutexGuard<'_, u32>) -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    queue_waiter(pair, |cond, guard| {
        let result = wait(cond, guard);
        **guard += 1;
        result
    })
}

#[test]
fn wait_while_works_with_an_rwmutex_write_guard() {
    let lock = Arc::new(RwMutex::new(0));
    let cond = Arc::new(Cond::new());
    let setter = {
        let (lock, cond) = (Arc::clone(&lock), Arc::clone(&cond));
        thread::spawn(move || {
            *lock.write() = 5;
            cond.broadcast();
        })
    };
    let mut guard = lock.write();
    cond.wait_while(&mut guard, |n| *n != 5);
    *guard += 1;
    drop(guard);
    join_within(setter);
    assert_eq!(*lock.read(), 6);
}

#[test]
fn wait_while_for_returns_at_once_when_the_condition_is_false() {
    let pair = shared(1);
    let mut guard = pair.0.lock();
    let mut calls = 0;
    let result = pair.1.wait_while_for(&mut guard, Duration::ZERO, |n| {
        calls += 1;
        *n == 0
    });
    assert!(!result.timed_out());
    assert_eq!(calls, 1);
    // A zero timeout with the condition still true: one check, then timed out.
    assert!(pair
        .1
        .wait_while_for(&mut guard, Duration::ZERO, |n| *n == 1)
        .timed_out());
    assert!(pair.0.is_locked());
}

#[test]
fn wait_while_for_times_out_holding_the_lock_and_is_woken_in_time() {
    let pair = shared(0);
    let result = pair
        .1
        .wait_while_for(&mut pair.0.lock(), Duration::from_millis(5), |n| *n == 0);
    assert!(result.timed_out());

    let waiter = start_waiting(&pair, |cond, guard| {
        cond.wait_while_for(guard, LIMIT * 2, |n| *n < 10)
    });
    for _ in 0..10 {
        *pair.0.lock() += 1;
        pair.1.signal();
    }
    assert!(!join_within(waiter).timed_out());
    assert_eq!(*pair.0.lock(), 11);
}

#[test]
fn wait_while_ctx_already_cancelled_fails_at_once_even_when_satisfied() {
    let pair = shared(0);
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let mut guard = pair.0.lock();
    let mut calls = 0;
    let result = pair.1.wait_while_ctx(&mut guard, &ctx, |_| {
        calls += 1;
        false
    });
    assert_eq!(result, Err(ContextError::Canceled));
    assert_eq!(calls, 0, "the cancellation came first");
    assert!(pair.0.is_locked(), "the lock was never released");
}

#[test]
fn wait_while_ctx_cancelled_mid_wait_holds_the_lock_and_frees_it_after() {
    let pair = shared(0);
    let (ctx, cancel) = Context::background().with_cancel();
    let waiter = start_waiting(&pair, move |cond, guard| {
        cond.wait_while_ctx(guard, &ctx, |n| *n == 0)
    });
    cancel.cancel();
    assert_eq!(join_within(waiter), Err(ContextError::Canceled));
    // The waiter held the lock again (it added one) and released it when it returned.
    assert!(!pair.0.is_locked());
    assert_eq!(*pair.0.lock(), 1);
    assert_eq!(format!("{:?}", pair.1), "Cond { has_waiters: false }");
}

#[test]
fn wait_while_ctx_succeeds_when_the_condition_turns_false_and_at_the_deadline_fails() {
    let pair = shared(0);
    let (ctx, _cancel) = Context::background().with_timeout(LIMIT * 2);
    let waiter = start_waiting(&pair, move |cond, guard| {
        cond.wait_while_ctx(guard, &ctx, |n| *n < 3)
    });
    for _ in 0..3 {
        *pair.0.lock() += 1;
        pair.1.broadcast();
    }
    assert_eq!(join_within(waiter), Ok(()));
    assert_eq!(*pair.0.lock(), 4);

    let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    let mut guard = pair.0.lock();
    let result = pair.1.wait_while_ctx(&mut guard, &ctx, |n| *n == 4);
    assert_eq!(result, Err(ContextError::DeadlineExceeded));
}

#[test]
fn wait_while_until_a_past_deadline_checks_once_and_keeps_the_lock() {
    let pair = shared(1);
    let mut guard = pair.0.lock();
    let mut calls = 0;
    let result = pair.1.wait_while_until(&mut guard, Instant::now(), |n| {
        calls += 1;
        *n == 0
    });
    assert!(
        !result.timed_out(),
        "free at once: succeeds even past the deadline"
    );
    assert_eq!(calls, 1);
    let mut calls = 0;
    let result = pair.1.wait_while_until(&mut guard, Instant::now(), |n| {
        calls += 1;
        *n == 1
    });
    assert!(result.timed_out());
    assert_eq!(calls, 1, "a past deadline: one check, no wait");
    assert!(pair.0.is_locked(), "the lock was never released");
}

#[test]
fn wait_while_until_times_out_holding_the_lock_and_is_woken_in_time() {
    let pair = shared(0);
    let deadline = Instant::now() + Duration::from_millis(5);
    let result = pair
        .1
        .wait_while_until(&mut pair.0.lock(), deadline, |n| *n == 0);
    assert!(result.timed_out());
    assert_eq!(format!("{:?}", pair.1), "Cond { has_waiters: false }");

    let waiter = start_waiting(&pair, |cond, guard| {
        cond.wait_while_until(guard, Instant::now() + LIMIT * 2, |n| *n < 10)
    });
    for _ in 0..10 {
        *pair.0.lock() += 1;
        pair.1.signal();
    }
    assert!(!join_within(waiter).timed_out());
    assert_eq!(*pair.0.lock(), 11);
}

#[test]
fn wait_while_until_racing_its_deadline_reports_the_condition_it_returns_with() {
    // The setter's change and the deadline land together: whatever the outcome, `timed_out`
    // says exactly whether the condition still held with the lock taken again.
    for round in 0..scaled(200, 3) {
        let pair = shared(0);
        let deadline = Instant::now() + Duration::from_micros(50 + round as u64 % 50);
        let waiter = start_waiting(&pair, move |cond, guard| {
            let result = cond.wait_while_until(guard, deadline, |n| *n == 0);
            (result.timed_out(), **guard)
        });
        *pair.0.lock() = 1;
        pair.1.signal();
        let (timed_out, seen) = join_within(waiter);
        assert_eq!(timed_out, seen == 0);
        // The waiter added one with the lock held again, before or after the setter's store.
        assert_eq!(*pair.0.lock(), if seen == 0 { 1 } else { 2 });
    }
}
