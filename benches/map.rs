//! Map: gosync against papaya, dashmap and scc, `u64 → u64`, keys drawn uniformly.
//!
//! Each group: 2 threads share [`OPS_PER_ITER`] operations per iteration on one map
//! pre-filled with every key of its key space. `map_read_99` and `map_read_90`: 99% and 90% loads,
//! the rest stores of existing keys, over 10k keys; `map_store_delete`: half stores, half
//! deletes of random keys over 10k keys (the map hovers around half full); `map_read_99_1m`: 99%
//! loads over 1M keys (the map no longer fits in cache). Every map uses its default hasher
//! (`RandomState`). The workloads live in `gosync_benches::map_workload`, which the
//! `map_rounds` harness shares. Bytes per entry are measured by the `map_memory` program.

use criterion::{Criterion, Throughput};
use gosync_benches::map_workload::{MapImpl, Workload, WORKLOADS};
use gosync_benches::{config, OPS_PER_ITER};

/// One criterion group: every map on the same workload, one map alive at a time.
fn group(c: &mut Criterion, w: &Workload) {
    let mut g = c.benchmark_group(w.id);
    g.throughput(Throughput::Elements(OPS_PER_ITER));
    for map in MapImpl::ALL {
        let m = map.filled(w.keys);
        // A new seed for every call: restarting one key sequence at each sample would re-read
        // the keys the last sample left in cache, which at 1M keys is what the group must not do.
        let mut calls = 0;
        g.bench_function(map.name(), |b| {
            b.iter_custom(|iters| {
                calls += 1;
                m.run(w, iters, calls * 1_000)
            })
        });
    }
    g.finish();
}

fn main() {
    let mut c = config().configure_from_args();
    for w in &WORKLOADS {
        group(&mut c, w);
    }
    c.final_summary();
}
