//! Hostile cases for `Cond` beyond the other test files.

use std::sync::Arc;
use std::thread;

use gosync_cond::Cond;
use gosync_context::Context;
use gosync_mutex::Mutex;
use gosync_testkit::{join_within, wait_until, within};

/// `wait_while_ctx` documents `Err` "when [the context] is done before the condition turned
/// `false`". Here the condition turns `false` first (under the lock, without a signal), and only
/// then is the context cancelled: the waiter wakes for the cancellation, holds the lock again,
/// and the condition is `false`, yet it reports `Canceled`. `wait_while_until` in the same
/// situation gives the last word to the condition (`timed_out() == false`).
#[test]
fn wait_while_ctx_gives_the_last_word_to_the_condition() {
    within(|| {
        let shared = Arc::new((Mutex::new(true), Cond::new()));
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || {
                let (flag, cond) = &*shared;
                let mut guard = flag.lock();
                let result = cond.wait_while_ctx(&mut guard, &ctx, |blocked| *blocked);
                (result, *guard)
            })
        };
        let (flag, cond) = &*shared;
        wait_until(|| format!("{cond:?}").contains("has_waiters: true"));
        *flag.lock() = false; // the condition turns false first (no signal)
        cancel.cancel(); // then the context is done
        let (result, blocked) = join_within(waiter);
        assert!(
            !blocked,
            "the waiter saw the condition false with the lock held"
        );
        assert_eq!(
            result,
            Ok(()),
            "the condition turned false before the context was done"
        );
    });
}

/// One round: W1 (`wait_ctx`) queues first, then W2 (untimed `wait`). One thread signals once
/// (holding the mutex or not) while another cancels W1's context at the same instant. If W1
/// reports the cancellation, the signal must have gone to W2, which must then wake with no
/// further signal; if W1 reports `Ok`, W2 still sleeps and a broadcast lets it go.
fn cancel_races_signal_round(signal_under_lock: bool) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Barrier;

    struct State {
        mutex: Mutex<u32>,
        cond: Cond,
        w2_woke: AtomicBool,
    }
    let state = Arc::new(State {
        mutex: Mutex::new(0),
        cond: Cond::new(),
        w2_woke: AtomicBool::new(false),
    });
    let (ctx, cancel) = Context::background().with_cancel();
    let w1 = {
        let state = Arc::clone(&state);
        thread::spawn(move || {
            let mut guard = state.mutex.lock();
            *guard += 1; // W1 is about to wait
            state.cond.wait_ctx(&mut guard, &ctx)
        })
    };
    // W1 queued: it bumped the count under the lock, and releases the lock only once queued.
    wait_until(|| *state.mutex.lock() == 1);
    let w2 = {
        let state = Arc::clone(&state);
        thread::spawn(move || {
            let mut guard = state.mutex.lock();
            *guard += 1;
            state.cond.wait(&mut guard);
            state.w2_woke.store(true, Ordering::SeqCst);
        })
    };
    wait_until(|| *state.mutex.lock() == 2);
    let barrier = Arc::new(Barrier::new(2));
    let canceller = {
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            barrier.wait();
            cancel.cancel();
        })
    };
    barrier.wait();
    if signal_under_lock {
        let _guard = state.mutex.lock();
        state.cond.signal();
    } else {
        state.cond.signal();
    }
    join_within(canceller);
    let w1_result = join_within(w1);
    if w1_result.is_err() {
        // The signal was not W1's: W2 must wake from it.
        wait_until(|| state.w2_woke.load(Ordering::SeqCst));
    } else {
        let _guard = state.mutex.lock();
        state.cond.broadcast();
    }
    join_within(w2);
}

#[test]
fn a_cancellation_at_the_instant_of_a_signal_loses_no_wake_up() {
    within(|| {
        for round in 0..gosync_testkit::scaled(300, 5) {
            cancel_races_signal_round(round % 2 == 0);
        }
    });
}
