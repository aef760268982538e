//! A tour of gosync: each primitive at work, with a line on what it did.
//!
//! Run it with `cargo run --example tour`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use gosync::atomic;
use gosync::context::{Context, ContextError};
use gosync::{
    Barrier, Cond, Map, Mutex, Once, OnceCell, Pool, RwMutex, RwMutexUpgradableReadGuard,
    Semaphore, WaitGroup,
};

fn main() {
    println!("gosync tour: Go's sync toolkit as Rust\n");
    mutex();
    rwmutex();
    cond();
    once();
    waitgroup();
    pool();
    atomic();
    map();
    context();
    errgroup();
    singleflight();
    semaphore();
    barrier();
    println!("\nEvery primitive above blocks through gosync-park: no polling, no sleeps.");
}

fn section(name: &str) {
    println!("== {name}");
}

/// Mutex: 4 threads × 10 000 increments, then a timed lock that gives up.
fn mutex() {
    section("Mutex (sync.Mutex, with Go's starvation mode)");
    let counter = Arc::new(Mutex::new(0u64));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let counter = Arc::clone(&counter);
            thread::spawn(move || {
                for _ in 0..10_000 {
                    *counter.lock() += 1;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    println!(
        "   4 threads x 10000 increments under one lock: {}",
        *counter.lock()
    );
    let held = counter.lock();
    let start = Instant::now();
    let attempt = counter.try_lock_for(Duration::from_millis(20));
    println!(
        "   try_lock_for(20ms) while held: {} after {:?}",
        if attempt.is_some() {
            "acquired"
        } else {
            "gave up"
        },
        round(start.elapsed())
    );
    drop(held);
    println!(
        "   size_of::<Mutex<()>>() = {} byte(s)",
        std::mem::size_of::<Mutex<()>>()
    );
}

/// RwMutex: parallel readers, an upgradable read that upgrades, a downgrade.
fn rwmutex() {
    section("RwMutex (sync.RWMutex, writer preference)");
    let config = Arc::new(RwMutex::new(vec!["a".to_string()]));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let config = Arc::clone(&config);
            thread::spawn(move || config.read().len())
        })
        .collect();
    let seen: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    println!("   3 readers saw lengths {seen:?}");
    let upgradable = config.upgradable_read();
    if !upgradable.contains(&"b".to_string()) {
        let mut write = RwMutexUpgradableReadGuard::upgrade(upgradable);
        write.push("b".to_string());
        let read = gosync::RwMutexWriteGuard::downgrade(write);
        println!("   upgraded to add \"b\", downgraded to read: {:?}", *read);
    }
}

/// Cond: a consumer waits for items a producer signals, FIFO.
fn cond() {
    section("Cond (sync.Cond, FIFO signal, broadcast requeues onto the mutex)");
    let queue = Arc::new((Mutex::new(Vec::<u32>::new()), Cond::new()));
    let consumer = {
        let queue = Arc::clone(&queue);
        thread::spawn(move || {
            let (items, cond) = &*queue;
            let mut taken = Vec::new();
            let mut guard = items.lock();
            while taken.len() < 3 {
                cond.wait_while(&mut guard, |items| items.is_empty());
                taken.append(&mut guard);
            }
            taken
        })
    };
    for item in 1..=3 {
        let (items, cond) = &*queue;
        items.lock().push(item);
        cond.signal();
    }
    println!(
        "   consumer woke on signals and took {:?}",
        consumer.join().unwrap()
    );
}

/// Once and OnceCell: one initialisation however many threads race.
fn once() {
    section("Once / OnceCell (sync.Once, OnceValue)");
    let once = Arc::new(Once::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (once, runs) = (Arc::clone(&once), Arc::clone(&runs));
            thread::spawn(move || once.call_once(|| _ = runs.fetch_add(1, Ordering::SeqCst)))
        })
        .collect();
    for racer in racers {
        racer.join().unwrap();
    }
    println!(
        "   8 threads raced call_once: f ran {} time(s)",
        runs.load(Ordering::SeqCst)
    );
    let cell: OnceCell<String> = OnceCell::new();
    let first: Result<&String, &str> = cell.get_or_try_init(|| Err("not yet"));
    let second = cell.get_or_try_init(|| Ok::<_, &str>("ready".to_string()));
    println!("   OnceCell: first init failed ({first:?}), the retry stored {second:?}");
}

