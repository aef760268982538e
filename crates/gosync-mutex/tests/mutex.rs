//! Public behaviour of `Mutex` and `RawMutex`.
//!
//! Ported from Go's `src/sync/mutex_test.go` (behaviours, in our own code): `TestMutex` (many
//! threads hammering one lock with `lock` and `try_lock`), `TestMutexFairness` (a thread that
//! re-locks in a tight loop cannot keep another out), and `TestMutexMisuse`'s spirit (here the
//! type system rules out unlocking an unlocked mutex). Added: timed locking, past deadlines,
//! unlocking on panic, `Debug`, hand-off in starvation mode, and `lock_api` interop.
//!
//! Nothing sleeps to synchronise: threads are joined through `join_within`, which fails the test
//! after a generous limit instead of hanging it, and a test that needs a thread to be queued
//! waits (`wait_until`: yielding, bounded) until the park layer reports it queued. Both helpers
//! come from `gosync-testkit`.
//!
//! Real threads and real time: not built under loom (see `loom.rs` for the models).
#![cfg(not(gosync_loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync_mutex::{Mutex, MutexGuard, RawMutex};
use gosync_testkit::{join_within, scaled, wait_until, LIMIT};

/// Whether some thread is queued on `raw`'s key right now (asked of the park layer, under its
/// lock, without waking anyone).
fn has_waiters(raw: &RawMutex) -> bool {
    gosync_park::unpark_filter(raw.key(), |_| gosync_park::FilterOp::Stop, |_| 0).have_more
}

/// Waits (yielding, bounded) until a thread is queued on `raw`.
#[track_caller]
fn until_queued(raw: &RawMutex) {
    wait_until(|| has_waiters(raw));
}

/// Busy work for about `d`, never sleeping (to hold a lock for a while).
fn busy_for(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Runs `body(t, &mutex, &counter)` on `threads` threads at once (`t` in `0..threads`), joins
/// them (bounded), and returns what they counted in `counter`.
fn on_threads<T: Send + 'static>(
    threads: usize,
    mutex: &Arc<Mutex<T>>,
    body: impl Fn(usize, &Mutex<T>, &AtomicUsize) + Send + Sync + 'static,
) -> usize {
    let counter = Arc::new(AtomicUsize::new(0));
    let body = Arc::new(body);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (mutex, counter, body) =
                (Arc::clone(mutex), Arc::clone(&counter), Arc::clone(&body));
            thread::spawn(move || body(t, &mutex, &counter))
        })
        .collect();
    for handle in handles {
        join_within(handle);
    }
    counter.load(Ordering::Relaxed)
}

#[test]
fn lock_and_unlock() {
    let mutex = Mutex::new(0);
    assert!(!mutex.is_locked());
    {
        let mut guard = mutex.lock();
        assert!(mutex.is_locked());
        *guard += 1;
    }
    assert!(!mutex.is_locked());
    assert_eq!(*mutex.lock(), 1);
}

/// Go's `TestMutex`/`HammerMutex`: many threads, each incrementing under the lock, some through
/// `try_lock`; no increment is lost.
#[test]
fn hammer_with_lock_and_try_lock() {
    let threads = scaled(10, 3);
    let iterations = scaled(1000, 20);
    let mutex = Arc::new(Mutex::new(0usize));
    on_threads(threads, &mutex, move |_, mutex, _| {
        for i in 0..iterations {
            if i % 3 == 0 {
                if let Some(mut guard) = mutex.try_lock() {
                    *guard += 1;
                    continue;
                }
            }
            *mutex.lock() += 1;
        }
    });
    assert_eq!(*mutex.lock(), threads * iterations);
    assert!(!mutex.is_locked());
}

#[test]
fn try_lock_fails_while_held() {
    let mutex = Mutex::new(());
    let guard = mutex.try_lock().expect("a free mutex");
    assert!(mutex.try_lock().is_none());
    let mutex = &mutex;
    thread::scope(|s| {
        assert!(s.spawn(|| mutex.try_lock().is_none()).join().unwrap());
    });
    drop(guard);
    assert!(mutex.try_lock().is_some());
}

#[test]
fn timed_lock_succeeds_when_released_in_time() {
    let mutex = Arc::new(Mutex::new(0));
    let guard = mutex.lock();
    let waiter = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || {
            let mut guard = mutex
                .try_lock_for(LIMIT)
                .expect("released well before the limit");
            *guard += 1;
        })
    };
    until_queued(MutexGuard::raw(&guard));
    drop(guard);
    join_within(waiter);
    assert_eq!(*mutex.lock(), 1);
}

