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
use gosync_rwmutex::{RawRwMutex, RwMutex, RwMutexUpgradableReadGuard};
use gosync_testkit::{join_within, scaled, spawn_with, wait_until, LIMIT};

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

// ---------------------------------------------------------------------------------------------
// The raw lock's `_ctx` forms: the same rules, checked on `RawRwMutex` directly.
// ---------------------------------------------------------------------------------------------

/// Whether the raw lock is entirely free: nothing held, no claim, no mark.
fn raw_is_free(raw: &RawRwMutex) -> bool {
    let free = !raw.is_locked() && raw.try_lock_exclusive();
    if free {
        // SAFETY: taken just above.
        unsafe { raw.unlock_exclusive() };
    }
    free
}

#[test]
fn raw_ctx_an_already_done_context_fails_at_once_even_when_free() {
    let raw = RawRwMutex::new();
    let ctx = cancelled();
    assert_eq!(raw.lock_shared_ctx(&ctx), Err(ContextError::Canceled));
    assert_eq!(raw.lock_exclusive_ctx(&ctx), Err(ContextError::Canceled));
    assert_eq!(raw.lock_upgradable_ctx(&ctx), Err(ContextError::Canceled));
    assert!(raw_is_free(&raw));
    raw.lock_upgradable();
    // SAFETY: the upgradable lock is held.
    let upgraded = unsafe { raw.upgrade_ctx(&ctx) };
    assert_eq!(upgraded, Err(ContextError::Canceled));
    assert!(!raw.is_locked_exclusive(), "still only upgradable");
    assert!(raw.try_lock_shared());
    // SAFETY: a shared and the upgradable lock are held.
    unsafe {
        raw.unlock_shared();
        raw.unlock_upgradable();
    }
    let (expired, _cancel) = Context::background().with_deadline(std::time::Instant::now());
    assert_eq!(
        raw.lock_exclusive_ctx(&expired),
        Err(ContextError::DeadlineExceeded)
    );
    assert!(raw_is_free(&raw));
}

#[test]
fn raw_ctx_a_live_context_takes_each_kind_and_is_woken_by_the_release() {
    let raw = Arc::new(RawRwMutex::new());
    let live = Context::background();
    assert_eq!(raw.lock_shared_ctx(&live), Ok(()));
    assert_eq!(raw.lock_upgradable_ctx(&live), Ok(()));
    let upgrader = spawn_with(&raw, |raw| {
        // SAFETY: the upgradable lock taken on the main thread is handed to this thread,
        // which alone uses it from here on; the lock is not tied to a thread.
        let result = unsafe { raw.upgrade_ctx(&Context::background()) };
        // SAFETY: on `Ok` the exclusive lock is held.
        result.map(|()| unsafe { raw.unlock_exclusive() })
    });
    wait_until(|| raw.is_locked_exclusive());
    // SAFETY: the shared lock taken first is held.
    unsafe { raw.unlock_shared() };
    assert_eq!(join_within(upgrader), Ok(()));
    assert!(
        raw.try_lock_exclusive_for(LIMIT),
        "the upgrader left the lock free"
    );
    let reader = spawn_with(&raw, |raw| {
        let result = raw.lock_shared_ctx(&Context::background());
        // SAFETY: on `Ok` the shared lock is held.
        result.map(|()| unsafe { raw.unlock_shared() })
    });
    let writer = spawn_with(&raw, |raw| {
        let result = raw.lock_exclusive_ctx(&Context::background());
        // SAFETY: on `Ok` the exclusive lock is held.
        result.map(|()| unsafe { raw.unlock_exclusive() })
    });
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
    assert_eq!(join_within(reader), Ok(()));
    assert_eq!(join_within(writer), Ok(()));
    assert!(raw_is_free(&raw));
}

#[test]
fn raw_lock_shared_ctx_cancelled_while_a_writer_holds() {
    let raw = Arc::new(RawRwMutex::new());
    raw.lock_exclusive();
    let (ctx, cancel) = Context::background().with_cancel();
    let reader = spawn_with(&raw, move |raw| raw.lock_shared_ctx(&ctx));
    wait_until(|| raw.has_sleepers()); // asleep, not on the early return
    cancel.cancel();
    assert_eq!(join_within(reader), Err(ContextError::Canceled));
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
    assert!(raw_is_free(&raw));
}

