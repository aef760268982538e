//! The bounded forms of `Map::load_or_store_with`: `try_load_or_store_with` (never waits),
//! `try_load_or_store_with_for` / `_until` (give up at a deadline) and `load_or_store_with_ctx`
//! (gives up when a context is done). A caller that gives up gets its key and its unrun `f` back
//! and leaves the running `f` and its other waiters as they were; the registry of running
//! computations (seen through the `waiters_for` test hook) keeps nothing of it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use gosync_context::{Context, ContextError};
use gosync_map::Map;
use gosync_testkit::{
    join_within, panic_message, scaled, short_panics_under_miri, wait_until, within,
};

type IntMap = Map<u64, u64>;

/// A deadline no test reaches: a bounded wait that must not give up.
const LONG: Duration = Duration::from_secs(3600);

/// An `f` that counts its runs in `runs` and returns `value`.
fn counted(runs: &Arc<AtomicUsize>, value: u64) -> impl FnOnce() -> u64 + Send + 'static {
    let runs = Arc::clone(runs);
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        value
    }
}

/// A thread running the `f` of `key` until released; `f` then returns `value`, or panics.
struct Holder {
    release: Arc<AtomicBool>,
    handle: JoinHandle<(u64, bool)>,
}

impl Holder {
    /// Starts the computation of `key` and returns once its `f` is running.
    fn start(m: &Arc<IntMap>, key: u64, value: u64, panics: bool) -> Self {
        let started = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let handle = {
            let (m, started, release) = (Arc::clone(m), Arc::clone(&started), Arc::clone(&release));
            thread::spawn(move || {
                m.load_or_store_with(key, || {
                    started.store(true, Ordering::SeqCst);
                    wait_until(|| release.load(Ordering::SeqCst));
                    assert!(!panics, "f failed");
                    value
                })
            })
        };
        wait_until(|| started.load(Ordering::SeqCst));
        Self { release, handle }
    }

    fn release(&self) {
        self.release.store(true, Ordering::SeqCst);
    }

    fn finish(self) -> (u64, bool) {
        self.release();
        join_within(self.handle)
    }
}

