//! The protocol every primitive follows around a park, as the park layer offers it:
//! `park_while` marks the state word while the thread sleeps and clears the mark when the last
//! sleeper gives up; `unlocked` takes the lock back however the user's code ends; and a
//! cancelled wait reports its source's error.
//!
//! Bounded like the other park tests: queueing is awaited with `wait_until`, threads are joined
//! with `join_within` (both from `gosync-testkit`).
#![cfg(not(gosync_loom))]

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_park::{
    cancelled_error, park_while, unlocked, unpark_filter, unpark_one, Cancellation, ContextError,
    FilterOp, ParkOptions, ParkResult, ParkedBits, RelockOnDrop, Waker,
};
use gosync_testkit::{join_within, wait_until};

const HELD: u32 = 0b01;
const PARKED: u32 = 0b10;

fn key_of<T>(value: &T) -> usize {
    value as *const T as usize
}

/// Parks on `word`'s address while `HELD` is set, marking it `PARKED` meanwhile.
fn park_while_held(word: &AtomicU32, options: ParkOptions<'_>) -> ParkResult {
    park_while(word, key_of(word), PARKED, |s| s & HELD != 0, options)
}

/// A thread that parks on `word` while it is held, without a deadline.
fn spawn_sleeper(word: &Arc<AtomicU32>) -> thread::JoinHandle<ParkResult> {
    let word = Arc::clone(word);
    thread::spawn(move || park_while_held(&word, ParkOptions::default()))
}

/// Whether a thread is queued on `key` (asked under the queue lock, waking nobody).
fn has_waiters(key: usize) -> bool {
    unpark_filter(key, |_| FilterOp::Stop, |_| 0).have_more
}

#[test]
fn a_free_word_is_not_waited_on_or_marked() {
    let word = AtomicU32::new(0);
    let result = park_while_held(&word, ParkOptions::default());
    assert_eq!(result, ParkResult::Invalid);
    assert_eq!(word.load(Ordering::Relaxed), 0);
}

#[test]
fn the_mark_is_set_while_queued_and_the_waker_clears_it() {
    let word = Arc::new(AtomicU32::new(HELD));
    let key = key_of(&*word);
    let sleeper = spawn_sleeper(&word);
    wait_until(|| has_waiters(key));
    assert_eq!(word.load(Ordering::Relaxed), HELD | PARKED);
    unpark_one(key, |result| {
        if !result.have_more {
            word.clear_parked(PARKED);
        }
        5
    });
    assert_eq!(join_within(sleeper), ParkResult::Unparked(5));
    assert_eq!(word.load(Ordering::Relaxed), HELD);
}

#[test]
fn only_the_last_sleeper_to_give_up_clears_the_mark() {
    let word = Arc::new(AtomicU32::new(HELD));
    let key = key_of(&*word);
    let patient = spawn_sleeper(&word);
    wait_until(|| has_waiters(key));
    let options = ParkOptions {
        deadline: Some(Instant::now() + Duration::from_millis(1)),
        ..ParkOptions::default()
    };
    let impatient = park_while_held(&word, options);
    assert_eq!(impatient, ParkResult::TimedOut);
    assert_eq!(
        word.load(Ordering::Relaxed),
        HELD | PARKED,
        "a sleeper remains"
    );

    let options = ParkOptions {
        deadline: Some(Instant::now()),
        ..ParkOptions::default()
    };
    unpark_one(key, |_| 0);
    assert_eq!(join_within(patient), ParkResult::Unparked(0));
    let last = park_while_held(&word, options);
    assert_eq!(last, ParkResult::TimedOut);
    assert_eq!(word.load(Ordering::Relaxed), HELD, "the last sleeper left");
}

#[test]
fn a_multi_bit_mark_is_set_whole() {
    let word = AtomicU8::new(0b001 | 0b010);
    assert!(word.set_parked_while(0b110, |s| s & 0b001 != 0));
    assert_eq!(word.load(Ordering::Relaxed), 0b111);
    word.clear_parked(0b110);
    assert_eq!(word.load(Ordering::Relaxed), 0b001);
}

