//! Who may get in while whom waits: Go's writer preference also while an upgradable reader
//! holds the lock, and readers never sent away by a thread that only tries to write.
//!
//! Nothing sleeps to synchronise: threads are joined through `join_within` and other threads'
//! progress is awaited through `wait_until` (both from `gosync-testkit`).
#![cfg(not(gosync_loom))]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
use gosync_testkit::{join_within, scaled, spawn_with, wait_until};

/// A writer queued behind an upgradable reader holds new readers back until it has had its
/// turn, as a writer queued behind plain readers does.
#[test]
fn a_writer_queued_behind_an_upgradable_reader_holds_back_new_readers() {
    let lock = Arc::new(RwMutex::new(0));
    let upgradable = lock.upgradable_read();
    let writer = spawn_with(&lock, |lock| *lock.write() += 1);
    // Once the writer is queued, readers are held back.
    wait_until(|| lock.try_read().is_none());
    assert!(lock.try_read_for(Duration::from_millis(1)).is_none());
    let late_reader = spawn_with(&lock, |lock| *lock.read());
    // The upgradable reader is not disturbed; its release lets the writer in first.
    assert_eq!(*upgradable, 0);
    drop(upgradable);
    join_within(writer);
    assert_eq!(
        join_within(late_reader),
        1,
        "a reader got in before the writer"
    );
    assert!(!lock.raw().is_locked());
}

/// Readers wait for the writers that were queued when they came, not for writers that queued
/// after them: when the earlier writer gives up, a reader gets in although a later writer is
/// still queued (behind an upgradable reader that keeps the lock meanwhile). Without this,
/// timed writers that keep retrying would hold readers out for as long as they retry.
#[test]
fn a_reader_waits_only_for_the_writers_queued_before_it() {
    early_writer_gives_up_with_a_reader_and_a_late_writer_queued(true);
}

/// Go's guarantee still holds when a writer gives up: a reader that came after a writer still
/// queued waits for that writer to have had its turn.
#[test]
fn a_reader_behind_a_writer_still_queued_keeps_waiting_when_an_earlier_one_gives_up() {
    early_writer_gives_up_with_a_reader_and_a_late_writer_queued(false);
}

/// Behind an upgradable reader that keeps the lock, an early writer queues, then a reader and a
/// late writer (the reader first when `reader_first`), and then the early writer gives up.
fn early_writer_gives_up_with_a_reader_and_a_late_writer_queued(reader_first: bool) {
    let lock = Arc::new(RwMutex::new(0));
    let upgradable = lock.upgradable_read();
    let (ctx, cancel) = Context::background().with_cancel();
    let early_writer = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).map(|_| ()));
    wait_until(|| lock.raw().queued_writers() == 1);
    let park_reader = || {
        let reader = spawn_with(&lock, |lock| *lock.read());
        wait_until(|| lock.raw().has_parked_readers());
        reader
    };
    let queue_late_writer = || {
        let writer = spawn_with(&lock, |lock| *lock.write() += 1);
        wait_until(|| lock.raw().queued_writers() == 2);
        writer
    };
    let (reader, late_writer) = if reader_first {
        let reader = park_reader();
        (reader, queue_late_writer())
    } else {
        let late_writer = queue_late_writer();
        (park_reader(), late_writer)
    };
    cancel.cancel();
    assert_eq!(join_within(early_writer), Err(ContextError::Canceled));
    // The give-up's admission is over: the reader is in, or still parked behind the late writer.
    assert_eq!(lock.raw().has_parked_readers(), !reader_first);
    assert_eq!(lock.raw().queued_writers(), 1);
    let reader = if reader_first {
        assert_eq!(
            join_within(reader),
            0,
            "the reader waited for the later writer"
        );
        None
    } else {
        Some(reader)
    };
    drop(upgradable);
    join_within(late_writer);
    if let Some(reader) = reader {
        assert_eq!(
            join_within(reader),
            1,
            "the reader got in ahead of a queued writer"
        );
    }
    assert_eq!(*lock.read(), 1);
    assert!(!lock.raw().is_locked());
}

