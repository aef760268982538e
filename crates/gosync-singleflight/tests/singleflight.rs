//! `singleflight::Group` behaviour.
//!
//! Ported from x/sync's `singleflight_test.go` (behaviours, in our own code): `TestDo`,
//! `TestDoErr`, `TestDoDupSuppress`, `TestForget`, `TestPanicDo`, and `TestPanicDoSharedByDoChan`
//! (as a cancellable waiter that receives the panic). `TestGoexitDo` has no Rust analog, and
//! `TestDoChan`/`TestPanicDoChan` are replaced by `call_ctx`. Then hostile cases: 64 threads,
//! panics in `f` and in `V::clone`, callers joining as a flight lands, waiters giving up as it
//! lands, with every count checked exactly.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_singleflight::Group;
use gosync_testkit::{
    join_within, panic_message, scaled, short_panics_under_miri, wait_until, LIMIT,
};

/// How many callers wait on flights of `group` now (from its `Debug` snapshot).
fn waiting<K, V>(group: &Group<K, V>) -> usize {
    let shown = format!("{group:?}");
    let count = shown
        .split("waiting: ")
        .nth(1)
        .expect("Debug shows waiting");
    count.trim_end_matches(" }").parse().expect("a count")
}

/// Starts a flight for `key` on a new thread whose `f` returns `value` once `release` says so;
/// returns after `f` has started.
fn blocked_flight(
    group: &Arc<Group<&'static str, u32>>,
    key: &'static str,
    value: u32,
) -> (mpsc::Sender<()>, thread::JoinHandle<(u32, bool)>) {
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let group = Arc::clone(group);
    let handle = thread::spawn(move || {
        group.call(key, || {
            started_tx.send(()).unwrap();
            release_rx.recv_timeout(LIMIT).unwrap();
            value
        })
    });
    started.recv_timeout(LIMIT).unwrap();
    (release, handle)
}

#[test]
fn do_returns_the_value() {
    let group = Group::new();
    let (value, shared) = group.call("key", || String::from("bar"));
    assert_eq!(value, "bar");
    assert!(!shared);
    assert_eq!(format!("{group:?}"), "Group { flights: 0, waiting: 0 }");
}

#[test]
fn do_returns_an_error_as_a_value() {
    let group: Group<&str, Result<u32, String>> = Group::default();
    let (value, shared) = group.call("key", || Err(String::from("some error")));
    assert_eq!(value, Err(String::from("some error")));
    assert!(!shared);
}

#[test]
fn dup_suppress_every_caller_gets_its_flights_value() {
    let callers = scaled(10, 4);
    let group = Arc::new(Group::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let (group, calls, arrived) = (group.clone(), calls.clone(), arrived.clone());
            thread::spawn(move || {
                arrived.fetch_add(1, Ordering::SeqCst);
                group.call("key", || {
                    let call = calls.fetch_add(1, Ordering::SeqCst);
                    // Give the others time to join: hold the flight until all have arrived.
                    wait_until(|| arrived.load(Ordering::SeqCst) == callers);
                    call
                })
            })
        })
        .collect();
    let results: Vec<(usize, bool)> = handles.into_iter().map(join_within).collect();
    let calls = calls.load(Ordering::SeqCst);
    assert!((1..=callers).contains(&calls), "{calls} calls");
    assert_shared_exactly(&results, calls);
}

/// Each flight's value went to its callers, `shared` exactly when there were several, and
/// every flight that ran delivered to at least its leader.
fn assert_shared_exactly(results: &[(usize, bool)], calls: usize) {
    let mut receivers: HashMap<usize, usize> = HashMap::new();
    for (value, _) in results {
        *receivers.entry(*value).or_default() += 1;
    }
    assert_eq!(
        receivers.len(),
        calls,
        "every flight has its leader: {results:?}"
    );
    for (value, shared) in results {
        assert_eq!(*shared, receivers[value] > 1, "{results:?}");
    }
}

#[test]
fn forget_lets_the_next_call_start_a_new_flight() {
    let group = Arc::new(Group::new());
    let (release_first, first) = blocked_flight(&group, "key", 1);
    group.forget(&"key");
    let (release_second, second) = blocked_flight(&group, "key", 2);

    release_first.send(()).unwrap();
    assert_eq!(join_within(first), (1, false));

    // The first flight's landing must not free the key of the second.
    let third = {
        let group = Arc::clone(&group);
        thread::spawn(move || group.call("key", || 3))
    };
    wait_until(|| waiting(&group) == 1);
    release_second.send(()).unwrap();
    assert_eq!(join_within(second), (2, true));
    assert_eq!(join_within(third), (2, true));
    assert_eq!(group.call("key", || 4), (4, false));
}

