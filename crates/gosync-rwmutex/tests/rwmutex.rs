//! Public behaviour of `RwMutex`.
//!
//! Ported from Go's `sync/rwmutex_test.go` (as behaviours, in our own code):
//! `TestParallelReaders` (readers hold the lock together), `HammerRWMutex` / `TestRWMutex`
//! (readers and writers keep an activity counter consistent), `TestRLocker` (a read lock keeps
//! a writer out until every reader has gone, and the writer keeps readers out). Added here:
//! Go's writer preference (a blocked writer shuts out new readers but not the ones inside),
//! writers never starve under looping readers nor readers under looping writers, upgradable
//! reads, downgrades, try/timed variants (a past deadline still succeeds when free), release on
//! panic, the raw hooks a condition variable uses, and `lock_api`-generic use.
//!
//! Nothing sleeps to synchronise: threads are joined through `join_within` and other threads'
//! progress is awaited through `wait_until` (both from `gosync-testkit`), which fail the test
//! after a generous limit instead of hanging it.
// The loom build has no `const fn new` and no real threads: these run on std only.
#![cfg(not(gosync_loom))]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, TryRecvError};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_rwmutex::{
    RawRwMutex, RwMutex, RwMutexReadGuard, RwMutexUpgradableReadGuard, RwMutexWriteGuard,
};
use gosync_testkit::{join_within, scaled, wait_until, LIMIT};

#[test]
fn parallel_readers() {
    for readers in [1, 3, 4] {
        let lock = Arc::new(RwMutex::new(()));
        let (locked_tx, locked_rx) = channel();
        let mut releases = Vec::new();
        let mut done = Vec::new();
        for _ in 0..readers {
            let lock = Arc::clone(&lock);
            let locked_tx = locked_tx.clone();
            let (release_tx, release_rx) = channel::<()>();
            releases.push(release_tx);
            done.push(thread::spawn(move || {
                let guard = lock.read();
                locked_tx.send(()).unwrap();
                release_rx.recv_timeout(LIMIT).unwrap();
                drop(guard);
            }));
        }
        // Every reader holds the lock at once before any lets go.
        for _ in 0..readers {
            locked_rx.recv_timeout(LIMIT).unwrap();
        }
        assert!(lock.try_write().is_none());
        for release in releases {
            release.send(()).unwrap();
        }
        for d in done {
            join_within(d);
        }
        assert!(lock.try_write().is_some());
    }
}

/// Go's `HammerRWMutex`: readers add 1 to `activity`, writers 10000; each checks it is alone
/// (writer) or among readers only (reader).
fn hammer(readers: usize, iterations: usize) {
    let lock = Arc::new(RwMutex::new(()));
    let activity = Arc::new(AtomicI32::new(0));
    let mut done = Vec::new();
    let writer = |lock: Arc<RwMutex<()>>, activity: Arc<AtomicI32>| {
        thread::spawn(move || {
            for _ in 0..iterations {
                let guard = lock.write();
                let n = activity.fetch_add(10000, Ordering::SeqCst) + 10000;
                assert_eq!(n, 10000, "writer not alone");
                std::hint::spin_loop();
                activity.fetch_sub(10000, Ordering::SeqCst);
                drop(guard);
            }
        })
    };
    let reader = |lock: Arc<RwMutex<()>>, activity: Arc<AtomicI32>| {
        thread::spawn(move || {
            for _ in 0..iterations {
                let guard = lock.read();
                let n = activity.fetch_add(1, Ordering::SeqCst) + 1;
                assert!((1..10000).contains(&n), "reader with a writer: {n}");
                std::hint::spin_loop();
                activity.fetch_sub(1, Ordering::SeqCst);
                drop(guard);
            }
        })
    };
    done.push(writer(Arc::clone(&lock), Arc::clone(&activity)));
    for _ in 0..readers / 2 {
        done.push(reader(Arc::clone(&lock), Arc::clone(&activity)));
    }
    done.push(writer(Arc::clone(&lock), Arc::clone(&activity)));
    for _ in readers / 2..readers {
        done.push(reader(Arc::clone(&lock), Arc::clone(&activity)));
    }
    for d in done {
        join_within(d);
    }
    assert_eq!(activity.load(Ordering::SeqCst), 0);
}

