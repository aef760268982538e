//! Public behaviour of `Barrier`.
//!
//! Go has no barrier to port tests from; these follow the contract in the docs (and the usual
//! cyclic-barrier cases of Java's `CyclicBarrier` tests, in our own code): trips over many
//! rounds with one leader each and the action once per trip before anyone is released;
//! timeouts and cancellations breaking the barrier for everyone waiting; `reset` and
//! `break_barrier`; a panicking action. Then hostile tests: 64 parties on few cores, and
//! timeouts, resets and trips racing, with every outcome checked.
//!
//! Every test that could hang runs inside `within` (gosync-testkit).

#![cfg(not(gosync_loom))]

use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use gosync_barrier::{Barrier, BarrierError, BarrierWaitResult};
use gosync_context::{Context, ContextError};
use gosync_testkit::{panic_message, scaled, spawn_with, wait_until, within, LIMIT};

/// Runs `parties` threads that each call `f(index)` and returns their results.
fn run_parties<T: Send + 'static>(
    parties: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..parties)
        .map(|i| {
            let f = f.clone();
            thread::spawn(move || f(i))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn zero_parties_panics() {
    let payload = panic::catch_unwind(|| Barrier::new(0)).unwrap_err();
    assert_eq!(
        panic_message(&*payload),
        "barrier: parties must be at least 1"
    );
}

/// Many rounds: every party of a round sees the same generation, there is one leader per round,
/// the action runs once per trip, before anyone of that round is released.
#[test]
fn rounds_have_one_leader_and_one_action_each() {
    within(|| {
        let parties = 4;
        let rounds = scaled(200, 5);
        let actions = Arc::new(AtomicUsize::new(0));
        let barrier = {
            let actions = actions.clone();
            Arc::new(Barrier::with_action(parties, move || {
                actions.fetch_add(1, Ordering::SeqCst);
            }))
        };
        let results = {
            let (barrier, actions) = (barrier.clone(), actions.clone());
            run_parties(parties, move |_| {
                (0..rounds)
                    .map(|round| {
                        let result = barrier.wait().unwrap();
                        assert_eq!(result.generation(), round as u64);
                        // The action of this round ran before the release.
                        assert!(actions.load(Ordering::SeqCst) > round);
                        result
                    })
                    .collect::<Vec<BarrierWaitResult>>()
            })
        };
        for round in 0..rounds {
            let leaders = results.iter().filter(|r| r[round].is_leader()).count();
            assert_eq!(leaders, 1, "round {round}");
        }
        assert_eq!(actions.load(Ordering::SeqCst), rounds);
        assert_eq!(barrier.n_waiting(), 0);
        assert!(!barrier.is_broken());
    });
}

/// Everything a party wrote before `wait` is visible to all after the trip, and to the action.
#[test]
fn writes_before_the_trip_are_visible_after() {
    within(|| {
        let parties = 3;
        let slots = Arc::new(Mutex::new(vec![0; parties]));
        let seen_by_action = Arc::new(Mutex::new(Vec::new()));
        let barrier = {
            let (slots, seen) = (slots.clone(), seen_by_action.clone());
            Arc::new(Barrier::with_action(parties, move || {
                *seen.lock().unwrap() = slots.lock().unwrap().clone();
            }))
        };
        let (b, s) = (barrier.clone(), slots.clone());
        run_parties(parties, move |i| {
            s.lock().unwrap()[i] = i + 1;
            b.wait().unwrap();
            assert_eq!(*s.lock().unwrap(), [1, 2, 3]);
        });
        assert_eq!(*seen_by_action.lock().unwrap(), [1, 2, 3]);
    });
}

/// A timeout breaks the barrier: the one that gave up gets `TimedOut`, the ones waiting
/// `Broken`, later waits `Broken` until `reset`, and the generation then moves on.
#[test]
fn a_timeout_breaks_the_barrier_for_everyone() {
    within(|| {
        let barrier = Arc::new(Barrier::new(3));
        let waiter = spawn_with(&barrier, |barrier| barrier.wait());
        wait_until(|| barrier.n_waiting() == 1);
        assert_eq!(
            barrier.wait_for(Duration::from_millis(5)),
            Err(BarrierError::TimedOut)
        );
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));
        assert!(barrier.is_broken());
        assert_eq!(barrier.n_waiting(), 0);
        assert_eq!(barrier.wait(), Err(BarrierError::Broken));
        assert_eq!(barrier.wait_for(Duration::ZERO), Err(BarrierError::Broken));
        barrier.reset();
        assert!(!barrier.is_broken());
        let b = barrier.clone();
        let results = run_parties(3, move |_| b.wait().unwrap().generation());
        assert_eq!(results, [1, 1, 1]);
    });
}

