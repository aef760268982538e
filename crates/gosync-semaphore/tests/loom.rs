//! Loom models of `Semaphore`: the hand-off to a queued waiter racing that waiter's timeout
//! (under loom every finite deadline fires at the park layer's first look, so the timeout is
//! explored at every point of the race), with an untimed waiter queued behind it that must not be
//! stranded; a release racing an `acquire_ctx` whose context is cancelled; and a release that
//! hands permits to a waiter, whose reads of the releaser's writes loom checks.
#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_context::Context;
use gosync_park::cell::UnsafeCell;
use gosync_park::sync::Arc;
use gosync_park::thread;
use gosync_semaphore::Semaphore;

/// A deadline the test's own clock never reaches: only the park layer's loom rule can time out.
fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// A timed head waiter and an untimed waiter behind it, both queued or arriving while the
/// holder releases: whatever the timed one does, no permit is lost, the untimed one gets its
/// permit, and nobody is left queued.
#[test]
fn hand_off_vs_timing_out_head_waiter() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        sem.acquire(1);
        let timed = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || {
                let got = sem.try_acquire_until(1, far_deadline());
                if got {
                    sem.release(1);
                }
                got
            })
        };
        let untimed = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || {
                sem.acquire(1);
                sem.release(1);
            })
        };
        sem.release(1);
        timed.join().unwrap();
        untimed.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.queued(), 0);
        assert!(sem.try_acquire(1));
    });
}

/// A large timed request at the head holds back a small one; when the large one gives up, the
/// small one gets the permits that were free all along (x/sync's regression).
#[test]
fn a_head_giving_up_wakes_the_next() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(2));
        sem.acquire(1);
        let large = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || sem.try_acquire_until(2, far_deadline()))
        };
        let small = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || {
                sem.acquire(1);
                sem.release(1);
            })
        };
        // The large one can only succeed after this thread releases; it does not here.
        assert!(!large.join().unwrap());
        small.join().unwrap();
        sem.release(1);
        assert_eq!(sem.available(), 2);
        assert_eq!(sem.queued(), 0);
    });
}

/// A release racing the cancellation of a queued `acquire_ctx`: the waiter either holds the
/// permit (and returns it) or does not; the permit is never lost or doubled.
#[test]
fn release_vs_acquire_ctx_cancellation() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(1));
        sem.acquire(1);
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let sem = Arc::clone(&sem);
            thread::spawn(move || {
                let result = sem.acquire_ctx(&ctx, 1);
                if result.is_ok() {
                    sem.release(1);
                }
                result
            })
        };
        let canceller = thread::spawn(move || cancel.cancel());
        sem.release(1);
        canceller.join().unwrap();
        let _ = waiter.join().unwrap();
        assert_eq!(sem.available(), 1);
        assert_eq!(sem.queued(), 0);
    });
}

/// A value and the semaphore guarding it, capacity one: a missing Acquire/Release on the
/// fast path or the hand-off shows up as a data race on the cell.
struct Guarded {
    sem: Semaphore,
    value: UnsafeCell<usize>,
}

// SAFETY: `value` is accessed only while holding the semaphore's one permit.
unsafe impl Sync for Guarded {}

fn add_one(shared: &Guarded) {
    shared.sem.acquire(1);
    // SAFETY: this thread holds the only permit.
    unsafe { *shared.value.mut_ptr() += 1 };
    shared.sem.release(1);
}

#[test]
fn permits_order_the_data_they_guard() {
    loom::model(|| {
        let shared = Arc::new(Guarded {
            sem: Semaphore::new(1),
            value: UnsafeCell::new(0),
        });
        let other = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || add_one(&shared))
        };
        add_one(&shared);
        other.join().unwrap();
        shared.sem.acquire(1);
        // SAFETY: the one permit is held.
        assert_eq!(unsafe { *shared.value.ptr() }, 2);
        shared.sem.release(1);
    });
}
