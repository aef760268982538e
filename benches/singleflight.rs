//! singleflight: 8 threads calling one key whose `f` takes 1 ms, gosync's `Group::call`
//! against every thread calling `f` itself.
//!
//! `singleflight_8t_1ms`: one iteration is one round. Eight threads start together at a
//! barrier (spawning is not timed, see `gosync_benches::run_threads`); each either calls
//! `group.call(KEY, f)` (`gosync`: one thread runs `f`, the others wait for its value) or
//! runs `f` itself (`direct`: the floor, eight sleeps in parallel). The round ends when the
//! last thread returns, so the difference between the two is what the flight adds for its
//! callers: the map look-up, parking the seven waiters and waking them with the value. A thread
//! that starts after the flight landed (on a busy machine, 1 ms is short) starts a second
//! flight: the bench prints how many flights a round took on average, to read the times by.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads};

const THREADS: usize = 8;
/// What `f` costs: a slow look-up worth sharing.
const WORK: Duration = Duration::from_millis(1);

fn work() -> u64 {
    thread::sleep(WORK);
    42
}

fn singleflight_8t_1ms(c: &mut Criterion) {
    let mut g = c.benchmark_group("singleflight_8t_1ms");
    g.throughput(Throughput::Elements(THREADS as u64));
    let (flights, rounds) = (AtomicU64::new(0), AtomicU64::new(0));
    g.bench_function("gosync", |b| {
        let group = gosync_singleflight::Group::new();
        let flight = || {
            flights.fetch_add(1, Ordering::Relaxed);
            work()
        };
        b.iter_custom(|iters| {
            rounds.fetch_add(iters, Ordering::Relaxed);
            (0..iters)
                .map(|_| run_threads(THREADS, |_| assert_eq!(group.call("key", flight).0, 42)))
                .sum()
        });
    });
    let (flights, rounds) = (flights.into_inner(), rounds.into_inner());
    println!(
        "singleflight_8t_1ms/gosync: {:.2} flights per round ({flights} in {rounds} rounds)",
        flights as f64 / rounds.max(1) as f64
    );
    g.bench_function("direct", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| run_threads(THREADS, |_| assert_eq!(work(), 42)))
                .sum()
        });
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    singleflight_8t_1ms(&mut c);
    c.final_summary();
}
