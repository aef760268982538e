//! WaitGroup: a coordinator waiting on 2 workers, gosync against crossbeam-utils and a
//! `Mutex` + `Condvar` counter.
//!
//! `waitgroup_rounds`: one iteration is one round. The coordinator arms the group for
//! 2 × [`DONES`] completions (gosync: `add`; crossbeam: one clone per completion, since that
//! is how crossbeam counts; the counter: a store), releases both workers at a barrier and
//! waits; each worker signals done [`DONES`] times (crossbeam: drops one clone per done).
//! Timed end to end, from arming to the wait returning: arming is part of what each API costs,
//! and timing from the barrier would leave out whatever the workers did before the coordinator
//! was scheduled again. Workers live for the whole measurement, so thread start-up is not
//! timed.

use std::sync::{Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use gosync_benches::config;

/// Done signals per worker per round (the Go twin uses the same number).
const DONES: usize = 5_000;
const WORKERS: usize = 2;

/// Runs `iters` rounds of arm → release workers → wait, and returns the summed wait time.
fn rounds<S: Sync>(
    iters: u64,
    state: &S,
    arm: impl Fn(&S),
    worker: impl Fn(&S, usize) + Sync,
    wait: impl Fn(&S),
) -> Duration {
    let start = Barrier::new(WORKERS + 1);
    let mut total = Duration::ZERO;
    thread::scope(|s| {
        for w in 0..WORKERS {
            let (start, worker) = (&start, &worker);
            s.spawn(move || {
                for _ in 0..iters {
                    start.wait();
                    worker(state, w);
                }
            });
        }
        for _ in 0..iters {
            let t = Instant::now();
            arm(state);
            start.wait();
            wait(state);
            total += t.elapsed();
        }
    });
    total
}

fn gosync_rounds(iters: u64) -> Duration {
    let wg = gosync_waitgroup::WaitGroup::new();
    rounds(
        iters,
        &wg,
        |wg| wg.add((WORKERS * DONES) as isize),
        |wg, _| {
            for _ in 0..DONES {
                wg.done();
            }
        },
        |wg| wg.wait(),
    )
}

/// crossbeam's group is one-shot: each round makes a new one and hands each worker its clones.
#[derive(Default)]
struct CrossbeamRound {
    coordinator: Mutex<Option<crossbeam_utils::sync::WaitGroup>>,
    workers: [Mutex<Vec<crossbeam_utils::sync::WaitGroup>>; WORKERS],
}

fn crossbeam_rounds(iters: u64) -> Duration {
    rounds(
        iters,
        &CrossbeamRound::default(),
        |r| {
            let wg = crossbeam_utils::sync::WaitGroup::new();
            for slot in &r.workers {
                *slot.lock().unwrap() = (0..DONES).map(|_| wg.clone()).collect();
            }
            *r.coordinator.lock().unwrap() = Some(wg);
        },
        |r, w| {
            let clones = std::mem::take(&mut *r.workers[w].lock().unwrap());
            for done in clones {
                drop(done);
            }
        },
        |r| r.coordinator.lock().unwrap().take().expect("armed").wait(),
    )
}

fn condvar_rounds(iters: u64) -> Duration {
    rounds(
        iters,
        &(Mutex::new(0_usize), Condvar::new()),
        |(count, _)| *count.lock().unwrap() = WORKERS * DONES,
        |(count, zero), _| {
            for _ in 0..DONES {
                let mut c = count.lock().unwrap();
                *c -= 1;
                if *c == 0 {
                    zero.notify_all();
                }
            }
        },
        |(count, zero)| drop(zero.wait_while(count.lock().unwrap(), |c| *c > 0).unwrap()),
    )
}

fn waitgroup_rounds(c: &mut Criterion) {
    let mut g = c.benchmark_group("waitgroup_rounds");
    g.throughput(Throughput::Elements((WORKERS * DONES) as u64));
    g.bench_function("gosync", |b| b.iter_custom(gosync_rounds));
    g.bench_function("crossbeam", |b| b.iter_custom(crossbeam_rounds));
    g.bench_function("mutex_condvar", |b| b.iter_custom(condvar_rounds));
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    waitgroup_rounds(&mut c);
    c.final_summary();
}
