//! A TTL cache shared by many threads: the Go course's "concurrent cache" exercise.
//!
//! What it shows:
//! - an `RwMutex<HashMap>` read by many threads at once, written rarely (`RwMutex`);
//! - entries that expire after their time to live, removed by a background sweeper that stops
//!   when its `Context` is cancelled (`context::Context`, `Canceler`);
//! - a maximum size with least-recently-used eviction: each entry carries the tick of its last
//!   read, bumped under the read lock, and an insert into a full cache evicts the smallest tick;
//! - hit, miss, eviction and expiry statistics bumped by every thread (`atomic::Counter`);
//! - the workers joined with a `WaitGroup`.
//!
//! Every value stored for key `k` is `k * 10`, so a reader can check each hit. At the end every
//! insert is accounted for: `inserts == replaced + evicted + expired + left in the cache`.
//!
//! Run it with `cargo run --example ttl_cache -- --workers 8 --ops 5000 --capacity 200`.
//! Flags: `--workers`, `--ops` (per worker), `--keys` (distinct keys), `--capacity`,
//! `--ttl-ms`, `--sweep-ms`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::atomic::Counter;
use gosync::context::Context;
use gosync::{RwMutex, RwMutexUpgradableReadGuard, WaitGroup};

mod common;

use common::{usage, Invariants};

struct Entry {
    value: u64,
    expires: Instant,
    /// The cache's clock at the last read: the LRU order. An atomic, so readers holding only the
    /// read lock can bump it.
    last_used: AtomicU64,
}

#[derive(Default)]
struct Stats {
    hits: Counter,
    misses: Counter,
    inserts: Counter,
    replaced: Counter,
    evicted: Counter,
    expired: Counter,
}

struct Cache {
    entries: RwMutex<HashMap<u64, Entry>>,
    capacity: usize,
    ttl: Duration,
    /// A logical clock for the LRU order (Relaxed: only its uniqueness matters, not ordering
    /// with other memory; the entries themselves are published by the lock).
    clock: AtomicU64,
    /// The largest size the map ever had, checked against `capacity` at the end.
    high_water: AtomicUsize,
    stats: Stats,
}

impl Cache {
    fn new(capacity: usize, ttl: Duration) -> Self {
        Cache {
            entries: RwMutex::new(HashMap::with_capacity(capacity)),
            capacity,
            ttl,
            clock: AtomicU64::new(0),
            high_water: AtomicUsize::new(0),
            stats: Stats::default(),
        }
    }

    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    /// A hit returns the value; an expired entry counts as a miss (the sweeper removes it).
    fn get(&self, key: u64) -> Option<u64> {
        let entries = self.entries.read();
        match entries.get(&key) {
            Some(entry) if entry.expires > Instant::now() => {
                entry.last_used.store(self.tick(), Ordering::Relaxed);
                self.stats.hits.inc();
                Some(entry.value)
            }
            _ => {
                self.stats.misses.inc();
                None
            }
        }
    }

    /// Inserts or replaces `key`, evicting the least recently used entry when the cache is full.
    fn insert(&self, key: u64, value: u64) {
        let entry = Entry {
            value,
            expires: Instant::now() + self.ttl,
            last_used: AtomicU64::new(self.tick()),
        };
        let mut entries = self.entries.write();
        self.stats.inserts.inc();
        if entries.insert(key, entry).is_some() {
            self.stats.replaced.inc();
        } else if entries.len() > self.capacity {
            // O(n) scan: fine for a few hundred entries; a big cache would keep an ordered list.
            let victim = entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed))
                .map(|(k, _)| *k)
                .expect("a full cache has another entry");
            entries.remove(&victim);
            self.stats.evicted.inc();
        }
        self.high_water.fetch_max(entries.len(), Ordering::Relaxed);
    }

    /// Removes every expired entry. Looks under an upgradable read lock first, so readers keep
    /// going while the sweeper finds nothing to do, and takes the write lock only when needed.
    fn sweep(&self) -> usize {
        let entries = self.entries.upgradable_read();
        let now = Instant::now();
        if !entries.values().any(|e| e.expires <= now) {
            return 0;
        }
        let mut entries = RwMutexUpgradableReadGuard::upgrade(entries);
        let before = entries.len();
        entries.retain(|_, e| e.expires > now);
        let removed = before - entries.len();
        self.stats.expired.add(removed as i64);
        removed
    }

    fn len(&self) -> usize {
        self.entries.read().len()
    }
}

struct Config {
    workers: usize,
    ops: usize,
    keys: u64,
    capacity: usize,
    ttl: Duration,
    sweep_every: Duration,
}