/// WaitGroup: wait for spawned tasks, and a timed wait.
fn waitgroup() {
    section("WaitGroup (sync.WaitGroup, with WaitGroup.Go)");
    let wg = Arc::new(WaitGroup::new());
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let done = Arc::clone(&done);
        wg.go(move || _ = done.fetch_add(1, Ordering::SeqCst));
    }
    wg.wait();
    println!(
        "   wait() returned after {} tasks finished",
        done.load(Ordering::SeqCst)
    );
    wg.add(1);
    let finished = wg.wait_for(Duration::from_millis(10));
    println!("   wait_for(10ms) with one task outstanding: counter reached zero = {finished}");
    wg.done();
}

/// Pool: buffers reused across threads, cleared on their way back, and two trims.
fn pool() {
    section("Pool (sync.Pool, with Reset made automatic)");
    let made = Arc::new(AtomicUsize::new(0));
    let buffers = {
        let made = Arc::clone(&made);
        Arc::new(Pool::with_reset(
            move || {
                made.fetch_add(1, Ordering::SeqCst);
                Vec::<u8>::with_capacity(4096)
            },
            Vec::clear,
        ))
    };
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let buffers = Arc::clone(&buffers);
            thread::spawn(move || {
                for _ in 0..1000 {
                    buffers.get().extend_from_slice(b"request");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    println!(
        "   4 threads x 1000 buffers: {} allocated, the rest reused (idle cap {})",
        made.load(Ordering::SeqCst),
        buffers.max_idle()
    );
    println!(
        "   a buffer comes back cleared: len = {}",
        buffers.get().len()
    );
    buffers.trim();
    buffers.trim();
    let before = made.load(Ordering::SeqCst);
    drop(buffers.get());
    println!(
        "   after two trims the idle buffers are gone: get() allocated {} new",
        made.load(Ordering::SeqCst) - before
    );
}

/// atomic: a shared config that readers load while a writer replaces it, and a striped counter.
fn atomic() {
    section("atomic (sync/atomic: Value / Pointer[T], and a striped counter)");
    let config = atomic::Value::new(String::from("v1"));
    let loads = atomic::Counter::new();
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut reader = config.reader(); // per-thread: one load + compare per read
                for _ in 0..1000 {
                    assert!(reader.load().starts_with('v'));
                    loads.inc();
                }
            });
        }
        config.store(String::from("v2"));
    });
    println!(
        "   4 readers x 1000 loads during a store: {} loads, config now {:?}",
        loads.value(),
        *config.load()
    );
    let bumped = config.update(|old| format!("{old}+patch"));
    println!("   update (read-copy-update): {bumped:?}");
}

