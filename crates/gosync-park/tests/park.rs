//! The park layer's public behaviour: FIFO order, hand-off tokens, deadlines, cancellation,
//! filters, requeueing and word waits, plus a stress test of unparkers against timeouts.
//!
//! Every wait that could hang is bounded: threads are joined through `join_within` and queueing
//! is awaited through `wait_until` (both from `gosync-testkit`), which fail the test after a
//! generous limit instead of hanging it.
// The real park layer only: the loom models are `tests/loom.rs`.
#![cfg(not(gosync_loom))]

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_park::{
    park, unpark_all, unpark_filter, unpark_one, unpark_requeue, wait, wake_all, FilterOp,
    ParkOptions, ParkResult, RequeueOp,
};
use gosync_testkit::{join_within, scaled, spawn_with, wait_until, LIMIT};

mod common;

use common::Flag;

/// A fresh key, unique to this test run. Keys need not be addresses, only distinct.
fn fresh_key() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0x1000);
    NEXT.fetch_add(8, Ordering::Relaxed)
}

/// Parks on `key` with `options`, counting itself in `parked` under the queue lock so that the
/// test can wait, without sleeping, until it is really queued.
fn park_counted(key: usize, options: ParkOptions<'_>, parked: &AtomicUsize) -> ParkResult {
    let validate = || {
        parked.fetch_add(1, Ordering::SeqCst);
        true
    };
    park(key, options, validate, || {}, |_, _| {})
}

/// A thread that parks on `key` with `token` through [`park_counted`].
fn spawn_parker(
    key: usize,
    parked: Arc<AtomicUsize>,
    token: usize,
) -> thread::JoinHandle<ParkResult> {
    thread::spawn(move || {
        let options = ParkOptions {
            token,
            ..ParkOptions::default()
        };
        park_counted(key, options, &parked)
    })
}

/// Parks on `key` until `deadline`; returns the result and what the timeout callback said about
/// the queue (`Some(true)`: this waiter was the last one on `key`; `None`: it did not run).
fn park_until(key: usize, deadline: Instant) -> (ParkResult, Option<bool>) {
    let options = ParkOptions {
        deadline: Some(deadline),
        ..ParkOptions::default()
    };
    let mut was_last = None;
    let result = park(
        key,
        options,
        || true,
        || {},
        |k, last| {
            assert_eq!(k, key);
            was_last = Some(last);
        },
    );
    (result, was_last)
}

/// Waits (yielding, bounded) until `count` threads have queued.
#[track_caller]
fn until_parked(parked: &AtomicUsize, count: usize) {
    wait_until(|| parked.load(Ordering::SeqCst) >= count);
}

#[test]
fn validate_false_does_not_park() {
    let result = park(
        fresh_key(),
        ParkOptions::default(),
        || false,
        || panic!("slept"),
        |_, _| {},
    );
    assert_eq!(result, ParkResult::Invalid);
}

#[test]
fn unpark_one_wakes_in_fifo_order() {
    let key = fresh_key();
    let parked = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for i in 0..4 {
        handles.push(spawn_parker(key, Arc::clone(&parked), i));
        until_parked(&parked, i + 1);
    }
    for i in 0..4 {
        let result = unpark_one(key, |r| {
            assert_eq!(r.unparked, 1);
            assert_eq!(r.have_more, i < 3);
            100 + i
        });
        assert_eq!(result.unparked, 1);
    }
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(join_within(handle), ParkResult::Unparked(100 + i));
    }
}

#[test]
fn front_parks_jump_the_queue() {
    let key = fresh_key();
    let parked = Arc::new(AtomicUsize::new(0));
    let back = spawn_parker(key, Arc::clone(&parked), 0);
    until_parked(&parked, 1);
    let front = spawn_with(&parked, move |parked| {
        let options = ParkOptions {
            front: true,
            ..ParkOptions::default()
        };
        park_counted(key, options, parked)
    });
    until_parked(&parked, 2);
    unpark_one(key, |_| 1);
    assert_eq!(join_within(front), ParkResult::Unparked(1));
    unpark_one(key, |_| 2);
    assert_eq!(join_within(back), ParkResult::Unparked(2));
}

#[test]
fn deadline_in_the_past_times_out_at_once() {
    let key = fresh_key();
    assert_eq!(
        park_until(key, Instant::now()),
        (ParkResult::TimedOut, Some(true))
    );
    assert_eq!(unpark_all(key, 0), 0, "a timed-out waiter was left queued");
}

#[test]
fn timeout_reports_whether_others_remain() {
    let key = fresh_key();
    let parked = Arc::new(AtomicUsize::new(0));
    let other = spawn_parker(key, Arc::clone(&parked), 0);
    until_parked(&parked, 1);
    let deadline = Instant::now() + Duration::from_millis(5);
    assert_eq!(
        park_until(key, deadline),
        (ParkResult::TimedOut, Some(false))
    );
    assert_eq!(unpark_all(key, 3), 1);
    assert_eq!(join_within(other), ParkResult::Unparked(3));
}

