//! atomic: gosync's `Value` and `Counter` against `arc_swap::ArcSwap` and a shared `AtomicI64`.
//!
//! - `atomic_value_load`: 2 threads share [`OPS_PER_ITER`] loads of a small struct (reading two
//!   fields) while a third thread stores a new struct every millisecond. Timed from the common
//!   start to the last loader's end.
//! - `atomic_value_store`: one thread stores a new small struct (the old one is dropped once
//!   nothing refers to it), 1 000 stores per iteration.
//! - `atomic_counter_2t`: 2 threads share [`OPS_PER_ITER`] increments of one counter.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{Criterion, Throughput};
use gosync_atomic::{Counter, Value};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

const THREADS: usize = 2;
const STORES_PER_ITER: u64 = 1_000;

/// The small struct the loaders read.
#[derive(Clone, Copy, Default)]
struct Config {
    version: u64,
    limits: [u64; 3],
}

impl Config {
    /// What a loader reads: two fields of the struct.
    fn read(&self) -> u64 {
        self.version.wrapping_add(self.limits[2])
    }

    fn next(self) -> Self {
        Self {
            version: self.version + 1,
            ..self
        }
    }
}

/// Runs `loads` on [`THREADS`] threads (each its share of `iters` × [`OPS_PER_ITER`] loads)
/// while another thread calls `store` every millisecond; returns the loaders' time.
fn loads_under_stores<S>(
    iters: u64,
    shared: &S,
    store: impl Fn(&S, Config) + Sync,
    loads: impl Fn(&S, u64) + Sync,
) -> Duration
where
    S: Sync,
{
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let mut config = Config::default();
            while !stop.load(Ordering::Relaxed) {
                config = config.next();
                store(shared, config);
                thread::sleep(Duration::from_millis(1));
            }
        });
        let t = run_threads(THREADS, |i| {
            loads(shared, iters * share(OPS_PER_ITER, THREADS, i));
        });
        stop.store(true, Ordering::Relaxed);
        t
    })
}

fn value_load(c: &mut Criterion) {
    let mut g = c.benchmark_group("atomic_value_load");
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let value = Value::new(Config::default());
    let store = |v: &Value<Config>, config| v.store(config);
    g.bench_function("gosync_load", |b| {
        b.iter_custom(|iters| {
            loads_under_stores(iters, &value, store, |v, n| {
                for _ in 0..n {
                    black_box(v.load().read());
                }
            })
        })
    });
    g.bench_function("gosync_reader", |b| {
        b.iter_custom(|iters| {
            loads_under_stores(iters, &value, store, |v, n| {
                let mut reader = v.reader();
                for _ in 0..n {
                    black_box(reader.load().read());
                }
            })
        })
    });
    g.bench_function("gosync_load_arc", |b| {
        b.iter_custom(|iters| {
            loads_under_stores(iters, &value, store, |v, n| {
                for _ in 0..n {
                    black_box(v.load_arc().read());
                }
            })
        })
    });
    let swap = ArcSwap::from_pointee(Config::default());
    let store = |a: &ArcSwap<Config>, config| a.store(Arc::new(config));
    g.bench_function("arc_swap_load", |b| {
        b.iter_custom(|iters| {
            loads_under_stores(iters, &swap, store, |a, n| {
                for _ in 0..n {
                    black_box(a.load().read());
                }
            })
        })
    });
    g.bench_function("arc_swap_load_full", |b| {
        b.iter_custom(|iters| {
            loads_under_stores(iters, &swap, store, |a, n| {
                for _ in 0..n {
                    black_box(a.load_full().read());
                }
            })
        })
    });
    g.finish();
}

fn value_store(c: &mut Criterion) {
    let mut g = c.benchmark_group("atomic_value_store");
    g.throughput(Throughput::Elements(STORES_PER_ITER));
    let value = Value::new(Config::default());
    g.bench_function("gosync", |b| {
        b.iter(|| {
            for n in 0..STORES_PER_ITER {
                value.store(Config {
                    version: n,
                    ..Config::default()
                });
            }
        })
    });
    let swap = ArcSwap::from_pointee(Config::default());
    g.bench_function("arc_swap", |b| {
        b.iter(|| {
            for n in 0..STORES_PER_ITER {
                swap.store(Arc::new(Config {
                    version: n,
                    ..Config::default()
                }));
            }
        })
    });
    g.finish();
}

fn counter(c: &mut Criterion) {
    let mut g = c.benchmark_group("atomic_counter_2t");
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let counter = Counter::new();
    g.bench_function("gosync", |b| {
        b.iter_custom(|iters| {
            let before = counter.value();
            let t = run_threads(THREADS, |i| {
                for _ in 0..iters * share(OPS_PER_ITER, THREADS, i) {
                    counter.inc();
                }
            });
            assert_eq!(counter.value() - before, (iters * OPS_PER_ITER) as i64);
            t
        })
    });
    let shared = AtomicI64::new(0);
    g.bench_function("atomic_i64", |b| {
        b.iter_custom(|iters| {
            run_threads(THREADS, |i| {
                for _ in 0..iters * share(OPS_PER_ITER, THREADS, i) {
                    shared.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
    });
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    value_load(&mut c);
    value_store(&mut c);
    counter(&mut c);
    c.final_summary();
}