/// Map: 4 threads count words in one map, a range, and load_or_store_with's single `f`.
fn map() {
    section("Map (sync.Map: reads take no lock)");
    let counts = Arc::new(Map::new());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let counts = Arc::clone(&counts);
            thread::spawn(move || {
                for word in "the quick fox and the lazy dog and the cat".split(' ') {
                    counts.update(word, |n: Option<&u32>| Some(n.map_or(1, |n| n + 1)));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    println!(
        "   4 threads counted \"the\" {} times, {} distinct words",
        counts.load("the").unwrap(),
        counts.len()
    );
    let mut at_least_8 = 0;
    counts.range(|_, &n| {
        at_least_8 += usize::from(n >= 8);
        true
    });
    println!("   range: {at_least_8} words seen at least 8 times");
    let runs = AtomicUsize::new(0);
    let (value, loaded) = counts.load_or_store_with("fox", || {
        runs.fetch_add(1, Ordering::SeqCst);
        0
    });
    println!(
        "   load_or_store_with(\"fox\"): {value} (loaded = {loaded}, f ran {} times)",
        runs.load(Ordering::SeqCst)
    );
}

/// Context: cancellation reaching a waiter, and a deadline.
fn context() {
    section("context (Go's context: cancellation and deadlines)");
    let (ctx, cancel) = Context::background().with_cancel();
    let (child, _child_cancel) = ctx.with_timeout(Duration::from_secs(60));
    let wg = Arc::new(WaitGroup::new());
    wg.add(1);
    let waiter = {
        let (wg, child) = (Arc::clone(&wg), child.clone());
        thread::spawn(move || wg.wait_ctx(&child))
    };
    cancel.cancel();
    let result: Result<(), ContextError> = waiter.join().unwrap();
    println!("   a WaitGroup wait on a child context, parent cancelled: {result:?}");
    println!(
        "   child.err() = {:?} (\"{}\")",
        child.err(),
        child.err().unwrap()
    );
    wg.done();
    let (short, _cancel) = Context::background().with_timeout(Duration::from_millis(5));
    short.wait();
    println!("   a 5ms timeout context: err() = {:?}", short.err());
}

/// errgroup: three tasks, one fails; the others see the context cancelled.
fn errgroup() {
    section("errgroup (x/sync/errgroup: first error, cancellation)");
    let (g, ctx) = gosync::errgroup::Group::with_context(&Context::background());
    for task in 0..3 {
        let ctx = ctx.clone();
        g.go(move || match task {
            1 => Err(format!("task {task} failed")),
            _ => {
                ctx.wait(); // stops when the group's first error cancels the context
                Ok(())
            }
        });
    }
    println!("   3 tasks, one fails: wait() = {:?}", g.wait());
}

/// singleflight: 4 threads ask for one key at once; the load runs once per flight.
fn singleflight() {
    section("singleflight (x/sync/singleflight: one call per key in flight)");
    let group = gosync::singleflight::Group::new();
    let loads = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                group.call("config", || {
                    loads.fetch_add(1, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(20));
                    "loaded"
                })
            });
        }
    });
    println!(
        "   4 threads called one key: the load ran {} time(s)",
        loads.load(Ordering::Relaxed)
    );
}

/// Semaphore: at most 2 of 6 workers inside at once, and a timed acquire that gives up.
fn semaphore() {
    section("Semaphore (x/sync/semaphore.Weighted, FIFO)");
    let slots = Arc::new(Semaphore::new(2));
    let (inside, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let (slots, inside, peak) =
                (Arc::clone(&slots), Arc::clone(&inside), Arc::clone(&peak));
            thread::spawn(move || {
                let _permit = slots.acquire_permit(1);
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                inside.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    println!(
        "   6 workers, 2 permits: at most {} inside at once",
        peak.load(Ordering::SeqCst)
    );
    let all = slots.acquire_permit(2);
    let got = slots.try_acquire_for(1, Duration::from_millis(10));
    println!("   try_acquire_for(1, 10ms) with every permit held: {got}");
    drop(all);
}

/// Barrier: 3 threads in lock-step for 3 rounds, an action per trip, then a timeout breaking it.
fn barrier() {
    section("Barrier (cyclic, with an action per trip)");
    let trips = Arc::new(AtomicUsize::new(0));
    let barrier = {
        let trips = Arc::clone(&trips);
        Arc::new(Barrier::with_action(3, move || {
            _ = trips.fetch_add(1, Ordering::SeqCst)
        }))
    };
    let parties: Vec<_> = (0..3)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                (0..3)
                    .filter(|_| barrier.wait().unwrap().is_leader())
                    .count()
            })
        })
        .collect();
    let led: usize = parties.into_iter().map(|p| p.join().unwrap()).sum();
    println!(
        "   3 parties x 3 rounds: the action ran {} times, {led} leaders in all",
        trips.load(Ordering::SeqCst)
    );
    let alone = barrier.wait_for(Duration::from_millis(5));
    println!(
        "   a lone wait_for(5ms): {alone:?}; broken now = {}",
        barrier.is_broken()
    );
}

fn round(d: Duration) -> Duration {
    Duration::from_micros(d.as_micros() as u64 / 100 * 100)
}
