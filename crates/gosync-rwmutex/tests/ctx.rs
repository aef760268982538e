//! The `_ctx` waits of `RwMutex`: an already-done context fails at once even when the lock is
//! free; a context cancelled mid-wait wakes the waiter at once and leaves nothing held and no
//! mark behind (readers and writers get in afterwards).
//!
//! "Mid-wait" is made certain where the lock shows it: a writer that waits for readers to leave
//! has claimed the lock (`is_locked_exclusive`), and a writer queued behind an upgradable reader
//! holds readers back (`try_read` fails).
#![cfg(not(gosync_loom))]

use std::sync::Arc;
use std::time::Duration;

use gosync_context::{Context, ContextError};
use gosync_rwmutex::{RwMutex, RwMutexUpgradableReadGuard};
use gosync_testkit::{join_within, spawn_with, wait_until};

fn cancelled() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx
}

/// Whether the lock is entirely free: no guard of any kind held, no claim, no mark.
fn is_free<T>(lock: &RwMutex<T>) -> bool {
    !lock.raw().is_locked() && lock.try_write().is_some()
}

#[test]
fn an_already_done_context_fails_at_once_even_when_the_lock_is_free() {
    let lock = RwMutex::new(0);
    let ctx = cancelled();
    assert_eq!(lock.read_ctx(&ctx).unwrap_err(), ContextError::Canceled);
    assert_eq!(lock.write_ctx(&ctx).unwrap_err(), ContextError::Canceled);
    assert_eq!(
        lock.upgradable_read_ctx(&ctx).unwrap_err(),
        ContextError::Canceled
    );
    let (guard, err) =
        RwMutexUpgradableReadGuard::upgrade_ctx(lock.upgradable_read(), &ctx).unwrap_err();
    assert_eq!(err, ContextError::Canceled);
    // The guard given back is still upgradable, and readers still get in beside it.
    assert!(lock.try_read().is_some());
    assert!(lock.try_write().is_none());
    drop(guard);
    assert!(is_free(&lock));

    let (expired, _cancel) = Context::background().with_deadline(std::time::Instant::now());
    assert_eq!(
        lock.read_ctx(&expired).unwrap_err(),
        ContextError::DeadlineExceeded
    );
    assert_eq!(
        lock.write_ctx(&expired).unwrap_err(),
        ContextError::DeadlineExceeded
    );
    assert!(is_free(&lock));
}

#[test]
fn a_live_context_takes_each_kind_of_lock() {
    let lock = RwMutex::new(0);
    let ctx = Context::background();
    {
        let (a, b) = (lock.read_ctx(&ctx).unwrap(), lock.read_ctx(&ctx).unwrap());
        assert_eq!(*a + *b, 0);
        assert!(lock.try_write().is_none());
    }
    *lock.write_ctx(&ctx).unwrap() += 1;
    let upgradable = lock.upgradable_read_ctx(&ctx).unwrap();
    assert!(lock.try_upgradable_read().is_none());
    let mut writer = RwMutexUpgradableReadGuard::upgrade_ctx(upgradable, &ctx).unwrap();
    *writer += 1;
    drop(writer);
    assert_eq!(*lock.read(), 2);
    assert!(is_free(&lock));
}

#[test]
fn read_ctx_cancelled_while_a_writer_holds_the_lock() {
    let lock = Arc::new(RwMutex::new(0));
    let writer = lock.write();
    let (ctx, cancel) = Context::background().with_cancel();
    let reader = spawn_with(&lock, move |lock| lock.read_ctx(&ctx).map(|g| *g));
    cancel.cancel();
    assert_eq!(join_within(reader), Err(ContextError::Canceled));
    drop(writer);
    assert!(is_free(&lock));
}

#[test]
fn read_ctx_whose_deadline_passes_mid_wait() {
    let lock = Arc::new(RwMutex::new(0));
    let writer = lock.write();
    let reader = spawn_with(&lock, move |lock| {
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
        lock.read_ctx(&ctx).map(|g| *g)
    });
    assert_eq!(join_within(reader), Err(ContextError::DeadlineExceeded));
    drop(writer);
    assert!(is_free(&lock));
}

