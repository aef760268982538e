//! RwMutex: gosync against parking_lot and std, from read-heavy to write-heavy.
//!
//! Each group: 2 threads share [`OPS_PER_ITER`] operations per iteration; every `n`-th
//! operation of each thread takes the write lock and increments, the rest take a read lock and
//! read. Timed from the common start to the last thread's end. `rwmutex_read_heavy` (n = 100,
//! 99% reads) is the one with a target; the groups with more writes show what the per-thread
//! reader counts cost when writes are frequent. Writer latency under reader load is in the
//! `fairness` bench.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

const THREADS: usize = 2;

/// Times `iters` iterations with a write every `every` operations, checking the number of
/// writes at the end.
fn mixed<L: Sync>(
    iters: u64,
    every: u64,
    l: &L,
    read: impl Fn(&L) -> u64 + Sync,
    write: impl Fn(&L) + Sync,
) -> Duration {
    let before = read(l);
    let t = run_threads(THREADS, |i| {
        for j in 0..iters * share(OPS_PER_ITER, THREADS, i) {
            if j % every == 0 {
                write(l);
            } else {
                black_box(read(l));
            }
        }
    });
    let writes: u64 = (0..THREADS)
        .map(|i| (iters * share(OPS_PER_ITER, THREADS, i)).div_ceil(every))
        .sum();
    assert_eq!(read(l) - before, writes, "lost a write");
    t
}

/// One criterion group: gosync, parking_lot and std with a write every `every` operations.
fn mixed_group(c: &mut Criterion, id: &str, every: u64) {
    let mut g = c.benchmark_group(id);
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let l = gosync_rwmutex::RwMutex::new(0_u64);
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| mixed(iters, every, &l, |l| *l.read(), |l| *l.write() += 1))
    });
    let l = parking_lot::RwLock::new(0_u64);
    g.bench_function("parking_lot", |b| {
        b.iter_custom(|iters| mixed(iters, every, &l, |l| *l.read(), |l| *l.write() += 1))
    });
    let l = std::sync::RwLock::new(0_u64);
    g.bench_function("std", |b| {
        b.iter_custom(|iters| {
            mixed(
                iters,
                every,
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
    mixed_group(&mut c, "rwmutex_read_heavy", 100);
    mixed_group(&mut c, "rwmutex_writes_10pct", 10);
    mixed_group(&mut c, "rwmutex_writes_50pct", 2);
    c.final_summary();
}
