//! Fairness: how long a thread waits for a lock that another thread keeps re-acquiring.
//!
//! Not a criterion bench: the result is a distribution of waits, not a time per iteration.
//!
//! - `mutex`: a hog thread locks, spins about 1 µs, unlocks and locks again at once; a probe
//!   thread repeatedly times how long `lock()` takes, then releases and spins 50 µs outside
//!   the lock. Go's starvation mode bounds the probe's wait (about 1 ms plus a hand-off); a lock
//!   without hand-off can let the hog win again and again.
//! - `rwmutex_writer`: 2 reader threads keep taking read locks
//!   held about 1 µs; a writer times each `write()`.
//!
//! Each scenario runs for a fixed time per implementation (2 s under `cargo bench`, a few
//! milliseconds otherwise, so `cargo test --benches` stays cheap). A non-flag argument keeps the
//! scenarios whose id (`fairness/<scenario>`) contains it. Output, one line per run, parsed by `cargo xtask bench`:
//! `FAIRNESS <scenario> <impl> samples=<n> p50_ns=<n> p99_ns=<n> max_ns=<n>`.

use std::time::{Duration, Instant};

use gosync_benches::{busy_for, WaitStats};

/// How long the lock is held by the hog (and by each reader).
const HOLD: Duration = Duration::from_micros(1);
/// How long the probe spins outside the lock between two acquisitions: long enough for a hog
/// woken by the probe's unlock to be back in its loop, so that each acquisition competes
/// with a running hog.
const PAUSE: Duration = Duration::from_micros(50);

/// Runs `hogs` hog threads (each calling `hog` in a loop) against one probe thread that
/// records `probe`'s returned wait, both for `dur`.
fn measure<L: Sync>(
    dur: Duration,
    hogs: usize,
    lock: &L,
    hog: impl Fn(&L) + Sync,
    probe: impl Fn(&L) -> Duration + Sync,
) -> WaitStats {
    let t0 = Instant::now();
    let mut waits = Vec::with_capacity(1 << 16);
    std::thread::scope(|s| {
        for _ in 0..hogs {
            s.spawn(|| {
                while t0.elapsed() < dur {
                    hog(lock);
                }
            });
        }
        // At least one sample, however late the clock started.
        loop {
            waits.push(probe(lock));
            if t0.elapsed() >= dur {
                break;
            }
            busy_for(PAUSE);
        }
    });
    WaitStats::from_waits(&mut waits)
}

fn mutex(dur: Duration) {
    let m = gosync_mutex::Mutex::new(0_u64);
    let s = measure(
        dur,
        1,
        &m,
        |m| {
            let mut g = m.lock();
            busy_for(HOLD);
            *g += 1;
        },
        |m| {
            let t = Instant::now();
            let g = m.lock();
            let w = t.elapsed();
            drop(g);
            w
        },
    );
    println!("{}", s.line("mutex", "gosync"));

    let m = parking_lot::Mutex::new(0_u64);
    let s = measure(
        dur,
        1,
        &m,
        |m| {
            let mut g = m.lock();
            busy_for(HOLD);
            *g += 1;
        },
        |m| {
            let t = Instant::now();
            let g = m.lock();
            let w = t.elapsed();
            drop(g);
            w
        },
    );
    println!("{}", s.line("mutex", "parking_lot"));

    let m = std::sync::Mutex::new(0_u64);
    let s = measure(
        dur,
        1,
        &m,
        |m| {
            let mut g = m.lock().unwrap();
            busy_for(HOLD);
            *g += 1;
        },
        |m| {
            let t = Instant::now();
            let g = m.lock().unwrap();
            let w = t.elapsed();
            drop(g);
            w
        },
    );
    println!("{}", s.line("mutex", "std"));
}

fn rwmutex_writer(dur: Duration) {
    let l = gosync_rwmutex::RwMutex::new(0_u64);
    let s = measure(
        dur,
        2,
        &l,
        |l| {
            let g = l.read();
            busy_for(HOLD);
            std::hint::black_box(*g);
        },
        |l| {
            let t = Instant::now();
            let mut g = l.write();
            let w = t.elapsed();
            *g += 1;
            w
        },
    );
    println!("{}", s.line("rwmutex_writer", "gosync"));

    let l = parking_lot::RwLock::new(0_u64);
    let s = measure(
        dur,
        2,
        &l,
        |l| {
            let g = l.read();
            busy_for(HOLD);
            std::hint::black_box(*g);
        },
        |l| {
            let t = Instant::now();
            let mut g = l.write();
            let w = t.elapsed();
            *g += 1;
            w
        },
    );
    println!("{}", s.line("rwmutex_writer", "parking_lot"));

    let l = std::sync::RwLock::new(0_u64);
    let s = measure(
        dur,
        2,
        &l,
        |l| {
            let g = l.read().unwrap();
            busy_for(HOLD);
            std::hint::black_box(*g);
        },
        |l| {
            let t = Instant::now();
            let mut g = l.write().unwrap();
            let w = t.elapsed();
            *g += 1;
            w
        },
    );
    println!("{}", s.line("rwmutex_writer", "std"));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dur = if args.iter().any(|a| a == "--bench") {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(5)
    };
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f.as_str()));
    if wanted("fairness/mutex") {
        mutex(dur);
    }
    if wanted("fairness/rwmutex_writer") {
        rwmutex_writer(dur);
    }
}