#[test]
fn raw_lock_exclusive_ctx_cancelled_while_waiting_for_readers_lets_them_in() {
    let raw = Arc::new(RawRwMutex::new());
    raw.lock_shared();
    let (ctx, cancel) = Context::background().with_cancel();
    let writer = spawn_with(&raw, move |raw| raw.lock_exclusive_ctx(&ctx));
    // The writer has claimed the lock and waits for the reader to leave: readers are held back.
    wait_until(|| raw.is_locked_exclusive());
    assert!(!raw.try_lock_shared());
    cancel.cancel();
    assert_eq!(join_within(writer), Err(ContextError::Canceled));
    assert!(!raw.is_locked_exclusive());
    assert!(raw.try_lock_shared(), "the writer left nothing behind");
    // SAFETY: two shared locks are held.
    unsafe {
        raw.unlock_shared();
        raw.unlock_shared();
    }
    assert!(raw_is_free(&raw));
}

#[test]
fn raw_lock_exclusive_ctx_cancelled_while_queued_behind_a_writer() {
    let raw = Arc::new(RawRwMutex::new());
    raw.lock_exclusive();
    let (ctx, cancel) = Context::background().with_cancel();
    let writer = spawn_with(&raw, move |raw| raw.lock_exclusive_ctx(&ctx));
    wait_until(|| raw.has_queued_writer());
    cancel.cancel();
    assert_eq!(join_within(writer), Err(ContextError::Canceled));
    assert!(!raw.has_queued_writer());
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
    assert!(raw_is_free(&raw));
}

#[test]
fn raw_lock_upgradable_ctx_cancelled_while_another_upgradable_holds() {
    let raw = Arc::new(RawRwMutex::new());
    raw.lock_upgradable();
    let (ctx, cancel) = Context::background().with_cancel();
    let second = spawn_with(&raw, move |raw| raw.lock_upgradable_ctx(&ctx));
    wait_until(|| raw.has_sleepers()); // asleep, not on the early return
    cancel.cancel();
    assert_eq!(join_within(second), Err(ContextError::Canceled));
    assert!(raw.try_lock_shared());
    // SAFETY: a shared and the upgradable lock are held.
    unsafe {
        raw.unlock_shared();
        raw.unlock_upgradable();
    }
    assert!(raw_is_free(&raw));
}

#[test]
fn raw_upgrade_ctx_cancelled_while_waiting_for_readers_keeps_the_upgradable_lock() {
    let raw = Arc::new(RawRwMutex::new());
    raw.lock_shared();
    let (ctx, cancel) = Context::background().with_cancel();
    let upgrader = spawn_with(&raw, move |raw| {
        raw.lock_upgradable();
        // SAFETY: the upgradable lock is held.
        let result = unsafe { raw.upgrade_ctx(&ctx) };
        let still_upgradable = !raw.is_locked_exclusive() && !raw.try_lock_upgradable();
        // SAFETY: after a failed upgrade the upgradable lock is still held.
        unsafe { raw.unlock_upgradable() };
        (result, still_upgradable)
    });
    wait_until(|| raw.is_locked_exclusive());
    assert!(!raw.try_lock_shared());
    cancel.cancel();
    assert_eq!(join_within(upgrader), (Err(ContextError::Canceled), true));
    // SAFETY: the shared lock is held.
    unsafe { raw.unlock_shared() };
    assert!(raw_is_free(&raw));
}

/// A cancellation landing with the release that would let the writer in: either the writer
/// got the lock (and released it) or it got the error; never both, never a leftover claim.
#[test]
fn raw_lock_exclusive_ctx_cancelled_as_the_lock_is_released() {
    let raw = Arc::new(RawRwMutex::new());
    let (mut taken, mut cancelled) = (0, 0);
    for _ in 0..scaled(300, 10) {
        raw.lock_shared();
        let (ctx, cancel) = Context::background().with_cancel();
        let writer = spawn_with(&raw, move |raw| {
            let result = raw.lock_exclusive_ctx(&ctx);
            // SAFETY: on `Ok` the exclusive lock is held.
            result.map(|()| unsafe { raw.unlock_exclusive() })
        });
        wait_until(|| raw.is_locked_exclusive());
        cancel.cancel();
        // SAFETY: the shared lock is held.
        unsafe { raw.unlock_shared() };
        match join_within(writer) {
            Ok(()) => taken += 1,
            Err(err) => {
                assert_eq!(err, ContextError::Canceled);
                cancelled += 1;
            }
        }
        assert!(raw_is_free(&raw));
    }
    assert_eq!(taken + cancelled, scaled(300, 10));
}
