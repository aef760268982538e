//! Loom models of the mutex: mutual exclusion (the data cell is loom's, so a missing
//! `Acquire`/`Release` shows up as a data race), `try_lock` against `unlock`, a timed lock
//! against `unlock` (under loom every finite deadline counts as reached at the park layer's first
//! look, so a timeout is explored at every point of the race), `lock_ctx` against `unlock` and
//! a cancellation, and the starvation-mode hand-off.
#![cfg(gosync_loom)]

use std::time::{Duration, Instant};

use gosync_mutex::{Mutex, MutexGuard, RawMutex};
use gosync_park::sync::{Arc, AtomicBool, Ordering};
use gosync_park::thread;

/// A deadline the test's own clock never reaches: only the park layer's loom rule can time out.
fn far_deadline() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

/// Two threads and the main thread increment under the lock: no lost update, no data race, the
/// lock free and unmarked at the end.
#[test]
fn mutual_exclusion_three_threads() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let mutex = Arc::clone(&mutex);
                thread::spawn(move || *mutex.lock() += 1)
            })
            .collect();
        *mutex.lock() += 1;
        for handle in handles {
            handle.join().unwrap();
        }
        let guard = mutex.lock();
        assert_eq!(*guard, 3);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// Each of two threads locks twice in a row: the re-lock races the other thread's wake-up, so
/// normal mode's barging and the re-queue at the head are explored.
#[test]
fn mutual_exclusion_relock() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let other = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || {
                for _ in 0..2 {
                    *mutex.lock() += 1;
                }
            })
        };
        for _ in 0..2 {
            *mutex.lock() += 1;
        }
        other.join().unwrap();
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, 4);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// `try_lock` racing an unlock: either it fails, or it succeeds and sees the holder's write.
#[test]
fn try_lock_against_unlock() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let guard = mutex.lock();
        let other = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || mutex.try_lock().map(|guard| *guard))
        };
        let mut guard = guard;
        *guard = 1;
        drop(guard);
        if let Some(seen) = other.join().unwrap() {
            assert_eq!(seen, 1);
        }
        assert!(!mutex.is_locked());
        assert!(!MutexGuard::raw(&mutex.lock()).is_parked());
    });
}

/// A timed lock racing the holder's unlock: exactly one outcome (the lock, seeing the holder's
/// write; or a timeout), and either way the lock ends free with no queue mark left behind.
#[test]
fn timed_lock_against_unlock() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let mut guard = mutex.lock();
        let other = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || {
                mutex.try_lock_until(far_deadline()).map(|mut guard| {
                    *guard += 1;
                    *guard
                })
            })
        };
        *guard = 1;
        drop(guard);
        let got = other.join().unwrap();
        let guard = mutex
            .try_lock()
            .expect("nobody holds it: no thread is stuck");
        assert!(!MutexGuard::raw(&guard).is_parked());
        match got {
            Some(seen) => {
                assert_eq!(seen, 2);
                assert_eq!(*guard, 2);
            }
            None => assert_eq!(*guard, 1),
        }
    });
}

/// A timed waiter and an untimed waiter behind the holder: whatever the timed one does, the
/// untimed one gets the lock, and the mark is clear at the end.
#[test]
fn timed_waiter_leaving_does_not_strand_another() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let guard = mutex.lock();
        let timed = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || mutex.try_lock_until(far_deadline()).is_some())
        };
        let untimed = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || *mutex.lock() += 1)
        };
        drop(guard);
        timed.join().unwrap();
        untimed.join().unwrap();
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, 1);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// Starvation mode, forced while a thread is queued: the unlock hands the lock over without
/// freeing it, so the unlocking thread cannot take it back before the waiter has had its turn;
/// and the waiter sees the previous owner's write. If the waiter was not queued yet, the mode
/// stays normal and the race is free.
#[test]
fn starvation_hand_off() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let waiter_done = Arc::new(AtomicBool::new(false));
        let mut guard = mutex.lock();
        let waiter = {
            let mutex = Arc::clone(&mutex);
            let waiter_done = Arc::clone(&waiter_done);
            thread::spawn(move || {
                let mut guard = mutex.lock();
                *guard += 1;
                // Relaxed: published by the unlock below.
                waiter_done.store(true, Ordering::Relaxed);
            })
        };
        let forced = MutexGuard::raw(&guard).force_starvation();
        *guard += 10;
        drop(guard);
        if let Some(guard) = mutex.try_lock() {
            if forced {
                // Handed off: we can only have it back after the waiter's turn.
                assert!(waiter_done.load(Ordering::Relaxed));
                assert_eq!(*guard, 11);
            }
        }
        waiter.join().unwrap();
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, 11);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// Starvation mode with a timed waiter whose deadline fires at any point of the unlock: the
/// unlock releases the lock first (`fetch_sub`) and hands it over after, and in between the lock
/// is held for newcomers. Either the waiter gets it by hand-off (and sees the write), or it
/// leaves, and the lock must end free and unmarked, never stuck in the hand-over state.
#[test]
fn starvation_hand_off_against_a_timeout() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let mut guard = mutex.lock();
        let waiter = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || {
                mutex
                    .try_lock_until(far_deadline())
                    .map(|mut guard| {
                        assert_eq!(*guard, 10, "the owner's write is visible");
                        *guard += 1;
                    })
                    .is_some()
            })
        };
        let forced = MutexGuard::raw(&guard).force_starvation();
        *guard += 10;
        drop(guard);
        let newcomer = mutex.try_lock().map(|guard| *guard);
        let locked = waiter.join().unwrap();
        if forced && locked {
            // A newcomer could only get in after the hand-off and the waiter's turn.
            assert!(newcomer.is_none() || newcomer == Some(11));
        }
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, if locked { 11 } else { 10 });
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// A normal-mode unlock releases the lock before it wakes the head waiter; meanwhile a newcomer
/// may take the lock and the mode may switch to starvation (here forced by the newcomer). The
/// pending wake must then not hand the lock over, since the newcomer holds it: every increment
/// is made under the lock (loom reports any two that overlap) and the lock ends free.
#[test]
fn release_then_newcomer_then_starvation_keeps_exclusion() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let guard = mutex.lock();
        let waiter = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || *mutex.lock() += 1)
        };
        let newcomer = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || {
                let mut guard = mutex.lock();
                let _ = MutexGuard::raw(&guard).force_starvation();
                *guard += 1;
            })
        };
        drop(guard);
        waiter.join().unwrap();
        newcomer.join().unwrap();
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, 2);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// Starvation mode with two queued threads: the first is handed the lock (and, having waited
/// "briefly" in loom's clock, ends the mode), the second still gets its turn, and everything is
/// clean at the end.
#[test]
fn starvation_hand_off_two_waiters() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let guard = mutex.lock();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let mutex = Arc::clone(&mutex);
                thread::spawn(move || *mutex.lock() += 1)
            })
            .collect();
        MutexGuard::raw(&guard).force_starvation();
        drop(guard);
        for waiter in waiters {
            waiter.join().unwrap();
        }
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, 2);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// Three threads, each locking twice: wake-ups race re-locks, so woken waiters lose, re-queue at
/// the head and (by loom's clock, from their second wake-up) switch the lock to starvation mode
/// on their own. No lost update, no data race, nothing stranded, the mark clear at the end.
#[test]
fn contention_reaches_starvation_mode() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let mutex = Arc::clone(&mutex);
                thread::spawn(move || {
                    for _ in 0..2 {
                        *mutex.lock() += 1;
                    }
                })
            })
            .collect();
        for _ in 0..2 {
            *mutex.lock() += 1;
        }
        for handle in handles {
            handle.join().unwrap();
        }
        let guard = mutex.try_lock().expect("free at the end");
        assert_eq!(*guard, 6);
        assert!(!MutexGuard::raw(&guard).is_parked());
    });
}

