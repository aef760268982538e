//! Loom models of `RwMutex`: every interleaving of a few threads, with loom's data-race
//! detector watching the protected data (the lock's cell is the park layer's loom-aware
//! `UnsafeCell`). Under loom every finite deadline counts as passed at the first look, so the
//! timed models explore a timeout at every point of the race.
#![cfg(gosync_loom)]

use std::time::Duration;

use gosync_context::Context;
use gosync_park::sync::Arc;
use gosync_park::thread;
use gosync_rwmutex::{RwMutex, RwMutexReadGuard, RwMutexUpgradableReadGuard, RwMutexWriteGuard};

/// Spawns a model thread that runs `f` with its own handle of `lock`.
fn spawn_with<R: Send + 'static>(
    lock: &Arc<RwMutex<usize>>,
    f: impl FnOnce(&RwMutex<usize>) -> R + Send + 'static,
) -> thread::JoinHandle<R> {
    let lock = Arc::clone(lock);
    thread::spawn(move || f(&lock))
}

/// A reader is inside, a writer comes and waits, a new reader comes: the writer gets the lock
/// once the first reader leaves, and every access is ordered by the lock.
#[test]
fn writer_preference_hand_over() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let inside = lock.read();
        let writer = spawn_with(&lock, |lock| *lock.write() += 1);
        let late = spawn_with(&lock, |lock| *lock.read());
        assert_eq!(*inside, 0);
        drop(inside);
        writer.join().unwrap();
        let seen = late.join().unwrap();
        assert!(seen <= 1);
        assert_eq!(*lock.read(), 1);
        assert!(!lock.raw().is_locked());
    });
}

/// An upgradable reader upgrades while a writer competes: both increments land.
#[test]
fn upgrade_versus_writer() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let writer = spawn_with(&lock, |lock| *lock.write() += 1);
        let guard = lock.upgradable_read();
        let before = *guard;
        let mut w = RwMutexUpgradableReadGuard::upgrade(guard);
        assert_eq!(*w, before);
        *w += 1;
        drop(w);
        writer.join().unwrap();
        assert_eq!(*lock.read(), 2);
        assert!(!lock.raw().is_locked());
    });
}

/// A writer downgrades while a reader waits: the reader sees the write, nobody else writes in
/// between.
#[test]
fn downgrade_lets_the_reader_in() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let reader = spawn_with(&lock, |lock| *lock.read());
        let mut w = lock.write();
        *w = 1;
        let r = RwMutexWriteGuard::downgrade(w);
        assert_eq!(*r, 1);
        drop(r);
        let seen = reader.join().unwrap();
        assert!(seen <= 1);
        assert!(!lock.raw().is_locked());
    });
}

/// A timed writer gives up (or not) while the reader inside leaves: no waiter is left stuck and
/// the lock ends free.
#[test]
fn timed_write_versus_readers_leaving() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let inside = lock.read();
        let writer = spawn_with(&lock, |lock| {
            if let Some(mut g) = lock.try_write_for(Duration::from_secs(1)) {
                *g += 1;
            }
        });
        let late = spawn_with(&lock, |lock| *lock.read());
        drop(inside);
        writer.join().unwrap();
        assert!(late.join().unwrap() <= 1);
        assert!(!lock.raw().is_locked());
        assert!(lock.try_write().is_some());
    });
}

/// A timed reader gives up (or is let in) while the writer releases.
#[test]
fn timed_read_versus_writer_release() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let w = lock.write();
        let reader = spawn_with(&lock, |lock| {
            lock.try_read_for(Duration::from_secs(1)).map(|g| *g)
        });
        drop(w);
        assert!(matches!(reader.join().unwrap(), None | Some(0)));
        assert!(!lock.raw().is_locked());
        assert!(lock.try_write().is_some());
    });
}

/// A writer releases while both a reader and another writer wait: each gets its turn, and the
/// parked reader is counted in before the next writer takes over.
#[test]
fn release_with_a_reader_and_a_writer_waiting() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let mut w = lock.write();
        let reader = spawn_with(&lock, |lock| *lock.read());
        let writer = spawn_with(&lock, |lock| *lock.write() += 1);
        *w += 1;
        drop(w);
        writer.join().unwrap();
        assert!(matches!(reader.join().unwrap(), 1 | 2));
        assert_eq!(*lock.read(), 2);
        assert!(!lock.raw().is_locked());
    });
}