#[test]
fn timed_lock_times_out_and_leaves_the_lock_clean() {
    let mutex = Arc::new(Mutex::new(()));
    let guard = mutex.lock();
    let waiter = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || {
            let start = Instant::now();
            let result = mutex.try_lock_for(Duration::from_millis(20)).is_none();
            (result, start.elapsed())
        })
    };
    let (timed_out, waited) = join_within(waiter);
    assert!(timed_out);
    assert!(waited >= Duration::from_millis(20));
    assert!(!has_waiters(MutexGuard::raw(&guard)));
    drop(guard);
    assert!(!mutex.is_locked());
    // The waiter left no mark behind: the next lock and unlock take the fast paths and work.
    assert!(mutex.try_lock().is_some());
    assert!(mutex.try_lock_until(Instant::now() + LIMIT).is_some());
}

#[test]
fn until_deadline_in_the_past() {
    let mutex = Mutex::new(());
    let past = Instant::now();
    let guard = mutex
        .try_lock_until(past)
        .expect("free: a past deadline still locks");
    let start = Instant::now();
    assert!(mutex.try_lock_until(past).is_none());
    assert!(mutex.try_lock_for(Duration::ZERO).is_none());
    // "At once": nothing queued, and far below any timeout the test could have used.
    assert!(!has_waiters(MutexGuard::raw(&guard)));
    assert!(start.elapsed() < LIMIT);
    drop(guard);
    assert!(mutex.try_lock_for(Duration::ZERO).is_some());
}

#[test]
fn huge_timeout_waits_like_lock() {
    let mutex = Arc::new(Mutex::new(()));
    let guard = mutex.lock();
    let waiter = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || mutex.try_lock_for(Duration::MAX).is_some())
    };
    until_queued(MutexGuard::raw(&guard));
    drop(guard);
    assert!(join_within(waiter));
}

#[test]
fn panic_while_locked_unlocks() {
    let mutex = Arc::new(Mutex::new(1));
    let panicker = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || {
            let mut guard = mutex.lock();
            *guard = 2;
            panic!("boom while locked");
        })
    };
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(panicker.join().is_err()).ok());
    assert!(rx
        .recv_timeout(LIMIT)
        .expect("panicking thread did not finish"));
    assert!(!mutex.is_locked());
    // No poisoning: the data is there, with the write made before the panic.
    assert_eq!(*mutex.lock(), 2);
}

#[test]
fn debug_shows_data_or_locked() {
    let mutex = Mutex::new(5);
    assert_eq!(format!("{mutex:?}"), "Mutex { data: 5, .. }");
    let guard = mutex.lock();
    assert_eq!(format!("{mutex:?}"), "Mutex { data: <locked>, .. }");
    assert_eq!(format!("{guard:?}"), "5");
    assert_eq!(format!("{guard}"), "5");
    drop(guard);
    assert!(format!("{:?}", RawMutex::new()).contains("locked: false"));
}

#[test]
fn get_mut_into_inner_default_from() {
    let mut mutex = Mutex::from(vec![1]);
    mutex.get_mut().push(2);
    assert_eq!(mutex.into_inner(), [1, 2]);
    let mutex: Mutex<String> = Mutex::default();
    assert!(mutex.lock().is_empty());
    let unsized_mutex: &Mutex<[u8]> = &Mutex::new([1, 2, 3]);
    assert_eq!(unsized_mutex.lock().len(), 3);
}

#[test]
fn static_mutex() {
    static COUNTER: Mutex<u32> = Mutex::new(0);
    static RAW: RawMutex = RawMutex::new();
    *COUNTER.lock() += 1;
    assert!(*COUNTER.lock() >= 1);
    RAW.lock();
    // SAFETY: locked just above.
    unsafe { RAW.unlock() };
    assert_eq!(std::mem::size_of::<Mutex<()>>(), 1);
    assert_eq!(std::mem::size_of::<RawMutex>(), 1);
}

#[test]
fn guard_gives_the_mutex_and_unlocks_in_place() {
    let mutex = Mutex::new(0);
    let mut guard = mutex.lock();
    assert!(std::ptr::eq(MutexGuard::mutex(&guard), &mutex));
    let got = MutexGuard::unlocked(&mut guard, || {
        assert!(!mutex.is_locked());
        *mutex.lock() += 1;
        7
    });
    assert_eq!(got, 7);
    assert!(mutex.is_locked());
    assert_eq!(*guard, 1);
}

