//! Once: the done path (the call after initialisation), gosync against std.
//!
//! `once_done`: `Once::call_once` on a done `Once` (gosync and std), `OnceCell::get` /
//! `get_or_init` on a set cell against `OnceLock::get` / `get_or_init`.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use gosync_benches::config;

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

fn main() {
    let mut c = config().configure_from_args();
    done_path(&mut c);
    c.final_summary();
}