/// A writer releases to a parked upgradable reader while a plain reader comes in through the
/// fast path: the plain reader must see the writer's write (the hand-off publishes it).
#[test]
fn hand_off_to_upgradable_publishes_to_readers() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let mut w = lock.write();
        let upgradable = spawn_with(&lock, |lock| *lock.upgradable_read());
        let reader = spawn_with(&lock, |lock| *lock.read());
        *w = 1;
        drop(w);
        assert_eq!(upgradable.join().unwrap(), 1);
        assert_eq!(reader.join().unwrap(), 1);
        assert!(!lock.raw().is_locked());
    });
}

/// A lock whose readers are counted in per-thread shards: two reads at once on this thread make
/// it allocate them, so the reads of the model that follow go through the shards.
fn sharded_lock() -> Arc<RwMutex<usize>> {
    let lock = Arc::new(RwMutex::new(0usize));
    let first = lock.read();
    let second = lock.read();
    drop((first, second));
    lock
}

/// Readers came through the shards often enough before a write that the writer keeps counting
/// them there: the release of that writer, the next writer and a reader in its shard all race.
#[test]
fn a_writer_keeps_busy_shards() {
    loom::model(|| {
        let lock = sharded_lock();
        // Two entries through this thread's shard: enough (under loom) to keep the shards.
        drop(lock.read());
        drop(lock.read());
        let reader = spawn_with(&lock, |lock| *lock.read());
        *lock.write() += 1;
        *lock.write() += 1;
        assert!(reader.join().unwrap() <= 2);
        assert_eq!(*lock.read(), 2);
        assert!(!lock.raw().is_locked());
    });
}

/// A reader counted in its shard races a writer claiming the lock: either the reader sees the
/// claim and waits, or the writer sees the reader and waits for it; never both inside.
#[test]
fn sharded_reader_versus_writer() {
    loom::model(|| {
        let lock = sharded_lock();
        let reader = spawn_with(&lock, |lock| *lock.read());
        *lock.write() += 1;
        assert!(reader.join().unwrap() <= 1);
        assert_eq!(*lock.read(), 1);
        assert!(!lock.raw().is_locked());
    });
}

/// A writer waits for a reader counted in its shard and goes to sleep as the reader leaves:
/// the reader's wake-up is never lost.
#[test]
fn sharded_reader_leaving_wakes_the_writer() {
    loom::model(|| writer_waits_for_a_sharded_reader(false));
}

/// A guard moves its read lock from its shard into the lock word (as a condition variable's
/// wait does) while a writer waits for it: the writer never mistakes the move for the reader
/// leaving.
#[test]
fn moving_a_read_lock_into_the_word_keeps_the_writer_out() {
    loom::model(|| writer_waits_for_a_sharded_reader(true));
}

fn writer_waits_for_a_sharded_reader(move_into_word: bool) {
    let lock = sharded_lock();
    let mut inside = lock.read();
    let writer = spawn_with(&lock, |lock| *lock.write() += 1);
    if move_into_word {
        assert!(RwMutexReadGuard::raw(&mut inside).is_locked());
    }
    assert_eq!(*inside, 0);
    drop(inside);
    writer.join().unwrap();
    assert_eq!(*lock.read(), 1);
    assert!(!lock.raw().is_locked());
}

/// As above, against `try_write` and `try_upgrade`, which look at the readers once rather than
/// waiting for them.
#[test]
fn moving_a_read_lock_into_the_word_versus_try_write_and_try_upgrade() {
    loom::model(|| {
        let lock = sharded_lock();
        let mut inside = lock.read();
        let writer = spawn_with(&lock, |lock| {
            if let Some(mut w) = lock.try_write() {
                *w += 1;
            }
            if let Ok(mut w) = RwMutexUpgradableReadGuard::try_upgrade(lock.upgradable_read()) {
                *w += 1;
            }
        });
        RwMutexReadGuard::raw(&mut inside);
        assert_eq!(*inside, 0);
        drop(inside);
        writer.join().unwrap();
        assert!(!lock.raw().is_locked());
    });
}

/// `try_write` and `try_upgrade` race a reader counted in its shard: each either fails and
/// gives its claim back, or gets in with the reader outside.
#[test]
fn try_write_and_try_upgrade_versus_a_sharded_reader() {
    loom::model(|| {
        let lock = sharded_lock();
        let reader = spawn_with(&lock, |lock| *lock.read());
        if let Some(mut w) = lock.try_write() {
            *w += 1;
        }
        let upgradable = lock.upgradable_read();
        let expected = *upgradable + 1;
        if let Ok(mut w) = RwMutexUpgradableReadGuard::try_upgrade(upgradable) {
            *w += 1;
            assert_eq!(*w, expected);
        }
        assert!(reader.join().unwrap() <= 2);
        assert!(!lock.raw().is_locked());
        assert!(lock.try_write().is_some());
    });
}

