//! The map workloads, shared by the criterion bench (`map.rs`) and the interleaved-rounds
//! harness (`map_rounds.rs`): the maps compared, the workloads and the loops that run them.
//!
//! Every workload runs on [`THREADS`] threads that share a number of iterations of
//! [`OPS_PER_ITER`] operations on a `u64 → u64` map pre-filled with every key of its key space,
//! keys drawn uniformly. Every map uses its default hasher (`RandomState`).
//!
//! # Examples
//!
//! ```
//! use gosync_benches::map_workload::{MapImpl, Mix, Workload};
//!
//! let w = Workload { id: "tiny", keys: 100, mix: Mix::Reads { stores_percent: 10 } };
//! for map in MapImpl::ALL {
//!     let m = map.filled(w.keys);
//!     let elapsed = m.run(&w, 1, 0);
//!     assert!(elapsed.as_secs() < 60, "{}", map.name());
//! }
//! ```

use std::hint::black_box;
use std::time::Duration;

use crate::{run_threads, share, OPS_PER_ITER};

/// How many threads share a workload's operations.
pub const THREADS: usize = 2;

/// What a workload's operations are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Loads, except `stores_percent` in every 100 operations, which store an existing key.
    Reads {
        /// Stores per 100 operations.
        stores_percent: u64,
    },
    /// Half stores, half deletes of random keys (the map hovers around half full).
    StoreDelete,
}

/// One workload: a group of the criterion bench, a group of the rounds harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// The group id.
    pub id: &'static str,
    /// The size of the key space; the map starts with every key in it.
    pub keys: u64,
    /// The operations.
    pub mix: Mix,
}

/// The map workloads: 99% and 90% loads over 10k keys, half stores and half deletes over 10k
/// keys, 99% loads over 1M keys (the map no longer fits in cache).
///
/// # Examples
///
/// ```
/// let ids: Vec<_> = gosync_benches::map_workload::WORKLOADS.iter().map(|w| w.id).collect();
/// assert!(ids.contains(&"map_read_99_1m"));
/// ```
pub const WORKLOADS: [Workload; 4] = [
    Workload {
        id: "map_read_99",
        keys: 10_000,
        mix: Mix::Reads { stores_percent: 1 },
    },
    Workload {
        id: "map_read_90",
        keys: 10_000,
        mix: Mix::Reads { stores_percent: 10 },
    },
    Workload {
        id: "map_store_delete",
        keys: 10_000,
        mix: Mix::StoreDelete,
    },
    Workload {
        id: "map_read_99_1m",
        keys: 1_000_000,
        mix: Mix::Reads { stores_percent: 1 },
    },
];

/// The maps compared, gosync's first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapImpl {
    /// `gosync_map::Map`.
    Gosync,
    /// `papaya::HashMap`.
    Papaya,
    /// `dashmap::DashMap`.
    Dashmap,
    /// `scc::HashMap`.
    Scc,
}

impl MapImpl {
    /// Every map, gosync's first.
    pub const ALL: [MapImpl; 4] = [
        MapImpl::Gosync,
        MapImpl::Papaya,
        MapImpl::Dashmap,
        MapImpl::Scc,
    ];

    /// The bench id of the map.
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_benches::map_workload::MapImpl;
    ///
    /// assert_eq!(MapImpl::ALL[0].name(), "gosync");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            MapImpl::Gosync => "gosync",
            MapImpl::Papaya => "papaya",
            MapImpl::Dashmap => "dashmap",
            MapImpl::Scc => "scc",
        }
    }

    /// A new map of this kind holding every key below `keys` (each mapped to itself).
    ///
    /// # Examples
    ///
    /// ```
    /// use gosync_benches::map_workload::MapImpl;
    ///
    /// let m = MapImpl::Scc.filled(10);
    /// drop(m);
    /// ```
    pub fn filled(self, keys: u64) -> Box<dyn Run> {
        match self {
            MapImpl::Gosync => Box::new(filled(gosync_map::Map::new(), keys)),
            MapImpl::Papaya => Box::new(filled(papaya::HashMap::new(), keys)),
            MapImpl::Dashmap => Box::new(filled(dashmap::DashMap::new(), keys)),
            MapImpl::Scc => Box::new(filled(scc::HashMap::new(), keys)),
        }
    }
}

/// A workload over any of the maps (object safe, so one caller serves all four; the loop
/// inside is compiled for each map).
pub trait Run: Sync {
    /// Runs `iters` iterations of `w` on [`THREADS`] threads and returns the time they took
    /// ([`run_threads`]). Thread `i` draws its keys from a generator seeded from `seed` and
    /// `i`: equal seeds give every map the same operations.
    fn run(&self, w: &Workload, iters: u64, seed: u64) -> Duration;
}

impl<M: BenchMap> Run for M {
    fn run(&self, w: &Workload, iters: u64, seed: u64) -> Duration {
        match w.mix {
            Mix::Reads { stores_percent } => reads(self, iters, w.keys, stores_percent, seed),
            Mix::StoreDelete => store_delete(self, iters, w.keys, seed),
        }
    }
}

/// The operations a workload needs, for each map.
trait BenchMap: Sync {
    fn load(&self, k: u64) -> Option<u64>;
    fn store(&self, k: u64, v: u64);
    fn delete(&self, k: u64);
}

// `#[inline]` throughout: the workload loops are compiled in the bench programs, and each
// operation must inline into them as it would if the map were called there directly.

impl BenchMap for gosync_map::Map<u64, u64> {
    #[inline]
    fn load(&self, k: u64) -> Option<u64> {
        self.load(&k)
    }
    #[inline]
    fn store(&self, k: u64, v: u64) {
        self.store(k, v);
    }
    #[inline]
    fn delete(&self, k: u64) {
        self.delete(&k);
    }
}

impl BenchMap for papaya::HashMap<u64, u64> {
    #[inline]
    fn load(&self, k: u64) -> Option<u64> {
        self.pin().get(&k).copied()
    }
    #[inline]
    fn store(&self, k: u64, v: u64) {
        self.pin().insert(k, v);
    }
    #[inline]
    fn delete(&self, k: u64) {
        self.pin().remove(&k);
    }
}

impl BenchMap for dashmap::DashMap<u64, u64> {
    #[inline]
    fn load(&self, k: u64) -> Option<u64> {
        self.get(&k).map(|v| *v)
    }
    #[inline]
    fn store(&self, k: u64, v: u64) {
        self.insert(k, v);
    }
    #[inline]
    fn delete(&self, k: u64) {
        self.remove(&k);
    }
}

impl BenchMap for scc::HashMap<u64, u64> {
    #[inline]
    fn load(&self, k: u64) -> Option<u64> {
        self.read(&k, |_, v| *v)
    }
    #[inline]
    fn store(&self, k: u64, v: u64) {
        self.upsert(k, v);
    }
    #[inline]
    fn delete(&self, k: u64) {
        self.remove(&k);
    }
}

/// A small per-thread generator of uniform keys (xorshift64*).
struct Keys(u64);

impl Keys {
    #[inline]
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    #[inline]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Times `iters` iterations of the load/store mix: `stores` in every 100 operations store.
fn reads(m: &impl BenchMap, iters: u64, keys: u64, stores: u64, seed: u64) -> Duration {
    run_threads(THREADS, |i| {
        let mut rng = Keys::new(seed + i as u64 + 1);
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
fn store_delete(m: &impl BenchMap, iters: u64, keys: u64, seed: u64) -> Duration {
    run_threads(THREADS, |i| {
        let mut rng = Keys::new(seed + i as u64 + 7);
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
