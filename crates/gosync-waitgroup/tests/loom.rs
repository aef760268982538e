//! Loom models of `WaitGroup`: `done` racing `wait` (no lost wake-up, the workers' writes are
//! visible), `wait_for`'s timeout racing `done`, two waiters, and `wait_ctx` racing a
//! cancellation and `done`.

#![cfg(gosync_loom)]

use std::time::Duration;

use gosync_park::cell::UnsafeCell;
use gosync_park::sync::Arc;
use gosync_park::thread;
use gosync_waitgroup::WaitGroup;

/// A group and a plain value the worker writes before `done`, so loom reports a missing ordering.
struct Shared {
    wg: WaitGroup,
    value: UnsafeCell<usize>,
}

// SAFETY: `value` is written by the one worker before its `done` and read after `wait`.
unsafe impl Sync for Shared {}

/// A group counting one worker, and that worker's thread: it writes `value`, then calls `done`.
fn one_worker(value: usize) -> (Arc<Shared>, thread::JoinHandle<()>) {
    let shared = Arc::new(Shared {
        wg: WaitGroup::new(),
        value: UnsafeCell::new(0),
    });
    shared.wg.add(1);
    let worker = {
        let shared = shared.clone();
        thread::spawn(move || {
            // SAFETY: only this worker writes, before its `done`; readers read after the wait.
            unsafe { *shared.value.mut_ptr() = value };
            shared.wg.done();
        })
    };
    (shared, worker)
}

/// A later round of `wg` completes: whatever a wait did before, it left no stale waiter behind.
fn another_round_completes(wg: &WaitGroup) {
    wg.add(1);
    wg.done();
    wg.wait();
}

#[test]
fn done_vs_wait_no_lost_wakeup() {
    loom::model(|| {
        let (shared, t) = one_worker(7);
        shared.wg.wait();
        // SAFETY: the wait returned after the worker's `done`.
        assert_eq!(unsafe { *shared.value.ptr() }, 7);
        t.join().unwrap();
    });
}

#[test]
fn two_dones_vs_wait() {
    loom::model(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(2);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let wg = wg.clone();
                thread::spawn(move || wg.done())
            })
            .collect();
        wg.wait();
        assert_eq!(wg.count(), 0);
        for h in handles {
            h.join().unwrap();
        }
    });
}

#[test]
fn wait_for_timeout_vs_done() {
    loom::model(|| {
        let (shared, t) = one_worker(9);
        // Under loom every deadline may pass at any point.
        if shared.wg.wait_for(Duration::from_secs(1)) {
            // SAFETY: the counter reached zero, so the worker's write is ordered before.
            assert_eq!(unsafe { *shared.value.ptr() }, 9);
        }
        t.join().unwrap();
        another_round_completes(&shared.wg);
    });
}

#[test]
fn timed_and_untimed_waiters() {
    loom::model(|| {
        let wg = Arc::new(WaitGroup::new());
        wg.add(1);
        let timed = {
            let wg = wg.clone();
            thread::spawn(move || {
                let _ = wg.wait_for(Duration::from_secs(1));
            })
        };
        let doer = {
            let wg = wg.clone();
            thread::spawn(move || wg.done())
        };
        wg.wait();
        timed.join().unwrap();
        doer.join().unwrap();
    });
}

/// `wait_ctx` racing a cancellation and the last `done`: the waiter returns either way (`Ok`
/// with the worker's write visible, or `Canceled`), and leaves no stale mark behind.
#[test]
fn wait_ctx_against_cancel_and_done() {
    loom::model(|| {
        let (shared, t) = one_worker(5);
        let (ctx, cancel) = gosync_context::Context::background().with_cancel();
        let canceller = thread::spawn(move || cancel.cancel());
        match shared.wg.wait_ctx(&ctx) {
            // SAFETY: the counter reached zero, so the worker's write is ordered before.
            Ok(()) => assert_eq!(unsafe { *shared.value.ptr() }, 5),
            Err(err) => assert_eq!(err, gosync_context::ContextError::Canceled),
        }
        t.join().unwrap();
        canceller.join().unwrap();
        assert_eq!(shared.wg.count(), 0);
        another_round_completes(&shared.wg);
        assert!(format!("{:?}", shared.wg).contains("waiters: false"));
    });
}