#[test]
fn hammer_readers_and_writers() {
    let n = scaled(1000, 10);
    for readers in [1, 3, if cfg!(miri) { 4 } else { 10 }] {
        hammer(readers, n);
    }
}

#[test]
fn read_locks_keep_the_writer_out_and_the_writer_keeps_readers_out() {
    // Go's TestRLocker, with guards sent between threads in place of `RLocker().Unlock()`.
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let rounds = scaled(10, 3);
    let (rlocked_tx, rlocked_rx) = channel::<(
        RwMutexReadGuard<'static, u32>,
        RwMutexReadGuard<'static, u32>,
    )>();
    let (wlocked_tx, wlocked_rx) = channel::<RwMutexWriteGuard<'static, u32>>();
    let worker = thread::spawn(move || {
        for _ in 0..rounds {
            rlocked_tx.send((LOCK.read(), LOCK.read())).unwrap();
            wlocked_tx.send(LOCK.write()).unwrap();
        }
    });
    for _ in 0..rounds {
        let (first, second) = rlocked_rx.recv_timeout(LIMIT).unwrap();
        drop(first);
        assert!(
            matches!(wlocked_rx.try_recv(), Err(TryRecvError::Empty)),
            "a read lock did not keep the writer out"
        );
        drop(second);
        let mut writer = wlocked_rx.recv_timeout(LIMIT).unwrap();
        *writer += 1;
        assert!(
            LOCK.try_read().is_none(),
            "the writer did not keep readers out"
        );
        drop(writer);
    }
    join_within(worker);
    assert_eq!(*LOCK.read(), rounds as u32);
}

#[test]
fn a_blocked_writer_shuts_out_new_readers_but_not_those_inside() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let inside = LOCK.read();
    let writer = thread::spawn(|| *LOCK.write() = 1);
    // The writer has claimed the lock and waits for `inside`.
    wait_until(|| LOCK.raw().is_locked_exclusive());
    assert!(
        LOCK.try_read().is_none(),
        "a new reader got past a waiting writer"
    );
    assert!(LOCK.try_read_until(Instant::now()).is_none());
    assert!(LOCK.try_upgradable_read().is_none());
    let late_reader = thread::spawn(|| *LOCK.read());
    // The reader inside is not disturbed.
    assert_eq!(*inside, 0);
    drop(inside);
    join_within(writer);
    // The late reader went in only after the writer was done.
    assert_eq!(join_within(late_reader), 1);
}

#[test]
fn writers_never_starve_under_looping_readers() {
    let lock = Arc::new(RwMutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (lock, stop, reads) = (Arc::clone(&lock), Arc::clone(&stop), Arc::clone(&reads));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let guard = lock.read();
                    reads.fetch_add(1, Ordering::Relaxed);
                    std::hint::black_box(*guard);
                }
            })
        })
        .collect();
    wait_until(|| reads.load(Ordering::Relaxed) > 10);
    let writes = scaled(200, 3);
    let writer = {
        let lock = Arc::clone(&lock);
        thread::spawn(move || {
            for _ in 0..writes {
                *lock.write() += 1;
            }
        })
    };
    join_within(writer);
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        join_within(r);
    }
    assert_eq!(*lock.read(), writes as u64);
}

#[test]
fn readers_never_starve_under_looping_writers() {
    let lock = Arc::new(RwMutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let (lock, stop) = (Arc::clone(&lock), Arc::clone(&stop));
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    *lock.write() += 1;
                }
            })
        })
        .collect();
    let reads = scaled(200, 3);
    let reader = {
        let lock = Arc::clone(&lock);
        thread::spawn(move || {
            for _ in 0..reads {
                std::hint::black_box(*lock.read());
            }
        })
    };
    join_within(reader);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        join_within(w);
    }
}

