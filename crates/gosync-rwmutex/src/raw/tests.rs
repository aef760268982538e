//! Unit tests of the state word: its bits, and how each operation moves between states.

use std::time::Duration;

use gosync_context::Context;

use super::*;
use crate::shards::{ReadSlot, KEEP_SHARDED_READS, MAX_SHARDS};

#[test]
fn flag_bits_are_distinct_and_below_the_count() {
    let flags = [
        PARKED_READERS,
        PARKED_WRITERS,
        PARKED_DRAIN,
        WRITER,
        UPGRADABLE,
        SHARDED,
        QUEUED_WRITER,
        TRYING_WRITE,
        TRYING_UPGRADE,
    ];
    let mut all = 0;
    for flag in flags {
        assert_eq!(flag.count_ones(), 1);
        assert_eq!(all & flag, 0);
        all |= flag;
        assert!(flag < READER);
    }
    assert_eq!(all | READERS_MASK, usize::MAX);
}

#[test]
fn a_reader_that_sees_a_tentative_claim_counts_itself_in_the_word() {
    let raw = RawRwMutex::new();
    let state = || raw.state.load(Ordering::Relaxed);
    let (first, second) = (raw.lock_read(), raw.lock_read());
    // SAFETY: both read locks were just taken.
    unsafe {
        raw.unlock_read(first);
        raw.unlock_read(second);
    }
    assert_eq!(state(), SHARDED);
    for trying in [TRYING_WRITE, TRYING_UPGRADE] {
        raw.state.fetch_or(trying, Ordering::Relaxed);
        let slot = raw
            .try_lock_read()
            .expect("a tentative claim sends no reader away");
        assert_eq!((slot, state()), (ReadSlot::WORD, SHARDED | trying | READER));
        raw.state.fetch_and(!trying, Ordering::Relaxed);
        // SAFETY: the read lock was just taken.
        unsafe { raw.unlock_read(slot) };
    }
    // A `try_write` that fails beside a reader in its shard leaves the word as it was.
    let inside = raw.lock_read();
    assert!(inside.shard_index().is_some());
    assert!(!raw.try_lock_exclusive());
    assert_eq!(state(), SHARDED);
    // SAFETY: the read lock is held.
    unsafe { raw.unlock_read(inside) };
    assert!(raw.try_lock_exclusive());
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
}

#[test]
fn a_reader_backing_out_leaves_the_count_unchanged() {
    let raw = RawRwMutex::new();
    raw.lock_exclusive();
    assert!(!raw.try_lock_shared());
    assert_eq!(raw.state.load(Ordering::Relaxed), WRITER);
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
    assert_eq!(raw.state.load(Ordering::Relaxed), 0);
}

#[test]
fn upgrade_and_downgrade_move_between_states() {
    let raw = RawRwMutex::new();
    raw.lock_upgradable();
    assert_eq!(raw.state.load(Ordering::Relaxed), UPGRADABLE + READER);
    // SAFETY: each call holds what it gives up, in sequence.
    unsafe {
        raw.upgrade();
        assert_eq!(raw.state.load(Ordering::Relaxed), WRITER);
        raw.downgrade_to_upgradable();
        assert_eq!(raw.state.load(Ordering::Relaxed), UPGRADABLE + READER);
        raw.downgrade_upgradable();
        assert_eq!(raw.state.load(Ordering::Relaxed), READER);
        raw.unlock_shared();
    }
    assert_eq!(raw.state.load(Ordering::Relaxed), 0);
}