#[test]
fn forget_keeps_the_value_for_callers_already_waiting() {
    let group = Arc::new(Group::new());
    let (release, leader) = blocked_flight(&group, "key", 1);
    let waiter = {
        let group = Arc::clone(&group);
        thread::spawn(move || group.call("key", || 9))
    };
    wait_until(|| waiting(&group) == 1);
    group.forget(&"key");
    assert_eq!(format!("{group:?}"), "Group { flights: 0, waiting: 0 }");
    release.send(()).unwrap();
    assert_eq!(join_within(leader), (1, true));
    assert_eq!(join_within(waiter), (1, true));
}

#[test]
fn a_panic_in_f_reaches_every_caller_and_frees_the_key() {
    short_panics_under_miri();
    let callers = scaled(5, 2);
    let group: Arc<Group<&str, u32>> = Arc::new(Group::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..callers)
        .map(|_| {
            let (group, runs) = (group.clone(), runs.clone());
            thread::spawn(move || {
                group.call("key", || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    wait_until(|| waiting(&group) == callers - 1);
                    panic!("invalid memory address or nil pointer dereference")
                })
            })
        })
        .collect();
    for handle in handles {
        let caught = catch_unwind(AssertUnwindSafe(|| join_within(handle))).unwrap_err();
        assert_eq!(
            panic_message(&*caught),
            "invalid memory address or nil pointer dereference"
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(group.call("key", || 7), (7, false));
}

#[test]
fn a_panic_reaches_a_cancellable_waiter() {
    short_panics_under_miri();
    let group = Arc::new(Group::<&str, u32>::new());
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let leader = {
        let group = Arc::clone(&group);
        thread::spawn(move || {
            group.call("", || {
                started_tx.send(()).unwrap();
                release_rx.recv_timeout(LIMIT).unwrap();
                panic!("Panicking in Do")
            });
        })
    };
    started.recv_timeout(LIMIT).unwrap();
    let waiter = {
        let group = Arc::clone(&group);
        thread::spawn(move || {
            let (ctx, _cancel) = Context::background().with_timeout(LIMIT);
            let _ = group.call_ctx(&ctx, "", || panic!("call_ctx unexpectedly ran its f"));
        })
    };
    wait_until(|| waiting(&group) == 1);
    release.send(()).unwrap();
    for handle in [leader, waiter] {
        let caught = catch_unwind(AssertUnwindSafe(|| join_within(handle))).unwrap_err();
        assert_eq!(panic_message(&*caught), "Panicking in Do");
    }
}

/// A value whose clone panics, for the leader's hand-over.
#[derive(Debug)]
struct CloneFails;

impl Clone for CloneFails {
    fn clone(&self) -> Self {
        panic!("clone failed")
    }
}

#[test]
fn a_panicking_clone_reaches_the_waiters_too() {
    short_panics_under_miri();
    let group = Arc::new(Group::<u8, CloneFails>::new());
    let (started_tx, started) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let leader = {
        let group = Arc::clone(&group);
        thread::spawn(move || {
            group.call(0, || {
                started_tx.send(()).unwrap();
                release_rx.recv_timeout(LIMIT).unwrap();
                CloneFails
            });
        })
    };
    started.recv_timeout(LIMIT).unwrap();
    let waiter = {
        let group = Arc::clone(&group);
        thread::spawn(move || {
            group.call(0, || CloneFails);
        })
    };
    wait_until(|| waiting(&group) == 1);
    release.send(()).unwrap();
    for handle in [leader, waiter] {
        let caught = catch_unwind(AssertUnwindSafe(|| join_within(handle))).unwrap_err();
        assert_eq!(panic_message(&*caught), "clone failed");
    }
    // Alone, nothing is cloned.
    let (_value, shared) = group.call(0, || CloneFails);
    assert!(!shared);
}

#[test]
fn sixty_four_callers_over_many_rounds() {
    let threads = scaled(64, 4);
    let rounds = scaled(50, 3);
    let group = Arc::new(Group::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (group, calls, barrier) = (group.clone(), calls.clone(), barrier.clone());
            thread::spawn(move || {
                (0..rounds)
                    .map(|round| {
                        barrier.wait();
                        let (value, shared) =
                            group.call(round, || (round, calls.fetch_add(1, Ordering::SeqCst)));
                        assert_eq!(value.0, round);
                        (value.1, shared)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(usize, bool)> = handles.into_iter().flat_map(join_within).collect();
    assert_eq!(results.len(), threads * rounds);
    assert_shared_exactly(&results, calls.load(Ordering::SeqCst));
    assert_eq!(format!("{group:?}"), "Group { flights: 0, waiting: 0 }");
}

#[test]
fn a_caller_joining_as_the_flight_lands_gets_one_value() {
    for _ in 0..scaled(500, 10) {
        let group = Arc::new(Group::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let (group, calls) = (group.clone(), calls.clone());
                thread::spawn(move || group.call(0, || calls.fetch_add(1, Ordering::SeqCst)))
            })
            .collect();
        let results: Vec<_> = callers.into_iter().map(join_within).collect();
        assert_shared_exactly(&results, calls.load(Ordering::SeqCst));
    }
}

#[test]
fn a_zero_timeout_or_a_past_deadline_does_not_wait() {
    let group = Arc::new(Group::new());
    let (release, leader) = blocked_flight(&group, "key", 1);
    assert_eq!(group.try_call_for("key", Duration::ZERO, || 2), None);
    assert_eq!(group.try_call_until("key", Instant::now(), || 2), None);
    assert_eq!(waiting(&group), 0);
    // Another key is free: the caller runs its own `f`.
    assert_eq!(
        group.try_call_until("other", Instant::now(), || 3),
        Some((3, false))
    );
    release.send(()).unwrap();
    assert_eq!(join_within(leader), (1, false));
}

#[test]
fn a_timed_waiter_gives_up_and_does_not_count_as_shared() {
    let group = Arc::new(Group::new());
    let (release, leader) = blocked_flight(&group, "key", 1);
    assert_eq!(
        group.try_call_for("key", Duration::from_millis(5), || 2),
        None
    );
    assert_eq!(waiting(&group), 0);
    release.send(()).unwrap();
    assert_eq!(join_within(leader), (1, false));
}

#[test]
fn a_cancelled_waiter_leaves_and_the_flight_goes_on() {
    let group = Arc::new(Group::new());
    let (release, leader) = blocked_flight(&group, "key", 1);
    let (ctx, cancel) = Context::background().with_cancel();
    let quitter = {
        let group = Arc::clone(&group);
        thread::spawn(move || group.call_ctx(&ctx, "key", || 2))
    };
    let stayer = {
        let group = Arc::clone(&group);
        thread::spawn(move || group.call("key", || 3))
    };
    wait_until(|| waiting(&group) == 2);
    cancel.cancel();
    assert_eq!(join_within(quitter), Err(ContextError::Canceled));
    assert_eq!(waiting(&group), 1);
    release.send(()).unwrap();
    assert_eq!(join_within(leader), (1, true));
    assert_eq!(join_within(stayer), (1, true));
}

#[test]
fn a_done_context_fails_at_once_even_with_no_flight() {
    let group = Group::new();
    let (ctx, _cancel) = Context::background().with_timeout(Duration::ZERO);
    assert_eq!(
        group.call_ctx(&ctx, 0, || panic!("must not run")),
        Err(ContextError::DeadlineExceeded)
    );
    assert_eq!(
        group.call_ctx(&Context::background(), 0, || 1),
        Ok((1, false))
    );
}

#[test]
fn cancellation_racing_the_landing_gives_each_waiter_one_outcome() {
    for _ in 0..scaled(200, 5) {
        let group = Arc::new(Group::new());
        let (release, leader) = blocked_flight(&group, "key", 1);
        let (ctx, cancel) = Context::background().with_cancel();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let (group, ctx) = (group.clone(), ctx.clone());
                thread::spawn(move || group.call_ctx(&ctx, "key", || 2))
            })
            .collect();
        wait_until(|| waiting(&group) == 3);
        // Land and cancel at the same instant.
        release.send(()).unwrap();
        cancel.cancel();
        let outcomes: Vec<_> = waiters.into_iter().map(join_within).collect();
        let received = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        for outcome in &outcomes {
            assert!(
                *outcome == Ok((1, true)) || *outcome == Err(ContextError::Canceled),
                "{outcome:?}"
            );
        }
        assert_eq!(join_within(leader), (1, received > 0));
    }
}

#[test]
fn keys_are_independent() {
    let group = Arc::new(Group::new());
    let (release, leader) = blocked_flight(&group, "slow", 1);
    assert_eq!(group.call("fast", || 2), (2, false));
    release.send(()).unwrap();
    assert_eq!(join_within(leader), (1, false));
}

#[test]
fn eight_callers_of_a_one_millisecond_f_run_it_once_per_flight() {
    let callers = scaled(8, 3);
    let group = Arc::new(Group::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(callers));
    for _round in 0..scaled(20, 2) {
        let before = calls.load(Ordering::SeqCst);
        let handles: Vec<_> = (0..callers)
            .map(|_| {
                let (group, calls, barrier) = (group.clone(), calls.clone(), barrier.clone());
                thread::spawn(move || {
                    barrier.wait();
                    group.call("key", || {
                        // The work the bench times; nothing waits on it.
                        thread::sleep(Duration::from_millis(1));
                        calls.fetch_add(1, Ordering::SeqCst)
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(join_within).collect();
        let flights = calls.load(Ordering::SeqCst) - before;
        assert!((1..=callers).contains(&flights));
        assert_shared_exactly(&results, flights);
    }
}
