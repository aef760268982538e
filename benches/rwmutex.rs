//! RwMutex: gosync against parking_lot and std, read-heavy.
//!
//! `rwmutex_read_heavy`: 2 threads share [`OPS_PER_ITER`] operations per iteration; every
//! hundredth operation of each thread takes the write lock and increments, the rest take a read
//! lock and read (99% reads). Timed from the common start to the last thread's end.
//! Writer latency under reader load is in the `fairness` bench.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

const THREADS: usize = 2;

/// Times `iters` iterations, checking the number of writes at the end.
fn read_heavy<L: Sync>(
    iters: u64,
    l: &L,
    read: impl Fn(&L) -> u64 + Sync,
    write: impl Fn(&L) + Sync,
) -> Duration {
    let before = read(l);
    let t = run_threads(THREADS, |i| {
        for j in 0..iters * share(OPS_PER_ITER, THREADS, i) {
            if j % 100 == 0 {
                write(l);
            } else {
                black_box(read(l));
            }
        }
    });
    let writes: u64 = (0..THREADS)
        .map(|i| (iters * share(OPS_PER_ITER, THREADS, i)).div_ceil(100))
        .sum();
    assert_eq!(read(l) - before, writes, "lost a write");
    t
}

fn read_heavy_group(c: &mut Criterion) {
    let mut g = c.benchmark_group("rwmutex_read_heavy");
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let l = gosync_rwmutex::RwMutex::new(0_u64);
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| read_heavy(iters, &l, |l| *l.read(), |l| *l.write() += 1))
    });
    let l = parking_lot::RwLock::new(0_u64);
    g.bench_function("parking_lot", |b| {
        b.iter_custom(|iters| read_heavy(iters, &l, |l| *l.read(), |l| *l.write() += 1))
    });
    let l = std::sync::RwLock::new(0_u64);
    g.bench_function("std", |b| {
        b.iter_custom(|iters| {
            read_heavy(
                iters,
                &l,
                |l| *l.read().unwrap(),
                |l| *l.write().unwrap() += 1,
            )
        })
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    read_heavy_group(&mut c);
    c.final_summary();
}
