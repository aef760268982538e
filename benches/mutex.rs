//! Mutex: gosync against parking_lot and std.
//!
//! - `mutex_uncontended`: one lock, increment, unlock on a single thread.
//! - `mutex_contended_2t`: 2 threads increment one counter; an iteration is
//!   [`OPS_PER_ITER`] lock/increment/unlock operations in total, timed from the common start to
//!   the last thread's end (throughput).
//! - `mutex_oversubscribed_8t`: the same total work split over 8 threads (more threads than
//!   cores on the 2-core reference machine).

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("mutex_uncontended");
    g.throughput(Throughput::Elements(1));
    let m = gosync_mutex::Mutex::new(0_u64);
    g.bench_function("gosync", |b| b.iter(|| *black_box(&m).lock() += 1));
    let m = parking_lot::Mutex::new(0_u64);
    g.bench_function("parking_lot", |b| b.iter(|| *black_box(&m).lock() += 1));
    let m = std::sync::Mutex::new(0_u64);
    g.bench_function("std", |b| b.iter(|| *black_box(&m).lock().unwrap() += 1));
    g.finish();
}

/// Times `iters` iterations of [`OPS_PER_ITER`] increments split over `threads` threads, and
/// checks the count at the end.
fn contended<M: Sync>(
    iters: u64,
    threads: usize,
    m: &M,
    inc: impl Fn(&M) + Sync,
    get: impl Fn(&M) -> u64,
) -> std::time::Duration {
    let before = get(m);
    let t = run_threads(threads, |i| {
        for _ in 0..iters * share(OPS_PER_ITER, threads, i) {
            inc(m);
        }
    });
    assert_eq!(get(m) - before, iters * OPS_PER_ITER, "lost an increment");
    t
}

fn contended_group(c: &mut Criterion, name: &str, threads: usize) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let m = gosync_mutex::Mutex::new(0_u64);
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| contended(iters, threads, &m, |m| *m.lock() += 1, |m| *m.lock()))
    });
    let m = parking_lot::Mutex::new(0_u64);
    g.bench_function("parking_lot", |b| {
        b.iter_custom(|iters| contended(iters, threads, &m, |m| *m.lock() += 1, |m| *m.lock()))
    });
    let m = std::sync::Mutex::new(0_u64);
    g.bench_function("std", |b| {
        b.iter_custom(|iters| {
            contended(
                iters,
                threads,
                &m,
                |m| *m.lock().unwrap() += 1,
                |m| *m.lock().unwrap(),
            )
        })
    });
    g.finish();
}

fn contended_2t(c: &mut Criterion) {
    contended_group(c, "mutex_contended_2t", 2);
}

fn oversubscribed_8t(c: &mut Criterion) {
    contended_group(c, "mutex_oversubscribed_8t", 8);
}

fn main() {
    let mut c = config().configure_from_args();
    uncontended(&mut c);
    contended_2t(&mut c);
    oversubscribed_8t(&mut c);
    c.final_summary();
}