/// Two readers meet in a fresh lock (one of them allocates the shards) while a writer claims
/// it: every access stays ordered, and the lock ends free.
#[test]
fn first_contended_read_shards_the_lock_while_a_writer_claims() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let readers: Vec<_> = (0..2)
            .map(|_| spawn_with(&lock, |lock| *lock.read()))
            .collect();
        *lock.write() += 1;
        for reader in readers {
            assert!(reader.join().unwrap() <= 1);
        }
        assert!(!lock.raw().is_locked());
        assert!(lock.try_write().is_some());
    });
}

/// An upgradable reader holds the lock and a writer queues behind it: from then on new readers
/// wait for the writer (Go's writer preference), and get in after it.
#[test]
fn a_writer_queued_behind_an_upgradable_reader_holds_back_new_readers() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let upgradable = lock.upgradable_read();
        let writer = spawn_with(&lock, |lock| *lock.write() += 1);
        while !lock.raw().has_queued_writer() {
            thread::yield_now();
        }
        assert!(lock.try_read().is_none());
        let reader = spawn_with(&lock, |lock| *lock.read());
        drop(upgradable);
        writer.join().unwrap();
        assert_eq!(reader.join().unwrap(), 1);
        assert!(!lock.raw().is_locked());
    });
}

/// A writer queued behind an upgradable reader gives up at any point of the race with a reader
/// it holds back: the reader gets in while the upgradable reader still holds the lock (a mark
/// left behind would leave it parked for ever: loom reports the deadlock).
#[test]
fn a_writer_giving_up_behind_an_upgradable_reader_lets_the_reader_in() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let upgradable = lock.upgradable_read();
        let writer = spawn_with(&lock, |lock| {
            lock.try_write_for(Duration::from_secs(1)).is_some()
        });
        let reader = spawn_with(&lock, |lock| *lock.read());
        assert!(!writer.join().unwrap());
        assert_eq!(reader.join().unwrap(), 0);
        drop(upgradable);
        assert!(!lock.raw().is_locked());
    });
}

/// A `try_write` that cannot succeed (a reader holds the lock through its shard) races a
/// `try_read` on another shard: the `try_read` never fails.
#[test]
fn try_read_beside_a_failing_try_write_on_a_sharded_lock() {
    loom::model(|| {
        let lock = sharded_lock();
        let inside = lock.read();
        let writer = spawn_with(&lock, |lock| lock.try_write().is_none());
        let reader = spawn_with(&lock, |lock| lock.try_read().map(|guard| *guard));
        assert!(writer.join().unwrap(), "try_write got in beside a reader");
        assert_eq!(
            reader.join().unwrap(),
            Some(0),
            "sent away by a failing try_write"
        );
        drop(inside);
        assert!(lock.try_write().is_some());
    });
}

/// `try_write` and `try_read` race on a sharded lock: at least one gets in (a `try_read` fails
/// only because the `try_write` holds the lock, and the `try_write` only because the reader
/// does), and every access is ordered by the lock.
#[test]
fn try_write_versus_try_read_on_a_sharded_lock() {
    loom::model(|| {
        let lock = sharded_lock();
        let writer = spawn_with(&lock, |lock| {
            lock.try_write().map(|mut guard| *guard += 1).is_some()
        });
        let read = lock.try_read().map(|guard| *guard);
        let wrote = writer.join().unwrap();
        assert!(wrote || read.is_some(), "both failed");
        assert!(matches!(read, None | Some(0) | Some(1)));
        assert!(!lock.raw().is_locked());
        assert_eq!(*lock.read(), usize::from(wrote));
    });
}

/// As above, for `try_upgrade`.
#[test]
fn try_upgrade_versus_try_read_on_a_sharded_lock() {
    loom::model(|| {
        let lock = sharded_lock();
        let upgrader = spawn_with(&lock, |lock| {
            RwMutexUpgradableReadGuard::try_upgrade(lock.upgradable_read())
                .map(|mut guard| *guard += 1)
                .is_ok()
        });
        let read = lock.try_read().map(|guard| *guard);
        let upgraded = upgrader.join().unwrap();
        assert!(upgraded || read.is_some(), "both failed");
        assert!(!lock.raw().is_locked());
        assert_eq!(*lock.read(), usize::from(upgraded));
    });
}

/// A writer waits for a reader to leave while another thread cancels its context: the writer
/// either gets in after the reader or gives up, and either way leaves nothing behind (a reader
/// coming after gets in, and the lock ends free).
#[test]
fn write_ctx_cancelled_while_waiting_for_a_reader() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let inside = lock.read();
        let (ctx, cancel) = Context::background().with_cancel();
        let writer = spawn_with(&lock, move |lock| {
            lock.write_ctx(&ctx).map(|mut guard| *guard += 1).is_ok()
        });
        cancel.cancel();
        drop(inside);
        let wrote = writer.join().unwrap();
        assert_eq!(*lock.read(), usize::from(wrote));
        assert!(!lock.raw().is_locked());
    });
}