#[test]
fn upgradable_reads_share_with_readers_and_exclude_writers() {
    let lock = RwMutex::new(1);
    let upgradable = lock.upgradable_read();
    assert!(lock.try_read().is_some());
    assert!(lock.try_upgradable_read().is_none());
    assert!(lock.try_write().is_none());
    assert!(lock.try_write_for(Duration::from_millis(1)).is_none());
    assert!(lock
        .try_upgradable_read_for(Duration::from_millis(1))
        .is_none());
    // A writer that gave up left no trace: readers still enter.
    assert!(lock.try_read().is_some());
    let mut writer = RwMutexUpgradableReadGuard::upgrade(upgradable);
    *writer = 2;
    assert!(lock.try_read().is_none());
    drop(writer);
    assert_eq!(*lock.read(), 2);
}

#[test]
fn upgrade_waits_for_the_readers_inside() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let reader = LOCK.read();
    let upgrader = thread::spawn(|| {
        let guard = LOCK.upgradable_read();
        let mut writer = RwMutexUpgradableReadGuard::upgrade(guard);
        *writer = 1;
    });
    // Once the upgrade has claimed the lock, new readers wait.
    wait_until(|| LOCK.raw().is_locked_exclusive());
    assert!(LOCK.try_read().is_none());
    assert_eq!(*reader, 0);
    drop(reader);
    join_within(upgrader);
    assert_eq!(*LOCK.read(), 1);
}

#[test]
fn try_upgrade_fails_while_readers_are_inside() {
    let lock = RwMutex::new(0);
    let upgradable = lock.upgradable_read();
    let reader = lock.read();
    let upgradable = RwMutexUpgradableReadGuard::try_upgrade(upgradable).unwrap_err();
    let upgradable =
        RwMutexUpgradableReadGuard::try_upgrade_for(upgradable, Duration::from_millis(5))
            .unwrap_err();
    let upgradable =
        RwMutexUpgradableReadGuard::try_upgrade_until(upgradable, Instant::now()).unwrap_err();
    // The failed attempts left the lock open to readers again.
    assert!(lock.try_read().is_some());
    drop(reader);
    let writer = RwMutexUpgradableReadGuard::try_upgrade(upgradable).expect("no reader left");
    assert!(lock.try_read().is_none());
    drop(writer);
}

/// Runs `give_up(timeout)` on a thread while a reader holds `lock`, so that it must give up
/// after claiming the lock; once the claim is seen, a late reader starts, and must get in while
/// the first reader still holds the lock. The timeout doubles until the claim is seen (a slow
/// machine, or miri, may not look before it has passed).
fn held_back_reader_gets_in_after_give_up(
    lock: &'static RwMutex<u32>,
    give_up: fn(&'static RwMutex<u32>, Duration) -> bool,
) {
    let inside = lock.read();
    let mut timeout = Duration::from_millis(20);
    loop {
        let finished = Arc::new(AtomicBool::new(false));
        let attempt = {
            let finished = Arc::clone(&finished);
            thread::spawn(move || {
                let acquired = give_up(lock, timeout);
                finished.store(true, Ordering::SeqCst);
                acquired
            })
        };
        wait_until(|| lock.raw().is_locked_exclusive() || finished.load(Ordering::SeqCst));
        let seen = !finished.load(Ordering::SeqCst);
        let late = seen.then(|| thread::spawn(|| *lock.read()));
        // `inside` is held throughout, so the attempt gives up.
        assert!(!join_within(attempt));
        if let Some(late) = late {
            assert_eq!(join_within(late), 0);
            break;
        }
        assert!(timeout < LIMIT, "never saw the claim");
        timeout *= 2;
    }
    drop(inside);
    assert!(lock.try_write().is_some());
}

#[test]
fn a_timed_upgrade_that_gives_up_lets_held_back_readers_in() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    held_back_reader_gets_in_after_give_up(&LOCK, |lock, timeout| {
        let guard = lock.upgradable_read();
        RwMutexUpgradableReadGuard::try_upgrade_for(guard, timeout).is_ok()
    });
}

