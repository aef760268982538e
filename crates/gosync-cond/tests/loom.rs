//! Loom models of `Cond`'s races: a signal against a timeout and against a cancellation, a
//! broadcast against a thread that starts waiting, a timeout after a broadcast moved the waiter
//! onto the mutex, and the wait/signal handshake over a flag (with the signal sent outside the
//! lock, and a broadcast that requeues onto a free mutex); a signal sent under the lock, which
//! moves its waiter onto the held mutex, against the waiter's timeout and against the unlock.
//!
//! Under loom every finite deadline counts as passed at the first look, so a timed wait here
//! races its timeout against every point of the signaller.
#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_cond::Cond;
use gosync_context::Context;
use gosync_mutex::Mutex;
use gosync_park::sync::Arc;
use gosync_park::sync::{AtomicBool, Ordering};
use gosync_park::thread;

/// A deadline the real clock does not reach during a model; loom treats it as passed when the
/// park layer looks.
fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

type Shared = Arc<(Mutex<bool>, Cond)>;

fn shared() -> Shared {
    Arc::new((Mutex::new(false), Cond::new()))
}

/// Waits (untimed) until the flag is set.
fn wait_for_flag(pair: &Shared) {
    let (mutex, cond) = &**pair;
    let mut guard = mutex.lock();
    while !*guard {
        cond.wait(&mut guard);
    }
}

/// Spawns a thread that waits once for the flag with a deadline loom fires at any point, and
/// returns whether it timed out. Woken means the wake-up came after it started waiting: the flag
/// is set, and was not set yet when it started.
fn spawn_timed_waiter(pair: &Shared) -> thread::JoinHandle<bool> {
    let pair = Arc::clone(pair);
    thread::spawn(move || {
        let (mutex, cond) = &*pair;
        let mut guard = mutex.lock();
        let before = *guard;
        let timed_out = cond.wait_until(&mut guard, far_deadline()).timed_out();
        assert!(timed_out || *guard, "woken without a wake-up");
        assert!(
            !before || timed_out,
            "woken by a wake-up sent before it waited"
        );
        timed_out
    })
}

/// One untimed waiter and one timed waiter, one signal: a waiter that times out does not
/// swallow the signal. If the timed waiter reports a wake-up, it got the signal and the
/// signaller sends another for the untimed one; if it reports a timeout, the one signal must
/// reach the untimed waiter (or find it not waiting yet, when it sees the flag). A lost signal
/// leaves the untimed waiter asleep, which loom reports as a deadlock.
#[test]
fn timed_out_waiter_does_not_swallow_a_signal() {
    loom::model(|| {
        let pair = shared();
        let untimed = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || wait_for_flag(&pair))
        };
        let timed = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                let mut guard = mutex.lock();
                cond.wait_until(&mut guard, far_deadline()).timed_out()
            })
        };
        {
            let (mutex, cond) = &*pair;
            *mutex.lock() = true;
            cond.signal();
        }
        let timed_out = timed.join().unwrap();
        if !timed_out {
            // The timed waiter took the signal: the untimed one needs its own.
            pair.1.signal();
        }
        untimed.join().unwrap();
    });
}

/// As above with a cancellation instead of a timeout: a waiter whose context is cancelled while
/// a signal is on its way either gets the signal (`Ok`) or leaves it to the other waiter.
#[test]
fn cancelled_waiter_does_not_swallow_a_signal() {
    loom::model(|| {
        let pair = shared();
        let (ctx, cancel) = Context::background().with_cancel();
        let untimed = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || wait_for_flag(&pair))
        };
        let cancellable = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                let mut guard = mutex.lock();
                cond.wait_ctx(&mut guard, &ctx)
            })
        };
        {
            let (mutex, cond) = &*pair;
            *mutex.lock() = true;
            cond.signal();
        }
        cancel.cancel();
        if cancellable.join().unwrap().is_ok() {
            pair.1.signal();
        }
        untimed.join().unwrap();
    });
}

