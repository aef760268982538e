//! Pool: gosync against a fresh allocation, `lockfree-object-pool` and `object-pool`.
//!
//! `pool_2t`: 2 threads each take a 4 KiB `Vec<u8>` buffer, write to it and give it back (the
//! fresh allocation drops it instead). An iteration is [`OPS_PER_ITER`] round trips in total,
//! timed from the common start to the last thread's end (throughput). Every pool clears the
//! buffer on its way back (`object-pool` has no reset hook: the loop clears it before the drop),
//! so each starts from an empty buffer of 4 KiB capacity, as a fresh one does.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

const THREADS: usize = 2;
const BUFFER: usize = 4096;

/// Times `iters` iterations of [`OPS_PER_ITER`] round trips split over [`THREADS`] threads.
fn round_trips(iters: u64, round_trip: impl Fn() + Sync) -> std::time::Duration {
    run_threads(THREADS, |i| {
        for _ in 0..iters * share(OPS_PER_ITER, THREADS, i) {
            round_trip();
        }
    })
}

/// What each round trip does with its buffer: write a few bytes and read one back.
#[inline]
fn touch(buf: &mut Vec<u8>) {
    buf.extend_from_slice(b"touch");
    black_box(buf[0]);
}

fn pool_2t(c: &mut Criterion) {
    let mut g = c.benchmark_group("pool_2t");
    g.throughput(Throughput::Elements(OPS_PER_ITER));

    let pool = gosync_pool::Pool::with_reset(|| Vec::with_capacity(BUFFER), Vec::clear);
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| round_trips(iters, || touch(&mut pool.get())))
    });

    g.bench_function("fresh_alloc", |b| {
        b.iter_custom(|iters| {
            round_trips(iters, || {
                let mut buf = Vec::with_capacity(BUFFER);
                touch(&mut buf);
                drop(black_box(buf));
            })
        })
    });

    let pool =
        lockfree_object_pool::LinearObjectPool::new(|| Vec::with_capacity(BUFFER), Vec::clear);
    g.bench_function("lockfree_object_pool", |b| {
        b.iter_custom(|iters| round_trips(iters, || touch(&mut pool.pull())))
    });

    let pool = object_pool::Pool::new(64, || Vec::with_capacity(BUFFER));
    g.bench_function("object_pool", |b| {
        b.iter_custom(|iters| {
            round_trips(iters, || {
                let mut buf = pool.pull(|| Vec::with_capacity(BUFFER));
                touch(&mut buf);
                buf.clear();
            })
        })
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    pool_2t(&mut c);
    c.final_summary();
}