#[test]
fn a_timed_writer_that_gives_up_lets_held_back_readers_in() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    held_back_reader_gets_in_after_give_up(&LOCK, |lock, timeout| {
        lock.try_write_for(timeout).is_some()
    });
}

#[test]
fn downgrade_keeps_writers_out_and_lets_waiting_readers_in() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let mut writer = LOCK.write();
    let waiting = thread::spawn(|| *LOCK.read());
    *writer = 7;
    let reader = RwMutexWriteGuard::downgrade(writer);
    // The waiting reader gets in while this thread still reads.
    assert_eq!(join_within(waiting), 7);
    assert!(LOCK.try_write().is_none());
    assert_eq!(*reader, 7);
    drop(reader);
    assert!(LOCK.try_write().is_some());
}

#[test]
fn downgrade_hands_over_to_a_waiting_writer_after_the_readers() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let writer = LOCK.write();
    let next = thread::spawn(|| {
        let mut guard = LOCK.write();
        *guard += 1;
        *guard
    });
    let reader = RwMutexWriteGuard::downgrade(writer);
    // The next writer may claim, but waits for this reader to leave.
    assert_eq!(*reader, 0);
    drop(reader);
    assert_eq!(join_within(next), 1);
}

#[test]
fn downgrade_to_upgradable_and_back() {
    let lock = RwMutex::new(0);
    let upgradable = RwMutexWriteGuard::downgrade_to_upgradable(lock.write());
    assert!(lock.try_read().is_some());
    assert!(lock.try_write().is_none());
    let reader = RwMutexUpgradableReadGuard::downgrade(upgradable);
    let other = lock
        .try_upgradable_read()
        .expect("the upgradable slot is free again");
    drop(reader);
    drop(other);
    assert!(lock.try_write().is_some());
}

#[test]
fn try_and_timed_variants() {
    let lock = RwMutex::new(0);
    let past = Instant::now() - Duration::from_millis(1);
    // A past deadline or zero timeout still succeeds when the lock is free at once.
    assert!(lock.try_read_until(past).is_some());
    assert!(lock.try_read_for(Duration::ZERO).is_some());
    assert!(lock.try_write_until(past).is_some());
    assert!(lock.try_write_for(Duration::ZERO).is_some());
    assert!(lock.try_upgradable_read_until(past).is_some());
    assert!(lock.try_upgradable_read_for(Duration::ZERO).is_some());
    {
        let _writer = lock.write();
        assert!(lock.try_read().is_none());
        assert!(lock.try_read_until(past).is_none());
        assert!(lock.try_read_for(Duration::from_millis(5)).is_none());
        assert!(lock.try_write().is_none());
        assert!(lock.try_write_until(past).is_none());
        assert!(lock.try_write_for(Duration::from_millis(5)).is_none());
        assert!(lock.try_upgradable_read().is_none());
        assert!(lock.try_upgradable_read_until(past).is_none());
    }
    {
        let _reader = lock.read();
        assert!(lock.try_read().is_some());
        assert!(lock.try_write().is_none());
        assert!(lock.try_write_until(past).is_none());
        assert!(lock.try_write_for(Duration::from_millis(5)).is_none());
        // The writers that gave up left the lock open to readers.
        assert!(lock.try_read().is_some());
    }
    assert!(!lock.raw().is_locked());
}

#[test]
fn timed_read_waits_for_the_writer() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let mut writer = LOCK.write();
    let reader = thread::spawn(|| LOCK.try_read_for(LIMIT).map(|g| *g));
    *writer = 3;
    drop(writer);
    assert_eq!(join_within(reader), Some(3));
}