/// A zero timeout trips the barrier when this is the last party, and otherwise breaks it at
/// once.
#[test]
fn zero_timeouts() {
    within(|| {
        let barrier = Barrier::new(1);
        assert!(barrier.wait_for(Duration::ZERO).unwrap().is_leader());
        assert!(barrier.wait_until(Instant::now()).unwrap().is_leader());
        let barrier = Barrier::new(2);
        let start = Instant::now();
        assert_eq!(
            barrier.wait_for(Duration::ZERO),
            Err(BarrierError::TimedOut)
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(barrier.is_broken());
    });
}

/// A thread that arrives while the trip's action runs waits for the next generation; when it
/// gives up there (a timeout, a zero timeout, a cancellation), the trip under way completes
/// for its parties, and the barrier is broken from then on: a thread pending beside it and
/// every later `wait` get `Broken` (before, the next party waited for a partner that had left).
#[test]
fn giving_up_while_the_action_runs_breaks_the_next_generation() {
    type GiveUp = fn(&Barrier) -> Result<BarrierWaitResult, BarrierError>;
    let give_ups: [(GiveUp, BarrierError); 3] = [
        (
            |b| b.wait_for(Duration::from_millis(5)),
            BarrierError::TimedOut,
        ),
        (|b| b.wait_for(Duration::ZERO), BarrierError::TimedOut),
        (
            |b| {
                let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
                b.wait_ctx(&ctx)
            },
            BarrierError::Canceled(ContextError::DeadlineExceeded),
        ),
    ];
    for (give_up, expected) in give_ups {
        within(move || {
            let in_action = Arc::new(AtomicUsize::new(0));
            let go_on = Arc::new(AtomicUsize::new(0));
            let barrier = {
                let (in_action, go_on) = (in_action.clone(), go_on.clone());
                Arc::new(Barrier::with_action(2, move || {
                    in_action.store(1, Ordering::SeqCst);
                    wait_until(|| go_on.load(Ordering::SeqCst) == 1);
                }))
            };
            let parties: Vec<_> = (0..2)
                .map(|_| spawn_with(&barrier, |b| b.wait().map(|r| r.generation())))
                .collect();
            wait_until(|| in_action.load(Ordering::SeqCst) == 1);
            let beside = spawn_with(&barrier, |b| b.wait());
            assert_eq!(give_up(&barrier), Err(expected));
            go_on.store(1, Ordering::SeqCst);
            for party in parties {
                assert_eq!(party.join().unwrap(), Ok(0), "the trip under way completes");
            }
            assert_eq!(beside.join().unwrap(), Err(BarrierError::Broken));
            assert!(barrier.is_broken());
            assert_eq!(barrier.wait(), Err(BarrierError::Broken));
            barrier.reset();
            go_on.store(1, Ordering::SeqCst);
            let b = barrier.clone();
            assert_eq!(run_parties(2, move |_| b.wait().is_ok()), [true, true]);
        });
    }
}

/// Cancellation breaks it the same way, with the context's error; a deadline reached is
/// `Canceled(DeadlineExceeded)`, and a context already done fails at once.
#[test]
fn cancellation_breaks_the_barrier() {
    within(|| {
        let barrier = Arc::new(Barrier::new(3));
        let waiter = spawn_with(&barrier, |barrier| barrier.wait());
        wait_until(|| barrier.n_waiting() == 1);
        let (ctx, cancel) = Context::background().with_cancel();
        let cancelled = spawn_with(&barrier, move |barrier| barrier.wait_ctx(&ctx));
        wait_until(|| barrier.n_waiting() == 2);
        cancel.cancel();
        assert_eq!(
            cancelled.join().unwrap(),
            Err(BarrierError::Canceled(ContextError::Canceled))
        );
        assert_eq!(waiter.join().unwrap(), Err(BarrierError::Broken));

        barrier.reset();
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
        assert_eq!(
            barrier.wait_ctx(&ctx),
            Err(BarrierError::Canceled(ContextError::DeadlineExceeded))
        );
        barrier.reset();
        let (ctx, cancel) = Context::background().with_cancel();
        cancel.cancel();
        let single = Barrier::new(1);
        assert_eq!(
            single.wait_ctx(&ctx),
            Err(BarrierError::Canceled(ContextError::Canceled))
        );
        assert!(single.is_broken());
        assert!(single.wait_ctx(&Context::background()).is_err());
    });
}

/// `reset` breaks the current waiters and starts a fresh generation; `break_barrier` breaks
/// them and stays broken.
#[test]
fn reset_and_break_wake_the_waiters() {
    within(|| {
        for reset in [true, false] {
            let barrier = Arc::new(Barrier::new(3));
            let b = barrier.clone();
            let waiters = thread::spawn(move || run_parties(2, move |_| b.wait()));
            wait_until(|| barrier.n_waiting() == 2);
            if reset {
                barrier.reset();
            } else {
                barrier.break_barrier();
            }
            let results = waiters.join().unwrap();
            assert_eq!(
                results,
                [Err(BarrierError::Broken), Err(BarrierError::Broken)]
            );
            assert_eq!(barrier.is_broken(), !reset);
            if reset {
                let b = barrier.clone();
                assert_eq!(
                    run_parties(3, move |_| b.wait().unwrap().generation()),
                    [1; 3]
                );
            }
        }
    });
}

/// A panicking action: the panic continues on the leader's thread, the others get `Broken`,
/// the barrier stays broken until `reset`, and works again after it. (Bounded by the parties'
/// own timeouts rather than `within`: a panic is slow under miri.)
#[test]
fn a_panicking_action_breaks_the_barrier() {
    let fail = Arc::new(AtomicUsize::new(1));
    let barrier = {
        let fail = fail.clone();
        Arc::new(Barrier::with_action(3, move || {
            if fail.load(Ordering::SeqCst) == 1 {
                panic!("action failed");
            }
        }))
    };
    let b = barrier.clone();
    let results = run_parties(3, move |_| {
        panic::catch_unwind(AssertUnwindSafe(|| b.wait_for(LIMIT))).map_err(|p| panic_message(&*p))
    });
    let panicked: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert_eq!(panicked, [&Err("action failed".to_owned())]);
    let broken = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(BarrierError::Broken))))
        .count();
    assert_eq!(broken, 2);
    assert!(barrier.is_broken());
    assert_eq!(barrier.wait(), Err(BarrierError::Broken));
    barrier.reset();
    fail.store(0, Ordering::SeqCst);
    let b = barrier.clone();
    let generations = run_parties(3, move |_| b.wait_for(LIMIT).unwrap().generation());
    assert_eq!(generations, [1; 3]);
}

