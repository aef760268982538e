//! Once: the done path (the call after initialisation) and contended initialisation, gosync
//! against std and parking_lot.
//!
//! - `once_done`: `Once::call_once` on a done `Once` (gosync and std), `OnceCell::get` /
//!   `get_or_init` on a set cell against `OnceLock::get` / `get_or_init`.
//! - `once_init_contended_2t`, `once_init_contended_8t`: 2 or 8 threads, started together, call
//!   `get_or_init` on each of a row of fresh cells in turn; one iteration is one cell. The first
//!   thread to reach a cell runs its initialisation ([`INIT_STEPS`] steps of a busy loop, no
//!   sleep) while the others wait for it, so an iteration costs the work plus handing its
//!   value to the waiters. 8 threads on the 2-core reference machine are more than its cores:
//!   a waiter that spins there takes the core the initialising thread needs.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads};

fn done_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("once_done");
    g.throughput(Throughput::Elements(1));

    let once = gosync_once::Once::new();
    once.call_once(|| {});
    g.bench_function("gosync_once", |b| {
        b.iter(|| black_box(&once).call_once(|| {}))
    });
    let once = std::sync::Once::new();
    once.call_once(|| {});
    g.bench_function("std_once", |b| b.iter(|| black_box(&once).call_once(|| {})));

    let cell = gosync_once::OnceCell::new();
    cell.get_or_init(|| 7_u64);
    g.bench_function("gosync_oncecell_get", |b| {
        b.iter(|| black_box(&cell).get().copied())
    });
    g.bench_function("gosync_oncecell_get_or_init", |b| {
        b.iter(|| *black_box(&cell).get_or_init(|| 8))
    });
    let cell = std::sync::OnceLock::new();
    cell.get_or_init(|| 7_u64);
    g.bench_function("std_oncelock_get", |b| {
        b.iter(|| black_box(&cell).get().copied())
    });
    g.bench_function("std_oncelock_get_or_init", |b| {
        b.iter(|| *black_box(&cell).get_or_init(|| 8))
    });
    g.finish();
}

/// Steps of the busy loop one initialisation runs: a small fixed amount of work (about a
/// microsecond), no sleep.
const INIT_STEPS: u64 = 1_000;

/// The initialisation: [`INIT_STEPS`] dependent steps the optimiser cannot fold away.
fn init_work() -> u64 {
    (0..INIT_STEPS).fold(1, |x: u64, i| {
        black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i))
    })
}

/// Times `threads` threads calling `get_or_init` on each of `iters` fresh cells in turn, and
/// checks that every cell was initialised exactly once and every caller saw its value.
fn contended_init<C: Sync>(
    iters: u64,
    threads: usize,
    fresh: impl Fn() -> C,
    get_or_init: impl Fn(&C, &(dyn Fn() -> u64 + Sync)) -> u64 + Sync,
) -> Duration {
    let cells: Vec<C> = (0..iters).map(|_| fresh()).collect();
    let expected = init_work();
    let inits = AtomicU64::new(0);
    let init = || {
        inits.fetch_add(1, Ordering::Relaxed);
        init_work()
    };
    let t = run_threads(threads, |_| {
        for cell in &cells {
            assert_eq!(get_or_init(cell, &init), expected);
        }
    });
    assert_eq!(
        inits.into_inner(),
        iters,
        "a cell was initialised twice or never"
    );
    t
}

/// `parking_lot` has no cell: its `Once` guards a value stored beside it.
struct ParkingLotCell {
    once: parking_lot::Once,
    value: AtomicU64,
}

fn contended_init_group(c: &mut Criterion, id: &str, threads: usize) {
    let mut g = c.benchmark_group(id);
    g.throughput(Throughput::Elements(1));
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| {
            contended_init(iters, threads, gosync_once::OnceCell::new, |cell, init| {
                *cell.get_or_init(init)
            })
        })
    });
    g.bench_function("std", |b| {
        b.iter_custom(|iters| {
            contended_init(iters, threads, std::sync::OnceLock::new, |cell, init| {
                *cell.get_or_init(init)
            })
        })
    });
    g.bench_function("parking_lot", |b| {
        b.iter_custom(|iters| {
            let fresh = || ParkingLotCell {
                once: parking_lot::Once::new(),
                value: AtomicU64::new(0),
            };
            contended_init(iters, threads, fresh, |cell, init| {
                // Relaxed on both sides: `call_once` returns only after the initialising call
                // has completed, and orders its store before this load.
                cell.once
                    .call_once(|| cell.value.store(init(), Ordering::Relaxed));
                cell.value.load(Ordering::Relaxed)
            })
        })
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    done_path(&mut c);
    contended_init_group(&mut c, "once_init_contended_2t", 2);
    contended_init_group(&mut c, "once_init_contended_8t", 8);
    c.final_summary();
}