#[test]
fn a_panic_while_holding_a_guard_releases_the_lock() {
    let lock = RwMutex::new(0);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut guard = lock.write();
        *guard = 1;
        panic!("boom");
    }));
    assert!(result.is_err());
    assert_eq!(*lock.try_write().expect("released by the panic"), 1);
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _guard = lock.read();
        panic!("boom");
    }));
    assert!(result.is_err());
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _guard = lock.upgradable_read();
        panic!("boom");
    }));
    assert!(result.is_err());
    assert!(
        lock.try_write().is_some(),
        "no poisoning, nothing left locked"
    );
}

#[test]
fn unlocked_releases_and_relocks_also_on_panic() {
    let lock = RwMutex::new(0);
    let mut writer = lock.write();
    RwMutexWriteGuard::unlocked(&mut writer, || assert!(lock.try_read().is_some()));
    assert!(lock.try_read().is_none());
    let result = catch_unwind(AssertUnwindSafe(|| {
        RwMutexWriteGuard::unlocked(&mut writer, || panic!("boom"));
    }));
    assert!(result.is_err());
    assert!(lock.try_read().is_none(), "relocked after the panic");
    drop(writer);

    let mut reader = lock.read();
    RwMutexReadGuard::unlocked(&mut reader, || *lock.try_write().unwrap() = 5);
    assert_eq!(*reader, 5);
    assert!(lock.try_write().is_none());
}

#[test]
fn raw_hooks_release_and_retake_in_place() {
    // What a condition variable does: release through the guard's raw lock, wait, retake.
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let mut writer = LOCK.write();
    let raw: &RawRwMutex = RwMutexWriteGuard::raw(&writer);
    assert!(std::ptr::eq(raw, LOCK.raw()));
    assert!(std::ptr::eq(RwMutexWriteGuard::rwmutex(&writer), &LOCK));
    // SAFETY: `writer` holds the exclusive lock; it is retaken below before `writer` is used.
    unsafe { raw.unlock_exclusive() };
    join_within(thread::spawn(|| *LOCK.write() = 9));
    raw.lock_exclusive();
    *writer += 1;
    drop(writer);

    let mut reader = LOCK.read();
    let raw = RwMutexReadGuard::raw(&mut reader);
    // SAFETY: `reader` holds a shared lock; it is retaken below before `reader` is used.
    unsafe { raw.unlock_shared() };
    join_within(thread::spawn(|| *LOCK.write() += 1));
    raw.lock_shared();
    assert_eq!(*reader, 11);
}