#[test]
fn accessors_debug_and_errors() {
    let barrier = Barrier::new(2);
    assert_eq!(barrier.parties(), 2);
    assert_eq!(barrier.n_waiting(), 0);
    let debug = format!("{barrier:?}");
    assert!(
        debug.contains("parties: 2") && debug.contains("broken: false"),
        "{debug}"
    );
    assert_eq!(BarrierError::TimedOut.to_string(), "barrier wait timed out");
    let error: Box<dyn std::error::Error> =
        Box::new(BarrierError::Canceled(ContextError::Canceled));
    assert_eq!(error.source().unwrap().to_string(), "context canceled");
    assert!(BarrierError::Broken.to_string().contains("broken"));
}

/// 64 parties on few cores, many rounds: every round one leader, one action, one generation.
#[test]
fn hostile_many_parties() {
    within(|| {
        let parties = scaled(64, 4);
        let rounds = scaled(50, 3);
        let actions = Arc::new(AtomicUsize::new(0));
        let barrier = {
            let actions = actions.clone();
            Arc::new(Barrier::with_action(parties, move || {
                actions.fetch_add(1, Ordering::SeqCst);
            }))
        };
        let b = barrier.clone();
        let results = run_parties(parties, move |_| {
            (0..rounds).map(|_| b.wait().unwrap()).collect::<Vec<_>>()
        });
        for round in 0..rounds {
            assert!(results
                .iter()
                .all(|r| r[round].generation() == round as u64));
            assert_eq!(results.iter().filter(|r| r[round].is_leader()).count(), 1);
        }
        assert_eq!(actions.load(Ordering::SeqCst), rounds);
    });
}

/// Timeouts, resets and trips racing, with an action slow enough for timeouts to land while it
/// runs: every generation that tripped was passed by exactly `parties` threads with one
/// leader, the action ran exactly once per tripped generation, and every thread got exactly
/// one outcome per call.
#[test]
fn hostile_timeouts_resets_and_trips() {
    within(|| {
        let parties = 3;
        let threads = scaled(6, 3);
        let attempts = scaled(300, 10);
        let actions = Arc::new(Mutex::new(Vec::new()));
        let barrier = {
            let actions = actions.clone();
            Arc::new(Barrier::with_action(parties, move || {
                for _ in 0..50 {
                    thread::yield_now();
                }
                actions.lock().unwrap().push(());
            }))
        };
        let outcomes = {
            let barrier = barrier.clone();
            run_parties(threads, move |t| {
                let mut mine = Vec::new();
                for i in 0..attempts {
                    let timeout = Duration::from_micros(((t * 7 + i * 13) % 400) as u64);
                    let outcome = barrier.wait_for(timeout);
                    if outcome.is_err() && (t + i) % 3 == 0 {
                        barrier.reset();
                    }
                    mine.push(outcome);
                }
                mine
            })
        };
        let mut passed: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut calls = 0;
        for outcome in outcomes.iter().flatten() {
            calls += 1;
            match outcome {
                Ok(result) => {
                    let entry = passed.entry(result.generation()).or_default();
                    entry.0 += 1;
                    entry.1 += usize::from(result.is_leader());
                }
                Err(BarrierError::Broken | BarrierError::TimedOut) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(calls, threads * attempts);
        for (generation, (count, leaders)) in &passed {
            assert_eq!(*count, parties, "generation {generation}");
            assert_eq!(*leaders, 1, "generation {generation}");
        }
        assert_eq!(actions.lock().unwrap().len(), passed.len());
    });
}
