//! Cond: ping-pong between two threads, gosync `Mutex` + `Cond` against std and parking_lot
//! `Mutex` + `Condvar`.
//!
//! `cond_ping_pong`: a shared turn flag under the mutex; each thread waits for its turn, passes
//! the turn over and signals. One iteration is [`ROUND_TRIPS`] round trips (two hand-overs
//! each), timed from the common start to the end of both threads.
//!
//! `cond_timed_ring`: [`RING`] threads pass a token round a ring of slots, each a mutex and a
//! condition variable; a thread waits for the token with timed waits of [`RING_TIMEOUT`],
//! waiting again after each timeout, so that most of the ring keeps timing out while the token
//! travels. One iteration is [`RING_PASSES`] passes, timed from the common start (thread
//! start-up is not timed); each sample is one iteration (flat sampling), since an iteration
//! takes tens of milliseconds.

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use gosync_benches::{config, run_threads};

/// Round trips per criterion iteration (the Go twin uses the same number).
const ROUND_TRIPS: u64 = 100;

fn gosync_ping_pong(iters: u64) -> Duration {
    let turn = gosync_mutex::Mutex::new(0_usize);
    let cond = gosync_cond::Cond::new();
    run_threads(2, |me| {
        for _ in 0..iters * ROUND_TRIPS {
            let mut g = turn.lock();
            while *g != me {
                cond.wait(&mut g);
            }
            *g = 1 - me;
            cond.signal();
        }
    })
}

fn std_ping_pong(iters: u64) -> Duration {
    let turn = std::sync::Mutex::new(0_usize);
    let cond = std::sync::Condvar::new();
    run_threads(2, |me| {
        for _ in 0..iters * ROUND_TRIPS {
            let mut g = turn.lock().unwrap();
            while *g != me {
                g = cond.wait(g).unwrap();
            }
            *g = 1 - me;
            cond.notify_one();
        }
    })
}

fn parking_lot_ping_pong(iters: u64) -> Duration {
    let turn = parking_lot::Mutex::new(0_usize);
    let cond = parking_lot::Condvar::new();
    run_threads(2, |me| {
        for _ in 0..iters * ROUND_TRIPS {
            let mut g = turn.lock();
            while *g != me {
                cond.wait(&mut g);
            }
            *g = 1 - me;
            cond.notify_one();
        }
    })
}

/// Threads (and slots) in the timed ring.
const RING: usize = 64;
/// Passes of the token per iteration of the timed ring.
const RING_PASSES: usize = 1_000;
/// The timeout of each wait in the timed ring.
const RING_TIMEOUT: Duration = Duration::from_micros(60);

/// How many times thread `me` of the ring receives the token: pass `n` goes to thread
/// `n % RING`.
fn ring_receipts(me: usize) -> usize {
    (RING_PASSES + RING - 1 - me) / RING
}

/// Runs `iters` timed rings. `receive(slot, n)` waits for pass `n` to arrive in `slot` and
/// takes it; `send(slot, n)` puts pass `n` there and signals.
fn timed_ring<S: Sync>(
    iters: u64,
    slots: &[S],
    receive: impl Fn(&S, usize) + Sync,
    send: impl Fn(&S, usize) + Sync,
) -> Duration {
    (0..iters)
        .map(|_| {
            send(&slots[0], 0);
            run_threads(RING, |me| {
                for k in 0..ring_receipts(me) {
                    let n = me + k * RING;
                    receive(&slots[me], n);
                    // The last pass stays with its receiver: every ring starts empty.
                    if n + 1 < RING_PASSES {
                        send(&slots[(me + 1) % RING], n + 1);
                    }
                }
            })
        })
        .sum()
}

/// The token a slot holds: the number of the pass that delivered it.
type Token = Option<usize>;

/// The timed ring on a mutex type `$mutex` (of a [`Token`]) whose `lock()` returns a guard and a
/// condition variable type `$cond` with `wait_for(&mut guard, timeout)`, waking with `$wake`.
macro_rules! guard_ring {
    ($iters:expr, $mutex:ty, $cond:ty, $wake:ident) => {{
        let slots: Vec<_> = (0..RING)
            .map(|_| (<$mutex>::new(Token::None), <$cond>::new()))
            .collect();
        timed_ring(
            $iters,
            &slots,
            |(token, cond), n| {
                let mut g = token.lock();
                while g.is_none() {
                    let _ = cond.wait_for(&mut g, RING_TIMEOUT);
                }
                assert_eq!(g.take(), Some(n), "the ring lost a pass");
            },
            |(token, cond), n| {
                *token.lock() = Some(n);
                cond.$wake();
            },
        )
    }};
}

fn gosync_ring(iters: u64) -> Duration {
    guard_ring!(iters, gosync_mutex::Mutex<Token>, gosync_cond::Cond, signal)
}

fn parking_lot_ring(iters: u64) -> Duration {
    guard_ring!(
        iters,
        parking_lot::Mutex<Token>,
        parking_lot::Condvar,
        notify_one
    )
}

fn std_ring(iters: u64) -> Duration {
    let slots: Vec<_> = (0..RING)
        .map(|_| {
            (
                std::sync::Mutex::new(Token::None),
                std::sync::Condvar::new(),
            )
        })
        .collect();
    timed_ring(
        iters,
        &slots,
        |(token, cond), n| {
            let mut g = token.lock().unwrap();
            while g.is_none() {
                g = cond.wait_timeout(g, RING_TIMEOUT).unwrap().0;
            }
            assert_eq!(g.take(), Some(n), "the ring lost a pass");
        },
        |(token, cond), n| {
            *token.lock().unwrap() = Some(n);
            cond.notify_one();
        },
    )
}

fn ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("cond_timed_ring");
    g.throughput(Throughput::Elements(RING_PASSES as u64));
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.bench_function("gosync", |b| b.iter_custom(gosync_ring));
    g.bench_function("std", |b| b.iter_custom(std_ring));
    g.bench_function("parking_lot", |b| b.iter_custom(parking_lot_ring));
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("cond_ping_pong");
    g.throughput(Throughput::Elements(ROUND_TRIPS));
    // Each sample starts a new pair of threads, and where the kernel puts the pair (one core,
    // or one thread beside each busy neighbour) sets its speed under load for the whole sample:
    // 60 samples instead of 20 let each implementation meet the placements in about the same
    // proportions (docs/park.md, "Where the neighbours run").
    g.sample_size(60);
    g.bench_function("gosync", |b| b.iter_custom(gosync_ping_pong));
    g.bench_function("std", |b| b.iter_custom(std_ping_pong));
    g.bench_function("parking_lot", |b| b.iter_custom(parking_lot_ping_pong));
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    ping_pong(&mut c);
    ring(&mut c);
    c.final_summary();
}
