//! Stress of timed and context waits nobody (or only sometimes somebody) signals: every wait
//! must wake by itself near its deadline, never early and never much later.
//!
//! Many threads loop short waits (0–3 ms) on their own `Mutex`+`Cond` and on shared ones:
//! `wait_for`, `wait_until`, `wait_while_for`, `wait_ctx` with a context that times out, or
//! that a canceller thread cancels as its timeout comes, plus `Mutex::try_lock_for`,
//! `Mutex::lock_ctx` against a lock held for a moment, `Context::wait_for`,
//! `WaitGroup::wait_for` and `wait_ctx` on a group that never finishes, and
//! `Semaphore::try_acquire_for` and `acquire_ctx` against permits held for a moment, with an
//! occasional `signal` or `broadcast` between them. Each wait is timed: a timed-out wait must
//! not return before its deadline, and no wait may return more than [`OVERSHOOT`] after it (a
//! waiter whose wake-up was lost would sleep forever). The whole test runs under `within`, so
//! a hang fails it instead of hanging the suite.
//!
//! `GOSYNC_STRESS_ROUNDS` raises the rounds per thread for long runs by hand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync_cond::Cond;
use gosync_context::{Canceler, Context};
use gosync_mutex::Mutex;
use gosync_semaphore::Semaphore;
use gosync_testkit::{join_within, scaled, within};
use gosync_waitgroup::WaitGroup;

/// Threads doing timed waits at once.
const THREADS: usize = scaled(32, 4);
/// How late a wait may wake: far beyond scheduling delay on a busy machine, far below a hang
/// (miri interprets slowly enough to make any wait late by seconds).
const OVERSHOOT: Duration = Duration::from_secs(if cfg!(miri) { 120 } else { 5 });

/// A mutex and a condition variable, shared.
type Pair = Arc<(Mutex<u64>, Cond)>;

fn pair() -> Pair {
    Arc::new((Mutex::new(0), Cond::new()))
}

/// A small per-thread xorshift: the test needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    /// A timeout of 0 to 3 ms, in steps of 250 µs.
    fn timeout(&mut self) -> Duration {
        Duration::from_micros(250 * self.below(13))
    }
}

/// Checks one wait that started with `deadline` ahead and returned at `end`: `timed_out` says
/// whether it gave up. Records the lateness in `latest` (nanoseconds).
#[track_caller]
fn check(what: &str, deadline: Instant, timed_out: bool, latest: &AtomicU64) {
    let end = Instant::now();
    assert!(
        !timed_out || end >= deadline,
        "{what}: timed out {:?} before its deadline",
        deadline - end
    );
    let late = end.saturating_duration_since(deadline);
    assert!(late < OVERSHOOT, "{what}: woke {late:?} after its deadline");
    let nanos = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
    latest.fetch_max(nanos, Ordering::Relaxed);
}

/// What the threads of the test share.
struct Shared {
    /// A `Cond` and its mutex that every thread waits on now and then.
    pair: Pair,
    /// A lock held for a moment now and then, which timed locks give up on.
    held: Mutex<()>,
    /// A group whose counter stays 1: its waits can only give up.
    unfinished: WaitGroup,
    /// Two permits, one of them held for a moment now and then.
    permits: Semaphore,
    /// Rounds per thread.
    rounds: usize,
    /// The latest wake seen, in nanoseconds after its deadline.
    latest: AtomicU64,
}