fn parse_args() -> Result<Config, pico_args::Error> {
    let mut args = pico_args::Arguments::from_env();
    let config = Config {
        workers: args.opt_value_from_str("--workers")?.unwrap_or(8),
        ops: args.opt_value_from_str("--ops")?.unwrap_or(5_000),
        keys: args.opt_value_from_str("--keys")?.unwrap_or(500),
        capacity: args.opt_value_from_str("--capacity")?.unwrap_or(200),
        ttl: Duration::from_millis(args.opt_value_from_str("--ttl-ms")?.unwrap_or(20)),
        sweep_every: Duration::from_millis(args.opt_value_from_str("--sweep-ms")?.unwrap_or(5)),
    };
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(pico_args::Error::ArgumentParsingFailed {
            cause: format!("unknown arguments {rest:?}"),
        });
    }
    Ok(config)
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(config) => config,
        Err(e) => return usage(&e.to_string()),
    };
    let cache = Arc::new(Cache::new(config.capacity, config.ttl));
    let wrong_values = Arc::new(Counter::new());
    let started = Instant::now();

    // The sweeper runs until its context is cancelled; `wait_for` doubles as its interval timer
    // and wakes at once on cancellation.
    let (ctx, stop_sweeper) = Context::background().with_cancel();
    let sweeper = {
        let cache = Arc::clone(&cache);
        thread::spawn(move || {
            let mut sweeps = 0u64;
            while !ctx.wait_for(config.sweep_every) {
                cache.sweep();
                sweeps += 1;
            }
            sweeps
        })
    };

    // Each worker reads random keys; a miss "loads" the value and inserts it, as a read-through
    // cache in front of a slow store would.
    let wg = Arc::new(WaitGroup::new());
    for worker in 0..config.workers {
        let cache = Arc::clone(&cache);
        let wrong_values = Arc::clone(&wrong_values);
        let (ops, keys) = (config.ops, config.keys);
        wg.go(move || {
            let mut rng = fastrand::Rng::with_seed(worker as u64);
            for _ in 0..ops {
                // A skewed key choice: low keys are hot, so hits and evictions both happen.
                let key = rng.u64(0..keys).min(rng.u64(0..keys));
                match cache.get(key) {
                    Some(value) if value != key * 10 => wrong_values.inc(),
                    Some(_) => {}
                    None => cache.insert(key, key * 10),
                }
            }
        });
    }
    wg.wait();
    let work_time = started.elapsed();

    stop_sweeper.cancel();
    let sweeps = sweeper.join().expect("the sweeper does not panic");

    // A key read after its TTL is a miss, even before the sweeper has run.
    let probe = config.keys + 1;
    let inserted = Instant::now();
    cache.insert(probe, probe * 10);
    // A miss is allowed only if this thread was descheduled for a whole TTL in between.
    let probe_fresh = cache.get(probe) == Some(probe * 10) || inserted.elapsed() >= config.ttl;
    thread::sleep(config.ttl + Duration::from_millis(1));
    let probe_expired = cache.get(probe).is_none();
    cache.sweep();

    let s = &cache.stats;
    let (hits, misses) = (s.hits.value(), s.misses.value());
    let (inserts, replaced) = (s.inserts.value(), s.replaced.value());
    let (evicted, expired) = (s.evicted.value(), s.expired.value());
    let left = cache.len() as i64;
    let gets = (config.workers * config.ops) as i64 + 2;
    let high_water = cache.high_water.load(Ordering::Relaxed);

    println!(
        "ttl_cache: {} workers x {} ops on {} keys, capacity {}, ttl {:?}, sweep every {:?}",
        config.workers, config.ops, config.keys, config.capacity, config.ttl, config.sweep_every
    );
    println!("ran {work_time:.2?}; the sweeper ran {sweeps} times and stopped on cancellation");
    println!(
        "summary: gets={gets} hits={hits} misses={misses} hit_rate={:.1}%",
        100.0 * hits as f64 / gets as f64
    );
    println!(
        "summary: inserts={inserts} replaced={replaced} evicted={evicted} expired={expired} left={left} high_water={high_water}"
    );

    let checks = [
        ("every get is a hit or a miss", hits + misses == gets),
        (
            "every hit returned the value stored",
            wrong_values.value() == 0,
        ),
        (
            "every insert is accounted for (replaced + evicted + expired + left)",
            inserts == replaced + evicted + expired + left,
        ),
        (
            "the size never exceeded the capacity",
            high_water <= config.capacity,
        ),
        ("a fresh entry is a hit", probe_fresh),
        ("an entry past its TTL is a miss", probe_expired),
        (
            "after every TTL passed, the sweep emptied the cache",
            left == 0,
        ),
    ];
    let mut invariants = Invariants::default();
    for (what, held) in checks {
        invariants.check(what, held);
    }
    invariants.verdict()
}
