//! `OnceCell`'s bounded waits: the variants of `get_or_init` and `get_or_try_init` that give
//! up waiting behind another thread's init function. Free at once (an empty cell nobody
//! initialises, or a full one) they succeed even with a zero timeout or a past deadline; a
//! context already done fails at once even then; giving up (a timeout, a cancellation from
//! another thread, also racing the wake-up) hands the function back unrun and leaves the cell to
//! the initialiser. Every function run is counted exactly; every wait is bounded by
//! gosync-testkit.

#![cfg(not(gosync_loom))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_once::OnceCell;
use gosync_testkit::{join_within, scaled, wait_until, within, LIMIT};

/// A thread inside `get_or_try_init` on `cell`, holding the init until released; then its
/// init returns `outcome`. Returns once the thread is inside.
fn hold_init(
    cell: &Arc<OnceCell<u32>>,
    outcome: Result<u32, ()>,
) -> (mpsc::Sender<()>, thread::JoinHandle<Result<u32, ()>>) {
    let (inside_tx, inside) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let runner = {
        let cell = Arc::clone(cell);
        thread::spawn(move || {
            cell.get_or_try_init(|| {
                inside_tx.send(()).unwrap();
                released.recv_timeout(LIMIT).expect("released in time");
                outcome
            })
            .copied()
        })
    };
    inside
        .recv_timeout(LIMIT)
        .expect("the runner started its init");
    (release, runner)
}

/// An init function that counts its runs and returns `value`.
fn counted(runs: &Arc<AtomicUsize>, value: u32) -> impl FnOnce() -> u32 + Send + 'static {
    let runs = Arc::clone(runs);
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        value
    }
}

fn cancelled() -> Context {
    let (ctx, cancel) = Context::background().with_cancel();
    cancel.cancel();
    ctx
}