/// A writer queued behind an upgradable reader that gives up (its context is cancelled) leaves
/// no mark behind: the readers it held back get in while the upgradable reader still holds the
/// lock.
#[test]
fn a_writer_that_gives_up_behind_an_upgradable_reader_lets_the_readers_in() {
    let lock = Arc::new(RwMutex::new(0));
    let upgradable = lock.upgradable_read();
    let (ctx, cancel) = Context::background().with_cancel();
    let writer = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).map(|_| ()));
    wait_until(|| lock.try_read().is_none());
    let held_back = spawn_with(&lock, |lock| *lock.read());
    cancel.cancel();
    assert_eq!(join_within(writer), Err(ContextError::Canceled));
    assert_eq!(join_within(held_back), 0);
    assert!(lock.try_read().is_some());
    // The upgradable reader can still upgrade: nothing of the writer is left.
    let mut writer = RwMutexUpgradableReadGuard::try_upgrade(upgradable).expect("no reader inside");
    *writer += 1;
    drop(writer);
    assert!(!lock.raw().is_locked());
}

/// Two writers queued behind an upgradable reader: the one that gives up leaves readers held
/// back by the other.
#[test]
fn readers_stay_held_back_while_another_queued_writer_remains() {
    let lock = Arc::new(RwMutex::new(0));
    let upgradable = lock.upgradable_read();
    let first = spawn_with(&lock, |lock| *lock.write() += 1);
    wait_until(|| lock.try_read().is_none());
    let (ctx, cancel) = Context::background().with_cancel();
    let second = spawn_with(&lock, move |lock| {
        lock.write_ctx(&ctx).map(|mut w| *w += 10)
    });
    cancel.cancel();
    assert_eq!(join_within(second), Err(ContextError::Canceled));
    assert!(
        lock.try_read().is_none(),
        "a reader got past the writer still queued"
    );
    drop(upgradable);
    join_within(first);
    assert_eq!(*lock.read(), 1);
    assert!(!lock.raw().is_locked());
}

/// A writer queued behind an upgradable reader still holds new readers back after the
/// upgradable reader tried to upgrade and gave up (readers inside): the held-back readers were
/// let in ahead of the queued writer.
#[test]
fn a_failed_timed_upgrade_keeps_the_readers_held_back_by_a_queued_writer() {
    let lock = Arc::new(RwMutex::new(0));
    let inside = lock.read();
    let upgradable = lock.upgradable_read();
    let writer = spawn_with(&lock, |lock| *lock.write() += 1);
    wait_until(|| lock.try_read().is_none());
    let held_back = spawn_with(&lock, |lock| *lock.read());
    wait_until(|| lock.raw().has_parked_readers());
    let Err(upgradable) =
        RwMutexUpgradableReadGuard::try_upgrade_for(upgradable, Duration::from_millis(5))
    else {
        panic!("upgraded with a reader inside");
    };
    assert!(
        lock.try_read().is_none(),
        "a reader got past the queued writer after the failed upgrade"
    );
    drop(upgradable);
    drop(inside);
    join_within(writer);
    assert_eq!(
        join_within(held_back),
        1,
        "a reader got in before the writer"
    );
    assert!(!lock.raw().is_locked());
}

/// Makes `lock` count its readers per thread: two reads at once on one thread make it allocate
/// its reader shards, so later guards' reads go through them.
fn shard<T>(lock: &RwMutex<T>) {
    let (first, second) = (lock.read(), lock.read());
    drop((first, second));
}