#[test]
fn unlocked_relocks_on_panic() {
    let mutex = Mutex::new(0);
    let mut guard = mutex.lock();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        MutexGuard::unlocked(&mut guard, || panic!("inside unlocked"));
    }));
    assert!(result.is_err());
    assert!(mutex.is_locked());
    *guard += 1;
    drop(guard);
    assert_eq!(*mutex.lock(), 1);
}

/// A raw lock may be unlocked by a thread other than the one that locked it, as in Go.
#[test]
fn raw_unlock_from_another_thread() {
    let raw = Arc::new(RawMutex::new());
    raw.lock();
    let other = Arc::clone(&raw);
    // SAFETY: the lock is held, and ownership of that locked state passes to this thread.
    join_within(thread::spawn(move || unsafe { other.unlock() }));
    assert!(!raw.is_locked());
}

/// Starvation mode, forced: the unlock hands the lock to the queued thread without ever freeing
/// it, so a newcomer's `try_lock` right after the unlock fails, every time.
#[test]
fn starvation_mode_hands_off_to_the_waiter() {
    let rounds = scaled(20, 3);
    for _ in 0..rounds {
        let mutex = Arc::new(Mutex::new(0));
        let mut guard = mutex.lock();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let waiter = {
            let mutex = Arc::clone(&mutex);
            thread::spawn(move || {
                let mut guard = mutex.lock();
                *guard += 1;
                // Hold the handed-off lock until the test has looked.
                release_rx
                    .recv_timeout(LIMIT)
                    .expect("test did not release");
            })
        };
        let raw = MutexGuard::raw(&guard);
        // Forcing succeeds only once the waiter is queued.
        wait_until(|| raw.force_starvation());
        *guard += 10;
        drop(guard);
        // Handed over: the lock never became free, so a newcomer cannot barge.
        assert!(mutex.is_locked());
        assert!(mutex.try_lock().is_none());
        assert!(mutex.try_lock_for(Duration::ZERO).is_none());
        release_tx.send(()).unwrap();
        join_within(waiter);
        // The waiter was the last one: starvation mode ended with it.
        assert_eq!(*mutex.try_lock().expect("free again"), 11);
    }
}

/// Go's `TestMutexFairness`: one thread re-locks in a tight loop, holding the lock for about a
/// microsecond each time; another thread must still get the lock 10 times. Without starvation
/// mode the second thread could lose every race; with it, each of its waits is bounded by the
/// 1 ms threshold plus a hand-off. The 10 s bound is a correctness bound, not a speed check.
#[test]
#[cfg_attr(
    miri,
    ignore = "depends on a 1 ms threshold in real time; far too slow under miri"
)]
fn fairness_a_hog_cannot_keep_others_out() {
    let mutex = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let hog = {
        let mutex = Arc::clone(&mutex);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _guard = mutex.lock();
                busy_for(Duration::from_micros(1));
            }
        })
    };
    let (done_tx, done_rx) = mpsc::channel();
    let other = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || {
            for _ in 0..10 {
                // Go's test pauses 100 µs between locks; busy, so the hog keeps the lock hot.
                busy_for(Duration::from_micros(100));
                drop(mutex.lock());
            }
            done_tx.send(()).unwrap();
        })
    };
    let result = done_rx.recv_timeout(Duration::from_secs(10));
    stop.store(true, Ordering::Relaxed);
    join_within(hog);
    result.expect("a thread could not get the mutex 10 times within 10 s");
    join_within(other);
}

/// Starvation under real contention: several threads each lock many times; every thread
/// finishes all of its iterations (none is starved), and no increment is lost.
#[test]
fn contention_every_thread_makes_progress() {
    let threads = scaled(6, 3);
    let iterations = scaled(20_000, 30);
    let mutex = Arc::new(Mutex::new(0usize));
    let finished = on_threads(threads, &mutex, move |t, mutex, finished| {
        for i in 0..iterations {
            let mut guard = mutex.lock();
            *guard += 1;
            if !cfg!(miri) && (i + t) % 512 == 0 {
                // Now and then hold it long enough for waiters to cross the threshold.
                busy_for(Duration::from_micros(1500));
            }
        }
        finished.fetch_add(1, Ordering::Relaxed);
    });
    assert_eq!(finished, threads);
    assert_eq!(*mutex.lock(), threads * iterations);
}

