//! Loom models of the park layer's races: unpark against timeout and against cancellation,
//! hand-off tokens and the writes they publish, an untimed waiter's sleep on its own word, word
//! waits, and requeueing.
#![cfg(gosync_loom)]

use std::time::Instant;

use gosync_park::cell::UnsafeCell;
use gosync_park::sync::{Arc, AtomicBool, AtomicU32, AtomicUsize, Ordering};
use gosync_park::{
    park, thread, unpark_all, unpark_filter, unpark_one, unpark_requeue, wait, wake_one, FilterOp,
    ParkOptions, ParkResult, RequeueOp,
};

mod common;

use common::Flag;

const TOKEN: usize = 7;

fn key_of<T>(value: &T) -> usize {
    value as *const T as usize
}

/// Parks on `key` with no deadline, setting `parked` once it is queued.
fn park_flagged(key: usize, parked: &AtomicBool) -> ParkResult {
    park(
        key,
        ParkOptions::default(),
        || {
            parked.store(true, Ordering::Relaxed);
            true
        },
        || {},
        |_, _| unreachable!("no deadline"),
    )
}

/// A waiter with a deadline and an unparker race: exactly one of "unparked with the token" and
/// "timed out" happens, the unparker's view agrees, and the abort callback reports the queue
/// empty exactly when the waiter really left it.
#[test]
fn unpark_races_timeout() {
    loom::model(|| {
        let queued = Arc::new(AtomicBool::new(false));
        let key = key_of(&*queued);
        let waiter = {
            let queued = Arc::clone(&queued);
            thread::spawn(move || {
                let options = ParkOptions {
                    deadline: Some(Instant::now()),
                    ..ParkOptions::default()
                };
                let mut last = None;
                let result = park(
                    key,
                    options,
                    || {
                        queued.store(true, Ordering::Relaxed);
                        true
                    },
                    || {},
                    |_, was_last| last = Some(was_last),
                );
                (result, last)
            })
        };
        let unparked = unpark_one(key, |r| {
            assert!(!r.have_more);
            TOKEN
        });
        let (result, last) = waiter.join().unwrap();
        match result {
            ParkResult::Unparked(token) => {
                assert_eq!(token, TOKEN);
                assert_eq!(unparked.unparked, 1);
                assert_eq!(last, None);
            }
            ParkResult::TimedOut => {
                assert_eq!(unparked.unparked, 0);
                assert_eq!(last, Some(true));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Nobody is left behind in the queue.
        assert_eq!(unpark_all(key, 0), 0);
    });
}

/// The writes an unparker makes before unparking are visible to the woken thread: the
/// hand-off a mutex in starvation mode relies on.
#[test]
fn hand_off_publishes_writes_to_the_named_thread() {
    loom::model(|| {
        let data = Arc::new(UnsafeCell::new(0u32));
        let parked = Arc::new(AtomicBool::new(false));
        let key = key_of(&*data);
        let waiter = {
            let data = Arc::clone(&data);
            let parked = Arc::clone(&parked);
            thread::spawn(move || {
                let result = park_flagged(key, &parked);
                assert_eq!(result, ParkResult::Unparked(TOKEN));
                // SAFETY: the unparker wrote before handing off and never touches it again.
                assert_eq!(unsafe { *data.ptr() }, 42);
            })
        };
        // Spin (loom yields) until the waiter is queued, then hand off.
        loop {
            // SAFETY: nobody else accesses `data` until the hand-off below.
            unsafe { *data.mut_ptr() = 42 };
            let result = unpark_one(key, |_| TOKEN);
            if result.unparked == 1 {
                break;
            }
            thread::yield_now();
        }
        waiter.join().unwrap();
        assert!(parked.load(Ordering::Relaxed));
    });
}

/// An untimed waiter sleeps on its own state word (a futex; under loom a stand-in next to it): woken
/// through `unpark_filter` before, while or after it goes to sleep, it returns exactly once with
/// the token, and the unparker never needs more of it than the word's address.
#[test]
fn untimed_waiter_is_woken_once() {
    loom::model(|| {
        let queued = Arc::new(AtomicBool::new(false));
        let key = key_of(&*queued);
        let waiter = {
            let queued = Arc::clone(&queued);
            thread::spawn(move || park_flagged(key, &queued))
        };
        let mut woken = 0;
        while woken == 0 {
            woken = unpark_filter(key, |_| FilterOp::Unpark, |_| TOKEN).unparked;
            thread::yield_now();
        }
        assert_eq!(woken, 1);
        assert_eq!(waiter.join().unwrap(), ParkResult::Unparked(TOKEN));
        assert_eq!(unpark_all(key, 0), 0, "the waiter left the queue");
    });
}

/// Two untimed waiters and one `unpark_all`: each waiter is queued (and sleeps on its word) or
/// sees the change in `validate`; every queued one is woken exactly once with the token, its
/// futex wake sent after the unlock in any order against its sleep, and the count agrees.
#[test]
fn unpark_all_wakes_every_untimed_sleeper() {
    loom::model(|| {
        let ready = Arc::new(AtomicBool::new(false));
        let key = key_of(&*ready);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let ready = Arc::clone(&ready);
                thread::spawn(move || {
                    park(
                        key,
                        ParkOptions::default(),
                        // Relaxed: under the bucket lock, which `unpark_all` takes after the store.
                        || !ready.load(Ordering::Relaxed),
                        || {},
                        |_, _| unreachable!("no deadline"),
                    )
                })
            })
            .collect();
        // Relaxed: ordered before the waiters' `validate` by the bucket lock.
        ready.store(true, Ordering::Relaxed);
        let woken = unpark_all(key, TOKEN);
        let mut unparked = 0;
        for waiter in waiters {
            match waiter.join().unwrap() {
                ParkResult::Unparked(TOKEN) => unparked += 1,
                ParkResult::Invalid => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(unparked, woken);
        assert_eq!(unpark_all(key, 0), 0, "nobody is left in the queue");
    });
}

/// Cancellation racing an unpark: the waiter always returns (no lost wake), with the token if
/// and only if the unparker found it.
#[test]
fn cancellation_races_unpark() {
    loom::model(|| {
        let flag = Arc::new(Flag::default());
        let key = key_of(&*flag);
        let waiter = {
            let flag = Arc::clone(&flag);
            thread::spawn(move || {
                let options = ParkOptions {
                    cancel: Some(&*flag),
                    ..ParkOptions::default()
                };
                park(key, options, || true, || {}, |_, _| {})
            })
        };
        let canceller = {
            let flag = Arc::clone(&flag);
            thread::spawn(move || flag.cancel())
        };
        let unparked = unpark_one(key, |_| TOKEN);
        let result = waiter.join().unwrap();
        canceller.join().unwrap();
        match result {
            ParkResult::Unparked(TOKEN) => assert_eq!(unparked.unparked, 1),
            ParkResult::Cancelled => assert_eq!(unparked.unparked, 0),
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            flag.wakers.lock().is_empty(),
            "the waker was left registered"
        );
    });
}

/// A word wait never misses the store-then-wake that ends it.
#[test]
fn word_wait_does_not_lose_a_wake() {
    loom::model(|| {
        let word = Arc::new(AtomicU32::new(0));
        let waiter = {
            let word = Arc::clone(&word);
            thread::spawn(move || {
                while word.load(Ordering::Acquire) == 0 {
                    wait(&word, 0);
                }
            })
        };
        word.store(1, Ordering::Release);
        wake_one(&*word);
        waiter.join().unwrap();
    });
}

/// A waiter requeued from one key to another is woken through the second key, and nobody is
/// lost in either queue.
#[test]
fn requeue_moves_waiters_to_the_target_key() {
    loom::model(|| {
        let keys = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let (from, to) = (key_of(&keys[0]), key_of(&keys[1]));
        let parked = Arc::new(AtomicBool::new(false));
        let waiter = {
            let parked = Arc::clone(&parked);
            thread::spawn(move || park_flagged(from, &parked))
        };
        loop {
            let result = unpark_requeue(from, to, || RequeueOp::RequeueAll, |_, _| 0);
            if result.requeued == 1 {
                break;
            }
            thread::yield_now();
        }
        assert_eq!(unpark_all(from, 0), 0);
        let result = unpark_one(to, |_| TOKEN);
        assert_eq!(result.unparked, 1);
        assert_eq!(waiter.join().unwrap(), ParkResult::Unparked(TOKEN));
        assert!(parked.load(Ordering::Relaxed));
    });
}

/// `park_while` against a releaser that clears the busy bit and wakes through the mark: the
/// sleeper never misses the release (it returns), and once both are done the mark is gone,
/// whether the sleeper was woken, gave up at its deadline (which fires at any point under loom)
/// or never slept.
#[test]
fn park_while_mark_agrees_with_the_queue() {
    const HELD: u32 = 1;
    const PARKED: u32 = 2;
    loom::model(|| {
        let word = Arc::new(AtomicU32::new(HELD));
        let key = key_of(&*word);
        let sleeper = {
            let word = Arc::clone(&word);
            thread::spawn(move || loop {
                // Acquire: pairs with the releaser's Release.
                if word.load(Ordering::Acquire) & HELD == 0 {
                    return;
                }
                let options = ParkOptions {
                    deadline: Some(Instant::now() + std::time::Duration::from_secs(3600)),
                    ..ParkOptions::default()
                };
                let result =
                    gosync_park::park_while(&*word, key, PARKED, |s| s & HELD != 0, options);
                if result == ParkResult::TimedOut {
                    return; // gave up
                }
            })
        };
        // Release: publishes the release to the sleeper.
        if word.fetch_and(!HELD, Ordering::Release) & PARKED != 0 {
            unpark_one(key, |result| {
                if !result.have_more {
                    gosync_park::ParkedBits::clear_parked(&*word, PARKED);
                }
                0
            });
        }
        sleeper.join().unwrap();
        assert_eq!(word.load(Ordering::Relaxed), 0);
    });
}