/// A raw reader's release (a compare-and-swap that checks for a reader to release, where a
/// guard's is a `fetch_sub`) races a writer that claims the lock and waits for that reader to
/// leave: the writer is woken and gets the lock; then a raw release with no reader panics and
/// changes nothing.
#[test]
fn raw_unlock_shared_wakes_the_writer_waiting_for_it() {
    use gosync_rwmutex::RawRwMutex;
    loom::model(|| {
        let raw = Arc::new(RawRwMutex::new());
        raw.lock_shared();
        let writer = {
            let raw = Arc::clone(&raw);
            thread::spawn(move || {
                raw.lock_exclusive();
                // SAFETY: taken just above.
                unsafe { raw.unlock_exclusive() };
            })
        };
        // SAFETY: taken above.
        unsafe { raw.unlock_shared() };
        writer.join().unwrap();
        assert!(!raw.is_locked());
        assert!(!raw.has_sleepers());
    });
}

/// A writer queued behind an upgradable reader gives up while a reader it held back is parked
/// and a second writer, which came after the reader, queues at any point of the race: the
/// reader gets in while the upgradable reader still holds the lock and the second writer
/// waits (it waits only for the writers queued before it), and the second writer then has
/// its turn.
#[test]
fn a_writer_giving_up_lets_in_the_reader_that_came_before_the_writer_still_queued() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let upgradable = lock.upgradable_read();
        let (ctx, cancel) = Context::background().with_cancel();
        let early = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).is_ok());
        while !lock.raw().has_queued_writer() {
            thread::yield_now();
        }
        let reader = spawn_with(&lock, |lock| *lock.read());
        while !lock.raw().has_parked_readers() {
            thread::yield_now();
        }
        let late = spawn_with(&lock, |lock| *lock.write() += 1);
        cancel.cancel();
        assert!(!early.join().unwrap());
        assert_eq!(reader.join().unwrap(), 0);
        drop(upgradable);
        late.join().unwrap();
        assert_eq!(*lock.read(), 1);
        assert!(!lock.raw().is_locked());
    });
}

/// The converse, Go's guarantee: a writer gives up when no other writer is queued, and before
/// its give-up has let the held-back readers in, a second writer queues and then a reader comes.
/// That reader came after the second writer was blocked, so it waits for it (reads its value),
/// although the upgradable reader still holds the lock and the give-up lets readers in.
#[test]
fn a_writer_giving_up_lets_in_no_reader_that_came_after_a_writer_queued_meanwhile() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let upgradable = lock.upgradable_read();
        let (ctx, cancel) = Context::background().with_cancel();
        let early = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).is_ok());
        while lock.raw().queued_writers() != 1 {
            thread::yield_now();
        }
        cancel.cancel();
        while lock.raw().queued_writers() != 0 {
            thread::yield_now();
        }
        let late = spawn_with(&lock, |lock| *lock.write() += 1);
        while lock.raw().queued_writers() != 1 {
            thread::yield_now();
        }
        let reader = spawn_with(&lock, |lock| *lock.read());
        assert!(!early.join().unwrap());
        drop(upgradable);
        late.join().unwrap();
        assert_eq!(
            reader.join().unwrap(),
            1,
            "the reader went in ahead of the writer"
        );
        assert!(!lock.raw().is_locked());
    });
}

/// A timed upgrade fails (a reader stays inside; under loom its deadline has passed at the first
/// look) while another reader and a writer come at any point of it: the failed upgrade's
/// admission (`writer_to_upgradable`) strands nobody. The reader is let in, or waits for the
/// writer if it came after the writer queued; every thread finishes once the guards go, and
/// the writer's write is seen.
#[test]
fn a_failed_upgrade_races_a_reader_and_a_writer() {
    loom::model(|| {
        let lock = Arc::new(RwMutex::new(0usize));
        let inside = lock.read();
        let upgradable = lock.upgradable_read();
        let reader = spawn_with(&lock, |lock| *lock.read());
        let writer = spawn_with(&lock, |lock| *lock.write() += 1);
        let upgradable =
            RwMutexUpgradableReadGuard::try_upgrade_for(upgradable, Duration::from_secs(1))
                .expect_err("a reader is inside for the whole upgrade");
        assert_eq!(*upgradable, 0);
        drop(upgradable);
        drop(inside);
        writer.join().unwrap();
        assert!(reader.join().unwrap() <= 1);
        assert_eq!(*lock.read(), 1);
        assert!(!lock.raw().is_locked());
    });
}
