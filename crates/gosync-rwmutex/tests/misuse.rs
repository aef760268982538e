//! Releases of a lock not held, through the raw lock: Go's `Unlock` and `RUnlock` of an
//! unlocked `RWMutex` are fatal errors; here they panic with Go's text at the caller's line
//! and leave the lock as it was, usable by everyone else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use gosync_rwmutex::RawRwMutex;
use gosync_testkit::{join_within, panic_site, quiet_panics, scaled};

/// The panic of an upgradable release with no upgradable lock held.
const NOT_UPGRADABLE: &str = "sync: release of a RwMutex not locked upgradable";

/// Runs `misuse` (one broken release, on line `line`), checks the panic's text and that it
/// points at that line.
fn panics_at(line: u32, expected: &str, misuse: impl FnOnce()) {
    let (file, at, message) = panic_site(misuse);
    assert_eq!((file.as_str(), at), (file!(), line));
    assert_eq!(message, expected);
}

/// The lock is free and works in every mode.
fn assert_free_and_usable(raw: &RawRwMutex) {
    assert!(!raw.is_locked());
    assert!(!raw.has_sleepers());
    assert!(raw.try_lock_exclusive());
    // SAFETY: taken just above.
    unsafe { raw.unlock_exclusive() };
    assert!(raw.try_lock_shared());
    assert!(raw.try_lock_upgradable());
    // SAFETY: both taken just above.
    unsafe {
        raw.unlock_upgradable();
        raw.unlock_shared();
    }
    assert!(!raw.is_locked());
}

#[test]
fn releases_of_an_unlocked_lock_panic_at_the_caller() {
    let raw = RawRwMutex::new();
    let line = line!() + 3;
    panics_at(line, "sync: RUnlock of unlocked RWMutex", || {
        // SAFETY: deliberately broken: no shared lock is held.
        unsafe { raw.unlock_shared() };
    });
    assert_free_and_usable(&raw);
    let line = line!() + 3;
    panics_at(line, "sync: Unlock of unlocked RWMutex", || {
        // SAFETY: deliberately broken: the lock is free.
        unsafe { raw.unlock_exclusive() };
    });
    assert_free_and_usable(&raw);
}

#[test]
fn unlock_shared_while_only_a_writer_holds_the_lock_panics() {
    let raw = RawRwMutex::new();
    raw.lock_exclusive();
    let line = line!() + 3;
    panics_at(line, "sync: RUnlock of unlocked RWMutex", || {
        // SAFETY: deliberately broken: the lock is held exclusively.
        unsafe { raw.unlock_shared() };
    });
    assert!(raw.is_locked_exclusive());
    assert!(!raw.try_lock_shared(), "the writer still holds the lock");
    // SAFETY: taken above.
    unsafe { raw.unlock_exclusive() };
    assert_free_and_usable(&raw);
}

#[test]
fn unlock_exclusive_while_a_reader_holds_the_lock_panics_and_keeps_the_reader() {
    let raw = RawRwMutex::new();
    raw.lock_shared();
    let line = line!() + 3;
    panics_at(line, "sync: Unlock of unlocked RWMutex", || {
        // SAFETY: deliberately broken: only a shared lock is held.
        unsafe { raw.unlock_exclusive() };
    });
    assert!(!raw.try_lock_exclusive(), "the reader is still inside");
    let line = line!() + 3;
    panics_at(line, "sync: Unlock of unlocked RWMutex", || {
        // SAFETY: deliberately broken: only a shared lock is held.
        unsafe { raw.downgrade() };
    });
    // SAFETY: taken above.
    unsafe { raw.unlock_shared() };
    assert_free_and_usable(&raw);
}

#[test]
fn releases_of_an_upgradable_lock_not_held_panic_at_the_caller() {
    let raw = RawRwMutex::new();
    let line = line!() + 3;
    panics_at(line, NOT_UPGRADABLE, || {
        // SAFETY: deliberately broken: the lock is free.
        unsafe { raw.unlock_upgradable() };
    });
    raw.lock_exclusive();
    let line = line!() + 3;
    panics_at(line, NOT_UPGRADABLE, || {
        // SAFETY: deliberately broken: the lock is held exclusively.
        unsafe { raw.downgrade_upgradable() };
    });
    assert!(raw.is_locked_exclusive());
    // SAFETY: taken above.
    unsafe { raw.unlock_exclusive() };
    assert_free_and_usable(&raw);
}

/// One thread releases a shared lock it never took, again and again, while writers take and
/// release the lock properly: every misused release panics without touching the word, so each
/// writer finishes its rounds and nobody is left waiting.
#[test]
fn misused_releases_beside_writers_hurt_only_the_misuser() {
    let raw = Arc::new(RawRwMutex::new());
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = scaled(20_000, 100);
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let (raw, stop) = (Arc::clone(&raw), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut done = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    raw.lock_exclusive();
                    // SAFETY: taken just above.
                    unsafe { raw.unlock_exclusive() };
                    done += 1;
                }
                done
            })
        })
        .collect();
    let panics = quiet_panics("sync: RUnlock of unlocked RWMutex", || {
        (0..rounds)
            .filter(|_| {
                // SAFETY: deliberately broken (only writers use the lock: no shared lock is
                // ever held), to check that it panics and changes nothing.
                std::panic::catch_unwind(|| unsafe { raw.unlock_shared() }).is_err()
            })
            .count()
    });
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        assert!(join_within(writer) > 0);
    }
    assert_eq!(panics, rounds);
    assert_free_and_usable(&raw);
}