/// One thread's rounds of waits.
fn waiter(id: u64, shared: &Shared, cancels: &mpsc::Sender<(Instant, Canceler)>) {
    let Shared {
        held,
        unfinished,
        permits,
        latest,
        ..
    } = shared;
    let own = pair();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
    for _ in 0..shared.rounds {
        let timeout = rng.timeout();
        let target = if rng.below(3) == 0 {
            &shared.pair
        } else {
            &own
        };
        let (mutex, cond) = &**target;
        match rng.below(12) {
            0 => {
                let mut guard = mutex.lock();
                let deadline = Instant::now() + timeout;
                let result = cond.wait_for(&mut guard, timeout);
                check("wait_for", deadline, result.timed_out(), latest);
            }
            1 => {
                let mut guard = mutex.lock();
                let deadline = Instant::now() + timeout;
                let result = cond.wait_until(&mut guard, deadline);
                check("wait_until", deadline, result.timed_out(), latest);
            }
            2 => {
                let mut guard = mutex.lock();
                let deadline = Instant::now() + timeout;
                // Nobody makes the condition false: it can only time out.
                let result = cond.wait_while_for(&mut guard, timeout, |_| true);
                check("wait_while_for", deadline, result.timed_out(), latest);
                assert!(
                    result.timed_out(),
                    "wait_while_for: the condition never changed"
                );
            }
            3 => {
                let mut guard = mutex.lock();
                let (ctx, _cancel) = Context::background().with_timeout(timeout);
                let deadline = ctx
                    .deadline()
                    .expect("a timeout this short is representable");
                let result = cond.wait_ctx(&mut guard, &ctx);
                check("wait_ctx (timeout)", deadline, result.is_err(), latest);
            }
            4 => {
                // Cancelled by another thread as its own timeout comes: both wake it at once.
                let mut guard = mutex.lock();
                let (ctx, cancel) = Context::background().with_timeout(timeout);
                let deadline = ctx
                    .deadline()
                    .expect("a timeout this short is representable");
                cancels
                    .send((deadline, cancel))
                    .expect("the canceller runs");
                let result = cond.wait_ctx(&mut guard, &ctx);
                if result.is_err() {
                    assert!(ctx.is_done(), "wait_ctx failed with its context not done");
                }
                // Cancelled early is fine; late is not.
                check("wait_ctx (cancelled)", deadline, false, latest);
            }
            5 => {
                let deadline = Instant::now() + timeout;
                let guard = held.try_lock_for(timeout);
                check("try_lock_for", deadline, guard.is_none(), latest);
            }
            6 => {
                let (ctx, _cancel) = Context::background().with_timeout(timeout);
                let deadline = ctx
                    .deadline()
                    .expect("a timeout this short is representable");
                let guard = held.lock_ctx(&ctx);
                check("lock_ctx", deadline, guard.is_err(), latest);
            }
            7 => {
                let (ctx, _cancel) = Context::background().with_timeout(3 * timeout);
                let deadline = Instant::now() + timeout;
                let done = ctx.wait_for(timeout);
                check("Context::wait_for", deadline, !done, latest);
            }
            8 => {
                let deadline = Instant::now() + timeout;
                let done = unfinished.wait_for(timeout);
                check("WaitGroup::wait_for", deadline, !done, latest);
                assert!(!done, "the group never finishes");
            }
            9 => {
                let (ctx, _cancel) = Context::background().with_timeout(timeout);
                let deadline = ctx
                    .deadline()
                    .expect("a timeout this short is representable");
                let result = unfinished.wait_ctx(&ctx);
                check("WaitGroup::wait_ctx", deadline, result.is_err(), latest);
                assert!(result.is_err(), "the group never finishes");
            }
            10 => {
                let deadline = Instant::now() + timeout;
                if rng.below(2) == 0 {
                    let acquired = permits.try_acquire_for(2, timeout);
                    check("Semaphore::try_acquire_for", deadline, !acquired, latest);
                    if acquired {
                        permits.release(2);
                    }
                } else {
                    let (ctx, _cancel) = Context::background().with_timeout(timeout);
                    let deadline = ctx
                        .deadline()
                        .expect("a timeout this short is representable");
                    let result = permits.acquire_ctx(&ctx, 2);
                    check("Semaphore::acquire_ctx", deadline, result.is_err(), latest);
                    if result.is_ok() {
                        permits.release(2);
                    }
                }
            }
            _ => {
                // The occasional wake, and a moment holding what others time out on.
                let guard = held.lock();
                let permit = permits.try_acquire(1);
                if rng.below(2) == 0 {
                    shared.pair.1.signal();
                } else {
                    shared.pair.1.broadcast();
                }
                thread::yield_now();
                if permit {
                    permits.release(1);
                }
                drop(guard);
            }
        }
    }
}

/// Cancels each context it receives once that context's deadline has come, so that the
/// cancellation and the timeout race.
fn canceller(cancels: &mpsc::Receiver<(Instant, Canceler)>) {
    while let Ok((deadline, cancel)) = cancels.recv() {
        while Instant::now() < deadline {
            thread::yield_now();
        }
        cancel.cancel();
    }
}

#[test]
fn timed_waits_wake_near_their_deadlines() {
    let rounds = std::env::var("GOSYNC_STRESS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(scaled(20, 2));
    let latest = within(move || {
        let unfinished = WaitGroup::new();
        unfinished.add(1);
        let shared = Arc::new(Shared {
            pair: pair(),
            held: Mutex::new(()),
            unfinished,
            permits: Semaphore::new(2),
            rounds,
            latest: AtomicU64::new(0),
        });
        let (cancels, received) = mpsc::channel();
        let canceller = thread::spawn(move || canceller(&received));
        let waiters: Vec<_> = (0..THREADS as u64)
            .map(|id| {
                let (shared, cancels) = (Arc::clone(&shared), cancels.clone());
                thread::spawn(move || waiter(id, &shared, &cancels))
            })
            .collect();
        drop(cancels);
        for waiter in waiters {
            join_within(waiter);
        }
        join_within(canceller);
        shared.unfinished.done();
        assert_eq!(shared.permits.available(), 2, "every permit was given back");
        Duration::from_nanos(shared.latest.load(Ordering::Relaxed))
    });
    eprintln!("{THREADS} threads x {rounds} rounds: latest wake {latest:?} after its deadline");
}

/// The reported shape: one thread, nobody signalling, a 2 ms `wait_until` then a `wait_ctx`
/// on a context with a 2 ms timeout, over and over, each timed against its deadline.
#[test]
fn a_lone_waiter_times_out_every_time() {
    let rounds = std::env::var("GOSYNC_STRESS_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(scaled(10, 2));
    let latest = within(move || {
        let latest = AtomicU64::new(0);
        let (mutex, cond) = (Mutex::new(()), Cond::new());
        let mut guard = mutex.lock();
        let two_ms = Duration::from_millis(2);
        for _ in 0..rounds {
            let deadline = Instant::now() + two_ms;
            let result = cond.wait_until(&mut guard, deadline);
            check("wait_until", deadline, result.timed_out(), &latest);
            assert!(result.timed_out(), "nobody signals");
            let (ctx, _cancel) = Context::background().with_timeout(two_ms);
            let deadline = ctx
                .deadline()
                .expect("a timeout this short is representable");
            let result = cond.wait_ctx(&mut guard, &ctx);
            check("wait_ctx", deadline, result.is_err(), &latest);
            assert!(result.is_err(), "nobody signals");
        }
        Duration::from_nanos(latest.load(Ordering::Relaxed))
    });
    eprintln!("1 thread x {rounds} rounds: latest wake {latest:?} after its deadline");
}