#[test]
fn every_word_width_has_the_protocol() {
    let wide = AtomicU64::new(1 << 40);
    assert!(wide.set_parked_while(1, |s| s >= 1 << 40));
    assert_eq!(wide.load(Ordering::Relaxed), (1 << 40) | 1);
    let size = AtomicUsize::new(0);
    assert!(!size.set_parked_while(1, |s| s != 0));
    assert_eq!(size.load(Ordering::Relaxed), 0);
}

#[test]
fn unlocked_relocks_after_the_closure_and_during_a_panic() {
    let held = Cell::new(true);
    let value = unlocked(
        || held.set(false),
        || held.set(true),
        || {
            assert!(!held.get());
            7
        },
    );
    assert_eq!(value, 7);
    assert!(held.get());

    let caught = catch_unwind(AssertUnwindSafe(|| {
        unlocked(
            || held.set(false),
            || held.set(true),
            || panic!("user code"),
        )
    }));
    assert!(caught.is_err());
    assert!(held.get(), "relocked while unwinding");
}

#[test]
fn relock_on_drop_runs_once() {
    let relocks = Cell::new(0);
    drop(RelockOnDrop::new(|| relocks.set(relocks.get() + 1)));
    assert_eq!(relocks.get(), 1);
    assert!(format!("{:?}", RelockOnDrop::new(|| ())).starts_with("RelockOnDrop"));
}

/// A source with fixed answers that keeps the default `err`.
struct Plain {
    cancelled: bool,
    deadline: Option<Instant>,
}

impl Cancellation for Plain {
    fn is_cancelled(&self) -> bool {
        self.cancelled
    }
    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
    fn register(&self, _: Waker) -> bool {
        !self.cancelled
    }
    fn unregister(&self, _: usize) {}
}

/// A source that reports its own `err` (as a `Context` does), and never cancels a park.
struct Knows(Option<ContextError>);

impl Cancellation for Knows {
    fn is_cancelled(&self) -> bool {
        false
    }
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn err(&self) -> Option<ContextError> {
        self.0
    }
    fn register(&self, _: Waker) -> bool {
        true
    }
    fn unregister(&self, _: usize) {}
}

#[test]
fn a_cancelled_wait_reports_its_sources_error() {
    let far = Some(Instant::now() + Duration::from_secs(3600));
    let past = Some(Instant::now());
    let plain = |cancelled, deadline| Plain {
        cancelled,
        deadline,
    };

    // The source's own answer wins.
    let own = Knows(Some(ContextError::Canceled));
    assert_eq!(cancelled_error(&own), ContextError::Canceled);
    // The default: a passed deadline, then the cancellation.
    assert_eq!(
        cancelled_error(&plain(true, past)),
        ContextError::DeadlineExceeded
    );
    assert_eq!(cancelled_error(&plain(true, far)), ContextError::Canceled);
    assert_eq!(plain(false, far).err(), None);
    // The park layer gave up at a deadline the source does not report yet: that deadline is why.
    assert_eq!(
        cancelled_error(&Knows(None)),
        ContextError::DeadlineExceeded
    );
}

#[test]
fn a_cancelled_park_and_its_error_agree() {
    let word = AtomicU32::new(HELD);
    let cancelled = plain_cancelled();
    let options = ParkOptions {
        cancel: Some(&cancelled),
        ..ParkOptions::default()
    };
    let result = park_while_held(&word, options);
    assert_eq!(result, ParkResult::Cancelled);
    assert_eq!(cancelled_error(&cancelled), ContextError::Canceled);
    assert_eq!(word.load(Ordering::Relaxed), HELD);
}

fn plain_cancelled() -> Plain {
    Plain {
        cancelled: true,
        deadline: None,
    }
}