#[test]
fn before_sleep_runs_after_queueing() {
    let key = fresh_key();
    let released = Arc::new(AtomicBool::new(false));
    let waiter = {
        let released = Arc::clone(&released);
        thread::spawn(move || {
            // An unpark issued from `before_sleep`'s signal cannot be lost: we are queued.
            park(
                key,
                ParkOptions::default(),
                || true,
                || released.store(true, Ordering::SeqCst),
                |_, _| {},
            )
        })
    };
    wait_until(|| released.load(Ordering::SeqCst));
    assert_eq!(unpark_one(key, |_| 9).unparked, 1);
    assert_eq!(join_within(waiter), ParkResult::Unparked(9));
}

#[test]
fn cancellation_wakes_a_parked_thread() {
    let key = fresh_key();
    let flag = Arc::new(Flag::default());
    let parked = Arc::new(AtomicUsize::new(0));
    let waiter = {
        let (flag, parked) = (Arc::clone(&flag), Arc::clone(&parked));
        thread::spawn(move || {
            let options = ParkOptions {
                cancel: Some(&*flag),
                ..ParkOptions::default()
            };
            park_counted(key, options, &parked)
        })
    };
    until_parked(&parked, 1);
    flag.cancel();
    assert_eq!(join_within(waiter), ParkResult::Cancelled);
    assert!(flag.wakers.lock().is_empty());
    assert_eq!(unpark_all(key, 0), 0);
}

#[test]
fn already_cancelled_source_returns_at_once() {
    let flag = Flag::default();
    flag.cancel();
    let options = ParkOptions {
        cancel: Some(&flag),
        ..ParkOptions::default()
    };
    assert_eq!(
        park(fresh_key(), options, || true, || {}, |_, _| {}),
        ParkResult::Cancelled
    );
}

#[test]
fn filter_wakes_from_the_head_until_stopped() {
    let key = fresh_key();
    let parked = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = [1usize, 2, 5, 1]
        .into_iter()
        .enumerate()
        .map(|(i, need)| {
            let handle = spawn_parker(key, Arc::clone(&parked), need);
            until_parked(&parked, i + 1);
            handle
        })
        .collect();
    // Four units available: wake 1 and 2, stop at 5 even though the last 1 would fit (FIFO).
    let mut available = 4;
    let result = unpark_filter(
        key,
        |need| {
            if need <= available {
                available -= need;
                FilterOp::Unpark
            } else {
                FilterOp::Stop
            }
        },
        |r| {
            assert_eq!(r.unparked, 2);
            assert!(r.have_more);
            1
        },
    );
    assert_eq!(result.unparked, 2);
    assert_eq!(unpark_all(key, 0), 2);
    let results: Vec<_> = handles.into_iter().map(join_within).collect();
    assert_eq!(
        results[..2],
        [ParkResult::Unparked(1), ParkResult::Unparked(1)]
    );
    assert_eq!(
        results[2..],
        [ParkResult::Unparked(0), ParkResult::Unparked(0)]
    );
}

#[test]
fn requeue_unparks_one_and_moves_the_rest_behind_the_target() {
    let (from, to) = (fresh_key(), fresh_key());
    let parked = Arc::new(AtomicUsize::new(0));
    let on_target = spawn_parker(to, Arc::clone(&parked), 0);
    until_parked(&parked, 1);
    let moved: Vec<_> = (0..3)
        .map(|i| {
            let handle = spawn_parker(from, Arc::clone(&parked), 0);
            until_parked(&parked, i + 2);
            handle
        })
        .collect();
    let result = unpark_requeue(
        from,
        to,
        || RequeueOp::UnparkOneRequeueRest,
        |op, r| {
            assert_eq!(op, RequeueOp::UnparkOneRequeueRest);
            assert_eq!((r.unparked, r.requeued), (1, 2));
            7
        },
    );
    assert_eq!((result.unparked, result.requeued), (1, 2));
    assert_eq!(unpark_all(from, 0), 0);
    let mut moved = moved.into_iter();
    assert_eq!(join_within(moved.next().unwrap()), ParkResult::Unparked(7));
    // FIFO on the target: the thread already there first, then the requeued ones in order.
    for (token, handle) in (10..).zip(std::iter::once(on_target).chain(moved)) {
        unpark_one(to, |_| token);
        assert_eq!(join_within(handle), ParkResult::Unparked(token));
    }
}