#[test]
fn write_ctx_cancelled_while_waiting_for_readers_lets_them_and_others_in() {
    let lock = Arc::new(RwMutex::new(0));
    let inside = lock.read();
    let (ctx, cancel) = Context::background().with_cancel();
    let writer = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).map(|mut g| *g += 1));
    // The writer has claimed the lock and waits for `inside` to leave: readers are held back.
    wait_until(|| lock.raw().is_locked_exclusive());
    assert!(lock.try_read().is_none());
    let held_back = spawn_with(&lock, |lock| *lock.read());
    cancel.cancel();
    assert_eq!(join_within(writer), Err(ContextError::Canceled));
    // Nothing of the writer is left: the held-back reader and new ones get in beside `inside`.
    assert_eq!(join_within(held_back), 0);
    assert!(!lock.raw().is_locked_exclusive());
    assert!(lock.try_read().is_some());
    drop(inside);
    assert!(is_free(&lock));
}

#[test]
fn write_ctx_cancelled_while_queued_behind_a_writer() {
    let lock = Arc::new(RwMutex::new(0));
    let holder = lock.write();
    let (ctx, cancel) = Context::background().with_cancel();
    let writer = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).map(|mut g| *g += 1));
    cancel.cancel();
    assert_eq!(join_within(writer), Err(ContextError::Canceled));
    drop(holder);
    assert!(is_free(&lock));
    assert_eq!(*lock.read(), 0);
}

#[test]
fn upgradable_read_ctx_cancelled_while_another_upgradable_reader_holds() {
    let lock = Arc::new(RwMutex::new(0));
    let first = lock.upgradable_read();
    let (ctx, cancel) = Context::background().with_cancel();
    let second = spawn_with(&lock, move |lock| {
        lock.upgradable_read_ctx(&ctx).map(|g| *g)
    });
    cancel.cancel();
    assert_eq!(join_within(second), Err(ContextError::Canceled));
    assert!(lock.try_read().is_some());
    drop(first);
    assert!(is_free(&lock));
}

#[test]
fn upgrade_ctx_cancelled_while_waiting_for_readers_gives_the_guard_back() {
    let lock = Arc::new(RwMutex::new(0));
    let inside = lock.read();
    let (ctx, cancel) = Context::background().with_cancel();
    let upgrader = spawn_with(&lock, move |lock| {
        let guard = lock.upgradable_read();
        match RwMutexUpgradableReadGuard::upgrade_ctx(guard, &ctx) {
            Ok(_) => panic!("upgraded beside a reader"),
            Err((guard, err)) => {
                // Still upgradable: readers get in, writers do not.
                assert!(lock.try_read().is_some());
                assert!(lock.try_write().is_none());
                (*guard, err)
            }
        }
    });
    wait_until(|| lock.raw().is_locked_exclusive());
    assert!(lock.try_read().is_none());
    cancel.cancel();
    assert_eq!(join_within(upgrader), (0, ContextError::Canceled));
    assert!(lock.try_read().is_some());
    drop(inside);
    assert!(is_free(&lock));
}

#[test]
fn a_cancelled_writer_does_not_disturb_the_waiters_behind_it() {
    let lock = Arc::new(RwMutex::new(0));
    let inside = lock.read();
    let (ctx, cancel) = Context::background().with_cancel();
    let cancelled_writer = spawn_with(&lock, move |lock| lock.write_ctx(&ctx).map(|mut g| *g += 1));
    wait_until(|| lock.raw().is_locked_exclusive());
    let patient_writer = spawn_with(&lock, |lock| *lock.write() += 10);
    cancel.cancel();
    assert_eq!(join_within(cancelled_writer), Err(ContextError::Canceled));
    drop(inside);
    join_within(patient_writer);
    assert_eq!(*lock.read(), 10);
    assert!(is_free(&lock));
}