/// A broadcast made under the lock wakes the thread already waiting (requeued onto the held
/// mutex), and does not wake a thread that starts waiting after it: that one, having seen the
/// new generation, can only time out.
#[test]
fn broadcast_does_not_wake_a_later_waiter() {
    loom::model(|| {
        let pair = shared();
        let early = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || wait_for_flag(&pair))
        };
        let late = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                let (mutex, cond) = &*pair;
                let mut guard = mutex.lock();
                let after_broadcast = *guard;
                let timed_out = cond.wait_until(&mut guard, far_deadline()).timed_out();
                (after_broadcast, timed_out)
            })
        };
        {
            let (mutex, cond) = &*pair;
            let mut guard = mutex.lock();
            *guard = true;
            cond.broadcast();
        }
        let (after_broadcast, timed_out) = late.join().unwrap();
        if after_broadcast {
            assert!(
                timed_out,
                "a broadcast woke a thread that started waiting after it"
            );
        }
        early.join().unwrap();
    });
}

/// A timed waiter that a broadcast (under the lock) moved onto the mutex's queue and whose
/// deadline then passes counts as woken, takes the mutex back, and leaves it usable.
#[test]
fn requeued_waiter_that_times_out_counts_as_woken() {
    loom::model(|| {
        let pair = shared();
        let timed = spawn_timed_waiter(&pair);
        {
            let (mutex, cond) = &*pair;
            let mut guard = mutex.lock();
            *guard = true;
            cond.broadcast();
        }
        let _timed_out = timed.join().unwrap();
        let guard = pair.0.try_lock().expect("the mutex is free again");
        assert!(*guard);
    });
}

/// The handshake over a flag, with the signal sent after the lock is released: the waiter is
/// queued before it releases the lock, so the signaller, which takes the lock after it, cannot
/// miss it (no lost wake-up, even though `signal`'s fast path takes no lock).
#[test]
fn signal_after_unlock_is_not_lost() {
    loom::model(|| {
        let pair = shared();
        let waiter = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || wait_for_flag(&pair))
        };
        let (mutex, cond) = &*pair;
        *mutex.lock() = true;
        cond.signal();
        waiter.join().unwrap();
    });
}

/// Two waiters and a broadcast after the unlock: with the mutex free, the broadcast wakes one
/// waiter and requeues the other onto the mutex, marking it so that the woken one's unlock lets
/// the other in. Neither may be left asleep.
#[test]
fn broadcast_requeue_onto_a_free_mutex_wakes_everyone() {
    loom::model(|| {
        let pair = shared();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let pair = Arc::clone(&pair);
                thread::spawn(move || wait_for_flag(&pair))
            })
            .collect();
        let (mutex, cond) = &*pair;
        *mutex.lock() = true;
        cond.broadcast();
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

/// A signal sent with the lock held moves the longest waiter onto the mutex's queue (the mutex
/// is held, so waking it would only send it back to sleep). Here that waiter is a timed one
/// whose deadline fires at any point: moved or not, it either counts as signalled (and holds
/// the lock with the flag set) or times out leaving the signal to the untimed waiter, which
/// must not be left asleep.
#[test]
fn signal_under_the_lock_against_a_timeout() {
    loom::model(|| {
        let pair = shared();
        let timed = spawn_timed_waiter(&pair);
        let untimed = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || wait_for_flag(&pair))
        };
        let (mutex, cond) = &*pair;
        {
            let mut guard = mutex.lock();
            *guard = true;
            cond.signal();
        }
        if !timed.join().unwrap() {
            // The timed waiter took the signal: the untimed one needs its own.
            cond.signal();
        }
        untimed.join().unwrap();
        assert!(mutex.try_lock().is_some(), "the mutex is free again");
    });
}

/// A signal that runs while another thread releases the mutex: it sees the mutex held (and
/// moves the waiter onto its queue, where the unlock must find it) or free (and wakes the
/// waiter itself). Either way the waiter returns, holding the lock, with the flag set.
#[test]
fn signal_against_the_unlock() {
    loom::model(|| {
        let pair = shared();
        let set = Arc::new(AtomicBool::new(false));
        let waiter = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || wait_for_flag(&pair))
        };
        let setter = {
            let (pair, set) = (Arc::clone(&pair), Arc::clone(&set));
            thread::spawn(move || {
                let mut guard = pair.0.lock();
                *guard = true;
                set.store(true, Ordering::SeqCst);
                drop(guard);
            })
        };
        // Signal once the flag is set, possibly before the setter has unlocked.
        while !set.load(Ordering::SeqCst) {
            thread::yield_now();
        }
        pair.1.signal();
        waiter.join().unwrap();
        setter.join().unwrap();
        assert!(pair.0.try_lock().is_some(), "the mutex is free again");
    });
}
