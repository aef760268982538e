//! Map: gosync against papaya, dashmap and scc, `u64 → u64`, keys drawn uniformly.
//!
//! Each group: 2 threads share [`OPS_PER_ITER`] operations per iteration on one map
//! pre-filled with every key of its key space. `map_read_99` and `map_read_90`: 99% and 90% loads,
//! the rest stores of existing keys, over 10k keys; `map_store_delete`: half stores, half
//! deletes of random keys over 10k keys (the map hovers around half full); `map_read_99_1m`: 99%
//! loads over 1M keys (the map no longer fits in cache). Every map uses its default hasher
//! (`RandomState`). Bytes per entry are measured by the `map_memory` program.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use gosync_benches::{config, run_threads, share, OPS_PER_ITER};

const THREADS: usize = 2;

/// The operations a workload needs, for each map.
trait BenchMap: Sync {
    fn load(&self, k: u64) -> Option<u64>;
    fn store(&self, k: u64, v: u64);
    fn delete(&self, k: u64);
}

impl BenchMap for gosync_map::Map<u64, u64> {
    fn load(&self, k: u64) -> Option<u64> {
        self.load(&k)
    }
    fn store(&self, k: u64, v: u64) {
        self.store(k, v);
    }
    fn delete(&self, k: u64) {
        self.delete(&k);
    }
}

impl BenchMap for papaya::HashMap<u64, u64> {
    fn load(&self, k: u64) -> Option<u64> {
        self.pin().get(&k).copied()
    }
    fn store(&self, k: u64, v: u64) {
        self.pin().insert(k, v);
    }
    fn delete(&self, k: u64) {
        self.pin().remove(&k);
    }
}

impl BenchMap for dashmap::DashMap<u64, u64> {
    fn load(&self, k: u64) -> Option<u64> {
        self.get(&k).map(|v| *v)
    }
    fn store(&self, k: u64, v: u64) {
        self.insert(k, v);
    }
    fn delete(&self, k: u64) {
        self.remove(&k);
    }
}

impl BenchMap for scc::HashMap<u64, u64> {
    fn load(&self, k: u64) -> Option<u64> {
        self.read(&k, |_, v| *v)
    }
    fn store(&self, k: u64, v: u64) {
        self.upsert(k, v);
    }
    fn delete(&self, k: u64) {
        self.remove(&k);
    }
}

/// A small per-thread generator of uniform keys (xorshift64*).
struct Keys(u64);

impl Keys {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Times `iters` iterations of the load/store mix: `stores` in every 100 operations store.
fn reads(iters: u64, m: &impl BenchMap, keys: u64, stores: u64) -> Duration {
    run_threads(THREADS, |i| {
        let mut rng = Keys::new(i as u64 + 1);
        for _ in 0..iters * share(OPS_PER_ITER, THREADS, i) {
            let r = rng.next();
            let k = (r >> 8) % keys;
            if r % 100 < stores {
                m.store(k, r);
            } else {
                black_box(m.load(k));
            }
        }
    })
}

/// Times `iters` iterations of half stores, half deletes.
fn store_delete(iters: u64, m: &impl BenchMap, keys: u64) -> Duration {
    run_threads(THREADS, |i| {
        let mut rng = Keys::new(i as u64 + 7);
        for _ in 0..iters * share(OPS_PER_ITER, THREADS, i) {
            let r = rng.next();
            let k = (r >> 8) % keys;
            if r & 1 == 0 {
                m.store(k, r);
            } else {
                m.delete(k);
            }
        }
    })
}

fn filled<M: BenchMap>(m: M, keys: u64) -> M {
    for k in 0..keys {
        m.store(k, k);
    }
    m
}

/// One criterion group: every map on the same workload.
fn group(c: &mut Criterion, id: &str, keys: u64, work: impl Fn(u64, &dyn Run) -> Duration) {
    let mut g = c.benchmark_group(id);
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    let m = filled(gosync_map::Map::new(), keys);
    g.bench_function("gosync", |b| b.iter_custom(|iters| work(iters, &m)));
    drop(m);
    let m = filled(papaya::HashMap::new(), keys);
    g.bench_function("papaya", |b| b.iter_custom(|iters| work(iters, &m)));
    drop(m);
    let m = filled(dashmap::DashMap::new(), keys);
    g.bench_function("dashmap", |b| b.iter_custom(|iters| work(iters, &m)));
    drop(m);
    let m = filled(scc::HashMap::new(), keys);
    g.bench_function("scc", |b| b.iter_custom(|iters| work(iters, &m)));
    g.finish();
}

/// A workload over any of the maps (object safe, so one closure serves all four).
trait Run {
    fn reads(&self, iters: u64, keys: u64, stores: u64) -> Duration;
    fn store_delete(&self, iters: u64, keys: u64) -> Duration;
}

impl<M: BenchMap> Run for M {
    fn reads(&self, iters: u64, keys: u64, stores: u64) -> Duration {
        reads(iters, self, keys, stores)
    }
    fn store_delete(&self, iters: u64, keys: u64) -> Duration {
        store_delete(iters, self, keys)
    }
}

fn main() {
    let mut c = config().configure_from_args();
    group(&mut c, "map_read_99", 10_000, |iters, m| {
        m.reads(iters, 10_000, 1)
    });
    group(&mut c, "map_read_90", 10_000, |iters, m| {
        m.reads(iters, 10_000, 10)
    });
    group(&mut c, "map_store_delete", 10_000, |iters, m| {
        m.store_delete(iters, 10_000)
    });
    group(&mut c, "map_read_99_1m", 1_000_000, |iters, m| {
        m.reads(iters, 1_000_000, 1)
    });
    c.final_summary();
}