#[test]
fn free_at_once_even_with_a_zero_timeout_or_a_past_deadline() {
    let m = IntMap::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let past = Instant::now();
    let background = Context::background();
    assert_eq!(
        m.try_load_or_store_with(1, counted(&runs, 10)).ok(),
        Some((10, false))
    );
    assert_eq!(
        m.try_load_or_store_with_for(2, Duration::ZERO, counted(&runs, 20))
            .ok(),
        Some((20, false))
    );
    assert_eq!(
        m.try_load_or_store_with_until(3, past, counted(&runs, 30))
            .ok(),
        Some((30, false))
    );
    assert_eq!(
        m.load_or_store_with_ctx(&background, 4, counted(&runs, 40))
            .ok(),
        Some((40, false))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    // Present keys load without running f.
    assert_eq!(
        m.try_load_or_store_with(4, counted(&runs, 0)).ok(),
        Some((40, true))
    );
    assert_eq!(
        m.try_load_or_store_with_for(3, Duration::ZERO, counted(&runs, 0))
            .ok(),
        Some((30, true))
    );
    assert_eq!(
        m.try_load_or_store_with_until(2, past, counted(&runs, 0))
            .ok(),
        Some((20, true))
    );
    assert_eq!(
        m.load_or_store_with_ctx(&background, 1, counted(&runs, 0))
            .ok(),
        Some((10, true))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(m.len(), 4);
    assert_eq!(m.waiters_for(&1), None);
}

#[test]
fn a_done_context_fails_at_once_even_when_the_key_is_present() {
    let m = IntMap::new();
    m.store(1, 10);
    let runs = Arc::new(AtomicUsize::new(0));
    let (cancelled, cancel) = Context::background().with_cancel();
    cancel.cancel();
    let (expired, _cancel) = Context::background().with_timeout(Duration::ZERO);
    for (ctx, error) in [
        (&cancelled, ContextError::Canceled),
        (&expired, ContextError::DeadlineExceeded),
    ] {
        let (key, f, err) = m
            .load_or_store_with_ctx(ctx, 1, counted(&runs, 11))
            .unwrap_err();
        assert_eq!((key, err), (1, error));
        let (key, f2, err) = m
            .load_or_store_with_ctx(ctx, 2, counted(&runs, 22))
            .unwrap_err();
        assert_eq!((key, err), (2, error));
        assert_eq!(runs.load(Ordering::SeqCst), 0, "f came back unrun");
        // What comes back is the caller's own function.
        assert_eq!((f(), f2()), (11, 22));
        runs.store(0, Ordering::SeqCst);
    }
    assert_eq!(m.load(&1), Some(10));
    assert_eq!(m.len(), 1);
}

#[test]
fn the_try_forms_give_up_at_once_while_another_f_runs() {
    within(|| {
        let m = Arc::new(IntMap::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let holder = Holder::start(&m, 1, 7, false);
        let (key, f) = m.try_load_or_store_with(1, counted(&runs, 1)).unwrap_err();
        assert_eq!(key, 1);
        assert_eq!(m.waiters_for(&1), Some(0));
        let (key, _) = m
            .try_load_or_store_with_for(1, Duration::ZERO, counted(&runs, 2))
            .unwrap_err();
        assert_eq!(key, 1);
        let (key, _) = m
            .try_load_or_store_with_until(1, Instant::now(), counted(&runs, 3))
            .unwrap_err();
        assert_eq!(key, 1);
        assert_eq!(m.waiters_for(&1), Some(0));
        // Other keys are not held up.
        assert_eq!(
            m.try_load_or_store_with(2, counted(&runs, 20)).ok(),
            Some((20, false))
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(holder.finish(), (7, false));
        assert_eq!(m.waiters_for(&1), None);
        assert_eq!(m.try_load_or_store_with(1, f).ok(), Some((7, true)));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(m.len(), 2);
    });
}

#[test]
fn a_waiter_that_times_out_leaves_f_and_the_other_waiters_alone() {
    within(|| {
        let m = Arc::new(IntMap::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let holder = Holder::start(&m, 1, 7, false);
        let patient = {
            let (m, f) = (Arc::clone(&m), counted(&runs, 100));
            thread::spawn(move || m.load_or_store_with(1, f))
        };
        wait_until(|| m.waiters_for(&1) == Some(1));
        let timeout = Duration::from_millis(20);
        let timed = {
            let (m, f) = (Arc::clone(&m), counted(&runs, 200));
            thread::spawn(move || {
                let start = Instant::now();
                let result = m.try_load_or_store_with_for(1, timeout, f);
                (result, start.elapsed())
            })
        };
        let until = {
            let (m, f) = (Arc::clone(&m), counted(&runs, 300));
            thread::spawn(move || {
                let deadline = Instant::now() + timeout;
                (m.try_load_or_store_with_until(1, deadline, f), deadline)
            })
        };
        let (result, waited) = join_within(timed);
        let (key, f) = result.unwrap_err();
        assert_eq!(key, 1);
        assert!(
            waited >= timeout,
            "gave up after {waited:?}, before its timeout"
        );
        let (result, deadline) = join_within(until);
        let (key, g) = result.unwrap_err();
        assert_eq!(key, 1);
        assert!(Instant::now() >= deadline);
        // The computation and the patient waiter are untouched.
        assert_eq!(m.waiters_for(&1), Some(1));
        assert!(!holder.handle.is_finished() && !patient.is_finished());
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!(holder.finish(), (7, false));
        assert_eq!(join_within(patient), (7, true));
        assert_eq!(m.waiters_for(&1), None);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!((f(), g()), (200, 300));
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn a_cancelled_waiter_leaves_f_and_the_other_waiters_alone() {
    within(|| {
        let m = Arc::new(IntMap::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let holder = Holder::start(&m, 1, 7, false);
        let ctx_waiter = |ctx: Context, value| {
            let (m, f) = (Arc::clone(&m), counted(&runs, value));
            thread::spawn(move || m.load_or_store_with_ctx(&ctx, 1, f))
        };
        // The only waiter gives up: nothing of it stays behind.
        let (ctx, cancel) = Context::background().with_cancel();
        let lone = ctx_waiter(ctx, 100);
        wait_until(|| m.waiters_for(&1) == Some(1));
        cancel.cancel();
        let (key, f, err) = join_within(lone).unwrap_err();
        assert_eq!((key, err), (1, ContextError::Canceled));
        assert_eq!(m.waiters_for(&1), Some(0));
        // Beside a waiter that does not give up: one cancelled, one whose deadline passes.
        let patient = {
            let (m, f) = (Arc::clone(&m), counted(&runs, 200));
            thread::spawn(move || m.load_or_store_with(1, f))
        };
        let (ctx, cancel) = Context::background().with_cancel();
        let cancelled = ctx_waiter(ctx, 300);
        let (ctx, _cancel) = Context::background().with_timeout(Duration::from_millis(20));
        let expiring = ctx_waiter(ctx, 400);
        wait_until(|| m.waiters_for(&1) == Some(3) || expiring.is_finished());
        cancel.cancel();
        let (key, g, err) = join_within(cancelled).unwrap_err();
        assert_eq!((key, err), (1, ContextError::Canceled));
        let (key, h, err) = join_within(expiring).unwrap_err();
        assert_eq!((key, err), (1, ContextError::DeadlineExceeded));
        assert_eq!(m.waiters_for(&1), Some(1));
        assert!(!holder.handle.is_finished() && !patient.is_finished());
        assert_eq!(holder.finish(), (7, false));
        assert_eq!(join_within(patient), (7, true));
        assert_eq!(m.waiters_for(&1), None);
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert_eq!((f(), g(), h()), (100, 300, 400));
    });
}

/// How a bounded waiter racing the end of `f` came out.
#[derive(Default)]
struct Outcomes {
    loaded: usize,
    gave_up: usize,
}

impl Outcomes {
    fn count(&mut self, key: u64, value: u64, result: Result<(u64, bool), u64>) {
        match result {
            Ok(got) => {
                assert_eq!(got, (value, true));
                self.loaded += 1;
            }
            Err(given_back) => {
                assert_eq!(given_back, key);
                self.gave_up += 1;
            }
        }
    }
}

#[test]
fn timeouts_and_cancellations_racing_the_end_of_f() {
    within(|| {
        let rounds = scaled(300, 6) as u64;
        let runs = Arc::new(AtomicUsize::new(0));
        let mut timed = Outcomes::default();
        let mut cancelled = Outcomes::default();
        for round in 0..rounds {
            let m = Arc::new(IntMap::new());
            let value = round * 10;
            let holder = Holder::start(&m, round, value, false);
            let (ctx, cancel) = Context::background().with_cancel();
            let timed_waiter = {
                let (m, f) = (Arc::clone(&m), counted(&runs, 1));
                let timeout = Duration::from_micros(round % 64 * 8);
                thread::spawn(move || {
                    m.try_load_or_store_with_for(round, timeout, f)
                        .map_err(|(k, _)| k)
                })
            };
            let ctx_waiter = {
                let (m, f) = (Arc::clone(&m), counted(&runs, 2));
                thread::spawn(move || {
                    m.load_or_store_with_ctx(&ctx, round, f)
                        .map_err(|(k, _, _)| k)
                })
            };
            // Both waiting (or the timed one gone already), then the wake and the cancellation
            // land together, in either order.
            wait_until(|| match m.waiters_for(&round) {
                Some(2) => true,
                Some(1) => timed_waiter.is_finished(),
                _ => false,
            });
            if round % 2 == 0 {
                holder.release();
                cancel.cancel();
            } else {
                cancel.cancel();
                holder.release();
            }
            timed.count(round, value, join_within(timed_waiter));
            cancelled.count(round, value, join_within(ctx_waiter));
            assert_eq!(join_within(holder.handle), (value, false));
            assert_eq!(m.waiters_for(&round), None);
            assert_eq!(m.load(&round), Some(value));
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            0,
            "a waiter ran its f beside a running one"
        );
        assert_eq!(timed.loaded + timed.gave_up, rounds as usize);
        assert_eq!(cancelled.loaded + cancelled.gave_up, rounds as usize);
        eprintln!(
            "timed: {} loaded, {} gave up; cancelled: {} loaded, {} gave up",
            timed.loaded, timed.gave_up, cancelled.loaded, cancelled.gave_up
        );
    });
}

#[test]
fn bounded_waiters_retry_when_f_panics() {
    short_panics_under_miri();
    within(|| {
        let m = Arc::new(IntMap::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let holder = Holder::start(&m, 1, 0, true);
        let (ctx, _cancel) = Context::background().with_cancel();
        let waiters: Vec<JoinHandle<Result<(u64, bool), u64>>> = vec![
            {
                let (m, f) = (Arc::clone(&m), counted(&runs, 10));
                thread::spawn(move || m.try_load_or_store_with_for(1, LONG, f).map_err(|(k, _)| k))
            },
            {
                let (m, f) = (Arc::clone(&m), counted(&runs, 20));
                let deadline = Instant::now() + LONG;
                thread::spawn(move || {
                    m.try_load_or_store_with_until(1, deadline, f)
                        .map_err(|(k, _)| k)
                })
            },
            {
                let (m, f) = (Arc::clone(&m), counted(&runs, 30));
                thread::spawn(move || m.load_or_store_with_ctx(&ctx, 1, f).map_err(|(k, _, _)| k))
            },
        ];
        wait_until(|| m.waiters_for(&1) == Some(3));
        // One whose deadline passes about when `f` panics: it gives up, runs its own f, or loads.
        let hasty = {
            let (m, f) = (Arc::clone(&m), counted(&runs, 40));
            thread::spawn(move || {
                m.try_load_or_store_with_for(1, Duration::from_micros(50), f)
                    .map_err(|(k, _)| k)
            })
        };
        holder.release();
        let caught = holder.handle.join().unwrap_err();
        assert_eq!(panic_message(&*caught), "f failed");
        let results: Vec<_> = waiters.into_iter().map(join_within).collect();
        let hasty = join_within(hasty);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one waiter ran its own f");
        let (winner, _) = *results
            .iter()
            .chain([&hasty])
            .flatten()
            .find(|(_, loaded)| !loaded)
            .expect("a waiter stored its value");
        assert!(
            results.iter().all(|r| r.is_ok()),
            "a waiter without a deadline gave up"
        );
        assert!(results
            .iter()
            .chain([&hasty])
            .flatten()
            .all(|&(v, _)| v == winner));
        assert_eq!(
            results
                .iter()
                .chain([&hasty])
                .flatten()
                .filter(|(_, l)| !l)
                .count(),
            1
        );
        assert_eq!(m.load(&1), Some(winner));
        assert_eq!(m.waiters_for(&1), None);
        assert_eq!(m.len(), 1);
    });
}

#[test]
fn many_bounded_and_unbounded_callers_run_f_once_per_insertion() {
    within(|| {
        let threads = scaled(64, 5);
        for round in 0..scaled(20, 1) as u64 {
            let m = Arc::new(IntMap::new());
            let runs = Arc::new(AtomicUsize::new(0));
            let barrier = Arc::new(Barrier::new(threads + 1));
            let (ctx, cancel) = Context::background().with_cancel();
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let (m, barrier, ctx) = (Arc::clone(&m), Arc::clone(&barrier), ctx.clone());
                    let runs = Arc::clone(&runs);
                    thread::spawn(move || {
                        let f = move || {
                            runs.fetch_add(1, Ordering::SeqCst);
                            thread::yield_now();
                            t
                        };
                        barrier.wait();
                        let short = Duration::from_micros(t * 7 % 100);
                        let result = match t % 5 {
                            0 => Ok(m.load_or_store_with(round, f)),
                            1 => m.try_load_or_store_with(round, f).map_err(|(k, _)| k),
                            2 => m
                                .try_load_or_store_with_for(round, short, f)
                                .map_err(|(k, _)| k),
                            3 => m
                                .try_load_or_store_with_until(round, Instant::now() + short, f)
                                .map_err(|(k, _)| k),
                            _ => m
                                .load_or_store_with_ctx(&ctx, round, f)
                                .map_err(|(k, _, _)| k),
                        };
                        (t, result)
                    })
                })
                .collect();
            barrier.wait();
            cancel.cancel();
            let results: Vec<_> = handles.into_iter().map(join_within).collect();
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            let stored = m.load(&round).expect("the key was stored");
            let mut inserted = 0;
            for (t, result) in results {
                match result {
                    Ok((value, loaded)) => {
                        assert_eq!(value, stored);
                        if !loaded {
                            assert_eq!(t, stored);
                            inserted += 1;
                        }
                    }
                    Err(key) => {
                        assert_ne!(t % 5, 0, "an unbounded caller gave up");
                        assert_eq!(key, round);
                    }
                }
            }
            assert_eq!(inserted, 1);
            assert_eq!(m.waiters_for(&round), None);
            assert_eq!(m.len(), 1);
        }
    });
}