#[test]
fn requeue_one_and_unpark_one_pick_only_the_head() {
    let (from, to) = (fresh_key(), fresh_key());
    let parked = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|i| {
            let handle = spawn_parker(from, Arc::clone(&parked), 0);
            until_parked(&parked, i + 1);
            handle
        })
        .collect();
    let mut waiters = waiters.into_iter();
    let result = unpark_requeue(
        from,
        to,
        || RequeueOp::RequeueOne,
        |op, r| {
            assert_eq!(op, RequeueOp::RequeueOne);
            assert_eq!((r.unparked, r.requeued, r.have_more), (0, 1, true));
            0 // nobody is unparked: the token goes nowhere
        },
    );
    assert_eq!(
        (result.unparked, result.requeued, result.have_more),
        (0, 1, true)
    );
    // The head moved to `to`: it is woken there, not on `from`.
    let head = waiters.next().unwrap();
    assert_eq!(unpark_one(to, |_| 5).unparked, 1);
    assert_eq!(join_within(head), ParkResult::Unparked(5));
    let result = unpark_requeue(from, to, || RequeueOp::UnparkOne, |_, _| 6);
    assert_eq!(
        (result.unparked, result.requeued, result.have_more),
        (1, 0, true)
    );
    assert_eq!(
        join_within(waiters.next().unwrap()),
        ParkResult::Unparked(6)
    );
    let result = unpark_requeue(from, to, || RequeueOp::UnparkOne, |_, _| 7);
    assert_eq!(
        (result.unparked, result.requeued, result.have_more),
        (1, 0, false)
    );
    assert_eq!(
        join_within(waiters.next().unwrap()),
        ParkResult::Unparked(7)
    );
    assert_eq!(unpark_all(to, 0), 0);
}

/// Requeued onto the key they are parked on, the waiters stay parked there: `have_more` says so
/// (a caller that clears its "parked" mark on `!have_more` would strand them).
#[test]
fn requeue_onto_the_same_key_reports_the_waiters_left() {
    let key = fresh_key();
    let parked = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..2)
        .map(|i| {
            let handle = spawn_parker(key, Arc::clone(&parked), 0);
            until_parked(&parked, i + 1);
            handle
        })
        .collect();
    let result = unpark_requeue(key, key, || RequeueOp::RequeueAll, |_, _| 0);
    assert_eq!(
        (result.unparked, result.requeued, result.have_more),
        (0, 2, true)
    );
    let result = unpark_requeue(key, key, || RequeueOp::UnparkOneRequeueRest, |_, _| 5);
    assert_eq!(
        (result.unparked, result.requeued, result.have_more),
        (1, 1, true)
    );
    assert_eq!(unpark_all(key, 6), 1);
    let mut results: Vec<_> = waiters.into_iter().map(join_within).collect();
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(results, [ParkResult::Unparked(5), ParkResult::Unparked(6)]);
}

#[test]
fn requeue_abort_changes_nothing() {
    let (from, to) = (fresh_key(), fresh_key());
    let parked = Arc::new(AtomicUsize::new(0));
    let waiter = spawn_parker(from, Arc::clone(&parked), 0);
    until_parked(&parked, 1);
    let result = unpark_requeue(from, to, || RequeueOp::Abort, |_, _| unreachable!());
    assert_eq!(result.requeued, 0);
    assert_eq!(unpark_all(from, 4), 1);
    assert_eq!(join_within(waiter), ParkResult::Unparked(4));
}

#[test]
fn word_wait_returns_when_the_value_differs() {
    let word = AtomicU32::new(1);
    wait(&word, 0); // not equal: returns at once
    let word = Arc::new(AtomicU32::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let word = Arc::clone(&word);
            thread::spawn(move || {
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0);
                }
            })
        })
        .collect();
    word.store(1, Ordering::Release);
    wake_all(&*word);
    for waiter in waiters {
        join_within(waiter);
    }
}

/// Unparkers racing waiters that time out: every token is either received or its unpark saw no
/// waiter, and the queue ends empty.
#[test]
fn stress_unpark_against_timeouts() {
    let rounds = scaled(2_000, 20) as u64;
    let key = fresh_key();
    let received = Arc::new(AtomicUsize::new(0));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let received = Arc::clone(&received);
            thread::spawn(move || {
                for i in 0..rounds {
                    let options = ParkOptions {
                        deadline: Some(Instant::now() + Duration::from_micros(i % 50)),
                        ..ParkOptions::default()
                    };
                    if let ParkResult::Unparked(1) = park(key, options, || true, || {}, |_, _| {}) {
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let mut sent = 0;
    let start = Instant::now();
    while waiters.iter().any(|w| !w.is_finished()) {
        assert!(start.elapsed() < LIMIT * 3, "stress test did not finish");
        sent += unpark_one(key, |_| 1).unparked;
        thread::yield_now();
    }
    for waiter in waiters {
        join_within(waiter);
    }
    assert_eq!(received.load(Ordering::SeqCst), sent);
    assert_eq!(unpark_all(key, 0), 0);
}