#[test]
fn each_variant_runs_its_function_at_once_when_nobody_initialises() {
    let runs = Arc::new(AtomicUsize::new(0));
    let past = Instant::now() - Duration::from_millis(1);
    let cells: Vec<OnceCell<u32>> = (0..8).map(|_| OnceCell::new()).collect();
    assert_eq!(cells[0].try_get_or_init(counted(&runs, 1)).ok(), Some(&1));
    let zero = Duration::ZERO;
    assert_eq!(
        cells[1].try_get_or_init_for(zero, counted(&runs, 2)).ok(),
        Some(&2)
    );
    assert_eq!(
        cells[2].try_get_or_init_until(past, counted(&runs, 3)).ok(),
        Some(&3)
    );
    let live = Context::background();
    assert_eq!(
        cells[3].get_or_init_ctx(&live, counted(&runs, 4)).ok(),
        Some(&4)
    );
    let ok = |value: u32| Ok::<u32, ()>(value);
    assert_eq!(cells[4].try_get_or_try_init(|| ok(5)).ok(), Some(Ok(&5)));
    let result = cells[5].try_get_or_try_init_for(zero, || ok(6));
    assert_eq!(result.ok(), Some(Ok(&6)));
    let result = cells[6].try_get_or_try_init_until(past, || ok(7));
    assert_eq!(result.ok(), Some(Ok(&7)));
    assert_eq!(
        cells[7].get_or_try_init_ctx(&live, || ok(8)).ok(),
        Some(Ok(&8))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);

    // Full: every variant returns the value without running its function.
    assert_eq!(cells[0].try_get_or_init(counted(&runs, 9)).ok(), Some(&1));
    assert_eq!(
        cells[1].try_get_or_init_until(past, counted(&runs, 9)).ok(),
        Some(&2)
    );
    let result = cells[4].try_get_or_try_init(|| Err::<u32, _>("unused"));
    assert_eq!(result.ok(), Some(Ok(&5)));
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[test]
fn a_fallible_variant_that_fails_leaves_the_cell_empty() {
    let cell = OnceCell::<u32>::new();
    let result = cell.try_get_or_try_init_for(LIMIT, || Err("bad"));
    assert_eq!(result.ok(), Some(Err("bad")));
    assert_eq!(cell.get(), None);
    let result = cell.get_or_try_init_ctx(&Context::background(), || Err("worse"));
    assert_eq!(result.ok(), Some(Err("worse")));
    assert_eq!(cell.get(), None);
    assert_eq!(
        cell.try_get_or_try_init(|| Ok::<_, ()>(1)).ok(),
        Some(Ok(&1))
    );
}

#[test]
fn a_done_context_fails_at_once_even_when_the_cell_is_free_or_full() {
    let runs = Arc::new(AtomicUsize::new(0));
    let cell = OnceCell::new();
    let (f, err) = cell
        .get_or_init_ctx(&cancelled(), counted(&runs, 1))
        .unwrap_err();
    assert_eq!(err, ContextError::Canceled);
    assert_eq!(cell.get(), None);
    let (expired, _cancel) = Context::background().with_deadline(Instant::now());
    let (_, err) = cell
        .get_or_try_init_ctx(&expired, || Ok::<_, ()>(2))
        .unwrap_err();
    assert_eq!(err, ContextError::DeadlineExceeded);
    // The function given back is whole: it runs now.
    assert_eq!(*cell.get_or_init(f), 1);
    let (_, err) = cell
        .get_or_init_ctx(&cancelled(), counted(&runs, 3))
        .unwrap_err();
    assert_eq!(err, ContextError::Canceled, "the cancellation came first");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn behind_a_running_init_the_variants_give_their_function_back() {
    within(|| {
        let cell = Arc::new(OnceCell::new());
        let (release, runner) = hold_init(&cell, Ok(10));
        let runs = Arc::new(AtomicUsize::new(0));
        let past = Instant::now();
        assert!(cell.try_get_or_init(counted(&runs, 1)).is_err());
        assert!(cell
            .try_get_or_init_for(Duration::ZERO, counted(&runs, 2))
            .is_err());
        let short = Duration::from_millis(2);
        assert!(cell.try_get_or_init_for(short, counted(&runs, 3)).is_err());
        assert!(cell.try_get_or_init_until(past, counted(&runs, 4)).is_err());
        let soon = Instant::now() + short;
        assert!(cell.try_get_or_init_until(soon, counted(&runs, 5)).is_err());
        let ok = || Ok::<u32, ()>(6);
        assert!(cell.try_get_or_try_init(ok).is_err());
        assert!(cell.try_get_or_try_init_for(short, ok).is_err());
        assert!(cell.try_get_or_try_init_until(soon, ok).is_err());
        let (ctx, _cancel) = Context::background().with_timeout(short);
        let (_, err) = cell.get_or_init_ctx(&ctx, counted(&runs, 7)).unwrap_err();
        assert_eq!(err, ContextError::DeadlineExceeded);
        let (ctx, _cancel) = Context::background().with_timeout(short);
        let (_, err) = cell.get_or_try_init_ctx(&ctx, ok).unwrap_err();
        assert_eq!(err, ContextError::DeadlineExceeded);
        assert_eq!(format!("{cell:?}"), "OnceCell(<uninit>)");
        release.send(()).unwrap();
        assert_eq!(join_within(runner), Ok(10));
        assert_eq!(cell.get(), Some(&10));
        assert_eq!(runs.load(Ordering::SeqCst), 0, "no function given back ran");
    });
}

#[test]
fn a_waiter_is_woken_by_the_init_and_gets_its_value() {
    within(|| {
        for kind in 0..4 {
            let cell = Arc::new(OnceCell::new());
            let (release, runner) = hold_init(&cell, Ok(20));
            let runs = Arc::new(AtomicUsize::new(0));
            let waiter = {
                let (cell, f) = (Arc::clone(&cell), counted(&runs, 21));
                thread::spawn(move || {
                    let value = match kind {
                        0 => cell.try_get_or_init_for(LIMIT, f).ok(),
                        1 => cell.try_get_or_init_until(Instant::now() + LIMIT, f).ok(),
                        2 => cell.get_or_init_ctx(&Context::background(), f).ok(),
                        _ => cell
                            .try_get_or_try_init_for(LIMIT, || Ok::<_, ()>(f()))
                            .ok()
                            .map(Result::unwrap),
                    };
                    value.copied()
                })
            };
            wait_until(|| cell.has_sleepers()); // asleep, not on the early return
            release.send(()).unwrap();
            assert_eq!(join_within(runner), Ok(20));
            assert_eq!(join_within(waiter), Some(20), "variant {kind}");
            assert_eq!(runs.load(Ordering::SeqCst), 0);
        }
    });
}

#[test]
fn a_waiter_runs_its_own_function_after_the_init_fails() {
    within(|| {
        let cell = Arc::new(OnceCell::new());
        let (release, runner) = hold_init(&cell, Err(()));
        let runs = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (cell, f) = (Arc::clone(&cell), counted(&runs, 30));
            thread::spawn(move || cell.try_get_or_init_for(LIMIT, f).ok().copied())
        };
        wait_until(|| cell.has_sleepers()); // asleep, not on the early return
        release.send(()).unwrap();
        assert_eq!(join_within(runner), Err(()));
        assert_eq!(join_within(waiter), Some(30));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

#[test]
fn a_waiter_cancelled_from_another_thread_gives_its_function_back() {
    within(|| {
        let cell = Arc::new(OnceCell::new());
        let (release, runner) = hold_init(&cell, Ok(40));
        let runs = Arc::new(AtomicUsize::new(0));
        let (ctx, cancel) = Context::background().with_cancel();
        let waiter = {
            let (cell, f) = (Arc::clone(&cell), counted(&runs, 41));
            thread::spawn(move || cell.get_or_init_ctx(&ctx, f).copied().map_err(|(_, e)| e))
        };
        wait_until(|| cell.has_sleepers()); // asleep, not on the early return
        cancel.cancel();
        assert_eq!(join_within(waiter), Err(ContextError::Canceled));
        // The init goes on undisturbed, and later callers get its value.
        release.send(()).unwrap();
        assert_eq!(join_within(runner), Ok(40));
        assert_eq!(cell.try_get_or_init(counted(&runs, 42)).ok(), Some(&40));
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_timeout_racing_the_init_never_runs_the_function_and_never_loses_the_value() {
    within(|| {
        let runs = Arc::new(AtomicUsize::new(0));
        let (mut woken, mut gave_up) = (0, 0);
        let rounds = scaled(200, 10);
        for round in 0..rounds {
            let cell = Arc::new(OnceCell::new());
            let (release, runner) = hold_init(&cell, Ok(50));
            let waiter = {
                let (cell, f) = (Arc::clone(&cell), counted(&runs, 51));
                thread::spawn(move || {
                    let timeout = Duration::from_micros(10 + round as u64 % 40);
                    cell.try_get_or_init_for(timeout, f).ok().copied()
                })
            };
            release.send(()).unwrap();
            assert_eq!(join_within(runner), Ok(50));
            match join_within(waiter) {
                Some(value) => {
                    assert_eq!(value, 50);
                    woken += 1;
                }
                None => gave_up += 1,
            }
            assert_eq!(cell.get(), Some(&50));
        }
        assert_eq!(woken + gave_up, rounds);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn many_waiters_giving_up_and_waiting_around_one_init() {
    within(|| {
        let cell = Arc::new(OnceCell::new());
        let (release, runner) = hold_init(&cell, Ok(60));
        let runs = Arc::new(AtomicUsize::new(0));
        let threads = scaled(32, 4);
        let (ctx, cancel) = Context::background().with_cancel();
        let waiters: Vec<_> = (0..threads)
            .map(|i| {
                let (cell, f, ctx) = (Arc::clone(&cell), counted(&runs, 61), ctx.clone());
                thread::spawn(move || match i % 4 {
                    0 => cell
                        .try_get_or_init_for(Duration::from_micros(50), f)
                        .ok()
                        .copied(),
                    1 => cell.get_or_init_ctx(&ctx, f).ok().copied(),
                    2 => cell.try_get_or_init_for(LIMIT, f).ok().copied(),
                    _ => Some(*cell.get_or_init(f)),
                })
            })
            .collect();
        cancel.cancel();
        release.send(()).unwrap();
        assert_eq!(join_within(runner), Ok(60));
        for (i, waiter) in waiters.into_iter().enumerate() {
            let value = join_within(waiter);
            assert!(
                value.is_none() || value == Some(60),
                "waiter {i}: {value:?}"
            );
            if i % 4 >= 2 {
                assert_eq!(value, Some(60), "waiter {i} waits as long as it takes");
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    });
}