#[test]
fn formatting_and_constructors() {
    let lock = RwMutex::from(String::from("go"));
    assert_eq!(format!("{lock:?}"), r#"RwMutex { data: "go", .. }"#);
    {
        let writer = lock.write();
        assert_eq!(format!("{lock:?}"), "RwMutex { data: <locked>, .. }");
        assert_eq!(format!("{writer}"), "go");
        assert_eq!(format!("{writer:?}"), r#""go""#);
    }
    let upgradable = lock.upgradable_read();
    assert_eq!(format!("{upgradable} {upgradable:?}"), r#"go "go""#);
    let reader = lock.read();
    assert_eq!(format!("{reader} {reader:?}"), r#"go "go""#);
    drop((reader, upgradable));
    let mut lock = RwMutex::<Vec<u8>>::default();
    lock.get_mut().push(1);
    assert_eq!(lock.into_inner(), [1]);
    let unsized_lock: &RwMutex<[u8]> = &RwMutex::new([1, 2, 3]);
    assert_eq!(unsized_lock.read().len(), 3);
    assert!(format!("{:?}", RawRwMutex::new()).contains("readers: 0"));
}

#[test]
fn stress_mixed_operations_keep_the_invariant() {
    // Every writer keeps `a == b`; every reader checks it.
    let lock = Arc::new(RwMutex::new((0u64, 0u64)));
    let threads = if cfg!(miri) { 3 } else { 6 };
    let rounds = scaled(2000, 20);
    let done: Vec<_> = (0..threads)
        .map(|t| {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                let mut written = 0;
                for i in 0..rounds {
                    match (t + i) % 7 {
                        0 => {
                            let mut g = lock.write();
                            g.0 += 1;
                            g.1 += 1;
                            written += 1;
                        }
                        1 => {
                            let g = lock.upgradable_read();
                            assert_eq!(g.0, g.1);
                            let mut g = RwMutexUpgradableReadGuard::upgrade(g);
                            g.0 += 1;
                            g.1 += 1;
                            written += 1;
                            let g = RwMutexWriteGuard::downgrade(g);
                            assert_eq!(g.0, g.1);
                        }
                        2 => {
                            if let Some(mut g) = lock.try_write_for(Duration::from_micros(50)) {
                                g.0 += 1;
                                g.1 += 1;
                                written += 1;
                            }
                        }
                        3 => {
                            if let Some(g) = lock.try_read_for(Duration::from_micros(50)) {
                                assert_eq!(g.0, g.1);
                            }
                        }
                        4 => {
                            let g = lock.upgradable_read();
                            if let Ok(mut g) = RwMutexUpgradableReadGuard::try_upgrade_for(
                                g,
                                Duration::from_micros(50),
                            ) {
                                g.0 += 1;
                                g.1 += 1;
                                written += 1;
                            }
                        }
                        _ => {
                            let g = lock.read();
                            assert_eq!(g.0, g.1);
                        }
                    }
                }
                written
            })
        })
        .collect();
    let total: u64 = done.into_iter().map(join_within).sum();
    let g = lock.read();
    assert_eq!(*g, (total, total));
    assert!(!lock.raw().is_locked_exclusive());
}

/// Makes `lock` count its readers per thread: two reads at once on one thread make it allocate
/// its reader shards, so later guards' reads go through them.
fn shard<T>(lock: &RwMutex<T>) {
    let (first, second) = (lock.read(), lock.read());
    drop((first, second));
}

#[test]
fn a_read_guard_dropped_on_another_thread_releases_its_lock() {
    static LOCK: RwMutex<i32> = RwMutex::new(5);
    shard(&LOCK);
    let guard = join_within(thread::spawn(|| LOCK.read()));
    assert!(LOCK.try_write().is_none());
    join_within(thread::spawn(move || assert_eq!(*guard, 5)));
    assert!(!LOCK.raw().is_locked());
    assert!(LOCK.try_write().is_some());
}

#[test]
fn sharded_readers_keep_writers_out_and_try_write_gives_its_claim_back() {
    let lock = RwMutex::new(0);
    shard(&lock);
    let reader = lock.read();
    assert!(lock.raw().is_locked());
    assert!(!lock.raw().is_locked_exclusive());
    // A failed `try_write` leaves nothing behind: readers still get in, and so does the upgrade
    // once the plain readers have gone.
    assert!(lock.try_write().is_none());
    assert!(lock.try_write_for(Duration::from_millis(1)).is_none());
    let second = lock.read();
    let upgradable = lock.upgradable_read();
    let upgradable = RwMutexUpgradableReadGuard::try_upgrade(upgradable).unwrap_err();
    drop((reader, second));
    let mut writer = RwMutexUpgradableReadGuard::try_upgrade(upgradable).unwrap();
    *writer += 1;
    drop(writer);
    assert!(format!("{:?}", lock.raw()).contains("readers: 0"));
    assert_eq!(*lock.read(), 1);
}

#[test]
fn a_writer_waits_for_sharded_readers_then_shuts_new_ones_out() {
    let lock = Arc::new(RwMutex::new(0));
    shard(&lock);
    let reader = lock.read();
    let writer = {
        let lock = Arc::clone(&lock);
        thread::spawn(move || *lock.write() += 1)
    };
    wait_until(|| lock.raw().is_locked_exclusive());
    // The writer has claimed the lock and waits for `reader`: new readers wait too.
    assert!(lock.try_read().is_none());
    drop(reader);
    join_within(writer);
    assert_eq!(*lock.read(), 1);
}

/// Go's hammer on a sharded lock, with every way in and out of it at once: plain, timed and
/// try reads, read guards released on another thread, upgrades, downgrades, and writers.
#[test]
fn stress_sharded_lock_with_every_operation() {
    static LOCK: RwMutex<()> = RwMutex::new(());
    static ACTIVITY: AtomicI32 = AtomicI32::new(0);
    fn enter_and_leave_read() {
        let n = ACTIVITY.fetch_add(1, Ordering::SeqCst) + 1;
        assert!((1..10000).contains(&n), "reader with a writer: {n}");
        ACTIVITY.fetch_sub(1, Ordering::SeqCst);
    }
    fn write() {
        let n = ACTIVITY.fetch_add(10000, Ordering::SeqCst) + 10000;
        assert_eq!(n, 10000, "writer not alone");
        ACTIVITY.fetch_sub(10000, Ordering::SeqCst);
    }
    shard(&LOCK);
    let rounds = scaled(2000, 20);
    let (tx, rx) = channel::<RwMutexReadGuard<'static, ()>>();
    let readers = thread::spawn(move || {
        for i in 0..rounds {
            let guard = match i % 3 {
                0 => LOCK.read(),
                1 => LOCK.try_read_for(LIMIT).expect("timed read"),
                _ => loop {
                    if let Some(guard) = LOCK.try_read() {
                        break guard;
                    }
                    thread::yield_now();
                },
            };
            enter_and_leave_read();
            if i % 2 == 0 {
                tx.send(guard).unwrap();
            }
        }
    });
    let dropper = thread::spawn(move || {
        while let Ok(guard) = rx.recv_timeout(LIMIT) {
            drop(guard);
        }
    });
    let writers = thread::spawn(move || {
        for i in 0..rounds / 4 {
            if i % 2 == 0 {
                let _guard = LOCK.write();
                write();
            } else {
                let upgradable = LOCK.upgradable_read();
                enter_and_leave_read();
                let writer = RwMutexUpgradableReadGuard::upgrade(upgradable);
                write();
                let _reader = RwMutexWriteGuard::downgrade(writer);
                enter_and_leave_read();
            }
        }
    });
    let plain = thread::spawn(move || {
        for _ in 0..rounds {
            let _guard = LOCK.read();
            enter_and_leave_read();
        }
    });
    for t in [readers, dropper, writers, plain] {
        join_within(t);
    }
    assert_eq!(ACTIVITY.load(Ordering::SeqCst), 0);
    assert!(!LOCK.raw().is_locked());
}

#[cfg(feature = "lock_api")]
#[test]
fn lock_api_generic_use() {
    use lock_api::{RwLock, RwLockUpgradableReadGuard, RwLockWriteGuard};

    fn bump<R: lock_api::RawRwLockUpgrade + lock_api::RawRwLockDowngrade>(
        lock: &RwLock<R, u32>,
    ) -> u32 {
        let upgradable = lock.upgradable_read();
        let mut writer = RwLockUpgradableReadGuard::upgrade(upgradable);
        *writer += 1;
        *RwLockWriteGuard::downgrade(writer)
    }

    let lock: RwLock<RawRwMutex, u32> = RwLock::new(0);
    assert_eq!(bump(&lock), 1);
    assert!(lock.try_read_for(Duration::ZERO).is_some());
    let reader = lock.read();
    assert!(lock.try_write_for(Duration::from_millis(1)).is_none());
    drop(reader);
    assert!(lock.try_write_until(Instant::now()).is_some());
    let lock = Arc::new(lock);
    let others: Vec<_> = (0..2)
        .map(|_| {
            let lock = Arc::clone(&lock);
            thread::spawn(move || {
                for _ in 0..scaled(100, 3) {
                    bump(&lock);
                }
            })
        })
        .collect();
    for o in others {
        join_within(o);
    }
    assert_eq!(*lock.read(), 1 + 2 * scaled(100, 3) as u32);
}
