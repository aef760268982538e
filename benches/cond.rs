//! Cond: ping-pong between two threads, gosync `Mutex` + `Cond` against std and parking_lot
//! `Mutex` + `Condvar`.
//!
//! `cond_ping_pong`: a shared turn flag under the mutex; each thread waits for its turn, passes
//! the turn over and signals. One iteration is [`ROUND_TRIPS`] round trips (two hand-overs
//! each), timed from the common start to the end of both threads.

use std::time::Duration;

use criterion::{Criterion, Throughput};
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

fn ping_pong(c: &mut Criterion) {
    let mut g = c.benchmark_group("cond_ping_pong");
    g.throughput(Throughput::Elements(ROUND_TRIPS));
    g.bench_function("gosync", |b| b.iter_custom(gosync_ping_pong));
    g.bench_function("std", |b| b.iter_custom(std_ping_pong));
    g.bench_function("parking_lot", |b| b.iter_custom(parking_lot_ping_pong));
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    ping_pong(&mut c);
    c.final_summary();
}