/// `lock_ctx` racing both the holder's unlock and a cancellation: the waiter either gets the
/// lock (seeing the holder's write) or returns `Canceled` holding nothing; either way the lock
/// ends free with no queue mark left behind.
#[test]
fn lock_ctx_against_unlock_and_cancel() {
    loom::model(|| {
        let mutex = Arc::new(Mutex::new(0usize));
        let (ctx, cancel) = gosync_context::Context::background().with_cancel();
        let mut guard = mutex.lock();
        let waiter = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || {
                mutex.lock_ctx(&ctx).map(|mut guard| {
                    *guard += 1;
                    *guard
                })
            })
        };
        let canceller = thread::spawn(move || cancel.cancel());
        *guard = 1;
        drop(guard);
        let got = waiter.join().unwrap();
        canceller.join().unwrap();
        let guard = mutex.try_lock().expect("nobody holds it");
        assert!(!MutexGuard::raw(&guard).is_parked());
        match got {
            Ok(seen) => {
                assert_eq!(seen, 2);
                assert_eq!(*guard, 2);
            }
            Err(err) => {
                assert_eq!(err, gosync_context::ContextError::Canceled);
                assert_eq!(*guard, 1);
            }
        }
    });
}

/// A misused `RawMutex::unlock` (the lock free, no waiters) racing a thread that locks: the
/// decrement makes the free lock look held with every mark set, so the locker may queue (and
/// leave its queue) before the panic puts the word back; it must not be left asleep, and the
/// lock ends free and unmarked.
#[test]
fn unlock_of_unlocked_strands_no_waiter() {
    misused_unlock_strands_no_waiter(false);
}

/// As `unlock_of_unlocked_strands_no_waiter`, on a free lock with the `PARKED` mark set (as while
/// threads are queued): the unlock's `fetch_sub` borrows from the mark rather than wrapping.
#[test]
fn unlock_of_unlocked_with_the_parked_mark_strands_no_waiter() {
    misused_unlock_strands_no_waiter(true);
}

fn misused_unlock_strands_no_waiter(parked: bool) {
    gosync_testkit::quiet_panics("sync: unlock of unlocked mutex", || {
        loom::model(move || {
            let lock = Arc::new(RawMutex::new());
            if parked {
                lock.mark_parked();
            }
            let misused = Arc::new(AtomicBool::new(false));
            let locker = {
                let (lock, misused) = (Arc::clone(&lock), Arc::clone(&misused));
                thread::spawn(move || {
                    // Comes in while the misuse makes the word look held, if the schedule allows.
                    while !lock.is_locked() && !misused.load(Ordering::SeqCst) {
                        thread::yield_now();
                    }
                    // A timed lock first: under loom it may time out at once, so a waiter
                    // leaving its queue while the word looks held is explored too.
                    if !lock.try_lock_until(far_deadline()) {
                        lock.lock();
                    }
                    // SAFETY: locked just above.
                    unsafe { lock.unlock() };
                })
            };
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: deliberately broken (nobody holds the lock), to check the repair.
                unsafe { lock.unlock() }
            }));
            assert!(caught.is_err());
            misused.store(true, Ordering::SeqCst);
            locker.join().unwrap();
            assert!(!lock.is_locked());
            assert!(!lock.is_parked());
        });
    });
}