#[test]
fn contended_guard_reads_shard_the_lock() {
    let raw = RawRwMutex::new();
    let state = || raw.state.load(Ordering::Relaxed);
    let first = raw.lock_read();
    assert_eq!((first, state()), (ReadSlot::WORD, READER));
    // Finds `first` inside: gives the lock its shards; is itself counted in the word.
    let second = raw.lock_read();
    assert_eq!((second, state()), (ReadSlot::WORD, SHARDED + 2 * READER));
    let third = raw.lock_read();
    assert!(third.shard_index().is_some());
    assert_eq!(state(), SHARDED + 2 * READER);
    // The raw shared lock keeps counting in the word.
    assert!(raw.try_lock_shared());
    assert_eq!(state(), SHARDED + 3 * READER);
    // SAFETY: each lock released here is held, and released once.
    unsafe {
        raw.unlock_shared();
        raw.unlock_read(first);
        raw.unlock_read(second);
    }
    assert_eq!(state(), SHARDED);
    assert!(raw.is_locked(), "the reader in its shard");
    assert!(!raw.try_lock_exclusive());
    assert_eq!(
        state(),
        SHARDED,
        "a failed try_lock_exclusive leaves no claim"
    );
    // SAFETY: `third` is held; then the slot it moved to is.
    unsafe {
        let third = raw.count_in_word(third);
        assert_eq!((third, state()), (ReadSlot::WORD, SHARDED + READER));
        raw.unlock_read(third);
    }
    assert!(!raw.is_locked());
    // A writer that finds the shards empty sends readers back to the word.
    assert!(raw.try_lock_exclusive());
    assert_eq!(state(), WRITER);
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
    assert_eq!(state(), 0);
    let (first, second) = (raw.lock_read(), raw.lock_read());
    assert_eq!((first, second), (ReadSlot::WORD, ReadSlot::WORD));
    assert_eq!(state(), SHARDED + 2 * READER, "contended again");
    let third = raw.lock_read();
    assert!(third.shard_index().is_some());
    // SAFETY: the three read locks are held.
    unsafe {
        raw.unlock_read(first);
        raw.unlock_read(second);
        raw.unlock_read(third);
    }
    // Reads came through the shards often enough since the last writer looked: the next
    // writer keeps them there.
    for _ in 0..KEEP_SHARDED_READS * MAX_SHARDS {
        let slot = raw.lock_read();
        assert!(slot.shard_index().is_some());
        // SAFETY: the read lock was just taken.
        unsafe { raw.unlock_read(slot) };
    }
    assert!(raw.try_lock_exclusive());
    assert_eq!(state(), SHARDED + WRITER);
    // SAFETY: the exclusive lock is held.
    unsafe { raw.unlock_exclusive() };
    assert_eq!(state(), SHARDED);
    let slot = raw.lock_read();
    assert!(slot.shard_index().is_some());
    // SAFETY: the read lock was just taken.
    unsafe { raw.unlock_read(slot) };
}

#[test]
#[should_panic(expected = "sync: too many readers")]
fn reader_overflow_panics() {
    let raw = RawRwMutex::new();
    raw.state.store(READERS_OVERFLOW, Ordering::Relaxed);
    raw.lock_shared();
}

/// Asserts that `$call` panics, naming the line it is written on.
macro_rules! assert_panics_here {
    ($call:expr) => {
        let (file, line, _) = gosync_testkit::panic_site(|| {
            let _held = $call;
        });
        assert_eq!((file.as_str(), line), (file!(), line!()))
    };
}

#[test]
fn reader_overflow_panics_name_the_callers_line() {
    let lock = crate::RwMutex::new(0);
    lock.raw.state.store(READERS_OVERFLOW, Ordering::Relaxed);
    let ctx = Context::background();
    assert_panics_here!(lock.read());
    assert_panics_here!(lock.try_read());
    assert_panics_here!(lock.try_read_for(Duration::ZERO));
    assert_panics_here!(lock.read_ctx(&ctx));
    assert_panics_here!(lock.upgradable_read());
    assert_panics_here!(lock.try_upgradable_read());
    assert_panics_here!(lock.raw.lock_shared());
    // Every attempt backed out: the count is as it was.
    assert_eq!(lock.raw.state.load(Ordering::Relaxed), READERS_OVERFLOW);
}
