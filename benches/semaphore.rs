//! Semaphore: 2 threads acquire(1)/release(1) on one semaphore, gosync against a semaphore made
//! of a `std` `Mutex<u64>` + `Condvar` (what a Rust program without an async runtime writes).
//!
//! - `semaphore_2t_cap1` / `semaphore_2t_cap4`: capacity 1 (a lock) and 4 (never full with two
//!   threads, so the uncontended path under cache-line sharing); an iteration is
//!   [`OPS_PER_ITER`] acquire/increment/release operations in total, timed from the common start
//!   to the last thread's end (throughput).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

/// The peer: a counting semaphore on a `std` mutex and condition variable.
struct CondvarSemaphore {
    available: Mutex<u64>,
    freed: Condvar,
}

impl CondvarSemaphore {
    fn new(capacity: u64) -> Self {
        Self {
            available: Mutex::new(capacity),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self, n: u64) {
        let available = self.available.lock().unwrap();
        let mut available = self.freed.wait_while(available, |a| *a < n).unwrap();
        *available -= n;
    }

    fn release(&self, n: u64) {
        *self.available.lock().unwrap() += n;
        self.freed.notify_one();
    }
}

fn contended(
    iters: u64,
    acquire: impl Fn() + Sync,
    release: impl Fn() + Sync,
) -> std::time::Duration {
    let work = AtomicU64::new(0);
    let t = run_threads(2, |i| {
        for _ in 0..iters * share(OPS_PER_ITER, 2, i) {
            acquire();
            work.fetch_add(1, Ordering::Relaxed);
            release();
        }
    });
    assert_eq!(work.load(Ordering::Relaxed), iters * OPS_PER_ITER);
    t
}

fn group(c: &mut Criterion, name: &str, capacity: u64) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let sem = gosync_semaphore::Semaphore::new(capacity);
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| contended(iters, || black_box(&sem).acquire(1), || sem.release(1)))
    });
    let sem = CondvarSemaphore::new(capacity);
    g.bench_function("mutex_condvar", |b| {
        b.iter_custom(|iters| contended(iters, || black_box(&sem).acquire(1), || sem.release(1)))
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    group(&mut c, "semaphore_2t_cap1", 1);
    group(&mut c, "semaphore_2t_cap4", 4);
    c.final_summary();
}