/// Stress: lockers, try-lockers and timed lockers with short timeouts race; mutual exclusion
/// holds (checked with a flag no two holders may see set), and the lock ends free.
#[test]
fn stress_mixed_lockers_and_timeouts() {
    let threads = scaled(6, 3);
    let iterations = scaled(5000, 20);
    let mutex = Arc::new(Mutex::new(false));
    let acquired = on_threads(threads, &mutex, move |t, mutex, acquired| {
        for i in 0..iterations {
            let guard = match (t + i) % 3 {
                0 => Some(mutex.lock()),
                1 => mutex.try_lock(),
                _ => mutex.try_lock_for(Duration::from_micros(((i % 7) * 20) as u64)),
            };
            if let Some(mut guard) = guard {
                assert!(!*guard, "two holders at once");
                *guard = true;
                std::hint::spin_loop();
                *guard = false;
                acquired.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    assert!(acquired >= threads * iterations / 3);
    assert!(!mutex.is_locked());
    assert!(!*mutex.try_lock().expect("free at the end"));
}

/// 64 threads on a small machine, some holding the lock for a while (so that waiters pass the
/// 1 ms threshold and switch the lock to starvation mode) while others barge in with `lock`,
/// `try_lock` and short timed locks: an unlock releases the lock before it wakes or hands it
/// over, so newcomers, mode switches and timeouts all land in between. No two holders at once
/// (a flag no two holders may see set), every acquisition counted exactly under the lock, and
/// the lock ends free and unmarked.
#[test]
fn stress_starvation_with_barging_and_timeouts() {
    let threads = scaled(64, 4);
    let iterations = scaled(1000, 10);
    // (a holder is inside, acquisitions counted under the lock)
    let mutex = Arc::new(Mutex::new((false, 0usize)));
    let acquired = on_threads(threads, &mutex, move |t, mutex, acquired| {
        for i in 0..iterations {
            let guard = match (t + i) % 4 {
                0 | 1 => Some(mutex.lock()),
                2 => mutex.try_lock(),
                _ => mutex.try_lock_for(Duration::from_micros(((t + i) % 9 * 100) as u64)),
            };
            if let Some(mut guard) = guard {
                assert!(!guard.0, "two holders at once");
                guard.0 = true;
                if (t + i) % 16 == 0 {
                    busy_for(Duration::from_micros(200));
                }
                guard.1 += 1;
                guard.0 = false;
                acquired.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    assert!(!mutex.is_locked());
    let guard = mutex.try_lock().expect("free at the end");
    assert!(!guard.0);
    assert_eq!(guard.1, acquired, "acquisitions");
    assert!(guard.1 >= threads * iterations / 2, "every `lock` succeeds");
    assert!(!has_waiters(MutexGuard::raw(&guard)));
}

#[cfg(feature = "lock_api")]
mod lock_api_interop {
    use super::*;

    /// Generic code over `lock_api`'s traits, as a `lock_api` user would write it.
    fn bump<R: lock_api::RawMutexTimed<Duration = Duration>>(mutex: &lock_api::Mutex<R, u32>) {
        *mutex.lock() += 1;
        let guard = mutex.try_lock_for(Duration::from_secs(1)).expect("free");
        assert!(mutex.is_locked());
        assert!(mutex.try_lock().is_none());
        drop(guard);
    }

    #[test]
    fn lock_api_mutex_over_raw_mutex() {
        let mutex = lock_api::Mutex::<RawMutex, u32>::new(0);
        bump(&mutex);
        bump(&mutex);
        assert_eq!(*mutex.lock(), 2);
        let raw = <RawMutex as lock_api::RawMutex>::INIT;
        assert!(lock_api::RawMutexTimed::try_lock_until(
            &raw,
            Instant::now()
        ));
        assert!(!lock_api::RawMutex::try_lock(&raw));
        // SAFETY: locked just above.
        unsafe { lock_api::RawMutex::unlock(&raw) };
        assert!(!lock_api::RawMutex::is_locked(&raw));
    }

    #[test]
    fn lock_api_hammer() {
        let mutex = Arc::new(lock_api::Mutex::<RawMutex, usize>::new(0));
        let threads = scaled(4, 2);
        let iterations = scaled(1000, 20);
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let mutex = Arc::clone(&mutex);
                thread::spawn(move || {
                    for _ in 0..iterations {
                        *mutex.lock() += 1;
                    }
                })
            })
            .collect();
        for handle in handles {
            join_within(handle);
        }
        assert_eq!(*mutex.lock(), threads * iterations);
    }
}

#[test]
fn lock_ctx_with_a_done_context_fails_at_once_even_when_free() {
    let mutex = Mutex::new(0);
    let (ctx, cancel) = gosync_context::Context::background().with_cancel();
    cancel.cancel();
    assert_eq!(
        mutex.lock_ctx(&ctx).err(),
        Some(gosync_context::ContextError::Canceled)
    );
    assert!(!mutex.is_locked());
    let (ctx, _cancel) = gosync_context::Context::background().with_deadline(Instant::now());
    assert_eq!(
        mutex.lock_ctx(&ctx).err(),
        Some(gosync_context::ContextError::DeadlineExceeded)
    );
    assert!(!mutex.is_locked());
    *mutex
        .lock_ctx(&gosync_context::Context::background())
        .expect("free") += 1;
    assert_eq!(*mutex.lock(), 1);
}

#[test]
fn lock_ctx_cancelled_mid_wait_leaves_nothing_held() {
    let mutex = Arc::new(Mutex::new(0));
    let guard = mutex.lock();
    let (ctx, cancel) = gosync_context::Context::background().with_cancel();
    let waiter = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || mutex.lock_ctx(&ctx).map(|mut guard| *guard += 1).err())
    };
    until_queued(MutexGuard::raw(&guard));
    cancel.cancel();
    assert_eq!(
        join_within(waiter),
        Some(gosync_context::ContextError::Canceled)
    );
    // The waiter left the queue and took its mark with it: the unlock is the fast one, and the
    // lock is free afterwards.
    assert!(!MutexGuard::raw(&guard).is_parked());
    drop(guard);
    assert!(!mutex.is_locked());
    assert_eq!(*mutex.try_lock().expect("free"), 0);
}

#[test]
fn lock_ctx_gets_the_lock_released_mid_wait_or_gives_up_at_the_deadline() {
    let mutex = Arc::new(Mutex::new(0));
    let guard = mutex.lock();
    let (ctx, _cancel) = gosync_context::Context::background().with_timeout(LIMIT * 2);
    let waiter = {
        let mutex = Arc::clone(&mutex);
        thread::spawn(move || mutex.lock_ctx(&ctx).map(|mut guard| *guard += 1))
    };
    until_queued(MutexGuard::raw(&guard));
    drop(guard);
    assert_eq!(join_within(waiter), Ok(()));
    assert_eq!(*mutex.lock(), 1);

    let guard = mutex.lock();
    let (ctx, _cancel) =
        gosync_context::Context::background().with_timeout(Duration::from_millis(5));
    assert_eq!(
        mutex.lock_ctx(&ctx).err(),
        Some(gosync_context::ContextError::DeadlineExceeded)
    );
    assert!(!MutexGuard::raw(&guard).is_parked());
    drop(guard);
    assert!(!mutex.is_locked());
}

/// Go's `Unlock` of an unlocked mutex is fatal; here `RawMutex::unlock` of a free lock with no
/// waiters panics with Go's text at the caller's line, and leaves the lock free and usable.
#[test]
fn unlocking_a_free_raw_mutex_panics_at_the_caller() {
    let lock = RawMutex::new();
    misused_unlock_panics_and_frees(&lock);
}

/// A free lock whose `PARKED` mark is set (threads queued, or `mark_parked`) is still free: an
/// unlock of it panics too, and the borrow its `fetch_sub` made from the mark is repaired, so
/// the lock is not left looking held by nobody.
#[test]
fn unlocking_a_free_raw_mutex_with_the_parked_mark_panics_and_frees_it() {
    let lock = RawMutex::new();
    lock.mark_parked();
    misused_unlock_panics_and_frees(&lock);
    assert!(!lock.is_parked());
}

/// Unlocks `lock`, which nobody holds: the panic has Go's text and the caller's line, and the
/// lock is left free and usable.
fn misused_unlock_panics_and_frees(lock: &RawMutex) {
    let line = line!() + 3;
    let (file, at, message) = gosync_testkit::panic_site(|| {
        // SAFETY: deliberately broken (the lock is not held), to check the panic.
        unsafe { lock.unlock() };
    });
    assert_eq!((file.as_str(), at), (file!(), line));
    assert_eq!(message, "sync: unlock of unlocked mutex");
    assert!(!lock.is_locked());
    assert!(lock.try_lock());
    // SAFETY: locked just above.
    unsafe { lock.unlock() };
    assert!(!lock.is_locked());
}
