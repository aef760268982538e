//! Barrier: 2 threads trip one barrier in a loop, gosync against `std::sync::Barrier`.
//!
//! - `barrier_2t_trips`: an iteration is [`TRIPS`] trips of a 2-party barrier, both threads
//!   calling `wait` in a loop, timed from the common start to the last thread's end.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads};

/// Trips per iteration (the Go twin, if any, uses the same number).
const TRIPS: u64 = 1_000;

fn trips(c: &mut Criterion) {
    let mut g = c.benchmark_group("barrier_2t_trips");
    g.throughput(Throughput::Elements(TRIPS));
    let barrier = gosync_barrier::Barrier::new(2);
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| {
            run_threads(2, |_| {
                for _ in 0..iters * TRIPS {
                    black_box(barrier.wait().expect("nobody gives up"));
                }
            })
        })
    });
    let barrier = std::sync::Barrier::new(2);
    g.bench_function("std", |b| {
        b.iter_custom(|iters| {
            run_threads(2, |_| {
                for _ in 0..iters * TRIPS {
                    black_box(barrier.wait());
                }
            })
        })
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    trips(&mut c);
    c.final_summary();
}