/// Runs `attempt` in a loop on another thread while this thread calls `try_read` `rounds`
/// times, with a reader (`inside`) holding the lock throughout, so that every attempt fails.
/// Returns how many `try_read` calls failed.
fn failed_try_reads_beside(
    lock: &'static RwMutex<u32>,
    attempt: fn(&'static RwMutex<u32>) -> bool,
) -> usize {
    let rounds = scaled(200_000, 200);
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let trier = {
        let (stop, attempts) = (Arc::clone(&stop), Arc::clone(&attempts));
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                assert!(!attempt(lock), "got in beside a reader");
                attempts.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    wait_until(|| attempts.load(Ordering::Relaxed) > 0);
    let mut failed = 0;
    let mut round = 0;
    // Goes on until the trier has tried a while too, so that the two overlap.
    while round < rounds || attempts.load(Ordering::Relaxed) < scaled(1000, 10) {
        failed += usize::from(lock.try_read().is_none());
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    join_within(trier);
    failed
}

/// Go's `TryRLock` fails only when a writer holds the lock or waits for it, never because
/// another thread merely tries `TryLock`. Here readers count per thread (where a `try_write`
/// cannot see every reader in one step) and a reader holds the lock, so every `try_write`
/// fails: no `try_read` may fail meanwhile.
#[test]
fn try_read_never_fails_because_another_thread_tries_to_write() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    shard(&LOCK);
    let inside = LOCK.read();
    let failed = failed_try_reads_beside(&LOCK, |lock| lock.try_write().is_some());
    assert_eq!(
        failed, 0,
        "try_read failed beside a try_write that could not succeed"
    );
    drop(inside);
    assert!(LOCK.try_write().is_some());
}

/// As above, with an upgradable reader trying to upgrade.
#[test]
fn try_read_never_fails_because_an_upgradable_reader_tries_to_upgrade() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    shard(&LOCK);
    let inside = LOCK.read();
    let failed = failed_try_reads_beside(&LOCK, |lock| {
        let upgradable = lock.upgradable_read();
        RwMutexUpgradableReadGuard::try_upgrade(upgradable).is_ok()
    });
    assert_eq!(
        failed, 0,
        "try_read failed beside a try_upgrade that could not succeed"
    );
    drop(inside);
    assert!(!LOCK.raw().is_locked());
}

/// With readers counted in the word, a failing `try_write` never sent readers away either; it
/// still must not.
#[test]
fn try_read_never_fails_beside_try_write_on_an_unsharded_lock() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let inside = LOCK.read();
    let failed = failed_try_reads_beside(&LOCK, |lock| lock.try_write().is_some());
    assert_eq!(failed, 0);
    drop(inside);
}

/// A zero timeout or a past deadline is a `try_write` (or `try_upgrade`): it holds no reader
/// back either (it claimed the lock and gave up at once, sending readers away meanwhile).
#[test]
fn try_read_never_fails_beside_zero_timeouts() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    let inside = LOCK.read();
    let failed = failed_try_reads_beside(&LOCK, |lock| {
        lock.try_write_for(Duration::ZERO).is_some()
            || lock.try_write_until(Instant::now()).is_some()
    });
    assert_eq!(failed, 0, "try_read failed beside a zero-timeout try_write");
    let failed = failed_try_reads_beside(&LOCK, |lock| {
        let upgradable = lock.upgradable_read();
        RwMutexUpgradableReadGuard::try_upgrade_for(upgradable, Duration::ZERO).is_ok()
    });
    assert_eq!(
        failed, 0,
        "try_read failed beside a zero-timeout try_upgrade"
    );
    drop(inside);
    assert!(!LOCK.raw().is_locked());
}

/// A `try_write` that can succeed still does, also on a sharded lock, and `try_read` fails only
/// while it holds the lock: every count stays exact.
#[test]
fn try_write_and_try_read_race_on_a_sharded_lock() {
    static LOCK: RwMutex<u32> = RwMutex::new(0);
    shard(&LOCK);
    let rounds = scaled(20_000, 50) as u32;
    let writer = thread::spawn(move || {
        let mut wrote = 0;
        while wrote < rounds {
            if let Some(mut guard) = LOCK.try_write() {
                *guard += 1;
                wrote += 1;
            }
        }
    });
    let mut seen = 0;
    while seen < rounds {
        if let Some(guard) = LOCK.try_read() {
            assert!(*guard >= seen, "a read went back in time");
            seen = *guard;
        }
    }
    join_within(writer);
    assert_eq!(*LOCK.read(), rounds);
    assert!(!LOCK.raw().is_locked());
}
